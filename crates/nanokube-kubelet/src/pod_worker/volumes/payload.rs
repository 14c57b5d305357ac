//! The files of ConfigMap, Secret and downward API volumes (and of those sources inside a
//! projected volume), computed from objects already fetched: upstream's
//! `configmap.MakePayload`, `secret.MakePayload` and `downwardapi.CollectData`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret};
use nanokube_registry::goformat::go_quote;

use super::atomic_writer::{FileProjection, Payload};
use crate::pod_worker::env::{self, ApiEndpoint, HostCapacity, PodContext};

/// `0644`, the default mode of ConfigMap, Secret, downward API and projected volume files.
pub const DEFAULT_MODE: i32 = 0o644;

/// `utilerrors.NewAggregate(...).Error()`: one error alone, several as `[a, b]`.
pub fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn mode_bits(mode: i32) -> u32 {
    (mode as u32) & 0o777
}

/// A ConfigMap's keys (`data` and `binaryData`) as files, or only the listed `items`.
/// `config_map` is `None` when the object does not exist: an error (`configmap "x" not
/// found`) unless the volume is optional, when it is an empty volume.
pub fn config_map_payload(
    name: &str,
    config_map: Option<&ConfigMap>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let empty = ConfigMap::default();
    let config_map = match config_map {
        Some(cm) => cm,
        None if optional => &empty,
        None => return Err(format!("configmap {} not found", go_quote(name))),
    };
    let mut all: BTreeMap<&str, &[u8]> = BTreeMap::new();
    for (k, v) in config_map.data.iter().flatten() {
        all.insert(k, v.as_bytes());
    }
    for (k, v) in config_map.binary_data.iter().flatten() {
        all.entry(k).or_insert(&v.0);
    }
    make_payload(&all, items, default_mode, optional, |key| {
        format!("configmap references non-existent config key: {key}")
    })
}

/// A Secret's `data` keys as files, or only the listed `items`; like [`config_map_payload`].
pub fn secret_payload(
    name: &str,
    secret: Option<&Secret>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let empty = Secret::default();
    let secret = match secret {
        Some(s) => s,
        None if optional => &empty,
        None => return Err(format!("secret {} not found", go_quote(name))),
    };
    let all: BTreeMap<&str, &[u8]> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_slice()))
        .collect();
    make_payload(&all, items, default_mode, optional, |key| {
        format!("secret references non-existent secret key: {key}")
    })
}

fn make_payload(
    all: &BTreeMap<&str, &[u8]>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
    missing_key: impl Fn(&str) -> String,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (key, data) in all {
                payload.insert(
                    (*key).to_string(),
                    FileProjection {
                        data: data.to_vec(),
                        mode: mode_bits(default_mode),
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                let Some(data) = all.get(item.key.as_str()) else {
                    if optional {
                        continue;
                    }
                    return Err(missing_key(&item.key));
                };
                payload.insert(
                    item.path.clone(),
                    FileProjection {
                        data: data.to_vec(),
                        mode: mode_bits(item.mode.unwrap_or(default_mode)),
                    },
                );
            }
        }
    }
    Ok(payload)
}

/// `fieldpath.FormatMap`: `key="value"` lines (Go `%q`), sorted by key, no final newline.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `fieldpath.ExtractFieldPathAsString`: the pod metadata a downward API volume may show.
pub fn field_path_value(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let subscript = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    Ok(match path {
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        _ => {
            if let Some(key) = subscript("metadata.annotations['") {
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.labels['") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(format!("unsupported fieldPath: {path}"));
            }
        }
    })
}

/// The downward API files: pod metadata by `fieldRef`, a container's resources by
/// `resourceFieldRef` (unset limits fall back to `host`, the node's allocatable). Every item
/// is tried; the errors are aggregated.
pub fn downward_api_payload(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    host: Option<HostCapacity>,
    default_mode: i32,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let mode = mode_bits(item.mode.unwrap_or(default_mode));
        let value = if let Some(f) = &item.field_ref {
            field_path_value(pod, &f.field_path)
        } else if let Some(r) = &item.resource_field_ref {
            resource_value(pod, r, host)
        } else {
            Ok(String::new())
        };
        match value {
            Ok(v) => {
                payload.insert(
                    item.path.clone(),
                    FileProjection {
                        data: v.into_bytes(),
                        mode,
                    },
                );
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(payload)
    } else {
        Err(aggregate(&errors))
    }
}

/// Whether any item needs the node's allocatable resources.
pub fn needs_host_capacity(items: &[DownwardAPIVolumeFile]) -> bool {
    items.iter().any(|i| i.resource_field_ref.is_some())
}

fn resource_value(
    pod: &Pod,
    r: &k8s_openapi::api::core::v1::ResourceFieldSelector,
    host: Option<HostCapacity>,
) -> Result<String, String> {
    let container_name = r.container_name.as_deref().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let container = spec
        .into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| c.name == container_name)
        .ok_or_else(|| format!("container {container_name} not found"))?;
    let host = host.ok_or_else(|| "node allocatable resources are unknown".to_string())?;
    // Only `host` is read for resource values; the endpoint is an environment matter.
    let api = ApiEndpoint {
        host: String::new(),
        port: 0,
    };
    let ctx = PodContext {
        pod,
        host_ip: "",
        api: &api,
        host,
    };
    env::resource_field_value(&ctx, container, r).map_err(|e| e.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        Container, ObjectFieldSelector, PodSpec, ResourceFieldSelector, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    fn text(p: &Payload, path: &str) -> (String, u32) {
        let f = p.get(path).unwrap_or_else(|| panic!("{path} in {p:?}"));
        (String::from_utf8_lossy(&f.data).into_owned(), f.mode)
    }

    fn config_map() -> ConfigMap {
        ConfigMap {
            data: Some([("app.conf".to_string(), "x=1\n".to_string())].into()),
            binary_data: Some([("blob".to_string(), ByteString(vec![0, 1, 2]))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn every_config_map_key_becomes_a_file_with_the_default_mode() {
        let p = config_map_payload("cfg", Some(&config_map()), None, DEFAULT_MODE, false)
            .expect("payload");
        assert_eq!(p.len(), 2);
        assert_eq!(text(&p, "app.conf"), ("x=1\n".into(), 0o644));
        assert_eq!(p["blob"].data, vec![0, 1, 2]);
    }

    #[test]
    fn items_select_keys_rename_them_and_set_modes() {
        let items = [item("app.conf", "conf/app.conf", Some(0o400))];
        let p = config_map_payload("cfg", Some(&config_map()), Some(&items), 0o755, false)
            .expect("payload");
        assert_eq!(p.keys().collect::<Vec<_>>(), ["conf/app.conf"]);
        assert_eq!(text(&p, "conf/app.conf").1, 0o400);
        let items = [item("nope", "n", None)];
        assert_eq!(
            config_map_payload("cfg", Some(&config_map()), Some(&items), 0o644, false),
            Err("configmap references non-existent config key: nope".into())
        );
        let optional = config_map_payload("cfg", Some(&config_map()), Some(&items), 0o644, true)
            .expect("optional");
        assert!(optional.is_empty());
    }

    #[test]
    fn a_missing_object_is_upstreams_not_found_unless_optional() {
        assert_eq!(
            config_map_payload("cfg", None, None, DEFAULT_MODE, false),
            Err("configmap \"cfg\" not found".into())
        );
        assert_eq!(
            secret_payload("creds", None, None, DEFAULT_MODE, false),
            Err("secret \"creds\" not found".into())
        );
        assert_eq!(
            secret_payload("creds", None, None, DEFAULT_MODE, true),
            Ok(Payload::new())
        );
    }

    #[test]
    fn secret_data_is_written_decoded() {
        let s = Secret {
            data: Some([("password".to_string(), ByteString(b"s3cret".to_vec()))].into()),
            ..Default::default()
        };
        let p = secret_payload("creds", Some(&s), None, DEFAULT_MODE, false).expect("payload");
        assert_eq!(text(&p, "password"), ("s3cret".into(), 0o644));
        assert_eq!(
            secret_payload(
                "creds",
                Some(&s),
                Some(&[item("user", "u", None)]),
                0o644,
                false
            ),
            Err("secret references non-existent secret key: user".into())
        );
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns1".into()),
                uid: Some("u-1".into()),
                labels: Some(
                    [
                        ("tier".to_string(), "front".to_string()),
                        ("app".to_string(), "demo".to_string()),
                    ]
                    .into(),
                ),
                annotations: Some([("note".to_string(), "say \"hi\"".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some([("memory".to_string(), Quantity("64Mi".into()))].into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn field_item(path: &str, field: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: field.into(),
            }),
            ..Default::default()
        }
    }

    fn resource_item(path: &str, resource: &str, divisor: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some("main".into()),
                resource: resource.into(),
                divisor: Some(Quantity(divisor.into())),
            }),
            mode: Some(0o600),
            ..Default::default()
        }
    }

    #[test]
    fn downward_api_files_show_metadata_as_upstream_formats_it() {
        let items = [
            field_item("labels", "metadata.labels"),
            field_item("annotations", "metadata.annotations"),
            field_item("name", "metadata.name"),
            field_item("namespace", "metadata.namespace"),
            field_item("uid", "metadata.uid"),
            field_item("tier", "metadata.labels['tier']"),
        ];
        let p = downward_api_payload(&items, &pod(), None, DEFAULT_MODE).expect("payload");
        assert_eq!(text(&p, "labels").0, "app=\"demo\"\ntier=\"front\"");
        assert_eq!(text(&p, "annotations").0, "note=\"say \\\"hi\\\"\"");
        assert_eq!(text(&p, "name").0, "web");
        assert_eq!(text(&p, "namespace").0, "ns1");
        assert_eq!(text(&p, "uid").0, "u-1");
        assert_eq!(text(&p, "tier"), ("front".into(), 0o644));
    }

    #[test]
    fn downward_api_resources_use_the_divisor_and_the_node_for_unset_limits() {
        let host = HostCapacity {
            cpus: 4,
            memory_bytes: 8 << 30,
        };
        let items = [
            resource_item("mem_request", "requests.memory", "1Mi"),
            resource_item("cpu_limit", "limits.cpu", "1m"),
        ];
        let p = downward_api_payload(&items, &pod(), Some(host), DEFAULT_MODE).expect("payload");
        assert_eq!(text(&p, "mem_request"), ("64".into(), 0o600));
        assert_eq!(text(&p, "cpu_limit").0, "4000");
    }

    #[test]
    fn downward_api_errors_are_aggregated() {
        let items = [
            field_item("a", "spec.nodeName"),
            field_item("b", "metadata.bogus"),
        ];
        assert_eq!(
            downward_api_payload(&items, &pod(), None, DEFAULT_MODE),
            Err(
                "[unsupported fieldPath: spec.nodeName, unsupported fieldPath: metadata.bogus]"
                    .into()
            )
        );
    }
}
