//! `nanokube agent`: the node agent on its own joins a running server over HTTPS with a
//! node identity and runs the pods bound to its node.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{TestCluster, eventually};

/// Stops the agent even when an assertion fails.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        if !eventually(Duration::from_secs(10), || {
            matches!(self.0.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[test]
fn an_agent_joins_with_a_node_token_and_runs_the_pods_bound_to_its_node() {
    let setup = tempfile::tempdir().expect("temp dir");
    let tokens = setup.path().join("tokens.csv");
    std::fs::write(
        &tokens,
        "node-token-1,system:node:worker-1,uid-worker-1,\"system:nodes\"\n",
    )
    .expect("token file");
    let cluster = TestCluster::start_with(&["--token-auth-file", tokens.to_str().expect("utf-8")]);
    let agent = Command::new(env!("CARGO_BIN_EXE_nanokube"))
        .args(["agent", "--server", &cluster.url, "--token", "node-token-1"])
        .arg("--certificate-authority")
        .arg(cluster.pki("ca.crt"))
        .args(["--node-name", "worker-1", "--data-dir"])
        .arg(setup.path().join("agent"))
        .env("NANOKUBE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn nanokube agent");
    let _agent = Agent(agent);

    assert!(
        eventually(Duration::from_secs(30), || {
            cluster
                .kubectl(&[
                    "get",
                    "node",
                    "worker-1",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .stdout
                == "True"
        }),
        "worker-1 registers Ready"
    );
    // Only the server's own machine carries the control-plane role.
    let roles = cluster.kubectl(&["get", "node", "worker-1"]).ok().stdout;
    assert!(roles.contains("<none>"), "{roles}");
    assert!(
        cluster
            .kubectl(&["get", "lease", "-n", "kube-node-lease", "worker-1"])
            .status
            == 0
    );

    cluster
        .kubectl(&[
            "run",
            "on-worker",
            "--image=not-imported",
            "--restart=Never",
            "--overrides={\"spec\":{\"nodeSelector\":{\"kubernetes.io/hostname\":\"worker-1\"}}}",
            "--command",
            "--",
            "sh",
            "-c",
            "echo hello from $(hostname)",
        ])
        .ok();
    assert!(
        eventually(Duration::from_secs(30), || {
            cluster
                .kubectl(&["get", "pod", "on-worker", "-o", "jsonpath={.status.phase}"])
                .stdout
                == "Succeeded"
        }),
        "the pod runs to completion on worker-1: {}",
        cluster
            .kubectl(&["get", "pod", "on-worker", "-o", "yaml"])
            .stdout
    );
    let node = cluster
        .kubectl(&["get", "pod", "on-worker", "-o", "jsonpath={.spec.nodeName}"])
        .ok()
        .stdout;
    assert_eq!(node, "worker-1");
    // The agent's pod directory holds the pod's log.
    let uid = cluster
        .kubectl(&["get", "pod", "on-worker", "-o", "jsonpath={.metadata.uid}"])
        .ok()
        .stdout;
    assert!(setup.path().join("agent/pods").join(&uid).is_dir());

    // A token that is not a node's cannot register one.
    let denied = cluster
        .kubectl_with_token("no-such-token", &["get", "nodes"])
        .fails();
    assert!(denied.stderr.contains("Unauthorized"), "{}", denied.stderr);
}
