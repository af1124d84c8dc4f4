//! # MSE/PE — Message Stream Encryption, the handshake as pure state machines
//!
//! The obfuscation layer most BitTorrent clients speak under the peer protocol: a Diffie-Hellman
//! exchange, then either an RC4 stream or plaintext for the rest of the connection. This module
//! holds the two sides of the handshake, [`Initiator`] (A, who dials) and [`Responder`] (B, who
//! accepted), as state machines over bytes: they take what arrived ([`Initiator::receive`]), say
//! what to send (`take_output`) and when they are done ([`Step::Done`]). No I/O, no clock: the
//! async driver in the engine reads and writes, and enforces the timeout. Randomness (keys,
//! padding) comes from the caller's generator, so tests can fix it.
//!
//! # Wire notation
//!
//! ```text
//! 1 A->B  Ya[96] PadA[0..512]
//! 2 B->A  Yb[96] PadB[0..512]
//! 3 A->B  HASH('req1',S)[20]  HASH('req2',SKEY) xor HASH('req3',S)[20]
//!         ENCRYPT(VC[8] crypto_provide:u32 len(PadC):u16 PadC len(IA):u16) ENCRYPT(IA)
//! 4 B->A  ENCRYPT(VC[8] crypto_select:u32 len(PadD):u16 PadD) ENCRYPT2(payload stream)
//! 5 A->B  ENCRYPT2(payload stream)
//!
//! Y = 2^X mod P, X a 160-bit private key, P the 768-bit prime; S = the shared secret, 96 bytes.
//! SKEY = the torrent's info-hash. VC = 8 zero bytes. HASH = SHA-1.
//! ENCRYPT = RC4, key HASH('keyA',S,SKEY) for A->B and HASH('keyB',S,SKEY) for B->A, the first
//!           1024 bytes of keystream discarded.
//! ENCRYPT2 = ENCRYPT continued when crypto_select = 0x02 (RC4), plaintext when 0x01.
//! IA = the initiator's first payload bytes (we send our BitTorrent handshake in it).
//! ```
//!
//! Synchronisation: B finds the end of PadA by searching for HASH('req1',S), A the end of PadB
//! by searching for ENCRYPT(VC); both pads are at most 512 bytes, so each search is bounded and
//! a peer that never sends the marker is refused after 96 + 512 + marker bytes. Every length
//! read from the wire is checked before anything is sized by it (pads ≤ 512, IA ≤ 65 535 by
//! its 16-bit length).

pub mod crypto;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use rand::{Rng, RngCore};

pub use crypto::{Cipher, KeyPair, KEY_LEN};

/// crypto_provide / crypto_select bit: the payload stream goes in plaintext.
pub const CRYPTO_PLAINTEXT: u32 = 0x01;
/// crypto_provide / crypto_select bit: the payload stream goes in RC4.
pub const CRYPTO_RC4: u32 = 0x02;
/// The spec's bound on every pad.
pub const MAX_PAD: usize = 512;
const VC: [u8; 8] = [0; 8];
/// VC, crypto_provide / crypto_select and the pad length: the fixed part of steps 3 and 4.
const HEADER: usize = 8 + 4 + 2;

/// Why a handshake failed; the peer it is about is named by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MseError {
    #[error("the peer's public key is degenerate (0, 1, P-1 or over P)")]
    BadPublicKey,
    #[error("no synchronisation marker within the {0} bytes the spec allows")]
    NoSync(usize),
    #[error("the verification constant is wrong (another key, or not MSE)")]
    BadVerification,
    #[error("padding of {0} bytes, over the spec's 512")]
    PadTooLong(usize),
    #[error("the peer offers crypto methods {0:#x}, none of which our policy accepts")]
    NoCommonMethod(u32),
    #[error("the peer selected crypto method {0:#x}, which we did not offer")]
    BadSelect(u32),
    #[error("no torrent here has the info-hash the peer asks for")]
    UnknownTorrent,
}

/// The encryption policy of a session (as transmission's: prefer by default).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// RC4 only: plaintext peers are refused, both ways.
    Require,
    /// Dial encrypted (offering plaintext too, RC4 preferred), retry in plaintext when the peer
    /// hangs up; accept both.
    #[default]
    Prefer,
    /// Dial in plaintext, retry encrypted when the peer hangs up; accept both, and take
    /// plaintext when an encrypting peer offers it.
    Allow,
    /// Plaintext only: MSE handshakes are refused, and never tried.
    Disable,
}

impl Policy {
    pub const ALL: [Policy; 4] = [
        Policy::Require,
        Policy::Prefer,
        Policy::Allow,
        Policy::Disable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Require => "require",
            Policy::Prefer => "prefer",
            Policy::Allow => "allow",
            Policy::Disable => "disable",
        }
    }

    /// The methods an MSE handshake may agree on; `None`: no MSE at all.
    pub fn methods(self) -> Option<Methods> {
        match self {
            Policy::Require => Some(Methods {
                allowed: CRYPTO_RC4,
                preferred: CRYPTO_RC4,
            }),
            Policy::Prefer => Some(Methods {
                allowed: CRYPTO_RC4 | CRYPTO_PLAINTEXT,
                preferred: CRYPTO_RC4,
            }),
            Policy::Allow => Some(Methods {
                allowed: CRYPTO_RC4 | CRYPTO_PLAINTEXT,
                preferred: CRYPTO_PLAINTEXT,
            }),
            Policy::Disable => None,
        }
    }

    /// Whether a plain BitTorrent handshake (no MSE) is acceptable, in or out.
    pub fn accepts_plaintext(self) -> bool {
        self != Policy::Require
    }

    /// The ways to dial a peer, in order: `true` = MSE first. The second, when there is one, is
    /// tried once if the peer closes the connection during the first.
    pub fn dial_order(self) -> &'static [bool] {
        match self {
            Policy::Require => &[true],
            Policy::Prefer => &[true, false],
            Policy::Allow => &[false, true],
            Policy::Disable => &[false],
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        Policy::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown encryption policy {s:?} (require, prefer, allow or disable)")
            })
    }
}

/// The payload-stream methods one side accepts, and the one it takes when it may choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Methods {
    pub allowed: u32,
    pub preferred: u32,
}

impl Methods {
    /// The responder's crypto_select for the initiator's crypto_provide.
    fn select(self, provide: u32) -> Result<u32, MseError> {
        let common = provide & self.allowed;
        [self.preferred, CRYPTO_RC4, CRYPTO_PLAINTEXT]
            .into_iter()
            .find(|m| common & m != 0)
            .ok_or(MseError::NoCommonMethod(provide))
    }
}

/// The payload stream after the handshake.
#[derive(Debug)]
pub enum Stream {
    Plaintext,
    /// `send` encrypts what we write, `recv` decrypts what we read.
    Rc4 {
        send: Cipher,
        recv: Cipher,
    },
}

/// A finished handshake.
#[derive(Debug)]
pub struct Established {
    pub stream: Stream,
    /// The info-hash both sides proved they know.
    pub skey: [u8; 20],
    /// Payload bytes the peer already sent, decrypted: for the responder, the initiator's IA
    /// and whatever followed it; for the initiator, whatever followed PadD.
    pub received: Vec<u8>,
}

/// What a side needs next.
#[derive(Debug)]
pub enum Step {
    /// More bytes from the peer (after sending `take_output`).
    NeedMore,
    /// Responder only: which torrent has this `HASH('req2', info-hash)`? Answer with
    /// [`Responder::torrent_found`].
    FindTorrent([u8; 20]),
    Done(Established),
}

/// Bytes received and not yet consumed.
#[derive(Default)]
struct Input(Vec<u8>);

impl Input {
    /// Takes the first `n` bytes, if they are there.
    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        (self.0.len() >= n).then(|| self.0.drain(..n).collect())
    }

    /// Finds `marker` starting within the first `MAX_PAD + 1` positions and drops what precedes
    /// it (a pad), keeping the marker. `Err` once the bound is passed without it.
    fn sync_to(&mut self, marker: &[u8]) -> Result<bool, MseError> {
        let limit = MAX_PAD + marker.len();
        let window = &self.0[..self.0.len().min(limit)];
        if let Some(at) = window.windows(marker.len()).position(|w| w == marker) {
            self.0.drain(..at);
            return Ok(true);
        }
        if self.0.len() >= limit {
            return Err(MseError::NoSync(KEY_LEN + limit));
        }
        Ok(false)
    }

    /// The rest, decrypted if the stream is RC4.
    fn rest(&mut self, stream: &mut Stream) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.0);
        if let Stream::Rc4 { recv, .. } = stream {
            recv.apply(&mut rest);
        }
        rest
    }
}

fn random_pad(rng: &mut impl RngCore) -> Vec<u8> {
    let mut pad = vec![0u8; rng.gen_range(0..=MAX_PAD)];
    rng.fill_bytes(&mut pad);
    pad
}

fn u16_at(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

fn xor(a: [u8; 20], b: [u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn stream_for(select: u32, send: Cipher, recv: Cipher) -> Stream {
    if select == CRYPTO_RC4 {
        Stream::Rc4 { send, recv }
    } else {
        Stream::Plaintext
    }
}

fn secret_of(keys: &KeyPair, input: &mut Input) -> Result<Option<[u8; KEY_LEN]>, MseError> {
    let Some(theirs) = input.take(KEY_LEN) else {
        return Ok(None);
    };
    let mut y = [0u8; KEY_LEN];
    y.copy_from_slice(&theirs);
    keys.shared_secret(&y)
        .map(Some)
        .ok_or(MseError::BadPublicKey)
}

// ---- A, the side that dialled ----------------------------------------------------------------

enum InitiatorPhase {
    AwaitYb,
    /// Searching PadB for ENCRYPT(VC).
    AwaitVc {
        send: Cipher,
        recv: Cipher,
        marker: [u8; 8],
    },
    AwaitSelect {
        send: Cipher,
        recv: Cipher,
    },
    AwaitPadD {
        send: Cipher,
        recv: Cipher,
        select: u32,
        len: usize,
    },
    Finished,
}

/// The dialling side's handshake.
pub struct Initiator {
    keys: KeyPair,
    skey: [u8; 20],
    provide: u32,
    initial: Vec<u8>,
    pad_c: usize,
    input: Input,
    output: Vec<u8>,
    phase: InitiatorPhase,
}

impl Initiator {
    /// Starts a handshake for the torrent `skey`, offering `provide` (crypto bits), with
    /// `initial` as IA (the caller's first payload bytes, e.g. its BitTorrent handshake).
    pub fn new(
        skey: [u8; 20],
        provide: u32,
        initial: [u8; 68],
        rng: &mut impl RngCore,
    ) -> Initiator {
        let keys = KeyPair::new(rng.gen());
        let mut output = keys.public.to_vec();
        output.extend(random_pad(rng));
        let initial = initial.to_vec();
        Initiator {
            keys,
            skey,
            provide,
            initial,
            pad_c: rng.gen_range(0..=MAX_PAD),
            input: Input::default(),
            output,
            phase: InitiatorPhase::AwaitYb,
        }
    }

    /// What to send now.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Takes bytes from the peer.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Step, MseError> {
        self.input.0.extend_from_slice(bytes);
        loop {
            let phase = std::mem::replace(&mut self.phase, InitiatorPhase::Finished);
            match self.advance(phase)? {
                Advance::Moved(p) => self.phase = p,
                Advance::Stays(p) | Advance::Ask(p, _) => {
                    self.phase = p;
                    return Ok(Step::NeedMore);
                }
                Advance::Done(e) => return Ok(Step::Done(e)),
            }
        }
    }

    fn advance(&mut self, phase: InitiatorPhase) -> Result<Advance<InitiatorPhase>, MseError> {
        use InitiatorPhase::*;
        Ok(match phase {
            AwaitYb => match secret_of(&self.keys, &mut self.input)? {
                None => Advance::Stays(AwaitYb),
                Some(secret) => {
                    let (send, recv, marker) = self.step3(&secret);
                    Advance::Moved(AwaitVc { send, recv, marker })
                }
            },
            AwaitVc { send, recv, marker } => {
                if self.input.sync_to(&marker)? {
                    Advance::Moved(AwaitSelect { send, recv })
                } else {
                    Advance::Stays(AwaitVc { send, recv, marker })
                }
            }
            AwaitSelect { send, mut recv } => match self.input.take(HEADER) {
                None => Advance::Stays(AwaitSelect { send, recv }),
                Some(mut header) => {
                    recv.apply(&mut header);
                    let select = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
                    let len = u16_at(&header[12..]);
                    if !(select == CRYPTO_RC4 || select == CRYPTO_PLAINTEXT)
                        || select & self.provide == 0
                    {
                        return Err(MseError::BadSelect(select));
                    }
                    if len > MAX_PAD {
                        return Err(MseError::PadTooLong(len));
                    }
                    Advance::Moved(AwaitPadD {
                        send,
                        recv,
                        select,
                        len,
                    })
                }
            },
            AwaitPadD {
                send,
                mut recv,
                select,
                len,
            } => match self.input.take(len) {
                None => Advance::Stays(AwaitPadD {
                    send,
                    recv,
                    select,
                    len,
                }),
                Some(mut pad) => {
                    recv.apply(&mut pad);
                    let mut stream = stream_for(select, send, recv);
                    let received = self.input.rest(&mut stream);
                    Advance::Done(Established {
                        stream,
                        skey: self.skey,
                        received,
                    })
                }
            },
            Finished => Advance::Stays(Finished),
        })
    }

    /// Step 3, once S is known: the two hashes and the encrypted offer with IA. Returns the
    /// stream keys and the marker to look for in PadB, ENCRYPT(VC).
    fn step3(&mut self, secret: &[u8; KEY_LEN]) -> (Cipher, Cipher, [u8; 8]) {
        let mut send = Cipher::for_direction(true, secret, &self.skey);
        let recv = Cipher::for_direction(false, secret, &self.skey);
        self.output.extend(crypto::hash(&[b"req1", secret]));
        self.output.extend(xor(
            crypto::hash(&[b"req2", &self.skey]),
            crypto::hash(&[b"req3", secret]),
        ));
        let mut offer = VC.to_vec();
        offer.extend(self.provide.to_be_bytes());
        offer.extend((self.pad_c as u16).to_be_bytes());
        offer.resize(offer.len() + self.pad_c, 0);
        offer.extend((self.initial.len() as u16).to_be_bytes());
        offer.extend(std::mem::take(&mut self.initial));
        send.apply(&mut offer);
        self.output.extend(offer);
        // The first 8 bytes of B's stream (rc4 has no Clone: a second cipher makes them).
        let mut marker = VC;
        Cipher::for_direction(false, secret, &self.skey).apply(&mut marker);
        (send, recv, marker)
    }
}

/// `HASH('req2', info_hash)`: how an incoming MSE peer names its torrent, and what the listener
/// indexes its torrents by.
pub fn req2(info_hash: &[u8; 20]) -> [u8; 20] {
    crypto::hash(&[b"req2", info_hash])
}

// ---- B, the side that accepted ----------------------------------------------------------------

enum ResponderPhase {
    AwaitYa,
    /// Searching PadA for HASH('req1', S).
    AwaitReq1 {
        secret: [u8; KEY_LEN],
    },
    AwaitSkey {
        secret: [u8; KEY_LEN],
    },
    FindingTorrent {
        secret: [u8; KEY_LEN],
    },
    AwaitProvide {
        keys: Keys,
    },
    AwaitPadC {
        keys: Keys,
        provide: u32,
        len: usize,
    },
    AwaitIa {
        keys: Keys,
        provide: u32,
        len: usize,
    },
    Finished,
}

struct Keys {
    skey: [u8; 20],
    send: Cipher,
    recv: Cipher,
}

/// The accepting side's handshake.
pub struct Responder {
    keys: KeyPair,
    methods: Methods,
    pad_d: usize,
    input: Input,
    output: Vec<u8>,
    phase: ResponderPhase,
}

impl Responder {
    pub fn new(methods: Methods, rng: &mut impl RngCore) -> Responder {
        Responder {
            keys: KeyPair::new(rng.gen()),
            methods,
            pad_d: rng.gen_range(0..=MAX_PAD),
            input: Input::default(),
            output: Vec::new(),
            phase: ResponderPhase::AwaitYa,
        }
    }

    /// What to send now (Yb and PadB go out as soon as Ya is in).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    /// Takes bytes from the peer.
    pub fn receive(&mut self, bytes: &[u8], rng: &mut impl RngCore) -> Result<Step, MseError> {
        self.input.0.extend_from_slice(bytes);
        self.run(rng)
    }

    /// The answer to [`Step::FindTorrent`]: the info-hash whose `HASH('req2', ·)` it was, if a
    /// torrent here has it.
    pub fn torrent_found(
        &mut self,
        skey: Option<[u8; 20]>,
        rng: &mut impl RngCore,
    ) -> Result<Step, MseError> {
        let ResponderPhase::FindingTorrent { secret } =
            std::mem::replace(&mut self.phase, ResponderPhase::Finished)
        else {
            return Ok(Step::NeedMore);
        };
        let skey = skey.ok_or(MseError::UnknownTorrent)?;
        self.phase = ResponderPhase::AwaitProvide {
            keys: Keys {
                skey,
                send: Cipher::for_direction(false, &secret, &skey),
                recv: Cipher::for_direction(true, &secret, &skey),
            },
        };
        self.run(rng)
    }

    fn run(&mut self, rng: &mut impl RngCore) -> Result<Step, MseError> {
        loop {
            let phase = std::mem::replace(&mut self.phase, ResponderPhase::Finished);
            match self.advance(phase, rng)? {
                Advance::Moved(p) => self.phase = p,
                Advance::Stays(p) => {
                    self.phase = p;
                    return Ok(Step::NeedMore);
                }
                Advance::Ask(p, req2) => {
                    self.phase = p;
                    return Ok(Step::FindTorrent(req2));
                }
                Advance::Done(e) => return Ok(Step::Done(e)),
            }
        }
    }

    fn advance(
        &mut self,
        phase: ResponderPhase,
        rng: &mut impl RngCore,
    ) -> Result<Advance<ResponderPhase>, MseError> {
        use ResponderPhase::*;
        Ok(match phase {
            AwaitYa => match secret_of(&self.keys, &mut self.input)? {
                None => Advance::Stays(AwaitYa),
                Some(secret) => {
                    self.output.extend(self.keys.public);
                    self.output.extend(random_pad(rng));
                    Advance::Moved(AwaitReq1 { secret })
                }
            },
            AwaitReq1 { secret } => {
                if self.input.sync_to(&crypto::hash(&[b"req1", &secret]))? {
                    self.input.0.drain(..20);
                    Advance::Moved(AwaitSkey { secret })
                } else {
                    Advance::Stays(AwaitReq1 { secret })
                }
            }
            AwaitSkey { secret } => match self.input.take(20) {
                None => Advance::Stays(AwaitSkey { secret }),
                Some(x) => {
                    let mut masked = [0u8; 20];
                    masked.copy_from_slice(&x);
                    let req2 = xor(masked, crypto::hash(&[b"req3", &secret]));
                    Advance::Ask(FindingTorrent { secret }, req2)
                }
            },
            FindingTorrent { secret } => Advance::Stays(FindingTorrent { secret }),
            AwaitProvide { mut keys } => match self.input.take(HEADER) {
                None => Advance::Stays(AwaitProvide { keys }),
                Some(mut header) => {
                    keys.recv.apply(&mut header);
                    if header[..8] != VC {
                        return Err(MseError::BadVerification);
                    }
                    let provide =
                        u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
                    let len = u16_at(&header[12..]);
                    if len > MAX_PAD {
                        return Err(MseError::PadTooLong(len));
                    }
                    Advance::Moved(AwaitPadC { keys, provide, len })
                }
            },
            AwaitPadC {
                mut keys,
                provide,
                len,
            } => match self.input.take(len + 2) {
                None => Advance::Stays(AwaitPadC { keys, provide, len }),
                Some(mut pad) => {
                    keys.recv.apply(&mut pad);
                    let len = u16_at(&pad[len..]);
                    Advance::Moved(AwaitIa { keys, provide, len })
                }
            },
            AwaitIa {
                mut keys,
                provide,
                len,
            } => match self.input.take(len) {
                None => Advance::Stays(AwaitIa { keys, provide, len }),
                Some(mut ia) => {
                    keys.recv.apply(&mut ia);
                    let select = self.methods.select(provide)?;
                    let mut step4 = VC.to_vec();
                    step4.extend(select.to_be_bytes());
                    step4.extend((self.pad_d as u16).to_be_bytes());
                    step4.resize(step4.len() + self.pad_d, 0);
                    keys.send.apply(&mut step4);
                    self.output.extend(step4);
                    let mut stream = stream_for(select, keys.send, keys.recv);
                    ia.extend(self.input.rest(&mut stream));
                    Advance::Done(Established {
                        stream,
                        skey: keys.skey,
                        received: ia,
                    })
                }
            },
            Finished => Advance::Stays(Finished),
        })
    }
}

enum Advance<P> {
    Moved(P),
    Stays(P),
    Ask(P, [u8; 20]),
    Done(Established),
}
