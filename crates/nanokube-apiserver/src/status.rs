//! API errors as Kubernetes `metav1.Status` bodies (apimachinery `pkg/api/errors`): every
//! failure a client sees goes through [`ApiError`], so codes, reasons and messages are made in
//! one place.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use nanokube_registry::field::ErrorList;
use nanokube_registry::resource::ResourceInfo;
use serde_json::{Value, json};

/// A failed request, rendered as a `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Box<Value>>,
    /// `Retry-After` seconds for 429/503 answers.
    pub retry_after: Option<u64>,
    /// Go's plain-text `404 page not found` instead of a Status body.
    pub plain_not_found: bool,
}

pub type ApiResult<T> = Result<T, ApiError>;

fn details(info: &ResourceInfo, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !info.group.is_empty() {
        d.insert("group".into(), json!(info.group));
    }
    d.insert("kind".into(), json!(info.plural));
    Value::Object(d)
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            plain_not_found: false,
        }
    }

    /// An unknown path: Go's mux answer, which clients turn into "the server could not find
    /// the requested resource".
    pub fn page_not_found() -> Self {
        ApiError {
            plain_not_found: true,
            ..ApiError::new(404, "NotFound", "404 page not found")
        }
    }

    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        ApiError {
            details: Some(Box::new(details(info, name))),
            ..ApiError::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", info.qualified()),
            )
        }
    }

    /// A missing namespace on create (NamespaceLifecycle admission).
    pub fn namespace_not_found(ns: &str) -> Self {
        ApiError {
            details: Some(Box::new(json!({"name": ns, "kind": "namespaces"}))),
            ..ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
        }
    }

    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        ApiError {
            details: Some(Box::new(details(info, name))),
            ..ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", info.qualified()),
            )
        }
    }

    pub fn generate_name_conflict(info: &ResourceInfo, name: &str) -> Self {
        ApiError {
            details: Some(Box::new(details(info, name))),
            ..ApiError::new(
                409,
                "AlreadyExists",
                format!(
                    "{} \"{name}\" already exists, the server was not able to generate a unique name for the object",
                    info.qualified()
                ),
            )
        }
    }

    pub fn conflict(info: &ResourceInfo, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(Box::new(details(info, name))),
            ..ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {why}",
                    info.qualified()
                ),
            )
        }
    }

    /// The optimistic-concurrency conflict.
    pub fn modified(info: &ResourceInfo, name: &str) -> Self {
        ApiError::conflict(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `422 Invalid` with one cause per field error.
    pub fn invalid(info: &ResourceInfo, name: &str, errors: &ErrorList) -> Self {
        ApiError::invalid_kind(&info.qualified_kind(), info.group, info.kind, name, errors)
    }

    /// `422 Invalid` for a kind that is not a served resource (options objects, reviews).
    pub fn invalid_kind(
        qualified_kind: &str,
        group: &str,
        kind: &str,
        name: &str,
        errors: &ErrorList,
    ) -> Self {
        let joined = if errors.len() == 1 {
            errors[0].to_string()
        } else {
            format!(
                "[{}]",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.kind.cause_type(), "message": e.body(), "field": e.field}))
            .collect();
        let mut d = serde_json::Map::new();
        d.insert("name".into(), json!(name));
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        d.insert("causes".into(), Value::Array(causes));
        ApiError {
            details: Some(Box::new(Value::Object(d))),
            ..ApiError::new(
                422,
                "Invalid",
                format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
            )
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>, details: Option<Value>) -> Self {
        ApiError {
            details: details.map(Box::new),
            ..ApiError::new(403, "Forbidden", message)
        }
    }

    pub fn method_not_allowed(action: &str, info: &ResourceInfo) -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "{action} is not supported on resources of kind \"{}\"",
                info.qualified()
            ),
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::new(406, "NotAcceptable", message)
    }

    /// `410 Expired` (apimachinery `NewResourceExpired`).
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: {}", message.into()),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got {content_type:?}"
            ),
        )
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        let msg = err.to_string();
        ApiError {
            details: Some(Box::new(json!({"causes": [{"message": msg}]}))),
            ..ApiError::new(
                500,
                "InternalError",
                format!("Internal error occurred: {msg}"),
            )
        }
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError::new(504, "Timeout", format!("Timeout: {}", message.into()))
    }

    /// The Status object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let (Some(d), Some(map)) = (&self.details, s.as_object_mut()) {
            map.insert("details".into(), (**d).clone());
        }
        if let Some(map) = s.as_object_mut() {
            map.insert("code".into(), json!(self.code));
        }
        s
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.plain_not_found {
            let mut r = (code, "404 page not found\n").into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r.headers_mut().insert(
                "X-Content-Type-Options",
                HeaderValue::from_static("nosniff"),
            );
            return r;
        }
        let body = self.to_status().to_string();
        let mut r = (code, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nanokube_registry::field::FieldError;
    use nanokube_registry::resource::{JOBS, PODS};

    #[test]
    fn not_found_names_the_qualified_resource_and_plural_kind() {
        let s = ApiError::not_found(&JOBS, "sleepy").to_status();
        assert_eq!(s["message"], "jobs.batch \"sleepy\" not found");
        assert_eq!(
            s["details"],
            json!({"name": "sleepy", "group": "batch", "kind": "jobs"})
        );
        assert_eq!(s["code"], 404);
        let s = ApiError::not_found(&PODS, "web").to_status();
        assert_eq!(s["details"], json!({"name": "web", "kind": "pods"}));
    }

    #[test]
    fn invalid_uses_the_kind_and_lists_causes_with_reason_keys() {
        let errs = vec![FieldError::required(
            "spec.template.spec.restartPolicy",
            "valid values: \"OnFailure\", \"Never\"",
        )];
        let s = ApiError::invalid(&JOBS, "x", &errs).to_status();
        assert_eq!(
            s["message"],
            "Job.batch \"x\" is invalid: spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        );
        assert_eq!(s["details"]["kind"], "Job");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(
            s["details"]["causes"][0]["field"],
            "spec.template.spec.restartPolicy"
        );
        assert_eq!(s["code"], 422);
    }

    #[test]
    fn several_invalid_causes_are_bracketed() {
        let errs = vec![FieldError::required("a", ""), FieldError::required("b", "")];
        let s = ApiError::invalid(&PODS, "p", &errs).to_status();
        assert_eq!(
            s["message"],
            "Pod \"p\" is invalid: [a: Required value, b: Required value]"
        );
    }
}
