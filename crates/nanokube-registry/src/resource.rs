//! What the API serves: one [`ResourceInfo`] per group/version/resource, used by routing,
//! discovery, OpenAPI and storage.

/// A subresource served under a resource (`pods/status`, `deployments/scale`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// Group, version and kind of the subresource's object when it differs from the parent's
    /// (`deployments/scale` → `autoscaling`, `v1`, `Scale`).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource at one group/version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group, `""` for core.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lower-case plural, the path segment (`jobs`).
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The version objects are stored in (a resource served at several versions is stored at
    /// one, e.g. CronJob at `batch/v1`).
    pub storage_version: &'static str,
    /// The `Warning:` text Kubernetes sent for a deprecated version.
    pub deprecation_warning: Option<&'static str>,
}

impl ResourceInfo {
    /// `apiVersion` of objects at this version: `v1` or `batch/v1`.
    pub fn api_version(&self) -> String {
        group_version(self.group, self.version)
    }
    pub fn storage_api_version(&self) -> String {
        group_version(self.group, self.storage_version)
    }
    /// The qualified resource used in messages: `pods`, `jobs.batch`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    /// The qualified kind used in Invalid messages: `Pod`, `Job.batch`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }
    /// The storage key prefix of this resource, shared by every version it is served at.
    pub fn storage_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/registry/{}/", self.plural)
        } else {
            format!("/registry/{}/{}/", self.group, self.plural)
        }
    }
    /// The storage key of one object.
    pub fn storage_key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.storage_prefix()),
            _ => format!("{}{name}", self.storage_prefix()),
        }
    }
}

pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const CRUD_NO_COLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

const fn status(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group,
        version,
        kind,
        verbs: STATUS_VERBS,
    }
}
const fn scale() -> Subresource {
    Subresource {
        name: "scale",
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: STATUS_VERBS,
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $ns:expr,
     short: $short:expr, cat: $cat:expr, verbs: $verbs:expr, sub: $sub:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            verbs: $verbs,
            subresources: $sub,
            storage_version: $version,
            deprecation_warning: None,
        }
    };
}

pub static NAMESPACES: ResourceInfo = res!("", "v1", "Namespace", "namespaces", "namespace", false,
    short: &["ns"], cat: &[], verbs: CRUD_NO_COLLECTION,
    sub: &[status("", "v1", "Namespace"), Subresource { name: "finalize", group: "", version: "v1", kind: "Namespace", verbs: &["update"] }]);
pub static PODS: ResourceInfo = res!("", "v1", "Pod", "pods", "pod", true,
short: &["po"], cat: &["all"], verbs: CRUD,
sub: &[
    status("", "v1", "Pod"),
    Subresource { name: "binding", group: "", version: "v1", kind: "Binding", verbs: &["create"] },
    Subresource { name: "log", group: "", version: "v1", kind: "Pod", verbs: &["get"] },
    // Streaming connections: `get` is the WebSocket upgrade, `create` the SPDY one.
    Subresource { name: "exec", group: "", version: "v1", kind: "PodExecOptions", verbs: &["create", "get"] },
    Subresource { name: "attach", group: "", version: "v1", kind: "PodAttachOptions", verbs: &["create", "get"] },
]);
pub static SERVICE_ACCOUNTS: ResourceInfo = res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true,
    short: &["sa"], cat: &[], verbs: CRUD,
    sub: &[Subresource { name: "token", group: "authentication.k8s.io", version: "v1", kind: "TokenRequest", verbs: &["create"] }]);
pub static SECRETS: ResourceInfo = res!("", "v1", "Secret", "secrets", "secret", true,
    short: &[], cat: &[], verbs: CRUD, sub: &[]);
pub static CONFIG_MAPS: ResourceInfo = res!("", "v1", "ConfigMap", "configmaps", "configmap", true,
    short: &["cm"], cat: &[], verbs: CRUD, sub: &[]);
pub static EVENTS: ResourceInfo = res!("", "v1", "Event", "events", "event", true,
    short: &["ev"], cat: &[], verbs: CRUD, sub: &[]);
pub static NODES: ResourceInfo = res!("", "v1", "Node", "nodes", "node", false,
    short: &["no"], cat: &[], verbs: CRUD, sub: &[status("", "v1", "Node")]);
pub static SERVICES: ResourceInfo = res!("", "v1", "Service", "services", "service", true,
    short: &["svc"], cat: &["all"], verbs: CRUD, sub: &[status("", "v1", "Service")]);
pub static ENDPOINTS: ResourceInfo = res!("", "v1", "Endpoints", "endpoints", "endpoints", true,
    short: &["ep"], cat: &[], verbs: CRUD, sub: &[]);
pub static DEPLOYMENTS: ResourceInfo = res!("apps", "v1", "Deployment", "deployments", "deployment", true,
    short: &["deploy"], cat: &["all"], verbs: CRUD,
    sub: &[status("apps", "v1", "Deployment"), scale()]);
pub static REPLICA_SETS: ResourceInfo = res!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true,
    short: &["rs"], cat: &["all"], verbs: CRUD,
    sub: &[status("apps", "v1", "ReplicaSet"), scale()]);
pub static JOBS: ResourceInfo = res!("batch", "v1", "Job", "jobs", "job", true,
    short: &[], cat: &["all"], verbs: CRUD, sub: &[status("batch", "v1", "Job")]);
pub static CRON_JOBS: ResourceInfo = res!("batch", "v1", "CronJob", "cronjobs", "cronjob", true,
    short: &["cj"], cat: &["all"], verbs: CRUD, sub: &[status("batch", "v1", "CronJob")]);
/// batch/v1beta1 CronJob, removed upstream in 1.25 and served here for old manifests; stored
/// as batch/v1.
pub static CRON_JOBS_V1BETA1: ResourceInfo = ResourceInfo {
    version: "v1beta1",
    storage_version: "v1",
    subresources: &[status("batch", "v1beta1", "CronJob")],
    deprecation_warning: Some(
        "batch/v1beta1 CronJob is deprecated in v1.21+, unavailable in v1.25+; use batch/v1 CronJob",
    ),
    ..CRON_JOBS
};
pub static ROLES: ResourceInfo = res!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", true,
    short: &[], cat: &[], verbs: CRUD, sub: &[]);
pub static CLUSTER_ROLES: ResourceInfo = res!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", false,
    short: &[], cat: &[], verbs: CRUD, sub: &[]);
pub static ROLE_BINDINGS: ResourceInfo = res!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", true,
    short: &[], cat: &[], verbs: CRUD, sub: &[]);
pub static CLUSTER_ROLE_BINDINGS: ResourceInfo = res!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false,
    short: &[], cat: &[], verbs: CRUD, sub: &[]);
pub static LEASES: ResourceInfo = res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", true,
    short: &[], cat: &[], verbs: CRUD, sub: &[]);
/// events.k8s.io/v1 Event: the same objects as core/v1 events, in the newer schema. Stored
/// separately here (upstream converts between the two through one internal type).
pub static EVENTS_V1: ResourceInfo = res!("events.k8s.io", "v1", "Event", "events", "event", true,
    short: &["ev"], cat: &[], verbs: CRUD, sub: &[]);

/// Every served resource, in discovery order (groups in preference order, then resources).
pub static ALL: &[&ResourceInfo] = &[
    &NAMESPACES,
    &PODS,
    &SERVICE_ACCOUNTS,
    &SECRETS,
    &CONFIG_MAPS,
    &EVENTS,
    &NODES,
    &SERVICES,
    &ENDPOINTS,
    &DEPLOYMENTS,
    &REPLICA_SETS,
    &JOBS,
    &CRON_JOBS,
    &CRON_JOBS_V1BETA1,
    &ROLES,
    &CLUSTER_ROLES,
    &ROLE_BINDINGS,
    &CLUSTER_ROLE_BINDINGS,
    &LEASES,
    &EVENTS_V1,
    &TOKEN_REVIEWS,
    &SELF_SUBJECT_REVIEWS,
    &SUBJECT_ACCESS_REVIEWS,
    &SELF_SUBJECT_ACCESS_REVIEWS,
    &LOCAL_SUBJECT_ACCESS_REVIEWS,
    &SELF_SUBJECT_RULES_REVIEWS,
];

const CREATE_ONLY: &[&str] = &["create"];

// Reviews: create-only resources that are answered, never stored.
pub static TOKEN_REVIEWS: ResourceInfo = res!("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", false,
    short: &[], cat: &[], verbs: CREATE_ONLY, sub: &[]);
pub static SELF_SUBJECT_REVIEWS: ResourceInfo = res!("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", false,
    short: &[], cat: &[], verbs: CREATE_ONLY, sub: &[]);
pub static SUBJECT_ACCESS_REVIEWS: ResourceInfo = res!("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", "subjectaccessreview", false,
    short: &[], cat: &[], verbs: CREATE_ONLY, sub: &[]);
pub static SELF_SUBJECT_ACCESS_REVIEWS: ResourceInfo = res!("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "selfsubjectaccessreview", false,
    short: &[], cat: &[], verbs: CREATE_ONLY, sub: &[]);
pub static LOCAL_SUBJECT_ACCESS_REVIEWS: ResourceInfo = res!("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", "localsubjectaccessreview", true,
    short: &[], cat: &[], verbs: CREATE_ONLY, sub: &[]);
pub static SELF_SUBJECT_RULES_REVIEWS: ResourceInfo = res!("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "selfsubjectrulesreview", false,
    short: &[], cat: &[], verbs: CREATE_ONLY, sub: &[]);

impl ResourceInfo {
    /// Whether objects of this resource are answered rather than stored (the reviews).
    pub fn is_review(&self) -> bool {
        self.verbs == CREATE_ONLY
    }
}

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    ALL.iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by group, version and kind.
pub fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    ALL.iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The served group/versions in discovery order: `(group, [versions in preference order])`.
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in ALL {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cronjob_v1beta1_shares_storage_with_v1() {
        assert_eq!(
            CRON_JOBS_V1BETA1.storage_key(Some("default"), "sleepy"),
            CRON_JOBS.storage_key(Some("default"), "sleepy")
        );
        assert_eq!(CRON_JOBS_V1BETA1.storage_api_version(), "batch/v1");
    }

    #[test]
    fn batch_group_prefers_v1_over_v1beta1() {
        let groups = groups();
        let batch = groups
            .iter()
            .find(|(g, _)| *g == "batch")
            .map(|(_, v)| v.clone());
        assert_eq!(batch, Some(vec!["v1", "v1beta1"]));
        assert_eq!(groups[0].0, "");
    }

    #[test]
    fn qualified_names_follow_apimachinery() {
        assert_eq!(PODS.qualified(), "pods");
        assert_eq!(JOBS.qualified(), "jobs.batch");
        assert_eq!(JOBS.qualified_kind(), "Job.batch");
        assert_eq!(PODS.qualified_kind(), "Pod");
    }
}
