use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rc4::{KeyInit, StreamCipher};

use super::*;

const SKEY: [u8; 20] = [0xAB; 20];
const IA: [u8; 68] = [0x13; 68];

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Runs both sides against each other, delivering bytes `chunk` at a time; the responder knows
/// the torrents `known`. Returns both outcomes.
fn run(
    provide: u32,
    methods: Methods,
    known: &[[u8; 20]],
    chunk: usize,
    seed: u64,
) -> (Result<Established, MseError>, Result<Established, MseError>) {
    let mut r = rng(seed);
    let mut a = Initiator::new(SKEY, provide, IA, &mut r);
    let mut b = Responder::new(methods, &mut r);
    let (mut a_done, mut b_done) = (None, None);
    for _ in 0..10_000 {
        if a_done.is_some() && b_done.is_some() {
            break;
        }
        let to_b = a.take_output();
        let to_a = b.take_output();
        if b_done.is_none() {
            for piece in to_b.chunks(chunk) {
                let mut step = b.receive(piece, &mut r);
                if let Ok(Step::FindTorrent(h)) = step {
                    let found = known.iter().find(|k| req2(k) == h).copied();
                    step = b.torrent_found(found, &mut r);
                }
                match step {
                    Ok(Step::Done(e)) => b_done = Some(Ok(e)),
                    Err(e) => b_done = Some(Err(e)),
                    _ => {}
                }
            }
        }
        if a_done.is_none() {
            for piece in to_a.chunks(chunk) {
                match a.receive(piece) {
                    Ok(Step::Done(e)) => a_done = Some(Ok(e)),
                    Err(e) => a_done = Some(Err(e)),
                    _ => {}
                }
            }
        }
        if matches!(b_done, Some(Err(_))) {
            break;
        }
    }
    let a_done = a_done.unwrap_or(Err(MseError::NoSync(0)));
    (a_done, b_done.expect("the responder finished"))
}

fn rc4_pair_works(a: &mut Established, b: &mut Established) {
    let (
        Stream::Rc4 {
            send: a_send,
            recv: a_recv,
        },
        Stream::Rc4 {
            send: b_send,
            recv: b_recv,
        },
    ) = (&mut a.stream, &mut b.stream)
    else {
        panic!("both sides should be on RC4");
    };
    let mut msg = b"interested".to_vec();
    a_send.apply(&mut msg);
    assert_ne!(msg, b"interested");
    b_recv.apply(&mut msg);
    assert_eq!(msg, b"interested");
    let mut msg = b"unchoke".to_vec();
    b_send.apply(&mut msg);
    a_recv.apply(&mut msg);
    assert_eq!(msg, b"unchoke");
}

#[test]
fn both_sides_agree_on_rc4_whatever_the_chunking() {
    for (chunk, seed) in [(1, 1), (7, 2), (100, 3), (4096, 4)] {
        let methods = Policy::Prefer.methods().unwrap();
        let (a, b) = run(
            CRYPTO_RC4 | CRYPTO_PLAINTEXT,
            methods,
            &[[1; 20], SKEY],
            chunk,
            seed,
        );
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        assert_eq!(b.skey, SKEY);
        assert_eq!(b.received, IA, "the responder gets the initial payload");
        assert!(a.received.is_empty());
        rc4_pair_works(&mut a, &mut b);
    }
}

#[test]
fn the_responder_policy_chooses_among_what_is_provided() {
    let cases = [
        (
            CRYPTO_RC4 | CRYPTO_PLAINTEXT,
            Policy::Allow,
            CRYPTO_PLAINTEXT,
        ),
        (CRYPTO_RC4 | CRYPTO_PLAINTEXT, Policy::Require, CRYPTO_RC4),
        (CRYPTO_RC4, Policy::Allow, CRYPTO_RC4),
        (CRYPTO_PLAINTEXT, Policy::Prefer, CRYPTO_PLAINTEXT),
    ];
    for (provide, policy, expected) in cases {
        let (a, b) = run(provide, policy.methods().unwrap(), &[SKEY], 50, 9);
        let (a, b) = (a.unwrap(), b.unwrap());
        for side in [&a, &b] {
            let got = match side.stream {
                Stream::Plaintext => CRYPTO_PLAINTEXT,
                Stream::Rc4 { .. } => CRYPTO_RC4,
            };
            assert_eq!(got, expected, "{provide:#x} to {policy}");
        }
        assert_eq!(
            b.received, IA,
            "IA is encrypted even when plaintext follows"
        );
    }
}

#[test]
fn no_common_method_is_refused() {
    let (_, b) = run(
        CRYPTO_PLAINTEXT,
        Policy::Require.methods().unwrap(),
        &[SKEY],
        50,
        5,
    );
    assert_eq!(b.unwrap_err(), MseError::NoCommonMethod(CRYPTO_PLAINTEXT));
}

#[test]
fn an_unknown_torrent_is_refused() {
    let (_, b) = run(
        CRYPTO_RC4,
        Policy::Prefer.methods().unwrap(),
        &[[1; 20]],
        50,
        6,
    );
    assert_eq!(b.unwrap_err(), MseError::UnknownTorrent);
}

/// A responder that answers with the wrong info-hash derives the wrong keys: VC decrypts to
/// garbage.
#[test]
fn a_wrong_key_fails_verification() {
    let mut r = rng(7);
    let mut a = Initiator::new(SKEY, CRYPTO_RC4, IA, &mut r);
    let mut b = Responder::new(Policy::Prefer.methods().unwrap(), &mut r);
    let ya = a.take_output();
    assert!(matches!(b.receive(&ya, &mut r), Ok(Step::NeedMore)));
    let yb = b.take_output();
    assert!(matches!(a.receive(&yb), Ok(Step::NeedMore)));
    let step3 = a.take_output();
    assert!(matches!(
        b.receive(&step3, &mut r),
        Ok(Step::FindTorrent(_))
    ));
    let wrong = b.torrent_found(Some([2; 20]), &mut r);
    assert_eq!(wrong.unwrap_err(), MseError::BadVerification);
}

/// The responder reads a step 3 built here by hand from the spec's formulas (an independent
/// construction with the raw `rc4` crate), so both sides cannot share one mistake.
#[test]
fn the_responder_understands_a_step_3_built_from_the_spec() {
    let mut r = rng(8);
    let mut b = Responder::new(Policy::Prefer.methods().unwrap(), &mut r);
    let a_keys = KeyPair::new([0x42; 20]);
    let mut first = a_keys.public.to_vec();
    first.extend([0xEE; 33]); // PadA
    assert!(matches!(b.receive(&first, &mut r), Ok(Step::NeedMore)));
    let reply = b.take_output();
    let mut yb = [0u8; KEY_LEN];
    yb.copy_from_slice(&reply[..KEY_LEN]);
    let s = a_keys.shared_secret(&yb).unwrap();
    let sha = |parts: &[&[u8]]| {
        let mut h = sha1_smol::Sha1::new();
        parts.iter().for_each(|p| h.update(p));
        h.digest().bytes()
    };
    let mut step3 = sha(&[b"req1", &s]).to_vec();
    let (r2, r3) = (sha(&[b"req2", &SKEY]), sha(&[b"req3", &s]));
    step3.extend((0..20).map(|i| r2[i] ^ r3[i]));
    let mut key_a = rc4::Rc4::<rc4::consts::U20>::new(&sha(&[b"keyA", &s, &SKEY]).into());
    key_a.apply_keystream(&mut [0u8; 1024]);
    let mut enc = vec![0u8; 8];
    enc.extend(2u32.to_be_bytes()); // crypto_provide: RC4
    enc.extend(3u16.to_be_bytes()); // len(PadC)
    enc.extend([0, 0, 0]);
    enc.extend(5u16.to_be_bytes()); // len(IA)
    enc.extend(b"hello");
    enc.extend(b" world"); // payload after IA, same stream
    key_a.apply_keystream(&mut enc);
    step3.extend(enc);
    let step = b.receive(&step3, &mut r).unwrap();
    let Step::FindTorrent(h) = step else {
        panic!("expected a torrent lookup, got {step:?}")
    };
    assert_eq!(h, r2);
    let Step::Done(done) = b.torrent_found(Some(SKEY), &mut r).unwrap() else {
        panic!("the handshake should be done");
    };
    assert_eq!(done.received, b"hello world");
    // Step 4, decrypted with keyB by hand: VC, crypto_select = RC4.
    let mut key_b = rc4::Rc4::<rc4::consts::U20>::new(&sha(&[b"keyB", &s, &SKEY]).into());
    key_b.apply_keystream(&mut [0u8; 1024]);
    let mut step4 = b.take_output();
    key_b.apply_keystream(&mut step4);
    assert_eq!(step4[..8], [0; 8]);
    assert_eq!(step4[8..12], 2u32.to_be_bytes());
    assert_eq!(step4.len(), 14 + u16_at(&step4[12..14]));
}

/// A peer that sends 96 bytes and then garbage without the marker is refused once the spec's
/// bound has passed, having buffered no more than that.
#[test]
fn no_marker_within_the_bound_is_refused() {
    let mut r = rng(10);
    let mut b = Responder::new(Policy::Prefer.methods().unwrap(), &mut r);
    let garbage = vec![0x5A; KEY_LEN + MAX_PAD + 19];
    assert!(matches!(b.receive(&garbage, &mut r), Ok(Step::NeedMore)));
    assert!(matches!(
        b.receive(&[0x5A], &mut r),
        Err(MseError::NoSync(_))
    ));

    let mut a = Initiator::new(SKEY, CRYPTO_RC4, IA, &mut r);
    let yb = KeyPair::new([3; 20]).public;
    assert!(matches!(a.receive(&yb), Ok(Step::NeedMore)));
    assert!(matches!(
        a.receive(&[0x77; MAX_PAD + 8]),
        Err(MseError::NoSync(_))
    ));
}

#[test]
fn degenerate_keys_are_refused() {
    let mut r = rng(11);
    let mut b = Responder::new(Policy::Prefer.methods().unwrap(), &mut r);
    assert_eq!(
        b.receive(&[0; KEY_LEN], &mut r).unwrap_err(),
        MseError::BadPublicKey
    );
}

#[test]
fn policies_parse_and_print() {
    for p in Policy::ALL {
        assert_eq!(p.as_str().parse::<Policy>(), Ok(p));
    }
    assert!("forced".parse::<Policy>().unwrap_err().contains("forced"));
    assert_eq!(Policy::default(), Policy::Prefer);
}

proptest! {
    #![proptest_config(crate::proptest_config())]

    /// Whatever arrives, the responder never panics, never asks twice, and what it holds stays
    /// within the handshake's bound.
    #[test]
    fn hostile_bytes_never_panic(chunks in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..700), 0..8)) {
        let mut r = rng(12);
        let mut b = Responder::new(Policy::Prefer.methods().unwrap(), &mut r);
        for c in chunks {
            match b.receive(&c, &mut r) {
                Ok(Step::NeedMore) => {}
                Ok(Step::FindTorrent(_)) => {
                    let _ = b.torrent_found(Some(SKEY), &mut r);
                    break;
                }
                Ok(Step::Done(_)) | Err(_) => break,
            }
            prop_assert!(b.input.0.len() <= KEY_LEN + MAX_PAD + 20 + 700);
        }
    }
}
