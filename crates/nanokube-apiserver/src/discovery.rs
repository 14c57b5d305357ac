//! Discovery documents: the legacy `/api`, `/apis`, `/api/v1`, `/apis/G/V` documents and the
//! aggregated `apidiscovery.k8s.io/v2` lists that kubectl ≥1.30 asks for first.

use nanokube_registry::resource::{self, ResourceInfo, group_version};
use serde_json::{Map, Value, json};

/// The `Content-Type` that tells client-go a response is aggregated discovery.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
pub const AGGREGATED_V2BETA1_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated discovery version, if any, an `Accept` header asks for first.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for media in accept.split(',') {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if params
            .first()
            .is_some_and(|t| *t == "application/json" || *t == "*/*")
            && params.len() == 1
        {
            return None;
        }
    }
    None
}

/// `GET /api` (legacy).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": vs, "preferredVersion": preferred})
}

/// `GET /apis` (legacy).
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = resource::groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| group_entry(g, &versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/G`.
pub fn api_group(group: &str) -> Option<Value> {
    let (_, versions) = resource::groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let mut entry = group_entry(group, &versions);
    if let Some(m) = entry.as_object_mut() {
        m.insert("kind".into(), json!("APIGroup"));
        m.insert("apiVersion".into(), json!("v1"));
    }
    Some(entry)
}

fn resources_at(group: &str, version: &str) -> Vec<&'static ResourceInfo> {
    resource::ALL
        .iter()
        .copied()
        .filter(|r| r.group == group && r.version == version)
        .collect()
}

fn legacy_resource(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(r.plural));
    m.insert("singularName".into(), json!(r.singular));
    m.insert("namespaced".into(), json!(r.namespaced));
    m.insert("kind".into(), json!(r.kind));
    m.insert("verbs".into(), json!(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), json!(r.categories));
    }
    Value::Object(m)
}

fn legacy_subresource(r: &ResourceInfo, s: &resource::Subresource) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(format!("{}/{}", r.plural, s.name)));
    m.insert("singularName".into(), json!(""));
    m.insert("namespaced".into(), json!(r.namespaced));
    if s.group != r.group || s.version != r.version {
        m.insert("group".into(), json!(s.group));
        m.insert("version".into(), json!(s.version));
    }
    m.insert("kind".into(), json!(s.kind));
    m.insert("verbs".into(), json!(s.verbs));
    Value::Object(m)
}

/// `GET /api/v1` or `/apis/G/V` (legacy); `None` for an unserved group/version.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let rs = resources_at(group, version);
    if rs.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in &rs {
        resources.push(legacy_resource(r));
        for s in r.subresources {
            resources.push(legacy_subresource(r, s));
        }
    }
    let mut doc = json!({"kind": "APIResourceList", "groupVersion": group_version(group, version), "resources": resources});
    if !group.is_empty()
        && let Some(m) = doc.as_object_mut()
    {
        m.insert("apiVersion".into(), json!("v1"));
    }
    Some(doc)
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            json!({
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert("resource".into(), json!(r.plural));
    m.insert(
        "responseKind".into(),
        json!({"group": r.group, "version": r.version, "kind": r.kind}),
    );
    m.insert(
        "scope".into(),
        json!(if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }),
    );
    m.insert("singularResource".into(), json!(r.singular));
    m.insert("verbs".into(), json!(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), json!(r.categories));
    }
    if !subresources.is_empty() {
        m.insert("subresources".into(), Value::Array(subresources));
    }
    Value::Object(m)
}

/// Aggregated discovery for `/api` (`core == true`) or `/apis`.
pub fn aggregated(core: bool, version: &str) -> Value {
    let items: Vec<Value> = resource::groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = resources_at(g, v)
                        .into_iter()
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = Map::new();
            if !g.is_empty() {
                metadata.insert("name".into(), json!(g));
            }
            json!({"metadata": metadata, "versions": vs})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-nanokube",
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Every path `GET /` lists.
pub fn root_paths() -> Value {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
        "/healthz".to_string(),
        "/livez".to_string(),
        "/openapi/v2".to_string(),
        "/openapi/v3".to_string(),
        "/readyz".to_string(),
        "/version".to_string(),
    ];
    for (g, versions) in resource::groups() {
        if g.is_empty() {
            continue;
        }
        paths.push(format!("/apis/{g}"));
        for v in versions {
            paths.push(format!("/apis/{g}/{v}"));
        }
    }
    paths.sort();
    json!({"paths": paths})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_api_versions_carries_server_address() {
        let v = api_versions("127.0.0.1:6443");
        assert_eq!(
            v["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:6443"
        );
        assert_eq!(v["versions"], json!(["v1"]));
    }

    #[test]
    fn batch_group_lists_v1_preferred() {
        let g = api_group_list();
        let batch = g["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|x| x["name"] == "batch"))
            .cloned();
        let batch = batch.expect("batch group");
        assert_eq!(batch["preferredVersion"]["groupVersion"], "batch/v1");
    }

    #[test]
    fn resource_list_has_python_required_fields_and_subresources() {
        let l = api_resource_list("apps", "v1").expect("apps/v1");
        let rs = l["resources"].as_array().expect("array");
        for r in rs {
            for f in ["name", "singularName", "namespaced", "kind", "verbs"] {
                assert!(r.get(f).is_some(), "{f} in {r}");
            }
        }
        let scale = rs
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .expect("scale");
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert!(api_resource_list("batch", "v2").is_none());
    }

    #[test]
    fn aggregated_accept_header_is_recognised() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(wants_aggregated(kubectl), Some("v2"));
        assert_eq!(wants_aggregated("application/json"), None);
        let core = aggregated(true, "v2");
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
    }
}
