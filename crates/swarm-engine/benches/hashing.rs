//! SHA-1 of 256 KiB pieces: `swarm_engine::hash::piece_hash` (what the disk pool runs for every
//! piece), and `sha1_smol` directly as the portable baseline. `piece_hash` is `sha1_smol` unless
//! the `fast-sha1` feature is on (RustCrypto `sha1`, SHA extensions when the CPU has them); the
//! benchmark id says which one was measured.
//!
//! Run: `cargo bench -p swarm-engine --bench hashing` and
//! `cargo bench -p swarm-engine --bench hashing --features fast-sha1`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PIECE: usize = 256 * 1024;

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..PIECE as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let imp = if cfg!(feature = "fast-sha1") {
        "sha1-fast-sha1"
    } else {
        "sha1_smol"
    };
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(PIECE as u64));
    g.bench_function(format!("piece_hash_256k/{imp}"), |b| {
        b.iter(|| swarm_engine::hash::piece_hash(black_box(&data)))
    });
    if !cfg!(feature = "fast-sha1") {
        g.bench_function("sha1_smol_direct_256k", |b| {
            b.iter(|| sha1_smol::Sha1::from(black_box(&data[..])).digest().bytes())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
