//! The commands that change one torrent's own settings: its limits (`limits TORRENT`), its
//! labels (`label`), and peers the user names (`peers add`); and the session's alternative
//! speed limits (`alt-speed`). Each is one call to the daemon,
//! which checks the values again (scripts may call it without swarmctl).

use std::collections::BTreeSet;

use swarm_control::{SetTorrentLimitsParams, TorrentSummary};

use super::{connect, exit, render, show, Common, Failure};

/// `limits TORRENT [--down R] [--up R] [--peers N] [--slots N]`: no flag shows them.
pub fn torrent_limits(params: SetTorrentLimitsParams, common: &Common) -> Result<u8, Failure> {
    params.check().map_err(Failure::usage)?;
    let limits = connect(common)?.set_torrent_limits(&params)?;
    Ok(show(common, &limits, render::torrent_limits))
}

/// The flags of `queue-settings`: each given one changes that setting, 0 lifts a limit.
pub struct QueueChange {
    pub downloads: Option<u32>,
    pub seeds: Option<u32>,
    pub total: Option<u32>,
    pub stalled: Option<u32>,
    pub ratio: Option<f64>,
    pub seed_time: Option<u64>,
    pub idle: Option<u64>,
    pub action: Option<String>,
}

/// `queue-settings [--downloads N] …`: no flag shows them. The new settings are computed here
/// from the ones in force and sent whole (the daemon checks them again).
pub fn queue_settings(change: QueueChange, common: &Common) -> Result<u8, Failure> {
    let mut client = connect(common)?;
    let now = client.queue_settings()?;
    let (mut q, mut s) = (
        now.queue.unwrap_or_default(),
        now.seeding.unwrap_or_default(),
    );
    let c = &change;
    let touched = c.downloads.is_some()
        || c.seeds.is_some()
        || c.total.is_some()
        || c.stalled.is_some()
        || c.ratio.is_some()
        || c.seed_time.is_some()
        || c.idle.is_some()
        || c.action.is_some();
    let result = if touched {
        fn set<T: PartialEq + Default + Copy>(slot: &mut Option<T>, new: Option<T>) {
            if let Some(v) = new {
                *slot = (v != T::default()).then_some(v);
            }
        }
        set(&mut q.max_active_downloads, c.downloads);
        set(&mut q.max_active_seeds, c.seeds);
        set(&mut q.max_active_total, c.total);
        set(&mut q.stalled_minutes, c.stalled);
        set(&mut s.seed_time_minutes, c.seed_time);
        set(&mut s.idle_minutes, c.idle);
        if let Some(r) = c.ratio {
            s.ratio_limit = (r > 0.0).then_some(r);
        }
        if let Some(a) = &c.action {
            s.action = match a.as_str() {
                "remove" => swarm_control::SeedAction::Remove,
                "remove-with-data" => swarm_control::SeedAction::RemoveWithData,
                _ => swarm_control::SeedAction::Pause,
            };
        }
        client.set_queue_settings(&swarm_control::QueueParams {
            queue: Some(q),
            seeding: Some(s),
        })?
    } else {
        now
    };
    Ok(show(common, &result, render::queue_settings))
}

/// `alt-speed [on|off] [--down R] [--up R] [--schedule on|off] [--begin] [--end] [--days]`:
/// no argument shows them.
pub fn alt_speed(params: swarm_control::SetAltSpeedParams, common: &Common) -> Result<u8, Failure> {
    let mut client = connect(common)?;
    let now = if params.is_query() {
        client.alt_speed()?
    } else {
        client.set_alt_speed(&params)?
    };
    Ok(show(common, &now, render::alt_speed))
}

/// `label TORRENT add|remove|set LABEL…`: the new labels are computed here from the ones the
/// daemon shows, then set as a whole.
pub fn label(
    torrent: &str,
    action: &str,
    labels: &[String],
    common: &Common,
) -> Result<u8, Failure> {
    let given = swarm_control::normalize_labels(labels).map_err(Failure::usage)?;
    if given.is_empty() && action != "set" {
        return Err(Failure::usage(format!(
            "label {action}: name at least one label"
        )));
    }
    let mut client = connect(common)?;
    let new = match action {
        "set" => given,
        _ => {
            let mut now = client.show(torrent)?.summary.labels;
            if action == "add" {
                now.extend(given);
            } else {
                now.retain(|l| !given.contains(l));
            }
            now
        }
    };
    let kept = client.set_labels(torrent, new)?;
    if common.json {
        println!(
            "{}",
            serde_json::json!({"torrent": torrent, "labels": kept})
        );
    } else if kept.is_empty() {
        println!("{torrent}: no labels");
    } else {
        println!("{torrent}: labels {}", kept.join(", "));
    }
    Ok(exit::OK)
}

/// `peers add TORRENT ADDR…`: addresses are checked here first, for a usage error before any
/// is sent.
pub fn add_peers(torrent: &str, addrs: &[String], common: &Common) -> Result<u8, Failure> {
    swarm_control::parse_peer_addrs(addrs).map_err(Failure::usage)?;
    let added = connect(common)?.add_peers(torrent, addrs.to_vec())?;
    if common.json {
        println!(
            "{}",
            serde_json::json!({"torrent": torrent, "peers": added.peers})
        );
    } else {
        println!("{torrent}: dialling {}", added.peers.join(", "));
    }
    Ok(exit::OK)
}

/// `list --label X`: the torrents that carry every label given.
pub fn with_labels(list: Vec<TorrentSummary>, labels: &[String]) -> Vec<TorrentSummary> {
    let wanted: BTreeSet<&str> = labels.iter().map(|l| l.trim()).collect();
    list.into_iter()
        .filter(|t| wanted.iter().all(|w| t.labels.iter().any(|l| l == w)))
        .collect()
}
