//! The ServiceAccount controller: every active namespace has a `default` ServiceAccount
//! (upstream `pkg/controller/serviceaccount/serviceaccounts_controller.go`), recreated if it is
//! deleted.

use crate::LogFailures;
use crate::{Error, RETRY, is_already_exists};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::sync::Arc;

/// The ServiceAccounts every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNTS: &[&str] = &["default"];

/// Whether a namespace still takes new content.
pub fn is_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

async fn reconcile(ns: Arc<Namespace>, client: Arc<kube::Client>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    if !is_active(&ns) {
        return Ok(Action::await_change());
    }
    let api: Api<ServiceAccount> = Api::namespaced((*client).clone(), &name);
    for sa in DEFAULT_SERVICE_ACCOUNTS {
        if api.get_opt(sa).await?.is_some() {
            continue;
        }
        let obj = ServiceAccount {
            metadata: ObjectMeta {
                name: Some((*sa).to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => tracing::debug!(namespace = %name, serviceaccount = sa, "created"),
            Err(e) if is_already_exists(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::await_change())
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    Controller::new(namespaces, watcher::Config::default())
        .watches(
            accounts,
            watcher::Config::default(),
            |sa: ServiceAccount| {
                let ns = sa.metadata.namespace?;
                DEFAULT_SERVICE_ACCOUNTS
                    .contains(&sa.metadata.name.as_deref().unwrap_or(""))
                    .then(|| ObjectRef::new(&ns))
            },
        )
        .run(
            reconcile,
            |_, _, _| Action::requeue(RETRY),
            Arc::new(client),
        )
        .log_failures("serviceaccount controller")
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    #[test]
    fn terminating_namespaces_get_no_new_accounts() {
        let mut ns = Namespace::default();
        assert!(is_active(&ns));
        ns.status = Some(NamespaceStatus {
            phase: Some("Terminating".into()),
            ..Default::default()
        });
        assert!(!is_active(&ns));
    }
}
