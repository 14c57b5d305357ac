//! The bootstrap RBAC policy (upstream `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`):
//! the ClusterRoles and ClusterRoleBindings an API server creates at start, labelled
//! `kubernetes.io/bootstrapping: rbac-defaults` and annotated for auto-update.
//!
//! Controller roles follow upstream's least privilege. Upstream controllers read through the
//! controller-manager's shared informers (which list and watch as
//! `system:kube-controller-manager`), so their own roles lack some reads; nanokube's
//! controllers watch under their own identity, so those reads are added here, each noted.

use super::rule::{ALL, PolicyRule};
use super::snapshot::RBAC_GROUP;
use nanokube_registry::rbac::aggregate;
use serde_json::{Value, json};

const BOOTSTRAP_LABEL: &str = "kubernetes.io/bootstrapping";
const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// The prefix of controller roles and bindings: `system:controller:<name>`.
pub const CONTROLLER_ROLE_PREFIX: &str = "system:controller:";
/// The namespace of the controllers' service accounts.
pub const CONTROLLER_NAMESPACE: &str = "kube-system";

const READ: &[&str] = &["get", "list", "watch"];
/// upstream's `ReadWrite` set in the edit role (reads come from the view role).
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

/// A rule on resources; every list sorted, as upstream's rule builder does.
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    let sorted = |items: &[&str]| {
        let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    PolicyRule {
        verbs: sorted(verbs),
        api_groups: sorted(groups),
        resources: sorted(resources),
        ..Default::default()
    }
}

fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    names.sort();
    PolicyRule {
        resource_names: names,
        ..rule(verbs, groups, resources)
    }
}

fn urls(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    let mut urls: Vec<String> = urls.iter().map(|s| s.to_string()).collect();
    urls.sort();
    PolicyRule {
        non_resource_urls: urls,
        ..rule(verbs, &[], &[])
    }
}

/// What every controller may do with events (core and `events.k8s.io`).
fn event_writes() -> PolicyRule {
    rule(
        &["create", "patch", "update"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

fn metadata(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert(BOOTSTRAP_LABEL.into(), json!("rbac-defaults"));
    for (k, v) in labels {
        all.insert((*k).into(), json!(v));
    }
    json!({
        "name": name,
        "labels": all,
        "annotations": {AUTOUPDATE_ANNOTATION: "true"}
    })
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: &[PolicyRule]) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, labels),
        "rules": rules.iter().map(PolicyRule::to_json).collect::<Vec<_>>()
    })
}

/// A ClusterRole whose rules are the union of those labelled `label: "true"`.
fn aggregated_role(name: &str, labels: &[(&str, &str)], label: &str) -> Value {
    let mut role = cluster_role(name, labels, &[]);
    role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
    role
}

fn binding(name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, &[]),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects
    })
}

fn group(name: &str) -> Value {
    json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": name})
}

fn user(name: &str) -> Value {
    json!({"apiGroup": RBAC_GROUP, "kind": "User", "name": name})
}

fn service_account(namespace: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
}

/// The rules of `system:aggregate-to-edit`. Upstream's recent copies also grant writes on
/// events and all of coordination leases here; that is unconfirmed for v1.32 and left out.
fn edit_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[""], &["serviceaccounts"]),
        rule(
            WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(
            WRITE,
            &[""],
            &[
                "configmaps",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
        rule(
            WRITE,
            &["extensions"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
        ),
        rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
        rule(
            WRITE,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
    ]
}

/// The rules of `system:aggregate-to-view`: reads of namespaced workloads, never secrets.
fn view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            READ,
            &["extensions"],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
        ),
        rule(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

fn node_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews", "subjectaccessreviews"],
        ),
        rule(READ, &[""], &["services"]),
        rule(&["create", "get", "list", "watch"], &[""], &["nodes"]),
        rule(&["patch", "update"], &[""], &["nodes/status"]),
        rule(&["patch", "update"], &[""], &["nodes"]),
        rule(&["create", "patch", "update"], &[""], &["events"]),
        rule(READ, &[""], &["pods"]),
        rule(&["create", "delete"], &[""], &["pods"]),
        rule(&["patch", "update"], &[""], &["pods/status"]),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(READ, &[""], &["configmaps", "secrets"]),
        rule(
            &["get"],
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["get"], &[""], &["endpoints"]),
        rule(
            &["create", "get", "list", "watch"],
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
        ),
        rule(
            &["create", "delete", "get", "patch", "update"],
            &["coordination.k8s.io"],
            &["leases"],
        ),
        rule(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(
            &["get", "patch", "update"],
            &[""],
            &["persistentvolumeclaims/status"],
        ),
        rule(READ, &["storage.k8s.io"], &["csidrivers"]),
        rule(
            &["create", "delete", "get", "patch", "update"],
            &["storage.k8s.io"],
            &["csinodes"],
        ),
        rule(READ, &["node.k8s.io"], &["runtimeclasses"]),
    ]
}

fn scheduler_rules() -> Vec<PolicyRule> {
    vec![
        event_writes(),
        rule(&["create"], &["coordination.k8s.io"], &["leases"]),
        named(
            &["get", "update"],
            &["coordination.k8s.io"],
            &["leases"],
            &["kube-scheduler"],
        ),
        rule(READ, &[""], &["nodes"]),
        rule(&["delete", "get", "list", "watch"], &[""], &["pods"]),
        rule(&["create"], &[""], &["bindings", "pods/binding"]),
        rule(&["patch", "update"], &[""], &["pods/status"]),
        rule(READ, &[""], &["replicationcontrollers", "services"]),
        rule(READ, &["apps", "extensions"], &["replicasets"]),
        rule(READ, &["apps"], &["statefulsets"]),
        rule(READ, &["policy"], &["poddisruptionbudgets"]),
        rule(
            READ,
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
        ),
        rule(READ, &["storage.k8s.io"], &["csinodes"]),
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["storage.k8s.io"], &["csidrivers"]),
        rule(READ, &["storage.k8s.io"], &["csistoragecapacities"]),
    ]
}

/// Each nanokube controller and its rules (events writes are added to all).
fn controller_roles() -> Vec<(&'static str, Vec<PolicyRule>)> {
    vec![
        (
            "clusterrole-aggregation-controller",
            vec![rule(
                &["escalate", "get", "list", "patch", "update", "watch"],
                &[RBAC_GROUP],
                &["clusterroles"],
            )],
        ),
        (
            "cronjob-controller",
            vec![
                rule(
                    &["get", "list", "update", "watch"],
                    &["batch"],
                    &["cronjobs"],
                ),
                rule(
                    &[
                        "create", "delete", "get", "list", "patch", "update", "watch",
                    ],
                    &["batch"],
                    &["jobs"],
                ),
                rule(&["update"], &["batch"], &["cronjobs/status"]),
                rule(&["update"], &["batch"], &["cronjobs/finalizers"]),
                rule(&["delete", "list"], &[""], &["pods"]),
            ],
        ),
        (
            "deployment-controller",
            vec![
                rule(
                    &["get", "list", "update", "watch"],
                    &["apps", "extensions"],
                    &["deployments"],
                ),
                rule(
                    &["update"],
                    &["apps", "extensions"],
                    &["deployments/status"],
                ),
                rule(
                    &["update"],
                    &["apps", "extensions"],
                    &["deployments/finalizers"],
                ),
                rule(
                    &[
                        "create", "delete", "get", "list", "patch", "update", "watch",
                    ],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                rule(&["get", "list", "update", "watch"], &[""], &["pods"]),
            ],
        ),
        (
            "generic-garbage-collector",
            vec![rule(
                &["delete", "get", "list", "patch", "update", "watch"],
                &[ALL],
                &[ALL],
            )],
        ),
        (
            "job-controller",
            vec![
                rule(
                    &["get", "list", "patch", "update", "watch"],
                    &["batch"],
                    &["jobs"],
                ),
                rule(&["update"], &["batch"], &["jobs/status"]),
                rule(&["update"], &["batch"], &["jobs/finalizers"]),
                rule(
                    &["create", "delete", "list", "patch", "watch"],
                    &[""],
                    &["pods"],
                ),
            ],
        ),
        (
            "namespace-controller",
            vec![
                rule(&["delete", "get", "list", "watch"], &[""], &["namespaces"]),
                rule(
                    &["update"],
                    &[""],
                    &["namespaces/finalize", "namespaces/status"],
                ),
                rule(
                    &["delete", "deletecollection", "get", "list", "watch"],
                    &[ALL],
                    &[ALL],
                ),
            ],
        ),
        (
            "replicaset-controller",
            vec![
                rule(
                    &["get", "list", "update", "watch"],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                rule(
                    &["update"],
                    &["apps", "extensions"],
                    &["replicasets/status"],
                ),
                rule(
                    &["update"],
                    &["apps", "extensions"],
                    &["replicasets/finalizers"],
                ),
                rule(
                    &["create", "delete", "list", "patch", "watch"],
                    &[""],
                    &["pods"],
                ),
            ],
        ),
        (
            "root-ca-cert-publisher",
            vec![
                rule(&["create", "update"], &[""], &["configmaps"]),
                // nanokube: its own informers (namespaces; the kube-root-ca.crt ConfigMaps).
                rule(&["list", "watch"], &[""], &["namespaces"]),
                rule(READ, &[""], &["configmaps"]),
            ],
        ),
        (
            "service-account-controller",
            vec![
                rule(&["create"], &[""], &["serviceaccounts"]),
                // nanokube: its own informers, and the existence check before creating.
                rule(&["list", "watch"], &[""], &["namespaces"]),
                rule(READ, &[""], &["serviceaccounts"]),
            ],
        ),
        (
            "token-controller",
            vec![
                // Upstream runs this under the controller-manager's root credentials; these
                // are exactly the calls nanokube's token controller makes: watch accounts and
                // token Secrets, fill Secrets in, delete orphans, and (pre-1.24 mode) create a
                // Secret per account and list it in the account's `secrets`.
                rule(
                    &["get", "list", "update", "watch"],
                    &[""],
                    &["serviceaccounts"],
                ),
                rule(
                    &["create", "delete", "get", "list", "update", "watch"],
                    &[""],
                    &["secrets"],
                ),
            ],
        ),
        (
            "ttl-after-finished-controller",
            vec![rule(
                &["delete", "get", "list", "watch"],
                &["batch"],
                &["jobs"],
            )],
        ),
    ]
}

/// The names of nanokube's controllers, each with a `system:controller:<name>` ClusterRole
/// bound to the ServiceAccount `kube-system/<name>`.
pub fn controller_names() -> Vec<&'static str> {
    controller_roles().into_iter().map(|(n, _)| n).collect()
}

/// The bootstrap policy: every ClusterRole (admin/edit/view with their aggregation rules and
/// already-aggregated rules) then every ClusterRoleBinding, as full objects.
pub fn bootstrap_policy() -> Vec<Value> {
    let mut roles = vec![
        cluster_role(
            "cluster-admin",
            &[],
            &[rule(&[ALL], &[ALL], &[ALL]), urls(&[ALL], &[ALL])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            &[urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            &[
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            &[urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        aggregated_role("admin", &[], TO_ADMIN),
        aggregated_role("edit", &[(TO_ADMIN, "true")], TO_EDIT),
        aggregated_role("view", &[(TO_EDIT, "true")], TO_VIEW),
        cluster_role(
            "system:aggregate-to-admin",
            &[(TO_ADMIN, "true")],
            &[
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                rule(
                    &[
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                    &[RBAC_GROUP],
                    &["rolebindings", "roles"],
                ),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(TO_EDIT, "true")],
            &edit_rules(),
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(TO_VIEW, "true")],
            &view_rules(),
        ),
        cluster_role("system:node", &[], &node_rules()),
        cluster_role("system:kube-scheduler", &[], &scheduler_rules()),
    ];
    for (name, mut rules) in controller_roles() {
        let events = event_writes();
        if !rules.contains(&events) {
            rules.push(events);
        }
        roles.push(cluster_role(
            &format!("{CONTROLLER_ROLE_PREFIX}{name}"),
            &[],
            &rules,
        ));
    }
    // Store admin/edit/view already aggregated, so they work before the aggregation
    // controller's first pass.
    for (name, rules) in aggregate(&roles) {
        if let Some(role) = roles
            .iter_mut()
            .find(|r| r["metadata"]["name"].as_str() == Some(name.as_str()))
        {
            role["rules"] = Value::Array(rules.iter().map(PolicyRule::to_json).collect());
        }
    }

    let mut bindings = vec![
        binding(
            "cluster-admin",
            "cluster-admin",
            vec![group("system:masters")],
        ),
        binding(
            "system:discovery",
            "system:discovery",
            vec![group("system:authenticated")],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            vec![group("system:authenticated")],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        binding("system:node", "system:node", vec![group("system:nodes")]),
        binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![user("system:kube-scheduler")],
        ),
    ];
    for name in controller_names() {
        let full = format!("{CONTROLLER_ROLE_PREFIX}{name}");
        bindings.push(binding(
            &full,
            &full,
            vec![service_account(CONTROLLER_NAMESPACE, name)],
        ));
    }
    roles.extend(bindings);
    roles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;
    use crate::authz::{Attributes, Decision};
    use crate::rbac::snapshot::Snapshot;

    fn by_kind(kind: &str) -> Vec<Value> {
        bootstrap_policy()
            .into_iter()
            .filter(|o| o["kind"] == kind)
            .collect()
    }

    fn find(kind: &str, name: &str) -> Value {
        by_kind(kind)
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} missing"))
    }

    fn snapshot() -> Snapshot {
        Snapshot::from_objects(
            &[],
            &by_kind("ClusterRole"),
            &[],
            &by_kind("ClusterRoleBinding"),
        )
    }

    fn path(user: &UserInfo, verb: &str, path: &str) -> Attributes {
        Attributes {
            user: user.clone(),
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    fn resource(user: &UserInfo, verb: &str, group: &str, res: &str, ns: &str) -> Attributes {
        Attributes {
            user: user.clone(),
            verb: verb.into(),
            is_resource_request: true,
            namespace: ns.into(),
            api_group: group.into(),
            resource: res.into(),
            ..Default::default()
        }
    }

    #[test]
    fn stable_roles_have_exactly_the_documented_rules() {
        assert_eq!(
            find("ClusterRole", "cluster-admin")["rules"],
            json!([
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]}
            ])
        );
        assert_eq!(
            find("ClusterRole", "system:discovery")["rules"],
            json!([{"verbs": ["get"], "nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                "/openapi/*", "/readyz", "/version", "/version/"
            ]}])
        );
        assert_eq!(
            find("ClusterRole", "system:basic-user")["rules"],
            json!([
                {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                 "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
                {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
                 "resources": ["selfsubjectreviews"]}
            ])
        );
        assert_eq!(
            find("ClusterRole", "system:public-info-viewer")["rules"],
            json!([{"verbs": ["get"], "nonResourceURLs": [
                "/healthz", "/livez", "/readyz", "/version", "/version/"
            ]}])
        );
        assert_eq!(
            find("ClusterRoleBinding", "system:public-info-viewer")["subjects"],
            json!([
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"},
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}
            ])
        );
    }

    #[test]
    fn every_object_is_labelled_and_annotated_as_bootstrap() {
        for obj in bootstrap_policy() {
            assert_eq!(
                obj["metadata"]["labels"][BOOTSTRAP_LABEL], "rbac-defaults",
                "{obj}"
            );
            assert_eq!(
                obj["metadata"]["annotations"][AUTOUPDATE_ANNOTATION], "true",
                "{obj}"
            );
            assert_eq!(obj["apiVersion"], "rbac.authorization.k8s.io/v1");
        }
    }

    #[test]
    fn every_controller_role_exists_with_a_service_account_binding() {
        let mut names = controller_names();
        names.sort();
        let expected = [
            "clusterrole-aggregation-controller",
            "cronjob-controller",
            "deployment-controller",
            "generic-garbage-collector",
            "job-controller",
            "namespace-controller",
            "replicaset-controller",
            "root-ca-cert-publisher",
            "service-account-controller",
            "token-controller",
            "ttl-after-finished-controller",
        ];
        assert_eq!(names, expected);
        let snap = snapshot();
        for name in expected {
            let full = format!("system:controller:{name}");
            let role = find("ClusterRole", &full);
            assert!(!PolicyRule::list_from_object(&role).is_empty());
            let b = find("ClusterRoleBinding", &full);
            assert_eq!(b["roleRef"]["name"], full.as_str());
            assert_eq!(
                b["subjects"],
                json!([{"kind": "ServiceAccount", "name": name, "namespace": "kube-system"}])
            );
            let sa = UserInfo::authenticated(
                format!("system:serviceaccount:kube-system:{name}"),
                Vec::new(),
            );
            for group in ["", "events.k8s.io"] {
                assert_eq!(
                    snap.authorize(&resource(&sa, "create", group, "events", "default"))
                        .0,
                    Decision::Allow,
                    "{name} events"
                );
            }
        }
    }

    #[test]
    fn controllers_hold_what_they_do_and_not_more() {
        let snap = snapshot();
        let sa = |n: &str| {
            UserInfo::authenticated(format!("system:serviceaccount:kube-system:{n}"), Vec::new())
        };
        let allow = |u: &UserInfo, verb: &str, group: &str, res: &str| {
            snap.authorize(&resource(u, verb, group, res, "default")).0 == Decision::Allow
        };
        let token = sa("token-controller");
        assert!(allow(&token, "update", "", "secrets"));
        assert!(allow(&token, "create", "", "secrets"));
        assert!(allow(&token, "watch", "", "serviceaccounts"));
        assert!(!allow(&token, "create", "", "pods"));
        let job = sa("job-controller");
        assert!(allow(&job, "create", "", "pods"));
        assert!(!allow(&job, "get", "", "secrets"));
        let ca = sa("root-ca-cert-publisher");
        assert!(allow(&ca, "create", "", "configmaps"));
        assert!(!allow(&ca, "delete", "", "configmaps"));
    }

    #[test]
    fn default_bindings_grant_discovery_and_public_info() {
        let snap = snapshot();
        let bob = UserInfo::authenticated("bob", Vec::new());
        let anon = UserInfo::anonymous();
        assert_eq!(
            snap.authorize(&path(&bob, "get", "/apis/batch/v1")).0,
            Decision::Allow
        );
        assert_eq!(
            snap.authorize(&path(&anon, "get", "/healthz")).0,
            Decision::Allow
        );
        assert!(matches!(
            snap.authorize(&path(&anon, "get", "/api")).0,
            Decision::Deny(_)
        ));
        assert_eq!(
            snap.authorize(&resource(
                &bob,
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                ""
            ))
            .0,
            Decision::Allow
        );
        assert!(matches!(
            snap.authorize(&resource(&bob, "list", "", "pods", "default"))
                .0,
            Decision::Deny(_)
        ));
        let admin = UserInfo::authenticated("root", vec!["system:masters".to_string()]);
        assert_eq!(
            snap.authorize(&resource(&admin, "delete", "apps", "deployments", "x"))
                .0,
            Decision::Allow
        );
    }

    #[test]
    fn admin_edit_view_are_stored_aggregated() {
        let rules = |n: &str| PolicyRule::list_from_object(&find("ClusterRole", n));
        let (view, edit, admin) = (rules("view"), rules("edit"), rules("admin"));
        assert_eq!(view, view_rules());
        assert_eq!(edit, [edit_rules(), view_rules()].concat());
        assert!(admin.len() > edit.len());
        assert!(find("ClusterRole", "admin")["aggregationRule"]["clusterRoleSelectors"].is_array());
        // view reads no secrets; edit writes no roles; admin does.
        let allows = |rules: &[PolicyRule], verb: &str, group: &str, res: &str| {
            let a = resource(&UserInfo::default(), verb, group, res, "d");
            rules.iter().any(|r| crate::rbac::rule_allows(&a, r))
        };
        assert!(!allows(&view, "get", "", "secrets"));
        assert!(allows(&view, "get", "", "pods/log"));
        assert!(!allows(&view, "create", "", "pods/exec"));
        assert!(allows(&edit, "create", "", "pods/exec"));
        assert!(allows(&edit, "get", "", "secrets"));
        assert!(!allows(&edit, "create", RBAC_GROUP, "roles"));
        assert!(allows(&admin, "create", RBAC_GROUP, "roles"));
        assert!(allows(
            &admin,
            "create",
            "authorization.k8s.io",
            "localsubjectaccessreviews"
        ));
        assert!(crate::rbac::aggregate(&by_kind("ClusterRole")).is_empty());
    }
}
