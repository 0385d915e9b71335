//! The operator console, in layers: a line becomes a [`Command`] (`vyoma-control`, pure), the
//! command is carried out against the [`crate::Supervisor`] into a typed [`Reply`] or a
//! typed error ([`exec`]), the reply becomes text ([`render`], the one place app text is
//! made terminal-safe), and [`session`] runs the loop over a terminal, a serial line or a
//! pipe. Other front ends (the management API) reuse the command and exec layers.

pub mod exec;
pub mod render;
pub mod session;

pub use exec::{Reply, execute};
pub use render::{fmt_bytes, printable, render, render_inspect, render_ps, terminal_safe};
pub use session::{ConsoleEnd, Input, LineReader, run, run_stdio, spawn_stdio};
pub use vyoma_control::{Command, DEFAULT_WAIT, HELP, MAX_LINE};

#[cfg(test)]
mod tests;
