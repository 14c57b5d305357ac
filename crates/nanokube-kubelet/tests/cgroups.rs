//! Container cgroups on the real kernel: limits, OOM kills, killing process trees, cleanup.
//!
//! These need root and a mounted cgroup hierarchy; without them each test prints why it is
//! skipped and passes. Every test uses its own root (`nanokube-test-<test>-<pid>`), removed
//! on drop even when the test fails.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nanokube_kubelet::cgroups::{Cgroup, CgroupManager, CgroupVersion, Limits};

/// A cgroup root of one test; removed (processes killed) on drop.
struct TestRoot {
    name: String,
    manager: CgroupManager,
}

impl TestRoot {
    fn new(test: &str) -> Option<TestRoot> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping {test}: cgroups need root");
            return None;
        }
        let name = format!("nanokube-test-{test}-{}", std::process::id());
        let Some(manager) = CgroupManager::detect(&name) else {
            eprintln!("skipping {test}: cgroups are not usable here");
            return None;
        };
        Some(TestRoot { name, manager })
    }

    /// Directories named after this root anywhere under /sys/fs/cgroup (v1 hierarchies are
    /// one level down, v2 is the mount itself).
    fn leftovers(&self) -> Vec<PathBuf> {
        let base = Path::new("/sys/fs/cgroup");
        let mut candidates = vec![base.join(&self.name)];
        for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
            candidates.push(entry.path().join(&self.name));
        }
        candidates.into_iter().filter(|p| p.exists()).collect()
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        if let Some(root) = self.manager.open("")
            && let Err(e) = root.remove()
        {
            eprintln!("cleaning up {}: {e}", self.name);
        }
    }
}

/// Starts `script` under `sh` inside `cgroup`, joined between fork and exec.
#[allow(unsafe_code)]
fn spawn_in(cgroup: &Cgroup, script: &str) -> Child {
    let joiner = cgroup.clone();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only calls getpid/open/write/close on pre-rendered paths; it does
    // not allocate or take locks, so it is sound between fork and exec.
    unsafe {
        cmd.pre_exec(move || joiner.join_current_process());
    }
    cmd.spawn().expect("spawn sh")
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

/// The cgroup's directory of the hierarchy that has `file`.
fn dir_with(cgroup: &Cgroup, file: &str) -> Option<PathBuf> {
    cgroup.dirs().into_iter().find(|d| d.join(file).exists())
}

#[test]
fn memory_limit_oom_kills_the_container_and_is_counted() {
    let Some(root) = TestRoot::new("oom") else {
        return;
    };
    if !root.manager.controllers().contains("memory") {
        eprintln!("skipping: no memory controller");
        return;
    }
    let limits = Limits {
        memory_bytes: Some(32 << 20),
        ..Limits::default()
    };
    let cgroup = root.manager.create("pod-oom/c", &limits).expect("create");
    assert_eq!(cgroup.oom_kill_count(), 0);

    // `tail` looks for the last lines of an endless stream without newlines: it buffers
    // everything it reads.
    let mut child = spawn_in(&cgroup, "exec tail /dev/zero");
    let status = wait_timeout(&mut child, Duration::from_secs(60)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("tail was not OOM-killed within 60s");
    });
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    assert!(
        cgroup.oom_kill_count() >= 1,
        "the kill was counted as an OOM kill"
    );
}

#[test]
fn limits_are_written_to_the_controllers() {
    let Some(root) = TestRoot::new("limits") else {
        return;
    };
    let limits = Limits {
        memory_bytes: Some(64 << 20),
        cpu_millis: Some(500),
        cpu_request_millis: Some(250),
        pids_max: Some(42),
    };
    let cgroup = root
        .manager
        .create("pod-limits/c", &limits)
        .expect("create");
    match root.manager.version() {
        CgroupVersion::V1 => {
            if let Some(d) = dir_with(&cgroup, "memory.limit_in_bytes") {
                assert_eq!(read(&d, "memory.limit_in_bytes"), (64u64 << 20).to_string());
                if d.join("memory.memsw.limit_in_bytes").exists() {
                    assert_eq!(
                        read(&d, "memory.memsw.limit_in_bytes"),
                        (64u64 << 20).to_string()
                    );
                }
            }
            if let Some(d) = dir_with(&cgroup, "cpu.shares") {
                assert_eq!(read(&d, "cpu.shares"), "256");
                if d.join("cpu.cfs_quota_us").exists() {
                    assert_eq!(read(&d, "cpu.cfs_quota_us"), "50000");
                    assert_eq!(read(&d, "cpu.cfs_period_us"), "100000");
                }
            }
        }
        CgroupVersion::V2 => {
            if let Some(d) = dir_with(&cgroup, "memory.max") {
                assert_eq!(read(&d, "memory.max"), (64u64 << 20).to_string());
            }
            if let Some(d) = dir_with(&cgroup, "cpu.weight") {
                assert_eq!(read(&d, "cpu.weight"), "10");
                assert_eq!(read(&d, "cpu.max"), "50000 100000");
            }
        }
    }
    if let Some(d) = dir_with(&cgroup, "pids.max") {
        assert_eq!(read(&d, "pids.max"), "42");
    }

    // Reusing the cgroup resets what the new limits leave unset.
    let cgroup = root
        .manager
        .create("pod-limits/c", &Limits::default())
        .expect("reuse");
    if let Some(d) = dir_with(&cgroup, "pids.max") {
        assert_eq!(read(&d, "pids.max"), "max");
    }
    if let Some(d) = dir_with(&cgroup, "cpu.cfs_quota_us") {
        assert_eq!(read(&d, "cpu.cfs_quota_us"), "-1");
    }
}

#[test]
fn joined_process_is_in_the_cgroup_of_every_hierarchy() {
    let Some(root) = TestRoot::new("join") else {
        return;
    };
    let cgroup = root
        .manager
        .create("pod-join/c", &Limits::default())
        .expect("create");
    let mut child = spawn_in(&cgroup, "exec sleep 30");
    let pid = i32::try_from(child.id()).expect("pid");
    assert_eq!(cgroup.pids(), vec![pid]);
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let want = format!("/{}/pod-join/c", root.name);
    for procs in cgroup.procs_paths() {
        let listed = std::fs::read_to_string(&procs).expect("procs");
        assert!(
            listed.lines().any(|l| l == pid.to_string()),
            "{pid} in {}",
            procs.display()
        );
    }
    assert!(
        membership.lines().any(|l| l.ends_with(&want)),
        "{want} in {membership}"
    );
    cgroup.kill_all();
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("exited");
    assert_eq!(status.signal(), Some(9));
}

#[test]
fn kill_all_kills_a_process_tree_including_daemonised_children() {
    let Some(root) = TestRoot::new("killall") else {
        return;
    };
    let cgroup = root
        .manager
        .create("pod-tree/c", &Limits::default())
        .expect("create");
    // Two children in the background and one orphaned grandchild that escaped the shell.
    let mut child = spawn_in(&cgroup, "sleep 1000 & sleep 1000 & (sleep 1000 &) ; wait");
    wait_until("four processes", Duration::from_secs(10), || {
        cgroup.pids().len() >= 4
    });
    let before = cgroup.pids();

    cgroup.kill_all();

    assert_eq!(cgroup.pids(), Vec::<i32>::new(), "cgroup is empty");
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("shell exited");
    assert_eq!(status.signal(), Some(9));
    for pid in before {
        let alive = Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "{pid} still runs");
    }
}

#[test]
fn remove_deletes_the_cgroup_tree_in_every_hierarchy() {
    let Some(root) = TestRoot::new("remove") else {
        return;
    };
    let a = root
        .manager
        .create("pod-rm/a", &Limits::default())
        .expect("a");
    let b = root
        .manager
        .create("pod-rm/b", &Limits::default())
        .expect("b");
    let mut child = spawn_in(&a, "exec sleep 1000");
    wait_until("sleep joined", Duration::from_secs(10), || {
        !a.pids().is_empty()
    });
    let dirs: Vec<PathBuf> = a.dirs().into_iter().chain(b.dirs()).collect();
    assert_eq!(root.manager.children("pod-rm"), vec!["a", "b"]);

    let pod = root.manager.open("pod-rm").expect("pod cgroup exists");
    pod.remove()
        .expect("remove pod cgroup with a running process");

    for d in &dirs {
        assert!(!d.exists(), "{} removed", d.display());
    }
    assert!(root.manager.open("pod-rm").is_none());
    assert_eq!(root.manager.children(""), Vec::<String>::new());
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("sleep killed");
    assert_eq!(status.signal(), Some(9));

    root.manager
        .open("")
        .expect("root")
        .remove()
        .expect("remove root");
    assert_eq!(root.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn open_finds_a_cgroup_after_an_agent_restart() {
    let Some(root) = TestRoot::new("reopen") else {
        return;
    };
    let created = root
        .manager
        .create("pod-re/c", &Limits::default())
        .expect("create");
    let restarted = CgroupManager::detect(&root.name).expect("detect again");
    let opened = restarted.open("pod-re/c").expect("exists");
    assert_eq!(opened.procs_paths(), created.procs_paths());
    assert_eq!(opened.path(), "pod-re/c");
    assert!(restarted.open("pod-re/missing").is_none());
    assert!(restarted.open("../escape").is_none());
    assert!(root.manager.create("/abs", &Limits::default()).is_err());
    assert!(root.manager.create("", &Limits::default()).is_err());
}
