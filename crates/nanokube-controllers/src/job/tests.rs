//! Unit tests of the pure Job sync, with a fixed clock and simulated pods.

use super::*;
use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::api::batch::v1::{JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition, PodSpec,
    PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn job(completions: Option<i32>, parallelism: Option<i32>) -> Job {
    let labels: BTreeMap<String, String> = [
        ("batch.kubernetes.io/controller-uid", "job-uid"),
        ("controller-uid", "job-uid"),
        ("batch.kubernetes.io/job-name", "sleepy"),
        ("job-name", "sleepy"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Job {
        metadata: ObjectMeta {
            name: Some("sleepy".into()),
            namespace: Some("default".into()),
            uid: Some("job-uid".into()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completions,
            parallelism,
            backoff_limit: Some(6),
            selector: Some(LabelSelector {
                match_labels: Some(
                    [(
                        "batch.kubernetes.io/controller-uid".to_string(),
                        "job-uid".to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "resting".into(),
                        image: Some("busybox".into()),
                        ..Default::default()
                    }],
                    restart_policy: Some("Never".into()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// A cluster simulation: the job, its pods, and a counter for pod names/uids.
struct Sim {
    job: Job,
    pods: Vec<Pod>,
    next: usize,
}

impl Sim {
    fn new(job: Job) -> Self {
        Sim {
            job,
            pods: Vec::new(),
            next: 0,
        }
    }

    /// Runs one sync and applies its plan the way the API server would.
    fn step(&mut self, now: DateTime<Utc>) -> SyncPlan {
        let plan = sync(&self.job, &self.pods, now);
        for adopted in &plan.adopt {
            let owner = controller_ref(&self.job);
            let p = self.pod_mut(&adopted.name);
            assert_eq!(p.metadata.uid.as_deref(), Some(adopted.uid.as_str()));
            p.metadata
                .owner_references
                .get_or_insert_with(Vec::new)
                .push(owner);
            p.metadata
                .finalizers
                .get_or_insert_with(Vec::new)
                .push(TRACKING_FINALIZER.to_string());
        }
        for name in &plan.release_before_delete {
            assert!(plan.delete.contains(name));
            self.remove_finalizer(name);
        }
        for name in &plan.delete {
            if let Some(p) = self
                .pods
                .iter_mut()
                .find(|p| p.metadata.name.as_ref() == Some(name))
            {
                p.metadata.deletion_timestamp = Some(to_time(now));
            }
        }
        for c in &plan.create {
            let mut pod = c.pod.clone();
            let gen_name = pod.metadata.generate_name.clone().unwrap();
            pod.metadata.name = Some(format!("{gen_name}{}", self.next));
            pod.metadata.uid = Some(format!("pod-uid-{}", self.next));
            pod.metadata.creation_timestamp = Some(to_time(now));
            pod.status = Some(PodStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            });
            self.next += 1;
            self.pods.push(pod);
        }
        self.job.status = Some(plan.status.clone());
        for name in &plan.remove_finalizer {
            self.remove_finalizer(name);
        }
        plan
    }

    fn remove_finalizer(&mut self, name: &str) {
        let Some(i) = self
            .pods
            .iter()
            .position(|p| p.metadata.name.as_deref() == Some(name))
        else {
            return;
        };
        let p = &mut self.pods[i];
        p.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .retain(|f| f != TRACKING_FINALIZER);
        // A deleted pod without finalizers disappears once its containers are stopped;
        // the simulation lets terminal deleted pods go at once.
        if p.metadata.deletion_timestamp.is_some()
            && matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        {
            self.pods.remove(i);
        }
    }

    fn pod_mut(&mut self, name: &str) -> &mut Pod {
        self.pods
            .iter_mut()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap()
    }

    fn pod(&self, name: &str) -> &Pod {
        self.pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap()
    }

    /// The name of the running (not finished, not deleted) pod of a completion index.
    fn running_index(&self, index: i32) -> String {
        let prefix = format!("sleepy-{index}-");
        self.active_names()
            .into_iter()
            .find(|n| self.pod(n).metadata.generate_name.as_deref() == Some(prefix.as_str()))
            .unwrap()
    }

    fn finish(&mut self, name: &str, phase: &str, at: DateTime<Utc>) {
        let code = if phase == "Succeeded" { 0 } else { 1 };
        self.finish_with(name, phase, code, at);
    }

    fn finish_with(&mut self, name: &str, phase: &str, exit_code: i32, at: DateTime<Utc>) {
        let p = self.pod_mut(name);
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "resting".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code,
                        finished_at: Some(to_time(at)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        });
    }

    fn run_pod(&mut self, name: &str, ready: bool) {
        let p = self
            .pods
            .iter_mut()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .unwrap();
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
    }

    /// Pods that are deleted without finalizers (kubelet finished them) go away.
    fn reap_terminating(&mut self) {
        self.pods.retain(|p| {
            p.metadata.deletion_timestamp.is_none()
                || p.metadata
                    .finalizers
                    .as_ref()
                    .is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
        });
    }

    fn active_names(&self) -> Vec<String> {
        self.pods
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
            })
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    fn status(&self) -> JobStatus {
        self.job.status.clone().unwrap_or_default()
    }

    fn condition(&self, type_: &str) -> Option<JobCondition> {
        self.status()
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == type_)
    }
}

use k8s_openapi::api::batch::v1::JobCondition;

fn reasons(plan: &SyncPlan) -> Vec<&str> {
    plan.events.iter().map(|e| e.reason.as_str()).collect()
}

#[test]
fn sleepy_creates_one_pod_then_completes_in_two_steps() {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    let plan = sim.step(at(0));
    assert_eq!(plan.create.len(), 1);
    let pod = &plan.create[0].pod;
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("sleepy-"));
    assert_eq!(
        pod.metadata.finalizers.as_deref(),
        Some(&[TRACKING_FINALIZER.to_string()][..])
    );
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.uid.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Job", "job-uid", Some(true), Some(true))
    );
    assert_eq!(pod.metadata.labels.as_ref().unwrap()["job-name"], "sleepy");
    assert_eq!(sim.status().active, Some(1));
    assert_eq!(sim.status().start_time, Some(to_time(at(0))));
    assert!(plan.status_changed);

    // Nothing changes while the pod runs: no second pod, no status write.
    let name = sim.active_names()[0].clone();
    sim.run_pod(&name, true);
    let plan = sim.step(at(1));
    assert!(plan.create.is_empty());
    assert_eq!(sim.status().ready, Some(1));
    let plan = sim.step(at(2));
    assert!(!plan.status_changed);

    // The pod succeeds: its UID is recorded as uncounted, the interim condition written,
    // and the finalizer removed after that write.
    sim.finish(&name, "Succeeded", at(3));
    let plan = sim.step(at(4));
    assert!(plan.create.is_empty());
    assert_eq!(plan.remove_finalizer, vec![name.clone()]);
    let status = sim.status();
    assert_eq!(
        status.uncounted_terminated_pods.unwrap().succeeded,
        Some(vec!["pod-uid-0".to_string()])
    );
    assert_eq!(status.succeeded, None);
    let interim = sim.condition("SuccessCriteriaMet").unwrap();
    assert_eq!(interim.reason.as_deref(), Some("CompletionsReached"));
    assert!(sim.condition("Complete").is_none());

    // Next sync: the counter moves, the final condition lands with completionTime.
    let plan = sim.step(at(5));
    let status = sim.status();
    assert_eq!(status.succeeded, Some(1));
    assert_eq!(status.active, None);
    assert_eq!(status.ready, Some(0));
    assert_eq!(status.terminating, Some(0));
    assert_eq!(
        status.uncounted_terminated_pods,
        Some(k8s_openapi::api::batch::v1::UncountedTerminatedPods::default())
    );
    let complete = sim.condition("Complete").unwrap();
    assert_eq!(complete.status, "True");
    assert_eq!(
        complete.message.as_deref(),
        Some("Reached expected number of succeeded pods")
    );
    assert_eq!(complete.last_transition_time, Some(to_time(at(5))));
    assert_eq!(status.completion_time, Some(to_time(at(5))));
    assert_eq!(reasons(&plan), vec!["Completed"]);
    let types: Vec<String> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, vec!["SuccessCriteriaMet", "Complete"]);

    // A finished job is left alone.
    let plan = sim.step(at(6));
    assert!(!plan.status_changed && plan.create.is_empty());
}

#[test]
fn completions_five_parallelism_one_creates_one_pod_at_a_time() {
    let mut sim = Sim::new(job(Some(5), None));
    let plan = sim.step(at(0));
    assert_eq!(plan.create.len(), 1);
    for round in 0..5 {
        assert_eq!(sim.active_names().len(), 1, "round {round}");
        let plan = sim.step(at(round * 10 + 1));
        assert!(plan.create.is_empty());
        let name = sim.active_names()[0].clone();
        sim.finish(&name, "Succeeded", at(round * 10 + 2));
        // The sync that sees the success creates the next pod, unless all are done.
        let plan = sim.step(at(round * 10 + 3));
        assert_eq!(plan.create.len(), usize::from(round < 4), "round {round}");
    }
    assert!(sim.active_names().is_empty());
    sim.step(at(100));
    assert_eq!(sim.status().succeeded, Some(5));
    assert!(sim.condition("Complete").is_some());
    assert_eq!(sim.next, 5);
}

#[test]
fn parallelism_two_never_over_creates_with_pending_pods() {
    let mut sim = Sim::new(job(Some(5), Some(2)));
    let plan = sim.step(at(0));
    assert_eq!(plan.create.len(), 2);
    // Pods stay pending for many syncs: never a third.
    for i in 1..5 {
        let plan = sim.step(at(i));
        assert!(plan.create.is_empty());
        assert_eq!(sim.active_names().len(), 2);
    }
    // One succeeds: exactly one replacement; with 4 left to go parallelism still caps.
    let first = sim.active_names()[0].clone();
    sim.finish(&first, "Succeeded", at(5));
    let plan = sim.step(at(6));
    assert_eq!(plan.create.len(), 1);
    assert_eq!(sim.active_names().len(), 2);
    // Near the end, remaining completions cap the active count below parallelism.
    for t in 0..20 {
        let names = sim.active_names();
        if let Some(n) = names.first() {
            sim.finish(n, "Succeeded", at(10 + t));
        }
        sim.step(at(10 + t));
        assert!(sim.active_names().len() <= 2);
        let remaining = 5
            - sim.status().succeeded.unwrap_or(0)
            - i32::try_from(
                sim.status()
                    .uncounted_terminated_pods
                    .and_then(|u| u.succeeded)
                    .map_or(0, |v| v.len()),
            )
            .unwrap();
        assert!(i32::try_from(sim.active_names().len()).unwrap() <= remaining.max(0));
    }
    assert_eq!(sim.status().succeeded, Some(5));
    assert!(sim.condition("Complete").is_some());
    assert_eq!(sim.next, 5);
}

#[test]
fn pod_failures_back_off_ten_then_twenty_seconds() {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    sim.step(at(0));
    let p0 = sim.active_names()[0].clone();
    sim.finish(&p0, "Failed", at(5));
    let plan = sim.step(at(6));
    // First failure: counted, no replacement before 10 s after the failure.
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(9)));
    sim.step(at(7));
    assert_eq!(sim.status().failed, Some(1));
    let plan = sim.step(at(15));
    assert_eq!(plan.create.len(), 1);

    let p1 = sim.active_names()[0].clone();
    sim.finish(&p1, "Failed", at(20));
    let plan = sim.step(at(21));
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(19)));
    let plan = sim.step(at(39));
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(1)));
    let plan = sim.step(at(40));
    assert_eq!(plan.create.len(), 1);
    assert_eq!(sim.status().failed, Some(2));
}

#[test]
fn backoff_is_capped_at_ten_minutes() {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    sim.job.spec.as_mut().unwrap().backoff_limit = Some(100);
    let mut now = 0;
    for _ in 0..8 {
        let plan = sim.step(at(now));
        if plan.create.is_empty() {
            now += i64::try_from(plan.requeue_after.unwrap().as_secs()).unwrap();
            sim.step(at(now));
        }
        let p = sim.active_names()[0].clone();
        now += 1;
        sim.finish(&p, "Failed", at(now));
        sim.step(at(now));
    }
    let plan = sim.step(at(now));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(600)));
}

#[test]
fn backoff_limit_one_fails_with_backoff_limit_exceeded() {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    sim.job.spec.as_mut().unwrap().backoff_limit = Some(1);
    sim.step(at(0));
    let p = sim.active_names()[0].clone();
    sim.finish(&p, "Failed", at(1));
    sim.step(at(2));
    sim.step(at(3));
    assert!(sim.condition("FailureTarget").is_none());
    sim.step(at(20));
    let p = sim.active_names()[0].clone();
    sim.finish(&p, "Failed", at(21));
    let plan = sim.step(at(22));
    let target = sim.condition("FailureTarget").unwrap();
    assert_eq!(target.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert!(plan.create.is_empty());
    let plan = sim.step(at(23));
    let failed = sim.condition("Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(
        failed.message.as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert_eq!(sim.status().failed, Some(2));
    assert_eq!(sim.status().completion_time, None);
    assert_eq!(plan.events[0].type_, EventType::Warning);
    assert_eq!(reasons(&plan), vec!["BackoffLimitExceeded"]);
}

#[test]
fn on_failure_restarts_count_against_backoff_limit() {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    let spec = sim.job.spec.as_mut().unwrap();
    spec.backoff_limit = Some(2);
    spec.template.spec.as_mut().unwrap().restart_policy = Some("OnFailure".into());
    sim.step(at(0));
    let p = sim.active_names()[0].clone();
    sim.run_pod(&p, false);
    let pod = sim.pods.iter_mut().next().unwrap();
    pod.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
        name: "resting".into(),
        restart_count: 2,
        ..Default::default()
    }]);
    let plan = sim.step(at(1));
    assert_eq!(plan.delete, vec![p]);
    assert_eq!(
        sim.condition("FailureTarget").unwrap().reason.as_deref(),
        Some("BackoffLimitExceeded")
    );
}

#[test]
fn active_deadline_fails_the_job_and_deletes_active_pods() {
    let mut sim = Sim::new(job(Some(5), Some(2)));
    sim.job.spec.as_mut().unwrap().active_deadline_seconds = Some(15);
    let plan = sim.step(at(0));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(15)));
    let names = sim.active_names();
    sim.finish(&names[0], "Succeeded", at(5));
    let plan = sim.step(at(6));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(9)));
    sim.step(at(7));
    let running = sim.active_names();
    assert_eq!(running.len(), 2);

    let plan = sim.step(at(15));
    let mut deleted = plan.delete.clone();
    deleted.sort();
    let mut expected = running.clone();
    expected.sort();
    assert_eq!(deleted, expected);
    assert!(plan.create.is_empty());
    let target = sim.condition("FailureTarget").unwrap();
    assert_eq!(target.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        target.message.as_deref(),
        Some("Job was active longer than specified deadline")
    );
    assert_eq!(sim.status().terminating, Some(2));
    assert_eq!(sim.status().active, None);
    // Failed waits for the deleted pods to go.
    assert!(sim.condition("Failed").is_none());
    sim.step(at(16));
    assert!(sim.condition("Failed").is_none());
    sim.reap_terminating();
    let plan = sim.step(at(17));
    let failed = sim.condition("Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(sim.status().failed, Some(2));
    assert_eq!(sim.status().succeeded, Some(1));
    assert_eq!(sim.status().terminating, Some(0));
    assert_eq!(reasons(&plan), vec!["DeadlineExceeded"]);
}

#[test]
fn counting_is_exactly_once_across_a_restart() {
    let mut sim = Sim::new(job(Some(3), Some(3)));
    sim.step(at(0));
    let names = sim.active_names();
    sim.finish(&names[0], "Succeeded", at(1));
    sim.finish(&names[1], "Failed", at(1));

    // First sync after the pods finish: UIDs go to uncounted; the "controller crashes"
    // before removing finalizers (plan applied without the finalizer step).
    let plan = sync(&sim.job, &sim.pods, at(2));
    sim.job.status = Some(plan.status.clone());
    let uncounted = sim.status().uncounted_terminated_pods.unwrap();
    assert_eq!(uncounted.succeeded.unwrap().len(), 1);
    assert_eq!(uncounted.failed.unwrap().len(), 1);

    // Restarted controller: same pods still hold finalizers; nothing added twice.
    let plan = sync(&sim.job, &sim.pods, at(3));
    let uncounted = plan.status.uncounted_terminated_pods.clone().unwrap();
    assert_eq!(uncounted.succeeded.unwrap().len(), 1);
    assert_eq!(uncounted.failed.unwrap().len(), 1);
    assert_eq!(plan.remove_finalizer.len(), 2);
    sim.job.status = Some(plan.status.clone());
    for n in &plan.remove_finalizer {
        sim.remove_finalizer(n);
    }
    // Flush: counters move once.
    sim.step(at(4));
    assert_eq!(sim.status().succeeded, Some(1));
    assert_eq!(sim.status().failed, Some(1));
    // Restart again: pods without finalizer and not in uncounted are already counted.
    sim.step(at(5));
    sim.step(at(30));
    assert_eq!(sim.status().succeeded, Some(1));
    assert_eq!(sim.status().failed, Some(1));
    assert_eq!(
        sim.status().uncounted_terminated_pods,
        Some(Default::default())
    );
}

#[test]
fn suspend_deletes_pods_and_resume_resets_start_time() {
    let mut sim = Sim::new(job(Some(2), Some(2)));
    sim.step(at(0));
    assert_eq!(sim.active_names().len(), 2);
    sim.job.spec.as_mut().unwrap().suspend = Some(true);
    let plan = sim.step(at(10));
    assert_eq!(plan.delete.len(), 2);
    assert!(plan.create.is_empty());
    let cond = sim.condition("Suspended").unwrap();
    assert_eq!(
        (
            cond.status.as_str(),
            cond.reason.as_deref(),
            cond.message.as_deref()
        ),
        ("True", Some("JobSuspended"), Some("Job suspended"))
    );
    assert_eq!(reasons(&plan), vec!["Suspended"]);
    assert_eq!(sim.status().active, None);
    assert_eq!(sim.status().terminating, Some(2));
    // Suspension releases the pods before deleting them, so they are not failures.
    assert_eq!(plan.release_before_delete, plan.delete);
    sim.reap_terminating();
    let plan = sim.step(at(11));
    assert!(plan.create.is_empty());
    assert_eq!(sim.status().failed, None);
    assert_eq!(sim.status().terminating, Some(0));

    sim.job.spec.as_mut().unwrap().suspend = Some(false);
    let plan = sim.step(at(100));
    let cond = sim.condition("Suspended").unwrap();
    assert_eq!(
        (
            cond.status.as_str(),
            cond.reason.as_deref(),
            cond.message.as_deref()
        ),
        ("False", Some("JobResumed"), Some("Job resumed"))
    );
    assert_eq!(reasons(&plan), vec!["Resumed"]);
    assert_eq!(sim.status().start_time, Some(to_time(at(100))));
}

#[test]
fn job_created_suspended_gets_no_start_time_and_no_pods() {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    sim.job.spec.as_mut().unwrap().suspend = Some(true);
    let plan = sim.step(at(0));
    assert!(plan.create.is_empty());
    assert_eq!(sim.status().start_time, None);
    assert_eq!(sim.condition("Suspended").unwrap().status, "True");
}

#[test]
fn indexed_job_creates_indexed_pods_and_tracks_completed_indexes() {
    let mut j = job(Some(8), Some(8));
    j.spec.as_mut().unwrap().completion_mode = Some("Indexed".into());
    let mut sim = Sim::new(j);
    let plan = sim.step(at(0));
    let indexes: Vec<Option<i32>> = plan.create.iter().map(|c| c.index).collect();
    assert_eq!(indexes, (0..8).map(Some).collect::<Vec<_>>());
    let pod = &plan.create[3].pod;
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("sleepy-3-"));
    assert_eq!(
        pod.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX_KEY],
        "3"
    );
    assert_eq!(
        pod.metadata.labels.as_ref().unwrap()[COMPLETION_INDEX_KEY],
        "3"
    );
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("sleepy-3"));
    let env = &spec.containers[0].env.as_ref().unwrap()[0];
    assert_eq!(env.name, COMPLETION_INDEX_ENV);
    assert_eq!(
        env.value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.labels['batch.kubernetes.io/job-completion-index']"
    );

    for i in [1, 3, 4, 5, 7] {
        let name = sim
            .pods
            .iter()
            .find(|p| p.metadata.generate_name.as_deref() == Some(&format!("sleepy-{i}-")))
            .and_then(|p| p.metadata.name.clone())
            .unwrap();
        sim.finish(&name, "Succeeded", at(1));
    }
    sim.step(at(2));
    assert_eq!(sim.status().completed_indexes.as_deref(), Some("1,3-5,7"));
    assert_eq!(sim.status().succeeded, Some(5));
    sim.step(at(3));
    assert_eq!(sim.status().succeeded, Some(5));
    assert_eq!(sim.status().active, Some(3));

    // A failed index is replaced with the same index (after backoff).
    let name = sim
        .pods
        .iter()
        .find(|p| p.metadata.generate_name.as_deref() == Some("sleepy-0-"))
        .and_then(|p| p.metadata.name.clone())
        .unwrap();
    sim.finish(&name, "Failed", at(4));
    sim.step(at(5));
    let plan = sim.step(at(20));
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0].index, Some(0));
}

#[test]
fn work_queue_job_stops_creating_after_first_success() {
    let mut sim = Sim::new(job(None, Some(3)));
    let plan = sim.step(at(0));
    assert_eq!(plan.create.len(), 3);
    let names = sim.active_names();
    sim.finish(&names[0], "Succeeded", at(1));
    let plan = sim.step(at(2));
    assert!(plan.create.is_empty());
    assert!(sim.condition("SuccessCriteriaMet").is_none());
    sim.finish(&names[1], "Succeeded", at(3));
    sim.finish(&names[2], "Succeeded", at(3));
    sim.step(at(4));
    sim.step(at(5));
    assert!(sim.condition("Complete").is_some());
    assert_eq!(sim.status().succeeded, Some(3));
}

#[test]
fn unsatisfied_expectations_block_creation() {
    let j = job(Some(2), Some(2));
    let plan = sync_with_expectations(&j, &[], at(0), false);
    assert!(plan.create.is_empty());
    assert_eq!(plan.status.start_time, Some(to_time(at(0))));
}

#[test]
fn jobs_managed_by_someone_else_are_skipped() {
    let mut j = job(Some(1), Some(1));
    j.spec.as_mut().unwrap().managed_by = Some("example.com/other".into());
    let plan = sync(&j, &[], at(0));
    assert!(plan.create.is_empty() && !plan.status_changed);
}

#[test]
fn selector_string_joins_labels_and_expressions() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    let sel = LabelSelector {
        match_labels: Some([("a".to_string(), "b".to_string())].into()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "c".into(),
                operator: "In".into(),
                values: Some(vec!["x".into(), "y".into()]),
            },
            LabelSelectorRequirement {
                key: "d".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    assert_eq!(selector_string(&sel), "a=b,c in (x,y),!d");
}

fn with_policy(action: &str, codes: Vec<i32>) -> Job {
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
    };
    let mut j = job(Some(1), Some(1));
    let spec = j.spec.as_mut().unwrap();
    spec.pod_replacement_policy = Some("Failed".into());
    spec.pod_failure_policy = Some(PodFailurePolicy {
        rules: vec![PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "In".into(),
                values: codes,
            }),
            on_pod_conditions: None,
        }],
    });
    j
}

#[test]
fn pod_failure_policy_fail_job_fails_on_matching_exit_code() {
    let mut sim = Sim::new(with_policy("FailJob", vec![1]));
    sim.step(at(0));
    let p = sim.active_names()[0].clone();
    sim.finish(&p, "Failed", at(1));
    sim.step(at(2));
    let target = sim.condition("FailureTarget").unwrap();
    assert_eq!(target.reason.as_deref(), Some("PodFailurePolicy"));
    assert_eq!(
        target.message.unwrap(),
        format!(
            "Container resting for pod default/{p} failed with exit code 1 matching FailJob rule at index 0"
        )
    );
    sim.step(at(3));
    assert_eq!(
        sim.condition("Failed").unwrap().reason.as_deref(),
        Some("PodFailurePolicy")
    );
    assert_eq!(sim.status().failed, Some(1));
}

#[test]
fn pod_failure_policy_ignore_does_not_count_but_still_backs_off() {
    let mut sim = Sim::new(with_policy("Ignore", vec![1]));
    sim.step(at(0));
    let p = sim.active_names()[0].clone();
    sim.finish(&p, "Failed", at(1));
    let plan = sim.step(at(2));
    // Upstream's back-off record takes every new failed pod, ignored or not.
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(9)));
    assert_eq!(plan.remove_finalizer, vec![p]);
    sim.step(at(3));
    assert_eq!(sim.status().failed, None);
    let plan = sim.step(at(11));
    assert_eq!(plan.create.len(), 1);
}

// --- backoffLimitPerIndex, FailIndex, successPolicy, adoption ---

fn indexed(completions: i32, parallelism: i32) -> Job {
    let mut j = job(Some(completions), Some(parallelism));
    j.spec.as_mut().unwrap().completion_mode = Some("Indexed".into());
    j
}

/// An Indexed Job with `backoffLimitPerIndex` and, as the API server leaves it then, no
/// `backoffLimit` of its own (the controller defaults it to MaxInt32).
fn per_index(completions: i32, parallelism: i32, limit: i32) -> Job {
    let mut j = indexed(completions, parallelism);
    let spec = j.spec.as_mut().unwrap();
    spec.backoff_limit = None;
    spec.backoff_limit_per_index = Some(limit);
    j
}

/// Adds a podFailurePolicy rule matching one exit code (podReplacementPolicy becomes
/// `Failed`, the only value the API server accepts with a policy).
fn on_exit_code(mut j: Job, action: &str, code: i32) -> Job {
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
    };
    let spec = j.spec.as_mut().unwrap();
    spec.pod_replacement_policy = Some("Failed".into());
    spec.pod_failure_policy
        .get_or_insert_with(|| PodFailurePolicy { rules: Vec::new() })
        .rules
        .push(PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "In".into(),
                values: vec![code],
            }),
            on_pod_conditions: None,
        });
    j
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn created_indexes(plan: &SyncPlan) -> Vec<i32> {
    plan.create.iter().filter_map(|c| c.index).collect()
}

#[test]
fn per_index_failure_is_retried_after_backoff_with_the_failure_count_carried_over() {
    let mut sim = Sim::new(per_index(2, 2, 1));
    let plan = sim.step(at(0));
    for c in &plan.create {
        assert_eq!(annotation(&c.pod, INDEX_FAILURE_COUNT_KEY), Some("0"));
        assert_eq!(annotation(&c.pod, INDEX_IGNORED_FAILURE_COUNT_KEY), None);
    }
    // failedIndexes is a pointer upstream: present, empty, from the first sync.
    assert_eq!(sim.status().failed_indexes.as_deref(), Some(""));

    let first = sim.running_index(0);
    sim.finish(&first, "Failed", at(5));
    let plan = sim.step(at(6));
    // Not retried before 10 s after the failure; the failed pod keeps its finalizer (it is
    // not counted yet) until its replacement exists.
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(9)));
    assert!(plan.remove_finalizer.is_empty());
    assert_eq!(sim.status().failed, None);

    let plan = sim.step(at(15));
    assert_eq!(created_indexes(&plan), vec![0]);
    assert_eq!(
        annotation(&plan.create[0].pod, INDEX_FAILURE_COUNT_KEY),
        Some("1")
    );
    assert!(plan.remove_finalizer.is_empty());
    // With the replacement running, the failed pod is counted.
    let plan = sim.step(at(16));
    assert_eq!(plan.remove_finalizer, vec![first]);
    sim.step(at(17));
    assert_eq!(sim.status().failed, Some(1));
    assert_eq!(sim.status().failed_indexes.as_deref(), Some(""));
    assert!(sim.condition("FailureTarget").is_none());
}

#[test]
fn index_out_of_per_index_budget_is_not_retried_and_the_job_fails_with_failed_indexes() {
    let mut sim = Sim::new(per_index(2, 2, 1));
    sim.step(at(0));
    let first = sim.running_index(0);
    sim.finish(&first, "Failed", at(1));
    sim.step(at(11));
    // The replacement already used the index's one retry: its failure fails the index, and
    // both failed pods of the index (the first was held for the replacement) are counted.
    let second = sim.running_index(0);
    sim.finish(&second, "Failed", at(20));
    let plan = sim.step(at(21));
    let mut released = plan.remove_finalizer.clone();
    released.sort();
    assert_eq!(released, vec![first, second]);
    assert_eq!(sim.status().failed_indexes.as_deref(), Some("0"));
    assert!(sim.condition("FailureTarget").is_none());
    for t in [22, 60, 3600] {
        let plan = sim.step(at(t));
        assert!(plan.create.is_empty(), "index 0 is never retried");
        assert_eq!(plan.requeue_after, None);
    }
    assert_eq!(sim.status().failed, Some(2));

    // The other index finishes: every index is done and one failed.
    let p = sim.running_index(1);
    sim.finish(&p, "Succeeded", at(4000));
    sim.step(at(4001));
    let target = sim.condition("FailureTarget").unwrap();
    assert_eq!(
        (target.reason.as_deref(), target.message.as_deref()),
        (Some("FailedIndexes"), Some("Job has failed indexes"))
    );
    let plan = sim.step(at(4002));
    let failed = sim.condition("Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("FailedIndexes"));
    assert_eq!(failed.message.as_deref(), Some("Job has failed indexes"));
    assert_eq!(reasons(&plan), vec!["FailedIndexes"]);
    let status = sim.status();
    assert_eq!(status.completed_indexes.as_deref(), Some("1"));
    assert_eq!(status.failed_indexes.as_deref(), Some("0"));
    assert_eq!((status.succeeded, status.failed), (Some(1), Some(2)));
    assert_eq!(status.completion_time, None);
}

#[test]
fn max_failed_indexes_exceeded_fails_the_job_and_deletes_running_pods() {
    let mut j = per_index(4, 4, 0);
    j.spec.as_mut().unwrap().max_failed_indexes = Some(1);
    let mut sim = Sim::new(j);
    sim.step(at(0));
    let (zero, one) = (sim.running_index(0), sim.running_index(1));
    sim.finish(&zero, "Failed", at(1));
    let plan = sim.step(at(2));
    // One failed index is within maxFailedIndexes.
    assert!(plan.delete.is_empty());
    assert_eq!(sim.status().failed_indexes.as_deref(), Some("0"));
    sim.finish(&one, "Failed", at(3));
    let mut running = vec![sim.running_index(2), sim.running_index(3)];
    let plan = sim.step(at(4));
    let mut deleted = plan.delete.clone();
    deleted.sort();
    running.sort();
    assert_eq!(deleted, running);
    let target = sim.condition("FailureTarget").unwrap();
    assert_eq!(target.reason.as_deref(), Some("MaxFailedIndexesExceeded"));
    assert_eq!(
        target.message.as_deref(),
        Some("Job has exceeded the specified maximal number of failed indexes")
    );
    assert!(sim.condition("Failed").is_none());
    sim.reap_terminating();
    let plan = sim.step(at(5));
    let failed = sim.condition("Failed").unwrap();
    assert_eq!(failed.reason.as_deref(), Some("MaxFailedIndexesExceeded"));
    assert_eq!(reasons(&plan), vec!["MaxFailedIndexesExceeded"]);
    assert_eq!(sim.status().failed_indexes.as_deref(), Some("0,1"));
    assert_eq!(sim.status().failed, Some(4));
}

#[test]
fn per_index_backoff_grows_with_the_failures_of_that_index_only() {
    let mut sim = Sim::new(per_index(2, 2, 3));
    sim.step(at(0));
    let p = sim.running_index(0);
    sim.finish(&p, "Failed", at(1));
    let plan = sim.step(at(11));
    assert_eq!(created_indexes(&plan), vec![0]);
    // Index 0 fails a second time (20 s wait), index 1 for the first time (10 s wait).
    let p = sim.running_index(0);
    sim.finish(&p, "Failed", at(12));
    let p = sim.running_index(1);
    sim.finish(&p, "Failed", at(13));
    let plan = sim.step(at(14));
    assert!(plan.create.is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(9)));
    let plan = sim.step(at(23));
    assert_eq!(created_indexes(&plan), vec![1]);
    assert_eq!(
        annotation(&plan.create[0].pod, INDEX_FAILURE_COUNT_KEY),
        Some("1")
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(9)));
    let plan = sim.step(at(32));
    assert_eq!(created_indexes(&plan), vec![0]);
    assert_eq!(
        annotation(&plan.create[0].pod, INDEX_FAILURE_COUNT_KEY),
        Some("2")
    );
}

#[test]
fn per_index_jobs_are_not_bound_by_the_global_backoff_limit_by_default() {
    let mut sim = Sim::new(per_index(7, 7, 1));
    sim.step(at(0));
    for i in 0..7 {
        let p = sim.running_index(i);
        sim.finish(&p, "Failed", at(1));
    }
    let plan = sim.step(at(11));
    assert_eq!(created_indexes(&plan), (0..7).collect::<Vec<_>>());
    sim.step(at(12));
    sim.step(at(13));
    // Seven failures, more than the usual default of 6, and the Job goes on.
    assert_eq!(sim.status().failed, Some(7));
    assert!(sim.condition("FailureTarget").is_none());
}

#[test]
fn pod_failure_policy_fail_index_fails_only_that_index() {
    let mut sim = Sim::new(on_exit_code(per_index(2, 2, 5), "FailIndex", 42));
    sim.step(at(0));
    let p = sim.running_index(0);
    sim.finish_with(&p, "Failed", 42, at(1));
    let plan = sim.step(at(2));
    // Four retries were left, yet the index fails at once and is counted.
    assert_eq!(plan.remove_finalizer, vec![p]);
    assert_eq!(sim.status().failed_indexes.as_deref(), Some("0"));
    assert!(sim.condition("FailureTarget").is_none());
    let plan = sim.step(at(100));
    assert!(plan.create.is_empty());
    assert_eq!(sim.status().failed, Some(1));

    let p = sim.running_index(1);
    sim.finish(&p, "Succeeded", at(101));
    sim.step(at(102));
    sim.step(at(103));
    assert_eq!(
        sim.condition("Failed").unwrap().reason.as_deref(),
        Some("FailedIndexes")
    );
}

#[test]
fn ignored_failures_do_not_use_the_index_budget_but_grow_its_backoff() {
    let mut sim = Sim::new(on_exit_code(per_index(1, 1, 1), "Ignore", 2));
    sim.step(at(0));
    let p = sim.running_index(0);
    sim.finish_with(&p, "Failed", 2, at(1));
    let plan = sim.step(at(11));
    assert_eq!(created_indexes(&plan), vec![0]);
    let pod = &plan.create[0].pod;
    assert_eq!(annotation(pod, INDEX_FAILURE_COUNT_KEY), Some("0"));
    assert_eq!(annotation(pod, INDEX_IGNORED_FAILURE_COUNT_KEY), Some("1"));

    // A counted failure after an ignored one: still within the budget of 1, and the
    // second failure of the index waits 20 s.
    let p = sim.running_index(0);
    sim.finish(&p, "Failed", at(20));
    let plan = sim.step(at(21));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(19)));
    let plan = sim.step(at(40));
    let pod = &plan.create[0].pod;
    assert_eq!(annotation(pod, INDEX_FAILURE_COUNT_KEY), Some("1"));
    assert_eq!(annotation(pod, INDEX_IGNORED_FAILURE_COUNT_KEY), Some("1"));
    assert_eq!(sim.status().failed_indexes.as_deref(), Some(""));
    sim.step(at(41));
    sim.step(at(42));
    assert_eq!(sim.status().failed, Some(1));
}

#[test]
fn success_policy_met_terminates_remaining_pods_then_completes() {
    use k8s_openapi::api::batch::v1::{SuccessPolicy, SuccessPolicyRule};
    let mut j = indexed(5, 5);
    j.spec.as_mut().unwrap().success_policy = Some(SuccessPolicy {
        rules: vec![SuccessPolicyRule {
            succeeded_indexes: Some("0-1".into()),
            succeeded_count: None,
        }],
    });
    let mut sim = Sim::new(j);
    sim.step(at(0));
    let zero = sim.running_index(0);
    sim.finish(&zero, "Succeeded", at(1));
    sim.step(at(2));
    assert!(sim.condition("SuccessCriteriaMet").is_none());

    let one = sim.running_index(1);
    sim.finish(&one, "Succeeded", at(3));
    let mut rest: Vec<String> = (2..5).map(|i| sim.running_index(i)).collect();
    let plan = sim.step(at(4));
    let mut deleted = plan.delete.clone();
    deleted.sort();
    rest.sort();
    assert_eq!(deleted, rest);
    assert!(plan.create.is_empty());
    let met = sim.condition("SuccessCriteriaMet").unwrap();
    assert_eq!(
        (
            met.status.as_str(),
            met.reason.as_deref(),
            met.message.as_deref()
        ),
        (
            "True",
            Some("SuccessPolicy"),
            Some("Matched rules at index 0")
        )
    );
    assert_eq!(sim.status().terminating, Some(3));
    // Complete waits for the terminated pods to go.
    sim.step(at(5));
    assert!(sim.condition("Complete").is_none());
    sim.reap_terminating();
    let plan = sim.step(at(6));
    let complete = sim.condition("Complete").unwrap();
    assert_eq!(
        (complete.reason.as_deref(), complete.message.as_deref()),
        (Some("SuccessPolicy"), Some("Matched rules at index 0"))
    );
    assert_eq!(reasons(&plan), vec!["Completed"]);
    let status = sim.status();
    assert_eq!(status.completion_time, Some(to_time(at(6))));
    assert_eq!(status.completed_indexes.as_deref(), Some("0,1"));
    assert_eq!(status.succeeded, Some(2));
    // Pods terminated because the Job succeeded are not failures.
    assert_eq!(status.failed, None);
    assert_eq!(status.failed_indexes, None);
}

#[test]
fn success_policy_succeeded_count_accepts_any_indexes() {
    use k8s_openapi::api::batch::v1::{SuccessPolicy, SuccessPolicyRule};
    let mut j = indexed(4, 4);
    j.spec.as_mut().unwrap().success_policy = Some(SuccessPolicy {
        rules: vec![SuccessPolicyRule {
            succeeded_indexes: None,
            succeeded_count: Some(2),
        }],
    });
    let mut sim = Sim::new(j);
    sim.step(at(0));
    for i in [1, 3] {
        let p = sim.running_index(i);
        sim.finish(&p, "Succeeded", at(1));
    }
    let plan = sim.step(at(2));
    assert_eq!(plan.delete.len(), 2);
    assert_eq!(
        sim.condition("SuccessCriteriaMet")
            .unwrap()
            .reason
            .as_deref(),
        Some("SuccessPolicy")
    );
}

/// A pod nobody controls, with the labels the Job's selector selects.
fn orphan(name: &str, phase: &str) -> Pod {
    let mut pod = pod_for(&job(Some(1), Some(1)), None);
    pod.metadata.name = Some(name.into());
    pod.metadata.uid = Some(format!("uid-{name}"));
    pod.metadata.owner_references = None;
    pod.metadata.finalizers = None;
    pod.status = Some(PodStatus {
        phase: Some(phase.into()),
        ..Default::default()
    });
    pod
}

#[test]
fn matching_orphan_pods_are_adopted_with_the_tracking_finalizer_and_counted() {
    let mut sim = Sim::new(job(Some(3), Some(2)));
    sim.pods.push(orphan("running-orphan", "Running"));
    sim.pods.push(orphan("done-orphan", "Succeeded"));
    let plan = sim.step(at(0));
    let mut adopted: Vec<(&str, &str)> = plan
        .adopt
        .iter()
        .map(|p| (p.name.as_str(), p.uid.as_str()))
        .collect();
    adopted.sort();
    assert_eq!(
        adopted,
        vec![
            ("done-orphan", "uid-done-orphan"),
            ("running-orphan", "uid-running-orphan")
        ]
    );
    // The adopted running pod is one of the two wanted; the succeeded one is counted
    // through the tracking finalizer like any pod of the Job.
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.remove_finalizer, vec!["done-orphan".to_string()]);
    assert_eq!(sim.status().active, Some(2));
    let pod = sim.pod("running-orphan");
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.controller),
        ("job-uid", Some(true))
    );
    assert_eq!(
        pod.metadata.finalizers.as_deref(),
        Some(&[TRACKING_FINALIZER.to_string()][..])
    );
    let plan = sim.step(at(1));
    assert!(plan.adopt.is_empty());
    assert_eq!(sim.status().succeeded, Some(1));
}

#[test]
fn orphans_that_are_terminating_foreign_elsewhere_or_unmatched_are_not_adopted() {
    let mut deleting = orphan("deleting", "Running");
    deleting.metadata.deletion_timestamp = Some(to_time(at(0)));
    let mut foreign = orphan("foreign", "Running");
    foreign.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "other".into(),
        uid: "other-uid".into(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    let mut elsewhere = orphan("elsewhere", "Running");
    elsewhere.metadata.namespace = Some("kube-system".into());
    let mut unmatched = orphan("unmatched", "Running");
    unmatched.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let pods = vec![deleting, foreign, elsewhere, unmatched];
    let plan = sync(&job(Some(1), Some(1)), &pods, at(0));
    assert!(plan.adopt.is_empty());
    // None of them counts for the Job: it still wants its own pod.
    assert_eq!(plan.create.len(), 1);
}

#[test]
fn a_job_being_deleted_adopts_nothing() {
    let mut j = job(Some(1), Some(1));
    j.metadata.deletion_timestamp = Some(to_time(at(0)));
    let plan = sync(&j, &[orphan("orphan", "Running")], at(1));
    assert!(plan.adopt.is_empty());
    assert!(plan.create.is_empty());
}

#[test]
fn indexed_pods_get_the_index_hostname_even_when_the_template_sets_one() {
    let mut j = indexed(2, 2);
    j.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .hostname = Some("mine".into());
    let plan = Sim::new(j).step(at(0));
    let hostnames: Vec<Option<String>> = plan
        .create
        .iter()
        .map(|c| c.pod.spec.as_ref().unwrap().hostname.clone())
        .collect();
    assert_eq!(
        hostnames,
        vec![Some("sleepy-0".to_string()), Some("sleepy-1".to_string())]
    );
}

#[test]
fn owned_pods_that_stopped_matching_are_released_and_replaced() {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    sim.step(at(0));
    let p = sim.active_names()[0].clone();
    sim.run_pod(&p, true);
    sim.pod_mut(&p)
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove("batch.kubernetes.io/controller-uid");
    let plan = sim.step(at(1));
    assert_eq!(plan.release.len(), 1);
    assert_eq!(plan.release[0].name, p);
    assert_eq!(plan.create.len(), 1, "the released pod no longer counts");
    assert_eq!(sim.status().active, Some(1));
}

/// A Job with a 30 s deadline, started at 0 and suspended at 5 (its pod gone).
fn suspended_with_a_deadline() -> Sim {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    sim.job.spec.as_mut().unwrap().active_deadline_seconds = Some(30);
    sim.step(at(0));
    sim.job.spec.as_mut().unwrap().suspend = Some(true);
    sim.step(at(5));
    sim.reap_terminating();
    sim
}

#[test]
fn a_job_resumed_after_its_deadline_passed_fails_with_deadline_exceeded() {
    let mut sim = suspended_with_a_deadline();
    sim.step(at(6));
    // Suspended past the deadline: the deadline does not fire while suspended...
    let plan = sim.step(at(60));
    assert!(sim.condition("FailureTarget").is_none(), "{plan:?}");
    // ...but the first sync after the resume checks it against the old start time, as
    // upstream does before it resets startTime.
    sim.job.spec.as_mut().unwrap().suspend = Some(false);
    sim.step(at(61));
    let cond = sim.condition("FailureTarget").unwrap();
    assert_eq!(cond.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(sim.status().start_time, Some(to_time(at(0))));
}

#[test]
fn a_job_resumed_within_its_deadline_counts_it_from_the_resume() {
    let mut sim = suspended_with_a_deadline();
    sim.job.spec.as_mut().unwrap().suspend = Some(false);
    sim.step(at(20));
    assert_eq!(sim.status().start_time, Some(to_time(at(20))));
    let plan = sim.step(at(21));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(29)));
    assert!(sim.condition("FailureTarget").is_none());
}

#[test]
fn pods_released_by_suspension_do_not_delay_the_resume() {
    let mut sim = Sim::new(job(Some(2), Some(2)));
    sim.step(at(0));
    sim.job.spec.as_mut().unwrap().suspend = Some(true);
    sim.step(at(5));
    // Still terminating (and by now Failed) when the Job is resumed.
    for name in sim
        .pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect::<Vec<_>>()
    {
        sim.finish(&name, "Failed", at(6));
    }
    sim.job.spec.as_mut().unwrap().suspend = Some(false);
    let plan = sim.step(at(7));
    assert_eq!(plan.create.len(), 2, "no back-off for released pods");
    assert_eq!(sim.status().failed, None);
}

#[test]
fn indexed_pods_without_a_valid_index_are_not_counted_as_failures() {
    let mut sim = Sim::new(indexed(2, 2));
    sim.job.spec.as_mut().unwrap().backoff_limit = Some(0);
    sim.step(at(0));
    let mut stray = orphan("stray", "Failed");
    stray.metadata.owner_references = Some(vec![controller_ref(&sim.job)]);
    stray.metadata.finalizers = Some(vec![TRACKING_FINALIZER.to_string()]);
    stray
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(COMPLETION_INDEX_KEY.to_string(), "7".into());
    sim.pods.push(stray);
    let plan = sim.step(at(1));
    assert!(sim.condition("FailureTarget").is_none(), "{plan:?}");
    assert!(plan.remove_finalizer.contains(&"stray".to_string()));
    assert_eq!(sim.status().failed, None);
}

#[test]
fn completion_is_noticed_even_while_expectations_are_pending() {
    let mut sim = Sim::new(job(Some(1), Some(1)));
    sim.step(at(0));
    let p = sim.active_names()[0].clone();
    sim.finish(&p, "Succeeded", at(1));
    let plan = sync_with_expectations(&sim.job, &sim.pods, at(2), false);
    let conds = plan.status.conditions.unwrap_or_default();
    assert!(
        conds.iter().any(|c| c.type_ == "SuccessCriteriaMet"),
        "{conds:?}"
    );
}

#[test]
fn scale_down_removes_the_most_recently_ready_and_most_restarted_pods_first() {
    let mut sim = Sim::new(job(Some(4), Some(4)));
    sim.step(at(0));
    let names = sim.active_names();
    assert_eq!(names.len(), 4);
    for (i, name) in names.iter().enumerate() {
        sim.run_pod(name, true);
        let p = sim.pod_mut(name);
        p.spec.as_mut().unwrap().node_name = Some("node".into());
        let status = p.status.as_mut().unwrap();
        status.conditions.as_mut().unwrap()[0].last_transition_time = Some(to_time(at(10)));
        status.container_statuses = Some(vec![ContainerStatus {
            name: "resting".into(),
            restart_count: 0,
            ..Default::default()
        }]);
        match i {
            // Ready most recently: the first to go.
            1 => {
                status.conditions.as_mut().unwrap()[0].last_transition_time = Some(to_time(at(50)))
            }
            // Restarted: next.
            3 => status.container_statuses.as_mut().unwrap()[0].restart_count = 2,
            _ => {}
        }
    }
    sim.job.spec.as_mut().unwrap().parallelism = Some(2);
    let plan = sim.step(at(60));
    assert_eq!(plan.delete, vec![names[1].clone(), names[3].clone()]);
    assert_eq!(plan.release_before_delete, plan.delete);
}

#[test]
fn a_pod_finishes_when_its_last_container_or_sidecar_does() {
    use k8s_openapi::api::core::v1::Container;
    let terminated = |name: &str, secs: Option<i64>| ContainerStatus {
        name: name.into(),
        state: Some(ContainerState {
            terminated: secs.map(|s| ContainerStateTerminated {
                finished_at: Some(to_time(at(s))),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut pod = pod_for(&job(Some(1), Some(1)), None);
    pod.metadata.creation_timestamp = Some(to_time(at(1)));
    let spec = pod.spec.as_mut().unwrap();
    spec.init_containers = Some(vec![
        Container {
            name: "setup".into(),
            ..Default::default()
        },
        Container {
            name: "proxy".into(),
            restart_policy: Some("Always".into()),
            ..Default::default()
        },
    ]);
    pod.status = Some(PodStatus {
        phase: Some("Failed".into()),
        container_statuses: Some(vec![terminated("resting", Some(10))]),
        init_container_statuses: Some(vec![
            terminated("setup", Some(3)),
            terminated("proxy", Some(15)),
        ]),
        ..Default::default()
    });
    // The sidecar stopped last; a plain init container does not count.
    assert_eq!(sync::finish_time(&pod, at(100)), at(15));
    // A sidecar still running means the containers have not all finished: creation time.
    pod.status.as_mut().unwrap().init_container_statuses = Some(vec![terminated("proxy", None)]);
    assert_eq!(sync::finish_time(&pod, at(100)), at(1));
}
