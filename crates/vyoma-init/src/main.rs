//! `vyoma-init`: `/init` of the VyomaOS image. As PID 1 it mounts the early file systems,
//! routes Ctrl-Alt-Del to an orderly shutdown, boots the supervisor from `/apps` (apps
//! precompiled by `vyoma image build`), serves the operator console on `/dev/console` (the
//! serial line) and the management API (HTTPS, with the credentials `vyoma image build` put
//! in `/etc/vyoma/api`), sets up the network (`vyoma.net=`), reaps children, and on
//! `shutdown` (console or API), SIGTERM, SIGINT or SIGPWR stops every
//! app in reverse dependency order, syncs and powers off. A supervisor panic is logged on
//! the console and ends in a reboot (or power-off, `vyoma.panic=poweroff`), never a hang.
//!
//! Run as a plain process (hosted mode, tests), it does the same minus the mounts and the
//! power-off: apps come from `$VYOMA_APPS`, options from `$VYOMA_CMDLINE`, and it exits 0.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::signal::unix::{Signal, SignalKind, signal};
use vyoma_init::cmdline::{self, BootOptions, NetConfig};
use vyoma_init::net;
use vyoma_init::{
    LinuxSys, PanicResponse, PowerAction, Shutdown, ShutdownSignal, Sys, early_mounts, mount_store_disk,
    panic_response, power_down, raise_limits, reap_all,
};
use vyoma_lifecycle::AppState;
use vyoma_runtime::RuntimeConfig;
use vyoma_supervisor::{BootError, RealClock, boot_nothing, console, prepare};

/// Exit codes in hosted mode (PID 1 never exits: it powers off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Exit {
    /// Orderly shutdown.
    Ok = 0,
    /// Start-up failed (invalid apps, no runtime).
    Error = 1,
    /// The supervisor panicked.
    Panic = 101,
}

static SYS: LinuxSys = LinuxSys;

/// Instance slots at least, with an app store: room for apps deployed after boot.
const DEPLOY_ROOM: u32 = 64;

fn say(line: &str) {
    // The console is the serial line: write whole lines and flush, so they survive a
    // power-off right after. App-controlled text (manifest values in diagnostics) is
    // escaped so it cannot drive the operator's terminal.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", console::terminal_safe(line));
    let _ = out.flush();
}

/// The supervisor's log filter from `vyoma.log=`: levels per target, `warn` or
/// `vyoma_supervisor=debug,warn` (tracing's `Targets` syntax: no span or field filters, so
/// no regex engine in /init).
fn log_filter(text: &str) -> Result<tracing_subscriber::filter::Targets, String> {
    text.parse().map_err(|e| format!("{e}"))
}

/// mimalloc rather than musl's allocator: the boot's manifests and instances allocate a
/// great deal, and musl's makes a system call for many allocations (docs/PERFORMANCE.md,
/// "mimalloc in /init": 200 apps start in about two thirds of the time under TCG).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let t0 = Instant::now();
    let pid1 = SYS.is_pid1();
    if pid1 {
        for p in early_mounts(&SYS) {
            say(&format!("vyoma-init: {p}"));
        }
        for p in raise_limits(&SYS) {
            say(&format!("vyoma-init: {p}"));
        }
        if let Err(e) = SYS.ctrl_alt_del_to_sigint() {
            say(&format!("vyoma-init: Ctrl-Alt-Del will reboot at once: {e}"));
        }
    } else if let Err(e) = SYS.become_subreaper() {
        say(&format!("vyoma-init: cannot adopt orphans (not a subreaper): {e}"));
    }
    let mounted = t0.elapsed();
    let cmdline = if pid1 {
        std::fs::read_to_string("/proc/cmdline").unwrap_or_default()
    } else {
        std::env::var("VYOMA_CMDLINE").unwrap_or_default()
    };
    let (mut opts, problems) = cmdline::parse(&cmdline);
    if !pid1 && let Some(dir) = std::env::var_os("VYOMA_APPS") {
        opts.apps_dir = dir.to_string_lossy().into_owned();
    }
    let filter = log_filter(&opts.log).unwrap_or_else(|e| {
        say(&format!(
            "vyoma-init: `vyoma.log={}` is not a log filter ({e}): using warn",
            opts.log
        ));
        log_filter("warn").expect("a level is a filter")
    });
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // The builder's own level (info unless told) would cap what `vyoma.log` can ask for:
    // the filter alone decides.
    tracing_subscriber::fmt()
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .finish()
        .with(filter)
        .init();
    for p in problems {
        say(&format!("vyoma-init: {p}"));
    }
    install_panic_hook(pid1, opts.on_panic);
    tracing::debug!(
        mounts_ms = millis(mounted),
        logging_ms = millis(t0.elapsed()),
        "init: mounts and limits, then the command line and logging"
    );

    let result = match vyoma_runtime::supervisor_runtime() {
        Ok(rt) => {
            tracing::debug!(at_ms = millis(t0.elapsed()), "init: async runtime up");
            let r = rt.block_on(run(&opts, pid1, t0));
            rt.shutdown_timeout(Duration::from_secs(1));
            r
        }
        Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let (code, action) = match result {
        Ok(cause) => {
            say(&format!("vyoma: {cause}: all apps stopped"));
            (Exit::Ok, PowerAction::PowerOff)
        }
        // The supervisor itself could not run (no async runtime, no engine): treated like
        // a supervisor panic, by the `vyoma.panic` policy (default: reboot and try again).
        Err(e) => {
            say(&format!("vyoma-init: error: {e:#}"));
            (Exit::Error, opts.on_panic)
        }
    };
    if pid1 {
        say(match action {
            PowerAction::PowerOff => "vyoma: powering off",
            PowerAction::Reboot => "vyoma: rebooting",
        });
        let e = power_down(&SYS, action);
        say(&format!("vyoma-init: cannot {action:?}: {e}"));
        // Exiting PID 1 panics the kernel, which reboots (`panic=` on the command line).
        std::process::abort();
    }
    ExitCode::from(code as u8)
}

/// A panic inside an app instance ends that instance only (the supervisor catches it and
/// reports it as the app's exit reason). Anywhere else it is fatal: logged on the console,
/// then the machine reboots or powers off (hosted: the process exits).
fn install_panic_hook(pid1: bool, on_panic: PowerAction) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        match panic_response(vyoma_supervisor::in_app_instance(), pid1, on_panic) {
            PanicResponse::AppOnly => {
                tracing::debug!(%info, "panic inside an app instance; it ends that instance only");
            }
            PanicResponse::Exit => {
                default(info);
                say(&format!("vyoma-init: supervisor panic: {info}"));
                std::process::exit(Exit::Panic as i32);
            }
            PanicResponse::Fatal(how) => {
                say(&format!("vyoma-init: supervisor panic: {info}"));
                say(&format!(
                    "vyoma-init: {}",
                    match how {
                        PowerAction::Reboot => "rebooting",
                        PowerAction::PowerOff => "powering off",
                    }
                ));
                let e = power_down(&SYS, how);
                say(&format!("vyoma-init: cannot {how:?}: {e}"));
                std::process::abort();
            }
        }
    }));
}

/// Milliseconds with a fraction, for the start-up's debug records.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Where the image keeps the management API's credentials.
const API_DIR: &str = "/etc/vyoma/api";

/// Brings `lo` up, then sets up the interface `vyoma.net=` asks for in the background
/// (beside the apps' start: a slow or absent DHCP server never holds the boot up), saying
/// what it did; a DHCP lease is then renewed in the background. Returns once `lo` is up
/// (or could not be).
async fn network(cfg: NetConfig) {
    let nl = match net::RtNetlink::connect() {
        Ok(nl) => nl,
        Err(e) => {
            say(&format!("vyoma-init: network not set up: {e}"));
            return;
        }
    };
    let links = match net::loopback(&nl).await {
        Ok(links) => links,
        Err(e) => {
            say(&format!("vyoma-init: network: {e}"));
            return;
        }
    };
    tokio::spawn(async move {
        let lease = |link: net::Link| async move { vyoma_init::dhcp::acquire(&link.name, &link.mac).await };
        match net::configure(&nl, &cfg, &links, lease).await {
            Ok(c) => {
                say(&format!("vyoma-init: network: {c}"));
                if let net::Configured::Interface {
                    dev,
                    dhcp: Some((mac, l)),
                    ..
                } = c
                {
                    vyoma_init::dhcp::renew(dev, mac, l).await;
                }
            }
            Err(e) => say(&format!("vyoma-init: network: {e}; only lo is up")),
        }
    });
}

/// The management API's credentials being read, or why they could not be.
type Credentials = tokio::task::JoinHandle<Result<vyoma_api::ServerCredentials, String>>;

/// Starts reading the management API's credentials (its token digest, certificate and
/// key) when `vyoma.api=` asks for the API and the image has them, on a thread of their
/// own: under emulation reading them takes as long as a phase of the boot, so it runs
/// beside the manifests and the loading rather than just before the apps start.
fn load_credentials(opts: &BootOptions) -> Option<Credentials> {
    opts.api?;
    let dir = std::path::Path::new(API_DIR);
    if !dir.join(vyoma_api::files::TOKEN_DIGEST).exists() {
        say(&format!(
            "vyoma-init: no management API: the image has no credentials in {API_DIR} (vyoma image build makes them)"
        ));
        return None;
    }
    Some(tokio::task::spawn_blocking(move || {
        vyoma_api::ServerCredentials::load(dir, true).map_err(|e| e.to_string())
    }))
}

/// Serves the management API on `vyoma.api=` (HTTPS) with the credentials being loaded.
async fn serve_api(
    sup: &vyoma_supervisor::Supervisor,
    opts: &BootOptions,
    credentials: Option<Credentials>,
) -> Option<vyoma_api::Api> {
    let addr = opts.api?;
    let loaded = match credentials?.await {
        Ok(c) => c,
        Err(e) => Err(format!("reading its credentials failed: {e}")),
    };
    let started = loaded.and_then(|credentials| {
        let listener = vyoma_api::bind(addr).map_err(|e| e.to_string())?;
        vyoma_api::Api::spawn(sup, vyoma_api::ApiConfig { listener, credentials }).map_err(|e| e.to_string())
    });
    match started {
        Ok(api) => {
            say(&format!("vyoma: management API on {}", api.url()));
            Some(api)
        }
        Err(e) => {
            say(&format!("vyoma-init: no management API: {e}"));
            None
        }
    }
}

/// Serves the HTTP gateway on `vyoma.http=` when some app has routes.
async fn serve_http(sup: &vyoma_supervisor::Supervisor, opts: &BootOptions) -> Option<vyoma_http::Listening> {
    let addr = opts.http?;
    let gw = sup.gateway();
    if gw.route_count() == 0 {
        return None;
    }
    let listening = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => gw.listen(l),
        Err(e) => Err(e),
    };
    match listening {
        Ok(l) => {
            say(&format!(
                "vyoma: HTTP gateway on http://{} ({} routes)",
                l.addr(),
                gw.route_count()
            ));
            Some(l)
        }
        Err(e) => {
            say(&format!("vyoma-init: no HTTP gateway: cannot listen on {addr}: {e}"));
            None
        }
    }
}

/// How long the gateway's open connections have to finish at shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

async fn run(opts: &BootOptions, pid1: bool, t0: Instant) -> anyhow::Result<Shutdown> {
    // Handlers first: a signal during start-up still gets an orderly shutdown.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigpwr = signal(SignalKind::from_raw(rustix::process::Signal::POWER.as_raw()))?;
    let mut sigchld = signal(SignalKind::child())?;
    // `lo` and the API's credentials beside the manifests and the loading (tens of ms
    // each under emulation); both are waited for before the apps start.
    let lo = pid1.then(|| tokio::spawn(network(opts.net.clone())));
    let credentials = if pid1 { load_credentials(opts) } else { None };
    tracing::debug!(at_ms = millis(t0.elapsed()), "init: signal handlers set");
    let dir = PathBuf::from(&opts.apps_dir);
    // The app store's disk, if the machine has one: apps deployed over the API, their
    // versions and data, and the compile cache of what the device compiled.
    let state = if pid1 {
        match mount_store_disk(&SYS, &opts.store) {
            Ok(s) => s,
            Err(e) => {
                say(&format!("vyoma-init: {e}"));
                None
            }
        }
    } else {
        std::env::var_os("VYOMA_STATE").map(PathBuf::from)
    };
    let config = RuntimeConfig {
        // Without a store the image's app set is fixed at boot, so the pool is sized to it
        // (boot makes room for twice the apps, for restarts): no address space or set-up
        // for unused slots. With one, there is room for apps deployed later.
        capacity: if state.is_some() { DEPLOY_ROOM } else { 16 },
        cache_dir: state.as_ref().map(|s| s.join("cache")),
        // Machine code only from the image's own artifact folder, and only as PID 1:
        // hosted (tests, `$VYOMA_APPS`), nothing precompiled is trusted.
        trusted_artifacts: pid1.then(|| PathBuf::from(vyoma_runtime::IMAGE_ARTIFACTS)),
        // Deployed apps are compiled by the image's compiler, beside its artifacts.
        compiler_helper: pid1
            .then(|| vyoma_runtime::CompilerHelper::find(Path::new(vyoma_runtime::IMAGE_ARTIFACTS)))
            .flatten(),
        memory_budget: opts.memory_budget,
        ..RuntimeConfig::default()
    };
    if pid1 && state.is_some() && config.compiler_helper.is_none() {
        say(&format!(
            "vyoma-init: this image has no compiler ({}/vyoma-compile-*.zst): apps deployed to it cannot be compiled; rebuild it with `./dev image`",
            vyoma_runtime::IMAGE_ARTIFACTS
        ));
    }
    tracing::debug!(
        at_ms = millis(t0.elapsed()),
        "init: store and compiler found; manifests next"
    );
    let clock = Arc::new(RealClock::default());
    let mut booted = match prepare(&dir, config.clone(), clock.clone()).await {
        Ok(b) => b,
        // No apps at all. The machine stays up with its console, so the operator can see
        // why and power off; hosted, there is nothing to do.
        Err(BootError::Apps(d)) if pid1 => {
            say(&d.to_string());
            say(&format!(
                "vyoma-init: no apps to run in {}; the console stays up (`shutdown` powers off)",
                dir.display()
            ));
            boot_nothing(config, clock)?
        }
        Err(BootError::Apps(d)) => {
            say(&d.to_string());
            bail!("no apps to run in {}", dir.display());
        }
        Err(e) => return Err(e.into()),
    };
    let sup = booted.supervisor.clone();
    match &state {
        Some(s) => match sup.open_store(&s.join("store")).await {
            Ok(notes) => {
                for n in notes {
                    say(&format!("app store: {}", console::terminal_safe(&n)));
                }
            }
            Err(e) => say(&format!(
                "vyoma-init: {e}; the apps run as built, and nothing can be deployed or updated"
            )),
        },
        None => say("vyoma-init: no app store (no disk, or vyoma.store=off): nothing can be deployed or updated"),
    }
    say(&format!(
        "VyomaOS: {} apps from {}; allocator: {}; app memory budget: {} MiB",
        sup.names().len(),
        dir.display(),
        sup.runtime().allocator(),
        sup.runtime().memory_budget().limit() >> 20
    ));
    let capacity = sup.runtime().capacity();
    if sup.names().len() > capacity.instances {
        say(&format!(
            "warning: {} apps, but this machine can hold {} instances at once ({}); the apps past that fail to start",
            sup.names().len(),
            capacity.instances,
            capacity.limited_by
        ));
    }
    // Invalid apps and missing or broken components fail those apps alone; say so, the
    // rest run.
    for problem in booted.problems() {
        say(&problem.to_string());
    }
    if let Some(lo) = lo {
        // A failure was said where it happened; the apps run without a network then.
        let _ = lo.await;
    }
    tracing::debug!(at_ms = millis(t0.elapsed()), "init: apps loaded, store opened, lo up");
    // The screen before the apps start, so those granted `display` draw from the start.
    vyoma_init::screen::start(&sup, opts, pid1, say);
    tracing::debug!(at_ms = millis(t0.elapsed()), "init: screen up");
    // The API is up before the apps start: probes see it live, and ready once they run.
    // Only PID 1 read credentials, so only PID 1 serves it.
    let mut api = serve_api(&sup, opts, credentials).await;
    tracing::debug!(at_ms = millis(t0.elapsed()), "init: management API up");
    let mut http = if pid1 { serve_http(&sup, opts).await } else { None };
    tracing::debug!(at_ms = millis(t0.elapsed()), "init: HTTP gateway up; apps start next");
    // Start the apps while serving signals: one during start-up stops what has started.
    let starting = async {
        booted.start(opts.apps.as_deref()).await;
        sup.wait_settled(Duration::from_secs(60)).await
    };
    let settled = tokio::select! {
        settled = starting => settled,
        s = next_signal(&mut sigterm, &mut sigint, &mut sigpwr) => {
            let cause = Shutdown::Signal(s);
            say(&format!("vyoma: {cause} during start-up: stopping all apps"));
            sup.shutdown().await;
            reap_all(&SYS);
            return Ok(cause);
        }
    };
    for u in &booted.unknown {
        say(&format!(
            "vyoma-init: `vyoma.apps` names `{u}`, which is not an app here (apps: {})",
            sup.names().join(", ")
        ));
    }
    let rows = sup.status();
    let count = |s: AppState| rows.iter().filter(|r| r.state == s).count();
    let started = rows.len() - count(AppState::Stopped);
    let ms = t0.elapsed().as_millis();
    let t = booted.timings;
    let phases = format!(
        "init {} ms, manifests {} ms, engine {} ms, load {} ms, start {} ms",
        (t.began - t0).as_millis(),
        t.manifests.as_millis(),
        (t.engine - t.manifests).as_millis(),
        (t.loaded - t.engine).as_millis(),
        (t0.elapsed() - (t.began - t0)).saturating_sub(t.loaded).as_millis(),
    );
    tracing::info!(%phases, "boot phases");
    if started > 0 && count(AppState::Running) == started {
        say(&format!(
            "vyoma: all {started} apps running (boot complete in {ms} ms: {phases})"
        ));
    } else {
        say(&format!(
            "vyoma: boot complete in {ms} ms ({phases}): {started} apps started ({} running, {} exited, {} failed, {} still starting, {} not started)",
            count(AppState::Running),
            count(AppState::Exited),
            count(AppState::Failed) + count(AppState::Backoff),
            if settled { 0 } else { count(AppState::Starting) },
            count(AppState::Stopped),
        ));
    }

    if let Some(a) = &api {
        a.set_started();
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        say("type `help` for commands, `shutdown` to power off");
    }
    // Ctrl-C reaches the console only in hosted mode; on the machine SIGINT means
    // Ctrl-Alt-Del, a shutdown. `logf` stops on Enter either way.
    let (_interrupts, int_rx) = tokio::sync::mpsc::unbounded_channel();
    // The console has a thread of its own: busy apps cannot slow the operator down.
    let mut console = console::spawn_stdio(&sup, int_rx)?;
    let mut console_open = true;
    let cause = loop {
        tokio::select! {
            r = &mut console, if console_open => match console_result(r) {
                Ok(console::ConsoleEnd::Shutdown) => break Shutdown::Console,
                Ok(console::ConsoleEnd::EndOfInput) if !pid1 => break Shutdown::EndOfInput,
                // PID 1 without a console (input closed) keeps running its apps.
                Ok(console::ConsoleEnd::EndOfInput) => console_open = false,
                Err(e) => {
                    say(&format!("vyoma-init: console failed: {e}; apps keep running"));
                    console_open = false;
                }
            },
            s = next_signal(&mut sigterm, &mut sigint, &mut sigpwr) => break Shutdown::Signal(s),
            () = async {
                match api.as_mut() {
                    Some(a) => a.shutdown_requested().await,
                    None => std::future::pending().await,
                }
            } => break Shutdown::Api,
            _ = sigchld.recv() => {
                let n = reap_all(&SYS);
                tracing::debug!(reaped = n, "reaped exited children");
            }
        }
    };
    // No new requests; those in flight finish (bounded).
    if let Some(l) = http.take() {
        l.shutdown(HTTP_DRAIN).await;
    }
    // The console's and the API's `shutdown` have already stopped them.
    if !matches!(cause, Shutdown::Console | Shutdown::Api) {
        say(&format!("vyoma: {cause}: stopping all apps"));
        sup.shutdown().await;
    }
    reap_all(&SYS);
    Ok(cause)
}

/// The next of SIGTERM, SIGINT (Ctrl-Alt-Del at PID 1) and SIGPWR.
async fn next_signal(term: &mut Signal, int: &mut Signal, pwr: &mut Signal) -> ShutdownSignal {
    tokio::select! {
        _ = term.recv() => ShutdownSignal::Term,
        _ = int.recv() => ShutdownSignal::Int,
        _ = pwr.recv() => ShutdownSignal::Pwr,
    }
}

/// What the console thread reported (its end, or that it is gone).
fn console_result(
    r: Result<std::io::Result<console::ConsoleEnd>, tokio::sync::oneshot::error::RecvError>,
) -> std::io::Result<console::ConsoleEnd> {
    r.unwrap_or_else(|_| Err(std::io::Error::other("the console thread ended unexpectedly")))
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;

    #[test]
    fn log_filters_are_levels_per_target() {
        let f = log_filter("vyoma_supervisor=debug,warn").unwrap();
        assert!(f.would_enable("vyoma_supervisor::update", &Level::DEBUG));
        assert!(!f.would_enable("wasmtime", &Level::INFO));
        assert!(f.would_enable("wasmtime", &Level::WARN));
        assert!(log_filter("info").unwrap().would_enable("x", &Level::INFO));
        assert!(log_filter("vyoma=loud").is_err());
    }
}
