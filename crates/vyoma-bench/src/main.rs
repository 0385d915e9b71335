//! `vyoma-bench`: VyomaOS's benchmarks. Each measures the supervisor side by side, in the
//! same run, with what a user would run instead (one process per app, two processes on a
//! Unix socket, the same kernel with a trivial init), and prints Markdown tables for
//! `docs/PERFORMANCE.md`.
//!
//! - `apps`: start-up time and idle memory for N apps (`common`, `lone` for the baseline);
//! - `ipc`: round trips and one-way rate between two apps;
//! - `console`: `ps` latency while every app busy-loops;
//! - `api`: management API latency (`GET /v1/apps`, log follow) with many apps, quiet and
//!   busy, beside the supervisor's own work for the same answer;
//! - `http`: HTTP apps through the gateway against `wasmtime serve`, with 1 and 50 apps;
//! - `update`: hot update while another app talks to the one updated (hosted); and
//!   `update-image`: the same in the booted image, over its management API;
//! - `zoo`: wake-up latency of well-behaved apps next to hostile ones;
//! - `boot`: image size and boot time in QEMU;
//! - `languages`: per language, build, size, compile, start and memory of `vyoma new`'s
//!   apps, and many copies of one under each engine setting.
//!
//! Not here: anything the product runs. Timed assertions are not tests; the suite only
//! runs each benchmark at a small size to keep it working (`tests/bench.rs`).

mod api;
mod apps;
mod boot;
mod common;
mod console;
mod display;
mod http;
mod ipc;
mod languages;
mod lone;
mod update;
mod update_image;
mod zoo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes of `vyoma-bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Exit {
    /// Success.
    Ok = 0,
    /// Something went wrong.
    Error = 1,
}

#[derive(Parser, Debug)]
#[command(
    name = "vyoma-bench",
    version,
    about = "VyomaOS's benchmarks, each against its baseline"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start-up time and memory per app against one process per app.
    Apps(apps::BenchArgs),
    /// IPC between apps (round trip and one-way rate) against a Unix socket.
    Ipc(ipc::BenchIpcArgs),
    /// How long `ps` takes while every app busy-loops (console thread vs apps' runtime).
    Console(console::BenchConsoleArgs),
    /// Management API latency (`GET /v1/apps`, log follow) with many apps, quiet and busy.
    Api(api::BenchApiArgs),
    /// HTTP requests through the gateway against `wasmtime serve` on the same component.
    Http(http::BenchHttpArgs),
    /// Hot update of an app while another talks to it: swap and rollback time, IPC latency.
    Update(update::BenchUpdateArgs),
    /// The same in the booted image under QEMU, over the management API.
    UpdateImage(update_image::BenchUpdateImageArgs),
    /// Wake-up latency of well-behaved apps next to CPU hogs, against one process per app.
    Zoo(zoo::ZooArgs),
    /// Image size and boot time (default set and 200 apps) against a trivial init.
    Boot(boot::BenchBootArgs),
    /// Per language: build, size, compile, start and memory of `vyoma new`'s apps.
    Languages(languages::BenchLanguagesArgs),
    /// The compositor's CPU per frame: 16 animating apps and 200 idle, full and no damage.
    Display(display::BenchDisplayArgs),
    /// One supervisor run of `apps`, in a process of its own.
    #[command(hide = true)]
    AppsOne(apps::OneRunArgs),
    /// The native Unix-socket peer `ipc` compares with.
    #[command(hide = true)]
    UdsPeer {
        /// The socket to connect to.
        socket: PathBuf,
        /// `echo` or `sink`.
        mode: String,
        /// Message size in bytes.
        size: usize,
    },
    /// Run one app as a lone process: the process-per-app baseline.
    #[command(hide = true)]
    RunOne(lone::RunOneArgs),
}

/// The bundled example apps: `$VYOMA_APPS`, else `examples/default` in the source tree.
pub(crate) fn default_apps() -> PathBuf {
    std::env::var_os("VYOMA_APPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| vyoma_image::source_tree("examples/default"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VYOMA_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The lone runner is the baseline a user would run: one app, one thread.
    if let Cmd::RunOne(args) = &cli.command {
        return report(lone::run_one(args));
    }
    let rt = match vyoma_runtime::supervisor_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Error as u8);
        }
    };
    report(rt.block_on(async move {
        match cli.command {
            Cmd::Apps(args) => apps::bench(args).await,
            Cmd::AppsOne(args) => apps::apps_one(args).await,
            Cmd::Ipc(args) => ipc::bench_ipc(args).await,
            Cmd::Console(args) => console::bench_console(args).await,
            Cmd::Api(args) => api::bench_api(args).await,
            Cmd::Http(args) => http::bench_http(args).await,
            Cmd::Zoo(args) => zoo::bench_zoo(args).await,
            Cmd::Update(args) => update::bench_update(args).await,
            Cmd::UpdateImage(args) => update_image::bench_update_image(args).await,
            Cmd::Boot(args) => boot::bench_boot(args),
            Cmd::Languages(args) => languages::bench_languages(args),
            Cmd::Display(args) => display::bench_display(args).await,
            Cmd::UdsPeer { socket, mode, size } => ipc::uds_peer(&socket, &mode, size),
            Cmd::RunOne(_) => unreachable!("handled above"),
        }
    }))
}

fn report(result: anyhow::Result<Exit>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {}", vyoma_supervisor::console::terminal_safe(&format!("{e:#}")));
            ExitCode::from(Exit::Error as u8)
        }
    }
}
