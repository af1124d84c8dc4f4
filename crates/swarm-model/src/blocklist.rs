//! The IP blocklist as the engine reports it and as the daemon configures it: where its rules
//! come from ([`BlocklistSources`], from `[blocklist]` of the config) and what was loaded
//! ([`BlocklistStatus`], for `swarmctl blocklist`, the HTTP RPC's `blocklist-size` and the
//! metrics).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the rules come from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistSources {
    pub enabled: bool,
    /// Files (plain or gzip) and directories (every file in them).
    pub paths: Vec<PathBuf>,
    /// A list fetched on request (`blocklist.update`), as transmission's `blocklist-url`.
    pub url: Option<String>,
    /// Where the fetched list is kept; loaded with `paths` when it exists.
    pub url_file: Option<PathBuf>,
}

/// One file that was read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistFile {
    pub path: PathBuf,
    /// Lines that gave a rule (before ranges were merged).
    pub rules: u64,
    pub malformed: u64,
}

/// A malformed line, by file and line number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistProblem {
    pub path: PathBuf,
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistStatus {
    pub enabled: bool,
    /// Ranges in force after merging, IPv4 + IPv6 (transmission's `blocklist-size`).
    pub rules: u64,
    pub rules_v4: u64,
    pub rules_v6: u64,
    /// Heap bytes of the ranges.
    pub memory_bytes: u64,
    pub files: Vec<BlocklistFile>,
    pub url: Option<String>,
    /// When the rules in force were loaded (Unix seconds); `None` before the first load.
    pub loaded_at: Option<i64>,
    /// Malformed lines in the last load, and the first few of them.
    pub malformed: u64,
    pub problems: Vec<BlocklistProblem>,
    /// Peer addresses refused since the start: connections, dials and addresses learnt.
    pub blocked: u64,
}
