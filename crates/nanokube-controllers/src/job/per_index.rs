//! `spec.backoffLimitPerIndex` (upstream `indexed_job_utils.go` and `backoff_utils.go`):
//! every completion index of an Indexed Job has its own failure budget instead of sharing
//! `backoffLimit`.
//!
//! A pod carries the failures its index had before it in the annotation
//! `batch.kubernetes.io/job-index-failure-count` (and the failures a pod failure policy
//! ignored in `…/job-index-ignored-failure-count`). When a pod fails with a count that has
//! already reached the limit, or matches a `FailIndex` rule, its index fails for good: it
//! goes to `status.failedIndexes` and gets no more pods. Otherwise the index is retried after
//! its own backoff, and the failed pod keeps its tracking finalizer until the replacement
//! exists, so that the replacement can be created with the counts carried one further.

use super::failure_policy::{self, PolicyAction};
use super::indexes::{self, Indexes};
use super::sync::{Spec, backoff_left, completion_index, finish_time, has_finalizer, is_failed};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Failures of the pod's index before this pod, counted against `backoffLimitPerIndex`.
pub const INDEX_FAILURE_COUNT_KEY: &str = "batch.kubernetes.io/job-index-failure-count";
/// Failures of the pod's index before this pod that a pod failure policy ignored.
pub const INDEX_IGNORED_FAILURE_COUNT_KEY: &str =
    "batch.kubernetes.io/job-index-ignored-failure-count";

/// An annotation count. Anyone who may update the pod can write these annotations, so a
/// value that is missing, malformed, negative or beyond int32 reads as 0 (upstream
/// `parseInt32`), never as an error.
fn count_annotation(pod: &Pod, key: &str) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|n| *n >= 0)
        .unwrap_or(0)
}

/// Upstream `getIndexFailureCount`.
pub fn failure_count(pod: &Pod) -> i32 {
    count_annotation(pod, INDEX_FAILURE_COUNT_KEY)
}

/// Upstream `getIndexAbsoluteFailureCount`: counted and ignored failures together, which
/// is what the per-index backoff grows with.
fn absolute_failure_count(pod: &Pod) -> i32 {
    failure_count(pod).saturating_add(count_annotation(pod, INDEX_IGNORED_FAILURE_COUNT_KEY))
}

/// Upstream `isIndexFailed`, for a pod already known to have failed: a `FailIndex` rule
/// fails the index at once; an ignored failure never does; any other failure does when the
/// index had already used up its budget before this pod.
fn fails_index(job: &Job, pod: &Pod, limit: i32) -> bool {
    match failure_policy::matching_action(job, pod) {
        Some(PolicyAction::FailIndex) => true,
        Some(PolicyAction::Ignore) => false,
        _ => failure_count(pod) >= limit,
    }
}

/// Upstream `calculateFailedIndexes`: the indexes in `status.failedIndexes` plus those of
/// failed pods not counted yet (they still hold the tracking finalizer) that fail their
/// index.
pub(super) fn failed_indexes(
    job: &Job,
    pods: &[Pod],
    spec: &Spec,
    completions: i32,
    limit: i32,
) -> Indexes {
    let recorded = job
        .status
        .as_ref()
        .and_then(|s| s.failed_indexes.as_deref())
        .unwrap_or("");
    let mut failed = indexes::parse(recorded, completions);
    failed.extend(
        pods.iter()
            .filter(|p| has_finalizer(p) && is_failed(p, spec))
            .filter(|p| fails_index(job, p, limit))
            .filter_map(completion_index)
            .filter(|i| *i < completions),
    );
    failed
}

/// Upstream `getPodsWithDelayedDeletionPerIndex`: for each index that is still to be
/// retried (neither succeeded, failed nor running), its latest failed pod not counted yet.
/// That pod keeps its tracking finalizer — so it stays readable — until its replacement,
/// which inherits its counts, exists.
pub(super) fn awaiting_replacement<'a>(
    pods: &'a [Pod],
    spec: &Spec,
    completions: i32,
    finished: &Indexes,
    running: &BTreeSet<i32>,
    now: DateTime<Utc>,
) -> BTreeMap<i32, &'a Pod> {
    let mut latest: BTreeMap<i32, &'a Pod> = BTreeMap::new();
    for pod in pods
        .iter()
        .filter(|p| has_finalizer(p) && is_failed(p, spec))
    {
        let Some(index) = completion_index(pod).filter(|i| *i < completions) else {
            continue;
        };
        if finished.contains(&index) || running.contains(&index) {
            continue;
        }
        let later = latest.get(&index).is_none_or(|seen| {
            absolute_failure_count(seen) <= absolute_failure_count(pod)
                && finish_time(pod, now) >= finish_time(seen, now)
        });
        if later {
            latest.insert(index, pod);
        }
    }
    latest
}

/// Upstream `addIndexFailureCountAnnotation` with `getNewIndexFailureCounts`: the pod that
/// retries an index carries the counts of the pod it replaces plus that pod's own failure
/// (as ignored when the policy ignored it); the first pod of an index starts at 0.
pub(super) fn annotate(pod: &mut Pod, job: &Job, replaced: Option<&Pod>) {
    let (mut failures, mut ignored) = (0, 0);
    if let Some(prev) = replaced {
        failures = failure_count(prev);
        ignored = count_annotation(prev, INDEX_IGNORED_FAILURE_COUNT_KEY);
        if failure_policy::is_ignored(job, prev) {
            ignored = ignored.saturating_add(1);
        } else {
            failures = failures.saturating_add(1);
        }
    }
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(INDEX_FAILURE_COUNT_KEY.to_string(), failures.to_string());
    if ignored > 0 {
        annotations.insert(
            INDEX_IGNORED_FAILURE_COUNT_KEY.to_string(),
            ignored.to_string(),
        );
    }
}

/// Upstream `getRemainingTimePerIndex`: an index is retried after the usual exponential
/// backoff, grown with the failures of that index alone and measured from its last failure.
pub(super) fn backoff_remaining(replaced: Option<&Pod>, now: DateTime<Utc>) -> Duration {
    let Some(prev) = replaced else {
        return Duration::ZERO;
    };
    let failures = usize::try_from(absolute_failure_count(prev))
        .unwrap_or(0)
        .saturating_add(1);
    backoff_left(failures, finish_time(prev, now), now)
}
