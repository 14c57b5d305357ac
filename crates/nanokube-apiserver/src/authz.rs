//! Authorization: may this user do this? A pluggable [`Authorizer`] decides; the handler turns
//! a denial into the exact Forbidden text of the apiserver's `responsewriters.Forbidden`.

use crate::authn::{MASTERS, UserInfo};
use crate::request_info::RequestInfo;
use crate::status::ApiError;
use serde_json::{Map, Value, json};

/// The attributes authorization looks at (`authorizer.Attributes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub is_resource_request: bool,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub path: String,
}

impl Attributes {
    pub fn new(user: &UserInfo, info: &RequestInfo) -> Self {
        Attributes {
            user: user.clone(),
            verb: info.verb.clone(),
            is_resource_request: info.is_resource_request,
            namespace: info.namespace.clone(),
            api_group: info.api_group.clone(),
            api_version: info.api_version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            name: info.name.clone(),
            path: info.path.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with the reason to append to the Forbidden message (empty for none).
    Deny(String),
}

/// Decides whether a request may proceed (`authorizer.Authorizer`).
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync {
    async fn authorize(&self, attrs: &Attributes) -> Decision;
}

/// Until RBAC: `system:masters` may do everything; everyone may read the public health and
/// version endpoints (what upstream's `system:public-info-viewer` grants); authenticated users
/// may read discovery (`system:discovery`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MastersOnly;

const PUBLIC_INFO: &[&str] = &["/healthz", "/livez", "/readyz", "/version", "/version/"];

fn path_allowed(path: &str, allowed: &[&str]) -> bool {
    allowed.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == *p,
    })
}

#[async_trait::async_trait]
impl Authorizer for MastersOnly {
    async fn authorize(&self, attrs: &Attributes) -> Decision {
        if attrs.user.in_group(MASTERS) {
            return Decision::Allow;
        }
        if !attrs.is_resource_request && attrs.verb == "get" {
            if path_allowed(&attrs.path, PUBLIC_INFO) {
                return Decision::Allow;
            }
            if attrs.user.in_group(crate::authn::AUTHENTICATED)
                && path_allowed(
                    &attrs.path,
                    &[
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/openapi",
                        "/openapi/*",
                        "/healthz/*",
                        "/livez/*",
                        "/readyz/*",
                    ],
                )
            {
                return Decision::Allow;
            }
        }
        Decision::Deny(String::new())
    }
}

/// The Forbidden error for a denied request, worded as upstream words it.
pub fn forbidden(attrs: &Attributes, reason: &str) -> ApiError {
    let user = &attrs.user.name;
    let mut msg = if attrs.is_resource_request {
        let qualified = if attrs.api_group.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}.{}", attrs.resource, attrs.api_group)
        };
        let resource = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        let subject = if attrs.name.is_empty() {
            qualified
        } else {
            format!("{qualified} \"{}\"", attrs.name)
        };
        let scope = if attrs.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", attrs.namespace)
        };
        format!(
            "{subject} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
            attrs.verb, attrs.api_group
        )
    } else {
        format!(
            "forbidden: User \"{user}\" cannot {} path \"{}\"",
            attrs.verb, attrs.path
        )
    };
    if !reason.is_empty() {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    let msg = msg
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let details = if attrs.is_resource_request {
        let mut d = Map::new();
        if !attrs.name.is_empty() {
            d.insert("name".into(), json!(attrs.name));
        }
        if !attrs.api_group.is_empty() {
            d.insert("group".into(), json!(attrs.api_group));
        }
        d.insert("kind".into(), json!(attrs.resource));
        Some(Value::Object(d))
    } else {
        None
    };
    ApiError::forbidden(msg, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            user: UserInfo::authenticated(user, Vec::new()),
            verb: verb.into(),
            is_resource_request: true,
            namespace: ns.into(),
            api_group: group.into(),
            resource: resource.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn forbidden_text_matches_the_seed() {
        let a = attrs(
            "system:serviceaccount:default:job-robot",
            "create",
            "batch",
            "jobs",
            "default",
            "",
        );
        let e = forbidden(&a, "").to_status();
        assert_eq!(
            e["message"],
            "jobs.batch is forbidden: User \"system:serviceaccount:default:job-robot\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"default\""
        );
        assert_eq!(e["details"], json!({"group": "batch", "kind": "jobs"}));
    }

    #[test]
    fn forbidden_text_for_cluster_scope_and_named_core_objects() {
        let a = attrs(
            "system:serviceaccount:default:default",
            "list",
            "",
            "namespaces",
            "",
            "",
        );
        assert_eq!(
            forbidden(&a, "").message,
            "namespaces is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
        );
        let mut a = attrs("u", "get", "", "pods", "d", "web");
        a.subresource = "exec".into();
        assert_eq!(
            forbidden(&a, "").message,
            "pods \"web\" is forbidden: User \"u\" cannot get resource \"pods/exec\" in API group \"\" in the namespace \"d\""
        );
    }

    #[tokio::test]
    async fn masters_only_allows_masters_and_public_info() {
        let mut a = attrs("admin", "delete", "", "pods", "d", "x");
        a.user = UserInfo::authenticated("admin", vec![MASTERS.to_string()]);
        assert_eq!(MastersOnly.authorize(&a).await, Decision::Allow);
        let anon = Attributes {
            user: UserInfo::anonymous(),
            verb: "get".into(),
            path: "/readyz".into(),
            ..Default::default()
        };
        assert_eq!(MastersOnly.authorize(&anon).await, Decision::Allow);
        let anon_api = Attributes {
            path: "/api".into(),
            ..anon.clone()
        };
        assert!(matches!(
            MastersOnly.authorize(&anon_api).await,
            Decision::Deny(_)
        ));
        assert!(matches!(
            MastersOnly
                .authorize(&attrs("bob", "get", "", "pods", "d", "x"))
                .await,
            Decision::Deny(_)
        ));
    }
}
