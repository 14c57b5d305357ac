//! Container log files, written the way CRI runtimes (containerd, CRI-O) write them and read
//! back the way the kubelet serves `GET pods/<name>/log`.
//!
//! Each container instance gets its own file, `<pods_dir>/<pod_uid>/<container>/<restart>.log`,
//! so `kubectl logs --previous` reads the instance before the current one. Every record is one
//! line `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>`: `F` ends a line of output,
//! `P` is a fragment whose line continues in the next record (a line longer than
//! [`MAX_RECORD_BYTES`], or output that ended without a newline).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

/// The longest content a single record carries; longer lines are split into `P` records, as
/// containerd does with its 16 KiB line buffer.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

/// How often a follower looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The largest chunk a log stream yields at once.
const CHUNK_BYTES: usize = 64 * 1024;

/// Where a container instance's log lives: `<pods_dir>/<pod_uid>/<container>/<restart_count>.log`.
pub fn log_path(pods_dir: &Path, pod_uid: &str, container: &str, restart_count: i32) -> PathBuf {
    pods_dir
        .join(pod_uid)
        .join(container)
        .join(format!("{restart_count}.log"))
}

/// Which pipe a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// Formats a time as Go's `time.RFC3339Nano` does: UTC `Z`, fraction with trailing zeros
/// trimmed (and no fraction at all on a whole second).
pub fn format_rfc3339_nano(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// Encodes one CRI log record (including its trailing newline).
pub fn format_record(
    time: DateTime<Utc>,
    stream: LogStream,
    partial: bool,
    content: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 48);
    out.extend_from_slice(format_rfc3339_nano(time).as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
    out
}

/// One parsed CRI log record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The timestamp as written in the file (RFC3339Nano).
    pub timestamp: String,
    pub time: DateTime<Utc>,
    pub stream: LogStream,
    pub partial: bool,
    pub content: Vec<u8>,
}

impl LogRecord {
    /// The bytes `kubectl logs` shows for this record.
    fn render(&self, timestamps: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.content.len() + 40);
        if timestamps {
            out.extend_from_slice(self.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&self.content);
        if !self.partial {
            out.push(b'\n');
        }
        out
    }
}

/// Parses one record line (without its trailing newline); `None` for a malformed line.
pub fn parse_record(line: &[u8]) -> Option<LogRecord> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => LogStream::Stdout,
        b"stderr" => LogStream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    let content = parts.next().unwrap_or_default().to_vec();
    let time = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
    Some(LogRecord {
        timestamp: ts.to_string(),
        time,
        stream,
        partial,
        content,
    })
}

/// Appends a container instance's stdout and stderr to its log file as CRI records.
#[derive(Clone)]
pub struct LogWriter {
    file: Arc<Mutex<tokio::fs::File>>,
}

impl LogWriter {
    /// Opens (creating parent directories) the log file at `path` for appending.
    pub async fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Writes one record; records from both pipes interleave in the order they were read.
    pub async fn write_record(
        &self,
        stream: LogStream,
        partial: bool,
        content: &[u8],
    ) -> io::Result<()> {
        let record = format_record(Utc::now(), stream, partial, content);
        let mut file = self.file.lock().await;
        file.write_all(&record).await?;
        // tokio's File hands writes to a background task; flushing waits until the record
        // is in the file, so a reader (`kubectl logs`) never misses the newest line.
        file.flush().await
    }

    /// Copies one pipe into the log until it reaches EOF.
    pub async fn copy_from<R: AsyncRead + Unpin>(
        &self,
        stream: LogStream,
        reader: R,
    ) -> io::Result<()> {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            let n = (&mut reader)
                .take(MAX_RECORD_BYTES as u64)
                .read_until(b'\n', &mut buf)
                .await?;
            if n == 0 {
                return Ok(());
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                self.write_record(stream, false, &buf).await?;
            } else {
                // Either the line is longer than one record, or the output ended mid-line.
                self.write_record(stream, true, &buf).await?;
            }
        }
    }

    /// Copies both pipes (either may be absent) until both reach EOF.
    pub async fn capture<O, E>(&self, stdout: Option<O>, stderr: Option<E>) -> io::Result<()>
    where
        O: AsyncRead + Unpin,
        E: AsyncRead + Unpin,
    {
        let out = async {
            match stdout {
                Some(r) => self.copy_from(LogStream::Stdout, r).await,
                None => Ok(()),
            }
        };
        let err = async {
            match stderr {
                Some(r) => self.copy_from(LogStream::Stderr, r).await,
                None => Ok(()),
            }
        };
        let (a, b) = tokio::join!(out, err);
        a.and(b)
    }
}

/// What `kubectl logs` asks for.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<i64>,
    pub since_time: Option<DateTime<Utc>>,
    pub timestamps: bool,
    pub limit_bytes: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// No log for the requested instance; the message is the one upstream returns.
    #[error("{0}")]
    NotFound(String),
    #[error("reading container log: {0}")]
    Io(#[from] io::Error),
}

/// The pod's name as recorded in its state file by the pod worker, for upstream-worded errors.
fn pod_name(pods_dir: &Path, pod_uid: &str) -> String {
    std::fs::read(pods_dir.join(pod_uid).join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .unwrap_or_else(|| pod_uid.to_string())
}

/// Reads a container's log (the current instance, or the previous one) as `kubectl logs`
/// shows it: raw lines (stdout and stderr interleaved in order), each prefixed with its
/// RFC3339Nano timestamp and a space when `timestamps`; `tail_lines`, `since_time` and
/// `limit_bytes` applied. With `follow`, the stream continues with new lines until
/// `is_running()` says the instance is over and the file is drained.
pub fn read(
    pods_dir: &Path,
    pod_uid: &str,
    container: &str,
    restart_count: i32,
    opts: LogOptions,
    is_running: impl Fn() -> bool + Send + 'static,
) -> Result<BoxStream<'static, io::Result<Bytes>>, LogError> {
    let (instance, follow) = if opts.previous {
        // The previous instance is over: following it ends at its end.
        (restart_count - 1, false)
    } else {
        (restart_count, opts.follow)
    };
    let not_found = || {
        let pod = pod_name(pods_dir, pod_uid);
        if opts.previous {
            LogError::NotFound(format!(
                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
            ))
        } else {
            LogError::NotFound(format!(
                "log of container \"{container}\" in pod \"{pod}\" not found"
            ))
        }
    };
    if instance < 0 {
        return Err(not_found());
    }
    let path = log_path(pods_dir, pod_uid, container, instance);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(LogError::Io(e)),
    };
    let state = ReadState {
        file: tokio::fs::File::from_std(file),
        pending: Vec::new(),
        initial: true,
        follow,
        opts,
        remaining: None,
        done: false,
        is_running: Box::new(is_running),
    };
    let state = ReadState {
        remaining: state.opts.limit_bytes.map(|l| l.max(0) as u64),
        ..state
    };
    Ok(futures::stream::unfold(state, |mut st| async move {
        match st.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), st)),
            Ok(None) => None,
            Err(e) => {
                st.done = true;
                Some((Err(e), st))
            }
        }
    })
    .boxed())
}

struct ReadState {
    file: tokio::fs::File,
    /// Bytes read past the last complete record line.
    pending: Vec<u8>,
    initial: bool,
    follow: bool,
    opts: LogOptions,
    remaining: Option<u64>,
    done: bool,
    is_running: Box<dyn Fn() -> bool + Send>,
}

impl ReadState {
    /// Reads whatever is new in the file and returns the complete records in it.
    async fn read_new_records(&mut self) -> io::Result<Vec<LogRecord>> {
        let mut buf = Vec::new();
        self.file.read_to_end(&mut buf).await?;
        self.pending.extend_from_slice(&buf);
        let Some(last_nl) = self.pending.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.pending.split_off(last_nl + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        Ok(complete
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(parse_record)
            .collect())
    }

    /// Renders records into one chunk, honouring `since_time` and `limit_bytes`.
    fn render(&mut self, records: &[LogRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            if self.opts.since_time.is_some_and(|since| r.time < since) {
                continue;
            }
            out.extend_from_slice(&r.render(self.opts.timestamps));
        }
        if let Some(rem) = self.remaining.as_mut() {
            let take = (out.len() as u64).min(*rem);
            out.truncate(take as usize);
            *rem -= take;
            if *rem == 0 {
                self.done = true;
            }
        }
        out
    }

    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.initial {
                self.initial = false;
                self.file.seek(io::SeekFrom::Start(0)).await?;
                let mut records = self.read_new_records().await?;
                if let Some(n) = self.opts.tail_lines {
                    let keep = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
                    let skip = records.len().saturating_sub(keep);
                    records.drain(..skip);
                }
                let out = self.render(&records);
                if !self.follow {
                    self.done = true;
                }
                if !out.is_empty() {
                    return Ok(Some(Bytes::from(out)));
                }
                continue;
            }
            // Following: look at whether the instance is over *before* reading, so that output
            // written just before it ended is still drained.
            let running = (self.is_running)();
            let mut out = Vec::new();
            while out.len() < CHUNK_BYTES {
                let records = self.read_new_records().await?;
                if records.is_empty() {
                    break;
                }
                out.extend(self.render(&records));
                if self.done {
                    break;
                }
            }
            if !out.is_empty() {
                return Ok(Some(Bytes::from(out)));
            }
            if !running {
                self.done = true;
                return Ok(None);
            }
            tokio::time::sleep(FOLLOW_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64, nanos: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(1_714_557_600 + secs, nanos)
            .single()
            .expect("valid time")
    }

    async fn collect(s: BoxStream<'static, io::Result<Bytes>>) -> String {
        let chunks: Vec<_> = s.collect().await;
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&c.expect("chunk"));
        }
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn rfc3339_nano_trims_trailing_zeros_like_go() {
        assert_eq!(format_rfc3339_nano(t(0, 0)), "2024-05-01T10:00:00Z");
        assert_eq!(
            format_rfc3339_nano(t(0, 123_000_000)),
            "2024-05-01T10:00:00.123Z"
        );
        assert_eq!(
            format_rfc3339_nano(t(0, 123_456_789)),
            "2024-05-01T10:00:00.123456789Z"
        );
    }

    #[test]
    fn records_round_trip() {
        let line = format_record(t(1, 5), LogStream::Stderr, true, b"a b c");
        assert_eq!(line, b"2024-05-01T10:00:01.000000005Z stderr P a b c\n");
        let rec = parse_record(&line[..line.len() - 1]).expect("parses");
        assert_eq!(rec.stream, LogStream::Stderr);
        assert!(rec.partial);
        assert_eq!(rec.content, b"a b c");
        assert_eq!(rec.time, t(1, 5));
        let empty = parse_record(b"2024-05-01T10:00:00Z stdout F ").expect("parses");
        assert_eq!(empty.content, b"");
        assert!(parse_record(b"garbage").is_none());
    }

    fn write_fixture(dir: &Path) {
        let path = log_path(dir, "uid1", "c", 0);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let mut data = Vec::new();
        data.extend(format_record(t(0, 0), LogStream::Stdout, false, b"one"));
        data.extend(format_record(t(1, 0), LogStream::Stderr, false, b"two"));
        data.extend(format_record(t(2, 0), LogStream::Stdout, true, b"thr"));
        data.extend(format_record(t(2, 1), LogStream::Stdout, false, b"ee"));
        data.extend(format_record(t(3, 0), LogStream::Stdout, true, b"four"));
        std::fs::write(path, data).expect("write");
    }

    #[tokio::test]
    async fn read_renders_lines_and_partials() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_fixture(dir.path());
        let s = read(dir.path(), "uid1", "c", 0, LogOptions::default(), || false).expect("open");
        assert_eq!(collect(s).await, "one\ntwo\nthree\nfour");
    }

    #[tokio::test]
    async fn read_applies_tail_since_timestamps_and_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_fixture(dir.path());
        let opts = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        let s = read(dir.path(), "uid1", "c", 0, opts, || false).expect("open");
        assert_eq!(collect(s).await, "ee\nfour");

        let opts = LogOptions {
            since_time: Some(t(1, 0)),
            timestamps: true,
            ..Default::default()
        };
        let s = read(dir.path(), "uid1", "c", 0, opts, || false).expect("open");
        assert_eq!(
            collect(s).await,
            "2024-05-01T10:00:01Z two\n2024-05-01T10:00:02Z thr2024-05-01T10:00:02.000000001Z ee\n\
             2024-05-01T10:00:03Z four"
        );

        let opts = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        let s = read(dir.path(), "uid1", "c", 0, opts, || false).expect("open");
        assert_eq!(collect(s).await, "one\ntw");
    }

    #[tokio::test]
    async fn previous_without_earlier_instance_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_fixture(dir.path());
        std::fs::write(dir.path().join("uid1/state.json"), r#"{"name":"p"}"#).expect("write");
        let opts = LogOptions {
            previous: true,
            ..Default::default()
        };
        let err = read(dir.path(), "uid1", "c", 0, opts, || false)
            .err()
            .expect("error");
        assert_eq!(
            err.to_string(),
            "previous terminated container \"c\" in pod \"p\" not found"
        );
    }

    #[tokio::test]
    async fn writer_captures_both_pipes_and_follow_drains_until_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = log_path(dir.path(), "uid2", "c", 0);
        let writer = LogWriter::create(&path).await.expect("create");
        writer
            .capture(Some(&b"hello\nworld\nno newline"[..]), Some(&b"oops\n"[..]))
            .await
            .expect("capture");
        let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = running.clone();
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let s = read(dir.path(), "uid2", "c", 0, opts, move || {
            flag.load(std::sync::atomic::Ordering::SeqCst)
        })
        .expect("open");
        let reader = tokio::spawn(collect(s));
        tokio::time::sleep(Duration::from_millis(300)).await;
        writer
            .write_record(LogStream::Stdout, false, b"late")
            .await
            .expect("write");
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        let out = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("follow ends")
            .expect("join");
        // The pipes interleave in any order; the late line comes last.
        assert!(out.ends_with("late\n"), "{out:?}");
        for part in ["hello\n", "world\n", "no newline", "oops\n"] {
            assert!(out.contains(part), "{out:?} lacks {part:?}");
        }
        assert_eq!(out.len(), "hello\nworld\nno newlineoops\nlate\n".len());
    }

    #[tokio::test]
    async fn long_lines_are_split_into_partial_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = log_path(dir.path(), "uid3", "c", 0);
        let writer = LogWriter::create(&path).await.expect("create");
        let mut long = vec![b'x'; MAX_RECORD_BYTES + 10];
        long.push(b'\n');
        writer
            .copy_from(LogStream::Stdout, &long[..])
            .await
            .expect("copy");
        let text = std::fs::read(&path).expect("read");
        let records: Vec<_> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(parse_record)
            .collect();
        assert_eq!(records.len(), 2);
        assert!(records[0].partial);
        assert_eq!(records[0].content.len(), MAX_RECORD_BYTES);
        assert!(!records[1].partial);
        let s = read(dir.path(), "uid3", "c", 0, LogOptions::default(), || false).expect("open");
        assert_eq!(collect(s).await.len(), MAX_RECORD_BYTES + 11);
    }
}
