//! `vyoma-bench languages`: what an app costs in each language VyomaOS has templates for.
//!
//! The apps are `vyoma new`'s own hello and IPC apps, made and built in a fresh folder the
//! way a user makes them (`vyoma-build`, the toolchains `./dev toolchains` installs). Per
//! language: the build's time (a first build: for Rust it compiles the SDK's dependencies
//! too), the hello component's size, its compile time with an empty cache, its load time
//! from a warm cache, and the IPC app's start alone (a fresh supervisor process, warm
//! cache, until it runs). Then `--copies` copies of the IPC app (each prints one line and
//! waits in `recv`) under one supervisor: time until all run and memory per idle app,
//! with data segments copied into each instance, with copy-on-write memory images (what
//! `--memory-images auto` picks for components of 4 MiB or more), and without the pooling
//! allocator; beside one process per copy (the `apps`
//! bench's baseline). Python and JavaScript components carry an interpreter and its
//! initialised heap (megabytes of data segments), which is what the engine settings act on.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vyoma_build::{Lang, NewApp, Toolchains};
use vyoma_manifest::Manifest;
use vyoma_runtime::{PoolingChoice, Runtime, RuntimeConfig};

use crate::Exit;
use crate::apps::{EngineChoice, baseline_run, fresh_supervisor_run};
use crate::common::{kib, ms, write_app_set};

#[derive(clap::Args, Debug)]
pub(crate) struct BenchLanguagesArgs {
    /// Languages to measure.
    #[arg(long, value_delimiter = ',', default_value = "rust,c,python,js")]
    langs: Vec<String>,
    /// Copies of each IPC app run at once.
    #[arg(long, default_value_t = 100)]
    copies: usize,
    /// Runs per configuration (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Skip the process-per-copy baseline.
    #[arg(long)]
    no_baseline: bool,
}

/// The engine variants the copies run with, and how the table names them.
const ENGINES: [(&str, EngineChoice); 3] = [
    (
        "pool, data copied",
        EngineChoice {
            cow: false,
            no_pooling: false,
        },
    ),
    (
        "pool, CoW images",
        EngineChoice {
            cow: true,
            no_pooling: false,
        },
    ),
    (
        "no pool, data copied",
        EngineChoice {
            cow: false,
            no_pooling: true,
        },
    ),
];

struct Built {
    lang: Lang,
    hello: PathBuf,
    ipc: PathBuf,
    build: Duration,
}

/// Makes and builds `lang`'s hello and IPC apps under `root`.
fn make(root: &Path, lang: Lang, tools: &Toolchains) -> anyhow::Result<Built> {
    let sdk = vyoma_image::source_tree("apps/vyoma-sdk");
    let mut build = Duration::ZERO;
    let mut components = Vec::new();
    for ipc in [false, true] {
        let name = format!("{lang}-{}", if ipc { "ipc" } else { "hello" });
        vyoma_build::new_app(&NewApp {
            parent: root,
            name: &name,
            lang,
            ipc,
            rust_sdk: &sdk,
        })?;
        let m = Manifest::load(&root.join(&name)).map_err(|d| anyhow::anyhow!("{d}"))?;
        let r =
            vyoma_build::build_app(&m, tools, vyoma_build::Echo::Stderr)?.context("a template without a [build]")?;
        build += r.elapsed;
        components.push(r.component);
    }
    Ok(Built {
        lang,
        ipc: components.pop().expect("two builds"),
        hello: components.pop().expect("two builds"),
        build,
    })
}

/// How long loading `component` takes with the compile cache in `cache`.
fn load_time(component: &Path, cache: &Path) -> anyhow::Result<Duration> {
    let rt = Runtime::new(&RuntimeConfig {
        capacity: 4,
        pooling: PoolingChoice::Off,
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })?;
    let t = Instant::now();
    rt.load(component)?;
    Ok(t.elapsed())
}

/// Runs `run` `times` times (at least once); the run in the middle by `key`.
fn median_run<T>(
    times: usize,
    mut run: impl FnMut() -> anyhow::Result<T>,
    key: impl Fn(&T) -> Duration,
) -> anyhow::Result<T> {
    let mut runs = (0..times.max(1)).map(|_| run()).collect::<anyhow::Result<Vec<T>>>()?;
    runs.sort_by_key(|r| key(r));
    Ok(runs.swap_remove(runs.len() / 2))
}

pub(crate) fn bench_languages(args: BenchLanguagesArgs) -> anyhow::Result<Exit> {
    let langs = args
        .langs
        .iter()
        .map(|l| l.parse::<Lang>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<Lang>>>()?;
    // `vyoma bindings` in the build commands: the `vyoma` built beside this binary.
    let exe = std::env::current_exe()?;
    let vyoma = exe.with_file_name("vyoma");
    if !vyoma.is_file() {
        bail!(
            "{} is missing: build it too (`cargo build --release -p vyoma-cli`)",
            vyoma.display()
        );
    }
    let tools = Toolchains::find(Some(&vyoma), Toolchains::default_root().as_deref());
    let work = tempfile::tempdir()?;
    println!("# vyoma-bench languages\n");
    println!("{}\n", crate::common::machine());
    println!(
        "The apps `vyoma new --lang L` and `vyoma new --lang L --ipc` make, built in a fresh folder. \
         Build: both apps' first build (Rust's includes the SDK's dependencies). Compile: the hello \
         component with an empty cache (C: adapted from preview 1 first); load: from the warm cache. \
         Start: the IPC app alone under a fresh supervisor process (warm cache) until it runs.\n"
    );
    println!("| language | build (both apps) | hello component | compile, cold | load, warm | IPC app: start alone |");
    println!("|---|---:|---:|---:|---:|---:|");
    let cache = work.path().join("cache");
    let mut built = Vec::new();
    for &lang in &langs {
        let b = make(&work.path().join("src"), lang, &tools)?;
        let size = std::fs::metadata(&b.hello)?.len();
        let cold = load_time(&b.hello, &work.path().join(format!("cold-{lang}")))?;
        load_time(&b.hello, &cache)?;
        let warm = load_time(&b.hello, &cache)?;
        let one = work.path().join(format!("one-{lang}"));
        write_app_set(&one, "t", 1, &b.ipc, &tail(lang))?;
        fresh_supervisor_run(&one, 1, &cache, EngineChoice::default())?;
        let start = median_run(
            args.runs,
            || fresh_supervisor_run(&one, 1, &cache, EngineChoice::default()),
            |r| r.total,
        )?
        .total;
        println!(
            "| {lang} | {:.1} s | {:.1} MiB | {} | {} | {} |",
            b.build.as_secs_f64(),
            size as f64 / (1024.0 * 1024.0),
            ms(cold),
            ms(warm),
            ms(start)
        );
        built.push(b);
    }
    let n = args.copies;
    println!(
        "\n{n} copies of each IPC app, each idle in `recv` after printing its line (median of {} runs, \
         each a fresh process). RSS per app: the supervisor's resident growth divided by {n} (an upper \
         bound); PSS per process: the baseline's proportional set size.\n",
        args.runs
    );
    println!("| language | engine | all running | RSS per idle app | linear memory per app |");
    println!("|---|---|---:|---:|---:|");
    for b in &built {
        let dir = work.path().join(format!("copies-{}", b.lang));
        write_app_set(&dir, "t", n, &b.ipc, &tail(b.lang))?;
        for (what, engine) in ENGINES {
            fresh_supervisor_run(&dir.join("t0000"), 1, &cache, engine)?;
            let r = median_run(args.runs, || fresh_supervisor_run(&dir, n, &cache, engine), |r| r.total)?;
            println!(
                "| {} | {what} | {} | {} | {} |",
                b.lang,
                ms(r.total),
                kib(r.rss_per_app),
                kib(r.linear_per_app)
            );
        }
        if !args.no_baseline {
            let r = median_run(args.runs, || baseline_run(&dir, n, &cache), |r| r.total)?;
            println!(
                "| {} | one process per copy | {} | {} PSS | - |",
                b.lang,
                ms(r.total),
                kib(r.pss_per_process)
            );
        }
    }
    Ok(Exit::Ok)
}

/// The manifest of one copy: the template's memory limit, IPC from anyone.
fn tail(lang: Lang) -> String {
    let memory = lang.memory_limit();
    format!("[limits]\nmemory = \"{memory}\"\nlog_buffer = \"4 KiB\"\n[capabilities.ipc]\naccept = [\"*\"]\n")
}
