//! Both clients against the real opentracker (Debian's build: whitelist mode). Each test starts its
//! own opentracker on a free 127.0.0.1 port and kills it when done. A missing opentracker fails
//! the test: it is a test dependency (`make test-deps` installs it), not an optional extra.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use swarm_tracker::{
    http_announce, http_scrape, AnnounceRequest, AnnounceResponse, Event, UdpConfig,
    UdpTrackerClient,
};
use swarm_wire::InfoHash;

const OPENTRACKER: &str = "/usr/bin/opentracker";
const TIMEOUT: Duration = Duration::from_secs(5);

/// A running opentracker, killed on drop.
struct Opentracker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Opentracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 (opentracker takes the same number for both).
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a probe socket");
        let port = tcp.local_addr().expect("probe address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP on 127.0.0.1");
}

impl Opentracker {
    fn start(whitelist: &[InfoHash]) -> Self {
        assert!(
            !whitelist.is_empty(),
            "opentracker needs a whitelisted hash"
        );
        assert!(
            Path::new(OPENTRACKER).exists(),
            "{OPENTRACKER} is missing: this test needs the real opentracker \
             (install it with `apt-get install opentracker` or `make test-deps`)"
        );
        // Run as root, opentracker chroots into `-d` and drops to `nobody` before reading the
        // whitelist, so the directory and file must be readable by anyone and the whitelist path
        // relative to the directory.
        let dir = tempfile::tempdir().expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
        let list: String = whitelist
            .iter()
            .map(|h| format!("{}\n", h.to_hex()))
            .collect();
        let wl = dir.path().join("wl.txt");
        fs::write(&wl, list).expect("write whitelist");
        fs::set_permissions(&wl, fs::Permissions::from_mode(0o644)).expect("chmod whitelist");

        let port = free_port();
        let child = Command::new(OPENTRACKER)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
            ])
            .arg("-d")
            .arg(dir.path())
            .args(["-w", "wl.txt"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {OPENTRACKER}: {e}"));
        let mut tracker = Opentracker {
            child,
            port,
            _dir: dir,
        };
        tracker.wait_ready(whitelist[0]);
        tracker
    }

    /// Ready means: listening, and the whitelist loaded. opentracker reads the whitelist in a
    /// thread of its own after it starts listening, so an open port alone is not enough: probe
    /// with a `stopped` announce (which adds no peer) until it is no longer refused.
    fn wait_ready(&mut self, probe_hash: InfoHash) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut probe = AnnounceRequest::new(probe_hash, [b'P'; 20], 1);
        probe.event = Event::Stopped;
        let mut last = String::from("never tried");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("opentracker exited at start ({status}): {err}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                match http_announce(&self.http_url(), &probe, TIMEOUT) {
                    Ok(_) => return,
                    Err(e) => last = e.to_string(),
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "opentracker on 127.0.0.1:{} not ready within 10 s (last probe: {last})",
            self.port
        );
    }

    fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    fn udp_url(&self) -> String {
        format!("udp://127.0.0.1:{}/announce", self.port)
    }
}

fn peer(hash: InfoHash, id: u8, port: u16, left: u64) -> AnnounceRequest {
    let mut req = AnnounceRequest::new(hash, [id; 20], port);
    req.left = left;
    req.event = Event::Started;
    req.numwant = Some(50);
    req.key = u32::from(id);
    req
}

fn sees(resp: &AnnounceResponse, port: u16) -> bool {
    let want: SocketAddr = ([127, 0, 0, 1], port).into();
    resp.peers.contains(&want)
}

#[test]
fn http_two_peers_see_each_other_and_scrape_counts() {
    let hash = InfoHash::of(b"swarm-tracker opentracker http test");
    let ot = Opentracker::start(&[hash]);
    let url = ot.http_url();

    let leecher = peer(hash, b'L', 40001, 1000);
    let seeder = peer(hash, b'S', 40002, 0);
    http_announce(&url, &leecher, TIMEOUT).expect("leecher announce");
    let resp = http_announce(&url, &seeder, TIMEOUT).expect("seeder announce");
    assert!(
        sees(&resp, 40001),
        "seeder does not see the leecher: {resp:?}"
    );
    assert!(resp.interval > Duration::ZERO);

    let mut again = leecher.clone();
    again.event = Event::None;
    let resp = http_announce(&url, &again, TIMEOUT).expect("leecher re-announce");
    assert!(
        sees(&resp, 40002),
        "leecher does not see the seeder: {resp:?}"
    );
    assert_eq!((resp.complete, resp.incomplete), (Some(1), Some(1)));

    let scrape = http_scrape(&url, &[hash], TIMEOUT).expect("scrape");
    let stats = scrape.get(&hash).expect("scrape has our torrent");
    assert_eq!((stats.complete, stats.incomplete), (1, 1));

    // A torrent not on the whitelist is refused with opentracker's reason.
    let other = peer(InfoHash([9; 20]), b'X', 40003, 1);
    let err = http_announce(&url, &other, TIMEOUT).unwrap_err();
    assert!(err.to_string().contains("not authorized"), "{err}");
}

#[tokio::test]
async fn udp_two_peers_see_each_other_and_scrape_counts() {
    let hash = InfoHash::of(b"swarm-tracker opentracker udp test");
    let ot = Opentracker::start(&[hash]);
    let url = ot.udp_url();
    let config = UdpConfig {
        base_timeout: Duration::from_secs(1),
        max_retries: 2,
        ..UdpConfig::default()
    };
    let client = UdpTrackerClient::with_config("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("bind udp client");

    let leecher = peer(hash, b'l', 41001, 1000);
    let seeder = peer(hash, b's', 41002, 0);
    client
        .announce(&url, &leecher)
        .await
        .expect("leecher announce");
    let resp = client
        .announce(&url, &seeder)
        .await
        .expect("seeder announce");
    assert!(
        sees(&resp, 41001),
        "seeder does not see the leecher: {resp:?}"
    );

    let mut again = leecher.clone();
    again.event = Event::None;
    let resp = client
        .announce(&url, &again)
        .await
        .expect("leecher re-announce");
    assert!(
        sees(&resp, 41002),
        "leecher does not see the seeder: {resp:?}"
    );
    assert_eq!((resp.complete, resp.incomplete), (Some(1), Some(1)));

    let scrape = client.scrape(&url, &[hash]).await.expect("scrape");
    let stats = scrape.get(&hash).expect("scrape has our torrent");
    assert_eq!((stats.complete, stats.incomplete), (1, 1));

    // Stopping removes the peer from the swarm.
    let mut stop = seeder.clone();
    stop.event = Event::Stopped;
    client.announce(&url, &stop).await.expect("seeder stops");
    let scrape = client.scrape(&url, &[hash]).await.expect("scrape");
    assert_eq!(scrape.get(&hash).map(|s| s.complete), Some(0));
}
