//! The namespace controller (upstream `pkg/controller/namespace/`): a namespace with a
//! `deletionTimestamp` has all its content deleted; once every namespaced list in it is empty
//! the controller takes the `kubernetes` finalizer out of `spec.finalizers` through
//! `PUT /api/v1/namespaces/NAME/finalize`, and the API server deletes the namespace.
//!
//! While content remains the controller keeps the deletion conditions upstream's
//! `namespacedResourcesDeleter` writes (`NamespaceContentRemaining`,
//! `NamespaceFinalizersRemaining`, `NamespaceDeletionContentFailure`, …) on the status, so
//! `kubectl describe ns` explains what it is waiting for.

use crate::LogFailures;
use crate::garbage_collector::dynamic_api;
use crate::{RETRY, is_not_found};
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, NamespaceSpec, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use nanokube_registry::resource::{self, ResourceInfo};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// The `spec.finalizers` entry that stands for "content not yet deleted".
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

/// How soon a terminating namespace whose content is still going away is looked at again
/// (pods linger until the node agent has stopped them).
const CONTENT_RECHECK: Duration = Duration::from_secs(1);

/// Errors of one namespace sync; the sync is retried after a short delay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
}

/// The kinds whose objects live in a namespace and are deleted with it: every namespaced,
/// stored resource, once per storage (a resource served at several versions is stored once).
pub fn content_resources() -> Vec<&'static ResourceInfo> {
    resource::ALL
        .iter()
        .copied()
        .filter(|r| r.namespaced && !r.is_review() && r.version == r.storage_version)
        .collect()
}

/// Whether the controller has work on `ns`: it is being deleted and still holds the
/// `kubernetes` finalizer.
pub fn needs_finalizing(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some() && spec_finalizers(ns).contains(&KUBERNETES_FINALIZER)
}

fn spec_finalizers(ns: &Namespace) -> Vec<&str> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .map(|f| f.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

/// `spec.finalizers` without `kubernetes`: the body of the finalize call.
pub fn finalized_spec(ns: &Namespace) -> NamespaceSpec {
    // Upstream keeps the others as a set: sorted, each once.
    let rest: BTreeSet<String> = spec_finalizers(ns)
        .into_iter()
        .filter(|f| *f != KUBERNETES_FINALIZER)
        .map(str::to_string)
        .collect();
    NamespaceSpec {
        finalizers: Some(rest.into_iter().collect()),
    }
}

/// What one pass over the namespace's content found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContentReport {
    /// Remaining objects per resource (`pods.`, `jobs.batch`), only resources with some.
    pub remaining: BTreeMap<String, usize>,
    /// Remaining objects per finalizer they still carry.
    pub finalizers: BTreeMap<String, usize>,
    /// Resources whose deletion failed, with the error.
    pub failures: Vec<String>,
}

impl ContentReport {
    /// Whether the namespace may be finalized.
    pub fn is_empty(&self) -> bool {
        self.remaining.is_empty() && self.failures.is_empty()
    }
}

/// The key a resource is reported under (upstream prints `resource.group`, so core kinds end
/// in a dot: `pods.`).
fn report_key(r: &ResourceInfo) -> String {
    format!("{}.{}", r.plural, r.group)
}

/// Upstream `estimateGracefulTermination`: how long the namespace's pods that are not yet
/// terminal may still take to stop (their largest `terminationGracePeriodSeconds`).
pub fn pods_termination_estimate(pods: &[Pod]) -> i64 {
    pods.iter()
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| p.spec.as_ref()?.termination_grace_period_seconds)
        .max()
        .unwrap_or(0)
        .max(0)
}

/// Upstream's verdict on what is left of a resource after its deletion: objects still
/// terminating (a grace period estimate) or held by finalizers are waited for; anything else
/// should have gone, and is a content-deletion failure with upstream's message.
pub fn leftover_failure(
    r: &ResourceInfo,
    namespace: &str,
    finalizers_left: bool,
    estimate: i64,
) -> Option<String> {
    (estimate == 0 && !finalizers_left).then(|| {
        format!(
            "unexpected items still remain in namespace: {namespace} for gvr: {}/{}, Resource={}",
            r.group, r.version, r.plural
        )
    })
}

/// The namespace's deletion conditions as upstream writes them: `(type, status, reason,
/// message)`.
pub fn deletion_conditions(report: &ContentReport) -> Vec<(String, String, String, String)> {
    let cond = |t: &str, bad: bool, good: (&str, &str), failed: (&str, String)| {
        let (status, reason, message) = if bad {
            ("True", failed.0.to_string(), failed.1)
        } else {
            ("False", good.0.to_string(), good.1.to_string())
        };
        (t.to_string(), status.to_string(), reason, message)
    };
    let join = |m: &BTreeMap<String, usize>, word: &str| {
        m.iter()
            .map(|(k, n)| format!("{k} {word} {n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        cond(
            "NamespaceDeletionDiscoveryFailure",
            false,
            (
                "ResourcesDiscovered",
                "All resources successfully discovered",
            ),
            ("DiscoveryFailed", String::new()),
        ),
        cond(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            (
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed",
            ),
            ("GroupVersionParsingFailed", String::new()),
        ),
        cond(
            "NamespaceDeletionContentFailure",
            !report.failures.is_empty(),
            (
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            ),
            (
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    report.failures.len(),
                    report.failures.join(", ")
                ),
            ),
        ),
        cond(
            "NamespaceContentRemaining",
            !report.remaining.is_empty(),
            ("ContentRemoved", "All content successfully removed"),
            (
                "SomeResourcesRemain",
                format!(
                    "Some resources are remaining: {}",
                    join(&report.remaining, "has")
                ),
            ),
        ),
        cond(
            "NamespaceFinalizersRemaining",
            !report.finalizers.is_empty(),
            (
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            ),
            (
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    join(&report.finalizers, "in")
                ),
            ),
        ),
    ]
}

/// `current` with the deletion conditions of `report` merged in as upstream's
/// `updateConditions` does (a condition is updated where it stands, with a new
/// `lastTransitionTime` whenever its status, reason or message changes; a missing one is
/// appended), or `None` when nothing changes.
pub fn merged_conditions(
    current: &[NamespaceCondition],
    report: &ContentReport,
    now: &Time,
) -> Option<Vec<NamespaceCondition>> {
    let mut out = current.to_vec();
    let mut changed = false;
    for (type_, status, reason, message) in deletion_conditions(report) {
        match out.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status
                    || c.reason.as_deref() != Some(reason.as_str())
                    || c.message.as_deref() != Some(message.as_str())
                {
                    c.status = status;
                    c.reason = Some(reason);
                    c.message = Some(message);
                    c.last_transition_time = Some(now.clone());
                    changed = true;
                }
            }
            None => {
                out.push(NamespaceCondition {
                    type_,
                    status,
                    reason: Some(reason),
                    message: Some(message),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
        }
    }
    changed.then_some(out)
}

/// Deletes everything of `r` in `namespace`, then reports what is left.
async fn delete_content(
    client: &kube::Client,
    r: &ResourceInfo,
    namespace: &str,
    report: &mut ContentReport,
) -> Result<(), kube::Error> {
    let api = dynamic_api(client, r, Some(namespace));
    let lp = ListParams::default();
    let listed = api.list_metadata(&lp).await?;
    if listed.items.is_empty() {
        return Ok(());
    }
    let estimate = if r.group.is_empty() && r.plural == "pods" {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        pods_termination_estimate(&pods.list(&lp).await?.items)
    } else {
        0
    };
    // Objects already on their way out are not deleted again (that could shorten a pod's
    // grace period); the rest go in one deletecollection, Background like upstream.
    if listed
        .items
        .iter()
        .any(|o| o.metadata.deletion_timestamp.is_none())
    {
        match api
            .delete_collection(&DeleteParams::background(), &lp)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 405 => {
                for o in &listed.items {
                    let Some(name) = o.metadata.name.as_deref() else {
                        continue;
                    };
                    if o.metadata.deletion_timestamp.is_some() {
                        continue;
                    }
                    match api.delete(name, &DeleteParams::background()).await {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    let left = api.list_metadata(&lp).await?;
    if !left.items.is_empty() {
        report.remaining.insert(report_key(r), left.items.len());
        let mut finalizers_left = false;
        for f in left
            .items
            .iter()
            .flat_map(|o| o.metadata.finalizers.iter().flatten())
        {
            finalizers_left = true;
            *report.finalizers.entry(f.clone()).or_default() += 1;
        }
        if let Some(failure) = leftover_failure(r, namespace, finalizers_left, estimate) {
            report.failures.push(failure);
        }
    }
    Ok(())
}

async fn reconcile(ns: Arc<Namespace>, client: Arc<kube::Client>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    if !needs_finalizing(&ns) {
        return Ok(Action::await_change());
    }
    let mut report = ContentReport::default();
    for r in content_resources() {
        if let Err(e) = delete_content(&client, r, &name, &mut report).await {
            tracing::debug!(namespace = %name, resource = r.plural, error = %e, "namespace content");
            let text = match &e {
                kube::Error::Api(s) => s.message.clone(),
                other => other.to_string(),
            };
            report.failures.push(text);
        }
    }
    // Upstream sorts the failures' texts.
    report.failures.sort();
    let api: Api<Namespace> = Api::all((*client).clone());
    // Fresh copy: the cached one may be stale, and both writes below carry its resourceVersion.
    let Some(mut current) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    if !needs_finalizing(&current) {
        return Ok(Action::await_change());
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status = current.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.clone().unwrap_or_default();
    if let Some(conditions) = merged_conditions(&conditions, &report, &now) {
        status.conditions = Some(conditions);
        match api
            .replace_status(&name, &PostParams::default(), &current)
            .await
        {
            Ok(updated) => current = updated,
            // The conditions are informative; a conflict is retried with the next pass.
            Err(e) => tracing::debug!(namespace = %name, error = %e, "namespace status"),
        }
    }
    if !report.is_empty() {
        return Ok(Action::requeue(CONTENT_RECHECK));
    }
    current.spec = Some(finalized_spec(&current));
    api.replace_subresource("finalize", &name, &PostParams::default(), &current)
        .await?;
    tracing::debug!(namespace = %name, "namespace finalized");
    Ok(Action::await_change())
}

/// Runs until the client's server goes away.
pub async fn run(client: kube::Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    Controller::new(namespaces, watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(RETRY),
            Arc::new(client),
        )
        .log_failures("namespace controller")
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn terminating(finalizers: &[&str]) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("doomed".into()),
                deletion_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: Some(NamespaceSpec {
                finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn namespaced_stored_kinds_are_cleaned_and_cluster_kinds_are_not() {
        let kinds: Vec<String> = content_resources().iter().map(|r| r.qualified()).collect();
        for k in [
            "pods",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "services",
            "endpoints",
            "events",
            "events.events.k8s.io",
            "jobs.batch",
            "cronjobs.batch",
            "deployments.apps",
            "replicasets.apps",
            "roles.rbac.authorization.k8s.io",
            "rolebindings.rbac.authorization.k8s.io",
            "leases.coordination.k8s.io",
        ] {
            assert!(kinds.contains(&k.to_string()), "{k}");
        }
        for k in [
            "namespaces",
            "nodes",
            "clusterroles.rbac.authorization.k8s.io",
            "localsubjectaccessreviews.authorization.k8s.io",
        ] {
            assert!(!kinds.contains(&k.to_string()), "{k}");
        }
        assert_eq!(
            kinds.iter().filter(|k| *k == "cronjobs.batch").count(),
            1,
            "batch/v1beta1 shares storage with batch/v1"
        );
    }

    #[test]
    fn only_terminating_namespaces_with_the_kubernetes_finalizer_are_finalized() {
        assert!(needs_finalizing(&terminating(&["kubernetes"])));
        assert!(!needs_finalizing(&terminating(&[])));
        let mut live = terminating(&["kubernetes"]);
        live.metadata.deletion_timestamp = None;
        assert!(!needs_finalizing(&live));
    }

    #[test]
    fn finalize_removes_only_the_kubernetes_finalizer() {
        let ns = terminating(&["example.com/x", "kubernetes", "a.io/y", "example.com/x"]);
        assert_eq!(
            finalized_spec(&ns).finalizers,
            Some(vec!["a.io/y".to_string(), "example.com/x".to_string()])
        );
    }

    #[test]
    fn remaining_content_is_reported_like_upstream() {
        let mut report = ContentReport::default();
        report.remaining.insert("pods.".into(), 2);
        report.finalizers.insert("example.com/x".into(), 1);
        let conds = deletion_conditions(&report);
        let remaining = conds
            .iter()
            .find(|c| c.0 == "NamespaceContentRemaining")
            .cloned();
        assert_eq!(
            remaining,
            Some((
                "NamespaceContentRemaining".into(),
                "True".into(),
                "SomeResourcesRemain".into(),
                "Some resources are remaining: pods. has 2 resource instances".into()
            ))
        );
        let fin = conds.iter().find(|c| c.0 == "NamespaceFinalizersRemaining");
        assert_eq!(
            fin.map(|c| c.3.as_str()),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/x in 1 resource instances"
            )
        );
        assert!(!report.is_empty());
        assert!(ContentReport::default().is_empty());
    }

    #[test]
    fn conditions_are_rewritten_only_when_they_change() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let t1 = Time(k8s_openapi::jiff::Timestamp::now());
        let mut report = ContentReport::default();
        report.remaining.insert("pods.".into(), 1);
        let first = merged_conditions(&[], &report, &t0);
        let Some(first) = first else {
            panic!("first pass writes conditions");
        };
        assert_eq!(first.len(), 5);
        assert_eq!(merged_conditions(&first, &report, &t1), None);
        report.remaining.clear();
        let Some(second) = merged_conditions(&first, &report, &t1) else {
            panic!("a change is written");
        };
        let remaining = second
            .iter()
            .find(|c| c.type_ == "NamespaceContentRemaining");
        assert_eq!(remaining.map(|c| c.status.as_str()), Some("False"));
        assert_eq!(
            remaining.and_then(|c| c.last_transition_time.clone()),
            Some(t1.clone())
        );
        let discovery = second
            .iter()
            .find(|c| c.type_ == "NamespaceDeletionDiscoveryFailure");
        assert_eq!(
            discovery.and_then(|c| c.last_transition_time.clone()),
            Some(t0)
        );
        // Updated where they stand, foreign conditions kept in place.
        let mut with_other = vec![NamespaceCondition {
            type_: "example.com/Other".into(),
            status: "True".into(),
            ..Default::default()
        }];
        with_other.extend(first.iter().cloned());
        let Some(third) = merged_conditions(&with_other, &report, &t1) else {
            panic!("a change is written");
        };
        let order: Vec<&str> = third.iter().map(|c| c.type_.as_str()).collect();
        let before: Vec<&str> = with_other.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(order, before);
    }

    #[test]
    fn leftovers_without_finalizers_or_terminating_pods_are_a_content_failure() {
        let pods = resource::ALL
            .iter()
            .copied()
            .find(|r| r.plural == "pods" && r.group.is_empty())
            .expect("pods are served");
        let jobs = resource::ALL
            .iter()
            .copied()
            .find(|r| r.plural == "jobs" && r.group == "batch")
            .expect("jobs are served");
        assert_eq!(
            leftover_failure(pods, "team-a", false, 0).as_deref(),
            Some("unexpected items still remain in namespace: team-a for gvr: /v1, Resource=pods")
        );
        assert_eq!(
            leftover_failure(jobs, "team-a", false, 0).as_deref(),
            Some(
                "unexpected items still remain in namespace: team-a for gvr: batch/v1, Resource=jobs"
            )
        );
        assert_eq!(leftover_failure(jobs, "team-a", true, 0), None);
        assert_eq!(leftover_failure(pods, "team-a", false, 30), None);
    }

    #[test]
    fn running_pods_give_their_grace_period_as_the_estimate() {
        let pod = |phase: &str, grace: i64| Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                termination_grace_period_seconds: Some(grace),
                ..Default::default()
            }),
            status: Some(k8s_openapi::api::core::v1::PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            pods_termination_estimate(&[pod("Running", 30), pod("Pending", 45), pod("Failed", 90)]),
            45
        );
        assert_eq!(pods_termination_estimate(&[pod("Succeeded", 30)]), 0);
        assert_eq!(pods_termination_estimate(&[]), 0);
    }
}
