//! `vyoma run`: the supervisor in hosted mode, with its operator console, the management
//! API and the HTTP gateway, until the operator, a signal or the API ends it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vyoma_supervisor::{BootError, RealClock, console, prepare};

use crate::{Exit, RuntimeArgs};

/// The management API's settings for `vyoma run`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ApiArgs {
    /// Serve the management API on ADDR [default: 127.0.0.1:7420; if that port is taken,
    /// the instance runs without the API and says so]
    #[arg(long, value_name = "ADDR", env = "VYOMA_API")]
    api: Option<std::net::SocketAddr>,
    /// Do not serve the management API (whatever --api or VYOMA_API say).
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

/// The app store's settings for `vyoma run`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct StoreArgs {
    /// Keep updated apps' versions in DIR (they run again at the next start) [default:
    /// $XDG_STATE_HOME/vyoma/store/NAME-HASH, else ~/.local/state/vyoma/store/NAME-HASH,
    /// one per apps folder]
    #[arg(long, value_name = "DIR", env = "VYOMA_STORE")]
    store: Option<PathBuf>,
    /// Keep no app store: apps cannot be updated while they run.
    #[arg(long)]
    no_store: bool,
}

impl StoreArgs {
    /// The store's folder for the apps in `dir`, if one is kept.
    fn folder(&self, dir: &std::path::Path) -> Option<PathBuf> {
        if self.no_store {
            return None;
        }
        if let Some(s) = &self.store {
            return Some(s.clone());
        }
        // One store per apps folder, named so a person can tell which.
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let name = abs
            .file_name()
            .map_or_else(|| "apps".to_string(), |n| n.to_string_lossy().into_owned());
        let hash = vyoma_supervisor::vyoma_store::Digest::of(abs.as_os_str().as_encoded_bytes());
        let base = vyoma_api::config::vyoma_dir("XDG_STATE_HOME", ".local/state")?;
        Some(base.join("store").join(format!("{name}-{}", &hash.as_str()[..8])))
    }
}

/// The display's settings for `vyoma run`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct DisplayArgs {
    /// Where the screen goes: `headless` (composed in memory: screenshots, tests), `window`
    /// (a window on your X11 or XWayland desktop, its keyboard and pointer the apps') or
    /// `none` (apps granted `display` are told there is none)
    #[arg(long, value_name = "BACKEND", default_value = "headless", value_parser = ["headless", "window", "none"])]
    display: String,
    /// The screen's size, WIDTHxHEIGHT
    #[arg(long, value_name = "WxH", default_value = "1280x800", value_parser = parse_screen)]
    screen: vyoma_display::Size,
    /// How apps share the screen: `kiosk` (the focused app alone), `grid`, or
    /// `tiles:APP,APP,...` (only those); the console's `layout` changes it
    #[arg(long, value_name = "LAYOUT", default_value = "grid")]
    layout: vyoma_display::Layout,
    /// No status bar (app names and states along the top)
    #[arg(long)]
    no_bar: bool,
}

pub(crate) fn parse_screen(s: &str) -> Result<vyoma_display::Size, String> {
    let (w, h) = vyoma_manifest::parse_size(s)?;
    Ok(vyoma_display::Size::new(w, h))
}

impl DisplayArgs {
    /// Gives the supervisor its screen and starts the screen's clock; says what it is.
    fn start(&self, sup: &vyoma_supervisor::Supervisor) -> anyhow::Result<()> {
        use vyoma_display::backend::{Backend, Headless};
        let (backend, events): (Box<dyn Backend>, _) = match self.display.as_str() {
            "none" => {
                println!("display: none (--display none)");
                return Ok(());
            }
            "window" => {
                let (w, events) = vyoma_window::Window::open(None, self.screen, "VyomaOS")?;
                (Box::new(w), Some(events))
            }
            _ => (Box::new(Headless::default()), None),
        };
        let name = backend.name().to_string();
        let d = vyoma_display::Display::new(&name, self.screen, self.layout.clone(), !self.no_bar);
        sup.show_on(d.clone());
        if let Some(events) = events {
            // The window's keyboard and pointer: a thread that blocks on the X connection.
            let d = d.clone();
            std::thread::Builder::new()
                .name("vyoma-window".into())
                .spawn(move || events.run(d))?;
        }
        d.start_clock(backend);
        println!(
            "{}",
            console::render_display_started(&name, self.screen, &self.layout, !self.no_bar)
        );
        Ok(())
    }
}

/// The HTTP gateway's settings for `vyoma run`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct HttpArgs {
    /// Serve the HTTP apps' routes on ADDR [default: 127.0.0.1:8080 when some app has
    /// routes; if that port is taken, the instance runs without the gateway and says so]
    #[arg(long, value_name = "ADDR", env = "VYOMA_HTTP")]
    http: Option<std::net::SocketAddr>,
    /// Do not serve the HTTP gateway, whatever --http or VYOMA_HTTP say (HTTP apps still
    /// call each other by name).
    #[arg(long)]
    no_http: bool,
}

/// What `vyoma run` serves besides the apps: the management API, the HTTP gateway, the
/// app store and the display.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct Services {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    display: DisplayArgs,
}

pub(crate) async fn run(
    dir: PathBuf,
    no_console: bool,
    args: &RuntimeArgs,
    services: &Services,
    config: Option<PathBuf>,
) -> anyhow::Result<Exit> {
    let Services {
        api: api_args,
        http: http_args,
        store: store_args,
        display: display_args,
    } = services;
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
    match store_args.folder(&dir) {
        Some(folder) => match sup.open_store(&folder).await {
            Ok(notes) => {
                println!("app store: {}", folder.display());
                for n in notes {
                    println!("  {}", console::terminal_safe(&n));
                }
            }
            Err(e) => {
                eprintln!("{}", console::terminal_safe(&e.to_string()));
                eprintln!("error: cannot open the app store; pass --store DIR for another, or --no-store");
                return Ok(Exit::Error);
            }
        },
        None => println!("app store: none (--no-store): apps cannot be updated while they run"),
    }
    display_args.start(&sup)?;
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
    let cannot = sup.rejected().len();
    if cannot > 0 {
        eprintln!(
            "note: {cannot} app(s) cannot run (they show as failed in `ps`, with their problems in `log APP`); the others start"
        );
    }
    let mut api = serve_api(&sup, api_args, config)?;
    let mut http = serve_http(&sup, http_args).await?;
    // Start the apps while serving signals: one during start-up stops what has started.
    tokio::select! {
        () = booted.start(None) => {}
        _ = sigint.recv() => {
            finish(&sup, &mut http).await;
            println!("SIGINT during start-up: all apps stopped");
            return Ok(Exit::Ok);
        }
        _ = sigterm.recv() => {
            finish(&sup, &mut http).await;
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
                stop_gateway(&mut http).await;
                println!("shut down through the management API: all apps stopped");
                return Ok(Exit::Ok);
            }
        }
        finish(&sup, &mut http).await;
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
                stop_gateway(&mut http).await;
                println!("shut down through the management API: all apps stopped");
                return Ok(Exit::Ok);
            }
        }
    };
    if end == Some(console::ConsoleEnd::Shutdown) {
        stop_gateway(&mut http).await;
    } else {
        finish(&sup, &mut http).await;
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

/// How long the gateway's open connections have to finish at shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// Stops the gateway's listener (requests in flight finish, at most [`HTTP_DRAIN`]).
async fn stop_gateway(http: &mut Option<vyoma_http::Listening>) {
    if let Some(l) = http.take() {
        let open = l.shutdown(HTTP_DRAIN).await;
        if open > 0 {
            eprintln!("warning: {open} HTTP connection(s) still open after {HTTP_DRAIN:?}: closed");
        }
    }
}

/// Stops taking HTTP requests, then every app.
async fn finish(sup: &vyoma_supervisor::Supervisor, http: &mut Option<vyoma_http::Listening>) {
    stop_gateway(http).await;
    sup.shutdown().await;
}

/// The gateway's address when none is given.
const DEFAULT_HTTP: &str = "127.0.0.1:8080";

/// Starts the HTTP gateway's listener for `vyoma run`: on the address given, or on
/// [`DEFAULT_HTTP`] when some app has routes (a taken default port is a warning, an address
/// given explicitly must work).
async fn serve_http(
    sup: &vyoma_supervisor::Supervisor,
    args: &HttpArgs,
) -> anyhow::Result<Option<vyoma_http::Listening>> {
    let gw = sup.gateway();
    if args.no_http || (args.http.is_none() && gw.route_count() == 0) {
        return Ok(None);
    }
    let addr = args
        .http
        .unwrap_or_else(|| DEFAULT_HTTP.parse().expect("a valid address"));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if args.http.is_none() => {
            eprintln!(
                "warning: HTTP gateway not served: cannot listen on {addr}: {e}; pass --http ADDR to use another address"
            );
            return Ok(None);
        }
        Err(e) => anyhow::bail!("cannot listen on {addr} for the HTTP gateway: {e}"),
    };
    let l = gw.listen(listener)?;
    println!("HTTP gateway: http://{} ({} routes)", l.addr(), gw.route_count());
    Ok(Some(l))
}
