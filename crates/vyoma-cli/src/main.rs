//! `vyoma`: the VyomaOS command. `vyoma run [DIR]` runs the supervisor with its operator
//! console and management API (hosted mode); `vyoma check DIR|FILE` validates apps without
//! running them; `vyoma image build` and `vyoma boot` make and run the bootable image;
//! `vyoma ps`, `vyoma logf APP`, ... operate running instances through their management
//! APIs (`--endpoint`); `vyoma new`, `vyoma build` and `vyoma bindings` make apps from
//! source. The benchmarks are a binary of their own, `vyoma-bench`.
//!
//! This binary only parses arguments, sets up logging and the terminal, and maps errors to
//! exit codes; the work is in the library crates.

mod build;
mod check;
mod image;
mod remote;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vyoma_runtime::{PoolingChoice, RuntimeConfig};
use vyoma_supervisor::console;

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

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct RuntimeArgs {
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
    /// How instances get their memory's initial data: `copy`, `cow` (copy-on-write
    /// images), or `auto`: images when an app's component is 4 MiB or more (Python,
    /// JavaScript), which start and fit many copies better (docs/PERFORMANCE.md).
    #[arg(long, value_name = "auto|copy|cow", default_value = "auto")]
    memory_images: vyoma_runtime::MemoryImages,
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
            memory_images: self.memory_images,
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
        /// Build the apps first (their manifests' `[build]`); nothing runs if a build fails.
        #[arg(long)]
        build: bool,
        #[command(flatten)]
        runtime: RuntimeArgs,
        #[command(flatten)]
        services: run::Services,
    },
    /// Validate manifests and components without running them.
    Check {
        /// A folder of app folders, one app folder, or one app.toml.
        path: Option<PathBuf>,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Make a new app folder (manifest, source, build command) that builds and runs as it is.
    New(build::NewArgs),
    /// Run the `[build]` command of every app in PATH (default: the bundled example apps).
    Build {
        /// A folder of app folders, one app folder, or one app.toml.
        path: Option<PathBuf>,
        /// Only this app.
        #[arg(long)]
        app: Option<String>,
    },
    /// Write the files LANG's toolchain needs to use VyomaOS's interfaces (c: bindings and
    /// helpers; python, js: the WIT) into DIR.
    Bindings {
        /// c, python or js.
        lang: vyoma_build::Lang,
        /// The folder to write them in.
        dir: PathBuf,
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
    let rt = match vyoma_runtime::supervisor_runtime() {
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
                build,
                runtime,
                services,
            } => {
                let dir = dir.unwrap_or_else(default_apps);
                if build {
                    build::build_first(&dir)?;
                }
                run::run(dir, no_console, &runtime, &services, cli.config).await
            }
            Cmd::New(args) => build::new(&args),
            Cmd::Build { path, app } => build::build(&path.unwrap_or_else(default_apps), app.as_deref()),
            Cmd::Bindings { lang, dir } => build::bindings(lang, &dir),
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
