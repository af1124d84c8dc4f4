//! The `torrent-*` methods: which torrents `ids` names, `torrent-get` (fetching only the views
//! the requested fields need), `torrent-add`, `torrent-set` and the actions. All of it through the
//! [`Engine`], as the control socket does it.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Map, Value};
use swarm_control::{FileInfo, FilePriority, FilePriorityChange, TorrentState, TorrentSummary};
use swarm_wire::InfoHash;

use super::fields::{
    self, Views, DETAIL_FIELDS, FILE_FIELDS, PEER_FIELDS, PIECE_FIELDS, TRACKER_FIELDS,
};
use super::rpc::{engine_failure, truthy, Args, Code, Failure, Rpc};
use super::settings::{labels_arg, LimitChanges};
use crate::engine::{AddTorrent, Engine, EngineError, NewTorrent};
use crate::intake;

/// Whether a torrent (id, hash) is among those an `ids` argument names.
type Selector = dyn Fn(u32, &InfoHash) -> bool;

/// One torrent an `ids` argument selected.
pub struct Selected {
    pub id: u32,
    pub hash: InfoHash,
    pub summary: TorrentSummary,
}

impl<E: Engine> Rpc<E> {
    /// The torrents `ids` names: absent = all, a number, a hash, an array of both, or
    /// `"recently-active"`. Ids and hashes of no torrent are skipped, as transmission does.
    pub(super) async fn select(&self, ids: Option<&Value>) -> Result<Vec<Selected>, Failure> {
        let list = self.engine.list().await.map_err(engine_failure)?;
        let now = Instant::now();
        let mut table = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let active = |t: &TorrentSummary| {
            t.download_rate > 0
                || t.upload_rate > 0
                || matches!(
                    t.state,
                    TorrentState::Checking
                        | TorrentState::CheckingQueued
                        | TorrentState::FetchingMetadata
                )
        };
        let numbers = table.observe(list.iter().map(|t| (t.info_hash, active(t))), now);
        let wanted: Box<Selector> = match ids {
            None | Some(Value::Null) => Box::new(|_, _| true),
            Some(Value::String(s)) if s == "recently-active" => {
                let recent: Vec<u32> = numbers
                    .iter()
                    .copied()
                    .filter(|id| table.recently_active(*id, now))
                    .collect();
                Box::new(move |id, _| recent.contains(&id))
            }
            Some(one @ (Value::Number(_) | Value::String(_))) => {
                let refs = id_refs(std::slice::from_ref(one))?;
                Box::new(move |id, h| refs.matches(id, h))
            }
            Some(Value::Array(many)) => {
                let refs = id_refs(many)?;
                Box::new(move |id, h| refs.matches(id, h))
            }
            Some(other) => {
                return Err(Failure::new(format!(
                    "ids: {other} is not an id, a hash, a list of them or \"recently-active\""
                )))
            }
        };
        Ok(list
            .into_iter()
            .zip(numbers)
            .filter(|(t, id)| wanted(*id, &t.info_hash))
            .map(|(summary, id)| Selected {
                id,
                hash: summary.info_hash,
                summary,
            })
            .collect())
    }

    pub(super) async fn torrent_get(&self, args: &Args) -> Result<Map<String, Value>, Failure> {
        let requested: Vec<String> = match args.get("fields") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|f| f.as_str())
                .map(str::to_owned)
                .collect(),
            _ => {
                return Err(Failure::new(
                    "torrent-get: the fields argument (a list) is missing",
                ))
            }
        };
        let table = args.get("format").and_then(Value::as_str) == Some("table");
        let recent = args.get("ids").and_then(Value::as_str) == Some("recently-active");
        let needs = |group: &[&str]| requested.iter().any(|f| group.contains(&f.as_str()));
        let mut rows = Vec::new();
        for t in self.select(args.get("ids")).await? {
            match self.torrent_fields(&t, &requested, &needs).await {
                Ok(row) => rows.push(row),
                // Removed between the list and this call: it is gone, like the others.
                Err(EngineError::UnknownTorrent(_)) => continue,
                Err(e) => return Err(engine_failure(e)),
            }
        }
        let mut out = Map::new();
        let torrents = if table {
            let mut t = vec![json!(requested)];
            t.extend(rows.into_iter().map(|row| {
                Value::Array(
                    requested
                        .iter()
                        .map(|f| row.get(f).cloned().unwrap_or(Value::Null))
                        .collect(),
                )
            }));
            t
        } else {
            rows.into_iter().map(Value::Object).collect()
        };
        out.insert("torrents".into(), Value::Array(torrents));
        if recent {
            let removed = self
                .ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .recently_removed(Instant::now());
            out.insert("removed".into(), json!(removed));
        }
        Ok(out)
    }

    async fn torrent_fields(
        &self,
        t: &Selected,
        requested: &[String],
        needs: &impl Fn(&[&str]) -> bool,
    ) -> Result<Map<String, Value>, EngineError> {
        let e = &self.engine;
        let detail = if needs(DETAIL_FIELDS) {
            Some(e.show(t.hash).await?)
        } else {
            None
        };
        let files = if needs(FILE_FIELDS) {
            Some(e.files(t.hash).await?)
        } else {
            None
        };
        let peers = if needs(PEER_FIELDS) {
            Some(e.peers(t.hash).await?)
        } else {
            None
        };
        let trackers = if needs(TRACKER_FIELDS) {
            Some(e.trackers(t.hash).await?)
        } else {
            None
        };
        let pieces = if needs(PIECE_FIELDS) {
            Some(e.pieces(t.hash).await?)
        } else {
            None
        };
        let views = Views {
            id: t.id,
            summary: &t.summary,
            detail: detail.as_ref(),
            files: files.as_deref(),
            peers: peers.as_deref(),
            trackers: trackers.as_deref(),
            pieces: pieces.as_deref(),
            peer_limit: self.info.peer_limit,
        };
        Ok(requested
            .iter()
            .filter_map(|f| Some((f.clone(), fields::field(f, &views)?)))
            .collect())
    }

    /// `torrent-start`, `-start-now`, `-stop`, `-verify`, `-reannounce`, `-remove`.
    pub(super) async fn torrent_action(
        &self,
        method: &str,
        args: &Args,
    ) -> Result<Map<String, Value>, Failure> {
        let delete = args
            .get("delete-local-data")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        for t in self.select(args.get("ids")).await? {
            let e = &self.engine;
            let done = match method {
                "torrent-start" => e.resume(t.hash).await,
                // transmission's "start now": whatever the queue says.
                "torrent-start-now" => e.force_start(t.hash).await,
                "torrent-stop" => e.pause(t.hash).await,
                "torrent-verify" => e.verify(t.hash).await,
                "torrent-reannounce" => e.reannounce(t.hash).await,
                _ => {
                    let r = e.remove(t.hash, delete).await;
                    if r.is_ok() {
                        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
                        ids.forget_hash(t.hash, Instant::now());
                    }
                    r
                }
            };
            match done {
                Ok(()) | Err(EngineError::UnknownTorrent(_)) => {}
                Err(e) => {
                    let f = engine_failure(e);
                    return Err(Failure::coded(
                        f.code,
                        format!("{method} {}: {}", t.summary.name, f.message),
                    ));
                }
            }
        }
        Ok(Map::new())
    }

    pub(super) async fn torrent_add(&self, args: &Args) -> Result<Map<String, Value>, Failure> {
        let torrent = self.torrent_to_add(args).await?;
        let labels = labels_arg("torrent-add", args)?.unwrap_or_default();
        let changes = FileChanges::from_args(args)?;
        let limits = LimitChanges::from_add_args(args)?;
        if !changes.is_empty() && matches!(torrent, NewTorrent::Magnet(_)) {
            return Err(Failure::new(
                "torrent-add: files-wanted/-unwanted and priorities need the file list, which a \
                 magnet link does not have until its metadata arrives; set them with torrent-set then",
            ));
        }
        let save_dir = match args.get("download-dir").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => {
                let d = PathBuf::from(d);
                if !d.is_absolute() {
                    return Err(Failure::coded(
                        Code::PathNotAbsolute,
                        format!(
                            "torrent-add: download-dir {} is not an absolute path",
                            d.display()
                        ),
                    ));
                }
                Some(d)
            }
            _ => None,
        };
        let paused = args.get("paused").is_some_and(truthy);
        let hash = torrent.info_hash();
        let add = AddTorrent {
            torrent,
            save_dir,
            // Held until the file choices and limits are in, so that no unwanted piece is
            // fetched and no peer is served beyond them.
            paused: paused || !changes.is_empty() || !limits.is_empty(),
            labels,
        };
        let (key, name) = match self.engine.add(add).await {
            Ok(r) => ("torrent-added", r.name),
            Err(EngineError::Duplicate(_)) => {
                let name = self
                    .engine
                    .show(hash)
                    .await
                    .map(|d| d.summary.name)
                    .unwrap_or_default();
                ("torrent-duplicate", name)
            }
            Err(e) => {
                let f = engine_failure(e);
                return Err(Failure::coded(
                    f.code,
                    format!("torrent-add: {}", f.message),
                ));
            }
        };
        if key == "torrent-added" && !limits.is_empty() {
            let current = self.engine.show(hash).await.map_err(engine_failure)?.limits;
            let new = limits.apply_to(current)?;
            self.engine
                .set_torrent_limits(hash, new)
                .await
                .map_err(engine_failure)?;
        }
        if key == "torrent-added" && !changes.is_empty() {
            let files = self.engine.files(hash).await.map_err(engine_failure)?;
            let list = changes.apply(&files)?;
            self.engine
                .set_file_priority(hash, list)
                .await
                .map_err(engine_failure)?;
        }
        if key == "torrent-added" && !paused && !(changes.is_empty() && limits.is_empty()) {
            self.engine.resume(hash).await.map_err(engine_failure)?;
        }
        let id = self
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .id_of(hash, Instant::now());
        let mut out = Map::new();
        out.insert(
            key.into(),
            json!({"id": id, "name": name, "hashString": hash}),
        );
        Ok(out)
    }

    async fn torrent_to_add(&self, args: &Args) -> Result<NewTorrent, Failure> {
        let fail = |m: String| Failure::new(format!("torrent-add: {m}"));
        let corrupt = |m: String| Failure::coded(Code::CorruptTorrent, format!("torrent-add: {m}"));
        if let Some(b64) = args.get("metainfo").and_then(Value::as_str) {
            let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = data_encoding::BASE64
                .decode(clean.as_bytes())
                .map_err(|e| fail(format!("metainfo is not base64: {e}")))?;
            return intake::parse_metainfo(&bytes)
                .map_err(|e| corrupt(format!("invalid torrent: {e}")));
        }
        let Some(filename) = args.get("filename").and_then(Value::as_str) else {
            return Err(fail(
                "give filename (a path, URL or magnet link) or metainfo".into(),
            ));
        };
        let filename = filename.trim();
        if filename.starts_with("magnet:") {
            return intake::parse_magnet(filename)
                .map_err(|e| corrupt(format!("invalid magnet link: {e}")));
        }
        let bytes = if filename.starts_with("http://") || filename.starts_with("https://") {
            let cookies = args
                .get("cookies")
                .and_then(Value::as_str)
                .map(str::to_owned);
            fetch_url(filename.to_owned(), cookies)
                .await
                .map_err(|m| Failure::coded(Code::Http, format!("torrent-add: {m}")))?
        } else {
            let path = PathBuf::from(filename);
            if !path.is_absolute() {
                return Err(Failure::coded(
                    Code::PathNotAbsolute,
                    format!(
                        "torrent-add: {filename} is not an absolute path, a URL or a magnet link"
                    ),
                ));
            }
            intake::read_capped(&path).await.map_err(fail)?
        };
        intake::parse_metainfo(&bytes)
            .map_err(|e| corrupt(format!("{filename}: invalid torrent: {e}")))
    }

    /// `torrent-set-location` (and `torrent-set`'s `location`): moves the torrents' data to
    /// `location` (`move_data`), or points them there without moving anything, as transmission
    /// does with `move: false`. A move goes on after the answer; `torrent-get` shows where the
    /// data is (`downloadDir` changes when it is done).
    pub(super) async fn set_location(
        &self,
        method: &str,
        args: &Args,
        location: PathBuf,
        move_data: bool,
    ) -> Result<Map<String, Value>, Failure> {
        for t in self.select(args.get("ids")).await? {
            match self
                .engine
                .move_storage(t.hash, location.clone(), move_data)
                .await
            {
                Ok(()) | Err(EngineError::UnknownTorrent(_)) => {}
                Err(e) => {
                    let f = engine_failure(e);
                    return Err(Failure::coded(
                        f.code,
                        format!("{method} {}: {}", t.summary.name, f.message),
                    ));
                }
            }
        }
        Ok(Map::new())
    }

    pub(super) async fn torrent_set(&self, args: &Args) -> Result<Map<String, Value>, Failure> {
        let changes = FileChanges::from_args(args)?;
        let location = location_arg("torrent-set", args)?;
        let labels = labels_arg("torrent-set", args)?;
        let limits = LimitChanges::from_args(args)?;
        for (key, value) in args.iter() {
            if matches!(
                key.as_str(),
                "ids" | "files-wanted" | "files-unwanted" | "labels" | "location"
            ) || key.starts_with("priority-")
                || super::queue::TORRENT_KEYS.contains(&key.as_str())
                || LimitChanges::KEYS.contains(&key.as_str())
            {
                continue;
            }
            check_unchangeable(key, value)?;
        }
        if let Some(location) = location {
            // transmission's "new location of the torrent's content": the data is looked for
            // there, not moved (`torrent-set-location` moves it).
            self.set_location("torrent-set", args, location, false)
                .await?;
        }
        for t in self.select(args.get("ids")).await? {
            match self.torrent_set_queue(t.hash, args).await {
                Ok(()) | Err(EngineError::UnknownTorrent(_)) => {}
                Err(e) => {
                    let f = engine_failure(e);
                    return Err(Failure::coded(
                        f.code,
                        format!("torrent-set {}: {}", t.summary.name, f.message),
                    ));
                }
            }
            let named = |f: Failure| {
                Failure::coded(
                    f.code,
                    format!("torrent-set {}: {}", t.summary.name, f.message),
                )
            };
            if let Some(labels) = &labels {
                match self.engine.set_labels(t.hash, labels.clone()).await {
                    Ok(()) | Err(EngineError::UnknownTorrent(_)) => {}
                    Err(e) => return Err(named(engine_failure(e))),
                }
            }
            if !limits.is_empty() {
                let current = match self.engine.show(t.hash).await {
                    Ok(d) => d.limits,
                    Err(EngineError::UnknownTorrent(_)) => continue,
                    Err(e) => return Err(named(engine_failure(e))),
                };
                let new = limits.apply_to(current).map_err(named)?;
                self.engine
                    .set_torrent_limits(t.hash, new)
                    .await
                    .map_err(|e| named(engine_failure(e)))?;
            }
            if changes.is_empty() {
                continue;
            }
            let files = match self.engine.files(t.hash).await {
                Ok(f) => f,
                Err(EngineError::UnknownTorrent(_)) => continue,
                Err(e) => return Err(engine_failure(e)),
            };
            let list = changes.apply(&files).map_err(|f| {
                Failure::coded(
                    f.code,
                    format!("torrent-set {}: {}", t.summary.name, f.message),
                )
            })?;
            self.engine
                .set_file_priority(t.hash, list)
                .await
                .map_err(engine_failure)?;
        }
        Ok(Map::new())
    }
}

/// The torrents an `ids` list names: ids and info-hashes (lowercase or not).
struct IdRefs {
    ids: Vec<u32>,
    hashes: Vec<InfoHash>,
}

impl IdRefs {
    fn matches(&self, id: u32, hash: &InfoHash) -> bool {
        self.ids.contains(&id) || self.hashes.contains(hash)
    }
}

fn id_refs(values: &[Value]) -> Result<IdRefs, Failure> {
    let mut refs = IdRefs {
        ids: Vec::new(),
        hashes: Vec::new(),
    };
    for v in values {
        match v {
            Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(id) => refs.ids.push(id),
                None => return Err(Failure::new(format!("ids: {n} is not a torrent id"))),
            },
            Value::String(s) => match InfoHash::from_hex(s) {
                Some(h) => refs.hashes.push(h),
                // transmission-remote sends ids it was given as text ("-t 3").
                None => match s.parse::<u32>() {
                    Ok(id) => refs.ids.push(id),
                    Err(_) => {
                        return Err(Failure::new(format!(
                            "ids: {s:?} is not a torrent id or info-hash"
                        )))
                    }
                },
            },
            other => {
                return Err(Failure::new(format!(
                    "ids: {other} is not a torrent id or info-hash"
                )))
            }
        }
    }
    Ok(refs)
}

/// The `location` of `torrent-set-location` and `torrent-set`: an absolute directory.
pub(super) fn location_arg(method: &str, args: &Args) -> Result<Option<PathBuf>, Failure> {
    let Some(v) = args.get("location") else {
        return Ok(None);
    };
    let Some(text) = v.as_str() else {
        return Err(Failure::new(format!(
            "{method}: location: {v} is not a directory path"
        )));
    };
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(Failure::coded(
            Code::PathNotAbsolute,
            format!("{method}: location {text} is not an absolute path"),
        ));
    }
    Ok(Some(path))
}

/// `torrent-set` keys of features swarmd does not have: accepted when they ask for what
/// swarmd does anyway (what transmission with the feature off does), refused otherwise.
fn check_unchangeable(key: &str, value: &Value) -> Result<(), Failure> {
    let fine = match key {
        "trackerAdd" | "trackerRemove" | "trackerReplace" => {
            value.as_array().is_some_and(Vec::is_empty)
        }
        "honorsSessionLimits" => truthy(value),
        "sequentialDownload" => !truthy(value),
        // Not a change of anything swarmd keeps.
        "group" => value.as_str().is_some_and(str::is_empty),
        "trackerList" => false,
        // Keys transmission does not know either: ignored, as transmission does.
        _ => true,
    };
    if fine {
        return Ok(());
    }
    let what = match key {
        "honorsSessionLimits" => "ignoring the session's speed limits",
        "group" => "bandwidth groups",
        _ => "this setting",
    };
    Err(Failure::unsupported(format!(
        "torrent-set: {key} = {value}: swarmd does not support {what} yet"
    )))
}

/// The file choices of `files-wanted`, `files-unwanted` and `priority-*`, by position in the
/// file list (transmission's file index).
#[derive(Default)]
struct FileChanges {
    wanted: Vec<u64>,
    unwanted: Vec<u64>,
    priorities: Vec<(u64, FilePriority)>,
}

impl FileChanges {
    fn from_args(args: &Args) -> Result<Self, Failure> {
        let list = |key: &str| -> Result<Vec<u64>, Failure> {
            match args.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_u64()
                            .ok_or_else(|| Failure::new(format!("{key}: {v} is not a file index")))
                    })
                    .collect(),
                Some(v) => Err(Failure::new(format!(
                    "{key}: {v} is not a list of file indices"
                ))),
            }
        };
        let mut priorities = Vec::new();
        for (key, p) in [
            ("priority-low", FilePriority::Low),
            ("priority-normal", FilePriority::Normal),
            ("priority-high", FilePriority::High),
        ] {
            priorities.extend(list(key)?.into_iter().map(|i| (i, p)));
        }
        Ok(FileChanges {
            wanted: list("files-wanted")?,
            unwanted: list("files-unwanted")?,
            priorities,
        })
    }

    fn is_empty(&self) -> bool {
        self.wanted.is_empty() && self.unwanted.is_empty() && self.priorities.is_empty()
    }

    /// The engine's changes for this file list. swarmd's `skip` is transmission's "unwanted":
    /// a priority given to an unwanted file is kept only once the file is wanted again.
    fn apply(&self, files: &[FileInfo]) -> Result<Vec<FilePriorityChange>, Failure> {
        let file = |i: u64| {
            files.get(i as usize).ok_or_else(|| {
                Failure::coded(
                    Code::FileIndexOutOfRange,
                    format!(
                        "file index {i} is out of range: the torrent has {} files",
                        files.len()
                    ),
                )
            })
        };
        let mut out: Vec<FilePriorityChange> = Vec::new();
        let mut set = |index: u32, priority: FilePriority| {
            out.retain(|c| c.index != index);
            out.push(FilePriorityChange { index, priority });
        };
        for &i in &self.wanted {
            let f = file(i)?;
            if f.priority == FilePriority::Skip {
                set(f.index, FilePriority::Normal);
            }
        }
        for &(i, p) in &self.priorities {
            let f = file(i)?;
            let unwanted = f.priority == FilePriority::Skip && !self.wanted.contains(&i);
            if !unwanted {
                set(f.index, p);
            }
        }
        for &i in &self.unwanted {
            set(file(i)?.index, FilePriority::Skip);
        }
        Ok(out)
    }
}

/// Fetches a `.torrent` over HTTP(S), capped at [`intake::MAX_TORRENT_FILE`].
async fn fetch_url(url: String, cookies: Option<String>) -> Result<Vec<u8>, String> {
    let shown = url.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut req = ureq::get(&url).timeout(std::time::Duration::from_secs(30));
        if let Some(c) = &cookies {
            req = req.set("Cookie", c);
        }
        let resp = req.call().map_err(|e| format!("cannot fetch {url}: {e}"))?;
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(intake::MAX_TORRENT_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot fetch {url}: {e}"))?;
        if bytes.len() as u64 > intake::MAX_TORRENT_FILE {
            return Err(format!(
                "{url} is larger than {} MiB",
                intake::MAX_TORRENT_FILE >> 20
            ));
        }
        Ok(bytes)
    })
    .await
    .map_err(|e| format!("cannot fetch {shown}: {e}"))?
}
