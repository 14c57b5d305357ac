//! Start-up objects every cluster has, created through the API itself (an in-process request
//! under the API server's own identity) so admission, validation and watch see them like any
//! other write: the system namespaces and the `kubernetes` Service and Endpoints.

use crate::authn::UserInfo;
use crate::server::{ApiServer, router};
use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

/// The identity of the API server's own requests.
pub fn apiserver_identity() -> UserInfo {
    UserInfo::authenticated("system:apiserver", vec!["system:masters".to_string()])
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{what}: HTTP {status}: {body}")]
    Create {
        what: String,
        status: StatusCode,
        body: String,
    },
    #[error("{what}: {source}")]
    Request { what: String, source: axum::Error },
}

/// Sends one request as the API server itself; returns the status and the JSON body.
async fn call(
    api: &Arc<ApiServer>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(StatusCode, Value), BootstrapError> {
    let what = format!("{method} {path}");
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .map_err(|e| BootstrapError::Create {
            what: what.clone(),
            status: StatusCode::BAD_REQUEST,
            body: e.to_string(),
        })?;
    req.extensions_mut().insert(apiserver_identity());
    let resp = match router(api.clone()).oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .map_err(|source| BootstrapError::Request {
            what: what.clone(),
            source,
        })?;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, value))
}

fn failed(what: String, status: StatusCode, body: &Value) -> BootstrapError {
    BootstrapError::Create {
        what,
        status,
        body: body.to_string(),
    }
}

/// Creates `obj` in the collection at `path` unless an object of that name exists.
pub async fn ensure(api: &Arc<ApiServer>, path: &str, obj: Value) -> Result<(), BootstrapError> {
    let (status, body) = call(api, Method::POST, path, Some(&obj)).await?;
    if status.is_success() || status == StatusCode::CONFLICT {
        return Ok(());
    }
    Err(failed(
        format!("POST {path} {}", obj["metadata"]["name"]),
        status,
        &body,
    ))
}

/// Creates `obj`, or brings the given top-level fields of an existing one up to date.
pub async fn ensure_current(
    api: &Arc<ApiServer>,
    path: &str,
    obj: Value,
    fields: &[&str],
) -> Result<(), BootstrapError> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let item = format!("{path}/{name}");
    let (status, body) = call(api, Method::POST, path, Some(&obj)).await?;
    if status.is_success() {
        return Ok(());
    }
    if status != StatusCode::CONFLICT {
        return Err(failed(format!("POST {item}"), status, &body));
    }
    let (status, mut existing) = call(api, Method::GET, &item, None).await?;
    if !status.is_success() {
        return Err(failed(format!("GET {item}"), status, &existing));
    }
    let mut changed = false;
    for f in fields {
        if let (Some(want), Some(map)) = (obj.get(*f), existing.as_object_mut())
            && map.get(*f) != Some(want)
        {
            map.insert((*f).to_string(), want.clone());
            changed = true;
        }
    }
    if changed {
        let (status, body) = call(api, Method::PUT, &item, Some(&existing)).await?;
        if !status.is_success() {
            return Err(failed(format!("PUT {item}"), status, &body));
        }
    }
    Ok(())
}

/// The namespaces every cluster starts with.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Where the API server can be reached, for the `kubernetes` Service and Endpoints.
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
}

/// The `kubernetes` Service in `default`: ClusterIP 10.96.0.1, port 443 (`https`) to the API
/// server's port.
pub fn kubernetes_service(port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": crate::pki::KUBERNETES_SERVICE_IP,
            "clusterIPs": [crate::pki::KUBERNETES_SERVICE_IP],
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
        },
    })
}

/// The Endpoints behind the `kubernetes` Service: the API server itself.
pub fn kubernetes_endpoints(endpoint: &Endpoint) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": endpoint.ip}], "ports": [{"name": "https", "port": endpoint.port, "protocol": "TCP"}]}],
    })
}

/// Creates the system namespaces and the `kubernetes` Service and Endpoints (brought up to
/// date with the current address on every start).
pub async fn run(api: &Arc<ApiServer>, endpoint: &Endpoint) -> Result<(), BootstrapError> {
    // Independent writes go out together so the store commits them in a few batches.
    let namespaces = SYSTEM_NAMESPACES.iter().map(|ns| {
        ensure(
            api,
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
    });
    futures::future::try_join_all(namespaces).await?;
    let policy = crate::rbac::bootstrap_policy().into_iter().map(|obj| {
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        async move {
            match kind.as_str() {
                // Roles marked `autoupdate` are brought back to the bootstrap rules on start.
                "ClusterRole" => {
                    ensure_current(
                        api,
                        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                        obj,
                        &["rules", "aggregationRule"],
                    )
                    .await
                }
                "ClusterRoleBinding" => {
                    ensure_current(
                        api,
                        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                        obj,
                        &["subjects"],
                    )
                    .await
                }
                "Role" => {
                    let ns = obj["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("kube-system")
                        .to_string();
                    ensure_current(
                        api,
                        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
                        obj,
                        &["rules"],
                    )
                    .await
                }
                "RoleBinding" => {
                    let ns = obj["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("kube-system")
                        .to_string();
                    let path =
                        format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings");
                    ensure_current(api, &path, obj, &["subjects"]).await
                }
                _ => Ok(()),
            }
        }
    });
    let service = ensure_current(
        api,
        "/api/v1/namespaces/default/services",
        kubernetes_service(endpoint.port),
        &["spec"],
    );
    let endpoints = ensure_current(
        api,
        "/api/v1/namespaces/default/endpoints",
        kubernetes_endpoints(endpoint),
        &["subsets"],
    );
    let (policy, service, endpoints) =
        futures::join!(futures::future::try_join_all(policy), service, endpoints);
    policy?;
    service?;
    endpoints?;
    Ok(())
}
