//! Runs the store conformance suite against every backend in this crate: one test per check
//! and backend, each on a fresh store, so a failure names the backend and the behaviour.

use nanokube_store::{MemoryStore, SqliteStore, Store, conformance};

/// A fresh SQLite store in a temporary directory, kept alive as long as the store.
struct TempSqlite {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

impl TempSqlite {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("state/nanokube.db")).expect("open");
        TempSqlite { store, _dir: dir }
    }
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $check() {
                    conformance::$check(&MemoryStore::new()).await;
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let temp = TempSqlite::new();
                    conformance::$check(&temp.store).await;
                }
            )*
        }
    };
}

conformance_tests!(
    empty_store_starts_at_revision_zero,
    revisions_are_global_and_increasing,
    create_of_existing_key_is_refused,
    update_keeps_create_revision_and_bumps_mod_revision,
    update_with_stale_revision_conflicts_with_current_value,
    update_or_delete_of_missing_key_is_not_found,
    delete_with_stale_revision_conflicts,
    delete_returns_prev_and_removes_key,
    recreated_key_gets_new_create_revision,
    empty_and_binary_values_round_trip,
    list_is_ordered_and_paginated,
    list_and_count_respect_prefix_boundaries,
    watch_replays_history_then_streams_live_events,
    watch_from_current_revision_sees_only_live_events,
    watch_filters_by_prefix,
    watch_delete_event_carries_prev,
    concurrent_creates_get_distinct_revisions_and_are_all_visible,
    compaction_keeps_current_values,
    watch_from_compacted_revision_is_refused,
);

/// The whole suite on one shared store, as another backend's test would call it.
#[tokio::test]
async fn memory_store_passes_the_whole_suite_on_one_store() {
    conformance::run_all(&MemoryStore::new()).await;
}

/// On a single-threaded runtime, to prove nothing in the backend needs a second worker.
#[tokio::test]
async fn sqlite_store_passes_the_whole_suite_on_one_store() {
    let temp = TempSqlite::new();
    conformance::run_all(&temp.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_reopened_keeps_values_history_and_revision_counter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nanokube.db");
    let (a, b, compacted) = {
        let store = SqliteStore::open(&path).expect("open");
        let a = store.create("/r/a", b"a".to_vec()).await.expect("create a");
        store.compact(a.mod_revision).await.expect("compact");
        let b = store.create("/r/b", b"b".to_vec()).await.expect("create b");
        let b = store
            .update("/r/b", b.mod_revision, b"b2".to_vec())
            .await
            .expect("update b");
        (a, b, store.compacted_revision().await.expect("compacted"))
    };
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        store.current_revision().await.expect("revision"),
        b.mod_revision
    );
    assert_eq!(
        store.compacted_revision().await.expect("compacted"),
        compacted
    );
    assert_eq!(store.get("/r/a").await.expect("get a"), Some(a.clone()));
    assert_eq!(store.get("/r/b").await.expect("get b"), Some(b.clone()));
    // History after the compaction survives; the counter continues.
    let mut watcher = store.watch("/r/", compacted).await.expect("watch");
    assert_eq!(
        watcher.next().await.map(|e| e.revision()),
        Some(b.create_revision)
    );
    assert_eq!(
        watcher.next().await.map(|e| e.revision()),
        Some(b.mod_revision)
    );
    assert!(store.watch("/r/", compacted - 1).await.is_err());
    let c = store.create("/r/c", b"c".to_vec()).await.expect("create c");
    assert_eq!(c.mod_revision, b.mod_revision + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_reopened_after_compacting_everything_keeps_the_counter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nanokube.db");
    {
        let store = SqliteStore::open(&path).expect("open");
        let kv = store.create("/r/a", b"a".to_vec()).await.expect("create");
        store
            .delete("/r/a", Some(kv.mod_revision))
            .await
            .expect("delete");
        store.compact(2).await.expect("compact");
    }
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.current_revision().await.expect("revision"), 2);
    let kv = store.create("/r/a", b"a".to_vec()).await.expect("create");
    assert_eq!(kv.create_revision, 3);
}
