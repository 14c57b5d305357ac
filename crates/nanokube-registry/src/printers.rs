//! Server-side printing: the `columnDefinitions` and row `cells` of the `meta.k8s.io/v1`
//! Table that `kubectl get` asks for, as Kubernetes 1.32 fills them in
//! `pkg/printers/internalversion/printers.go` (one print handler per kind) and, for kinds
//! without a handler (Roles, ClusterRoles), apiserver's default table convertor
//! (`pkg/registry/rest/table.go`: Name, Created At).
//!
//! The server always prints the wide (`priority: 1`) columns too; kubectl hides them unless
//! `-o wide`. Cells are JSON strings or integers exactly where upstream puts a Go string or
//! `int64`, even when a column's declared `type` says otherwise (upstream declares
//! `Up-to-date` a string and fills an integer, for instance).
//!
//! Objects arrive in their storage version and may lack any field. Where the API decoder
//! would have filled a default before upstream's printer saw the object (a Service's `type`,
//! a Deployment's `replicas`, …) the default is assumed; everything else prints as upstream
//! prints a zero value (`<none>`, `<unknown>`, empty string or 0).

use crate::duration::{age, human_duration, parse_timestamp};
use crate::resource::ResourceInfo;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One `metav1.TableColumnDefinition`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Column {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

/// Column definitions for a resource, in the 1.32 order, including the `priority: 1` wide
/// columns.
pub fn columns(info: &ResourceInfo) -> Vec<Column> {
    Printer::of(info).columns().to_vec()
}

/// The cells of one row (all columns including the wide ones), in [`columns`] order.
pub fn cells(info: &ResourceInfo, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match Printer::of(info) {
        Printer::Pod => pod_cells(object, now),
        Printer::Job => job_cells(object, now),
        Printer::CronJob => cron_job_cells(object, now),
        Printer::Deployment => deployment_cells(object, now),
        Printer::ReplicaSet => replica_set_cells(object, now),
        Printer::Namespace => {
            vec![
                name(object),
                json!(text(object, "/status/phase")),
                created(object, now),
            ]
        }
        Printer::ServiceAccount => {
            vec![
                name(object),
                json!(count(object, "/secrets")),
                created(object, now),
            ]
        }
        Printer::Secret => secret_cells(object, now),
        Printer::ConfigMap => {
            let data = count(object, "/data") + count(object, "/binaryData");
            vec![name(object), json!(data), created(object, now)]
        }
        Printer::Event => event_cells(object, now),
        Printer::Node => node_cells(object, now),
        Printer::Service => service_cells(object, now),
        Printer::Endpoints => {
            vec![
                name(object),
                json!(format_endpoints(object)),
                created(object, now),
            ]
        }
        Printer::Lease => {
            vec![
                name(object),
                json!(text(object, "/spec/holderIdentity")),
                created(object, now),
            ]
        }
        Printer::RoleBinding | Printer::ClusterRoleBinding => role_binding_cells(object, now),
        Printer::Default => vec![name(object), json!(created_at(object))],
    }
}

/// The row `conditions` upstream attaches: a pod that finished carries a `Completed`
/// condition (`metav1.RowCompleted`) so clients can tell finished rows apart. Every other
/// row has none.
pub fn row_conditions(info: &ResourceInfo, object: &Value) -> Vec<Value> {
    if Printer::of(info) != Printer::Pod {
        return Vec::new();
    }
    let (reason, message) = match text(object, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return Vec::new(),
    };
    vec![json!({"type": "Completed", "status": "True", "reason": reason, "message": message})]
}

/// The upstream print handler that formats a resource (by group and kind, so every served
/// version of a kind prints alike, and both Event APIs share core's printer as they share
/// its internal type upstream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Printer {
    Pod,
    Job,
    CronJob,
    Deployment,
    ReplicaSet,
    Namespace,
    ServiceAccount,
    Secret,
    ConfigMap,
    Event,
    Node,
    Service,
    Endpoints,
    Lease,
    RoleBinding,
    ClusterRoleBinding,
    /// No print handler: apiserver's default table (Roles and ClusterRoles).
    Default,
}

impl Printer {
    fn of(info: &ResourceInfo) -> Self {
        match (info.group, info.kind) {
            ("", "Pod") => Self::Pod,
            ("", "Namespace") => Self::Namespace,
            ("", "ServiceAccount") => Self::ServiceAccount,
            ("", "Secret") => Self::Secret,
            ("", "ConfigMap") => Self::ConfigMap,
            ("" | "events.k8s.io", "Event") => Self::Event,
            ("", "Node") => Self::Node,
            ("", "Service") => Self::Service,
            ("", "Endpoints") => Self::Endpoints,
            ("apps", "Deployment") => Self::Deployment,
            ("apps", "ReplicaSet") => Self::ReplicaSet,
            ("batch", "Job") => Self::Job,
            ("batch", "CronJob") => Self::CronJob,
            ("coordination.k8s.io", "Lease") => Self::Lease,
            ("rbac.authorization.k8s.io", "RoleBinding") => Self::RoleBinding,
            ("rbac.authorization.k8s.io", "ClusterRoleBinding") => Self::ClusterRoleBinding,
            _ => Self::Default,
        }
    }

    fn columns(self) -> &'static [Column] {
        match self {
            Self::Pod => POD_COLUMNS,
            Self::Job => JOB_COLUMNS,
            Self::CronJob => CRON_JOB_COLUMNS,
            Self::Deployment => DEPLOYMENT_COLUMNS,
            Self::ReplicaSet => REPLICA_SET_COLUMNS,
            Self::Namespace => NAMESPACE_COLUMNS,
            Self::ServiceAccount => SERVICE_ACCOUNT_COLUMNS,
            Self::Secret => SECRET_COLUMNS,
            Self::ConfigMap => CONFIG_MAP_COLUMNS,
            Self::Event => EVENT_COLUMNS,
            Self::Node => NODE_COLUMNS,
            Self::Service => SERVICE_COLUMNS,
            Self::Endpoints => ENDPOINTS_COLUMNS,
            Self::Lease => LEASE_COLUMNS,
            Self::RoleBinding => ROLE_BINDING_COLUMNS,
            Self::ClusterRoleBinding => CLUSTER_ROLE_BINDING_COLUMNS,
            Self::Default => DEFAULT_COLUMNS,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Column sets
// ---------------------------------------------------------------------------------------

const fn column(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: doc::OBJECT_META_NAME,
    priority: 0,
};
const AGE: Column = column("Age", "string", doc::OBJECT_META_CREATION_TIMESTAMP);
const CONTAINERS: Column = wide("Containers", "string", doc::TEMPLATE_CONTAINERS);
const IMAGES: Column = wide("Images", "string", doc::TEMPLATE_IMAGES);

static POD_COLUMNS: &[Column] = &[
    NAME,
    column(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    column(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    column("Restarts", "string", doc::POD_RESTARTS),
    AGE,
    wide("IP", "string", doc::POD_STATUS_POD_IP),
    wide("Node", "string", doc::POD_SPEC_NODE_NAME),
    wide(
        "Nominated Node",
        "string",
        doc::POD_STATUS_NOMINATED_NODE_NAME,
    ),
    wide("Readiness Gates", "string", doc::POD_SPEC_READINESS_GATES),
];

static JOB_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", "Status of the job."),
    column("Completions", "string", doc::JOB_STATUS_SUCCEEDED),
    column("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", doc::JOB_SPEC_SELECTOR),
];

static CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    column("Schedule", "string", doc::CRON_JOB_SPEC_SCHEDULE),
    column("Timezone", "string", doc::CRON_JOB_SPEC_TIME_ZONE),
    column("Suspend", "boolean", doc::CRON_JOB_SPEC_SUSPEND),
    column("Active", "integer", doc::CRON_JOB_STATUS_ACTIVE),
    column(
        "Last Schedule",
        "string",
        doc::CRON_JOB_STATUS_LAST_SCHEDULE_TIME,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", doc::JOB_SPEC_SELECTOR),
];

static DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    column("Ready", "string", "Number of the pod with ready state"),
    column(
        "Up-to-date",
        "string",
        doc::DEPLOYMENT_STATUS_UPDATED_REPLICAS,
    ),
    column(
        "Available",
        "string",
        doc::DEPLOYMENT_STATUS_AVAILABLE_REPLICAS,
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", doc::DEPLOYMENT_SPEC_SELECTOR),
];

static REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    column("Desired", "integer", doc::REPLICA_SET_SPEC_REPLICAS),
    column("Current", "integer", doc::REPLICA_SET_STATUS_REPLICAS),
    column("Ready", "integer", doc::REPLICA_SET_STATUS_READY_REPLICAS),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", doc::REPLICA_SET_SPEC_SELECTOR),
];

static NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", "The status of the namespace"),
    AGE,
];

static SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    column("Secrets", "string", doc::SERVICE_ACCOUNT_SECRETS),
    AGE,
];

static SECRET_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "string", doc::SECRET_TYPE),
    column("Data", "string", doc::SECRET_DATA),
    AGE,
];

static CONFIG_MAP_COLUMNS: &[Column] = &[NAME, column("Data", "string", doc::CONFIG_MAP_DATA), AGE];

static EVENT_COLUMNS: &[Column] = &[
    column("Last Seen", "string", doc::EVENT_LAST_TIMESTAMP),
    column("Type", "string", doc::EVENT_TYPE),
    column("Reason", "string", doc::EVENT_REASON),
    column("Object", "string", doc::EVENT_INVOLVED_OBJECT),
    wide("Subobject", "string", doc::OBJECT_REFERENCE_FIELD_PATH),
    wide("Source", "string", doc::EVENT_SOURCE),
    column("Message", "string", doc::EVENT_MESSAGE),
    wide("First Seen", "string", doc::EVENT_FIRST_TIMESTAMP),
    wide("Count", "string", doc::EVENT_COUNT),
    Column {
        priority: 1,
        ..NAME
    },
];

static NODE_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", "The status of the node"),
    column("Roles", "string", "The roles of the node"),
    AGE,
    column("Version", "string", doc::NODE_KUBELET_VERSION),
    wide("Internal-IP", "string", doc::NODE_STATUS_ADDRESSES),
    wide("External-IP", "string", doc::NODE_STATUS_ADDRESSES),
    wide("OS-Image", "string", doc::NODE_OS_IMAGE),
    wide("Kernel-Version", "string", doc::NODE_KERNEL_VERSION),
    wide(
        "Container-Runtime",
        "string",
        doc::NODE_CONTAINER_RUNTIME_VERSION,
    ),
];

static SERVICE_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "string", doc::SERVICE_SPEC_TYPE),
    column("Cluster-IP", "string", doc::SERVICE_SPEC_CLUSTER_IP),
    column("External-IP", "string", doc::SERVICE_SPEC_EXTERNAL_IPS),
    column("Port(s)", "string", doc::SERVICE_SPEC_PORTS),
    AGE,
    wide("Selector", "string", doc::SERVICE_SPEC_SELECTOR),
];

static ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    column("Endpoints", "string", doc::ENDPOINTS_SUBSETS),
    AGE,
];

static LEASE_COLUMNS: &[Column] = &[
    NAME,
    column("Holder", "string", doc::LEASE_SPEC_HOLDER_IDENTITY),
    AGE,
];

static ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    column("Role", "string", doc::ROLE_BINDING_ROLE_REF),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

static CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    column("Role", "string", doc::CLUSTER_ROLE_BINDING_ROLE_REF),
    AGE,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

static DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    column("Created At", "date", doc::OBJECT_META_CREATION_TIMESTAMP),
];

/// Column descriptions: the API field docs (`SwaggerDoc()`) of Kubernetes 1.32 that
/// upstream's column definitions quote, some from the old v1beta1 types it still names.
mod doc {
    pub const OBJECT_META_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub const OBJECT_META_CREATION_TIMESTAMP: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
    pub const TEMPLATE_CONTAINERS: &str = "Names of each container in the template.";
    pub const TEMPLATE_IMAGES: &str = "Images referenced by each container in the template.";

    pub const POD_RESTARTS: &str = "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.";
    pub const POD_STATUS_POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
    pub const POD_SPEC_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub const POD_STATUS_NOMINATED_NODE_NAME: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
    pub const POD_SPEC_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

    pub const JOB_STATUS_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
    pub const JOB_SPEC_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

    // batch/v1beta1 CronJob docs, as upstream's CronJob columns quote them.
    pub const CRON_JOB_SPEC_SCHEDULE: &str =
        "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
    pub const CRON_JOB_SPEC_TIME_ZONE: &str = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
    pub const CRON_JOB_SPEC_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
    pub const CRON_JOB_STATUS_ACTIVE: &str = "A list of pointers to currently running jobs.";
    pub const CRON_JOB_STATUS_LAST_SCHEDULE_TIME: &str =
        "Information when was the last time the job was successfully scheduled.";

    // extensions/v1beta1 Deployment and ReplicaSet docs, as upstream's columns quote them.
    pub const DEPLOYMENT_STATUS_UPDATED_REPLICAS: &str = "Total number of non-terminated pods targeted by this deployment that have the desired template spec.";
    pub const DEPLOYMENT_STATUS_AVAILABLE_REPLICAS: &str = "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.";
    pub const DEPLOYMENT_SPEC_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.";
    pub const REPLICA_SET_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
    pub const REPLICA_SET_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
    pub const REPLICA_SET_STATUS_READY_REPLICAS: &str =
        "The number of ready replicas for this replica set.";
    pub const REPLICA_SET_SPEC_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

    pub const SERVICE_ACCOUNT_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
    pub const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
    pub const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
    pub const CONFIG_MAP_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";

    pub const EVENT_LAST_TIMESTAMP: &str =
        "The time at which the most recent occurrence of this event was recorded.";
    pub const EVENT_TYPE: &str =
        "Type of this event (Normal, Warning), new types could be added in the future";
    pub const EVENT_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
    pub const EVENT_INVOLVED_OBJECT: &str = "The object that this event is about.";
    pub const OBJECT_REFERENCE_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
    pub const EVENT_SOURCE: &str =
        "The component reporting this event. Should be a short machine understandable string.";
    pub const EVENT_MESSAGE: &str = "A human-readable description of the status of this operation.";
    pub const EVENT_FIRST_TIMESTAMP: &str =
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub const EVENT_COUNT: &str = "The number of times this event has occurred.";

    pub const NODE_KUBELET_VERSION: &str = "Kubelet Version reported by the node.";
    pub const NODE_STATUS_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    pub const NODE_OS_IMAGE: &str =
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub const NODE_KERNEL_VERSION: &str =
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub const NODE_CONTAINER_RUNTIME_VERSION: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";

    pub const SERVICE_SPEC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub const SERVICE_SPEC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_SPEC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
    pub const SERVICE_SPEC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_SPEC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
    pub const ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";

    pub const LEASE_SPEC_HOLDER_IDENTITY: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";

    // rbac/v1beta1 docs, as upstream's binding columns quote them.
    pub const ROLE_BINDING_ROLE_REF: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";
    pub const CLUSTER_ROLE_BINDING_ROLE_REF: &str = "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.";
}

// ---------------------------------------------------------------------------------------
// Field access that never fails: a missing or mistyped field reads as Go's zero value.
// ---------------------------------------------------------------------------------------

const NONE: &str = "<none>";

/// The value at a JSON pointer, treating `null` as absent (Go's nil).
fn field<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer).filter(|f| !f.is_null())
}

fn opt_text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    field(v, pointer).and_then(Value::as_str)
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    opt_text(v, pointer).unwrap_or("")
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    let f = field(v, pointer)?;
    // A float-typed JSON number (`3.0`) decodes into a Go integer field too.
    f.as_i64()
        .or_else(|| f.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
}

fn flag(v: &Value, pointer: &str) -> Option<bool> {
    field(v, pointer).and_then(Value::as_bool)
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    field(v, pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `len()` of a list or map field.
fn count(v: &Value, pointer: &str) -> i64 {
    let n = match field(v, pointer) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(m)) => m.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn present(v: &Value, pointer: &str) -> bool {
    field(v, pointer).is_some()
}

fn time(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    parse_timestamp(opt_text(v, pointer))
}

/// First condition of a type decides, as upstream's condition helpers look no further.
fn condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| text(c, "/type") == type_)
        .is_some_and(|c| text(c, "/status") == "True")
}

fn name(object: &Value) -> Value {
    json!(text(object, "/metadata/name"))
}

/// The Age cell: `translateTimestampSince(creationTimestamp)`.
fn created(object: &Value, now: DateTime<Utc>) -> Value {
    json!(age(opt_text(object, "/metadata/creationTimestamp"), now))
}

/// The default table's Created At cell: RFC 3339 in UTC, Go's zero time when unset.
fn created_at(object: &Value) -> String {
    match time(object, "/metadata/creationTimestamp") {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

fn since(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    human_duration(now.signed_duration_since(t))
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { NONE } else { s }
}

/// `layoutContainerCells`: container names and images, each comma-joined.
fn container_cells(pod_spec: Option<&Value>) -> (Value, Value) {
    let containers = pod_spec.map_or(&[][..], |spec| list(spec, "/containers"));
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

// ---------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------

/// What `printPod` derives from a pod's statuses.
#[derive(Debug, PartialEq)]
struct PodSummary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<DateTime<Utc>>,
}

/// A container status's `lastState.terminated.finishedAt`.
fn last_termination(status: &Value) -> Option<DateTime<Utc>> {
    time(status, "/lastState/terminated/finishedAt")
}

fn terminated_state(status: &Value) -> Option<&Value> {
    field(status, "/state/terminated")
}

/// `reason`, else `Signal:N`, else `ExitCode:N`, after `prefix`.
fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = text(terminated, "/reason");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    match int(terminated, "/signal").unwrap_or(0) {
        0 => format!(
            "{prefix}ExitCode:{}",
            int(terminated, "/exitCode").unwrap_or(0)
        ),
        signal => format!("{prefix}Signal:{signal}"),
    }
}

/// The READY, STATUS and RESTARTS algorithm of `printPod`.
fn summarize_pod(pod: &Value) -> PodSummary {
    let phase = text(pod, "/status/phase");
    let status_reason = text(pod, "/status/reason");
    let conditions = list(pod, "/status/conditions");
    let mut reason = if status_reason.is_empty() {
        phase
    } else {
        status_reason
    }
    .to_string();
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    // Sidecars (init containers with restartPolicy Always) count as containers of the pod.
    let init_specs = list(pod, "/spec/initContainers");
    let is_sidecar_spec = |spec: &Value| text(spec, "/restartPolicy") == "Always";
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .find(|spec| text(spec, "/name") == name)
            .is_some_and(is_sidecar_spec)
    };
    let total = list(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|spec| is_sidecar_spec(spec))
            .count();

    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart = None;
    let mut sidecar_restarts = 0;
    let mut last_sidecar_restart = None;
    let mut initializing = false;
    for (index, status) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let restart_count = int(status, "/restartCount").unwrap_or(0);
        restarts += restart_count;
        last_restart = last_restart.max(last_termination(status));
        let sidecar = is_sidecar(text(status, "/name"));
        if sidecar {
            sidecar_restarts += restart_count;
            last_sidecar_restart = last_sidecar_restart.max(last_termination(status));
        }
        let terminated = terminated_state(status);
        if terminated.is_some_and(|t| int(t, "/exitCode").unwrap_or(0) == 0) {
            continue;
        }
        if sidecar && flag(status, "/started") == Some(true) {
            if flag(status, "/ready") == Some(true) {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = text(status, "/state/waiting/reason");
        reason = match terminated {
            Some(t) => terminated_reason(t, "Init:"),
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                format!("Init:{waiting_reason}")
            }
            None => format!("Init:{index}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        // Once initialized, only sidecars' restarts still count from the init containers.
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for status in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(status, "/restartCount").unwrap_or(0);
            last_restart = last_restart.max(last_termination(status));
            let waiting_reason = text(status, "/state/waiting/reason");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(terminated) = terminated_state(status) {
                reason = terminated_reason(terminated, "");
            } else if flag(status, "/ready") == Some(true) && present(status, "/state/running") {
                has_running = true;
                ready += 1;
            }
        }
        // A finished container next to a running one leaves the pod running.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if present(pod, "/metadata/deletionTimestamp") {
        if status_reason == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    PodSummary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let summary = summarize_pod(pod);
    let restarts = match summary.last_restart {
        Some(t) if summary.restarts != 0 => format!("{} ({} ago)", summary.restarts, since(t, now)),
        _ => summary.restarts.to_string(),
    };
    // v1→internal conversion makes `podIP` authoritative over `podIPs[0]`.
    let ip = match text(pod, "/status/podIP") {
        "" => list(pod, "/status/podIPs")
            .first()
            .map_or("", |p| text(p, "/ip")),
        ip => ip,
    };
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        NONE.to_string()
    } else {
        let conditions = list(pod, "/status/conditions");
        let passed = gates
            .iter()
            .filter(|gate| condition_true(conditions, text(gate, "/conditionType")))
            .count();
        format!("{passed}/{}", gates.len())
    };
    vec![
        name(pod),
        json!(format!("{}/{}", summary.ready, summary.total)),
        json!(summary.reason),
        json!(restarts),
        created(pod, now),
        json!(or_none(ip)),
        json!(or_none(text(pod, "/spec/nodeName"))),
        json!(or_none(text(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

// ---------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------

/// `printJob`'s STATUS: terminal conditions first, then deletion, suspension and a pending
/// failure. (1.32 has no `SuccessCriteriaMet` status: such a job prints `Running` until its
/// `Complete` condition lands.)
fn job_status(job: &Value) -> &'static str {
    let conditions = list(job, "/status/conditions");
    if condition_true(conditions, "Complete") {
        "Complete"
    } else if condition_true(conditions, "Failed") {
        "Failed"
    } else if present(job, "/metadata/deletionTimestamp") {
        "Terminating"
    } else if condition_true(conditions, "Suspended") {
        "Suspended"
    } else if condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int(job, "/status/succeeded").unwrap_or(0);
    let completions = match int(job, "/spec/completions") {
        Some(completions) => format!("{succeeded}/{completions}"),
        // A work queue (completions unset) finishes with its first success.
        None => match int(job, "/spec/parallelism") {
            Some(parallelism) if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time(job, "/status/startTime"),
        time(job, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => since(start, now),
        (Some(start), Some(end)) => human_duration(end.signed_duration_since(start)),
    };
    let (containers, images) = container_cells(field(job, "/spec/template/spec"));
    vec![
        name(job),
        json!(job_status(job)),
        json!(completions),
        json!(duration),
        created(job, now),
        containers,
        images,
        json!(format_label_selector(field(job, "/spec/selector"))),
    ]
}

fn cron_job_cells(cron_job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last_schedule = match opt_text(cron_job, "/status/lastScheduleTime") {
        Some(t) => age(Some(t), now),
        None => NONE.to_string(),
    };
    // `suspend` is defaulted to false before upstream's printer sees the object.
    let suspend = if flag(cron_job, "/spec/suspend") == Some(true) {
        "True"
    } else {
        "False"
    };
    let template = field(cron_job, "/spec/jobTemplate/spec");
    let (containers, images) = container_cells(template.and_then(|t| field(t, "/template/spec")));
    vec![
        name(cron_job),
        json!(text(cron_job, "/spec/schedule")),
        json!(opt_text(cron_job, "/spec/timeZone").unwrap_or(NONE)),
        json!(suspend),
        json!(count(cron_job, "/status/active")),
        json!(last_schedule),
        created(cron_job, now),
        containers,
        images,
        json!(format_label_selector(
            template.and_then(|t| field(t, "/selector"))
        )),
    ]
}

/// `spec.replicas` as the decoder defaults it.
fn desired_replicas(object: &Value) -> i64 {
    int(object, "/spec/replicas").unwrap_or(1)
}

fn deployment_cells(deployment: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ready = int(deployment, "/status/readyReplicas").unwrap_or(0);
    // Unlike the other workloads, Deployments print the bare selector string.
    let selector = label_selector_string(field(deployment, "/spec/selector"))
        .unwrap_or_else(|| "<invalid>".to_string());
    let (containers, images) = container_cells(field(deployment, "/spec/template/spec"));
    vec![
        name(deployment),
        json!(format!("{ready}/{}", desired_replicas(deployment))),
        json!(int(deployment, "/status/updatedReplicas").unwrap_or(0)),
        json!(int(deployment, "/status/availableReplicas").unwrap_or(0)),
        created(deployment, now),
        containers,
        images,
        json!(selector),
    ]
}

fn replica_set_cells(replica_set: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (containers, images) = container_cells(field(replica_set, "/spec/template/spec"));
    vec![
        name(replica_set),
        json!(desired_replicas(replica_set)),
        json!(int(replica_set, "/status/replicas").unwrap_or(0)),
        json!(int(replica_set, "/status/readyReplicas").unwrap_or(0)),
        created(replica_set, now),
        containers,
        images,
        json!(format_label_selector(field(replica_set, "/spec/selector"))),
    ]
}

// ---------------------------------------------------------------------------------------
// Core config and cluster objects
// ---------------------------------------------------------------------------------------

fn secret_cells(secret: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // An empty type is defaulted to Opaque by the decoder.
    let type_ = match text(secret, "/type") {
        "" => "Opaque",
        t => t,
    };
    vec![
        name(secret),
        json!(type_),
        json!(count(secret, "/data")),
        created(secret, now),
    ]
}

/// A core/v1 Event field, or its events.k8s.io/v1 counterpart (the two schemas convert
/// into one internal type upstream, so both print alike).
fn event_field<'a>(event: &'a Value, core: &str, events_v1: &str) -> Option<&'a Value> {
    field(event, core).or_else(|| field(event, events_v1))
}

fn event_cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let event_time =
        |core, v1| parse_timestamp(event_field(event, core, v1).and_then(Value::as_str));
    let first_seen = match event_time("/firstTimestamp", "/deprecatedFirstTimestamp") {
        Some(t) => since(t, now),
        None => age(opt_text(event, "/eventTime"), now),
    };
    let mut last_seen = match event_time("/lastTimestamp", "/deprecatedLastTimestamp") {
        Some(t) => since(t, now),
        None => first_seen.clone(),
    };
    let mut occurrences = event_field(event, "/count", "/deprecatedCount")
        .and_then(|c| int(c, ""))
        .unwrap_or(0);
    if let Some(series) = field(event, "/series") {
        last_seen = age(opt_text(series, "/lastObservedTime"), now);
        occurrences = int(series, "/count").unwrap_or(0);
    } else if occurrences == 0 {
        // Singleton events of the new API carry no count.
        occurrences = 1;
    }

    let regarding = event_field(event, "/involvedObject", "/regarding").unwrap_or(&Value::Null);
    let kind = text(regarding, "/kind").to_lowercase();
    let object = match text(regarding, "/name") {
        "" => kind,
        object_name => format!("{kind}/{object_name}"),
    };
    let source = event_field(event, "/source", "/deprecatedSource").unwrap_or(&Value::Null);
    let component = first_non_empty(
        text(source, "/component"),
        text(event, "/reportingController"),
    );
    let instance = first_non_empty(text(source, "/host"), text(event, "/reportingInstance"));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    let message = event_field(event, "/message", "/note")
        .and_then(Value::as_str)
        .unwrap_or("");

    vec![
        json!(last_seen),
        json!(text(event, "/type")),
        json!(text(event, "/reason")),
        json!(object),
        json!(text(regarding, "/fieldPath")),
        json!(source),
        json!(message.trim()),
        json!(first_seen),
        json!(occurrences),
        name(event),
    ]
}

fn first_non_empty<'a>(first: &'a str, second: &'a str) -> &'a str {
    if first.is_empty() { second } else { first }
}

const NODE_ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // Only the Ready condition is reported, then cordoning.
    let conditions = list(node, "/status/conditions");
    let mut status = match conditions.iter().rfind(|c| text(c, "/type") == "Ready") {
        Some(c) if text(c, "/status") == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if flag(node, "/spec/unschedulable") == Some(true) {
        status.push("SchedulingDisabled");
    }

    let mut roles: Vec<&str> = field(node, "/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(
            |(key, value)| match key.strip_prefix(NODE_ROLE_LABEL_PREFIX) {
                Some(role) => Some(role),
                None if key == NODE_ROLE_LABEL => value.as_str(),
                None => None,
            },
        )
        .filter(|role| !role.is_empty())
        .collect();
    roles.sort_unstable();
    roles.dedup();

    let address = |type_: &str| {
        list(node, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == type_)
            .map_or(NONE, |a| text(a, "/address"))
    };
    let node_info = |key: &str| match text(node, &format!("/status/nodeInfo/{key}")) {
        "" => "<unknown>",
        value => value,
    };
    vec![
        name(node),
        json!(status.join(",")),
        json!(or_none(&roles.join(","))),
        created(node, now),
        json!(text(node, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(node_info("osImage")),
        json!(node_info("kernelVersion")),
        json!(node_info("containerRuntimeVersion")),
    ]
}

fn service_cells(service: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // `type` is defaulted to ClusterIP by the decoder.
    let type_ = match text(service, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    };
    // v1→internal conversion makes `clusterIP` authoritative over `clusterIPs[0]`.
    let cluster_ip = match text(service, "/spec/clusterIP") {
        "" => list(service, "/spec/clusterIPs")
            .first()
            .and_then(Value::as_str)
            .unwrap_or(""),
        ip => ip,
    };
    let ports: Vec<String> = list(service, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int(p, "/port").unwrap_or(0);
            let protocol = match text(p, "/protocol") {
                "" => "TCP",
                protocol => protocol,
            };
            match int(p, "/nodePort").unwrap_or(0) {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    vec![
        name(service),
        json!(type_),
        json!(or_none(cluster_ip)),
        json!(service_external_ip(service, type_)),
        json!(or_none(&ports.join(","))),
        created(service, now),
        json!(format_labels(field(service, "/spec/selector"))),
    ]
}

/// `getServiceExternalIP` as the server prints it (wide, so load-balancer addresses are not
/// clipped).
fn service_external_ip(service: &Value, type_: &str) -> String {
    let external_ips: Vec<&str> = list(service, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match type_ {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => NONE.to_string(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let mut ingress: Vec<&str> = list(service, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| first_non_empty(text(i, "/ip"), text(i, "/hostname")))
                .filter(|address| !address.is_empty())
                .collect();
            ingress.sort_unstable();
            ingress.dedup();
            if !external_ips.is_empty() {
                ingress.extend(external_ips);
                ingress.join(",")
            } else if !ingress.is_empty() {
                ingress.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => text(service, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// `formatEndpoints`: up to three `ip:port` entries, then `+ N more...`.
fn format_endpoints(endpoints: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list(endpoints, "/subsets");
    if subsets.is_empty() {
        return NONE.to_string();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut total = 0;
    let mut more = false;
    let mut add = |addresses: &[Value], port: Option<i64>| {
        total += addresses.len();
        for address in addresses {
            if shown.len() == MAX {
                more = true;
                break;
            }
            let ip = text(address, "/ip");
            shown.push(match port {
                // `net.JoinHostPort` brackets IPv6 hosts.
                Some(port) if ip.contains(':') => format!("[{ip}]:{port}"),
                Some(port) => format!("{ip}:{port}"),
                None => ip.to_string(),
            });
        }
    };
    for subset in subsets {
        let addresses = list(subset, "/addresses");
        let ports = list(subset, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            add(addresses, None);
        }
        for port in ports {
            add(addresses, Some(int(port, "/port").unwrap_or(0)));
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", total.saturating_sub(MAX))
    } else {
        joined
    }
}

fn role_binding_cells(binding: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        text(binding, "/roleRef/kind"),
        text(binding, "/roleRef/name")
    );
    let (mut users, mut groups, mut service_accounts) = (Vec::new(), Vec::new(), Vec::new());
    for subject in list(binding, "/subjects") {
        let subject_name = text(subject, "/name");
        match text(subject, "/kind") {
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{subject_name}", text(subject, "/namespace")));
            }
            _ => {}
        }
    }
    vec![
        name(binding),
        json!(role),
        created(binding, now),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(service_accounts.join(", ")),
    ]
}

// ---------------------------------------------------------------------------------------
// Label formatting (apimachinery `labels.FormatLabels`, `metav1.FormatLabelSelector`)
// ---------------------------------------------------------------------------------------

/// `labels.FormatLabels`: `k=v` sorted by key, `<none>` when empty.
fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort_unstable();
    or_none(&pairs.join(",")).to_string()
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when it selects everything or
/// nothing, `<error>` when it is not a valid selector.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector_string(selector) {
        Some(s) if s.is_empty() => NONE.to_string(),
        Some(s) => s,
        None => "<error>".to_string(),
    }
}

/// `metav1.LabelSelectorAsSelector(selector).String()`: requirements sorted by key,
/// `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`. `None` when the selector is invalid.
fn label_selector_string(selector: Option<&Value>) -> Option<String> {
    let Some(selector) = selector else {
        return Some(String::new());
    };
    let selector = selector.as_object()?;
    let mut requirements: Vec<(&str, String)> = Vec::new();
    if let Some(match_labels) = selector.get("matchLabels").filter(|m| !m.is_null()) {
        for (key, value) in match_labels.as_object()? {
            let value = value.as_str()?;
            if !is_qualified_name(key) || !is_label_value(value) {
                return None;
            }
            requirements.push((key.as_str(), format!("{key}={value}")));
        }
    }
    if let Some(expressions) = selector.get("matchExpressions").filter(|m| !m.is_null()) {
        for expression in expressions.as_array()? {
            let key = text(expression, "/key");
            let mut values: Vec<&str> = list(expression, "/values")
                .iter()
                .map(Value::as_str)
                .collect::<Option<_>>()?;
            if !is_qualified_name(key) || !values.iter().all(|v| is_label_value(v)) {
                return None;
            }
            values.sort_unstable();
            let rendered = match (text(expression, "/operator"), values.is_empty()) {
                ("In", false) => format!("{key} in ({})", values.join(",")),
                ("NotIn", false) => format!("{key} notin ({})", values.join(",")),
                ("Exists", true) => key.to_string(),
                ("DoesNotExist", true) => format!("!{key}"),
                _ => return None,
            };
            requirements.push((key, rendered));
        }
    }
    requirements.sort_by(|a, b| a.0.cmp(b.0));
    let rendered: Vec<String> = requirements.into_iter().map(|(_, r)| r).collect();
    Some(rendered.join(","))
}

/// A label name part or value: alphanumerics at both ends, `-`, `_`, `.` inside.
fn is_label_token(s: &str, max_len: usize) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= max_len
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        }
        _ => false,
    }
}

/// `validation.IsValidLabelValue`: empty, or a label token of at most 63 characters.
fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_label_token(value, 63)
}

/// `validation.IsQualifiedName`: `[DNS-1123-subdomain/]name`.
fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        None => is_label_token(key, 63),
        Some((prefix, name)) => {
            is_dns1123_subdomain(prefix) && !name.contains('/') && is_label_token(name, 63)
        }
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    (first.is_ascii_lowercase() || first.is_ascii_digit())
                        && (last.is_ascii_lowercase() || last.is_ascii_digit())
                        && bytes
                            .iter()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                }
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{self, ALL};

    fn now() -> DateTime<Utc> {
        parse_timestamp(Some("2025-03-01T12:00:00Z")).expect("fixed now parses")
    }

    fn names(info: &ResourceInfo) -> Vec<&'static str> {
        columns(info).iter().map(|c| c.name).collect()
    }

    fn wide_names(info: &ResourceInfo) -> Vec<&'static str> {
        columns(info)
            .iter()
            .filter(|c| c.priority == 1)
            .map(|c| c.name)
            .collect()
    }

    /// The cell under a column name.
    fn cell(info: &ResourceInfo, object: &Value, column: &str) -> Value {
        let position = columns(info).iter().position(|c| c.name == column);
        let position = position.expect("column exists");
        cells(info, object, now()).swap_remove(position)
    }

    fn pod_status(pod: &Value) -> Value {
        cell(&resource::PODS, pod, "Status")
    }

    fn pod(status: Value) -> Value {
        json!({
            "metadata": {"name": "web", "creationTimestamp": "2025-03-01T11:00:00Z"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]},
            "status": status,
        })
    }

    #[test]
    fn every_served_resource_prints_one_cell_per_column() {
        let odd_objects = [
            json!({}),
            json!(null),
            json!([1, 2]),
            json!({"metadata": 5, "spec": "x", "status": [], "subsets": {"a": 1}}),
            json!({"spec": {"selector": 7, "template": {"spec": {"containers": "x"}}}}),
        ];
        for info in ALL {
            let expected = columns(info).len();
            assert!(expected >= 2, "{} has columns", info.plural);
            for object in &odd_objects {
                assert_eq!(
                    cells(info, object, now()).len(),
                    expected,
                    "{}",
                    info.plural
                );
            }
        }
    }

    #[test]
    fn name_column_carries_object_meta_doc_and_name_format() {
        for info in ALL {
            let columns = columns(info);
            let name = columns
                .iter()
                .find(|c| c.name == "Name")
                .expect("Name column");
            assert_eq!(name.format, "name");
            assert!(
                name.description
                    .starts_with("Name must be unique within a namespace.")
            );
        }
    }

    #[test]
    fn pod_columns_match_kubernetes() {
        assert_eq!(
            names(&resource::PODS),
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(
            wide_names(&resource::PODS),
            ["IP", "Node", "Nominated Node", "Readiness Gates"]
        );
        assert!(columns(&resource::PODS).iter().all(|c| c.type_ == "string"));
    }

    #[test]
    fn workload_columns_match_kubernetes() {
        assert_eq!(
            names(&resource::JOBS),
            [
                "Name",
                "Status",
                "Completions",
                "Duration",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            wide_names(&resource::JOBS),
            ["Containers", "Images", "Selector"]
        );
        let cron = [
            "Name",
            "Schedule",
            "Timezone",
            "Suspend",
            "Active",
            "Last Schedule",
            "Age",
            "Containers",
            "Images",
            "Selector",
        ];
        assert_eq!(names(&resource::CRON_JOBS), cron);
        assert_eq!(names(&resource::CRON_JOBS_V1BETA1), cron);
        assert_eq!(
            names(&resource::DEPLOYMENTS),
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        assert_eq!(
            names(&resource::REPLICA_SETS),
            [
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
        let types: Vec<&str> = columns(&resource::REPLICA_SETS)
            .iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(types[1..4], ["integer", "integer", "integer"]);
    }

    #[test]
    fn core_columns_match_kubernetes() {
        assert_eq!(names(&resource::NAMESPACES), ["Name", "Status", "Age"]);
        assert_eq!(
            names(&resource::SERVICE_ACCOUNTS),
            ["Name", "Secrets", "Age"]
        );
        assert_eq!(names(&resource::SECRETS), ["Name", "Type", "Data", "Age"]);
        assert_eq!(names(&resource::CONFIG_MAPS), ["Name", "Data", "Age"]);
        assert_eq!(names(&resource::ENDPOINTS), ["Name", "Endpoints", "Age"]);
        assert_eq!(names(&resource::LEASES), ["Name", "Holder", "Age"]);
        assert_eq!(
            names(&resource::SERVICES),
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector"
            ]
        );
        assert_eq!(wide_names(&resource::SERVICES), ["Selector"]);
        assert_eq!(
            names(&resource::NODES),
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
    }

    #[test]
    fn event_columns_match_kubernetes_for_both_event_apis() {
        let expected = [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name",
        ];
        assert_eq!(names(&resource::EVENTS), expected);
        assert_eq!(names(&resource::EVENTS_V1), expected);
        assert_eq!(
            wide_names(&resource::EVENTS),
            ["Subobject", "Source", "First Seen", "Count", "Name"]
        );
    }

    #[test]
    fn rbac_columns_match_kubernetes() {
        for info in [&resource::ROLES, &resource::CLUSTER_ROLES] {
            assert_eq!(names(info), ["Name", "Created At"]);
            assert_eq!(columns(info)[1].type_, "date");
        }
        for info in [&resource::ROLE_BINDINGS, &resource::CLUSTER_ROLE_BINDINGS] {
            assert_eq!(
                names(info),
                ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
            );
            assert_eq!(wide_names(info), ["Users", "Groups", "ServiceAccounts"]);
        }
    }

    #[test]
    fn column_serializes_type_field() {
        let value = serde_json::to_value(&columns(&resource::LEASES)[1]).expect("serializes");
        assert_eq!(value["name"], "Holder");
        assert_eq!(value["type"], "string");
        assert_eq!(value["format"], "");
        assert_eq!(value["priority"], 0);
    }

    #[test]
    fn pending_pod_with_creating_container_shows_container_creating() {
        let p = pod(json!({
            "phase": "Pending",
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}],
        }));
        let row = cells(&resource::PODS, &p, now());
        assert_eq!(
            row[..5],
            [
                json!("web"),
                json!("0/1"),
                json!("ContainerCreating"),
                json!("0"),
                json!("60m")
            ]
        );
        assert_eq!(
            row[5..],
            [
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn unscheduled_pod_shows_pending() {
        assert_eq!(pod_status(&pod(json!({"phase": "Pending"}))), "Pending");
    }

    #[test]
    fn running_pod_is_ready() {
        let p = pod(json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2025-03-01T11:00:05Z"}}}],
        }));
        assert_eq!(cell(&resource::PODS, &p, "Ready"), "1/1");
        assert_eq!(pod_status(&p), "Running");
    }

    #[test]
    fn succeeded_pod_shows_completed() {
        let p = pod(json!({
            "phase": "Succeeded",
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
        }));
        assert_eq!(cell(&resource::PODS, &p, "Ready"), "0/1");
        assert_eq!(pod_status(&p), "Completed");
        let conditions = row_conditions(&resource::PODS, &p);
        assert_eq!(conditions[0]["reason"], "Succeeded");
        assert_eq!(conditions[0]["type"], "Completed");
    }

    #[test]
    fn failed_container_shows_error_or_exit_code() {
        let failed = |terminated: Value| {
            pod(
                json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                "state": {"terminated": terminated}}]}),
            )
        };
        assert_eq!(
            pod_status(&failed(json!({"exitCode": 1, "reason": "Error"}))),
            "Error"
        );
        assert_eq!(pod_status(&failed(json!({"exitCode": 3}))), "ExitCode:3");
        assert_eq!(
            pod_status(&failed(json!({"exitCode": 137, "signal": 9}))),
            "Signal:9"
        );
        assert_eq!(
            row_conditions(&resource::PODS, &failed(json!({})))[0]["reason"],
            "Failed"
        );
    }

    #[test]
    fn crash_looping_pod_shows_back_off_and_last_restart() {
        let p = pod(json!({
            "phase": "Running",
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                    "finishedAt": "2025-03-01T11:55:00Z"}}}],
        }));
        assert_eq!(pod_status(&p), "CrashLoopBackOff");
        assert_eq!(cell(&resource::PODS, &p, "Restarts"), "2 (5m ago)");
    }

    #[test]
    fn restarts_without_termination_time_are_a_bare_count() {
        let p = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "restartCount": 4, "state": {"running": {}}}]}));
        assert_eq!(cell(&resource::PODS, &p, "Restarts"), "4");
    }

    #[test]
    fn deleted_pod_shows_terminating_unless_finished_or_node_lost() {
        let mut p = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "ready": true, "state": {"running": {}}}]}));
        p["metadata"]["deletionTimestamp"] = json!("2025-03-01T11:59:00Z");
        assert_eq!(pod_status(&p), "Terminating");
        p["status"]["phase"] = json!("Succeeded");
        assert_eq!(pod_status(&p), "Succeeded");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(pod_status(&p), "Unknown");
    }

    #[test]
    fn pod_waiting_for_init_container_shows_init_progress() {
        let mut p = pod(json!({
            "phase": "Pending",
            "initContainerStatuses": [{"name": "setup", "ready": false, "restartCount": 0,
                "state": {"running": {}}}],
            "containerStatuses": [{"name": "app", "ready": false,
                "state": {"waiting": {"reason": "PodInitializing"}}}],
        }));
        p["spec"]["initContainers"] = json!([{"name": "setup", "image": "busybox"}]);
        assert_eq!(pod_status(&p), "Init:0/1");
        assert_eq!(cell(&resource::PODS, &p, "Ready"), "0/1");
    }

    #[test]
    fn failing_init_container_shows_its_reason() {
        let mut p = pod(json!({
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 2, "finishedAt": "2025-03-01T11:58:00Z"}}},
            ],
        }));
        p["spec"]["initContainers"] = json!([{"name": "a"}, {"name": "b"}]);
        assert_eq!(pod_status(&p), "Init:CrashLoopBackOff");
        assert_eq!(cell(&resource::PODS, &p, "Restarts"), "3 (2m ago)");
        p["status"]["initContainerStatuses"][1]["state"] = json!({"terminated": {"exitCode": 2}});
        assert_eq!(pod_status(&p), "Init:ExitCode:2");
    }

    #[test]
    fn started_sidecar_counts_as_ready_container() {
        let mut p = pod(json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true,
                "restartCount": 1, "state": {"running": {}}}],
            "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}],
        }));
        p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
        assert_eq!(cell(&resource::PODS, &p, "Ready"), "2/2");
        assert_eq!(pod_status(&p), "Running");
        assert_eq!(cell(&resource::PODS, &p, "Restarts"), "1");
    }

    #[test]
    fn completed_container_beside_running_one_is_running_or_not_ready() {
        let mut p = pod(json!({
            "phase": "Running",
            "containerStatuses": [
                {"name": "app", "ready": true, "state": {"running": {}}},
                {"name": "job", "ready": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ],
        }));
        assert_eq!(pod_status(&p), "NotReady");
        p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        assert_eq!(pod_status(&p), "Running");
    }

    #[test]
    fn scheduling_gated_pod_shows_scheduling_gated() {
        let p = pod(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}));
        assert_eq!(pod_status(&p), "SchedulingGated");
    }

    #[test]
    fn evicted_pod_shows_status_reason() {
        assert_eq!(
            pod_status(&pod(json!({"phase": "Failed", "reason": "Evicted"}))),
            "Evicted"
        );
    }

    #[test]
    fn wide_pod_cells_show_ip_node_and_readiness_gates() {
        let mut p = pod(json!({
            "phase": "Running",
            "podIPs": [{"ip": "10.0.0.7"}],
            "nominatedNodeName": "n2",
            "conditions": [{"type": "example.com/gate", "status": "True"}],
        }));
        p["spec"]["nodeName"] = json!("n1");
        p["spec"]["readinessGates"] =
            json!([{"conditionType": "example.com/gate"}, {"conditionType": "other"}]);
        let row = cells(&resource::PODS, &p, now());
        assert_eq!(
            row[5..],
            [json!("10.0.0.7"), json!("n1"), json!("n2"), json!("1/2")]
        );
    }

    fn job(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "pi", "creationTimestamp": "2025-03-01T11:00:00Z"},
            "spec": spec, "status": status})
    }

    #[test]
    fn job_completions_follow_completions_and_parallelism() {
        let completions = |spec: Value, succeeded: i64| {
            cell(
                &resource::JOBS,
                &job(spec, json!({"succeeded": succeeded})),
                "Completions",
            )
        };
        assert_eq!(
            completions(json!({"completions": 1, "parallelism": 1}), 0),
            "0/1"
        );
        assert_eq!(
            completions(json!({"completions": 5, "parallelism": 2}), 3),
            "3/5"
        );
        assert_eq!(completions(json!({"parallelism": 2}), 1), "1/1 of 2");
        assert_eq!(completions(json!({"parallelism": 1}), 0), "0/1");
        assert_eq!(completions(json!({}), 0), "0/1");
    }

    #[test]
    fn job_duration_runs_until_completion() {
        let not_started = job(json!({}), json!({}));
        assert_eq!(cell(&resource::JOBS, &not_started, "Duration"), "");
        let running = job(json!({}), json!({"startTime": "2025-03-01T11:57:30Z"}));
        assert_eq!(cell(&resource::JOBS, &running, "Duration"), "2m30s");
        let finished = job(
            json!({}),
            json!({"startTime": "2025-03-01T11:00:00Z", "completionTime": "2025-03-01T11:00:42Z"}),
        );
        assert_eq!(cell(&resource::JOBS, &finished, "Duration"), "42s");
    }

    #[test]
    fn job_status_prefers_terminal_conditions() {
        let status = |conditions: Value, deleting: bool| {
            let mut j = job(json!({}), json!({"conditions": conditions}));
            if deleting {
                j["metadata"]["deletionTimestamp"] = json!("2025-03-01T11:59:00Z");
            }
            cell(&resource::JOBS, &j, "Status")
        };
        let t = |type_: &str| json!({"type": type_, "status": "True"});
        assert_eq!(status(json!([]), false), "Running");
        assert_eq!(
            status(json!([t("SuccessCriteriaMet"), t("Complete")]), true),
            "Complete"
        );
        assert_eq!(
            status(json!([t("FailureTarget"), t("Failed")]), false),
            "Failed"
        );
        assert_eq!(status(json!([t("Suspended")]), true), "Terminating");
        assert_eq!(status(json!([t("Suspended")]), false), "Suspended");
        assert_eq!(status(json!([t("FailureTarget")]), false), "FailureTarget");
        assert_eq!(status(json!([t("SuccessCriteriaMet")]), false), "Running");
        assert_eq!(
            status(json!([{"type": "Complete", "status": "False"}]), false),
            "Running"
        );
    }

    #[test]
    fn job_wide_cells_show_template_and_selector() {
        let j = job(
            json!({
                "selector": {"matchLabels": {"job-name": "pi", "batch.kubernetes.io/controller-uid": "u1"}},
                "template": {"spec": {"containers": [
                    {"name": "pi", "image": "perl:5.34"}, {"name": "log", "image": "busybox"}]}},
            }),
            json!({}),
        );
        let row = cells(&resource::JOBS, &j, now());
        assert_eq!(
            row[5..],
            [
                json!("pi,log"),
                json!("perl:5.34,busybox"),
                json!("batch.kubernetes.io/controller-uid=u1,job-name=pi")
            ]
        );
    }

    #[test]
    fn cron_job_without_schedule_history_shows_none() {
        let cj = json!({
            "metadata": {"name": "hello", "creationTimestamp": "2025-03-01T11:50:00Z"},
            "spec": {"schedule": "*/1 * * * *", "suspend": false, "jobTemplate": {"spec": {
                "template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
            "status": {},
        });
        let row = cells(&resource::CRON_JOBS, &cj, now());
        let expected = [
            json!("hello"),
            json!("*/1 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(0),
            json!("<none>"),
            json!("10m"),
            json!("hello"),
            json!("busybox"),
            json!("<none>"),
        ];
        assert_eq!(row, expected);
    }

    #[test]
    fn cron_job_shows_last_schedule_age_time_zone_and_active_jobs() {
        let cj = json!({
            "metadata": {"name": "hello"},
            "spec": {"schedule": "0 * * * *", "timeZone": "Etc/UTC", "suspend": true},
            "status": {"lastScheduleTime": "2025-03-01T11:00:00Z", "active": [{"name": "hello-1"}]},
        });
        let row = cells(&resource::CRON_JOBS_V1BETA1, &cj, now());
        assert_eq!(
            row[2..7],
            [
                json!("Etc/UTC"),
                json!("True"),
                json!(1),
                json!("60m"),
                json!("<unknown>")
            ]
        );
    }

    #[test]
    fn deployment_and_replica_set_cells_count_replicas() {
        let template = json!({"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}});
        let deployment = json!({
            "metadata": {"name": "web", "creationTimestamp": "2025-03-01T09:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        let row = cells(&resource::DEPLOYMENTS, &deployment, now());
        let expected = [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("3h"),
            json!("nginx"),
            json!("nginx:1.27"),
            json!("app=web"),
        ];
        assert_eq!(row, expected);

        let replica_set = json!({
            "metadata": {"name": "web-5d4f"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
            "status": {"replicas": 1},
        });
        let row = cells(&resource::REPLICA_SETS, &replica_set, now());
        assert_eq!(
            row[..5],
            [
                json!("web-5d4f"),
                json!(1),
                json!(1),
                json!(0),
                json!("<unknown>")
            ]
        );
        assert_eq!(row[7], "app=web");
    }

    #[test]
    fn label_selectors_render_like_kubectl() {
        let render = |v: Value| format_label_selector(Some(&v));
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(render(json!({})), "<none>");
        assert_eq!(
            render(json!({
                "matchLabels": {"tier": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "zone", "operator": "NotIn", "values": ["b"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "app", "operator": "Exists", "values": []},
                ],
            })),
            "app,!canary,env in (dev,prod),tier=web,zone notin (b)"
        );
        assert_eq!(
            render(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            "<error>"
        );
        assert_eq!(
            render(json!({"matchExpressions": [{"key": "a", "operator": "Is"}]})),
            "<error>"
        );
        assert_eq!(render(json!({"matchLabels": {"bad key": "x"}})), "<error>");
        assert_eq!(render(json!("nonsense")), "<error>");
        assert_eq!(label_selector_string(None).as_deref(), Some(""));
        assert_eq!(
            label_selector_string(Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "x"}]})
            )),
            None
        );
    }

    #[test]
    fn deployment_with_invalid_selector_prints_invalid() {
        let d = json!({"spec": {"selector": {"matchLabels": {"a": "not valid!"}}}});
        assert_eq!(cell(&resource::DEPLOYMENTS, &d, "Selector"), "<invalid>");
        let d = json!({"spec": {}});
        assert_eq!(cell(&resource::DEPLOYMENTS, &d, "Selector"), "");
    }

    #[test]
    fn config_objects_count_their_entries() {
        let sa = json!({"metadata": {"name": "default"}, "secrets": [{"name": "t"}]});
        assert_eq!(cell(&resource::SERVICE_ACCOUNTS, &sa, "Secrets"), 1);
        let secret = json!({"metadata": {"name": "s"}, "data": {"a": "", "b": ""}});
        assert_eq!(
            cells(&resource::SECRETS, &secret, now())[1..3],
            [json!("Opaque"), json!(2)]
        );
        let cm =
            json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
        assert_eq!(cell(&resource::CONFIG_MAPS, &cm, "Data"), 2);
        let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
        assert_eq!(cell(&resource::NAMESPACES, &ns, "Status"), "Active");
        let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "node-1"}});
        assert_eq!(cell(&resource::LEASES, &lease, "Holder"), "node-1");
        assert_eq!(cell(&resource::LEASES, &json!({}), "Holder"), "");
    }

    #[test]
    fn cluster_ip_service_shows_ports_and_no_external_ip() {
        let svc = json!({
            "metadata": {"name": "kubernetes", "creationTimestamp": "2025-03-01T11:59:00Z"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
        });
        let row = cells(&resource::SERVICES, &svc, now());
        let expected = [
            json!("kubernetes"),
            json!("ClusterIP"),
            json!("10.96.0.1"),
            json!("<none>"),
            json!("443/TCP"),
            json!("60s"),
            json!("<none>"),
        ];
        assert_eq!(row, expected);
    }

    #[test]
    fn node_port_and_load_balancer_services_show_node_ports_and_ingress() {
        let svc = json!({"spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.3.4"],
            "selector": {"app": "web", "tier": "fe"},
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]},
            "status": {"loadBalancer": {}}});
        let row = cells(&resource::SERVICES, &svc, now());
        assert_eq!(
            row[1..5],
            [
                json!("LoadBalancer"),
                json!("10.96.3.4"),
                json!("<pending>"),
                json!("80:30080/TCP,53/UDP")
            ]
        );
        assert_eq!(row[6], "app=web,tier=fe");
        let mut svc = svc;
        svc["status"]["loadBalancer"]["ingress"] =
            json!([{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]);
        assert_eq!(
            cell(&resource::SERVICES, &svc, "External-IP"),
            "5.6.7.8,lb.example"
        );
        svc["spec"]["externalIPs"] = json!(["1.2.3.4"]);
        assert_eq!(
            cell(&resource::SERVICES, &svc, "External-IP"),
            "5.6.7.8,lb.example,1.2.3.4"
        );
        let external = json!({"spec": {"type": "ExternalName", "externalName": "db.example"}});
        assert_eq!(
            cell(&resource::SERVICES, &external, "External-IP"),
            "db.example"
        );
        assert_eq!(cell(&resource::SERVICES, &external, "Cluster-IP"), "<none>");
        assert_eq!(cell(&resource::SERVICES, &external, "Port(s)"), "<none>");
    }

    #[test]
    fn endpoints_show_three_addresses_then_a_count() {
        let ep = json!({"subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}, {"ip": "10.0.0.4"}],
            "ports": [{"port": 8080}],
        }]});
        assert_eq!(
            cell(&resource::ENDPOINTS, &ep, "Endpoints"),
            "10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080 + 1 more..."
        );
        let headless = json!({"subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]});
        assert_eq!(
            cell(&resource::ENDPOINTS, &headless, "Endpoints"),
            "10.0.0.9"
        );
        assert_eq!(
            cell(&resource::ENDPOINTS, &json!({}), "Endpoints"),
            "<none>"
        );
    }

    #[test]
    fn node_shows_readiness_roles_and_system_info() {
        let node = json!({
            "metadata": {"name": "n1", "labels": {
                "node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "master",
                "node-role.kubernetes.io/": "x"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}, {"type": "Hostname", "address": "n1"}],
                "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian"},
            },
        });
        let row = cells(&resource::NODES, &node, now());
        let expected = [
            json!("n1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,master"),
            json!("<unknown>"),
            json!("v1.32.0"),
            json!("192.168.1.5"),
            json!("<none>"),
            json!("Debian"),
            json!("<unknown>"),
            json!("<unknown>"),
        ];
        assert_eq!(row, expected);
        let bare = cells(
            &resource::NODES,
            &json!({"metadata": {"name": "n2"}}),
            now(),
        );
        assert_eq!(bare[1..3], [json!("Unknown"), json!("<none>")]);
    }

    #[test]
    fn core_event_prints_last_seen_object_and_source() {
        let event = json!({
            "metadata": {"name": "web.17f"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "reason": "Pulled", "type": "Normal", "message": "Pulled image\n",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2025-03-01T11:00:00Z", "lastTimestamp": "2025-03-01T11:58:00Z",
            "count": 3,
        });
        let row = cells(&resource::EVENTS, &event, now());
        let expected = [
            json!("2m"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web"),
            json!("spec.containers{app}"),
            json!("kubelet, n1"),
            json!("Pulled image"),
            json!("60m"),
            json!(3),
            json!("web.17f"),
        ];
        assert_eq!(row, expected);
    }

    #[test]
    fn new_api_event_prints_event_time_series_and_reporting_controller() {
        let event = json!({
            "metadata": {"name": "e1"},
            "regarding": {"kind": "Job", "name": "pi"},
            "reason": "Completed", "type": "Normal", "note": "Job completed",
            "eventTime": "2025-03-01T11:50:00.000000Z",
            "reportingController": "job-controller",
        });
        let row = cells(&resource::EVENTS_V1, &event, now());
        assert_eq!(
            row[..4],
            [
                json!("10m"),
                json!("Normal"),
                json!("Completed"),
                json!("job/pi")
            ]
        );
        assert_eq!(
            row[5..9],
            [
                json!("job-controller"),
                json!("Job completed"),
                json!("10m"),
                json!(1)
            ]
        );

        let mut series = event;
        series["series"] = json!({"count": 7, "lastObservedTime": "2025-03-01T11:59:00.000000Z"});
        let row = cells(&resource::EVENTS_V1, &series, now());
        assert_eq!(row[0], "60s");
        assert_eq!(row[8], 7);
    }

    #[test]
    fn role_binding_prints_role_ref_and_subjects() {
        let binding = json!({
            "metadata": {"name": "rb", "creationTimestamp": "2025-02-20T12:00:00Z"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "default", "namespace": "ci"},
            ],
        });
        let row = cells(&resource::ROLE_BINDINGS, &binding, now());
        let expected = [
            json!("rb"),
            json!("ClusterRole/view"),
            json!("9d"),
            json!("alice, bob"),
            json!("devs"),
            json!("ci/default"),
        ];
        assert_eq!(row, expected);
    }

    #[test]
    fn roles_print_default_table_with_rfc3339_creation_time() {
        let role = json!({"metadata": {"name": "admin", "creationTimestamp": "2025-03-01T13:00:00+01:00"}});
        assert_eq!(
            cells(&resource::CLUSTER_ROLES, &role, now()),
            [json!("admin"), json!("2025-03-01T12:00:00Z")]
        );
        assert_eq!(
            cells(&resource::ROLES, &json!({}), now()),
            [json!(""), json!("0001-01-01T00:00:00Z")]
        );
    }

    #[test]
    fn only_finished_pods_have_row_conditions() {
        assert!(row_conditions(&resource::PODS, &pod(json!({"phase": "Running"}))).is_empty());
        let done = json!({"status": {"phase": "Succeeded"}});
        assert!(row_conditions(&resource::JOBS, &done).is_empty());
    }
}
