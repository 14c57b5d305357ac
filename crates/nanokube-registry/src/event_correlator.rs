//! Repeated Events counted on one object, as client-go's `EventCorrelator` does for every
//! component, so that `kubectl describe` shows `(x3 over 2m)` rather than a wall of
//! copies:
//!
//! * an Event identical to one already recorded (same source, involved object, type,
//!   reason and message) is not created again; the earlier one gets `count + 1` and a new
//!   `lastTimestamp` (client-go's `eventLogger`);
//! * once ten Events of the same object, type and reason but different messages came within
//!   ten minutes, further ones are folded into one Event with the message
//!   `(combined from similar events): <latest message>` (client-go's `EventAggregator`),
//!   which a Job creating many pods shows for its `SuccessfulCreate` Events.
//!
//! Pure bookkeeping: the recorders of the controllers and the node agent do the API calls.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// client-go's `maxLruCacheEntries`; past it the memory of recorded Events starts afresh.
const MAX_ENTRIES: usize = 4096;
/// client-go's `defaultAggregateMaxEvents`: distinct messages before similar Events fold.
const AGGREGATE_MAX_EVENTS: usize = 10;
/// client-go's `defaultAggregateIntervalInSeconds`.
const AGGREGATE_INTERVAL_SECONDS: i64 = 600;
/// The prefix of a folded Event's message (client-go's `EventAggregatorByReasonMessageFunc`).
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

#[derive(Clone, Debug)]
struct Recorded {
    name: String,
    count: i32,
    first_timestamp: Option<Time>,
}

#[derive(Clone, Debug, Default)]
struct Similar {
    messages: HashSet<String>,
    last_seconds: i64,
}

/// What to do with an Event.
#[derive(Clone, Debug, PartialEq)]
pub enum Correlated {
    /// A new Event: create it.
    Create(Event),
    /// A repeat: the Event (named as the earlier one, with its `firstTimestamp`, the new
    /// count, `lastTimestamp` and message) is written by patching those fields; if the
    /// earlier one is gone it is created as it stands.
    Repeat(Event),
}

impl Correlated {
    pub fn event(&self) -> &Event {
        match self {
            Correlated::Create(e) | Correlated::Repeat(e) => e,
        }
    }
}

/// The memory of one component's recent Events.
#[derive(Debug, Default)]
pub struct EventCorrelator {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// By the key the Event was recorded under (its own, or its similarity key once folded).
    recorded: HashMap<String, Recorded>,
    /// Distinct messages per similarity key.
    similar: HashMap<String, Similar>,
}

fn parts(e: &Event) -> [String; 9] {
    let source = e.source.clone().unwrap_or_default();
    let o = &e.involved_object;
    [
        source.component,
        source.host,
        o.kind.clone(),
        o.namespace.clone(),
        o.name.clone(),
        o.uid.clone(),
        o.api_version.clone(),
        e.type_.clone(),
        e.reason.clone(),
    ]
    .map(Option::unwrap_or_default)
}

/// client-go's `getEventKey`: everything that makes two Events the same one.
fn key(e: &Event) -> String {
    let mut p = parts(e).to_vec();
    p.push(e.involved_object.field_path.clone().unwrap_or_default());
    p.push(e.message.clone().unwrap_or_default());
    p.join("\u{0}")
}

/// client-go's `EventAggregatorByReasonFunc`: the same object, type and reason.
fn similarity_key(e: &Event) -> String {
    let mut p = parts(e).to_vec();
    p.push(e.reporting_component.clone().unwrap_or_default());
    p.push(e.reporting_instance.clone().unwrap_or_default());
    p.join("\u{0}")
}

fn seconds(t: &Option<Time>) -> i64 {
    t.as_ref().map_or(0, |t| t.0.as_second())
}

impl EventCorrelator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides whether `event` (freshly built: count 1, both timestamps now) is new, repeats
    /// an earlier one or folds into the similar-events Event, and remembers it.
    pub fn correlate(&self, event: Event) -> Correlated {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.recorded.len() >= MAX_ENTRIES || state.similar.len() >= MAX_ENTRIES {
            *state = State::default();
        }
        let now = seconds(&event.last_timestamp);
        let (mut event, k) = {
            let agg = similarity_key(&event);
            let similar = state.similar.entry(agg.clone()).or_default();
            if now - similar.last_seconds > AGGREGATE_INTERVAL_SECONDS {
                *similar = Similar::default();
            }
            similar
                .messages
                .insert(event.message.clone().unwrap_or_default());
            similar.last_seconds = now;
            if similar.messages.len() < AGGREGATE_MAX_EVENTS {
                let k = key(&event);
                (event, k)
            } else {
                // Keep the set at its bound, as client-go does.
                if let Some(any) = similar.messages.iter().next().cloned() {
                    similar.messages.remove(&any);
                }
                let mut folded = event;
                folded.message = Some(format!(
                    "{COMBINED_PREFIX}{}",
                    folded.message.unwrap_or_default()
                ));
                (folded, agg)
            }
        };
        match state.recorded.get_mut(&k) {
            Some(seen) => {
                seen.count = seen.count.saturating_add(1);
                event.metadata.name = Some(seen.name.clone());
                event.count = Some(seen.count);
                event.first_timestamp = seen.first_timestamp.clone();
                Correlated::Repeat(event)
            }
            None => {
                state.recorded.insert(
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

    /// Forgets an Event whose write failed, so the next one like it is created afresh.
    pub fn forget(&self, event: &Event) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let folded = event
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with(COMBINED_PREFIX));
        let k = if folded {
            similarity_key(event)
        } else {
            key(event)
        };
        state.recorded.remove(&k);
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

    #[test]
    fn the_tenth_similar_event_and_later_ones_fold_into_one() {
        let c = EventCorrelator::new();
        let created = |i: i64, secs: i64| {
            let mut e = event(
                &format!("job.{i}"),
                "SuccessfulCreate",
                &format!("Created pod: p{i}"),
                secs,
            );
            e.involved_object.kind = Some("Job".into());
            e
        };
        for i in 1..=9 {
            let e = created(i, i);
            assert_eq!(c.correlate(e.clone()), Correlated::Create(e), "event {i}");
        }
        let Correlated::Create(tenth) = c.correlate(created(10, 10)) else {
            panic!("the folded Event is new");
        };
        assert_eq!(
            tenth.message.as_deref(),
            Some("(combined from similar events): Created pod: p10")
        );
        assert_eq!(tenth.metadata.name.as_deref(), Some("job.10"));
        c.correlate(created(11, 11));
        let Correlated::Repeat(twelfth) = c.correlate(created(12, 12)) else {
            panic!("later ones count on it");
        };
        assert_eq!(twelfth.metadata.name.as_deref(), Some("job.10"));
        assert_eq!(twelfth.count, Some(3));
        assert_eq!(twelfth.first_timestamp, Some(at(10)));
        assert_eq!(
            twelfth.message.as_deref(),
            Some("(combined from similar events): Created pod: p12")
        );
        // Ten quiet minutes later the object starts afresh.
        let later = created(13, 12 + 601);
        assert_eq!(c.correlate(later.clone()), Correlated::Create(later));
    }
}
