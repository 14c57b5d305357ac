//! The generic REST store: one implementation of get, list, create, update, patch, delete and
//! deletecollection (and the `status` and `scale` subresources) for every kind, with the
//! per-kind rules delegated to its [`Strategy`] — the shape of the apiserver's
//! `registry/generic/registry/store.go`.

use crate::authn::UserInfo;
use crate::negotiate::{self, Representation};
use crate::objects::{self, meta_mut, meta_str};
use crate::request_info::{RequestInfo, query_param};
use crate::server::ApiServer;
use crate::status::{ApiError, ApiResult};
use crate::table;
use crate::watch;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use nanokube_registry::field::{ErrorList, FieldError};
use nanokube_registry::kinds::strategy_for;
use nanokube_registry::resource::{self, NAMESPACES, ResourceInfo};
use nanokube_registry::selectors::{FieldSelector, LabelSelector, labels_of};
use nanokube_registry::strategy::{DefaultPropagation, Strategy};
use nanokube_registry::validation;
use nanokube_store::{KeyValue, StoreError};
use rand::Rng;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub type Query = HashMap<String, Vec<String>>;

/// Upstream's `MaxRequestBodyBytes`.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How many times create retries a clashing generated name (upstream `RetryGenerateName`).
const GENERATE_NAME_ATTEMPTS: usize = 7;
/// Optimistic-concurrency retries for unconditional updates and patches.
const UPDATE_ATTEMPTS: usize = 16;
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Everything a resource request carries once routed.
pub struct Ctx<'a> {
    pub api: &'a ApiServer,
    pub res: &'static ResourceInfo,
    pub strategy: &'static dyn Strategy,
    pub namespace: Option<String>,
    pub query: &'a Query,
    pub repr: Representation,
    pub warnings: Vec<String>,
    /// Who is asking (admission checks such as RBAC escalation need it).
    pub user: &'a UserInfo,
}

fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::Closed => ApiError::service_unavailable("the storage backend is shutting down"),
        other => ApiError::internal(other),
    }
}

/// Five random characters of the alphabet upstream uses for generated names.
pub fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

impl Ctx<'_> {
    fn ns(&self) -> Option<&str> {
        if self.res.namespaced {
            self.namespace.as_deref()
        } else {
            None
        }
    }

    pub fn key(&self, name: &str) -> String {
        self.res.storage_key(self.ns(), name)
    }

    /// The key prefix of a list: one namespace, or all of them.
    fn list_prefix(&self) -> String {
        match self.ns() {
            Some(ns) => format!("{}{ns}/", self.res.storage_prefix()),
            None => self.res.storage_prefix(),
        }
    }

    fn qp(&self, key: &str) -> Option<&str> {
        query_param(self.query, key)
    }

    /// Converts a stored object to the requested version.
    pub fn to_request_version(&self, mut obj: Value) -> Value {
        if self.res.version != self.res.storage_version {
            objects::set_api_version(&mut obj, &self.res.api_version());
        }
        obj
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.warnings.push(text.into());
    }
}

/// Decodes a stored value, stamping its resourceVersion.
pub fn decode_kv(kv: &KeyValue) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("stored object {} is not valid JSON: {e}", kv.key))
    })?;
    objects::set_meta(
        &mut obj,
        "resourceVersion",
        json!(kv.mod_revision.to_string()),
    );
    Ok(obj)
}

/// Encodes an object for storage; the resourceVersion is the store's, never stored.
pub fn encode(obj: &Value) -> ApiResult<Vec<u8>> {
    let mut o = obj.clone();
    objects::remove_meta(&mut o, "resourceVersion");
    serde_json::to_vec(&o).map_err(ApiError::internal)
}

fn now_ts(api: &ApiServer) -> String {
    objects::timestamp(api.clock.now())
}

/// Writes the `Warning` headers (`299 - "text"`).
pub fn add_warnings(headers: &mut HeaderMap, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            headers.append(header::WARNING, v);
        }
    }
}

pub fn json_response(
    code: StatusCode,
    body: &Value,
    content_type: &'static str,
    warnings: &[String],
) -> Response {
    let mut r = (code, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    add_warnings(r.headers_mut(), warnings);
    r
}

/// Answers with one object in the negotiated representation.
fn respond_object(ctx: &Ctx<'_>, code: StatusCode, obj: Value) -> Response {
    let obj = ctx.to_request_version(obj);
    match ctx.repr {
        Representation::Table(v) => {
            let include = ctx.qp("includeObject").unwrap_or("Metadata");
            let t = table::table(
                ctx.res,
                std::slice::from_ref(&obj),
                ctx.api.clock.now(),
                include,
                v,
                None,
                None,
            );
            json_response(code, &t, table::content_type(v), &ctx.warnings)
        }
        Representation::PartialObjectMetadata | Representation::PartialObjectMetadataList => {
            json_response(
                code,
                &objects::partial_metadata(&obj),
                "application/json",
                &ctx.warnings,
            )
        }
        Representation::Object => json_response(code, &obj, "application/json", &ctx.warnings),
    }
}

/// Dispatches a resource request. Authentication and authorization have already happened.
pub async fn serve(
    api: Arc<ApiServer>,
    info: RequestInfo,
    query: Query,
    user: UserInfo,
    req: http::Request<Body>,
) -> Response {
    match dispatch(&api, &info, &query, &user, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(
    api: &ApiServer,
    info: &RequestInfo,
    query: &Query,
    user: &UserInfo,
    req: http::Request<Body>,
) -> ApiResult<Response> {
    let res = resource::find(&info.api_group, &info.api_version, &info.resource)
        .ok_or_else(ApiError::page_not_found)?;
    let strategy = strategy_for(res);
    // Namespaced resources are reached through /namespaces/NS/… except for cross-namespace
    // lists and watches; cluster-scoped ones never are (except namespaces themselves).
    let namespace = if res.namespaced {
        if info.namespace.is_empty() {
            if !(info.verb == "list" || info.verb == "watch") {
                return Err(ApiError::page_not_found());
            }
            None
        } else {
            Some(info.namespace.clone())
        }
    } else {
        if !info.namespace.is_empty() && !std::ptr::eq(res, &NAMESPACES) {
            return Err(ApiError::page_not_found());
        }
        None
    };
    if info.parts.len() > 3 {
        return Err(ApiError::page_not_found());
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let repr = negotiate::representation(accept.as_deref())?;
    let mut ctx = Ctx {
        api,
        res,
        strategy,
        namespace,
        query,
        repr,
        warnings: Vec::new(),
        user,
    };
    if let Some(w) = res.deprecation_warning {
        ctx.warn(w);
    }
    let sub = info.subresource.as_str();
    if !sub.is_empty() && res.subresource(sub).is_none() {
        return Err(ApiError::page_not_found());
    }
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = read_body(req).await?;
    let name = info.name.clone();
    if res.is_review() {
        if info.verb != "create" || !name.is_empty() {
            return Err(ApiError::method_not_allowed(&info.verb, res));
        }
        return crate::reviews::serve(&ctx, &body, &content_type).await;
    }
    match (sub, info.verb.as_str()) {
        ("", "get") => get(&ctx, &name).await,
        ("token", "create") => {
            crate::reviews::token_request(&ctx, &name, &body, &content_type).await
        }
        ("binding", "create") => crate::pods::bind(&ctx, &name, &body, &content_type).await,
        ("log", "get") => crate::pods::log(&ctx, &name).await,

        ("", "list") => list(&ctx).await,
        ("", "watch") => {
            watch::serve(
                &ctx,
                if method == Method::GET && !name.is_empty() {
                    Some(&name)
                } else {
                    None
                },
            )
            .await
        }
        ("", "create") => {
            if !name.is_empty() {
                return Err(ApiError::method_not_allowed("create", res));
            }
            create(&mut ctx, &body, &content_type).await
        }
        ("", "update") => update(&mut ctx, &name, &body, &content_type, WriteScope::Main).await,
        ("", "patch") => patch(&mut ctx, &name, &body, &content_type, false).await,
        ("", "delete") => delete(&mut ctx, &name, &body).await,
        ("", "deletecollection") => {
            if !res.verbs.contains(&"deletecollection") {
                return Err(ApiError::method_not_allowed("deletecollection", res));
            }
            delete_collection(&mut ctx, &body).await
        }
        ("status", "get") => get(&ctx, &name).await,
        ("status", "update") => {
            update(&mut ctx, &name, &body, &content_type, WriteScope::Status).await
        }
        ("status", "patch") => patch(&mut ctx, &name, &body, &content_type, true).await,
        ("scale", "get") => scale_get(&ctx, &name).await,
        ("scale", "update") => scale_write(&mut ctx, &name, &body, &content_type, false).await,
        ("scale", "patch") => scale_write(&mut ctx, &name, &body, &content_type, true).await,
        ("finalize", "update") => {
            update(&mut ctx, &name, &body, &content_type, WriteScope::Finalize).await
        }
        (_, verb) => Err(ApiError::method_not_allowed(verb, res)),
    }
}

/// How much of an oversized body is read and thrown away so that the 413 reaches the client
/// (an HTTP/2 stream whose request body is dropped unread is reset before the answer lands).
const MAX_DISCARD_BYTES: usize = 64 * 1024 * 1024;

/// Reads a request body of at most [`MAX_BODY_BYTES`]; a larger one is 413.
pub async fn read_body(req: http::Request<Body>) -> ApiResult<Vec<u8>> {
    use http_body_util::BodyExt;
    let mut body = req.into_body();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("error reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= MAX_BODY_BYTES {
                buf.extend_from_slice(&data);
            } else if seen > MAX_DISCARD_BYTES {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::too_large(format!("limit is {MAX_BODY_BYTES}")));
    }
    Ok(buf)
}

/// Reads one object or 404.
pub async fn get_current(ctx: &Ctx<'_>, name: &str) -> ApiResult<(Value, KeyValue)> {
    let kv = ctx
        .api
        .store
        .get(&ctx.key(name))
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::not_found(ctx.res, name))?;
    Ok((decode_kv(&kv)?, kv))
}

async fn get(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    let (obj, _) = get_current(ctx, name).await?;
    Ok(respond_object(ctx, StatusCode::OK, obj))
}

/// The label and field selectors of a list or watch.
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn from_query(ctx: &Ctx<'_>) -> ApiResult<Selectors> {
        let labels = LabelSelector::parse(ctx.qp("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let fields = FieldSelector::parse(ctx.qp("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        for r in fields.requirements() {
            let supported = r.field == "metadata.name"
                || r.field == "metadata.namespace"
                || ctx.strategy.field_labels().contains(&r.field.as_str());
            if !supported {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    r.field
                )));
            }
        }
        Ok(Selectors { labels, fields })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, strategy: &dyn Strategy, obj: &Value) -> bool {
        if !self.labels.is_empty() && !self.labels.matches(&labels_of(obj)) {
            return false;
        }
        if self.fields.is_empty() {
            return true;
        }
        self.fields.matches(|field| match field {
            "metadata.name" => objects::name(obj).to_string(),
            "metadata.namespace" => meta_str(obj, "namespace").unwrap_or("").to_string(),
            other => strategy.field_value(obj, other),
        })
    }
}

/// A `continue` token: the revision of the first page and the last key returned.
fn encode_continue(rv: i64, last_key: &str, prefix: &str) -> String {
    let start = last_key.strip_prefix(prefix).unwrap_or(last_key);
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> ApiResult<(i64, String)> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, format!("{prefix}{start}")))
}

fn parse_limit(ctx: &Ctx<'_>) -> ApiResult<Option<usize>> {
    match ctx.qp("limit") {
        None | Some("") => Ok(None),
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            Ok(_) => Ok(None),
            Err(_) => Err(ApiError::bad_request(format!(
                "invalid limit {l:?}: must be an integer"
            ))),
        },
    }
}

fn validate_list_rv(ctx: &Ctx<'_>) -> ApiResult<()> {
    let rv = ctx.qp("resourceVersion").unwrap_or("");
    let cont = ctx.qp("continue").unwrap_or("");
    if let Some(m) = ctx.qp("resourceVersionMatch").filter(|m| !m.is_empty()) {
        let err = |e: FieldError| {
            ApiError::invalid_kind(
                "ListOptions.meta.k8s.io",
                "meta.k8s.io",
                "ListOptions",
                "",
                &vec![e],
            )
        };
        if !matches!(m, "NotOlderThan" | "Exact") {
            return Err(err(FieldError::not_supported(
                "resourceVersionMatch",
                &json!(m),
                &["Exact", "NotOlderThan", ""],
            )));
        }
        if rv.is_empty() {
            return Err(err(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            )));
        }
        if !cont.is_empty() {
            return Err(err(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            )));
        }
        if m == "Exact" && rv == "0" {
            return Err(err(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            )));
        }
    }
    if !rv.is_empty() && rv.parse::<i64>().is_err() {
        return Err(ApiError::bad_request(format!(
            "invalid resource version: {rv}"
        )));
    }
    Ok(())
}

/// Reads one page of matching objects. Returns the items, the list revision and the next
/// `continue` token.
pub async fn list_objects(
    ctx: &Ctx<'_>,
    sel: &Selectors,
) -> ApiResult<(Vec<Value>, i64, Option<String>, Option<i64>)> {
    validate_list_rv(ctx)?;
    let prefix = ctx.list_prefix();
    let limit = parse_limit(ctx)?;
    let (mut start_after, mut list_rv) = (None, None);
    if let Some(c) = ctx.qp("continue").filter(|c| !c.is_empty()) {
        let (rv, key) = decode_continue(c, &prefix)?;
        let compacted = ctx
            .api
            .store
            .compacted_revision()
            .await
            .map_err(store_err)?;
        if rv < compacted {
            return Err(ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        start_after = Some(key);
        list_rv = Some(rv);
    }
    let mut items = Vec::new();
    let mut next = None;
    let mut remaining = None;
    loop {
        let want = limit.map(|l| l.saturating_sub(items.len()).max(1));
        let page = ctx
            .api
            .store
            .list(&prefix, start_after.as_deref(), want)
            .await
            .map_err(store_err)?;
        let rv = *list_rv.get_or_insert(page.revision);
        let last_key = page.items.last().map(|kv| kv.key.clone());
        for kv in &page.items {
            let obj = decode_kv(kv)?;
            if sel.matches(ctx.strategy, &obj) {
                items.push(obj);
            }
        }
        match (limit, last_key) {
            (Some(l), Some(last)) if page.remaining > 0 => {
                if items.len() >= l {
                    next = Some(encode_continue(rv, &last, &prefix));
                    if sel.is_empty() {
                        remaining = Some(page.remaining);
                    }
                    break;
                }
                start_after = Some(last);
            }
            _ => break,
        }
    }
    Ok((items, list_rv.unwrap_or(0), next, remaining))
}

async fn list(ctx: &Ctx<'_>) -> ApiResult<Response> {
    let sel = Selectors::from_query(ctx)?;
    let (items, rv, cont, remaining) = list_objects(ctx, &sel).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|o| ctx.to_request_version(o))
        .collect();
    match ctx.repr {
        Representation::Table(v) => {
            let include = ctx.qp("includeObject").unwrap_or("Metadata");
            let t = table::table(
                ctx.res,
                &items,
                ctx.api.clock.now(),
                include,
                v,
                Some(rv),
                cont.as_deref(),
            );
            Ok(json_response(
                StatusCode::OK,
                &t,
                table::content_type(v),
                &ctx.warnings,
            ))
        }
        repr => {
            let mut meta = Map::new();
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            if let Some(c) = cont {
                meta.insert("continue".into(), json!(c));
            }
            if let Some(r) = remaining {
                meta.insert("remainingItemCount".into(), json!(r));
            }
            let (kind, api_version, items) = if matches!(repr, Representation::Object) {
                (ctx.res.list_kind(), ctx.res.api_version(), items)
            } else {
                (
                    "PartialObjectMetadataList".to_string(),
                    "meta.k8s.io/v1".to_string(),
                    items.iter().map(objects::partial_metadata).collect(),
                )
            };
            let body =
                json!({"kind": kind, "apiVersion": api_version, "metadata": meta, "items": items});
            Ok(json_response(
                StatusCode::OK,
                &body,
                "application/json",
                &ctx.warnings,
            ))
        }
    }
}

/// `fieldValidation`: what to do with unknown fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

fn field_validation(ctx: &Ctx<'_>, options_kind: &str) -> ApiResult<FieldValidation> {
    match ctx.qp("fieldValidation").unwrap_or("") {
        "" | "Warn" => Ok(FieldValidation::Warn),
        "Ignore" => Ok(FieldValidation::Ignore),
        "Strict" => Ok(FieldValidation::Strict),
        other => Err(ApiError::invalid_kind(
            &format!("{options_kind}.meta.k8s.io"),
            "meta.k8s.io",
            options_kind,
            "",
            &vec![FieldError::not_supported(
                "fieldValidation",
                &json!(other),
                &["Ignore", "Warn", "Strict"],
            )],
        )),
    }
}

fn dry_run(ctx: &Ctx<'_>, options_kind: &str, from_body: Option<&Value>) -> ApiResult<bool> {
    let values: Vec<String> = match from_body
        .and_then(|b| b.get("dryRun"))
        .and_then(Value::as_array)
    {
        Some(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect(),
        None => ctx.query.get("dryRun").cloned().unwrap_or_default(),
    };
    for v in &values {
        if v != "All" {
            return Err(ApiError::invalid_kind(
                &format!("{options_kind}.meta.k8s.io"),
                "meta.k8s.io",
                options_kind,
                "",
                &vec![FieldError::not_supported("dryRun", &json!(v), &["All"])],
            ));
        }
    }
    Ok(!values.is_empty())
}

/// Checks `apiVersion`/`kind` of a body against the endpoint, fills them when absent, and
/// converts the object to the storage version.
fn check_type_and_convert(ctx: &Ctx<'_>, obj: &mut Value) -> ApiResult<()> {
    let res = ctx.res;
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: the body is not a JSON object",
            kind = res.kind,
            v = res.version
        )));
    };
    let want = res.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(av) if !av.is_empty() && av != want => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want})"
            )));
        }
        _ => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != res.kind => {
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: no kind \"{k}\" is registered for version \"{want}\"",
                kind = res.kind,
                v = res.version
            )));
        }
        _ => {}
    }
    map.insert("apiVersion".into(), json!(res.storage_api_version()));
    map.insert("kind".into(), json!(res.kind));
    Ok(())
}

/// Decodes through the kind's schema and applies `fieldValidation`.
fn decode_typed(ctx: &mut Ctx<'_>, obj: Value, options_kind: &str) -> ApiResult<Value> {
    let mode = field_validation(ctx, options_kind)?;
    let res = ctx.res;
    let decoded = ctx.strategy.decode(obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
            kind = res.kind,
            v = res.version
        ))
    })?;
    if !decoded.unknown_fields.is_empty() {
        let texts: Vec<String> = decoded
            .unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        match mode {
            FieldValidation::Strict => {
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                    texts.join(", "),
                    kind = res.kind,
                    v = res.version
                )));
            }
            FieldValidation::Warn => ctx.warnings.extend(texts),
            FieldValidation::Ignore => {}
        }
    }
    Ok(decoded.object)
}

fn check_namespace_matches(ctx: &Ctx<'_>, obj: &mut Value) -> ApiResult<()> {
    match ctx.ns() {
        Some(ns) => {
            match meta_str(obj, "namespace") {
                Some(body_ns) if body_ns != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            objects::set_meta(obj, "namespace", json!(ns));
        }
        None => objects::remove_meta(obj, "namespace"),
    }
    Ok(())
}

/// NamespaceLifecycle admission: the namespace must exist and not be terminating.
async fn admit_namespace(ctx: &Ctx<'_>, name: &str) -> ApiResult<()> {
    let Some(ns) = ctx.ns() else { return Ok(()) };
    let kv = ctx
        .api
        .store
        .get(&NAMESPACES.storage_key(None, ns))
        .await
        .map_err(store_err)?;
    let Some(kv) = kv else {
        return Err(ApiError::namespace_not_found(ns));
    };
    let nsobj = decode_kv(&kv)?;
    let terminating = meta_str(&nsobj, "deletionTimestamp").is_some()
        || nsobj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating {
        let subject = if name.is_empty() {
            ctx.res.qualified()
        } else {
            format!("{} \"{name}\"", ctx.res.qualified())
        };
        let mut e = ApiError::forbidden(
            format!(
                "{subject} is forbidden: unable to create new content in namespace {ns} because it is being terminated"
            ),
            None,
        );
        let mut d = Map::new();
        if !name.is_empty() {
            d.insert("name".into(), json!(name));
        }
        if !ctx.res.group.is_empty() {
            d.insert("group".into(), json!(ctx.res.group));
        }
        d.insert("kind".into(), json!(ctx.res.plural));
        d.insert(
            "causes".into(),
            json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]),
        );
        e.details = Some(Box::new(Value::Object(d)));
        return Err(e);
    }
    Ok(())
}

/// Admission that needs the requester: RBAC's escalation prevention on Role, ClusterRole and
/// binding writes (upstream does it in the RBAC registries' storage).
async fn admit_write(ctx: &Ctx<'_>, new: &Value, old: Option<&Value>) -> ApiResult<()> {
    if ctx.res.group != "rbac.authorization.k8s.io" {
        return Ok(());
    }
    let Some(rbac) = &ctx.api.rbac else {
        return Ok(());
    };
    let ns = ctx.ns().unwrap_or("");
    crate::rbac::check_escalation_on_update(rbac, ctx.user, ctx.res.kind, ns, new, old).await
}

fn invalid(ctx: &Ctx<'_>, obj: &Value, errs: ErrorList) -> ApiResult<()> {
    if errs.is_empty() {
        return Ok(());
    }
    let name = meta_str(obj, "name")
        .or_else(|| meta_str(obj, "generateName"))
        .unwrap_or("");
    Err(ApiError::invalid(ctx.res, name, &errs))
}

async fn create(ctx: &mut Ctx<'_>, body: &[u8], content_type: &str) -> ApiResult<Response> {
    let mut obj = negotiate::decode_body(body, content_type)?;
    let dry = dry_run(ctx, "CreateOptions", None)?;
    check_type_and_convert(ctx, &mut obj)?;
    let mut obj = decode_typed(ctx, obj, "CreateOptions")?;
    check_namespace_matches(ctx, &mut obj)?;
    let generate = meta_str(&obj, "name").is_none();
    let prefix = meta_str(&obj, "generateName").unwrap_or("").to_string();

    // BeforeCreate: the server owns these.
    {
        let m = meta_mut(&mut obj);
        for f in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ] {
            m.remove(f);
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(now_ts(ctx.api)));
        if ctx.strategy.tracks_generation() {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut candidate = obj.clone();
        if generate && !prefix.is_empty() {
            let base: String = prefix.chars().take(58).collect();
            objects::set_meta(
                &mut candidate,
                "name",
                json!(format!("{base}{}", random_suffix())),
            );
        }
        ctx.strategy.default(&mut candidate);
        ctx.strategy.prepare_for_create(&mut candidate);
        objects::drop_empty_meta(&mut candidate);
        // Go serialises a kind's status struct even when it is empty (`omitempty` does not
        // drop structs), so clients see `"status": {}` on a fresh Job or Deployment.
        if ctx.res.subresource("status").is_some()
            && let Some(map) = candidate.as_object_mut()
        {
            map.entry("status").or_insert_with(|| json!({}));
        }

        let mut errs = validation::validate_object_meta(
            &candidate,
            ctx.res.namespaced,
            ctx.strategy.name_rule(),
        );
        if errs.is_empty() {
            errs.extend(ctx.strategy.validate(&candidate));
        }
        invalid(ctx, &candidate, errs)?;
        let name = objects::name(&candidate).to_string();
        admit_namespace(ctx, &name).await?;
        let requested = if generate {
            prefix.as_str()
        } else {
            name.as_str()
        };
        crate::admission::admit_create(ctx, &mut candidate, requested).await?;
        admit_write(ctx, &candidate, None).await?;
        let w = ctx.strategy.warnings_on_create(&candidate);
        if dry {
            ctx.warnings.extend(w);
            return Ok(respond_object(ctx, StatusCode::CREATED, candidate));
        }
        match ctx
            .api
            .store
            .create(&ctx.key(&name), encode(&candidate)?)
            .await
        {
            Ok(kv) => {
                ctx.warnings.extend(w);
                objects::set_meta(
                    &mut candidate,
                    "resourceVersion",
                    json!(kv.mod_revision.to_string()),
                );
                return Ok(respond_object(ctx, StatusCode::CREATED, candidate));
            }
            Err(StoreError::AlreadyExists(_)) => {
                if generate && !prefix.is_empty() {
                    if attempts < GENERATE_NAME_ATTEMPTS {
                        continue;
                    }
                    return Err(ApiError::generate_name_conflict(ctx.res, &name));
                }
                return Err(ApiError::already_exists(ctx.res, &name));
            }
            Err(e) => return Err(store_err(e)),
        }
    }
}

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteScope {
    Main,
    Status,
    /// A namespace's `finalize` subresource: only `spec.finalizers` changes.
    Finalize,
    /// A pod's `binding` subresource: the transform set `spec.nodeName` and `PodScheduled`;
    /// the pod's update rules (which forbid spec changes) do not apply.
    Binding,
}

/// Binds a pod to `node` (the `binding` subresource): 409 if it is already bound.
pub async fn bind_pod(ctx: &Ctx<'_>, name: &str, node: &str, now: &str) -> ApiResult<()> {
    let res = ctx.res;
    guaranteed_update(ctx, name, WriteScope::Binding, false, |current| {
        if let Some(existing) = current.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict(res, name, &format!("pod {name} is already assigned to node \"{existing}\"")));
        }
        if meta_str(current, "deletionTimestamp").is_some() {
            return Err(ApiError::conflict(res, name, &format!("pod {name} is being deleted, cannot be assigned to a host")));
        }
        let mut pod = current.clone();
        if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("nodeName".into(), json!(node));
        }
        let status = pod
            .as_object_mut()
            .map(|m| m.entry("status").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut);
        if let Some(status) = status {
            let conditions = status.entry("conditions").or_insert_with(|| json!([]));
            if let Some(list) = conditions.as_array_mut() {
                list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
                list.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            }
        }
        objects::remove_meta(&mut pod, "resourceVersion");
        Ok(pod)
    })
    .await
    .map(|_| ())
}

/// The outcome of a guaranteed update.
enum Updated {
    Stored(Value),
    Deleted(Value),
}

/// The apiserver's `GuaranteedUpdate`: read, transform, compare-and-swap, retrying on
/// conflicts unless the transform pinned a resourceVersion.
async fn guaranteed_update<F>(
    ctx: &Ctx<'_>,
    name: &str,
    scope: WriteScope,
    dry: bool,
    mut transform: F,
) -> ApiResult<Updated>
where
    F: FnMut(&Value) -> ApiResult<Value>,
{
    let key = ctx.key(name);
    for _ in 0..UPDATE_ATTEMPTS {
        let (current, kv) = get_current(ctx, name).await?;
        let mut new = transform(&current)?;
        let pinned = meta_str(&new, "resourceVersion").map(str::to_string);
        if let Some(rv) = &pinned
            && *rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::modified(ctx.res, name));
        }
        if objects::name(&new) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                objects::name(&new)
            )));
        }
        before_update(ctx, &mut new, &current, scope)?;
        // A write that changes nothing is not written (the resourceVersion stays).
        if strip_rv(&new) == strip_rv(&current) {
            return Ok(Updated::Stored(current));
        }
        admit_write(ctx, &new, Some(&current)).await?;
        let deleting = meta_str(&new, "deletionTimestamp").is_some();

        if deleting && !has_finalizers(ctx, &new) {
            if dry {
                return Ok(Updated::Deleted(new));
            }
            match ctx.api.store.delete(&key, Some(kv.mod_revision)).await {
                Ok((_, rev)) => {
                    objects::set_meta(&mut new, "resourceVersion", json!(rev.to_string()));
                    return Ok(Updated::Deleted(new));
                }
                Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
                Err(StoreError::Conflict { .. }) => return Err(ApiError::modified(ctx.res, name)),
                Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(ctx.res, name)),
                Err(e) => return Err(store_err(e)),
            }
        }
        if dry {
            return Ok(Updated::Stored(new));
        }
        match ctx
            .api
            .store
            .update(&key, kv.mod_revision, encode(&new)?)
            .await
        {
            Ok(stored) => {
                objects::set_meta(
                    &mut new,
                    "resourceVersion",
                    json!(stored.mod_revision.to_string()),
                );
                return Ok(Updated::Stored(new));
            }
            Err(StoreError::Conflict { .. }) if pinned.is_none() => continue,
            Err(StoreError::Conflict { .. }) => return Err(ApiError::modified(ctx.res, name)),
            Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(ctx.res, name)),
            Err(e) => return Err(store_err(e)),
        }
    }
    Err(ApiError::modified(ctx.res, name))
}

/// `spec.finalizers` of a namespace (what the namespace controller clears when its content
/// is gone).
fn namespace_finalizers(obj: &Value) -> Vec<String> {
    objects::strings_at(obj, "/spec/finalizers")
}

/// Whether anything still holds a deleted object: metadata finalizers, and for namespaces
/// their spec finalizers.
fn has_finalizers(ctx: &Ctx<'_>, obj: &Value) -> bool {
    !objects::finalizers(obj).is_empty()
        || (std::ptr::eq(ctx.res, &NAMESPACES) && !namespace_finalizers(obj).is_empty())
}

fn strip_rv(v: &Value) -> Value {
    let mut v = v.clone();
    objects::remove_meta(&mut v, "resourceVersion");
    v
}

/// `BeforeUpdate`: server-owned metadata is kept, the strategy prepares and validates.
fn before_update(ctx: &Ctx<'_>, new: &mut Value, old: &Value, scope: WriteScope) -> ApiResult<()> {
    // Fields clients cannot change.
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    {
        let m = meta_mut(new);
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(f) {
                Some(v) => {
                    m.insert(f.into(), v.clone());
                }
                None => {
                    m.remove(f);
                }
            }
        }
        m.remove("selfLink");
        m.remove("managedFields");
    }
    objects::drop_empty_meta(new);
    if let Some(map) = new.as_object_mut() {
        for f in ["apiVersion", "kind"] {
            if let Some(v) = old.get(f) {
                map.insert(f.into(), v.clone());
            }
        }
    }
    match scope {
        WriteScope::Main => {
            ctx.strategy.default(new);
            ctx.strategy.prepare_for_update(new, old);
            if ctx.strategy.tracks_generation() && new.get("spec") != old.get("spec") {
                let g = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                objects::set_meta(new, "generation", json!(g + 1));
            }
            let mut errs = validation::validate_object_meta_update(new, old);
            errs.extend(validation::validate_object_meta(
                new,
                ctx.res.namespaced,
                ctx.strategy.name_rule(),
            ));
            // Once deleting, only finalizers may be removed, never added.
            if meta_str(old, "deletionTimestamp").is_some() {
                let before = objects::finalizers(old);
                for f in objects::finalizers(new) {
                    if !before.contains(&f) {
                        errs.push(FieldError::forbidden(
                            "metadata.finalizers",
                            format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{f:?}}}"),
                        ));
                    }
                }
            }
            if errs.is_empty() {
                errs.extend(ctx.strategy.validate_update(new, old));
            }
            invalid(ctx, new, errs)
        }
        WriteScope::Status => {
            // A status write changes status only; metadata and spec stay as stored.
            let mut merged = old.clone();
            nanokube_registry::strategy::copy_field(&mut merged, new, "status");
            if let Some(rv) = meta_str(new, "resourceVersion") {
                objects::set_meta(&mut merged, "resourceVersion", json!(rv));
            }
            ctx.strategy.prepare_for_status_update(&mut merged, old);
            *new = merged;
            let errs = ctx.strategy.validate_status_update(new, old);
            invalid(ctx, new, errs)
        }
        WriteScope::Binding => Ok(()),
        WriteScope::Finalize => {
            let mut merged = old.clone();
            let fins = new
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or_else(|| json!([]));
            if let Some(map) = merged.as_object_mut() {
                let spec = map.entry("spec").or_insert_with(|| json!({}));
                if let Some(spec) = spec.as_object_mut() {
                    spec.insert("finalizers".into(), fins);
                }
            }
            if let Some(rv) = meta_str(new, "resourceVersion") {
                objects::set_meta(&mut merged, "resourceVersion", json!(rv));
            }
            *new = merged;
            Ok(())
        }
    }
}

fn finish_update(ctx: &Ctx<'_>, outcome: Updated) -> Response {
    match outcome {
        Updated::Stored(obj) => respond_object(ctx, StatusCode::OK, obj),
        Updated::Deleted(obj) => respond_object(ctx, StatusCode::OK, obj),
    }
}

async fn update(
    ctx: &mut Ctx<'_>,
    name: &str,
    body: &[u8],
    content_type: &str,
    scope: WriteScope,
) -> ApiResult<Response> {
    let mut obj = negotiate::decode_body(body, content_type)?;
    let dry = dry_run(ctx, "UpdateOptions", None)?;
    check_type_and_convert(ctx, &mut obj)?;
    let mut obj = decode_typed(ctx, obj, "UpdateOptions")?;
    check_namespace_matches(ctx, &mut obj)?;
    if meta_str(&obj, "name").is_none() {
        objects::set_meta(&mut obj, "name", json!(name));
    }
    let outcome = guaranteed_update(ctx, name, scope, dry, |_| Ok(obj.clone())).await?;
    Ok(finish_update(ctx, outcome))
}

/// Applies a patch document of the given content type to an object as the client sees it.
fn apply_patch(
    ctx: &Ctx<'_>,
    current: &Value,
    patch: &Value,
    content_type: &str,
) -> ApiResult<Value> {
    let base = content_type.split(';').next().unwrap_or("").trim();
    let res = ctx.res;
    match base {
        "application/json-patch+json" => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::invalid_kind(
                    &res.qualified_kind(),
                    res.group,
                    res.kind,
                    objects::name(current),
                    &vec![FieldError {
                        kind: nanokube_registry::field::ErrorType::Invalid,
                        field: String::new(),
                        value: None,
                        detail: format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    }],
                )
                .with_message(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            Ok(doc)
        }
        "application/merge-patch+json" => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            let mut doc = current.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        "application/strategic-merge-patch+json" => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            nanokube_registry::smp::apply(current, patch, res.group, res.kind)
                .map_err(|e| ApiError::bad_request(e.to_string()))
        }
        "application/apply-patch+yaml" => Err(ApiError::unsupported_media_type(base)),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

impl ApiError {
    fn with_message(mut self, msg: String) -> Self {
        self.message = msg;
        self
    }
}

async fn patch(
    ctx: &mut Ctx<'_>,
    name: &str,
    body: &[u8],
    content_type: &str,
    status: bool,
) -> ApiResult<Response> {
    let patch_doc: Value = if negotiate::is_yaml(content_type) {
        negotiate::decode_body(body, content_type)?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    let dry = dry_run(ctx, "PatchOptions", None)?;
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if !matches!(
        base.as_str(),
        "application/json-patch+json"
            | "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
    ) {
        return Err(ApiError::unsupported_media_type(&base));
    }
    let mode = field_validation(ctx, "PatchOptions")?;
    let scope = if status {
        WriteScope::Status
    } else {
        WriteScope::Main
    };
    let mut warnings: Vec<String> = Vec::new();
    let outcome = {
        let ctx_ref: &Ctx<'_> = ctx;
        guaranteed_update(ctx_ref, name, scope, dry, |current| {
            let visible = ctx_ref.to_request_version(current.clone());
            let mut patched = apply_patch(ctx_ref, &visible, &patch_doc, &base)?;
            check_type_and_convert(ctx_ref, &mut patched)?;
            let res = ctx_ref.res;
            let decoded = ctx_ref.strategy.decode(patched).map_err(|e| {
                ApiError::bad_request(format!(
                    "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
                    kind = res.kind,
                    v = res.version
                ))
            })?;
            warnings.clear();
            if !decoded.unknown_fields.is_empty() {
                let texts: Vec<String> = decoded.unknown_fields.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                match mode {
                    FieldValidation::Strict => {
                        return Err(ApiError::bad_request(format!(
                            "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                            texts.join(", "),
                            kind = res.kind,
                            v = res.version
                        )));
                    }
                    FieldValidation::Warn => warnings.extend(texts),
                    FieldValidation::Ignore => {}
                }
            }
            let mut obj = decoded.object;
            // The patch may not move the object.
            if let Some(ns) = ctx_ref.ns() {
                objects::set_meta(&mut obj, "namespace", json!(ns));
            }
            // A resourceVersion the client did not send in its patch is no precondition.
            let patch_pins_rv = patch_doc.pointer("/metadata/resourceVersion").is_some()
                || (base == "application/json-patch+json"
                    && patch_doc.as_array().is_some_and(|ops| {
                        ops.iter().any(|op| op.get("path").and_then(Value::as_str) == Some("/metadata/resourceVersion"))
                    }));
            if !patch_pins_rv {
                objects::remove_meta(&mut obj, "resourceVersion");
            }
            Ok(obj)
        })
        .await?
    };
    ctx.warnings.extend(warnings);
    Ok(finish_update(ctx, outcome))
}

/// `DeleteOptions` from the body, or else from the query string.
struct DeleteOptions {
    propagation: Option<String>,
    grace_period: Option<i64>,
    precondition_uid: Option<String>,
    precondition_rv: Option<String>,
    dry_run: bool,
}

fn delete_options(ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<DeleteOptions> {
    let invalid = |e: FieldError| {
        ApiError::invalid_kind(
            "DeleteOptions.meta.k8s.io",
            "meta.k8s.io",
            "DeleteOptions",
            "",
            &vec![e],
        )
    };
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value = negotiate::decode_body(body, "application/json")?;
        if !v.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
        }
        Some(v)
    };
    let mut opts = DeleteOptions {
        propagation: None,
        grace_period: None,
        precondition_uid: None,
        precondition_rv: None,
        dry_run: dry_run(ctx, "DeleteOptions", from_body.as_ref())?,
    };
    let orphan: Option<bool>;
    match &from_body {
        Some(b) => {
            opts.propagation = b
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_string);
            opts.grace_period = b.get("gracePeriodSeconds").and_then(Value::as_i64);
            opts.precondition_uid = b
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string);
            opts.precondition_rv = b
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            orphan = b.get("orphanDependents").and_then(Value::as_bool);
        }
        None => {
            opts.propagation = ctx
                .qp("propagationPolicy")
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            if let Some(g) = ctx.qp("gracePeriodSeconds").filter(|s| !s.is_empty()) {
                opts.grace_period = Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}"))
                })?);
            }
            orphan = ctx.qp("orphanDependents").map(|s| s == "true");
        }
    }
    if let Some(p) = &opts.propagation {
        if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
            return Err(invalid(FieldError::not_supported(
                "propagationPolicy",
                &json!(p),
                &["Foreground", "Background", "Orphan"],
            )));
        }
        if orphan.is_some() {
            return Err(invalid(FieldError::invalid(
                "propagationPolicy",
                &json!(p),
                "orphanDependents and deletionPropagation cannot be both set",
            )));
        }
    } else if let Some(o) = orphan {
        opts.propagation = Some(if o { "Orphan" } else { "Background" }.to_string());
    }
    if let Some(g) = opts.grace_period
        && g < 0
    {
        opts.grace_period = Some(1);
    }
    Ok(opts)
}

/// What a delete did: removed the object now, or marked it for deletion.
enum Deletion {
    Removed(Value),
    Pending(Value),
}

/// Deletes one object, honouring preconditions, graceful deletion, finalizers and the
/// garbage-collection finalizers of the propagation policy.
async fn delete_one(ctx: &mut Ctx<'_>, name: &str, opts: &DeleteOptions) -> ApiResult<Deletion> {
    let key = ctx.key(name);
    let res = ctx.res;
    let explicit = opts.propagation.clone();
    if explicit.is_none() && ctx.strategy.default_propagation() == DefaultPropagation::Orphan {
        ctx.warn("child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning");
    }
    for _ in 0..UPDATE_ATTEMPTS {
        let (current, kv) = get_current(ctx, name).await?;
        if let Some(uid) = &opts.precondition_uid {
            let have = meta_str(&current, "uid").unwrap_or("");
            if uid != have {
                return Err(ApiError::conflict(
                    res,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.precondition_rv
            && *rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::conflict(
                res,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                ),
            ));
        }
        let policy = explicit
            .clone()
            .unwrap_or_else(|| match ctx.strategy.default_propagation() {
                DefaultPropagation::Orphan => "Orphan".to_string(),
                DefaultPropagation::Background => "Background".to_string(),
            });
        let mut new = current.clone();
        let mut fins = objects::finalizers(&new);
        let already_deleting = meta_str(&current, "deletionTimestamp").is_some();
        // The garbage collector's finalizers record the propagation policy (upstream
        // `deletionFinalizersForGarbageCollection`): it only changes them when a policy is given.
        if explicit.is_some() || !already_deleting {
            let (add, drop) = match policy.as_str() {
                "Orphan" => (Some("orphan"), "foregroundDeletion"),
                "Foreground" => (Some("foregroundDeletion"), "orphan"),
                _ => (None, ""),
            };
            if policy == "Background" {
                fins.retain(|f| f != "orphan" && f != "foregroundDeletion");
            } else if let Some(add) = add {
                fins.retain(|f| f != drop);
                if !fins.iter().any(|f| f == add) {
                    fins.push(add.to_string());
                }
            }
        }
        objects::set_finalizers(&mut new, &fins);
        // Graceful deletion (pods bound to a node and still running).
        let grace = graceful_period(ctx, &current, opts.grace_period);
        let now = ctx.api.clock.now();
        let is_namespace = std::ptr::eq(ctx.res, &NAMESPACES);
        // A namespace waits for its content to go (spec.finalizers) in phase Terminating.
        let waits =
            !fins.is_empty() || (is_namespace && !namespace_finalizers(&current).is_empty());
        if is_namespace
            && waits
            && let Some(status) = new
                .as_object_mut()
                .map(|m| m.entry("status").or_insert_with(|| json!({})))
        {
            status["phase"] = json!("Terminating");
        }

        if grace > 0 || waits {
            if !already_deleting {
                let when = now + chrono::Duration::seconds(grace);
                objects::set_meta(
                    &mut new,
                    "deletionTimestamp",
                    json!(objects::timestamp(when)),
                );
                objects::set_meta(&mut new, "deletionGracePeriodSeconds", json!(grace));
            } else if grace > 0 {
                // A shorter grace period moves the deadline forward, never back.
                let cur = current
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX);
                if grace < cur {
                    let when = now + chrono::Duration::seconds(grace);
                    objects::set_meta(
                        &mut new,
                        "deletionTimestamp",
                        json!(objects::timestamp(when)),
                    );
                    objects::set_meta(&mut new, "deletionGracePeriodSeconds", json!(grace));
                }
            }
            if grace == 0 && !waits {
                // fall through to removal below
            } else {
                if new == current {
                    return Ok(Deletion::Pending(current));
                }
                if opts.dry_run {
                    return Ok(Deletion::Pending(new));
                }
                match ctx
                    .api
                    .store
                    .update(&key, kv.mod_revision, encode(&new)?)
                    .await
                {
                    Ok(stored) => {
                        objects::set_meta(
                            &mut new,
                            "resourceVersion",
                            json!(stored.mod_revision.to_string()),
                        );
                        return Ok(Deletion::Pending(new));
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(res, name)),
                    Err(e) => return Err(store_err(e)),
                }
            }
        }
        if opts.dry_run {
            return Ok(Deletion::Removed(current));
        }
        match ctx.api.store.delete(&key, Some(kv.mod_revision)).await {
            Ok((prev, rev)) => {
                let mut gone = decode_kv(&prev)?;
                objects::set_meta(&mut gone, "resourceVersion", json!(rev.to_string()));
                return Ok(Deletion::Removed(gone));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Err(ApiError::not_found(res, name)),
            Err(e) => return Err(store_err(e)),
        }
    }
    Err(ApiError::modified(res, name))
}

/// The grace period of a delete: only pods have one, and only while bound and not finished.
fn graceful_period(ctx: &Ctx<'_>, obj: &Value, requested: Option<i64>) -> i64 {
    if !std::ptr::eq(ctx.res, &resource::PODS) {
        return 0;
    }
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    requested
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

fn success_status(ctx: &Ctx<'_>, obj: &Value) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(objects::name(obj)));
    if !ctx.res.group.is_empty() {
        details.insert("group".into(), json!(ctx.res.group));
    }
    details.insert("kind".into(), json!(ctx.res.plural));
    if let Some(uid) = meta_str(obj, "uid") {
        details.insert("uid".into(), json!(uid));
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

async fn delete(ctx: &mut Ctx<'_>, name: &str, body: &[u8]) -> ApiResult<Response> {
    let opts = delete_options(ctx, body)?;
    match delete_one(ctx, name, &opts).await? {
        Deletion::Pending(obj) => Ok(respond_object(ctx, StatusCode::OK, obj)),
        Deletion::Removed(obj) => {
            if ctx.strategy.returns_deleted_object() {
                Ok(respond_object(ctx, StatusCode::OK, obj))
            } else {
                Ok(json_response(
                    StatusCode::OK,
                    &success_status(ctx, &obj),
                    "application/json",
                    &ctx.warnings,
                ))
            }
        }
    }
}

async fn delete_collection(ctx: &mut Ctx<'_>, body: &[u8]) -> ApiResult<Response> {
    let opts = delete_options(ctx, body)?;
    let sel = Selectors::from_query(ctx)?;
    let prefix = ctx.list_prefix();
    let page = ctx
        .api
        .store
        .list(&prefix, None, None)
        .await
        .map_err(store_err)?;
    let mut deleted = Vec::new();
    for kv in &page.items {
        let obj = decode_kv(kv)?;
        if !sel.matches(ctx.strategy, &obj) {
            continue;
        }
        let name = objects::name(&obj).to_string();
        match delete_one(ctx, &name, &opts).await {
            Ok(Deletion::Removed(o)) | Ok(Deletion::Pending(o)) => {
                deleted.push(ctx.to_request_version(o))
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let body = json!({
        "kind": ctx.res.list_kind(),
        "apiVersion": ctx.res.api_version(),
        "metadata": {"resourceVersion": page.revision.to_string()},
        "items": deleted,
    });
    Ok(json_response(
        StatusCode::OK,
        &body,
        "application/json",
        &ctx.warnings,
    ))
}

/// The `autoscaling/v1 Scale` view of an object with a scale subresource.
fn scale_of(ctx: &Ctx<'_>, obj: &Value) -> ApiResult<Value> {
    let Some(s) = ctx.strategy.scale() else {
        return Err(ApiError::page_not_found());
    };
    let replicas = obj
        .pointer(s.spec_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let observed = obj
        .pointer(s.status_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = match obj.pointer(s.selector) {
        Some(sel) => LabelSelector::from_json(sel)
            .map(|l| l.to_string())
            .unwrap_or_default(),
        None => String::new(),
    };
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut m = Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(f) {
            m.insert(f.into(), v.clone());
        }
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": m,
        "spec": {"replicas": replicas},
        "status": {"replicas": observed, "selector": selector},
    }))
}

async fn scale_get(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    let (obj, _) = get_current(ctx, name).await?;
    Ok(json_response(
        StatusCode::OK,
        &scale_of(ctx, &obj)?,
        "application/json",
        &ctx.warnings,
    ))
}

async fn scale_write(
    ctx: &mut Ctx<'_>,
    name: &str,
    body: &[u8],
    content_type: &str,
    is_patch: bool,
) -> ApiResult<Response> {
    let Some(s) = ctx.strategy.scale() else {
        return Err(ApiError::page_not_found());
    };
    let doc: Value = if is_patch {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    } else {
        negotiate::decode_body(body, content_type)?
    };
    let dry = dry_run(
        ctx,
        if is_patch {
            "PatchOptions"
        } else {
            "UpdateOptions"
        },
        None,
    )?;
    let base = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let ctx_ref: &Ctx<'_> = ctx;
    let outcome = guaranteed_update(ctx_ref, name, WriteScope::Main, dry, |current| {
        let scale = scale_of(ctx_ref, current)?;
        let new_scale = if is_patch {
            match base.as_str() {
                "application/json-patch+json" => {
                    let ops: json_patch::Patch = serde_json::from_value(doc.clone())
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    let mut d = scale.clone();
                    json_patch::patch(&mut d, &ops)
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    d
                }
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    let mut d = scale.clone();
                    json_patch::merge(&mut d, &doc);
                    d
                }
                other => return Err(ApiError::unsupported_media_type(other)),
            }
        } else {
            doc.clone()
        };
        let replicas = new_scale
            .pointer("/spec/replicas")
            .cloned()
            .unwrap_or(json!(0));
        let n = replicas.as_i64();
        if n.is_none_or(|n| n < 0) || n.is_some_and(|n| n > i64::from(i32::MAX)) {
            return Err(ApiError::invalid_kind(
                "Scale.autoscaling",
                "autoscaling",
                "Scale",
                name,
                &vec![FieldError::invalid(
                    "spec.replicas",
                    &replicas,
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut new = current.clone();
        if let Some(slot) = new.pointer_mut(s.spec_replicas) {
            *slot = replicas;
        } else if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("replicas".into(), replicas);
        }
        match meta_str(&new_scale, "resourceVersion") {
            Some(rv) if rv != meta_str(current, "resourceVersion").unwrap_or("") => {
                objects::set_meta(&mut new, "resourceVersion", json!(rv));
            }
            _ => objects::remove_meta(&mut new, "resourceVersion"),
        }
        Ok(new)
    })
    .await?;
    let obj = match outcome {
        Updated::Stored(o) | Updated::Deleted(o) => o,
    };
    Ok(json_response(
        StatusCode::OK,
        &scale_of(ctx, &obj)?,
        "application/json",
        &ctx.warnings,
    ))
}
