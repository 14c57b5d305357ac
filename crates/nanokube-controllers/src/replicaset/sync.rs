//! The pure core of the ReplicaSet controller (upstream `syncReplicaSet`, `claimPods`,
//! `manageReplicas`, `getPodsToDelete` and `calculateStatus`): from a ReplicaSet, the pods
//! of its namespace and the time, the pods to adopt, release, create and delete and the new
//! status. No I/O.

use super::pods::{self, is_pod_active, is_pod_available, is_pod_ready};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use nanokube_registry::selectors::LabelSelector as Selector;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Upstream `BurstReplicas`: at most this many pods are created or deleted in one sync.
pub const BURST_REPLICAS: usize = 500;
/// The condition a ReplicaSet gets when creating or deleting pods fails.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
/// The annotation that makes a pod cheaper or dearer to delete on scale-down.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// What one sync of a ReplicaSet decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    /// Orphan pods that match the selector: they get this ReplicaSet as their controller.
    pub adopt: Vec<PodRef>,
    /// Owned pods whose labels no longer match: their controller reference is removed.
    pub release: Vec<PodRef>,
    /// Pods to POST (each carries `generateName`, no name); the I/O shell creates them in
    /// slow-start batches and stops at the first failure.
    pub create: Vec<Pod>,
    /// Names of surplus pods to delete, most expendable first.
    pub delete: Vec<String>,
    /// The new status, counted from the pods this sync observed (as upstream: pods being
    /// created or deleted now show up in the next sync).
    pub status: ReplicaSetStatus,
    /// Whether `status` must be written.
    pub status_changed: bool,
    /// When to look again without any change: the moment the next ready pod becomes
    /// available (`minReadySeconds`).
    pub requeue_after: Option<Duration>,
}

/// A pod named in a plan, with the uid its adoption or release patch is conditioned on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub name: String,
    pub uid: String,
}

/// The controller reference of an object (the owner reference with `controller: true`).
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// `metav1.LabelSelectorAsSelector` of a typed selector.
pub fn selector_of(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Option<Selector> {
    let value = serde_json::to_value(sel).ok()?;
    Selector::from_json(&value).ok()
}

/// An object's labels (empty when it has none).
pub fn labels_of(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

/// The controller reference a ReplicaSet puts on the pods it creates or adopts.
pub fn controller_ref(rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: rs.metadata.name.clone().unwrap_or_default(),
        uid: rs.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The pod a ReplicaSet creates (upstream `GetPodFromTemplate`): the template's labels,
/// annotations, finalizers and spec, `generateName: <rs>-` and the controller reference.
pub fn pod_for(rs: &ReplicaSet) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels.filter(|l| !l.is_empty()),
            annotations: tmeta.annotations.filter(|a| !a.is_empty()),
            finalizers: tmeta.finalizers.filter(|f| !f.is_empty()),
            owner_references: Some(vec![controller_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// One sync of a ReplicaSet with the cache known to be up to date.
pub fn sync(rs: &ReplicaSet, pods: &[Pod], related: &[Pod], now: DateTime<Utc>) -> SyncPlan {
    sync_with_expectations(rs, pods, related, now, true)
}

/// One sync of a ReplicaSet. `pods` are the pods of its namespace (the controller claims
/// the matching orphans and releases its own non-matching ones); `related` are the pods of
/// the ReplicaSets that share this one's controller (a Deployment's other revisions), which
/// only rank pods on crowded nodes for deletion. When `expectations_satisfied` is false
/// (pods this controller created or deleted are not visible yet) no pods are created or
/// deleted, as upstream skips `manageReplicas`.
pub fn sync_with_expectations(
    rs: &ReplicaSet,
    pods: &[Pod],
    related: &[Pod],
    now: DateTime<Utc>,
    expectations_satisfied: bool,
) -> SyncPlan {
    let mut plan = SyncPlan::default();
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let selector = rs
        .spec
        .as_ref()
        .and_then(|s| selector_of(&s.selector))
        .unwrap_or_else(Selector::nothing);
    let namespace = rs.metadata.namespace.clone();

    // claimPods (upstream `PodControllerRefManager.ClaimPods` over active pods).
    let mut claimed: Vec<&Pod> = Vec::new();
    for pod in pods.iter().filter(|p| is_pod_active(p)) {
        let matches = !selector.is_empty() && selector.matches(&labels_of(&pod.metadata));
        match controller_of(&pod.metadata) {
            Some(r) if r.uid != uid => {}
            Some(_) if matches => claimed.push(pod),
            Some(_) => {
                if !deleting {
                    plan.release.push(pod_ref(pod));
                }
            }
            None => {
                if deleting || !matches || pod.metadata.namespace != namespace {
                    continue;
                }
                plan.adopt.push(pod_ref(pod));
                claimed.push(pod);
            }
        }
    }

    let replicas = spec_replicas(rs).max(0);
    let have = count(claimed.len());
    if expectations_satisfied && !deleting {
        // manageReplicas.
        if have < replicas {
            let diff = usize::try_from(replicas - have)
                .unwrap_or(0)
                .min(BURST_REPLICAS);
            plan.create = (0..diff).map(|_| pod_for(rs)).collect();
        } else if have > replicas {
            let diff = usize::try_from(have - replicas)
                .unwrap_or(0)
                .min(BURST_REPLICAS);
            plan.delete = pods_to_delete(&claimed, related, diff, now)
                .into_iter()
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
        }
    }

    plan.status = calculate_status(rs, &claimed, now);
    plan.status_changed = status_needs_update(rs, &plan.status);
    if plan.status_changed {
        plan.status.observed_generation = rs.metadata.generation.filter(|g| *g != 0);
    }
    plan.requeue_after = next_available(&claimed, min_ready_seconds(rs), now);
    plan
}

fn pod_ref(pod: &Pod) -> PodRef {
    PodRef {
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    }
}

/// Upstream `calculateStatus` without a manage error: replicas, fully labeled, ready and
/// available pods, and any `ReplicaFailure` condition cleared.
pub fn calculate_status(rs: &ReplicaSet, claimed: &[&Pod], now: DateTime<Utc>) -> ReplicaSetStatus {
    let mut status = rs.status.clone().unwrap_or_default();
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .map(labels_of)
        .unwrap_or_default();
    let min_ready = min_ready_seconds(rs);
    let mut fully_labeled = 0usize;
    let mut ready = 0usize;
    let mut available = 0usize;
    for pod in claimed {
        let labels = labels_of(&pod.metadata);
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
        {
            fully_labeled += 1;
        }
        if is_pod_ready(pod) {
            ready += 1;
            if is_pod_available(pod, min_ready, now) {
                available += 1;
            }
        }
    }
    let nonzero = |n: usize| Some(count(n)).filter(|n| *n != 0);
    status.replicas = count(claimed.len());
    status.fully_labeled_replicas = nonzero(fully_labeled);
    status.ready_replicas = nonzero(ready);
    status.available_replicas = nonzero(available);
    status.observed_generation = status.observed_generation.filter(|g| *g != 0);
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.type_ != REPLICA_FAILURE);
    }
    status.conditions = status.conditions.filter(|c| !c.is_empty());
    status
}

/// Upstream `calculateStatus` with a manage error: the `ReplicaFailure` condition is set
/// (reason `FailedCreate` when pods were missing, `FailedDelete` when there were too many),
/// or kept as it was when the ReplicaSet already has one.
pub fn record_manage_error(
    status: &mut ReplicaSetStatus,
    rs: &ReplicaSet,
    message: &str,
    now: DateTime<Utc>,
) {
    let existing = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == REPLICA_FAILURE))
        .cloned();
    let condition = existing.unwrap_or_else(|| {
        let diff = status.replicas - spec_replicas(rs);
        let reason = match diff {
            d if d < 0 => "FailedCreate",
            d if d > 0 => "FailedDelete",
            _ => "",
        };
        ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(reason.into()).filter(|r: &String| !r.is_empty()),
            message: Some(message.into()),
            last_transition_time: Some(crate::job::to_time(now)),
        }
    });
    let conds = status.conditions.get_or_insert_with(Vec::new);
    conds.retain(|c| c.type_ != REPLICA_FAILURE);
    conds.push(condition);
}

/// Upstream `updateReplicaSetStatus`'s steady-state test: nothing to write when the counts,
/// the conditions and the observed generation are all current.
pub fn status_needs_update(rs: &ReplicaSet, new: &ReplicaSetStatus) -> bool {
    let old = rs.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    !(old.replicas == new.replicas
        && n(old.fully_labeled_replicas) == n(new.fully_labeled_replicas)
        && n(old.ready_replicas) == n(new.ready_replicas)
        && n(old.available_replicas) == n(new.available_replicas)
        && rs.metadata.generation.unwrap_or(0) == old.observed_generation.unwrap_or(0)
        && old.conditions.clone().unwrap_or_default() == new.conditions.clone().unwrap_or_default())
}

/// How long until the first ready-but-not-yet-available pod becomes available.
fn next_available(claimed: &[&Pod], min_ready: i32, now: DateTime<Utc>) -> Option<Duration> {
    if min_ready <= 0 {
        return None;
    }
    claimed
        .iter()
        .filter(|p| is_pod_ready(p) && !is_pod_available(p, min_ready, now))
        .filter_map(|p| pods::ready_since(p))
        .map(|t| t + chrono::Duration::seconds(i64::from(min_ready)) - now)
        .filter_map(|d| d.to_std().ok())
        .min()
        .map(|d| d + Duration::from_secs(1))
}

/// Upstream `getPodsToDelete`: all of them when every pod goes, else the `diff` most
/// expendable by `ActivePodsWithRanks` (rank = how many ready related pods share the node).
pub fn pods_to_delete<'a>(
    claimed: &[&'a Pod],
    related: &[Pod],
    diff: usize,
    now: DateTime<Utc>,
) -> Vec<&'a Pod> {
    let mut victims: Vec<&Pod> = claimed.to_vec();
    if diff < victims.len() {
        let mut on_node: HashMap<&str, i64> = HashMap::new();
        for p in related
            .iter()
            .filter(|p| is_pod_active(p) && is_pod_ready(p))
        {
            *on_node.entry(pods::node_name(p)).or_default() += 1;
        }
        victims.sort_by_cached_key(|p| {
            let rank = on_node.get(pods::node_name(p)).copied().unwrap_or(0);
            deletion_key(p, rank, now)
        });
    }
    victims.truncate(diff);
    victims
}

/// The key `ActivePodsWithRanks.Less` orders by, made a total order (`sort` needs one):
/// unassigned before assigned, Pending < Unknown < Running, not ready before ready, lower
/// deletion cost first, doubled-up nodes first, recently ready first (logarithmic buckets),
/// more restarts first, recently created first (logarithmic buckets), then by uid.
type DeletionKey = (
    bool,
    u8,
    bool,
    i32,
    Reverse<i64>,
    i64,
    Reverse<i64>,
    Reverse<i64>,
    i64,
    String,
);

fn deletion_key(pod: &Pod, rank: i64, now: DateTime<Utc>) -> DeletionKey {
    let assigned = !pods::node_name(pod).is_empty();
    let phase = match pods::phase(pod) {
        "Running" => 2,
        "Unknown" => 1,
        _ => 0,
    };
    let ready = is_pod_ready(pod);
    let cost = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    let ready_bucket = if ready {
        log_bucket(pods::ready_since(pod), now)
    } else {
        0
    };
    let (regular, sidecar) = pods::max_restarts(pod);
    let created = log_bucket(
        pod.metadata
            .creation_timestamp
            .as_ref()
            .map(pods::from_time),
        now,
    );
    (
        assigned,
        phase,
        ready,
        cost,
        Reverse(rank),
        ready_bucket,
        Reverse(regular),
        Reverse(sidecar),
        created,
        pod.metadata.uid.clone().unwrap_or_default(),
    )
}

/// Upstream `logarithmicRankDiff`'s bucket: ⌊log2(age in ns)⌋, −1 for a time in the future
/// and below that for no time at all (which sorts first, as `afterOrZero` does).
fn log_bucket(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> i64 {
    let Some(t) = t else { return -2 };
    let age = (now - t).num_nanoseconds().unwrap_or(i64::MAX);
    if age <= 0 {
        return -1;
    }
    i64::from(63 - age.leading_zeros())
}
