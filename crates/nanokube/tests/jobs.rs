//! Jobs happen: the training lab's Job exercise step by step, with its manifests as written,
//! against the real server, scheduler, node agent and Job controller.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{SLEEPY_JOB, TestCluster, eventually, headers};

/// The Job scenarios are about timing (deadlines, back-off, parallelism), so they run one at
/// a time rather than five servers and their pods competing for two cores.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn with_spec(extra: &str) -> String {
    SLEEPY_JOB.replace("spec:\n  template:", &format!("spec:\n{extra}  template:"))
}

fn job(c: &TestCluster, name: &str) -> Value {
    serde_json::from_str(&c.kubectl(&["get", "job", name, "-o", "json"]).ok().stdout)
        .expect("job JSON")
}

fn condition<'a>(job: &'a Value, kind: &str) -> Option<&'a Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

/// Waits up to `secs` for the Job's condition `kind` to be True.
fn await_condition(c: &TestCluster, name: &str, kind: &str, secs: u64) {
    assert!(
        eventually(Duration::from_secs(secs), || condition(&job(c, name), kind)
            .is_some()),
        "no {kind} condition: {}",
        job(c, name)
    );
}

fn running_pods(c: &TestCluster, job: &str) -> usize {
    c.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("job-name={job}"),
        "--field-selector=status.phase=Running",
        "-o",
        "name",
    ])
    .stdout
    .lines()
    .count()
}

#[test]
fn sleepy_completes_one_of_one() {
    let _serial = serial();
    let c = TestCluster::start();
    let f = c.file("job.yaml", SLEEPY_JOB);
    assert_eq!(
        c.kubectl(&["create", "-f", &f]).ok().stdout.trim(),
        "job.batch/sleepy created"
    );
    await_condition(&c, "sleepy", "Complete", 60);
    let j = job(&c, "sleepy");
    assert_eq!(j["status"]["succeeded"], 1);
    assert!(
        condition(&j, "SuccessCriteriaMet").is_some(),
        "interim condition kept: {j}"
    );
    assert_eq!(
        condition(&j, "Complete").map(|c| c["reason"].clone()),
        Some(Value::from("CompletionsReached"))
    );
    assert!(j["status"]["completionTime"].is_string());
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
    assert_eq!(&row[..3], ["sleepy", "Complete", "1/1"]);
    let described = c.kubectl(&["describe", "jobs.batch", "sleepy"]).ok();
    assert!(
        described
            .stdout
            .contains("0 Active (0 Ready) / 1 Succeeded / 0 Failed"),
        "{}",
        described.stdout
    );
    assert!(
        described.stdout.contains("SuccessfulCreate") && described.stdout.contains("Completed"),
        "{}",
        described.stdout
    );
    let pods = c.kubectl(&["get", "pods"]).ok();
    assert!(
        pods.stdout
            .lines()
            .any(|l| l.starts_with("sleepy-") && l.contains("Completed")),
        "{}",
        pods.stdout
    );
    assert_eq!(
        c.kubectl(&["delete", "jobs.batch", "sleepy"])
            .ok()
            .stdout
            .trim(),
        "job.batch \"sleepy\" deleted"
    );
}

#[test]
fn completions_five_run_one_after_another() {
    let _serial = serial();
    let c = TestCluster::start();
    let f = c.file("job.yaml", &with_spec("  completions: 5\n"));
    c.kubectl(&["create", "-f", &f]).ok();
    let mut most = 0;
    let done = eventually(Duration::from_secs(120), || {
        most = most.max(running_pods(&c, "sleepy"));
        condition(&job(&c, "sleepy"), "Complete").is_some()
    });
    assert!(done, "{}", job(&c, "sleepy"));
    assert!(most <= 1, "never more than one at a time, saw {most}");
    assert_eq!(job(&c, "sleepy")["status"]["succeeded"], 5);
    let table = c.kubectl(&["get", "jobs"]).ok();
    assert!(table.stdout.contains("5/5"), "{}", table.stdout);
}

#[test]
fn parallelism_two_never_runs_more_than_two() {
    let _serial = serial();
    let c = TestCluster::start();
    let f = c.file(
        "job.yaml",
        &with_spec("  completions: 5\n  parallelism: 2\n"),
    );
    c.kubectl(&["create", "-f", &f]).ok();
    let mut most = 0;
    let done = eventually(Duration::from_secs(90), || {
        let active = job(&c, "sleepy")["status"]["active"].as_i64().unwrap_or(0) as usize;
        most = most.max(running_pods(&c, "sleepy")).max(active);
        condition(&job(&c, "sleepy"), "Complete").is_some()
    });
    assert!(done, "{}", job(&c, "sleepy"));
    assert_eq!(most, 2, "two at a time");
    assert_eq!(job(&c, "sleepy")["status"]["succeeded"], 5);
}

#[test]
fn active_deadline_fails_the_job_with_deadline_exceeded() {
    let _serial = serial();
    let c = TestCluster::start();
    let manifest = with_spec("  completions: 5\n  parallelism: 2\n  activeDeadlineSeconds: 15\n")
        .replace("args: [\"3\"]", "args: [\"5\"]");
    let f = c.file("job.yaml", &manifest);
    c.kubectl(&["create", "-f", &f]).ok();
    await_condition(&c, "sleepy", "Failed", 60);
    let j = job(&c, "sleepy");
    let failed = condition(&j, "Failed").expect("Failed");
    assert_eq!(failed["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["message"],
        "Job was active longer than specified deadline"
    );
    // The lab sees "about 3/5". Here pods start in milliseconds, so the fifth pod ends about
    // 15.2 s after creation, right at the deadline: the deadline's kill usually wins (4/5),
    // but it can land late enough that the fifth pod finishes first. Either way the work ran
    // and the Job failed on its deadline.
    let succeeded = j["status"]["succeeded"].as_i64().unwrap_or(0);
    assert!(
        succeeded >= 2,
        "pods ran before the deadline, got {succeeded}"
    );
    assert!(
        j["status"].get("completionTime").is_none_or(Value::is_null),
        "no completionTime on failure"
    );
    assert!(
        eventually(Duration::from_secs(20), || running_pods(&c, "sleepy") == 0),
        "active pods are stopped"
    );
}

#[test]
fn backoff_limit_one_fails_after_two_failures() {
    let _serial = serial();
    let c = TestCluster::start();
    let manifest = with_spec("  backoffLimit: 1\n").replace(
        "command: [\"/bin/sleep\"]\n        args: [\"3\"]",
        "command: [\"sh\", \"-c\", \"exit 1\"]",
    );
    let f = c.file("job.yaml", &manifest);
    c.kubectl(&["create", "-f", &f]).ok();
    await_condition(&c, "sleepy", "Failed", 60);
    let j = job(&c, "sleepy");
    assert_eq!(
        condition(&j, "Failed").map(|c| c["reason"].clone()),
        Some(Value::from("BackoffLimitExceeded"))
    );
    assert_eq!(j["status"]["failed"], 2);
    let table = c.kubectl(&["get", "jobs"]).ok();
    assert!(
        table
            .stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("Failed") && l.contains("0/1")),
        "{}",
        table.stdout
    );
}

#[test]
fn python_foreground_delete_removes_the_pods_before_the_job() {
    let _serial = serial();
    let c = TestCluster::start();
    // The article's program, with a long-running container so the Job has a live pod.
    let out = c.python(
        r#"
import time
from kubernetes import client, config
config.load_kube_config()
batch = client.BatchV1Api(); core = client.CoreV1Api()
container = client.V1Container(name="pi", image="perl", command=["sleep", "60"])
template = client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "pi"}), spec=client.V1PodSpec(restart_policy="Never", containers=[container]))
job = client.V1Job(api_version="batch/v1", kind="Job", metadata=client.V1ObjectMeta(name="pi"), spec=client.V1JobSpec(template=template, backoff_limit=4))
batch.create_namespaced_job(body=job, namespace="default")
deadline = time.time() + 30
while not [p for p in core.list_namespaced_pod("default", label_selector="job-name=pi").items if p.status.phase == "Running"]:
    assert time.time() < deadline, "pod never ran"
    time.sleep(0.2)
batch.patch_namespaced_job(name="pi", namespace="default", body=job)
batch.delete_namespaced_job(name="pi", namespace="default", body=client.V1DeleteOptions(propagation_policy="Foreground", grace_period_seconds=5))
while time.time() < deadline + 30:
    try:
        j = batch.read_namespaced_job("pi", "default")
        assert "foregroundDeletion" in (j.metadata.finalizers or []), j.metadata.finalizers
    except client.rest.ApiException as e:
        assert e.status == 404
        # Once the Job is gone, its pods must already be gone.
        pods = core.list_namespaced_pod("default", label_selector="job-name=pi").items
        assert not pods, "the Job went before its pods"
        print("OK")
        break
    time.sleep(0.1)
"#,
    );
    assert!(out.stdout.contains("OK"), "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn deleting_a_job_without_a_policy_orphans_its_pods_with_a_warning() {
    let _serial = serial();
    let c = TestCluster::start();
    let manifest = SLEEPY_JOB.replace("args: [\"3\"]", "args: [\"30\"]");
    let f = c.file("job.yaml", &manifest);
    c.kubectl(&["create", "-f", &f]).ok();
    assert!(
        eventually(Duration::from_secs(30), || running_pods(&c, "sleepy") == 1),
        "the pod never ran"
    );
    // A bare DELETE (no body, no propagationPolicy) of a batch/v1 Job orphans, as upstream.
    let deleted = c
        .curl_admin(&[
            "-i",
            "-X",
            "DELETE",
            &format!("{}/apis/batch/v1/namespaces/default/jobs/sleepy", c.url),
        ])
        .ok();
    // (HTTP/2 spells header names in lower case.)
    let warning = "warning: 299 - \"child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning\"";
    assert!(
        deleted
            .stdout
            .lines()
            .any(|l| l.trim_end().eq_ignore_ascii_case(warning)),
        "{}",
        deleted.stdout
    );
    assert!(
        eventually(Duration::from_secs(10), || c
            .kubectl(&["get", "job", "sleepy"])
            .fails()
            .stderr
            .contains("NotFound")),
        "the Job is gone"
    );
    // Its pod lives on, with neither the owner reference nor the tracking finalizer.
    let pod_of = || -> Value {
        let list = c
            .kubectl(&["get", "pods", "-l", "job-name=sleepy", "-o", "json"])
            .ok()
            .stdout;
        serde_json::from_str::<Value>(&list).expect("pod list")["items"][0].clone()
    };
    assert!(
        eventually(Duration::from_secs(10), || {
            let pod = pod_of();
            pod["metadata"]["ownerReferences"].is_null()
                && pod["metadata"]["finalizers"].is_null()
                && pod["status"]["phase"] == "Running"
        }),
        "{}",
        pod_of()
    );
}

/// An Indexed Job whose index 1 always fails, with `backoffLimitPerIndex: 0`.
const INDEXED_JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: shards
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  backoffLimitPerIndex: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: shard
        image: busybox
        command: [\"sh\", \"-c\", \"echo index=$JOB_COMPLETION_INDEX host=$(hostname); [ $JOB_COMPLETION_INDEX != 1 ]\"]
";

#[test]
fn indexed_job_runs_each_index_and_fails_the_index_out_of_its_budget() {
    let _serial = serial();
    let c = TestCluster::start();
    let f = c.file("indexed.yaml", INDEXED_JOB);
    c.kubectl(&["create", "-f", &f]).ok();
    await_condition(&c, "shards", "Failed", 60);
    let j = job(&c, "shards");
    let failed = condition(&j, "Failed").expect("Failed");
    assert_eq!(failed["reason"], "FailedIndexes");
    assert_eq!(failed["message"], "Job has failed indexes");
    assert_eq!(j["status"]["completedIndexes"], "0,2");
    assert_eq!(j["status"]["failedIndexes"], "1");
    assert_eq!(j["status"]["succeeded"], 2);
    assert_eq!(j["status"]["failed"], 1);
    // Each pod saw its own index, through the env var and its hostname.
    for i in 0..3 {
        let pods = c
            .kubectl(&[
                "get",
                "pods",
                "-l",
                &format!("job-name=shards,batch.kubernetes.io/job-completion-index={i}"),
                "-o",
                "name",
            ])
            .ok()
            .stdout;
        let pod = pods.lines().next().expect("a pod per index").to_string();
        assert!(pod.starts_with(&format!("pod/shards-{i}-")), "{pod}");
        let logs = c.kubectl(&["logs", &pod]).ok().stdout;
        assert_eq!(logs.trim(), format!("index={i} host=shards-{i}"), "{pod}");
    }
}

#[test]
fn pod_creation_refused_by_admission_is_retried_until_it_succeeds() {
    let _serial = serial();
    let c = TestCluster::start();
    // The Job's pods name a service account that does not exist yet: admission refuses them.
    let manifest = SLEEPY_JOB
        .replace("args: [\"3\"]", "args: [\"1\"]")
        .replace(
            "    spec:\n      containers:",
            "    spec:\n      serviceAccountName: late\n      containers:",
        );
    assert!(manifest.contains("serviceAccountName: late"), "{manifest}");
    let f = c.file("job.yaml", &manifest);
    c.kubectl(&["create", "-f", &f]).ok();
    assert!(
        eventually(Duration::from_secs(20), || {
            let described = c.kubectl(&["describe", "job", "sleepy"]).ok().stdout;
            described.contains("FailedCreate")
                && described.contains("serviceaccount \"late\" not found")
        }),
        "{}",
        c.kubectl(&["describe", "job", "sleepy"]).stdout
    );
    // Once the account exists, a retry (with back-off, nothing else wakes the Job) succeeds.
    c.kubectl(&["create", "serviceaccount", "late"]).ok();
    await_condition(&c, "sleepy", "Complete", 90);
}

#[test]
fn many_similar_events_fold_into_one_in_describe_as_on_a_real_cluster() {
    let _serial = serial();
    let c = TestCluster::start();
    let manifest = with_spec("  completions: 12\n  parallelism: 12\n")
        .replace("args: [\"3\"]", "args: [\"0\"]");
    let f = c.file("job.yaml", &manifest);
    c.kubectl(&["create", "-f", &f]).ok();
    await_condition(&c, "sleepy", "Complete", 60);
    // Nine SuccessfulCreate Events of their own, then one that counts the other three.
    let described = c.kubectl(&["describe", "job", "sleepy"]).ok().stdout;
    let creates: Vec<&str> = described
        .lines()
        .filter(|l| l.contains("SuccessfulCreate"))
        .collect();
    assert_eq!(creates.len(), 10, "{described}");
    assert!(
        creates.iter().any(|l| l.contains("(x3 over ")
            && l.contains("(combined from similar events): Created pod: sleepy-")),
        "{described}"
    );
}
