//! `swarmctl add`: what each argument is (a magnet link, an http(s) URL of a `.torrent`, a
//! `.magnet` file, a `.torrent` file) and how it travels to the daemon in a `torrent.add`.
//!
//! A `.torrent` goes as its bytes (base64), so the daemon need not be able to read the user's
//! files, nor reach the user's network: a URL is fetched here, with `ureq`, bounded in time and in
//! size. Every reason a source is refused is returned without the source's name; the caller puts
//! the name in front, once, so that with several sources each error says which one it is about.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use swarm_control::rpc::MAX_REQUEST_LINE;
use swarm_control::TorrentSource;
use swarm_wire::bencode::Limits;

/// The largest `.torrent` sent inline: its base64 (4/3 of it) keeps well clear of the daemon's
/// default request-line limit. A larger local file is sent by path; a larger download is refused.
pub const MAX_INLINE: usize = (MAX_REQUEST_LINE - 64 * 1024) / 4 * 3;

/// How long fetching one URL may take, connection and body together.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Redirects followed (web servers send `/download/123` on to the file).
const MAX_REDIRECTS: u32 = 5;

/// True for the URL forms `add` fetches.
fn is_http_url(arg: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        arg.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    })
}

/// A magnet link as is; a URL's `.torrent`; a `.magnet` file's link; a `.torrent` file's bytes in
/// base64 (or, too large for one request line, its absolute path: then the daemon must be able to
/// read it). The error is the reason only, without `arg`.
pub fn source_of(arg: &str) -> Result<TorrentSource, String> {
    if arg
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
    {
        return Ok(TorrentSource::Magnet(arg.to_owned()));
    }
    if is_http_url(arg) {
        return fetch(arg).map(|bytes| TorrentSource::from_metainfo_bytes(&bytes));
    }
    let path = Path::new(arg);
    if path.is_dir() {
        return Err(format!(
            "is a directory; to share it, make a .torrent of it first: swarmctl create {arg} -o {}.torrent",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "NAME".into())
        ));
    }
    let bytes = read_capped(
        std::fs::File::open(path).map_err(|e| e.to_string())?,
        Limits::TORRENT.max_size,
    )?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("magnet"))
    {
        let text = String::from_utf8(bytes).map_err(|_| "is not text".to_owned())?;
        let uri = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'));
        return uri
            .map(|u| TorrentSource::Magnet(u.to_owned()))
            .ok_or_else(|| "holds no magnet link".to_owned());
    }
    if bytes.len() > MAX_INLINE {
        let absolute = std::path::absolute(path).map_err(|e| e.to_string())?;
        return Ok(TorrentSource::Path(absolute.display().to_string()));
    }
    Ok(TorrentSource::from_metainfo_bytes(&bytes))
}

/// Reads at most `limit` bytes; one byte more means the input is too large (and is not loaded).
fn read_capped(reader: impl Read, limit: usize) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > limit {
        return Err(format!(
            "is larger than {}, more than a .torrent can be",
            swarm_control::human::bytes(limit as u64)
        ));
    }
    Ok(bytes)
}

/// GETs `url` and returns the body, which must look like a `.torrent` (a bencoded dictionary):
/// a web page served instead (a login form, a 200 "not found" page) is refused here with what it
/// was, rather than by the daemon as "not valid bencode".
fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(FETCH_TIMEOUT)
        .redirects(MAX_REDIRECTS)
        .user_agent(concat!("swarmctl/", env!("CARGO_PKG_VERSION")))
        .build();
    let response = match agent.get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            return Err(format!(
                "the server answered HTTP {code} {}",
                r.status_text()
            ))
        }
        Err(ureq::Error::Transport(t)) => {
            // ureq's text starts with the URL, which the caller names already.
            let text = t.to_string();
            let reason = text
                .strip_prefix(&format!("{url}: "))
                .unwrap_or(&text)
                .to_owned();
            return Err(format!("cannot fetch: {reason}"));
        }
    };
    let kind = response.content_type().to_owned();
    let body = read_capped(response.into_reader(), MAX_INLINE)?;
    if !body.starts_with(b"d") {
        return Err(format!(
            "the server sent {} bytes of {kind}, not a .torrent",
            body.len()
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A one-request HTTP server on 127.0.0.1 answering `status` with `body`.
    fn serve_once(status: &'static str, body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = [0u8; 4096];
            let _ = s.read(&mut head);
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/x-bittorrent\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        });
        format!("http://{addr}/t.torrent")
    }

    #[test]
    fn urls_are_fetched() {
        let url = serve_once("200 OK", b"d4:infodee".to_vec());
        assert_eq!(
            source_of(&url).unwrap(),
            TorrentSource::from_metainfo_bytes(b"d4:infodee")
        );
        let url = serve_once("404 Not Found", b"gone".to_vec());
        assert_eq!(
            source_of(&url).unwrap_err(),
            "the server answered HTTP 404 Not Found"
        );
        let url = serve_once("200 OK", b"<html>".to_vec());
        let err = source_of(&url).unwrap_err();
        assert!(err.contains("not a .torrent"), "{err}");
        let url = serve_once("200 OK", vec![b'd'; MAX_INLINE + 1]);
        assert!(source_of(&url).unwrap_err().contains("larger than"));
        // Nobody listens: the reason, without the URL (the caller names it).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/x.torrent");
        let err = source_of(&url).unwrap_err();
        assert!(
            err.starts_with("cannot fetch: ") && !err.contains(&url),
            "{err}"
        );
    }

    #[test]
    fn files_and_links() {
        let m = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
        assert_eq!(source_of(m).unwrap(), TorrentSource::Magnet(m.into()));
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("a.torrent");
        std::fs::write(&t, b"d4:infodee").unwrap();
        assert_eq!(
            source_of(t.to_str().unwrap()).unwrap(),
            TorrentSource::from_metainfo_bytes(b"d4:infodee")
        );
        let mf = dir.path().join("a.magnet");
        std::fs::write(&mf, format!("# saved\n{m}\n")).unwrap();
        assert_eq!(
            source_of(mf.to_str().unwrap()).unwrap(),
            TorrentSource::Magnet(m.into())
        );
        let big = dir.path().join("big.torrent");
        std::fs::write(&big, vec![b'x'; MAX_INLINE + 1]).unwrap();
        assert_eq!(
            source_of(big.to_str().unwrap()).unwrap(),
            TorrentSource::Path(big.display().to_string())
        );
        assert_eq!(
            source_of("/nonexistent.torrent").unwrap_err(),
            "No such file or directory (os error 2)"
        );
        let err = source_of(dir.path().to_str().unwrap()).unwrap_err();
        assert!(
            err.starts_with("is a directory") && err.contains("swarmctl create"),
            "{err}"
        );
    }
}
