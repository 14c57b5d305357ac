//! Decodes Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into the
//! JSON objects nanokube's API server works on.
//!
//! kubectl's typed-clientset commands (`kubectl create configmap|secret|job|...`,
//! `kubectl create token`, `kubectl auth can-i`, `kubectl auth whoami`) send protobuf, not
//! JSON. A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` message whose
//! `typeMeta` names the apiVersion and kind and whose `raw` holds the object's own message.
//! [`decode`] turns that into exactly the JSON object the client would have sent.
//!
//! Field numbers and types come from the prost-generated sources of the `k8s-pb` crate, read
//! by `build.rs` into a table (`schema.rs`); the wire decoding (`wire.rs`) and the JSON
//! mapping, including apimachinery's custom JSON forms (`decode.rs`, `time.rs`), are ours.
//! Start at [`decode`].

mod decode;
mod error;
mod schema;
mod time;
mod wire;

pub use error::ProtobufError;

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Decodes a Kubernetes protobuf body (4-byte magic `k8s\0` + a `runtime.Unknown` message whose
/// typeMeta gives apiVersion/kind and whose `raw` is the object's message) into the JSON object
/// clients would send, including `apiVersion` and `kind`.
///
/// `property_names(definition)` returns the JSON property names of an OpenAPI definition such as
/// `io.k8s.api.core.v1.PodSpec`. They restore the JSON names whose case prost's snake_case lost
/// (`host_ipc` → `hostIPC`, `pod_ip` → `podIP`); when it returns `None`, or no property matches
/// (ignoring case and underscores), the name falls back to lowerCamelCase.
///
/// The JSON follows Go's `encoding/json` of the same object: `metav1.Time` and `MicroTime` are
/// RFC 3339 strings (a zero time is `null`), `metav1.Duration` a Go duration string, `Quantity`
/// a string, `IntOrString` a number or string, `RawExtension`/`FieldsV1` the embedded JSON,
/// bytes base64. Absent fields, empty lists and maps, and empty strings are omitted (gogo
/// protobuf writes non-pointer strings even when empty, where Go's JSON omits them).
pub fn decode(
    body: &[u8],
    property_names: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<serde_json::Value, ProtobufError> {
    decode::Decoder::new(property_names).envelope(body, 0)
}
