//! CPU time and memory of a process tree, read from `/proc`.
//!
//! * CPU: the sum over the tree of `utime + stime + cutime + cstime` (`/proc/PID/stat`), so
//!   helpers that were reaped by a tree member still count. The value is cumulative; a sample
//!   never lowers it (a child that exits between two samples and is reaped outside the tree is
//!   the only thing that can be missed).
//! * Memory: `RssAnon` (heap and other anonymous pages, not file-backed page cache) and `VmRSS`
//!   from `/proc/PID/status`, summed over the tree, peak over all samples.
//!
//! A [`Monitor`] samples on its own thread every `interval` (the tree is re-discovered from the
//! parent links in `/proc` every second) and once more in [`Monitor::finish`]. A leader that
//! has exited but is not reaped yet (a zombie, which is how [`ChildGuard`] leaves it) still
//! reports its whole CPU time in `/proc/PID/stat`, so the final sample after an exit is exact.
//!
//! [`ChildGuard`]: swarm_integration_tests::util::ChildGuard

use std::collections::{HashMap, HashSet};
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Clock ticks per second for `/proc/PID/stat` times.
fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `(ppid, utime+stime+cutime+cstime)` of one process, in clock ticks.
fn read_stat(pid: u32) -> Option<(u32, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, utime..cstime are fields 14..17.
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f
        .get(11..15)?
        .iter()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .sum();
    Some((ppid, ticks))
}

/// `(RssAnon, VmRSS)` in KiB; zeros for a zombie (no address space left).
pub fn read_mem_kib(pid: u32) -> (u64, u64) {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (0, 0);
    };
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("VmRSS:"))
}

/// CPU seconds (user+system, children included) of one process.
pub fn cpu_secs(pid: u32) -> f64 {
    read_stat(pid).map_or(0.0, |(_, t)| t as f64 / clk_tck())
}

/// Every process whose parent chain leads to `root`, `root` included.
fn discover(root: u32) -> HashSet<u32> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                if let Some((ppid, _)) = read_stat(pid) {
                    parent.insert(pid, ppid);
                }
            }
        }
    }
    let mut tree = HashSet::from([root]);
    let mut grew = true;
    while grew {
        grew = false;
        for (&pid, ppid) in &parent {
            if !tree.contains(&pid) && tree.contains(ppid) {
                tree.insert(pid);
                grew = true;
            }
        }
    }
    tree
}

/// What a [`Monitor`] saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// CPU seconds of the tree since the monitor started (see [`Monitor::start`]).
    pub cpu_s: f64,
    /// Peak of the tree's summed `RssAnon`, MiB.
    pub peak_anon_mib: f64,
    /// Peak of the tree's summed `VmRSS`, MiB (includes file-backed pages, e.g. mmap'd data).
    pub peak_rss_mib: f64,
}

#[derive(Default)]
struct State {
    tree: HashSet<u32>,
    /// Last CPU ticks seen per process (a process that vanished keeps its last value).
    ticks: HashMap<u32, u64>,
    peak_anon_kib: u64,
    peak_rss_kib: u64,
    last_discover: Option<Instant>,
}

impl State {
    fn sample(&mut self, root: u32) {
        if self
            .last_discover
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.tree = discover(root);
            self.last_discover = Some(Instant::now());
        }
        let (mut anon, mut rss) = (0, 0);
        for &pid in &self.tree {
            if let Some((_, t)) = read_stat(pid) {
                let e = self.ticks.entry(pid).or_insert(0);
                *e = (*e).max(t);
            }
            let (a, r) = read_mem_kib(pid);
            anon += a;
            rss += r;
        }
        self.peak_anon_kib = self.peak_anon_kib.max(anon);
        self.peak_rss_kib = self.peak_rss_kib.max(rss);
    }

    fn total_ticks(&self) -> u64 {
        self.ticks.values().sum()
    }
}

/// Samples one process tree in the background.
pub struct Monitor {
    root: u32,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    base_ticks: u64,
}

impl Monitor {
    /// Starts sampling the tree under `root` every `interval`. CPU is counted from now on when
    /// `from_zero` is false (e.g. a seeder that was busy before the measured transfer); with
    /// `from_zero` the whole life of the tree counts (a leecher spawned just before).
    pub fn start(root: u32, interval: Duration, from_zero: bool) -> Monitor {
        let mut st = State::default();
        st.sample(root);
        let base_ticks = if from_zero { 0 } else { st.total_ticks() };
        // Memory peaks count from now on.
        if !from_zero {
            st.peak_anon_kib = 0;
            st.peak_rss_kib = 0;
        }
        let state = Arc::new(Mutex::new(st));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("procmon-{root}"))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(interval);
                        state.lock().unwrap().sample(root);
                    }
                })
                .expect("spawning the sampler thread")
        };
        Monitor {
            root,
            state,
            stop,
            thread: Some(thread),
            base_ticks,
        }
    }

    /// Takes a final sample, stops the thread and returns the totals.
    pub fn finish(mut self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        let mut st = self.state.lock().unwrap();
        st.sample(self.root);
        let u = Usage {
            cpu_s: st.total_ticks().saturating_sub(self.base_ticks) as f64 / clk_tck(),
            peak_anon_mib: st.peak_anon_kib as f64 / 1024.0,
            peak_rss_mib: st.peak_rss_kib as f64 / 1024.0,
        };
        drop(st);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        u
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
