//! A network lab: one network namespace per host, each joined by a veth pair to a bridge in a
//! namespace of its own, each host's uplink (and optionally its downlink) capped by an `htb`
//! class. Addresses come from the benchmarking range 198.18.0.0/15 and exist only inside the
//! lab's namespaces; nothing touches the machine's own interfaces. Needs root (`ip netns add`).
//!
//! ```text
//!   host 0 (ns swl<pid>-<n>h0, eth0 198.18.1.1/15) --veth-- v0 ┐
//!   host 1 (ns swl<pid>-<n>h1, eth0 198.18.1.2/15) --veth-- v1 ├─ br0 (ns swl<pid>-<n>b)
//!   …                                                          ┘
//! ```
//!
//! A host's uplink is the htb class on its own `eth0` (what the host sends, whoever dialled
//! whom); its downlink the class on the bridge side `v<i>` (what the bridge sends it). Under
//! each class a byte FIFO of about 100 ms at the class's rate (at least 128 KiB, so that one
//! segmentation-offload burst fits) stands in for a home router's buffer: this kernel has htb,
//! tbf and the FIFOs, no netem, fq_codel or sfq.
//!
//! Processes run in a host with [`Host::wrap`] (`ip netns exec`); a process keeps the
//! filesystem, so Unix control sockets and files work across hosts as usual. Dropping the
//! [`Lab`] deletes its namespaces, which deletes their interfaces. Namespaces left behind by a
//! killed process are removed by the next [`Lab::new`] ([`Lab::sweep_stale`]: their names carry
//! the owner's pid).
//!
//! ```no_run
//! use swarm_integration_tests::netlab::{Lab, Link};
//! let lab = Lab::new(&[Link::up_mbit(16.0), Link::up_mbit(8.0)]);
//! let mut ping = lab.host(1).wrap(&std::process::Command::new("ping"));
//! ping.args(["-c", "1", &lab.host(0).ip.to_string()]);
//! assert!(ping.status().unwrap().success());
//! ```

use std::ffi::OsStr;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A host's link: rates in bit/s; `None` = not capped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Link {
    pub up_bps: Option<u64>,
    pub down_bps: Option<u64>,
}

impl Link {
    /// An uplink of `mbit` Mbit/s (10^6), downlink uncapped.
    pub fn up_mbit(mbit: f64) -> Link {
        Link {
            up_bps: Some((mbit * 1e6) as u64),
            down_bps: None,
        }
    }

    /// Neither direction capped (a tracker's host).
    pub fn open() -> Link {
        Link::default()
    }

    /// The same with a downlink of `mbit` Mbit/s.
    pub fn down_mbit(mut self, mbit: f64) -> Link {
        self.down_bps = Some((mbit * 1e6) as u64);
        self
    }
}

/// One host of a lab: its namespace and address.
#[derive(Clone, Debug)]
pub struct Host {
    pub ns: String,
    pub ip: Ipv4Addr,
    pub link: Link,
}

impl Host {
    /// `ip:port` on this host.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.ip, port))
    }

    /// `cmd` (program, arguments, environment, working directory) run inside this host's
    /// namespace through `ip netns exec`, which execs it: the child's pid is the program's.
    pub fn wrap(&self, cmd: &Command) -> Command {
        let mut w = Command::new("ip");
        w.args([
            OsStr::new("netns"),
            OsStr::new("exec"),
            OsStr::new(&self.ns),
        ])
        .arg(cmd.get_program())
        .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            w.current_dir(d);
        }
        w
    }

    /// Runs `f` on a thread of its own that has entered this host's network namespace
    /// (`setns` changes the calling thread's namespace only): sockets it opens are the host's.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns =
                    fs::File::open(&path).unwrap_or_else(|e| panic!("netlab: opening {path}: {e}"));
                // SAFETY: setns on a valid descriptor; it affects this thread only, which
                // ends when `f` returns.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(
                    rc,
                    0,
                    "netlab: setns({path}): {}",
                    std::io::Error::last_os_error()
                );
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Bytes sent through this host's uplink class so far (`None` when it is not capped).
    pub fn uplink_bytes(&self) -> Option<u64> {
        self.link.up_bps?;
        class_bytes(&self.ns, "eth0")
    }
}

/// The namespaces of one lab; removed on drop.
pub struct Lab {
    bridge_ns: String,
    hosts: Vec<Host>,
}

static LABS: AtomicU32 = AtomicU32::new(0);

const PREFIX: &str = "swl";

impl Lab {
    /// Creates one host per entry of `links` (addresses 198.18.1.1, .2, … in that order) and
    /// the bridge between them. Panics with the failing command's output (not root, no
    /// `ip`, a kernel without veth/bridge/htb).
    pub fn new(links: &[Link]) -> Lab {
        assert!(links.len() < 250, "a lab has at most 249 hosts");
        Lab::sweep_stale();
        let tag = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let bridge_ns = format!("{tag}b");
        let mut lab = Lab {
            bridge_ns: bridge_ns.clone(),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &bridge_ns]);
        ip(&["-n", &bridge_ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &bridge_ns, "link", "set", "br0", "up"]);
        for (i, link) in links.iter().enumerate() {
            let host = Host {
                ns: format!("{tag}h{i}"),
                ip: Ipv4Addr::new(198, 18, 1, (i + 1) as u8),
                link: *link,
            };
            // Pushed before it is set up, so that a failure half-way still removes it.
            lab.hosts.push(host.clone());
            let ns = host.ns.as_str();
            let side = format!("v{i}");
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", &side, "netns",
                &bridge_ns,
            ]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/15", host.ip),
                "dev",
                "eth0",
            ]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &bridge_ns, "link", "set", &side, "master", "br0"]);
            ip(&["-n", &bridge_ns, "link", "set", &side, "up"]);
            if let Some(bps) = link.up_bps {
                shape(ns, "eth0", bps);
            }
            if let Some(bps) = link.down_bps {
                shape(&bridge_ns, &side, bps);
            }
        }
        lab
    }

    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Removes namespaces of labs whose process is gone (a test or benchmark that was killed).
    pub fn sweep_stale() {
        let Ok(dir) = fs::read_dir("/run/netns") else {
            return;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("ip").args(["netns", "del", &name]).status();
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of every veth pair, and with it the other end.
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &h.ns]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.bridge_ns])
            .status();
    }
}

/// Caps what `dev` in `ns` sends at `bps`: htb root with one class, a byte FIFO under it.
fn shape(ns: &str, dev: &str, bps: u64) {
    let rate = format!("{bps}bit");
    // About 100 ms of queue at the class's rate, at least 128 KiB (one GSO burst is 64 KiB).
    let fifo = (bps / 8 / 10).max(128 * 1024).to_string();
    tc(&[
        "-n", ns, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1",
    ]);
    tc(&[
        "-n", ns, "class", "add", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate",
        &rate, "ceil", &rate,
    ]);
    tc(&[
        "-n", ns, "qdisc", "add", "dev", dev, "parent", "1:1", "handle", "10:", "bfifo", "limit",
        &fifo,
    ]);
}

/// The bytes counter of class 1:1 on `dev` in `ns`.
fn class_bytes(ns: &str, dev: &str) -> Option<u64> {
    let out = Command::new("tc")
        .args([
            "-n", ns, "-s", "class", "show", "dev", dev, "classid", "1:1",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // " Sent 12345 bytes 67 pkt (dropped 0, overlimits 0 requeues 0)"
    let sent = text.split("Sent ").nth(1)?;
    sent.split_whitespace().next()?.parse().ok()
}

fn ip(args: &[&str]) {
    run("ip", args);
}

fn tc(args: &[&str]) {
    run("tc", args);
}

fn run(prog: &str, args: &[&str]) {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("netlab: cannot run {prog} (iproute2): {e}"));
    assert!(
        out.status.success(),
        "netlab: `{prog} {}` failed ({}): {}\nThe lab needs root and a kernel with veth, bridge \
         and htb.",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
