//! `kubectl exec` and the Python client's `stream()` against a running pod: both output
//! streams, stdin and its end, a terminal, exit codes, and the errors a real cluster gives for
//! a wrong container or a missing permission.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Run, TestCluster, eventually};

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [\"sh\", \"-c\", \"sleep 3600\"]
";

/// A cluster with the pod `web` running. The pod is deleted when the value is dropped (even
/// when a test fails): its container would otherwise outlive the server.
struct WithPod(TestCluster);

impl std::ops::Deref for WithPod {
    type Target = TestCluster;
    fn deref(&self) -> &TestCluster {
        &self.0
    }
}

impl Drop for WithPod {
    fn drop(&mut self) {
        let _ = self
            .0
            .kubectl(&["delete", "pod", "web", "--grace-period=1", "--timeout=30s"]);
    }
}

fn cluster_with_running_pod(extra: &[&str]) -> WithPod {
    let c = WithPod(TestCluster::start_with(extra));
    let f = c.file("web.yaml", POD);
    c.kubectl(&["create", "-f", &f]).ok();
    let phase = || {
        c.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"])
            .stdout
    };
    assert!(
        eventually(Duration::from_secs(30), || phase() == "Running"),
        "phase {}",
        phase()
    );
    c
}

/// Runs a command with a deadline, killing it if it hangs. Its stdin stays open and empty
/// (`script` turns the end of its input into a control character for the terminal).
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let _stdin = child.stdin.take();
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command timed out after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        status,
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    }
}

#[test]
fn exec_prints_both_streams_and_exits_with_the_commands_code() {
    let c = cluster_with_running_pod(&[]);
    let r = c.kubectl(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert_eq!(r.stdout, "out\n");
    assert!(r.stderr.contains("err\n"), "{}", r.stderr);
    assert!(
        r.stderr.contains("command terminated with exit code 3"),
        "{}",
        r.stderr
    );
    let ok = c
        .kubectl(&["exec", "web", "-c", "main", "--", "echo", "fine"])
        .ok();
    assert_eq!(ok.stdout, "fine\n");
}

#[test]
fn exec_with_piped_stdin_echoes_it_and_ends_when_stdin_does() {
    let c = cluster_with_running_pod(&[]);
    let input: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    let r = c
        .kubectl_stdin(&["exec", "-i", "web", "--", "cat"], &input)
        .ok();
    assert_eq!(r.stdout, input, "{}", r.stderr);
}

#[test]
fn exec_with_a_tty_runs_on_a_terminal_of_the_clients_size() {
    let c = cluster_with_running_pod(&[]);
    // `script` gives kubectl a terminal; without a terminal of its own to copy, that one
    // starts with no size and no control characters, so set them first.
    let kubectl = format!(
        "stty sane cols 91 rows 37; kubectl --kubeconfig {} exec -it web -- sh -c 'tty; stty size; echo to-stderr >&2'",
        c.kubeconfig.display()
    );
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &kubectl, "/dev/null"])
        .env("HOME", c.dir.path());
    let r = run_with_timeout(cmd, Duration::from_secs(60));
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("/dev/pts/"), "{:?}", r.stdout);
    assert!(
        r.stdout.lines().any(|l| l.trim() == "37 91"),
        "the remote terminal has the client's size: {:?}",
        r.stdout
    );
    assert!(
        r.stdout.contains("to-stderr"),
        "stderr is merged into the terminal: {:?}",
        r.stdout
    );
}

#[test]
fn exec_into_a_missing_container_is_a_bad_request() {
    let c = cluster_with_running_pod(&[]);
    let r = c
        .kubectl(&["exec", "web", "-c", "nope", "--", "true"])
        .fails();
    assert!(
        r.stderr
            .contains("Error from server (BadRequest): container nope is not valid for pod web"),
        "{}",
        r.stderr
    );
    let attach = c.kubectl(&["attach", "web", "-c", "nope"]).fails();
    assert!(
        attach
            .stderr
            .contains("container nope not found in pod web"),
        "{}",
        attach.stderr
    );
    let curl = c.curl_admin(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!(
            "{}/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true",
            c.url
        ),
    ]);
    assert_eq!(curl.stdout, "400", "a plain GET is not an upgrade");
}

#[test]
fn exec_needs_get_and_create_on_pods_exec() {
    let tokens = "alice-token,alice,1001\nbob-token,bob,1002\ncarol-token,carol,1003\n";
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, tokens).expect("write");
    let c = cluster_with_running_pod(&["--token-auth-file", file.to_str().expect("utf-8")]);
    for (role, verbs) in [
        ("pod-reader", "get"),
        ("exec-create", "create"),
        ("exec-all", "get,create"),
    ] {
        let resource = if role == "pod-reader" {
            "--resource=pods"
        } else {
            "--resource=pods/exec"
        };
        c.kubectl(&[
            "create",
            "role",
            role,
            &format!("--verb={verb}", verb = verbs),
            resource,
        ])
        .ok();
    }
    for (binding, role, user) in [
        ("alice-read", "pod-reader", "alice"),
        ("bob-read", "pod-reader", "bob"),
        ("carol-read", "pod-reader", "carol"),
        ("bob-exec", "exec-create", "bob"),
        ("carol-exec", "exec-all", "carol"),
    ] {
        c.kubectl(&[
            "create",
            "rolebinding",
            binding,
            &format!("--role={role}"),
            &format!("--user={user}"),
        ])
        .ok();
    }
    let exec = ["exec", "web", "--", "echo", "hi"];
    // Neither verb: the WebSocket GET is refused, and so is kubectl's SPDY fallback (create).
    let alice = c.kubectl_with_token("alice-token", &exec).fails();
    assert!(
        alice.stderr.contains("Error from server (Forbidden): pods \"web\" is forbidden: User \"alice\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"default\""),
        "{}",
        alice.stderr
    );
    // `create` alone: the WebSocket GET needs `get`, and the error says so.
    let bob = c.kubectl_with_token("bob-token", &exec).fails();
    assert!(
        bob.stderr.contains("User \"bob\" cannot get resource \"pods/exec\" in API group \"\" in the namespace \"default\""),
        "{}",
        bob.stderr
    );
    let carol = c.kubectl_with_token("carol-token", &exec).ok();
    assert_eq!(carol.stdout, "hi\n");
}

#[test]
fn the_python_client_streams_exec_over_v5_and_v4_with_return_codes() {
    let c = cluster_with_running_pod(&[]);
    let script = r#"
from kubernetes import client, config
from kubernetes.stream import stream

config.load_kube_config()
api = client.CoreV1Api()
out = stream(api.connect_get_namespaced_pod_exec, "web", "default",
             command=["sh", "-c", "echo py-out; echo py-err >&2"],
             stderr=True, stdin=False, stdout=True, tty=False)
print("preloaded", sorted(out.splitlines()))

for offered in ["v5.channel.k8s.io,v4.channel.k8s.io", "v4.channel.k8s.io"]:
    c = client.ApiClient()
    c.set_default_header("sec-websocket-protocol", offered)
    a = client.CoreV1Api(c)
    v5 = offered.startswith("v5")
    resp = stream(a.connect_get_namespaced_pod_exec, "web", "default",
                  command=["sh", "-c", "cat; echo done; exit 7" if v5 else "echo v4; exit 9"],
                  stderr=True, stdin=v5, stdout=True, tty=False, _preload_content=False)
    if v5:
        resp.write_stdin("from-python\n")
        resp.close_channel(0)
    resp.run_forever(timeout=30)
    print(resp.subprotocol, repr(resp.read_stdout()), resp.returncode)
"#;
    let r = c.python(script).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "preloaded ['py-err', 'py-out']",
            "v5.channel.k8s.io 'from-python\\ndone\\n' 7",
            "v4.channel.k8s.io 'v4\\n' 9",
        ],
        "{}",
        r.stderr
    );
}
