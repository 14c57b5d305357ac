//! Upstream `pkg/controller/deployment/util/deployment_util.go` and `controller.ComputeHash`:
//! the pod-template hash, template equality, revisions and their annotations, the rolling
//! update fenceposts and the Deployment conditions.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use std::collections::BTreeMap;

/// The label that ties a ReplicaSet and its pods to one pod template of a Deployment.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The revision of a Deployment's rollout, on the Deployment and its ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The earlier revisions a reused ReplicaSet had.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's `spec.replicas` when the ReplicaSet was last scaled for it.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's `spec.replicas` plus its max surge at that time.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// What kubectl's `--record` used to write; copied to ReplicaSets like any annotation.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// The client-side-apply annotation, never copied to ReplicaSets.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The extensions/v1beta1 rollback request, never copied to ReplicaSets.
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// Upstream `maxRevHistoryLengthInChars`.
pub const MAX_REVISION_HISTORY_CHARS: usize = 2000;

// Condition types and reasons (upstream `deploymentutil` constants).
pub const AVAILABLE: &str = "Available";
pub const PROGRESSING: &str = "Progressing";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
pub const NEW_REPLICA_SET_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_REPLICA_SET: &str = "FoundNewReplicaSet";
pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_REPLICA_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
pub const REPLICA_SET_CREATE_ERROR: &str = "ReplicaSetCreateError";
pub const DEPLOYMENT_PAUSED: &str = "DeploymentPaused";
pub const DEPLOYMENT_RESUMED: &str = "DeploymentResumed";

/// The alphabet of `rand.SafeEncodeString` (no vowels, no 0/1/3, so no words).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Fields of a pod template that are Go maps or non-pointer structs upstream: there an
/// empty value and an absent one are the same thing, so they are dropped before comparing
/// or hashing. (Pointer structs such as `emptyDir: {}` or `securityContext: {}` keep their
/// presence, as in Go.)
const VALUE_FIELDS: &[&str] = &[
    "metadata",
    "spec",
    "resources",
    "labels",
    "annotations",
    "nodeSelector",
    "limits",
    "requests",
    "overhead",
    "volumeAttributes",
];

/// A pod template in canonical form: JSON with nulls, empty lists and empty maps or value
/// structs removed (what Go's `apiequality.Semantic.DeepEqual` does not tell apart), keys
/// sorted.
pub fn canonical_template(template: &PodTemplateSpec) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    canonicalise(&mut value);
    value
}

fn canonicalise(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (_, child) in map.iter_mut() {
                canonicalise(child);
            }
            map.retain(|k, child| match child {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty() || !VALUE_FIELDS.contains(&k.as_str()),
                _ => true,
            });
            map.sort_keys();
        }
        Value::Array(items) => items.iter_mut().for_each(canonicalise),
        _ => {}
    }
}

/// Upstream `EqualIgnoreHash`: the templates are equal once the `pod-template-hash` label
/// is set aside.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        canonical_template(&t)
    };
    strip(a) == strip(b)
}

/// The `pod-template-hash` of a template (upstream `controller.ComputeHash`): FNV-32a over
/// the template, then the collision count as 8 little-endian bytes, its decimal digits
/// mapped through `rand.SafeEncodeString`'s alphabet.
///
/// Deviation: upstream hashes the template as Go's `spew` printer renders the Go struct,
/// which cannot be reproduced outside Go; this hashes [`canonical_template`]'s JSON instead.
/// The hash is stable for a template and changes when the template does, which is all the
/// controller relies on, but the values differ from a real cluster's for the same template.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let canonical = canonical_template(template).to_string();
    let mut hash = fnv32a(0x811c_9dc5, canonical.as_bytes());
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&c.to_le_bytes());
        hash = fnv32a(hash, &bytes);
    }
    safe_encode(&hash.to_string())
}

fn fnv32a(mut hash: u32, bytes: &[u8]) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// `rand.SafeEncodeString`: each byte picks a letter of the safe alphabet.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// A ReplicaSet's `spec.replicas` (default 1).
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Sets a ReplicaSet's `spec.replicas`.
pub fn set_rs_replicas(rs: &mut ReplicaSet, n: i32) {
    if let Some(spec) = rs.spec.as_mut() {
        spec.replicas = Some(n);
    }
}

/// A Deployment's `spec.replicas` (default 1).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32) {
    rs.status.as_ref().map_or((0, 0, 0), |s| {
        (
            s.replicas,
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
        )
    })
}

/// `status.replicas` of a ReplicaSet (the pods it has).
pub fn actual_replicas(rs: &ReplicaSet) -> i32 {
    rs_status(rs).0
}

/// `status.readyReplicas` of a ReplicaSet.
pub fn ready_replicas(rs: &ReplicaSet) -> i32 {
    rs_status(rs).1
}

/// `status.availableReplicas` of a ReplicaSet.
pub fn available_replicas(rs: &ReplicaSet) -> i32 {
    rs_status(rs).2
}

/// Whether the Deployment uses the RollingUpdate strategy.
pub fn is_rolling_update(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// Whether the Deployment uses the Recreate strategy.
pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

/// `intstr.GetScaledValueFromIntOrPercent`: an int, or a percentage of `total` rounded up
/// or down. `None` for a malformed value.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match v {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(s) => {
            let percent: i64 = s.strip_suffix('%')?.parse().ok()?;
            let product = percent * i64::from(total);
            let value = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(value).ok()
        }
    }
}

/// Upstream `ResolveFenceposts`: max surge (rounded up) and max unavailable (rounded
/// down) for `desired` replicas; both zero makes max unavailable 1.
pub fn resolve_fenceposts(d: &Deployment, desired: i32) -> (i32, i32) {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let zero = IntOrString::Int(0);
    let surge_v = rolling.and_then(|r| r.max_surge.as_ref()).unwrap_or(&zero);
    let unavailable_v = rolling
        .and_then(|r| r.max_unavailable.as_ref())
        .unwrap_or(&zero);
    let surge = scaled_value(surge_v, desired, true).unwrap_or(0);
    let mut unavailable = scaled_value(unavailable_v, desired, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// Upstream `MaxSurge`: 0 unless rolling.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    resolve_fenceposts(d, replicas(d)).0
}

/// Upstream `MaxUnavailable`: 0 unless rolling with replicas, never above `spec.replicas`.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = replicas(d);
    if !is_rolling_update(d) || desired == 0 {
        return 0;
    }
    resolve_fenceposts(d, desired).1.min(desired)
}

/// Upstream `HasProgressDeadline`: set and not `MaxInt32`.
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|p| p != i32::MAX)
}

/// A ReplicaSet's revision (0 when it has none; `None` when it is not a number).
pub fn revision(annotations: Option<&BTreeMap<String, String>>) -> Option<i64> {
    match annotations.and_then(|a| a.get(REVISION)) {
        None => Some(0),
        Some(v) => v.parse().ok(),
    }
}

/// Upstream `MaxRevision`, skipping unparseable revisions.
pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter()
        .filter_map(|rs| revision(rs.metadata.annotations.as_ref()))
        .max()
        .unwrap_or(0)
        .max(0)
}

fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

/// Upstream `SetNewReplicaSetAnnotations`: copies the Deployment's annotations (all but the
/// controller's own and last-applied), raises the revision to `new_revision` when it is
/// lower (remembering the old one in `revision-history` — that is a rollback), and on a
/// new ReplicaSet sets the desired/max replicas. Returns whether anything changed.
pub fn set_new_replica_set_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = annotations.get(REVISION).cloned();
    let old_revision = match old.as_deref() {
        None | Some("") => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return false,
        },
    };
    if old_revision < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            let mut parts: Vec<&str> = history.split(',').filter(|p| !p.is_empty()).collect();
            if parts.is_empty() {
                annotations.insert(REVISION_HISTORY.into(), old);
            } else {
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    parts.drain(..start);
                    parts.push(&old);
                    let joined = parts.join(",");
                    annotations.insert(REVISION_HISTORY.into(), joined);
                }
            }
        }
    }
    if !exists {
        let desired = replicas(d);
        changed |= set_replicas_annotations(rs, desired, desired + max_surge(d));
    }
    changed
}

/// Upstream `SetReplicasAnnotations`; returns whether they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.into(), value);
            changed = true;
        }
    }
    changed
}

/// Upstream `ReplicasAnnotationsNeedUpdate`.
pub fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.as_ref();
    let get = |k: &str| a.and_then(|a| a.get(k)).cloned();
    get(DESIRED_REPLICAS) != Some(desired.to_string()) || get(MAX_REPLICAS) != Some(max.to_string())
}

fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse().ok())
}

/// Upstream `GetDesiredReplicasAnnotation`.
pub fn desired_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    int_annotation(rs, DESIRED_REPLICAS)
}

/// Upstream `getMaxReplicasAnnotation`.
pub fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    int_annotation(rs, MAX_REPLICAS)
}

/// Upstream `SetDeploymentRevision`; returns whether it changed.
pub fn set_deployment_revision(d: &mut Deployment, revision: &str) -> bool {
    let annotations = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if annotations.get(REVISION).map(String::as_str) == Some(revision) {
        return false;
    }
    annotations.insert(REVISION.into(), revision.into());
    true
}

/// Upstream `NewDeploymentCondition`, both times `now`.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> DeploymentCondition {
    let t = crate::job::to_time(now);
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(t.clone()),
        last_transition_time: Some(t),
    }
}

/// Upstream `GetDeploymentCondition`.
pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// Upstream `SetDeploymentCondition`: nothing when status and reason are unchanged; the
/// transition time survives a same-status update; the condition moves to the end.
pub fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get_condition(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &condition.type_);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition);
}

/// Upstream `RemoveDeploymentCondition`.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.type_ != type_);
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
}

/// Upstream `DeploymentComplete`: every replica updated and available, nothing old left,
/// and the latest spec observed.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = replicas(d);
    let n = |v: Option<i32>| v.unwrap_or(0);
    n(status.updated_replicas) == want
        && n(status.replicas) == want
        && n(status.available_replicas) == want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream `DeploymentProgressing`: more updated, ready or available pods, or fewer old
/// ones, than the stored status says.
pub fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Upstream `DeploymentTimedOut`: the Progressing condition was last updated longer than
/// `progressDeadlineSeconds` ago (and the rollout has not completed).
pub fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus, now: DateTime<Utc>) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = get_condition(status, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_REPLICA_SET_AVAILABLE) => false,
        Some(PROGRESS_DEADLINE_EXCEEDED) => true,
        _ => {
            let deadline = d
                .spec
                .as_ref()
                .and_then(|s| s.progress_deadline_seconds)
                .unwrap_or(0);
            c.last_update_time.as_ref().is_some_and(|t| {
                crate::replicaset::pods::from_time(t)
                    + chrono::Duration::seconds(i64::from(deadline))
                    < now
            })
        }
    }
}
