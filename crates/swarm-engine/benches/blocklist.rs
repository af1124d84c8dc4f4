//! The IP blocklist's range set (`swarm_engine::blocklist::RangeSet`) at the size of a full
//! eMule/PeerGuardian list: 300 000 IPv4 ranges (pseudo-random, some overlapping, merged at
//! build) and 20 000 IPv6 ones.
//!
//! - `build`: sorting and merging the ranges (what a reload costs besides reading the files);
//! - `lookup/v4`, `lookup/v4_mapped`, `lookup/v6`: 1 000 lookups, every other one an address
//!   inside a range, the rest pseudo-random; `lookup/empty`: the same against an empty set.
//!
//! The set's memory is printed once (heap bytes of its arrays) before the timings.
//!
//! Run: `cargo bench -p swarm-engine --bench blocklist`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use swarm_engine::blocklist::{RangeSet, RangeSetBuilder};

const V4_RANGES: usize = 300_000;
const V6_RANGES: usize = 20_000;
const LOOKUPS: u64 = 1000;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The ranges, and the first range starts of each family (addresses known to be inside).
fn builder() -> (RangeSetBuilder, Vec<u32>, Vec<u128>) {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut b = RangeSetBuilder::default();
    let (mut in4, mut in6) = (Vec::new(), Vec::new());
    for _ in 0..V4_RANGES {
        let start = rng.next() as u32;
        // Mostly /24-sized ranges, some larger, as in real lists.
        let len = (rng.next() % 4096) as u32;
        b.add_v4(start.into(), start.saturating_add(len).into());
        if in4.len() < LOOKUPS as usize {
            in4.push(start);
        }
    }
    for _ in 0..V6_RANGES {
        let start = (0x2000u128 << 112) | u128::from(rng.next()) << 64;
        b.add_v6(start.into(), (start | u128::from(u64::MAX)).into());
        if in6.len() < LOOKUPS as usize {
            in6.push(start);
        }
    }
    (b, in4, in6)
}

/// Every other address is inside a range, the rest random (mostly outside).
fn probes<T: Copy>(inside: &[T], random: impl Fn(&mut XorShift) -> T) -> Vec<T> {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    (0..LOOKUPS as usize)
        .map(|i| {
            if i % 2 == 0 {
                inside[i]
            } else {
                random(&mut rng)
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (b, in4, in6) = builder();
    let set = b.build();
    let (v4, v6) = set.counts();
    println!(
        "blocklist: {v4} IPv4 + {v6} IPv6 merged ranges from {V4_RANGES} + {V6_RANGES}: {} KiB \
         ({:.1} bytes per input range)",
        set.heap_bytes() >> 10,
        set.heap_bytes() as f64 / (V4_RANGES + V6_RANGES) as f64
    );
    let mut g = c.benchmark_group("blocklist");
    g.sample_size(20);
    g.bench_function("build/300k_v4+20k_v6", |b| {
        b.iter_batched(
            || builder().0,
            |b| black_box(b.build()),
            criterion::BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(LOOKUPS));
    let v4_probes: Vec<IpAddr> = probes(&in4, |r| r.next() as u32)
        .into_iter()
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
        .collect();
    let mapped: Vec<IpAddr> = probes(&in4, |r| r.next() as u32)
        .into_iter()
        .map(|a| IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped()))
        .collect();
    let v6_probes: Vec<IpAddr> = probes(&in6, |r| {
        (0x2000u128 << 112) | u128::from(r.next()) << 64 | u128::from(r.next())
    })
    .into_iter()
    .map(|a| IpAddr::V6(Ipv6Addr::from(a | 5)))
    .collect();
    let empty = RangeSet::default();
    for (name, set, probes) in [
        ("lookup/v4", &set, &v4_probes),
        ("lookup/v4_mapped", &set, &mapped),
        ("lookup/v6", &set, &v6_probes),
        ("lookup/empty", &empty, &v4_probes),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0u32;
                for &ip in probes.iter() {
                    n += u32::from(black_box(set).contains(black_box(ip)));
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
