//! End-to-end tests of IPC between real components: the `ipc-probe` test app (built by
//! `./dev apps`) runs the IPC operations named in its manifest's `args` and prints each
//! outcome, so each test is a few manifests and a look at the logs and counters.

use std::fmt::Write as _;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vyoma_lifecycle::{AppState, ExitReason};

use crate::common::*;

fn args(ops: &[&str]) -> String {
    let quoted: Vec<String> = ops.iter().map(|o| format!("{o:?}")).collect();
    format!("args = [{}]\n", quoted.join(", "))
}

/// Manifest text for an ipc-probe app running `ops` with the given grants and extra text.
fn probe(ops: &[&str], send: &str, accept: &str, extra: &str) -> String {
    format!(
        "{}{extra}[capabilities.ipc]\nsend = [{send}]\naccept = [{accept}]\n",
        args(ops)
    )
}

const NEVER: &str = "[restart]\npolicy = \"never\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_is_real_and_grants_are_enforced_both_ways() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    app(root, "inbox", "ipc-probe", &probe(&["recv:1"], "", "\"good\"", NEVER));
    app(
        root,
        "good",
        "ipc-probe",
        &probe(&["send:inbox:hello"], "\"inbox\"", "", NEVER),
    );
    // Granted to send, but the receiver does not accept it.
    app(
        root,
        "sneaky",
        "ipc-probe",
        &probe(&["send:inbox:psst"], "\"inbox\"", "", NEVER),
    );
    // No send grant at all.
    app(
        root,
        "mute",
        "ipc-probe",
        &format!("{}{NEVER}", args(&["send:inbox:hi"])),
    );
    app(
        root,
        "lost",
        "ipc-probe",
        &probe(&["send:nobody:hi"], "\"*\"", "", NEVER),
    );
    let sup = supervisor(root, 16).await;
    for name in ["inbox", "good", "sneaky", "mute", "lost"] {
        wait(&sup, name, AppState::Exited).await;
        assert_eq!(status(&sup, name).last_exit, Some(ExitReason::Code(0)), "{name}");
    }
    // The only message delivered carries the sender's real name, set by the supervisor.
    assert!(log_text(&sup, "inbox").contains("recv from good: hello"));
    assert!(log_text(&sup, "good").contains("send inbox -> ok"));
    let sneaky = log_text(&sup, "sneaky");
    assert!(
        sneaky.contains("send inbox -> error: Error::NotPermitted(\"`inbox` does not accept messages from `sneaky`"),
        "{sneaky}"
    );
    // Refusals are logged by the supervisor in the sender's log.
    assert!(sneaky.contains("sys ipc: message to `inbox` refused"), "{sneaky}");
    let mute = log_text(&sup, "mute");
    assert!(
        mute.contains("Error::NotPermitted(\"`mute` may not send to `inbox`: add \\\"inbox\\\" to `send`"),
        "{mute}"
    );
    assert!(log_text(&sup, "lost").contains("send nobody -> error: Error::UnknownApp(\"nobody\")"));
    let c = |n: &str| status(&sup, n).ipc;
    assert_eq!((c("good").sent, c("good").refused), (1, 0));
    assert_eq!((c("sneaky").sent, c("sneaky").refused), (0, 1));
    assert_eq!(c("mute").refused, 1);
    assert_eq!((c("inbox").received, c("inbox").queued), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inbox_refuses_and_oversized_messages_are_rejected() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let small = "[limits]\ninbox = 4\ninbox_bytes = \"4 KiB\"\nmessage_size = \"1 KiB\"\n";
    app(root, "slow", "ipc-probe", &probe(&["sleep:600000"], "", "\"*\"", small));
    app(
        root,
        "flood",
        "ipc-probe",
        &probe(
            &["big:slow:1025", "big:slow:1024", "sendn:slow:10"],
            "\"slow\"",
            "",
            NEVER,
        ),
    );
    let sup = supervisor(root, 16).await;
    wait(&sup, "flood", AppState::Exited).await;
    let log = log_text(&sup, "flood");
    assert!(log.contains("big slow -> error: Error::TooLarge(1024)"), "{log}");
    assert!(log.contains("big slow -> ok"), "{log}");
    // A lone sender may fill half of the inbox (room is kept for others): the 1 KiB
    // message and one more fit, the other nine are refused.
    assert!(log.contains("sendn slow -> ok=1 full=9 other=0"), "{log}");
    let (slow, flood) = (status(&sup, "slow").ipc, status(&sup, "flood").ipc);
    assert_eq!(slow.queued, 2);
    assert_eq!((flood.sent, flood.refused), (2, 10));
    // The slow app is unaffected (it may have been queued to before it was running).
    wait(&sup, "slow", AppState::Running).await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_senders_order_is_kept() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    app(root, "sink", "ipc-probe", &probe(&["count:600"], "", "\"*\"", NEVER));
    for s in ["a", "b", "c"] {
        app(root, s, "ipc-probe", &probe(&["sendw:sink:200"], "\"sink\"", "", NEVER));
    }
    let sup = supervisor(root, 16).await;
    wait(&sup, "sink", AppState::Exited).await;
    let log = log_text(&sup, "sink");
    assert!(log.contains("received 600 from a,b,c"), "{log}");
    assert!(log.contains("order ok"), "{log}");
}

/// `send-many` and `recv-many` between real components: every message once, each sender's
/// in order, mixed with single sends and a request answered from inside a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_keep_each_senders_order_and_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    // A small inbox, so batches are cut short and senders wait for room.
    let small = "[limits]\ninbox = 40\n[restart]\npolicy = \"never\"\n";
    app(
        root,
        "sink",
        "ipc-probe",
        &probe(&["countb:2600:32"], "", "\"*\"", small),
    );
    for s in ["a", "b", "c"] {
        app(
            root,
            s,
            "ipc-probe",
            &probe(&["batchw:sink:800:16"], "\"sink\"", "", NEVER),
        );
    }
    app(
        root,
        "d",
        "ipc-probe",
        &probe(&["sendw:sink:200"], "\"sink\"", "", NEVER),
    );
    app(
        root,
        "asker",
        "ipc-probe",
        &probe(&["request:sink:hi"], "\"sink\"", "", NEVER),
    );
    let sup = supervisor(root, 16).await;
    wait(&sup, "sink", AppState::Exited).await;
    let log = log_text(&sup, "sink");
    assert!(log.contains("received 2600 from a,b,c,d"), "{log}");
    assert!(log.contains("order ok"), "{log}");
    let batches: u64 = log
        .lines()
        .find_map(|l| l.split_once("batches ").map(|(_, n)| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(batches < 2600, "every message came alone ({batches} batches)");
    wait(&sup, "asker", AppState::Exited).await;
    let asked = log_text(&sup, "asker");
    assert!(asked.contains("request sink -> reply ack:hi"), "{asked}");
    for s in ["a", "b", "c"] {
        wait(&sup, s, AppState::Exited).await;
        let sent = log_text(&sup, s);
        assert!(sent.contains("batchw sink -> ok=800 calls="), "{sent}");
    }
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_survive_the_receivers_restarts() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    // Takes one message per instance, then crashes; restarted quickly each time.
    let restart = "[restart]\npolicy = \"on-failure\"\nbackoff = \"20ms\"\nintensity = 20\n";
    app(
        root,
        "fragile",
        "ipc-probe",
        &probe(&["recv:1", "crash"], "", "\"*\"", restart),
    );
    app(
        root,
        "sender",
        "ipc-probe",
        &probe(&["sendn:fragile:5"], "\"fragile\"", "", NEVER),
    );
    let sup = supervisor(root, 16).await;
    wait_log(&sup, "fragile", "recv from sender: 4").await;
    let log = log_text(&sup, "fragile");
    let got: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("out recv from sender: "))
        .collect();
    assert_eq!(got, ["0", "1", "2", "3", "4"], "{log}");
    assert!(status(&sup, "fragile").restarts >= 4);

    // Messages sent while an app is stopped wait for its next start.
    sup.apply("fragile", vyoma_lifecycle::Event::Kill).unwrap();
    sup.send_from_console("fragile", b"while you were out".to_vec())
        .unwrap();
    assert_eq!(status(&sup, "fragile").ipc.queued, 1);
    sup.apply("fragile", vyoma_lifecycle::Event::Start).unwrap();
    wait_log(&sup, "fragile", "recv from console: while you were out").await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_replies_and_an_app_can_poll_ipc_with_a_timer() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    app(root, "server", "ipc-probe", &probe(&["serve"], "", "\"*\"", ""));
    app(
        root,
        "client",
        "ipc-probe",
        &probe(&["request:server:hi", "request:nobody:x"], "\"*\"", "", NEVER),
    );
    app(
        root,
        "poller",
        "ipc-probe",
        &probe(&["poll:50", "poll:600000", "recv:1"], "", "", NEVER),
    );
    let sup = supervisor(root, 16).await;
    wait(&sup, "client", AppState::Exited).await;
    let log = log_text(&sup, "client");
    assert!(log.contains("request server -> reply ack:hi"), "{log}");
    assert!(
        log.contains("request nobody -> error: Error::UnknownApp(\"nobody\")"),
        "{log}"
    );
    assert!(log_text(&sup, "server").contains("recv from client: hi"));

    // Nothing in the inbox: the timer wins. Then a message wakes the long poll.
    wait_log(&sup, "poller", "poll: timer").await;
    sup.send_from_console("poller", b"wake".to_vec()).unwrap();
    wait_log(&sup, "poller", "poll: ipc").await;
    // Polling did not consume the message.
    wait_log(&sup, "poller", "recv from console: wake").await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_delivers_at_lines_and_prints_replies() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    app(root, "server", "ipc-probe", &probe(&["serve"], "", "", ""));
    app(root, "plain", "hello", "");
    let sup = supervisor(root, 16).await;
    wait(&sup, "server", AppState::Running).await;
    let Console {
        mut input,
        mut output,
        task: console,
        ..
    } = console(&sup);
    input
        .write_all(b"@server: status please\n@plain: hi\n@ghost: hi\n")
        .await
        .unwrap();
    // Read until the reply shows up (the console keeps running meanwhile).
    let mut seen = String::new();
    let found = tokio::time::timeout(LONG, async {
        let mut buf = [0u8; 4096];
        while !seen.contains("[from server] ack:status please") {
            let n = output.read(&mut buf).await.unwrap();
            assert!(n > 0, "console ended early:\n{seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(found.is_ok(), "no reply printed:\n{seen}");
    assert!(seen.contains("sent to server\n"), "{seen}");
    assert!(
        seen.contains("error: `plain` does not read IPC messages: its component does not import `vyoma:app/ipc`"),
        "{seen}"
    );
    assert!(seen.contains("error: no app named `ghost`"), "{seen}");
    assert!(log_text(&sup, "server").contains("recv from console: status please"));
    input.write_all(b"shutdown\n").await.unwrap();
    console.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_apps_exchange_messages_and_nothing_is_lost() {
    const N: usize = 200;
    const EACH: usize = 50;
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    // A ring: each app sends EACH messages to the next and counts EACH from the previous.
    for i in 0..N {
        let (prev, next) = ((i + N - 1) % N, (i + 1) % N);
        let ops = [format!("sendw:p{next:03}:{EACH}"), format!("count:{EACH}")];
        let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
        app(
            root,
            &format!("p{i:03}"),
            "ipc-probe",
            &probe(&ops, &format!("\"p{next:03}\""), &format!("\"p{prev:03}\""), NEVER),
        );
    }
    let sup = supervisor(root, 2 * N as u32).await;
    assert!(
        sup.wait_for("all", AppState::Exited, LONG).await.unwrap(),
        "not all apps finished"
    );
    let mut problems = String::new();
    for i in 0..N {
        let name = format!("p{i:03}");
        let prev = format!("p{:03}", (i + N - 1) % N);
        let log = log_text(&sup, &name);
        let st = status(&sup, &name);
        let want = format!("received {EACH} from {prev}");
        if !log.contains(&want) || !log.contains("order ok") || st.last_exit != Some(ExitReason::Code(0)) {
            let _ = writeln!(problems, "{name}: {:?}\n{log}", st.last_exit);
        }
        let c = st.ipc;
        if (c.sent, c.received, c.refused, c.queued) != (EACH as u64, EACH as u64, 0, 0) {
            let _ = writeln!(problems, "{name}: counters {c:?}");
        }
    }
    assert!(problems.is_empty(), "{problems}");
}
