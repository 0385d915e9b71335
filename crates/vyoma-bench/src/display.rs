//! `vyoma-bench display`: what the display costs (issue 12's benchmark), in two parts.
//!
//! End to end (first): a real supervisor on a headless 1280x800 display driven by its own
//! clock, 16 `bounce` apps animating in tiles (each presents its whole surface every
//! frame, paced by frame events) beside 200 idle `bounce still` apps (a surface drawn
//! once, not shown). It reports the frames shown per second, the compositor's share of a
//! core (the time its ticks took), the whole process's (apps included), the frame interval
//! and its jitter (distance from the 60 Hz period), and input latency (the operator's
//! pointer events, from their arrival at the display to the app taking them); then with
//! the animations presenting only their box, and with them stopped (no damage at all).
//!
//! The compositor alone (second, below):
//! A 1280x800 screen in a tile layout of 16 animating apps (each redraws its whole
//! surface every frame and presents it), next to 200 idle apps with surfaces that are not
//! shown. Per frame it times what the compositor does, presents and composing the damaged
//! regions into the screen's frame, and turns the median into a share of one core at 60
//! frames a second; then the same with no damage (nothing presented). Beside them, as the
//! floor of redrawing everything, one copy of a whole 1280x800 frame. The copy of the apps'
//! frames into their surfaces is timed apart: in VyomaOS it runs in each app's host calls.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use vyoma_display::{Compositor, Display, Input, Layout, Phase, Size};
use vyoma_lifecycle::AppState;
use vyoma_supervisor::Supervisor;

use crate::Exit;
use crate::common::{built_app, percentile, process_cpu, write_app_set};

#[derive(clap::Args, Debug)]
pub(crate) struct BenchDisplayArgs {
    /// Frames measured per arrangement.
    #[arg(long, default_value_t = 600)]
    frames: usize,
    /// Animating apps (shown, in tiles).
    #[arg(long, default_value_t = 16)]
    animating: usize,
    /// Idle apps (with surfaces, not shown).
    #[arg(long, default_value_t = 200)]
    idle: usize,
    /// Seconds measured per arrangement of the end-to-end part (0: skip it).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

const SCREEN: Size = Size::new(1280, 800);

fn pct(d: Duration) -> String {
    format!("{:.1}%", d.as_secs_f64() * 60.0 * 100.0)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort_unstable();
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

pub(crate) async fn bench_display(args: BenchDisplayArgs) -> anyhow::Result<Exit> {
    if args.frames < 10 || args.animating == 0 {
        bail!("--frames must be at least 10 and --animating at least 1");
    }
    println!("# vyoma-bench display\n");
    println!("{}\n", crate::common::machine());
    if args.seconds > 0 {
        end_to_end(&args).await?;
    }
    compositor_alone(&args)
}

/// What one arrangement measured.
struct Measured {
    what: &'static str,
    wall: Duration,
    stats: vyoma_display::Stats,
    process: Duration,
}

impl Measured {
    fn row(&self) -> String {
        let secs = self.wall.as_secs_f64();
        let share = |d: Duration| format!("{:.1}%", d.as_secs_f64() * 100.0 / secs);
        let mut intervals: Vec<Duration> = self.stats.intervals.iter().copied().collect();
        intervals.sort_unstable();
        let period = vyoma_display::server::DEFAULT_PERIOD;
        let mut jitter: Vec<Duration> = intervals.iter().map(|i| i.abs_diff(period)).collect();
        jitter.sort_unstable();
        let mut input: Vec<Duration> = self.stats.input_latency.iter().copied().collect();
        input.sort_unstable();
        let p = |v: &[Duration], q: f64, f: &dyn Fn(Duration) -> String| {
            if v.is_empty() {
                "-".to_string()
            } else {
                f(percentile(v, q))
            }
        };
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
        format!(
            "| {} | {:.1} | {} | {} | {} / {} | {} | {} / {} ({}) |",
            self.what,
            self.stats.frames as f64 / secs,
            share(self.stats.composing),
            share(self.process),
            p(&intervals, 0.5, &ms),
            p(&intervals, 0.99, &ms),
            p(&jitter, 0.99, &ms),
            p(&input, 0.5, &us),
            p(&input, 0.99, &us),
            input.len()
        )
    }
}

/// Runs the display for `seconds` while the operator moves the pointer over `target` every
/// 10 ms, and says what it measured.
async fn measure(what: &'static str, d: &Display, target: &str, seconds: u64) -> anyhow::Result<Measured> {
    d.reset_stats();
    let pid = std::process::id();
    let (cpu0, t0) = (process_cpu(pid), Instant::now());
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut x = 0;
    while t0.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        x = (x + 7) % 200;
        d.inject(
            target,
            Input::Pointer {
                x,
                y: 10,
                phase: Phase::Move,
                button: 0,
            },
        )?;
    }
    Ok(Measured {
        what,
        wall: t0.elapsed(),
        stats: d.stats(),
        process: process_cpu(pid).saturating_sub(cpu0),
    })
}

/// `animating` bounce apps in `mode` shown in tiles, `idle` still ones hidden, on a
/// headless display with its clock running; every app running and drawn.
async fn kiosk(dir: &Path, args: &BenchDisplayArgs, mode: &str) -> anyhow::Result<(Supervisor, Arc<Display>)> {
    let bounce = built_app("bounce")?;
    let grant = |max: &str| {
        format!(
            "[limits]\nmemory = \"32 MiB\"\nlog_buffer = \"4 KiB\"\n[capabilities]\ndisplay = {{ max = \"{max}\" }}\ninput = [\"pointer\"]\n"
        )
    };
    write_app_set(
        dir,
        "anim",
        args.animating,
        &bounce,
        &format!("args = [\"{mode}\"]\n{}", grant("1280x800")),
    )?;
    // Idle apps keep small surfaces: a hidden app's surface is the size of its grant.
    write_app_set(
        dir,
        "idle",
        args.idle,
        &bounce,
        &format!("args = [\"still\"]\n{}", grant("320x200")),
    )?;
    let config = vyoma_runtime::RuntimeConfig {
        cache_dir: vyoma_runtime::default_cache_dir(),
        ..vyoma_runtime::RuntimeConfig::default()
    };
    let clock = Arc::new(vyoma_supervisor::RealClock::default());
    let mut booted = vyoma_supervisor::prepare(dir, config, clock).await?;
    let shown: Vec<String> = (0..args.animating).map(|i| format!("anim{i:04}")).collect();
    let d = Display::new("headless", SCREEN, Layout::Tiles(shown), true);
    booted.supervisor.show_on(d.clone());
    d.start_clock(Box::new(vyoma_display::backend::Headless::default()));
    booted.start(None).await;
    let sup = booted.supervisor;
    anyhow::ensure!(
        sup.wait_for("all", AppState::Running, Duration::from_secs(300)).await?,
        "not every app reached running"
    );
    // Every app has drawn once (its surface allocated) before anything is measured.
    let t0 = Instant::now();
    while d.status().apps.iter().any(|a| a.surface.is_none()) {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(120),
            "some app never made its surface"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok((sup, d))
}

async fn end_to_end(args: &BenchDisplayArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for mode in ["full", "box"] {
        let work = tempfile::tempdir()?;
        let (sup, d) = kiosk(work.path(), args, mode)
            .await
            .with_context(|| format!("the {mode} set"))?;
        let what = if mode == "full" {
            "animating, whole surface every frame"
        } else {
            "animating, their box only"
        };
        rows.push(measure(what, &d, "anim0000", args.seconds).await?);
        if mode == "box" {
            // Stop the animations: nothing changes on the screen any more.
            for i in 0..args.animating {
                sup.stop(&format!("anim{i:04}"))?;
            }
            sup.wait_for("anim0000", AppState::Stopped, Duration::from_secs(30))
                .await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            rows.push(measure("no damage (animations stopped)", &d, "idle0000", args.seconds).await?);
        }
        sup.shutdown().await;
    }
    println!(
        "## End to end: {} `bounce` apps in tiles and {} idle ones on a headless {SCREEN} display, its clock at 60 Hz; {} s each; the operator moves the pointer over one app every 10 ms\n",
        args.animating, args.idle, args.seconds
    );
    println!(
        "| arrangement | frames/s | compositor (one core) | whole process (one core) | frame interval p50 / p99 | jitter p99 | input latency p50 / p99 (samples) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!("{}", r.row());
    }
    println!(
        "\nCompositor: the time the display's ticks took (composing damaged regions, answering frames). Whole process: the supervisor and every app's wasm, as the kernel counts it. Jitter: how far each interval between shown frames is from 16.67 ms. Input latency: from the event's arrival at the display to the app taking it (`get-event`).\n"
    );
    Ok(())
}

fn compositor_alone(args: &BenchDisplayArgs) -> anyhow::Result<Exit> {
    let shown: Vec<String> = (0..args.animating).map(|i| format!("anim{i:02}")).collect();
    let mut c = Compositor::new(SCREEN, Layout::Tiles(shown.clone()), true);
    let mut sizes = Vec::new();
    for a in &shown {
        c.add_app(a);
    }
    for i in 0..args.idle {
        let a = format!("idle{i:03}");
        c.add_app(&a);
        c.create_surface(&a, SCREEN, SCREEN, &a)?;
    }
    // Each animating surface exactly fills its tile's inside.
    for (a, tile) in c.tiles() {
        let size = Size::new(tile.w - 4, tile.h - 4);
        c.create_surface(&a, size, SCREEN, &a)?;
        sizes.push((a, size));
    }
    c.compose();

    let mut pixels: Vec<Vec<u32>> = sizes.iter().map(|(_, s)| vec![0; s.area() as usize]).collect();
    let (mut draw, mut full, mut none) = (vec![], vec![], vec![]);
    for f in 0..args.frames {
        // The apps: a bar sweeping across each surface, painted in the app (not timed),
        // then handed to the display (timed: the copy into the surface).
        for ((_, size), px) in sizes.iter().zip(&mut pixels) {
            for (i, p) in px.iter_mut().enumerate() {
                let x = (i as u32) % size.w;
                *p = if (x + f as u32 * 4) % size.w < 16 {
                    0x00ff_ffff
                } else {
                    0x0010_2030 + x
                };
            }
        }
        let t0 = Instant::now();
        for ((a, size), px) in sizes.iter().zip(&pixels) {
            c.draw(a, size.rect(), px)?;
        }
        draw.push(t0.elapsed());
        // The compositor: presents and the frame.
        let t0 = Instant::now();
        for (a, size) in &sizes {
            c.present(a, &[size.rect()])?;
        }
        let damaged = c.compose();
        full.push(t0.elapsed());
        std::hint::black_box(damaged);
        let t0 = Instant::now();
        let damaged = c.compose();
        none.push(t0.elapsed());
        if !damaged.is_empty() {
            bail!("a frame with nothing presented redrew {damaged:?}");
        }
    }
    let mut frame = vec![0u32; SCREEN.area() as usize];
    let src = c.frame().pixels.clone();
    let mut copy = vec![];
    for _ in 0..args.frames {
        let t0 = Instant::now();
        frame.copy_from_slice(std::hint::black_box(&src));
        copy.push(t0.elapsed());
    }
    std::hint::black_box(&frame);
    let held: u64 = (0..args.idle).map(|i| c.surface_bytes(&format!("idle{i:03}"))).sum();

    println!(
        "## The compositor alone: {SCREEN} screen, {} animating apps in tiles (full-surface damage every frame), {} idle apps with surfaces not shown; {} frames; one thread\n",
        args.animating, args.idle, args.frames
    );
    println!("| per frame | median | p99 | one core at 60 fps (median) |");
    println!("|---|---:|---:|---:|");
    for (what, v) in [
        ("compositor, full damage: presents + compose", full),
        ("compositor, no damage: compose", none),
        (
            "the apps' draws: copying their frames into their surfaces (in their host calls)",
            draw,
        ),
        ("floor: one copy of a whole frame", copy),
    ] {
        let (p50, p99) = stats(v);
        println!("| {what} | {} | {} | {} |", us(p50), us(p99), pct(p50));
    }
    let covered: u64 = sizes.iter().map(|(_, s)| s.area()).sum();
    println!(
        "\nThe animating surfaces cover {:.0}% of the screen; the idle apps' surfaces hold {held} bytes (allocated at the first draw, which idle apps never made).",
        covered as f64 * 100.0 / SCREEN.area() as f64
    );
    Ok(Exit::Ok)
}
