//! `vyoma`: the VyomaOS command. `vyoma run [DIR]` runs the supervisor with its operator
//! console and management API (hosted mode); `vyoma check DIR|FILE` validates apps without
//! running them; `vyoma image build` and `vyoma boot` make and run the bootable image;
//! `vyoma ps`, `vyoma logf APP`, ... operate running instances through their management
//! APIs (`--endpoint`). The benchmarks are a binary of their own, `vyoma-bench`.
//!
//! This binary only parses arguments, sets up logging and the terminal, and maps errors to
//! exit codes; the work is in the library crates.

mod check;
mod image;
mod remote;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use vyoma_runtime::{PoolingChoice, RuntimeConfig};
use vyoma_supervisor::{BootError, RealClock, console, prepare};

/// Exit codes of `vyoma`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Exit {
    /// Success.
    Ok = 0,
    /// Something went wrong at run time (engine, terminal).
    Error = 1,
    /// The apps are invalid (manifest or component problems).
    InvalidApps = 3,
}

#[derive(Parser, Debug)]
#[command(name = "vyoma", version, about = "Run many WebAssembly apps under one supervisor")]
struct Cli {
    /// The instances remote commands go to: names from the client config, or URLs;
    /// comma-separated for several [default: the config's default]
    #[arg(long, global = true, value_delimiter = ',', value_name = "NAME|URL")]
    endpoint: Vec<String>,
    /// The client config [default: $VYOMA_CONFIG, else ~/.config/vyoma/client.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Remote commands print the API's JSON instead of text
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

/// The management API's settings for `vyoma run`.
#[derive(clap::Args, Debug, Clone)]
struct ApiArgs {
    /// Serve the management API on ADDR [default: 127.0.0.1:7420; if that port is taken,
    /// the instance runs without the API and says so]
    #[arg(long, value_name = "ADDR", env = "VYOMA_API", conflicts_with = "no_api")]
    api: Option<std::net::SocketAddr>,
    /// Do not serve the management API.
    #[arg(long)]
    no_api: bool,
    /// Serve HTTPS on loopback too (it always is on any other address).
    #[arg(long)]
    api_tls: bool,
    /// The API's credentials folder (token digest, certificates), made on first start
    /// [default: $XDG_STATE_HOME/vyoma/api, else ~/.local/state/vyoma/api]
    #[arg(long, value_name = "DIR")]
    api_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Clone)]
struct RuntimeArgs {
    /// Most app instances alive at once (size of the instance pool).
    #[arg(long, default_value_t = 1024)]
    capacity: u32,
    /// Do not use the pooling allocator.
    #[arg(long)]
    no_pooling: bool,
    /// Compile cache folder [default: $VYOMA_CACHE_DIR, $XDG_CACHE_HOME/vyoma or ~/.cache/vyoma].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Do not read or write the on-disk compile cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Memory all apps together may hold (linear memory and waiting IPC messages), e.g.
    /// `2 GiB` [default: the machine's memory less an eighth, at least 64 MiB, kept for the
    /// supervisor].
    #[arg(long, value_name = "SIZE")]
    memory_budget: Option<bytesize::ByteSize>,
    /// Most app instances at once [default: what this machine can hold: memory mappings,
    /// address space, the pool].
    #[arg(long, value_name = "N")]
    max_instances: Option<u64>,
}

impl RuntimeArgs {
    /// The runtime settings; `boot` raises the capacity to twice the app count if needed.
    fn config(&self) -> RuntimeConfig {
        RuntimeConfig {
            capacity: self.capacity,
            pooling: if self.no_pooling {
                PoolingChoice::Off
            } else {
                PoolingChoice::Auto
            },
            cache_dir: if self.no_cache {
                None
            } else {
                self.cache_dir.clone().or_else(vyoma_runtime::default_cache_dir)
            },
            memory_budget: self.memory_budget.map(|b| b.as_u64()),
            max_instances: self.max_instances,
            ..RuntimeConfig::default()
        }
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run every app in DIR (default: the bundled example apps) with the operator console.
    Run {
        /// A folder of app folders, or one app folder.
        dir: Option<PathBuf>,
        /// Run without the console until SIGINT or SIGTERM (for services and benchmarks).
        #[arg(long)]
        no_console: bool,
        #[command(flatten)]
        runtime: RuntimeArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Validate manifests and components without running them.
    Check {
        /// A folder of app folders, one app folder, or one app.toml.
        path: Option<PathBuf>,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Build or inspect the bootable image (kernel + initramfs with the supervisor as /init).
    Image {
        #[command(subcommand)]
        command: image::ImageCmd,
    },
    /// Boot an image in QEMU with the serial console on this terminal.
    Boot(image::BootArgs),
    #[command(flatten)]
    Remote(remote::RemoteCmd),
}

/// A path in this source tree (the `vyoma` binary is run from its checkout).
pub(crate) fn source_tree(rel: &str) -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root).join(rel)
}

/// The bundled example apps: `$VYOMA_APPS`, else `examples/default` in the source tree.
fn default_apps() -> PathBuf {
    let p = std::env::var_os("VYOMA_APPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/default")));
    p.canonicalize().unwrap_or(p)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VYOMA_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Error as u8);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Cmd::Run {
                dir,
                no_console,
                runtime,
                api,
            } => run(dir.unwrap_or_else(default_apps), no_console, &runtime, &api, cli.config).await,
            Cmd::Check { path, runtime } => check::check(&path.unwrap_or_else(default_apps), &runtime.config()),
            Cmd::Image { command } => image::image(command),
            Cmd::Boot(args) => image::boot(args),
            Cmd::Remote(cmd) => remote::remote(&cli.endpoint, cli.config, cli.json, cmd).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            // Errors can quote app folders' file names: escaped like all app text.
            eprintln!("error: {}", console::terminal_safe(&format!("{e:#}")));
            ExitCode::from(Exit::Error as u8)
        }
    }
}

async fn run(
    dir: PathBuf,
    no_console: bool,
    args: &RuntimeArgs,
    api_args: &ApiArgs,
    config: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    // Handlers first: a signal during start-up still gets an orderly shutdown.
    let (int_tx, int_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut booted = match prepare(&dir, args.config(), Arc::new(RealClock::default())).await {
        Ok(b) => b,
        Err(BootError::Apps(d)) => {
            eprintln!("{}", console::terminal_safe(&d.to_string()));
            eprintln!("error: no apps to run in {}", dir.display());
            return Ok(Exit::InvalidApps);
        }
        Err(e) => return Err(e.into()),
    };
    let sup = booted.supervisor.clone();
    let runtime = sup.runtime().clone();
    println!(
        "VyomaOS: {} apps from {}; allocator: {}; app memory budget: {}; compile cache: {}",
        sup.names().len(),
        dir.display(),
        runtime.allocator(),
        bytesize::ByteSize(runtime.memory_budget().limit()).display().iec(),
        match (runtime.cache().dir(), runtime.cache().refused()) {
            (Some(d), _) => d.display().to_string(),
            (None, Some(why)) => format!("off ({why})"),
            (None, None) => "off".into(),
        }
    );
    let capacity = runtime.capacity();
    if sup.names().len() > capacity.instances {
        eprintln!(
            "warning: {} apps, but this machine can hold {} instances at once ({}); the apps past that fail to start",
            sup.names().len(),
            capacity.instances,
            capacity.limited_by
        );
    }
    // Invalid apps are not started, and apps with missing files or unloadable components
    // fail on start; the rest run.
    for problem in booted.problems() {
        eprintln!("{}", console::terminal_safe(&problem.to_string()));
    }
    let cannot = sup.rejected().count();
    if cannot > 0 {
        eprintln!(
            "note: {cannot} app(s) cannot run (they show as failed in `ps`, with their problems in `log APP`); the others start"
        );
    }
    let mut api = serve_api(&sup, api_args, config)?;
    // Start the apps while serving signals: one during start-up stops what has started.
    tokio::select! {
        () = booted.start(None) => {}
        _ = sigint.recv() => {
            sup.shutdown().await;
            println!("SIGINT during start-up: all apps stopped");
            return Ok(Exit::Ok);
        }
        _ = sigterm.recv() => {
            sup.shutdown().await;
            println!("SIGTERM during start-up: all apps stopped");
            return Ok(Exit::Ok);
        }
    }

    if let Some(a) = &api {
        a.set_started();
    }
    // Resolves when a client shut the instance down through the API.
    let api_shutdown = async {
        match api.as_mut() {
            Some(a) => a.shutdown_requested().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(api_shutdown);
    if no_console {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
            () = &mut api_shutdown => {
                println!("shut down through the management API: all apps stopped");
                return Ok(Exit::Ok);
            }
        }
        sup.shutdown().await;
        return Ok(Exit::Ok);
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!("type `help` for commands, `shutdown` to stop");
    }
    // The console has a thread of its own: busy apps cannot slow the operator down.
    let mut console = console::spawn_stdio(&sup, int_rx)?;
    let end = loop {
        tokio::select! {
            r = &mut console => break Some(console_result(r)?),
            _ = sigint.recv() => { let _ = int_tx.send(()); }
            _ = sigterm.recv() => break None,
            () = &mut api_shutdown => {
                println!("shut down through the management API: all apps stopped");
                return Ok(Exit::Ok);
            }
        }
    };
    if end != Some(console::ConsoleEnd::Shutdown) {
        sup.shutdown().await;
        if end.is_none() {
            println!("SIGTERM: all apps stopped");
        }
    }
    Ok(Exit::Ok)
}

/// What the console thread reported (its end, or that it is gone).
fn console_result(
    r: Result<std::io::Result<console::ConsoleEnd>, tokio::sync::oneshot::error::RecvError>,
) -> std::io::Result<console::ConsoleEnd> {
    r.unwrap_or_else(|_| Err(std::io::Error::other("the console thread ended unexpectedly")))
}

/// The default address of the hosted management API.
const DEFAULT_API: &str = "127.0.0.1:7420";

/// The API's credentials folder by default.
fn default_api_dir() -> Option<PathBuf> {
    Some(vyoma_api::config::vyoma_dir("XDG_STATE_HOME", ".local/state")?.join("api"))
}

/// Starts the management API for `vyoma run`, making its credentials on first start and
/// recording the endpoint as `local` in the client config. `None` when off, or when the
/// default port is taken (said on stderr); an address given explicitly must work.
fn serve_api(
    sup: &vyoma_supervisor::Supervisor,
    args: &ApiArgs,
    config: Option<PathBuf>,
) -> anyhow::Result<Option<vyoma_api::Api>> {
    use anyhow::Context as _;
    if args.no_api {
        return Ok(None);
    }
    let explicit = args.api.is_some();
    let addr = args
        .api
        .unwrap_or_else(|| DEFAULT_API.parse().expect("a valid address"));
    let tls = args.api_tls || !addr.ip().is_loopback();
    let dir = args
        .api_dir
        .clone()
        .or_else(default_api_dir)
        .context("no folder for the API's credentials: pass --api-dir DIR")?;
    let config = config
        .or_else(vyoma_api::ClientConfig::default_path)
        .context("no client config path: pass --config FILE or set VYOMA_CONFIG")?;
    // Bind first (the port may be 0, or taken), then record the URL clients use.
    let listener = match vyoma_api::bind(addr) {
        Ok(l) => l,
        Err(e) if !explicit => {
            eprintln!("warning: management API not served: {e}; pass --api ADDR to use another address");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let bound = listener.local_addr()?;
    let mut reach = bound;
    if reach.ip().is_unspecified() {
        reach.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("{}://{reach}", if tls { "https" } else { "http" });
    let credentials = vyoma_api::credentials::prepare_hosted(&dir, &config, "local", &url, tls)?;
    let api = vyoma_api::Api::spawn(sup, vyoma_api::ApiConfig { listener, credentials })?;
    println!(
        "management API: {} (endpoint `local` in {}; try `vyoma ps`)",
        api.url(),
        config.display()
    );
    Ok(Some(api))
}
