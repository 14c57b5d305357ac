//! Start-up objects every cluster has, created through the API itself (an in-process request
//! under the API server's own identity) so admission, validation and watch see them like any
//! other write.

use crate::authn::UserInfo;
use crate::server::{ApiServer, router};
use axum::body::Body;
use http::{Method, Request, StatusCode};
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

/// The identity of the API server's own requests.
pub fn apiserver_identity() -> UserInfo {
    UserInfo::authenticated("system:apiserver", vec!["system:masters".to_string()])
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("creating {what}: HTTP {status}: {body}")]
    Create {
        what: String,
        status: StatusCode,
        body: String,
    },
    #[error("creating {what}: {source}")]
    Request { what: String, source: axum::Error },
}

/// Creates `obj` at `path` unless it exists.
async fn ensure(
    api: &Arc<ApiServer>,
    path: &str,
    obj: serde_json::Value,
) -> Result<(), BootstrapError> {
    let what = format!("{path} {}", obj["metadata"]["name"]);
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(obj.to_string()))
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
    if status.is_success() || status == StatusCode::CONFLICT {
        return Ok(());
    }
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .map_err(|source| BootstrapError::Request {
            what: what.clone(),
            source,
        })?;
    Err(BootstrapError::Create {
        what,
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The namespaces every cluster starts with.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

pub async fn run(api: &Arc<ApiServer>) -> Result<(), BootstrapError> {
    for ns in SYSTEM_NAMESPACES {
        ensure(
            api,
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    Ok(())
}
