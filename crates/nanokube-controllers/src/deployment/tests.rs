//! Unit tests of the pure Deployment sync: the hash and fencepost helpers, and rollouts
//! driven through a simulated cluster (a fixed clock, ReplicaSets whose pods come up when
//! told to).

use super::util::*;
use super::*;
use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSetCondition, ReplicaSetStatus,
    RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, Pod, PodSpec, PodStatus, PodTemplateSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&[("app", "web")])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some(image.into()),
                command: Some(vec!["/bin/sh".into(), "-c".into(), "sleep 3600".into()]),
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
}

fn rolling(surge: IntOrString, unavailable: IntOrString) -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(surge),
            max_unavailable: Some(unavailable),
        }),
    }
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

fn deployment(replicas: i32) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("d-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "web")])),
                ..Default::default()
            },
            template: template("web:1"),
            strategy: Some(rolling(pct("25%"), pct("25%"))),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: None,
    }
}

/// A cluster: the Deployment, its ReplicaSets (whose pods appear only when `settle` says
/// so), a clock and the Events the I/O shell would record.
struct Sim {
    d: Deployment,
    rss: Vec<ReplicaSet>,
    now: DateTime<Utc>,
    next: usize,
    events: Vec<String>,
}

impl Sim {
    fn new(d: Deployment) -> Self {
        Sim {
            d,
            rss: Vec::new(),
            now: t0(),
            next: 0,
            events: Vec::new(),
        }
    }

    fn tick(&mut self, secs: i64) {
        self.now += chrono::Duration::seconds(secs);
    }

    /// One sync, its plan applied the way the API server and the I/O shell would.
    fn sync(&mut self) -> SyncPlan {
        self.sync_with_pods(&[])
    }

    fn sync_with_pods(&mut self, pods: &[Pod]) -> SyncPlan {
        let plan = sync(&self.d, &self.rss, pods, self.now);
        for step in &plan.steps {
            match step {
                Step::Create { replica_set } => {
                    let mut rs = replica_set.clone();
                    self.next += 1;
                    rs.metadata.uid = Some(format!("rs-uid-{}", self.next));
                    rs.metadata.generation = Some(1);
                    // Creation order must be visible at the API's second precision.
                    let created = t0() + chrono::Duration::seconds(self.next as i64);
                    rs.metadata.creation_timestamp = Some(crate::job::to_time(created));
                    rs.status = Some(ReplicaSetStatus::default());
                    let size = rs_replicas(&rs);
                    if size > 0 {
                        self.events.push(format!(
                            "Scaled up replica set {} from 0 to {size}",
                            rs.metadata.name.clone().unwrap()
                        ));
                    }
                    self.rss.push(rs);
                }
                Step::Update { replica_set, event } => {
                    let name = replica_set.metadata.name.clone();
                    let current = self
                        .rss
                        .iter_mut()
                        .find(|r| r.metadata.name == name)
                        .expect("updated ReplicaSet exists");
                    let status = current.status.clone();
                    let spec_changed = current.spec != replica_set.spec;
                    let generation = current.metadata.generation.unwrap_or(1);
                    *current = replica_set.clone();
                    current.status = status;
                    current.metadata.generation = Some(generation + i64::from(spec_changed));
                    self.events.extend(event.clone());
                }
                Step::Delete { name } => {
                    self.rss.retain(|r| r.metadata.name.as_ref() != Some(name));
                }
                Step::Adopt { name, .. } => {
                    let rs = self
                        .rss
                        .iter_mut()
                        .find(|r| r.metadata.name.as_ref() == Some(name))
                        .expect("adopted ReplicaSet exists");
                    rs.metadata.owner_references = Some(vec![OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "Deployment".into(),
                        name: "web".into(),
                        uid: "d-uid".into(),
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]);
                }
                Step::Release { name, .. } => {
                    let rs = self
                        .rss
                        .iter_mut()
                        .find(|r| r.metadata.name.as_ref() == Some(name))
                        .expect("released ReplicaSet exists");
                    rs.metadata.owner_references = None;
                }
            }
        }
        for e in &plan.events {
            self.events.push(e.message.clone());
        }
        if let Some(a) = &plan.annotations {
            self.d.metadata.annotations = Some(a.clone());
        }
        if plan.status_changed {
            self.d.status = Some(plan.status.clone());
        }
        plan
    }

    /// The ReplicaSet controller and the kubelet catch up: every ReplicaSet has as many
    /// pods as it wants, ready and available when `available` says so.
    fn settle(&mut self, available: bool) {
        for rs in &mut self.rss {
            let n = rs_replicas(rs);
            let ready = if available { n } else { 0 };
            rs.status = Some(ReplicaSetStatus {
                replicas: n,
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                observed_generation: rs.metadata.generation,
                ..Default::default()
            });
        }
    }

    /// Syncs and settles (pods available) until nothing changes; returns the syncs made.
    fn run_to_completion(&mut self) -> usize {
        for n in 1..50 {
            self.settle(true);
            let plan = self.sync();
            if plan.steps.is_empty() && !plan.status_changed && plan.annotations.is_none() {
                return n;
            }
        }
        panic!("no steady state: {:#?}", self.d.status);
    }

    fn rs(&self, image: &str) -> &ReplicaSet {
        self.rss
            .iter()
            .find(|rs| {
                rs.spec
                    .as_ref()
                    .unwrap()
                    .template
                    .as_ref()
                    .unwrap()
                    .spec
                    .as_ref()
                    .unwrap()
                    .containers[0]
                    .image
                    .as_deref()
                    == Some(image)
            })
            .expect("ReplicaSet for image")
    }

    fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    fn condition(&self, type_: &str) -> (String, String, String) {
        let s = self.status();
        let c = get_condition(&s, type_).expect("condition");
        (
            c.status.clone(),
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        )
    }

    fn set_template(&mut self, image: &str) {
        self.d.spec.as_mut().unwrap().template = template(image);
        self.bump_generation();
    }

    fn bump_generation(&mut self) {
        let g = self.d.metadata.generation.unwrap_or(1);
        self.d.metadata.generation = Some(g + 1);
    }

    fn total_spec(&self) -> i32 {
        self.rss.iter().map(rs_replicas).sum()
    }
}

fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

#[test]
fn safe_encoding_maps_digits_onto_the_vowel_free_alphabet() {
    assert_eq!(safe_encode("0123456789"), "456789bcdf");
}

#[test]
fn template_hash_is_stable_changes_with_the_template_and_with_collisions() {
    let a = compute_hash(&template("web:1"), None);
    assert_eq!(a, compute_hash(&template("web:1"), None));
    assert!(
        a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{a}"
    );
    assert!(!a.is_empty() && a.len() <= 10);
    assert_ne!(a, compute_hash(&template("web:2"), None));
    assert_ne!(a, compute_hash(&template("web:1"), Some(1)));
    assert_ne!(
        compute_hash(&template("web:1"), Some(0)),
        compute_hash(&template("web:1"), Some(1))
    );
}

#[test]
fn templates_equal_ignoring_hash_label_and_empty_values() {
    let plain = template("web:1");
    let mut hashed = plain.clone();
    let meta = hashed.metadata.as_mut().unwrap();
    meta.labels
        .as_mut()
        .unwrap()
        .insert(POD_TEMPLATE_HASH.into(), "abc".into());
    meta.annotations = Some(BTreeMap::new());
    hashed.spec.as_mut().unwrap().containers[0].resources = Some(ResourceRequirements::default());
    assert!(equal_ignore_hash(&plain, &hashed));
    assert!(!equal_ignore_hash(&plain, &template("web:2")));
}

#[test]
fn fenceposts_round_surge_up_and_unavailable_down() {
    let mut d = deployment(3);
    assert_eq!(resolve_fenceposts(&d, 3), (1, 0));
    assert_eq!(max_unavailable(&d), 0);
    assert_eq!(resolve_fenceposts(&d, 10), (3, 2));
    d.spec.as_mut().unwrap().strategy = Some(rolling(IntOrString::Int(0), pct("0%")));
    assert_eq!(
        resolve_fenceposts(&d, 10),
        (0, 1),
        "both zero: one may be unavailable"
    );
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
}

#[test]
fn a_new_deployment_gets_a_replica_set_named_after_its_template_hash() {
    let mut sim = Sim::new(deployment(3));
    let plan = sim.sync();
    let hash = compute_hash(&template("web:1"), None);
    let Step::Create { replica_set: rs } = &plan.steps[0] else {
        panic!("{:?}", plan.steps)
    };
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(
        rs.metadata.labels,
        Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH, &hash)]))
    );
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(
        spec.selector.match_labels,
        Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH, &hash)]))
    );
    assert_eq!(
        spec.template
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .labels,
        Some(labels(&[("app", "web"), (POD_TEMPLATE_HASH, &hash)]))
    );
    assert_eq!(
        spec.replicas,
        Some(3),
        "25% surge of 3 lets all 3 start at once"
    );
    assert_eq!(annotation(rs, REVISION), Some("1"));
    assert_eq!(annotation(rs, DESIRED_REPLICAS), Some("3"));
    assert_eq!(annotation(rs, MAX_REPLICAS), Some("4"));
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.uid.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Deployment", "d-uid", Some(true), Some(true))
    );
    assert_eq!(
        plan.annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        sim.events,
        vec![format!("Scaled up replica set web-{hash} from 0 to 3")]
    );
    let (status, reason, message) = sim.condition(PROGRESSING);
    assert_eq!(status, "True");
    assert_eq!(reason, "NewReplicaSetCreated");
    assert_eq!(message, format!("Created new replica set \"web-{hash}\""));
    let (status, reason, message) = sim.condition(AVAILABLE);
    assert_eq!(
        (status.as_str(), reason.as_str(), message.as_str()),
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability."
        )
    );
    assert_eq!(sim.status().observed_generation, Some(1));
}

#[test]
fn a_rollout_completes_with_the_new_replica_set_available() {
    let mut sim = Sim::new(deployment(3));
    sim.run_to_completion();
    let s = sim.status();
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas,
            s.unavailable_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3), None)
    );
    let name = sim.rss[0].metadata.name.clone().unwrap();
    assert_eq!(
        sim.condition(PROGRESSING),
        (
            "True".into(),
            "NewReplicaSetAvailable".into(),
            format!("ReplicaSet \"{name}\" has successfully progressed.")
        )
    );
    assert_eq!(
        sim.condition(AVAILABLE),
        (
            "True".into(),
            "MinimumReplicasAvailable".into(),
            "Deployment has minimum availability.".into()
        )
    );
    let types: Vec<String> = s.conditions.unwrap().into_iter().map(|c| c.type_).collect();
    assert_eq!(types, ["Available", "Progressing"], "upstream's order");
}

#[test]
fn a_rolling_update_never_exceeds_surge_nor_drops_below_availability() {
    let mut d = deployment(4);
    d.spec.as_mut().unwrap().strategy = Some(rolling(IntOrString::Int(1), IntOrString::Int(0)));
    let mut sim = Sim::new(d);
    sim.run_to_completion();
    sim.set_template("web:2");
    let mut done = false;
    for _ in 0..40 {
        sim.sync();
        assert!(sim.total_spec() <= 5, "max surge 1: {}", sim.total_spec());
        let available: i32 = sim.rss.iter().map(available_replicas).sum();
        assert!(available >= 4, "max unavailable 0: {available}");
        sim.settle(true);
        if rs_replicas(sim.rs("web:2")) == 4 && rs_replicas(sim.rs("web:1")) == 0 {
            done = true;
            break;
        }
    }
    assert!(done, "{:?}", sim.events);
    sim.run_to_completion();
    assert_eq!(annotation(sim.rs("web:2"), REVISION), Some("2"));
    assert_eq!(
        sim.d
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .get(REVISION)
            .map(String::as_str),
        Some("2")
    );
    let old = sim.rs("web:1").metadata.name.clone().unwrap();
    assert!(
        sim.events
            .contains(&format!("Scaled down replica set {old} from 4 to 3")),
        "{:?}",
        sim.events
    );
    assert_eq!(sim.status().updated_replicas, Some(4));
}

#[test]
fn new_pods_that_never_become_available_stall_the_rollout() {
    let mut sim = Sim::new(deployment(4));
    sim.run_to_completion();
    sim.set_template("web:broken");
    for _ in 0..10 {
        sim.sync();
        // The old ReplicaSet's pods stay available; the new ones never do.
        for rs in &mut sim.rss {
            let n = rs_replicas(rs);
            let ok = rs
                .spec
                .as_ref()
                .unwrap()
                .template
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .image
                .as_deref()
                == Some("web:1");
            rs.status = Some(ReplicaSetStatus {
                replicas: n,
                ready_replicas: Some(if ok { n } else { 0 }),
                available_replicas: Some(if ok { n } else { 0 }),
                observed_generation: rs.metadata.generation,
                ..Default::default()
            });
        }
    }
    // 25% of 4: one may be unavailable, one may surge.
    assert_eq!(rs_replicas(sim.rs("web:1")), 3);
    assert_eq!(rs_replicas(sim.rs("web:broken")), 2);
    assert_eq!(sim.status().unavailable_replicas, Some(2));
}

#[test]
fn undo_reuses_the_old_replica_set_under_a_new_revision() {
    let mut sim = Sim::new(deployment(2));
    sim.run_to_completion();
    let first = sim.rss[0].metadata.name.clone();
    sim.set_template("web:2");
    sim.run_to_completion();
    assert_eq!(rs_replicas(sim.rs("web:1")), 0);
    // kubectl rollout undo: the old ReplicaSet's template, hash label removed.
    sim.set_template("web:1");
    sim.run_to_completion();
    assert_eq!(sim.rss.len(), 2, "no third ReplicaSet");
    let reused = sim.rs("web:1");
    assert_eq!(reused.metadata.name, first);
    assert_eq!(annotation(reused, REVISION), Some("3"));
    assert_eq!(annotation(reused, REVISION_HISTORY), Some("1"));
    assert_eq!(rs_replicas(reused), 2);
    assert_eq!(rs_replicas(sim.rs("web:2")), 0);
    assert_eq!(
        sim.d
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .get(REVISION)
            .map(String::as_str),
        Some("3")
    );
}

#[test]
fn the_change_cause_annotation_is_copied_to_the_new_replica_set() {
    let mut d = deployment(1);
    d.metadata.annotations = Some(labels(&[
        (CHANGE_CAUSE, "kubectl set image"),
        ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
    ]));
    let mut sim = Sim::new(d);
    sim.sync();
    let rs = &sim.rss[0];
    assert_eq!(annotation(rs, CHANGE_CAUSE), Some("kubectl set image"));
    assert_eq!(
        annotation(rs, "kubectl.kubernetes.io/last-applied-configuration"),
        None
    );
}

#[test]
fn recreate_removes_every_old_pod_before_the_new_replica_set_starts() {
    let mut d = deployment(2);
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    let mut sim = Sim::new(d);
    sim.run_to_completion();
    sim.set_template("web:2");
    let plan = sim.sync();
    assert_eq!(rs_replicas(sim.rs("web:1")), 0);
    assert!(!plan.steps.iter().any(|s| matches!(s, Step::Create { .. })));
    // The old ReplicaSet still reports its pods: nothing new yet.
    let plan = sim.sync();
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);
    assert_eq!(plan.requeue_after, Some(OLD_PODS_RECHECK));
    // Its count is zero but one pod is still terminating.
    sim.settle(true);
    let old_uid = sim.rs("web:1").metadata.uid.clone().unwrap();
    let terminating = Pod {
        metadata: ObjectMeta {
            name: Some("old-pod".into()),
            labels: Some(labels(&[("app", "web")])),
            owner_references: Some(vec![OwnerReference {
                kind: "ReplicaSet".into(),
                uid: old_uid,
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        }),
    };
    let plan = sim.sync_with_pods(&[terminating]);
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);
    let plan = sim.sync();
    let Some(Step::Create { replica_set }) = plan.steps.first() else {
        panic!("{:?}", plan.steps)
    };
    assert_eq!(replica_set.spec.as_ref().unwrap().replicas, Some(2));
    sim.run_to_completion();
    assert_eq!(sim.status().updated_replicas, Some(2));
}

#[test]
fn scaling_mid_rollout_spreads_replicas_in_proportion() {
    let mut d = deployment(10);
    d.spec.as_mut().unwrap().strategy = Some(rolling(IntOrString::Int(3), IntOrString::Int(2)));
    let mut sim = Sim::new(d);
    sim.run_to_completion();
    sim.set_template("web:2");
    // The new ReplicaSet starts at the surge (3), the old one gives up the 2 unavailable.
    sim.sync();
    assert_eq!(
        (rs_replicas(sim.rs("web:1")), rs_replicas(sim.rs("web:2"))),
        (8, 3)
    );
    // kubectl scale --replicas=15: 15 + 3 surge = 18 allowed, 7 more to hand out. Each
    // ReplicaSet grows as it would have at 18 instead of the 13 it was sized for:
    // 8×18/13 ≈ 11 (+3), 3×18/13 ≈ 4 (+1); the largest takes the 3 left over.
    sim.d.spec.as_mut().unwrap().replicas = Some(15);
    sim.bump_generation();
    sim.sync();
    assert_eq!(
        (rs_replicas(sim.rs("web:1")), rs_replicas(sim.rs("web:2"))),
        (14, 4)
    );
    assert_eq!(annotation(sim.rs("web:1"), DESIRED_REPLICAS), Some("15"));
    assert_eq!(annotation(sim.rs("web:2"), MAX_REPLICAS), Some("18"));
    sim.run_to_completion();
    assert_eq!(
        (rs_replicas(sim.rs("web:1")), rs_replicas(sim.rs("web:2"))),
        (0, 15)
    );
}

#[test]
fn old_revisions_beyond_the_history_limit_are_deleted() {
    let mut d = deployment(1);
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    let mut sim = Sim::new(d);
    for image in ["web:1", "web:2", "web:3", "web:4"] {
        sim.set_template(image);
        sim.run_to_completion();
    }
    let images: Vec<String> = sim
        .rss
        .iter()
        .map(|rs| {
            rs.spec
                .as_ref()
                .unwrap()
                .template
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .image
                .clone()
                .unwrap()
        })
        .collect();
    assert_eq!(images, ["web:3", "web:4"]);
}

#[test]
fn a_paused_deployment_reports_it_and_does_not_roll_out() {
    let mut sim = Sim::new(deployment(2));
    sim.run_to_completion();
    sim.d.spec.as_mut().unwrap().paused = Some(true);
    sim.bump_generation();
    sim.sync();
    assert_eq!(
        sim.condition(PROGRESSING),
        (
            "Unknown".into(),
            "DeploymentPaused".into(),
            "Deployment is paused".into()
        )
    );
    sim.set_template("web:2");
    let plan = sim.sync();
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);
    assert_eq!(sim.rss.len(), 1);
    sim.d.spec.as_mut().unwrap().paused = Some(false);
    sim.bump_generation();
    sim.sync();
    assert_eq!(sim.rss.len(), 2, "resumed: the new template rolls out");
    assert_eq!(sim.condition(PROGRESSING).1, "NewReplicaSetCreated");
}

#[test]
fn no_progress_within_the_deadline_is_progress_deadline_exceeded() {
    let mut d = deployment(1);
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(30);
    let mut sim = Sim::new(d);
    let plan = sim.sync();
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(31)));
    // The pod exists but never becomes ready: one step of progress at t=10, then none.
    sim.settle(false);
    sim.tick(10);
    sim.sync();
    assert_eq!(sim.condition(PROGRESSING).1, "ReplicaSetUpdated");
    sim.tick(30);
    let plan = sim.sync();
    assert_eq!(
        sim.condition(PROGRESSING).1,
        "ReplicaSetUpdated",
        "not yet: 30 s exactly"
    );
    assert_eq!(plan.requeue_after, Some(std::time::Duration::from_secs(1)));
    sim.tick(1);
    sim.sync();
    let name = sim.rss[0].metadata.name.clone().unwrap();
    assert_eq!(
        sim.condition(PROGRESSING),
        (
            "False".into(),
            "ProgressDeadlineExceeded".into(),
            format!("ReplicaSet \"{name}\" has timed out progressing.")
        )
    );
    // Once timed out it stays so and nothing is requeued for it.
    let plan = sim.sync();
    assert!(!plan.status_changed);
    assert_eq!(plan.requeue_after, None);
}

#[test]
fn an_orphan_replica_set_matching_the_selector_is_adopted() {
    let mut sim = Sim::new(deployment(1));
    let mut orphan = ReplicaSet {
        metadata: ObjectMeta {
            name: Some("stray".into()),
            namespace: Some("default".into()),
            uid: Some("stray-uid".into()),
            labels: Some(labels(&[("app", "web")])),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "web")])),
                ..Default::default()
            },
            template: Some(template("web:1")),
            ..Default::default()
        }),
        status: None,
    };
    orphan.metadata.creation_timestamp = Some(crate::job::to_time(t0()));
    sim.rss.push(orphan);
    let plan = sim.sync();
    assert_eq!(
        plan.steps[0],
        Step::Adopt {
            name: "stray".into(),
            uid: "stray-uid".into()
        }
    );
    assert!(
        !plan.steps.iter().any(|s| matches!(s, Step::Create { .. })),
        "the adopted ReplicaSet has the template: {:?}",
        plan.steps
    );
}

#[test]
fn a_replica_set_failure_becomes_a_deployment_condition() {
    let mut sim = Sim::new(deployment(1));
    sim.sync();
    sim.rss[0].status = Some(ReplicaSetStatus {
        conditions: Some(vec![ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some("quota exceeded".into()),
            last_transition_time: Some(crate::job::to_time(t0())),
        }]),
        ..Default::default()
    });
    sim.sync();
    assert_eq!(
        sim.condition("ReplicaFailure"),
        (
            "True".into(),
            "FailedCreate".into(),
            "quota exceeded".into()
        )
    );
}

#[test]
fn an_empty_selector_is_refused_with_a_warning() {
    let mut d = deployment(1);
    d.spec.as_mut().unwrap().selector = LabelSelector::default();
    let mut sim = Sim::new(d);
    let plan = sim.sync();
    assert!(plan.steps.is_empty());
    assert_eq!(plan.events[0].reason, "SelectingAll");
    assert!(plan.events[0].warning);
    assert_eq!(sim.status().observed_generation, Some(1));
}

#[test]
fn a_hash_collision_count_changes_the_new_replica_set_name() {
    let mut d = deployment(1);
    d.status = Some(DeploymentStatus {
        collision_count: Some(1),
        ..Default::default()
    });
    let plan = sync(&d, &[], &[], t0());
    let Step::Create { replica_set } = &plan.steps[0] else {
        panic!()
    };
    let hash = compute_hash(&template("web:1"), Some(1));
    assert_eq!(replica_set.metadata.name, Some(format!("web-{hash}")));
    assert_eq!(plan.status.collision_count, Some(1));
}
