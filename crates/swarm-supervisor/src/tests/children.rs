//! `Children` embedded in an actor that also has work of its own, like the torrent actor
//! supervising its peers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use super::{eventually, ms, Boom, Mode, Ping, Probe, Quit, Worker};
use crate::{
    ChildExited, ChildHandle, ChildSpec, Children, ExitOutcome, ExitReason, Restart, RestartPolicy,
};

type Outcomes = Arc<Mutex<Vec<ExitOutcome<&'static str>>>>;

/// A stand-in for the torrent actor: some state of its own, plus its peers.
struct Swarm {
    peers: Children<&'static str, Swarm>,
    outcomes: Outcomes,
    blocks: u32,
}

impl Swarm {
    fn new(policy: RestartPolicy, outcomes: Outcomes) -> Self {
        Swarm {
            peers: Children::new(policy, |s: &mut Swarm| &mut s.peers).named("swarm"),
            outcomes,
            blocks: 0,
        }
    }
}

impl Actor for Swarm {
    type Context = Context<Self>;
}

impl Handler<ChildExited<&'static str>> for Swarm {
    type Result = ();

    fn handle(&mut self, msg: ChildExited<&'static str>, ctx: &mut Context<Self>) {
        let outcome = self.peers.handle_exit(msg, ctx);
        if let ExitOutcome::Escalate(_) = outcome {
            ctx.stop();
        }
        self.outcomes.lock().unwrap().push(outcome);
    }
}

/// Dials (starts) a peer.
#[derive(Message)]
#[rtype(result = "Result<(), crate::SupervisorError>")]
struct Dial(&'static str, Restart, Mode, Probe);

impl Handler<Dial> for Swarm {
    type Result = Result<(), crate::SupervisorError>;

    fn handle(
        &mut self,
        Dial(name, restart, mode, probe): Dial,
        ctx: &mut Context<Self>,
    ) -> Self::Result {
        self.peers.start(
            name,
            restart,
            move |link| {
                Ok(ChildHandle::new(Worker::spawn(
                    name,
                    mode,
                    probe.clone(),
                    link,
                )))
            },
            ctx,
        )
    }
}

/// Accepts an incoming peer: started once, never re-dialled.
#[derive(Message)]
#[rtype(result = "Result<(), crate::SupervisorError>")]
struct Accept(&'static str, Probe);

impl Handler<Accept> for Swarm {
    type Result = Result<(), crate::SupervisorError>;

    fn handle(&mut self, Accept(name, probe): Accept, ctx: &mut Context<Self>) -> Self::Result {
        let spec = ChildSpec::once(name, move |link| {
            Ok(ChildHandle::new(Worker::spawn(
                name,
                Mode::Healthy,
                probe,
                link,
            )))
        });
        self.peers.start_spec(spec, ctx)
    }
}

/// The torrent's own work, to show it goes on while peers come and go.
#[derive(Message)]
#[rtype(result = "u32")]
struct BlockReceived;

impl Handler<BlockReceived> for Swarm {
    type Result = u32;

    fn handle(&mut self, _: BlockReceived, _: &mut Context<Self>) -> u32 {
        self.blocks += 1;
        self.blocks
    }
}

#[derive(Message)]
#[rtype(result = "Option<Addr<Worker>>")]
struct PeerAddr(&'static str);

impl Handler<PeerAddr> for Swarm {
    type Result = Option<Addr<Worker>>;

    fn handle(&mut self, msg: PeerAddr, _: &mut Context<Self>) -> Self::Result {
        self.peers.addr(&msg.0)
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Crash;

impl Handler<Crash> for Swarm {
    type Result = ();

    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("picker invariant broken");
    }
}

/// Peers: re-dial after a crash with backoff, give up on an address after 3 quick
/// restarts, never take the torrent down.
fn peer_policy() -> RestartPolicy {
    RestartPolicy::one_for_one()
        .unlimited_intensity()
        .child_budget(3, Duration::from_secs(10))
        .backoff(ms(20), ms(500), Duration::from_secs(10))
}

fn outcomes_of(outcomes: &Outcomes, id: &str) -> Vec<ExitOutcome<&'static str>> {
    let all = outcomes.lock().unwrap();
    all.iter()
        .filter(|o| match o {
            ExitOutcome::Restarting { id: i, .. }
            | ExitOutcome::Removed { id: i, .. }
            | ExitOutcome::GaveUp { id: i, .. }
            | ExitOutcome::SiblingStopped { id: i } => *i == id,
            _ => false,
        })
        .cloned()
        .collect()
}

#[actix::test]
async fn a_peer_that_cannot_connect_is_redialled_with_growing_delays_then_given_up() {
    let (probe, outcomes) = (Probe::default(), Outcomes::default());
    let swarm = Swarm::new(peer_policy(), outcomes.clone()).start();
    swarm
        .send(Dial(
            "good",
            Restart::Transient,
            Mode::Healthy,
            probe.clone(),
        ))
        .await
        .unwrap()
        .unwrap();
    swarm
        .send(Dial(
            "refusing",
            Restart::Transient,
            Mode::FailInStart,
            probe.clone(),
        ))
        .await
        .unwrap()
        .unwrap();
    eventually("refusing given up", || {
        matches!(
            outcomes_of(&outcomes, "refusing").last(),
            Some(ExitOutcome::GaveUp { .. })
        )
    })
    .await;
    let afters: Vec<Duration> = outcomes_of(&outcomes, "refusing")
        .iter()
        .filter_map(|o| match o {
            ExitOutcome::Restarting { after, .. } => Some(*after),
            _ => None,
        })
        .collect();
    assert_eq!(afters, [ms(20), ms(40), ms(80)]);
    let starts = probe.start_times("refusing");
    assert_eq!(starts.len(), 4);
    for (w, min) in starts.windows(2).zip([20, 40, 80]) {
        assert!(w[1] - w[0] >= ms(min));
    }
    // The torrent and its other peer carry on.
    assert_eq!(swarm.send(BlockReceived).await.unwrap(), 1);
    assert_eq!(probe.addr("good").send(Ping).await.unwrap(), "good");
    let stats = swarm.send(GetPeerStats).await.unwrap();
    assert_eq!(stats, vec!["good"]);
}

#[derive(Message)]
#[rtype(result = "Vec<&'static str>")]
struct GetPeerStats;

impl Handler<GetPeerStats> for Swarm {
    type Result = Vec<&'static str>;

    fn handle(&mut self, _: GetPeerStats, _: &mut Context<Self>) -> Self::Result {
        self.peers.stats().children.iter().map(|c| c.id).collect()
    }
}

#[actix::test]
async fn a_peer_that_panics_is_redialled_and_its_new_address_is_known() {
    let (probe, outcomes) = (Probe::default(), Outcomes::default());
    let swarm = Swarm::new(peer_policy(), outcomes.clone()).start();
    swarm
        .send(Dial("p", Restart::Transient, Mode::Healthy, probe.clone()))
        .await
        .unwrap()
        .unwrap();
    let first = swarm.send(PeerAddr("p")).await.unwrap().unwrap();
    first.do_send(Boom);
    eventually("p back", || probe.count("start p") == 2).await;
    match outcomes_of(&outcomes, "p").as_slice() {
        [ExitOutcome::Restarting {
            reason: ExitReason::Panic(msg),
            after,
            ..
        }] => {
            assert!(msg.contains("boom in p"), "{msg}");
            assert_eq!(*after, ms(20));
        }
        other => panic!("unexpected {other:?}"),
    }
    let second = swarm.send(PeerAddr("p")).await.unwrap().unwrap();
    assert_eq!(second.send(Ping).await.unwrap(), "p");
    assert!(first.send(Ping).await.is_err());
}

#[actix::test]
async fn a_peer_that_says_goodbye_or_an_incoming_peer_is_removed_not_redialled() {
    let (probe, outcomes) = (Probe::default(), Outcomes::default());
    let swarm = Swarm::new(peer_policy(), outcomes.clone()).start();
    swarm
        .send(Dial(
            "polite",
            Restart::Transient,
            Mode::Healthy,
            probe.clone(),
        ))
        .await
        .unwrap()
        .unwrap();
    swarm
        .send(Accept("incoming", probe.clone()))
        .await
        .unwrap()
        .unwrap();
    probe.addr("polite").do_send(Quit(None));
    probe.addr("incoming").do_send(Quit(Some("bad handshake")));
    eventually("both removed", || outcomes.lock().unwrap().len() == 2).await;
    assert!(matches!(
        outcomes_of(&outcomes, "polite").as_slice(),
        [ExitOutcome::Removed {
            reason: ExitReason::Normal,
            ..
        }]
    ));
    assert!(matches!(
        outcomes_of(&outcomes, "incoming").as_slice(),
        [ExitOutcome::Removed {
            reason: ExitReason::Error(_),
            ..
        }]
    ));
    actix_rt::time::sleep(ms(60)).await;
    assert_eq!(
        probe.count("start polite") + probe.count("start incoming"),
        2
    );
    assert!(swarm.send(GetPeerStats).await.unwrap().is_empty());
}

#[actix::test]
async fn when_the_owner_panics_its_children_are_stopped() {
    let (probe, outcomes) = (Probe::default(), Outcomes::default());
    let swarm = Swarm::new(peer_policy(), outcomes.clone()).start();
    for name in ["x", "y"] {
        swarm
            .send(Dial(name, Restart::Transient, Mode::Healthy, probe.clone()))
            .await
            .unwrap()
            .unwrap();
    }
    swarm.do_send(Crash);
    eventually("peers stopped", || {
        probe.count("stop x") + probe.count("stop y") == 2
    })
    .await;
}
