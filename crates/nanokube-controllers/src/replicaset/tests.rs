//! Unit tests of the pure ReplicaSet sync, with a fixed clock and hand-made pods.

use super::*;
use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::api::apps::v1::{ReplicaSetCondition, ReplicaSetSpec, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn replica_set(replicas: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("rs-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "web")])),
                ..Default::default()
            },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[("app", "web"), ("tier", "front")])),
                    annotations: Some(labels(&[("note", "kept")])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("busybox".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus::default()),
    }
}

fn owner(uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: "web".into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod with the template's labels, owned by the ReplicaSet, created `created` seconds
/// after t0, `Running` and Ready since `ready` (when given) on node `n1`.
fn pod(name: &str, created: i64, ready: Option<i64>) -> Pod {
    let mut conditions = Vec::new();
    if let Some(r) = ready {
        conditions.push(PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(crate::job::to_time(at(r))),
            ..Default::default()
        });
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels(&[("app", "web"), ("tier", "front")])),
            owner_references: Some(vec![owner("rs-uid")]),
            creation_timestamp: Some(crate::job::to_time(at(created))),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("n1".into()),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(conditions),
            ..Default::default()
        }),
    }
}

fn names(refs: &[PodRef]) -> Vec<&str> {
    refs.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn missing_pods_are_created_from_the_template_under_the_controller_reference() {
    let rs = replica_set(3);
    let plan = sync(&rs, &[], &[], t0());
    assert_eq!(plan.create.len(), 3);
    let p = &plan.create[0];
    assert_eq!(p.metadata.generate_name.as_deref(), Some("web-"));
    assert_eq!(p.metadata.name, None);
    assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        p.metadata.labels,
        Some(labels(&[("app", "web"), ("tier", "front")]))
    );
    assert_eq!(p.metadata.annotations, Some(labels(&[("note", "kept")])));
    assert_eq!(p.metadata.owner_references, Some(vec![owner("rs-uid")]));
    assert_eq!(p.spec.as_ref().unwrap().containers[0].name, "c");
    // Status counts what exists now; the new pods show up in the next sync.
    assert_eq!(plan.status.replicas, 0);
    assert_eq!(plan.status.observed_generation, Some(1));
    assert!(plan.status_changed);
}

#[test]
fn the_right_number_of_pods_is_left_alone() {
    let mut rs = replica_set(2);
    let pods = vec![pod("a", 0, Some(1)), pod("b", 0, Some(1))];
    rs.status = Some(ReplicaSetStatus {
        replicas: 2,
        fully_labeled_replicas: Some(2),
        ready_replicas: Some(2),
        available_replicas: Some(2),
        observed_generation: Some(1),
        ..Default::default()
    });
    let plan = sync(&rs, &pods, &[], at(10));
    assert!(plan.create.is_empty() && plan.delete.is_empty());
    assert!(!plan.status_changed, "steady state writes nothing");
}

#[test]
fn a_new_generation_is_observed_even_with_the_same_counts() {
    let mut rs = replica_set(0);
    rs.metadata.generation = Some(2);
    rs.status = Some(ReplicaSetStatus {
        observed_generation: Some(1),
        ..Default::default()
    });
    let plan = sync(&rs, &[], &[], t0());
    assert!(plan.status_changed);
    assert_eq!(plan.status.observed_generation, Some(2));
}

#[test]
fn surplus_pods_go_unscheduled_then_pending_then_not_ready_then_newest_first() {
    let rs = replica_set(1);
    let mut unscheduled = pod("unscheduled", 0, None);
    unscheduled.spec.as_mut().unwrap().node_name = None;
    let mut pending = pod("pending", 0, None);
    pending.status.as_mut().unwrap().phase = Some("Pending".into());
    let not_ready = pod("not-ready", 0, None);
    let old_ready = pod("old-ready", 0, Some(1));
    // Ready long after the other: a different logarithmic bucket, so it goes first.
    let new_ready = pod("new-ready", 3000, Some(3001));
    let pods = vec![
        old_ready.clone(),
        new_ready.clone(),
        not_ready,
        pending,
        unscheduled,
    ];
    let plan = sync(&rs, &pods, &pods, at(3010));
    assert_eq!(
        plan.delete,
        vec!["unscheduled", "pending", "not-ready", "new-ready"]
    );
    assert!(plan.create.is_empty());
}

#[test]
fn a_lower_deletion_cost_is_deleted_first() {
    let rs = replica_set(1);
    let mut cheap = pod("cheap", 0, Some(1));
    cheap.metadata.annotations = Some(labels(&[(POD_DELETION_COST, "-5")]));
    let dear = pod("dear", 100, Some(101));
    let plan = sync(&rs, &[dear, cheap], &[], at(200));
    assert_eq!(plan.delete, vec!["cheap"]);
}

#[test]
fn every_pod_goes_when_scaled_to_zero() {
    let rs = replica_set(0);
    let pods = vec![pod("a", 0, Some(1)), pod("b", 0, Some(1))];
    let plan = sync(&rs, &pods, &[], at(5));
    assert_eq!(plan.delete, vec!["a", "b"]);
}

#[test]
fn matching_orphans_are_adopted_and_count_as_replicas() {
    let rs = replica_set(2);
    let mut orphan = pod("orphan", 0, Some(1));
    orphan.metadata.owner_references = None;
    let plan = sync(&rs, &[orphan, pod("own", 0, Some(1))], &[], at(5));
    assert_eq!(names(&plan.adopt), vec!["orphan"]);
    assert_eq!(plan.adopt[0].uid, "uid-orphan");
    assert!(
        plan.create.is_empty(),
        "the orphan fills the second replica"
    );
    assert_eq!(plan.status.replicas, 2);
}

#[test]
fn orphans_that_do_not_match_or_are_being_deleted_are_not_adopted() {
    let rs = replica_set(1);
    let mut other = pod("other", 0, None);
    other.metadata.owner_references = None;
    other.metadata.labels = Some(labels(&[("app", "db")]));
    let mut dying = pod("dying", 0, None);
    dying.metadata.owner_references = None;
    dying.metadata.deletion_timestamp = Some(crate::job::to_time(t0()));
    let plan = sync(&rs, &[other, dying], &[], at(5));
    assert!(plan.adopt.is_empty());
    assert_eq!(plan.create.len(), 1);
}

#[test]
fn owned_pods_that_stopped_matching_are_released_and_replaced() {
    let rs = replica_set(1);
    let mut relabeled = pod("relabeled", 0, Some(1));
    relabeled.metadata.labels = Some(labels(&[("app", "debug")]));
    let plan = sync(&rs, &[relabeled], &[], at(5));
    assert_eq!(names(&plan.release), vec!["relabeled"]);
    assert_eq!(plan.create.len(), 1);
}

#[test]
fn pods_of_another_controller_are_never_touched() {
    let rs = replica_set(1);
    let mut foreign = pod("foreign", 0, Some(1));
    foreign.metadata.owner_references = Some(vec![owner("other-uid")]);
    let plan = sync(&rs, &[foreign], &[], at(5));
    assert!(plan.adopt.is_empty() && plan.release.is_empty() && plan.delete.is_empty());
    assert_eq!(plan.create.len(), 1);
}

#[test]
fn terminal_and_terminating_pods_do_not_count_and_are_replaced() {
    let rs = replica_set(3);
    let mut done = pod("done", 0, None);
    done.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let mut failed = pod("failed", 0, None);
    failed.status.as_mut().unwrap().phase = Some("Failed".into());
    let mut leaving = pod("leaving", 0, Some(1));
    leaving.metadata.deletion_timestamp = Some(crate::job::to_time(at(2)));
    let plan = sync(&rs, &[done, failed, leaving], &[], at(5));
    assert_eq!(plan.create.len(), 3);
    assert_eq!(plan.status.replicas, 0);
}

#[test]
fn status_counts_fully_labeled_ready_and_available_pods() {
    let mut rs = replica_set(3);
    rs.spec.as_mut().unwrap().min_ready_seconds = Some(10);
    let mut partly_labeled = pod("partly", 0, None);
    partly_labeled.metadata.labels = Some(labels(&[("app", "web")]));
    let pods = vec![
        pod("available", 0, Some(1)),
        pod("ready-recently", 0, Some(15)),
        partly_labeled,
    ];
    let plan = sync(&rs, &pods, &[], at(20));
    let s = &plan.status;
    assert_eq!(s.replicas, 3);
    assert_eq!(s.fully_labeled_replicas, Some(2));
    assert_eq!(s.ready_replicas, Some(2));
    assert_eq!(s.available_replicas, Some(1));
    // ready at 15 + 10 s minReadySeconds: available after 25, looked at again then.
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(6)));
}

#[test]
fn nothing_is_created_or_deleted_while_expectations_are_pending() {
    let rs = replica_set(3);
    let plan = sync_with_expectations(&rs, &[], &[], t0(), false);
    assert!(plan.create.is_empty());
    let plan = sync_with_expectations(&replica_set(0), &[pod("a", 0, None)], &[], t0(), false);
    assert!(plan.delete.is_empty());
}

#[test]
fn a_replica_set_being_deleted_neither_adopts_nor_manages_pods() {
    let mut rs = replica_set(3);
    rs.metadata.deletion_timestamp = Some(crate::job::to_time(t0()));
    let mut orphan = pod("orphan", 0, None);
    orphan.metadata.owner_references = None;
    let mut relabeled = pod("relabeled", 0, None);
    relabeled.metadata.labels = Some(labels(&[("app", "x")]));
    let plan = sync(&rs, &[orphan, relabeled], &[], at(1));
    assert!(plan.adopt.is_empty() && plan.release.is_empty() && plan.create.is_empty());
}

#[test]
fn creations_per_sync_are_capped_at_the_burst_limit() {
    let rs = replica_set(2000);
    assert_eq!(sync(&rs, &[], &[], t0()).create.len(), BURST_REPLICAS);
}

#[test]
fn a_manage_error_sets_replica_failure_once_and_success_clears_it() {
    let rs = replica_set(2);
    let mut plan = sync(&rs, &[], &[], at(3));
    record_manage_error(
        &mut plan.status,
        &rs,
        "pods \"web-\" is forbidden: quota",
        at(3),
    );
    let cond = plan.status.conditions.clone().unwrap();
    assert_eq!(cond.len(), 1);
    assert_eq!(cond[0].type_, REPLICA_FAILURE);
    assert_eq!(cond[0].status, "True");
    assert_eq!(cond[0].reason.as_deref(), Some("FailedCreate"));
    assert_eq!(
        cond[0].message.as_deref(),
        Some("pods \"web-\" is forbidden: quota")
    );

    // A later error keeps the first condition as it was.
    let mut failing = rs.clone();
    failing.status.as_mut().unwrap().conditions = Some(cond.clone());
    let mut again = sync(&failing, &[], &[], at(9));
    record_manage_error(&mut again.status, &failing, "another", at(9));
    assert_eq!(again.status.conditions, Some(cond));

    // Success removes it.
    let cleared = sync(&failing, &[], &[], at(12));
    assert_eq!(cleared.status.conditions, None);
    assert!(cleared.status_changed);
}

#[test]
fn a_failure_condition_reports_failed_delete_when_there_are_too_many() {
    let rs = replica_set(0);
    let mut plan = sync(&rs, &[pod("a", 0, None)], &[], at(3));
    record_manage_error(&mut plan.status, &rs, "denied", at(3));
    let c: &ReplicaSetCondition = &plan.status.conditions.as_ref().unwrap()[0];
    assert_eq!(c.reason.as_deref(), Some("FailedDelete"));
}

#[test]
fn pods_on_crowded_nodes_are_deleted_before_equal_pods_elsewhere() {
    let rs = replica_set(1);
    let mut lonely = pod("lonely", 0, Some(1));
    lonely.spec.as_mut().unwrap().node_name = Some("n2".into());
    let crowded = pod("crowded", 0, Some(1));
    let mut sibling = pod("sibling", 0, Some(1));
    sibling.metadata.owner_references = Some(vec![owner("sibling-rs")]);
    let related = vec![lonely.clone(), crowded.clone(), sibling];
    let plan = sync(&rs, &[lonely, crowded], &related, at(5));
    assert_eq!(plan.delete, vec!["crowded"]);
}

#[test]
fn more_restarts_are_deleted_first_among_equals() {
    let rs = replica_set(1);
    let steady = pod("steady", 0, Some(1));
    let mut flaky = pod("flaky", 0, Some(1));
    flaky.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
        name: "c".into(),
        restart_count: 4,
        ..Default::default()
    }]);
    let plan = sync(&rs, &[steady, flaky], &[], at(5));
    assert_eq!(plan.delete, vec!["flaky"]);
}

#[test]
fn failing_syncs_back_off_exponentially_up_to_five_minutes_and_reset_on_success() {
    let backoff = FailureBackoff::new(RETRY, MAX_FAILURE_BACKOFF);
    let waits: Vec<u64> = (0..10)
        .map(|_| backoff.record("rs", true).unwrap().as_secs())
        .collect();
    assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    assert_eq!(backoff.record("other", true), Some(Duration::from_secs(2)));
    assert_eq!(backoff.record("rs", false), None);
    assert_eq!(backoff.record("rs", true), Some(Duration::from_secs(2)));
}
