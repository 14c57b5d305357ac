//! The container runtime's process side (what runc's `init` does for containerd): the node
//! agent starts `nanokube container-init` with an [`InitSpec`], and that process
//!
//! 1. joins the container's cgroups, then unshares the mount, pid, uts and ipc namespaces;
//! 2. forks the namespace's pid 1, which builds the container's root filesystem privately
//!    (an overlay of the image's root filesystem, or a view of the host's filesystem whose
//!    `/run`, `/proc` and `/dev` are the container's own), bind-mounts the volumes — including
//!    the service-account files at `/var/run/secrets/kubernetes.io/serviceaccount` — and
//!    `pivot_root`s into it;
//! 3. pid 1 then starts the container's command in its own session (with the pty as its
//!    controlling terminal when the container has `tty: true`), forwards termination
//!    signals to it, reaps orphans, and exits with the command's status, which the first
//!    process reports to the agent as its own exit code (`128 + n` for a death by signal n).
//!
//! Nothing is ever mounted in the host's mount namespace: every mount is made after
//! `unshare` with propagation set to private, so the host's `/var/run` is never touched and
//! everything disappears with the container.
//!
//! `nanokube container-enter` ([`EnterSpec`]) is `kubectl exec`'s half: it joins a running
//! container's namespaces, root and cgroups and runs one more command there.
//!
//! Both run in a freshly exec'd, single-threaded process, so the code below is plain
//! blocking system calls.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, execve, fork, pivot_root, setsid};
use serde::{Deserialize, Serialize};

/// The environment variable that carries the JSON spec to `container-init`/`container-enter`.
pub const SPEC_ENV: &str = "NANOKUBE_CONTAINER_SPEC";
/// The exit code of a container whose runtime setup failed (containerd's `StartError` code).
pub const SETUP_FAILED: i32 = 128;
/// Where the container's first process writes the host pid of the namespace's pid 1.
pub const INIT_PID_FILE: &str = "init.pid";
/// Where the agent keeps a container instance's [`InitSpec`] (for `kubectl exec`).
pub const INIT_SPEC_FILE: &str = "init.json";

/// What a container's root filesystem is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Root {
    /// The host's filesystem: top-level directories are bind-mounted, `/run` is fresh.
    Host,
    /// An image's unpacked root filesystem, under a per-instance writable overlay.
    Image { rootfs: PathBuf },
}

/// One bind mount into the container.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// Everything `container-init` needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitSpec {
    pub hostname: String,
    pub root: Root,
    /// A directory of this container instance on the host for the overlay's upper and work
    /// directories, the assembled root and the init pid file.
    pub scratch: PathBuf,
    pub mounts: Vec<BindMount>,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]` as in an image config; empty runs as root.
    pub user: String,
    /// `cgroup.procs` files to join before anything else.
    pub cgroup_procs: Vec<PathBuf>,
    /// Whether stdin is a terminal to make the command's controlling terminal.
    pub tty: bool,
}

/// Everything `container-enter` needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnterSpec {
    /// Host pid of a process inside the container (its pid 1).
    pub pid: i32,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub user: String,
    pub cgroup_procs: Vec<PathBuf>,
    pub tty: bool,
}

/// A setup step that failed, with what it was doing.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct SetupError {
    what: String,
    #[source]
    source: io::Error,
}

trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|source| SetupError {
            what: what(),
            source,
        })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError {
            what: what(),
            source: io::Error::from(e),
        })
    }
}

fn read_spec<T: for<'de> Deserialize<'de>>() -> Result<T, String> {
    let raw = std::env::var(SPEC_ENV).map_err(|_| format!("{SPEC_ENV} is not set"))?;
    serde_json::from_str(&raw).map_err(|e| format!("invalid {SPEC_ENV}: {e}"))
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    let _ = writeln!(io::stderr(), "nanokube: {msg}");
    SETUP_FAILED
}

/// Exit status as a shell reports it: the code, or `128 + n` for a death by signal n.
fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Waits for `child`, retrying on EINTR, and returns its shell-style exit code.
fn wait_for(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(s) => {
                if let Some(code) = exit_code(s) {
                    return code;
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return SETUP_FAILED,
        }
    }
}

/// Asks for SIGKILL when the parent process ends, and ends now if it already has.
fn die_with_parent() -> Result<(), SetupError> {
    let parent = nix::unistd::getppid();
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .ctx(|| "setting the parent-death signal".to_string())?;
    if nix::unistd::getppid() != parent {
        return Err(SetupError {
            what: "the agent exited while the container was starting".into(),
            source: io::Error::from(io::ErrorKind::BrokenPipe),
        });
    }
    Ok(())
}

fn join_cgroups(paths: &[PathBuf]) -> Result<(), SetupError> {
    let pid = std::process::id().to_string();
    for p in paths {
        fs::write(p, &pid).ctx(|| format!("joining cgroup {}", p.display()))?;
    }
    Ok(())
}

/// Signals the first process ignores: they are meant for the container's command, and pid 1
/// (which has handlers) receives them from the same process-group signal.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// `nanokube container-init`: returns the process's exit code.
pub fn init_main() -> i32 {
    let spec: InitSpec = match read_spec() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if spec.argv.is_empty() {
        return fail("no command to run");
    }
    // A container does not outlive the agent that runs it: when the agent's process ends
    // (even by SIGKILL), this process is killed, and with it the namespace's pid 1.
    if let Err(e) = die_with_parent() {
        return fail(e);
    }
    if let Err(e) = join_cgroups(&spec.cgroup_procs) {
        return fail(e);
    }
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if let Err(e) = unshare(flags) {
        return fail(format!("creating the container's namespaces: {e}"));
    }
    // SAFETY: this process is single-threaded (a fresh exec of the nanokube binary that has
    // not started any runtime), so the child may run arbitrary code after fork.
    match unsafe { fork() } {
        Err(e) => fail(format!("fork: {e}")),
        Ok(ForkResult::Child) => namespace_init(&spec),
        Ok(ForkResult::Parent { child }) => {
            let _ = fs::write(spec.scratch.join(INIT_PID_FILE), child.as_raw().to_string());
            for s in FORWARDED {
                // SAFETY: SIG_IGN installs no handler code.
                let _ = unsafe { signal::signal(s, SigHandler::SigIgn) };
            }
            wait_for(child)
        }
    }
}

/// The namespace's pid 1: sets up the filesystem, starts the command and supervises it.
fn namespace_init(spec: &InitSpec) -> i32 {
    if let Err(e) = die_with_parent() {
        return fail(e);
    }
    if let Err(e) = setup_filesystem(spec) {
        return fail(e);
    }
    if let Err(e) = nix::unistd::sethostname(&spec.hostname) {
        return fail(format!("setting the hostname: {e}"));
    }
    let cmd = match Command::prepare(&spec.argv, &spec.env, &spec.cwd, &spec.user, spec.tty) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    install_forwarding_handlers();
    // SAFETY: single-threaded, see `init_main`.
    match unsafe { fork() } {
        Err(e) => fail(format!("fork: {e}")),
        Ok(ForkResult::Child) => cmd.exec(),
        Ok(ForkResult::Parent { child }) => supervise(child),
    }
}

/// Signals received by pid 1 and not yet forwarded, as a bit set of signal numbers.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn record_signal(sig: nix::libc::c_int) {
    if (0..31).contains(&sig) {
        PENDING.fetch_or(1 << sig, Ordering::SeqCst);
    }
}

fn install_forwarding_handlers() {
    let action = SigAction::new(
        SigHandler::Handler(record_signal),
        SaFlags::empty(), // no SA_RESTART: waitpid returns EINTR so the signal is forwarded
        SigSet::empty(),
    );
    for s in FORWARDED {
        // SAFETY: the handler only does an atomic bit-or.
        let _ = unsafe { signal::sigaction(s, &action) };
    }
}

/// Reaps every child; forwards signals to the command; returns once the command exited.
fn supervise(command: Pid) -> i32 {
    loop {
        let pending = PENDING.swap(0, Ordering::SeqCst);
        for s in FORWARDED {
            if pending & (1 << (s as i32)) != 0 {
                let _ = signal::kill(command, s);
            }
        }
        match waitpid(Pid::from_raw(-1), None) {
            Ok(status) => {
                if status.pid() == Some(command)
                    && let Some(code) = exit_code(status)
                {
                    // Leaving pid 1 ends everything else in the namespace.
                    return code;
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return SETUP_FAILED,
        }
    }
}

/// A command ready to `execve`: everything that allocates is done before the fork.
struct Command {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    cwd: PathBuf,
    uid: Option<Uid>,
    gid: Option<Gid>,
    tty: bool,
}

impl Command {
    fn prepare(
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
        user: &str,
        tty: bool,
    ) -> Result<Command, String> {
        let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
        let path_var = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str())
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        let program = argv.first().ok_or("no command to run")?;
        let path = resolve_program(program, path_var)
            .ok_or_else(|| format!("exec: \"{program}\": executable file not found in $PATH"))?;
        let (uid, gid) = resolve_user(user)?;
        let cwd = if cwd.is_empty() { "/" } else { cwd };
        Ok(Command {
            path: cstr(&path.to_string_lossy())?,
            argv: argv.iter().map(|a| cstr(a)).collect::<Result<_, _>>()?,
            env: env
                .iter()
                .map(|(k, v)| cstr(&format!("{k}={v}")))
                .collect::<Result<_, _>>()?,
            cwd: PathBuf::from(cwd),
            uid,
            gid,
            tty,
        })
    }

    /// Runs in the forked child: never returns.
    fn exec(self) -> ! {
        let _ = setsid();
        if self.tty {
            // SAFETY: TIOCSCTTY on fd 0 only changes the session's controlling terminal.
            // Argument 1 takes the terminal over from the session that made it (the runtime
            // process that was handed it), as the container's command must own it.
            unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 1) };
        }
        let empty = SigSet::empty();
        let _ = empty.thread_set_mask();
        for s in FORWARDED {
            // SAFETY: restoring the default disposition.
            let _ = unsafe { signal::signal(s, SigHandler::SigDfl) };
        }
        // Runtimes create a missing working directory (as root, before dropping privileges).
        let _ = fs::create_dir_all(&self.cwd);
        if let Some(gid) = self.gid {
            let _ = nix::unistd::setgroups(&[gid]);
            if let Err(e) = nix::unistd::setgid(gid) {
                std::process::exit(fail(format!("setgid: {e}")));
            }
        }
        if let Some(uid) = self.uid
            && let Err(e) = nix::unistd::setuid(uid)
        {
            std::process::exit(fail(format!("setuid: {e}")));
        }
        if let Err(e) = nix::unistd::chdir(&self.cwd) {
            std::process::exit(fail(format!(
                "chdir to cwd (\"{}\") set in config.json failed: {e}",
                self.cwd.display()
            )));
        }
        let err = execve(&self.path, &self.argv, &self.env).unwrap_err();
        let code = if err == nix::errno::Errno::ENOENT {
            127
        } else {
            126
        };
        let _ = writeln!(
            io::stderr(),
            "nanokube: exec: \"{}\": {}",
            self.path.to_string_lossy(),
            io::Error::from(err)
        );
        std::process::exit(code)
    }
}

/// The program `argv[0]` names, looked up in `PATH` unless it contains a slash.
fn resolve_program(program: &str, path_var: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    path_var
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// `uid[:gid]` or `name[:group]`, looked up in the container's `/etc/passwd` and
/// `/etc/group`; empty means root.
fn resolve_user(user: &str) -> Result<(Option<Uid>, Option<Gid>), String> {
    if user.is_empty() {
        return Ok((None, None));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            lookup(&passwd, |f| f.get(2) == Some(&u)).and_then(|f| f.get(3)?.parse().ok()),
        ),
        Err(_) => {
            let f = lookup(&passwd, |f| f.first() == Some(&u)).ok_or_else(|| {
                format!("unable to find user {u}: no matching entries in passwd file")
            })?;
            let uid = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
            (uid, f.get(3).and_then(|s| s.parse().ok()))
        }
    };
    let gid = match g {
        None => primary_gid.unwrap_or(0),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = fs::read_to_string("/etc/group").unwrap_or_default();
                lookup(&groups, |f| f.first() == Some(&g))
                    .and_then(|f| f.get(2)?.parse().ok())
                    .ok_or_else(|| {
                        format!("unable to find group {g}: no matching entries in group file")
                    })?
            }
        },
    };
    Ok((Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))))
}

fn lookup<'a>(file: &'a str, pred: impl Fn(&[&'a str]) -> bool) -> Option<Vec<&'a str>> {
    file.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| pred(f))
}

fn mount_flags(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SetupError> {
    mount(source, target, fstype, flags, data).ctx(|| {
        format!(
            "mounting {} on {}",
            source.map_or_else(
                || fstype.unwrap_or("?").to_string(),
                |s| s.display().to_string()
            ),
            target.display()
        )
    })
}

fn bind(source: &Path, target: &Path, read_only: bool) -> Result<(), SetupError> {
    mount_flags(
        Some(source),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if read_only {
        mount_flags(
            None,
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

/// Host top-level entries a host-filesystem container does not share.
const HOST_OWN: &[&str] = &["proc", "run", "dev", "sys", "lost+found"];

fn setup_filesystem(spec: &InitSpec) -> Result<(), SetupError> {
    // Nothing below may propagate back to the host.
    mount_flags(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    let root = spec.scratch.join("root");
    fs::create_dir_all(&root).ctx(|| format!("creating {}", root.display()))?;
    let mut view = RootView {
        root: root.clone(),
        host: spec.root == Root::Host,
        overlaid: Vec::new(),
    };
    match &spec.root {
        Root::Image { rootfs } => {
            let upper = spec.scratch.join("upper");
            let work = spec.scratch.join("work");
            for d in [&upper, &work] {
                fs::create_dir_all(d).ctx(|| format!("creating {}", d.display()))?;
            }
            let opts = format!(
                "lowerdir={},upperdir={},workdir={}",
                rootfs.display(),
                upper.display(),
                work.display()
            );
            mount_flags(
                Some(Path::new("overlay")),
                &root,
                Some("overlay"),
                MsFlags::empty(),
                Some(&opts),
            )?;
        }
        Root::Host => {
            mount_flags(
                Some(Path::new("tmpfs")),
                &root,
                Some("tmpfs"),
                MsFlags::MS_NOSUID,
                Some("mode=755"),
            )?;
            share_host_root(&root)?;
            let run = root.join("run");
            fs::create_dir_all(&run).ctx(|| "creating /run".to_string())?;
            mount_flags(
                Some(Path::new("tmpfs")),
                &run,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=755"),
            )?;
        }
    }
    setup_dev(&root, view.host)?;
    let sys = root.join("sys");
    fs::create_dir_all(&sys).ctx(|| "creating /sys".to_string())?;
    bind(Path::new("/sys"), &sys, false)?;
    let proc_dir = root.join("proc");
    fs::create_dir_all(&proc_dir).ctx(|| "creating /proc".to_string())?;
    mount_flags(
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    for m in &spec.mounts {
        let is_dir = fs::metadata(&m.source)
            .ctx(|| format!("volume source {}", m.source.display()))?
            .is_dir();
        let target = view.ensure_target(&m.target, is_dir, &spec.scratch)?;
        bind(&m.source, &target, m.read_only)?;
    }
    enter_root(&root)
}

/// The container's root being assembled, and which host directories were overlaid so that
/// mount points could be created in them without writing to the host.
struct RootView {
    root: PathBuf,
    host: bool,
    overlaid: Vec<String>,
}

impl RootView {
    /// The host path (under the new root) for container path `target`, created as a
    /// directory or an empty file. Symlinks on the way are followed as the container will
    /// see them (absolute ones relative to the new root), never out of it.
    fn ensure_target(
        &mut self,
        target: &str,
        is_dir: bool,
        scratch: &Path,
    ) -> Result<PathBuf, SetupError> {
        let invalid = |why: &str| SetupError {
            what: format!("mount target {target:?}: {why}"),
            source: io::Error::from(io::ErrorKind::InvalidInput),
        };
        if !target.starts_with('/') || target.split('/').any(|c| c == "..") {
            return Err(invalid("must be an absolute path without \"..\""));
        }
        let mut queue: std::collections::VecDeque<String> = target
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(String::from)
            .collect();
        if queue.is_empty() {
            return Err(invalid("cannot mount over the root"));
        }
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = queue.pop_front() {
            if c == ".." {
                resolved.pop();
                continue;
            }
            let here = resolved.iter().fold(self.root.clone(), |p, c| p.join(c));
            let candidate = here.join(&c);
            match candidate.symlink_metadata() {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > 40 {
                        return Err(invalid("too many levels of symbolic links"));
                    }
                    let link = fs::read_link(&candidate)
                        .ctx(|| format!("reading link {}", candidate.display()))?;
                    if link.is_absolute() {
                        resolved.clear();
                    }
                    let mut parts: Vec<String> = link
                        .components()
                        .filter_map(|p| match p {
                            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                            Component::ParentDir => Some("..".to_string()),
                            _ => None,
                        })
                        .collect();
                    parts.extend(queue.drain(..));
                    queue = parts.into();
                }
                Ok(_) => resolved.push(c),
                Err(_) => {
                    if let Some(top) = resolved.first().cloned() {
                        self.make_private(&top, scratch)?;
                    }
                    let last = queue.is_empty();
                    if last && !is_dir {
                        fs::OpenOptions::new()
                            .create(true)
                            .truncate(false)
                            .write(true)
                            .mode(0o644)
                            .open(&candidate)
                            .ctx(|| format!("creating mount point {target}"))?;
                    } else {
                        fs::create_dir(&candidate)
                            .ctx(|| format!("creating mount point {target}"))?;
                    }
                    resolved.push(c);
                }
            }
        }
        Ok(resolved.iter().fold(self.root.clone(), |p, c| p.join(c)))
    }

    /// Creating a mount point inside `top` would write into a directory shared with the
    /// host: give the container a private writable layer over it first.
    fn make_private(&mut self, top: &str, scratch: &Path) -> Result<(), SetupError> {
        if !self.host || HOST_OWN.contains(&top) || self.overlaid.iter().any(|t| t == top) {
            return Ok(());
        }
        let host_dir = Path::new("/").join(top);
        if !host_dir.is_dir() {
            return Ok(());
        }
        // The layers live on a tmpfs of this mount namespace: never inside the directory
        // they cover (overlayfs refuses overlapping layers), gone with the container.
        let layers = scratch.join("layers");
        if self.overlaid.is_empty() {
            fs::create_dir_all(&layers).ctx(|| format!("creating {}", layers.display()))?;
            mount_flags(
                Some(Path::new("tmpfs")),
                &layers,
                Some("tmpfs"),
                MsFlags::MS_NOSUID,
                Some("mode=700"),
            )?;
        }
        let layer = layers.join(top);
        let (upper, work) = (layer.join("upper"), layer.join("work"));
        for d in [&upper, &work] {
            fs::create_dir_all(d).ctx(|| format!("creating {}", d.display()))?;
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            host_dir.display(),
            upper.display(),
            work.display()
        );
        mount_flags(
            Some(Path::new("overlay")),
            &self.root.join(top),
            Some("overlay"),
            MsFlags::empty(),
            Some(&opts),
        )?;
        self.overlaid.push(top.to_string());
        Ok(())
    }
}

/// Shares the host's top-level directories (except those the container has its own of)
/// with a host-filesystem container, recursively and read-write.
fn share_host_root(root: &Path) -> Result<(), SetupError> {
    for entry in fs::read_dir("/").ctx(|| "listing /".to_string())? {
        let entry = entry.ctx(|| "listing /".to_string())?;
        let name = entry.file_name();
        let Some(name_str) = name.to_str() else {
            continue;
        };
        if HOST_OWN.contains(&name_str) {
            continue;
        }
        let host = Path::new("/").join(&name);
        let inside = root.join(&name);
        let Ok(meta) = host.symlink_metadata() else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(dest) = fs::read_link(&host) {
                let _ = symlink(dest, &inside);
            }
        } else if meta.is_dir() {
            fs::create_dir_all(&inside).ctx(|| format!("creating {}", inside.display()))?;
            bind(&host, &inside, false)?;
        } else if meta.is_file() {
            fs::write(&inside, b"").ctx(|| format!("creating {}", inside.display()))?;
            bind(&host, &inside, false)?;
        }
    }
    Ok(())
}

/// `/dev`: the host's for host-filesystem containers; for image containers a tmpfs with the
/// standard device nodes bound from the host, the host's `/dev/pts` (so a terminal handed in
/// by the agent has a name), a private `/dev/shm` and the usual symlinks.
fn setup_dev(root: &Path, host: bool) -> Result<(), SetupError> {
    let dev = root.join("dev");
    fs::create_dir_all(&dev).ctx(|| "creating /dev".to_string())?;
    if host {
        return bind(Path::new("/dev"), &dev, false);
    }
    mount_flags(
        Some(Path::new("tmpfs")),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755"),
    )?;
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        let host_node = Path::new("/dev").join(node);
        if host_node.exists() {
            let inside = dev.join(node);
            fs::write(&inside, b"").ctx(|| format!("creating /dev/{node}"))?;
            bind(&host_node, &inside, false)?;
        }
    }
    let pts = dev.join("pts");
    fs::create_dir_all(&pts).ctx(|| "creating /dev/pts".to_string())?;
    bind(Path::new("/dev/pts"), &pts, false)?;
    let shm = dev.join("shm");
    fs::create_dir_all(&shm).ctx(|| "creating /dev/shm".to_string())?;
    mount_flags(
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    for (name, dest) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = symlink(dest, dev.join(name));
    }
    Ok(())
}

/// `pivot_root` into `root` and drop the old root.
fn enter_root(root: &Path) -> Result<(), SetupError> {
    let old = root.join(".nanokube-old-root");
    fs::create_dir_all(&old).ctx(|| "creating the old-root mount point".to_string())?;
    pivot_root(root, &old).ctx(|| format!("pivot_root into {}", root.display()))?;
    nix::unistd::chdir("/").ctx(|| "chdir /".to_string())?;
    umount2("/.nanokube-old-root", MntFlags::MNT_DETACH)
        .ctx(|| "detaching the old root".to_string())?;
    let _ = fs::remove_dir("/.nanokube-old-root");
    Ok(())
}

/// `nanokube container-enter`: returns the exit code of the command run in the container.
pub fn enter_main() -> i32 {
    let spec: EnterSpec = match read_spec() {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match enter(&spec) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn enter(spec: &EnterSpec) -> Result<i32, SetupError> {
    die_with_parent()?;
    join_cgroups(&spec.cgroup_procs)?;
    let proc_dir = PathBuf::from(format!("/proc/{}", spec.pid));
    let open = |p: PathBuf| fs::File::open(&p).ctx(|| format!("opening {}", p.display()));
    let namespaces = [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut fds = Vec::new();
    for (name, flag) in namespaces {
        fds.push((name, flag, open(proc_dir.join("ns").join(name))?));
    }
    let root = open(proc_dir.join("root"))?;
    for (name, flag, fd) in &fds {
        setns(fd.as_fd(), *flag).ctx(|| format!("joining the container's {name} namespace"))?;
    }
    nix::unistd::fchdir(root.as_fd()).ctx(|| "entering the container's root".to_string())?;
    nix::unistd::chroot(".").ctx(|| "entering the container's root".to_string())?;
    let cmd =
        Command::prepare(&spec.argv, &spec.env, &spec.cwd, &spec.user, spec.tty).map_err(|e| {
            SetupError {
                what: e,
                source: io::Error::from(io::ErrorKind::NotFound),
            }
        })?;
    // SAFETY: single-threaded, see `init_main`.
    match unsafe { fork() } {
        Err(e) => Err(SetupError {
            what: "fork".into(),
            source: io::Error::from(e),
        }),
        Ok(ForkResult::Child) => cmd.exec(),
        Ok(ForkResult::Parent { child }) => {
            for s in FORWARDED {
                // SAFETY: SIG_IGN installs no handler code.
                let _ = unsafe { signal::signal(s, SigHandler::SigIgn) };
            }
            Ok(wait_for(child))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        let pid = Pid::from_raw(7);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(
            exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            Some(143)
        );
    }

    #[test]
    fn programs_are_found_on_path_unless_they_have_a_slash() {
        assert_eq!(
            resolve_program("sh", "/nonexistent:/bin"),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(resolve_program("./x", "/bin"), Some(PathBuf::from("./x")));
        assert_eq!(resolve_program("definitely-not-a-program", "/bin"), None);
    }

    #[test]
    fn numeric_users_need_no_passwd_entry() {
        let (u, g) = resolve_user("1234:5678").expect("numeric");
        assert_eq!(u, Some(Uid::from_raw(1234)));
        assert_eq!(g, Some(Gid::from_raw(5678)));
        assert_eq!(resolve_user("").expect("root"), (None, None));
        assert!(
            resolve_user("no-such-user-xyz")
                .expect_err("unknown")
                .contains("unable to find user no-such-user-xyz")
        );
    }
}
