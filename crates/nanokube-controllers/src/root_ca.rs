//! The root-CA publisher: every namespace has a ConfigMap `kube-root-ca.crt` holding the CA
//! that signs the API server's serving certificate (upstream
//! `pkg/controller/certificates/rootcacertpublisher`), so pods can verify the API over TLS.

use crate::LogFailures;
use crate::{Error, RETRY, is_already_exists};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const CONFIGMAP_NAME: &str = "kube-root-ca.crt";
pub const CA_KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// The ConfigMap a namespace should have.
pub fn wanted(ca_pem: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIGMAP_NAME.into()),
            annotations: Some(BTreeMap::from([(
                DESCRIPTION_ANNOTATION.to_string(),
                DESCRIPTION.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(CA_KEY.to_string(), ca_pem.to_string())])),
        ..Default::default()
    }
}

/// Whether an existing ConfigMap needs rewriting: the CA changed or the annotation is gone.
pub fn needs_update(existing: &ConfigMap, ca_pem: &str) -> bool {
    let ca = existing
        .data
        .as_ref()
        .and_then(|d| d.get(CA_KEY))
        .map(String::as_str);
    let described = existing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
        .is_some();
    ca != Some(ca_pem) || !described
}

struct Ctx {
    client: kube::Client,
    ca_pem: String,
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    if !crate::serviceaccount::is_active(&ns) {
        return Ok(Action::await_change());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    match api.get_opt(CONFIGMAP_NAME).await? {
        None => match api
            .create(&PostParams::default(), &wanted(&ctx.ca_pem))
            .await
        {
            Ok(_) => {}
            Err(e) if is_already_exists(&e) => {}
            Err(e) => return Err(e.into()),
        },
        Some(existing) if needs_update(&existing, &ctx.ca_pem) => {
            let mut cm = existing.clone();
            let fresh = wanted(&ctx.ca_pem);
            cm.data = fresh.data;
            cm.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .extend(fresh.metadata.annotations.unwrap_or_default());
            api.replace(CONFIGMAP_NAME, &PostParams::default(), &cm)
                .await?;
        }
        Some(_) => {}
    }
    Ok(Action::await_change())
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client, ca_pem: String) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let maps: Api<ConfigMap> = Api::all(client.clone());
    let cfg = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));
    Controller::new(namespaces, watcher::Config::default())
        .watches(maps, cfg, |cm: ConfigMap| {
            cm.metadata.namespace.map(|ns| ObjectRef::new(&ns))
        })
        .run(
            reconcile,
            |_, _, _| Action::requeue(RETRY),
            Arc::new(Ctx { client, ca_pem }),
        )
        .log_failures("root-ca publisher")
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_carries_the_ca_and_its_description() {
        let cm = wanted("PEM");
        assert_eq!(
            cm.data
                .as_ref()
                .and_then(|d| d.get("ca.crt"))
                .map(String::as_str),
            Some("PEM")
        );
        assert!(!needs_update(&cm, "PEM"));
        assert!(needs_update(&cm, "OTHER"));
        let mut bare = cm.clone();
        bare.metadata.annotations = None;
        assert!(needs_update(&bare, "PEM"));
    }
}
