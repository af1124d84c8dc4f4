//! Transfer rates: bytes counted as they move, folded into a smoothed per-second figure once a
//! second by the owner's timer.

#[derive(Clone, Copy, Debug, Default)]
pub struct Rate {
    window: u64,
    smoothed: f64,
}

impl Rate {
    pub fn add(&mut self, bytes: u64) {
        self.window += bytes;
    }

    /// Call once per second.
    pub fn tick(&mut self) {
        // Exponential smoothing over ~3 s: quick enough for the request pipeline, steady enough
        // for choking.
        self.smoothed = self.smoothed * 0.6 + self.window as f64 * 0.4;
        self.window = 0;
    }

    pub fn per_second(&self) -> u64 {
        self.smoothed as u64
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn converges_to_steady_rate() {
        let mut r = super::Rate::default();
        for _ in 0..20 {
            r.add(1000);
            r.tick();
        }
        assert!((990..=1000).contains(&r.per_second()));
    }
}
