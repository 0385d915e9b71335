//! The per-app lifecycle state machine. The supervisor feeds it [`Event`]s and performs the
//! [`Action`]s it returns; it never does anything itself.
//!
//! Every incarnation of an app has a generation number. Events that name a generation
//! (an instance reporting it runs or exited, a timer firing) are ignored when the
//! generation is stale, so a late exit from a killed instance cannot disturb its successor.
//!
//! Time limits are timers the machine asks for ([`Action::After`]): a start that does not
//! reach `running` in time fails ([`ExitReason::StartTimeout`]), a graceful stop that does
//! not end in time is killed, and an app that gave up (`failed`) is tried again after its
//! `retry_after`, if it has one.

use std::fmt;
use std::time::Duration;

use vyoma_manifest::{RestartPolicy, Timeouts};

use crate::{Decision, ExitReason, RestartTracker};

/// Where an app is in its life, as `ps` shows it (in JSON, the same lowercase word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppState {
    /// An instance is being created.
    Starting,
    /// Its instance is running.
    Running,
    /// Its instance was asked to end and has its grace period to do so.
    Stopping,
    /// It exited and the policy does not restart it.
    Exited,
    /// It failed and will not be restarted (policy, or restart intensity exceeded), or
    /// only after its `retry_after`.
    Failed,
    /// The operator stopped it; only the operator starts it again.
    Stopped,
    /// Waiting out the backoff delay before a policy restart.
    Backoff,
}

impl AppState {
    /// Every state, in declaration order (`state as usize` indexes this).
    pub const ALL: [AppState; 7] = [
        AppState::Starting,
        AppState::Running,
        AppState::Stopping,
        AppState::Exited,
        AppState::Failed,
        AppState::Stopped,
        AppState::Backoff,
    ];

    /// Whether an instance exists (it may be asked to stop, or killed).
    pub fn is_live(self) -> bool {
        matches!(self, AppState::Starting | AppState::Running | AppState::Stopping)
    }
}

impl fmt::Display for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AppState::Starting => "starting",
            AppState::Running => "running",
            AppState::Stopping => "stopping",
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
        AppState::ALL.into_iter().find(|a| a.to_string() == s).ok_or_else(|| {
            format!("unknown state `{s}` (states: starting, running, stopping, exited, failed, stopped, backoff)")
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
    /// A new version of the app replaces the current one (an update or a rollback): like
    /// [`Event::Restart`], except that the old instance's end is not an exit of the app,
    /// and the new version's restart policy and timeouts apply from now on.
    Replace {
        /// The new version's restart policy.
        policy: RestartPolicy,
        /// The new version's timeouts.
        timeouts: Timeouts,
    },
    /// The operator asks for the app to stop now and stay stopped.
    Kill,
    /// The operator (or shutdown) asks for the app to end and stay stopped. With
    /// `graceful` (the app listens for stop requests), it is asked and gets its stop
    /// timeout; without, it is killed at once.
    Stop {
        /// Whether to ask first.
        graceful: bool,
    },
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
    /// The backoff (or retry) timer set for `generation` fired.
    BackoffElapsed {
        /// The generation the timer was set for.
        generation: u64,
    },
    /// Instance `generation` was still starting when its start timeout ran out.
    StartTimedOut {
        /// The instance.
        generation: u64,
    },
    /// Instance `generation` was still stopping when its stop timeout ran out.
    StopTimedOut {
        /// The instance.
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
    /// Stop the live instance now (it is being killed or replaced).
    Abort,
    /// Ask the live instance `generation` to end (`vyoma:app/lifecycle`).
    RequestStop {
        /// The instance.
        generation: u64,
    },
    /// Feed `event` back after `delay` (a backoff, retry, start or stop timer).
    After {
        /// When.
        delay: Duration,
        /// What to deliver then.
        event: Event,
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
    /// `stop` on an app that is already stopping.
    #[error("it is already stopping; `kill` stops it now")]
    AlreadyStopping,
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
    timeouts: Timeouts,
}

impl Lifecycle {
    /// A new app, not yet started.
    pub fn new(policy: RestartPolicy, timeouts: Timeouts, now: Duration) -> Self {
        Lifecycle {
            state: AppState::Stopped,
            generation: 0,
            restarts: 0,
            since: now,
            last_exit: None,
            tracker: RestartTracker::new(policy),
            timeouts,
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

    /// Policy restarts within the restart period (the count its `intensity` limits).
    pub fn recent_restarts(&self) -> u32 {
        self.tracker.recent()
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

    /// The start and stop timeouts in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Another version's restart policy and timeouts apply from now on, without a new
    /// instance (a version swapped in while the app is stopped).
    pub fn reconfigure(&mut self, policy: RestartPolicy, timeouts: Timeouts) {
        self.tracker = RestartTracker::new(policy);
        self.timeouts = timeouts;
    }

    fn enter(&mut self, state: AppState, now: Duration) {
        self.state = state;
        self.since = now;
    }

    /// A new instance, and its start timer.
    fn spawn(&mut self, now: Duration) -> [Action; 2] {
        if self.generation > 0 {
            self.restarts += 1;
        }
        self.generation += 1;
        self.enter(AppState::Starting, now);
        [
            Action::Spawn {
                generation: self.generation,
            },
            Action::After {
                delay: self.timeouts.start,
                event: Event::StartTimedOut {
                    generation: self.generation,
                },
            },
        ]
    }

    /// The live instance ends by the operator's hand: it stays stopped.
    fn kill_live(&mut self, now: Duration) -> Vec<Action> {
        self.last_exit = Some(ExitReason::Killed);
        self.enter(AppState::Stopped, now);
        vec![Action::Abort]
    }

    /// What follows the end of the live instance, by the restart policy.
    fn ended(&mut self, now: Duration, reason: ExitReason) -> Vec<Action> {
        let decision = self.tracker.on_exit(now, &reason);
        let failed = reason.is_failure();
        self.last_exit = Some(reason);
        match decision {
            Decision::Restart(delay) => {
                self.enter(AppState::Backoff, now);
                vec![Action::After {
                    delay,
                    event: Event::BackoffElapsed {
                        generation: self.generation,
                    },
                }]
            }
            Decision::Stay if !failed => {
                self.enter(AppState::Exited, now);
                vec![]
            }
            Decision::Stay | Decision::GiveUp => {
                self.enter(AppState::Failed, now);
                match self.tracker.policy().retry_after {
                    Some(delay) => vec![Action::After {
                        delay,
                        event: Event::BackoffElapsed {
                            generation: self.generation,
                        },
                    }],
                    None => vec![],
                }
            }
        }
    }

    /// Applies an event at time `now`, returning what to do.
    pub fn handle(&mut self, now: Duration, event: Event) -> Result<Vec<Action>, TransitionError> {
        use AppState::*;
        let live = self.state.is_live();
        Ok(match event {
            Event::Start => match self.state {
                Starting | Running | Stopping => return Err(TransitionError::AlreadyRunning(self.state)),
                Backoff | Exited | Failed | Stopped => {
                    self.tracker.reset();
                    self.spawn(now).to_vec()
                }
            },
            Event::Restart => {
                self.tracker.reset();
                let mut actions = Vec::new();
                if live {
                    self.last_exit = Some(ExitReason::Killed);
                    actions.push(Action::Abort);
                }
                actions.extend(self.spawn(now));
                actions
            }
            Event::Replace { policy, timeouts } => {
                self.tracker = RestartTracker::new(policy);
                self.timeouts = timeouts;
                let mut actions = Vec::new();
                if live {
                    actions.push(Action::Abort);
                }
                actions.extend(self.spawn(now));
                actions
            }
            Event::Kill | Event::Stop { graceful: false } => match self.state {
                Stopped => return Err(TransitionError::AlreadyStopped),
                Starting | Running | Stopping => self.kill_live(now),
                Backoff | Exited | Failed => {
                    // Invalidate any pending backoff or retry timer.
                    self.generation += 1;
                    self.enter(Stopped, now);
                    vec![]
                }
            },
            Event::Stop { graceful: true } => match self.state {
                Stopped => return Err(TransitionError::AlreadyStopped),
                Stopping => return Err(TransitionError::AlreadyStopping),
                Starting | Running => {
                    self.enter(Stopping, now);
                    vec![
                        Action::RequestStop {
                            generation: self.generation,
                        },
                        Action::After {
                            delay: self.timeouts.stop,
                            event: Event::StopTimedOut {
                                generation: self.generation,
                            },
                        },
                    ]
                }
                Backoff | Exited | Failed => {
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
                if self.state == Stopping {
                    // It ended as asked: stopped, whatever the policy says.
                    self.last_exit = Some(reason);
                    self.enter(Stopped, now);
                    return Ok(vec![]);
                }
                self.ended(now, reason)
            }
            Event::BackoffElapsed { generation } => {
                let retry = self.state == Failed && self.tracker.policy().retry_after.is_some();
                if generation == self.generation && (self.state == Backoff || retry) {
                    if retry {
                        self.tracker.reset();
                    }
                    self.spawn(now).to_vec()
                } else {
                    vec![]
                }
            }
            Event::StartTimedOut { generation } => {
                if generation != self.generation || self.state != Starting {
                    return Ok(vec![]);
                }
                let mut actions = vec![Action::Abort];
                actions.extend(self.ended(
                    now,
                    ExitReason::StartTimeout {
                        after: self.timeouts.start,
                    },
                ));
                actions
            }
            Event::StopTimedOut { generation } => {
                if generation != self.generation || self.state != Stopping {
                    return Ok(vec![]);
                }
                let actions = self.kill_live(now);
                self.last_exit = Some(ExitReason::StopTimeout {
                    after: self.timeouts.stop,
                });
                actions
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrapKind;
    use vyoma_manifest::RestartMode;

    #[test]
    fn a_replaced_version_runs_under_its_own_policy_and_timeouts() {
        let mut l = lc(RestartMode::Never);
        l.handle(Duration::ZERO, Event::Start).unwrap();
        l.handle(Duration::ZERO, Event::Running { generation: 1 }).unwrap();
        let policy = RestartPolicy {
            mode: RestartMode::Always,
            ..*l.policy()
        };
        let timeouts = Timeouts {
            start: 7 * S,
            ..*l.timeouts()
        };
        let actions = l.handle(S, Event::Replace { policy, timeouts }).unwrap();
        assert_eq!(
            actions,
            [
                Action::Abort,
                Action::Spawn { generation: 2 },
                Action::After {
                    delay: 7 * S,
                    event: Event::StartTimedOut { generation: 2 }
                }
            ]
        );
        // The old instance's end is not an exit of the app.
        assert_eq!(l.last_exit(), None);
        assert_eq!(l.policy().mode, RestartMode::Always);
        l.handle(S, Event::Running { generation: 2 }).unwrap();
        // The new policy restarts a clean exit.
        l.handle(
            2 * S,
            Event::Exited {
                generation: 2,
                reason: ExitReason::Code(0),
            },
        )
        .unwrap();
        assert_eq!(l.state(), AppState::Backoff);
        // From a state with no instance, a replacement just starts the new version.
        let mut l = lc(RestartMode::Never);
        assert_eq!(
            l.handle(S, Event::Replace { policy, timeouts }).unwrap()[0],
            Action::Spawn { generation: 1 }
        );
    }

    const S: Duration = Duration::from_secs(1);

    fn lc(mode: RestartMode) -> Lifecycle {
        Lifecycle::new(
            RestartPolicy {
                mode,
                backoff: S,
                max_backoff: 4 * S,
                intensity: 2,
                period: 60 * S,
                retry_after: None,
            },
            Timeouts {
                start: 10 * S,
                stop: 3 * S,
                required: true,
            },
            Duration::ZERO,
        )
    }

    /// A spawn and its start timer.
    fn spawned(generation: u64) -> Vec<Action> {
        vec![
            Action::Spawn { generation },
            Action::After {
                delay: 10 * S,
                event: Event::StartTimedOut { generation },
            },
        ]
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
        assert_eq!(l.handle(S, Event::Start).unwrap(), spawned(1));
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
            [Action::After {
                delay: S,
                event: Event::BackoffElapsed { generation: 1 }
            }]
        );
        assert_eq!(l.state(), AppState::Backoff);
        assert_eq!(
            l.handle(2 * S, Event::BackoffElapsed { generation: 1 }).unwrap(),
            spawned(2)
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
            [Action::After {
                delay: 2 * S,
                event: Event::BackoffElapsed { generation: 2 }
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
            [vec![Action::Abort], spawned(3)].concat()
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
                matches!(
                    a[..],
                    [Action::After {
                        event: Event::BackoffElapsed { .. },
                        ..
                    }]
                ),
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
        assert_eq!(l.handle(S, Event::Start).unwrap(), spawned(2));
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
        assert_eq!(b.handle(S, Event::Start).unwrap(), spawned(2));
        // The old timer is now stale.
        assert!(
            b.handle(2 * S, Event::BackoffElapsed { generation: 1 })
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn state_names_round_trip() {
        for s in [
            "starting", "running", "stopping", "exited", "failed", "stopped", "backoff",
        ] {
            assert_eq!(s.parse::<AppState>().unwrap().to_string(), s);
        }
        assert!("sleeping".parse::<AppState>().is_err());
    }

    fn running(l: &mut Lifecycle) {
        l.handle(Duration::ZERO, Event::Start).unwrap();
        l.handle(
            Duration::ZERO,
            Event::Running {
                generation: l.generation(),
            },
        )
        .unwrap();
    }

    #[test]
    fn a_graceful_stop_asks_then_waits_for_the_exit() {
        let mut l = lc(RestartMode::Always);
        running(&mut l);
        assert_eq!(
            l.handle(S, Event::Stop { graceful: true }).unwrap(),
            [
                Action::RequestStop { generation: 1 },
                Action::After {
                    delay: 3 * S,
                    event: Event::StopTimedOut { generation: 1 }
                }
            ]
        );
        assert_eq!(l.state(), AppState::Stopping);
        assert_eq!(
            l.handle(S, Event::Stop { graceful: true }),
            Err(TransitionError::AlreadyStopping)
        );
        // It ends by itself with exit 0: stopped, and `always` does not restart it.
        let a = l
            .handle(
                2 * S,
                Event::Exited {
                    generation: 1,
                    reason: ExitReason::Code(0),
                },
            )
            .unwrap();
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(l.state(), AppState::Stopped);
        assert_eq!(l.last_exit(), Some(&ExitReason::Code(0)));
        // The timer fires late: stale.
        assert!(
            l.handle(4 * S, Event::StopTimedOut { generation: 1 })
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_stop_that_runs_out_of_time_is_a_kill() {
        let mut l = lc(RestartMode::OnFailure);
        running(&mut l);
        l.handle(S, Event::Stop { graceful: true }).unwrap();
        assert_eq!(
            l.handle(4 * S, Event::StopTimedOut { generation: 1 }).unwrap(),
            [Action::Abort]
        );
        assert_eq!(l.state(), AppState::Stopped);
        assert_eq!(l.last_exit(), Some(&ExitReason::StopTimeout { after: 3 * S }));
        // An app that does not listen is killed at once; so is one already stopping.
        let mut k = lc(RestartMode::OnFailure);
        running(&mut k);
        assert_eq!(k.handle(S, Event::Stop { graceful: false }).unwrap(), [Action::Abort]);
        let mut m = lc(RestartMode::OnFailure);
        running(&mut m);
        m.handle(S, Event::Stop { graceful: true }).unwrap();
        assert_eq!(m.handle(S, Event::Kill).unwrap(), [Action::Abort]);
        assert_eq!(m.state(), AppState::Stopped);
    }

    #[test]
    fn a_start_that_hangs_fails_by_the_policy() {
        let mut l = lc(RestartMode::OnFailure);
        l.handle(Duration::ZERO, Event::Start).unwrap();
        let a = l.handle(10 * S, Event::StartTimedOut { generation: 1 }).unwrap();
        assert_eq!(
            a,
            [
                Action::Abort,
                Action::After {
                    delay: S,
                    event: Event::BackoffElapsed { generation: 1 }
                }
            ]
        );
        assert_eq!(l.last_exit(), Some(&ExitReason::StartTimeout { after: 10 * S }));
        assert!(l.last_exit().unwrap().is_failure());
        // A timer for an instance that did start is stale.
        l.handle(11 * S, Event::BackoffElapsed { generation: 1 }).unwrap();
        l.handle(11 * S, Event::Running { generation: 2 }).unwrap();
        assert!(
            l.handle(21 * S, Event::StartTimedOut { generation: 2 })
                .unwrap()
                .is_empty()
        );
        assert_eq!(l.state(), AppState::Running);
    }

    #[test]
    fn failed_is_retried_after_its_cool_down_with_a_fresh_budget() {
        let mut l = Lifecycle::new(
            RestartPolicy {
                mode: RestartMode::OnFailure,
                backoff: S,
                max_backoff: S,
                intensity: 0,
                period: 60 * S,
                retry_after: Some(120 * S),
            },
            Timeouts::default(),
            Duration::ZERO,
        );
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
        assert_eq!(l.state(), AppState::Failed);
        assert_eq!(
            a,
            [Action::After {
                delay: 120 * S,
                event: Event::BackoffElapsed { generation: 1 }
            }]
        );
        let a = l.handle(121 * S, Event::BackoffElapsed { generation: 1 }).unwrap();
        assert!(matches!(a[0], Action::Spawn { generation: 2 }), "{a:?}");
        // Killed while failed: the retry timer is void.
        let mut k = l.clone();
        k.handle(
            122 * S,
            Event::Exited {
                generation: 2,
                reason: trap(),
            },
        )
        .unwrap();
        k.handle(123 * S, Event::Kill).unwrap();
        assert!(
            k.handle(242 * S, Event::BackoffElapsed { generation: 2 })
                .unwrap()
                .is_empty()
        );
        assert_eq!(k.state(), AppState::Stopped);
        // Without `retry_after`, failed stays failed.
        let mut n = lc(RestartMode::Never);
        n.handle(Duration::ZERO, Event::Start).unwrap();
        assert!(
            n.handle(
                S,
                Event::Exited {
                    generation: 1,
                    reason: trap()
                }
            )
            .unwrap()
            .is_empty()
        );
        assert!(
            n.handle(500 * S, Event::BackoffElapsed { generation: 1 })
                .unwrap()
                .is_empty()
        );
        assert_eq!(n.state(), AppState::Failed);
    }
}
