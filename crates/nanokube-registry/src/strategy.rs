//! The per-kind behaviour the generic REST store calls into, named after the hooks of the
//! Kubernetes apiserver's `rest.RESTCreateStrategy` / `RESTUpdateStrategy`.
//!
//! Objects are `serde_json::Value`s in their *storage* version. Generic metadata handling
//! (name, generateName, uid, creationTimestamp, resourceVersion, generation bookkeeping) is
//! done by the REST store itself; strategies deal only with what differs per kind.

use crate::field::ErrorList;
use crate::resource::ResourceInfo;
use serde_json::Value;

/// Which name rule a kind's `metadata.name` follows (apimachinery `path.ValidatePathSegmentName`
/// plus the DNS rules of `validation.IsDNS1123Subdomain` / `IsDNS1123Label`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Lower-case RFC 1123 subdomain, at most 253 characters (most kinds).
    Subdomain,
    /// Lower-case RFC 1123 label, at most 63 characters (namespaces, services).
    Label,
    /// Any name that is a valid path segment (not `.`/`..`, no `/` or `%`): RBAC objects.
    PathSegment,
}

/// The default `propagationPolicy` of a DELETE that names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultPropagation {
    Background,
    /// batch/v1 Jobs: their pods are orphaned unless the client asks otherwise.
    Orphan,
}

/// Where a kind with a `scale` subresource keeps its replica counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleInfo {
    /// JSON pointer of the desired replicas (`/spec/replicas`).
    pub spec_replicas: &'static str,
    /// JSON pointer of the observed replicas (`/status/replicas`).
    pub status_replicas: &'static str,
    /// JSON pointer of the label selector (`/spec/selector`).
    pub selector: &'static str,
}

/// The result of decoding a request body into a kind's schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The object as the typed schema knows it: unknown fields dropped, everything else kept.
    pub object: Value,
    /// Paths of fields the schema does not know, in upstream's notation
    /// (`spec.foo`, `spec.containers[0].bar`), in document order.
    pub unknown_fields: Vec<String>,
}

/// What a kind is, as the REST store needs it.
pub trait Strategy: Send + Sync {
    /// The resource at its storage version.
    fn resource(&self) -> &'static ResourceInfo;

    /// Decodes an incoming object against the kind's typed schema (strict decoding reports
    /// unknown fields rather than failing). `Err` is the decoder's message, which the caller
    /// wraps as `<Kind> in version "<v>" cannot be handled as a <Kind>: <err>`.
    fn decode(&self, object: Value) -> Result<Decoded, String>;

    /// Scheme defaulting, applied to every incoming object (create and update).
    fn default(&self, _object: &mut Value) {}

    /// `PrepareForCreate`: clear status, set generated fields (a Job's selector, …).
    fn prepare_for_create(&self, _object: &mut Value) {}

    /// `Validate` on create. Metadata is validated generically by the caller.
    fn validate(&self, object: &Value) -> ErrorList;

    /// `WarningsOnCreate`: texts sent as `Warning:` headers.
    fn warnings_on_create(&self, _object: &Value) -> Vec<String> {
        Vec::new()
    }

    /// `PrepareForUpdate` on the main resource: keep the stored status when the kind has a
    /// status subresource, and other kind rules.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if self.resource().subresource("status").is_some() {
            copy_field(new, old, "status");
        }
    }

    /// `ValidateUpdate`: immutable fields and the create-time rules.
    fn validate_update(&self, new: &Value, _old: &Value) -> ErrorList {
        self.validate(new)
    }

    /// `PrepareForUpdate` of the `status` subresource: keep the stored spec.
    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        copy_field(new, old, "spec");
    }

    /// `ValidateStatusUpdate`.
    fn validate_status_update(&self, _new: &Value, _old: &Value) -> ErrorList {
        Vec::new()
    }

    /// Whether the kind has a spec whose changes bump `metadata.generation`.
    fn tracks_generation(&self) -> bool {
        self.resource().subresource("status").is_some()
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    /// Field labels usable in a `fieldSelector` besides `metadata.name` and
    /// `metadata.namespace`.
    fn field_labels(&self) -> &'static [&'static str] {
        &[]
    }

    /// The value of a supported field label (`status.phase` → `"Running"`); the caller has
    /// already checked the label is supported. Absent fields are the empty string.
    fn field_value(&self, _object: &Value, _label: &str) -> String {
        String::new()
    }

    /// Whether DELETE answers with the deleted object (pods, serviceaccounts, services,
    /// namespaces) rather than a `Success` Status.
    fn returns_deleted_object(&self) -> bool {
        false
    }

    fn default_propagation(&self) -> DefaultPropagation {
        DefaultPropagation::Background
    }

    fn scale(&self) -> Option<ScaleInfo> {
        None
    }
}

/// Copies the top-level `field` of `from` into `to` (or removes it from `to` when `from`
/// lacks it).
pub fn copy_field(to: &mut Value, from: &Value, field: &str) {
    if let Some(map) = to.as_object_mut() {
        match from.get(field) {
            Some(v) => {
                map.insert(field.to_string(), v.clone());
            }
            None => {
                map.remove(field);
            }
        }
    }
}
