//! `vyoma-bench display`: the compositor's own cost per frame (issue 12's benchmark, the
//! part that exists: the pure compositor, without a backend or apps' host calls).
//!
//! A 1280x800 screen in a tile layout of 16 animating apps (each redraws its whole
//! surface every frame and presents it), next to 200 idle apps with surfaces that are not
//! shown. Per frame it times what the compositor does, presents and composing the damaged
//! regions into the screen's frame, and turns the median into a share of one core at 60
//! frames a second; then the same with no damage (nothing presented). Beside them, as the
//! floor of redrawing everything, one copy of a whole 1280x800 frame. The copy of the apps'
//! frames into their surfaces is timed apart: in VyomaOS it runs in each app's host calls.

use std::time::{Duration, Instant};

use anyhow::bail;
use vyoma_display::{Compositor, Layout, Size};

use crate::Exit;
use crate::common::percentile;

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

pub(crate) fn bench_display(args: BenchDisplayArgs) -> anyhow::Result<Exit> {
    if args.frames < 10 || args.animating == 0 {
        bail!("--frames must be at least 10 and --animating at least 1");
    }
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

    println!("# vyoma-bench display\n");
    println!("{}\n", crate::common::machine());
    println!(
        "{SCREEN} screen, {} animating apps in tiles (full-surface damage every frame), {} idle apps with surfaces not shown; {} frames; one thread\n",
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
