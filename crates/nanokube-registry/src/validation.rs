//! Generic validation shared by every kind: apimachinery's name rules
//! (`pkg/util/validation`), `ValidateObjectMeta` / `ValidateObjectMetaUpdate`, label and
//! annotation rules, label selectors, and the small JSON accessors the strategies use to read
//! objects that may be any JSON at all (a wrong type reads as absent, never a panic).

use crate::field::{ErrorList, FieldError, child, index, key};
use crate::strategy::NameRule;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------------
// JSON accessors
// ---------------------------------------------------------------------------------------------

/// The value at a path of object keys, if every step exists.
pub fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

/// The string at a path; absent or not a string reads as `None`.
pub fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// The string at a path, or `""`.
pub fn str_or_empty<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get_str(v, path).unwrap_or("")
}

pub fn get_i64(v: &Value, path: &[&str]) -> Option<i64> {
    get(v, path).and_then(Value::as_i64)
}

pub fn get_bool(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

pub fn get_array<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn get_object<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(v, path).and_then(Value::as_object)
}

/// The object at `path`, created (as `{}`) along the way when missing or `null`. `None` when
/// something on the path exists but is not an object.
pub fn object_at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = v;
    for k in path {
        let map = cur.as_object_mut()?;
        let entry = map.entry(k.to_string()).or_insert(Value::Null);
        if entry.is_null() {
            *entry = Value::Object(Map::new());
        }
        cur = entry;
    }
    cur.as_object_mut()
}

/// Sets `map[k] = value` unless the key holds a non-null value already (scheme defaulting).
pub fn set_default(map: &mut Map<String, Value>, k: &str, value: Value) {
    match map.get(k) {
        Some(v) if !v.is_null() => {}
        _ => {
            map.insert(k.to_string(), value);
        }
    }
}

/// A string map (`labels`, `matchLabels`, `nodeSelector`) as `(key, value)` pairs; entries
/// that are not strings are skipped (decoding rejects them before validation runs).
pub fn string_map(v: Option<&Value>) -> Vec<(&str, &str)> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.as_str(), s)))
                .collect()
        })
        .unwrap_or_default()
}

/// Renders a string map the way Go's `%#v` prints a `map[string]string` (keys sorted), which
/// is how upstream shows label maps in `Invalid value:` messages.
pub fn go_string_map(v: Option<&Value>) -> String {
    let mut pairs = string_map(v);
    pairs.sort();
    let body = pairs
        .iter()
        .map(|(k, v)| format!("{k:?}:{v:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("map[string]string{{{body}}}")
}

/// An `Invalid value` error whose value is already rendered (Go structs and maps).
pub fn invalid_rendered(
    field: impl Into<String>,
    rendered: String,
    detail: impl Into<String>,
) -> FieldError {
    FieldError {
        kind: crate::field::ErrorType::Invalid,
        field: field.into(),
        value: Some(rendered),
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// apimachinery pkg/util/validation
// ---------------------------------------------------------------------------------------------

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_ERR: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
pub const QUALIFIED_NAME_MAX: usize = 63;
pub const LABEL_VALUE_MAX: usize = 63;
/// `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

/// apimachinery `RegexError`: the message, examples and the regex the value failed.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            is_lower_alnum(f)
                && is_lower_alnum(l)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// apimachinery `IsDNS1123Label`.
pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !matches_dns1123_label(s) {
        errs.push(regex_error(
            DNS1123_LABEL_ERR,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// apimachinery `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !s.split('.').all(matches_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn matches_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// apimachinery `IsQualifiedName`: `[prefix/]name` with a DNS-subdomain prefix.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                for msg in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !matches_qualified_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// apimachinery `IsValidLabelValue`.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !value.is_empty() && !matches_qualified_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// apimachinery `IsConfigMapKey` (Secret and ConfigMap data keys).
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        errs.push(regex_error(
            CONFIG_KEY_ERR,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_string());
    } else if value == ".." {
        errs.push("must not be '..'".to_string());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// apimachinery `IsValidPathSegmentName` (RBAC object names).
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

fn is_valid_path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// apimachinery `IsInRange`-style message used for ports.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// The name rule of a kind applied to a name (or, with `prefix`, a `generateName`, whose
/// trailing dash is ignored as upstream's `maskTrailingDash` does).
pub fn validate_name(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = if prefix && rule != NameRule::PathSegment && name.len() > 1 && name.ends_with('-') {
        masked = format!("{}a", &name[..name.len() - 1]);
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::Label => is_dns1123_label(name),
        NameRule::PathSegment if prefix => is_valid_path_segment_prefix(name),
        NameRule::PathSegment => is_valid_path_segment_name(name),
    }
}

// ---------------------------------------------------------------------------------------------
// Labels, annotations, selectors
// ---------------------------------------------------------------------------------------------

/// apimachinery `ValidateLabelName`.
pub fn validate_label_name(name: &str, path: &str) -> ErrorList {
    is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, &Value::from(name), m))
        .collect()
}

/// apimachinery `ValidateLabels`: qualified keys, valid values. Errors are on `path` itself.
pub fn validate_labels(labels: Option<&Value>, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    let Some(labels) = labels else { return errs };
    if labels.is_null() {
        return errs;
    }
    let Some(map) = labels.as_object() else {
        errs.push(FieldError::invalid(
            path,
            labels,
            "must be a map of strings",
        ));
        return errs;
    };
    for (k, v) in map {
        errs.extend(validate_label_name(k, path));
        match v.as_str() {
            Some(s) => {
                for m in is_valid_label_value(s) {
                    errs.push(FieldError::invalid(path, v, m));
                }
            }
            None => errs.push(FieldError::invalid(path, v, "must be a string")),
        }
    }
    errs
}

/// apimachinery `ValidateAnnotations`: qualified keys (checked lower-cased) and a total size
/// limit of 256 KiB.
pub fn validate_annotations(annotations: Option<&Value>, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut total = 0usize;
    for (k, v) in map {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, &Value::from(k.as_str()), m));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE));
    }
    errs
}

/// apimachinery `ValidateLabelSelector` on a `metav1.LabelSelector` JSON object.
pub fn validate_label_selector(selector: Option<&Value>, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return errs;
    };
    errs.extend(validate_labels(
        sel.get("matchLabels"),
        &child(path, "matchLabels"),
    ));
    let exprs_path = child(path, "matchExpressions");
    for (i, e) in get_array(sel, &["matchExpressions"]).iter().enumerate() {
        let p = index(&exprs_path, i);
        let op = str_or_empty(e, &["operator"]);
        let values = get_array(e, &["values"]);
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                child(&p, "operator"),
                &Value::from(op),
                "not a valid selector operator",
            )),
        }
        errs.extend(validate_label_name(
            str_or_empty(e, &["key"]),
            &child(&p, "key"),
        ));
        for (j, v) in values.iter().enumerate() {
            for m in is_valid_label_value(v.as_str().unwrap_or("")) {
                errs.push(FieldError::invalid(index(&child(&p, "values"), j), v, m));
            }
        }
    }
    errs
}

/// Whether a `metav1.LabelSelector` is empty (matches everything).
pub fn selector_is_empty(selector: Option<&Value>) -> bool {
    let Some(sel) = selector else { return true };
    get_object(sel, &["matchLabels"]).is_none_or(Map::is_empty)
        && get_array(sel, &["matchExpressions"]).is_empty()
}

/// Whether `labels` satisfy a `metav1.LabelSelector` (`LabelSelectorAsSelector(...).Matches`).
/// An invalid operator matches nothing.
pub fn selector_matches(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return false;
    };
    let labels = string_map(labels);
    let lookup = |k: &str| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v);
    for (k, v) in string_map(sel.get("matchLabels")) {
        if lookup(k) != Some(v) {
            return false;
        }
    }
    for e in get_array(sel, &["matchExpressions"]) {
        let k = str_or_empty(e, &["key"]);
        let values: Vec<&str> = get_array(e, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let ok = match (str_or_empty(e, &["operator"]), lookup(k)) {
            ("In", Some(v)) => values.contains(&v),
            ("In", None) => false,
            ("NotIn", Some(v)) => !values.contains(&v),
            ("NotIn", None) => true,
            ("Exists", found) => found.is_some(),
            ("DoesNotExist", found) => found.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `ValidateNonnegativeField` on an optional integer field of `obj` at `path` (JSON keys).
pub fn validate_nonnegative(obj: &Value, keys: &[&str], path: &str) -> ErrorList {
    match get(obj, keys) {
        Some(v) if v.as_i64().is_some_and(|n| n < 0) => {
            vec![FieldError::invalid(
                path,
                v,
                "must be greater than or equal to 0",
            )]
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// ObjectMeta
// ---------------------------------------------------------------------------------------------

/// apimachinery `ValidateObjectMeta` for create: name (or generateName), namespace scope,
/// generation, labels, annotations, ownerReferences and finalizers.
pub fn validate_object_meta(object: &Value, namespaced: bool, rule: NameRule) -> ErrorList {
    let mut errs = Vec::new();
    let meta = object.get("metadata").unwrap_or(&Value::Null);
    let name = str_or_empty(meta, &["name"]);
    let generate_name = str_or_empty(meta, &["generateName"]);
    if !generate_name.is_empty() {
        for m in validate_name(rule, generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                &Value::from(generate_name),
                m,
            ));
        }
    }
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for m in validate_name(rule, name, false) {
            errs.push(FieldError::invalid("metadata.name", &Value::from(name), m));
        }
    }
    let namespace = str_or_empty(meta, &["namespace"]);
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for m in is_dns1123_label(namespace) {
                errs.push(FieldError::invalid(
                    "metadata.namespace",
                    &Value::from(namespace),
                    m,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errs.extend(validate_meta_common(meta));
    errs
}

/// What create and update share: generation, labels, annotations, owner references,
/// finalizers.
fn validate_meta_common(meta: &Value) -> ErrorList {
    let mut errs = validate_nonnegative(meta, &["generation"], "metadata.generation");
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"));
    errs.extend(validate_annotations(
        meta.get("annotations"),
        "metadata.annotations",
    ));
    errs.extend(validate_owner_references(meta));
    for (i, f) in get_array(meta, &["finalizers"]).iter().enumerate() {
        let s = f.as_str().unwrap_or("");
        for m in is_qualified_name(s) {
            errs.push(FieldError::invalid(index("metadata.finalizers", i), f, m));
        }
    }
    errs
}

fn validate_owner_references(meta: &Value) -> ErrorList {
    let mut errs = Vec::new();
    let mut controllers = Vec::new();
    for r in get_array(meta, &["ownerReferences"]) {
        let p = "metadata.ownerReferences";
        let api_version = str_or_empty(r, &["apiVersion"]);
        if api_version.is_empty() {
            errs.push(FieldError::invalid(
                child(p, "apiVersion"),
                &Value::from(api_version),
                "version must not be empty",
            ));
        }
        if str_or_empty(r, &["kind"]).is_empty() {
            errs.push(FieldError::invalid(
                child(p, "kind"),
                &Value::from(""),
                "kind must not be empty",
            ));
        }
        if str_or_empty(r, &["name"]).is_empty() {
            errs.push(FieldError::invalid(
                child(p, "name"),
                &Value::from(""),
                "name must not be empty",
            ));
        }
        if str_or_empty(r, &["uid"]).is_empty() {
            errs.push(FieldError::invalid(
                child(p, "uid"),
                &Value::from(""),
                "uid must not be empty",
            ));
        }
        if get_bool(r, &["controller"]) == Some(true) {
            controllers.push(str_or_empty(r, &["name"]).to_string());
        }
    }
    if controllers.len() > 1 {
        errs.push(FieldError::invalid(
            "metadata.ownerReferences",
            &Value::Null,
            format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
    errs
}

/// apimachinery `ValidateObjectMetaUpdate`: name, namespace, uid and creationTimestamp are
/// immutable, deletion fields may change only through deletion, and the new labels,
/// annotations, owner references and finalizers must be valid. This is the complete metadata
/// validation of an update (call it instead of [`validate_object_meta`]).
pub fn validate_object_meta_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = Vec::new();
    let nm = new.get("metadata").unwrap_or(&Value::Null);
    let om = old.get("metadata").unwrap_or(&Value::Null);
    for field in ["name", "namespace", "uid", "creationTimestamp"] {
        let nv = nm.get(field).filter(|v| !v.is_null());
        let ov = om.get(field).filter(|v| !v.is_null());
        if nv != ov {
            errs.push(FieldError::immutable(
                child("metadata", field),
                nv.unwrap_or(&Value::from("")),
            ));
        }
    }
    for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        let nv = nm.get(field).filter(|v| !v.is_null());
        let ov = om.get(field).filter(|v| !v.is_null());
        if ov.is_some() && nv != ov {
            errs.push(FieldError::invalid(
                child("metadata", field),
                nv.unwrap_or(&Value::Null),
                "field is immutable; may only be changed via deletion",
            ));
        }
    }
    errs.extend(validate_meta_common(nm));
    errs
}

/// `ValidateImmutableField` on a JSON sub-value (`null` and absent are the same).
pub fn validate_immutable(new: Option<&Value>, old: Option<&Value>, path: &str) -> ErrorList {
    let n = new.filter(|v| !v.is_null());
    let o = old.filter(|v| !v.is_null());
    if n == o {
        Vec::new()
    } else {
        vec![FieldError::immutable(path, n.unwrap_or(&Value::Null))]
    }
}

/// A `field.Invalid` for each message of a name check.
pub fn invalid_each(path: &str, value: &str, msgs: Vec<String>) -> ErrorList {
    msgs.into_iter()
        .map(|m| FieldError::invalid(path, &Value::from(value), m))
        .collect()
}

/// `field.Path.Key` for a label key under a path.
pub fn label_path(base: &str, k: &str) -> String {
    key(base, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_name_is_rejected_with_the_full_upstream_text() {
        let obj = json!({"metadata": {"name": "Bad_Name", "namespace": "default"}});
        let errs = validate_object_meta(&obj, true, NameRule::Subdomain);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn missing_name_requires_name_or_generate_name() {
        let errs = validate_object_meta(
            &json!({"metadata": {"namespace": "a"}}),
            true,
            NameRule::Subdomain,
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn dns_label_rules_follow_apimachinery() {
        assert!(is_dns1123_label("my-name").is_empty());
        assert_eq!(
            is_dns1123_label("a.b"),
            vec![
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(
            is_dns1123_label(&"a".repeat(64))[0],
            "must be no more than 63 characters"
        );
        assert!(is_dns1123_subdomain("example.com").is_empty());
        assert!(!is_dns1123_subdomain("a..b").is_empty());
    }

    #[test]
    fn generate_name_trailing_dash_is_allowed() {
        let obj = json!({"metadata": {"generateName": "sleepy-", "name": "sleepy-abcde", "namespace": "d"}});
        assert!(validate_object_meta(&obj, true, NameRule::Subdomain).is_empty());
    }

    #[test]
    fn labels_and_annotations_are_checked() {
        let obj = json!({"metadata": {"name": "x", "labels": {"bad key!": "v", "ok": "bad value!"}, "annotations": {"/x": "y"}}});
        let errs = validate_object_meta(&obj, false, NameRule::Subdomain);
        let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(
            texts[0].starts_with(
                "metadata.labels: Invalid value: \"bad key!\": name part must consist of"
            ),
            "{texts:?}"
        );
        assert!(
            texts[1].starts_with(
                "metadata.labels: Invalid value: \"bad value!\": a valid label must be"
            ),
            "{texts:?}"
        );
        assert_eq!(
            texts[2],
            "metadata.annotations: Invalid value: \"/x\": prefix part must be non-empty"
        );
    }

    #[test]
    fn cluster_scoped_objects_may_not_have_a_namespace() {
        let errs = validate_object_meta(
            &json!({"metadata": {"name": "n", "namespace": "x"}}),
            false,
            NameRule::Label,
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
    }

    #[test]
    fn metadata_update_keeps_uid_immutable() {
        let old = json!({"metadata": {"name": "a", "uid": "1"}});
        let new = json!({"metadata": {"name": "a", "uid": "2"}});
        let errs = validate_object_meta_update(&new, &old);
        assert_eq!(
            errs[0].to_string(),
            "metadata.uid: Invalid value: \"2\": field is immutable"
        );
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = json!({"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "In", "values": ["d"]}]});
        assert!(selector_matches(
            Some(&sel),
            Some(&json!({"a": "b", "c": "d"}))
        ));
        assert!(!selector_matches(Some(&sel), Some(&json!({"a": "b"}))));
        let bad = json!({"matchExpressions": [{"key": "c", "operator": "In"}]});
        assert_eq!(
            validate_label_selector(Some(&bad), "spec.selector")[0].to_string(),
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
    }
}
