//! [`SqliteStore`]: the default backend, one SQLite file in WAL mode.
//!
//! Layout: `kv` holds the current value of every key, `log` one row per revision (the watch
//! history since the last compaction) and `meta` the current and compacted revisions, so the
//! counter survives restarts and compaction.
//!
//! Writes are group-committed: one writer thread owns the only write connection, takes every
//! queued request (up to [`MAX_BATCH`]) into one transaction, decides each under its own
//! savepoint (so a failed compare-and-swap or a rejected value fails only its own request),
//! commits once with `synchronous=FULL`, and only then publishes the events and answers the
//! callers: every acknowledged write is durable, and N concurrent writers cost one fsync.
//! Reads run on a small pool of separate connections on the blocking thread pool; WAL gives
//! them a consistent snapshot without waiting for the writer.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, Row, Statement};
use tokio::sync::oneshot;

use crate::watch::{WatchHub, Watcher};
use crate::write::{Write, delete_result, put_result};
use crate::{KeyValue, ListResult, Result, Revision, Store, StoreError, WatchEvent};

/// The most write requests committed in one transaction.
pub(crate) const MAX_BATCH: usize = 1000;
/// Idle read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a batch under load waits for more requests before committing.
const GATHER_WINDOW: Duration = Duration::from_millis(1);
/// A batch under load commits once no request arrived for this long.
const GATHER_IDLE: Duration = Duration::from_micros(150);

const SCHEMA: &str = "
BEGIN;
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    kind INTEGER NOT NULL,
    value BLOB,
    create_rev INTEGER,
    prev_value BLOB,
    prev_create_rev INTEGER,
    prev_mod_rev INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('current_revision', 0), ('compacted_revision', 0);
COMMIT;
";

const KIND_PUT: i64 = 0;
const KIND_DELETE: i64 = 1;
const LOG_COLUMNS: &str =
    "rev, key, kind, value, create_rev, prev_value, prev_create_rev, prev_mod_rev";

fn backend(error: impl Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// A durable [`Store`] in one SQLite file. Dropping it waits for the queued writes to commit
/// and ends every watcher.
pub struct SqliteStore {
    shared: Arc<Shared>,
    readers: Arc<ReadPool>,
    requests: Option<std_mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
}

/// State the writer thread publishes to the async side.
struct Shared {
    hub: WatchHub,
    revision: AtomicI64,
    compacted: AtomicI64,
    transactions: AtomicU64,
}

enum Request {
    Write(Write, oneshot::Sender<Result<WatchEvent>>),
    Compact(Revision, oneshot::Sender<Result<()>>),
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent directory) the store at `path`. Blocks
    /// briefly while the file is opened and the schema checked; call it at startup.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                backend(format_args!("creating directory {}: {e}", parent.display()))
            })?;
        }
        let shared = Arc::new(Shared {
            hub: WatchHub::new(),
            revision: AtomicI64::new(0),
            compacted: AtomicI64::new(0),
            transactions: AtomicU64::new(0),
        });
        let (requests, queue) = std_mpsc::channel();
        let (ready, opened) = std_mpsc::sync_channel(1);
        let writer = {
            let path = path.to_path_buf();
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("nanokube-store-writer".into())
                .spawn(move || run_writer(&path, &queue, shared, &ready))
                .map_err(|e| backend(format_args!("starting the writer thread: {e}")))?
        };
        match opened.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let _ = writer.join();
                return Err(error);
            }
            Err(_) => {
                let _ = writer.join();
                return Err(backend("the writer thread exited while opening the store"));
            }
        }
        let readers = Arc::new(ReadPool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        });
        // Fail at open, not at the first read, when readers cannot open the file.
        readers.checkin(readers.checkout()?);
        Ok(SqliteStore {
            shared,
            readers,
            requests: Some(requests),
            writer: Some(writer),
        })
    }

    /// How many write transactions the writer committed since open: with group commit this
    /// grows slower than the number of writes. For tests and metrics.
    pub fn committed_transactions(&self) -> u64 {
        self.shared.transactions.load(Ordering::Acquire)
    }

    async fn submit_write(&self, write: Write) -> Result<WatchEvent> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Write(write, reply))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    fn send(&self, request: Request) -> Result<()> {
        self.requests
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(request)
            .map_err(|_| StoreError::Closed)
    }

    /// Runs `read` on a pooled read connection on the blocking thread pool.
    async fn read<T, F>(&self, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = readers.checkout()?;
            let result = read(&conn);
            readers.checkin(conn);
            result
        })
        .await
        .map_err(|e| backend(format_args!("read task failed: {e}")))?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; joining makes
        // the file fully closed when drop returns (a reopen then sees everything).
        drop(self.requests.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The range of keys under a prefix, strictly after an optional key, as SQL.
struct KeyRange {
    lower: String,
    lower_inclusive: bool,
    /// Exclusive; None when every key past `lower` is under the prefix.
    upper: Option<String>,
}

impl KeyRange {
    fn new(prefix: &str, start_after: Option<&str>) -> Self {
        let (lower, lower_inclusive) = match start_after {
            Some(after) if after >= prefix => (after.to_owned(), false),
            _ => (prefix.to_owned(), true),
        };
        KeyRange {
            lower,
            lower_inclusive,
            upper: prefix_end(prefix),
        }
    }

    /// The condition on `key`, using the parameters `:lower` and `:upper`.
    fn condition(&self) -> String {
        let lower = if self.lower_inclusive { ">=" } else { ">" };
        match self.upper {
            Some(_) => format!("key {lower} :lower AND key < :upper"),
            None => format!("key {lower} :lower"),
        }
    }

    fn params<'a>(&'a self, extra: &[(&'a str, &'a dyn ToSql)]) -> Vec<(&'a str, &'a dyn ToSql)> {
        let mut params: Vec<(&str, &dyn ToSql)> = vec![(":lower", &self.lower)];
        if let Some(upper) = &self.upper {
            params.push((":upper", upper));
        }
        params.extend_from_slice(extra);
        params
    }
}

/// The smallest string greater than every string starting with `prefix` (SQLite compares TEXT
/// bytewise, which for UTF-8 is code point order), or None when there is none.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn kv_from_row(row: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: row.get(0)?,
        create_revision: row.get(1)?,
        mod_revision: row.get(2)?,
        value: row.get(3)?,
    })
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Result<WatchEvent>> {
    let revision: Revision = row.get(0)?;
    let key: String = row.get(1)?;
    let kind: i64 = row.get(2)?;
    let prev = match (
        row.get::<_, Option<Vec<u8>>>(5)?,
        row.get::<_, Option<Revision>>(6)?,
        row.get::<_, Option<Revision>>(7)?,
    ) {
        (Some(value), Some(create_revision), Some(mod_revision)) => Some(KeyValue {
            key: key.clone(),
            value,
            create_revision,
            mod_revision,
        }),
        _ => None,
    };
    Ok(match (kind, prev) {
        (KIND_PUT, prev) => match (row.get::<_, Option<Vec<u8>>>(3)?, row.get(4)?) {
            (Some(value), Some(create_revision)) => Ok(WatchEvent::Put {
                kv: KeyValue {
                    key,
                    value,
                    create_revision,
                    mod_revision: revision,
                },
                prev,
            }),
            _ => Err(backend(format_args!(
                "history row {revision} is a put without a value"
            ))),
        },
        (KIND_DELETE, Some(prev)) => Ok(WatchEvent::Delete {
            key,
            revision,
            prev,
        }),
        _ => Err(backend(format_args!(
            "history row {revision} is malformed (kind {kind})"
        ))),
    })
}

fn read_meta(conn: &Connection, name: &str) -> Result<Revision> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| {
        row.get(0)
    })
    .optional()
    .map_err(backend)?
    .ok_or_else(|| backend(format_args!("meta row {name} is missing")))
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(backend)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(backend(format_args!(
            "could not switch to WAL mode (journal_mode is {mode})"
        )));
    }
    // Durability before acknowledgement: FULL syncs the WAL on every commit.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT key, create_rev, mod_rev, value FROM kv WHERE key = ?1",
                [&key],
                kv_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult> {
        let range = KeyRange::new(prefix, start_after);
        let prefix = prefix.to_owned();
        let limit = limit.filter(|&l| l > 0);
        self.read(move |conn| {
            let snapshot = conn.unchecked_transaction().map_err(backend)?;
            let revision = read_meta(&snapshot, "current_revision")?;
            // LIMIT -1 is SQLite's "no limit".
            let sql_limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let mut select = snapshot
                .prepare(&format!(
                    "SELECT key, create_rev, mod_rev, value FROM kv WHERE {} ORDER BY key LIMIT :limit",
                    range.condition()
                ))
                .map_err(backend)?;
            let items = select
                .query_map(&*range.params(&[(":limit", &sql_limit)]), kv_from_row)
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            drop(select);
            let remaining = match (limit, items.last()) {
                (Some(limit), Some(last)) if items.len() == limit => {
                    count_range(&snapshot, &KeyRange::new(&prefix, Some(&last.key)))?
                }
                _ => 0,
            };
            Ok(ListResult {
                items,
                revision,
                remaining,
            })
        })
        .await
    }

    async fn count(&self, prefix: &str) -> Result<i64> {
        let range = KeyRange::new(prefix, None);
        self.read(move |conn| count_range(conn, &range)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        put_result(
            self.submit_write(Write::Create {
                key: key.to_owned(),
                value,
            })
            .await?,
        )
    }

    async fn update(
        &self,
        key: &str,
        expected_mod_revision: Revision,
        value: Vec<u8>,
    ) -> Result<KeyValue> {
        put_result(
            self.submit_write(Write::Update {
                key: key.to_owned(),
                expected_mod_revision,
                value,
            })
            .await?,
        )
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision)> {
        delete_result(
            self.submit_write(Write::Delete {
                key: key.to_owned(),
                expected_mod_revision,
            })
            .await?,
        )
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<Watcher> {
        let after = after.max(0);
        // Subscribe before reading the history: every event committed after the snapshot
        // below is then certain to arrive live (see `watch.rs`).
        let live = self.shared.hub.subscribe(prefix);
        let range = KeyRange::new(prefix, None);
        let (history, snapshot) = self
            .read(move |conn| {
                let snapshot = conn.unchecked_transaction().map_err(backend)?;
                let compacted = read_meta(&snapshot, "compacted_revision")?;
                if after < compacted {
                    return Err(StoreError::Compacted {
                        requested: after,
                        compacted,
                    });
                }
                let revision = read_meta(&snapshot, "current_revision")?;
                let mut select = snapshot
                    .prepare(&format!(
                        "SELECT {LOG_COLUMNS} FROM log WHERE rev > :after AND {} ORDER BY rev",
                        range.condition()
                    ))
                    .map_err(backend)?;
                let history = select
                    .query_map(&*range.params(&[(":after", &after)]), event_from_row)
                    .map_err(backend)?
                    .map(|row| row.map_err(backend).and_then(|event| event))
                    .collect::<Result<Vec<_>>>()?;
                Ok((history, revision))
            })
            .await?;
        Ok(Watcher::new(live, history, after, snapshot))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Compact(revision, reply))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }
}

fn count_range(conn: &Connection, range: &KeyRange) -> Result<i64> {
    conn.query_row(
        &format!("SELECT COUNT(*) FROM kv WHERE {}", range.condition()),
        &*range.params(&[]),
        |row| row.get(0),
    )
    .map_err(backend)
}

/// Read connections, opened on demand and kept for reuse.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn checkout(&self) -> Result<Connection> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open(&self.path).map_err(backend)?;
                conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
                conn.pragma_update(None, "query_only", true)
                    .map_err(backend)?;
                Ok(conn)
            }
        }
    }

    fn checkin(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// The writer thread: opens the write connection, reports readiness, then commits batches
/// until every [`SqliteStore`] handle to the queue is gone.
fn run_writer(
    path: &Path,
    queue: &std_mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    ready: &std_mpsc::SyncSender<Result<()>>,
) {
    let conn = match open_writer(path) {
        Ok(conn) => conn,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let mut writer = match Writer::new(&conn, shared) {
        Ok(writer) => writer,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while let Ok(first) = queue.recv() {
        writer.commit_batch(gather_batch(first, queue));
    }
}

/// Everything queued behind `first`, up to [`MAX_BATCH`]. Under concurrent load (more than
/// one request queued) it also waits, while requests keep arriving, up to [`GATHER_WINDOW`]:
/// the writers the previous commit just answered are about to queue their next write, and
/// letting them join this fsync instead of the next one roughly doubles the batch size
/// (PostgreSQL's `commit_delay`/`commit_siblings` idea). A lone writer never waits.
fn gather_batch(first: Request, queue: &std_mpsc::Receiver<Request>) -> Vec<Request> {
    let mut batch = vec![first];
    batch.extend(queue.try_iter().take(MAX_BATCH - 1));
    if batch.len() > 1 {
        let deadline = Instant::now() + GATHER_WINDOW;
        while batch.len() < MAX_BATCH {
            let wait = GATHER_IDLE.min(deadline.saturating_duration_since(Instant::now()));
            if wait.is_zero() {
                break;
            }
            match queue.recv_timeout(wait) {
                Ok(request) => {
                    batch.push(request);
                    let room = MAX_BATCH - batch.len();
                    batch.extend(queue.try_iter().take(room));
                }
                Err(_) => break,
            }
        }
    }
    batch
}

fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| backend(format_args!("opening {}: {e}", path.display())))?;
    configure(&conn)?;
    conn.execute_batch(SCHEMA).map_err(backend)?;
    Ok(conn)
}

/// The write connection's prepared statements, prepared once for the writer's lifetime.
struct Statements<'c> {
    begin: Statement<'c>,
    commit: Statement<'c>,
    rollback: Statement<'c>,
    savepoint: Statement<'c>,
    release: Statement<'c>,
    rollback_to: Statement<'c>,
    get: Statement<'c>,
    upsert: Statement<'c>,
    remove: Statement<'c>,
    append: Statement<'c>,
    set_meta: Statement<'c>,
    compact: Statement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Statements {
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            rollback: conn.prepare("ROLLBACK")?,
            savepoint: conn.prepare("SAVEPOINT write")?,
            release: conn.prepare("RELEASE write")?,
            rollback_to: conn.prepare("ROLLBACK TO write")?,
            get: conn.prepare("SELECT key, create_rev, mod_rev, value FROM kv WHERE key = ?1")?,
            upsert: conn.prepare(
                "INSERT INTO kv (key, create_rev, mod_rev, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET create_rev = excluded.create_rev,
                     mod_rev = excluded.mod_rev, value = excluded.value",
            )?,
            remove: conn.prepare("DELETE FROM kv WHERE key = ?1")?,
            append: conn.prepare(&format!(
                "INSERT INTO log ({LOG_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?,
            set_meta: conn.prepare("UPDATE meta SET value = ?2 WHERE name = ?1")?,
            compact: conn.prepare("DELETE FROM log WHERE rev <= ?1")?,
        })
    }
}

/// The failure of a statement that leaves the open transaction in an unknown state: the
/// whole batch is rolled back and every request in it fails with this message.
struct Aborted(String);

fn aborted(error: impl Display) -> Aborted {
    Aborted(error.to_string())
}

impl Request {
    fn fail(self, Aborted(message): &Aborted) {
        let error = StoreError::Backend(message.clone());
        match self {
            Request::Write(_, reply) => {
                let _ = reply.send(Err(error));
            }
            Request::Compact(_, reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// A request decided inside the open transaction, answered once the transaction commits.
enum Decided {
    Write(oneshot::Sender<Result<WatchEvent>>, Result<WatchEvent>),
    Compacted(oneshot::Sender<Result<()>>),
}

impl Decided {
    fn answer(self) {
        match self {
            Decided::Write(reply, result) => {
                let _ = reply.send(result);
            }
            Decided::Compacted(reply) => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    fn fail(self, Aborted(message): &Aborted) {
        let error = StoreError::Backend(message.clone());
        match self {
            Decided::Write(reply, _) => {
                let _ = reply.send(Err(error));
            }
            Decided::Compacted(reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

struct Writer<'c> {
    statements: Statements<'c>,
    /// The revision of the last write decided, committed or not.
    revision: Revision,
    compacted: Revision,
    shared: Arc<Shared>,
}

impl<'c> Writer<'c> {
    fn new(conn: &'c Connection, shared: Arc<Shared>) -> Result<Self> {
        let revision = read_meta(conn, "current_revision")?;
        let compacted = read_meta(conn, "compacted_revision")?;
        shared.revision.store(revision, Ordering::Release);
        shared.compacted.store(compacted, Ordering::Release);
        Ok(Writer {
            statements: Statements::prepare(conn).map_err(backend)?,
            revision,
            compacted,
            shared,
        })
    }

    /// Commits `batch` as one transaction, then publishes its events and answers each
    /// request: its own result, or the transaction's failure for all of them.
    fn commit_batch(&mut self, batch: Vec<Request>) {
        let (revision, compacted) = (self.revision, self.compacted);
        let mut decided = Vec::with_capacity(batch.len());
        let mut undecided = batch.into_iter();
        match self.run_transaction(&mut undecided, &mut decided) {
            Ok(()) => {
                self.shared.transactions.fetch_add(1, Ordering::AcqRel);
                self.shared.revision.store(self.revision, Ordering::Release);
                self.shared
                    .compacted
                    .store(self.compacted, Ordering::Release);
                // Published before anyone is answered: once a write is acknowledged, its
                // event is already queued for every watcher.
                let events: Vec<WatchEvent> = decided
                    .iter()
                    .filter_map(|d| match d {
                        Decided::Write(_, Ok(event)) => Some(event.clone()),
                        _ => None,
                    })
                    .collect();
                self.shared.hub.publish(&events);
                decided.into_iter().for_each(Decided::answer);
            }
            Err(error) => {
                tracing::error!(error = %error.0, "store write transaction failed; rolled back");
                // Fails harmlessly when the failing statement already ended the transaction.
                let _ = self.statements.rollback.execute([]);
                self.revision = revision;
                self.compacted = compacted;
                decided.into_iter().for_each(|d| d.fail(&error));
                undecided.for_each(|r| r.fail(&error));
            }
        }
    }

    /// Decides requests from `undecided` into `decided` inside one transaction and commits
    /// it. On error the transaction is left for the caller to roll back; the request being
    /// decided when it happened has been answered.
    fn run_transaction(
        &mut self,
        undecided: &mut impl Iterator<Item = Request>,
        decided: &mut Vec<Decided>,
    ) -> std::result::Result<(), Aborted> {
        let (revision, compacted) = (self.revision, self.compacted);
        self.statements.begin.execute([]).map_err(aborted)?;
        for request in undecided {
            match request {
                Request::Write(write, reply) => match self.write(write) {
                    Ok(result) => decided.push(Decided::Write(reply, result)),
                    Err(error) => {
                        let _ = reply.send(Err(StoreError::Backend(error.0.clone())));
                        return Err(error);
                    }
                },
                Request::Compact(target, reply) => match self.compact(target) {
                    Ok(()) => decided.push(Decided::Compacted(reply)),
                    Err(error) => {
                        let _ = reply.send(Err(StoreError::Backend(error.0.clone())));
                        return Err(error);
                    }
                },
            }
        }
        if self.revision != revision {
            self.statements
                .set_meta
                .execute(rusqlite::params!["current_revision", self.revision])
                .map_err(aborted)?;
        }
        if self.compacted != compacted {
            self.statements
                .set_meta
                .execute(rusqlite::params!["compacted_revision", self.compacted])
                .map_err(aborted)?;
        }
        self.statements.commit.execute([]).map_err(aborted)?;
        Ok(())
    }

    /// Decides one write at the next revision and stores its effect under a savepoint, so
    /// a write the database rejects (say, a value over SQLite's size limit) fails alone.
    fn write(&mut self, write: Write) -> std::result::Result<Result<WatchEvent>, Aborted> {
        let current = match self
            .statements
            .get
            .query_row([write.key()], kv_from_row)
            .optional()
        {
            Ok(current) => current,
            Err(error) => return Ok(Err(backend(error))),
        };
        let revision = self.revision + 1;
        let event = match write.apply(current, revision) {
            Ok(event) => event,
            Err(refused) => return Ok(Err(refused)),
        };
        self.statements.savepoint.execute([]).map_err(aborted)?;
        match self.persist(&event) {
            Ok(()) => {
                self.statements.release.execute([]).map_err(aborted)?;
                self.revision = revision;
                Ok(Ok(event))
            }
            Err(error) => {
                tracing::warn!(key = event.key(), %error, "store write rejected by SQLite");
                self.statements.rollback_to.execute([]).map_err(aborted)?;
                self.statements.release.execute([]).map_err(aborted)?;
                Ok(Err(backend(error)))
            }
        }
    }

    fn persist(&mut self, event: &WatchEvent) -> rusqlite::Result<()> {
        let s = &mut self.statements;
        match event {
            WatchEvent::Put { kv, prev } => {
                s.upsert.execute(rusqlite::params![
                    kv.key,
                    kv.create_revision,
                    kv.mod_revision,
                    kv.value
                ])?;
                s.append.execute(rusqlite::params![
                    kv.mod_revision,
                    kv.key,
                    KIND_PUT,
                    kv.value,
                    kv.create_revision,
                    prev.as_ref().map(|p| &p.value),
                    prev.as_ref().map(|p| p.create_revision),
                    prev.as_ref().map(|p| p.mod_revision),
                ])?;
            }
            WatchEvent::Delete {
                key,
                revision,
                prev,
            } => {
                s.remove.execute([key])?;
                s.append.execute(rusqlite::params![
                    revision,
                    key,
                    KIND_DELETE,
                    None::<Vec<u8>>,
                    None::<Revision>,
                    prev.value,
                    prev.create_revision,
                    prev.mod_revision,
                ])?;
            }
        }
        Ok(())
    }

    fn compact(&mut self, revision: Revision) -> std::result::Result<(), Aborted> {
        let target = revision.min(self.revision);
        if target > self.compacted {
            self.statements.compact.execute([target]).map_err(aborted)?;
            self.compacted = target;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("store.db")).expect("open");
        (dir, Arc::new(store))
    }

    fn write_request(write: Write) -> (Request, oneshot::Receiver<Result<WatchEvent>>) {
        let (reply, answer) = oneshot::channel();
        (Request::Write(write, reply), answer)
    }

    fn create(key: &str) -> Write {
        Write::Create {
            key: key.into(),
            value: key.as_bytes().to_vec(),
        }
    }

    #[test]
    fn prefix_end_is_the_first_string_past_the_prefix() {
        assert_eq!(prefix_end("/a/").as_deref(), Some("/a0"));
        assert_eq!(prefix_end("").as_deref(), None);
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_group_committed() {
        const WRITES: usize = 200;
        let (_dir, store) = temp_store();
        let before = store.committed_transactions();
        let tasks: Vec<_> = (0..WRITES)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.create(&format!("/g/{i}"), vec![1; 100]).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("create");
        }
        let transactions = store.committed_transactions() - before;
        assert!(
            transactions < WRITES as u64 / 2,
            "{WRITES} concurrent writes took {transactions} transactions"
        );
        assert_eq!(store.count("/g/").await.expect("count"), WRITES as i64);
        assert_eq!(
            store.current_revision().await.expect("revision"),
            WRITES as i64
        );
    }

    /// Drives the writer directly with one hand-made batch, so the requests are certain to
    /// share a transaction.
    #[test]
    fn failed_checks_in_a_batch_do_not_fail_their_neighbours() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_writer(&dir.path().join("store.db")).expect("open");
        let shared = Arc::new(Shared {
            hub: WatchHub::new(),
            revision: AtomicI64::new(0),
            compacted: AtomicI64::new(0),
            transactions: AtomicU64::new(0),
        });
        let mut writer = Writer::new(&conn, Arc::clone(&shared)).expect("writer");
        let mut live = shared.hub.subscribe("/b/");

        let (first, first_answer) = write_request(create("/b/x"));
        writer.commit_batch(vec![first]);
        let x = first_answer
            .blocking_recv()
            .expect("answer")
            .expect("create x");
        assert_eq!(x.revision(), 1);

        let batch = vec![
            write_request(create("/b/a")),
            // Stale compare-and-swap.
            write_request(Write::Update {
                key: "/b/x".into(),
                expected_mod_revision: 7,
                value: b"stale".to_vec(),
            }),
            write_request(Write::Update {
                key: "/b/x".into(),
                expected_mod_revision: 1,
                value: b"fresh".to_vec(),
            }),
            // Sees the create earlier in the same, still uncommitted, transaction.
            write_request(create("/b/a")),
            write_request(Write::Delete {
                key: "/b/missing".into(),
                expected_mod_revision: None,
            }),
            write_request(create("/b/c")),
        ];
        let (requests, mut answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        writer.commit_batch(requests);
        assert_eq!(shared.transactions.load(Ordering::Acquire), 2);

        let mut results: Vec<Result<WatchEvent>> = answers
            .iter_mut()
            .map(|answer| answer.try_recv().expect("answered"))
            .collect();
        let revisions: Vec<Option<Revision>> = results
            .iter()
            .map(|r| r.as_ref().ok().map(WatchEvent::revision))
            .collect();
        assert_eq!(revisions, [Some(2), None, Some(3), None, None, Some(4)]);
        assert!(matches!(
            results.remove(1),
            Err(StoreError::Conflict { current: Some(kv), .. }) if kv.mod_revision == 1
        ));
        assert!(matches!(
            results.remove(2),
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(results.remove(2), Err(StoreError::NotFound(_))));
        assert_eq!(shared.revision.load(Ordering::Acquire), 4);

        let published: Vec<Revision> = std::iter::from_fn(|| live.try_recv().ok())
            .map(|e| e.revision())
            .collect();
        assert_eq!(published, [1, 2, 3, 4]);
        let current: Revision = conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'current_revision'",
                [],
                |row| row.get(0),
            )
            .expect("meta");
        assert_eq!(current, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_store_ends_its_watchers() {
        let (_dir, store) = temp_store();
        let mut watcher = store.watch("/", 0).await.expect("watch");
        store.create("/a", b"1".to_vec()).await.expect("create");
        drop(store);
        assert_eq!(watcher.next().await.map(|e| e.revision()), Some(1));
        assert_eq!(watcher.next().await, None);
    }
}
