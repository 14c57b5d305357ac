use serde_json::Value;

use super::paths::PATCH_CONTENT_TYPES;
use super::*;

fn v3(path: &str) -> Arc<Value> {
    match v3_document(path) {
        Some(doc) => doc,
        None => panic!("no v3 document at {path}"),
    }
}

/// Resolves a local `$ref` (`#/components/schemas/X`, `#/definitions/X`) within `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// Follows `$ref` and single-element `allOf` the way kubectl explain's templates do.
fn deref<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return resolve(doc, reference).map_or(schema, |s| deref(doc, s));
    }
    if let Some([only]) = schema
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return deref(doc, only);
    }
    schema
}

/// Every `$ref` in `value`, with the JSON path where it occurs.
fn refs<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v.as_str()) {
                    ("$ref", Some(reference)) => out.push((at.clone(), reference)),
                    _ => refs(v, format!("{at}/{key}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn dangling_refs(doc: &Value) -> Vec<String> {
    let mut found = Vec::new();
    refs(doc, String::new(), &mut found);
    found
        .into_iter()
        .filter(|(_, reference)| resolve(doc, reference).is_none())
        .map(|(at, reference)| format!("{at}: {reference}"))
        .collect()
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// cli-runtime's queryParamVerifierV3: the first PATCH operation with the GVK must take the
/// query parameter.
fn patch_supports_query_param(doc: &Value, wanted: &Value, param: &str) -> Result<(), String> {
    let paths = doc["paths"].as_object().ok_or("no paths")?;
    for item in paths.values() {
        let Some(patch) = item.get("patch") else {
            continue;
        };
        if patch.get("x-kubernetes-group-version-kind") != Some(wanted) {
            continue;
        }
        let params = patch["parameters"]
            .as_array()
            .ok_or("PATCH without parameters")?;
        return if params
            .iter()
            .any(|p| p["name"] == param && p["in"] == "query")
        {
            Ok(())
        } else {
            Err(format!("PATCH for {wanted} lacks {param}"))
        };
    }
    Err(format!("no PATCH operation for {wanted}"))
}

#[test]
fn v3_index_lists_every_group_version_with_its_hash() {
    let index = v3_index();
    for path in [
        "api/v1",
        "apis/batch/v1",
        "apis/batch/v1beta1",
        "apis/apps/v1",
        "apis/batch",
        "api",
        "apis",
    ] {
        let url = index["paths"][path]["serverRelativeURL"].as_str();
        let hash = v3_hash(path);
        assert!(
            hash.as_deref().is_some_and(|h| h.len() == 32),
            "{path}: {hash:?}"
        );
        assert_eq!(
            url.map(str::to_string),
            hash.map(|h| format!("/openapi/v3/{path}?hash={h}")),
            "{path}"
        );
    }
    for (group, versions) in resource::groups() {
        for version in versions {
            assert!(
                index["paths"].get(gv_path(group, version)).is_some(),
                "{group}/{version}"
            );
        }
    }
}

#[test]
fn v3_document_of_unserved_path_is_none() {
    assert!(v3_document("apis/batch/v2").is_none());
    assert!(v3_document("apis/nope/v1").is_none());
    assert!(v3_hash("").is_none());
}

#[test]
fn hash_changes_with_content_and_is_stable() {
    assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
    assert_ne!(content_hash(b"abc"), content_hash(b"abd"));
    assert_ne!(v3_hash("api/v1"), v3_hash("apis/batch/v1"));
}

#[test]
fn batch_v1_document_lets_explain_reach_job_spec_completions() {
    let doc = v3("apis/batch/v1");
    assert_eq!(doc["openapi"], "3.0.0");
    let job = &doc["components"]["schemas"]["io.k8s.api.batch.v1.Job"];
    assert_eq!(
        job["x-kubernetes-group-version-kind"],
        json!([gvk("batch", "v1", "Job")])
    );
    let spec = &job["properties"]["spec"];
    assert!(spec["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(
        spec["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.batch.v1.JobSpec"
    );
    let completions = &deref(&doc, spec)["properties"]["completions"];
    assert_eq!(completions["type"], "integer");
    assert_eq!(completions["format"], "int32");
    assert!(
        completions["description"]
            .as_str()
            .is_some_and(|d| d.contains("successfully finished pods"))
    );

    // explain finds the GVK through an operation on one of the resource's paths.
    let list = &doc["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs"]["get"];
    assert_eq!(
        list["x-kubernetes-group-version-kind"],
        gvk("batch", "v1", "Job")
    );
    assert_eq!(list["x-kubernetes-action"], "list");
    assert_eq!(list["operationId"], "listBatchV1NamespacedJob");
    let job_list = &doc["components"]["schemas"]["io.k8s.api.batch.v1.JobList"];
    assert_eq!(
        job_list["x-kubernetes-group-version-kind"],
        json!([gvk("batch", "v1", "JobList")])
    );
}

#[test]
fn pod_spec_fields_reach_container_descriptions_through_arrays() {
    let doc = v3("api/v1");
    let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
    let spec = deref(&doc, &pod["properties"]["spec"]);
    let containers = &spec["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    let container = deref(&doc, &containers["items"]);
    assert!(
        container["properties"]["image"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    let limits = &deref(&doc, &container["properties"]["resources"])["properties"]["limits"];
    assert_eq!(
        limits["additionalProperties"]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"
    );
}

#[test]
fn job_patch_takes_field_validation_and_every_patch_type() {
    let doc = v3("apis/batch/v1");
    let patch = &doc["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}"]["patch"];
    assert_eq!(patch["operationId"], "patchBatchV1NamespacedJob");
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        gvk("batch", "v1", "Job")
    );
    let params = patch["parameters"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for name in ["fieldValidation", "fieldManager", "dryRun", "force"] {
        assert!(
            params
                .iter()
                .any(|p| p["name"] == name && p["in"] == "query"),
            "{name}"
        );
    }
    let content = &patch["requestBody"]["content"];
    for ct in PATCH_CONTENT_TYPES {
        assert_eq!(
            content[*ct]["schema"]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
        );
    }
    assert_eq!(
        patch_supports_query_param(&doc, &gvk("batch", "v1", "Job"), "fieldValidation"),
        Ok(())
    );

    let v2 = v2_document();
    let patch = &v2["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}"]["patch"];
    assert_eq!(patch["consumes"], json!(PATCH_CONTENT_TYPES));
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        gvk("batch", "v1", "Job")
    );
    assert!(
        patch["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"))
    );
}

#[test]
fn every_served_kind_passes_kubectls_field_validation_check() {
    // Reviews are create-only: upstream publishes no PATCH for them either.
    for r in resource::ALL.iter().filter(|r| !r.is_review()) {
        let doc = v3(&gv_path(r.group, r.version));
        let wanted = gvk(r.group, r.version, r.kind);
        assert_eq!(
            patch_supports_query_param(&doc, &wanted, "fieldValidation"),
            Ok(()),
            "{}",
            r.qualified()
        );
        let schemas = doc["components"]["schemas"].as_object();
        let carrying: Vec<&String> = schemas
            .into_iter()
            .flatten()
            .filter(|(_, s)| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|gvks| gvks.contains(&wanted))
            })
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            carrying,
            vec![&schemas::definition_name(r.group, r.version, r.kind)],
            "{}",
            r.qualified()
        );
    }
}

#[test]
fn every_served_resource_appears_in_v2_and_v3_paths() {
    let v2 = v2_document();
    for r in resource::ALL {
        let doc = v3(&gv_path(r.group, r.version));
        let prefix = paths::gv_prefix(r.group, r.version);
        let collection = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        let item = format!("{collection}/{{name}}");
        if r.is_review() {
            for d in [&*doc, &*v2] {
                assert!(d["paths"][&collection]["post"].is_object(), "{collection}");
                assert!(d["paths"][&collection].get("get").is_none(), "{collection}");
            }
            continue;
        }
        for d in [&*doc, &*v2] {
            assert!(d["paths"][&collection]["get"].is_object(), "{collection}");
            assert!(d["paths"][&item]["patch"].is_object(), "{item}");
            for sub in r.subresources {
                assert!(
                    d["paths"].get(format!("{item}/{}", sub.name)).is_some(),
                    "{item}/{}",
                    sub.name
                );
            }
        }
    }
}

#[test]
fn operations_follow_the_resources_verbs() {
    let doc = v3("api/v1");
    let namespaces = &doc["paths"]["/api/v1/namespaces"];
    assert!(
        namespaces.get("delete").is_none(),
        "namespaces have no deletecollection"
    );
    assert_eq!(namespaces["post"]["operationId"], "createCoreV1Namespace");
    let pods = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(pods["delete"]["x-kubernetes-action"], "deletecollection");
    assert_eq!(
        pods["delete"]["operationId"],
        "deleteCoreV1CollectionNamespacedPod"
    );
    assert_eq!(
        doc["paths"]["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    let finalize = &doc["paths"]["/api/v1/namespaces/{name}/finalize"];
    assert_eq!(
        finalize["put"]["operationId"],
        "replaceCoreV1NamespaceFinalize"
    );
    assert!(finalize.get("patch").is_none());
    let watch = &doc["paths"]["/api/v1/watch/namespaces/{namespace}/pods/{name}"]["get"];
    assert_eq!(watch["x-kubernetes-action"], "watch");

    let rbac = v3("apis/rbac.authorization.k8s.io/v1");
    assert_eq!(
        rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["patch"]["operationId"],
        "patchRbacAuthorizationV1ClusterRole"
    );
}

#[test]
fn scale_subresource_is_autoscaling_v1_scale() {
    let doc = v3("apis/apps/v1");
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["operationId"],
        "patchAppsV1NamespacedDeploymentScale"
    );
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        gvk("autoscaling", "v1", "Scale")
    );
    assert_eq!(
        scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
    let schema = &doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"];
    assert_eq!(
        schema["x-kubernetes-group-version-kind"],
        json!([gvk("autoscaling", "v1", "Scale")])
    );
    let status =
        &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]["patch"];
    assert_eq!(
        status["x-kubernetes-group-version-kind"],
        gvk("apps", "v1", "Deployment")
    );
}

#[test]
fn cronjob_v1beta1_is_published_under_its_own_version() {
    let doc = v3("apis/batch/v1beta1");
    let schemas = &doc["components"]["schemas"];
    let cronjob = &schemas["io.k8s.api.batch.v1beta1.CronJob"];
    assert_eq!(
        cronjob["x-kubernetes-group-version-kind"],
        json!([gvk("batch", "v1beta1", "CronJob")])
    );
    assert!(schemas.get("io.k8s.api.batch.v1.CronJob").is_none());
    assert!(deref(&doc, &cronjob["properties"]["spec"])["properties"]["schedule"].is_object());
    let list = &schemas["io.k8s.api.batch.v1beta1.CronJobList"];
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.batch.v1beta1.CronJob"
    );

    let v2 = v2_document();
    let definitions = &v2["definitions"];
    assert_eq!(
        definitions["io.k8s.api.batch.v1.CronJob"]["x-kubernetes-group-version-kind"],
        json!([gvk("batch", "v1", "CronJob")])
    );
    assert_eq!(
        definitions["io.k8s.api.batch.v1beta1.CronJob"]["x-kubernetes-group-version-kind"],
        json!([gvk("batch", "v1beta1", "CronJob")])
    );
}

#[test]
fn all_refs_resolve_within_their_document() {
    for path in v3_index()["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(p, _)| p)
    {
        let doc = v3(path);
        assert_eq!(dangling_refs(&doc), Vec::<String>::new(), "{path}");
        let mut found = Vec::new();
        refs(&doc, String::new(), &mut found);
        assert!(
            found
                .iter()
                .all(|(_, r)| r.starts_with("#/components/schemas/")),
            "{path}"
        );
    }
    let v2 = v2_document();
    assert_eq!(dangling_refs(&v2), Vec::<String>::new());
    let mut found = Vec::new();
    refs(&v2, String::new(), &mut found);
    assert!(found.iter().all(|(_, r)| r.starts_with("#/definitions/")));
}

#[test]
fn v3_refs_carry_no_siblings() {
    // OpenAPI 3.0 ignores a `$ref`'s siblings; descriptions live beside an `allOf` instead.
    fn check(value: &Value, at: &str) {
        match value {
            Value::Object(map) => {
                assert!(!map.contains_key("$ref") || map.len() == 1, "{at}: {value}");
                for (k, v) in map {
                    check(v, &format!("{at}/{k}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|v| check(v, at)),
            _ => {}
        }
    }
    check(&v3("apis/apps/v1"), "");
}

#[test]
fn patch_merge_keys_are_published_for_client_side_apply() {
    let doc = v3("apis/apps/v1");
    let schemas = &doc["components"]["schemas"];
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    let volumes = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    let strategy = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    let env = &schemas["io.k8s.api.core.v1.Container"]["properties"]["env"];
    assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
}

#[test]
fn every_served_kind_has_a_typed_schema() {
    for r in resource::ALL {
        assert!(
            schemas::has_typed_schema(r.group, r.version, r.kind),
            "{}",
            r.qualified_kind()
        );
        // The streaming subresources' options (PodExecOptions, PodAttachOptions) travel as
        // query parameters; upstream publishes no schema for them either.
        for sub in r
            .subresources
            .iter()
            .filter(|s| !matches!(s.name, "exec" | "attach"))
        {
            assert!(
                schemas::has_typed_schema(sub.group, sub.version, sub.kind),
                "{}/{}",
                r.plural,
                sub.name
            );
        }
    }
}

#[test]
fn v2_document_is_swagger_with_bearer_token() {
    let v2 = v2_document();
    assert_eq!(v2["swagger"], "2.0");
    assert_eq!(v2["securityDefinitions"]["BearerToken"]["type"], "apiKey");
    let job = &v2["definitions"]["io.k8s.api.batch.v1.Job"];
    assert_eq!(
        job["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(job["properties"]["metadata"]["description"].is_string());
    let create = &v2["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs"]["post"];
    assert_eq!(create["parameters"][0]["in"], "body");
    assert_eq!(
        create["parameters"][0]["schema"]["$ref"],
        "#/definitions/io.k8s.api.batch.v1.Job"
    );
    for path in ["/api/", "/apis/", "/apis/batch/", "/api/v1/", "/version/"] {
        assert!(v2["paths"][path]["get"].is_object(), "{path}");
    }
}

#[test]
fn documents_serialise_to_json() {
    let v2 = serde_json::to_vec(&*v2_document());
    assert!(v2.is_ok_and(|bytes| bytes.len() > 100_000));
    let batch = serde_json::to_string(&*v3("apis/batch/v1"));
    assert!(batch.is_ok_and(|s| s.starts_with('{')));
}
