//! [`RbacCache`]: the RBAC objects of the store, kept current by a watch (the informers behind
//! upstream's RBAC authorizer), published as immutable [`Snapshot`]s.
//!
//! The watch covers the whole keyspace, not only the RBAC prefix, so the cache knows the store
//! revision it has applied even when the latest writes were to other kinds. That is what lets
//! [`RbacCache::catch_up`] promise read-your-writes: a RoleBinding acknowledged before a
//! request started is visible to that request's authorization.

use super::snapshot::{ObjectKind, Snapshot};
use futures::FutureExt;
use nanokube_registry::resource::ROLES;
use nanokube_store::{Revision, Store, StoreError, WatchEvent, Watcher};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// How long the cache waits before retrying a store that failed to list or watch.
const RETRY: Duration = Duration::from_secs(1);

/// The storage prefix shared by the four RBAC kinds (`/registry/rbac.authorization.k8s.io/`).
fn rbac_prefix() -> String {
    format!("/registry/{}/", ROLES.group)
}

/// The kind, namespace and name an RBAC storage key stands for; `None` for other keys.
fn parse_key<'k>(prefix: &str, key: &'k str) -> Option<(ObjectKind, &'k str, &'k str)> {
    let rest = key.strip_prefix(prefix)?;
    let (plural, rest) = rest.split_once('/')?;
    let kind = ObjectKind::from_plural(plural)?;
    if kind.namespaced() {
        let (ns, name) = rest.split_once('/')?;
        Some((kind, ns, name))
    } else {
        Some((kind, "", rest))
    }
}

/// Applies one stored value (or its absence) to `snap`; true when the key is an RBAC object.
fn apply_value(snap: &mut Snapshot, prefix: &str, key: &str, value: Option<&[u8]>) -> bool {
    let Some((kind, ns, name)) = parse_key(prefix, key) else {
        return false;
    };
    let parsed = value.and_then(|bytes| match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %e, "skipping malformed RBAC object");
            None
        }
    });
    snap.put(kind, ns, name, parsed.as_ref());
    true
}

fn apply_event(snap: &mut Snapshot, prefix: &str, event: &WatchEvent) -> bool {
    match event {
        WatchEvent::Put { kv, .. } => apply_value(snap, prefix, &kv.key, Some(&kv.value)),
        WatchEvent::Delete { key, .. } => apply_value(snap, prefix, key, None),
    }
}

/// A consistent list of every RBAC object, at the revision the list was read at.
async fn load(store: &dyn Store, prefix: &str) -> Result<Snapshot, StoreError> {
    let list = store.list(prefix, None, None).await?;
    let mut snap = Snapshot::default();
    for kv in &list.items {
        apply_value(&mut snap, prefix, &kv.key, Some(&kv.value));
    }
    snap.set_revision(list.revision);
    Ok(snap)
}

/// Keeps a [`Snapshot`] of the store's RBAC objects current: an initial list, then a watch
/// from that revision, re-listing when the watch cannot resume (compacted history).
pub struct RbacCache {
    store: Arc<dyn Store>,
    current: RwLock<Arc<Snapshot>>,
    /// The store revision the published snapshot reflects.
    applied: watch::Sender<Revision>,
    task: OnceLock<AbortHandle>,
}

impl RbacCache {
    /// Loads the RBAC objects and starts following the store; returns once the first snapshot
    /// is published.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let prefix = rbac_prefix();
        let snapshot = load(&*store, &prefix).await?;
        let watcher = store.watch("", snapshot.revision()).await?;
        let (applied, _) = watch::channel(snapshot.revision());
        let cache = Arc::new(RbacCache {
            store: store.clone(),
            current: RwLock::new(Arc::new(snapshot.clone())),
            applied,
            task: OnceLock::new(),
        });
        let follow = tokio::spawn(follow(
            Arc::downgrade(&cache),
            store,
            prefix,
            snapshot,
            watcher,
        ));
        // Only this function sets it, once.
        let _ = cache.task.set(follow.abort_handle());
        Ok(cache)
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The store revision the current snapshot reflects.
    pub fn applied_revision(&self) -> Revision {
        *self.applied.borrow()
    }

    /// Whether the store has acknowledged writes the cache has not applied yet.
    pub async fn is_behind(&self) -> bool {
        match self.store.current_revision().await {
            Ok(current) => current > self.applied_revision(),
            Err(_) => false,
        }
    }

    /// Waits, at most `timeout`, until the cache has applied the store's current revision, so
    /// that a write acknowledged before the call is visible in [`RbacCache::snapshot`].
    pub async fn catch_up(&self, timeout: Duration) {
        let wait = async {
            let Ok(target) = self.store.current_revision().await else {
                return;
            };
            let mut applied = self.applied.subscribe();
            // An error means the follower is gone; nothing more will be applied.
            let _ = applied.wait_for(|r| *r >= target).await;
        };
        if tokio::time::timeout(timeout, wait).await.is_err() {
            tracing::debug!(
                applied = self.applied_revision(),
                "RBAC cache did not catch up in time"
            );
        }
    }

    fn publish(&self, snapshot: Option<Snapshot>, revision: Revision) {
        if let Some(s) = snapshot {
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(s);
        }
        // Published after the snapshot, so a waiter woken here sees it.
        self.applied.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
    }
}

impl Drop for RbacCache {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

/// The follower task: applies watch events to its working snapshot and publishes it after
/// every burst; resumes the watch (or re-lists) when it ends. Holds the cache weakly, so it
/// stops when the cache is dropped.
async fn follow(
    cache: Weak<RbacCache>,
    store: Arc<dyn Store>,
    prefix: String,
    mut working: Snapshot,
    mut watcher: Watcher,
) {
    loop {
        let Some(first) = watcher.next().await else {
            match resume(&cache, &*store, &prefix, &mut working).await {
                Some(w) => watcher = w,
                None => return,
            }
            continue;
        };
        let mut changed = apply_event(&mut working, &prefix, &first);
        let mut revision = first.revision();
        // Take whatever is already buffered, so a burst of writes publishes once.
        while let Some(Some(event)) = watcher.next().now_or_never() {
            changed |= apply_event(&mut working, &prefix, &event);
            revision = event.revision();
        }
        working.set_revision(revision);
        let Some(cache) = cache.upgrade() else {
            return;
        };
        cache.publish(changed.then(|| working.clone()), revision);
    }
}

/// A new watch from the working snapshot's revision, or — when that history is compacted —
/// a fresh list (published) and a watch from there. `None` when the cache or store is gone.
async fn resume(
    cache: &Weak<RbacCache>,
    store: &dyn Store,
    prefix: &str,
    working: &mut Snapshot,
) -> Option<Watcher> {
    loop {
        if cache.strong_count() == 0 {
            return None;
        }
        match store.watch("", working.revision()).await {
            Ok(w) => return Some(w),
            Err(StoreError::Closed) => return None,
            Err(StoreError::Compacted { .. }) => match load(store, prefix).await {
                Ok(fresh) => {
                    *working = fresh;
                    let cache = cache.upgrade()?;
                    cache.publish(Some(working.clone()), working.revision());
                }
                Err(StoreError::Closed) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "re-listing RBAC objects failed");
                    tokio::time::sleep(RETRY).await;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "re-watching RBAC objects failed");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Decision;
    use crate::rbac::snapshot::tests::{attrs, job_robot, sa_user};
    use nanokube_store::MemoryStore;
    use serde_json::{Value, json};

    async fn put(store: &MemoryStore, key: &str, obj: &Value) {
        store
            .create(key, serde_json::to_vec(obj).expect("serializable"))
            .await
            .expect("created");
    }

    #[test]
    fn storage_keys_name_kind_namespace_and_name() {
        let p = rbac_prefix();
        assert_eq!(
            parse_key(
                &p,
                "/registry/rbac.authorization.k8s.io/roles/default/job-robot"
            ),
            Some((ObjectKind::Role, "default", "job-robot"))
        );
        assert_eq!(
            parse_key(
                &p,
                "/registry/rbac.authorization.k8s.io/clusterroles/system:node"
            ),
            Some((ObjectKind::ClusterRole, "", "system:node"))
        );
        assert_eq!(parse_key(&p, "/registry/pods/default/x"), None);
        assert_eq!(
            parse_key(&p, "/registry/rbac.authorization.k8s.io/roles/x"),
            None
        );
    }

    #[tokio::test]
    async fn cache_sees_a_new_rolebinding_after_catch_up() {
        let store = Arc::new(MemoryStore::new());
        let (role, binding) = job_robot();
        put(
            &store,
            "/registry/rbac.authorization.k8s.io/roles/default/job-robot",
            &role,
        )
        .await;
        put(
            &store,
            "/registry/namespaces/default",
            &json!({"metadata": {"name": "default"}}),
        )
        .await;
        // Something that is not JSON must not stop the cache.
        store
            .create(
                "/registry/rbac.authorization.k8s.io/roles/default/junk",
                b"{not json".to_vec(),
            )
            .await
            .expect("created");

        let cache = RbacCache::start(store.clone()).await.expect("started");
        assert_eq!(cache.applied_revision(), 3);
        let robot = sa_user("default", "job-robot");
        let create_jobs = attrs(&robot, "create", "batch", "jobs", "default");
        assert!(matches!(
            cache.snapshot().authorize(&create_jobs).0,
            Decision::Deny(_)
        ));

        put(
            &store,
            "/registry/rbac.authorization.k8s.io/rolebindings/default/job-robot",
            &binding,
        )
        .await;
        cache.catch_up(Duration::from_secs(2)).await;
        assert_eq!(cache.snapshot().authorize(&create_jobs).0, Decision::Allow);
        assert_eq!(cache.snapshot().revision(), 4);

        // Writes to other kinds advance the applied revision too.
        put(&store, "/registry/pods/default/p", &json!({})).await;
        cache.catch_up(Duration::from_secs(2)).await;
        assert_eq!(cache.applied_revision(), 5);
        assert!(!cache.is_behind().await);

        store
            .delete(
                "/registry/rbac.authorization.k8s.io/rolebindings/default/job-robot",
                None,
            )
            .await
            .expect("deleted");
        cache.catch_up(Duration::from_secs(2)).await;
        assert!(matches!(
            cache.snapshot().authorize(&create_jobs).0,
            Decision::Deny(_)
        ));
    }

    #[tokio::test]
    async fn catch_up_is_bounded_when_nothing_arrives() {
        let store = Arc::new(MemoryStore::new());
        let cache = RbacCache::start(store.clone()).await.expect("started");
        // Stop the follower: the cache can no longer advance.
        if let Some(t) = cache.task.get() {
            t.abort();
        }
        tokio::task::yield_now().await;
        put(&store, "/registry/pods/default/p", &json!({})).await;
        let started = std::time::Instant::now();
        cache.catch_up(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(cache.is_behind().await);
    }
}
