//! A pod's volumes on the node: the kubelet's volume manager and its volume plugins, reduced
//! to what one machine needs.
//!
//! [`prepare`] materialises every volume of the pod under `<pod_dir>/volumes/<plugin>/<name>/`
//! (plugin directory names as upstream's: `kubernetes.io~empty-dir`, `kubernetes.io~configmap`,
//! `kubernetes.io~secret`, `kubernetes.io~downward-api`, `kubernetes.io~projected`; a
//! `hostPath` volume is the host path itself). [`PodVolumes::mounts_for`] turns a container's
//! `volumeMounts` into the bind [`Mount`]s the runtime makes, and [`PodVolumes::refresh`]
//! re-projects ConfigMap, Secret, downward API and service-account token contents so running
//! containers see updates. [`VolumeManager`] is the pod worker's state around all that:
//! retries with back-off, `FailedMount` reports, the refresh period.
//!
//! Volume types:
//! - `emptyDir`: a directory (mode 0777). `medium: Memory` is a plain directory too — no tmpfs
//!   is mounted and `sizeLimit` is not enforced, so nothing has to be unmounted when the pod
//!   goes away;
//! - `hostPath`: the path, checked or created per its `type` ([`host_path::check_type`]);
//! - `configMap`, `secret`, `downwardAPI`, `projected` (`serviceAccountToken`, `configMap`,
//!   `secret`, `downwardAPI`): files written by the [`atomic_writer::AtomicWriter`], owned by
//!   the agent's user (root), with the modes the spec asks for (default 0644). Tokens come
//!   from the TokenRequest API bound to the pod and are renewed once 80% of their lifetime
//!   passed, as the kubelet's token manager does;
//! - anything else (persistentVolumeClaim, nfs, csi, …) fails to set up with a message saying
//!   it is not supported.
//!
//! A failed set-up is reported as upstream words it — `MountVolume.SetUp failed for volume "x"
//! : configmap "x" not found` — and the pod stays `ContainerCreating` until it succeeds.

pub mod atomic_writer;
pub mod host_path;
pub mod payload;
pub mod subpath;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Node, Pod, ProjectedVolumeSource, Secret, ServiceAccount,
    ServiceAccountTokenProjection, Volume,
};
use kube::Api;
use kube::api::PostParams;

use self::atomic_writer::{AtomicWriter, FileProjection, Payload};
use self::payload::{DEFAULT_MODE, aggregate};
use self::subpath::SubPathError;
use super::env::{self, Env, HostCapacity};

/// Upstream's escaped plugin names, the directories under `<pod_dir>/volumes/`.
pub const EMPTY_DIR_PLUGIN: &str = "kubernetes.io~empty-dir";
pub const CONFIG_MAP_PLUGIN: &str = "kubernetes.io~configmap";
pub const SECRET_PLUGIN: &str = "kubernetes.io~secret";
pub const DOWNWARD_API_PLUGIN: &str = "kubernetes.io~downward-api";
pub const PROJECTED_PLUGIN: &str = "kubernetes.io~projected";

/// `expirationSeconds` of a token projection that does not say (API default).
const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 60 * 60;
/// The token manager renews tokens older than a day whatever their lifetime (`maxTTL`).
const MAX_TOKEN_TTL_SECONDS: i64 = 24 * 60 * 60;
/// Back-off between set-up attempts (upstream's volume operations: 500 ms doubling to 2m2s).
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(122);
/// How often a running pod's ConfigMap, Secret, downward API and token files are refreshed.
pub const REFRESH_PERIOD: Duration = Duration::from_secs(10);

/// A bind mount a container needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Host path: a volume directory, a subPath inside it, or a hostPath (file or directory).
    pub source: PathBuf,
    /// Absolute path in the container (`volumeMounts[].mountPath`).
    pub target: String,
    /// Asked for by the mount, or forced because the volume is API data (ConfigMap, Secret,
    /// downward API, projected), which containers may never write.
    pub read_only: bool,
}

/// One volume that could not be set up; displays as the kubelet's `FailedMount` event message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetUpFailure {
    pub volume: String,
    pub message: String,
}

impl std::fmt::Display for SetUpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MountVolume.SetUp failed for volume {:?} : {}",
            self.volume, self.message
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// Volumes that could not be set up: one `FailedMount` Warning event each; the pod's
    /// containers keep waiting in `ContainerCreating`.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    SetUp(Vec<SetUpFailure>),
    /// The errors below come from [`PodVolumes::mounts_for`]; the kubelet reports them as the
    /// container's `CreateContainerConfigError`.
    #[error("cannot find volume {volume:?} to mount into container {container:?}")]
    UnknownVolume { volume: String, container: String },
    /// `subPathExpr` names variables the container does not define (or defines empty).
    #[error("missing value for {0}")]
    SubPathExpr(String),
    #[error(transparent)]
    SubPath(#[from] SubPathError),
    #[error("removing pod volumes {}: {source}", path.display())]
    Cleanup { path: PathBuf, source: io::Error },
}

impl VolumeError {
    /// The volumes that failed to set up (empty for other errors).
    pub fn failures(&self) -> &[SetUpFailure] {
        match self {
            VolumeError::SetUp(f) => f,
            _ => &[],
        }
    }
}

/// A volume as it is on the host.
#[derive(Clone, Debug)]
struct PreparedVolume {
    name: String,
    path: PathBuf,
    /// The plugin's `ReadOnly` attribute (API data volumes): every mount is read-only.
    must_mount_read_only: bool,
}

/// A TokenRequest answer the pod's token projections reuse until it needs renewing.
#[derive(Clone, Debug)]
struct IssuedToken {
    token: String,
    expires: DateTime<Utc>,
    expiration_seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TokenKey {
    service_account: String,
    audience: String,
    expiration_seconds: i64,
}

/// Whether the kubelet's token manager would fetch a new token now: 80% of the requested
/// lifetime passed (the status' expiry is the requested one), or the token is a day old.
pub fn token_requires_refresh(
    expires: DateTime<Utc>,
    expiration_seconds: i64,
    now: DateTime<Utc>,
) -> bool {
    let issued = expires - chrono::Duration::seconds(expiration_seconds);
    now > issued + chrono::Duration::seconds(MAX_TOKEN_TTL_SECONDS)
        || now > expires - chrono::Duration::seconds(expiration_seconds / 5)
}

/// What setting volumes up reads from the API; a trait so the plugins are tested without one.
trait ObjectSource {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String>;
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String>;
    async fn token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, String>;
    /// The node's allocatable cpu and memory, for `resourceFieldRef` on unset limits.
    async fn node_allocatable(&self, node: &str) -> Result<HostCapacity, String>;
}

/// The API as the node sees it (`system:node:<name>`).
struct ApiObjects<'a> {
    client: &'a kube::Client,
}

fn api_message(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message,
        other => other.to_string(),
    }
}

impl ObjectSource for ApiObjects<'_> {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(api_message)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(api_message)
    }

    async fn token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, String> {
        Api::<ServiceAccount>::namespaced(self.client.clone(), namespace)
            .create_token_request(service_account, &PostParams::default(), request)
            .await
            .map_err(api_message)
    }

    async fn node_allocatable(&self, node: &str) -> Result<HostCapacity, String> {
        let node = Api::<Node>::all(self.client.clone())
            .get(node)
            .await
            .map_err(api_message)?;
        let allocatable = node.status.and_then(|s| s.allocatable).unwrap_or_default();
        let quantity = |name: &str| {
            allocatable
                .get(name)
                .and_then(|q| nanokube_registry::quantity::Quantity::try_from(q).ok())
                .and_then(|q| i64::try_from(q.value_ceil()).ok())
                .unwrap_or(0)
        };
        Ok(HostCapacity {
            cpus: quantity("cpu"),
            memory_bytes: quantity("memory"),
        })
    }
}

/// What kind of volume, and its source.
enum Kind<'a> {
    EmptyDir,
    HostPath { path: &'a str, type_: &'a str },
    ConfigMap(&'a k8s_openapi::api::core::v1::ConfigMapVolumeSource),
    Secret(&'a k8s_openapi::api::core::v1::SecretVolumeSource),
    DownwardApi(&'a k8s_openapi::api::core::v1::DownwardAPIVolumeSource),
    Projected(&'a ProjectedVolumeSource),
    Unsupported(String),
}

fn kind_of(v: &Volume) -> Kind<'_> {
    if v.empty_dir.is_some() {
        Kind::EmptyDir
    } else if let Some(h) = &v.host_path {
        Kind::HostPath {
            path: &h.path,
            type_: h.type_.as_deref().unwrap_or(""),
        }
    } else if let Some(c) = &v.config_map {
        Kind::ConfigMap(c)
    } else if let Some(s) = &v.secret {
        Kind::Secret(s)
    } else if let Some(d) = &v.downward_api {
        Kind::DownwardApi(d)
    } else if let Some(p) = &v.projected {
        Kind::Projected(p)
    } else {
        // Name the source field the spec used, as it appears in the manifest.
        let name = serde_json::to_value(v)
            .ok()
            .and_then(|j| {
                j.as_object()
                    .and_then(|o| o.keys().find(|k| *k != "name").cloned())
            })
            .unwrap_or_else(|| "<none>".into());
        Kind::Unsupported(name)
    }
}

/// Whether the volume's contents come from the API and are refreshed.
fn is_api_data(v: &Volume) -> bool {
    matches!(
        kind_of(v),
        Kind::ConfigMap(_) | Kind::Secret(_) | Kind::DownwardApi(_) | Kind::Projected(_)
    )
}

/// The pod's volumes as set up on the host: what [`PodVolumes::mounts_for`] and
/// [`PodVolumes::refresh`] need.
#[derive(Debug)]
pub struct PodVolumes {
    pod_dir: PathBuf,
    volumes: Vec<PreparedVolume>,
    tokens: BTreeMap<TokenKey, IssuedToken>,
}

/// Sets up every volume of `pod` under `pod_dir` (`<pods_dir>/<uid>/`). Fails with
/// [`VolumeError::SetUp`] listing each volume that could not be set up.
pub async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    pod_dir: &Path,
) -> Result<PodVolumes, VolumeError> {
    prepare_with(&ApiObjects { client }, pod, pod_dir, Utc::now()).await
}

async fn prepare_with<S: ObjectSource>(
    source: &S,
    pod: &Pod,
    pod_dir: &Path,
    now: DateTime<Utc>,
) -> Result<PodVolumes, VolumeError> {
    let mut volumes = PodVolumes {
        pod_dir: pod_dir.to_path_buf(),
        volumes: Vec::new(),
        tokens: BTreeMap::new(),
    };
    let failures = volumes.set_up_all(source, pod, now, false).await;
    if failures.is_empty() {
        Ok(volumes)
    } else {
        Err(VolumeError::SetUp(failures))
    }
}

/// Removes `<pod_dir>/volumes` (the pod is gone). hostPath volumes are not under it and stay.
pub async fn cleanup(pod_dir: &Path) -> Result<(), VolumeError> {
    let path = pod_dir.join("volumes");
    match tokio::fs::remove_dir_all(&path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(VolumeError::Cleanup { path, source }),
    }
}

impl PodVolumes {
    /// The bind mounts of `container`, in `volumeMounts` order. `env` is the container's
    /// environment, for `subPathExpr`. A subPath is created when missing and must stay inside
    /// its volume.
    pub fn mounts_for(&self, container: &Container, env: &Env) -> Result<Vec<Mount>, VolumeError> {
        let mut mounts = Vec::new();
        for m in container.volume_mounts.iter().flatten() {
            let volume = self
                .volumes
                .iter()
                .find(|v| v.name == m.name)
                .ok_or_else(|| VolumeError::UnknownVolume {
                    volume: m.name.clone(),
                    container: container.name.clone(),
                })?;
            let sub_path = match m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
                Some(expr) => expand_sub_path_expr(expr, env)?,
                None => m.sub_path.clone().unwrap_or_default(),
            };
            let source = if sub_path.is_empty() {
                volume.path.clone()
            } else {
                subpath::resolve(&volume.path, &sub_path, &m.name, &container.name)?
            };
            mounts.push(Mount {
                source,
                target: m.mount_path.clone(),
                read_only: m.read_only.unwrap_or(false) || volume.must_mount_read_only,
            });
        }
        Ok(mounts)
    }

    /// Re-projects the ConfigMap, Secret, downward API and projected volumes from the current
    /// objects (and `pod`'s metadata), renewing tokens that are due. Files only change when
    /// their contents did; a failure leaves the previous files in place.
    pub async fn refresh(&mut self, client: &kube::Client, pod: &Pod) -> Result<(), VolumeError> {
        self.refresh_with(&ApiObjects { client }, pod, Utc::now())
            .await
    }

    async fn refresh_with<S: ObjectSource>(
        &mut self,
        source: &S,
        pod: &Pod,
        now: DateTime<Utc>,
    ) -> Result<(), VolumeError> {
        let failures = self.set_up_all(source, pod, now, true).await;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(VolumeError::SetUp(failures))
        }
    }

    /// The host path of volume `name`, once set up.
    pub fn volume_path(&self, name: &str) -> Option<&Path> {
        self.volumes
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.path.as_path())
    }

    async fn set_up_all<S: ObjectSource>(
        &mut self,
        source: &S,
        pod: &Pod,
        now: DateTime<Utc>,
        api_data_only: bool,
    ) -> Vec<SetUpFailure> {
        let mut failures = Vec::new();
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        for v in &volumes {
            if api_data_only && !is_api_data(v) {
                continue;
            }
            match self.set_up(source, pod, v, now).await {
                Ok(prepared) => match self.volumes.iter_mut().find(|p| p.name == v.name) {
                    Some(slot) => *slot = prepared,
                    None => self.volumes.push(prepared),
                },
                Err(message) => failures.push(SetUpFailure {
                    volume: v.name.clone(),
                    message,
                }),
            }
        }
        failures
    }

    fn plugin_dir(&self, plugin: &str, name: &str) -> PathBuf {
        self.pod_dir.join("volumes").join(plugin).join(name)
    }

    async fn set_up<S: ObjectSource>(
        &mut self,
        source: &S,
        pod: &Pod,
        v: &Volume,
        now: DateTime<Utc>,
    ) -> Result<PreparedVolume, String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let prepared = |path: PathBuf, ro: bool| PreparedVolume {
            name: v.name.clone(),
            path,
            must_mount_read_only: ro,
        };
        let (plugin, payload) = match kind_of(v) {
            Kind::EmptyDir => {
                let dir = self.plugin_dir(EMPTY_DIR_PLUGIN, &v.name);
                make_dir(&dir, 0o777)?;
                return Ok(prepared(dir, false));
            }
            Kind::HostPath { path, type_ } => {
                host_path::check_type(path, type_)?;
                return Ok(prepared(PathBuf::from(path), false));
            }
            Kind::Unsupported(t) => {
                return Err(format!("volume type {t:?} is not supported by nanokube"));
            }
            Kind::ConfigMap(c) => {
                let cm = source.config_map(namespace, &c.name).await?;
                let payload = payload::config_map_payload(
                    &c.name,
                    cm.as_ref(),
                    c.items.as_deref(),
                    c.default_mode.unwrap_or(DEFAULT_MODE),
                    c.optional.unwrap_or(false),
                )?;
                (CONFIG_MAP_PLUGIN, payload)
            }
            Kind::Secret(s) => {
                let name = s.secret_name.clone().unwrap_or_default();
                let secret = source.secret(namespace, &name).await?;
                let payload = payload::secret_payload(
                    &name,
                    secret.as_ref(),
                    s.items.as_deref(),
                    s.default_mode.unwrap_or(DEFAULT_MODE),
                    s.optional.unwrap_or(false),
                )?;
                (SECRET_PLUGIN, payload)
            }
            Kind::DownwardApi(d) => {
                let items = d.items.as_deref().unwrap_or_default();
                let host = host_capacity_if_needed(source, pod, items).await?;
                let payload = payload::downward_api_payload(
                    items,
                    pod,
                    host,
                    d.default_mode.unwrap_or(DEFAULT_MODE),
                )?;
                (DOWNWARD_API_PLUGIN, payload)
            }
            Kind::Projected(p) => {
                let payload = self.projected_payload(source, pod, p, now).await?;
                (PROJECTED_PLUGIN, payload)
            }
        };
        let dir = self.plugin_dir(plugin, &v.name);
        AtomicWriter::new(&dir)
            .write(&payload, now)
            .map_err(|e| e.to_string())?;
        Ok(prepared(dir, true))
    }

    /// Every source of a projected volume into one payload; errors of all sources are
    /// aggregated, as upstream's `collectData`.
    async fn projected_payload<S: ObjectSource>(
        &mut self,
        source: &S,
        pod: &Pod,
        p: &ProjectedVolumeSource,
        now: DateTime<Utc>,
    ) -> Result<Payload, String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let default_mode = p.default_mode.unwrap_or(DEFAULT_MODE);
        let mut payload = Payload::new();
        let mut errors = Vec::new();
        for src in p.sources.iter().flatten() {
            let part = if let Some(s) = &src.secret {
                match source.secret(namespace, &s.name).await {
                    Ok(secret) => payload::secret_payload(
                        &s.name,
                        secret.as_ref(),
                        s.items.as_deref(),
                        default_mode,
                        s.optional.unwrap_or(false),
                    ),
                    Err(e) => Err(e),
                }
            } else if let Some(c) = &src.config_map {
                match source.config_map(namespace, &c.name).await {
                    Ok(cm) => payload::config_map_payload(
                        &c.name,
                        cm.as_ref(),
                        c.items.as_deref(),
                        default_mode,
                        c.optional.unwrap_or(false),
                    ),
                    Err(e) => Err(e),
                }
            } else if let Some(d) = &src.downward_api {
                let items = d.items.as_deref().unwrap_or_default();
                match host_capacity_if_needed(source, pod, items).await {
                    Ok(host) => payload::downward_api_payload(items, pod, host, default_mode),
                    Err(e) => Err(e),
                }
            } else if let Some(t) = &src.service_account_token {
                self.token(source, pod, t, now).await.map(|token| {
                    Payload::from([(
                        t.path.clone(),
                        FileProjection {
                            data: token.into_bytes(),
                            mode: (default_mode as u32) & 0o777,
                        },
                    )])
                })
            } else if src.cluster_trust_bundle.is_some() {
                Err("clusterTrustBundle projections are not supported by nanokube".into())
            } else {
                Ok(Payload::new())
            };
            match part {
                Ok(files) => payload.extend(files),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(payload)
        } else {
            Err(aggregate(&errors))
        }
    }

    /// A token for the pod's service account, bound to the pod: the cached one while it is
    /// fresh, else a new TokenRequest. A failed renewal keeps serving an unexpired token.
    async fn token<S: ObjectSource>(
        &mut self,
        source: &S,
        pod: &Pod,
        t: &ServiceAccountTokenProjection,
        now: DateTime<Utc>,
    ) -> Result<String, String> {
        let spec = pod.spec.as_ref();
        let service_account = spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let audience = t.audience.clone().unwrap_or_default();
        let expiration_seconds = t
            .expiration_seconds
            .unwrap_or(DEFAULT_TOKEN_EXPIRATION_SECONDS);
        let key = TokenKey {
            service_account: service_account.clone(),
            audience: audience.clone(),
            expiration_seconds,
        };
        let cached = self.tokens.get(&key).cloned();
        if let Some(c) = &cached
            && !token_requires_refresh(c.expires, c.expiration_seconds, now)
        {
            return Ok(c.token.clone());
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: if audience.is_empty() {
                    Vec::new()
                } else {
                    vec![audience]
                },
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let fetched = source
            .token(namespace, &service_account, &request)
            .await
            .and_then(|answer| {
                let status = answer
                    .status
                    .ok_or_else(|| "the TokenRequest answer has no status".to_string())?;
                let expires =
                    DateTime::from_timestamp(status.expiration_timestamp.0.as_second(), 0)
                        .ok_or_else(|| "the token's expiration is out of range".to_string())?;
                Ok(IssuedToken {
                    token: status.token,
                    expires,
                    expiration_seconds,
                })
            });
        match (fetched, cached) {
            (Ok(issued), _) => {
                let token = issued.token.clone();
                self.tokens.insert(key, issued);
                Ok(token)
            }
            (Err(e), Some(c)) if now < c.expires => {
                tracing::warn!(error = %e, "renewing a service account token failed, keeping the current one");
                Ok(c.token)
            }
            (Err(e), Some(_)) => Err(format!(
                "token {service_account} expired and refresh failed: {e}"
            )),
            (Err(e), None) => Err(format!("failed to fetch token: {e}")),
        }
    }
}

async fn host_capacity_if_needed<S: ObjectSource>(
    source: &S,
    pod: &Pod,
    items: &[k8s_openapi::api::core::v1::DownwardAPIVolumeFile],
) -> Result<Option<HostCapacity>, String> {
    if !payload::needs_host_capacity(items) {
        return Ok(None);
    }
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default();
    source.node_allocatable(node).await.map(Some)
}

fn make_dir(dir: &Path, mode: u32) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))
}

/// `subPathExpr` expanded against the container's variables; a reference to a variable that
/// is unset or empty is an error (`kubecontainer.ExpandContainerVolumeMounts`).
fn expand_sub_path_expr(expr: &str, env: &Env) -> Result<String, VolumeError> {
    let missing = RefCell::new(BTreeSet::new());
    let expanded = env::expand(expr, |name| match env.get(name) {
        Some(v) if !v.is_empty() => Some(v.to_string()),
        _ => {
            missing.borrow_mut().insert(name.to_string());
            Some(String::new())
        }
    });
    let missing = missing.into_inner();
    if missing.is_empty() {
        Ok(expanded)
    } else {
        Err(VolumeError::SubPathExpr(
            missing.into_iter().collect::<Vec<_>>().join(", "),
        ))
    }
}

/// What [`VolumeManager::sync`] found.
#[derive(Debug, Default)]
pub struct VolumeSync {
    /// Every volume is set up: containers may start.
    pub ready: bool,
    /// Failures not reported before (a failure that persists is reported once): one
    /// `FailedMount` Warning event each.
    pub new_failures: Vec<SetUpFailure>,
}

/// The pod worker's view of its pod's volumes: set up before the first container starts,
/// retried with back-off while that fails, refreshed every [`REFRESH_PERIOD`] afterwards.
#[derive(Debug, Default)]
pub struct VolumeManager {
    volumes: Option<PodVolumes>,
    next_attempt: Option<DateTime<Utc>>,
    backoff: Option<Duration>,
    next_refresh: Option<DateTime<Utc>>,
    reported: Vec<SetUpFailure>,
}

impl VolumeManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// The set-up volumes, for the containers' mounts.
    pub fn volumes(&self) -> Option<&PodVolumes> {
        self.volumes.as_ref()
    }

    /// Sets the volumes up when due (first time, or a retry after a failure), or refreshes
    /// them when the period passed.
    pub async fn sync(
        &mut self,
        client: &kube::Client,
        pod: &Pod,
        pod_dir: &Path,
        now: DateTime<Utc>,
    ) -> VolumeSync {
        self.sync_with(&ApiObjects { client }, pod, pod_dir, now)
            .await
    }

    async fn sync_with<S: ObjectSource>(
        &mut self,
        source: &S,
        pod: &Pod,
        pod_dir: &Path,
        now: DateTime<Utc>,
    ) -> VolumeSync {
        if let Some(volumes) = self.volumes.as_mut() {
            if self.next_refresh.is_some_and(|t| now < t) {
                return VolumeSync {
                    ready: true,
                    new_failures: Vec::new(),
                };
            }
            let result = volumes.refresh_with(source, pod, now).await;
            self.next_refresh = Some(now + period(REFRESH_PERIOD));
            let failures = match result {
                Ok(()) => Vec::new(),
                Err(e) => e.failures().to_vec(),
            };
            return VolumeSync {
                ready: true,
                new_failures: self.report(failures),
            };
        }
        if self.next_attempt.is_some_and(|t| now < t) {
            return VolumeSync::default();
        }
        match prepare_with(source, pod, pod_dir, now).await {
            Ok(v) => {
                self.volumes = Some(v);
                self.next_attempt = None;
                self.backoff = None;
                self.next_refresh = Some(now + period(REFRESH_PERIOD));
                self.reported.clear();
                VolumeSync {
                    ready: true,
                    new_failures: Vec::new(),
                }
            }
            Err(e) => {
                let delay = match self.backoff {
                    None => RETRY_INITIAL,
                    Some(d) => (d * 2).min(RETRY_MAX),
                };
                self.backoff = Some(delay);
                self.next_attempt = Some(now + period(delay));
                VolumeSync {
                    ready: false,
                    new_failures: self.report(e.failures().to_vec()),
                }
            }
        }
    }

    /// When the manager wants to run again: the next retry, or the next refresh.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        if self.volumes.is_some() {
            self.next_refresh
        } else {
            self.next_attempt
        }
    }

    fn report(&mut self, failures: Vec<SetUpFailure>) -> Vec<SetUpFailure> {
        let new = failures
            .iter()
            .filter(|f| !self.reported.contains(f))
            .cloned()
            .collect();
        self.reported = failures;
        new
    }
}

fn period(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests;
