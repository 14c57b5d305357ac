//! Upstream `ControllerExpectations`, keyed by the owner's uid (a Job or a ReplicaSet): the
//! pods a sync created or deleted that the next listing has not shown yet. Until they show (or the expectations
//! time out) no further pods are created or deleted, so a lagging view never doubles them.

use k8s_openapi::api::core::v1::Pod;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream `ExpectationsTimeout`: expectations not met by then are given up.
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Default)]
pub(crate) struct Expectations {
    by_owner: Mutex<HashMap<String, Pending>>,
}

#[derive(Default)]
struct Pending {
    creations: HashSet<String>,
    deletions: HashSet<String>,
    since: Option<Instant>,
}

impl Expectations {
    fn with<R>(&self, owner: &str, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut map = self
            .by_owner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(map.entry(owner.to_string()).or_default())
    }

    /// Notes what `pods` (the owner's pods as just listed) show and says whether nothing is
    /// still expected: created pods must be listed, deleted ones gone or terminating.
    pub(crate) fn observe(&self, owner: &str, pods: &[Pod]) -> bool {
        self.with(owner, |p| {
            let seen = |n: &String| {
                pods.iter()
                    .find(|pod| pod.metadata.name.as_ref() == Some(n))
            };
            p.creations.retain(|n| seen(n).is_none());
            p.deletions
                .retain(|n| seen(n).is_some_and(|pod| pod.metadata.deletion_timestamp.is_none()));
            let empty = p.creations.is_empty() && p.deletions.is_empty();
            let expired = p.since.is_some_and(|t| t.elapsed() > TIMEOUT);
            if empty || expired {
                *p = Pending::default();
                return true;
            }
            false
        })
    }

    pub(crate) fn expect_creation(&self, owner: &str, pod: &str) {
        self.with(owner, |p| {
            p.creations.insert(pod.to_string());
            p.since.get_or_insert_with(Instant::now);
        });
    }

    pub(crate) fn expect_deletion(&self, owner: &str, pod: &str) {
        self.with(owner, |p| {
            p.deletions.insert(pod.to_string());
            p.since.get_or_insert_with(Instant::now);
        });
    }

    /// A deletion that failed will never be observed (upstream `DeletionObserved` on error).
    pub(crate) fn deletion_failed(&self, owner: &str, pod: &str) {
        self.with(owner, |p| {
            p.deletions.remove(pod);
        });
    }

    pub(crate) fn forget(&self, owner: &str) {
        let mut map = self
            .by_owner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(owner);
    }
}
