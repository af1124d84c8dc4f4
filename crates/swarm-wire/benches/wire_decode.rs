//! Decoding speed of the peer wire codec on the download path: streams of 16 KiB `Piece`
//! frames interleaved with the small `Have`/`Request` frames that accompany them.
//!
//! - `whole_buffer`: every frame already in one buffer (pure decode cost).
//! - `socket_reads`: the same stream fed the way `FramedRead` does, in 64 KiB reads, so the
//!   cost of growing the buffer for frames split across reads is included.
//! - `small_frames`: only `Have` and `Request`, to see the per-message overhead.
//!
//! Run: `cargo bench -p swarm-wire --bench wire_decode`.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use swarm_wire::peer::{BlockRef, Message, PeerCodec, BLOCK_SIZE};
use tokio_util::codec::{Decoder, Encoder};

const MAX_FRAME: u32 = BLOCK_SIZE + 1024;

fn encode(msgs: &[Message]) -> Vec<u8> {
    let mut codec = PeerCodec::new(MAX_FRAME);
    let mut wire = BytesMut::new();
    for m in msgs {
        codec.encode(m, &mut wire).expect("encodes");
    }
    wire.to_vec()
}

/// 256 blocks (4 MiB), each followed by a Have and preceded by a Request, like a busy peer.
fn download_stream() -> (Vec<u8>, usize) {
    let data = Bytes::from(vec![0x5A; BLOCK_SIZE as usize]);
    let mut msgs = Vec::new();
    for i in 0..256u32 {
        msgs.push(Message::Request(BlockRef {
            index: i / 16,
            begin: (i % 16) * BLOCK_SIZE,
            length: BLOCK_SIZE,
        }));
        msgs.push(Message::Piece {
            index: i / 16,
            begin: (i % 16) * BLOCK_SIZE,
            data: data.clone(),
        });
        msgs.push(Message::Have(i));
    }
    (encode(&msgs), msgs.len())
}

fn small_stream() -> (Vec<u8>, usize) {
    let msgs: Vec<Message> = (0..10_000u32)
        .map(|i| {
            if i % 2 == 0 {
                Message::Have(i)
            } else {
                Message::Request(BlockRef {
                    index: i,
                    begin: 0,
                    length: BLOCK_SIZE,
                })
            }
        })
        .collect();
    (encode(&msgs), msgs.len())
}

fn decode_all(buf: &mut BytesMut) -> usize {
    let mut codec = PeerCodec::new(MAX_FRAME);
    let mut n = 0;
    while let Some(msg) = codec.decode(buf).expect("valid stream") {
        black_box(msg);
        n += 1;
    }
    n
}

/// The `FramedRead` loop: reserve one byte, read up to the spare capacity (at most 64 KiB),
/// decode until the codec asks for more.
fn decode_in_reads(wire: &[u8]) -> usize {
    let mut codec = PeerCodec::new(MAX_FRAME);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut rest = wire;
    let mut n = 0;
    loop {
        while let Some(msg) = codec.decode(&mut buf).expect("valid stream") {
            black_box(msg);
            n += 1;
        }
        if rest.is_empty() {
            return n;
        }
        buf.reserve(1);
        let take = (buf.capacity() - buf.len()).min(64 * 1024).min(rest.len());
        let (now, later) = rest.split_at(take);
        buf.extend_from_slice(now);
        rest = later;
    }
}

fn bench(c: &mut Criterion) {
    let (download, download_msgs) = download_stream();
    let (small, small_msgs) = small_stream();

    let mut group = c.benchmark_group("wire_decode");
    group.throughput(Throughput::Bytes(download.len() as u64));
    group.bench_function("whole_buffer", |b| {
        b.iter_batched(
            || BytesMut::from(&download[..]),
            |mut buf| assert_eq!(decode_all(&mut buf), download_msgs),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("socket_reads", |b| {
        b.iter(|| assert_eq!(decode_in_reads(black_box(&download)), download_msgs))
    });
    group.throughput(Throughput::Elements(small_msgs as u64));
    group.bench_function("small_frames", |b| {
        b.iter_batched(
            || BytesMut::from(&small[..]),
            |mut buf| assert_eq!(decode_all(&mut buf), small_msgs),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
