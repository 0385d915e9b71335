//! Helpers shared by the supervisor's end-to-end tests: build a supervisor over a folder of
//! app folders, and wait for states or log lines with generous deadlines (never fixed
//! sleeps).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vyoma_lifecycle::AppState;
use vyoma_runtime::RuntimeConfig;
use vyoma_supervisor::{AppStatus, LifecycleEvent, RealClock, Supervisor};
use vyoma_testkit::{shared_cache, write_app};

pub const LONG: Duration = Duration::from_secs(60);

/// Writes an app folder `name` running `component` with extra manifest text.
pub fn app(root: &Path, name: &str, component: &str, extra: &str) -> PathBuf {
    write_app(root, name, component, extra)
}

/// A supervisor over the app folders in `root`, every app started (those that cannot run
/// are shown as failed), through the same start-up path as `vyoma run`.
pub async fn supervisor(root: &Path, capacity: u32) -> Supervisor {
    supervisor_with(
        root,
        RuntimeConfig {
            capacity,
            ..RuntimeConfig::default()
        },
    )
    .await
}

/// [`supervisor`] with other runtime settings (the tests' shared compile cache is added).
pub async fn supervisor_with(root: &Path, config: RuntimeConfig) -> Supervisor {
    let config = RuntimeConfig {
        cache_dir: Some(shared_cache(env!("CARGO_TARGET_TMPDIR"))),
        ..config
    };
    let booted = vyoma_supervisor::boot(root, config, Arc::new(RealClock::default()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    booted.supervisor
}

/// Every lifecycle event until `pred` holds for the last one (or a minute passes).
pub async fn events_until(
    rx: &mut tokio::sync::broadcast::Receiver<LifecycleEvent>,
    pred: impl Fn(&LifecycleEvent) -> bool,
) -> Vec<LifecycleEvent> {
    let mut out = Vec::new();
    let done = tokio::time::timeout(LONG, async {
        loop {
            let e = rx.recv().await.expect("the supervisor publishes events");
            let last = pred(&e);
            out.push(e);
            if last {
                return;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "the awaited event never came; events: {out:#?}");
    out
}

pub fn status(sup: &Supervisor, name: &str) -> AppStatus {
    sup.detail(name).unwrap().status
}

pub async fn wait(sup: &Supervisor, name: &str, state: AppState) {
    let ok = sup.wait_for(name, state, LONG).await.unwrap();
    assert!(
        ok,
        "{name} never reached {state}: {:?}\nlog:\n{}",
        status(sup, name),
        log_text(sup, name)
    );
}

pub fn log_text(sup: &Supervisor, name: &str) -> String {
    let (lines, _) = sup.log(name).unwrap().since(0);
    lines.iter().map(|l| format!("{} {}\n", l.stream, l.text)).collect()
}

/// Waits until the app's log contains `needle`.
pub async fn wait_log(sup: &Supervisor, name: &str, needle: &str) {
    let log = sup.log(name).unwrap();
    let mut rx = log.subscribe();
    let found = tokio::time::timeout(LONG, async {
        loop {
            if log_text(sup, name).contains(needle) {
                return;
            }
            rx.changed().await.unwrap();
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "{name}'s log never showed {needle:?}:\n{}",
        log_text(sup, name)
    );
}

/// Every event already published and not yet received (nothing waits: use it after the
/// awaited change, e.g. once `shutdown` has returned).
pub fn drain(rx: &mut tokio::sync::broadcast::Receiver<LifecycleEvent>) -> Vec<LifecycleEvent> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(
                tokio::sync::broadcast::error::TryRecvError::Empty
                | tokio::sync::broadcast::error::TryRecvError::Closed,
            ) => return out,
            Err(e) => panic!("lost events: {e}"),
        }
    }
}

/// A console session over in-memory pipes: what to type into, what it prints, and the
/// session itself (it ends when the input does, or on `shutdown`).
pub struct Console {
    pub input: tokio::io::DuplexStream,
    pub output: tokio::io::DuplexStream,
    pub task: tokio::task::JoinHandle<std::io::Result<vyoma_supervisor::console::ConsoleEnd>>,
    _interrupts: tokio::sync::mpsc::UnboundedSender<()>,
}

pub fn console(sup: &Supervisor) -> Console {
    let (input, console_in) = tokio::io::duplex(1 << 16);
    let (console_out, output) = tokio::io::duplex(1 << 20);
    let (interrupts, int_rx) = tokio::sync::mpsc::unbounded_channel();
    let sup = sup.clone();
    let task = tokio::spawn(async move {
        vyoma_supervisor::console::run(&sup, tokio::io::BufReader::new(console_in), console_out, false, int_rx).await
    });
    Console {
        input,
        output,
        task,
        _interrupts: interrupts,
    }
}
