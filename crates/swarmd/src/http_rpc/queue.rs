//! The queue and the seeding limits over transmission's RPC: `queue-move-top/up/down/bottom`,
//! `torrent-set`'s `queuePosition`, `seedRatioLimit`/`seedRatioMode`,
//! `seedIdleLimit`/`seedIdleMode`, and `session-get`/`session-set`'s `download-queue-*`,
//! `seed-queue-*`, `queue-stalled-*`, `seedRatioLimit`/`seedRatioLimited` and
//! `idle-seeding-limit*`, translated to swarmd's one model (`QueueConfig`, `SeedingConfig`,
//! `SeedLimits`) and back.

use serde_json::{json, Map, Value};
use swarm_control::{Limit, QueueConfig, QueueMove, SeedLimits, SeedingConfig};

use super::rpc::{engine_failure, truthy, Args, Failure, Rpc};
use crate::engine::{Engine, EngineError};

/// What `session-get` shows for a setting that is off (transmission's defaults), and what
/// turning it on without a value uses.
const DOWNLOAD_QUEUE: u32 = 5;
const SEED_QUEUE: u32 = 10;
const STALLED_MINUTES: u32 = 30;
const RATIO: f64 = 2.0;
const IDLE_MINUTES: u64 = 30;

/// `session-set` keys handled here (the generic "unchangeable" check skips them).
pub const SESSION_KEYS: &[&str] = &[
    "download-queue-enabled",
    "download-queue-size",
    "seed-queue-enabled",
    "seed-queue-size",
    "queue-stalled-enabled",
    "queue-stalled-minutes",
    "seedRatioLimited",
    "seedRatioLimit",
    "idle-seeding-limit-enabled",
    "idle-seeding-limit",
];

/// `torrent-set` keys handled here.
pub const TORRENT_KEYS: &[&str] = &[
    "queuePosition",
    "seedRatioLimit",
    "seedRatioMode",
    "seedIdleLimit",
    "seedIdleMode",
];

/// `session-get`'s view of the queue and the seeding limits.
pub fn session_values(q: &QueueConfig, s: &SeedingConfig) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "download-queue-enabled": q.max_active_downloads.is_some(),
        "download-queue-size": q.max_active_downloads.unwrap_or(DOWNLOAD_QUEUE),
        "seed-queue-enabled": q.max_active_seeds.is_some(),
        "seed-queue-size": q.max_active_seeds.unwrap_or(SEED_QUEUE),
        "queue-stalled-enabled": q.stalled_minutes.is_some(),
        "queue-stalled-minutes": q.stalled_minutes.unwrap_or(STALLED_MINUTES),
        "seedRatioLimited": s.ratio_limit.is_some(),
        "seedRatioLimit": s.ratio_limit.unwrap_or(RATIO),
        "idle-seeding-limit-enabled": s.idle_minutes.is_some(),
        "idle-seeding-limit": s.idle_minutes.unwrap_or(IDLE_MINUTES),
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// transmission's `seedRatioMode`/`seedIdleMode` of a limit: 0 global, 1 own, 2 unlimited.
pub fn mode<T>(l: Limit<T>) -> i64 {
    match l {
        Limit::Global => 0,
        Limit::Own(_) => 1,
        Limit::Unlimited => 2,
    }
}

/// One "enabled + value" pair of `session-set`: `enabled` false turns the setting off, true
/// turns it on (with the value given, or the one `session-get` shows); a value alone changes a
/// setting that is on (one that is off has nowhere to keep it). Returns whether it changed.
fn toggle<T: Copy + PartialEq>(
    args: &Args,
    (enabled_key, value_key): (&str, &str),
    slot: &mut Option<T>,
    shown: T,
    parse: impl Fn(&Value) -> Option<T>,
    what: &str,
) -> Result<bool, Failure> {
    let value = match args.get(value_key) {
        None => None,
        Some(v) => Some(parse(v).ok_or_else(|| {
            Failure::new(format!("session-set: {value_key} = {v} is not {what}"))
        })?),
    };
    let new = match (args.get(enabled_key).map(truthy), value) {
        (Some(false), _) => None,
        (Some(true), v) => Some(v.unwrap_or(slot.unwrap_or(shown))),
        (None, Some(v)) if slot.is_some() => Some(v),
        (None, _) => *slot,
    };
    let changed = new != *slot;
    *slot = new;
    Ok(changed)
}

fn count(v: &Value) -> Option<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n > 0)
}

fn ratio(v: &Value) -> Option<f64> {
    v.as_f64().filter(|r| r.is_finite() && *r >= 0.0)
}

impl<E: Engine> Rpc<E> {
    /// `session-set`'s queue and seeding keys; the engine is told only if something changed.
    pub(super) async fn session_set_queue(&self, args: &Args) -> Result<(), Failure> {
        if !SESSION_KEYS.iter().any(|k| args.contains_key(*k)) {
            return Ok(());
        }
        let (mut q, mut s) = self.engine.queue_config().await.map_err(engine_failure)?;
        let a_count = "a count of 1 or more";
        let mut changed = toggle(
            args,
            ("download-queue-enabled", "download-queue-size"),
            &mut q.max_active_downloads,
            DOWNLOAD_QUEUE,
            count,
            a_count,
        )?;
        changed |= toggle(
            args,
            ("seed-queue-enabled", "seed-queue-size"),
            &mut q.max_active_seeds,
            SEED_QUEUE,
            count,
            a_count,
        )?;
        changed |= toggle(
            args,
            ("queue-stalled-enabled", "queue-stalled-minutes"),
            &mut q.stalled_minutes,
            STALLED_MINUTES,
            count,
            "a number of minutes",
        )?;
        changed |= toggle(
            args,
            ("seedRatioLimited", "seedRatioLimit"),
            &mut s.ratio_limit,
            RATIO,
            ratio,
            "a ratio of 0 or more",
        )?;
        changed |= toggle(
            args,
            ("idle-seeding-limit-enabled", "idle-seeding-limit"),
            &mut s.idle_minutes,
            IDLE_MINUTES,
            |v| v.as_u64().filter(|&n| n > 0),
            "a number of minutes",
        )?;
        if changed {
            let now = self
                .engine
                .set_queue_config(q, s)
                .await
                .map_err(engine_failure)?;
            if let Some(settings) = &self.info.settings {
                crate::control::dispatch::record_queue(settings, now);
            }
        }
        Ok(())
    }

    /// `torrent-set`'s queue and seeding keys, for one torrent.
    pub(super) async fn torrent_set_queue(
        &self,
        hash: swarm_control::InfoHash,
        args: &Args,
    ) -> Result<(), EngineError> {
        let e = &self.engine;
        if let Some(p) = args.get("queuePosition") {
            let p = p
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| {
                    EngineError::Invalid(format!("queuePosition {p} is not a place in the queue"))
                })?;
            e.queue_move(hash, QueueMove::To(p)).await?;
        }
        if !TORRENT_KEYS[1..].iter().any(|k| args.contains_key(*k)) {
            return Ok(());
        }
        let current = e.show(hash).await?.seed_limits;
        let limits = SeedLimits {
            ratio: limit(
                args,
                ("seedRatioMode", "seedRatioLimit"),
                current.ratio,
                RATIO,
                ratio,
            )?,
            idle_minutes: limit(
                args,
                ("seedIdleMode", "seedIdleLimit"),
                current.idle_minutes,
                IDLE_MINUTES,
                |v| v.as_u64(),
            )?,
            ..current
        };
        e.set_seed_limits(hash, limits).await
    }

    /// `queue-move-top/up/down/bottom`: the torrents named move together, keeping their order.
    pub(super) async fn queue_move(
        &self,
        method: &str,
        args: &Args,
    ) -> Result<Map<String, Value>, Failure> {
        let to = match method.trim_start_matches("queue-move-") {
            "top" => QueueMove::Top,
            "up" => QueueMove::Up,
            "down" => QueueMove::Down,
            "bottom" => QueueMove::Bottom,
            _ => {
                return Err(Failure::new(format!(
                    "method name not recognized: {method:?}"
                )))
            }
        };
        let mut selected = self.select(args.get("ids")).await?;
        // Top and down move the last one first, up and bottom the first one first: the group
        // keeps its order.
        selected.sort_by_key(|t| t.summary.queue_position);
        if matches!(to, QueueMove::Top | QueueMove::Down) {
            selected.reverse();
        }
        for t in selected {
            match self.engine.queue_move(t.hash, to).await {
                Ok(_) | Err(EngineError::UnknownTorrent(_)) => {}
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
}

/// One limit of `torrent-set`: its mode (0 global, 1 own, 2 unlimited) and value.
fn limit<T: Copy>(
    args: &Args,
    (mode_key, value_key): (&str, &str),
    current: Limit<T>,
    shown: T,
    parse: impl Fn(&Value) -> Option<T>,
) -> Result<Limit<T>, EngineError> {
    let value = match args.get(value_key) {
        None => None,
        Some(v) => Some(
            parse(v)
                .ok_or_else(|| EngineError::Invalid(format!("{value_key} {v} is not a limit")))?,
        ),
    };
    let own = |v: Option<T>| match (v, current) {
        (Some(v), _) | (None, Limit::Own(v)) => Limit::Own(v),
        (None, _) => Limit::Own(shown),
    };
    Ok(match args.get(mode_key).map(|m| m.as_i64()) {
        None => match (value, current) {
            (Some(v), Limit::Own(_)) => Limit::Own(v),
            _ => current,
        },
        Some(Some(0)) => Limit::Global,
        Some(Some(1)) => own(value),
        Some(Some(2)) => Limit::Unlimited,
        Some(_) => {
            return Err(EngineError::Invalid(format!(
                "{mode_key} must be 0 (global), 1 (this torrent's) or 2 (unlimited)"
            )))
        }
    })
}
