//! The operator console: one line in, one [`Command`] out, executed against the
//! [`Supervisor`], rendered as text. The same loop serves a terminal and a script piped on
//! stdin; it never ends on bad input, only on `shutdown` or end of input.
//!
//! Parsing ([`Command::parse`]) is pure, so it is unit-tested and fuzzed on its own.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use vyoma_lifecycle::{AppState, Event, LogLine};

use crate::{AppDetail, AppStatus, Supervisor, SupervisorError};

/// Longest console line accepted; longer input is refused, not buffered without bound.
pub const MAX_LINE: usize = 4096;
/// Default time `wait` waits.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// An operator command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Blank line or comment.
    Nothing,
    /// `help`
    Help,
    /// `ps`
    Ps,
    /// `log APP [N]`: the last N lines (default all held).
    Log {
        /// App.
        app: String,
        /// How many of the newest lines.
        last: Option<usize>,
    },
    /// `logf APP [DURATION]`: history, then follow.
    Logf {
        /// App.
        app: String,
        /// Stop following after this long.
        for_: Option<Duration>,
    },
    /// `start APP`
    Start(String),
    /// `kill APP`
    Kill(String),
    /// `restart APP`
    Restart(String),
    /// `inspect APP`
    Inspect(String),
    /// `wait APP|all STATE [DURATION]`
    Wait {
        /// App, or `all`.
        app: String,
        /// The state to reach.
        state: AppState,
        /// Give up after.
        timeout: Duration,
    },
    /// `@APP: TEXT`: deliver TEXT to APP as an IPC message from `console`.
    Message {
        /// The app.
        to: String,
        /// The text.
        text: String,
    },
    /// `shutdown`
    Shutdown,
}

/// The help text.
pub const HELP: &str = "\
commands:
  ps                          one row per app: state, restarts, uptime, memory, last exit
  log APP [N]                 the app's captured output (the last N lines)
  logf APP [DURATION]         the output, then follow it live: for DURATION, or until Ctrl-C or Enter
  start APP                   start a stopped, exited or failed app
  kill APP                    stop an app and keep it stopped
  restart APP                 stop an app if running and start a fresh instance
  inspect APP                 manifest, grants, imports/exports, memory and limits
  wait APP|all STATE [DURATION]  wait until the app (or every app) is in STATE (default 30s)
  @APP: TEXT                  send TEXT to APP as an IPC message from `console`; what apps
                              reply or send to `console` is printed as `[from APP] TEXT`
  help                        this text
  shutdown                    stop all apps in reverse dependency order and exit";

impl Command {
    /// Parses one console line. Errors are one line, saying what is wrong and how to fix it.
    pub fn parse(line: &str) -> Result<Command, String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(Command::Nothing);
        }
        if let Some(rest) = line.strip_prefix('@') {
            let usage = "write `@APP: TEXT` to send TEXT to APP";
            let (to, text) = rest
                .split_once(':')
                .ok_or_else(|| format!("missing `:` after the app name: {usage}"))?;
            let to = to.trim();
            if to.is_empty() {
                return Err(format!("missing app name after `@`: {usage}"));
            }
            return Ok(Command::Message {
                to: to.to_string(),
                text: text.strip_prefix(' ').unwrap_or(text).to_string(),
            });
        }
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        let app = |usage: &str| -> Result<String, String> {
            match args.first() {
                Some(a) => Ok(a.to_string()),
                None => Err(format!("`{cmd}` needs an app name: {usage}")),
            }
        };
        let at_most = |n: usize, usage: &str| -> Result<(), String> {
            if args.len() > n {
                Err(format!("too many arguments to `{cmd}`: {usage}"))
            } else {
                Ok(())
            }
        };
        let duration = |s: &str| -> Result<Duration, String> {
            humantime::parse_duration(s).map_err(|_| format!("invalid duration `{s}`: write e.g. 500ms, 5s, 1m"))
        };
        Ok(match cmd {
            "help" | "?" => Command::Help,
            "ps" => {
                at_most(0, "ps")?;
                Command::Ps
            }
            "log" => {
                let usage = "log APP [N]";
                at_most(2, usage)?;
                let last = match args.get(1) {
                    Some(n) => Some(n.parse().map_err(|_| format!("`{n}` is not a line count: {usage}"))?),
                    None => None,
                };
                Command::Log { app: app(usage)?, last }
            }
            "logf" => {
                let usage = "logf APP [DURATION]";
                at_most(2, usage)?;
                Command::Logf {
                    app: app(usage)?,
                    for_: args.get(1).map(|d| duration(d)).transpose()?,
                }
            }
            "start" | "kill" | "restart" | "inspect" => {
                let usage = format!("{cmd} APP");
                at_most(1, &usage)?;
                let a = app(&usage)?;
                match cmd {
                    "start" => Command::Start(a),
                    "kill" => Command::Kill(a),
                    "restart" => Command::Restart(a),
                    _ => Command::Inspect(a),
                }
            }
            "wait" => {
                let usage = "wait APP|all STATE [DURATION]";
                at_most(3, usage)?;
                let a = app(usage)?;
                let state = args
                    .get(1)
                    .ok_or_else(|| format!("`wait` needs a state: {usage}"))?
                    .parse::<AppState>()?;
                let timeout = args.get(2).map(|d| duration(d)).transpose()?.unwrap_or(DEFAULT_WAIT);
                Command::Wait { app: a, state, timeout }
            }
            "shutdown" | "exit" | "quit" => {
                at_most(0, cmd)?;
                Command::Shutdown
            }
            other => return Err(format!("unknown command `{other}`; `help` lists the commands")),
        })
    }
}

/// What the loop should do after a command.
enum Next {
    Continue,
    Follow { app: String, for_: Option<Duration> },
    Shutdown,
}

/// How the console loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleEnd {
    /// The operator typed `shutdown`.
    Shutdown,
    /// Input ended (EOF).
    EndOfInput,
}

/// Runs the console until `shutdown` or end of input. `interrupts` fires on Ctrl-C; it
/// stops a `logf` and is otherwise ignored (so Ctrl-C never kills the supervisor by
/// accident). With `prompt`, a prompt is shown before each command.
pub async fn run<R, W>(
    sup: &Supervisor,
    input: R,
    mut out: W,
    prompt: bool,
    mut interrupts: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> std::io::Result<ConsoleEnd>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = input.lines();
    let mut pending: Option<String> = None;
    // What apps send or reply to the console, printed as it arrives.
    let inbox = sup.broker().console();
    loop {
        let line = match pending.take() {
            Some(l) => l,
            None => {
                if prompt {
                    out.write_all(b"vyoma> ").await?;
                    out.flush().await?;
                }
                tokio::select! {
                    l = lines.next_line() => match l {
                        Ok(Some(l)) => l,
                        Ok(None) => return Ok(ConsoleEnd::EndOfInput),
                        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                            out.write_all(b"error: input is not valid UTF-8; line ignored\n").await?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    },
                    Some(()) = interrupts.recv() => {
                        out.write_all(b"\n(interrupt: type `shutdown` to stop VyomaOS)\n").await?;
                        continue;
                    }
                    Some(m) = inbox.recv(None) => {
                        let mut s = if prompt { "\n".to_string() } else { String::new() };
                        render_message(&mut s, &m);
                        out.write_all(s.as_bytes()).await?;
                        continue;
                    }
                }
            }
        };
        if line.len() > MAX_LINE {
            out.write_all(format!("error: line too long ({} bytes, at most {MAX_LINE})\n", line.len()).as_bytes())
                .await?;
            continue;
        }
        let (text, next) = match Command::parse(&line) {
            Ok(cmd) => execute(sup, cmd).await,
            Err(e) => (format!("error: {e}\n"), Next::Continue),
        };
        out.write_all(text.as_bytes()).await?;
        out.flush().await?;
        match next {
            Next::Continue => {}
            Next::Shutdown => return Ok(ConsoleEnd::Shutdown),
            Next::Follow { app, for_ } => {
                let log = match sup.log(&app) {
                    Ok(l) => l,
                    Err(e) => {
                        out.write_all(format!("error: {e}\n").as_bytes()).await?;
                        continue;
                    }
                };
                let mut rx = log.subscribe();
                let (held, mut next_seq) = log.since(0);
                write_lines(&mut out, &held).await?;
                let deadline = for_.map(|d| tokio::time::Instant::now() + d);
                let sleep = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        r = rx.changed() => {
                            if r.is_err() { break; }
                            let (new, n) = log.since(next_seq);
                            next_seq = n;
                            write_lines(&mut out, &new).await?;
                        }
                        () = &mut sleep => break,
                        Some(()) = interrupts.recv() => break,
                        Some(m) = inbox.recv(None) => {
                            let mut s = String::new();
                            render_message(&mut s, &m);
                            out.write_all(s.as_bytes()).await?;
                            out.flush().await?;
                        }
                        // With a duration, input waits its turn (scripts follow for a set
                        // time); without one, Enter stops following.
                        l = lines.next_line(), if for_.is_none() => {
                            match l {
                                Ok(Some(l)) if !l.trim().is_empty() => pending = Some(l),
                                Ok(Some(_)) => {}
                                Ok(None) => {
                                    out.write_all(b"(stopped following)\n").await?;
                                    return Ok(ConsoleEnd::EndOfInput);
                                }
                                Err(e) => return Err(e),
                            }
                            break;
                        }
                    }
                }
                out.write_all(b"(stopped following)\n").await?;
            }
        }
    }
}

/// Runs the console on this process's standard input and output (a terminal, a serial
/// line or a pipe), with a prompt when the input is a terminal. See [`run`].
pub async fn run_stdio(
    sup: &Supervisor,
    interrupts: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> std::io::Result<ConsoleEnd> {
    let prompt = std::io::IsTerminal::is_terminal(&std::io::stdin());
    run(
        sup,
        tokio::io::BufReader::new(tokio::io::stdin()),
        tokio::io::stdout(),
        prompt,
        interrupts,
    )
    .await
}

async fn write_lines<W: AsyncWrite + Unpin>(out: &mut W, lines: &[LogLine]) -> std::io::Result<()> {
    let mut s = String::new();
    for l in lines {
        render_line(&mut s, l);
    }
    out.write_all(s.as_bytes()).await?;
    out.flush().await
}

/// `[from APP] TEXT`, with control characters escaped so an app cannot drive the
/// operator's terminal.
fn render_message(s: &mut String, m: &vyoma_ipc::Message) {
    let _ = writeln!(s, "[from {}] {}", m.sender, printable(&m.body));
}

/// Text for a terminal: invalid UTF-8 replaced, control characters (but tab) escaped.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for c in String::from_utf8_lossy(bytes).chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn render_line(s: &mut String, l: &LogLine) {
    let _ = writeln!(s, "{} {} {}", humantime::format_rfc3339_millis(l.at), l.stream, l.text);
}

async fn execute(sup: &Supervisor, cmd: Command) -> (String, Next) {
    let ok = |s: String| (s, Next::Continue);
    let err = |e: SupervisorError| (format!("error: {e}\n"), Next::Continue);
    match cmd {
        Command::Nothing => ok(String::new()),
        Command::Help => ok(format!("{HELP}\n")),
        Command::Ps => ok(render_ps(&sup.status())),
        Command::Log { app, last } => match sup.log(&app) {
            Ok(log) => {
                let (lines, _) = log.since(0);
                let skip = last.map_or(0, |n| lines.len().saturating_sub(n));
                let mut s = String::new();
                for l in &lines[skip..] {
                    render_line(&mut s, l);
                }
                if lines.is_empty() {
                    s = format!("({app} has written nothing yet)\n");
                }
                ok(s)
            }
            Err(e) => err(e),
        },
        Command::Logf { app, for_ } => match sup.log(&app) {
            Ok(_) => (String::new(), Next::Follow { app, for_ }),
            Err(e) => err(e),
        },
        Command::Start(app) => match sup.apply(&app, Event::Start) {
            Ok(()) => ok(format!("{app}: starting\n")),
            Err(e) => err(e),
        },
        Command::Kill(app) => match sup.apply(&app, Event::Kill) {
            Ok(()) => ok(format!("{app}: stopped\n")),
            Err(e) => err(e),
        },
        Command::Restart(app) => match sup.apply(&app, Event::Restart) {
            Ok(()) => ok(format!("{app}: restarting\n")),
            Err(e) => err(e),
        },
        Command::Inspect(app) => match sup.detail(&app) {
            Ok(d) => ok(render_inspect(&d)),
            Err(e) => err(e),
        },
        Command::Wait { app, state, timeout } => match sup.wait_for(&app, state, timeout).await {
            Ok(true) => ok(format!("{app}: {state}\n")),
            Ok(false) => {
                let now = if app == "all" {
                    let rows = sup.status();
                    let not: Vec<String> = rows
                        .iter()
                        .filter(|r| r.state != state)
                        .map(|r| format!("{} is {}", r.name, r.state))
                        .take(5)
                        .collect();
                    not.join(", ")
                } else {
                    sup.detail(&app)
                        .map(|d| format!("it is {}", d.status.state))
                        .unwrap_or_default()
                };
                ok(format!(
                    "error: timed out after {} waiting for {app} to be {state} ({now})\n",
                    humantime::format_duration(timeout)
                ))
            }
            Err(e) => err(e),
        },
        Command::Message { to, text } => match sup.send_from_console(&to, text.into_bytes()) {
            Ok(()) => ok(format!("sent to {to}\n")),
            Err(e) => err(e),
        },
        Command::Shutdown => {
            sup.shutdown().await;
            ("all apps stopped; shutting down\n".to_string(), Next::Shutdown)
        }
    }
}

/// Formats bytes in binary units, compactly.
pub fn fmt_bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

fn fmt_uptime(d: Duration) -> String {
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
    let mut s = format!(
        "{:<name_w$}  {:<8}  {:>8}  {:>8}  {:>8}  {:>6}  {:>6}  {:>7}  {:>6}  LAST EXIT\n",
        "NAME", "STATE", "RESTARTS", "UPTIME", "MEMORY", "SENT", "RECV", "REFUSED", "QUEUED"
    );
    for r in rows {
        let uptime = r.uptime.map(fmt_uptime).unwrap_or_else(|| "-".into());
        let mem = r.memory.map(fmt_bytes).unwrap_or_else(|| "-".into());
        let exit = r
            .last_exit
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".into());
        let i = &r.ipc;
        let _ = writeln!(
            s,
            "{:<name_w$}  {:<8}  {:>8}  {:>8}  {:>8}  {:>6}  {:>6}  {:>7}  {:>6}  {}",
            r.name,
            r.state.to_string(),
            r.restarts,
            uptime,
            mem,
            i.sent,
            i.received,
            i.refused,
            i.queued,
            exit
        );
    }
    s
}

/// The `inspect` report.
pub fn render_inspect(d: &AppDetail) -> String {
    let m = &d.manifest;
    let r = &m.restart;
    let mut s = String::new();
    let _ = writeln!(s, "name:        {}", m.name);
    let _ = writeln!(s, "version:     {}", m.version);
    if !m.description.is_empty() {
        let _ = writeln!(s, "description: {}", m.description);
    }
    let _ = writeln!(s, "manifest:    {}", m.source.path.display());
    match &d.component {
        Some(c) => {
            let _ = writeln!(
                s,
                "component:   {} ({}, sha256 {}, {})",
                c.path.display(),
                fmt_bytes(c.size),
                &c.sha256[..16],
                match c.outcome {
                    vyoma_runtime::CacheOutcome::Disk => "from compile cache",
                    vyoma_runtime::CacheOutcome::Compiled => "compiled",
                    vyoma_runtime::CacheOutcome::Image => "precompiled in the image",
                }
            );
        }
        None => {
            let _ = writeln!(s, "component:   {} (not loaded)", m.component.value.display());
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
    let _ = writeln!(s, "args:        {:?}", m.args);
    let env: Vec<String> = m.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        s,
        "env:         {}",
        if env.is_empty() { "(none)".into() } else { env.join(" ") }
    );
    if !m.depends_on.is_empty() {
        let deps: Vec<&str> = m.depends_on.iter().map(|d| d.value.as_str()).collect();
        let _ = writeln!(s, "depends on:  {}", deps.join(", "));
    }
    let _ = writeln!(
        s,
        "restart:     {}, backoff {} doubling to {}, give up after more than {} restarts in {}",
        match r.mode {
            vyoma_manifest::RestartMode::Never => "never",
            vyoma_manifest::RestartMode::OnFailure => "on-failure",
            vyoma_manifest::RestartMode::Always => "always",
        },
        humantime::format_duration(r.backoff),
        humantime::format_duration(r.max_backoff),
        r.intensity,
        humantime::format_duration(r.period)
    );
    let l = &m.limits;
    let (dropped, held, cap) = d.log_usage;
    let _ = writeln!(
        s,
        "memory:      {} in use, limit {}",
        st.memory.map(fmt_bytes).unwrap_or_else(|| "-".into()),
        fmt_bytes(l.memory)
    );
    let _ = writeln!(
        s,
        "limits:      {} table elements, {} instances, log {} ({} held, {} lines dropped)",
        l.table_elements,
        l.instances,
        fmt_bytes(cap as u64),
        fmt_bytes(held as u64),
        dropped
    );
    let c = &m.capabilities;
    let _ = writeln!(s, "capabilities:");
    if c.dirs.is_empty() {
        let _ = writeln!(s, "  dirs:      (none)");
    }
    for g in &c.dirs {
        let _ = writeln!(
            s,
            "  dir:       {} -> {} ({})",
            g.guest,
            g.host.value.display(),
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
    let _ = writeln!(
        s,
        "  stdin:     {}",
        c.stdin
            .as_ref()
            .map_or("(empty)".into(), |p| p.value.display().to_string())
    );
    match &c.network {
        None => {
            let _ = writeln!(s, "  network:   (none)");
        }
        Some(n) => {
            let list = |v: &[vyoma_manifest::AddrPattern]| {
                if v.is_empty() {
                    "(none)".to_string()
                } else {
                    v.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                }
            };
            let _ = writeln!(s, "  connect:   {}", list(&n.connect));
            let _ = writeln!(s, "  bind:      {}", list(&n.bind));
            let _ = writeln!(s, "  dns:       {}", if n.dns { "allowed" } else { "denied" });
        }
    }
    let i = &st.ipc;
    let _ = writeln!(s, "  ipc send:  {}", c.ipc.send);
    let _ = writeln!(s, "  ipc accept: {} (and the console)", c.ipc.accept);
    let _ = writeln!(
        s,
        "ipc:         inbox {} messages / {}, messages up to {}; sent {}, received {}, refused {}, queued {}",
        l.inbox,
        fmt_bytes(l.inbox_bytes as u64),
        fmt_bytes(l.message_size as u64),
        i.sent,
        i.received,
        i.refused,
        i.queued
    );
    if let Some(c) = &d.component {
        let _ = writeln!(s, "imports:");
        for i in &c.info.imports {
            let _ = writeln!(s, "  {i}");
        }
        let _ = writeln!(s, "exports:");
        for e in &c.info.exports {
            let _ = writeln!(s, "  {e}");
        }
    }
    s
}

#[cfg(test)]
mod tests;
