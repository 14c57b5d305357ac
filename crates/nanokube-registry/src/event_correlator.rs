//! Repeated Events counted on one object, as client-go's `EventCorrelator` (its
//! `eventLogger`) does for every component: an Event identical to one already recorded —
//! same source, involved object, type, reason and message — is not created again; the
//! earlier one gets `count + 1` and a new `lastTimestamp`, which `kubectl describe` shows as
//! `(x3 over 2m)`. Pure bookkeeping: the recorders of the controllers and the node agent do
//! the API calls.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;
use std::sync::Mutex;

/// client-go's `maxLruCacheEntries`; past it the memory of recorded Events starts afresh.
const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Debug)]
struct Recorded {
    name: String,
    count: i32,
    first_timestamp: Option<Time>,
}

/// What to do with an Event.
#[derive(Clone, Debug, PartialEq)]
pub enum Correlated {
    /// A new Event: create it.
    Create(Event),
    /// A repeat: the Event (named as the earlier one, with its `firstTimestamp`, the new
    /// count and `lastTimestamp`) is written by patching `count` and `lastTimestamp`; if the
    /// earlier one is gone it is created as it stands.
    Repeat(Event),
}

/// The memory of one component's recent Events.
#[derive(Debug, Default)]
pub struct EventCorrelator {
    recorded: Mutex<HashMap<String, Recorded>>,
}

/// client-go's `getEventKey`.
fn key(e: &Event) -> String {
    let source = e.source.clone().unwrap_or_default();
    let o = &e.involved_object;
    [
        source.component.as_deref(),
        source.host.as_deref(),
        o.kind.as_deref(),
        o.namespace.as_deref(),
        o.name.as_deref(),
        o.field_path.as_deref(),
        o.uid.as_deref(),
        o.api_version.as_deref(),
        e.type_.as_deref(),
        e.reason.as_deref(),
        e.message.as_deref(),
    ]
    .map(|p| p.unwrap_or(""))
    .join("\u{0}")
}

impl EventCorrelator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides whether `event` (freshly built, count 1) is new or repeats an earlier one,
    /// and remembers it either way.
    pub fn correlate(&self, mut event: Event) -> Correlated {
        let mut recorded = self
            .recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let k = key(&event);
        match recorded.get_mut(&k) {
            Some(seen) => {
                seen.count = seen.count.saturating_add(1);
                event.metadata.name = Some(seen.name.clone());
                event.count = Some(seen.count);
                event.first_timestamp = seen.first_timestamp.clone();
                Correlated::Repeat(event)
            }
            None => {
                if recorded.len() >= MAX_ENTRIES {
                    recorded.clear();
                }
                recorded.insert(
                    k,
                    Recorded {
                        name: event.metadata.name.clone().unwrap_or_default(),
                        count: event.count.unwrap_or(1),
                        first_timestamp: event.first_timestamp.clone(),
                    },
                );
                Correlated::Create(event)
            }
        }
    }

    /// The strategic-merge patch that turns the earlier Event into `repeat`.
    pub fn repeat_patch(repeat: &Event) -> serde_json::Value {
        serde_json::json!({
            "count": repeat.count,
            "lastTimestamp": repeat.last_timestamp,
            "message": repeat.message,
        })
    }

    /// Forgets an Event whose write failed, so the next one is created afresh.
    pub fn forget(&self, event: &Event) {
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EventSource, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    fn event(name: &str, reason: &str, message: &str, secs: i64) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some("Pod".into()),
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Warning".into()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some("node".into()),
            }),
            count: Some(1),
            first_timestamp: Some(at(secs)),
            last_timestamp: Some(at(secs)),
            ..Default::default()
        }
    }

    #[test]
    fn identical_events_are_counted_on_the_first_one() {
        let c = EventCorrelator::new();
        let first = event(
            "web.1",
            "BackOff",
            "Back-off restarting failed container",
            10,
        );
        assert_eq!(c.correlate(first.clone()), Correlated::Create(first));
        let Correlated::Repeat(second) = c.correlate(event(
            "web.2",
            "BackOff",
            "Back-off restarting failed container",
            40,
        )) else {
            panic!("a repeat");
        };
        assert_eq!(second.metadata.name.as_deref(), Some("web.1"));
        assert_eq!(second.count, Some(2));
        assert_eq!(second.first_timestamp, Some(at(10)));
        assert_eq!(second.last_timestamp, Some(at(40)));
        let Correlated::Repeat(third) = c.correlate(event(
            "web.3",
            "BackOff",
            "Back-off restarting failed container",
            90,
        )) else {
            panic!("a repeat");
        };
        assert_eq!(third.count, Some(3));
        assert_eq!(
            EventCorrelator::repeat_patch(&third),
            serde_json::json!({
                "count": 3,
                "lastTimestamp": at(90),
                "message": "Back-off restarting failed container",
            })
        );
    }

    #[test]
    fn different_messages_or_objects_are_separate_events() {
        let c = EventCorrelator::new();
        c.correlate(event("web.1", "Created", "Created container a", 1));
        let other = event("web.2", "Created", "Created container b", 2);
        assert_eq!(c.correlate(other.clone()), Correlated::Create(other));
        let mut elsewhere = event("db.1", "Created", "Created container a", 3);
        elsewhere.involved_object.uid = Some("u2".into());
        assert_eq!(
            c.correlate(elsewhere.clone()),
            Correlated::Create(elsewhere)
        );
    }

    #[test]
    fn a_forgotten_event_is_created_again() {
        let c = EventCorrelator::new();
        let e = event("web.1", "Killing", "Stopping container a", 1);
        c.correlate(e.clone());
        c.forget(&e);
        let again = event("web.2", "Killing", "Stopping container a", 2);
        assert_eq!(c.correlate(again.clone()), Correlated::Create(again));
    }
}
