//! `vyoma-bench console`: how long the operator waits for `ps` while every app busy-loops,
//! with the console on its own thread and runtime (as `vyoma run` and the image run it)
//! side by side with the console on the apps' runtime (how it ran before; since busy apps
//! moved to the batch lane, that runtime is quiet too). The operator's
//! side (writing `ps`, reading the table) runs on a quiet thread of its own in both, as a
//! terminal would.
//!
//! Figures are printed as Markdown for `docs/PERFORMANCE.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use vyoma_lifecycle::AppState;
use vyoma_runtime::RuntimeConfig;
use vyoma_supervisor::{RealClock, Supervisor, boot, console};

use crate::Exit;

#[derive(clap::Args, Debug)]
pub(crate) struct BenchConsoleArgs {
    /// Busy-looping apps (the bundled spinner).
    #[arg(long, default_value_t = 200)]
    apps: usize,
    /// `ps` requests timed per arrangement.
    #[arg(long, default_value_t = 100)]
    samples: usize,
}

/// Where the console session runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// A thread and current-thread runtime of its own (what VyomaOS does).
    OwnThread,
    /// A task on the apps' runtime.
    AppsRuntime,
}

/// Times `samples` `ps` requests, each until the table's last row (`last`) has arrived.
async fn measure(sup: &Supervisor, placement: Placement, samples: usize, last: &str) -> anyhow::Result<Vec<Duration>> {
    let (client, session) = tokio::io::duplex(1 << 20);
    let (session_in, session_out) = tokio::io::split(session);
    let (_int_tx, int_rx) = tokio::sync::mpsc::unbounded_channel();
    let sup2 = sup.clone();
    let run = async move { console::run(&sup2, BufReader::new(session_in), session_out, false, int_rx).await };
    let session_thread = match placement {
        Placement::OwnThread => Some(std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(run))
        })),
        Placement::AppsRuntime => {
            tokio::spawn(run);
            None
        }
    };
    let needle = format!("\n{last} ");
    let operator = std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let (mut rd, mut wr) = tokio::io::split(client);
            let mut out = Vec::with_capacity(samples);
            let mut buf = vec![0u8; 1 << 16];
            for _ in 0..samples {
                let mut seen = String::new();
                let t = Instant::now();
                wr.write_all(b"ps\n").await?;
                while !seen.contains(&needle) {
                    let n = rd.read(&mut buf).await?;
                    anyhow::ensure!(n > 0, "the console ended");
                    seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                out.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(out)
        })
    });
    let times = operator
        .join()
        .map_err(|_| anyhow::anyhow!("the operator thread panicked"))??;
    if let Some(t) = session_thread {
        // The operator's end is gone: the session sees end of input and returns.
        let _ = t.join();
    }
    Ok(times)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) async fn bench_console(args: BenchConsoleArgs) -> anyhow::Result<Exit> {
    let component = crate::default_apps().join("spinner/spinner.wasm");
    let component = component
        .canonicalize()
        .with_context(|| format!("{} not found; build the apps with `./dev apps`", component.display()))?;
    let work = tempfile::tempdir()?;
    let tail = "[limits]\nmemory = \"2 MiB\"\nlog_buffer = \"4 KiB\"\n";
    crate::common::write_app_set(work.path(), "s", args.apps, &component, tail)?;
    let config = RuntimeConfig {
        cache_dir: vyoma_runtime::default_cache_dir(),
        ..RuntimeConfig::default()
    };
    let booted = boot(work.path(), config, Arc::new(RealClock::default())).await?;
    let sup = booted.supervisor;
    anyhow::ensure!(
        sup.wait_for("all", AppState::Running, Duration::from_secs(120)).await?,
        "not every app reached running"
    );
    let last = format!("s{:04}", args.apps.saturating_sub(1));
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    println!("# vyoma-bench console\n");
    println!(
        "`ps` round trip (request written until the table's last row is read) with {} busy-looping apps on {} runtime workers, {} samples each; the operator's side runs on a quiet thread of its own.\n",
        args.apps, workers, args.samples
    );
    println!("| console session runs on | median | p90 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    for (label, placement) in [
        ("its own thread and runtime (VyomaOS)", Placement::OwnThread),
        ("the apps' runtime", Placement::AppsRuntime),
    ] {
        let mut t = measure(&sup, placement, args.samples, &last).await?;
        t.sort();
        let f = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {label} | {} | {} | {} | {} |",
            f(percentile(&t, 0.5)),
            f(percentile(&t, 0.9)),
            f(percentile(&t, 0.99)),
            f(t[t.len() - 1])
        );
    }
    sup.shutdown().await;
    Ok(Exit::Ok)
}
