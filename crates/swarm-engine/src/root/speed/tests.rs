use super::*;
use swarm_model::ALL_DAYS;

const MON: u8 = 1;
const TUE: u8 = 2;
const SAT: u8 = 6;

fn at(weekday: u8, h: u16, m: u16) -> LocalTime {
    LocalTime {
        weekday,
        minute: h * 60 + m,
    }
}

fn schedule(days: u8, begin: u16, end: u16) -> AltSchedule {
    AltSchedule {
        enabled: true,
        days,
        begin_minute: begin * 60,
        end_minute: end * 60,
    }
}

fn policy(s: AltSchedule) -> SpeedPolicy {
    SpeedPolicy::new(
        Limits {
            download: Some(1000),
            upload: Some(0),
        },
        AltSpeed {
            download: Some(10),
            upload: Some(20),
            enabled: false,
            schedule: s,
        },
    )
}

#[test]
fn windows_by_day_and_over_midnight() {
    let weekdays = 0b011_1110;
    let day = schedule(weekdays, 9, 17);
    assert!(in_window(&day, at(MON, 9, 0)));
    assert!(in_window(&day, at(MON, 16, 59)));
    assert!(!in_window(&day, at(MON, 17, 0)), "the end is outside");
    assert!(!in_window(&day, at(SAT, 12, 0)), "not on Saturdays");
    // 22:00 to 06:00, Monday nights only: Monday evening and Tuesday morning.
    let night = schedule(1 << MON, 22, 6);
    assert!(in_window(&night, at(MON, 23, 0)));
    assert!(in_window(&night, at(TUE, 5, 59)));
    assert!(!in_window(&night, at(TUE, 6, 0)));
    assert!(
        !in_window(&night, at(TUE, 23, 0)),
        "Tuesday night is not scheduled"
    );
    assert!(
        !in_window(&night, at(MON, 5, 0)),
        "Sunday night is not scheduled"
    );
    // Saturday night runs into Sunday morning (day 0).
    let sat = schedule(1 << SAT, 22, 6);
    assert!(in_window(&sat, at(0, 1, 0)));
    assert!(
        !in_window(&schedule(ALL_DAYS, 9, 9), at(MON, 9, 0)),
        "empty window"
    );
}

#[test]
fn the_schedule_switches_at_its_edges_and_a_hand_holds_between() {
    let mut p = policy(schedule(ALL_DAYS, 9, 17));
    assert_eq!(p.in_force().download, Some(1000));
    assert_eq!(p.in_force().upload, None, "0 is no limit");
    assert!(!p.tick(at(MON, 8, 0)), "outside the window: off, as it was");
    assert!(p.tick(at(MON, 9, 0)), "the window opens");
    assert_eq!(
        p.in_force(),
        Limits {
            download: Some(10),
            upload: Some(20)
        }
    );
    // Turned off by hand inside the window: it stays off until the next edge.
    p.set_alt(AltSpeed {
        enabled: false,
        ..p.alt()
    });
    assert!(!p.tick(at(MON, 10, 0)));
    assert_eq!(p.in_force().download, Some(1000));
    assert!(!p.tick(at(MON, 17, 0)), "the window closes: off, as it is");
    // Turned on by hand outside: on until the next window closes.
    p.set_alt(AltSpeed {
        enabled: true,
        ..p.alt()
    });
    assert!(!p.tick(at(MON, 18, 0)));
    assert!(p.alt().enabled);
    assert!(!p.tick(at(TUE, 9, 0)), "opens: on, as it is");
    assert!(p.tick(at(TUE, 17, 0)), "closes: off");
    assert!(!p.alt().enabled);
}

#[test]
fn a_new_schedule_is_judged_at_once_and_no_schedule_never_switches() {
    let mut p = policy(AltSchedule::default());
    assert!(!p.tick(at(MON, 12, 0)), "the default schedule is off");
    p.set_alt(AltSpeed {
        schedule: schedule(ALL_DAYS, 9, 17),
        ..p.alt()
    });
    assert!(p.tick(at(MON, 12, 0)), "inside the new window: on");
    // Normal limits changed meanwhile are kept for when it turns off.
    p.set_normal(Limits {
        download: Some(5),
        upload: None,
    });
    assert_eq!(p.in_force().download, Some(10));
    p.set_alt(AltSpeed {
        schedule: AltSchedule::default(),
        enabled: false,
        ..p.alt()
    });
    assert_eq!(p.in_force().download, Some(5));
    assert!(!p.tick(at(MON, 17, 0)));
    assert_eq!(p.normal().download, Some(5));
}

/// A daemon starting inside the window turns the limits on; outside it, a switch kept on by
/// hand stays on until the next edge.
#[test]
fn a_start_inside_the_window_turns_them_on_and_outside_keeps_the_switch() {
    let mut p = policy(schedule(ALL_DAYS, 9, 17));
    assert!(p.tick(at(MON, 10, 0)), "started inside: on");
    let mut kept = SpeedPolicy::new(
        Limits::default(),
        AltSpeed {
            enabled: true,
            download: Some(10),
            upload: None,
            schedule: schedule(ALL_DAYS, 9, 17),
        },
    );
    assert!(
        !kept.tick(at(MON, 20, 0)),
        "started outside: the kept switch holds"
    );
    assert!(kept.alt().enabled);
    assert!(!kept.tick(at(TUE, 9, 0)), "the window opens: on, as it is");
    assert!(kept.tick(at(TUE, 17, 0)), "it closes: off");
}
