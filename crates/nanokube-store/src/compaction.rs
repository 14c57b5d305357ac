//! Keeping the history window bounded: the API server's equivalent of etcd's periodic
//! compaction (`--auto-compaction-mode=revision`).

use std::sync::Arc;
use std::time::Duration;

use crate::{Revision, Store, StoreError};

/// Every `every`, compacts the history of `store` to `current - keep`, so watches can resume
/// from the last `keep` revisions and get Compacted (410 Gone) before them. The task ends when
/// the store reports [`StoreError::Closed`]; other errors are logged and retried next round.
pub fn spawn_auto_compaction(
    store: Arc<dyn Store>,
    keep: Revision,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    let keep = keep.max(0);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match compact_once(store.as_ref(), keep).await {
                Ok(()) => {}
                Err(StoreError::Closed) => return,
                Err(error) => tracing::warn!(%error, "automatic compaction failed"),
            }
        }
    })
}

async fn compact_once(store: &dyn Store, keep: Revision) -> crate::Result<()> {
    let target = store.current_revision().await?.saturating_sub(keep);
    if target > store.compacted_revision().await? {
        store.compact(target).await?;
        tracing::debug!(revision = target, "compacted store history");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn auto_compaction_keeps_the_last_revisions() {
        let store = Arc::new(MemoryStore::new());
        for i in 0..10 {
            store
                .create(&format!("/k/{i}"), b"v".to_vec())
                .await
                .expect("create");
        }
        let task = spawn_auto_compaction(store.clone(), 3, Duration::from_millis(10));
        for _ in 0..500 {
            if store.compacted_revision().await.expect("compacted") == 7 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.compacted_revision().await.expect("compacted"), 7);
        assert!(store.watch("/k/", 6).await.is_err());
        assert!(store.watch("/k/", 7).await.is_ok());
        task.abort();
    }
}
