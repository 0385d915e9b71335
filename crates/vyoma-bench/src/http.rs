//! `vyoma-bench http`: HTTP apps through VyomaOS's gateway against `wasmtime serve` 48 on
//! the same component (`hello-http`), the same machine, the same run, with one real load
//! generator (`wrk`, Debian's) driving both: requests per second and latency percentiles,
//! with 1 and with 50 HTTP apps loaded (the request always goes to one of them; the others
//! make the routing table and the pool what a real device has). Also the router alone: the
//! time to pick the app for a request among 1 and 51 routes.
//!
//! `wasmtime serve` is what a user would run for one such component: `-S cli` gives the
//! component the `wasi:cli` imports wstd uses; it picks the pooling allocator itself, and
//! makes a fresh instance per request, as VyomaOS does.
//!
//! Figures are printed as Markdown for `docs/PERFORMANCE.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Exit;
use crate::common::{boot_running, built_app, machine, percentile};

/// The Wasmtime release the baseline runs: the one VyomaOS is built on.
pub(crate) const WASMTIME_VERSION: &str = "48.0.8";

#[derive(clap::Args, Debug)]
pub(crate) struct BenchHttpArgs {
    /// How long wrk drives each row.
    #[arg(long, default_value = "10s")]
    duration: humantime::Duration,
    /// wrk's open connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// HTTP apps loaded in the second arrangement.
    #[arg(long, default_value_t = 50)]
    apps: usize,
    /// The `wasmtime` binary of the baseline [default: the one `./dev bench` installs,
    /// ~/.cache/vyoma/tools/wasmtime-48.0.8/bin/wasmtime]; `none` skips the baseline.
    #[arg(long, value_name = "PATH|none")]
    wasmtime: Option<String>,
}

/// What wrk measured for one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Load {
    pub(crate) requests_per_sec: f64,
    pub(crate) p50: Duration,
    pub(crate) p90: Duration,
    pub(crate) p99: Duration,
    pub(crate) requests: u64,
    pub(crate) bad: u64,
}

/// Reads wrk's `--latency` report.
pub(crate) fn parse_wrk(out: &str) -> anyhow::Result<Load> {
    let mut load = Load {
        requests_per_sec: 0.0,
        p50: Duration::ZERO,
        p90: Duration::ZERO,
        p99: Duration::ZERO,
        requests: 0,
        bad: 0,
    };
    let mut seen = 0;
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", t] => (load.p50, seen) = (wrk_time(t)?, seen + 1),
            ["90%", t] => (load.p90, seen) = (wrk_time(t)?, seen + 1),
            ["99%", t] => (load.p99, seen) = (wrk_time(t)?, seen + 1),
            ["Requests/sec:", n] => (load.requests_per_sec, seen) = (n.parse()?, seen + 1),
            [n, "requests", "in", ..] => load.requests = n.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => load.bad += n.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                for w in rest.iter().map(|w| w.trim_end_matches(',')) {
                    if let Ok(n) = w.parse::<u64>() {
                        load.bad += n;
                    }
                }
            }
            _ => {}
        }
    }
    anyhow::ensure!(seen == 4, "wrk's report lacks percentiles or a rate:\n{out}");
    Ok(load)
}

/// `812.00us`, `1.20ms`, `2.00s`.
fn wrk_time(t: &str) -> anyhow::Result<Duration> {
    let (n, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| t.split_at(i))
        .ok_or_else(|| anyhow::anyhow!("no unit in wrk time `{t}`"))?;
    let n: f64 = n.parse()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => anyhow::bail!("unknown unit in wrk time `{t}`"),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Runs wrk against `url` and reads its report.
fn wrk(url: &str, args: &BenchHttpArgs) -> anyhow::Result<Load> {
    let secs = args.duration.as_secs().max(1);
    let o = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{}", args.connections),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run wrk ({e}): install it (`apt-get install wrk`; ./dev bench does)"))?;
    anyhow::ensure!(o.status.success(), "wrk failed: {}", String::from_utf8_lossy(&o.stderr));
    parse_wrk(&String::from_utf8_lossy(&o.stdout))
}

/// Waits until `url` answers 200.
async fn ready(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status() == 200
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{url} never answered 200");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn row(server: &str, apps: usize, l: &Load, base: Option<&Load>) {
    let ratio = base.map_or("-".into(), |b| {
        format!("{:.0}%", 100.0 * l.requests_per_sec / b.requests_per_sec)
    });
    println!(
        "| {server} | {apps} | {:.0} | {ratio} | {} | {} | {} | {} |",
        l.requests_per_sec,
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        l.bad
    );
}

/// The folder of `n` copies of hello-http, each routed under `/aN/`, plus `hello` routed
/// at `/hello` (the one the load goes to).
fn write_set(root: &Path, n: usize, component: &Path) -> anyhow::Result<()> {
    let manifest = |name: &str, routes: &str| {
        format!(
            "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"{}\"\n[http]\nroutes = [{routes}]\nmax_in_flight = 64\n",
            component.display()
        )
    };
    for i in 1..n {
        let dir = root.join(format!("a{i}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("app.toml"),
            manifest(&format!("a{i}"), &format!("{{ path = \"/a{i}/...\" }}")),
        )?;
    }
    let dir = root.join("hello");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("app.toml"), manifest("hello", "{ path = \"/hello\" }"))?;
    Ok(())
}

/// The gateway over `apps` HTTP apps: its URL for `/hello`.
async fn vyoma(
    root: &Path,
    apps: usize,
    component: &Path,
) -> anyhow::Result<(vyoma_supervisor::Supervisor, vyoma_http::Listening)> {
    write_set(root, apps, component)?;
    let sup = boot_running(root).await?;
    let l = sup
        .gateway()
        .listen(tokio::net::TcpListener::bind("127.0.0.1:0").await?)?;
    Ok((sup, l))
}

/// `wasmtime serve` on a free port: the child and its URL for `/hello`.
async fn wasmtime_serve(bin: &Path, component: &Path) -> anyhow::Result<(std::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(bin)
        .args(["serve", "-S", "cli", "--addr", &format!("127.0.0.1:{port}")])
        .arg(component)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", bin.display()))?;
    let url = format!("http://127.0.0.1:{port}/hello");
    ready(&url).await?;
    Ok((child, url))
}

/// The default place `./dev bench` installs the baseline.
pub(crate) fn default_wasmtime() -> Option<PathBuf> {
    vyoma_runtime::default_cache_dir().map(|d| d.join(format!("tools/wasmtime-{WASMTIME_VERSION}/bin/wasmtime")))
}

fn wasmtime_version(bin: &Path) -> anyhow::Result<String> {
    let o = Command::new(bin).arg("--version").output()?;
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Nanoseconds per `Router::find` over `routes` routes, median of 21 rounds.
fn route_ns(routes: usize) -> f64 {
    use vyoma_manifest::{Route, RoutePattern};
    let mut table: Vec<(Route, String)> = (1..routes)
        .map(|i| {
            (
                Route {
                    path: RoutePattern::parse(&format!("/a{i}/...")).expect("a valid route"),
                    host: None,
                },
                format!("a{i}"),
            )
        })
        .collect();
    table.push((
        Route {
            path: RoutePattern::parse("/hello").expect("a valid route"),
            host: None,
        },
        "hello".into(),
    ));
    let router = vyoma_http::Router::new(table);
    let n = 20_000;
    let mut rounds: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                std::hint::black_box(router.find(std::hint::black_box("device.local"), std::hint::black_box("/hello")));
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    percentile(&rounds, 0.5)
}

pub(crate) async fn bench_http(args: BenchHttpArgs) -> anyhow::Result<Exit> {
    let component = built_app("hello-http")?;
    let baseline = match args.wasmtime.as_deref() {
        Some("none") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => default_wasmtime(),
    };
    if let Some(b) = &baseline {
        anyhow::ensure!(
            b.is_file(),
            "{} is missing: install wasmtime-cli {WASMTIME_VERSION} there (./dev bench does: cargo install --locked wasmtime-cli --version {WASMTIME_VERSION} --root ...), or pass --wasmtime PATH or --wasmtime none",
            b.display()
        );
    }
    println!("# vyoma-bench http: {}", machine());
    println!(
        "load: wrk, 1 thread, {} connections, {} per row, GET /hello of the hello-http component (wstd); baseline: {}",
        args.connections,
        humantime::format_duration(*args.duration),
        match &baseline {
            Some(b) => format!("`wasmtime serve -S cli` ({})", wasmtime_version(b)?),
            None => "none (--wasmtime none)".into(),
        }
    );
    println!();
    println!("| server | HTTP apps loaded | requests/s | of wasmtime serve | p50 | p90 | p99 | errors |");
    println!("|---|---|---|---|---|---|---|---|");
    let base = match &baseline {
        Some(bin) => {
            let (mut child, url) = wasmtime_serve(bin, &component).await?;
            let l = tokio::task::block_in_place(|| wrk(&url, &args));
            let _ = child.kill();
            let _ = child.wait();
            let l = l?;
            row("wasmtime serve", 1, &l, None);
            Some(l)
        }
        None => None,
    };
    for apps in [1, args.apps.max(1)] {
        let dir = tempfile::tempdir()?;
        let (sup, listening) = vyoma(dir.path(), apps, &component).await?;
        let url = format!("http://{}/hello", listening.addr());
        ready(&url).await?;
        let l = tokio::task::block_in_place(|| wrk(&url, &args))?;
        row("VyomaOS gateway", apps, &l, base.as_ref());
        let counts = sup.gateway().counts("hello").unwrap_or_default();
        anyhow::ensure!(
            counts.errors == 0,
            "the hello app had {} failed requests:\n{}",
            counts.errors,
            sup.log("hello")
                .map(|l| l
                    .since(0)
                    .0
                    .iter()
                    .map(|x| x.text.clone())
                    .collect::<Vec<_>>()
                    .join("\n"))
                .unwrap_or_default()
        );
        listening.shutdown(Duration::from_secs(5)).await;
        sup.shutdown().await;
    }
    println!();
    println!("| routing table | time to pick the app (median) |");
    println!("|---|---|");
    for routes in [1, args.apps.max(1) + 1] {
        println!("| {routes} routes | {:.0} ns |", route_ns(routes));
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read() {
        let out = "Running 2s test @ http://127.0.0.1:8080/hello
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  500.00us  12.00ms   90.00%
    Req/Sec    15.20k     1.00k   16.00k    80.00%
  Latency Distribution
     50%  812.00us
     75%    1.50ms
     90%    2.20ms
     99%    5.10ms
  30400 requests in 2.00s, 3.50MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  15200.50
Transfer/sec:      1.75MB
";
        let l = parse_wrk(out).unwrap();
        assert_eq!(l.requests_per_sec, 15200.5);
        assert_eq!(l.p50, Duration::from_micros(812));
        assert_eq!(l.p90, Duration::from_micros(2200));
        assert_eq!(l.p99, Duration::from_micros(5100));
        assert_eq!((l.requests, l.bad), (30400, 3));
        assert!(parse_wrk("nothing").is_err());
    }
}
