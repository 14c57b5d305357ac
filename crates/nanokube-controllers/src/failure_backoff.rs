//! How long a controller waits before retrying an object whose pod creations or deletions
//! failed: upstream's rate-limited work queue backs off per object, doubling with each
//! failure in a row, so a Job or ReplicaSet that cannot create its pods does not retry (and
//! record a `FailedCreate` Event) at a fixed, fast pace, and is still retried when nothing
//! else would wake it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Consecutive failed syncs per object uid.
pub(crate) struct FailureBackoff {
    failures: Mutex<HashMap<String, u32>>,
    initial: Duration,
    max: Duration,
}

impl FailureBackoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        FailureBackoff {
            failures: Mutex::new(HashMap::new()),
            initial,
            max,
        }
    }

    /// Notes the outcome of a sync; after a failure, returns the wait before the next one
    /// (`initial`, doubling with each failure in a row, at most `max`).
    pub(crate) fn record(&self, uid: &str, failed: bool) -> Option<Duration> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !failed {
            failures.remove(uid);
            return None;
        }
        let n = failures.entry(uid.to_string()).or_default();
        let delay = self
            .initial
            .saturating_mul(2u32.saturating_pow(*n))
            .min(self.max);
        *n = n.saturating_add(1);
        Some(delay)
    }
}
