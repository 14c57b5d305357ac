//! What the workload controllers read off a pod (upstream `controller.IsPodActive`,
//! `podutil.IsPodReady`, `podutil.IsPodAvailable`).

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The pod's phase (`""` when it has none yet).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The node the pod is bound to (`""` while unscheduled).
pub fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Upstream `IsPodActive`: not Succeeded, not Failed and not being deleted.
pub fn is_pod_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
}

/// Upstream `IsPodReady`: the `Ready` condition is `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When a ready pod became ready (its `Ready` condition's last transition).
pub fn ready_since(pod: &Pod) -> Option<DateTime<Utc>> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(from_time)
}

/// Upstream `IsPodAvailable`: ready, and ready for longer than `minReadySeconds`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    if !is_pod_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod)
        .is_some_and(|t| t + chrono::Duration::seconds(i64::from(min_ready_seconds)) < now)
}

/// The highest restart count among the regular containers and among the init (sidecar)
/// containers (upstream `maxContainerRestarts`).
pub fn max_restarts(pod: &Pod) -> (i64, i64) {
    let status = pod.status.as_ref();
    let max_of = |list: Option<&Vec<k8s_openapi::api::core::v1::ContainerStatus>>| {
        list.into_iter()
            .flatten()
            .map(|c| i64::from(c.restart_count))
            .max()
            .unwrap_or(0)
    };
    (
        max_of(status.and_then(|s| s.container_statuses.as_ref())),
        max_of(status.and_then(|s| s.init_container_statuses.as_ref())),
    )
}

/// Converts the API's `Time` to a chrono time.
pub fn from_time(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(
        t.0.as_second(),
        t.0.subsec_nanosecond().max(0).unsigned_abs(),
    )
    .unwrap_or_default()
}
