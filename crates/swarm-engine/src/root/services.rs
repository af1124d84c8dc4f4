//! The root's global services, declared in one table ([`Root::services`], etorrent's `init/1`):
//! which services run, in what order, with what restart type and from what configuration.
//! Also the run-time change of the global rate limits, which goes to the rate limiter.
//!
//! Every service is `Permanent`: the daemon cannot work without any of them, so a crash is
//! restarted (with the root's backoff) and one that exhausts its budget stops the daemon (see
//! the root's exit handler). Torrents reach a service by its name ([`ServiceRef`]), which
//! [`named`] points at each new incarnation; they never keep the address of a dead one.

use actix::prelude::*;
use swarm_supervisor::{ChildHandle, ChildLink, ChildSpec, Restart, Terminate};
use swarm_tracker::UdpConfig;

use super::{speed, Root, RootChild};
use crate::services::announcer::Announcer;
use crate::services::choker::Choker;
use crate::services::dht::DhtService;
use crate::services::listener::Listener;
use crate::services::rate_limiter::{RateLimiter, SetLimits};
use crate::services::udp_port::{UdpPort, UdpPortConfig};

/// How often the alternative limits' schedule is looked at: its edges are whole minutes.
const SCHEDULE_PERIOD: std::time::Duration = std::time::Duration::from_secs(20);
use crate::services::ServiceRef;

impl Root {
    /// The services, in start order (shutdown stops them in reverse). Each start function is
    /// called again for every restart.
    pub(super) fn services(&self) -> Vec<ChildSpec<RootChild>> {
        let cfg = &self.cfg;
        let (peer_id, port) = (self.peer_id, self.listen_port);
        // The socket stays bound across listener restarts: each incarnation gets a clone.
        let socket = self.socket.try_clone();
        let (half_open, handshake_timeout) = (cfg.max_half_open * 4, cfg.handshake_timeout);
        let encryption = self.encryption.clone();
        let blocklist = self.blocklist.clone();
        let udp = UdpConfig {
            base_timeout: cfg.udp_tracker_timeout,
            max_retries: cfg.udp_tracker_retries,
            ..UdpConfig::default()
        };
        let announce = cfg.announce;
        let (choke, board) = (cfg.choker.clone(), self.board.clone());
        let udp_socket = self.udp_socket.as_ref().map(|s| s.try_clone());
        let (udp_slot, listener) = (self.udp.clone(), self.services.listener.clone());
        let udp_cfg = UdpPortConfig {
            utp: cfg.utp(),
            // Every connection we may hold, and as many more in handshake.
            max_connections: cfg.max_peers_global + half_open,
            max_half_open: half_open,
            handshake_timeout,
            encryption: self.encryption.clone(),
            blocklist: self.blocklist.clone(),
        };
        let mut table = vec![ChildSpec::new(
            RootChild::Listener,
            Restart::Permanent,
            named(&self.services.listener, move |link| {
                let socket = socket
                    .as_ref()
                    .map_err(|e| format!("listener socket: {e}"))?;
                let socket = socket.try_clone().map_err(|e| e.to_string())?;
                Ok(Listener::new(
                    socket,
                    half_open,
                    handshake_timeout,
                    encryption.clone(),
                    blocklist.clone(),
                    link,
                ))
            }),
        )];
        // Before the DHT: a node that shares the port finds the socket in the slot.
        if let Some(socket) = udp_socket {
            table.push(ChildSpec::new(
                RootChild::UdpPort,
                Restart::Permanent,
                move |link| {
                    let socket = socket
                        .as_ref()
                        .map_err(|e| format!("UDP port socket: {e}"))?;
                    let socket = socket.try_clone().map_err(|e| e.to_string())?;
                    let port = UdpPort::new(
                        socket,
                        udp_slot.clone(),
                        listener.clone(),
                        udp_cfg.clone(),
                        link,
                    )
                    .map_err(|e| format!("UDP port socket: {e}"))?;
                    Ok(ChildHandle::new(port.start()))
                },
            ));
        }
        table.extend([
            ChildSpec::new(
                RootChild::Announcer,
                Restart::Permanent,
                named(&self.services.announcer, move |link| {
                    Ok(Announcer::new(peer_id, port, udp, announce, link))
                }),
            ),
            ChildSpec::new(
                RootChild::Choker,
                Restart::Permanent,
                named(&self.services.choker, move |link| {
                    Ok(Choker::new(choke.clone(), link))
                }),
            ),
            ChildSpec::new(
                RootChild::RateLimiter,
                Restart::Permanent,
                named(&self.services.limiter, move |link| {
                    Ok(RateLimiter::new(board.clone(), link))
                }),
            ),
        ]);
        // Torrents find the DHT through its slot, which the service fills when its node is up.
        if let Some(dht) = cfg.dht.clone() {
            let slot = self.dht.clone();
            let port = cfg.dht_shares_port().then(|| self.udp.clone());
            table.push(ChildSpec::new(
                RootChild::Dht,
                Restart::Permanent,
                move |link| {
                    let addr =
                        DhtService::new(dht.clone(), slot.clone(), port.clone(), link).start();
                    Ok(ChildHandle::new(addr))
                },
            ));
        }
        table
    }

    /// Starts every service of the table. One that cannot start is logged and left out; the
    /// others run.
    pub(super) fn start_services(&mut self, ctx: &mut Context<Self>) {
        for spec in self.services() {
            if let Err(e) = self.children.start_spec(spec, ctx) {
                tracing::error!("{e}");
            }
        }
        // The limits live in the board, shared by every limiter incarnation: set once.
        self.speed.tick(speed::LocalTime::now());
        self.apply_speed();
    }

    /// Hands the global limits in force to the rate limiter.
    fn apply_speed(&self) {
        let l = self.speed.in_force();
        self.services.limiter.do_send(SetLimits {
            global_down: l.download,
            global_up: l.upload,
        });
    }

    /// Looks at the alternative limits' schedule twice a minute.
    pub(super) fn start_speed_schedule(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(SCHEDULE_PERIOD, |root, _| {
            if root.speed.tick(speed::LocalTime::now()) {
                let on = root.speed.alt().enabled;
                tracing::info!(on, "alternative speed limits switched by their schedule");
                root.apply_speed();
            }
        });
    }
}

/// A service's start function that also points its name at each new incarnation.
fn named<A>(
    name: &ServiceRef<A>,
    mut make: impl FnMut(ChildLink) -> Result<A, String> + Send + 'static,
) -> impl FnMut(ChildLink) -> Result<ChildHandle, String> + Send + 'static
where
    A: Actor<Context = Context<A>> + Handler<Terminate>,
{
    let name = name.clone();
    move |link| {
        let addr = make(link)?.start();
        name.set(Some(addr.clone()));
        Ok(ChildHandle::new(addr))
    }
}

/// The encryption policy in force, and a way to change it at run time (the listener and every
/// torrent read the same cell, at each new connection).
#[derive(Message)]
#[rtype(result = "swarm_wire::mse::Policy")]
pub struct Encryption(pub Option<swarm_wire::mse::Policy>);

impl Handler<Encryption> for Root {
    type Result = MessageResult<Encryption>;

    fn handle(&mut self, msg: Encryption, _: &mut Context<Self>) -> Self::Result {
        if let Some(p) = msg.0 {
            self.encryption.set(p);
        }
        MessageResult(self.encryption.get())
    }
}

/// The normal global limits (in force unless the alternative ones are on), and a way to change
/// them at run time.
#[derive(Message)]
#[rtype(result = "swarm_model::Limits")]
pub struct GlobalLimits(pub Option<swarm_model::Limits>);

impl Handler<GlobalLimits> for Root {
    type Result = MessageResult<GlobalLimits>;

    fn handle(&mut self, msg: GlobalLimits, _: &mut Context<Self>) -> Self::Result {
        if let Some(l) = msg.0 {
            self.speed.set_normal(l);
            // The limiter applies it on its next message; the answer is what was asked.
            self.apply_speed();
        }
        MessageResult(self.speed.normal())
    }
}

/// The global limits in force: the alternative ones while they are on, else the normal ones.
#[derive(Message)]
#[rtype(result = "swarm_model::Limits")]
pub struct LimitsInForce;

impl Handler<LimitsInForce> for Root {
    type Result = MessageResult<LimitsInForce>;

    fn handle(&mut self, _: LimitsInForce, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.speed.in_force())
    }
}

/// The alternative limits, their switch and their schedule, and a way to change them.
#[derive(Message)]
#[rtype(result = "swarm_model::AltSpeed")]
pub struct AltSpeedMsg(pub Option<swarm_model::AltSpeed>);

impl Handler<AltSpeedMsg> for Root {
    type Result = MessageResult<AltSpeedMsg>;

    fn handle(&mut self, msg: AltSpeedMsg, _: &mut Context<Self>) -> Self::Result {
        if let Some(a) = msg.0 {
            self.speed.set_alt(a);
            // A new schedule whose window is open now turns the limits on at once.
            self.speed.tick(speed::LocalTime::now());
            self.apply_speed();
        }
        MessageResult(self.speed.alt())
    }
}
