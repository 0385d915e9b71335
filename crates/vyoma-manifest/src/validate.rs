//! From [`RawManifest`] to [`Manifest`]: every rule of the format, collecting all problems.

use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::raw::{
    RawBuild, RawCapabilities, RawDir, RawDisplay, RawHttp, RawIpc, RawLifecycle, RawLimits, RawManifest, RawNetwork,
    RawRestart, RawRoute, RawUpdate,
};
use crate::{
    AddrPattern, BuildStep, Capabilities, Diagnostic, Diagnostics, DirGrant, DisplayGrant, HealthCheck, HostPattern,
    HttpConfig, InputGrant, IpcGrant, Limits, Located, MANIFEST_VERSION, Manifest, NetworkGrant, OutboundRule, Peers,
    RESERVED_NAMES, RestartMode, RestartPolicy, Route, RoutePattern, Source, Timeouts, UpdateConfig,
};

/// Largest memory limit accepted: the whole 32-bit address space of a wasm32 memory.
const MAX_MEMORY: u64 = 4 << 30;
/// Bounds on the log ring, so a typo cannot make one app hold gigabytes of logs.
const MIN_LOG_BUFFER: u64 = 1 << 10;
const MAX_LOG_BUFFER: u64 = 64 << 20;
/// Bounds on an app's IPC inbox.
const MAX_INBOX: i64 = 100_000;
const MIN_INBOX_BYTES: u64 = 1 << 10;
const MAX_INBOX_BYTES: u64 = 256 << 20;
const MAX_MESSAGE_SIZE: u64 = 16 << 20;
/// Most handles one instance may hold (what Wasmtime's resource table allowed before).
const MAX_HANDLES: i64 = 16_384;
/// Longest start or stop timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Bounds on the `[http]` limits.
const MAX_IN_FLIGHT: i64 = 10_000;
const MAX_HTTP_BODY: u64 = 1 << 30;
/// Most routes one app may declare.
const MAX_ROUTES: usize = 1000;
/// The operator console's IPC address: apps may be granted sending to it.
const CONSOLE: &str = "console";

struct Ctx {
    source: Source,
    problems: Vec<Diagnostic>,
}

impl Ctx {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        let d = self.source.diagnostic(span, message).with_help(help);
        self.problems.push(d);
    }
}

pub(crate) fn manifest(source: Source) -> Result<Manifest, Diagnostics> {
    let raw: RawManifest = match toml::from_str(&source.text) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = toml_message(e.message());
            let help = if message.starts_with("unknown field") {
                "remove the key or fix its spelling; see docs/manifest.md for every key"
            } else {
                "fix the TOML syntax or the value's type; see docs/manifest.md"
            };
            return Err(source.diagnostic(span, message).with_help(help).into());
        }
    };
    let mut cx = Ctx {
        source,
        problems: Vec::new(),
    };
    let whole = 0..0;

    match &raw.manifest_version {
        None => cx.error(
            whole.clone(),
            "missing `manifest_version`",
            format!("add `manifest_version = {MANIFEST_VERSION}` at the top of the file"),
        ),
        Some(v) if *v.get_ref() != MANIFEST_VERSION => cx.error(
            v.span(),
            format!("unsupported manifest_version {}", v.get_ref()),
            format!("this VyomaOS reads manifest_version = {MANIFEST_VERSION}"),
        ),
        Some(_) => {}
    }

    let Some(app) = &raw.app else {
        cx.error(
            whole,
            "missing `[app]` table",
            "add an `[app]` table with at least `name`, `version` and `component`",
        );
        return Err(Diagnostics(cx.problems));
    };
    let app_span = app.span();
    let app = app.get_ref();

    let name = match &app.name {
        Some(n) => {
            check_name(&mut cx, n);
            n.get_ref().clone()
        }
        None => {
            cx.error(
                app_span.clone(),
                "missing `name` in `[app]`",
                "add `name = \"my-app\"` (kebab-case)",
            );
            String::new()
        }
    };

    let version = match &app.version {
        Some(v) => match semver::Version::parse(v.get_ref()) {
            Ok(ver) => ver,
            Err(e) => {
                cx.error(
                    v.span(),
                    format!("invalid version `{}`: {e}", v.get_ref()),
                    "use a semantic version such as \"1.0.0\"",
                );
                semver::Version::new(0, 0, 0)
            }
        },
        None => {
            cx.error(
                app_span.clone(),
                "missing `version` in `[app]`",
                "add `version = \"0.1.0\"`",
            );
            semver::Version::new(0, 0, 0)
        }
    };

    let component = match &app.component {
        Some(c) if c.get_ref().trim().is_empty() => {
            cx.error(
                c.span(),
                "`component` is empty",
                "name the app's .wasm file, e.g. `component = \"app.wasm\"`",
            );
            located(c, PathBuf::new())
        }
        Some(c) => located(c, resolve(cx.source.dir(), c.get_ref())),
        None => {
            cx.error(
                app_span.clone(),
                "missing `component` in `[app]`",
                "add `component = \"app.wasm\"`, the wasm32-wasip2 component, relative to this manifest",
            );
            Located {
                value: PathBuf::new(),
                span: app_span.clone(),
            }
        }
    };

    let mut depends_on: Vec<Located<String>> = Vec::new();
    for d in &app.depends_on {
        if d.get_ref() == &name {
            cx.error(
                d.span(),
                format!("app `{name}` depends on itself"),
                "remove it from `depends_on`",
            );
        } else if depends_on.iter().any(|x| &x.value == d.get_ref()) {
            cx.error(
                d.span(),
                format!("`{}` is listed twice in `depends_on`", d.get_ref()),
                "list each app once",
            );
        } else {
            depends_on.push(located(d, d.get_ref().clone()));
        }
    }

    let mut env = std::collections::BTreeMap::new();
    for (k, v) in &raw.env {
        if check_env_name(&mut cx, k) {
            env.insert(k.get_ref().clone(), v.get_ref().clone());
        }
    }

    let restart = raw.restart.as_ref().map(|r| restart(&mut cx, r)).unwrap_or_default();
    let lifecycle = raw
        .lifecycle
        .as_ref()
        .map(|l| lifecycle(&mut cx, l))
        .unwrap_or_default();
    let limits = raw.limits.as_ref().map(|l| limits(&mut cx, l)).unwrap_or_default();
    let capabilities = raw
        .capabilities
        .as_ref()
        .map(|c| capabilities(&mut cx, c))
        .unwrap_or_default();
    let http = raw.http.as_ref().map(|h| http(&mut cx, h)).unwrap_or_default();
    let update = raw.update.as_ref().map(|u| update(&mut cx, u)).unwrap_or_default();
    let build = raw.build.as_ref().and_then(|b| build(&mut cx, b));

    for d in &capabilities.inherit_env {
        if env.contains_key(d) {
            let span = raw
                .capabilities
                .as_ref()
                .and_then(|c| c.inherit_env.iter().find(|x| x.get_ref() == d))
                .map_or(0..0, |x| x.span());
            cx.error(
                span,
                format!("environment variable `{d}` is both set in `[env]` and inherited"),
                "keep one: `[env]` sets a fixed value, `inherit_env` passes the supervisor's value through",
            );
        }
    }

    if !cx.problems.is_empty() {
        cx.problems.sort_by_key(|d| (d.line, d.column));
        return Err(Diagnostics(cx.problems));
    }
    Ok(Manifest {
        name,
        version,
        description: app.description.clone(),
        component,
        args: app.args.clone(),
        env,
        depends_on,
        restart,
        lifecycle,
        limits,
        capabilities,
        http,
        update,
        build,
        source: cx.source,
    })
}

/// toml's messages can span lines and end with a period; diagnostics are one lowercase line.
fn toml_message(m: &str) -> String {
    let first = m.lines().next().unwrap_or(m).trim().trim_end_matches('.');
    let mut s = first.to_string();
    if let Some(c) = s.get(..1) {
        let lower = c.to_lowercase();
        s.replace_range(..1, &lower);
    }
    s
}

fn located<T>(s: &Spanned<impl Sized>, value: T) -> Located<T> {
    Located { value, span: s.span() }
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { dir.join(p) }
}

/// App names are addresses: `[a-z][a-z0-9-]*`, at most 63 characters, no trailing or double `-`.
pub fn is_valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !n.ends_with('-')
        && !n.contains("--")
}

fn check_name(cx: &mut Ctx, n: &Spanned<String>) {
    let v = n.get_ref();
    if !is_valid_name(v) {
        cx.error(
            n.span(),
            format!("invalid app name `{v}`"),
            "use kebab-case: lowercase letters, digits and single dashes, starting with a letter, at most 63 characters",
        );
    } else if RESERVED_NAMES.contains(&v.as_str()) {
        cx.error(
            n.span(),
            format!("app name `{v}` is reserved"),
            format!("choose another name; reserved: {}", RESERVED_NAMES.join(", ")),
        );
    }
}

fn check_env_name(cx: &mut Ctx, k: &Spanned<String>) -> bool {
    let v = k.get_ref();
    let ok = !v.is_empty()
        && !v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        cx.error(
            k.span(),
            format!("invalid environment variable name `{v}`"),
            "use letters, digits and `_`, not starting with a digit",
        );
    }
    ok
}

fn duration(cx: &mut Ctx, key: &str, s: &Spanned<String>) -> Option<Duration> {
    match humantime::parse_duration(s.get_ref()) {
        Ok(d) => Some(d),
        Err(e) => {
            cx.error(
                s.span(),
                format!("invalid duration `{}` for `{key}`: {e}", s.get_ref()),
                "write a duration such as \"250ms\", \"5s\" or \"1m\"",
            );
            None
        }
    }
}

/// A duration from 1ms to [`MAX_TIMEOUT`] (one out of range is an error, and returned).
fn timeout(cx: &mut Ctx, key: &str, s: &Spanned<String>) -> Option<Duration> {
    let d = duration(cx, key, s)?;
    if d.is_zero() || d > MAX_TIMEOUT {
        cx.error(
            s.span(),
            format!("`{key}` = \"{}\" is out of range", s.get_ref()),
            format!("use a duration from 1ms to {}", humantime::format_duration(MAX_TIMEOUT)),
        );
    }
    Some(d)
}

fn size(cx: &mut Ctx, key: &str, s: &Spanned<String>, min: u64, max: u64) -> Option<u64> {
    match s.get_ref().parse::<bytesize::ByteSize>() {
        Ok(b) if b.as_u64() < min || b.as_u64() > max => {
            cx.error(
                s.span(),
                format!("`{key}` = \"{}\" is out of range", s.get_ref()),
                format!(
                    "use a size from {} to {}",
                    bytesize::ByteSize(min).display().iec(),
                    bytesize::ByteSize(max).display().iec()
                ),
            );
            None
        }
        Ok(b) => Some(b.as_u64()),
        Err(_) => {
            cx.error(
                s.span(),
                format!("invalid size `{}` for `{key}`", s.get_ref()),
                "write a size such as \"64 MiB\" or \"512KiB\"",
            );
            None
        }
    }
}

fn count(cx: &mut Ctx, key: &str, v: &Spanned<i64>, min: i64, max: i64) -> Option<i64> {
    let n = *v.get_ref();
    if n < min || n > max {
        cx.error(
            v.span(),
            format!("`{key}` = {n} is out of range"),
            format!("use a whole number from {min} to {max}"),
        );
        None
    } else {
        Some(n)
    }
}

fn restart(cx: &mut Ctx, r: &RawRestart) -> RestartPolicy {
    let mut p = RestartPolicy::default();
    if let Some(m) = &r.policy {
        match m.get_ref().as_str() {
            "never" => p.mode = RestartMode::Never,
            "on-failure" => p.mode = RestartMode::OnFailure,
            "always" => p.mode = RestartMode::Always,
            other => cx.error(
                m.span(),
                format!("unknown restart policy `{other}`"),
                "use one of \"never\", \"on-failure\", \"always\"",
            ),
        }
    }
    if let Some(d) = r.backoff.as_ref().and_then(|s| duration(cx, "backoff", s)) {
        p.backoff = d;
    }
    if let Some(d) = r.max_backoff.as_ref().and_then(|s| duration(cx, "max_backoff", s)) {
        p.max_backoff = d;
    }
    if let Some(d) = r.period.as_ref().and_then(|s| duration(cx, "period", s)) {
        if d.is_zero() {
            cx.error(
                r.period.as_ref().map_or(0..0, |s| s.span()),
                "`period` must be longer than zero",
                "write a duration such as \"60s\"",
            );
        }
        p.period = d;
    }
    if let Some(n) = r
        .intensity
        .as_ref()
        .and_then(|v| count(cx, "intensity", v, 0, 1_000_000))
    {
        p.intensity = n as u32;
    }
    if let Some(s) = &r.retry_after
        && let Some(d) = duration(cx, "retry_after", s)
    {
        if d < Duration::from_secs(1) {
            cx.error(
                s.span(),
                format!("`retry_after` = \"{}\" is too short", s.get_ref()),
                "retrying is for outages: use at least \"1s\" (e.g. \"2m\"), or use `backoff` for quick restarts",
            );
        }
        p.retry_after = Some(d);
    }
    if p.max_backoff < p.backoff
        && let Some(s) = r.max_backoff.as_ref().or(r.backoff.as_ref())
    {
        cx.error(
            s.span(),
            format!(
                "`max_backoff` ({}) is shorter than `backoff` ({})",
                humantime::format_duration(p.max_backoff),
                humantime::format_duration(p.backoff)
            ),
            "make `max_backoff` at least as long as `backoff`",
        );
    }
    p
}

fn lifecycle(cx: &mut Ctx, l: &RawLifecycle) -> Timeouts {
    let mut out = Timeouts::default();
    if let Some(r) = l.required {
        out.required = r;
    }
    for (key, raw, slot) in [
        ("start_timeout", &l.start_timeout, &mut out.start),
        ("stop_timeout", &l.stop_timeout, &mut out.stop),
    ] {
        if let Some(d) = raw.as_ref().and_then(|s| timeout(cx, key, s)) {
            *slot = d;
        }
    }
    out
}

fn limits(cx: &mut Ctx, l: &RawLimits) -> Limits {
    let mut out = Limits::default();
    if let Some(m) = l
        .memory
        .as_ref()
        .and_then(|s| size(cx, "memory", s, 64 << 10, MAX_MEMORY))
    {
        out.memory = m;
    }
    if let Some(n) = l
        .table_elements
        .as_ref()
        .and_then(|v| count(cx, "table_elements", v, 1, 1 << 20))
    {
        out.table_elements = n as usize;
    }
    if let Some(n) = l.instances.as_ref().and_then(|v| count(cx, "instances", v, 1, 10_000)) {
        out.instances = n as usize;
    }
    if let Some(m) = l
        .log_buffer
        .as_ref()
        .and_then(|s| size(cx, "log_buffer", s, MIN_LOG_BUFFER, MAX_LOG_BUFFER))
    {
        out.log_buffer = m as usize;
    }
    if let Some(n) = l.inbox.as_ref().and_then(|v| count(cx, "inbox", v, 1, MAX_INBOX)) {
        out.inbox = n as usize;
    }
    if let Some(m) = l
        .inbox_bytes
        .as_ref()
        .and_then(|s| size(cx, "inbox_bytes", s, MIN_INBOX_BYTES, MAX_INBOX_BYTES))
    {
        out.inbox_bytes = m as usize;
    }
    if let Some(m) = l
        .message_size
        .as_ref()
        .and_then(|s| size(cx, "message_size", s, 1, MAX_MESSAGE_SIZE))
    {
        out.message_size = m as usize;
    }
    if let Some(n) = l
        .handles
        .as_ref()
        .and_then(|v| count(cx, "handles", v, 16, MAX_HANDLES))
    {
        out.handles = n as usize;
    }
    if out.message_size > out.inbox_bytes
        && let Some(s) = l.message_size.as_ref().or(l.inbox_bytes.as_ref())
    {
        cx.error(
            s.span(),
            format!(
                "`message_size` ({}) is larger than `inbox_bytes` ({}): such a message could never be queued",
                bytesize::ByteSize(out.message_size as u64).display().iec(),
                bytesize::ByteSize(out.inbox_bytes as u64).display().iec()
            ),
            "make `inbox_bytes` at least as large as `message_size`",
        );
    }
    out
}

fn capabilities(cx: &mut Ctx, c: &RawCapabilities) -> Capabilities {
    let mut out = Capabilities::default();
    for d in &c.dirs {
        if let Some(g) = dir(cx, d) {
            if out.dirs.iter().any(|x| x.guest == g.guest) {
                cx.error(
                    d.span(),
                    format!("guest path `{}` is granted twice", g.guest),
                    "give each granted directory its own guest path",
                );
            } else {
                out.dirs.push(g);
            }
        }
    }
    for e in &c.inherit_env {
        if check_env_name(cx, e) {
            out.inherit_env.push(e.get_ref().clone());
        }
    }
    if let Some(s) = &c.stdin {
        out.stdin = Some(located(s, resolve(cx.source.dir(), s.get_ref())));
    }
    if let Some(d) = c.data.as_ref().filter(|d| *d.get_ref()) {
        out.data = Some(d.span());
        if out.data_dir().is_some() {
            cx.error(
                d.span(),
                format!(
                    "`data = true` puts the app's own folder at `{}`, which `dirs` grants already",
                    crate::DATA_GUEST
                ),
                "give that granted directory another guest path, or drop `data`",
            );
        }
    }
    if let Some(n) = &c.network {
        out.network = Some(network(cx, n));
    }
    if let Some(i) = &c.ipc {
        out.ipc = ipc(cx, i);
    }
    if let Some(d) = &c.display {
        out.display = display(cx, d);
    }
    if let Some(i) = &c.input {
        out.input = input(cx, i, c.display.is_some());
    }
    for r in c.http.iter().flat_map(|h| &h.outbound) {
        match OutboundRule::parse(r.get_ref()) {
            Ok(rule) if out.http_outbound.iter().any(|x| x.value == rule) => cx.error(
                r.span(),
                format!("outbound rule `{}` is listed twice", r.get_ref()),
                "list each rule once",
            ),
            Ok(rule) => out.http_outbound.push(located(r, rule)),
            Err(why) => cx.error(
                r.span(),
                format!("invalid outbound rule `{}`: {why}", r.get_ref()),
                "write SCHEME://HOST[:PORT]: e.g. \"https://api.example.com\", \"http://10.0.0.5:8080\", \"https://*.example.com\", or \"http://counter.vyoma.internal\" for another app; see docs/http.md",
            ),
        }
    }
    out
}

/// Longest probation.
const MAX_PROBATION: Duration = Duration::from_secs(24 * 3600);

fn update(cx: &mut Ctx, u: &RawUpdate) -> UpdateConfig {
    let mut out = UpdateConfig::default();
    if let Some(p) = &u.probation
        && let Some(d) = duration(cx, "probation", p)
    {
        if d > MAX_PROBATION {
            cx.error(
                p.span(),
                format!("`probation` = \"{}\" is out of range", p.get_ref()),
                format!(
                    "use a duration up to {} (\"0s\": keep a new version as soon as it runs)",
                    humantime::format_duration(MAX_PROBATION)
                ),
            );
        }
        out.probation = d;
    }
    if let Some(h) = &u.health {
        match h.get_ref().as_str() {
            "ipc" => out.health = Some(HealthCheck::Ipc),
            other => cx.error(
                h.span(),
                format!("unknown health check `{other}`"),
                "write `health = \"ipc\"` (the app answers the request `health` with `ok`), or remove the key",
            ),
        }
    }
    out
}

fn build(cx: &mut Ctx, b: &Spanned<RawBuild>) -> Option<BuildStep> {
    let dir = cx.source.dir().to_path_buf();
    let workdir = match &b.get_ref().workdir {
        None => Some(dir),
        Some(w) if w.get_ref().is_empty() || Path::new(w.get_ref()).is_absolute() => {
            cx.error(
                w.span(),
                format!("`workdir` = \"{}\" is not a relative path", w.get_ref()),
                "name the folder the command runs in relative to this manifest, e.g. \"..\" or \"src\"",
            );
            None
        }
        Some(w) => Some(dir.join(w.get_ref())),
    };
    let command = match &b.get_ref().command {
        Some(c) if !c.get_ref().trim().is_empty() && !c.get_ref().contains('\0') => {
            Some(located(c, c.get_ref().clone()))
        }
        Some(c) => {
            cx.error(
                c.span(),
                "the build `command` is empty",
                "write the command that builds the component, e.g. \"cargo build --target wasm32-wasip2 --release\"",
            );
            None
        }
        None => {
            cx.error(
                b.span(),
                "`[build]` has no `command`",
                "add `command = \"...\"`, the shell command that builds the component, or remove `[build]`",
            );
            None
        }
    };
    Some(BuildStep {
        command: command?,
        workdir: workdir?,
    })
}

fn http(cx: &mut Ctx, h: &RawHttp) -> HttpConfig {
    let mut out = HttpConfig::default();
    if h.routes.len() > MAX_ROUTES {
        cx.error(
            h.routes[MAX_ROUTES].span(),
            format!("more than {MAX_ROUTES} routes"),
            "route a prefix (`/api/...`) and dispatch inside the app",
        );
    }
    for r in h.routes.iter().take(MAX_ROUTES) {
        if let Some(route) = route(cx, r) {
            // Diagnostics point at the route's path.
            let span = r.get_ref().path.as_ref().map_or(r.span(), |p| p.span());
            match out.routes.iter().find(|x| x.value.conflicts_with(&route)) {
                Some(first) => {
                    let line = crate::diagnostic::line_col(&cx.source.text, first.span.start).0;
                    cx.error(
                        span,
                        format!(
                            "route `{route}` matches the same requests as `{}` on line {line}",
                            first.value
                        ),
                        "remove one of them (`:name` parameters with different names match the same segments)",
                    );
                }
                None => out.routes.push(Located { value: route, span }),
            }
        }
    }
    if let Some(n) = h
        .max_in_flight
        .as_ref()
        .and_then(|v| count(cx, "max_in_flight", v, 1, MAX_IN_FLIGHT))
    {
        out.max_in_flight = n as usize;
    }
    if let Some(m) = h
        .max_body
        .as_ref()
        .and_then(|s| size(cx, "max_body", s, 0, MAX_HTTP_BODY))
    {
        out.max_body = m;
    }
    if let Some(d) = h.timeout.as_ref().and_then(|s| timeout(cx, "timeout", s)) {
        out.timeout = d;
    }
    out
}

fn route(cx: &mut Ctx, r: &Spanned<RawRoute>) -> Option<Route> {
    let raw = r.get_ref();
    let Some(path) = &raw.path else {
        cx.error(
            r.span(),
            "route has no `path`",
            "add `path = \"/hello\"` (or `/api/...` for everything under /api)",
        );
        return None;
    };
    let pattern = match RoutePattern::parse(path.get_ref()) {
        Ok(p) => p,
        Err(why) => {
            cx.error(
                path.span(),
                format!("invalid route `{}`: {why}", path.get_ref()),
                "write a path such as \"/hello\", \"/users/:id\" or \"/static/...\"; see docs/http.md",
            );
            return None;
        }
    };
    let host = match &raw.host {
        None => None,
        Some(h) => match HostPattern::parse(h.get_ref()) {
            Ok(p) => Some(p),
            Err(why) => {
                cx.error(
                    h.span(),
                    format!("invalid route host `{}`: {why}", h.get_ref()),
                    "write a host name without scheme or port, e.g. \"example.com\" or \"*.example.com\"",
                );
                return None;
            }
        },
    };
    Some(Route { path: pattern, host })
}

fn ipc(cx: &mut Ctx, i: &RawIpc) -> IpcGrant {
    IpcGrant {
        send: peers(cx, "send", &i.send, true),
        accept: peers(cx, "accept", &i.accept, false),
    }
}

/// A list of app names, or `["*"]`. `console` may be listed where `allow_console`.
fn peers(cx: &mut Ctx, key: &str, list: &[Spanned<String>], allow_console: bool) -> Peers {
    if let Some(star) = list.iter().find(|n| n.get_ref() == "*") {
        if list.len() > 1 {
            cx.error(
                star.span(),
                format!("`*` in `{key}` already covers every app"),
                format!("write `{key} = [\"*\"]` alone, or list the apps by name"),
            );
        }
        return Peers::Any(star.span());
    }
    let mut out: Vec<Located<String>> = Vec::new();
    for n in list {
        let v = n.get_ref();
        if v == CONSOLE && !allow_console {
            cx.error(
                n.span(),
                format!("`console` in `{key}` is not needed: every app accepts the operator console"),
                "remove it",
            );
        } else if v != CONSOLE && !is_valid_name(v) {
            cx.error(
                n.span(),
                format!("invalid app name `{v}` in `{key}`"),
                "list app names (kebab-case) or `\"*\"` for every app",
            );
        } else if out.iter().any(|x| &x.value == v) {
            cx.error(
                n.span(),
                format!("`{v}` is listed twice in `{key}`"),
                "list each app once",
            );
        } else {
            out.push(located(n, v.clone()));
        }
    }
    Peers::Only(out)
}

fn dir(cx: &mut Ctx, d: &Spanned<RawDir>) -> Option<DirGrant> {
    let span = d.span();
    let d = d.get_ref();
    let Some(host) = &d.host else {
        cx.error(
            span,
            "granted directory has no `host`",
            "add `host = \"data\"`, the folder on the host (relative to this manifest)",
        );
        return None;
    };
    let Some(guest) = &d.guest else {
        cx.error(
            span,
            "granted directory has no `guest`",
            "add `guest = \"/data\"`, the absolute path the app sees",
        );
        return None;
    };
    let g = guest.get_ref();
    if !g.starts_with('/') || g.split('/').any(|c| c == ".." || c == ".") {
        cx.error(
            guest.span(),
            format!("guest path `{g}` must be absolute and contain no `.` or `..`"),
            "write an absolute path such as \"/data\"",
        );
        return None;
    }
    let writable = match d.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "ro")) => false,
        Some((_, "rw")) => true,
        Some((m, other)) => {
            cx.error(
                m.span(),
                format!("unknown directory mode `{other}`"),
                "use \"ro\" (read-only, the default) or \"rw\"",
            );
            return None;
        }
    };
    let guest = if g.len() > 1 { g.trim_end_matches('/') } else { g };
    Some(DirGrant {
        host: located(host, resolve(cx.source.dir(), host.get_ref())),
        guest: guest.to_string(),
        writable,
    })
}

fn display(cx: &mut Ctx, d: &Spanned<RawDisplay>) -> Option<DisplayGrant> {
    let example = "write the largest surface the app may have as WIDTHxHEIGHT, e.g. `display = { max = \"800x480\" }`";
    let Some(max) = &d.get_ref().max else {
        cx.error(
            d.span(),
            "`display` needs `max`, the largest surface the app may have",
            example,
        );
        return None;
    };
    match parse_size(max.get_ref()) {
        Ok((w, h)) => Some(DisplayGrant {
            max_width: w,
            max_height: h,
        }),
        Err(why) => {
            cx.error(
                max.span(),
                format!("invalid display size `{}`: {why}", max.get_ref()),
                example,
            );
            None
        }
    }
}

/// Parses `WIDTHxHEIGHT`, each side 1 to [`crate::MAX_SURFACE_SIDE`].
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or("missing `x` between width and height")?;
    let side = |v: &str, which: &str| match v.trim().parse::<u32>() {
        Ok(n) if (1..=crate::MAX_SURFACE_SIDE).contains(&n) => Ok(n),
        _ => Err(format!(
            "{which} `{v}` is not a whole number from 1 to {}",
            crate::MAX_SURFACE_SIDE
        )),
    };
    Ok((side(w, "width")?, side(h, "height")?))
}

fn input(cx: &mut Ctx, i: &Spanned<Vec<Spanned<String>>>, has_display: bool) -> InputGrant {
    let mut out = InputGrant::default();
    if !has_display {
        cx.error(
            i.span(),
            "`input` without `display`: input goes to the app's surface, and it may have none",
            "add `display = { max = \"WIDTHxHEIGHT\" }` to `[capabilities]`, or drop `input`",
        );
    }
    for kind in i.get_ref() {
        let slot = match kind.get_ref().as_str() {
            "keyboard" => &mut out.keyboard,
            "pointer" => &mut out.pointer,
            "touch" => &mut out.touch,
            other => {
                cx.error(
                    kind.span(),
                    format!("unknown input kind `{other}`"),
                    "list any of \"keyboard\", \"pointer\", \"touch\"",
                );
                continue;
            }
        };
        if *slot {
            cx.error(
                kind.span(),
                format!("input kind `{}` is listed twice", kind.get_ref()),
                "list each kind once",
            );
        }
        *slot = true;
    }
    out
}

fn network(cx: &mut Ctx, n: &RawNetwork) -> NetworkGrant {
    let mut out = NetworkGrant {
        dns: n.dns,
        ..Default::default()
    };
    for (list, raw) in [(&mut out.connect, &n.connect), (&mut out.bind, &n.bind)] {
        for s in raw {
            match parse_addr_pattern(s.get_ref()) {
                Ok(p) => list.push(p),
                Err(why) => cx.error(
                    s.span(),
                    format!("invalid address pattern `{}`: {why}", s.get_ref()),
                    "write ADDR:PORT, ADDR/PREFIX:PORT or [IPV6]:PORT, with `*` for any port, e.g. \"127.0.0.1:8080\" or \"10.0.0.0/8:*\"",
                ),
            }
        }
    }
    out
}

/// Parses `ADDR[/PREFIX]:PORT` (`PORT` may be `*`); IPv6 addresses go in brackets.
pub fn parse_addr_pattern(s: &str) -> Result<AddrPattern, String> {
    let (host, port) = s.rsplit_once(':').ok_or("missing `:PORT`")?;
    let port = match port {
        "*" => None,
        p => Some(p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?),
    };
    let (addr, prefix) = match host.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (host, None),
    };
    let addr = if let Some(inner) = addr.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("unclosed `[`")?;
        IpAddr::V6(inner.parse().map_err(|_| format!("bad IPv6 address `{inner}`"))?)
    } else {
        let ip: IpAddr = addr.parse().map_err(|_| format!("bad address `{addr}`"))?;
        if ip.is_ipv6() {
            return Err("put IPv6 addresses in brackets".into());
        }
        ip
    };
    let full: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => full,
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= full => n,
            _ => return Err(format!("bad prefix length `{p}`")),
        },
    };
    Ok(AddrPattern { addr, prefix, port })
}
