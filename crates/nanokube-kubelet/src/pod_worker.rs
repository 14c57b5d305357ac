//! The pod runtime: runs the pods bound to this node and reports their state.
//!
//! [`run`] watches pods with `spec.nodeName=<node>` and gives each pod UID its own
//! [`worker::PodWorker`] task. The worker is a thin I/O shell around pure logic:
//! [`status`] (phase, conditions, container statuses, restart back-off) and [`env`]
//! (environment and `$(VAR)` expansion); [`volumes`] materialises the pod's volumes;
//! [`process`] spawns container instances (through `container-init`, see
//! [`crate::container_init`], in their own namespaces, root and cgroup) and signals them;
//! [`events`] records what happened. Pods share the host's network (`podIP` = `hostIP`).

pub mod env;
pub mod events;
pub mod process;
pub mod status;
pub mod volumes;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::env::{ApiEndpoint, HostCapacity};
pub use self::worker::container_instance;
use self::worker::{PodWorker, Shared, Update};

/// How long the watch may fail without a break before the API server is considered gone.
const SERVER_GONE_AFTER: Duration = Duration::from_secs(30);

pub struct PodRuntimeConfig {
    pub node_name: String,
    /// Per-pod state and logs: `<pods_dir>/<pod-uid>/...`.
    pub pods_dir: PathBuf,
    /// For `KUBERNETES_SERVICE_HOST`/`_PORT` and friends.
    pub api_host: String,
    pub api_port: u16,
    /// `status.hostIP` / `podIP` (host network for now).
    pub host_ip: String,
    /// The binary implementing `nanokube container-init`/`container-enter` (in `nanokube
    /// server`, `/proc/self/exe`); `None` runs containers as plain host processes.
    pub runtime_binary: Option<PathBuf>,
    /// The local image store (`nanokube image import` fills it).
    pub images: Option<crate::image::ImageStore>,
}

struct WorkerHandle {
    updates: watch::Sender<Update>,
    task: JoinHandle<()>,
}

/// Watches pods bound to `node_name` (fieldSelector `spec.nodeName=<node>`) and runs them
/// until the client's server goes away.
pub async fn run(client: kube::Client, config: PodRuntimeConfig) {
    let shared = Arc::new(Shared {
        node_name: config.node_name.clone(),
        pods_dir: config.pods_dir.clone(),
        api: ApiEndpoint {
            host: config.api_host.clone(),
            port: config.api_port,
        },
        host_ip: config.host_ip.clone(),
        host: host_capacity(),
        runtime_binary: config.runtime_binary.clone(),
        images: config.images.clone(),
        cgroups: if config.runtime_binary.is_some() {
            crate::cgroups::CgroupManager::detect("nanokube")
        } else {
            None
        },
    });
    if let Err(e) = tokio::fs::create_dir_all(&config.pods_dir).await {
        tracing::warn!(dir = %config.pods_dir.display(), error = %e, "creating pods directory failed");
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let watch_config =
        watcher::Config::default().fields(&format!("spec.nodeName={}", config.node_name));
    let mut stream = watcher::watcher(pods, watch_config)
        .default_backoff()
        .boxed();

    let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
    // Pods whose worker finished (deleted, or gone): never run again, whatever the watch replays.
    let mut finished: HashSet<String> = HashSet::new();
    let mut listed: Option<HashSet<String>> = None;
    let mut failing_since: Option<Instant> = None;

    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(e) => {
                failing_since = None;
                e
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                tracing::debug!(error = %e, "pod watch failed");
                if since.elapsed() >= SERVER_GONE_AFTER {
                    tracing::info!("API server unreachable, stopping pod workers");
                    break;
                }
                continue;
            }
        };
        workers.retain(|uid, w| {
            if w.task.is_finished() {
                finished.insert(uid.clone());
                false
            } else {
                true
            }
        });
        match event {
            Event::Init => listed = Some(HashSet::new()),
            Event::InitApply(pod) | Event::Apply(pod) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                if let Some(l) = listed.as_mut() {
                    l.insert(uid.clone());
                }
                if finished.contains(&uid) {
                    continue;
                }
                match workers.get(&uid) {
                    Some(w) => {
                        let _ = w.updates.send(Update::Pod(Box::new(pod)));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Update::Pod(Box::new(pod.clone())));
                        let worker = PodWorker::new(client.clone(), shared.clone(), pod);
                        let task = tokio::spawn(worker.run(rx));
                        workers.insert(uid, WorkerHandle { updates: tx, task });
                    }
                }
            }
            Event::Delete(pod) => {
                if let Some(w) = pod.metadata.uid.as_ref().and_then(|uid| workers.get(uid)) {
                    let _ = w.updates.send(Update::Deleted);
                }
            }
            Event::InitDone => {
                // Pods deleted while the watch was down are not in the fresh list.
                if let Some(l) = listed.take() {
                    for (uid, w) in &workers {
                        if !l.contains(uid) {
                            let _ = w.updates.send(Update::Deleted);
                        }
                    }
                }
            }
        }
    }

    for w in workers.values() {
        let _ = w.updates.send(Update::Shutdown);
    }
    for (_, w) in workers {
        let _ = w.task.await;
    }
}

/// What `resourceFieldRef` on an unset limit reports (upstream: the node's allocatable).
fn host_capacity() -> HostCapacity {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as i64)
        .unwrap_or(1);
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    HostCapacity { cpus, memory_bytes }
}
