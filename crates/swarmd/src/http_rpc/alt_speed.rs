//! The alternative speed limits over transmission's RPC: `session-get`/`session-set`'s
//! `alt-speed-down`/`-up` (kB/s), `alt-speed-enabled`, and the schedule's
//! `alt-speed-time-enabled`/`-begin`/`-end` (minutes after midnight) and `-day` (Sunday 1 …
//! Saturday 64), translated to the engine's one model ([`AltSpeed`]) and back.

use serde_json::{json, Map, Value};
use swarm_control::{AltSpeed, SetAltSpeedParams};

use super::rpc::{truthy, Args, Failure, SPEED_UNIT};

/// `session-set` keys handled here.
pub const SESSION_KEYS: &[&str] = &[
    "alt-speed-down",
    "alt-speed-up",
    "alt-speed-enabled",
    "alt-speed-time-enabled",
    "alt-speed-time-begin",
    "alt-speed-time-end",
    "alt-speed-time-day",
];

/// `session-get`'s view. An unlimited alternative rate shows as 0.
pub fn session_values(a: &AltSpeed) -> Map<String, Value> {
    let kb = |b: Option<u64>| b.map_or(0, |b| b / SPEED_UNIT);
    let Value::Object(map) = json!({
        "alt-speed-down": kb(a.download),
        "alt-speed-up": kb(a.upload),
        "alt-speed-enabled": a.enabled,
        "alt-speed-time-enabled": a.schedule.enabled,
        "alt-speed-time-begin": a.schedule.begin_minute,
        "alt-speed-time-end": a.schedule.end_minute,
        "alt-speed-time-day": a.schedule.days,
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

/// The change `session-set` asks of the alternative settings, if any (`None`: no key of
/// theirs). A value of the wrong kind is refused, named.
pub fn change(args: &Args) -> Result<Option<SetAltSpeedParams>, Failure> {
    if !SESSION_KEYS.iter().any(|k| args.contains_key(*k)) {
        return Ok(None);
    }
    let number = |key: &str| -> Result<Option<u64>, Failure> {
        match args.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                Failure::new(format!("session-set: {key} = {v} is not a whole number"))
            }),
        }
    };
    let small = |key: &str| -> Result<Option<u16>, Failure> {
        number(key)?
            .map(|n| {
                u16::try_from(n)
                    .map_err(|_| Failure::new(format!("session-set: {key} = {n} is out of range")))
            })
            .transpose()
    };
    let days = small("alt-speed-time-day")?
        .map(|d| {
            u8::try_from(d).map_err(|_| {
                Failure::new(format!(
                    "session-set: alt-speed-time-day = {d} is not a set of days (1 to 127)"
                ))
            })
        })
        .transpose()?;
    Ok(Some(SetAltSpeedParams {
        enabled: args.get("alt-speed-enabled").map(truthy),
        download: number("alt-speed-down")?.map(|kb| kb.saturating_mul(SPEED_UNIT)),
        upload: number("alt-speed-up")?.map(|kb| kb.saturating_mul(SPEED_UNIT)),
        schedule: args.get("alt-speed-time-enabled").map(truthy),
        days,
        begin_minute: small("alt-speed-time-begin")?,
        end_minute: small("alt-speed-time-end")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_set_and_get() {
        let args: Args = serde_json::from_value(json!({
            "alt-speed-down": 100, "alt-speed-enabled": true, "alt-speed-time-enabled": 1,
            "alt-speed-time-begin": 1320, "alt-speed-time-end": 360, "alt-speed-time-day": 65,
        }))
        .unwrap();
        let p = change(&args).unwrap().unwrap();
        let a = p.apply_to(AltSpeed::default()).unwrap();
        let shown = session_values(&a);
        let num = |v: &Value| v.as_u64().or(v.as_bool().map(u64::from));
        for (k, v) in &args {
            assert_eq!(num(&shown[k]), num(v), "{k}");
        }
        assert_eq!(shown["alt-speed-up"], 0, "unlimited");
        let none: Args = serde_json::from_value(json!({"speed-limit-down": 5})).unwrap();
        assert!(change(&none).unwrap().is_none());
        let bad: Args = serde_json::from_value(json!({"alt-speed-time-day": 300})).unwrap();
        assert!(change(&bad).is_err());
    }
}
