//! The adaptive tick of torrent and peer actors: every second while busy, slower while idle,
//! back to every second as soon as something happens. Holds the pending tick and its step.

use std::time::Duration;

use actix::prelude::*;

#[derive(Debug, Default)]
pub(crate) struct Ticker(Option<(SpawnHandle, u64)>);

impl Ticker {
    /// Runs `fire` after `delay`, as the tick of period `step` seconds. `fire` calls
    /// [`Ticker::fired`] first and arms the next tick itself.
    pub fn arm<A>(
        &mut self,
        ctx: &mut Context<A>,
        step: u64,
        delay: Duration,
        fire: impl FnOnce(&mut A, &mut Context<A>) + 'static,
    ) where
        A: Actor<Context = Context<A>>,
    {
        self.0 = Some((ctx.run_later(delay, fire), step));
    }

    /// The pending tick has fired.
    pub fn fired(&mut self) {
        self.0 = None;
    }

    /// Cancels a pending slow tick (step over 1 s); true if there was one, and the caller arms
    /// the next tick now.
    pub fn cancel_slow<A>(&mut self, ctx: &mut Context<A>) -> bool
    where
        A: Actor<Context = Context<A>>,
    {
        match self.0 {
            Some((handle, step)) if step > 1 => {
                ctx.cancel_future(handle);
                self.0 = None;
                true
            }
            _ => false,
        }
    }
}
