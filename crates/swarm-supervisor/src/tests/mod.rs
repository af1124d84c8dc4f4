//! Actix-level tests: real actors on a test `System`, short backoffs, and `eventually`
//! instead of fixed sleeps wherever a condition can be polled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::{ChildHandle, ChildLink, ChildSpec, ExitReason, Restart, Terminate};

mod children;
mod supervisor;

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Waits (up to 3 s) until `cond` holds.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        actix_rt::time::sleep(ms(2)).await;
    }
}

/// What the test workers did, in order ("start a", "stop a"), and their latest addresses.
#[derive(Clone, Default)]
pub(crate) struct Probe {
    events: Arc<Mutex<Vec<String>>>,
    starts: Arc<Mutex<Vec<(&'static str, Instant)>>>,
    addrs: Arc<Mutex<HashMap<&'static str, Addr<Worker>>>>,
}

impl Probe {
    fn record(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }

    pub(crate) fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    pub(crate) fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| *e == event).count()
    }

    /// When `name` was started, in order.
    pub(crate) fn start_times(&self, name: &str) -> Vec<Instant> {
        let starts = self.starts.lock().unwrap();
        starts
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .collect()
    }

    pub(crate) fn addr(&self, name: &str) -> Addr<Worker> {
        self.addrs.lock().unwrap()[name].clone()
    }
}

/// How a test worker behaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Healthy,
    /// Fails in `started()`, like a peer whose connect is refused.
    FailInStart,
    /// Ignores `Terminate`.
    Stubborn,
}

pub(crate) struct Worker {
    link: ChildLink,
    name: &'static str,
    mode: Mode,
    probe: Probe,
}

impl Worker {
    pub(crate) fn spawn(
        name: &'static str,
        mode: Mode,
        probe: Probe,
        link: ChildLink,
    ) -> Addr<Self> {
        Worker {
            link,
            name,
            mode,
            probe,
        }
        .start()
    }
}

impl Actor for Worker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.probe.record(format!("start {}", self.name));
        self.probe
            .starts
            .lock()
            .unwrap()
            .push((self.name, Instant::now()));
        self.probe
            .addrs
            .lock()
            .unwrap()
            .insert(self.name, ctx.address());
        if self.mode == Mode::FailInStart {
            self.link.fail("connection refused");
            ctx.stop();
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.probe.record(format!("stop {}", self.name));
    }
}

impl Handler<Terminate> for Worker {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        if self.mode != Mode::Stubborn {
            ctx.stop();
        }
    }
}

/// Makes the worker panic in its handler.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Boom;

impl Handler<Boom> for Worker {
    type Result = ();

    fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("boom in {}", self.name);
    }
}

/// Makes the worker stop with an error (`Some`) or normally (`None`).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Quit(pub Option<&'static str>);

impl Handler<Quit> for Worker {
    type Result = ();

    fn handle(&mut self, msg: Quit, ctx: &mut Context<Self>) {
        if let Some(error) = msg.0 {
            self.link.fail(error);
        }
        ctx.stop();
    }
}

#[derive(Message)]
#[rtype(result = "String")]
pub(crate) struct Ping;

impl Handler<Ping> for Worker {
    type Result = String;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> String {
        self.name.to_owned()
    }
}

pub(crate) fn worker(
    name: &'static str,
    restart: Restart,
    mode: Mode,
    probe: &Probe,
) -> ChildSpec<&'static str> {
    let probe = probe.clone();
    ChildSpec::new(name, restart, move |link| {
        Ok(ChildHandle::new(Worker::spawn(
            name,
            mode,
            probe.clone(),
            link,
        )))
    })
}

/// A link that stores the reason it reports, for a supervisor under test.
pub(crate) fn recording_link() -> (ChildLink, Arc<Mutex<Option<ExitReason>>>) {
    let seen = Arc::new(Mutex::new(None));
    let sink = seen.clone();
    (
        ChildLink::new(move |r| *sink.lock().unwrap() = Some(r)),
        seen,
    )
}
