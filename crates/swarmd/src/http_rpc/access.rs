//! Who may talk to the RPC: the checks transmission-daemon makes before it reads a request, in its
//! order — client address (403), Basic auth (401), `Host:` header (421, against DNS rebinding),
//! `X-Transmission-Session-Id` (409, against cross-site request forgery).
//!
//! Pure: [`Gate::check`] takes what the request says ([`Knock`]) and answers; the server turns a
//! [`Refusal`] into the HTTP response. Built once from `[rpc]` at start.

use std::net::IpAddr;

use data_encoding::BASE64;

use super::password::PasswordHash;

/// The checks, as configured.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Stable for the daemon's lifetime: a client that learnt it keeps working.
    pub session_id: String,
    pub credentials: Option<Credentials>,
    /// Lowercase patterns, `*` matching any run of characters.
    pub host_whitelist: Vec<String>,
    pub ip_whitelist: Vec<IpRule>,
}

#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub password: PasswordHash,
}

/// What a request presents.
#[derive(Clone, Copy, Debug, Default)]
pub struct Knock<'a> {
    /// `None`: it came through the Unix socket, whose file permissions decide.
    pub peer: Option<IpAddr>,
    pub host: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub session_id: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    Address(IpAddr),
    Unauthorized,
    Host(String),
    SessionId,
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Address(_) => 403,
            Refusal::Unauthorized => 401,
            Refusal::Host(_) => 421,
            Refusal::SessionId => 409,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Address(ip) => format!(
                "403: Forbidden. Unauthorized IP address {ip}: add it to [rpc] ip_whitelist in \
                 swarmd's config to allow it."
            ),
            Refusal::Unauthorized => "401: Unauthorized. Wrong user name or password.".into(),
            Refusal::Host(h) => format!(
                "421: Misdirected Request. The host name {h:?} is not allowed (DNS rebinding \
                 protection): add it to [rpc] host_whitelist in swarmd's config, or use an IP \
                 address."
            ),
            Refusal::SessionId => "409: Conflict. Send the X-Transmission-Session-Id header \
                                   of this response with your requests."
                .into(),
        }
    }
}

impl Gate {
    /// The checks of an RPC call: all four.
    pub fn check(&self, k: &Knock) -> Result<(), Refusal> {
        self.check_page(k)?;
        if k.session_id != Some(self.session_id.as_str()) {
            return Err(Refusal::SessionId);
        }
        Ok(())
    }

    /// The checks of a page (the web client's files, `/metrics`): all but the session id, which
    /// guards calls that change something and which a browser loading a page or Prometheus
    /// scraping does not have.
    pub fn check_page(&self, k: &Knock) -> Result<(), Refusal> {
        if let Some(ip) = k.peer {
            let ip = canonical(ip);
            if !self.ip_whitelist.iter().any(|r| r.allows(ip)) {
                return Err(Refusal::Address(ip));
            }
        }
        if let Some(c) = &self.credentials {
            let ok = k
                .authorization
                .and_then(basic_credentials)
                .is_some_and(|(u, p)| u == c.username && c.password.matches(&p));
            if !ok {
                return Err(Refusal::Unauthorized);
            }
        }
        if let Some(host) = k.host.map(host_name) {
            if !self.host_allowed(&host) {
                return Err(Refusal::Host(host));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        host.parse::<IpAddr>().is_ok()
            || host == "localhost"
            || host.ends_with(".localhost")
            || self.host_whitelist.iter().any(|p| glob(p, host))
    }
}

/// One `ip_whitelist` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpRule {
    Any,
    Net { addr: IpAddr, prefix: u8 },
}

impl IpRule {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "*" {
            return Ok(IpRule::Any);
        }
        let bad = || format!("{s:?} is not an IP address, a CIDR block (10.0.0.0/8) or \"*\"");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(IpRule::Net { addr, prefix })
    }

    fn allows(&self, ip: IpAddr) -> bool {
        match *self {
            IpRule::Any => true,
            IpRule::Net { addr, prefix } => match (addr, ip) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    u32::from(a) & mask == u32::from(b) & mask
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    u128::from(a) & mask == u128::from(b) & mask
                }
                _ => false,
            },
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The host of a `Host:` header, lowercase, without port or IPv6 brackets.
fn host_name(header: &str) -> String {
    let h = header.trim();
    let host = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match h.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => h,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `Basic base64(user:password)` → the pair.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = BASE64.decode(encoded.trim().as_bytes()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// `*` matches any run of characters; case-insensitive (both sides are lowercased).
fn glob(pattern: &str, text: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(auth: bool) -> Gate {
        Gate {
            session_id: "SID".into(),
            credentials: auth.then(|| Credentials {
                username: "u".into(),
                password: PasswordHash::new("p"),
            }),
            host_whitelist: vec!["*.example.org".into(), "nas".into()],
            ip_whitelist: ["127.0.0.1", "10.0.0.0/8", "::1"]
                .iter()
                .map(|r| IpRule::parse(r).unwrap())
                .collect(),
        }
    }

    fn knock<'a>(
        peer: &str,
        host: &'a str,
        auth: Option<&'a str>,
        sid: Option<&'a str>,
    ) -> Knock<'a> {
        Knock {
            peer: Some(peer.parse().unwrap()),
            host: Some(host),
            authorization: auth,
            session_id: sid,
        }
    }

    #[test]
    fn order_and_answers() {
        let g = gate(true);
        let good = format!("Basic {}", BASE64.encode(b"u:p"));
        let wrong = format!("Basic {}", BASE64.encode(b"u:x"));
        let ok = knock("127.0.0.1", "127.0.0.1:9091", Some(&good), Some("SID"));
        assert_eq!(g.check(&ok), Ok(()));
        let far = knock("192.168.1.5", "evil.com", None, None);
        assert_eq!(
            g.check(&far),
            Err(Refusal::Address("192.168.1.5".parse().unwrap()))
        );
        assert_eq!(
            g.check(&knock("10.1.2.3", "x", Some(&wrong), Some("SID"))),
            Err(Refusal::Unauthorized)
        );
        assert_eq!(
            g.check(&knock(
                "10.1.2.3",
                "evil.com:9091",
                Some(&good),
                Some("SID")
            )),
            Err(Refusal::Host("evil.com".into()))
        );
        assert_eq!(
            g.check(&knock(
                "::ffff:127.0.0.1",
                "localhost:9091",
                Some(&good),
                None
            )),
            Err(Refusal::SessionId)
        );
    }

    #[test]
    fn basic_header_is_ignored_without_auth() {
        let g = gate(false);
        let any = format!("Basic {}", BASE64.encode(b"sonarr:whatever"));
        assert_eq!(
            g.check(&knock("::1", "[::1]:9091", Some(&any), Some("SID"))),
            Ok(())
        );
        assert_eq!(
            g.check(&knock("::1", "[::1]:9091", None, Some("SID"))),
            Ok(())
        );
    }

    #[test]
    fn hosts() {
        let g = gate(false);
        for ok in [
            "localhost",
            "LOCALHOST:1",
            "a.localhost",
            "box.example.org",
            "nas:9091",
            "[fe80::1]:80",
            "192.168.0.1",
        ] {
            assert!(g.host_allowed(&host_name(ok)), "{ok}");
        }
        for bad in [
            "example.org",
            "evil.com",
            "nas.evil.com",
            "localhost.evil.com",
        ] {
            assert!(!g.host_allowed(&host_name(bad)), "{bad}");
        }
    }

    #[test]
    fn ip_rules() {
        let net = IpRule::parse("192.168.0.0/16").unwrap();
        assert!(net.allows("192.168.4.4".parse().unwrap()));
        assert!(!net.allows("192.169.0.1".parse().unwrap()));
        assert!(IpRule::parse("0.0.0.0/0")
            .unwrap()
            .allows("8.8.8.8".parse().unwrap()));
        assert!(IpRule::parse("*").unwrap().allows("::2".parse().unwrap()));
        for bad in ["", "192.168.*.*", "1.2.3.4/33", "::/129", "host"] {
            assert!(IpRule::parse(bad).unwrap_err().contains("CIDR"), "{bad}");
        }
    }
}
