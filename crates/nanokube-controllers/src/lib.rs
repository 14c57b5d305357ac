//! # nanokube-controllers
//!
//! The controllers of nanokube. Each is an ordinary kube-rs client: it is handed a
//! [`kube::Client`] (in `nanokube server`, one that reaches the API server through an
//! in-process tower service under the controller's own least-privilege identity; elsewhere,
//! one over HTTPS) and never touches storage itself.
//!
//! Each controller lives in a file named after it and exposes a `run` future; the reconcile
//! logic is a pure function of the observed objects so it can be unit-tested without a
//! server. Start at [`serviceaccount`], [`root_ca`] and [`token`].

pub mod clusterrole_aggregation;
pub mod cronjob;
pub mod deployment;
pub mod events;
mod expectations;
mod failure_backoff;
pub mod garbage_collector;
pub mod job;
pub mod namespace;
mod ownership;
pub mod replicaset;
pub mod root_ca;
pub mod serviceaccount;
pub mod token;
pub mod ttl_after_finished;

use std::time::Duration;

/// Errors of a reconcile; every controller retries after a short delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("signing a token failed: {0}")]
    Token(String),
}

/// The delay before a failed reconcile is retried.
pub(crate) const RETRY: Duration = Duration::from_secs(2);

/// Drives a controller's stream of reconcile results to its end, logging each failure (the
/// controller's error policy has already scheduled the retry).
pub(crate) trait LogFailures: futures::Stream + Sized {
    fn log_failures(self, controller: &'static str) -> impl Future<Output = ()>;
}

impl<S, T, E> LogFailures for S
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    fn log_failures(self, controller: &'static str) -> impl Future<Output = ()> {
        futures::StreamExt::for_each(self, move |r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, controller, "reconcile failed");
            }
        })
    }
}

/// Whether an API error is `409 AlreadyExists` (someone else created it first).
pub(crate) fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Whether an API error is `404 NotFound`.
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
