//! The swarm lab's functional check: a small flash crowd on hosts with capped uplinks, each in
//! a network namespace of its own (needs root, as CI runs). The numbers (completion against the
//! fluid bound, the seed's upload) are the `swarm_lab` benchmark's business; this test only
//! shows that the lab works and that a swarmd swarm behaves as a swarm: every leecher completes
//! with correct data, the traffic went through the shaped links, and the leechers uploaded to
//! each other rather than each taking everything from the seed.

use std::time::Duration;

use swarm_integration_tests::lab_swarm::{self, Client, SwarmSpec};
use swarm_integration_tests::payload::MIB;
use swarm_integration_tests::util::TestEnv;

#[test]
fn capped_flash_crowd_completes_and_trades() {
    let env = TestEnv::new("swarm-lab-flash");
    let spec = SwarmSpec {
        payload: 4 * MIB,
        piece_exp: 16,
        seed: Client::Swarmd,
        seed_up_mbit: 16.0,
        super_seed: false,
        leechers: vec![Client::Swarmd, Client::Swarmd, Client::Libtorrent],
        leech_up_mbit: 16.0,
        leech_down_mbit: None,
        arrival_gap: Duration::ZERO,
        seed_leaves_after: None,
        timeout: Duration::from_secs(120),
    };
    let r = lab_swarm::run(&env, &spec);
    let summary = lab_swarm::describe(&r);
    for (i, l) in r.leechers.iter().enumerate() {
        assert!(
            l.done.is_some(),
            "leecher {i} ({}) did not complete: {summary:#}",
            l.client.name()
        );
        if let Err(e) = &l.verified {
            panic!("leecher {i} ({}) has wrong data: {e}", l.client.name());
        }
    }
    // Every byte a leecher has came through some host's capped uplink; the seed's alone carried
    // at least one copy of the payload plus framing.
    assert!(
        r.seed_uplink_bytes >= spec.payload,
        "the seed's shaped uplink carried {} bytes, less than the payload: {summary:#}",
        r.seed_uplink_bytes
    );
    assert!(
        r.seed_uploaded <= r.seed_uplink_bytes,
        "the seed counts more payload uploaded ({}) than its link carried ({}): {summary:#}",
        r.seed_uploaded,
        r.seed_uplink_bytes
    );
    let traded: u64 = r.leechers.iter().map(|l| l.uploaded).sum();
    assert!(
        traded > 0,
        "the leechers uploaded nothing to each other: {summary:#}"
    );
}
