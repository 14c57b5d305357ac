//! The API server: one entry point that authenticates, parses the request, authorizes it and
//! dispatches to discovery, health, OpenAPI or the generic REST store; and the HTTPS listener.

use crate::authn;
use crate::authz::{self, Attributes, Authorizer, Decision};
use crate::discovery;
use crate::openapi;
use crate::pki::Pki;
use crate::rbac::RbacAuthorizer;
use crate::request_info::{RequestInfo, parse_query};
use crate::rest;
use crate::status::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request, StatusCode, header};
use nanokube_store::Store;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The injected source of "now", shared with the controllers.
pub use nanokube_registry::clock::{Clock, SystemClock};

/// Shared state of the API server.
pub struct ApiServer {
    pub store: Arc<dyn Store>,
    pub authorizer: Arc<dyn Authorizer>,
    pub clock: Arc<dyn Clock>,
    /// `host:port` clients reach us at (discovery's `serverAddressByClientCIDRs`).
    pub server_address: String,
    /// Whether `/readyz` says ok.
    pub ready: AtomicBool,
    /// The RBAC authorizer when RBAC is the authorization mode; admission uses it for the
    /// escalation checks on Role and binding writes.
    pub rbac: Option<Arc<RbacAuthorizer>>,
    /// Bearer-token authentication (static tokens, service-account JWTs).
    pub tokens: authn::TokenAuthenticators,
    /// Where `pods/log` reads container logs (the node agent).
    pub pod_logs: Option<Arc<dyn crate::pods::PodLogs>>,
    /// Where `pods/exec` and `pods/attach` sessions run (the node agent).
    pub pod_streams: Option<Arc<dyn crate::streams::PodStreams>>,
}

impl ApiServer {
    pub fn new(
        store: Arc<dyn Store>,
        authorizer: Arc<dyn Authorizer>,
        server_address: String,
    ) -> Self {
        ApiServer {
            store,
            authorizer,
            clock: Arc::new(SystemClock),
            server_address,
            ready: AtomicBool::new(false),
            rbac: None,
            tokens: authn::TokenAuthenticators::default(),
            pod_logs: None,
            pod_streams: None,
        }
    }

    /// An API server authorizing every request with RBAC.
    pub fn with_rbac(
        store: Arc<dyn Store>,
        rbac: Arc<RbacAuthorizer>,
        server_address: String,
    ) -> Self {
        let mut api = ApiServer::new(store, rbac.clone(), server_address);
        api.rbac = Some(rbac);
        api
    }
}

/// The axum application: every request goes through [`handle`].
pub fn router(api: Arc<ApiServer>) -> Router {
    Router::new().fallback(handle).with_state(api)
}

async fn handle(State(api): State<Arc<ApiServer>>, req: Request<Body>) -> Response {
    let creds = authn::credentials(&req);
    let user = match authn::authenticate_credentials(
        creds,
        &api.tokens,
        api.store.as_ref(),
        api.clock.now(),
    )
    .await
    {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "authentication failed");
            return ApiError::unauthorized().into_response();
        }
    };
    let user = match authn::Impersonation::from_headers(req.headers()) {
        None => user,
        Some(imp) => match impersonate(&api, &user, &imp).await {
            Ok(u) => u,
            Err(e) => return e.into_response(),
        },
    };
    let query = parse_query(req.uri().query());

    let path = req.uri().path().to_string();
    let info = RequestInfo::parse(req.method(), &path, &query);
    let attrs = Attributes::new(&user, &info);
    if let Decision::Deny(reason) = api.authorizer.authorize(&attrs).await {
        return authz::forbidden(&attrs, &reason).into_response();
    }
    let resp = if crate::streams::is_stream_request(&info, req.method()) {
        // A connection upgrade: the request must reach the handler with its upgrade intact.
        crate::streams::serve(api.clone(), &info, &query, &user, req).await
    } else if info.is_resource_request {
        rest::serve(api.clone(), info, query, user.clone(), req).await
    } else {
        {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let if_none_match = req
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            non_resource(&api, &info, &query, &accept, if_none_match.as_deref()).await
        }
    };
    tracing::debug!(method = %attrs.verb, path = %path, user = %user.name, status = resp.status().as_u16(), "request");
    resp
}

/// Upstream's impersonation filter: the requester must be allowed to `impersonate` every
/// attribute it asks for; the request then continues as the impersonated user.
async fn impersonate(
    api: &ApiServer,
    requester: &authn::UserInfo,
    imp: &authn::Impersonation,
) -> Result<authn::UserInfo, ApiError> {
    if imp.user.is_none() {
        return Err(ApiError::bad_request(
            "requested impersonation of groups, uids or extra without impersonating a user",
        ));
    }
    for (group, resource, namespace, name) in imp.checks() {
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, s)) => (r.to_string(), s.to_string()),
            None => (resource, String::new()),
        };
        let attrs = Attributes {
            user: requester.clone(),
            verb: "impersonate".into(),
            is_resource_request: true,
            namespace,
            api_group: group.to_string(),
            resource,
            subresource,
            name,
            ..Default::default()
        };
        if let Decision::Deny(reason) = api.authorizer.authorize(&attrs).await {
            return Err(authz::forbidden(&attrs, &reason));
        }
    }
    Ok(imp.user())
}

fn json(code: StatusCode, body: &Value, content_type: &'static str) -> Response {
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(code: StatusCode, body: String) -> Response {
    let mut r = (code, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The checks behind `/healthz`, `/livez` and `/readyz`.
async fn health_checks(api: &ApiServer, endpoint: &str) -> Vec<(&'static str, Result<(), String>)> {
    let mut checks = vec![("ping", Ok(()))];
    let store = match api.store.current_revision().await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    checks.push(("etcd", store));
    if endpoint == "readyz" {
        let ready = if api.ready.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("not ready".to_string())
        };
        checks.push(("informer-sync", ready));
    }
    checks
}

async fn health(
    api: &ApiServer,
    endpoint: &str,
    only: Option<&str>,
    query: &rest::Query,
) -> Response {
    let excluded: Vec<&str> = query
        .get("exclude")
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let checks = health_checks(api, endpoint).await;
    if let Some(name) = only {
        return match checks.iter().find(|(n, _)| *n == name) {
            Some((_, Ok(()))) => text(StatusCode::OK, "ok".into()),
            Some((n, Err(_))) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal server error: {n} failed\n"),
            ),
            None => ApiError::page_not_found().into_response(),
        };
    }
    let mut failed = false;
    let mut lines = String::new();
    for (name, result) in &checks {
        if excluded.contains(name) {
            lines.push_str(&format!("[+]{name} excluded: ok\n"));
            continue;
        }
        match result {
            Ok(()) => lines.push_str(&format!("[+]{name} ok\n")),
            Err(_) => {
                failed = true;
                lines.push_str(&format!("[-]{name} failed: reason withheld\n"));
            }
        }
    }
    if failed {
        lines.push_str(&format!("{endpoint} check failed\n"));
        return text(StatusCode::INTERNAL_SERVER_ERROR, lines);
    }
    if query.contains_key("verbose") {
        lines.push_str(&format!("{endpoint} check passed\n"));
        text(StatusCode::OK, lines)
    } else {
        text(StatusCode::OK, "ok".into())
    }
}

async fn non_resource(
    api: &ApiServer,
    info: &RequestInfo,
    query: &rest::Query,
    accept: &str,
    if_none_match: Option<&str>,
) -> Response {
    if info.verb != "get" && info.verb != "head" {
        return ApiError::page_not_found().into_response();
    }
    let path = info.path.trim_end_matches('/');
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        [] => json(StatusCode::OK, &discovery::root_paths(), "application/json"),
        ["api"] => match discovery::wants_aggregated(accept) {
            Some(v) => json(
                StatusCode::OK,
                &discovery::aggregated(true, v),
                aggregated_ct(v),
            ),
            None => json(
                StatusCode::OK,
                &discovery::api_versions(&api.server_address),
                "application/json",
            ),
        },
        ["apis"] => match discovery::wants_aggregated(accept) {
            Some(v) => json(
                StatusCode::OK,
                &discovery::aggregated(false, v),
                aggregated_ct(v),
            ),
            None => json(
                StatusCode::OK,
                &discovery::api_group_list(),
                "application/json",
            ),
        },
        ["api", version] => match discovery::api_resource_list("", version) {
            Some(doc) => json(StatusCode::OK, &doc, "application/json"),
            None => ApiError::page_not_found().into_response(),
        },
        ["apis", group] => match discovery::api_group(group) {
            Some(doc) => json(StatusCode::OK, &doc, "application/json"),
            None => ApiError::page_not_found().into_response(),
        },
        ["apis", group, version] => match discovery::api_resource_list(group, version) {
            Some(doc) => json(StatusCode::OK, &doc, "application/json"),
            None => ApiError::page_not_found().into_response(),
        },
        ["version"] => json(StatusCode::OK, &discovery::version(), "application/json"),
        [endpoint @ ("healthz" | "livez" | "readyz")] => health(api, endpoint, None, query).await,
        [endpoint @ ("healthz" | "livez" | "readyz"), check] => {
            health(api, endpoint, Some(check), query).await
        }
        ["openapi", "v2"] => openapi_response(if_none_match, &openapi::v2_document(), None),
        ["openapi", "v3"] => json(StatusCode::OK, &openapi::v3_index(), "application/json"),
        ["openapi", "v3", rest @ ..] => {
            let p = rest.join("/");
            match openapi::v3_document(&p) {
                Some(doc) => openapi_response(if_none_match, &doc, openapi::v3_hash(&p)),
                None => ApiError::page_not_found().into_response(),
            }
        }
        _ => ApiError::page_not_found().into_response(),
    }
}

fn aggregated_ct(version: &str) -> &'static str {
    if version == "v2" {
        discovery::AGGREGATED_CONTENT_TYPE
    } else {
        discovery::AGGREGATED_V2BETA1_CONTENT_TYPE
    }
}

/// OpenAPI documents are large and immutable for a build: serve them with an ETag.
fn openapi_response(if_none_match: Option<&str>, doc: &Value, hash: Option<String>) -> Response {
    let etag = hash.map(|h| format!("\"{h}\""));
    if let Some(tag) = &etag
        && if_none_match == Some(tag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut r = json(StatusCode::OK, doc, "application/json");
    if let Some(tag) = etag
        && let Ok(v) = HeaderValue::from_str(&tag)
    {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Errors starting the HTTPS listener.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The rustls configuration: our serving certificate, and client certificates signed by our
/// CA accepted but not required (requests without one are anonymous or use a token).
pub fn tls_config(pki: &Pki) -> Result<rustls::ServerConfig, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<_> = rustls_pemfile::certs(&mut pki.serving_cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("serving certificate: {e}")))?;
    let key = rustls_pemfile::private_key(&mut pki.serving_key_pem.as_bytes())
        .map_err(|e| ServeError::Tls(format!("serving key: {e}")))?
        .ok_or_else(|| ServeError::Tls("serving key: no key in PEM".into()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pki.ca_cert_pem.as_bytes()) {
        let c = c.map_err(|e| ServeError::Tls(format!("CA certificate: {e}")))?;
        roots
            .add(c)
            .map_err(|e| ServeError::Tls(format!("CA certificate: {e}")))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| ServeError::Tls(format!("client verifier: {e}")))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Serves HTTPS on an already-bound listener until `handle` is told to shut down.
pub async fn serve_https(
    api: Arc<ApiServer>,
    listener: std::net::TcpListener,
    tls: rustls::ServerConfig,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
    listener.set_nonblocking(true)?;
    let app = router(api);
    axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(app.into_make_service())
        .await
}
