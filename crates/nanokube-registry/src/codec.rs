//! Decoding request bodies against the typed schema of a kind (the k8s-openapi types), the
//! way the apiserver's strict decoder does: fields the schema does not know are dropped and
//! reported by path, type mismatches fail the decode.

use crate::strategy::Decoded;
use serde_json::Value;

/// Typed round trip through the k8s-openapi type `T`.
///
/// `apiVersion` and `kind` are checked by the REST layer (and served at several versions), so
/// they are taken out before decoding and put back unchanged afterwards. Unknown fields are
/// the non-null paths of the input that are absent after the round trip, in upstream's
/// notation (`spec.foo`, `spec.template.spec.containers[0].bar`); free-form maps (labels,
/// annotations, data) keep every key and so never report any. `Err` is the serde message.
pub fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(
    object: Value,
) -> Result<Decoded, String> {
    let mut input = object;
    let api_version = take(&mut input, "apiVersion");
    let kind = take(&mut input, "kind");
    let typed: T = serde_json::from_value(input.clone()).map_err(|e| e.to_string())?;
    let mut output = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown_fields = Vec::new();
    collect_unknown(&input, &output, "", &mut unknown_fields);
    if let Some(map) = output.as_object_mut() {
        // Put the envelope back first, in the order objects are conventionally written.
        let rest = std::mem::take(map);
        for (k, v) in [("apiVersion", api_version), ("kind", kind)] {
            match v {
                Some(v) => {
                    map.insert(k.to_string(), v);
                }
                None => {
                    if let Some(v) = rest.get(k) {
                        map.insert(k.to_string(), v.clone());
                    }
                }
            }
        }
        for (k, v) in rest {
            if k != "apiVersion" && k != "kind" {
                map.insert(k, v);
            }
        }
    }
    Ok(Decoded {
        object: output,
        unknown_fields,
    })
}

fn take(v: &mut Value, k: &str) -> Option<Value> {
    v.as_object_mut()
        .and_then(|m| m.remove(k))
        .filter(|v| !v.is_null())
}

fn collect_unknown(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                if v.is_null() {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match o.get(k) {
                    Some(ov) => collect_unknown(v, ov, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                collect_unknown(iv, ov, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::Job;
    use serde_json::json;

    #[test]
    fn roundtrip_reports_unknown_fields_and_keeps_known_ones() {
        let input = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "sleepy", "labels": {"any": "thing"}},
            "spec": {
                "foo": 1,
                "backoffLimit": 4,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "bar": true, "args": ["3"]}]
                }}
            }
        });
        let d = roundtrip::<Job>(input).expect("decodes");
        assert_eq!(
            d.unknown_fields,
            vec!["spec.foo", "spec.template.spec.containers[0].bar"]
        );
        assert_eq!(d.object["apiVersion"], "batch/v1");
        assert_eq!(d.object["metadata"]["labels"]["any"], "thing");
        assert_eq!(d.object["spec"]["backoffLimit"], 4);
        assert_eq!(
            d.object["spec"]["template"]["spec"]["containers"][0]["args"],
            json!(["3"])
        );
        assert!(d.object["spec"].get("foo").is_none());
    }

    #[test]
    fn roundtrip_fails_on_type_mismatch() {
        let err =
            roundtrip::<Job>(json!({"spec": {"backoffLimit": "x"}})).expect_err("type mismatch");
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn roundtrip_keeps_a_foreign_api_version() {
        let d = roundtrip::<k8s_openapi::api::batch::v1::CronJob>(json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "spec": {"schedule": "* * * * *"}})).expect("decodes");
        assert_eq!(d.object["apiVersion"], "batch/v1beta1");
        assert!(d.unknown_fields.is_empty());
    }
}
