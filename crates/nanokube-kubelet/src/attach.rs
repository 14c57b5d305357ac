//! `kubectl exec` into a running container ([`exec`]), and `kubectl attach` (and
//! `kubectl run -i`): the live streams of running containers (output, and stdin or a
//! terminal for containers started with `stdin` or `tty`), registered by pod UID and
//! container name while they run.
//!
//! An attached client gets the output from the moment it attaches (no replay), may write to
//! the container's stdin, and resizes its terminal. With `stdinOnce` the container's stdin
//! is closed when the first attached client that sent stdin goes away.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use std::path::{Path, PathBuf};

use crate::container_init::{EnterSpec, INIT_PID_FILE, INIT_SPEC_FILE, InitSpec, SPEC_ENV};
use crate::exec::{OutputFanout, Session, SessionCommand, StdioOptions, run_session};

/// A running interactive container's streams.
pub struct Attachable {
    stdin: Mutex<Option<mpsc::Sender<Bytes>>>,
    output: OutputFanout,
    resize: Option<mpsc::Sender<(u16, u16)>>,
    pub tty: bool,
    stdin_once: bool,
    exited: watch::Receiver<Option<i32>>,
}

impl Attachable {
    pub fn new(
        stdin: Option<mpsc::Sender<Bytes>>,
        output: OutputFanout,
        resize: Option<mpsc::Sender<(u16, u16)>>,
        tty: bool,
        stdin_once: bool,
        exited: watch::Receiver<Option<i32>>,
    ) -> Self {
        Attachable {
            stdin: Mutex::new(stdin),
            output,
            resize,
            tty,
            stdin_once,
            exited,
        }
    }
}

type Registry = Mutex<HashMap<(String, String), Arc<Attachable>>>;

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn registry() -> std::sync::MutexGuard<'static, HashMap<(String, String), Arc<Attachable>>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes a container's streams attachable.
pub fn register(pod_uid: &str, container: &str, a: Attachable) {
    registry().insert((pod_uid.to_string(), container.to_string()), Arc::new(a));
}

/// Forgets a container's streams (it exited).
pub fn unregister(pod_uid: &str, container: &str) {
    registry().remove(&(pod_uid.to_string(), container.to_string()));
}

/// Attaches to a running container: what was asked for of stdin/stdout/stderr, for as long
/// as the client stays or the container runs.
pub fn attach(pod_uid: &str, container: &str, stdin: bool) -> Result<Session, String> {
    let target = registry()
        .get(&(pod_uid.to_string(), container.to_string()))
        .cloned()
        .ok_or_else(|| format!("container not found ({container:?})"))?;
    let (out_tx, output) = mpsc::channel(64);
    let (exit_tx, exit) = oneshot::channel();
    let mut from_container = target.output.subscribe();
    let mut exited = target.exited.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                chunk = from_container.recv() => match chunk {
                    Some(c) => {
                        if out_tx.send(c).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                _ = async { let _ = exited.wait_for(Option::is_some).await; } => {
                    // Deliver what is still buffered, then end.
                    while let Ok(c) = from_container.try_recv() {
                        let _ = out_tx.send(c).await;
                    }
                    break;
                }
            }
        }
        drop(out_tx);
        let _ = exit_tx.send(Ok(0));
    });
    let stdin = if stdin {
        let container_stdin = target
            .stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        container_stdin.map(|to_container| {
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            let target = target.clone();
            tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    if to_container.send(chunk).await.is_err() {
                        break;
                    }
                }
                drop(to_container);
                if target.stdin_once {
                    // The container's stdin ends with this client's (`stdinOnce`).
                    target
                        .stdin
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take();
                }
            });
            tx
        })
    } else {
        None
    };
    let resize = target.resize.clone();
    Ok(Session {
        stdin,
        output,
        resize,
        exit,
    })
}

/// `kubectl exec`: runs `command` inside the running container `container` of pod `pod_uid`
/// (its namespaces, root, cgroups, environment, working directory and user), through
/// `runtime_binary container-enter`. A container the agent runs without isolation gets the
/// command on the host.
pub fn exec(
    pods_dir: &Path,
    runtime_binary: &Path,
    pod_uid: &str,
    container: &str,
    command: Vec<String>,
    options: StdioOptions,
) -> Result<Session, String> {
    let instance = crate::pod_worker::container_instance(pods_dir, pod_uid, container);
    let Some((restart_count, true)) = instance else {
        // The kubelet's answer when the runtime has no running container of that name.
        return Err(format!("container not found ({container:?})"));
    };
    let scratch = pods_dir
        .join(pod_uid)
        .join("containers")
        .join(format!("{container}-{restart_count}"));
    let init: Option<InitSpec> = std::fs::read(scratch.join(INIT_SPEC_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let pid: Option<i32> = std::fs::read_to_string(scratch.join(INIT_PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let session = match (init, pid) {
        (Some(init), Some(pid)) => {
            let mut env = init.env;
            if options.tty && !env.iter().any(|(k, _)| k == "TERM") {
                env.push(("TERM".into(), "xterm".into()));
            }
            let spec = EnterSpec {
                pid,
                argv: command,
                env,
                cwd: init.cwd,
                user: init.user,
                cgroup_procs: init.cgroup_procs,
                tty: options.tty,
            };
            let json = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
            SessionCommand {
                argv: vec![
                    runtime_binary.display().to_string(),
                    "container-enter".into(),
                ],
                env: vec![(SPEC_ENV.to_string(), json)],
                working_dir: PathBuf::from("/"),
            }
        }
        _ => SessionCommand {
            argv: command,
            env: vec![(
                "PATH".into(),
                crate::pod_worker::env::DEFAULT_PATH.to_string(),
            )],
            working_dir: PathBuf::from("/"),
        },
    };
    run_session(&session, options).map_err(|e| e.to_string())
}
