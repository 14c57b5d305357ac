//! Service-account JWTs: issuing bound tokens (TokenRequest, projected volumes) and legacy
//! Secret-based tokens, and verifying both (upstream `pkg/serviceaccount`: `claims.go`,
//! `legacy.go`, `jwt.go`).
//!
//! Tokens are ES256 JWS compact serializations signed with the cluster's service-account key.
//! Header and payload are laid out byte for byte as upstream's go-jose writes them (keys sorted,
//! header `{"alg","kid"}` only), so a decoded token looks exactly like a real cluster's.
//!
//! [`TokenIssuer::verify`] checks what can be checked from the token alone: signature, issuer,
//! audience, and time. Whether the service account and the bound object still exist with the
//! claimed UID (and, for legacy tokens, whether the Secret still holds this exact token) is the
//! caller's lookup, on the returned [`VerifiedToken`].

use crate::authn::UserInfo;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use nanokube_registry::field::{ErrorList, FieldError};
use nanokube_registry::validation::{get, get_i64, is_dns1123_label, is_dns1123_subdomain};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// `--service-account-issuer`'s usual value (kubeadm, kind).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The `iss` of Secret-based tokens (`serviceaccount.LegacyIssuer`).
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// `TokenRequest.spec.expirationSeconds` when the request leaves it out.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// `validation.MinTokenAgeSec`.
pub const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;
/// Upper bound of `expirationSeconds` (`1<<32`).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// What the kubelet requests for projected tokens; the trigger of the expiration extension
/// (`WarnOnlyBoundTokenExpirationSeconds`).
pub const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// How long an extended projected token really lives (`ExpirationExtensionSeconds`).
pub const EXPIRATION_EXTENSION_SECONDS: i64 = 24 * 365 * 60 * 60;
/// go-jose's `jwt.DefaultLeeway`, which upstream's validator applies to `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW_LEEWAY_SECONDS: i64 = 60;

pub const USERNAME_PREFIX: &str = "system:serviceaccount:";
pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// Why a token could not be issued or was not accepted. Messages are upstream's where upstream
/// has one, since they end up in logs and 401 bodies.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("invalid service account key: {0}")]
    InvalidKey(String),
    #[error("service account public key does not match the signing key")]
    KeyMismatch,
    #[error("failed to generate token: {0}")]
    Signing(String),
    #[error("token expiration of {0} seconds is out of range")]
    ExpirationOutOfRange(i64),
    /// Not a JWT at all (upstream answers "not mine" and lets the next authenticator try).
    #[error("malformed service account token: {0}")]
    Malformed(&'static str),
    /// A JWT from some other issuer (also "not mine" upstream).
    #[error("token issuer {0:?} is invalid")]
    WrongIssuer(String),
    #[error("unsupported token signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("invalid signature, no keys found")]
    UnknownKeyId,
    #[error("invalid signature")]
    InvalidSignature,
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("service account token is issued in the future")]
    IssuedInTheFuture,
    #[error(
        "token audiences {} is invalid for the target audiences {}",
        go_quote_list(token),
        go_quote_list(target)
    )]
    WrongAudience {
        token: Vec<String>,
        target: Vec<String>,
    },
    /// A required claim is absent, e.g. `namespace claim is missing`.
    #[error("{0} claim is missing")]
    MissingClaim(&'static str),
    #[error("sub claim is invalid")]
    InvalidSubject,
}

impl TokenError {
    /// Whether the token is simply not a service-account token (not a JWT, or another issuer's),
    /// so a union authenticator should try its other token authenticators rather than fail.
    pub fn is_foreign(&self) -> bool {
        matches!(self, TokenError::Malformed(_) | TokenError::WrongIssuer(_))
    }
}

use nanokube_registry::goformat::go_quote_list;

/// The kinds a token can be bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundKind {
    Pod,
    Secret,
    Node,
}

impl BoundKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BoundKind::Pod => "Pod",
            BoundKind::Secret => "Secret",
            BoundKind::Node => "Node",
        }
    }
}

/// What a bound token is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundObject {
    pub kind: BoundKind,
    pub name: String,
    pub uid: String,
}

/// Everything a bound token says, already resolved by the TokenRequest handler (the service
/// account and bound object looked up, audiences and expiration defaulted and capped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestSpec {
    pub namespace: String,
    pub service_account: String,
    pub service_account_uid: String,
    /// Empty means the issuer's API audiences.
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    pub bound: Option<BoundObject>,
    /// A Pod binding also carries the pod's node `(name, uid)`; the uid may be empty when the
    /// node is gone. Ignored for other bindings.
    pub node: Option<(String, String)>,
}

/// Signs and verifies service-account tokens with the cluster's ECDSA P-256 key.
pub struct TokenIssuer {
    issuer: String,
    api_audiences: Vec<String>,
    key_id: String,
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("api_audiences", &self.api_audiences)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The JWS header exactly as go-jose writes it for a keyed signer: no `typ`.
#[derive(Serialize)]
struct SignedHeader<'a> {
    alg: &'a str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct ParsedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The claims of a bound token, fields in the order go-jose emits them (it re-encodes through
/// a map, so keys come out sorted).
#[derive(Serialize, Deserialize, Default)]
struct BoundClaims {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "audience"
    )]
    aud: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    exp: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    iat: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(rename = "kubernetes.io", default)]
    kubernetes: PrivateClaims,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sub: String,
}

/// `kubernetes.io` of a bound token (upstream `privateClaims.Kubernetes`).
#[derive(Serialize, Deserialize, Default)]
struct PrivateClaims {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<Ref>,
    /// Not `omitempty`-able upstream (a struct), so always present.
    #[serde(default)]
    serviceaccount: Ref,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    warnafter: Option<i64>,
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct Ref {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    uid: String,
}

impl Ref {
    fn pair(self) -> (String, String) {
        (self.name, self.uid)
    }
}

/// The claims of a legacy Secret-based token (upstream `legacyPrivateClaims` plus `iss`/`sub`;
/// the private claims have no `omitempty`).
#[derive(Serialize, Deserialize, Default)]
struct LegacyClaims {
    #[serde(default)]
    iss: String,
    #[serde(rename = "kubernetes.io/serviceaccount/namespace", default)]
    namespace: String,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name", default)]
    secret_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name", default)]
    service_account_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid", default)]
    service_account_uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sub: String,
}

/// Just the issuer, read before the signature is checked to pick the validator (upstream
/// `hasCorrectIssuer`); never trusted beyond that.
#[derive(Deserialize)]
struct IssuerOnly {
    #[serde(default)]
    iss: Option<Value>,
}

/// go-jose's `Audience`: a single string or a list of strings.
fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => Vec::new(),
        Some(Aud::One(s)) => vec![s],
        Some(Aud::Many(v)) => v,
    })
}

/// go-jose's `NumericDate`: any JSON number, truncated to whole seconds.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = Option::<serde_json::Number>::deserialize(d)?;
    Ok(n.and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))))
}

impl TokenIssuer {
    /// `issuer` = `--service-account-issuer`, `api_audiences` = `--api-audiences` (upstream
    /// defaults it to the issuer; pass `vec![issuer]` for that). The key must be a P-256 key in
    /// PKCS#8 PEM and `sa_pub_pem` its SubjectPublicKeyInfo PEM.
    pub fn new(
        sa_key_pem: &str,
        sa_pub_pem: &str,
        issuer: String,
        api_audiences: Vec<String>,
    ) -> Result<Self, TokenError> {
        let private_der = match rustls_pemfile::read_one_from_slice(sa_key_pem.as_bytes()) {
            Ok(Some((rustls_pemfile::Item::Pkcs8Key(key), _))) => key.secret_pkcs8_der().to_vec(),
            _ => {
                return Err(TokenError::InvalidKey(
                    "expected a PKCS#8 \"PRIVATE KEY\" PEM block".into(),
                ));
            }
        };
        let spki_der = match rustls_pemfile::read_one_from_slice(sa_pub_pem.as_bytes()) {
            Ok(Some((rustls_pemfile::Item::SubjectPublicKeyInfo(spki), _))) => spki.to_vec(),
            _ => {
                return Err(TokenError::InvalidKey(
                    "expected a \"PUBLIC KEY\" PEM block".into(),
                ));
            }
        };

        let (_, x, y) =
            (DEFAULT_PROVIDER
                .key_utils
                .ec_pub_components_from_private_key)(&private_der, Algorithm::ES256)
            .map_err(|_| TokenError::InvalidKey("not an ECDSA P-256 private key".into()))?;
        let mut point = Vec::with_capacity(65);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);

        let (_, spki) = SubjectPublicKeyInfo::from_der(&spki_der)
            .map_err(|_| TokenError::InvalidKey("unparsable public key".into()))?;
        if spki.subject_public_key.data.as_ref() != point.as_slice() {
            return Err(TokenError::KeyMismatch);
        }

        Ok(TokenIssuer {
            issuer,
            api_audiences,
            key_id: key_id_for_p256_point(&point)?,
            encoding_key: EncodingKey::from_ec_der(&private_der),
            decoding_key: DecodingKey::from_ec_der(&point),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The `kid` header of every token signed here (and of the key in the OIDC JWKS document).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A bound token as TokenRequest issues it (upstream `serviceaccount.Claims`). Returns the
    /// token and its expiry, which is what `status.expirationTimestamp` reports.
    pub fn issue(
        &self,
        spec: &TokenRequestSpec,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        self.issue_with_extension(spec, false, now)
    }

    /// [`Self::issue`] with `--service-account-extend-token-expiration`: a pod-bound request of
    /// exactly 3607 s for API-server audiences (what the kubelet asks for projected volumes)
    /// gets a token valid for a year whose `warnafter` is the requested expiry, so stale
    /// tokens can be spotted before they would fail. The returned expiry stays the requested
    /// one, as upstream's `status.expirationTimestamp` does.
    pub fn issue_with_extension(
        &self,
        spec: &TokenRequestSpec,
        extend_expiration: bool,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        let audiences = if spec.audiences.is_empty() {
            self.api_audiences.clone()
        } else {
            spec.audiences.clone()
        };
        let requested = spec.expiration_seconds;
        let pod_bound = matches!(&spec.bound, Some(b) if b.kind == BoundKind::Pod);
        let kube_audiences = audiences.iter().all(|a| self.api_audiences.contains(a));
        let (exp_seconds, warn_after) = if extend_expiration
            && pod_bound
            && requested == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
            && kube_audiences
        {
            (EXPIRATION_EXTENSION_SECONDS, Some(requested))
        } else {
            (requested, None)
        };

        // NumericDate is whole seconds; go-jose truncates `now` the same way.
        let iat = now.timestamp();
        let exp = iat
            .checked_add(exp_seconds)
            .ok_or(TokenError::ExpirationOutOfRange(exp_seconds))?;
        let status_expiry = iat
            .checked_add(requested)
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or(TokenError::ExpirationOutOfRange(requested))?;
        let warnafter = match warn_after {
            Some(w) => Some(
                iat.checked_add(w)
                    .ok_or(TokenError::ExpirationOutOfRange(w))?,
            ),
            None => None,
        };

        let bound_ref = |b: &BoundObject| Ref {
            name: b.name.clone(),
            uid: b.uid.clone(),
        };
        let mut private = PrivateClaims {
            namespace: spec.namespace.clone(),
            serviceaccount: Ref {
                name: spec.service_account.clone(),
                uid: spec.service_account_uid.clone(),
            },
            warnafter,
            ..Default::default()
        };
        match &spec.bound {
            Some(b) if b.kind == BoundKind::Pod => {
                private.pod = Some(bound_ref(b));
                private.node = spec.node.as_ref().map(|(name, uid)| Ref {
                    name: name.clone(),
                    uid: uid.clone(),
                });
            }
            Some(b) if b.kind == BoundKind::Secret => private.secret = Some(bound_ref(b)),
            Some(b) => private.node = Some(bound_ref(b)),
            None => {}
        }

        let claims = BoundClaims {
            aud: audiences,
            exp: Some(exp),
            iat: Some(iat),
            iss: self.issuer.clone(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            kubernetes: private,
            nbf: Some(iat),
            sub: make_username(&spec.namespace, &spec.service_account),
        };
        Ok((self.sign(&claims)?, status_expiry))
    }

    /// A legacy Secret-based token, as the token controller writes into `data.token` of a
    /// `kubernetes.io/service-account-token` Secret (upstream `LegacyClaims`): no expiry.
    pub fn issue_legacy(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        secret_name: &str,
    ) -> Result<String, TokenError> {
        self.sign(&LegacyClaims {
            iss: LEGACY_ISSUER.into(),
            namespace: namespace.into(),
            secret_name: secret_name.into(),
            service_account_name: sa_name.into(),
            service_account_uid: sa_uid.into(),
            sub: make_username(namespace, sa_name),
        })
    }

    fn sign<C: Serialize>(&self, claims: &C) -> Result<String, TokenError> {
        let header = serde_json::to_vec(&SignedHeader {
            alg: "ES256",
            kid: &self.key_id,
        })
        .map_err(|e| TokenError::Signing(e.to_string()))?;
        let payload = serde_json::to_vec(claims).map_err(|e| TokenError::Signing(e.to_string()))?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signer = (DEFAULT_PROVIDER.signer_factory)(&Algorithm::ES256, &self.encoding_key)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        let signature = signer
            .try_sign(token.as_bytes())
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }

    /// Verifies a bearer token the way upstream's service-account authenticators do: the issuer
    /// picks the validator (ours → bound, `kubernetes/serviceaccount` → legacy), the signature
    /// must be ES256 by our key, at least one audience must be an API audience (legacy tokens
    /// have none and count as the API audiences), and bound tokens must be within
    /// `nbf`/`exp`/`iat` give or take go-jose's one-minute leeway.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedToken, TokenError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not a JWS compact serialization"));
        };
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
        let issuer = serde_json::from_slice::<IssuerOnly>(&payload)
            .map_err(|_| TokenError::Malformed("payload is not a JSON object"))?
            .iss;
        let legacy = match issuer.as_ref().and_then(Value::as_str) {
            Some(iss) if iss == self.issuer => false,
            Some(LEGACY_ISSUER) => true,
            Some(other) => return Err(TokenError::WrongIssuer(other.to_string())),
            None => return Err(TokenError::WrongIssuer(String::new())),
        };

        let header: ParsedHeader = URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(TokenError::Malformed("header is not base64url JSON"))?;
        if header.alg != "ES256" {
            return Err(TokenError::UnsupportedAlgorithm(header.alg));
        }
        // Upstream picks the verification keys by `kid`; a `kid` naming no key of ours fails.
        if header.kid.as_deref().is_some_and(|kid| kid != self.key_id) {
            return Err(TokenError::UnknownKeyId);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TokenError::InvalidSignature)?;
        let verifier = (DEFAULT_PROVIDER.verifier_factory)(&Algorithm::ES256, &self.decoding_key)
            .map_err(|_| TokenError::InvalidSignature)?;
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        verifier
            .verify(&token.as_bytes()[..signed_len], &signature)
            .map_err(|_| TokenError::InvalidSignature)?;

        if legacy {
            let claims: LegacyClaims = serde_json::from_slice(&payload)
                .map_err(|_| TokenError::Malformed("claims have the wrong types"))?;
            self.check_audiences(&[])?;
            verified_legacy(claims, self.api_audiences.clone())
        } else {
            let claims: BoundClaims = serde_json::from_slice(&payload)
                .map_err(|_| TokenError::Malformed("claims have the wrong types"))?;
            let audiences = self.check_audiences(&claims.aud)?;
            check_times(&claims, now)?;
            verified_bound(claims, audiences)
        }
    }

    /// The token's audiences that the API server answers to (`Audiences.Intersect`); tokens
    /// without `aud` are taken to be for the API server.
    fn check_audiences(&self, token_audiences: &[String]) -> Result<Vec<String>, TokenError> {
        let token_audiences = if token_audiences.is_empty() {
            &self.api_audiences[..]
        } else {
            token_audiences
        };
        let common: Vec<String> = token_audiences
            .iter()
            .filter(|a| self.api_audiences.contains(a))
            .cloned()
            .collect();
        if common.is_empty() && !self.api_audiences.is_empty() {
            return Err(TokenError::WrongAudience {
                token: token_audiences.to_vec(),
                target: self.api_audiences.clone(),
            });
        }
        Ok(common)
    }
}

/// The `kid` upstream derives from a public key (`keyIDFromPublicKey`): unpadded base64url of
/// the SHA-256 of its PKIX DER encoding, which for P-256 is a fixed prefix and the point.
fn key_id_for_p256_point(point: &[u8]) -> Result<String, TokenError> {
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (65 bytes) }
    const SPKI_P256_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let mut der = SPKI_P256_PREFIX.to_vec();
    der.extend_from_slice(point);
    let digest = (DEFAULT_PROVIDER.key_utils.compute_digest)(&der, ThumbprintHash::SHA256)
        .map_err(|e| TokenError::InvalidKey(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(digest))
}

/// go-jose `Claims.ValidateWithLeeway(…, DefaultLeeway)`, as upstream's bound validator calls
/// it: every time claim is optional, each is checked with one minute of slack.
fn check_times(claims: &BoundClaims, now: DateTime<Utc>) -> Result<(), TokenError> {
    let leeway = TimeDelta::seconds(CLOCK_SKEW_LEEWAY_SECONDS);
    let at = |secs: i64| DateTime::from_timestamp(secs, 0);
    if let Some(nbf) = claims.nbf.and_then(at)
        && now + leeway < nbf
    {
        return Err(TokenError::NotYetValid);
    }
    if let Some(exp) = claims.exp.and_then(at)
        && now - leeway > exp
    {
        return Err(TokenError::Expired);
    }
    if let Some(iat) = claims.iat.and_then(at)
        && now + leeway < iat
    {
        return Err(TokenError::IssuedInTheFuture);
    }
    Ok(())
}

fn verified_bound(
    claims: BoundClaims,
    audiences: Vec<String>,
) -> Result<VerifiedToken, TokenError> {
    let k = claims.kubernetes;
    // Upstream looks the service account up by these; an empty one can never be found.
    if k.namespace.is_empty() {
        return Err(TokenError::MissingClaim("namespace"));
    }
    if k.serviceaccount.name.is_empty() {
        return Err(TokenError::MissingClaim("serviceaccount"));
    }
    Ok(VerifiedToken {
        namespace: k.namespace,
        service_account: k.serviceaccount.name,
        service_account_uid: k.serviceaccount.uid,
        pod: k.pod.map(Ref::pair),
        secret: k.secret.map(Ref::pair),
        node: k.node.map(Ref::pair),
        credential_id: claims.jti.filter(|j| !j.is_empty()),
        legacy: false,
        audiences,
        expires: claims.exp.and_then(|e| DateTime::from_timestamp(e, 0)),
        warn_after: k.warnafter.and_then(|w| DateTime::from_timestamp(w, 0)),
    })
}

/// Upstream `legacyValidator.Validate`, minus the lookups.
fn verified_legacy(
    claims: LegacyClaims,
    audiences: Vec<String>,
) -> Result<VerifiedToken, TokenError> {
    if claims.sub.is_empty() {
        return Err(TokenError::MissingClaim("sub"));
    }
    if claims.namespace.is_empty() {
        return Err(TokenError::MissingClaim("namespace"));
    }
    if claims.secret_name.is_empty() {
        return Err(TokenError::MissingClaim("secretName"));
    }
    if claims.service_account_name.is_empty() {
        return Err(TokenError::MissingClaim("serviceAccountName"));
    }
    if claims.service_account_uid.is_empty() {
        return Err(TokenError::MissingClaim("serviceAccountUID"));
    }
    match split_username(&claims.sub) {
        Some((ns, name)) if ns == claims.namespace && name == claims.service_account_name => {}
        _ => return Err(TokenError::InvalidSubject),
    }
    Ok(VerifiedToken {
        namespace: claims.namespace,
        service_account: claims.service_account_name,
        service_account_uid: claims.service_account_uid,
        pod: None,
        secret: Some((claims.secret_name, String::new())),
        node: None,
        credential_id: None,
        legacy: true,
        audiences,
        expires: None,
        warn_after: None,
    })
}

/// What a verified token proves. The caller still has to check, as upstream's validators do,
/// that the service account (and the bound pod / secret / node) exists with the claimed UID
/// and is not being deleted (with the same one-minute leeway); for a legacy token, that the
/// Secret exists, is not being deleted, holds exactly this token (compare in constant time),
/// is not labelled `kubernetes.io/legacy-token-invalid-since`, and that the service account
/// exists with the claimed UID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub namespace: String,
    pub service_account: String,
    pub service_account_uid: String,
    /// `(name, uid)` of the bound pod.
    pub pod: Option<(String, String)>,
    /// `(name, uid)` of the bound secret; for a legacy token the token's own Secret, uid empty.
    pub secret: Option<(String, String)>,
    /// `(name, uid)` of the node: the bound node, or the node of the bound pod (uid may be
    /// empty then).
    pub node: Option<(String, String)>,
    /// The `jti` claim.
    pub credential_id: Option<String>,
    pub legacy: bool,
    /// The token's audiences the API server answers to (upstream `Response.Audiences`).
    pub audiences: Vec<String>,
    pub expires: Option<DateTime<Utc>>,
    /// `kubernetes.io.warnafter` of an extended projected token: past it, upstream records the
    /// token as stale (audit annotation `authentication.k8s.io/stale-token`).
    pub warn_after: Option<DateTime<Utc>>,
}

impl VerifiedToken {
    /// The user (upstream `ServiceAccountInfo.UserInfo` plus `system:authenticated`).
    pub fn user(&self) -> UserInfo {
        let mut user = UserInfo::authenticated(
            make_username(&self.namespace, &self.service_account),
            make_group_names(&self.namespace),
        );
        user.uid = self.service_account_uid.clone();
        let mut extra = BTreeMap::new();
        if let Some((name, uid)) = &self.pod
            && !name.is_empty()
            && !uid.is_empty()
        {
            extra.insert(POD_NAME_KEY.to_string(), vec![name.clone()]);
            extra.insert(POD_UID_KEY.to_string(), vec![uid.clone()]);
        }
        if let Some(jti) = &self.credential_id {
            extra.insert(CREDENTIAL_ID_KEY.to_string(), vec![format!("JTI={jti}")]);
        }
        if let Some((name, uid)) = &self.node
            && !name.is_empty()
        {
            extra.insert(NODE_NAME_KEY.to_string(), vec![name.clone()]);
            // The node UID is optional and only meaningful with the name.
            if !uid.is_empty() {
                extra.insert(NODE_UID_KEY.to_string(), vec![uid.clone()]);
            }
        }
        user.extra = extra;
        user
    }
}

/// `system:serviceaccount:<ns>:<name>` (upstream `MakeUsername`).
pub fn make_username(namespace: &str, name: &str) -> String {
    format!("{USERNAME_PREFIX}{namespace}:{name}")
}

/// The groups every service account of a namespace is in (upstream `MakeGroupNames`).
pub fn make_group_names(namespace: &str) -> Vec<String> {
    vec![
        ALL_SERVICE_ACCOUNTS_GROUP.to_string(),
        format!("{ALL_SERVICE_ACCOUNTS_GROUP}:{namespace}"),
    ]
}

/// The namespace and name of a service-account username, if it is one with valid names
/// (upstream `SplitUsername`).
pub fn split_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(USERNAME_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    if name.contains(':')
        || !is_dns1123_label(namespace).is_empty()
        || !is_dns1123_subdomain(name).is_empty()
    {
        return None;
    }
    Some((namespace, name))
}

/// `ValidateTokenRequest` (pkg/apis/authentication/validation) on a TokenRequest's `spec`,
/// after defaulting: an absent `expirationSeconds` is the default 3600 and valid. Field paths
/// start at `spec`. The bound object reference is not field-validated upstream; see
/// [`bound_object_ref`].
pub fn validate_token_request(spec: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = "spec.expirationSeconds";
    let seconds = match get(spec, &["expirationSeconds"]) {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        // Anything but an integer is a decoding error upstream, reported before validation.
        Some(_) => match get_i64(spec, &["expirationSeconds"]) {
            Some(s) => s,
            None => return errs,
        },
    };
    if seconds < MIN_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            path,
            &Value::from(seconds),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > MAX_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            path,
            &Value::from(seconds),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    errs
}

/// A TokenRequest's `spec.boundObjectRef`, as the TokenRequest handler reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundObjectRef {
    pub kind: BoundKind,
    pub name: String,
    /// Empty when the request names no UID; otherwise it must match the object's.
    pub uid: String,
}

/// Why a `boundObjectRef` cannot be honoured; both are `400 BadRequest` upstream, raised by the
/// TokenRequest REST handler rather than by validation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BoundObjectRefError {
    /// `schema.GroupVersionKind.String()` of the reference, e.g. `/v1, Kind=ConfigMap`.
    #[error("cannot bind token to object of type {0}")]
    UnsupportedKind(String),
    /// What the generic store answers to a `get` with an empty name.
    #[error("Name parameter required.")]
    MissingName,
}

/// Reads `spec.boundObjectRef` the way upstream's `TokenREST.Create` does: only the core group
/// counts (any version), kinds `Pod`, `Secret` and `Node`.
pub fn bound_object_ref(spec: &Value) -> Result<Option<BoundObjectRef>, BoundObjectRefError> {
    let Some(r) = get(spec, &["boundObjectRef"]).filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    // schema.ParseGroupVersion: "v1" is the core group; "a/b" is group a; more slashes are
    // unparsable and leave group and version empty.
    let (group, version) = match api_version.split('/').collect::<Vec<_>>()[..] {
        [v] => ("", v),
        [g, v] => (g, v),
        _ => ("", ""),
    };
    let kind = match (group, kind) {
        ("", "Pod") => BoundKind::Pod,
        ("", "Secret") => BoundKind::Secret,
        ("", "Node") => BoundKind::Node,
        _ => {
            return Err(BoundObjectRefError::UnsupportedKind(format!(
                "{group}/{version}, Kind={kind}"
            )));
        }
    };
    let name = field("name");
    if name.is_empty() {
        return Err(BoundObjectRefError::MissingName);
    }
    Ok(Some(BoundObjectRef {
        kind,
        name: name.to_string(),
        uid: field("uid").to_string(),
    }))
}

#[cfg(test)]
// In tests a panic is the failure report.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256};
    use serde_json::json;

    const SA_UID: &str = "0f1e2d3c-0000-4000-8000-000000000001";
    const POD_UID: &str = "0f1e2d3c-0000-4000-8000-000000000002";
    const NODE_UID: &str = "0f1e2d3c-0000-4000-8000-000000000003";

    fn key_pems() -> (String, String) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        (key.serialize_pem(), key.public_key_pem())
    }

    fn issuer() -> TokenIssuer {
        let (key, public) = key_pems();
        TokenIssuer::new(
            &key,
            &public,
            DEFAULT_ISSUER.into(),
            vec![DEFAULT_ISSUER.into()],
        )
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-01T12:00:00.750Z")
            .unwrap()
            .to_utc()
    }

    fn spec(bound: Option<BoundObject>) -> TokenRequestSpec {
        TokenRequestSpec {
            namespace: "default".into(),
            service_account: "builder".into(),
            service_account_uid: SA_UID.into(),
            audiences: vec![],
            expiration_seconds: 3600,
            bound,
            node: None,
        }
    }

    fn pod_spec() -> TokenRequestSpec {
        TokenRequestSpec {
            node: Some(("node-1".into(), NODE_UID.into())),
            ..spec(Some(BoundObject {
                kind: BoundKind::Pod,
                name: "web-0".into(),
                uid: POD_UID.into(),
            }))
        }
    }

    fn decode_part(token: &str, i: usize) -> Value {
        let part = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    /// Replaces the payload of a signed token, keeping header and signature.
    fn with_payload(token: &str, payload: &Value) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap());
        format!("{}.{payload}.{}", parts[0], parts[2])
    }

    #[test]
    fn issued_token_has_upstreams_header_and_claims_and_verifies() {
        let issuer = issuer();
        let (token, expiry) = issuer.issue(&pod_spec(), now()).unwrap();
        let iat = now().timestamp();
        assert_eq!(expiry, DateTime::from_timestamp(iat + 3600, 0).unwrap());

        let header = decode_part(&token, 0);
        assert_eq!(header, json!({"alg": "ES256", "kid": issuer.key_id()}));
        assert_eq!(keys(&header), ["alg", "kid"]);

        let claims = decode_part(&token, 1);
        // go-jose emits the claims with sorted keys, nested objects included.
        assert_eq!(
            keys(&claims),
            [
                "aud",
                "exp",
                "iat",
                "iss",
                "jti",
                "kubernetes.io",
                "nbf",
                "sub"
            ]
        );
        assert_eq!(
            keys(&claims["kubernetes.io"]),
            ["namespace", "node", "pod", "serviceaccount"]
        );
        let jti = claims["jti"].as_str().unwrap().to_string();
        assert_eq!(uuid::Uuid::parse_str(&jti).unwrap().get_version_num(), 4);
        assert_eq!(
            claims,
            json!({
                "aud": [DEFAULT_ISSUER],
                "exp": iat + 3600,
                "iat": iat,
                "iss": DEFAULT_ISSUER,
                "jti": jti,
                "kubernetes.io": {
                    "namespace": "default",
                    "node": {"name": "node-1", "uid": NODE_UID},
                    "pod": {"name": "web-0", "uid": POD_UID},
                    "serviceaccount": {"name": "builder", "uid": SA_UID},
                },
                "nbf": iat,
                "sub": "system:serviceaccount:default:builder",
            })
        );

        let verified = issuer.verify(&token, now()).unwrap();
        assert_eq!(
            verified,
            VerifiedToken {
                namespace: "default".into(),
                service_account: "builder".into(),
                service_account_uid: SA_UID.into(),
                pod: Some(("web-0".into(), POD_UID.into())),
                secret: None,
                node: Some(("node-1".into(), NODE_UID.into())),
                credential_id: Some(jti),
                legacy: false,
                audiences: vec![DEFAULT_ISSUER.into()],
                expires: Some(expiry),
                warn_after: None,
            }
        );
    }

    #[test]
    fn issuer_can_be_shared_across_request_tasks() {
        fn shareable<T: Send + Sync>() {}
        shareable::<TokenIssuer>();
        shareable::<super::super::StaticTokens>();
    }

    #[test]
    fn key_id_is_base64url_sha256_of_the_pkix_public_key() {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let issuer = TokenIssuer::new(
            &key.serialize_pem(),
            &key.public_key_pem(),
            DEFAULT_ISSUER.into(),
            vec![],
        )
        .unwrap();
        let digest = (DEFAULT_PROVIDER.key_utils.compute_digest)(
            &rustls_pemfile::public_keys(&mut key.public_key_pem().as_bytes())
                .next()
                .unwrap()
                .unwrap(),
            ThumbprintHash::SHA256,
        )
        .unwrap();
        assert_eq!(issuer.key_id(), URL_SAFE_NO_PAD.encode(digest));
        assert_eq!(issuer.key_id().len(), 43);
    }

    #[test]
    fn pod_bound_token_user_has_pod_node_and_credential_extras() {
        let issuer = issuer();
        let (token, _) = issuer.issue(&pod_spec(), now()).unwrap();
        let verified = issuer.verify(&token, now()).unwrap();
        let jti = verified.credential_id.clone().unwrap();
        let user = verified.user();
        assert_eq!(user.name, "system:serviceaccount:default:builder");
        assert_eq!(user.uid, SA_UID);
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ]
        );
        let extra: BTreeMap<String, Vec<String>> = [
            (POD_NAME_KEY, "web-0".to_string()),
            (POD_UID_KEY, POD_UID.to_string()),
            (NODE_NAME_KEY, "node-1".to_string()),
            (NODE_UID_KEY, NODE_UID.to_string()),
            (CREDENTIAL_ID_KEY, format!("JTI={jti}")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), vec![v]))
        .collect();
        assert_eq!(user.extra, extra);
        assert_eq!(
            user.extra.keys().collect::<Vec<_>>(),
            [
                "authentication.kubernetes.io/credential-id",
                "authentication.kubernetes.io/node-name",
                "authentication.kubernetes.io/node-uid",
                "authentication.kubernetes.io/pod-name",
                "authentication.kubernetes.io/pod-uid",
            ]
        );
    }

    #[test]
    fn pod_bound_token_without_node_uid_carries_only_the_node_name() {
        let issuer = issuer();
        let spec = TokenRequestSpec {
            node: Some(("node-1".into(), String::new())),
            ..pod_spec()
        };
        let (token, _) = issuer.issue(&spec, now()).unwrap();
        assert_eq!(
            decode_part(&token, 1)["kubernetes.io"]["node"],
            json!({"name": "node-1"})
        );
        let user = issuer.verify(&token, now()).unwrap().user();
        assert_eq!(user.extra[NODE_NAME_KEY], ["node-1"]);
        assert!(!user.extra.contains_key(NODE_UID_KEY));
    }

    #[test]
    fn secret_and_node_bound_tokens_name_only_their_object() {
        let issuer = issuer();
        let secret = BoundObject {
            kind: BoundKind::Secret,
            name: "s".into(),
            uid: "su".into(),
        };
        // A node alongside a non-pod binding is ignored, as upstream never sets both.
        let spec_secret = TokenRequestSpec {
            node: Some(("node-1".into(), NODE_UID.into())),
            ..spec(Some(secret))
        };
        let (token, _) = issuer.issue(&spec_secret, now()).unwrap();
        assert_eq!(
            keys(&decode_part(&token, 1)["kubernetes.io"]),
            ["namespace", "secret", "serviceaccount"]
        );
        let verified = issuer.verify(&token, now()).unwrap();
        assert_eq!(verified.secret, Some(("s".into(), "su".into())));
        assert_eq!(
            verified.user().extra.keys().collect::<Vec<_>>(),
            [CREDENTIAL_ID_KEY]
        );

        let node = BoundObject {
            kind: BoundKind::Node,
            name: "node-1".into(),
            uid: NODE_UID.into(),
        };
        let (token, _) = issuer.issue(&spec(Some(node)), now()).unwrap();
        assert_eq!(
            keys(&decode_part(&token, 1)["kubernetes.io"]),
            ["namespace", "node", "serviceaccount"]
        );
        let user = issuer.verify(&token, now()).unwrap().user();
        assert_eq!(user.extra[NODE_NAME_KEY], ["node-1"]);
        assert_eq!(user.extra[NODE_UID_KEY], [NODE_UID]);
        assert!(!user.extra.contains_key(POD_NAME_KEY));
    }

    #[test]
    fn unbound_token_user_has_only_the_credential_id() {
        let issuer = issuer();
        let (token, _) = issuer.issue(&spec(None), now()).unwrap();
        let verified = issuer.verify(&token, now()).unwrap();
        assert_eq!((&verified.pod, &verified.node), (&None, &None));
        let extra = verified.user().extra;
        assert_eq!(extra.len(), 1);
        assert!(extra[CREDENTIAL_ID_KEY][0].starts_with("JTI="));
    }

    #[test]
    fn expired_token_is_rejected_after_a_minute_of_leeway() {
        let issuer = issuer();
        let (token, expiry) = issuer.issue(&spec(None), now()).unwrap();
        let at = |secs| expiry + TimeDelta::seconds(secs);
        assert!(issuer.verify(&token, at(60)).is_ok());
        let err = issuer.verify(&token, at(61)).unwrap_err();
        assert_eq!(err, TokenError::Expired);
        assert_eq!(err.to_string(), "service account token has expired");
    }

    #[test]
    fn token_from_the_future_is_not_yet_valid() {
        let issuer = issuer();
        let (token, _) = issuer.issue(&spec(None), now()).unwrap();
        let issued = DateTime::from_timestamp(now().timestamp(), 0).unwrap();
        assert!(
            issuer
                .verify(&token, issued - TimeDelta::seconds(60))
                .is_ok()
        );
        assert_eq!(
            issuer
                .verify(&token, issued - TimeDelta::seconds(61))
                .unwrap_err(),
            TokenError::NotYetValid
        );
    }

    #[test]
    fn token_for_another_audience_is_rejected() {
        let issuer = issuer();
        let spec = TokenRequestSpec {
            audiences: vec!["vault".into()],
            ..spec(None)
        };
        let (token, _) = issuer.issue(&spec, now()).unwrap();
        assert_eq!(decode_part(&token, 1)["aud"], json!(["vault"]));
        let err = issuer.verify(&token, now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"token audiences ["vault"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local"]"#
        );

        // One API audience among several is enough, and is what the token is good for.
        let spec = TokenRequestSpec {
            audiences: vec!["vault".into(), DEFAULT_ISSUER.into()],
            ..spec
        };
        let (token, _) = issuer.issue(&spec, now()).unwrap();
        let verified = issuer.verify(&token, now()).unwrap();
        assert_eq!(verified.audiences, [DEFAULT_ISSUER]);
    }

    #[test]
    fn altered_payload_or_signature_is_rejected() {
        let issuer = issuer();
        let (token, _) = issuer.issue(&spec(None), now()).unwrap();

        let mut claims = decode_part(&token, 1);
        claims["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
        claims["sub"] = json!("system:serviceaccount:default:admin");
        assert_eq!(
            issuer.verify(&with_payload(&token, &claims), now()),
            Err(TokenError::InvalidSignature)
        );

        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[10] ^= 0x01;
        let altered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            issuer.verify(&altered, now()),
            Err(TokenError::InvalidSignature)
        );
        let truncated = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&sig[..32]));
        assert_eq!(
            issuer.verify(&truncated, now()),
            Err(TokenError::InvalidSignature)
        );
        assert_eq!(
            issuer.verify(&format!("{head}."), now()),
            Err(TokenError::InvalidSignature)
        );
    }

    #[test]
    fn token_signed_by_another_key_is_rejected() {
        let ours = issuer();
        let theirs = issuer();
        let (token, _) = theirs.issue(&spec(None), now()).unwrap();
        assert_eq!(ours.verify(&token, now()), Err(TokenError::UnknownKeyId));

        // Without a kid every key of ours is tried, and none fits.
        let claims = decode_part(&token, 1);
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let signing_input = format!("{header}.{payload}");
        let signer =
            (DEFAULT_PROVIDER.signer_factory)(&Algorithm::ES256, &theirs.encoding_key).unwrap();
        let sig = URL_SAFE_NO_PAD.encode(signer.try_sign(signing_input.as_bytes()).unwrap());
        assert_eq!(
            ours.verify(&format!("{signing_input}.{sig}"), now()),
            Err(TokenError::InvalidSignature)
        );
        assert!(
            theirs
                .verify(&format!("{signing_input}.{sig}"), now())
                .is_ok()
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let issuer = issuer();
        let (token, _) = issuer.issue(&spec(None), now()).unwrap();
        let rest = token.split_once('.').unwrap().1;
        for alg in ["none", "HS256", "RS256", "ES384"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#));
            assert_eq!(
                issuer.verify(&format!("{header}.{rest}"), now()),
                Err(TokenError::UnsupportedAlgorithm(alg.into()))
            );
        }
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        let issuer = issuer();
        let (token, _) = issuer.issue(&spec(None), now()).unwrap();
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let garbage = [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "a.b.c".into(),
            "not a token".into(),
            "Bearer x".into(),
            "é.ü.ñ".into(),
            "\u{0}.\u{0}.\u{0}".into(),
            format!("{token}.extra"),
            format!("{}.{}.", b64("{}"), b64("{}")),
            format!("{}.{}.", b64("null"), b64("[]")),
            format!(
                "{}.{}.sig",
                b64("{"),
                b64(r#"{"iss":"kubernetes/serviceaccount"}"#)
            ),
            format!(
                "{}.{}.",
                b64("[]"),
                b64(&format!(r#"{{"iss":"{DEFAULT_ISSUER}"}}"#))
            ),
            format!("x.{}.y", b64(r#"{"iss":5}"#)),
            format!("x.{}.y", b64(r#"{"iss":"https://evil.example"}"#)),
            r#"{"iss":"kubernetes/serviceaccount"}"#.into(),
            "a".repeat(100_000),
            ".".repeat(1000),
        ];
        for g in &garbage {
            assert!(issuer.verify(g, now()).is_err(), "accepted {g:?}");
        }
        assert!(issuer.verify("a.b.c", now()).unwrap_err().is_foreign());
        assert!(
            issuer
                .verify(&format!("x.{}.y", b64(r#"{"iss":"other"}"#)), now())
                .unwrap_err()
                .is_foreign()
        );
    }

    #[test]
    fn correctly_signed_token_with_bad_claims_is_rejected() {
        let issuer = issuer();
        let exp = now().timestamp() + 600;
        let cases = [
            (
                json!({"iss": DEFAULT_ISSUER, "aud": [DEFAULT_ISSUER], "exp": exp}),
                TokenError::MissingClaim("namespace"),
            ),
            (
                json!({"iss": DEFAULT_ISSUER, "exp": "soon"}),
                TokenError::Malformed("claims have the wrong types"),
            ),
            (
                json!({"iss": DEFAULT_ISSUER, "aud": [DEFAULT_ISSUER], "iat": exp + 600,
                       "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "x"}}}),
                TokenError::IssuedInTheFuture,
            ),
        ];
        for (claims, want) in cases {
            let token = issuer.sign(&claims).unwrap();
            assert_eq!(issuer.verify(&token, now()), Err(want), "{claims}");
        }
    }

    #[test]
    fn go_jose_encodings_of_aud_and_dates_are_accepted() {
        let issuer = issuer();
        let iat = now().timestamp();
        let token = issuer
            .sign(&json!({
                "aud": DEFAULT_ISSUER,
                "exp": (iat + 600) as f64 + 0.5,
                "iat": iat,
                "iss": DEFAULT_ISSUER,
                "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u"}},
                "sub": "system:serviceaccount:ns:sa",
            }))
            .unwrap();
        let verified = issuer.verify(&token, now()).unwrap();
        assert_eq!(verified.audiences, [DEFAULT_ISSUER]);
        assert_eq!(verified.expires, DateTime::from_timestamp(iat + 600, 0));
        assert_eq!(verified.credential_id, None);
        assert!(verified.user().extra.is_empty());
    }

    #[test]
    fn legacy_token_has_flat_claims_and_verifies_as_legacy() {
        let issuer = issuer();
        let token = issuer
            .issue_legacy("kube-system", "deployer", SA_UID, "deployer-token")
            .unwrap();
        assert_eq!(
            decode_part(&token, 0),
            json!({"alg": "ES256", "kid": issuer.key_id()})
        );
        let claims = decode_part(&token, 1);
        assert_eq!(
            keys(&claims),
            [
                "iss",
                "kubernetes.io/serviceaccount/namespace",
                "kubernetes.io/serviceaccount/secret.name",
                "kubernetes.io/serviceaccount/service-account.name",
                "kubernetes.io/serviceaccount/service-account.uid",
                "sub",
            ]
        );
        assert_eq!(
            claims,
            json!({
                "iss": "kubernetes/serviceaccount",
                "kubernetes.io/serviceaccount/namespace": "kube-system",
                "kubernetes.io/serviceaccount/secret.name": "deployer-token",
                "kubernetes.io/serviceaccount/service-account.name": "deployer",
                "kubernetes.io/serviceaccount/service-account.uid": SA_UID,
                "sub": "system:serviceaccount:kube-system:deployer",
            })
        );

        // No exp: still good in ten years.
        let later = now() + TimeDelta::days(3650);
        let verified = issuer.verify(&token, later).unwrap();
        assert_eq!(
            verified,
            VerifiedToken {
                namespace: "kube-system".into(),
                service_account: "deployer".into(),
                service_account_uid: SA_UID.into(),
                pod: None,
                secret: Some(("deployer-token".into(), String::new())),
                node: None,
                credential_id: None,
                legacy: true,
                audiences: vec![DEFAULT_ISSUER.into()],
                expires: None,
                warn_after: None,
            }
        );
        let user = verified.user();
        assert_eq!(user.name, "system:serviceaccount:kube-system:deployer");
        assert_eq!(user.uid, SA_UID);
        assert!(user.extra.is_empty());
        assert!(user.in_group("system:serviceaccounts:kube-system"));
    }

    #[test]
    fn legacy_token_whose_subject_disagrees_is_rejected() {
        let issuer = issuer();
        let token = issuer
            .issue_legacy("kube-system", "deployer", SA_UID, "deployer-token")
            .unwrap();
        let mut claims = decode_part(&token, 1);
        claims["sub"] = json!("system:serviceaccount:kube-system:admin");
        let forged = issuer.sign(&claims).unwrap();
        assert_eq!(
            issuer.verify(&forged, now()),
            Err(TokenError::InvalidSubject)
        );
        claims["kubernetes.io/serviceaccount/service-account.uid"] = json!("");
        let forged = issuer.sign(&claims).unwrap();
        assert_eq!(
            issuer.verify(&forged, now()).unwrap_err().to_string(),
            "serviceAccountUID claim is missing"
        );
    }

    #[test]
    fn kubelet_projected_token_is_extended_with_warnafter() {
        let issuer = issuer();
        let spec = TokenRequestSpec {
            expiration_seconds: WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS,
            ..pod_spec()
        };
        let iat = now().timestamp();
        let (token, expiry) = issuer.issue_with_extension(&spec, true, now()).unwrap();
        assert_eq!(expiry, DateTime::from_timestamp(iat + 3607, 0).unwrap());
        let claims = decode_part(&token, 1);
        assert_eq!(claims["exp"], json!(iat + EXPIRATION_EXTENSION_SECONDS));
        assert_eq!(claims["kubernetes.io"]["warnafter"], json!(iat + 3607));
        assert_eq!(
            keys(&claims["kubernetes.io"]),
            ["namespace", "node", "pod", "serviceaccount", "warnafter"]
        );
        let verified = issuer.verify(&token, expiry + TimeDelta::days(30)).unwrap();
        assert_eq!(verified.warn_after, Some(expiry));

        // Not for other audiences, other durations, or without the flag.
        let other_aud = TokenRequestSpec {
            audiences: vec!["vault".into()],
            ..spec.clone()
        };
        let other_duration = TokenRequestSpec {
            expiration_seconds: 3600,
            ..spec.clone()
        };
        for (s, extend) in [(&other_aud, true), (&other_duration, true), (&spec, false)] {
            let (token, _) = issuer.issue_with_extension(s, extend, now()).unwrap();
            let claims = decode_part(&token, 1);
            assert_eq!(claims["exp"], json!(iat + s.expiration_seconds));
            assert!(claims["kubernetes.io"].get("warnafter").is_none());
        }
    }

    #[test]
    fn issuer_refuses_mismatched_or_unusable_keys() {
        let (key, _) = key_pems();
        let (_, other_public) = key_pems();
        let new = |k: &str, p: &str| TokenIssuer::new(k, p, DEFAULT_ISSUER.into(), vec![]);
        assert_eq!(
            new(&key, &other_public).unwrap_err(),
            TokenError::KeyMismatch
        );
        assert!(matches!(
            new("garbage", &other_public),
            Err(TokenError::InvalidKey(_))
        ));
        assert!(matches!(new(&key, &key), Err(TokenError::InvalidKey(_))));
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        assert!(matches!(
            new(&p384.serialize_pem(), &p384.public_key_pem()),
            Err(TokenError::InvalidKey(_))
        ));
    }

    #[test]
    fn api_audiences_other_than_the_issuer_are_honoured() {
        let (key, public) = key_pems();
        let issuer =
            TokenIssuer::new(&key, &public, DEFAULT_ISSUER.into(), vec!["api".into()]).unwrap();
        let (token, _) = issuer.issue(&spec(None), now()).unwrap();
        assert_eq!(decode_part(&token, 1)["aud"], json!(["api"]));
        assert_eq!(issuer.verify(&token, now()).unwrap().audiences, ["api"]);
        assert_eq!(issuer.issuer(), DEFAULT_ISSUER);
        assert_eq!(issuer.api_audiences(), ["api"]);
    }

    #[test]
    fn token_request_expiration_messages_are_upstreams() {
        let msgs = |spec: Value| -> Vec<String> {
            validate_token_request(&spec)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            msgs(json!({"expirationSeconds": 60})),
            [
                "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
            ]
        );
        assert_eq!(
            msgs(json!({"expirationSeconds": 4294967297_i64})),
            [
                "spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds"
            ]
        );
        assert!(msgs(json!({"expirationSeconds": 600})).is_empty());
        assert!(msgs(json!({"expirationSeconds": 4294967296_i64})).is_empty());
        assert!(msgs(json!({})).is_empty());
        assert!(msgs(json!({"expirationSeconds": null})).is_empty());
        assert_eq!(msgs(json!({"expirationSeconds": 0})).len(), 1);
        assert_eq!(msgs(json!({"expirationSeconds": -5})).len(), 1);
    }

    #[test]
    fn bound_object_ref_follows_the_token_rest_handler() {
        let read = |r: Value| bound_object_ref(&json!({ "boundObjectRef": r }));
        assert_eq!(
            read(json!({"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u"})),
            Ok(Some(BoundObjectRef {
                kind: BoundKind::Pod,
                name: "p".into(),
                uid: "u".into()
            }))
        );
        assert_eq!(
            read(json!({"kind": "Node", "apiVersion": "v1", "name": "n"}))
                .unwrap()
                .unwrap()
                .kind,
            BoundKind::Node
        );
        assert_eq!(
            read(json!({"kind": "ConfigMap", "apiVersion": "v1", "name": "c"}))
                .unwrap_err()
                .to_string(),
            "cannot bind token to object of type /v1, Kind=ConfigMap"
        );
        assert_eq!(
            read(json!({"kind": "Pod", "apiVersion": "apps/v1", "name": "p"}))
                .unwrap_err()
                .to_string(),
            "cannot bind token to object of type apps/v1, Kind=Pod"
        );
        assert_eq!(
            read(json!({"kind": "Secret", "apiVersion": "v1"})),
            Err(BoundObjectRefError::MissingName)
        );
        assert_eq!(bound_object_ref(&json!({})), Ok(None));
        assert_eq!(bound_object_ref(&json!({"boundObjectRef": null})), Ok(None));
    }

    #[test]
    fn service_account_usernames_split_only_when_valid() {
        assert_eq!(
            split_username("system:serviceaccount:ns:sa"),
            Some(("ns", "sa"))
        );
        assert_eq!(split_username("system:serviceaccount:ns:sa:x"), None);
        assert_eq!(split_username("system:serviceaccount:NS:sa"), None);
        assert_eq!(split_username("alice"), None);
    }
}
