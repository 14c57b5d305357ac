//! `paths`: the REST operations of each served resource, modelled once and rendered as
//! Swagger 2.0 or OpenAPI 3.0 the way kube-apiserver's endpoint installer publishes them
//! (operation ids such as `patchBatchV1NamespacedJob`, `x-kubernetes-action`,
//! `x-kubernetes-group-version-kind`).

use nanokube_registry::resource::{ResourceInfo, Subresource};
use serde_json::{Map, Value, json};

use super::schemas::{self, Dialect, Gvk};

/// One URL path with the parameters shared by its operations.
pub(super) struct PathItem {
    pub path: String,
    pub params: Vec<Param>,
    pub ops: Vec<Operation>,
}

pub(super) struct Operation {
    /// Lower-case HTTP method, the key of the operation in its path item.
    pub method: &'static str,
    /// `x-kubernetes-action`: get, list, post, put, patch, delete, deletecollection, watch,
    /// watchlist.
    pub action: &'static str,
    pub id: String,
    pub description: String,
    pub tag: String,
    pub gvk: Option<Gvk>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
}

pub(super) struct Body {
    pub definition: String,
    pub content_types: &'static [&'static str],
    pub required: bool,
}

pub(super) struct Response {
    pub code: &'static str,
    pub description: &'static str,
    pub definition: String,
    /// Watch-capable: also served as `application/json;stream=watch`.
    pub stream: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Location {
    Path,
    Query,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Param {
    pub name: &'static str,
    pub location: Location,
    pub ty: &'static str,
    pub description: &'static str,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: Location::Query,
        ty,
        description,
    }
}

const NAME: Param = Param {
    name: "name",
    location: Location::Path,
    ty: "string",
    description: "name of the object",
};
const NAMESPACE: Param = Param {
    name: "namespace",
    location: Location::Path,
    ty: "string",
    description: "object name and auth scope, such as for teams and projects",
};
const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed.",
);
const ALLOW_WATCH_BOOKMARKS: Param = query(
    "allowWatchBookmarks",
    "boolean",
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers may ignore this flag and send bookmarks at their discretion.",
);
const CONTINUE: Param = query(
    "continue",
    "string",
    "The continue option should be set when retrieving more results from the server: the value of metadata.continue of the previous page. An expired token is answered with 410 ResourceExpired.",
);
const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. It is required for apply requests (application/apply-patch+yaml).",
);
const FIELD_SELECTOR: Param = query(
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: unknown fields are silently dropped. - Warn: each unknown or duplicate field is reported in a Warning header (the default). - Strict: the request fails with BadRequest listing every unknown and duplicate field.",
);
const FORCE: Param = query(
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests: the request re-acquires conflicting fields owned by other managers. It must be unset for non-apply patch requests.",
);
const GRACE_PERIOD_SECONDS: Param = query(
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately.",
);
const LABEL_SELECTOR: Param = query(
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = query(
    "limit",
    "integer",
    "limit is a maximum number of responses to return for a list call. If more items exist, the server sets the `continue` field on the list metadata.",
);
const ORPHAN_DEPENDENTS: Param = query(
    "orphanDependents",
    "boolean",
    "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.",
);
const PROPAGATION_POLICY: Param = query(
    "propagationPolicy",
    "string",
    "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background' and 'Foreground'.",
);
const RESOURCE_VERSION: Param = query(
    "resourceVersion",
    "string",
    "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const RESOURCE_VERSION_MATCH: Param = query(
    "resourceVersionMatch",
    "string",
    "resourceVersionMatch determines how resourceVersion is applied to list calls. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
);
const SEND_INITIAL_EVENTS: Param = query(
    "sendInitialEvents",
    "boolean",
    "`sendInitialEvents=true` may be set together with `watch=true`: the watch stream begins with synthetic events for the current state of the collection.",
);
const TIMEOUT_SECONDS: Param = query(
    "timeoutSeconds",
    "integer",
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
);
const WATCH: Param = query(
    "watch",
    "boolean",
    "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
);

const LIST_PARAMS: &[Param] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];
const WRITE_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
// kubectl's `--validate=strict` looks for `fieldValidation` among the PATCH operation's own
// parameters (cli-runtime query_param_verifier_v3.go), so it is not hoisted to the path.
const PATCH_PARAMS: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
const DELETE_PARAMS: &[Param] = &[
    DRY_RUN,
    GRACE_PERIOD_SECONDS,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
];
const DELETE_COLLECTION_PARAMS: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD_SECONDS,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];

pub(super) const PATCH_CONTENT_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
const ANY_CONTENT: &[&str] = &["*/*"];

/// `BatchV1`, `CoreV1`, `RbacAuthorizationV1`: the group-version part of operation ids.
fn gv_camel(group: &str, version: &str) -> String {
    format!("{}{}", group_camel(group), capitalize(version))
}

/// `Batch`, `Core`, `RbacAuthorization` (the `.k8s.io` suffix dropped).
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".to_string();
    }
    group
        .trim_end_matches(".k8s.io")
        .split('.')
        .map(capitalize)
        .collect()
}

/// `batch_v1`, `core_v1`, `rbacAuthorization_v1`: the operation tag.
fn tag(group: &str, version: &str) -> String {
    format!("{}_{version}", lower_first(&group_camel(group)))
}

fn group_tag(group: &str) -> String {
    lower_first(&group_camel(group))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `/api/v1` or `/apis/batch/v1`.
pub(super) fn gv_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn ok(code: &'static str, description: &'static str, definition: &str) -> Response {
    Response {
        code,
        description,
        definition: definition.to_string(),
        stream: false,
    }
}

/// The operations of one resource: collection, all-namespaces list, object, subresources and
/// the deprecated `/watch/` forms, each only for the verbs the resource serves.
pub(super) fn resource_paths(r: &'static ResourceInfo) -> Vec<PathItem> {
    let ops = ResourceOps::new(r);
    let mut out = vec![ops.collection()];
    out.extend(ops.all_namespaces());
    out.extend(ops.object());
    out.extend(r.subresources.iter().filter_map(|sub| ops.subresource(sub)));
    if ops.has("watch") {
        out.extend(ops.watch());
    }
    out
}

/// What the operations of one resource share: names, paths, schemas.
struct ResourceOps {
    r: &'static ResourceInfo,
    /// `/api/v1`, `/apis/batch/v1`.
    prefix: String,
    /// `BatchV1`: the group-version in operation ids.
    gv: String,
    tag: String,
    /// `Namespaced` or empty: the scope in operation ids.
    scope: &'static str,
    /// The kind's definition name and its list's.
    object: String,
    list: String,
    /// `/apis/batch/v1/namespaces/{namespace}/jobs` or `/api/v1/nodes`.
    collection: String,
    /// `namespace` for namespaced resources.
    scope_params: Vec<Param>,
}

impl ResourceOps {
    fn new(r: &'static ResourceInfo) -> Self {
        let prefix = gv_prefix(r.group, r.version);
        let (collection, scope_params) = if r.namespaced {
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
                vec![NAMESPACE],
            )
        } else {
            (format!("{prefix}/{}", r.plural), vec![])
        };
        Self {
            r,
            gv: gv_camel(r.group, r.version),
            tag: tag(r.group, r.version),
            scope: if r.namespaced { "Namespaced" } else { "" },
            object: schemas::definition_name(r.group, r.version, r.kind),
            list: schemas::list_definition_name(r.group, r.version, r.kind),
            prefix,
            collection,
            scope_params,
        }
    }

    fn has(&self, verb: &str) -> bool {
        self.r.verbs.contains(&verb)
    }

    /// An operation on the resource's own kind, to be completed with its parameters, body and
    /// responses.
    fn op(
        &self,
        method: &'static str,
        action: &'static str,
        id: String,
        description: String,
    ) -> Operation {
        Operation {
            method,
            action,
            id,
            description,
            tag: self.tag.clone(),
            gvk: Some(Gvk::new(self.r.group, self.r.version, self.r.kind)),
            params: vec![],
            body: None,
            responses: vec![],
        }
    }

    fn list_op(&self, id: String) -> Operation {
        Operation {
            params: LIST_PARAMS.to_vec(),
            responses: vec![Response {
                stream: true,
                ..ok("200", "OK", &self.list)
            }],
            ..self.op(
                "get",
                "list",
                id,
                format!("list or watch objects of kind {}", self.r.kind),
            )
        }
    }

    fn object_body(&self) -> Option<Body> {
        Some(Body {
            definition: self.object.clone(),
            content_types: ANY_CONTENT,
            required: true,
        })
    }

    fn with_pretty(&self, mut params: Vec<Param>) -> Vec<Param> {
        params.extend_from_slice(&self.scope_params);
        params.push(PRETTY);
        params
    }

    fn collection(&self) -> PathItem {
        let (gv, scope, kind, object) = (&self.gv, self.scope, self.r.kind, &self.object);
        let mut ops = Vec::new();
        if self.has("list") {
            ops.push(self.list_op(format!("list{gv}{scope}{kind}")));
        }
        if self.has("create") {
            ops.push(Operation {
                params: WRITE_PARAMS.to_vec(),
                body: self.object_body(),
                responses: vec![
                    ok("200", "OK", object),
                    ok("201", "Created", object),
                    ok("202", "Accepted", object),
                ],
                ..self.op(
                    "post",
                    "post",
                    format!("create{gv}{scope}{kind}"),
                    format!("create a {kind}"),
                )
            });
        }
        if self.has("deletecollection") {
            ops.push(Operation {
                params: DELETE_COLLECTION_PARAMS.to_vec(),
                body: Some(delete_options()),
                responses: vec![ok("200", "OK", schemas::STATUS)],
                ..self.op(
                    "delete",
                    "deletecollection",
                    format!("delete{gv}Collection{scope}{kind}"),
                    format!("delete collection of {kind}"),
                )
            });
        }
        PathItem {
            path: self.collection.clone(),
            params: self.with_pretty(vec![]),
            ops,
        }
    }

    /// `GET /api/v1/pods`: a namespaced resource listed across namespaces.
    fn all_namespaces(&self) -> Option<PathItem> {
        (self.r.namespaced && self.has("list")).then(|| PathItem {
            path: format!("{}/{}", self.prefix, self.r.plural),
            params: vec![PRETTY],
            ops: vec![self.list_op(format!("list{}{}ForAllNamespaces", self.gv, self.r.kind))],
        })
    }

    fn object(&self) -> Option<PathItem> {
        let (gv, scope, kind, object) = (&self.gv, self.scope, self.r.kind, &self.object);
        let mut ops = Vec::new();
        if self.has("get") {
            ops.push(Operation {
                responses: vec![ok("200", "OK", object)],
                ..self.op(
                    "get",
                    "get",
                    format!("read{gv}{scope}{kind}"),
                    format!("read the specified {kind}"),
                )
            });
        }
        if self.has("update") {
            ops.push(Operation {
                params: WRITE_PARAMS.to_vec(),
                body: self.object_body(),
                responses: vec![ok("200", "OK", object), ok("201", "Created", object)],
                ..self.op(
                    "put",
                    "put",
                    format!("replace{gv}{scope}{kind}"),
                    format!("replace the specified {kind}"),
                )
            });
        }
        if self.has("patch") {
            ops.push(Operation {
                params: PATCH_PARAMS.to_vec(),
                body: Some(patch_body()),
                responses: vec![ok("200", "OK", object), ok("201", "Created", object)],
                ..self.op(
                    "patch",
                    "patch",
                    format!("patch{gv}{scope}{kind}"),
                    format!("partially update the specified {kind}"),
                )
            });
        }
        if self.has("delete") {
            ops.push(Operation {
                params: DELETE_PARAMS.to_vec(),
                body: Some(delete_options()),
                responses: vec![
                    ok("200", "OK", schemas::STATUS),
                    ok("202", "Accepted", schemas::STATUS),
                ],
                ..self.op(
                    "delete",
                    "delete",
                    format!("delete{gv}{scope}{kind}"),
                    format!("delete a {kind}"),
                )
            });
        }
        (!ops.is_empty()).then(|| PathItem {
            path: format!("{}/{{name}}", self.collection),
            params: self.with_pretty(vec![NAME]),
            ops,
        })
    }

    /// `/status`, `/scale`, `/finalize`: their object is the subresource's kind (autoscaling/v1
    /// Scale for `/scale`), and so is the GVK kubectl matches them by.
    fn subresource(&self, sub: &Subresource) -> Option<PathItem> {
        let kind = self.r.kind;
        let name = sub.name;
        let id = |verb: &str| format!("{verb}{}{}{kind}{}", self.gv, self.scope, capitalize(name));
        let object = schemas::definition_name(sub.group, sub.version, sub.kind);
        let body = || {
            Some(Body {
                definition: object.clone(),
                content_types: ANY_CONTENT,
                required: true,
            })
        };
        let op = |method, action, verb: &str, description: String| Operation {
            gvk: Some(Gvk::new(sub.group, sub.version, sub.kind)),
            ..self.op(method, action, id(verb), description)
        };
        let mut ops = Vec::new();
        for verb in sub.verbs {
            ops.push(match *verb {
                "get" => Operation {
                    responses: vec![ok("200", "OK", &object)],
                    ..op(
                        "get",
                        "get",
                        "read",
                        format!("read {name} of the specified {kind}"),
                    )
                },
                "update" => Operation {
                    params: WRITE_PARAMS.to_vec(),
                    body: body(),
                    responses: vec![ok("200", "OK", &object), ok("201", "Created", &object)],
                    ..op(
                        "put",
                        "put",
                        "replace",
                        format!("replace {name} of the specified {kind}"),
                    )
                },
                "patch" => Operation {
                    params: PATCH_PARAMS.to_vec(),
                    body: Some(patch_body()),
                    responses: vec![ok("200", "OK", &object), ok("201", "Created", &object)],
                    ..op(
                        "patch",
                        "patch",
                        "patch",
                        format!("partially update {name} of the specified {kind}"),
                    )
                },
                "create" => Operation {
                    params: WRITE_PARAMS.to_vec(),
                    body: body(),
                    responses: vec![
                        ok("200", "OK", &object),
                        ok("201", "Created", &object),
                        ok("202", "Accepted", &object),
                    ],
                    ..op(
                        "post",
                        "post",
                        "create",
                        format!("create {name} of a {kind}"),
                    )
                },
                _ => continue,
            });
        }
        (!ops.is_empty()).then(|| PathItem {
            path: format!("{}/{{name}}/{name}", self.collection),
            params: self.with_pretty(vec![NAME]),
            ops,
        })
    }

    /// The deprecated `/watch/` paths (`x-kubernetes-action` `watch` and `watchlist`), the
    /// prefix form of `?watch=true`.
    fn watch(&self) -> Vec<PathItem> {
        let (gv, scope, kind, plural) = (&self.gv, self.scope, self.r.kind, self.r.plural);
        let watch_prefix = format!("{}/watch", self.prefix);
        let deprecated = "deprecated: use the 'watch' parameter with a list operation instead";
        let watch_op = |action, id: String, description: String| Operation {
            responses: vec![Response {
                stream: true,
                ..ok("200", "OK", schemas::WATCH_EVENT)
            }],
            ..self.op("get", action, id, description)
        };
        let list_params = |mut params: Vec<Param>| {
            params.push(PRETTY);
            params.extend_from_slice(LIST_PARAMS);
            params
        };
        let collection = if self.r.namespaced {
            format!("{watch_prefix}/namespaces/{{namespace}}/{plural}")
        } else {
            format!("{watch_prefix}/{plural}")
        };
        let mut out = vec![
            PathItem {
                path: collection.clone(),
                params: list_params(self.scope_params.clone()),
                ops: vec![watch_op(
                    "watchlist",
                    format!("watch{gv}{scope}{kind}List"),
                    format!("watch individual changes to a list of {kind}. {deprecated}."),
                )],
            },
            PathItem {
                path: format!("{collection}/{{name}}"),
                params: list_params([vec![NAME], self.scope_params.clone()].concat()),
                ops: vec![watch_op(
                    "watch",
                    format!("watch{gv}{scope}{kind}"),
                    format!(
                        "watch changes to an object of kind {kind}. {deprecated}, filtered to a single item with the 'fieldSelector' parameter."
                    ),
                )],
            },
        ];
        if self.r.namespaced {
            out.push(PathItem {
                path: format!("{watch_prefix}/{plural}"),
                params: list_params(vec![]),
                ops: vec![watch_op(
                    "watchlist",
                    format!("watch{gv}{kind}ListForAllNamespaces"),
                    format!("watch individual changes to a list of {kind}. {deprecated}."),
                )],
            });
        }
        out
    }
}

fn patch_body() -> Body {
    Body {
        definition: schemas::PATCH.to_string(),
        content_types: PATCH_CONTENT_TYPES,
        required: true,
    }
}

fn delete_options() -> Body {
    Body {
        definition: schemas::DELETE_OPTIONS.to_string(),
        content_types: ANY_CONTENT,
        required: false,
    }
}

fn discovery_op(id: String, description: &str, tag: String, definition: &str) -> Operation {
    Operation {
        method: "get",
        action: "",
        id,
        description: description.to_string(),
        tag,
        gvk: None,
        params: vec![],
        body: None,
        responses: vec![ok("200", "OK", definition)],
    }
}

/// `GET /api/v1/`, `GET /apis/batch/v1/`: the APIResourceList of a group-version.
pub(super) fn resources_path(group: &str, version: &str) -> PathItem {
    PathItem {
        path: format!("{}/", gv_prefix(group, version)),
        params: vec![],
        ops: vec![discovery_op(
            format!("get{}APIResources", gv_camel(group, version)),
            "get available resources",
            tag(group, version),
            schemas::API_RESOURCE_LIST,
        )],
    }
}

/// `GET /apis/batch/`: the APIGroup.
pub(super) fn group_path(group: &str) -> PathItem {
    PathItem {
        path: format!("/apis/{group}/"),
        params: vec![],
        ops: vec![discovery_op(
            format!("get{}APIGroup", group_camel(group)),
            "get information of a group",
            group_tag(group),
            schemas::API_GROUP,
        )],
    }
}

/// `GET /api/`: the APIVersions of the core group.
pub(super) fn core_versions_path() -> PathItem {
    PathItem {
        path: "/api/".to_string(),
        params: vec![],
        ops: vec![discovery_op(
            "getCoreAPIVersions".to_string(),
            "get available API versions",
            "core".to_string(),
            schemas::API_VERSIONS,
        )],
    }
}

/// `GET /apis/`: the APIGroupList.
pub(super) fn groups_path() -> PathItem {
    PathItem {
        path: "/apis/".to_string(),
        params: vec![],
        ops: vec![discovery_op(
            "getAPIVersions".to_string(),
            "get available API versions",
            "apis".to_string(),
            schemas::API_GROUP_LIST,
        )],
    }
}

/// `GET /version/`.
pub(super) fn version_path() -> PathItem {
    PathItem {
        path: "/version/".to_string(),
        params: vec![],
        ops: vec![discovery_op(
            "getCodeVersion".to_string(),
            "get the version information for this server",
            "version".to_string(),
            schemas::VERSION_INFO,
        )],
    }
}

/// Renders path items as the `paths` object of a document, sorted by path as upstream.
pub(super) fn render(dialect: Dialect, mut items: Vec<PathItem>) -> Map<String, Value> {
    items.sort_by(|a, b| a.path.cmp(&b.path));
    let mut paths = Map::new();
    for item in items {
        let mut rendered = Map::new();
        for op in &item.ops {
            rendered.insert(op.method.to_string(), render_op(dialect, op));
        }
        if !item.params.is_empty() {
            rendered.insert(
                "parameters".into(),
                Value::Array(
                    item.params
                        .iter()
                        .map(|p| render_param(dialect, p))
                        .collect(),
                ),
            );
        }
        paths.insert(item.path, Value::Object(rendered));
    }
    paths
}

fn render_param(dialect: Dialect, p: &Param) -> Value {
    let location = match p.location {
        Location::Path => "path",
        Location::Query => "query",
    };
    let mut out = Map::new();
    out.insert("description".into(), json!(p.description));
    out.insert("in".into(), json!(location));
    out.insert("name".into(), json!(p.name));
    if p.location == Location::Path {
        out.insert("required".into(), json!(true));
    }
    match dialect {
        Dialect::V2 => {
            out.insert("type".into(), json!(p.ty));
            out.insert("uniqueItems".into(), json!(true));
        }
        Dialect::V3 => {
            out.insert(
                "schema".into(),
                json!({ "type": p.ty, "uniqueItems": true }),
            );
        }
    }
    Value::Object(out)
}

const JSON: &str = "application/json";
const JSON_WATCH: &str = "application/json;stream=watch";

fn render_op(dialect: Dialect, op: &Operation) -> Value {
    let mut out = Map::new();
    if let (Dialect::V2, Some(body)) = (dialect, &op.body) {
        out.insert("consumes".into(), json!(body.content_types));
    }
    out.insert("description".into(), json!(op.description));
    out.insert("operationId".into(), json!(op.id));
    let mut params: Vec<Value> = Vec::new();
    if let (Dialect::V2, Some(body)) = (dialect, &op.body) {
        params.push(json!({
            "in": "body",
            "name": "body",
            "required": body.required,
            "schema": dialect.schema_ref(&body.definition),
        }));
    }
    params.extend(op.params.iter().map(|p| render_param(dialect, p)));
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    let streams = op.responses.iter().any(|r| r.stream);
    match dialect {
        Dialect::V2 => {
            let produces: &[&str] = if streams {
                &[JSON, JSON_WATCH]
            } else {
                &[JSON]
            };
            out.insert("produces".into(), json!(produces));
        }
        Dialect::V3 => {
            if let Some(body) = &op.body {
                let content: Map<String, Value> = body
                    .content_types
                    .iter()
                    .map(|ct| {
                        (
                            ct.to_string(),
                            json!({ "schema": dialect.schema_ref(&body.definition) }),
                        )
                    })
                    .collect();
                let mut request = Map::new();
                request.insert("content".into(), Value::Object(content));
                if body.required {
                    request.insert("required".into(), json!(true));
                }
                out.insert("requestBody".into(), Value::Object(request));
            }
        }
    }
    let mut responses = Map::new();
    for r in &op.responses {
        let schema = dialect.schema_ref(&r.definition);
        let rendered = match dialect {
            Dialect::V2 => json!({ "description": r.description, "schema": schema }),
            Dialect::V3 => {
                let mut content = Map::new();
                content.insert(JSON.into(), json!({ "schema": schema }));
                if r.stream {
                    content.insert(JSON_WATCH.into(), json!({ "schema": schema }));
                }
                json!({ "content": content, "description": r.description })
            }
        };
        responses.insert(r.code.to_string(), rendered);
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));
    out.insert("responses".into(), Value::Object(responses));
    if dialect == Dialect::V2 {
        out.insert("schemes".into(), json!(["https"]));
    }
    out.insert("tags".into(), json!([op.tag]));
    if !op.action.is_empty() {
        out.insert("x-kubernetes-action".into(), json!(op.action));
    }
    if let Some(gvk) = &op.gvk {
        out.insert("x-kubernetes-group-version-kind".into(), gvk.to_json());
    }
    Value::Object(out)
}
