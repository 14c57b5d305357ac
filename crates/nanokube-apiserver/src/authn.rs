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

/// Authenticates a request. An identity already attached (in-process clients) wins; then the
/// TLS client certificate; then anonymous.
pub fn authenticate<B>(req: &Request<B>) -> Result<UserInfo, AuthnError> {
    if let Some(user) = req.extensions().get::<UserInfo>() {
        return Ok(user.clone());
    }
    if let Some(tls) = req.extensions().get::<Arc<TlsInfo>>()
        && let Some(der) = tls.peer_certificates.first()
    {
        return user_from_certificate(der);
    }
    Ok(UserInfo::anonymous())
}
