//! Trackers for tests: a real [`Opentracker`] (HTTP and UDP on one port) and an in-process
//! [`FakeHttpTracker`] that records every announce and answers with whatever peers the test sets.
//!
//! ```no_run
//! use swarm_integration_tests::tracker::{FakeHttpTracker, Opentracker};
//! use swarm_integration_tests::util::TestEnv;
//! use swarm_wire::InfoHash;
//!
//! let env = TestEnv::new("trackers");
//! let ih = InfoHash([7; 20]);
//! let ot = Opentracker::start(&env, &[ih]);
//! let (complete, incomplete, downloaded) = ot.scrape(ih);
//! # let _ = (complete, incomplete, downloaded);
//!
//! let fake = FakeHttpTracker::start();
//! fake.set_peers(&["127.0.0.1:6881".parse().unwrap()]);
//! // ... point a client at fake.announce_url() ...
//! let stopped = fake.wait_for_announce("event=stopped", std::time::Duration::from_secs(10), |a| {
//!     a.event() == Some("stopped")
//! });
//! # let _ = stopped;
//! ```

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use swarm_wire::InfoHash;

use crate::bencode::{self, Value};
use crate::http::{self, percent_decode, percent_encode};
use crate::netlab::Host;
use crate::util::{free_tcp_udp_port, require_tool, wait_for, ChildGuard, TestEnv, LOOPBACK};

/// Whitelisted, never used by a client: lets us probe the tracker without touching real swarms.
const PROBE_HASH: InfoHash = InfoHash([0u8; 20]);

/// A running `opentracker` on 127.0.0.1 (or a lab host) with HTTP and UDP on the same port.
///
/// Debian builds opentracker in whitelist mode: only listed info-hashes may announce (others get
/// "Requested download is not authorized"). The whitelist lives in the tracker's own directory;
/// [`Opentracker::allow`] appends to it and makes the tracker reload it (SIGHUP). Run as root,
/// opentracker chroots into that directory and drops to `nobody`, so the whitelist path is passed
/// relative to it and both are world-readable.
pub struct Opentracker {
    port: u16,
    /// The lab host it runs on ([`Opentracker::start_on`]); `None`: 127.0.0.1.
    host: Option<Host>,
    dir: PathBuf,
    guard: ChildGuard,
    allowed: Mutex<Vec<InfoHash>>,
}

impl Opentracker {
    /// Starts opentracker allowing `info_hashes` (more can be added with
    /// [`Opentracker::allow`]), and waits until it answers.
    pub fn start(env: &TestEnv, info_hashes: &[InfoHash]) -> Opentracker {
        Opentracker::start_on(env, info_hashes, None)
    }

    /// As [`Opentracker::start`], on a lab host (its address, inside its namespace) when
    /// `host` is given; the test's own requests to it go through [`Host::enter`].
    pub fn start_on(env: &TestEnv, info_hashes: &[InfoHash], host: Option<&Host>) -> Opentracker {
        let exe = require_tool("opentracker");
        let dir = env.unique_subdir("opentracker");
        // The chroot target must be searchable by `nobody` after the privilege drop; the test's
        // temp dir (0700) above it does not matter once chrooted.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod tracker dir");
        let mut all = vec![PROBE_HASH];
        all.extend_from_slice(info_hashes);
        write_whitelist(&dir, &all);
        let port = free_tcp_udp_port();
        let ip = host.map_or(LOOPBACK, |h| h.ip).to_string();
        let mut cmd = Command::new(exe);
        cmd.args(["-i", &ip, "-p", &port.to_string(), "-P", &port.to_string()])
            .arg("-d")
            .arg(&dir)
            .args(["-w", "whitelist.txt", "-A", "127.0.0.1"])
            .current_dir(&dir);
        if let Some(h) = host {
            cmd = h.wrap(&cmd);
        }
        let guard = ChildGuard::spawn(env, "opentracker", cmd);
        let t = Opentracker {
            port,
            host: host.cloned(),
            dir,
            guard,
            allowed: Mutex::new(all),
        };
        // event=stopped is answered for any hash, so this only proves the HTTP side is up.
        wait_for(
            "opentracker to answer HTTP",
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                t.guard.assert_running();
                t.probe_announce(PROBE_HASH, true)
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", t.guard.log_tail(20)));
        t
    }

    /// The TCP and UDP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://IP:PORT/announce` (IP: 127.0.0.1 or the lab host's)
    pub fn announce_url(&self) -> String {
        format!("http://{}:{}/announce", self.ip(), self.port)
    }

    /// `udp://IP:PORT/announce`
    pub fn udp_url(&self) -> String {
        format!("udp://{}:{}/announce", self.ip(), self.port)
    }

    /// `http://IP:PORT/scrape`
    pub fn scrape_url(&self) -> String {
        format!("http://{}:{}/scrape", self.ip(), self.port)
    }

    fn ip(&self) -> Ipv4Addr {
        self.host.as_ref().map_or(LOOPBACK, |h| h.ip)
    }

    /// An HTTP GET from the test, from inside the tracker's host when it has one.
    fn get(&self, url: &str) -> Result<http::Response, String> {
        let get = || http::get(url, Duration::from_secs(2)).map_err(|e| e.to_string());
        match &self.host {
            Some(h) => h.enter(get),
            None => get(),
        }
    }

    /// The opentracker process.
    pub fn guard(&self) -> &ChildGuard {
        &self.guard
    }

    /// Adds `ih` to the whitelist, makes opentracker reload it, and waits until it accepts
    /// announces for it. The check announces a probe peer (`127.0.0.1:1`) and removes it again at
    /// once, so call this before clients join the swarm.
    pub fn allow(&self, ih: InfoHash) {
        {
            let mut allowed = self.allowed.lock().unwrap();
            if allowed.contains(&ih) {
                return;
            }
            allowed.push(ih);
            write_whitelist(&self.dir, &allowed);
        }
        self.guard.signal_leader(libc::SIGHUP);
        wait_for(
            &format!("opentracker to whitelist {ih}"),
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                self.guard.assert_running();
                let r = self.probe_announce(ih, false);
                let _ = self.probe_announce(ih, true);
                r
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.guard.log_tail(20)));
    }

    fn probe_announce(&self, ih: InfoHash, stopped: bool) -> Result<(), String> {
        let mut url = format!(
            "{}?info_hash={}&peer_id=-ITPROBE-01234567890&port=1&uploaded=0&downloaded=0&left=0&compact=1",
            self.announce_url(),
            percent_encode(ih.as_bytes())
        );
        if stopped {
            url.push_str("&event=stopped");
        }
        let r = self.get(&url)?;
        let v = bencode::decode(&r.body).map_err(|e| format!("{e}: {:?}", r.text()))?;
        match v.get("failure reason").and_then(Value::as_str) {
            Some(f) => Err(format!("failure: {f}")),
            None => Ok(()),
        }
    }

    /// HTTP scrape: `(complete, incomplete, downloaded)` for `ih`; zeros for an unknown torrent.
    /// Panics if the tracker does not answer.
    pub fn scrape(&self, ih: InfoHash) -> (u64, u64, u64) {
        self.try_scrape(ih)
            .unwrap_or_else(|e| panic!("scrape of {ih} failed: {e}\n{}", self.guard.log_tail(20)))
    }

    /// As [`Opentracker::scrape`], returning errors instead of panicking.
    pub fn try_scrape(&self, ih: InfoHash) -> Result<(u64, u64, u64), String> {
        let url = format!(
            "{}?info_hash={}",
            self.scrape_url(),
            percent_encode(ih.as_bytes())
        );
        let r = self.get(&url)?;
        let v = bencode::decode(&r.body).map_err(|e| format!("{e}: {:?}", r.text()))?;
        let files = v
            .get("files")
            .and_then(Value::as_dict)
            .ok_or_else(|| format!("no `files`: {:?}", r.text()))?;
        let Some(entry) = files.get(ih.as_bytes().as_slice()) else {
            return Ok((0, 0, 0));
        };
        let n = |k: &str| entry.get(k).and_then(Value::as_int).unwrap_or(0).max(0) as u64;
        Ok((n("complete"), n("incomplete"), n("downloaded")))
    }

    /// Waits (up to `timeout`) until the tracker counts at least one seeder of `ih`: a leecher
    /// asking now finds it.
    pub fn wait_seeder(&self, ih: InfoHash, timeout: Duration) {
        self.wait_scrape(ih, "a seeder's announce", timeout, |complete, _, _| {
            complete >= 1
        });
    }

    /// Waits until the scrape for `ih` satisfies `pred(complete, incomplete, downloaded)`.
    pub fn wait_scrape(
        &self,
        ih: InfoHash,
        what: &str,
        timeout: Duration,
        pred: impl Fn(u64, u64, u64) -> bool,
    ) -> (u64, u64, u64) {
        wait_for(what, timeout, Duration::from_millis(100), || {
            self.guard.assert_running();
            let (c, i, d) = self.try_scrape(ih)?;
            if pred(c, i, d) {
                Ok((c, i, d))
            } else {
                Err(format!("complete={c} incomplete={i} downloaded={d}"))
            }
        })
        .map(|(v, _)| v)
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn write_whitelist(dir: &std::path::Path, hashes: &[InfoHash]) {
    let text: String = hashes.iter().map(|h| format!("{}\n", h.to_hex())).collect();
    // Write-then-rename so a reload never sees half a file.
    let tmp = dir.join("whitelist.txt.tmp");
    fs::write(&tmp, text).expect("writing whitelist");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).expect("chmod whitelist");
    fs::rename(&tmp, dir.join("whitelist.txt")).expect("renaming whitelist");
}

// ---------------------------------------------------------------------------------------------
// Fake HTTP tracker
// ---------------------------------------------------------------------------------------------

/// One announce (or scrape) request as the fake tracker received it.
#[derive(Clone, Debug)]
pub struct Announce {
    /// `/announce` or `/scrape` (the path without the query).
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Decoded query parameters in order (values are raw bytes: `info_hash`, `peer_id`).
    pub params: Vec<(String, Vec<u8>)>,
    /// When it arrived.
    pub at: Instant,
}

impl Announce {
    /// The first value of `key`, raw.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of `key` as UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The first value of `key` parsed as an integer.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get_str(key)?.parse().ok()
    }

    /// `event=` (`started`, `completed`, `stopped`), if present and not empty.
    pub fn event(&self) -> Option<&str> {
        self.get_str("event").filter(|e| !e.is_empty())
    }

    pub fn info_hash(&self) -> Option<InfoHash> {
        Some(InfoHash(self.get("info_hash")?.try_into().ok()?))
    }

    pub fn peer_id(&self) -> Option<&[u8]> {
        self.get("peer_id")
    }

    pub fn port(&self) -> Option<u16> {
        self.get_str("port")?.parse().ok()
    }

    pub fn left(&self) -> Option<u64> {
        self.get_u64("left")
    }

    pub fn uploaded(&self) -> Option<u64> {
        self.get_u64("uploaded")
    }

    pub fn downloaded(&self) -> Option<u64> {
        self.get_u64("downloaded")
    }

    pub fn is_scrape(&self) -> bool {
        self.path.ends_with("/scrape")
    }
}

struct FakeState {
    announces: Vec<Announce>,
    peers: Vec<SocketAddrV4>,
    interval: u32,
    min_interval: Option<u32>,
    failure: Option<String>,
    /// Announces with this `event=` are recorded and never answered.
    silent_on: Option<String>,
    /// Their connections, held open until the tracker is dropped.
    held: Vec<TcpStream>,
}

/// An HTTP tracker inside the test process (a thread on 127.0.0.1:0). It records every request
/// and answers announces with the configured peers (compact, or a dictionary list when the client
/// asks `compact=0`), `interval`, and optionally a `failure reason`. Scrapes get an empty
/// `files` dictionary. Stopped on drop.
pub struct FakeHttpTracker {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHttpTracker {
    /// Starts the tracker with no peers and `interval` 60 s.
    pub fn start() -> FakeHttpTracker {
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("binding the fake tracker");
        let addr = listener.local_addr().unwrap();
        // Non-blocking accept so the thread can notice `stop` (bounded: checked every 10 ms).
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(FakeState {
            announces: Vec::new(),
            peers: Vec::new(),
            interval: 60,
            min_interval: None,
            failure: None,
            silent_on: None,
            held: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("fake-tracker".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, _)) => {
                                let _ = serve_one(stream, &state);
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                })
                .expect("spawning the fake tracker thread")
        };
        FakeHttpTracker {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/announce`
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    /// The peers handed out from now on.
    pub fn set_peers(&self, peers: &[SocketAddrV4]) {
        self.state.lock().unwrap().peers = peers.to_vec();
    }

    /// The `interval` (seconds) in answers from now on.
    pub fn set_interval(&self, secs: u32) {
        self.state.lock().unwrap().interval = secs;
    }

    /// The `min interval` (seconds), or none.
    pub fn set_min_interval(&self, secs: Option<u32>) {
        self.state.lock().unwrap().min_interval = secs;
    }

    /// Answer every announce with `failure reason` (or stop doing so with `None`).
    pub fn set_failure(&self, reason: Option<&str>) {
        self.state.lock().unwrap().failure = reason.map(str::to_string);
    }

    /// Never answer announces with `event=EVENT` (e.g. `stopped`): record them and hold the
    /// connection open, as a tracker that hangs does. `None` answers everything again.
    pub fn set_silent_on(&self, event: Option<&str>) {
        self.state.lock().unwrap().silent_on = event.map(str::to_string);
    }

    /// Every request received so far, oldest first.
    pub fn announces(&self) -> Vec<Announce> {
        self.state.lock().unwrap().announces.clone()
    }

    /// The `event=` values received so far, in order (announces without one are skipped).
    pub fn events(&self) -> Vec<String> {
        self.announces()
            .iter()
            .filter_map(|a| a.event().map(str::to_string))
            .collect()
    }

    /// Waits until a request satisfying `pred` has arrived and returns the first such one.
    pub fn wait_for_announce(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Announce) -> bool,
    ) -> Announce {
        wait_for(
            &format!("fake tracker: {what}"),
            timeout,
            Duration::from_millis(20),
            || {
                let all = self.announces();
                all.iter().find(|a| pred(a)).cloned().ok_or_else(|| {
                    format!(
                        "{} requests so far: {:?}",
                        all.len(),
                        all.iter().map(|a| a.query.as_str()).collect::<Vec<_>>()
                    )
                })
            },
        )
        .map(|(a, _)| a)
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for FakeHttpTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut stream: TcpStream, state: &Mutex<FakeState>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 64 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let target = line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                percent_decode(v),
            )
        })
        .collect::<Vec<_>>();
    let announce = Announce {
        path: path.to_string(),
        query: query.to_string(),
        params,
        at: Instant::now(),
    };
    let body = {
        let mut st = state.lock().unwrap();
        if announce.event().is_some() && announce.event() == st.silent_on.as_deref() {
            st.announces.push(announce);
            st.held.push(stream);
            return Ok(());
        }
        let body = if announce.is_scrape() {
            b"d5:filesdee".to_vec()
        } else {
            answer(&st, announce.get_str("compact") != Some("0"))
        };
        st.announces.push(announce);
        body
    };
    let head = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

fn answer(st: &FakeState, compact: bool) -> Vec<u8> {
    use std::collections::BTreeMap;
    let mut d = BTreeMap::new();
    if let Some(f) = &st.failure {
        d.insert(b"failure reason".to_vec(), bencode::bytes(f.as_bytes()));
        return Value::Dict(d).encode();
    }
    d.insert(b"interval".to_vec(), Value::Int(i64::from(st.interval)));
    if let Some(mi) = st.min_interval {
        d.insert(b"min interval".to_vec(), Value::Int(i64::from(mi)));
    }
    d.insert(b"complete".to_vec(), Value::Int(0));
    d.insert(b"incomplete".to_vec(), Value::Int(st.peers.len() as i64));
    let peers = if compact {
        let mut raw = Vec::with_capacity(st.peers.len() * 6);
        for p in &st.peers {
            raw.extend_from_slice(&p.ip().octets());
            raw.extend_from_slice(&p.port().to_be_bytes());
        }
        Value::Bytes(raw)
    } else {
        Value::List(
            st.peers
                .iter()
                .map(|p| {
                    let mut pd = BTreeMap::new();
                    pd.insert(b"ip".to_vec(), bencode::bytes(p.ip().to_string()));
                    pd.insert(b"port".to_vec(), Value::Int(i64::from(p.port())));
                    Value::Dict(pd)
                })
                .collect(),
        )
    };
    d.insert(b"peers".to_vec(), peers);
    Value::Dict(d).encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_tracker_records_and_answers() {
        let t = FakeHttpTracker::start();
        t.set_peers(&[
            "127.0.0.1:6881".parse().unwrap(),
            "127.0.0.1:6882".parse().unwrap(),
        ]);
        t.set_interval(5);
        let ih = [0xabu8; 20];
        let url = format!(
            "{}?info_hash={}&peer_id=-XX0001-abcdefghijkl&port=7000&uploaded=0&downloaded=0&left=10&event=started&compact=1",
            t.announce_url(),
            percent_encode(&ih)
        );
        let r = http::get(&url, Duration::from_secs(5)).unwrap();
        let v = bencode::decode(&r.body).unwrap();
        assert_eq!(v.get("interval").unwrap().as_int(), Some(5));
        assert_eq!(
            v.get("peers").unwrap().as_bytes().unwrap(),
            &[127, 0, 0, 1, 0x1a, 0xe1, 127, 0, 0, 1, 0x1a, 0xe2]
        );
        let a = t.wait_for_announce("started", Duration::from_secs(5), |a| {
            a.event() == Some("started")
        });
        assert_eq!(a.info_hash(), Some(InfoHash(ih)));
        assert_eq!((a.port(), a.left()), (Some(7000), Some(10)));
        assert_eq!(a.peer_id(), Some(&b"-XX0001-abcdefghijkl"[..]));

        let r = http::get(
            &format!("{}?compact=0&event=stopped", t.announce_url()),
            Duration::from_secs(5),
        )
        .unwrap();
        let v = bencode::decode(&r.body).unwrap();
        assert_eq!(v.get("peers").unwrap().as_list().unwrap().len(), 2);
        assert_eq!(t.events(), vec!["started", "stopped"]);

        t.set_failure(Some("go away"));
        let r = http::get(&t.announce_url(), Duration::from_secs(5)).unwrap();
        assert!(r.text().contains("go away"));
    }

    #[test]
    fn opentracker_whitelists_and_scrapes() {
        let env = TestEnv::new("opentracker-unit");
        let known = InfoHash([0x11; 20]);
        let t = Opentracker::start(&env, &[known]);
        assert_eq!(t.scrape(known), (0, 0, 0));
        let later = InfoHash([0x22; 20]);
        assert!(t
            .probe_announce(later, false)
            .unwrap_err()
            .contains("not authorized"));
        t.allow(later);
        // The probe peer was removed again.
        assert_eq!(t.scrape(later).0 + t.scrape(later).1, 0);
        // A seeder announce shows up in the scrape.
        let url = format!(
            "{}?info_hash={}&peer_id=-XX0001-abcdefghijkl&port=7000&uploaded=0&downloaded=0&left=0&event=completed&compact=1",
            t.announce_url(),
            percent_encode(known.as_bytes())
        );
        http::get(&url, Duration::from_secs(5)).unwrap();
        assert_eq!(
            t.wait_scrape(known, "a seeder", Duration::from_secs(5), |c, _, _| c == 1)
                .0,
            1
        );
    }
}
