//! # Blocklist lines (pure: no I/O)
//!
//! One line of a blocklist file, whatever its format, which is told per line, so a list
//! concatenated from several sources reads too:
//! - eMule DAT: `000.000.000.000 - 000.255.255.255 , 000 , description` (octets may be
//!   zero-padded: decimal, not octal). The middle field is the access level: as eMule and
//!   qBittorrent do, a level above 127 means "allowed" and the line blocks nothing.
//! - PeerGuardian P2P text: `description:1.2.3.4-1.2.3.255` (the description may hold colons
//!   and dashes; the addresses are read from the right).
//! - CIDR (`10.0.0.0/8`, `2001:db8::/32`), a bare range (`1.2.3.4-1.2.3.9`) or a single address.
//!
//! IPv4 and IPv6 alike; a range must not mix them. Blank lines and comments (`#`, `//`, `;`)
//! say nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What one line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// Block `start..=end` (both of one family, `start <= end`).
    Block(IpAddr, IpAddr),
    /// Blank, a comment, or a DAT rule that allows (level above 127).
    Nothing,
}

/// Why a line is not a rule: shown with its file and line number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("{0:?} is not an IP address")]
    Address(String),
    #[error(
        "not a rule: expected `A - B , level , text` (DAT), `text:A-B` (P2P), A/bits or an address"
    )]
    Shape,
    #[error("the range mixes IPv4 and IPv6")]
    MixedFamilies,
    #[error("the range starts after it ends")]
    Reversed,
    #[error("prefix length {0} is too long for the address")]
    Prefix(String),
    #[error("access level {0:?} is not a number")]
    Level(String),
}

/// The access level above which an eMule DAT rule allows rather than blocks.
const DAT_ALLOW_ABOVE: u32 = 127;

pub fn parse_line(line: &str) -> Result<Line, LineError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with("//") || line.starts_with(';') {
        return Ok(Line::Nothing);
    }
    if line.contains(',') {
        return dat(line);
    }
    if let Some((left, end)) = line.rsplit_once('-') {
        return p2p(left, end);
    }
    if let Some((addr, bits)) = line.split_once('/') {
        return cidr(addr.trim(), bits.trim());
    }
    let ip = address(line)?;
    Ok(Line::Block(ip, ip))
}

fn dat(line: &str) -> Result<Line, LineError> {
    let mut fields = line.splitn(3, ',');
    let range = fields.next().unwrap_or_default();
    let level = fields.next().unwrap_or_default().trim();
    let Some((start, end)) = range.split_once('-') else {
        return Err(LineError::Shape);
    };
    let rule = block(address(start.trim())?, address(end.trim())?)?;
    if !level.is_empty() {
        let n: u32 = level
            .parse()
            .map_err(|_| LineError::Level(level.to_owned()))?;
        if n > DAT_ALLOW_ABOVE {
            return Ok(Line::Nothing);
        }
    }
    Ok(rule)
}

/// `left` is `[description:]start`; the start address is the longest suffix after a colon
/// that parses (an IPv6 start holds colons of its own).
fn p2p(left: &str, end: &str) -> Result<Line, LineError> {
    let end = address(end.trim())?;
    let left = left.trim();
    let start = std::iter::once(0)
        .chain(left.match_indices(':').map(|(i, _)| i + 1))
        .find_map(|at| address(left[at..].trim()).ok())
        .ok_or_else(|| LineError::Address(left.to_owned()))?;
    block(start, end)
}

fn cidr(addr: &str, bits: &str) -> Result<Line, LineError> {
    let ip = address(addr)?;
    let n: u32 = bits
        .parse()
        .map_err(|_| LineError::Prefix(bits.to_owned()))?;
    match ip {
        IpAddr::V4(a) if n <= 32 => {
            let host = u32::MAX.checked_shr(n).unwrap_or(0);
            let start = u32::from(a) & !host;
            Ok(Line::Block(
                Ipv4Addr::from(start).into(),
                Ipv4Addr::from(start | host).into(),
            ))
        }
        IpAddr::V6(a) if n <= 128 => {
            let host = u128::MAX.checked_shr(n).unwrap_or(0);
            let start = u128::from(a) & !host;
            Ok(Line::Block(
                Ipv6Addr::from(start).into(),
                Ipv6Addr::from(start | host).into(),
            ))
        }
        _ => Err(LineError::Prefix(bits.to_owned())),
    }
}

fn block(start: IpAddr, end: IpAddr) -> Result<Line, LineError> {
    let ordered = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
        _ => return Err(LineError::MixedFamilies),
    };
    if !ordered {
        return Err(LineError::Reversed);
    }
    Ok(Line::Block(start, end))
}

/// An address as blocklists write them: IPv6, or IPv4 with octets that may be zero-padded
/// (`001.002.003.004`), which the standard parser refuses.
fn address(s: &str) -> Result<IpAddr, LineError> {
    let bad = || LineError::Address(s.to_owned());
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().map(IpAddr::V6).map_err(|_| bad());
    }
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let part = parts.next().ok_or_else(bad)?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        *o = part.parse().map_err(|_| bad())?;
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(IpAddr::V4(Ipv4Addr::from(octets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(a: &str, b: &str) -> Line {
        Line::Block(a.parse().unwrap(), b.parse().unwrap())
    }

    #[test]
    fn emule_dat() {
        assert_eq!(
            parse_line("000.000.000.000 - 000.255.255.255 , 000 , invalid ip"),
            Ok(block("0.0.0.0", "0.255.255.255"))
        );
        assert_eq!(
            parse_line("001.002.004.000 - 001.002.004.255 , 100 , Some, Corp"),
            Ok(block("1.2.4.0", "1.2.4.255"))
        );
        assert_eq!(
            parse_line("1.2.4.0 - 1.2.4.255 , 200 , allowed"),
            Ok(Line::Nothing)
        );
        assert_eq!(
            parse_line("2001:db8:: - 2001:db8::ff , 0 , v6"),
            Ok(block("2001:db8::", "2001:db8::ff"))
        );
        assert!(matches!(
            parse_line("1.2.4.0 - 1.2.4.255 , high , x"),
            Err(LineError::Level(_))
        ));
    }

    #[test]
    fn peerguardian_p2p() {
        assert_eq!(
            parse_line("Some Org:1.2.3.4-1.2.3.255"),
            Ok(block("1.2.3.4", "1.2.3.255"))
        );
        assert_eq!(
            parse_line("a:b - c:d-e:10.0.0.1-10.0.0.2"),
            Ok(block("10.0.0.1", "10.0.0.2"))
        );
        assert_eq!(
            parse_line("lab:2001:db8::1-2001:db8::9"),
            Ok(block("2001:db8::1", "2001:db8::9"))
        );
        assert_eq!(
            parse_line("1.2.3.4-1.2.3.9"),
            Ok(block("1.2.3.4", "1.2.3.9"))
        );
    }

    #[test]
    fn cidr_and_single_addresses() {
        assert_eq!(
            parse_line("10.1.2.3/8"),
            Ok(block("10.0.0.0", "10.255.255.255"))
        );
        assert_eq!(
            parse_line("0.0.0.0/0"),
            Ok(block("0.0.0.0", "255.255.255.255"))
        );
        assert_eq!(parse_line("9.9.9.9/32"), Ok(block("9.9.9.9", "9.9.9.9")));
        assert_eq!(
            parse_line("2001:db8::/32"),
            Ok(block(
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
            ))
        );
        assert_eq!(
            parse_line("  127.0.0.2  "),
            Ok(block("127.0.0.2", "127.0.0.2"))
        );
        assert_eq!(parse_line("::1"), Ok(block("::1", "::1")));
        assert_eq!(
            parse_line("1.2.3.4/33"),
            Err(LineError::Prefix("33".into()))
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        for l in ["", "   ", "# x", "// y", "; z"] {
            assert_eq!(parse_line(l), Ok(Line::Nothing), "{l:?}");
        }
    }

    #[test]
    fn malformed_lines_say_why() {
        assert_eq!(parse_line("hello"), Err(LineError::Address("hello".into())));
        assert_eq!(parse_line("1.2.3.4-::1"), Err(LineError::MixedFamilies));
        assert_eq!(parse_line("1.2.3.9-1.2.3.4"), Err(LineError::Reversed));
        assert_eq!(
            parse_line("1.2.3.256"),
            Err(LineError::Address("1.2.3.256".into()))
        );
        assert_eq!(parse_line("1.2.3"), Err(LineError::Address("1.2.3".into())));
        assert_eq!(parse_line("a , b"), Err(LineError::Shape));
    }
}
