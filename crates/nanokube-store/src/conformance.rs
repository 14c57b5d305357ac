//! The conformance suite of the [`Store`] contract: what every backend must do, as
//! executable checks. Each check takes a store, works under its own key prefix and panics
//! (like an assertion) on the first deviation, so a backend's test file calls them one test
//! each, or all at once with [`run_all`].
//!
//! Checks assume nothing about revisions written by others except that no one compacts
//! concurrently; only [`empty_store_starts_at_revision_zero`] needs a fresh store.

use std::time::Duration;

use crate::{KeyValue, Result, Revision, Store, StoreError, WatchEvent, Watcher};

/// How long a check waits for a watch event before declaring it missing.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a check waits to be sure no (further) event comes.
const QUIET_PERIOD: Duration = Duration::from_millis(200);

/// Runs every check that works on a shared store (all but
/// [`empty_store_starts_at_revision_zero`]); the compaction checks run last, since they
/// compact the whole store.
pub async fn run_all(store: &dyn Store) {
    revisions_are_global_and_increasing(store).await;
    create_of_existing_key_is_refused(store).await;
    update_keeps_create_revision_and_bumps_mod_revision(store).await;
    update_with_stale_revision_conflicts_with_current_value(store).await;
    update_or_delete_of_missing_key_is_not_found(store).await;
    delete_with_stale_revision_conflicts(store).await;
    delete_returns_prev_and_removes_key(store).await;
    recreated_key_gets_new_create_revision(store).await;
    empty_and_binary_values_round_trip(store).await;
    list_is_ordered_and_paginated(store).await;
    list_and_count_respect_prefix_boundaries(store).await;
    watch_replays_history_then_streams_live_events(store).await;
    watch_from_current_revision_sees_only_live_events(store).await;
    watch_filters_by_prefix(store).await;
    watch_delete_event_carries_prev(store).await;
    concurrent_creates_get_distinct_revisions_and_are_all_visible(store).await;
    compaction_keeps_current_values(store).await;
    watch_from_compacted_revision_is_refused(store).await;
}

fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: unexpected error: {error}"),
    }
}

async fn next_event(watcher: &mut Watcher, what: &str) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, watcher.next()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("{what}: watch ended"),
        Err(_) => panic!("{what}: no event within {EVENT_TIMEOUT:?}"),
    }
}

async fn assert_quiet(watcher: &mut Watcher, what: &str) {
    if let Ok(Some(event)) = tokio::time::timeout(QUIET_PERIOD, watcher.next()).await {
        panic!("{what}: unexpected event {event:?}");
    }
}

fn put_of(event: &WatchEvent) -> (&KeyValue, Option<&KeyValue>) {
    match event {
        WatchEvent::Put { kv, prev } => (kv, prev.as_ref()),
        WatchEvent::Delete { .. } => panic!("expected a put, got {event:?}"),
    }
}

/// An empty store is at revision 0; the first write gets 1 and every write the next one.
pub async fn empty_store_starts_at_revision_zero(store: &dyn Store) {
    assert_eq!(ok(store.current_revision().await, "current_revision"), 0);
    assert_eq!(
        ok(store.compacted_revision().await, "compacted_revision"),
        0
    );
    let first = ok(store.create("/fresh/a", b"1".to_vec()).await, "create");
    assert_eq!((first.create_revision, first.mod_revision), (1, 1));
    let second = ok(store.update("/fresh/a", 1, b"2".to_vec()).await, "update");
    assert_eq!((second.create_revision, second.mod_revision), (1, 2));
    let (_, deleted_at) = ok(store.delete("/fresh/a", None).await, "delete");
    assert_eq!(deleted_at, 3);
    assert_eq!(ok(store.current_revision().await, "current_revision"), 3);
}

/// One counter for all keys: writes to different keys get increasing revisions, and the
/// store's revision is at least the last acknowledged one.
pub async fn revisions_are_global_and_increasing(store: &dyn Store) {
    let before = ok(store.current_revision().await, "current_revision");
    let a = ok(
        store.create("/conformance/global/a", b"a".to_vec()).await,
        "create a",
    );
    let b = ok(
        store.create("/conformance/global/b", b"b".to_vec()).await,
        "create b",
    );
    let a2 = ok(
        store
            .update("/conformance/global/a", a.mod_revision, b"a2".to_vec())
            .await,
        "update a",
    );
    let (_, deleted) = ok(
        store.delete("/conformance/global/b", None).await,
        "delete b",
    );
    assert!(before < a.mod_revision, "{before} < {}", a.mod_revision);
    assert_eq!(a.create_revision, a.mod_revision);
    assert!(a.mod_revision < b.mod_revision);
    assert!(b.mod_revision < a2.mod_revision);
    assert!(a2.mod_revision < deleted);
    assert!(ok(store.current_revision().await, "current_revision") >= deleted);
}

pub async fn create_of_existing_key_is_refused(store: &dyn Store) {
    let key = "/conformance/exists/a";
    let created = ok(store.create(key, b"first".to_vec()).await, "create");
    match store.create(key, b"second".to_vec()).await {
        Err(StoreError::AlreadyExists(k)) => assert_eq!(k, key),
        other => panic!("second create: expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(ok(store.get(key).await, "get"), Some(created));
}

pub async fn update_keeps_create_revision_and_bumps_mod_revision(store: &dyn Store) {
    let key = "/conformance/update/a";
    let created = ok(store.create(key, b"1".to_vec()).await, "create");
    let updated = ok(
        store.update(key, created.mod_revision, b"2".to_vec()).await,
        "update",
    );
    assert_eq!(updated.key, key);
    assert_eq!(updated.value, b"2");
    assert_eq!(updated.create_revision, created.create_revision);
    assert!(updated.mod_revision > created.mod_revision);
    assert_eq!(ok(store.get(key).await, "get"), Some(updated));
}

pub async fn update_with_stale_revision_conflicts_with_current_value(store: &dyn Store) {
    let key = "/conformance/cas/a";
    let created = ok(store.create(key, b"1".to_vec()).await, "create");
    let updated = ok(
        store.update(key, created.mod_revision, b"2".to_vec()).await,
        "update",
    );
    match store.update(key, created.mod_revision, b"3".to_vec()).await {
        Err(StoreError::Conflict { key: k, current }) => {
            assert_eq!(k, key);
            assert_eq!(current, Some(updated.clone()));
        }
        other => panic!("stale update: expected Conflict, got {other:?}"),
    }
    assert_eq!(ok(store.get(key).await, "get"), Some(updated));
}

pub async fn update_or_delete_of_missing_key_is_not_found(store: &dyn Store) {
    let key = "/conformance/missing/a";
    assert_eq!(ok(store.get(key).await, "get"), None);
    match store.update(key, 1, b"x".to_vec()).await {
        Err(StoreError::NotFound(k)) => assert_eq!(k, key),
        other => panic!("update of missing key: expected NotFound, got {other:?}"),
    }
    match store.delete(key, None).await {
        Err(StoreError::NotFound(k)) => assert_eq!(k, key),
        other => panic!("delete of missing key: expected NotFound, got {other:?}"),
    }
    match store.delete(key, Some(1)).await {
        Err(StoreError::NotFound(k)) => assert_eq!(k, key),
        other => panic!("conditional delete of missing key: expected NotFound, got {other:?}"),
    }
}

pub async fn delete_with_stale_revision_conflicts(store: &dyn Store) {
    let key = "/conformance/cas-delete/a";
    let created = ok(store.create(key, b"1".to_vec()).await, "create");
    let updated = ok(
        store.update(key, created.mod_revision, b"2".to_vec()).await,
        "update",
    );
    match store.delete(key, Some(created.mod_revision)).await {
        Err(StoreError::Conflict { key: k, current }) => {
            assert_eq!(k, key);
            assert_eq!(current, Some(updated.clone()));
        }
        other => panic!("stale delete: expected Conflict, got {other:?}"),
    }
    let (prev, _) = ok(
        store.delete(key, Some(updated.mod_revision)).await,
        "delete at current revision",
    );
    assert_eq!(prev, updated);
}

pub async fn delete_returns_prev_and_removes_key(store: &dyn Store) {
    let key = "/conformance/delete/a";
    let created = ok(store.create(key, b"1".to_vec()).await, "create");
    let (prev, revision) = ok(store.delete(key, None).await, "delete");
    assert_eq!(prev, created);
    assert!(revision > created.mod_revision);
    assert_eq!(ok(store.get(key).await, "get"), None);
    assert!(ok(store.current_revision().await, "current_revision") >= revision);
}

pub async fn recreated_key_gets_new_create_revision(store: &dyn Store) {
    let key = "/conformance/recreate/a";
    let first = ok(store.create(key, b"1".to_vec()).await, "create");
    ok(store.delete(key, None).await, "delete");
    let second = ok(store.create(key, b"2".to_vec()).await, "re-create");
    assert!(second.create_revision > first.create_revision);
    assert_eq!(second.create_revision, second.mod_revision);
}

/// Values are opaque bytes: empty and non-UTF-8 values come back exactly, from reads and
/// from watch history.
pub async fn empty_and_binary_values_round_trip(store: &dyn Store) {
    let prefix = "/conformance/values/";
    let start = ok(store.current_revision().await, "current_revision");
    let empty = ok(
        store.create(&format!("{prefix}empty"), Vec::new()).await,
        "create empty",
    );
    let binary = ok(
        store
            .create(&format!("{prefix}binary"), vec![0, 0xff, 0xfe, b'{'])
            .await,
        "create binary",
    );
    let emptied = ok(
        store
            .update(&binary.key, binary.mod_revision, Vec::new())
            .await,
        "update to empty",
    );
    assert_eq!(
        ok(store.get(&empty.key).await, "get empty"),
        Some(empty.clone())
    );
    assert_eq!(
        ok(store.get(&binary.key).await, "get binary"),
        Some(emptied.clone())
    );
    let mut watcher = ok(store.watch(prefix, start).await, "watch");
    assert_eq!(
        next_event(&mut watcher, "create empty").await,
        WatchEvent::Put {
            kv: empty,
            prev: None
        }
    );
    assert_eq!(
        next_event(&mut watcher, "create binary").await,
        WatchEvent::Put {
            kv: binary.clone(),
            prev: None
        }
    );
    assert_eq!(
        next_event(&mut watcher, "update to empty").await,
        WatchEvent::Put {
            kv: emptied,
            prev: Some(binary)
        }
    );
}

pub async fn list_is_ordered_and_paginated(store: &dyn Store) {
    let prefix = "/conformance/list/";
    // Created out of order: the list orders by key, not by revision.
    for name in ["d", "b", "a", "c"] {
        ok(
            store
                .create(&format!("{prefix}{name}"), name.as_bytes().to_vec())
                .await,
            "create",
        );
    }
    let keys = |items: &[KeyValue]| -> Vec<String> {
        items
            .iter()
            .map(|kv| kv.key.trim_start_matches(prefix).to_owned())
            .collect()
    };

    let all = ok(store.list(prefix, None, None).await, "list all");
    assert_eq!(keys(&all.items), ["a", "b", "c", "d"]);
    assert_eq!(all.remaining, 0);
    assert!(
        all.revision
            >= all
                .items
                .iter()
                .map(|kv| kv.mod_revision)
                .max()
                .unwrap_or(0)
    );
    assert_eq!(
        ok(store.list(prefix, None, Some(0)).await, "list limit 0").items,
        all.items
    );

    let first = ok(store.list(prefix, None, Some(2)).await, "first page");
    assert_eq!(keys(&first.items), ["a", "b"]);
    assert_eq!(first.remaining, 2);
    let second = ok(
        store
            .list(prefix, Some(&format!("{prefix}b")), Some(2))
            .await,
        "second page",
    );
    assert_eq!(keys(&second.items), ["c", "d"]);
    assert_eq!(second.remaining, 0);

    let from_gap = ok(
        store
            .list(prefix, Some(&format!("{prefix}bb")), Some(1))
            .await,
        "page after a key that does not exist",
    );
    assert_eq!(keys(&from_gap.items), ["c"]);
    assert_eq!(from_gap.remaining, 1);

    let past_end = ok(
        store.list(prefix, Some(&format!("{prefix}d")), None).await,
        "page after the last key",
    );
    assert!(past_end.items.is_empty());
    assert_eq!(past_end.remaining, 0);

    let empty = ok(
        store.list("/conformance/list-empty/", None, Some(10)).await,
        "list of empty prefix",
    );
    assert!(empty.items.is_empty());
    assert_eq!(empty.remaining, 0);
}

/// `/a/` must not see `/ab/`: prefixes are plain string prefixes, so callers end them with a
/// separator, and the store must not match more (or less) than that.
pub async fn list_and_count_respect_prefix_boundaries(store: &dyn Store) {
    let base = "/conformance/prefix";
    for key in ["/a/1", "/a/2", "/ab/1", "/a", "/b/1"] {
        ok(
            store.create(&format!("{base}{key}"), b"x".to_vec()).await,
            "create",
        );
    }
    let list = ok(
        store.list(&format!("{base}/a/"), None, None).await,
        "list /a/",
    );
    let keys: Vec<&str> = list.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [format!("{base}/a/1"), format!("{base}/a/2")]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(ok(store.count(&format!("{base}/a/")).await, "count /a/"), 2);
    assert_eq!(
        ok(store.count(&format!("{base}/ab/")).await, "count /ab/"),
        1
    );
    assert_eq!(ok(store.count(&format!("{base}/a")).await, "count /a"), 4);
    assert_eq!(ok(store.count(&format!("{base}/")).await, "count all"), 5);
    assert_eq!(
        ok(store.count(&format!("{base}/c/")).await, "count none"),
        0
    );
}

pub async fn watch_replays_history_then_streams_live_events(store: &dyn Store) {
    let prefix = "/conformance/watch-replay/";
    let start = ok(store.current_revision().await, "current_revision");
    let a = ok(
        store.create(&format!("{prefix}a"), b"1".to_vec()).await,
        "create a",
    );
    let b = ok(
        store.create(&format!("{prefix}b"), b"1".to_vec()).await,
        "create b",
    );
    let a2 = ok(
        store
            .update(&format!("{prefix}a"), a.mod_revision, b"2".to_vec())
            .await,
        "update a",
    );

    let mut watcher = ok(store.watch(prefix, start).await, "watch");
    let e1 = next_event(&mut watcher, "replayed create a").await;
    assert_eq!(
        e1,
        WatchEvent::Put {
            kv: a.clone(),
            prev: None
        }
    );
    let e2 = next_event(&mut watcher, "replayed create b").await;
    assert_eq!(
        e2,
        WatchEvent::Put {
            kv: b.clone(),
            prev: None
        }
    );
    let e3 = next_event(&mut watcher, "replayed update a").await;
    assert_eq!(
        e3,
        WatchEvent::Put {
            kv: a2.clone(),
            prev: Some(a.clone())
        }
    );

    // Resuming from the middle of the history skips what came before.
    let mut resumed = ok(store.watch(prefix, a.mod_revision).await, "watch from a");
    assert_eq!(
        next_event(&mut resumed, "resumed").await.revision(),
        b.mod_revision
    );

    let c = ok(
        store.create(&format!("{prefix}c"), b"1".to_vec()).await,
        "create c",
    );
    let live = next_event(&mut watcher, "live create c").await;
    assert_eq!(
        live,
        WatchEvent::Put {
            kv: c.clone(),
            prev: None
        }
    );
    assert_eq!(
        next_event(&mut resumed, "resumed: update a")
            .await
            .revision(),
        a2.mod_revision
    );
    assert_eq!(
        next_event(&mut resumed, "resumed: live create c")
            .await
            .revision(),
        c.mod_revision
    );
    assert_quiet(&mut watcher, "after live create c").await;
}

pub async fn watch_from_current_revision_sees_only_live_events(store: &dyn Store) {
    let prefix = "/conformance/watch-live/";
    ok(
        store.create(&format!("{prefix}old"), b"1".to_vec()).await,
        "create old",
    );
    let now = ok(store.current_revision().await, "current_revision");
    let mut watcher = ok(store.watch(prefix, now).await, "watch");
    assert_quiet(&mut watcher, "before any new write").await;
    let new = ok(
        store.create(&format!("{prefix}new"), b"1".to_vec()).await,
        "create new",
    );
    let event = next_event(&mut watcher, "live create").await;
    assert_eq!(
        event,
        WatchEvent::Put {
            kv: new,
            prev: None
        }
    );
}

pub async fn watch_filters_by_prefix(store: &dyn Store) {
    let base = "/conformance/watch-prefix";
    let start = ok(store.current_revision().await, "current_revision");
    ok(
        store
            .create(&format!("{base}/ab/before"), b"x".to_vec())
            .await,
        "create",
    );
    let mine_before = ok(
        store
            .create(&format!("{base}/a/before"), b"x".to_vec())
            .await,
        "create",
    );
    let mut watcher = ok(store.watch(&format!("{base}/a/"), start).await, "watch");
    ok(
        store
            .create(&format!("{base}/ab/after"), b"x".to_vec())
            .await,
        "create",
    );
    ok(
        store
            .create(&format!("{base}/b/after"), b"x".to_vec())
            .await,
        "create",
    );
    let mine_after = ok(
        store
            .create(&format!("{base}/a/after"), b"x".to_vec())
            .await,
        "create",
    );
    assert_eq!(
        next_event(&mut watcher, "replayed").await.key(),
        mine_before.key
    );
    assert_eq!(next_event(&mut watcher, "live").await.key(), mine_after.key);
    assert_quiet(&mut watcher, "other prefixes").await;
}

pub async fn watch_delete_event_carries_prev(store: &dyn Store) {
    let prefix = "/conformance/watch-delete/";
    let key = format!("{prefix}a");
    let created = ok(store.create(&key, b"1".to_vec()).await, "create");
    let updated = ok(
        store
            .update(&key, created.mod_revision, b"2".to_vec())
            .await,
        "update",
    );
    let mut live = ok(
        store.watch(prefix, updated.mod_revision).await,
        "watch before delete",
    );
    let (_, revision) = ok(store.delete(&key, None).await, "delete");
    let expected = WatchEvent::Delete {
        key: key.clone(),
        revision,
        prev: updated.clone(),
    };
    assert_eq!(next_event(&mut live, "live delete").await, expected);
    // The same event replayed from history.
    let mut replay = ok(
        store.watch(prefix, updated.mod_revision).await,
        "watch replay",
    );
    assert_eq!(next_event(&mut replay, "replayed delete").await, expected);
    // An update replays with the value it replaced.
    let mut from_create = ok(store.watch(prefix, created.mod_revision).await, "watch");
    let update = next_event(&mut from_create, "replayed update").await;
    let (kv, prev) = put_of(&update);
    assert_eq!((kv, prev), (&updated, Some(&created)));
    assert_eq!(
        next_event(&mut from_create, "replayed delete").await,
        expected
    );
}

/// Writes racing from many callers each get their own revision and none is lost.
pub async fn concurrent_creates_get_distinct_revisions_and_are_all_visible(store: &dyn Store) {
    const WRITERS: usize = 64;
    let prefix = "/conformance/concurrent/";
    let start = ok(store.current_revision().await, "current_revision");
    let mut watcher = ok(store.watch(prefix, start).await, "watch");
    let creates = (0..WRITERS).map(|i| {
        let key = format!("{prefix}{i:03}");
        async move { store.create(&key, vec![b'x'; 64]).await }
    });
    let created: Vec<KeyValue> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| ok(r, "concurrent create"))
        .collect();
    let mut revisions: Vec<Revision> = created.iter().map(|kv| kv.mod_revision).collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), WRITERS, "revisions must be distinct");
    assert!(revisions.iter().all(|&r| r > start));

    let listed = ok(store.list(prefix, None, None).await, "list");
    assert_eq!(listed.items.len(), WRITERS);
    assert_eq!(ok(store.count(prefix).await, "count"), WRITERS as i64);
    for kv in &created {
        assert_eq!(ok(store.get(&kv.key).await, "get").as_ref(), Some(kv));
    }
    // The watch sees every one of them, in revision order.
    let mut seen = Vec::with_capacity(WRITERS);
    for _ in 0..WRITERS {
        seen.push(
            next_event(&mut watcher, "concurrent create event")
                .await
                .revision(),
        );
    }
    assert_eq!(seen, revisions);
}

pub async fn compaction_keeps_current_values(store: &dyn Store) {
    let key = "/conformance/compact-values/a";
    let created = ok(store.create(key, b"1".to_vec()).await, "create");
    let updated = ok(
        store.update(key, created.mod_revision, b"2".to_vec()).await,
        "update",
    );
    let now = ok(store.current_revision().await, "current_revision");
    ok(store.compact(now).await, "compact");
    assert!(ok(store.compacted_revision().await, "compacted_revision") >= now);
    assert_eq!(ok(store.get(key).await, "get"), Some(updated.clone()));
    let listed = ok(
        store.list("/conformance/compact-values/", None, None).await,
        "list",
    );
    assert_eq!(listed.items, vec![updated.clone()]);
    // The counter goes on from where it was.
    let again = ok(
        store.update(key, updated.mod_revision, b"3".to_vec()).await,
        "update after compaction",
    );
    assert!(again.mod_revision > now);
    // Compacting again at an old revision changes nothing.
    ok(store.compact(created.mod_revision).await, "compact older");
    assert!(ok(store.compacted_revision().await, "compacted_revision") >= now);
}

/// A watch from a revision whose history is gone fails with Compacted (the API server's
/// 410 Gone), and from the compacted revision itself still works.
pub async fn watch_from_compacted_revision_is_refused(store: &dyn Store) {
    let prefix = "/conformance/watch-compacted/";
    let first = ok(
        store.create(&format!("{prefix}a"), b"1".to_vec()).await,
        "create a",
    );
    let second = ok(
        store.create(&format!("{prefix}b"), b"1".to_vec()).await,
        "create b",
    );
    ok(store.compact(second.mod_revision).await, "compact");
    let compacted = ok(store.compacted_revision().await, "compacted_revision");
    assert!(compacted >= second.mod_revision);
    match store.watch(prefix, first.mod_revision).await {
        Err(StoreError::Compacted {
            requested,
            compacted: reported,
        }) => {
            assert_eq!(requested, first.mod_revision);
            assert_eq!(reported, compacted);
        }
        Err(other) => panic!("watch before compaction: expected Compacted, got {other}"),
        Ok(_) => panic!("watch before compaction: expected Compacted, got a watcher"),
    }
    let mut watcher = ok(
        store.watch(prefix, compacted).await,
        "watch from compacted revision",
    );
    let third = ok(
        store.create(&format!("{prefix}c"), b"1".to_vec()).await,
        "create c",
    );
    assert_eq!(
        next_event(&mut watcher, "live after compaction")
            .await
            .revision(),
        third.mod_revision
    );
}
