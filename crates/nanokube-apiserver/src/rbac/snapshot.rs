//! All RBAC objects at one revision, and the rule resolution over them (upstream
//! `DefaultRuleResolver.VisitRulesFor` in `pkg/registry/rbac/validation/rule.go`, and the
//! `RBACAuthorizer` of `plugin/pkg/auth/authorizer/rbac`).

use super::rule::{PolicyRule, go_quote, rule_allows};
use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision};
use nanokube_store::Revision;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::ControlFlow;

/// The API group of the RBAC objects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The four RBAC kinds, as the cache tells them apart by storage key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl ObjectKind {
    pub(crate) fn from_plural(plural: &str) -> Option<Self> {
        match plural {
            "roles" => Some(Self::Role),
            "clusterroles" => Some(Self::ClusterRole),
            "rolebindings" => Some(Self::RoleBinding),
            "clusterrolebindings" => Some(Self::ClusterRoleBinding),
            _ => None,
        }
    }

    pub(crate) fn namespaced(self) -> bool {
        matches!(self, Self::Role | Self::RoleBinding)
    }
}

/// A binding's `roleRef`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleRef {
    pub api_group: String,
    pub kind: String,
    pub name: String,
}

impl RoleRef {
    /// The `roleRef` of a binding object; `None` without a kind and a name.
    pub fn from_object(obj: &Value) -> Option<Self> {
        let r = obj.get("roleRef")?;
        let field = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
        Some(RoleRef {
            api_group: field("apiGroup").unwrap_or_default(),
            kind: field("kind")?,
            name: field("name")?,
        })
    }
}

/// One entry of a binding's `subjects`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl Subject {
    fn from_json(v: &Value) -> Option<Self> {
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        v.is_object().then(|| Subject {
            kind: field("kind"),
            name: field("name"),
            namespace: field("namespace"),
        })
    }

    /// Upstream `appliesToUser`. A ServiceAccount subject without a namespace means the
    /// binding's own namespace, and never matches from a ClusterRoleBinding.
    fn applies_to(&self, user: &UserInfo, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.in_group(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                !ns.is_empty()
                    && user
                        .name
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.strip_prefix(ns))
                        .and_then(|rest| rest.strip_prefix(':'))
                        == Some(self.name.as_str())
            }
            _ => false,
        }
    }
}

/// A RoleBinding (namespace set) or ClusterRoleBinding (namespace empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Binding {
    name: String,
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_object(name: &str, namespace: &str, obj: &Value) -> Option<Self> {
        let subjects = match obj.get("subjects") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().filter_map(Subject::from_json).collect(),
            Some(_) => return None,
        };
        Some(Binding {
            name: name.to_string(),
            namespace: namespace.to_string(),
            role_ref: RoleRef::from_object(obj)?,
            subjects,
        })
    }
}

/// Why a binding's role could not be resolved. `Display` is the authorizer's wording (its
/// listers name the singular resource); [`ResolveError::registry_message`] is the wording of
/// the registry-backed resolver used by escalation checks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("role.rbac.authorization.k8s.io {} not found", go_quote(.name))]
    RoleNotFound { namespace: String, name: String },
    #[error("clusterrole.rbac.authorization.k8s.io {} not found", go_quote(.name))]
    ClusterRoleNotFound { name: String },
    #[error("unsupported role reference kind: {}", go_quote(.kind))]
    UnsupportedKind { kind: String },
}

impl ResolveError {
    /// The message as the API server's own registry reports it (`roles.rbac…`, plural).
    pub fn registry_message(&self) -> String {
        match self {
            Self::RoleNotFound { name, .. } => {
                format!("roles.{RBAC_GROUP} {} not found", go_quote(name))
            }
            Self::ClusterRoleNotFound { name } => {
                format!("clusterroles.{RBAC_GROUP} {} not found", go_quote(name))
            }
            Self::UnsupportedKind { .. } => self.to_string(),
        }
    }
}

/// Upstream `utilerrors.NewAggregate(..).Error()`: one message as is, several deduplicated,
/// joined with `, ` and bracketed.
pub(crate) fn aggregate_messages<I: IntoIterator<Item = String>>(messages: I) -> String {
    let mut seen: Vec<String> = Vec::new();
    for m in messages {
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// Which binding and subject granted a rule (upstream's binding describers), shown in the
/// reason of an allowed decision.
pub(crate) struct Source<'a> {
    binding: &'a Binding,
    subject: &'a Subject,
}

impl fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.binding;
        if b.namespace.is_empty() {
            write!(f, "ClusterRoleBinding {}", go_quote(&b.name))?;
        } else {
            write!(
                f,
                "RoleBinding {}",
                go_quote(&format!("{}/{}", b.name, b.namespace))
            )?;
        }
        write!(
            f,
            " of {} {} to {} ",
            b.role_ref.kind,
            go_quote(&b.role_ref.name),
            self.subject.kind
        )?;
        if self.subject.kind == "ServiceAccount" {
            let ns = if self.subject.namespace.is_empty() {
                &b.namespace
            } else {
                &self.subject.namespace
            };
            write!(f, "{}", go_quote(&format!("{}/{ns}", self.subject.name)))
        } else {
            write!(f, "{}", go_quote(&self.subject.name))
        }
    }
}

/// What rule resolution hands its visitor: a rule with where it came from, or an error.
pub(crate) enum Visit<'a> {
    Rule(Source<'a>, &'a PolicyRule),
    Error(ResolveError),
}

/// All RBAC objects at one store revision. Immutable once published; the cache builds a new
/// one for every change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    revision: Revision,
    roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    role_bindings: BTreeMap<(String, String), Binding>,
    cluster_role_bindings: BTreeMap<String, Binding>,
}

fn metadata_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(key)?.as_str()
}

impl Snapshot {
    /// A snapshot of the given objects (JSON as stored); objects without a name (or, for the
    /// namespaced kinds, a namespace) or with malformed fields are skipped.
    pub fn from_objects(
        roles: &[Value],
        cluster_roles: &[Value],
        role_bindings: &[Value],
        cluster_role_bindings: &[Value],
    ) -> Self {
        let mut snap = Snapshot::default();
        let kinds = [
            (ObjectKind::Role, roles),
            (ObjectKind::ClusterRole, cluster_roles),
            (ObjectKind::RoleBinding, role_bindings),
            (ObjectKind::ClusterRoleBinding, cluster_role_bindings),
        ];
        for (kind, objects) in kinds {
            for obj in objects {
                let name = metadata_str(obj, "name").unwrap_or_default();
                let namespace = if kind.namespaced() {
                    metadata_str(obj, "namespace").unwrap_or_default()
                } else {
                    ""
                };
                if name.is_empty() || (kind.namespaced() && namespace.is_empty()) {
                    continue;
                }
                snap.put(kind, namespace, name, Some(obj));
            }
        }
        snap
    }

    /// The store revision this snapshot reflects (0 for one built from objects).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub(crate) fn set_revision(&mut self, revision: Revision) {
        self.revision = revision;
    }

    /// Sets (`Some`) or removes (`None`) one object. A malformed object counts as absent.
    pub(crate) fn put(
        &mut self,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
        obj: Option<&Value>,
    ) {
        let scoped = || (namespace.to_string(), name.to_string());
        match kind {
            ObjectKind::Role => match obj {
                Some(o) => {
                    self.roles.insert(scoped(), PolicyRule::list_from_object(o));
                }
                None => {
                    self.roles.remove(&scoped());
                }
            },
            ObjectKind::ClusterRole => match obj {
                Some(o) => {
                    self.cluster_roles
                        .insert(name.to_string(), PolicyRule::list_from_object(o));
                }
                None => {
                    self.cluster_roles.remove(name);
                }
            },
            ObjectKind::RoleBinding => {
                match obj.and_then(|o| Binding::from_object(name, namespace, o)) {
                    Some(b) => {
                        self.role_bindings.insert(scoped(), b);
                    }
                    None => {
                        self.role_bindings.remove(&scoped());
                    }
                }
            }
            ObjectKind::ClusterRoleBinding => {
                match obj.and_then(|o| Binding::from_object(name, "", o)) {
                    Some(b) => {
                        self.cluster_role_bindings.insert(name.to_string(), b);
                    }
                    None => {
                        self.cluster_role_bindings.remove(name);
                    }
                }
            }
        }
    }

    /// The rules a `roleRef` points at, for a binding in `binding_namespace` ("" for a
    /// ClusterRoleBinding) — upstream `GetRoleReferenceRules`.
    pub fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        binding_namespace: &str,
    ) -> Result<&[PolicyRule], ResolveError> {
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .get(&(binding_namespace.to_string(), role_ref.name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| ResolveError::RoleNotFound {
                    namespace: binding_namespace.to_string(),
                    name: role_ref.name.clone(),
                }),
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(Vec::as_slice)
                .ok_or_else(|| ResolveError::ClusterRoleNotFound {
                    name: role_ref.name.clone(),
                }),
            other => Err(ResolveError::UnsupportedKind {
                kind: other.to_string(),
            }),
        }
    }

    /// Hands `visit` every rule that applies to `user` in `namespace`: first those of
    /// ClusterRoleBindings, then (for a namespace) those of its RoleBindings, plus every
    /// resolution error on the way. Stops when `visit` breaks.
    pub(crate) fn visit<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(Visit<'a>) -> ControlFlow<()>,
    ) {
        let cluster = self.cluster_role_bindings.values();
        let local = self
            .role_bindings
            .range((namespace.to_string(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace && !namespace.is_empty())
            .map(|(_, b)| b);
        for binding in cluster.chain(local) {
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|s| s.applies_to(user, &binding.namespace))
            else {
                continue;
            };
            match self.role_ref_rules(&binding.role_ref, &binding.namespace) {
                Ok(rules) => {
                    for rule in rules {
                        if visit(Visit::Rule(Source { binding, subject }, rule)).is_break() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    if visit(Visit::Error(e)).is_break() {
                        return;
                    }
                }
            }
        }
    }

    /// Allow if any rule that applies to the requester in the request's namespace (or
    /// cluster-wide) allows the request. An allowed decision comes with upstream's reason
    /// (`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"`); a denial's
    /// reason lists the resolution errors met (`RBAC: clusterrole.rbac… "x" not found`).
    pub fn authorize(&self, attrs: &Attributes) -> (Decision, String) {
        let mut allowed = None;
        let mut errors = Vec::new();
        self.visit(&attrs.user, &attrs.namespace, |v| match v {
            Visit::Rule(source, rule) if rule_allows(attrs, rule) => {
                allowed = Some(format!("RBAC: allowed by {source}"));
                ControlFlow::Break(())
            }
            Visit::Rule(..) => ControlFlow::Continue(()),
            Visit::Error(e) => {
                errors.push(e.to_string());
                ControlFlow::Continue(())
            }
        });
        if let Some(reason) = allowed {
            return (Decision::Allow, reason);
        }
        let reason = if errors.is_empty() {
            String::new()
        } else {
            format!("RBAC: {}", aggregate_messages(errors))
        };
        (Decision::Deny(reason), String::new())
    }

    /// Every rule that applies to `user` in `namespace` ("" = cluster-wide bindings only),
    /// with the resolution errors met, typed.
    pub(crate) fn resolve_rules(
        &self,
        user: &UserInfo,
        namespace: &str,
    ) -> (Vec<PolicyRule>, Vec<ResolveError>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        self.visit(user, namespace, |v| {
            match v {
                Visit::Rule(_, rule) => rules.push(rule.clone()),
                Visit::Error(e) => errors.push(e),
            }
            ControlFlow::Continue(())
        });
        (rules, errors)
    }

    /// Every rule that applies to `user` in `namespace` ("" = cluster-wide only), plus the
    /// resolution errors as the authorizer words them — for SelfSubjectRulesReview.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let (rules, errors) = self.resolve_rules(user, namespace);
        (rules, errors.iter().map(ToString::to_string).collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// The seed's job-robot Role and RoleBinding.
    pub(crate) fn job_robot() -> (Value, Value) {
        let role = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"namespace": "default", "name": "job-robot"},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["batch", "extensions"], "resources": ["jobs"],
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}
            ]
        });
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "job-robot", "namespace": "default"},
            "subjects": [{"kind": "ServiceAccount", "name": "job-robot", "namespace": "default"}],
            "roleRef": {"kind": "Role", "name": "job-robot", "apiGroup": "rbac.authorization.k8s.io"}
        });
        (role, binding)
    }

    pub(crate) fn sa_user(ns: &str, name: &str) -> UserInfo {
        UserInfo::authenticated(
            format!("system:serviceaccount:{ns}:{name}"),
            vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{ns}"),
            ],
        )
    }

    pub(crate) fn attrs(
        user: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
    ) -> Attributes {
        Attributes {
            user: user.clone(),
            verb: verb.into(),
            is_resource_request: true,
            namespace: ns.into(),
            api_group: group.into(),
            resource: resource.into(),
            ..Default::default()
        }
    }

    fn cluster_role(name: &str, rules: Value) -> Value {
        json!({"metadata": {"name": name}, "rules": rules})
    }

    fn binding(name: &str, ns: Option<&str>, kind: &str, role: &str, subjects: Value) -> Value {
        let mut meta = json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = json!(ns);
        }
        json!({
            "metadata": meta,
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": role},
            "subjects": subjects
        })
    }

    #[test]
    fn job_robot_may_create_jobs_in_default_only() {
        let (role, rb) = job_robot();
        let snap = Snapshot::from_objects(&[role], &[], &[rb], &[]);
        let robot = sa_user("default", "job-robot");
        let (d, reason) = snap.authorize(&attrs(&robot, "create", "batch", "jobs", "default"));
        assert_eq!(d, Decision::Allow);
        assert_eq!(
            reason,
            r#"RBAC: allowed by RoleBinding "job-robot/default" of Role "job-robot" to ServiceAccount "job-robot/default""#
        );
        let (d, _) = snap.authorize(&attrs(&robot, "create", "batch", "jobs", "kube-system"));
        assert_eq!(d, Decision::Deny(String::new()));
        let (d, _) = snap.authorize(&attrs(&robot, "create", "", "pods", "default"));
        assert_eq!(d, Decision::Deny(String::new()));
        // Another service account of the same namespace gets nothing.
        let other = sa_user("default", "default");
        let (d, _) = snap.authorize(&attrs(&other, "create", "batch", "jobs", "default"));
        assert!(matches!(d, Decision::Deny(_)));
    }

    #[test]
    fn rolebinding_to_a_clusterrole_applies_only_in_its_namespace() {
        let view = cluster_role(
            "view",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
        );
        let rb = binding(
            "bob-view",
            Some("dev"),
            "ClusterRole",
            "view",
            json!([{"kind": "User", "apiGroup": RBAC_GROUP, "name": "bob"}]),
        );
        let snap = Snapshot::from_objects(&[], &[view], &[rb], &[]);
        let bob = UserInfo::authenticated("bob", Vec::new());
        assert_eq!(
            snap.authorize(&attrs(&bob, "list", "", "pods", "dev")).0,
            Decision::Allow
        );
        assert!(matches!(
            snap.authorize(&attrs(&bob, "list", "", "pods", "prod")).0,
            Decision::Deny(_)
        ));
        // Cluster-wide (all-namespaces) lists are not granted by a RoleBinding.
        assert!(matches!(
            snap.authorize(&attrs(&bob, "list", "", "pods", "")).0,
            Decision::Deny(_)
        ));
    }

    #[test]
    fn group_subjects_apply_to_members() {
        let reader = cluster_role(
            "reader",
            json!([{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}]),
        );
        let crb = binding(
            "readers",
            None,
            "ClusterRole",
            "reader",
            json!([{"kind": "Group", "apiGroup": RBAC_GROUP, "name": "system:serviceaccounts:ci"}]),
        );
        let snap = Snapshot::from_objects(&[], &[reader], &[], &[crb]);
        let (d, reason) = snap.authorize(&attrs(
            &sa_user("ci", "builder"),
            "get",
            "batch",
            "jobs",
            "x",
        ));
        assert_eq!(d, Decision::Allow);
        assert_eq!(
            reason,
            r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "reader" to Group "system:serviceaccounts:ci""#
        );
        assert!(matches!(
            snap.authorize(&attrs(
                &sa_user("dev", "builder"),
                "get",
                "batch",
                "jobs",
                "x"
            ))
            .0,
            Decision::Deny(_)
        ));
    }

    #[test]
    fn missing_roles_give_the_rbac_not_found_reason() {
        let crb = binding(
            "gone",
            None,
            "ClusterRole",
            "x",
            json!([{"kind": "User", "name": "alice"}]),
        );
        let snap = Snapshot::from_objects(&[], &[], &[], std::slice::from_ref(&crb));
        let alice = UserInfo::authenticated("alice", Vec::new());
        let (d, _) = snap.authorize(&attrs(&alice, "get", "", "pods", "d"));
        assert_eq!(
            d,
            Decision::Deny(r#"RBAC: clusterrole.rbac.authorization.k8s.io "x" not found"#.into())
        );
        let rb = binding(
            "local",
            Some("d"),
            "Role",
            "r",
            json!([{"kind": "User", "name": "alice"}]),
        );
        let snap = Snapshot::from_objects(&[], &[], &[rb], &[crb]);
        let (d, _) = snap.authorize(&attrs(&alice, "get", "", "pods", "d"));
        assert_eq!(
            d,
            Decision::Deny(
                r#"RBAC: [clusterrole.rbac.authorization.k8s.io "x" not found, role.rbac.authorization.k8s.io "r" not found]"#
                    .into()
            )
        );
        let (_, errors) = snap.rules_for(&alice, "d");
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn service_account_subject_without_namespace_means_the_bindings_namespace() {
        let (role, mut rb) = job_robot();
        rb["subjects"] = json!([{"kind": "ServiceAccount", "name": "job-robot"}]);
        let snap = Snapshot::from_objects(&[role], &[], &[rb], &[]);
        let robot = sa_user("default", "job-robot");
        assert_eq!(
            snap.authorize(&attrs(&robot, "get", "", "pods", "default"))
                .0,
            Decision::Allow
        );
        let crb = binding(
            "c",
            None,
            "ClusterRole",
            "cr",
            json!([{"kind": "ServiceAccount", "name": "job-robot"}]),
        );
        let cr = cluster_role(
            "cr",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        );
        let snap = Snapshot::from_objects(&[], &[cr], &[], &[crb]);
        assert!(matches!(
            snap.authorize(&attrs(&robot, "get", "", "pods", "default"))
                .0,
            Decision::Deny(_)
        ));
    }

    #[test]
    fn rules_for_collects_cluster_and_namespace_rules() {
        let (role, rb) = job_robot();
        let discovery = cluster_role(
            "system:discovery",
            json!([{"verbs": ["get"], "nonResourceURLs": ["/api"]}]),
        );
        let crb = binding(
            "system:discovery",
            None,
            "ClusterRole",
            "system:discovery",
            json!([{"kind": "Group", "name": "system:authenticated"}]),
        );
        let snap = Snapshot::from_objects(&[role], &[discovery], &[rb], &[crb]);
        let robot = sa_user("default", "job-robot");
        assert_eq!(snap.rules_for(&robot, "default").0.len(), 3);
        assert_eq!(snap.rules_for(&robot, "").0.len(), 1);
        assert_eq!(snap.rules_for(&robot, "kube-system").0.len(), 1);
    }

    #[test]
    fn malformed_objects_are_skipped() {
        let snap = Snapshot::from_objects(
            &[
                json!({"metadata": {"name": "no-namespace"}, "rules": []}),
                json!(3),
            ],
            &[
                json!({"metadata": {}}),
                json!({"metadata": {"name": "ok"}, "rules": "bad"}),
            ],
            &[json!({"metadata": {"name": "b", "namespace": "d"}, "roleRef": 5})],
            &[
                json!({"metadata": {"name": "c"}, "roleRef": {"kind": "ClusterRole", "name": "ok"}, "subjects": 1}),
            ],
        );
        assert!(snap.roles.is_empty());
        assert_eq!(snap.cluster_roles.len(), 1);
        assert!(snap.role_bindings.is_empty());
        assert!(snap.cluster_role_bindings.is_empty());
    }
}
