//! Idle peers for the `scale` scenario: `n` TCP connections to one torrent of the daemon, each
//! a plain BitTorrent handshake (no extensions; the test library's, with a peer id of its own)
//! and then nothing but a keep-alive every 30 s, the way a connected peer that wants nothing
//! behaves. One thread serves them all: it drains
//! whatever the daemon sends (its bitfield, keep-alives) so no socket buffer fills up. Stops
//! when dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use swarm_integration_tests::wire;
use swarm_wire::InfoHash;

const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(30);

pub struct IdlePeers {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl IdlePeers {
    /// Connects and handshakes `n` peers with distinct peer ids; fails if any connection does.
    pub fn connect(to: SocketAddr, info_hash: [u8; 20], n: usize) -> Result<IdlePeers, String> {
        let mut socks = Vec::with_capacity(n);
        for i in 0..n {
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5))
                .map_err(|e| format!("idle peer {i}: connect: {e}"))?;
            s.write_all(&wire::handshake(&InfoHash(info_hash), false, false))
                .map_err(|e| format!("idle peer {i}: handshake: {e}"))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            socks.push(Some(s));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("idle-peers".into())
            .spawn(move || serve(socks, &stopped))
            .map_err(|e| e.to_string())?;
        Ok(IdlePeers {
            stop,
            thread: Some(thread),
        })
    }
}

/// Drains every socket every 100 ms and sends keep-alives; bounded by `stop` (and by one hour,
/// should the runner forget to stop it).
fn serve(mut socks: Vec<Option<TcpStream>>, stop: &AtomicBool) {
    let start = Instant::now();
    let mut last_keep_alive = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(3600) {
        let keep_alive = last_keep_alive.elapsed() >= KEEP_ALIVE_EVERY;
        if keep_alive {
            last_keep_alive = Instant::now();
        }
        for slot in socks.iter_mut() {
            let Some(s) = slot else { continue };
            let alive = loop {
                match s.read(&mut buf) {
                    Ok(0) => break false,
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break false,
                }
            };
            if !alive || (keep_alive && s.write_all(&[0, 0, 0, 0]).is_err()) {
                *slot = None;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for IdlePeers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
