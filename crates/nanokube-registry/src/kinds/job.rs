//! batch/v1 Job: `SetDefaults_Job`, the generated selector and labels of
//! `pkg/registry/batch/job/strategy.go`, and `ValidateJob` / `ValidateJobUpdate`.

use super::decode_as;
use super::pod::{TEMPLATE, default_pod_template, validate_pod_template};
use crate::field::{ErrorList, FieldError, child, key};
use crate::resource::{JOBS, ResourceInfo};
use crate::strategy::{Decoded, DefaultPropagation, Strategy};
use crate::validation::{
    get, get_bool, get_i64, go_string_map, invalid_rendered, is_dns1123_label, object_at,
    selector_matches, set_default, str_or_empty, validate_immutable, validate_label_selector,
    validate_nonnegative,
};
use serde_json::{Map, Value, json};

pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// Upper bound of completions and parallelism of Indexed jobs.
const MAX_INDEXED_COMPLETIONS: i64 = 100_000;

/// `SetDefaults_Job` on a Job spec (also used for a CronJob's job template, which gets no
/// generated selector). `object_labels` is the owning object's metadata when labels should be
/// copied from the template (Jobs only).
pub fn default_job_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    let unset = |m: &Map<String, Value>, k: &str| m.get(k).is_none_or(Value::is_null);
    // A non-parallel job may leave both unset; then both are 1. Completions alone stays nil
    // (a work queue).
    if unset(map, "completions") && unset(map, "parallelism") {
        map.insert("completions".into(), json!(1));
    }
    set_default(map, "parallelism", json!(1));
    let per_index = !unset(map, "backoffLimitPerIndex");
    set_default(
        map,
        "backoffLimit",
        json!(if per_index { i64::from(i32::MAX) } else { 6 }),
    );
    set_default(map, "completionMode", json!("NonIndexed"));
    set_default(map, "suspend", json!(false));
    set_default(map, "manualSelector", json!(false));
    let has_pfp = !unset(map, "podFailurePolicy");
    if let Some(Value::Array(rules)) = map
        .get_mut("podFailurePolicy")
        .and_then(|p| p.get_mut("rules"))
    {
        for rule in rules {
            if let Some(Value::Array(conds)) = rule.get_mut("onPodConditions") {
                for c in conds.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(c, "status", json!("True"));
                }
            }
        }
    }
    set_default(
        map,
        "podReplacementPolicy",
        json!(if has_pfp {
            "Failed"
        } else {
            "TerminatingOrFailed"
        }),
    );
    default_pod_template(map.get_mut("template"));
}

/// A Job with no labels of its own takes its template's labels.
fn copy_template_labels(job: &mut Value) {
    let template_labels = get(job, &["spec", "template", "metadata", "labels"])
        .filter(|l| l.is_object())
        .cloned();
    let Some(labels) = template_labels else {
        return;
    };
    let own_empty = get(job, &["metadata", "labels"])
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if own_empty && let Some(meta) = object_at(job, &["metadata"]) {
        meta.insert("labels".into(), labels);
    }
}

/// Go marshals maps with sorted keys; keep label maps we write in the same order.
fn sort_map(v: Option<&mut Value>) {
    if let Some(Value::Object(m)) = v {
        let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        m.extend(entries);
    }
}

/// `generateSelector`: the pod template is labelled with the job's name and uid, and the
/// selector picks the uid label. Labels the user already set are left for validation to judge.
fn generate_selector(job: &mut Value) {
    let name = str_or_empty(job, &["metadata", "name"]).to_string();
    let uid = str_or_empty(job, &["metadata", "uid"]).to_string();
    if let Some(labels) = object_at(job, &["spec", "template", "metadata", "labels"]) {
        for (k, v) in [
            (LEGACY_JOB_NAME_LABEL, &name),
            (JOB_NAME_LABEL, &name),
            (LEGACY_CONTROLLER_UID_LABEL, &uid),
            (CONTROLLER_UID_LABEL, &uid),
        ] {
            labels
                .entry(k.to_string())
                .or_insert_with(|| Value::from(v.as_str()));
        }
    }
    sort_map(get_mut(job, &["spec", "template", "metadata", "labels"]));
    if let Some(match_labels) = object_at(job, &["spec", "selector", "matchLabels"]) {
        match_labels
            .entry(CONTROLLER_UID_LABEL.to_string())
            .or_insert_with(|| Value::from(uid.as_str()));
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, k| cur.get_mut(*k))
}

fn manual_selector(job: &Value) -> bool {
    get_bool(job, &["spec", "manualSelector"]) == Some(true)
}

/// `ValidateJobSpec` at `path` (`spec` or `spec.jobTemplate.spec`).
pub fn validate_job_spec(spec: &Value, path: &str, selector_required: bool) -> ErrorList {
    let mut errs = Vec::new();
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        errs.extend(validate_nonnegative(spec, &[field], &child(path, field)));
    }
    let mode = str_or_empty(spec, &["completionMode"]);
    match mode {
        "NonIndexed" | "Indexed" | "" => {}
        m => errs.push(FieldError::not_supported(
            child(path, "completionMode"),
            &Value::from(m),
            &["NonIndexed", "Indexed"],
        )),
    }
    if mode == "Indexed" {
        match spec.get("completions").filter(|v| !v.is_null()) {
            None => errs.push(FieldError::required(child(path, "completions"), "when completion mode is Indexed")),
            Some(v) if v.as_i64().is_some_and(|n| n > MAX_INDEXED_COMPLETIONS) => errs.push(FieldError::invalid(
                child(path, "completions"),
                v,
                format!("must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is Indexed"),
            )),
            _ => {}
        }
        if let Some(v) = spec
            .get("parallelism")
            .filter(|v| v.as_i64().is_some_and(|n| n > MAX_INDEXED_COMPLETIONS))
        {
            errs.push(FieldError::invalid(
                child(path, "parallelism"),
                v,
                format!("must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is Indexed"),
            ));
        }
    }
    for field in ["backoffLimitPerIndex", "maxFailedIndexes"] {
        errs.extend(validate_nonnegative(spec, &[field], &child(path, field)));
        if spec.get(field).is_some_and(|v| !v.is_null()) && mode != "Indexed" {
            errs.push(FieldError::invalid(
                child(path, "completionMode"),
                &Value::from(mode),
                format!("requires indexed completion mode when {field} is specified"),
            ));
        }
    }
    if spec.get("successPolicy").is_some_and(|v| !v.is_null()) && mode != "Indexed" {
        errs.push(FieldError::invalid(
            child(path, "successPolicy"),
            &Value::Null,
            "requires indexed completion mode",
        ));
    }
    let selector = spec.get("selector").filter(|s| !s.is_null());
    match selector {
        None if selector_required => errs.push(FieldError::required(child(path, "selector"), "")),
        None => {}
        Some(sel) => {
            errs.extend(validate_label_selector(Some(sel), &child(path, "selector")));
            let labels = get(spec, &["template", "metadata", "labels"]);
            if !selector_matches(Some(sel), labels) {
                errs.push(invalid_rendered(
                    child(path, "template.metadata.labels"),
                    go_string_map(labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    let template_path = child(path, "template");
    errs.extend(validate_pod_template(
        spec.get("template"),
        &template_path,
        TEMPLATE,
    ));
    let rp_path = child(&template_path, "spec.restartPolicy");
    let restart = str_or_empty(spec, &["template", "spec", "restartPolicy"]);
    if restart != "OnFailure" && restart != "Never" {
        errs.push(FieldError::required(
            rp_path,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if spec.get("podFailurePolicy").is_some_and(|v| !v.is_null()) && restart != "Never" {
        errs.push(FieldError::invalid(
            rp_path,
            &Value::from(restart),
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs.extend(validate_pod_failure_policy(
        spec,
        &child(path, "podFailurePolicy"),
    ));
    match str_or_empty(spec, &["podReplacementPolicy"]) {
        "" | "TerminatingOrFailed" | "Failed" => {}
        p => errs.push(FieldError::not_supported(
            child(path, "podReplacementPolicy"),
            &Value::from(p),
            &["TerminatingOrFailed", "Failed"],
        )),
    }
    if spec.get("podFailurePolicy").is_some_and(|v| !v.is_null())
        && spec
            .get("podReplacementPolicy")
            .and_then(Value::as_str)
            .is_some_and(|p| p != "Failed")
    {
        errs.push(FieldError::not_supported(
            child(path, "podReplacementPolicy"),
            spec.get("podReplacementPolicy").unwrap_or(&Value::Null),
            &["Failed"],
        ));
    }
    errs
}

fn validate_pod_failure_policy(spec: &Value, path: &str) -> ErrorList {
    let mut errs = Vec::new();
    let rules = crate::validation::get_array(spec, &["podFailurePolicy", "rules"]);
    for (i, rule) in rules.iter().enumerate() {
        let rp = crate::field::index(&child(path, "rules"), i);
        match str_or_empty(rule, &["action"]) {
            "FailJob" | "FailIndex" | "Ignore" | "Count" => {}
            "" => errs.push(FieldError::required(child(&rp, "action"), "")),
            a => errs.push(FieldError::not_supported(
                child(&rp, "action"),
                &Value::from(a),
                &["Count", "FailIndex", "FailJob", "Ignore"],
            )),
        }
        let exit = rule.get("onExitCodes").filter(|v| !v.is_null());
        let conds = rule.get("onPodConditions").filter(|v| !v.is_null());
        match (exit, conds) {
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                rp.clone(),
                &Value::from("specifying both OnExitCodes and OnPodConditions is not supported"),
                "specifying both OnExitCodes and OnPodConditions is not supported",
            )),
            (None, None) => errs.push(FieldError::invalid(
                rp.clone(),
                &Value::from("specifying one of OnExitCodes and OnPodConditions is required"),
                "specifying one of OnExitCodes and OnPodConditions is required",
            )),
            (Some(e), None) => match str_or_empty(e, &["operator"]) {
                "In" | "NotIn" => {}
                op => errs.push(FieldError::not_supported(
                    child(&rp, "onExitCodes.operator"),
                    &Value::from(op),
                    &["In", "NotIn"],
                )),
            },
            _ => {}
        }
    }
    errs
}

/// `validateGeneratedSelector`: a job whose selector the server generated must carry exactly
/// that selector and the generated template labels.
fn validate_generated_selector(job: &Value) -> ErrorList {
    let mut errs = Vec::new();
    if manual_selector(job) || get(job, &["spec", "selector"]).is_none_or(Value::is_null) {
        return errs;
    }
    let uid = str_or_empty(job, &["metadata", "uid"]);
    let name = str_or_empty(job, &["metadata", "name"]);
    if uid.is_empty() {
        errs.push(FieldError::required("metadata.uid", ""));
    }
    let labels_path = "spec.template.metadata.labels";
    for (label, want) in [
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
        (CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
    ] {
        match get(job, &["spec", "template", "metadata", "labels", label]).and_then(Value::as_str) {
            None => errs.push(FieldError::required(
                key(labels_path, label),
                format!("must be '{want}'"),
            )),
            Some(have) if have != want => errs.push(FieldError::invalid(
                key(labels_path, label),
                &Value::from(have),
                format!("must be '{want}'"),
            )),
            _ => {}
        }
    }
    let expected = json!({"matchLabels": {CONTROLLER_UID_LABEL: uid}});
    let selector = get(job, &["spec", "selector"])
        .cloned()
        .unwrap_or(Value::Null);
    let normalized =
        json!({"matchLabels": selector.get("matchLabels").cloned().unwrap_or(json!({}))});
    let has_exprs = !crate::validation::get_array(&selector, &["matchExpressions"]).is_empty();
    if normalized != expected || has_exprs {
        errs.push(FieldError::invalid(
            "spec.selector",
            &selector,
            "`selector` not auto-generated",
        ));
    }
    errs
}

/// Whether a suspended job that never started may change its template's scheduling
/// directives (`AllowMutableSchedulingDirectives`).
fn template_mutable_while_suspended(new: &Value, old: &Value) -> bool {
    get_bool(new, &["spec", "suspend"]) == Some(true)
        && get_bool(old, &["spec", "suspend"]) == Some(true)
        && get(old, &["status", "startTime"]).is_none_or(Value::is_null)
}

fn validate_template_update(new: &Value, old: &Value) -> ErrorList {
    let nt = get(new, &["spec", "template"])
        .cloned()
        .unwrap_or(Value::Null);
    let ot = get(old, &["spec", "template"])
        .cloned()
        .unwrap_or(Value::Null);
    let mut comparable = nt.clone();
    if template_mutable_while_suspended(new, old) {
        for (section, fields) in [
            ("metadata", &["labels", "annotations"][..]),
            (
                "spec",
                &["nodeSelector", "affinity", "tolerations", "schedulingGates"][..],
            ),
        ] {
            for f in fields {
                if let Some(m) = comparable.get_mut(section).and_then(Value::as_object_mut) {
                    match ot.get(section).and_then(|s| s.get(*f)) {
                        Some(v) => m.insert(f.to_string(), v.clone()),
                        None => m.remove(*f),
                    };
                }
            }
        }
    }
    if comparable == ot {
        Vec::new()
    } else {
        vec![FieldError::immutable("spec.template", &nt)]
    }
}

pub struct JobStrategy;

impl Strategy for JobStrategy {
    fn resource(&self) -> &'static ResourceInfo {
        &JOBS
    }
    fn decode(&self, object: Value) -> Result<Decoded, String> {
        decode_as::<k8s_openapi::api::batch::v1::Job>(object)
    }
    fn default(&self, object: &mut Value) {
        if let Some(spec) = object.get_mut("spec") {
            default_job_spec(spec);
        }
        copy_template_labels(object);
    }
    fn prepare_for_create(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        if !manual_selector(object) {
            generate_selector(object);
        }
        copy_template_labels(object);
        sort_map(get_mut(object, &["metadata", "labels"]));
    }
    fn validate(&self, object: &Value) -> ErrorList {
        let mut errs = validate_generated_selector(object);
        errs.extend(validate_job_spec(
            object.get("spec").unwrap_or(&Value::Null),
            "spec",
            true,
        ));
        errs
    }
    fn warnings_on_create(&self, object: &Value) -> Vec<String> {
        let msgs = is_dns1123_label(str_or_empty(object, &["metadata", "name"]));
        if msgs.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [{}]",
            msgs.join(" ")
        )]
    }
    fn validate_update(&self, new: &Value, old: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        let ns = new.get("spec").unwrap_or(&Value::Null);
        let os = old.get("spec").unwrap_or(&Value::Null);
        // Elastic indexed jobs may scale completions together with parallelism.
        let elastic = str_or_empty(ns, &["completionMode"]) == "Indexed"
            && get_i64(ns, &["completions"]).is_some()
            && get_i64(ns, &["completions"]) == get_i64(ns, &["parallelism"])
            && get_i64(os, &["completions"]) == get_i64(os, &["parallelism"]);
        if !elastic {
            errs.extend(validate_immutable(
                ns.get("completions"),
                os.get("completions"),
                "spec.completions",
            ));
        }
        errs.extend(validate_immutable(
            ns.get("selector"),
            os.get("selector"),
            "spec.selector",
        ));
        errs.extend(validate_template_update(new, old));
        for field in [
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
            "successPolicy",
            "managedBy",
        ] {
            errs.extend(validate_immutable(
                ns.get(field),
                os.get(field),
                &child("spec", field),
            ));
        }
        errs
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["status.successful"]
    }
    fn field_value(&self, object: &Value, label: &str) -> String {
        match label {
            "status.successful" => get_i64(object, &["status", "succeeded"])
                .unwrap_or(0)
                .to_string(),
            _ => String::new(),
        }
    }
    fn default_propagation(&self) -> DefaultPropagation {
        DefaultPropagation::Orphan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "24c91245-d0fb-11e8-947a-42010a800002";

    fn sleepy() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sleepy", "namespace": "default", "uid": UID},
               "spec": {"template": {"spec": {"containers": [{"name": "resting", "image": "busybox",
                   "command": ["/bin/sleep"], "args": ["3"]}], "restartPolicy": "Never"}}}})
    }

    fn create(mut job: Value) -> (Value, ErrorList) {
        JobStrategy.default(&mut job);
        JobStrategy.prepare_for_create(&mut job);
        let errs = JobStrategy.validate(&job);
        (job, errs)
    }

    #[test]
    fn seed_sleepy_job_gets_defaults_selector_and_labels() {
        let (job, errs) = create(sleepy());
        assert!(errs.is_empty(), "{errs:?}");
        let spec = &job["spec"];
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {CONTROLLER_UID_LABEL: UID}})
        );
        let expected_labels = json!({
            "batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "sleepy",
            "controller-uid": UID, "job-name": "sleepy"});
        assert_eq!(spec["template"]["metadata"]["labels"], expected_labels);
        assert_eq!(job["metadata"]["labels"], expected_labels);
        assert_eq!(
            spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
    }

    #[test]
    fn completions_stay_unset_when_only_parallelism_is_given() {
        let mut job = sleepy();
        job["spec"]["parallelism"] = json!(2);
        let (job, _) = create(job);
        assert!(job["spec"].get("completions").is_none());
        assert_eq!(job["spec"]["parallelism"], 2);
    }

    #[test]
    fn missing_restart_policy_requires_on_failure_or_never() {
        let mut job = sleepy();
        if let Some(s) = job["spec"]["template"]["spec"].as_object_mut() {
            s.remove("restartPolicy");
        }
        let (_, errs) = create(job);
        let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            vec![
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
            ]
        );
    }

    #[test]
    fn negative_backoff_limit_is_invalid() {
        let mut job = sleepy();
        job["spec"]["backoffLimit"] = json!(-1);
        let (_, errs) = create(job);
        let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts,
            vec!["spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn template_change_is_rejected_as_immutable() {
        let (old, _) = create(sleepy());
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl");
        let errs = JobStrategy.validate_update(&new, &old);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0]
                .to_string()
                .starts_with("spec.template: Invalid value: ")
        );
        assert!(errs[0].to_string().ends_with(": field is immutable"));
        let mut new = old.clone();
        new["spec"]["completions"] = json!(5);
        assert_eq!(
            JobStrategy.validate_update(&new, &old)[0].to_string(),
            "spec.completions: Invalid value: 5: field is immutable"
        );
        assert!(JobStrategy.validate_update(&old, &old).is_empty());
    }

    #[test]
    fn foreign_selector_is_not_auto_generated() {
        let mut job = sleepy();
        job["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
        job["spec"]["template"]["metadata"] = json!({"labels": {"app": "x"}});
        let (_, errs) = create(job);
        assert!(
            errs.iter().any(
                |e| e.to_string().starts_with("spec.selector: Invalid value:")
                    && e.detail == "`selector` not auto-generated"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn manual_selector_must_be_given_and_match_the_template() {
        let mut job = sleepy();
        job["spec"]["manualSelector"] = json!(true);
        let (_, errs) = create(job.clone());
        assert_eq!(errs[0].to_string(), "spec.selector: Required value");
        job["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
        job["spec"]["template"]["metadata"] = json!({"labels": {"app": "y"}});
        let (_, errs) = create(job);
        assert_eq!(
            errs[0].to_string(),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"y\"}: `selector` does not match template `labels`"
        );
    }

    #[test]
    fn indexed_jobs_need_completions() {
        let mut job = sleepy();
        job["spec"]["completionMode"] = json!("Indexed");
        job["spec"]["parallelism"] = json!(2);
        let (_, errs) = create(job);
        assert_eq!(
            errs[0].to_string(),
            "spec.completions: Required value: when completion mode is Indexed"
        );
    }

    #[test]
    fn non_dns_label_names_warn_on_create() {
        let mut job = sleepy();
        job["metadata"]["name"] = json!("a.b");
        let w = JobStrategy.warnings_on_create(&job);
        assert!(w[0].starts_with("metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [a lowercase RFC 1123 label"));
        assert!(JobStrategy.warnings_on_create(&sleepy()).is_empty());
    }

    #[test]
    fn pod_failure_policy_defaults_replacement_to_failed() {
        let mut job = sleepy();
        job["spec"]["podFailurePolicy"] = json!({"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]});
        let (job, errs) = create(job);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(job["spec"]["podReplacementPolicy"], "Failed");
        assert_eq!(
            job["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
            "True"
        );
    }
}
