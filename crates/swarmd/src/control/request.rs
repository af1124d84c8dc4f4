//! A request line and its params checked before any method runs: the JSON-RPC envelope, and
//! params decoded with errors in the protocol's words (params, numbers, strings), never serde's
//! or Rust's ("untagged enum Id", "flattened data", "u64"). Pure: no socket, no engine.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use swarm_control::methods::names;
use swarm_control::rpc::{Id, Request, RpcError, JSONRPC_VERSION};

/// Validates the envelope. On failure returns the id (when it could be read) with the error.
pub fn parse_request(line: &[u8]) -> Result<Request, (Option<Id>, RpcError)> {
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
    let request: Request =
        serde_json::from_value(value).map_err(|e| (id.clone(), RpcError::invalid_request(e)))?;
    match &request.params {
        None | Some(Value::Object(_)) | Some(Value::Null) => Ok(request),
        Some(_) => Err((
            id,
            RpcError::invalid_params(&request.method, "params must be an object (by name)"),
        )),
    }
}

/// `torrent.add` takes its source flattened into the params, where serde's own complaint is "no
/// variant of enum TorrentSource found in flattened data" and unknown keys pass unnoticed: say
/// in words which keys it takes.
pub fn check_add_params(params: Option<&Value>) -> Result<(), RpcError> {
    const SOURCES: [&str; 3] = ["metainfo", "path", "magnet"];
    const OPTIONS: [&str; 2] = ["save_dir", "paused"];
    let bad = |why: String| RpcError::invalid_params(names::TORRENT_ADD, why);
    let Some(Value::Object(map)) = params else {
        return Err(bad(
            "give the torrent as one of \"metainfo\" (base64), \"path\" or \"magnet\"".into(),
        ));
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !SOURCES.contains(&k.as_str()) && !OPTIONS.contains(&k.as_str()))
    {
        return Err(bad(format!(
            "unknown param \"{unknown}\" (it takes one of \"metainfo\", \"path\", \"magnet\", \
             and \"save_dir\", \"paused\")"
        )));
    }
    let given: Vec<&str> = SOURCES
        .into_iter()
        .filter(|k| map.contains_key(*k))
        .collect();
    match given.as_slice() {
        [_] => Ok(()),
        [] => Err(bad(
            "give the torrent as one of \"metainfo\" (base64), \"path\" or \"magnet\"".into(),
        )),
        many => Err(bad(format!(
            "give only one of \"metainfo\", \"path\", \"magnet\" (got {})",
            many.join(", ")
        ))),
    }
}

pub fn decode<T: DeserializeOwned>(method: &str, params: Option<Value>) -> Result<T, RpcError> {
    let value = match params {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v) => v,
    };
    serde_json::from_value(value).map_err(|e| RpcError::invalid_params(method, user_words(&e)))
}

/// serde's messages in the protocol's words: params, not fields; numbers, not Rust types.
fn user_words(e: &serde_json::Error) -> String {
    const WORDS: [(&str, &str); 7] = [
        ("unknown field", "unknown param"),
        ("missing field", "missing param"),
        (", there are no fields", ": this method takes no params"),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected u32", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected i64", "expected a whole number"),
    ];
    WORDS.iter().fold(e.to_string(), |text, (rust, words)| {
        text.replace(rust, words)
    })
}

/// Methods without params accept none, `null` or `{}`: anything else is most likely a mistake.
pub fn no_params(method: &str, params: Option<Value>) -> Result<(), RpcError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoParams {}
    decode::<NoParams>(method, params).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_control::rpc::codes;

    #[test]
    fn envelope_errors() {
        let (id, e) = parse_request(b"{not json").unwrap_err();
        assert_eq!((id, e.code), (None, codes::PARSE_ERROR));
        let (_, e) = parse_request(b"[1,2]").unwrap_err();
        assert_eq!(e.code, codes::INVALID_REQUEST);
        assert!(e.message.contains("batch"));
        let (_, e) = parse_request(b"42").unwrap_err();
        assert_eq!(e.code, codes::INVALID_REQUEST);
        let (id, e) = parse_request(br#"{"jsonrpc":"1.0","id":5,"method":"x"}"#).unwrap_err();
        assert_eq!((id, e.code), (Some(Id::Num(5)), codes::INVALID_REQUEST));
        let (id, e) = parse_request(br#"{"jsonrpc":"2.0","id":"k","method":7}"#).unwrap_err();
        assert_eq!(
            (id, e.code),
            (Some(Id::Str("k".into())), codes::INVALID_REQUEST)
        );
        let (_, e) =
            parse_request(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#).unwrap_err();
        assert_eq!(e.code, codes::INVALID_PARAMS);
        assert!(parse_request(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":null}"#).is_ok());
    }
}
