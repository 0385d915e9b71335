//! The replies' JSON shapes, as documented in docs/api.md: every variant snapshotted, and
//! read back into the same value (the remote client renders what it reads).

use std::time::Duration;

use vyoma_ipc::Counters;
use vyoma_lifecycle::{AppState, ExitReason, LogLine, Stream, TrapKind};

use super::*;
use crate::{render, render_inspect};

fn row() -> AppStatus {
    AppStatus {
        name: "ticker".into(),
        state: AppState::Running,
        restarts: 2,
        uptime: Some(Duration::from_millis(83_400)),
        memory: Some(1_179_648),
        cpu: Duration::from_micros(2_345_678),
        last_exit: Some(ExitReason::Trap {
            kind: TrapKind::MemoryOutOfBounds,
            message: "in main".into(),
        }),
        ipc: Counters {
            sent: 12,
            received: 3,
            refused: 1,
            queued: 2,
        },
        http: None,
    }
}

#[test]
fn reply_json_snapshots() {
    let cases: Vec<(Reply, &str)> = vec![
        (
            Reply::Ps(vec![row()]),
            r#"{"apps":[{"name":"ticker","state":"running","restarts":2,"uptime_ms":83400,"memory":1179648,"cpu_ms":2345,"last_exit":{"kind":"trap","trap":"memory_out_of_bounds","message":"in main"},"ipc":{"sent":12,"received":3,"refused":1,"queued":2}}]}"#,
        ),
        (
            Reply::Log {
                app: "ticker".into(),
                lines: vec![LogLine {
                    seq: 0,
                    at: std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
                    stream: Stream::System,
                    text: "started".into(),
                }],
            },
            r#"{"log":{"app":"ticker","lines":[{"seq":0,"at":"2027-01-15T08:00:00.000Z","stream":"sys","text":"started"}]}}"#,
        ),
        (Reply::Started("ticker".into()), r#"{"started":"ticker"}"#),
        (
            Reply::Stopping {
                app: "ticker".into(),
                outcome: StopOutcome::Asked {
                    timeout: Duration::from_secs(5),
                },
            },
            r#"{"stopping":{"app":"ticker","outcome":"asked","timeout_ms":5000}}"#,
        ),
        (
            Reply::Stopping {
                app: "ticker".into(),
                outcome: StopOutcome::Stopped,
            },
            r#"{"stopping":{"app":"ticker","outcome":"stopped"}}"#,
        ),
        (Reply::Killed("ticker".into()), r#"{"killed":"ticker"}"#),
        (Reply::Restarting("ticker".into()), r#"{"restarting":"ticker"}"#),
        (
            Reply::Reached {
                app: "all".into(),
                state: AppState::Running,
            },
            r#"{"reached":{"app":"all","state":"running"}}"#,
        ),
        (Reply::Sent { to: "echo".into() }, r#"{"sent":{"to":"echo"}}"#),
        (
            Reply::Answered {
                from: "echo".into(),
                text: "hi".into(),
            },
            r#"{"answered":{"from":"echo","text":"hi"}}"#,
        ),
        (
            Reply::Unanswered {
                to: "echo".into(),
                waited: Duration::from_secs(2),
            },
            r#"{"unanswered":{"to":"echo","waited_ms":2000}}"#,
        ),
        (Reply::ShutDown, r#""shut_down""#),
        (
            Reply::Updated(Box::new(crate::UpdateReport {
                app: "hello".into(),
                dry_run: false,
                from: crate::VersionBrief {
                    id: None,
                    version: "0.1.0".into(),
                    component: "a".repeat(64),
                },
                to: crate::VersionBrief {
                    id: Some(2),
                    version: "0.2.0".into(),
                    component: "b".repeat(64),
                },
                changes: vec!["version 0.1.0 -> 0.2.0".into()],
                forced: vec![],
                probation: Duration::from_secs(10),
                swap: Some(crate::SwapReport {
                    handover: Duration::from_micros(120),
                    total: Duration::from_micros(2500),
                    unfinished_from: vec![],
                }),
            })),
            r#"{"updated":{"app":"hello","dry_run":false,"from":{"version":"0.1.0","component":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"to":{"id":2,"version":"0.2.0","component":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},"changes":["version 0.1.0 -> 0.2.0"],"probation_ms":10000,"swap":{"handover_us":120,"swap_us":2500}}}"#,
        ),
        (
            Reply::RolledBack(Box::new(crate::RollbackReport {
                app: "hello".into(),
                from: crate::VersionBrief {
                    id: Some(2),
                    version: "0.2.0".into(),
                    component: "b".repeat(64),
                },
                to: Some(crate::VersionBrief {
                    id: Some(1),
                    version: "0.1.0".into(),
                    component: "a".repeat(64),
                }),
                reason: "trapped: unreachable".into(),
                swap: Some(crate::SwapReport {
                    handover: Duration::ZERO,
                    total: Duration::from_micros(900),
                    unfinished_from: vec!["pinger".into()],
                }),
            })),
            r#"{"rolled_back":{"app":"hello","from":{"id":2,"version":"0.2.0","component":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},"to":{"id":1,"version":"0.1.0","component":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},"reason":"trapped: unreachable","swap":{"handover_us":0,"swap_us":900,"unfinished_from":["pinger"]}}}"#,
        ),
        (
            Reply::Versions(Box::new(crate::VersionsReport {
                app: "hello".into(),
                versions: vec![crate::VersionRow {
                    id: Some(1),
                    version: "0.1.0".into(),
                    component: "a".repeat(64),
                    size: 2048,
                    added: Some(std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
                    origin: "factory".into(),
                    status: crate::VersionStatus::Current,
                }],
                rejected: Some(crate::RejectedVersion {
                    id: 2,
                    version: "0.2.0".into(),
                    reason: "failed its health check".into(),
                    at: std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_060),
                }),
            })),
            r#"{"versions":{"app":"hello","versions":[{"id":1,"version":"0.1.0","component":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2048,"added":"2027-01-15T08:00:00.000Z","origin":"factory","status":"current"}],"rejected":{"id":2,"version":"0.2.0","reason":"failed its health check","at":"2027-01-15T08:01:00.000Z"}}}"#,
        ),
        (
            Reply::RolledBack(Box::new(crate::RollbackReport {
                app: "new".into(),
                from: crate::VersionBrief {
                    id: Some(1),
                    version: "0.1.0".into(),
                    component: "c".repeat(64),
                },
                to: None,
                reason: "probation: instance 1 ended: exit code 1".into(),
                swap: None,
            })),
            r#"{"rolled_back":{"app":"new","from":{"id":1,"version":"0.1.0","component":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"},"to":null,"reason":"probation: instance 1 ended: exit code 1"}}"#,
        ),
        (
            Reply::Deployed(Box::new(crate::DeployReport {
                app: "new".into(),
                dry_run: false,
                version: crate::VersionBrief {
                    id: Some(1),
                    version: "0.1.0".into(),
                    component: "c".repeat(64),
                },
                depends_on: vec!["db".into()],
                replaces: None,
                data: Some("/var/lib/vyoma/store/data/new".into()),
                probation: Duration::from_secs(10),
            })),
            r#"{"deployed":{"app":"new","dry_run":false,"version":{"id":1,"version":"0.1.0","component":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"},"depends_on":["db"],"data":"/var/lib/vyoma/store/data/new","probation_ms":10000}}"#,
        ),
        (
            Reply::Removed(Box::new(crate::RemoveReport {
                app: "new".into(),
                factory: false,
                dropped_messages: 3,
                unanswered: 1,
                persistent: true,
                purged: Some(4096),
                kept_data: None,
            })),
            r#"{"removed":{"app":"new","factory":false,"dropped_messages":3,"unanswered":1,"persistent":true,"purged":4096}}"#,
        ),
    ];
    for (reply, want) in cases {
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(json, want);
        let back: Reply = serde_json::from_str(&json).unwrap();
        // Durations travel as whole milliseconds.
        assert_eq!(render(&back), render(&reply), "{want}");
    }
}

#[test]
fn every_exit_reason_has_a_kind() {
    let cases = [
        (ExitReason::Code(3), r#"{"kind":"code","code":3}"#),
        (ExitReason::Killed, r#"{"kind":"killed"}"#),
        (
            ExitReason::MemoryLimit {
                limit: 10,
                requested: 20,
            },
            r#"{"kind":"memory_limit","limit":10,"requested":20}"#,
        ),
        (
            ExitReason::MemoryBudget {
                limit: 10,
                used: 8,
                asked: 4,
            },
            r#"{"kind":"memory_budget","limit":10,"used":8,"asked":4}"#,
        ),
        (
            ExitReason::StartTimeout {
                after: Duration::from_secs(10),
            },
            r#"{"kind":"start_timeout","after_ms":10000}"#,
        ),
        (
            ExitReason::StopTimeout {
                after: Duration::from_secs(5),
            },
            r#"{"kind":"stop_timeout","after_ms":5000}"#,
        ),
        (
            ExitReason::Error("no file".into()),
            r#"{"kind":"error","message":"no file"}"#,
        ),
    ];
    for (e, want) in cases {
        assert_eq!(serde_json::to_string(&e).unwrap(), want);
        assert_eq!(serde_json::from_str::<ExitReason>(want).unwrap(), e);
    }
}

#[test]
fn an_inspect_report_reads_back_and_renders_the_same() {
    let text = r#"manifest_version = 1
[app]
name = "web"
version = "1.2.3"
description = "a web app"
component = "web.wasm"
args = ["--port", "8080"]
depends_on = ["db"]
[env]
MODE = "prod"
[capabilities]
inherit_env = ["TZ"]
[capabilities.network]
connect = ["10.0.0.0/8:5432"]
bind = ["0.0.0.0:8080"]
[capabilities.ipc]
send = ["db"]
accept = ["*"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    std::fs::write(&path, text).unwrap();
    let m = vyoma_manifest::Manifest::load(&path).unwrap_or_else(|d| panic!("{d}"));
    let report = AppReport::new(
        &m,
        AppStatus {
            name: "web".into(),
            ..row()
        },
        Some(ComponentReport {
            path: "/apps/web/web.wasm".into(),
            size: 123_456,
            sha256: "ab".repeat(32),
            source: ComponentSource::CompileCache,
            adapted: false,
            imports: vec!["wasi:cli/environment@0.2.6".into()],
            exports: vec!["wasi:cli/run@0.2.6".into()],
        }),
        3,
        LogUsage {
            dropped: 0,
            held: 2048,
            capacity: 65536,
        },
        Some(Lane::Interactive),
    );
    let json = serde_json::to_string(&Reply::Inspect(Box::new(report.clone()))).unwrap();
    let back: Reply = serde_json::from_str(&json).unwrap();
    // The same, but for the CPU time's microseconds (JSON carries milliseconds).
    let shown = render_inspect(&report);
    assert_eq!(render(&back), shown);
    for want in [
        "name:        web\n",
        "version:     1.2.3\n",
        "component:   /apps/web/web.wasm (120.6 KiB, sha256 abababababababab, from compile cache)\n",
        "state:       running (instance 3, 2 restarts)\n",
        "args:        [\"--port\", \"8080\"]\n",
        "env:         MODE=prod\n",
        "depends on:  db\n",
        "cpu:         2.3s in all its instances; interactive",
        "  connect:   10.0.0.0/8:5432\n",
        "  bind:      0.0.0.0:8080\n",
        "  ipc send:  db\n",
        "  ipc accept: * (every app) (and the console)\n",
        "exports:\n  wasi:cli/run@0.2.6\n",
    ] {
        assert!(shown.contains(want), "missing {want:?} in\n{shown}");
    }
}
