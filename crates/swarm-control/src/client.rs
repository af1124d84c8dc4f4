//! A small blocking client: one Unix-socket connection, one call at a time, plus an iterator over
//! the event stream. Used by swarmctl, scripts written in Rust and the integration tests.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::methods::{
    names, AddPeersParams, AddPeersResult, AddResult, DaemonInfo, EncryptionParams,
    FilePriorityChange, LaggedParams, RemoveParams, SetFilePriorityParams, SetLabelsParams,
    SetLimitsParams, SetSuperSeedParams, SetTorrentLimitsParams, ShutdownParams, SubscribeResult,
    TorrentParams,
};
use crate::rpc::{Id, Incoming, Request, RpcError, MAX_RESPONSE_LINE};
use crate::{
    AddParams, BlocklistStatus, Event, FileInfo, Limits, PeerInfo, SessionStats, TorrentDetail,
    TorrentLimits, TorrentSummary, TrackerInfo,
};

/// How long a call waits for its answer by default. `torrent.verify` and friends answer as soon as
/// the work is queued, so a daemon silent for this long is stuck.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("swarmd is not running (no socket at {})", path.display())]
    NotRunning { path: PathBuf },
    #[error("swarmd is not running (no socket at {})", list_paths(tried))]
    NoSocket { tried: Vec<PathBuf> },
    #[error("swarmd is not running (stale socket at {}: connection refused)", path.display())]
    Refused { path: PathBuf },
    /// The socket (or a directory on the way to it) is closed to this user: the daemon may well
    /// be running. `group` is the group that would open it, when it can be told.
    #[error("permission denied on {} — {}", path.display(), group_hint(group.as_deref()))]
    SocketPermission {
        path: PathBuf,
        group: Option<String>,
    },
    #[error("I/O error on {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("no answer from swarmd on {} within {secs} s", path.display())]
    Timeout { path: PathBuf, secs: u64 },
    #[error("swarmd closed the connection on {}", path.display())]
    Closed { path: PathBuf },
    #[error("swarmd sent a line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("swarmd sent something that is not JSON-RPC: {0}")]
    Protocol(String),
    /// The daemon answered with an error.
    #[error("{0}")]
    Rpc(RpcError),
}

impl ClientError {
    /// The daemon's error code, when the daemon answered with an error.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            ClientError::Rpc(e) => Some(e.code),
            _ => None,
        }
    }

    /// True when there is no daemon to talk to at all.
    pub fn is_not_running(&self) -> bool {
        matches!(
            self,
            ClientError::NotRunning { .. }
                | ClientError::NoSocket { .. }
                | ClientError::Refused { .. }
        )
    }
}

/// A connection to swarmd.
pub struct Client {
    reader: LineReader<UnixStream>,
    writer: UnixStream,
    path: PathBuf,
    next_id: i64,
    timeout: Option<Duration>,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let path = path.as_ref().to_path_buf();
        let stream = UnixStream::connect(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ClientError::NotRunning { path: path.clone() },
            io::ErrorKind::ConnectionRefused => ClientError::Refused { path: path.clone() },
            io::ErrorKind::PermissionDenied => ClientError::SocketPermission {
                group: crate::paths::access_group(&path),
                path: path.clone(),
            },
            _ => ClientError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        let writer = stream.try_clone().map_err(|e| ClientError::Io {
            path: path.clone(),
            source: e,
        })?;
        let mut client = Client {
            reader: LineReader::new(stream),
            writer,
            path,
            next_id: 1,
            timeout: None,
        };
        client.set_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(client)
    }

    /// Connects to the daemon found the default way: `$SWARMD_SOCKET`, else the user daemon's
    /// socket, else the system daemon's (see [`crate::paths::client_socket_candidates`]). A
    /// socket this user may not look at is tried too, so that the error says "permission
    /// denied" rather than "not running".
    pub fn connect_default() -> Result<Client, ClientError> {
        use crate::paths::{choose_socket, client_socket_candidates, process_env, Probe};
        let tried = client_socket_candidates(&process_env);
        match choose_socket(&tried, Probe::of) {
            Some(path) => Self::connect(path),
            None => Err(ClientError::NoSocket { tried }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long to wait for each answer; `None` waits forever (the event stream does).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.timeout = timeout;
        self.reader
            .get_ref()
            .set_read_timeout(timeout)
            .map_err(|e| self.io(e))
    }

    fn io(&self, source: io::Error) -> ClientError {
        match source.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout {
                path: self.path.clone(),
                secs: self.timeout.map(|t| t.as_secs()).unwrap_or(0),
            },
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ClientError::Closed {
                path: self.path.clone(),
            },
            _ => ClientError::Io {
                path: self.path.clone(),
                source,
            },
        }
    }

    /// Calls `method` with `params` and returns the raw result. Notifications that arrive
    /// meanwhile (after `events.subscribe`) are dropped: use [`Client::subscribe`] for events.
    pub fn call_value(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, ClientError> {
        let raw = self.call_raw(method, params)?;
        serde_json::from_str(raw.get())
            .map_err(|e| ClientError::Protocol(format!("unexpected result of {method}: {e}")))
    }

    /// Calls `method` and returns its result as JSON text, as the daemon wrote it. Typed calls
    /// deserialize from this text directly: a `Value` tree in between costs more than the rest
    /// of `list` for a thousand torrents.
    pub fn call_raw(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Box<RawValue>, ClientError> {
        /// A response or a notification (which has `method`), read without building a tree.
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(default)]
            id: Option<Id>,
            #[serde(default, borrow)]
            method: Option<&'a RawValue>,
            #[serde(default, borrow)]
            result: Option<&'a RawValue>,
            #[serde(default)]
            error: Option<RpcError>,
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&Request::new(id, method, params))
            .map_err(|e| ClientError::Protocol(format!("cannot encode request: {e}")))?;
        line.push(b'\n');
        self.writer.write_all(&line).map_err(|e| self.io(e))?;
        loop {
            let line = self.read_line()?;
            let env: Envelope =
                serde_json::from_slice(&line).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if env.method.is_some() {
                // An event notification: not ours to answer.
                continue;
            }
            return match (env.id, env.error) {
                (Some(Id::Num(n)), None) if n == id => {
                    Ok(env.result.map(ToOwned::to_owned).unwrap_or_else(|| {
                        RawValue::from_string("null".into()).expect("null is JSON")
                    }))
                }
                (Some(Id::Num(n)), Some(e)) if n == id => Err(ClientError::Rpc(e)),
                // An error the server could not tie to a request (e.g. our line was too long).
                (None, Some(e)) => Err(ClientError::Rpc(e)),
                (None, None) => Err(ClientError::Protocol("response without id".into())),
                (Some(other), _) => Err(ClientError::Protocol(format!(
                    "answer to request {other:?}, expected {id}"
                ))),
            };
        }
    }

    /// Calls `method` with typed params and result.
    pub fn call<P: Serialize, R: DeserializeOwned>(
        &mut self,
        method: &str,
        params: &P,
    ) -> Result<R, ClientError> {
        let params =
            serde_json::to_value(params).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let params = if params.is_null() { None } else { Some(params) };
        let raw = self.call_raw(method, params)?;
        serde_json::from_str(raw.get())
            .map_err(|e| ClientError::Protocol(format!("unexpected result of {method}: {e}")))
    }

    fn read_line(&mut self) -> Result<Vec<u8>, ClientError> {
        self.reader
            .read_line(MAX_RESPONSE_LINE)
            .map_err(|e| match e {
                LineError::Io(e) => self.io(e),
                LineError::TooLong => ClientError::LineTooLong {
                    limit: MAX_RESPONSE_LINE,
                },
                LineError::Eof => ClientError::Closed {
                    path: self.path.clone(),
                },
            })
    }

    fn read_incoming(&mut self) -> Result<Incoming, ClientError> {
        let line = self.read_line()?;
        Incoming::from_slice(&line).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    pub fn daemon_info(&mut self) -> Result<DaemonInfo, ClientError> {
        self.call(names::DAEMON_INFO, &())
    }

    /// Asks the daemon to stop and returns as soon as it has agreed to.
    pub fn shutdown(&mut self) -> Result<(), ClientError> {
        self.call_value(names::DAEMON_SHUTDOWN, None).map(drop)
    }

    /// Asks the daemon to stop and returns once its process is gone: the answer comes after the
    /// daemon has stopped (peer port and state directory released), then the connection closes
    /// when the process exits. Fails with [`ClientError::Timeout`] after `timeout` in all.
    pub fn shutdown_and_wait(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let deadline = std::time::Instant::now() + timeout;
        self.set_timeout(Some(timeout))?;
        let params = ShutdownParams { wait: true };
        self.call::<_, Value>(names::DAEMON_SHUTDOWN, &params)?;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            // A zero timeout would mean "block forever" to the socket: keep at least 1 ms.
            self.reader
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .map_err(|e| self.io(e))?;
            match self.read_line() {
                Err(ClientError::Closed { .. }) => return Ok(()),
                Err(e) => return Err(e),
                // An event or a late line: not what we wait for.
                Ok(_) => continue,
            }
        }
    }

    pub fn stats(&mut self) -> Result<SessionStats, ClientError> {
        self.call(names::SESSION_STATS, &())
    }

    pub fn limits(&mut self) -> Result<Limits, ClientError> {
        self.call(names::SESSION_GET_LIMITS, &())
    }

    pub fn encryption(&mut self) -> Result<EncryptionParams, ClientError> {
        self.call(names::SESSION_GET_ENCRYPTION, &())
    }

    pub fn set_encryption(&mut self, policy: &str) -> Result<EncryptionParams, ClientError> {
        let params = EncryptionParams {
            encryption: policy.to_owned(),
        };
        self.call(names::SESSION_SET_ENCRYPTION, &params)
    }

    /// The queue's settings and the session's seeding limits.
    pub fn queue_settings(&mut self) -> Result<crate::QueueParams, ClientError> {
        self.call(names::SESSION_GET_QUEUE, &())
    }

    pub fn set_queue_settings(
        &mut self,
        params: &crate::QueueParams,
    ) -> Result<crate::QueueParams, ClientError> {
        self.call(names::SESSION_SET_QUEUE, params)
    }

    pub fn alt_speed(&mut self) -> Result<crate::AltSpeed, ClientError> {
        self.call(names::SESSION_GET_ALT_SPEED, &())
    }

    pub fn set_alt_speed(
        &mut self,
        params: &crate::SetAltSpeedParams,
    ) -> Result<crate::AltSpeed, ClientError> {
        self.call(names::SESSION_SET_ALT_SPEED, params)
    }

    pub fn blocklist(&mut self) -> Result<BlocklistStatus, ClientError> {
        self.call(names::BLOCKLIST_STATUS, &())
    }

    /// Reads the blocklist's files again (`update`: fetches its url first).
    pub fn reload_blocklist(&mut self, update: bool) -> Result<BlocklistStatus, ClientError> {
        let method = match update {
            true => names::BLOCKLIST_UPDATE,
            false => names::BLOCKLIST_RELOAD,
        };
        self.call(method, &())
    }

    pub fn set_limits(&mut self, params: SetLimitsParams) -> Result<Limits, ClientError> {
        self.call(names::SESSION_SET_LIMITS, &params)
    }

    pub fn add(&mut self, params: &AddParams) -> Result<AddResult, ClientError> {
        self.call(names::TORRENT_ADD, params)
    }

    pub fn list(&mut self) -> Result<Vec<TorrentSummary>, ClientError> {
        self.call(names::TORRENT_LIST, &())
    }

    pub fn show(&mut self, torrent: &str) -> Result<TorrentDetail, ClientError> {
        self.call(names::TORRENT_SHOW, &torrent_params(torrent))
    }

    /// `torrent.pause`, `.resume`, `.verify` or `.reannounce`: methods on one torrent with no result.
    pub fn torrent_action(&mut self, method: &str, torrent: &str) -> Result<(), ClientError> {
        self.call::<_, Value>(method, &torrent_params(torrent))
            .map(drop)
    }

    pub fn remove(&mut self, torrent: &str, delete_data: bool) -> Result<(), ClientError> {
        let params = RemoveParams {
            torrent: torrent.to_owned(),
            delete_data,
        };
        self.call::<_, Value>(names::TORRENT_REMOVE, &params)
            .map(drop)
    }

    pub fn set_super_seed(&mut self, torrent: &str, enabled: bool) -> Result<(), ClientError> {
        let params = SetSuperSeedParams {
            torrent: torrent.to_owned(),
            enabled,
        };
        self.call::<_, Value>(names::TORRENT_SET_SUPER_SEED, &params)
            .map(drop)
    }

    /// Changes a torrent's own limits (see [`SetTorrentLimitsParams`]; only the torrent set:
    /// reads them); returns them as they now are.
    pub fn set_torrent_limits(
        &mut self,
        params: &SetTorrentLimitsParams,
    ) -> Result<TorrentLimits, ClientError> {
        self.call(names::TORRENT_SET_LIMITS, params)
    }

    /// Replaces a torrent's labels; returns them as kept.
    pub fn set_labels(
        &mut self,
        torrent: &str,
        labels: Vec<String>,
    ) -> Result<Vec<String>, ClientError> {
        let params = SetLabelsParams {
            torrent: torrent.to_owned(),
            labels,
        };
        self.call(names::TORRENT_SET_LABELS, &params)
    }

    /// Hands peer addresses to a torrent, which dials them.
    pub fn add_peers(
        &mut self,
        torrent: &str,
        peers: Vec<String>,
    ) -> Result<AddPeersResult, ClientError> {
        let params = AddPeersParams {
            torrent: torrent.to_owned(),
            peers,
        };
        self.call(names::TORRENT_ADD_PEERS, &params)
    }

    pub fn files(&mut self, torrent: &str) -> Result<Vec<FileInfo>, ClientError> {
        self.call(names::TORRENT_FILES, &torrent_params(torrent))
    }

    pub fn set_file_priority(
        &mut self,
        torrent: &str,
        priorities: Vec<FilePriorityChange>,
    ) -> Result<Vec<FileInfo>, ClientError> {
        let params = SetFilePriorityParams {
            torrent: torrent.to_owned(),
            priorities,
        };
        self.call(names::TORRENT_SET_FILE_PRIORITY, &params)
    }

    pub fn peers(&mut self, torrent: &str) -> Result<Vec<PeerInfo>, ClientError> {
        self.call(names::TORRENT_PEERS, &torrent_params(torrent))
    }

    pub fn trackers(&mut self, torrent: &str) -> Result<Vec<TrackerInfo>, ClientError> {
        self.call(names::TORRENT_TRACKERS, &torrent_params(torrent))
    }

    /// Subscribes to events and turns the connection into an event stream that waits for events
    /// as long as it takes.
    pub fn subscribe(mut self) -> Result<EventStream, ClientError> {
        let r: SubscribeResult = self.call(names::EVENTS_SUBSCRIBE, &())?;
        if !r.subscribed {
            return Err(ClientError::Protocol(
                "the daemon refused the subscription".into(),
            ));
        }
        self.set_timeout(None)?;
        Ok(EventStream { client: self })
    }
}

fn group_hint(group: Option<&str>) -> String {
    match group {
        Some(g) => {
            format!("are you in group {g}? (ask the daemon's owner to add you, then log in again)")
        }
        None => "ask the daemon's owner for access to its socket".to_owned(),
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(" nor at ")
}

fn torrent_params(torrent: &str) -> TorrentParams {
    TorrentParams {
        torrent: torrent.to_owned(),
    }
}

/// What the event stream yields.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamItem {
    Event(Event),
    /// This client read too slowly and the daemon dropped `missed` events for it.
    Lagged {
        missed: u64,
    },
}

/// Events from `events.subscribe`, until the daemon closes the connection (then `None`).
pub struct EventStream {
    client: Client,
}

impl EventStream {
    /// The underlying client, e.g. to set a timeout for tests.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Iterator for EventStream {
    type Item = Result<StreamItem, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let incoming = match self.client.read_incoming() {
                Ok(i) => i,
                Err(ClientError::Closed { .. }) => return None,
                Err(e) => return Some(Err(e)),
            };
            let Incoming::Notification(n) = incoming else {
                continue;
            };
            let item = match n.method.as_str() {
                names::NOTIFY_EVENT => serde_json::from_value(n.params).map(StreamItem::Event),
                names::NOTIFY_LAGGED => serde_json::from_value::<LaggedParams>(n.params)
                    .map(|p| StreamItem::Lagged { missed: p.missed }),
                // Newer daemons may send notifications this client does not know: skip them.
                _ => continue,
            };
            return Some(item.map_err(|e| {
                ClientError::Protocol(format!("bad {} notification: {e}", n.method))
            }));
        }
    }
}

/// Why [`LineReader::read_line`] returned no line.
#[derive(Debug)]
pub enum LineError {
    Io(io::Error),
    TooLong,
    Eof,
}

/// `\n`-terminated lines read straight into one buffer, which becomes the line: a 280 KiB answer
/// (`list` of a thousand torrents) is not read through a `BufReader` and copied out.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// `buf[..scanned]` has no `\n`.
    scanned: usize,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            scanned: 0,
        }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads one line (without the `\n`) of at most `limit` bytes, never buffering more than
    /// `limit` bytes of it. A final line without `\n` at end of stream counts as a line.
    pub fn read_line(&mut self, limit: usize) -> Result<Vec<u8>, LineError> {
        const CHUNK: usize = 64 * 1024;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + i;
                if end > limit {
                    return Err(LineError::TooLong);
                }
                let rest = self.buf.split_off(end + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.truncate(end);
                self.scanned = 0;
                return Ok(line);
            }
            let len = self.buf.len();
            self.scanned = len;
            if len > limit {
                return Err(LineError::TooLong);
            }
            // Grow by doubling (at least a chunk), but never past the limit (plus the `\n`).
            let room = len.max(CHUNK).min(limit + 1 - len);
            self.buf.resize(len + room, 0);
            let read = self.inner.read(&mut self.buf[len..]);
            self.buf.truncate(len + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) if len == 0 => return Err(LineError::Eof),
                Ok(0) => {
                    self.scanned = 0;
                    return Ok(std::mem::take(&mut self.buf));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LineError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `n` bytes per read, like a socket delivering a line in pieces.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn capped_lines() {
        for step in [1, 4, 1000] {
            let mut r = LineReader::new(Trickle(b"ab\ncdefgh\n\nlast", step));
            assert_eq!(r.read_line(10).unwrap(), b"ab");
            assert_eq!(r.read_line(10).unwrap(), b"cdefgh");
            assert_eq!(r.read_line(10).unwrap(), b"");
            assert_eq!(r.read_line(10).unwrap(), b"last");
            assert!(matches!(r.read_line(10), Err(LineError::Eof)));
            let mut r = LineReader::new(Trickle(b"0123456789ab\n", step));
            assert!(matches!(r.read_line(10), Err(LineError::TooLong)));
            let mut r = LineReader::new(Trickle(b"0123456789\nx\n", step));
            assert_eq!(r.read_line(10).unwrap(), b"0123456789");
            assert_eq!(r.read_line(10).unwrap(), b"x");
        }
        // A long line over many reads: the buffer grows, nothing is lost or doubled.
        let long: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut input = long.clone();
        input.extend_from_slice(b"\nnext\n");
        let mut r = LineReader::new(Trickle(&input, 70_000));
        assert_eq!(r.read_line(1 << 20).unwrap(), long);
        assert_eq!(r.read_line(1 << 20).unwrap(), b"next");
    }

    #[test]
    fn connect_errors_name_the_path() {
        let dir = std::env::temp_dir().join(format!("swarm-control-test-{}", std::process::id()));
        let missing = dir.join("nope.sock");
        let err = Client::connect(&missing).err().unwrap();
        assert!(err.is_not_running());
        assert_eq!(
            err.to_string(),
            format!("swarmd is not running (no socket at {})", missing.display())
        );

        // A socket file nobody listens on: what a crashed daemon leaves behind.
        std::fs::create_dir_all(&dir).unwrap();
        let stale = dir.join("stale.sock");
        let _ = std::fs::remove_file(&stale);
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let err = Client::connect(&stale).err().unwrap();
        assert!(err.is_not_running(), "{err}");
        assert!(err.to_string().contains("stale socket"));

        let err = ClientError::NoSocket {
            tried: vec!["/a.sock".into(), "/b.sock".into()],
        };
        assert!(err.is_not_running());
        assert_eq!(
            err.to_string(),
            "swarmd is not running (no socket at /a.sock nor at /b.sock)"
        );
        let err = ClientError::SocketPermission {
            path: "/run/swarmd/swarmd.sock".into(),
            group: Some("swarmd".into()),
        };
        assert!(!err.is_not_running());
        assert!(
            err.to_string().starts_with(
                "permission denied on /run/swarmd/swarmd.sock — are you in group swarmd?"
            ),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
