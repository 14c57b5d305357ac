//! Control groups for containers: resource limits from `resources.limits`/`requests`, OOM
//! detection, and killing or removing everything a container started.
//!
//! The kubelet gives every container a cgroup below `kubepods`; nanokube does the same below
//! one root of its own (`<hierarchy>/<root_name>/pod<uid>/<container>`), computing the
//! values as the kubelet and its runtime do (`MilliCPUToShares`, `MilliCPUToQuota`,
//! `CpuSharesToCpuWeight`).
//!
//! Two layouts are supported, detected from `/proc/self/mountinfo`:
//!
//! - **cgroup v1** (also "hybrid"): one hierarchy per controller group at
//!   `/sys/fs/cgroup/{memory,cpu,cpuacct,pids,freezer}`; a container's cgroup is created in
//!   each. If a v2 hierarchy is mounted alongside (`/sys/fs/cgroup/unified`, usually without
//!   controllers), the cgroup is created there too: v2's core files (`cgroup.kill`) make
//!   killing a process tree atomic even when the controllers live in v1.
//! - **cgroup v2**: one hierarchy (`cgroup2`, normally at `/sys/fs/cgroup`). Controllers must
//!   be enabled in every ancestor's `cgroup.subtree_control`, and a cgroup that does so may
//!   not hold processes itself ("no internal processes"): the nanokube root and the pod
//!   cgroups only ever hold child cgroups; processes join the container cgroups (the leaves).
//!
//! Everything here is synchronous file I/O on cgroupfs; [`Cgroup::kill_all`] and
//! [`Cgroup::remove`] may wait up to a few seconds for processes to exit, so async callers
//! should run them with `spawn_blocking`.
//!
//! OOM kills are read from the kernel's per-cgroup counters: v2 `memory.events` `oom_kill`,
//! v1 `memory.oom_control` `oom_kill` (kernel 4.13+). Older v1 kernels have no per-cgroup
//! kill counter; `memory.failcnt` is no substitute (it counts every time usage touched the
//! limit, which page-cache reclaim does routinely without any process dying), so there
//! [`Cgroup::oom_kill_count`] reports 0.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use nanokube_registry::quantity::Quantity;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, getpid, write};

/// The CFS period the kubelet uses (`QuotaPeriod`, 100ms).
pub const CPU_PERIOD_US: u64 = 100_000;
/// Bounds of v1 `cpu.shares` (`MinShares`, `MaxShares`).
pub const MIN_SHARES: u64 = 2;
pub const MAX_SHARES: u64 = 262_144;
/// The smallest CFS quota the kubelet sets (`MinQuotaPeriod`, 1ms).
pub const MIN_QUOTA_US: u64 = 1_000;

/// The v1 controllers a container cgroup is created under. `cpuset` is left alone (a cgroup
/// there needs `cpuset.cpus`/`mems` before it can take processes), as are `devices`, `blkio`
/// and named hierarchies such as `name=systemd`.
const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "freezer"];
/// The v2 controllers nanokube enables for its subtree.
const V2_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// How long [`Cgroup::kill_all`] keeps killing before giving up.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `rmdir` is retried while exiting tasks keep a cgroup busy.
const RMDIR_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);

/// The resource settings of one container's cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `limits.memory` in bytes: the OOM killer fires inside the cgroup past it.
    pub memory_bytes: Option<u64>,
    /// `limits.cpu` in millicores: a CFS quota per [`CPU_PERIOD_US`].
    pub cpu_millis: Option<u64>,
    /// `requests.cpu` in millicores: the cgroup's CPU weight relative to its siblings
    /// (`cpu.shares` in v1, `cpu.weight` in v2). `None` leaves the kernel default.
    pub cpu_request_millis: Option<u64>,
    /// The most tasks the cgroup may hold (`pids.max`); the kubelet's `podPidsLimit`.
    pub pids_max: Option<u64>,
}

/// The cgroup settings the kubelet derives from a container's resources
/// (`generateLinuxContainerResources`): the memory limit, the CPU limit as a quota, and the
/// CPU request — or the limit when only that is set, or nothing — as shares; a BestEffort
/// container gets the minimum weight. Quantities that do not parse count as unset.
pub fn limits_for(container: &Container) -> Limits {
    let resources = container.resources.as_ref();
    let limits = resources.and_then(|r| r.limits.as_ref());
    let requests = resources.and_then(|r| r.requests.as_ref());
    let get = |map: Option<&std::collections::BTreeMap<String, ApiQuantity>>, name: &str| {
        map.and_then(|m| m.get(name))
            .and_then(|q| Quantity::try_from(q).ok())
    };
    let positive = |v: i128| u64::try_from(v.max(0)).unwrap_or(u64::MAX);
    let memory_bytes = get(limits, "memory")
        .map(|q| positive(q.value_ceil()))
        .filter(|v| *v > 0);
    let cpu_limit = get(limits, "cpu").map(|q| positive(q.milli_value_ceil()));
    let cpu_request = get(requests, "cpu").map(|q| positive(q.milli_value_ceil()));
    Limits {
        memory_bytes,
        cpu_millis: cpu_limit.filter(|m| *m > 0),
        cpu_request_millis: Some(cpu_request.or(cpu_limit).unwrap_or(0)),
        pids_max: None,
    }
}

/// v1 `cpu.shares` for a CPU request (kubelet `MilliCPUToShares`): 1024 per core, at least
/// [`MIN_SHARES`] (also for no request at all), at most [`MAX_SHARES`].
pub fn milli_cpu_to_shares(milli_cpu: u64) -> u64 {
    if milli_cpu == 0 {
        return MIN_SHARES;
    }
    (milli_cpu.saturating_mul(1024) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// v2 `cpu.weight` for v1 shares (kubelet `CpuSharesToCpuWeight`, KEP 2254): maps
/// [2, 262144] linearly onto [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + (shares - 2) * 9999 / 262_142
}

/// The CFS quota for a CPU limit over `period_us` (kubelet `MilliCPUToQuota`), at least
/// [`MIN_QUOTA_US`].
pub fn milli_cpu_to_quota(milli_cpu: u64, period_us: u64) -> u64 {
    (milli_cpu.saturating_mul(period_us) / 1000).max(MIN_QUOTA_US)
}

/// Why a cgroup could not be created, joined or removed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {} still has processes {pids:?}", path.display())]
    Busy { path: PathBuf, pids: Vec<i32> },
}

impl CgroupError {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        CgroupError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Which cgroup API the machine offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Controllers in v1 hierarchies (possibly with an empty v2 hierarchy alongside).
    V1,
    /// One unified v2 hierarchy.
    V2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// One mounted hierarchy nanokube uses, with the controllers it serves (empty for the v2
/// hierarchy of a hybrid machine, which only tracks processes).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hierarchy {
    mount: PathBuf,
    version: Version,
    controllers: BTreeSet<String>,
}

/// One line of `/proc/self/mountinfo`, the parts cgroup detection needs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    mount_point: PathBuf,
    fstype: String,
    super_options: Vec<String>,
}

/// Parses `/proc/<pid>/mountinfo` (`proc(5)`): `id parent major:minor root mount-point
/// options [optional fields...] - fstype source super-options`.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            Some(Mount {
                mount_point: PathBuf::from(unescape_octal(mount_point)),
                fstype: fstype.to_string(),
                super_options: super_options.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Undoes mountinfo's `\040`-style escapes of space, tab, newline and backslash.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The hierarchies to use, given the mounts: v1 when any v1 hierarchy carries one of
/// [`V1_CONTROLLERS`] (plus the v2 hierarchy, if mounted, for tracking), else the v2
/// hierarchy (preferring `/sys/fs/cgroup`) with its controllers still to be read.
fn hierarchies_from_mounts(mounts: &[Mount]) -> Option<(CgroupVersion, Vec<Hierarchy>)> {
    let mut v1: Vec<Hierarchy> = Vec::new();
    for m in mounts.iter().filter(|m| m.fstype == "cgroup") {
        let controllers: BTreeSet<String> = m
            .super_options
            .iter()
            .filter(|o| V1_CONTROLLERS.contains(&o.as_str()))
            .cloned()
            .collect();
        // The same hierarchy may be mounted twice; use its first mount.
        if controllers.is_empty() || v1.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        v1.push(Hierarchy {
            mount: m.mount_point.clone(),
            version: Version::V1,
            controllers,
        });
    }
    let mut v2 = mounts.iter().filter(|m| m.fstype == "cgroup2");
    let unified = v2
        .clone()
        .find(|m| m.mount_point == Path::new("/sys/fs/cgroup"))
        .or_else(|| v2.next())
        .map(|m| Hierarchy {
            mount: m.mount_point.clone(),
            version: Version::V2,
            controllers: BTreeSet::new(),
        });
    if !v1.is_empty() {
        v1.extend(unified);
        return Some((CgroupVersion::V1, v1));
    }
    unified.map(|h| (CgroupVersion::V2, vec![h]))
}

/// Splits a relative cgroup path into its components, refusing anything that could leave
/// the nanokube root.
fn components<'a>(path: &'a str, what: &'static str) -> Result<Vec<&'a str>, CgroupError> {
    let invalid = |reason| CgroupError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid(what));
    }
    let parts: Vec<&str> = path.split('/').collect();
    for p in &parts {
        match *p {
            "" => {
                return Err(invalid(
                    "empty path segment (leading, trailing or double '/')",
                ));
            }
            "." | ".." => return Err(invalid("'.' and '..' are not allowed")),
            p if p.contains('\0') => return Err(invalid("contains NUL")),
            _ => {}
        }
    }
    Ok(parts)
}

/// `mkdir` that accepts an existing directory.
fn make_dir(dir: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CgroupError::io("create cgroup", dir, e)),
    }
}

/// Writes one value to a cgroup file in a single `write(2)`, as cgroupfs expects.
fn write_file(path: &Path, value: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

fn set(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    write_file(&path, value).map_err(|e| CgroupError::io("write", &path, e))
}

/// Sets a file only where the kernel offers it.
fn set_if_present(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    if dir.join(file).exists() {
        set(dir, file, value)
    } else {
        Ok(())
    }
}

/// The value of `key` in a flat-keyed cgroup file (`memory.events`, `memory.oom_control`).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The controllers named in a `cgroup.controllers` / `cgroup.subtree_control` file.
fn controller_list(dir: &Path, file: &str) -> BTreeSet<String> {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Enables `controllers` for the children of the v2 cgroup `dir`, one at a time so one the
/// kernel refuses does not take the others down with it.
fn enable_subtree_controllers(dir: &Path, controllers: &BTreeSet<String>) {
    let enabled = controller_list(dir, "cgroup.subtree_control");
    for c in controllers.difference(&enabled) {
        if let Err(e) = write_file(&dir.join("cgroup.subtree_control"), &format!("+{c}")) {
            tracing::debug!(dir = %dir.display(), controller = %c, error = %e,
                "cannot enable cgroup controller");
        }
    }
}

/// Creates and finds container cgroups below one nanokube root in every hierarchy.
#[derive(Clone, Debug)]
pub struct CgroupManager {
    version: CgroupVersion,
    /// The hierarchies with the root's directory in each (`<mount>/<root_name>`).
    roots: Vec<(Hierarchy, PathBuf)>,
}

impl CgroupManager {
    /// Finds the cgroup hierarchies of this machine and prepares `<mount>/<root_name>` in
    /// each (for v2, with the CPU, memory and pids controllers enabled down to it). `None`,
    /// with the reason logged, when cgroups cannot be used: none mounted, read-only, not
    /// root, or a bad `root_name`.
    pub fn detect(root_name: &str) -> Option<Self> {
        let mountinfo = match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(error = %e, "cgroups unavailable: cannot read /proc/self/mountinfo");
                return None;
            }
        };
        let Some((version, hierarchies)) = hierarchies_from_mounts(&parse_mountinfo(&mountinfo))
        else {
            tracing::warn!("cgroups unavailable: no cgroup or cgroup2 filesystem is mounted");
            return None;
        };
        match Self::prepare(root_name, version, hierarchies) {
            Ok(manager) => Some(manager),
            Err(e) => {
                tracing::warn!(error = %e, "cgroups unavailable");
                None
            }
        }
    }

    fn prepare(
        root_name: &str,
        version: CgroupVersion,
        hierarchies: Vec<Hierarchy>,
    ) -> Result<Self, CgroupError> {
        let parts = components(root_name, "the root name may not be empty")?;
        let mut roots = Vec::new();
        for mut h in hierarchies {
            let tracking_only = version == CgroupVersion::V1 && h.version == Version::V2;
            let created = if h.version == Version::V2 && !tracking_only {
                Self::prepare_v2_root(&mut h, &parts)
            } else {
                let dir = parts.iter().fold(h.mount.clone(), |d, p| d.join(p));
                std::fs::create_dir_all(&dir)
                    .map(|()| dir.clone())
                    .map_err(|e| CgroupError::io("create cgroup", &dir, e))
            };
            match created {
                Ok(dir) => roots.push((h, dir)),
                // The v2 hierarchy of a hybrid machine is a convenience, not a requirement.
                Err(e) if tracking_only => {
                    tracing::debug!(error = %e, "not tracking containers in the cgroup v2 hierarchy");
                }
                Err(e) => return Err(e),
            }
        }
        let controllers: BTreeSet<&str> = roots
            .iter()
            .flat_map(|(h, _)| h.controllers.iter().map(String::as_str))
            .collect();
        for wanted in ["memory", "cpu", "pids"] {
            if !controllers.contains(wanted) {
                tracing::warn!(
                    controller = wanted,
                    "cgroup controller unavailable: container limits that need it are not enforced"
                );
            }
        }
        tracing::info!(?version, roots = ?roots.iter().map(|(_, d)| d).collect::<Vec<_>>(),
            "container cgroups");
        Ok(CgroupManager { version, roots })
    }

    /// Creates the root in the v2 hierarchy, enabling the controllers the mount offers in
    /// each ancestor's `cgroup.subtree_control`, and records which ones the root's children
    /// actually get.
    fn prepare_v2_root(h: &mut Hierarchy, parts: &[&str]) -> Result<PathBuf, CgroupError> {
        let available = controller_list(&h.mount, "cgroup.controllers");
        let wanted: BTreeSet<String> = V2_CONTROLLERS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| available.contains(c))
            .collect();
        let mut dir = h.mount.clone();
        enable_subtree_controllers(&dir, &wanted);
        for p in parts {
            dir = dir.join(p);
            make_dir(&dir)?;
            enable_subtree_controllers(&dir, &wanted);
        }
        let enabled = controller_list(&dir, "cgroup.subtree_control");
        let missing: Vec<&String> = wanted.difference(&enabled).collect();
        if !missing.is_empty() {
            tracing::warn!(?missing, root = %dir.display(),
                "cannot enable cgroup v2 controllers (a cgroup on the way holds processes?)");
        }
        h.controllers = enabled.intersection(&wanted).cloned().collect();
        Ok(dir)
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The controllers container cgroups get (`memory`, `cpu`, `pids`, ...).
    pub fn controllers(&self) -> BTreeSet<String> {
        self.roots
            .iter()
            .flat_map(|(h, _)| h.controllers.iter().cloned())
            .collect()
    }

    /// Creates the cgroup `path` (e.g. `pod<uid>/<container>`) below the root in every
    /// hierarchy, with `limits` applied; an existing cgroup is reused and its limits reset.
    /// Intermediate cgroups (the pod's) only ever hold child cgroups. Limits whose
    /// controller the machine lacks are skipped.
    pub fn create(&self, path: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        let parts = components(path, "a container cgroup needs a path below the root")?;
        let mut dirs = Vec::new();
        for (h, root) in &self.roots {
            let mut dir = root.clone();
            if h.version == Version::V2 {
                enable_subtree_controllers(&dir, &h.controllers);
            }
            for (i, p) in parts.iter().enumerate() {
                dir = dir.join(p);
                make_dir(&dir)?;
                if h.version == Version::V2 && i + 1 < parts.len() {
                    enable_subtree_controllers(&dir, &h.controllers);
                }
            }
            dirs.push(CgroupDir {
                dir,
                version: h.version,
                controllers: h.controllers.clone(),
            });
        }
        let cgroup = Cgroup::new(path, dirs)?;
        if let Err(e) = cgroup.apply(limits) {
            let leaves = cgroup
                .dirs
                .iter()
                .map(|d| d.dir.clone())
                .collect::<Vec<_>>();
            for leaf in leaves {
                let _ = std::fs::remove_dir(leaf);
            }
            return Err(e);
        }
        Ok(cgroup)
    }

    /// The existing cgroup `path` below the root (`""` for the root itself), e.g. after an
    /// agent restart; `None` when it does not exist.
    pub fn open(&self, path: &str) -> Option<Cgroup> {
        let parts = if path.is_empty() {
            Vec::new()
        } else {
            components(path, "").ok()?
        };
        let dirs: Vec<CgroupDir> = self
            .roots
            .iter()
            .map(|(h, root)| CgroupDir {
                dir: parts.iter().fold(root.clone(), |d, p| d.join(p)),
                version: h.version,
                controllers: h.controllers.clone(),
            })
            .filter(|d| d.dir.is_dir())
            .collect();
        if dirs.is_empty() {
            return None;
        }
        Cgroup::new(path, dirs).ok()
    }

    /// The names of the cgroups directly below `path` (`""` for the root): the pod cgroups,
    /// or a pod's container cgroups, e.g. to remove those of pods that no longer exist.
    pub fn children(&self, path: &str) -> Vec<String> {
        let Some(cgroup) = self.open(path) else {
            return Vec::new();
        };
        let mut names: BTreeSet<String> = BTreeSet::new();
        for d in &cgroup.dirs {
            for entry in std::fs::read_dir(&d.dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    names.insert(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        names.into_iter().collect()
    }
}

#[derive(Clone, Debug)]
struct CgroupDir {
    dir: PathBuf,
    version: Version,
    controllers: BTreeSet<String>,
}

impl CgroupDir {
    fn has(&self, controller: &str) -> bool {
        self.controllers.contains(controller)
    }
}

/// One container's (or pod's) cgroup, present in every hierarchy.
#[derive(Clone, Debug)]
pub struct Cgroup {
    path: String,
    dirs: Vec<CgroupDir>,
    /// `cgroup.procs` of each hierarchy, rendered up front so joining after `fork` needs
    /// no allocation.
    procs: Vec<CString>,
}

impl Cgroup {
    fn new(path: &str, dirs: Vec<CgroupDir>) -> Result<Self, CgroupError> {
        let procs = dirs
            .iter()
            .map(|d| {
                let file = d.dir.join("cgroup.procs");
                CString::new(file.as_os_str().as_bytes()).map_err(|_| CgroupError::InvalidPath {
                    path: path.to_string(),
                    reason: "contains NUL",
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Cgroup {
            path: path.to_string(),
            dirs,
            procs,
        })
    }

    /// The path below the nanokube root (`pod<uid>/<container>`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The directory of this cgroup in each hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.dir.clone()).collect()
    }

    /// The `cgroup.procs` file of each hierarchy: writing a pid there moves that process.
    pub fn procs_paths(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.dir.join("cgroup.procs"))
            .collect()
    }

    /// Moves the calling process into this cgroup in every hierarchy. Only `getpid`,
    /// `open`, `write` and `close`, no allocation: safe to call from `pre_exec` between
    /// `fork` and `exec`, so the container's process starts inside its limits.
    pub fn join_current_process(&self) -> io::Result<()> {
        let mut buf = [0u8; 12];
        let pid = render_pid(getpid().as_raw(), &mut buf);
        for procs in &self.procs {
            let fd = open(
                procs.as_c_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            write(&fd, pid)?;
        }
        Ok(())
    }

    /// Moves process `pid` (all its threads) into this cgroup in every hierarchy.
    pub fn add(&self, pid: i32) -> Result<(), CgroupError> {
        let text = pid.to_string();
        for path in self.procs_paths() {
            write_file(&path, &text).map_err(|e| CgroupError::io("join cgroup", &path, e))?;
        }
        Ok(())
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup (v2
    /// `memory.events`, v1 `memory.oom_control` on kernel 4.13+; 0 when unknown — see the
    /// module docs). A container that died by SIGKILL while this grew was `OOMKilled`.
    pub fn oom_kill_count(&self) -> u64 {
        let Some(d) = self.dirs.iter().find(|d| d.has("memory")) else {
            return 0;
        };
        let file = match d.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        std::fs::read_to_string(d.dir.join(file))
            .ok()
            .and_then(|text| keyed_value(&text, "oom_kill"))
            .unwrap_or(0)
    }

    /// The processes in this cgroup and the cgroups below it, in any hierarchy.
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = BTreeSet::new();
        for d in &self.dirs {
            for dir in subtree(&d.dir) {
                let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        pids.into_iter().collect()
    }

    /// Kills every process in this cgroup and below, including those that forked or
    /// daemonised: v2 `cgroup.kill` where the kernel has it (5.14+), else freeze, SIGKILL
    /// each process, thaw, until the cgroup is empty or a few seconds passed. Blocks.
    pub fn kill_all(&self) {
        let deadline = Instant::now() + KILL_TIMEOUT;
        let killer = self
            .dirs
            .iter()
            .filter(|d| d.version == Version::V2)
            .map(|d| d.dir.join("cgroup.kill"))
            .find(|f| f.exists());
        if let Some(kill_file) = killer {
            match write_file(&kill_file, "1") {
                Ok(()) => {
                    if self.wait_empty(deadline) {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(file = %kill_file.display(), error = %e, "cgroup.kill failed");
                }
            }
        }
        while !self.pids().is_empty() && Instant::now() < deadline {
            let frozen = self.freeze(true);
            for pid in self.pids() {
                // ESRCH: it exited meanwhile.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if frozen {
                self.freeze(false);
            }
            self.wait_empty(Instant::now() + Duration::from_millis(100));
        }
    }

    /// Freezes (or thaws) the subtree so nothing forks while it is being killed; whether a
    /// freezer was there to use.
    fn freeze(&self, frozen: bool) -> bool {
        for d in &self.dirs {
            match d.version {
                Version::V2 if d.dir.join("cgroup.freeze").exists() => {
                    let value = if frozen { "1" } else { "0" };
                    if write_file(&d.dir.join("cgroup.freeze"), value).is_ok() {
                        return true;
                    }
                }
                Version::V1 if d.has("freezer") => {
                    let state = if frozen { "FROZEN" } else { "THAWED" };
                    let file = d.dir.join("freezer.state");
                    if write_file(&file, state).is_ok() {
                        // FREEZING becomes FROZEN once every task stopped; a task stuck in
                        // the kernel may hold it up, which only delays its kill.
                        let until = Instant::now() + Duration::from_millis(200);
                        while frozen && Instant::now() < until {
                            match std::fs::read_to_string(&file) {
                                Ok(s) if s.trim() != "FREEZING" => break,
                                _ => std::thread::sleep(POLL),
                            }
                        }
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }

    fn wait_empty(&self, deadline: Instant) -> bool {
        loop {
            if self.pids().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Removes this cgroup and every cgroup below it from every hierarchy, killing what
    /// still runs there first; `rmdir` is retried briefly while exiting tasks keep a cgroup
    /// busy. The parent (e.g. the pod's cgroup) is left in place.
    pub fn remove(self) -> Result<(), CgroupError> {
        if !self.pids().is_empty() {
            self.kill_all();
        }
        for d in &self.dirs {
            // Deepest first.
            let mut dirs = subtree(&d.dir);
            dirs.reverse();
            for dir in dirs {
                self.remove_dir(&dir)?;
            }
        }
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> Result<(), CgroupError> {
        let deadline = Instant::now() + RMDIR_TIMEOUT;
        loop {
            match std::fs::remove_dir(dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(Errno::EBUSY as i32) => {
                    if Instant::now() >= deadline {
                        return Err(CgroupError::Busy {
                            path: dir.to_path_buf(),
                            pids: self.pids(),
                        });
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) => return Err(CgroupError::io("remove cgroup", dir, e)),
            }
        }
    }

    /// Writes `limits` to the files of the controllers this cgroup has.
    fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        for d in &self.dirs {
            match d.version {
                Version::V1 => apply_v1(d, limits)?,
                Version::V2 if !d.controllers.is_empty() => apply_v2(d, limits)?,
                Version::V2 => {}
            }
        }
        Ok(())
    }
}

fn apply_v1(d: &CgroupDir, limits: &Limits) -> Result<(), CgroupError> {
    let dir = &d.dir;
    if d.has("memory") {
        // memsw (memory + swap) must stay >= the memory limit, so the order of the two
        // writes depends on the direction of the change; giving both the same value keeps
        // swap from absorbing what should be an OOM kill.
        let value = limits
            .memory_bytes
            .map_or("-1".to_string(), |b| b.to_string());
        let memsw = dir.join("memory.memsw.limit_in_bytes").exists();
        if limits.memory_bytes.is_none() {
            if memsw {
                set(dir, "memory.memsw.limit_in_bytes", &value)?;
            }
            set(dir, "memory.limit_in_bytes", &value)?;
        } else if set(dir, "memory.limit_in_bytes", &value).is_ok() {
            if memsw {
                set(dir, "memory.memsw.limit_in_bytes", &value)?;
            }
        } else {
            if memsw {
                set(dir, "memory.memsw.limit_in_bytes", &value)?;
            }
            set(dir, "memory.limit_in_bytes", &value)?;
        }
    }
    if d.has("cpu") {
        // CFS bandwidth control is a kernel option (CONFIG_CFS_BANDWIDTH).
        set_if_present(dir, "cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
        let quota = limits.cpu_millis.map_or("-1".to_string(), |m| {
            milli_cpu_to_quota(m, CPU_PERIOD_US).to_string()
        });
        set_if_present(dir, "cpu.cfs_quota_us", &quota)?;
        let shares = limits.cpu_request_millis.map_or(1024, milli_cpu_to_shares);
        set(dir, "cpu.shares", &shares.to_string())?;
    }
    if d.has("pids") {
        let max = limits.pids_max.map_or("max".to_string(), |n| n.to_string());
        set(dir, "pids.max", &max)?;
    }
    Ok(())
}

fn apply_v2(d: &CgroupDir, limits: &Limits) -> Result<(), CgroupError> {
    let dir = &d.dir;
    if d.has("memory") {
        let max = limits
            .memory_bytes
            .map_or("max".to_string(), |b| b.to_string());
        set(dir, "memory.max", &max)?;
        // Swap would hide the OOM the limit is meant to cause (kubelet's NoSwap).
        set_if_present(dir, "memory.swap.max", "0")?;
        // On OOM kill the whole container, not one process of it (kubelet since 1.28,
        // unless singleProcessOOMKill).
        set_if_present(dir, "memory.oom.group", "1")?;
    }
    if d.has("cpu") {
        let quota = limits.cpu_millis.map_or("max".to_string(), |m| {
            milli_cpu_to_quota(m, CPU_PERIOD_US).to_string()
        });
        set_if_present(dir, "cpu.max", &format!("{quota} {CPU_PERIOD_US}"))?;
        let weight = limits
            .cpu_request_millis
            .map_or(100, |m| shares_to_weight(milli_cpu_to_shares(m)));
        set(dir, "cpu.weight", &weight.to_string())?;
    }
    if d.has("pids") {
        let max = limits.pids_max.map_or("max".to_string(), |n| n.to_string());
        set(dir, "pids.max", &max)?;
    }
    Ok(())
}

/// `dir` and every directory below it, parents before children.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let children: Vec<PathBuf> = std::fs::read_dir(&out[i])
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        out.extend(children);
        i += 1;
    }
    out
}

/// Renders a pid in decimal into `buf` without allocating.
fn render_pid(pid: i32, buf: &mut [u8; 12]) -> &[u8] {
    let negative = pid < 0;
    let mut n = pid.unsigned_abs();
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        start -= 1;
        buf[start] = b'-';
    }
    &buf[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    /// This machine's layout: v1 controllers plus an empty v2 hierarchy.
    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd machine on pure v2.
    const UNIFIED: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
25 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    /// Older distributions: cpu and cpuacct co-mounted, a second mount of the same
    /// hierarchy, and a mount point with an escaped space.
    const COMOUNTED: &str = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
32 25 0:27 / /mnt/memory\\040copy rw - cgroup cgroup rw,memory
";

    fn mounts(h: &[Hierarchy]) -> Vec<(&str, Version, Vec<&str>)> {
        h.iter()
            .map(|h| {
                (
                    h.mount.to_str().expect("utf-8"),
                    h.version,
                    h.controllers.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn hybrid_layout_uses_v1_controllers_and_tracks_in_the_unified_hierarchy() {
        let (version, h) = hierarchies_from_mounts(&parse_mountinfo(HYBRID)).expect("layout");
        assert_eq!(version, CgroupVersion::V1);
        assert_eq!(
            mounts(&h),
            vec![
                ("/sys/fs/cgroup/cpu", Version::V1, vec!["cpu"]),
                ("/sys/fs/cgroup/cpuacct", Version::V1, vec!["cpuacct"]),
                ("/sys/fs/cgroup/memory", Version::V1, vec!["memory"]),
                ("/sys/fs/cgroup/freezer", Version::V1, vec!["freezer"]),
                ("/sys/fs/cgroup/pids", Version::V1, vec!["pids"]),
                ("/sys/fs/cgroup/unified", Version::V2, vec![]),
            ]
        );
    }

    #[test]
    fn pure_v2_layout_uses_the_single_hierarchy() {
        let (version, h) = hierarchies_from_mounts(&parse_mountinfo(UNIFIED)).expect("layout");
        assert_eq!(version, CgroupVersion::V2);
        assert_eq!(mounts(&h), vec![("/sys/fs/cgroup", Version::V2, vec![])]);
    }

    #[test]
    fn comounted_and_duplicate_v1_hierarchies_are_used_once() {
        let parsed = parse_mountinfo(COMOUNTED);
        assert_eq!(parsed[2].mount_point, PathBuf::from("/mnt/memory copy"));
        let (version, h) = hierarchies_from_mounts(&parsed).expect("layout");
        assert_eq!(version, CgroupVersion::V1);
        assert_eq!(
            mounts(&h),
            vec![
                (
                    "/sys/fs/cgroup/cpu,cpuacct",
                    Version::V1,
                    vec!["cpu", "cpuacct"]
                ),
                ("/sys/fs/cgroup/memory", Version::V1, vec!["memory"]),
            ]
        );
    }

    #[test]
    fn no_cgroup_mounts_means_no_cgroups() {
        let only_named = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        assert_eq!(hierarchies_from_mounts(&parse_mountinfo(only_named)), None);
        assert_eq!(hierarchies_from_mounts(&parse_mountinfo("garbage\n")), None);
    }

    #[test]
    fn paths_cannot_escape_the_root() {
        for bad in ["", "/abs", "a//b", "a/", "..", "a/../b", "./a", "a\0b"] {
            assert!(components(bad, "empty").is_err(), "{bad:?}");
        }
        assert_eq!(components("pod1/c", "").expect("valid"), vec!["pod1", "c"]);
    }

    #[test]
    fn shares_weight_and_quota_follow_the_kubelet() {
        assert_eq!(milli_cpu_to_shares(0), 2, "BestEffort");
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), MAX_SHARES);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(MAX_SHARES), 10_000);
        assert_eq!(shares_to_weight(0), 1, "clamped");
        assert_eq!(milli_cpu_to_quota(500, CPU_PERIOD_US), 50_000);
        assert_eq!(milli_cpu_to_quota(2500, CPU_PERIOD_US), 250_000);
        assert_eq!(milli_cpu_to_quota(1, CPU_PERIOD_US), MIN_QUOTA_US);
    }

    fn container(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Container {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| (k.to_string(), ApiQuantity(v.to_string())))
                    .collect()
            })
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                limits: map(limits),
                requests: map(requests),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn limits_come_from_resources_like_the_kubelet() {
        let l = limits_for(&container(
            &[("memory", "1.5Gi"), ("cpu", "500m")],
            &[("cpu", "250m")],
        ));
        assert_eq!(
            l,
            Limits {
                memory_bytes: Some(1_610_612_736),
                cpu_millis: Some(500),
                cpu_request_millis: Some(250),
                pids_max: None,
            }
        );
        let only_limit = limits_for(&container(&[("cpu", "2")], &[]));
        assert_eq!(
            only_limit.cpu_request_millis,
            Some(2000),
            "request defaults to limit"
        );
        assert_eq!(only_limit.memory_bytes, None);
        let best_effort = limits_for(&Container::default());
        assert_eq!(best_effort.cpu_request_millis, Some(0), "minimum shares");
        assert_eq!(best_effort.cpu_millis, None);
        let rounding = limits_for(&container(&[("memory", "100.5"), ("cpu", "1n")], &[]));
        assert_eq!(rounding.memory_bytes, Some(101), "Value() rounds up");
        assert_eq!(rounding.cpu_millis, Some(1), "MilliValue() rounds up");
        let zero = limits_for(&container(&[("memory", "0"), ("cpu", "0")], &[]));
        assert_eq!(
            (zero.memory_bytes, zero.cpu_millis),
            (None, None),
            "0 is unlimited"
        );
        let invalid = limits_for(&container(&[("memory", "lots")], &[]));
        assert_eq!(invalid.memory_bytes, None);
    }

    #[test]
    fn oom_kill_counters_are_read_from_keyed_files() {
        let v2 = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 1\n";
        assert_eq!(keyed_value(v2, "oom_kill"), Some(2));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n";
        assert_eq!(keyed_value(v1, "oom_kill"), Some(5));
        let before_4_13 = "oom_kill_disable 0\nunder_oom 0\n";
        assert_eq!(keyed_value(before_4_13, "oom_kill"), None);
    }

    #[test]
    fn pids_render_without_allocating() {
        let mut buf = [0u8; 12];
        assert_eq!(render_pid(0, &mut buf), b"0");
        assert_eq!(render_pid(4_194_304, &mut buf), b"4194304");
        assert_eq!(render_pid(i32::MAX, &mut buf), b"2147483647");
        assert_eq!(render_pid(i32::MIN, &mut buf), b"-2147483648");
    }

    /// A manager over some of this machine's real hierarchies, removed on drop; `None`
    /// (the test then passes with a note) without root or a matching hierarchy.
    struct RealRoot(CgroupManager);

    impl RealRoot {
        fn new(
            test: &str,
            pick: impl Fn(CgroupVersion, &[Hierarchy]) -> Option<Vec<Hierarchy>>,
            as_version: CgroupVersion,
        ) -> Option<RealRoot> {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipping {test}: needs root");
                return None;
            }
            let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            let (version, all) = hierarchies_from_mounts(&parse_mountinfo(&text))?;
            let Some(chosen) = pick(version, &all) else {
                eprintln!("skipping {test}: no suitable hierarchy here");
                return None;
            };
            let name = format!("nanokube-test-unit-{test}-{}", std::process::id());
            match CgroupManager::prepare(&name, as_version, chosen) {
                Ok(m) => Some(RealRoot(m)),
                Err(e) => {
                    eprintln!("skipping {test}: {e}");
                    None
                }
            }
        }
    }

    impl Drop for RealRoot {
        fn drop(&mut self) {
            if let Some(root) = self.0.open("") {
                let _ = root.remove();
            }
        }
    }

    /// Starts a shell that waits for a gate file before starting two background sleeps and
    /// an orphaned one, and adds it to `cgroup` before opening the gate.
    fn spawn_tree(cgroup: &Cgroup) -> std::process::Child {
        let gate = tempfile::tempdir().expect("tempdir");
        let gate_file = gate.path().join("go");
        let script = format!(
            "while [ ! -e {0} ]; do sleep 0.02; done; sleep 1000 & sleep 1000 & (sleep 1000 &); wait",
            gate_file.display()
        );
        let child = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        cgroup
            .add(i32::try_from(child.id()).expect("pid"))
            .expect("add");
        std::fs::write(&gate_file, "").expect("open gate");
        let deadline = Instant::now() + Duration::from_secs(10);
        while cgroup.pids().len() < 4 {
            assert!(
                Instant::now() < deadline,
                "tree started: {:?}",
                cgroup.pids()
            );
            std::thread::sleep(POLL);
        }
        child
    }

    fn assert_killed(mut child: std::process::Child) {
        use std::os::unix::process::ExitStatusExt;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                assert_eq!(status.signal(), Some(9));
                return;
            }
            assert!(Instant::now() < deadline, "shell still running");
            std::thread::sleep(POLL);
        }
    }

    #[test]
    fn without_cgroup_kill_a_tree_is_frozen_and_killed() {
        let Some(root) = RealRoot::new(
            "freezer",
            |version, all| {
                let v1: Vec<Hierarchy> = all
                    .iter()
                    .filter(|h| h.version == Version::V1)
                    .cloned()
                    .collect();
                (version == CgroupVersion::V1 && !v1.is_empty()).then_some(v1)
            },
            CgroupVersion::V1,
        ) else {
            return;
        };
        let cgroup = root.0.create("pod/c", &Limits::default()).expect("create");
        assert!(
            cgroup
                .dirs
                .iter()
                .all(|d| !d.dir.join("cgroup.kill").exists()),
            "only v1 hierarchies"
        );
        let child = spawn_tree(&cgroup);
        cgroup.kill_all();
        assert_eq!(cgroup.pids(), Vec::<i32>::new());
        assert_killed(child);
        let dirs = cgroup.dirs();
        cgroup.remove().expect("remove");
        assert!(dirs.iter().all(|d| !d.exists()));
    }

    #[test]
    fn v2_hierarchy_creates_kills_and_removes_nested_cgroups() {
        let Some(root) = RealRoot::new(
            "v2",
            |_, all| {
                all.iter()
                    .find(|h| h.version == Version::V2)
                    .map(|h| vec![h.clone()])
            },
            CgroupVersion::V2,
        ) else {
            return;
        };
        let cgroup = root
            .0
            .create(
                "pod/c",
                &Limits {
                    memory_bytes: Some(64 << 20),
                    cpu_millis: Some(100),
                    cpu_request_millis: Some(100),
                    pids_max: Some(100),
                },
            )
            .expect("create");
        let dir = cgroup.dirs().remove(0);
        if cgroup.dirs[0].has("memory") {
            assert_eq!(
                std::fs::read_to_string(dir.join("memory.max"))
                    .expect("memory.max")
                    .trim(),
                (64u64 << 20).to_string()
            );
        }
        let child = spawn_tree(&cgroup);
        cgroup.kill_all();
        assert_eq!(cgroup.pids(), Vec::<i32>::new());
        assert_killed(child);
        let pod = root.0.open("pod").expect("pod");
        pod.remove().expect("remove");
        assert!(!dir.exists() && !dir.parent().expect("pod dir").exists());
    }

    #[test]
    fn unescapes_mountinfo_octal() {
        assert_eq!(unescape_octal("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
    }
}
