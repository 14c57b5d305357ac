//! The revisioned key-value store with watch behind nanokube's API server: the etcd model.
//!
//! Every write (create, update, delete) gets the next value of one global revision counter,
//! which the API server hands out as the object's `resourceVersion`. Updates and deletes can
//! compare-and-swap on a key's `mod_revision` (optimistic concurrency), and a [`Store::watch`]
//! resumes from any revision still in the history window, or fails with
//! [`StoreError::Compacted`] (the API server's `410 Gone`) once [`Store::compact`] dropped it.
//!
//! Where to start:
//! - [`Store`] is the trait the API server is written against; its docs are the contract.
//! - [`SqliteStore`] is the default, durable backend (WAL, group commit);
//!   [`MemoryStore`] is the in-memory one for unit tests.
//! - [`conformance`] holds the suite every backend must pass (`tests/conformance.rs` runs it).
//! - [`spawn_auto_compaction`] keeps the history window bounded.

mod compaction;
pub mod conformance;
mod memory;
mod sqlite;
mod watch;
mod write;

pub use compaction::spawn_auto_compaction;
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use watch::Watcher;

/// A point in the store's history: the global write counter. An empty store is at revision 0
/// and the first write gets revision 1.
pub type Revision = i64;

/// A key's current value with the revisions that created and last modified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the write that created the key (reset when it is deleted and re-created).
    pub create_revision: Revision,
    /// The revision of the write that last changed the key: its `resourceVersion`.
    pub mod_revision: Revision,
}

/// One change to one key, as delivered by a [`Watcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// A create or update; `prev` is the previous value for an update, None for a create.
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// A delete at `revision`; `prev` is the last value before deletion.
    Delete {
        key: String,
        revision: Revision,
        prev: KeyValue,
    },
}

impl WatchEvent {
    /// The revision of the write this event reports.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }

    /// The key the write changed.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { kv, .. } => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }
}

/// One page of a [`Store::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The store revision the page was read at (the list's `resourceVersion`).
    pub revision: Revision,
    /// Keys under the prefix after the last returned one; 0 when the list is complete
    /// (Kubernetes' `remainingItemCount`).
    pub remaining: i64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// CAS failure: the stored mod_revision differs from the expected one (current value
    /// included when the key exists).
    #[error("conflict on key {key}")]
    Conflict {
        key: String,
        current: Option<KeyValue>,
    },
    /// The requested revision is older than the compacted revision.
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("store closed")]
    Closed,
    #[error("storage backend error: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The revisioned key-value store with watch. Implementations: [`MemoryStore`],
/// [`SqliteStore`]; [`conformance::run_all`] is the executable form of this contract.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current value of `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys starting with `prefix`, in key order, strictly after `start_after` if given, at
    /// most `limit` if given (None or 0 = all).
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult>;

    /// How many keys start with `prefix`.
    async fn count(&self, prefix: &str) -> Result<i64>;

    /// Create-if-absent. Returns the stored KeyValue (create_revision == mod_revision == new
    /// revision); [`StoreError::AlreadyExists`] if the key exists.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Compare-and-swap on mod_revision. NotFound if absent, Conflict if mod_revision differs.
    async fn update(
        &self,
        key: &str,
        expected_mod_revision: Revision,
        value: Vec<u8>,
    ) -> Result<KeyValue>;

    /// Delete, optionally CAS on mod_revision. Returns the [`WatchEvent::Delete`] fields:
    /// (prev, delete revision).
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision)>;

    /// Every event on keys under `prefix` with revision > `after`, first the stored history
    /// then live, in revision order, no gaps, no duplicates. `after` older than the compacted
    /// revision → Err(Compacted). `after` == current revision → only live events. A negative
    /// `after` means "from the beginning" (0).
    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher>;

    /// The revision of the last acknowledged write (0 for an empty store).
    async fn current_revision(&self) -> Result<Revision>;

    /// Drop history at and below `revision` (watch from before it → Compacted). Current
    /// values are kept. Compacting at or below the compacted revision does nothing; a
    /// revision past the current one compacts to the current one.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision history was last compacted at (0 if never).
    async fn compacted_revision(&self) -> Result<Revision>;
}
