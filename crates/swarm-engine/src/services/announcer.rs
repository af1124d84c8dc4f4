//! # Announcer — global service
//!
//! Owns: for every tracked torrent, its tracker list (BEP 12 tiers, per-tracker backoff and
//! intervals, in `swarm_tracker::TrackerList`), the last transfer counters the torrent reported,
//! and which trackers have heard `started`. One UDP socket shared by all UDP trackers.
//!
//! Takes: `Track` / `Untrack` / `Progress` / `Completed` / `Reannounce` from torrents,
//! `GetTrackers` from the control path, `StopAll` at shutdown. Sends: `PeersFound` to torrents.
//! HTTP announces run on blocking threads (`ureq`), UDP ones on tokio; neither blocks the actor.
//! A broken tracker reply is logged with the tracker's URL and costs that tracker a backoff. A
//! tracker that cannot be reached is skipped by every torrent for a while (`reachability`).
//!
//! Supervised by: the root (permanent). A crash loses the schedule: after the restart every
//! torrent is tracked again from its next `Progress` report... and `started` goes out again, which
//! trackers accept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use swarm_model::TrackerInfo;
use swarm_supervisor::{ChildLink, ExitReason, Terminate};
use swarm_tracker::{
    http_announce, AnnounceRequest, AnnounceResponse, Event, TrackerError, TrackerHealth,
    TrackerKind, TrackerList, UdpConfig, UdpTrackerClient,
};
use swarm_wire::InfoHash;

use crate::torrent::messages::PeerSource;
use crate::torrent::messages::PeersFound;

mod reachability;
#[cfg(test)]
mod tests;

use reachability::Reachability;

/// What the user's `[trackers]` section sets for every announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceSettings {
    /// One announce, HTTP or UDP, from start to answer (`announce_timeout_secs`). A UDP
    /// announce's retransmissions (BEP 15) happen inside it.
    pub timeout: Duration,
    /// Peers asked for in each announce (`numwant`).
    pub numwant: u32,
    /// The shortest wait between regular announces to a tracker, whatever it asks
    /// (`min_interval_secs`).
    pub min_interval: Duration,
}

impl Default for AnnounceSettings {
    /// The defaults `config/swarmd.toml` documents.
    fn default() -> Self {
        AnnounceSettings {
            timeout: Duration::from_secs(30),
            numwant: 50,
            min_interval: Duration::from_secs(60),
        }
    }
}

/// The shortest time between two sweeps over every torrent.
const SWEEP_GAP: Duration = Duration::from_secs(1);
/// HTTP announces in flight at once (each on a blocking thread).
const MAX_HTTP_ANNOUNCES: usize = 16;

struct Tracked {
    list: TrackerList,
    to: Recipient<PeersFound>,
    uploaded: u64,
    downloaded: u64,
    left: u64,
    /// `completed` still owed to the trackers (sent with the next announce).
    completed_pending: bool,
}

pub struct Announcer {
    peer_id: [u8; 20],
    port: u16,
    key: u32,
    settings: AnnounceSettings,
    udp: Option<UdpTrackerClient>,
    http_slots: std::sync::Arc<tokio::sync::Semaphore>,
    next_poll: Option<(SpawnHandle, Instant)>,
    udp_config: UdpConfig,
    torrents: HashMap<InfoHash, Tracked>,
    /// Trackers that could not be reached lately.
    unreachable: Reachability,
    /// Announces that failed since this actor started (the metrics' tracker errors; a restart
    /// starts again from 0, which Prometheus reads as a counter reset).
    announce_failures: u64,
    link: ChildLink,
}

impl Announcer {
    pub fn new(
        peer_id: [u8; 20],
        port: u16,
        udp_config: UdpConfig,
        settings: AnnounceSettings,
        link: ChildLink,
    ) -> Self {
        Announcer {
            peer_id,
            port,
            key: rand::random(),
            settings,
            udp: None,
            http_slots: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_HTTP_ANNOUNCES)),
            next_poll: None,
            udp_config,
            torrents: HashMap::new(),
            unreachable: Reachability::default(),
            announce_failures: 0,
            link,
        }
    }

    fn request(&self, ih: InfoHash, t: &Tracked, url: &str, event: Event) -> AnnounceRequest {
        let mut req = AnnounceRequest::new(ih, self.peer_id, self.port);
        req.uploaded = t.uploaded;
        req.downloaded = t.downloaded;
        req.left = t.left;
        req.event = event;
        req.key = self.key;
        req.numwant = (event != Event::Stopped).then_some(self.settings.numwant);
        req.tracker_id = t.list.tracker_id(url).map(str::to_owned);
        req
    }

    /// The full sweep, when the timer set by [`Self::schedule`] fires: every torrent whose
    /// tracker is due announces, then the timer is set for the earliest next one.
    fn poll(&mut self, ctx: &mut Context<Self>) {
        crate::fault::maybe_panic("announcer.poll");
        let now = Instant::now();
        self.unreachable.prune(now);
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for ih in hashes {
            self.start_due(ih, now, ctx);
        }
        self.schedule(ctx, now);
    }

    /// One torrent's part of [`Self::poll`], after something changed for it alone (tracked,
    /// an announce finished, completed, reannounce): a thousand torrents' announce results must
    /// not cost a thousand sweeps of a thousand torrents.
    fn poll_one(&mut self, ih: InfoHash, ctx: &mut Context<Self>) {
        crate::fault::maybe_panic_for("announcer.poll", Some(&ih));
        let now = Instant::now();
        self.start_due(ih, now, ctx);
        if let Some(at) = self.torrents.get(&ih).and_then(|t| t.list.next_wakeup(now)) {
            self.wake_at(at, now, ctx);
        }
    }

    /// Starts the announce of `ih` if one of its trackers is due. A tracker that could not be
    /// reached for another torrent moments ago fails at once, without I/O, and the next tracker
    /// of the tier may be due then: bounded, each such failure backs one tracker off.
    fn start_due(&mut self, ih: InfoHash, now: Instant, ctx: &mut Context<Self>) {
        let trackers = self.torrents.get(&ih).map_or(0, |t| t.list.len());
        for _ in 0..=trackers {
            let Some(t) = self.torrents.get_mut(&ih) else {
                return;
            };
            let Some((_, _, url)) = t.list.next_due(now) else {
                return;
            };
            match self.unreachable.skip(&url, now) {
                Some(err) => {
                    tracing::debug!(tracker = url, "{err}");
                    t.list.on_failure(&url, &err, now);
                }
                None => return self.launch(ih, url, ctx),
            }
        }
    }

    fn launch(&mut self, ih: InfoHash, url: String, ctx: &mut Context<Self>) {
        let Some(t) = self.torrents.get(&ih) else {
            return;
        };
        let event = if !t.list.announced().contains(&url) {
            Event::Started
        } else if t.completed_pending {
            Event::Completed
        } else {
            Event::None
        };
        let req = self.request(ih, t, &url, event);
        let fut = self.announce(url.clone(), req);
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.on_result(ih, &url, event, res);
            act.poll_one(ih, ctx);
        }));
    }

    /// Sleeps until the earliest tracker is due (not a fixed poll: a thousand idle torrents
    /// whose trackers back off for minutes cost nothing meanwhile).
    fn schedule(&mut self, ctx: &mut Context<Self>, now: Instant) {
        let Some(at) = self
            .torrents
            .values()
            .filter_map(|t| t.list.next_wakeup(now))
            .min()
        else {
            return;
        };
        self.wake_at(at, now, ctx);
    }

    /// Makes sure a sweep runs at `at` (or earlier, if one is set for earlier already). Sweeps
    /// are at least [`SWEEP_GAP`] apart: a thousand torrents whose retries fall due over a
    /// second cost one or two sweeps, not one per torrent (what is urgent, a new torrent or a
    /// failover after a failure, goes through `poll_one` at once anyway).
    fn wake_at(&mut self, at: Instant, now: Instant, ctx: &mut Context<Self>) {
        let at = at.max(now + SWEEP_GAP);
        if let Some((handle, when)) = self.next_poll {
            if when <= at && when > now {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.run_later(at - now, |act, ctx| {
            act.next_poll = None;
            act.poll(ctx);
        });
        self.next_poll = Some((handle, at));
    }

    fn announce(
        &self,
        url: String,
        req: AnnounceRequest,
    ) -> impl std::future::Future<Output = Result<AnnounceResponse, TrackerError>> + 'static {
        let (udp, http_slots) = (self.udp.clone(), self.http_slots.clone());
        let unreachable = self.unreachable.clone();
        let timeout = self.settings.timeout;
        async move {
            match TrackerKind::of(&url)? {
                TrackerKind::Http => {
                    // Each HTTP announce holds a blocking thread: a thousand torrents starting
                    // at once must not mean a thousand threads.
                    let _slot = http_slots.acquire_owned().await;
                    // Checked again with the slot held, and noted before it is given back: the
                    // announces queued behind a dead tracker's first attempts skip it.
                    if let Some(e) = unreachable.skip(&url, Instant::now()) {
                        return Err(e);
                    }
                    let u = url.clone();
                    let res = tokio::task::spawn_blocking(move || http_announce(&u, &req, timeout))
                        .await
                        .unwrap_or_else(|e| {
                            Err(TrackerError::Io {
                                url: url.clone(),
                                source: std::io::Error::other(format!("announce task failed: {e}")),
                            })
                        });
                    unreachable.note(&url, &res, Instant::now());
                    res
                }
                TrackerKind::Udp => match udp {
                    Some(c) => {
                        if let Some(e) = unreachable.skip(&url, Instant::now()) {
                            return Err(e);
                        }
                        // The client's own retransmission schedule may run longer than the
                        // user's bound for one announce; the bound wins.
                        let res = tokio::time::timeout(timeout, c.announce(&url, &req))
                            .await
                            .unwrap_or_else(|_| {
                                Err(TrackerError::Timeout {
                                    url: url.clone(),
                                    after: timeout,
                                })
                            });
                        unreachable.note(&url, &res, Instant::now());
                        res
                    }
                    None => Err(TrackerError::Io {
                        url,
                        source: std::io::Error::other("no UDP socket"),
                    }),
                },
            }
        }
    }

    fn on_result(
        &mut self,
        ih: InfoHash,
        url: &str,
        event: Event,
        res: Result<AnnounceResponse, TrackerError>,
    ) {
        let Some(t) = self.torrents.get_mut(&ih) else {
            return;
        };
        let now = Instant::now();
        match res {
            Ok(resp) => {
                tracing::debug!(
                    tracker = url,
                    peers = resp.peers.len(),
                    ?event,
                    "announce ok"
                );
                if let Some(w) = &resp.warning {
                    tracing::warn!(tracker = url, "tracker warning: {w}");
                }
                t.list.on_success(url, &resp, now);
                if event == Event::Completed {
                    t.completed_pending = false;
                } else if t.completed_pending {
                    // The torrent completed while this announce was in flight.
                    t.list.announce_event_now(now);
                }
                if !resp.peers.is_empty() {
                    t.to.do_send(PeersFound {
                        addrs: resp.peers,
                        source: PeerSource::Tracker,
                    });
                }
            }
            Err(e) => {
                self.announce_failures += 1;
                // Loud when a tracker starts failing; while it keeps failing (a dead tracker of
                // a thousand torrents retries all of them) the story is in `swarmctl trackers`.
                if t.list.on_failure(url, &e, now) <= 1 {
                    tracing::warn!(tracker = url, "announce failed: {e}");
                } else {
                    tracing::debug!(tracker = url, "announce failed again: {e}");
                }
            }
        }
    }

    /// Sends `stopped` to every tracker that heard from us, waiting at most `timeout`.
    fn send_stopped(
        &self,
        ih: InfoHash,
        t: &Tracked,
        timeout: Duration,
    ) -> impl std::future::Future<Output = ()> + 'static {
        // A `completed` still owed goes out first, so the tracker counts the download even
        // when we stop right after it (the one-shot `download` does).
        let completed: Vec<_> = if t.completed_pending {
            t.list
                .announced()
                .into_iter()
                .map(|url| {
                    let req = self.request(ih, t, &url, Event::Completed);
                    self.announce(url, req)
                })
                .collect()
        } else {
            Vec::new()
        };
        let stopped: Vec<_> = t
            .list
            .announced()
            .into_iter()
            .map(|url| {
                let req = self.request(ih, t, &url, Event::Stopped);
                self.announce(url, req)
            })
            .collect();
        async move {
            let _ = tokio::time::timeout(timeout, async move {
                futures::future::join_all(completed).await;
                futures::future::join_all(stopped).await;
            })
            .await;
        }
    }
}

impl Actor for Announcer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let cfg = self.udp_config;
        let bind: SocketAddr = ([0, 0, 0, 0], 0).into();
        ctx.wait(
            async move { UdpTrackerClient::with_config(bind, cfg).await }
                .into_actor(self)
                .map(|res, act, _| match res {
                    Ok(c) => act.udp = Some(c),
                    Err(e) => tracing::warn!("no UDP tracker socket: {e}"),
                }),
        );
        // A safety net: normally `schedule` wakes the announcer exactly when needed.
        ctx.run_interval(Duration::from_secs(30), |act, ctx| act.poll(ctx));
    }
}

/// Start announcing a torrent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Track {
    pub info_hash: InfoHash,
    pub tiers: Vec<Vec<String>>,
    pub to: Recipient<PeersFound>,
    pub left: u64,
    pub private: bool,
}

impl Handler<Track> for Announcer {
    type Result = ();

    fn handle(&mut self, msg: Track, ctx: &mut Context<Self>) {
        // Idempotent: torrents repeat it (that is how a restarted announcer relearns them).
        if let Some(t) = self.torrents.get_mut(&msg.info_hash) {
            t.to = msg.to;
            return;
        }
        let t = Tracked {
            list: TrackerList::new(msg.tiers).with_min_interval(self.settings.min_interval),
            to: msg.to,
            uploaded: 0,
            downloaded: 0,
            left: msg.left,
            completed_pending: false,
        };
        self.torrents.insert(msg.info_hash, t);
        self.poll_one(msg.info_hash, ctx);
    }
}

/// Stop announcing a torrent; the trackers that heard `started` get `stopped`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Untrack {
    pub info_hash: InfoHash,
}

impl Handler<Untrack> for Announcer {
    type Result = ();

    fn handle(&mut self, msg: Untrack, ctx: &mut Context<Self>) {
        if let Some(t) = self.torrents.remove(&msg.info_hash) {
            ctx.spawn(
                self.send_stopped(msg.info_hash, &t, Duration::from_secs(5))
                    .into_actor(self),
            );
        }
    }
}

/// A torrent's transfer counters, reported every few seconds.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Progress {
    pub info_hash: InfoHash,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
}

impl Handler<Progress> for Announcer {
    type Result = ();

    fn handle(&mut self, msg: Progress, _: &mut Context<Self>) {
        if let Some(t) = self.torrents.get_mut(&msg.info_hash) {
            t.uploaded = msg.uploaded;
            t.downloaded = msg.downloaded;
            t.left = msg.left;
        }
    }
}

/// The torrent finished downloading: `completed` goes out now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Completed {
    pub info_hash: InfoHash,
}

impl Handler<Completed> for Announcer {
    type Result = ();

    fn handle(&mut self, msg: Completed, ctx: &mut Context<Self>) {
        if let Some(t) = self.torrents.get_mut(&msg.info_hash) {
            t.left = 0;
            t.completed_pending = true;
            t.list.announce_event_now(Instant::now());
        }
        self.poll_one(msg.info_hash, ctx);
    }
}

/// The user asked for an announce now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reannounce {
    pub info_hash: InfoHash,
}

impl Handler<Reannounce> for Announcer {
    type Result = ();

    fn handle(&mut self, msg: Reannounce, ctx: &mut Context<Self>) {
        if let Some(t) = self.torrents.get_mut(&msg.info_hash) {
            let now = Instant::now();
            t.list.reannounce_now(now);
            // Asked for by the user: try for real, even a tracker other torrents found dead.
            for s in t.list.status(now) {
                self.unreachable.forget(&s.url);
            }
        }
        self.poll_one(msg.info_hash, ctx);
    }
}

#[derive(Message)]
#[rtype(result = "Vec<TrackerInfo>")]
pub struct GetTrackers {
    pub info_hash: InfoHash,
}

impl Handler<GetTrackers> for Announcer {
    type Result = Vec<TrackerInfo>;

    fn handle(&mut self, msg: GetTrackers, _: &mut Context<Self>) -> Vec<TrackerInfo> {
        let Some(t) = self.torrents.get(&msg.info_hash) else {
            return Vec::new();
        };
        t.list
            .status(Instant::now())
            .into_iter()
            .map(|s| TrackerInfo {
                url: s.url,
                tier: s.tier as u32,
                status: match s.health {
                    TrackerHealth::NotContacted => "not_contacted",
                    TrackerHealth::Announcing => "pending",
                    TrackerHealth::Working => "ok",
                    TrackerHealth::Failing => "error",
                }
                .into(),
                message: s.last_error.or(s.last_warning),
                seeders: s.seeders,
                leechers: s.leechers,
                peers_received: s.last_peers as u32,
                next_announce_secs: s.next_announce_in.map(|d| d.as_secs()),
            })
            .collect()
    }
}

/// How the trackers fare: for the metrics, read when they are scraped.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackerHealthCounts {
    /// Trackers (of all torrents) whose last announce failed.
    pub failing: u32,
    /// Announces that failed since the announcer started.
    pub announce_failures: u64,
}

#[derive(Message)]
#[rtype(result = "TrackerHealthCounts")]
pub struct GetTrackerHealth;

impl Handler<GetTrackerHealth> for Announcer {
    type Result = MessageResult<GetTrackerHealth>;

    fn handle(&mut self, _: GetTrackerHealth, _: &mut Context<Self>) -> Self::Result {
        let now = Instant::now();
        let failing = self
            .torrents
            .values()
            .flat_map(|t| t.list.status(now))
            .filter(|s| s.health == TrackerHealth::Failing)
            .count();
        MessageResult(TrackerHealthCounts {
            failing: failing as u32,
            announce_failures: self.announce_failures,
        })
    }
}

/// Shutdown: `stopped` to every tracker of every torrent, bounded by `timeout`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAll {
    pub timeout: Duration,
}

impl Handler<StopAll> for Announcer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: StopAll, _: &mut Context<Self>) -> ResponseFuture<()> {
        let torrents = std::mem::take(&mut self.torrents);
        let futs: Vec<_> = torrents
            .iter()
            .map(|(ih, t)| self.send_stopped(*ih, t, msg.timeout))
            .collect();
        Box::pin(async move {
            futures::future::join_all(futs).await;
        })
    }
}

impl Handler<Terminate> for Announcer {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}
