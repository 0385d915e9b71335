//! `vyoma-bench run-one`: the process-per-app baseline. One app in one process, run the way
//! a user would run a lone component (`wasmtime run`): its own engine with no pool, one
//! thread (a current-thread runtime), no preemption thread and no batch lane (there is
//! nothing else in the process to be fair to), the component from the warm compile cache.
//!
//! It writes `r` to stdout once the instance is running and `l` once the app has printed
//! its first line, or, with `--echo`, the app's own stdout lines as the app writes them.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use vyoma_lifecycle::{ExitReason, Stream};
use vyoma_manifest::Manifest;
use vyoma_runtime::{AppLog, PoolingChoice, Runtime, RuntimeConfig, Scheduling};

use crate::Exit;

#[derive(clap::Args, Debug)]
pub(crate) struct RunOneArgs {
    /// The app folder.
    dir: PathBuf,
    /// Print the app's stdout lines as they come, instead of one byte once it runs.
    #[arg(long)]
    echo: bool,
}

pub(crate) fn run_one(args: &RunOneArgs) -> anyhow::Result<Exit> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run(args))
}

async fn run(args: &RunOneArgs) -> anyhow::Result<Exit> {
    let m = Manifest::load(&args.dir).map_err(|d| anyhow::anyhow!("{d}"))?;
    let rt = Runtime::new(&RuntimeConfig {
        capacity: 1,
        pooling: PoolingChoice::Off,
        scheduling: Scheduling::Alone,
        ..RuntimeConfig::default()
    })?;
    let c = rt.load(&m.component.value)?;
    let log = AppLog::new(m.limits.log_buffer);
    // A lone process has no other apps to talk to: its own inbox only.
    let broker = vyoma_ipc::Broker::new([vyoma_supervisor::ipc_spec(&m)], vyoma_ipc::InboxLimits::default());
    let ipc = broker.endpoint(&m.name).expect("the broker was built with this app");
    if args.echo {
        tokio::spawn(echo(log.clone()));
    } else {
        tokio::spawn(first_line(log.clone()));
    }
    let pacer = rt.pacer(Arc::new(AtomicU64::new(0)));
    let echo = args.echo;
    let reason = rt
        .run(
            &m,
            &c,
            &log,
            Arc::new(AtomicU64::new(0)),
            ipc,
            vyoma_runtime::StopRequest::never(),
            None,
            &pacer,
            || {
                if !echo {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(b"r");
                    let _ = out.flush();
                }
            },
        )
        .await;
    Ok(match reason {
        ExitReason::Code(0) => Exit::Ok,
        _ => Exit::Error,
    })
}

/// Writes `l` once the app has printed its first line.
async fn first_line(log: Arc<AppLog>) {
    crate::common::first_stdout_line(&log).await;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"l");
    let _ = out.flush();
}

/// Prints the app's stdout lines as they are completed, escaped like all app text (this
/// may be a terminal).
async fn echo(log: Arc<AppLog>) {
    let mut changed = log.subscribe();
    let mut next = 0;
    loop {
        let (lines, upto) = log.since(next);
        next = upto;
        {
            let mut out = std::io::stdout().lock();
            for l in lines.iter().filter(|l| l.stream == Stream::Stdout) {
                let _ = writeln!(out, "{}", vyoma_supervisor::console::terminal_safe(&l.text));
            }
            let _ = out.flush();
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}
