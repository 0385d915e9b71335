//! Which lane an instance runs in, judged from how it uses the CPU. Pure: every time is
//! given by the caller, so the rules are tested with made-up times.
//!
//! Two lanes, the way Linux's scheduler treats sleepers and hogs: an app that wakes from
//! a timer, I/O or IPC and soon waits again is *interactive*; an app that computes for a
//! whole slice without waiting is *batch*. `sched` runs the batch lane on threads of
//! lower OS priority, so a woken interactive app never queues behind a hog's slice: the
//! kernel preempts the hog's thread for it.
//!
//! The rules:
//! - every instance starts interactive;
//! - at a preemption tick, an instance that has run a whole slice since it last waited
//!   yields, and is batch from then on;
//! - a batch instance that waits (not yields) while its recent CPU share is below
//!   [`PacePolicy::promote_below`] is interactive again. The share decays with a
//!   half-life, so a hog that pauses briefly stays batch, and a burst long past is
//!   forgiven.

use std::time::Duration;

/// Where an instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Wakes, works briefly, waits: runs on normal-priority threads.
    Interactive,
    /// Uses whole slices: runs on low-priority threads, behind every interactive app.
    Batch,
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lane::Interactive => "interactive",
            Lane::Batch => "batch",
        })
    }
}

/// The constants of the rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PacePolicy {
    /// How long an instance may run without waiting before it yields (and is batch).
    pub slice: Duration,
    /// Half-life of the recent-CPU-share estimate.
    pub half_life: Duration,
    /// A batch instance that waits with a recent CPU share (of one core) below this is
    /// interactive again.
    pub promote_below: f64,
}

impl PacePolicy {
    /// The policy for a preemption tick of `slice`: shares decay over ten slices, and an
    /// app that waits while using less than three quarters of a core counts as
    /// interactive. Not a half: each of two apps in a request/response loop uses about
    /// half a core, and they should not flap between lanes (every move costs a task spawn
    /// and a cross-thread wake-up); an app that floods or spins uses nearly all of one.
    pub fn for_slice(slice: Duration) -> PacePolicy {
        PacePolicy {
            slice,
            half_life: slice * 10,
            promote_below: 0.75,
        }
    }
}

/// One instance's lane and CPU history.
#[derive(Debug, Clone)]
pub struct Pace {
    policy: PacePolicy,
    lane: Lane,
    /// Recent CPU time in nanoseconds, decayed to `at`.
    usage: f64,
    /// When `usage` was last brought up to date (caller's time base).
    at: Duration,
}

impl Pace {
    /// A new instance: interactive, no history.
    pub fn new(policy: PacePolicy) -> Pace {
        Pace {
            policy,
            lane: Lane::Interactive,
            usage: 0.0,
            at: Duration::ZERO,
        }
    }

    /// The lane it runs in now.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// At a preemption tick while the instance runs, `ran` after its current poll began:
    /// whether it yields now. An instance that ran a whole slice without waiting yields
    /// and is batch.
    pub fn at_tick(&mut self, ran: Duration) -> bool {
        if ran < self.policy.slice {
            return false;
        }
        self.lane = Lane::Batch;
        true
    }

    /// After a poll that ended at `now` and took `spent`: `waiting` if the instance is now
    /// waiting for something (it did not yield and did not end). Returns the lane it runs
    /// in from now on.
    pub fn after_poll(&mut self, now: Duration, spent: Duration, waiting: bool) -> Lane {
        self.decay_to(now);
        self.usage += spent.as_nanos() as f64;
        if waiting && self.lane == Lane::Batch && self.share(now) < self.policy.promote_below {
            self.lane = Lane::Interactive;
        }
        self.lane
    }

    /// Its recent CPU use as a share of one core: 1.0 for an instance that never waits.
    pub fn share(&self, now: Duration) -> f64 {
        let h = self.policy.half_life.as_nanos() as f64;
        self.decayed(now) * std::f64::consts::LN_2 / h
    }

    fn decayed(&self, now: Duration) -> f64 {
        let dt = now.saturating_sub(self.at).as_nanos() as f64;
        self.usage * (-dt / self.policy.half_life.as_nanos() as f64).exp2()
    }

    fn decay_to(&mut self, now: Duration) {
        if now > self.at {
            self.usage = self.decayed(now);
            self.at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pace() -> Pace {
        Pace::new(PacePolicy::for_slice(10 * MS))
    }

    /// Runs `busy` then waits `idle`, `times` times, from `t`; returns the end time. Ticks
    /// come every 10 ms from the start of each busy stretch.
    fn cycle(p: &mut Pace, mut t: Duration, busy: Duration, idle: Duration, times: u32) -> Duration {
        for _ in 0..times {
            let end = t + busy;
            let mut poll = t;
            let mut tick = t + 10 * MS;
            while tick < end {
                if p.at_tick(tick - poll) {
                    // Yielded: the poll ends here and the next begins at once.
                    p.after_poll(tick, tick - poll, false);
                    poll = tick;
                }
                tick += 10 * MS;
            }
            p.after_poll(end, end - poll, true);
            t = end + idle;
        }
        t
    }

    #[test]
    fn an_app_that_wakes_works_briefly_and_waits_stays_interactive() {
        let mut p = pace();
        // A ticker: 1 ms of work every 100 ms, for a minute.
        cycle(&mut p, Duration::ZERO, MS, 99 * MS, 600);
        assert_eq!(p.lane(), Lane::Interactive);
        // Even 9 ms of work in one go is not a whole slice.
        let mut p = pace();
        cycle(&mut p, Duration::ZERO, 9 * MS, 20 * MS, 100);
        assert_eq!(p.lane(), Lane::Interactive);
    }

    #[test]
    fn a_busy_loop_yields_at_its_first_whole_slice_and_stays_batch() {
        let mut p = pace();
        assert!(!p.at_tick(3 * MS), "a tick early in a poll does not preempt");
        assert_eq!(p.lane(), Lane::Interactive);
        assert!(p.at_tick(10 * MS));
        assert_eq!(p.lane(), Lane::Batch);
        // It keeps running: every poll ends in a yield, never in a wait.
        let mut t = 10 * MS;
        for _ in 0..1000 {
            assert_eq!(p.after_poll(t, 10 * MS, false), Lane::Batch);
            t += 10 * MS;
            assert!(p.at_tick(10 * MS));
        }
        assert!(p.share(t) > 0.9, "{}", p.share(t));
    }

    #[test]
    fn a_hog_that_pauses_briefly_stays_batch() {
        let mut p = pace();
        // 50 ms of work, then 1 ms of waiting (e.g. an IPC flood backing off).
        cycle(&mut p, Duration::ZERO, 50 * MS, MS, 200);
        assert_eq!(p.lane(), Lane::Batch);
    }

    #[test]
    fn an_app_in_a_request_response_loop_is_interactive_again_at_its_next_wait() {
        let mut p = pace();
        // It computed flat out for a while, then starts a request/response loop.
        let t = cycle(&mut p, Duration::ZERO, 300 * MS, Duration::ZERO, 1);
        assert_eq!(p.lane(), Lane::Batch);
        // Then it works 2 µs and waits 2 µs for the answer, over and over: half a core.
        let us = Duration::from_micros(1);
        let mut t = t;
        for _ in 0..100_000 {
            p.after_poll(t + 2 * us, 2 * us, true);
            t += 4 * us;
        }
        assert_eq!(p.lane(), Lane::Interactive);
        assert!((0.4..0.6).contains(&p.share(t)), "{}", p.share(t));
    }

    #[test]
    fn a_batch_app_that_becomes_quiet_is_interactive_at_its_next_wait() {
        let mut p = pace();
        let t = cycle(&mut p, Duration::ZERO, 200 * MS, MS, 5);
        assert_eq!(p.lane(), Lane::Batch);
        // Quiet for a while (its share decays), then it wakes, works 1 ms and waits.
        let t = t + 500 * MS;
        assert!(p.share(t) < 0.5);
        assert_eq!(p.after_poll(t + MS, MS, true), Lane::Interactive);
    }

    #[test]
    fn a_wait_right_after_a_long_burst_does_not_promote() {
        let mut p = pace();
        let t = cycle(&mut p, Duration::ZERO, 300 * MS, Duration::ZERO, 1);
        assert_eq!(p.lane(), Lane::Batch);
        assert!(p.share(t) > 0.5, "{}", p.share(t));
        assert_eq!(p.after_poll(t, Duration::ZERO, true), Lane::Batch);
    }

    #[test]
    fn the_share_of_a_steady_load_converges_to_its_duty_cycle() {
        let mut p = pace();
        // 3 ms of work in every 10 ms: 30 % of a core.
        let t = cycle(&mut p, Duration::ZERO, 3 * MS, 7 * MS, 1000);
        let s = p.share(t);
        assert!((0.25..0.36).contains(&s), "{s}");
    }
}
