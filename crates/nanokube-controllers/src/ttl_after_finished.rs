//! The TTL-after-finished controller (upstream `pkg/controller/ttlafterfinished`): deletes a
//! finished Job once `spec.ttlSecondsAfterFinished` has passed since it finished, in the
//! foreground (its pods go first) and only if it is still the same Job (UID precondition).
//!
//! [`decide`] is the pure decision (unit-tested with a fixed clock); [`run`] is the thin I/O
//! shell: a kube-runtime `Controller` on Jobs that wakes up exactly when a TTL expires.

use crate::job::is_finished;
use crate::{Error, LogFailures, RETRY, is_not_found};
use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use nanokube_registry::clock::Clock;
use std::sync::Arc;
use std::time::Duration;

/// What to do with a Job now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing, ever (no TTL, not finished, already being deleted): wait for a change.
    Ignore,
    /// Look again once the TTL expires, this long from now.
    WaitFor(Duration),
    /// The TTL expired at this time: delete the Job.
    Delete { expired_at: DateTime<Utc> },
    /// The Job is finished but its finish condition has no time (upstream errors and retries).
    NoFinishTime,
}

/// When the Job finished: the `lastTransitionTime` of its `Complete` or `Failed` condition
/// (upstream `jobFinishTime`).
pub fn finish_time(job: &Job) -> Option<DateTime<Utc>> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    let finish = conditions
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    let t = finish.last_transition_time.as_ref()?;
    DateTime::from_timestamp(
        t.0.as_second(),
        t.0.subsec_nanosecond().max(0).unsigned_abs(),
    )
}

/// Upstream `processTTL`: Jobs with a TTL that are finished and not already being deleted
/// are deleted once `finishTime + ttlSecondsAfterFinished <= now`, else looked at again at
/// that time.
pub fn decide(job: &Job, now: DateTime<Utc>) -> Decision {
    let ttl = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished);
    let Some(ttl) = ttl else {
        return Decision::Ignore;
    };
    if job.metadata.deletion_timestamp.is_some() || !is_finished(job) {
        return Decision::Ignore;
    }
    let Some(finished) = finish_time(job) else {
        return Decision::NoFinishTime;
    };
    let expires = finished + chrono::TimeDelta::seconds(i64::from(ttl));
    if expires <= now {
        return Decision::Delete {
            expired_at: expires,
        };
    }
    // A finish time in the future (clock skew) simply defers the cleanup.
    Decision::WaitFor((expires - now).to_std().unwrap_or(Duration::ZERO))
}

struct Context {
    client: kube::Client,
    clock: Arc<dyn Clock>,
}

async fn reconcile(cached: Arc<Job>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        cached.metadata.namespace.clone(),
        cached.metadata.name.clone(),
    ) else {
        return Ok(Action::await_change());
    };
    match decide(&cached, ctx.clock.now()) {
        Decision::Ignore => return Ok(Action::await_change()),
        Decision::WaitFor(d) => return Ok(Action::requeue(d)),
        Decision::NoFinishTime => return Ok(Action::requeue(RETRY)),
        Decision::Delete { .. } => {}
    }
    // The cached Job may be stale (its TTL edited, or it was restarted under the same name):
    // decide again on a fresh copy before deleting.
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(fresh) = jobs.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    match decide(&fresh, ctx.clock.now()) {
        Decision::Ignore => return Ok(Action::await_change()),
        Decision::WaitFor(d) => return Ok(Action::requeue(d)),
        Decision::NoFinishTime => return Ok(Action::requeue(RETRY)),
        Decision::Delete { .. } => {}
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: fresh.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match jobs.delete(&name, &params).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client, clock: Arc<dyn Clock>) {
    let jobs: Api<Job> = Api::all(client.clone());
    let ctx = Arc::new(Context { client, clock });
    Controller::new(jobs, watcher::Config::default())
        .run(reconcile, |_, _, _| Action::requeue(RETRY), ctx)
        .log_failures("ttl-after-finished controller")
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + chrono::TimeDelta::seconds(secs)
    }

    fn job(ttl: Option<i32>, condition: Option<(&str, &str)>) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                uid: Some("uid-1".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: condition.map(|(type_, status)| {
                    vec![
                        JobCondition {
                            type_: "SuccessCriteriaMet".into(),
                            status: "True".into(),
                            last_transition_time: Some(Time(
                                k8s_openapi::jiff::Timestamp::from_second(t0().timestamp() - 5)
                                    .expect("valid"),
                            )),
                            ..Default::default()
                        },
                        JobCondition {
                            type_: type_.into(),
                            status: status.into(),
                            last_transition_time: Some(crate::job::to_time(t0())),
                            ..Default::default()
                        },
                    ]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn job_without_ttl_is_never_deleted() {
        assert_eq!(
            decide(&job(None, Some(("Complete", "True"))), at(10_000)),
            Decision::Ignore
        );
    }

    #[test]
    fn unfinished_job_is_left_alone_whatever_its_ttl() {
        assert_eq!(decide(&job(Some(0), None), at(100)), Decision::Ignore);
        assert_eq!(
            decide(&job(Some(0), Some(("Complete", "False"))), at(100)),
            Decision::Ignore
        );
        // The interim SuccessCriteriaMet condition alone does not count as finished.
        let mut interim = job(Some(0), Some(("Complete", "True")));
        if let Some(conds) = interim.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            conds.truncate(1);
        }
        assert_eq!(decide(&interim, at(100)), Decision::Ignore);
    }

    #[test]
    fn completed_job_waits_until_the_ttl_expires_from_its_finish_condition() {
        let j = job(Some(2), Some(("Complete", "True")));
        assert_eq!(decide(&j, at(0)), Decision::WaitFor(Duration::from_secs(2)));
        assert_eq!(decide(&j, at(1)), Decision::WaitFor(Duration::from_secs(1)));
        assert_eq!(decide(&j, at(2)), Decision::Delete { expired_at: at(2) });
        assert_eq!(decide(&j, at(60)), Decision::Delete { expired_at: at(2) });
    }

    #[test]
    fn failed_job_expires_too() {
        let j = job(Some(30), Some(("Failed", "True")));
        assert_eq!(
            decide(&j, at(10)),
            Decision::WaitFor(Duration::from_secs(20))
        );
        assert_eq!(decide(&j, at(30)), Decision::Delete { expired_at: at(30) });
    }

    #[test]
    fn ttl_zero_deletes_as_soon_as_finished() {
        let j = job(Some(0), Some(("Complete", "True")));
        assert_eq!(decide(&j, at(0)), Decision::Delete { expired_at: at(0) });
    }

    #[test]
    fn finish_in_the_future_defers_cleanup() {
        let j = job(Some(5), Some(("Complete", "True")));
        assert_eq!(
            decide(&j, at(-10)),
            Decision::WaitFor(Duration::from_secs(15))
        );
    }

    #[test]
    fn job_being_deleted_is_not_deleted_again() {
        let mut j = job(Some(0), Some(("Complete", "True")));
        j.metadata.deletion_timestamp = Some(crate::job::to_time(t0()));
        assert_eq!(decide(&j, at(100)), Decision::Ignore);
    }

    #[test]
    fn finish_condition_without_time_is_an_error_to_retry() {
        let mut j = job(Some(0), Some(("Complete", "True")));
        if let Some(conds) = j.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            conds[1].last_transition_time = None;
        }
        assert_eq!(decide(&j, at(100)), Decision::NoFinishTime);
    }
}
