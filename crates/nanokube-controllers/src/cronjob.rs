//! The CronJob controller (upstream `pkg/controller/cronjob/cronjob_controllerv2.go`):
//! creates a CronJob's Job at each scheduled time (only the most recent missed one, within
//! `startingDeadlineSeconds`), honours `suspend`, `timeZone` and `concurrencyPolicy`, keeps
//! `status.active`, `lastScheduleTime` and `lastSuccessfulTime` true, and deletes finished
//! Jobs beyond the history limits. It wakes up exactly at the next scheduled time (+100 ms)
//! and never polls.
//!
//! [`sync`] is the pure decision (unit-tested with a fixed clock); [`run`] is the thin I/O
//! shell around it: a kube-runtime `Controller` on CronJobs that owns Jobs.

mod schedule;
mod sync;

pub use schedule::{
    CronSchedule, Missed, MostRecent, NEVER_FIRES, NEXT_SCHEDULE_DELTA, most_recent_schedule_time,
    next_schedule_delay,
};
pub use sync::{
    CronJobEvent, JobToCreate, SCHEDULED_TIMESTAMP_ANNOTATION, SyncPlan, job_for, job_name,
    miss_schedule, record_created, remove_active, requeue_after_edit, schedule_of, status_differs,
    sync,
};

use crate::events::{EventType, Recorder};
use crate::failure_backoff::FailureBackoff;
use crate::{Error, LogFailures, RETRY, is_already_exists};

/// The longest wait between retries of a CronJob whose syncs keep failing.
const MAX_FAILURE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(300);
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use nanokube_registry::clock::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The component name on the CronJob's Events.
const COMPONENT: &str = "cronjob-controller";

struct Context {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    recorder: Recorder,
    /// The `(schedule, timeZone)` each CronJob (by uid) had at its last sync, to tell an edit
    /// of either from any other change (upstream `updateCronJob`).
    seen: Mutex<HashMap<String, (String, Option<String>)>>,
    /// Retry waits after failed syncs (a Job that cannot be created, say): 2 s doubling to
    /// 5 min, like upstream's rate-limited queue, rather than a fixed pace.
    failures: FailureBackoff,
}

impl Context {
    async fn event(&self, cj: &CronJob, type_: EventType, reason: &str, message: &str) {
        self.recorder.publish(cj, type_, reason, message).await;
    }

    /// Notes the CronJob's schedule and says whether it was edited since the last sync.
    fn schedule_edited(&self, cj: &CronJob) -> bool {
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let now = cj
            .spec
            .as_ref()
            .map(|s| (s.schedule.clone(), s.time_zone.clone()))
            .unwrap_or_default();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.insert(uid, now.clone())
            .is_some_and(|before| before != now)
    }

    fn forget(&self, uid: &str) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(uid);
    }
}

/// The message of an API error as upstream's `%v` of a Status error prints it.
fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

/// Whether a create failed because the namespace is being terminated.
fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating")))
}

/// Whether the Job is controlled by this CronJob (same uid).
fn controlled_by(job: &Job, cj: &CronJob) -> bool {
    job.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && Some(&r.uid) == cj.metadata.uid.as_ref())
}

async fn reconcile(cached: Arc<CronJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        cached.metadata.namespace.clone(),
        cached.metadata.name.clone(),
    ) else {
        return Ok(Action::await_change());
    };
    let cronjobs: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    // The cache may lag our own status writes; a stale lastScheduleTime would make the same
    // time look due twice (the Job name would still collide, but read fresh anyway).
    let Some(cj) = cronjobs.get_opt(&name).await? else {
        if let Some(uid) = &cached.metadata.uid {
            ctx.forget(uid);
            ctx.failures.record(uid, false);
        }
        return Ok(Action::await_change());
    };
    let now = ctx.clock.now();
    if ctx.schedule_edited(&cj) {
        // A new schedule is acted on at its next time, not at once for a time it "missed".
        return Ok(match requeue_after_edit(&cj, now) {
            Ok(Some(delay)) => Action::requeue(delay),
            Ok(None) => Action::await_change(),
            Err(e) => {
                ctx.event(&cj, e.type_, &e.reason, &e.message).await;
                Action::await_change()
            }
        });
    }
    let all_jobs = jobs.list(&ListParams::default()).await?.items;
    let plan = sync(&cj, &all_jobs, now);

    let background = DeleteParams::background();
    for job in &plan.delete_history {
        // Upstream `deleteJob`: any failure, a vanished Job included, is a FailedDelete.
        match jobs.delete(job, &background).await {
            Ok(_) => {
                let msg = format!("Deleted job {job}");
                ctx.event(&cj, EventType::Normal, "SuccessfulDelete", &msg)
                    .await;
            }
            Err(e) => {
                let msg = format!("Deleted job: {}", message(&e));
                ctx.event(&cj, EventType::Warning, "FailedDelete", &msg)
                    .await;
            }
        }
    }
    for e in &plan.events {
        ctx.event(&cj, e.type_, &e.reason, &e.message).await;
    }

    let mut status = plan.status.clone();
    let outcome = replace_and_create(&ctx, &cj, &jobs, &plan, &mut status).await;
    if status_differs(&cj, &status) {
        let mut updated = cj.clone();
        updated.status = Some(status);
        cronjobs
            .replace_status(&name, &PostParams::default(), &updated)
            .await?;
    }
    outcome?;
    if let Some(uid) = &cj.metadata.uid {
        ctx.failures.record(uid, false);
    }
    Ok(plan
        .requeue_after
        .map_or_else(Action::await_change, Action::requeue))
}

/// Deletes the Jobs `Replace` displaces, then creates the due Job, updating `status` as each
/// step succeeds (upstream: a failed step still writes the status gathered so far).
async fn replace_and_create(
    ctx: &Context,
    cj: &CronJob,
    jobs: &Api<Job>,
    plan: &SyncPlan,
    status: &mut CronJobStatus,
) -> Result<(), Error> {
    for job in &plan.replace {
        // Upstream reads each active Job first; one it cannot read (gone, say) stops the
        // replacement with a FailedGet, and the next sync reports it missing.
        if let Err(e) = jobs.get(job).await {
            let msg = format!("Get job: {}", message(&e));
            ctx.event(cj, EventType::Warning, "FailedGet", &msg).await;
            return Err(e.into());
        }
        match jobs.delete(job, &DeleteParams::background()).await {
            Ok(_) => {
                remove_active(status, job);
                let msg = format!("Deleted job {job}");
                ctx.event(cj, EventType::Normal, "SuccessfulDelete", &msg)
                    .await;
            }
            Err(e) => {
                let msg = format!("Deleted job: {}", message(&e));
                ctx.event(cj, EventType::Warning, "FailedDelete", &msg)
                    .await;
                return Err(e.into());
            }
        }
    }
    let Some(create) = &plan.create else {
        return Ok(());
    };
    let job_name = create.job.metadata.name.clone().unwrap_or_default();
    match jobs.create(&PostParams::default(), &create.job).await {
        Ok(job) => {
            let msg = format!("Created job {job_name}");
            ctx.event(cj, EventType::Normal, "SuccessfulCreate", &msg)
                .await;
            record_created(status, &job, create.scheduled_time);
        }
        Err(e) if namespace_terminating(&e) => return Err(e.into()),
        Err(e) if is_already_exists(&e) => {
            // Created by an earlier sync whose status write was lost: adopt it into the
            // active list. Someone else's Job of that name is left alone.
            let existing = jobs.get(&job_name).await?;
            if controlled_by(&existing, cj) {
                record_created(status, &existing, create.scheduled_time);
            }
        }
        Err(e) => {
            let msg = format!("Error creating job: {}", message(&e));
            ctx.event(cj, EventType::Warning, "FailedCreate", &msg)
                .await;
            return Err(e.into());
        }
    }
    Ok(())
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client, clock: Arc<dyn Clock>) {
    let cronjobs: Api<CronJob> = Api::all(client.clone());
    let jobs: Api<Job> = Api::all(client.clone());
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), clock.clone(), COMPONENT),
        client,
        clock,
        seen: Mutex::new(HashMap::new()),
        failures: FailureBackoff::new(RETRY, MAX_FAILURE_BACKOFF),
    });
    Controller::new(cronjobs, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .run(
            reconcile,
            |cj, _, ctx| {
                let uid = cj.metadata.uid.as_deref().unwrap_or_default();
                Action::requeue(ctx.failures.record(uid, true).unwrap_or(RETRY))
            },
            ctx,
        )
        .log_failures("cronjob controller")
        .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap what they just built
mod tests;
