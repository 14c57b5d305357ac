//! [`RbacAuthorizer`]: the [`Authorizer`] of `--authorization-mode=RBAC`, with upstream's
//! privileged-group short cut for `system:masters`.

use super::cache::RbacCache;
use crate::authn::MASTERS;
use crate::authz::{Attributes, Authorizer, Decision};
use std::sync::Arc;
use std::time::Duration;

/// How long a denied request may wait for the cache to apply writes acknowledged before it.
const CATCH_UP: Duration = Duration::from_secs(2);

/// Decides requests from the [`RbacCache`]'s snapshot.
pub struct RbacAuthorizer {
    cache: Arc<RbacCache>,
}

impl RbacAuthorizer {
    pub fn new(cache: Arc<RbacCache>) -> Self {
        RbacAuthorizer { cache }
    }

    pub fn cache(&self) -> &Arc<RbacCache> {
        &self.cache
    }

    /// The decision and, when allowed by RBAC, upstream's reason (for SubjectAccessReview).
    /// `system:masters` is always allowed (upstream puts a privileged-group authorizer before
    /// RBAC). A denial from a cache that is behind the store is decided again once the cache
    /// has caught up, so permissions granted just before a request are honoured.
    pub async fn decide(&self, attrs: &Attributes) -> (Decision, String) {
        if attrs.user.in_group(MASTERS) {
            return (Decision::Allow, String::new());
        }
        let snapshot = self.cache.snapshot();
        let first = snapshot.authorize(attrs);
        if first.0 == Decision::Allow {
            return first;
        }
        self.cache.catch_up(CATCH_UP).await;
        let fresh = self.cache.snapshot();
        if Arc::ptr_eq(&snapshot, &fresh) {
            first
        } else {
            fresh.authorize(attrs)
        }
    }
}

#[async_trait::async_trait]
impl Authorizer for RbacAuthorizer {
    async fn authorize(&self, attrs: &Attributes) -> Decision {
        self.decide(attrs).await.0
    }
}
