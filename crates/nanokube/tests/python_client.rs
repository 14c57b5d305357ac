//! The official Python `kubernetes` client against nanokube: CRUD, selectors, watch and all
//! three patch types, with TLS verified against the cluster CA.

mod support;

use support::TestCluster;

const PRELUDE: &str = r#"
import sys, json
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
config.load_kube_config()
core = client.CoreV1Api()
batch = client.BatchV1Api()
def expect(cond, msg):
    if not cond:
        print("FAILED:", msg); sys.exit(1)
"#;

fn run(c: &TestCluster, body: &str) {
    let out = c.python(&format!("{PRELUDE}\n{body}\nprint('OK')\n"));
    assert!(
        out.status == 0 && out.stdout.contains("OK"),
        "python failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

#[test]
fn python_client_creates_lists_patches_and_deletes_jobs() {
    let c = TestCluster::start();
    run(
        &c,
        r#"
container = client.V1Container(name="pi", image="perl", command=["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"])
template = client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "pi"}),
                                    spec=client.V1PodSpec(restart_policy="Never", containers=[container]))
job = client.V1Job(api_version="batch/v1", kind="Job", metadata=client.V1ObjectMeta(name="pi"),
                   spec=client.V1JobSpec(template=template, backoff_limit=4))
created = batch.create_namespaced_job(body=job, namespace="default")
expect(created.spec.backoff_limit == 4, "backoffLimit kept")
expect(created.spec.selector.match_labels["batch.kubernetes.io/controller-uid"] == created.metadata.uid, "selector generated")
jobs = batch.list_namespaced_job("default")
expect([j.metadata.name for j in jobs.items] == ["pi"], "listed")
jobs.items[0].status
job.spec.template.spec.containers[0].image = "perl"
patched = batch.patch_namespaced_job(name="pi", namespace="default", body=job)
expect(patched.metadata.name == "pi", "strategic patch of a whole object")
status = batch.delete_namespaced_job(name="pi", namespace="default", body=client.V1DeleteOptions(propagation_policy="Background"))
# Client v37 declares this call's result as a plain object; older ones as V1Status.
outcome = status["status"] if isinstance(status, dict) else status.status
expect(outcome == "Success", "delete returns a Success status")
try:
    batch.read_namespaced_job("pi", "default")
    expect(False, "job should be gone")
except ApiException as e:
    expect(e.status == 404, "404 after delete")
    body = json.loads(e.body)
    expect(body["message"] == 'jobs.batch "pi" not found', body["message"])
"#,
    );
}

#[test]
fn python_client_uses_selectors_and_all_three_patch_types() {
    let c = TestCluster::start();
    run(
        &c,
        r#"
for name, tier in [("a", "web"), ("b", "db"), ("c", "web")]:
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"tier": tier}), data={"k": name}))
names = sorted(cm.metadata.name for cm in core.list_namespaced_config_map("default", label_selector="tier=web").items)
expect(names == ["a", "c"], names)
names = sorted(cm.metadata.name for cm in core.list_namespaced_config_map("default", label_selector="tier in (db)").items)
expect(names == ["b"], names)
names = [cm.metadata.name for cm in core.list_namespaced_config_map("default", field_selector="metadata.name=c").items]
expect(names == ["c"], names)
core.patch_namespaced_config_map("a", "default", [{"op": "replace", "path": "/data/k", "value": "json"}])
expect(core.read_namespaced_config_map("a", "default").data["k"] == "json", "json patch")
core.patch_namespaced_config_map("a", "default", {"data": {"s": "strategic"}})
expect(core.read_namespaced_config_map("a", "default").data["s"] == "strategic", "strategic merge patch")
core.patch_namespaced_config_map("a", "default", {"data": {"m": "merge", "s": None}}, _content_type="application/merge-patch+json")
cm = core.read_namespaced_config_map("a", "default")
expect(cm.data.get("m") == "merge" and "s" not in cm.data, cm.data)
try:
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a")))
    expect(False, "duplicate create must fail")
except ApiException as e:
    expect(e.status == 409 and json.loads(e.body)["reason"] == "AlreadyExists", e.body)
"#,
    );
}

#[test]
fn python_client_watch_sees_added_modified_deleted() {
    let c = TestCluster::start();
    run(
        &c,
        r#"
import threading, time
def mutate():
    time.sleep(1)
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"), data={"a": "1"}))
    core.patch_namespaced_config_map("w", "default", {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", "default")
t = threading.Thread(target=mutate); t.start()
seen = []
w = watch.Watch()
rv = core.list_namespaced_config_map("default").metadata.resource_version
for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10):
    if ev["object"].metadata.name == "w":
        seen.append(ev["type"])
    if len(seen) == 3:
        w.stop()
t.join()
expect(seen == ["ADDED", "MODIFIED", "DELETED"], seen)
"#,
    );
}
