//! The Deployment controller (upstream `pkg/controller/deployment`): rolls a Deployment's
//! pod template out through ReplicaSets — one per template, named `<deployment>-<hash>`
//! with the `pod-template-hash` label — with the RollingUpdate (max surge / max
//! unavailable) or Recreate strategy, scales proportionally, keeps `revisionHistoryLimit`
//! old revisions, reuses an old ReplicaSet whose template comes back (that is how `kubectl
//! rollout undo` works) and reports the status and the Available / Progressing conditions
//! that `kubectl rollout status` reads.
//!
//! [`sync`] is the pure decision (unit-tested with a fixed clock); [`run`] is the thin I/O
//! shell around it: a kube-runtime `Controller` on Deployments that watches ReplicaSets.

mod sync;
mod util;

pub use sync::{
    DeploymentEvent, OLD_PODS_RECHECK, Step, SyncPlan, new_rs_new_replicas, normalize, sync,
};
pub use util::{
    AVAILABLE, CHANGE_CAUSE, DESIRED_REPLICAS, MAX_REPLICAS, POD_TEMPLATE_HASH, PROGRESSING,
    REVISION, REVISION_HISTORY, canonical_template, compute_hash, equal_ignore_hash, max_surge,
    max_unavailable, resolve_fenceposts, safe_encode, scaled_value,
};

use crate::events::{EventType, Recorder};
use crate::ownership::owners_for_dependent;
use crate::replicaset::{controller_of, error_text, retry_after, selector_of};
use crate::{Error, LogFailures, is_already_exists, is_not_found};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use nanokube_registry::clock::Clock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The component name on the Deployment's Events.
const COMPONENT: &str = "deployment-controller";
/// How soon to retry after a write lost a race (409 Conflict) or a name collided.
const CONFLICT_RETRY: Duration = Duration::from_millis(200);

struct Context {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
}

impl Context {
    async fn event(&self, d: &Deployment, warning: bool, reason: &str, message: &str) {
        let type_ = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.recorder.publish(d, type_, reason, message).await;
    }
}

async fn reconcile(cached: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        cached.metadata.namespace.clone(),
        cached.metadata.name.clone(),
    ) else {
        return Ok(Action::await_change());
    };
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    // Read fresh: the watch cache may lag our own writes, and the plan replays writes
    // computed from exactly these objects.
    let Some(d) = deployments.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let replica_sets = rs_api.list(&ListParams::default()).await?.items;
    // Only Recreate looks at pods (old pods must be gone before new ones start).
    let pods = match (
        util::is_recreate(&d),
        d.spec.as_ref().and_then(|s| selector_of(&s.selector)),
    ) {
        (true, Some(sel)) if !sel.is_empty() => {
            let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            pods_api
                .list(&ListParams::default().labels(&sel.to_string()))
                .await?
                .items
        }
        _ => Vec::new(),
    };
    let plan = sync(&d, &replica_sets, &pods, ctx.clock.now());
    for e in &plan.events {
        ctx.event(&d, e.warning, &e.reason, &e.message).await;
    }

    // The resourceVersion each ReplicaSet has after our last write to it.
    let mut versions: HashMap<String, Option<String>> = HashMap::new();
    let uid = d.metadata.uid.clone().unwrap_or_default();
    for step in plan.steps {
        match step {
            Step::Adopt {
                name: rs,
                uid: rs_uid,
            } => {
                let controller = serde_json::json!({
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid,
                    "controller": true, "blockOwnerDeletion": true,
                });
                let patch = serde_json::json!({
                    "metadata": {"ownerReferences": [controller], "uid": rs_uid}
                });
                match rs_api
                    .patch(&rs, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    Ok(updated) => {
                        versions.insert(rs, updated.metadata.resource_version);
                    }
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Step::Release {
                name: rs,
                uid: rs_uid,
            } => {
                let patch = serde_json::json!({
                    "metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}], "uid": rs_uid}
                });
                match rs_api
                    .patch(&rs, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Step::Create { replica_set } => {
                let rs_name = replica_set.metadata.name.clone().unwrap_or_default();
                match rs_api.create(&PostParams::default(), &replica_set).await {
                    Ok(created) => {
                        let size = util::rs_replicas(&created);
                        versions.insert(rs_name.clone(), created.metadata.resource_version);
                        if size > 0 {
                            let msg = format!("Scaled up replica set {rs_name} from 0 to {size}");
                            ctx.event(&d, false, "ScalingReplicaSet", &msg).await;
                        }
                    }
                    Err(e) if is_already_exists(&e) => {
                        return on_name_taken(&deployments, &rs_api, &d, &rs_name).await;
                    }
                    Err(e) => return on_create_failed(&ctx, &deployments, &d, &rs_name, e).await,
                }
            }
            Step::Update {
                mut replica_set,
                event,
            } => {
                let rs_name = replica_set.metadata.name.clone().unwrap_or_default();
                if let Some(rv) = versions.get(&rs_name) {
                    replica_set.metadata.resource_version = rv.clone();
                }
                let updated = rs_api
                    .replace(&rs_name, &PostParams::default(), &replica_set)
                    .await?;
                versions.insert(rs_name, updated.metadata.resource_version);
                if let Some(msg) = event {
                    ctx.event(&d, false, "ScalingReplicaSet", &msg).await;
                }
            }
            Step::Delete { name: rs } => match rs_api.delete(&rs, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            },
        }
    }

    let mut current = d;
    if let Some(annotations) = plan.annotations {
        // The revision annotation goes through the main resource: a status write keeps the
        // stored metadata.
        let mut updated = current.clone();
        updated.metadata.annotations = Some(annotations);
        current = deployments
            .replace(&name, &PostParams::default(), &updated)
            .await?;
    }
    if plan.status_changed {
        let mut updated = current;
        updated.status = Some(plan.status);
        deployments
            .replace_status(&name, &PostParams::default(), &updated)
            .await?;
    }
    Ok(plan
        .requeue_after
        .map_or_else(Action::await_change, Action::requeue))
}

/// The new ReplicaSet's name is taken (upstream's `AlreadyExists` branch). If it is ours
/// with our template, a slow cache raced us and the next sync finds it; otherwise the hash
/// collided: `status.collisionCount` goes up, which changes the next hash.
async fn on_name_taken(
    deployments: &Api<Deployment>,
    rs_api: &Api<ReplicaSet>,
    d: &Deployment,
    rs_name: &str,
) -> Result<Action, Error> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let template = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let ours = rs_api.get_opt(rs_name).await?.is_some_and(|rs| {
        controller_of(&rs.metadata).is_some_and(|r| r.uid == uid)
            && rs
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
    });
    if !ours {
        let mut updated = d.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        let before = status.collision_count.unwrap_or(0);
        status.collision_count = Some(before.saturating_add(1));
        let name = d.metadata.name.clone().unwrap_or_default();
        deployments
            .replace_status(&name, &PostParams::default(), &updated)
            .await?;
        tracing::debug!(
            deployment = name,
            collision_count = before + 1,
            "pod-template-hash collision"
        );
    }
    Ok(Action::requeue(CONFLICT_RETRY))
}

/// Creating the new ReplicaSet failed: the Progressing condition says so (upstream
/// `ReplicaSetCreateError`), with a Warning Event, and the sync is retried.
async fn on_create_failed(
    ctx: &Context,
    deployments: &Api<Deployment>,
    d: &Deployment,
    rs_name: &str,
    e: kube::Error,
) -> Result<Action, Error> {
    let terminating = matches!(&e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")));
    if terminating {
        return Err(e.into());
    }
    let msg = format!(
        "Failed to create new replica set {rs_name:?}: {}",
        error_text(&e)
    );
    if util::has_progress_deadline(d) {
        let mut updated = d.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        let c = util::new_condition(
            PROGRESSING,
            "False",
            util::REPLICA_SET_CREATE_ERROR,
            &msg,
            ctx.clock.now(),
        );
        util::set_condition(status, c);
        let name = d.metadata.name.clone().unwrap_or_default();
        if let Err(err) = deployments
            .replace_status(&name, &PostParams::default(), &updated)
            .await
        {
            tracing::debug!(error = %err, "recording ReplicaSetCreateError failed");
        }
    }
    ctx.event(d, true, util::REPLICA_SET_CREATE_ERROR, &msg)
        .await;
    Err(e.into())
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client, clock: Arc<dyn Clock>) {
    let deployments: Api<Deployment> = Api::all(client.clone());
    let replica_sets: Api<ReplicaSet> = Api::all(client.clone());
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), clock.clone(), COMPONENT),
        client,
        clock,
    });
    let controller = Controller::new(deployments, watcher::Config::default());
    let store = controller.store();
    controller
        .watches(replica_sets, watcher::Config::default(), move |rs| {
            owners_for_dependent(&store, &rs.metadata, |d: &Deployment| {
                d.spec.as_ref().map(|s| &s.selector)
            })
        })
        .run(reconcile, |_, e, _| retry_after(e), ctx)
        .log_failures("deployment controller")
        .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests;
