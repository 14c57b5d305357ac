//! Field errors: what a strategy's validation returns, and what becomes `details.causes` of a
//! `422 Invalid` (apimachinery's `field.ErrorList`).

use serde_json::Value;
use std::fmt;

/// The cause type of one field error, as it appears in `details.causes[].reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Invalid,
    NotSupported,
    Forbidden,
    Duplicate,
    TooLong,
    TooMany,
    NotFound,
    TypeInvalid,
    Internal,
}

impl ErrorType {
    /// The `reason` string of a Status cause.
    pub fn cause_type(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
            ErrorType::Internal => "InternalError",
        }
    }
}

/// One validation error at a field path such as `spec.template.spec.restartPolicy`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: String,
    /// The offending value, already rendered the way apimachinery prints it
    /// (strings quoted, numbers bare); `None` when the error type prints no value.
    pub value: Option<String>,
    pub detail: String,
}

/// Renders a JSON value the way `field.Invalid` prints it: strings quoted, numbers and
/// booleans bare, anything else as compact JSON.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }
    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Invalid,
            field: field.into(),
            value: Some(render_value(value)),
            detail: detail.into(),
        }
    }
    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        FieldError {
            kind: ErrorType::NotSupported,
            field: field.into(),
            value: Some(render_value(value)),
            detail: if supported.is_empty() {
                String::new()
            } else {
                format!("supported values: {list}")
            },
        }
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            kind: ErrorType::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        FieldError {
            kind: ErrorType::Duplicate,
            field: field.into(),
            value: Some(render_value(value)),
            detail: String::new(),
        }
    }
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            kind: ErrorType::TooLong,
            field: field.into(),
            value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }
    pub fn not_found(field: impl Into<String>, value: &Value) -> Self {
        FieldError {
            kind: ErrorType::NotFound,
            field: field.into(),
            value: Some(render_value(value)),
            detail: String::new(),
        }
    }
    /// An immutable field was changed (`apimachinery` `ValidateImmutableField`).
    pub fn immutable(field: impl Into<String>, value: &Value) -> Self {
        FieldError::invalid(field, value, "field is immutable")
    }

    /// The message after the field path, e.g. `Invalid value: "x": detail`.
    pub fn body(&self) -> String {
        let head = match self.kind {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotFound => "Not found",
            ErrorType::TypeInvalid => "Invalid value",
            ErrorType::Internal => "Internal error",
        };
        let mut s = head.to_string();
        if let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Field errors, in the order validation found them.
pub type ErrorList = Vec<FieldError>;

/// Builds a field path from a base and a child, `a.b` or `a[0]`.
pub fn child(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

pub fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

pub fn key(base: &str, k: &str) -> String {
    format!("{base}[{k}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_error_quotes_strings_and_prints_numbers_bare() {
        let e = FieldError::invalid(
            "metadata.name",
            &json!("Bad_Name"),
            "a lowercase RFC 1123 subdomain",
        );
        assert_eq!(
            e.to_string(),
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        );
        let e = FieldError::invalid(
            "spec.backoffLimit",
            &json!(-1),
            "must be greater than or equal to 0",
        );
        assert_eq!(
            e.to_string(),
            "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"
        );
    }

    #[test]
    fn required_and_not_supported_render_like_apimachinery() {
        let e = FieldError::required(
            "spec.template.spec.restartPolicy",
            "valid values: \"OnFailure\", \"Never\"",
        );
        assert_eq!(
            e.to_string(),
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        );
        let e = FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            &json!("Always"),
            &["OnFailure", "Never"],
        );
        assert_eq!(
            e.to_string(),
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
        );
    }
}
