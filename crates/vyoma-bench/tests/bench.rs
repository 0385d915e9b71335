//! The benchmarks run end to end at small sizes, so they keep working; their figures go to
//! docs/PERFORMANCE.md from full runs (`./dev bench`).

use std::process::Command;

use vyoma_testkit::shared_cache;

fn bench(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vyoma-bench"));
    c.args(args)
        .env("VYOMA_CACHE_DIR", shared_cache(env!("CARGO_TARGET_TMPDIR")))
        .env_remove("VYOMA_LOG");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The line of a benchmark's table that starts with `row`.
fn row_of<'a>(stdout: &'a str, row: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("no row {row}:\n{stdout}"))
}

/// The non-empty cells of a Markdown table row.
fn cells(line: &str) -> Vec<&str> {
    line.split('|').map(str::trim).filter(|c| !c.is_empty()).collect()
}

#[test]
fn bench_console_times_both_arrangements() {
    // Keeps `vyoma-bench console` working; the figures go to docs/PERFORMANCE.md.
    let out = bench(&["console", "--apps", "4", "--samples", "3"]).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for row in ["| its own thread and runtime (VyomaOS) |", "| the apps' runtime |"] {
        let line = row_of(&stdout, row);
        assert_eq!(line.matches(" ms").count(), 4, "{line}");
    }
}

#[test]
fn bench_api_times_every_row() {
    // Keeps `vyoma-bench api` working; the figures go to docs/PERFORMANCE.md.
    let out = bench(&["api", "--apps", "6", "--busy", "2", "--samples", "5", "--lines", "5"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("| 6 apps")).collect();
    assert_eq!(rows.len(), 8, "{stdout}");
    for r in rows {
        assert_eq!(r.matches(" ms |").count(), 3, "{r}");
    }
}

#[test]
fn bench_http_drives_the_gateway_and_prints_its_tables() {
    // Keeps `vyoma-bench http` working at a small size, without the `wasmtime serve`
    // baseline (building it takes minutes; `./dev bench` does); figures in PERFORMANCE.md.
    let out = bench(&[
        "http",
        "--duration",
        "1s",
        "--apps",
        "3",
        "--connections",
        "4",
        "--wasmtime",
        "none",
    ])
    .output()
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| VyomaOS gateway |"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for r in rows {
        let cells: Vec<&str> = r.split('|').map(str::trim).collect();
        let rate: f64 = cells[3].parse().unwrap();
        assert!(rate > 0.0, "{r}");
        assert_eq!(cells[8], "0", "no failed requests: {r}");
    }
    for routes in ["| 1 routes |", "| 4 routes |"] {
        assert!(stdout.contains(routes), "{stdout}");
    }
}

#[test]
fn bench_runs_end_to_end_and_prints_its_table() {
    // Keeps `vyoma-bench apps` working; the figures themselves go to docs/PERFORMANCE.md.
    let out = bench(&["apps", "--apps", "10", "--runs", "1", "--compare-cow"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("| apps | supervisor: all running (median of 1) |"),
        "{stdout}"
    );
    let row = row_of(&stdout, "| 10 |");
    let cells = cells(row);
    assert_eq!(cells.len(), 11, "{row}");
    assert!(
        cells[1].ends_with(" ms") && cells[8].ends_with(" ms") && cells[10].ends_with('x'),
        "{row}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("| 10 (CoW images) |")), "{stdout}");
}

#[test]
fn bench_ipc_runs_both_sides_and_prints_its_table() {
    // Keeps `vyoma-bench ipc` working; the figures themselves go to docs/PERFORMANCE.md.
    let out = bench(&[
        "ipc",
        "--round-trips",
        "200",
        "--messages",
        "2000",
        "--runs",
        "1",
        "--pairs",
        "3",
        "--pair-messages",
        "500",
    ])
    .output()
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for row in [
        "| round trip, median |",
        "| round trip, p99 |",
        "| one way, 16 B messages |",
        "| one way, 16 B messages, 64 per call / write / channel message |",
    ] {
        let line = row_of(&stdout, row);
        let cells = cells(line);
        // The supervisor with shards, without (the scheduling before), the socket, the
        // channel, the ratio.
        assert_eq!(cells.len(), 6, "{line}");
        let unit = if row.contains("one way") { " M msg/s" } else { " µs" };
        assert!(cells[1..5].iter().all(|c| c.ends_with(unit)), "{line}");
    }
    for pairs in ["1", "3"] {
        let line = row_of(&stdout, &format!("| {pairs} |"));
        let cells = cells(line);
        assert_eq!(cells.len(), 7, "{line}");
        assert!([1, 3, 5].iter().all(|&i| cells[i].ends_with(" M msg/s")), "{line}");
        assert!(
            cells[2].parse::<f64>().is_ok() && cells[4].parse::<f64>().is_ok(),
            "{line}"
        );
    }
}

#[test]
fn zoo_runs_every_arrangement_and_prints_its_table() {
    let out = bench(&["zoo", "--quiet", "3", "--busy", "1", "--chatty", "1", "--secs", "1"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for row in [
        "| supervisor, metronomes alone (control) |",
        "| supervisor, with the hogs (VyomaOS: two lanes) |",
        "| supervisor, with the hogs, one lane (before) |",
        "| process per app, metronomes alone |",
        "| process per app, with the hogs (Linux's scheduler) |",
    ] {
        let line = row_of(&stdout, row);
        let cells = cells(line);
        assert_eq!(cells.len(), 6, "{line}");
        assert!(cells[1..4].iter().all(|c| c.ends_with(" ms")), "{line}");
        // Every metronome ticked in the window: 3 metronomes, 10 ticks a second.
        let measured: usize = cells[4].split(" / ").next().unwrap().parse().unwrap();
        assert!(measured > 0, "{line}");
    }
}

#[test]
fn bench_boot_boots_every_image_and_prints_its_tables() {
    // Keeps `vyoma-bench boot` working (real boots in QEMU, one of each image); the figures
    // go to docs/PERFORMANCE.md.
    // The kernel is cached in the user's cache folder (built once, as by the image tests),
    // not in the tests' compile cache.
    let out = bench(&["boot", "--runs", "1", "--apps", "3"])
        .env_remove("VYOMA_CACHE_DIR")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for row in [
        "| default set (10 apps) |",
        "| tickers (3 apps) |",
        "| trivial init (`trivial init: up`) |",
        "| default set with the network (virtio-net, DHCP) and the API forwarded |",
        "| 3 apps |",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(row)), "no row {row}:\n{stdout}");
    }
}

#[test]
fn bench_update_times_swaps_rollbacks_and_ipc() {
    // Keeps `vyoma-bench update` working; the figures go to docs/PERFORMANCE.md.
    let out = bench(&[
        "update",
        "--swaps",
        "5",
        "--compiles",
        "1",
        "--round-trips",
        "2000",
        "--rollbacks",
        "2",
    ])
    .output()
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for row in [
        "| update, component compiled before | 5 |",
        "| restart of the same app (baseline: no update) | 5 |",
        "| update, new component (compiled on the device) | 1 |",
        "| rollback, trap to previous version running | 2 |",
    ] {
        let line = row_of(&stdout, row);
        assert_eq!(line.matches(" ms |").count(), 3, "{line}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("| no update | ") && l.ends_with(" us |")),
        "{stdout}"
    );
    assert!(
        stdout.contains("| while `echo` is updated back and forth ("),
        "{stdout}"
    );
}

#[test]
fn bench_update_image_updates_the_booted_image_over_its_api() {
    // Keeps `vyoma-bench update-image` working (one boot in QEMU, the fewest updates that
    // fill every row); the figures go to docs/PERFORMANCE.md. The kernel is cached in the
    // user's cache folder, as for `boot`.
    let out = bench(&[
        "update-image",
        "--swaps",
        "2",
        "--compiles",
        "1",
        "--round-trips",
        "500",
        "--rollbacks",
        "1",
    ])
    .env_remove("VYOMA_CACHE_DIR")
    .output()
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for row in [
        "| update, component compiled before: swap in the guest (`swap_us`) | 2 |",
        "| the same, the operator's `vyoma update` (upload, API call) until the app runs again | 2 |",
        "| restart of the same app over the API (baseline: no update) | 2 |",
        "| update, new component: upload, compile on the device, store, swap (operator's view) | 1 |",
        "| the same, swap in the guest (`swap_us`) | 1 |",
        "| rollback, trap to previous version running (log times, 1 ms resolution) | 1 |",
    ] {
        let line = row_of(&stdout, row);
        assert_eq!(line.matches(" ms |").count(), 3, "{line}");
    }
    for row in [
        "| no update | ",
        "| while `echo` is updated back and forth over the API (",
    ] {
        let line = row_of(&stdout, row);
        assert!(line.ends_with(" us |"), "{line}");
    }
}

#[test]
fn bench_languages_makes_builds_and_measures_each_language() {
    // Keeps `vyoma-bench languages` working (one language; tests/languages.rs in vyoma-cli
    // builds and runs every one).
    let out = bench(&["languages", "--langs", "c", "--copies", "2", "--runs", "1"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let line = row_of(&stdout, "| c | ");
    assert!(line.ends_with(" ms |") && line.contains(" MiB |"), "{line}");
    for engine in [
        "pool, data copied",
        "pool, CoW images",
        "no pool, data copied",
        "one process per copy",
    ] {
        let line = row_of(&stdout, &format!("| c | {engine} |"));
        assert!(line.contains(" ms |") && line.contains(" KiB"), "{line}");
    }
    // Only the report on stdout: the builds' own output went to stderr.
    assert!(!stdout.contains("wrote "), "{stdout}");
}

#[test]
fn display_times_the_compositor_and_prints_its_table() {
    let out = bench(&[
        "display",
        "--frames",
        "20",
        "--animating",
        "4",
        "--idle",
        "10",
        "--seconds",
        "1",
    ])
    .output()
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for row in [
        "| compositor, full damage: presents + compose |",
        "| compositor, no damage: compose |",
        "| floor: one copy of a whole frame |",
    ] {
        let line = row_of(&stdout, row);
        let cells = cells(line);
        assert_eq!(cells.len(), 4, "{line}");
        assert!(cells[1].ends_with(" µs") && cells[3].ends_with('%'), "{line}");
    }
    assert!(stdout.contains("the idle apps' surfaces hold 0 bytes"), "{stdout}");
    // End to end: real apps animate on a real display, and input reaches them.
    for row in [
        "| animating, whole surface every frame |",
        "| animating, their box only |",
        "| no damage (animations stopped) |",
    ] {
        let line = row_of(&stdout, row);
        let cells = cells(line);
        assert_eq!(cells.len(), 7, "{line}");
        assert!(cells[2].ends_with('%') && cells[3].ends_with('%'), "{line}");
        // Every arrangement's pointer events were taken by the app they were for.
        assert!(cells[6].ends_with(')') && !cells[6].starts_with('-'), "{line}");
    }
    let animating: f64 = cells(row_of(&stdout, "| animating, whole surface every frame |"))[1]
        .parse()
        .unwrap();
    assert!(animating > 0.0, "the animation showed no frames:\n{stdout}");
    let idle: f64 = cells(row_of(&stdout, "| no damage (animations stopped) |"))[1]
        .parse()
        .unwrap();
    assert!(
        idle < animating,
        "stopping the animations did not stop the frames:\n{stdout}"
    );
}
