//! The pure half of the pod worker: what the kubelet knows about each container, and the pod
//! status, phase, conditions and restart back-off computed from it (`kubelet_pods.go:
//! generateAPIPodStatus`, `getPhase`, `status/generate.go`, `util/flowcontrol/backoff.go`).
//!
//! Nothing here reads a clock: every function takes `now`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{
    ContainerState as K8sContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

/// First restart delay after a crash loop begins.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// The longest restart delay (5 min); a container that ran twice this long starts over at
/// [`BACKOFF_INITIAL`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Exit code and reason for a container whose process vanished (agent restart).
pub const UNKNOWN_EXIT_CODE: i32 = 137;
pub const UNKNOWN_REASON: &str = "ContainerStatusUnknown";
pub const UNKNOWN_MESSAGE: &str = "The container could not be located when the pod was terminated";

pub const DEADLINE_REASON: &str = "DeadlineExceeded";
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// A finished container instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
    pub container_id: Option<String>,
}

impl Terminated {
    /// A process's exit as the container runtime reports it: 128+signal for a signal death.
    pub fn from_exit(
        exit_code: Option<i32>,
        signal: Option<i32>,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        container_id: &str,
    ) -> Self {
        let code = match (exit_code, signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => UNKNOWN_EXIT_CODE,
        };
        Terminated {
            exit_code: code,
            signal: if exit_code.is_none() { signal } else { None },
            reason: if code == 0 { "Completed" } else { "Error" }.to_string(),
            message: None,
            started_at: Some(started_at),
            finished_at,
            container_id: Some(container_id.to_string()),
        }
    }
}

/// What a container is doing now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: DateTime<Utc>,
        container_id: String,
        /// The process (and process group) id, and its start time in clock ticks since boot
        /// (`/proc/<pid>/stat` field 22) so a recycled pid is not mistaken for it.
        pid: i32,
        proc_start: Option<u64>,
    },
    Terminated(Terminated),
}

/// Restart back-off of one container, as upstream's `flowcontrol.Backoff` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub delay_secs: u64,
    pub last_update: DateTime<Utc>,
}

/// One container of the pod as the worker tracks it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRuntime {
    pub name: String,
    pub image: String,
    /// The id of the image the current instance runs (`sha256:…`), empty for a container
    /// that runs on the host's filesystem.
    #[serde(default)]
    pub image_id: String,
    pub restart_count: i32,
    pub state: RunState,
    pub last_termination: Option<Terminated>,
    pub backoff: Option<Backoff>,
    /// When a container that could not be created is tried again.
    pub retry_at: Option<DateTime<Utc>>,
}

impl ContainerRuntime {
    pub fn new(name: &str, image: &str, waiting_reason: &str) -> Self {
        ContainerRuntime {
            name: name.to_string(),
            image: image.to_string(),
            image_id: String::new(),
            restart_count: 0,
            state: RunState::Waiting {
                reason: waiting_reason.to_string(),
                message: None,
            },
            last_termination: None,
            backoff: None,
            retry_at: None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, RunState::Running { .. })
    }

    pub fn succeeded(&self) -> bool {
        matches!(&self.state, RunState::Terminated(t) if t.exit_code == 0)
    }

    /// The exit that ended the latest instance, if it is not running now.
    pub fn latest_exit(&self) -> Option<&Terminated> {
        match &self.state {
            RunState::Terminated(t) => Some(t),
            RunState::Waiting { .. } => self.last_termination.as_ref(),
            RunState::Running { .. } => None,
        }
    }
}

/// The pod's `restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn of(pod: &Pod) -> Self {
        match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a container that exited with `exit_code` runs again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }

    /// Init containers are retried on failure unless the policy is `Never`, and never after success.
    pub fn restarts_init(self, exit_code: i32) -> bool {
        exit_code != 0 && self != RestartPolicy::Never
    }
}

/// What to do with a container that exited and must run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPlan {
    /// Start it now, recording this back-off entry.
    Now(Backoff),
    /// Still backing off: wait until `at` (the delay is what `CrashLoopBackOff` reports).
    After { at: DateTime<Utc>, delay: Duration },
}

fn backoff_expired(entry: &Backoff, event_time: DateTime<Utc>) -> bool {
    // Upstream considers a container stable once it ran twice the maximum delay.
    (event_time - entry.last_update)
        .to_std()
        .unwrap_or_default()
        > BACKOFF_MAX * 2
}

/// The back-off entry after a (re)start at `now` for an exit at `event_time`: the initial
/// delay for a first or long-stable container, else double the last one, capped.
pub fn next_backoff(
    entry: Option<Backoff>,
    event_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Backoff {
    let delay = match entry {
        Some(e) if !backoff_expired(&e, event_time) => {
            (e.delay_secs * 2).min(BACKOFF_MAX.as_secs())
        }
        _ => BACKOFF_INITIAL.as_secs(),
    };
    Backoff {
        delay_secs: delay,
        last_update: now,
    }
}

/// Whether a container that finished at `finished_at` may restart at `now` (`doBackOff`).
pub fn plan_restart(
    entry: Option<Backoff>,
    finished_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> RestartPlan {
    if let Some(e) = entry
        && !backoff_expired(&e, finished_at)
    {
        let delay = Duration::from_secs(e.delay_secs);
        let at = finished_at + chrono::Duration::seconds(e.delay_secs as i64);
        if now < at {
            return RestartPlan::After { at, delay };
        }
    }
    RestartPlan::Now(next_backoff(entry, finished_at, now))
}

/// Formats a duration as Go's `time.Duration.String()` does for whole seconds (`10s`, `1m20s`, `5m0s`).
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, sec) => format!("{h}h{m}m{sec}s"),
    }
}

/// The `CrashLoopBackOff` waiting message.
pub fn crash_loop_message(
    delay: Duration,
    container: &str,
    pod: &str,
    namespace: &str,
    uid: &str,
) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={pod}_{namespace}({uid})",
        go_duration(delay)
    )
}

/// The pod's phase (`getPhase`). `terminal` means nothing will be started again (the pod is
/// being deleted or passed its deadline): then stopped containers decide Succeeded/Failed
/// whatever the restart policy.
pub fn pod_phase(
    policy: RestartPolicy,
    init: &[ContainerRuntime],
    main: &[ContainerRuntime],
    terminal: bool,
) -> &'static str {
    if !init.iter().all(ContainerRuntime::succeeded) {
        let running = init.iter().chain(main).any(ContainerRuntime::is_running);
        let failed_for_good = init.iter().any(|c| {
            matches!(&c.state, RunState::Terminated(t) if t.exit_code != 0 && !policy.restarts_init(t.exit_code))
        });
        return if (failed_for_good || terminal) && !running {
            "Failed"
        } else {
            "Pending"
        };
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in main {
        match &c.state {
            RunState::Running { .. } => running += 1,
            RunState::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            RunState::Waiting { .. } if c.last_termination.is_some() || terminal => stopped += 1,
            RunState::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        let all_succeeded = succeeded == main.len();
        return match (terminal, policy) {
            (true, _) | (false, RestartPolicy::Never) => {
                if all_succeeded {
                    "Succeeded"
                } else {
                    "Failed"
                }
            }
            (false, RestartPolicy::OnFailure) if all_succeeded => "Succeeded",
            (false, _) => "Running",
        };
    }
    "Pending"
}

/// Inputs of [`compute_status`] that are not container states.
#[derive(Clone, Debug)]
pub struct StatusInputs<'a> {
    pub host_ip: &'a str,
    pub start_time: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// Nothing will be started again (deleting, or past the deadline).
    pub terminal: bool,
    /// Pod-level reason and message (`DeadlineExceeded`).
    pub reason: Option<(&'a str, &'a str)>,
}

pub fn time(t: DateTime<Utc>) -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::from_second(t.timestamp())
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn terminated_state(t: &Terminated) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: Some(t.reason.clone()),
        message: t.message.clone(),
        started_at: t.started_at.map(time),
        finished_at: Some(time(t.finished_at)),
        container_id: t.container_id.clone(),
    }
}

/// The API view of one container (every field the Python client requires is present).
pub fn container_status(c: &ContainerRuntime) -> ContainerStatus {
    let (state, container_id) = match &c.state {
        RunState::Waiting { reason, message } => (
            K8sContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: message.clone(),
                }),
                ..Default::default()
            },
            c.last_termination
                .as_ref()
                .and_then(|t| t.container_id.clone()),
        ),
        RunState::Running {
            started_at,
            container_id,
            ..
        } => (
            K8sContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(time(*started_at)),
                }),
                ..Default::default()
            },
            Some(container_id.clone()),
        ),
        RunState::Terminated(t) => (
            K8sContainerState {
                terminated: Some(terminated_state(t)),
                ..Default::default()
            },
            t.container_id.clone(),
        ),
    };
    let last_state = match &c.last_termination {
        Some(t) => K8sContainerState {
            terminated: Some(terminated_state(t)),
            ..Default::default()
        },
        None => K8sContainerState::default(),
    };
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id,
        ready: c.is_running(),
        started: Some(c.is_running()),
        restart_count: c.restart_count,
        state: Some(state),
        last_state: Some(last_state),
        ..Default::default()
    }
}

fn condition(
    old: Option<&PodStatus>,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: DateTime<Utc>,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    // The transition time only moves when the status does.
    let last_transition = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| time(now));
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(last_transition),
        last_probe_time: None,
        ..Default::default()
    }
}

fn names_list(cs: &[&ContainerRuntime]) -> String {
    let names: Vec<&str> = cs.iter().map(|c| c.name.as_str()).collect();
    format!("[{}]", names.join(" "))
}

/// The pod's whole status from what the worker knows (`generateAPIPodStatus`). A pod already
/// Succeeded or Failed in the API stays so.
pub fn compute_status(
    pod: &Pod,
    init: &[ContainerRuntime],
    main: &[ContainerRuntime],
    input: &StatusInputs<'_>,
) -> PodStatus {
    let old = pod.status.as_ref();
    let policy = RestartPolicy::of(pod);
    let stored_phase = old.and_then(|s| s.phase.as_deref());
    let phase = match stored_phase {
        Some(p @ ("Succeeded" | "Failed")) => p,
        _ if input.reason.is_some() => {
            if init.iter().chain(main).any(ContainerRuntime::is_running) {
                "Running"
            } else {
                "Failed"
            }
        }
        _ => pod_phase(policy, init, main, input.terminal),
    };
    let now = input.now;

    let incomplete_init: Vec<&ContainerRuntime> = init.iter().filter(|c| !c.succeeded()).collect();
    let initialized = if incomplete_init.is_empty() {
        condition(old, "Initialized", true, None, None, now)
    } else if phase == "Succeeded" {
        condition(old, "Initialized", true, Some("PodCompleted"), None, now)
    } else {
        condition(
            old,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                names_list(&incomplete_init)
            )),
            now,
        )
    };
    let unready: Vec<&ContainerRuntime> = main.iter().filter(|c| !c.is_running()).collect();
    let readiness = |type_: &str| {
        if phase == "Succeeded" {
            condition(old, type_, false, Some("PodCompleted"), None, now)
        } else if unready.is_empty() {
            condition(old, type_, true, None, None, now)
        } else {
            condition(
                old,
                type_,
                false,
                Some("ContainersNotReady"),
                Some(format!(
                    "containers with unready status: {}",
                    names_list(&unready)
                )),
                now,
            )
        }
    };
    let sandbox_alive = !matches!(phase, "Succeeded" | "Failed")
        || init.iter().chain(main).any(ContainerRuntime::is_running);
    let mut conditions = vec![
        condition(
            old,
            "PodReadyToStartContainers",
            sandbox_alive,
            None,
            None,
            now,
        ),
        initialized,
        readiness("Ready"),
        readiness("ContainersReady"),
    ];
    let scheduled = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .cloned()
        .unwrap_or_else(|| condition(None, "PodScheduled", true, None, None, now));
    conditions.push(scheduled);
    // Other writers' conditions (e.g. DisruptionTarget) are kept.
    for c in old
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        if !conditions.iter().any(|k| k.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }

    let (reason, message) = match (input.reason, old) {
        (Some((r, m)), _) => (Some(r.to_string()), Some(m.to_string())),
        (None, Some(s)) => (s.reason.clone(), s.message.clone()),
        (None, None) => (None, None),
    };
    let start_time = old
        .and_then(|s| s.start_time.clone())
        .unwrap_or_else(|| time(input.start_time));
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: Some(input.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: input.host_ip.to_string(),
        }]),
        pod_ip: Some(input.host_ip.to_string()),
        pod_ips: Some(vec![PodIP {
            ip: input.host_ip.to_string(),
        }]),
        start_time: Some(start_time),
        init_container_statuses: if init.is_empty() {
            None
        } else {
            Some(init.iter().map(container_status).collect())
        },
        container_statuses: Some(main.iter().map(container_status).collect()),
        qos_class: old.and_then(|s| s.qos_class.clone()),
        nominated_node_name: old.and_then(|s| s.nominated_node_name.clone()),
        reason,
        message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use k8s_openapi::api::core::v1::PodSpec;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_714_557_600 + secs, 0)
            .single()
            .expect("valid")
    }

    fn waiting(name: &str, reason: &str) -> ContainerRuntime {
        ContainerRuntime::new(name, "busybox", reason)
    }

    fn running(name: &str, since: i64) -> ContainerRuntime {
        ContainerRuntime {
            state: RunState::Running {
                started_at: at(since),
                container_id: format!("nanokube://{name}"),
                pid: 1,
                proc_start: None,
            },
            ..waiting(name, "")
        }
    }

    fn exited(name: &str, code: i32, finished: i64) -> ContainerRuntime {
        ContainerRuntime {
            state: RunState::Terminated(Terminated::from_exit(
                Some(code),
                None,
                at(0),
                at(finished),
                "nanokube://x",
            )),
            ..waiting(name, "")
        }
    }

    fn crash_looping(name: &str, code: i32) -> ContainerRuntime {
        ContainerRuntime {
            last_termination: Some(Terminated::from_exit(
                Some(code),
                None,
                at(0),
                at(1),
                "nanokube://x",
            )),
            restart_count: 1,
            ..waiting(name, "CrashLoopBackOff")
        }
    }

    fn pod(policy: &str) -> Pod {
        Pod {
            metadata: Default::default(),
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                qos_class: Some("BestEffort".into()),
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "True".into(),
                    last_transition_time: Some(time(at(-5))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_to_five_minutes_and_resets_when_stable() {
        // First exit: restart at once, arming 10 s.
        let RestartPlan::Now(b1) = plan_restart(None, at(1), at(1)) else {
            panic!("first restart is immediate")
        };
        assert_eq!(b1.delay_secs, 10);
        // Second exit shortly after: back off 10 s from the exit.
        assert_eq!(
            plan_restart(Some(b1), at(2), at(3)),
            RestartPlan::After {
                at: at(12),
                delay: Duration::from_secs(10)
            }
        );
        let RestartPlan::Now(b2) = plan_restart(Some(b1), at(2), at(12)) else {
            panic!("restart after the delay")
        };
        assert_eq!(b2.delay_secs, 20);
        let mut b = b2;
        for _ in 0..10 {
            b = next_backoff(Some(b), b.last_update, b.last_update);
        }
        assert_eq!(b.delay_secs, 300);
        // A container that ran longer than 10 minutes starts over.
        let long_after = b.last_update + chrono::Duration::seconds(601);
        assert_eq!(
            plan_restart(Some(b), long_after, long_after),
            RestartPlan::Now(Backoff {
                delay_secs: 10,
                last_update: long_after
            })
        );
    }

    #[test]
    fn go_durations_and_crash_loop_message() {
        assert_eq!(go_duration(Duration::from_secs(20)), "20s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(
            crash_loop_message(Duration::from_secs(20), "c", "p", "ns", "u1"),
            "back-off 20s restarting failed container=c pod=p_ns(u1)"
        );
    }

    #[test]
    fn exit_codes_map_to_reasons_and_signals() {
        let t = Terminated::from_exit(Some(0), None, at(0), at(1), "id");
        assert_eq!((t.exit_code, t.reason.as_str()), (0, "Completed"));
        let t = Terminated::from_exit(Some(3), None, at(0), at(1), "id");
        assert_eq!((t.exit_code, t.reason.as_str()), (3, "Error"));
        let t = Terminated::from_exit(None, Some(9), at(0), at(1), "id");
        assert_eq!(
            (t.exit_code, t.signal, t.reason.as_str()),
            (137, Some(9), "Error")
        );
    }

    #[test]
    fn phase_follows_restart_policy() {
        use RestartPolicy::*;
        assert_eq!(
            pod_phase(Always, &[], &[waiting("a", "ContainerCreating")], false),
            "Pending"
        );
        assert_eq!(
            pod_phase(Always, &[], &[running("a", 0), exited("b", 0, 1)], false),
            "Running"
        );
        assert_eq!(
            pod_phase(Always, &[], &[exited("a", 0, 1)], false),
            "Running"
        );
        assert_eq!(
            pod_phase(Always, &[], &[crash_looping("a", 1)], false),
            "Running"
        );
        assert_eq!(
            pod_phase(OnFailure, &[], &[exited("a", 0, 1)], false),
            "Succeeded"
        );
        assert_eq!(
            pod_phase(OnFailure, &[], &[crash_looping("a", 1)], false),
            "Running"
        );
        assert_eq!(
            pod_phase(Never, &[], &[exited("a", 0, 1), exited("b", 2, 1)], false),
            "Failed"
        );
        assert_eq!(
            pod_phase(Never, &[], &[exited("a", 0, 1), exited("b", 0, 1)], false),
            "Succeeded"
        );
        assert_eq!(
            pod_phase(Never, &[], &[running("a", 0), exited("b", 2, 1)], false),
            "Running"
        );
        // Deleted or past the deadline: stopped containers decide, whatever the policy.
        assert_eq!(
            pod_phase(Always, &[], &[exited("a", 143, 1)], true),
            "Failed"
        );
        assert_eq!(
            pod_phase(Always, &[], &[exited("a", 0, 1)], true),
            "Succeeded"
        );
        assert_eq!(
            pod_phase(Always, &[], &[waiting("a", "ContainerCreating")], true),
            "Failed"
        );
    }

    #[test]
    fn init_containers_gate_the_phase() {
        use RestartPolicy::*;
        let main = [waiting("m", "PodInitializing")];
        assert_eq!(
            pod_phase(Always, &[running("i", 0)], &main, false),
            "Pending"
        );
        assert_eq!(
            pod_phase(Always, &[exited("i", 1, 1)], &main, false),
            "Pending"
        );
        assert_eq!(
            pod_phase(Never, &[exited("i", 1, 1)], &main, false),
            "Failed"
        );
        assert_eq!(
            pod_phase(Never, &[exited("i", 0, 1)], &[running("m", 2)], false),
            "Running"
        );
    }

    #[test]
    fn status_of_a_running_pod_is_ready_with_all_fields() {
        let pod = pod("Always");
        let main = [running("a", 10)];
        let input = StatusInputs {
            host_ip: "10.1.2.3",
            start_time: at(0),
            now: at(20),
            terminal: false,
            reason: None,
        };
        let s = compute_status(&pod, &[], &main, &input);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.1.2.3"));
        assert_eq!(s.start_time, Some(time(at(0))));
        let conds = s.conditions.as_ref().expect("conditions");
        let types: Vec<_> = conds
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("PodReadyToStartContainers", "True"),
                ("Initialized", "True"),
                ("Ready", "True"),
                ("ContainersReady", "True"),
                ("PodScheduled", "True"),
            ]
        );
        assert_eq!(conds[4].last_transition_time, Some(time(at(-5))));
        let json = serde_json::to_value(&s).expect("json");
        let cs = &json["containerStatuses"][0];
        assert_eq!(cs["name"], "a");
        assert_eq!(cs["image"], "busybox");
        assert_eq!(cs["imageID"], "");
        assert_eq!(cs["ready"], true);
        assert_eq!(cs["started"], true);
        assert_eq!(cs["restartCount"], 0);
        assert_eq!(cs["containerID"], "nanokube://a");
        assert_eq!(cs["state"]["running"]["startedAt"], "2024-05-01T10:00:10Z");
        assert_eq!(cs["lastState"], serde_json::json!({}));
    }

    #[test]
    fn status_of_a_crash_looping_and_of_a_completed_pod() {
        let mut pod = pod("Always");
        let mut c = crash_looping("a", 2);
        c.state = RunState::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: Some(crash_loop_message(
                Duration::from_secs(10),
                "a",
                "p",
                "ns",
                "u",
            )),
        };
        let input = StatusInputs {
            host_ip: "10.1.2.3",
            start_time: at(0),
            now: at(20),
            terminal: false,
            reason: None,
        };
        let s = compute_status(&pod, &[], std::slice::from_ref(&c), &input);
        let ready = s
            .conditions
            .as_ref()
            .expect("c")
            .iter()
            .find(|c| c.type_ == "Ready")
            .cloned()
            .expect("Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [a]")
        );
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(
            json["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
            2
        );
        assert_eq!(
            json["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );

        pod.spec.as_mut().expect("spec").restart_policy = Some("Never".into());
        let s = compute_status(&pod, &[exited("i", 0, 1)], &[exited("a", 0, 5)], &input);
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let conds = s.conditions.expect("conditions");
        let ready = conds.iter().find(|c| c.type_ == "Ready").expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("PodCompleted"))
        );
        let sandbox = conds
            .iter()
            .find(|c| c.type_ == "PodReadyToStartContainers")
            .expect("cond");
        assert_eq!(sandbox.status, "False");
        assert_eq!(s.init_container_statuses.map(|v| v.len()), Some(1));
    }

    #[test]
    fn deadline_fails_the_pod_with_its_reason() {
        let pod = pod("Always");
        let input = StatusInputs {
            host_ip: "10.1.2.3",
            start_time: at(0),
            now: at(20),
            terminal: true,
            reason: Some((DEADLINE_REASON, DEADLINE_MESSAGE)),
        };
        let s = compute_status(&pod, &[], &[exited("a", 137, 19)], &input);
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(s.reason.as_deref(), Some("DeadlineExceeded"));
        assert_eq!(s.message.as_deref(), Some(DEADLINE_MESSAGE));
    }
}
