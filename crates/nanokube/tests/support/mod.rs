//! The end-to-end harness: starts the real `nanokube server` binary on a free loopback port
//! with a temporary data directory, and drives it with the real kubectl, curl and the Python
//! `kubernetes` client. The server is stopped (SIGTERM, then SIGKILL) when the cluster value
//! is dropped, including when a test panics.

#![allow(dead_code)]

pub mod busybox;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct TestCluster {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
}

/// The output of a command, with helpers for assertions.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.status, 0,
            "command failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the command failed.
    #[track_caller]
    pub fn fails(self) -> Run {
        assert_ne!(
            self.status, 0,
            "command unexpectedly succeeded\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_nanokube")
}

impl TestCluster {
    /// Starts a server and waits until it has written its kubeconfig and serves `/readyz`.
    pub fn start() -> TestCluster {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let mut child = Command::new(binary())
            .args(["server", "--data-dir"])
            .arg(&data)
            .args(["--secure-port", "0", "--bind-address", "127.0.0.1"])
            .args(extra)
            .env("NANOKUBE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nanokube server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut cluster = TestCluster {
            child: Some(child),
            kubeconfig: data.join("kubeconfig"),
            url: String::new(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) =
                        line.strip_prefix("nanokube is serving the Kubernetes API at ")
                    {
                        cluster.url = url.trim().to_string();
                    }
                    if line.trim_start().starts_with("export KUBECONFIG=") {
                        break;
                    }
                }
                Err(_) => panic!("nanokube server did not become ready within 60s"),
            }
        }
        assert!(cluster.kubeconfig.exists(), "kubeconfig written");
        cluster
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pki(&self, file: &str) -> PathBuf {
        self.data_dir().join("pki").join(file)
    }

    fn kubectl_command(&self) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"));
        c
    }

    /// Runs kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        Run::from(
            self.kubectl_command()
                .args(args)
                .output()
                .expect("run kubectl"),
        )
    }

    /// Runs kubectl as the holder of a bearer `token` (a kubeconfig with the cluster CA and
    /// only that token).
    pub fn kubectl_with_token(&self, token: &str, args: &[&str]) -> Run {
        let ca = self.pki("ca.crt");
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.dir.path().join(format!("token-{n}.kubeconfig"));
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: {ca}\n    server: {url}\n  name: c\ncontexts:\n- context:\n    cluster: c\n    user: u\n  name: c\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {token}\n",
            ca = ca.display(),
            url = self.url,
        );
        std::fs::write(&path, config).expect("write kubeconfig");
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &path)
            .env("HOME", self.dir.path())
            .arg("--cache-dir")
            .arg(self.dir.path().join("kubectl-cache"));
        Run::from(c.args(args).output().expect("run kubectl"))
    }

    /// Runs kubectl with `stdin` piped in.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .kubectl_command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("wait kubectl"))
    }

    /// Runs kubectl with extra environment variables.
    pub fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut c = self.kubectl_command();
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(c.args(args).output().expect("run kubectl"))
    }

    /// Starts kubectl in the background (for `get -w`); stdout is piped.
    pub fn kubectl_spawn(&self, args: &[&str]) -> Child {
        self.kubectl_command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kubectl")
    }

    /// curl with the admin client certificate, verifying the server against the cluster CA.
    pub fn curl_admin(&self, args: &[&str]) -> Run {
        let mut c = Command::new("curl");
        c.args(["-sS", "--cacert"])
            .arg(self.pki("ca.crt"))
            .arg("--cert")
            .arg(self.pki("admin.crt"))
            .arg("--key")
            .arg(self.pki("admin.key"));
        Run::from(c.args(args).output().expect("run curl"))
    }

    /// curl without credentials.
    pub fn curl_anonymous(&self, args: &[&str]) -> Run {
        let mut c = Command::new("curl");
        c.args(["-sS", "--cacert"]).arg(self.pki("ca.crt"));
        Run::from(c.args(args).output().expect("run curl"))
    }

    /// Runs a Python script with the official `kubernetes` client configured from the admin
    /// kubeconfig (`KUBECONFIG` is set; scripts call `config.load_kube_config()`).
    pub fn python(&self, script: &str) -> Run {
        let path = self
            .dir
            .path()
            .join(format!("script-{}.py", std::process::id()));
        std::fs::write(&path, script).expect("write script");
        Run::from(
            Command::new("python3")
                .arg(&path)
                .env("KUBECONFIG", &self.kubeconfig)
                .env("HOME", self.dir.path())
                .output()
                .expect("run python3"),
        )
    }

    /// Writes a manifest into the temp dir and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path.to_string_lossy().into_owned()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stops the server with SIGTERM and returns its exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads lines from a child's stdout until `pred` holds for the accumulated text or the
/// timeout passes; returns the text.
pub fn read_until(child: &mut Child, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    while !pred(&text) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                text.push_str(&line);
                text.push('\n');
            }
            Err(_) => break,
        }
    }
    text
}

/// Column headers of kubectl's table output (first line, split on whitespace runs).
pub fn headers(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Polls `f` until it holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

/// The Job of the training lab (`004_…txt`), as written.
pub const SLEEPY_JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: sleepy
spec:
  template:
    spec:
      containers:
      - name: resting
        image: busybox
        command: [\"/bin/sleep\"]
        args: [\"3\"]
      restartPolicy: Never
";

/// The lab's CronJob (`004_…txt`), as written: batch/v1beta1, every two minutes.
pub const SLEEPY_CRONJOB: &str = "apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: sleepy
spec:
  schedule: \"*/2 * * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: resting
            image: busybox
            command: [\"/bin/sleep\"]
            args: [\"3\"]
          restartPolicy: Never
";
