//! The control protocol's request lines (JSON-RPC 2.0), as the daemon parses one line: the
//! envelope (`Request::from_line`), then the params of every method and the torrent selectors.
//!
//! Invariants: a request that parses is version 2.0 with params by name (or none), and writing
//! it back as a line parses to the same request; an error names the id whenever the line had a
//! readable one and is one of the JSON-RPC envelope codes; params decoding refuses, never panics.

use serde_json::Value;
use swarm_control::rpc::{codes, Request, JSONRPC_VERSION};
use swarm_control::{
    AddParams, RemoveParams, SetFilePriorityParams, SetLimitsParams, TorrentParams, TorrentRef,
};

fn params(value: &Value) {
    let _ = serde_json::from_value::<AddParams>(value.clone());
    let _ = serde_json::from_value::<RemoveParams>(value.clone());
    let _ = serde_json::from_value::<SetFilePriorityParams>(value.clone());
    let _ = serde_json::from_value::<SetLimitsParams>(value.clone());
    if let Ok(p) = serde_json::from_value::<TorrentParams>(value.clone()) {
        let _ = serde_json::to_string(&p);
    }
    // Selectors arrive as strings inside params; try each string value as one.
    if let Value::Object(map) = value {
        for v in map.values().filter_map(Value::as_str) {
            let _ = TorrentRef::parse(v);
        }
    }
}

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn control_request(data: &[u8]) {
    match Request::from_line(data) {
        Ok(req) => {
            assert_eq!(req.jsonrpc, JSONRPC_VERSION);
            assert!(matches!(
                req.params,
                None | Some(Value::Object(_)) | Some(Value::Null)
            ));
            let line = serde_json::to_vec(&req).expect("a request serialises");
            assert_eq!(
                Request::from_line(&line).map_err(|(_, e)| e.message),
                Ok(req.clone())
            );
            if let Some(p) = &req.params {
                params(p);
            }
        }
        Err((_, e)) => assert!(
            [
                codes::PARSE_ERROR,
                codes::INVALID_REQUEST,
                codes::INVALID_PARAMS
            ]
            .contains(&e.code),
            "{e:?}"
        ),
    }
}
