//! CronJobs happen: the training lab's CronJob exercise with its batch/v1beta1 manifest as
//! written, `kubectl create job --from=cronjob/…`, and a Job cleaned up by its
//! `ttlSecondsAfterFinished`, against the real server, controllers and node agent in real
//! time. One server for all of it, so the two-minute schedule is waited for once.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{SLEEPY_CRONJOB, TestCluster, eventually, headers};

/// The lab's next step: the same CronJob with `sleep 30` and a pod-level
/// `activeDeadlineSeconds: 10`, so every pod it runs is stopped after ten seconds.
fn deadline_cronjob() -> String {
    SLEEPY_CRONJOB
        .replace("args: [\"3\"]", "args: [\"30\"]")
        .replace(
            "        spec:\n          containers:",
            "        spec:\n          activeDeadlineSeconds: 10\n          containers:",
        )
}

/// A Job that removes itself two seconds after it finishes.
const BRIEF_JOB: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: brief
spec:
  ttlSecondsAfterFinished: 2
  template:
    spec:
      containers:
      - name: resting
        image: busybox
        command: [\"/bin/sleep\"]
        args: [\"1\"]
      restartPolicy: Never
";

fn json(c: &TestCluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl(&all).ok().stdout).expect("kubectl JSON")
}

fn complete(job: &Value) -> bool {
    job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
    })
}

/// Seconds since the epoch of an RFC 3339 time (GNU `date`).
fn unix_seconds(rfc3339: &str) -> i64 {
    let out = Command::new("date")
        .args(["-u", "-d", rfc3339, "+%s"])
        .output()
        .expect("run date");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("date prints seconds")
}

/// The `sleepy-…` Jobs, once the schedule has made one (within two minutes and a little).
fn first_scheduled_jobs(c: &TestCluster) -> Vec<Value> {
    let mut scheduled = Vec::new();
    assert!(
        eventually(Duration::from_secs(130), || {
            scheduled = jobs_named(c, "sleepy-");
            !scheduled.is_empty()
        }),
        "no Job from the schedule: {}",
        c.kubectl(&["get", "jobs"]).stdout
    );
    scheduled
}

/// `kubectl get jobs` shows `name` with these COMPLETIONS.
fn assert_job_row(c: &TestCluster, name: &str, completions: &str) {
    let jobs = c.kubectl(&["get", "jobs"]).ok();
    assert!(
        jobs.stdout
            .lines()
            .any(|l| l.starts_with(name) && l.contains(completions)),
        "{}",
        jobs.stdout
    );
}

/// Waits until no Job or pod whose `kind/name` contains one of `parts` is left.
fn assert_all_gone(c: &TestCluster, parts: &[&str]) {
    let leftovers = || {
        let jobs = c.kubectl(&["get", "jobs", "-o", "name"]).ok().stdout;
        let pods = c.kubectl(&["get", "pods", "-o", "name"]).ok().stdout;
        jobs.lines()
            .chain(pods.lines())
            .filter(|n| parts.iter().any(|p| n.contains(p)))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(30), || leftovers().is_empty()),
        "left behind: {:?}",
        leftovers()
    );
}

/// The Jobs whose names start with `prefix`.
fn jobs_named(c: &TestCluster, prefix: &str) -> Vec<Value> {
    json(c, &["get", "jobs"])["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|j| {
                    j["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// A background `kubectl get job NAME -w --output-watch-events -o json`, each line stamped
/// with the time it arrived.
fn watch_job(
    c: &TestCluster,
    name: &str,
) -> (std::process::Child, mpsc::Receiver<(Instant, String)>) {
    let mut child = c.kubectl_spawn(&[
        "get",
        "job",
        name,
        "-w",
        "--output-watch-events",
        "-o",
        "json",
    ]);
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Splits a stream of pretty-printed JSON objects (one per watch event) into values, each
/// with the time its last line arrived.
fn watch_events(
    rx: &mpsc::Receiver<(Instant, String)>,
    until: impl Fn(&Value) -> bool,
    timeout: Duration,
) -> Vec<(Instant, Value)> {
    let deadline = Instant::now() + timeout;
    let mut events = Vec::new();
    let mut buf = String::new();
    while let Ok((at, line)) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        buf.push_str(&line);
        buf.push('\n');
        if let Ok(v) = serde_json::from_str::<Value>(&buf) {
            buf.clear();
            let done = until(&v);
            events.push((at, v));
            if done {
                break;
            }
        }
    }
    events
}

#[test]
fn sleepy_cronjob_runs_every_two_minutes_and_finished_jobs_expire() {
    let c = TestCluster::start();

    // The lab's manifest, as written.
    let f = c.file("cronjob.yaml", SLEEPY_CRONJOB);
    let created = c.kubectl(&["create", "-f", &f]).ok();
    assert_eq!(created.stdout.trim(), "cronjob.batch/sleepy created");
    assert!(
        created.stderr.contains(
            "Warning: batch/v1beta1 CronJob is deprecated in v1.21+, unavailable in v1.25+; use batch/v1 CronJob"
        ),
        "{}",
        created.stderr
    );
    let table = c.kubectl(&["get", "cronjobs.batch"]).ok();
    assert_eq!(
        headers(&table.stdout),
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ]
    );
    let row: Vec<&str> = table
        .stdout
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..10],
        [
            "sleepy", "*/2", "*", "*", "*", "*", "<none>", "False", "0", "<none>"
        ],
        "{}",
        table.stdout
    );
    let cronjob = json(&c, &["get", "cronjob", "sleepy"]);
    let cronjob_uid = cronjob["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();

    // While the schedule is pending: a Job made from the CronJob by hand...
    let manual = c
        .kubectl(&["create", "job", "manual", "--from=cronjob/sleepy"])
        .ok();
    assert_eq!(manual.stdout.trim(), "job.batch/manual created");
    let m = json(&c, &["get", "job", "manual"]);
    assert_eq!(
        m["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    let owner = &m["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "CronJob");
    assert_eq!(owner["name"], "sleepy");
    assert_eq!(owner["uid"], cronjob_uid.as_str());
    assert_eq!(owner["controller"], true);

    // ...and a Job that cleans itself up two seconds after it finishes.
    let f = c.file("brief.yaml", BRIEF_JOB);
    c.kubectl(&["create", "-f", &f]).ok();
    let (mut watch, rx) = watch_job(&c, "brief");
    let events = watch_events(&rx, |e| e["type"] == "DELETED", Duration::from_secs(60));
    let _ = watch.kill();
    let _ = watch.wait();
    let completed_at = events
        .iter()
        .find(|(_, e)| complete(&e["object"]))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("brief never completed: {events:?}"));
    let (deleting_at, deleting) = events
        .iter()
        .find(|(_, e)| e["object"]["metadata"]["deletionTimestamp"].is_string())
        .unwrap_or_else(|| panic!("brief was never deleted: {events:?}"));
    assert!(
        *deleting_at >= completed_at + Duration::from_millis(500),
        "deleted {:?} after completing, before its TTL",
        deleting_at.duration_since(completed_at)
    );
    assert_eq!(
        deleting["object"]["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"]),
        "TTL deletion is in the foreground"
    );
    assert!(
        events.iter().any(|(_, e)| e["type"] == "DELETED"),
        "{events:?}"
    );
    assert!(
        c.kubectl(&["get", "job", "brief"])
            .fails()
            .stderr
            .contains("NotFound"),
        "brief is gone"
    );
    assert!(
        eventually(Duration::from_secs(20), || complete(&json(
            &c,
            &["get", "job", "manual"]
        ))),
        "the manual Job completes"
    );

    // The scheduled Job: within two minutes (and a little) of the CronJob's creation.
    let scheduled = first_scheduled_jobs(&c);
    let job = &scheduled[0];
    let name = job["metadata"]["name"].as_str().expect("name").to_string();
    let stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        .as_str()
        .expect("scheduled-timestamp annotation")
        .to_string();
    let seconds = unix_seconds(&stamp);
    assert_eq!(seconds % 120, 0, "*/2 fires on even minutes: {stamp}");
    assert_eq!(
        name,
        format!("sleepy-{}", seconds / 60),
        "name is the scheduled minute"
    );
    let owner = &job["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "CronJob");
    assert_eq!(owner["uid"], cronjob_uid.as_str());
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    assert!(
        eventually(Duration::from_secs(30), || complete(&json(
            &c,
            &["get", "job", &name]
        ))),
        "{}",
        json(&c, &["get", "job", &name])
    );
    assert_job_row(&c, &name, "1/1");

    // The CronJob saw it finish: nothing active, both times recorded.
    assert!(
        eventually(Duration::from_secs(10), || {
            let cj = json(&c, &["get", "cronjob", "sleepy"]);
            cj["status"]["active"].is_null() && cj["status"]["lastSuccessfulTime"].is_string()
        }),
        "{}",
        json(&c, &["get", "cronjob", "sleepy"])
    );
    let cj = json(&c, &["get", "cronjob", "sleepy"]);
    assert_eq!(cj["status"]["lastScheduleTime"], stamp.as_str());
    let table = c.kubectl(&["get", "cronjobs"]).ok();
    let row: Vec<&str> = table
        .stdout
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(&row[7..9], ["False", "0"], "{}", table.stdout);
    assert_ne!(row[9], "<none>", "LAST SCHEDULE is set: {}", table.stdout);
    let described = c.kubectl(&["describe", "cronjob", "sleepy"]).ok().stdout;
    assert!(
        described.contains(&format!("Created job {name}"))
            && described.contains("SawCompletedJob")
            && described.contains("UnexpectedJob"),
        "{described}"
    );

    // Deleting the CronJob takes its Jobs and their pods with it.
    assert_eq!(
        c.kubectl(&["delete", "cronjobs.batch", "sleepy"])
            .ok()
            .stdout
            .trim(),
        "cronjob.batch \"sleepy\" deleted"
    );
    assert_all_gone(&c, &["/sleepy-", "/manual"]);
}

/// The lab's next step, on its own server so its two-minute wait overlaps the other test's:
/// the CronJob's pods are stopped by their `activeDeadlineSeconds`, the Job stays 0/1 and
/// active, and deleting the CronJob takes everything with it.
#[test]
fn cron_pods_past_their_active_deadline_are_terminated() {
    let c = TestCluster::start();
    let f = c.file("cronjob.yaml", &deadline_cronjob());
    let created = c.kubectl(&["create", "-f", &f]).ok();
    assert_eq!(created.stdout.trim(), "cronjob.batch/sleepy created");

    let scheduled = first_scheduled_jobs(&c);
    let name = scheduled[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let failed_pod = || -> Option<Value> {
        let pods = json(&c, &["get", "pods", "-l", &format!("job-name={name}")]);
        pods["items"]
            .as_array()?
            .iter()
            .find(|p| p["status"]["phase"] == "Failed")
            .cloned()
    };
    let mut pod = None;
    assert!(
        eventually(Duration::from_secs(30), || {
            pod = failed_pod();
            pod.is_some()
        }),
        "no pod was stopped: {}",
        c.kubectl(&["get", "pods", "-o", "wide"]).stdout
    );
    let pod = pod.expect("failed pod");
    assert_eq!(pod["status"]["reason"], "DeadlineExceeded", "{pod}");
    assert_eq!(
        pod["status"]["message"], "Pod was active on the node longer than the specified deadline",
        "{pod}"
    );
    let started = unix_seconds(pod["status"]["startTime"].as_str().expect("startTime"));
    let finished = pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
        .as_str()
        .map(unix_seconds)
        .expect("finishedAt");
    let ran = finished - started;
    assert!((9..=14).contains(&ran), "ran {ran}s, not about 10s: {pod}");

    // The Job retries and is not done (0/1); the CronJob counts it as active.
    assert_job_row(&c, &name, "0/1");
    assert!(
        eventually(Duration::from_secs(10), || {
            let table = c.kubectl(&["get", "cronjobs.batch"]).ok().stdout;
            table.lines().nth(1).is_some_and(|row| {
                let cols: Vec<&str> = row.split_whitespace().collect();
                cols.get(7..9) == Some(&["False", "1"][..])
            })
        }),
        "{}",
        c.kubectl(&["get", "cronjobs.batch"]).stdout
    );

    c.kubectl(&["delete", "cronjobs.batch", "sleepy"]).ok();
    assert_all_gone(&c, &["/sleepy-"]);
}
