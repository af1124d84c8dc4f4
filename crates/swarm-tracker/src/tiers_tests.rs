//! Tests of the tier list's scheduling rules (see the module docs of `tiers.rs`).

use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn list(tiers: &[&[&str]]) -> TrackerList {
    let tiers = tiers
        .iter()
        .map(|t| t.iter().map(|u| u.to_string()).collect())
        .collect();
    TrackerList::with_rng(tiers, &mut StdRng::seed_from_u64(7))
}

fn reply(interval: u64, peers: usize) -> AnnounceResponse {
    AnnounceResponse {
        interval: Duration::from_secs(interval),
        min_interval: None,
        tracker_id: None,
        complete: Some(1),
        incomplete: Some(2),
        peers: (0..peers)
            .map(|i| std::net::SocketAddr::from(([10, 0, 0, 1], 1000 + i as u16)))
            .collect(),
        warning: None,
    }
}

fn fail(url: &str) -> TrackerError {
    TrackerError::bad(url, "garbage")
}

fn order(l: &TrackerList) -> Vec<String> {
    l.status(Instant::now())
        .into_iter()
        .map(|s| s.url)
        .collect()
}

#[test]
fn shuffle_is_seedable_and_tiers_keep_their_members() {
    let tiers: &[&[&str]] = &[&["a", "b", "c", "d", "e"], &["x", "y"]];
    assert_eq!(order(&list(tiers)), order(&list(tiers)));
    let mut first: Vec<String> = order(&list(tiers))[..5].to_vec();
    first.sort();
    assert_eq!(first, ["a", "b", "c", "d", "e"]);
    // Over several seeds, the first tier does not always start with the same tracker.
    let firsts: std::collections::HashSet<String> = (0..20)
        .map(|seed| {
            let t = vec![vec!["a".to_string(), "b".into(), "c".into()]];
            order(&TrackerList::with_rng(t, &mut StdRng::seed_from_u64(seed)))[0].clone()
        })
        .collect();
    assert!(firsts.len() > 1);
}

#[test]
fn duplicates_blanks_and_empty_tiers_are_dropped() {
    let l = list(&[&["a", " ", "a"], &[], &["a", "b"]]);
    assert_eq!(l.len(), 2);
    let s = l.status(Instant::now());
    assert_eq!((s[0].url.as_str(), s[0].tier), ("a", 0));
    assert_eq!((s[1].url.as_str(), s[1].tier), ("b", 1));
}

#[test]
fn one_announce_at_a_time_then_wait_for_interval() {
    let now = Instant::now();
    let mut l = list(&[&["a"], &["b"]]);
    let (t, i, url) = l.next_due(now).unwrap();
    assert_eq!((t, i, url.as_str()), (0, 0, "a"));
    assert_eq!(l.next_due(now), None, "in flight");
    assert_eq!(l.next_wakeup(now), None);
    l.on_success("a", &reply(1800, 3), now);
    assert_eq!(l.next_due(now), None, "b stands by while a works");
    assert_eq!(l.next_wakeup(now), Some(now + Duration::from_secs(1800)));
    let later = now + Duration::from_secs(1800);
    assert_eq!(l.next_due(later).map(|d| d.2), Some("a".into()));
}

#[test]
fn failure_moves_on_and_success_moves_to_front() {
    let now = Instant::now();
    let mut l = list(&[&["a", "b", "c"]]);
    let first = l.next_due(now).unwrap().2;
    l.on_failure(&first, &fail(&first), now);
    let second = l.next_due(now).unwrap().2;
    assert_ne!(first, second);
    l.on_success(&second, &reply(600, 1), now);
    assert_eq!(order(&l)[0], second, "moved to the front of its tier");
    assert_eq!(l.next_due(now), None);
    // The failed tracker is now behind the working one: not retried while it works.
    assert_eq!(l.next_due(now + Duration::from_secs(300)), None);
    let s = l.status(now);
    let failed = s.iter().find(|t| t.url == first).unwrap();
    assert_eq!(failed.health, TrackerHealth::Failing);
    assert_eq!(failed.next_announce_in, None);
    assert!(failed.last_error.as_deref().unwrap().contains("garbage"));
}

#[test]
fn a_better_tier_is_retried_after_its_backoff() {
    let now = Instant::now();
    let mut l = list(&[&["a"], &["b"]]);
    l.next_due(now);
    l.on_failure("a", &fail("a"), now);
    assert_eq!(l.next_due(now).unwrap().2, "b");
    l.on_success("b", &reply(1800, 0), now);
    assert_eq!(l.next_due(now + Duration::from_secs(29)), None);
    assert_eq!(l.next_wakeup(now), Some(now + FIRST_RETRY));
    assert_eq!(l.next_due(now + FIRST_RETRY).unwrap().2, "a");
}

#[test]
fn backoff_doubles_and_is_capped() {
    assert_eq!(backoff(1), FIRST_RETRY);
    assert_eq!(backoff(2), FIRST_RETRY * 2);
    assert_eq!(backoff(3), FIRST_RETRY * 4);
    assert_eq!(backoff(100), MAX_BACKOFF);
    let mut now = Instant::now();
    let mut l = list(&[&["a"]]);
    for n in 1..=10u32 {
        assert_eq!(l.next_due(now).unwrap().2, "a");
        l.on_failure("a", &fail("a"), now);
        assert_eq!(l.next_wakeup(now), Some(now + backoff(n)));
        assert_eq!(l.status(now)[0].consecutive_failures, n);
        now += backoff(n);
    }
    l.next_due(now);
    l.on_success("a", &reply(100, 0), now);
    assert_eq!(l.status(now)[0].consecutive_failures, 0);
    assert_eq!(l.status(now)[0].last_error, None);
}

#[test]
fn intervals_are_clamped_and_min_interval_honoured() {
    let now = Instant::now();
    let mut l = list(&[&["a"]]);
    l.next_due(now);
    l.on_success("a", &reply(0, 0), now);
    assert_eq!(l.next_wakeup(now), Some(now + MIN_INTERVAL));
    l.next_due(now + MIN_INTERVAL);
    l.on_success("a", &reply(u32::MAX as u64, 0), now);
    assert_eq!(l.next_wakeup(now), Some(now + MAX_INTERVAL));
    let mut r = reply(60, 0);
    r.min_interval = Some(Duration::from_secs(120));
    l.reannounce_now(now);
    l.next_due(now);
    l.on_success("a", &r, now);
    assert_eq!(l.next_wakeup(now), Some(now + Duration::from_secs(120)));
    // A forced reannounce still waits for min interval.
    l.reannounce_now(now + Duration::from_secs(10));
    assert_eq!(
        l.next_wakeup(now + Duration::from_secs(10)),
        Some(now + Duration::from_secs(120))
    );
}

#[test]
fn the_configured_floor_replaces_min_interval() {
    let now = Instant::now();
    let floor = Duration::from_secs(60);
    let mut l = list(&[&["a"]]).with_min_interval(floor);
    l.next_due(now);
    // The tracker asks for 31 s, above the built-in 30 s floor: the configured 60 s wins.
    l.on_success("a", &reply(31, 0), now);
    assert_eq!(l.next_wakeup(now), Some(now + floor));
    assert!(l.next_due(now + Duration::from_secs(59)).is_none());
    assert!(l.next_due(now + floor).is_some());
    // Longer intervals are honoured, and a floor above the cap raises the cap.
    l.on_success("a", &reply(600, 0), now);
    assert_eq!(l.next_wakeup(now), Some(now + Duration::from_secs(600)));
    let huge = 3 * MAX_INTERVAL;
    let mut l = list(&[&["a"]]).with_min_interval(huge);
    l.next_due(now);
    l.on_success("a", &reply(0, 0), now);
    assert_eq!(l.next_wakeup(now), Some(now + huge));
}

#[test]
fn status_and_tracker_id() {
    let now = Instant::now();
    let mut l = list(&[&["a"], &["b"]]);
    let s = l.status(now);
    assert_eq!(s[0].health, TrackerHealth::NotContacted);
    assert_eq!(s[0].next_announce_in, Some(Duration::ZERO));
    l.next_due(now);
    assert_eq!(l.status(now)[0].health, TrackerHealth::Announcing);
    let mut r = reply(900, 4);
    r.tracker_id = Some("xyz".into());
    r.warning = Some("be nice".into());
    l.on_success("a", &r, now);
    let s = &l.status(now + Duration::from_secs(100))[0];
    assert_eq!(s.health, TrackerHealth::Working);
    assert_eq!(s.next_announce_in, Some(Duration::from_secs(800)));
    assert_eq!((s.last_peers, s.total_peers), (4, 4));
    assert_eq!((s.seeders, s.leechers), (Some(1), Some(2)));
    assert_eq!(s.last_warning.as_deref(), Some("be nice"));
    assert_eq!(l.tracker_id("a"), Some("xyz"));
    assert_eq!(l.tracker_id("b"), None);
    assert_eq!(l.announced(), vec!["a".to_string()]);
    // Unknown URLs are ignored.
    l.on_success("zzz", &r, now);
    l.on_failure("zzz", &fail("zzz"), now);
    l.on_cancelled("zzz");
    assert_eq!(l.len(), 2);
}

#[test]
fn cancelled_announce_is_no_longer_in_flight() {
    let now = Instant::now();
    let mut l = list(&[&["a"]]);
    l.next_due(now);
    assert_eq!(l.next_due(now), None);
    l.on_cancelled("a");
    assert_eq!(l.next_due(now).unwrap().2, "a");
}

#[test]
fn empty_list_is_never_due() {
    let mut l = TrackerList::new(vec![]);
    assert!(l.is_empty());
    assert_eq!(l.next_due(Instant::now()), None);
    assert_eq!(l.next_wakeup(Instant::now()), None);
}
