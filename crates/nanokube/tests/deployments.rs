//! Deployments and ReplicaSets happen: the everyday kubectl rollout workflow (create, rollout
//! status, scale, set image, history, undo), the seed article's `ubu` Deployment running
//! under its ServiceAccount, and a ReplicaSet adopting a bare pod — against the real server,
//! scheduler, node agent and the ReplicaSet and Deployment controllers.
//!
//! Each test has its own server, and they run side by side.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{TestCluster, eventually, headers};

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: c
        image: busybox
        command: [\"/bin/sh\", \"-c\", \"sleep 600\"]
";

/// The seed article's Deployment, as written but for the image placeholder, which becomes
/// a real name and a command (no image is imported, so the pod runs on the host).
const UBU: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
    name: ubu
spec:
    selector:
        matchLabels:
            app: ubu
    replicas: 1
    template:
        metadata:
            labels:
                app: ubu
        spec:
            containers: 
            - name: ubu
              image: \"ubuntu\"
              command: [\"/bin/sh\", \"-c\", \"sleep 600\"]
            serviceAccountName: job-robot  # Name of the ServiceAccount, duh.
";

/// Deletes the test's workloads when it ends, also when it fails, so that no pod process
/// outlives the server that started it.
struct Cleanup<'a>(&'a TestCluster);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.kubectl(&[
            "delete",
            "deployments,replicasets,pods",
            "--all",
            "--wait=true",
            "--timeout=30s",
        ]);
    }
}

fn json(c: &TestCluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl(&all).ok().stdout).expect("kubectl JSON")
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn running_pods(c: &TestCluster, selector: &str) -> Vec<Value> {
    items(&json(
        c,
        &[
            "get",
            "pods",
            "-l",
            selector,
            "--field-selector=status.phase=Running",
        ],
    ))
    .into_iter()
    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
    .collect()
}

fn rollout_status(c: &TestCluster, name: &str) {
    let out = c
        .kubectl(&[
            "rollout",
            "status",
            &format!("deploy/{name}"),
            "--timeout=90s",
        ])
        .ok();
    assert!(
        out.stdout
            .contains(&format!("deployment \"{name}\" successfully rolled out")),
        "{}",
        out.stdout
    );
}

/// The image of each ReplicaSet of `app`, with its size and revision.
fn replica_sets(c: &TestCluster, app: &str) -> Vec<(String, i64, String)> {
    let mut sets: Vec<(String, i64, String)> =
        items(&json(c, &["get", "rs", "-l", &format!("app={app}")]))
            .iter()
            .map(|rs| {
                (
                    rs["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    rs["spec"]["replicas"].as_i64().unwrap_or(-1),
                    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
    sets.sort();
    sets
}

#[test]
fn deployment_rolls_out_scales_updates_and_rolls_back_with_kubectl() {
    let c = TestCluster::start();
    let _cleanup = Cleanup(&c);
    let f = c.file("web.yaml", WEB);
    assert_eq!(
        c.kubectl(&["create", "-f", &f]).ok().stdout.trim(),
        "deployment.apps/web created"
    );
    rollout_status(&c, "web");
    let pods = running_pods(&c, "app=web");
    assert_eq!(pods.len(), 2, "{pods:?}");
    let rs = items(&json(&c, &["get", "rs", "-l", "app=web"]));
    assert_eq!(rs.len(), 1);
    let hash = rs[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .expect("pod-template-hash on the ReplicaSet")
        .to_string();
    assert_eq!(rs[0]["metadata"]["name"], format!("web-{hash}"));
    for p in &pods {
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], hash.as_str());
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        assert!(name.starts_with(&format!("web-{hash}-")), "{name}");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    }

    assert_eq!(
        c.kubectl(&["scale", "deploy/web", "--replicas=3"])
            .ok()
            .stdout
            .trim(),
        "deployment.apps/web scaled"
    );
    rollout_status(&c, "web");
    assert!(
        eventually(Duration::from_secs(30), || running_pods(&c, "app=web")
            .len()
            == 3),
        "three pods run"
    );

    assert_eq!(
        c.kubectl(&["set", "image", "deploy/web", "c=other:2"])
            .ok()
            .stdout
            .trim(),
        "deployment.apps/web image updated"
    );
    rollout_status(&c, "web");
    assert_eq!(
        replica_sets(&c, "web"),
        [
            ("busybox".to_string(), 0, "1".to_string()),
            ("other:2".to_string(), 3, "2".to_string())
        ]
    );
    let history = c.kubectl(&["rollout", "history", "deploy/web"]).ok().stdout;
    let revisions: Vec<&str> = history
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    assert_eq!(
        c.kubectl(&["rollout", "undo", "deploy/web"])
            .ok()
            .stdout
            .trim(),
        "deployment.apps/web rolled back"
    );
    rollout_status(&c, "web");
    let d = json(&c, &["get", "deploy", "web"]);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox"
    );
    assert_eq!(
        replica_sets(&c, "web"),
        [
            ("busybox".to_string(), 3, "3".to_string()),
            ("other:2".to_string(), 0, "2".to_string())
        ],
        "the first ReplicaSet comes back as revision 3"
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let pods = running_pods(&c, "app=web");
            pods.len() == 3
                && pods
                    .iter()
                    .all(|p| p["spec"]["containers"][0]["image"] == "busybox")
        }),
        "three busybox pods run again"
    );

    let table = c.kubectl(&["get", "deploy"]).ok().stdout;
    assert_eq!(
        headers(&table),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["web", "3/3", "3", "3"], "{table}");

    let d = json(&c, &["get", "deploy", "web"]);
    let conditions: Vec<(String, String, String)> = d["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        conditions,
        [
            (
                "Available".into(),
                "True".into(),
                "MinimumReplicasAvailable".into()
            ),
            (
                "Progressing".into(),
                "True".into(),
                "NewReplicaSetAvailable".into()
            )
        ]
    );
    let events = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=Deployment,reason=ScalingReplicaSet",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ])
        .ok()
        .stdout;
    assert!(
        events
            .lines()
            .any(|m| m == format!("Scaled up replica set web-{hash} from 0 to 2")),
        "{events}"
    );
    assert!(
        events
            .lines()
            .any(|m| m.starts_with("Scaled down replica set ")),
        "{events}"
    );
    let described = c.kubectl(&["describe", "deploy", "web"]).ok().stdout;
    assert!(
        described.contains("NewReplicaSet:") && described.contains("(3/3 replicas created)"),
        "{described}"
    );
}

#[test]
fn seed_ubu_deployment_runs_its_pod_under_the_job_robot_service_account() {
    let c = TestCluster::start();
    let _cleanup = Cleanup(&c);
    c.kubectl(&["create", "serviceaccount", "job-robot"]).ok();
    let f = c.file("ubu.yaml", UBU);
    assert_eq!(
        c.kubectl(&["apply", "-f", &f]).ok().stdout.trim(),
        "deployment.apps/ubu created"
    );
    rollout_status(&c, "ubu");
    let pods = running_pods(&c, "app=ubu");
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["spec"]["serviceAccountName"], "job-robot");
    let table = c.kubectl(&["get", "deploy", "ubu"]).ok().stdout;
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().take(4).eq(["ubu", "1/1", "1", "1"])),
        "{table}"
    );
}

#[test]
fn replicaset_adopts_a_matching_bare_pod_and_tops_up_the_rest() {
    let c = TestCluster::start();
    let _cleanup = Cleanup(&c);
    let pod = "apiVersion: v1
kind: Pod
metadata:
  name: stray
  labels:
    app: adopt
spec:
  containers:
  - name: c
    image: busybox
    command: [\"/bin/sh\", \"-c\", \"sleep 600\"]
";
    c.kubectl(&["create", "-f", &c.file("pod.yaml", pod)]).ok();
    let rs = "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: adopter
spec:
  replicas: 2
  selector:
    matchLabels:
      app: adopt
  template:
    metadata:
      labels:
        app: adopt
    spec:
      containers:
      - name: c
        image: busybox
        command: [\"/bin/sh\", \"-c\", \"sleep 600\"]
";
    assert_eq!(
        c.kubectl(&["create", "-f", &c.file("rs.yaml", rs)])
            .ok()
            .stdout
            .trim(),
        "replicaset.apps/adopter created"
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let rs = json(&c, &["get", "rs", "adopter"]);
            rs["status"]["readyReplicas"] == 2 && running_pods(&c, "app=adopt").len() == 2
        }),
        "{}",
        json(&c, &["get", "rs", "adopter"])
    );
    let stray = json(&c, &["get", "pod", "stray"]);
    let owner = &stray["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "ReplicaSet");
    assert_eq!(owner["name"], "adopter");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    let pods = items(&json(&c, &["get", "pods", "-l", "app=adopt"]));
    assert_eq!(pods.len(), 2, "one adopted, one created");
    let created = c
        .kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=adopter,reason=SuccessfulCreate",
            "-o",
            "name",
        ])
        .ok()
        .stdout;
    assert_eq!(created.lines().count(), 1, "{created}");
    let rs = json(&c, &["get", "rs", "adopter"]);
    assert_eq!(rs["status"]["replicas"], 2);
    assert_eq!(rs["status"]["fullyLabeledReplicas"], 2);
    assert_eq!(rs["status"]["availableReplicas"], 2);
    assert_eq!(rs["status"]["observedGeneration"], 1);

    c.kubectl(&["scale", "rs/adopter", "--replicas=1"]).ok();
    assert!(
        eventually(Duration::from_secs(30), || running_pods(&c, "app=adopt")
            .len()
            == 1),
        "scaled down to one"
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            c.kubectl(&[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=adopter,reason=SuccessfulDelete",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .stdout
            .starts_with("Deleted pod: ")
        }),
        "a SuccessfulDelete Event"
    );
}
