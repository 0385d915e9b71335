//! `vyoma-bench ipc`: IPC between two apps through the supervisor, side by side with two
//! native processes talking over a Unix domain socket, in the same run.
//!
//! - Round trip: app `ping` sends SIZE bytes to app `echo`, which sends them back; `ping`
//!   times each trip with the monotonic clock inside the guest (after a warm-up of a
//!   tenth as many trips) and prints the median and 99th percentile. The baseline does
//!   the same between this process and a child process over a `UnixStream`, one
//!   `write` and one `read` per message on each side.
//! - One way: `ping` sends N messages of SIZE bytes to app `sink` (waiting only when its
//!   inbox is full), then asks `sink` for its count; the figure is N over the time until
//!   that answer. The baseline writes N messages (one `write` each) to a child that reads
//!   them with a 64 KiB buffer and answers with its count.
//! - Both again between two threads of this process over `std::sync::mpsc` channels (a
//!   fresh `Vec` per message; one way over a channel bounded at 256 messages): what two
//!   parts of one native program would do, with no isolation at all.
//! - One way in batches of BATCH messages: `ping` sends with `send-many` and `sink` takes
//!   with `recv-many`; the socket baseline writes BATCH messages per `write`, the channel
//!   baseline sends a `Vec` of BATCH messages per channel message.
//!
//! - Many pairs at once: PAIRS `ping`s each flooding its own `sink` with M messages
//!   (per-message `send`), all in one supervisor; the aggregate is every message over the
//!   time from boot to the last `ping`'s answer, with the CPU the supervisor used meanwhile
//!   (in cores). Beside it one pair alone moving the same PAIRS x M messages, and the same
//!   two arrangements of a thread here writing to its own child process over a Unix socket.
//!
//! Both sides run real code end to end: real components in the same supervisor `vyoma run`
//! uses, and real processes and sockets. Figures are printed as Markdown.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vyoma_lifecycle::AppState;
use vyoma_runtime::{RuntimeConfig, Scheduling};
use vyoma_supervisor::{RealClock, boot};

use crate::Exit;
use crate::common::field;

#[derive(clap::Args, Debug)]
pub(crate) struct BenchIpcArgs {
    /// Round trips per run.
    #[arg(long, default_value_t = 20_000)]
    round_trips: usize,
    /// Messages per one-way run.
    #[arg(long, default_value_t = 1_000_000)]
    messages: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 16)]
    size: usize,
    /// Messages per call in the batched one-way runs (`send-many` / `recv-many`).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// App pairs flooding at once in the many-pairs run.
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Messages each pair sends in the many-pairs run.
    #[arg(long, default_value_t = 20_000)]
    pair_messages: usize,
    /// Runs of each measurement (the median run is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// One run's figures, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct RoundTrip {
    median: u64,
    p99: u64,
}

/// The `ping` benchmark component (built by `./dev apps`).
fn ping_component() -> anyhow::Result<std::path::PathBuf> {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../apps/target/wasm32-wasip2/release/ping.wasm");
    bench.canonicalize().with_context(|| {
        format!(
            "the ping benchmark app {} is missing: build the apps with `./dev apps`",
            bench.display()
        )
    })
}

/// Writes one app folder: `name` running `component` with `args`, sending to and
/// accepting from `peer` only, with an inbox of 10,000 messages.
fn write_app(root: &Path, name: &str, component: &Path, args: &[&str], peer: &str) -> anyhow::Result<()> {
    let args = args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let dir = root.join(name);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("app.toml"),
        format!(
            "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"{}\"\nargs = [{args}]\n\
             [restart]\npolicy = \"never\"\n[limits]\ninbox = 10000\ninbox_bytes = \"16 MiB\"\n\
             [capabilities.ipc]\nsend = [\"{peer}\"]\naccept = [\"{peer}\"]\n",
            component.display()
        ),
    )?;
    Ok(())
}

/// Writes the app folders for one supervisor run: `ping` with `ping_args`, and its peer
/// (`echo`, or another `ping` as `sink`).
fn write_apps(root: &Path, ping_args: &[String], peer: &str, peer_args: &[&str]) -> anyhow::Result<()> {
    let ping = ping_component()?;
    let peer_component = if peer == "echo" {
        crate::default_apps().join("echo/echo.wasm")
    } else {
        ping.clone()
    };
    let ping_args: Vec<&str> = ping_args.iter().map(String::as_str).collect();
    write_app(root, "ping", &ping, &ping_args, peer)?;
    write_app(root, peer, &peer_component, peer_args, "ping")
}

/// How the supervisor's apps are scheduled in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sched {
    /// As `vyoma run` does: a single-threaded interactive shard per core, apps that
    /// message each other on one.
    Shards,
    /// The scheduling before the shards (the baseline): every app polled by whichever of
    /// the supervisor's work-stealing tokio workers takes its task.
    Workers,
}

/// The runtime configuration of a run with `sched`.
fn config(cache: &Path, sched: Sched) -> RuntimeConfig {
    let mut scheduling = Scheduling::default();
    if let (Sched::Workers, Scheduling::Shared { shards, .. }) = (sched, &mut scheduling) {
        *shards = 0;
    }
    RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        scheduling,
        ..RuntimeConfig::default()
    }
}

/// Boots the apps in `root`, waits for `ping` to finish, returns its last output line.
async fn supervisor_run(root: &Path, cache: &Path, sched: Sched) -> anyhow::Result<String> {
    let config = config(cache, sched);
    let booted = boot(root, config, Arc::new(RealClock::default()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sup = booted.supervisor;
    let done = sup.wait_for("ping", AppState::Exited, Duration::from_secs(600)).await?;
    let line = result_line(&sup, "ping");
    sup.shutdown().await;
    if !done {
        bail!("the ping app did not finish within 600 s");
    }
    line
}

/// The last line `app` printed on stdout: a `ping` run's result.
fn result_line(sup: &vyoma_supervisor::Supervisor, app: &str) -> anyhow::Result<String> {
    let (lines, _) = sup.log(app)?.since(0);
    match lines.iter().rev().find(|l| l.stream == vyoma_lifecycle::Stream::Stdout) {
        Some(l) => Ok(l.text.clone()),
        None => {
            let all: Vec<String> = lines.iter().map(|l| format!("{} {}", l.stream, l.text)).collect();
            bail!(
                "the {app} app printed no result:
{}",
                all.join("\n")
            )
        }
    }
}

/// Messages per second of a `ping flood` result line, once its sink counted all `n`.
fn one_way_rate(line: &str, n: usize) -> anyhow::Result<f64> {
    let received = field(line, "received")?;
    if received != n as u64 {
        bail!("the sink app counted {received} of {n} messages");
    }
    Ok(n as f64 / (field(line, "elapsed_ns")? as f64 / 1e9))
}

/// Aggregate figures of pairs flooding at once.
#[derive(Debug, Clone, Copy)]
struct Aggregate {
    /// Messages per second, all pairs together.
    rate: f64,
    /// CPU used meanwhile, in cores (the supervisor's process; `None` for the baseline).
    cores: Option<f64>,
}

/// `pairs` pings in one supervisor, each sending `messages` to its own sink.
async fn supervisor_pairs(
    root: &Path,
    cache: &Path,
    pairs: usize,
    messages: usize,
    size: usize,
    sched: Sched,
) -> anyhow::Result<Aggregate> {
    let _ = std::fs::remove_dir_all(root);
    let ping = ping_component()?;
    for i in 0..pairs {
        let (p, s) = (format!("ping{i:03}"), format!("sink{i:03}"));
        write_app(
            root,
            &p,
            &ping,
            &["flood", &s, &messages.to_string(), &size.to_string()],
            &s,
        )?;
        write_app(root, &s, &ping, &["sink"], &p)?;
    }
    let config = config(cache, sched);
    let me = std::process::id();
    let (t0, cpu0) = (Instant::now(), crate::common::process_cpu(me));
    let booted = boot(root, config, Arc::new(RealClock::default()))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sup = booted.supervisor;
    for i in 0..pairs {
        let p = format!("ping{i:03}");
        if !sup.wait_for(&p, AppState::Exited, Duration::from_secs(600)).await? {
            bail!("{p} did not finish within 600 s");
        }
    }
    let (wall, cpu) = (t0.elapsed(), crate::common::process_cpu(me) - cpu0);
    for i in 0..pairs {
        let p = format!("ping{i:03}");
        one_way_rate(&result_line(&sup, &p)?, messages).with_context(|| format!("pair {p}"))?;
    }
    sup.shutdown().await;
    Ok(Aggregate {
        rate: (pairs * messages) as f64 / wall.as_secs_f64(),
        cores: Some(cpu.as_secs_f64() / wall.as_secs_f64()),
    })
}

/// `pairs` threads of this process, each writing `messages` to its own child process over
/// a Unix socket (as [`uds_one_way`]); timed from when every child is connected.
fn uds_pairs(dir: &Path, pairs: usize, messages: usize, size: usize) -> anyhow::Result<Aggregate> {
    let mut peers = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let sub = dir.join(format!("pair{i}"));
        std::fs::create_dir_all(&sub)?;
        peers.push(spawn_peer(&sub, "sink", size)?);
    }
    let t0 = Instant::now();
    let writers: Vec<_> = peers
        .into_iter()
        .map(|(mut child, mut s)| {
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let got = flood_socket(&mut s, messages, size, 1)?;
                drop(s);
                child.wait()?;
                Ok(got)
            })
        })
        .collect();
    for w in writers {
        let got = w.join().map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        if got != messages as u64 {
            bail!("a Unix-socket sink counted {got} of {messages} messages");
        }
    }
    Ok(Aggregate {
        rate: (pairs * messages) as f64 / t0.elapsed().as_secs_f64(),
        cores: None,
    })
}

/// `key=value` from a result line.
fn median_by<T: Copy>(mut v: Vec<T>, key: impl Fn(&T) -> u64) -> T {
    v.sort_by_key(|x| key(x));
    v[v.len() / 2]
}

/// The native peer process: `vyoma-bench uds-peer SOCKET echo|sink SIZE`.
pub(crate) fn uds_peer(socket: &Path, mode: &str, size: usize) -> anyhow::Result<Exit> {
    let mut s = UnixStream::connect(socket).with_context(|| format!("connecting to {}", socket.display()))?;
    match mode {
        "echo" => {
            let mut buf = vec![0u8; size];
            loop {
                if s.read_exact(&mut buf).is_err() {
                    return Ok(Exit::Ok);
                }
                s.write_all(&buf)?;
            }
        }
        "sink" => {
            // Messages are SIZE bytes; an all-0xff message asks for the count.
            let mut buf = vec![0u8; 64 << 10];
            let mut count = 0u64;
            let mut tail = Vec::new();
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    return Ok(Exit::Ok);
                }
                tail.extend_from_slice(&buf[..n]);
                let whole = tail.len() / size * size;
                for m in tail[..whole].chunks_exact(size) {
                    if m.iter().all(|b| *b == 0xff) {
                        s.write_all(&count.to_le_bytes())?;
                    } else {
                        count += 1;
                    }
                }
                tail.drain(..whole);
            }
        }
        other => bail!("unknown peer mode `{other}`"),
    }
}

/// Starts the native peer and accepts its connection.
fn spawn_peer(dir: &Path, mode: &str, size: usize) -> anyhow::Result<(std::process::Child, UnixStream)> {
    let path = dir.join(format!("{mode}.sock"));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let child = Command::new(std::env::current_exe()?)
        .arg("uds-peer")
        .arg(&path)
        .arg(mode)
        .arg(size.to_string())
        .stdin(Stdio::null())
        .spawn()?;
    let (s, _) = listener.accept()?;
    Ok((child, s))
}

fn uds_round_trips(dir: &Path, n: usize, size: usize) -> anyhow::Result<RoundTrip> {
    let (mut child, mut s) = spawn_peer(dir, "echo", size)?;
    let msg = vec![7u8; size];
    let mut back = vec![0u8; size];
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t0 = Instant::now();
        s.write_all(&msg)?;
        s.read_exact(&mut back)?;
        let dt = t0.elapsed().as_nanos() as u64;
        if i >= n / 10 {
            samples.push(dt);
        }
    }
    drop(s);
    child.wait()?;
    samples.sort_unstable();
    Ok(RoundTrip {
        median: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
    })
}

/// Writes `n` messages of `size` bytes to a `sink` peer, `batch` per `write`, then asks
/// for its count.
fn flood_socket(s: &mut UnixStream, n: usize, size: usize, batch: usize) -> anyhow::Result<u64> {
    let msgs = vec![7u8; size * batch];
    let mut left = n;
    while left > 0 {
        let k = left.min(batch);
        s.write_all(&msgs[..k * size])?;
        left -= k;
    }
    s.write_all(&vec![0xffu8; size])?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)?;
    Ok(u64::from_le_bytes(count))
}

/// Messages per second one way, `batch` messages per `write`.
fn uds_one_way(dir: &Path, n: usize, size: usize, batch: usize) -> anyhow::Result<f64> {
    let (mut child, mut s) = spawn_peer(dir, "sink", size)?;
    let t0 = Instant::now();
    let got = flood_socket(&mut s, n, size, batch)?;
    let dt = t0.elapsed();
    drop(s);
    child.wait()?;
    if got != n as u64 {
        bail!("the Unix-socket sink counted {got} of {n} messages");
    }
    Ok(n as f64 / dt.as_secs_f64())
}

/// Round trips between this thread and another over a pair of channels, the way two
/// threads of one program would talk (`std::sync::mpsc`, a fresh `Vec` per message, as an
/// IPC body is).
fn thread_round_trips(n: usize, size: usize) -> RoundTrip {
    let (to_peer, peer_in) = std::sync::mpsc::channel::<Vec<u8>>();
    let (to_me, from_peer) = std::sync::mpsc::channel::<Vec<u8>>();
    let peer = std::thread::spawn(move || {
        for m in peer_in {
            if to_me.send(m).is_err() {
                return;
            }
        }
    });
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t0 = Instant::now();
        to_peer.send(vec![7u8; size]).expect("the peer thread is alive");
        let back = from_peer.recv().expect("the peer thread answers");
        let dt = t0.elapsed().as_nanos() as u64;
        std::hint::black_box(back);
        if i >= n / 10 {
            samples.push(dt);
        }
    }
    drop(to_peer);
    let _ = peer.join();
    samples.sort_unstable();
    RoundTrip {
        median: samples[n / 2],
        p99: samples[(n * 99 / 100).min(n - 1)],
    }
}

/// Messages per second one way from this thread to another over a bounded channel (256
/// messages, an inbox's default), counted by the receiver.
fn thread_one_way(n: usize, size: usize) -> anyhow::Result<f64> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(256);
    let sink = std::thread::spawn(move || {
        rx.iter()
            .map(|m| std::hint::black_box(m).len().min(1) as u64)
            .sum::<u64>()
    });
    let t0 = Instant::now();
    for _ in 0..n {
        tx.send(vec![7u8; size]).expect("the sink thread is alive");
    }
    drop(tx);
    counted(sink, n, t0)
}

/// Like [`thread_one_way`], `batch` messages (each its own `Vec`) per channel message; the
/// channel still holds 256 messages.
fn thread_one_way_batched(n: usize, size: usize, batch: usize) -> anyhow::Result<f64> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Vec<u8>>>((256 / batch).max(1));
    let sink = std::thread::spawn(move || {
        rx.iter()
            .map(|b| {
                b.iter()
                    .map(|m| std::hint::black_box(m).len().min(1) as u64)
                    .sum::<u64>()
            })
            .sum::<u64>()
    });
    let t0 = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(batch);
        tx.send((0..k).map(|_| vec![7u8; size]).collect())
            .expect("the sink thread is alive");
        left -= k;
    }
    drop(tx);
    counted(sink, n, t0)
}

/// The rate of `n` messages since `t0`, once the sink thread has counted all of them.
fn counted(sink: std::thread::JoinHandle<u64>, n: usize, t0: Instant) -> anyhow::Result<f64> {
    let got = sink.join().map_err(|_| anyhow::anyhow!("the sink thread panicked"))?;
    let dt = t0.elapsed();
    if got != n as u64 {
        bail!("the channel sink counted {got} of {n} messages");
    }
    Ok(n as f64 / dt.as_secs_f64())
}

fn us(ns: u64) -> String {
    format!("{:.2} µs", ns as f64 / 1e3)
}

fn rate(r: f64) -> String {
    format!("{:.2} M msg/s", r / 1e6)
}

pub(crate) async fn bench_ipc(args: BenchIpcArgs) -> anyhow::Result<Exit> {
    if args.size == 0 || args.round_trips < 10 || args.messages == 0 || args.batch < 2 {
        bail!("--size must be at least 1, --round-trips at least 10, --messages at least 1, --batch at least 2");
    }
    let work = tempfile::tempdir()?;
    let cache = work.path().join("cache");
    let size = args.size.to_string();
    println!("# vyoma-bench ipc\n");
    println!("{}\n", crate::common::machine());
    println!(
        "{} B messages; {} round trips and {} one-way messages per run, batches of {}; median of {} runs; {} CPUs\n",
        args.size,
        args.round_trips,
        args.messages,
        args.batch,
        args.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rtt_dir = work.path().join("rtt");
    write_apps(
        &rtt_dir,
        &["rtt".into(), "echo".into(), args.round_trips.to_string(), size.clone()],
        "echo",
        &[],
    )?;
    let flood_dir = work.path().join("flood");
    write_apps(
        &flood_dir,
        &["flood".into(), "sink".into(), args.messages.to_string(), size.clone()],
        "sink",
        &["sink"],
    )?;
    let batch = args.batch.to_string();
    let batch_dir = work.path().join("batch");
    write_apps(
        &batch_dir,
        &[
            "flood".into(),
            "sink".into(),
            args.messages.to_string(),
            size.clone(),
            batch.clone(),
        ],
        "sink",
        &["sink", &batch],
    )?;
    // Compile (and cache) the components outside any measurement.
    supervisor_run(&rtt_dir, &cache, Sched::Shards).await?;

    let (mut sup_rtt, mut old_rtt, mut uds_rtt, mut thr_rtt) = (vec![], vec![], vec![], vec![]);
    let (mut sup_rate, mut old_rate, mut uds_rate, mut thr_rate) = (vec![], vec![], vec![], vec![]);
    let (mut sup_batch, mut old_batch, mut uds_batch, mut thr_batch) = (vec![], vec![], vec![], vec![]);
    let trip = |line: String| -> anyhow::Result<RoundTrip> {
        Ok(RoundTrip {
            median: field(&line, "median_ns")?,
            p99: field(&line, "p99_ns")?,
        })
    };
    // Interleave the sides so drift on the machine affects all alike.
    for _ in 0..args.runs.max(1) {
        sup_rtt.push(trip(supervisor_run(&rtt_dir, &cache, Sched::Shards).await?)?);
        old_rtt.push(trip(supervisor_run(&rtt_dir, &cache, Sched::Workers).await?)?);
        uds_rtt.push(uds_round_trips(work.path(), args.round_trips, args.size)?);
        thr_rtt.push(thread_round_trips(args.round_trips, args.size));
        for (sched, v) in [(Sched::Shards, &mut sup_rate), (Sched::Workers, &mut old_rate)] {
            v.push(one_way_rate(
                &supervisor_run(&flood_dir, &cache, sched).await?,
                args.messages,
            )?);
        }
        uds_rate.push(uds_one_way(work.path(), args.messages, args.size, 1)?);
        thr_rate.push(thread_one_way(args.messages, args.size)?);
        for (sched, v) in [(Sched::Shards, &mut sup_batch), (Sched::Workers, &mut old_batch)] {
            v.push(one_way_rate(
                &supervisor_run(&batch_dir, &cache, sched).await?,
                args.messages,
            )?);
        }
        uds_batch.push(uds_one_way(work.path(), args.messages, args.size, args.batch)?);
        thr_batch.push(thread_one_way_batched(args.messages, args.size, args.batch)?);
    }
    let by_median = |v: Vec<RoundTrip>| median_by(v, |r| r.median);
    let (s, o, u, t) = (
        by_median(sup_rtt),
        by_median(old_rtt),
        by_median(uds_rtt),
        by_median(thr_rtt),
    );
    let by_rate = |v: Vec<f64>| median_by(v, |r| *r as u64);
    let (sr, or, ur, tr) = (
        by_rate(sup_rate),
        by_rate(old_rate),
        by_rate(uds_rate),
        by_rate(thr_rate),
    );
    let (sb, ob, ub, tb) = (
        by_rate(sup_batch),
        by_rate(old_batch),
        by_rate(uds_batch),
        by_rate(thr_batch),
    );
    println!(
        "| measure | app → supervisor → app | same, shared workers (before shards) | Unix socket, two processes | channel, two threads of one process | supervisor vs socket |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| round trip, median | {} | {} | {} | {} | {:.2}x faster |",
        us(s.median),
        us(o.median),
        us(u.median),
        us(t.median),
        u.median as f64 / s.median as f64
    );
    println!(
        "| round trip, p99 | {} | {} | {} | {} | {:.2}x faster |",
        us(s.p99),
        us(o.p99),
        us(u.p99),
        us(t.p99),
        u.p99 as f64 / s.p99 as f64
    );
    println!(
        "| one way, {} B messages | {} | {} | {} | {} | {:.2}x |",
        args.size,
        rate(sr),
        rate(or),
        rate(ur),
        rate(tr),
        sr / ur
    );
    println!(
        "| one way, {} B messages, {} per call / write / channel message | {} | {} | {} | {} | {:.2}x |",
        args.size,
        args.batch,
        rate(sb),
        rate(ob),
        rate(ub),
        rate(tb),
        sb / ub
    );
    pairs_table(&args, work.path(), &cache).await?;
    Ok(Exit::Ok)
}

/// The many-pairs run: one pair, then `--pairs` pairs, each side, `--runs` times.
async fn pairs_table(args: &BenchIpcArgs, work: &Path, cache: &Path) -> anyhow::Result<()> {
    let (m, size) = (args.pair_messages, args.size);
    let dir = work.join("pairs");
    let (mut sup1, mut supn, mut uds1, mut udsn) = (vec![], vec![], vec![], vec![]);
    let (mut old1, mut oldn) = (vec![], vec![]);
    let all = m * args.pairs;
    for _ in 0..args.runs.max(1) {
        sup1.push(supervisor_pairs(&dir, cache, 1, all, size, Sched::Shards).await?);
        old1.push(supervisor_pairs(&dir, cache, 1, all, size, Sched::Workers).await?);
        uds1.push(uds_pairs(&dir, 1, all, size)?);
        supn.push(supervisor_pairs(&dir, cache, args.pairs, m, size, Sched::Shards).await?);
        oldn.push(supervisor_pairs(&dir, cache, args.pairs, m, size, Sched::Workers).await?);
        udsn.push(uds_pairs(&dir, args.pairs, m, size)?);
    }
    let med = |v: Vec<Aggregate>| median_by(v, |a| a.rate as u64);
    let (s1, sn, u1, un) = (med(sup1), med(supn), med(uds1), med(udsn));
    let (o1, on) = (med(old1), med(oldn));
    let cores = |a: &Aggregate| a.cores.map_or("-".into(), |c| format!("{c:.2}"));
    println!(
        "\n{size} B messages, {all} in all ({m} per pair when {} pairs), one `send` per message; aggregate over all pairs, from boot (or connection) to the last count\n",
        args.pairs
    );
    println!(
        "| pairs flooding at once | app → supervisor → app | supervisor CPU (cores) | same, shared workers (before shards) | its CPU (cores) | Unix socket, thread → process | supervisor vs socket |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (n, s, o, u) in [(1, s1, o1, u1), (args.pairs, sn, on, un)] {
        println!(
            "| {n} | {} | {} | {} | {} | {} | {:.2}x |",
            rate(s.rate),
            cores(&s),
            rate(o.rate),
            cores(&o),
            rate(u.rate),
            s.rate / u.rate
        );
    }
    println!(
        "\n{} pairs against one: supervisor {:.2}x, Unix socket {:.2}x",
        args.pairs,
        sn.rate / s1.rate,
        un.rate / u1.rate
    );
    Ok(())
}
