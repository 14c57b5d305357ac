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

/// Starts a container instance.
pub async fn spawn(spec: &ProcessSpec) -> Result<RunningProcess, SpawnError> {
    let (program, args) = spec.argv.split_first().ok_or(SpawnError::NoCommand)?;
    let writer = LogWriter::create(&spec.log_path)
        .await
        .map_err(SpawnError::Log)?;
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
        .current_dir(&spec.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
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
        assert!(
            !is_alive(child_pid, None),
            "the container's child is gone too"
        );
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
