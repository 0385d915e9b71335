//! The misbehaviour zoo: 200 apps under one supervisor, 50 of them hostile (busy loops,
//! memory bombs, stack overflows, traps, output floods, handle hogs, an IPC flood at one
//! peer). The well-behaved ones keep ticking, IPC between well-behaved apps still gets
//! through, `ps` answers, and shutdown ends everything. How *late* the well-behaved apps
//! wake is a figure, not a test: `vyoma-bench zoo` (docs/PERFORMANCE.md).

use std::time::Duration;

use vyoma_lifecycle::{AppState, ExitReason, TrapKind};

use crate::common::*;

const QUIET: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_apps_of_which_fifty_are_hostile() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("shared");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("file.txt"), "hello").unwrap();
    let never = "[restart]\npolicy = \"never\"\n";
    let small = "[limits]\nmemory = \"8 MiB\"\n";
    for i in 0..QUIET {
        app(
            d.path(),
            &format!("m{i:03}"),
            "metronome",
            &format!("args = [\"100\"]\n{small}"),
        );
    }
    let grant = format!(
        "[capabilities]\ndirs = [{{ host = \"{}\", guest = \"/data\" }}]\n",
        data.display()
    );
    let ipc_all = "[capabilities.ipc]\nsend = [\"*\"]\naccept = [\"*\"]\n";
    // 50 hostile apps, and the flood's victim and a well-behaved IPC client beside them.
    let hostile: [(&str, &str, String); 7] = [
        ("spin", "spinner", small.to_string()),
        ("bomb", "membomb", format!("{never}{small}")),
        ("deep", "trapper", format!("args = [\"stack\"]\n{never}")),
        ("trap", "trapper", format!("args = [\"unreachable\"]\n{never}")),
        ("loud", "chatty", small.to_string()),
        ("fds", "fdhog", format!("{never}[limits]\nhandles = 64\n{grant}")),
        (
            "flood",
            "ipc-probe",
            format!("args = [\"sendn:victim:100000000\"]\n{ipc_all}"),
        ),
    ];
    let mut count = 0;
    for (k, (prefix, component, extra)) in hostile.iter().enumerate() {
        let n = if k == 0 { 8 } else { 7 };
        for i in 0..n {
            app(d.path(), &format!("{prefix}{i}"), component, extra);
            count += 1;
        }
    }
    assert_eq!(count, 50);
    app(
        d.path(),
        "victim",
        "ipc-probe",
        &format!("args = [\"serve\"]\n{ipc_all}"),
    );
    app(
        d.path(),
        "client",
        "ipc-probe",
        &format!("args = [\"sleep:2000\", \"request:victim:hello\"]\n{never}{ipc_all}"),
    );
    let sup = supervisor(d.path(), 512).await;
    assert_eq!(sup.names().len(), 202);

    // Each hostile app that can end is ended by its own limit, with its own reason.
    for i in 0..7 {
        for (name, why) in [
            (format!("bomb{i}"), "memory"),
            (format!("deep{i}"), "stack overflow"),
            (format!("trap{i}"), "unreachable"),
            (format!("fds{i}"), "handle budget"),
        ] {
            wait(&sup, &name, AppState::Failed).await;
            let exit = status(&sup, &name).last_exit.unwrap();
            assert!(exit.to_string().contains(why), "{name}: {exit}");
        }
    }
    assert!(matches!(
        status(&sup, "trap0").last_exit,
        Some(ExitReason::Trap {
            kind: TrapKind::Unreachable,
            ..
        })
    ));

    // The well-behaved apps keep ticking while the rest spin, flood and shout: over three
    // seconds each is due 30 ticks; all of them get at least a third (a liveness bound,
    // not a latency figure).
    let ticks = |sup: &vyoma_supervisor::Supervisor| -> Vec<usize> {
        (0..QUIET)
            .map(|i| log_text(sup, &format!("m{i:03}")).matches("late ").count())
            .collect()
    };
    let before = ticks(&sup);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = ticks(&sup);
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        assert!(a - b >= 10, "m{i:03} ticked {} times in 3 s", a - b);
    }
    for i in 0..8 {
        assert_eq!(status(&sup, &format!("spin{i}")).state, AppState::Running);
    }

    // The victim's inbox is flooded by seven senders, yet a request from another app gets
    // its fair share of it and is answered.
    wait_log(&sup, "client", "request victim -> reply ack:hello").await;

    // The operator still gets answers.
    let rows = sup.status();
    assert_eq!(rows.len(), 202);
    let out = String::from_utf8(crate::hostile::console_session(&sup, b"ps\n").await).unwrap();
    assert!(out.contains("spin7 ") && out.contains("m149 "), "{out}");

    let stopped = tokio::time::timeout(LONG, sup.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown did not finish");
    assert!(sup.status().iter().all(|s| !s.state.is_live()), "{:?}", sup.status());
}
