//! Remote-command sessions on the node: the process side of `kubectl exec` (and, through the
//! reusable [`Stdio`], of `kubectl attach` and of containers started with `stdin`/`tty`).
//!
//! In Kubernetes the kubelet's streaming server hands an exec request to the container
//! runtime, which starts the command with either a pseudo-terminal (`tty: true`: one stream,
//! stderr merged into stdout, window-size changes applied to the terminal) or three pipes, and
//! reports its exit code. Here [`run_session`] does the same for any argv: the API server's
//! remote-command protocol (WebSocket channels) is not known here, only channel endpoints:
//!
//! - `stdin`: bytes for the process's standard input; dropping the sender closes it;
//! - `output`: chunks tagged [`STDOUT`] or [`STDERR`], ending once the process's output is
//!   finished (at the latest [`DRAIN_TIMEOUT`] after it exited, in case something it started
//!   in the background still holds the stream open);
//! - `resize`: terminal sizes (width, height) for a tty;
//! - `exit`: the exit code once the process is gone and its output is delivered (`128 + n`
//!   for a death by signal n, as container runtimes report it).
//!
//! The runner assumes nothing about the argv: the node agent may pass a wrapper that enters
//! the container first.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use nix::fcntl::OFlag;
use tokio::sync::{mpsc, oneshot};

/// The output channel numbers, as the remote-command protocol numbers its streams.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// How long a process's output may still flow after it exited.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How many output chunks may wait for the consumer before the process is slowed down.
const OUTPUT_BUFFER: usize = 16;
/// How many stdin chunks and resize events may queue before the sender waits.
const INPUT_BUFFER: usize = 16;
/// The most a single output chunk carries.
const CHUNK: usize = 32 * 1024;

/// Which standard streams a session has: the `stdin`, `stdout`, `stderr` and `tty` of a
/// `PodExecOptions` or `PodAttachOptions`. With `tty` there is one output stream: what the
/// process writes to stderr arrives as stdout, as with a real terminal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdioOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The command of a session: any program, its arguments, environment and working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCommand {
    pub argv: Vec<String>,
    /// The complete environment (nothing is inherited from the node agent).
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
}

/// A started session: the endpoints described in the [module documentation](self).
#[derive(Debug)]
pub struct Session {
    pub stdin: Option<mpsc::Sender<Bytes>>,
    pub output: mpsc::Receiver<(u8, Bytes)>,
    pub resize: Option<mpsc::Sender<(u16, u16)>>,
    /// The exit code, or why it is unknown.
    pub exit: oneshot::Receiver<Result<i32, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("no command given")]
    NoCommand,
    #[error("exec: \"{program}\": executable file not found in $PATH")]
    NotFound { program: String },
    /// A program named by path that does not exist (Go's wording).
    #[error("exec: \"{program}\": stat {program}: no such file or directory")]
    NoSuchFile { program: String },
    #[error("exec: \"{program}\": {source}")]
    Spawn { program: String, source: io::Error },
    #[error("allocating a terminal: {0}")]
    Pty(nix::Error),
    #[error("creating a pipe: {0}")]
    Pipe(nix::Error),
    #[error("duplicating a file descriptor: {0}")]
    Dup(io::Error),
}

/// What the process gets as one of its standard streams.
#[derive(Debug)]
enum ChildEnd {
    /// `/dev/null`: the stream was not asked for.
    Null,
    Fd(OwnedFd),
}

/// A process's standard streams, made before the process is spawned: a pseudo-terminal
/// (`tty`) or pipes. [`Stdio::configure`] hands the process's ends to a command;
/// [`Stdio::start`], called once it is spawned, starts moving bytes and returns the
/// endpoints. A container started with `stdin`/`tty` uses the same plumbing, fanning the
/// output out to its log and to attached clients with [`OutputFanout`].
#[derive(Debug)]
pub struct Stdio {
    options: StdioOptions,
    /// The process's stdin, stdout and stderr.
    child: [ChildEnd; 3],
    /// The terminal's master side (tty only).
    master: Option<OwnedFd>,
    /// Our end of the stdin pipe (pipes only).
    stdin_writer: Option<OwnedFd>,
    /// Our ends of the output pipes (pipes only).
    output_readers: Vec<(u8, OwnedFd)>,
}

/// The endpoints of a started [`Stdio`].
#[derive(Debug)]
pub struct StdioStreams {
    pub stdin: Option<mpsc::Sender<Bytes>>,
    pub output: mpsc::Receiver<(u8, Bytes)>,
    pub resize: Option<mpsc::Sender<(u16, u16)>>,
    /// Tell it when the process has exited (see [`OutputDrain`]).
    pub drain: OutputDrain,
    /// Resolves (`Ok` or `Err` alike) once the last output chunk has been handed to `output`.
    pub finished: oneshot::Receiver<()>,
}

/// Told that the process exited, lets its output flow for [`DRAIN_TIMEOUT`] more and then
/// ends it, so that a background process holding the stream open cannot keep a session (or
/// a container) from finishing. Dropped without being told, the output ends only when every
/// writer has closed it.
#[derive(Debug)]
pub struct OutputDrain(oneshot::Sender<Duration>);

impl OutputDrain {
    /// The process is gone: end the output once it is drained, at the latest after `timeout`.
    pub fn process_exited(self, timeout: Duration) {
        let _ = self.0.send(timeout);
    }
}

/// A pipe whose ends are closed on exec, so no other process the agent spawns inherits them
/// (an inherited write end would keep the stream from ever ending).
fn pipe() -> Result<(OwnedFd, OwnedFd), ExecError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ExecError::Pipe)
}

/// A pseudo-terminal pair, both ends closed on exec; the slave is not made our own
/// controlling terminal.
fn open_pty() -> Result<(OwnedFd, OwnedFd), ExecError> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    use std::os::unix::fs::OpenOptionsExt;
    let master =
        posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(ExecError::Pty)?;
    grantpt(&master).map_err(ExecError::Pty)?;
    unlockpt(&master).map_err(ExecError::Pty)?;
    let name = ptsname_r(&master).map_err(ExecError::Pty)?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(&name)
        .map_err(|e| ExecError::Pty(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
    Ok((master.into(), slave.into()))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, ExecError> {
    fd.try_clone().map_err(ExecError::Dup)
}

impl Stdio {
    pub fn new(options: StdioOptions) -> Result<Stdio, ExecError> {
        if options.tty {
            let (master, slave) = open_pty()?;
            let child = [
                ChildEnd::Fd(dup(&slave)?),
                ChildEnd::Fd(dup(&slave)?),
                ChildEnd::Fd(slave),
            ];
            return Ok(Stdio {
                options,
                child,
                master: Some(master),
                stdin_writer: None,
                output_readers: Vec::new(),
            });
        }
        let mut child = [ChildEnd::Null, ChildEnd::Null, ChildEnd::Null];
        let mut stdin_writer = None;
        let mut output_readers = Vec::new();
        if options.stdin {
            let (r, w) = pipe()?;
            child[0] = ChildEnd::Fd(r);
            stdin_writer = Some(w);
        }
        for (wanted, channel) in [(options.stdout, STDOUT), (options.stderr, STDERR)] {
            if wanted {
                let (r, w) = pipe()?;
                child[usize::from(channel)] = ChildEnd::Fd(w);
                output_readers.push((channel, r));
            }
        }
        Ok(Stdio {
            options,
            child,
            master: None,
            stdin_writer,
            output_readers,
        })
    }

    pub fn options(&self) -> StdioOptions {
        self.options
    }

    /// Gives `cmd` the process's ends of the streams. With a tty the process also starts a
    /// new session whose controlling terminal is the pty, as a runtime does for a `tty`
    /// container or exec (so job control and `^C` work inside it).
    pub fn configure(&self, cmd: &mut std::process::Command) -> Result<(), ExecError> {
        let stdio = |end: &ChildEnd| -> Result<std::process::Stdio, ExecError> {
            Ok(match end {
                ChildEnd::Null => std::process::Stdio::null(),
                ChildEnd::Fd(fd) => std::process::Stdio::from(dup(fd)?),
            })
        };
        cmd.stdin(stdio(&self.child[0])?)
            .stdout(stdio(&self.child[1])?)
            .stderr(stdio(&self.child[2])?);
        if self.options.tty {
            become_session_leader_of_stdin_terminal(cmd);
        }
        Ok(())
    }

    /// Starts moving bytes once the process is spawned (and the command that held copies of
    /// the process's ends is dropped): closes our copies of the process's ends, so that the
    /// output ends when the process (and whatever inherited its streams) closes them.
    /// Needs a Tokio runtime.
    pub fn start(self) -> Result<StdioStreams, ExecError> {
        let Stdio {
            options,
            child,
            master,
            stdin_writer,
            output_readers,
        } = self;
        drop(child);
        let (chunks_tx, chunks_rx) = mpsc::channel(OUTPUT_BUFFER);
        let mut stdin = None;
        let mut resize = None;
        match master {
            Some(master) => {
                if options.stdout || options.stderr {
                    spawn_reader(STDOUT, dup(&master)?, chunks_tx.clone());
                }
                if options.stdin {
                    stdin = Some(spawn_writer(dup(&master)?));
                }
                resize = Some(spawn_resizer(master));
            }
            None => {
                if let Some(w) = stdin_writer {
                    stdin = Some(spawn_writer(w));
                }
                for (channel, fd) in output_readers {
                    spawn_reader(channel, fd, chunks_tx.clone());
                }
            }
        }
        drop(chunks_tx);
        let (output_tx, output) = mpsc::channel(OUTPUT_BUFFER);
        let (drain_tx, drain_rx) = oneshot::channel();
        let (finished_tx, finished) = oneshot::channel();
        tokio::spawn(async move {
            forward_output(chunks_rx, output_tx, drain_rx).await;
            let _ = finished_tx.send(());
        });
        Ok(StdioStreams {
            stdin,
            output,
            resize,
            drain: OutputDrain(drain_tx),
            finished,
        })
    }
}

/// Moves output chunks to the consumer until every reader is done, or until the drain time
/// after the process's exit has passed.
async fn forward_output(
    mut chunks: mpsc::Receiver<(u8, Bytes)>,
    output: mpsc::Sender<(u8, Bytes)>,
    mut drain: oneshot::Receiver<Duration>,
) {
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut told = false;
    loop {
        let cutoff = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            chunk = chunks.recv() => match chunk {
                Some(c) => {
                    if output.send(c).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            timeout = &mut drain, if !told => {
                told = true;
                // A dropped drain handle means "wait for the end of the output".
                if let Ok(t) = timeout {
                    deadline = Some(tokio::time::Instant::now() + t);
                }
            }
            () = cutoff => return,
        }
    }
}

/// Reads one output stream on its own thread (a pty master and pipes are plain blocking
/// files). A pty master reports the end of the terminal as `EIO`.
fn spawn_reader(channel: u8, fd: OwnedFd, tx: mpsc::Sender<(u8, Bytes)>) {
    let mut file = File::from(fd);
    let spawned = std::thread::Builder::new()
        .name(format!("exec-out-{channel}"))
        .spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx
                            .blocking_send((channel, Bytes::copy_from_slice(&buf[..n])))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "starting an output reader thread failed");
    }
}

/// Writes what arrives for stdin on its own thread; when the sender is dropped the file is
/// closed, which is end-of-file for the process (for pipes; a terminal stays open).
fn spawn_writer(fd: OwnedFd) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(INPUT_BUFFER);
    let mut file = File::from(fd);
    let spawned = std::thread::Builder::new()
        .name("exec-in".into())
        .spawn(move || {
            while let Some(chunk) = rx.blocking_recv() {
                if file.write_all(&chunk).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "starting the stdin writer thread failed");
    }
    tx
}

/// Applies terminal size changes to the pty.
fn spawn_resizer(master: OwnedFd) -> mpsc::Sender<(u16, u16)> {
    let (tx, mut rx) = mpsc::channel::<(u16, u16)>(INPUT_BUFFER);
    tokio::spawn(async move {
        while let Some((width, height)) = rx.recv().await {
            if let Err(e) = set_window_size(master.as_fd(), width, height) {
                tracing::debug!(error = %e, "resizing the terminal failed");
            }
        }
    });
    tx
}

/// `TIOCSWINSZ` on the pty master: the process sees the new size (and gets `SIGWINCH`).
#[allow(unsafe_code)]
pub fn set_window_size(master: BorrowedFd<'_>, width: u16, height: u16) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let size = nix::libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which is valid for the call;
    // the descriptor is borrowed, so it is open.
    let r = unsafe { nix::libc::ioctl(master.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the child a session leader whose controlling terminal is its stdin (the pty slave).
#[allow(unsafe_code)]
fn become_session_leader_of_stdin_terminal(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // async-signal-safe system calls setsid(2) and ioctl(2); it allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if nix::libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The exit code a runtime reports: the status, or `128 + n` for a death by signal n.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 128,
    }
}

/// Runs `command` as a session with the streams of `options` (see the
/// [module documentation](self)). With a tty, `TERM=xterm` is added unless the environment
/// sets `TERM`, as container runtimes do. Needs a Tokio runtime.
pub fn run_session(command: &SessionCommand, options: StdioOptions) -> Result<Session, ExecError> {
    let (program, args) = command.argv.split_first().ok_or(ExecError::NoCommand)?;
    let stdio = Stdio::new(options)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(command.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&command.working_dir)
        .kill_on_drop(false);
    if options.tty && !command.env.iter().any(|(k, _)| k == "TERM") {
        cmd.env("TERM", "xterm");
    }
    stdio.configure(cmd.as_std_mut())?;
    let spawned = cmd.spawn();
    // The command holds copies of the process's ends: they must be closed for the output to end.
    drop(cmd);
    let mut child = spawned.map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound && program.contains('/') {
            ExecError::NoSuchFile {
                program: program.clone(),
            }
        } else if source.kind() == io::ErrorKind::NotFound {
            ExecError::NotFound {
                program: program.clone(),
            }
        } else {
            ExecError::Spawn {
                program: program.clone(),
                source,
            }
        }
    })?;
    let StdioStreams {
        stdin,
        output,
        resize,
        drain,
        finished,
    } = stdio.start()?;
    let (exit_tx, exit) = oneshot::channel();
    tokio::spawn(async move {
        let status = child.wait().await;
        drain.process_exited(DRAIN_TIMEOUT);
        // The consumer sees the end of the output before the exit code.
        let _ = finished.await;
        let result = status
            .map(exit_code)
            .map_err(|e| format!("waiting for the process: {e}"));
        let _ = exit_tx.send(result);
    });
    Ok(Session {
        stdin,
        output,
        resize,
        exit,
    })
}

/// How far a subscriber that may be dropped can fall behind.
const FANOUT_BUFFER: usize = 64;

#[derive(Debug, Default)]
struct Subscribers {
    /// Dropped when their queue is full, so one stuck client cannot stall the process.
    lossy: Vec<mpsc::Sender<(u8, Bytes)>>,
    /// Waited for (the container's log).
    lossless: Vec<mpsc::Sender<(u8, Bytes)>>,
    ended: bool,
}

/// One output stream delivered to several consumers: a container's log and the clients
/// attached to it. A subscriber gets the chunks from its subscription on (attach does not
/// replay earlier output); every receiver ends when the output does.
#[derive(Clone, Debug)]
pub struct OutputFanout {
    subscribers: std::sync::Arc<std::sync::Mutex<Subscribers>>,
}

impl OutputFanout {
    /// Starts delivering `output`. Needs a Tokio runtime.
    pub fn new(mut output: mpsc::Receiver<(u8, Bytes)>) -> OutputFanout {
        let subscribers = std::sync::Arc::new(std::sync::Mutex::new(Subscribers::default()));
        let shared = subscribers.clone();
        tokio::spawn(async move {
            while let Some(chunk) = output.recv().await {
                let lossless = match shared.lock() {
                    Ok(mut s) => {
                        s.lossy.retain(|tx| tx.try_send(chunk.clone()).is_ok());
                        s.lossless.clone()
                    }
                    Err(_) => return,
                };
                let mut gone = Vec::new();
                for tx in &lossless {
                    if tx.send(chunk.clone()).await.is_err() {
                        gone.push(tx.clone());
                    }
                }
                if !gone.is_empty()
                    && let Ok(mut s) = shared.lock()
                {
                    s.lossless
                        .retain(|tx| !gone.iter().any(|g| g.same_channel(tx)));
                }
            }
            if let Ok(mut s) = shared.lock() {
                s.ended = true;
                s.lossy.clear();
                s.lossless.clear();
            }
        });
        OutputFanout { subscribers }
    }

    fn add(&self, lossless: bool) -> mpsc::Receiver<(u8, Bytes)> {
        let (tx, rx) = mpsc::channel(FANOUT_BUFFER);
        if let Ok(mut s) = self.subscribers.lock()
            && !s.ended
        {
            if lossless {
                s.lossless.push(tx);
            } else {
                s.lossy.push(tx);
            }
        }
        rx
    }

    /// A consumer that is cut off (its receiver ends) if it falls behind: an attached client.
    pub fn subscribe(&self) -> mpsc::Receiver<(u8, Bytes)> {
        self.add(false)
    }

    /// A consumer the output waits for: the container's log.
    pub fn subscribe_lossless(&self) -> mpsc::Receiver<(u8, Bytes)> {
        self.add(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> SessionCommand {
        SessionCommand {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            working_dir: PathBuf::from("/"),
        }
    }

    const PIPES: StdioOptions = StdioOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };

    /// Collects the output per channel, then the exit.
    async fn finish(mut s: Session) -> (String, String, Result<i32, String>) {
        let (mut out, mut err) = (String::new(), String::new());
        let collect = async {
            while let Some((ch, data)) = s.output.recv().await {
                let text = String::from_utf8_lossy(&data).into_owned();
                match ch {
                    STDOUT => out.push_str(&text),
                    _ => err.push_str(&text),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), collect)
            .await
            .expect("output ends");
        let exit = tokio::time::timeout(Duration::from_secs(10), s.exit)
            .await
            .expect("exit reported")
            .expect("exit sent");
        (out, err, exit)
    }

    #[tokio::test]
    async fn stdout_stderr_and_the_exit_code_arrive_separately() {
        let s = run_session(&sh("echo out; echo err >&2; exit 3"), PIPES).expect("run");
        assert!(s.stdin.is_none() && s.resize.is_none());
        let (out, err, exit) = finish(s).await;
        assert_eq!(
            (out.as_str(), err.as_str(), exit),
            ("out\n", "err\n", Ok(3))
        );
    }

    #[tokio::test]
    async fn closing_stdin_is_end_of_file_for_the_process() {
        let opts = StdioOptions {
            stdin: true,
            ..PIPES
        };
        let mut s = run_session(&sh("cat; echo done"), opts).expect("run");
        let stdin = s.stdin.take().expect("stdin");
        stdin
            .send(Bytes::from_static(b"hello\n"))
            .await
            .expect("send");
        drop(stdin);
        let (out, _, exit) = finish(s).await;
        assert_eq!((out.as_str(), exit), ("hello\ndone\n", Ok(0)));
    }

    #[tokio::test]
    async fn streams_not_asked_for_are_not_delivered() {
        let opts = StdioOptions {
            stderr: false,
            ..PIPES
        };
        let s = run_session(&sh("echo out; echo err >&2"), opts).expect("run");
        let (out, err, exit) = finish(s).await;
        assert_eq!((out.as_str(), err.as_str(), exit), ("out\n", "", Ok(0)));
    }

    #[tokio::test]
    async fn a_tty_is_the_controlling_terminal_merges_stderr_and_follows_resizes() {
        let opts = StdioOptions {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        };
        let s = run_session(
            &sh("read line; tty; stty size; echo to-stderr >&2; echo $TERM; exit 5"),
            opts,
        )
        .expect("run");
        s.resize
            .as_ref()
            .expect("resize")
            .send((100, 40))
            .await
            .expect("resize");
        // Resizes are applied in order by one task: give it the chance before the read ends.
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.stdin
            .as_ref()
            .expect("stdin")
            .send(Bytes::from_static(b"go\n"))
            .await
            .expect("send");
        let (out, err, exit) = finish(s).await;
        assert!(out.contains("/dev/pts/"), "{out}");
        assert!(out.contains("40 100"), "{out}");
        assert!(out.contains("to-stderr"), "{out}");
        assert!(out.contains("xterm"), "{out}");
        assert_eq!((err.as_str(), exit), ("", Ok(5)));
    }

    #[tokio::test]
    async fn a_death_by_signal_is_128_plus_the_signal() {
        let s = run_session(&sh("kill -9 $$"), PIPES).expect("run");
        assert_eq!(finish(s).await.2, Ok(137));
    }

    #[tokio::test]
    async fn a_background_process_holding_the_output_does_not_hold_the_session() {
        let started = Instant::now();
        let s = run_session(&sh("sleep 6 & echo started"), PIPES).expect("run");
        let (out, _, exit) = finish(s).await;
        assert_eq!((out.as_str(), exit), ("started\n", Ok(0)));
        assert!(
            started.elapsed() < DRAIN_TIMEOUT + Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_before_anything_runs() {
        let mut cmd = sh("");
        cmd.argv = vec!["definitely-not-a-program-xyz".into()];
        let err = run_session(&cmd, PIPES).expect_err("fails");
        assert_eq!(
            err.to_string(),
            "exec: \"definitely-not-a-program-xyz\": executable file not found in $PATH"
        );
        cmd.argv = vec!["/definitely/not/here".into()];
        assert_eq!(
            run_session(&cmd, PIPES).expect_err("fails").to_string(),
            "exec: \"/definitely/not/here\": stat /definitely/not/here: no such file or directory"
        );
        cmd.argv.clear();
        assert!(matches!(
            run_session(&cmd, PIPES),
            Err(ExecError::NoCommand)
        ));
    }

    #[tokio::test]
    async fn fanout_waits_for_lossless_subscribers_and_cuts_off_stuck_ones() {
        let (tx, rx) = mpsc::channel(1);
        let fanout = OutputFanout::new(rx);
        let mut log = fanout.subscribe_lossless();
        let mut stuck = fanout.subscribe();
        let total = FANOUT_BUFFER + 10;
        let producer = tokio::spawn(async move {
            for i in 0..total {
                tx.send((STDOUT, Bytes::from(i.to_string())))
                    .await
                    .expect("send");
            }
        });
        let mut seen = 0;
        while let Some((_, data)) = log.recv().await {
            assert_eq!(data, Bytes::from(seen.to_string()));
            seen += 1;
        }
        producer.await.expect("producer");
        assert_eq!(seen, total, "the log got every chunk");
        let mut stuck_seen = 0;
        while stuck.recv().await.is_some() {
            stuck_seen += 1;
        }
        assert_eq!(stuck_seen, FANOUT_BUFFER, "the stuck client was cut off");
        assert!(
            fanout.subscribe().recv().await.is_none(),
            "a subscriber after the end gets nothing"
        );
    }
}
