//! Identity and access end to end: the training lab's REST steps with a bearer token, the
//! article's job-robot ServiceAccount/Role/RoleBinding with its exact 403, `kubectl auth`,
//! escalation prevention, and 401s for every kind of bad token.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{TestCluster, eventually};

const JOB_ROBOT: &str = "apiVersion: v1
kind: ServiceAccount
metadata:
  name: job-robot
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  namespace: default
  name: job-robot
rules:
- apiGroups: [\"\"] # \"\" indicates the core API group
  resources: [\"pods\"]
  verbs: [\"get\", \"list\", \"watch\"]
- apiGroups: [\"batch\", \"extensions\"]
  resources: [\"jobs\"]
  verbs: [\"get\", \"list\", \"watch\", \"create\", \"update\", \"patch\", \"delete\"]
";

const JOB_ROBOT_BINDING: &str = "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: job-robot
  namespace: default
subjects:
- kind: ServiceAccount
  name: job-robot # Name of the ServiceAccount
  namespace: default
roleRef:
  kind: Role # This must be Role or ClusterRole
  name: job-robot # This must match the name of the Role or ClusterRole you wish to bind to
  apiGroup: rbac.authorization.k8s.io
";

const SEED_403: &str = "jobs.batch is forbidden: User \"system:serviceaccount:default:job-robot\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"default\"";

/// GETs `path` with a bearer token; returns status code and body.
fn curl_token(c: &TestCluster, token: &str, args: &[&str]) -> (u16, String) {
    let auth = format!("Authorization: Bearer {token}");
    let mut all = vec!["-w", "\n%{http_code}", "-H", auth.as_str()];
    all.extend_from_slice(args);
    let out = c.curl_anonymous(&all).ok().stdout;
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn lab_rest_steps_work_with_a_legacy_token_secret() {
    let c = TestCluster::start_with(&["--legacy-service-account-token-secrets"]);
    assert!(
        eventually(Duration::from_secs(20), || {
            let out = c.kubectl(&["get", "secrets", "--all-namespaces"]);
            ["default", "kube-public", "kube-system"].iter().all(|ns| {
                out.stdout.lines().any(|l| {
                    l.starts_with(ns)
                        && l.contains("default-token-")
                        && l.contains("kubernetes.io/service-account-token")
                        && l.contains(" 3 ")
                })
            })
        }),
        "every namespace gets a populated default token secret"
    );
    let secrets = c.kubectl(&["get", "secrets"]).ok();
    assert_eq!(
        support::headers(&secrets.stdout),
        ["NAME", "TYPE", "DATA", "AGE"]
    );
    let name = secrets
        .stdout
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("secret name")
        .to_string();
    // The lab's own pipeline: kubectl describe secret … | grep ^token | cut -f7 -d ' '
    let kubeconfig = c.kubeconfig.display().to_string();
    let token = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("kubectl --kubeconfig {kubeconfig} describe secret {name} | grep ^token | cut -f7 -d ' '"))
        .output()
        .expect("sh");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    assert!(token.starts_with("eyJ"), "token from describe: {token:?}");

    let (code, body) = curl_token(&c, &token, &["-k", &format!("{}/apis", c.url)]);
    assert_eq!(
        (code, parsed(&body)["kind"].as_str()),
        (200, Some("APIGroupList"))
    );
    let (code, body) = curl_token(&c, &token, &["-k", &format!("{}/api", c.url)]);
    let api = parsed(&body);
    assert_eq!((code, api["kind"].as_str()), (200, Some("APIVersions")));
    assert!(api["serverAddressByClientCIDRs"][0]["serverAddress"].is_string());
    let (code, body) = curl_token(&c, &token, &["-k", &format!("{}/api/v1", c.url)]);
    assert_eq!(
        (code, parsed(&body)["kind"].as_str()),
        (200, Some("APIResourceList"))
    );
    let (code, body) = curl_token(&c, &token, &["-k", &format!("{}/api/v1/namespaces", c.url)]);
    assert_eq!(code, 403);
    assert_eq!(
        parsed(&body)["message"],
        "namespaces is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
}

#[test]
fn job_robot_is_forbidden_until_bound_and_only_in_its_namespace() {
    let c = TestCluster::start();
    let f = c.file("robot.yaml", JOB_ROBOT);
    c.kubectl(&["create", "-f", &f]).ok();
    let token = c
        .kubectl(&["create", "token", "job-robot"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let script = format!(
        r#"
import json, sys
from kubernetes import client
from kubernetes.client.rest import ApiException
cfg = client.Configuration()
cfg.host = "{url}"
cfg.ssl_ca_cert = "{ca}"
cfg.api_key = {{"authorization": "Bearer {token}"}}
batch = client.BatchV1Api(client.ApiClient(cfg))
def job():
    c = client.V1Container(name="pi", image="perl", command=["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"])
    t = client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={{"app": "pi"}}), spec=client.V1PodSpec(restart_policy="Never", containers=[c]))
    return client.V1Job(api_version="batch/v1", kind="Job", metadata=client.V1ObjectMeta(name="pi"), spec=client.V1JobSpec(template=t, backoff_limit=4))
try:
    batch.create_namespaced_job(body=job(), namespace=sys.argv[1])
    print("CREATED")
except ApiException as e:
    print(e.status, json.loads(e.body)["message"])
"#,
        url = c.url,
        ca = c.pki("ca.crt").display(),
    );
    let path = c.file("robot.py", &script);
    let run = |ns: &str| {
        let out = std::process::Command::new("python3")
            .arg(&path)
            .arg(ns)
            .output()
            .expect("python3");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    assert_eq!(run("default"), format!("403 {SEED_403}"));
    let b = c.file("binding.yaml", JOB_ROBOT_BINDING);
    c.kubectl(&["create", "-f", &b]).ok();
    assert_eq!(run("default"), "CREATED");
    assert_eq!(
        run("kube-system"),
        format!("403 {}", SEED_403.replace("\"default\"", "\"kube-system\""))
    );

    let yes = c
        .kubectl(&[
            "auth",
            "can-i",
            "create",
            "jobs",
            "--as=system:serviceaccount:default:job-robot",
        ])
        .ok();
    assert_eq!(yes.stdout.trim(), "yes");
    let no = c.kubectl(&[
        "auth",
        "can-i",
        "list",
        "namespaces",
        "--as=system:serviceaccount:default:job-robot",
    ]);
    assert_eq!((no.status, no.stdout.trim()), (1, "no"));
    let list = c
        .kubectl(&[
            "auth",
            "can-i",
            "--list",
            "--as=system:serviceaccount:default:job-robot",
        ])
        .ok();
    assert!(
        list.stdout.lines().any(|l| l.starts_with("jobs.batch")
            && l.contains("[get list watch create update patch delete]")),
        "{}",
        list.stdout
    );
    let who = c.kubectl_with_token(&token, &["auth", "whoami"]).ok();
    assert!(
        who.stdout
            .contains("system:serviceaccount:default:job-robot"),
        "{}",
        who.stdout
    );
    assert!(
        who.stdout.contains("system:serviceaccounts:default"),
        "{}",
        who.stdout
    );
}

#[test]
fn granting_permissions_one_does_not_hold_is_forbidden() {
    let tokens = "alice-token,alice,1001\n";
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, tokens).expect("write");
    let c = TestCluster::start_with(&["--token-auth-file", file.to_str().expect("utf-8")]);
    c.kubectl(&[
        "create",
        "role",
        "role-admin",
        "--verb=get,create",
        "--resource=pods,roles",
    ])
    .ok();
    c.kubectl(&[
        "create",
        "rolebinding",
        "alice-role-admin",
        "--role=role-admin",
        "--user=alice",
    ])
    .ok();
    let as_alice = |args: &[&str]| c.kubectl_with_token("alice-token", args);
    // Within what she holds: allowed.
    as_alice(&["create", "role", "reader", "--verb=get", "--resource=pods"]).ok();
    // More than she holds: denied, with upstream's message.
    let denied = as_alice(&[
        "create",
        "role",
        "deleter",
        "--verb=delete",
        "--resource=pods",
    ])
    .fails();
    assert!(
        denied.stderr.contains("roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:")
            && denied.stderr.contains("{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"),
        "{}",
        denied.stderr
    );
    // The Python client gets the same 403 body.
    let script = format!(
        r#"
import json
from kubernetes import client
from kubernetes.client.rest import ApiException
cfg = client.Configuration()
cfg.host = "{url}"
cfg.ssl_ca_cert = "{ca}"
cfg.api_key = {{"authorization": "Bearer alice-token"}}
rbac = client.RbacAuthorizationV1Api(client.ApiClient(cfg))
role = client.V1Role(metadata=client.V1ObjectMeta(name="py-deleter"), rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["delete"])])
try:
    rbac.create_namespaced_role("default", role)
    print("CREATED")
except ApiException as e:
    body = json.loads(e.body)
    print(e.status, body["reason"], body["message"].splitlines()[0])
"#,
        url = c.url,
        ca = c.pki("ca.crt").display(),
    );
    let out = c.python(&script);
    assert_eq!(
        out.stdout.trim(),
        "403 Forbidden roles.rbac.authorization.k8s.io \"py-deleter\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:",
        "{}",
        out.stderr
    );
    // Impersonation needs its own permission.

    let imp = as_alice(&["get", "pods", "--as=bob"]).fails();
    assert!(
        imp.stderr.contains("users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{}",
        imp.stderr
    );
}

#[test]
fn bad_tokens_get_401_status_bodies() {
    let c = TestCluster::start();
    c.kubectl(&["create", "serviceaccount", "robot"]).ok();
    let good = c
        .kubectl(&["create", "token", "robot"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let pods = format!("{}/api/v1/namespaces/default/pods", c.url);
    let ca = c.pki("ca.crt").display().to_string();
    let expect_401 = |token: &str, what: &str| {
        let (code, body) = curl_token(&c, token, &["--cacert", &ca, &pods]);
        assert_eq!(code, 401, "{what}: {body}");
        let s = parsed(&body);
        assert_eq!(
            (
                s["kind"].as_str(),
                s["reason"].as_str(),
                s["message"].as_str()
            ),
            (Some("Status"), Some("Unauthorized"), Some("Unauthorized")),
            "{what}"
        );
    };
    // The good token authenticates (and is then forbidden, which is RBAC's business).
    assert_eq!(curl_token(&c, &good, &["--cacert", &ca, &pods]).0, 403);
    expect_401("garbage", "garbage");
    expect_401("a.b.c", "three garbage segments");
    let mut tampered = good.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    expect_401(&tampered, "altered signature");
    let parts: Vec<&str> = good.split('.').collect();
    expect_401(
        &format!("{}.{}x.{}", parts[0], parts[1], parts[2]),
        "altered payload",
    );
    let other_audience = c
        .kubectl(&[
            "create",
            "token",
            "robot",
            "--audience=https://elsewhere.example",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    expect_401(&other_audience, "wrong audience");
    // A correctly signed token that expired an hour ago.
    let expired = forge_expired(&c, &good);
    expect_401(&expired, "expired");
    c.kubectl(&["delete", "serviceaccount", "robot"]).ok();
    expect_401(&good, "deleted service account");
}

/// Re-signs `token`'s claims with `exp`/`iat`/`nbf` in the past, using the cluster's own
/// service-account key (so only expiry is wrong).
fn forge_expired(c: &TestCluster, token: &str) -> String {
    let script = r#"
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
def b64d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def b64e(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
token, keyfile = sys.argv[1], sys.argv[2]
header, payload, _ = token.split(".")
claims = json.loads(b64d(payload))
now = int(time.time())
claims["iat"], claims["nbf"], claims["exp"] = now - 7200, now - 7200, now - 3600
body = header + "." + b64e(json.dumps(claims, separators=(",", ":")).encode())
key = serialization.load_pem_private_key(open(keyfile, "rb").read(), password=None)
r, s = decode_dss_signature(key.sign(body.encode(), ec.ECDSA(hashes.SHA256())))
print(body + "." + b64e(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
"#;
    let path = c.file("forge.py", script);
    let out = std::process::Command::new("python3")
        .arg(&path)
        .arg(token)
        .arg(c.pki("sa.key"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn token_requests_are_validated_like_upstream() {
    let c = TestCluster::start();
    c.kubectl(&["create", "serviceaccount", "robot"]).ok();
    let short = c
        .kubectl(&["create", "token", "robot", "--duration=60s"])
        .fails();
    assert!(
        short.stderr.contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"),
        "{}",
        short.stderr
    );
    let missing = c.kubectl(&["create", "token", "ghost"]).fails();
    assert!(
        missing
            .stderr
            .contains("serviceaccounts \"ghost\" not found"),
        "{}",
        missing.stderr
    );
    // A valid token is a JWT for the account.
    let token = c
        .kubectl(&["create", "token", "robot", "--duration=20m"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let review = format!(
        r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{token}"}}}}"#
    );
    let out = c
        .curl_admin(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &review,
            &format!("{}/apis/authentication.k8s.io/v1/tokenreviews", c.url),
        ])
        .ok();
    let r = parsed(&out.stdout);
    assert_eq!(r["status"]["authenticated"], true, "{}", out.stdout);
    assert_eq!(
        r["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );
}

#[test]
fn every_namespace_gets_a_default_account_and_the_root_ca() {
    let c = TestCluster::start();
    c.kubectl(&["create", "namespace", "fresh"]).ok();
    assert!(
        eventually(Duration::from_secs(20), || {
            c.kubectl(&["get", "serviceaccount", "default", "-n", "fresh"])
                .status
                == 0
                && c.kubectl(&["get", "configmap", "kube-root-ca.crt", "-n", "fresh"])
                    .status
                    == 0
        }),
        "default ServiceAccount and kube-root-ca.crt appear"
    );
    let ca = c
        .kubectl(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "fresh",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ])
        .ok();
    assert_eq!(
        ca.stdout,
        std::fs::read_to_string(c.pki("ca.crt")).expect("ca")
    );
    // Deleted, it comes back.
    c.kubectl(&["delete", "serviceaccount", "default", "-n", "fresh"])
        .ok();
    assert!(eventually(Duration::from_secs(20), || c
        .kubectl(&["get", "serviceaccount", "default", "-n", "fresh"])
        .status
        == 0));
    let svc = c
        .kubectl(&[
            "get",
            "service",
            "kubernetes",
            "-o",
            "jsonpath={.spec.clusterIP} {.spec.ports[0].port}",
        ])
        .ok();
    assert_eq!(svc.stdout, "10.96.0.1 443");
    let port = c.url.rsplit(':').next().expect("port");
    let ep = c
        .kubectl(&[
            "get",
            "endpoints",
            "kubernetes",
            "-o",
            "jsonpath={.subsets[0].ports[0].port}",
        ])
        .ok();
    assert_eq!(ep.stdout, port);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        c.kubectl(&["get", "namespace", ns]).ok();
    }
    let roles = c
        .kubectl(&[
            "get",
            "clusterroles",
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:discovery",
            "system:basic-user",
            "system:public-info-viewer",
        ])
        .ok();
    assert_eq!(roles.stdout.lines().count(), 8, "{}", roles.stdout);
}

#[test]
fn cluster_roles_labelled_for_aggregation_extend_view_edit_and_admin() {
    let c = TestCluster::start();
    let role = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: lease-reader
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: \"true\"
rules:
- apiGroups: [\"coordination.k8s.io\"]
  resources: [\"leases\"]
  verbs: [\"get\", \"list\"]
";
    let f = c.file("lease-reader.yaml", role);
    c.kubectl(&["create", "-f", &f]).ok();
    for aggregated in ["view", "edit", "admin"] {
        assert!(
            eventually(Duration::from_secs(20), || {
                let out = c.kubectl(&["get", "clusterrole", aggregated, "-o", "json"]);
                let role: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
                role["rules"].as_array().is_some_and(|rules| {
                    rules.iter().any(|r| {
                        r["resources"]
                            .as_array()
                            .is_some_and(|res| res.iter().any(|x| x == "leases"))
                    })
                })
            }),
            "{aggregated} gains the leases rule"
        );
    }
    let yes = c.kubectl(&[
        "auth", "can-i", "list", "leases", "--as=bob", "-n", "default",
    ]);
    assert_eq!(
        yes.stdout.trim(),
        "no",
        "aggregation alone grants nobody anything"
    );
}
