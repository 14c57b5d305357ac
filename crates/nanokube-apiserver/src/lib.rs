//! # nanokube-apiserver
//!
//! nanokube's HTTPS front, shaped like kube-apiserver: [`authn`] (client certificates, later
//! tokens) → [`request_info`] (what the request is about) → [`authz`] (a pluggable
//! [`authz::Authorizer`]) → [`rest`] (one generic REST store for every kind, calling the
//! registry's per-kind strategies) or the non-resource endpoints ([`discovery`], health,
//! [`openapi`]); responses are objects, [`table`]s or [`watch`] streams, and every failure is
//! a [`status::ApiError`] rendered as a Kubernetes `Status`.
//!
//! Start at [`server::router`] and [`rest`]. [`pki`] makes the cluster's keys and kubeconfig.

pub mod admission;
pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod discovery;
pub mod loopback;
pub mod negotiate;
pub mod objects;
pub mod openapi;
pub mod pki;
pub mod pods;
pub mod rbac;
pub mod request_info;
pub mod rest;
pub mod reviews;
pub mod server;
pub mod serviceaccount;
pub mod status;
pub mod streams;
pub mod table;
pub mod watch;
