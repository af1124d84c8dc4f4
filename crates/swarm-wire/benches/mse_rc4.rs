//! Speed of MSE's RC4 (`swarm_wire::mse::Cipher`), the whole CPU cost of an encrypted
//! connection beyond plaintext, against RustCrypto's `rc4` crate (byte-wise keystream through
//! the `cipher` traits) that it replaced.
//!
//! - `cipher_apply`: one 256 KiB buffer (a writer batch, or a few socket reads) in place.
//! - `rc4_crate`: the same with the crate, for comparison.
//!
//! Run: `cargo bench -p swarm-wire --bench mse_rc4`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rc4::consts::U20;
use rc4::{KeyInit, Rc4, StreamCipher};
use swarm_wire::mse::Cipher;

const LEN: usize = 256 * 1024;

fn rc4(c: &mut Criterion) {
    let mut g = c.benchmark_group("mse_rc4");
    g.throughput(Throughput::Bytes(LEN as u64));
    let mut buf = vec![0x5Au8; LEN];
    let mut ours = Cipher::new([7; 20]);
    g.bench_function("cipher_apply", |b| {
        b.iter(|| ours.apply(black_box(&mut buf)))
    });
    let mut theirs = Rc4::<U20>::new(&[7u8; 20].into());
    g.bench_function("rc4_crate", |b| {
        b.iter(|| theirs.apply_keystream(black_box(&mut buf)))
    });
    g.finish();
}

criterion_group!(benches, rc4);
criterion_main!(benches);
