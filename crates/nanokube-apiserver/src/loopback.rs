//! The in-process way in: a tower service that hands requests straight to the API server's
//! router under a fixed identity — no socket, no TLS, but the same authorization, admission,
//! validation and watch as any client (design.md, non-negotiable 3). Controllers and the node
//! agent wrap it in a `kube::Client`.

use crate::authn::UserInfo;
use crate::server::{ApiServer, router};
use axum::body::Body;
use bytes::Bytes;
use http::Request;
use std::sync::Arc;
use tower::ServiceExt;

/// A service for requests with any body type, answered by the API server as `user`.
pub fn service<B>(
    api: Arc<ApiServer>,
    user: UserInfo,
) -> impl tower::Service<
    Request<B>,
    Response = http::Response<Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<Body>, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone
+ Send
+ 'static
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    router(api).map_request(move |req: Request<B>| {
        let (parts, body) = req.into_parts();
        let mut req = Request::from_parts(parts, Body::new(body));
        req.extensions_mut().insert(user.clone());
        req
    })
}

/// The identity a controller runs as: its service account in kube-system, like
/// kube-controller-manager with `--use-service-account-credentials`.
pub fn controller_identity(controller: &str) -> UserInfo {
    UserInfo::authenticated(
        format!("system:serviceaccount:kube-system:{controller}"),
        vec![
            "system:serviceaccounts".to_string(),
            "system:serviceaccounts:kube-system".to_string(),
        ],
    )
}
