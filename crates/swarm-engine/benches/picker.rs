//! The piece picker over a whole simulated download: 4096 pieces of 256 KiB (16 blocks each,
//! 65 536 blocks), 8 peers, each with a request pipeline kept `DEPTH` deep the way the torrent
//! actor does (`fill_requests`: top up after every block, in batches of at least 4 unless the
//! pipeline runs low). Peers answer in turn, one block each per round, oldest request first;
//! a complete piece is verified at once. The endgame (duplicate requests) runs as in the engine;
//! duplicates that arrive late are dropped by `on_block`.
//!
//! - `all_seeds`: every peer has every piece (random first pieces, then "rarest" among equals).
//! - `partial_peers`: each peer has a pseudo-random ~60 % of the pieces (every piece has at
//!   least one source), so availability differs and rarest-first does real work.
//!
//! Throughput is in blocks. Run: `cargo bench -p swarm-engine --bench picker`.

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use swarm_engine::bitfield::Bitfield;
use swarm_engine::picker::{BlockOutcome, Picker};
use swarm_wire::peer::{BlockRef, BLOCK_SIZE};

const PIECES: u32 = 4096;
const PIECE_LEN: u32 = 256 * 1024;
const PEERS: usize = 8;
const DEPTH: usize = 64;

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn peer_bitfields(partial: bool) -> Vec<Bitfield> {
    (0..PEERS)
        .map(|p| {
            if !partial {
                return Bitfield::full(PIECES);
            }
            let mut bf = Bitfield::new(PIECES);
            for i in 0..PIECES {
                let r = splitmix((p as u64) << 32 | u64::from(i)) % 100;
                if r < 60 || i as usize % PEERS == p {
                    bf.set(i);
                }
            }
            bf
        })
        .collect()
}

/// Tops up one peer's pipeline like `Download::fill_requests`.
fn fill(
    picker: &mut Picker,
    who: usize,
    bf: &Bitfield,
    q: &mut VecDeque<BlockRef>,
    out: &mut Vec<BlockRef>,
) {
    let want = DEPTH.saturating_sub(q.len());
    if want == 0 || (want < 4 && q.len() > 4) {
        return;
    }
    out.clear();
    picker.pick(who as u64, bf, want, |r| q.contains(r), out);
    if out.is_empty() {
        // The engine checks for the endgame when a peer gets nothing.
        black_box(picker.in_endgame());
    }
    q.extend(out.iter().copied());
}

/// Runs the download to completion; returns the number of blocks received (duplicates included).
fn simulate(bfs: &[Bitfield]) -> u64 {
    let total = u64::from(PIECES) * u64::from(PIECE_LEN);
    let mut picker = Picker::new(PIECE_LEN, total, Bitfield::new(PIECES));
    for bf in bfs {
        picker.add_peer_bitfield(bf);
    }
    let mut queues: Vec<VecDeque<BlockRef>> = vec![VecDeque::with_capacity(DEPTH); PEERS];
    let mut out = Vec::with_capacity(DEPTH);
    let mut verified = 0u32;
    let mut received = 0u64;
    for (p, bf) in bfs.iter().enumerate() {
        fill(&mut picker, p, bf, &mut queues[p], &mut out);
    }
    while verified < PIECES {
        let mut progressed = false;
        for p in 0..PEERS {
            let Some(r) = queues[p].pop_front() else {
                fill(&mut picker, p, &bfs[p], &mut queues[p], &mut out);
                continue;
            };
            progressed = true;
            received += 1;
            if picker.on_block(&r) == BlockOutcome::PieceComplete {
                picker.on_piece_verified(r.index);
                verified += 1;
            }
            fill(&mut picker, p, &bfs[p], &mut queues[p], &mut out);
        }
        assert!(
            progressed || queues.iter().any(|q| !q.is_empty()) || verified == PIECES,
            "simulation stalled at {verified} pieces"
        );
    }
    received
}

fn bench(c: &mut Criterion) {
    let blocks = u64::from(PIECES) * u64::from(PIECE_LEN / BLOCK_SIZE);
    let mut g = c.benchmark_group("picker");
    g.sample_size(10);
    g.throughput(Throughput::Elements(blocks));
    for (name, partial) in [("all_seeds", false), ("partial_peers", true)] {
        let bfs = peer_bitfields(partial);
        // Sanity: the simulation completes and receives at least every block once.
        assert!(simulate(&bfs) >= blocks);
        g.bench_function(format!("whole_download_4096x256k_8peers/{name}"), |b| {
            b.iter_batched(
                || bfs.clone(),
                |bfs| black_box(simulate(&bfs)),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
