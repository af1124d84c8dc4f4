//! Resume records (`<state>/torrents/<info-hash>.resume`, JSON through serde_json): encoding and
//! decoding one record, as the daemon does on its resume timer, on state changes, at shutdown
//! (encode) and at start-up (decode, once per torrent).
//!
//! - `4096_pieces_1_file`: a 1 GiB torrent of 256 KiB pieces, all verified;
//! - `65536_pieces_200_files`: a 16 GiB torrent of 256 KiB pieces, half verified, 200 files.
//!
//! Throughput: bytes of JSON (encode/decode), bytes of hex (`decode_have_bitfield`).
//!
//! Run: `cargo bench -p swarm-engine --bench resume`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use swarm_engine::resume::{hex_encode, ResumeRecord};
use swarm_model::FilePriority;

fn record(pieces: usize, files: usize, have_all: bool) -> ResumeRecord {
    let bytes: Vec<u8> = (0..pieces.div_ceil(8))
        .map(|i| {
            if have_all {
                0xff
            } else {
                (i as u8).wrapping_mul(37)
            }
        })
        .collect();
    ResumeRecord {
        info_hash: "5a3c9e0f5a3c9e0f5a3c9e0f5a3c9e0f5a3c9e0f".into(),
        save_dir: PathBuf::from("/var/lib/swarmd/downloads"),
        paused: false,
        have: hex_encode(&bytes),
        files: (0..files)
            .map(|i| Some((1_000_000 + i as u64 * 4096, 1_700_000_000 + i as i64)))
            .collect(),
        priorities: vec![FilePriority::Normal; files],
        downloaded: 1 << 30,
        uploaded: 3 << 29,
        added_at: 1_700_000_000,
        completed_at: have_all.then_some(1_700_000_600),
        trackers: Vec::new(),
        super_seed: false,
        labels: Vec::new(),
        limits: Default::default(),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("resume");
    for (name, rec) in [
        ("4096_pieces_1_file", record(4096, 1, true)),
        ("65536_pieces_200_files", record(65_536, 200, false)),
    ] {
        let json = serde_json::to_vec(&rec).expect("encodes");
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| serde_json::to_vec(black_box(&rec)).unwrap())
        });
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| {
                let r: ResumeRecord = serde_json::from_slice(black_box(&json)).unwrap();
                r
            })
        });
        g.throughput(Throughput::Bytes(rec.have.len() as u64));
        g.bench_function(format!("decode_have_bitfield/{name}"), |b| {
            b.iter(|| black_box(&rec).have_bytes().unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
