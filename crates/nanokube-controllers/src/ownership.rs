//! Which controller objects a dependent's change concerns (upstream's `getPodJobs`,
//! `GetPodReplicaSets`, `getDeploymentsForReplicaSet`), shared by the controllers that
//! watch what they own.

use crate::replicaset::{controller_of, labels_of};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};

/// The owners of kind `K` a dependent's change concerns: its controller when that is a `K`,
/// none when another kind controls it, and — for an orphan with labels, which one of them
/// may adopt — every `K` of its namespace whose non-empty selector matches it.
pub(crate) fn owners_for_dependent<K>(
    store: &Store<K>,
    dependent: &ObjectMeta,
    selector: impl Fn(&K) -> Option<&LabelSelector>,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let ns = dependent.namespace.clone().unwrap_or_default();
    let kind = K::kind(&());
    let group = K::group(&());
    match controller_of(dependent) {
        Some(r) => {
            let same_group = match r.api_version.split_once('/') {
                Some((g, _)) => g == group,
                None => group.is_empty(),
            };
            if r.kind == kind && same_group {
                vec![ObjectRef::new(&r.name).within(&ns)]
            } else {
                Vec::new()
            }
        }
        None => {
            let labels = labels_of(dependent);
            if labels.is_empty() {
                return Vec::new();
            }
            store
                .state()
                .iter()
                .filter(|o| o.meta().namespace.as_deref() == Some(ns.as_str()))
                .filter(|o| {
                    selector(o)
                        .and_then(crate::replicaset::selector_of)
                        .is_some_and(|sel| !sel.is_empty() && sel.matches(&labels))
                })
                .map(|o| ObjectRef::from_obj(o.as_ref()))
                .collect()
        }
    }
}
