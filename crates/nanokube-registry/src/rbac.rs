//! RBAC data that is pure logic: the `PolicyRule` of Roles and ClusterRoles, and ClusterRole
//! aggregation (what upstream's clusterrole-aggregation-controller computes). The API server's
//! authorizer and the aggregation controller share these.

use crate::goformat::go_quote_list;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The wildcard RBAC uses for verbs, groups, resources and non-resource URLs.
pub const ALL: &str = "*";

/// A rule of a Role or ClusterRole (`rbac.authorization.k8s.io/v1` `PolicyRule`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// A string list field: absent or null is empty; anything but an array of strings is malformed.
fn string_list(obj: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => None,
    }
}

impl PolicyRule {
    /// A rule from its JSON form; `None` when it is not an object or a field is not a list of
    /// strings (stored objects are trusted but never allowed to panic the authorizer).
    pub fn from_json(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        Some(PolicyRule {
            verbs: string_list(obj, "verbs")?,
            api_groups: string_list(obj, "apiGroups")?,
            resources: string_list(obj, "resources")?,
            resource_names: string_list(obj, "resourceNames")?,
            non_resource_urls: string_list(obj, "nonResourceURLs")?,
        })
    }

    /// The JSON form, with upstream's `omitempty` on every list but `verbs`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("verbs".into(), Value::from(self.verbs.clone()));
        let optional = [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ];
        for (key, list) in optional {
            if !list.is_empty() {
                obj.insert(key.into(), Value::from(list.clone()));
            }
        }
        Value::Object(obj)
    }

    /// Upstream's `CompactString`, used one per line in escalation messages:
    /// `{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}`. Empty lists are left out.
    pub fn compact_string(&self) -> String {
        let parts = [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ];
        let shown: Vec<String> = parts
            .iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(label, list)| format!("{label}:{}", go_quote_list(list)))
            .collect();
        format!("{{{}}}", shown.join(", "))
    }

    /// The rules of a Role/ClusterRole object (`rules`, null or absent = none); rules that are
    /// not well-formed are skipped, which can only ever grant less.
    pub fn list_from_object(obj: &Value) -> Vec<PolicyRule> {
        obj.get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().filter_map(PolicyRule::from_json).collect())
            .unwrap_or_default()
    }
}

/// One parsed ClusterRole as aggregation needs it.
struct Role<'a> {
    labels: Option<&'a Map<String, Value>>,
    /// `None` when the role does not aggregate (or its selectors are malformed).
    selectors: Option<Vec<&'a Value>>,
    rules: Vec<PolicyRule>,
}

/// For every aggregating ClusterRole, the rules aggregation gives it, when they differ from
/// its current ones: `(name, rules)`. Chains (`view` → `edit` → `admin`) are followed to the
/// end, as the controller gets there by re-syncing each role whose sources changed.
pub fn aggregate(cluster_roles: &[Value]) -> Vec<(String, Vec<PolicyRule>)> {
    let mut roles: BTreeMap<String, Role<'_>> = BTreeMap::new();
    for obj in cluster_roles {
        let Some(name) = obj
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let labels = obj
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        let selectors = obj
            .get("aggregationRule")
            .and_then(|a| a.get("clusterRoleSelectors"))
            .and_then(Value::as_array)
            .map(|s| s.iter().collect::<Vec<_>>())
            .filter(|s| s.iter().all(|sel| selector_is_valid(sel)));
        roles.insert(
            name.to_string(),
            Role {
                labels,
                selectors,
                rules: PolicyRule::list_from_object(obj),
            },
        );
    }
    let original: BTreeMap<String, Vec<PolicyRule>> = roles
        .iter()
        .filter(|(_, r)| r.selectors.is_some())
        .map(|(n, r)| (n.clone(), r.rules.clone()))
        .collect();

    // Each round recomputes every aggregating role from the previous round's rules; a chain of
    // n roles settles within n rounds. A cycle may never settle, so the rounds are bounded.
    for _ in 0..=roles.len() {
        let mut next: Vec<(String, Vec<PolicyRule>)> = Vec::new();
        for (name, role) in &roles {
            let Some(selectors) = &role.selectors else {
                continue;
            };
            let mut rules: Vec<PolicyRule> = Vec::new();
            for selector in selectors {
                for (source_name, source) in &roles {
                    if source_name == name || !selector_matches(selector, source.labels) {
                        continue;
                    }
                    for rule in &source.rules {
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                }
            }
            if rules != role.rules {
                next.push((name.clone(), rules));
            }
        }
        if next.is_empty() {
            break;
        }
        for (name, rules) in next {
            if let Some(role) = roles.get_mut(&name) {
                role.rules = rules;
            }
        }
    }
    original
        .into_iter()
        .filter_map(|(name, before)| {
            let after = &roles.get(&name)?.rules;
            (*after != before).then(|| (name, after.clone()))
        })
        .collect()
}

/// A label selector is an object whose `matchLabels` values are strings and whose
/// `matchExpressions` have a known operator.
fn selector_is_valid(selector: &Value) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    let labels_ok = match sel.get("matchLabels") {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.values().all(Value::is_string),
        Some(_) => false,
    };
    let exprs_ok = match sel.get("matchExpressions") {
        None | Some(Value::Null) => true,
        Some(Value::Array(exprs)) => exprs.iter().all(|e| {
            matches!(
                e.get("operator").and_then(Value::as_str),
                Some("In" | "NotIn" | "Exists" | "DoesNotExist")
            ) && e.get("key").is_some_and(Value::is_string)
        }),
        Some(_) => false,
    };
    labels_ok && exprs_ok
}

/// `metav1.LabelSelector` semantics: every `matchLabels` pair and every `matchExpressions`
/// requirement must hold; an empty selector matches everything.
pub(crate) fn selector_matches(selector: &Value, labels: Option<&Map<String, Value>>) -> bool {
    let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    let pairs_hold = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| label(k) == v.as_str()));
    let exprs_hold = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|exprs| {
            exprs.iter().all(|e| {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let actual = label(key);
                match e.get("operator").and_then(Value::as_str) {
                    Some("In") => actual.is_some_and(|a| values.contains(&a)),
                    Some("NotIn") => actual.is_none_or(|a| !values.contains(&a)),
                    Some("Exists") => actual.is_some(),
                    Some("DoesNotExist") => actual.is_none(),
                    _ => false,
                }
            })
        });
    pairs_hold && exprs_hold
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(name: &str, labels: Value, agg: Option<&str>, rules: Value) -> Value {
        let mut obj = json!({"metadata": {"name": name, "labels": labels}, "rules": rules});
        if let Some(label) = agg {
            obj["aggregationRule"] =
                json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
        }
        obj
    }

    const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
    const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
    const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

    #[test]
    fn admin_edit_view_chain_aggregates_transitively() {
        let get = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
        let write = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]);
        let rbac = json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["*"]}]);
        let roles = [
            role("admin", json!({}), Some(TO_ADMIN), json!(null)),
            role(
                "edit",
                json!({TO_ADMIN: "true"}),
                Some(TO_EDIT),
                json!(null),
            ),
            role("view", json!({TO_EDIT: "true"}), Some(TO_VIEW), json!(null)),
            role(
                "system:aggregate-to-admin",
                json!({TO_ADMIN: "true"}),
                None,
                rbac.clone(),
            ),
            role(
                "system:aggregate-to-edit",
                json!({TO_EDIT: "true"}),
                None,
                write.clone(),
            ),
            role(
                "system:aggregate-to-view",
                json!({TO_VIEW: "true"}),
                None,
                get.clone(),
            ),
        ];
        let result: BTreeMap<String, Vec<PolicyRule>> = aggregate(&roles).into_iter().collect();
        let rules = |v: &Value| PolicyRule::list_from_object(&json!({"rules": v}));
        assert_eq!(result["view"], rules(&get));
        // edit: selector matches system:aggregate-to-edit and view, by name.
        assert_eq!(result["edit"], [rules(&write), rules(&get)].concat());
        assert_eq!(
            result["admin"],
            [rules(&write), rules(&get), rules(&rbac)].concat()
        );
        // Once aggregated, nothing changes.
        let settled: Vec<Value> = roles
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Some(new) = r["metadata"]["name"].as_str().and_then(|n| result.get(n)) {
                    r["rules"] = Value::Array(new.iter().map(PolicyRule::to_json).collect());
                }
                r
            })
            .collect();
        assert!(aggregate(&settled).is_empty());
    }

    #[test]
    fn match_expressions_follow_label_selector_rules() {
        let labels = json!({"tier": "web", "env": "prod"});
        let labels = labels.as_object();
        let sel = |v: Value| selector_matches(&v, labels);
        assert!(sel(json!({})));
        assert!(sel(
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "db"]}]})
        ));
        assert!(!sel(
            json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]})
        ));
        assert!(sel(
            json!({"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]})
        ));
        assert!(!sel(
            json!({"matchExpressions": [{"key": "x", "operator": "Exists"}]})
        ));
        assert!(!sel(json!({"matchLabels": {"env": "dev"}})));
    }
}
