//! BEP 15 packets: building requests and checking replies. Pure: no sockets, no clocks.
//!
//! Every reply is untrusted. [`parse_reply`] checks the length before every read, checks that the
//! transaction id and action are the ones we asked for, and never allocates more than the packet
//! already holds.
//!
//! Layouts (all integers big-endian):
//! ```text
//! connect   req: protocol_id u64 = 0x41727101980 | action u32 = 0 | txid u32
//!           rep: action u32 = 0 | txid u32 | connection_id u64
//! announce  req: connection_id u64 | action u32 = 1 | txid u32 | info_hash [20] | peer_id [20]
//!                | downloaded u64 | left u64 | uploaded u64 | event u32 | ip u32 | key u32
//!                | num_want i32 | port u16                                          (98 bytes)
//!           rep: action u32 = 1 | txid u32 | interval u32 | leechers u32 | seeders u32
//!                | (ip, port)* — 6 bytes each over IPv4, 18 over IPv6
//! scrape    req: connection_id u64 | action u32 = 2 | txid u32 | info_hash [20] * n (n ≤ 74)
//!           rep: action u32 = 2 | txid u32 | (seeders u32 | completed u32 | leechers u32) * n
//! error     rep: action u32 = 3 | txid u32 | message (the rest of the packet)
//! ```

use std::net::IpAddr;
use std::time::Duration;

use swarm_wire::InfoHash;

use crate::compact::{self, Family};
use crate::types::{message_text, AnnounceRequest, AnnounceResponse, ReplyProblem, ScrapeStats};

/// The magic constant that opens a connect request.
pub(crate) const PROTOCOL_ID: u64 = 0x0417_2710_1980;

pub(crate) const ACTION_CONNECT: u32 = 0;
pub(crate) const ACTION_ANNOUNCE: u32 = 1;
pub(crate) const ACTION_SCRAPE: u32 = 2;
pub(crate) const ACTION_ERROR: u32 = 3;

/// The most info-hashes one scrape packet may carry (BEP 15), so the reply fits in one datagram.
pub const MAX_SCRAPE_HASHES: usize = 74;

/// A reply we asked for, decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Connect(u64),
    Announce(AnnounceResponse),
    Scrape(Vec<ScrapeStats>),
}

pub(crate) fn connect_request(txid: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&PROTOCOL_ID.to_be_bytes());
    p[8..12].copy_from_slice(&ACTION_CONNECT.to_be_bytes());
    p[12..].copy_from_slice(&txid.to_be_bytes());
    p
}

pub(crate) fn announce_request(conn_id: u64, txid: u32, req: &AnnounceRequest) -> Vec<u8> {
    let mut p = Vec::with_capacity(98);
    p.extend(conn_id.to_be_bytes());
    p.extend(ACTION_ANNOUNCE.to_be_bytes());
    p.extend(txid.to_be_bytes());
    p.extend(req.info_hash.as_bytes());
    p.extend(req.peer_id);
    p.extend(req.downloaded.to_be_bytes());
    p.extend(req.left.to_be_bytes());
    p.extend(req.uploaded.to_be_bytes());
    p.extend(req.event.udp_code().to_be_bytes());
    // The field is 32 bits wide: only an IPv4 address fits; 0 means "the packet's source".
    let ip = match req.ip {
        Some(IpAddr::V4(v4)) => u32::from(v4),
        _ => 0,
    };
    p.extend(ip.to_be_bytes());
    p.extend(req.key.to_be_bytes());
    // -1 asks for the tracker's default; a wish above i32::MAX is just "as many as you like".
    let num_want = match req.numwant {
        Some(n) => i32::try_from(n).unwrap_or(i32::MAX),
        None => -1,
    };
    p.extend(num_want.to_be_bytes());
    p.extend(req.port.to_be_bytes());
    p
}

/// A scrape request for at most [`MAX_SCRAPE_HASHES`] hashes (extra ones are the caller's bug and
/// are not sent).
pub(crate) fn scrape_request(conn_id: u64, txid: u32, hashes: &[InfoHash]) -> Vec<u8> {
    let hashes = &hashes[..hashes.len().min(MAX_SCRAPE_HASHES)];
    let mut p = Vec::with_capacity(16 + 20 * hashes.len());
    p.extend(conn_id.to_be_bytes());
    p.extend(ACTION_SCRAPE.to_be_bytes());
    p.extend(txid.to_be_bytes());
    for h in hashes {
        p.extend(h.as_bytes());
    }
    p
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let hi = u32_at(buf, at)?;
    let lo = u32_at(buf, at.checked_add(4)?)?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// The transaction id of any reply, used to route it to whoever is waiting; `None` if the packet is
/// too short to be a reply at all.
pub(crate) fn transaction_id(buf: &[u8]) -> Option<u32> {
    u32_at(buf, 4)
}

/// Checks and decodes a reply to a request of kind `action` sent with `txid`. `family` is that of
/// the tracker's address: it decides the size of the peer entries. An error packet (action 3)
/// becomes [`ReplyProblem::Refused`] with the tracker's message.
pub(crate) fn parse_reply(
    buf: &[u8],
    action: u32,
    txid: u32,
    family: Family,
) -> Result<Reply, ReplyProblem> {
    let (Some(got_action), Some(got_txid)) = (u32_at(buf, 0), u32_at(buf, 4)) else {
        return Err(ReplyProblem::malformed(format!(
            "{}-byte packet is too short for a reply",
            buf.len()
        )));
    };
    if got_txid != txid {
        return Err(ReplyProblem::malformed(format!(
            "transaction id {got_txid:#010x}, expected {txid:#010x}"
        )));
    }
    if got_action == ACTION_ERROR {
        return Err(ReplyProblem::Refused(message_text(&buf[8..])));
    }
    if got_action != action {
        return Err(ReplyProblem::malformed(format!(
            "action {got_action} in reply to action {action}"
        )));
    }
    match action {
        ACTION_CONNECT => u64_at(buf, 8)
            .map(Reply::Connect)
            .ok_or_else(|| short("connect", buf, 16)),
        ACTION_ANNOUNCE => parse_announce(buf, family).map(Reply::Announce),
        ACTION_SCRAPE => parse_scrape(buf).map(Reply::Scrape),
        other => Err(ReplyProblem::malformed(format!("unknown action {other}"))),
    }
}

fn short(what: &str, buf: &[u8], need: usize) -> ReplyProblem {
    ReplyProblem::malformed(format!(
        "{what} reply is {} bytes, needs at least {need}",
        buf.len()
    ))
}

fn parse_announce(buf: &[u8], family: Family) -> Result<AnnounceResponse, ReplyProblem> {
    let (Some(interval), Some(leechers), Some(seeders)) =
        (u32_at(buf, 8), u32_at(buf, 12), u32_at(buf, 16))
    else {
        return Err(short("announce", buf, 20));
    };
    let mut peers = Vec::new();
    compact::decode_into(&buf[20..], family, &mut peers).map_err(ReplyProblem::Malformed)?;
    Ok(AnnounceResponse {
        interval: Duration::from_secs(u64::from(interval)),
        min_interval: None,
        tracker_id: None,
        complete: Some(seeders),
        incomplete: Some(leechers),
        peers,
        warning: None,
    })
}

fn parse_scrape(buf: &[u8]) -> Result<Vec<ScrapeStats>, ReplyProblem> {
    let body = &buf[8..];
    if !body.len().is_multiple_of(12) {
        return Err(ReplyProblem::malformed(format!(
            "scrape reply body is {} bytes, not a multiple of 12",
            body.len()
        )));
    }
    Ok(body
        .chunks_exact(12)
        .map(|c| ScrapeStats {
            complete: u32_at(c, 0).unwrap_or(0),
            downloaded: u32_at(c, 4).unwrap_or(0),
            incomplete: u32_at(c, 8).unwrap_or(0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Event;
    use proptest::prelude::*;

    fn header(action: u32, txid: u32) -> Vec<u8> {
        let mut p = action.to_be_bytes().to_vec();
        p.extend(txid.to_be_bytes());
        p
    }

    #[test]
    fn connect_round_trip() {
        let req = connect_request(7);
        assert_eq!(&req[..8], &[0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80]);
        let mut rep = header(0, 7);
        rep.extend(0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(
            parse_reply(&rep, ACTION_CONNECT, 7, Family::V4),
            Ok(Reply::Connect(0x1122_3344_5566_7788))
        );
        assert!(parse_reply(&rep[..15], ACTION_CONNECT, 7, Family::V4).is_err());
        assert!(parse_reply(&rep, ACTION_CONNECT, 8, Family::V4).is_err());
    }

    #[test]
    fn announce_request_layout() {
        let mut req = AnnounceRequest::new(InfoHash([1; 20]), [2; 20], 0x1ae1);
        req.event = Event::Started;
        req.left = 5;
        req.ip = Some("1.2.3.4".parse().unwrap());
        let p = announce_request(9, 10, &req);
        assert_eq!(p.len(), 98);
        assert_eq!(&p[..8], &9u64.to_be_bytes());
        assert_eq!(&p[16..36], &[1; 20]);
        assert_eq!(&p[64..72], &5u64.to_be_bytes());
        assert_eq!(&p[80..84], &2u32.to_be_bytes());
        assert_eq!(&p[84..88], &[1, 2, 3, 4]);
        assert_eq!(&p[92..96], &(-1i32).to_be_bytes());
        assert_eq!(&p[96..], &[0x1a, 0xe1]);
    }

    #[test]
    fn announce_reply_v4_and_v6() {
        let mut rep = header(1, 3);
        rep.extend(1800u32.to_be_bytes());
        rep.extend(4u32.to_be_bytes());
        rep.extend(2u32.to_be_bytes());
        let mut v4 = rep.clone();
        v4.extend([127, 0, 0, 1, 0x1a, 0xe1]);
        let Ok(Reply::Announce(a)) = parse_reply(&v4, ACTION_ANNOUNCE, 3, Family::V4) else {
            panic!("v4 announce");
        };
        assert_eq!(a.interval, Duration::from_secs(1800));
        assert_eq!((a.complete, a.incomplete), (Some(2), Some(4)));
        assert_eq!(a.peers, vec!["127.0.0.1:6881".parse().unwrap()]);
        // The same six peer bytes do not make an IPv6 entry.
        assert!(parse_reply(&v4, ACTION_ANNOUNCE, 3, Family::V6).is_err());
        let mut v6 = rep;
        v6.extend([0u8; 15]);
        v6.extend([1, 0, 80]);
        let Ok(Reply::Announce(a)) = parse_reply(&v6, ACTION_ANNOUNCE, 3, Family::V6) else {
            panic!("v6 announce");
        };
        assert_eq!(a.peers, vec!["[::1]:80".parse().unwrap()]);
    }

    #[test]
    fn error_and_scrape_replies() {
        let mut err = header(3, 5);
        err.extend(b"torrent not registered");
        assert_eq!(
            parse_reply(&err, ACTION_ANNOUNCE, 5, Family::V4),
            Err(ReplyProblem::Refused("torrent not registered".into()))
        );
        let mut s = header(2, 6);
        for n in [1u32, 2, 3, 4, 5, 6] {
            s.extend(n.to_be_bytes());
        }
        let want = vec![
            ScrapeStats {
                complete: 1,
                downloaded: 2,
                incomplete: 3,
            },
            ScrapeStats {
                complete: 4,
                downloaded: 5,
                incomplete: 6,
            },
        ];
        assert_eq!(
            parse_reply(&s, ACTION_SCRAPE, 6, Family::V4),
            Ok(Reply::Scrape(want))
        );
        assert!(parse_reply(&s[..19], ACTION_SCRAPE, 6, Family::V4).is_err());
        assert_eq!(
            scrape_request(1, 2, &[InfoHash([0; 20]); 100]).len(),
            16 + 20 * 74
        );
    }

    proptest! {
        #[test]
        fn proptest_random_replies_never_panic(
            buf in proptest::collection::vec(any::<u8>(), 0..200),
            action in 0u32..4,
            v6 in any::<bool>(),
        ) {
            let family = if v6 { Family::V6 } else { Family::V4 };
            let txid = transaction_id(&buf).unwrap_or(0);
            let _ = parse_reply(&buf, action, txid, family);
            // Also with a matching header, so the body parsers get exercised.
            let mut framed = header(action, 1);
            framed.extend(&buf);
            let _ = parse_reply(&framed, action, 1, family);
        }
    }
}
