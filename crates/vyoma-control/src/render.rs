//! Text for the operator: every typed [`Reply`] rendered as the console prints it, and the
//! one place app-controlled text is made safe for a terminal ([`terminal_safe`]).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use vyoma_lifecycle::LogLine;

use crate::{
    AppReport, AppStatus, ComponentSource, DeployReport, HELP, Lane, RemoveReport, Reply, RollbackReport, StopOutcome,
    SwapReport, UpdateReport, VersionBrief, VersionStatus, VersionsReport,
};

/// Text for a terminal: every control character but newline and tab is written as an
/// escape (`\u{1b}`), so nothing an app wrote (log lines, IPC bodies, names and frames in
/// exit reasons, manifest text quoted in errors) can move the cursor, clear the screen,
/// retitle the window or write the clipboard (OSC 52). VyomaOS's own output has no control
/// sequences, so the console passes everything it writes through this, once, at the edge.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    // C0, DEL and C1 controls (C1 includes the 8-bit CSI, U+009B), plus the bidirectional
    // overrides that can make text read differently from what it is.
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Bytes as one line of text: invalid UTF-8 replaced, newlines and every other control
/// character escaped (an IPC body printed as `[from APP] TEXT`).
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    terminal_safe(&text).replace('\n', "\\n")
}

/// The text the console prints for `reply`.
pub fn render(reply: &Reply) -> String {
    match reply {
        Reply::Nothing => String::new(),
        Reply::Help => format!("{HELP}\n"),
        Reply::Ps(rows) => render_ps(rows),
        Reply::Log { app, lines } => {
            if lines.is_empty() {
                return format!("({app} has written nothing yet)\n");
            }
            let mut s = String::new();
            for l in lines {
                render_line(&mut s, l);
            }
            s
        }
        Reply::Follow { .. } => String::new(),
        Reply::Started(app) => format!("{app}: starting\n"),
        Reply::Stopping {
            app,
            outcome: StopOutcome::Asked { timeout },
        } => format!(
            "{app}: asked to stop (killed if still running in {})\n",
            humantime::format_duration(*timeout)
        ),
        Reply::Stopping { app, .. } | Reply::Killed(app) => format!("{app}: stopped\n"),
        Reply::Restarting(app) => format!("{app}: restarting\n"),
        Reply::Inspect(d) => render_inspect(d),
        Reply::Reached { app, state } => format!("{app}: {state}\n"),
        Reply::Sent { to } => format!("sent to {to}\n"),
        Reply::Answered { from, text } => {
            let mut s = String::new();
            render_message(&mut s, from, text.as_bytes());
            s
        }
        Reply::Unanswered { to, waited } => format!(
            "sent to {to}; no answer within {}\n",
            humantime::format_duration(*waited)
        ),
        Reply::ShutDown => "all apps stopped; shutting down\n".to_string(),
        Reply::Updated(r) => render_updated(r),
        Reply::RolledBack(r) => render_rolled_back(r),
        Reply::Versions(r) => render_versions(r),
        Reply::Deployed(r) => render_deployed(r),
        Reply::Removed(r) => render_removed(r),
        Reply::Display(r) => crate::display::render_display(r),
        Reply::Layout(l) => format!("layout {}\n", terminal_safe(l)),
        Reply::Focused(app) => format!("{app}: focused\n"),
        Reply::Screenshot(r) => format!(
            "{} ({}x{}, {}) written to {}\n",
            r.app
                .as_deref()
                .map_or("the screen".to_string(), |a| format!("{a}'s surface")),
            r.width,
            r.height,
            fmt_bytes(r.bytes),
            terminal_safe(&r.path)
        ),
        Reply::Injected { app, events } => format!(
            "{events} input event(s) {}\n",
            app.as_deref()
                .map_or("routed by the display".to_string(), |a| format!("given to {a}"))
        ),
    }
}

/// `0.2.0 (version 4, 1a2b3c4d5e6f)`: a version as the console names it; `unstored` says
/// what one not in the store is (the factory version, or a new one in a dry run).
fn brief(v: &VersionBrief, unstored: &str) -> String {
    let short = v.component.get(..12).unwrap_or(&v.component);
    match v.id {
        Some(id) => format!("{} (version {id}, {short})", v.version),
        None => format!("{} ({unstored}, {short})", v.version),
    }
}

fn fmt_micros(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn render_swap(s: &mut String, swap: &SwapReport) {
    let _ = write!(
        s,
        "  swapped in {} (the old instance finished its message in {})",
        fmt_micros(swap.total),
        fmt_micros(swap.handover)
    );
    if swap.unfinished_from.is_empty() {
        s.push_str("; no message lost\n");
    } else {
        let _ = writeln!(
            s,
            "; it was still handling what it took from {} when stopped: that was not handed over",
            backquoted(&swap.unfinished_from)
        );
    }
}

fn render_updated(r: &UpdateReport) -> String {
    let mut s = String::new();
    let probation = if r.probation.is_zero() {
        "kept as soon as it runs".to_string()
    } else {
        format!("on probation for {}", humantime::format_duration(r.probation))
    };
    let verb = if r.dry_run { "would update" } else { "updated" };
    let _ = writeln!(
        s,
        "{}: {verb} {} -> {}, {probation}",
        r.app,
        brief(&r.from, "factory"),
        brief(&r.to, "new")
    );
    for c in &r.changes {
        let _ = writeln!(s, "  {c}");
    }
    for f in &r.forced {
        let _ = writeln!(s, "  forced: {f}");
    }
    if let Some(swap) = &r.swap {
        render_swap(&mut s, swap);
    }
    if r.dry_run {
        s.push_str("  (dry run: nothing changed)\n");
    }
    s
}

fn render_rolled_back(r: &RollbackReport) -> String {
    let Some(to) = &r.to else {
        return format!(
            "{}: turned down {}: {}\n  it was deployed with that version, so there is none to go back to: it is stopped and not kept (deploy a fixed version, or `remove {}`)\n",
            r.app,
            brief(&r.from, "new"),
            r.reason,
            r.app
        );
    };
    let mut s = format!(
        "{}: rolled back from {} to {}: {}\n",
        r.app,
        brief(&r.from, "factory"),
        brief(to, "factory"),
        r.reason
    );
    if let Some(swap) = &r.swap {
        render_swap(&mut s, swap);
    }
    s
}

fn render_deployed(r: &DeployReport) -> String {
    let probation = if r.probation.is_zero() {
        "kept as soon as it runs".to_string()
    } else {
        format!("on probation for {}", humantime::format_duration(r.probation))
    };
    let verb = if r.dry_run { "would deploy" } else { "deployed" };
    let mut s = format!("{}: {verb} {}, {probation}\n", r.app, brief(&r.version, "new"));
    if !r.depends_on.is_empty() {
        let _ = writeln!(s, "  starts after {}", r.depends_on.join(", "));
    }
    if let Some(what) = &r.replaces {
        let _ = writeln!(s, "  replaces {what}");
    }
    if let Some(d) = &r.data {
        let _ = writeln!(s, "  its data folder (/data): {d}");
    }
    if r.dry_run {
        s.push_str("  (dry run: nothing changed)\n");
    }
    s
}

fn render_removed(r: &RemoveReport) -> String {
    let mut s = format!("{}: removed", r.app);
    if r.dropped_messages > 0 || r.unanswered > 0 {
        let _ = write!(
            s,
            "; {} waiting message(s) dropped, {} request(s) unanswered (their senders were told)",
            r.dropped_messages, r.unanswered
        );
    }
    s.push('\n');
    if !r.persistent {
        s.push_str("  this instance keeps no app store: it comes back at the next start\n");
    } else if r.factory {
        s.push_str("  it is one of the instance's own apps: it stays removed until it is deployed again or the factory set changes\n");
    }
    match (r.purged, &r.kept_data) {
        (Some(bytes), _) => {
            let _ = writeln!(s, "  its data folder was deleted ({})", fmt_bytes(bytes));
        }
        (None, Some(d)) => {
            let _ = writeln!(
                s,
                "  its data folder is kept for a later deploy: {d} (`remove --purge` deletes it)"
            );
        }
        (None, None) => {}
    }
    s
}

fn render_versions(r: &VersionsReport) -> String {
    let mut s = format!(
        "{:<4} {:<12} {:<8} {:<8} {:>10}  {:<20} {}\n",
        "ID", "VERSION", "STATUS", "ORIGIN", "SIZE", "ADDED", "COMPONENT"
    );
    for v in &r.versions {
        let status = match v.status {
            VersionStatus::Current => "current",
            VersionStatus::Trial => "trial",
            VersionStatus::Previous => "previous",
        };
        let added = v
            .added
            .map_or_else(|| "-".to_string(), |t| humantime::format_rfc3339_seconds(t).to_string());
        let _ = writeln!(
            s,
            "{:<4} {:<12} {:<8} {:<8} {:>10}  {:<20} {}",
            v.id.map_or_else(|| "-".to_string(), |i| i.to_string()),
            v.version,
            status,
            v.origin,
            fmt_bytes(v.size),
            added,
            v.component.get(..12).unwrap_or(&v.component)
        );
    }
    if let Some(j) = &r.rejected {
        let _ = writeln!(
            s,
            "last turned down: version {} ({}) at {}: {}",
            j.id,
            j.version,
            humantime::format_rfc3339_seconds(j.at),
            j.reason
        );
    }
    s
}

/// One log line: timestamp, stream, text.
pub fn render_line(s: &mut String, l: &LogLine) {
    let _ = writeln!(s, "{} {} {}", humantime::format_rfc3339_millis(l.at), l.stream, l.text);
}

/// `[from APP] TEXT`: a message (or answer) an app sent to the console.
pub fn render_message(s: &mut String, sender: &str, body: &[u8]) {
    let _ = writeln!(s, "[from {sender}] {}", printable(body));
}

/// App names in backquotes, comma-separated: `` `a`, `b` ``.
pub fn backquoted<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Formats bytes in binary units, compactly.
pub fn fmt_bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

pub fn fmt_uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{}.{}s", s, d.subsec_millis() / 100),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d{:02}h", s / 86400, (s / 3600) % 24),
    }
}

/// The `ps` table.
pub fn render_ps(rows: &[AppStatus]) -> String {
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    // HTTP columns only when some app is served by the gateway.
    let http = rows.iter().any(|r| r.http.is_some());
    let mut s = format!(
        "{:<name_w$}  {:<8}  {:>8}  {:>8}  {:>8}  {:>7}  {:>6}  {:>6}  {:>7}  {:>6}  ",
        "NAME", "STATE", "RESTARTS", "UPTIME", "MEMORY", "CPU", "SENT", "RECV", "REFUSED", "QUEUED"
    );
    if http {
        let _ = write!(
            s,
            "{:>8}  {:>6}  {:>8}  {:>8}  ",
            "REQUESTS", "ERRORS", "REJECTED", "INFLIGHT"
        );
    }
    s.push_str("LAST EXIT\n");
    for r in rows {
        let uptime = r.uptime.map(fmt_uptime).unwrap_or_else(|| "-".into());
        let mem = r.memory.map(fmt_bytes).unwrap_or_else(|| "-".into());
        let exit = r
            .last_exit
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".into());
        let i = &r.ipc;
        let _ = write!(
            s,
            "{:<name_w$}  {:<8}  {:>8}  {:>8}  {:>8}  {:>7}  {:>6}  {:>6}  {:>7}  {:>6}  ",
            r.name,
            r.state.to_string(),
            r.restarts,
            uptime,
            mem,
            fmt_cpu(r.cpu),
            i.sent,
            i.received,
            i.refused,
            i.queued,
        );
        if http {
            match &r.http {
                Some(h) => {
                    let _ = write!(
                        s,
                        "{:>8}  {:>6}  {:>8}  {:>8}  ",
                        h.requests, h.errors, h.rejected, h.in_flight
                    );
                }
                None => {
                    let _ = write!(s, "{:>8}  {:>6}  {:>8}  {:>8}  ", "-", "-", "-", "-");
                }
            }
        }
        let _ = writeln!(s, "{exit}");
    }
    s
}

/// CPU time, compactly: `0ms`, `850ms`, `12.3s`, `4m05s`, `2h07m`.
pub fn fmt_cpu(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{}.{}s", d.as_secs(), d.subsec_millis() / 100)
    } else {
        fmt_uptime(d)
    }
}

/// The `inspect` report.
pub fn render_inspect(d: &AppReport) -> String {
    let r = &d.restart;
    let mut s = String::new();
    let _ = writeln!(s, "name:        {}", d.status.name);
    let _ = writeln!(s, "version:     {}", d.version);
    if !d.description.is_empty() {
        let _ = writeln!(s, "description: {}", d.description);
    }
    let _ = writeln!(s, "manifest:    {}", d.manifest);
    match &d.component {
        Some(c) => {
            let _ = writeln!(
                s,
                "component:   {} ({}, sha256 {}, {}{})",
                c.path,
                fmt_bytes(c.size),
                c.sha256.get(..16).unwrap_or(&c.sha256),
                match c.source {
                    ComponentSource::CompileCache => "from compile cache",
                    ComponentSource::Compiled => "compiled",
                    ComponentSource::Image => "precompiled in the image",
                },
                if c.adapted {
                    "; a WASI preview-1 module, run through the preview-1 adapter"
                } else {
                    ""
                }
            );
        }
        None => {
            let _ = writeln!(s, "component:   {} (not loaded)", d.component_file);
        }
    }
    let st = &d.status;
    let _ = writeln!(
        s,
        "state:       {} (instance {}, {} restarts)",
        st.state, d.generation, st.restarts
    );
    if let Some(e) = &st.last_exit {
        let _ = writeln!(s, "last exit:   {e}");
    }
    let _ = writeln!(s, "args:        {:?}", d.args);
    let env: Vec<String> = d.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        s,
        "env:         {}",
        if env.is_empty() { "(none)".into() } else { env.join(" ") }
    );
    if !d.depends_on.is_empty() {
        let _ = writeln!(s, "depends on:  {}", d.depends_on.join(", "));
    }
    let _ = writeln!(
        s,
        "restart:     {}, backoff {} doubling to {}, give up after more than {} restarts in {}",
        r.mode,
        humantime::format_duration(r.backoff),
        humantime::format_duration(r.max_backoff),
        r.intensity,
        humantime::format_duration(r.period)
    );
    let _ = writeln!(
        s,
        "lifecycle:   start within {}, stop within {} of being asked{}; {}",
        humantime::format_duration(r.start_timeout),
        humantime::format_duration(r.stop_timeout),
        match r.retry_after {
            Some(d) => format!("; when failed, retry after {}", humantime::format_duration(d)),
            None => String::new(),
        },
        if r.required {
            "required for readiness"
        } else {
            "not required for readiness"
        }
    );
    let l = &d.limits;
    let _ = writeln!(
        s,
        "cpu:         {} in all its instances{}",
        fmt_cpu(st.cpu),
        match d.lane {
            Some(Lane::Interactive) => "; interactive (wakes, works briefly, waits)",
            Some(Lane::Batch) => "; batch (runs whole slices: behind every interactive app)",
            None => "",
        }
    );
    let _ = writeln!(
        s,
        "memory:      {} in use, limit {}",
        st.memory.map(fmt_bytes).unwrap_or_else(|| "-".into()),
        fmt_bytes(l.memory)
    );
    let _ = writeln!(
        s,
        "limits:      {} handles, {} table elements, {} instances, log {} ({} held, {} lines dropped)",
        l.handles,
        l.table_elements,
        l.instances,
        fmt_bytes(d.log.capacity),
        fmt_bytes(d.log.held),
        d.log.dropped
    );
    let c = &d.capabilities;
    let _ = writeln!(s, "capabilities:");
    if c.dirs.is_empty() {
        let _ = writeln!(s, "  dirs:      (none)");
    }
    for g in &c.dirs {
        let _ = writeln!(
            s,
            "  dir:       {} -> {} ({})",
            g.guest,
            g.host,
            if g.writable { "read-write" } else { "read-only" }
        );
    }
    let _ = writeln!(
        s,
        "  env:       {}",
        if c.inherit_env.is_empty() {
            "(none inherited)".into()
        } else {
            c.inherit_env.join(", ")
        }
    );
    let _ = writeln!(s, "  stdin:     {}", c.stdin.as_deref().unwrap_or("(empty)"));
    match &c.network {
        None => {
            let _ = writeln!(s, "  network:   (none)");
        }
        Some(n) => {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.join(", ")
                }
            };
            let _ = writeln!(s, "  connect:   {}", list(&n.connect));
            let _ = writeln!(s, "  bind:      {}", list(&n.bind));
            let _ = writeln!(s, "  dns:       {}", if n.dns { "allowed" } else { "denied" });
        }
    }
    let i = &st.ipc;
    let _ = writeln!(s, "  ipc send:  {}", c.ipc_send);
    let _ = writeln!(s, "  ipc accept: {} (and the console)", c.ipc_accept);
    if !c.http_outbound.is_empty() {
        let _ = writeln!(s, "  http out:  {}", c.http_outbound.join(", "));
    }
    if !c.http_routes.is_empty() || st.http.is_some() {
        let routes = if c.http_routes.is_empty() {
            "(none: reached by other apps only)".to_string()
        } else {
            c.http_routes.join(", ")
        };
        let _ = writeln!(s, "http:        routes {routes}");
        if let Some(h) = &st.http {
            let _ = writeln!(
                s,
                "             {} requests, {} errors, {} rejected, {} in flight",
                h.requests, h.errors, h.rejected, h.in_flight
            );
        }
    }
    let _ = writeln!(
        s,
        "ipc:         inbox {} messages / {}, messages up to {}; sent {}, received {}, refused {}, queued {}",
        l.inbox,
        fmt_bytes(l.inbox_bytes),
        fmt_bytes(l.message_size),
        i.sent,
        i.received,
        i.refused,
        i.queued
    );
    if let Some(c) = &d.component {
        let _ = writeln!(s, "imports:");
        for i in &c.imports {
            let _ = writeln!(s, "  {i}");
        }
        let _ = writeln!(s, "exports:");
        for e in &c.exports {
            let _ = writeln!(s, "  {e}");
        }
    }
    s
}

#[cfg(test)]
mod tests;
