//! rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding, ClusterRoleBinding
//! (`pkg/apis/rbac/validation`, `pkg/apis/rbac/v1/defaults.go`).

use super::decode_as;
use crate::field::{ErrorList, FieldError, child, index};
use crate::resource::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, ResourceInfo};
use crate::strategy::{Decoded, NameRule, Strategy};
use crate::validation::{
    get, get_array, invalid_each, invalid_rendered, is_dns1123_subdomain,
    is_valid_path_segment_name, set_default, str_or_empty, validate_label_selector,
};
use serde_json::{Value, json};

pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `ValidatePolicyRule` for `rules[i]`.
fn validate_rules(object: &Value, namespaced: bool) -> ErrorList {
    let mut errs = Vec::new();
    for (i, rule) in get_array(object, &["rules"]).iter().enumerate() {
        let p = index("rules", i);
        if get_array(rule, &["verbs"]).is_empty() {
            errs.push(FieldError::required(
                child(&p, "verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = get_array(rule, &["nonResourceURLs"]);
        if !urls.is_empty() {
            let urls_value = Value::Array(urls.to_vec());
            if namespaced {
                errs.push(FieldError::invalid(
                    child(&p, "nonResourceURLs"),
                    &urls_value,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !get_array(rule, &["apiGroups"]).is_empty()
                || !get_array(rule, &["resources"]).is_empty()
                || !get_array(rule, &["resourceNames"]).is_empty()
            {
                errs.push(FieldError::invalid(
                    child(&p, "nonResourceURLs"),
                    &urls_value,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if get_array(rule, &["apiGroups"]).is_empty() {
            errs.push(FieldError::required(
                child(&p, "apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if get_array(rule, &["resources"]).is_empty() {
            errs.push(FieldError::required(
                child(&p, "resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

/// `SetDefaults_Subject` / `SetDefaults_RoleBinding`.
fn default_binding(object: &mut Value) {
    if let Some(rr) = object.get_mut("roleRef").and_then(Value::as_object_mut) {
        set_default(rr, "apiGroup", json!(RBAC_GROUP));
        if rr.get("apiGroup").and_then(Value::as_str) == Some("") {
            rr.insert("apiGroup".into(), json!(RBAC_GROUP));
        }
    }
    if let Some(Value::Array(subjects)) = object.get_mut("subjects") {
        for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
            let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
            let group_empty = s
                .get("apiGroup")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty();
            if group_empty {
                match kind {
                    "User" | "Group" => {
                        s.insert("apiGroup".into(), json!(RBAC_GROUP));
                    }
                    "ServiceAccount" => {
                        s.insert("apiGroup".into(), json!(""));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`.
fn validate_binding(object: &Value, namespaced: bool) -> ErrorList {
    let mut errs = Vec::new();
    let rr = object.get("roleRef").unwrap_or(&Value::Null);
    let group = str_or_empty(rr, &["apiGroup"]);
    if group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            &Value::from(group),
            &[RBAC_GROUP],
        ));
    }
    let kind = str_or_empty(rr, &["kind"]);
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            &Value::from(kind),
            kinds,
        ));
    }
    let name = str_or_empty(rr, &["name"]);
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        errs.extend(invalid_each(
            "roleRef.name",
            name,
            is_valid_path_segment_name(name),
        ));
    }
    for (i, s) in get_array(object, &["subjects"]).iter().enumerate() {
        let p = index("subjects", i);
        let name = str_or_empty(s, &["name"]);
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        let group = str_or_empty(s, &["apiGroup"]);
        match str_or_empty(s, &["kind"]) {
            "ServiceAccount" => {
                if !name.is_empty() {
                    errs.extend(invalid_each(
                        &child(&p, "name"),
                        name,
                        is_dns1123_subdomain(name),
                    ));
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        child(&p, "apiGroup"),
                        &Value::from(group),
                        &[""],
                    ));
                }
                if !namespaced && str_or_empty(s, &["namespace"]).is_empty() {
                    errs.push(FieldError::required(child(&p, "namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        child(&p, "apiGroup"),
                        &Value::from(group),
                        &[RBAC_GROUP],
                    ));
                }
            }
            k => errs.push(FieldError::not_supported(
                child(&p, "kind"),
                &Value::from(k),
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    errs
}

/// Go's `%#v` of an `rbac.RoleRef`, the value upstream prints for a changed roleRef.
fn render_role_ref(rr: Option<&Value>) -> String {
    let rr = rr.unwrap_or(&Value::Null);
    format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        str_or_empty(rr, &["apiGroup"]),
        str_or_empty(rr, &["kind"]),
        str_or_empty(rr, &["name"])
    )
}

fn validate_role_ref_update(new: &Value, old: &Value) -> ErrorList {
    if new.get("roleRef") == old.get("roleRef") {
        Vec::new()
    } else {
        vec![invalid_rendered(
            "roleRef",
            render_role_ref(new.get("roleRef")),
            "cannot change roleRef",
        )]
    }
}

pub struct RoleStrategy;
pub struct ClusterRoleStrategy;
pub struct RoleBindingStrategy;
pub struct ClusterRoleBindingStrategy;

impl Strategy for RoleStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &ROLES
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::rbac::v1::Role>(object)
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_rules(object, true)
    }
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

impl Strategy for ClusterRoleStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &CLUSTER_ROLES
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::rbac::v1::ClusterRole>(object)
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = validate_rules(object, false);
        for (i, sel) in get_array(object, &["aggregationRule", "clusterRoleSelectors"])
            .iter()
            .enumerate()
        {
            errs.extend(validate_label_selector(
                Some(sel),
                &index("aggregationRule.clusterRoleSelectors", i),
            ));
        }
        if get(object, &["aggregationRule"]).is_some_and(|a| !a.is_null())
            && get_array(object, &["aggregationRule", "clusterRoleSelectors"]).is_empty()
        {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "",
            ));
        }
        errs
    }
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

impl Strategy for RoleBindingStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &ROLE_BINDINGS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::rbac::v1::RoleBinding>(object)
    }
    fn default(&self, object: &mut Value) {
        default_binding(object);
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_binding(object, true)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_role_ref_update(new, old));
        errs
    }
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

impl Strategy for ClusterRoleBindingStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &CLUSTER_ROLE_BINDINGS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(object)
    }
    fn default(&self, object: &mut Value) {
        default_binding(object);
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_binding(object, false)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_role_ref_update(new, old));
        errs
    }
    fn name_rule(&self) -> NameRule {
        NameRule::PathSegment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Value {
        json!({"metadata": {"name": "job-robot", "namespace": "default"},
               "subjects": [{"kind": "ServiceAccount", "name": "job-robot", "namespace": "default"}],
               "roleRef": {"kind": "Role", "name": "job-robot", "apiGroup": "rbac.authorization.k8s.io"}})
    }

    #[test]
    fn seed_role_and_binding_are_valid() {
        let role = json!({"metadata": {"name": "job-robot", "namespace": "default"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["batch", "extensions"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]});
        assert!(RoleStrategy.validate(&role).is_empty());
        let mut b = binding();
        RoleBindingStrategy.default(&mut b);
        assert!(
            RoleBindingStrategy.validate(&b).is_empty(),
            "{:?}",
            RoleBindingStrategy.validate(&b)
        );
    }

    #[test]
    fn rules_need_verbs() {
        let role = json!({"rules": [{"apiGroups": [""], "resources": ["pods"]}]});
        assert_eq!(
            RoleStrategy.validate(&role)[0].to_string(),
            "rules[0].verbs: Required value: verbs must contain at least one value"
        );
    }

    #[test]
    fn role_ref_cannot_change() {
        let old = binding();
        let mut new = binding();
        new["roleRef"]["name"] = json!("other");
        let errs = RoleBindingStrategy.validate_update(&new, &old);
        assert_eq!(
            errs[0].to_string(),
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"
        );
    }

    #[test]
    fn cluster_binding_service_accounts_need_a_namespace() {
        let mut b = json!({"metadata": {"name": "x"}, "subjects": [{"kind": "ServiceAccount", "name": "sa"}],
                           "roleRef": {"kind": "Role", "name": "r"}});
        ClusterRoleBindingStrategy.default(&mut b);
        let texts: Vec<String> = ClusterRoleBindingStrategy
            .validate(&b)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            texts,
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[0].namespace: Required value",
            ]
        );
    }
}
