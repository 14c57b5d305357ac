//! Container instances as host processes: spawned in their own process group (so a signal
//! reaches everything the container started), stdin from `/dev/null`, stdout and stderr piped
//! into the instance's CRI log file.

use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::oneshot;

use crate::logs::LogWriter;

/// How long the log copier may keep reading after the container's main process exited
/// (something that escaped the process group may still hold the pipes open).
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    pub log_path: PathBuf,
    /// Run inside the container's own namespaces and root (through `container-init`);
    /// `None` runs a plain host process (unit tests, and hosts without a runtime binary).
    pub isolation: Option<Isolation>,
    /// A container with `stdin` or `tty`: its streams are kept for `kubectl attach`,
    /// registered under this key.
    pub interactive: Option<Interactive>,
}

/// How an interactive container's streams are set up and found again.
#[derive(Clone, Debug)]
pub struct Interactive {
    pub pod_uid: String,
    pub container: String,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
}

/// How to isolate a container: the binary that implements `container-init` (nanokube
/// itself) and the container's namespace/root/mount spec.
#[derive(Clone, Debug)]
pub struct Isolation {
    pub runtime_binary: PathBuf,
    pub init: crate::container_init::InitSpec,
}

/// How a process ended: `code` for a normal exit, `signal` for a death by signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub finished_at: DateTime<Utc>,
}

/// A started container instance.
#[derive(Debug)]
pub struct RunningProcess {
    /// Process id, which is also its process group id.
    pub pid: i32,
    pub proc_start: Option<u64>,
    pub started_at: DateTime<Utc>,
    /// Resolves once the process exited, its group was killed and its output drained.
    pub exit: oneshot::Receiver<ProcessExit>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("failed to create log file: {0}")]
    Log(io::Error),
    #[error("failed to create working directory {dir}: {source}")]
    WorkingDir { dir: String, source: io::Error },
    #[error(
        "failed to start container process: exec: \"{program}\": executable file not found in $PATH"
    )]
    NotFound { program: String },
    #[error("failed to start container process: exec: \"{program}\": {source}")]
    Exec { program: String, source: io::Error },
    #[error("failed to start container process: no command")]
    NoCommand,
}

/// Checks that `program` can be run, as the runtime would find it (on `PATH` unless it has a
/// slash), so a typo is a `StartError` with upstream's message rather than an exit 127.
pub fn check_program(program: &str, path: Option<&str>) -> Result<(), SpawnError> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        runnable(std::path::Path::new(program))
    } else {
        path.unwrap_or(crate::pod_worker::env::DEFAULT_PATH)
            .split(':')
            .filter(|d| !d.is_empty())
            .any(|d| runnable(&std::path::Path::new(d).join(program)))
    };
    if found {
        Ok(())
    } else {
        Err(SpawnError::NotFound {
            program: program.to_string(),
        })
    }
}

/// [`check_program`] inside an image's root filesystem: symlinks are followed relative to
/// `rootfs`, as they will be once the container runs in it.
pub fn check_program_in(
    rootfs: &std::path::Path,
    program: &str,
    path: Option<&str>,
) -> Result<(), SpawnError> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &str| {
        resolve_in_root(rootfs, p).is_some_and(|real| {
            std::fs::metadata(real)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    };
    let found = if program.contains('/') {
        runnable(program)
    } else {
        path.unwrap_or(crate::pod_worker::env::DEFAULT_PATH)
            .split(':')
            .filter(|d| !d.is_empty())
            .any(|d| runnable(&format!("{}/{program}", d.trim_end_matches('/'))))
    };
    if found {
        Ok(())
    } else {
        Err(SpawnError::NotFound {
            program: program.to_string(),
        })
    }
}

/// The host path of container path `p` in `rootfs`, following symlinks inside it.
fn resolve_in_root(rootfs: &std::path::Path, p: &str) -> Option<PathBuf> {
    let mut parts: std::collections::VecDeque<String> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = parts.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let here = resolved
            .iter()
            .fold(rootfs.to_path_buf(), |acc, c| acc.join(c))
            .join(&c);
        let meta = here.symlink_metadata().ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let link = std::fs::read_link(&here).ok()?;
            let target = link.to_string_lossy().into_owned();
            if target.starts_with('/') {
                resolved.clear();
            }
            let mut next: std::collections::VecDeque<String> = target
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(String::from)
                .collect();
            next.extend(parts.drain(..));
            parts = next;
        } else {
            resolved.push(c);
        }
    }
    Some(
        resolved
            .iter()
            .fold(rootfs.to_path_buf(), |acc, c| acc.join(c)),
    )
}

/// Starts a container instance.
pub async fn spawn(spec: &ProcessSpec) -> Result<RunningProcess, SpawnError> {
    let (program, args) = spec.argv.split_first().ok_or(SpawnError::NoCommand)?;
    let writer = LogWriter::create(&spec.log_path)
        .await
        .map_err(SpawnError::Log)?;
    let mut cmd = match &spec.isolation {
        None => {
            // Runtimes create a missing working directory.
            tokio::fs::create_dir_all(&spec.working_dir)
                .await
                .map_err(|source| SpawnError::WorkingDir {
                    dir: spec.working_dir.display().to_string(),
                    source,
                })?;
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args)
                .env_clear()
                .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .current_dir(&spec.working_dir);
            cmd
        }
        Some(iso) => {
            // `container-init` reports a command it cannot find or run on stderr (the
            // container's log) and exits 127/126; the worker checks the common case first.
            let json = serde_json::to_string(&iso.init).map_err(|e| SpawnError::Exec {
                program: program.clone(),
                source: io::Error::other(e),
            })?;
            tokio::fs::create_dir_all(&iso.init.scratch)
                .await
                .map_err(|source| SpawnError::WorkingDir {
                    dir: iso.init.scratch.display().to_string(),
                    source,
                })?;
            // Kept for `kubectl exec`, which enters the container as it was started.
            tokio::fs::write(
                iso.init.scratch.join(crate::container_init::INIT_SPEC_FILE),
                &json,
            )
            .await
            .map_err(|source| SpawnError::WorkingDir {
                dir: iso.init.scratch.display().to_string(),
                source,
            })?;
            let mut cmd = tokio::process::Command::new(&iso.runtime_binary);
            cmd.arg("container-init")
                .env_clear()
                .env(crate::container_init::SPEC_ENV, json)
                .current_dir("/");
            cmd
        }
    };
    cmd.kill_on_drop(false);
    if let Some(inter) = &spec.interactive {
        return spawn_interactive(cmd, program, inter, writer).await;
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            SpawnError::NotFound {
                program: program.clone(),
            }
        } else {
            SpawnError::Exec {
                program: program.clone(),
                source,
            }
        }
    })?;
    let started_at = Utc::now();
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let log_task = tokio::spawn(async move {
        if let Err(e) = writer.capture(stdout, stderr).await {
            tracing::warn!(error = %e, "container log capture failed");
        }
    });
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let status = child.wait().await;
        let finished_at = Utc::now();
        // A container ends with its main process: whatever else it started goes too.
        signal_group(pid, Signal::SIGKILL);
        let _ = tokio::time::timeout(LOG_DRAIN_TIMEOUT, log_task).await;
        let exit = match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                ProcessExit {
                    code: s.code(),
                    signal: s.signal(),
                    finished_at,
                }
            }
            Err(e) => {
                tracing::warn!(pid, error = %e, "waiting for container process failed");
                ProcessExit {
                    code: None,
                    signal: None,
                    finished_at,
                }
            }
        };
        let _ = tx.send(exit);
    });
    Ok(RunningProcess {
        pid,
        proc_start: proc_start_time(pid),
        started_at,
        exit: rx,
    })
}

/// Starts a container whose stdin (a pipe) or terminal (a pty) is kept open, its output
/// going both to the log and to whoever attaches (see [`crate::attach`]).
async fn spawn_interactive(
    mut cmd: tokio::process::Command,
    program: &str,
    inter: &Interactive,
    writer: LogWriter,
) -> Result<RunningProcess, SpawnError> {
    use crate::exec::{OutputFanout, STDERR, Stdio as Streams, StdioOptions};
    let exec_err = |e: crate::exec::ExecError| SpawnError::Exec {
        program: program.to_string(),
        source: io::Error::other(e.to_string()),
    };
    let streams = Streams::new(StdioOptions {
        stdin: inter.stdin,
        stdout: true,
        stderr: !inter.tty,
        tty: inter.tty,
    })
    .map_err(exec_err)?;
    // With a terminal the process starts its own session (and so its own process group);
    // without, it gets its own process group as every container does.
    streams.configure(cmd.as_std_mut()).map_err(exec_err)?;
    if !inter.tty {
        cmd.process_group(0);
    }
    let spawned = cmd.spawn();
    drop(cmd);
    let mut child = spawned.map_err(|source| SpawnError::Exec {
        program: program.to_string(),
        source,
    })?;
    let started_at = Utc::now();
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let started = streams.start().map_err(exec_err)?;
    let fanout = OutputFanout::new(started.output);
    let mut log_rx = fanout.subscribe_lossless();
    let log_task = tokio::spawn(async move {
        while let Some((channel, chunk)) = log_rx.recv().await {
            let stream = if channel == STDERR {
                crate::logs::LogStream::Stderr
            } else {
                crate::logs::LogStream::Stdout
            };
            for line in chunk.split_inclusive(|b| *b == b'\n') {
                let (content, partial) = match line.strip_suffix(b"\n") {
                    Some(l) => (l.strip_suffix(b"\r").unwrap_or(l), false),
                    None => (line, true),
                };
                if let Err(e) = writer.write_record(stream, partial, content).await {
                    tracing::warn!(error = %e, "container log capture failed");
                    return;
                }
            }
        }
    });
    let (exited_tx, exited_rx) = tokio::sync::watch::channel(None);
    crate::attach::register(
        &inter.pod_uid,
        &inter.container,
        crate::attach::Attachable::new(
            started.stdin,
            fanout,
            started.resize,
            inter.tty,
            inter.stdin_once,
            exited_rx,
        ),
    );
    let drain = started.drain;
    let finished = started.finished;
    let (tx, rx) = oneshot::channel();
    let key = (inter.pod_uid.clone(), inter.container.clone());
    tokio::spawn(async move {
        let status = child.wait().await;
        let finished_at = Utc::now();
        signal_group(pid, Signal::SIGKILL);
        drain.process_exited(LOG_DRAIN_TIMEOUT);
        let _ = tokio::time::timeout(LOG_DRAIN_TIMEOUT, finished).await;
        let _ = tokio::time::timeout(LOG_DRAIN_TIMEOUT, log_task).await;
        let code = status.as_ref().ok().map(|s| crate::exec::exit_code(*s));
        let _ = exited_tx.send(Some(code.unwrap_or(128)));
        crate::attach::unregister(&key.0, &key.1);
        let exit = match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                ProcessExit {
                    code: s.code(),
                    signal: s.signal(),
                    finished_at,
                }
            }
            Err(_) => ProcessExit {
                code: None,
                signal: None,
                finished_at,
            },
        };
        let _ = tx.send(exit);
    });
    Ok(RunningProcess {
        pid,
        proc_start: proc_start_time(pid),
        started_at,
        exit: rx,
    })
}

/// Sends `signal` to the process group `pgid`; a group that is already gone is fine.
pub fn signal_group(pgid: i32, signal: Signal) {
    if pgid <= 1 {
        return;
    }
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pgid, %signal, error = %e, "signalling container process group failed")
        }
    }
}

/// The start time of process `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `proc_start` still exists (and is not a zombie).
pub fn is_alive(pid: i32, proc_start: Option<u64>) -> bool {
    if pid <= 1 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|s| s == "Z");
    !zombie && (proc_start.is_none() || proc_start_time(pid) == proc_start)
}

/// Stops one instance: SIGTERM to its group, then SIGKILL once `grace` is over.
pub async fn terminate(process: &mut RunningProcess, grace: Duration) -> Option<ProcessExit> {
    signal_group(process.pid, Signal::SIGTERM);
    if let Ok(r) = tokio::time::timeout(grace, &mut process.exit).await {
        return r.ok();
    }
    signal_group(process.pid, Signal::SIGKILL);
    (&mut process.exit).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{LogOptions, read};
    use futures::StreamExt;

    /// Kills the process group when a test fails half-way.
    struct Reaper(i32);
    impl Drop for Reaper {
        fn drop(&mut self) {
            signal_group(self.0, Signal::SIGKILL);
        }
    }

    fn spec(dir: &std::path::Path, script: &str) -> ProcessSpec {
        ProcessSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![
                ("GREETING".into(), "hi".into()),
                ("PATH".into(), "/usr/bin:/bin".into()),
            ],
            working_dir: dir.join("work"),
            log_path: crate::logs::log_path(dir, "uid", "c", 0),
            isolation: None,
            interactive: None,
        }
    }

    async fn log_text(dir: &std::path::Path) -> String {
        let s = read(dir, "uid", "c", 0, LogOptions::default(), || false).expect("log");
        let chunks: Vec<_> = s.collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8_lossy(&c.expect("chunk")).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn exit_code_and_output_are_captured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = spawn(&spec(
            dir.path(),
            "echo $GREETING; echo err >&2; pwd; exit 3",
        ))
        .await
        .expect("spawn");
        let _reaper = Reaper(p.pid);
        let exit = tokio::time::timeout(Duration::from_secs(10), &mut p.exit)
            .await
            .expect("exits")
            .expect("exit");
        assert_eq!((exit.code, exit.signal), (Some(3), None));
        let text = log_text(dir.path()).await;
        assert!(text.contains("hi\n"), "{text}");
        assert!(text.contains("err\n"), "{text}");
        assert!(
            text.contains(&format!("{}\n", dir.path().join("work").display())),
            "{text}"
        );
    }

    #[tokio::test]
    async fn sigterm_is_escalated_to_sigkill_after_the_grace_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = spawn(&spec(
            dir.path(),
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ))
        .await
        .expect("spawn");
        let _reaper = Reaper(p.pid);
        assert!(is_alive(p.pid, p.proc_start));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let exit = tokio::time::timeout(
            Duration::from_secs(10),
            terminate(&mut p, Duration::from_millis(500)),
        )
        .await
        .expect("terminates")
        .expect("exit");
        assert_eq!(exit.signal, Some(9));
        assert!(started.elapsed() >= Duration::from_millis(500));
        assert!(!is_alive(p.pid, p.proc_start));
    }

    #[tokio::test]
    async fn sigterm_ends_a_cooperative_process_and_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = spawn(&spec(dir.path(), "sleep 30 & echo $! > child.pid; wait"))
            .await
            .expect("spawn");
        let _reaper = Reaper(p.pid);
        let pid_file = dir.path().join("work/child.pid");
        let mut child_pid = None;
        for _ in 0..50 {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                child_pid = Some(pid);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let child_pid = child_pid.expect("child started");
        let exit = terminate(&mut p, Duration::from_secs(5))
            .await
            .expect("exit");
        assert_eq!(exit.signal, Some(15));
        // A signal is delivered asynchronously: give the kernel a moment to end the child.
        let mut gone = false;
        for _ in 0..100 {
            if !is_alive(child_pid, None) {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "the container's child is gone too");
    }

    #[tokio::test]
    async fn missing_program_is_a_start_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = spec(dir.path(), "");
        s.argv = vec!["definitely-not-a-program-xyz".into()];
        let err = spawn(&s).await.expect_err("fails");
        assert_eq!(
            err.to_string(),
            "failed to start container process: exec: \"definitely-not-a-program-xyz\": executable file not found in $PATH"
        );
    }
}
