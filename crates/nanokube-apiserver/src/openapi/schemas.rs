//! Component schemas (`components.schemas` in v3, `definitions` in v2): generated from
//! k8s-openapi's `schemars` implementations, which already carry upstream's definition names
//! (`io.k8s.api.batch.v1.Job`) and field descriptions, then decorated with the extensions
//! kubectl reads: `x-kubernetes-group-version-kind` (explain, `--validate`) and the
//! strategic-merge-patch metadata (`x-kubernetes-patch-merge-key` / `-strategy`, client-side
//! apply).

use std::borrow::Cow;
use std::collections::BTreeSet;

use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, events, rbac};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::version;
use nanokube_registry::resource::{self, ResourceInfo};
use schemars::generate::SchemaSettings;
use schemars::transform::{AddNullable, RemoveRefSiblings};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// The two OpenAPI dialects served: Swagger 2.0 at `/openapi/v2`, OpenAPI 3.0 under
/// `/openapi/v3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    V2,
    V3,
}

impl Dialect {
    pub(super) fn ref_prefix(self) -> &'static str {
        match self {
            Dialect::V2 => "#/definitions/",
            Dialect::V3 => "#/components/schemas/",
        }
    }

    pub(super) fn schema_ref(self, name: &str) -> Value {
        json!({ "$ref": format!("{}{name}", self.ref_prefix()) })
    }

    fn generator(self) -> SchemaGenerator {
        let settings = match self {
            // OpenAPI 3.0 ignores siblings of `$ref`; upstream wraps a described reference as
            // `{"allOf": [{"$ref": …}], "description": …}`, which RemoveRefSiblings produces and
            // kubectl explain's templates and strategicpatch's PatchMetaFromOpenAPIV3 follow.
            Dialect::V3 => SchemaSettings::openapi3().with(|s| s.meta_schema = None),
            // Swagger 2.0 upstream keeps `{"$ref": …, "description": …}` and has no `nullable`.
            Dialect::V2 => SchemaSettings::openapi3().with(|s| {
                s.definitions_path = "/definitions".into();
                s.meta_schema = None;
                s.transforms
                    .retain(|t| !t.is::<RemoveRefSiblings>() && !t.is::<AddNullable>());
            }),
        };
        settings.into_generator()
    }
}

/// Group, version and kind as the `x-kubernetes-group-version-kind` extension spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Gvk {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: Cow<'static, str>,
}

impl Gvk {
    pub(super) fn new(
        group: &'static str,
        version: &'static str,
        kind: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            group,
            version,
            kind: kind.into(),
        }
    }

    pub(super) fn to_json(&self) -> Value {
        // Keys in upstream's (sorted) order; kubectl explain compares these maps for equality.
        json!({ "group": self.group, "kind": self.kind, "version": self.version })
    }
}

/// The Go package segment of a group in upstream definition names: `""` → `core`,
/// `rbac.authorization.k8s.io` → `rbac`, `events.k8s.io` → `events`.
fn package(group: &str) -> &str {
    if group.is_empty() {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    }
}

/// The upstream definition name of a served kind at a served version:
/// `io.k8s.api.batch.v1beta1.CronJob`.
pub(super) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    format!("io.k8s.api.{}.{version}.{kind}", package(group))
}

pub(super) fn list_definition_name(group: &str, version: &str, kind: &str) -> String {
    format!("{}List", definition_name(group, version, kind))
}

/// A Rust type whose schema is a kind's schema.
#[derive(Clone, Copy)]
struct KindType {
    name: fn() -> Cow<'static, str>,
    add: fn(&mut SchemaGenerator) -> schemars::Schema,
}

fn typed<T: JsonSchema>() -> KindType {
    KindType {
        name: T::schema_name,
        add: SchemaGenerator::subschema_for::<T>,
    }
}

/// The k8s-openapi type of each served kind. A kind served at a version k8s-openapi no longer
/// has (batch/v1beta1 CronJob) uses the type of the version it is stored at, published under
/// the served version's name.
fn kind_type(group: &str, version: &str, kind: &str) -> Option<KindType> {
    Some(match (group, version, kind) {
        ("", "v1", "Namespace") => typed::<core::v1::Namespace>(),
        ("", "v1", "Pod") => typed::<core::v1::Pod>(),
        ("", "v1", "ServiceAccount") => typed::<core::v1::ServiceAccount>(),
        ("", "v1", "Secret") => typed::<core::v1::Secret>(),
        ("", "v1", "ConfigMap") => typed::<core::v1::ConfigMap>(),
        ("", "v1", "Event") => typed::<core::v1::Event>(),
        ("", "v1", "Node") => typed::<core::v1::Node>(),
        ("", "v1", "Service") => typed::<core::v1::Service>(),
        ("", "v1", "Endpoints") => typed::<core::v1::Endpoints>(),
        ("apps", "v1", "Deployment") => typed::<apps::v1::Deployment>(),
        ("apps", "v1", "ReplicaSet") => typed::<apps::v1::ReplicaSet>(),
        ("autoscaling", "v1", "Scale") => typed::<autoscaling::v1::Scale>(),
        ("batch", "v1", "Job") => typed::<batch::v1::Job>(),
        ("batch", "v1" | "v1beta1", "CronJob") => typed::<batch::v1::CronJob>(),
        ("rbac.authorization.k8s.io", "v1", "Role") => typed::<rbac::v1::Role>(),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => typed::<rbac::v1::ClusterRole>(),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => typed::<rbac::v1::RoleBinding>(),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            typed::<rbac::v1::ClusterRoleBinding>()
        }
        ("coordination.k8s.io", "v1", "Lease") => typed::<coordination::v1::Lease>(),
        ("events.k8s.io", "v1", "Event") => typed::<events::v1::Event>(),
        ("", "v1", "Binding") => typed::<core::v1::Binding>(),
        ("authentication.k8s.io", "v1", "TokenRequest") => {
            typed::<k8s_openapi::api::authentication::v1::TokenRequest>()
        }
        ("authentication.k8s.io", "v1", "TokenReview") => {
            typed::<k8s_openapi::api::authentication::v1::TokenReview>()
        }
        ("authentication.k8s.io", "v1", "SelfSubjectReview") => {
            typed::<k8s_openapi::api::authentication::v1::SelfSubjectReview>()
        }
        ("authorization.k8s.io", "v1", "SubjectAccessReview") => {
            typed::<k8s_openapi::api::authorization::v1::SubjectAccessReview>()
        }
        ("authorization.k8s.io", "v1", "SelfSubjectAccessReview") => {
            typed::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>()
        }
        ("authorization.k8s.io", "v1", "LocalSubjectAccessReview") => {
            typed::<k8s_openapi::api::authorization::v1::LocalSubjectAccessReview>()
        }
        ("authorization.k8s.io", "v1", "SelfSubjectRulesReview") => {
            typed::<k8s_openapi::api::authorization::v1::SelfSubjectRulesReview>()
        }
        _ => return None,
    })
}

/// Whether nanokube publishes a typed schema for this kind (else a placeholder that accepts
/// any object).
#[cfg(test)]
pub(super) fn has_typed_schema(group: &str, version: &str, kind: &str) -> bool {
    kind_type(group, version, kind).is_some()
}

pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub(super) const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
pub(super) const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
pub(super) const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
pub(super) const VERSION_INFO: &str = "io.k8s.apimachinery.pkg.version.Info";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The non-kind definitions a document can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Extra {
    /// DeleteOptions, Status, Patch and WatchEvent: what every resource's operations use.
    Operations,
    ApiResourceList,
    ApiGroup,
    ApiGroupList,
    ApiVersions,
    VersionInfo,
}

/// The definitions of one document, collected by what its paths reference.
pub(super) struct SchemaSet {
    dialect: Dialect,
    generator: SchemaGenerator,
    /// `(served name, kind, the type's own name)` of each kind added.
    kinds: Vec<(String, &'static str, Option<String>)>,
    /// `(list name, kind, item definition name)`.
    lists: Vec<(String, &'static str, String)>,
}

impl SchemaSet {
    pub(super) fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            generator: dialect.generator(),
            kinds: Vec::new(),
            lists: Vec::new(),
        }
    }

    /// Adds a served kind's schema (and its `<Kind>List` when `with_list`).
    pub(super) fn add_kind(
        &mut self,
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        with_list: bool,
    ) {
        let served = definition_name(group, version, kind);
        if !self.kinds.iter().any(|(name, _, _)| *name == served) {
            let own = kind_type(group, version, kind).map(|t| {
                (t.add)(&mut self.generator);
                (t.name)().into_owned()
            });
            self.kinds.push((served.clone(), kind, own));
        }
        if with_list {
            let list = list_definition_name(group, version, kind);
            if !self.lists.iter().any(|(name, _, _)| *name == list) {
                self.generator.subschema_for::<meta::ListMeta>();
                self.lists.push((list, kind, served));
            }
        }
    }

    pub(super) fn add_resource(&mut self, r: &'static ResourceInfo) {
        self.add_kind(r.group, r.version, r.kind, true);
        for sub in r.subresources {
            self.add_kind(sub.group, sub.version, sub.kind, false);
        }
    }

    pub(super) fn add_extra(&mut self, extra: Extra) {
        let g = &mut self.generator;
        match extra {
            Extra::Operations => {
                g.subschema_for::<meta::DeleteOptions>();
                g.subschema_for::<meta::Status>();
                g.subschema_for::<meta::Patch>();
                g.subschema_for::<meta::WatchEvent<()>>();
            }
            Extra::ApiResourceList => {
                g.subschema_for::<meta::APIResourceList>();
            }
            Extra::ApiGroup => {
                g.subschema_for::<meta::APIGroup>();
            }
            Extra::ApiGroupList => {
                g.subschema_for::<meta::APIGroupList>();
            }
            Extra::ApiVersions => {
                g.subschema_for::<meta::APIVersions>();
            }
            Extra::VersionInfo => {
                g.subschema_for::<version::Info>();
            }
        }
    }

    /// The finished definitions, sorted by name as upstream publishes them.
    pub(super) fn finish(mut self) -> Map<String, Value> {
        let dialect = self.dialect;
        let mut defs = self.generator.take_definitions(true);
        let wanted: BTreeSet<&str> = self
            .kinds
            .iter()
            .map(|(served, _, _)| served.as_str())
            .collect();

        // Kinds published under another version's name (batch/v1beta1 CronJob) get a copy of
        // the type's schema; the type's own definition goes unless something else needs it.
        let mut aliased = Vec::new();
        for (served, kind, own) in &self.kinds {
            match own {
                Some(own) if own != served => {
                    if let Some(schema) = defs.get(own).cloned() {
                        defs.insert(served.clone(), schema);
                        aliased.push(own.clone());
                    }
                }
                Some(_) => {}
                None => {
                    defs.insert(served.clone(), placeholder(kind));
                }
            }
        }
        for own in aliased {
            if !wanted.contains(own.as_str()) && !references(&defs, &own, dialect) {
                defs.shift_remove(&own);
            }
        }

        for (list, kind, item) in std::mem::take(&mut self.lists) {
            let schema = list_schema(dialect, &defs, kind, &item);
            defs.insert(list, schema);
        }

        let mut sorted: Vec<(String, Value)> = defs.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut defs: Map<String, Value> = sorted.into_iter().collect();
        add_group_version_kinds(&mut defs);
        add_patch_metadata(&mut defs);
        defs
    }
}

/// Whether any definition holds a `$ref` to `name`.
fn references(defs: &Map<String, Value>, name: &str, dialect: Dialect) -> bool {
    let target = format!("{}{name}", dialect.ref_prefix());
    defs.values().any(|v| contains_ref(v, &target))
}

fn contains_ref(value: &Value, target: &str) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| (k == "$ref" && v.as_str() == Some(target)) || contains_ref(v, target)),
        Value::Array(items) => items.iter().any(|v| contains_ref(v, target)),
        _ => false,
    }
}

/// The schema of a kind nanokube serves without a k8s-openapi type: any object, so kubectl's
/// client-side validation (when it falls back to it) accepts what the server accepts.
fn placeholder(kind: &str) -> Value {
    json!({
        "description": format!("{kind} (nanokube publishes no field schema for this kind)."),
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A described reference in the dialect's form (see [`Dialect::generator`]).
fn described_ref(dialect: Dialect, name: &str, description: &str) -> Value {
    match dialect {
        Dialect::V2 => json!({
            "$ref": format!("{}{name}", dialect.ref_prefix()),
            "description": description,
        }),
        Dialect::V3 => json!({
            "allOf": [dialect.schema_ref(name)],
            "description": description,
        }),
    }
}

/// `<Kind>List`, shaped like upstream's list types (k8s-openapi models lists generically, so
/// they have no schemars schema of their own). `apiVersion`/`kind` are taken from the item
/// schema so the wording matches.
fn list_schema(dialect: Dialect, defs: &Map<String, Value>, kind: &str, item: &str) -> Value {
    let item_property = |name: &str| {
        defs.get(item)
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(name))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "string" }))
    };
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": item_property("apiVersion"),
            "items": {
                "description": format!("items is the list of {kind} objects."),
                "type": "array",
                "items": dialect.schema_ref(item),
            },
            "kind": item_property("kind"),
            "metadata": described_ref(
                dialect,
                LIST_META,
                "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            ),
        },
        "required": ["items"],
    })
}

/// Every definition that is a top-level API object, with the group/version/kinds it is served
/// as. kubectl explain finds a resource's schema by this extension; `--validate` and
/// client-side apply find the PATCH operation by the same GVK.
fn group_version_kinds() -> Vec<(String, Vec<Gvk>)> {
    let mut out: Vec<(String, Vec<Gvk>)> = Vec::new();
    let mut push = |name: String, gvk: Gvk| match out.iter_mut().find(|(n, _)| *n == name) {
        Some((_, gvks)) => {
            if !gvks.contains(&gvk) {
                gvks.push(gvk);
            }
        }
        None => out.push((name, vec![gvk])),
    };
    for r in resource::ALL {
        push(
            definition_name(r.group, r.version, r.kind),
            Gvk::new(r.group, r.version, r.kind),
        );
        push(
            list_definition_name(r.group, r.version, r.kind),
            Gvk::new(r.group, r.version, r.list_kind()),
        );
        for sub in r.subresources {
            push(
                definition_name(sub.group, sub.version, sub.kind),
                Gvk::new(sub.group, sub.version, sub.kind),
            );
        }
    }
    push(STATUS.to_string(), Gvk::new("", "v1", "Status"));
    // DeleteOptions and WatchEvent are registered in every group-version upstream.
    for (group, versions) in core_first_groups() {
        for version in versions {
            for (name, kind) in [
                (DELETE_OPTIONS, "DeleteOptions"),
                (WATCH_EVENT, "WatchEvent"),
            ] {
                push(name.to_string(), Gvk::new(group, version, kind));
            }
        }
    }
    out
}

/// Served group-versions with core v1 first (it always exists for the meta kinds).
fn core_first_groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups = resource::groups();
    if !groups.iter().any(|(g, _)| g.is_empty()) {
        groups.insert(0, ("", vec!["v1"]));
    }
    groups
}

fn add_group_version_kinds(defs: &mut Map<String, Value>) {
    for (name, gvks) in group_version_kinds() {
        if let Some(Value::Object(schema)) = defs.get_mut(&name) {
            relax_metadata_requirement(schema);
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                Value::Array(gvks.iter().map(Gvk::to_json).collect()),
            );
        }
    }
}

/// k8s-openapi lists `metadata` as required on every object (its Rust field is not optional);
/// upstream does not (`kubectl explain` would print `metadata <ObjectMeta> -required-`).
fn relax_metadata_requirement(schema: &mut Map<String, Value>) {
    let Some(Value::Array(required)) = schema.get_mut("required") else {
        return;
    };
    required.retain(|field| field != "metadata");
    if required.is_empty() {
        schema.shift_remove("required");
    }
}

/// Strategic-merge-patch metadata of the served kinds' fields (upstream's `patchStrategy` /
/// `patchMergeKey` struct tags), which k8s-openapi does not carry. kubectl's client-side
/// `apply` computes its patch from these when the v3 PATCH operation accepts
/// `application/strategic-merge-patch+json`; a list missing here would be diffed as a whole
/// and lose deletions once the server merges it by key.
const PATCH_METADATA: &[(&str, &str, Option<&str>, &str)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        None,
        "merge",
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        Some("uid"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        Some("name"),
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        Some("ip"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        Some("topologyKey"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        Some("name"),
        "merge,retainKeys",
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        Some("containerPort"),
        "merge",
    ),
    ("io.k8s.api.core.v1.Container", "env", Some("name"), "merge"),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        Some("mountPath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        Some("devicePath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        Some("containerPort"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        Some("mountPath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        Some("devicePath"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        Some("ip"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "hostIPs",
        Some("ip"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        Some("name"),
        "merge,retainKeys",
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", None, "merge"),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        Some("port"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        Some("name"),
        "merge",
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        None,
        "retainKeys",
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
    (
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        Some("type"),
        "merge",
    ),
];

fn add_patch_metadata(defs: &mut Map<String, Value>) {
    for (definition, field, merge_key, strategy) in PATCH_METADATA {
        let Some(Value::Object(property)) = defs
            .get_mut(*definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
        else {
            continue;
        };
        if let Some(key) = merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
        property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
    }
}
