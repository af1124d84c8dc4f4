//! One transmission RPC call in, its `arguments` out: the method table and the `session-*`,
//! `free-space`, `port-test` and `blocklist-update` methods (`torrents.rs` has the `torrent-*`
//! ones). No HTTP here: `mod.rs` owns the transport and the protocol envelope.

use std::path::Path;
use std::sync::Mutex;
use swarm_wire::mse::Policy;

use serde_json::{json, Map, Value};
use swarm_control::{Limits, TorrentState};

use super::ids::Ids;
use super::rpc::{
    engine_failure, json_map, truthy, version, Args, Code, Failure, Rpc, SessionInfo, RPC_VERSION,
    RPC_VERSION_MINIMUM, SPEED_UNIT,
};
use super::torrents::location_arg;
use crate::engine::Engine;

impl<E: Engine> Rpc<E> {
    pub fn new(
        engine: E,
        info: SessionInfo,
        session_id: String,
        stop_daemon: crate::control::StopRequest,
    ) -> Self {
        Rpc {
            engine,
            ids: Mutex::new(Ids::default()),
            info,
            session_id,
            stop_daemon,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub async fn call(&self, method: &str, args: &Args) -> Result<Map<String, Value>, Failure> {
        match method {
            "session-get" => self.session_get(args).await,
            "session-set" => self.session_set(args).await,
            "session-stats" => self.session_stats().await,
            "session-close" => {
                tracing::info!("session-close over the HTTP RPC: stopping");
                self.stop_daemon.request();
                Ok(Map::new())
            }
            "torrent-get" => self.torrent_get(args).await,
            "torrent-add" => self.torrent_add(args).await,
            "torrent-set" => self.torrent_set(args).await,
            "torrent-remove" | "torrent-start" | "torrent-start-now" | "torrent-stop"
            | "torrent-verify" | "torrent-reannounce" => self.torrent_action(method, args).await,
            "free-space" => free_space(args),
            "port-test" => Err(Failure::unsupported(
                "port-test: swarmd does not ask an outside service whether its peer port is \
                 reachable; check it from another machine",
            )),
            "blocklist-update" => self.blocklist_update().await,
            "torrent-set-location" => {
                let location = location_arg("torrent-set-location", args)?
                    .ok_or_else(|| Failure::new("torrent-set-location: location is missing"))?;
                let move_data = args.get("move").is_some_and(truthy);
                self.set_location("torrent-set-location", args, location, move_data)
                    .await
            }
            "torrent-rename-path" => Err(Failure::unsupported(
                "torrent-rename-path: swarmd cannot rename a torrent's files yet",
            )),
            m if m.starts_with("queue-move-") => self.queue_move(m, args).await,
            "group-get" => Ok(json_map(json!({"group": []}))),
            "group-set" => Err(Failure::unsupported(
                "group-set: swarmd has no bandwidth groups",
            )),
            other => Err(Failure::coded(
                Code::MethodNotFound,
                format!("method name not recognized: {other:?}"),
            )),
        }
    }

    async fn session_values(&self) -> Result<Map<String, Value>, Failure> {
        let stats = self.engine.stats().await.map_err(engine_failure)?;
        let encryption = self.engine.encryption().await.map_err(engine_failure)?;
        // The normal limits: with the alternative ones on, `stats` has those instead.
        let l = self.engine.limits().await.map_err(engine_failure)?;
        let alt = self.engine.alt_speed().await.map_err(engine_failure)?;
        let blocklist = self.engine.blocklist().await.map_err(engine_failure)?;
        let kb = |b: Option<u64>| b.map_or(0, |b| b / SPEED_UNIT);
        let dir = self.info.download_dir.display().to_string();
        let free = statvfs(&self.info.download_dir).map_or(-1, |(free, _)| free as i64);
        let mut v = super::alt_speed::session_values(&alt);
        v.extend(json_map(json!({
            "blocklist-enabled": blocklist.enabled,
            "blocklist-size": blocklist.rules, "blocklist-url": blocklist.url.unwrap_or_default(),
            "cache-size-mb": 0, "config-dir": self.info.config_dir.display().to_string(),
            "default-trackers": "", "dht-enabled": self.info.dht_enabled,
        })));
        v.extend(json_map(json!({
            "download-dir": dir, "download-dir-free-space": free,
            "encryption": transmission_encryption(encryption),
            "incomplete-dir": self.info.incomplete_dir.as_ref()
                .map_or_else(String::new, |d| d.display().to_string()),
            "incomplete-dir-enabled": self.info.incomplete_dir.is_some(), "lpd-enabled": false,
            "peer-limit-global": self.info.peer_limit_global,
            "peer-limit-per-torrent": self.info.peer_limit, "peer-port": stats.listen_port,
            "peer-port-random-on-start": false, "pex-enabled": true,
            "port-forwarding-enabled": false, "rename-partial-files": false,
        })));
        v.extend(json_map(json!({
            "rpc-version": RPC_VERSION, "rpc-version-minimum": RPC_VERSION_MINIMUM,
            "rpc-version-semver": "5.3.0", "script-torrent-added-enabled": false,
            "script-torrent-added-filename": "", "script-torrent-done-enabled": false,
            "script-torrent-done-filename": "", "script-torrent-done-seeding-enabled": false,
            "script-torrent-done-seeding-filename": "",
            "session-id": self.session_id,
            "speed-limit-down": kb(l.download), "speed-limit-down-enabled": l.download.is_some(),
            "speed-limit-up": kb(l.upload), "speed-limit-up-enabled": l.upload.is_some(),
            "start-added-torrents": true, "tcp-enabled": self.info.tcp_enabled, "trash-original-torrent-files": false,
            "units": {
                "memory-bytes": 1024, "memory-units": ["KiB", "MiB", "GiB", "TiB"],
                "size-bytes": 1000, "size-units": ["kB", "MB", "GB", "TB"],
                "speed-bytes": SPEED_UNIT, "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"],
            },
            "utp-enabled": self.info.utp_enabled, "version": version(),
        })));
        let (queue, seeding) = self.engine.queue_config().await.map_err(engine_failure)?;
        v.extend(super::queue::session_values(&queue, &seeding));
        Ok(v)
    }

    /// transmission fetches its `blocklist-url`; swarmd does when `[blocklist] url` is set, and
    /// otherwise reads the files of `[blocklist] paths` again. Either answers the rules now in
    /// force; a failure keeps the rules and says which file or url failed.
    async fn blocklist_update(&self) -> Result<Map<String, Value>, Failure> {
        let status = match self.engine.blocklist().await.map_err(engine_failure)?.url {
            Some(_) => self.engine.update_blocklist().await,
            None => self.engine.reload_blocklist(None).await,
        }
        .map_err(|e| Failure::coded(Code::System, format!("blocklist-update: {e}")))?;
        Ok(json_map(json!({"blocklist-size": status.rules})))
    }

    async fn session_get(&self, args: &Args) -> Result<Map<String, Value>, Failure> {
        let mut all = self.session_values().await?;
        if let Some(Value::Array(fields)) = args.get("fields") {
            let wanted: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
            all.retain(|k, _| wanted.contains(&k.as_str()));
        }
        Ok(all)
    }

    /// Speed limits change; any other key swarmd reports is accepted when it keeps the value
    /// `session-get` shows and refused otherwise; keys transmission does not know are ignored.
    async fn session_set(&self, args: &Args) -> Result<Map<String, Value>, Failure> {
        let current = self.session_values().await?;
        let mut limits = self.engine.limits().await.map_err(engine_failure)?;
        let mut touched = false;
        for (dir, slot) in [("down", &mut limits.download), ("up", &mut limits.upload)] {
            let value_key = format!("speed-limit-{dir}");
            let enabled_key = format!("speed-limit-{dir}-enabled");
            let value = match args.get(&value_key) {
                None => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    Failure::new(format!(
                        "session-set: {value_key} = {v} is not a number of kB/s"
                    ))
                })?),
            };
            let enabled = args.get(&enabled_key).map(truthy);
            let new = match (enabled, value) {
                (Some(false), _) => None,
                (Some(true), Some(kb)) => Some(kb * SPEED_UNIT),
                (Some(true), None) => match *slot {
                    Some(b) => Some(b),
                    None => return Err(Failure::new(format!(
                        "session-set: {enabled_key} needs {value_key} too (swarmd keeps no limit while it is off)"
                    ))),
                },
                (None, Some(kb)) if slot.is_some() => Some(kb * SPEED_UNIT),
                // A value for a limit that is off: transmission keeps it for later; swarmd has
                // nowhere to keep it, and nothing changes now.
                (None, _) => *slot,
            };
            touched |= new != *slot;
            *slot = new;
        }
        let encryption = match args.get("encryption") {
            None => None,
            Some(v) => Some(policy_of_transmission(v)?),
        };
        for (key, value) in args {
            if (key.starts_with("speed-limit-") && !key.contains("alt"))
                || key == "encryption"
                || super::queue::SESSION_KEYS.contains(&key.as_str())
                || super::alt_speed::SESSION_KEYS.contains(&key.as_str())
            {
                continue;
            }
            if key == "download-dir" && value.as_str() != current.get(key).and_then(Value::as_str) {
                return Err(Failure::new(
                    "session-set: download-dir cannot change while swarmd runs; set [daemon] \
                     download_dir in its config and restart it (torrent-add takes a download-dir)",
                ));
            }
            if let Some(now) = current.get(key) {
                if !same_value(now, value) {
                    return Err(Failure::new(format!(
                        "session-set: swarmd cannot change {key} (it is {now}, asked {value})"
                    )));
                }
            }
        }
        let alt = match super::alt_speed::change(args)? {
            None => None,
            Some(p) => {
                let current = self.engine.alt_speed().await.map_err(engine_failure)?;
                Some(
                    p.apply_to(current)
                        .map_err(|e| Failure::new(format!("session-set: {e}")))?,
                )
            }
        };
        self.session_set_queue(args).await?;
        if let Some(a) = alt {
            let now = self.engine.set_alt_speed(a).await.map_err(engine_failure)?;
            if let Some(settings) = &self.info.settings {
                crate::control::dispatch::record_alt_speed(settings, now);
            }
        }
        if let Some(p) = encryption {
            let p = self
                .engine
                .set_encryption(p)
                .await
                .map_err(engine_failure)?;
            tracing::info!(policy = %p, "encryption policy set over the HTTP RPC (until swarmd restarts)");
        }
        if touched {
            let l: Limits = self
                .engine
                .set_limits(limits)
                .await
                .map_err(engine_failure)?;
            tracing::info!(download = ?l.download, upload = ?l.upload, "rate limits set over the HTTP RPC");
            if let Some(Err(e)) = self.info.settings.as_ref().map(|s| s.set_limits(Some(l))) {
                tracing::error!("{e}; the new limits apply until swarmd stops");
            }
        }
        Ok(Map::new())
    }

    async fn session_stats(&self) -> Result<Map<String, Value>, Failure> {
        let stats = self.engine.stats().await.map_err(engine_failure)?;
        let list = self.engine.list().await.map_err(engine_failure)?;
        let paused = list
            .iter()
            .filter(|t| matches!(t.state, TorrentState::Paused | TorrentState::Error))
            .count();
        let current = json!({
            "uploadedBytes": stats.uploaded, "downloadedBytes": stats.downloaded,
            "filesAdded": list.len(), "sessionCount": 1, "secondsActive": stats.uptime_secs,
        });
        Ok(json_map(json!({
            "activeTorrentCount": list.len() - paused,
            "pausedTorrentCount": paused,
            "torrentCount": list.len(),
            "downloadSpeed": stats.download_rate,
            "uploadSpeed": stats.upload_rate,
            // swarmd keeps no totals across runs: this run's are all it knows.
            "cumulative-stats": current.clone(),
            "current-stats": current,
        })))
    }
}

/// Equal as transmission compares settings: numbers by value (`1` = `1.0` = `true`).
fn same_value(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| {
        v.as_f64()
            .or_else(|| v.as_bool().map(|b| f64::from(u8::from(b))))
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn free_space(args: &Args) -> Result<Map<String, Value>, Failure> {
    let path = args
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::new("free-space: the path argument is missing"))?;
    if !Path::new(path).is_absolute() {
        return Err(Failure::coded(
            Code::PathNotAbsolute,
            format!("free-space: {path} is not an absolute path"),
        ));
    }
    let (free, total) = statvfs(Path::new(path))
        .map_err(|e| Failure::coded(Code::System, format!("free-space: {path}: {e}")))?;
    Ok(json_map(
        json!({"path": path, "size-bytes": free, "total_size": total}),
    ))
}

/// Bytes available to the daemon's user and the file system's size.
fn statvfs(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated path; `s` is written by the call before it is read.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = s.f_frsize as u64;
    Ok((s.f_bavail as u64 * frsize, s.f_blocks as u64 * frsize))
}

/// transmission's name for an encryption policy. transmission has no "plaintext only": swarmd's
/// `disable` shows as `tolerated`, the nearest (it also accepts encrypted peers).
fn transmission_encryption(p: Policy) -> &'static str {
    match p {
        Policy::Require => "required",
        Policy::Prefer => "preferred",
        Policy::Allow | Policy::Disable => "tolerated",
    }
}

fn policy_of_transmission(v: &Value) -> Result<Policy, Failure> {
    match v.as_str() {
        Some("required") => Ok(Policy::Require),
        Some("preferred") => Ok(Policy::Prefer),
        Some("tolerated") => Ok(Policy::Allow),
        _ => Err(Failure::new(format!(
            "session-set: encryption = {v} is not one of \"required\", \"preferred\", \"tolerated\""
        ))),
    }
}
