//! Pure lifecycle logic for VyomaOS apps: what state an app is in, why it exited, whether
//! and when to restart it, and its captured output.
//!
//! Everything here is deterministic and free of I/O, threads and real clocks: time is a
//! [`Duration`](std::time::Duration) since an arbitrary origin supplied by the caller, so
//! tests drive it with a fake clock. The supervisor (`vyoma-supervisor`) owns the real
//! clock, the tasks and the timers, and performs the [`Action`]s this crate asks for.
//!
//! Not here: Wasmtime (the runtime maps traps into [`ExitReason`]), scheduling, printing.

mod exit;
mod log;
mod machine;
mod policy;
pub mod wire;

pub use exit::{ExitReason, TrapKind};
pub use log::{LogLine, LogRing, Stream};
pub use machine::{Action, AppState, Event, Lifecycle, TransitionError};
pub use policy::{Decision, RestartTracker};
