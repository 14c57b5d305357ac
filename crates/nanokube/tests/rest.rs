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
