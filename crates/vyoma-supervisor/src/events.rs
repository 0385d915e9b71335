//! Lifecycle events: every state change of every app, in the order the supervisor applied
//! them, for tests to assert on and (through the management API) for operators to watch.

use std::time::SystemTime;

use vyoma_lifecycle::AppState;

/// One app changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// Position in this supervisor's event history, from 0; gap-free, so a subscriber that
    /// sees a gap knows it lagged.
    pub seq: u64,
    /// The app.
    pub app: String,
    /// The state it left.
    pub from: AppState,
    /// The state it entered.
    pub to: AppState,
    /// Its instance generation after the change.
    pub generation: u64,
    /// When (wall clock).
    pub at: SystemTime,
}

/// How many events a slow subscriber may fall behind before it misses some.
pub(crate) const EVENT_BACKLOG: usize = 4096;
