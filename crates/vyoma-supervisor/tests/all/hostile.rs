//! Apps that misbehave on purpose, against what every app shares: the operator's terminal,
//! the supervisor's file descriptors, and the console's input.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vyoma_lifecycle::AppState;
use vyoma_supervisor::Supervisor;

use crate::common::*;

/// Runs a console session over in-memory pipes: writes `script` (ending in `shutdown`
/// is not needed: input ends), returns everything the console printed.
pub(crate) async fn console_session(sup: &Supervisor, script: &[u8]) -> Vec<u8> {
    let Console {
        mut input,
        mut output,
        task,
        ..
    } = console(sup);
    let script = script.to_vec();
    let writer = tokio::spawn(async move {
        input.write_all(&script).await.unwrap();
        // Input ends here: the console returns.
    });
    let mut out = Vec::new();
    tokio::time::timeout(LONG, output.read_to_end(&mut out))
        .await
        .expect("the console ended")
        .unwrap();
    writer.await.unwrap();
    task.await.unwrap().unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_output_cannot_drive_the_operators_terminal() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "escaper", "escaper", "[restart]\npolicy = \"never\"\n");
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "escaper", AppState::Exited).await;
    let out = console_session(&sup, b"log escaper\ninspect escaper\nps\n").await;
    let text = String::from_utf8(out).unwrap();
    // Not one control character reaches the terminal but newlines.
    let bad: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(bad.is_empty(), "control characters {bad:?} in:\n{text}");
    // What the app wrote is still there to read, escaped.
    assert!(text.contains("\\u{1b}[2Jscreen cleared"), "{text}");
    assert!(
        text.contains("\\u{1b}]52;c;ZWNobyBwd25lZA==\\u{7}clipboard set"),
        "{text}"
    );
    assert!(text.contains("\\u{9b}31m8-bit CSI"), "{text}");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newline_free_flood_on_the_console_is_refused_while_read() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "ticker", "ticker", "args = [\"3600000\"]\n");
    let sup = supervisor(d.path(), 8).await;
    let mut script = vec![b'x'; 8 << 20];
    script.extend_from_slice(b"\nps\n");
    let out = String::from_utf8(console_session(&sup, &script).await).unwrap();
    assert!(
        out.contains(&format!(
            "error: line too long ({} bytes, at most 4096); ignored",
            8 << 20
        )),
        "{out}"
    );
    // The console goes on.
    assert!(out.lines().any(|l| l.starts_with("ticker ")), "{out}");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_fd_hog_is_held_to_its_handle_budget_and_the_others_still_open_files() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("shared");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("file.txt"), "hello").unwrap();
    let grant = format!(
        "[capabilities]\ndirs = [{{ host = \"{}\", guest = \"/data\" }}]\n",
        data.display()
    );
    let never = "[restart]\npolicy = \"never\"\n";
    app(
        d.path(),
        "hog",
        "fdhog",
        &format!("{never}[limits]\nhandles = 64\n{grant}"),
    );
    app(d.path(), "hog2", "fdhog", &format!("{never}{grant}"));
    app(d.path(), "reader", "files", &format!("{never}{grant}"));
    let sup = supervisor(d.path(), 8).await;
    // Each is ended by its own budget (the default is 1024 handles: two such apps already
    // need more descriptors than the usual soft limit of 1024, which the supervisor
    // raised), not by the supervisor's descriptors running out.
    for hog in ["hog", "hog2"] {
        wait(&sup, hog, AppState::Failed).await;
        let why = status(&sup, hog).last_exit.unwrap().to_string();
        assert!(why.contains("used up its handle budget"), "{hog}: {why}");
    }
    // Another app still opens its files, and the supervisor its own.
    wait(&sup, "reader", AppState::Exited).await;
    sup.apply("reader", vyoma_lifecycle::Event::Restart).unwrap();
    wait_log(&sup, "reader", "running (instance 2)").await;
    wait(&sup, "reader", AppState::Exited).await;
    assert_eq!(
        status(&sup, "reader").last_exit,
        Some(vyoma_lifecycle::ExitReason::Code(0)),
        "{}",
        log_text(&sup, "reader")
    );
    assert_eq!(
        log_text(&sup, "reader").matches("hello").count(),
        2,
        "{}",
        log_text(&sup, "reader")
    );
    std::fs::File::open(data.join("file.txt")).expect("the supervisor can still open files");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bombs_within_their_own_limits_cannot_take_more_than_the_shared_budget() {
    // Two bombs, each allowed 64 MiB, under a supervisor whose apps may hold 40 MiB in
    // all: each is stopped by the shared budget (or its own limit, once the other has
    // freed its memory), never taking the memory the others and the supervisor need.
    let d = tempfile::tempdir().unwrap();
    let never = "[restart]\npolicy = \"never\"\n";
    let limit = "[limits]\nmemory = \"64 MiB\"\n";
    app(d.path(), "bomb1", "membomb", &format!("{never}{limit}"));
    app(d.path(), "bomb2", "membomb", &format!("{never}{limit}"));
    app(
        d.path(),
        "quiet",
        "ticker",
        "args = [\"50\"]\n[limits]\nmemory = \"4 MiB\"\n",
    );
    let config = vyoma_runtime::RuntimeConfig {
        capacity: 8,
        memory_budget: Some(40 << 20),
        ..vyoma_runtime::RuntimeConfig::default()
    };
    let sup = supervisor_with(d.path(), config).await;
    let budget = sup.runtime().memory_budget().clone();
    for bomb in ["bomb1", "bomb2"] {
        wait(&sup, bomb, AppState::Failed).await;
    }
    let reasons: Vec<_> = ["bomb1", "bomb2"]
        .iter()
        .map(|b| status(&sup, b).last_exit.unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, vyoma_lifecycle::ExitReason::MemoryBudget { limit, .. } if *limit == 40 << 20)),
        "{reasons:?}"
    );
    for r in &reasons {
        assert!(r.to_string().contains("memory"), "{r}");
    }
    // What they held is given back; the quiet app still holds its own, and keeps running.
    assert!(budget.used() < 8 << 20, "{} bytes still charged", budget.used());
    // The quiet app keeps running; it can lose one start to the bombs (all three start at
    // once, and the budget reserves nothing for it: instantiating its memory is refused
    // while they hold the whole budget), and then runs again after its back-off.
    wait(&sup, "quiet", AppState::Running).await;
    wait_log(&sup, "quiet", "tick 5").await;
    sup.shutdown().await;
    assert_eq!(budget.used(), 0, "every instance's memory is released when it ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_past_the_machines_capacity_are_refused_with_why() {
    let d = tempfile::tempdir().unwrap();
    let never = "[restart]\npolicy = \"never\"\n";
    for name in ["a", "b", "c"] {
        app(d.path(), name, "ticker", &format!("args = [\"50\"]\n{never}"));
    }
    let config = vyoma_runtime::RuntimeConfig {
        capacity: 8,
        max_instances: Some(2),
        ..vyoma_runtime::RuntimeConfig::default()
    };
    let sup = supervisor_with(d.path(), config).await;
    assert_eq!(sup.runtime().capacity().instances, 2);
    // Two run; the third (whichever lost the race: the three start at once) is refused,
    // saying why and what to do.
    let deadline = std::time::Instant::now() + LONG;
    let (refused, running) = loop {
        let rows = sup.status();
        let failed: Vec<_> = rows.iter().filter(|r| r.state == AppState::Failed).collect();
        let running: Vec<_> = rows.iter().filter(|r| r.state == AppState::Running).collect();
        if failed.len() == 1 && running.len() == 2 {
            break (failed[0].clone(), running[0].name.clone());
        }
        assert!(std::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let why = refused.last_exit.unwrap().to_string();
    assert!(
        why.contains(
            "2 instances are running, the most this machine can hold (the operator's cap is 2); stop an app first"
        ),
        "{why}"
    );
    assert_eq!(sup.runtime().live_instances(), 2);
    // Room made, it starts.
    sup.apply(&running, vyoma_lifecycle::Event::Kill).unwrap();
    wait(&sup, &running, AppState::Stopped).await;
    while sup.runtime().live_instances() > 1 {
        assert!(std::time::Instant::now() < deadline, "{running}'s instance never ended");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sup.apply(&refused.name, vyoma_lifecycle::Event::Start).unwrap();
    wait(&sup, &refused.name, AppState::Running).await;
    sup.shutdown().await;
    assert_eq!(sup.runtime().live_instances(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_loop_runs_in_the_batch_lane_and_inspect_says_so() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "spin", "spinner", "");
    app(d.path(), "tick", "ticker", "args = [\"20\"]\n");
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "spin", AppState::Running).await;
    let deadline = std::time::Instant::now() + LONG;
    while sup.detail("spin").unwrap().lane != Some(vyoma_runtime::Lane::Batch) {
        assert!(std::time::Instant::now() < deadline, "the spinner never became batch");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    wait_log(&sup, "tick", "tick 5").await;
    assert_eq!(sup.detail("tick").unwrap().lane, Some(vyoma_runtime::Lane::Interactive));
    let shown = vyoma_supervisor::console::render_inspect(&sup.detail("spin").unwrap().report());
    assert!(
        shown.contains("; batch (runs whole slices: behind every interactive app)"),
        "{shown}"
    );
    sup.apply("spin", vyoma_lifecycle::Event::Kill).unwrap();
    wait(&sup, "spin", AppState::Stopped).await;
    assert_eq!(sup.detail("spin").unwrap().lane, None, "no instance, no lane");
    sup.shutdown().await;
}
