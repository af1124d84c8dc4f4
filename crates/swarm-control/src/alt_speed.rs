//! The alternative speed limits in the control protocol: the params of
//! `session.set_alt_speed`, and the spellings of a schedule that people write (`09:00`,
//! `weekdays`, `mon,wed`) — shared by the daemon's config, `swarmctl` and the docs.

use serde::{Deserialize, Serialize};
use swarm_model::{AltSchedule, AltSpeed, ALL_DAYS, MINUTES_PER_DAY};

use crate::methods::{check_rate_limit, pick};

/// Params of `session.set_alt_speed`: each omitted field is unchanged. Rates in bytes/s, 0 is
/// no limit. The result is the alternative settings as now in force ([`AltSpeed`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAltSpeedParams {
    /// On or off now (until the schedule's next edge, if it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<bool>,
    /// Days as [`AltSchedule::days`] (Sunday 1 … Saturday 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u8>,
    /// Minutes after local midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begin_minute: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_minute: Option<u16>,
}

impl SetAltSpeedParams {
    /// The settings after these changes; what no setting can mean is refused, named.
    pub fn apply_to(&self, current: AltSpeed) -> Result<AltSpeed, String> {
        for (dir, r) in [("download", self.download), ("upload", self.upload)] {
            if let Some(r) = r {
                check_rate_limit(&format!("alternative {dir}"), r)?;
            }
        }
        for (what, m) in [("begin", self.begin_minute), ("end", self.end_minute)] {
            if m.is_some_and(|m| m >= MINUTES_PER_DAY) {
                return Err(format!(
                    "schedule {what} {} is not a time of day: give 0 to {} minutes after midnight",
                    m.unwrap_or_default(),
                    MINUTES_PER_DAY - 1
                ));
            }
        }
        let s = current.schedule;
        let schedule = AltSchedule {
            enabled: self.schedule.unwrap_or(s.enabled),
            days: self.days.unwrap_or(s.days),
            begin_minute: self.begin_minute.unwrap_or(s.begin_minute),
            end_minute: self.end_minute.unwrap_or(s.end_minute),
        };
        check_days(schedule.days)?;
        Ok(AltSpeed {
            download: pick(self.download, current.download),
            upload: pick(self.upload, current.upload),
            enabled: self.enabled.unwrap_or(current.enabled),
            schedule,
        })
    }

    pub fn is_query(&self) -> bool {
        *self == SetAltSpeedParams::default()
    }
}

fn check_days(days: u8) -> Result<(), String> {
    if days == 0 || days > ALL_DAYS {
        return Err(format!(
            "schedule days {days} is not a set of days: give 1 (Sunday) to 127 (every day)"
        ));
    }
    Ok(())
}

const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Reads `HH:MM` (24-hour) as minutes after midnight.
pub fn parse_clock(s: &str) -> Result<u16, String> {
    let bad = || format!("{s:?} is not a time of day: expected HH:MM, e.g. 09:00 or 23:30");
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h >= 24 || m >= 60 || s.trim().len() > 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

pub fn format_clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Reads days: names (`mon`, `tuesday`…), `weekdays`, `weekend` and `all`, joined by commas,
/// as the mask of [`AltSchedule::days`].
pub fn parse_days<S: AsRef<str>>(items: &[S]) -> Result<u8, String> {
    let mut mask = 0u8;
    for item in items {
        for word in item.as_ref().split(',') {
            let w = word.trim().to_ascii_lowercase();
            mask |= match w.as_str() {
                "all" | "every day" | "daily" => ALL_DAYS,
                "weekdays" => 0b011_1110,
                "weekend" | "weekends" => 0b100_0001,
                _ => match DAY_NAMES
                    .iter()
                    .position(|d| w.len() >= 3 && d.starts_with(&w[..3]) && is_day_name(&w))
                {
                    Some(i) => 1 << i,
                    None => {
                        return Err(format!(
                            "{word:?} is not a day: give mon … sun, weekdays, weekend or all"
                        ))
                    }
                },
            };
        }
    }
    check_days(mask)?;
    Ok(mask)
}

fn is_day_name(w: &str) -> bool {
    const FULL: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    DAY_NAMES.contains(&w) || FULL.contains(&w)
}

/// The days of a mask as people write them: `all`, `weekdays`, `weekend`, or names.
pub fn format_days(days: u8) -> String {
    match days & ALL_DAYS {
        ALL_DAYS => "all".into(),
        0b011_1110 => "weekdays".into(),
        0b100_0001 => "weekend".into(),
        m => (0..7)
            .filter(|i| m & (1 << i) != 0)
            .map(|i| DAY_NAMES[i])
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_and_days_read_and_print() {
        assert_eq!(parse_clock("09:00"), Ok(540));
        assert_eq!(parse_clock("23:59"), Ok(1439));
        assert_eq!(format_clock(1439), "23:59");
        for bad in ["24:00", "9", "09:60", "-1:00", "09:00:00", "nine"] {
            assert!(parse_clock(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_days(&["weekdays"]), Ok(62));
        assert_eq!(parse_days(&["sat,sun"]), Ok(65));
        assert_eq!(parse_days(&["Monday", "wed"]), Ok(2 | 8));
        assert_eq!(parse_days(&["all"]), Ok(127));
        assert!(parse_days(&["mo"]).is_err());
        assert!(parse_days(&["monkey"]).is_err());
        assert!(parse_days::<&str>(&[]).is_err(), "no day at all");
        assert_eq!(format_days(62), "weekdays");
        assert_eq!(format_days(2 | 8), "mon,wed");
        assert_eq!(parse_days(&[format_days(2 | 8)]), Ok(2 | 8));
    }

    #[test]
    fn changes_apply_and_nonsense_is_refused() {
        let now = AltSpeed::default();
        let p = SetAltSpeedParams {
            enabled: Some(true),
            download: Some(100 * 1024),
            schedule: Some(true),
            begin_minute: Some(22 * 60),
            end_minute: Some(6 * 60),
            ..Default::default()
        };
        let after = p.apply_to(now).unwrap();
        assert!(after.enabled && after.schedule.enabled);
        assert_eq!((after.download, after.upload), (Some(100 * 1024), None));
        assert_eq!(after.schedule.days, ALL_DAYS, "unchanged");
        let lifted = SetAltSpeedParams {
            download: Some(0),
            ..Default::default()
        };
        assert_eq!(lifted.apply_to(after).unwrap().download, None);
        for bad in [
            SetAltSpeedParams {
                begin_minute: Some(1440),
                ..Default::default()
            },
            SetAltSpeedParams {
                days: Some(0),
                ..Default::default()
            },
            SetAltSpeedParams {
                upload: Some(5),
                ..Default::default()
            },
        ] {
            assert!(bad.apply_to(now).is_err(), "{bad:?}");
        }
    }
}
