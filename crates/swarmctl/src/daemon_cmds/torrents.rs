//! The commands about given torrents that take more than one call: queue places, seeding limits,
//! move storage, super-seeding, removal, file priorities.

use std::path::{Path, PathBuf};

use swarm_control::methods::names;
use swarm_control::{
    FilePriority, FilePriorityChange, Limit, MoveStorageParams, QueueMove, QueuePositionResult,
    SeedLimits, SetQueuePositionParams, SetSeedLimitsParams,
};

use super::{connect, each, exit, expand_all, render, report, show, Common, Failure};

pub(super) fn queue(to: QueueMove, torrents: &[String], common: &Common) -> Result<u8, Failure> {
    let mut client = connect(common)?;
    let torrents = expand_all(&mut client, torrents)?;
    each(&torrents, common, "torrent", |t| {
        let r: QueuePositionResult = match to {
            QueueMove::To(position) => client.call(
                names::TORRENT_SET_QUEUE_POSITION,
                &SetQueuePositionParams {
                    torrent: t.to_owned(),
                    position,
                },
            )?,
            _ => client.call(
                names::TORRENT_QUEUE_MOVE,
                &serde_json::json!({"torrent": t, "to": queue_direction(to)}),
            )?,
        };
        report(common, t, &format!("queue position {}", r.queue_position));
        Ok(())
    })
}

/// The protocol's name of a relative move.
fn queue_direction(to: QueueMove) -> &'static str {
    match to {
        QueueMove::Top => "top",
        QueueMove::Up => "up",
        QueueMove::Down => "down",
        QueueMove::Bottom | QueueMove::To(_) => "bottom",
    }
}

pub(super) fn seed_limits(
    torrent: String,
    ratio: Option<Limit<f64>>,
    seed_time: Option<Limit<u64>>,
    idle: Option<Limit<u64>>,
    common: &Common,
) -> Result<u8, Failure> {
    let mut client = connect(common)?;
    let limits: SeedLimits = if ratio.is_none() && seed_time.is_none() && idle.is_none() {
        client.show(&torrent)?.seed_limits
    } else {
        client.call(
            names::TORRENT_SET_SEED_LIMITS,
            &SetSeedLimitsParams {
                torrent: torrent.clone(),
                ratio,
                seed_time_minutes: seed_time,
                idle_minutes: idle,
            },
        )?
    };
    Ok(show(common, &limits, render::seed_limits))
}

pub(super) fn move_storage(
    torrent: &str,
    dir: &Path,
    no_move: bool,
    common: &Common,
) -> Result<u8, Failure> {
    // A relative DIR is the user's, from here: the daemon's working directory is not.
    let dir =
        std::path::absolute(dir).map_err(|e| Failure::usage(format!("{}: {e}", dir.display())))?;
    let mut client = connect(common)?;
    let _: PathBuf = client.call(
        names::TORRENT_MOVE_STORAGE,
        &MoveStorageParams {
            torrent: torrent.to_owned(),
            dir: dir.clone(),
            move_data: !no_move,
        },
    )?;
    let what = match no_move {
        false => format!("moving to {}", dir.display()),
        true => format!("looking for its data in {}", dir.display()),
    };
    report(common, torrent, &what);
    Ok(exit::OK)
}

pub(super) fn super_seed(on: bool, torrents: &[String], common: &Common) -> Result<u8, Failure> {
    let mut client = connect(common)?;
    let torrents = expand_all(&mut client, torrents)?;
    each(&torrents, common, "torrent", |t| {
        client.set_super_seed(t, on)?;
        report(
            common,
            t,
            if on {
                "super-seeding"
            } else {
                "super-seeding off"
            },
        );
        Ok(())
    })
}

pub(super) fn remove(
    torrents: &[String],
    delete_data: bool,
    common: &Common,
) -> Result<u8, Failure> {
    let mut client = connect(common)?;
    let torrents = expand_all(&mut client, torrents)?;
    each(&torrents, common, "torrent", |t| {
        client.remove(t, delete_data)?;
        let what = if delete_data {
            "removed, data deleted"
        } else {
            "removed"
        };
        report(common, t, what);
        Ok(())
    })
}

pub(super) fn files(torrent: &str, priorities: &[String], common: &Common) -> Result<u8, Failure> {
    let changes = priorities
        .iter()
        .map(|p| parse_priority(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = connect(common)?;
    let files = if changes.is_empty() {
        client.files(torrent)?
    } else {
        client.set_file_priority(torrent, changes.into_iter().flatten().collect())?
    };
    Ok(show(common, &files, |f| render::file_table(f)))
}

/// `1,3-5=skip` → changes for files 1, 3, 4 and 5.
pub(super) fn parse_priority(spec: &str) -> Result<Vec<FilePriorityChange>, Failure> {
    let bad = |why: &str| {
        Failure::usage(format!(
            "--priority {spec:?}: {why} (expected IDX=skip|low|normal|high)"
        ))
    };
    let (indices, prio) = spec.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let priority = match prio.trim().to_ascii_lowercase().as_str() {
        "skip" | "off" => FilePriority::Skip,
        "low" => FilePriority::Low,
        "normal" => FilePriority::Normal,
        "high" => FilePriority::High,
        _ => return Err(bad("unknown priority")),
    };
    let mut out = Vec::new();
    for part in indices.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>(), b.trim().parse::<u32>()),
            None => (part.parse::<u32>(), part.parse::<u32>()),
        };
        let (lo, hi) = match (lo, hi) {
            (Ok(lo), Ok(hi)) if lo <= hi => (lo, hi),
            _ => return Err(bad("bad file index or range")),
        };
        if hi - lo >= 1_000_000 {
            return Err(bad("range too large"));
        }
        out.extend((lo..=hi).map(|index| FilePriorityChange { index, priority }));
    }
    Ok(out)
}
