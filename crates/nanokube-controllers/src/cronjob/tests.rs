//! Unit tests of the pure CronJob schedule arithmetic and sync, with a fixed clock.

use super::*;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobSpec, JobStatus, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, ObjectReference, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use nanokube_registry::kinds::cronjob::parse_schedule;
use std::collections::BTreeMap;
use std::time::Duration;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
}

fn schedule(s: &str, zone: chrono_tz::Tz) -> CronSchedule {
    CronSchedule::new(parse_schedule(s).unwrap(), zone)
}

/// The fire times after `from`, `n` of them.
fn fire_times(s: &CronSchedule, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    for _ in 0..n {
        t = s.next(t).unwrap();
        out.push(t);
    }
    out
}

const NEW_YORK: chrono_tz::Tz = chrono_tz::America::New_York;

// ---------------------------------------------------------------- schedule arithmetic

#[test]
fn every_two_minutes_keeps_a_two_minute_beat_across_spring_forward() {
    // 2024-03-10 01:50 EST = 06:50Z; clocks jump from 02:00 EST to 03:00 EDT.
    let s = schedule("*/2 * * * *", NEW_YORK);
    let times = fire_times(&s, utc(2024, 3, 10, 6, 50, 0), 10);
    assert_eq!(times[0], utc(2024, 3, 10, 6, 52, 0));
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], TimeDelta::minutes(2), "{times:?}");
    }
    // 01:58 EST is followed by 03:00 EDT: nothing skipped.
    assert!(times.contains(&utc(2024, 3, 10, 6, 58, 0)));
    assert!(times.contains(&utc(2024, 3, 10, 7, 0, 0)));
    let wall: Vec<String> = times
        .iter()
        .map(|t| t.with_timezone(&NEW_YORK).format("%H:%M %Z").to_string())
        .collect();
    assert_eq!(wall[3], "01:58 EST");
    assert_eq!(wall[4], "03:00 EDT");
}

#[test]
fn every_two_minutes_walks_the_repeated_hour_once_per_offset_across_fall_back() {
    // 2024-11-03 00:58 EDT = 04:58Z; 01:00-01:59 happens first in EDT, then in EST.
    let s = schedule("*/2 * * * *", NEW_YORK);
    let times = fire_times(&s, utc(2024, 11, 3, 4, 58, 0), 95);
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], TimeDelta::minutes(2), "{pair:?}");
    }
    // Two real hours of 01:xx wall clock, each instant once: 60 fire times, no duplicates.
    let one_am = times
        .iter()
        .filter(|t| t.with_timezone(&NEW_YORK).format("%H").to_string() == "01")
        .count();
    assert_eq!(one_am, 60);
    let names: std::collections::HashSet<String> =
        times.iter().map(|t| job_name("sleepy", *t)).collect();
    assert_eq!(names.len(), times.len(), "every fire time gets its own Job");
    // 01:58 EDT (05:58Z) is followed by 01:00 EST (06:00Z).
    let i = times
        .iter()
        .position(|t| *t == utc(2024, 11, 3, 5, 58, 0))
        .unwrap();
    assert_eq!(times[i + 1], utc(2024, 11, 3, 6, 0, 0));
    assert_eq!(
        times[i + 1]
            .with_timezone(&NEW_YORK)
            .format("%H:%M %Z")
            .to_string(),
        "01:00 EST"
    );
}

#[test]
fn fixed_time_in_the_spring_gap_does_not_fire_that_day_as_in_robfig() {
    // 02:30 does not exist on 2024-03-10 in New York.
    let s = schedule("30 2 * * *", NEW_YORK);
    let times = fire_times(&s, utc(2024, 3, 9, 12, 0, 0), 2);
    assert_eq!(
        times,
        vec![utc(2024, 3, 11, 6, 30, 0), utc(2024, 3, 12, 6, 30, 0)]
    );
}

#[test]
fn fixed_time_in_the_repeated_hour_fires_once_per_offset_as_in_robfig() {
    // kubernetes/kubernetes#121594: 01:30 happens twice on 2024-11-03 and robfig runs both.
    let s = schedule("30 1 * * *", NEW_YORK);
    let times = fire_times(&s, utc(2024, 11, 2, 12, 0, 0), 4);
    assert_eq!(
        times,
        vec![
            utc(2024, 11, 3, 5, 30, 0),
            utc(2024, 11, 3, 6, 30, 0),
            utc(2024, 11, 4, 6, 30, 0),
            utc(2024, 11, 5, 6, 30, 0),
        ]
    );
}

#[test]
fn schedule_reads_the_wall_clock_of_its_zone() {
    let s = schedule("0 9 * * *", chrono_tz::Europe::Paris);
    assert_eq!(
        fire_times(&s, utc(2025, 1, 1, 0, 0, 0), 1),
        vec![utc(2025, 1, 1, 8, 0, 0)]
    );
    // Summer time: 09:00 CEST is 07:00Z.
    assert_eq!(
        fire_times(&s, utc(2025, 7, 1, 0, 0, 0), 1),
        vec![utc(2025, 7, 1, 7, 0, 0)]
    );
}

#[test]
fn next_is_strictly_after_and_skips_the_current_second() {
    let s = schedule("*/2 * * * *", chrono_tz::UTC);
    let t = utc(2024, 5, 1, 10, 4, 0);
    assert_eq!(s.next(t), Some(utc(2024, 5, 1, 10, 6, 0)));
    let just_before = t - TimeDelta::milliseconds(1);
    assert_eq!(s.next(just_before), Some(t));
}

#[test]
fn day_fields_combine_with_or_when_both_are_restricted() {
    // The 14th (a Saturday in September 2024), or any Friday.
    let s = schedule("0 0 14 * 5", chrono_tz::UTC);
    let times = fire_times(&s, utc(2024, 9, 1, 0, 0, 0), 4);
    assert_eq!(
        times,
        vec![
            utc(2024, 9, 6, 0, 0, 0),
            utc(2024, 9, 13, 0, 0, 0),
            utc(2024, 9, 14, 0, 0, 0),
            utc(2024, 9, 20, 0, 0, 0),
        ]
    );
}

#[test]
fn every_interval_counts_from_the_last_time() {
    let s = schedule("@every 90s", NEW_YORK);
    assert_eq!(
        s.next(utc(2024, 5, 1, 10, 0, 0)),
        Some(utc(2024, 5, 1, 10, 1, 30))
    );
}

#[test]
fn impossible_date_never_fires() {
    let s = schedule("0 0 31 2 *", chrono_tz::UTC);
    assert_eq!(s.next(utc(2024, 1, 1, 0, 0, 0)), None);
    assert_eq!(
        most_recent_schedule_time(&s, utc(2024, 1, 1, 0, 0, 0), None, utc(2024, 6, 1, 0, 0, 0)),
        Err(NEVER_FIRES.to_string())
    );
}

#[test]
fn most_recent_time_is_the_last_one_not_after_now() {
    let s = schedule("*/2 * * * *", chrono_tz::UTC);
    let created = utc(2025, 1, 1, 10, 0, 30);
    let r = most_recent_schedule_time(&s, created, None, utc(2025, 1, 1, 10, 5, 10)).unwrap();
    assert_eq!(r.most_recent, Some(utc(2025, 1, 1, 10, 4, 0)));
    assert_eq!(r.missed, Missed::Few);
    let r = most_recent_schedule_time(&s, created, None, utc(2025, 1, 1, 10, 2, 0)).unwrap();
    assert_eq!(r.most_recent, Some(utc(2025, 1, 1, 10, 2, 0)));
    assert_eq!(r.missed, Missed::None);
    let r = most_recent_schedule_time(&s, created, None, utc(2025, 1, 1, 10, 1, 59)).unwrap();
    assert_eq!(r.most_recent, None);
}

#[test]
fn more_than_a_hundred_missed_times_are_many_but_the_most_recent_is_still_found() {
    let s = schedule("* * * * *", chrono_tz::UTC);
    let r = most_recent_schedule_time(
        &s,
        utc(2025, 1, 1, 0, 0, 0),
        None,
        utc(2025, 1, 2, 7, 33, 20),
    )
    .unwrap();
    assert_eq!(r.missed, Missed::Many);
    assert_eq!(r.most_recent, Some(utc(2025, 1, 2, 7, 33, 0)));
}

#[test]
fn starting_deadline_moves_the_earliest_time_considered() {
    let s = schedule("0 * * * *", chrono_tz::UTC);
    let now = utc(2025, 1, 1, 12, 10, 0);
    // Created long ago; the 12:00 run is 600 s old: a 300 s deadline leaves nothing due.
    let r = most_recent_schedule_time(&s, utc(2024, 12, 1, 0, 0, 0), Some(300), now).unwrap();
    assert_eq!(r.earliest, utc(2025, 1, 1, 12, 5, 0));
    assert_eq!(r.most_recent, None);
    let r = most_recent_schedule_time(&s, utc(2024, 12, 1, 0, 0, 0), Some(3600), now).unwrap();
    assert_eq!(r.most_recent, Some(utc(2025, 1, 1, 12, 0, 0)));
}

#[test]
fn requeue_lands_a_hundred_milliseconds_after_the_next_time() {
    let s = schedule("*/2 * * * *", chrono_tz::UTC);
    let now = utc(2025, 1, 1, 10, 4, 0) + TimeDelta::milliseconds(250);
    assert_eq!(
        next_schedule_delay(&s, utc(2025, 1, 1, 10, 4, 0), now),
        Some(Duration::from_millis(119_850))
    );
    // Nothing scheduled yet: from the creation time.
    assert_eq!(
        next_schedule_delay(&s, utc(2025, 1, 1, 10, 0, 30), utc(2025, 1, 1, 10, 1, 0)),
        Some(Duration::from_millis(60_100))
    );
}

// ---------------------------------------------------------------- sync

fn cronjob(schedule: &str) -> CronJob {
    CronJob {
        metadata: ObjectMeta {
            name: Some("sleepy".into()),
            namespace: Some("default".into()),
            uid: Some("cj-uid".into()),
            creation_timestamp: Some(crate::job::to_time(utc(2025, 1, 1, 12, 0, 30))),
            ..Default::default()
        },
        spec: Some(CronJobSpec {
            schedule: schedule.into(),
            concurrency_policy: Some("Allow".into()),
            suspend: Some(false),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(1),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(BTreeMap::from([("app".to_string(), "nap".to_string())])),
                    annotations: Some(BTreeMap::from([("note".to_string(), "copied".to_string())])),
                    ..Default::default()
                }),
                spec: Some(JobSpec {
                    template: PodTemplateSpec {
                        metadata: None,
                        spec: Some(PodSpec {
                            containers: vec![Container {
                                name: "resting".into(),
                                image: Some("busybox".into()),
                                command: Some(vec!["/bin/sleep".into()]),
                                args: Some(vec!["3".into()]),
                                ..Default::default()
                            }],
                            restart_policy: Some("Never".into()),
                            ..Default::default()
                        }),
                    },
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn spec_mut(cj: &mut CronJob) -> &mut CronJobSpec {
    cj.spec.as_mut().unwrap()
}

/// A Job the CronJob created for `scheduled`, with its uid and an outcome.
fn owned_job(cj: &CronJob, scheduled: DateTime<Utc>, outcome: Option<&str>) -> Job {
    let mut job = job_for(cj, scheduled);
    let name = job.metadata.name.clone().unwrap();
    job.metadata.uid = Some(format!("uid-{name}"));
    job.metadata.resource_version = Some("7".into());
    job.status = Some(JobStatus {
        start_time: Some(crate::job::to_time(scheduled + TimeDelta::seconds(1))),
        completion_time: (outcome == Some("Complete"))
            .then(|| crate::job::to_time(scheduled + TimeDelta::seconds(5))),
        conditions: outcome.map(|o| {
            vec![JobCondition {
                type_: o.into(),
                status: "True".into(),
                ..Default::default()
            }]
        }),
        ..Default::default()
    });
    job
}

fn reference(job: &Job) -> ObjectReference {
    crate::events::object_reference(job)
}

fn with_active(mut cj: CronJob, jobs: &[&Job], last: DateTime<Utc>) -> CronJob {
    cj.status = Some(CronJobStatus {
        active: Some(jobs.iter().map(|j| reference(j)).collect()),
        last_schedule_time: Some(crate::job::to_time(last)),
        last_successful_time: None,
    });
    cj
}

fn reasons(plan: &SyncPlan) -> Vec<&str> {
    plan.events.iter().map(|e| e.reason.as_str()).collect()
}

#[test]
fn due_time_creates_a_job_named_after_its_scheduled_minute() {
    let cj = cronjob("*/2 * * * *");
    let now = utc(2025, 1, 1, 12, 2, 0) + TimeDelta::milliseconds(100);
    let plan = sync(&cj, &[], now);
    let create = plan.create.as_ref().expect("a job is due");
    assert_eq!(create.scheduled_time, utc(2025, 1, 1, 12, 2, 0));
    let job = &create.job;
    let minutes = utc(2025, 1, 1, 12, 2, 0).timestamp() / 60;
    assert_eq!(
        job.metadata.name.as_deref(),
        Some(format!("sleepy-{minutes}").as_str())
    );
    assert_eq!(job.metadata.namespace.as_deref(), Some("default"));
    let annotations = job.metadata.annotations.clone().unwrap();
    assert_eq!(
        annotations
            .get(SCHEDULED_TIMESTAMP_ANNOTATION)
            .map(String::as_str),
        Some("2025-01-01T12:02:00Z")
    );
    assert_eq!(annotations.get("note").map(String::as_str), Some("copied"));
    assert_eq!(
        job.metadata.labels,
        Some(BTreeMap::from([("app".to_string(), "nap".to_string())]))
    );
    assert_eq!(
        job.metadata.owner_references,
        Some(vec![OwnerReference {
            api_version: "batch/v1".into(),
            kind: "CronJob".into(),
            name: "sleepy".into(),
            uid: "cj-uid".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }])
    );
    assert_eq!(job.spec, cj.spec.as_ref().unwrap().job_template.spec);
    // The status only changes once the Job exists.
    assert!(!plan.status_changed(&cj));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(120)));
    assert!(plan.events.is_empty());
}

#[test]
fn created_job_becomes_active_and_sets_last_schedule_time() {
    let cj = cronjob("*/2 * * * *");
    let plan = sync(&cj, &[], utc(2025, 1, 1, 12, 2, 0));
    let create = plan.create.clone().unwrap();
    let mut created = create.job.clone();
    created.metadata.uid = Some("new-uid".into());
    created.metadata.resource_version = Some("42".into());
    let mut status = plan.status.clone();
    record_created(&mut status, &created, create.scheduled_time);
    let active = status.active.clone().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].kind.as_deref(), Some("Job"));
    assert_eq!(active[0].api_version.as_deref(), Some("batch/v1"));
    assert_eq!(active[0].uid.as_deref(), Some("new-uid"));
    assert_eq!(active[0].resource_version.as_deref(), Some("42"));
    assert_eq!(
        status.last_schedule_time,
        Some(crate::job::to_time(utc(2025, 1, 1, 12, 2, 0)))
    );
    assert!(status_differs(&cj, &status));
}

#[test]
fn nothing_is_due_before_the_first_time_and_the_requeue_is_exact() {
    let cj = cronjob("*/2 * * * *");
    let plan = sync(&cj, &[], utc(2025, 1, 1, 12, 1, 0));
    assert!(plan.create.is_none());
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(60_100)));
}

#[test]
fn a_time_already_scheduled_is_not_scheduled_again() {
    let cj = cronjob("*/2 * * * *");
    let t = utc(2025, 1, 1, 12, 2, 0);
    let running = owned_job(&cj, t, None);
    let cj = with_active(cj, &[&running], t);
    let plan = sync(
        &cj,
        std::slice::from_ref(&running),
        t + TimeDelta::seconds(30),
    );
    assert!(plan.create.is_none());
    assert!(plan.events.is_empty(), "{:?}", plan.events);
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(90_100)));
    // Also when only the active list knows it (lastScheduleTime lost).
    let mut cj = cj;
    if let Some(s) = cj.status.as_mut() {
        s.last_schedule_time = None;
    }
    let plan = sync(&cj, &[running], t + TimeDelta::seconds(30));
    assert!(plan.create.is_none());
}

#[test]
fn only_the_most_recent_missed_time_runs() {
    let cj = cronjob("*/2 * * * *");
    let plan = sync(&cj, &[], utc(2025, 1, 1, 12, 9, 0));
    assert_eq!(
        plan.create.map(|c| c.scheduled_time),
        Some(utc(2025, 1, 1, 12, 8, 0))
    );
    assert!(plan.events.is_empty());
}

#[test]
fn suspended_cronjob_creates_nothing_and_waits_for_a_change() {
    let mut cj = cronjob("*/2 * * * *");
    spec_mut(&mut cj).suspend = Some(true);
    let plan = sync(&cj, &[], utc(2025, 1, 1, 12, 9, 0));
    assert!(plan.create.is_none());
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn forbid_skips_while_a_job_is_active() {
    let mut cj = cronjob("*/2 * * * *");
    spec_mut(&mut cj).concurrency_policy = Some("Forbid".into());
    let t = utc(2025, 1, 1, 12, 2, 0);
    let running = owned_job(&cj, t, None);
    let cj = with_active(cj, &[&running], t);
    let plan = sync(
        &cj,
        std::slice::from_ref(&running),
        utc(2025, 1, 1, 12, 4, 1),
    );
    assert!(plan.create.is_none());
    assert_eq!(reasons(&plan), ["JobAlreadyActive"]);
    assert_eq!(
        plan.events[0].message,
        "Not starting job because prior execution is running and concurrency policy is Forbid"
    );
    assert_eq!(plan.events[0].type_, EventType::Normal);
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(119_100)));
}

#[test]
fn replace_deletes_the_active_jobs_before_creating() {
    let mut cj = cronjob("*/2 * * * *");
    spec_mut(&mut cj).concurrency_policy = Some("Replace".into());
    let t = utc(2025, 1, 1, 12, 2, 0);
    let running = owned_job(&cj, t, None);
    let cj = with_active(cj, &[&running], t);
    let plan = sync(
        &cj,
        std::slice::from_ref(&running),
        utc(2025, 1, 1, 12, 4, 1),
    );
    assert_eq!(plan.replace, vec![job_name("sleepy", t)]);
    assert_eq!(
        plan.create.map(|c| c.scheduled_time),
        Some(utc(2025, 1, 1, 12, 4, 0))
    );
}

#[test]
fn allow_runs_alongside_an_active_job() {
    let cj = cronjob("*/2 * * * *");
    let t = utc(2025, 1, 1, 12, 2, 0);
    let running = owned_job(&cj, t, None);
    let cj = with_active(cj, &[&running], t);
    let plan = sync(
        &cj,
        std::slice::from_ref(&running),
        utc(2025, 1, 1, 12, 4, 1),
    );
    assert!(plan.replace.is_empty());
    assert!(plan.create.is_some());
}

#[test]
fn finished_job_leaves_the_active_list_and_sets_last_successful_time() {
    let cj = cronjob("*/2 * * * *");
    let t = utc(2025, 1, 1, 12, 2, 0);
    let done = owned_job(&cj, t, Some("Complete"));
    let cj = with_active(cj, &[&done], t);
    let plan = sync(&cj, std::slice::from_ref(&done), t + TimeDelta::seconds(30));
    assert_eq!(reasons(&plan), ["SawCompletedJob"]);
    assert_eq!(
        plan.events[0].message,
        format!(
            "Saw completed job: {}, condition: Complete",
            job_name("sleepy", t)
        )
    );
    assert_eq!(plan.status.active, None);
    assert_eq!(
        plan.status.last_successful_time,
        Some(crate::job::to_time(t + TimeDelta::seconds(5)))
    );
    assert!(plan.status_changed(&cj));
    // Once recorded, the next sync changes nothing.
    let mut after = cj.clone();
    after.status = Some(plan.status.clone());
    let again = sync(&after, &[done], t + TimeDelta::seconds(31));
    assert!(again.events.is_empty());
    assert!(!again.status_changed(&after));
}

#[test]
fn failed_job_leaves_the_active_list_without_a_success_time() {
    let cj = cronjob("*/2 * * * *");
    let t = utc(2025, 1, 1, 12, 2, 0);
    let failed = owned_job(&cj, t, Some("Failed"));
    let cj = with_active(cj, &[&failed], t);
    let plan = sync(&cj, &[failed], t + TimeDelta::seconds(30));
    assert!(plan.events[0].message.ends_with("condition: Failed"));
    assert_eq!(plan.status.last_successful_time, None);
}

#[test]
fn unfinished_job_not_in_the_active_list_is_unexpected() {
    let cj = cronjob("*/2 * * * *");
    let mut manual = owned_job(&cj, utc(2025, 1, 1, 12, 1, 0), None);
    manual.metadata.name = Some("manual".into());
    let plan = sync(&cj, &[manual], utc(2025, 1, 1, 12, 1, 30));
    assert_eq!(reasons(&plan), ["UnexpectedJob"]);
    assert_eq!(plan.events[0].type_, EventType::Warning);
    assert_eq!(
        plan.events[0].message,
        "Saw a job that the controller did not create or forgot: manual"
    );
}

#[test]
fn active_job_that_vanished_is_missing() {
    let cj = cronjob("*/2 * * * *");
    let t = utc(2025, 1, 1, 12, 2, 0);
    let gone = owned_job(&cj, t, None);
    let cj = with_active(cj, &[&gone], t);
    let plan = sync(&cj, &[], t + TimeDelta::seconds(30));
    assert_eq!(reasons(&plan), ["MissingJob"]);
    assert_eq!(
        plan.events[0].message,
        format!("Active job went missing: {}", job_name("sleepy", t))
    );
    assert_eq!(plan.status.active, None);
}

#[test]
fn history_limits_delete_the_oldest_finished_jobs() {
    let cj = cronjob("*/2 * * * *");
    let minute = |m: u32| utc(2025, 1, 1, 12, m, 0);
    let jobs: Vec<Job> = vec![
        owned_job(&cj, minute(10), Some("Complete")),
        owned_job(&cj, minute(2), Some("Complete")),
        owned_job(&cj, minute(6), Some("Complete")),
        owned_job(&cj, minute(4), Some("Complete")),
        owned_job(&cj, minute(8), Some("Complete")),
        owned_job(&cj, minute(12), Some("Failed")),
        owned_job(&cj, minute(14), Some("Failed")),
        owned_job(&cj, minute(16), None),
    ];
    let cj = with_active(cj, &[&jobs[7]], minute(16));
    let plan = sync(&cj, &jobs, minute(17));
    assert_eq!(
        plan.delete_history,
        vec![
            job_name("sleepy", minute(2)),
            job_name("sleepy", minute(4)),
            job_name("sleepy", minute(12)),
        ]
    );
}

#[test]
fn unset_history_limit_keeps_everything() {
    let mut cj = cronjob("*/2 * * * *");
    spec_mut(&mut cj).successful_jobs_history_limit = None;
    let jobs: Vec<Job> = (0..5)
        .map(|i| owned_job(&cj, utc(2025, 1, 1, 12, 2 * i, 0), Some("Complete")))
        .collect();
    assert!(
        sync(&cj, &jobs, utc(2025, 1, 1, 12, 11, 0))
            .delete_history
            .is_empty()
    );
}

#[test]
fn job_deleted_for_history_is_reported_then_leaves_the_active_list() {
    let mut cj = cronjob("*/2 * * * *");
    spec_mut(&mut cj).successful_jobs_history_limit = Some(0);
    let t = utc(2025, 1, 1, 12, 2, 0);
    let done = owned_job(&cj, t, Some("Complete"));
    let cj = with_active(cj, &[&done], t);
    let plan = sync(&cj, std::slice::from_ref(&done), t + TimeDelta::seconds(10));
    assert_eq!(plan.delete_history, vec![job_name("sleepy", t)]);
    // Upstream's syncCronJob reports it before cleanupFinishedJobs deletes it.
    assert_eq!(reasons(&plan), ["SawCompletedJob"]);
    assert_eq!(plan.status.active, None);
    assert!(plan.status.last_successful_time.is_some());
}

#[test]
fn starting_deadline_limits_how_late_a_job_may_start() {
    let mut cj = cronjob("0 * * * *");
    spec_mut(&mut cj).starting_deadline_seconds = Some(30);
    // Due at 13:00, looked at 45 s later: past a 30 s deadline, nothing runs...
    let plan = sync(&cj, &[], utc(2025, 1, 1, 13, 0, 45));
    assert!(plan.create.is_none());
    assert!(plan.events.is_empty(), "{:?}", plan.events);
    // ...and the CronJob waits for 14:00.
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(3_555_100)));
    // Within a 60 s deadline it still runs.
    spec_mut(&mut cj).starting_deadline_seconds = Some(60);
    let plan = sync(&cj, &[], utc(2025, 1, 1, 13, 0, 45));
    assert_eq!(
        plan.create.map(|c| c.scheduled_time),
        Some(utc(2025, 1, 1, 13, 0, 0))
    );
}

#[test]
fn miss_schedule_message_uses_rfc1123z_in_utc() {
    let event = miss_schedule(utc(2025, 1, 1, 12, 2, 0));
    assert_eq!(event.reason, "MissSchedule");
    assert_eq!(event.type_, EventType::Warning);
    assert_eq!(
        event.message,
        "Missed scheduled time to start a job: Wed, 01 Jan 2025 12:02:00 +0000"
    );
}

#[test]
fn too_many_missed_times_warn_but_the_most_recent_still_runs() {
    let cj = cronjob("* * * * *");
    let plan = sync(&cj, &[], utc(2025, 1, 2, 12, 0, 5));
    assert_eq!(reasons(&plan), ["TooManyMissedTimes"]);
    assert_eq!(
        plan.events[0].message,
        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
    );
    assert_eq!(
        plan.create.map(|c| c.scheduled_time),
        Some(utc(2025, 1, 2, 12, 0, 0))
    );
}

#[test]
fn unknown_time_zone_stops_the_cronjob_with_a_warning() {
    let mut cj = cronjob("*/2 * * * *");
    spec_mut(&mut cj).time_zone = Some("Mars/Olympus".into());
    let plan = sync(&cj, &[], utc(2025, 1, 1, 12, 9, 0));
    assert!(plan.create.is_none());
    assert_eq!(plan.requeue_after, None);
    assert_eq!(reasons(&plan), ["UnknownTimeZone"]);
    assert_eq!(
        plan.events[0].message,
        "invalid timeZone: \"Mars/Olympus\": unknown time zone Mars/Olympus"
    );
}

#[test]
fn scheduled_timestamp_annotation_is_in_the_cronjob_time_zone() {
    let mut cj = cronjob("0 9 * * *");
    spec_mut(&mut cj).time_zone = Some("America/New_York".into());
    let plan = sync(&cj, &[], utc(2025, 1, 2, 14, 0, 1));
    let create = plan.create.unwrap();
    assert_eq!(create.scheduled_time, utc(2025, 1, 2, 14, 0, 0));
    assert_eq!(
        create.job.metadata.annotations.unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION],
        "2025-01-02T09:00:00-05:00"
    );
}

#[test]
fn schedule_that_never_fires_is_an_invalid_schedule() {
    let cj = cronjob("0 0 31 2 *");
    let plan = sync(&cj, &[], utc(2025, 1, 1, 12, 9, 0));
    assert_eq!(reasons(&plan), ["InvalidSchedule"]);
    assert_eq!(
        plan.events[0].message,
        "invalid schedule: 0 0 31 2 * : time difference between two schedules is less than 1 second"
    );
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn unparseable_schedule_is_reported() {
    let cj = cronjob("not a schedule");
    let plan = sync(&cj, &[], utc(2025, 1, 1, 12, 9, 0));
    assert_eq!(reasons(&plan), ["UnparseableSchedule"]);
    assert_eq!(
        plan.events[0].message,
        "unparseable schedule: \"not a schedule\" : expected exactly 5 fields, found 3: [not a schedule]"
    );
    assert_eq!(
        schedule_of(&cj).err().map(|e| e.message),
        Some("unparseable schedule for cronjob: not a schedule".to_string())
    );
}

#[test]
fn tz_prefix_in_an_old_schedule_is_honoured_with_a_warning() {
    let cj = cronjob("TZ=America/New_York 0 9 * * *");
    let plan = sync(&cj, &[], utc(2025, 1, 2, 14, 0, 1));
    assert_eq!(reasons(&plan), ["UnsupportedSchedule"]);
    assert_eq!(
        plan.create.map(|c| c.scheduled_time),
        Some(utc(2025, 1, 2, 14, 0, 0))
    );
}

#[test]
fn cronjob_being_deleted_only_keeps_its_status() {
    let mut cj = cronjob("*/2 * * * *");
    cj.metadata.deletion_timestamp = Some(crate::job::to_time(utc(2025, 1, 1, 12, 8, 0)));
    let plan = sync(&cj, &[], utc(2025, 1, 1, 12, 9, 0));
    assert!(plan.create.is_none());
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn edited_schedule_requeues_for_its_next_time() {
    let cj = cronjob("0 * * * *");
    assert_eq!(
        requeue_after_edit(&cj, utc(2025, 1, 1, 12, 30, 0)),
        Ok(Some(Duration::from_millis(1_800_100)))
    );
}

#[test]
fn jobs_of_other_owners_are_not_ours() {
    let cj = cronjob("*/2 * * * *");
    let mut other = owned_job(&cj, utc(2025, 1, 1, 12, 1, 0), None);
    if let Some(refs) = other.metadata.owner_references.as_mut() {
        refs[0].name = "someone-else".into();
    }
    let plan = sync(&cj, &[other], utc(2025, 1, 1, 12, 1, 30));
    assert!(plan.events.is_empty());
}

/// Runs the controller's decisions against a simulated clock and API: each sync creates at
/// most one Job, which completes 5 s later; the clock jumps to each requeue time.
fn simulate(mut cj: CronJob, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Job> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut created: Vec<Job> = Vec::new();
    let mut now = from;
    while now < until {
        // Jobs finish 5 s after their scheduled time.
        for j in &mut jobs {
            let scheduled = j.metadata.annotations.as_ref().unwrap()
                [SCHEDULED_TIMESTAMP_ANNOTATION]
                .parse::<DateTime<chrono::FixedOffset>>()
                .unwrap()
                .with_timezone(&Utc);
            if now >= scheduled + TimeDelta::seconds(5) && j.status.is_none() {
                j.status = owned_job(&cj, scheduled, Some("Complete")).status;
            }
        }
        let plan = sync(&cj, &jobs, now);
        let mut status = plan.status.clone();
        for gone in &plan.delete_history {
            jobs.retain(|j| j.metadata.name.as_ref() != Some(gone));
        }
        if let Some(create) = &plan.create {
            let name = create.job.metadata.name.clone().unwrap();
            assert!(
                !jobs.iter().any(|j| j.metadata.name.as_ref() == Some(&name)),
                "{name} created twice"
            );
            let mut job = create.job.clone();
            job.metadata.uid = Some(format!("uid-{name}"));
            record_created(&mut status, &job, create.scheduled_time);
            jobs.push(job.clone());
            created.push(job);
        }
        cj.status = Some(status);
        let step = plan
            .requeue_after
            .map(|d| TimeDelta::from_std(d).unwrap())
            .unwrap_or(TimeDelta::seconds(5))
            .min(TimeDelta::seconds(5));
        now += step;
    }
    created
}

#[test]
fn every_two_minutes_across_both_dst_changes_creates_each_job_once_on_the_beat() {
    for (from, until) in [
        (utc(2024, 3, 10, 6, 45, 0), utc(2024, 3, 10, 7, 15, 0)),
        (utc(2024, 11, 3, 5, 39, 0), utc(2024, 11, 3, 6, 21, 0)),
    ] {
        let mut cj = cronjob("*/2 * * * *");
        spec_mut(&mut cj).time_zone = Some("America/New_York".into());
        cj.metadata.creation_timestamp = Some(crate::job::to_time(from));
        let created = simulate(cj, from, until);
        let times: Vec<DateTime<Utc>> = created
            .iter()
            .map(|j| {
                j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION]
                    .parse::<DateTime<chrono::FixedOffset>>()
                    .unwrap()
                    .with_timezone(&Utc)
            })
            .collect();
        let expected: Vec<DateTime<Utc>> = (1..)
            .map(|i| from + TimeDelta::minutes(2 * i) - TimeDelta::minutes(1))
            .take_while(|t| *t < until)
            .collect();
        assert_eq!(times, expected, "one Job per real two minutes");
        for job in &created {
            let t = job.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION]
                .parse::<DateTime<chrono::FixedOffset>>()
                .unwrap();
            assert_eq!(
                job.metadata.name.clone().unwrap(),
                format!("sleepy-{}", t.timestamp() / 60),
                "name and annotation agree"
            );
        }
    }
}
