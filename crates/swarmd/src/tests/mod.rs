//! Tests of the daemon's faces against the in-memory engine, over real Unix sockets.

mod control_errors;
mod control_events;
mod control_methods;
mod daemon_run;
mod unit_file;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::control::{
    AccessPolicy, ConnectionLimits, ControlOptions, ControlServer, StaticInfo, StopRequest,
};
use crate::fake_engine::FakeEngine;
use crate::runtime_settings::SettingsFile;

pub const HASH_A: &str = "aaaaaa0000000000000000000000000000000001";
pub const HASH_B: &str = "aaaaaa0000000000000000000000000000000002";
pub const HASH_C: &str = "cccccc0000000000000000000000000000000003";

/// A valid single-file `.torrent` (one piece per 16 KiB, hashes made up).
pub fn torrent_bytes(name: &str, length: u64) -> Vec<u8> {
    let pieces = length.div_ceil(16384).max(1) as usize;
    let mut out = Vec::new();
    let announce = "http://tracker.example/announce";
    out.extend_from_slice(format!("d8:announce{}:{announce}4:infod", announce.len()).as_bytes());
    out.extend_from_slice(format!("6:lengthi{length}e4:name{}:{name}", name.len()).as_bytes());
    out.extend_from_slice(format!("12:piece lengthi16384e6:pieces{}:", pieces * 20).as_bytes());
    out.extend(vec![0xabu8; pieces * 20]);
    out.extend_from_slice(b"ee");
    out
}

/// A test's info-hash (40 hex digits) as the engine names torrents.
pub fn ih(hex: &str) -> swarm_model::InfoHash {
    swarm_model::InfoHash::from_hex(hex).expect("a test's info-hash is 40 hex digits")
}

pub fn info_hash_of(torrent: &[u8]) -> String {
    swarm_wire::Metainfo::from_bytes(torrent)
        .expect("test torrent parses")
        .info_hash
        .to_hex()
}

pub fn static_info(socket: &Path) -> StaticInfo {
    StaticInfo {
        mode: "user".into(),
        config_file: Default::default(),
        state_dir: "/state".into(),
        download_dir: "/downloads".into(),
        watch_dir: None,
        socket: socket.to_path_buf(),
        started_at: std::time::SystemTime::now(),
        started: std::time::Instant::now(),
    }
}

/// The run-time settings file of a state directory at `dir`.
pub fn settings_in(dir: &Path) -> std::sync::Arc<SettingsFile> {
    std::sync::Arc::new(SettingsFile::open(dir).0)
}

pub fn options() -> ControlOptions {
    ControlOptions {
        socket_mode: 0o660,
        socket_gid: None,
        max_clients: 64,
        limits: ConnectionLimits {
            max_request_bytes: 1 << 20,
            write_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        },
        access: AccessPolicy {
            owner_uid: swarm_control::paths::current_uid(),
            extra_uids: vec![],
        },
    }
}

pub struct TestServer {
    pub _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub engine: FakeEngine,
    pub cancel: CancellationToken,
    pub stop: StopRequest,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(engine: FakeEngine, options: ControlOptions) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarmd.sock");
        let settings = settings_in(dir.path());
        let server =
            ControlServer::bind(&path, options, engine.clone(), static_info(&path), settings)
                .unwrap();
        let (cancel, stop) = (CancellationToken::new(), StopRequest::new());
        let task = tokio::spawn(server.run(cancel.clone(), stop.clone()));
        TestServer {
            _dir: dir,
            path,
            engine,
            cancel,
            stop,
            task,
        }
    }

    pub async fn default() -> TestServer {
        let engine = FakeEngine::new();
        engine.insert(HASH_A, "alpha");
        engine.insert(HASH_B, "beta");
        engine.insert(HASH_C, "gamma");
        Self::start(engine, options()).await
    }

    pub async fn conn(&self) -> Conn {
        Conn::connect(&self.path).await
    }
}

/// A raw line-level client.
pub struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: i64,
}

impl Conn {
    pub async fn connect(path: &Path) -> Conn {
        let (r, w) = UnixStream::connect(path).await.unwrap().into_split();
        Conn {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// Shuts down our write side, as `echo … | socat` does after its input, and keeps reading.
    pub async fn half_close(&mut self) {
        self.writer.shutdown().await.unwrap();
    }

    /// The next line, parsed; panics after 5 s of silence.
    pub async fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(5), self.reader.read_line(&mut line))
            .await
            .expect("no answer within 5 s")
            .unwrap();
        assert!(n > 0, "connection closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    }

    /// True when the server closed the connection (within 5 s).
    pub async fn closed(&mut self) -> bool {
        let mut line = String::new();
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.reader.read_line(&mut line)).await,
            Ok(Ok(0))
        )
    }

    /// Calls `method` and returns the whole response (checked to carry our id).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if !params.is_null() {
            req["params"] = params;
        }
        let mut line = serde_json::to_vec(&req).unwrap();
        line.push(b'\n');
        self.send(&line).await;
        loop {
            let v = self.recv().await;
            if v.get("method").is_some() {
                continue; // a notification
            }
            assert_eq!(v["id"], json!(id), "{v}");
            return v;
        }
    }

    /// `call` that must succeed; returns the result.
    pub async fn ok(&mut self, method: &str, params: Value) -> Value {
        let v = self.call(method, params).await;
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"].clone()
    }

    /// `call` that must fail; returns (code, message).
    pub async fn err(&mut self, method: &str, params: Value) -> (i64, String) {
        let v = self.call(method, params).await;
        let e = v
            .get("error")
            .unwrap_or_else(|| panic!("{method} succeeded: {v}"));
        (
            e["code"].as_i64().unwrap(),
            e["message"].as_str().unwrap().to_owned(),
        )
    }
}
