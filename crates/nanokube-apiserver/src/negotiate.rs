//! Content negotiation: what representation the client accepts (object, Table,
//! PartialObjectMetadata) and how its request body is encoded (JSON or YAML).

use crate::status::ApiError;
use serde_json::Value;

/// The representation a response should take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    Object,
    /// `meta.k8s.io` Table at `v1` or `v1beta1`.
    Table(&'static str),
    PartialObjectMetadata,
    PartialObjectMetadataList,
}

/// Reads an `Accept` header. The first media type we can serve wins; an Accept that names
/// only types we cannot produce is 406.
pub fn representation(accept: Option<&str>) -> Result<Representation, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Representation::Object);
    };
    for media in accept.split(',') {
        let mut parts = media.split(';').map(str::trim);
        let base = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: Vec<(String, String)> = parts
            .filter_map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let param = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.as_str())
        };
        if !matches!(
            base.as_str(),
            "application/json" | "*/*" | "application/*" | "application/yaml"
        ) {
            continue;
        }
        match (param("as"), param("g"), param("v")) {
            (None, _, _) => return Ok(Representation::Object),
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => {
                return Ok(Representation::Table("v1"));
            }
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => {
                return Ok(Representation::Table("v1beta1"));
            }
            (Some("PartialObjectMetadata"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                return Ok(Representation::PartialObjectMetadata);
            }
            (Some("PartialObjectMetadataList"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                return Ok(Representation::PartialObjectMetadataList);
            }
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml; requested {accept:?}"
    )))
}

/// Whether a body's media type is YAML.
pub fn is_yaml(content_type: &str) -> bool {
    let base = content_type.split(';').next().unwrap_or("").trim();
    matches!(
        base,
        "application/yaml" | "application/x-yaml" | "text/yaml" | "application/apply-patch+yaml"
    )
}

/// Decodes a request body as JSON or YAML into a JSON value.
pub fn decode_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // Typed client-go clients (kubectl create configmap|secret|token, auth can-i, …) send
    // Kubernetes protobuf.
    if base == nanokube_protobuf::CONTENT_TYPE {
        return nanokube_protobuf::decode(body, &crate::openapi::property_names).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as protobuf: {e}"
            ))
        });
    }
    if !(base.is_empty()
        || base == "application/json"
        || base == "*/*"
        || base.ends_with("+json")
        || is_yaml(&base))
    {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    if is_yaml(content_type) {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid UTF-8: {e}")))?;
        return serde_saphyr::from_str::<Value>(text).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
        });
    }
    serde_json::from_slice::<Value>(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(representation(Some(a)), Ok(Representation::Table("v1")));
    }

    #[test]
    fn plain_and_missing_accept_mean_the_object() {
        assert_eq!(representation(None), Ok(Representation::Object));
        assert_eq!(
            representation(Some("application/json, */*")),
            Ok(Representation::Object)
        );
        assert_eq!(
            representation(Some("application/vnd.kubernetes.protobuf,application/json")),
            Ok(Representation::Object)
        );
    }

    #[test]
    fn protobuf_only_is_not_acceptable() {
        assert!(representation(Some("application/vnd.kubernetes.protobuf")).is_err());
    }

    #[test]
    fn yaml_bodies_decode() {
        let v = decode_body(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            "application/yaml",
        )
        .expect("yaml");
        assert_eq!(v["metadata"]["name"], "x");
        assert!(decode_body(b"{not json", "application/json").is_err());
    }
}
