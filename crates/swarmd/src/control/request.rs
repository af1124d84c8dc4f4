//! A request line and its params checked before any method runs: the JSON-RPC envelope, and
//! params decoded with errors in the protocol's words (params, numbers, strings), never serde's
//! or Rust's ("untagged enum Id", "flattened data", "u64"). Pure: no socket, no engine.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use swarm_control::methods::names;
use swarm_control::rpc::RpcError;

/// `torrent.add` takes its source flattened into the params, where serde's own complaint is "no
/// variant of enum TorrentSource found in flattened data" and unknown keys pass unnoticed: say
/// in words which keys it takes.
pub fn check_add_params(params: Option<&Value>) -> Result<(), RpcError> {
    const SOURCES: [&str; 3] = ["metainfo", "path", "magnet"];
    const OPTIONS: [&str; 3] = ["save_dir", "paused", "labels"];
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
             and \"save_dir\", \"paused\", \"labels\")"
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
