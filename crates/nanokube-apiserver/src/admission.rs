//! Admission plugins that read other objects before a write is stored. Today: the
//! `ServiceAccount` plugin on pod creation (upstream
//! `plugin/pkg/admission/serviceaccount/admission.go`), which
//!
//! 1. defaults `spec.serviceAccountName` to `default`;
//! 2. rejects the pod (403) when that ServiceAccount does not exist;
//! 3. rejects secret references the ServiceAccount does not list, when it carries
//!    `kubernetes.io/enforce-mountable-secrets: "true"`;
//! 4. unless automounting is off (the pod's `automountServiceAccountToken`, else the
//!    ServiceAccount's), adds the projected `kube-api-access-<suffix>` volume (token, cluster CA,
//!    namespace) and mounts it read-only at `/var/run/secrets/kubernetes.io/serviceaccount` in
//!    every init and app container that does not already mount something there;
//! 5. copies the ServiceAccount's `imagePullSecrets` into a pod that names none.
//!
//! Mirror pods (annotation `kubernetes.io/config.mirror`) are left alone.

use crate::objects::meta_str;
use crate::rest::{Ctx, decode_kv, random_suffix};
use crate::serviceaccount::token::WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS;
use crate::status::{ApiError, ApiResult};
use nanokube_registry::resource::SERVICE_ACCOUNTS;
use rand::Rng;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// `DefaultServiceAccountName`.
pub const DEFAULT_SERVICE_ACCOUNT_NAME: &str = "default";
/// `DefaultAPITokenMountPath`: where in-cluster clients look for the token, CA and namespace.
pub const DEFAULT_API_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// `ServiceAccountVolumeName`: the prefix of the projected volume's name.
pub const SERVICE_ACCOUNT_VOLUME_NAME: &str = "kube-api-access";
/// `EnforceMountableSecretsAnnotation`.
pub const ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: &str = "kubernetes.io/enforce-mountable-secrets";
/// `MirrorPodAnnotationKey`.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// `corev1.ProjectedVolumeSourceDefaultMode` (0644).
pub const PROJECTED_DEFAULT_MODE: i64 = 0o644;
/// The ConfigMap the root-CA publisher keeps in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// How often the `default` ServiceAccount is looked up before giving up: the serviceaccount
/// controller creates it right after the namespace, so a pod may race it (upstream: 10).
const DEFAULT_ACCOUNT_ATTEMPTS: usize = 10;

/// The ServiceAccount admission plugin on CREATE. `requested_name` is what the client asked
/// for — the name, or the `generateName` prefix — which upstream's Forbidden message names
/// because admission runs before a name is generated.
pub async fn admit_create(ctx: &Ctx<'_>, pod: &mut Value, requested_name: &str) -> ApiResult<()> {
    if ctx.res.group != SERVICE_ACCOUNTS.group || ctx.res.plural != "pods" {
        return Ok(());
    }
    if is_mirror_pod(pod) {
        return Ok(());
    }
    let namespace = ctx.namespace.clone().unwrap_or_default();
    let sa_name = default_service_account_name(pod);
    let service_account = match lookup_service_account(ctx, &namespace, &sa_name).await {
        Ok(Some(sa)) => sa,
        Ok(None) => {
            return Err(forbidden(
                requested_name,
                &format!(
                    "error looking up service account {namespace}/{sa_name}: serviceaccount \"{sa_name}\" not found"
                ),
            ));
        }
        Err(e) => {
            return Err(forbidden(
                requested_name,
                &format!("error looking up service account {namespace}/{sa_name}: {e}"),
            ));
        }
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if should_automount(&service_account, spec) {
        mount_service_account_token(spec, || {
            format!("{SERVICE_ACCOUNT_VOLUME_NAME}-{}", random_suffix())
        });
    }
    copy_image_pull_secrets(&service_account, spec);
    if enforce_mountable_secrets(&service_account)
        && let Err(message) = limit_secret_references(&service_account, spec)
    {
        return Err(forbidden(requested_name, &message));
    }
    Ok(())
}

/// `pods "<name>" is forbidden: <reason>`, as `admission.NewForbidden` words it.
fn forbidden(requested_name: &str, reason: &str) -> ApiError {
    let name = if requested_name.is_empty() {
        "Unknown"
    } else {
        requested_name
    };
    ApiError::forbidden(
        format!("pods \"{name}\" is forbidden: {reason}"),
        Some(json!({"name": name, "kind": "pods"})),
    )
}

fn is_mirror_pod(pod: &Value) -> bool {
    pod.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

/// Sets `serviceAccountName` (and its deprecated twin `serviceAccount`, which the v1 conversion
/// keeps equal) to `default` when empty; returns the account's name.
fn default_service_account_name(pod: &mut Value) -> String {
    if !pod.get("spec").is_some_and(Value::is_object)
        && let Some(map) = pod.as_object_mut()
    {
        map.insert("spec".into(), json!({}));
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return DEFAULT_SERVICE_ACCOUNT_NAME.to_string();
    };
    let current = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    match current {
        Some(name) => name,
        None => {
            spec.insert(
                "serviceAccountName".into(),
                json!(DEFAULT_SERVICE_ACCOUNT_NAME),
            );
            spec.insert("serviceAccount".into(), json!(DEFAULT_SERVICE_ACCOUNT_NAME));
            DEFAULT_SERVICE_ACCOUNT_NAME.to_string()
        }
    }
}

/// Reads the ServiceAccount; `default` is retried for a while since its controller may not
/// have created it yet.
async fn lookup_service_account(
    ctx: &Ctx<'_>,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, String> {
    let key = SERVICE_ACCOUNTS.storage_key(Some(namespace), name);
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT_NAME {
        DEFAULT_ACCOUNT_ATTEMPTS
    } else {
        1
    };
    let interval = Duration::from_millis(rand::rng().random_range(100..200));
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(interval).await;
        }
        let kv = ctx.api.store.get(&key).await.map_err(|e| e.to_string())?;
        if let Some(kv) = kv {
            return decode_kv(&kv).map(Some).map_err(|e| e.message);
        }
    }
    Ok(None)
}

/// `shouldAutomount`: the pod's preference wins, then the ServiceAccount's, else true.
pub fn should_automount(service_account: &Value, spec: &Map<String, Value>) -> bool {
    if let Some(b) = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        return b;
    }
    service_account
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// `mountServiceAccountToken`: reuses a volume already named `kube-api-access-*`, else names a
/// new one with `generate_name`; mounts it in every container without a mount at the token
/// path, and adds the volume when some container needed it.
pub fn mount_service_account_token(
    spec: &mut Map<String, Value>,
    generate_name: impl FnOnce() -> String,
) {
    let prefix = format!("{SERVICE_ACCOUNT_VOLUME_NAME}-");
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|n| n.starts_with(&prefix))
        .map(str::to_string);
    let has_volume = existing.is_some();
    let volume_name = existing.unwrap_or_else(generate_name);
    let mount = json!({
        "name": volume_name,
        "readOnly": true,
        "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH,
    });
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounted = container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|m| {
                    m.get("mountPath").and_then(Value::as_str) == Some(DEFAULT_API_TOKEN_MOUNT_PATH)
                });
            if mounted {
                continue;
            }
            let mounts = container.entry("volumeMounts").or_insert_with(|| json!([]));
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            if let Some(list) = mounts.as_array_mut() {
                list.push(mount.clone());
                needs_volume = true;
            }
        }
    }
    if has_volume || !needs_volume {
        return;
    }
    let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
    if !volumes.is_array() {
        *volumes = json!([]);
    }
    if let Some(list) = volumes.as_array_mut() {
        list.push(token_volume(&volume_name));
    }
}

/// `TokenVolumeSource`: the projected volume in-cluster clients read their credentials from.
pub fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
            "defaultMode": PROJECTED_DEFAULT_MODE,
        },
    })
}

/// A pod that names no `imagePullSecrets` gets the ServiceAccount's.
fn copy_image_pull_secrets(service_account: &Value, spec: &mut Map<String, Value>) {
    let has_own = spec
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if has_own {
        return;
    }
    let refs: Vec<Value> = service_account
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| json!({"name": r.get("name").and_then(Value::as_str).unwrap_or("")}))
        .collect();
    if !refs.is_empty() {
        spec.insert("imagePullSecrets".into(), Value::Array(refs));
    }
}

/// `enforceMountableSecrets`: the account opts in with the annotation set to a true value.
fn enforce_mountable_secrets(service_account: &Value) -> bool {
    let value = service_account
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ENFORCE_MOUNTABLE_SECRETS_ANNOTATION))
        .and_then(Value::as_str);
    // Go's strconv.ParseBool.
    matches!(value, Some("1" | "t" | "T" | "TRUE" | "true" | "True"))
}

/// `limitSecretReferences`: every secret the pod uses must be listed by the account.
fn limit_secret_references(
    service_account: &Value,
    spec: &Map<String, Value>,
) -> Result<(), String> {
    let sa_name = meta_str(service_account, "name").unwrap_or("");
    let listed = |field: &str| -> Vec<String> {
        service_account
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    };
    let mountable = listed("secrets");
    let allowed = |name: &str| mountable.iter().any(|m| m == name);
    let array = |v: Option<&Value>| -> Vec<Value> {
        v.and_then(Value::as_array).cloned().unwrap_or_default()
    };
    let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);

    for volume in array(spec.get("volumes")) {
        if let Some(secret) = str_at(&volume, "/secret/secretName")
            && !allowed(&secret)
        {
            return Err(format!(
                "volume with secret.secretName=\"{secret}\" is not allowed because service account {sa_name} does not reference that secret"
            ));
        }
    }
    for (list, what) in [
        ("initContainers", "init container"),
        ("containers", "container"),
    ] {
        for c in array(spec.get(list)) {
            let cname = str_at(&c, "/name").unwrap_or_default();
            for env in array(c.get("env")) {
                if let Some(secret) = str_at(&env, "/valueFrom/secretKeyRef/name")
                    && !allowed(&secret)
                {
                    let env_name = str_at(&env, "/name").unwrap_or_default();
                    return Err(format!(
                        "{what} {cname} with envVar {env_name} referencing secret.secretName=\"{secret}\" is not allowed because service account {sa_name} does not reference that secret"
                    ));
                }
            }
            for from in array(c.get("envFrom")) {
                if let Some(secret) = str_at(&from, "/secretRef/name")
                    && !allowed(&secret)
                {
                    return Err(format!(
                        "{what} {cname} with envFrom referencing secret.secretName=\"{secret}\" is not allowed because service account {sa_name} does not reference that secret"
                    ));
                }
            }
        }
    }
    let pull = listed("imagePullSecrets");
    for (i, r) in array(spec.get("imagePullSecrets")).iter().enumerate() {
        let name = str_at(r, "/name").unwrap_or_default();
        if !pull.contains(&name) {
            return Err(format!(
                "imagePullSecrets[{i}].name=\"{name}\" is not allowed because service account {sa_name} does not reference that imagePullSecret"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::MastersOnly;
    use crate::bootstrap::apiserver_identity;
    use crate::server::{ApiServer, router};
    use axum::body::Body;
    use http::{Method, Request, StatusCode};
    use nanokube_store::MemoryStore;
    use std::sync::Arc;
    use tower::ServiceExt;

    fn spec(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn token_volume_is_upstreams_projection() {
        let mut s = spec(json!({"containers": [{"name": "c", "image": "busybox"}]}));
        mount_service_account_token(&mut s, || "kube-api-access-abcde".into());
        assert_eq!(
            Value::Object(s),
            json!({
                "containers": [{"name": "c", "image": "busybox", "volumeMounts": [
                    {"name": "kube-api-access-abcde", "readOnly": true,
                     "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
                "volumes": [{"name": "kube-api-access-abcde", "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                    ],
                    "defaultMode": 420}}]
            })
        );
    }

    #[test]
    fn every_container_without_a_mount_at_the_token_path_gets_one() {
        let mut s = spec(json!({
            "initContainers": [{"name": "i"}],
            "containers": [
                {"name": "a", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "b", "volumeMounts": [{"name": "own", "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}]}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "own", "emptyDir": {}}]
        }));
        mount_service_account_token(&mut s, || "kube-api-access-xyz12".into());
        let mount_names = |c: &Value| -> Vec<String> {
            c["volumeMounts"]
                .as_array()
                .expect("mounts")
                .iter()
                .map(|m| m["name"].as_str().expect("name").to_string())
                .collect()
        };
        assert_eq!(
            mount_names(&s["initContainers"][0]),
            ["kube-api-access-xyz12"]
        );
        assert_eq!(
            mount_names(&s["containers"][0]),
            ["data", "kube-api-access-xyz12"]
        );
        assert_eq!(mount_names(&s["containers"][1]), ["own"]);
        let volumes: Vec<&str> = s["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .map(|v| v["name"].as_str().expect("name"))
            .collect();
        assert_eq!(volumes, ["data", "own", "kube-api-access-xyz12"]);
    }

    #[test]
    fn an_existing_kube_api_access_volume_is_reused_not_duplicated() {
        let mut s = spec(json!({
            "containers": [{"name": "a"}],
            "volumes": [{"name": "kube-api-access-keep1", "emptyDir": {}}]
        }));
        mount_service_account_token(&mut s, || panic!("no new name needed"));
        assert_eq!(s["volumes"].as_array().expect("volumes").len(), 1);
        assert_eq!(
            s["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-keep1"
        );
    }

    #[test]
    fn no_volume_is_added_when_every_container_mounts_the_path_itself() {
        let mut s = spec(json!({
            "containers": [{"name": "a", "volumeMounts": [{"name": "x", "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}]}],
            "volumes": [{"name": "x", "emptyDir": {}}]
        }));
        mount_service_account_token(&mut s, || "kube-api-access-aaaaa".into());
        assert_eq!(s["volumes"].as_array().expect("volumes").len(), 1);
    }

    #[test]
    fn the_pods_automount_preference_wins_over_the_service_accounts() {
        let sa_off = json!({"automountServiceAccountToken": false});
        let sa_unset = json!({});
        assert!(!should_automount(&sa_off, &spec(json!({}))));
        assert!(should_automount(
            &sa_off,
            &spec(json!({"automountServiceAccountToken": true}))
        ));
        assert!(!should_automount(
            &sa_unset,
            &spec(json!({"automountServiceAccountToken": false}))
        ));
        assert!(should_automount(&sa_unset, &spec(json!({}))));
    }

    #[test]
    fn enforced_mountable_secrets_reject_unlisted_references() {
        let sa = json!({
            "metadata": {"name": "robot", "annotations": {ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: "true"}},
            "secrets": [{"name": "allowed"}]
        });
        assert!(enforce_mountable_secrets(&sa));
        assert!(!enforce_mountable_secrets(&json!({})));
        let ok = spec(json!({"volumes": [{"name": "v", "secret": {"secretName": "allowed"}}]}));
        assert_eq!(limit_secret_references(&sa, &ok), Ok(()));
        let bad_volume =
            spec(json!({"volumes": [{"name": "v", "secret": {"secretName": "other"}}]}));
        assert_eq!(
            limit_secret_references(&sa, &bad_volume),
            Err("volume with secret.secretName=\"other\" is not allowed because service account robot does not reference that secret".into())
        );
        let bad_env = spec(json!({"containers": [{"name": "c", "env": [
            {"name": "P", "valueFrom": {"secretKeyRef": {"name": "other", "key": "k"}}}]}]}));
        assert_eq!(
            limit_secret_references(&sa, &bad_env),
            Err("container c with envVar P referencing secret.secretName=\"other\" is not allowed because service account robot does not reference that secret".into())
        );
    }

    #[test]
    fn image_pull_secrets_are_copied_only_into_pods_without_any() {
        let sa = json!({"imagePullSecrets": [{"name": "regcred"}]});
        let mut s = spec(json!({}));
        copy_image_pull_secrets(&sa, &mut s);
        assert_eq!(s["imagePullSecrets"], json!([{"name": "regcred"}]));
        let mut own = spec(json!({"imagePullSecrets": [{"name": "mine"}]}));
        copy_image_pull_secrets(&sa, &mut own);
        assert_eq!(own["imagePullSecrets"], json!([{"name": "mine"}]));
        let mut none = spec(json!({}));
        copy_image_pull_secrets(&json!({}), &mut none);
        assert!(none.get("imagePullSecrets").is_none());
    }

    async fn post(api: &Arc<ApiServer>, path: &str, body: Value) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request");
        req.extensions_mut().insert(apiserver_identity());
        let resp = match router(api.clone()).oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json body"))
    }

    fn pod(name_field: Value, extra_spec: Value) -> Value {
        let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
            s.extend(extra.clone());
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": name_field, "spec": spec})
    }

    async fn server() -> Arc<ApiServer> {
        let api = Arc::new(ApiServer::new(
            Arc::new(MemoryStore::new()),
            Arc::new(MastersOnly),
            "127.0.0.1:6443".into(),
        ));
        let (s, _) = post(
            &api,
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        for (name, automount) in [("default", Value::Null), ("quiet", json!(false))] {
            let mut sa =
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}});
            if !automount.is_null() {
                sa["automountServiceAccountToken"] = automount;
            }
            let (s, body) = post(&api, "/api/v1/namespaces/ns/serviceaccounts", sa).await;
            assert_eq!(s, StatusCode::CREATED, "{body}");
        }
        api
    }

    #[tokio::test]
    async fn created_pods_get_the_default_account_and_the_api_access_volume() {
        let api = server().await;
        let (s, body) = post(
            &api,
            "/api/v1/namespaces/ns/pods",
            pod(json!({"name": "web"}), json!({})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert_eq!(body["spec"]["serviceAccountName"], "default");
        assert_eq!(body["spec"]["serviceAccount"], "default");
        let volume = &body["spec"]["volumes"][0];
        let name = volume["name"].as_str().expect("volume name");
        let suffix = name.strip_prefix("kube-api-access-").expect("prefix");
        assert_eq!(suffix.len(), 5);
        assert_eq!(volume["projected"]["defaultMode"], 420);
        assert_eq!(
            body["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": name, "readOnly": true, "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}])
        );
    }

    #[tokio::test]
    async fn automount_off_on_the_account_or_the_pod_adds_no_volume() {
        let api = server().await;
        let (s, body) = post(
            &api,
            "/api/v1/namespaces/ns/pods",
            pod(json!({"name": "a"}), json!({"serviceAccountName": "quiet"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert!(body["spec"].get("volumes").is_none(), "{body}");
        let (s, body) = post(
            &api,
            "/api/v1/namespaces/ns/pods",
            pod(
                json!({"name": "b"}),
                json!({"automountServiceAccountToken": false}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert!(body["spec"].get("volumes").is_none(), "{body}");
        assert!(body["spec"]["containers"][0].get("volumeMounts").is_none());
    }

    #[tokio::test]
    async fn a_missing_service_account_is_forbidden_with_upstreams_message() {
        let api = server().await;
        let (s, body) = post(
            &api,
            "/api/v1/namespaces/ns/pods",
            pod(
                json!({"name": "web"}),
                json!({"serviceAccountName": "ghost"}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(body["reason"], "Forbidden");
        assert_eq!(
            body["message"],
            "pods \"web\" is forbidden: error looking up service account ns/ghost: serviceaccount \"ghost\" not found"
        );
        assert_eq!(body["details"], json!({"name": "web", "kind": "pods"}));
        let (s, body) = post(
            &api,
            "/api/v1/namespaces/ns/pods",
            pod(
                json!({"generateName": "job-"}),
                json!({"serviceAccountName": "ghost"}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .starts_with("pods \"job-\" is forbidden: "),
            "{body}"
        );
    }
}
