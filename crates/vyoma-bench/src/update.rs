//! `vyoma-bench update`: hot update of one app while another talks to it, hosted.
//!
//! - Swap latency: `update` of `echo` (a version whose component is already compiled) from
//!   the call to the new version's instance running, p50 and p99 over `--swaps`; beside it,
//!   what a user would otherwise do with the same app: `restart` (kill, start the new file).
//!   Then the same with a component never seen before (the update compiles it).
//! - IPC during swaps: app `ping` makes `--round-trips` round trips to `echo` and reports its
//!   median and 99th percentile (timed inside the guest), once with no update and once
//!   while `echo` is updated back and forth as fast as the supervisor will.
//! - Rollback: `echo` is updated to a version that traps at start; the time from the trap
//!   (the lifecycle event of the failed instance) to the previous version running again.
//!
//! Everything runs through the same supervisor and app store `vyoma run` uses; the store
//! is on this machine's disk (each update syncs it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vyoma_control::{UpdateOptions, UpdateSource};
use vyoma_lifecycle::{AppState, Event};
use vyoma_supervisor::{RealClock, Supervisor};

use crate::Exit;
use crate::common::{built_app, latency_row, us_field};

#[derive(clap::Args, Debug)]
pub(crate) struct BenchUpdateArgs {
    /// Updates (and restarts) timed.
    #[arg(long, default_value_t = 200)]
    pub(crate) swaps: usize,
    /// Updates with a component never compiled before.
    #[arg(long, default_value_t = 5)]
    pub(crate) compiles: usize,
    /// Round trips `ping` makes in each IPC run.
    #[arg(long, default_value_t = 50_000)]
    pub(crate) round_trips: usize,
    /// Rollbacks timed.
    #[arg(long, default_value_t = 20)]
    pub(crate) rollbacks: usize,
}

pub(crate) const ECHO_GRANTS: &str =
    "[capabilities.ipc]\nsend = [\"ping\"]\naccept = [\"ping\"]\n[update]\nprobation = \"0s\"\n";

pub(crate) fn manifest(name: &str, version: &str, component: &Path, tail: &str) -> String {
    format!(
        "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"{version}\"\ncomponent = \"{}\"\n{tail}",
        component.display()
    )
}

fn write(dir: &Path, text: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("app.toml"), text)?;
    Ok(dir.to_path_buf())
}

/// `wasm` with a custom section making it a component no cache has seen.
pub(crate) fn fresh_component(wasm: &[u8], n: usize) -> Vec<u8> {
    let name = b"vyoma-bench";
    let payload = format!("{n}-{:?}", Instant::now());
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload.as_bytes());
    let mut out = wasm.to_vec();
    out.push(0); // custom section
    let mut len = section.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&section);
    out
}

/// Waits until `app` runs an instance newer than `after`.
async fn running_after(sup: &Supervisor, app: &str, after: u64) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut events = sup.events();
    loop {
        let d = sup.detail(app)?;
        if d.status.state == AppState::Running && d.generation > after {
            return Ok(d.generation);
        }
        if Instant::now() > deadline {
            bail!("{app} never ran a new instance: {:?}", d.status);
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), events.recv()).await;
    }
}

async fn update(sup: &Supervisor, dir: PathBuf, force: bool) -> anyhow::Result<()> {
    sup.update(
        "echo",
        UpdateSource::Folder(dir),
        UpdateOptions { force, dry_run: false },
    )
    .await?;
    Ok(())
}

/// Times `n` swaps made by `swap`, each to the new instance running.
async fn time_swaps<F, Fut>(sup: &Supervisor, n: usize, mut swap: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let g = sup.detail("echo")?.generation;
        let t0 = Instant::now();
        swap(i).await?;
        running_after(sup, "echo", g).await?;
        out.push(t0.elapsed());
    }
    out.sort();
    Ok(out)
}

/// `ping`'s last result line, after it was restarted.
async fn ping_run(sup: &Supervisor) -> anyhow::Result<String> {
    let log = sup.log("ping")?;
    let (_, next) = log.since(0);
    sup.apply("ping", Event::Restart)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut changed = log.subscribe();
    loop {
        if let Some(l) = log.since(next).0.iter().find(|l| l.text.starts_with("rtt ")) {
            return Ok(l.text.clone());
        }
        if Instant::now() > deadline {
            bail!("ping never reported");
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), changed.changed()).await;
    }
}

pub(crate) async fn bench_update(args: BenchUpdateArgs) -> anyhow::Result<Exit> {
    let work = tempfile::tempdir()?;
    let apps = work.path().join("apps");
    let echo = built_app("echo")?;
    let ping = built_app("ping")?;
    let trapper = built_app("trapper")?;
    write(&apps.join("echo"), &manifest("echo", "0.1.0", &echo, ECHO_GRANTS))?;
    // ping waits to be restarted by the benchmark: its first run is a short warm-up.
    write(
        &apps.join("ping"),
        &manifest(
            "ping",
            "0.1.0",
            &ping,
            &format!(
                "args = [\"rtt\", \"echo\", \"{}\", \"16\"]\n[restart]\npolicy = \"never\"\n[capabilities.ipc]\nsend = [\"echo\"]\naccept = [\"echo\"]\n",
                args.round_trips
            ),
        ),
    )?;
    let versions: Vec<PathBuf> = (0..2)
        .map(|i| {
            write(
                &work.path().join(format!("v{i}")),
                &manifest("echo", &format!("0.{}.0", i + 2), &echo, ECHO_GRANTS),
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let config = vyoma_runtime::RuntimeConfig {
        cache_dir: vyoma_runtime::default_cache_dir(),
        ..vyoma_runtime::RuntimeConfig::default()
    };
    let mut booted = vyoma_supervisor::prepare(&apps, config, Arc::new(RealClock::default())).await?;
    booted.supervisor.open_store(&work.path().join("store")).await?;
    booted.start(None).await;
    let sup = booted.supervisor;
    running_after(&sup, "echo", 0).await?;

    // Swap latency, compiled; and a restart, for comparison.
    let swaps = time_swaps(&sup, args.swaps, |i| update(&sup, versions[i % 2].clone(), false)).await?;
    let restarts = time_swaps(&sup, args.swaps, |_| async {
        sup.apply("echo", Event::Restart)?;
        Ok(())
    })
    .await?;
    // With a component never compiled before.
    let wasm = std::fs::read(&echo)?;
    let compiled = time_swaps(&sup, args.compiles, |i| {
        let dir = work.path().join(format!("c{i}"));
        let bytes = fresh_component(&wasm, i);
        let sup = sup.clone();
        async move {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("echo.wasm"), bytes)?;
            write(&dir, &manifest("echo", "0.9.0", Path::new("echo.wasm"), ECHO_GRANTS))?;
            update(&sup, dir, false).await
        }
    })
    .await?;

    // IPC round trips, quiet and under swaps.
    let quiet = ping_run(&sup).await?;
    let swapping = {
        let sup2 = sup.clone();
        let versions = versions.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let swapper = tokio::spawn(async move {
            let mut n = 0usize;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                update(&sup2, versions[n % 2].clone(), false).await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
        let line = ping_run(&sup).await?;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = swapper.await.context("the swapping task")??;
        (line, n)
    };

    // Rollback: from the trap to the previous version running.
    let bad = write(
        &work.path().join("bad"),
        &manifest(
            "echo",
            "0.0.1",
            &trapper,
            "args = [\"unreachable\"]\n[capabilities.ipc]\nsend = [\"ping\"]\naccept = [\"ping\"]\n",
        ),
    )?;
    let mut rollbacks = Vec::new();
    for _ in 0..args.rollbacks {
        let mut events = sup.events();
        let g = sup.detail("echo")?.generation;
        update(&sup, bad.clone(), true).await?;
        let mut trapped = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let e = match tokio::time::timeout_at(deadline.into(), events.recv()).await {
                Ok(e) => e?,
                Err(_) => {
                    let (lines, _) = sup.log("echo")?.since(0);
                    let tail: Vec<String> = lines.iter().rev().take(12).rev().map(|l| l.text.clone()).collect();
                    bail!(
                        "no rollback of echo within a minute; its log ends:\n{}\n{:#?}",
                        tail.join("\n"),
                        sup.versions("echo")?
                    );
                }
            };
            if e.app != "echo" || e.generation <= g {
                continue;
            }
            if trapped.is_none() && matches!(e.to, AppState::Backoff | AppState::Failed) {
                trapped = Some(e.at);
            }
            if let (Some(t), AppState::Running) = (trapped, e.to)
                && e.generation > g + 1
            {
                rollbacks.push(e.at.duration_since(t).unwrap_or_default());
                break;
            }
        }
        running_after(&sup, "echo", g + 1).await?;
    }
    rollbacks.sort();
    sup.shutdown().await;

    println!("{}", crate::common::machine());
    println!();
    println!("| swap (call to new instance running) | n | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    println!("{}", latency_row("update, component compiled before", &swaps));
    println!(
        "{}",
        latency_row("restart of the same app (baseline: no update)", &restarts)
    );
    println!(
        "{}",
        latency_row("update, new component (compiled on the device)", &compiled)
    );
    println!(
        "{}",
        latency_row("rollback, trap to previous version running", &rollbacks)
    );
    println!();
    println!("| IPC round trip, 16 B, {} trips | median | p99 |", args.round_trips);
    println!("|---|---|---|");
    println!(
        "| no update | {} | {} |",
        us_field(&quiet, "median_ns")?,
        us_field(&quiet, "p99_ns")?
    );
    println!(
        "| while `echo` is updated back and forth ({} updates) | {} | {} |",
        swapping.1,
        us_field(&swapping.0, "median_ns")?,
        us_field(&swapping.0, "p99_ns")?
    );
    Ok(Exit::Ok)
}
