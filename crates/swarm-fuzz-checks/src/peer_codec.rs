//! The peer wire: the 68-byte handshake, then length-prefixed frames through `PeerCodec`, fed in
//! chunks of random sizes as a socket would deliver them.
//!
//! Invariants: the codec never asks for a frame longer than its `max_frame` (it refuses the
//! length prefix first), the read buffer it grows stays within `max(max_frame + 4, READ_BUFFER)`
//! whatever the chunking, every decoded message encodes back to exactly the frame it came from
//! and says so in `wire_len`, and a frame that decodes to an error has been consumed (except
//! `FrameTooLarge`, after which the stream is given up as the engine does).

use bytes::BytesMut;
use swarm_wire::peer::{Handshake, HandshakeCodec, PeerCodec, WireError, READ_BUFFER};
use tokio_util::codec::{Decoder, Encoder};

/// Decodes every complete frame in `buf`; false once the stream must be dropped.
fn drain(codec: &mut PeerCodec, buf: &mut BytesMut) -> bool {
    loop {
        let before = buf.clone();
        let capacity = buf.capacity();
        let decoded = codec.decode(buf);
        // Growth the decoder chose (the reads above grow the buffer their own way, as a socket's
        // would): never past the bound, whatever the length prefix said.
        let bound = (codec.max_frame as usize + 4).max(READ_BUFFER);
        if buf.capacity() > capacity {
            assert!(
                buf.capacity() <= bound,
                "decode grew the buffer to {}",
                buf.capacity()
            );
        }
        match decoded {
            Ok(None) => return true,
            Ok(Some(msg)) => {
                let used = before.len() - buf.len();
                let mut out = BytesMut::new();
                codec
                    .encode(msg.clone(), &mut out)
                    .expect("a decoded message encodes");
                assert_eq!(
                    &out[..],
                    &before[..used],
                    "{msg:?} does not encode to its frame"
                );
                assert_eq!(msg.wire_len(), used, "wire_len of {msg:?}");
            }
            Err(WireError::FrameTooLarge { len, max }) => {
                assert!(len > max && max == codec.max_frame);
                return false;
            }
            Err(e) => {
                let used = before.len() - buf.len();
                let len = u32::from_be_bytes(before[..4].try_into().unwrap()) as usize;
                assert_eq!(used, len + 4, "{e} left the frame in the buffer");
            }
        }
    }
}

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn peer_codec(data: &[u8]) {
    // Byte 0: the frame bound (small ones reach FrameTooLarge); byte 1: the size of each read.
    let [bound, chunk, rest @ ..] = data else {
        return;
    };
    let max_frame = match bound % 4 {
        0 => swarm_wire::peer::DEFAULT_MAX_FRAME,
        1 => 9 + swarm_wire::peer::BLOCK_SIZE,
        _ => u32::from(*bound),
    };
    let chunk = usize::from(*chunk).max(1);
    // Byte 2, low bit: start with the handshake as a connection does, or go straight to frames.
    let Some((&mode, stream)) = rest.split_first() else {
        return;
    };
    let mut reads = stream.chunks(chunk);
    let mut buf = BytesMut::new();
    if mode & 1 == 1 {
        loop {
            let Some(read) = reads.next() else { return };
            buf.extend_from_slice(read);
            let before = buf.clone();
            match HandshakeCodec.decode(&mut buf) {
                Ok(None) => continue,
                Ok(Some(h)) => {
                    assert_eq!(&h.encode()[..], &before[..Handshake::LEN]);
                    break;
                }
                Err(_) => return,
            }
        }
    }
    let mut codec = PeerCodec::new(max_frame);
    if !drain(&mut codec, &mut buf) {
        return;
    }
    for read in reads {
        buf.extend_from_slice(read);
        if !drain(&mut codec, &mut buf) {
            return;
        }
    }
}
