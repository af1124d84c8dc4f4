//! The rate limiter's arithmetic (`swarm_engine::token_bucket::TokenBucket`): 1 000 rounds of
//! `refill(now)` + a take of one 16 KiB block, as the rate-limiter actor does per grant.
//!
//! - `limited`: 10 MiB/s with a 256 KiB burst, time advancing 1 ms per round (some takes are
//!   partial), `take_up_to`;
//! - `limited_try_take`: the same with all-or-nothing `try_take`;
//! - `unlimited`: the no-limit fast path.
//!
//! Run: `cargo bench -p swarm-engine --bench token_bucket`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use swarm_engine::token_bucket::TokenBucket;

const ROUNDS: u64 = 1000;
const BLOCK: u64 = 16 * 1024;

fn bench(c: &mut Criterion) {
    let start = Instant::now();
    let times: Vec<Instant> = (0..ROUNDS)
        .map(|i| start + Duration::from_millis(i))
        .collect();
    let mut g = c.benchmark_group("token_bucket");
    g.throughput(Throughput::Elements(ROUNDS));
    g.bench_function("limited/refill+take_up_to", |b| {
        b.iter(|| {
            let mut tb = TokenBucket::new(Some(10 << 20), 256 << 10);
            let mut granted = 0u64;
            for &t in &times {
                // black_box: the bucket's state must be re-read every round, as in the actor.
                black_box(&mut tb).refill(t);
                granted += black_box(&mut tb).take_up_to(black_box(BLOCK));
            }
            black_box(granted)
        })
    });
    g.bench_function("limited/refill+try_take", |b| {
        b.iter(|| {
            let mut tb = TokenBucket::new(Some(10 << 20), 256 << 10);
            let mut ok = 0u32;
            for &t in &times {
                black_box(&mut tb).refill(t);
                ok += u32::from(black_box(&mut tb).try_take(black_box(BLOCK)));
            }
            black_box(ok)
        })
    });
    g.bench_function("unlimited/refill+take_up_to", |b| {
        b.iter(|| {
            let mut tb = TokenBucket::unlimited();
            let mut granted = 0u64;
            for &t in &times {
                // black_box: the bucket's state must be re-read every round, as in the actor.
                black_box(&mut tb).refill(t);
                granted += black_box(&mut tb).take_up_to(black_box(BLOCK));
            }
            black_box(granted)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
