//! Prometheus metrics at `/metrics`, in the text exposition format (version 0.0.4): the session's
//! totals and rates, torrents by state, peers by transport and direction, supervisor restarts by
//! level of the tree, the disk queue, DHT nodes, tracker failures, and per-torrent series for at
//! most `[rpc] metrics_torrents` torrents (the busiest; labels `info_hash` and `name`).
//!
//! Costs nothing between scrapes: a scrape reads what the engine keeps anyway ([`Engine::stats`],
//! [`Engine::counters`], [`Engine::list`]: sums of what each torrent publishes on its tick, one
//! message to the root and one to the announcer); no torrent or peer is asked and nothing is
//! counted on the hot path for it. The exposition itself ([`render`]) is pure.
//!
//! Hand-written rather than with `prometheus-client`: what is exported is a snapshot of numbers
//! the engine already has, so a registry of live metric objects would only be copied into.

use std::fmt::Write;

use swarm_model::{EngineCounters, SessionStats, TorrentState, TorrentSummary};

use crate::engine::{Engine, EngineResult};

pub const PATH: &str = "/metrics";
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const STATES: [TorrentState; 9] = [
    TorrentState::FetchingMetadata,
    TorrentState::CheckingQueued,
    TorrentState::Checking,
    TorrentState::Downloading,
    TorrentState::Seeding,
    TorrentState::QueuedDownload,
    TorrentState::QueuedSeed,
    TorrentState::Paused,
    TorrentState::Error,
];

/// One scrape: the engine's numbers as the exposition text.
pub async fn scrape<E: Engine>(engine: &E, max_torrents: usize) -> EngineResult<String> {
    let stats = engine.stats().await?;
    let counters = engine.counters().await?;
    let list = engine.list().await?;
    Ok(render(&stats, &counters, list, max_torrents))
}

/// Writes families of samples; each family's HELP and TYPE once, before its samples.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(
    stats: &SessionStats,
    c: &EngineCounters,
    mut list: Vec<TorrentSummary>,
    max_torrents: usize,
) -> String {
    let mut out = Exposition(String::with_capacity(
        4096 + 600 * max_torrents.min(list.len()),
    ));
    out.family("swarmd_info", "gauge", "swarmd's version (always 1).");
    out.sample("swarmd_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);
    out.single(
        "swarmd_uptime_seconds",
        "gauge",
        "Seconds since the engine started.",
        stats.uptime_secs,
    );
    out.single(
        "swarmd_downloaded_bytes_total",
        "counter",
        "Payload bytes downloaded by the torrents present (drops when one is removed).",
        stats.downloaded,
    );
    out.single(
        "swarmd_uploaded_bytes_total",
        "counter",
        "Payload bytes uploaded by the torrents present (drops when one is removed).",
        stats.uploaded,
    );
    out.single(
        "swarmd_download_rate_bytes",
        "gauge",
        "Download rate of all torrents, bytes per second.",
        stats.download_rate,
    );
    out.single(
        "swarmd_upload_rate_bytes",
        "gauge",
        "Upload rate of all torrents, bytes per second.",
        stats.upload_rate,
    );
    out.family("swarmd_torrents", "gauge", "Torrents by state.");
    for state in STATES {
        let n = list.iter().filter(|t| t.state == state).count();
        out.sample("swarmd_torrents", &[("state", state.as_str())], n);
    }
    out.family(
        "swarmd_peers",
        "gauge",
        "Live peer connections by transport and direction.",
    );
    for (direction, all, utp) in [
        ("incoming", c.peers_incoming, c.peers_utp_incoming),
        ("outgoing", c.peers_outgoing, c.peers_utp_outgoing),
    ] {
        for (transport, n) in [("tcp", all.saturating_sub(utp)), ("utp", utp)] {
            out.sample(
                "swarmd_peers",
                &[("transport", transport), ("direction", direction)],
                n,
            );
        }
    }
    out.family(
        "swarmd_supervisor_restarts_total",
        "counter",
        "Actors restarted by their supervisor, by level of the tree.",
    );
    let r = &stats.restarts;
    for (level, n) in [
        ("peer", r.peers),
        ("torrent", r.torrents),
        ("service", r.services),
    ] {
        out.sample("swarmd_supervisor_restarts_total", &[("level", level)], n);
    }
    out.single(
        "swarmd_disk_queue_jobs",
        "gauge",
        "Disk jobs (piece writes, block reads, checks) waiting for a disk thread.",
        c.disk_queue,
    );
    out.single(
        "swarmd_disk_jobs_panicked_total",
        "counter",
        "Disk jobs that panicked (each failed alone).",
        c.disk_jobs_panicked,
    );
    if let Some(nodes) = stats.dht_nodes {
        out.single(
            "swarmd_dht_nodes",
            "gauge",
            "Nodes in the DHT routing table.",
            nodes,
        );
    }
    out.single(
        "swarmd_trackers_failing",
        "gauge",
        "Trackers (of all torrents) whose last announce failed.",
        c.trackers_failing,
    );
    out.single(
        "swarmd_tracker_announce_failures_total",
        "counter",
        "Announces that failed.",
        c.announce_failures,
    );
    out.single(
        "swarmd_blocklist_rules",
        "gauge",
        "Address ranges of the IP blocklist in force.",
        c.blocklist_rules,
    );
    out.single(
        "swarmd_peers_blocked_total",
        "counter",
        "Peer addresses the IP blocklist refused (connections, dials, addresses learnt).",
        c.peers_blocked,
    );
    // The busiest torrents, then by name: a bounded number of series however many torrents.
    list.sort_by(|a, b| {
        (b.download_rate + b.upload_rate)
            .cmp(&(a.download_rate + a.upload_rate))
            .then_with(|| a.name.cmp(&b.name))
    });
    let shown = list.len().min(max_torrents);
    out.single(
        "swarmd_metrics_torrents_omitted",
        "gauge",
        "Torrents left out of the per-torrent series ([rpc] metrics_torrents).",
        list.len() - shown,
    );
    torrent_series(&mut out, &list[..shown]);
    out.0
}

fn torrent_series(out: &mut Exposition, torrents: &[TorrentSummary]) {
    type Value = fn(&TorrentSummary) -> f64;
    let families: [(&str, &str, &str, Value); 6] = [
        (
            "swarmd_torrent_downloaded_bytes_total",
            "counter",
            "Payload bytes downloaded.",
            |t| t.downloaded as f64,
        ),
        (
            "swarmd_torrent_uploaded_bytes_total",
            "counter",
            "Payload bytes uploaded.",
            |t| t.uploaded as f64,
        ),
        (
            "swarmd_torrent_download_rate_bytes",
            "gauge",
            "Download rate, bytes per second.",
            |t| t.download_rate as f64,
        ),
        (
            "swarmd_torrent_upload_rate_bytes",
            "gauge",
            "Upload rate, bytes per second.",
            |t| t.upload_rate as f64,
        ),
        (
            "swarmd_torrent_peers",
            "gauge",
            "Live peer connections.",
            |t| f64::from(t.peers),
        ),
        (
            "swarmd_torrent_progress_ratio",
            "gauge",
            "Share of the wanted bytes present (0 to 1).",
            |t| t.progress,
        ),
    ];
    if torrents.is_empty() {
        return;
    }
    for (name, kind, help, value) in families {
        out.family(name, kind, help);
        for t in torrents {
            let hex = t.info_hash.to_hex();
            out.sample(name, &[("info_hash", &hex), ("name", &t.name)], value(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_text() {
        let stats = SessionStats {
            downloaded: 10,
            dht_nodes: Some(7),
            ..Default::default()
        };
        let c = EngineCounters {
            peers_incoming: 3,
            peers_utp_incoming: 1,
            peers_blocked: 4,
            ..Default::default()
        };
        let mut a =
            crate::fake_engine::summary(swarm_model::InfoHash([0xaa; 20]), "a \"quoted\"\nname");
        a.download_rate = 5000;
        let b = crate::fake_engine::summary(swarm_model::InfoHash([0xbb; 20]), "b");
        let text = render(&stats, &c, vec![b, a], 1);
        assert!(
            text.contains(
                "# TYPE swarmd_downloaded_bytes_total counter\nswarmd_downloaded_bytes_total 10\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("swarmd_torrents{state=\"downloading\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("swarmd_peers{transport=\"tcp\",direction=\"incoming\"} 2\n")
                && text.contains("swarmd_peers{transport=\"utp\",direction=\"incoming\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("swarmd_dht_nodes 7\n"), "{text}");
        assert!(text.contains("swarmd_peers_blocked_total 4\n"), "{text}");
        assert!(
            text.contains("swarmd_metrics_torrents_omitted 1\n"),
            "{text}"
        );
        // Only the busiest torrent, its name escaped.
        assert!(
            text.contains(&format!(
                "swarmd_torrent_peers{{info_hash=\"{}\",name=\"a \\\"quoted\\\"\\nname\"}} 3\n",
                "aa".repeat(20)
            )),
            "{text}"
        );
        assert!(!text.contains(&"bb".repeat(20)), "{text}");
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
