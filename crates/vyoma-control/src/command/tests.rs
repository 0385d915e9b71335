//! Parser tests: every command, every error, and random lines.

use std::time::Duration;

use vyoma_lifecycle::AppState;

use proptest::prelude::*;

use super::*;

#[test]
fn parses_every_command() {
    let cases = [
        ("", Command::Nothing),
        ("   # comment", Command::Nothing),
        ("help", Command::Help),
        (" ps ", Command::Ps),
        ("display", Command::Display),
        ("layout kiosk", Command::Layout(vyoma_display::Layout::Kiosk)),
        (
            "layout tiles:clock,paint",
            Command::Layout(vyoma_display::Layout::Tiles(vec!["clock".into(), "paint".into()])),
        ),
        ("focus paint", Command::Focus("paint".into())),
        (
            "screenshot shot.png",
            Command::Screenshot {
                app: None,
                path: "shot.png".into(),
            },
        ),
        (
            "screenshot clock /tmp/c.png",
            Command::Screenshot {
                app: Some("clock".into()),
                path: "/tmp/c.png".into(),
            },
        ),
        (
            "input * text a b",
            Command::Input {
                app: None,
                events: ["a", " ", "b"]
                    .iter()
                    .flat_map(|t| {
                        let code = match *t {
                            " " => "Space".to_string(),
                            c => format!("Key{}", c.to_uppercase()),
                        };
                        [true, false].map(|down| vyoma_display::Input::Key {
                            code: code.clone(),
                            text: down.then(|| t.to_string()),
                            down,
                            mods: Default::default(),
                        })
                    })
                    .collect(),
            },
        ),
        (
            "log ticker",
            Command::Log {
                app: "ticker".into(),
                last: None,
            },
        ),
        (
            "log ticker 20",
            Command::Log {
                app: "ticker".into(),
                last: Some(20),
            },
        ),
        (
            "logf ticker",
            Command::Logf {
                app: "ticker".into(),
                duration: None,
            },
        ),
        (
            "logf ticker 2s",
            Command::Logf {
                app: "ticker".into(),
                duration: Some(Duration::from_secs(2)),
            },
        ),
        ("start a", Command::Start("a".into())),
        ("stop a", Command::Stop("a".into())),
        ("kill a", Command::Kill("a".into())),
        ("restart a", Command::Restart("a".into())),
        ("inspect a", Command::Inspect("a".into())),
        (
            "wait all running 5s",
            Command::Wait {
                app: "all".into(),
                state: AppState::Running,
                timeout: Duration::from_secs(5),
            },
        ),
        (
            "wait a failed",
            Command::Wait {
                app: "a".into(),
                state: AppState::Failed,
                timeout: DEFAULT_WAIT,
            },
        ),
        ("shutdown", Command::Shutdown),
        ("exit", Command::Shutdown),
        (
            "update hello /tmp/hello-2 --dry-run",
            Command::Update {
                app: "hello".into(),
                source: crate::UpdateSource::Folder("/tmp/hello-2".into()),
                options: crate::UpdateOptions {
                    force: false,
                    dry_run: true,
                },
            },
        ),
        (
            "update --force hello new",
            Command::Update {
                app: "hello".into(),
                source: crate::UpdateSource::Folder("new".into()),
                options: crate::UpdateOptions {
                    force: true,
                    dry_run: false,
                },
            },
        ),
        ("rollback hello", Command::Rollback("hello".into())),
        ("versions hello", Command::Versions("hello".into())),
        (
            "deploy ./apps/new --dry-run",
            Command::Deploy {
                source: crate::UpdateSource::Folder("./apps/new".into()),
                options: crate::UpdateOptions {
                    force: false,
                    dry_run: true,
                },
            },
        ),
        (
            "remove hello",
            Command::Remove {
                app: "hello".into(),
                purge: false,
            },
        ),
        (
            "remove --purge hello",
            Command::Remove {
                app: "hello".into(),
                purge: true,
            },
        ),
    ];
    for (line, want) in cases {
        assert_eq!(Command::parse(line), Ok(want), "{line:?}");
    }
}

#[test]
fn bad_input_gets_one_line_errors() {
    let cases = [
        ("frobnicate", "unknown command `frobnicate`; `help` lists the commands"),
        ("kill", "`kill` needs an app name: kill APP"),
        ("layout", "`layout` needs a layout: layout kiosk|grid|tiles:APP,APP,..."),
        (
            "layout spiral",
            "`spiral` is not a layout: use `kiosk`, `grid` or `tiles:APP,APP,...`",
        ),
        (
            "screenshot",
            "`screenshot` needs a file to write: screenshot [APP] FILE.png",
        ),
        (
            "screenshot shot.jpg",
            "`shot.jpg` does not end in `.png`: screenshots are PNG files (screenshot [APP] FILE.png)",
        ),
        ("focus", "`focus` needs an app name: focus APP"),
        ("kill a b", "too many arguments to `kill`: kill APP"),
        ("log a lots", "`lots` is not a line count: log APP [N]"),
        ("logf a soon", "invalid duration `soon`: write e.g. 500ms, 5s, 1m"),
        ("wait a", "`wait` needs a state: wait APP|all STATE [DURATION]"),
        (
            "wait a sleeping",
            "unknown state `sleeping` (states: starting, running, stopping, exited, failed, stopped, backoff)",
        ),
        ("ps now", "too many arguments to `ps`: ps"),
        (
            "update hello",
            "`update` needs the folder of the new version: update APP DIR [--force] [--dry-run]",
        ),
        (
            "update hello dir --fast",
            "unknown option `--fast` to `update`: update APP DIR [--force] [--dry-run]",
        ),
        ("rollback", "`rollback` needs an app name: rollback APP"),
        ("deploy", "`deploy` needs the app's folder: deploy DIR [--dry-run]"),
        (
            "deploy a --force",
            "unknown option `--force` to `deploy`: deploy DIR [--dry-run]",
        ),
        ("deploy a b", "too many arguments to `deploy`: deploy DIR [--dry-run]"),
        ("remove", "`remove` needs an app name: remove APP [--purge]"),
        (
            "remove a --all",
            "unknown option `--all` to `remove`: remove APP [--purge]",
        ),
    ];
    for (line, want) in cases {
        let got = Command::parse(line).unwrap_err();
        assert_eq!(got, want, "{line:?}");
        assert!(!got.contains('\n'));
    }
}

/// Words the parser knows, and ones that trip it up, to build lines from.
const WORDS: &[&str] = &[
    "ps",
    "@echo:",
    "@",
    ":",
    "log",
    "logf",
    "kill",
    "start",
    "restart",
    "inspect",
    "update",
    "rollback",
    "versions",
    "deploy",
    "remove",
    "--purge",
    "--force",
    "--dry-run",
    "wait",
    "all",
    "running",
    "5s",
    "-1",
    "\t",
    "é",
    "",
    "999999999999999999999",
    "1e9s",
    "#",
];

/// A parse either succeeds or gives a one-line, non-empty error: never a panic.
fn parses_or_explains(line: &str) -> Result<(), TestCaseError> {
    if let Err(e) = Command::parse(line) {
        prop_assert!(!e.is_empty() && !e.contains('\n'), "{:?} -> {:?}", line, e);
    }
    Ok(())
}

proptest! {
    #[test]
    fn lines_of_known_words_never_panic_and_errors_are_one_line(
        words in prop::collection::vec(prop::sample::select(WORDS), 0..6),
        sep in prop::sample::select(&[" ", "  ", "\t", ""][..]),
    ) {
        parses_or_explains(&words.join(sep))?;
    }

    #[test]
    fn arbitrary_lines_never_panic_and_errors_are_one_line(line in "\\PC{0,80}") {
        parses_or_explains(&line)?;
    }
}

#[test]
fn at_lines_message_an_app() {
    assert_eq!(
        Command::parse("@echo: hello there").unwrap(),
        Command::Message {
            to: "echo".into(),
            text: "hello there".into(),
            reply_within: None,
        }
    );
    // Only the first colon separates; the text keeps its own.
    assert_eq!(
        Command::parse("@ logger :a:b").unwrap(),
        Command::Message {
            to: "logger".into(),
            text: "a:b".into(),
            reply_within: None,
        }
    );
    assert_eq!(
        Command::parse("@echo:").unwrap(),
        Command::Message {
            to: "echo".into(),
            text: String::new(),
            reply_within: None,
        }
    );
    let e = Command::parse("@echo hi").unwrap_err();
    assert!(e.contains("missing `:`") && e.contains("@APP: TEXT"), "{e}");
    let e = Command::parse("@: hi").unwrap_err();
    assert!(e.contains("missing app name"), "{e}");
}
