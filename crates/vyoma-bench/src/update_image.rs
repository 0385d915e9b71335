//! `vyoma-bench update-image`: hot update in the booted image, under QEMU, driven over the
//! management API as an operator would (`vyoma update` / `deploy` against a device): the
//! same figures as `update` (hosted), on the image's store disk and with the image's
//! compiler.
//!
//! - Swap: `update` of `echo` to a version whose component the device has compiled
//!   before, p50 and p99: the guest's own figure (the report's `swap_us`: request to the
//!   new instance started) and the operator's (what `vyoma update` does: the component
//!   uploaded, the update asked for, until `echo` runs again: the network, TLS, the
//!   store's fsyncs on the virtio disk included). Beside it, `restart`
//!   of the same app, which is what a user does without updates.
//! - The same with a component the device never saw: uploaded, compiled on the device,
//!   stored, swapped.
//! - IPC during swaps: app `ping` makes round trips to `echo` and reports their median and
//!   99th percentile (timed inside the guest), quiet and while `echo` is updated back and
//!   forth as fast as the API takes it.
//! - Rollback: `echo` is updated to a version that traps at start; from the trap to the
//!   previous version running, by the times of the two lines in `echo`'s log (the
//!   supervisor's `exited: trap ...` and `running (instance N)`, millisecond resolution).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vyoma_api::client::Remote;
use vyoma_control::{Command, Reply, UpdateOptions, UpdateSource};
use vyoma_image::qemu::{Serial, Vm};
use vyoma_lifecycle::{AppState, Stream};

use crate::Exit;
use crate::common::{built_app, latency_row, us_field};
use crate::update::{ECHO_GRANTS, manifest};

#[derive(clap::Args, Debug)]
pub(crate) struct BenchUpdateImageArgs {
    /// How many of each, as for `update`.
    #[command(flatten)]
    sizes: crate::update::BenchUpdateArgs,
    /// How QEMU runs the guest: `kvm`, `tcg`, or `auto` [default: $VYOMA_ACCEL, else auto].
    #[arg(long, value_name = "auto|kvm|tcg")]
    accel: Option<vyoma_image::accel::AccelChoice>,
}

/// A generous bound for one API call under emulation (a compile included).
const CALL: Duration = Duration::from_secs(600);

/// The manifest of app `name` whose component is `NAME.wasm` beside it.
fn manifest_beside(name: &str, version: &str, tail: &str) -> String {
    manifest(name, version, Path::new(&format!("{name}.wasm")), tail)
}

/// An app folder holding its component (an image carries only what is inside it).
fn app_folder(dir: &Path, name: &str, wasm: &[u8], tail: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("{name}.wasm")), wasm)?;
    std::fs::write(dir.join("app.toml"), manifest_beside(name, "0.1.0", tail))?;
    Ok(())
}

/// One version to update to: the manifest's text and the component's digest, uploaded.
#[derive(Clone)]
struct Upload {
    manifest: String,
    component: Vec<u8>,
    digest: String,
}

impl Upload {
    fn new(name: &str, version: &str, component: Vec<u8>, tail: &str) -> Upload {
        let digest = vyoma_supervisor::vyoma_store::Digest::of(&component).to_string();
        Upload {
            manifest: manifest_beside(name, version, tail),
            component,
            digest,
        }
    }
}

async fn call(remote: &Remote, cmd: Command) -> anyhow::Result<Reply> {
    let (reply, _) = tokio::time::timeout(CALL, remote.call(&cmd))
        .await
        .with_context(|| format!("no answer to {cmd:?} within {CALL:?}"))??;
    Ok(reply)
}

/// Updates `echo` to `to` as `vyoma update` does (the component uploaded, then the update
/// asked for); the guest's swap time. (The store keeps the blobs of the versions it keeps,
/// so one uploaded long ago may be gone.)
async fn update(remote: &Remote, to: &Upload, force: bool) -> anyhow::Result<Duration> {
    remote.put_blob(&to.digest, to.component.clone()).await?;
    let reply = call(
        remote,
        Command::Update {
            app: "echo".into(),
            source: UpdateSource::Upload {
                manifest: to.manifest.clone(),
                component: to.digest.clone(),
            },
            options: UpdateOptions { force, dry_run: false },
        },
    )
    .await?;
    match reply {
        Reply::Updated(r) => Ok(r.swap.map(|s| s.total).unwrap_or_default()),
        other => bail!("update answered {other:?}"),
    }
}

async fn wait_running(remote: &Remote, app: &str) -> anyhow::Result<()> {
    match call(
        remote,
        Command::Wait {
            app: app.into(),
            state: AppState::Running,
            timeout: Duration::from_secs(120),
        },
    )
    .await?
    {
        Reply::Reached { .. } => Ok(()),
        other => bail!("wait for {app} answered {other:?}"),
    }
}

async fn log(remote: &Remote, app: &str) -> anyhow::Result<Vec<vyoma_lifecycle::LogLine>> {
    match call(
        remote,
        Command::Log {
            app: app.into(),
            last: None,
        },
    )
    .await?
    {
        Reply::Log { lines, .. } => Ok(lines),
        other => bail!("log of {app} answered {other:?}"),
    }
}

/// `ping`'s result line after it is restarted.
async fn ping_run(remote: &Remote) -> anyhow::Result<String> {
    let after = log(remote, "ping").await?.last().map_or(0, |l| l.seq + 1);
    call(remote, Command::Restart("ping".into())).await?;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if let Some(l) = log(remote, "ping")
            .await?
            .into_iter()
            .find(|l| l.seq >= after && l.text.starts_with("rtt "))
        {
            return Ok(l.text);
        }
        if Instant::now() > deadline {
            bail!("ping never reported");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn sorted(mut v: Vec<Duration>) -> Vec<Duration> {
    v.sort();
    v
}

pub(crate) async fn bench_update_image(args: BenchUpdateImageArgs) -> anyhow::Result<Exit> {
    let work = tempfile::tempdir()?;
    let apps = work.path().join("apps");
    let echo = std::fs::read(built_app("echo")?)?;
    let ping = std::fs::read(built_app("ping")?)?;
    let trapper = std::fs::read(built_app("trapper")?)?;
    app_folder(&apps.join("echo"), "echo", &echo, ECHO_GRANTS)?;
    app_folder(
        &apps.join("ping"),
        "ping",
        &ping,
        &format!(
            "args = [\"rtt\", \"echo\", \"{}\", \"16\"]\n[restart]\npolicy = \"never\"\n[capabilities.ipc]\nsend = [\"echo\"]\naccept = [\"echo\"]\n",
            args.sizes.round_trips
        ),
    )?;
    let cache = vyoma_runtime::default_cache_dir().context("no cache folder: set VYOMA_CACHE_DIR or HOME")?;
    let image = crate::boot::build(
        &apps,
        &work.path().join("image"),
        &cache,
        vyoma_image::default_init(),
        Some(vyoma_image::default_compiler()),
    )?;
    let disk = work.path().join("store.ext4");
    vyoma_image::qemu::make_store_disk(&disk, vyoma_image::qemu::STORE_DISK_SIZE)?;

    let choice = crate::boot::accel_choice(args.accel)?;
    let port = vyoma_image::qemu::free_port(0)?;
    let mut vm = Vm::from_image_with(&image.dir, "", choice)?.with_network(port);
    vm.disk = Some(disk);
    let url = vm.api_url().context("the VM has no API address")?;
    let config = vyoma_api::ClientConfig::load(&image.dir.join(vyoma_image::CLIENT_CONFIG))?;
    let (_, endpoint) = config.resolve(Some(&url)).map_err(anyhow::Error::msg)?;
    let remote = Remote::new("image", &endpoint)?;
    let mut serial = tokio::task::spawn_blocking({
        let vm = vm.clone();
        move || -> anyhow::Result<Serial> {
            let mut s = Serial::start(&vm)?;
            s.wait_for(Duration::from_secs(300), crate::boot::is_boot_mark)
                .map_err(|e| anyhow::anyhow!("the image did not boot: {e}"))?;
            Ok(s)
        }
    })
    .await??;
    let result = measure(&remote, &args, &echo, &trapper).await;
    let transcript = serial.transcript();
    let _ = serial.send("shutdown");
    let ended = tokio::task::spawn_blocking(move || serial.wait_exit(Duration::from_secs(120))).await?;
    let figures = result.with_context(|| format!("the guest's console:\n{transcript}"))?;
    anyhow::ensure!(
        ended.is_some_and(|s| s.success()),
        "the VM did not power off cleanly:\n{transcript}"
    );

    println!("{}", crate::common::machine());
    println!(
        "guest: QEMU {}, {} vCPUs, {} MiB, the store on a virtio-blk ext4 disk (cache=writeback); calls over the forwarded API (HTTPS)",
        crate::boot::describe(&vm.accel),
        vm.cpus,
        vm.memory_mib
    );
    println!();
    figures.print(&args)?;
    Ok(Exit::Ok)
}

/// Updates, timed twice, sorted.
#[derive(Default)]
struct Updates {
    /// The guest's own swap time (`swap_us`).
    guest: Vec<Duration>,
    /// The operator's `vyoma update`, until the app runs again.
    operator: Vec<Duration>,
}

impl Updates {
    /// Times one update of `echo` to `to`, until it runs again.
    async fn time(&mut self, remote: &Remote, to: &Upload) -> anyhow::Result<()> {
        let t0 = Instant::now();
        self.guest.push(update(remote, to, false).await?);
        wait_running(remote, "echo").await?;
        self.operator.push(t0.elapsed());
        Ok(())
    }

    fn sorted(mut self) -> Updates {
        self.guest.sort();
        self.operator.sort();
        self
    }
}

struct Figures {
    /// Updates to a component compiled before.
    swaps: Updates,
    restarts: Vec<Duration>,
    /// Updates to a component never seen: upload, compile, store, swap.
    compiled: Updates,
    rollbacks: Vec<Duration>,
    quiet: String,
    swapping: (String, usize),
}

async fn measure(remote: &Remote, args: &BenchUpdateImageArgs, echo: &[u8], trapper: &[u8]) -> anyhow::Result<Figures> {
    wait_running(remote, "echo").await?;
    let versions: Vec<Upload> = (0..2)
        .map(|i| Upload::new("echo", &format!("0.{}.0", i + 2), echo.to_vec(), ECHO_GRANTS))
        .collect();
    // The device compiles each once.
    update(remote, &versions[0], false).await?;
    update(remote, &versions[1], false).await?;
    wait_running(remote, "echo").await?;

    let mut swaps = Updates::default();
    for i in 0..args.sizes.swaps {
        swaps.time(remote, &versions[i % 2]).await?;
    }
    let mut restarts = Vec::new();
    for _ in 0..args.sizes.swaps {
        let t0 = Instant::now();
        call(remote, Command::Restart("echo".into())).await?;
        wait_running(remote, "echo").await?;
        restarts.push(t0.elapsed());
    }
    let mut compiled = Updates::default();
    for i in 0..args.sizes.compiles {
        let fresh = Upload::new("echo", "0.9.0", crate::update::fresh_component(echo, i), ECHO_GRANTS);
        compiled.time(remote, &fresh).await?;
    }

    let quiet = ping_run(remote).await?;
    let swapping = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (remote, stop, versions) = (remote.clone(), stop.clone(), versions.clone());
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    update(&remote, &versions[n % 2], false).await?;
                    n += 1;
                }
                anyhow::Ok(n)
            })
        };
        let line = ping_run(remote).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = swapper.await.context("the swapping task")??;
        (line?, n)
    };
    wait_running(remote, "echo").await?;

    // Rollback: from the trap to the previous version running, in echo's log.
    let bad = Upload::new(
        "echo",
        "0.0.1",
        trapper.to_vec(),
        "args = [\"unreachable\"]\n[capabilities.ipc]\nsend = [\"ping\"]\naccept = [\"ping\"]\n",
    );
    let mut rollbacks = Vec::new();
    for _ in 0..args.sizes.rollbacks {
        let after = log(remote, "echo").await?.last().map_or(0, |l| l.seq + 1);
        update(remote, &bad, true).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let lines: Vec<_> = log(remote, "echo")
                .await?
                .into_iter()
                .filter(|l| l.seq >= after && l.stream == Stream::System)
                .collect();
            let trap = lines.iter().position(|l| l.text.starts_with("exited: trap"));
            let back = trap.and_then(|t| lines[t..].iter().find(|l| l.text.starts_with("running (instance")));
            if let (Some(t), Some(b)) = (trap, back) {
                rollbacks.push(b.at.duration_since(lines[t].at).unwrap_or_default());
                break;
            }
            if Instant::now() > deadline {
                let tail: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
                bail!(
                    "no rollback of echo within two minutes; its log since the update:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wait_running(remote, "echo").await?;
    }
    Ok(Figures {
        swaps: swaps.sorted(),
        restarts: sorted(restarts),
        compiled: compiled.sorted(),
        rollbacks: sorted(rollbacks),
        quiet,
        swapping,
    })
}

impl Figures {
    /// The tables. A result line `ping` printed that lacks a figure is an error (its text
    /// is escaped where errors are printed).
    fn print(&self, args: &BenchUpdateImageArgs) -> anyhow::Result<()> {
        let row = |what: &str, v: &[Duration]| println!("{}", latency_row(what, v));
        println!("| in the image | n | p50 | p99 | max |");
        println!("|---|---|---|---|---|");
        row(
            "update, component compiled before: swap in the guest (`swap_us`)",
            &self.swaps.guest,
        );
        row(
            "the same, the operator's `vyoma update` (upload, API call) until the app runs again",
            &self.swaps.operator,
        );
        row(
            "restart of the same app over the API (baseline: no update)",
            &self.restarts,
        );
        row(
            "update, new component: upload, compile on the device, store, swap (operator's view)",
            &self.compiled.operator,
        );
        row("the same, swap in the guest (`swap_us`)", &self.compiled.guest);
        row(
            "rollback, trap to previous version running (log times, 1 ms resolution)",
            &self.rollbacks,
        );
        println!();
        println!(
            "| IPC round trip in the image, 16 B, {} trips | median | p99 |",
            args.sizes.round_trips
        );
        println!("|---|---|---|");
        println!(
            "| no update | {} | {} |",
            us_field(&self.quiet, "median_ns")?,
            us_field(&self.quiet, "p99_ns")?
        );
        println!(
            "| while `echo` is updated back and forth over the API ({} updates) | {} | {} |",
            self.swapping.1,
            us_field(&self.swapping.0, "median_ns")?,
            us_field(&self.swapping.0, "p99_ns")?
        );
        Ok(())
    }
}
