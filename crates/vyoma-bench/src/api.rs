//! `vyoma-bench api`: the management API's latency with many apps, quiet and with apps
//! busy-looping: `GET /v1/apps` over loopback (plain HTTP and HTTPS, a keep-alive client
//! as scripts and `vyoma` use), beside the supervisor's own work for the same answer
//! (`status()` serialised to JSON in process: the floor), and a log line's latency from
//! the moment the supervisor captured it to the moment a following client has it.
//!
//! Figures are printed as Markdown for `docs/PERFORMANCE.md`.

use std::time::{Duration, Instant, SystemTime};

use vyoma_api::client::Remote;
use vyoma_api::{Api, ApiConfig, Endpoint, ServerCredentials, credentials};
use vyoma_control::{Command, Reply};
use vyoma_supervisor::Supervisor;

use crate::Exit;
use crate::common::{boot_running, built_app, percentile, write_app_set};

#[derive(clap::Args, Debug)]
pub(crate) struct BenchApiArgs {
    /// Idle apps (tickers printing a line an hour).
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    /// Busy-looping apps added in the second arrangement.
    #[arg(long, default_value_t = 200)]
    busy: usize,
    /// Requests timed per row.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Log lines timed under follow.
    #[arg(long, default_value_t = 200)]
    lines: usize,
}

fn f(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn row(label: &str, mut t: Vec<Duration>) {
    t.sort();
    println!(
        "| {label} | {} | {} | {} |",
        f(percentile(&t, 0.5)),
        f(percentile(&t, 0.99)),
        f(t[t.len() - 1])
    );
}

/// The supervisor over `idle` sleepers, `busy` spinners and one fast ticker (`pulse`, a
/// line every 10 ms, followed for the log latency), every app running.
async fn instance(dir: &std::path::Path, idle: usize, busy: usize) -> anyhow::Result<Supervisor> {
    let ticker = built_app("ticker")?;
    write_app_set(
        dir,
        "t",
        idle,
        &ticker,
        "args = [\"3600000\"]\n[limits]\nmemory = \"2 MiB\"\nlog_buffer = \"4 KiB\"\n",
    )?;
    write_app_set(dir, "s", busy, &built_app("spinner")?, "[limits]\nmemory = \"2 MiB\"\n")?;
    write_app_set(dir, "pulse", 1, &ticker, "args = [\"10\"]\n")?;
    boot_running(dir).await
}

async fn timed(remote: &Remote, samples: usize, apps: usize) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let (reply, _) = remote.call(&Command::Ps).await?;
        out.push(t.elapsed());
        let Reply::Ps(rows) = reply else {
            anyhow::bail!("ps answered {reply:?}")
        };
        anyhow::ensure!(rows.len() == apps, "{} rows, not {apps}", rows.len());
    }
    Ok(out)
}

async fn arrangement(label: &str, sup: &Supervisor, args: &BenchApiArgs, apps: usize) -> anyhow::Result<()> {
    let keys = tempfile::tempdir()?;
    let made = credentials::generate(keys.path(), &[])?;
    let mut remotes = Vec::new();
    for tls in [false, true] {
        let api = Api::spawn(
            sup,
            ApiConfig {
                listener: vyoma_api::bind("127.0.0.1:0".parse()?)?,
                credentials: ServerCredentials::load(keys.path(), tls)?,
            },
        )?;
        let endpoint = Endpoint {
            url: api.url(),
            token: made.token.as_str().to_string(),
            ca: tls.then(|| made.ca_pem.clone()),
        };
        remotes.push((api, Remote::new("bench", &endpoint)?));
    }
    // The supervisor's own work for the same answer.
    let mut floor = Vec::with_capacity(args.samples);
    for _ in 0..args.samples {
        let t = Instant::now();
        let json = serde_json::to_string(&Reply::Ps(sup.status()))?;
        floor.push(t.elapsed());
        std::hint::black_box(json);
    }
    row(&format!("{label}: in process, status() to JSON (floor)"), floor);
    // The client runs on a quiet thread and runtime of its own, as a separate process
    // (an operator's `vyoma`, a monitoring script) would: not on the apps' workers.
    let clients: Vec<Remote> = remotes.iter().map(|(_, r)| r.clone()).collect();
    let samples = args.samples;
    let lines = args.lines;
    let pulse = sup.log("pulse0000")?;
    let client = std::thread::spawn(move || -> anyhow::Result<(Vec<Vec<Duration>>, Vec<Duration>)> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let mut rows = Vec::new();
            for remote in &clients {
                // Warm the connection (and the TLS session) first.
                timed(remote, 3, apps).await?;
                rows.push(timed(remote, samples, apps).await?);
            }
            // A log line's latency under follow: capture (its timestamp) to the client.
            // Lines captured before the follow starts are history, not latency.
            let (_, first_new) = pulse.since(u64::MAX);
            let mut lat = Vec::with_capacity(lines);
            let stop = tokio::sync::Notify::new();
            let follow = clients[0].follow(
                "pulse0000",
                None,
                |l| {
                    if l.seq >= first_new && lat.len() < lines {
                        lat.push(SystemTime::now().duration_since(l.at).unwrap_or_default());
                        if lat.len() == lines {
                            stop.notify_one();
                        }
                    }
                },
                |_| {},
            );
            tokio::select! {
                r = follow => r?,
                () = stop.notified() => {}
            }
            Ok((rows, lat))
        })
    });
    let (rows, lat) = client
        .join()
        .map_err(|_| anyhow::anyhow!("the client thread panicked"))??;
    for (t, scheme) in rows.into_iter().zip(["HTTP", "HTTPS"]) {
        row(&format!("{label}: GET /v1/apps over loopback {scheme}"), t);
    }
    row(&format!("{label}: log line, captured to a following client"), lat);
    Ok(())
}

pub(crate) async fn bench_api(args: BenchApiArgs) -> anyhow::Result<Exit> {
    println!("# vyoma-bench api\n");
    println!("{}\n", crate::common::machine());
    println!(
        "Management API latency with {} idle apps, then with {} busy-looping apps added; {} requests per row (keep-alive client, the API on its own thread), {} log lines under follow.\n",
        args.apps, args.busy, args.samples, args.lines
    );
    println!("| arrangement: request | p50 | p99 | max |");
    println!("|---|---:|---:|---:|");
    for (label, busy) in [
        (format!("{} apps", args.apps), 0),
        (format!("{} apps + {} busy", args.apps, args.busy), args.busy),
    ] {
        let dir = tempfile::tempdir()?;
        let sup = instance(dir.path(), args.apps, busy).await?;
        arrangement(&label, &sup, &args, args.apps + busy + 1).await?;
        sup.shutdown().await;
    }
    Ok(Exit::Ok)
}
