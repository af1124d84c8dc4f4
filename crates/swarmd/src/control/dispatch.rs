//! One request line in, one response out: JSON-RPC validation and params decoding (through
//! `request.rs`), the permission check, torrent-prefix resolution and the call into the [`Engine`].
//!
//! Nothing here touches the socket; `connection.rs` owns that and carries out the [`Action`] a
//! reply asks for (start streaming events, stop the daemon once the answer is written).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use swarm_control::methods::names;
use swarm_control::rpc::{codes, Id, Request, RpcError, JSONRPC_VERSION};
use swarm_control::{
    AddParams, AddPeersParams, AddPeersResult, DaemonInfo, EncryptionParams, MoveStorageParams,
    QueueMove, QueueMoveParams, QueueParams, QueuePositionResult, RemoveParams,
    SetFilePriorityParams, SetLabelsParams, SetLimitsParams, SetQueuePositionParams,
    SetSeedLimitsParams, SetSuperSeedParams, SetTorrentLimitsParams, ShutdownParams,
    SubscribeResult, TorrentParams, TorrentRef, TorrentSource, MIN_PREFIX_LEN,
};
use swarm_wire::InfoHash;

use crate::engine::{AddTorrent, Engine, EngineError};
use crate::intake;
use crate::runtime_settings::SettingsFile;

use super::request::{check_add_params, decode, no_params};

/// Who may change state: the daemon's own uid, root, and the uids of `[control] allow`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    pub owner_uid: u32,
    pub extra_uids: Vec<u32>,
}

impl AccessPolicy {
    pub fn may_change_state(&self, uid: u32) -> bool {
        self.is_owner_or_root(uid) || self.extra_uids.contains(&uid)
    }

    /// The daemon's own uid and root: they may use the connection slots kept in reserve.
    pub fn is_owner_or_root(&self, uid: u32) -> bool {
        uid == 0 || uid == self.owner_uid
    }
}

/// The config file in use: the one loaded at start, or the one a SIGHUP loaded since.
pub type ConfigFileCell = Arc<std::sync::RwLock<Option<PathBuf>>>;

/// The parts of `daemon.info` that do not change while the daemon runs (and the config file,
/// which only a reload changes).
#[derive(Clone, Debug)]
pub struct StaticInfo {
    pub mode: String,
    pub config_file: ConfigFileCell,
    pub state_dir: PathBuf,
    pub download_dir: PathBuf,
    pub watch_dir: Option<PathBuf>,
    pub socket: PathBuf,
    pub started_at: SystemTime,
    pub started: Instant,
}

impl StaticInfo {
    fn snapshot(&self, settings: &SettingsFile) -> DaemonInfo {
        let show = |p: &PathBuf| p.display().to_string();
        DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uid: swarm_control::paths::current_uid(),
            mode: self.mode.clone(),
            config_file: self
                .config_file
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(show),
            state_dir: show(&self.state_dir),
            download_dir: show(&self.download_dir),
            watch_dir: self.watch_dir.as_ref().map(show),
            socket: show(&self.socket),
            started_at: self
                .started_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            uptime_secs: self.started.elapsed().as_secs(),
            runtime_limits_file: settings
                .limits()
                .map(|_| settings.path().display().to_string()),
        }
    }
}

/// The calling process, from the socket's peer credentials.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// `None` when the kernel did not tell (then the caller may only read).
    pub uid: Option<u32>,
}

/// What the connection does after writing the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Subscribe,
    /// `wait`: answer only once the daemon has stopped (see `stop.rs`).
    StopDaemon {
        wait: bool,
    },
}

pub struct Reply {
    /// `None` for JSON-RPC notifications (requests without id).
    pub response: Option<Answer>,
    pub action: Action,
}

/// A response as the server writes it. The result is JSON text already, serialized once
/// straight from the engine's types (a `serde_json::Value` tree in between cost more than the
/// engine's work for `torrent.list` of a thousand torrents), or joined from JSON the engine
/// keeps (the list). Clients read it as a [`swarm_control::rpc::Response`].
#[derive(Debug)]
pub struct Answer {
    id: Option<Id>,
    body: Outcome,
}

impl Answer {
    pub fn ok(id: Option<Id>, result: String) -> Self {
        Answer {
            id,
            body: Ok(result),
        }
    }

    pub fn err(id: Option<Id>, error: RpcError) -> Self {
        Answer {
            id,
            body: Err(error),
        }
    }

    /// The response line, `\n` included, written into a buffer of its size at once (a list of
    /// a thousand torrents is ~280 KiB, which a growing buffer copied a dozen times).
    pub fn encode(&self) -> Vec<u8> {
        let result_len = self.body.as_ref().map_or(0, String::len);
        let mut out = Vec::with_capacity(result_len + 128);
        out.extend_from_slice(br#"{"jsonrpc":""#);
        out.extend_from_slice(JSONRPC_VERSION.as_bytes());
        out.extend_from_slice(br#"","id":"#);
        let mut encoded = serde_json::to_writer(&mut out, &self.id);
        match &self.body {
            Ok(json) => {
                out.extend_from_slice(br#","result":"#);
                out.extend_from_slice(json.as_bytes());
            }
            Err(e) => {
                out.extend_from_slice(br#","error":"#);
                encoded = encoded.and_then(|()| serde_json::to_writer(&mut out, e));
            }
        }
        if encoded.is_err() {
            out.clear();
            out.extend_from_slice(CANNOT_ENCODE);
        } else {
            out.push(b'}');
        }
        out.push(b'\n');
        out
    }
}

/// Keeps alternative speed settings changed at run time (over the socket or the HTTP RPC)
/// across restarts; a failure to write is logged, the settings apply until swarmd stops.
pub fn record_alt_speed(settings: &SettingsFile, now: swarm_control::AltSpeed) {
    match settings.set_alt_speed(Some(now)) {
        Ok(()) => tracing::info!(
            on = now.enabled, download = ?now.download, upload = ?now.upload,
            schedule = now.schedule.enabled, file = %settings.path().display(),
            "alternative speed settings set at run time; kept across restarts"
        ),
        Err(err) => tracing::error!("{err}; the new settings apply until swarmd stops"),
    }
}

/// Keeps the queue and seeding settings changed at run time (over the socket or the HTTP RPC)
/// across restarts; a failure to write is logged, the settings apply until swarmd stops.
pub fn record_queue(
    settings: &SettingsFile,
    now: (swarm_control::QueueConfig, swarm_control::SeedingConfig),
) {
    match settings.set_queue(Some(now)) {
        Ok(()) => tracing::info!(
            queue = ?now.0, seeding = ?now.1, file = %settings.path().display(),
            "queue and seeding limits set at run time; kept across restarts"
        ),
        Err(err) => tracing::error!("{err}; the new settings apply until swarmd stops"),
    }
}

/// The response written when a response cannot be encoded (never expected).
pub const CANNOT_ENCODE: &[u8] =
    br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error: cannot encode"}}"#;

/// A method's result, as JSON text (serde_json's own output, so written out unchecked).
type Outcome = Result<String, RpcError>;

pub struct Dispatcher<E> {
    pub engine: E,
    pub info: StaticInfo,
    pub access: AccessPolicy,
    /// Where `session.set_limits` is kept across restarts.
    pub settings: Arc<SettingsFile>,
}

impl<E: Engine> Dispatcher<E> {
    pub async fn handle_line(&self, caller: Caller, line: &[u8]) -> Reply {
        let request = match Request::from_line(line) {
            Ok(r) => r,
            Err((id, error)) => {
                return Reply {
                    response: Some(Answer::err(id, error)),
                    action: Action::None,
                }
            }
        };
        let method = request.method.as_str();
        let wait = request
            .params
            .as_ref()
            .and_then(|p| p.get("wait"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let outcome = self.checked_call(caller, method, request.params).await;
        let action = match (&outcome, method) {
            (Ok(_), names::EVENTS_SUBSCRIBE) => Action::Subscribe,
            (Ok(_), names::DAEMON_SHUTDOWN) => Action::StopDaemon { wait },
            _ => Action::None,
        };
        if let Err(e) = &outcome {
            tracing::debug!(method, code = e.code, error = %e.message, "control request failed");
        }
        let response = request.id.map(|id| match outcome {
            Ok(v) => Answer::ok(Some(id), v),
            Err(e) => Answer::err(Some(id), e),
        });
        Reply { response, action }
    }

    async fn checked_call(&self, caller: Caller, method: &str, params: Option<Value>) -> Outcome {
        if !names::ALL.contains(&method) {
            return Err(RpcError::method_not_found(method));
        }
        if names::changes_state(method)
            && !caller.uid.is_some_and(|u| self.access.may_change_state(u))
        {
            return Err(self.permission_denied(caller, method));
        }
        self.call(method, params).await
    }

    fn permission_denied(&self, caller: Caller, method: &str) -> RpcError {
        let who = caller
            .uid
            .map(|u| format!("uid {u}"))
            .unwrap_or_else(|| "a caller of unknown uid".into());
        RpcError::new(
            codes::PERMISSION_DENIED,
            format!(
                "permission denied: {who} may read swarmd's state but not call {method} \
                 (allowed: uid {}, root and the users of [control] allow)",
                self.access.owner_uid
            ),
        )
    }

    async fn call(&self, method: &str, params: Option<Value>) -> Outcome {
        let e = &self.engine;
        match method {
            names::DAEMON_INFO => {
                no_params(method, params)?;
                to_json(Ok(self.info.snapshot(&self.settings)))
            }
            names::DAEMON_SHUTDOWN => {
                let _: ShutdownParams = decode(method, params)?;
                to_json(Ok(()))
            }
            names::SESSION_STATS => {
                no_params(method, params)?;
                to_json(e.stats().await)
            }
            names::SESSION_GET_LIMITS => {
                no_params(method, params)?;
                to_json(e.limits().await)
            }
            names::SESSION_SET_LIMITS => self.set_limits(decode(method, params)?).await,
            names::SESSION_GET_ALT_SPEED => to_json(self.engine.alt_speed().await),
            names::SESSION_SET_ALT_SPEED => self.set_alt_speed(decode(method, params)?).await,
            names::SESSION_GET_ENCRYPTION => {
                no_params(method, params)?;
                encryption_result(e.encryption().await)
            }
            names::SESSION_SET_ENCRYPTION => {
                let p: EncryptionParams = decode(method, params)?;
                let policy = p
                    .encryption
                    .parse()
                    .map_err(|e| RpcError::invalid_params(method, e))?;
                let now = e.set_encryption(policy).await;
                if let Ok(p) = &now {
                    tracing::info!(policy = %p, "encryption policy set at run time (until swarmd restarts)");
                }
                encryption_result(now)
            }
            names::BLOCKLIST_STATUS => {
                no_params(method, params)?;
                to_json(e.blocklist().await)
            }
            names::BLOCKLIST_RELOAD => {
                no_params(method, params)?;
                to_json(e.reload_blocklist(None).await)
            }
            names::BLOCKLIST_UPDATE => {
                no_params(method, params)?;
                to_json(e.update_blocklist().await)
            }
            names::TORRENT_ADD => {
                check_add_params(params.as_ref())?;
                self.add(decode(method, params)?).await
            }
            names::TORRENT_LIST => {
                no_params(method, params)?;
                Ok(e.list_json().await?)
            }
            names::TORRENT_REMOVE => {
                let p: RemoveParams = decode(method, params)?;
                let id = self.resolve(&p.torrent).await?;
                to_json(e.remove(id, p.delete_data).await)
            }
            names::SESSION_GET_QUEUE => {
                no_params(method, params)?;
                queue_result(e.queue_config().await)
            }
            names::SESSION_SET_QUEUE => {
                let p: QueueParams = decode(method, params)?;
                p.check().map_err(|e| RpcError::invalid_params(method, e))?;
                let (queue, seeding) = e.queue_config().await?;
                let now = e
                    .set_queue_config(p.queue.unwrap_or(queue), p.seeding.unwrap_or(seeding))
                    .await;
                if let Ok(now) = &now {
                    record_queue(&self.settings, *now);
                }
                queue_result(now)
            }
            names::TORRENT_QUEUE_MOVE => {
                let p: QueueMoveParams = decode(method, params)?;
                let id = self.resolve(&p.torrent).await?;
                position_result(e.queue_move(id, p.to.into()).await)
            }
            names::TORRENT_SET_QUEUE_POSITION => {
                let p: SetQueuePositionParams = decode(method, params)?;
                let id = self.resolve(&p.torrent).await?;
                position_result(e.queue_move(id, QueueMove::To(p.position)).await)
            }
            names::TORRENT_SET_SEED_LIMITS => {
                let p: SetSeedLimitsParams = decode(method, params)?;
                let id = self.resolve(&p.torrent).await?;
                let current = e.show(id).await?.seed_limits;
                let limits = p
                    .apply_to(current)
                    .map_err(|e| RpcError::invalid_params(method, e))?;
                e.set_seed_limits(id, limits).await?;
                to_json(Ok(limits))
            }
            names::TORRENT_SET_SUPER_SEED => {
                let p: SetSuperSeedParams = decode(method, params)?;
                let id = self.resolve(&p.torrent).await?;
                to_json(e.set_super_seed(id, p.enabled).await)
            }
            names::TORRENT_SET_FILE_PRIORITY => {
                let p: SetFilePriorityParams = decode(method, params)?;
                let id = self.resolve(&p.torrent).await?;
                to_json(e.set_file_priority(id, p.priorities).await)
            }
            names::TORRENT_SET_LIMITS => {
                let p: SetTorrentLimitsParams = decode(method, params)?;
                p.check().map_err(|e| RpcError::invalid_params(method, e))?;
                let id = self.resolve(&p.torrent).await?;
                let current = e.show(id).await?.limits;
                if p.is_query() {
                    return to_json(Ok(current));
                }
                to_json(e.set_torrent_limits(id, p.apply_to(current)).await)
            }
            names::TORRENT_SET_LABELS => {
                let p: SetLabelsParams = decode(method, params)?;
                let labels = swarm_model::normalize_labels(&p.labels)
                    .map_err(|e| RpcError::invalid_params(method, e))?;
                let id = self.resolve(&p.torrent).await?;
                e.set_labels(id, labels.clone()).await?;
                to_json(Ok(labels))
            }
            names::TORRENT_MOVE_STORAGE => {
                let p: MoveStorageParams = decode(method, params)?;
                let id = self.resolve(&p.torrent).await?;
                e.move_storage(id, p.dir.clone(), p.move_data).await?;
                to_json(Ok(p.dir))
            }
            names::TORRENT_ADD_PEERS => {
                let p: AddPeersParams = decode(method, params)?;
                let addrs = swarm_control::parse_peer_addrs(&p.peers)
                    .map_err(|e| RpcError::invalid_params(method, e))?;
                let id = self.resolve(&p.torrent).await?;
                let peers = addrs.iter().map(ToString::to_string).collect();
                e.add_peers(id, addrs).await?;
                to_json(Ok(AddPeersResult { peers }))
            }
            names::EVENTS_SUBSCRIBE => {
                no_params(method, params)?;
                to_json(Ok(SubscribeResult { subscribed: true }))
            }
            _ => {
                let p: TorrentParams = decode(method, params)?;
                let id = self.resolve(&p.torrent).await?;
                self.on_torrent(method, id).await
            }
        }
    }

    /// The methods whose only param is the torrent.
    async fn on_torrent(&self, method: &str, id: InfoHash) -> Outcome {
        let e = &self.engine;
        match method {
            names::TORRENT_SHOW => to_json(e.show(id).await),
            names::TORRENT_PAUSE => to_json(e.pause(id).await),
            names::TORRENT_RESUME => to_json(e.resume(id).await),
            names::TORRENT_FORCE_START => to_json(e.force_start(id).await),
            names::TORRENT_VERIFY => to_json(e.verify(id).await),
            names::TORRENT_REANNOUNCE => to_json(e.reannounce(id).await),
            names::TORRENT_FILES => to_json(e.files(id).await),
            names::TORRENT_PEERS => to_json(e.peers(id).await),
            names::TORRENT_TRACKERS => to_json(e.trackers(id).await),
            _ => Err(RpcError::method_not_found(method)),
        }
    }

    /// Applies the limits, then records them in the state directory so a restart keeps them.
    async fn set_limits(&self, p: SetLimitsParams) -> Outcome {
        p.check()
            .map_err(|e| RpcError::invalid_params(names::SESSION_SET_LIMITS, e))?;
        let e = &self.engine;
        let current = e.limits().await?;
        let now = e.set_limits(p.apply_to(current)).await?;
        match self.settings.set_limits(Some(now)) {
            Ok(()) => tracing::info!(
                download = ?now.download, upload = ?now.upload, file = %self.settings.path().display(),
                "rate limits set at run time; kept across restarts"
            ),
            Err(err) => tracing::error!("{err}; the new limits apply until swarmd stops"),
        }
        to_json(Ok(now))
    }

    /// Applies the alternative speed settings, then records them so a restart keeps them.
    async fn set_alt_speed(&self, p: swarm_control::SetAltSpeedParams) -> Outcome {
        let current = self.engine.alt_speed().await?;
        let new = p
            .apply_to(current)
            .map_err(|e| RpcError::invalid_params(names::SESSION_SET_ALT_SPEED, e))?;
        let now = self.engine.set_alt_speed(new).await?;
        record_alt_speed(&self.settings, now);
        to_json(Ok(now))
    }

    async fn add(&self, p: AddParams) -> Outcome {
        let method = names::TORRENT_ADD;
        let torrent = match p.source {
            TorrentSource::Path(path) => {
                let path = PathBuf::from(path);
                if !path.is_absolute() {
                    return Err(RpcError::invalid_params(
                        method,
                        format!("{} is not an absolute path", path.display()),
                    ));
                }
                let bytes = intake::read_capped(&path)
                    .await
                    .map_err(|e| RpcError::invalid_params(method, e))?;
                intake::parse_metainfo(&bytes)
                    .map_err(|e| invalid_torrent(&format!("{}: {e}", path.display())))?
            }
            TorrentSource::Metainfo(b64) => {
                let bytes = swarm_control::decode_metainfo_base64(&b64).map_err(|e| {
                    RpcError::invalid_params(method, format!("metainfo is not valid base64: {e}"))
                })?;
                intake::parse_metainfo(&bytes).map_err(|e| invalid_torrent(&e))?
            }
            TorrentSource::Magnet(uri) => intake::parse_magnet(&uri)
                .map_err(|e| invalid_torrent(&format!("magnet link: {e}")))?,
        };
        let save_dir = p.save_dir.map(PathBuf::from);
        if let Some(dir) = save_dir.as_ref().filter(|d| !d.is_absolute()) {
            return Err(RpcError::invalid_params(
                method,
                format!("save_dir {} is not an absolute path", dir.display()),
            ));
        }
        let labels = swarm_model::normalize_labels(&p.labels)
            .map_err(|e| RpcError::invalid_params(method, e))?;
        to_json(
            self.engine
                .add(AddTorrent {
                    torrent,
                    save_dir,
                    paused: p.paused,
                    labels,
                })
                .await,
        )
    }

    /// A selector (an info-hash, a unique prefix of one, or a torrent's name: see
    /// [`TorrentRef`]) to the torrent's info-hash. The one place selectors are resolved.
    async fn resolve(&self, torrent: &str) -> Result<InfoHash, RpcError> {
        let r = TorrentRef::parse(torrent).map_err(|e| RpcError::new(codes::INVALID_PARAMS, e))?;
        if let TorrentRef::Exact(ih) = r {
            return Ok(ih);
        }
        let names = self.engine.names().await?;
        let mut matches: Vec<_> = names
            .iter()
            .filter(|(ih, name)| r.matches(ih, name))
            .collect();
        matches.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        match matches.as_slice() {
            [] => Err(RpcError::new(
                codes::TORRENT_NOT_FOUND,
                format!(
                    "no torrent matches {}: give its info-hash, {MIN_PREFIX_LEN} or more hex \
                     digits of it, or its exact name",
                    torrent.trim()
                ),
            )),
            [(ih, _)] => Ok(*ih),
            many => Err(ambiguous(torrent.trim(), many)),
        }
    }
}

/// The error for a selector that matches several torrents: the message lists them (the first
/// few, for people), `data.matches` all of them (for scripts).
fn ambiguous(selector: &str, many: &[&(InfoHash, String)]) -> RpcError {
    const SHOWN: usize = 10;
    let mut listed: Vec<String> = many
        .iter()
        .take(SHOWN)
        .map(|(ih, name)| format!("{} {name}", &ih.to_hex()[..12]))
        .collect();
    if many.len() > SHOWN {
        listed.push(format!("and {} more", many.len() - SHOWN));
    }
    let list: Vec<Value> = many
        .iter()
        .map(|(ih, name)| json!({"info_hash": ih, "name": name}))
        .collect();
    RpcError::new(
        codes::AMBIGUOUS_TORRENT,
        format!(
            "{selector} matches {} torrents ({}); give more digits of the info-hash",
            many.len(),
            listed.join(", ")
        ),
    )
    .with_data(json!({ "matches": list }))
}

/// The queue methods' result: both settings objects.
fn queue_result(
    r: Result<(swarm_control::QueueConfig, swarm_control::SeedingConfig), EngineError>,
) -> Outcome {
    to_json(r.map(|(queue, seeding)| QueueParams {
        queue: Some(queue),
        seeding: Some(seeding),
    }))
}

/// A queue move's result: the torrent's place after it.
fn position_result(r: Result<u32, EngineError>) -> Outcome {
    to_json(r.map(|queue_position| QueuePositionResult { queue_position }))
}

fn encryption_result(r: Result<swarm_wire::mse::Policy, EngineError>) -> Outcome {
    to_json(r.map(|p| EncryptionParams {
        encryption: p.to_string(),
    }))
}

fn to_json<T: Serialize>(r: Result<T, EngineError>) -> Outcome {
    let v = r?;
    serde_json::to_string(&v).map_err(RpcError::internal)
}

fn invalid_torrent(detail: &str) -> RpcError {
    RpcError::new(codes::INVALID_TORRENT, format!("invalid torrent: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_policy() {
        let p = AccessPolicy {
            owner_uid: 1000,
            extra_uids: vec![1001],
        };
        assert!(p.may_change_state(0) && p.may_change_state(1000) && p.may_change_state(1001));
        assert!(!p.may_change_state(1002));
    }
}
