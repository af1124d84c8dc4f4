//! The node's saved state: its id and the nodes of its routing table, so that a restart keeps
//! its place in the keyspace and can bootstrap without the public routers.
//!
//! JSON, written atomically (temporary file, fsync, rename), so a crash mid-write leaves the
//! previous file intact. Loading is defensive: the file is size-capped, entries that do not
//! parse are skipped, and at most [`MAX_SAVED_NODES`] are kept. Saved nodes are only lookup
//! seeds on the next start; they enter the routing table once they answer.

use std::fs;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::node_id::{NodeId, NodeInfo};

/// Most nodes read back (a full table of 160 buckets holds 1280).
pub const MAX_SAVED_NODES: usize = 2000;
const MAX_FILE_LEN: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    node_id: String,
    nodes: Vec<SavedNode>,
}

#[derive(Serialize, Deserialize)]
struct SavedNode {
    id: String,
    addr: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedState {
    pub node_id: NodeId,
    pub nodes: Vec<NodeInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("DHT state file {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("DHT state file {path}: not valid JSON state: {reason}")]
    Format { path: String, reason: String },
}

pub fn save(path: &Path, state: &SavedState) -> Result<(), PersistError> {
    let io_err = |source| PersistError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = StateFile {
        version: 1,
        node_id: state.node_id.to_hex(),
        nodes: state
            .nodes
            .iter()
            .take(MAX_SAVED_NODES)
            .map(|n| SavedNode {
                id: n.id.to_hex(),
                addr: n.addr.to_string(),
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| io_err(io::Error::other(e)))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_err)?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(tmp);
        io_err(e)
    })?;
    // Make the rename itself durable; not fatal where directories cannot be opened.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// `Ok(None)` when there is no file yet.
pub fn load(path: &Path) -> Result<Option<SavedState>, PersistError> {
    let display = || path.display().to_string();
    let f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Io {
                path: display(),
                source,
            })
        }
    };
    let mut bytes = Vec::new();
    f.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| PersistError::Io {
            path: display(),
            source,
        })?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(PersistError::Format {
            path: display(),
            reason: format!("larger than {MAX_FILE_LEN} bytes"),
        });
    }
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| PersistError::Format {
        path: display(),
        reason: e.to_string(),
    })?;
    let node_id = NodeId::from_hex(&file.node_id).ok_or_else(|| PersistError::Format {
        path: display(),
        reason: "node_id is not 40 hex digits".into(),
    })?;
    let nodes = file
        .nodes
        .iter()
        .filter_map(|n| {
            Some(NodeInfo {
                id: NodeId::from_hex(&n.id)?,
                addr: n.addr.parse::<SocketAddr>().ok()?,
            })
        })
        .take(MAX_SAVED_NODES)
        .collect();
    Ok(Some(SavedState { node_id, nodes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dht.json");
        assert_eq!(load(&path).unwrap(), None);
        let state = SavedState {
            node_id: NodeId::random(),
            nodes: vec![
                NodeInfo {
                    id: NodeId::random(),
                    addr: "127.0.0.1:1".parse().unwrap(),
                },
                NodeInfo {
                    id: NodeId::random(),
                    addr: "[::1]:2".parse().unwrap(),
                },
            ],
        };
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), Some(state.clone()));
        let second = SavedState {
            nodes: vec![],
            ..state
        };
        save(&path, &second).unwrap();
        assert_eq!(load(&path).unwrap(), Some(second));
        assert!(!dir.path().join("sub/dht.json.tmp").exists());
    }

    #[test]
    fn bad_entries_are_skipped_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.json");
        let id = NodeId::random().to_hex();
        fs::write(
            &path,
            format!(
                r#"{{"version":1,"node_id":"{id}","nodes":[{{"id":"zz","addr":"1.2.3.4:5"}},{{"id":"{id}","addr":"nope"}},{{"id":"{id}","addr":"1.2.3.4:5"}}]}}"#
            ),
        )
        .unwrap();
        assert_eq!(load(&path).unwrap().unwrap().nodes.len(), 1);
        fs::write(&path, "{not json").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("dht.json"), "{err}");
        fs::write(&path, vec![b' '; (MAX_FILE_LEN + 10) as usize]).unwrap();
        assert!(load(&path).is_err());
    }
}
