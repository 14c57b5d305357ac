//! Authentication: who is asking. Client certificates verified by TLS give the user (CN) and
//! groups (O); no credentials give `system:anonymous`. In-process clients (controllers, the
//! node agent) arrive with a [`UserInfo`] already attached.

use axum_server::tls::TlsInfo;
use http::Request;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const ANONYMOUS: &str = "system:anonymous";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const MASTERS: &str = "system:masters";

/// The identity of a request (`user.Info`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..Default::default()
        }
    }

    /// An authenticated user; `system:authenticated` is added as upstream does.
    pub fn authenticated(
        name: impl Into<String>,
        groups: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut groups: Vec<String> = groups.into_iter().collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        UserInfo {
            name: name.into(),
            groups,
            ..Default::default()
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Why authentication failed; answered with 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthnError {
    #[error("client certificate could not be parsed")]
    BadCertificate,
    #[error("client certificate has no common name")]
    NoCommonName,
}

/// The identity carried by a verified client certificate (DER): CN is the user, each O a group.
pub fn user_from_certificate(der: &[u8]) -> Result<UserInfo, AuthnError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| AuthnError::BadCertificate)?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_string)
        .ok_or(AuthnError::NoCommonName)?;
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect::<Vec<_>>();
    Ok(UserInfo::authenticated(cn, groups))
}

/// The token authenticators, in upstream's order: the static token file, then service-account
/// JWTs.
#[derive(Default)]
pub struct TokenAuthenticators {
    pub static_tokens: Option<crate::serviceaccount::StaticTokens>,
    pub service_accounts: Option<std::sync::Arc<crate::serviceaccount::TokenIssuer>>,
}

/// Why a bearer token was refused; every variant is a 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejected {
    #[error("invalid bearer token")]
    Unknown,
    #[error("{0}")]
    Invalid(#[from] crate::serviceaccount::TokenError),
    #[error("{0}")]
    Stale(String),
    #[error("looking up the token's objects failed: {0}")]
    Lookup(String),
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token<B>(req: &Request<B>) -> Option<String> {
    let value = req
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
}

/// Reads a stored object (as JSON) by resource and name.
async fn lookup(
    store: &dyn nanokube_store::Store,
    res: &nanokube_registry::resource::ResourceInfo,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<serde_json::Value>, TokenRejected> {
    let kv = store
        .get(&res.storage_key(namespace, name))
        .await
        .map_err(|e| TokenRejected::Lookup(e.to_string()))?;
    match kv {
        None => Ok(None),
        Some(kv) => serde_json::from_slice(&kv.value)
            .map(Some)
            .map_err(|e| TokenRejected::Lookup(e.to_string())),
    }
}

fn uid_of(obj: &serde_json::Value) -> &str {
    obj.pointer("/metadata/uid")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// Whether an object is gone for token purposes: deleted more than a minute ago (upstream
/// keeps tokens of terminating objects valid for the pod's grace, up to 60 s of skew).
fn deleted_long_ago(obj: &serde_json::Value, now: chrono::DateTime<chrono::Utc>) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| now - t.with_timezone(&chrono::Utc) > chrono::Duration::seconds(60))
}

impl TokenAuthenticators {
    /// Authenticates a bearer token against the static tokens, then as a service-account JWT
    /// whose service account (and bound pod or secret) still exist with the same UID.
    pub async fn authenticate(
        &self,
        store: &dyn nanokube_store::Store,
        token: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<UserInfo, TokenRejected> {
        use nanokube_registry::resource::{NODES, PODS, SECRETS, SERVICE_ACCOUNTS};
        if let Some(user) = self
            .static_tokens
            .as_ref()
            .and_then(|t| t.authenticate(token))
        {
            return Ok(user);
        }
        let Some(issuer) = &self.service_accounts else {
            return Err(TokenRejected::Unknown);
        };
        let verified = match issuer.verify(token, now) {
            Ok(v) => v,
            Err(e) if e.is_foreign() => return Err(TokenRejected::Unknown),
            Err(e) => return Err(e.into()),
        };
        let ns = verified.namespace.as_str();
        let sa = lookup(
            store,
            &SERVICE_ACCOUNTS,
            Some(ns),
            &verified.service_account,
        )
        .await?;
        let sa = match sa {
            Some(sa) if !deleted_long_ago(&sa, now) => sa,
            _ => {
                return Err(TokenRejected::Stale(format!(
                    "service account {ns}/{} has been deleted",
                    verified.service_account
                )));
            }
        };
        if !verified.service_account_uid.is_empty() && uid_of(&sa) != verified.service_account_uid {
            return Err(TokenRejected::Stale(format!(
                "service account UID ({}) does not match claim ({})",
                uid_of(&sa),
                verified.service_account_uid
            )));
        }
        if let Some((pod, pod_uid)) = &verified.pod {
            match lookup(store, &PODS, Some(ns), pod).await? {
                Some(p) if uid_of(&p) == pod_uid && !deleted_long_ago(&p, now) => {}
                _ => {
                    return Err(TokenRejected::Stale(format!(
                        "pod {ns}/{pod} has been deleted"
                    )));
                }
            }
        }
        if let Some((secret, secret_uid)) = &verified.secret {
            let s = lookup(store, &SECRETS, Some(ns), secret).await?;
            let Some(s) = s.filter(|s| !deleted_long_ago(s, now)) else {
                return Err(TokenRejected::Stale(format!(
                    "secret {ns}/{secret} has been deleted"
                )));
            };
            if !secret_uid.is_empty() && uid_of(&s) != secret_uid {
                return Err(TokenRejected::Stale(format!(
                    "secret {ns}/{secret} has been deleted"
                )));
            }
            if verified.legacy {
                // A legacy token is only good while its Secret still holds exactly it.
                use base64::Engine;
                let stored = s
                    .pointer("/data/token")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .unwrap_or_default();
                if !constant_time_eq(&stored, token.as_bytes()) {
                    return Err(TokenRejected::Stale(
                        "token does not match its secret".into(),
                    ));
                }
            }
        }
        if let Some((node, node_uid)) = &verified.node
            && verified.pod.is_none()
        {
            match lookup(store, &NODES, None, node).await? {
                Some(n) if node_uid.is_empty() || uid_of(&n) == node_uid => {}
                _ => {
                    return Err(TokenRejected::Stale(format!(
                        "node {node} has been deleted"
                    )));
                }
            }
        }
        Ok(verified.user())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials a request carries, taken off it before any await.
pub enum Credentials {
    /// An identity attached in-process (controllers, the node agent, bootstrap).
    InProcess(UserInfo),
    /// A verified TLS client certificate (DER).
    Certificate(Vec<u8>),
    Bearer(String),
    None,
}

/// Reads the credentials of a request, in upstream's union-authenticator order: in-process
/// identity, TLS client certificate, bearer token.
pub fn credentials<B>(req: &Request<B>) -> Credentials {
    if let Some(user) = req.extensions().get::<UserInfo>() {
        return Credentials::InProcess(user.clone());
    }
    if let Some(tls) = req.extensions().get::<Arc<TlsInfo>>()
        && let Some(der) = tls.peer_certificates.first()
    {
        return Credentials::Certificate(der.clone());
    }
    match bearer_token(req) {
        Some(t) => Credentials::Bearer(t),
        None => Credentials::None,
    }
}

/// Authenticates credentials; with none, the request is anonymous. A credential that is
/// present but bad is a 401, never anonymous.
pub async fn authenticate_credentials(
    creds: Credentials,
    tokens: &TokenAuthenticators,
    store: &dyn nanokube_store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<UserInfo, String> {
    match creds {
        Credentials::InProcess(user) => Ok(user),
        Credentials::Certificate(der) => user_from_certificate(&der).map_err(|e| e.to_string()),
        Credentials::Bearer(token) => tokens
            .authenticate(store, &token, now)
            .await
            .map_err(|e| e.to_string()),
        Credentials::None => Ok(UserInfo::anonymous()),
    }
}

/// `Impersonate-*` headers of a request (`kubectl --as`, `--as-group`, `--as-uid`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Impersonation {
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub uid: Option<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Impersonation {
    /// Reads the headers; `None` when the request impersonates nobody.
    pub fn from_headers(headers: &http::HeaderMap) -> Option<Impersonation> {
        let mut imp = Impersonation::default();
        let mut any = false;
        for (name, value) in headers {
            let Ok(v) = value.to_str() else { continue };
            let n = name.as_str();
            if n == "impersonate-user" {
                imp.user = Some(v.to_string());
                any = true;
            } else if n == "impersonate-group" {
                imp.groups.push(v.to_string());
                any = true;
            } else if n == "impersonate-uid" {
                imp.uid = Some(v.to_string());
                any = true;
            } else if let Some(key) = n.strip_prefix("impersonate-extra-") {
                let key = crate::request_info::percent_decode(key);
                imp.extra.entry(key).or_default().push(v.to_string());
                any = true;
            }
        }
        any.then_some(imp)
    }

    /// The user the request continues as, as upstream's impersonation filter builds it: a
    /// service-account name gets its service-account groups when no groups are given, and
    /// every impersonated user but `system:anonymous` is in `system:authenticated`.
    pub fn user(&self) -> UserInfo {
        let name = self.user.clone().unwrap_or_default();
        let mut groups = self.groups.clone();
        if groups.is_empty()
            && let Some(rest) = name.strip_prefix("system:serviceaccount:")
            && let Some((ns, _)) = rest.split_once(':')
        {
            groups = vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
        if name == ANONYMOUS {
            if !groups.iter().any(|g| g == UNAUTHENTICATED) {
                groups.push(UNAUTHENTICATED.into());
            }
        } else if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        UserInfo {
            name,
            uid: self.uid.clone().unwrap_or_default(),
            groups,
            extra: self.extra.clone(),
        }
    }

    /// What the requester must be allowed to `impersonate`, as (group, resource, namespace,
    /// name) tuples in the order upstream checks them.
    pub fn checks(&self) -> Vec<(&'static str, String, String, String)> {
        let mut out = Vec::new();
        if let Some(u) = &self.user {
            match u
                .strip_prefix("system:serviceaccount:")
                .and_then(|r| r.split_once(':'))
            {
                Some((ns, sa)) => out.push((
                    "",
                    "serviceaccounts".to_string(),
                    ns.to_string(),
                    sa.to_string(),
                )),
                None => out.push(("", "users".to_string(), String::new(), u.clone())),
            }
        }
        for g in &self.groups {
            out.push(("", "groups".to_string(), String::new(), g.clone()));
        }
        for (k, vals) in &self.extra {
            for v in vals {
                out.push((
                    "authentication.k8s.io",
                    format!("userextras/{k}"),
                    String::new(),
                    v.clone(),
                ));
            }
        }
        if let Some(uid) = &self.uid {
            out.push((
                "authentication.k8s.io",
                "uids".to_string(),
                String::new(),
                uid.clone(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod impersonation_tests {
    use super::*;

    #[test]
    fn impersonating_a_service_account_adds_its_groups() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "impersonate-user",
            http::HeaderValue::from_static("system:serviceaccount:default:job-robot"),
        );
        let imp = Impersonation::from_headers(&h).expect("impersonation");
        let u = imp.user();
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ]
        );
        assert_eq!(
            imp.checks(),
            vec![(
                "",
                "serviceaccounts".to_string(),
                "default".to_string(),
                "job-robot".to_string()
            )]
        );
    }

    #[test]
    fn explicit_groups_and_no_headers() {
        assert!(Impersonation::from_headers(&http::HeaderMap::new()).is_none());
        let mut h = http::HeaderMap::new();
        h.insert("impersonate-user", http::HeaderValue::from_static("bob"));
        h.append("impersonate-group", http::HeaderValue::from_static("devs"));
        let imp = Impersonation::from_headers(&h).expect("impersonation");
        assert_eq!(imp.user().groups, ["devs", "system:authenticated"]);
        assert_eq!(imp.checks().len(), 2);
    }
}
