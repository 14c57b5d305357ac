//! core/v1 Events about a pod, as the kubelet's event recorder writes them.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use nanokube_controllers::events::write_event;
use nanokube_registry::event_correlator::EventCorrelator;
use std::sync::LazyLock;

/// The node agent's memory of the Events it recorded, so repeats (a container's back-off,
/// say) are counted on one Event as the kubelet's recorder does.
static CORRELATOR: LazyLock<EventCorrelator> = LazyLock::new(EventCorrelator::new);

use super::status::time;

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Builds the Event (`<pod>.<hex unix nanos>`, as client-go's recorder names them).
/// `field_path` names the container (`spec.containers{c}`), or is `None` for the pod itself.
pub fn build_event(
    pod: &Pod,
    node: &str,
    field_path: Option<String>,
    type_: EventType,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Event {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let nanos = now.timestamp_nanos_opt().unwrap_or_default();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{nanos:x}")),
            namespace: pod.metadata.namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path,
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(
            match type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        first_timestamp: Some(time(now)),
        last_timestamp: Some(time(now)),
        count: Some(1),
        event_time: None::<MicroTime>,
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(node.into()),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(node.into()),
        }),
        ..Default::default()
    }
}

/// Records an event, counting repeats; failures are logged, never fatal (as upstream's
/// recorder).
pub async fn record(
    client: &kube::Client,
    pod: &Pod,
    node: &str,
    field_path: Option<String>,
    type_: EventType,
    reason: &str,
    message: &str,
) {
    let event = build_event(pod, node, field_path, type_, reason, message, Utc::now());
    write_event(client, &CORRELATOR, event).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn event_names_and_refers_to_the_container() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let now = Utc.timestamp_opt(1_714_557_600, 5).single().expect("time");
        let e = build_event(
            &pod,
            "node1",
            Some("spec.containers{c}".into()),
            EventType::Normal,
            "Started",
            "Started container c",
            now,
        );
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(
            json["metadata"]["name"],
            format!("web.{:x}", 1_714_557_600_000_000_005_i64)
        );
        assert_eq!(json["involvedObject"]["fieldPath"], "spec.containers{c}");
        assert_eq!(json["involvedObject"]["uid"], "u1");
        assert_eq!(json["source"]["host"], "node1");
        assert_eq!(json["reportingInstance"], "node1");
        assert_eq!(json["type"], "Normal");
        assert_eq!(json["count"], 1);
        assert_eq!(json["firstTimestamp"], "2024-05-01T10:00:00Z");
    }
}
