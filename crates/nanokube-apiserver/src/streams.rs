//! `pods/exec` and `pods/attach`: the remote-command streams of `kubectl exec`, `kubectl
//! attach`, `kubectl run -it` and the clients' `stream()` helpers.
//!
//! A client opens a WebSocket (`GET`, RFC 6455) naming the remote-command subprotocols it
//! speaks. After the upgrade every data message is `[channel][payload]`: 0 stdin, 1 stdout,
//! 2 stderr, 3 the error channel (one `Status` at the end), 4 terminal resizes; in
//! `v5.channel.k8s.io` channel 255 half-closes a stream (`[255, 0]`: end of stdin). The
//! server first writes an empty message on the lowest output channel it will use (the
//! client's sign that the session is up), then relays bytes both ways, writes the final
//! `Status` (exit code 3 is `reason: NonZeroExitCode` with an `ExitCode` cause `"3"`) and
//! closes normally. kube-apiserver 1.33 speaks v5 itself and hands older protocols to the
//! kubelet, which speaks `v4.channel.k8s.io` (JSON status), `channel.k8s.io` (plain-text
//! errors) and their `base64.` text variants: together, what is served here.
//!
//! The process side lives with the node agent and is reached through [`PodStreams`]. SPDY
//! (kubectl's fallback when the WebSocket handshake fails) is not served; its requests get
//! an error that says why the WebSocket attempt failed when that can be told.

use crate::authn::UserInfo;
use crate::authz::{self, Attributes, Decision};
use crate::request_info::{RequestInfo, query_param};
use crate::rest::Query;
use crate::server::ApiServer;
use crate::status::{ApiError, ApiResult};
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use nanokube_registry::resource::PODS;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// One exec or attach session, resolved to a container of a pod on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRequest {
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub container: String,
    /// The command to run (`exec`); empty for `attach`, which joins the container's own
    /// process.
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    /// Always false with `tty` (a terminal has one output stream).
    pub stderr: bool,
    pub tty: bool,
}

/// The node's end of a session.
///
/// The node closes `output` once the process's output is finished and resolves `exit`
/// after that; the API server relays output until it ends, then reports the exit.
pub struct StreamSession {
    /// The process's stdin when asked for; dropping it closes the stdin (v5 CLOSE, or the
    /// end of a v4 connection).
    pub stdin: Option<mpsc::Sender<Bytes>>,
    /// Output chunks, tagged 1 (stdout) or 2 (stderr).
    pub output: mpsc::Receiver<(u8, Bytes)>,
    /// Terminal sizes (width, height) for a tty session.
    pub resize: Option<mpsc::Sender<(u16, u16)>>,
    /// The exit code (`128 + n` for a death by signal n), or why the session failed.
    pub exit: oneshot::Receiver<Result<i32, String>>,
}

/// Where exec and attach sessions run: the node agent of the pod's node.
pub trait PodStreams: Send + Sync {
    /// Starts a session; an error is the node's message (reported to the client as an
    /// internal error on the error channel, as the kubelet's are).
    fn open(&self, req: StreamRequest) -> BoxFuture<'static, Result<StreamSession, String>>;
}

/// Remote-command channel numbers.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5's half-close signal: `[255, channel]`.
pub const CLOSE: u8 = 255;

/// How long the server waits for the client's answer to its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(30);

/// A remote-command WebSocket subprotocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `v5.channel.k8s.io`: v4 plus the CLOSE signal.
    V5,
    /// `v4.channel.k8s.io`: the error channel carries a JSON `Status`.
    V4,
    /// `v4.base64.channel.k8s.io`: v4 in text messages, payloads base64-encoded.
    V4Base64,
    /// `channel.k8s.io`: errors as plain text.
    Channel,
    /// `base64.channel.k8s.io`.
    Base64Channel,
    /// No subprotocol asked for: treated as `channel.k8s.io`.
    Unnamed,
}

impl Protocol {
    /// The protocols served, in the order they are preferred when a client offers several
    /// of them (v5 whenever offered; then the client's order, as the kubelet chooses).
    const SERVED: [Protocol; 5] = [
        Protocol::V5,
        Protocol::V4,
        Protocol::V4Base64,
        Protocol::Channel,
        Protocol::Base64Channel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::V5 => "v5.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V4Base64 => "v4.base64.channel.k8s.io",
            Protocol::Channel => "channel.k8s.io",
            Protocol::Base64Channel => "base64.channel.k8s.io",
            Protocol::Unnamed => "",
        }
    }

    /// Picks the protocol for the subprotocols a client offered (`Sec-WebSocket-Protocol`);
    /// `None` when it offered some and none is served (the handshake then fails with 403,
    /// as Go's WebSocket server answers).
    pub fn negotiate(offered: &[&str]) -> Option<Protocol> {
        if offered.is_empty() {
            return Some(Protocol::Unnamed);
        }
        if offered.contains(&Protocol::V5.name()) {
            return Some(Protocol::V5);
        }
        offered
            .iter()
            .find_map(|o| Protocol::SERVED.into_iter().find(|p| p.name() == *o))
    }

    fn base64(self) -> bool {
        matches!(self, Protocol::V4Base64 | Protocol::Base64Channel)
    }

    /// Whether the error channel carries a JSON `Status` (v4 and later) or plain text.
    fn status_as_json(self) -> bool {
        matches!(self, Protocol::V5 | Protocol::V4 | Protocol::V4Base64)
    }

    /// One message on `channel`: binary `[channel][data]`, or for the base64 protocols the
    /// text `'0'+channel` followed by the base64 of `data`.
    pub fn frame(self, channel: u8, data: &[u8]) -> Message {
        if self.base64() {
            let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
            text.push(char::from(b'0'.wrapping_add(channel)));
            BASE64.encode_string(data, &mut text);
            Message::Text(Utf8Bytes::from(text))
        } else {
            let mut bytes = Vec::with_capacity(1 + data.len());
            bytes.push(channel);
            bytes.extend_from_slice(data);
            Message::Binary(Bytes::from(bytes))
        }
    }

    /// The channel and payload of a client's data message; `None` for an empty or
    /// undecodable one (upstream skips those).
    pub fn parse(self, msg: &Message) -> Option<(u8, Bytes)> {
        let raw: &[u8] = match msg {
            Message::Binary(b) => b,
            Message::Text(t) => t.as_str().as_bytes(),
            _ => return None,
        };
        let (&first, rest) = raw.split_first()?;
        if self.base64() {
            let data = BASE64.decode(rest).ok()?;
            Some((first.wrapping_sub(b'0'), Bytes::from(data)))
        } else {
            Some((first, Bytes::copy_from_slice(rest)))
        }
    }
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command exited with a non-zero code.
    ExitCode {
        code: i32,
        command: Vec<String>,
    },
    /// The session could not run or broke (an internal error, as the kubelet reports it).
    Failed(String),
}

impl Outcome {
    /// The `metav1.Status` the error channel carries, as Go marshals it (no kind or
    /// apiVersion).
    pub fn status(&self) -> Value {
        match self {
            Outcome::Success => json!({"metadata": {}, "status": "Success"}),
            Outcome::ExitCode { code, command } => json!({
                "metadata": {},
                "status": "Failure",
                "message": format!(
                    "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                    command.join(" ")
                ),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            }),
            Outcome::Failed(msg) => json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {msg}"),
                "reason": "InternalError",
                "details": {"causes": [{"message": msg}]},
                "code": 500,
            }),
        }
    }

    /// What the error channel carries in `protocol`: the JSON status, or for the pre-v4
    /// protocols the failure message and nothing on success.
    pub fn payload(&self, protocol: Protocol) -> Option<Vec<u8>> {
        let status = self.status();
        if protocol.status_as_json() {
            return Some(status.to_string().into_bytes());
        }
        status
            .get("message")
            .and_then(Value::as_str)
            .map(|m| m.as_bytes().to_vec())
    }
}

/// A terminal size as kubectl sends it on the resize channel (`{"Width":80,"Height":24}`;
/// Go matches the keys case-insensitively).
#[derive(Debug, Deserialize, PartialEq, Eq)]
struct TerminalSize {
    #[serde(rename = "Width", alias = "width", default)]
    width: u16,
    #[serde(rename = "Height", alias = "height", default)]
    height: u16,
}

/// Decodes the resize channel: a stream of JSON objects that may arrive split across
/// messages.
#[derive(Debug, Default)]
pub struct ResizeDecoder {
    pending: Vec<u8>,
    broken: bool,
}

impl ResizeDecoder {
    /// Adds bytes and returns the complete sizes (width, height) found. After malformed
    /// input the channel is ignored, as upstream stops decoding it.
    pub fn push(&mut self, data: &[u8]) -> Vec<(u16, u16)> {
        if self.broken {
            return Vec::new();
        }
        self.pending.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut stream =
            serde_json::Deserializer::from_slice(&self.pending).into_iter::<TerminalSize>();
        let mut consumed = 0;
        loop {
            match stream.next() {
                Some(Ok(size)) => {
                    consumed = stream.byte_offset();
                    sizes.push((size.width, size.height));
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => {
                    self.broken = true;
                    self.pending.clear();
                    return sizes;
                }
                None => {
                    consumed = stream.byte_offset();
                    break;
                }
            }
        }
        self.pending.drain(..consumed);
        sizes
    }
}

/// Exec or attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Exec,
    Attach,
}

impl Operation {
    /// How the kubelet words a failure of the session.
    fn failure(self, msg: &str) -> String {
        match self {
            Operation::Exec => format!("error executing command in container: {msg}"),
            Operation::Attach => format!("error attaching to container: {msg}"),
        }
    }
}

/// A boolean query parameter as apimachinery converts it: absent is false, `0` and `false`
/// (any case) are false, anything else is true.
fn flag(query: &Query, key: &str) -> bool {
    match query_param(query, key) {
        None => false,
        Some(v) => !(v == "0" || v.eq_ignore_ascii_case("false")),
    }
}

/// Every container name of the pod: init, regular, ephemeral (upstream's `VisitContainers`).
fn container_names(pod: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|f| {
            pod.pointer(&format!("/spec/{f}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The container a stream request means (upstream `validateContainer`): the named one, or
/// the pod's only container. The default-container annotation is kubectl's business.
fn validate_container(pod: &Value, pod_name: &str, asked: &str) -> ApiResult<String> {
    let all = container_names(
        pod,
        &["initContainers", "containers", "ephemeralContainers"],
    );
    if !asked.is_empty() {
        if all.iter().any(|n| n == asked) {
            return Ok(asked.to_string());
        }
        return Err(ApiError::bad_request(format!(
            "container {asked} is not valid for pod {pod_name}"
        )));
    }
    match container_names(pod, &["containers"]).as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// The session a request asks for, checked as kube-apiserver and the kubelet check it.
fn stream_request(
    op: Operation,
    pod: &Value,
    namespace: &str,
    name: &str,
    query: &Query,
) -> ApiResult<StreamRequest> {
    let container = validate_container(pod, name, query_param(query, "container").unwrap_or(""))?;
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let tty = flag(query, "tty");
    let req = StreamRequest {
        namespace: namespace.to_string(),
        pod: name.to_string(),
        pod_uid: pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        container,
        command: match op {
            Operation::Exec => query.get("command").cloned().unwrap_or_default(),
            Operation::Attach => Vec::new(),
        },
        stdin: flag(query, "stdin"),
        stdout: flag(query, "stdout"),
        // The kubelet drops stderr with a tty: a terminal has one output stream.
        stderr: flag(query, "stderr") && !tty,
        tty,
    };
    if !req.stdin && !req.stdout && !req.stderr {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    if op == Operation::Exec && req.command.is_empty() {
        return Err(ApiError::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    Ok(req)
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Upstream's `wsstream.IsWebSocketRequest`.
fn is_websocket(headers: &HeaderMap) -> bool {
    header_has_token(headers, header::UPGRADE, "websocket")
        && header_has_token(headers, header::CONNECTION, "upgrade")
}

/// The subprotocols a client offered, in its order.
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Serves `GET`/`POST pods/NAME/exec|attach` (authentication and authorization done).
pub async fn serve(
    api: Arc<ApiServer>,
    info: &RequestInfo,
    query: &Query,
    user: &UserInfo,
    req: Request<Body>,
) -> Response {
    match connect(api, info, query, user, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn connect(
    api: Arc<ApiServer>,
    info: &RequestInfo,
    query: &Query,
    user: &UserInfo,
    req: Request<Body>,
) -> ApiResult<Response> {
    let op = match info.subresource.as_str() {
        "exec" => Operation::Exec,
        "attach" => Operation::Attach,
        _ => return Err(ApiError::page_not_found()),
    };
    if info.namespace.is_empty() || info.name.is_empty() || info.parts.len() != 3 {
        return Err(ApiError::page_not_found());
    }
    let key = PODS.storage_key(Some(&info.namespace), &info.name);
    let kv = api
        .store
        .get(&key)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(&PODS, &info.name))?;
    let pod = crate::rest::decode_kv(&kv)?;
    let session = stream_request(op, &pod, &info.namespace, &info.name, query)?;
    let Some(streams) = api.pod_streams.clone() else {
        return Err(ApiError::bad_request(format!(
            "pod {} is not running on a node with a streaming connection",
            info.name
        )));
    };

    if !is_websocket(req.headers()) {
        if header_has_token(req.headers(), header::UPGRADE, "SPDY/3.1") {
            return Err(spdy_refusal(&api, info, user).await);
        }
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let offered = offered_protocols(req.headers());
    let offered: Vec<&str> = offered.iter().map(String::as_str).collect();
    let Some(protocol) = Protocol::negotiate(&offered) else {
        return Ok(StatusCode::FORBIDDEN.into_response());
    };
    let (mut parts, _body) = req.into_parts();
    let mut upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    if protocol != Protocol::Unnamed {
        upgrade.set_selected_protocol(HeaderValue::from_static(protocol.name()));
    }
    Ok(upgrade
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "exec/attach upgrade failed"))
        .on_upgrade(move |socket| run(socket, protocol, op, session, streams)))
}

/// kubectl tries SPDY after a failed WebSocket handshake, and prints the SPDY error. SPDY is
/// not served; when the WebSocket attempt failed for want of `get` (the verb of the upgrade
/// `GET`), that denial is the useful answer.
async fn spdy_refusal(api: &ApiServer, info: &RequestInfo, user: &UserInfo) -> ApiError {
    let mut attrs = Attributes::new(user, info);
    attrs.verb = "get".into();
    if let Decision::Deny(reason) = api.authorizer.authorize(&attrs).await {
        return authz::forbidden(&attrs, &reason);
    }
    ApiError::bad_request(format!(
        "{}/{} is served over WebSockets only ({} or {}); SPDY/3.1 is not supported",
        info.resource,
        info.subresource,
        Protocol::V5.name(),
        Protocol::V4.name()
    ))
}

/// The client went away: nobody is left to report to.
struct ClientGone;

/// The status a finished session reports. An attach session's end is a success whatever
/// the container's exit code, as the kubelet reports it.
fn outcome(op: Operation, command: Vec<String>, exit: Result<i32, String>) -> Outcome {
    match (op, exit) {
        (_, Err(msg)) => Outcome::Failed(op.failure(&msg)),
        (Operation::Attach, Ok(_)) | (Operation::Exec, Ok(0)) => Outcome::Success,
        (Operation::Exec, Ok(code)) => Outcome::ExitCode { code, command },
    }
}

/// One upgraded session: readiness, relay, final status, close.
async fn run(
    socket: WebSocket,
    protocol: Protocol,
    op: Operation,
    req: StreamRequest,
    streams: Arc<dyn PodStreams>,
) {
    let (mut sink, source) = socket.split();
    let ready_channel = if req.stdout {
        STDOUT
    } else if req.stderr {
        STDERR
    } else {
        ERROR
    };
    if sink.send(protocol.frame(ready_channel, &[])).await.is_err() {
        return;
    }
    let command = req.command.clone();
    let wanted = (req.stdout, req.stderr);
    let (outcome, reader) = match streams.open(req).await {
        Err(msg) => {
            let reader = tokio::spawn(read_client(source, protocol, None, None));
            (Outcome::Failed(op.failure(&msg)), reader)
        }
        Ok(session) => {
            let StreamSession {
                stdin,
                output,
                resize,
                exit,
            } = session;
            let mut reader = tokio::spawn(read_client(source, protocol, stdin, resize));
            match relay(&mut sink, &mut reader, protocol, wanted, output, exit).await {
                Ok(exit) => (outcome(op, command, exit), reader),
                Err(ClientGone) => {
                    reader.abort();
                    return;
                }
            }
        }
    };
    if let Some(payload) = outcome.payload(protocol) {
        let _ = sink.send(protocol.frame(ERROR, &payload)).await;
    }
    let close = CloseFrame {
        code: axum::extract::ws::close_code::NORMAL,
        reason: Utf8Bytes::from_static(""),
    };
    if sink.send(Message::Close(Some(close))).await.is_ok() {
        // The client answers the close frame once it has read everything; closing the
        // connection before that could reset it and lose output still in flight.
        let _ = tokio::time::timeout(CLOSE_WAIT, reader).await;
    }
}

/// Relays the process's output to the client until it ends, then takes the exit status.
async fn relay(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    reader: &mut tokio::task::JoinHandle<()>,
    protocol: Protocol,
    (stdout, stderr): (bool, bool),
    mut output: mpsc::Receiver<(u8, Bytes)>,
    exit: oneshot::Receiver<Result<i32, String>>,
) -> Result<Result<i32, String>, ClientGone> {
    loop {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Some((channel, data)) => {
                    let wanted = match channel {
                        STDOUT => stdout,
                        STDERR => stderr,
                        _ => false,
                    };
                    // An empty message would read as the readiness signal (or, to client-go,
                    // as a protocol error): never send one after the first.
                    if wanted && !data.is_empty()
                        && sink.send(protocol.frame(channel, &data)).await.is_err()
                    {
                        return Err(ClientGone);
                    }
                }
                None => break,
            },
            _ = &mut *reader => return Err(ClientGone),
        }
    }
    tokio::select! {
        r = exit => Ok(r.unwrap_or_else(|_| Err("the session ended without an exit status".into()))),
        _ = &mut *reader => Err(ClientGone),
    }
}

/// Reads the client's messages: stdin, resizes and v5 CLOSE signals, until the connection
/// ends. Pings are answered by the WebSocket layer while this reads.
async fn read_client(
    mut source: futures::stream::SplitStream<WebSocket>,
    protocol: Protocol,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    mut resize: Option<mpsc::Sender<(u16, u16)>>,
) {
    let mut sizes = ResizeDecoder::default();
    while let Some(Ok(msg)) = source.next().await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
        let Some((channel, data)) = protocol.parse(&msg) else {
            continue;
        };
        match channel {
            STDIN => {
                if let Some(tx) = &stdin
                    && !data.is_empty()
                    && tx.send(data).await.is_err()
                {
                    stdin = None;
                }
            }
            RESIZE => {
                for size in sizes.push(&data) {
                    if let Some(tx) = &resize
                        && tx.send(size).await.is_err()
                    {
                        resize = None;
                    }
                }
            }
            CLOSE if protocol == Protocol::V5 => match data.first() {
                Some(&STDIN) => stdin = None,
                Some(&RESIZE) => resize = None,
                _ => {}
            },
            _ => {}
        }
    }
}

/// Whether a request is for the streaming subresources served here.
pub fn is_stream_request(info: &RequestInfo, method: &Method) -> bool {
    info.is_resource_request
        && info.api_group.is_empty()
        && info.resource == "pods"
        && matches!(info.subresource.as_str(), "exec" | "attach")
        && (method == Method::GET || method == Method::POST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        let mut q = Query::new();
        for (k, v) in pairs {
            q.entry(k.to_string()).or_default().push(v.to_string());
        }
        q
    }

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let list =
            |names: &[&str]| -> Vec<Value> { names.iter().map(|n| json!({"name": n})).collect() };
        json!({
            "metadata": {"name": "web", "uid": "u-1"},
            "spec": {"nodeName": "node-a", "containers": list(containers), "initContainers": list(init)},
        })
    }

    #[test]
    fn v5_wins_whenever_offered_and_otherwise_the_clients_order_decides() {
        use Protocol::*;
        let cases: &[(&[&str], Option<Protocol>)] = &[
            (&["v5.channel.k8s.io"], Some(V5)),
            (&["v5.channel.k8s.io", "v4.channel.k8s.io"], Some(V5)),
            (&["v4.channel.k8s.io", "v5.channel.k8s.io"], Some(V5)),
            (&["v4.channel.k8s.io"], Some(V4)),
            (&["v4.base64.channel.k8s.io"], Some(V4Base64)),
            (
                &["base64.channel.k8s.io", "channel.k8s.io"],
                Some(Base64Channel),
            ),
            (&["x.k8s.io", "channel.k8s.io"], Some(Channel)),
            (&[], Some(Unnamed)),
            (&["v3.channel.k8s.io", "x.k8s.io"], None),
        ];
        for (offered, want) in cases {
            assert_eq!(Protocol::negotiate(offered), *want, "{offered:?}");
        }
    }

    #[test]
    fn frames_are_a_channel_byte_and_the_payload_or_base64_text() {
        assert_eq!(
            Protocol::V5.frame(STDOUT, b"hi"),
            Message::Binary(Bytes::from_static(&[1, b'h', b'i']))
        );
        // The readiness signal: an empty payload, never an empty message.
        assert_eq!(
            Protocol::V4.frame(ERROR, &[]),
            Message::Binary(Bytes::from_static(&[3]))
        );
        assert_eq!(
            Protocol::V4Base64.frame(STDERR, b"hi"),
            Message::Text(Utf8Bytes::from_static("2aGk="))
        );
        assert_eq!(
            Protocol::Base64Channel.frame(STDOUT, &[]),
            Message::Text(Utf8Bytes::from_static("1"))
        );
    }

    #[test]
    fn client_messages_are_split_into_channel_and_payload() {
        let bin = |b: &'static [u8]| Message::Binary(Bytes::from_static(b));
        assert_eq!(
            Protocol::V5.parse(&bin(&[0, b'x'])),
            Some((STDIN, Bytes::from_static(b"x")))
        );
        assert_eq!(
            Protocol::V5.parse(&bin(&[255, 0])),
            Some((CLOSE, Bytes::from_static(&[0])))
        );
        assert_eq!(Protocol::V4.parse(&bin(&[])), None);
        assert_eq!(
            Protocol::V4Base64.parse(&Message::Text(Utf8Bytes::from_static("0aGk="))),
            Some((STDIN, Bytes::from_static(b"hi")))
        );
        assert_eq!(
            Protocol::V4Base64.parse(&Message::Text(Utf8Bytes::from_static("0!!"))),
            None
        );
        assert_eq!(Protocol::V5.parse(&Message::Ping(Bytes::new())), None);
    }

    #[test]
    fn the_final_status_is_what_kubelet_and_clients_agree_on() {
        assert_eq!(
            Outcome::Success.status().to_string(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        let exit = Outcome::ExitCode {
            code: 3,
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
        };
        assert_eq!(
            exit.status().to_string(),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        let failed = Outcome::Failed("boom".into()).status();
        assert_eq!(failed["message"], "Internal error occurred: boom");
        assert_eq!(failed["reason"], "InternalError");
        assert_eq!(failed["code"], 500);
        // Before v4 the error channel carries only a failure's text.
        assert_eq!(Outcome::Success.payload(Protocol::Channel), None);
        assert_eq!(
            Outcome::Failed("boom".into()).payload(Protocol::Unnamed),
            Some(b"Internal error occurred: boom".to_vec())
        );
        assert_eq!(
            Outcome::Success.payload(Protocol::V5),
            Some(br#"{"metadata":{},"status":"Success"}"#.to_vec())
        );
    }

    #[test]
    fn exec_reports_exit_codes_and_attach_reports_success() {
        let cmd = vec!["false".to_string()];
        assert_eq!(
            outcome(Operation::Exec, cmd.clone(), Ok(0)),
            Outcome::Success
        );
        assert_eq!(
            outcome(Operation::Exec, cmd.clone(), Ok(1)),
            Outcome::ExitCode {
                code: 1,
                command: cmd.clone()
            }
        );
        assert_eq!(outcome(Operation::Attach, vec![], Ok(1)), Outcome::Success);
        assert_eq!(
            outcome(Operation::Exec, cmd, Err("no such file".into())),
            Outcome::Failed("error executing command in container: no such file".into())
        );
        assert_eq!(
            outcome(Operation::Attach, vec![], Err("gone".into())),
            Outcome::Failed("error attaching to container: gone".into())
        );
    }

    #[test]
    fn resize_messages_may_be_split_joined_or_lower_case() {
        let mut d = ResizeDecoder::default();
        assert_eq!(d.push(br#"{"Width":80,"Height":24}"#), vec![(80, 24)]);
        assert_eq!(d.push(br#"{"Width":100,"#), vec![]);
        assert_eq!(
            d.push(br#""Height":40}{"width":1,"height":2}"#),
            vec![(100, 40), (1, 2)]
        );
        assert_eq!(d.push(b"not json"), vec![]);
        assert_eq!(
            d.push(br#"{"Width":5,"Height":5}"#),
            vec![],
            "a broken resize channel is ignored from then on"
        );
    }

    #[test]
    fn the_only_container_is_the_default_and_several_need_a_name() {
        let one = pod(&["main"], &["setup"]);
        assert_eq!(validate_container(&one, "web", ""), Ok("main".to_string()));
        assert_eq!(
            validate_container(&one, "web", "setup"),
            Ok("setup".to_string())
        );
        let e = validate_container(&one, "web", "nope").expect_err("unknown");
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container nope is not valid for pod web")
        );
        let two = pod(&["a", "b"], &["setup"]);
        let e = validate_container(&two, "web", "").expect_err("ambiguous");
        assert_eq!(
            e.message,
            "a container name must be specified for pod web, choose one of: [setup a b]"
        );
    }

    #[test]
    fn stream_options_follow_apimachinery_and_the_kubelet() {
        let p = pod(&["main"], &[]);
        let q = query(&[
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo hi"),
            ("stdin", "False"),
            ("stdout", "true"),
            ("stderr", "1"),
            ("tty", "0"),
        ]);
        let r = stream_request(Operation::Exec, &p, "ns", "web", &q).expect("valid");
        assert_eq!(
            r,
            StreamRequest {
                namespace: "ns".into(),
                pod: "web".into(),
                pod_uid: "u-1".into(),
                container: "main".into(),
                command: vec!["sh".into(), "-c".into(), "echo hi".into()],
                stdin: false,
                stdout: true,
                stderr: true,
                tty: false,
            }
        );
        let tty = query(&[
            ("command", "sh"),
            ("stdout", "true"),
            ("stderr", "true"),
            ("tty", "true"),
        ]);
        let r = stream_request(Operation::Exec, &p, "ns", "web", &tty).expect("valid");
        assert!(r.tty && !r.stderr, "a terminal has one output stream");
        let attach = stream_request(Operation::Attach, &p, "ns", "web", &tty).expect("valid");
        assert!(attach.command.is_empty());

        let none = query(&[("command", "sh"), ("stdout", "false")]);
        let e = stream_request(Operation::Exec, &p, "ns", "web", &none).expect_err("no streams");
        assert_eq!(
            e.message,
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        let no_cmd = query(&[("stdout", "true")]);
        assert!(stream_request(Operation::Exec, &p, "ns", "web", &no_cmd).is_err());
        let mut unbound = p.clone();
        unbound["spec"]["nodeName"] = json!("");
        let e = stream_request(Operation::Exec, &unbound, "ns", "web", &tty).expect_err("unbound");
        assert_eq!(e.message, "pod web does not have a host assigned");
    }

    #[test]
    fn websocket_requests_and_offered_protocols_are_read_from_the_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io"),
        );
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("channel.k8s.io"),
        );
        assert!(is_websocket(&h));
        assert_eq!(
            offered_protocols(&h),
            ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
        );
        let mut spdy = HeaderMap::new();
        spdy.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        spdy.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        assert!(!is_websocket(&spdy));
        assert!(header_has_token(&spdy, header::UPGRADE, "spdy/3.1"));
    }
}
