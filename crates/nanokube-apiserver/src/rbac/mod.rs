//! Role-based access control, as kube-apiserver's `--authorization-mode=RBAC` does it.
//!
//! - [`rule`]: a [`PolicyRule`] and [`rule_allows`], the matcher.
//! - [`snapshot`]: every Role, ClusterRole and binding at one revision; rule resolution for a
//!   user ([`Snapshot::authorize`], [`Snapshot::rules_for`]).
//! - [`cache`]: [`RbacCache`] keeps a snapshot current from the store (list, then watch).
//! - [`authorizer`]: [`RbacAuthorizer`], the [`crate::authz::Authorizer`] over the cache.
//! - [`coverage`] and [`escalation`]: [`covers`] and [`check_escalation`], so nobody grants
//!   through RBAC what they do not hold.
//! - [`aggregation`]: [`aggregate`], ClusterRole aggregation (`admin`/`edit`/`view`).
//! - [`bootstrap`]: [`bootstrap_policy`], the default roles and bindings.
//!
//! Start at [`RbacAuthorizer::decide`].

pub mod authorizer;
pub mod bootstrap;
pub mod cache;
pub mod coverage;
pub mod escalation;
pub mod rule;
pub mod snapshot;

pub use authorizer::RbacAuthorizer;
pub use bootstrap::bootstrap_policy;
pub use cache::RbacCache;
pub use coverage::covers;
pub use escalation::{check_escalation, check_escalation_on_update};
pub use nanokube_registry::rbac::aggregate;
pub use rule::{PolicyRule, rule_allows};
pub use snapshot::{ResolveError, RoleRef, Snapshot, Subject};
