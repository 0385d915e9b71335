//! Time for the lifecycle: a monotonic clock behind a trait, so tests can substitute one.

use std::time::{Duration, Instant};

/// A source of monotonic time, as a duration since some fixed origin.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> Duration;
}

/// The real monotonic clock.
#[derive(Debug)]
pub struct RealClock(Instant);

impl Default for RealClock {
    fn default() -> Self {
        RealClock(Instant::now())
    }
}

impl Clock for RealClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}
