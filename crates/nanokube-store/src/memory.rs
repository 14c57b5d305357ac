//! [`MemoryStore`]: the store held in process memory, for unit tests of the layers above.
//! Nothing survives the process; semantics are those of every other backend.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::watch::{WatchHub, Watcher};
use crate::write::{Write, delete_result, put_result};
use crate::{KeyValue, ListResult, Result, Revision, Store, StoreError, WatchEvent};

/// An in-memory [`Store`]: a sorted map of current values plus the event history since the
/// last compaction.
pub struct MemoryStore {
    state: Mutex<State>,
    hub: WatchHub,
}

#[derive(Default)]
struct State {
    current: BTreeMap<String, KeyValue>,
    /// Every event with revision > `compacted`, in revision order.
    history: VecDeque<WatchEvent>,
    revision: Revision,
    compacted: Revision,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore {
            state: Mutex::new(State::default()),
            hub: WatchHub::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each write mutates the state only after its checks passed, so a panic elsewhere
        // cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, write: Write) -> Result<WatchEvent> {
        let mut state = self.lock();
        let current = state.current.get(write.key()).cloned();
        let revision = state.revision + 1;
        let event = write.apply(current, revision)?;
        match &event {
            WatchEvent::Put { kv, .. } => {
                state.current.insert(kv.key.clone(), kv.clone());
            }
            WatchEvent::Delete { key, .. } => {
                state.current.remove(key);
            }
        }
        state.revision = revision;
        state.history.push_back(event.clone());
        // Published under the state lock so that watchers see revision order and a watch
        // started concurrently sees each event exactly once (history or live).
        self.hub.publish(std::slice::from_ref(&event));
        Ok(event)
    }
}

/// The keys under `prefix`, in order, strictly after `start_after` if given.
fn under_prefix<'a>(
    map: &'a BTreeMap<String, KeyValue>,
    prefix: &'a str,
    start_after: Option<&str>,
) -> impl Iterator<Item = &'a KeyValue> + 'a {
    let lower = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after.to_owned()),
        _ => Bound::Included(prefix.to_owned()),
    };
    map.range((lower, Bound::Unbounded))
        .map(|(_, kv)| kv)
        .take_while(move |kv| kv.key.starts_with(prefix))
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().current.get(key).cloned())
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult> {
        let state = self.lock();
        let limit = limit.filter(|&l| l > 0).unwrap_or(usize::MAX);
        let mut keys = under_prefix(&state.current, prefix, start_after);
        let items: Vec<KeyValue> = keys.by_ref().take(limit).cloned().collect();
        let remaining = i64::try_from(keys.count()).unwrap_or(i64::MAX);
        Ok(ListResult {
            items,
            revision: state.revision,
            remaining,
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let state = self.lock();
        let count = under_prefix(&state.current, prefix, None).count();
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        put_result(self.write(Write::Create {
            key: key.to_owned(),
            value,
        })?)
    }

    async fn update(
        &self,
        key: &str,
        expected_mod_revision: Revision,
        value: Vec<u8>,
    ) -> Result<KeyValue> {
        put_result(self.write(Write::Update {
            key: key.to_owned(),
            expected_mod_revision,
            value,
        })?)
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision)> {
        delete_result(self.write(Write::Delete {
            key: key.to_owned(),
            expected_mod_revision,
        })?)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher> {
        let after = after.max(0);
        let state = self.lock();
        if after < state.compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        let live = self.hub.subscribe(prefix);
        let start = state.history.partition_point(|e| e.revision() <= after);
        let history = state
            .history
            .range(start..)
            .filter(|e| e.key().starts_with(prefix))
            .cloned()
            .collect();
        Ok(Watcher::new(live, history, after, state.revision))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.lock();
        let revision = revision.min(state.revision);
        if revision <= state.compacted {
            return Ok(());
        }
        let keep_from = state.history.partition_point(|e| e.revision() <= revision);
        state.history.drain(..keep_from);
        state.compacted = revision;
        Ok(())
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.lock().compacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_store_ends_its_watchers() {
        let store = MemoryStore::new();
        let mut watcher = store.watch("/", 0).await.expect("watch");
        store.create("/a", b"1".to_vec()).await.expect("create");
        drop(store);
        assert_eq!(watcher.next().await.map(|e| e.revision()), Some(1));
        assert_eq!(watcher.next().await, None);
    }
}
