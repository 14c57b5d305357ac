//! # nanokube-kubelet
//!
//! The node agent. It is an ordinary kube-rs client: in `nanokube server` it reaches the API
//! through an in-process tower service as `system:node:<name>`; the same code runs over HTTPS.
//!
//! - [`node`]: registers this machine as a `Node` and keeps its `Lease` and status fresh;
//! - [`scheduler`]: binds pods without a node to a Ready node that fits them;
//! - [`pod_worker`]: runs each bound pod's containers and reports their state;
//! - [`container_init`]: the runtime's process side: namespaces, root filesystem, mounts;
//! - [`image`]: the local image store (`nanokube image import|ls`);
//! - [`cgroups`]: resource limits, OOM detection and killing, on cgroup v1 and v2;
//! - [`exec`] and [`attach`]: `kubectl exec`/`attach` sessions, with pipes or a pty;
//! - [`logs`]: container log files, written as CRI does and read back for `kubectl logs`.

pub mod attach;
pub mod cgroups;
// fork, setns, signal handlers and ioctls: each unsafe block says why it is sound.
#[allow(unsafe_code)]
pub mod container_init;
pub mod exec;
pub mod image;
pub mod logs;
pub mod node;
pub mod pod_worker;
pub mod scheduler;
