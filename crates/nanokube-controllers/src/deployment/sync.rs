//! The pure core of the Deployment controller (upstream `syncDeployment` with `sync.go`,
//! `rolling.go`, `recreate.go` and `progress.go`): from a Deployment, the ReplicaSets and
//! pods of its namespace and the time, the ordered writes one sync makes and the status it
//! ends with. No I/O.
//!
//! Upstream interleaves reads of its own writes (an update returns the new ReplicaSet that
//! the next step scales further). Here every write's outcome is known in advance — the
//! controller only changes specs and annotations, never the status counters it reads — so
//! the planner applies each write to its working copy and carries on, and the I/O shell
//! replays the writes in order, stopping at the first failure.

use super::util::*;
use crate::replicaset::pods::from_time;
use crate::replicaset::{controller_of, labels_of, selector_of};
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

/// How soon a Recreate rollout looks again while old pods are still running (upstream
/// re-syncs on the pod deletion event; this controller does not watch pods).
pub const OLD_PODS_RECHECK: Duration = Duration::from_secs(1);
/// Longest name a ReplicaSet may have (DNS-1123 subdomain).
const MAX_NAME_LENGTH: usize = 253;

/// An Event to record on the Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentEvent {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

/// One write of a sync, in the order upstream makes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Give an orphan ReplicaSet that matches the selector this Deployment as controller.
    Adopt { name: String, uid: String },
    /// Remove this Deployment's controller reference from a ReplicaSet that stopped
    /// matching.
    Release { name: String, uid: String },
    /// Create the new ReplicaSet; when it starts with replicas, the `ScalingReplicaSet`
    /// Event `Scaled up replica set <rs> from 0 to <n>` follows.
    Create { replica_set: ReplicaSet },
    /// Replace a ReplicaSet (scale it, or sync its annotations); `event` is the
    /// `ScalingReplicaSet` message when its size changed. Several updates of one
    /// ReplicaSet in a sync each carry its full state so far.
    Update {
        replica_set: ReplicaSet,
        event: Option<String>,
    },
    /// Delete an old ReplicaSet beyond `revisionHistoryLimit`.
    Delete { name: String },
}

/// What one sync of a Deployment decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    pub steps: Vec<Step>,
    /// The Deployment's new annotations (its revision), when they changed.
    pub annotations: Option<BTreeMap<String, String>>,
    /// The new status.
    pub status: DeploymentStatus,
    /// Whether `status` differs from the stored one.
    pub status_changed: bool,
    /// Events that are not about a ReplicaSet write.
    pub events: Vec<DeploymentEvent>,
    /// When to look again without any change (progress deadline, old pods in Recreate).
    pub requeue_after: Option<Duration>,
}

/// One sync of a Deployment. `replica_sets` and `pods` are those of its namespace.
pub fn sync(
    d: &Deployment,
    replica_sets: &[ReplicaSet],
    pods: &[Pod],
    now: DateTime<Utc>,
) -> SyncPlan {
    let mut planner = Planner {
        d: d.clone(),
        now,
        owned: Vec::new(),
        plan: SyncPlan::default(),
        final_status: None,
    };
    planner.run(replica_sets, pods);
    planner.finish(d)
}

struct Planner {
    /// The working copy: its annotations and status change as upstream mutates `d`.
    d: Deployment,
    now: DateTime<Utc>,
    /// The ReplicaSets this Deployment controls, oldest first, as the writes so far left
    /// them.
    owned: Vec<ReplicaSet>,
    plan: SyncPlan,
    final_status: Option<DeploymentStatus>,
}

fn creation_order(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(from_time);
    t(a).cmp(&t(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn name_of(rs: &ReplicaSet) -> String {
    rs.metadata.name.clone().unwrap_or_default()
}

fn is_empty_selector(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// Normalises a status to its wire form (Go's `omitempty` on the counters), so that
/// "changed" means changed on the wire.
pub fn normalize(mut s: DeploymentStatus) -> DeploymentStatus {
    let nonzero = |v: Option<i32>| v.filter(|n| *n != 0);
    s.replicas = nonzero(s.replicas);
    s.updated_replicas = nonzero(s.updated_replicas);
    s.ready_replicas = nonzero(s.ready_replicas);
    s.available_replicas = nonzero(s.available_replicas);
    s.unavailable_replicas = nonzero(s.unavailable_replicas);
    s.observed_generation = s.observed_generation.filter(|g| *g != 0);
    s.conditions = s.conditions.filter(|c| !c.is_empty());
    s
}

impl Planner {
    fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    fn status_mut(&mut self) -> &mut DeploymentStatus {
        self.d.status.get_or_insert_with(DeploymentStatus::default)
    }

    fn uid(&self) -> String {
        self.d.metadata.uid.clone().unwrap_or_default()
    }

    fn run(&mut self, replica_sets: &[ReplicaSet], pods: &[Pod]) {
        let Some(spec_selector) = self.d.spec.as_ref().map(|s| s.selector.clone()) else {
            return;
        };
        if is_empty_selector(&spec_selector) {
            self.plan.events.push(DeploymentEvent {
                warning: true,
                reason: "SelectingAll".into(),
                message: "This deployment is selecting all pods. A non-empty selector is required."
                    .into(),
            });
            let generation = self.d.metadata.generation.unwrap_or(0);
            if self.status().observed_generation.unwrap_or(0) < generation {
                self.status_mut().observed_generation = Some(generation);
            }
            return;
        }
        let Some(selector) = selector_of(&spec_selector) else {
            return;
        };
        self.claim(replica_sets, &selector);
        let owned_uids: Vec<String> = self
            .owned
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .collect();
        let pod_map: Vec<(&str, &Pod)> = pods
            .iter()
            .filter(|p| selector.matches(&labels_of(&p.metadata)))
            .filter_map(|p| {
                let owner = controller_of(&p.metadata)?;
                owned_uids
                    .iter()
                    .find(|u| **u == owner.uid)
                    .map(|u| (u.as_str(), p))
            })
            .collect();

        if self.d.metadata.deletion_timestamp.is_some() {
            let (new, old) = self.replica_sets_and_sync_revision(false);
            self.sync_deployment_status(new, &old);
            return;
        }
        self.check_paused_conditions();
        let paused = self.d.spec.as_ref().and_then(|s| s.paused) == Some(true);
        if paused || self.is_scaling_event() {
            self.sync_scale(paused);
            return;
        }
        if is_recreate(&self.d) {
            self.rollout_recreate(&pod_map);
        } else {
            self.rollout_rolling();
        }
    }

    /// Upstream `ClaimReplicaSets`: keep owned matching ReplicaSets, release owned ones
    /// that stopped matching, adopt matching orphans.
    fn claim(
        &mut self,
        replica_sets: &[ReplicaSet],
        selector: &nanokube_registry::selectors::LabelSelector,
    ) {
        let uid = self.uid();
        let deleting = self.d.metadata.deletion_timestamp.is_some();
        for rs in replica_sets {
            let matches = selector.matches(&labels_of(&rs.metadata));
            match controller_of(&rs.metadata) {
                Some(r) if r.uid != uid => {}
                Some(_) if matches => self.owned.push(rs.clone()),
                Some(_) => {
                    if !deleting {
                        self.plan.steps.push(Step::Release {
                            name: name_of(rs),
                            uid: rs.metadata.uid.clone().unwrap_or_default(),
                        });
                    }
                }
                None => {
                    if deleting
                        || !matches
                        || rs.metadata.deletion_timestamp.is_some()
                        || rs.metadata.namespace != self.d.metadata.namespace
                    {
                        continue;
                    }
                    self.plan.steps.push(Step::Adopt {
                        name: name_of(rs),
                        uid: rs.metadata.uid.clone().unwrap_or_default(),
                    });
                    let mut adopted = rs.clone();
                    adopted
                        .metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(self.controller_ref());
                    self.owned.push(adopted);
                }
            }
        }
        // Upstream `FindNewReplicaSet` sorts the list it is given, oldest first.
        self.owned.sort_by(creation_order);
    }

    fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: self.d.metadata.name.clone().unwrap_or_default(),
            uid: self.uid(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn template(&self) -> k8s_openapi::api::core::v1::PodTemplateSpec {
        self.d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default()
    }

    fn min_ready_seconds(&self) -> i32 {
        self.d
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    /// Upstream `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (index into
    /// `owned`; created when asked and missing) and the old ones, with revisions synced.
    fn replica_sets_and_sync_revision(&mut self, create: bool) -> (Option<usize>, Vec<usize>) {
        let template = self.template();
        let new = self.owned.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
        });
        let old: Vec<usize> = (0..self.owned.len()).filter(|i| Some(*i) != new).collect();
        let old_sets: Vec<ReplicaSet> = old.iter().map(|i| self.owned[*i].clone()).collect();
        let new_revision = max_revision(&old_sets) + 1;

        if let Some(i) = new {
            let mut copy = self.owned[i].clone();
            let annotations_updated =
                set_new_replica_set_annotations(&self.d, &mut copy, new_revision, true);
            let min_ready = self.min_ready_seconds();
            let min_ready_stale = copy
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
                != min_ready;
            if annotations_updated || min_ready_stale {
                if let Some(spec) = copy.spec.as_mut() {
                    spec.min_ready_seconds = Some(min_ready).filter(|m| *m != 0);
                }
                self.owned[i] = copy.clone();
                self.plan.steps.push(Step::Update {
                    replica_set: copy,
                    event: None,
                });
                return (Some(i), old);
            }
            let rs_revision = copy
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            set_deployment_revision(&mut self.d, &rs_revision);
            if has_progress_deadline(&self.d)
                && get_condition(&self.status(), PROGRESSING).is_none()
            {
                let msg = format!("Found new replica set {:?}", name_of(&copy));
                let c = new_condition(PROGRESSING, "True", FOUND_NEW_REPLICA_SET, &msg, self.now);
                set_condition(self.status_mut(), c);
            }
            return (Some(i), old);
        }
        if !create {
            return (None, old);
        }

        let collision_count = self.status().collision_count;
        let hash = compute_hash(&template, collision_count);
        let mut rs_template = template;
        rs_template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let deployment_name = self.d.metadata.name.clone().unwrap_or_default();
        let keep = MAX_NAME_LENGTH.saturating_sub(hash.len() + 1);
        let prefix: String = deployment_name.chars().take(keep).collect();
        let labels = rs_template.metadata.as_ref().and_then(|m| m.labels.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{prefix}-{hash}")),
                namespace: self.d.metadata.namespace.clone(),
                owner_references: Some(vec![self.controller_ref()]),
                labels,
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(self.min_ready_seconds()).filter(|m| *m != 0),
                selector,
                template: Some(rs_template),
            }),
            status: None,
        };
        let mut all = old_sets;
        all.push(rs.clone());
        let count = new_rs_new_replicas(&self.d, &all, &rs);
        set_rs_replicas(&mut rs, count);
        set_new_replica_set_annotations(&self.d, &mut rs, new_revision, false);
        self.plan.steps.push(Step::Create {
            replica_set: rs.clone(),
        });
        let name = name_of(&rs);
        self.owned.push(rs);
        let index = self.owned.len() - 1;
        set_deployment_revision(&mut self.d, &new_revision.to_string());
        if has_progress_deadline(&self.d) {
            let msg = format!("Created new replica set {name:?}");
            let c = new_condition(PROGRESSING, "True", NEW_REPLICA_SET_CREATED, &msg, self.now);
            set_condition(self.status_mut(), c);
        }
        (Some(index), old)
    }

    /// Upstream `checkPausedConditions`: a paused Deployment's Progressing condition is
    /// `Unknown`/`DeploymentPaused` (so the pause does not count against the deadline),
    /// and `DeploymentResumed` once it resumes.
    fn check_paused_conditions(&mut self) {
        if !has_progress_deadline(&self.d) {
            return;
        }
        let status = self.status();
        let reason = get_condition(&status, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED) {
            return;
        }
        let paused_cond = reason.as_deref() == Some(DEPLOYMENT_PAUSED);
        let paused = self.d.spec.as_ref().and_then(|s| s.paused) == Some(true);
        let c = match (paused, paused_cond) {
            (true, false) => new_condition(
                PROGRESSING,
                "Unknown",
                DEPLOYMENT_PAUSED,
                "Deployment is paused",
                self.now,
            ),
            (false, true) => new_condition(
                PROGRESSING,
                "Unknown",
                DEPLOYMENT_RESUMED,
                "Deployment is resumed",
                self.now,
            ),
            _ => return,
        };
        set_condition(self.status_mut(), c);
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was last sized for a different
    /// `spec.replicas`.
    fn is_scaling_event(&mut self) -> bool {
        let (new, old) = self.replica_sets_and_sync_revision(false);
        let want = replicas(&self.d);
        old.iter()
            .copied()
            .chain(new)
            .map(|i| &self.owned[i])
            .filter(|rs| rs_replicas(rs) > 0)
            .filter_map(desired_replicas_annotation)
            .any(|desired| desired != want)
    }

    /// Upstream `sync`: scaling, or a paused Deployment.
    fn sync_scale(&mut self, paused: bool) {
        let (new, old) = self.replica_sets_and_sync_revision(false);
        self.scale(new, &old);
        if paused {
            self.cleanup(&old);
        }
        self.sync_deployment_status(new, &old);
    }

    fn sync_deployment_status(&mut self, new: Option<usize>, old: &[usize]) {
        let status = self.calculate_status(new, old);
        self.final_status = Some(status);
    }

    /// Upstream `FindActiveOrLatest`: the only active ReplicaSet, else the newest when
    /// none is active.
    fn active_or_latest(&self, new: Option<usize>, old: &[usize]) -> Option<usize> {
        if new.is_none() && old.is_empty() {
            return None;
        }
        let mut old_newest_first: Vec<usize> = old.to_vec();
        old_newest_first.sort_by(|a, b| creation_order(&self.owned[*b], &self.owned[*a]));
        let active: Vec<usize> = old_newest_first
            .iter()
            .copied()
            .chain(new)
            .filter(|i| rs_replicas(&self.owned[*i]) > 0)
            .collect();
        match active.len() {
            0 => new.or_else(|| old_newest_first.first().copied()),
            1 => active.first().copied(),
            _ => None,
        }
    }

    /// Upstream `IsSaturated`.
    fn is_saturated(&self, new: Option<usize>) -> bool {
        let Some(rs) = new.map(|i| &self.owned[i]) else {
            return false;
        };
        let want = replicas(&self.d);
        desired_replicas_annotation(rs) == Some(want)
            && rs_replicas(rs) == want
            && available_replicas(rs) == want
    }

    /// Upstream `scale`: one active ReplicaSet takes all replicas; a saturated new one
    /// retires the old; otherwise a rolling Deployment's replicas are spread over its active
    /// ReplicaSets in proportion to their sizes.
    fn scale(&mut self, new: Option<usize>, old: &[usize]) {
        let want = replicas(&self.d);
        if let Some(i) = self.active_or_latest(new, old) {
            if rs_replicas(&self.owned[i]) != want {
                self.scale_and_record(i, want);
            }
            return;
        }
        if self.is_saturated(new) {
            for i in old.iter().copied() {
                if rs_replicas(&self.owned[i]) > 0 {
                    self.scale_and_record(i, 0);
                }
            }
            return;
        }
        if !is_rolling_update(&self.d) {
            return;
        }
        let mut active: Vec<usize> = old
            .iter()
            .copied()
            .chain(new)
            .filter(|i| rs_replicas(&self.owned[*i]) > 0)
            .collect();
        let total: i32 = active.iter().map(|i| rs_replicas(&self.owned[*i])).sum();
        let allowed = if want > 0 {
            want + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - total;
        let by_size = |a: &usize, b: &usize, newer_first: bool| {
            let (ra, rb) = (&self.owned[*a], &self.owned[*b]);
            rs_replicas(rb)
                .cmp(&rs_replicas(ra))
                .then_with(|| match newer_first {
                    true => creation_order(rb, ra),
                    false => creation_order(ra, rb),
                })
        };
        let operation = match to_add.cmp(&0) {
            Ordering::Greater => {
                active.sort_by(|a, b| by_size(a, b, true));
                "up"
            }
            Ordering::Less => {
                active.sort_by(|a, b| by_size(a, b, false));
                "down"
            }
            Ordering::Equal => "",
        };
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::with_capacity(active.len());
        for i in &active {
            let rs = &self.owned[*i];
            if to_add != 0 {
                let p = proportion(rs, &self.d, to_add, added);
                sizes.push(rs_replicas(rs) + p);
                added += p;
            } else {
                sizes.push(rs_replicas(rs));
            }
        }
        for (n, i) in active.iter().enumerate() {
            let mut size = sizes[n];
            if n == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale_replica_set(*i, size, operation);
        }
    }

    /// Upstream `scaleReplicaSetAndRecordEvent`.
    fn scale_and_record(&mut self, i: usize, new_scale: i32) -> bool {
        let current = rs_replicas(&self.owned[i]);
        if current == new_scale {
            return false;
        }
        let operation = if current < new_scale { "up" } else { "down" };
        self.scale_replica_set(i, new_scale, operation)
    }

    /// Upstream `scaleReplicaSet`: sets the size and the desired/max annotations; the
    /// `ScalingReplicaSet` Event says `Scaled <up|down> replica set <rs> from <a> to <b>`.
    fn scale_replica_set(&mut self, i: usize, new_scale: i32, operation: &str) -> bool {
        let want = replicas(&self.d);
        let max = want + max_surge(&self.d);
        let rs = &self.owned[i];
        let old_scale = rs_replicas(rs);
        let size_changed = old_scale != new_scale;
        if !size_changed && !replicas_annotations_need_update(rs, want, max) {
            return false;
        }
        let mut copy = rs.clone();
        set_rs_replicas(&mut copy, new_scale);
        set_replicas_annotations(&mut copy, want, max);
        let event = size_changed.then(|| {
            format!(
                "Scaled {operation} replica set {} from {old_scale} to {new_scale}",
                name_of(&copy)
            )
        });
        self.owned[i] = copy.clone();
        self.plan.steps.push(Step::Update {
            replica_set: copy,
            event,
        });
        size_changed
    }

    /// Upstream `rolloutRolling`.
    fn rollout_rolling(&mut self) {
        let (new, old) = self.replica_sets_and_sync_revision(true);
        let Some(new) = new else {
            return;
        };
        if self.reconcile_new_replica_set(new) {
            self.sync_rollout_status(Some(new), &old);
            return;
        }
        let active_old: Vec<usize> = old
            .iter()
            .copied()
            .filter(|i| rs_replicas(&self.owned[*i]) > 0)
            .collect();
        if self.reconcile_old_replica_sets(&old, &active_old, new) {
            self.sync_rollout_status(Some(new), &old);
            return;
        }
        if deployment_complete(&self.d, &self.status()) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(Some(new), &old);
    }

    /// Upstream `reconcileNewReplicaSet`: scale the new ReplicaSet up within max surge (or
    /// down to `spec.replicas`).
    fn reconcile_new_replica_set(&mut self, new: usize) -> bool {
        let want = replicas(&self.d);
        let current = rs_replicas(&self.owned[new]);
        if current == want {
            return false;
        }
        if current > want {
            return self.scale_and_record(new, want);
        }
        let all: Vec<ReplicaSet> = self.owned.clone();
        let count = new_rs_new_replicas(&self.d, &all, &self.owned[new]);
        self.scale_and_record(new, count)
    }

    /// Upstream `reconcileOldReplicaSets`: scale old ReplicaSets down as far as max
    /// unavailable allows, unhealthy replicas first.
    fn reconcile_old_replica_sets(
        &mut self,
        old: &[usize],
        active_old: &[usize],
        new: usize,
    ) -> bool {
        let sum = |s: &Self, idx: &[usize]| -> i32 {
            idx.iter().map(|i| rs_replicas(&s.owned[*i])).sum()
        };
        if sum(self, active_old) == 0 {
            return false;
        }
        let all: Vec<usize> = old.iter().copied().chain([new]).collect();
        let all_pods = sum(self, &all);
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let new_rs = &self.owned[new];
        let new_unavailable = rs_replicas(new_rs) - available_replicas(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        let cleaned = self.cleanup_unhealthy_replicas(active_old, max_scaled_down);
        let scaled = self.scale_down_old_for_rolling_update(&all, active_old);
        cleaned + scaled > 0
    }

    fn oldest_first(&self, idx: &[usize]) -> Vec<usize> {
        let mut sorted = idx.to_vec();
        sorted.sort_by(|a, b| creation_order(&self.owned[*a], &self.owned[*b]));
        sorted
    }

    /// Upstream `cleanupUnhealthyReplicas`: old ReplicaSets lose their unavailable
    /// replicas first, oldest first, at most `max` in all.
    fn cleanup_unhealthy_replicas(&mut self, old: &[usize], max: i32) -> i32 {
        let mut total = 0;
        for i in self.oldest_first(old) {
            if total >= max {
                break;
            }
            let rs = &self.owned[i];
            let size = rs_replicas(rs);
            let available = available_replicas(rs);
            if size == 0 || size == available {
                continue;
            }
            let scaled = (max - total).min(size - available);
            self.scale_and_record(i, size - scaled);
            total += scaled;
        }
        total
    }

    /// Upstream `scaleDownOldReplicaSetsForRollingUpdate`: scale old ReplicaSets down by
    /// as many available pods as exceed the minimum, oldest first.
    fn scale_down_old_for_rolling_update(&mut self, all: &[usize], old: &[usize]) -> i32 {
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let available: i32 = all
            .iter()
            .map(|i| available_replicas(&self.owned[*i]))
            .sum();
        if available <= min_available {
            return 0;
        }
        let target = available - min_available;
        let mut total = 0;
        for i in self.oldest_first(old) {
            if total >= target {
                break;
            }
            let size = rs_replicas(&self.owned[i]);
            if size == 0 {
                continue;
            }
            let scale_down = size.min(target - total);
            self.scale_and_record(i, size - scale_down);
            total += scale_down;
        }
        total
    }

    /// Upstream `rolloutRecreate`: old ReplicaSets to zero, wait for their pods to be gone,
    /// then the new ReplicaSet to full size.
    fn rollout_recreate(&mut self, pod_map: &[(&str, &Pod)]) {
        let (mut new, mut old) = self.replica_sets_and_sync_revision(false);
        let mut scaled_down = false;
        for i in old.clone() {
            if rs_replicas(&self.owned[i]) > 0 {
                scaled_down |= self.scale_and_record(i, 0);
            }
        }
        if scaled_down {
            self.sync_rollout_status(new, &old);
            return;
        }
        if self.old_pods_running(new, &old, pod_map) {
            self.sync_rollout_status(new, &old);
            self.plan.requeue_after = Some(
                self.plan
                    .requeue_after
                    .map_or(OLD_PODS_RECHECK, |r| r.min(OLD_PODS_RECHECK)),
            );
            return;
        }
        if new.is_none() {
            (new, old) = self.replica_sets_and_sync_revision(true);
        }
        if let Some(n) = new {
            self.scale_and_record(n, replicas(&self.d));
        }
        if deployment_complete(&self.d, &self.status()) {
            self.cleanup(&old);
        }
        self.sync_rollout_status(new, &old);
    }

    /// Upstream `oldPodsRunning`: old ReplicaSets still report pods, or a pod of theirs is
    /// not yet terminal.
    fn old_pods_running(
        &self,
        new: Option<usize>,
        old: &[usize],
        pod_map: &[(&str, &Pod)],
    ) -> bool {
        let old_pods: i32 = old.iter().map(|i| actual_replicas(&self.owned[*i])).sum();
        if old_pods > 0 {
            return true;
        }
        let new_uid = new.and_then(|i| self.owned[i].metadata.uid.clone());
        pod_map
            .iter()
            .filter(|(owner, _)| new_uid.as_deref() != Some(*owner))
            .any(|(_, pod)| !matches!(crate::replicaset::pods::phase(pod), "Succeeded" | "Failed"))
    }

    /// Upstream `cleanupDeployment`: delete the oldest revisions beyond
    /// `revisionHistoryLimit` that are scaled to zero and settled.
    fn cleanup(&mut self, old: &[usize]) {
        let Some(limit) = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .filter(|l| *l != i32::MAX)
        else {
            return;
        };
        let mut cleanable: Vec<usize> = old
            .iter()
            .copied()
            .filter(|i| self.owned[*i].metadata.deletion_timestamp.is_none())
            .collect();
        let diff = i32::try_from(cleanable.len()).unwrap_or(i32::MAX) - limit;
        if diff <= 0 {
            return;
        }
        cleanable.sort_by(|a, b| {
            let (ra, rb) = (&self.owned[*a], &self.owned[*b]);
            let rev = |rs: &ReplicaSet| revision(rs.metadata.annotations.as_ref()).unwrap_or(0);
            rev(ra).cmp(&rev(rb)).then_with(|| creation_order(ra, rb))
        });
        for i in cleanable
            .into_iter()
            .take(usize::try_from(diff).unwrap_or(0))
        {
            let rs = &self.owned[i];
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if actual_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            self.plan.steps.push(Step::Delete { name: name_of(rs) });
        }
    }

    /// Upstream `calculateStatus`: counts summed over the ReplicaSets and the Available
    /// condition.
    fn calculate_status(&self, new: Option<usize>, old: &[usize]) -> DeploymentStatus {
        let all: Vec<&ReplicaSet> = old
            .iter()
            .chain(new.as_ref())
            .map(|i| &self.owned[*i])
            .collect();
        let available: i32 = all.iter().map(|rs| available_replicas(rs)).sum();
        let total: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
        let current = self.status();
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: Some(all.iter().map(|rs| actual_replicas(rs)).sum()),
            updated_replicas: Some(new.map_or(0, |i| actual_replicas(&self.owned[i]))),
            ready_replicas: Some(all.iter().map(|rs| ready_replicas(rs)).sum()),
            available_replicas: Some(available),
            unavailable_replicas: Some((total - available).max(0)),
            collision_count: current.collision_count,
            conditions: current.conditions.clone(),
            terminating_replicas: None,
        };
        let c = if available >= replicas(&self.d) - max_unavailable(&self.d) {
            new_condition(
                AVAILABLE,
                "True",
                MINIMUM_REPLICAS_AVAILABLE,
                "Deployment has minimum availability.",
                self.now,
            )
        } else {
            new_condition(
                AVAILABLE,
                "False",
                MINIMUM_REPLICAS_UNAVAILABLE,
                "Deployment does not have minimum availability.",
                self.now,
            )
        };
        set_condition(&mut status, c);
        normalize(status)
    }

    /// Upstream `syncRolloutStatus`: the status plus the Progressing condition (complete,
    /// progressing, or past its deadline) and the ReplicaSets' failures.
    fn sync_rollout_status(&mut self, new: Option<usize>, old: &[usize]) {
        let mut status = self.calculate_status(new, old);
        if !has_progress_deadline(&self.d) {
            remove_condition(&mut status, PROGRESSING);
        }
        let stored = self.status();
        let current = get_condition(&stored, PROGRESSING).cloned();
        let n = |v: Option<i32>| v.unwrap_or(0);
        let complete_rollout = n(status.replicas) == n(status.updated_replicas)
            && current.as_ref().and_then(|c| c.reason.as_deref())
                == Some(NEW_REPLICA_SET_AVAILABLE);
        let new_name = new.map(|i| name_of(&self.owned[i]));
        let deployment_name = self.d.metadata.name.clone().unwrap_or_default();
        let about = |what: &str| match &new_name {
            Some(rs) => format!("ReplicaSet {rs:?} {what}"),
            None => format!("Deployment {deployment_name:?} {what}"),
        };
        if has_progress_deadline(&self.d) && !complete_rollout {
            if deployment_complete(&self.d, &status) {
                let msg = about("has successfully progressed.");
                let c = new_condition(
                    PROGRESSING,
                    "True",
                    NEW_REPLICA_SET_AVAILABLE,
                    &msg,
                    self.now,
                );
                set_condition(&mut status, c);
            } else if deployment_progressing(&self.d, &status) {
                let msg = about("is progressing.");
                let mut c = new_condition(PROGRESSING, "True", REPLICA_SET_UPDATED, &msg, self.now);
                // Progress refreshes lastUpdateTime even when the reason stays the same,
                // which `set_condition` alone would not.
                if let Some(cur) = &current {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut status, PROGRESSING);
                }
                set_condition(&mut status, c);
            } else if deployment_timed_out(&self.d, &status, self.now) {
                let msg = about("has timed out progressing.");
                let c = new_condition(
                    PROGRESSING,
                    "False",
                    PROGRESS_DEADLINE_EXCEEDED,
                    &msg,
                    self.now,
                );
                set_condition(&mut status, c);
            }
        }
        match self.replica_failure(new, old) {
            Some(c) => set_condition(&mut status, c),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        let status = normalize(status);
        self.plan.requeue_after = self.requeue_stuck(&status);
        self.final_status = Some(status);
    }

    /// Upstream `getReplicaFailures`: the new ReplicaSet's `ReplicaFailure`, else an old
    /// one's, as a Deployment condition.
    fn replica_failure(&self, new: Option<usize>, old: &[usize]) -> Option<DeploymentCondition> {
        let failure = |i: &usize| {
            self.owned[*i]
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == REPLICA_FAILURE))
                .map(|c| DeploymentCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_update_time: c.last_transition_time.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
        };
        new.as_ref()
            .and_then(failure)
            .or_else(|| old.iter().chain(new.as_ref()).find_map(failure))
    }

    /// Upstream `requeueStuckDeployment`: a rollout without progress is looked at again
    /// when its deadline passes, so `ProgressDeadlineExceeded` is reported on time.
    fn requeue_stuck(&self, new_status: &DeploymentStatus) -> Option<Duration> {
        let stored = self.status();
        let current = get_condition(&stored, PROGRESSING)?;
        if !has_progress_deadline(&self.d)
            || deployment_complete(&self.d, new_status)
            || current.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED)
        {
            return None;
        }
        let deadline = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(0);
        let from = current.last_update_time.as_ref().map(from_time)?;
        let after = (from + chrono::Duration::seconds(i64::from(deadline)) - self.now)
            .to_std()
            .unwrap_or(Duration::ZERO);
        Some(if after < Duration::from_secs(1) {
            Duration::from_secs(1)
        } else {
            after + Duration::from_secs(1)
        })
    }

    fn finish(mut self, original: &Deployment) -> SyncPlan {
        let status = self
            .final_status
            .take()
            .unwrap_or_else(|| normalize(self.status()));
        let stored = normalize(original.status.clone().unwrap_or_default());
        self.plan.status_changed = status != stored;
        self.plan.status = status;
        if self.d.metadata.annotations != original.metadata.annotations {
            self.plan.annotations = self.d.metadata.annotations.clone();
        }
        self.plan
    }
}

/// Upstream `NewRSNewReplicas`: how big the new ReplicaSet may be now — for RollingUpdate
/// as far as max surge allows, for Recreate the full size.
pub fn new_rs_new_replicas(d: &Deployment, all: &[ReplicaSet], new: &ReplicaSet) -> i32 {
    let want = replicas(d);
    if !is_rolling_update(d) {
        return want;
    }
    let surge = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_surge.as_ref())
        .and_then(|v| scaled_value(v, want, true))
        .unwrap_or(0);
    let current: i32 = all.iter().map(rs_replicas).sum();
    let max_total = want + surge;
    let size = rs_replicas(new);
    if current >= max_total {
        return size;
    }
    size + (max_total - current).min(want - size)
}

/// Upstream `GetProportion`: this ReplicaSet's share of `to_add` (bounded by what is left
/// to hand out).
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// Upstream `getReplicaSetFraction`: the size this ReplicaSet would have at the
/// Deployment's new size, relative to the size it was given for (`max-replicas`), minus its
/// size now.
fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let want = replicas(d);
    let size = rs_replicas(rs);
    if want == 0 {
        return -size;
    }
    let deployment_replicas = want + max_surge(d);
    let annotated = max_replicas_annotation(rs)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let new_size = f64::from(size) * f64::from(deployment_replicas) / f64::from(annotated);
    // Go's `integer.RoundToInt32` rounds halves away from zero, as `f64::round` does.
    #[allow(clippy::cast_possible_truncation)]
    let rounded = new_size.round() as i32;
    rounded - size
}
