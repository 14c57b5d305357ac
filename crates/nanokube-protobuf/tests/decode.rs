//! Bodies built with k8s-pb's prost types (as a Go client's would be: magic + runtime.Unknown)
//! decode to the JSON object kubectl would have sent.

use std::collections::BTreeMap;

use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use nanokube_protobuf::{CONTENT_TYPE, ProtobufError, decode};
use prost::Message;
use serde_json::{Value, json};

/// The `k8s\0` magic and the `runtime.Unknown` envelope around an encoded object, with the
/// empty content encoding and type Go's marshaller writes.
fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

fn no_names(_: &str) -> Option<Vec<String>> {
    None
}

fn decoded(body: &[u8]) -> Value {
    decode(body, &no_names).expect("body decodes")
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

/// ObjectMeta as Go writes it for a new object: its non-pointer fields, including the zero
/// creationTimestamp (an empty message), are always on the wire.
fn object_meta(name: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.to_owned()),
        generate_name: Some(String::new()),
        namespace: Some(String::new()),
        resource_version: Some(String::new()),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

#[test]
fn content_type_is_the_kubernetes_protobuf_media_type() {
    assert_eq!(CONTENT_TYPE, "application/vnd.kubernetes.protobuf");
}

#[test]
fn config_map_with_data_and_labels_decodes_to_its_json() {
    let config_map = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
            ..object_meta("settings")
        }),
        data: BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("empty".to_owned(), String::new()),
        ]),
        binary_data: BTreeMap::from([("blob".to_owned(), vec![0, 1, 2, 255])]),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body("v1", "ConfigMap", &config_map)),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "settings",
                "creationTimestamp": null,
                "labels": {"app": "web"},
            },
            "data": {"a": "1", "empty": ""},
            "binaryData": {"blob": "AAEC/w=="},
        })
    );
}

#[test]
fn secret_data_bytes_become_base64() {
    let secret = core::Secret {
        metadata: Some(object_meta("creds")),
        data: BTreeMap::from([("password".to_owned(), b"s3cr3t".to_vec())]),
        r#type: Some("Opaque".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        decoded(&body("v1", "Secret", &secret)),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "creationTimestamp": null},
            "data": {"password": "czNjcjN0"},
            "type": "Opaque",
        })
    );
}

fn pod_template() -> core::PodTemplateSpec {
    core::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(meta::Time::default()),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: Some("pi".to_owned()),
                image: Some("perl:5.34".to_owned()),
                command: strings(&["perl", "-Mbignum=bpi", "-wle"]),
                args: strings(&["print bpi(2000)"]),
                // Non-pointer strings Go writes although empty; its JSON omits them.
                image_pull_policy: Some(String::new()),
                resources: Some(core::ResourceRequirements {
                    limits: BTreeMap::from([
                        (
                            "cpu".to_owned(),
                            Quantity {
                                string: Some("500m".to_owned()),
                            },
                        ),
                        (
                            "memory".to_owned(),
                            Quantity {
                                string: Some("128Mi".to_owned()),
                            },
                        ),
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            restart_policy: Some("Never".to_owned()),
            termination_grace_period_seconds: Some(0),
            ..Default::default()
        }),
    }
}

#[test]
fn job_pod_template_keeps_commands_restart_policy_and_quantities() {
    let job = batch::Job {
        metadata: Some(object_meta("pi")),
        spec: Some(batch::JobSpec {
            backoff_limit: Some(4),
            template: Some(pod_template()),
            ..Default::default()
        }),
        status: Some(batch::JobStatus::default()),
    };
    assert_eq!(
        decoded(&body("batch/v1", "Job", &job)),
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "pi", "creationTimestamp": null},
            "spec": {
                "template": {
                    "metadata": {"creationTimestamp": null},
                    "spec": {
                        "containers": [{
                            "name": "pi",
                            "image": "perl:5.34",
                            "command": ["perl", "-Mbignum=bpi", "-wle"],
                            "args": ["print bpi(2000)"],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                        }],
                        "restartPolicy": "Never",
                        "terminationGracePeriodSeconds": 0,
                    },
                },
                "backoffLimit": 4,
            },
            "status": {},
        })
    );
}

#[test]
fn cron_job_decodes_under_batch_v1_and_v1beta1() {
    let cron_job = batch::CronJob {
        metadata: Some(object_meta("tick")),
        spec: Some(batch::CronJobSpec {
            schedule: Some("*/1 * * * *".to_owned()),
            job_template: Some(batch::JobTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    creation_timestamp: Some(meta::Time::default()),
                    ..Default::default()
                }),
                spec: Some(batch::JobSpec {
                    template: Some(pod_template()),
                    ..Default::default()
                }),
            }),
            suspend: Some(false),
            ..Default::default()
        }),
        status: None,
    };
    let json = decoded(&body("batch/v1", "CronJob", &cron_job));
    assert_eq!(json["spec"]["schedule"], "*/1 * * * *");
    assert_eq!(json["spec"]["suspend"], false);
    assert_eq!(
        json["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"],
        "Never"
    );
    assert_eq!(
        json["spec"]["jobTemplate"]["metadata"],
        json!({"creationTimestamp": null})
    );
    assert!(json.get("status").is_none());

    let v1beta1 = decoded(&body("batch/v1beta1", "CronJob", &cron_job));
    assert_eq!(v1beta1["apiVersion"], "batch/v1beta1");
    assert_eq!(v1beta1["spec"], json["spec"]);
}

#[test]
fn service_target_port_is_a_number_or_a_string() {
    let port = |name: &str, target: IntOrString| core::ServicePort {
        name: Some(name.to_owned()),
        protocol: Some("TCP".to_owned()),
        port: Some(80),
        target_port: Some(target),
        ..Default::default()
    };
    let service = core::Service {
        metadata: Some(object_meta("web")),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port(
                    "numbered",
                    IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: Some(String::new()),
                    },
                ),
                port(
                    "named",
                    IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("http".to_owned()),
                    },
                ),
            ],
            selector: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
            r#type: Some("ClusterIP".to_owned()),
            ..Default::default()
        }),
        status: None,
    };
    let json = decoded(&body("v1", "Service", &service));
    assert_eq!(
        json["spec"]["ports"],
        json!([
            {"name": "numbered", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "named", "protocol": "TCP", "port": 80, "targetPort": "http"},
        ])
    );
    assert_eq!(json["spec"]["type"], "ClusterIP");
    assert_eq!(json["spec"]["selector"], json!({"app": "web"}));
}

#[test]
fn pod_field_names_are_restored_from_openapi_property_names() {
    let pod = core::Pod {
        metadata: Some(object_meta("p")),
        spec: Some(core::PodSpec {
            host_ipc: Some(true),
            host_pid: Some(false),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            pod_ip: Some("10.0.0.7".to_owned()),
            host_ip: Some("192.0.2.1".to_owned()),
            ..Default::default()
        }),
    };
    let property_names = |definition: &str| -> Option<Vec<String>> {
        match definition {
            "io.k8s.api.core.v1.PodSpec" => Some(strings(&["containers", "hostIPC", "hostPID"])),
            "io.k8s.api.core.v1.PodStatus" => Some(strings(&["hostIP", "phase", "podIP"])),
            _ => None,
        }
    };
    let json = decode(&body("v1", "Pod", &pod), &property_names).expect("pod decodes");
    assert_eq!(json["spec"], json!({"hostIPC": true, "hostPID": false}));
    assert_eq!(
        json["status"],
        json!({"hostIP": "192.0.2.1", "podIP": "10.0.0.7"})
    );

    // Without OpenAPI names, lowerCamelCase is the best guess.
    let guessed = decoded(&body("v1", "Pod", &pod));
    assert_eq!(guessed["spec"]["hostIpc"], true);
    assert_eq!(guessed["status"]["podIp"], "10.0.0.7");
}

#[test]
fn token_request_decodes_under_authentication_group() {
    let request = authn::TokenRequest {
        metadata: Some(object_meta("")),
        spec: Some(authn::TokenRequestSpec {
            audiences: strings(&["https://kubernetes.default.svc"]),
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        }),
        status: Some(authn::TokenRequestStatus {
            token: Some(String::new()),
            expiration_timestamp: Some(meta::Time::default()),
        }),
    };
    assert_eq!(
        decoded(&body("authentication.k8s.io/v1", "TokenRequest", &request)),
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"creationTimestamp": null},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600},
            "status": {"expirationTimestamp": null},
        })
    );
}

#[test]
fn self_subject_access_review_decodes_resource_attributes() {
    let review = authz::SelfSubjectAccessReview {
        metadata: Some(object_meta("")),
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: Some("default".to_owned()),
                verb: Some("create".to_owned()),
                group: Some(String::new()),
                version: Some(String::new()),
                resource: Some("pods".to_owned()),
                subresource: Some(String::new()),
                name: Some(String::new()),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(false),
            ..Default::default()
        }),
    };
    assert_eq!(
        decoded(&body(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &review
        )),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
            "status": {"allowed": false},
        })
    );
}

#[test]
fn self_subject_review_decodes_with_empty_status() {
    let review = authn::SelfSubjectReview {
        metadata: Some(object_meta("")),
        status: Some(authn::SelfSubjectReviewStatus::default()),
    };
    assert_eq!(
        decoded(&body(
            "authentication.k8s.io/v1",
            "SelfSubjectReview",
            &review
        )),
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": null},
            "status": {},
        })
    );
}

#[test]
fn role_keeps_the_empty_core_api_group_in_lists() {
    use k8s_pb::api::rbac::v1 as rbac;
    let role = rbac::Role {
        metadata: Some(object_meta("pod-reader")),
        rules: vec![rbac::PolicyRule {
            verbs: strings(&["get", "list"]),
            api_groups: strings(&[""]),
            resources: strings(&["pods"]),
            ..Default::default()
        }],
    };
    assert_eq!(
        decoded(&body("rbac.authorization.k8s.io/v1", "Role", &role)),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-reader", "creationTimestamp": null},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
        })
    );
}

#[test]
fn times_are_rfc3339_and_a_zero_time_is_null() {
    let config_map = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_714_557_600),
                nanos: Some(987_654_321),
            }),
            deletion_timestamp: Some(meta::Time {
                seconds: Some(0),
                nanos: Some(0),
            }),
            ..object_meta("t")
        }),
        ..Default::default()
    };
    let json = decoded(&body("v1", "ConfigMap", &config_map));
    // metav1.Time marshals to JSON with second precision.
    assert_eq!(
        json["metadata"]["creationTimestamp"],
        "2024-05-01T10:00:00Z"
    );
    assert_eq!(json["metadata"]["deletionTimestamp"], Value::Null);
}

#[test]
fn micro_time_keeps_microseconds() {
    let event = k8s_pb::api::events::v1::Event {
        metadata: Some(object_meta("e")),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_714_557_600),
            nanos: Some(123_456_789),
        }),
        reason: Some("Started".to_owned()),
        ..Default::default()
    };
    let json = decoded(&body("events.k8s.io/v1", "Event", &event));
    assert_eq!(json["eventTime"], "2024-05-01T10:00:00.123456Z");
    assert_eq!(json["reason"], "Started");
}

#[test]
fn duration_is_a_go_duration_string() {
    use k8s_pb::metrics::pkg::apis::metrics::v1beta1::PodMetrics;
    for (nanos, expected) in [
        (3_600_000_000_000, "1h0m0s"),
        (30_000_000_000, "30s"),
        (90_000_000_000, "1m30s"),
        (500_000_000, "500ms"),
        (0, "0s"),
    ] {
        let metrics = PodMetrics {
            metadata: Some(object_meta("m")),
            window: Some(meta::Duration {
                duration: Some(nanos),
            }),
            ..Default::default()
        };
        let json = decoded(&body("metrics.k8s.io/v1beta1", "PodMetrics", &metrics));
        assert_eq!(json["window"], expected, "{nanos}ns");
    }
}

#[test]
fn managed_fields_and_raw_extensions_embed_their_json() {
    let config_map = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: Some("kubectl".to_owned()),
                fields_type: Some("FieldsV1".to_owned()),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:data":{".":{}}}"#.to_vec()),
                }),
                ..Default::default()
            }],
            ..object_meta("m")
        }),
        ..Default::default()
    };
    let json = decoded(&body("v1", "ConfigMap", &config_map));
    assert_eq!(
        json["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}}}}])
    );

    let revision = k8s_pb::api::apps::v1::ControllerRevision {
        metadata: Some(object_meta("r")),
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(br#"{"spec":{"replicas":3}}"#.to_vec()),
        }),
        revision: Some(2),
    };
    let json = decoded(&body("apps/v1", "ControllerRevision", &revision));
    assert_eq!(json["data"], json!({"spec": {"replicas": 3}}));
    assert_eq!(json["revision"], 2);
}

#[test]
fn negative_int32_values_survive() {
    let deployment = k8s_pb::api::apps::v1::Deployment {
        metadata: Some(object_meta("d")),
        spec: Some(k8s_pb::api::apps::v1::DeploymentSpec {
            replicas: Some(-1),
            ..Default::default()
        }),
        status: None,
    };
    let json = decoded(&body("apps/v1", "Deployment", &deployment));
    assert_eq!(json["spec"]["replicas"], -1);
}

#[test]
fn kind_spelled_with_initialisms_is_found() {
    let driver = k8s_pb::api::storage::v1::CSIDriver {
        metadata: Some(object_meta("csi.example.com")),
        spec: Some(k8s_pb::api::storage::v1::CSIDriverSpec {
            attach_required: Some(true),
            ..Default::default()
        }),
    };
    let json = decoded(&body("storage.k8s.io/v1", "CSIDriver", &driver));
    assert_eq!(json["kind"], "CSIDriver");
    assert_eq!(json["spec"]["attachRequired"], true);
}

#[test]
fn wrong_magic_is_rejected() {
    let mut bytes = body("v1", "ConfigMap", &core::ConfigMap::default());
    bytes[0] = b'K';
    assert!(matches!(
        decode(&bytes, &no_names),
        Err(ProtobufError::BadMagic)
    ));
    assert!(matches!(
        decode(b"", &no_names),
        Err(ProtobufError::BadMagic)
    ));
    assert!(matches!(
        decode(br#"{"kind":"ConfigMap"}"#, &no_names),
        Err(ProtobufError::BadMagic)
    ));
}

#[test]
fn truncated_varint_is_rejected() {
    let mut bytes = b"k8s\0".to_vec();
    bytes.extend([0x0a, 0x80]);
    assert!(matches!(
        decode(&bytes, &no_names),
        Err(ProtobufError::Truncated(_))
    ));
}

#[test]
fn length_past_end_is_rejected() {
    let mut bytes = b"k8s\0".to_vec();
    bytes.extend([0x12, 0x7f, 0x01, 0x02]);
    assert!(matches!(
        decode(&bytes, &no_names),
        Err(ProtobufError::LengthPastEnd { len: 127, .. })
    ));
}

#[test]
fn unknown_kind_and_missing_type_meta_are_rejected() {
    let unknown = decode(&body("v1", "Gizmo", &core::ConfigMap::default()), &no_names);
    assert!(matches!(unknown, Err(ProtobufError::UnknownKind { .. })));
    assert_eq!(
        unknown.map_err(|e| e.to_string()).err().as_deref(),
        Some(r#"unknown kind: no protobuf schema for apiVersion "v1", kind "Gizmo""#)
    );
    assert!(matches!(
        decode(b"k8s\0", &no_names),
        Err(ProtobufError::MissingTypeMeta)
    ));
}

#[test]
fn wire_type_mismatch_is_rejected() {
    // ConfigMap.immutable (tag 4, bool) sent as a length-delimited field.
    let mut raw = Vec::new();
    raw.extend([0x22, 0x01, b'x']);
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".to_owned()),
            kind: Some("ConfigMap".to_owned()),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut bytes = b"k8s\0".to_vec();
    bytes.extend(unknown.encode_to_vec());
    let err = decode(&bytes, &no_names).expect_err("mismatch");
    assert!(
        matches!(err, ProtobufError::WireTypeMismatch { .. }),
        "{err}"
    );
}

#[test]
fn invalid_utf8_is_rejected() {
    let config_map = core::ConfigMap {
        metadata: Some(object_meta("x")),
        ..Default::default()
    };
    let mut bytes = body("v1", "ConfigMap", &config_map);
    let at = bytes
        .windows(1)
        .rposition(|w| w == b"x")
        .expect("name in body");
    bytes[at] = 0xff;
    assert!(matches!(
        decode(&bytes, &no_names),
        Err(ProtobufError::InvalidUtf8 { .. })
    ));
}

fn push_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[test]
fn deeply_nested_messages_are_rejected_without_overflowing_the_stack() {
    // JSONSchemaProps.not (tag 28, itself a JSONSchemaProps) nested far beyond any real schema.
    let mut schema: Vec<u8> = Vec::new();
    for _ in 0..5_000 {
        let mut outer = Vec::new();
        push_varint(&mut outer, (28 << 3) | 2);
        push_varint(&mut outer, schema.len());
        outer.extend(&schema);
        schema = outer;
    }
    // CustomResourceValidation.openAPIV3Schema (tag 1).
    let mut raw = vec![0x0a];
    push_varint(&mut raw, schema.len());
    raw.extend(&schema);
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("apiextensions.k8s.io/v1".to_owned()),
            kind: Some("CustomResourceValidation".to_owned()),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut bytes = b"k8s\0".to_vec();
    bytes.extend(unknown.encode_to_vec());
    let result = decode(&bytes, &no_names);
    assert!(
        matches!(result, Err(ProtobufError::TooDeep(_))),
        "{result:?}"
    );
}

#[test]
fn every_truncation_of_a_valid_body_fails_cleanly() {
    let job = batch::Job {
        metadata: Some(object_meta("pi")),
        spec: Some(batch::JobSpec {
            template: Some(pod_template()),
            ..Default::default()
        }),
        status: None,
    };
    let type_meta = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("batch/v1".to_owned()),
            kind: Some("Job".to_owned()),
        }),
        ..Default::default()
    };
    let envelope = Unknown {
        raw: Some(job.encode_to_vec()),
        ..type_meta.clone()
    };
    let mut bytes = b"k8s\0".to_vec();
    bytes.extend(envelope.encode_to_vec());
    assert!(decode(&bytes, &no_names).is_ok());
    // Cut right after typeMeta, the body is a valid Job with no fields; every other cut
    // lands inside a field.
    let valid_cut = 4 + type_meta.encoded_len();
    for len in (0..bytes.len()).filter(|len| *len != valid_cut) {
        assert!(
            decode(&bytes[..len], &no_names).is_err(),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn random_garbage_never_panics() {
    // A fixed-seed xorshift, so failures reproduce.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let valid = body(
        "v1",
        "ConfigMap",
        &core::ConfigMap {
            metadata: Some(object_meta("g")),
            data: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            ..Default::default()
        },
    );
    for _ in 0..2_000 {
        let len = (next() % 64) as usize;
        let mut bytes = b"k8s\0".to_vec();
        bytes.extend((0..len).map(|_| next() as u8));
        let _ = decode(&bytes, &no_names);

        // And single-byte corruptions of a valid body.
        let mut corrupted = valid.clone();
        let at = 4 + (next() as usize) % (corrupted.len() - 4);
        corrupted[at] = next() as u8;
        let _ = decode(&corrupted, &no_names);
    }
}
