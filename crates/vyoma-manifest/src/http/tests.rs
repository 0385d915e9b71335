use super::*;

fn route(path: &str, host: Option<&str>) -> Route {
    Route {
        path: RoutePattern::parse(path).unwrap(),
        host: host.map(|h| HostPattern::parse(h).unwrap()),
    }
}

/// The route that wins for `host` and `path` among `routes`, as written.
fn winner(routes: &[Route], host: &str, path: &str) -> Option<String> {
    routes
        .iter()
        .filter_map(|r| r.matches(host, path).map(|m| (m, r)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, r)| r.to_string())
}

#[test]
fn exact_routes_match_only_their_path() {
    let r = route("/hello", None);
    assert!(r.matches("h", "/hello").is_some());
    assert!(r.matches("h", "/hello/").is_none());
    assert!(r.matches("h", "/hello/x").is_none());
    assert!(r.matches("h", "/hell").is_none());
    assert!(r.matches("h", "/").is_none());
    let root = route("/", None);
    assert!(root.matches("h", "/").is_some());
    assert!(root.matches("h", "/a").is_none());
}

#[test]
fn wildcards_match_the_rest_including_nothing() {
    let r = route("/static/...", None);
    for p in ["/static", "/static/", "/static/a", "/static/a/b/c"] {
        assert!(r.matches("h", p).is_some(), "{p}");
    }
    assert!(r.matches("h", "/staticx").is_none());
    assert!(r.matches("h", "/").is_none());
    let all = route("/...", None);
    for p in ["/", "/a", "/a/b"] {
        assert!(all.matches("h", p).is_some(), "{p}");
    }
}

#[test]
fn params_match_one_non_empty_segment() {
    let r = route("/users/:id", None);
    assert!(r.matches("h", "/users/7").is_some());
    assert!(r.matches("h", "/users/").is_none());
    assert!(r.matches("h", "/users/7/x").is_none());
    assert_eq!(r.path.params("/users/7"), [("id", "7")]);
    let r = route("/a/:x/b/:y/...", None);
    assert_eq!(r.path.params("/a/1/b/2/c/d"), [("x", "1"), ("y", "2")]);
}

#[test]
fn the_most_specific_route_wins() {
    let routes = [
        route("/...", None),
        route("/api/...", None),
        route("/api/users/:id", None),
        route("/api/users/me", None),
        route("/api/:version/status", None),
        route("/api/v1/...", None),
        route("/docs", None),
        route("/docs/...", None),
    ];
    let cases = [
        ("/", "/..."),
        ("/other/x", "/..."),
        ("/api", "/api/..."),
        ("/api/users/7", "/api/users/:id"),
        ("/api/users/me", "/api/users/me"),
        ("/api/users/7/extra", "/api/..."),
        // A literal second segment beats a parameter, whatever follows.
        ("/api/v1/status", "/api/v1/..."),
        ("/api/v2/status", "/api/:version/status"),
        // At equal segments, no wildcard beats a wildcard that matched nothing.
        ("/docs", "/docs"),
        ("/docs/intro", "/docs/..."),
    ];
    for (path, want) in cases {
        assert_eq!(winner(&routes, "any", path).as_deref(), Some(want), "{path}");
    }
}

#[test]
fn a_route_naming_its_host_beats_one_that_does_not() {
    let routes = [route("/api/users/:id", None), route("/...", Some("admin.example.com"))];
    assert_eq!(
        winner(&routes, "admin.example.com", "/api/users/1").as_deref(),
        Some("admin.example.com/...")
    );
    assert_eq!(
        winner(&routes, "ADMIN.example.com", "/x").as_deref(),
        Some("admin.example.com/...")
    );
    assert_eq!(
        winner(&routes, "example.com", "/api/users/1").as_deref(),
        Some("/api/users/:id")
    );
    assert_eq!(winner(&routes, "example.com", "/x"), None);
}

#[test]
fn suffix_hosts_match_subdomains_only() {
    let h = HostPattern::parse("*.example.com").unwrap();
    assert!(h.matches("a.example.com"));
    assert!(h.matches("a.b.example.com"));
    assert!(!h.matches("example.com"));
    assert!(!h.matches("aexample.com"));
    assert!(!h.matches(".example.com"));
    // A host that is not ASCII is compared byte by byte (found by fuzzing: it split a char).
    let h = HostPattern::parse("*.sm").unwrap();
    assert!(!h.matches("/stat//+x\u{44dd}ic/ic/a/b"));
    assert!(!h.matches("\u{44dd}.sm\u{e9}"));
    assert!(h.matches("\u{e9}.sm"));
}

#[test]
fn routes_with_the_same_shape_conflict() {
    assert!(route("/users/:id", None).conflicts_with(&route("/users/:name", None)));
    assert!(route("/a/...", None).conflicts_with(&route("/a/...", None)));
    assert!(!route("/a/...", None).conflicts_with(&route("/a", None)));
    assert!(!route("/a", None).conflicts_with(&route("/a", Some("x.com"))));
    assert!(!route("/users/:id", None).conflicts_with(&route("/users/me", None)));
}

#[test]
fn bad_routes_say_why() {
    let cases = [
        ("hello", "starts with `/`"),
        ("/a/", "does not end in `/`"),
        ("/a//b", "empty segments"),
        ("/a/.../b", "last segment"),
        ("/a/../b", "`..` segment"),
        ("/a?x=1", "no `?` query"),
        ("/:1x", "bad parameter"),
        ("/:a/:a", "appears twice"),
        ("/a...", "whole segment"),
        ("/.well-known/vyoma/health", "belong to the gateway"),
        ("/a b", "spaces"),
    ];
    for (s, want) in cases {
        let e = RoutePattern::parse(s).unwrap_err();
        assert!(e.contains(want), "{s}: {e}");
    }
    assert!(RoutePattern::parse("/.well-known/acme").is_ok());
}

fn dest(https: bool, host: &str, port: u16) -> Destination<'_> {
    Destination { https, host, port }
}

#[test]
fn outbound_rules_match_scheme_host_and_port() {
    let r = OutboundRule::parse("https://api.example.com").unwrap();
    assert!(r.allows(&dest(true, "api.example.com", 443)));
    assert!(!r.allows(&dest(true, "api.example.com", 8443)));
    assert!(!r.allows(&dest(false, "api.example.com", 80)));
    assert!(!r.allows(&dest(true, "evil.com", 443)));
    assert!(!r.allows(&dest(true, "x.api.example.com", 443)));

    let r = OutboundRule::parse("http://127.0.0.1:8080").unwrap();
    assert!(r.allows(&dest(false, "127.0.0.1", 8080)));
    assert!(!r.allows(&dest(false, "127.0.0.1", 80)));

    let r = OutboundRule::parse("*://*.example.com:*").unwrap();
    assert!(r.allows(&dest(false, "a.example.com", 1)));
    assert!(r.allows(&dest(true, "b.a.example.com", 443)));
    assert!(!r.allows(&dest(true, "example.com", 443)));

    let r = OutboundRule::parse("http://[::1]:9000").unwrap();
    assert!(r.allows(&dest(false, "::1", 9000)));
    assert_eq!(r.to_string(), "http://[::1]:9000");

    let any = OutboundRule::parse("*://*:*").unwrap();
    assert!(any.allows(&dest(true, "anything.net", 1234)));
    // `*` is the network: never another app.
    assert!(!any.allows(&dest(false, "counter.vyoma.internal", 80)));
    assert!(!any.allows_app("counter"));
}

#[test]
fn apps_are_allowed_by_name() {
    let r = OutboundRule::parse("http://counter.vyoma.internal").unwrap();
    assert!(r.allows_app("counter"));
    assert!(!r.allows_app("other"));
    assert!(!r.allows(&dest(false, "counter.vyoma.internal", 80)));
    let all = OutboundRule::parse("http://*.vyoma.internal").unwrap();
    assert!(all.allows_app("anything"));
}

#[test]
fn bad_outbound_rules_say_why() {
    let cases = [
        ("example.com", "SCHEME://HOST"),
        ("ftp://example.com", "unknown scheme"),
        ("https://example.com/path", "not a path"),
        ("https://user@example.com", "not a path"),
        ("https://example.com:0", "bad port"),
        ("https://example.com:http", "bad port"),
        ("https://ex*mple.com", "`*` is a whole host"),
        ("https://a..b", "bad host name"),
        ("https://[::1", "unclosed"),
        ("http://c::0a:8080", "in brackets"),
        ("http://::1", "in brackets"),
        ("https://counter.vyoma.internal", "over http"),
        ("http://Bad_App.vyoma.internal", "not an app name"),
        ("https://", "host is missing"),
    ];
    for (s, want) in cases {
        let e = OutboundRule::parse(s).unwrap_err();
        assert!(e.contains(want), "{s}: {e}");
    }
}

#[test]
fn outbound_rules_print_as_written() {
    for s in [
        "https://api.example.com",
        "http://10.0.0.5:8080",
        "*://*.example.com:*",
        "http://counter.vyoma.internal",
        "http://*.vyoma.internal",
    ] {
        assert_eq!(OutboundRule::parse(s).unwrap().to_string(), s);
    }
}
