//! transmission 4.1's JSON-RPC 2.0 form of the RPC, on the same endpoint as the legacy form: a
//! request that says `"jsonrpc": "2.0"` (or a batch, an array of them) names its method and its
//! keys in snake_case (`torrent_get`, `hash_string`), puts its arguments in `params`, and gets
//! `result` (the arguments) or an `error` object (`code`, `message`, `data.error_string`) back
//! with its `id`. A request without `id` is a notification: it gets no answer, and one that
//! only reads is not even run (HTTP 204 when nothing is left to answer).
//!
//! A translation, not a second implementation: the request is turned into the legacy method and
//! keys, [`Rpc::call`] runs it, and the answer's keys are turned back. Besides the names, 4.1
//! changed a few values, translated here too: `wanted` is booleans, `encryption` says
//! `allowed` for `tolerated`, `cache-size-mb` is `cache_size_mib`; and `session_get` reports the
//! protocol this form speaks (`rpc_version` 18, `rpc_version_semver` 6.0.0).
//!
//! Pure apart from the call itself; `mod.rs` decides which form a body is in.

use serde_json::{json, Map, Value};

use super::rpc::{Code, Failure, Rpc};
use crate::engine::Engine;

/// What this form's `session_get` reports: transmission 4.1.0's RPC.
pub const RPC_VERSION: i64 = 18;
pub const RPC_VERSION_SEMVER: &str = "6.0.0";

/// `X-Transmission-Rpc-Version`, sent with the 409 of the session-id handshake so that a 4.1
/// client knows this form is spoken before its first call.
pub const VERSION_HEADER: (&str, &str) = ("X-Transmission-Rpc-Version", RPC_VERSION_SEMVER);

/// The argument keys the legacy methods read, as the legacy form spells them; a snake_case key
/// is looked up by its snake_case spelling ([`snake`]). Keys not in the list pass unchanged.
#[rustfmt::skip]
const ARGUMENT_KEYS: &[&str] = &[
    "ids", "fields", "format", "filename", "metainfo", "download-dir", "paused", "labels",
    "cookies", "files-wanted", "files-unwanted", "priority-high", "priority-normal", "priority-low",
    "peer-limit", "bandwidthPriority", "delete-local-data", "location", "trackerAdd",
    "trackerRemove", "trackerReplace", "trackerList", "seedRatioMode", "seedRatioLimit",
    "seedIdleMode", "seedIdleLimit", "downloadLimited", "downloadLimit", "uploadLimited",
    "uploadLimit", "honorsSessionLimits", "sequentialDownload", "group", "queuePosition", "path",
    // session-set / session-get
    "alt-speed-down", "alt-speed-enabled", "alt-speed-time-begin", "alt-speed-time-day",
    "alt-speed-time-enabled", "alt-speed-time-end", "alt-speed-up", "blocklist-enabled",
    "blocklist-size", "blocklist-url", "cache-size-mb", "config-dir", "default-trackers",
    "dht-enabled", "download-dir-free-space", "download-queue-enabled", "download-queue-size",
    "encryption", "idle-seeding-limit", "idle-seeding-limit-enabled", "incomplete-dir",
    "incomplete-dir-enabled", "lpd-enabled", "peer-limit-global", "peer-limit-per-torrent",
    "peer-port", "peer-port-random-on-start", "pex-enabled", "port-forwarding-enabled",
    "queue-stalled-enabled", "queue-stalled-minutes", "rename-partial-files", "rpc-version",
    "rpc-version-minimum", "rpc-version-semver", "script-torrent-added-enabled",
    "script-torrent-added-filename", "script-torrent-done-enabled", "script-torrent-done-filename",
    "script-torrent-done-seeding-enabled", "script-torrent-done-seeding-filename",
    "seed-queue-enabled", "seed-queue-size", "seedRatioLimited", "session-id", "speed-limit-down",
    "speed-limit-down-enabled", "speed-limit-up", "speed-limit-up-enabled", "start-added-torrents",
    "tcp-enabled", "trash-original-torrent-files", "units", "utp-enabled", "version",
];

/// `torrent_get`'s field names as the legacy form spells them (`download_dir` is `downloadDir`
/// here but `download-dir` as an argument: hence two lists).
#[rustfmt::skip]
const TORRENT_FIELDS: &[&str] = &[
    "activityDate", "addedDate", "availability", "bandwidthPriority", "comment", "corruptEver",
    "creator", "dateCreated", "desiredAvailable", "doneDate", "downloadDir", "downloadedEver",
    "downloadLimit", "downloadLimited", "editDate", "error", "errorString", "eta", "etaIdle",
    "file-count", "files", "fileStats", "group", "hashString", "haveUnchecked", "haveValid",
    "honorsSessionLimits", "id", "isFinished", "isPrivate", "isStalled", "labels", "leftUntilDone",
    "magnetLink", "manualAnnounceTime", "maxConnectedPeers", "metadataPercentComplete", "name",
    "peer-limit", "peers", "peersConnected", "peersFrom", "peersGettingFromUs", "peersSendingToUs",
    "percentComplete", "percentDone", "pieces", "pieceCount", "pieceSize", "priorities",
    "primary-mime-type", "queuePosition", "rateDownload", "rateUpload", "recheckProgress",
    "secondsDownloading", "secondsSeeding", "seedIdleLimit", "seedIdleMode", "seedRatioLimit",
    "seedRatioMode", "sequentialDownload", "sizeWhenDone", "startDate", "status", "totalSize",
    "torrentFile", "trackers", "trackerList", "trackerStats", "uploadedEver", "uploadLimit",
    "uploadLimited", "uploadRatio", "wanted", "webseeds", "webseedsSendingToUs",
];

/// Methods that change nothing: a notification of one is not run (JSON-RPC 2.0 notifications
/// get no answer, so reading would be wasted).
const READ_ONLY: &[&str] = &[
    "session-get",
    "session-stats",
    "torrent-get",
    "free-space",
    "group-get",
];

/// Whether a parsed body is in this form: an object that says `"jsonrpc"`, or a batch.
pub fn is_jsonrpc(body: &Value) -> bool {
    match body {
        Value::Object(m) => m.contains_key("jsonrpc"),
        Value::Array(_) => true,
        _ => false,
    }
}

/// The answer to a body that [`is_jsonrpc`]; `None` when nothing is to be answered (only
/// notifications): the server sends 204 then.
pub async fn answer<E: Engine>(rpc: &Rpc<E>, body: Value) -> Option<Value> {
    match body {
        Value::Array(batch) if batch.is_empty() => Some(error_response(
            Value::Null,
            &Failure::coded(Code::InvalidRequest, "an empty batch"),
        )),
        Value::Array(batch) => {
            let mut answers = Vec::new();
            for request in batch {
                answers.extend(one(rpc, request).await);
            }
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        request => one(rpc, request).await,
    }
}

/// The JSON-RPC error answer for a body that is not JSON at all.
pub fn parse_error(e: &serde_json::Error) -> Value {
    error_response(
        Value::Null,
        &Failure::coded(Code::ParseError, format!("the request is not JSON: {e}")),
    )
}

async fn one<E: Engine>(rpc: &Rpc<E>, request: Value) -> Option<Value> {
    let invalid = |m: &str| {
        Some(error_response(
            Value::Null,
            &Failure::coded(Code::InvalidRequest, m),
        ))
    };
    let Value::Object(mut request) = request else {
        return invalid("a request must be a JSON object");
    };
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("\"jsonrpc\" must be \"2.0\"");
    }
    let id = request.remove("id");
    if id
        .as_ref()
        .is_some_and(|id| !matches!(id, Value::String(_) | Value::Number(_) | Value::Null))
    {
        return invalid("id must be a string, a number or null");
    }
    let Some(Value::String(method)) = request.remove("method") else {
        let id = id.unwrap_or(Value::Null);
        return Some(error_response(
            id,
            &Failure::coded(Code::InvalidRequest, "no method name"),
        ));
    };
    let params = match request.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(Value::Array(_)) => {
            let f = Failure::new(format!(
                "{method}: params must be an object (by-position params are not supported)"
            ));
            return id.map(|id| error_response(id, &f));
        }
        Some(other) => {
            let f = Failure::coded(
                Code::InvalidRequest,
                format!("{method}: params must be an object, not {other}"),
            );
            return Some(error_response(id.unwrap_or(Value::Null), &f));
        }
    };
    let legacy_method = method.replace('_', "-");
    let Some(id) = id else {
        if !READ_ONLY.contains(&legacy_method.as_str()) {
            if let Err(f) = rpc
                .call(&legacy_method, &legacy_params(&legacy_method, params))
                .await
            {
                tracing::debug!(method, error = %f.message, "JSON-RPC notification failed");
            }
        }
        return None;
    };
    Some(
        match rpc
            .call(&legacy_method, &legacy_params(&legacy_method, params))
            .await
        {
            Ok(result) => {
                let mut result = snake_keys(Value::Object(result));
                fix_values(&legacy_method, &mut result);
                json!({"jsonrpc": "2.0", "result": result, "id": id})
            }
            Err(f) => {
                tracing::debug!(method, error = %f.message, "JSON-RPC call failed");
                error_response(id, &f)
            }
        },
    )
}

fn error_response(id: Value, f: &Failure) -> Value {
    json!({
        "jsonrpc": "2.0",
        "error": {
            "code": code_number(f.code),
            "message": code_message(f.code),
            "data": {"error_string": f.message},
        },
        "id": id,
    })
}

/// transmission's numbers (`JsonRpc::Error` in its `rpcimpl.h`): JSON-RPC's own below zero, its
/// own from 1; swarmd's "not supported" in the range JSON-RPC leaves to servers.
fn code_number(c: Code) -> i64 {
    match c {
        Code::ParseError => -32700,
        Code::InvalidRequest => -32600,
        Code::MethodNotFound => -32601,
        Code::InvalidParams => -32602,
        Code::Internal => -32603,
        Code::PathNotAbsolute => 3,
        Code::System => 5,
        Code::FileIndexOutOfRange => 6,
        Code::Http => 8,
        Code::CorruptTorrent => 9,
        Code::Unsupported => -32000,
    }
}

fn code_message(c: Code) -> &'static str {
    match c {
        Code::ParseError => "Parse error",
        Code::InvalidRequest => "Invalid Request",
        Code::MethodNotFound => "Method not found",
        Code::InvalidParams => "Invalid params",
        Code::Internal => "Internal error",
        Code::PathNotAbsolute => "path is not absolute",
        Code::System => "system error",
        Code::FileIndexOutOfRange => "file index out of range",
        Code::Http => "HTTP error from backend service",
        Code::CorruptTorrent => "invalid or corrupt torrent file",
        Code::Unsupported => "not supported by swarmd",
    }
}

/// transmission 4.1's snake_case spelling of a legacy name: `-` becomes `_`, and a capital
/// starts a new word (`hashString` → `hash_string`, `isUTP` → `is_utp`).
pub fn snake(legacy: &str) -> String {
    if legacy == "cache-size-mb" {
        return "cache_size_mib".into();
    }
    let chars: Vec<char> = legacy.chars().collect();
    let mut out = String::with_capacity(legacy.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).and_then(|p| chars.get(p));
            let after_lower = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            let ends_acronym = prev.is_some_and(char::is_ascii_uppercase)
                && chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if after_lower || ends_acronym {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The legacy spelling of a snake_case name in `list`, or the name as it is.
fn legacy<'a>(name: &'a str, list: &[&'a str]) -> &'a str {
    list.iter()
        .copied()
        .find(|l| snake(l) == name)
        .unwrap_or(name)
}

/// The request's params with legacy keys, field names and values (`fields` names torrent fields
/// in `torrent-get`, session keys in `session-get`).
fn legacy_params(method: &str, params: Map<String, Value>) -> Map<String, Value> {
    let field_names = if method == "torrent-get" {
        TORRENT_FIELDS
    } else {
        ARGUMENT_KEYS
    };
    params
        .into_iter()
        .map(|(k, v)| {
            let key = legacy(&k, ARGUMENT_KEYS).to_owned();
            let v = match (key.as_str(), v) {
                ("fields", Value::Array(names)) => Value::Array(
                    names
                        .into_iter()
                        .map(|n| match n {
                            Value::String(s) => Value::String(legacy(&s, field_names).to_owned()),
                            other => other,
                        })
                        .collect(),
                ),
                ("ids", Value::String(s)) if s == "recently_active" => {
                    Value::String("recently-active".into())
                }
                ("encryption", Value::String(s)) if s == "allowed" => {
                    Value::String("tolerated".into())
                }
                (_, v) => v,
            };
            (key, v)
        })
        .collect()
}

/// Every object key of an answer, in snake_case.
fn snake_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (snake(&k), snake_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(snake_keys).collect()),
        other => other,
    }
}

/// The values 4.1 changed (see the module header), in an answer whose keys are snake_case.
fn fix_values(method: &str, result: &mut Value) {
    match method {
        "session-get" => {
            if let Some(e) = result.get_mut("encryption") {
                if e == "tolerated" {
                    *e = json!("allowed");
                }
            }
            if let Some(v) = result.get_mut("rpc_version") {
                *v = json!(RPC_VERSION);
            }
            if let Some(v) = result.get_mut("rpc_version_semver") {
                *v = json!(RPC_VERSION_SEMVER);
            }
            if let Some(v) = result.get_mut("version") {
                *v = json!(super::rpc::version_jsonrpc());
            }
        }
        "torrent-get" => {
            let Some(Value::Array(torrents)) = result.get_mut("torrents") else {
                return;
            };
            let bools = |w: &mut Value| {
                if let Value::Array(a) = w {
                    for x in a {
                        *x = json!(x.as_i64().is_some_and(|n| n != 0));
                    }
                }
            };
            if let Some(Value::Array(header)) = torrents.first() {
                // format "table": the first row names the columns.
                let wanted = header.iter().position(|h| h == "wanted");
                let header: Vec<Value> = header
                    .iter()
                    .map(|h| h.as_str().map_or(h.clone(), |s| json!(snake(s))))
                    .collect();
                let mut rows = torrents.iter_mut();
                if let Some(first) = rows.next() {
                    *first = Value::Array(header);
                }
                for row in rows {
                    if let Some(w) = wanted.and_then(|i| row.get_mut(i)) {
                        bools(w);
                    }
                }
                return;
            }
            for t in torrents.iter_mut() {
                if let Some(w) = t.get_mut("wanted") {
                    bools(w);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
