//! Watch fan-out shared by every backend: the [`WatchHub`] that a backend publishes committed
//! events to, and the [`Watcher`] stream a client reads.
//!
//! A watch is built in three steps so that it has no gap and no duplicate, whatever the
//! writers do meanwhile: subscribe to live events first, then replay the stored history for
//! `(after, snapshot]`, then forward live events, skipping every revision at or below the
//! replay's snapshot (those were committed before the subscription saw them, so the replay
//! already has them).
//!
//! Writers never wait for watchers: each subscription has a bounded buffer, and a watcher
//! whose buffer is full is dropped, so its stream ends after the buffered events. The client
//! then re-watches from the last revision it saw, as an etcd client does when the server
//! cancels a slow watcher.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::{Revision, WatchEvent};

/// Live events a watcher may have buffered before it counts as too slow and is dropped.
pub(crate) const WATCH_BUFFER: usize = 1024;

/// A stream of events; ends (returns None) when the store shuts down or the watcher fell too
/// far behind (the client then re-watches from its last revision, as with etcd).
#[derive(Debug)]
pub struct Watcher {
    /// History read from the store when the watch started, oldest first.
    replay: VecDeque<WatchEvent>,
    live: mpsc::Receiver<WatchEvent>,
    /// Live events at or below this revision were part of the replay (or before `after`).
    replayed_through: Revision,
}

impl Watcher {
    /// Combines a live subscription taken *before* reading `history` with that history.
    /// `snapshot` is the store revision the history was read at.
    pub(crate) fn new(
        live: mpsc::Receiver<WatchEvent>,
        history: Vec<WatchEvent>,
        after: Revision,
        snapshot: Revision,
    ) -> Self {
        Watcher {
            replay: history.into(),
            live,
            replayed_through: after.max(snapshot),
        }
    }

    /// The next event, or None once the stream has ended.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        if let Some(event) = self.replay.pop_front() {
            return Poll::Ready(Some(event));
        }
        loop {
            match self.live.poll_recv(cx) {
                Poll::Ready(Some(event)) if event.revision() <= self.replayed_through => continue,
                other => return other,
            }
        }
    }
}

impl futures::Stream for Watcher {
    type Item = WatchEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        self.get_mut().poll_event(cx)
    }
}

struct Subscriber {
    prefix: String,
    events: mpsc::Sender<WatchEvent>,
}

/// The set of live subscriptions of one store. Dropping the hub ends every watcher.
pub(crate) struct WatchHub {
    subscribers: Mutex<Vec<Subscriber>>,
    buffer: usize,
}

impl WatchHub {
    pub(crate) fn new() -> Self {
        Self::with_buffer(WATCH_BUFFER)
    }

    pub(crate) fn with_buffer(buffer: usize) -> Self {
        WatchHub {
            subscribers: Mutex::new(Vec::new()),
            buffer: buffer.max(1),
        }
    }

    /// Starts receiving every event published from now on for keys under `prefix`.
    pub(crate) fn subscribe(&self, prefix: &str) -> mpsc::Receiver<WatchEvent> {
        let (events, receiver) = mpsc::channel(self.buffer);
        self.lock().push(Subscriber {
            prefix: prefix.to_owned(),
            events,
        });
        receiver
    }

    /// Delivers committed events, which must come in revision order and after every event of
    /// earlier calls. Never blocks: a subscriber that cannot take an event is dropped.
    pub(crate) fn publish(&self, events: &[WatchEvent]) {
        let mut subscribers = self.lock();
        subscribers.retain(|subscriber| {
            if subscriber.events.is_closed() {
                return false;
            }
            events
                .iter()
                .filter(|event| event.key().starts_with(&subscriber.prefix))
                .all(|event| {
                    let delivered = subscriber.events.try_send(event.clone()).is_ok();
                    if !delivered {
                        tracing::debug!(
                            prefix = %subscriber.prefix,
                            revision = event.revision(),
                            "dropping a watcher that fell behind"
                        );
                    }
                    delivered
                })
        });
    }

    #[cfg(test)]
    pub(crate) fn subscriber_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        // The list stays consistent even if a holder panicked: every mutation is one call.
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyValue;

    fn put(key: &str, revision: Revision) -> WatchEvent {
        WatchEvent::Put {
            kv: KeyValue {
                key: key.into(),
                value: Vec::new(),
                create_revision: revision,
                mod_revision: revision,
            },
            prev: None,
        }
    }

    #[tokio::test]
    async fn slow_watcher_is_dropped_after_its_buffered_events() {
        let hub = WatchHub::with_buffer(2);
        let mut watcher = Watcher::new(hub.subscribe("/a/"), Vec::new(), 0, 0);
        hub.publish(&[put("/a/1", 1), put("/a/2", 2), put("/a/3", 3)]);
        assert_eq!(hub.subscriber_count(), 0);
        assert_eq!(watcher.next().await.map(|e| e.revision()), Some(1));
        assert_eq!(watcher.next().await.map(|e| e.revision()), Some(2));
        assert_eq!(watcher.next().await, None);
    }

    #[tokio::test]
    async fn live_events_already_replayed_are_skipped() {
        let hub = WatchHub::new();
        let live = hub.subscribe("/a/");
        // Revisions 2 and 3 were committed after the subscription but before the history
        // read, so they arrive both ways.
        hub.publish(&[put("/a/x", 2), put("/a/y", 3), put("/a/z", 4)]);
        let mut watcher = Watcher::new(live, vec![put("/a/x", 2), put("/a/y", 3)], 1, 3);
        let revisions: Vec<Revision> = [
            watcher.next().await,
            watcher.next().await,
            watcher.next().await,
        ]
        .into_iter()
        .flatten()
        .map(|e| e.revision())
        .collect();
        assert_eq!(revisions, vec![2, 3, 4]);
    }

    #[tokio::test]
    async fn dropping_the_hub_ends_watchers() {
        let hub = WatchHub::new();
        let mut watcher = Watcher::new(hub.subscribe(""), Vec::new(), 0, 0);
        drop(hub);
        assert_eq!(watcher.next().await, None);
    }

    #[test]
    fn closed_watchers_are_pruned_on_publish() {
        let hub = WatchHub::new();
        drop(hub.subscribe("/a/"));
        let _kept = hub.subscribe("/b/");
        hub.publish(&[put("/b/1", 1)]);
        assert_eq!(hub.subscriber_count(), 1);
    }
}
