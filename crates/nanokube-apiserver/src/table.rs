//! `meta.k8s.io` Table responses (server-side printing for `kubectl get`), built from the
//! registry's printers.

use crate::objects;
use chrono::{DateTime, Utc};
use nanokube_registry::printers;
use nanokube_registry::resource::ResourceInfo;
use serde_json::{Map, Value, json};

/// The response Content-Type of a Table at `version`.
pub fn content_type(version: &str) -> &'static str {
    if version == "v1beta1" {
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    } else {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    }
}

/// A Table of `items`; each row carries its object as `includeObject` asks (`Metadata`, the
/// default, gives PartialObjectMetadata; `Object` the whole object; `None` nothing).
pub fn table(
    res: &ResourceInfo,
    items: &[Value],
    now: DateTime<Utc>,
    include_object: &str,
    version: &str,
    resource_version: Option<i64>,
    continue_token: Option<&str>,
) -> Value {
    let columns: Vec<Value> = printers::columns(res)
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(printers::cells(res, obj, now)));
            match include_object {
                "None" => {}
                "Object" => {
                    row.insert("object".into(), obj.clone());
                }
                _ => {
                    row.insert("object".into(), objects::partial_metadata(obj));
                }
            }
            Value::Object(row)
        })
        .collect();
    let mut meta = Map::new();
    if let Some(rv) = resource_version {
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
    }
    if let Some(c) = continue_token {
        meta.insert("continue".into(), json!(c));
    }
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}
