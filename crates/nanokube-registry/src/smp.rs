//! Strategic merge patch (`application/strategic-merge-patch+json`) for the built-in kinds,
//! following apimachinery's `strategicpatch` apply side (`StrategicMergeMapPatch`).
//!
//! A strategic merge patch is a JSON merge patch whose lists know how to merge: a list whose
//! Go field carries `patchStrategy:"merge"` is merged item by item on its `patchMergeKey`
//! (containers by `name`, env by `name`, conditions by `type`, …) or, for lists of strings
//! such as `metadata.finalizers`, as a set union. Every other list is replaced whole. The
//! patch may carry directives: `$patch` (`replace`, `merge`, `delete`), `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`; none of them ever
//! reaches the result.
//!
//! Upstream reads the merge keys from struct tags; here they are the table in [`field`],
//! transcribed from `k8s.io/api` v0.32 (`core/v1`, `apps/v1`, `batch/v1`, `policy/v1`,
//! `autoscaling/v2`) and `metav1.ObjectMeta`. Kinds without an entry in [`root_of`] (custom
//! resources) fall back to RFC 7386 JSON merge patch.
//!
//! Where upstream's behaviour is an accident of Go (slice aliasing, random map order,
//! directives left inside values it copies verbatim), this module keeps the observable
//! common-case result and cleans the rest: list order follows upstream's rules for patches
//! kubectl sends, and values copied from the patch are stripped of directives and nulls.

use serde_json::{Map, Value};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Why a strategic merge patch could not be applied; the messages follow apimachinery's.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PatchError {
    /// The patch body is JSON but not an object (what Go's decoder says about it).
    #[error("json: cannot unmarshal {found} into Go value of type map[string]interface {{}}")]
    NotAnObject { found: &'static str },
    /// A `$patch` directive other than `replace`, `merge` or `delete`.
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownDirective { directive: String, map: String },
    /// A list item (of the patch or the object) lacks the list's merge key.
    #[error("map: {item} does not contain declared merge key: {key}")]
    MissingMergeKey { item: String, key: String },
    /// A list of objects was to be merged but the field declares no merge key.
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKey { field: String },
    /// `$retainKeys` is not a list, or the patch sets a key the list doesn't retain.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    /// A `$deleteFromPrimitiveList/…` key or value that cannot be applied.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    /// A `$setElementOrder…` key without `/<field>`.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    /// The patch list's items are not in the relative order `$setElementOrder` gives.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch { patch: String, order: String },
    #[error("lists of lists are not supported")]
    ListOfLists,
    #[error("list element types are not identical: {0}")]
    MixedListTypes(String),
    /// A value has another JSON type than the directive or merge needs.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
}

/// True when `group`/`kind` is a built-in kind that accepts strategic merge patches;
/// anything else (custom resources) is patched as a JSON merge patch by [`apply`], and the
/// API server answers 415 to a strategic patch of it.
pub fn supports_strategic_merge(group: &str, kind: &str) -> bool {
    root_of(group, kind).is_some()
}

/// Applies a strategic merge patch to `original`, an object of the given group and kind
/// (e.g. `("batch", "Job")`, `("", "Pod")`, `("apps", "Deployment")`). Unknown kinds get
/// JSON merge patch semantics (RFC 7386).
pub fn apply(
    original: &Value,
    patch: &Value,
    group: &str,
    kind: &str,
) -> Result<Value, PatchError> {
    let patch = match patch {
        Value::Object(patch) => patch,
        // Go decodes `null` into a nil map: an empty patch.
        Value::Null => return Ok(original.clone()),
        other => {
            return Err(PatchError::NotAnObject {
                found: json_kind_name(other),
            });
        }
    };
    let Some(root) = root_of(group, kind) else {
        let mut document = original.clone();
        json_patch::merge(&mut document, &Value::Object(patch.clone()));
        return Ok(document);
    };
    let original = match original {
        Value::Object(original) => original.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch.clone(), Schema::Object(root)).map(Value::Object)
}

// ---------------------------------------------------------------------------------------------
// The merge-key table
// ---------------------------------------------------------------------------------------------

/// The top-level shape of an object, as far as patch strategies are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Pod,
    PodTemplate,
    /// Kinds whose `spec.template` is a pod template and whose status has conditions:
    /// Job, Deployment, ReplicaSet, StatefulSet, DaemonSet, ReplicationController.
    Workload,
    CronJob,
    Node,
    Service,
    ServiceAccount,
    PodDisruptionBudget,
    /// Kinds whose only strategic list besides metadata is `status.conditions`.
    StatusConditions,
    /// Kinds with nothing strategic beyond `metadata`.
    MetadataOnly,
}

/// Which built-in kinds are patched strategically, and their shape.
fn root_of(group: &str, kind: &str) -> Option<Root> {
    let root = match (group, kind) {
        ("", "Pod") => Root::Pod,
        ("", "PodTemplate") => Root::PodTemplate,
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => Root::Workload,
        ("batch", "CronJob") => Root::CronJob,
        ("", "Node") => Root::Node,
        ("", "Service") => Root::Service,
        ("", "ServiceAccount") => Root::ServiceAccount,
        ("policy", "PodDisruptionBudget") => Root::PodDisruptionBudget,
        ("", "Namespace" | "PersistentVolumeClaim")
        | ("autoscaling", "HorizontalPodAutoscaler") => Root::StatusConditions,
        (
            "",
            "ConfigMap" | "Secret" | "Endpoints" | "Event" | "LimitRange" | "ResourceQuota"
            | "PersistentVolume" | "Binding",
        )
        | ("apps", "ControllerRevision")
        | ("events.k8s.io", "Event")
        | ("coordination.k8s.io", "Lease")
        | (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        )
        | ("networking.k8s.io", "Ingress" | "IngressClass" | "NetworkPolicy")
        | ("scheduling.k8s.io", "PriorityClass")
        | ("storage.k8s.io", "StorageClass")
        | ("autoscaling", "Scale")
        | ("apiextensions.k8s.io", "CustomResourceDefinition") => Root::MetadataOnly,
        _ => return None,
    };
    Some(root)
}

/// A position in an object whose fields have known patch strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Nothing known: maps merge, lists are replaced.
    Unknown,
    Object(Root),
    ObjectMeta,
    PodTemplateSpec,
    PodSpec,
    Container,
    PodStatus,
    /// A spec holding a pod `template` (JobSpec, DeploymentSpec, ReplicaSetSpec, …).
    TemplateSpec,
    CronJobSpec,
    JobTemplateSpec,
    ConditionsStatus,
    NodeSpec,
    NodeStatus,
    ServiceSpec,
    PodDisruptionBudgetSpec,
}

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// No `patchStrategy`: the patch's list replaces the original.
    Replace,
    /// `patchStrategy:"merge"` with a `patchMergeKey` (lists of objects).
    MergeByKey(&'static str),
    /// `patchStrategy:"merge"` without a key: a list of scalars merged as a set.
    MergePrimitives,
}

impl ListStrategy {
    fn merges(self) -> bool {
        self != Self::Replace
    }

    fn merge_key(self) -> Option<&'static str> {
        match self {
            Self::MergeByKey(key) => Some(key),
            _ => None,
        }
    }
}

/// The patch metadata of one field: the schema of its value (of its items, for lists),
/// its list strategy and whether a map value is replaced instead of merged
/// (`patchStrategy:"replace"`).
#[derive(Debug, Clone, Copy)]
struct FieldMeta {
    schema: Schema,
    list: ListStrategy,
    replace_map: bool,
}

/// The `patchStrategy`/`patchMergeKey` tags of `key` inside a value of `schema`.
fn field(schema: Schema, key: &str) -> FieldMeta {
    use ListStrategy::{MergeByKey, MergePrimitives, Replace};
    use Schema as S;
    let (schema, list) = match (schema, key) {
        (S::Object(_) | S::PodTemplateSpec | S::JobTemplateSpec, "metadata") => {
            (S::ObjectMeta, Replace)
        }
        (S::ObjectMeta, "ownerReferences") => (S::Unknown, MergeByKey("uid")),
        (S::ObjectMeta, "finalizers") => (S::Unknown, MergePrimitives),

        (S::Object(Root::Pod), "spec") | (S::PodTemplateSpec, "spec") => (S::PodSpec, Replace),
        (S::Object(Root::Pod), "status") => (S::PodStatus, Replace),
        (S::Object(Root::PodTemplate), "template") | (S::TemplateSpec, "template") => {
            (S::PodTemplateSpec, Replace)
        }
        (S::Object(Root::Workload), "spec") | (S::JobTemplateSpec, "spec") => {
            (S::TemplateSpec, Replace)
        }
        (S::Object(Root::CronJob), "spec") => (S::CronJobSpec, Replace),
        (S::CronJobSpec, "jobTemplate") => (S::JobTemplateSpec, Replace),
        (
            S::Object(
                Root::Workload | Root::Service | Root::PodDisruptionBudget | Root::StatusConditions,
            ),
            "status",
        ) => (S::ConditionsStatus, Replace),
        (S::Object(Root::Node), "spec") => (S::NodeSpec, Replace),
        (S::Object(Root::Node), "status") => (S::NodeStatus, Replace),
        (S::Object(Root::Service), "spec") => (S::ServiceSpec, Replace),
        (S::Object(Root::ServiceAccount), "secrets") => (S::Unknown, MergeByKey("name")),
        (S::Object(Root::PodDisruptionBudget), "spec") => (S::PodDisruptionBudgetSpec, Replace),
        (S::PodDisruptionBudgetSpec, "selector") => {
            return FieldMeta {
                schema: S::Unknown,
                list: Replace,
                replace_map: true,
            };
        }

        (S::PodSpec, "containers" | "initContainers" | "ephemeralContainers") => {
            (S::Container, MergeByKey("name"))
        }
        // `patchStrategy:"merge,retainKeys"`: the retainKeys half only tells clients to send
        // `$retainKeys`, which is honoured wherever it appears.
        (S::PodSpec, "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims") => {
            (S::Unknown, MergeByKey("name"))
        }
        (S::PodSpec, "hostAliases") => (S::Unknown, MergeByKey("ip")),
        (S::PodSpec, "topologySpreadConstraints") => (S::Unknown, MergeByKey("topologyKey")),
        (S::Container, "env") => (S::Unknown, MergeByKey("name")),
        (S::Container, "ports") => (S::Unknown, MergeByKey("containerPort")),
        (S::Container, "volumeMounts") => (S::Unknown, MergeByKey("mountPath")),
        (S::Container, "volumeDevices") => (S::Unknown, MergeByKey("devicePath")),

        (S::PodStatus | S::ConditionsStatus | S::NodeStatus, "conditions") => {
            (S::Unknown, MergeByKey("type"))
        }
        (S::PodStatus, "podIPs" | "hostIPs") => (S::Unknown, MergeByKey("ip")),
        (S::PodStatus, "resourceClaimStatuses") => (S::Unknown, MergeByKey("name")),
        (S::NodeStatus, "addresses") => (S::Unknown, MergeByKey("type")),
        (S::NodeSpec, "podCIDRs") => (S::Unknown, MergePrimitives),
        (S::ServiceSpec, "ports") => (S::Unknown, MergeByKey("port")),
        _ => (S::Unknown, Replace),
    };
    FieldMeta {
        schema,
        list,
        replace_map: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Maps
// ---------------------------------------------------------------------------------------------

/// `mergeMap`: merges `patch` into `original`, both values of `schema`.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(DIRECTIVE);
                // The map becomes exactly the patch, minus directives and nulls.
                return merge_map(Map::new(), patch, schema);
            }
            // Upstream leaves an empty map behind, not a missing field.
            Some("delete") => return Ok(Map::new()),
            // The default behaviour, spelled out.
            Some("merge") => {
                patch.shift_remove(DIRECTIVE);
            }
            _ => {
                return Err(PatchError::UnknownDirective {
                    directive: directive
                        .as_str()
                        .map_or_else(|| directive.to_string(), str::to_owned),
                    map: Value::Object(patch).to_string(),
                });
            }
        }
    }

    apply_retain_keys(&mut original, &mut patch)?;
    apply_set_element_order(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            delete_from_primitive_list(&mut original, &key, patch_value)?;
            continue;
        }
        if key.starts_with('$') {
            // Not a directive we know; like an unknown field upstream, it is dropped.
            continue;
        }
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let meta = field(schema, &key);
        let merged = match original.get_mut(&key) {
            Some(slot) => match (std::mem::take(slot), patch_value) {
                (Value::Object(o), Value::Object(p)) if !meta.replace_map => {
                    Some(Value::Object(merge_map(o, p, meta.schema)?))
                }
                (Value::Array(o), Value::Array(p)) => Some(Value::Array(merge_list(o, p, meta)?)),
                (_, p) => take(p, meta)?,
            },
            None => take(patch_value, meta)?,
        };
        match merged {
            Some(value) => {
                original.insert(key, value);
            }
            None => {
                original.shift_remove(&key);
            }
        }
    }
    Ok(original)
}

/// The value a field takes when the original has no value of the same JSON type: the
/// patch's own, cleaned of directives and nulls. `None` when it is a `$patch: delete` map.
fn take(value: Value, meta: FieldMeta) -> Result<Option<Value>, PatchError> {
    Ok(match value {
        Value::Null => None,
        Value::Object(map) => {
            if map.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                None
            } else {
                Some(Value::Object(merge_map(Map::new(), map, meta.schema)?))
            }
        }
        Value::Array(items) => Some(Value::Array(take_list(items, meta.schema)?)),
        scalar => Some(scalar),
    })
}

/// A list copied from the patch (`removeDirectives`): items that are directives are dropped
/// and object items are cleaned.
fn take_list(items: Vec<Value>, schema: Schema) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Object(map) if map.contains_key(DIRECTIVE) => {}
            Value::Object(map) => out.push(Value::Object(merge_map(Map::new(), map, schema)?)),
            Value::Array(inner) => out.push(Value::Array(take_list(inner, Schema::Unknown)?)),
            scalar => out.push(scalar),
        }
    }
    Ok(out)
}

/// `$retainKeys`: the original keeps only the listed keys, and the patch may set no others.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadRetainKeys);
    };
    let retained = |key: &str| retain.iter().any(|k| k.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(key) {
            return Err(PatchError::BadRetainKeys);
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes the listed scalars from the original list.
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    directive_key: &str,
    to_delete: Value,
) -> Result<(), PatchError> {
    let key = directive_field(directive_key, DELETE_FROM_PRIMITIVE_LIST)
        .ok_or(PatchError::BadPrimitiveList)?;
    if to_delete.is_null() {
        // Upstream drops the whole list for a null deletion list.
        original.shift_remove(key);
        return Ok(());
    }
    let Some(Value::Array(list)) = original.get_mut(key) else {
        // Nothing to delete from; never creates the list.
        return Ok(());
    };
    let Value::Array(to_delete) = to_delete else {
        return Err(PatchError::BadPrimitiveList);
    };
    if list.is_empty() && to_delete.is_empty() {
        return Ok(());
    }
    if element_kind(&[list.as_slice(), to_delete.as_slice()])? == Some(ElementKind::Object) {
        return Err(PatchError::BadPrimitiveList);
    }
    list.retain(|item| !to_delete.iter().any(|d| json_eq(d, item)));
    Ok(())
}

/// The field name after `<prefix>/`, or `None` when the key is not `prefix/field`.
fn directive_field<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let (head, field) = key.split_once('/')?;
    (head == prefix).then_some(field)
}

// ---------------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------------

/// `mergeSliceHandler`: merges by the field's strategy, or replaces.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: FieldMeta,
) -> Result<Vec<Value>, PatchError> {
    if meta.list.merges() {
        merge_slice(original, patch, meta.list.merge_key(), meta.schema)
    } else {
        take_list(patch, meta.schema)
    }
}

/// `mergeSlice`: merges a patch list into a list with `patchStrategy:"merge"`.
///
/// Order (upstream `normalizeElementOrder`): items named by the patch keep the patch's
/// order, the others keep the original's, and the two runs are interleaved by the
/// original's order — so an item the original lacks comes before the original's items that
/// the patch doesn't mention.
fn merge_slice(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: Option<&str>,
    schema: Schema,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if element_kind(&[original.as_slice(), patch.as_slice()])? != Some(ElementKind::Object) {
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for item in original.iter().chain(patch.iter()) {
            if !merged.iter().any(|m| json_eq(m, item)) {
                merged.push(item.clone());
            }
        }
        return normalize_order(merged, &patch, &original, None);
    }
    let Some(merge_key) = merge_key else {
        return Err(PatchError::NoMergeKey {
            field: "list".to_owned(),
        });
    };

    let (patch, replace) = split_special_items(&mut original, patch, merge_key)?;
    if replace {
        // `$patch: replace` in a merging list: the list becomes the patch's other items.
        return take_list(patch, schema);
    }
    let server_order = original.clone();
    for item in &patch {
        let Value::Object(item) = item else {
            continue;
        };
        let key_value = item
            .get(merge_key)
            .ok_or_else(|| missing_merge_key(item, merge_key))?;
        let found = original.iter_mut().find(|o| {
            o.as_object()
                .and_then(|o| o.get(merge_key))
                .is_some_and(|v| json_eq(v, key_value))
        });
        match found {
            Some(slot) => {
                if let Value::Object(existing) = std::mem::take(slot) {
                    *slot = Value::Object(merge_map(existing, item.clone(), schema)?);
                }
            }
            None => original.push(Value::Object(merge_map(Map::new(), item.clone(), schema)?)),
        }
    }
    normalize_order(original, &patch, &server_order, Some(merge_key))
}

/// `mergeSliceWithSpecialElements`: applies `$patch: delete` items to `original` and
/// returns the patch's ordinary items, plus whether a `$patch: replace` item was present.
fn split_special_items(
    original: &mut Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, bool), PatchError> {
    let mut ordinary = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.as_object().and_then(|m| m.get(DIRECTIVE)) else {
            ordinary.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let Some(key_value) = item.as_object().and_then(|m| m.get(merge_key)) else {
                    return Err(missing_merge_key_value(&item, merge_key));
                };
                original.retain(|o| {
                    !o.as_object()
                        .and_then(|o| o.get(merge_key))
                        .is_some_and(|v| json_eq(v, key_value))
                });
            }
            Some("replace") => replace = true,
            // The default behaviour of a merging list, spelled out.
            Some("merge") => {}
            _ => {
                return Err(PatchError::UnknownDirective {
                    directive: directive
                        .as_str()
                        .map_or_else(|| directive.to_string(), str::to_owned),
                    map: item.to_string(),
                });
            }
        }
    }
    Ok((ordinary, replace))
}

/// `$setElementOrder/<field>`: merges that field's patch list (if any) and then orders the
/// result: the listed items in the listed order, the others where the original had them.
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Schema,
) -> Result<(), PatchError> {
    let directive_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive_key in directive_keys {
        let Some(order) = patch.shift_remove(&directive_key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type("[]interface {}", &order));
        };
        let key = directive_field(&directive_key, SET_ELEMENT_ORDER)
            .ok_or(PatchError::BadSetElementOrder)?
            .to_owned();
        let original_list = match original.get(&key) {
            None => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.get(&key) {
            None => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let meta = field(schema, &key);
        let merge_key = meta.list.merge_key();
        validate_set_element_order(patch_list.as_deref().unwrap_or_default(), &order, merge_key)?;

        let (merged, server_order) = match (original_list, patch_list) {
            (None, None) => continue,
            (Some(original_list), None) => (original_list.clone(), original_list),
            (None, Some(patch_list)) => (take_list(patch_list, meta.schema)?, Vec::new()),
            (Some(original_list), Some(patch_list)) => {
                let server_order = live_order(&original_list, &patch_list, meta.list);
                (merge_list(original_list, patch_list, meta)?, server_order)
            }
        };
        patch.shift_remove(&key);

        let kind = element_kind(&[merged.as_slice(), order.as_slice()])?;
        let ordered = match (kind, merge_key) {
            // Nothing to order, or a list of objects without a key to identify them by.
            (None, _) | (Some(ElementKind::Object), None) => merged,
            _ => normalize_order(merged, &order, &server_order, merge_key)?,
        };
        original.insert(key, Value::Array(ordered));
    }
    Ok(())
}

/// The original list's order as upstream sees it after merging: deleted items gone and
/// newly added items behind the survivors, cut at the original length (Go's merge mutates
/// the original slice's backing array in place, and the order pass reads it afterwards).
fn live_order(original: &[Value], patch: &[Value], strategy: ListStrategy) -> Vec<Value> {
    let ListStrategy::MergeByKey(merge_key) = strategy else {
        return original.to_vec();
    };
    let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).cloned();
    let directive_of = |v: &Value| {
        v.as_object()
            .and_then(|m| m.get(DIRECTIVE))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if patch
        .iter()
        .any(|p| directive_of(p).as_deref() == Some("replace"))
    {
        return original.to_vec();
    }
    let deleted: Vec<Value> = patch
        .iter()
        .filter(|p| directive_of(p).as_deref() == Some("delete"))
        .filter_map(key_of)
        .collect();
    let mut live: Vec<Value> = original
        .iter()
        .filter(|o| !key_of(o).is_some_and(|k| deleted.iter().any(|d| json_eq(d, &k))))
        .cloned()
        .collect();
    for item in patch.iter().filter(|p| directive_of(p).is_none()) {
        let Some(key) = key_of(item) else { continue };
        let known = live
            .iter()
            .any(|l| key_of(l).is_some_and(|k| json_eq(&k, &key)));
        if !known {
            live.push(item.clone());
        }
    }
    live.truncate(original.len());
    live
}

/// `validatePatchWithSetOrderList`: the patch list's items (deletions aside) must appear
/// in `$setElementOrder` in the same relative order.
fn validate_set_element_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut items = Vec::with_capacity(patch_list.len());
    for item in patch_list {
        if merge_key.is_some() {
            let Value::Object(map) = item else {
                return Err(bad_arg_type("map[string]interface {}", item));
            };
            if map.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        items.push(item);
    }
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE))
        {
            p += 1;
            continue;
        }
        if merge_key_value_equal(items[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() && o >= order.len() {
        return Err(PatchError::SetElementOrderMismatch {
            patch: Value::Array(patch_list.to_vec()).to_string(),
            order: Value::Array(order.to_vec()).to_string(),
        });
    }
    Ok(())
}

fn merge_key_value_equal(
    left: &Value,
    right: &Value,
    merge_key: Option<&str>,
) -> Result<bool, PatchError> {
    let Some(merge_key) = merge_key else {
        return Ok(json_eq(left, right));
    };
    let value_of = |v: &Value| -> Result<Value, PatchError> {
        let Value::Object(map) = v else {
            return Err(bad_arg_type("map[string]interface {}", v));
        };
        map.get(merge_key)
            .cloned()
            .ok_or_else(|| missing_merge_key(map, merge_key))
    };
    Ok(json_eq(&value_of(left)?, &value_of(right)?))
}

/// Orders a merged list (`normalizeElementOrder` + `mergeSortedSlice`): the items found in
/// `patch_order` sorted by it, the rest sorted by `server_order`, then interleaved — a
/// server-only item goes first only when the server order puts it before the next patch
/// item.
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let identity = |v: &Value| -> Result<Value, PatchError> {
        match merge_key {
            None => Ok(v.clone()),
            Some(key) => match v {
                Value::Object(map) => map
                    .get(key)
                    .cloned()
                    .ok_or_else(|| missing_merge_key(map, key)),
                other => Err(bad_arg_type("map[string]interface {}", other)),
            },
        }
    };
    let patch_ids = identities(patch_order, merge_key);
    let server_ids = identities(server_order, merge_key);
    let position = |ids: &[Option<Value>], id: &Value| {
        ids.iter()
            .position(|candidate| candidate.as_ref().is_some_and(|c| json_eq(c, id)))
    };

    let mut patch_items: Vec<(Value, Value)> = Vec::new();
    let mut server_only: Vec<(Value, Value)> = Vec::new();
    for item in merged {
        let id = identity(&item)?;
        if position(&patch_ids, &id).is_some() {
            patch_items.push((id, item));
        } else {
            server_only.push((id, item));
        }
    }
    // Stable sorts; an item missing from the order list (not produced by the merges above)
    // goes last.
    patch_items.sort_by_key(|(id, _)| position(&patch_ids, id).unwrap_or(usize::MAX));
    server_only.sort_by_key(|(id, _)| position(&server_ids, id).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((l, _)), Some((r, _))) => {
                match (position(&server_ids, l), position(&server_ids, r)) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, item)) = next {
            out.push(item);
        }
    }
    Ok(out)
}

/// The identity of each item for ordering: its merge key value, or itself for scalars.
fn identities(items: &[Value], merge_key: Option<&str>) -> Vec<Option<Value>> {
    items
        .iter()
        .map(|item| match merge_key {
            None => Some(item.clone()),
            Some(key) => item.as_object().and_then(|m| m.get(key)).cloned(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Null,
    Bool,
    Number,
    String,
    Object,
}

/// `sliceElementType`: the one JSON type of all items of the lists, `None` when empty.
fn element_kind(lists: &[&[Value]]) -> Result<Option<ElementKind>, PatchError> {
    let mut kind = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let this = match item {
            Value::Null => ElementKind::Null,
            Value::Bool(_) => ElementKind::Bool,
            Value::Number(_) => ElementKind::Number,
            Value::String(_) => ElementKind::String,
            Value::Object(_) => ElementKind::Object,
            Value::Array(_) => return Err(PatchError::ListOfLists),
        };
        match kind {
            None => kind = Some(this),
            Some(k) if k == this => {}
            Some(_) => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(PatchError::MixedListTypes(Value::Array(all).to_string()));
            }
        }
    }
    Ok(kind)
}

/// JSON equality where `1` and `1.0` are the same number (Go decodes both to float64).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(x), Some(y)) if x == y)
        }
        _ => a == b,
    }
}

fn missing_merge_key(item: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::MissingMergeKey {
        item: Value::Object(item.clone()).to_string(),
        key: key.to_owned(),
    }
}

fn missing_merge_key_value(item: &Value, key: &str) -> PatchError {
    PatchError::MissingMergeKey {
        item: item.to_string(),
        key: key.to_owned(),
    }
}

/// `mergepatch.ErrBadArgType`, with Go's names for the decoded JSON types.
fn bad_arg_type(expected: &'static str, actual: &Value) -> PatchError {
    let actual = match actual {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    };
    PatchError::BadArgType { expected, actual }
}

/// How Go's JSON decoder names a JSON value it cannot put into a map.
fn json_kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "finalizers": ["example.com/a"]
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "nginx:1",
                                "args": ["--a", "--b"],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                "terminationMessagePath": "/dev/termination-log"
                            },
                            {"name": "sidecar", "image": "busybox"}
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "restartPolicy": "Always"
                    }
                }
            },
            "status": {
                "conditions": [
                    {"type": "Available", "status": "True"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
                ]
            }
        })
    }

    fn patch_deployment(patch: Value) -> Value {
        apply(&deployment(), &patch, "apps", "Deployment").expect("patch applies")
    }

    fn container<'a>(object: &'a Value, name: &str) -> &'a Value {
        object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .expect("container present")
    }

    fn names(list: &Value) -> Vec<&str> {
        list.as_array()
            .map(|items| items.iter().filter_map(|i| i["name"].as_str()).collect())
            .unwrap_or_default()
    }

    fn has_directive(value: &Value) -> bool {
        match value {
            Value::Object(map) => map
                .iter()
                .any(|(k, v)| k.starts_with('$') || has_directive(v)),
            Value::Array(items) => items.iter().any(has_directive),
            _ => false,
        }
    }

    #[test]
    fn kubectl_set_image_changes_container_image_by_name() {
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [{"image": "nginx:2", "name": "app"}]
        }}}}));
        assert_eq!(container(&patched, "app")["image"], "nginx:2");
        assert_eq!(
            container(&patched, "app")["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(container(&patched, "app")["env"][1]["name"], "B");
        assert_eq!(container(&patched, "sidecar")["image"], "busybox");
        assert_eq!(
            names(&patched["spec"]["template"]["spec"]["containers"]),
            ["app", "sidecar"]
        );
        assert!(!has_directive(&patched));
    }

    #[test]
    fn kubectl_apply_second_time_merges_and_deletes_by_key() {
        // What `kubectl apply` sends after the user changed the image, dropped env B and
        // added env C in the manifest.
        let patched = patch_deployment(json!({
            "metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{…}"
            }},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                    "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
                    "image": "nginx:2",
                    "name": "app"
                }]
            }}}
        }));
        let app = container(&patched, "app");
        assert_eq!(app["image"], "nginx:2");
        assert_eq!(
            app["env"],
            json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
        );
        assert_eq!(
            patched["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "1"
        );
        assert_eq!(
            patched["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{…}"
        );
        assert!(!has_directive(&patched));
    }

    #[test]
    fn kubectl_apply_unchanged_manifest_leaves_object_alone() {
        let patched = patch_deployment(json!({}));
        assert_eq!(patched, deployment());
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}]
        }}}}));
        assert_eq!(patched, deployment());
    }

    #[test]
    fn kubectl_edit_patch_changes_scalars_adds_labels_and_nulls_delete() {
        let patched = patch_deployment(json!({
            "metadata": {"labels": {"tier": "front"}, "annotations": null},
            "spec": {"replicas": 3, "template": {"spec": {"restartPolicy": null}}}
        }));
        assert_eq!(patched["spec"]["replicas"], 3);
        assert_eq!(
            patched["metadata"]["labels"],
            json!({"app": "web", "tier": "front"})
        );
        assert!(patched["metadata"].get("annotations").is_none());
        assert!(
            patched["spec"]["template"]["spec"]
                .get("restartPolicy")
                .is_none()
        );
        assert_eq!(patched["metadata"]["name"], "web");
    }

    #[test]
    fn null_deletes_a_key_and_unmatched_nulls_are_dropped() {
        let patched =
            patch_deployment(json!({"metadata": {"labels": {"app": null, "nope": null}}}));
        assert_eq!(patched["metadata"]["labels"], json!({}));
    }

    #[test]
    fn env_is_merged_by_name() {
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "B", "value": "two"}, {"name": "D", "value": "4"}]}
        ]}}}}));
        let env = &container(&patched, "app")["env"];
        assert_eq!(env.as_array().map(Vec::len), Some(3));
        assert_eq!(names(env), ["A", "B", "D"]);
        assert_eq!(env[1]["value"], "two");
    }

    #[test]
    fn new_list_items_come_before_unmentioned_ones_without_set_element_order() {
        // Upstream `mergeSortedSlice`: a patch item the original lacks is placed before the
        // original items the patch doesn't mention.
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "logger", "image": "fluentd"}
        ]}}}}));
        assert_eq!(
            names(&patched["spec"]["template"]["spec"]["containers"]),
            ["logger", "app", "sidecar"]
        );
    }

    #[test]
    fn patch_order_wins_for_mentioned_items() {
        let original = json!({"spec": {"containers": [
            {"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}
        ]}});
        let patched = apply(
            &original,
            &json!({"spec": {"containers": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}]}}),
            "",
            "Pod",
        )
        .expect("patch applies");
        assert_eq!(
            patched["spec"]["containers"],
            json!([{"name": "2", "value": "b"}, {"name": "3", "value": "c"}, {"name": "1", "value": "a"}])
        );
    }

    #[test]
    fn set_element_order_reorders_a_merged_list() {
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]
        }}}}));
        assert_eq!(
            names(&patched["spec"]["template"]["spec"]["containers"]),
            ["sidecar", "app"]
        );
    }

    #[test]
    fn set_element_order_places_server_only_items_by_live_order() {
        // Upstream case "add map and delete map from merging list".
        let original = json!({"spec": {"containers": [
            {"name": "1"}, {"name": "2", "other": "b"}, {"name": "4", "other": "c"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3"}, {"name": "1", "$patch": "delete"}]
        }});
        let patched = apply(&original, &patch, "", "Pod").expect("patch applies");
        assert_eq!(
            patched["spec"]["containers"],
            json!([{"name": "2", "other": "b"}, {"name": "4", "other": "c"}, {"name": "3"}])
        );
    }

    #[test]
    fn set_element_order_mismatching_patch_is_rejected() {
        let original =
            json!({"spec": {"containers": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3", "value": "3"}, {"name": "1", "value": "1"}]
        }});
        let err = apply(&original, &patch, "", "Pod").expect_err("rejected");
        assert!(
            err.to_string()
                .contains("doesn't match $setElementOrder list")
        );
    }

    #[test]
    fn patch_delete_directive_removes_container_by_name() {
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "delete", "name": "sidecar"}
        ]}}}}));
        assert_eq!(
            names(&patched["spec"]["template"]["spec"]["containers"]),
            ["app"]
        );
        assert!(!has_directive(&patched));
    }

    #[test]
    fn patch_delete_without_merge_key_is_an_error() {
        let err = apply(
            &deployment(),
            &json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}),
            "apps",
            "Deployment",
        )
        .expect_err("rejected");
        assert_eq!(
            err.to_string(),
            "map: {\"$patch\":\"delete\"} does not contain declared merge key: name"
        );
    }

    #[test]
    fn patch_replace_directive_replaces_a_merging_list() {
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "only", "image": "x"},
            {"$patch": "replace"}
        ]}}}}));
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
    }

    #[test]
    fn patch_replace_directive_replaces_a_map() {
        let patched =
            patch_deployment(json!({"metadata": {"labels": {"$patch": "replace", "new": "x"}}}));
        assert_eq!(patched["metadata"]["labels"], json!({"new": "x"}));
    }

    #[test]
    fn patch_delete_directive_on_a_map_empties_it() {
        let patched = patch_deployment(json!({"metadata": {"labels": {"$patch": "delete"}}}));
        assert_eq!(patched["metadata"]["labels"], json!({}));
        let patched = patch_deployment(json!({"spec": {"paused": {"$patch": "delete"}}}));
        assert!(patched["spec"].get("paused").is_none());
    }

    #[test]
    fn patch_merge_directive_is_the_default_merge() {
        let patched =
            patch_deployment(json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}}));
        assert_eq!(
            patched["metadata"]["labels"],
            json!({"app": "web", "b": "2"})
        );
    }

    #[test]
    fn unknown_patch_directive_is_rejected() {
        let err = apply(
            &deployment(),
            &json!({"metadata": {"labels": {"$patch": "explode"}}}),
            "apps",
            "Deployment",
        )
        .expect_err("rejected");
        assert_eq!(
            err.to_string(),
            "unknown patch type: explode in map: {\"$patch\":\"explode\"}"
        );
        let err = apply(
            &deployment(),
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "$patch": 1}]}}}}),
            "apps",
            "Deployment",
        )
        .expect_err("rejected");
        assert!(matches!(err, PatchError::UnknownDirective { .. }));
    }

    #[test]
    fn delete_from_primitive_list_removes_job_tracking_finalizer() {
        let pod = json!({
            "metadata": {"name": "p", "finalizers": ["batch.kubernetes.io/job-tracking", "x"]},
            "spec": {"containers": [{"name": "c"}]}
        });
        let patched = apply(
            &pod,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["batch.kubernetes.io/job-tracking"]}}),
            "",
            "Pod",
        )
        .expect("patch applies");
        assert_eq!(patched["metadata"]["finalizers"], json!(["x"]));
        assert!(!has_directive(&patched));
    }

    #[test]
    fn delete_from_primitive_list_never_creates_the_list() {
        let pod = json!({"metadata": {"name": "p"}});
        let patched = apply(
            &pod,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            "",
            "Pod",
        )
        .expect("patch applies");
        assert_eq!(patched, pod);
        let err = apply(
            &pod,
            &json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
            "",
            "Pod",
        )
        .expect_err("rejected");
        assert_eq!(err, PatchError::BadPrimitiveList);
    }

    #[test]
    fn finalizers_merge_as_a_set() {
        let patched = patch_deployment(
            json!({"metadata": {"finalizers": ["example.com/b", "example.com/a"]}}),
        );
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!(["example.com/b", "example.com/a"])
        );
        let patched = patch_deployment(json!({"metadata": {"finalizers": ["example.com/b"]}}));
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!(["example.com/b", "example.com/a"])
        );
    }

    #[test]
    fn args_without_strategy_are_replaced_whole() {
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "args": ["--c"]}
        ]}}}}));
        assert_eq!(container(&patched, "app")["args"], json!(["--c"]));
    }

    #[test]
    fn status_conditions_merge_by_type() {
        let patched = patch_deployment(json!({"status": {"conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},
            {"type": "ReplicaFailure", "status": "True"}
        ]}}));
        let conditions = &patched["status"]["conditions"];
        assert_eq!(conditions.as_array().map(Vec::len), Some(3));
        let progressing = conditions
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
            .expect("kept");
        assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
        assert!(
            conditions
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Available"))
        );
    }

    #[test]
    fn job_status_conditions_merge_by_type() {
        let job =
            json!({"status": {"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}});
        let patched = apply(
            &job,
            &json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
            "batch",
            "Job",
        )
        .expect("patch applies");
        assert_eq!(
            patched["status"]["conditions"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn retain_keys_on_strategy_drops_rolling_update_when_switching_to_recreate() {
        let patched = patch_deployment(json!({"spec": {"strategy": {
            "$retainKeys": ["type"],
            "type": "Recreate"
        }}}));
        assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
        // kubectl apply's variant also nulls the field explicitly.
        let patched = patch_deployment(json!({"spec": {"strategy": {
            "$retainKeys": ["type"],
            "rollingUpdate": null,
            "type": "Recreate"
        }}}));
        assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn retain_keys_rejects_patch_keys_outside_the_list() {
        let err = apply(
            &deployment(),
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}),
            "apps",
            "Deployment",
        )
        .expect_err("rejected");
        assert_eq!(err, PatchError::BadRetainKeys);
    }

    #[test]
    fn retain_keys_switches_a_volume_source() {
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "name": "data"}]
        }}}}));
        assert_eq!(
            patched["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "data", "configMap": {"name": "cm"}}])
        );
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let pod =
            json!({"metadata": {"ownerReferences": [{"uid": "1", "kind": "Job", "name": "a"}]}});
        let patched = apply(
            &pod,
            &json!({"metadata": {"ownerReferences": [{"uid": "1", "controller": true}, {"uid": "2", "kind": "X", "name": "b"}]}}),
            "",
            "Pod",
        )
        .expect("patch applies");
        assert_eq!(
            patched["metadata"]["ownerReferences"],
            json!([
                {"uid": "1", "kind": "Job", "name": "a", "controller": true},
                {"uid": "2", "kind": "X", "name": "b"}
            ])
        );
    }

    #[test]
    fn cronjob_pod_template_containers_merge_by_name() {
        let cronjob = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "a", "command": ["x"]}]
        }}}}}});
        let patched = apply(
            &cronjob,
            &json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "b"}]
            }}}}}}),
            "batch",
            "CronJob",
        )
        .expect("patch applies");
        assert_eq!(
            patched["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"],
            json!([{"name": "c", "image": "b", "command": ["x"]}])
        );
    }

    #[test]
    fn service_ports_merge_by_port_and_node_taints_are_replaced() {
        let svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        let patched = apply(
            &svc,
            &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
            "",
            "Service",
        )
        .expect("patch applies");
        assert_eq!(
            patched["spec"]["ports"],
            json!([{"port": 80, "name": "http", "targetPort": 8080}, {"port": 443, "name": "https"}])
        );
        let node = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}});
        let patched = apply(
            &node,
            &json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}}),
            "",
            "Node",
        )
        .expect("patch applies");
        assert_eq!(
            patched["spec"]["taints"],
            json!([{"key": "b", "effect": "NoExecute"}])
        );
    }

    #[test]
    fn directives_in_values_copied_from_the_patch_never_leak() {
        let patched = patch_deployment(json!({"spec": {"template": {"spec": {
            "containers": [{
                "name": "new",
                "$setElementOrder/env": [{"name": "X"}],
                "env": [{"name": "X", "value": "1", "junk": null}, {"name": "Y", "$patch": "delete"}],
                "resources": {"$patch": "replace", "limits": {"cpu": "1"}}
            }],
            "tolerations": [{"key": "k", "$patch": "delete"}, {"key": "t"}],
            "affinity": {"$retainKeys": ["nodeAffinity"], "nodeAffinity": {}}
        }}}}));
        assert!(!has_directive(&patched));
        let new = container(&patched, "new");
        assert_eq!(new["env"], json!([{"name": "X", "value": "1"}]));
        assert_eq!(new["resources"], json!({"limits": {"cpu": "1"}}));
        assert_eq!(
            patched["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "t"}])
        );
    }

    #[test]
    fn mixed_list_types_and_non_object_patches_are_errors_not_panics() {
        for patch in [
            json!({"metadata": {"finalizers": [1, "a"]}}),
            json!({"metadata": {"finalizers": [["a"]]}}),
            json!({"spec": {"template": {"spec": {"containers": ["a"]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": "x"}}}}),
            json!({"spec": {"template": {"spec": {"$setElementOrder": []}}}}),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
        ] {
            assert!(
                apply(&deployment(), &patch, "apps", "Deployment").is_err(),
                "{patch} should be rejected"
            );
        }
        let err = apply(&deployment(), &json!([1]), "apps", "Deployment").expect_err("rejected");
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
        assert_eq!(
            apply(&deployment(), &Value::Null, "apps", "Deployment").expect("no-op"),
            deployment()
        );
    }

    #[test]
    fn odd_but_valid_json_never_panics() {
        let patches = [
            json!({"spec": {"template": {"spec": {"containers": {"name": "x"}}}}}),
            json!({"spec": {"template": {"spec": {"containers": []}}}}),
            json!({"spec": "x"}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": 1}]}]}}}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [{"a": 1}]}}),
            json!({"metadata": {"$setElementOrder/finalizers": ["example.com/a", "b"], "finalizers": ["b"]}}),
            json!({"$patch": "delete"}),
            json!({"$retainKeys": [], "$setElementOrder/x": [null]}),
        ];
        for patch in patches {
            let _ = apply(&deployment(), &patch, "apps", "Deployment");
            let _ = apply(&json!("not an object"), &patch, "", "Pod");
        }
    }

    #[test]
    fn unknown_kinds_use_json_merge_patch() {
        let original = json!({"spec": {"items": [{"name": "a", "v": 1}], "keep": true}});
        let patched = apply(
            &original,
            &json!({"spec": {"items": [{"name": "b"}], "keep": null}}),
            "example.com",
            "Widget",
        )
        .expect("patch applies");
        assert_eq!(patched, json!({"spec": {"items": [{"name": "b"}]}}));
        assert!(!supports_strategic_merge("example.com", "Widget"));
        assert!(supports_strategic_merge("batch", "Job"));
        assert!(supports_strategic_merge("", "ConfigMap"));
    }

    #[test]
    fn pod_disruption_budget_selector_is_replaced_not_merged() {
        let pdb = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}}});
        let patched = apply(
            &pdb,
            &json!({"spec": {"selector": {"matchLabels": {"b": "2"}}}}),
            "policy",
            "PodDisruptionBudget",
        )
        .expect("patch applies");
        assert_eq!(
            patched["spec"]["selector"],
            json!({"matchLabels": {"b": "2"}})
        );
    }
}
