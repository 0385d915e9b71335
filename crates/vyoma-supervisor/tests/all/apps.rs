//! End-to-end tests of the supervisor with real wasm32-wasip2 components from `apps/`
//! (built by `./dev apps`). Each test writes app folders into a temp dir, runs them through
//! a real `Supervisor` and `Runtime`, and checks states, exit reasons and captured logs.
//! Waits are for states or log lines with generous deadlines, never fixed sleeps.

use vyoma_lifecycle::{AppState, ExitReason, TrapKind};
use vyoma_testkit::wasm;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_reasons_are_precise() {
    let d = tempfile::tempdir().unwrap();
    let never = "[restart]\npolicy = \"never\"\n";
    app(d.path(), "ok", "hello", never);
    app(
        d.path(),
        "code",
        "trapper",
        &format!("args = [\"exit\", \"7\"]\n{never}"),
    );
    app(d.path(), "err", "trapper", &format!("args = [\"err\"]\n{never}"));
    app(
        d.path(),
        "unreachable",
        "trapper",
        &format!("args = [\"unreachable\"]\n{never}"),
    );
    app(d.path(), "panic", "trapper", &format!("args = [\"panic\"]\n{never}"));
    app(d.path(), "oob", "trapper", &format!("args = [\"oob\"]\n{never}"));
    app(d.path(), "stack", "trapper", &format!("args = [\"stack\"]\n{never}"));
    let sup = supervisor(d.path(), 32).await;
    wait(&sup, "ok", AppState::Exited).await;
    assert_eq!(status(&sup, "ok").last_exit, Some(ExitReason::Code(0)));
    // WASI 0.2's `exit` carries only ok/err, so `exit(7)` from wasi-libc arrives as 1.
    for (name, want) in [("code", 1), ("err", 1)] {
        wait(&sup, name, AppState::Failed).await;
        assert_eq!(status(&sup, name).last_exit, Some(ExitReason::Code(want)), "{name}");
    }
    for (name, kind) in [
        ("unreachable", TrapKind::Unreachable),
        ("panic", TrapKind::Unreachable),
        ("oob", TrapKind::MemoryOutOfBounds),
        ("stack", TrapKind::StackOverflow),
    ] {
        wait(&sup, name, AppState::Failed).await;
        match status(&sup, name).last_exit {
            Some(ExitReason::Trap { kind: k, .. }) => assert_eq!(k, kind, "{name}"),
            other => panic!("{name}: expected a {kind} trap, got {other:?}"),
        }
    }
    assert!(log_text(&sup, "panic").contains("trapper: asked to panic"));
    assert!(log_text(&sup, "ok").contains("exited: exit code 0"));
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_with_backoff_then_fails_past_intensity() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "crasher",
        "crasher",
        "args = [\"20\"]\n[restart]\npolicy = \"on-failure\"\nbackoff = \"50ms\"\nmax_backoff = \"150ms\"\nintensity = 3\nperiod = \"1m\"\n",
    );
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "crasher", AppState::Failed).await;
    let s = status(&sup, "crasher");
    assert_eq!(s.restarts, 3);
    assert!(matches!(
        s.last_exit,
        Some(ExitReason::Trap {
            kind: TrapKind::Unreachable,
            ..
        })
    ));
    let log = log_text(&sup, "crasher");
    let delays: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("sys restarting in "))
        .collect();
    assert_eq!(delays, ["50ms", "100ms", "150ms"], "log:\n{log}");
    assert_eq!(log.matches("crasher: up").count(), 4);
    assert!(log.contains("failed: not restarting"));
    // An operator start is still possible after `failed`, and resets the intensity window.
    sup.apply("crasher", vyoma_lifecycle::Event::Start).unwrap();
    wait(&sup, "crasher", AppState::Backoff).await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_loops_are_preempted_and_killable() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..4 {
        app(d.path(), &format!("spin{i}"), "spinner", "");
    }
    app(d.path(), "ticker", "ticker", "args = [\"20\"]\n");
    let sup = supervisor(d.path(), 16).await;
    wait(&sup, "all", AppState::Running).await;
    // Four busy loops on two workers, and the ticker still gets to run repeatedly.
    wait_log(&sup, "ticker", "tick 10\n").await;
    // `ps` shows who burns the CPU: the ticker sleeps between ticks, the spinners run
    // whenever they are let (each has run for many preemption ticks of 10 ms by now).
    let ticker_cpu = status(&sup, "ticker").cpu;
    for i in 0..4 {
        let spin_cpu = status(&sup, &format!("spin{i}")).cpu;
        assert!(
            spin_cpu > ticker_cpu && spin_cpu >= std::time::Duration::from_millis(20),
            "spin{i} {spin_cpu:?} vs ticker {ticker_cpu:?}"
        );
    }
    for i in 0..4 {
        let name = format!("spin{i}");
        sup.apply(&name, vyoma_lifecycle::Event::Kill).unwrap();
        assert_eq!(status(&sup, &name).state, AppState::Stopped);
        assert_eq!(status(&sup, &name).last_exit, Some(ExitReason::Killed));
    }
    // Killed means killed: the policy (always-on here via default on-failure) never
    // restarts it, and the ticker goes on.
    let before = log_text(&sup, "ticker").matches("tick").count();
    wait_log(&sup, "ticker", &format!("tick {}\n", before + 5)).await;
    for i in 0..4 {
        assert_eq!(status(&sup, &format!("spin{i}")).state, AppState::Stopped);
    }
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_sleeping_in_a_host_call_can_be_killed() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "sleeper",
        "ticker",
        "args = [\"3600000\"]\n[restart]\npolicy = \"always\"\n",
    );
    let sup = supervisor(d.path(), 8).await;
    wait_log(&sup, "sleeper", "tick 1").await;
    sup.apply("sleeper", vyoma_lifecycle::Event::Kill).unwrap();
    let s = status(&sup, "sleeper");
    assert_eq!((s.state, s.last_exit), (AppState::Stopped, Some(ExitReason::Killed)));
    assert!(log_text(&sup, "sleeper").contains("killed by operator"));
    // `start` brings it back as a new instance.
    sup.apply("sleeper", vyoma_lifecycle::Event::Start).unwrap();
    wait_log(&sup, "sleeper", "sys running (instance 2)\nout tick 1").await;
    assert_eq!(status(&sup, "sleeper").restarts, 1);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_stopped_at_its_limit_while_others_run() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "bomb",
        "membomb",
        "[limits]\nmemory = \"8 MiB\"\n[restart]\npolicy = \"never\"\n",
    );
    app(d.path(), "ticker", "ticker", "args = [\"20\"]\n");
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "bomb", AppState::Failed).await;
    match status(&sup, "bomb").last_exit {
        Some(ExitReason::MemoryLimit { limit, requested }) => {
            assert_eq!(limit, 8 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected a memory limit exit, got {other:?}"),
    }
    assert!(log_text(&sup, "bomb").contains("membomb: holding 5 MiB"));
    wait(&sup, "ticker", AppState::Running).await;
    let before = log_text(&sup, "ticker").matches("tick").count();
    wait_log(&sup, "ticker", &format!("tick {}\n", before + 3)).await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_escapes_are_denied() {
    let d = tempfile::tempdir().unwrap();
    let dir = app(
        d.path(),
        "files",
        "files",
        "[restart]\npolicy = \"never\"\n[[capabilities.dirs]]\nhost = \"data\"\nguest = \"/data\"\n",
    );
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/hello.txt"), "visible").unwrap();
    std::fs::write(dir.join("secret.txt"), "TOP-SECRET").unwrap();
    std::os::unix::fs::symlink(&dir, dir.join("data/link-out")).unwrap();
    // A relative link that climbs out of the grant is refused too.
    std::os::unix::fs::symlink("../secret.txt", dir.join("data/rel-out")).unwrap();
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "files", AppState::Exited).await;
    let log = log_text(&sup, "files");
    assert!(log.contains("/data/rel-out (not a readable text file)"), "{log}");
    assert!(log.contains("/data/hello.txt (7 bytes): visible"), "{log}");
    assert_eq!(log.matches("escape denied").count(), 5, "{log}");
    assert!(
        log.contains("write denied"),
        "read-only grant must refuse writes:\n{log}"
    );
    assert!(!log.contains("TOP-SECRET") && !log.contains("ESCAPED"), "{log}");
    assert!(!dir.join("data/written-by-app.txt").exists());
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_gets_only_what_it_declares() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "bare",
        "probe",
        "args = [\"x\"]\n[restart]\npolicy = \"never\"\n",
    );
    let rich = app(
        d.path(),
        "rich",
        "probe",
        "[env]\nGREETING = \"hi\"\n[restart]\npolicy = \"never\"\n[capabilities]\ninherit_env = [\"HOME\"]\nstdin = \"in.txt\"\nnetwork = { bind = [\"127.0.0.1:*\"] }\n",
    );
    std::fs::write(rich.join("in.txt"), "line from a file\n").unwrap();
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "bare", AppState::Exited).await;
    wait(&sup, "rich", AppState::Exited).await;
    let b = log_text(&sup, "bare");
    assert!(b.contains("probe: args=[\"x\"]"), "{b}");
    assert!(!b.contains("probe: env"), "no environment without a grant:\n{b}");
    assert!(b.contains("probe: stdin 0 bytes"), "{b}");
    assert!(b.contains("probe: net listen denied"), "{b}");
    assert!(b.contains("probe: net connect failed"), "{b}");
    let r = log_text(&sup, "rich");
    assert!(r.contains("probe: env GREETING=hi"), "{r}");
    let home = std::env::var("HOME").unwrap_or_default();
    if !home.is_empty() {
        assert!(r.contains(&format!("probe: env HOME={home}")), "{r}");
    }
    assert!(r.contains("probe: stdin 17 bytes: \"line from a file\""), "{r}");
    assert!(r.contains("probe: net listen ok"), "{r}");
    // Bind was granted, connect was not.
    assert!(r.contains("probe: net connect failed"), "{r}");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_connects_reach_only_granted_addresses() {
    // A live listener: a denied connect must be the sandbox's refusal, not an empty port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let (conn, _) = listener.accept().unwrap();
        drop(conn);
        // Any further connection would be a sandbox escape: count them for a moment.
        listener.set_nonblocking(true).unwrap();
        let mut more = 0;
        for _ in 0..50 {
            if listener.accept().is_ok() {
                more += 1;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        more
    });
    let d = tempfile::tempdir().unwrap();
    let connect =
        |grant: &str| format!("[env]\nPROBE_CONNECT = \"127.0.0.1:{port}\"\n[restart]\npolicy = \"never\"\n{grant}");
    app(d.path(), "none", "probe", &connect(""));
    app(
        d.path(),
        "elsewhere",
        "probe",
        &connect("[capabilities]\nnetwork = { connect = [\"127.0.0.1:1\", \"10.0.0.0/8:*\"] }\n"),
    );
    let sup = supervisor(d.path(), 8).await;
    for n in ["none", "elsewhere"] {
        wait(&sup, n, AppState::Exited).await;
        let log = log_text(&sup, n);
        assert!(log.contains("probe: net connect failed"), "{n}:\n{log}");
    }
    sup.shutdown().await;
    // Now the one app that may: it reaches the listener.
    let d2 = tempfile::tempdir().unwrap();
    app(
        d2.path(),
        "granted",
        "probe",
        &connect(&format!(
            "[capabilities]\nnetwork = {{ connect = [\"127.0.0.1:{port}\"] }}\n"
        )),
    );
    let sup = supervisor(d2.path(), 8).await;
    wait(&sup, "granted", AppState::Exited).await;
    let log = log_text(&sup, "granted");
    assert!(log.contains("probe: net connect ok"), "{log}");
    // Connecting binds an ephemeral port implicitly; listening still needs `bind`.
    assert!(log.contains("probe: net listen denied"), "{log}");
    sup.shutdown().await;
    assert_eq!(accepted.join().unwrap(), 0, "only the granted app connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_apps_all_reach_running() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..200 {
        app(
            d.path(),
            &format!("t{i:03}"),
            "ticker",
            "args = [\"1000\"]\n[limits]\nlog_buffer = \"4 KiB\"\n",
        );
    }
    let sup = supervisor(d.path(), 400).await;
    wait(&sup, "all", AppState::Running).await;
    let rows = sup.status();
    assert_eq!(rows.len(), 200);
    assert!(
        rows.iter()
            .all(|r| r.state == AppState::Running && r.memory.unwrap_or(0) > 0)
    );
    for i in [0, 99, 199] {
        wait_log(&sup, &format!("t{i:03}"), "tick 1").await;
    }
    sup.shutdown().await;
    assert!(sup.status().iter().all(|r| r.state == AppState::Stopped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_update_swaps_only_that_app() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("upd");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(wasm("hello"), dir.join("app.wasm")).unwrap();
    std::fs::write(
        dir.join("app.toml"),
        "manifest_version = 1\n[app]\nname = \"upd\"\nversion = \"0.1.0\"\ncomponent = \"app.wasm\"\nargs = [\"ok\"]\n[restart]\npolicy = \"never\"\n",
    )
    .unwrap();
    app(d.path(), "ticker", "ticker", "args = [\"20\"]\n");
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "upd", AppState::Exited).await;
    assert!(log_text(&sup, "upd").contains("hello from VyomaOS: ok"));
    let old_sha = sup.detail("upd").unwrap().component.unwrap().sha256.clone();
    // Swap the file (write-then-rename, as a deploy would) and restart only this app.
    std::fs::copy(wasm("trapper"), dir.join("app.wasm.new")).unwrap();
    std::fs::rename(dir.join("app.wasm.new"), dir.join("app.wasm")).unwrap();
    sup.apply("upd", vyoma_lifecycle::Event::Restart).unwrap();
    wait_log(&sup, "upd", "trapper: ok").await;
    wait(&sup, "upd", AppState::Exited).await;
    let new_sha = sup.detail("upd").unwrap().component.unwrap().sha256.clone();
    assert_ne!(old_sha, new_sha);
    assert!(log_text(&sup, "upd").contains("loaded new component"));
    wait(&sup, "ticker", AppState::Running).await;
    assert_eq!(status(&sup, "ticker").restarts, 0, "only the updated app restarts");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_component_fails_alone() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("bad.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(
        bad.join("app.toml"),
        "manifest_version = 1\n[app]\nname = \"bad\"\nversion = \"0.1.0\"\ncomponent = \"bad.wasm\"\n[restart]\npolicy = \"never\"\n",
    )
    .unwrap();
    app(d.path(), "ticker", "ticker", "args = [\"20\"]\n");
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "bad", AppState::Failed).await;
    match status(&sup, "bad").last_exit {
        Some(ExitReason::Error(m)) => assert!(m.contains("is a core wasm module VyomaOS cannot run"), "{m}"),
        other => panic!("expected a load error, got {other:?}"),
    }
    wait(&sup, "ticker", AppState::Running).await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_app_cannot_grow_supervisor_memory() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "chatty",
        "chatty",
        "args = [\"50000\"]\n[limits]\nlog_buffer = \"8 KiB\"\n[restart]\npolicy = \"never\"\n",
    );
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "chatty", AppState::Exited).await;
    let vyoma_supervisor::LogUsage {
        dropped,
        held,
        capacity: cap,
    } = sup.detail("chatty").unwrap().log_usage;
    assert_eq!(cap, 8 << 10);
    assert!(held <= cap);
    assert!(dropped > 50_000, "dropped only {dropped} lines");
    let log = log_text(&sup, "chatty");
    assert!(log.contains("chatty: done after 50000 lines"), "{log}");
    assert!(log.contains("err chatty: err 50000"), "stderr is kept apart:\n{log}");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_start_first_and_stop_last() {
    // `top` depends on `mid`, which depends on `base`; `side` is on its own. All three of
    // the chain listen for stop requests and take a moment to finish, so a shutdown that
    // did not wait for dependents would stop `base` while `top` still runs.
    let d = tempfile::tempdir().unwrap();
    let slow_stop = "args = [\"graceful:150\"]\n";
    app(d.path(), "base", "ipc-probe", slow_stop);
    app(
        d.path(),
        "mid",
        "ipc-probe",
        &format!("{slow_stop}depends_on = [\"base\"]\n"),
    );
    app(
        d.path(),
        "top",
        "ipc-probe",
        &format!("{slow_stop}depends_on = [\"mid\"]\n"),
    );
    app(d.path(), "side", "ticker", "args = [\"3600000\"]\n");
    let sup = supervisor(d.path(), 8).await;
    wait(&sup, "all", AppState::Running).await;
    for n in ["base", "mid", "top"] {
        wait_log(&sup, n, "waiting for stop").await;
    }
    let mut events = sup.events();
    sup.shutdown().await;
    let seen = drain(&mut events);
    let stopped_at = |app: &str| {
        seen.iter()
            .find(|e| e.app == app && e.to == AppState::Stopped)
            .unwrap_or_else(|| panic!("{app} never stopped: {seen:#?}"))
            .seq
    };
    let asked_at = |app: &str| {
        seen.iter()
            .find(|e| e.app == app && e.to == AppState::Stopping)
            .unwrap_or_else(|| panic!("{app} was never asked to stop: {seen:#?}"))
            .seq
    };
    // Each is asked only after its dependent has ended.
    assert!(stopped_at("top") < asked_at("mid"), "{seen:#?}");
    assert!(stopped_at("mid") < asked_at("base"), "{seen:#?}");
    for n in ["base", "mid", "top"] {
        assert!(
            log_text(&sup, n).contains("flushed"),
            "{n} was not let finish:\n{}",
            log_text(&sup, n)
        );
        assert_eq!(status(&sup, n).last_exit, Some(ExitReason::Code(0)), "{n}");
    }
    // `side` does not listen: killed, not asked.
    assert!(seen.iter().any(|e| e.app == "side" && e.to == AppState::Stopped));
    assert!(!seen.iter().any(|e| e.app == "side" && e.to == AppState::Stopping));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_release_their_pool_slots() {
    // A pool of 4 instance slots and 40 restarts of an app parked in a host call: if a
    // killed instance kept its slot, the fifth start would fail with the pool exhausted.
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "sleeper", "ticker", "args = [\"3600000\"]\n");
    let sup = supervisor(d.path(), 4).await;
    assert_eq!(
        sup.runtime().allocator(),
        vyoma_runtime::Allocator::Pooling { capacity: 4 }
    );
    for i in 1..=40 {
        wait_log(&sup, "sleeper", &format!("sys running (instance {i})\nout tick 1")).await;
        sup.apply("sleeper", vyoma_lifecycle::Event::Restart).unwrap();
    }
    wait(&sup, "sleeper", AppState::Running).await;
    let s = status(&sup, "sleeper");
    assert_eq!(s.restarts, 40);
    assert!(
        !log_text(&sup, "sleeper").contains("sys exited: error"),
        "{}",
        log_text(&sup, "sleeper")
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview1_module_from_plain_clang_runs_as_it_is_with_only_its_grants() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("apps");
    let dir = root.join("cprog");
    let module = vyoma_testkit::write_c_preview1_app(
        &root,
        "cprog",
        vyoma_testkit::PREVIEW1_C,
        "args = [\"one\", \"two words\"]\n[env]\nGREETING = \"hello from the manifest\"\n\
         [restart]\npolicy = \"never\"\n[[capabilities.dirs]]\nhost = \"data\"\nguest = \"/data\"\nmode = \"rw\"\n",
    );
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/in.txt"), "granted text").unwrap();
    let sup = supervisor(&root, 8).await;
    // It exits with 3: a failure. (The preview-1 adapter Wasmtime 48 ships passes a
    // non-zero `proc_exit` on as `wasi:cli/exit.exit(err)`, which is code 1.)
    wait(&sup, "cprog", AppState::Failed).await;
    let log = log_text(&sup, "cprog");
    assert!(
        log.contains("p1: argc=3 [one] [two words] GREETING=hello from the manifest"),
        "{log}"
    );
    assert!(log.contains("p1: read [granted text]"), "{log}");
    assert!(log.contains("p1: /etc/passwd denied"), "{log}");
    assert!(log.contains("p1: ../escape denied"), "{log}");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/out.txt")).unwrap(),
        "written by a preview-1 module"
    );
    assert!(!d.path().join("escape.txt").exists());
    assert_eq!(
        status(&sup, "cprog").last_exit.map(|e| e.to_string()),
        Some("exit code 1".into())
    );
    let report = sup.detail("cprog").unwrap().report();
    let c = report.component.expect("loaded");
    assert!(c.adapted, "inspect says it was adapted");
    assert_eq!(c.sha256, vyoma_runtime::sha256_hex(&std::fs::read(&module).unwrap()));
    sup.shutdown().await;
}
