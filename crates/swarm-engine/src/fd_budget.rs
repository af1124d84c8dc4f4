//! # The open-file budget
//!
//! Every peer connection over TCP, every connection in handshake at the listener and every data
//! file the disk pool keeps open is a file descriptor; so are the process's fixed ones (the
//! reactors of the torrent threads, the listener and UDP sockets, the control socket, the HTTP
//! RPC, the watch directory, tracker requests in flight, resume records being written). Past
//! `RLIMIT_NOFILE` every one of them fails the same way (`EMFILE`), whichever asked: a tracker
//! announce, a piece write or the control socket as readily as one more peer.
//!
//! So the engine fits its limits to the process's open-file limit at start, as libtorrent
//! (`connections_limit`) and transmission (`peer-limit-global`) do: first it raises the soft
//! limit to the hard one (what `LimitNOFILE=` or `ulimit -Hn` allows; systemd's default soft
//! limit is 1 024 for a hard one of 524 288), then, if the configured peers, half-open
//! connections and open files still do not fit beside [`RESERVE`], it lowers them and says
//! so. What does not fit is then refused at the door (a connection over the peer cap or the
//! half-open cap is closed at once) instead of failing a write or an announce later.
//!
//! [`fit`] is pure (the limit is an argument; unit tests below); [`apply`] reads and raises the
//! real limit.

use crate::config::EngineConfig;

/// Descriptors kept for everything that is not a peer or a data file (measured: an idle daemon
/// on two cores, so two torrent threads, with the HTTP RPC and the watch directory holds 37, each
/// further torrent thread a few more; the rest is room for tracker requests, resume-record
/// writes, control clients and the state files).
pub const RESERVE: u64 = 64;

/// Each listener half-open slot per configured `max_half_open` (the listener takes four times
/// the per-torrent dial bound, `root/services.rs`).
const LISTENER_HALF_OPEN_FACTOR: usize = 4;

/// The limits the configuration asks for, and what fits (`Fit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Peer connections across all torrents (`max_peers_global`).
    pub peers: usize,
    /// Connections being dialled or in handshake, per torrent (`max_half_open`).
    pub half_open: usize,
    /// Data files kept open by the disk pool (`max_open_files`).
    pub open_files: usize,
}

impl Budget {
    pub fn of(cfg: &EngineConfig) -> Budget {
        Budget {
            peers: cfg.max_peers_global,
            half_open: cfg.max_half_open,
            open_files: cfg.max_open_files,
        }
    }

    /// Descriptors these limits may hold at once, the reserve included.
    pub fn descriptors(&self) -> u64 {
        (self.peers + LISTENER_HALF_OPEN_FACTOR * self.half_open + self.open_files) as u64 + RESERVE
    }
}

/// What `want` becomes under an open-file `limit`: `None` when it fits as it is. Otherwise a
/// quarter of what is left after the reserve goes to open files, a sixteenth of the rest to each
/// of the listener's half-open slots' share, the rest to peers; never more than asked, never
/// less than a working minimum (4 files, 1 half-open, 4 peers: a limit that low is refused by
/// nobody, but the daemon says it cannot do much).
pub fn fit(limit: u64, want: Budget) -> Option<Budget> {
    if want.descriptors() <= limit {
        return None;
    }
    let avail = limit.saturating_sub(RESERVE) as usize;
    let open_files = want.open_files.min((avail / 4).max(4));
    let rest = avail.saturating_sub(open_files);
    let half_open = want.half_open.min((rest / 16).max(1));
    let peers = want.peers.min(
        rest.saturating_sub(LISTENER_HALF_OPEN_FACTOR * half_open)
            .max(4),
    );
    Some(Budget {
        peers,
        half_open,
        open_files,
    })
}

/// The soft open-file limit after raising it as far as the hard limit allows; `None` if the
/// system does not say (then nothing is fitted).
fn raise_open_file_limit() -> Option<u64> {
    // SAFETY: `rlimit` is plain old data, valid when zeroed; the calls only read and write it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Some(lim.rlim_cur)
}

/// Raises the soft open-file limit to the hard one and fits `cfg` to it, logging what it
/// changed. Returns the limit in force.
pub fn apply(cfg: &mut EngineConfig) -> Option<u64> {
    let limit = raise_open_file_limit()?;
    let want = Budget::of(cfg);
    if let Some(fitted) = fit(limit, want) {
        tracing::warn!(
            limit,
            max_peers_global = fitted.peers,
            max_half_open = fitted.half_open,
            open_files = fitted.open_files,
            "the open-file limit (ulimit -n, systemd LimitNOFILE=) is too low for {} peers, {} \
             half-open connections and {} open files ({} descriptors); using less, raise the \
             limit for more",
            want.peers,
            want.half_open,
            want.open_files,
            want.descriptors(),
        );
        cfg.max_peers_global = fitted.peers;
        cfg.max_half_open = fitted.half_open;
        cfg.max_open_files = fitted.open_files;
        cfg.max_peers_per_torrent = cfg.max_peers_per_torrent.min(fitted.peers);
    } else {
        tracing::debug!(limit, "open-file limit");
    }
    Some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Budget = Budget {
        peers: 500,
        half_open: 32,
        open_files: 128,
    };

    #[test]
    fn what_fits_is_left_alone() {
        assert_eq!(DEFAULTS.descriptors(), 500 + 128 + 128 + RESERVE);
        assert_eq!(fit(1024, DEFAULTS), None);
        assert_eq!(fit(524_288, DEFAULTS), None);
    }

    #[test]
    fn a_low_limit_shrinks_every_part_and_holds() {
        let fitted = fit(256, DEFAULTS).unwrap();
        assert_eq!(
            fitted,
            Budget {
                peers: 108,
                half_open: 9,
                open_files: 48
            }
        );
        assert!(fitted.descriptors() <= 256, "{fitted:?}");
        // Just under what the defaults need: only the peers give way.
        let fitted = fit(800, DEFAULTS).unwrap();
        assert!(fitted.descriptors() <= 800, "{fitted:?}");
        assert_eq!((fitted.half_open, fitted.open_files), (32, 128));
        // Never more than asked.
        let small = Budget {
            peers: 20,
            half_open: 2,
            open_files: 500,
        };
        let fitted = fit(256, small).unwrap();
        assert_eq!((fitted.peers, fitted.half_open), (20, 2));
        assert!(fitted.descriptors() <= 256, "{fitted:?}");
    }

    #[test]
    fn an_absurd_limit_keeps_a_working_minimum() {
        let fitted = fit(16, DEFAULTS).unwrap();
        assert_eq!(
            fitted,
            Budget {
                peers: 4,
                half_open: 1,
                open_files: 4
            }
        );
    }
}
