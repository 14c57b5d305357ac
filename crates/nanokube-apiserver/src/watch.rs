//! Watch: a chunked stream of JSON events, one per line, from a store watch — the initial
//! state (unless resuming from a resourceVersion), then every change, with selector moves
//! reported as ADDED/DELETED, optional bookmarks, and `410 Expired` for a compacted start.

use crate::negotiate::Representation;
use crate::objects;
use crate::rest::{Ctx, Selectors, decode_kv, list_objects};
use crate::status::{ApiError, ApiResult};
use crate::table;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use nanokube_registry::resource::ResourceInfo;
use nanokube_registry::strategy::Strategy;
use nanokube_store::{StoreError, WatchEvent};
use rand::Rng;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// Upstream's `--min-request-timeout`: watches without `timeoutSeconds` last between this and
/// twice this.
const MIN_REQUEST_TIMEOUT: u64 = 1800;
/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// How one watch renders its events.
struct Renderer {
    res: &'static ResourceInfo,
    repr: Representation,
    include_object: String,
    clock: std::sync::Arc<dyn crate::server::Clock>,
}

impl Renderer {
    fn object(&self, obj: Value) -> Value {
        let mut obj = obj;
        if self.res.version != self.res.storage_version {
            objects::set_api_version(&mut obj, &self.res.api_version());
        }
        match self.repr {
            Representation::Table(v) => table::table(
                self.res,
                std::slice::from_ref(&obj),
                self.clock.now(),
                &self.include_object,
                v,
                None,
                None,
            ),
            Representation::PartialObjectMetadata | Representation::PartialObjectMetadataList => {
                objects::partial_metadata(&obj)
            }
            Representation::Object => obj,
        }
    }

    fn line(&self, kind: &str, obj: Value) -> Bytes {
        let ev = json!({"type": kind, "object": self.object(obj)});
        let mut s = ev.to_string();
        s.push('\n');
        Bytes::from(s)
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta});
        let ev = json!({"type": "BOOKMARK", "object": obj});
        let mut s = ev.to_string();
        s.push('\n');
        Bytes::from(s)
    }
}

fn error_line(e: &ApiError) -> Bytes {
    let mut s = json!({"type": "ERROR", "object": e.to_status()}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn flag(ctx: &Ctx<'_>, key: &str) -> bool {
    matches!(
        crate::request_info::query_param(ctx.query, key),
        Some("true" | "1")
    )
}

/// Serves `?watch=true`. `name` is set for the deprecated `/watch/…/NAME` form.
pub async fn serve(ctx: &Ctx<'_>, name: Option<&str>) -> ApiResult<Response> {
    let sel = Selectors::from_query(ctx)?;
    let rv_param = crate::request_info::query_param(ctx.query, "resourceVersion")
        .unwrap_or("")
        .to_string();
    let bookmarks = flag(ctx, "allowWatchBookmarks");
    let send_initial =
        crate::request_info::query_param(ctx.query, "sendInitialEvents").map(|v| v == "true");
    let timeout = match crate::request_info::query_param(ctx.query, "timeoutSeconds")
        .filter(|s| !s.is_empty())
    {
        Some(t) => {
            let secs: u64 = t
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?;
            Duration::from_secs(secs.max(1))
        }
        None => Duration::from_secs(
            MIN_REQUEST_TIMEOUT + rand::rng().random_range(0..MIN_REQUEST_TIMEOUT),
        ),
    };
    if send_initial == Some(true) && !bookmarks {
        return Err(ApiError::invalid_kind(
            "ListOptions.meta.k8s.io",
            "meta.k8s.io",
            "ListOptions",
            "",
            &vec![nanokube_registry::field::FieldError::forbidden(
                "allowWatchBookmarks",
                "allowWatchBookmarks required when sendInitialEvents is true",
            )],
        ));
    }
    let renderer = Renderer {
        res: ctx.res,
        repr: ctx.repr,
        include_object: crate::request_info::query_param(ctx.query, "includeObject")
            .unwrap_or("Metadata")
            .to_string(),
        clock: ctx.api.clock.clone(),
    };
    let name_filter = name.map(str::to_string);
    let matches = {
        let strategy: &'static dyn Strategy = ctx.strategy;
        let name_filter = name_filter.clone();
        move |sel: &Selectors, obj: &Value| {
            name_filter
                .as_deref()
                .is_none_or(|n| objects::name(obj) == n)
                && sel.matches(strategy, obj)
        }
    };

    // Where to start: the current state as ADDED events (no resourceVersion, "0", or
    // sendInitialEvents=true), or every change after the given revision.
    let mut initial: Vec<Value> = Vec::new();
    let start: i64;
    let replay = match send_initial {
        Some(v) => v,
        None => rv_param.is_empty() || rv_param == "0",
    };
    if replay {
        let (items, rv, _, _) = list_objects_all(ctx, &sel).await?;
        initial = items.into_iter().filter(|o| matches(&sel, o)).collect();
        start = rv;
    } else {
        start = rv_param
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv_param}")))?;
    }
    let prefix = match ctx.namespace.as_deref().filter(|_| ctx.res.namespaced) {
        Some(ns) => format!("{}{ns}/", ctx.res.storage_prefix()),
        None => ctx.res.storage_prefix(),
    };
    let store = ctx.api.store.clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let watcher = store.watch(&prefix, start).await;
    let mut watcher = match watcher {
        Ok(w) => Some(w),
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            let e = ApiError::expired(format!(
                "too old resource version: {requested} ({})",
                compacted
            ));
            let _ = tx.send(Ok(error_line(&e))).await;
            None
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let initial_end_bookmark = send_initial == Some(true);
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        for obj in initial {
            if tx.send(Ok(renderer.line("ADDED", obj))).await.is_err() {
                return;
            }
        }
        let mut last_rv = start;
        if initial_end_bookmark && tx.send(Ok(renderer.bookmark(last_rv, true))).await.is_err() {
            return;
        }
        let Some(w) = watcher.as_mut() else { return };
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(Ok(renderer.bookmark(last_rv, false))).await.is_err() { return; }
                }
                ev = w.next() => {
                    let Some(ev) = ev else { return };
                    last_rv = ev.revision();
                    if let Some(line) = event_line(&renderer, &sel, &matches, ev)
                        && tx.send(Ok(line)).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let ct = match ctx.repr {
        Representation::Table(v) => table::content_type(v),
        _ => "application/json",
    };
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    crate::rest::add_warnings(resp.headers_mut(), &ctx.warnings);
    Ok(resp)
}

/// The full current state (every page) for the initial events of a watch.
async fn list_objects_all(
    ctx: &Ctx<'_>,
    sel: &Selectors,
) -> ApiResult<(Vec<Value>, i64, Option<String>, Option<i64>)> {
    // The watch's own limit/continue do not apply to its initial state.
    let mut q = ctx.query.clone();
    q.remove("limit");
    q.remove("continue");
    q.remove("resourceVersion");
    q.remove("resourceVersionMatch");
    let inner = Ctx {
        api: ctx.api,
        res: ctx.res,
        strategy: ctx.strategy,
        namespace: ctx.namespace.clone(),
        query: &q,
        repr: ctx.repr,
        warnings: Vec::new(),
        user: ctx.user,
    };

    list_objects(&inner, sel).await
}

/// Turns a store event into a watch line, reporting objects that move into the selection
/// as ADDED and out of it as DELETED.
fn event_line(
    r: &Renderer,
    sel: &Selectors,
    matches: &impl Fn(&Selectors, &Value) -> bool,
    ev: WatchEvent,
) -> Option<Bytes> {
    match ev {
        WatchEvent::Put { kv, prev } => {
            let obj = decode_kv(&kv).ok()?;
            let now_in = matches(sel, &obj);
            let was_in = match &prev {
                Some(p) => decode_kv(p).ok().is_some_and(|o| matches(sel, &o)),
                None => false,
            };
            match (was_in, now_in) {
                (false, true) => Some(r.line("ADDED", obj)),
                (true, true) => Some(r.line("MODIFIED", obj)),
                (true, false) => Some(r.line("DELETED", obj)),
                (false, false) => None,
            }
        }
        WatchEvent::Delete { revision, prev, .. } => {
            let mut obj = decode_kv(&prev).ok()?;
            if !matches(sel, &obj) {
                return None;
            }
            objects::set_meta(&mut obj, "resourceVersion", json!(revision.to_string()));
            Some(r.line("DELETED", obj))
        }
    }
}
