//! The OpenAPI documents of the served API: `/openapi/v3` (an index of per-group-version
//! OpenAPI 3.0 documents) and `/openapi/v2` (one Swagger 2.0 document).
//!
//! kubectl 1.32 needs them for three things (docs/k8s-behaviour.md §1.3):
//! * `create/apply/replace -f` with the default `--validate=strict` loads the v3 document of
//!   the object's group-version and looks for a PATCH operation whose
//!   `x-kubernetes-group-version-kind` is the object's GVK and which takes the
//!   `fieldValidation` query parameter; without one it validates client-side, and without any
//!   OpenAPI at all it refuses to send.
//! * `explain` walks `components.schemas` from the schema carrying the resource's GVK.
//! * client-side `apply` computes its strategic merge patch from the v3 schemas (merge keys)
//!   when the PATCH operation accepts `application/strategic-merge-patch+json`.
//!
//! Schemas come from k8s-openapi ([`schemas`]), operations from the served resource catalog
//! ([`nanokube_registry::resource::ALL`], [`paths`]). Everything is computed once, on first
//! use; the documents depend on nothing but the binary.

mod paths;
mod schemas;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use nanokube_registry::resource::{self, ResourceInfo};
use serde_json::{Map, Value, json};

use self::paths::PathItem;
use self::schemas::{Dialect, Extra, SchemaSet};

/// `info.version` of the documents.
const API_VERSION: &str = "v1.33.0";

/// `GET /openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`,
/// one entry per document (group-versions, and the `api`, `apis`, `apis/<group>` and
/// `version` documents of the discovery endpoints).
#[must_use]
pub fn v3_index() -> Value {
    let paths: Map<String, Value> = V3
        .iter()
        .map(|(path, doc)| {
            let url = format!("/openapi/v3/{path}?hash={}", doc.hash);
            (path.clone(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// `GET /openapi/v3/<path>` (`api/v1`, `apis/batch/v1`, …): that document, or `None` when no
/// such document is served.
#[must_use]
pub fn v3_document(path: &str) -> Option<Arc<Value>> {
    V3.get(path).map(|doc| Arc::clone(&doc.body))
}

/// The content hash of a v3 document, as in its `serverRelativeURL` (usable as its ETag).
#[must_use]
pub fn v3_hash(path: &str) -> Option<String> {
    V3.get(path).map(|doc| doc.hash.clone())
}

/// `GET /openapi/v2`: the Swagger 2.0 document of everything served.
#[must_use]
/// The JSON property names of a definition (`io.k8s.api.core.v1.PodSpec`), from the v2
/// document's `definitions`.
pub fn property_names(definition: &str) -> Option<Vec<String>> {
    let doc = v2_document();
    let props = doc
        .get("definitions")?
        .get(definition)?
        .get("properties")?
        .as_object()?;
    Some(props.keys().cloned().collect())
}

pub fn v2_document() -> Arc<Value> {
    Arc::clone(&V2)
}

struct V3Document {
    body: Arc<Value>,
    hash: String,
}

static V3: LazyLock<BTreeMap<String, V3Document>> = LazyLock::new(|| {
    v3_documents()
        .into_iter()
        .map(|(path, body)| {
            let hash = content_hash(body.to_string().as_bytes());
            (
                path,
                V3Document {
                    body: Arc::new(body),
                    hash,
                },
            )
        })
        .collect()
});

static V2: LazyLock<Arc<Value>> = LazyLock::new(|| Arc::new(v2()));

/// The served resources of one group-version.
fn resources_of(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceInfo> {
    resource::ALL
        .iter()
        .copied()
        .filter(move |r| r.group == group && r.version == version)
}

/// The index path of a group-version: `api/v1`, `apis/batch/v1`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// What a document holds: its paths and the definitions those reference.
struct Contents {
    items: Vec<PathItem>,
    schemas: SchemaSet,
}

impl Contents {
    fn new(dialect: Dialect) -> Self {
        Self {
            items: Vec::new(),
            schemas: SchemaSet::new(dialect),
        }
    }

    fn add_group_version(&mut self, group: &'static str, version: &'static str) {
        self.items.push(paths::resources_path(group, version));
        self.schemas.add_extra(Extra::ApiResourceList);
        self.schemas.add_extra(Extra::Operations);
        for r in resources_of(group, version) {
            self.items.extend(paths::resource_paths(r));
            self.schemas.add_resource(r);
        }
    }

    fn add_group(&mut self, group: &str) {
        self.items.push(paths::group_path(group));
        self.schemas.add_extra(Extra::ApiGroup);
    }

    fn add_discovery_roots(&mut self) {
        self.items.push(paths::core_versions_path());
        self.schemas.add_extra(Extra::ApiVersions);
        self.items.push(paths::groups_path());
        self.schemas.add_extra(Extra::ApiGroupList);
        self.items.push(paths::version_path());
        self.schemas.add_extra(Extra::VersionInfo);
    }
}

fn v3_documents() -> Vec<(String, Value)> {
    let mut docs = Vec::new();
    let one = |fill: &dyn Fn(&mut Contents)| {
        let mut contents = Contents::new(Dialect::V3);
        fill(&mut contents);
        v3_document_of(contents)
    };
    docs.push((
        "api".to_string(),
        one(&|c| {
            c.items.push(paths::core_versions_path());
            c.schemas.add_extra(Extra::ApiVersions);
        }),
    ));
    docs.push((
        "apis".to_string(),
        one(&|c| {
            c.items.push(paths::groups_path());
            c.schemas.add_extra(Extra::ApiGroupList);
        }),
    ));
    docs.push((
        "version".to_string(),
        one(&|c| {
            c.items.push(paths::version_path());
            c.schemas.add_extra(Extra::VersionInfo);
        }),
    ));
    for (group, versions) in resource::groups() {
        if !group.is_empty() {
            docs.push((format!("apis/{group}"), one(&|c| c.add_group(group))));
        }
        for version in versions {
            docs.push((
                gv_path(group, version),
                one(&|c| c.add_group_version(group, version)),
            ));
        }
    }
    docs
}

/// Upstream's `BearerToken` scheme: kubectl ignores it, generated clients read it.
fn bearer_token() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}

fn v3_document_of(contents: Contents) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": API_VERSION },
        "paths": paths::render(Dialect::V3, contents.items),
        "components": {
            "schemas": contents.schemas.finish(),
            "securitySchemes": { "BearerToken": bearer_token() },
        },
        "security": [{ "BearerToken": [] }],
    })
}

fn v2() -> Value {
    let mut contents = Contents::new(Dialect::V2);
    contents.add_discovery_roots();
    for (group, versions) in resource::groups() {
        if !group.is_empty() {
            contents.add_group(group);
        }
        for version in versions {
            contents.add_group_version(group, version);
        }
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": API_VERSION },
        "paths": paths::render(Dialect::V2, contents.items),
        "definitions": contents.schemas.finish(),
        "securityDefinitions": { "BearerToken": bearer_token() },
        "security": [{ "BearerToken": [] }],
    })
}

/// A 128-bit FNV-1a digest in upper-case hex. Upstream uses SHA-512; clients only compare the
/// value (it keys kubectl's HTTP cache), so any digest that changes with the content will do.
fn content_hash(bytes: &[u8]) -> String {
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    let digest = bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u128::from(*byte)).wrapping_mul(PRIME)
    });
    format!("{digest:032X}")
}
