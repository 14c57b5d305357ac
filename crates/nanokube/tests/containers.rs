//! Containers run isolated: in their own mount, pid, uts and ipc namespaces, chrooted into an
//! imported image's root filesystem when the image is in the store, and on the host's
//! filesystem (without changing it) when it is not.

mod support;

use std::process::Command;
use std::time::Duration;
use support::busybox::{Format, MARKER_CONTENTS, busybox_archive};
use support::{TestCluster, eventually};

/// Starts a server and imports the test busybox image into its store.
fn cluster_with_busybox() -> TestCluster {
    let cluster = TestCluster::start();
    let archive = busybox_archive(cluster.dir.path(), Format::Docker);
    let out = Command::new(env!("CARGO_BIN_EXE_nanokube"))
        .args(["image", "import"])
        .arg(&archive)
        .arg("--data-dir")
        .arg(cluster.data_dir())
        .output()
        .expect("run nanokube image import");
    assert!(out.status.success(), "{out:?}");
    cluster
}

fn phase(cluster: &TestCluster, pod: &str) -> String {
    cluster
        .kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"])
        .stdout
}

fn wait_done(cluster: &TestCluster, pod: &str) {
    assert!(
        eventually(Duration::from_secs(60), || {
            matches!(phase(cluster, pod).as_str(), "Succeeded" | "Failed")
        }),
        "pod {pod} finishes: {}",
        cluster.kubectl(&["get", "pod", pod, "-o", "yaml"]).stdout
    );
}

#[test]
fn an_imported_image_runs_chrooted_with_its_default_command_and_own_namespaces() {
    let cluster = cluster_with_busybox();
    // Only args: the image's Entrypoint (none) + args; the image's files are the root.
    cluster
        .kubectl(&[
            "run",
            "in-image",
            "--image=busybox",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "cat /etc/nanokube-busybox-image; echo pid=$$$$; hostname; ls /work 2>&1 | head -1; echo PATH=$PATH",
        ])
        .ok();
    // Neither command nor args: the image's Cmd (`sh`), which reads an empty stdin and ends.
    cluster
        .kubectl(&["run", "default-cmd", "--image=busybox", "--restart=Never"])
        .ok();
    wait_done(&cluster, "in-image");
    wait_done(&cluster, "default-cmd");
    assert_eq!(phase(&cluster, "in-image"), "Succeeded");
    let logs = cluster.kubectl(&["logs", "in-image"]).ok().stdout;
    assert!(logs.starts_with(MARKER_CONTENTS), "{logs}");
    // The shell is pid 2 in its own pid namespace (pid 1 is the runtime's init).
    assert!(logs.contains("pid=2\n"), "{logs}");
    assert!(
        logs.contains("\nin-image\n"),
        "hostname is the pod name: {logs}"
    );
    assert!(
        logs.contains("No such file or directory"),
        "the host's /work is not visible: {logs}"
    );
    assert!(
        logs.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        "{logs}"
    );
    assert_eq!(phase(&cluster, "default-cmd"), "Succeeded");
    let command = cluster
        .kubectl(&[
            "get",
            "pod",
            "default-cmd",
            "-o",
            "jsonpath={.status.containerStatuses[0].imageID}",
        ])
        .ok()
        .stdout;
    assert!(command.starts_with("sha256:"), "imageID: {command}");
    let events = cluster
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=default-cmd",
        ])
        .ok()
        .stdout;
    assert!(
        events.contains("Container image \"busybox\" already present on machine"),
        "{events}"
    );
}

#[test]
fn an_unknown_image_without_a_command_says_to_import_it() {
    let cluster = TestCluster::start();
    cluster
        .kubectl(&[
            "run",
            "no-image",
            "--image=not-imported:1",
            "--restart=Never",
        ])
        .ok();
    assert!(
        eventually(Duration::from_secs(30), || {
            cluster
                .kubectl(&[
                    "get",
                    "pod",
                    "no-image",
                    "-o",
                    "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
                ])
                .stdout
                == "ErrImageNeverPull"
        }),
        "{}",
        cluster
            .kubectl(&["get", "pod", "no-image", "-o", "yaml"])
            .stdout
    );
    let described = cluster
        .kubectl(&["describe", "pod", "no-image"])
        .ok()
        .stdout;
    assert!(
        described.contains("nanokube image import"),
        "the event says how to import the image: {described}"
    );
    let table = cluster.kubectl(&["get", "pod", "no-image"]).ok().stdout;
    assert!(table.contains("ErrImageNeverPull"), "{table}");
}

#[test]
fn a_host_filesystem_container_gets_its_own_run_and_leaves_the_host_untouched() {
    let cluster = TestCluster::start();
    let marker = cluster.dir.path().join("written-by-pod");
    let script = format!(
        "echo pid=$$$$; ls /run | wc -l; echo hello > {}; mkdir -p /run/mine && echo ok",
        marker.display()
    );
    cluster
        .kubectl(&[
            "run",
            "on-host",
            "--image=not-imported",
            "--restart=Never",
            "--command",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .ok();
    wait_done(&cluster, "on-host");
    let logs = cluster.kubectl(&["logs", "on-host"]).ok().stdout;
    assert_eq!(phase(&cluster, "on-host"), "Succeeded", "{logs}");
    assert!(logs.contains("pid=2\n"), "{logs}");
    // The host's directories are shared (a file written to a host path is there) …
    assert_eq!(
        std::fs::read_to_string(&marker).expect("the pod wrote to the host path"),
        "hello\n"
    );
    // … but /run is the container's own.
    assert!(!std::path::Path::new("/run/mine").exists());
}

#[test]
fn exceeding_the_memory_limit_ends_in_oom_killed() {
    let cluster = TestCluster::start();
    let manifest = cluster.file(
        "hog.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: not-imported
    command: ["sh", "-c", "echo starting; exec tail /dev/zero"]
    resources:
      limits:
        memory: 32Mi
"#,
    );
    cluster.kubectl(&["apply", "-f", &manifest]).ok();
    wait_done(&cluster, "hog");
    let state = cluster
        .kubectl(&[
            "get",
            "pod",
            "hog",
            "-o",
            "jsonpath={.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}",
        ])
        .ok()
        .stdout;
    assert_eq!(state, "OOMKilled 137");
    assert_eq!(phase(&cluster, "hog"), "Failed");
    let table = cluster.kubectl(&["get", "pod", "hog"]).ok().stdout;
    assert!(table.contains("OOMKilled"), "{table}");
}

#[test]
fn the_service_account_files_are_projected_and_in_cluster_python_uses_them() {
    let cluster = cluster_with_busybox();
    cluster
        .kubectl(&[
            "run",
            "sa-files",
            "--image=busybox",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "ls /var/run/secrets/kubernetes.io/serviceaccount",
        ])
        .ok();
    let no_token = cluster.file(
        "no-token.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: no-token
spec:
  automountServiceAccountToken: false
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1; true"]
"#,
    );
    cluster.kubectl(&["apply", "-f", &no_token]).ok();
    wait_done(&cluster, "sa-files");
    wait_done(&cluster, "no-token");
    assert_eq!(
        cluster.kubectl(&["logs", "sa-files"]).ok().stdout,
        "ca.crt\nnamespace\ntoken\n"
    );
    let table = cluster.kubectl(&["get", "pod", "sa-files"]).ok().stdout;
    assert!(table.contains("0/1     Completed"), "{table}");
    let logs = cluster.kubectl(&["logs", "no-token"]).ok().stdout;
    assert!(logs.contains("No such file or directory"), "{logs}");
    // The host's /var/run is never touched.
    assert!(!std::path::Path::new("/run/secrets/kubernetes.io/serviceaccount/token").exists());

    // In-cluster Python, TLS verified against ca.crt: denied, then allowed by RBAC.
    let python = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v python3"])
            .output()
            .expect("find python3")
            .stdout,
    )
    .expect("utf-8");
    let python = std::fs::canonicalize(python.trim()).expect("python3 path");
    let script = "from kubernetes import client, config\n\
        from kubernetes.client.rest import ApiException\n\
        config.load_incluster_config()\n\
        c = client.Configuration.get_default_copy()\n\
        assert c.verify_ssl and c.ssl_ca_cert.endswith('ca.crt'), c.ssl_ca_cert\n\
        try:\n\
        \x20   pods = client.CoreV1Api().list_namespaced_pod('default')\n\
        \x20   print('allowed', len(pods.items) > 0)\n\
        except ApiException as e:\n\
        \x20   print('denied', e.status)\n";
    let run_python = |name: &str| {
        let manifest = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "py", "image": "python-on-host",
                "command": [python.to_str().expect("utf-8"), "-c", script],
            }]}
        });
        let path = cluster.file(&format!("{name}.json"), &manifest.to_string());
        cluster.kubectl(&["apply", "-f", &path]).ok();
        wait_done(&cluster, name);
        cluster.kubectl(&["logs", name]).ok().stdout
    };
    assert_eq!(run_python("py-denied"), "denied 403\n");
    cluster
        .kubectl(&[
            "create",
            "rolebinding",
            "default-view",
            "--clusterrole=view",
            "--serviceaccount=default:default",
        ])
        .ok();
    assert_eq!(run_python("py-allowed"), "allowed True\n");
}

#[test]
fn kubectl_run_interactive_gets_a_real_terminal_and_exec_enters_the_container() {
    let cluster = cluster_with_busybox();
    // `run -i --rm`: the output reaches the user (attached, or from the log if the command
    // was over before the attach, as on any cluster), then the pod is deleted.
    let r = cluster
        .kubectl(&[
            "run",
            "t",
            "-i",
            "--rm",
            "--restart=Never",
            "--image=busybox",
            "--",
            "cat",
            "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
        ])
        .ok();
    assert!(
        r.stdout.starts_with("default"),
        "{}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("pod \"t\" deleted"), "{}", r.stdout);

    // `run -it` with a real terminal on the client side (script allocates one).
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let cmd = format!(
        "(sleep 3; printf 'tty\\necho hi-from-$((6*7))\\nexit 3\\n') | script -qec 'kubectl --kubeconfig {kubeconfig} run -it shell --image=busybox --restart=Never' /dev/null"
    );
    let out = Command::new("sh")
        .args(["-c", &cmd])
        .env("HOME", cluster.dir.path())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "a terminal inside: {text}");
    assert!(text.contains("hi-from-42"), "{text}");
    assert!(
        text.contains("pod default/shell terminated (Error)"),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(3), "{text}");

    // exec runs inside the container: the image's files, its namespaces.
    cluster
        .kubectl(&[
            "run",
            "long",
            "--image=busybox",
            "--restart=Never",
            "--",
            "sleep",
            "600",
        ])
        .ok();
    assert!(eventually(Duration::from_secs(30), || phase(
        &cluster, "long"
    ) == "Running"));
    let r = cluster
        .kubectl(&[
            "exec",
            "long",
            "--",
            "sh",
            "-c",
            "cat /etc/nanokube-busybox-image; hostname; cat /proc/1/cmdline | tr '\\0' ' '",
        ])
        .ok();
    assert!(r.stdout.starts_with(MARKER_CONTENTS), "{}", r.stdout);
    assert!(r.stdout.contains("\nlong\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains("container-init"),
        "pid 1 is the container's init: {}",
        r.stdout
    );
    cluster
        .kubectl(&["delete", "pod", "long", "--grace-period=1"])
        .ok();
}
