//! Create-only resources that are answered, never stored: TokenRequest
//! (`serviceaccounts/token`), TokenReview, SelfSubjectReview, and the access reviews
//! (SubjectAccessReview, SelfSubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectRulesReview) that `kubectl auth can-i` and `kubectl auth whoami` use.

use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision};
use crate::negotiate;
use crate::objects::{self, strings_at};
use crate::rest::{Ctx, decode_kv, json_response};
use crate::serviceaccount::{self, BoundKind, BoundObject, TokenRequestSpec};
use crate::status::{ApiError, ApiResult};
use axum::response::Response;
use http::StatusCode;
use nanokube_registry::field::FieldError;
use nanokube_registry::resource::{NODES, PODS, ResourceInfo, SECRETS, SERVICE_ACCOUNTS};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Upstream's default `expirationSeconds` of a TokenRequest.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn user_json(u: &UserInfo) -> Value {
    let mut m = Map::new();
    m.insert("username".into(), json!(u.name));
    if !u.uid.is_empty() {
        m.insert("uid".into(), json!(u.uid));
    }
    m.insert("groups".into(), json!(u.groups));
    if !u.extra.is_empty() {
        m.insert("extra".into(), json!(u.extra));
    }
    Value::Object(m)
}

/// The answer to a review: the request echoed with `status` set.
fn answer(ctx: &Ctx<'_>, res: &ResourceInfo, mut obj: Value, status: Value) -> Response {
    if let Some(m) = obj.as_object_mut() {
        m.insert("kind".into(), json!(res.kind));
        m.insert("apiVersion".into(), json!(res.api_version()));
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.entry("creationTimestamp").or_insert(Value::Null);
        }
        m.insert("status".into(), status);
    }
    json_response(StatusCode::CREATED, &obj, "application/json", &ctx.warnings)
}

/// Decodes a review body and checks it is the kind the endpoint serves.
fn decode_review(res: &ResourceInfo, body: &[u8], content_type: &str) -> ApiResult<Value> {
    let obj = negotiate::decode_body(body, content_type)?;
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} must be a JSON object",
            res.kind
        )));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or(res.kind);
    if kind != res.kind {
        return Err(ApiError::bad_request(format!(
            "{k} in version \"{v}\" cannot be handled as a {k}: no kind \"{kind}\" is registered for version \"{gv}\"",
            k = res.kind,
            v = res.version,
            gv = res.api_version()
        )));
    }
    Ok(obj)
}

/// Serves `POST` on a review resource.
pub async fn serve(ctx: &Ctx<'_>, body: &[u8], content_type: &str) -> ApiResult<Response> {
    let res = ctx.res;
    let obj = decode_review(res, body, content_type)?;
    match res.kind {
        "SelfSubjectReview" => Ok(answer(
            ctx,
            res,
            obj,
            json!({"userInfo": user_json(ctx.user)}),
        )),
        "TokenReview" => token_review(ctx, obj).await,
        "SelfSubjectRulesReview" => rules_review(ctx, obj).await,
        "SubjectAccessReview" | "SelfSubjectAccessReview" | "LocalSubjectAccessReview" => {
            access_review(ctx, obj).await
        }
        _ => Err(ApiError::method_not_allowed("create", res)),
    }
}

async fn token_review(ctx: &Ctx<'_>, obj: Value) -> ApiResult<Response> {
    let token = str_at(&obj, "/spec/token");
    if token.is_empty() {
        return Err(ApiError::invalid_kind(
            "TokenReview.authentication.k8s.io",
            "authentication.k8s.io",
            "TokenReview",
            "",
            &vec![FieldError::required("spec.token", "")],
        ));
    }
    let requested = strings_at(&obj, "/spec/audiences");
    let api_audiences: Vec<String> = ctx
        .api
        .tokens
        .service_accounts
        .as_ref()
        .map(|i| i.api_audiences().to_vec())
        .unwrap_or_default();
    let audiences = if requested.is_empty() {
        api_audiences
    } else {
        requested
    };
    let status = match ctx
        .api
        .tokens
        .authenticate(ctx.api.store.as_ref(), token, ctx.api.clock.now())
        .await
    {
        Ok(user) => {
            json!({"authenticated": true, "user": user_json(&user), "audiences": audiences})
        }
        Err(e) => json!({"user": {}, "error": e.to_string()}),
    };
    Ok(answer(ctx, ctx.res, obj, status))
}

/// The attributes a SubjectAccessReview-style spec asks about.
fn attributes_of(spec: &Value, user: UserInfo) -> Result<Attributes, FieldError> {
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (resource, non_resource) {
        (Some(r), None) => Ok(Attributes {
            user,
            verb: str_at(r, "/verb").to_string(),
            is_resource_request: true,
            namespace: str_at(r, "/namespace").to_string(),
            api_group: str_at(r, "/group").to_string(),
            api_version: str_at(r, "/version").to_string(),
            resource: str_at(r, "/resource").to_string(),
            subresource: str_at(r, "/subresource").to_string(),
            name: str_at(r, "/name").to_string(),
            path: String::new(),
        }),
        (None, Some(n)) => Ok(Attributes {
            user,
            verb: str_at(n, "/verb").to_string(),
            is_resource_request: false,
            path: str_at(n, "/path").to_string(),
            ..Default::default()
        }),
        (Some(r), Some(_)) => Err(FieldError::invalid(
            "spec.resourceAttributes",
            r,
            "cannot be specified in combination with nonResourceAttributes",
        )),
        (None, None) => Err(FieldError::invalid(
            "spec.resourceAttributes",
            &Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

/// The user a SubjectAccessReview names in its spec.
fn spec_user(spec: &Value) -> UserInfo {
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let vals = v.as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    });
                    (k.clone(), vals.unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    UserInfo {
        name: str_at(spec, "/user").to_string(),
        uid: str_at(spec, "/uid").to_string(),
        groups: strings_at(spec, "/groups"),
        extra,
    }
}

async fn access_review(ctx: &Ctx<'_>, obj: Value) -> ApiResult<Response> {
    let res = ctx.res;
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let invalid = |e: FieldError| ApiError::invalid(res, "", &vec![e]);
    let user = if res.kind == "SelfSubjectAccessReview" {
        ctx.user.clone()
    } else {
        let u = spec_user(&spec);
        if u.name.is_empty() && u.groups.is_empty() {
            return Err(invalid(FieldError::invalid(
                "spec.user",
                &json!(""),
                "at least one of user or group must be specified",
            )));
        }
        u
    };
    let attrs = attributes_of(&spec, user).map_err(invalid)?;
    if res.kind == "LocalSubjectAccessReview" {
        let ns = ctx.namespace.as_deref().unwrap_or("");
        if !attrs.is_resource_request || attrs.namespace != ns {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {ns}"
            )));
        }
    }
    let (decision, reason) = match &ctx.api.rbac {
        Some(rbac) => rbac.decide(&attrs).await,
        None => (ctx.api.authorizer.authorize(&attrs).await, String::new()),
    };
    let mut status = Map::new();
    match decision {
        Decision::Allow => {
            status.insert("allowed".into(), json!(true));
            if !reason.is_empty() {
                status.insert("reason".into(), json!(reason));
            }
        }
        Decision::Deny(why) => {
            status.insert("allowed".into(), json!(false));
            let why = if why.is_empty() { reason } else { why };
            if !why.is_empty() {
                status.insert("reason".into(), json!(why));
            }
        }
    }
    Ok(answer(ctx, res, obj, Value::Object(status)))
}

async fn rules_review(ctx: &Ctx<'_>, obj: Value) -> ApiResult<Response> {
    let ns = str_at(&obj, "/spec/namespace").to_string();
    let Some(rbac) = &ctx.api.rbac else {
        return Ok(answer(
            ctx,
            ctx.res,
            obj,
            json!({"resourceRules": [], "nonResourceRules": [], "incomplete": true}),
        ));
    };
    let (rules, errors) = rbac.cache().snapshot().rules_for(ctx.user, &ns);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in rules {
        if r.non_resource_urls.is_empty() {
            let mut m = Map::new();
            m.insert("verbs".into(), json!(r.verbs));
            m.insert("apiGroups".into(), json!(r.api_groups));
            m.insert("resources".into(), json!(r.resources));
            if !r.resource_names.is_empty() {
                m.insert("resourceNames".into(), json!(r.resource_names));
            }
            resource_rules.push(Value::Object(m));
        } else {
            non_resource_rules
                .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    Ok(answer(ctx, ctx.res, obj, status))
}

/// Reads a stored object of `res` or answers 404 for it.
async fn must_get(
    ctx: &Ctx<'_>,
    res: &'static ResourceInfo,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Value> {
    let kv = ctx
        .api
        .store
        .get(&res.storage_key(ns, name))
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(res, name))?;
    decode_kv(&kv)
}

/// `POST …/serviceaccounts/NAME/token`: a bound, expiring token for the account.
pub async fn token_request(
    ctx: &Ctx<'_>,
    sa_name: &str,
    body: &[u8],
    content_type: &str,
) -> ApiResult<Response> {
    let Some(issuer) = ctx.api.tokens.service_accounts.clone() else {
        return Err(ApiError::service_unavailable(
            "service-account token issuing is not configured",
        ));
    };
    let obj = negotiate::decode_body(body, content_type)?;
    let ns = ctx.namespace.clone().unwrap_or_default();
    let sa = must_get(ctx, &SERVICE_ACCOUNTS, Some(&ns), sa_name).await?;
    let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    let errors = serviceaccount::validate_token_request(&spec);
    if !errors.is_empty() {
        return Err(ApiError::invalid_kind(
            "TokenRequest.authentication.k8s.io",
            "authentication.k8s.io",
            "TokenRequest",
            "",
            &errors,
        ));
    }
    let expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    let bound_ref = serviceaccount::bound_object_ref(&spec)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut bound = None;
    let mut node = None;
    if let Some(r) = &bound_ref {
        let (res, scope) = match r.kind {
            BoundKind::Pod => (&PODS, Some(ns.as_str())),
            BoundKind::Secret => (&SECRETS, Some(ns.as_str())),
            BoundKind::Node => (&NODES, None),
        };
        let target = must_get(ctx, res, scope, &r.name).await?;
        let uid = objects::meta_str(&target, "uid").unwrap_or("").to_string();
        if !r.uid.is_empty() && r.uid != uid {
            return Err(ApiError::conflict(
                res,
                &r.name,
                &format!(
                    "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
                    r.uid
                ),
            ));
        }
        if r.kind == BoundKind::Pod {
            let pod_sa = str_at(&target, "/spec/serviceAccountName");
            if pod_sa != sa_name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                )));
            }
            let node_name = str_at(&target, "/spec/nodeName");
            if !node_name.is_empty() {
                let node_uid = match ctx.api.store.get(&NODES.storage_key(None, node_name)).await {
                    Ok(Some(kv)) => decode_kv(&kv)
                        .ok()
                        .and_then(|n| objects::meta_str(&n, "uid").map(str::to_string)),
                    _ => None,
                };
                node = Some((node_name.to_string(), node_uid.unwrap_or_default()));
            }
        }
        bound = Some(BoundObject {
            kind: r.kind,
            name: r.name.clone(),
            uid,
        });
    }
    let request = TokenRequestSpec {
        namespace: ns.clone(),
        service_account: sa_name.to_string(),
        service_account_uid: objects::meta_str(&sa, "uid").unwrap_or("").to_string(),
        audiences: strings_at(&spec, "/audiences"),
        expiration_seconds: expiration,
        bound,
        node,
    };
    let (token, expires) = issuer
        .issue_with_extension(&request, true, ctx.api.clock.now())
        .map_err(ApiError::internal)?;
    let audiences = if request.audiences.is_empty() {
        issuer.api_audiences().to_vec()
    } else {
        request.audiences.clone()
    };
    let mut out_spec = json!({"audiences": audiences, "expirationSeconds": expiration});
    if let Some(r) = spec.get("boundObjectRef").filter(|v| !v.is_null()) {
        out_spec["boundObjectRef"] = r.clone();
    }
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": sa_name, "namespace": ns, "creationTimestamp": null},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": objects::timestamp(expires)},
    });
    Ok(json_response(
        StatusCode::CREATED,
        &out,
        "application/json",
        &ctx.warnings,
    ))
}
