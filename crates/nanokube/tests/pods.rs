//! Pods really run: the node agent registers this machine, the scheduler binds pods to it, and
//! containers run as host processes whose states, exit codes, restarts, logs and graceful
//! termination kubectl shows as a real cluster does.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{TestCluster, eventually, headers};

fn pod_manifest(name: &str, restart: &str, script: &str) -> String {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 30\n  containers:\n  - name: main\n    image: busybox\n    command: [\"sh\", \"-c\", \"{script}\"]\n"
    )
}

fn phase(c: &TestCluster, pod: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"])
        .stdout
}

fn pod_json(c: &TestCluster, pod: &str) -> Value {
    serde_json::from_str(&c.kubectl(&["get", "pod", pod, "-o", "json"]).ok().stdout)
        .expect("pod JSON")
}

#[test]
fn the_node_registers_ready_with_a_heartbeat_lease() {
    let c = TestCluster::start();
    assert!(eventually(Duration::from_secs(20), || c
        .kubectl(&["get", "nodes"])
        .stdout
        .contains(" Ready ")));
    let nodes = c.kubectl(&["get", "nodes"]).ok();
    assert_eq!(
        headers(&nodes.stdout),
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    );
    let row = nodes.stdout.lines().nth(1).expect("a node");
    assert!(
        row.contains("Ready") && row.contains("control-plane") && row.contains("v1.33.0"),
        "{row}"
    );
    let name = row.split_whitespace().next().expect("name").to_string();
    let lease = c
        .kubectl(&[
            "get",
            "lease",
            &name,
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .ok();
    assert_eq!(lease.stdout, name);
    let node: Value =
        serde_json::from_str(&c.kubectl(&["get", "node", &name, "-o", "json"]).ok().stdout)
            .expect("json");
    assert!(node["status"]["capacity"]["cpu"].is_string());
    assert!(node["status"]["nodeInfo"]["kubeletVersion"] == "v1.33.0");
}

#[test]
fn a_pod_runs_to_completion_and_its_logs_are_served() {
    let c = TestCluster::start();
    let f = c.file(
        "hello.yaml",
        &pod_manifest(
            "hello",
            "Never",
            "echo hello from $HOSTNAME; echo to-stderr >&2",
        ),
    );
    c.kubectl(&["create", "-f", &f]).ok();
    assert!(
        eventually(Duration::from_secs(30), || phase(&c, "hello")
            == "Succeeded"),
        "phase {}",
        phase(&c, "hello")
    );
    let table = c.kubectl(&["get", "pod", "hello"]).ok();
    let row: Vec<&str> = table
        .stdout
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["hello", "0/1", "Completed", "0"]);
    let logs = c.kubectl(&["logs", "hello"]).ok();
    assert!(
        logs.stdout.contains("hello from hello") && logs.stdout.contains("to-stderr"),
        "{}",
        logs.stdout
    );
    let stamped = c
        .kubectl(&["logs", "hello", "--timestamps", "--tail=1"])
        .ok();
    assert_eq!(stamped.stdout.lines().count(), 1, "{}", stamped.stdout);
    assert!(stamped.stdout.starts_with("20"), "{}", stamped.stdout);
    let pod = pod_json(&c, "hello");
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["state"]["terminated"]["reason"], "Completed");
    assert_eq!(status["state"]["terminated"]["exitCode"], 0);
    for field in [
        "name",
        "image",
        "imageID",
        "ready",
        "restartCount",
        "containerID",
    ] {
        assert!(status.get(field).is_some(), "{field} in {status}");
    }
    assert!(status["state"]["terminated"]["finishedAt"].is_string());
    let events = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=hello",
        ])
        .ok();
    for reason in ["Scheduled", "Created", "Started"] {
        assert!(
            events.stdout.contains(reason),
            "{reason} in {}",
            events.stdout
        );
    }
}

#[test]
fn a_failing_container_shows_error_and_its_exit_code() {
    let c = TestCluster::start();
    let f = c.file("fail.yaml", &pod_manifest("fail", "Never", "exit 3"));
    c.kubectl(&["create", "-f", &f]).ok();
    assert!(eventually(Duration::from_secs(30), || phase(&c, "fail") == "Failed"));
    let table = c.kubectl(&["get", "pod", "fail"]).ok();
    assert!(
        table
            .stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("0/1") && l.contains("Error")),
        "{}",
        table.stdout
    );
    let described = c.kubectl(&["describe", "pod", "fail"]).ok();
    assert!(
        described.stdout.contains("Exit Code:    3"),
        "{}",
        described.stdout
    );
    assert!(
        described.stdout.contains("Reason:       Error"),
        "{}",
        described.stdout
    );
}

#[test]
fn on_failure_restarts_back_off() {
    let c = TestCluster::start();
    let f = c.file(
        "crash.yaml",
        &pod_manifest("crash", "OnFailure", "echo attempt; exit 1"),
    );
    c.kubectl(&["create", "-f", &f]).ok();
    assert!(
        eventually(Duration::from_secs(40), || {
            let p = pod_json(&c, "crash");
            let s = &p["status"]["containerStatuses"][0];
            s["restartCount"].as_i64().unwrap_or(0) >= 1
                && s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        }),
        "{}",
        pod_json(&c, "crash")
    );
    let p = pod_json(&c, "crash");
    assert_eq!(
        p["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        1
    );
    let table = c.kubectl(&["get", "pod", "crash"]).ok();
    assert!(
        table.stdout.contains("CrashLoopBackOff"),
        "{}",
        table.stdout
    );
    let previous = c.kubectl(&["logs", "crash", "--previous"]).ok();
    assert!(previous.stdout.contains("attempt"), "{}", previous.stdout);
    // Each run repeats the same Events; they are counted on one Event per kind, which
    // `kubectl describe` shows as "(x2 over …)".
    let started = || -> Vec<Value> {
        let list = c
            .kubectl(&[
                "get",
                "events",
                "--field-selector=involvedObject.name=crash,reason=Started",
                "-o",
                "json",
            ])
            .ok()
            .stdout;
        serde_json::from_str::<Value>(&list).expect("event list")["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let events = started();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0]["count"].as_i64().unwrap_or(0) >= 2, "{events:?}");
    let described = c.kubectl(&["describe", "pod", "crash"]).ok().stdout;
    assert!(
        described
            .lines()
            .any(|l| l.contains("Started") && l.contains("(x") && l.contains(" over ")),
        "{described}"
    );
}

#[test]
fn deletion_sends_sigterm_and_waits_for_the_trap() {
    let c = TestCluster::start();
    let marker = c.path("term-marker");
    let script = format!(
        "trap 'echo got-term > {}; exit 0' TERM; echo started; while true; do sleep 0.2; done",
        marker.display()
    );
    let f = c.file("trap.yaml", &pod_manifest("trap", "Never", &script));
    c.kubectl(&["create", "-f", &f]).ok();
    c.kubectl(&["wait", "--for=condition=Ready", "pod/trap", "--timeout=30s"])
        .ok();
    let table = c.kubectl(&["get", "pod", "trap"]).ok();
    assert!(
        table
            .stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("1/1") && l.contains("Running")),
        "{}",
        table.stdout
    );
    let logs = c.kubectl(&["logs", "trap"]).ok();
    assert!(logs.stdout.contains("started"), "{}", logs.stdout);
    let out = c
        .kubectl(&["delete", "pod", "trap", "--grace-period=5"])
        .ok();
    assert_eq!(out.stdout.trim(), "pod \"trap\" deleted");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default().trim(),
        "got-term"
    );
    c.kubectl(&["get", "pod", "trap"]).fails();
}

#[test]
fn a_pod_whose_node_selector_matches_nothing_stays_pending_with_a_reason() {
    let c = TestCluster::start();
    let manifest = format!(
        "{}  nodeSelector:\n    disk: ssd\n",
        pod_manifest("picky", "Never", "true")
    );
    let f = c.file("picky.yaml", &manifest);
    c.kubectl(&["create", "-f", &f]).ok();
    assert!(
        eventually(Duration::from_secs(20), || {
            c.kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=picky,reason=FailedScheduling",
            ])
            .stdout
            .contains("FailedScheduling")
        }),
        "FailedScheduling event"
    );
    assert_eq!(phase(&c, "picky"), "Pending");
    let p = pod_json(&c, "picky");
    assert!(
        p["spec"]
            .get("nodeName")
            .is_none_or(|n| n.is_null() || n == ""),
        "{p}"
    );
}
