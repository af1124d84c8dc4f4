//! Names in the `info` dictionary (the torrent's `name`, each element of a file's `path`) turned
//! into the text swarmd shows and writes to disk. Pure code: bytes in, text or a refusal out.
//!
//! BEP 3 says names are UTF-8; old torrents often hold a legacy code page instead (Latin-1,
//! CP1251, Shift-JIS…), and torrents made on Windows sometimes hold a `\`. Both are valid
//! torrents that libtorrent and transmission download, so they are accepted here and the name is
//! *sanitized*; the info-hash does not change, because it is taken over the raw `info` bytes,
//! which are kept as they came.
//!
//! The rules (what other clients do, and why ours differ where they do):
//! - `name.utf-8` / `path.utf-8` are preferred when present and valid UTF-8, as libtorrent and
//!   transmission do: clients that write them put the properly encoded name there.
//! - An invalid UTF-8 byte becomes `%XX` (upper-case hex). transmission writes U+FFFD and
//!   libtorrent `_`; both lose the byte, and two names that differ only in such bytes then collide.
//!   `%XX` keeps the byte visible and recoverable and the names distinct.
//! - A `\` becomes `_`, as transmission does (libtorrent drops it): it is a path separator on
//!   Windows and in Samba shares, and a name holding `..\..\x` must not look like a path to
//!   anything that later copies the files.
//! - What stays refused, as before: an element that is empty, `.` or `..`, or that holds `/` or
//!   NUL, after sanitizing ([`check_path_element`]). These are the path-traversal shapes, and a
//!   torrent that holds them is made to hurt, not old.
//!
//! The same text is shown (`list`, `inspect`, events) and used on disk, so what a user sees is the
//! file they find. When it differs from the torrent's own bytes, the bytes are kept next to it
//! (`Info::raw_name`, `FileEntry::raw_path`) and `swarmctl inspect` shows both.

use std::fmt::Write as _;

use crate::bencode::{Dict, Value};

/// Checks one path element (a file or directory name). `Err` holds the reason.
///
/// Refused: empty, `.`, `..`, and any `/`, `\` or NUL inside (a `/` would split the element, a
/// `\` is a separator on Windows, NUL ends a C string early). Absolute paths are refused through
/// these rules: `/etc/passwd` either contains `/` or starts with an empty element. Metainfo
/// parsing applies it after [`sanitize_element`], which has replaced every `\`; `create` applies
/// it to the names it is given.
pub fn check_path_element(element: &str) -> Result<(), &'static str> {
    match element {
        "" => Err("empty path element"),
        "." => Err("`.` path element"),
        ".." => Err("`..` path element (would escape the download directory)"),
        _ if element.contains('/') => Err("`/` inside a path element"),
        _ if element.contains('\\') => Err("`\\` inside a path element"),
        _ if element.contains('\0') => Err("NUL byte inside a path element"),
        _ => Ok(()),
    }
}

/// The text swarmd uses for the name `raw`: invalid UTF-8 bytes as `%XX`, `\` as `_`, checked
/// with [`check_path_element`]. `Err` holds the reason the element is refused.
pub fn sanitize_element(raw: &[u8]) -> Result<String, &'static str> {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        out.extend(
            chunk
                .valid()
                .chars()
                .map(|c| if c == '\\' { '_' } else { c }),
        );
        for b in chunk.invalid() {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    check_path_element(&out)?;
    Ok(out)
}

/// The raw bytes of a name as a readable string: valid UTF-8 as it is, every other byte as
/// `\xNN`, and `\` itself as `\\` so that the form is unambiguous. For `swarmctl inspect`.
pub fn escape_raw(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.extend(c.escape_default()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// A name as swarmd uses it (its elements), and the torrent's own bytes when they differ.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Named {
    pub text: Vec<String>,
    pub raw: Option<Vec<Vec<u8>>>,
}

/// The `.utf-8` twin of `key` (`name.utf-8`, `path.utf-8`), if the dictionary has one.
fn utf8_twin<'a>(d: &'a Dict, key: &str) -> Option<&'a Value> {
    d.get(format!("{key}.utf-8").as_bytes())
}

/// The byte strings of a name: one for `name`, one per element for `path`. `None` when the value
/// is not that shape.
fn elements(v: &Value, list: bool) -> Option<Vec<&[u8]>> {
    if list {
        v.as_list()?.iter().map(Value::as_bytes).collect()
    } else {
        v.as_bytes().map(|b| vec![b])
    }
}

/// The twin, when it is the right shape, not empty and valid UTF-8 throughout.
fn usable_twin(v: Option<&Value>, list: bool) -> Option<Vec<&[u8]>> {
    elements(v?, list).filter(|e| !e.is_empty() && e.iter().all(|b| std::str::from_utf8(b).is_ok()))
}

/// Sanitizes the elements of `key` in `d` (preferring `key.utf-8`, see the module docs). `raw`
/// are the elements of `key` itself; the result's `raw` is them when the text differs.
/// `Err((joined text, reason))` names the element that stays refused.
pub(super) fn sanitize(
    d: &Dict,
    key: &str,
    raw: &[&[u8]],
    list: bool,
) -> Result<Named, (String, &'static str)> {
    let chosen = usable_twin(utf8_twin(d, key), list).unwrap_or_else(|| raw.to_vec());
    let mut text = Vec::with_capacity(chosen.len());
    for element in &chosen {
        match sanitize_element(element) {
            Ok(s) => text.push(s),
            Err(reason) => {
                let shown: Vec<String> = chosen.iter().map(|e| escape_raw(e)).collect();
                return Err((shown.join("/"), reason));
            }
        }
    }
    let same = text.len() == raw.len() && text.iter().zip(raw).all(|(t, r)| t.as_bytes() == *r);
    let raw = (!same).then(|| raw.iter().map(|r| r.to_vec()).collect());
    Ok(Named { text, raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_names_are_kept_as_they_are() {
        for name in ["a.bin", "café", "日本語.txt", "a%41", "sp ace", "new\nline"] {
            assert_eq!(sanitize_element(name.as_bytes()).as_deref(), Ok(name));
        }
    }

    #[test]
    fn invalid_bytes_become_percent_hex_and_backslashes_underscores() {
        assert_eq!(
            sanitize_element(b"caf\xe9.txt").as_deref(),
            Ok("caf%E9.txt")
        );
        // A truncated sequence: each byte of it shows.
        assert_eq!(sanitize_element(b"a\xe2\x82").as_deref(), Ok("a%E2%82"));
        // CP1251 "Привет".
        assert_eq!(
            sanitize_element(b"\xcf\xf0\xe8\xe2\xe5\xf2").as_deref(),
            Ok("%CF%F0%E8%E2%E5%F2")
        );
        assert_eq!(
            sanitize_element(b"dir\\file.txt").as_deref(),
            Ok("dir_file.txt")
        );
        // Once one element, a Windows traversal stays one harmless name.
        assert_eq!(
            sanitize_element(b"..\\..\\boot.ini").as_deref(),
            Ok(".._.._boot.ini")
        );
        // Two names that differ only in invalid bytes stay two names.
        assert_ne!(sanitize_element(b"\xe9"), sanitize_element(b"\xe8"));
    }

    #[test]
    fn traversal_shapes_stay_refused() {
        for (raw, reason) in [
            (&b""[..], "empty path element"),
            (b".", "`.` path element"),
            (b"..", "`..` path element"),
            (b"a/b", "`/` inside"),
            (b"/etc", "`/` inside"),
            (b"a\0b", "NUL byte"),
            (b"\xff/..", "`/` inside"),
        ] {
            let err = sanitize_element(raw).unwrap_err();
            assert!(err.contains(reason), "{raw:?}: {err}");
        }
    }

    #[test]
    fn raw_bytes_are_escaped_unambiguously() {
        assert_eq!(escape_raw(b"caf\xe9"), "caf\\xe9");
        assert_eq!(escape_raw(b"a\\b"), "a\\\\b");
        assert_eq!(escape_raw(b"tab\there"), "tab\\there");
        assert_eq!(escape_raw("日本".as_bytes()), "日本");
    }

    fn dict(pairs: &[(&str, Value)]) -> Dict {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn the_utf8_twin_is_preferred_when_usable() {
        let d = dict(&[
            ("name", Value::Bytes(b"caf\xe9".to_vec())),
            ("name.utf-8", Value::string("café")),
        ]);
        let named = sanitize(&d, "name", &[b"caf\xe9"], false).unwrap();
        assert_eq!(named.text, ["café"]);
        assert_eq!(named.raw, Some(vec![b"caf\xe9".to_vec()]));
        // Not UTF-8 either, or the wrong shape: the plain key, sanitized.
        for twin in [Value::Bytes(b"\xff".to_vec()), Value::Int(3)] {
            let d = dict(&[("name.utf-8", twin)]);
            let named = sanitize(&d, "name", &[b"caf\xe9"], false).unwrap();
            assert_eq!(named.text, ["caf%E9"]);
        }
        // A path twin must be a non-empty list of UTF-8 strings.
        let d = dict(&[(
            "path.utf-8",
            Value::List(vec![Value::string("d"), Value::string("é")]),
        )]);
        let named = sanitize(&d, "path", &[b"d", b"\xe9"], true).unwrap();
        assert_eq!(named.text, ["d", "é"]);
        let d = dict(&[("path.utf-8", Value::List(vec![]))]);
        let named = sanitize(&d, "path", &[b"d", b"\xe9"], true).unwrap();
        assert_eq!(named.text, ["d", "%E9"]);
    }

    #[test]
    fn raw_is_kept_only_when_the_text_differs() {
        let named = sanitize(&Dict::new(), "path", &[b"a", b"b"], true).unwrap();
        assert_eq!(named.raw, None);
        let named = sanitize(&Dict::new(), "path", &[b"a", b"b\\c"], true).unwrap();
        assert_eq!(named.text, ["a", "b_c"]);
        assert_eq!(named.raw, Some(vec![b"a".to_vec(), b"b\\c".to_vec()]));
        let (shown, reason) = sanitize(&Dict::new(), "path", &[b"\xe9", b".."], true).unwrap_err();
        assert_eq!(shown, "\\xe9/..");
        assert!(reason.contains("`..`"));
    }
}
