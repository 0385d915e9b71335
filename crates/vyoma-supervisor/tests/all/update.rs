//! Updating running apps: IPC messages across updates and rollbacks (none lost, none
//! repeated, order kept), probation (a version that traps at start, one that crashes
//! after two seconds, one failing its health check: each rolled back by itself), the
//! refusals that leave the running version untouched, the app store across restarts, and
//! operator rollbacks. Real components (`ipc-probe`), a real store on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vyoma_control::{UpdateOptions, UpdateSource, VersionStatus};
use vyoma_lifecycle::AppState;
use vyoma_runtime::RuntimeConfig;
use vyoma_supervisor::{RealClock, Supervisor, SupervisorError, UpdateError};
use vyoma_testkit::{shared_cache, wasm};

use crate::common::{LONG, log_text, wait, wait_log};

/// A supervisor over `root` with its app store in `store`, every app started.
pub(crate) async fn with_store(root: &Path, store: &Path, config: RuntimeConfig) -> Supervisor {
    let config = RuntimeConfig {
        cache_dir: Some(shared_cache(env!("CARGO_TARGET_TMPDIR"))),
        capacity: 16,
        ..config
    };
    let mut booted = vyoma_supervisor::prepare(root, config, Arc::new(RealClock::default()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    booted.supervisor.open_store(store).await.unwrap();
    booted.start(None).await;
    booted.supervisor
}

/// An app folder `dir` with a manifest for `name` at `version` running ipc-probe.
pub(crate) fn version_dir(dir: &Path, name: &str, version: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("app.toml"),
        format!(
            "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"{version}\"\ncomponent = \"{}\"\n{extra}",
            wasm("ipc-probe").display()
        ),
    )
    .unwrap();
    dir.to_path_buf()
}

fn folder(dir: PathBuf) -> UpdateSource {
    UpdateSource::Folder(dir)
}

const RECEIVER: &str = r#"args = ["tally"]
[limits]
log_buffer = "32 MiB"
[capabilities.ipc]
accept = ["sender"]
[update]
probation = "0s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_lost_or_repeated_across_a_hundred_updates_and_rollbacks_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("apps");
    version_dir(&root.join("receiver"), "receiver", "0.1.0", RECEIVER);
    version_dir(
        &root.join("sender"),
        "sender",
        "0.1.0",
        "args = [\"stream:receiver\"]\n[capabilities.ipc]\nsend = [\"receiver\"]\n",
    );
    let sup = with_store(&root, &tmp.path().join("store"), RuntimeConfig::default()).await;
    wait(&sup, "receiver", AppState::Running).await;
    wait(&sup, "sender", AppState::Running).await;
    let mut swaps = Vec::new();
    for i in 0..100 {
        if i % 2 == 0 {
            let dir = version_dir(
                &tmp.path().join(format!("v{i}")),
                "receiver",
                &format!("0.{}.0", i + 2),
                RECEIVER,
            );
            let r = sup
                .update("receiver", folder(dir), UpdateOptions::default())
                .await
                .unwrap();
            swaps.push(r.swap.unwrap());
        } else {
            swaps.push(sup.rollback("receiver").await.unwrap().swap.unwrap());
        }
        wait(&sup, "receiver", AppState::Running).await;
    }
    sup.stop("sender").unwrap();
    wait_log(&sup, "sender", "streamed ").await;
    let sent: u64 = log_text(&sup, "sender")
        .lines()
        .find_map(|l| l.split("streamed ").nth(1))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Every message arrives, once, in order, whichever version took it.
    let deadline = tokio::time::Instant::now() + LONG;
    let got: Vec<u64> = loop {
        let got: Vec<u64> = log_text(&sup, "receiver")
            .lines()
            .filter_map(|l| l.strip_prefix("out got sender "))
            .map(|n| n.trim().parse().unwrap())
            .collect();
        if got.len() as u64 >= sent || tokio::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(sent > 1000, "the sender sent only {sent} messages");
    assert_eq!(got.len() as u64, sent, "received {} of {sent}", got.len());
    assert!(got.iter().copied().eq(0..sent), "out of order or repeated");
    assert!(
        swaps.iter().all(|s| s.unfinished_from.is_empty()),
        "a message was left unfinished"
    );
    // The swaps happened while messages flowed: most of them sit between received lines.
    let log = log_text(&sup, "receiver");
    let first = log.find("got sender").unwrap();
    let last = log.rfind("got sender").unwrap();
    let during = log[first..last].matches("replaces").count();
    assert!(
        during >= 50,
        "only {during} of 100 swaps happened while messages flowed"
    );
    let ipc = sup.detail("receiver").unwrap().status.ipc;
    assert_eq!(ipc.queued, 0);
}

pub(crate) fn refused(r: Result<impl std::fmt::Debug, SupervisorError>) -> (UpdateError, String) {
    match r {
        Err(SupervisorError::Update(e)) => {
            let text = e.to_string();
            (*e, text)
        }
        other => panic!("expected an update refusal, got {other:?}"),
    }
}

/// Sets up `app` (an ipc-probe serving IPC, with health checks) and a peer sending to it.
async fn serving(tmp: &Path, probation: &str) -> Supervisor {
    let root = tmp.join("apps");
    version_dir(
        &root.join("app"),
        "app",
        "0.1.0",
        &format!(
            "args = [\"tally\"]\n[capabilities.ipc]\naccept = [\"peer\"]\n[update]\nprobation = \"{probation}\"\nhealth = \"ipc\"\n"
        ),
    );
    version_dir(
        &root.join("peer"),
        "peer",
        "0.1.0",
        "args = [\"sleep:600000\"]\n[capabilities.ipc]\nsend = [\"app\"]\n",
    );
    let sup = with_store(&root, &tmp.join("store"), RuntimeConfig::default()).await;
    wait(&sup, "app", AppState::Running).await;
    sup
}

/// Updates `app` to a version running `args`, and waits until it is rolled back.
async fn rolled_back(sup: &Supervisor, tmp: &Path, name: &str, args: &str) -> String {
    let dir = version_dir(
        &tmp.join(name),
        "app",
        "0.2.0",
        &format!(
            "args = {args}\n[capabilities.ipc]\naccept = [\"peer\"]\n[update]\nprobation = \"10s\"\nhealth = \"ipc\"\n[restart]\npolicy = \"always\"\n"
        ),
    );
    let started = sup.detail("app").unwrap().generation;
    let r = sup.update("app", folder(dir), UpdateOptions::default()).await.unwrap();
    assert_eq!(r.to.version, "0.2.0");
    // The note comes once the old version is back and the store has turned the trial down.
    wait_log(sup, "app", &format!("version {} turned down", r.to.id.unwrap())).await;
    {
        let v = sup.versions("app").unwrap();
        if let Some(j) = v.rejected {
            // The old version serves again, and the trial left no trace in the store.
            wait(sup, "app", AppState::Running).await;
            let d = sup.detail("app").unwrap();
            assert_eq!(d.manifest.version.to_string(), "0.1.0");
            assert!(d.generation > started + 1);
            assert!(v.versions.iter().all(|row| row.status != VersionStatus::Trial));
            assert_eq!(v.versions[0].version, "0.1.0");
            let answer = sup
                .request_from_console("app", b"health".to_vec(), Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(answer.as_deref(), Some(&b"ok"[..]), "the old version does not serve");
            return j.reason;
        }
        panic!("rolled back, but the store has no rejection: {v:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probation_rolls_back_a_trap_at_start_a_crash_later_and_a_failed_health_check() {
    let tmp = tempfile::tempdir().unwrap();
    let sup = serving(tmp.path(), "0s").await;
    let why = rolled_back(&sup, tmp.path(), "traps", "[\"crash\"]").await;
    assert!(why.contains("probation: instance") && why.contains("trap"), "{why}");
    let started = std::time::Instant::now();
    let why = rolled_back(&sup, tmp.path(), "later", "[\"sleep:2000\", \"crash\"]").await;
    assert!(why.contains("trap"), "{why}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it crashed after 2 s, not before"
    );
    // `serve` answers `ack:health`, not `ok`.
    let why = rolled_back(&sup, tmp.path(), "unhealthy", "[\"serve\"]").await;
    assert!(
        why.contains("failed its health check: it answered `ack:health`"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_updates_leave_the_running_version_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let sup = serving(tmp.path(), "0s").await;
    let before = sup.detail("app").unwrap().generation;
    let t = tmp.path();
    let opts = UpdateOptions::default();

    // Not a component at all, and a core module.
    let dir = version_dir(&t.join("text"), "app", "0.2.0", "");
    std::fs::write(dir.join("x.wasm"), "not wasm").unwrap();
    let manifest = std::fs::read_to_string(dir.join("app.toml")).unwrap();
    let manifest = manifest.replace(&wasm("ipc-probe").display().to_string(), "x.wasm");
    std::fs::write(dir.join("app.toml"), &manifest).unwrap();
    let (e, text) = refused(sup.update("app", folder(dir.clone()), opts).await);
    assert!(matches!(e, UpdateError::Component { .. }), "{text}");
    std::fs::write(dir.join("x.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let (e, text) = refused(sup.update("app", folder(dir), opts).await);
    assert!(matches!(e, UpdateError::Component { .. }), "{text}");
    assert!(text.contains("module"), "{text}");

    // A manifest error, pointing at the file the operator has.
    let dir = version_dir(&t.join("bad"), "app", "two", "");
    let (e, text) = refused(sup.update("app", folder(dir.clone()), opts).await);
    assert!(matches!(e, UpdateError::Manifest { .. }), "{text}");
    assert!(text.contains(&dir.join("app.toml").display().to_string()), "{text}");

    // Another app's name.
    let dir = version_dir(&t.join("other"), "peer", "0.2.0", "");
    let (e, _) = refused(sup.update("app", folder(dir), opts).await);
    assert!(matches!(e, UpdateError::OtherApp { .. }));

    // Dropping what a peer relies on: refused, unless forced (checked with a dry run).
    let dir = version_dir(&t.join("closed"), "app", "0.2.0", "args = [\"tally\"]\n");
    let (e, text) = refused(sup.update("app", folder(dir.clone()), opts).await);
    assert!(matches!(e, UpdateError::Breaking { .. }), "{text}");
    assert!(text.contains("no longer accept messages from `peer`"), "{text}");
    let forced = sup
        .update(
            "app",
            folder(dir),
            UpdateOptions {
                force: true,
                dry_run: true,
            },
        )
        .await
        .unwrap();
    assert!(forced.dry_run && forced.forced.len() == 1 && forced.swap.is_none());
    assert!(
        forced.changes.iter().any(|c| c == "ipc accept: peer -> none"),
        "{:?}",
        forced.changes
    );

    // More memory than all apps share.
    let dir = version_dir(
        &t.join("big"),
        "app",
        "0.2.0",
        "args = [\"tally\"]\n[limits]\nmemory = \"1 GiB\"\n[capabilities.ipc]\naccept = [\"peer\"]\n",
    );
    let small = tempfile::tempdir().unwrap();
    let tight = {
        let root = small.path().join("apps");
        version_dir(
            &root.join("app"),
            "app",
            "0.1.0",
            "args = [\"tally\"]\n[limits]\nmemory = \"16 MiB\"\n",
        );
        with_store(
            &root,
            &small.path().join("store"),
            RuntimeConfig {
                memory_budget: Some(256 << 20),
                ..RuntimeConfig::default()
            },
        )
        .await
    };
    let (e, text) = refused(tight.update("app", folder(dir), opts).await);
    assert!(matches!(e, UpdateError::Memory { .. }), "{text}");
    tight.shutdown().await;

    // None of it touched the running version, nor the store.
    let d = sup.detail("app").unwrap();
    assert_eq!(d.generation, before);
    assert_eq!(d.status.state, AppState::Running);
    assert_eq!(d.manifest.version.to_string(), "0.1.0");
    let v = sup.versions("app").unwrap();
    assert_eq!(v.versions.len(), 1);
    assert_eq!(
        v.versions[0].id, None,
        "a refused update kept the factory version in the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_versions_run_again_after_a_restart_and_a_changed_factory_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("apps");
    let store = tmp.path().join("store");
    let sup = serving(tmp.path(), "0s").await;
    let dir = version_dir(
        &tmp.path().join("v2"),
        "app",
        "0.2.0",
        "args = [\"tally\"]\n[capabilities.ipc]\naccept = [\"peer\"]\n[update]\nprobation = \"0s\"\n",
    );
    sup.update("app", folder(dir), UpdateOptions::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + LONG;
    while sup.versions("app").unwrap().versions[0].status != VersionStatus::Current {
        assert!(tokio::time::Instant::now() < deadline, "never committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sup.shutdown().await;
    drop(sup);

    let sup = with_store(&root, &store, RuntimeConfig::default()).await;
    wait(&sup, "app", AppState::Running).await;
    assert_eq!(sup.detail("app").unwrap().manifest.version.to_string(), "0.2.0");
    let v = sup.versions("app").unwrap();
    let ids: Vec<Option<u64>> = v.versions.iter().map(|r| r.id).collect();
    assert_eq!(ids, [Some(2), Some(1)]);
    assert!(log_text(&sup, "app").contains("runs version 2 (0.2.0) from the app store"));
    // Back to the factory version by hand.
    let r = sup.rollback("app").await.unwrap();
    assert_eq!((r.from.id, r.to.as_ref().unwrap().id), (Some(2), Some(1)));
    wait(&sup, "app", AppState::Running).await;
    assert_eq!(sup.detail("app").unwrap().manifest.version.to_string(), "0.1.0");
    let e = sup.rollback("app").await.unwrap_err().to_string();
    assert!(e.contains("no earlier version to roll back to"), "{e}");
    sup.shutdown().await;
    drop(sup);

    // A new factory version (an edited apps folder) wins over what the store kept.
    let dir = version_dir(
        &tmp.path().join("v3"),
        "app",
        "0.3.0",
        "args = [\"tally\"]\n[capabilities.ipc]\naccept = [\"peer\"]\n[update]\nprobation = \"0s\"\n",
    );
    let sup = with_store(&root, &store, RuntimeConfig::default()).await;
    sup.update("app", folder(dir), UpdateOptions::default()).await.unwrap();
    sup.shutdown().await;
    drop(sup);
    version_dir(
        &root.join("app"),
        "app",
        "1.0.0",
        "args = [\"tally\"]\n[capabilities.ipc]\naccept = [\"peer\"]\n",
    );
    let sup = with_store(&root, &store, RuntimeConfig::default()).await;
    assert_eq!(sup.detail("app").unwrap().manifest.version.to_string(), "1.0.0");
    assert_eq!(sup.versions("app").unwrap().versions[0].id, None);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_come_from_uploads_too_and_need_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let sup = serving(tmp.path(), "0s").await;
    let bytes = std::fs::read(wasm("ipc-probe")).unwrap();
    let digest = vyoma_supervisor::vyoma_store::Digest::of(&bytes).to_string();
    let e = sup
        .store_blob(&"0".repeat(64), bytes.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("the upload was damaged or misnamed"), "{e}");
    sup.store_blob(&digest, bytes).await.unwrap();
    let manifest = "manifest_version = 1\n[app]\nname = \"app\"\nversion = \"0.5.0\"\ncomponent = \"app.wasm\"\nargs = [\"tally\"]\n[capabilities.ipc]\naccept = [\"peer\"]\n".to_string();
    let r = sup
        .update(
            "app",
            UpdateSource::Upload {
                manifest,
                component: digest,
            },
            UpdateOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.to.version, "0.5.0");
    let (e, _) = refused(
        sup.update(
            "app",
            UpdateSource::Upload {
                manifest: String::new(),
                component: "1".repeat(64),
            },
            UpdateOptions::default(),
        )
        .await,
    );
    assert!(matches!(e, UpdateError::NoBlob(_)));
    sup.shutdown().await;

    // Without a store, nothing to update into.
    let plain = crate::common::supervisor(&tmp.path().join("apps"), 8).await;
    let (e, _) = refused(
        plain
            .update("app", folder(tmp.path().join("apps/app")), UpdateOptions::default())
            .await,
    );
    assert!(matches!(e, UpdateError::NoStore));
    plain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_after_rapid_updates_lands_on_the_version_the_store_keeps_as_current() {
    // Updates back to back, each while the last one's probation may be ending: the version
    // a failing update falls back on is always the store's current one.
    let tmp = tempfile::tempdir().unwrap();
    let sup = serving(tmp.path(), "0s").await;
    let grants = "args = [\"tally\"]\n[capabilities.ipc]\naccept = [\"peer\"]\n[update]\nprobation = \"0s\"\n";
    for i in 0..30 {
        let dir = version_dir(
            &tmp.path().join(format!("r{i}")),
            "app",
            &format!("0.{}.0", i + 2),
            grants,
        );
        sup.update("app", folder(dir), UpdateOptions::default()).await.unwrap();
    }
    let bad = version_dir(
        &tmp.path().join("bad"),
        "app",
        "9.0.0",
        "args = [\"crash\"]\n[capabilities.ipc]\naccept = [\"peer\"]\n",
    );
    let r = sup.update("app", folder(bad), UpdateOptions::default()).await.unwrap();
    wait_log(&sup, "app", &format!("version {} turned down", r.to.id.unwrap())).await;
    wait(&sup, "app", AppState::Running).await;
    let v = sup.versions("app").unwrap();
    let current = v
        .versions
        .iter()
        .find(|row| row.status == VersionStatus::Current)
        .unwrap();
    assert_eq!(sup.detail("app").unwrap().manifest.version.to_string(), current.version);
    sup.shutdown().await;
}
