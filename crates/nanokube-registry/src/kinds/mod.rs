//! One [`Strategy`] per served kind, and [`strategy_for`] to find it.
//!
//! Strategies work on `serde_json::Value`s at the storage version and decode through the
//! k8s-openapi types ([`crate::codec::roundtrip`]). The pod spec rules in [`pod`] are shared
//! by every workload's template; the schedule parser of CronJobs is [`cronjob::parse_schedule`].

pub mod apps;
pub mod core;
pub mod cronjob;
pub mod job;
pub mod namespace;
pub mod pod;
pub mod rbac;

pub use cronjob::{Schedule, parse_schedule};

use crate::field::ErrorList;
use crate::resource::ResourceInfo;
use crate::strategy::{Decoded, Strategy};
use serde_json::Value;

/// Decodes through the k8s-openapi type `T` (see [`crate::codec::roundtrip`]).
pub(crate) fn decode_as<T: serde::de::DeserializeOwned + serde::Serialize>(
    object: Value,
) -> Result<Decoded, String> {
    crate::codec::roundtrip::<T>(object)
}

/// The strategy of a served resource (any version: batch/v1beta1 CronJob uses the batch/v1
/// CronJob strategy). A resource this registry does not know gets a pass-through strategy
/// that accepts any object, so this never panics.
pub fn strategy_for(info: &ResourceInfo) -> &'static dyn Strategy {
    match (info.group, info.kind) {
        ("", "Namespace") => &namespace::NamespaceStrategy,
        ("", "Pod") => &pod::PodStrategy,
        ("", "ServiceAccount") => &core::ServiceAccountStrategy,
        ("", "Secret") => &core::SecretStrategy,
        ("", "ConfigMap") => &core::ConfigMapStrategy,
        ("", "Event") => &core::EventStrategy,
        ("", "Node") => &core::NodeStrategy,
        ("", "Service") => &core::ServiceStrategy,
        ("", "Endpoints") => &core::EndpointsStrategy,
        ("apps", "Deployment") => &apps::DeploymentStrategy,
        ("apps", "ReplicaSet") => &apps::ReplicaSetStrategy,
        ("batch", "Job") => &job::JobStrategy,
        ("batch", "CronJob") => &cronjob::CronJobStrategy,
        ("rbac.authorization.k8s.io", "Role") => &rbac::RoleStrategy,
        ("rbac.authorization.k8s.io", "ClusterRole") => &rbac::ClusterRoleStrategy,
        ("rbac.authorization.k8s.io", "RoleBinding") => &rbac::RoleBindingStrategy,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => &rbac::ClusterRoleBindingStrategy,
        ("coordination.k8s.io", "Lease") => &core::LeaseStrategy,
        ("events.k8s.io", "Event") => &core::EventV1Strategy,
        _ => &Unstructured,
    }
}

/// A resource served without a schema of its own: stored as sent.
static UNSTRUCTURED_INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Unknown",
    plural: "unknown",
    singular: "unknown",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: &[],
    subresources: &[],
    storage_version: "v1",
    deprecation_warning: None,
};

struct Unstructured;

impl Strategy for Unstructured {
    fn resource(&self) -> &'static ResourceInfo {
        &UNSTRUCTURED_INFO
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        Ok(Decoded {
            object,
            unknown_fields: Vec::new(),
        })
    }
    fn validate(&self, _object: &Value) -> ErrorList {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{ALL, CRON_JOBS, CRON_JOBS_V1BETA1};
    use serde_json::json;

    #[test]
    fn every_served_resource_has_its_own_strategy() {
        // Reviews are answered, never stored, so they need no strategy.
        for info in ALL.iter().filter(|r| !r.is_review()) {
            let s = strategy_for(info);
            assert_eq!(s.resource().kind, info.kind, "{}", info.plural);
            assert_eq!(s.resource().group, info.group, "{}", info.plural);
            assert_eq!(
                s.resource().storage_version,
                info.storage_version,
                "{}",
                info.plural
            );
        }
    }

    #[test]
    fn cronjob_v1beta1_uses_the_v1_strategy() {
        assert_eq!(strategy_for(&CRON_JOBS_V1BETA1).resource(), &CRON_JOBS);
    }

    #[test]
    fn strategies_never_panic_on_odd_json() {
        let odd = [
            json!(null),
            json!(42),
            json!("x"),
            json!([1, 2]),
            json!({}),
            json!({"metadata": 3, "spec": [], "status": "x"}),
            json!({"spec": {"template": 1, "jobTemplate": {"spec": 5}, "containers": "no", "selector": 7}}),
            json!({"spec": {"containers": [1, null, {"name": 5, "ports": [null, {"containerPort": "x"}]}]}}),
            json!({"rules": [null], "subjects": [3], "roleRef": 4, "data": [1]}),
        ];
        for info in ALL {
            let s = strategy_for(info);
            for o in &odd {
                let mut a = o.clone();
                let _ = s.decode(a.clone());
                s.default(&mut a);
                s.prepare_for_create(&mut a);
                let _ = s.validate(&a);
                let _ = s.warnings_on_create(&a);
                let mut b = o.clone();
                s.prepare_for_update(&mut b, &a);
                let _ = s.validate_update(&b, &a);
                for label in s.field_labels() {
                    let _ = s.field_value(&a, label);
                }
            }
        }
    }

    #[test]
    fn seed_objects_decode_without_unknown_fields() {
        for (info, obj) in [
            (
                &crate::resource::SERVICE_ACCOUNTS,
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "job-robot"}}),
            ),
            (
                &crate::resource::JOBS,
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
                "spec": {"backoffLimit": 4, "template": {"metadata": {"labels": {"app": "pi"}}, "spec": {"restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}]}}}}),
            ),
        ] {
            let d = strategy_for(info).decode(obj).expect("decodes");
            assert!(d.unknown_fields.is_empty(), "{:?}", d.unknown_fields);
        }
    }
}
