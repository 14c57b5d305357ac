//! Node registration and heartbeats (upstream `pkg/kubelet/kubelet_node_status.go` and
//! `pkg/kubelet/nodelease`): this machine becomes one `Node`, whose status is posted when it
//! changes or at least every minute, and whose `Lease` in `kube-node-lease` is renewed every
//! 10 s — the lease is the cheap heartbeat, the status the expensive one.
//!
//! [`node_object`] is the pure part (what the Node should say, given [`HostFacts`] and a
//! clock); [`run`] is the thin I/O shell around it.

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// The namespace holding one heartbeat `Lease` per node.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a lease stays valid without renewal (upstream `nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// How often the lease is renewed (upstream: a quarter of the duration, 10 s).
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// How often the full status is posted even when nothing changed
/// (upstream `nodeStatusReportFrequency`, shortened from 5 min).
pub const STATUS_REPORT_INTERVAL: Duration = Duration::from_secs(60);
/// The kubelet version this node reports (what `kubectl get nodes` shows as VERSION).
pub const KUBELET_VERSION: &str = "v1.33.0";
/// The kubelet's port as published in `status.daemonEndpoints`.
pub const KUBELET_PORT: i32 = 10250;
/// Upstream's default `--max-pods`.
pub const MAX_PODS: &str = "110";

const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
const LABEL_OS: &str = "kubernetes.io/os";
const LABEL_ARCH: &str = "kubernetes.io/arch";
const LABEL_BETA_OS: &str = "beta.kubernetes.io/os";
const LABEL_BETA_ARCH: &str = "beta.kubernetes.io/arch";
const LABEL_CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane";

/// Errors of one sync of the node or its lease; the loop logs them and retries next tick.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("gathering host facts failed: {0}")]
    Facts(#[from] tokio::task::JoinError),
}

/// What the node agent is told about the node it runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node_name: String,
    pub internal_ip: String,
    /// Where pod data lives; its filesystem's size is the node's `ephemeral-storage`.
    pub pods_dir: PathBuf,
    /// Whether the API server runs on this machine (the kubeadm role label
    /// `node-role.kubernetes.io/control-plane`, shown by `kubectl get nodes` as ROLES).
    pub control_plane: bool,
}

/// Facts about this machine, read from `/proc`, `/etc` and `uname`. Whatever cannot be read
/// is left `""` or `0`: a node with an unknown boot id is better than no node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub cpus: u64,
    /// `MemTotal` of `/proc/meminfo`, in KiB.
    pub memory_kib: u64,
    /// Size of the filesystem holding the pods directory, in bytes.
    pub ephemeral_storage_bytes: u64,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
    /// `GOOS` spelling (`linux`).
    pub operating_system: String,
    /// `GOARCH` spelling (`amd64`, `arm64`, …).
    pub architecture: String,
}

impl HostFacts {
    /// Reads the facts of this machine; never fails.
    pub fn gather(pods_dir: &Path) -> Self {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        HostFacts {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u64)
                .unwrap_or(0),
            memory_kib: std::fs::read_to_string("/proc/meminfo")
                .map(|s| mem_total_kib(&s))
                .unwrap_or(0),
            ephemeral_storage_bytes: filesystem_bytes(pods_dir),
            machine_id: read("/etc/machine-id"),
            // Readable only by root on most machines; upstream (cAdvisor) reads the same file.
            system_uuid: read("/sys/class/dmi/id/product_uuid"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            kernel_version: nix::sys::utsname::uname()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            os_image: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|s| pretty_name(&s))
                .unwrap_or_default(),
            operating_system: std::env::consts::OS.to_string(),
            architecture: go_arch(std::env::consts::ARCH).to_string(),
        }
    }
}

/// The node's name: the host name, lower-cased and made a DNS-1123 subdomain (upstream
/// `nodeutil.GetHostname`, which lower-cases; we also replace what would fail validation).
pub fn default_node_name() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    sanitize_node_name(&host)
}

/// Lower-cases `host` and rewrites it into a valid DNS-1123 subdomain: characters other than
/// `[a-z0-9.-]` become `-`, each label is trimmed of `-`, empty labels are dropped, and the
/// result is at most 253 characters; an empty result becomes `localhost`.
pub fn sanitize_node_name(host: &str) -> String {
    let mapped: String = host
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' => c,
            _ => '-',
        })
        .collect();
    let mut name = mapped
        .split('.')
        .map(|label| label.trim_matches('-'))
        .filter(|label| !label.is_empty())
        .map(|label| &label[..label.len().min(63)])
        .map(|label| label.trim_end_matches('-'))
        .collect::<Vec<_>>()
        .join(".");
    name.truncate(253);
    let name = name.trim_end_matches(['.', '-']).to_string();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// The Node object this machine should have at `now`.
pub fn node_object(config: &NodeConfig, facts: &HostFacts, now: DateTime<Utc>) -> Node {
    let now = time(now);
    let labels = default_labels(config, facts);
    let capacity = BTreeMap::from([
        ("cpu".to_string(), Quantity(facts.cpus.to_string())),
        (
            "ephemeral-storage".to_string(),
            Quantity(binary_si(facts.ephemeral_storage_bytes)),
        ),
        (
            "memory".to_string(),
            Quantity(binary_si(facts.memory_kib.saturating_mul(1024))),
        ),
        ("pods".to_string(), Quantity(MAX_PODS.to_string())),
    ]);
    // nanokube reserves nothing for system daemons and does not evict, so everything the node
    // has can be requested (upstream subtracts reservations and eviction thresholds).
    let allocatable = capacity.clone();
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    let hostname = config.node_name.clone();
    Node {
        metadata: ObjectMeta {
            name: Some(config.node_name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                // Upstream kubelets register with this on; there is no attach/detach here,
                // but clients that read it expect the usual value.
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: None,
        status: Some(NodeStatus {
            capacity: Some(capacity),
            allocatable: Some(allocatable),
            conditions: Some(vec![
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                condition(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                ),
            ]),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".to_string(),
                    address: config.internal_ip.clone(),
                },
                NodeAddress {
                    type_: "Hostname".to_string(),
                    address: hostname,
                },
            ]),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint { port: KUBELET_PORT }),
            }),
            node_info: Some(NodeSystemInfo {
                machine_id: facts.machine_id.clone(),
                system_uuid: facts.system_uuid.clone(),
                boot_id: facts.boot_id.clone(),
                kernel_version: facts.kernel_version.clone(),
                os_image: facts.os_image.clone(),
                container_runtime_version: format!("nanokube://{}", env!("CARGO_PKG_VERSION")),
                kubelet_version: KUBELET_VERSION.to_string(),
                kube_proxy_version: String::new(),
                operating_system: facts.operating_system.clone(),
                architecture: facts.architecture.clone(),
                swap: None,
            }),
            ..Default::default()
        }),
    }
}

/// The labels a kubelet puts on its node (upstream `initialNode`, plus on the server's own
/// machine the kubeadm role label, so `kubectl get nodes` shows ROLES `control-plane`).
fn default_labels(config: &NodeConfig, facts: &HostFacts) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (LABEL_HOSTNAME.to_string(), config.node_name.clone()),
        (LABEL_OS.to_string(), facts.operating_system.clone()),
        (LABEL_ARCH.to_string(), facts.architecture.clone()),
        (LABEL_BETA_OS.to_string(), facts.operating_system.clone()),
        (LABEL_BETA_ARCH.to_string(), facts.architecture.clone()),
    ]);
    if config.control_plane {
        labels.insert(LABEL_CONTROL_PLANE.to_string(), String::new());
    }
    labels
}

/// Keeps each condition's `lastTransitionTime` from `previous` when its status did not change:
/// the time says when the status last flipped, not when it was last posted.
pub fn keep_transition_times(status: &mut NodeStatus, previous: Option<&NodeStatus>) {
    let Some(old) = previous.and_then(|p| p.conditions.as_ref()) else {
        return;
    };
    for c in status.conditions.iter_mut().flatten() {
        if let Some(o) = old
            .iter()
            .find(|o| o.type_ == c.type_ && o.status == c.status)
            && o.last_transition_time.is_some()
        {
            c.last_transition_time = o.last_transition_time.clone();
        }
    }
}

/// The status with heartbeat and transition times blanked, to tell a real change from the
/// passing of time.
fn without_times(status: &NodeStatus) -> NodeStatus {
    let mut s = status.clone();
    for c in s.conditions.iter_mut().flatten() {
        c.last_heartbeat_time = None;
        c.last_transition_time = None;
    }
    s
}

/// The Lease that says this node is alive at `now`, keeping what the stored one had.
pub fn renewed_lease(
    existing: Option<Lease>,
    node_name: &str,
    node_uid: Option<&str>,
    now: DateTime<Utc>,
) -> Lease {
    let mut lease = existing.unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(node_name.to_string()),
            namespace: Some(LEASE_NAMESPACE.to_string()),
            ..Default::default()
        },
        spec: None,
    });
    // The lease belongs to the node, so deleting the node collects it (upstream
    // `setNodeOwnerFunc`).
    if let Some(uid) = node_uid
        && lease
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(Vec::is_empty)
    {
        lease.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".to_string(),
            kind: "Node".to_string(),
            name: node_name.to_string(),
            uid: uid.to_string(),
            ..Default::default()
        }]);
    }
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(node_name.to_string());
    spec.lease_duration_seconds = Some(LEASE_DURATION_SECONDS);
    spec.renew_time = Some(micro_time(now));
    lease
}

/// Registers the Node and keeps it and its Lease fresh, until the task is dropped.
pub async fn run(client: kube::Client, config: NodeConfig) {
    let mut agent = NodeAgent::new(client, config);
    let mut tick = tokio::time::interval(LEASE_RENEW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = agent.sync_node().await {
            tracing::warn!(node = %agent.config.node_name, error = %e, "updating node status");
        }
        if let Err(e) = agent.renew_lease().await {
            tracing::warn!(node = %agent.config.node_name, error = %e, "renewing node lease");
        }
    }
}

/// The node agent's memory between ticks.
struct NodeAgent {
    nodes: Api<Node>,
    leases: Api<Lease>,
    config: NodeConfig,
    /// The Node as the server last returned it; `None` until registered (or after deletion).
    current: Option<Node>,
    /// The status last posted (times blanked) and when.
    last_posted: Option<(NodeStatus, Instant)>,
    /// The Lease as the server last returned it.
    lease: Option<Lease>,
}

impl NodeAgent {
    fn new(client: kube::Client, config: NodeConfig) -> Self {
        NodeAgent {
            nodes: Api::all(client.clone()),
            leases: Api::namespaced(client, LEASE_NAMESPACE),
            config,
            current: None,
            last_posted: None,
            lease: None,
        }
    }

    /// Creates the Node, or posts its status when it changed or is due.
    async fn sync_node(&mut self) -> Result<(), NodeError> {
        let dir = self.config.pods_dir.clone();
        let facts = tokio::task::spawn_blocking(move || HostFacts::gather(&dir)).await?;
        let mut wanted = node_object(&self.config, &facts, Utc::now());
        let name = self.config.node_name.clone();

        if self.current.is_none() {
            match self.nodes.create(&PostParams::default(), &wanted).await {
                Ok(created) => {
                    tracing::info!(node = %name, "registered node");
                    self.remember(created, wanted.status.as_ref());
                    return Ok(());
                }
                Err(e) if is_status(&e, 409) => {
                    // Registered before (an earlier run): adopt it, restoring our labels.
                    let existing = self.nodes.get(&name).await?;
                    let existing = self.restore_labels(existing, &wanted).await?;
                    self.current = Some(existing);
                    self.last_posted = None;
                }
                Err(e) => return Err(e.into()),
            }
        }

        let Some(status) = wanted.status.as_mut() else {
            return Ok(());
        };
        let due = match &self.last_posted {
            None => true,
            Some((posted, at)) => {
                *posted != without_times(status) || at.elapsed() >= STATUS_REPORT_INTERVAL
            }
        };
        if !due {
            return Ok(());
        }
        keep_transition_times(
            status,
            self.current.as_ref().and_then(|n| n.status.as_ref()),
        );
        // Strategic merge keeps conditions and addresses others may have added (merged by
        // `type`), as the upstream kubelet's status patch does.
        let patch = Patch::Strategic(json!({ "status": status }));
        match self
            .nodes
            .patch_status(&name, &PatchParams::default(), &patch)
            .await
        {
            Ok(node) => {
                self.remember(node, Some(status));
                Ok(())
            }
            Err(e) if is_status(&e, 404) => {
                // Someone deleted the node: register it again next tick.
                tracing::warn!(node = %name, "node was deleted; registering it again");
                self.current = None;
                self.last_posted = None;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn remember(&mut self, node: Node, posted: Option<&NodeStatus>) {
        self.last_posted = posted.map(|s| (without_times(s), Instant::now()));
        self.current = Some(node);
    }

    /// Puts back the default labels an existing node lacks or has changed (upstream
    /// `updateDefaultLabels`).
    async fn restore_labels(&self, existing: Node, wanted: &Node) -> Result<Node, NodeError> {
        let have = existing.metadata.labels.clone().unwrap_or_default();
        let missing: BTreeMap<&String, &String> = wanted
            .metadata
            .labels
            .iter()
            .flatten()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .collect();
        if missing.is_empty() {
            return Ok(existing);
        }
        let patch = Patch::Merge(json!({ "metadata": { "labels": missing } }));
        Ok(self
            .nodes
            .patch(&self.config.node_name, &PatchParams::default(), &patch)
            .await?)
    }

    /// Renews the Lease, creating it when missing; on a conflict re-reads it and tries once
    /// more (upstream `controller.go` retries the same way).
    async fn renew_lease(&mut self) -> Result<(), NodeError> {
        for attempt in 0..2 {
            if self.lease.is_none() {
                self.lease = self.leases.get_opt(&self.config.node_name).await?;
            }
            let node_uid = self
                .current
                .as_ref()
                .and_then(|n| n.metadata.uid.as_deref());
            let existed = self.lease.is_some();
            let lease = renewed_lease(
                self.lease.take(),
                &self.config.node_name,
                node_uid,
                Utc::now(),
            );
            let result = if existed {
                self.leases
                    .replace(&self.config.node_name, &PostParams::default(), &lease)
                    .await
            } else {
                self.leases.create(&PostParams::default(), &lease).await
            };
            match result {
                Ok(stored) => {
                    self.lease = Some(stored);
                    return Ok(());
                }
                // 409: someone else wrote it (or created it first); 404: it was deleted.
                Err(e) if (is_status(&e, 409) || is_status(&e, 404)) && attempt == 0 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Whether an API error carries this HTTP status code.
fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// A `metav1.Time` (whole seconds on the wire).
pub(crate) fn time(t: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(t.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A `metav1.MicroTime` (six fractional digits on the wire).
pub(crate) fn micro_time(t: DateTime<Utc>) -> MicroTime {
    MicroTime(Timestamp::from_microsecond(t.timestamp_micros()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// `MemTotal` in KiB from the text of `/proc/meminfo` (`MemTotal:  16310508 kB`).
fn mem_total_kib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `PRETTY_NAME` from the text of `/etc/os-release`, unquoted.
fn pretty_name(os_release: &str) -> Option<String> {
    let value = os_release
        .lines()
        .find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))?
        .trim();
    let unquoted = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Some(unquoted.replace("\\\"", "\"").replace("\\\\", "\\"))
}

/// The size in bytes of the filesystem holding `dir` (or its nearest existing ancestor, as
/// the pods directory may not exist yet); 0 when unknown.
fn filesystem_bytes(dir: &Path) -> u64 {
    let mut dir = Some(dir);
    while let Some(d) = dir {
        if let Ok(st) = nix::sys::statvfs::statvfs(d) {
            #[allow(clippy::useless_conversion)] // the widths differ between targets
            return u64::from(st.blocks()).saturating_mul(u64::from(st.fragment_size()));
        }
        dir = d.parent();
    }
    0
}

/// Rust's architecture name in Go's spelling, which Kubernetes labels use.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// A byte count in a Quantity's canonical binary-SI form (`16310508Ki`, `2Gi`, `1000`), as
/// upstream renders capacities it measured in bytes.
fn binary_si(bytes: u64) -> String {
    const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes == 0 {
        return "0".to_string();
    }
    let mut value = bytes;
    let mut suffix = "";
    for s in SUFFIXES {
        if !value.is_multiple_of(1024) {
            break;
        }
        value /= 1024;
        suffix = s;
    }
    format!("{value}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config() -> NodeConfig {
        NodeConfig {
            node_name: "box".to_string(),
            internal_ip: "10.0.0.5".to_string(),
            pods_dir: PathBuf::from("/var/lib/nanokube/pods"),
            control_plane: true,
        }
    }

    fn facts() -> HostFacts {
        HostFacts {
            cpus: 8,
            memory_kib: 16_310_508,
            ephemeral_storage_bytes: 100 * 1024 * 1024 * 1024 + 4096,
            machine_id: "abc".to_string(),
            system_uuid: "uuid".to_string(),
            boot_id: "boot".to_string(),
            kernel_version: "6.1.0-18-amd64".to_string(),
            os_image: "Debian GNU/Linux 12 (bookworm)".to_string(),
            operating_system: "linux".to_string(),
            architecture: "amd64".to_string(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5)
            .single()
            .expect("valid")
    }

    #[test]
    fn node_carries_kubelet_labels_and_control_plane_role() {
        let node = node_object(&config(), &facts(), now());
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "box");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["beta.kubernetes.io/os"], "linux");
        assert_eq!(labels["beta.kubernetes.io/arch"], "amd64");
        assert_eq!(labels["node-role.kubernetes.io/control-plane"], "");
        assert_eq!(node.metadata.name.as_deref(), Some("box"));
    }

    #[test]
    fn capacity_uses_quantity_formats() {
        let node = node_object(&config(), &facts(), now());
        let status = node.status.expect("status");
        let cap = status.capacity.expect("capacity");
        assert_eq!(cap["cpu"].0, "8");
        assert_eq!(cap["memory"].0, "16310508Ki");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(cap["ephemeral-storage"].0, "104857604Ki");
        assert_eq!(status.allocatable.expect("allocatable"), cap);
        assert_eq!(binary_si(16 * 1024 * 1024 * 1024), "16Gi");
        assert_eq!(binary_si(1000), "1000");
        assert_eq!(binary_si(0), "0");
    }

    #[test]
    fn conditions_say_ready_and_no_pressure() {
        let node = node_object(&config(), &facts(), now());
        let status = node.status.expect("status");
        let conditions = status.conditions.expect("conditions");
        let summary: Vec<(&str, &str, &str)> = conditions
            .iter()
            .map(|c| {
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.reason.as_deref().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID"),
                ("Ready", "True", "KubeletReady"),
            ]
        );
        let ready = &conditions[3];
        assert_eq!(
            ready.message.as_deref(),
            Some("kubelet is posting ready status")
        );
        let json = serde_json::to_value(ready).expect("json");
        assert_eq!(json["lastHeartbeatTime"], "2025-01-02T03:04:05Z");
        assert_eq!(json["lastTransitionTime"], "2025-01-02T03:04:05Z");
    }

    #[test]
    fn node_info_addresses_and_endpoint() {
        let node = node_object(&config(), &facts(), now());
        let json = serde_json::to_value(&node).expect("json");
        let status = &json["status"];
        assert_eq!(
            status["addresses"],
            json!([{"type": "InternalIP", "address": "10.0.0.5"},
                   {"type": "Hostname", "address": "box"}])
        );
        assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        let info = &status["nodeInfo"];
        assert_eq!(info["kubeletVersion"], "v1.33.0");
        assert_eq!(info["kubeProxyVersion"], "");
        assert_eq!(info["osImage"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(info["kernelVersion"], "6.1.0-18-amd64");
        assert_eq!(info["operatingSystem"], "linux");
        assert_eq!(info["architecture"], "amd64");
        assert_eq!(info["bootID"], "boot");
        assert_eq!(info["machineID"], "abc");
        assert_eq!(info["systemUUID"], "uuid");
        assert_eq!(
            info["containerRuntimeVersion"],
            format!("nanokube://{}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn transition_times_survive_reposting() {
        let earlier = node_object(&config(), &facts(), now());
        let later_time = now() + chrono::Duration::minutes(5);
        let mut later = node_object(&config(), &facts(), later_time)
            .status
            .expect("status");
        keep_transition_times(&mut later, earlier.status.as_ref());
        let ready = later
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .expect("ready");
        assert_eq!(ready.last_transition_time, Some(time(now())));
        assert_eq!(ready.last_heartbeat_time, Some(time(later_time)));
        assert_eq!(
            without_times(&later),
            without_times(earlier.status.as_ref().expect("status"))
        );
    }

    #[test]
    fn lease_names_holder_duration_and_micro_renew_time() {
        let t = now() + chrono::Duration::microseconds(123_456);
        let lease = renewed_lease(None, "box", Some("uid-1"), t);
        let json = serde_json::to_value(&lease).expect("json");
        assert_eq!(json["metadata"]["namespace"], "kube-node-lease");
        assert_eq!(json["metadata"]["ownerReferences"][0]["kind"], "Node");
        assert_eq!(json["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(json["spec"]["holderIdentity"], "box");
        assert_eq!(json["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(json["spec"]["renewTime"], "2025-01-02T03:04:05.123456Z");
    }

    #[test]
    fn host_files_are_parsed_forgivingly() {
        assert_eq!(
            mem_total_kib("MemTotal:       16310508 kB\nMemFree: 1 kB\n"),
            16_310_508
        );
        assert_eq!(mem_total_kib("garbage"), 0);
        assert_eq!(
            pretty_name("NAME=x\nPRETTY_NAME=\"Ubuntu 24.04 LTS\"\n").as_deref(),
            Some("Ubuntu 24.04 LTS")
        );
        assert_eq!(pretty_name("PRETTY_NAME=Alpine").as_deref(), Some("Alpine"));
        assert_eq!(pretty_name("NAME=x"), None);
        let facts = HostFacts::gather(Path::new("/nonexistent/pods"));
        assert!(
            facts.ephemeral_storage_bytes > 0,
            "falls back to an ancestor"
        );
    }

    #[test]
    fn node_names_are_dns_subdomains() {
        assert_eq!(sanitize_node_name("My-Laptop.Local"), "my-laptop.local");
        assert_eq!(sanitize_node_name("host_name"), "host-name");
        assert_eq!(sanitize_node_name("-a..b-"), "a.b");
        assert_eq!(sanitize_node_name(""), "localhost");
        assert_eq!(sanitize_node_name(&"x".repeat(300)).len(), 63);
        let name = default_node_name();
        assert!(!name.is_empty());
        assert_eq!(name, name.to_lowercase());
    }
}
