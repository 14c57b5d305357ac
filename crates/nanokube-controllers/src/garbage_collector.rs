//! The garbage collector (upstream `pkg/controller/garbagecollector/`): it keeps a graph of
//! every object's `ownerReferences` from metadata-only watches and
//!
//! * deletes a dependent whose owners are all gone (`attemptToDeleteItem`), or strips the
//!   references to the gone ones when some owner remains;
//! * finishes a foreground deletion: an owner holding the `foregroundDeletion` finalizer has its
//!   dependents deleted and loses the finalizer once no dependent with
//!   `blockOwnerDeletion: true` is left (`processDeletingDependentsItem`);
//! * finishes an orphaning deletion: an owner holding the `orphan` finalizer has its reference
//!   removed from every dependent, then loses the finalizer (`orphanDependents`).
//!
//! Decisions are pure functions ([`classify_owners`], [`decide_dependent`],
//! [`blocking_dependents`], [`without_owners`], [`without_finalizer`]); [`run`] is the I/O
//! shell around them. Before deleting anything the collector re-reads the dependent and every
//! owner from the API server, so a graph that lags behind never causes a wrong delete.

use crate::{RETRY, is_not_found};
use futures::StreamExt;
use futures::stream::{BoxStream, select_all};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use nanokube_registry::resource::{self, ResourceInfo};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// Errors of one garbage-collection step; the step is retried after a short delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("encoding a patch failed: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The finalizer a `propagationPolicy=Foreground` delete puts on the owner.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer a `propagationPolicy=Orphan` delete puts on the owner.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// How often an owner waiting for its dependents is looked at again even without an event.
const FOREGROUND_RECHECK: Duration = Duration::from_secs(5);

/// The kinds the collector watches: every stored resource once (one served version per
/// storage), except events, which neither own nor are owned in practice and are by far the
/// most frequently written kind.
pub fn tracked_resources() -> Vec<&'static ResourceInfo> {
    resource::ALL
        .iter()
        .copied()
        .filter(|r| !r.is_review())
        .filter(|r| r.version == r.storage_version)
        .filter(|r| r.kind != "Event")
        .collect()
}

/// The `ApiResource` a dynamic kube-rs `Api` needs for a served resource.
pub(crate) fn api_resource(r: &ResourceInfo) -> ApiResource {
    ApiResource {
        group: r.group.to_string(),
        version: r.version.to_string(),
        api_version: r.api_version(),
        kind: r.kind.to_string(),
        plural: r.plural.to_string(),
    }
}

/// A dynamic `Api` for `r`, scoped to `namespace` when the resource is namespaced.
pub(crate) fn dynamic_api(
    client: &kube::Client,
    r: &ResourceInfo,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let ar = api_resource(r);
    match namespace {
        Some(ns) if r.namespaced => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    }
}

/// What a live lookup of one owner reference found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists with the referenced UID and is not being deleted in the foreground.
    Present,
    /// Not found, or found with another UID (a re-created namesake does not adopt).
    Absent,
    /// The owner exists and is being deleted in the foreground (`foregroundDeletion`).
    WaitingForDependents,
    /// The reference cannot be resolved (unknown kind, or a cluster-scoped dependent naming a
    /// namespaced owner); upstream never collects such a dependent.
    Unresolvable,
}

/// A dependent's owner references, split the way upstream's `classifyReferences` does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Owners {
    /// Owners that exist (or cannot be proven gone) and are not waiting on dependents.
    pub solid: Vec<OwnerReference>,
    /// Owners that are gone.
    pub dangling: Vec<OwnerReference>,
    /// Owners being deleted in the foreground.
    pub waiting: Vec<OwnerReference>,
}

/// Splits `refs` by the state `lookup` reports for each.
pub fn classify_owners(
    refs: &[OwnerReference],
    mut lookup: impl FnMut(&OwnerReference) -> OwnerState,
) -> Owners {
    let mut out = Owners::default();
    for r in refs {
        match lookup(r) {
            OwnerState::Present | OwnerState::Unresolvable => out.solid.push(r.clone()),
            OwnerState::Absent => out.dangling.push(r.clone()),
            OwnerState::WaitingForDependents => out.waiting.push(r.clone()),
        }
    }
    out
}

/// The propagation policy the collector deletes a dependent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl From<Propagation> for PropagationPolicy {
    fn from(p: Propagation) -> Self {
        match p {
            Propagation::Background => PropagationPolicy::Background,
            Propagation::Foreground => PropagationPolicy::Foreground,
            Propagation::Orphan => PropagationPolicy::Orphan,
        }
    }
}

/// What to do with one dependent.
#[derive(Clone, Debug, PartialEq)]
pub enum DependentAction {
    /// Nothing: every owner is there.
    Keep,
    /// Some owner remains: replace `metadata.ownerReferences` with this list (references to
    /// dangling owners and to owners deleting their dependents in the foreground dropped).
    SetOwnerReferences(Vec<OwnerReference>),
    /// No owner remains: delete the dependent.
    Delete(Propagation),
}

/// Upstream `attemptToDeleteItem` for a dependent that is not itself being deleted.
///
/// * Some owner is solid: keep the object, dropping its references to dangling owners and to
///   owners that wait for their dependents (otherwise a dependent that is not going away
///   would hold up that owner forever).
/// * No solid owner, some owner waiting in the foreground and the dependent has dependents of
///   its own: delete it in the foreground too, so the wait cascades down.
/// * Otherwise delete it with the policy its own finalizers ask for, Background by default.
pub fn decide_dependent(
    refs: &[OwnerReference],
    owners: &Owners,
    finalizers: &[String],
    has_dependents: bool,
) -> DependentAction {
    if refs.is_empty() {
        return DependentAction::Keep;
    }
    if !owners.solid.is_empty() {
        if owners.dangling.is_empty() && owners.waiting.is_empty() {
            return DependentAction::Keep;
        }
        let gone: Vec<&str> = owners
            .dangling
            .iter()
            .chain(&owners.waiting)
            .map(|o| o.uid.as_str())
            .collect();
        let kept: Vec<OwnerReference> = refs
            .iter()
            .filter(|r| !gone.contains(&r.uid.as_str()))
            .cloned()
            .collect();
        return if kept.as_slice() == refs {
            DependentAction::Keep
        } else {
            DependentAction::SetOwnerReferences(kept)
        };
    }
    if !owners.waiting.is_empty() && has_dependents {
        return DependentAction::Delete(Propagation::Foreground);
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    DependentAction::Delete(if has(ORPHAN_FINALIZER) {
        Propagation::Orphan
    } else if has(FOREGROUND_FINALIZER) {
        Propagation::Foreground
    } else {
        Propagation::Background
    })
}

/// The dependents that hold up a foreground deletion of `owner_uid`: those whose reference
/// to it has `blockOwnerDeletion: true`. The `foregroundDeletion` finalizer may go once this
/// is empty.
pub fn blocking_dependents<'a>(
    owner_uid: &str,
    dependents: impl IntoIterator<Item = &'a Node>,
) -> Vec<&'a Node> {
    dependents
        .into_iter()
        .filter(|d| {
            d.owners
                .iter()
                .any(|r| r.uid == owner_uid && r.block_owner_deletion == Some(true))
        })
        .collect()
}

/// `refs` without the references to `owner_uid`, or `None` when there is none to remove.
pub fn without_owners(refs: &[OwnerReference], owner_uid: &str) -> Option<Vec<OwnerReference>> {
    if !refs.iter().any(|r| r.uid == owner_uid) {
        return None;
    }
    Some(
        refs.iter()
            .filter(|r| r.uid != owner_uid)
            .cloned()
            .collect(),
    )
}

/// `finalizers` without `name`, or `None` when it is not there.
pub fn without_finalizer(finalizers: &[String], name: &str) -> Option<Vec<String>> {
    if !finalizers.iter().any(|f| f == name) {
        return None;
    }
    Some(finalizers.iter().filter(|f| *f != name).cloned().collect())
}

/// One object in the graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    /// Index into [`tracked_resources`].
    pub resource: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerReference>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

impl Node {
    fn from_meta(resource: usize, meta: &ObjectMeta) -> Option<Self> {
        Some(Node {
            resource,
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
            owners: meta.owner_references.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
        })
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }
}

/// The owner→dependents graph plus the work queue, behind one lock that is never held across
/// an await.
#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// Owner UID → UIDs of the objects that reference it.
    dependents: HashMap<String, HashSet<String>>,
    /// Per tracked resource, whether its initial list has been seen; the collector acts on
    /// foreground/orphan finalizers only once every list is in (a partial graph would show an
    /// owner with no dependents).
    synced: Vec<bool>,
    /// UIDs seen since the current (re)list of each resource began.
    relisting: HashMap<usize, HashSet<String>>,
    queue: VecDeque<String>,
    queued: HashSet<String>,
}

impl Graph {
    fn enqueue(&mut self, uid: &str) {
        if self.queued.insert(uid.to_string()) {
            self.queue.push_back(uid.to_string());
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<Node> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).cloned())
            .collect()
    }

    fn unlink(&mut self, node: &Node) {
        for o in &node.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(&node.uid);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
        }
    }

    /// Records an added or modified object and queues whatever it may affect.
    fn upsert(&mut self, node: Node) {
        let old = self.nodes.get(&node.uid).cloned();
        if old.as_ref() == Some(&node) {
            return;
        }
        if let Some(old) = &old {
            self.unlink(old);
        }
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(node.uid.clone());
        }
        let lifecycle_changed = old
            .as_ref()
            .is_none_or(|o| o.deleting != node.deleting || o.finalizers != node.finalizers);
        let owners_changed = old.as_ref().is_none_or(|o| o.owners != node.owners);
        // Owners (old and new) may be waiting on this object.
        let mut owners: Vec<String> = node.owners.iter().map(|o| o.uid.clone()).collect();
        if let Some(old) = &old {
            owners.extend(old.owners.iter().map(|o| o.uid.clone()));
        }
        let uid = node.uid.clone();
        self.nodes.insert(uid.clone(), node);
        if owners_changed || lifecycle_changed {
            self.enqueue(&uid);
            for o in owners {
                if self.nodes.contains_key(&o) {
                    self.enqueue(&o);
                }
            }
        }
        if lifecycle_changed {
            let deps: Vec<String> = self
                .dependents_of(&uid)
                .into_iter()
                .map(|d| d.uid)
                .collect();
            for d in deps {
                self.enqueue(&d);
            }
        }
    }

    /// Forgets a deleted object and queues its dependents (now possibly orphaned) and its
    /// owners (possibly waiting on it).
    fn remove(&mut self, uid: &str) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        self.unlink(&node);
        for o in &node.owners {
            if self.nodes.contains_key(&o.uid) {
                self.enqueue(&o.uid);
            }
        }
        let deps: Vec<String> = self.dependents_of(uid).into_iter().map(|d| d.uid).collect();
        for d in deps {
            self.enqueue(&d);
        }
    }
}

struct Collector {
    client: kube::Client,
    resources: Vec<&'static ResourceInfo>,
    graph: Mutex<Graph>,
    wake: Notify,
}

impl Collector {
    fn graph(&self) -> MutexGuard<'_, Graph> {
        // A panic while the lock was held cannot leave the graph half-updated in a way that
        // matters: every decision is re-checked against the API server.
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, uid: &str) {
        self.graph().enqueue(uid);
        self.wake.notify_one();
    }

    fn enqueue_later(self: &Arc<Self>, uid: String, after: Duration) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            this.enqueue(&uid);
        });
    }

    fn observe(&self, resource: usize, event: Event<PartialObjectMeta<DynamicObject>>) {
        let mut g = self.graph();
        match event {
            Event::Apply(obj) => {
                if let Some(n) = Node::from_meta(resource, &obj.metadata) {
                    g.upsert(n);
                }
            }
            Event::Delete(obj) => {
                if let Some(uid) = &obj.metadata.uid {
                    g.remove(uid);
                }
            }
            Event::Init => {
                g.relisting.insert(resource, HashSet::new());
            }
            Event::InitApply(obj) => {
                if let Some(n) = Node::from_meta(resource, &obj.metadata) {
                    g.relisting
                        .entry(resource)
                        .or_default()
                        .insert(n.uid.clone());
                    g.upsert(n);
                }
            }
            Event::InitDone => {
                let seen = g.relisting.remove(&resource).unwrap_or_default();
                let gone: Vec<String> = g
                    .nodes
                    .values()
                    .filter(|n| n.resource == resource && !seen.contains(&n.uid))
                    .map(|n| n.uid.clone())
                    .collect();
                for uid in gone {
                    g.remove(&uid);
                }
                if let Some(s) = g.synced.get_mut(resource) {
                    *s = true;
                }
            }
        }
        drop(g);
        self.wake.notify_one();
    }

    async fn watch(self: Arc<Self>) {
        let streams: Vec<BoxStream<'static, (usize, _)>> = self
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let api: Api<PartialObjectMeta<DynamicObject>> =
                    Api::all_with(self.client.clone(), &api_resource(r));
                watcher(api, watcher::Config::default())
                    .default_backoff()
                    .map(move |e| (i, e))
                    .boxed()
            })
            .collect();
        let mut all = select_all(streams);
        while let Some((i, event)) = all.next().await {
            match event {
                Ok(event) => self.observe(i, event),
                Err(e) => {
                    tracing::debug!(resource = self.resources[i].plural, error = %e, "garbage collector watch")
                }
            }
        }
    }

    async fn work(self: Arc<Self>) {
        loop {
            let next = {
                let mut g = self.graph();
                if g.synced.iter().all(|s| *s) {
                    let uid = g.queue.pop_front();
                    if let Some(uid) = &uid {
                        g.queued.remove(uid);
                    }
                    uid
                } else {
                    None
                }
            };
            let Some(uid) = next else {
                self.wake.notified().await;
                continue;
            };
            match self.process(&uid).await {
                Ok(None) => {}
                Ok(Some(after)) => self.enqueue_later(uid, after),
                Err(e) => {
                    tracing::debug!(uid = %uid, error = %e, "garbage collector");
                    self.enqueue_later(uid, RETRY);
                }
            }
        }
    }

    /// Handles one object; `Ok(Some(d))` asks to look again after `d`.
    async fn process(&self, uid: &str) -> Result<Option<Duration>, Error> {
        let Some(node) = self.graph().nodes.get(uid).cloned() else {
            return Ok(None);
        };
        if node.deleting {
            if node.has_finalizer(ORPHAN_FINALIZER) {
                self.orphan_dependents(&node).await?;
                return Ok(None);
            }
            if node.has_finalizer(FOREGROUND_FINALIZER) {
                return self.delete_dependents(&node).await;
            }
            return Ok(None);
        }
        if node.owners.is_empty() {
            return Ok(None);
        }
        self.attempt_to_delete(&node).await?;
        Ok(None)
    }

    fn api_for(&self, node: &Node) -> Api<DynamicObject> {
        dynamic_api(
            &self.client,
            self.resources[node.resource],
            node.namespace.as_deref(),
        )
    }

    /// Re-reads `node`; `None` when it is gone or was replaced by a namesake.
    async fn live(&self, node: &Node) -> Result<Option<ObjectMeta>, Error> {
        let meta = self.api_for(node).get_metadata_opt(&node.name).await?;
        Ok(meta
            .map(|m| m.metadata)
            .filter(|m| m.uid.as_deref() == Some(node.uid.as_str())))
    }

    /// Looks an owner reference of a dependent in `namespace` up on the API server.
    async fn owner_state(
        &self,
        r: &OwnerReference,
        namespace: Option<&str>,
    ) -> Result<OwnerState, Error> {
        let (group, version) = r
            .api_version
            .split_once('/')
            .unwrap_or(("", &r.api_version));
        let Some(info) = resource::find_kind(group, version, &r.kind).or_else(|| {
            resource::ALL
                .iter()
                .copied()
                .find(|i| i.group == group && i.kind == r.kind && !i.is_review())
        }) else {
            return Ok(OwnerState::Unresolvable);
        };
        if info.namespaced && namespace.is_none() {
            return Ok(OwnerState::Unresolvable);
        }
        let meta = dynamic_api(&self.client, info, namespace)
            .get_metadata_opt(&r.name)
            .await?;
        Ok(match meta {
            Some(m) if m.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                let waiting = m.metadata.deletion_timestamp.is_some()
                    && m.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND_FINALIZER);
                if waiting {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Present
                }
            }
            _ => OwnerState::Absent,
        })
    }

    async fn attempt_to_delete(&self, node: &Node) -> Result<(), Error> {
        let Some(meta) = self.live(node).await? else {
            return Ok(());
        };
        if meta.deletion_timestamp.is_some() {
            return Ok(());
        }
        let refs = meta.owner_references.clone().unwrap_or_default();
        let mut states = HashMap::new();
        for r in &refs {
            let s = self.owner_state(r, meta.namespace.as_deref()).await?;
            states.insert(r.uid.clone(), s);
        }
        let owners = classify_owners(&refs, |r| {
            states
                .get(&r.uid)
                .copied()
                .unwrap_or(OwnerState::Unresolvable)
        });
        let has_dependents = !self.graph().dependents_of(&node.uid).is_empty();
        let finalizers = meta.finalizers.clone().unwrap_or_default();
        match decide_dependent(&refs, &owners, &finalizers, has_dependents) {
            DependentAction::Keep => Ok(()),
            DependentAction::SetOwnerReferences(kept) => {
                tracing::debug!(name = %node.name, "garbage collector: removing dangling owner references");
                self.set_owner_references(node, &meta, &kept).await
            }
            DependentAction::Delete(policy) => {
                tracing::debug!(name = %node.name, ?policy, "garbage collector: deleting dependent");
                let dp = DeleteParams {
                    propagation_policy: Some(policy.into()),
                    preconditions: Some(Preconditions {
                        uid: Some(node.uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match self.api_for(node).delete(&node.name, &dp).await {
                    Ok(_) => Ok(()),
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Replaces `metadata.ownerReferences`, pinned to the resourceVersion that was decided on
    /// (a conflict is retried with fresh data).
    async fn set_owner_references(
        &self,
        node: &Node,
        meta: &ObjectMeta,
        refs: &[OwnerReference],
    ) -> Result<(), Error> {
        let value = if refs.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(refs)?
        };
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": meta.resource_version,
            "ownerReferences": value,
        }});
        self.patch_meta(node, &patch).await
    }

    async fn patch_meta(&self, node: &Node, patch: &serde_json::Value) -> Result<(), Error> {
        match self
            .api_for(node)
            .patch_metadata(&node.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes finalizer `name` from the owner, pinned to the resourceVersion read.
    async fn remove_finalizer(&self, node: &Node, name: &str) -> Result<(), Error> {
        let Some(meta) = self.live(node).await? else {
            return Ok(());
        };
        let current = meta.finalizers.clone().unwrap_or_default();
        let Some(rest) = without_finalizer(&current, name) else {
            return Ok(());
        };
        tracing::debug!(name = %node.name, finalizer = name, "garbage collector: removing finalizer");
        let value = if rest.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(rest)?
        };
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": meta.resource_version,
            "finalizers": value,
        }});
        self.patch_meta(node, &patch).await
    }

    /// Foreground deletion of `owner`: have every dependent deleted, and drop the finalizer
    /// once none with `blockOwnerDeletion` is left.
    async fn delete_dependents(&self, owner: &Node) -> Result<Option<Duration>, Error> {
        let dependents = self.graph().dependents_of(&owner.uid);
        if blocking_dependents(&owner.uid, &dependents).is_empty() {
            self.remove_finalizer(owner, FOREGROUND_FINALIZER).await?;
            return Ok(None);
        }
        // Each dependent, looked at, finds this owner waiting and deletes itself (or drops
        // its reference when another owner keeps it).
        for d in dependents.iter().filter(|d| !d.deleting) {
            self.enqueue(&d.uid);
        }
        Ok(Some(FOREGROUND_RECHECK))
    }

    /// Orphaning deletion of `owner`: strip its reference from every dependent, then drop the
    /// finalizer.
    async fn orphan_dependents(&self, owner: &Node) -> Result<(), Error> {
        let dependents = self.graph().dependents_of(&owner.uid);
        for d in &dependents {
            let Some(meta) = self.live(d).await? else {
                continue;
            };
            let refs = meta.owner_references.clone().unwrap_or_default();
            if let Some(rest) = without_owners(&refs, &owner.uid) {
                self.set_owner_references(d, &meta, &rest).await?;
            }
        }
        self.remove_finalizer(owner, ORPHAN_FINALIZER).await
    }
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client) {
    let resources = tracked_resources();
    let graph = Graph {
        synced: vec![false; resources.len()],
        ..Default::default()
    };
    let collector = Arc::new(Collector {
        client,
        resources,
        graph: Mutex::new(graph),
        wake: Notify::new(),
    });
    tokio::join!(
        Arc::clone(&collector).watch(),
        Arc::clone(&collector).work()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            name: format!("job-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn states<'a>(
        table: &'a [(&'a str, OwnerState)],
    ) -> impl FnMut(&OwnerReference) -> OwnerState + 'a {
        move |r| {
            table
                .iter()
                .find(|(u, _)| *u == r.uid)
                .map_or(OwnerState::Absent, |(_, s)| *s)
        }
    }

    #[test]
    fn dependent_with_every_owner_gone_is_deleted_in_background() {
        let refs = vec![owner("a", true), owner("b", false)];
        let owners = classify_owners(&refs, states(&[]));
        assert_eq!(owners.dangling.len(), 2);
        assert_eq!(
            decide_dependent(&refs, &owners, &[], false),
            DependentAction::Delete(Propagation::Background)
        );
    }

    #[test]
    fn dependent_with_a_remaining_owner_loses_only_the_dangling_reference() {
        let refs = vec![owner("a", true), owner("b", false)];
        let owners = classify_owners(&refs, states(&[("b", OwnerState::Present)]));
        assert_eq!(
            decide_dependent(&refs, &owners, &[], false),
            DependentAction::SetOwnerReferences(vec![owner("b", false)])
        );
    }

    #[test]
    fn dependent_with_all_owners_present_is_kept() {
        let refs = vec![owner("a", true)];
        let owners = classify_owners(&refs, states(&[("a", OwnerState::Present)]));
        assert_eq!(
            decide_dependent(&refs, &owners, &[], false),
            DependentAction::Keep
        );
        assert_eq!(
            decide_dependent(&[], &Owners::default(), &[], false),
            DependentAction::Keep
        );
    }

    #[test]
    fn unresolvable_owner_is_never_treated_as_gone() {
        let refs = vec![owner("a", true)];
        let owners = classify_owners(&refs, states(&[("a", OwnerState::Unresolvable)]));
        assert_eq!(
            decide_dependent(&refs, &owners, &[], false),
            DependentAction::Keep
        );
    }

    #[test]
    fn dependent_of_foreground_owner_is_deleted_cascading_when_it_has_dependents() {
        let refs = vec![owner("a", true)];
        let owners = classify_owners(&refs, states(&[("a", OwnerState::WaitingForDependents)]));
        assert_eq!(
            decide_dependent(&refs, &owners, &[], true),
            DependentAction::Delete(Propagation::Foreground)
        );
        assert_eq!(
            decide_dependent(&refs, &owners, &[], false),
            DependentAction::Delete(Propagation::Background)
        );
    }

    #[test]
    fn dependent_kept_by_another_owner_drops_the_foreground_owner() {
        let refs = vec![owner("a", true), owner("b", true)];
        let owners = classify_owners(
            &refs,
            states(&[
                ("a", OwnerState::WaitingForDependents),
                ("b", OwnerState::Present),
            ]),
        );
        assert_eq!(
            decide_dependent(&refs, &owners, &[], false),
            DependentAction::SetOwnerReferences(vec![owner("b", true)])
        );
    }

    #[test]
    fn dependent_own_finalizers_choose_the_policy() {
        let refs = vec![owner("a", false)];
        let owners = classify_owners(&refs, states(&[]));
        assert_eq!(
            decide_dependent(&refs, &owners, &[ORPHAN_FINALIZER.into()], false),
            DependentAction::Delete(Propagation::Orphan)
        );
        assert_eq!(
            decide_dependent(&refs, &owners, &[FOREGROUND_FINALIZER.into()], false),
            DependentAction::Delete(Propagation::Foreground)
        );
    }

    fn node(uid: &str, owners: Vec<OwnerReference>) -> Node {
        Node {
            name: uid.into(),
            uid: uid.into(),
            owners,
            ..Default::default()
        }
    }

    #[test]
    fn foreground_finalizer_waits_only_for_blocking_dependents() {
        let deps = vec![
            node("p1", vec![owner("job", false)]),
            node("p2", vec![owner("other", true)]),
        ];
        assert!(blocking_dependents("job", &deps).is_empty());
        let deps = vec![node("p1", vec![owner("other", false), owner("job", true)])];
        assert_eq!(blocking_dependents("job", &deps).len(), 1);
    }

    #[test]
    fn orphaning_strips_only_the_deleted_owner() {
        let refs = vec![owner("a", true), owner("b", false)];
        assert_eq!(without_owners(&refs, "a"), Some(vec![owner("b", false)]));
        assert_eq!(without_owners(&refs, "c"), None);
        assert_eq!(without_owners(&refs[..1], "a"), Some(vec![]));
    }

    #[test]
    fn finalizer_removal_keeps_the_others() {
        let f = vec!["orphan".to_string(), "example.com/x".to_string()];
        assert_eq!(
            without_finalizer(&f, ORPHAN_FINALIZER),
            Some(vec!["example.com/x".to_string()])
        );
        assert_eq!(without_finalizer(&f, FOREGROUND_FINALIZER), None);
    }

    #[test]
    fn graph_tracks_dependents_and_queues_them_when_the_owner_goes() {
        let mut g = Graph::default();
        g.upsert(node("job", vec![]));
        g.upsert(node("pod", vec![owner("job", true)]));
        assert_eq!(g.dependents_of("job").len(), 1);
        g.queue.clear();
        g.queued.clear();
        g.remove("job");
        assert_eq!(g.queue, VecDeque::from(vec!["pod".to_string()]));
        g.remove("pod");
        assert!(g.dependents.is_empty());
    }

    #[test]
    fn tracked_kinds_are_stored_once_and_skip_events_and_reviews() {
        let kinds: Vec<&str> = tracked_resources().iter().map(|r| r.plural).collect();
        for k in [
            "pods",
            "jobs",
            "cronjobs",
            "replicasets",
            "configmaps",
            "leases",
        ] {
            assert!(kinds.contains(&k), "{k}");
        }
        assert!(!kinds.contains(&"events"));
        assert!(!kinds.contains(&"tokenreviews"));
        assert_eq!(kinds.iter().filter(|k| **k == "cronjobs").count(), 1);
    }
}
