//! Escalation prevention on writes of Roles, ClusterRoles and their bindings (upstream's
//! `policybased` storages in `pkg/registry/rbac/*/policybased`, `escalation_check.go` and
//! `validation.ConfirmNoEscalation`): nobody grants, through RBAC, what they do not hold —
//! unless RBAC itself allows them to `escalate` (roles) or `bind` (bindings).

use super::authorizer::RbacAuthorizer;
use super::coverage::{compact_rules, covers};
use super::rule::{ALL, PolicyRule, go_quote, go_quote_list};
use super::snapshot::{RBAC_GROUP, ResolveError, RoleRef, Snapshot, aggregate_messages};
use crate::authn::{MASTERS, UserInfo};
use crate::authz::{Attributes, Decision};
use crate::status::ApiError;
use nanokube_registry::resource::{
    CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, ResourceInfo,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long an uncovered check waits for the cache to apply writes made just before it.
const CATCH_UP: Duration = Duration::from_secs(2);

/// The message when a ClusterRole's aggregation rule is set without `*` on everything.
const AGGREGATION_NEEDS_ADMIN: &str =
    "must have cluster-admin privileges to use the aggregationRule";

/// Checks the create (or update) of a `Role`, `ClusterRole`, `RoleBinding` or
/// `ClusterRoleBinding` (`kind`) by `user`. `object` is the new object; `namespace` the
/// request's namespace, "" for the cluster-scoped kinds. Other kinds pass.
pub async fn check_escalation(
    authz: &RbacAuthorizer,
    user: &UserInfo,
    kind: &str,
    namespace: &str,
    object: &Value,
) -> Result<(), ApiError> {
    check_escalation_on_update(authz, user, kind, namespace, object, None).await
}

/// [`check_escalation`] for an update, which also knows the stored object: taking the
/// aggregation rule off a ClusterRole needs the same authority as setting one.
pub async fn check_escalation_on_update(
    authz: &RbacAuthorizer,
    user: &UserInfo,
    kind: &str,
    namespace: &str,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    // Upstream `EscalationAllowed`: the privileged group skips every check.
    if user.in_group(MASTERS) {
        return Ok(());
    }
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "Role" | "ClusterRole" => {
            let info = if kind == "Role" {
                &ROLES
            } else {
                &CLUSTER_ROLES
            };
            // Upstream `RoleEscalationAuthorized`.
            if allowed(
                authz,
                user,
                "escalate",
                RBAC_GROUP,
                info.plural,
                name,
                namespace,
            )
            .await
            {
                return Ok(());
            }
            let rules = PolicyRule::list_from_object(object);
            confirm_no_escalation(authz, user, namespace, &rules)
                .await
                .map_err(|msg| forbidden(info, name, &msg))?;
            let aggregates = has_aggregation_rule(object) || old.is_some_and(has_aggregation_rule);
            if kind == "ClusterRole" && aggregates {
                // An aggregation rule can gather anything, so it needs `*` on everything.
                confirm_no_escalation(authz, user, "", &full_authority())
                    .await
                    .map_err(|_| forbidden(info, name, AGGREGATION_NEEDS_ADMIN))?;
            }
            Ok(())
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let info = if kind == "RoleBinding" {
                &ROLE_BINDINGS
            } else {
                &CLUSTER_ROLE_BINDINGS
            };
            let role_ref = RoleRef::from_object(object).unwrap_or_default();
            // Upstream `BindingAuthorized`: `bind` on the referenced role, checked in the
            // binding's namespace so it can be delegated per namespace.
            let bind_resource = match role_ref.kind.as_str() {
                "Role" => Some(ROLES.plural),
                "ClusterRole" => Some(CLUSTER_ROLES.plural),
                _ => None,
            };
            if let Some(resource) = bind_resource
                && allowed(
                    authz,
                    user,
                    "bind",
                    &role_ref.api_group,
                    resource,
                    &role_ref.name,
                    namespace,
                )
                .await
            {
                return Ok(());
            }
            let rules = referenced_rules(authz, &role_ref, namespace).await?;
            confirm_no_escalation(authz, user, namespace, &rules)
                .await
                .map_err(|msg| forbidden(info, name, &msg))
        }
        _ => Ok(()),
    }
}

/// Whether RBAC allows `user` the given verb on an RBAC object.
async fn allowed(
    authz: &RbacAuthorizer,
    user: &UserInfo,
    verb: &str,
    group: &str,
    resource: &str,
    name: &str,
    namespace: &str,
) -> bool {
    let attrs = Attributes {
        user: user.clone(),
        verb: verb.into(),
        is_resource_request: true,
        namespace: namespace.into(),
        api_group: group.into(),
        resource: resource.into(),
        name: name.into(),
        ..Default::default()
    };
    authz.decide(&attrs).await.0 == Decision::Allow
}

/// The rules of the role a binding references, as the registry would read it: a missing
/// role is the registry's 404 (`roles.rbac.authorization.k8s.io "x" not found`).
async fn referenced_rules(
    authz: &RbacAuthorizer,
    role_ref: &RoleRef,
    namespace: &str,
) -> Result<Vec<PolicyRule>, ApiError> {
    let snapshot = authz.cache().snapshot();
    if let Ok(rules) = snapshot.role_ref_rules(role_ref, namespace) {
        return Ok(rules.to_vec());
    }
    // The role may have been created just before the binding.
    authz.cache().catch_up(CATCH_UP).await;
    match authz.cache().snapshot().role_ref_rules(role_ref, namespace) {
        Ok(rules) => Ok(rules.to_vec()),
        Err(ResolveError::RoleNotFound { name, .. }) => Err(ApiError::not_found(&ROLES, &name)),
        Err(ResolveError::ClusterRoleNotFound { name }) => {
            Err(ApiError::not_found(&CLUSTER_ROLES, &name))
        }
        Err(e @ ResolveError::UnsupportedKind { .. }) => Err(ApiError::internal(e)),
    }
}

/// Upstream `ConfirmNoEscalation`: the rules `user` holds in `namespace` ("" = cluster-wide)
/// must cover `rules`. The error is upstream's message, listing the missing permissions.
async fn confirm_no_escalation(
    authz: &RbacAuthorizer,
    user: &UserInfo,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    let snapshot = authz.cache().snapshot();
    let Err(first) = held_covers(&snapshot, user, namespace, rules) else {
        return Ok(());
    };
    authz.cache().catch_up(CATCH_UP).await;
    let fresh = authz.cache().snapshot();
    if Arc::ptr_eq(&snapshot, &fresh) {
        return Err(first);
    }
    held_covers(&fresh, user, namespace, rules)
}

fn held_covers(
    snapshot: &Snapshot,
    user: &UserInfo,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    let (held, errors) = snapshot.resolve_rules(user, namespace);
    let (covered, missing) = covers(&held, rules);
    if covered {
        return Ok(());
    }
    let mut lines: Vec<String> = compact_rules(&missing)
        .iter()
        .map(PolicyRule::compact_string)
        .collect();
    lines.sort();
    lines.dedup();
    let mut msg = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.name),
        go_quote_list(&user.groups),
        lines.join("\n")
    );
    if !errors.is_empty() {
        let resolution = aggregate_messages(errors.iter().map(ResolveError::registry_message));
        msg.push_str(&format!("; resolution errors: [{resolution}]"));
    }
    Err(msg)
}

/// Upstream `apierrors.NewForbidden(<rbac resource>, name, err)`.
fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> ApiError {
    let qualified = info.qualified();
    let message = if name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} {} is forbidden: {why}", go_quote(name))
    };
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    details.insert("group".into(), json!(info.group));
    details.insert("kind".into(), json!(info.plural));
    ApiError::forbidden(message, Some(Value::Object(details)))
}

fn has_aggregation_rule(role: &Value) -> bool {
    role.get("aggregationRule")
        .and_then(|a| a.get("clusterRoleSelectors"))
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
}

/// `*` on every resource and every non-resource URL: what cluster-admin holds.
fn full_authority() -> [PolicyRule; 2] {
    let all = || vec![ALL.to_string()];
    [
        PolicyRule {
            verbs: all(),
            api_groups: all(),
            resources: all(),
            ..Default::default()
        },
        PolicyRule {
            verbs: all(),
            non_resource_urls: all(),
            ..Default::default()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::cache::RbacCache;
    use nanokube_store::{MemoryStore, Store};

    const P: &str = "/registry/rbac.authorization.k8s.io";

    async fn authorizer(objects: &[(String, Value)]) -> RbacAuthorizer {
        let store = Arc::new(MemoryStore::new());
        for (key, obj) in objects {
            store
                .create(key, serde_json::to_vec(obj).expect("serializable"))
                .await
                .expect("created");
        }
        RbacAuthorizer::new(RbacCache::start(store).await.expect("started"))
    }

    fn role(ns: &str, name: &str, rules: Value) -> (String, Value) {
        (
            format!("{P}/roles/{ns}/{name}"),
            json!({"metadata": {"name": name, "namespace": ns}, "rules": rules}),
        )
    }

    fn cluster_role(name: &str, rules: Value) -> (String, Value) {
        (
            format!("{P}/clusterroles/{name}"),
            json!({"metadata": {"name": name}, "rules": rules}),
        )
    }

    fn role_binding(ns: &str, name: &str, kind: &str, role: &str, user: &str) -> (String, Value) {
        (
            format!("{P}/rolebindings/{ns}/{name}"),
            binding_object(Some(ns), name, kind, role, user),
        )
    }

    fn binding_object(ns: Option<&str>, name: &str, kind: &str, role: &str, user: &str) -> Value {
        let mut obj = json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": role},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": user}]
        });
        if let Some(ns) = ns {
            obj["metadata"]["namespace"] = json!(ns);
        }
        obj
    }

    fn alice() -> UserInfo {
        UserInfo::authenticated("alice", Vec::new())
    }

    fn get_pods() -> Value {
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    }

    fn new_role(name: &str, verbs: Value) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "d"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]
        })
    }

    #[tokio::test]
    async fn user_with_get_pods_cannot_create_a_role_granting_delete_pods() {
        let authz = authorizer(&[
            role("d", "reader", get_pods()),
            role_binding("d", "alice", "Role", "reader", "alice"),
        ])
        .await;
        let err = check_escalation(
            &authz,
            &alice(),
            "Role",
            "d",
            &new_role("deleter", json!(["delete"])),
        )
        .await
        .expect_err("escalation");
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            "roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"
        );
        assert_eq!(
            err.details.as_deref(),
            Some(
                &json!({"name": "deleter", "group": "rbac.authorization.k8s.io", "kind": "roles"})
            )
        );
        // What she holds she may grant; elsewhere she holds nothing.
        check_escalation(
            &authz,
            &alice(),
            "Role",
            "d",
            &new_role("getter", json!(["get"])),
        )
        .await
        .expect("covered");
        assert!(
            check_escalation(
                &authz,
                &alice(),
                "Role",
                "other",
                &new_role("getter", json!(["get"]))
            )
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn missing_permissions_are_listed_compacted_and_sorted() {
        let authz = authorizer(&[]).await;
        let role = json!({
            "metadata": {"name": "r", "namespace": "d"},
            "rules": [
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
            ]
        });
        let bob = UserInfo::authenticated("bob", vec!["dev".to_string()]);
        let err = check_escalation(&authz, &bob, "Role", "d", &role)
            .await
            .expect_err("escalation");
        assert!(err.message.ends_with(
            "user \"bob\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}\n{APIGroups:[\"batch\"], Resources:[\"jobs\"], Verbs:[\"create\" \"delete\"]}"
        ), "{}", err.message);
    }

    #[tokio::test]
    async fn escalate_verb_allows_creating_any_role() {
        let authz = authorizer(&[
            cluster_role(
                "role-escalator",
                json!([{"apiGroups": [RBAC_GROUP], "resources": ["roles"], "verbs": ["escalate"]}]),
            ),
            role_binding("d", "alice", "ClusterRole", "role-escalator", "alice"),
        ])
        .await;
        check_escalation(
            &authz,
            &alice(),
            "Role",
            "d",
            &new_role("deleter", json!(["*"])),
        )
        .await
        .expect("escalate allowed");
        // Only in the namespace where escalate was granted.
        assert!(
            check_escalation(
                &authz,
                &alice(),
                "Role",
                "e",
                &new_role("deleter", json!(["*"]))
            )
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn binding_needs_bind_or_coverage_of_the_referenced_role() {
        let authz = authorizer(&[
            role("d", "reader", get_pods()),
            role_binding("d", "alice", "Role", "reader", "alice"),
            cluster_role(
                "deleter",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]),
            ),
            cluster_role("pod-getter", get_pods()),
            cluster_role(
                "binder",
                json!([{"apiGroups": [RBAC_GROUP], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["deleter"]}]),
            ),
        ])
        .await;
        let to = |role: &str| binding_object(Some("d"), "b", "ClusterRole", role, "carol");
        // Covered: she holds get pods in d.
        check_escalation(&authz, &alice(), "RoleBinding", "d", &to("pod-getter"))
            .await
            .expect("covered");
        let err = check_escalation(&authz, &alice(), "RoleBinding", "d", &to("deleter"))
            .await
            .expect_err("not covered");
        assert!(err.message.starts_with(
            "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"alice\""
        ));
        // A ClusterRoleBinding is checked against cluster-wide rules only.
        let crb = binding_object(None, "c", "ClusterRole", "pod-getter", "carol");
        let err = check_escalation(&authz, &alice(), "ClusterRoleBinding", "", &crb)
            .await
            .expect_err("not held cluster-wide");
        assert!(
            err.message
                .starts_with("clusterrolebindings.rbac.authorization.k8s.io \"c\"")
        );
        // Missing roles are the registry's 404.
        let err = check_escalation(&authz, &alice(), "RoleBinding", "d", &to("nope"))
            .await
            .expect_err("missing role");
        assert_eq!(err.code, 404);
        assert_eq!(
            err.message,
            "clusterroles.rbac.authorization.k8s.io \"nope\" not found"
        );
        let local = binding_object(Some("d"), "b", "Role", "nope", "carol");
        let err = check_escalation(&authz, &alice(), "RoleBinding", "d", &local)
            .await
            .expect_err("missing role");
        assert_eq!(
            err.message,
            "roles.rbac.authorization.k8s.io \"nope\" not found"
        );

        // With `bind` on exactly that ClusterRole, coverage is not needed.
        let with_bind = authorizer(&[
            cluster_role(
                "deleter",
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]),
            ),
            cluster_role(
                "binder",
                json!([{"apiGroups": [RBAC_GROUP], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["deleter"]}]),
            ),
            role_binding("d", "alice-binds", "ClusterRole", "binder", "alice"),
        ])
        .await;
        check_escalation(&with_bind, &alice(), "RoleBinding", "d", &to("deleter"))
            .await
            .expect("bind allowed");
        assert!(
            check_escalation(&with_bind, &alice(), "RoleBinding", "e", &to("deleter"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn masters_skip_the_check_and_aggregation_rules_need_cluster_admin() {
        let authz = authorizer(&[]).await;
        let admin = UserInfo::authenticated("admin", vec![MASTERS.to_string()]);
        let aggregated = json!({
            "metadata": {"name": "agg"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]},
            "rules": []
        });
        check_escalation(&authz, &admin, "ClusterRole", "", &aggregated)
            .await
            .expect("masters");
        let err = check_escalation(&authz, &alice(), "ClusterRole", "", &aggregated)
            .await
            .expect_err("aggregation rule");
        assert_eq!(
            err.message,
            "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
        );
        let plain = json!({"metadata": {"name": "agg"}, "rules": []});
        check_escalation(&authz, &alice(), "ClusterRole", "", &plain)
            .await
            .expect("no rules, nothing to hold");
        assert!(
            check_escalation_on_update(
                &authz,
                &alice(),
                "ClusterRole",
                "",
                &plain,
                Some(&aggregated)
            )
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn a_role_created_just_before_its_binding_is_found() {
        let store = Arc::new(MemoryStore::new());
        let authz = RbacAuthorizer::new(RbacCache::start(store.clone()).await.expect("started"));
        let (key, obj) = cluster_role("empty", json!([]));
        store
            .create(&key, serde_json::to_vec(&obj).expect("serializable"))
            .await
            .expect("created");
        let b = binding_object(Some("d"), "b", "ClusterRole", "empty", "carol");
        check_escalation(&authz, &alice(), "RoleBinding", "d", &b)
            .await
            .expect("found after catch-up");
    }
}
