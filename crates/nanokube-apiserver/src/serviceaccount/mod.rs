//! Service accounts' credentials: the JWTs the API server issues and accepts ([`token`]) and
//! the static tokens of `--token-auth-file` ([`token_file`]).
//!
//! Start at [`TokenIssuer`]: built once from the cluster's service-account key
//! ([`crate::pki::Pki::sa_key_pem`]), it signs TokenRequest and legacy Secret tokens and turns a
//! bearer token back into a [`VerifiedToken`] and its [`crate::authn::UserInfo`].

pub mod token;
pub mod token_file;

pub use token::{
    BoundKind, BoundObject, BoundObjectRef, BoundObjectRefError, DEFAULT_ISSUER, LEGACY_ISSUER,
    TokenError, TokenIssuer, TokenRequestSpec, VerifiedToken, bound_object_ref,
    validate_token_request,
};
pub use token_file::{StaticTokens, TokenFileError};
