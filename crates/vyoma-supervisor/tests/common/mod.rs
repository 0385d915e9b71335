//! Helpers shared by the supervisor's end-to-end tests: build a supervisor over a folder of
//! app folders, and wait for states or log lines with generous deadlines (never fixed
//! sleeps).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vyoma_lifecycle::AppState;
use vyoma_manifest::AppSet;
use vyoma_runtime::{Runtime, RuntimeConfig};
use vyoma_supervisor::{AppStatus, RealClock, Supervisor};
use vyoma_testkit::{shared_cache, write_app};

pub const LONG: Duration = Duration::from_secs(60);

/// Writes an app folder `name` running `component` with extra manifest text.
pub fn app(root: &Path, name: &str, component: &str, extra: &str) -> PathBuf {
    write_app(root, name, component, extra)
}

pub async fn supervisor(root: &Path, capacity: u32) -> Supervisor {
    let set = AppSet::load_dir(root).unwrap_or_else(|d| panic!("{d}"));
    let config = RuntimeConfig {
        capacity,
        cache_dir: Some(shared_cache(env!("CARGO_TARGET_TMPDIR"))),
        ..RuntimeConfig::default()
    };
    let rt = Arc::new(Runtime::new(&config).unwrap());
    let sup = Supervisor::new(rt, set, Arc::new(RealClock::default()));
    sup.preload().await;
    sup.start_all().await;
    sup
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
