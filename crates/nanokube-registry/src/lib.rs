//! # nanokube-registry
//!
//! What each Kubernetes resource *is*, independent of HTTP and storage: the served
//! [`resource`] catalog, one [`strategy::Strategy`] per kind ([`kinds`]) with its defaults,
//! validation ([`field`] errors with paths), update rules and field selectors, plus the
//! pure machinery the API server shares across kinds: [`selectors`], strategic merge
//! patch ([`smp`]), server-side [`printers`] (Table columns), [`duration`] formatting and
//! resource [`quantity`] arithmetic.
//!
//! Start at [`kinds::strategy_for`] (the strategy of a resource) and [`resource::ALL`].

pub mod clock;
pub mod codec;
pub mod duration;
pub mod event_correlator;
pub mod field;
pub mod goformat;
pub mod kinds;
pub mod printers;
pub mod quantity;
pub mod rbac;
pub mod resource;
pub mod selectors;
pub mod smp;
pub mod strategy;
pub mod validation;
