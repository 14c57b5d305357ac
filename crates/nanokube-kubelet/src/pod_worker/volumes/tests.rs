//! The volume plugins against a fake API and a temporary pod directory.

use super::*;
use chrono::TimeZone;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::TokenRequestStatus;
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, ConfigMapVolumeSource, DownwardAPIProjection, DownwardAPIVolumeFile,
    DownwardAPIVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, KeyToPath,
    NFSVolumeSource, ObjectFieldSelector, PodSpec, SecretVolumeSource, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::sync::Mutex;

/// The API objects a test cluster holds; tokens are numbered so renewals are visible.
#[derive(Default)]
struct FakeApi {
    config_maps: Mutex<BTreeMap<String, ConfigMap>>,
    secrets: Mutex<BTreeMap<String, Secret>>,
    token_requests: Mutex<Vec<TokenRequest>>,
    tokens_fail: Mutex<bool>,
    now: Mutex<DateTime<Utc>>,
}

impl FakeApi {
    fn new(now: DateTime<Utc>) -> Self {
        let api = FakeApi::default();
        *api.now.lock().expect("lock") = now;
        api
    }

    fn set_config_map(&self, name: &str, data: &[(&str, &str)]) {
        let cm = ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        self.config_maps
            .lock()
            .expect("lock")
            .insert(name.into(), cm);
    }

    fn set_secret(&self, name: &str, data: &[(&str, &str)]) {
        let s = Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        self.secrets.lock().expect("lock").insert(name.into(), s);
    }

    fn token_count(&self) -> usize {
        self.token_requests.lock().expect("lock").len()
    }
}

impl ObjectSource for FakeApi {
    async fn config_map(&self, _ns: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        Ok(self.config_maps.lock().expect("lock").get(name).cloned())
    }

    async fn secret(&self, _ns: &str, name: &str) -> Result<Option<Secret>, String> {
        Ok(self.secrets.lock().expect("lock").get(name).cloned())
    }

    async fn token(
        &self,
        _ns: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, String> {
        if *self.tokens_fail.lock().expect("lock") {
            return Err("serviceaccounts \"default\" not found".into());
        }
        let mut requests = self.token_requests.lock().expect("lock");
        requests.push(request.clone());
        let now = *self.now.lock().expect("lock");
        let seconds = request.spec.expiration_seconds.unwrap_or(3600);
        let mut answer = request.clone();
        answer.status = Some(TokenRequestStatus {
            token: format!("token-{}-{service_account}", requests.len()),
            expiration_timestamp: crate::pod_worker::status::time(
                now + chrono::Duration::seconds(seconds),
            ),
        });
        Ok(answer)
    }

    async fn node_allocatable(&self, _node: &str) -> Result<HostCapacity, String> {
        Ok(HostCapacity {
            cpus: 2,
            memory_bytes: 4 << 30,
        })
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
        .single()
        .expect("time")
}

fn volume(name: &str) -> Volume {
    Volume {
        name: name.into(),
        ..Default::default()
    }
}

fn field(path: &str, field_path: &str) -> DownwardAPIVolumeFile {
    DownwardAPIVolumeFile {
        path: path.into(),
        field_ref: Some(ObjectFieldSelector {
            api_version: Some("v1".into()),
            field_path: field_path.into(),
        }),
        ..Default::default()
    }
}

/// What the ServiceAccount admission adds to every pod.
fn kube_api_access() -> Volume {
    Volume {
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o644),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        expiration_seconds: Some(3607),
                        path: "token".into(),
                        audience: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".into(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".into(),
                            path: "ca.crt".into(),
                            mode: None,
                        }]),
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![field("namespace", "metadata.namespace")]),
                    }),
                    ..Default::default()
                },
            ]),
        }),
        ..volume("kube-api-access-abcde")
    }
}

fn pod(volumes: Vec<Volume>, mounts: Vec<VolumeMount>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns1".into()),
            uid: Some("uid-1".into()),
            labels: Some([("app".to_string(), "demo".to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("node1".into()),
            service_account_name: Some("default".into()),
            volumes: Some(volumes),
            containers: vec![Container {
                name: "main".into(),
                volume_mounts: Some(mounts),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

fn all_kinds(host_dir: &Path) -> Vec<Volume> {
    vec![
        Volume {
            config_map: Some(ConfigMapVolumeSource {
                name: "cfg".into(),
                ..Default::default()
            }),
            ..volume("config")
        },
        Volume {
            secret: Some(SecretVolumeSource {
                secret_name: Some("creds".into()),
                default_mode: Some(0o400),
                ..Default::default()
            }),
            ..volume("creds")
        },
        Volume {
            downward_api: Some(DownwardAPIVolumeSource {
                items: Some(vec![
                    field("labels", "metadata.labels"),
                    field("podname", "metadata.name"),
                ]),
                default_mode: None,
            }),
            ..volume("info")
        },
        Volume {
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..volume("scratch")
        },
        Volume {
            host_path: Some(HostPathVolumeSource {
                path: host_dir.join("shared").to_string_lossy().into_owned(),
                type_: Some("DirectoryOrCreate".into()),
            }),
            ..volume("host")
        },
        kube_api_access(),
    ]
}

fn read(path: PathBuf) -> (String, u32) {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o7777;
    (text, mode)
}

fn fake_with_objects() -> FakeApi {
    let api = FakeApi::new(t0());
    api.set_config_map("cfg", &[("app.conf", "x=1")]);
    api.set_config_map("kube-root-ca.crt", &[("ca.crt", "PEM")]);
    api.set_secret("creds", &[("password", "s3cret")]);
    api
}

#[tokio::test]
async fn every_volume_type_is_materialised_under_the_pod_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pod_dir = tmp.path().join("pods/uid-1");
    let api = fake_with_objects();
    let p = pod(all_kinds(tmp.path()), vec![]);
    let v = prepare_with(&api, &p, &pod_dir, t0())
        .await
        .expect("prepared");
    let vols = pod_dir.join("volumes");

    assert_eq!(
        read(vols.join("kubernetes.io~configmap/config/app.conf")),
        ("x=1".into(), 0o644)
    );
    assert_eq!(
        read(vols.join("kubernetes.io~secret/creds/password")),
        ("s3cret".into(), 0o400)
    );
    assert_eq!(
        read(vols.join("kubernetes.io~downward-api/info/labels")).0,
        "app=\"demo\""
    );
    assert_eq!(
        read(vols.join("kubernetes.io~downward-api/info/podname")).0,
        "web"
    );
    let scratch = vols.join("kubernetes.io~empty-dir/scratch");
    assert!(scratch.is_dir());
    assert_eq!(
        std::fs::metadata(&scratch)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o777
    );
    assert!(tmp.path().join("shared").is_dir(), "DirectoryOrCreate");
    assert_eq!(
        v.volume_path("host"),
        Some(tmp.path().join("shared").as_path())
    );

    let access = vols.join("kubernetes.io~projected/kube-api-access-abcde");
    assert_eq!(
        read(access.join("token")),
        ("token-1-default".into(), 0o644)
    );
    assert_eq!(read(access.join("ca.crt")).0, "PEM");
    assert_eq!(read(access.join("namespace")).0, "ns1");
    // The request the kubelet makes for a projected token.
    let requests = api.token_requests.lock().expect("lock");
    let spec = &requests[0].spec;
    assert!(spec.audiences.is_empty());
    assert_eq!(spec.expiration_seconds, Some(3607));
    let bound = spec.bound_object_ref.as_ref().expect("bound");
    assert_eq!(bound.kind.as_deref(), Some("Pod"));
    assert_eq!(bound.api_version.as_deref(), Some("v1"));
    assert_eq!(bound.name.as_deref(), Some("web"));
    assert_eq!(bound.uid.as_deref(), Some("uid-1"));
}

#[tokio::test]
async fn mounts_follow_volume_mounts_and_api_data_is_always_read_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pod_dir = tmp.path().join("pods/uid-1");
    let api = fake_with_objects();
    let mounts = vec![
        mount("scratch", "/scratch"),
        VolumeMount {
            read_only: Some(false),
            ..mount("config", "/etc/app")
        },
        VolumeMount {
            read_only: Some(true),
            ..mount("host", "/host")
        },
        VolumeMount {
            sub_path: Some("logs/app".into()),
            ..mount("scratch", "/var/log/app")
        },
        VolumeMount {
            sub_path_expr: Some("$(POD_NAME)".into()),
            ..mount("scratch", "/per-pod")
        },
        VolumeMount {
            sub_path: Some("app.conf".into()),
            ..mount("config", "/etc/app.conf")
        },
    ];
    let p = pod(all_kinds(tmp.path()), mounts);
    let v = prepare_with(&api, &p, &pod_dir, t0())
        .await
        .expect("prepared");
    let mut env = Env::default();
    env.set("POD_NAME", "web");
    let container = &p.spec.as_ref().expect("spec").containers[0];
    let got = v.mounts_for(container, &env).expect("mounts");
    let vols = pod_dir.join("volumes");
    let real_scratch = vols
        .join("kubernetes.io~empty-dir/scratch")
        .canonicalize()
        .expect("canon");
    let expected = [
        (
            vols.join("kubernetes.io~empty-dir/scratch"),
            "/scratch",
            false,
        ),
        (
            vols.join("kubernetes.io~configmap/config"),
            "/etc/app",
            true,
        ),
        (tmp.path().join("shared"), "/host", true),
        (real_scratch.join("logs/app"), "/var/log/app", false),
        (real_scratch.join("web"), "/per-pod", false),
    ];
    assert_eq!(got.len(), 6);
    for (m, (source, target, ro)) in got.iter().zip(expected.iter()) {
        assert_eq!(&m.source, source, "{target}");
        assert_eq!(m.target, *target);
        assert_eq!(m.read_only, *ro, "{target}");
    }
    assert!(real_scratch.join("logs/app").is_dir(), "subPath created");
    // A file subPath of a ConfigMap volume is the current file itself.
    assert_eq!(
        std::fs::read_to_string(&got[5].source).expect("file"),
        "x=1"
    );
    assert!(got[5].read_only);
}

#[tokio::test]
async fn bad_mounts_are_reported_with_upstreams_messages() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pod_dir = tmp.path().join("pods/uid-1");
    let api = fake_with_objects();
    let p = pod(all_kinds(tmp.path()), vec![]);
    let v = prepare_with(&api, &p, &pod_dir, t0())
        .await
        .expect("prepared");
    let container = |m: VolumeMount| Container {
        name: "main".into(),
        volume_mounts: Some(vec![m]),
        ..Default::default()
    };
    let env = Env::default();
    let err = v
        .mounts_for(&container(mount("nope", "/x")), &env)
        .expect_err("unknown volume");
    assert_eq!(
        err.to_string(),
        "cannot find volume \"nope\" to mount into container \"main\""
    );
    let err = v
        .mounts_for(
            &container(VolumeMount {
                sub_path_expr: Some("$(A)/$(B)".into()),
                ..mount("scratch", "/x")
            }),
            &env,
        )
        .expect_err("missing vars");
    assert_eq!(err.to_string(), "missing value for A, B");
    let err = v
        .mounts_for(
            &container(VolumeMount {
                sub_path: Some("../../etc".into()),
                ..mount("scratch", "/x")
            }),
            &env,
        )
        .expect_err("backsteps");
    assert_eq!(
        err.to_string(),
        "unable to provision SubPath `../../etc`: must not contain '..'"
    );
    let scratch = v.volume_path("scratch").expect("scratch").to_path_buf();
    std::os::unix::fs::symlink("/etc", scratch.join("out")).expect("symlink");
    let err = v
        .mounts_for(
            &container(VolumeMount {
                sub_path: Some("out".into()),
                ..mount("scratch", "/x")
            }),
            &env,
        )
        .expect_err("escape");
    assert!(
        matches!(err, VolumeError::SubPath(SubPathError::Escapes { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_config_map_fails_the_mount_unless_optional() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pod_dir = tmp.path().join("pods/uid-1");
    let api = FakeApi::new(t0());
    let missing = |optional| Volume {
        config_map: Some(ConfigMapVolumeSource {
            name: "absent".into(),
            optional,
            ..Default::default()
        }),
        ..volume("cfg")
    };
    let p = pod(vec![missing(None), kube_api_access()], vec![]);
    let err = prepare_with(&api, &p, &pod_dir, t0())
        .await
        .expect_err("missing objects");
    let messages: Vec<String> = err.failures().iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"absent\" not found",
            "MountVolume.SetUp failed for volume \"kube-api-access-abcde\" : configmap \"kube-root-ca.crt\" not found",
        ]
    );
    let p = pod(vec![missing(Some(true))], vec![]);
    let v = prepare_with(&api, &p, &pod_dir, t0())
        .await
        .expect("optional");
    let dir = v.volume_path("cfg").expect("cfg");
    assert!(dir.join("..data").is_dir(), "an empty volume");
}

#[tokio::test]
async fn unsupported_volume_types_say_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let api = FakeApi::new(t0());
    let nfs = Volume {
        nfs: Some(NFSVolumeSource {
            server: "nfs".into(),
            path: "/export".into(),
            read_only: None,
        }),
        ..volume("data")
    };
    let p = pod(vec![nfs], vec![]);
    let err = prepare_with(&api, &p, tmp.path(), t0())
        .await
        .expect_err("nfs");
    assert_eq!(
        err.failures()[0].to_string(),
        "MountVolume.SetUp failed for volume \"data\" : volume type \"nfs\" is not supported by nanokube"
    );
}

#[tokio::test]
async fn refresh_shows_new_contents_atomically_and_renews_tokens_when_due() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pod_dir = tmp.path().join("pods/uid-1");
    let api = fake_with_objects();
    let p = pod(all_kinds(tmp.path()), vec![]);
    let mut v = prepare_with(&api, &p, &pod_dir, t0())
        .await
        .expect("prepared");
    let cfg = v.volume_path("config").expect("config").to_path_buf();
    let before = std::fs::read_link(cfg.join("..data")).expect("data link");

    // Nothing changed: nothing is rewritten and the token is reused.
    let soon = t0() + chrono::Duration::seconds(60);
    v.refresh_with(&api, &p, soon).await.expect("refresh");
    assert_eq!(
        std::fs::read_link(cfg.join("..data")).expect("link"),
        before
    );
    assert_eq!(api.token_count(), 1);

    api.set_config_map("cfg", &[("app.conf", "x=2"), ("extra", "y")]);
    let mut relabelled = p.clone();
    relabelled.metadata.labels = Some([("app".to_string(), "v2".to_string())].into());
    v.refresh_with(&api, &relabelled, soon)
        .await
        .expect("refresh");
    assert_ne!(
        std::fs::read_link(cfg.join("..data")).expect("link"),
        before
    );
    assert_eq!(read(cfg.join("app.conf")).0, "x=2");
    assert_eq!(read(cfg.join("extra")).0, "y");
    let info = v.volume_path("info").expect("info").to_path_buf();
    assert_eq!(read(info.join("labels")).0, "app=\"v2\"");

    // 80% of 3607 s is 2885.6 s.
    let token = v
        .volume_path("kube-api-access-abcde")
        .expect("access")
        .join("token");
    v.refresh_with(&api, &p, t0() + chrono::Duration::seconds(2880))
        .await
        .expect("refresh");
    assert_eq!(api.token_count(), 1);
    *api.now.lock().expect("lock") = t0() + chrono::Duration::seconds(2890);
    v.refresh_with(&api, &p, t0() + chrono::Duration::seconds(2890))
        .await
        .expect("refresh");
    assert_eq!(api.token_count(), 2);
    assert_eq!(read(token.clone()).0, "token-2-default");

    // A failed renewal keeps the unexpired token; an expired one is an error.
    *api.tokens_fail.lock().expect("lock") = true;
    let due = t0() + chrono::Duration::seconds(2890 + 2900);
    v.refresh_with(&api, &p, due).await.expect("kept");
    assert_eq!(read(token).0, "token-2-default");
    let expired = t0() + chrono::Duration::seconds(2890 + 3700);
    let err = v
        .refresh_with(&api, &p, expired)
        .await
        .expect_err("expired");
    assert!(
        err.failures()[0]
            .message
            .starts_with("token default expired and refresh failed: "),
        "{err}"
    );
}

#[test]
fn tokens_are_renewed_after_80_percent_of_their_lifetime_or_a_day() {
    let expires = t0() + chrono::Duration::seconds(1000);
    assert!(!token_requires_refresh(
        expires,
        1000,
        t0() + chrono::Duration::seconds(799)
    ));
    assert!(token_requires_refresh(
        expires,
        1000,
        t0() + chrono::Duration::seconds(801)
    ));
    let year = 365 * 24 * 3600;
    let long = t0() + chrono::Duration::seconds(year);
    assert!(!token_requires_refresh(
        long,
        year,
        t0() + chrono::Duration::hours(23)
    ));
    assert!(token_requires_refresh(
        long,
        year,
        t0() + chrono::Duration::hours(25)
    ));
}

#[tokio::test]
async fn the_manager_retries_with_back_off_and_reports_each_failure_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pod_dir = tmp.path().join("pods/uid-1");
    let api = FakeApi::new(t0());
    let p = pod(vec![kube_api_access()], vec![]);
    let mut m = VolumeManager::new();

    let s = m.sync_with(&api, &p, &pod_dir, t0()).await;
    assert!(!s.ready);
    assert_eq!(s.new_failures.len(), 1);
    assert_eq!(
        m.next_wake(),
        Some(t0() + chrono::Duration::milliseconds(500))
    );
    // Not yet due: no attempt.
    let s = m
        .sync_with(
            &api,
            &p,
            &pod_dir,
            t0() + chrono::Duration::milliseconds(100),
        )
        .await;
    assert!(!s.ready && s.new_failures.is_empty());
    assert_eq!(api.token_count(), 1);
    // Due: tried again, same failure, not reported again; the back-off doubles.
    let t1 = t0() + chrono::Duration::milliseconds(500);
    let s = m.sync_with(&api, &p, &pod_dir, t1).await;
    assert!(!s.ready && s.new_failures.is_empty());
    assert_eq!(api.token_count(), 2);
    assert_eq!(m.next_wake(), Some(t1 + chrono::Duration::seconds(1)));

    api.set_config_map("kube-root-ca.crt", &[("ca.crt", "PEM")]);
    let t2 = t1 + chrono::Duration::seconds(1);
    let s = m.sync_with(&api, &p, &pod_dir, t2).await;
    assert!(s.ready && s.new_failures.is_empty());
    assert!(m.volumes().is_some());
    assert_eq!(m.next_wake(), Some(t2 + chrono::Duration::seconds(10)));

    // A refresh that fails reports the failure but the volumes stay usable.
    api.config_maps.lock().expect("lock").clear();
    let s = m
        .sync_with(&api, &p, &pod_dir, t2 + chrono::Duration::seconds(10))
        .await;
    assert!(s.ready);
    assert_eq!(s.new_failures.len(), 1);
    let token = m
        .volumes()
        .and_then(|v| v.volume_path("kube-api-access-abcde"))
        .expect("path")
        .join("ca.crt");
    assert_eq!(std::fs::read_to_string(token).expect("kept"), "PEM");
}

#[tokio::test]
async fn cleanup_removes_the_volumes_but_not_host_paths() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pod_dir = tmp.path().join("pods/uid-1");
    let api = fake_with_objects();
    let p = pod(all_kinds(tmp.path()), vec![]);
    prepare_with(&api, &p, &pod_dir, t0())
        .await
        .expect("prepared");
    assert!(pod_dir.join("volumes").is_dir());
    cleanup(&pod_dir).await.expect("cleanup");
    assert!(!pod_dir.join("volumes").exists());
    assert!(tmp.path().join("shared").is_dir());
    cleanup(&pod_dir).await.expect("idempotent");
}
