//! Tables and detail views of the daemon's answers, for people. (`--json` bypasses all this.)

use std::fmt::Write as _;

use swarm_control::human::{bytes, duration, limit, rate, utc};
use swarm_control::{
    BlocklistStatus, DaemonInfo, FileInfo, FilePriority, InfoHash, Limits, PeerInfo, SessionStats,
    TorrentDetail, TorrentLimits, TorrentSummary, TrackerInfo,
};

/// Left-aligned text columns, right-aligned where `right[i]`; two spaces between columns.
fn table(headers: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            let last = i + 1 == row.len();
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Cuts `s` to `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// Columns a character takes on a terminal: 2 for the East Asian wide and fullwidth blocks and
/// emoji (a torrent name in Chinese is twice as wide as its character count), else 1. An
/// approximation without a Unicode table, good enough to keep a line from wrapping.
fn columns(c: char) -> usize {
    match u32::from(c) {
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// Cuts `s` to at most `width` terminal columns, marking the cut with `…`.
pub fn truncate_to_width(s: &str, width: usize) -> String {
    if s.chars().map(columns).sum::<usize>() <= width {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        if used + columns(c) + 1 > width {
            break;
        }
        used += columns(c);
        out.push(c);
    }
    out.push('…');
    out
}

/// The first 8 hex digits: enough to tell torrents apart on screen (and a selector needs 6).
pub fn short_hash(h: &InfoHash) -> String {
    let mut hex = h.to_hex();
    hex.truncate(8);
    hex
}

fn percent(p: f64) -> String {
    format!("{:.1}%", (p * 100.0).clamp(0.0, 100.0))
}

pub fn torrent_table(list: &[TorrentSummary]) -> String {
    if list.is_empty() {
        return "no torrents\n".to_owned();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            vec![
                short_hash(&t.info_hash),
                t.state.as_str().to_owned(),
                percent(t.progress),
                bytes(t.total_bytes),
                rate(t.download_rate),
                rate(t.upload_rate),
                t.peers.to_string(),
                truncate(&t.name, 60),
            ]
        })
        .collect();
    let right = [false, false, true, true, true, true, true, false];
    table(
        &["ID", "STATE", "DONE", "SIZE", "DOWN", "UP", "PEERS", "NAME"],
        &right,
        &rows,
    )
}

pub fn torrent_detail(d: &TorrentDetail) -> String {
    let s = &d.summary;
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(out, "{k:<14}{v}");
    };
    line("Name:", s.name.clone());
    line("Info-hash:", s.info_hash.to_hex());
    line("State:", s.state.as_str().to_owned());
    if let Some(e) = &s.error {
        line("Error:", e.clone());
    }
    // With files skipped, progress is of the wanted bytes (a daemon too old to send them
    // sends 0): say both, so that 100% of 2 GiB in a 4 GiB torrent reads as it is.
    let progress = if s.wanted_bytes == 0 || s.wanted_bytes == s.total_bytes {
        format!(
            "{} ({} of {})",
            percent(s.progress),
            bytes(s.have_bytes),
            bytes(s.total_bytes)
        )
    } else {
        format!(
            "{} ({} of {} wanted; {} in all, the rest skipped)",
            percent(s.progress),
            bytes(s.wanted_bytes - s.left_bytes.min(s.wanted_bytes)),
            bytes(s.wanted_bytes),
            bytes(s.total_bytes)
        )
    };
    line("Progress:", progress);
    line("Save dir:", s.save_dir.clone());
    if let Some(m) = &s.moving {
        let stopped = m
            .error
            .as_ref()
            .map_or_else(String::new, |e| format!(" — stopped: {e}"));
        line(
            "Moving:",
            format!("to {}, {}{stopped}", m.to, percent(m.progress)),
        );
    }
    if !s.labels.is_empty() {
        line("Labels:", s.labels.join(", "));
    }
    if d.limits != TorrentLimits::default() {
        line(
            "Own limits:",
            torrent_limits(&d.limits).trim_end().replace('\n', "; "),
        );
    }
    line(
        "Queue:",
        format!(
            "position {}{}",
            s.queue_position,
            if s.forced { ", force-started" } else { "" }
        ),
    );
    line(
        "Seed limits:",
        seed_limits(&d.seed_limits).trim_end().replace('\n', ", "),
    );
    line("Seeding time:", duration(d.seeding_secs));
    line(
        "Rates:",
        format!("down {}, up {}", rate(s.download_rate), rate(s.upload_rate)),
    );
    line(
        "Transferred:",
        format!("down {}, up {}", bytes(s.downloaded), bytes(s.uploaded)),
    );
    line("Peers:", s.peers.to_string());
    line(
        "Pieces:",
        format!(
            "{} of {} × {}",
            d.pieces_have,
            d.pieces,
            bytes(d.piece_length as u64)
        ),
    );
    line(
        "ETA:",
        d.eta_secs.map(duration).unwrap_or_else(|| "-".into()),
    );
    line("Private:", if d.private { "yes" } else { "no" }.to_owned());
    if d.super_seed {
        line("Super-seed:", "on".to_owned());
    }
    line("Added:", utc(d.added_at));
    line(
        "Completed:",
        d.completed_at.map(utc).unwrap_or_else(|| "-".into()),
    );
    if let Some(c) = &d.comment {
        line("Comment:", c.clone());
    }
    line(
        "Health:",
        format!(
            "{} peer restarts, {} hash failures",
            d.peer_restarts, d.hash_failures
        ),
    );
    out
}

fn priority(p: FilePriority) -> &'static str {
    match p {
        FilePriority::Skip => "skip",
        FilePriority::Low => "low",
        FilePriority::Normal => "normal",
        FilePriority::High => "high",
    }
}

pub fn file_table(files: &[FileInfo]) -> String {
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let done = if f.length == 0 {
                1.0
            } else {
                f.have_bytes as f64 / f.length as f64
            };
            vec![
                f.index.to_string(),
                priority(f.priority).to_owned(),
                percent(done),
                bytes(f.length),
                f.path.clone(),
            ]
        })
        .collect();
    table(
        &["IDX", "PRIORITY", "DONE", "SIZE", "PATH"],
        &[true, false, true, true, false],
        &rows,
    )
}

/// uTorrent's letters: D/d we download / want to but are choked; U/u we upload / they want to
/// but we choke them; I incoming connection; E encrypted (MSE/PE, RC4).
fn peer_flags(p: &PeerInfo) -> String {
    let mut f = String::new();
    match (p.am_interested, p.peer_choking) {
        (true, false) => f.push('D'),
        (true, true) => f.push('d'),
        _ => {}
    }
    match (p.peer_interested, p.am_choking) {
        (true, false) => f.push('U'),
        (true, true) => f.push('u'),
        _ => {}
    }
    if p.direction == "incoming" {
        f.push('I');
    }
    if p.encrypted {
        f.push('E');
    }
    f
}

pub fn peer_table(peers: &[PeerInfo]) -> String {
    if peers.is_empty() {
        return "no peers\n".to_owned();
    }
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            vec![
                p.addr.clone(),
                peer_flags(p),
                percent(p.progress),
                rate(p.download_rate),
                rate(p.upload_rate),
                p.requests_in_flight.to_string(),
                p.transport.clone(),
                p.source.clone(),
                truncate(&p.client, 30),
            ]
        })
        .collect();
    let right = [false, false, true, true, true, true, false, false, false];
    table(
        &[
            "ADDRESS", "FLAGS", "DONE", "DOWN", "UP", "REQS", "VIA", "SOURCE", "CLIENT",
        ],
        &right,
        &rows,
    )
}

pub fn tracker_table(trackers: &[TrackerInfo]) -> String {
    if trackers.is_empty() {
        return "no trackers\n".to_owned();
    }
    let opt = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = trackers
        .iter()
        .map(|t| {
            let status = match &t.message {
                Some(m) => format!("{}: {}", t.status, truncate(m, 50)),
                None => t.status.clone(),
            };
            vec![
                // Tiers count from 1, as in `swarmctl inspect`; the protocol's is an index.
                (u64::from(t.tier) + 1).to_string(),
                opt(t.seeders),
                opt(t.leechers),
                t.peers_received.to_string(),
                t.next_announce_secs
                    .map(duration)
                    .unwrap_or_else(|| "-".into()),
                t.url.clone(),
                status,
            ]
        })
        .collect();
    let right = [true, true, true, true, true, false, false];
    table(
        &["TIER", "SEEDS", "LEECH", "PEERS", "NEXT", "URL", "STATUS"],
        &right,
        &rows,
    )
}

/// A torrent's seeding limits, one per line.
pub fn seed_limits(l: &swarm_control::SeedLimits) -> String {
    fn one<T: std::fmt::Display>(l: swarm_control::Limit<T>, unit: &str) -> String {
        match l {
            swarm_control::Limit::Global => "global".into(),
            swarm_control::Limit::Unlimited => "unlimited".into(),
            swarm_control::Limit::Own(v) => format!("{v}{unit}"),
        }
    }
    format!(
        "ratio: {}
seed time: {}
idle: {}
",
        one(l.ratio, ""),
        one(l.seed_time_minutes, " min"),
        one(l.idle_minutes, " min")
    )
}

/// A torrent's own limits; each unset one is the session's.
pub fn torrent_limits(l: &TorrentLimits) -> String {
    let count = |n: Option<u32>| n.map_or_else(|| "the session's".to_owned(), |n| n.to_string());
    let speed = |r: Option<u64>| r.map_or_else(|| "the session's".to_owned(), rate);
    format!(
        "download: {}\nupload: {}\npeers: {}\nupload slots: {}\npriority: {}\n",
        speed(l.download),
        speed(l.upload),
        count(l.max_peers),
        count(l.upload_slots),
        match l.priority {
            swarm_control::BandwidthPriority::Low => "low",
            swarm_control::BandwidthPriority::Normal => "normal",
            swarm_control::BandwidthPriority::High => "high",
        }
    )
}

pub fn limits(l: &Limits) -> String {
    format!(
        "download: {}\nupload:   {}\n",
        limit(l.download),
        limit(l.upload)
    )
}

/// The queue's settings and the session's seeding limits, one per line.
pub fn queue_settings(p: &swarm_control::QueueParams) -> String {
    fn or_none<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
        v.map_or_else(|| "no limit".to_owned(), |v| format!("{v}{unit}"))
    }
    let (q, s) = (p.queue.unwrap_or_default(), p.seeding.unwrap_or_default());
    let action = match s.action {
        swarm_control::SeedAction::Pause => "pause",
        swarm_control::SeedAction::Remove => "remove",
        swarm_control::SeedAction::RemoveWithData => "remove-with-data",
    };
    format!(
        "downloads at once: {}\nseeds at once: {}\ntotal at once: {}\nstalled after: {}\n\
         ratio limit: {}\nseed time limit: {}\nidle limit: {}\nat a limit: {action}\n",
        or_none(q.max_active_downloads, ""),
        or_none(q.max_active_seeds, ""),
        or_none(q.max_active_total, ""),
        or_none(q.stalled_minutes, " min"),
        or_none(s.ratio_limit, ""),
        or_none(s.seed_time_minutes, " min"),
        or_none(s.idle_minutes, " min"),
    )
}

/// The alternative speed limits, their switch and their schedule.
pub fn alt_speed(a: &swarm_control::AltSpeed) -> String {
    use swarm_control::alt_speed::{format_clock, format_days};
    let s = &a.schedule;
    format!(
        "alternative limits: {}\ndownload: {}\nupload:   {}\nschedule: {}, {} to {}, {}\n",
        if a.enabled { "on" } else { "off" },
        limit(a.download),
        limit(a.upload),
        if s.enabled { "on" } else { "off" },
        format_clock(s.begin_minute),
        format_clock(s.end_minute),
        format_days(s.days)
    )
}

pub fn blocklist(b: &BlocklistStatus) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(out, "{k:<10}{v}");
    };
    line("enabled:", if b.enabled { "yes" } else { "no" }.into());
    line(
        "rules:",
        format!(
            "{} ({} IPv4, {} IPv6 ranges, {})",
            b.rules,
            b.rules_v4,
            b.rules_v6,
            bytes(b.memory_bytes)
        ),
    );
    line("loaded:", b.loaded_at.map_or_else(|| "never".into(), utc));
    line("blocked:", format!("{} addresses refused", b.blocked));
    if let Some(url) = &b.url {
        line("url:", url.clone());
    }
    for f in &b.files {
        line(
            "file:",
            format!(
                "{} ({} rules, {} malformed)",
                f.path.display(),
                f.rules,
                f.malformed
            ),
        );
    }
    if b.malformed > 0 {
        line("malformed:", format!("{} lines; the first:", b.malformed));
        for p in &b.problems {
            let _ = writeln!(out, "  {}:{}: {}", p.path.display(), p.line, p.reason);
        }
    }
    out
}

pub fn stats(info: &DaemonInfo, s: &SessionStats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "swarmd {}, pid {}, uid {}, {} mode, up {}",
        info.version,
        info.pid,
        info.uid,
        info.mode,
        duration(info.uptime_secs)
    );
    let mut line = |k: &str, v: String| {
        let _ = writeln!(out, "{k:<12}{v}");
    };
    line("socket:", info.socket.clone());
    line(
        "config:",
        info.config_file
            .clone()
            .unwrap_or_else(|| "built-in defaults".into()),
    );
    line("state:", info.state_dir.clone());
    line("downloads:", info.download_dir.clone());
    line(
        "watch:",
        info.watch_dir.clone().unwrap_or_else(|| "off".into()),
    );
    line(
        "torrents:",
        format!(
            "{} ({} downloading, {} seeding), {} peers",
            s.torrents, s.downloading, s.seeding, s.peers
        ),
    );
    line(
        "rates:",
        format!("down {}, up {}", rate(s.download_rate), rate(s.upload_rate)),
    );
    let source = match &info.runtime_limits_file {
        Some(file) => {
            format!(" (set at run time, kept in {file}; the config's [limits] do not apply)")
        }
        None => String::new(),
    };
    line(
        "limits:",
        format!(
            "down {}, up {}{source}",
            limit(s.limits.download),
            limit(s.limits.upload)
        ),
    );
    line(
        "total:",
        format!("down {}, up {}", bytes(s.downloaded), bytes(s.uploaded)),
    );
    line("port:", s.listen_port.to_string());
    line(
        "dht nodes:",
        s.dht_nodes
            .map(|n| n.to_string())
            .unwrap_or_else(|| "off".into()),
    );
    let r = &s.restarts;
    line(
        "restarts:",
        format!(
            "{} peers, {} torrents, {} services",
            r.peers, r.torrents, r.services
        ),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB"],
            &[true, false],
            &[
                vec!["100".into(), "x".into()],
                vec!["2".into(), "yy".into()],
            ],
        );
        assert_eq!(t, "  A  BB\n100  x\n  2  yy\n");
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        let ih = InfoHash::from_hex(&format!("{:0<40}", "0123456789")).unwrap();
        assert_eq!(short_hash(&ih), "01234567");
        assert_eq!(truncate_to_width("abcdef", 4), "abc…");
        assert_eq!(truncate_to_width("abc", 3), "abc");
        // Wide characters count twice.
        assert_eq!(truncate_to_width("漢字漢字", 5), "漢字…");
        assert_eq!(truncate_to_width("漢字", 4), "漢字");
    }
}
