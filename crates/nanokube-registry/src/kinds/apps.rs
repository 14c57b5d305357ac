//! apps/v1 Deployment and ReplicaSet: `SetDefaults_Deployment` / `SetDefaults_ReplicaSet`,
//! `ValidateDeployment` / `ValidateReplicaSet` and their update rules.

use super::decode_as;
use super::pod::{TEMPLATE, default_pod_template, validate_pod_template};
use crate::field::{ErrorList, FieldError};
use crate::resource::{DEPLOYMENTS, REPLICA_SETS, ResourceInfo};
use crate::strategy::{Decoded, ScaleInfo, Strategy};
use crate::validation::{
    get, get_i64, go_string_map, invalid_rendered, selector_is_empty, selector_matches,
    set_default, str_or_empty, validate_immutable, validate_label_selector, validate_nonnegative,
};
use serde_json::{Value, json};

const SCALE: ScaleInfo = ScaleInfo {
    spec_replicas: "/spec/replicas",
    status_replicas: "/status/replicas",
    selector: "/spec/selector",
};

/// `ValidatePodTemplateSpecForReplicaSet` plus the selector rules shared by both kinds.
fn validate_replicated_spec(spec: &Value, kind_word: &str) -> ErrorList {
    let mut errs = validate_nonnegative(spec, &["replicas"], "spec.replicas");
    errs.extend(validate_nonnegative(
        spec,
        &["minReadySeconds"],
        "spec.minReadySeconds",
    ));
    let selector = spec.get("selector").filter(|s| !s.is_null());
    match selector {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            errs.extend(validate_label_selector(Some(sel), "spec.selector"));
            if selector_is_empty(Some(sel)) {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel,
                    format!("empty selector is invalid for {kind_word}"),
                ));
            }
        }
    }
    let template = spec.get("template").filter(|t| !t.is_null());
    if let (Some(sel), Some(t)) = (selector, template) {
        let labels = get(t, &["metadata", "labels"]);
        if !selector_is_empty(Some(sel)) && !selector_matches(Some(sel), labels) {
            errs.push(invalid_rendered(
                "spec.template.metadata.labels",
                go_string_map(labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    errs.extend(validate_pod_template(template, "spec.template", TEMPLATE));
    if template.is_some() {
        let restart = str_or_empty(spec, &["template", "spec", "restartPolicy"]);
        if restart != "Always" {
            errs.push(FieldError::not_supported(
                "spec.template.spec.restartPolicy",
                &Value::from(restart),
                &["Always"],
            ));
        }
        if get(spec, &["template", "spec", "activeDeadlineSeconds"]).is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in ReplicaSet is not Supported",
            ));
        }
    }
    errs
}

fn is_percent_or_int(v: &Value, path: &str, errs: &mut ErrorList) -> Option<f64> {
    match v {
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(0.0);
            if n < 0.0 {
                errs.push(FieldError::invalid(
                    path,
                    v,
                    "must be greater than or equal to 0",
                ));
            }
            Some(n)
        }
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => {
                if p < 0 {
                    errs.push(FieldError::invalid(
                        path,
                        v,
                        "must be greater than or equal to 0",
                    ));
                }
                if p > 100 {
                    errs.push(FieldError::invalid(
                        path,
                        v,
                        "must not be greater than 100%",
                    ));
                }
                Some(p as f64)
            }
            None => {
                errs.push(FieldError::invalid(path, v, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
                None
            }
        },
        _ => None,
    }
}

fn validate_deployment_spec(spec: &Value) -> ErrorList {
    let mut errs = validate_replicated_spec(spec, "deployment");
    let strategy_type = str_or_empty(spec, &["strategy", "type"]);
    let rolling = get(spec, &["strategy", "rollingUpdate"]).filter(|v| !v.is_null());
    match strategy_type {
        "Recreate" => {
            if rolling.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = rolling {
                let unavailable = ru.get("maxUnavailable").map(|v| {
                    is_percent_or_int(v, "spec.strategy.rollingUpdate.maxUnavailable", &mut errs)
                });
                let surge = ru.get("maxSurge").map(|v| {
                    is_percent_or_int(v, "spec.strategy.rollingUpdate.maxSurge", &mut errs)
                });
                if unavailable.flatten() == Some(0.0) && surge.flatten() == Some(0.0) {
                    errs.push(FieldError::invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        ru.get("maxUnavailable").unwrap_or(&Value::Null),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        }
        "" => errs.push(FieldError::required("spec.strategy.type", "")),
        t => errs.push(FieldError::not_supported(
            "spec.strategy.type",
            &Value::from(t),
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs.extend(validate_nonnegative(
        spec,
        &["revisionHistoryLimit"],
        "spec.revisionHistoryLimit",
    ));
    if let Some(pds) = get_i64(spec, &["progressDeadlineSeconds"]) {
        errs.extend(validate_nonnegative(
            spec,
            &["progressDeadlineSeconds"],
            "spec.progressDeadlineSeconds",
        ));
        if pds <= get_i64(spec, &["minReadySeconds"]).unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                &Value::from(pds),
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

pub struct DeploymentStrategy;

impl Strategy for DeploymentStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &DEPLOYMENTS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::apps::v1::Deployment>(object)
    }
    fn default(&self, object: &mut Value) {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        set_default(spec, "replicas", json!(1));
        let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
        if strategy.is_null() {
            *strategy = json!({});
        }
        if let Some(st) = strategy.as_object_mut() {
            set_default(st, "type", json!("RollingUpdate"));
            if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
                if ru.is_null() {
                    *ru = json!({});
                }
                if let Some(ru) = ru.as_object_mut() {
                    set_default(ru, "maxUnavailable", json!("25%"));
                    set_default(ru, "maxSurge", json!("25%"));
                }
            }
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
        default_pod_template(spec.get_mut("template"));
    }
    fn prepare_for_create(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_deployment_spec(object.get("spec").unwrap_or(&Value::Null))
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_immutable(
            get(new, &["spec", "selector"]),
            get(old, &["spec", "selector"]),
            "spec.selector",
        ));
        errs
    }
    fn scale(&self) -> Option<ScaleInfo> {
        Some(SCALE)
    }
}

pub struct ReplicaSetStrategy;

impl Strategy for ReplicaSetStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &REPLICA_SETS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::apps::v1::ReplicaSet>(object)
    }
    fn default(&self, object: &mut Value) {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        set_default(spec, "replicas", json!(1));
        default_pod_template(spec.get_mut("template"));
    }
    fn prepare_for_create(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
            map.insert("status".into(), json!({"replicas": 0}));
        }
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_replicated_spec(object.get("spec").unwrap_or(&Value::Null), "replicaset")
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_immutable(
            get(new, &["spec", "selector"]),
            get(old, &["spec", "selector"]),
            "spec.selector",
        ));
        errs
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }
    fn field_value(&self, object: &Value, label: &str) -> String {
        match label {
            "status.replicas" => get_i64(object, &["status", "replicas"])
                .unwrap_or(0)
                .to_string(),
            _ => String::new(),
        }
    }
    fn scale(&self) -> Option<ScaleInfo> {
        Some(SCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}})
    }

    #[test]
    fn deployment_defaults_follow_apps_v1() {
        let mut d = deployment();
        DeploymentStrategy.default(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(
            DeploymentStrategy.validate(&d).is_empty(),
            "{:?}",
            DeploymentStrategy.validate(&d)
        );
    }

    #[test]
    fn selector_must_match_template_and_stay_immutable() {
        let mut d = deployment();
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        DeploymentStrategy.default(&mut d);
        let texts: Vec<String> = DeploymentStrategy
            .validate(&d)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            texts,
            vec![
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
            ]
        );
        let mut old = deployment();
        DeploymentStrategy.default(&mut old);
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "x": "y"}});
        new["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        let errs = DeploymentStrategy.validate_update(&new, &old);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().ends_with("field is immutable"));
    }

    #[test]
    fn replicaset_requires_a_selector() {
        let mut rs = deployment();
        if let Some(s) = rs["spec"].as_object_mut() {
            s.remove("selector");
        }
        ReplicaSetStrategy.default(&mut rs);
        assert_eq!(
            ReplicaSetStrategy.validate(&rs)[0].to_string(),
            "spec.selector: Required value"
        );
        assert_eq!(ReplicaSetStrategy.scale(), Some(SCALE));
    }
}
