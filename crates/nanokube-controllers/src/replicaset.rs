//! The ReplicaSet controller (upstream `pkg/controller/replicaset`): keeps `spec.replicas`
//! active pods that match a ReplicaSet's selector and are controlled by it — adopting
//! matching orphans, releasing owned pods that stopped matching, creating pods from the
//! template and deleting the most expendable surplus — and reports `status.replicas`,
//! `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas`, `observedGeneration` and the
//! `ReplicaFailure` condition.
//!
//! [`sync`] is the pure decision (unit-tested with a fixed clock); [`run`] is the thin I/O
//! shell around it: a kube-runtime `Controller` on ReplicaSets that watches Pods.

pub(crate) mod pods;
mod sync;

pub use sync::{
    BURST_REPLICAS, POD_DELETION_COST, PodRef, REPLICA_FAILURE, SyncPlan, calculate_status,
    controller_of, controller_ref, labels_of, pod_for, pods_to_delete, record_manage_error,
    selector_of, status_needs_update, sync, sync_with_expectations,
};

use crate::events::{EventType, Recorder};
use crate::expectations::Expectations;
use crate::failure_backoff::FailureBackoff;
use crate::ownership::owners_for_dependent;
use crate::{Error, LogFailures, RETRY, is_not_found};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use nanokube_registry::clock::Clock;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The component name on the ReplicaSet's Events.
const COMPONENT: &str = "replicaset-controller";
/// How soon to look again while expectations are pending.
const EXPECTATIONS_RECHECK: Duration = Duration::from_secs(1);
/// How soon to retry after a write lost a race (409 Conflict).
const CONFLICT_RETRY: Duration = Duration::from_millis(200);
/// The longest wait between retries of a ReplicaSet whose pods cannot be created or
/// deleted.
const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(300);

struct Context {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
    expectations: Expectations,
    failures: FailureBackoff,
}

fn controlled_by(pod: &Pod, uid: &str) -> bool {
    controller_of(&pod.metadata).is_some_and(|r| r.uid == uid)
}

/// The text of an API error as upstream's `err.Error()` shows it (the Status message).
pub(crate) fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

/// Whether an API error is `409 Conflict` on a stale resourceVersion.
/// The error policy of the ReplicaSet and Deployment controllers: a lost write race is
/// retried at once (almost), anything else after [`RETRY`].
pub(crate) fn retry_after(e: &Error) -> Action {
    match is_conflict(e) {
        true => Action::requeue(CONFLICT_RETRY),
        false => Action::requeue(RETRY),
    }
}

pub(crate) fn is_conflict(e: &Error) -> bool {
    matches!(e, Error::Api(kube::Error::Api(s)) if s.code == 409)
}

async fn reconcile(cached: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        cached.metadata.namespace.clone(),
        cached.metadata.name.clone(),
    ) else {
        return Ok(Action::await_change());
    };
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    // Read fresh: the watch cache may lag our own writes, and adoption must not happen for
    // a ReplicaSet that is already being deleted (upstream `RecheckDeletionTimestamp`).
    let Some(rs) = rs_api.get_opt(&name).await? else {
        if let Some(uid) = &cached.metadata.uid {
            ctx.expectations.forget(uid);
            ctx.failures.record(uid, false);
        }
        return Ok(Action::await_change());
    };
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    // Every pod of the namespace: owned pods that stopped matching are released too.
    let pods = pods_api.list(&ListParams::default()).await?.items;
    let owned: Vec<Pod> = pods
        .iter()
        .filter(|p| controlled_by(p, &uid))
        .cloned()
        .collect();
    let satisfied = ctx.expectations.observe(&uid, &owned);
    let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let active = owned.iter().filter(|p| pods::is_pod_active(p)).count();
    let related = if i32::try_from(active).unwrap_or(i32::MAX) > replicas {
        related_pods(&ctx, &rs, &pods).await?
    } else {
        Vec::new()
    };
    let now = ctx.clock.now();
    let plan = sync_with_expectations(&rs, &pods, &related, now, satisfied);

    for pod in &plan.adopt {
        let patch = serde_json::json!({
            "metadata": {"ownerReferences": [controller_ref(&rs)], "uid": pod.uid}
        });
        match pods_api
            .patch(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for pod in &plan.release {
        let patch = serde_json::json!({
            "metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}], "uid": pod.uid}
        });
        match pods_api
            .patch(&pod.name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => {}
            // Gone, or no longer ours to release: nothing to do.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {}
            Err(e) => return Err(e.into()),
        }
    }

    let mut manage_error = delete_pods(&ctx, &rs, &pods_api, &plan.delete).await;
    if manage_error.is_none() {
        manage_error = create_pods(&ctx, &rs, &pods_api, &plan.create).await;
    }

    let mut status = plan.status.clone();
    if let Some(message) = &manage_error {
        record_manage_error(&mut status, &rs, message, now);
    }
    if status_needs_update(&rs, &status) {
        status.observed_generation = rs.metadata.generation.filter(|g| *g != 0);
        write_status(&rs_api, &rs, status).await?;
    }
    let backoff = ctx.failures.record(&uid, manage_error.is_some());
    Ok(match (backoff, satisfied, plan.requeue_after) {
        (Some(wait), _, _) => Action::requeue(wait),
        (None, false, _) => Action::requeue(EXPECTATIONS_RECHECK),
        (None, true, Some(d)) => Action::requeue(d),
        (None, true, None) => Action::await_change(),
    })
}

/// Writes the status; on a conflict it is written once more onto the fresh object (upstream
/// `updateReplicaSetStatus` retries the same way: the status is computed from pods).
async fn write_status(
    api: &Api<ReplicaSet>,
    rs: &ReplicaSet,
    status: k8s_openapi::api::apps::v1::ReplicaSetStatus,
) -> Result<(), Error> {
    let name = rs.metadata.name.clone().unwrap_or_default();
    let mut updated = rs.clone();
    updated.status = Some(status.clone());
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let Some(mut fresh) = api.get_opt(&name).await? else {
                return Ok(());
            };
            let mut status = status;
            status.observed_generation = fresh.metadata.generation.filter(|g| *g != 0);
            fresh.status = Some(status);
            api.replace_status(&name, &PostParams::default(), &fresh)
                .await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The pods of every ReplicaSet that shares this one's controller (upstream
/// `getIndirectlyRelatedPods`), or this one's own pods when it has no controller.
async fn related_pods(ctx: &Context, rs: &ReplicaSet, pods: &[Pod]) -> Result<Vec<Pod>, Error> {
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let mut owners: HashSet<String> = HashSet::from([uid]);
    if let (Some(controller), Some(ns)) = (controller_of(&rs.metadata), &rs.metadata.namespace) {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
        for sibling in api.list(&ListParams::default()).await?.items {
            if controller_of(&sibling.metadata).is_some_and(|r| r.uid == controller.uid)
                && let Some(u) = sibling.metadata.uid
            {
                owners.insert(u);
            }
        }
    }
    Ok(pods
        .iter()
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| owners.contains(&r.uid)))
        .cloned()
        .collect())
}

/// Deletes the surplus pods, recording expectations and Events; returns the first error.
async fn delete_pods(
    ctx: &Context,
    rs: &ReplicaSet,
    api: &Api<Pod>,
    names: &[String],
) -> Option<String> {
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    for name in names {
        ctx.expectations.expect_deletion(&uid, name);
    }
    let dp = DeleteParams::default();
    let results = futures::future::join_all(names.iter().map(|n| api.delete(n, &dp))).await;
    let mut first_error = None;
    for (name, result) in names.iter().zip(results) {
        match result {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                ctx.recorder
                    .publish(rs, EventType::Normal, "SuccessfulDelete", &msg)
                    .await;
            }
            Err(e) => {
                ctx.expectations.deletion_failed(&uid, name);
                if is_not_found(&e) {
                    continue;
                }
                let text = error_text(&e);
                let msg = format!("Error deleting: {text}");
                ctx.recorder
                    .publish(rs, EventType::Warning, "FailedDelete", &msg)
                    .await;
                first_error.get_or_insert(text);
            }
        }
    }
    first_error
}

/// Creates pods in slow-start batches (1, 2, 4, …, upstream `slowStartBatch`): a failed
/// batch stops the rest, so a quota or admission error costs one request, not hundreds.
async fn create_pods(
    ctx: &Context,
    rs: &ReplicaSet,
    api: &Api<Pod>,
    pods: &[Pod],
) -> Option<String> {
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let pp = PostParams::default();
    let mut batch = 1usize;
    let mut rest = pods;
    let mut first_error = None;
    while !rest.is_empty() && first_error.is_none() {
        let (chunk, tail) = rest.split_at(batch.min(rest.len()));
        rest = tail;
        let results = futures::future::join_all(chunk.iter().map(|p| api.create(&pp, p))).await;
        for r in results {
            match r {
                Ok(pod) => {
                    let name = pod.metadata.name.unwrap_or_default();
                    ctx.expectations.expect_creation(&uid, &name);
                    let msg = format!("Created pod: {name}");
                    ctx.recorder
                        .publish(rs, EventType::Normal, "SuccessfulCreate", &msg)
                        .await;
                }
                // A terminating namespace refuses every create; that is not a failure of
                // the ReplicaSet (upstream ignores `NamespaceTerminating`).
                Err(kube::Error::Api(s))
                    if s.code == 403
                        && s.details.as_ref().is_some_and(|d| {
                            d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
                        }) =>
                {
                    first_error.get_or_insert_with(String::new);
                }
                Err(e) => {
                    let text = error_text(&e);
                    let msg = format!("Error creating: {text}");
                    ctx.recorder
                        .publish(rs, EventType::Warning, "FailedCreate", &msg)
                        .await;
                    first_error.get_or_insert(text);
                }
            }
        }
        batch = batch.saturating_mul(2);
    }
    first_error.filter(|e| !e.is_empty())
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client, clock: Arc<dyn Clock>) {
    let replica_sets: Api<ReplicaSet> = Api::all(client.clone());
    let pods: Api<Pod> = Api::all(client.clone());
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), clock.clone(), COMPONENT),
        client,
        clock,
        expectations: Expectations::default(),
        failures: FailureBackoff::new(RETRY, MAX_FAILURE_BACKOFF),
    });
    let controller = Controller::new(replica_sets, watcher::Config::default());
    let store = controller.store();
    controller
        .watches(pods, watcher::Config::default(), move |pod| {
            owners_for_dependent(&store, &pod.metadata, |rs: &ReplicaSet| {
                rs.spec.as_ref().map(|s| &s.selector)
            })
        })
        .run(reconcile, |_, e, _| retry_after(e), ctx)
        .log_failures("replicaset controller")
        .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests;
