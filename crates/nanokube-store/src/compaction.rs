//! Keeping the history window bounded the way kube-apiserver does with
//! `--etcd-compaction-interval`: every interval, compact to the revision that was current one
//! interval earlier, so clients always have at least one full interval to resume a watch or a
//! paginated list before they get `410 Expired`.

use std::sync::Arc;
use std::time::Duration;

use crate::{Revision, Store, StoreError};

/// Every `interval`, compacts the history of `store` to the revision seen at the previous
/// tick. The task ends when the store reports [`StoreError::Closed`]; other errors are logged
/// and retried next round. A zero interval disables compaction (no task is spawned).
pub fn spawn_auto_compaction(
    store: Arc<dyn Store>,
    interval: Duration,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous: Option<Revision> = None;
        loop {
            ticks.tick().await;
            match compact_once(store.as_ref(), previous).await {
                Ok(current) => previous = Some(current),
                Err(StoreError::Closed) => return,
                Err(error) => tracing::warn!(%error, "automatic compaction failed"),
            }
        }
    }))
}

/// Compacts to `previous` (when newer than what is already compacted) and returns the current
/// revision, the target of the next round.
async fn compact_once(store: &dyn Store, previous: Option<Revision>) -> crate::Result<Revision> {
    if let Some(target) = previous
        && target > store.compacted_revision().await?
    {
        store.compact(target).await?;
        tracing::debug!(revision = target, "compacted store history");
    }
    store.current_revision().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn compaction_drops_history_older_than_one_interval() {
        let store = Arc::new(MemoryStore::new());
        for i in 0..10 {
            store
                .create(&format!("/k/{i}"), b"v".to_vec())
                .await
                .expect("create");
        }
        // The first tick only records revision 10; the second compacts to it.
        let first = compact_once(store.as_ref(), None).await.expect("tick");
        assert_eq!(
            (first, store.compacted_revision().await.expect("compacted")),
            (10, 0)
        );
        store.create("/k/10", b"v".to_vec()).await.expect("create");
        let second = compact_once(store.as_ref(), Some(first))
            .await
            .expect("tick");
        assert_eq!(
            (second, store.compacted_revision().await.expect("compacted")),
            (11, 10)
        );
        assert!(store.watch("/k/", 9).await.is_err());
        assert!(store.watch("/k/", 10).await.is_ok());
    }

    #[tokio::test]
    async fn zero_interval_disables_compaction() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        assert!(spawn_auto_compaction(store, Duration::ZERO).is_none());
    }
}
