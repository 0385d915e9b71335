//! The operator's language, shared by every front end: the console on a terminal or serial
//! line, the management API and the remote `vyoma` client.
//!
//! What it is for: [`Command`] (a console line parsed into a typed command, with one-line
//! errors), [`Reply`] (what a command produced, typed; its JSON shape is the API's),
//! [`render`] (replies as the text the console prints; the one place app-controlled text
//! is made safe for a terminal) and [`http`] (the management API's requests as pure data:
//! an HTTP request routed to a command, and a command turned into the request the client
//! sends). Pure (no supervisor, no sockets), so all of it is unit-tested and the parsers are
//! fuzzed on their own.
//!
//! What it is not for: carrying commands out (`vyoma-supervisor`'s `console::execute`),
//! serving or sending HTTP (`vyoma-api`).

mod command;
mod display;
pub mod http;
pub mod render;
mod reply;
mod update;

pub use command::{Command, DEFAULT_WAIT, HELP, MAX_LINE};
pub use display::{
    DisplayApp, DisplayReport, INPUT_USAGE, ScreenshotReport, WireInput, parse_input, render_display,
    render_display_started,
};
pub use render::{
    backquoted, fmt_bytes, printable, render, render_inspect, render_line, render_message, render_ps, terminal_safe,
};
pub use reply::{
    AppReport, AppStatus, CapabilitiesReport, ComponentReport, ComponentSource, DirReport, HttpStatus, Lane,
    LimitsReport, LogUsage, NetworkReport, Reply, RestartReport, StopOutcome,
};
pub use update::{
    DeployReport, RejectedVersion, RemoveReport, RollbackReport, SwapReport, UpdateOptions, UpdateReport, UpdateSource,
    VersionBrief, VersionRow, VersionStatus, VersionsReport,
};
