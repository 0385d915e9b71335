//! `vyoma-bench zoo`: how late well-behaved apps wake while hostile apps hog the CPU.
//!
//! The well-behaved apps are metronomes: each sleeps until the next tick of a fixed
//! 100 ms schedule and prints how late it woke (measured inside the guest with the
//! monotonic clock). The hogs are busy loops (the spinner) and apps that write stdout as
//! fast as they can (chatty). Every arrangement runs the same apps for the same window
//! after a warm-up, in one run:
//!
//! - the metronomes alone under one supervisor (the control);
//! - metronomes and hogs under one supervisor, as VyomaOS runs them (two lanes);
//! - the same with one lane (how VyomaOS ran them before the batch lane);
//! - the metronomes alone, one process each (`run-one`, what a user would run instead);
//! - metronomes and hogs, one process each, under Linux's scheduler.
//!
//! Reported: lateness p50, p99 and max over every tick of every metronome in the window,
//! and how much CPU the hogs got meanwhile (so a scheduler that starved them would show).

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use vyoma_lifecycle::{AppState, Stream};
use vyoma_runtime::{RuntimeConfig, Scheduling};
use vyoma_supervisor::{RealClock, boot};

use crate::Exit;
use crate::common::{built_app, end_all, percentile, process_cpu, write_app_set};

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ZooArgs {
    /// Well-behaved apps (metronomes).
    #[arg(long, default_value_t = 150)]
    quiet: usize,
    /// Busy-looping apps.
    #[arg(long, default_value_t = 10)]
    busy: usize,
    /// Apps writing stdout as fast as they can.
    #[arg(long, default_value_t = 10)]
    chatty: usize,
    /// Seconds measured per arrangement (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Skip the process-per-app arrangements.
    #[arg(long)]
    no_baseline: bool,
}

/// The metronomes' schedule.
const INTERVAL_MS: u64 = 100;
const WARM_UP: Duration = Duration::from_secs(2);

/// One arrangement's figures: the metronomes' lateness samples in microseconds (sorted),
/// and the CPU the hogs got in the window, in cores.
struct Outcome {
    late: Vec<u64>,
    hog_cores: f64,
}

impl Outcome {
    fn new(mut late: Vec<u64>, hog_cpu: Duration, window: Duration) -> anyhow::Result<Outcome> {
        if late.is_empty() {
            bail!("no metronome ticked in the window");
        }
        late.sort_unstable();
        Ok(Outcome {
            late,
            hog_cores: hog_cpu.as_secs_f64() / window.as_secs_f64(),
        })
    }

    fn row(&self, name: &str, expected: usize) -> String {
        let ms = |us: u64| format!("{:.1} ms", us as f64 / 1e3);
        format!(
            "| {name} | {} | {} | {} | {} / {expected} | {:.2} |",
            ms(percentile(&self.late, 0.5)),
            ms(percentile(&self.late, 0.99)),
            ms(*self.late.last().expect("not empty")),
            self.late.len(),
            self.hog_cores
        )
    }
}

/// CPU time of the supervisor's hogs (apps not named `m…`).
fn hog_cpu(sup: &vyoma_supervisor::Supervisor) -> Duration {
    sup.status()
        .iter()
        .filter(|s| !s.name.starts_with('m'))
        .map(|s| s.cpu)
        .sum()
}

/// The three kinds of app, written into `dir` as `m0000`.., `b0000`.., `c0000`...
fn write_zoo(dir: &Path, args: &ZooArgs, hogs: bool) -> anyhow::Result<()> {
    let small = "[limits]\nmemory = \"4 MiB\"\n";
    write_app_set(
        dir,
        "m",
        args.quiet,
        &built_app("metronome")?,
        &format!("args = [\"{INTERVAL_MS}\"]\n{small}log_buffer = \"64 KiB\"\n"),
    )?;
    if hogs {
        write_app_set(dir, "b", args.busy, &built_app("spinner")?, small)?;
        write_app_set(dir, "c", args.chatty, &built_app("chatty")?, small)?;
    }
    Ok(())
}

fn parse_late(text: &str) -> Option<u64> {
    text.strip_prefix("late ")?.trim().parse().ok()
}

/// One supervisor with the apps in `dir`; the metronomes' lateness in the window.
async fn supervisor(dir: &Path, cache: &Path, scheduling: Scheduling, args: &ZooArgs) -> anyhow::Result<Outcome> {
    let config = RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        scheduling,
        ..RuntimeConfig::default()
    };
    let booted = boot(dir, config, Arc::new(RealClock::default()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sup = booted.supervisor;
    if !sup.wait_for("all", AppState::Running, Duration::from_secs(120)).await? {
        sup.shutdown().await;
        bail!("not every app reached running within 120 s");
    }
    tokio::time::sleep(WARM_UP).await;
    let (from, cpu_from, t0) = (SystemTime::now(), hog_cpu(&sup), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    let (to, cpu_to, window) = (SystemTime::now(), hog_cpu(&sup), t0.elapsed());
    let mut samples = Vec::new();
    for i in 0..args.quiet {
        let log = sup.log(&format!("m{i:04}"))?;
        let (lines, _) = log.since(0);
        samples.extend(
            lines
                .iter()
                .filter(|l| l.stream == Stream::Stdout && l.at >= from && l.at < to)
                .filter_map(|l| parse_late(&l.text)),
        );
    }
    sup.shutdown().await;
    Outcome::new(samples, cpu_to.saturating_sub(cpu_from), window)
}

/// One process per app (`run-one`); the metronomes' lateness in the window.
fn processes(dir: &Path, cache: &Path, args: &ZooArgs, hogs: bool) -> anyhow::Result<Outcome> {
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = Vec::new();
    let result = (|| {
        let spawn = |name: String, echo: bool| -> anyhow::Result<Child> {
            let mut c = Command::new(&exe);
            c.arg("run-one").arg(dir.join(&name)).env("VYOMA_CACHE_DIR", cache);
            if echo {
                c.arg("--echo").stdout(Stdio::piped());
            } else {
                c.stdout(Stdio::null());
            }
            c.stdin(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting the process for {name}"))
        };
        if hogs {
            for i in 0..args.busy {
                children.push(spawn(format!("b{i:04}"), false)?);
            }
            for i in 0..args.chatty {
                children.push(spawn(format!("c{i:04}"), false)?);
            }
        }
        // One reader thread per metronome, recording when each line arrived.
        let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        for i in 0..args.quiet {
            let mut child = spawn(format!("m{i:04}"), true)?;
            let out = child.stdout.take().expect("piped");
            children.push(child);
            let samples = samples.clone();
            let first = first_tx.clone();
            std::thread::spawn(move || {
                let mut told = false;
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if !told {
                        let _ = first.send(());
                        told = true;
                    }
                    if let Some(late) = parse_late(&line) {
                        samples.lock().expect("no reader panics").push((Instant::now(), late));
                    }
                }
            });
        }
        drop(first_tx);
        for _ in 0..args.quiet {
            first_rx
                .recv_timeout(Duration::from_secs(120))
                .context("a metronome process did not tick within 120 s")?;
        }
        std::thread::sleep(WARM_UP);
        let hogs = &children[..if hogs { args.busy + args.chatty } else { 0 }];
        let hog_cpu = || hogs.iter().map(|c| process_cpu(c.id())).sum::<Duration>();
        let (from, cpu_from) = (Instant::now(), hog_cpu());
        std::thread::sleep(Duration::from_secs(args.secs));
        let (to, cpu_to) = (Instant::now(), hog_cpu());
        let v = samples
            .lock()
            .expect("no reader panics")
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, l)| *l)
            .collect();
        Outcome::new(v, cpu_to.saturating_sub(cpu_from), to - from)
    })();
    end_all(&mut children);
    result
}

pub(crate) async fn bench_zoo(args: ZooArgs) -> anyhow::Result<Exit> {
    let work = tempfile::tempdir()?;
    let cache = work.path().join("cache");
    let (quiet_dir, zoo_dir) = (work.path().join("quiet"), work.path().join("zoo"));
    write_zoo(&quiet_dir, &args, false)?;
    write_zoo(&zoo_dir, &args, true)?;
    println!("# vyoma-bench zoo\n");
    println!("{}\n", crate::common::machine());
    println!(
        "{} metronomes (a tick every {INTERVAL_MS} ms), {} busy loops, {} apps writing stdout flat out; \
         {} s measured after a {} s warm-up per arrangement. Lateness: how long after its tick a metronome ran.\n",
        args.quiet,
        args.busy,
        args.chatty,
        args.secs,
        WARM_UP.as_secs()
    );
    // Compile every component into the cache before anything is timed.
    {
        let warm = work.path().join("warm");
        let one = ZooArgs {
            quiet: 1,
            busy: 1,
            chatty: 1,
            secs: 0,
            no_baseline: true,
        };
        write_zoo(&warm, &one, true)?;
        let config = RuntimeConfig {
            cache_dir: Some(cache.clone()),
            ..RuntimeConfig::default()
        };
        let booted = boot(&warm, config, Arc::new(RealClock::default()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        booted.supervisor.shutdown().await;
    }
    let expected = args.quiet * (args.secs * 1000 / INTERVAL_MS) as usize;
    println!("| arrangement | lateness p50 | p99 | max | ticks measured / due | hogs' CPU (cores) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let lanes = Scheduling::default();
    let one_lane = match lanes {
        Scheduling::Shared { slice, shards, .. } => Scheduling::Shared {
            slice,
            shards,
            batch_threads: 0,
        },
        Scheduling::Alone => Scheduling::Alone,
    };
    let rows: [(&str, &Path, Scheduling); 3] = [
        ("supervisor, metronomes alone (control)", &quiet_dir, lanes),
        ("supervisor, with the hogs (VyomaOS: two lanes)", &zoo_dir, lanes),
        ("supervisor, with the hogs, one lane (before)", &zoo_dir, one_lane),
    ];
    for (name, dir, scheduling) in rows {
        let l = supervisor(dir, &cache, scheduling, &args).await?;
        println!("{}", l.row(name, expected));
    }
    if !args.no_baseline {
        for (name, hogs) in [
            ("process per app, metronomes alone", false),
            ("process per app, with the hogs (Linux's scheduler)", true),
        ] {
            let dir = if hogs { &zoo_dir } else { &quiet_dir };
            let (dir, cache) = (dir.clone(), cache.clone());
            let a = args.clone();
            let l = tokio::task::spawn_blocking(move || processes(&dir, &cache, &a, hogs)).await??;
            println!("{}", l.row(name, expected));
        }
    }
    Ok(Exit::Ok)
}
