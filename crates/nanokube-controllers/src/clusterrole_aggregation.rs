//! The ClusterRole aggregation controller (upstream
//! `pkg/controller/clusterroleaggregation`): a ClusterRole with
//! `aggregationRule.clusterRoleSelectors` keeps as its `rules` the union of the rules of the
//! ClusterRoles its selectors match, so `aggregate-to-view|edit|admin` roles extend the
//! built-in ones.

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};
use std::time::Duration;

/// Brings every aggregating ClusterRole's rules up to date with `roles`.
async fn sync(api: &Api<ClusterRole>, roles: &[std::sync::Arc<ClusterRole>]) {
    let objects: Vec<Value> = roles
        .iter()
        .filter_map(|r| serde_json::to_value(r.as_ref()).ok())
        .collect();
    for (name, rules) in nanokube_registry::rbac::aggregate(&objects) {
        let rules: Vec<Value> = rules
            .iter()
            .map(nanokube_registry::rbac::PolicyRule::to_json)
            .collect();
        let patch = json!({"rules": rules});
        if let Err(e) = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(clusterrole = %name, error = %e, "aggregating rules failed");
        }
    }
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client) {
    let api: Api<ClusterRole> = Api::all(client);
    let (reader, writer) = reflector::store();
    let stream =
        reflector(writer, watcher(api.clone(), watcher::Config::default())).applied_objects();
    futures::pin_mut!(stream);
    // Every change re-syncs all aggregating roles once the burst of events has settled.
    while let Some(event) = stream.next().await {
        if event.is_err() {
            continue;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        sync(&api, &reader.state()).await;
    }
}
