//! `vyoma-bench apps`: how fast N apps reach `running` under one supervisor, and what each idle
//! app costs in memory, side by side with starting the same component N times as separate
//! processes (`vyoma-bench run-one`, a minimal `wasmtime run`: own engine, one thread, no
//! preemption, component loaded from the same warm compile cache).
//!
//! Each supervisor run is a fresh process (`vyoma-bench apps-one`), so its resident-memory
//! delta is not flattered by heap pages an earlier run freed. Memory is read once every
//! app has printed its first line (each ticker then sleeps), on both sides. The baseline
//! is run `--runs` times too, and its median reported.
//!
//! Figures are printed as Markdown for `docs/PERFORMANCE.md`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vyoma_lifecycle::AppState;
use vyoma_runtime::{MemoryImages, PoolingChoice, RuntimeConfig};
use vyoma_supervisor::{RealClock, boot};

use crate::Exit;
use crate::common::{end_all, field, first_stdout_line, kib, ms, proc_kib, rss_bytes, write_apps};

#[derive(clap::Args, Debug)]
pub(crate) struct BenchArgs {
    /// App counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "200,1000")]
    apps: Vec<usize>,
    /// The component every app runs [default: the bundled ticker].
    #[arg(long)]
    component: Option<PathBuf>,
    /// Supervisor runs per app count (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Skip the process-per-app baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Also measure the supervisor with copy-on-write memory images, side by side.
    #[arg(long)]
    compare_cow: bool,
}

pub(crate) struct SupervisorRun {
    manifests: Duration,
    engine: Duration,
    load: Duration,
    start: Duration,
    pub(crate) total: Duration,
    pub(crate) rss_per_app: u64,
    pub(crate) linear_per_app: u64,
}

/// How the engine of one supervisor run is set up.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EngineChoice {
    /// Copy-on-write memory images instead of copying data segments.
    pub(crate) cow: bool,
    /// No pooling allocator.
    pub(crate) no_pooling: bool,
}

impl SupervisorRun {
    /// The supervisor's cells of a table row.
    fn cells(&self) -> String {
        [
            ms(self.total),
            ms(self.manifests),
            ms(self.engine),
            ms(self.load),
            ms(self.start),
            kib(self.rss_per_app),
            kib(self.linear_per_app),
        ]
        .join(" | ")
    }
}

/// `vyoma-bench apps-one`: one supervisor run, in a process of its own.
#[derive(clap::Args, Debug)]
pub(crate) struct OneRunArgs {
    /// The folder of app folders.
    dir: PathBuf,
    /// Its app count.
    #[arg(long)]
    apps: usize,
    /// The compile cache.
    #[arg(long)]
    cache: PathBuf,
    /// Copy-on-write memory images.
    #[arg(long)]
    cow: bool,
    /// No pooling allocator.
    #[arg(long)]
    no_pooling: bool,
}

impl SupervisorRun {
    fn line(&self) -> String {
        format!(
            "apps total_ns={} manifests_ns={} engine_ns={} load_ns={} start_ns={} rss_per_app={} linear_per_app={}",
            self.total.as_nanos(),
            self.manifests.as_nanos(),
            self.engine.as_nanos(),
            self.load.as_nanos(),
            self.start.as_nanos(),
            self.rss_per_app,
            self.linear_per_app
        )
    }

    fn parse(line: &str) -> anyhow::Result<SupervisorRun> {
        let d = |k| field(line, k).map(Duration::from_nanos);
        Ok(SupervisorRun {
            total: d("total_ns")?,
            manifests: d("manifests_ns")?,
            engine: d("engine_ns")?,
            load: d("load_ns")?,
            start: d("start_ns")?,
            rss_per_app: field(line, "rss_per_app")?,
            linear_per_app: field(line, "linear_per_app")?,
        })
    }
}

/// The child side: measures one supervisor run and prints its result line.
pub(crate) async fn apps_one(args: OneRunArgs) -> anyhow::Result<Exit> {
    let engine = EngineChoice {
        cow: args.cow,
        no_pooling: args.no_pooling,
    };
    let r = supervisor_run(&args.dir, args.apps, &args.cache, engine).await?;
    println!("{}", r.line());
    Ok(Exit::Ok)
}

/// One supervisor run in a fresh process.
pub(crate) fn fresh_supervisor_run(
    dir: &Path,
    n: usize,
    cache: &Path,
    engine: EngineChoice,
) -> anyhow::Result<SupervisorRun> {
    let mut c = Command::new(std::env::current_exe()?);
    c.arg("apps-one")
        .arg(dir)
        .arg("--apps")
        .arg(n.to_string())
        .arg("--cache")
        .arg(cache);
    if engine.cow {
        c.arg("--cow");
    }
    if engine.no_pooling {
        c.arg("--no-pooling");
    }
    let out = c.stderr(Stdio::inherit()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("a supervisor run failed ({}): {text}", out.status);
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("apps "))
        .with_context(|| format!("no result line from the supervisor run: {text}"))?;
    SupervisorRun::parse(line)
}

/// Waits until every app of `sup` has printed a line (each ticker then sleeps).
async fn first_lines(sup: &vyoma_supervisor::Supervisor) -> anyhow::Result<()> {
    for name in sup.names() {
        let log = sup.log(&name)?;
        let printed = tokio::time::timeout(Duration::from_secs(120), first_stdout_line(&log)).await;
        if printed.is_err() {
            bail!("{name} printed nothing within 120 s");
        }
    }
    Ok(())
}

pub(crate) struct BaselineRun {
    pub(crate) total: Duration,
    pub(crate) pss_per_process: u64,
}

async fn supervisor_run(dir: &Path, n: usize, cache: &Path, engine: EngineChoice) -> anyhow::Result<SupervisorRun> {
    let config = RuntimeConfig {
        capacity: 64,
        pooling: if engine.no_pooling {
            PoolingChoice::Off
        } else {
            PoolingChoice::Auto
        },
        cache_dir: Some(cache.to_path_buf()),
        memory_images: if engine.cow {
            MemoryImages::Cow
        } else {
            MemoryImages::Copy
        },
        ..RuntimeConfig::default()
    };
    let rss_before = rss_bytes();
    // Exactly what `vyoma run` does, then wait until every app is running.
    let t0 = Instant::now();
    let booted = boot(dir, config, Arc::new(RealClock::default()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sup = booted.supervisor;
    if let Some((app, e)) = booted.load_failures.first() {
        bail!("app {app} failed to load: {e}");
    }
    if !sup.wait_for("all", AppState::Running, Duration::from_secs(120)).await? {
        bail!("not all {n} apps reached running within 120 s");
    }
    let total = t0.elapsed();
    // Once every app has printed its first line (and is asleep), measure. The delta since
    // before `boot` also holds the engine's and the manifests' fixed cost, so divided by N
    // it is an upper bound on what one idle app costs.
    first_lines(&sup).await?;
    let rss_after = rss_bytes();
    let linear: u64 = sup.status().iter().filter_map(|s| s.memory).sum();
    sup.shutdown().await;
    let t = booted.timings;
    Ok(SupervisorRun {
        manifests: t.manifests,
        engine: t.engine.saturating_sub(t.manifests),
        load: t.loaded.saturating_sub(t.engine),
        start: total.saturating_sub(t.loaded),
        total,
        rss_per_app: rss_after.saturating_sub(rss_before) / n as u64,
        linear_per_app: linear / n as u64,
    })
}

pub(crate) fn baseline_run(dir: &Path, n: usize, cache: &Path) -> anyhow::Result<BaselineRun> {
    let exe = std::env::current_exe()?;
    let (mut reader, writer) = std::io::pipe()?;
    let mut children: Vec<Child> = Vec::with_capacity(n);
    let t0 = Instant::now();
    let mut spawn_err = None;
    for i in 0..n {
        let spawned = Command::new(&exe)
            .arg("run-one")
            .arg(dir.join(format!("t{i:04}")))
            .env("VYOMA_CACHE_DIR", cache)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(c) => children.push(c),
            Err(e) => {
                spawn_err = Some(e);
                break;
            }
        }
    }
    drop(writer);
    let result = (|| {
        if let Some(e) = spawn_err {
            bail!("spawning baseline process {} failed: {e}", children.len());
        }
        // Each process writes `r` once its instance is running, and `l` once the app has
        // printed its first line (and is asleep).
        let (mut running, mut printed, mut total) = (0, 0, None);
        let mut buf = [0u8; 4096];
        while printed < n {
            let got = reader.read(&mut buf)?;
            if got == 0 {
                bail!("a baseline process ended early");
            }
            for b in &buf[..got] {
                match b {
                    b'r' => running += 1,
                    b'l' => printed += 1,
                    _ => {}
                }
            }
            if running == n && total.is_none() {
                total = Some(t0.elapsed());
            }
        }
        let total = total.context("every process printed before all were running")?;
        let pss: u64 = children
            .iter()
            .map(|c| proc_kib(&format!("/proc/{}/smaps_rollup", c.id()), "Pss:"))
            .sum();
        Ok(BaselineRun {
            total,
            pss_per_process: pss / n as u64,
        })
    })();
    end_all(&mut children);
    result
}

const COW: EngineChoice = EngineChoice {
    cow: true,
    no_pooling: false,
};

pub(crate) async fn bench(args: BenchArgs) -> anyhow::Result<Exit> {
    let component = args
        .component
        .clone()
        .unwrap_or_else(|| crate::default_apps().join("ticker/ticker.wasm"));
    let component = component.canonicalize().with_context(|| {
        format!(
            "component {} not found; build the apps with `./dev apps`",
            component.display()
        )
    })?;
    let work = tempfile::tempdir()?;
    let cache = work.path().join("cache");
    println!("# vyoma-bench apps\n");
    println!(
        "component: {} ({} bytes)",
        component.display(),
        std::fs::metadata(&component)?.len()
    );
    println!("{}\n", crate::common::machine());
    // Warm the compile cache for both engine configurations, outside any timed region.
    {
        let one = work.path().join("warm");
        write_apps(&one, 1, &component)?;
        fresh_supervisor_run(&one, 1, &cache, EngineChoice::default())?;
        fresh_supervisor_run(&one, 1, &cache, COW)?;
        if !args.no_baseline {
            baseline_run(&one, 1, &cache)?;
        }
    }
    println!(
        "| apps | supervisor: all running (median of {}) | manifests | engine+pool | load | instantiate+run | RSS per idle app | linear memory per app | process per app: all running (median of {}) | PSS per process | speed-up |",
        args.runs,
        if args.no_baseline { 0 } else { args.runs }
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &args.apps {
        let dir = work.path().join(format!("apps-{n}"));
        write_apps(&dir, n, &component)?;
        // Interleave the variants so drift on the machine affects both alike.
        let mut runs = Vec::new();
        let mut cow_runs = Vec::new();
        let mut baselines = Vec::new();
        for _ in 0..args.runs.max(1) {
            runs.push(fresh_supervisor_run(&dir, n, &cache, EngineChoice::default())?);
            if args.compare_cow {
                cow_runs.push(fresh_supervisor_run(&dir, n, &cache, COW)?);
            }
            if !args.no_baseline {
                baselines.push(baseline_run(&dir, n, &cache)?);
            }
        }
        runs.sort_by_key(|r| r.total);
        cow_runs.sort_by_key(|r| r.total);
        let s = &runs[runs.len() / 2];
        if let Some(c) = cow_runs.get(cow_runs.len() / 2) {
            println!("| {n} (CoW images) | {} | - | - | - |", c.cells());
        }
        baselines.sort_by_key(|b| b.total);
        let (b_total, b_pss, speedup) = match baselines.get(baselines.len() / 2) {
            None => ("-".to_string(), "-".to_string(), "-".to_string()),
            Some(b) => (
                ms(b.total),
                kib(b.pss_per_process),
                format!("{:.0}x", b.total.as_secs_f64() / s.total.as_secs_f64()),
            ),
        };
        println!("| {n} | {} | {b_total} | {b_pss} | {speedup} |", s.cells());
    }
    Ok(Exit::Ok)
}
