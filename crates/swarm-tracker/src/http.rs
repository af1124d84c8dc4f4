//! HTTP(S) trackers (BEP 3 with BEP 7 and BEP 23 replies), blocking, through `ureq`.
//!
//! Blocking on purpose: tracker requests are rare (one per torrent every ~30 minutes) and `ureq` is
//! small; the announcer runs these calls with `tokio::task::spawn_blocking`. Each call has one overall
//! deadline, and the reply body is read through `take` so a tracker cannot make us buffer more than
//! [`MAX_REPLY_BYTES`].
//!
//! The query string is built by hand: `info_hash` and `peer_id` are raw bytes, not text, and must be
//! percent-encoded byte by byte, which `ureq`'s text-oriented `query()` cannot do.

use std::io::{self, Read};
use std::time::Duration;

use swarm_wire::InfoHash;

use crate::http_reply::{parse_announce, parse_scrape};
use crate::types::{AnnounceRequest, AnnounceResponse, ScrapeResponse, TrackerError};

/// Largest reply body we accept (after `Content-Encoding` decompression). A compact reply with
/// hundreds of peers is a few kB; this leaves room for big scrapes and dictionary peer lists.
pub const MAX_REPLY_BYTES: u64 = 2 * 1024 * 1024;

/// Redirects are followed (some trackers move), but not forever.
const MAX_REDIRECTS: u32 = 5;

const USER_AGENT: &str = concat!("swarmd/", env!("CARGO_PKG_VERSION"));

/// Appends `bytes` to `out`, percent-encoded byte-wise: only RFC 3986 unreserved characters stay
/// literal, because trackers compare the decoded bytes and some decode `+` or `~` loosely.
pub fn percent_encode_bytes(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
}

/// Adds `params` (already encoded) to `base`, after its own query if it has one, and before any
/// `#fragment` (which is never sent but must stay last).
fn with_query(base: &str, params: &str) -> String {
    let (head, fragment) = match base.find('#') {
        Some(i) => base.split_at(i),
        None => (base, ""),
    };
    let sep = match head.find('?') {
        None => "?",
        Some(_) if head.ends_with('?') || head.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{head}{sep}{params}{fragment}")
}

fn check_scheme(url: &str) -> Result<(), TrackerError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(())
    } else {
        Err(TrackerError::unsupported(url, "not an http(s) URL"))
    }
}

/// The full announce URL for `req`.
pub fn announce_url(url: &str, req: &AnnounceRequest) -> String {
    let mut q = String::with_capacity(256);
    q.push_str("info_hash=");
    percent_encode_bytes(req.info_hash.as_bytes(), &mut q);
    q.push_str("&peer_id=");
    percent_encode_bytes(&req.peer_id, &mut q);
    q.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact={}&key={:08x}",
        req.port,
        req.uploaded,
        req.downloaded,
        req.left,
        u8::from(req.compact),
        req.key
    ));
    if req.compact {
        q.push_str("&no_peer_id=1");
    }
    if let Some(event) = req.event.http_name() {
        q.push_str("&event=");
        q.push_str(event);
    }
    if let Some(n) = req.numwant {
        q.push_str(&format!("&numwant={n}"));
    }
    if let Some(id) = &req.tracker_id {
        q.push_str("&trackerid=");
        percent_encode_bytes(id.as_bytes(), &mut q);
    }
    if let Some(ip) = req.ip {
        q.push_str("&ip=");
        percent_encode_bytes(ip.to_string().as_bytes(), &mut q);
    }
    with_query(url, &q)
}

/// The scrape URL of an announce URL, by the convention of BEP 48: the last path segment must start
/// with `announce`, which is replaced by `scrape`. Trackers whose URL does not follow it do not
/// support scraping.
pub fn scrape_url_of(announce: &str) -> Option<String> {
    let end = announce.find(['?', '#']).unwrap_or(announce.len());
    let (path, rest) = announce.split_at(end);
    let slash = path.rfind('/')?;
    let last = &path[slash + 1..];
    let tail = last.strip_prefix("announce")?;
    // `scheme://host` has its last slash inside `//`; that is not a path segment.
    if path[..slash].ends_with('/') || !path[..slash].contains("//") {
        return None;
    }
    Some(format!("{}/scrape{tail}{rest}", &path[..slash]))
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(timeout)
        .redirects(MAX_REDIRECTS)
        .user_agent(USER_AGENT)
        .build()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Reads at most `MAX_REPLY_BYTES` of the body; one byte more means the reply is too large.
fn read_body(url: &str, resp: ureq::Response, timeout: Duration) -> Result<Vec<u8>, TrackerError> {
    let mut body = Vec::new();
    resp.into_reader()
        .take(MAX_REPLY_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| io_error(url, e, timeout))?;
    if body.len() as u64 > MAX_REPLY_BYTES {
        return Err(TrackerError::bad(
            url,
            format!("reply is larger than {MAX_REPLY_BYTES} bytes"),
        ));
    }
    Ok(body)
}

fn io_error(url: &str, e: io::Error, timeout: Duration) -> TrackerError {
    if is_timeout(&e) {
        TrackerError::Timeout {
            url: url.to_owned(),
            after: timeout,
        }
    } else {
        TrackerError::io(url, e)
    }
}

/// Performs one GET and returns the body. An HTTP error status is passed on with its body, because
/// trackers often explain a refusal in a bencoded `failure reason` under a 4xx status.
fn get(url: &str, full_url: &str, timeout: Duration) -> Result<(u16, Vec<u8>), TrackerError> {
    match agent(timeout).get(full_url).call() {
        Ok(resp) => {
            let status = resp.status();
            Ok((status, read_body(url, resp, timeout)?))
        }
        Err(ureq::Error::Status(status, resp)) => Ok((status, read_body(url, resp, timeout)?)),
        Err(ureq::Error::Transport(t)) => Err(transport_error(url, &t, timeout)),
    }
}

/// Maps a `ureq` transport failure. Its own text starts with the full request URL (our query
/// included); ours names the tracker URL once, so that is left out.
fn transport_error(url: &str, t: &ureq::Transport, timeout: Duration) -> TrackerError {
    let mut what = t.kind().to_string();
    if let Some(m) = t.message() {
        what.push_str(": ");
        what.push_str(m);
    }
    let source = std::error::Error::source(t);
    if let Some(s) = source {
        what.push_str(": ");
        what.push_str(&s.to_string());
    }
    match t.kind() {
        ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => {
            return TrackerError::unsupported(url, what)
        }
        ureq::ErrorKind::BadStatus | ureq::ErrorKind::BadHeader => {
            return TrackerError::bad(url, what)
        }
        _ => {}
    }
    let kind = source
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map_or(io::ErrorKind::Other, io::Error::kind);
    io_error(url, io::Error::new(kind, what), timeout)
}

/// Turns a reply-parser result into the transport's error, taking the HTTP status into account: a
/// non-200 reply that is not a bencoded refusal is reported by its status.
fn check<T>(
    url: &str,
    status: u16,
    parsed: Result<T, crate::types::ReplyProblem>,
) -> Result<T, TrackerError> {
    match parsed {
        Ok(v) if status == 200 => Ok(v),
        Err(p @ crate::types::ReplyProblem::Refused(_)) => Err(p.into_error(url)),
        _ if status != 200 => Err(TrackerError::bad(url, format!("HTTP status {status}"))),
        Ok(v) => Ok(v),
        Err(p) => Err(p.into_error(url)),
    }
}

/// Announces to an HTTP(S) tracker. Blocking: call it from a blocking thread. `timeout` bounds the
/// whole exchange (connect, request, reply).
pub fn http_announce(
    url: &str,
    req: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, TrackerError> {
    check_scheme(url)?;
    let (status, body) = get(url, &announce_url(url, req), timeout)?;
    check(url, status, parse_announce(&body))
}

/// Scrapes an HTTP(S) tracker for `hashes` (all in one request). Fails with
/// [`TrackerError::Unsupported`] when the announce URL does not follow the scrape convention.
pub fn http_scrape(
    url: &str,
    hashes: &[InfoHash],
    timeout: Duration,
) -> Result<ScrapeResponse, TrackerError> {
    check_scheme(url)?;
    let base = scrape_url_of(url).ok_or_else(|| {
        TrackerError::unsupported(
            url,
            "scrape: the URL's last path segment is not `announce…`",
        )
    })?;
    let mut q = String::new();
    for (i, h) in hashes.iter().enumerate() {
        if i > 0 {
            q.push('&');
        }
        q.push_str("info_hash=");
        percent_encode_bytes(h.as_bytes(), &mut q);
    }
    let (status, body) = get(url, &with_query(&base, &q), timeout)?;
    check(url, status, parse_scrape(&body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Event;

    #[test]
    fn percent_encoding_is_bytewise() {
        let mut s = String::new();
        percent_encode_bytes(b"\x00\xffaZ9-._~ +/%", &mut s);
        assert_eq!(s, "%00%FFaZ9-._~%20%2B%2F%25");
    }

    #[test]
    fn query_is_appended_correctly() {
        assert_eq!(with_query("http://t/a", "x=1"), "http://t/a?x=1");
        assert_eq!(with_query("http://t/a?k=v", "x=1"), "http://t/a?k=v&x=1");
        assert_eq!(with_query("http://t/a?", "x=1"), "http://t/a?x=1");
        assert_eq!(with_query("http://t/a?k=v&", "x=1"), "http://t/a?k=v&x=1");
        assert_eq!(with_query("http://t/a#f", "x=1"), "http://t/a?x=1#f");
    }

    #[test]
    fn announce_url_carries_every_field() {
        let mut req = AnnounceRequest::new(InfoHash([0xab; 20]), *b"-SW0100-abcdefghijkl", 6881);
        req.left = 42;
        req.event = Event::Started;
        req.numwant = Some(80);
        req.tracker_id = Some("id 1".into());
        req.key = 0xdead;
        let u = announce_url("http://t:80/announce?passkey=x", &req);
        assert!(u.starts_with("http://t:80/announce?passkey=x&info_hash=%AB%AB"));
        for part in [
            "&peer_id=-SW0100-abcdefghijkl&",
            "&port=6881&",
            "&left=42&",
            "&compact=1&",
            "&event=started",
            "&numwant=80",
            "&trackerid=id%201",
            "&key=0000dead",
        ] {
            assert!(u.contains(part), "{u} lacks {part}");
        }
    }

    #[test]
    fn scrape_convention() {
        let s = |u| scrape_url_of(u);
        assert_eq!(s("http://t/announce").as_deref(), Some("http://t/scrape"));
        assert_eq!(
            s("http://t/x/announce.php?k=1").as_deref(),
            Some("http://t/x/scrape.php?k=1")
        );
        assert_eq!(s("http://t/a"), None);
        assert_eq!(s("http://t/announce/x"), None);
        assert_eq!(s("http://announce"), None);
        assert_eq!(s("announce"), None);
    }

    #[test]
    fn other_schemes_are_unsupported() {
        let req = AnnounceRequest::new(InfoHash([0; 20]), [0; 20], 1);
        let e = http_announce("udp://t:1/announce", &req, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, TrackerError::Unsupported { .. }), "{e}");
    }
}
