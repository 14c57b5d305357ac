//! Why a protobuf body could not be decoded.

/// A Kubernetes protobuf body that cannot be turned into its JSON object. Every variant is
/// a fault of the request body (a 400/415 for the client), never of the server.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("not a Kubernetes protobuf body: it does not start with the 4-byte magic \"k8s\\0\"")]
    BadMagic,
    #[error("truncated protobuf message: the body ends inside a {0}")]
    Truncated(&'static str),
    #[error("malformed protobuf varint: longer than 10 bytes")]
    VarintTooLong,
    #[error(
        "protobuf field of {len} bytes runs past the end of its message ({remaining} bytes left)"
    )]
    LengthPastEnd { len: u64, remaining: usize },
    #[error("invalid protobuf field number {0}")]
    InvalidFieldNumber(u64),
    #[error(
        "unsupported protobuf wire type {0} (groups and unknown wire types are not used by Kubernetes)"
    )]
    UnsupportedWireType(u8),
    #[error("field {field} of {message}: protobuf wire type {actual}, expected {expected}")]
    WireTypeMismatch {
        message: String,
        field: String,
        expected: &'static str,
        actual: u8,
    },
    #[error("field {field} of {message}: invalid UTF-8 in a string")]
    InvalidUtf8 { message: String, field: String },
    #[error("field {field} of {message}: {value} cannot be represented in JSON")]
    NonFiniteNumber {
        message: String,
        field: String,
        value: f64,
    },
    #[error(
        "{message}: timestamp of {seconds} seconds since the Unix epoch is outside years 0001-9999"
    )]
    TimeOutOfRange { message: String, seconds: i64 },
    #[error("the runtime.Unknown envelope carries no apiVersion/kind")]
    MissingTypeMeta,
    #[error(
        "the runtime.Unknown envelope has content encoding {0:?}; only unencoded bodies are supported"
    )]
    UnsupportedContentEncoding(String),
    #[error("unknown kind: no protobuf schema for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("no protobuf schema for message {0}")]
    UnknownMessage(String),
    #[error("protobuf messages nested more than {0} levels deep")]
    TooDeep(usize),
}
