//! The pure core of the CronJob controller (upstream `cleanupFinishedJobs`, `syncCronJob`
//! and `getJobFromTemplate2`): from a CronJob, the Jobs of its namespace and the time, the
//! Jobs to delete and create, the new status, the Events and when to look again. No I/O.

use super::schedule::{self, CronSchedule, Missed};
use crate::events::EventType;
use crate::job::to_time;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use nanokube_registry::goformat::go_quote;
use nanokube_registry::kinds::cronjob::{load_location, parse_schedule};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// The annotation every scheduled Job carries: its scheduled time, RFC 3339 in the
/// CronJob's time zone (upstream `batchv1.CronJobScheduledTimestampAnnotation`).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// An Event to record on the CronJob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronJobEvent {
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

impl CronJobEvent {
    fn normal(reason: &str, message: impl Into<String>) -> Self {
        CronJobEvent {
            type_: EventType::Normal,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    fn warning(reason: &str, message: impl Into<String>) -> Self {
        CronJobEvent {
            type_: EventType::Warning,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// The Job one scheduled time calls for.
#[derive(Clone, Debug, PartialEq)]
pub struct JobToCreate {
    /// The time the Job stands for (what `status.lastScheduleTime` becomes).
    pub scheduled_time: DateTime<Utc>,
    /// The Job to POST.
    pub job: Job,
}

/// What one sync of a CronJob decided. The I/O shell carries it out in field order: history
/// deletions, then (after recording `events`) the `Replace` deletions, then the creation, then
/// one status write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    /// Finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`, oldest
    /// first, to delete (Background); each success is a `SuccessfulDelete` Event.
    pub delete_history: Vec<String>,
    /// Events of reconciling and scheduling, in upstream's order.
    pub events: Vec<CronJobEvent>,
    /// Active Jobs to delete (Background) before creating, under `concurrencyPolicy: Replace`;
    /// each success removes the Job from `status.active`.
    pub replace: Vec<String>,
    /// The Job to create now, if a scheduled time is due.
    pub create: Option<JobToCreate>,
    /// The new status without the effects of `replace` and `create` (the shell adds those as
    /// they happen, see [`record_created`]).
    pub status: CronJobStatus,
    /// When to sync again without any change (the next scheduled time + 100 ms), assuming
    /// the creation succeeds; `None` waits for a change (suspended, deleted, bad schedule).
    pub requeue_after: Option<Duration>,
}

impl SyncPlan {
    /// Whether the plan's `status` differs from the CronJob's current status.
    pub fn status_changed(&self, cj: &CronJob) -> bool {
        status_differs(cj, &self.status)
    }
}

/// Whether `status` differs from the CronJob's current status (`active: []` and no list are
/// the same).
pub fn status_differs(cj: &CronJob, status: &CronJobStatus) -> bool {
    normalized(cj.status.clone().unwrap_or_default()) != normalized(status.clone())
}

fn normalized(mut s: CronJobStatus) -> CronJobStatus {
    if s.active.as_ref().is_some_and(Vec::is_empty) {
        s.active = None;
    }
    s
}

fn from_time(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(
        t.0.as_second(),
        t.0.subsec_nanosecond().max(0).unsigned_abs(),
    )
    .unwrap_or_default()
}

fn job_condition_true(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// The finish condition of a finished Job (`Complete` or `Failed`), upstream
/// `FinishedCondition`.
fn finished_condition(job: &Job) -> Option<&'static str> {
    ["Complete", "Failed"]
        .into_iter()
        .find(|t| job_condition_true(job, t))
}

/// Whether `job`'s controller reference names this CronJob (upstream matches by name and
/// lets the UIDs in `status.active` tell generations apart).
fn controlled_by_name(job: &Job, cj_name: &str) -> bool {
    job.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.kind == "CronJob" && r.name == cj_name)
}

fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or("")
}

fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

/// Upstream `byJobStartTime`: started Jobs by start time (name breaks ties), unstarted last.
fn by_start_time(a: &&Job, b: &&Job) -> std::cmp::Ordering {
    let start = |j: &Job| {
        j.status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(from_time)
    };
    match (start(a), start(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        _ => name(&a.metadata).cmp(name(&b.metadata)),
    }
}

/// Upstream `cleanupFinishedJobs`: the oldest finished Jobs beyond each history limit (an
/// unset limit keeps everything of its kind).
fn history_to_delete(cj: &CronJob, owned: &[&Job]) -> Vec<String> {
    let spec = cj.spec.as_ref();
    let limits = [
        (
            "Complete",
            spec.and_then(|s| s.successful_jobs_history_limit),
        ),
        ("Failed", spec.and_then(|s| s.failed_jobs_history_limit)),
    ];
    let mut out = Vec::new();
    for (outcome, limit) in limits {
        let Some(limit) = limit else { continue };
        let mut finished: Vec<&Job> = owned
            .iter()
            .copied()
            .filter(|j| finished_condition(j) == Some(outcome))
            .collect();
        let keep = usize::try_from(limit.max(0)).unwrap_or(usize::MAX);
        if finished.len() <= keep {
            continue;
        }
        finished.sort_by(by_start_time);
        let excess = finished.len() - keep;
        out.extend(
            finished
                .into_iter()
                .take(excess)
                .map(|j| name(&j.metadata).to_string()),
        );
    }
    out
}

/// The zone named by `spec.timeZone`: none set (or `Local`) means the controller's own zone,
/// which is UTC here as it is in the kube-controller-manager image. The error is the
/// `UnknownTimeZone` Event.
fn time_zone(cj: &CronJob) -> Result<Tz, CronJobEvent> {
    let Some(tz) = cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()) else {
        return Ok(chrono_tz::UTC);
    };
    load_location(tz)
        .map(|z| z.unwrap_or(chrono_tz::UTC))
        .map_err(|e| {
            CronJobEvent::warning(
                "UnknownTimeZone",
                format!("invalid timeZone: {}: {e}", go_quote(tz)),
            )
        })
}

/// Upstream `formatSchedule` + `cron.ParseStandard`: the schedule in `spec.timeZone`, except
/// that a `TZ=`/`CRON_TZ=` prefix (only on objects older than the rule against it) wins and
/// earns an `UnsupportedSchedule` warning. The error is the `UnparseableSchedule` Event.
fn parse(cj: &CronJob, events: &mut Vec<CronJobEvent>) -> Result<CronSchedule, CronJobEvent> {
    let schedule = cj.spec.as_ref().map_or("", |s| s.schedule.as_str());
    let mut zone = time_zone(cj).unwrap_or(chrono_tz::UTC);
    if schedule.contains("TZ") {
        events.push(CronJobEvent::warning(
            "UnsupportedSchedule",
            format!(
                "CRON_TZ or TZ used in schedule {} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                go_quote(schedule)
            ),
        ));
        zone = schedule_prefix_zone(schedule);
    }
    parse_schedule(schedule)
        .map(|s| CronSchedule::new(s, zone))
        .map_err(|e| {
            CronJobEvent::warning(
                "UnparseableSchedule",
                format!("unparseable schedule: {} : {e}", go_quote(schedule)),
            )
        })
}

/// The zone of a `TZ=<zone> ` / `CRON_TZ=<zone> ` prefix; without one, the controller's zone.
fn schedule_prefix_zone(schedule: &str) -> Tz {
    let prefix = schedule
        .strip_prefix("TZ=")
        .or_else(|| schedule.strip_prefix("CRON_TZ="));
    prefix
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|zone| load_location(zone).ok().flatten())
        .unwrap_or(chrono_tz::UTC)
}

/// The parsed schedule of a CronJob, for requeueing after an edit (upstream
/// `updateCronJob`); the error is the `UnParseableCronJobSchedule` Event.
pub fn schedule_of(cj: &CronJob) -> Result<CronSchedule, CronJobEvent> {
    parse(cj, &mut Vec::new()).map_err(|_| {
        let schedule = cj.spec.as_ref().map_or("", |s| s.schedule.as_str());
        CronJobEvent::warning(
            "UnParseableCronJobSchedule",
            format!("unparseable schedule for cronjob: {schedule}"),
        )
    })
}

/// The time scheduling counts from: the last scheduled time, else the CronJob's creation.
fn last_scheduled(cj: &CronJob, status: &CronJobStatus) -> DateTime<Utc> {
    status
        .last_schedule_time
        .as_ref()
        .or(cj.metadata.creation_timestamp.as_ref())
        .map(from_time)
        .unwrap_or_default()
}

/// When to sync a CronJob again after its schedule or time zone was edited (upstream
/// `updateCronJob`): at its next scheduled time, not now.
pub fn requeue_after_edit(
    cj: &CronJob,
    now: DateTime<Utc>,
) -> Result<Option<Duration>, CronJobEvent> {
    let schedule = schedule_of(cj)?;
    let status = cj.status.clone().unwrap_or_default();
    Ok(schedule::next_schedule_delay(
        &schedule,
        last_scheduled(cj, &status),
        now,
    ))
}

/// The Job for `scheduled_time` (upstream `getJobFromTemplate2`): named
/// `<cronjob>-<minutes since the epoch>` so that a second attempt for the same time collides
/// instead of running twice; the template's labels and annotations plus the scheduled-time
/// annotation; controlled by the CronJob.
pub fn job_for(cj: &CronJob, scheduled_time: DateTime<Utc>) -> Job {
    let template = cj.spec.as_ref().map(|s| &s.job_template);
    let template_meta = template.and_then(|t| t.metadata.as_ref());
    let labels: BTreeMap<String, String> = template_meta
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = template_meta
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    // The annotation reads in the zone `spec.timeZone` names (UTC without one).
    let zone = time_zone(cj).unwrap_or(chrono_tz::UTC);
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.to_string(),
        scheduled_time
            .with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    let cj_name = name(&cj.metadata);
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(cj_name, scheduled_time)),
            namespace: cj.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name: cj_name.to_string(),
                uid: uid(&cj.metadata).to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: template.and_then(|t| t.spec.clone()),
        status: None,
    }
}

/// Upstream `getJobName`: `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled_time: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled_time.timestamp().div_euclid(60))
}

/// Records a created (or found already created) Job in the status: its reference in
/// `status.active` and its time as `status.lastScheduleTime`.
pub fn record_created(status: &mut CronJobStatus, job: &Job, scheduled_time: DateTime<Utc>) {
    let reference = crate::events::object_reference(job);
    let active = status.active.get_or_insert_with(Vec::new);
    if !active.iter().any(|r| r.uid == reference.uid) {
        active.push(reference);
    }
    status.last_schedule_time = Some(to_time(scheduled_time));
}

/// Drops the Job with this name from `status.active` (it was deleted).
pub fn remove_active(status: &mut CronJobStatus, job_name: &str) {
    if let Some(active) = status.active.as_mut() {
        active.retain(|r| r.name.as_deref() != Some(job_name));
    }
    if status.active.as_ref().is_some_and(Vec::is_empty) {
        status.active = None;
    }
}

/// One sync of a CronJob against the Jobs of its namespace at `now`.
pub fn sync(cj: &CronJob, jobs: &[Job], now: DateTime<Utc>) -> SyncPlan {
    let cj_name = name(&cj.metadata);
    let owned: Vec<&Job> = jobs
        .iter()
        .filter(|j| controlled_by_name(j, cj_name))
        .collect();
    let mut plan = SyncPlan {
        status: cj.status.clone().unwrap_or_default(),
        ..Default::default()
    };

    reconcile_active(&mut plan, &owned, jobs);

    // Then the history (upstream `cleanupFinishedJobs` runs after `syncCronJob`, whatever it
    // decided): a finished Job is first reported (SawCompletedJob), then maybe deleted.
    plan.delete_history = history_to_delete(cj, &owned);
    for gone in plan.delete_history.clone() {
        remove_active(&mut plan.status, &gone);
    }

    if cj.metadata.deletion_timestamp.is_some() {
        // A CronJob being deleted only gets its status kept true.
        return plan;
    }
    if let Err(event) = time_zone(cj) {
        plan.events.push(event);
        return plan;
    }
    if is_suspended(cj) {
        // Times missed while suspended are not caught up later, beyond the usual most
        // recent one.
        return plan;
    }
    match parse(cj, &mut plan.events) {
        Ok(schedule) => schedule_next(&mut plan, cj, &schedule, now),
        Err(event) => plan.events.push(event),
    }
    plan
}

fn is_suspended(cj: &CronJob) -> bool {
    cj.spec.as_ref().and_then(|s| s.suspend) == Some(true)
}

/// Upstream's first half of `syncCronJob`: finished Jobs leave `status.active`
/// (`SawCompletedJob`), unknown unfinished ones are reported (`UnexpectedJob`), vanished ones
/// leave it too (`MissingJob`), and `lastSuccessfulTime` follows the newest completion.
fn reconcile_active(plan: &mut SyncPlan, owned: &[&Job], all: &[Job]) {
    let in_active = |status: &CronJobStatus, job_uid: &str| {
        status
            .active
            .iter()
            .flatten()
            .any(|r| r.uid.as_deref() == Some(job_uid))
    };
    for job in owned {
        let job_uid = uid(&job.metadata);
        let found = in_active(&plan.status, job_uid);
        let Some(outcome) = finished_condition(job) else {
            if !found {
                plan.events.push(CronJobEvent::warning(
                    "UnexpectedJob",
                    format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        name(&job.metadata)
                    ),
                ));
            }
            continue;
        };
        if found {
            let job_name = name(&job.metadata).to_string();
            remove_active(&mut plan.status, &job_name);
            plan.events.push(CronJobEvent::normal(
                "SawCompletedJob",
                format!("Saw completed job: {job_name}, condition: {outcome}"),
            ));
        }
        if outcome == "Complete" {
            let completed = job.status.as_ref().and_then(|s| s.completion_time.clone());
            let newer = match (&plan.status.last_successful_time, &completed) {
                (None, _) => true,
                (Some(last), Some(c)) => from_time(c) > from_time(last),
                (Some(_), None) => false,
            };
            if newer && completed.is_some() {
                plan.status.last_successful_time = completed;
            }
        }
    }
    let owned_uids: HashSet<&str> = owned.iter().map(|j| uid(&j.metadata)).collect();
    let existing: HashSet<&str> = all.iter().map(|j| name(&j.metadata)).collect();
    let missing: Vec<ObjectReference> = plan
        .status
        .active
        .iter()
        .flatten()
        .filter(|r| !owned_uids.contains(r.uid.as_deref().unwrap_or("")))
        .filter(|r| !existing.contains(r.name.as_deref().unwrap_or("")))
        .cloned()
        .collect();
    for r in missing {
        let job_name = r.name.unwrap_or_default();
        plan.events.push(CronJobEvent::normal(
            "MissingJob",
            format!("Active job went missing: {job_name}"),
        ));
        remove_active(&mut plan.status, &job_name);
    }
}

/// Upstream's second half of `syncCronJob`: the most recent due time, the starting
/// deadline, the concurrency policy, and the Job to create.
fn schedule_next(plan: &mut SyncPlan, cj: &CronJob, schedule: &CronSchedule, now: DateTime<Utc>) {
    let spec = cj.spec.as_ref();
    let deadline = spec.and_then(|s| s.starting_deadline_seconds);
    let schedule_text = spec.map_or("", |s| s.schedule.as_str());
    let from = last_scheduled(cj, &plan.status);
    let next_delay = |status: &CronJobStatus| {
        schedule::next_schedule_delay(schedule, last_scheduled(cj, status), now)
    };
    let recent = match schedule::most_recent_schedule_time(schedule, from, deadline, now) {
        Ok(r) => r,
        Err(e) => {
            plan.events.push(CronJobEvent::warning(
                "InvalidSchedule",
                format!("invalid schedule: {schedule_text} : {e}"),
            ));
            return;
        }
    };
    let Some(scheduled) = recent.most_recent.filter(|t| *t <= now) else {
        plan.requeue_after = next_delay(&plan.status);
        return;
    };
    if recent.missed == Missed::Many {
        plan.events.push(CronJobEvent::warning(
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
        ));
    }
    let too_late = deadline
        .and_then(chrono::TimeDelta::try_seconds)
        .and_then(|d| scheduled.checked_add_signed(d))
        .is_some_and(|latest| latest < now);
    if too_late {
        plan.events.push(miss_schedule(scheduled));
        plan.requeue_after = next_delay(&plan.status);
        return;
    }
    let wanted_name = job_name(name(&cj.metadata), scheduled);
    let handled = plan
        .status
        .active
        .iter()
        .flatten()
        .any(|r| r.name.as_deref() == Some(wanted_name.as_str()))
        || plan
            .status
            .last_schedule_time
            .as_ref()
            .is_some_and(|t| from_time(t) == scheduled);
    if handled {
        plan.requeue_after = next_delay(&plan.status);
        return;
    }
    let active: Vec<String> = plan
        .status
        .active
        .iter()
        .flatten()
        .filter_map(|r| r.name.clone())
        .collect();
    match spec.and_then(|s| s.concurrency_policy.as_deref()) {
        Some("Forbid") if !active.is_empty() => {
            plan.events.push(CronJobEvent::normal(
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            ));
            plan.requeue_after = next_delay(&plan.status);
            return;
        }
        Some("Replace") => plan.replace = active,
        _ => {}
    }
    plan.create = Some(JobToCreate {
        scheduled_time: scheduled,
        job: job_for(cj, scheduled),
    });
    let mut after = plan.status.clone();
    after.last_schedule_time = Some(to_time(scheduled));
    plan.requeue_after = next_delay(&after);
}

/// The `MissSchedule` warning: the time in RFC 1123 with a numeric zone, in UTC. (Upstream
/// only considers times after `now - startingDeadlineSeconds`, so this rarely fires.)
pub fn miss_schedule(scheduled: DateTime<Utc>) -> CronJobEvent {
    CronJobEvent::warning(
        "MissSchedule",
        format!(
            "Missed scheduled time to start a job: {}",
            scheduled.format("%a, %d %b %Y %H:%M:%S %z")
        ),
    )
}
