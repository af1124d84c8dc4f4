//! The alternative speed limits ("turtle mode", `[alt_speed]`, docs/operations.md): switched by
//! `swarmctl alt-speed`, by transmission's RPC (Debian's `transmission-remote`) and by their
//! schedule; while on, the rate limiter holds their rates (`stats`), and the normal limits come
//! back when they go off. What was set at run time survives a restart.

use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::http_rpc::{call, remote, rpc_section, session_id};
use swarm_integration_tests::prelude::*;

/// The limits the rate limiter holds now.
fn in_force(d: &Daemon) -> Value {
    d.ctl_json(&["stats"])["session"]["limits"].clone()
}

/// Waits (bounded) until the rate limiter holds `want`: it takes new limits on its own mailbox,
/// a moment after the root answered.
fn expect_in_force(d: &Daemon, want: &Value) {
    wait_until(
        "the limits in force",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || in_force(d) == *want,
    )
    .unwrap_or_else(|e| panic!("{e}: {} in force, {want} expected", in_force(d)));
}

/// [`expect_in_force`] of the download limit alone.
fn expect_download(d: &Daemon, want: u64) {
    wait_until(
        "the download limit in force",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || in_force(d)["download"] == want,
    )
    .unwrap_or_else(|e| panic!("{e}: {} in force, download {want} expected", in_force(d)));
}

/// The local time `minutes` from now as HH:MM, as the daemon reads the clock.
fn clock_in(minutes: i64) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + minutes * 60;
    // SAFETY: plain data, valid when zeroed; localtime_r writes only into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    assert!(!unsafe { libc::localtime_r(&(t as libc::time_t), &mut tm) }.is_null());
    format!("{:02}:{:02}", tm.tm_hour, tm.tm_min)
}

#[test]
fn alternative_limits_switch_by_hand_by_rpc_and_by_schedule() {
    let env = TestEnv::new("alt-speed");
    let rpc_port = free_tcp_port();
    let extra = format!(
        "[limits]\ndownload_kib_s = 4000\nupload_kib_s = 0\n\n[alt_speed]\ndownload_kib_s = 100\n\
         upload_kib_s = 64\n\n{}",
        rpc_section(rpc_port, "")
    );
    let dirs = DaemonConfig {
        extra: &extra,
        ..DaemonConfig::fast("alt_speed")
    }
    .write(&env, free_tcp_port());
    let normal = json!({"download": 4000 * KIB, "upload": null});
    let alt = json!({"download": 100 * KIB, "upload": 64 * KIB});
    let d = Daemon::start(&env, &dirs, "daemon");
    expect_in_force(&d, &normal);
    let out = d.ctl_ok(&["alt-speed"]);
    assert!(out.contains("alternative limits: off"), "{out}");

    // By hand: on, the limiter holds the alternative rates; `limits` keeps showing the normal
    // ones, and a change of those meanwhile is what comes back.
    let shown = d.ctl_json(&["alt-speed", "on"]);
    assert_eq!(shown["enabled"], true);
    expect_in_force(&d, &alt);
    assert_eq!(d.ctl_json(&["limits"]), normal);
    d.ctl_ok(&["limits", "--down", "2M"]);
    // The normal limits change behind the alternative ones.
    expect_in_force(&d, &alt);
    d.ctl_ok(&["alt-speed", "off"]);
    expect_download(&d, 2048 * KIB);

    // transmission-remote: on, new rates, off; session-get shows each.
    let sid = session_id(rpc_port);
    remote(rpc_port, &["--alt-speed", "--alt-speed-downlimit", "300"]);
    let s = &call(rpc_port, &sid, "session-get", json!({}))["arguments"];
    assert_eq!(
        (s["alt-speed-enabled"].clone(), s["alt-speed-down"].clone()),
        (json!(true), json!(300))
    );
    assert_eq!(
        s["speed-limit-down"],
        2048 * KIB / 1000,
        "the normal limit, not the one in force"
    );
    expect_download(&d, 300_000);
    remote(rpc_port, &["--no-alt-speed"]);
    expect_download(&d, 2048 * KIB);
    let bad = call(
        rpc_port,
        &sid,
        "session-set",
        json!({"alt-speed-time-begin": 1440}),
    );
    assert!(
        bad["result"]
            .as_str()
            .unwrap()
            .contains("not a time of day"),
        "{bad}"
    );

    // The schedule: a window open now turns them on at once; one that is not, off.
    let (begin, end) = (clock_in(-2), clock_in(30));
    let shown = d.ctl_json(&[
        "alt-speed",
        "--schedule",
        "on",
        "--begin",
        &begin,
        "--end",
        &end,
        "--days",
        "all",
    ]);
    assert_eq!(shown["enabled"], true, "inside the window: {shown}");
    expect_download(&d, 300_000);
    let (begin, end) = (clock_in(60), clock_in(90));
    let shown = d.ctl_json(&["alt-speed", "--begin", &begin, "--end", &end]);
    assert_eq!(shown["enabled"], false, "outside the window: {shown}");
    d.ctl_exit(&["alt-speed", "--days", "someday"], 2);

    // Kept across a restart: on, with its rates and schedule.
    d.ctl_ok(&["alt-speed", "on"]);
    drop(d);
    let d = Daemon::start(&env, &dirs, "daemon-again");
    let shown = d.ctl_json(&["alt-speed"]);
    assert_eq!(
        (
            shown["enabled"].clone(),
            shown["download"].clone(),
            shown["schedule"]["enabled"].clone()
        ),
        (json!(true), json!(300_000), json!(true))
    );
    expect_download(&d, 300_000);
    let out = d.ctl_ok(&["alt-speed"]);
    assert!(
        out.contains(&format!("schedule: on, {begin} to {end}, all")),
        "{out}"
    );
}
