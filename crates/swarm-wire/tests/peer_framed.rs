//! The peer codecs on a real `Framed` over an in-memory duplex pipe: the handshake → messages
//! switch keeps pipelined bytes, frames survive tiny reads, and the vectored upload path
//! (`encode_piece_header` + payload) produces what the decoder expects.

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use swarm_wire::peer::extension::{
    ExtendedHandshake, MetadataMsg, PexFlags, PexMessage, HANDSHAKE_ID, LOCAL_UT_METADATA,
    LOCAL_UT_PEX, UT_METADATA,
};
use swarm_wire::peer::{
    encode_piece_header, BlockRef, Handshake, HandshakeCodec, Message, PeerCodec, WireError,
    BLOCK_SIZE,
};
use swarm_wire::InfoHash;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio_util::codec::{Encoder, Framed};

const MAX_FRAME: u32 = BLOCK_SIZE + 1024;

fn handshake(id: u8) -> Handshake {
    Handshake::new(InfoHash([7; 20]), [id; 20])
        .with_extensions()
        .with_fast()
}

fn block(index: u32, fill: u8) -> Message {
    Message::Piece {
        index,
        begin: 0,
        data: Bytes::from(vec![fill; BLOCK_SIZE as usize]),
    }
}

/// Reads the peer's handshake, then switches codecs the way the engine does.
async fn accept(io: DuplexStream) -> (Handshake, Framed<DuplexStream, PeerCodec>) {
    let mut framed = Framed::new(io, HandshakeCodec);
    let theirs = framed
        .next()
        .await
        .expect("a handshake")
        .expect("a valid handshake");
    framed.send(handshake(2)).await.expect("handshake sent");
    (theirs, framed.map_codec(|_| PeerCodec::new(MAX_FRAME)))
}

#[tokio::test]
async fn messages_pipelined_with_the_handshake_survive_the_codec_switch() {
    let (mut dialer, listener) = tokio::io::duplex(1 << 20);
    // Handshake, bitfield and extension handshake in one write, as real clients do.
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&handshake(1).encode());
    let mut codec = PeerCodec::new(MAX_FRAME);
    codec
        .encode(Message::Bitfield(Bytes::from_static(&[0xF0])), &mut wire)
        .expect("encodes");
    let ext = Message::Extended {
        id: HANDSHAKE_ID,
        payload: ExtendedHandshake::ours().encode(),
    };
    codec.encode(&ext, &mut wire).expect("encodes");
    dialer.write_all(&wire).await.expect("written");

    let (theirs, mut framed) = accept(listener).await;
    assert_eq!(theirs, handshake(1));
    assert!(theirs.supports_extensions() && theirs.supports_fast() && !theirs.supports_dht());
    let first = framed.next().await.expect("a frame").expect("valid");
    assert_eq!(first, Message::Bitfield(Bytes::from_static(&[0xF0])));
    let Message::Extended { id: 0, payload } = framed.next().await.expect("a frame").expect("ok")
    else {
        panic!("extension handshake expected");
    };
    let ext = ExtendedHandshake::decode(&payload).expect("decodes");
    assert_eq!(ext.id_of(UT_METADATA), Some(LOCAL_UT_METADATA));
}

#[tokio::test]
async fn both_directions_through_a_tiny_pipe() {
    // 7-byte pipe: every frame arrives in many short reads.
    let (dialer, listener) = tokio::io::duplex(7);
    let sender = tokio::spawn(async move {
        let mut framed = Framed::new(dialer, HandshakeCodec);
        framed.send(handshake(1)).await.expect("sent");
        let theirs = framed.next().await.expect("reply").expect("valid");
        let mut framed = framed.map_codec(|_| PeerCodec::new(MAX_FRAME));
        for i in 0..5 {
            framed.feed(Message::Have(i)).await.expect("sent");
            framed.feed(block(i, i as u8)).await.expect("sent");
        }
        framed.feed(Message::KeepAlive).await.expect("sent");
        framed
            .send(Message::Reject(BlockRef {
                index: 1,
                begin: 2,
                length: 3,
            }))
            .await
            .expect("sent");
        theirs
    });
    let (_, mut framed) = accept(listener).await;
    let mut got = Vec::new();
    while let Some(msg) = framed.next().await {
        got.push(msg.expect("valid"));
    }
    assert_eq!(sender.await.expect("sender"), handshake(2));
    assert_eq!(got.len(), 12);
    for i in 0..5u32 {
        assert_eq!(got[2 * i as usize], Message::Have(i));
        assert_eq!(got[2 * i as usize + 1], block(i, i as u8));
    }
    assert_eq!(got[10], Message::KeepAlive);
}

#[tokio::test]
async fn vectored_piece_upload_decodes_as_a_piece() {
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let data = Bytes::from((0..BLOCK_SIZE).map(|i| i as u8).collect::<Vec<_>>());
    let header = encode_piece_header(3, BLOCK_SIZE, data.len() as u32);
    let mut frame = bytes::Buf::chain(&header[..], data.clone());
    writer.write_all_buf(&mut frame).await.expect("written");
    drop(writer);
    let mut framed = tokio_util::codec::FramedRead::new(reader, PeerCodec::new(MAX_FRAME));
    let msg = framed.next().await.expect("a frame").expect("valid");
    assert_eq!(
        msg,
        Message::Piece {
            index: 3,
            begin: BLOCK_SIZE,
            data
        }
    );
    assert!(framed.next().await.is_none());
}

#[tokio::test]
async fn extension_payloads_ride_extended_frames() {
    let (dialer, listener) = tokio::io::duplex(1024);
    let mut tx = Framed::new(dialer, PeerCodec::new(MAX_FRAME));
    let mut rx = Framed::new(listener, PeerCodec::new(MAX_FRAME));
    let info = Bytes::from(vec![b'x'; 20_000]);
    let piece = MetadataMsg::Data {
        piece: 1,
        total_size: info.len() as u32,
        data: info.slice(BLOCK_SIZE as usize..),
    };
    let pex = PexMessage {
        added: vec![(
            "192.0.2.1:6881".parse().expect("addr"),
            PexFlags(PexFlags::SEED),
        )],
        dropped: vec!["[2001:db8::1]:51413".parse().expect("addr")],
    };
    let send = async {
        tx.send(Message::Extended {
            id: LOCAL_UT_METADATA,
            payload: piece.encode(),
        })
        .await
        .expect("sent");
        tx.send(Message::Extended {
            id: LOCAL_UT_PEX,
            payload: pex.encode(),
        })
        .await
        .expect("sent");
    };
    let recv = async {
        let mut got = Vec::new();
        for _ in 0..2 {
            got.push(rx.next().await.expect("a frame").expect("valid"));
        }
        got
    };
    let ((), got) = tokio::join!(send, recv);
    let [Message::Extended { id: 1, payload: m }, Message::Extended { id: 2, payload: p }] =
        &got[..]
    else {
        panic!("two extended frames expected: {got:?}");
    };
    assert_eq!(MetadataMsg::decode(m).expect("decodes"), piece);
    assert_eq!(PexMessage::decode(p).expect("decodes"), pex);
}

#[tokio::test]
async fn an_oversized_frame_ends_the_stream_with_an_error() {
    let (mut writer, reader) = tokio::io::duplex(1024);
    writer
        .write_all(&(MAX_FRAME + 1).to_be_bytes())
        .await
        .expect("written");
    let mut framed = tokio_util::codec::FramedRead::new(reader, PeerCodec::new(MAX_FRAME));
    assert_eq!(
        framed.next().await.expect("an item"),
        Err(WireError::FrameTooLarge {
            len: MAX_FRAME + 1,
            max: MAX_FRAME
        })
    );
    assert!(framed.next().await.is_none());
}
