//! Console lines into typed [`Command`]s, with one-line errors that say what is wrong and
//! how to fix it.

use std::time::Duration;

use vyoma_lifecycle::AppState;

/// Longest console line accepted; longer input is refused while it is read, never buffered
/// whole.
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
        duration: Option<Duration>,
    },
    /// `start APP`
    Start(String),
    /// `stop APP`: ask the app to end (it gets its stop timeout), then it stays stopped.
    Stop(String),
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
        /// Wait this long for the app's answer and return it (the management API); `None`:
        /// any answer arrives later in the console's inbox (the console prints it).
        reply_within: Option<Duration>,
    },
    /// `shutdown`
    Shutdown,
    /// `update APP DIR [--force] [--dry-run]`: replace the app's version with the one in
    /// DIR (or, from the API, an uploaded one), on probation.
    Update {
        /// The app.
        app: String,
        /// Where the new version is.
        source: crate::UpdateSource,
        /// Force, dry run.
        options: crate::UpdateOptions,
    },
    /// `rollback APP`: back to the previous version.
    Rollback(String),
    /// `versions APP`: the versions kept.
    Versions(String),
    /// `deploy DIR [--dry-run]`: add the app in DIR (or, from the API, an uploaded one) to
    /// the running instance, on probation.
    Deploy {
        /// Where it is.
        source: crate::UpdateSource,
        /// Dry run (`force` does not apply: a new app breaks nothing).
        options: crate::UpdateOptions,
    },
    /// `remove APP [--purge]`: stop the app and take it out of the instance; with
    /// `purge`, delete its data folder too.
    Remove {
        /// The app.
        app: String,
        /// Delete its data folder.
        purge: bool,
    },
    /// `display`: the screen, its layout, focus and apps.
    Display,
    /// `layout LAYOUT`: `kiosk`, `grid` or `tiles:A,B,...`.
    Layout(vyoma_display::Layout),
    /// `focus APP`: give APP the keyboard.
    Focus(String),
    /// `screenshot [APP] FILE.png`: the screen (or APP's surface) as PNG.
    Screenshot {
        /// The app whose surface; none: the whole screen.
        app: Option<String>,
        /// Where to write it (on the supervisor's machine).
        path: std::path::PathBuf,
    },
    /// `input APP|* EVENT`: events for APP (its surface's coordinates) or, with `*`, for
    /// the display to route as if from a device (screen coordinates, the focus chord).
    Input {
        /// The app; none: routed.
        app: Option<String>,
        /// The events, in order.
        events: Vec<vyoma_display::Input>,
    },
}

/// The help text.
pub const HELP: &str = "\
commands:
  ps                          one row per app: state, restarts, uptime, memory, last exit
  log APP [N]                 the app's captured output (the last N lines)
  logf APP [DURATION]         the output, then follow it live: for DURATION, or until Ctrl-C or Enter
  start APP                   start a stopped, exited or failed app
  stop APP                    ask an app to end (apps that listen get their stop timeout,
                              the others end at once), and keep it stopped
  kill APP                    stop an app now and keep it stopped
  restart APP                 stop an app if running and start a fresh instance
  inspect APP                 manifest, grants, imports/exports, memory and limits
  wait APP|all STATE [DURATION]  wait until the app (or every app) is in STATE (default 30s)
  @APP: TEXT                  send TEXT to APP as an IPC message from `console`; what apps
                              reply or send to `console` is printed as `[from APP] TEXT`
  update APP DIR [--force] [--dry-run]
                              replace APP with the version in folder DIR (app.toml and its
                              component, on this machine); it runs on probation and is put
                              back automatically if it fails
  rollback APP                back to APP's previous version
  versions APP                the versions of APP kept, and the last one turned down
  deploy DIR [--dry-run]      add the app in folder DIR (app.toml and its component) to the
                              running instance; it runs on probation and is kept once it passes
  remove APP [--purge]        stop APP and take it out, across restarts too; --purge also
                              deletes its data folder
  display                     the screen: layout, focus, each app's tile and surface
  layout kiosk|grid|tiles:A,B the display's layout (kiosk: the focused app alone)
  focus APP                   give APP the keyboard (and, in kiosk, the screen)
  screenshot [APP] FILE.png   write the screen (or APP's surface) as PNG
  input APP|* EVENT           give APP (or, with *, the display, as from a device) an
                              event: key CODE [ctrl+alt+shift+meta] | text TEXT |
                              pointer X Y [move|down|up|click] [BUTTON] | touch ID X Y PHASE
  help                        this text
  shutdown                    stop all apps (each after the apps that depend on it) and exit";

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
                reply_within: None,
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
                    duration: args.get(1).map(|d| duration(d)).transpose()?,
                }
            }
            "start" | "stop" | "kill" | "restart" | "inspect" => {
                let usage = format!("{cmd} APP");
                at_most(1, &usage)?;
                let a = app(&usage)?;
                match cmd {
                    "start" => Command::Start(a),
                    "stop" => Command::Stop(a),
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
            "update" => {
                let usage = "update APP DIR [--force] [--dry-run]";
                let mut options = crate::UpdateOptions::default();
                let mut plain = Vec::new();
                for a in &args {
                    match *a {
                        "--force" => options.force = true,
                        "--dry-run" => options.dry_run = true,
                        flag if flag.starts_with("--") => {
                            return Err(format!("unknown option `{flag}` to `update`: {usage}"));
                        }
                        other => plain.push(other),
                    }
                }
                match plain.as_slice() {
                    [app, dir] => Command::Update {
                        app: app.to_string(),
                        source: crate::UpdateSource::Folder(dir.into()),
                        options,
                    },
                    [] => return Err(format!("`update` needs an app name and a folder: {usage}")),
                    [_] => return Err(format!("`update` needs the folder of the new version: {usage}")),
                    _ => return Err(format!("too many arguments to `update`: {usage}")),
                }
            }
            "deploy" => {
                let usage = "deploy DIR [--dry-run]";
                let mut options = crate::UpdateOptions::default();
                let mut plain = Vec::new();
                for a in &args {
                    match *a {
                        "--dry-run" => options.dry_run = true,
                        flag if flag.starts_with("--") => {
                            return Err(format!("unknown option `{flag}` to `deploy`: {usage}"));
                        }
                        other => plain.push(other),
                    }
                }
                match plain.as_slice() {
                    [dir] => Command::Deploy {
                        source: crate::UpdateSource::Folder(dir.into()),
                        options,
                    },
                    [] => return Err(format!("`deploy` needs the app's folder: {usage}")),
                    _ => return Err(format!("too many arguments to `deploy`: {usage}")),
                }
            }
            "remove" => {
                let usage = "remove APP [--purge]";
                let purge = args.contains(&"--purge");
                let plain: Vec<&&str> = args.iter().filter(|a| **a != "--purge").collect();
                if let Some(flag) = plain.iter().find(|a| a.starts_with("--")) {
                    return Err(format!("unknown option `{flag}` to `remove`: {usage}"));
                }
                match plain.as_slice() {
                    [a] => Command::Remove {
                        app: a.to_string(),
                        purge,
                    },
                    [] => return Err(format!("`remove` needs an app name: {usage}")),
                    _ => return Err(format!("too many arguments to `remove`: {usage}")),
                }
            }
            "rollback" | "versions" => {
                let usage = format!("{cmd} APP");
                at_most(1, &usage)?;
                let a = app(&usage)?;
                if cmd == "rollback" {
                    Command::Rollback(a)
                } else {
                    Command::Versions(a)
                }
            }
            "display" => {
                at_most(0, "display")?;
                Command::Display
            }
            "layout" => {
                let usage = "layout kiosk|grid|tiles:APP,APP,...";
                at_most(1, usage)?;
                let l = args
                    .first()
                    .ok_or_else(|| format!("`layout` needs a layout: {usage}"))?;
                Command::Layout(l.parse()?)
            }
            "focus" => {
                at_most(1, "focus APP")?;
                Command::Focus(app("focus APP")?)
            }
            "screenshot" => {
                let usage = "screenshot [APP] FILE.png";
                at_most(2, usage)?;
                let (app, path) = match args.as_slice() {
                    [path] => (None, path),
                    [app, path] => (Some(app.to_string()), path),
                    _ => return Err(format!("`screenshot` needs a file to write: {usage}")),
                };
                if !path.ends_with(".png") {
                    return Err(format!(
                        "`{path}` does not end in `.png`: screenshots are PNG files ({usage})"
                    ));
                }
                Command::Screenshot { app, path: path.into() }
            }
            "input" => {
                let (app, events) = crate::display::parse_input(&args, line.strip_prefix("input").unwrap_or(line))?;
                Command::Input { app, events }
            }
            "shutdown" | "exit" | "quit" => {
                at_most(0, cmd)?;
                Command::Shutdown
            }
            other => return Err(format!("unknown command `{other}`; `help` lists the commands")),
        })
    }
}

#[cfg(test)]
mod tests;
