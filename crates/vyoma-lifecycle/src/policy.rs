//! The restart policy: systemd-style mode, exponential backoff with a cap, and an
//! Erlang-style intensity limit (more than `intensity` restarts within `period` gives up).

use std::collections::VecDeque;
use std::time::Duration;

use vyoma_manifest::{RestartMode, RestartPolicy};

use crate::ExitReason;

/// What to do after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Restart after this delay.
    Restart(Duration),
    /// Do not restart: the policy does not ask for it.
    Stay,
    /// Do not restart: too many restarts within the period.
    GiveUp,
}

/// Applies a [`RestartPolicy`] over time. Holds the times of recent policy restarts.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    policy: RestartPolicy,
    recent: VecDeque<Duration>,
}

impl RestartTracker {
    /// A tracker with no history.
    pub fn new(policy: RestartPolicy) -> Self {
        RestartTracker {
            policy,
            recent: VecDeque::new(),
        }
    }

    /// The policy applied.
    pub fn policy(&self) -> &RestartPolicy {
        &self.policy
    }

    /// Policy restarts within the period, as of the last exit.
    pub fn recent(&self) -> u32 {
        u32::try_from(self.recent.len()).unwrap_or(u32::MAX)
    }

    /// Forgets the restart history, as an operator `start` or `restart` does.
    pub fn reset(&mut self) {
        self.recent.clear();
    }

    /// Decides what follows an exit at time `now`. A `Restart` is recorded in the history.
    pub fn on_exit(&mut self, now: Duration, reason: &ExitReason) -> Decision {
        let wanted = match (self.policy.mode, reason) {
            (_, ExitReason::Killed | ExitReason::StopTimeout { .. }) => false,
            (RestartMode::Never, _) => false,
            (RestartMode::Always, _) => true,
            (RestartMode::OnFailure, r) => r.is_failure(),
        };
        if !wanted {
            return Decision::Stay;
        }
        while let Some(&t) = self.recent.front() {
            if now.saturating_sub(t) >= self.policy.period {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= self.policy.intensity as usize {
            return Decision::GiveUp;
        }
        let doublings = self.recent.len().min(32) as u32;
        let delay = self
            .policy
            .backoff
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.policy.max_backoff)
            .min(self.policy.max_backoff);
        self.recent.push_back(now);
        Decision::Restart(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrapKind;

    const MS: Duration = Duration::from_millis(1);

    fn policy(mode: RestartMode) -> RestartPolicy {
        RestartPolicy {
            retry_after: None,
            mode,
            backoff: 100 * MS,
            max_backoff: 1000 * MS,
            intensity: 5,
            period: Duration::from_secs(10),
        }
    }

    fn trap() -> ExitReason {
        ExitReason::Trap {
            kind: TrapKind::Unreachable,
            message: String::new(),
        }
    }

    #[test]
    fn mode_table() {
        let clean = ExitReason::Code(0);
        let cases = [
            (RestartMode::Never, clean.clone(), Decision::Stay),
            (RestartMode::Never, trap(), Decision::Stay),
            (RestartMode::OnFailure, clean.clone(), Decision::Stay),
            (RestartMode::OnFailure, ExitReason::Code(2), Decision::Restart(100 * MS)),
            (RestartMode::OnFailure, trap(), Decision::Restart(100 * MS)),
            (
                RestartMode::OnFailure,
                ExitReason::MemoryLimit { limit: 1, requested: 2 },
                Decision::Restart(100 * MS),
            ),
            (
                RestartMode::OnFailure,
                ExitReason::Error("x".into()),
                Decision::Restart(100 * MS),
            ),
            (RestartMode::Always, clean, Decision::Restart(100 * MS)),
            (RestartMode::Always, ExitReason::Killed, Decision::Stay),
            (RestartMode::OnFailure, ExitReason::Killed, Decision::Stay),
        ];
        for (mode, reason, want) in cases {
            let mut t = RestartTracker::new(policy(mode));
            assert_eq!(t.on_exit(Duration::ZERO, &reason), want, "{mode:?} after {reason}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut p = policy(RestartMode::Always);
        p.intensity = 100;
        p.period = Duration::from_secs(3600);
        let mut t = RestartTracker::new(p);
        let delays: Vec<Decision> = (0..6).map(|i| t.on_exit(i * MS, &trap())).collect();
        let want: Vec<Decision> = [100, 200, 400, 800, 1000, 1000]
            .iter()
            .map(|&d| Decision::Restart(d * MS))
            .collect();
        assert_eq!(delays, want);
    }

    #[test]
    fn more_than_intensity_restarts_in_period_gives_up() {
        let mut t = RestartTracker::new(policy(RestartMode::OnFailure));
        for i in 0..5 {
            assert!(matches!(
                t.on_exit(Duration::from_secs(i), &trap()),
                Decision::Restart(_)
            ));
        }
        // Sixth restart within 10 s: more than 5.
        assert_eq!(t.on_exit(Duration::from_millis(5500), &trap()), Decision::GiveUp);
    }

    #[test]
    fn restarts_older_than_period_are_forgotten_and_backoff_resets() {
        let mut t = RestartTracker::new(policy(RestartMode::OnFailure));
        for i in 0..5 {
            t.on_exit(Duration::from_secs(i), &trap());
        }
        // At t=12s the restarts at 0, 1 and 2 s are older than the 10 s period.
        assert_eq!(t.on_exit(Duration::from_secs(12), &trap()), Decision::Restart(400 * MS));
        // Long after, the history is empty and the delay is back to the base.
        assert_eq!(
            t.on_exit(Duration::from_secs(100), &trap()),
            Decision::Restart(100 * MS)
        );
    }

    #[test]
    fn reset_forgets_history() {
        let mut t = RestartTracker::new(policy(RestartMode::OnFailure));
        for i in 0..5 {
            t.on_exit(Duration::from_secs(i), &trap());
        }
        t.reset();
        assert_eq!(t.on_exit(Duration::from_secs(5), &trap()), Decision::Restart(100 * MS));
    }

    #[test]
    fn zero_intensity_never_restarts() {
        let mut p = policy(RestartMode::Always);
        p.intensity = 0;
        let mut t = RestartTracker::new(p);
        assert_eq!(t.on_exit(Duration::ZERO, &trap()), Decision::GiveUp);
    }

    #[test]
    fn huge_backoff_saturates_at_cap() {
        let mut p = policy(RestartMode::Always);
        p.backoff = Duration::from_secs(u64::MAX / 4);
        p.max_backoff = Duration::from_secs(u64::MAX / 2);
        p.intensity = 40;
        let mut t = RestartTracker::new(p);
        for i in 0..40 {
            assert!(matches!(t.on_exit(i * MS, &trap()), Decision::Restart(d) if d <= p.max_backoff));
        }
    }
}
