//! KRPC (BEP 5): the bencoded query / response / error messages the DHT exchanges over UDP,
//! and the compact node and peer formats they carry (BEP 5 IPv4, BEP 32 IPv6).
//!
//! Pure: bytes in, bytes out. Every datagram is untrusted, so decoding is bounded up front:
//! a size cap on the datagram, a nesting cap on the bencode (a KRPC message is at most three
//! levels deep), caps on transaction ids, tokens and value lists. Anything that does not fit
//! is an error, never a panic. A query that is well-formed enough to carry a transaction id
//! but has bad arguments decodes to [`DecodeError::BadQuery`] so the node can answer 203.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bendy::decoding::{Decoder, Object};
use bendy::encoding::{Encoder, SingleItemEncoder};
use swarm_wire::InfoHash;

use crate::node_id::{NodeId, NodeInfo};

/// Largest datagram we decode. Plain BEP 5 traffic stays well under 1.5 KB; anything much
/// bigger is either BEP 44 (which we do not speak) or garbage.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Bencode nesting a KRPC message needs: message dict > args dict > values list.
const MAX_DEPTH: usize = 4;
/// Transaction ids are usually 2–4 bytes; anything longer is refused rather than echoed.
pub const MAX_TID_LEN: usize = 16;
/// Tokens are opaque to the receiver, but we keep them for announces, so bound them.
pub const MAX_TOKEN_LEN: usize = 64;
/// Most values (peers) we take from one response.
pub const MAX_VALUES: usize = 128;
/// Most nodes we take from one `nodes` / `nodes6` string (K is 8; be a little lenient).
pub const MAX_NODES: usize = 16;
const MAX_ERROR_TEXT: usize = 256;
const MAX_METHOD_LEN: usize = 32;

/// Compact sizes: id + IPv4 + port, id + IPv6 + port, IPv4 + port, IPv6 + port.
const NODE4_LEN: usize = 26;
const NODE6_LEN: usize = 38;
const PEER4_LEN: usize = 6;
const PEER6_LEN: usize = 18;

/// KRPC error codes (BEP 5).
pub const ERR_GENERIC: i64 = 201;
pub const ERR_SERVER: i64 = 202;
pub const ERR_PROTOCOL: i64 = 203;
pub const ERR_METHOD_UNKNOWN: i64 = 204;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Transaction id, echoed by the responder. At most [`MAX_TID_LEN`] bytes.
    pub tid: Vec<u8>,
    pub body: Body,
    /// BEP 43: the sender is read-only and must not be added to routing tables.
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Query(Query),
    Response(Response),
    Error(ErrorBody),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The querier's node id.
    pub id: NodeId,
    pub method: Method,
}

/// Which address families the querier wants nodes for (BEP 32). Empty means "the family the
/// query arrived on".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    pub n4: bool,
    pub n6: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Ping,
    FindNode {
        target: NodeId,
        want: Want,
    },
    GetPeers {
        info_hash: InfoHash,
        want: Want,
    },
    AnnouncePeer {
        info_hash: InfoHash,
        /// Ignored by the receiver when `implied_port` is set (0 is allowed then).
        port: u16,
        implied_port: bool,
        token: Vec<u8>,
    },
    /// A query name we do not serve; answered with 204.
    Unknown(String),
}

/// A response. KRPC responses do not name their query; the transaction id ties them to it,
/// so one shape covers them all and absent fields are empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub id: Option<NodeId>,
    pub nodes: Vec<NodeInfo>,
    pub nodes6: Vec<NodeInfo>,
    pub values: Vec<SocketAddr>,
    pub token: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: i64,
    pub message: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("datagram longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
    #[error("bad bencode: {0}")]
    Bencode(String),
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A query with a usable transaction id but bad arguments: worth a 203 answer.
    #[error("bad query: {reason}")]
    BadQuery { tid: Vec<u8>, reason: &'static str },
}

#[derive(Debug, thiserror::Error)]
#[error("KRPC encoding failed: {0}")]
pub struct EncodeError(String);

impl From<bendy::decoding::Error> for DecodeError {
    fn from(e: bendy::decoding::Error) -> Self {
        DecodeError::Bencode(e.to_string())
    }
}

impl From<bendy::encoding::Error> for EncodeError {
    fn from(e: bendy::encoding::Error) -> Self {
        EncodeError(e.to_string())
    }
}

/// Top-level fields, collected before we know what kind of message this is (bencode keys are
/// sorted, so `a` comes before `q` and `y`).
#[derive(Default)]
struct RawMessage<'a> {
    tid: Option<&'a [u8]>,
    y: Option<&'a [u8]>,
    q: Option<&'a [u8]>,
    args: Option<RawArgs<'a>>,
    error: Option<ErrorBody>,
    read_only: bool,
}

/// The union of query arguments and response values; `a` and `r` share one parser.
#[derive(Default)]
struct RawArgs<'a> {
    id: Option<&'a [u8]>,
    target: Option<&'a [u8]>,
    info_hash: Option<&'a [u8]>,
    port: Option<i64>,
    implied_port: Option<i64>,
    token: Option<&'a [u8]>,
    nodes: Option<&'a [u8]>,
    nodes6: Option<&'a [u8]>,
    values: Vec<&'a [u8]>,
    want: Want,
}

impl Message {
    /// Decodes one datagram. Never panics; allocations are bounded by the caps above.
    pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
        if buf.len() > MAX_MESSAGE_LEN {
            return Err(DecodeError::TooLong);
        }
        let mut decoder = Decoder::new(buf).with_max_depth(MAX_DEPTH);
        let raw = {
            let Some(Object::Dict(mut dict)) = decoder.next_object()? else {
                return Err(DecodeError::Malformed("not a dictionary"));
            };
            let mut raw = RawMessage::default();
            while let Some((key, value)) = dict.next_pair()? {
                match key {
                    b"t" => raw.tid = as_bytes(value),
                    b"y" => raw.y = as_bytes(value),
                    b"q" => raw.q = as_bytes(value),
                    b"a" | b"r" => raw.args = Some(parse_args(value)?),
                    b"e" => raw.error = Some(parse_error(value)?),
                    b"ro" => raw.read_only = as_int(value) == Some(1),
                    // Anything else (v, ip, ...) is dropped; dropping a nested decoder
                    // consumes and validates it.
                    _ => {}
                }
            }
            raw
        };
        if decoder.next_object()?.is_some() {
            return Err(DecodeError::Malformed("trailing data"));
        }
        raw.into_message()
    }

    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut enc = Encoder::new().with_max_depth(MAX_DEPTH);
        // Keys in bencode order: a, e, q, r, ro, t, y.
        enc.emit_dict(|mut d| {
            match &self.body {
                Body::Query(q) => {
                    d.emit_pair_with(b"a", |e| encode_query_args(q, e))?;
                    d.emit_pair_with(b"q", |e| e.emit_str(q.method.name()))?;
                }
                Body::Response(r) => d.emit_pair_with(b"r", |e| encode_response(r, e))?,
                Body::Error(err) => d.emit_pair_with(b"e", |e| {
                    e.emit_list(|l| {
                        l.emit_int(err.code)?;
                        l.emit_str(&err.message)
                    })
                })?,
            }
            if self.read_only {
                d.emit_pair(b"ro", 1)?;
            }
            d.emit_pair_with(b"t", |e| e.emit_bytes(&self.tid))?;
            d.emit_pair_with(b"y", |e| e.emit_str(self.body.y()))
        })?;
        Ok(enc.get_output()?)
    }
}

impl Body {
    fn y(&self) -> &'static str {
        match self {
            Body::Query(_) => "q",
            Body::Response(_) => "r",
            Body::Error(_) => "e",
        }
    }
}

impl Method {
    pub fn name(&self) -> &str {
        match self {
            Method::Ping => "ping",
            Method::FindNode { .. } => "find_node",
            Method::GetPeers { .. } => "get_peers",
            Method::AnnouncePeer { .. } => "announce_peer",
            Method::Unknown(name) => name,
        }
    }
}

impl<'a> RawMessage<'a> {
    fn into_message(self) -> Result<Message, DecodeError> {
        let tid = self
            .tid
            .ok_or(DecodeError::Malformed("no transaction id"))?;
        if tid.len() > MAX_TID_LEN {
            return Err(DecodeError::Malformed("transaction id too long"));
        }
        let tid = tid.to_vec();
        let body = match self.y {
            Some(b"q") => {
                let bad = |reason| DecodeError::BadQuery {
                    tid: tid.clone(),
                    reason,
                };
                let method = self.q.ok_or_else(|| bad("no method"))?;
                let args = self.args.ok_or_else(|| bad("no arguments"))?;
                Body::Query(args.into_query(method).map_err(bad)?)
            }
            Some(b"r") => {
                let args = self
                    .args
                    .ok_or(DecodeError::Malformed("no response values"))?;
                Body::Response(args.into_response()?)
            }
            Some(b"e") => Body::Error(self.error.ok_or(DecodeError::Malformed("no error"))?),
            _ => return Err(DecodeError::Malformed("unknown message type")),
        };
        Ok(Message {
            tid,
            body,
            read_only: self.read_only,
        })
    }
}

impl<'a> RawArgs<'a> {
    fn into_query(self, method: &[u8]) -> Result<Query, &'static str> {
        let id = self
            .id
            .and_then(NodeId::from_bytes)
            .ok_or("bad or missing id")?;
        let info_hash = || {
            self.info_hash
                .and_then(NodeId::from_bytes)
                .map(InfoHash::from)
                .ok_or("bad or missing info_hash")
        };
        let method = match method {
            b"ping" => Method::Ping,
            b"find_node" => Method::FindNode {
                target: self
                    .target
                    .and_then(NodeId::from_bytes)
                    .ok_or("bad or missing target")?,
                want: self.want,
            },
            b"get_peers" => Method::GetPeers {
                info_hash: info_hash()?,
                want: self.want,
            },
            b"announce_peer" => {
                let implied_port = self.implied_port.is_some_and(|v| v != 0);
                let port = match self.port.map(u16::try_from) {
                    Some(Ok(p)) if p != 0 => p,
                    _ if implied_port => 0,
                    _ => return Err("bad or missing port"),
                };
                let token = self.token.ok_or("missing token")?;
                if token.len() > MAX_TOKEN_LEN {
                    return Err("token too long");
                }
                Method::AnnouncePeer {
                    info_hash: info_hash()?,
                    port,
                    implied_port,
                    token: token.to_vec(),
                }
            }
            other if other.len() <= MAX_METHOD_LEN => {
                Method::Unknown(lossy_text(other, MAX_METHOD_LEN))
            }
            _ => return Err("method name too long"),
        };
        Ok(Query { id, method })
    }

    fn into_response(self) -> Result<Response, DecodeError> {
        let id = self.id.and_then(NodeId::from_bytes);
        if id.is_none() {
            return Err(DecodeError::Malformed("response without a valid id"));
        }
        let token = match self.token {
            Some(t) if t.len() > MAX_TOKEN_LEN => {
                return Err(DecodeError::Malformed("token too long"))
            }
            t => t.map(<[u8]>::to_vec),
        };
        Ok(Response {
            id,
            nodes: self.nodes.map(decode_nodes4).unwrap_or_default(),
            nodes6: self.nodes6.map(decode_nodes6).unwrap_or_default(),
            values: self.values.iter().filter_map(|v| decode_peer(v)).collect(),
            token,
        })
    }
}

fn as_bytes<'a>(obj: Object<'_, 'a>) -> Option<&'a [u8]> {
    match obj {
        Object::Bytes(b) => Some(b),
        _ => None,
    }
}

fn as_int(obj: Object<'_, '_>) -> Option<i64> {
    match obj {
        Object::Integer(s) => s.parse().ok(),
        _ => None,
    }
}

fn parse_args<'a>(obj: Object<'_, 'a>) -> Result<RawArgs<'a>, DecodeError> {
    let Object::Dict(mut dict) = obj else {
        return Err(DecodeError::Malformed("arguments are not a dictionary"));
    };
    let mut args = RawArgs::default();
    while let Some((key, value)) = dict.next_pair()? {
        match key {
            b"id" => args.id = as_bytes(value),
            b"target" => args.target = as_bytes(value),
            b"info_hash" => args.info_hash = as_bytes(value),
            b"port" => args.port = as_int(value),
            b"implied_port" => args.implied_port = as_int(value),
            b"token" => args.token = as_bytes(value),
            b"nodes" => args.nodes = as_bytes(value),
            b"nodes6" => args.nodes6 = as_bytes(value),
            b"values" => {
                if let Object::List(mut list) = value {
                    while let Some(item) = list.next_object()? {
                        match as_bytes(item) {
                            Some(v) if args.values.len() < MAX_VALUES => args.values.push(v),
                            _ => {}
                        }
                    }
                }
            }
            b"want" => {
                if let Object::List(mut list) = value {
                    while let Some(item) = list.next_object()? {
                        match as_bytes(item) {
                            Some(b"n4") => args.want.n4 = true,
                            Some(b"n6") => args.want.n6 = true,
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(args)
}

fn parse_error(obj: Object<'_, '_>) -> Result<ErrorBody, DecodeError> {
    let Object::List(mut list) = obj else {
        return Err(DecodeError::Malformed("error is not a list"));
    };
    let code = list.next_object()?.and_then(as_int).unwrap_or(ERR_GENERIC);
    let text = list.next_object()?.and_then(as_bytes).unwrap_or_default();
    list.consume_all()?;
    Ok(ErrorBody {
        code,
        message: lossy_text(text, MAX_ERROR_TEXT),
    })
}

/// Text from the wire as at most `max` bytes of UTF-8. The cut comes after the lossy conversion,
/// at a character boundary: each byte that is not UTF-8 becomes U+FFFD, three bytes, so cutting
/// the raw bytes first let a name reach three times its cap (and not decode again once encoded;
/// found by the `krpc` fuzz target).
fn lossy_text(bytes: &[u8], max: usize) -> String {
    let raw = bytes.get(..max).unwrap_or(bytes);
    let mut text = String::from_utf8_lossy(raw).into_owned();
    let mut cut = text.len().min(max);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

fn encode_query_args(q: &Query, e: SingleItemEncoder) -> Result<(), bendy::encoding::Error> {
    // Keys in bencode order: id, implied_port, info_hash, port, target, token, want.
    e.emit_dict(|mut d| {
        d.emit_pair_with(b"id", |e| e.emit_bytes(q.id.as_bytes()))?;
        match &q.method {
            Method::Ping | Method::Unknown(_) => {}
            Method::FindNode { target, want } => {
                d.emit_pair_with(b"target", |e| e.emit_bytes(target.as_bytes()))?;
                encode_want(*want, &mut d)?;
            }
            Method::GetPeers { info_hash, want } => {
                d.emit_pair_with(b"info_hash", |e| e.emit_bytes(info_hash.as_bytes()))?;
                encode_want(*want, &mut d)?;
            }
            Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                d.emit_pair(b"implied_port", u8::from(*implied_port))?;
                d.emit_pair_with(b"info_hash", |e| e.emit_bytes(info_hash.as_bytes()))?;
                d.emit_pair(b"port", *port)?;
                d.emit_pair_with(b"token", |e| e.emit_bytes(token))?;
            }
        }
        Ok(())
    })
}

fn encode_want(
    want: Want,
    d: &mut bendy::encoding::SortedDictEncoder,
) -> Result<(), bendy::encoding::Error> {
    if want.n4 || want.n6 {
        d.emit_pair_with(b"want", |e| {
            e.emit_list(|l| {
                if want.n4 {
                    l.emit_str("n4")?;
                }
                if want.n6 {
                    l.emit_str("n6")?;
                }
                Ok(())
            })
        })?;
    }
    Ok(())
}

fn encode_response(r: &Response, e: SingleItemEncoder) -> Result<(), bendy::encoding::Error> {
    // Keys in bencode order: id, nodes, nodes6, token, values.
    e.emit_dict(|mut d| {
        if let Some(id) = &r.id {
            d.emit_pair_with(b"id", |e| e.emit_bytes(id.as_bytes()))?;
        }
        if !r.nodes.is_empty() {
            d.emit_pair_with(b"nodes", |e| e.emit_bytes(&encode_nodes(&r.nodes, false)))?;
        }
        if !r.nodes6.is_empty() {
            d.emit_pair_with(b"nodes6", |e| e.emit_bytes(&encode_nodes(&r.nodes6, true)))?;
        }
        if let Some(token) = &r.token {
            d.emit_pair_with(b"token", |e| e.emit_bytes(token))?;
        }
        if !r.values.is_empty() {
            d.emit_pair_with(b"values", |e| {
                e.emit_list(|l| {
                    r.values
                        .iter()
                        .try_for_each(|v| l.emit_bytes(&encode_peer(v)))
                })
            })?;
        }
        Ok(())
    })
}

/// Compact peer info: 4- or 16-byte address then the port, big-endian.
pub fn encode_peer(addr: &SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

/// Inverse of [`encode_peer`]; `None` for any other length.
pub fn decode_peer(b: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = match b.len() {
        PEER4_LEN => {
            let octets: [u8; 4] = b[..4].try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(octets)), &b[4..])
        }
        PEER6_LEN => {
            let octets: [u8; 16] = b[..16].try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(octets)), &b[16..])
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])))
}

/// Compact node info, concatenated. Nodes of the other address family are skipped, since
/// `nodes` is IPv4-only and `nodes6` IPv6-only.
pub fn encode_nodes(nodes: &[NodeInfo], v6: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * if v6 { NODE6_LEN } else { NODE4_LEN });
    for n in nodes.iter().filter(|n| n.addr.is_ipv6() == v6) {
        out.extend_from_slice(n.id.as_bytes());
        out.extend_from_slice(&encode_peer(&n.addr));
    }
    out
}

/// Decodes up to [`MAX_NODES`] compact IPv4 nodes; a trailing partial entry is ignored.
pub fn decode_nodes4(b: &[u8]) -> Vec<NodeInfo> {
    decode_nodes(b, NODE4_LEN)
}

/// Decodes up to [`MAX_NODES`] compact IPv6 nodes; a trailing partial entry is ignored.
pub fn decode_nodes6(b: &[u8]) -> Vec<NodeInfo> {
    decode_nodes(b, NODE6_LEN)
}

fn decode_nodes(b: &[u8], entry: usize) -> Vec<NodeInfo> {
    b.chunks_exact(entry)
        .take(MAX_NODES)
        .filter_map(|c| {
            let id = NodeId::from_bytes(&c[..20])?;
            let addr = decode_peer(&c[20..])?;
            // Port 0 cannot be contacted; such entries are noise.
            (addr.port() != 0).then_some(NodeInfo { id, addr })
        })
        .collect()
}

#[cfg(test)]
#[path = "krpc_tests.rs"]
mod tests;
