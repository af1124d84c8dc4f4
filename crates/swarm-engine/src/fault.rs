//! Fault injection for tests (feature `fault-injection`): named points in the actors that panic
//! when the environment variable `SWARMD_FAULTS` asks them to, e.g.
//! `SWARMD_FAULTS=peer.block:0.01,disk.write:0.001` (probability per pass). Compiled to nothing
//! without the feature.

#[cfg(feature = "fault-injection")]
pub fn maybe_panic(point: &str) {
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
    for (name, p) in faults {
        if name == point && rand::random::<f64>() < *p {
            panic!("injected fault at {point}");
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn maybe_panic(_point: &str) {}
