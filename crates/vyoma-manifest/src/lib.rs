//! The VyomaOS app manifest (`app.toml`): parsing, validation and app-set ordering.
//!
//! This crate turns manifest text into a typed [`Manifest`] and a set of manifests into an
//! [`AppSet`] with a dependency-respecting start order. Every problem is a [`Diagnostic`]
//! naming the file, line and column, with a hint on how to fix it; validation collects all
//! problems instead of stopping at the first.
//!
//! It is pure logic: it never touches Wasmtime, and the only I/O is reading a manifest file
//! ([`Manifest::load`]) and checking that the paths it names exist ([`Manifest::check_paths`]).
//! What a grant *means* at run time (building a WASI context) lives in `vyoma-runtime`.
//!
//! The format is documented in `docs/manifest.md`.

mod diagnostic;
mod http;
mod raw;
mod set;
mod validate;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use http::{
    Destination, HostPattern, HostRule, INTERNAL_SUFFIX, OutboundRule, PortRule, RESERVED_PATH_PREFIX, Route,
    RoutePattern, SchemeRule, Segment, Specificity, split_path,
};
pub use set::{AppSet, PartialSet, Rejected, app_folders};
pub use validate::{is_valid_name, parse_addr_pattern, parse_size};

/// The manifest file name inside an app folder.
pub const MANIFEST_FILE: &str = "app.toml";

/// The only manifest format version this build understands.
pub const MANIFEST_VERSION: i64 = 1;

/// Names no app may take, because the supervisor uses them itself.
pub const RESERVED_NAMES: &[&str] = &["console", "supervisor", "vyoma", "all"];

/// A validated app manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The app's name: its address for the console and IPC. Kebab-case, unique per instance.
    pub name: String,
    /// Semantic version of the app.
    pub version: semver::Version,
    /// One-line description shown by `inspect`.
    pub description: String,
    /// The component file, resolved against the manifest's folder.
    pub component: Located<PathBuf>,
    /// Arguments passed to the app after its name (`argv[0]` is the app name).
    pub args: Vec<String>,
    /// Environment variables set to literal values.
    pub env: BTreeMap<String, String>,
    /// Apps that must be running before this one starts.
    pub depends_on: Vec<Located<String>>,
    /// What happens when the app exits.
    pub restart: RestartPolicy,
    /// How long starting and stopping may take.
    pub lifecycle: Timeouts,
    /// Resource limits.
    pub limits: Limits,
    /// Everything the app may touch outside its own memory. Empty by default.
    pub capabilities: Capabilities,
    /// How the HTTP gateway serves the app, if its component is an HTTP handler.
    pub http: HttpConfig,
    /// How a new version of the app is tried before it is kept.
    pub update: UpdateConfig,
    /// How the component is built from source (`[build]`), for `vyoma build`; the
    /// supervisor never runs it.
    pub build: Option<BuildStep>,
    /// Where this manifest came from, for diagnostics.
    pub source: Source,
}

/// A value together with the byte range of the manifest text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Byte range in [`Source::text`].
    pub span: Range<usize>,
}

/// The file a manifest was read from, kept so later checks can point at lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Path of the manifest file.
    pub path: PathBuf,
    /// Its full text.
    pub text: String,
}

impl Source {
    /// The folder relative paths in the manifest are resolved against.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// A diagnostic pointing at `span` in this file.
    pub fn diagnostic(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.path, &self.text, span, message)
    }
}

/// When an app is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartMode {
    /// Never restart; the app stays `exited` or `failed`.
    Never,
    /// Restart only after a failure: a non-zero exit code, a trap, or hitting a limit.
    OnFailure,
    /// Restart after any exit, including a clean exit 0.
    Always,
}

/// Restart policy: systemd-style mode, exponential backoff, Erlang-style intensity limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// When to restart.
    pub mode: RestartMode,
    /// Delay before the first restart; doubled for each further restart within `period`.
    pub backoff: Duration,
    /// The cap on the delay.
    pub max_backoff: Duration,
    /// More than this many restarts within `period` puts the app in `failed`.
    pub intensity: u32,
    /// The window for `intensity`.
    pub period: Duration,
    /// After giving up (`failed`), try again this long later, with a fresh restart
    /// budget; `None`: `failed` until the operator starts it.
    pub retry_after: Option<Duration>,
}

/// The `[lifecycle]` settings: how long an app may take to start and to stop, and whether
/// the instance is ready only while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From instance creation to running (instantiation, including the component's start
    /// functions); past it, the start counts as a failure.
    pub start: Duration,
    /// After `stop` asks an app that listens for it (`vyoma:app/lifecycle`) to end, how
    /// long it has before it is killed.
    pub stop: Duration,
    /// Whether the instance's readiness (`/readyz`) needs this app: running, or exited
    /// with code 0 (a job that is done). On by default; off for apps whose failure should
    /// not take the device out of service.
    pub required: bool,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            start: Duration::from_secs(30),
            stop: Duration::from_secs(5),
            required: true,
        }
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            mode: RestartMode::OnFailure,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            intensity: 5,
            period: Duration::from_secs(60),
            retry_after: None,
        }
    }
}

/// Per-app resource limits, enforced by the app's own store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum total linear memory, in bytes.
    pub memory: u64,
    /// Maximum elements in any one table.
    pub table_elements: usize,
    /// Maximum core instances the component may create.
    pub instances: usize,
    /// Size of the captured stdout/stderr ring, in bytes.
    pub log_buffer: usize,
    /// Most IPC messages waiting in the app's inbox.
    pub inbox: usize,
    /// Most bytes of IPC messages waiting in the app's inbox.
    pub inbox_bytes: usize,
    /// Largest IPC message the app accepts, in bytes.
    pub message_size: usize,
    /// Most handles (open files, sockets, streams, pollables) one instance may hold at
    /// once. Every open file or socket is a file descriptor of the supervisor's, shared by
    /// all apps: this keeps one app from exhausting them.
    pub handles: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 64 << 20,
            table_elements: 100_000,
            instances: 32,
            log_buffer: 64 << 10,
            inbox: 256,
            inbox_bytes: 1 << 20,
            message_size: 64 << 10,
            handles: 1024,
        }
    }
}

/// The `[http]` table: how the gateway serves an app whose component exports
/// `wasi:http/incoming-handler`. Each request runs in a fresh instance.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// The requests the gateway sends this app. None: the app is reached only by other
    /// apps (`http://NAME.vyoma.internal`).
    pub routes: Vec<Located<Route>>,
    /// Most requests handled at once; more get `503`.
    pub max_in_flight: usize,
    /// Largest request body, in bytes; larger gets `413`.
    pub max_body: u64,
    /// From the request's arrival to the end of its response; past it the request is
    /// ended (`504` if no response was started).
    pub timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            routes: Vec::new(),
            max_in_flight: 32,
            max_body: 1 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The `[update]` table: how a new version of the app is tried (see docs/update.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateConfig {
    /// How long a new version runs in probation: if it traps, exits with a failure, does not
    /// start in time or fails its health check within it, the previous version is put back.
    /// Zero: kept as soon as it runs.
    pub probation: Duration,
    /// How the supervisor checks the new version's health during probation, if at all.
    pub health: Option<HealthCheck>,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            probation: Duration::from_secs(10),
            health: None,
        }
    }
}

/// The `[build]` table: the command that turns the app's source into its component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStep {
    /// A shell command line (run by `sh -c`), e.g. `cargo build --target wasm32-wasip2 --release`.
    pub command: Located<String>,
    /// The folder it runs in, resolved against the manifest's folder (default: that folder).
    pub workdir: PathBuf,
}

/// A health check run during probation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheck {
    /// `health = "ipc"`: once a second the supervisor sends the request `health` from
    /// `console`; the app must answer `ok` within a second.
    Ipc,
}

/// Deny-by-default grants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capabilities {
    /// Host directories made visible inside the sandbox.
    pub dirs: Vec<DirGrant>,
    /// Names of supervisor environment variables passed through when set.
    pub inherit_env: Vec<String>,
    /// A file (resolved against the manifest folder) fed to the app as stdin; `None` means
    /// stdin is empty.
    pub stdin: Option<Located<PathBuf>>,
    /// Network access; `None` means no sockets and no name lookup at all.
    pub network: Option<NetworkGrant>,
    /// Which apps this app may message and accept messages from.
    pub ipc: IpcGrant,
    /// Where the app may send HTTP requests (`wasi:http/outgoing-handler`); empty: nowhere.
    pub http_outbound: Vec<Located<OutboundRule>>,
    /// `data = true`: a private, persistent, writable folder at [`DATA_GUEST`], kept by
    /// the app store across restarts, updates, rollbacks and reboots (the supervisor adds
    /// it to `dirs` once it knows where; see [`Capabilities::data_dir`]). The span is
    /// where it was asked for.
    pub data: Option<Range<usize>>,
    /// `[capabilities] display`: the app may have a surface on the screen, at most this
    /// large; `None`: no surface.
    pub display: Option<DisplayGrant>,
    /// `[capabilities] input`: which input the display may route to the app.
    pub input: InputGrant,
}

/// A display grant: the largest surface the app may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayGrant {
    /// Most pixels wide.
    pub max_width: u32,
    /// Most pixels high.
    pub max_height: u32,
}

/// Largest side of a granted surface (a 16384 x 16384 XRGB8888 surface is 1 GiB).
pub const MAX_SURFACE_SIDE: u32 = 16_384;

/// Which input an app may receive (each needs a display grant: input goes to a surface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputGrant {
    /// Keys while the app has the focus, and focus changes.
    pub keyboard: bool,
    /// Pointer events over its surface.
    pub pointer: bool,
    /// Touch events over its surface.
    pub touch: bool,
}

/// Where the app sees its own folder (`[capabilities] data`).
pub const DATA_GUEST: &str = "/data";

impl Capabilities {
    /// The granted folder the app sees at [`DATA_GUEST`], if one is in `dirs`.
    pub fn data_dir(&self) -> Option<&DirGrant> {
        self.dirs.iter().find(|d| d.guest == DATA_GUEST)
    }
}

/// IPC grants: both sides must agree for a message to be delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpcGrant {
    /// Apps this app may send to and make requests of (`console`: the operator console).
    pub send: Peers,
    /// Apps whose messages this app accepts. The operator console is always accepted.
    pub accept: Peers,
}

/// A list of apps in a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peers {
    /// `["*"]`: every app.
    Any(Range<usize>),
    /// These apps (possibly none).
    Only(Vec<Located<String>>),
}

impl Default for Peers {
    fn default() -> Self {
        Peers::Only(Vec::new())
    }
}

impl Peers {
    /// The names listed (none for `*`).
    pub fn names(&self) -> &[Located<String>] {
        match self {
            Peers::Any(_) => &[],
            Peers::Only(v) => v,
        }
    }

    /// The names listed, as text (none for `*`).
    pub fn iter_names(&self) -> impl Iterator<Item = &str> {
        self.names().iter().map(|n| n.value.as_str())
    }
}

impl std::fmt::Display for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peers::Any(_) => f.write_str("* (every app)"),
            Peers::Only(v) if v.is_empty() => f.write_str("(none)"),
            Peers::Only(_) => f.write_str(&self.iter_names().collect::<Vec<_>>().join(", ")),
        }
    }
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// Host directory, resolved against the manifest folder.
    pub host: Located<PathBuf>,
    /// Absolute path the app sees.
    pub guest: String,
    /// Whether the app may write.
    pub writable: bool,
}

/// Network access: which addresses an app may connect to or bind, and name lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkGrant {
    /// Addresses the app may connect to (TCP) or send to (UDP).
    pub connect: Vec<AddrPattern>,
    /// Addresses the app may bind (listen on).
    pub bind: Vec<AddrPattern>,
    /// Whether the app may resolve host names.
    pub dns: bool,
}

/// `ADDR[/PREFIX]:PORT` where PORT may be `*`; IPv6 in brackets: `[::1]:80`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrPattern {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length in bits (32 or 128 for a single address).
    pub prefix: u8,
    /// Port, or `None` for any port.
    pub port: Option<u16>,
}

impl AddrPattern {
    /// Whether a socket address falls within this pattern.
    pub fn matches(&self, sa: &std::net::SocketAddr) -> bool {
        if let Some(p) = self.port
            && p != sa.port()
        {
            return false;
        }
        let ip = match (self.addr, sa.ip()) {
            // An IPv4-mapped IPv6 address is matched as the IPv4 address it carries.
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (_, ip) => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => prefix_eq(&a.octets(), &b.octets(), self.prefix),
            (IpAddr::V6(a), IpAddr::V6(b)) => prefix_eq(&a.octets(), &b.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

impl std::fmt::Display for AddrPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}")?,
            IpAddr::V6(a) => write!(f, "[{a}]")?,
        }
        if self.prefix != full {
            write!(f, "/{}", self.prefix)?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => write!(f, ":*"),
        }
    }
}

/// The manifest file `path` names: `path` itself, or the `app.toml` in it if it is a folder.
pub fn manifest_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(MANIFEST_FILE)
    } else {
        path.to_path_buf()
    }
}

impl Manifest {
    /// Parses and validates manifest text. `path` is used for diagnostics and to resolve
    /// relative paths; nothing is read from it.
    pub fn parse(text: &str, path: impl Into<PathBuf>) -> Result<Manifest, Diagnostics> {
        let source = Source {
            path: path.into(),
            text: text.to_string(),
        };
        validate::manifest(source)
    }

    /// Reads and validates the manifest at `path` (a file, or a folder holding `app.toml`).
    pub fn load(path: &Path) -> Result<Manifest, Diagnostics> {
        Manifest::load_file(&manifest_file(path))
    }

    /// Reads and validates the manifest file at `file`.
    pub fn load_file(file: &Path) -> Result<Manifest, Diagnostics> {
        match std::fs::read_to_string(file) {
            Ok(text) => Manifest::parse(&text, file),
            Err(e) => Err(Diagnostics::from(Diagnostic::file(
                file,
                format!("cannot read manifest: {e}"),
                Some("an app folder must contain an `app.toml` manifest".into()),
            ))),
        }
    }

    /// Checks that the files and folders the manifest names exist and have the right kind.
    pub fn check_paths(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let src = &self.source;
        let c = &self.component;
        if !c.value.is_file() {
            out.push(src.diagnostic(c.span.clone(), format!("component file `{}` does not exist", c.value.display()))
                .with_help("build the app for wasm32-wasip2 and point `component` at the .wasm file, relative to this manifest"));
        }
        for d in &self.capabilities.dirs {
            if !d.host.value.is_dir() {
                out.push(
                    src.diagnostic(
                        d.host.span.clone(),
                        format!("granted directory `{}` does not exist", d.host.value.display()),
                    )
                    .with_help("create the directory, or fix `host` (relative paths are resolved against this manifest's folder)"),
                );
            }
        }
        if let Some(s) = &self.capabilities.stdin
            && !s.value.is_file()
        {
            out.push(
                src.diagnostic(
                    s.span.clone(),
                    format!("stdin file `{}` does not exist", s.value.display()),
                )
                .with_help("create the file, or remove `stdin` to give the app an empty stdin"),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
