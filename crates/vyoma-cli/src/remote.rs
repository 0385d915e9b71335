//! `vyoma ps`, `vyoma logf APP`, ... against one or more instances' management APIs
//! (`--endpoint a,b,c`; default: the client config's default). Output is the console's own
//! rendering of the typed reply, or the reply's JSON with `--json`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use vyoma_api::ClientConfig;
use vyoma_api::client::{ClientError, FollowEvent, Remote};
use vyoma_supervisor::console::{Command, UpdateOptions, UpdateSource, render, terminal_safe};

use crate::Exit;

/// Commands run on an instance through its management API.
#[derive(Subcommand, Debug, Clone)]
pub(crate) enum RemoteCmd {
    /// One row per app: state, restarts, uptime, memory, CPU, IPC, last exit.
    Ps,
    /// An app's captured output (the last N lines).
    Log {
        /// The app.
        app: String,
        /// How many of the newest lines.
        lines: Option<usize>,
    },
    /// An app's output, then follow it live (for DURATION, or until Ctrl-C); a dropped
    /// connection is resumed without losing or repeating a line.
    Logf {
        /// The app.
        app: String,
        /// How long to follow, e.g. 30s.
        duration: Option<String>,
    },
    /// Start a stopped, exited or failed app.
    Start {
        /// The app.
        app: String,
    },
    /// Ask an app to end (it gets its stop timeout), and keep it stopped.
    Stop {
        /// The app.
        app: String,
    },
    /// Stop an app now and keep it stopped.
    Kill {
        /// The app.
        app: String,
    },
    /// Stop an app if running and start a fresh instance.
    Restart {
        /// The app.
        app: String,
    },
    /// Manifest, grants, imports/exports, memory and limits of an app.
    Inspect {
        /// The app.
        app: String,
    },
    /// Wait until the app (or `all`) is in STATE.
    Wait {
        /// The app, or `all`.
        app: String,
        /// starting, running, stopping, exited, failed, stopped or backoff.
        state: String,
        /// Give up after this long [default: 30s].
        duration: Option<String>,
    },
    /// Send TEXT to APP as an IPC message from `console`, and print its answer.
    Send {
        /// The app.
        app: String,
        /// The message.
        text: String,
        /// How long to wait for the answer (0s: do not wait).
        #[arg(long, default_value = "2s")]
        wait: String,
    },
    /// Replace a running app with the version in DIR (its app.toml and component): it is
    /// uploaded, checked, and run on probation; a failing version is rolled back by itself.
    Update {
        /// The app.
        app: String,
        /// The new version's app folder.
        dir: PathBuf,
        /// Let a change through that breaks what other apps rely on.
        #[arg(long)]
        force: bool,
        /// Check and report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Build it first (its manifest's `[build]`); nothing is sent if the build fails.
        #[arg(long)]
        build: bool,
    },
    /// Add the app in DIR (its app.toml and component) to the running instance: it is
    /// uploaded, checked, and run on probation; it is kept once it passes.
    Deploy {
        /// The app's folder.
        dir: PathBuf,
        /// Check and report what would happen; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Build it first (its manifest's `[build]`); nothing is sent if the build fails.
        #[arg(long)]
        build: bool,
    },
    /// Stop an app and take it out of the instance (across restarts too).
    Remove {
        /// The app.
        app: String,
        /// Delete its data folder too.
        #[arg(long)]
        purge: bool,
    },
    /// Put an app's previous version back.
    Rollback {
        /// The app.
        app: String,
    },
    /// The versions of an app the instance keeps, and the last one turned down.
    Versions {
        /// The app.
        app: String,
    },
    /// The screen: its layout, focus, and each app's tile and surface.
    Display,
    /// Change how apps share the screen: kiosk, grid, or tiles:APP,APP,...
    Layout {
        /// The layout.
        layout: String,
    },
    /// Give an app the keyboard (and, in kiosk, the screen).
    Focus {
        /// The app.
        app: String,
    },
    /// Save the screen (or one app's surface) as a PNG file here.
    Screenshot {
        /// The app whose surface (default: the whole screen).
        #[arg(long)]
        app: Option<String>,
        /// The PNG file to write.
        file: PathBuf,
    },
    /// Give an app (or, with `*`, the display, as from a device) input events: key CODE
    /// [MODS] | text TEXT | pointer X Y [PHASE] [BUTTON] | touch ID X Y PHASE.
    Input {
        /// The app, or `*`.
        app: String,
        /// The event, as at the console.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        event: Vec<String>,
    },
    /// Stop every app and shut the instance down.
    Shutdown,
    /// The Prometheus metrics.
    Metrics,
}

impl RemoteCmd {
    /// The console command, validated by the console's own parser.
    fn command(&self) -> anyhow::Result<Option<Command>> {
        let line = match self {
            RemoteCmd::Ps => "ps".to_string(),
            RemoteCmd::Log { app, lines } => match lines {
                Some(n) => format!("log {app} {n}"),
                None => format!("log {app}"),
            },
            RemoteCmd::Logf { app, duration } => format!("logf {app} {}", duration.as_deref().unwrap_or("")),
            RemoteCmd::Start { app } => format!("start {app}"),
            RemoteCmd::Stop { app } => format!("stop {app}"),
            RemoteCmd::Kill { app } => format!("kill {app}"),
            RemoteCmd::Restart { app } => format!("restart {app}"),
            RemoteCmd::Inspect { app } => format!("inspect {app}"),
            RemoteCmd::Wait { app, state, duration } => {
                format!("wait {app} {state} {}", duration.as_deref().unwrap_or(""))
            }
            RemoteCmd::Send { app, text, wait } => {
                let wait = humantime::parse_duration(wait)
                    .map_err(|_| anyhow::anyhow!("invalid --wait `{wait}`: write e.g. 500ms, 2s"))?;
                return Ok(Some(Command::Message {
                    to: app.clone(),
                    text: text.clone(),
                    reply_within: (!wait.is_zero()).then_some(wait),
                }));
            }
            RemoteCmd::Shutdown => "shutdown".to_string(),
            RemoteCmd::Display => "display".to_string(),
            RemoteCmd::Layout { layout } => format!("layout {layout}"),
            RemoteCmd::Focus { app } => format!("focus {app}"),
            RemoteCmd::Screenshot { app, file } => {
                return Ok(Some(Command::Screenshot {
                    app: app.clone(),
                    path: file.clone(),
                }));
            }
            RemoteCmd::Input { app, event } => {
                let words: Vec<&str> = std::iter::once(app.as_str())
                    .chain(event.iter().map(String::as_str))
                    .collect();
                let (app, events) =
                    vyoma_supervisor::console::parse_input(&words, &words.join(" ")).map_err(anyhow::Error::msg)?;
                return Ok(Some(Command::Input { app, events }));
            }
            RemoteCmd::Metrics => return Ok(None),
            RemoteCmd::Update { .. } | RemoteCmd::Deploy { .. } => return Ok(None),
            RemoteCmd::Remove { app, purge } => {
                format!("remove {app}{}", if *purge { " --purge" } else { "" })
            }
            RemoteCmd::Rollback { app } => format!("rollback {app}"),
            RemoteCmd::Versions { app } => format!("versions {app}"),
        };
        // App names are one word; anything else is refused by the parser as it would be
        // at the console.
        if line.split_whitespace().nth(1).is_some_and(|a| a.starts_with('-')) {
            bail!("app names do not start with `-`: `{line}`");
        }
        Command::parse(&line).map(Some).map_err(anyhow::Error::msg)
    }
}

/// Reads the app folder `dir` and uploads its component to every instance; returns what
/// names the upload (the manifest's text and the component's digest).
async fn upload(remotes: &[Remote], dir: &std::path::Path, build: bool) -> anyhow::Result<UpdateSource> {
    if build {
        crate::build::build_first(dir)?;
    }
    let file = vyoma_manifest::manifest_file(dir);
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let manifest = vyoma_manifest::Manifest::parse(&text, &file)
        .map_err(|d| anyhow::anyhow!("{}", terminal_safe(&d.to_string())))?;
    let path = &manifest.component.value;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the component {}", path.display()))?;
    // A WASI preview-1 command module is adapted here: the device runs components only.
    let bytes = match vyoma_runtime::as_component(&bytes, path).map_err(|e| anyhow::anyhow!("{e}"))? {
        (std::borrow::Cow::Owned(adapted), _) => adapted,
        (std::borrow::Cow::Borrowed(_), _) => bytes,
    };
    let digest = vyoma_supervisor::vyoma_store::Digest::of(&bytes).to_string();
    for r in remotes {
        r.put_blob(&digest, bytes.clone())
            .await
            .map_err(|e| anyhow::anyhow!("{}: uploading {}: {e}", r.name(), path.display()))?;
    }
    Ok(UpdateSource::Upload {
        manifest: text,
        component: digest,
    })
}

/// Runs `cmd` on every endpoint named (or the default one).
pub(crate) async fn remote(
    endpoints: &[String],
    config: Option<PathBuf>,
    json: bool,
    cmd: RemoteCmd,
) -> anyhow::Result<Exit> {
    let path = config
        .or_else(ClientConfig::default_path)
        .context("no client config: pass --config FILE or set VYOMA_CONFIG")?;
    let cfg = ClientConfig::load(&path)?;
    let which: Vec<Option<&str>> = if endpoints.is_empty() {
        vec![None]
    } else {
        endpoints.iter().map(|e| Some(e.as_str())).collect()
    };
    let mut remotes = Vec::new();
    for w in which {
        let (name, endpoint) = cfg
            .resolve(w)
            .map_err(|e| anyhow::anyhow!("{e} (client config {})", path.display()))?;
        // A token given in the environment wins (scripts, CI).
        let endpoint = match std::env::var("VYOMA_TOKEN") {
            Ok(t) if !t.is_empty() => vyoma_api::Endpoint { token: t, ..endpoint },
            _ => endpoint,
        };
        remotes.push(Remote::new(&name, &endpoint)?);
    }
    let command = match &cmd {
        RemoteCmd::Update {
            app,
            dir,
            force,
            dry_run,
            build,
        } => Some(Command::Update {
            app: app.clone(),
            source: upload(&remotes, dir, *build).await?,
            options: UpdateOptions {
                force: *force,
                dry_run: *dry_run,
            },
        }),
        RemoteCmd::Deploy { dir, dry_run, build } => Some(Command::Deploy {
            source: upload(&remotes, dir, *build).await?,
            options: UpdateOptions {
                force: false,
                dry_run: *dry_run,
            },
        }),
        _ => cmd.command()?,
    };
    if let Some(Command::Screenshot { app, path }) = &command {
        if remotes.len() > 1 {
            bail!("`screenshot` writes one file; pass one --endpoint");
        }
        let png = remotes[0].screenshot(app.as_deref()).await?;
        std::fs::write(path, &png).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{} bytes written to {}", png.len(), path.display());
        return Ok(Exit::Ok);
    }
    if let Some(Command::Logf { app, duration }) = &command {
        if remotes.len() > 1 {
            bail!("`logf` follows one instance at a time; pass one --endpoint");
        }
        return follow(&remotes[0], app, *duration, json).await;
    }
    let many = remotes.len() > 1;
    let results = futures::future::join_all(remotes.iter().map(|r| {
        let command = command.clone();
        async move {
            match command {
                Some(c) => r.call(&c).await.map(|(reply, raw)| (render(&reply), raw)),
                None => r.get_text("/metrics").await.map(|t| {
                    let raw = serde_json::to_string(&t).unwrap_or_default();
                    (t, raw)
                }),
            }
        }
    }))
    .await;
    let mut failed = false;
    if json {
        let value = |res: &Result<(String, String), ClientError>| match res {
            Ok((_, raw)) => ("reply", serde_json::from_str(raw).unwrap_or_default()),
            Err(e) => ("error", error_json(e)),
        };
        let out = if many {
            serde_json::Value::Array(
                remotes
                    .iter()
                    .zip(&results)
                    .map(|(r, res)| {
                        let (key, v) = value(res);
                        serde_json::json!({ "endpoint": r.name(), key: v })
                    })
                    .collect(),
            )
        } else {
            match value(&results[0]) {
                ("reply", v) => v,
                (_, e) => serde_json::json!({ "error": e }),
            }
        };
        failed = results.iter().any(Result::is_err);
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (r, res) in remotes.iter().zip(results) {
            if many {
                println!("== {} ==", terminal_safe(r.name()));
            }
            match res {
                Ok((text, _)) => print!("{}", terminal_safe(&text)),
                Err(e) => {
                    failed = true;
                    eprintln!(
                        "error: {}{}",
                        if many { format!("{}: ", r.name()) } else { String::new() },
                        terminal_safe(&e.to_string())
                    );
                }
            }
        }
    }
    Ok(if failed { Exit::Error } else { Exit::Ok })
}

/// The error as the API shapes it (`code`, `message`, plus the HTTP `status`); errors
/// that never reached an instance have the code `unreachable` or `client`.
fn error_json(e: &ClientError) -> serde_json::Value {
    match e {
        ClientError::Api(api) => serde_json::json!({ "status": api.status, "code": api.code, "message": api.message }),
        ClientError::Connect { .. } => serde_json::json!({ "code": "unreachable", "message": e.to_string() }),
        other => serde_json::json!({ "code": "client", "message": other.to_string() }),
    }
}

async fn follow(remote: &Remote, app: &str, duration: Option<Duration>, json: bool) -> anyhow::Result<Exit> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout();
    let mut seen: Option<u64> = None;
    let result = tokio::select! {
        r = remote.follow(
            app,
            duration,
            |l| {
                let text = if json {
                    serde_json::to_string(l).unwrap_or_default() + "\n"
                } else {
                    let mut s = String::new();
                    vyoma_supervisor::console::render_line(&mut s, l);
                    s
                };
                if let Some(prev) = seen
                    && l.seq > prev + 1
                    && !json
                {
                    let _ = writeln!(stdout, "({} lines dropped by the app's log before they were read)", l.seq - prev - 1);
                }
                seen = Some(l.seq);
                let _ = stdout.write_all(terminal_safe(&text).as_bytes());
                let _ = stdout.flush();
            },
            |e| match e {
                FollowEvent::Reconnecting { why, .. } => {
                    eprintln!("(connection lost: {}; resuming)", terminal_safe(&why));
                }
            },
        ) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    match result {
        Ok(()) => Ok(Exit::Ok),
        Err(e) => {
            eprintln!("error: {}", terminal_safe(&e.to_string()));
            Ok(Exit::Error)
        }
    }
}
