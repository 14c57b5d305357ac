//! Pod subresources that are not plain reads and writes of the object: `binding` (the
//! scheduler's assignment of a pod to a node) and `log` (container logs, which live with the
//! node agent and are reached through a [`PodLogs`] connector).

use crate::objects::{self, meta_str};
use crate::request_info::query_param;
use crate::rest::{Ctx, get_current, json_response};
use crate::status::{ApiError, ApiResult};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One `kubectl logs` request, resolved to a container instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRequest {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub node: String,
    pub container: String,
    /// Which instance of the container: its restart count at the time it ran.
    pub restart_count: i32,
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub since_time: Option<DateTime<Utc>>,
    pub timestamps: bool,
    pub limit_bytes: Option<i64>,
}

/// Where container logs come from: the node agent of the pod's node.
pub trait PodLogs: Send + Sync {
    /// The log of one container instance as a byte stream. With `follow`, the stream goes on
    /// while `is_running()` holds.
    fn logs(
        &self,
        req: LogRequest,
        is_running: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, String>;
}

/// `POST pods/NAME/binding`: assigns the pod to a node (upstream `BindingREST`): sets
/// `spec.nodeName` and the `PodScheduled` condition; a pod already bound is a conflict.
pub async fn bind(
    ctx: &Ctx<'_>,
    name: &str,
    body: &[u8],
    content_type: &str,
) -> ApiResult<Response> {
    let binding = crate::negotiate::decode_body(body, content_type)?;
    let target = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = binding
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or("Node");
    if target.is_empty() || kind != "Node" {
        return Err(ApiError::invalid_kind(
            "Binding",
            "",
            "Binding",
            name,
            &vec![nanokube_registry::field::FieldError::not_supported(
                "target.kind",
                &json!(kind),
                &["Node"],
            )],
        ));
    }
    if let Some(n) = meta_str(&binding, "name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let now = objects::timestamp(ctx.api.clock.now());
    crate::rest::bind_pod(ctx, name, &target, &now).await?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(json_response(
        StatusCode::CREATED,
        &status,
        "application/json",
        &ctx.warnings,
    ))
}

/// The container a log request means: the named one, else the default-container annotation,
/// else the only one.
fn pick_container(pod: &Value, pod_name: &str, asked: Option<&str>) -> ApiResult<String> {
    let names: Vec<String> = ["initContainers", "containers"]
        .iter()
        .flat_map(|f| {
            pod.pointer(&format!("/spec/{f}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let main: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    match asked.filter(|a| !a.is_empty()) {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None => {
            if let Some(d) = pod
                .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
                .and_then(Value::as_str)
                && main.iter().any(|n| n == d)
            {
                return Ok(d.to_string());
            }
            match main.as_slice() {
                [only] => Ok(only.clone()),
                _ => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    main.join(" ")
                ))),
            }
        }
    }
}

/// The status entry of a container (main or init).
fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .find_map(|f| {
            pod.pointer(&format!("/status/{f}"))
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .find(|s| s.get("name").and_then(Value::as_str) == Some(container))
                })
        })
}

fn parse_int(ctx: &Ctx<'_>, key: &str) -> ApiResult<Option<i64>> {
    match query_param(ctx.query, key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid {key} {v:?}: must be an integer"))),
    }
}

/// `GET pods/NAME/log`.
pub async fn log(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    let (pod, _) = get_current(ctx, name).await?;
    let container = pick_container(&pod, name, query_param(ctx.query, "container"))?;
    let flag = |k: &str| matches!(query_param(ctx.query, k), Some("true" | "1"));
    let previous = flag("previous");
    let status = container_status(&pod, &container);
    let restarts = status
        .and_then(|s| s.get("restartCount"))
        .and_then(Value::as_i64)
        .unwrap_or(0) as i32;
    let restart_count = if previous {
        if restarts == 0 {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        restarts - 1
    } else {
        if let Some(waiting) = status.and_then(|s| s.pointer("/state/waiting")) {
            let reason = waiting
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating");
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
        if status.is_none() {
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            )));
        }
        restarts
    };
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(source) = ctx.api.pod_logs.clone() else {
        return Err(ApiError::bad_request(format!(
            "pod {name} is not running on a node with a log connection"
        )));
    };
    let since_seconds = parse_int(ctx, "sinceSeconds")?;
    let since_time = match query_param(ctx.query, "sinceTime").filter(|v| !v.is_empty()) {
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    ApiError::bad_request(format!("invalid sinceTime {t:?}: must be RFC 3339"))
                })?
                .with_timezone(&Utc),
        ),
        None => since_seconds.map(|s| ctx.api.clock.now() - chrono::Duration::seconds(s)),
    };
    let follow = flag("follow") && !previous;
    let req = LogRequest {
        namespace: ctx.namespace.clone().unwrap_or_default(),
        pod: name.to_string(),
        pod_uid: meta_str(&pod, "uid").unwrap_or("").to_string(),
        node,
        container: container.clone(),
        restart_count,
        follow,
        tail_lines: parse_int(ctx, "tailLines")?,
        since_time,
        timestamps: flag("timestamps"),
        limit_bytes: parse_int(ctx, "limitBytes")?,
    };
    let running = Arc::new(AtomicBool::new(follow));
    if follow {
        watch_instance(ctx, name, &container, restart_count, running.clone());
    }
    let flag_ref = running.clone();
    let stream = source
        .logs(req, Box::new(move || flag_ref.load(Ordering::Relaxed)))
        .map_err(ApiError::bad_request)?;
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

/// Keeps `running` true while the container instance runs (polling the stored pod), so a
/// followed log ends when the container does.
fn watch_instance(
    ctx: &Ctx<'_>,
    pod: &str,
    container: &str,
    restart_count: i32,
    running: Arc<AtomicBool>,
) {
    let store = ctx.api.store.clone();
    let key = ctx.key(pod);
    let container = container.to_string();
    tokio::spawn(async move {
        loop {
            let alive = match store.get(&key).await {
                Ok(Some(kv)) => crate::rest::decode_kv(&kv).ok().is_some_and(|p| {
                    container_status(&p, &container).is_some_and(|s| {
                        s.get("restartCount").and_then(Value::as_i64)
                            == Some(i64::from(restart_count))
                            && s.pointer("/state/running").is_some()
                    })
                }),
                _ => false,
            };
            if !alive {
                running.store(false, Ordering::Relaxed);
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_container_is_picked_and_several_need_a_name() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pick_container(&one, "p", None), Ok("a".to_string()));
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let e = pick_container(&two, "p", None).expect_err("ambiguous");
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(pick_container(&two, "p", Some("b")), Ok("b".to_string()));
        assert!(pick_container(&two, "p", Some("zz")).is_err());
        let annotated = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/default-container": "b"}}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(pick_container(&annotated, "p", None), Ok("b".to_string()));
    }
}
