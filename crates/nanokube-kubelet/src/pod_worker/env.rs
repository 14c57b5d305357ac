//! A container's environment and command line, built as the kubelet builds them
//! (`kubelet_pods.go: makeEnvironmentVariables`, `third_party/forked/golang/expansion`).
//!
//! Everything here is pure: ConfigMaps and Secrets the container refers to are fetched first
//! (see [`referenced_sources`]) and handed in as [`EnvSources`].

use super::volumes::payload::field_path_value;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};

/// The PATH a container gets when nothing else sets one (the image would, once there are images).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why a container's configuration cannot be turned into a process; the container waits with
/// reason `CreateContainerConfigError` and this message, as upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Where the API server is, for the `KUBERNETES_*` variables.
#[derive(Clone, Debug)]
pub struct ApiEndpoint {
    pub host: String,
    pub port: u16,
}

/// ConfigMaps and Secrets of the pod's namespace that the container refers to; an absent key
/// means the object does not exist.
#[derive(Clone, Debug, Default)]
pub struct EnvSources {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
}

/// What the host offers, for `resourceFieldRef` on limits the container does not set
/// (upstream falls back to the node's allocatable).
#[derive(Clone, Copy, Debug)]
pub struct HostCapacity {
    pub cpus: i64,
    pub memory_bytes: i64,
}

/// Names of the ConfigMaps and Secrets the container's `env` and `envFrom` refer to.
pub fn referenced_sources(container: &Container) -> (Vec<String>, Vec<String>) {
    let mut cms = Vec::new();
    let mut secrets = Vec::new();
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            cms.push(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        if let Some(vf) = &var.value_from {
            if let Some(r) = &vf.config_map_key_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &vf.secret_key_ref {
                secrets.push(r.name.clone());
            }
        }
    }
    cms.sort();
    cms.dedup();
    secrets.sort();
    secrets.dedup();
    (cms, secrets)
}

/// An ordered environment in which a later set of a name replaces the earlier value in place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env(Vec<(String, String)>);

impl Env {
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn vars(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Expands `$(VAR)` references as Kubernetes does: `$$` is an escaped `$`, a reference to an
/// unknown variable (or an unterminated one) stays as written.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The `KUBERNETES_*` service variables (§2.5), pointing at the API server itself since pods
/// share the host network and there is no service proxy yet.
pub fn service_env(api: &ApiEndpoint) -> Vec<(String, String)> {
    let host = &api.host;
    let port = api.port;
    let hostport = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let url = format!("tcp://{hostport}");
    let prefix = format!("KUBERNETES_PORT_{port}_TCP");
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host.clone()),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ("KUBERNETES_PORT".into(), url.clone()),
        (prefix.clone(), url),
        (format!("{prefix}_PROTO"), "tcp".into()),
        (format!("{prefix}_PORT"), port.to_string()),
        (format!("{prefix}_ADDR"), host.clone()),
    ]
}

/// Everything a pod-level `fieldRef` can read that is not in the pod object itself.
#[derive(Clone, Debug)]
pub struct PodContext<'a> {
    pub pod: &'a Pod,
    pub host_ip: &'a str,
    pub api: &'a ApiEndpoint,
    pub host: HostCapacity,
}

/// Builds the container's environment: defaults, service variables, `envFrom`, then `env`
/// (each value expanded against the variables defined before it).
pub fn build_env(
    ctx: &PodContext<'_>,
    container: &Container,
    sources: &EnvSources,
) -> Result<Env, ConfigError> {
    let pod = ctx.pod;
    let mut env = Env::default();
    env.set("PATH", DEFAULT_PATH);
    let hostname = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    env.set("HOSTNAME", hostname);
    for (k, v) in service_env(ctx.api) {
        env.set(k, v);
    }
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();

    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            match sources.config_maps.get(&r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        if valid_env_name(k) {
                            env.set(format!("{prefix}{k}"), v.clone());
                        }
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(ConfigError(format!("configmap \"{}\" not found", r.name))),
            }
        }
        if let Some(r) = &from.secret_ref {
            match sources.secrets.get(&r.name) {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        if valid_env_name(k) {
                            env.set(
                                format!("{prefix}{k}"),
                                String::from_utf8_lossy(&v.0).into_owned(),
                            );
                        }
                    }
                }
                None if r.optional == Some(true) => {}
                None => return Err(ConfigError(format!("secret \"{}\" not found", r.name))),
            }
        }
    }

    for var in container.env.iter().flatten() {
        let value = if let Some(vf) = &var.value_from {
            if let Some(f) = &vf.field_ref {
                Some(field_ref_value(ctx, &f.field_path)?)
            } else if let Some(r) = &vf.resource_field_ref {
                Some(resource_field_value(ctx, container, r)?)
            } else if let Some(r) = &vf.config_map_key_ref {
                match sources.config_maps.get(&r.name) {
                    Some(cm) => {
                        let v = cm
                            .data
                            .as_ref()
                            .and_then(|d| d.get(&r.key))
                            .cloned()
                            .or_else(|| {
                                cm.binary_data
                                    .as_ref()
                                    .and_then(|d| d.get(&r.key))
                                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                            });
                        match v {
                            Some(v) => Some(v),
                            None if r.optional == Some(true) => None,
                            None => {
                                return Err(ConfigError(format!(
                                    "couldn't find key {} in ConfigMap {namespace}/{}",
                                    r.key, r.name
                                )));
                            }
                        }
                    }
                    None if r.optional == Some(true) => None,
                    None => return Err(ConfigError(format!("configmap \"{}\" not found", r.name))),
                }
            } else if let Some(r) = &vf.secret_key_ref {
                match sources.secrets.get(&r.name) {
                    Some(s) => match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => Some(String::from_utf8_lossy(&v.0).into_owned()),
                        None if r.optional == Some(true) => None,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in Secret {namespace}/{}",
                                r.key, r.name
                            )));
                        }
                    },
                    None if r.optional == Some(true) => None,
                    None => return Err(ConfigError(format!("secret \"{}\" not found", r.name))),
                }
            } else {
                None
            }
        } else {
            let raw = var.value.clone().unwrap_or_default();
            Some(expand(&raw, |name| env.get(name).map(str::to_string)))
        };
        if let Some(v) = value {
            env.set(var.name.clone(), v);
        }
    }
    Ok(env)
}

/// Upstream's relaxed rule (1.32): any printable ASCII except `=`.
fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
}

/// The downward API's `fieldRef` paths the kubelet resolves (upstream
/// `podFieldSelectorRuntimeValue`): the node-side ones here, the pod's metadata as a
/// downward API volume reads it (`fieldpath.ExtractFieldPathAsString`).
fn field_ref_value(ctx: &PodContext<'_>, path: &str) -> Result<String, ConfigError> {
    let spec = ctx.pod.spec.as_ref();
    Ok(match path {
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" | "status.hostIP" | "status.hostIPs" => {
            ctx.host_ip.to_string()
        }
        _ => field_path_value(ctx.pod, path).map_err(ConfigError)?,
    })
}

pub(crate) fn resource_field_value(
    ctx: &PodContext<'_>,
    container: &Container,
    r: &k8s_openapi::api::core::v1::ResourceFieldSelector,
) -> Result<String, ConfigError> {
    let resources = container.resources.as_ref();
    let (map, name) = match r.resource.split_once('.') {
        Some(("limits", n)) => (resources.and_then(|r| r.limits.as_ref()), n),
        Some(("requests", n)) => (resources.and_then(|r| r.requests.as_ref()), n),
        _ => {
            return Err(ConfigError(format!(
                "unsupported container resource: {}",
                r.resource
            )));
        }
    };
    let is_limit = r.resource.starts_with("limits.");
    let set = map.and_then(|m| m.get(name));
    let value_nanos = match (set, name) {
        (Some(q), _) => nanos(q)
            .ok_or_else(|| ConfigError(format!("invalid quantity {:?} for {}", q.0, r.resource)))?,
        (None, "cpu") if is_limit => i128::from(ctx.host.cpus) * NANO,
        (None, "memory") if is_limit => i128::from(ctx.host.memory_bytes) * NANO,
        (None, "cpu" | "memory" | "ephemeral-storage") => 0,
        (None, _) => {
            return Err(ConfigError(format!(
                "unsupported container resource: {}",
                r.resource
            )));
        }
    };
    let divisor = match &r.divisor {
        Some(d) => nanos(d).ok_or_else(|| ConfigError(format!("invalid divisor {:?}", d.0)))?,
        None => NANO,
    };
    if divisor <= 0 {
        return Err(ConfigError(format!("invalid divisor for {}", r.resource)));
    }
    // Upstream rounds up: 500m cpu with divisor 1 is 1.
    let v = (value_nanos + divisor - 1).div_euclid(divisor);
    Ok(v.to_string())
}

const NANO: i128 = 1_000_000_000;

/// A quantity in billionths of a unit: exact, since quantities have nano precision.
fn nanos(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> Option<i128> {
    nanokube_registry::quantity::Quantity::try_from(q)
        .ok()
        .map(|q| q.scaled_value_ceil(-9))
}

/// The process's argv: `command` replaces the image entrypoint and `args` its cmd; both are
/// expanded against the container's environment. Without an image store a container that does
/// not say what to run has nothing to run: `None`.
pub fn command_line(container: &Container, env: &Env) -> Option<Vec<String>> {
    let command = container.command.as_ref().filter(|c| !c.is_empty())?;
    let lookup = |name: &str| env.get(name).map(str::to_string);
    Some(
        command
            .iter()
            .chain(container.args.iter().flatten())
            .map(|s| expand(s, lookup))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
        ObjectFieldSelector, PodSpec, ResourceFieldSelector, ResourceRequirements,
        SecretKeySelector,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn vars(map: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = map
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |n| map.get(n).cloned()
    }

    #[test]
    fn expansion_follows_upstream_rules() {
        let l = vars(&[("A", "x"), ("B", "y")]);
        assert_eq!(expand("$(A)-$(B)", &l), "x-y");
        assert_eq!(expand("$$(A)", &l), "$(A)");
        assert_eq!(expand("$(UNKNOWN)", &l), "$(UNKNOWN)");
        assert_eq!(expand("a$b$", &l), "a$b$");
        assert_eq!(expand("$(A", &l), "$(A");
        assert_eq!(expand("$$$$", &l), "$$");
        assert_eq!(expand("$$$(A)", &l), "$x");
        assert_eq!(expand("", &l), "");
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns1".into()),
                uid: Some("u-1".into()),
                labels: Some([("app".to_string(), "demo".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node1".into()),
                service_account_name: Some("default".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn field(path: &str) -> Option<EnvVarSource> {
        Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn env_is_built_in_upstream_order() {
        let pod = pod();
        let api = ApiEndpoint {
            host: "10.0.0.5".into(),
            port: 6443,
        };
        let ctx = PodContext {
            pod: &pod,
            host_ip: "10.0.0.5",
            api: &api,
            host: HostCapacity {
                cpus: 8,
                memory_bytes: 1 << 30,
            },
        };
        let container = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                prefix: Some("CM_".into()),
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "cfg".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            env: Some(vec![
                EnvVar {
                    name: "POD".into(),
                    value_from: field("metadata.name"),
                    ..Default::default()
                },
                EnvVar {
                    name: "APP".into(),
                    value_from: field("metadata.labels['app']"),
                    ..Default::default()
                },
                EnvVar {
                    name: "GREETING".into(),
                    value: Some("hi $(POD) in $(UNDEFINED) $$(POD)".into()),
                    ..Default::default()
                },
                EnvVar {
                    name: "PASS".into(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "sec".into(),
                            key: "password".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "MAYBE".into(),
                    value_from: Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "absent".into(),
                            key: "k".into(),
                            optional: Some(true),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "CPU_M".into(),
                    value_from: Some(EnvVarSource {
                        resource_field_ref: Some(ResourceFieldSelector {
                            resource: "limits.cpu".into(),
                            divisor: Some(Quantity("1m".into())),
                            container_name: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "MEM_MI".into(),
                    value_from: Some(EnvVarSource {
                        resource_field_ref: Some(ResourceFieldSelector {
                            resource: "requests.memory".into(),
                            divisor: Some(Quantity("1Mi".into())),
                            container_name: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            resources: Some(ResourceRequirements {
                requests: Some([("memory".to_string(), Quantity("100M".into()))].into()),
                ..Default::default()
            }),
            command: Some(vec!["/bin/echo".into()]),
            args: Some(vec!["$(GREETING)".into(), "$(CM_KEY)".into()]),
            ..Default::default()
        };
        let mut sources = EnvSources::default();
        sources.config_maps.insert(
            "cfg".into(),
            ConfigMap {
                data: Some([("KEY".to_string(), "v".to_string())].into()),
                ..Default::default()
            },
        );
        sources.secrets.insert(
            "sec".into(),
            Secret {
                data: Some([("password".to_string(), ByteString(b"s3cret".to_vec()))].into()),
                ..Default::default()
            },
        );
        let env = build_env(&ctx, &container, &sources).expect("env");
        assert_eq!(env.get("PATH"), Some(DEFAULT_PATH));
        assert_eq!(env.get("HOSTNAME"), Some("web"));
        assert_eq!(env.get("KUBERNETES_SERVICE_HOST"), Some("10.0.0.5"));
        assert_eq!(env.get("KUBERNETES_SERVICE_PORT_HTTPS"), Some("6443"));
        assert_eq!(env.get("KUBERNETES_PORT"), Some("tcp://10.0.0.5:6443"));
        assert_eq!(env.get("KUBERNETES_PORT_6443_TCP_ADDR"), Some("10.0.0.5"));
        assert_eq!(env.get("CM_KEY"), Some("v"));
        assert_eq!(env.get("POD"), Some("web"));
        assert_eq!(env.get("APP"), Some("demo"));
        assert_eq!(env.get("GREETING"), Some("hi web in $(UNDEFINED) $(POD)"));
        assert_eq!(env.get("PASS"), Some("s3cret"));
        assert_eq!(env.get("MAYBE"), None);
        assert_eq!(env.get("CPU_M"), Some("8000"));
        assert_eq!(env.get("MEM_MI"), Some("96"));
        assert_eq!(
            command_line(&container, &env),
            Some(vec![
                "/bin/echo".to_string(),
                "hi web in $(UNDEFINED) $(POD)".to_string(),
                "v".to_string()
            ])
        );

        sources.secrets.clear();
        let err = build_env(&ctx, &container, &sources).expect_err("missing secret");
        assert_eq!(err.0, "secret \"sec\" not found");

        let no_command = Container {
            name: "c".into(),
            args: Some(vec!["x".into()]),
            ..Default::default()
        };
        assert_eq!(command_line(&no_command, &env), None);
    }

    #[test]
    fn ipv6_api_host_is_bracketed_in_urls() {
        let vars = service_env(&ApiEndpoint {
            host: "::1".into(),
            port: 443,
        });
        assert!(vars.contains(&("KUBERNETES_PORT".to_string(), "tcp://[::1]:443".to_string())));
        assert!(vars.contains(&("KUBERNETES_SERVICE_HOST".to_string(), "::1".to_string())));
    }
}
