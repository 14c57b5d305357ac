//! Events as upstream's legacy `record.EventRecorder` writes them (`core/v1` Events, what
//! `kubectl describe` lists under Events), shared by every controller.

use crate::job::to_time;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use nanokube_registry::clock::Clock;
use nanokube_registry::event_correlator::{Correlated, EventCorrelator};
use std::sync::Arc;

/// An Event's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The reference an Event's `involvedObject` holds for `obj`.
pub fn object_reference<K>(obj: &K) -> ObjectReference
where
    K: Resource<DynamicType = ()>,
{
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    }
}

/// Records Events as one component (`source.component`, `reportingComponent`).
/// Repeats of an Event are counted on the first one (see [`EventCorrelator`]).
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    clock: Arc<dyn Clock>,
    component: &'static str,
    correlator: Arc<EventCorrelator>,
}

impl Recorder {
    pub fn new(client: kube::Client, clock: Arc<dyn Clock>, component: &'static str) -> Self {
        Recorder {
            client,
            clock,
            component,
            correlator: Arc::new(EventCorrelator::new()),
        }
    }

    /// Records an Event about `obj`. Failures are logged, never fatal.
    pub async fn publish<K>(&self, obj: &K, type_: EventType, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish_ref(object_reference(obj), type_, reason, message)
            .await;
    }

    /// Records an Event about the object `involved` refers to.
    pub async fn publish_ref(
        &self,
        involved: ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        let ns = involved
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = involved.name.clone().unwrap_or_default();
        let now = self.clock.now();
        let stamp = now.timestamp_nanos_opt().unwrap_or_default();
        let nonce: u16 = rand::random();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{stamp:x}{nonce:04x}")),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: involved,
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(type_.as_str().into()),
            source: Some(EventSource {
                component: Some(self.component.into()),
                host: None,
            }),
            count: Some(1),
            first_timestamp: Some(to_time(now)),
            last_timestamp: Some(to_time(now)),
            reporting_component: Some(self.component.into()),
            reporting_instance: Some(self.component.into()),
            ..Default::default()
        };
        write_event(&self.client, &self.correlator, event).await;
    }
}

/// Writes a freshly built Event (count 1) the way client-go's `recordToSink` does: a repeat
/// of an earlier one patches that one's count and `lastTimestamp` (or creates it again if it
/// is gone), anything else is created. Failures are logged, never fatal.
pub async fn write_event(client: &kube::Client, correlator: &EventCorrelator, event: Event) {
    let ns = event
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let event = match correlator.correlate(event) {
        Correlated::Create(event) => event,
        Correlated::Repeat(event) => {
            let name = event.metadata.name.clone().unwrap_or_default();
            let patch = Patch::Strategic(EventCorrelator::repeat_patch(&event));
            match api.patch(&name, &PatchParams::default(), &patch).await {
                Ok(_) => return,
                Err(kube::Error::Api(s)) if s.code == 404 => event,
                Err(e) => {
                    tracing::debug!(error = %e, name, "updating a repeated event failed");
                    correlator.forget(&event);
                    return;
                }
            }
        }
    };
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(error = %e, reason = ?event.reason, "recording an event failed");
        correlator.forget(&event);
    }
}
