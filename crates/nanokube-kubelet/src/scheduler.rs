//! The scheduler (upstream `kube-scheduler` with its default filter plugins, minus scoring
//! and preemption): binds each pod that has no node to the first node, by name, that passes
//! the filters `NodeUnschedulable`, `TaintToleration`, `NodeAffinity` (node selector and
//! required node affinity) and `NodeResourcesFit`.
//!
//! [`choose_node`] is the pure decision; [`run`] keeps reflector caches of nodes and pods,
//! binds through `pods/binding`, and reports `Scheduled` / `FailedScheduling` events and the
//! `PodScheduled` condition as upstream does.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Binding, Event, EventSource, Node, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    Pod, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use nanokube_registry::quantity;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The scheduler's name: the `schedulerName` it serves and the component its events name.
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// How often unschedulable pods are retried even when nothing was observed to change.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// How long a binding this scheduler made is assumed while the pod cache catches up
/// (upstream's assumed-pod TTL).
const ASSUME_TTL: Duration = Duration::from_secs(30);

/// Errors of one scheduling attempt; the pod is retried later.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
}

// ---------------------------------------------------------------------------------------------
// The decision
// ---------------------------------------------------------------------------------------------

/// The first node (by name) that fits `pod`, given the pods already `bound` to nodes; or the
/// upstream-style reason none does (`0/1 nodes are available: 1 Insufficient cpu.`).
pub fn choose_node(pod: &Pod, nodes: &[Node], bound: &[Pod]) -> Result<String, String> {
    if nodes.is_empty() {
        return Err("no nodes available to schedule pods".to_string());
    }
    let mut sorted: Vec<&Node> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let request = pod_request(pod);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for node in sorted {
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        match filter(pod, &request, node, name, bound) {
            Ok(()) => return Ok(name.to_string()),
            Err(failures) => {
                for f in failures {
                    *reasons.entry(f).or_default() += 1;
                }
            }
        }
    }
    // Upstream's FitError: each reason with its node count, sorted as strings.
    let mut parts: Vec<String> = reasons
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    parts.sort();
    Err(format!(
        "0/{} nodes are available: {}.",
        nodes.len(),
        parts.join(", ")
    ))
}

/// Runs the filters in upstream's order and stops at the first that rejects the node, as
/// the framework does; a failing filter may give several reasons.
fn filter(
    pod: &Pod,
    request: &Resources,
    node: &Node,
    node_name: &str,
    bound: &[Pod],
) -> Result<(), Vec<String>> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    let spec = node.spec.as_ref();

    // NodeUnschedulable: cordoned nodes take only pods tolerating the unschedulable taint.
    if spec.and_then(|s| s.unschedulable) == Some(true) {
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".to_string(),
            effect: "NoSchedule".to_string(),
            ..Default::default()
        };
        if !tolerations.iter().any(|t| tolerates(t, &taint)) {
            return Err(vec!["node(s) were unschedulable".to_string()]);
        }
    }

    // TaintToleration. A node that is not Ready is treated as carrying the `not-ready`
    // NoSchedule taint the node lifecycle controller would put on it upstream.
    let mut taints: Vec<Taint> = spec
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .collect();
    if !is_ready(node) {
        taints.push(Taint {
            key: "node.kubernetes.io/not-ready".to_string(),
            effect: "NoSchedule".to_string(),
            ..Default::default()
        });
    }
    if let Some(t) = taints
        .iter()
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
    {
        return Err(vec![format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or("")
        )]);
    }

    // NodeAffinity: `spec.nodeSelector` and required node affinity.
    if !matches_node_selector(pod, node, node_name) {
        return Err(vec![
            "node(s) didn't match Pod's node affinity/selector".to_string(),
        ]);
    }

    // NodeResourcesFit.
    let failures = insufficient(request, node, node_name, bound);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Upstream `Toleration.ToleratesTaint`.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

fn matches_node_selector(pod: &Pod, node: &Node, node_name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    // Terms are ORed; a selector with no terms matches nothing (upstream semantics).
    let affinity_ok = required.is_none_or(|sel| {
        sel.node_selector_terms
            .iter()
            .any(|term| term_matches(term, labels, node_name))
    });
    selector_ok && affinity_ok
}

/// One `NodeSelectorTerm`: its expressions and fields ANDed; an empty term matches nothing.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let node_fields = BTreeMap::from([("metadata.name".to_string(), name.to_string())]);
    exprs.iter().all(|r| requirement_matches(r, labels))
        && fields.iter().all(|r| requirement_matches(r, &node_fields))
}

fn requirement_matches(req: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let value = labels.get(&req.key);
    let as_int = |s: &str| s.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [want]) = (value.and_then(|v| as_int(v)), values) else {
                return false;
            };
            let Some(want) = as_int(want) else {
                return false;
            };
            if req.operator == "Gt" {
                have > want
            } else {
                have < want
            }
        }
        _ => false,
    }
}

/// Resource amounts in milli-units (millicores for cpu, millibytes for memory), by name.
type Resources = BTreeMap<String, i128>;

/// What a pod asks for (upstream `resource.PodRequests`): per resource, the larger of the sum
/// over containers and the largest init container, plus the pod overhead. A container's
/// limit stands in for a missing request, as API defaulting would have made it.
pub fn pod_request(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::new();
    };
    let container_request = |c: &k8s_openapi::api::core::v1::Container| {
        let mut r = Resources::new();
        if let Some(res) = c.resources.as_ref() {
            for (name, q) in res.limits.iter().flatten() {
                r.insert(name.clone(), milli(q));
            }
            for (name, q) in res.requests.iter().flatten() {
                r.insert(name.clone(), milli(q));
            }
        }
        r
    };
    let mut total = Resources::new();
    for c in &spec.containers {
        for (name, v) in container_request(c) {
            *total.entry(name).or_default() += v;
        }
    }
    for c in spec.init_containers.iter().flatten() {
        for (name, v) in container_request(c) {
            let t = total.entry(name).or_default();
            *t = (*t).max(v);
        }
    }
    for (name, q) in spec.overhead.iter().flatten() {
        *total.entry(name.clone()).or_default() += milli(q);
    }
    total
}

/// A quantity in milli-units, rounded up as upstream's `MilliValue` does; one that does not
/// parse counts as zero.
fn milli(q: &Quantity) -> i128 {
    quantity::Quantity::try_from(q).map_or(0, |q| q.milli_value_ceil())
}

/// The reasons `node` cannot take a pod asking for `request` besides the non-terminal pods
/// already bound to it (upstream `NodeResourcesFit` messages).
fn insufficient(request: &Resources, node: &Node, node_name: &str, bound: &[Pod]) -> Vec<String> {
    let allocatable: Resources = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, q)| (k.clone(), milli(q)))
        .collect();
    let on_node: Vec<&Pod> = bound
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name))
        .filter(|p| !is_terminal(p))
        .collect();
    let mut used = Resources::new();
    for p in &on_node {
        for (name, v) in pod_request(p) {
            *used.entry(name).or_default() += v;
        }
    }
    let mut failures = Vec::new();
    let allowed_pods = allocatable.get("pods").copied().unwrap_or(0) / 1000;
    if on_node.len() as i128 + 1 > allowed_pods {
        failures.push("Too many pods".to_string());
    }
    for (name, want) in request {
        if *want <= 0 || name == "pods" {
            continue;
        }
        let have = allocatable.get(name).copied().unwrap_or(0);
        let taken = used.get(name).copied().unwrap_or(0);
        if *want > have - taken {
            failures.push(format!("Insufficient {name}"));
        }
    }
    failures
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

// ---------------------------------------------------------------------------------------------
// The I/O shell
// ---------------------------------------------------------------------------------------------

/// Whether this scheduler should place `pod`: no node yet, ours by `schedulerName`, not
/// being deleted, not finished, and not held back by scheduling gates.
pub fn wants_scheduling(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.node_name.as_deref().unwrap_or("").is_empty()
        && matches!(
            spec.scheduler_name.as_deref(),
            None | Some("") | Some(SCHEDULER_NAME)
        )
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
        && spec.scheduling_gates.as_ref().is_none_or(Vec::is_empty)
}

/// Binds pods without a node until the task is dropped.
pub async fn run(client: kube::Client) {
    let (nodes, node_writer) = reflector::store::<Node>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let changed = Arc::new(Notify::new());

    let watch_nodes = {
        let changed = changed.clone();
        reflector::reflector(
            node_writer,
            watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).default_backoff(),
        )
        .for_each(move |event| {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::debug!(error = %e, "scheduler: watching nodes"),
            }
            futures::future::ready(())
        })
    };
    let watch_pods = {
        let changed = changed.clone();
        reflector::reflector(
            pod_writer,
            watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff(),
        )
        .for_each(move |event| {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::debug!(error = %e, "scheduler: watching pods"),
            }
            futures::future::ready(())
        })
    };
    let schedule = async move {
        let (Ok(()), Ok(())) = (
            nodes.wait_until_ready().await,
            pods.wait_until_ready().await,
        ) else {
            return;
        };
        let mut scheduler = Scheduler {
            client,
            nodes,
            pods,
            assumed: HashMap::new(),
            reported: HashMap::new(),
        };
        loop {
            scheduler.schedule_pending().await;
            // Either something changed, or it is time for the periodic retry.
            let _ = tokio::time::timeout(RETRY_INTERVAL, changed.notified()).await;
        }
    };
    tokio::select! {
        () = watch_nodes => {},
        () = watch_pods => {},
        () = schedule => {},
    }
}

/// The scheduler's memory between passes.
struct Scheduler {
    client: kube::Client,
    nodes: Store<Node>,
    pods: Store<Pod>,
    /// Pods this scheduler bound (by uid) that the cache may not show bound yet: they count
    /// on their node and are never bound again (upstream's assumed pods).
    assumed: HashMap<String, (Pod, Instant)>,
    /// The last unschedulable message reported for a pod (by uid), so a pod that stays
    /// unschedulable is not reported on every pass.
    reported: HashMap<String, String>,
}

impl Scheduler {
    /// One pass over the pods waiting for a node, highest priority and oldest first.
    async fn schedule_pending(&mut self) {
        let all_pods = self.pods.state();
        let nodes: Vec<Node> = self.nodes.state().iter().map(|n| (**n).clone()).collect();

        // Forget assumptions the cache has caught up with (or that expired).
        let cached: HashMap<&str, &Pod> = all_pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref().map(|u| (u, p.as_ref())))
            .collect();
        self.assumed.retain(|uid, (_, at)| {
            cached
                .get(uid.as_str())
                .is_some_and(|p| wants_scheduling(p))
                && at.elapsed() < ASSUME_TTL
        });
        self.reported.retain(|uid, _| {
            cached
                .get(uid.as_str())
                .is_some_and(|p| wants_scheduling(p))
        });

        let mut bound: Vec<Pod> = all_pods
            .iter()
            .filter(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_some()
            })
            .map(|p| (**p).clone())
            .collect();
        bound.extend(self.assumed.values().map(|(p, _)| p.clone()));

        let mut pending: Vec<&Pod> = all_pods
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| wants_scheduling(p))
            .filter(|p| {
                p.metadata
                    .uid
                    .as_ref()
                    .is_none_or(|u| !self.assumed.contains_key(u))
            })
            .collect();
        pending.sort_by(|a, b| {
            let priority = |p: &Pod| p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
            priority(b)
                .cmp(&priority(a))
                .then_with(|| {
                    a.metadata
                        .creation_timestamp
                        .cmp(&b.metadata.creation_timestamp)
                })
                .then_with(|| a.metadata.namespace.cmp(&b.metadata.namespace))
                .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });

        for pod in pending {
            let result = match choose_node(pod, &nodes, &bound) {
                Ok(node) => self.bind(pod, &node).await.map(|placed| {
                    if let Some(p) = placed {
                        bound.push(p);
                    }
                }),
                Err(message) => self.report_unschedulable(pod, &message).await,
            };
            if let Err(e) = result {
                tracing::warn!(
                    pod = %pod_key(pod), error = %e, "scheduling failed; will retry"
                );
            }
        }
    }

    /// Binds `pod` to `node`; returns the pod as now placed, or `None` when it is gone or
    /// already bound by someone else.
    async fn bind(&mut self, pod: &Pod, node: &str) -> Result<Option<Pod>, SchedulerError> {
        let (Some(ns), Some(name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return Ok(None);
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ns.to_string()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".to_string()),
                kind: Some("Node".to_string()),
                name: Some(node.to_string()),
                ..Default::default()
            },
        };
        let mut placed = pod.clone();
        if let Some(spec) = placed.spec.as_mut() {
            spec.node_name = Some(node.to_string());
        }
        let result: Result<serde_json::Value, _> = api
            .create_subresource("binding", name, &PostParams::default(), &binding)
            .await;
        match result {
            Ok(_) => {}
            // 404: deleted meanwhile; 409: bound already (another scheduler, or a retry of
            // ours whose answer was lost). Either way the cache will show the truth.
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => {
                if let Some(uid) = pod.metadata.uid.clone() {
                    self.assumed.insert(uid, (placed, Instant::now()));
                }
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(pod = %format!("{ns}/{name}"), node, "scheduled pod");
        if let Some(uid) = pod.metadata.uid.clone() {
            self.assumed
                .insert(uid.clone(), (placed.clone(), Instant::now()));
            self.reported.remove(&uid);
        }
        self.event(
            pod,
            "Normal",
            "Scheduled",
            &format!("Successfully assigned {ns}/{name} to {node}"),
        )
        .await;
        Ok(Some(placed))
    }

    /// Sets `PodScheduled=False/Unschedulable` with `message` and emits `FailedScheduling`,
    /// once per distinct message.
    async fn report_unschedulable(
        &mut self,
        pod: &Pod,
        message: &str,
    ) -> Result<(), SchedulerError> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.reported.get(&uid).map(String::as_str) == Some(message) {
            return Ok(());
        }
        let (Some(ns), Some(name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return Ok(());
        };
        tracing::info!(pod = %format!("{ns}/{name}"), message, "pod is unschedulable");
        let existing = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        let unchanged = existing.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message)
        });
        if !unchanged {
            // The transition time moves only when the status flips.
            let transition = existing
                .filter(|c| c.status == "False")
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(now);
            let patch = Patch::Strategic(json!({"status": {"conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": transition,
            }]}}));
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            match api
                .patch_status(name, &PatchParams::default(), &patch)
                .await
            {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        self.event(pod, "Warning", "FailedScheduling", message)
            .await;
        self.reported.insert(uid, message.to_string());
        Ok(())
    }

    /// Emits a core/v1 Event about `pod` from `default-scheduler`; failures are only logged,
    /// as events are best-effort upstream too.
    async fn event(&self, pod: &Pod, type_: &str, reason: &str, message: &str) {
        let Some(ns) = pod.metadata.namespace.as_deref() else {
            return;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now_time = now();
        let event = Event {
            metadata: ObjectMeta {
                // Upstream names events `<object>.<unix nanos in hex>`.
                name: Some(format!("{name}.{:x}", now_time.0.as_nanosecond())),
                namespace: Some(ns.to_string()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".to_string()),
                kind: Some("Pod".to_string()),
                namespace: Some(ns.to_string()),
                name: Some(name),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..Default::default()
            },
            type_: Some(type_.to_string()),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            source: Some(EventSource {
                component: Some(SCHEDULER_NAME.to_string()),
                host: None,
            }),
            reporting_component: Some(SCHEDULER_NAME.to_string()),
            reporting_instance: Some(String::new()),
            first_timestamp: Some(now_time.clone()),
            last_timestamp: Some(now_time),
            count: Some(1),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(error = %e, reason, "scheduler: emitting event");
        }
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// Whether an API error carries this HTTP status code.
fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, NodeCondition, NodeSpec, NodeStatus, PodSpec, PodStatus, ResourceRequirements,
    };

    fn node(name: &str, cpu: &str, memory: &str, pods: &str) -> Node {
        let allocatable = BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.to_string())),
            ("memory".to_string(), Quantity(memory.to_string())),
            ("pods".to_string(), Quantity(pods.to_string())),
        ]);
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(BTreeMap::from([(
                    "kubernetes.io/hostname".to_string(),
                    name.to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(allocatable.clone()),
                capacity: Some(allocatable),
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".to_string(),
                    status: "True".to_string(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
        let mut requests = BTreeMap::new();
        if !cpu.is_empty() {
            requests.insert("cpu".to_string(), Quantity(cpu.to_string()));
        }
        if !memory.is_empty() {
            requests.insert("memory".to_string(), Quantity(memory.to_string()));
        }
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".to_string()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".to_string(),
                    resources: Some(ResourceRequirements {
                        requests: Some(requests),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".to_string()),
                ..Default::default()
            }),
        }
    }

    fn on(mut p: Pod, node: &str, phase: &str) -> Pod {
        if let Some(s) = p.spec.as_mut() {
            s.node_name = Some(node.to_string());
        }
        p.status = Some(PodStatus {
            phase: Some(phase.to_string()),
            ..Default::default()
        });
        p
    }

    #[test]
    fn first_fitting_node_by_name_wins() {
        let nodes = [node("b", "4", "8Gi", "110"), node("a", "4", "8Gi", "110")];
        assert_eq!(
            choose_node(&pod("p", "1", "1Gi"), &nodes, &[]),
            Ok("a".to_string())
        );
    }

    #[test]
    fn insufficient_cpu_counts_bound_pods() {
        let nodes = [node("n", "2", "8Gi", "110")];
        let bound = [on(pod("q", "1500m", ""), "n", "Running")];
        assert_eq!(
            choose_node(&pod("p", "1", ""), &nodes, &bound),
            Err("0/1 nodes are available: 1 Insufficient cpu.".to_string())
        );
        assert_eq!(
            choose_node(&pod("p", "500m", ""), &nodes, &bound),
            Ok("n".to_string())
        );
    }

    #[test]
    fn insufficient_memory_and_cpu_together() {
        let nodes = [node("n", "1", "1Gi", "110")];
        assert_eq!(
            choose_node(&pod("p", "2", "2Gi"), &nodes, &[]),
            Err("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.".to_string())
        );
        assert_eq!(
            choose_node(&pod("p", "", "1025Mi"), &nodes, &[]),
            Err("0/1 nodes are available: 1 Insufficient memory.".to_string())
        );
    }

    #[test]
    fn too_many_pods() {
        let nodes = [node("n", "4", "8Gi", "1")];
        let bound = [on(pod("q", "", ""), "n", "Running")];
        assert_eq!(
            choose_node(&pod("p", "", ""), &nodes, &bound),
            Err("0/1 nodes are available: 1 Too many pods.".to_string())
        );
    }

    #[test]
    fn terminal_pods_are_not_counted() {
        let nodes = [node("n", "1", "8Gi", "1")];
        let bound = [
            on(pod("done", "1", ""), "n", "Succeeded"),
            on(pod("failed", "1", ""), "n", "Failed"),
            on(pod("elsewhere", "1", ""), "other", "Running"),
        ];
        assert_eq!(
            choose_node(&pod("p", "1", ""), &nodes, &bound),
            Ok("n".to_string())
        );
    }

    #[test]
    fn init_containers_count_by_maximum() {
        let mut p = pod("p", "500m", "");
        if let Some(s) = p.spec.as_mut() {
            let init = |cpu: &str| Container {
                name: "i".to_string(),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "cpu".to_string(),
                        Quantity(cpu.to_string()),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            };
            s.init_containers = Some(vec![init("1"), init("2")]);
        }
        assert_eq!(pod_request(&p)["cpu"], 2000);
        let nodes = [node("n", "1500m", "8Gi", "110")];
        assert_eq!(
            choose_node(&p, &nodes, &[]),
            Err("0/1 nodes are available: 1 Insufficient cpu.".to_string())
        );
    }

    #[test]
    fn limits_stand_in_for_missing_requests() {
        let mut p = pod("p", "", "");
        if let Some(c) = p.spec.as_mut().map(|s| &mut s.containers[0]) {
            c.resources = Some(ResourceRequirements {
                limits: Some(BTreeMap::from([("cpu".to_string(), Quantity("3".into()))])),
                ..Default::default()
            });
        }
        assert_eq!(pod_request(&p)["cpu"], 3000);
    }

    #[test]
    fn node_selector_must_match_all_labels() {
        let nodes = [node("n", "4", "8Gi", "110")];
        let mut p = pod("p", "", "");
        if let Some(s) = p.spec.as_mut() {
            s.node_selector = Some(BTreeMap::from([
                ("kubernetes.io/hostname".to_string(), "n".to_string()),
                ("disk".to_string(), "ssd".to_string()),
            ]));
        }
        assert_eq!(
            choose_node(&p, &nodes, &[]),
            Err(
                "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
                    .to_string()
            )
        );
        if let Some(s) = p.spec.as_mut() {
            s.node_selector = Some(BTreeMap::from([(
                "kubernetes.io/hostname".to_string(),
                "n".to_string(),
            )]));
        }
        assert_eq!(choose_node(&p, &nodes, &[]), Ok("n".to_string()));
    }

    #[test]
    fn required_node_affinity_is_honoured() {
        use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector};
        let nodes = [node("a", "4", "8Gi", "110"), node("b", "4", "8Gi", "110")];
        let mut p = pod("p", "", "");
        let term = |key: &str, op: &str, values: &[&str]| NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.to_string(),
                operator: op.to_string(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
            match_fields: None,
        };
        if let Some(s) = p.spec.as_mut() {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![term("kubernetes.io/hostname", "NotIn", &["a"])],
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        assert_eq!(choose_node(&p, &nodes, &[]), Ok("b".to_string()));
    }

    #[test]
    fn unschedulable_nodes_are_skipped() {
        let mut n = node("n", "4", "8Gi", "110");
        n.spec = Some(NodeSpec {
            unschedulable: Some(true),
            ..Default::default()
        });
        let ok = node("z", "4", "8Gi", "110");
        assert_eq!(
            choose_node(&pod("p", "", ""), std::slice::from_ref(&n), &[]),
            Err("0/1 nodes are available: 1 node(s) were unschedulable.".to_string())
        );
        assert_eq!(
            choose_node(&pod("p", "", ""), &[n, ok], &[]),
            Ok("z".to_string())
        );
    }

    #[test]
    fn not_ready_nodes_are_skipped() {
        let mut n = node("n", "4", "8Gi", "110");
        if let Some(c) = n
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.status = "Unknown".to_string();
        }
        assert_eq!(
            choose_node(&pod("p", "", ""), &[n], &[]),
            Err(
                "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
                    .to_string()
            )
        );
        assert_eq!(
            choose_node(&pod("p", "", ""), &[], &[]),
            Err("no nodes available to schedule pods".to_string())
        );
    }

    #[test]
    fn taints_need_tolerations() {
        let mut n = node("n", "4", "8Gi", "110");
        n.spec = Some(NodeSpec {
            taints: Some(vec![
                Taint {
                    key: "dedicated".to_string(),
                    value: Some("gpu".to_string()),
                    effect: "NoSchedule".to_string(),
                    ..Default::default()
                },
                Taint {
                    key: "soft".to_string(),
                    effect: "PreferNoSchedule".to_string(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        });
        let nodes = [n];
        let with = |t: Toleration| {
            let mut p = pod("p", "", "");
            if let Some(s) = p.spec.as_mut() {
                s.tolerations = Some(vec![t]);
            }
            p
        };
        assert_eq!(
            choose_node(&pod("p", "", ""), &nodes, &[]),
            Err(
                "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}."
                    .to_string()
            )
        );
        let equal = Toleration {
            key: Some("dedicated".to_string()),
            operator: Some("Equal".to_string()),
            value: Some("gpu".to_string()),
            effect: Some("NoSchedule".to_string()),
            ..Default::default()
        };
        assert_eq!(
            choose_node(&with(equal.clone()), &nodes, &[]),
            Ok("n".to_string())
        );
        let wrong_value = Toleration {
            value: Some("cpu".to_string()),
            ..equal.clone()
        };
        assert!(choose_node(&with(wrong_value), &nodes, &[]).is_err());
        let wrong_effect = Toleration {
            effect: Some("NoExecute".to_string()),
            ..equal
        };
        assert!(choose_node(&with(wrong_effect), &nodes, &[]).is_err());
        let exists_any_effect = Toleration {
            key: Some("dedicated".to_string()),
            operator: Some("Exists".to_string()),
            ..Default::default()
        };
        assert_eq!(
            choose_node(&with(exists_any_effect), &nodes, &[]),
            Ok("n".to_string())
        );
        let tolerate_everything = Toleration {
            operator: Some("Exists".to_string()),
            ..Default::default()
        };
        assert_eq!(
            choose_node(&with(tolerate_everything), &nodes, &[]),
            Ok("n".to_string())
        );
    }

    #[test]
    fn reasons_are_counted_across_nodes() {
        let mut cordoned = node("a", "4", "8Gi", "110");
        cordoned.spec = Some(NodeSpec {
            unschedulable: Some(true),
            ..Default::default()
        });
        let nodes = [
            cordoned,
            node("b", "1", "8Gi", "110"),
            node("c", "1", "8Gi", "110"),
        ];
        assert_eq!(
            choose_node(&pod("p", "2", ""), &nodes, &[]),
            Err(
                "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."
                    .to_string()
            )
        );
    }

    #[test]
    fn only_unplaced_default_scheduler_pods_are_wanted() {
        let p = pod("p", "", "");
        assert!(wants_scheduling(&p));
        assert!(!wants_scheduling(&on(p.clone(), "n", "Pending")));
        let mut other = p.clone();
        if let Some(s) = other.spec.as_mut() {
            s.scheduler_name = Some("my-scheduler".to_string());
        }
        assert!(!wants_scheduling(&other));
        let mut deleting = p.clone();
        deleting.metadata.deletion_timestamp = Some(now());
        assert!(!wants_scheduling(&deleting));
    }
}
