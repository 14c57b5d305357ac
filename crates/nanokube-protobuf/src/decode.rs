//! Turns a protobuf message into the JSON object Go's `encoding/json` would have written for
//! the same Kubernetes object.

use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use crate::ProtobufError;
use crate::schema::{self, FieldDef, FieldType, Label, MessageDef};
use crate::time;
use crate::wire::{RawValue, Reader, WireType};

/// Deeper than any real object; bounds the recursion a hostile body can cause.
pub(crate) const MAX_DEPTH: usize = 100;

/// The 4 bytes in front of every Kubernetes protobuf body (`k8s\0`).
pub(crate) const MAGIC: &[u8; 4] = b"k8s\0";

const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const RAW_EXTENSION: &str = "io.k8s.apimachinery.pkg.runtime.RawExtension";
const APIEXTENSIONS: [&str; 2] = [
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1beta1",
];

/// Decoding state for one body: the JSON names already worked out per message.
pub(crate) struct Decoder<'p> {
    property_names: &'p dyn Fn(&str) -> Option<Vec<String>>,
    json_names: HashMap<&'static str, Rc<[String]>>,
}

/// What has been read for one field of a message so far.
enum Slot {
    One(Value),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

impl<'p> Decoder<'p> {
    pub(crate) fn new(property_names: &'p dyn Fn(&str) -> Option<Vec<String>>) -> Self {
        Self {
            property_names,
            json_names: HashMap::new(),
        }
    }

    /// The `runtime.Unknown` envelope after the magic: its type meta and the object's bytes,
    /// decoded into the JSON object with `apiVersion` and `kind` first.
    pub(crate) fn envelope(&mut self, body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
        let unknown = body.strip_prefix(MAGIC).ok_or(ProtobufError::BadMagic)?;
        const UNKNOWN: &str = "runtime.Unknown";
        let fields = read_fields(unknown)?;
        let type_meta = bytes_field(&fields, 1, UNKNOWN, "typeMeta")?.unwrap_or_default();
        let raw = bytes_field(&fields, 2, UNKNOWN, "raw")?.unwrap_or_default();
        let encoding = string_field(&fields, 3, UNKNOWN, "contentEncoding")?.unwrap_or_default();
        if !encoding.is_empty() {
            return Err(ProtobufError::UnsupportedContentEncoding(
                encoding.to_owned(),
            ));
        }
        let type_meta = read_fields(type_meta)?;
        const TYPE_META: &str = "runtime.TypeMeta";
        let api_version = string_field(&type_meta, 1, TYPE_META, "apiVersion")?.unwrap_or_default();
        let kind = string_field(&type_meta, 2, TYPE_META, "kind")?.unwrap_or_default();
        if api_version.is_empty() || kind.is_empty() {
            return Err(ProtobufError::MissingTypeMeta);
        }
        let def = schema::message_for_kind(api_version, kind).ok_or_else(|| {
            ProtobufError::UnknownKind {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            }
        })?;
        let mut object = Map::new();
        object.insert("apiVersion".to_owned(), Value::from(api_version));
        object.insert("kind".to_owned(), Value::from(kind));
        match self.message(def, raw, depth)? {
            Value::Object(fields) => object.extend(fields),
            other => return Ok(other),
        }
        Ok(Value::Object(object))
    }

    fn message(
        &mut self,
        def: &'static MessageDef,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Value, ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep(MAX_DEPTH));
        }
        if let Some(value) = self.custom_json(def, bytes, depth)? {
            return Ok(value);
        }
        let mut slots: Vec<Option<Slot>> = def.fields.iter().map(|_| None).collect();
        let mut reader = Reader::new(bytes);
        while !reader.is_empty() {
            let (tag, raw) = reader.field()?;
            // Fields newer than our schema are skipped, as proto decoders do.
            let Some((index, field)) = def.field(tag) else {
                continue;
            };
            let Some(slot) = slots.get_mut(index) else {
                continue;
            };
            match field.label {
                Label::Single => {
                    *slot = Some(Slot::One(self.value(def, field, field.ty, raw, depth)?));
                }
                Label::Repeated => {
                    let values = self.repeated(def, field, raw, depth)?;
                    match slot {
                        Some(Slot::List(list)) => list.extend(values),
                        _ => *slot = Some(Slot::List(values)),
                    }
                }
                Label::Map => {
                    let (key, value) = self.map_entry(def, field, raw, depth)?;
                    match slot {
                        Some(Slot::Map(map)) => {
                            map.insert(key, value);
                        }
                        _ => {
                            let mut map = Map::new();
                            map.insert(key, value);
                            *slot = Some(Slot::Map(map));
                        }
                    }
                }
            }
        }

        let names = self.json_names(def);
        let mut object = Map::new();
        for ((slot, name), field) in slots.into_iter().zip(names.iter()).zip(def.fields) {
            let value = match slot {
                None => continue,
                // gogo-protobuf writes every non-pointer string even when empty, where Go's
                // JSON leaves it out (`omitempty`); a written "" would otherwise reach the
                // strategies as an explicit value (e.g. `imagePullPolicy: ""`).
                Some(Slot::One(Value::String(s))) if s.is_empty() && field.ty == FieldType::Str => {
                    continue;
                }
                Some(Slot::One(value)) => value,
                Some(Slot::List(list)) => Value::Array(list),
                Some(Slot::Map(map)) => Value::Object(map),
            };
            object.insert(name.clone(), value);
        }
        Ok(Value::Object(object))
    }

    /// Every value of one occurrence of a repeated field: one value, or several when a
    /// numeric field is packed.
    fn repeated(
        &mut self,
        def: &'static MessageDef,
        field: &FieldDef,
        raw: RawValue<'_>,
        depth: usize,
    ) -> Result<Vec<Value>, ProtobufError> {
        let packed_wire_type = match field.ty {
            FieldType::Int32 | FieldType::Int64 | FieldType::Bool => Some(WireType::Varint),
            FieldType::Double => Some(WireType::Fixed64),
            FieldType::Str | FieldType::Bytes | FieldType::Message(_) => None,
        };
        match (packed_wire_type, raw) {
            (Some(wire_type), RawValue::Bytes(bytes)) => {
                let mut reader = Reader::new(bytes);
                let mut values = Vec::new();
                while !reader.is_empty() {
                    let element = match wire_type {
                        WireType::Fixed64 => RawValue::Fixed64(reader.fixed64()?),
                        _ => RawValue::Varint(reader.varint()?),
                    };
                    values.push(self.value(def, field, field.ty, element, depth)?);
                }
                Ok(values)
            }
            _ => Ok(vec![self.value(def, field, field.ty, raw, depth)?]),
        }
    }

    /// One `map<string, V>` entry: a message with the key at tag 1 and the value at tag 2.
    fn map_entry(
        &mut self,
        def: &'static MessageDef,
        field: &FieldDef,
        raw: RawValue<'_>,
        depth: usize,
    ) -> Result<(String, Value), ProtobufError> {
        let RawValue::Bytes(entry) = raw else {
            return Err(mismatch(def, field, WireType::LengthDelimited, raw));
        };
        let mut key = String::new();
        let mut value = None;
        let mut reader = Reader::new(entry);
        while !reader.is_empty() {
            match reader.field()? {
                (1, RawValue::Bytes(bytes)) => key = utf8(def, field, bytes)?.to_owned(),
                (1, other) => return Err(mismatch(def, field, WireType::LengthDelimited, other)),
                (2, raw_value) => value = Some(self.value(def, field, field.ty, raw_value, depth)?),
                _ => {}
            }
        }
        // An absent value is the type's zero value, as in Go's generated unmarshallers.
        let value = match value {
            Some(value) => value,
            None => match field.ty {
                FieldType::Str | FieldType::Bytes => Value::String(String::new()),
                FieldType::Int32 | FieldType::Int64 | FieldType::Double => Value::from(0),
                FieldType::Bool => Value::Bool(false),
                FieldType::Message(_) => {
                    self.value(def, field, field.ty, RawValue::Bytes(&[]), depth)?
                }
            },
        };
        Ok((key, value))
    }

    fn value(
        &mut self,
        def: &'static MessageDef,
        field: &FieldDef,
        ty: FieldType,
        raw: RawValue<'_>,
        depth: usize,
    ) -> Result<Value, ProtobufError> {
        Ok(match (ty, raw) {
            (FieldType::Str, RawValue::Bytes(bytes)) => Value::from(utf8(def, field, bytes)?),
            // Go's encoding/json writes []byte as standard base64.
            (FieldType::Bytes, RawValue::Bytes(bytes)) => Value::String(BASE64.encode(bytes)),
            // A negative int32 is sign-extended to 64 bits on the wire; Go truncates back.
            (FieldType::Int32, RawValue::Varint(v)) => Value::from(v as i32),
            (FieldType::Int64, RawValue::Varint(v)) => Value::from(v as i64),
            (FieldType::Bool, RawValue::Varint(v)) => Value::Bool(v != 0),
            (FieldType::Double, RawValue::Fixed64(bits)) => {
                let number = f64::from_bits(bits);
                Value::Number(Number::from_f64(number).ok_or_else(|| {
                    ProtobufError::NonFiniteNumber {
                        message: def.name.to_owned(),
                        field: field.rust_name.to_owned(),
                        value: number,
                    }
                })?)
            }
            (FieldType::Message(name), RawValue::Bytes(bytes)) => {
                let nested = schema::message(name)
                    .ok_or_else(|| ProtobufError::UnknownMessage(name.to_owned()))?;
                self.message(nested, bytes, depth + 1)?
            }
            (FieldType::Str | FieldType::Bytes | FieldType::Message(_), raw) => {
                return Err(mismatch(def, field, WireType::LengthDelimited, raw));
            }
            (FieldType::Int32 | FieldType::Int64 | FieldType::Bool, raw) => {
                return Err(mismatch(def, field, WireType::Varint, raw));
            }
            (FieldType::Double, raw) => return Err(mismatch(def, field, WireType::Fixed64, raw)),
        })
    }

    /// apimachinery's types with their own JSON marshalling (`MarshalJSON`), which differ
    /// from the plain mapping of their protobuf messages.
    fn custom_json(
        &mut self,
        def: &'static MessageDef,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Option<Value>, ProtobufError> {
        let name = def.name;
        let value = match name {
            // A zero metav1.Time is written as no bytes at all and marshals to JSON null.
            TIME | MICRO_TIME => {
                let fields = read_fields(bytes)?;
                let seconds = varint_field(&fields, 1, name, "seconds")?.unwrap_or(0) as i64;
                let nanos = varint_field(&fields, 2, name, "nanos")?.unwrap_or(0) as i32;
                if seconds == 0 && nanos == 0 {
                    Value::Null
                } else {
                    // metav1.Time marshals with second precision, MicroTime with microseconds.
                    let digits = if name == TIME { 0 } else { 6 };
                    Value::String(time::rfc3339(seconds, nanos, digits).ok_or_else(|| {
                        ProtobufError::TimeOutOfRange {
                            message: name.to_owned(),
                            seconds,
                        }
                    })?)
                }
            }
            DURATION => {
                let fields = read_fields(bytes)?;
                let nanos = varint_field(&fields, 1, name, "duration")?.unwrap_or(0) as i64;
                Value::String(time::go_duration(nanos))
            }
            QUANTITY => {
                let fields = read_fields(bytes)?;
                let text = string_field(&fields, 1, name, "string")?.unwrap_or_default();
                Value::from(if text.is_empty() { "0" } else { text })
            }
            // intstr.IntOrString marshals as the number or the string its type selects.
            INT_OR_STRING => {
                let fields = read_fields(bytes)?;
                if varint_field(&fields, 1, name, "type")?.unwrap_or(0) == 1 {
                    Value::from(string_field(&fields, 3, name, "strVal")?.unwrap_or_default())
                } else {
                    Value::from(varint_field(&fields, 2, name, "intVal")?.unwrap_or(0) as i32)
                }
            }
            RAW_EXTENSION | FIELDS_V1 => {
                let fields = read_fields(bytes)?;
                match bytes_field(&fields, 1, name, "raw")? {
                    None => Value::Null,
                    Some(raw) if raw.starts_with(MAGIC) => self.envelope(raw, depth + 1)?,
                    Some(raw) => embedded_json(raw),
                }
            }
            _ => return self.apiextensions_json(def, bytes, depth),
        };
        Ok(Some(value))
    }

    /// The CRD schema types whose JSON is a union (`JSONSchemaPropsOrBool` is a bool or a
    /// schema, ...) or raw JSON (`JSON`).
    fn apiextensions_json(
        &mut self,
        def: &'static MessageDef,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Option<Value>, ProtobufError> {
        let name = def.name;
        let Some((package, type_name)) = name.rsplit_once('.') else {
            return Ok(None);
        };
        if !APIEXTENSIONS.contains(&package) {
            return Ok(None);
        }
        let schema_def = || {
            let props = format!("{package}.JSONSchemaProps");
            schema::message(&props).ok_or(ProtobufError::UnknownMessage(props))
        };
        let value = match type_name {
            "JSON" => {
                let fields = read_fields(bytes)?;
                bytes_field(&fields, 1, name, "raw")?.map_or(Value::Null, embedded_json)
            }
            "JSONSchemaPropsOrBool" => {
                let fields = read_fields(bytes)?;
                match bytes_field(&fields, 2, name, "schema")? {
                    Some(schema) => self.message(schema_def()?, schema, depth + 1)?,
                    None => {
                        Value::Bool(varint_field(&fields, 1, name, "allows")?.unwrap_or(0) != 0)
                    }
                }
            }
            "JSONSchemaPropsOrArray" | "JSONSchemaPropsOrStringArray" => {
                let fields = read_fields(bytes)?;
                let mut items = Vec::new();
                for (tag, raw) in &fields {
                    match (tag, raw) {
                        (2, RawValue::Bytes(item)) if type_name == "JSONSchemaPropsOrArray" => {
                            items.push(self.message(schema_def()?, item, depth + 1)?);
                        }
                        (2, RawValue::Bytes(item)) => {
                            items.push(Value::from(std::str::from_utf8(item).map_err(|_| {
                                ProtobufError::InvalidUtf8 {
                                    message: name.to_owned(),
                                    field: "property".to_owned(),
                                }
                            })?))
                        }
                        _ => {}
                    }
                }
                if items.is_empty() {
                    match bytes_field(&fields, 1, name, "schema")? {
                        Some(schema) => self.message(schema_def()?, schema, depth + 1)?,
                        None => Value::Null,
                    }
                } else {
                    Value::Array(items)
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(value))
    }

    /// The JSON property name of each field of `def`, in field order: the OpenAPI spelling
    /// when the definition lists one that matches ignoring case and underscores (prost's
    /// `host_ipc` is `hostIPC`), else lowerCamelCase.
    fn json_names(&mut self, def: &'static MessageDef) -> Rc<[String]> {
        if let Some(names) = self.json_names.get(def.name) {
            return Rc::clone(names);
        }
        let properties = (self.property_names)(def.name).unwrap_or_default();
        let by_key: HashMap<String, &String> =
            properties.iter().map(|p| (normalize(p), p)).collect();
        let names: Rc<[String]> = def
            .fields
            .iter()
            .map(|f| match by_key.get(&normalize(f.rust_name)) {
                Some(property) => (*property).clone(),
                None => lower_camel_case(f.rust_name),
            })
            .collect();
        self.json_names.insert(def.name, Rc::clone(&names));
        names
    }
}

/// Lowercase with everything but letters and digits removed, so that `host_ipc`, `hostIPC`,
/// `x_kubernetes_list_type` / `x-kubernetes-list-type` and `ref` / `$ref` compare equal.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn lower_camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper_next = false;
    for c in snake.chars() {
        if c == '_' {
            upper_next = !out.is_empty();
        } else if upper_next {
            out.push(c.to_ascii_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Embedded raw JSON (RawExtension, FieldsV1, CRD `JSON`); bytes that are not JSON are kept
/// as base64, the way Go marshals a `[]byte`.
fn embedded_json(raw: &[u8]) -> Value {
    serde_json::from_slice(raw).unwrap_or_else(|_| Value::String(BASE64.encode(raw)))
}

fn read_fields(bytes: &[u8]) -> Result<Vec<(u32, RawValue<'_>)>, ProtobufError> {
    let mut reader = Reader::new(bytes);
    let mut fields = Vec::new();
    while !reader.is_empty() {
        fields.push(reader.field()?);
    }
    Ok(fields)
}

/// The last occurrence of a field (proto's "last one wins" for singular fields).
fn last<'a>(fields: &[(u32, RawValue<'a>)], tag: u32) -> Option<RawValue<'a>> {
    fields
        .iter()
        .rev()
        .find(|(t, _)| *t == tag)
        .map(|(_, raw)| *raw)
}

fn bytes_field<'a>(
    fields: &[(u32, RawValue<'a>)],
    tag: u32,
    message: &str,
    field: &str,
) -> Result<Option<&'a [u8]>, ProtobufError> {
    match last(fields, tag) {
        None => Ok(None),
        Some(RawValue::Bytes(bytes)) => Ok(Some(bytes)),
        Some(other) => Err(ProtobufError::WireTypeMismatch {
            message: message.to_owned(),
            field: field.to_owned(),
            expected: "length-delimited",
            actual: other.wire_type().number(),
        }),
    }
}

fn string_field<'a>(
    fields: &[(u32, RawValue<'a>)],
    tag: u32,
    message: &str,
    field: &str,
) -> Result<Option<&'a str>, ProtobufError> {
    bytes_field(fields, tag, message, field)?
        .map(|bytes| {
            std::str::from_utf8(bytes).map_err(|_| ProtobufError::InvalidUtf8 {
                message: message.to_owned(),
                field: field.to_owned(),
            })
        })
        .transpose()
}

fn varint_field(
    fields: &[(u32, RawValue<'_>)],
    tag: u32,
    message: &str,
    field: &str,
) -> Result<Option<u64>, ProtobufError> {
    match last(fields, tag) {
        None => Ok(None),
        Some(RawValue::Varint(v)) => Ok(Some(v)),
        Some(other) => Err(ProtobufError::WireTypeMismatch {
            message: message.to_owned(),
            field: field.to_owned(),
            expected: "varint",
            actual: other.wire_type().number(),
        }),
    }
}

fn utf8<'a>(def: &MessageDef, field: &FieldDef, bytes: &'a [u8]) -> Result<&'a str, ProtobufError> {
    std::str::from_utf8(bytes).map_err(|_| ProtobufError::InvalidUtf8 {
        message: def.name.to_owned(),
        field: field.rust_name.to_owned(),
    })
}

fn mismatch(
    def: &MessageDef,
    field: &FieldDef,
    expected: WireType,
    actual: RawValue<'_>,
) -> ProtobufError {
    ProtobufError::WireTypeMismatch {
        message: def.name.to_owned(),
        field: field.rust_name.to_owned(),
        expected: match expected {
            WireType::Varint => "varint",
            WireType::Fixed64 => "64-bit fixed-width",
            WireType::LengthDelimited => "length-delimited",
            WireType::Fixed32 => "32-bit fixed-width",
        },
        actual: actual.wire_type().number(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_falls_back_to_lower_camel_case() {
        assert_eq!(lower_camel_case("restart_policy"), "restartPolicy");
        assert_eq!(lower_camel_case("type"), "type");
        assert_eq!(lower_camel_case("host_ipc"), "hostIpc");
    }

    #[test]
    fn every_referenced_message_is_in_the_schema() {
        for message in schema::MESSAGES {
            for field in message.fields {
                if let FieldType::Message(name) = field.ty {
                    assert!(
                        schema::message(name).is_some(),
                        "{}.{} refers to unknown {name}",
                        message.name,
                        field.rust_name
                    );
                }
            }
        }
    }

    #[test]
    fn schema_tables_are_sorted_for_binary_search() {
        assert!(schema::MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
        assert!(
            schema::KINDS
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        );
    }
}
