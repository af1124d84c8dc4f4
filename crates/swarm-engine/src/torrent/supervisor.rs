//! # A torrent's children, declared
//!
//! The torrent actor supervises one child per peer connection ([`PeerConn`], keyed by
//! [`PeerKey`]); this file is where that tree and its policy are written down, and the only place
//! peer actors are started:
//!
//! | child | restart | why |
//! |---|---|---|
//! | outgoing peer | `Transient`: re-dialled after a crash (I/O error, protocol violation, panic), backoff 1 s → 30 s, reset after 60 s of health | the address may work next time |
//! | incoming peer | `Temporary` (`ChildSpec::once`): never restarted | its socket can be used once; the peer dials again if it wants |
//!
//! Budget: a peer that crashes 3 times in a minute is given up (the address goes back to the
//! address book's backoff, and may come back later from a tracker). Intensity is unlimited:
//! peers are independent (`one_for_one`), and a torrent never escalates because of them.
//!
//! The torrent handles the exits (`ChildExited<PeerKey>` in `actor.rs`) and tells its peer set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use swarm_supervisor::{
    Access, ChildExited, ChildHandle, ChildSpec, Children, Restart, RestartPolicy, SupervisorError,
};

use crate::torrent::messages::{Dial, PeerKey, TorrentInbox};
use crate::torrent::peer::transport::TransportKind;
use crate::torrent::peer::PeerConn;
use crate::torrent::shared::TorrentShared;

/// The peer actors' supervisor of the torrent named `name`.
pub fn peer_children<A>(name: &str, access: Access<PeerKey, A>) -> Children<PeerKey, A>
where
    A: Actor<Context = Context<A>> + Handler<ChildExited<PeerKey>>,
{
    let policy = RestartPolicy::one_for_one()
        .unlimited_intensity()
        .child_budget(3, Duration::from_secs(60))
        .backoff(
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(60),
        );
    // A refused, reset or closed connection is a peer's life, not a fault of ours: logged at
    // debug (on a real swarm they are many a minute); panics stay warnings.
    Children::new(policy, access)
        .named(format!("torrent {name}"))
        .expected_errors()
}

/// Dials `sock` as the child `key` (a `Transient` child: re-dialled on a crash), over `worked`
/// first when a transport worked with it before.
pub fn dial<A>(
    children: &mut Children<PeerKey, A>,
    ctx: &mut Context<A>,
    key: PeerKey,
    sock: SocketAddr,
    worked: Option<TransportKind>,
    shared: Arc<TorrentShared>,
    inbox: TorrentInbox,
) -> Result<(), SupervisorError>
where
    A: Actor<Context = Context<A>> + Handler<ChildExited<PeerKey>>,
{
    // Called again for every re-dial, after the supervisor's backoff.
    let start = move |link| {
        let peer = PeerConn::new(
            key,
            sock,
            Dial::Outgoing { worked },
            shared.clone(),
            inbox.clone(),
            link,
        );
        Ok(ChildHandle::new(peer.start()))
    };
    children.start(key, Restart::Transient, start, ctx)
}

/// Takes the connection the listener accepted from `addr` as the child `key` (`Temporary`).
pub fn accept<A>(
    children: &mut Children<PeerKey, A>,
    ctx: &mut Context<A>,
    key: PeerKey,
    addr: SocketAddr,
    dial: Dial,
    shared: Arc<TorrentShared>,
    inbox: TorrentInbox,
) -> Result<(), SupervisorError>
where
    A: Actor<Context = Context<A>> + Handler<ChildExited<PeerKey>>,
{
    let spec = ChildSpec::once(key, move |link| {
        Ok(ChildHandle::new(
            PeerConn::new(key, addr, dial, shared, inbox, link).start(),
        ))
    });
    children.start_spec(spec, ctx)
}
