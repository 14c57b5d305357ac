//! The Job controller (upstream `pkg/controller/job/job_controller.go`): runs a Job's pods
//! to the wanted number of completions, counts each finished pod exactly once through the
//! `batch.kubernetes.io/job-tracking` finalizer and `status.uncountedTerminatedPods`, backs
//! off after failures (per index with `backoffLimitPerIndex`), applies the pod failure and
//! success policies, adopts matching orphan pods, and writes the two-step terminal
//! conditions of 1.32.
//!
//! [`sync`] is the pure decision (unit-tested with a fixed clock); [`run`] is the thin I/O
//! shell around it: a kube-runtime `Controller` on Jobs that watches Pods (its own, and
//! orphans its selector matches).

mod failure_policy;
mod indexes;
mod per_index;
mod success_policy;
mod sync;

pub use failure_policy::{PolicyAction, matching_action as match_pod_failure_policy};
pub use indexes::{Indexes, format as format_indexes, parse as parse_indexes};
pub use per_index::{INDEX_FAILURE_COUNT_KEY, INDEX_IGNORED_FAILURE_COUNT_KEY};
pub use success_policy::matched_rule as match_success_policy;
pub use sync::{
    COMPLETION_INDEX_ENV, COMPLETION_INDEX_KEY, EventType, JobEvent, MANAGED_BY, PodToCreate,
    SyncPlan, TRACKING_FINALIZER, controller_ref, is_finished, is_managed, pod_for, sync,
    sync_with_expectations, to_time,
};

use crate::LogFailures;
use crate::events::Recorder;
use crate::expectations::Expectations;
use crate::failure_backoff::FailureBackoff;
use crate::ownership::owners_for_dependent;
use crate::{Error, RETRY, is_not_found};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::Arc;
use std::time::Duration;

/// The injected source of "now", shared with the API server and the other controllers.
pub use nanokube_registry::clock::{Clock, SystemClock};

/// The label the API server puts on every Job pod (template labels).
const JOB_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The component name on the Job's Events.
const COMPONENT: &str = "job-controller";
/// How soon to look again while expectations are pending.
const EXPECTATIONS_RECHECK: Duration = Duration::from_secs(1);
/// Syncs run back to back in one reconcile while finalizers were just removed, so counts
/// and the final condition land without waiting for the watch.
const MAX_ROUNDS: usize = 4;

/// The label selector string (`k=v,k in (a,b),!k`) of a Job's `spec.selector`.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

struct Context {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
    expectations: Expectations,
    /// Retry waits after failed pod creations (upstream `DefaultJobApiBackOff` 1 s,
    /// doubling, capped at `MaxJobApiBackOff` 1 min).
    create_failures: FailureBackoff,
}

impl Context {
    /// Records a `core/v1` Event on the Job (what `kubectl describe job` lists).
    async fn event(&self, job: &Job, type_: EventType, reason: &str, message: &str) {
        self.recorder.publish(job, type_, reason, message).await;
    }
}

async fn reconcile(cached: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        cached.metadata.namespace.clone(),
        cached.metadata.name.clone(),
    ) else {
        return Ok(Action::await_change());
    };
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    // The cached Job may lag our own status writes; read it fresh so a write is not
    // computed from old counters (the resourceVersion still guards the write).
    let Some(mut job) = jobs.get_opt(&name).await? else {
        if let Some(uid) = &cached.metadata.uid {
            ctx.expectations.forget(uid);
            ctx.create_failures.record(uid, false);
        }
        return Ok(Action::await_change());
    };
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let mut action = Action::await_change();
    for _ in 0..MAX_ROUNDS {
        if is_finished(&job) || !is_managed(&job) {
            ctx.expectations.forget(&uid);
            ctx.create_failures.record(&uid, false);
            return Ok(Action::await_change());
        }
        let selector = job
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .map(selector_string)
            .unwrap_or_default();
        if selector.is_empty() {
            // An empty selector would match every pod; the API server always sets one.
            return Ok(Action::await_change());
        }
        // Every pod of the namespace, whoever controls it: the sync claims its own, adopts
        // matching orphans and releases its own that stopped matching.
        let pods: Vec<Pod> = pods_api.list(&ListParams::default()).await?.items;
        let satisfied = ctx.expectations.observe(&uid, &pods);
        let mut plan = sync_with_expectations(&job, &pods, ctx.clock.now(), satisfied);
        if !adopt_orphans(&job, &pods_api, &plan).await? {
            // An orphan went away before it could be adopted; the plan counted it.
            return Ok(Action::requeue(EXPECTATIONS_RECHECK));
        }
        release_pods(&job, &pods_api, &plan).await?;
        let create_failed = apply_pod_changes(&ctx, &job, &pods_api, &mut plan).await?;
        if plan.status_changed {
            let mut updated = job.clone();
            updated.status = Some(plan.status.clone());
            job = jobs
                .replace_status(&name, &PostParams::default(), &updated)
                .await?;
        }
        for e in &plan.events {
            ctx.event(&job, e.type_, &e.reason, &e.message).await;
        }
        // Only now, with the UIDs durable in uncountedTerminatedPods, may the pods go.
        let mut removed_all = true;
        for pod in &plan.remove_finalizer {
            if let Err(e) = release_pod(&pods_api, pod).await {
                tracing::debug!(error = %e, pod, "removing the job tracking finalizer failed");
                removed_all = false;
            }
        }
        // A failed creation is retried with upstream's per-Job API back-off (1 s doubling to
        // a minute): nothing else would wake the Job, since its status may not change.
        let retry = ctx.create_failures.record(&uid, create_failed);
        let requeue = match (plan.requeue_after, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        action = match (satisfied, requeue) {
            (false, _) => Action::requeue(EXPECTATIONS_RECHECK),
            (true, Some(d)) => Action::requeue(d.max(Duration::from_millis(100))),
            (true, None) => Action::await_change(),
        };
        if !removed_all {
            return Ok(Action::requeue(RETRY));
        }
        if plan.remove_finalizer.is_empty() || create_failed {
            break;
        }
    }
    Ok(action)
}

/// Adopts the plan's orphans (upstream `PodControllerRefManager.AdoptPod` with the tracking
/// finalizer), each patch conditioned on the orphan's uid so a namesake is never adopted;
/// the API server refuses it when the pod has meanwhile got another controller. `job` was
/// just read from the API server (not a cache), so its `deletionTimestamp` is as fresh as
/// upstream's `RecheckDeletionTimestamp` makes it. Returns false when an orphan was gone.
async fn adopt_orphans(job: &Job, pods_api: &Api<Pod>, plan: &SyncPlan) -> Result<bool, Error> {
    let mut all = true;
    for pod in &plan.adopt {
        let patch = serde_json::json!({
            "metadata": {
                "ownerReferences": [controller_ref(job)],
                "uid": pod.uid,
                "finalizers": [TRACKING_FINALIZER],
            }
        });
        match pods_api
            .patch(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => all = false,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(all)
}

/// Deletes and creates the plan's pods, recording expectations and Events, and corrects
/// `status.active` for creations that did not happen. Returns whether a creation failed.
async fn apply_pod_changes(
    ctx: &Context,
    job: &Job,
    pods_api: &Api<Pod>,
    plan: &mut SyncPlan,
) -> Result<bool, Error> {
    let uid = job.metadata.uid.clone().unwrap_or_default();
    for pod in &plan.delete {
        ctx.expectations.expect_deletion(&uid, pod);
        if plan.release_before_delete.contains(pod)
            && let Err(e) = release_pod(pods_api, pod).await
        {
            ctx.expectations.deletion_failed(&uid, pod);
            return Err(e.into());
        }
        match pods_api.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {
                let msg = format!("Deleted pod: {pod}");
                ctx.event(job, EventType::Normal, "SuccessfulDelete", &msg)
                    .await;
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                ctx.expectations.deletion_failed(&uid, pod);
                let msg = format!("Error deleting: {e}");
                ctx.event(job, EventType::Warning, "FailedDelete", &msg)
                    .await;
                return Err(e.into());
            }
        }
    }
    // Slow start (upstream `SlowStartInitialBatchSize`): batches of 1, 2, 4, …; a failed
    // batch stops the rest, so a quota or admission error costs one request, not hundreds.
    let mut queue = std::mem::take(&mut plan.create).into_iter();
    let total = queue.len();
    let mut done = 0usize;
    let mut batch = 1usize;
    let mut failed = false;
    let pp = PostParams::default();
    while done < total && !failed {
        let chunk: Vec<PodToCreate> = queue.by_ref().take(batch).collect();
        done += chunk.len();
        let results =
            futures::future::join_all(chunk.iter().map(|c| pods_api.create(&pp, &c.pod))).await;
        for r in results {
            match r {
                Ok(pod) => {
                    let name = pod.metadata.name.unwrap_or_default();
                    ctx.expectations.expect_creation(&uid, &name);
                    let msg = format!("Created pod: {name}");
                    ctx.event(job, EventType::Normal, "SuccessfulCreate", &msg)
                        .await;
                }
                Err(e) => {
                    failed = true;
                    plan.status.active = plan.status.active.map(|a| a - 1);
                    let msg = format!("Error creating: {e}");
                    ctx.event(job, EventType::Warning, "FailedCreate", &msg)
                        .await;
                }
            }
        }
        batch = batch.saturating_mul(2);
    }
    let skipped = i32::try_from(total - done).unwrap_or(i32::MAX);
    if skipped > 0 {
        plan.status.active = plan.status.active.map(|a| a - skipped);
    }
    plan.status.active = plan.status.active.filter(|a| *a > 0);
    if failed || skipped > 0 {
        plan.status_changed = true;
    }
    Ok(failed)
}

/// Releases the plan's pods that stopped matching: the Job's controller reference and the
/// tracking finalizer go, conditioned on the pod's uid (upstream `ReleasePod`).
async fn release_pods(job: &Job, pods_api: &Api<Pod>, plan: &SyncPlan) -> Result<(), Error> {
    let job_uid = job.metadata.uid.clone().unwrap_or_default();
    for pod in &plan.release {
        let patch = serde_json::json!({
            "metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": job_uid}],
                "uid": pod.uid,
                "$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER],
            }
        });
        match pods_api
            .patch(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => {}
            // Gone, or replaced by a namesake: nothing to release.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client, clock: Arc<dyn Clock>) {
    let jobs: Api<Job> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), clock.clone(), COMPONENT),
        client,
        clock,
        expectations: Expectations::default(),
        create_failures: FailureBackoff::new(Duration::from_secs(1), Duration::from_secs(60)),
    });
    let controller = Controller::new(jobs, watcher::Config::default());
    let store = controller.store();
    let controller = controller
        .watches(pods.clone(), watcher::Config::default(), move |pod| {
            owners_for_dependent(&store, &pod.metadata, |j: &Job| {
                j.spec.as_ref().and_then(|s| s.selector.as_ref())
            })
        })
        .run(reconcile, |_, _, _| Action::requeue(RETRY), ctx.clone())
        .log_failures("job controller");
    futures::future::join(controller, release_orphans(pods, ctx)).await;
}

/// Pods whose Job is gone (deleted, or orphaned them) are never synced again, so their
/// tracking finalizer is released here, as upstream's pod handlers do for orphan pods;
/// otherwise a deleted Job's pods would hang in Terminating forever.
async fn release_orphans(pods: Api<Pod>, ctx: Arc<Context>) {
    let config = watcher::Config::default().labels(JOB_UID_LABEL);
    watcher::watcher(pods, config)
        .default_backoff()
        .applied_objects()
        .for_each_concurrent(16, |pod| {
            let ctx = ctx.clone();
            async move {
                match pod {
                    Ok(pod) => {
                        if let Err(e) = release_if_orphan(&ctx, &pod).await {
                            tracing::debug!(error = %e, "releasing an orphan job pod failed");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "job pod watch"),
                }
            }
        })
        .await;
}

async fn release_if_orphan(ctx: &Context, pod: &Pod) -> Result<(), Error> {
    let tracked = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER);
    let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return Ok(());
    };
    if !tracked {
        return Ok(());
    }
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    // Upstream `syncOrphanPod` and `cleanupPodFinalizers`: a pod without a controller, or
    // whose Job is gone or finished, is released; another kind's pod is left alone, and so
    // is a pod of a Job another controller manages.
    let orphan = match owner {
        Some(r) if r.kind == "Job" && r.api_version.starts_with("batch/") => {
            let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
            match jobs.get_opt(&r.name).await? {
                Some(j) if j.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                    is_managed(&j) && is_finished(&j)
                }
                _ => true,
            }
        }
        Some(_) => false,
        None => true,
    };
    if orphan {
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        release_pod(&pods, name).await?;
    }
    Ok(())
}

/// Drops the pod's tracking finalizer and nothing else (a strategic-merge patch); a pod
/// that is already gone needs nothing.
async fn release_pod(pods: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}
    });
    match pods
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests;
