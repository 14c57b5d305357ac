//! Small helpers for reading and writing `metadata` of objects held as JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// `metadata`, created when missing (the object must be a JSON object; anything else is left
/// alone and a detached map is returned).
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let Some(map) = obj.as_object_mut() else {
        unreachable!("made an object above")
    };
    let entry = map.entry("metadata").or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry.as_object_mut() {
        Some(m) => m,
        None => unreachable!("made an object above"),
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .filter(|s| !s.is_empty())
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn set_meta(obj: &mut Value, field: &str, value: Value) {
    meta_mut(obj).insert(field.to_string(), value);
}

pub fn remove_meta(obj: &mut Value, field: &str) {
    meta_mut(obj).remove(field);
}

/// The strings of the array at `pointer` (absent, or non-string entries, give nothing).
pub fn strings_at(obj: &Value, pointer: &str) -> Vec<String> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    strings_at(obj, "/metadata/finalizers")
}

pub fn set_finalizers(obj: &mut Value, fins: &[String]) {
    if fins.is_empty() {
        remove_meta(obj, "finalizers");
    } else {
        set_meta(obj, "finalizers", json!(fins));
    }
}

/// Drops what Go's `omitempty` would drop from `ObjectMeta`'s collections: an empty (or
/// null) `labels`, `annotations`, `finalizers`, `ownerReferences` or `managedFields` is not
/// serialised by a real API server, so removing the last finalizer leaves no
/// `"finalizers": []` behind.
pub fn drop_empty_meta(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for field in [
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "managedFields",
    ] {
        let empty = match meta.get(field) {
            Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        if empty {
            meta.remove(field);
        }
    }
}

/// RFC 3339 with second precision, as `metav1.Time` serialises.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn set_api_version(obj: &mut Value, api_version: &str) {
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(api_version));
    }
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_meta_collections_are_not_kept() {
        let mut obj = json!({"metadata": {
            "name": "p",
            "labels": {},
            "annotations": null,
            "finalizers": [],
            "ownerReferences": [],
            "managedFields": [],
        }});
        drop_empty_meta(&mut obj);
        assert_eq!(obj, json!({"metadata": {"name": "p"}}));
        let mut kept = json!({"metadata": {"labels": {"a": "b"}, "finalizers": ["x"]}});
        let before = kept.clone();
        drop_empty_meta(&mut kept);
        assert_eq!(kept, before);
    }
}
