//! Starting and stopping: apps that cannot run beside apps that can, graceful stop with a
//! stop timeout, start timeouts, and retrying a failed app after its cool-down.

use std::time::Duration;

use vyoma_lifecycle::{AppState, Event, ExitReason};
use vyoma_supervisor::{StopOutcome, SupervisorError, console};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_apps_fail_alone_and_say_why() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "good", "ticker", "args = [\"3600000\"]\n");
    // A typo in one manifest; an app that depends on it; an app naming a ghost.
    app(d.path(), "typo", "ticker", "[limits]\nmemroy = \"1 MiB\"\n");
    app(d.path(), "needs-typo", "ticker", "depends_on = [\"typo\"]\n");
    app(d.path(), "haunted", "ticker", "depends_on = [\"ghost\"]\n");
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "good", AppState::Running).await;
    let rows = sup.status();
    let row = |n: &str| {
        rows.iter()
            .find(|r| r.name == n)
            .unwrap_or_else(|| panic!("no row {n}: {rows:?}"))
    };
    for n in ["typo", "needs-typo", "haunted"] {
        assert_eq!(row(n).state, AppState::Failed, "{n}");
    }
    let reason = |n: &str| row(n).last_exit.as_ref().unwrap().to_string();
    assert!(reason("typo").contains("unknown field `memroy`"), "{}", reason("typo"));
    assert!(reason("needs-typo").contains("depends on app `typo`, which cannot run"));
    assert!(reason("haunted").contains("unknown app `ghost`"));
    // `log` shows every problem with file, line and column; `start` says why not.
    let log = log_text(&sup, "typo");
    assert!(
        log.contains("typo/app.toml:7:1: error: unknown field `memroy`"),
        "{log}"
    );
    match sup.apply("typo", Event::Start) {
        Err(e @ SupervisorError::Invalid { .. }) => assert!(e.to_string().contains("`typo` cannot run"), "{e}"),
        other => panic!("{other:?}"),
    }
    // The console shows them in `ps` too.
    let ps = console::render_ps(&sup.status());
    assert!(
        ps.lines().any(|l| l.starts_with("typo ") && l.contains("failed")),
        "{ps}"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_a_listening_app_finish_and_kills_a_deaf_one_after_its_timeout() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "polite",
        "ipc-probe",
        "args = [\"graceful:100\"]\n[restart]\npolicy = \"always\"\n",
    );
    app(
        d.path(),
        "deaf",
        "ipc-probe",
        "args = [\"deaf\"]\n[lifecycle]\nstop_timeout = \"300ms\"\n",
    );
    app(d.path(), "plain", "ticker", "args = [\"3600000\"]\n");
    let sup = supervisor(d.path(), 8).await;
    wait_log(&sup, "polite", "waiting for stop").await;
    wait_log(&sup, "deaf", "deaf (asked: false)").await;
    wait(&sup, "plain", AppState::Running).await;

    let outcome = sup.stop("polite").unwrap();
    assert_eq!(
        outcome,
        StopOutcome::Asked {
            timeout: Duration::from_secs(5)
        }
    );
    wait(&sup, "polite", AppState::Stopped).await;
    let log = log_text(&sup, "polite");
    assert!(
        log.contains("stopping (asked: true)") && log.contains("flushed"),
        "{log}"
    );
    // It ended by itself, and `always` does not bring it back: stopped means stopped.
    assert_eq!(status(&sup, "polite").last_exit, Some(ExitReason::Code(0)));
    assert!(log.contains("stopped as asked"), "{log}");

    assert!(matches!(sup.stop("deaf").unwrap(), StopOutcome::Asked { .. }));
    assert_eq!(status(&sup, "deaf").state, AppState::Stopping);
    wait(&sup, "deaf", AppState::Stopped).await;
    assert_eq!(
        status(&sup, "deaf").last_exit,
        Some(ExitReason::StopTimeout {
            after: Duration::from_millis(300)
        })
    );
    assert!(log_text(&sup, "deaf").contains("did not stop within 300ms of being asked: killed"));

    // An app that does not import `vyoma:app/lifecycle` is not asked: it ends at once.
    assert_eq!(sup.stop("plain").unwrap(), StopOutcome::Stopped);
    assert_eq!(status(&sup, "plain").state, AppState::Stopped);
    assert!(matches!(sup.stop("plain"), Err(SupervisorError::Transition { .. })));
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_hangs_fails_after_its_start_timeout_and_holds_up_only_its_dependents() {
    let d = tempfile::tempdir().unwrap();
    vyoma_testkit::write_hanging_app(
        d.path(),
        "hang",
        "[restart]\npolicy = \"never\"\n[lifecycle]\nstart_timeout = \"400ms\"\n",
    );
    app(
        d.path(),
        "after-hang",
        "ticker",
        "args = [\"3600000\"]\ndepends_on = [\"hang\"]\n",
    );
    app(d.path(), "free", "ticker", "args = [\"3600000\"]\n");
    let mut events = {
        // Subscribe before anything starts: build, then start by hand.
        let config = vyoma_runtime::RuntimeConfig {
            cache_dir: Some(vyoma_testkit::shared_cache(env!("CARGO_TARGET_TMPDIR"))),
            ..vyoma_runtime::RuntimeConfig::default()
        };
        let booted = vyoma_supervisor::prepare(
            d.path(),
            config,
            std::sync::Arc::new(vyoma_supervisor::RealClock::default()),
        )
        .await
        .unwrap();
        let sup = booted.supervisor.clone();
        let events = sup.events();
        let starting = tokio::spawn(async move {
            let mut b = booted;
            b.start(None).await;
        });
        // `free` does not wait behind `hang`.
        wait(&sup, "free", AppState::Running).await;
        assert_eq!(status(&sup, "hang").state, AppState::Starting);
        assert_eq!(status(&sup, "after-hang").state, AppState::Stopped);
        wait(&sup, "hang", AppState::Failed).await;
        assert_eq!(
            status(&sup, "hang").last_exit,
            Some(ExitReason::StartTimeout {
                after: Duration::from_millis(400)
            })
        );
        // Its dependent is started once it has settled (failed counts as settled).
        wait(&sup, "after-hang", AppState::Running).await;
        starting.await.unwrap();
        sup.shutdown().await;
        events
    };
    let seen = drain(&mut events);
    assert!(
        seen.iter()
            .any(|e| e.app == "hang" && e.from == AppState::Starting && e.to == AppState::Failed),
        "{seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_app_is_retried_after_its_cool_down() {
    let d = tempfile::tempdir().unwrap();
    // Fails at once, no policy restarts (intensity 0), retried one second after failing.
    app(
        d.path(),
        "flaky",
        "trapper",
        "args = [\"unreachable\"]\n[restart]\nintensity = 0\nretry_after = \"1s\"\n",
    );
    let sup = supervisor(d.path(), 8).await;
    let mut events = sup.events();
    let seen = events_until(&mut events, |e| e.app == "flaky" && e.to == AppState::Starting).await;
    assert!(
        seen.iter()
            .any(|e| e.from == AppState::Failed && e.to == AppState::Starting),
        "{seen:#?}"
    );
    assert!(status(&sup, "flaky").restarts >= 1);
    assert!(log_text(&sup, "flaky").contains("failed: retrying in 1s"));
    sup.shutdown().await;
}
