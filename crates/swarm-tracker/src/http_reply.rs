//! Decoding of HTTP tracker replies (BEP 3 announce and scrape, BEP 23 compact peers, BEP 7 `peers6`).
//!
//! The bytes come from the network and are untrusted: decoding is bounded (nesting depth capped,
//! the body itself is capped by the transport), never panics, and reports what is wrong in words that
//! end up in the user's tracker status. A `failure reason` wins over any other problem in the same
//! reply, because it is the tracker telling us what is wrong.
//!
//! bendy is strict bencode: dictionary keys must be sorted and unique. A tracker that sends unsorted
//! keys is reported as sending a bad reply.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bendy::decoding::{Decoder, DictDecoder, Error as BencodeError, ListDecoder, Object};
use swarm_wire::InfoHash;

use crate::compact::{self, Family};
use crate::types::{message_text, AnnounceResponse, ReplyProblem, ScrapeResponse, ScrapeStats};

/// Tracker replies are flat: announce ≤ 3 levels (dict → peer list → peer dict), scrape 3
/// (dict → files → stats). A little headroom for extension keys we skip, and no more.
const MAX_DEPTH: usize = 8;

/// Used when a reply has peers but no `interval`: what most trackers use.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(30 * 60);

fn structure(e: BencodeError) -> ReplyProblem {
    ReplyProblem::malformed(format!("not valid bencode: {e}"))
}

/// Opens the top-level dictionary of a reply.
fn top_dict<'obj, 'ser>(
    decoder: &'obj mut Decoder<'ser>,
) -> Result<DictDecoder<'obj, 'ser>, ReplyProblem> {
    match decoder.next_object().map_err(structure)? {
        Some(Object::Dict(d)) => Ok(d),
        Some(_) => Err(ReplyProblem::malformed(
            "reply is not a bencoded dictionary",
        )),
        None => Err(ReplyProblem::malformed("empty reply")),
    }
}

fn integer(value: Object<'_, '_>, key: &str) -> Result<i64, String> {
    match value {
        Object::Integer(text) => text
            .parse::<i64>()
            .map_err(|_| format!("`{key}` is out of range: {text}")),
        _ => Err(format!("`{key}` is not an integer")),
    }
}

fn seconds(value: Object<'_, '_>, key: &str) -> Result<Duration, String> {
    let n = integer(value, key)?;
    u64::try_from(n)
        .map(Duration::from_secs)
        .map_err(|_| format!("`{key}` is negative: {n}"))
}

/// Swarm counts are informative only: a nonsensical one (negative, huge) is dropped, not fatal.
fn count(value: Object<'_, '_>, key: &str) -> Result<Option<u32>, String> {
    Ok(u32::try_from(integer(value, key)?).ok())
}

fn bytes<'ser>(value: Object<'_, 'ser>, key: &str) -> Result<&'ser [u8], String> {
    match value {
        Object::Bytes(b) => Ok(b),
        _ => Err(format!("`{key}` is not a string")),
    }
}

/// Everything an announce dictionary may carry, before deciding whether it is usable.
#[derive(Default)]
struct AnnounceFields {
    failure: Option<String>,
    warning: Option<String>,
    interval: Option<Duration>,
    min_interval: Option<Duration>,
    tracker_id: Option<String>,
    complete: Option<u32>,
    incomplete: Option<u32>,
    peers: Vec<SocketAddr>,
    saw_peers: bool,
    /// The first malformed value; reported unless the tracker also sent a failure reason.
    problem: Option<String>,
}

impl AnnounceFields {
    fn take(&mut self, key: &[u8], value: Object<'_, '_>) -> Result<(), BencodeError> {
        let result = match key {
            b"failure reason" => bytes(value, "failure reason").map(|b| {
                self.failure = Some(message_text(b));
            }),
            b"warning message" => bytes(value, "warning message").map(|b| {
                self.warning = Some(message_text(b));
            }),
            b"interval" => seconds(value, "interval").map(|d| self.interval = Some(d)),
            b"min interval" => seconds(value, "min interval").map(|d| self.min_interval = Some(d)),
            // The id is opaque, but we echo it in a URL as text: one that is not UTF-8 is dropped.
            b"tracker id" => bytes(value, "tracker id").map(|b| {
                self.tracker_id = std::str::from_utf8(b).ok().map(str::to_owned);
            }),
            b"complete" => count(value, "complete").map(|c| self.complete = c),
            b"incomplete" => count(value, "incomplete").map(|c| self.incomplete = c),
            b"peers" => {
                self.saw_peers = true;
                match value {
                    Object::Bytes(b) => compact::decode_into(b, Family::V4, &mut self.peers),
                    Object::List(list) => return peer_dicts(list, &mut self.peers),
                    _ => Err("`peers` is neither a string nor a list".to_owned()),
                }
            }
            b"peers6" => {
                self.saw_peers = true;
                bytes(value, "peers6")
                    .and_then(|b| compact::decode_into(b, Family::V6, &mut self.peers))
            }
            _ => Ok(()),
        };
        if let Err(what) = result {
            self.problem.get_or_insert(what);
        }
        Ok(())
    }

    fn finish(self) -> Result<AnnounceResponse, ReplyProblem> {
        if let Some(reason) = self.failure {
            return Err(ReplyProblem::Refused(reason));
        }
        if let Some(what) = self.problem {
            return Err(ReplyProblem::Malformed(what));
        }
        if self.interval.is_none() && !self.saw_peers {
            return Err(ReplyProblem::malformed(
                "neither `interval` nor `peers`: not an announce reply",
            ));
        }
        Ok(AnnounceResponse {
            interval: self.interval.unwrap_or(DEFAULT_INTERVAL),
            min_interval: self.min_interval,
            tracker_id: self.tracker_id,
            complete: self.complete,
            incomplete: self.incomplete,
            peers: self.peers,
            warning: self.warning,
        })
    }
}

/// The original, non-compact peer list: `[{ "ip": text, "port": int, "peer id": … }, …]`.
/// Entries we cannot dial (a host name, a bad port) are skipped; a broken bencode structure is not.
fn peer_dicts(
    mut list: ListDecoder<'_, '_>,
    out: &mut Vec<SocketAddr>,
) -> Result<(), BencodeError> {
    while let Some(item) = list.next_object()? {
        let Object::Dict(mut peer) = item else {
            continue;
        };
        let mut ip: Option<IpAddr> = None;
        let mut port: Option<u16> = None;
        while let Some((key, value)) = peer.next_pair()? {
            match (key, value) {
                (b"ip", Object::Bytes(text)) => {
                    ip = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok());
                }
                (b"port", Object::Integer(text)) => {
                    port = text.parse::<u16>().ok().filter(|&p| p != 0);
                }
                _ => {}
            }
        }
        if let (Some(ip), Some(port)) = (ip, port) {
            out.push(SocketAddr::new(ip, port));
        }
    }
    Ok(())
}

/// Decodes the body of an announce reply.
pub(crate) fn parse_announce(body: &[u8]) -> Result<AnnounceResponse, ReplyProblem> {
    let mut decoder = Decoder::new(body).with_max_depth(MAX_DEPTH);
    let mut dict = top_dict(&mut decoder)?;
    let mut fields = AnnounceFields::default();
    let walked = (|| {
        while let Some((key, value)) = dict.next_pair()? {
            fields.take(key, value)?;
        }
        Ok::<(), BencodeError>(())
    })();
    match walked {
        Ok(()) => fields.finish(),
        // A refusal is still a refusal if the bytes after it are garbage.
        Err(_) if fields.failure.is_some() => fields.finish(),
        Err(e) => Err(structure(e)),
    }
}

/// Decodes the body of a scrape reply: `{ "files": { <20-byte hash>: { complete, downloaded,
/// incomplete } } }`. Keys that are not 20 bytes long are skipped.
pub(crate) fn parse_scrape(body: &[u8]) -> Result<ScrapeResponse, ReplyProblem> {
    let mut decoder = Decoder::new(body).with_max_depth(MAX_DEPTH);
    let mut dict = top_dict(&mut decoder)?;
    let mut failure = None;
    let mut saw_files = false;
    let mut files = Vec::new();
    let walked = (|| {
        while let Some((key, value)) = dict.next_pair()? {
            match (key, value) {
                (b"failure reason", Object::Bytes(b)) => failure = Some(message_text(b)),
                (b"files", Object::Dict(d)) => {
                    saw_files = true;
                    scrape_files(d, &mut files)?;
                }
                _ => {}
            }
        }
        Ok::<(), BencodeError>(())
    })();
    if let Some(reason) = failure {
        return Err(ReplyProblem::Refused(reason));
    }
    walked.map_err(structure)?;
    if !saw_files {
        return Err(ReplyProblem::malformed("no `files` dictionary"));
    }
    Ok(ScrapeResponse { files })
}

fn scrape_files(
    mut files: DictDecoder<'_, '_>,
    out: &mut Vec<(InfoHash, ScrapeStats)>,
) -> Result<(), BencodeError> {
    while let Some((key, value)) = files.next_pair()? {
        let (Ok(hash), Object::Dict(mut stats_dict)) = (<[u8; 20]>::try_from(key), value) else {
            continue;
        };
        let mut stats = ScrapeStats::default();
        while let Some((k, v)) = stats_dict.next_pair()? {
            let slot = match k {
                b"complete" => &mut stats.complete,
                b"downloaded" => &mut stats.downloaded,
                b"incomplete" => &mut stats.incomplete,
                _ => continue,
            };
            if let Ok(Some(n)) = count(v, "count") {
                *slot = n;
            }
        }
        out.push((InfoHash(hash), stats));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(body: &[u8]) -> AnnounceResponse {
        parse_announce(body).expect("valid reply")
    }

    #[test]
    fn compact_reply() {
        let r = ok(b"d8:completei3e10:incompletei4e8:intervali1800e12:min intervali900e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50e");
        assert_eq!(r.interval, Duration::from_secs(1800));
        assert_eq!(r.min_interval, Some(Duration::from_secs(900)));
        assert_eq!((r.complete, r.incomplete), (Some(3), Some(4)));
        assert_eq!(
            r.peers,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap()
            ]
        );
        assert_eq!(r.warning, None);
    }

    #[test]
    fn dict_peers_and_peers6() {
        let body = b"d8:intervali60e5:peersld2:ip9:127.0.0.17:peer id20:AAAAAAAAAAAAAAAAAAAA4:porti6881eed2:ip11:example.com4:porti1eed2:ip3:::14:porti2eee6:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x07e";
        let r = ok(body);
        assert_eq!(
            r.peers,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "[::1]:2".parse().unwrap(),
                "[::1]:7".parse().unwrap()
            ]
        );
    }

    #[test]
    fn failure_warning_and_tracker_id() {
        assert_eq!(
            parse_announce(b"d14:failure reason12:unregisterede"),
            Err(ReplyProblem::Refused("unregistered".into()))
        );
        // The failure wins even over garbage after it.
        assert_eq!(
            parse_announce(b"d14:failure reason3:no!8:intervalXX"),
            Err(ReplyProblem::Refused("no!".into()))
        );
        let r = ok(b"d8:intervali5e10:tracker id3:abc15:warning message4:slowe");
        assert_eq!(r.tracker_id.as_deref(), Some("abc"));
        assert_eq!(r.warning.as_deref(), Some("slow"));
        assert!(r.peers.is_empty());
    }

    #[test]
    fn malformed_replies_are_explained() {
        for (body, needle) in [
            (&b""[..], "empty"),
            (b"i3e", "not a bencoded dictionary"),
            (b"<html>", "not valid bencode"),
            (b"d8:intervali-5ee", "negative"),
            (b"d8:interval3:abce", "not an integer"),
            (b"d8:intervali99999999999999999999999ee", "out of range"),
            (b"d5:peers5:abcdee", "not a multiple of 6"),
            (b"d3:fooi1ee", "neither"),
            (b"d8:intervali1e5:peers", "not valid bencode"),
            (b"d8:intervali1e1:ai1ee", "not valid bencode"), // unsorted keys
        ] {
            match parse_announce(body) {
                Err(ReplyProblem::Malformed(what)) => {
                    assert!(what.contains(needle), "{body:?}: {what}")
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut body = b"d1:x".to_vec();
        body.extend(std::iter::repeat_n(b'l', 10_000));
        assert!(parse_announce(&body).is_err());
    }

    #[test]
    fn scrape_reply() {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend([7u8; 20]);
        body.extend(b"d8:completei5e10:downloadedi50e10:incompletei10ee3:bad");
        body.extend(b"d8:completei1eeee");
        let r = parse_scrape(&body).unwrap();
        assert_eq!(
            r.get(&InfoHash([7; 20])),
            Some(ScrapeStats {
                complete: 5,
                downloaded: 50,
                incomplete: 10
            })
        );
        assert_eq!(r.files.len(), 1);
        assert_eq!(
            parse_scrape(b"d14:failure reason4:nopee"),
            Err(ReplyProblem::Refused("nope".into()))
        );
        assert!(parse_scrape(b"de").is_err());
    }

    proptest! {
        #[test]
        fn proptest_random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_announce(&body);
            let _ = parse_scrape(&body);
        }

        #[test]
        fn proptest_truncated_replies_never_panic(cut in 0usize..200) {
            let body = b"d8:completei3e10:incompletei4e8:intervali1800e5:peersld2:ip9:127.0.0.14:porti1eee6:peers618:0123456789abcdefghe";
            let cut = cut.min(body.len());
            let _ = parse_announce(&body[..cut]);
        }

        #[test]
        fn proptest_compact_peers_round_trip(peers in proptest::collection::vec((any::<[u8; 4]>(), 1u16..), 0..50)) {
            let mut list = Vec::new();
            for (ip, port) in &peers {
                list.extend(ip);
                list.extend(port.to_be_bytes());
            }
            let mut body = format!("d8:intervali10e5:peers{}:", list.len()).into_bytes();
            body.extend(&list);
            body.push(b'e');
            let r = parse_announce(&body).unwrap();
            let want: Vec<SocketAddr> = peers.iter().map(|(ip, port)| SocketAddr::from((*ip, *port))).collect();
            prop_assert_eq!(r.peers, want);
        }
    }
}
