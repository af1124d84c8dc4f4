//! Turning what users hand the daemon (`.torrent` bytes, a magnet URI, a `.magnet` file) into a
//! validated [`NewTorrent`]. Shared by the control socket and the watch directory, so both accept
//! and reject exactly the same input with the same messages.

use std::path::Path;

use swarm_wire::{Magnet, Metainfo};
use tokio::io::AsyncReadExt;

use crate::engine::NewTorrent;

/// Largest `.torrent` read from disk. Real ones stay far below (a 1 TiB torrent with 4 MiB pieces
/// has 5 MiB of piece hashes); anything larger is refused before it is read into memory.
pub const MAX_TORRENT_FILE: u64 = 32 << 20;

/// Parses the bytes of a `.torrent` file.
pub fn parse_metainfo(bytes: &[u8]) -> Result<NewTorrent, String> {
    Metainfo::from_bytes(bytes)
        .map(|m| NewTorrent::Metainfo(Box::new(m)))
        .map_err(|e| e.to_string())
}

/// Whether `bytes` look like the start of a `.torrent` that is still being written: nothing yet,
/// or bencode that ends in the middle of a value. Garbage, or a complete file with bad contents,
/// does not.
pub fn looks_truncated(bytes: &[u8]) -> bool {
    use swarm_wire::bencode::{decode, BencodeError, Limits};
    matches!(
        decode(bytes, Limits::TORRENT),
        Err(BencodeError::Empty
            | BencodeError::Truncated { .. }
            | BencodeError::TruncatedString { .. })
    )
}

/// Parses one magnet URI.
pub fn parse_magnet(uri: &str) -> Result<NewTorrent, String> {
    Magnet::parse(uri.trim())
        .map(|m| NewTorrent::Magnet(Box::new(m)))
        .map_err(|e| e.to_string())
}

/// Parses the content of a `.magnet` file: exactly one magnet URI; blank lines and `#` comments
/// around it are allowed.
pub fn parse_magnet_file(bytes: &[u8]) -> Result<NewTorrent, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_owned())?;
    let mut uris = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let uri = uris.next().ok_or("the file holds no magnet URI")?;
    if uris.next().is_some() {
        return Err(
            "the file holds more than one line; put one magnet URI per .magnet file".into(),
        );
    }
    parse_magnet(uri)
}

/// Reads a file of at most [`MAX_TORRENT_FILE`] bytes.
pub async fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_FILE + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_TORRENT_FILE {
        return Err(format!(
            "{} is larger than {} MiB",
            path.display(),
            MAX_TORRENT_FILE >> 20
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn magnet_files() {
        let good = format!("# from the web page\n\nmagnet:?xt=urn:btih:{HASH}&dn=x\n");
        match parse_magnet_file(good.as_bytes()).unwrap() {
            NewTorrent::Magnet(m) => assert_eq!(m.info_hash.to_hex(), HASH),
            other => panic!("{other:?}"),
        }
        assert!(parse_magnet_file(b"\n# only a comment\n")
            .unwrap_err()
            .contains("no magnet"));
        let two = format!("magnet:?xt=urn:btih:{HASH}\nmagnet:?xt=urn:btih:{HASH}\n");
        assert!(parse_magnet_file(two.as_bytes())
            .unwrap_err()
            .contains("more than one"));
        assert!(parse_magnet_file(&[0xff, 0xfe])
            .unwrap_err()
            .contains("UTF-8"));
        assert!(parse_magnet_file(b"http://example.com/").is_err());
    }

    #[test]
    fn garbage_is_not_a_torrent() {
        assert!(parse_metainfo(b"this is not bencode").is_err());
        assert!(parse_metainfo(b"").is_err());
    }

    #[test]
    fn truncated_is_not_garbage() {
        let whole = b"d8:announce3:url4:infod6:lengthi3e4:name1:xee";
        for cut in [0, 1, 5, 12, 20, whole.len() - 1] {
            assert!(looks_truncated(&whole[..cut]), "cut at {cut}");
        }
        assert!(!looks_truncated(whole));
        assert!(!looks_truncated(b"this is not bencode"));
        assert!(!looks_truncated(b"d4:infoi3ee trailing"));
    }

    #[tokio::test]
    async fn reading_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.torrent");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_TORRENT_FILE + 10).unwrap();
        assert!(read_capped(&big)
            .await
            .unwrap_err()
            .contains("larger than 32 MiB"));
        let err = read_capped(&dir.path().join("missing")).await.unwrap_err();
        assert!(
            err.contains("cannot read") && err.contains("missing"),
            "{err}"
        );
    }
}
