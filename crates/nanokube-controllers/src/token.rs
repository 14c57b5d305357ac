//! The token controller for legacy service-account token Secrets (upstream
//! `pkg/controller/serviceaccount/tokens_controller.go`): a Secret of type
//! `kubernetes.io/service-account-token` naming a ServiceAccount gets `token`, `ca.crt` and
//! `namespace` filled in; a token Secret whose ServiceAccount is gone is deleted. With
//! `create_for_every_account` (clusters before 1.24), every ServiceAccount also gets one such
//! Secret, listed in its `secrets`.

use crate::LogFailures;
use crate::{Error, RETRY, is_already_exists, is_not_found};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ObjectReference, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// Signs a legacy token: `(namespace, service account, its uid, secret name)` → JWT.
pub type Signer = Arc<dyn Fn(&str, &str, &str, &str) -> Result<String, String> + Send + Sync>;

/// What the controller needs beyond its client.
pub struct Config {
    pub ca_pem: String,
    pub signer: Signer,
    /// Make a token Secret for every ServiceAccount, as clusters did before 1.24.
    pub create_for_every_account: bool,
}

/// What to do about one token Secret.
#[derive(Debug, PartialEq, Eq)]
pub enum SecretAction {
    Nothing,
    /// Its ServiceAccount is gone (or was replaced): delete the Secret.
    Delete,
    /// Fill in `token`, `ca.crt`, `namespace` and the uid annotation.
    Populate {
        sa_uid: String,
    },
}

/// Decides what a token Secret needs, given its ServiceAccount (if it exists).
pub fn plan(secret: &Secret, account: Option<&ServiceAccount>) -> SecretAction {
    if secret.type_.as_deref() != Some(TOKEN_SECRET_TYPE)
        || secret.metadata.deletion_timestamp.is_some()
    {
        return SecretAction::Nothing;
    }
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    if !annotations.contains_key(SA_NAME_ANNOTATION) {
        return SecretAction::Nothing;
    }
    let Some(sa) = account else {
        return SecretAction::Delete;
    };
    let sa_uid = sa.metadata.uid.clone().unwrap_or_default();
    if let Some(recorded) = annotations.get(SA_UID_ANNOTATION)
        && !recorded.is_empty()
        && *recorded != sa_uid
    {
        return SecretAction::Delete;
    }
    let data = secret.data.clone().unwrap_or_default();
    let complete = ["token", "ca.crt", "namespace"]
        .iter()
        .all(|k| data.get(*k).is_some_and(|v| !v.0.is_empty()))
        && annotations.get(SA_UID_ANNOTATION) == Some(&sa_uid);
    if complete {
        SecretAction::Nothing
    } else {
        SecretAction::Populate { sa_uid }
    }
}

struct Ctx {
    client: kube::Client,
    config: Config,
}

async fn reconcile_secret(secret: Arc<Secret>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (
        secret.metadata.namespace.clone(),
        secret.metadata.name.clone(),
    ) else {
        return Ok(Action::await_change());
    };
    let sa_name = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SA_NAME_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &ns);
    let sa = if sa_name.is_empty() {
        None
    } else {
        accounts.get_opt(&sa_name).await?
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    match plan(&secret, sa.as_ref()) {
        SecretAction::Nothing => {}
        SecretAction::Delete => match secrets.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::debug!(namespace = %ns, secret = %name, "deleted token secret of a missing account")
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        },
        SecretAction::Populate { sa_uid } => {
            let token = (ctx.config.signer)(&ns, &sa_name, &sa_uid, &name).map_err(Error::Token)?;
            let mut updated = (*secret).clone();
            let data = updated.data.get_or_insert_with(BTreeMap::new);
            data.insert("token".into(), ByteString(token.into_bytes()));
            data.insert(
                "ca.crt".into(),
                ByteString(ctx.config.ca_pem.clone().into_bytes()),
            );
            data.insert("namespace".into(), ByteString(ns.clone().into_bytes()));
            updated
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(SA_UID_ANNOTATION.into(), sa_uid);
            match secrets
                .replace(&name, &PostParams::default(), &updated)
                .await
            {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    return Ok(Action::requeue(std::time::Duration::from_millis(50)));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Action::await_change())
}

/// Five characters of upstream's generated-name alphabet.
fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Pre-1.24 behaviour: every ServiceAccount references a token Secret of its own.
async fn reconcile_account(sa: Arc<ServiceAccount>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(name)) = (sa.metadata.namespace.clone(), sa.metadata.name.clone()) else {
        return Ok(Action::await_change());
    };
    if sa.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    for reference in sa.secrets.iter().flatten() {
        if let Some(secret_name) = &reference.name
            && let Some(s) = secrets.get_opt(secret_name).await?
            && s.type_.as_deref() == Some(TOKEN_SECRET_TYPE)
        {
            return Ok(Action::await_change());
        }
    }
    let secret_name = format!("{name}-token-{}", suffix());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.clone()),
            annotations: Some(BTreeMap::from([
                (SA_NAME_ANNOTATION.to_string(), name.clone()),
                (
                    SA_UID_ANNOTATION.to_string(),
                    sa.metadata.uid.clone().unwrap_or_default(),
                ),
            ])),
            ..Default::default()
        },
        type_: Some(TOKEN_SECRET_TYPE.into()),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => {}
        Err(e) if is_already_exists(&e) => {
            return Ok(Action::requeue(std::time::Duration::from_millis(10)));
        }
        Err(e) => return Err(e.into()),
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &ns);
    let mut updated = (*sa).clone();
    updated
        .secrets
        .get_or_insert_with(Vec::new)
        .push(ObjectReference {
            name: Some(secret_name),
            ..Default::default()
        });
    match accounts
        .replace(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            Ok(Action::requeue(std::time::Duration::from_millis(50)))
        }
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client, config: Config) {
    let secrets: Api<Secret> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let for_every = config.create_for_every_account;
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        config,
    });
    let token_secrets = watcher::Config::default().fields(&format!("type={TOKEN_SECRET_TYPE}"));
    let fill = Controller::new(secrets, token_secrets)
        .run(
            reconcile_secret,
            |_, _, _| Action::requeue(RETRY),
            ctx.clone(),
        )
        .log_failures("token controller");
    if for_every {
        let create = Controller::new(accounts, watcher::Config::default())
            .run(reconcile_account, |_, _, _| Action::requeue(RETRY), ctx)
            .log_failures("token controller (accounts)");
        futures::join!(fill, create);
    } else {
        fill.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_secret(uid_annotation: Option<&str>) -> Secret {
        let mut annotations =
            BTreeMap::from([(SA_NAME_ANNOTATION.to_string(), "robot".to_string())]);
        if let Some(u) = uid_annotation {
            annotations.insert(SA_UID_ANNOTATION.into(), u.into());
        }
        Secret {
            metadata: ObjectMeta {
                name: Some("robot-token".into()),
                annotations: Some(annotations),
                ..Default::default()
            },
            type_: Some(TOKEN_SECRET_TYPE.into()),
            ..Default::default()
        }
    }

    fn account(uid: &str) -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some("robot".into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn new_token_secret_is_populated_with_the_account_uid() {
        assert_eq!(
            plan(&token_secret(None), Some(&account("u1"))),
            SecretAction::Populate {
                sa_uid: "u1".into()
            }
        );
    }

    #[test]
    fn token_secret_of_a_missing_or_replaced_account_is_deleted() {
        assert_eq!(plan(&token_secret(None), None), SecretAction::Delete);
        assert_eq!(
            plan(&token_secret(Some("old")), Some(&account("new"))),
            SecretAction::Delete
        );
    }

    #[test]
    fn complete_secrets_and_other_types_are_left_alone() {
        let mut s = token_secret(Some("u1"));
        s.data = Some(BTreeMap::from([
            ("token".to_string(), ByteString(b"t".to_vec())),
            ("ca.crt".to_string(), ByteString(b"c".to_vec())),
            ("namespace".to_string(), ByteString(b"default".to_vec())),
        ]));
        assert_eq!(plan(&s, Some(&account("u1"))), SecretAction::Nothing);
        let mut opaque = token_secret(None);
        opaque.type_ = Some("Opaque".into());
        assert_eq!(plan(&opaque, None), SecretAction::Nothing);
    }
}
