//! One pod's worker: the I/O shell around [`super::status`]. It starts containers in order,
//! restarts them per `restartPolicy` with back-off, enforces `activeDeadlineSeconds`, stops
//! everything on graceful deletion and writes `pods/status` and Events as it goes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ConfigMap, Container, ContainerStatus, Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::env::{self, ApiEndpoint, EnvSources, HostCapacity, PodContext};
use super::events::{self, EventType};
use super::process::{self, ProcessExit, ProcessSpec};
use super::status::{
    self, ContainerRuntime, DEADLINE_MESSAGE, DEADLINE_REASON, RestartPlan, RestartPolicy,
    RunState, StatusInputs, Terminated,
};
use super::volumes::{self, VolumeManager};
use crate::container_init::{BindMount, InitSpec, Root};
use crate::logs;

/// How often a worker looks at its pod even when nothing happened.
const RESYNC: Duration = Duration::from_secs(30);
/// How long to wait for processes to die after SIGKILL before declaring them gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// What the dispatcher tells a worker.
#[derive(Clone, Debug)]
pub enum Update {
    /// The pod as last seen by the watch.
    Pod(Box<Pod>),
    /// The pod is gone from the API.
    Deleted,
    /// The agent is stopping.
    Shutdown,
}

/// Settings shared by every worker.
#[derive(Debug)]
pub struct Shared {
    pub node_name: String,
    pub pods_dir: PathBuf,
    pub api: ApiEndpoint,
    pub host_ip: String,
    pub host: HostCapacity,
    /// The binary implementing `container-init` (nanokube itself); `None` runs containers
    /// as plain host processes.
    pub runtime_binary: Option<PathBuf>,
    /// The local image store; containers whose image is in it run chrooted in a copy of it.
    pub images: Option<crate::image::ImageStore>,
    /// Where container cgroups (limits, OOM detection, killing) are made; `None` without
    /// usable cgroups.
    pub cgroups: Option<crate::cgroups::CgroupManager>,
}

/// The worker's state file, `<pods_dir>/<uid>/state.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    name: String,
    namespace: String,
    uid: String,
    start_time: Option<DateTime<Utc>>,
    init: Vec<ContainerRuntime>,
    main: Vec<ContainerRuntime>,
    deadline_exceeded: bool,
}

/// The current instance of container `name` of pod `uid` as the worker last recorded it: its
/// restart count (which names its log file) and whether it is running. For the log endpoint:
/// which file to read, and when a follower should stop.
pub fn container_instance(
    pods_dir: &std::path::Path,
    uid: &str,
    name: &str,
) -> Option<(i32, bool)> {
    let bytes = std::fs::read(pods_dir.join(uid).join("state.json")).ok()?;
    let state: StateFile = serde_json::from_slice(&bytes).ok()?;
    state
        .init
        .iter()
        .chain(&state.main)
        .find(|c| c.name == name)
        .map(|c| (c.restart_count, c.is_running()))
}

/// A container instance's exit, as reported to the worker.
#[derive(Debug)]
struct Exit {
    container_id: String,
    exit: ProcessExit,
    /// The kernel's OOM killer killed a process of the container's cgroup.
    oom_killed: bool,
}

/// Which list a container is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Init,
    Main,
}

/// The pod went away under us (a write answered 404): stop and clean up.
struct Gone;

pub struct PodWorker {
    client: kube::Client,
    shared: Arc<Shared>,
    pod: Pod,
    uid: String,
    name: String,
    namespace: String,
    start_time: DateTime<Utc>,
    init: Vec<ContainerRuntime>,
    main: Vec<ContainerRuntime>,
    deadline_exceeded: bool,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits_rx: mpsc::UnboundedReceiver<Exit>,
    last_status: Option<serde_json::Value>,
    /// Containers whose current back-off already has its `BackOff` event.
    backoff_announced: BTreeMap<String, DateTime<Utc>>,
    /// The pod's volumes: set up before containers start, then refreshed.
    volumes: VolumeManager,
}

impl PodWorker {
    pub fn new(client: kube::Client, shared: Arc<Shared>, pod: Pod) -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let meta = &pod.metadata;
        PodWorker {
            uid: meta.uid.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            namespace: meta.namespace.clone().unwrap_or_else(|| "default".into()),
            client,
            shared,
            start_time: Utc::now(),
            init: Vec::new(),
            main: Vec::new(),
            deadline_exceeded: false,
            exits_tx,
            exits_rx,
            last_status: None,
            backoff_announced: BTreeMap::new(),
            volumes: VolumeManager::new(),
            pod,
        }
    }

    fn pod_dir(&self) -> PathBuf {
        self.shared.pods_dir.join(&self.uid)
    }

    fn state_path(&self) -> PathBuf {
        self.pod_dir().join("state.json")
    }

    /// Runs the pod until it is deleted or the agent stops.
    pub async fn run(mut self, mut updates: watch::Receiver<Update>) {
        self.restore(Utc::now());
        loop {
            let now = Utc::now();
            match self.step(now).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(Gone) => {
                    self.kill_all_now().await;
                    self.cleanup().await;
                    return;
                }
            }
            let wake = self.next_wake(now);
            tokio::select! {
                changed = updates.changed() => {
                    let update = if changed.is_err() { Update::Shutdown } else { updates.borrow_and_update().clone() };
                    match update {
                        Update::Pod(p) => self.pod = *p,
                        Update::Deleted => {
                            self.kill_all_now().await;
                            self.cleanup().await;
                            return;
                        }
                        Update::Shutdown => {
                            // Containers do not outlive the agent that captures their output; the
                            // state file still says "running", so a restarted agent reports them
                            // as ContainerStatusUnknown and restarts them per policy.
                            for c in self.init.iter().chain(&self.main) {
                                if let RunState::Running { pid, .. } = c.state {
                                    process::signal_group(pid, Signal::SIGKILL);
                                }
                            }
                            return;
                        }
                    }
                }
                Some(exit) = self.exits_rx.recv() => self.record_exit(exit),
                _ = tokio::time::sleep(wake) => {}
            }
        }
    }

    /// Loads the containers' state: the state file from an earlier run of this agent, else
    /// what the API status says, else fresh. Instances recorded as running whose process is
    /// gone become terminated with `ContainerStatusUnknown`.
    fn restore(&mut self, now: DateTime<Utc>) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let saved: Option<StateFile> = std::fs::read(self.state_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &StateFile| s.uid == self.uid);
        let status = self.pod.status.clone().unwrap_or_default();
        let has_init = !spec
            .init_containers
            .as_deref()
            .unwrap_or_default()
            .is_empty();
        let build = |containers: &[Container],
                     saved: Option<&Vec<ContainerRuntime>>,
                     api: Option<&Vec<ContainerStatus>>,
                     waiting: &str| {
            containers
                .iter()
                .map(|c| {
                    let image = c.image.clone().unwrap_or_default();
                    saved
                        .and_then(|s| s.iter().find(|r| r.name == c.name).cloned())
                        .or_else(|| {
                            api.and_then(|a| a.iter().find(|s| s.name == c.name))
                                .map(|s| from_api_status(s, now))
                        })
                        .unwrap_or_else(|| ContainerRuntime::new(&c.name, &image, waiting))
                })
                .collect::<Vec<_>>()
        };
        self.init = build(
            spec.init_containers.as_deref().unwrap_or_default(),
            saved.as_ref().map(|s| &s.init),
            status.init_container_statuses.as_ref(),
            "PodInitializing",
        );
        self.main = build(
            &spec.containers,
            saved.as_ref().map(|s| &s.main),
            status.container_statuses.as_ref(),
            if has_init {
                "PodInitializing"
            } else {
                "ContainerCreating"
            },
        );
        if let Some(s) = &saved {
            self.deadline_exceeded = s.deadline_exceeded;
            if let Some(t) = s.start_time {
                self.start_time = t;
            }
        }
        if let Some(t) = status.start_time.as_ref() {
            self.start_time = from_time(t);
        }
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            if let RunState::Running {
                pid,
                proc_start,
                started_at,
                container_id,
            } = c.state.clone()
            {
                // Its output pipes died with the previous agent: it cannot be supervised.
                if process::is_alive(pid, proc_start) {
                    process::signal_group(pid, Signal::SIGKILL);
                }
                c.state = RunState::Terminated(Terminated {
                    exit_code: status::UNKNOWN_EXIT_CODE,
                    signal: None,
                    reason: status::UNKNOWN_REASON.into(),
                    message: Some(status::UNKNOWN_MESSAGE.into()),
                    started_at: Some(started_at),
                    finished_at: now,
                    container_id: Some(container_id),
                });
            }
        }
    }

    fn save_state(&self) {
        let state = StateFile {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            uid: self.uid.clone(),
            start_time: Some(self.start_time),
            init: self.init.clone(),
            main: self.main.clone(),
            deadline_exceeded: self.deadline_exceeded,
        };
        let dir = self.pod_dir();
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join("state.json.tmp");
            std::fs::write(
                &tmp,
                serde_json::to_vec_pretty(&state).map_err(std::io::Error::other)?,
            )?;
            std::fs::rename(&tmp, dir.join("state.json"))
        };
        if let Err(e) = write() {
            tracing::warn!(pod = %self.name, error = %e, "writing pod state file failed");
        }
    }

    async fn cleanup(&self) {
        if let Some(cg) = self
            .shared
            .cgroups
            .as_ref()
            .and_then(|m| m.open(&format!("pod{}", self.uid)))
        {
            let _ = tokio::task::spawn_blocking(move || {
                cg.kill_all();
                cg.remove()
            })
            .await;
        }
        if let Err(e) = volumes::cleanup(&self.pod_dir()).await {
            tracing::warn!(pod = %self.name, error = %e, "removing pod volumes failed");
        }
        if let Err(e) = tokio::fs::remove_dir_all(self.pod_dir()).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(pod = %self.name, error = %e, "removing pod directory failed");
        }
    }

    fn stored_phase_terminal(&self) -> bool {
        matches!(
            self.pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    }

    fn any_running(&self) -> bool {
        self.init
            .iter()
            .chain(&self.main)
            .any(ContainerRuntime::is_running)
    }

    /// One reconcile pass; `Ok(false)` ends the worker.
    async fn step(&mut self, now: DateTime<Utc>) -> Result<bool, Gone> {
        if self.pod.metadata.deletion_timestamp.is_some() {
            let grace = self.deletion_grace();
            self.kill_all(grace).await;
            self.write_status(Utc::now(), true).await?;
            self.save_state();
            self.final_delete().await;
            self.cleanup().await;
            return Ok(false);
        }
        if self.stored_phase_terminal() {
            // Nothing runs in a finished pod; the worker waits for its deletion.
            if self.any_running() {
                self.kill_all(Duration::ZERO).await;
            }
            self.save_state();
            return Ok(true);
        }
        if !self.deadline_exceeded && self.deadline().is_some_and(|d| now >= d) {
            self.deadline_exceeded = true;
            self.event(None, EventType::Normal, DEADLINE_REASON, DEADLINE_MESSAGE)
                .await;
            let grace = self.termination_grace();
            self.kill_all(grace).await;
        }
        if !self.deadline_exceeded && self.sync_volumes(now).await {
            self.sync_containers(now).await;
        }
        self.save_state();
        self.write_status(Utc::now(), self.deadline_exceeded)
            .await?;
        Ok(true)
    }

    fn deadline(&self) -> Option<DateTime<Utc>> {
        let secs = self.pod.spec.as_ref()?.active_deadline_seconds?;
        Some(self.start_time + chrono::Duration::seconds(secs))
    }

    fn termination_grace(&self) -> Duration {
        let secs = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        Duration::from_secs(secs.max(0) as u64)
    }

    fn deletion_grace(&self) -> Duration {
        match self.pod.metadata.deletion_grace_period_seconds {
            Some(s) => Duration::from_secs(s.max(0) as u64),
            None => self.termination_grace(),
        }
    }

    /// When the worker must look again even if nothing is reported.
    fn next_wake(&self, now: DateTime<Utc>) -> Duration {
        let policy = RestartPolicy::of(&self.pod);
        let mut wake = now + chrono::Duration::from_std(RESYNC).unwrap_or_default();
        let mut consider = |t: DateTime<Utc>| {
            if t < wake {
                wake = t;
            }
        };
        for c in self.init.iter().chain(&self.main) {
            if let Some(t) = c.retry_at {
                consider(t);
            }
            if let (RunState::Waiting { .. }, Some(t)) = (&c.state, &c.last_termination)
                && policy.restarts(t.exit_code)
                && let RestartPlan::After { at, .. } =
                    status::plan_restart(c.backoff, t.finished_at, now)
            {
                consider(at);
            }
        }
        if !self.deadline_exceeded
            && let Some(d) = self.deadline()
        {
            consider(d);
        }
        if !self.deadline_exceeded
            && !self.stored_phase_terminal()
            && let Some(t) = self.volumes.next_wake()
        {
            consider(t);
        }
        (wake - now).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(5)
    }

    fn record_exit(&mut self, exit: Exit) {
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            if let RunState::Running {
                container_id,
                started_at,
                ..
            } = &c.state
                && *container_id == exit.container_id
            {
                let mut t = Terminated::from_exit(
                    exit.exit.code,
                    exit.exit.signal,
                    *started_at,
                    exit.exit.finished_at,
                    container_id,
                );
                if exit.oom_killed && t.exit_code != 0 {
                    t.reason = "OOMKilled".into();
                }
                c.state = RunState::Terminated(t);
                return;
            }
        }
    }

    /// Starts what should run now: the next init container, or all main containers.
    async fn sync_containers(&mut self, now: DateTime<Utc>) {
        let policy = RestartPolicy::of(&self.pod);
        let spec = self.pod.spec.clone().unwrap_or_default();
        if let Some(i) = self.init.iter().position(|c| !c.succeeded()) {
            let Some(container) = spec
                .init_containers
                .as_ref()
                .and_then(|cs| cs.get(i))
                .cloned()
            else {
                return;
            };
            self.sync_container(Kind::Init, i, &container, policy, now)
                .await;
            return;
        }
        for (i, container) in spec.containers.iter().enumerate() {
            if let Some(RunState::Waiting { reason, .. }) = self.main.get(i).map(|c| &c.state)
                && reason == "PodInitializing"
            {
                self.main[i].state = RunState::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                };
            }
            self.sync_container(Kind::Main, i, container, policy, now)
                .await;
        }
    }

    fn runtime_mut(&mut self, kind: Kind, i: usize) -> Option<&mut ContainerRuntime> {
        match kind {
            Kind::Init => self.init.get_mut(i),
            Kind::Main => self.main.get_mut(i),
        }
    }

    async fn sync_container(
        &mut self,
        kind: Kind,
        i: usize,
        container: &Container,
        policy: RestartPolicy,
        now: DateTime<Utc>,
    ) {
        let pod_ref = (self.name.clone(), self.namespace.clone(), self.uid.clone());
        let Some(rt) = self.runtime_mut(kind, i) else {
            return;
        };
        if rt.is_running() {
            return;
        }
        let Some(t) = rt.latest_exit().cloned() else {
            // Never ran: start it, unless a failed attempt is still backing off.
            if rt.retry_at.is_none_or(|r| now >= r) {
                self.start(kind, i, container, now).await;
            }
            return;
        };
        let restarts = match kind {
            Kind::Init => policy.restarts_init(t.exit_code),
            Kind::Main => policy.restarts(t.exit_code),
        };
        if !restarts {
            return;
        }
        match status::plan_restart(rt.backoff, t.finished_at, now) {
            RestartPlan::Now(entry) => {
                if rt.retry_at.is_some_and(|r| now < r) {
                    return;
                }
                rt.backoff = Some(entry);
                self.start(kind, i, container, now).await;
            }
            RestartPlan::After { delay, .. } => {
                let (pod, ns, uid) = pod_ref;
                if let RunState::Terminated(t) = &rt.state {
                    rt.last_termination = Some(t.clone());
                }
                rt.state = RunState::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(status::crash_loop_message(
                        delay,
                        &container.name,
                        &pod,
                        &ns,
                        &uid,
                    )),
                };
                if self.backoff_announced.get(&container.name) != Some(&t.finished_at) {
                    self.backoff_announced
                        .insert(container.name.clone(), t.finished_at);
                    let msg = format!(
                        "Back-off restarting failed container {} in pod {pod}_{ns}({uid})",
                        container.name
                    );
                    self.event(
                        Some(field_path(kind, &container.name)),
                        EventType::Warning,
                        "BackOff",
                        &msg,
                    )
                    .await;
                }
            }
        }
    }

    /// Fetches what `env`/`envFrom` refer to; a missing object is simply absent.
    async fn env_sources(&self, container: &Container) -> Result<EnvSources, String> {
        let (cms, secrets) = env::referenced_sources(container);
        let mut sources = EnvSources::default();
        let cm_api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        for name in cms {
            match cm_api.get_opt(&name).await {
                Ok(Some(cm)) => {
                    sources.config_maps.insert(name, cm);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("failed to get configmap \"{name}\": {e}")),
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        for name in secrets {
            match secret_api.get_opt(&name).await {
                Ok(Some(s)) => {
                    sources.secrets.insert(name, s);
                }
                Ok(None) => {}
                Err(e) => return Err(format!("failed to get secret \"{name}\": {e}")),
            }
        }
        Ok(sources)
    }

    /// Leaves the container waiting with `reason` and tries again after its back-off.
    async fn wait_with_error(
        &mut self,
        kind: Kind,
        i: usize,
        reason: &str,
        message: String,
        now: DateTime<Utc>,
    ) {
        let Some(rt) = self.runtime_mut(kind, i) else {
            return;
        };
        if let RunState::Terminated(t) = &rt.state {
            rt.last_termination = Some(t.clone());
        }
        let entry = status::next_backoff(rt.backoff, now, now);
        rt.retry_at = Some(now + chrono::Duration::seconds(entry.delay_secs as i64));
        rt.backoff = Some(entry);
        rt.state = RunState::Waiting {
            reason: reason.into(),
            message: Some(message.clone()),
        };
        let name = rt.name.clone();
        self.event(
            Some(field_path(kind, &name)),
            EventType::Warning,
            "Failed",
            &message,
        )
        .await;
    }

    /// The container's image in the local store, if it is there; an unparseable name is an
    /// error with upstream's `InvalidImageName` message.
    fn find_image(&self, name: &str) -> Result<Option<crate::image::Image>, String> {
        let Some(store) = &self.shared.images else {
            return Ok(None);
        };
        match store.resolve(name) {
            Ok(found) => Ok(found),
            Err(crate::image::ImageError::InvalidReference { .. }) => Err(format!(
                "Failed to apply default image tag {name:?}: couldn't parse image name {name:?}: invalid reference format"
            )),
            Err(e) => {
                tracing::warn!(image = name, error = %e, "reading the image store failed");
                Ok(None)
            }
        }
    }

    /// Starts a new instance of a container.
    async fn start(&mut self, kind: Kind, i: usize, container: &Container, now: DateTime<Utc>) {
        let sources = match self.env_sources(container).await {
            Ok(s) => s,
            Err(msg) => {
                return self
                    .wait_with_error(kind, i, "CreateContainerConfigError", msg, now)
                    .await;
            }
        };
        let ctx = PodContext {
            pod: &self.pod,
            host_ip: &self.shared.host_ip,
            api: &self.shared.api,
            host: self.shared.host,
        };
        let env = match env::build_env(&ctx, container, &sources) {
            Ok(e) => e,
            Err(e) => {
                return self
                    .wait_with_error(kind, i, "CreateContainerConfigError", e.0, now)
                    .await;
            }
        };
        let image_name = container.image.clone().unwrap_or_default();
        let image = match self.find_image(&image_name) {
            Ok(found) => found,
            Err(msg) => {
                return self
                    .wait_with_error(kind, i, "InvalidImageName", msg, now)
                    .await;
            }
        };
        if image.is_none() && self.shared.runtime_binary.is_some() {
            // Not an error: without the image, the command runs on the host's filesystem.
            tracing::debug!(image = %image_name, "image not in the store; running on the host");
        }
        let argv = match &image {
            Some(img) => {
                let lookup = |name: &str| env.get(name).map(str::to_string);
                let expand_all = |v: &Option<Vec<String>>| -> Vec<String> {
                    v.iter().flatten().map(|s| env::expand(s, lookup)).collect()
                };
                let argv = crate::image::command_for(
                    &img.config,
                    &expand_all(&container.command),
                    &expand_all(&container.args),
                );
                if argv.is_empty() {
                    let msg = format!(
                        "failed to create containerd container: error unpacking image: no command specified: image {image_name:?} has neither Entrypoint nor Cmd and container {:?} has no command",
                        container.name
                    );
                    return self
                        .wait_with_error(kind, i, "CreateContainerError", msg, now)
                        .await;
                }
                argv
            }
            None => match env::command_line(container, &env) {
                Some(argv) => argv,
                None => {
                    let msg = format!(
                        "image {image_name:?} is not in nanokube's image store and container {:?} has no command to run on the host; import the image with `nanokube image import <archive>` (an OCI or `docker save` archive), or give the container a command",
                        container.name
                    );
                    return self
                        .wait_with_error(kind, i, "ErrImageNeverPull", msg, now)
                        .await;
                }
            },
        };
        // The image's environment comes first; the container's own variables override it,
        // except that the default PATH does not hide the image's.
        let env = match &image {
            Some(img) => with_image_env(&img.config.env, container, env),
            None => env,
        };
        let pods_dir = self.shared.pods_dir.clone();
        let uid = self.uid.clone();
        let Some(rt) = self.runtime_mut(kind, i) else {
            return;
        };
        // A new instance after an earlier one is a restart.
        if let RunState::Terminated(t) = &rt.state {
            rt.last_termination = Some(t.clone());
        }
        let restart_count = if rt.last_termination.is_some() {
            rt.restart_count + 1
        } else {
            rt.restart_count
        };
        let working_dir = container
            .working_dir
            .as_ref()
            .filter(|w| !w.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| pods_dir.join(&uid).join(&container.name));
        let scratch = pods_dir
            .join(&uid)
            .join("containers")
            .join(format!("{}-{restart_count}", container.name));
        if restart_count >= 1 {
            // The previous instance's namespace is gone, and with it its mounts.
            let old = pods_dir.join(&uid).join("containers").join(format!(
                "{}-{}",
                container.name,
                restart_count - 1
            ));
            let _ = tokio::fs::remove_dir_all(old).await;
        }
        let (root, cwd, user) = match &image {
            Some(img) => (
                Root::Image {
                    rootfs: img.rootfs.clone(),
                },
                container
                    .working_dir
                    .clone()
                    .filter(|w| !w.is_empty())
                    .or_else(|| Some(img.config.working_dir.clone()).filter(|w| !w.is_empty()))
                    .unwrap_or_else(|| "/".to_string()),
                img.config.user.clone(),
            ),
            None => (Root::Host, working_dir.display().to_string(), String::new()),
        };
        let mounts = match self.volumes.volumes() {
            Some(v) => match v.mounts_for(container, &env) {
                Ok(m) => m
                    .into_iter()
                    .map(|m| BindMount {
                        source: m.source,
                        target: m.target,
                        read_only: m.read_only,
                    })
                    .collect(),
                Err(e) => {
                    return self
                        .wait_with_error(kind, i, "CreateContainerConfigError", e.to_string(), now)
                        .await;
                }
            },
            None => Vec::new(),
        };
        let cgroup = match (&self.shared.cgroups, &self.shared.runtime_binary) {
            (Some(m), Some(_)) => {
                let path = format!("pod{uid}/{}-{restart_count}", container.name);
                match m.create(&path, &crate::cgroups::limits_for(container)) {
                    Ok(cg) => Some(cg),
                    Err(e) => {
                        tracing::warn!(error = %e, "creating the container cgroup failed; running without limits");
                        None
                    }
                }
            }
            _ => None,
        };
        let cgroup_procs = cgroup.as_ref().map(|c| c.procs_paths()).unwrap_or_default();
        let isolation = self
            .shared
            .runtime_binary
            .clone()
            .map(|bin| process::Isolation {
                runtime_binary: bin,
                init: InitSpec {
                    hostname: pod_hostname(&self.pod),
                    root: root.clone(),
                    scratch,
                    mounts,
                    argv: argv.clone(),
                    env: env.vars().to_vec(),
                    cwd,
                    user,
                    cgroup_procs,
                    tty: container.tty == Some(true),
                },
            });
        if isolation.is_some() {
            let found = match &root {
                Root::Host => {
                    // Created here so the container (which sees the host's directories) finds it.
                    let _ = tokio::fs::create_dir_all(&working_dir).await;
                    argv.first()
                        .map(|p| process::check_program(p, env.get("PATH")))
                }
                Root::Image { rootfs } => argv
                    .first()
                    .map(|p| process::check_program_in(rootfs, p, env.get("PATH"))),
            };
            if let Some(Err(e)) = found {
                return self
                    .start_failed(kind, i, restart_count, e.to_string(), now)
                    .await;
            }
        }
        if let Some(img) = &image {
            let msg = format!("Container image {image_name:?} already present on machine");
            self.event(
                Some(field_path(kind, &container.name)),
                EventType::Normal,
                "Pulled",
                &msg,
            )
            .await;
            if let Some(rt) = self.runtime_mut(kind, i) {
                rt.image_id = img.id.clone();
            }
        }
        let spec = ProcessSpec {
            argv,
            env: env.vars().to_vec(),
            working_dir,
            log_path: logs::log_path(&pods_dir, &uid, &container.name, restart_count),
            isolation,
            // Every container can be attached to (its output, and stdin/tty if it has them).
            interactive: Some(process::Interactive {
                pod_uid: uid.clone(),
                container: container.name.clone(),
                stdin: container.stdin == Some(true),
                stdin_once: container.stdin_once == Some(true),
                tty: container.tty == Some(true),
            }),
        };
        // Upstream keeps the current and the previous instance's logs.
        if restart_count >= 2 {
            let old = logs::log_path(&pods_dir, &uid, &container.name, restart_count - 2);
            let _ = tokio::fs::remove_file(old).await;
        }
        let container_id = new_container_id();
        let fp = Some(field_path(kind, &container.name));
        match process::spawn(&spec).await {
            Ok(p) => {
                let Some(rt) = self.runtime_mut(kind, i) else {
                    process::signal_group(p.pid, Signal::SIGKILL);
                    return;
                };
                rt.restart_count = restart_count;
                rt.retry_at = None;
                rt.state = RunState::Running {
                    started_at: p.started_at,
                    container_id: container_id.clone(),
                    pid: p.pid,
                    proc_start: p.proc_start,
                };
                let tx = self.exits_tx.clone();
                let exit_rx = p.exit;
                tokio::spawn(async move {
                    if let Ok(exit) = exit_rx.await {
                        // The container ends with its main process: whatever is left in its
                        // cgroup goes too, and the OOM counter says how it ended.
                        let oom_killed = match cgroup {
                            Some(cg) => tokio::task::spawn_blocking(move || {
                                let oom = cg.oom_kill_count() > 0;
                                cg.kill_all();
                                if let Err(e) = cg.remove() {
                                    tracing::debug!(error = %e, "removing a container cgroup failed");
                                }
                                oom
                            })
                            .await
                            .unwrap_or(false),
                            None => false,
                        };
                        let _ = tx.send(Exit {
                            container_id,
                            exit,
                            oom_killed,
                        });
                    }
                });
                self.save_state();
                let msg = format!("Created container {}", container.name);
                self.event(fp.clone(), EventType::Normal, "Created", &msg)
                    .await;
                let msg = format!("Started container {}", container.name);
                self.event(fp, EventType::Normal, "Started", &msg).await;
            }
            Err(e) => {
                self.start_failed(kind, i, restart_count, e.to_string(), now)
                    .await
            }
        }
    }

    /// The runtime created the container but could not start it: a terminated instance
    /// with `StartError`, restarted (or not) per policy like any exit.
    async fn start_failed(
        &mut self,
        kind: Kind,
        i: usize,
        restart_count: i32,
        message: String,
        now: DateTime<Utc>,
    ) {
        let container_id = new_container_id();
        let Some(rt) = self.runtime_mut(kind, i) else {
            return;
        };
        rt.restart_count = restart_count;
        rt.state = RunState::Terminated(Terminated {
            exit_code: 128,
            signal: None,
            reason: "StartError".into(),
            message: Some(message.clone()),
            started_at: Some(now),
            finished_at: Utc::now(),
            container_id: Some(container_id),
        });
        let fp = Some(field_path(kind, &rt.name.clone()));
        self.event(
            fp,
            EventType::Warning,
            "Failed",
            &format!("Error: {message}"),
        )
        .await;
    }

    /// Stops every running container: SIGTERM, then SIGKILL after `grace` (`killContainer`).
    async fn kill_all(&mut self, grace: Duration) {
        let running: Vec<(Option<String>, String, i32)> = self
            .init
            .iter()
            .map(|c| (Kind::Init, c))
            .chain(self.main.iter().map(|c| (Kind::Main, c)))
            .filter_map(|(kind, c)| match &c.state {
                RunState::Running { pid, .. } => {
                    Some((Some(field_path(kind, &c.name)), c.name.clone(), *pid))
                }
                _ => None,
            })
            .collect();
        if running.is_empty() {
            return;
        }
        for (fp, name, pid) in &running {
            self.event(
                fp.clone(),
                EventType::Normal,
                "Killing",
                &format!("Stopping container {name}"),
            )
            .await;
            process::signal_group(
                *pid,
                if grace.is_zero() {
                    Signal::SIGKILL
                } else {
                    Signal::SIGTERM
                },
            );
        }
        let deadline = tokio::time::Instant::now() + grace;
        self.collect_exits_until(deadline).await;
        if self.any_running() {
            for (_, _, pid) in &running {
                process::signal_group(*pid, Signal::SIGKILL);
            }
            self.collect_exits_until(tokio::time::Instant::now() + KILL_WAIT)
                .await;
        }
        self.forget_running(Utc::now());
    }

    /// Kills everything at once (the pod is gone from the API).
    async fn kill_all_now(&mut self) {
        for c in self.init.iter().chain(&self.main) {
            if let RunState::Running { pid, .. } = c.state {
                process::signal_group(pid, Signal::SIGKILL);
            }
        }
        self.collect_exits_until(tokio::time::Instant::now() + KILL_WAIT)
            .await;
        self.forget_running(Utc::now());
    }

    async fn collect_exits_until(&mut self, deadline: tokio::time::Instant) {
        while self.any_running() {
            match tokio::time::timeout_at(deadline, self.exits_rx.recv()).await {
                Ok(Some(exit)) => self.record_exit(exit),
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// Containers that did not report an exit even after SIGKILL are reported as unknown.
    fn forget_running(&mut self, now: DateTime<Utc>) {
        for c in self.init.iter_mut().chain(self.main.iter_mut()) {
            if let RunState::Running {
                started_at,
                container_id,
                ..
            } = &c.state
            {
                c.state = RunState::Terminated(Terminated {
                    exit_code: status::UNKNOWN_EXIT_CODE,
                    signal: None,
                    reason: status::UNKNOWN_REASON.into(),
                    message: Some(status::UNKNOWN_MESSAGE.into()),
                    started_at: Some(*started_at),
                    finished_at: now,
                    container_id: Some(container_id.clone()),
                });
            }
        }
    }

    async fn event(
        &self,
        field_path: Option<String>,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        events::record(
            &self.client,
            &self.pod,
            &self.shared.node_name,
            field_path,
            type_,
            reason,
            message,
        )
        .await;
    }

    /// Writes `pods/status` when it changed (merge patch: lists are replaced whole).
    async fn write_status(&mut self, now: DateTime<Utc>, terminal: bool) -> Result<(), Gone> {
        let input = StatusInputs {
            host_ip: &self.shared.host_ip,
            start_time: self.start_time,
            now,
            terminal,
            reason: self
                .deadline_exceeded
                .then_some((DEADLINE_REASON, DEADLINE_MESSAGE)),
        };
        let computed = status::compute_status(&self.pod, &self.init, &self.main, &input);
        let Ok(mut value) = serde_json::to_value(&computed) else {
            return Ok(());
        };
        // Upstream serialises the never-set probe time as an explicit null.
        if let Some(conds) = value.get_mut("conditions").and_then(|c| c.as_array_mut()) {
            for c in conds {
                if let Some(obj) = c.as_object_mut() {
                    obj.entry("lastProbeTime")
                        .or_insert(serde_json::Value::Null);
                }
            }
        }
        if self.last_status.as_ref() == Some(&value) {
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let patch = serde_json::json!({ "status": value });
        for attempt in 0..5 {
            match api
                .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(pod) => {
                    if pod.metadata.uid.as_deref() != Some(self.uid.as_str()) {
                        // Same name, another pod: ours is gone.
                        return Err(Gone);
                    }
                    self.pod.status = pod.status;
                    self.last_status = Some(value);
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 404 => return Err(Gone),
                Err(kube::Error::Api(s)) if s.code == 409 && attempt < 4 => continue,
                Err(e) => {
                    tracing::warn!(pod = %self.name, error = %e, "writing pod status failed");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The kubelet's last word on a gracefully deleted pod: remove the object for good.
    async fn final_delete(&self) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&self.name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(pod = %self.name, error = %e, "final pod delete failed"),
        }
    }
}

/// Volumes (`super::volumes`): the kubelet's `WaitForAttachAndMount` before containers start.
impl PodWorker {
    /// Sets the pod's volumes up (retrying with back-off) or refreshes them; `false` while
    /// they are not ready, when containers must keep waiting in `ContainerCreating`. Each new
    /// failure is a `FailedMount` Warning event, as the kubelet records it.
    async fn sync_volumes(&mut self, now: DateTime<Utc>) -> bool {
        let pod_dir = self.pod_dir();
        let sync = self
            .volumes
            .sync(&self.client, &self.pod, &pod_dir, now)
            .await;
        for failure in &sync.new_failures {
            self.event(
                None,
                EventType::Warning,
                "FailedMount",
                &failure.to_string(),
            )
            .await;
        }
        sync.ready
    }
}

fn field_path(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Init => format!("spec.initContainers{{{name}}}"),
        Kind::Main => format!("spec.containers{{{name}}}"),
    }
}

/// The container's environment on top of its image's (`K=V` entries): a variable the
/// container sets wins, but the default `PATH` the agent adds does not replace the image's.
fn with_image_env(image_env: &[String], container: &Container, env: env::Env) -> env::Env {
    let mut out = env::Env::default();
    for entry in image_env {
        if let Some((k, v)) = entry.split_once('=') {
            out.set(k, v);
        }
    }
    let sets_path = container.env.iter().flatten().any(|e| e.name == "PATH");
    for (k, v) in env.vars() {
        if k == "PATH" && !sets_path && out.get("PATH").is_some() {
            continue;
        }
        out.set(k.clone(), v.clone());
    }
    out
}

/// The pod's hostname: `spec.hostname`, else its name, at most 63 characters (upstream
/// `GeneratePodHostNameAndDomain` truncates, dropping trailing `-` and `.`).
fn pod_hostname(pod: &Pod) -> String {
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    let mut h: String = name.chars().take(63).collect();
    while h.ends_with('-') || h.ends_with('.') {
        h.pop();
    }
    h
}

fn new_container_id() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("nanokube://{hex}")
}

fn from_time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), 0).unwrap_or_default()
}

/// A container as the API last showed it, for an agent that lost its state file. A running
/// container becomes running-without-process, which [`PodWorker::restore`] turns into an exit.
fn from_api_status(s: &ContainerStatus, now: DateTime<Utc>) -> ContainerRuntime {
    let terminated = |t: &k8s_openapi::api::core::v1::ContainerStateTerminated| Terminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: t.reason.clone().unwrap_or_else(|| "Error".into()),
        message: t.message.clone(),
        started_at: t.started_at.as_ref().map(from_time),
        finished_at: t.finished_at.as_ref().map(from_time).unwrap_or(now),
        container_id: t.container_id.clone(),
    };
    let state = s.state.clone().unwrap_or_default();
    let run_state = if let Some(t) = &state.terminated {
        RunState::Terminated(terminated(t))
    } else if let Some(r) = &state.running {
        RunState::Running {
            started_at: r.started_at.as_ref().map(from_time).unwrap_or(now),
            container_id: s.container_id.clone().unwrap_or_else(new_container_id),
            pid: 0,
            proc_start: None,
        }
    } else {
        let w = state.waiting.unwrap_or_default();
        RunState::Waiting {
            reason: w.reason.unwrap_or_else(|| "ContainerCreating".into()),
            message: w.message,
        }
    };
    ContainerRuntime {
        name: s.name.clone(),
        image: s.image.clone(),
        image_id: s.image_id.clone(),
        restart_count: s.restart_count,
        state: run_state,
        last_termination: s
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .map(terminated),
        backoff: None,
        retry_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning};

    #[test]
    fn a_running_container_from_the_api_is_restored_without_a_process() {
        let now = DateTime::from_timestamp(1_714_557_600, 0).expect("time");
        let s = ContainerStatus {
            name: "c".into(),
            image: "busybox".into(),
            restart_count: 2,
            container_id: Some("nanokube://abc".into()),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(status::time(now)),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let rt = from_api_status(&s, now);
        assert_eq!(rt.restart_count, 2);
        assert!(matches!(rt.state, RunState::Running { pid: 0, .. }));
        assert!(!process::is_alive(0, None));
        assert!(new_container_id().starts_with("nanokube://"));
        assert_eq!(new_container_id().len(), "nanokube://".len() + 64);
    }
}
