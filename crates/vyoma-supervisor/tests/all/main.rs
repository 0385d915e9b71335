//! End-to-end tests of the supervisor with real wasm32-wasip2 components from `apps/`
//! (built by `./dev apps`), in one test binary (as Wasmtime's `tests/all`): each module
//! writes app folders into a temp dir, runs them through a real `Supervisor` and `Runtime`,
//! and checks states, exit reasons, events and captured logs. Waits are for states, events
//! or log lines with generous deadlines, never fixed sleeps (the zoo alone counts ticks
//! over a window).

mod apps;
mod common;
mod deploy;
mod display;
mod hostile;
mod http;
mod ipc;
mod lifecycle;
mod update;
mod zoo;
