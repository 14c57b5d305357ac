//! Raw HTTPS requests with curl: discovery documents, Status errors for bad input, paging and
//! watch streams, exactly as clients see them on the wire.

mod support;

use serde_json::{Value, json};
use support::TestCluster;

fn body_json(run: &support::Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

/// `curl -w` appends the status code on its own line; split it off.
fn with_code(run: support::Run) -> (u16, String) {
    let out = run.ok().stdout;
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn discovery_documents_carry_the_fields_clients_require() {
    let c = TestCluster::start();
    let api = body_json(&c.curl_admin(&[&format!("{}/api", c.url)]).ok());
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    assert_eq!(
        api["serverAddressByClientCIDRs"][0]["clientCIDR"],
        "0.0.0.0/0"
    );
    let apis = body_json(&c.curl_admin(&[&format!("{}/apis", c.url)]).ok());
    assert_eq!(apis["kind"], "APIGroupList");
    let v1 = body_json(&c.curl_admin(&[&format!("{}/api/v1", c.url)]).ok());
    assert_eq!(v1["kind"], "APIResourceList");
    assert!(
        v1["resources"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["name"] == "pods/status"))
    );
}

#[test]
fn unknown_paths_get_go_plain_404() {
    let c = TestCluster::start();
    let (code, body) = with_code(c.curl_admin(&[
        "-w",
        "\n%{http_code}",
        &format!("{}/apis/nope/v1/things", c.url),
    ]));
    assert_eq!((code, body.trim()), (404, "404 page not found"));
    let (code, _) = with_code(c.curl_admin(&[
        "-w",
        "\n%{http_code}",
        &format!("{}/api/v1/namespaces/default/widgets", c.url),
    ]));
    assert_eq!(code, 404);
}

#[test]
fn anonymous_requests_reach_health_but_not_resources() {
    let c = TestCluster::start();
    let (code, body) =
        with_code(c.curl_anonymous(&["-w", "\n%{http_code}", &format!("{}/readyz", c.url)]));
    assert_eq!((code, body.as_str()), (200, "ok"));
    let verbose = c
        .curl_anonymous(&[&format!("{}/readyz?verbose", c.url)])
        .ok();
    assert!(
        verbose.stdout.contains("[+]ping ok") && verbose.stdout.contains("readyz check passed"),
        "{}",
        verbose.stdout
    );
    let (code, body) = with_code(c.curl_anonymous(&[
        "-w",
        "\n%{http_code}",
        &format!("{}/api/v1/namespaces", c.url),
    ]));
    assert_eq!(code, 403);
    let status: Value = serde_json::from_str(&body).expect("Status");
    assert_eq!(
        status["message"],
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    assert_eq!(status["reason"], "Forbidden");
}

#[test]
fn malformed_and_oversized_bodies_get_status_errors() {
    let c = TestCluster::start();
    let url = format!("{}/api/v1/namespaces/default/configmaps", c.url);
    let (code, body) = with_code(c.curl_admin(&[
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{not json",
        &url,
    ]));
    assert_eq!(code, 400);
    let s: Value = serde_json::from_str(&body).expect("Status");
    assert_eq!(
        (s["kind"].as_str(), s["reason"].as_str()),
        (Some("Status"), Some("BadRequest"))
    );

    let (code, body) = with_code(c.curl_admin(&[
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/yaml",
        "--data-binary",
        "a: [unclosed",
        &url,
    ]));
    assert_eq!(code, 400, "{body}");

    let big = c.path("big.json");
    let payload = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"x": "a".repeat(4 * 1024 * 1024)}});
    std::fs::write(&big, payload.to_string()).expect("write");
    let (code, body) = with_code(c.curl_admin(&[
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &format!("@{}", big.display()),
        &url,
    ]));
    assert_eq!(code, 413, "{body}");
    let s: Value = serde_json::from_str(&body).expect("Status");
    assert_eq!(s["reason"], "RequestEntityTooLarge");

    let (code, body) = with_code(c.curl_admin(&[
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"x"}}"#,
        &url,
    ]));
    assert_eq!(code, 400);
    assert!(
        body.contains(
            "the API version in the data (batch/v1) does not match the expected API version (v1)"
        ),
        "{body}"
    );
}

#[test]
fn create_in_a_missing_namespace_is_not_found() {
    let c = TestCluster::start();
    let (code, body) = with_code(c.curl_admin(&[
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
        &format!("{}/api/v1/namespaces/ghost/configmaps", c.url),
    ]));
    assert_eq!(code, 404);
    let s: Value = serde_json::from_str(&body).expect("Status");
    assert_eq!(s["message"], "namespaces \"ghost\" not found");
}

#[test]
fn lists_page_with_limit_and_continue() {
    let c = TestCluster::start();
    for i in 0..5 {
        c.kubectl(&["create", "configmap", &format!("page-{i}")])
            .ok();
    }
    let url = format!("{}/api/v1/namespaces/default/configmaps?limit=2", c.url);
    let first = body_json(&c.curl_admin(&[&url]).ok());
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    assert!(
        first["metadata"]["remainingItemCount"]
            .as_i64()
            .is_some_and(|n| n >= 3)
    );
    let mut names: Vec<String> = first["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    let mut token = Some(token);
    while let Some(t) = token {
        let page = body_json(&c.curl_admin(&[&format!("{url}&continue={t}")]).ok());
        names.extend(
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string()),
        );
        token = page["metadata"]["continue"].as_str().map(str::to_string);
    }
    let pages: Vec<&String> = names.iter().filter(|n| n.starts_with("page-")).collect();
    assert_eq!(pages, ["page-0", "page-1", "page-2", "page-3", "page-4"]);
}

#[test]
fn watch_resumes_from_a_resource_version_and_reports_each_change() {
    let c = TestCluster::start();
    c.kubectl(&["create", "configmap", "w1"]).ok();
    let list = body_json(
        &c.curl_admin(&[&format!("{}/api/v1/namespaces/default/configmaps", c.url)])
            .ok(),
    );
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    c.kubectl(&["label", "cm", "w1", "x=y"]).ok();
    c.kubectl(&["delete", "cm", "w1"]).ok();
    let out = c
        .curl_admin(&[&format!("{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=2", c.url)])
        .ok();
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["MODIFIED", "DELETED"], "{}", out.stdout);
    assert_eq!(events[0]["object"]["metadata"]["labels"]["x"], "y");
    assert_eq!(events[0]["object"]["kind"], "ConfigMap");
}

#[test]
fn watch_without_resource_version_starts_with_the_current_state() {
    let c = TestCluster::start();
    c.kubectl(&["create", "configmap", "present"]).ok();
    let out = c
        .curl_admin(&[&format!("{}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Dpresent", c.url)])
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let ev: Value = serde_json::from_str(lines[0]).expect("event");
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("present"))
    );
}

#[test]
fn unsupported_field_selectors_are_rejected() {
    let c = TestCluster::start();
    let (code, body) = with_code(c.curl_admin(&[
        "-w",
        "\n%{http_code}",
        &format!(
            "{}/api/v1/namespaces/default/configmaps?fieldSelector=spec.nope%3D1",
            c.url
        ),
    ]));
    assert_eq!(code, 400);
    assert!(
        body.contains("field label not supported: spec.nope"),
        "{body}"
    );
}

#[test]
fn server_restart_keeps_objects_and_keys() {
    let mut c = TestCluster::start();
    c.kubectl(&["create", "configmap", "durable", "--from-literal=k=v"])
        .ok();
    let ca_before = std::fs::read(c.pki("ca.crt")).expect("ca");
    assert_eq!(c.stop(), Some(0), "SIGTERM exits cleanly");
    let data = c.data_dir();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nanokube"))
        .args(["server", "--data-dir"])
        .arg(&data)
        .args(["--secure-port", "0"])
        .env("NANOKUBE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("restart");
    let text = support::read_until(&mut child, std::time::Duration::from_secs(30), |t| {
        t.contains("export KUBECONFIG")
    });
    assert!(text.contains("export KUBECONFIG"), "{text}");
    let out = c.kubectl(&["get", "cm", "durable", "-o", "jsonpath={.data.k}"]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.ok().stdout, "v");
    assert_eq!(std::fs::read(c.pki("ca.crt")).expect("ca"), ca_before);
}

/// Sends `body` with `method` to `path` as the admin; returns the status code and the body.
fn call(
    c: &TestCluster,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let url = format!("{}{path}", c.url);
    let mut args = vec!["-w", "\n%{http_code}", "-X", method];
    let header = format!("Content-Type: {content_type}");
    if !body.is_empty() {
        args.extend(["-H", &header, "--data-binary", body]);
    }
    args.push(&url);
    with_code(c.curl_admin(&args))
}

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn yaml_bodies_and_generate_name_create_objects() {
    let c = TestCluster::start();
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\ndata:\n  k: v\n";
    let (code, body) = call(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/yaml",
        yaml,
    );
    assert_eq!(code, 201, "{body}");
    let cm = parsed(&body);
    let name = cm["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert!(
        name[4..]
            .chars()
            .all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch)),
        "{name}"
    );
    assert_eq!(cm["data"]["k"], "v");
    assert!(
        cm["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
}

#[test]
fn finalizers_hold_a_deleted_object_until_they_are_removed() {
    let c = TestCluster::start();
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","finalizers":["example.com/hold"]}}"#;
    assert_eq!(
        call(
            &c,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            cm
        )
        .0,
        201
    );
    let (code, body) = call(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/configmaps/held",
        "",
        "",
    );
    assert_eq!(code, 200, "{body}");
    let pending = parsed(&body);
    assert!(
        pending["metadata"]["deletionTimestamp"].is_string(),
        "{body}"
    );
    let (code, body) = call(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps/held",
        "",
        "",
    );
    assert_eq!(code, 200, "still there: {body}");
    // Adding a finalizer to an object being deleted is refused.
    let (code, body) = call(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/held",
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}"#,
    );
    assert_eq!(code, 422, "{body}");
    let (code, body) = call(
        &c,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/held",
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        call(
            &c,
            "GET",
            "/api/v1/namespaces/default/configmaps/held",
            "",
            ""
        )
        .0,
        404
    );
}

#[test]
fn deletecollection_removes_only_the_selected_objects() {
    let c = TestCluster::start();
    for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"tier": tier}}});
        assert_eq!(
            call(
                &c,
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                &cm.to_string()
            )
            .0,
            201
        );
    }
    let (code, body) = call(
        &c,
        "DELETE",
        "/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dweb",
        "",
        "",
    );
    assert_eq!(code, 200, "{body}");
    let (_, body) = call(&c, "GET", "/api/v1/namespaces/default/configmaps", "", "");
    let names: Vec<String> = parsed(&body)["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    let ours: Vec<&String> = names
        .iter()
        .filter(|n| ["a", "b", "c"].contains(&n.as_str()))
        .collect();
    assert_eq!(ours, ["c"]);
}

#[test]
fn status_and_spec_are_written_through_their_own_endpoints() {
    let c = TestCluster::start();
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
        "status": {"succeeded": 5}});
    let (code, body) = call(
        &c,
        "POST",
        "/apis/batch/v1/namespaces/default/jobs",
        "application/json",
        &job.to_string(),
    );
    assert_eq!(code, 201, "{body}");
    assert!(
        parsed(&body)["status"].get("succeeded").is_none(),
        "create clears status: {body}"
    );
    let base = "/apis/batch/v1/namespaces/default/jobs/j";
    let (code, body) = call(
        &c,
        "PATCH",
        base,
        "application/merge-patch+json",
        r#"{"status":{"succeeded":2}}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        parsed(&body)["status"].get("succeeded").is_none(),
        "main resource ignores status: {body}"
    );
    let (code, body) = call(
        &c,
        "PATCH",
        &format!("{base}/status"),
        "application/merge-patch+json",
        r#"{"status":{"succeeded":2},"spec":{"parallelism":9}}"#,
    );
    assert_eq!(code, 200, "{body}");
    let j = parsed(&body);
    assert_eq!(j["status"]["succeeded"], 2);
    assert_eq!(j["spec"]["parallelism"], 1, "status endpoint ignores spec");
    assert_eq!(
        j["metadata"]["generation"], 1,
        "status writes do not bump generation"
    );
    let (code, body) = call(
        &c,
        "PATCH",
        base,
        "application/merge-patch+json",
        r#"{"spec":{"parallelism":3}}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(parsed(&body)["metadata"]["generation"], 2);
    let (code, body) = call(
        &c,
        "PATCH",
        base,
        "application/strategic-merge-patch+json",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"other"}]}}}}"#,
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        parsed(&body)["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.template") && m.contains("field is immutable")),
        "{body}"
    );
}

#[test]
fn partial_object_metadata_and_aggregated_discovery_follow_the_accept_header() {
    let c = TestCluster::start();
    let pom = c
        .curl_admin(&[
            "-H",
            "Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            &format!("{}/api/v1/namespaces", c.url),
        ])
        .ok();
    let list = body_json(&pom);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert!(list["items"].as_array().is_some_and(|i| {
        i.iter()
            .all(|x| x["kind"] == "PartialObjectMetadata" && x.get("spec").is_none())
    }));
    let agg = c
        .curl_admin(&[
            "-i",
            "-H",
            "Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            &format!("{}/apis", c.url),
        ])
        .ok();
    assert!(
        agg.stdout.to_ascii_lowercase().contains(
            "content-type: application/json;g=apidiscovery.k8s.io;v=v2;as=apigroupdiscoverylist"
        ),
        "{}",
        agg.stdout
    );
    assert!(agg.stdout.contains("\"APIGroupDiscoveryList\""));
}

#[test]
fn watch_from_a_compacted_revision_gets_410_expired() {
    let c = TestCluster::start_with(&["--etcd-compaction-interval", "200ms"]);
    for i in 0..3 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("old-{i}")}});
        assert_eq!(
            call(
                &c,
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                &cm.to_string()
            )
            .0,
            201
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let out = c
        .curl_admin(&[&format!(
            "{}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=2",
            c.url
        )])
        .ok();
    let first: Value =
        serde_json::from_str(out.stdout.lines().next().unwrap_or("")).expect("an event");
    assert_eq!(first["type"], "ERROR", "{}", out.stdout);
    assert_eq!(first["object"]["code"], 410);
    assert_eq!(first["object"]["reason"], "Expired");
    assert!(
        first["object"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("too old resource version: 1 (")),
        "{}",
        out.stdout
    );
}

#[test]
fn streaming_list_ends_its_initial_events_with_a_bookmark() {
    let c = TestCluster::start();
    let out = c
        .curl_admin(&[&format!(
            "{}/api/v1/namespaces?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion=&timeoutSeconds=1",
            c.url
        )])
        .ok();
    let events: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    let added = events.iter().filter(|e| e["type"] == "ADDED").count();
    assert_eq!(added, 4, "the four system namespaces: {}", out.stdout);
    let last = events.last().expect("events");
    assert_eq!(last["type"], "BOOKMARK");
    assert_eq!(
        last["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[test]
fn a_fresh_job_has_an_empty_status_object_as_upstream_serialises_it() {
    let c = TestCluster::start_with(&[]);
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "fresh"},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}});
    let (code, body) = call(
        &c,
        "POST",
        "/apis/batch/v1/namespaces/default/jobs",
        "application/json",
        &job.to_string(),
    );
    assert_eq!(code, 201, "{body}");
    assert!(parsed(&body)["status"].is_object(), "{body}");
    let (code, body) = call(
        &c,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"plain"}}"#,
    );
    assert_eq!(code, 201, "{body}");
    assert!(
        parsed(&body).get("status").is_none(),
        "kinds without status have none: {body}"
    );
}
