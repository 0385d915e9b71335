//! The per-app lifecycle state machine. The supervisor feeds it [`Event`]s and performs the
//! [`Action`]s it returns; it never does anything itself.
//!
//! Every incarnation of an app has a generation number. Events that name a generation
//! (an instance reporting it runs or exited, a backoff timer firing) are ignored when the
//! generation is stale, so a late exit from a killed instance cannot disturb its successor.

use std::fmt;
use std::time::Duration;

use vyoma_manifest::RestartPolicy;

use crate::{Decision, ExitReason, RestartTracker};

/// Where an app is in its life, as `ps` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    /// An instance is being created.
    Starting,
    /// Its instance is running.
    Running,
    /// It exited and the policy does not restart it.
    Exited,
    /// It failed and will not be restarted (policy, or restart intensity exceeded).
    Failed,
    /// The operator stopped it; only the operator starts it again.
    Stopped,
    /// Waiting out the backoff delay before a policy restart.
    Backoff,
}

impl fmt::Display for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AppState::Starting => "starting",
            AppState::Running => "running",
            AppState::Exited => "exited",
            AppState::Failed => "failed",
            AppState::Stopped => "stopped",
            AppState::Backoff => "backoff",
        })
    }
}

impl std::str::FromStr for AppState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "starting" => AppState::Starting,
            "running" => AppState::Running,
            "exited" => AppState::Exited,
            "failed" => AppState::Failed,
            "stopped" => AppState::Stopped,
            "backoff" => AppState::Backoff,
            _ => {
                return Err(format!(
                    "unknown state `{s}` (states: starting, running, exited, failed, stopped, backoff)"
                ));
            }
        })
    }
}

/// Something that happened to an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The operator (or boot) asks for the app to run.
    Start,
    /// The operator asks for a fresh instance now, whatever the state.
    Restart,
    /// The operator asks for the app to stop and stay stopped.
    Kill,
    /// Instance `generation` finished instantiating and is running.
    Running {
        /// The instance.
        generation: u64,
    },
    /// Instance `generation` ended.
    Exited {
        /// The instance.
        generation: u64,
        /// Why.
        reason: ExitReason,
    },
    /// The backoff timer set for `generation` fired.
    BackoffElapsed {
        /// The generation the timer was set for.
        generation: u64,
    },
}

/// What the supervisor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create and run instance `generation`.
    Spawn {
        /// The new instance's generation.
        generation: u64,
    },
    /// Stop the running instance now (it is being killed or replaced).
    Abort,
    /// Deliver `BackoffElapsed { generation }` after `delay`.
    ScheduleRestart {
        /// When.
        delay: Duration,
        /// The generation to name in the event.
        generation: u64,
    },
}

/// An operator request that does not fit the app's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// `start` on an app that is already starting or running.
    #[error("it is already {0}")]
    AlreadyRunning(AppState),
    /// `kill` on an app that is already stopped.
    #[error("it is already stopped")]
    AlreadyStopped,
}

/// One app's lifecycle.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    state: AppState,
    generation: u64,
    restarts: u32,
    since: Duration,
    last_exit: Option<ExitReason>,
    tracker: RestartTracker,
}

impl Lifecycle {
    /// A new app, not yet started.
    pub fn new(policy: RestartPolicy, now: Duration) -> Self {
        Lifecycle {
            state: AppState::Stopped,
            generation: 0,
            restarts: 0,
            since: now,
            last_exit: None,
            tracker: RestartTracker::new(policy),
        }
    }

    /// Current state.
    pub fn state(&self) -> AppState {
        self.state
    }

    /// The current (or last) instance's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many times the app was started again after its first start.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// When the current state was entered.
    pub fn since(&self) -> Duration {
        self.since
    }

    /// Why the last instance ended, if one did.
    pub fn last_exit(&self) -> Option<&ExitReason> {
        self.last_exit.as_ref()
    }

    /// The restart policy in force.
    pub fn policy(&self) -> &RestartPolicy {
        self.tracker.policy()
    }

    fn enter(&mut self, state: AppState, now: Duration) {
        self.state = state;
        self.since = now;
    }

    fn spawn(&mut self, now: Duration) -> Action {
        if self.generation > 0 {
            self.restarts += 1;
        }
        self.generation += 1;
        self.enter(AppState::Starting, now);
        Action::Spawn {
            generation: self.generation,
        }
    }

    /// Applies an event at time `now`, returning what to do.
    pub fn handle(&mut self, now: Duration, event: Event) -> Result<Vec<Action>, TransitionError> {
        use AppState::*;
        let live = matches!(self.state, Starting | Running);
        Ok(match event {
            Event::Start => match self.state {
                Starting | Running => return Err(TransitionError::AlreadyRunning(self.state)),
                Backoff | Exited | Failed | Stopped => {
                    self.tracker.reset();
                    vec![self.spawn(now)]
                }
            },
            Event::Restart => {
                self.tracker.reset();
                let mut actions = Vec::new();
                if live {
                    self.last_exit = Some(ExitReason::Killed);
                    actions.push(Action::Abort);
                }
                actions.push(self.spawn(now));
                actions
            }
            Event::Kill => match self.state {
                Stopped => return Err(TransitionError::AlreadyStopped),
                Starting | Running => {
                    self.last_exit = Some(ExitReason::Killed);
                    self.enter(Stopped, now);
                    vec![Action::Abort]
                }
                Backoff | Exited | Failed => {
                    // Invalidate any pending backoff timer.
                    self.generation += 1;
                    self.enter(Stopped, now);
                    vec![]
                }
            },
            Event::Running { generation } => {
                if generation == self.generation && self.state == Starting {
                    self.enter(Running, now);
                }
                vec![]
            }
            Event::Exited { generation, reason } => {
                if generation != self.generation || !live {
                    return Ok(vec![]);
                }
                let decision = self.tracker.on_exit(now, &reason);
                let failed = reason.is_failure();
                self.last_exit = Some(reason);
                match decision {
                    Decision::Restart(delay) => {
                        self.enter(Backoff, now);
                        vec![Action::ScheduleRestart {
                            delay,
                            generation: self.generation,
                        }]
                    }
                    Decision::Stay if !failed => {
                        self.enter(Exited, now);
                        vec![]
                    }
                    Decision::Stay | Decision::GiveUp => {
                        self.enter(Failed, now);
                        vec![]
                    }
                }
            }
            Event::BackoffElapsed { generation } => {
                if generation == self.generation && self.state == Backoff {
                    vec![self.spawn(now)]
                } else {
                    vec![]
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrapKind;
    use vyoma_manifest::RestartMode;

    const S: Duration = Duration::from_secs(1);

    fn lc(mode: RestartMode) -> Lifecycle {
        Lifecycle::new(
            RestartPolicy {
                mode,
                backoff: S,
                max_backoff: 4 * S,
                intensity: 2,
                period: 60 * S,
            },
            Duration::ZERO,
        )
    }

    fn trap() -> ExitReason {
        ExitReason::Trap {
            kind: TrapKind::Unreachable,
            message: "boom".into(),
        }
    }

    #[test]
    fn start_run_exit_clean() {
        let mut l = lc(RestartMode::OnFailure);
        assert_eq!(l.handle(S, Event::Start).unwrap(), [Action::Spawn { generation: 1 }]);
        assert_eq!(l.state(), AppState::Starting);
        l.handle(S, Event::Running { generation: 1 }).unwrap();
        assert_eq!((l.state(), l.since()), (AppState::Running, S));
        l.handle(
            2 * S,
            Event::Exited {
                generation: 1,
                reason: ExitReason::Code(0),
            },
        )
        .unwrap();
        assert_eq!(l.state(), AppState::Exited);
        assert_eq!(l.last_exit(), Some(&ExitReason::Code(0)));
        assert_eq!(l.restarts(), 0);
    }

    #[test]
    fn failure_backs_off_then_restarts_then_gives_up() {
        let mut l = lc(RestartMode::OnFailure);
        l.handle(Duration::ZERO, Event::Start).unwrap();
        let a = l
            .handle(
                S,
                Event::Exited {
                    generation: 1,
                    reason: trap(),
                },
            )
            .unwrap();
        assert_eq!(
            a,
            [Action::ScheduleRestart {
                delay: S,
                generation: 1
            }]
        );
        assert_eq!(l.state(), AppState::Backoff);
        assert_eq!(
            l.handle(2 * S, Event::BackoffElapsed { generation: 1 }).unwrap(),
            [Action::Spawn { generation: 2 }]
        );
        assert_eq!(l.restarts(), 1);
        let a = l
            .handle(
                3 * S,
                Event::Exited {
                    generation: 2,
                    reason: trap(),
                },
            )
            .unwrap();
        assert_eq!(
            a,
            [Action::ScheduleRestart {
                delay: 2 * S,
                generation: 2
            }]
        );
        l.handle(5 * S, Event::BackoffElapsed { generation: 2 }).unwrap();
        // Third failure within the period: intensity 2 exceeded.
        assert!(
            l.handle(
                6 * S,
                Event::Exited {
                    generation: 3,
                    reason: trap()
                }
            )
            .unwrap()
            .is_empty()
        );
        assert_eq!(l.state(), AppState::Failed);
        assert_eq!(l.last_exit(), Some(&trap()));
    }

    #[test]
    fn kill_is_never_undone_by_the_policy() {
        let mut l = lc(RestartMode::Always);
        l.handle(Duration::ZERO, Event::Start).unwrap();
        l.handle(Duration::ZERO, Event::Running { generation: 1 }).unwrap();
        assert_eq!(l.handle(S, Event::Kill).unwrap(), [Action::Abort]);
        assert_eq!(l.state(), AppState::Stopped);
        // The aborted instance reports its end late: ignored.
        assert!(
            l.handle(
                S,
                Event::Exited {
                    generation: 1,
                    reason: ExitReason::Killed
                }
            )
            .unwrap()
            .is_empty()
        );
        assert_eq!(l.state(), AppState::Stopped);
        assert_eq!(l.last_exit(), Some(&ExitReason::Killed));
        assert_eq!(l.handle(S, Event::Kill), Err(TransitionError::AlreadyStopped));
    }

    #[test]
    fn kill_during_backoff_cancels_the_pending_restart() {
        let mut l = lc(RestartMode::Always);
        l.handle(Duration::ZERO, Event::Start).unwrap();
        l.handle(
            S,
            Event::Exited {
                generation: 1,
                reason: trap(),
            },
        )
        .unwrap();
        assert!(l.handle(S, Event::Kill).unwrap().is_empty());
        assert!(
            l.handle(2 * S, Event::BackoffElapsed { generation: 1 })
                .unwrap()
                .is_empty()
        );
        assert_eq!(l.state(), AppState::Stopped);
    }

    #[test]
    fn restart_replaces_a_live_instance_and_resets_intensity() {
        let mut l = lc(RestartMode::OnFailure);
        l.handle(Duration::ZERO, Event::Start).unwrap();
        l.handle(
            S,
            Event::Exited {
                generation: 1,
                reason: trap(),
            },
        )
        .unwrap();
        l.handle(2 * S, Event::BackoffElapsed { generation: 1 }).unwrap();
        l.handle(2 * S, Event::Running { generation: 2 }).unwrap();
        assert_eq!(
            l.handle(3 * S, Event::Restart).unwrap(),
            [Action::Abort, Action::Spawn { generation: 3 }]
        );
        // The old instance's exit is stale.
        assert!(
            l.handle(
                3 * S,
                Event::Exited {
                    generation: 2,
                    reason: ExitReason::Killed
                }
            )
            .unwrap()
            .is_empty()
        );
        assert_eq!(l.state(), AppState::Starting);
        // Intensity was reset: two more failures are still restarted.
        for g in 3..5 {
            let a = l
                .handle(
                    4 * S,
                    Event::Exited {
                        generation: g,
                        reason: trap(),
                    },
                )
                .unwrap();
            assert!(
                matches!(a[..], [Action::ScheduleRestart { .. }]),
                "generation {g}: {a:?}"
            );
            l.handle(5 * S, Event::BackoffElapsed { generation: g }).unwrap();
        }
    }

    #[test]
    fn start_rejected_while_live_but_allowed_from_failed_and_backoff() {
        let mut l = lc(RestartMode::Never);
        l.handle(Duration::ZERO, Event::Start).unwrap();
        assert_eq!(
            l.handle(S, Event::Start),
            Err(TransitionError::AlreadyRunning(AppState::Starting))
        );
        l.handle(
            S,
            Event::Exited {
                generation: 1,
                reason: ExitReason::Code(4),
            },
        )
        .unwrap();
        assert_eq!(l.state(), AppState::Failed);
        assert_eq!(l.handle(S, Event::Start).unwrap(), [Action::Spawn { generation: 2 }]);
        let mut b = lc(RestartMode::Always);
        b.handle(Duration::ZERO, Event::Start).unwrap();
        b.handle(
            S,
            Event::Exited {
                generation: 1,
                reason: ExitReason::Code(0),
            },
        )
        .unwrap();
        assert_eq!(b.state(), AppState::Backoff);
        assert_eq!(b.handle(S, Event::Start).unwrap(), [Action::Spawn { generation: 2 }]);
        // The old timer is now stale.
        assert!(
            b.handle(2 * S, Event::BackoffElapsed { generation: 1 })
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn state_names_round_trip() {
        for s in ["starting", "running", "exited", "failed", "stopped", "backoff"] {
            assert_eq!(s.parse::<AppState>().unwrap().to_string(), s);
        }
        assert!("sleeping".parse::<AppState>().is_err());
    }
}
