//! JSON-RPC 2.0 framing: requests, responses, errors and notifications, one JSON value per line.
//!
//! Only the parts of JSON-RPC 2.0 that swarmd uses are modelled: by-name params (an object),
//! number or string ids, and server-to-client notifications for the event stream. Batches are
//! rejected by the server with `invalid request` (one line, one call keeps a client simple).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use swarm_model::{EngineError, InfoHash};

/// The only protocol version string the server accepts.
pub const JSONRPC_VERSION: &str = "2.0";

/// Longest request line the server reads by default (4 MiB; `[control] max_request_bytes`).
/// Longer lines are answered with [`codes::REQUEST_TOO_LARGE`] and skipped up to their newline;
/// the connection stays open. Big enough for `torrent.add` of a base64 `.torrent` of 3 MiB
/// (about 150 000 pieces); swarmctl sends the path of anything bigger instead.
pub const MAX_REQUEST_LINE: usize = 4 << 20;

/// Longest response line a client reads (64 MiB): `torrent.files` of a torrent with very many
/// files is the largest answer the daemon gives.
pub const MAX_RESPONSE_LINE: usize = 64 << 20;

/// Error codes: the JSON-RPC 2.0 standard ones, then swarmd's own (−32000 to −32099 is the range
/// the spec reserves for implementation-defined server errors).
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;

    /// No torrent matches the given info-hash or prefix.
    pub const TORRENT_NOT_FOUND: i64 = -32001;
    /// The prefix matches more than one torrent; `data.matches` lists them.
    pub const AMBIGUOUS_TORRENT: i64 = -32002;
    /// `torrent.add` of a torrent the daemon already has; `data.info_hash` names it.
    pub const TORRENT_EXISTS: i64 = -32003;
    /// The caller's uid may read but not change the daemon's state.
    pub const PERMISSION_DENIED: i64 = -32004;
    /// The metainfo or magnet given to `torrent.add` does not parse; the message says why.
    pub const INVALID_TORRENT: i64 = -32005;
    /// The daemon is stopping and takes no more work.
    pub const SHUTTING_DOWN: i64 = -32006;
    /// The request line is longer than the server's limit ([`super::MAX_REQUEST_LINE`] by default).
    pub const REQUEST_TOO_LARGE: i64 = -32007;
    /// Too many clients are connected; try again later.
    pub const BUSY: i64 = -32008;
    /// The connection sent no request for the server's idle timeout and is being closed.
    pub const IDLE: i64 = -32009;
}

/// A request id. JSON-RPC allows numbers and strings; swarmctl uses numbers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Num(i64),
    Str(String),
}

impl From<i64> for Id {
    fn from(n: i64) -> Self {
        Id::Num(n)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// A call from client to daemon. A request without `id` is a notification: it is carried out and
/// never answered (JSON-RPC 2.0 §4.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl Request {
    /// Parses and validates one request line as the daemon reads it: JSON, an object (batches are
    /// refused), `"jsonrpc": "2.0"`, a string `method`, params by name. On failure returns the id
    /// (when it could be read, so the error can be answered to it) with the error to send.
    ///
    /// The line is untrusted: serde_json bounds its nesting (128 levels) and the server bounds the
    /// line's length ([`MAX_REQUEST_LINE`]) before it gets here. `fuzz/` runs this on random lines.
    pub fn from_line(line: &[u8]) -> Result<Request, (Option<Id>, RpcError)> {
        let value: Value =
            serde_json::from_slice(line).map_err(|e| (None, RpcError::parse_error(e)))?;
        let Value::Object(map) = &value else {
            let why = if value.is_array() {
                "batch requests are not supported; send one request per line"
            } else {
                "a request must be a JSON object"
            };
            return Err((None, RpcError::invalid_request(why)));
        };
        let id = map.get("id").and_then(|v| Id::deserialize(v).ok());
        if map.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC_VERSION) {
            return Err((id, RpcError::invalid_request("\"jsonrpc\" must be \"2.0\"")));
        }
        // Checked here in words: serde would say "data did not match any variant of untagged enum".
        match map.get("id") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(Value::Number(n)) if n.is_i64() => {}
            Some(other) => {
                return Err((
                    None,
                    RpcError::invalid_request(format!(
                        "\"id\" must be a whole number or a string, not {other}"
                    )),
                ))
            }
        }
        match map.get("method") {
            Some(Value::String(_)) => {}
            None => return Err((id, RpcError::invalid_request("\"method\" is missing"))),
            Some(other) => {
                return Err((
                    id,
                    RpcError::invalid_request(format!("\"method\" must be a string, not {other}")),
                ))
            }
        }
        let request: Request = serde_json::from_value(value)
            .map_err(|e| (id.clone(), RpcError::invalid_request(e)))?;
        match &request.params {
            None | Some(Value::Object(_)) | Some(Value::Null) => Ok(request),
            Some(_) => Err((
                id,
                RpcError::invalid_params(&request.method, "params must be an object (by name)"),
            )),
        }
    }

    pub fn new(id: impl Into<Id>, method: &str, params: Option<Value>) -> Self {
        Request {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            id: Some(id.into()),
            method: method.to_owned(),
            params,
        }
    }
}

/// The error member of a response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        Self::new(codes::PARSE_ERROR, format!("parse error: {detail}"))
    }

    pub fn invalid_request(detail: impl std::fmt::Display) -> Self {
        Self::new(codes::INVALID_REQUEST, format!("invalid request: {detail}"))
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(
            codes::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )
    }

    pub fn invalid_params(method: &str, detail: impl std::fmt::Display) -> Self {
        Self::new(
            codes::INVALID_PARAMS,
            format!("invalid params for {method}: {detail}"),
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(codes::INTERNAL_ERROR, format!("internal error: {detail}"))
    }
}

/// The engine's errors as the control protocol reports them: the one place an
/// [`EngineError`] gets its code. A torrent it names goes in `data.info_hash` too, for scripts.
impl From<EngineError> for RpcError {
    fn from(e: EngineError) -> Self {
        let message = e.to_string();
        let about = |ih: InfoHash| serde_json::json!({ "info_hash": ih });
        match e {
            EngineError::UnknownTorrent(ih) => {
                RpcError::new(codes::TORRENT_NOT_FOUND, message).with_data(about(ih))
            }
            EngineError::Duplicate(ih) => {
                RpcError::new(codes::TORRENT_EXISTS, message).with_data(about(ih))
            }
            EngineError::ShuttingDown => RpcError::new(codes::SHUTTING_DOWN, message),
            e if e.is_refusal() => RpcError::new(codes::INVALID_PARAMS, message),
            // The message already says "internal error" where it is one.
            _ => RpcError::new(codes::INTERNAL_ERROR, message),
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

/// An answer to one request: exactly one of `result` and `error` is present.
///
/// A successful call whose result is JSON `null` reads back with `result: None`; use
/// [`Response::into_result`], which maps that to `Value::Null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub jsonrpc: String,
    /// `null` when the request's id could not be read (parse errors, invalid requests).
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    pub fn ok(id: Option<Id>, result: Value) -> Self {
        Response {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            id,
            result: Some(result),
            error: None,
        }
    }

    pub fn err(id: Option<Id>, error: RpcError) -> Self {
        Response {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            id,
            result: None,
            error: Some(error),
        }
    }

    pub fn into_result(self) -> Result<Value, RpcError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.result.unwrap_or(Value::Null)),
        }
    }
}

/// A server-to-client message without id: `{"jsonrpc":"2.0","method":"event","params":{...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub jsonrpc: String,
    pub method: String,
    #[serde(default)]
    pub params: Value,
}

impl Notification {
    pub fn new(method: &str, params: Value) -> Self {
        Notification {
            jsonrpc: JSONRPC_VERSION.to_owned(),
            method: method.to_owned(),
            params,
        }
    }
}

/// Any line a client may read: a response (has `id`) or a notification (has `method`).
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    Response(Response),
    Notification(Notification),
}

impl Incoming {
    /// Tells responses from notifications by the presence of `method`, as JSON-RPC 2.0 does.
    pub fn from_slice(line: &[u8]) -> Result<Incoming, serde_json::Error> {
        let value: Value = serde_json::from_slice(line)?;
        if value.get("method").is_some() {
            Ok(Incoming::Notification(serde_json::from_value(value)?))
        } else {
            Ok(Incoming::Response(serde_json::from_value(value)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each engine error has its code here and nowhere else; a torrent it names is in `data`.
    #[test]
    fn engine_errors_map_to_codes() {
        let ih = InfoHash([0xab; 20]);
        let e = RpcError::from(EngineError::UnknownTorrent(ih));
        assert_eq!(e.code, codes::TORRENT_NOT_FOUND);
        assert_eq!(e.message, format!("no torrent {}", "ab".repeat(20)));
        assert_eq!(e.data, Some(json!({ "info_hash": "ab".repeat(20) })));
        let e = RpcError::from(EngineError::Duplicate(ih));
        assert_eq!(e.code, codes::TORRENT_EXISTS);
        assert_eq!(e.data, Some(json!({ "info_hash": "ab".repeat(20) })));
        let io = EngineError::Io {
            doing: "cannot write to the save directory",
            path: "/ro".into(),
            reason: "read-only file system".into(),
        };
        let e = RpcError::from(io);
        assert_eq!(e.code, codes::INVALID_PARAMS);
        assert_eq!(
            e.message,
            "cannot write to the save directory /ro: read-only file system"
        );
        let e = RpcError::from(EngineError::Invalid("file 9 of 2".into()));
        assert_eq!(
            (e.code, e.message.as_str()),
            (codes::INVALID_PARAMS, "file 9 of 2")
        );
        let e = RpcError::from(EngineError::ShuttingDown);
        assert_eq!(e.code, codes::SHUTTING_DOWN);
        let e = RpcError::from(EngineError::Internal("disk on fire".into()));
        assert_eq!(
            (e.code, e.message.as_str()),
            (codes::INTERNAL_ERROR, "internal error: disk on fire")
        );
    }

    /// The envelope's errors are in the protocol's words, not serde's.
    #[test]
    fn envelope_errors_in_words() {
        let (id, e) =
            Request::from_line(br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#).unwrap_err();
        assert_eq!(id, None);
        assert!(
            e.message
                .contains("\"id\" must be a whole number or a string"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("untagged"), "{}", e.message);
        let (_, e) = Request::from_line(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err();
        assert!(e.message.contains("\"method\" is missing"), "{}", e.message);
    }

    #[test]
    fn envelope_errors() {
        let (id, e) = Request::from_line(b"{not json").unwrap_err();
        assert_eq!((id, e.code), (None, codes::PARSE_ERROR));
        let (_, e) = Request::from_line(b"[1,2]").unwrap_err();
        assert_eq!(e.code, codes::INVALID_REQUEST);
        assert!(e.message.contains("batch"));
        let (_, e) = Request::from_line(b"42").unwrap_err();
        assert_eq!(e.code, codes::INVALID_REQUEST);
        let (id, e) = Request::from_line(br#"{"jsonrpc":"1.0","id":5,"method":"x"}"#).unwrap_err();
        assert_eq!((id, e.code), (Some(Id::Num(5)), codes::INVALID_REQUEST));
        let (id, e) = Request::from_line(br#"{"jsonrpc":"2.0","id":"k","method":7}"#).unwrap_err();
        assert_eq!(
            (id, e.code),
            (Some(Id::Str("k".into())), codes::INVALID_REQUEST)
        );
        let (_, e) = Request::from_line(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#)
            .unwrap_err();
        assert_eq!(e.code, codes::INVALID_PARAMS);
        assert!(
            Request::from_line(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":null}"#).is_ok()
        );
    }

    #[test]
    fn request_round_trip_and_wire_form() {
        let req = Request::new(7, "torrent.show", Some(json!({"torrent": "abcdef"})));
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","id":7,"method":"torrent.show","params":{"torrent":"abcdef"}}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), req);
    }

    #[test]
    fn request_without_id_or_params() {
        let req: Request =
            serde_json::from_str(r#"{"jsonrpc":"2.0","method":"torrent.list"}"#).unwrap();
        assert_eq!(req.id, None);
        assert_eq!(req.params, None);
        let req: Request =
            serde_json::from_str(r#"{"jsonrpc":"2.0","id":"a","method":"x"}"#).unwrap();
        assert_eq!(req.id, Some(Id::Str("a".into())));
    }

    #[test]
    fn response_forms() {
        let ok = Response::ok(Some(Id::Num(1)), json!([1, 2]));
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(text, r#"{"jsonrpc":"2.0","id":1,"result":[1,2]}"#);
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), ok);

        let null_ok = Response::ok(Some(Id::Num(2)), Value::Null);
        let text = serde_json::to_string(&null_ok).unwrap();
        assert_eq!(text, r#"{"jsonrpc":"2.0","id":2,"result":null}"#);
        let back: Response = serde_json::from_str(&text).unwrap();
        assert_eq!(back.into_result().unwrap(), Value::Null);

        let err = Response::err(
            None,
            RpcError::parse_error("eof").with_data(json!({"x": 1})),
        );
        let text = serde_json::to_string(&err).unwrap();
        assert!(
            text.starts_with(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"#),
            "{text}"
        );
        let back: Response = serde_json::from_str(&text).unwrap();
        assert_eq!(back.clone(), err);
        assert_eq!(back.into_result().unwrap_err().code, codes::PARSE_ERROR);
    }

    #[test]
    fn incoming_tells_notifications_from_responses() {
        let n = Notification::new("event", json!({"event": "removed", "info_hash": "aa"}));
        let line = serde_json::to_vec(&n).unwrap();
        assert_eq!(
            Incoming::from_slice(&line).unwrap(),
            Incoming::Notification(n)
        );
        let r = Response::ok(Some(Id::Num(3)), json!(true));
        let line = serde_json::to_vec(&r).unwrap();
        assert_eq!(Incoming::from_slice(&line).unwrap(), Incoming::Response(r));
        assert!(Incoming::from_slice(b"{nope").is_err());
    }
}
