use super::*;
use swarm_model::Limit;

fn ih(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

fn queue(downloads: Option<u32>, seeds: Option<u32>) -> Queue {
    let cfg = QueueConfig {
        max_active_downloads: downloads,
        max_active_seeds: seeds,
        max_active_total: None,
        stalled_minutes: Some(30),
    };
    Queue::new(cfg, SeedingConfig::default())
}

fn seen(downloaded: u64, uploaded: u64) -> Observed {
    Observed {
        downloaded,
        uploaded,
        wanted_bytes: 1000,
        seeding_secs: 0,
    }
}

/// Three downloads with one slot run one after another, in queue order.
#[test]
fn downloads_take_the_slots_in_queue_order() {
    let t0 = Instant::now();
    let mut q = queue(Some(1), None);
    for n in 1..=3 {
        assert!(
            q.push(ih(n), false, SeedLimits::default(), t0),
            "starts held"
        );
        q.observe(ih(n), TorrentState::QueuedDownload, seen(0, 0), t0);
    }
    let d = q.decide(t0);
    assert_eq!(d.holds, vec![(ih(1), false)]);
    q.observe(ih(1), TorrentState::Downloading, seen(10, 0), t0);
    assert!(
        q.decide(t0).holds.is_empty(),
        "nothing changes while 1 downloads"
    );
    // 1 completes: its slot goes to 2.
    q.observe(ih(1), TorrentState::Seeding, seen(1000, 0), t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(2), false)]);
}

#[test]
fn moves_reorder_and_report_every_changed_position() {
    let t0 = Instant::now();
    let mut q = queue(Some(1), None);
    for n in 1..=4 {
        q.push(ih(n), false, SeedLimits::default(), t0);
    }
    assert_eq!(
        q.move_to(ih(3), QueueMove::Top),
        Some(vec![(ih(3), 0), (ih(1), 1), (ih(2), 2)])
    );
    assert_eq!(q.move_to(ih(3), QueueMove::Up), Some(vec![]));
    assert_eq!(
        q.move_to(ih(3), QueueMove::Down),
        Some(vec![(ih(1), 0), (ih(3), 1)])
    );
    assert_eq!(
        q.move_to(ih(1), QueueMove::Bottom),
        Some(vec![(ih(3), 0), (ih(2), 1), (ih(4), 2), (ih(1), 3)])
    );
    assert_eq!(
        q.move_to(ih(3), QueueMove::To(99)).unwrap().last(),
        Some(&(ih(3), 3))
    );
    assert_eq!(q.move_to(ih(9), QueueMove::Top), None);
    assert_eq!(q.position(ih(3)), Some(3));
}

/// A torrent moved to the top goes next, before those that were ahead of it.
#[test]
fn moved_to_top_goes_next() {
    let t0 = Instant::now();
    let mut q = queue(Some(1), None);
    for n in 1..=3 {
        q.push(ih(n), false, SeedLimits::default(), t0);
        q.observe(ih(n), TorrentState::QueuedDownload, seen(0, 0), t0);
    }
    q.decide(t0);
    q.observe(ih(1), TorrentState::Downloading, seen(1, 0), t0);
    q.move_to(ih(3), QueueMove::Top);
    // The running one keeps its slot; when it is done, 3 goes before 2.
    assert!(q.decide(t0).holds.is_empty());
    q.observe(ih(1), TorrentState::Seeding, seen(1000, 0), t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(3), false)]);
}

#[test]
fn forced_torrents_run_and_take_no_slot() {
    let t0 = Instant::now();
    let mut q = queue(Some(1), None);
    assert!(
        !q.push(ih(1), true, SeedLimits::default(), t0),
        "forced: never held"
    );
    q.push(ih(2), false, SeedLimits::default(), t0);
    q.observe(ih(1), TorrentState::Downloading, seen(0, 0), t0);
    q.observe(ih(2), TorrentState::QueuedDownload, seen(0, 0), t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(2), false)]);
    // Forced off: 1 counts again, and of the two over one slot the later one waits.
    q.set_forced(ih(1), false);
    q.observe(ih(2), TorrentState::Downloading, seen(0, 0), t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(2), true)]);
}

#[test]
fn a_stalled_download_leaves_its_slot_and_keeps_running() {
    let t0 = Instant::now();
    let mut q = queue(Some(1), None);
    q.push(ih(1), false, SeedLimits::default(), t0);
    q.push(ih(2), false, SeedLimits::default(), t0);
    q.observe(ih(1), TorrentState::QueuedDownload, seen(0, 0), t0);
    q.observe(ih(2), TorrentState::QueuedDownload, seen(0, 0), t0);
    q.decide(t0);
    q.observe(ih(1), TorrentState::Downloading, seen(0, 0), t0);
    let t29 = t0 + Duration::from_secs(29 * 60);
    q.observe(ih(1), TorrentState::Downloading, seen(0, 0), t29);
    assert!(q.decide(t29).holds.is_empty());
    let t30 = t0 + Duration::from_secs(30 * 60);
    q.observe(ih(1), TorrentState::Downloading, seen(0, 0), t30);
    assert_eq!(q.decide(t30).holds, vec![(ih(2), false)], "1 stays running");
    // Data moves again: 1 counts again, and of the two over one slot the later one waits.
    q.observe(ih(1), TorrentState::Downloading, seen(5, 0), t30);
    q.observe(ih(2), TorrentState::Downloading, seen(0, 0), t30);
    assert_eq!(q.decide(t30).holds, vec![(ih(2), true)]);
}

#[test]
fn nothing_is_held_without_limits_and_seeds_have_their_own_slots() {
    let t0 = Instant::now();
    let mut q = queue(None, None);
    assert!(!q.push(ih(1), false, SeedLimits::default(), t0));
    q.observe(ih(1), TorrentState::Downloading, seen(0, 0), t0);
    assert!(q.decide(t0).holds.is_empty());

    let mut q = queue(Some(1), Some(1));
    for n in 1..=3 {
        q.push(ih(n), false, SeedLimits::default(), t0);
    }
    q.observe(ih(1), TorrentState::QueuedSeed, seen(0, 0), t0);
    q.observe(ih(2), TorrentState::QueuedSeed, seen(0, 0), t0);
    q.observe(ih(3), TorrentState::QueuedDownload, seen(0, 0), t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(1), false), (ih(3), false)]);
}

#[test]
fn the_total_limit_counts_downloads_and_seeds() {
    let t0 = Instant::now();
    let mut q = Queue::new(
        QueueConfig {
            max_active_downloads: None,
            max_active_seeds: None,
            max_active_total: Some(1),
            stalled_minutes: None,
        },
        SeedingConfig::default(),
    );
    q.push(ih(1), false, SeedLimits::default(), t0);
    q.push(ih(2), false, SeedLimits::default(), t0);
    q.observe(ih(1), TorrentState::QueuedSeed, seen(0, 0), t0);
    q.observe(ih(2), TorrentState::QueuedDownload, seen(0, 0), t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(1), false)]);
}

#[test]
fn seed_limits_follow_their_mode() {
    let global = SeedingConfig {
        ratio_limit: Some(2.0),
        ..Default::default()
    };
    let idle = Duration::ZERO;
    let own = SeedLimits::default();
    // Ratio on the downloaded bytes, or on the size when nothing was downloaded.
    assert_eq!(
        seed_limit_reached(&own, &global, seen(100, 199), idle),
        None
    );
    assert_eq!(
        seed_limit_reached(&own, &global, seen(100, 200), idle),
        Some(LimitReached::Ratio(2.0))
    );
    assert_eq!(seed_limit_reached(&own, &global, seen(0, 1999), idle), None);
    assert!(seed_limit_reached(&own, &global, seen(0, 2000), idle).is_some());
    let unlimited = SeedLimits {
        ratio: Limit::Unlimited,
        ..Default::default()
    };
    assert_eq!(
        seed_limit_reached(&unlimited, &global, seen(100, 10_000), idle),
        None
    );
    let own_ratio = SeedLimits {
        ratio: Limit::Own(0.5),
        ..Default::default()
    };
    assert!(
        seed_limit_reached(&own_ratio, &SeedingConfig::default(), seen(100, 50), idle).is_some()
    );
    // Seed time and idle time, in minutes.
    let times = SeedLimits {
        seed_time_minutes: Limit::Own(2),
        idle_minutes: Limit::Own(10),
        ..Default::default()
    };
    let mut s = seen(100, 0);
    s.seeding_secs = 119;
    assert_eq!(
        seed_limit_reached(&times, &SeedingConfig::default(), s, idle),
        None
    );
    s.seeding_secs = 120;
    assert_eq!(
        seed_limit_reached(&times, &SeedingConfig::default(), s, idle),
        Some(LimitReached::SeedTime(2))
    );
    s.seeding_secs = 0;
    assert_eq!(
        seed_limit_reached(
            &times,
            &SeedingConfig::default(),
            s,
            Duration::from_secs(600)
        ),
        Some(LimitReached::Idle(10))
    );
}

/// A limit is acted on once per seeding run, and again after the torrent seeds anew.
#[test]
fn a_reached_limit_is_reported_once_per_seeding_run() {
    let t0 = Instant::now();
    let mut q = Queue::new(
        QueueConfig {
            max_active_downloads: None,
            max_active_seeds: None,
            max_active_total: None,
            stalled_minutes: None,
        },
        SeedingConfig {
            ratio_limit: Some(1.0),
            ..Default::default()
        },
    );
    q.push(ih(1), false, SeedLimits::default(), t0);
    q.observe(ih(1), TorrentState::Seeding, seen(100, 50), t0);
    assert!(q.decide(t0).limits.is_empty());
    q.observe(ih(1), TorrentState::Seeding, seen(100, 100), t0);
    assert_eq!(q.decide(t0).limits, vec![(ih(1), LimitReached::Ratio(1.0))]);
    assert!(q.decide(t0).limits.is_empty(), "once");
    q.observe(ih(1), TorrentState::Paused, seen(100, 100), t0);
    q.decide(t0);
    q.observe(ih(1), TorrentState::Seeding, seen(100, 100), t0);
    assert_eq!(
        q.decide(t0).limits.len(),
        1,
        "resumed past its limit: paused again"
    );
}

#[test]
fn restore_order_follows_saved_positions() {
    let saved = vec![(Some(2), 'c'), (None, 'x'), (Some(0), 'a'), (Some(1), 'b')];
    assert_eq!(restore_order(saved), vec!['a', 'b', 'c', 'x']);
}

/// A torrent the root starts with a slot free runs at once: the decision does not wait for it
/// to show its wish, nor for its check to end; with no slot free it waits, and a started
/// torrent still showing `paused` keeps its wish for a moment only.
#[test]
fn a_started_torrent_is_decided_before_it_shows_its_wish() {
    let t0 = Instant::now();
    let mut q = queue(Some(1), None);
    q.push(ih(1), false, SeedLimits::default(), t0);
    q.expect(ih(1), Want::Download, t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(1), false)]);
    // Its check keeps the slot; the one started next has none.
    q.observe(ih(1), TorrentState::Checking, seen(0, 0), t0);
    q.push(ih(2), false, SeedLimits::default(), t0);
    q.expect(ih(2), Want::Download, t0);
    q.observe(ih(2), TorrentState::Checking, seen(0, 0), t0);
    assert!(q.decide(t0).holds.is_empty());
    assert!(!q.held(ih(1)) && q.held(ih(2)));
    q.observe(ih(1), TorrentState::Downloading, seen(0, 0), t0);
    // 1 pauses: 2 goes. 1 is resumed while 2 runs: it waits, though it still shows `paused`.
    q.observe(ih(1), TorrentState::Paused, seen(0, 0), t0);
    q.observe(ih(2), TorrentState::QueuedDownload, seen(0, 0), t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(1), true), (ih(2), false)]);
    q.observe(ih(2), TorrentState::Downloading, seen(0, 0), t0);
    q.expect(ih(1), Want::Download, t0);
    q.observe(ih(1), TorrentState::Paused, seen(0, 0), t0);
    assert!(q.decide(t0).holds.is_empty());
    // 2 is paused: 1, still showing `paused` a second later, takes the slot.
    let t1 = t0 + Duration::from_secs(1);
    q.observe(ih(2), TorrentState::Paused, seen(0, 0), t1);
    q.observe(ih(1), TorrentState::Paused, seen(0, 0), t1);
    assert_eq!(q.decide(t1).holds, vec![(ih(1), false), (ih(2), true)]);
    // A torrent that never shows its start loses the wish after a while.
    let later = t1 + EXPECT_FOR;
    q.observe(ih(1), TorrentState::Paused, seen(0, 0), later);
    assert_eq!(q.decide(later).holds, vec![(ih(1), true)]);
}

/// A verify keeps a running torrent's slot; a paused torrent's verify takes none.
#[test]
fn a_check_keeps_the_wish_it_interrupts() {
    let t0 = Instant::now();
    let mut q = queue(Some(1), None);
    for n in 1..=2 {
        q.push(ih(n), false, SeedLimits::default(), t0);
    }
    q.observe(ih(1), TorrentState::QueuedDownload, seen(0, 0), t0);
    q.observe(ih(2), TorrentState::Paused, seen(0, 0), t0);
    assert_eq!(q.decide(t0).holds, vec![(ih(1), false)]);
    q.observe(ih(1), TorrentState::Checking, seen(0, 0), t0);
    q.observe(ih(2), TorrentState::Checking, seen(0, 0), t0);
    assert!(q.decide(t0).holds.is_empty());
    assert!(!q.held(ih(1)) && q.held(ih(2)));
}
