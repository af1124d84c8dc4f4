//! Every decoder allocates in proportion to its input, never from a length read in it.
//!
//! A counting global allocator measures the peak of live heap bytes while one decode runs; the
//! peak must stay under a small multiple of the input size (a decoded tree costs a few dozen
//! bytes per value and every value takes at least two input bytes) plus a constant. A decoder
//! that trusted a `4294967295:` length prefix, or reserved room for a declared count, fails here.
//!
//! One `#[test]` only: the allocator is global, and a second test running on another thread
//! would pollute the measurement.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use swarm_wire::bencode::{decode, decode_dict_with_spans, encode, Dict, Limits, Value};
use swarm_wire::{Magnet, Metainfo};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::SeqCst) + n;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

fn shrink(n: usize) {
    LIVE.fetch_sub(n, Ordering::SeqCst);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as if old and new blocks lived side by side for a moment (a moving realloc).
        grow(new_size);
        let p = System.realloc(ptr, layout, new_size);
        if p.is_null() {
            shrink(new_size);
        } else {
            shrink(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak extra heap bytes while `f` runs.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst).saturating_sub(base)
}

/// Bytes of heap one input byte may justify, and the constant allowance (error strings,
/// small first allocations).
const PER_INPUT_BYTE: usize = 64;
const CONSTANT: usize = 16 << 10;
/// A magnet's `so` may expand to up to 100 000 indices: 400 KB, twice while the vector grows.
const MAGNET_CONSTANT: usize = 1 << 20;

fn check_bytes(input: &[u8]) {
    let budget = PER_INPUT_BYTE * input.len() + CONSTANT;
    let runs: [(&str, &dyn Fn()); 4] = [
        ("decode", &|| drop(decode(input, Limits::TORRENT))),
        ("decode_dict_with_spans", &|| {
            drop(decode_dict_with_spans(input, Limits::TORRENT))
        }),
        ("Metainfo::from_bytes", &|| {
            drop(Metainfo::from_bytes(input))
        }),
        ("Metainfo::from_info_bytes", &|| {
            drop(Metainfo::from_info_bytes(input, vec![]))
        }),
    ];
    for (what, run) in runs {
        let peak = peak_during(run);
        assert!(
            peak <= budget,
            "{what} used {peak} bytes for {} input bytes ({:?}…)",
            input.len(),
            String::from_utf8_lossy(input.get(..60).unwrap_or(input))
        );
    }
    if let Ok(s) = std::str::from_utf8(input) {
        let peak = peak_during(|| drop(Magnet::parse(s)));
        assert!(
            peak <= PER_INPUT_BYTE * input.len() + MAGNET_CONSTANT,
            "Magnet::parse: {peak}"
        );
    }
}

fn valid_torrent(files: usize, piece_count: usize) -> Vec<u8> {
    let mut info = Dict::new();
    let list = (0..files)
        .map(|i| {
            let mut f = Dict::new();
            f.insert("length", Value::Int(16384));
            f.insert(
                "path",
                Value::List(vec![Value::string("d"), Value::string(&format!("f{i}"))]),
            );
            Value::Dict(f)
        })
        .collect();
    info.insert("files", Value::List(list));
    info.insert("name", Value::string("n"));
    info.insert("piece length", Value::Int(16384));
    info.insert("pieces", Value::Bytes(vec![9; piece_count * 20]));
    let mut top = Dict::new();
    top.insert("announce", Value::string("http://t/a"));
    top.insert("info", Value::Dict(info));
    encode(&Value::Dict(top))
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    const STRUCTURAL: &[u8] = b"ilde0123456789:-";
    for &(at, kind, byte) in edits {
        if bytes.is_empty() {
            break;
        }
        let at = at % bytes.len();
        let pick = STRUCTURAL[usize::from(byte) % STRUCTURAL.len()];
        match kind % 4 {
            0 => bytes[at] = pick,
            1 => bytes.insert(at, pick),
            2 => {
                bytes.remove(at);
            }
            _ => bytes[at] = byte,
        }
    }
    bytes
}

#[test]
fn decoders_allocate_in_proportion_to_their_input() {
    // Hand-made worst cases.
    let flat_lists = [b"l".as_slice(), &b"le".repeat(50_000), b"e"].concat();
    let flat_dicts = [b"l".as_slice(), &b"d0:0:e".repeat(20_000), b"e"].concat();
    let flat_ints = [b"l".as_slice(), &b"i0e".repeat(50_000), b"e"].concat();
    let files = valid_torrent(2000, 2000);
    for input in [
        &b"d4:infod6:pieces4294967295:abc"[..],
        b"d4:infod6:pieces18446744073709551615:",
        b"l99999999999:",
        &[b'l'; 100_000][..],
        &[b'd'; 100_000][..],
        &flat_lists,
        &flat_dicts,
        &flat_ints,
        &files,
        b"magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&so=0-99999",
    ] {
        check_bytes(input);
    }

    // The hostile corpus.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    for entry in std::fs::read_dir(dir).expect("tests/hostile") {
        check_bytes(&std::fs::read(entry.expect("entry").path()).expect("readable"));
    }

    // Random and mutated inputs.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64u32);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..2048), |bytes| {
            check_bytes(&bytes);
            Ok(())
        })
        .expect("random bytes");
    let mut runner = TestRunner::new(config);
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8);
    runner
        .run(
            &(1usize..20, 0usize..30, edits),
            |(files, pieces, edits)| {
                check_bytes(&mutate(valid_torrent(files, pieces), &edits));
                Ok(())
            },
        )
        .expect("mutated torrents");
}
