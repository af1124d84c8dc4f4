//! The session's speed policy: which global rate limits are in force, the normal ones or the
//! alternative ones ("turtle mode"), and the weekly schedule that switches between them. Pure:
//! the local time is an argument ([`LocalTime`]); the root reads the clock, ticks the policy and
//! hands the limits in force to the rate limiter.
//!
//! As transmission: the schedule turns the alternative limits on when its window begins and off
//! when it ends; between two edges the user's switch holds (turned off by hand during the
//! window, they stay off until the next window).

use swarm_model::{AltSchedule, AltSpeed, Limits};

/// A local wall-clock time, to the minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    /// 0 Sunday … 6 Saturday.
    pub weekday: u8,
    /// Minutes after midnight.
    pub minute: u16,
}

impl LocalTime {
    /// Now, in the process's time zone (`TZ`, else /etc/localtime).
    pub fn now() -> LocalTime {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()) as libc::time_t;
        // SAFETY: `tm` is plain data, valid when zeroed; `localtime_r` is the thread-safe form
        // and writes only into it.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
        if !ok {
            // No time zone answer: UTC is the best guess there is.
            return LocalTime {
                weekday: (((t / 86_400) + 4) % 7) as u8,
                minute: ((t % 86_400) / 60) as u16,
            };
        }
        LocalTime {
            weekday: tm.tm_wday as u8,
            minute: (tm.tm_hour * 60 + tm.tm_min) as u16,
        }
    }
}

/// Whether `at` lies in the schedule's window (its days and times; its `enabled` aside).
pub fn in_window(s: &AltSchedule, at: LocalTime) -> bool {
    let day = |d: u8| s.days & (1 << (d % 7)) != 0;
    let (b, e, m) = (s.begin_minute, s.end_minute, at.minute);
    match b.cmp(&e) {
        std::cmp::Ordering::Less => day(at.weekday) && (b..e).contains(&m),
        // Over midnight: the evening of a scheduled day, and the morning after it.
        std::cmp::Ordering::Greater => {
            (day(at.weekday) && m >= b) || (day(at.weekday + 6) && m < e)
        }
        // Begin = end: an empty window (transmission turns nothing on either).
        std::cmp::Ordering::Equal => false,
    }
}

#[derive(Debug)]
pub struct SpeedPolicy {
    normal: Limits,
    alt: AltSpeed,
    /// Whether the last tick found the schedule's window open (`None`: not ticked since the
    /// schedule was set): edges are changes of it.
    window: Option<bool>,
    /// The first tick of a policy just made (a daemon starting): a window found open turns the
    /// limits on, one found closed leaves the switch as it was kept (on by hand stays on).
    starting: bool,
}

impl SpeedPolicy {
    pub fn new(normal: Limits, alt: AltSpeed) -> Self {
        SpeedPolicy {
            normal: clean(normal),
            alt: clean_alt(alt),
            window: None,
            starting: true,
        }
    }

    /// The global limits in force.
    pub fn in_force(&self) -> Limits {
        if self.alt.enabled {
            Limits {
                download: self.alt.download,
                upload: self.alt.upload,
            }
        } else {
            self.normal
        }
    }

    pub fn normal(&self) -> Limits {
        self.normal
    }

    pub fn alt(&self) -> AltSpeed {
        self.alt
    }

    pub fn set_normal(&mut self, l: Limits) {
        self.normal = clean(l);
    }

    /// New alternative settings. A schedule that changed is judged afresh at the next tick:
    /// one whose window is open turns the limits on.
    pub fn set_alt(&mut self, alt: AltSpeed) {
        if alt.schedule != self.alt.schedule {
            self.window = None;
            self.starting = false;
        }
        self.alt = clean_alt(alt);
    }

    /// The schedule at `now`: at an edge of its window, the alternative limits follow it.
    /// Returns whether the limits in force changed.
    pub fn tick(&mut self, now: LocalTime) -> bool {
        let s = self.alt.schedule;
        if !s.enabled {
            self.window = None;
            return false;
        }
        let open = in_window(&s, now);
        if self.window == Some(open) {
            return false;
        }
        let starting = std::mem::take(&mut self.starting) && self.window.is_none();
        self.window = Some(open);
        if starting && !open {
            return false;
        }
        let before = self.in_force();
        self.alt.enabled = open;
        self.in_force() != before
    }
}

/// 0 is no limit, as everywhere in the session's limits.
fn clean(l: Limits) -> Limits {
    Limits {
        download: l.download.filter(|r| *r > 0),
        upload: l.upload.filter(|r| *r > 0),
    }
}

fn clean_alt(a: AltSpeed) -> AltSpeed {
    let l = clean(Limits {
        download: a.download,
        upload: a.upload,
    });
    AltSpeed {
        download: l.download,
        upload: l.upload,
        ..a
    }
}

#[cfg(test)]
mod tests;
