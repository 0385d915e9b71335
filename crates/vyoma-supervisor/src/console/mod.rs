//! The operator console, in layers: a line becomes a [`Command`] (`vyoma-control`, pure), the
//! command is carried out against the [`crate::Supervisor`] into a typed [`Reply`] or a
//! typed error ([`exec`]), the reply becomes text (`vyoma_control::render`, the one place
//! app text is made terminal-safe), and [`session`] runs the loop over a terminal, a serial
//! line or a pipe. The management API (`vyoma-api`) reuses the command and exec layers.

pub mod exec;
pub mod session;

pub use exec::execute;
pub use session::{ConsoleEnd, Input, LineReader, run, run_stdio, spawn_stdio};
pub use vyoma_control::{
    Command, DEFAULT_WAIT, HELP, MAX_LINE, Reply, UpdateOptions, UpdateSource, fmt_bytes, parse_input, printable,
    render, render_display_started, render_inspect, render_line, render_ps, terminal_safe,
};

#[cfg(test)]
mod tests;
