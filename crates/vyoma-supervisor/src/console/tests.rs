use std::time::Duration;

use vyoma_ipc::Counters;
use vyoma_lifecycle::{AppState, ExitReason, TrapKind};

use super::render::fmt_uptime;
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
    use super::render::fmt_cpu;
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

async fn read_all(input: &[u8], max: usize) -> Vec<Input> {
    let mut r = LineReader::new(input, max);
    let mut out = Vec::new();
    while let Some(l) = r.next_line().await.unwrap() {
        out.push(l);
    }
    out
}

#[tokio::test]
async fn lines_are_bounded_while_they_are_read() {
    let mut input = b"ps\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10_000));
    input.extend(b"\nhelp\n\xff\xfe\nlast");
    assert_eq!(
        read_all(&input, 64).await,
        vec![
            Input::Line("ps".into()),
            Input::TooLong(10_000),
            Input::Line("help".into()),
            Input::NotUtf8,
            Input::Line("last".into()),
        ]
    );
    // Exactly at the limit is fine.
    assert_eq!(read_all(&[b'y'; 64], 64).await, vec![Input::Line("y".repeat(64))]);
}

#[tokio::test]
async fn an_endless_line_holds_at_most_the_limit() {
    // A reader that yields 1 MiB chunks without a newline: what it holds stays bounded.
    let chunk = vec![b'z'; 1 << 20];
    let src = tokio::io::BufReader::with_capacity(1 << 20, std::io::Cursor::new(chunk.repeat(8)));
    let mut r = LineReader::new(src, MAX_LINE);
    let got = r.next_line().await.unwrap();
    assert_eq!(got, Some(Input::TooLong(8 << 20)));
    assert_eq!(r.held(), 0);
    // Mid-line (the newline never comes), what is held never exceeds the limit: the writer
    // can only finish once the reader has taken almost all of its megabyte.
    let (mut w, rd) = tokio::io::duplex(1 << 16);
    let writer = tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut w, &vec![b'z'; 1 << 20])
            .await
            .unwrap();
        w
    });
    let mut r = LineReader::new(tokio::io::BufReader::new(rd), MAX_LINE);
    let _w = tokio::select! {
        l = r.next_line() => panic!("no line ended, yet got {l:?}"),
        w = writer => w.unwrap(),
    };
    assert!(r.held() <= MAX_LINE, "held {} bytes", r.held());
}
