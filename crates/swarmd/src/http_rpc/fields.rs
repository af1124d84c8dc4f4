//! `torrent-get`'s fields, from the views the engine already gives the control socket
//! ([`TorrentSummary`], [`TorrentDetail`], files, peers, trackers): transmission's names, units
//! and codes over swarmd's state. Pure; `torrent_get.rs` fetches the views a field list needs.
//!
//! A field swarmd cannot know is left out rather than made up (transmission clients read a
//! missing field as unknown): `activityDate`, `startDate`, `secondsDownloading`,
//! `secondsSeeding`, `recheckProgress`, `desiredAvailable`, `availability`, `dateCreated`,
//! `creator`. Features swarmd does not have (bandwidth groups) answer what transmission
//! answers with the feature off.
//!
//! A torrent's own limits (`downloadLimit`/`Limited`, `uploadLimit`/`Limited`, `peer-limit`)
//! come from its detail; swarmd keeps a speed only while it is in force, so `downloadLimit` of
//! an unlimited torrent is 0.

use super::rpc::SPEED_UNIT;
use serde_json::{json, Value};
use swarm_control::{
    FileInfo, FilePriority, Limit, PeerInfo, TorrentDetail, TorrentState, TorrentSummary,
    TrackerInfo,
};

/// What one torrent's fields are computed from; the optional views are fetched only when a
/// requested field needs them.
pub struct Views<'a> {
    pub id: u32,
    pub summary: &'a TorrentSummary,
    pub detail: Option<&'a TorrentDetail>,
    pub files: Option<&'a [FileInfo]>,
    pub peers: Option<&'a [PeerInfo]>,
    pub trackers: Option<&'a [TrackerInfo]>,
    /// The wire's bitfield of the pieces present.
    pub pieces: Option<&'a [u8]>,
    /// The daemon's `max_peers_per_torrent` (`peer-limit`).
    pub peer_limit: u32,
}

/// Fields computed from the detail (`show`).
pub const DETAIL_FIELDS: &[&str] = &[
    "addedDate",
    "doneDate",
    "eta",
    "pieceCount",
    "pieceSize",
    "isPrivate",
    "comment",
    "corruptEver",
    "seedRatioMode",
    "seedRatioLimit",
    "seedIdleMode",
    "seedIdleLimit",
    // `beginPiece`/`endPiece` of each file need the piece length.
    "files",
    // The torrent's own limits.
    "downloadLimit",
    "downloadLimited",
    "uploadLimit",
    "uploadLimited",
    "peer-limit",
    "maxConnectedPeers",
    "bandwidthPriority",
];
pub const FILE_FIELDS: &[&str] = &[
    "files",
    "fileStats",
    "priorities",
    "wanted",
    "fileCount",
    "file-count",
    "desiredAvailable",
];
pub const PEER_FIELDS: &[&str] = &[
    "peers",
    "peersGettingFromUs",
    "peersSendingToUs",
    "peersFrom",
];
pub const TRACKER_FIELDS: &[&str] = &["trackers", "trackerStats", "trackerList", "magnetLink"];
pub const PIECE_FIELDS: &[&str] = &["pieces"];

/// Transmission's status codes (`tr_torrent_activity`).
pub fn status(state: TorrentState) -> i64 {
    match state {
        TorrentState::Paused | TorrentState::Error => 0,
        TorrentState::CheckingQueued => 1,
        TorrentState::Checking => 2,
        TorrentState::QueuedDownload => 3,
        TorrentState::FetchingMetadata | TorrentState::Downloading => 4,
        TorrentState::QueuedSeed => 5,
        TorrentState::Seeding => 6,
    }
}

/// Transmission's `uploadRatio`: uploaded over downloaded (over what was there, for a torrent
/// that was complete from the start); -1 when both are 0, -2 for "infinite".
fn ratio(uploaded: u64, denominator: u64) -> f64 {
    match (uploaded, denominator) {
        (0, 0) => -1.0,
        (_, 0) => -2.0,
        (u, d) => u as f64 / d as f64,
    }
}

/// The value of one field, or `None` when swarmd does not know it (the field is left out).
pub fn field(name: &str, v: &Views) -> Option<Value> {
    let s = v.summary;
    let limits = v.detail.map(|d| &d.limits);
    let stopped = matches!(s.state, TorrentState::Paused | TorrentState::Error);
    Some(match name {
        "id" => json!(v.id),
        "hashString" => json!(s.info_hash),
        "name" => json!(s.name),
        "status" => json!(status(s.state)),
        "percentDone" => json!(s.progress),
        "percentComplete" => json!(if s.total_bytes == 0 {
            0.0
        } else {
            s.have_bytes as f64 / s.total_bytes as f64
        }),
        "metadataPercentComplete" => {
            json!(if s.state == TorrentState::FetchingMetadata {
                0.0
            } else {
                1.0
            })
        }
        "totalSize" => json!(s.total_bytes),
        "haveValid" => json!(s.have_bytes),
        "haveUnchecked" => json!(0),
        "rateDownload" => json!(s.download_rate),
        "rateUpload" => json!(s.upload_rate),
        "uploadedEver" => json!(s.uploaded),
        "downloadedEver" => json!(s.downloaded),
        "uploadRatio" => json!(ratio(
            s.uploaded,
            if s.downloaded > 0 {
                s.downloaded
            } else {
                s.have_bytes
            }
        )),
        "error" => json!(if s.state == TorrentState::Error { 3 } else { 0 }),
        "errorString" => json!(s.error.clone().unwrap_or_default()),
        "downloadDir" => json!(s.save_dir),
        "isFinished" => json!(false),
        "isStalled" => json!(false),
        "peersConnected" => json!(s.peers),
        "peer-limit" | "maxConnectedPeers" => {
            json!(limits.and_then(|l| l.max_peers).unwrap_or(v.peer_limit))
        }
        "labels" => json!(s.labels),
        "group" => json!(""),
        "queuePosition" => json!(s.queue_position),
        "bandwidthPriority" => json!(limits.map_or(0, |l| l.priority.transmission())),
        "honorsSessionLimits" => json!(true),
        "downloadLimit" => json!(limits.and_then(|l| l.download).unwrap_or(0) / SPEED_UNIT),
        "uploadLimit" => json!(limits.and_then(|l| l.upload).unwrap_or(0) / SPEED_UNIT),
        "downloadLimited" => json!(limits.is_some_and(|l| l.download.is_some())),
        "uploadLimited" => json!(limits.is_some_and(|l| l.upload.is_some())),
        "seedRatioMode" => json!(super::queue::mode(v.detail?.seed_limits.ratio)),
        "seedIdleMode" => json!(super::queue::mode(v.detail?.seed_limits.idle_minutes)),
        "seedRatioLimit" => json!(match v.detail?.seed_limits.ratio {
            Limit::Own(r) => r,
            _ => 2.0,
        }),
        "seedIdleLimit" => json!(match v.detail?.seed_limits.idle_minutes {
            Limit::Own(m) => m,
            _ => 30,
        }),
        "etaIdle" => json!(-1),
        "webseeds" => json!([]),
        "webseedsSendingToUs" => json!(0),
        "sequentialDownload" => json!(false),
        "addedDate" => json!(v.detail?.added_at),
        "doneDate" => json!(v.detail?.completed_at.unwrap_or(0)),
        "eta" => json!(eta(s, v.detail?, stopped)),
        "pieceCount" => json!(v.detail?.pieces),
        "pieceSize" => json!(v.detail?.piece_length),
        "isPrivate" => json!(v.detail?.private),
        "comment" => json!(v.detail?.comment.clone().unwrap_or_default()),
        // Bytes thrown away on hash failures: whole pieces (a short last piece counts full).
        "corruptEver" => {
            let d = v.detail?;
            json!(d.hash_failures.saturating_mul(u64::from(d.piece_length)))
        }
        "pieces" => json!(data_encoding::BASE64.encode(v.pieces?)),
        "sizeWhenDone" => json!(s.wanted_bytes),
        "leftUntilDone" => json!(s.left_bytes),
        "fileCount" | "file-count" => json!(v.files?.len()),
        "files" => files(s, v.files?, v.detail?.piece_length),
        "fileStats" => file_stats(v.files?),
        "priorities" => json!(v
            .files?
            .iter()
            .map(|f| priority(f.priority))
            .collect::<Vec<_>>()),
        "wanted" => json!(v
            .files?
            .iter()
            .map(|f| i64::from(f.priority != FilePriority::Skip))
            .collect::<Vec<_>>()),
        "peers" => json!(v.peers?.iter().map(peer).collect::<Vec<_>>()),
        "peersGettingFromUs" => json!(v.peers?.iter().filter(|p| uploading_to(p)).count()),
        "peersSendingToUs" => json!(v.peers?.iter().filter(|p| downloading_from(p)).count()),
        "peersFrom" => peers_from(v.peers?),
        "trackers" => json!(v
            .trackers?
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"announce": t.url, "id": i, "tier": t.tier,
                "scrape": "", "sitename": sitename(&t.url)}))
            .collect::<Vec<_>>()),
        "trackerStats" => json!(v
            .trackers?
            .iter()
            .enumerate()
            .map(|(i, t)| tracker_stat(i, t))
            .collect::<Vec<_>>()),
        "trackerList" => json!(tracker_list(v.trackers?)),
        "magnetLink" => json!(magnet(s, v.trackers?)),
        _ => return None,
    })
}

/// `eta`: seconds, -1 when not applicable (stopped, or seeding with no ratio limit), -2 unknown.
fn eta(s: &TorrentSummary, d: &TorrentDetail, stopped: bool) -> i64 {
    if stopped || s.state == TorrentState::Seeding {
        return -1;
    }
    d.eta_secs.map_or(-2, |e| e.min(i64::MAX as u64) as i64)
}

fn priority(p: FilePriority) -> i64 {
    match p {
        FilePriority::Low => -1,
        FilePriority::Skip | FilePriority::Normal => 0,
        FilePriority::High => 1,
    }
}

/// Transmission names a file with the torrent's name in front (its folder, for a multi-file
/// torrent); swarmd's file paths are relative to that folder.
fn file_name(s: &TorrentSummary, path: &str) -> String {
    if path == s.name || path.starts_with(&format!("{}/", s.name)) {
        path.to_owned()
    } else {
        format!("{}/{path}", s.name)
    }
}

/// Each file with the pieces it lies in, `[beginPiece, endPiece)` as transmission counts them
/// (files are in the torrent's order, one after the other).
fn files(s: &TorrentSummary, files: &[FileInfo], piece_length: u32) -> Value {
    let pl = u64::from(piece_length.max(1));
    let mut offset = 0u64;
    json!(files
        .iter()
        .map(|f| {
            let begin = offset / pl;
            let end = if f.length == 0 {
                begin
            } else {
                (offset + f.length - 1) / pl + 1
            };
            offset += f.length;
            json!({"name": file_name(s, &f.path), "length": f.length,
                "bytesCompleted": f.have_bytes, "beginPiece": begin, "endPiece": end})
        })
        .collect::<Vec<_>>())
}

fn file_stats(files: &[FileInfo]) -> Value {
    json!(files
        .iter()
        .map(|f| json!({"bytesCompleted": f.have_bytes,
            "wanted": f.priority != FilePriority::Skip, "priority": priority(f.priority)}))
        .collect::<Vec<_>>())
}

fn uploading_to(p: &PeerInfo) -> bool {
    p.peer_interested && !p.am_choking
}

fn downloading_from(p: &PeerInfo) -> bool {
    p.am_interested && !p.peer_choking
}

fn peer(p: &PeerInfo) -> Value {
    let (address, port) = match p.addr.rsplit_once(':') {
        Some((a, port)) => (
            a.trim_start_matches('[').trim_end_matches(']'),
            port.parse::<u16>().unwrap_or(0),
        ),
        None => (p.addr.as_str(), 0),
    };
    let incoming = p.direction == "incoming";
    let mut flags = String::new();
    for (on, c) in [
        (downloading_from(p), 'D'),
        (!downloading_from(p) && p.am_interested, 'd'),
        (uploading_to(p), 'U'),
        (!uploading_to(p) && p.peer_interested, 'u'),
        (!p.am_choking && !p.peer_interested, '?'),
        (p.source == "pex", 'X'),
        (p.source == "dht", 'H'),
        (incoming, 'I'),
        (p.transport == "utp", 'T'),
    ] {
        if on {
            flags.push(c);
        }
    }
    json!({
        "address": address, "port": port, "clientName": p.client,
        "clientIsChoked": p.am_choking, "clientIsInterested": p.am_interested,
        "peerIsChoked": p.peer_choking, "peerIsInterested": p.peer_interested,
        "isDownloadingFrom": downloading_from(p), "isUploadingTo": uploading_to(p),
        "isEncrypted": false, "isIncoming": incoming, "isUTP": p.transport == "utp",
        "progress": p.progress, "rateToClient": p.download_rate, "rateToPeer": p.upload_rate,
        "flagStr": flags,
    })
}

fn peers_from(peers: &[PeerInfo]) -> Value {
    let count = |src: &str| peers.iter().filter(|p| p.source == src).count();
    json!({
        "fromCache": 0, "fromDht": count("dht"), "fromIncoming": count("incoming"),
        "fromLpd": 0, "fromLtep": count("magnet"), "fromPex": count("pex"),
        "fromTracker": count("tracker"),
    })
}

fn sitename(url: &str) -> String {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host.to_owned();
    }
    let parts: Vec<&str> = host.split('.').collect();
    match parts.len() {
        0 | 1 => host.to_owned(),
        n => parts[n - 2].to_owned(),
    }
}

/// Transmission's `tr_tracker_state`: 0 inactive, 1 waiting, 2 queued, 3 active.
fn tracker_stat(i: usize, t: &TrackerInfo) -> Value {
    let host = t
        .url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("");
    let announced = matches!(t.status.as_str(), "ok" | "error");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    json!({
        "id": i, "announce": t.url, "host": host, "sitename": sitename(&t.url),
        "tier": t.tier, "scrape": "", "isBackup": false,
        "announceState": if t.status == "pending" { 3 } else if t.next_announce_secs.is_some() { 1 } else { 0 },
        "hasAnnounced": announced,
        "lastAnnounceSucceeded": t.status == "ok",
        "lastAnnounceResult": t.message.clone().unwrap_or_else(|| match t.status.as_str() {
            "ok" => "Success".to_owned(),
            _ => String::new(),
        }),
        "lastAnnouncePeerCount": t.peers_received,
        "nextAnnounceTime": t.next_announce_secs.map_or(0, |s| now + s as i64),
        "seederCount": t.seeders.map_or(-1, i64::from),
        "leecherCount": t.leechers.map_or(-1, i64::from),
        "downloadCount": -1,
        "hasScraped": false, "scrapeState": 0,
    })
}

fn tracker_list(trackers: &[TrackerInfo]) -> String {
    let mut out = String::new();
    let mut tier = None;
    for t in trackers {
        if tier.is_some_and(|x| x != t.tier) {
            out.push('\n');
        }
        tier = Some(t.tier);
        out.push_str(&t.url);
        out.push('\n');
    }
    out
}

fn magnet(s: &TorrentSummary, trackers: &[TrackerInfo]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let mut m = format!(
        "magnet:?xt=urn:btih:{}&dn={}",
        s.info_hash,
        utf8_percent_encode(&s.name, NON_ALPHANUMERIC)
    );
    for t in trackers {
        m.push_str("&tr=");
        m.push_str(&utf8_percent_encode(&t.url, NON_ALPHANUMERIC).to_string());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_codes() {
        assert_eq!(ratio(0, 0), -1.0);
        assert_eq!(ratio(5, 0), -2.0);
        assert_eq!(ratio(5, 10), 0.5);
        assert_eq!(status(TorrentState::Seeding), 6);
        assert_eq!(status(TorrentState::Paused), 0);
        assert_eq!(
            sitename("udp://tracker.example.org:1337/announce"),
            "example"
        );
        assert_eq!(sitename("http://127.0.0.1:80/a"), "127.0.0.1");
    }

    #[test]
    fn files_name_their_pieces() {
        let s = crate::fake_engine::summary(swarm_model::InfoHash([0xab; 20]), "t");
        let file = |index, length| FileInfo {
            index,
            path: format!("t/{index}"),
            length,
            have_bytes: 0,
            priority: FilePriority::Normal,
        };
        let v = files(&s, &[file(0, 10), file(1, 0), file(2, 7), file(3, 16)], 8);
        let spans: Vec<(u64, u64)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["beginPiece"].as_u64().unwrap(),
                    f["endPiece"].as_u64().unwrap(),
                )
            })
            .collect();
        // Bytes 0..10, 10..10, 10..17, 17..33 of pieces of 8.
        assert_eq!(spans, [(0, 2), (1, 1), (1, 3), (2, 5)]);
    }
}
