//! Pods, and the pod spec / pod template rules every workload kind reuses (core/v1
//! `SetDefaults_PodSpec`, `ValidatePodSpec`, `ValidatePodTemplateSpec`).

use super::decode_as;
use crate::field::{ErrorList, FieldError, child, index};
use crate::quantity::{self, Quantity};
use crate::resource::{PODS, ResourceInfo};
use crate::strategy::{Decoded, Strategy};
use crate::validation::{
    get, get_array, get_i64, get_str, inclusive_range_error, invalid_each, is_dns1123_label,
    is_dns1123_subdomain, object_at, set_default, str_or_empty, validate_annotations,
    validate_labels,
};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_PodSpec` and the defaults of everything inside it (containers, volumes,
/// probes), applied to a pod's or a template's `spec`.
pub fn default_pod_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    set_default(map, "dnsPolicy", json!("ClusterFirst"));
    set_default(map, "restartPolicy", json!("Always"));
    set_default(map, "terminationGracePeriodSeconds", json!(30));
    set_default(map, "securityContext", json!({}));
    set_default(map, "schedulerName", json!("default-scheduler"));
    // The v1 conversion mirrors serviceAccountName into the deprecated serviceAccount field.
    match (
        map.get("serviceAccountName").cloned(),
        map.get("serviceAccount").cloned(),
    ) {
        (Some(Value::String(n)), None | Some(Value::Null)) if !n.is_empty() => {
            map.insert("serviceAccount".into(), Value::String(n));
        }
        (None | Some(Value::Null), Some(Value::String(n))) if !n.is_empty() => {
            map.insert("serviceAccountName".into(), Value::String(n));
        }
        _ => {}
    }
    let host_network = map.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = map.get_mut(list) {
            for c in containers {
                default_container(c, host_network);
            }
        }
    }
    if let Some(Value::Array(volumes)) = map.get_mut("volumes") {
        for v in volumes {
            default_volume(v);
        }
    }
}

/// The pod template of a workload: the pod spec defaults of its `spec`.
pub fn default_pod_template(template: Option<&mut Value>) {
    if let Some(spec) = template.and_then(|t| t.get_mut("spec")) {
        default_pod_spec(spec);
    }
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (digests count as tagged).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Value, host_network: bool) {
    let Some(map) = c.as_object_mut() else { return };
    let image = map
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    set_default(map, "imagePullPolicy", json!(default_pull_policy(&image)));
    set_default(map, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(map, "terminationMessagePolicy", json!("File"));
    set_default(map, "resources", json!({}));
    if let Some(Value::Array(ports)) = map.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if host_network && let Some(cp) = p.get("containerPort").cloned() {
                set_default(p, "hostPort", cp);
            }
        }
    }
    if let Some(Value::Array(env)) = map.get_mut("env") {
        for e in env {
            if let Some(fr) = e
                .get_mut("valueFrom")
                .and_then(|v| v.get_mut("fieldRef"))
                .and_then(Value::as_object_mut)
            {
                set_default(fr, "apiVersion", json!("v1"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = map.get_mut(probe).and_then(Value::as_object_mut) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                set_default(h, "scheme", json!("HTTP"));
            }
        }
    }
}

fn default_volume(v: &mut Value) {
    let Some(map) = v.as_object_mut() else { return };
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = map.get_mut(source).and_then(Value::as_object_mut) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = map.get_mut("hostPath").and_then(Value::as_object_mut) {
        set_default(h, "type", json!(""));
    }
}

/// `SetDefaults_Pod`: a container with limits but no requests requests its limits.
fn default_requests_from_limits(spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for c in containers {
            let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) else {
                continue;
            };
            let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
                continue;
            };
            if limits.is_empty() {
                continue;
            }
            let requests = res.entry("requests").or_insert_with(|| json!({}));
            if requests.is_null() {
                *requests = json!({});
            }
            if let Some(req) = requests.as_object_mut() {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// QoS
// ---------------------------------------------------------------------------------------------

/// A quantity in a pod spec; one that does not parse counts as zero (decoding would have
/// refused it already). Unquoted JSON numbers are quantities too, as upstream's
/// `UnmarshalJSON` reads them.
fn spec_quantity(v: &Value) -> Quantity {
    let parsed = match v {
        Value::String(s) => quantity::parse(s.trim()),
        Value::Number(n) => quantity::parse(&n.to_string()),
        _ => return Quantity::default(),
    };
    parsed.unwrap_or_default()
}

/// The pod's QoS class (`GetPodQOS`): BestEffort without any cpu/memory request or limit,
/// Guaranteed when every container limits both and requests equal limits, else Burstable.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut requests: Vec<(String, Quantity)> = Vec::new();
    let mut limits: Vec<(String, Quantity)> = Vec::new();
    let mut guaranteed = true;
    let add = |acc: &mut Vec<(String, Quantity)>, k: &str, v: Quantity| match acc
        .iter_mut()
        .find(|(n, _)| n == k)
    {
        Some((_, total)) => *total += v,
        None => acc.push((k.to_string(), v)),
    };
    let containers = get_array(spec, &["containers"])
        .iter()
        .chain(get_array(spec, &["initContainers"]));
    for c in containers {
        for (k, v) in get(c, &["resources", "requests"])
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let q = spec_quantity(v);
            if (k == "cpu" || k == "memory") && q.signum() > 0 {
                add(&mut requests, k, q);
            }
        }
        let mut limited = Vec::new();
        for (k, v) in get(c, &["resources", "limits"])
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let q = spec_quantity(v);
            if (k == "cpu" || k == "memory") && q.signum() > 0 {
                add(&mut limits, k, q);
                limited.push(k.as_str());
            }
        }
        if !(limited.contains(&"cpu") && limited.contains(&"memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests
            .iter()
            .all(|(k, v)| limits.iter().any(|(lk, lv)| lk == k && lv == v))
    {
        return "Guaranteed";
    }
    "Burstable"
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// How a pod spec is validated where it appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodSpecRules {
    /// Pods need an image per container; templates may leave it for config management to fill.
    pub image_required: bool,
}

pub const POD: PodSpecRules = PodSpecRules {
    image_required: true,
};
pub const TEMPLATE: PodSpecRules = PodSpecRules {
    image_required: false,
};

const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `ValidatePodTemplateSpec`: template labels and annotations, then the pod spec at
/// `<path>.spec`. Workload kinds add their own restartPolicy rule on top.
pub fn validate_pod_template(
    template: Option<&Value>,
    path: &str,
    rules: PodSpecRules,
) -> ErrorList {
    let mut errs = Vec::new();
    let Some(template) = template.filter(|t| !t.is_null()) else {
        errs.push(FieldError::required(path, ""));
        return errs;
    };
    errs.extend(validate_labels(
        get(template, &["metadata", "labels"]),
        &child(path, "metadata.labels"),
    ));
    errs.extend(validate_annotations(
        get(template, &["metadata", "annotations"]),
        &child(path, "metadata.annotations"),
    ));
    errs.extend(validate_pod_spec(
        template.get("spec").unwrap_or(&Value::Null),
        &child(path, "spec"),
        rules,
    ));
    errs
}

/// `ValidatePodSpec` (the common cases) at `path` (`spec`, `spec.template.spec`, …).
pub fn validate_pod_spec(spec: &Value, path: &str, rules: PodSpecRules) -> ErrorList {
    let mut errs = Vec::new();
    let volumes = validate_volumes(spec, &child(path, "volumes"), &mut errs);
    let mut names: Vec<String> = Vec::new();
    let containers = get_array(spec, &["containers"]);
    if containers.is_empty() {
        errs.push(FieldError::required(child(path, "containers"), ""));
    }
    for (list, items) in [
        ("initContainers", get_array(spec, &["initContainers"])),
        ("containers", containers),
    ] {
        let list_path = child(path, list);
        for (i, c) in items.iter().enumerate() {
            validate_container(
                c,
                &index(&list_path, i),
                rules,
                &volumes,
                &mut names,
                &mut errs,
            );
        }
    }
    match get_str(spec, &["restartPolicy"]).unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "restartPolicy"), "")),
        p if !RESTART_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "restartPolicy"),
            &Value::from(p),
            RESTART_POLICIES,
        )),
        _ => {}
    }
    match get_str(spec, &["dnsPolicy"]).unwrap_or("") {
        "" => errs.push(FieldError::required(child(path, "dnsPolicy"), "")),
        p if !DNS_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "dnsPolicy"),
            &Value::from(p),
            DNS_POLICIES,
        )),
        _ => {}
    }
    if let Some(v) = spec.get("activeDeadlineSeconds").filter(|v| !v.is_null())
        && !v
            .as_i64()
            .is_some_and(|n| (1..=i64::from(i32::MAX)).contains(&n))
    {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            v,
            inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    errs.extend(validate_labels(
        spec.get("nodeSelector"),
        &child(path, "nodeSelector"),
    ));
    for (field, check) in [
        (
            "serviceAccountName",
            is_dns1123_subdomain as fn(&str) -> Vec<String>,
        ),
        ("nodeName", is_dns1123_subdomain),
        ("hostname", is_dns1123_label),
        ("subdomain", is_dns1123_label),
    ] {
        if let Some(v) = get_str(spec, &[field]).filter(|v| !v.is_empty()) {
            errs.extend(invalid_each(&child(path, field), v, check(v)));
        }
    }
    let tol_path = child(path, "tolerations");
    for (i, t) in get_array(spec, &["tolerations"]).iter().enumerate() {
        let p = index(&tol_path, i);
        let op = str_or_empty(t, &["operator"]);
        let key = str_or_empty(t, &["key"]);
        match op {
            "" | "Equal" => {
                if key.is_empty() {
                    errs.push(FieldError::invalid(child(&p, "operator"), &Value::from(op), "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
                }
            }
            "Exists" => {
                if !str_or_empty(t, &["value"]).is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        t.get("value").unwrap_or(&Value::Null),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            _ => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                &Value::from(op),
                &["Equal", "Exists"],
            )),
        }
        let effect = str_or_empty(t, &["effect"]);
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                child(&p, "effect"),
                &Value::from(effect),
                TAINT_EFFECTS,
            ));
        }
        if t.get("tolerationSeconds").is_some_and(|v| !v.is_null()) && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                &Value::from(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
    }
    errs
}

fn validate_volumes(spec: &Value, path: &str, errs: &mut ErrorList) -> Vec<String> {
    let mut names = Vec::new();
    for (i, v) in get_array(spec, &["volumes"]).iter().enumerate() {
        let p = index(path, i);
        let name = str_or_empty(v, &["name"]);
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else if names.iter().any(|n| n == name) {
            errs.push(FieldError::duplicate(child(&p, "name"), &Value::from(name)));
        } else {
            errs.extend(invalid_each(
                &child(&p, "name"),
                name,
                is_dns1123_label(name),
            ));
        }
        let sources = v.as_object().map_or(0, |m| {
            m.iter()
                .filter(|(k, v)| *k != "name" && !v.is_null())
                .count()
        });
        if sources == 0 {
            errs.push(FieldError::required(
                p.clone(),
                "must specify a volume type",
            ));
        } else if sources > 1 {
            errs.push(FieldError::forbidden(
                p.clone(),
                "may not specify more than 1 volume type",
            ));
        }
        names.push(name.to_string());
    }
    names
}

fn validate_container(
    c: &Value,
    path: &str,
    rules: PodSpecRules,
    volumes: &[String],
    names: &mut Vec<String>,
    errs: &mut ErrorList,
) {
    let name = str_or_empty(c, &["name"]);
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        errs.extend(invalid_each(
            &child(path, "name"),
            name,
            is_dns1123_label(name),
        ));
        if names.iter().any(|n| n == name) {
            errs.push(FieldError::duplicate(
                child(path, "name"),
                &Value::from(name),
            ));
        } else {
            names.push(name.to_string());
        }
    }
    let image = str_or_empty(c, &["image"]);
    if rules.image_required && image.is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    } else if image.len() != image.trim().len() {
        errs.push(FieldError::invalid(
            child(path, "image"),
            &Value::from(image),
            "must not have leading or trailing whitespace",
        ));
    }
    match str_or_empty(c, &["imagePullPolicy"]) {
        "" => errs.push(FieldError::required(child(path, "imagePullPolicy"), "")),
        p if !PULL_POLICIES.contains(&p) => errs.push(FieldError::not_supported(
            child(path, "imagePullPolicy"),
            &Value::from(p),
            PULL_POLICIES,
        )),
        _ => {}
    }
    match str_or_empty(c, &["terminationMessagePolicy"]) {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            child(path, "terminationMessagePolicy"),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        p => errs.push(FieldError::invalid(
            child(path, "terminationMessagePolicy"),
            &Value::from(p),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
    }
    let ports_path = child(path, "ports");
    let mut port_names: Vec<&str> = Vec::new();
    for (i, p) in get_array(c, &["ports"]).iter().enumerate() {
        let pp = index(&ports_path, i);
        let port_name = str_or_empty(p, &["name"]);
        if !port_name.is_empty() {
            errs.extend(invalid_each(
                &child(&pp, "name"),
                port_name,
                is_valid_port_name(port_name),
            ));
            if port_names.contains(&port_name) {
                errs.push(FieldError::duplicate(
                    child(&pp, "name"),
                    &Value::from(port_name),
                ));
            }
            port_names.push(port_name);
        }
        match get_i64(p, &["containerPort"]) {
            None | Some(0) => errs.push(FieldError::required(child(&pp, "containerPort"), "")),
            Some(n) if !(1..=65535).contains(&n) => errs.push(FieldError::invalid(
                child(&pp, "containerPort"),
                &Value::from(n),
                inclusive_range_error(1, 65535),
            )),
            _ => {}
        }
        if let Some(n) = get_i64(p, &["hostPort"]).filter(|n| *n != 0 && !(1..=65535).contains(n)) {
            errs.push(FieldError::invalid(
                child(&pp, "hostPort"),
                &Value::from(n),
                inclusive_range_error(1, 65535),
            ));
        }
        match str_or_empty(p, &["protocol"]) {
            "" => errs.push(FieldError::required(child(&pp, "protocol"), "")),
            proto if !PROTOCOLS.contains(&proto) => errs.push(FieldError::not_supported(
                child(&pp, "protocol"),
                &Value::from(proto),
                PROTOCOLS,
            )),
            _ => {}
        }
    }
    let env_path = child(path, "env");
    for (i, e) in get_array(c, &["env"]).iter().enumerate() {
        if str_or_empty(e, &["name"]).is_empty() {
            errs.push(FieldError::required(
                child(&index(&env_path, i), "name"),
                "",
            ));
        }
    }
    let mounts_path = child(path, "volumeMounts");
    for (i, m) in get_array(c, &["volumeMounts"]).iter().enumerate() {
        let mp = index(&mounts_path, i);
        let vol = str_or_empty(m, &["name"]);
        if vol.is_empty() {
            errs.push(FieldError::required(child(&mp, "name"), ""));
        } else if !volumes.iter().any(|v| v == vol) {
            errs.push(FieldError::not_found(child(&mp, "name"), &Value::from(vol)));
        }
        if str_or_empty(m, &["mountPath"]).is_empty() {
            errs.push(FieldError::required(child(&mp, "mountPath"), ""));
        }
    }
}

/// apimachinery `IsValidPortName` (IANA service names).
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if !port
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Strategy
// ---------------------------------------------------------------------------------------------

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub struct PodStrategy;

impl Strategy for PodStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &PODS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::Pod>(object)
    }
    fn default(&self, object: &mut Value) {
        if let Some(spec) = object.get_mut("spec") {
            default_pod_spec(spec);
            default_requests_from_limits(spec);
        }
        if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
            set_default(spec, "enableServiceLinks", json!(true));
        }
    }
    fn prepare_for_create(&self, object: &mut Value) {
        // What the Priority and DefaultTolerationSeconds admission plugins add to every pod.
        if let Some(spec) = object_at(object, &["spec"]) {
            set_default(spec, "priority", json!(0));
            set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
            add_default_tolerations(spec);
        }
        let qos = qos_class(object.get("spec").unwrap_or(&Value::Null));
        if let Some(map) = object.as_object_mut() {
            map.insert(
                "status".into(),
                json!({"phase": "Pending", "qosClass": qos}),
            );
        }
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_pod_spec(object.get("spec").unwrap_or(&Value::Null), "spec", POD)
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        let ns = new.get("spec").unwrap_or(&Value::Null);
        let os = old.get("spec").unwrap_or(&Value::Null);
        let new_ads = ns.get("activeDeadlineSeconds").filter(|v| !v.is_null());
        let old_ads = os.get("activeDeadlineSeconds").filter(|v| !v.is_null());
        match (new_ads, old_ads) {
            (None, Some(_)) => errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                &Value::Null,
                "must not update from a positive integer to nil value",
            )),
            (Some(n), Some(o)) if n.as_i64() > o.as_i64() => errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            )),
            _ => {}
        }
        if munged_spec(ns, os) != *os {
            errs.push(FieldError::forbidden("spec", POD_UPDATE_FORBIDDEN));
        }
        errs
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }
    fn field_value(&self, object: &Value, label: &str) -> String {
        match label {
            "spec.hostNetwork" => (crate::validation::get_bool(object, &["spec", "hostNetwork"])
                == Some(true))
            .to_string(),
            _ => {
                let path: Vec<&str> = label.split('.').collect();
                str_or_empty(object, &path).to_string()
            }
        }
    }
    fn returns_deleted_object(&self) -> bool {
        true
    }
}

/// The new spec with every field a pod update may change set back to the old value: equal to
/// the old spec exactly when the update changes nothing else.
fn munged_spec(new: &Value, old: &Value) -> Value {
    let mut m = new.clone();
    for list in ["containers", "initContainers"] {
        if let (Some(Value::Array(nc)), Some(oc)) =
            (m.get_mut(list), old.get(list).and_then(Value::as_array))
            && nc.len() == oc.len()
        {
            for (n, o) in nc.iter_mut().zip(oc) {
                if let Some(nm) = n.as_object_mut() {
                    match o.get("image") {
                        Some(img) => nm.insert("image".into(), img.clone()),
                        None => nm.remove("image"),
                    };
                }
            }
        }
    }
    let Some(map) = m.as_object_mut() else {
        return m;
    };
    match old.get("activeDeadlineSeconds") {
        Some(v) => map.insert("activeDeadlineSeconds".into(), v.clone()),
        None => map.remove("activeDeadlineSeconds"),
    };
    let old_tol = get_array(old, &["tolerations"]);
    let new_tol = map
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if old_tol.iter().all(|t| new_tol.contains(t)) {
        match old.get("tolerations") {
            Some(v) => map.insert("tolerations".into(), v.clone()),
            None => map.remove("tolerations"),
        };
    }
    if old
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|n| n < 0)
        && map
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(1)
        && let Some(v) = old.get("terminationGracePeriodSeconds")
    {
        map.insert("terminationGracePeriodSeconds".into(), v.clone());
    }
    m
}

/// The DefaultTolerationSeconds admission plugin: tolerate not-ready and unreachable nodes
/// for 300 s unless the pod already tolerates them.
fn add_default_tolerations(spec: &mut Map<String, Value>) {
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(tolerations) = list.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let present = tolerations.iter().any(|t| {
            let effect = str_or_empty(t, &["effect"]);
            let k = str_or_empty(t, &["key"]);
            (effect.is_empty() || effect == "NoExecute")
                && (k == key || (k.is_empty() && str_or_empty(t, &["operator"]) == "Exists"))
        });
        if !present {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"containers": [{"name": "c", "image": "nginx"}, {"name": "d", "image": "busybox:1.36"}]}})
    }

    #[test]
    fn pod_defaults_follow_set_defaults_pod_spec() {
        let mut p = pod();
        PodStrategy.default(&mut p);
        PodStrategy.prepare_for_create(&mut p);
        let s = &p["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["terminationGracePeriodSeconds"], 30);
        assert_eq!(s["dnsPolicy"], "ClusterFirst");
        assert_eq!(s["schedulerName"], "default-scheduler");
        assert_eq!(s["securityContext"], json!({}));
        assert_eq!(s["enableServiceLinks"], true);
        assert_eq!(s["priority"], 0);
        assert_eq!(s["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(s["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            s["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(s["containers"][0]["terminationMessagePolicy"], "File");
        assert_eq!(s["containers"][0]["resources"], json!({}));
        assert_eq!(s["tolerations"].as_array().map(Vec::len), Some(2));
        assert_eq!(s["tolerations"][0]["tolerationSeconds"], 300);
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert!(
            PodStrategy.validate(&p).is_empty(),
            "{:?}",
            PodStrategy.validate(&p)
        );
    }

    #[test]
    fn pod_without_containers_is_invalid() {
        let mut p = json!({"metadata": {"name": "x"}, "spec": {}});
        PodStrategy.default(&mut p);
        let errs = PodStrategy.validate(&p);
        assert_eq!(errs[0].to_string(), "spec.containers: Required value");
    }

    #[test]
    fn qos_is_guaranteed_when_limits_equal_requests() {
        let mut p = pod();
        p["spec"]["containers"] = json!([{"name": "c", "image": "x", "resources": {"limits": {"cpu": "100m", "memory": "1Gi"}}}]);
        PodStrategy.default(&mut p);
        assert_eq!(qos_class(&p["spec"]), "Guaranteed");
        p["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("50m");
        assert_eq!(qos_class(&p["spec"]), "Burstable");
    }

    #[test]
    fn qos_compares_quantities_by_exact_value_across_spellings() {
        let spec = |requests: Value, limits: Value| json!({"containers": [{"name": "c", "resources": {"requests": requests, "limits": limits}}]});
        let same = spec(
            json!({"cpu": "1", "memory": "1Gi"}),
            json!({"cpu": "1000m", "memory": "1024Mi"}),
        );
        assert_eq!(qos_class(&same), "Guaranteed");
        let one_nano_apart = spec(
            json!({"cpu": "1", "memory": "1Gi"}),
            json!({"cpu": "1000000001n", "memory": "1Gi"}),
        );
        assert_eq!(qos_class(&one_nano_apart), "Burstable");
        let zero_requests_do_not_count = spec(json!({"cpu": "0m"}), json!({}));
        assert_eq!(qos_class(&zero_requests_do_not_count), "BestEffort");
    }

    #[test]
    fn pod_update_may_change_only_images() {
        let mut old = pod();
        PodStrategy.default(&mut old);
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(PodStrategy.validate_update(&new, &old).is_empty());
        new["spec"]["restartPolicy"] = json!("Never");
        let errs = PodStrategy.validate_update(&new, &old);
        assert!(
            errs[0]
                .to_string()
                .starts_with("spec: Forbidden: pod updates may not change fields other than")
        );
    }

    #[test]
    fn duplicate_container_names_and_bad_ports_are_reported() {
        let mut p = json!({"spec": {"containers": [
            {"name": "c", "image": "x", "ports": [{"containerPort": 70000}]},
            {"name": "c", "image": "x"}]}});
        PodStrategy.default(&mut p);
        let texts: Vec<String> = PodStrategy
            .validate(&p)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            texts,
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[1].name: Duplicate value: \"c\"",
            ]
        );
    }
}
