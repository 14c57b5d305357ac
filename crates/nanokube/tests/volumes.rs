//! Pod volumes and the service-account projection: the ServiceAccount admission gives every
//! pod the `kube-api-access-*` volume exactly as a real cluster shows it, rejects pods naming a
//! missing account, and the node agent materialises each volume's files under
//! `<data-dir>/pods/<uid>/volumes/` — including a pod-bound token the API server accepts.

mod support;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{TestCluster, eventually};

fn pod_json(c: &TestCluster, pod: &str) -> Value {
    serde_json::from_str(&c.kubectl(&["get", "pod", pod, "-o", "json"]).ok().stdout)
        .expect("pod JSON")
}

fn phase(c: &TestCluster, pod: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"])
        .stdout
}

fn volumes_dir(c: &TestCluster, pod: &Value) -> PathBuf {
    let uid = pod["metadata"]["uid"].as_str().expect("uid");
    c.data_dir().join("pods").join(uid).join("volumes")
}

fn read(path: &Path) -> (String, u32) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mode = std::fs::metadata(path).expect("meta").permissions().mode() & 0o7777;
    (text, mode)
}

/// Base64url without padding, as JWT segments are.
fn base64url_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            other => panic!("not base64url: {other}"),
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | value(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

const APP_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: app
  labels:
    app: demo
    tier: web
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [\"sh\", \"-c\", \"sleep 3600\"]
    volumeMounts:
    - {name: config, mountPath: /etc/app}
    - {name: creds, mountPath: /etc/creds}
    - {name: info, mountPath: /etc/info}
    - {name: scratch, mountPath: /scratch}
    - {name: host, mountPath: /host}
  volumes:
  - name: config
    configMap:
      name: app-config
      items:
      - {key: app.conf, path: conf/app.conf, mode: 0600}
  - name: creds
    secret:
      secretName: app-secret
      defaultMode: 0400
  - name: info
    downwardAPI:
      items:
      - path: labels
        fieldRef: {fieldPath: metadata.labels}
      - path: name
        fieldRef: {fieldPath: metadata.name}
  - name: scratch
    emptyDir: {}
  - name: host
    hostPath:
      path: HOST_PATH
      type: DirectoryOrCreate
";

#[test]
fn a_pods_volumes_are_materialised_with_their_contents_and_modes() {
    let c = TestCluster::start();
    c.kubectl(&[
        "create",
        "configmap",
        "app-config",
        "--from-literal=app.conf=x=1",
    ])
    .ok();
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        "app-secret",
        "--from-literal=password=s3cret",
    ])
    .ok();
    let host = c.path("host-shared");
    let f = c.file(
        "app.yaml",
        &APP_POD.replace("HOST_PATH", &host.to_string_lossy()),
    );
    c.kubectl(&["create", "-f", &f]).ok();
    assert!(
        eventually(Duration::from_secs(40), || phase(&c, "app") == "Running"),
        "phase {}",
        phase(&c, "app")
    );
    let pod = pod_json(&c, "app");
    let vols = volumes_dir(&c, &pod);

    assert_eq!(
        read(&vols.join("kubernetes.io~configmap/config/conf/app.conf")),
        ("x=1".into(), 0o600)
    );
    let config_dir = vols.join("kubernetes.io~configmap/config");
    assert!(
        std::fs::symlink_metadata(config_dir.join("..data"))
            .expect("..data")
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_link(config_dir.join("conf")).expect("conf link"),
        PathBuf::from("..data/conf")
    );
    assert_eq!(
        read(&vols.join("kubernetes.io~secret/creds/password")),
        ("s3cret".into(), 0o400)
    );
    assert_eq!(
        read(&vols.join("kubernetes.io~downward-api/info/labels")),
        ("app=\"demo\"\ntier=\"web\"".into(), 0o644)
    );
    assert_eq!(
        read(&vols.join("kubernetes.io~downward-api/info/name")).0,
        "app"
    );
    assert!(vols.join("kubernetes.io~empty-dir/scratch").is_dir());
    assert!(
        host.is_dir(),
        "hostPath DirectoryOrCreate made the directory"
    );

    // The service-account projection: token, cluster CA and namespace.
    let access_name = pod["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .find(|n| n.starts_with("kube-api-access-"))
        .expect("kube-api-access volume")
        .to_string();
    let access = vols.join("kubernetes.io~projected").join(&access_name);
    assert_eq!(read(&access.join("namespace")), ("default".into(), 0o644));
    let ca = read(&access.join("ca.crt")).0;
    assert_eq!(
        ca.trim(),
        std::fs::read_to_string(c.pki("ca.crt"))
            .expect("cluster CA")
            .trim()
    );
    let token = read(&access.join("token")).0;
    let payload: Value = serde_json::from_slice(&base64url_decode(
        token.split('.').nth(1).expect("JWT payload"),
    ))
    .expect("claims");
    assert_eq!(payload["sub"], "system:serviceaccount:default:default");
    assert_eq!(payload["kubernetes.io"]["pod"]["name"], "app");
    assert_eq!(
        payload["kubernetes.io"]["pod"]["uid"],
        pod["metadata"]["uid"]
    );
    assert_eq!(payload["kubernetes.io"]["namespace"], "default");
    // The API server accepts the token as the pod's service account.
    let who = c
        .kubectl_with_token(&token, &["auth", "whoami", "-o", "json"])
        .ok();
    let who: Value = serde_json::from_str(&who.stdout).expect("whoami JSON");
    assert_eq!(
        who["status"]["userInfo"]["username"],
        "system:serviceaccount:default:default"
    );
    assert_eq!(
        who["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"],
        serde_json::json!(["app"])
    );

    // A ConfigMap update reaches the running pod's volume.
    c.kubectl(&[
        "patch",
        "configmap",
        "app-config",
        "-p",
        "{\"data\":{\"app.conf\":\"x=2\"}}",
    ])
    .ok();
    let conf = vols.join("kubernetes.io~configmap/config/conf/app.conf");
    assert!(
        eventually(Duration::from_secs(30), || std::fs::read_to_string(&conf)
            .is_ok_and(|t| t == "x=2")),
        "updated config: {:?}",
        std::fs::read_to_string(&conf)
    );

    // The pod's volumes go with the pod; the hostPath stays.
    c.kubectl(&["delete", "pod", "app", "--grace-period=1"])
        .ok();
    assert!(
        eventually(Duration::from_secs(20), || !vols.exists()),
        "volumes removed"
    );
    assert!(host.is_dir());
}

#[test]
fn kubectl_shows_the_service_account_projection_as_a_real_cluster_does() {
    let c = TestCluster::start();
    c.kubectl(&[
        "run",
        "web",
        "--image=busybox",
        "--restart=Never",
        "--command",
        "--",
        "sleep",
        "3600",
    ])
    .ok();
    let pod = pod_json(&c, "web");
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    let volume = &spec["volumes"][0];
    let name = volume["name"].as_str().expect("name");
    let suffix = name.strip_prefix("kube-api-access-").expect("prefix");
    assert_eq!(suffix.len(), 5, "{name}");
    assert_eq!(
        volume["projected"],
        serde_json::json!({
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}
            ]
        })
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        serde_json::json!([{
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "name": name,
            "readOnly": true
        }])
    );
    let yaml = c.kubectl(&["get", "pod", "web", "-o", "yaml"]).ok().stdout;
    for line in [
        "    - mountPath: /var/run/secrets/kubernetes.io/serviceaccount",
        "      readOnly: true",
        "  - name: kube-api-access-",
        "      - serviceAccountToken:",
        "          expirationSeconds: 3607",
        "          path: token",
        "          name: kube-root-ca.crt",
        "              fieldPath: metadata.namespace",
        "  serviceAccountName: default",
    ] {
        assert!(yaml.contains(line), "{line:?} in\n{yaml}");
    }
    // Pods the Job controller creates get it too.
    c.kubectl(&[
        "create",
        "job",
        "once",
        "--image=busybox",
        "--",
        "sh",
        "-c",
        "true",
    ])
    .ok();
    assert!(
        eventually(Duration::from_secs(30), || c
            .kubectl(&[
                "get",
                "pods",
                "-l",
                "job-name=once",
                "-o",
                "jsonpath={.items[0].spec.volumes[*].name}"
            ])
            .stdout
            .starts_with("kube-api-access-")),
        "job pod volumes"
    );
}

#[test]
fn automount_off_adds_nothing_and_a_missing_service_account_is_forbidden() {
    let c = TestCluster::start();
    let manifest = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{extra}  containers:\n  - name: main\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n"
        )
    };
    let f = c.file(
        "no-automount.yaml",
        &manifest("no-automount", "  automountServiceAccountToken: false\n"),
    );
    c.kubectl(&["create", "-f", &f]).ok();
    let volumes = c
        .kubectl(&[
            "get",
            "pod",
            "no-automount",
            "-o",
            "jsonpath={.spec.volumes}",
        ])
        .ok();
    assert_eq!(volumes.stdout, "");

    let sa = c.file(
        "quiet.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: quiet\nautomountServiceAccountToken: false\n",
    );
    c.kubectl(&["create", "-f", &sa]).ok();
    let f = c.file(
        "quiet-pod.yaml",
        &manifest("quiet-pod", "  serviceAccountName: quiet\n"),
    );
    c.kubectl(&["create", "-f", &f]).ok();
    let pod = pod_json(&c, "quiet-pod");
    assert!(pod["spec"].get("volumes").is_none(), "{}", pod["spec"]);
    assert!(pod["spec"]["containers"][0].get("volumeMounts").is_none());
    // Nothing to project: the pod runs with no volume directory at all.
    assert!(
        eventually(Duration::from_secs(30), || phase(&c, "quiet-pod")
            == "Running"),
        "phase {}",
        phase(&c, "quiet-pod")
    );

    let f = c.file(
        "ghost.yaml",
        &manifest("ghost-pod", "  serviceAccountName: ghost\n"),
    );
    let out = c.kubectl(&["create", "-f", &f]).fails();
    assert!(
        out.stderr.contains(
            "pods \"ghost-pod\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("(Forbidden)"), "{}", out.stderr);
}

#[test]
fn a_missing_config_map_keeps_the_pod_creating_until_it_exists() {
    let c = TestCluster::start();
    let f = c.file(
        "waits.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: waits
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [\"sleep\", \"3600\"]
    volumeMounts:
    - {name: cfg, mountPath: /etc/cfg}
  volumes:
  - name: cfg
    configMap:
      name: late
",
    );
    c.kubectl(&["create", "-f", &f]).ok();
    let failed_mount = "MountVolume.SetUp failed for volume \"cfg\" : configmap \"late\" not found";
    assert!(
        eventually(Duration::from_secs(30), || c
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=waits,reason=FailedMount",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .stdout
            .contains(failed_mount)),
        "FailedMount event"
    );
    let events = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=waits,reason=FailedMount",
            "-o",
            "jsonpath={.items[0].type}",
        ])
        .ok();
    assert_eq!(events.stdout, "Warning");
    let pod = pod_json(&c, "waits");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ContainerCreating"
    );
    let table = c.kubectl(&["get", "pod", "waits"]).ok();
    assert!(
        table.stdout.contains("ContainerCreating"),
        "{}",
        table.stdout
    );

    c.kubectl(&["create", "configmap", "late", "--from-literal=k=v"])
        .ok();
    assert!(
        eventually(Duration::from_secs(40), || phase(&c, "waits") == "Running"),
        "phase {}",
        phase(&c, "waits")
    );
    let vols = volumes_dir(&c, &pod_json(&c, "waits"));
    assert_eq!(read(&vols.join("kubernetes.io~configmap/cfg/k")).0, "v");
}
