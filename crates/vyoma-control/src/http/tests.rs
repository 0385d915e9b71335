//! Routing tests: every endpoint, every refusal, and request_for as route's inverse.

use std::time::Duration;

use proptest::prelude::*;
use vyoma_lifecycle::AppState;

use super::*;

fn req<'a>(method: &'a str, target: &'a str, body: &'a [u8]) -> Request<'a> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Request {
        method,
        path,
        query,
        body,
    }
}

fn ok(method: &str, target: &str, body: &str) -> Call {
    route(&req(method, target, body.as_bytes())).unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

fn refused(method: &str, target: &str, body: &str) -> ApiError {
    match route(&req(method, target, body.as_bytes())) {
        Ok(c) => panic!("{method} {target} was accepted as {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn routes_every_endpoint() {
    let c = |c: Command| Call::Command(c);
    assert_eq!(ok("GET", "/v1/apps", ""), c(Command::Ps));
    assert_eq!(ok("GET", "/v1/apps/ticker", ""), c(Command::Inspect("ticker".into())));
    assert_eq!(
        ok("GET", "/v1/apps/ticker/log", ""),
        c(Command::Log {
            app: "ticker".into(),
            last: None
        })
    );
    assert_eq!(
        ok("GET", "/v1/apps/ticker/log?last=5", ""),
        c(Command::Log {
            app: "ticker".into(),
            last: Some(5)
        })
    );
    assert_eq!(
        ok("GET", "/v1/apps/ticker/log?follow=true&after=41&duration_ms=1500", ""),
        Call::Follow {
            app: "ticker".into(),
            after: Some(41),
            duration: Some(Duration::from_millis(1500))
        }
    );
    for (a, want) in [
        ("start", Command::Start("x".into())),
        ("stop", Command::Stop("x".into())),
        ("kill", Command::Kill("x".into())),
        ("restart", Command::Restart("x".into())),
    ] {
        assert_eq!(ok("POST", &format!("/v1/apps/x/{a}"), ""), c(want.clone()));
        assert_eq!(ok("POST", &format!("/v1/apps/x/{a}"), " {} "), c(want));
    }
    assert_eq!(
        ok("POST", "/v1/apps/all/wait", r#"{"state":"running"}"#),
        c(Command::Wait {
            app: "all".into(),
            state: AppState::Running,
            timeout: DEFAULT_WAIT
        })
    );
    assert_eq!(
        ok(
            "POST",
            "/v1/apps/echo/message",
            r#"{"text":"hi","reply_within_ms":250}"#
        ),
        c(Command::Message {
            to: "echo".into(),
            text: "hi".into(),
            reply_within: Some(Duration::from_millis(250))
        })
    );
    assert_eq!(ok("POST", "/v1/shutdown", ""), c(Command::Shutdown));
    assert_eq!(ok("GET", "/metrics", ""), Call::Metrics);
    assert_eq!(ok("GET", "/healthz", ""), Call::Live);
    assert_eq!(ok("GET", "/readyz", ""), Call::Ready);
    assert!(!Call::Live.needs_token() && !Call::Ready.needs_token() && Call::Metrics.needs_token());
    assert!(is_probe("/healthz") && is_probe("/readyz") && !is_probe("/metrics"));
    // Percent-encoded names are decoded.
    assert_eq!(ok("GET", "/v1/apps/a%20b", ""), c(Command::Inspect("a b".into())));
}

#[test]
fn routes_the_update_endpoints() {
    let c = Call::Command;
    let sha = "ab".repeat(32);
    assert_eq!(
        ok("PUT", &format!("/v1/blobs/{sha}"), "ignored here: the server stores it"),
        Call::PutBlob { digest: sha.clone() }
    );
    assert_eq!(
        ok(
            "POST",
            "/v1/apps/hello/update",
            &format!(r#"{{"manifest": "m", "component": "{sha}", "dry_run": true}}"#)
        ),
        c(Command::Update {
            app: "hello".into(),
            source: crate::UpdateSource::Upload {
                manifest: "m".into(),
                component: sha.clone()
            },
            options: crate::UpdateOptions {
                force: false,
                dry_run: true
            },
        })
    );
    assert_eq!(
        ok("POST", "/v1/apps/hello/rollback", ""),
        c(Command::Rollback("hello".into()))
    );
    assert_eq!(
        ok("GET", "/v1/apps/hello/versions", ""),
        c(Command::Versions("hello".into()))
    );
    assert_eq!(body_limit("PUT", &format!("/v1/blobs/{sha}")), MAX_BLOB);
    assert_eq!(body_limit("POST", "/v1/apps/hello/update"), MAX_BODY);
    let e = refused("PUT", "/v1/blobs/XYZ", "");
    assert!(e.message.contains("64 lowercase hex digits"), "{}", e.message);
    let e = refused(
        "POST",
        "/v1/apps/hello/update",
        r#"{"manifest": "m", "component": "nope"}"#,
    );
    assert!(e.message.contains("PUT /v1/blobs/SHA256"), "{}", e.message);
    let e = refused(
        "POST",
        "/v1/apps/hello/update",
        r#"{"manifest": "m", "component": "x", "speed": 3}"#,
    );
    assert!(e.message.contains("unknown field `speed`"), "{}", e.message);
    assert_eq!(refused("GET", &format!("/v1/blobs/{sha}"), "").status, 405);
    // A folder is the client's to upload: it has no request of its own.
    assert_eq!(
        request_for(&Command::Update {
            app: "a".into(),
            source: crate::UpdateSource::Folder("dir".into()),
            options: Default::default()
        }),
        None
    );
    assert_eq!(blob_request(&sha).path_and_query, format!("/v1/blobs/{sha}"));
}

#[test]
fn deploy_and_remove_go_over_the_api_and_come_back_as_the_same_commands() {
    let sha = "d".repeat(64);
    let deploy = Command::Deploy {
        source: crate::UpdateSource::Upload {
            manifest: "manifest_version = 1".into(),
            component: sha.clone(),
        },
        options: crate::UpdateOptions {
            force: false,
            dry_run: true,
        },
    };
    let remove = Command::Remove {
        app: "a b".into(),
        purge: true,
    };
    for cmd in [deploy, remove] {
        let out = request_for(&cmd).unwrap();
        let (path, query) = out.path_and_query.split_once('?').unwrap_or((&out.path_and_query, ""));
        let body = out.body.clone().unwrap_or_default();
        let req = Request {
            method: out.method,
            path,
            query,
            body: body.as_bytes(),
        };
        match route(&req).unwrap() {
            Call::Command(back) => assert_eq!(back, cmd),
            other => panic!("{cmd:?} came back as {other:?}"),
        }
    }
    // A folder is on the operator's machine: the API cannot name it.
    assert!(
        request_for(&Command::Deploy {
            source: crate::UpdateSource::Folder("dir".into()),
            options: Default::default()
        })
        .is_none()
    );
}

#[test]
fn refusals_say_what_to_fix() {
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        (
            "GET",
            "/v2/apps",
            "",
            404,
            "no endpoint /v2/apps; the API's endpoints are listed in docs/api.md",
        ),
        (
            "PUT",
            "/v1/apps",
            "",
            405,
            "/v1/apps takes GET (the apps) or POST (deploy one), not PUT",
        ),
        (
            "POST",
            "/v1/apps",
            r#"{"manifest": "", "component": "abc"}"#,
            400,
            "POST /v1/apps: `component` must be the SHA-256 of a blob uploaded with PUT /v1/blobs/SHA256, 64 lowercase hex digits",
        ),
        (
            "DELETE",
            "/v1/apps/x?purge=maybe",
            "",
            400,
            "query parameter `purge` of DELETE /v1/apps/x must be true or false, not `maybe`",
        ),
        (
            "POST",
            "/v1/apps/x",
            "",
            405,
            "/v1/apps/x takes GET (inspect) or DELETE (remove), not POST",
        ),
        ("GET", "/v1/apps/x/kill", "", 405, "/v1/apps/x/kill takes POST, not GET"),
        (
            "GET",
            "/v1/apps?verbose=1",
            "",
            400,
            "unknown query parameter `verbose` for GET /v1/apps: it takes none",
        ),
        (
            "GET",
            "/v1/apps/x/log?last=ten",
            "",
            400,
            "query parameter `last` of GET /v1/apps/x/log must be a whole number, not `ten`",
        ),
        (
            "GET",
            "/v1/apps/x/log?last=1&last=2",
            "",
            400,
            "query parameter `last` given twice for GET /v1/apps/x/log",
        ),
        (
            "GET",
            "/v1/apps/x/log?after=3",
            "",
            400,
            "GET /v1/apps/x/log: `after` and `duration_ms` need `follow=true`",
        ),
        (
            "GET",
            "/v1/apps/x/log?follow=yes",
            "",
            400,
            "query parameter `follow` of GET /v1/apps/x/log must be true or false, not `yes`",
        ),
        (
            "POST",
            "/v1/apps/x/kill",
            "now",
            400,
            "POST /v1/apps/x/kill takes no body (or `{}`)",
        ),
        ("GET", "/v1/apps/", "", 400, "empty app name in /v1/apps/"),
        (
            "GET",
            "/v1/apps/%ff",
            "",
            400,
            "the path is not UTF-8 once percent-decoded",
        ),
        ("GET", "v1/apps", "", 400, "the path must start with `/`"),
    ];
    for (method, target, body, status, message) in cases {
        let e = refused(method, target, body);
        assert_eq!((e.status, e.message.as_str()), (*status, *message), "{method} {target}");
    }
    // A path with control characters (found by the fuzzer) is quoted escaped: one line.
    let e = refused("GET", "/v0/ip\u{4}{\n/k", "");
    assert_eq!(
        e.message,
        "no endpoint /v0/ip\\u{4}{\\n/k; the API's endpoints are listed in docs/api.md"
    );
    // A JSON string with an escaped newline is quoted escaped by the message (found by the
    // fuzzer): one line.
    let e = refused("POST", "/v1/apps/x/wait", r#"{"state":"ru\nni"}"#);
    assert!(
        e.message.contains("unknown variant `ru\\nni`") && !e.message.contains('\n'),
        "{}",
        e.message
    );
    // JSON bodies: serde's message, where, and an example.
    let e = refused("POST", "/v1/apps/x/wait", r#"{"state":"asleep"}"#);
    assert!(
        e.message
            .starts_with("invalid JSON body for POST /v1/apps/x/wait: unknown variant `asleep`")
            && e.message
                .ends_with(r#"send e.g. {"state": "running", "timeout_ms": 30000}"#),
        "{}",
        e.message
    );
    let e = refused("POST", "/v1/apps/x/message", r#"{"text":"hi","colour":"red"}"#);
    assert!(e.message.contains("unknown field `colour`"), "{}", e.message);
    let e = refused("POST", "/v1/apps/x/message", "");
    assert!(e.message.contains("EOF while parsing"), "{}", e.message);
    let big = format!(r#"{{"text":"{}"}}"#, "a".repeat(MAX_BODY));
    let e = refused("POST", "/v1/apps/x/message", &big);
    assert_eq!((e.status, e.code.as_str()), (413, "too_large"));
}

#[test]
fn credentials_in_the_query_are_spotted() {
    for q in ["token=abc", "a=1&access_token=x", "Bearer", "%74oken=x", "AUTH=1"] {
        assert!(credentials_in_query(q), "{q}");
    }
    for q in ["", "last=5", "follow=true&after=3", "tokens=1"] {
        assert!(!credentials_in_query(q), "{q}");
    }
    assert!(credentials_in_query_error().message.contains("Authorization: Bearer"));
}

#[test]
fn display_requests_say_what_is_wrong() {
    let post = |path: &str, body: &str| {
        route(&Request {
            method: "POST",
            path,
            query: "",
            body: body.as_bytes(),
        })
    };
    let e = post("/v1/display/layout", r#"{"layout": "spiral"}"#).unwrap_err();
    assert!(e.message.contains("`spiral` is not a layout"), "{}", e.message);
    let e = post("/v1/display/input", r#"{"events": []}"#).unwrap_err();
    assert!(e.message.contains("send 1 to 4096 events"), "{}", e.message);
    let e = post(
        "/v1/display/input",
        r#"{"events": [{"pointer": {"x": 1, "y": 2, "phase": "hover"}}]}"#,
    )
    .unwrap_err();
    assert!(e.message.contains("`hover` is not a phase"), "{}", e.message);
    let shot = route(&Request {
        method: "GET",
        path: "/v1/display/screenshot",
        query: "app=clock",
        body: b"",
    });
    assert_eq!(
        shot,
        Ok(Call::Screenshot {
            app: Some("clock".into())
        })
    );
}

#[test]
fn errors_round_trip_as_json() {
    let e = ApiError::new(404, "unknown_app", "no app named `x`");
    let json = e.to_json();
    assert_eq!(json, r#"{"error":{"code":"unknown_app","message":"no app named `x`"}}"#);
    assert_eq!(ApiError::from_json(404, json.as_bytes()), Some(e));
    assert_eq!(ApiError::from_json(500, b"<html>"), None);
}

#[test]
fn follow_items_read_back() {
    let line = vyoma_lifecycle::LogLine {
        seq: 3,
        at: std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        stream: vyoma_lifecycle::Stream::Stdout,
        text: "tick 3".into(),
    };
    let json = serde_json::to_string(&FollowItem::Line(line.clone())).unwrap();
    assert_eq!(
        json,
        r#"{"seq":3,"at":"2023-11-14T22:13:20.123Z","stream":"out","text":"tick 3"}"#
    );
    assert_eq!(
        serde_json::from_str::<FollowItem>(&json).unwrap(),
        FollowItem::Line(line)
    );
    assert_eq!(
        serde_json::from_str::<FollowItem>(r#"{"end":"duration"}"#).unwrap(),
        FollowItem::End { end: "duration".into() }
    );
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z0-9-]{0,20}", "\\PC{1,12}"].prop_filter("not blank", |s| !s.trim().is_empty())
}

fn command() -> impl Strategy<Value = Command> {
    let state = prop::sample::select(AppState::ALL.to_vec());
    prop_oneof![
        Just(Command::Ps),
        Just(Command::Shutdown),
        name().prop_map(Command::Inspect),
        name().prop_map(Command::Start),
        name().prop_map(Command::Stop),
        name().prop_map(Command::Kill),
        name().prop_map(Command::Restart),
        name().prop_map(Command::Rollback),
        name().prop_map(Command::Versions),
        (name(), "\\PC{0,200}", "[0-9a-f]{64}", any::<bool>(), any::<bool>()).prop_map(
            |(app, manifest, component, force, dry_run)| Command::Update {
                app,
                source: crate::UpdateSource::Upload { manifest, component },
                options: crate::UpdateOptions { force, dry_run },
            }
        ),
        (name(), prop::option::of(0usize..100_000)).prop_map(|(app, last)| Command::Log { app, last }),
        (name(), state, 0u64..10_000_000).prop_map(|(app, state, ms)| Command::Wait {
            app,
            state,
            timeout: Duration::from_millis(ms)
        }),
        (name(), "\\PC{0,40}", prop::option::of(0u64..100_000)).prop_map(|(to, text, r)| Command::Message {
            to,
            text,
            reply_within: r.map(Duration::from_millis)
        }),
        Just(Command::Display),
        name().prop_map(Command::Focus),
        prop::collection::vec("[a-z][a-z0-9-]{0,10}", 1..4)
            .prop_map(|apps| Command::Layout(vyoma_display::Layout::Tiles(apps))),
        (
            prop::option::of(name()),
            "\\PC{1,12}",
            any::<i32>(),
            any::<i32>(),
            0u8..3
        )
            .prop_map(|(app, text, x, y, button)| {
                let mut events: Vec<vyoma_display::Input> = text
                    .chars()
                    .map(|c| vyoma_display::Input::Key {
                        code: format!("U{}", c as u32),
                        text: Some(c.to_string()),
                        down: true,
                        mods: vyoma_display::Mods {
                            shift: c.is_uppercase(),
                            ..Default::default()
                        },
                    })
                    .collect();
                events.push(vyoma_display::Input::Pointer {
                    x,
                    y,
                    phase: vyoma_display::Phase::Up,
                    button,
                });
                events.push(vyoma_display::Input::Touch {
                    id: button.into(),
                    x,
                    y,
                    phase: vyoma_display::Phase::Move,
                });
                Command::Input { app, events }
            }),
    ]
}

proptest! {
    /// What the client sends for a command is routed back to that command.
    #[test]
    fn request_for_is_routes_inverse(cmd in command()) {
        let out = request_for(&cmd).unwrap();
        let (path, query) = out.path_and_query.split_once('?').unwrap_or((&out.path_and_query, ""));
        let body = out.body.unwrap_or_default();
        let call = route(&Request { method: out.method, path, query, body: body.as_bytes() });
        prop_assert_eq!(call, Ok(Call::Command(cmd)));
    }

    #[test]
    fn follow_requests_route_back(app in name(), after in prop::option::of(any::<u64>()), ms in prop::option::of(0u64..1 << 40)) {
        let duration = ms.map(Duration::from_millis);
        let out = follow_request(&app, after, duration);
        let (path, query) = out.path_and_query.split_once('?').unwrap();
        let call = route(&Request { method: "GET", path, query, body: b"" });
        prop_assert_eq!(call, Ok(Call::Follow { app, after, duration }));
    }

    /// Any request is routed or refused with a status and a one-line message; never a panic.
    #[test]
    fn arbitrary_requests_are_routed_or_refused(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        path in "/[a-z0-9/%]{0,30}",
        query in "[a-z0-9=&%_]{0,20}",
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        if let Err(e) = route(&Request { method, path: &path, query: &query, body: &body }) {
            prop_assert!((400..500).contains(&e.status));
            prop_assert!(!e.message.is_empty() && !e.message.contains('\n'));
        }
    }
}
