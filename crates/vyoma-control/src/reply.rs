//! What a command produces: typed [`Reply`] values, the same for every front end. The
//! console renders them as text ([`crate::render`]); the management API sends them as JSON
//! (the shapes are documented in `docs/api.md` and snapshot-tested), and the remote `vyoma`
//! client reads that JSON back into these types and renders it with the same code, so a
//! remote `ps` prints exactly what the local console prints.
//!
//! In JSON, durations are whole milliseconds in fields named `..._ms`, times RFC 3339
//! strings, sizes bytes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vyoma_ipc::Counters;
use vyoma_lifecycle::{AppState, ExitReason, LogLine, wire};
use vyoma_manifest::{Manifest, RestartMode};

/// What a command produced. In JSON, an object with one key naming the reply
/// (`{"apps": [...]}`, `{"started": "ticker"}`), or a bare string for the replies that
/// carry nothing (`"shut_down"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Nothing to report (a blank line or comment).
    Nothing,
    /// The command list.
    Help,
    /// One row per app.
    #[serde(rename = "apps")]
    Ps(Vec<AppStatus>),
    /// An app's held log lines (the newest, if a count was given).
    Log {
        /// The app.
        app: String,
        /// The lines, oldest first.
        lines: Vec<LogLine>,
    },
    /// Follow an app's log: the front end streams it (for `duration`, or until stopped).
    Follow {
        /// The app.
        app: String,
        /// How long.
        #[serde(rename = "duration_ms", with = "wire::opt_millis")]
        duration: Option<Duration>,
    },
    /// The app is starting.
    Started(String),
    /// `stop`: what happened.
    Stopping {
        /// The app.
        app: String,
        /// Asked (with its timeout), or stopped at once.
        #[serde(flatten)]
        outcome: StopOutcome,
    },
    /// The app was stopped and stays stopped.
    Killed(String),
    /// The app is restarting.
    Restarting(String),
    /// Everything known about an app.
    Inspect(Box<AppReport>),
    /// The app (or `all`) reached the state.
    Reached {
        /// The app, or `all`.
        app: String,
        /// The state.
        state: AppState,
    },
    /// The message was queued for the app.
    Sent {
        /// The receiver.
        to: String,
    },
    /// The app answered a message (sent with a reply wait).
    Answered {
        /// The app that answered.
        from: String,
        /// Its answer (invalid UTF-8 replaced).
        text: String,
    },
    /// The message was delivered, and the app did not answer within the wait.
    Unanswered {
        /// The receiver.
        to: String,
        /// How long the sender waited.
        #[serde(rename = "waited_ms", with = "wire::millis")]
        waited: Duration,
    },
    /// Every app was stopped; the supervisor is shutting down.
    ShutDown,
    /// A new version of the app runs, in probation (or would, for a dry run).
    Updated(Box<crate::UpdateReport>),
    /// The app runs its previous version again.
    RolledBack(Box<crate::RollbackReport>),
    /// The app's kept versions.
    Versions(Box<crate::VersionsReport>),
    /// A new app runs, in probation (or would, for a dry run).
    Deployed(Box<crate::DeployReport>),
    /// The app is gone.
    Removed(Box<crate::RemoveReport>),
    /// `display`: the screen, its layout and focus, every app on it.
    Display(Box<crate::DisplayReport>),
    /// The layout is now this.
    Layout(String),
    /// The app has the keyboard focus.
    Focused(String),
    /// A screenshot was written.
    Screenshot(Box<crate::ScreenshotReport>),
    /// Input events were given to the display (`app` none: routed as from a device).
    Injected {
        /// The app, if they went to one.
        app: Option<String>,
        /// How many events.
        events: usize,
    },
}

/// What `stop` did. In JSON, flattened into the reply: `"outcome": "asked", "timeout_ms":
/// 5000` or `"outcome": "stopped"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StopOutcome {
    /// The app listens for stop requests: it was asked, and is killed if it has not ended
    /// within `timeout`.
    Asked {
        /// Its stop timeout.
        #[serde(rename = "timeout_ms", with = "wire::millis")]
        timeout: Duration,
    },
    /// It is stopped now (it was killed, or had no instance).
    Stopped,
}

/// A row of `ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    /// App name.
    pub name: String,
    /// Lifecycle state.
    pub state: AppState,
    /// Restarts since boot.
    pub restarts: u32,
    /// Time in the running state, when running.
    #[serde(rename = "uptime_ms", with = "wire::opt_millis")]
    pub uptime: Option<Duration>,
    /// Linear memory in use, in bytes, when an instance exists.
    pub memory: Option<u64>,
    /// CPU time its instances have used since boot: time spent running them (guest code
    /// and the host calls it makes), measured around every poll of their futures.
    #[serde(rename = "cpu_ms", with = "wire::millis")]
    pub cpu: Duration,
    /// Why the last instance ended.
    pub last_exit: Option<ExitReason>,
    /// IPC counters: sent, received, refused, queued.
    pub ipc: Counters,
    /// Request counts, for an app the HTTP gateway serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpStatus>,
}

/// An HTTP app's request counts since the supervisor started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpStatus {
    /// Requests handed to the app.
    pub requests: u64,
    /// Of those, how many ended in a server error (a trap, a timeout, a 5xx answer).
    pub errors: u64,
    /// Requests refused before reaching it: too large, over its limit in flight, or while
    /// it was not running.
    pub rejected: u64,
    /// Requests running now.
    pub in_flight: u64,
}

/// The CPU lane an instance runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Wakes, works briefly, waits: normal-priority threads.
    Interactive,
    /// Runs whole slices: behind every interactive app.
    Batch,
}

/// How full an app's log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogUsage {
    /// Lines dropped (oldest first) to stay within the capacity.
    pub dropped: u64,
    /// Bytes held now.
    pub held: u64,
    /// The capacity in bytes.
    pub capacity: u64,
}

/// Where an app's loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentSource {
    /// A verified precompiled artifact in the compile cache.
    CompileCache,
    /// Compiled at load.
    Compiled,
    /// Precompiled into the image.
    Image,
}

/// The component an app runs, once loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentReport {
    /// The file.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Where the machine code came from.
    pub source: ComponentSource,
    /// The file is a WASI preview-1 command module, run as a component through the
    /// preview-1 adapter (`adapted: true` in JSON; absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adapted: bool,
    /// Imported interfaces.
    pub imports: Vec<String>,
    /// Exported interfaces.
    pub exports: Vec<String>,
}

/// Restart policy and lifecycle settings, as the manifest set them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartReport {
    /// `never`, `on-failure` or `always`.
    pub mode: String,
    /// First backoff.
    #[serde(rename = "backoff_ms", with = "wire::millis")]
    pub backoff: Duration,
    /// Backoff doubles up to this.
    #[serde(rename = "max_backoff_ms", with = "wire::millis")]
    pub max_backoff: Duration,
    /// More restarts than this within `period` give up.
    pub intensity: u32,
    /// The intensity window.
    #[serde(rename = "period_ms", with = "wire::millis")]
    pub period: Duration,
    /// When failed, retry after this long.
    #[serde(rename = "retry_after_ms", with = "wire::opt_millis")]
    pub retry_after: Option<Duration>,
    /// Start within this long.
    #[serde(rename = "start_timeout_ms", with = "wire::millis")]
    pub start_timeout: Duration,
    /// Stop within this long of being asked.
    #[serde(rename = "stop_timeout_ms", with = "wire::millis")]
    pub stop_timeout: Duration,
    /// Whether the instance is ready only while this app runs (or has exited with 0).
    pub required: bool,
}

/// Resource limits, as the manifest set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsReport {
    /// Linear memory, bytes.
    pub memory: u64,
    /// Resource handles.
    pub handles: u64,
    /// Table elements.
    pub table_elements: u64,
    /// Core instances.
    pub instances: u64,
    /// Inbox: messages.
    pub inbox: u64,
    /// Inbox: bytes.
    pub inbox_bytes: u64,
    /// Largest message accepted, bytes.
    pub message_size: u64,
}

/// A folder granted to the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirReport {
    /// Path inside the app.
    pub guest: String,
    /// Folder on the host.
    pub host: String,
    /// Read-write (else read-only).
    pub writable: bool,
}

/// The network grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkReport {
    /// Addresses it may connect to.
    pub connect: Vec<String>,
    /// Addresses it may bind.
    pub bind: Vec<String>,
    /// Whether it may resolve names.
    pub dns: bool,
}

/// Everything the app may touch outside its own memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesReport {
    /// Folders.
    pub dirs: Vec<DirReport>,
    /// Host environment variables passed through.
    pub inherit_env: Vec<String>,
    /// The file read as stdin.
    pub stdin: Option<String>,
    /// Sockets, if granted.
    pub network: Option<NetworkReport>,
    /// Apps it may send to (`*`, names, or `(none)`).
    pub ipc_send: String,
    /// Apps it accepts messages from.
    pub ipc_accept: String,
    /// Where it may send HTTP requests (outbound rules as written).
    #[serde(default)]
    pub http_outbound: Vec<String>,
    /// The routes the gateway sends it, as written (`HOST/PATH` when a host is named).
    #[serde(default)]
    pub http_routes: Vec<String>,
}

/// Everything `inspect` shows of one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppReport {
    /// Its `ps` row.
    pub status: AppStatus,
    /// Its version.
    pub version: String,
    /// Its one-line description.
    pub description: String,
    /// The manifest file.
    pub manifest: String,
    /// The component file named by the manifest.
    pub component_file: String,
    /// The loaded component, if it was loaded.
    pub component: Option<ComponentReport>,
    /// The instance generation.
    pub generation: u64,
    /// Arguments after the app's name.
    pub args: Vec<String>,
    /// Environment set by the manifest.
    pub env: BTreeMap<String, String>,
    /// Apps that must run first.
    pub depends_on: Vec<String>,
    /// Restart policy and lifecycle timeouts.
    pub restart: RestartReport,
    /// Resource limits.
    pub limits: LimitsReport,
    /// How full its log is.
    pub log: LogUsage,
    /// The CPU lane its live instance runs in, if it has one.
    pub lane: Option<Lane>,
    /// Its grants.
    pub capabilities: CapabilitiesReport,
}

impl AppReport {
    /// The report for an app with manifest `m`; the live parts are passed in.
    pub fn new(
        m: &Manifest,
        status: AppStatus,
        component: Option<ComponentReport>,
        generation: u64,
        log: LogUsage,
        lane: Option<Lane>,
    ) -> AppReport {
        let r = &m.restart;
        let l = &m.limits;
        let c = &m.capabilities;
        let list = |v: &[vyoma_manifest::AddrPattern]| v.iter().map(|p| p.to_string()).collect();
        AppReport {
            status,
            version: m.version.to_string(),
            description: m.description.clone(),
            manifest: m.source.path.display().to_string(),
            component_file: m.component.value.display().to_string(),
            component,
            generation,
            args: m.args.clone(),
            env: m.env.clone(),
            depends_on: m.depends_on.iter().map(|d| d.value.clone()).collect(),
            restart: RestartReport {
                mode: match r.mode {
                    RestartMode::Never => "never",
                    RestartMode::OnFailure => "on-failure",
                    RestartMode::Always => "always",
                }
                .into(),
                backoff: r.backoff,
                max_backoff: r.max_backoff,
                intensity: r.intensity,
                period: r.period,
                retry_after: r.retry_after,
                start_timeout: m.lifecycle.start,
                stop_timeout: m.lifecycle.stop,
                required: m.lifecycle.required,
            },
            limits: LimitsReport {
                memory: l.memory,
                handles: l.handles as u64,
                table_elements: l.table_elements as u64,
                instances: l.instances as u64,
                inbox: l.inbox as u64,
                inbox_bytes: l.inbox_bytes as u64,
                message_size: l.message_size as u64,
            },
            log,
            lane,
            capabilities: CapabilitiesReport {
                dirs: c
                    .dirs
                    .iter()
                    .map(|g| DirReport {
                        guest: g.guest.clone(),
                        host: g.host.value.display().to_string(),
                        writable: g.writable,
                    })
                    .collect(),
                inherit_env: c.inherit_env.clone(),
                stdin: c.stdin.as_ref().map(|p| p.value.display().to_string()),
                network: c.network.as_ref().map(|n| NetworkReport {
                    connect: list(&n.connect),
                    bind: list(&n.bind),
                    dns: n.dns,
                }),
                ipc_send: c.ipc.send.to_string(),
                ipc_accept: c.ipc.accept.to_string(),
                http_outbound: c.http_outbound.iter().map(|r| r.value.to_string()).collect(),
                http_routes: m.http.routes.iter().map(|r| r.value.to_string()).collect(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
