//! Fault injection for tests (feature `fault-injection`): named points in the actors that fail
//! when the environment variable `SWARMD_FAULTS` asks them to, e.g.
//! `SWARMD_FAULTS=peer.block:0.01,disk.write:0.001` (probability of a panic per pass), or
//! `root.freeze_after:5` (the root's thread blocks for good after 5 s: a frozen actor system, for
//! the watchdog test). Compiled to nothing without the feature.

/// The value given to `point` in `SWARMD_FAULTS`, if any.
#[cfg(feature = "fault-injection")]
pub fn value(point: &str) -> Option<f64> {
    use std::sync::OnceLock;
    static FAULTS: OnceLock<Vec<(String, f64)>> = OnceLock::new();
    let faults = FAULTS.get_or_init(|| {
        std::env::var("SWARMD_FAULTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|s| {
                let (name, p) = s.split_once(':')?;
                Some((name.trim().to_string(), p.trim().parse().ok()?))
            })
            .collect()
    });
    faults
        .iter()
        .find(|(name, _)| name == point)
        .map(|(_, v)| *v)
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn value(_point: &str) -> Option<f64> {
    None
}

/// Panics when `count` reaches the number configured for `point` (a fault at a known moment,
/// e.g. `peer.upload_after:200`: every peer connection crashes at its 200th block sent).
#[inline(always)]
pub fn panic_at(point: &str, count: u64) {
    if value(point).is_some_and(|n| n as u64 == count) {
        panic!("injected fault at {point}");
    }
}

/// Panics with the probability configured for `point`.
#[inline(always)]
pub fn maybe_panic(point: &str) {
    if let Some(p) = value(point) {
        if rand::random::<f64>() < p {
            panic!("injected fault at {point}");
        }
    }
}

/// An I/O error with the probability configured for `point` (a connection attempt that fails).
#[inline(always)]
pub fn maybe_fail(point: &str) -> std::io::Result<()> {
    match value(point) {
        Some(p) if rand::random::<f64>() < p => {
            Err(std::io::Error::other(format!("injected fault at {point}")))
        }
        _ => Ok(()),
    }
}
