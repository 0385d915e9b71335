//! Rendering tests: the `ps` table, formats, terminal safety.

use std::time::Duration;

use vyoma_ipc::Counters;
use vyoma_lifecycle::{AppState, ExitReason, TrapKind};

use super::*;
use crate::AppStatus;

#[test]
fn ps_table_snapshot() {
    let rows = vec![
        AppStatus {
            name: "ticker".into(),
            state: AppState::Running,
            restarts: 0,
            uptime: Some(Duration::from_millis(83_400)),
            memory: Some(1_179_648),
            cpu: Duration::from_millis(2_345),
            last_exit: None,
            ipc: Counters {
                sent: 12,
                received: 3,
                refused: 1,
                queued: 2,
            },
            http: None,
        },
        AppStatus {
            name: "crasher".into(),
            state: AppState::Backoff,
            restarts: 3,
            uptime: None,
            memory: None,
            cpu: Duration::from_millis(40),
            last_exit: Some(ExitReason::Trap {
                kind: TrapKind::Unreachable,
                message: "in crasher::main".into(),
            }),
            ipc: Counters::default(),
            http: None,
        },
        AppStatus {
            name: "hello".into(),
            state: AppState::Exited,
            restarts: 0,
            uptime: None,
            memory: None,
            cpu: Duration::ZERO,
            last_exit: Some(ExitReason::Code(0)),
            ipc: Counters::default(),
            http: None,
        },
    ];
    let want = "\
NAME     STATE     RESTARTS    UPTIME    MEMORY      CPU    SENT    RECV  REFUSED  QUEUED  LAST EXIT
ticker   running          0     1m23s   1.1 MiB     2.3s      12       3        1       2  -
crasher  backoff          3         -         -     40ms       0       0        0       0  trap: unreachable: in crasher::main
hello    exited           0         -         -      0ms       0       0        0       0  exit code 0
";
    assert_eq!(render_ps(&rows), want);
}

#[test]
fn cpu_formats() {
    assert_eq!(fmt_cpu(Duration::from_micros(900)), "0ms");
    assert_eq!(fmt_cpu(Duration::from_millis(850)), "850ms");
    assert_eq!(fmt_cpu(Duration::from_millis(12_345)), "12.3s");
    assert_eq!(fmt_cpu(Duration::from_secs(245)), "4m05s");
}

#[test]
fn uptime_formats() {
    assert_eq!(fmt_uptime(Duration::from_millis(4_250)), "4.2s");
    assert_eq!(fmt_uptime(Duration::from_secs(3_725)), "1h02m");
    assert_eq!(fmt_uptime(Duration::from_secs(90_000)), "1d01h");
}

#[test]
fn app_text_cannot_drive_the_terminal() {
    assert_eq!(printable(b"ok\tfine"), "ok\tfine");
    assert_eq!(printable(b"\x1b[2Jgone"), "\\u{1b}[2Jgone");
    assert_eq!(printable(b"a\nb"), "a\\nb");
    assert_eq!(printable(&[0xff, b'x']), "\u{fffd}x");
}

#[test]
fn terminal_safe_escapes_every_control_sequence_but_newline_and_tab() {
    // What the review reproduced: clear screen, and OSC 52 writing the clipboard.
    let hostile = "\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}fake\r\u{9b}31m\u{202e}txt.exe";
    let safe = terminal_safe(hostile);
    assert!(!safe.chars().any(|c| c.is_control()), "{safe:?}");
    assert_eq!(
        safe,
        "\\u{1b}[2J\\u{1b}]52;c;ZXZpbA==\\u{7}fake\\r\\u{9b}31m\\u{202e}txt.exe"
    );
    assert_eq!(terminal_safe("line\n\tindented"), "line\n\tindented");
    assert!(matches!(terminal_safe("plain"), std::borrow::Cow::Borrowed(_)));
}

#[test]
fn ps_shows_http_columns_only_when_an_app_serves_http() {
    let plain = AppStatus {
        name: "ticker".into(),
        state: AppState::Running,
        restarts: 0,
        uptime: Some(Duration::from_secs(5)),
        memory: Some(65_536),
        cpu: Duration::from_millis(3),
        last_exit: None,
        ipc: Counters::default(),
        http: None,
    };
    let web = AppStatus {
        name: "hello-http".into(),
        http: Some(crate::HttpStatus {
            requests: 1200,
            errors: 3,
            rejected: 7,
            in_flight: 2,
        }),
        ..plain.clone()
    };
    let want = "\
NAME        STATE     RESTARTS    UPTIME    MEMORY      CPU    SENT    RECV  REFUSED  QUEUED  REQUESTS  ERRORS  REJECTED  INFLIGHT  LAST EXIT
hello-http  running          0      5.0s  64.0 KiB      3ms       0       0        0       0      1200       3         7         2  -
ticker      running          0      5.0s  64.0 KiB      3ms       0       0        0       0         -       -         -         -  -
";
    assert_eq!(render_ps(&[web, plain.clone()]), want);
    assert!(!render_ps(&[plain]).contains("REQUESTS"));
}
