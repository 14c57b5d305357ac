//! The real kubectl against the real `nanokube server`: discovery, CRUD, apply/edit/patch,
//! table output, watch, and the errors kubectl users see.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{SLEEPY_CRONJOB, SLEEPY_JOB, TestCluster, headers, read_until};

fn json(run: &support::Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

#[test]
fn kubectl_version_reports_a_1_33_server() {
    let c = TestCluster::start();
    let out = c.kubectl(&["version", "-o", "json"]).ok();
    let v = json(&out);
    assert_eq!(v["serverVersion"]["major"], "1");
    assert_eq!(v["serverVersion"]["minor"], "33");
    assert!(
        v["serverVersion"]["gitVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("v1.33."))
    );
}

#[test]
fn config_view_shows_the_https_server() {
    let c = TestCluster::start();
    let out = c.kubectl(&["config", "view"]).ok();
    assert!(
        out.stdout.contains(&format!("server: {}", c.url)),
        "{}",
        out.stdout
    );
    assert!(c.url.starts_with("https://127.0.0.1:"), "{}", c.url);
}

#[test]
fn api_resources_lists_served_kinds_with_short_names() {
    let c = TestCluster::start();
    let out = c.kubectl(&["api-resources"]).ok();
    let find = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(str::to_string)
    };
    let jobs = find("jobs").expect("jobs listed");
    assert!(
        jobs.contains("batch/v1") && jobs.contains("true") && jobs.contains("Job"),
        "{jobs}"
    );
    let cj = find("cronjobs").expect("cronjobs listed");
    assert!(cj.contains(" cj ") && cj.contains("batch/v1"), "{cj}");
    let pods = find("pods").expect("pods listed");
    assert!(pods.contains(" po ") && pods.contains(" v1 "), "{pods}");
    for name in [
        "namespaces",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "deployments",
        "replicasets",
        "roles",
        "clusterrolebindings",
        "leases",
        "events",
        "nodes",
    ] {
        assert!(find(name).is_some(), "{name} in\n{}", out.stdout);
    }
}

#[test]
fn system_namespaces_exist_from_the_start() {
    let c = TestCluster::start();
    let out = c.kubectl(&["get", "namespaces"]).ok();
    assert_eq!(headers(&out.stdout), ["NAME", "STATUS", "AGE"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{ns} ")))
            .unwrap_or_else(|| panic!("{ns} in {}", out.stdout));
        assert!(line.contains("Active"), "{line}");
    }
}

#[test]
fn seed_job_is_stored_with_upstream_defaults() {
    let c = TestCluster::start();
    let f = c.file("job.yaml", SLEEPY_JOB);
    let out = c.kubectl(&["create", "-f", &f]).ok();
    assert_eq!(out.stdout.trim(), "job.batch/sleepy created");

    let job = json(
        &c.kubectl(&["get", "jobs.batch", "sleepy", "-o", "json"])
            .ok(),
    );
    let uid = job["metadata"]["uid"].as_str().expect("uid").to_string();
    assert_eq!(job["spec"]["backoffLimit"], 6);
    assert_eq!(job["spec"]["completions"], 1);
    assert_eq!(job["spec"]["parallelism"], 1);
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid.as_str()
    );
    let labels = &job["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["controller-uid"], uid.as_str());
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], uid.as_str());
    assert_eq!(labels["job-name"], "sleepy");
    assert_eq!(labels["batch.kubernetes.io/job-name"], "sleepy");
    assert_eq!(job["metadata"]["generation"], 1);
    assert!(
        job["metadata"]["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 20)
    );

    let yaml = c
        .kubectl(&["get", "jobs.batch", "sleepy", "-o", "yaml"])
        .ok();
    assert!(yaml.stdout.contains("backoffLimit: 6"), "{}", yaml.stdout);

    let table = c.kubectl(&["get", "jobs"]).ok();
    assert_eq!(
        headers(&table.stdout),
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    let row: Vec<&str> = table
        .stdout
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(row[0], "sleepy");
    assert_eq!(row[2], "0/1");

    let wide = c.kubectl(&["get", "jobs", "-o", "wide"]).ok();
    assert_eq!(
        headers(&wide.stdout),
        [
            "NAME",
            "STATUS",
            "COMPLETIONS",
            "DURATION",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    assert!(
        wide.stdout.contains("resting") && wide.stdout.contains("busybox"),
        "{}",
        wide.stdout
    );

    let described = c.kubectl(&["describe", "jobs.batch", "sleepy"]).ok();
    for want in [
        "Name:",
        "sleepy",
        "Namespace:",
        "default",
        "Parallelism:",
        "Completions:",
        "Pods Statuses:",
    ] {
        assert!(
            described.stdout.contains(want),
            "{want} in\n{}",
            described.stdout
        );
    }
    assert!(
        described
            .stdout
            .contains(&format!("batch.kubernetes.io/controller-uid={uid}")),
        "{}",
        described.stdout
    );

    let deleted = c.kubectl(&["delete", "jobs.batch", "sleepy"]).ok();
    assert_eq!(deleted.stdout.trim(), "job.batch \"sleepy\" deleted");
    c.kubectl(&["get", "jobs.batch", "sleepy"]).fails();
}

#[test]
fn seed_v1beta1_cronjob_is_served_as_batch_v1_with_a_deprecation_warning() {
    let c = TestCluster::start();
    let f = c.file("cronjob.yaml", SLEEPY_CRONJOB);
    let out = c.kubectl(&["create", "-f", &f]).ok();
    assert_eq!(out.stdout.trim(), "cronjob.batch/sleepy created");
    assert!(
        out.stderr.contains("batch/v1beta1 CronJob is deprecated in v1.21+, unavailable in v1.25+; use batch/v1 CronJob"),
        "{}",
        out.stderr
    );
    let table = c.kubectl(&["get", "cronjobs.batch"]).ok();
    assert_eq!(
        headers(&table.stdout),
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ]
    );
    let row = table.stdout.lines().nth(1).expect("row");
    assert!(
        row.starts_with("sleepy")
            && row.contains("*/2 * * * *")
            && row.contains("False")
            && row.contains("<none>"),
        "{row}"
    );
    let cj = json(
        &c.kubectl(&["get", "cronjobs.v1.batch", "sleepy", "-o", "json"])
            .ok(),
    );
    assert_eq!(cj["apiVersion"], "batch/v1");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    let jobs = c.kubectl(&["get", "jobs.batch"]).ok();
    assert!(
        jobs.stderr
            .contains("No resources found in default namespace."),
        "{}",
        jobs.stderr
    );
    c.kubectl(&["delete", "cronjobs.batch", "sleepy"]).ok();
}

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: demo
data:
  mode: fast
";

#[test]
fn configmap_apply_twice_edit_label_annotate_patch_and_delete() {
    let c = TestCluster::start();
    let f = c.file("cm.yaml", CONFIGMAP);
    assert_eq!(
        c.kubectl(&["apply", "-f", &f]).ok().stdout.trim(),
        "configmap/settings created"
    );
    assert_eq!(
        c.kubectl(&["apply", "-f", &f]).ok().stdout.trim(),
        "configmap/settings unchanged"
    );
    let changed = c.file(
        "cm2.yaml",
        &CONFIGMAP.replace("mode: fast", "mode: slow\n  extra: \"1\""),
    );
    assert_eq!(
        c.kubectl(&["apply", "-f", &changed]).ok().stdout.trim(),
        "configmap/settings configured"
    );
    let cm = json(&c.kubectl(&["get", "cm", "settings", "-o", "json"]).ok());
    assert_eq!(cm["data"]["mode"], "slow");
    assert_eq!(cm["data"]["extra"], "1");
    assert!(
        cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    // kubectl edit with a scripted editor.
    let editor = c.file(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/mode: slow/mode: edited/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = c
        .kubectl_env(
            &["edit", "configmap", "settings"],
            &[("KUBE_EDITOR", &editor)],
        )
        .ok();
    assert_eq!(out.stdout.trim(), "configmap/settings edited");
    let cm = json(&c.kubectl(&["get", "cm", "settings", "-o", "json"]).ok());
    assert_eq!(cm["data"]["mode"], "edited");

    assert_eq!(
        c.kubectl(&["label", "cm", "settings", "tier=backend"])
            .ok()
            .stdout
            .trim(),
        "configmap/settings labeled"
    );
    assert_eq!(
        c.kubectl(&["annotate", "cm", "settings", "owner=me"])
            .ok()
            .stdout
            .trim(),
        "configmap/settings annotated"
    );
    let selected = c
        .kubectl(&["get", "cm", "-l", "tier=backend,app=demo", "-o", "name"])
        .ok();
    assert_eq!(selected.stdout.trim(), "configmap/settings");
    assert!(
        c.kubectl(&["get", "cm", "-l", "tier!=backend", "-o", "name"])
            .ok()
            .stdout
            .trim()
            .lines()
            .all(|l| l != "configmap/settings")
    );

    c.kubectl(&[
        "patch",
        "cm",
        "settings",
        "-p",
        r#"{"data":{"a":"strategic"}}"#,
    ])
    .ok();
    c.kubectl(&[
        "patch",
        "cm",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"merge","extra":null}}"#,
    ])
    .ok();
    c.kubectl(&[
        "patch",
        "cm",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/c","value":"json"}]"#,
    ])
    .ok();
    let cm = json(&c.kubectl(&["get", "cm", "settings", "-o", "json"]).ok());
    assert_eq!(cm["data"]["a"], "strategic");
    assert_eq!(cm["data"]["b"], "merge");
    assert_eq!(cm["data"]["c"], "json");
    assert!(cm["data"].get("extra").is_none());
    assert_eq!(cm["metadata"]["labels"]["tier"], "backend");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "me");

    let table = c.kubectl(&["get", "cm", "settings"]).ok();
    assert_eq!(headers(&table.stdout), ["NAME", "DATA", "AGE"]);
    assert_eq!(
        c.kubectl(&["delete", "cm", "settings"]).ok().stdout.trim(),
        "configmap \"settings\" deleted"
    );
    let gone = c.kubectl(&["get", "cm", "settings"]).fails();
    assert!(
        gone.stderr
            .contains("Error from server (NotFound): configmaps \"settings\" not found"),
        "{}",
        gone.stderr
    );
}

#[test]
fn namespaces_secrets_and_serviceaccounts_round_trip() {
    let c = TestCluster::start();
    c.kubectl(&["create", "namespace", "team-a"]).ok();
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "team-a",
        "--from-literal=user=admin",
    ])
    .ok();
    c.kubectl(&["create", "serviceaccount", "robot", "-n", "team-a"])
        .ok();
    let secrets = c.kubectl(&["get", "secrets", "-n", "team-a"]).ok();
    assert_eq!(headers(&secrets.stdout), ["NAME", "TYPE", "DATA", "AGE"]);
    assert!(
        secrets
            .stdout
            .lines()
            .any(|l| l.starts_with("creds") && l.contains("Opaque") && l.contains(" 1 ")),
        "{}",
        secrets.stdout
    );
    let sas = c.kubectl(&["get", "sa", "robot", "-n", "team-a"]).ok();
    assert_eq!(headers(&sas.stdout), ["NAME", "SECRETS", "AGE"]);
    let all = c.kubectl(&["get", "secrets", "-A"]).ok();
    assert_eq!(
        headers(&all.stdout),
        ["NAMESPACE", "NAME", "TYPE", "DATA", "AGE"]
    );
    assert!(all.stdout.contains("team-a"), "{}", all.stdout);
    let secret = json(
        &c.kubectl(&["get", "secret", "creds", "-n", "team-a", "-o", "json"])
            .ok(),
    );
    assert_eq!(secret["data"]["user"], "YWRtaW4=");
    // kubectl waits until the namespace controller has removed the contents and the
    // namespace itself.
    let ns = c
        .kubectl(&["delete", "namespace", "team-a", "--timeout=60s"])
        .ok();
    assert_eq!(ns.stdout.trim(), "namespace \"team-a\" deleted");
    let gone = c.kubectl(&["get", "namespace", "team-a"]).fails();
    assert!(
        gone.stderr.contains("namespaces \"team-a\" not found"),
        "{}",
        gone.stderr
    );
    let left = c
        .kubectl(&["get", "secrets", "-n", "team-a", "-o", "name"])
        .ok();
    assert!(
        left.stdout.trim().is_empty(),
        "contents removed: {}",
        left.stdout
    );
}

#[test]
fn get_watch_streams_new_objects_as_table_rows() {
    let c = TestCluster::start();
    let mut watch = c.kubectl_spawn(&["get", "configmaps", "-w"]);
    std::thread::sleep(Duration::from_millis(1500));
    c.kubectl(&["create", "configmap", "watched", "--from-literal=k=v"])
        .ok();
    let text = read_until(&mut watch, Duration::from_secs(20), |t| {
        t.contains("watched")
    });
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        text.lines()
            .any(|l| l.starts_with("watched") && l.contains(" 1 ")),
        "{text}"
    );
}

#[test]
fn invalid_names_and_specs_get_422_with_upstream_text() {
    let c = TestCluster::start();
    let bad = c.kubectl(&["create", "configmap", "Bad_Name"]).fails();
    assert!(
        bad.stderr.contains("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),

        "{}",
        bad.stderr
    );
    let job = c.file(
        "bad-job.yaml",
        &SLEEPY_JOB.replace("      restartPolicy: Never\n", ""),
    );
    let out = c.kubectl(&["create", "-f", &job]).fails();
    assert!(
        out.stderr.contains("The Job \"sleepy\" is invalid: spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""),
        "{}",
        out.stderr
    );
}

#[test]
fn strict_field_validation_rejects_unknown_fields() {
    let c = TestCluster::start();
    let f = c.file(
        "cm-unknown.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\nspec:\n  x: 1\n",
    );
    let out = c.kubectl(&["create", "-f", &f]).fails();
    assert!(
        out.stderr
            .contains("strict decoding error: unknown field \"spec\""),
        "{}",
        out.stderr
    );
    let out = c.kubectl(&["create", "-f", &f, "--validate=warn"]).ok();
    assert!(
        out.stderr.contains("unknown field \"spec\""),
        "{}",
        out.stderr
    );
}

#[test]
fn explain_reads_the_openapi_schema() {
    let c = TestCluster::start();
    let out = c.kubectl(&["explain", "job.spec.completions"]).ok();
    assert!(
        out.stdout.contains("GROUP:") && out.stdout.contains("batch"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("FIELD: completions <integer>"),
        "{}",
        out.stdout
    );
}

#[test]
fn stale_resource_version_on_replace_is_a_conflict() {
    let c = TestCluster::start();
    c.kubectl(&["create", "configmap", "cas", "--from-literal=a=1"])
        .ok();
    let mut cm = json(&c.kubectl(&["get", "cm", "cas", "-o", "json"]).ok());
    c.kubectl(&["label", "cm", "cas", "bump=1"]).ok();
    cm["data"]["a"] = Value::from("2");
    let f = c.file("cas.json", &cm.to_string());
    let out = c.kubectl(&["replace", "-f", &f]).fails();
    assert!(
        out.stderr.contains("Operation cannot be fulfilled on configmaps \"cas\": the object has been modified; please apply your changes to the latest version and try again"),
        "{}",
        out.stderr
    );
}

#[test]
fn server_side_dry_run_stores_nothing() {
    let c = TestCluster::start();
    let out = c
        .kubectl(&[
            "create",
            "configmap",
            "dry",
            "--dry-run=server",
            "-o",
            "name",
        ])
        .ok();
    assert_eq!(out.stdout.trim(), "configmap/dry");
    c.kubectl(&["get", "cm", "dry"]).fails();
}
