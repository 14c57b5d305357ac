//! core/v1 Namespace: `pkg/registry/core/namespace/strategy.go` and `SetDefaults_Namespace`.

use super::decode_as;
use crate::field::{ErrorList, FieldError, index};
use crate::resource::{NAMESPACES, ResourceInfo};
use crate::strategy::{Decoded, NameRule, Strategy};
use crate::validation::{get, get_array, is_qualified_name, object_at, str_or_empty};
use serde_json::{Value, json};

/// The label every namespace carries with its own name (`NamespaceDefaultLabelName`).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The finalizer of the namespace controller.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

fn set_name_label(object: &mut Value) {
    let name = str_or_empty(object, &["metadata", "name"]).to_string();
    if name.is_empty() {
        return;
    }
    if let Some(labels) = object_at(object, &["metadata", "labels"]) {
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), Value::String(name));
    }
}

fn validate_finalizers(object: &Value) -> ErrorList {
    let mut errs = Vec::new();
    for (i, f) in get_array(object, &["spec", "finalizers"])
        .iter()
        .enumerate()
    {
        let name = f.as_str().unwrap_or("");
        let path = index("spec.finalizers", i);
        let msgs = is_qualified_name(name);
        if !msgs.is_empty() {
            for m in msgs {
                errs.push(FieldError::invalid(path.clone(), f, m));
            }
        } else if name != KUBERNETES_FINALIZER && !name.contains('/') {
            errs.push(FieldError::invalid(
                path,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}

pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &NAMESPACES
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::Namespace>(object)
    }
    fn default(&self, object: &mut Value) {
        set_name_label(object);
        if let Some(status) = object.get_mut("status").and_then(Value::as_object_mut)
            && status.get("phase").is_none_or(Value::is_null)
        {
            status.insert("phase".into(), json!("Active"));
        }
    }
    fn prepare_for_create(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.insert("status".into(), json!({"phase": "Active"}));
        }
        // Every namespace starts with the namespace controller's finalizer.
        if let Some(spec) = object_at(object, &["spec"]) {
            let mut finalizers: Vec<Value> = spec
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
                finalizers.push(json!(KUBERNETES_FINALIZER));
            }
            spec.insert("finalizers".into(), Value::Array(finalizers));
        }
        set_name_label(object);
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_finalizers(object)
    }
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // Spec finalizers change only through the finalize subresource; status only through
        // the status subresource.
        crate::strategy::copy_field(new, old, "status");
        let old_finalizers = get(old, &["spec", "finalizers"]).cloned();
        if let Some(spec) = object_at(new, &["spec"]) {
            match old_finalizers {
                Some(f) => {
                    spec.insert("finalizers".into(), f);
                }
                None => {
                    spec.remove("finalizers");
                }
            }
        }
        set_name_label(new);
    }
    fn tracks_generation(&self) -> bool {
        false
    }
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["status.phase"]
    }
    fn field_value(&self, object: &Value, label: &str) -> String {
        match label {
            "status.phase" => str_or_empty(object, &["status", "phase"]).to_string(),
            _ => String::new(),
        }
    }
    fn returns_deleted_object(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_gets_name_label_finalizer_and_active_phase() {
        let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"x": "y"}}});
        NamespaceStrategy.default(&mut ns);
        NamespaceStrategy.prepare_for_create(&mut ns);
        assert_eq!(
            ns["metadata"]["labels"],
            json!({"x": "y", "kubernetes.io/metadata.name": "team-a"})
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert!(NamespaceStrategy.validate(&ns).is_empty());

        let mut updated = json!({"metadata": {"name": "team-a", "labels": {}}, "spec": {}});
        NamespaceStrategy.prepare_for_update(&mut updated, &ns);
        assert_eq!(
            updated["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(updated["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(NamespaceStrategy.field_value(&ns, "status.phase"), "Active");
    }
}
