//! # RateLimiter — global service: token buckets, granted in batches
//!
//! Owns: a token bucket per direction globally and per direction for each torrent that has a
//! limit of its own ([`crate::token_bucket`]), and the line of peers waiting for quota
//! ([`line`]). The configured limits and the per-torrent "limited?" flags live on the
//! [`QuotaBoard`], created by the root and shared with every incarnation, so a restart neither
//! lifts the limits nor strands the peers' flags.
//!
//! Takes: [`RequestQuota`] from peer actors, [`SetLimits`] / [`SetTorrentLimits`] from the
//! control path, [`ForgetTorrent`] when a torrent is removed, [`GetLimiterStats`], and
//! `Terminate` from its supervisor. Sends: only replies.
//!
//! Supervised by: the root (permanent). A crash costs the bucket levels (the new incarnation
//! starts them full: one burst too many at most) and the waiting line: each waiting peer's
//! request fails, which its [`Allowance`] turns into "ask again in a second".
//!
//! ## The quota protocol (for `torrent/peer.rs`)
//! The limiter is never on the per-block path. Each peer actor holds, per direction, an
//! [`Allowance`] built from its torrent's gate (`board.gate(info_hash)`, e.g. carried in
//! `TorrentShared`):
//!
//! ```text
//! before moving n bytes:  match allowance.spend(n)
//!   Spend::Go      → move them. With no limit in force this is one atomic load and nothing
//!                    else: no message, no counting.
//!   Spend::Ask(w)  → hold the transfer; limiter.send(RequestQuota { info_hash, dir, want: w })
//!   Spend::Wait    → hold the transfer (a request is already out)
//! on the reply:           match allowance.granted(reply.ok())
//!   None           → retry the held transfers with spend()
//!   Some(delay)    → run_later(delay, ask again)   (line full, or the limiter restarting)
//! ```
//! Replies: [`Grant::Bytes`] (≥ one block, ≤ `want`; spend it locally, ask again when it runs
//! out), [`Grant::Unlimited`] (the limit was lifted while waiting: go on freely while the gate
//! stays open; nothing to revoke later, the gate flag closing is the revocation), or
//! [`Grant::RetryAfter`]. When the buckets are empty the reply is **delayed** until tokens
//! come; the line is bounded ([`line::MAX_WAITERS`], [`line::MAX_WAITERS_PER_TORRENT`]) and
//! served fairly across torrents. Ask with `send().await` from `ctx.spawn(...)` (not
//! `ctx.wait`: the peer must keep reading its socket while it waits for upload quota).
//!
//! Where to charge:
//! - **Up**: before writing each `Piece` frame (`pump_uploads` / `send_block`): a held block
//!   stays in `uploads` and the pump resumes on the grant, like on `Drained`.
//! - **Down**: when sending `Request` frames (16 KiB each) in the `ToPeer::Request` handler:
//!   requests that cannot be paid for are held and sent on the grant. Charging at request time
//!   keeps the socket read loop free of waits (pausing a `FramedRead` stream is awkward in
//!   actix) and paces the peer's sending to the limit. The torrent's request timeout must allow
//!   for the wait; its adaptive depth (measured rate × 3 s) keeps few requests held anyway.
//!
//! Overshoot: each peer may hold up to one batch ([`DEFAULT_BATCH`], 256 KiB) unspent, and
//! quota held by a peer that disconnects is not returned; both are small and bounded.

mod line;
mod quota;

use std::time::{Duration, Instant};

use actix::prelude::*;
use swarm_supervisor::{ChildLink, ExitReason, Terminate};
use swarm_wire::InfoHash;
use tokio::sync::oneshot;

pub use line::{MAX_WAITERS, MAX_WAITERS_PER_TORRENT, MIN_GRANT};
pub use quota::{
    Allowance, Direction, Grant, LimitSettings, Limits, QuotaBoard, QuotaGate, Spend, DEFAULT_BATCH,
};

use line::Line;

/// A peer asks for up to `want` bytes of quota in `dir`.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "Grant")]
pub struct RequestQuota {
    pub info_hash: InfoHash,
    pub dir: Direction,
    pub want: u64,
}

/// Global limits in bytes/s; `None` (or 0) = unlimited.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct SetLimits {
    pub global_down: Option<u64>,
    pub global_up: Option<u64>,
}

/// One torrent's own limits, in bytes/s; `None` (or 0) = only the global limit applies.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct SetTorrentLimits {
    pub info_hash: InfoHash,
    pub down: Option<u64>,
    pub up: Option<u64>,
    pub priority: swarm_model::BandwidthPriority,
}

/// The torrent is removed: drop its limits, gate and waiters.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct ForgetTorrent {
    pub info_hash: InfoHash,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimiterStats {
    pub settings: LimitSettings,
    pub waiting: usize,
}

#[derive(Message)]
#[rtype(result = "LimiterStats")]
pub struct GetLimiterStats;

pub struct RateLimiter {
    board: QuotaBoard,
    line: Line<oneshot::Sender<Grant>>,
    link: ChildLink,
    /// The pending wake-up and when it fires.
    wake: Option<(SpawnHandle, Instant)>,
}

impl RateLimiter {
    pub fn new(board: QuotaBoard, link: ChildLink) -> Self {
        RateLimiter {
            line: Line::new(board.settings()),
            board,
            link,
            wake: None,
        }
    }

    /// Answers whoever can be served now and sets the timer for the next one.
    fn serve(&mut self, ctx: &mut Context<Self>) {
        crate::fault::maybe_panic("rate_limiter.serve");
        self.line.purge(|tx| tx.is_closed());
        for (tx, grant) in self.line.serve(Instant::now()) {
            // A peer that left meanwhile: its grant is lost (bounded, see the header).
            let _ = tx.send(grant);
        }
        self.schedule(ctx);
    }

    fn schedule(&mut self, ctx: &mut Context<Self>) {
        let Some(wait) = self.line.next_wake() else {
            if let Some((h, _)) = self.wake.take() {
                ctx.cancel_future(h);
            }
            return;
        };
        // Never spin: at least a millisecond between wake-ups.
        let wait = wait.max(Duration::from_millis(1));
        let at = Instant::now() + wait;
        if let Some((h, when)) = self.wake {
            if when <= at {
                return;
            }
            ctx.cancel_future(h);
        }
        let h = ctx.run_later(wait, |act, ctx| {
            act.wake = None;
            act.serve(ctx);
        });
        self.wake = Some((h, at));
    }

    fn apply(&mut self, settings: LimitSettings, ctx: &mut Context<Self>) {
        for tx in self.line.apply(settings, Instant::now()) {
            let _ = tx.send(Grant::Unlimited);
        }
        self.serve(ctx);
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Peers ask with `send().await`: a full mailbox makes them wait, which is the point.
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<RequestQuota> for RateLimiter {
    type Result = ResponseFuture<Grant>;

    fn handle(&mut self, msg: RequestQuota, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        match self
            .line
            .request(msg.info_hash, msg.dir, msg.want, tx, Instant::now())
        {
            Some((_, grant)) => Box::pin(async move { grant }),
            None => {
                // Others were waiting: serve the line now (refilling every bucket), which sets
                // the timer from fresh bucket levels.
                self.serve(ctx);
                Box::pin(async move {
                    // The sender is dropped only if this limiter dies: ask again after restart.
                    rx.await
                        .unwrap_or(Grant::RetryAfter(Duration::from_secs(1)))
                })
            }
        }
    }
}

impl Handler<SetLimits> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: SetLimits, ctx: &mut Context<Self>) {
        let settings = self
            .board
            .set_global(Limits::new(msg.global_down, msg.global_up));
        self.apply(settings, ctx);
    }
}

impl Handler<SetTorrentLimits> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: SetTorrentLimits, ctx: &mut Context<Self>) {
        let settings =
            self.board
                .set_torrent(msg.info_hash, Limits::new(msg.down, msg.up), msg.priority);
        self.apply(settings, ctx);
    }
}

impl Handler<ForgetTorrent> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: ForgetTorrent, ctx: &mut Context<Self>) {
        let settings = self.board.forget(&msg.info_hash);
        self.apply(settings, ctx);
    }
}

impl Handler<GetLimiterStats> for RateLimiter {
    type Result = MessageResult<GetLimiterStats>;

    fn handle(&mut self, _: GetLimiterStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(LimiterStats {
            settings: self.board.settings(),
            waiting: self.line.waiting(),
        })
    }
}

impl Handler<Terminate> for RateLimiter {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}

#[cfg(test)]
mod tests;
