//! The pure core of the Job controller (upstream `syncJob`, `manageJob` and
//! `trackJobStatusAndRemoveFinalizers`): from a Job, its pods and the time, the pods to
//! create and delete, the finalizers to remove and the new status. No I/O.

use super::failure_policy::{self, PolicyAction};
use super::indexes::{self, Indexes};
use super::{per_index, success_policy};
use crate::replicaset::{PodRef, controller_of, labels_of, selector_of};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The finalizer that keeps a finished pod around until the controller has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation and label carrying an Indexed Job pod's completion index.
pub const COMPLETION_INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// The env var every container of an Indexed Job pod gets.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The `spec.managedBy` value that means this controller.
pub const MANAGED_BY: &str = "kubernetes.io/job-controller";

/// Upstream `MaxPodCreateDeletePerSync`.
const MAX_CREATE_DELETE_PER_SYNC: usize = 500;
/// Upstream `MaxUncountedPods`.
const MAX_UNCOUNTED_PODS: usize = 500;
/// Upstream `DefaultJobPodFailureBackOff`.
const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream `MaxJobPodFailureBackOff` (10 minutes since 1.28).
const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);
/// `generateName` prefixes are truncated to this length (upstream `MaxGeneratedNameLength`).
const MAX_GENERATED_NAME_LENGTH: usize = 58;

pub use crate::events::EventType;

/// An Event to record on the Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEvent {
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

impl JobEvent {
    fn new(type_: EventType, reason: &str, message: &str) -> Self {
        JobEvent {
            type_,
            reason: reason.to_string(),
            message: message.to_string(),
        }
    }
}

/// A pod the controller wants created.
#[derive(Clone, Debug, PartialEq)]
pub struct PodToCreate {
    /// The completion index, for Indexed Jobs.
    pub index: Option<i32>,
    /// The pod to POST (it carries `generateName`, no name).
    pub pod: Pod,
}

/// What one sync of a Job decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    /// Orphan pods matching the Job's selector that it adopts. The I/O shell patches each
    /// one first (controller reference and tracking finalizer, conditioned on its uid) and
    /// drops the rest of the plan if one fails, because the plan already counts them.
    pub adopt: Vec<PodRef>,
    /// Pods this Job controls that its selector no longer matches: the I/O shell removes
    /// its controller reference and the tracking finalizer (upstream `ReleasePod`).
    pub release: Vec<PodRef>,
    /// Pods to create; the I/O shell creates them in slow-start batches (1, 2, 4, …) and
    /// stops at the first failure.
    pub create: Vec<PodToCreate>,
    /// Names of pods to delete.
    pub delete: Vec<String>,
    /// The subset of `delete` whose tracking finalizer is removed before the DELETE, so
    /// they are not counted as failures: pods removed by scale-down or suspension
    /// (upstream `deleteJobPods`). Pods deleted because the Job is finishing keep it and
    /// are counted (upstream `deleteActivePods`).
    pub release_before_delete: Vec<String>,
    /// Names of pods whose tracking finalizer is removed — only after `status` is written,
    /// because `status.uncountedTerminatedPods` is what makes the count exactly-once.
    pub remove_finalizer: Vec<String>,
    /// The new status (already counting `create` as active and `delete` as terminating).
    pub status: JobStatus,
    /// Whether `status` differs from the Job's current status.
    pub status_changed: bool,
    /// Events to record once the status is written.
    pub events: Vec<JobEvent>,
    /// When to look at the Job again without any change (deadline, failure backoff).
    pub requeue_after: Option<Duration>,
}

/// The outcome the Job is heading for.
#[derive(Clone, Debug)]
struct Finish {
    success: bool,
    reason: String,
    message: String,
    /// Whether the interim condition (`SuccessCriteriaMet`/`FailureTarget`) is already in
    /// the status.
    recorded: bool,
}

/// The controller's view of a Job's spec, defaults applied.
pub(super) struct Spec {
    parallelism: i32,
    completions: Option<i32>,
    backoff_limit: i32,
    /// `backoffLimitPerIndex`, for Indexed Jobs only (upstream `hasBackoffLimitPerIndex`).
    per_index_limit: Option<i32>,
    max_failed_indexes: Option<i32>,
    indexed: bool,
    suspended: bool,
    only_replace_failed: bool,
}

impl Spec {
    fn of(job: &Job) -> Spec {
        let spec = job.spec.as_ref();
        let parallelism = spec.and_then(|s| s.parallelism);
        let completions = spec.and_then(|s| s.completions);
        // Both unset defaults both to 1; only completions unset is a work queue.
        let completions = match (parallelism, completions) {
            (None, None) => Some(1),
            (_, c) => c,
        };
        let per_index_limit = spec.and_then(|s| s.backoff_limit_per_index);
        let backoff_limit =
            spec.and_then(|s| s.backoff_limit)
                .unwrap_or(if per_index_limit.is_some() {
                    i32::MAX
                } else {
                    6
                });
        let indexed = completions.is_some()
            && spec.and_then(|s| s.completion_mode.as_deref()) == Some("Indexed");
        Spec {
            parallelism: parallelism.unwrap_or(1).max(0),
            completions,
            backoff_limit,
            per_index_limit: per_index_limit.filter(|_| indexed),
            max_failed_indexes: spec.and_then(|s| s.max_failed_indexes),
            indexed,
            suspended: spec.and_then(|s| s.suspend) == Some(true),
            only_replace_failed: spec.and_then(|s| s.pod_replacement_policy.as_deref())
                == Some("Failed"),
        }
    }
}

/// Whether the Job has its final `Complete` or `Failed` condition.
pub fn is_finished(job: &Job) -> bool {
    conditions(job)
        .iter()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// Whether this controller is responsible for the Job (`spec.managedBy`).
pub fn is_managed(job: &Job) -> bool {
    job.spec
        .as_ref()
        .and_then(|s| s.managed_by.as_deref())
        .is_none_or(|m| m == MANAGED_BY)
}

fn conditions(job: &Job) -> &[JobCondition] {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

fn find_condition<'a>(conds: &'a [JobCondition], type_: &str) -> Option<&'a JobCondition> {
    conds.iter().find(|c| c.type_ == type_)
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// Upstream `ensureJobConditionStatus`: sets a condition's status/reason/message, adding it
/// only when it is not `False`. Returns whether anything changed.
fn ensure_condition(
    conds: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status
            || c.reason.as_deref() != Some(reason)
            || c.message.as_deref() != Some(message)
        {
            *c = new_condition(type_, status, reason, message, now);
            return true;
        }
        return false;
    }
    if status != "False" {
        conds.push(new_condition(type_, status, reason, message, now));
        return true;
    }
    false
}

/// Converts a chrono time to the API's `Time`, at the API's one-second precision.
pub fn to_time(t: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(t.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn from_time(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(
        t.0.as_second(),
        t.0.subsec_nanosecond().max(0).unsigned_abs(),
    )
    .unwrap_or_default()
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_none()
}

fn is_terminating(pod: &Pod) -> bool {
    !is_terminal(pod) && pod.metadata.deletion_timestamp.is_some()
}

fn is_ready(pod: &Pod) -> bool {
    pod_condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

fn pod_condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
}

pub(super) fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

pub(super) fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Upstream `isPodFailed`: phase Failed, or — unless only failed pods are replaced — being
/// deleted without having succeeded (orphans may never reach a terminal phase).
pub(super) fn is_failed(pod: &Pod, spec: &Spec) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    !spec.only_replace_failed
        && pod.metadata.deletion_timestamp.is_some()
        && phase(pod) != "Succeeded"
}

pub(super) fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX_KEY))
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|i| *i >= 0)
}

/// Upstream `getFinishedTime`: the latest container `finishedAt` (when all containers, and
/// all sidecars — restartable init containers — terminated), else when Ready went False,
/// else deletion time minus grace, else creation.
pub(super) fn finish_time(pod: &Pod, now: DateTime<Utc>) -> DateTime<Utc> {
    if let Some(t) = containers_finish_time(pod) {
        return t;
    }
    if let Some(t) = pod_condition(pod, "Ready")
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref())
    {
        return from_time(t);
    }
    if let Some(t) = &pod.metadata.deletion_timestamp {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        return from_time(t) - chrono::Duration::seconds(grace);
    }
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, from_time)
}

/// Upstream `getFinishTimeFromContainers`: the latest `finishedAt` of the containers and the
/// sidecars, or `None` while any of them has not terminated (or there are none).
fn containers_finish_time(pod: &Pod) -> Option<DateTime<Utc>> {
    let status = pod.status.as_ref()?;
    let sidecars: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let main = status.container_statuses.iter().flatten();
    let side = status
        .init_container_statuses
        .iter()
        .flatten()
        .filter(|c| sidecars.contains(&c.name.as_str()));
    let mut latest: Option<DateTime<Utc>> = None;
    for cs in main.chain(side) {
        let finished = cs
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref())?;
        latest = latest.max(Some(from_time(finished)));
    }
    latest
}

/// Upstream backoff record: 10 s × 2^(n−1) (capped) for the n failures since the last
/// success, measured from the last of them. Derived from the pods themselves, so it
/// survives restarts as long as the pods do. Failures a `podFailurePolicy` ignores count
/// (upstream records every new failed pod); pods this controller released and deleted
/// (suspension, scale-down) do not.
fn backoff_remaining(pods: &[Pod], spec: &Spec, now: DateTime<Utc>) -> Duration {
    let last_success = pods
        .iter()
        .filter(|p| phase(p) == "Succeeded")
        .map(|p| finish_time(p, now))
        .max();
    let failures: Vec<DateTime<Utc>> = pods
        .iter()
        .filter(|p| is_failed(p, spec))
        .filter(|p| p.metadata.deletion_timestamp.is_none() || has_finalizer(p))
        .map(|p| finish_time(p, now))
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let Some(last_failure) = failures.iter().max() else {
        return Duration::ZERO;
    };
    backoff_left(failures.len(), *last_failure, now)
}

/// Upstream `getRemainingTimeForFailuresCount`: after `failures` consecutive failures the
/// next pod waits 10 s × 2^(failures−1), capped at 10 minutes, from the last failure.
pub(super) fn backoff_left(
    failures: usize,
    last_failure: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let mut backoff = POD_FAILURE_BACKOFF;
    for _ in 1..failures {
        backoff = backoff.saturating_mul(2);
        if backoff >= MAX_POD_FAILURE_BACKOFF {
            backoff = MAX_POD_FAILURE_BACKOFF;
            break;
        }
    }
    let elapsed = (now - last_failure).to_std().unwrap_or(Duration::ZERO);
    backoff.saturating_sub(elapsed)
}

/// Upstream `pastBackoffLimitOnFailure`: with `restartPolicy: OnFailure` container restarts
/// of running and pending pods count against backoffLimit.
fn past_backoff_limit_on_failure(job: &Job, pods: &[Pod], spec: &Spec) -> bool {
    let restart_policy = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if restart_policy != Some("OnFailure") {
        return false;
    }
    let restarts: i64 = pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            let init = s.init_container_statuses.as_deref().unwrap_or_default();
            let main = s.container_statuses.as_deref().unwrap_or_default();
            init.iter().chain(main)
        })
        .map(|c| i64::from(c.restart_count))
        .sum();
    if spec.backoff_limit == 0 {
        restarts > 0
    } else {
        restarts >= i64::from(spec.backoff_limit)
    }
}

/// The controller reference a Job puts on the pods it creates or adopts.
pub fn controller_ref(job: &Job) -> OwnerReference {
    OwnerReference {
        api_version: "batch/v1".to_string(),
        kind: "Job".to_string(),
        name: job.metadata.name.clone().unwrap_or_default(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Upstream `getPodsForJob` with `PodControllerRefManager.ClaimPods`: of the listed pods,
/// those this Job controls and its selector still matches, plus matching orphans — unless
/// the Job is being deleted, or the orphan is (or lives in another namespace). Adopted
/// pods are returned as they will be once patched: controlled by the Job and carrying the
/// tracking finalizer, so that this very sync counts them.
fn claim(job: &Job, pods: &[Pod]) -> (Vec<Pod>, Vec<PodRef>, Vec<PodRef>) {
    let job_uid = job.metadata.uid.as_deref().unwrap_or("");
    let deleting = job.metadata.deletion_timestamp.is_some();
    let selector = job
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(selector_of);
    // An empty selector would claim every pod of the namespace; the API server never
    // lets a Job have one, and here it claims nothing.
    let matches = |pod: &Pod| {
        selector
            .as_ref()
            .is_some_and(|sel| !sel.is_empty() && sel.matches(&labels_of(&pod.metadata)))
    };
    let mut claimed = Vec::new();
    let mut adopt = Vec::new();
    let mut release = Vec::new();
    for pod in pods {
        match controller_of(&pod.metadata) {
            Some(r) if r.uid == job_uid && matches(pod) => claimed.push(pod.clone()),
            Some(r) if r.uid == job_uid => release.push(PodRef {
                name: name(pod),
                uid: uid(pod).to_string(),
            }),
            // Another controller's.
            Some(_) => {}
            None => {
                if deleting
                    || pod.metadata.deletion_timestamp.is_some()
                    || pod.metadata.namespace != job.metadata.namespace
                    || !matches(pod)
                {
                    continue;
                }
                adopt.push(PodRef {
                    name: name(pod),
                    uid: uid(pod).to_string(),
                });
                let mut adopted = pod.clone();
                adopted
                    .metadata
                    .owner_references
                    .get_or_insert_with(Vec::new)
                    .push(controller_ref(job));
                let finalizers = adopted.metadata.finalizers.get_or_insert_with(Vec::new);
                if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
                    finalizers.push(TRACKING_FINALIZER.to_string());
                }
                claimed.push(adopted);
            }
        }
    }
    (claimed, adopt, release)
}

/// The pod to create for the Job (upstream `podControl.CreatePodsWithControllerRef` on the
/// template, plus the tracking finalizer and, for Indexed Jobs, the completion index).
pub fn pod_for(job: &Job, index: Option<i32>) -> Pod {
    let job_name = job.metadata.name.as_deref().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    let mut finalizers = tmeta.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_string());
    }
    let generate_name = match index {
        Some(i) => {
            let suffix = format!("-{i}-");
            let keep = MAX_GENERATED_NAME_LENGTH.saturating_sub(suffix.len());
            let prefix: String = job_name.chars().take(keep).collect();
            format!("{prefix}{suffix}")
        }
        None => format!("{job_name}-"),
    };
    if let Some(i) = index {
        labels.insert(COMPLETION_INDEX_KEY.to_string(), i.to_string());
        annotations.insert(COMPLETION_INDEX_KEY.to_string(), i.to_string());
        spec.hostname = Some(format!("{job_name}-{i}"));
        let env = EnvVar {
            name: COMPLETION_INDEX_ENV.to_string(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    // The label, since PodIndexLabel went GA (1.32).
                    field_path: format!("metadata.labels['{COMPLETION_INDEX_KEY}']"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let init = spec.init_containers.iter_mut().flatten();
        for c in spec.containers.iter_mut().chain(init) {
            let vars = c.env.get_or_insert_with(Vec::new);
            if !vars.iter().any(|v| v.name == COMPLETION_INDEX_ENV) {
                vars.push(env.clone());
            }
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_ref(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Orders active pods for removal, most expendable first (upstream `activePodsForRemoval`
/// via `controller.ActivePods`): unscheduled before scheduled, Pending < Unknown < Running,
/// not ready before ready, ready for a shorter time first, more restarts first, then the
/// youngest.
fn removal_order(pods: &mut [&Pod]) {
    use crate::replicaset::pods::{max_restarts, node_name, ready_since};
    use std::cmp::Reverse;
    pods.sort_by_cached_key(|p| {
        let phase = match phase(p) {
            "Running" => 2,
            "Unknown" => 1,
            _ => 0,
        };
        let ready = is_ready(p);
        // A ready pod without a ready time counts as the most recently ready.
        let ready_at = match ready {
            true => ready_since(p).map_or(i64::MAX, |t| t.timestamp()),
            false => 0,
        };
        let created = p
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(i64::MAX, |t| t.0.as_second());
        let (restarts, _) = max_restarts(p);
        (
            !node_name(p).is_empty(),
            phase,
            ready,
            Reverse(ready_at),
            Reverse(restarts),
            Reverse(created),
        )
    });
}

/// Normalises a status to its wire form (Go's `omitempty` on counters and strings; the
/// `ready`/`terminating` pointers and `uncountedTerminatedPods` always present, and
/// `failedIndexes` — a pointer — present, even empty, with `backoffLimitPerIndex`), so that
/// "changed" means changed on the wire.
fn normalize(mut s: JobStatus, per_index: bool) -> JobStatus {
    let nonzero = |v: Option<i32>| v.filter(|n| *n != 0);
    s.active = nonzero(s.active);
    s.succeeded = nonzero(s.succeeded);
    s.failed = nonzero(s.failed);
    s.completed_indexes = s.completed_indexes.filter(|v| !v.is_empty());
    if !per_index {
        s.failed_indexes = s.failed_indexes.filter(|v| !v.is_empty());
    }
    s.conditions = s.conditions.filter(|v| !v.is_empty());
    let u = s.uncounted_terminated_pods.take().unwrap_or_default();
    s.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: u.succeeded.filter(|v| !v.is_empty()),
        failed: u.failed.filter(|v| !v.is_empty()),
    });
    s
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One sync with the cache known to be up to date (see [`sync_with_expectations`]).
pub fn sync(job: &Job, pods: &[Pod], now: DateTime<Utc>) -> SyncPlan {
    sync_with_expectations(job, pods, now, true)
}

/// One sync of a Job. `pods` are the pods of the Job's namespace, whoever controls them:
/// the sync claims its own, adopts matching orphans and releases its own that stopped
/// matching (see `claim`). When
/// `expectations_satisfied` is false (pods this controller created or deleted are
/// not yet visible), no pods are created or deleted for scaling — only counting and
/// terminal handling happen, as upstream skips `manageJob`.
pub fn sync_with_expectations(
    job: &Job,
    pods: &[Pod],
    now: DateTime<Utc>,
    expectations_satisfied: bool,
) -> SyncPlan {
    let spec = Spec::of(job);
    let old = normalize(
        job.status.clone().unwrap_or_default(),
        spec.per_index_limit.is_some(),
    );
    let mut plan = SyncPlan {
        status: old.clone(),
        ..SyncPlan::default()
    };
    if is_finished(job) || !is_managed(job) {
        return plan;
    }
    let (claimed, adopt, release) = claim(job, pods);
    plan.adopt = adopt;
    plan.release = release;
    let pods: &[Pod] = &claimed;
    let now_t = to_time(now);
    let now = from_time(&now_t);
    let mut status = old.clone();
    let mut conds = status.conditions.take().unwrap_or_default();
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let uncounted_succeeded: BTreeSet<String> = uncounted
        .succeeded
        .unwrap_or_default()
        .into_iter()
        .collect();
    let uncounted_failed: BTreeSet<String> =
        uncounted.failed.unwrap_or_default().into_iter().collect();

    let mut active_pods: Vec<&Pod> = pods.iter().filter(|p| is_active(p)).collect();
    let mut terminating = count(pods.iter().filter(|p| is_terminating(p)).count());
    let completions = spec.completions.unwrap_or(0);
    // Upstream `getValidPodsWithFilter`: an Indexed Job's pod without a valid index is
    // never counted.
    let tracked = |p: &&Pod| has_finalizer(p);
    let countable = |p: &&Pod| {
        has_finalizer(p) && (!spec.indexed || completion_index(p).is_some_and(|i| i < completions))
    };
    let new_succeeded = pods
        .iter()
        .filter(countable)
        .filter(|p| phase(p) == "Succeeded")
        .filter(|p| !uncounted_succeeded.contains(uid(p)) && !uncounted_failed.contains(uid(p)))
        .count();
    let new_failed = pods
        .iter()
        .filter(countable)
        .filter(|p| phase(p) != "Succeeded" && is_failed(p, &spec))
        .filter(|p| !uncounted_failed.contains(uid(p)))
        .filter(|p| !failure_policy::is_ignored(job, p))
        .count();
    let prev_indexes = match spec.indexed {
        true => indexes::parse(
            status.completed_indexes.as_deref().unwrap_or(""),
            completions,
        ),
        false => Indexes::new(),
    };
    let mut succeeded_indexes = prev_indexes.clone();
    if spec.indexed {
        succeeded_indexes.extend(
            pods.iter()
                .filter(tracked)
                .filter(|p| phase(p) == "Succeeded")
                .filter_map(completion_index)
                .filter(|i| *i < completions),
        );
    }
    let succeeded = match spec.indexed {
        true => count(succeeded_indexes.len()),
        false => status
            .succeeded
            .unwrap_or(0)
            .saturating_add(count(new_succeeded + uncounted_succeeded.len())),
    };
    let failed = status
        .failed
        .unwrap_or(0)
        .saturating_add(count(new_failed + uncounted_failed.len()));

    // A Job starts when it is first not suspended; a resume resets the start below, after
    // the deadline was checked (as upstream orders it).
    if status.start_time.is_none() && !spec.suspended {
        status.start_time = Some(now_t.clone());
    }

    let mut requeue: Option<Duration> = None;
    let mut finish: Option<Finish> = None;
    if let Some(c) = find_condition(&conds, "SuccessCriteriaMet").filter(|c| c.status == "True") {
        finish = Some(Finish {
            success: true,
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
            recorded: true,
        });
    } else if let Some(c) = find_condition(&conds, "FailureTarget").filter(|c| c.status == "True") {
        finish = Some(Finish {
            success: false,
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
            recorded: true,
        });
    } else if let Some(message) = pods.iter().filter(|p| is_failed(p, &spec)).find_map(|p| {
        match failure_policy::matching_action(job, p) {
            Some(PolicyAction::FailJob(m)) => Some(m),
            _ => None,
        }
    }) {
        finish = Some(Finish {
            success: false,
            reason: "PodFailurePolicy".into(),
            message,
            recorded: false,
        });
    } else if failed > spec.backoff_limit || past_backoff_limit_on_failure(job, pods, &spec) {
        finish = Some(Finish {
            success: false,
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
            recorded: false,
        });
    } else if let (Some(ads), Some(start), false) = (
        job.spec.as_ref().and_then(|s| s.active_deadline_seconds),
        status.start_time.as_ref(),
        spec.suspended,
    ) {
        let deadline = from_time(start) + chrono::Duration::seconds(ads);
        if now >= deadline {
            finish = Some(Finish {
                success: false,
                reason: "DeadlineExceeded".into(),
                message: "Job was active longer than specified deadline".into(),
                recorded: false,
            });
        } else {
            requeue = (deadline - now).to_std().ok();
        }
    }

    // backoffLimitPerIndex: indexes out of budget fail for good; too many of them fail the
    // Job, and so does finishing with any (upstream `syncJob` for Indexed Jobs).
    let failed_indexes = spec
        .per_index_limit
        .map(|limit| per_index::failed_indexes(job, pods, &spec, completions, limit));
    if finish.is_none()
        && let Some(failed) = &failed_indexes
    {
        let total = count(failed.len());
        if spec.max_failed_indexes.is_some_and(|max| total > max) {
            finish = Some(Finish {
                success: false,
                reason: "MaxFailedIndexesExceeded".into(),
                message: "Job has exceeded the specified maximal number of failed indexes".into(),
                recorded: false,
            });
        } else if total > 0 && total.saturating_add(succeeded) >= completions {
            finish = Some(Finish {
                success: false,
                reason: "FailedIndexes".into(),
                message: "Job has failed indexes".into(),
                recorded: false,
            });
        }
    }
    let awaiting_replacement = match &failed_indexes {
        Some(failed) => {
            let finished: Indexes = succeeded_indexes.union(failed).copied().collect();
            let running: BTreeSet<i32> = active_pods
                .iter()
                .copied()
                .filter_map(completion_index)
                .collect();
            per_index::awaiting_replacement(pods, &spec, completions, &finished, &running, now)
        }
        None => BTreeMap::new(),
    };
    if finish.is_none()
        && spec.indexed
        && let Some(message) = success_policy::matched_rule(job, completions, &succeeded_indexes)
    {
        finish = Some(Finish {
            success: true,
            reason: success_policy::REASON.into(),
            message,
            recorded: false,
        });
    }

    let ready_of = |ps: &[&Pod]| count(ps.iter().filter(|p| is_ready(p)).count());
    let mut ready = ready_of(&active_pods);
    let mut active = count(active_pods.len());
    let mut delete =
        |victims: Vec<&Pod>, release: bool, active: &mut i32, ready: &mut i32, term: &mut i32| {
            for p in victims {
                plan.delete.push(name(p));
                if release && has_finalizer(p) {
                    plan.release_before_delete.push(name(p));
                }
                *active -= 1;
                *term += 1;
                if is_ready(p) {
                    *ready -= 1;
                }
            }
        };

    if finish.is_some() {
        // Reaching a terminal condition deletes whatever still runs; the condition is only
        // recorded once the cache is known to hold every pod (upstream: `deleted != active
        // || !satisfiedExpectations`).
        let victims = std::mem::take(&mut active_pods);
        delete(victims, false, &mut active, &mut ready, &mut terminating);
        if !expectations_satisfied {
            finish = None;
        }
    } else {
        let manage_called = expectations_satisfied && job.metadata.deletion_timestamp.is_none();
        if !manage_called {
            // Pods are neither created nor deleted until the cache is known complete.
        } else if spec.suspended {
            let victims = std::mem::take(&mut active_pods);
            delete(victims, true, &mut active, &mut ready, &mut terminating);
        } else {
            let want = match spec.completions {
                None if succeeded > 0 => active,
                None => spec.parallelism,
                Some(c) => c.saturating_sub(succeeded).clamp(0, spec.parallelism),
            };
            let mut victims: Vec<&Pod> = Vec::new();
            if spec.indexed {
                // Pods with a bad or already succeeded index, and duplicates of an index,
                // go first (upstream `appendDuplicatedIndexPodsForRemoval`).
                let mut by_index: BTreeMap<i32, Vec<&Pod>> = BTreeMap::new();
                for p in &active_pods {
                    match completion_index(p) {
                        Some(i) if i < completions && !succeeded_indexes.contains(&i) => {
                            by_index.entry(i).or_default().push(p);
                        }
                        _ => victims.push(p),
                    }
                }
                for (_, mut dup) in by_index {
                    removal_order(&mut dup);
                    let keep = dup.len().saturating_sub(1);
                    victims.extend(dup.into_iter().rev().skip(1).take(keep));
                }
            }
            let extra = usize::try_from(active.saturating_sub(want)).unwrap_or(0);
            if victims.len() < extra {
                let mut rest: Vec<&Pod> = active_pods
                    .iter()
                    .copied()
                    .filter(|p| !victims.iter().any(|v| std::ptr::eq(*v, *p)))
                    .collect();
                removal_order(&mut rest);
                let more = extra - victims.len();
                victims.extend(rest.into_iter().take(more));
            }
            victims.truncate(MAX_CREATE_DELETE_PER_SYNC);
            if !victims.is_empty() {
                delete(victims, true, &mut active, &mut ready, &mut terminating);
            } else {
                // With podReplacementPolicy Failed a terminating pod blocks its replacement.
                let blocked = if spec.only_replace_failed {
                    terminating
                } else {
                    0
                };
                let diff = want.saturating_sub(blocked).saturating_sub(active);
                if diff > 0 {
                    // With per-index limits each index backs off on its own, below.
                    let wait = match spec.per_index_limit {
                        Some(_) => Duration::ZERO,
                        None => backoff_remaining(pods, &spec, now),
                    };
                    if !wait.is_zero() {
                        requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
                    } else {
                        let diff = usize::try_from(diff)
                            .unwrap_or(0)
                            .min(MAX_CREATE_DELETE_PER_SYNC);
                        let mut to_create: Vec<Option<i32>> = if spec.indexed {
                            let taken: BTreeSet<i32> = pods
                                .iter()
                                .filter(|p| {
                                    is_active(p) || (spec.only_replace_failed && is_terminating(p))
                                })
                                .filter_map(completion_index)
                                .chain(failed_indexes.iter().flatten().copied())
                                .collect();
                            // Upstream `firstPendingIndexes`.
                            (0..completions)
                                .filter(|i| !succeeded_indexes.contains(i) && !taken.contains(i))
                                .take(diff)
                                .map(Some)
                                .collect()
                        } else {
                            vec![None; diff]
                        };
                        if spec.per_index_limit.is_some() {
                            // Upstream `getPodCreationInfoForIndependentIndexes`: indexes
                            // still backing off wait; look again when the first is due.
                            to_create.retain(|index| {
                                let replaced = index.and_then(|i| awaiting_replacement.get(&i));
                                let wait = per_index::backoff_remaining(replaced.copied(), now);
                                if !wait.is_zero() {
                                    requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
                                }
                                wait.is_zero()
                            });
                        }
                        active = active.saturating_add(count(to_create.len()));
                        plan.create = to_create
                            .into_iter()
                            .map(|index| {
                                let mut pod = pod_for(job, index);
                                if spec.per_index_limit.is_some() {
                                    let replaced =
                                        index.and_then(|i| awaiting_replacement.get(&i)).copied();
                                    per_index::annotate(&mut pod, job, replaced);
                                }
                                PodToCreate { index, pod }
                            })
                            .collect();
                    }
                }
            }
        }
        let complete = match spec.completions {
            None => succeeded > 0 && active == 0,
            Some(c) => succeeded >= c && active == 0,
        };
        if complete {
            finish = Some(Finish {
                success: true,
                reason: "CompletionsReached".into(),
                message: "Reached expected number of succeeded pods".into(),
                recorded: false,
            });
        } else if manage_called {
            // Suspension changes are recorded only by a sync that managed the pods.
            if spec.suspended {
                if ensure_condition(
                    &mut conds,
                    "Suspended",
                    "True",
                    "JobSuspended",
                    "Job suspended",
                    &now_t,
                ) {
                    plan.events.push(JobEvent::new(
                        EventType::Normal,
                        "Suspended",
                        "Job suspended",
                    ));
                }
            } else if ensure_condition(
                &mut conds,
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                &now_t,
            ) {
                plan.events
                    .push(JobEvent::new(EventType::Normal, "Resumed", "Job resumed"));
                // A resumed Job's activeDeadlineSeconds counts from now (upstream resets
                // startTime here, after the deadline was checked against the old one).
                status.start_time = Some(now_t.clone());
            }
        }
    }

    status.active = Some(active);
    status.ready = Some(ready.max(0));
    status.terminating = Some(terminating);

    // trackJobStatusAndRemoveFinalizers: uncounted UIDs whose pod lost its finalizer (or is
    // gone) were counted by the previous write's finalizer removal; move them to counters.
    let with_finalizer: BTreeSet<&str> = pods.iter().filter(tracked).map(uid).collect();
    let (kept_s, moved_s): (Vec<String>, Vec<String>) = uncounted_succeeded
        .iter()
        .cloned()
        .partition(|u| with_finalizer.contains(u.as_str()));
    let (kept_f, moved_f): (Vec<String>, Vec<String>) = uncounted_failed
        .iter()
        .cloned()
        .partition(|u| with_finalizer.contains(u.as_str()));
    if !spec.indexed {
        status.succeeded = Some(
            status
                .succeeded
                .unwrap_or(0)
                .saturating_add(count(moved_s.len())),
        );
    }
    status.failed = Some(
        status
            .failed
            .unwrap_or(0)
            .saturating_add(count(moved_f.len())),
    );
    let mut new_uncounted_s = kept_s;
    let mut new_uncounted_f = kept_f;
    let mut new_indexes: Vec<i32> = Vec::new();
    let mut reached_max = false;
    let job_failing = finish.as_ref().is_some_and(|f| !f.success);
    for p in pods.iter().filter(tracked) {
        let failed_pod = is_failed(p, &spec);
        // Upstream `canRemoveFinalizer`: a failed pod whose index is to be retried stays
        // until its replacement carries its failure counts.
        let awaits_replacement = completion_index(p)
            .and_then(|i| awaiting_replacement.get(&i))
            .is_some_and(|a| uid(a) == uid(p));
        let removable = job.metadata.deletion_timestamp.is_some()
            || finish.is_some()
            || phase(p) == "Succeeded"
            || (failed_pod && !awaits_replacement);
        if !removable {
            continue;
        }
        plan.remove_finalizer.push(name(p));
        let u = uid(p).to_string();
        if phase(p) == "Succeeded" && !uncounted_failed.contains(&u) {
            if spec.indexed {
                if let Some(i) = completion_index(p).filter(|i| *i < completions)
                    && !prev_indexes.contains(&i)
                {
                    new_indexes.push(i);
                }
            } else if !uncounted_succeeded.contains(&u) {
                new_uncounted_s.push(u);
            }
        } else if (failed_pod || job_failing)
            && !uncounted_failed.contains(&u)
            && (!spec.indexed || completion_index(p).is_some_and(|i| i < completions))
            && !failure_policy::is_ignored(job, p)
        {
            new_uncounted_f.push(u);
        }
        if new_indexes.len() + new_uncounted_s.len() + new_uncounted_f.len() >= MAX_UNCOUNTED_PODS {
            reached_max = true;
            break;
        }
    }
    if spec.indexed {
        let mut all = prev_indexes;
        all.extend(new_indexes);
        status.succeeded = Some(count(all.len()));
        status.completed_indexes = Some(indexes::format(&all));
        status.failed_indexes = failed_indexes.as_ref().map(indexes::format);
    }
    let uncounted_empty = new_uncounted_s.is_empty() && new_uncounted_f.is_empty();
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: Some(new_uncounted_s),
        failed: Some(new_uncounted_f),
    });

    if let Some(f) = &finish {
        let (interim, final_type) = match f.success {
            true => ("SuccessCriteriaMet", "Complete"),
            false => ("FailureTarget", "Failed"),
        };
        if !f.recorded {
            conds.push(new_condition(
                interim, "True", &f.reason, &f.message, &now_t,
            ));
        }
        // The final condition waits for every pod to be counted and gone (upstream
        // `enactJobFinished` with JobPodReplacementPolicy/JobManagedBy on); finalizers
        // still to remove are counted in the next sync.
        if uncounted_empty && terminating == 0 && plan.remove_finalizer.is_empty() && !reached_max {
            ensure_condition(
                &mut conds, final_type, "True", &f.reason, &f.message, &now_t,
            );
            if f.success {
                status.completion_time = Some(now_t.clone());
                if !spec.indexed && spec.completions.is_some_and(|c| succeeded > c) {
                    plan.events.push(JobEvent::new(
                        EventType::Warning,
                        "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached",
                    ));
                }
                plan.events.push(JobEvent::new(
                    EventType::Normal,
                    "Completed",
                    "Job completed",
                ));
            } else {
                plan.events
                    .push(JobEvent::new(EventType::Warning, &f.reason, &f.message));
            }
        }
    }
    status.conditions = Some(conds);
    let status = normalize(status, spec.per_index_limit.is_some());
    plan.status_changed = status != old;
    plan.status = status;
    plan.requeue_after = requeue;
    plan
}
