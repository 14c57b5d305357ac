//! The simpler core/v1 kinds (Service, ServiceAccount, Secret, ConfigMap, Event, Node,
//! Endpoints) plus coordination.k8s.io Lease and events.k8s.io Event.

use super::decode_as;
use crate::field::{ErrorList, FieldError, child, index, key};
use crate::resource::{
    CONFIG_MAPS, ENDPOINTS, EVENTS, EVENTS_V1, LEASES, NODES, ResourceInfo, SECRETS,
    SERVICE_ACCOUNTS, SERVICES,
};
use crate::strategy::{Decoded, NameRule, Strategy};
use crate::validation::{
    get, get_array, get_bool, get_i64, get_object, inclusive_range_error, invalid_each,
    is_config_map_key, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, set_default,
    str_or_empty, validate_labels,
};
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Secrets and ConfigMaps may hold at most 1 MiB (`MaxSecretSize`, `MaxConfigMapSize`).
const MAX_DATA_SIZE: usize = 1024 * 1024;

fn is_unset(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

// ---------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

pub struct ServiceStrategy;

impl Strategy for ServiceStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &SERVICES
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::Service>(object)
    }
    /// `SetDefaults_Service` (IP families as the single-stack IPv4 allocator sets them).
    fn default(&self, object: &mut Value) {
        let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        set_default(spec, "type", json!("ClusterIP"));
        set_default(spec, "sessionAffinity", json!("None"));
        let ty = spec
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
            let cfg = spec
                .entry("sessionAffinityConfig")
                .or_insert_with(|| json!({}));
            if let Some(cfg) = cfg.as_object_mut() {
                let cip = cfg.entry("clientIP").or_insert_with(|| json!({}));
                if let Some(cip) = cip.as_object_mut() {
                    set_default(cip, "timeoutSeconds", json!(10800));
                }
            }
        }
        if let Some(Value::Array(ports)) = spec.get_mut("ports") {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                set_default(p, "protocol", json!("TCP"));
                let target_unset = match p.get("targetPort") {
                    None | Some(Value::Null) => true,
                    Some(Value::Number(n)) => n.as_i64() == Some(0),
                    Some(Value::String(s)) => s.is_empty(),
                    _ => false,
                };
                if target_unset && let Some(port) = p.get("port").cloned() {
                    p.insert("targetPort".into(), port);
                }
            }
        }
        if ty != "ExternalName" {
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
            set_default(spec, "ipFamilies", json!(["IPv4"]));
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            set_default(spec, "externalTrafficPolicy", json!("Cluster"));
        }
        if ty == "LoadBalancer" {
            set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
    }
    fn prepare_for_create(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.insert("status".into(), json!({"loadBalancer": {}}));
        }
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = Vec::new();
        let spec = object.get("spec").unwrap_or(&Value::Null);
        let ty = str_or_empty(spec, &["type"]);
        if !SERVICE_TYPES.contains(&ty) {
            errs.push(FieldError::not_supported(
                "spec.type",
                &Value::from(ty),
                SERVICE_TYPES,
            ));
        }
        let headless = str_or_empty(spec, &["clusterIP"]) == "None";
        let ports = get_array(spec, &["ports"]);
        if ty == "ExternalName" {
            let name = str_or_empty(spec, &["externalName"]);
            if name.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(invalid_each(
                    "spec.externalName",
                    name,
                    is_dns1123_subdomain(name),
                ));
            }
        } else if ports.is_empty() && !headless {
            errs.push(FieldError::required("spec.ports", ""));
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let pp = index("spec.ports", i);
            let name = str_or_empty(p, &["name"]);
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(child(&pp, "name"), ""));
            } else if !name.is_empty() {
                errs.extend(invalid_each(
                    &child(&pp, "name"),
                    name,
                    is_dns1123_label(name),
                ));
                if names.contains(&name) {
                    errs.push(FieldError::duplicate(
                        child(&pp, "name"),
                        &Value::from(name),
                    ));
                }
                names.push(name);
            }
            match get_i64(p, &["port"]) {
                Some(n) if (1..=65535).contains(&n) => {}
                _ => errs.push(FieldError::invalid(
                    child(&pp, "port"),
                    p.get("port").unwrap_or(&json!(0)),
                    inclusive_range_error(1, 65535),
                )),
            }
            let proto = str_or_empty(p, &["protocol"]);
            if !PROTOCOLS.contains(&proto) {
                errs.push(FieldError::not_supported(
                    child(&pp, "protocol"),
                    &Value::from(proto),
                    PROTOCOLS,
                ));
            }
            if let Some(n) = p
                .get("targetPort")
                .and_then(Value::as_i64)
                .filter(|n| !(1..=65535).contains(n))
            {
                errs.push(FieldError::invalid(
                    child(&pp, "targetPort"),
                    &Value::from(n),
                    inclusive_range_error(1, 65535),
                ));
            }
        }
        errs.extend(validate_labels(spec.get("selector"), "spec.selector"));
        match str_or_empty(spec, &["sessionAffinity"]) {
            "None" | "ClientIP" => {}
            s => errs.push(FieldError::not_supported(
                "spec.sessionAffinity",
                &Value::from(s),
                &["ClientIP", "None"],
            )),
        }
        errs
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        // A cluster IP, once allocated, stays (unless the service becomes ExternalName).
        let old_ip = get(old, &["spec", "clusterIP"])
            .and_then(Value::as_str)
            .unwrap_or("");
        let new_ip = get(new, &["spec", "clusterIP"])
            .and_then(Value::as_str)
            .unwrap_or("");
        if !old_ip.is_empty()
            && new_ip != old_ip
            && str_or_empty(new, &["spec", "type"]) != "ExternalName"
        {
            errs.push(FieldError::immutable(
                "spec.clusterIPs[0]",
                &Value::from(new_ip),
            ));
        }
        errs
    }
    fn name_rule(&self) -> NameRule {
        NameRule::Label
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.clusterIP", "spec.type"]
    }
    fn field_value(&self, object: &Value, label: &str) -> String {
        let path: Vec<&str> = label.split('.').collect();
        str_or_empty(object, &path).to_string()
    }
    fn returns_deleted_object(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------
// ServiceAccount
// ---------------------------------------------------------------------------------------------

pub struct ServiceAccountStrategy;

impl Strategy for ServiceAccountStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &SERVICE_ACCOUNTS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::ServiceAccount>(object)
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = Vec::new();
        for (i, s) in get_array(object, &["secrets"]).iter().enumerate() {
            let name = str_or_empty(s, &["name"]);
            if !name.is_empty() {
                errs.extend(invalid_each(
                    &child(&index("secrets", i), "name"),
                    name,
                    is_dns1123_subdomain(name),
                ));
            }
        }
        errs
    }
    fn returns_deleted_object(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------
// Secret and ConfigMap
// ---------------------------------------------------------------------------------------------

fn data_size(map: Option<&Map<String, Value>>, decode: bool) -> usize {
    map.map_or(0, |m| {
        m.values()
            .map(|v| {
                let s = v.as_str().unwrap_or("");
                if decode {
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .map_or(s.len(), |b| b.len())
                } else {
                    s.len()
                }
            })
            .sum()
    })
}

fn validate_keys(map: Option<&Map<String, Value>>, path: &str, errs: &mut ErrorList) {
    for k in map.into_iter().flat_map(|m| m.keys()) {
        for m in is_config_map_key(k) {
            errs.push(FieldError::invalid(
                key(path, k),
                &Value::from(k.as_str()),
                m,
            ));
        }
    }
}

/// `immutable: true` objects keep their data and stay immutable.
fn validate_immutable_data(new: &Value, old: &Value, fields: &[&str]) -> ErrorList {
    let mut errs = Vec::new();
    if get_bool(old, &["immutable"]) != Some(true) {
        return errs;
    }
    if get_bool(new, &["immutable"]) != Some(true) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        if new.get(*f).filter(|v| !v.is_null()) != old.get(*f).filter(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(
                *f,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

pub struct SecretStrategy;

impl Strategy for SecretStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &SECRETS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::Secret>(object)
    }
    /// `SetDefaults_Secret` plus the v1 conversion that folds `stringData` into `data`.
    fn default(&self, object: &mut Value) {
        let Some(map) = object.as_object_mut() else {
            return;
        };
        set_default(map, "type", json!("Opaque"));
        if let Some(Value::Object(string_data)) = map.remove("stringData") {
            let data = map.entry("data").or_insert_with(|| json!({}));
            if !data.is_object() {
                *data = json!({});
            }
            if let Some(data) = data.as_object_mut() {
                for (k, v) in string_data {
                    let s = v.as_str().unwrap_or("");
                    data.insert(
                        k,
                        Value::from(base64::engine::general_purpose::STANDARD.encode(s)),
                    );
                }
            }
        }
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = Vec::new();
        let data = get_object(object, &["data"]);
        validate_keys(data, "data", &mut errs);
        for (k, v) in data.into_iter().flatten() {
            if let Some(s) = v.as_str()
                && base64::engine::general_purpose::STANDARD.decode(s).is_err()
            {
                errs.push(FieldError::invalid(
                    key("data", k),
                    &Value::from("<secret contents redacted>"),
                    "must be base64-encoded",
                ));
            }
        }
        if data_size(data, true) > MAX_DATA_SIZE {
            errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
        }
        let has_key = |k: &str| data.is_some_and(|d| d.contains_key(k));
        let ty = str_or_empty(object, &["type"]);
        // The keys each well-known secret type must carry (`ValidateSecret`).
        let required: &[&str] = match ty {
            "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
            "kubernetes.io/dockercfg" => &[".dockercfg"],
            "kubernetes.io/tls" => &["tls.key", "tls.crt"],
            "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
            _ => &[],
        };
        for k in required.iter().filter(|k| !has_key(k)) {
            errs.push(FieldError::required(key("data", k), ""));
        }
        let sa_name = [
            "metadata",
            "annotations",
            "kubernetes.io/service-account.name",
        ];
        if ty == "kubernetes.io/service-account-token" && str_or_empty(object, &sa_name).is_empty()
        {
            errs.push(FieldError::required(
                "metadata.annotations[kubernetes.io/service-account.name]",
                "",
            ));
        }
        if ty == "kubernetes.io/basic-auth" && !has_key("username") && !has_key("password") {
            errs.push(FieldError::required("data[username]", ""));
            errs.push(FieldError::required("data[password]", ""));
        }
        if ty.is_empty() {
            errs.push(FieldError::required("type", ""));
        }
        errs
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(crate::validation::validate_immutable(
            new.get("type"),
            old.get("type"),
            "type",
        ));
        errs.extend(validate_immutable_data(new, old, &["data"]));
        errs
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["type"]
    }
    fn field_value(&self, object: &Value, label: &str) -> String {
        match label {
            "type" => str_or_empty(object, &["type"]).to_string(),
            _ => String::new(),
        }
    }
}

pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &CONFIG_MAPS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::ConfigMap>(object)
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = Vec::new();
        let data = get_object(object, &["data"]);
        let binary = get_object(object, &["binaryData"]);
        validate_keys(data, "data", &mut errs);
        validate_keys(binary, "binaryData", &mut errs);
        for k in data.into_iter().flat_map(|m| m.keys()) {
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(FieldError::invalid(
                    key("data", k),
                    &Value::from(k.as_str()),
                    "duplicate of key present in binaryData",
                ));
            }
        }
        if data_size(data, false) + data_size(binary, true) > MAX_DATA_SIZE {
            errs.push(FieldError::too_long("", MAX_DATA_SIZE));
        }
        errs
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        errs.extend(validate_immutable_data(new, old, &["data", "binaryData"]));
        errs
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

const EVENT_FIELD_LABELS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The checks upstream's event validation applies to both schemas: a namespaced event is
/// about an object in its own namespace; new-style events (with `eventTime`) say who reported
/// what.
struct EventView<'a> {
    namespace: &'a str,
    involved_namespace: &'a str,
    involved_path: &'static str,
    event_time_set: bool,
    reporting_controller: (&'static str, &'a str),
    reporting_instance: &'a str,
    action: &'a str,
    reason: &'a str,
    note: (&'static str, &'a str),
}

fn validate_event(e: &EventView<'_>) -> ErrorList {
    let mut errs = Vec::new();
    let mismatch = |errs: &mut ErrorList| {
        errs.push(FieldError::invalid(
            e.involved_path,
            &Value::from(e.involved_namespace),
            "does not match event.namespace",
        ))
    };
    if !e.event_time_set {
        if e.involved_namespace.is_empty() {
            if !e.namespace.is_empty() && e.namespace != "default" {
                mismatch(&mut errs);
            }
        } else if e.namespace != e.involved_namespace {
            mismatch(&mut errs);
        }
    } else {
        if e.involved_namespace.is_empty()
            && e.namespace != "default"
            && e.namespace != "kube-system"
        {
            mismatch(&mut errs);
        }
        let (rc_field, rc) = e.reporting_controller;
        if rc.is_empty() {
            errs.push(FieldError::required(rc_field, ""));
        }
        errs.extend(invalid_each(rc_field, rc, is_qualified_name(rc)));
        if e.reporting_instance.is_empty() {
            errs.push(FieldError::required("reportingInstance", ""));
        } else if e.reporting_instance.len() > 128 {
            errs.push(FieldError::invalid(
                "reportingInstance",
                &Value::from(""),
                "can have at most 128 characters",
            ));
        }
        if e.action.is_empty() {
            errs.push(FieldError::required("action", ""));
        } else if e.action.len() > 128 {
            errs.push(FieldError::invalid(
                "action",
                &Value::from(""),
                "can have at most 128 characters",
            ));
        }
        if e.reason.is_empty() {
            errs.push(FieldError::required("reason", ""));
        } else if e.reason.len() > 128 {
            errs.push(FieldError::invalid(
                "reason",
                &Value::from(""),
                "can have at most 128 characters",
            ));
        }
        let (note_field, note) = e.note;
        if note.len() > 1024 {
            errs.push(FieldError::invalid(
                note_field,
                &Value::from(""),
                "can have at most 1024 characters",
            ));
        }
    }
    if !e.namespace.is_empty() {
        errs.extend(invalid_each(
            "namespace",
            e.namespace,
            is_dns1123_subdomain(e.namespace),
        ));
    }
    errs
}

pub struct EventStrategy;

impl Strategy for EventStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &EVENTS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::Event>(object)
    }
    fn validate(&self, object: &Value) -> ErrorList {
        validate_event(&EventView {
            namespace: str_or_empty(object, &["metadata", "namespace"]),
            involved_namespace: str_or_empty(object, &["involvedObject", "namespace"]),
            involved_path: "involvedObject.namespace",
            event_time_set: !is_unset(object.get("eventTime")),
            reporting_controller: (
                "reportingComponent",
                str_or_empty(object, &["reportingComponent"]),
            ),
            reporting_instance: str_or_empty(object, &["reportingInstance"]),
            action: str_or_empty(object, &["action"]),
            reason: str_or_empty(object, &["reason"]),
            note: ("message", str_or_empty(object, &["message"])),
        })
    }
    fn field_labels(&self) -> &'static [&'static str] {
        EVENT_FIELD_LABELS
    }
    fn field_value(&self, object: &Value, label: &str) -> String {
        match label {
            "source" => str_or_empty(object, &["source", "component"]).to_string(),
            _ => {
                let path: Vec<&str> = label.split('.').collect();
                str_or_empty(object, &path).to_string()
            }
        }
    }
}

pub struct EventV1Strategy;

impl Strategy for EventV1Strategy {
    fn resource(&self) -> &'static ResourceInfo {
        &EVENTS_V1
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::events::v1::Event>(object)
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = Vec::new();
        if is_unset(object.get("eventTime")) {
            errs.push(FieldError::required("eventTime", ""));
        }
        let t = str_or_empty(object, &["type"]);
        if !t.is_empty() && t != "Normal" && t != "Warning" {
            errs.push(FieldError::invalid(
                "type",
                &Value::from(t),
                "has invalid value: ".to_string() + t,
            ));
        }
        errs.extend(validate_event(&EventView {
            namespace: str_or_empty(object, &["metadata", "namespace"]),
            involved_namespace: str_or_empty(object, &["regarding", "namespace"]),
            involved_path: "regarding.namespace",
            event_time_set: true,
            reporting_controller: (
                "reportingController",
                str_or_empty(object, &["reportingController"]),
            ),
            reporting_instance: str_or_empty(object, &["reportingInstance"]),
            action: str_or_empty(object, &["action"]),
            reason: str_or_empty(object, &["reason"]),
            note: ("note", str_or_empty(object, &["note"])),
        }));
        errs
    }
    fn field_labels(&self) -> &'static [&'static str] {
        EVENT_FIELD_LABELS
    }
    /// Field selectors name the internal (core) fields; events.k8s.io keeps them elsewhere.
    fn field_value(&self, object: &Value, label: &str) -> String {
        let path: Vec<&str> = match label {
            "source" => vec!["deprecatedSource", "component"],
            "reportingComponent" => vec!["reportingController"],
            _ => match label.strip_prefix("involvedObject.") {
                Some(rest) => vec!["regarding", rest],
                None => label.split('.').collect(),
            },
        };
        str_or_empty(object, &path).to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Node, Endpoints, Lease
// ---------------------------------------------------------------------------------------------

pub struct NodeStrategy;

impl Strategy for NodeStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &NODES
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::Node>(object)
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = Vec::new();
        for (i, t) in get_array(object, &["spec", "taints"]).iter().enumerate() {
            let p = index("spec.taints", i);
            let k = str_or_empty(t, &["key"]);
            errs.extend(invalid_each(&child(&p, "key"), k, is_qualified_name(k)));
            match str_or_empty(t, &["effect"]) {
                "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
                "" => errs.push(FieldError::required(child(&p, "effect"), "")),
                e => errs.push(FieldError::not_supported(
                    child(&p, "effect"),
                    &Value::from(e),
                    &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                )),
            }
        }
        errs
    }
    fn tracks_generation(&self) -> bool {
        false
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }
    fn field_value(&self, object: &Value, label: &str) -> String {
        match label {
            "spec.unschedulable" => {
                (get_bool(object, &["spec", "unschedulable"]) == Some(true)).to_string()
            }
            _ => String::new(),
        }
    }
}

pub struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &ENDPOINTS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::core::v1::Endpoints>(object)
    }
    fn default(&self, object: &mut Value) {
        if let Some(Value::Array(subsets)) = object.get_mut("subsets") {
            for s in subsets {
                if let Some(Value::Array(ports)) = s.get_mut("ports") {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = Vec::new();
        for (i, s) in get_array(object, &["subsets"]).iter().enumerate() {
            let sp = index("subsets", i);
            for list in ["addresses", "notReadyAddresses"] {
                for (j, a) in get_array(s, &[list]).iter().enumerate() {
                    if str_or_empty(a, &["ip"]).is_empty() {
                        errs.push(FieldError::required(
                            child(&index(&child(&sp, list), j), "ip"),
                            "",
                        ));
                    }
                }
            }
            for (j, p) in get_array(s, &["ports"]).iter().enumerate() {
                let pp = index(&child(&sp, "ports"), j);
                match get_i64(p, &["port"]) {
                    Some(n) if (1..=65535).contains(&n) => {}
                    _ => errs.push(FieldError::invalid(
                        child(&pp, "port"),
                        p.get("port").unwrap_or(&json!(0)),
                        inclusive_range_error(1, 65535),
                    )),
                }
                let proto = str_or_empty(p, &["protocol"]);
                if !PROTOCOLS.contains(&proto) {
                    errs.push(FieldError::not_supported(
                        child(&pp, "protocol"),
                        &Value::from(proto),
                        PROTOCOLS,
                    ));
                }
            }
        }
        errs
    }
}

pub struct LeaseStrategy;

impl Strategy for LeaseStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &LEASES
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::coordination::v1::Lease>(object)
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = Vec::new();
        if let Some(v) = get(object, &["spec", "leaseDurationSeconds"])
            .filter(|v| v.as_i64().is_some_and(|n| n <= 0))
        {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                v,
                "must be greater than 0",
            ));
        }
        errs.extend(crate::validation::validate_nonnegative(
            object,
            &["spec", "leaseTransitions"],
            "spec.leaseTransitions",
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_defaults_type_and_folds_string_data() {
        let mut s = json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}});
        SecretStrategy.default(&mut s);
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"]["user"], "YWRtaW4=");
        assert!(s.get("stringData").is_none());
        assert!(SecretStrategy.validate(&s).is_empty());
        let bad = json!({"type": "Opaque", "data": {"bad key": "YQ=="}});
        assert!(SecretStrategy.validate(&bad)[0].to_string().starts_with("data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters"));
    }

    #[test]
    fn service_defaults_ports_and_type() {
        let mut s = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        ServiceStrategy.default(&mut s);
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["sessionAffinity"], "None");
        assert_eq!(
            s["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert!(ServiceStrategy.validate(&s).is_empty());
        let mut none = json!({"spec": {}});
        ServiceStrategy.default(&mut none);
        assert_eq!(
            ServiceStrategy.validate(&none)[0].to_string(),
            "spec.ports: Required value"
        );
    }

    #[test]
    fn event_field_values_read_the_involved_object() {
        let e = json!({"metadata": {"namespace": "default"}, "involvedObject": {"kind": "Job", "name": "sleepy", "namespace": "default"},
                       "source": {"component": "job-controller"}, "reason": "SuccessfulCreate"});
        assert_eq!(EventStrategy.field_value(&e, "involvedObject.kind"), "Job");
        assert_eq!(EventStrategy.field_value(&e, "source"), "job-controller");
        assert!(EventStrategy.validate(&e).is_empty());
        let wrong = json!({"metadata": {"namespace": "a"}, "involvedObject": {"namespace": "b"}});
        assert_eq!(
            EventStrategy.validate(&wrong)[0].to_string(),
            "involvedObject.namespace: Invalid value: \"b\": does not match event.namespace"
        );
    }

    #[test]
    fn lease_duration_must_be_positive() {
        let l = json!({"spec": {"leaseDurationSeconds": 0}});
        assert_eq!(
            LeaseStrategy.validate(&l)[0].to_string(),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
    }
}
