use std::path::Path;
use std::time::Duration;

use super::*;

const FULL: &str = r#"
manifest_version = 1

[app]
name = "web-cache"
version = "1.2.3"
description = "caches things"
component = "cache.wasm"
args = ["--verbose"]
depends_on = ["logger"]

[env]
MODE = "fast"

[restart]
policy = "always"
backoff = "250ms"
max_backoff = "10s"
intensity = 3
period = "30s"
retry_after = "2m"

[lifecycle]
start_timeout = "10s"
stop_timeout = "2s"
required = false

[limits]
memory = "16 MiB"
table_elements = 5000
instances = 8
log_buffer = "8 KiB"
handles = 64

[capabilities]
inherit_env = ["TZ"]
stdin = "input.txt"
dirs = [
  { host = "data", guest = "/data", mode = "rw" },
  { host = "/etc/ssl", guest = "/ssl/" },
]
network = { connect = ["10.0.0.0/8:443", "[::1]:*"], bind = ["0.0.0.0:8080"], dns = true }
"#;

#[test]
fn parses_every_field() {
    let m = Manifest::parse(FULL, "/apps/web-cache/app.toml").unwrap();
    assert_eq!(m.name, "web-cache");
    assert_eq!(m.version, semver::Version::new(1, 2, 3));
    assert_eq!(m.component.value, Path::new("/apps/web-cache/cache.wasm"));
    assert_eq!(m.args, ["--verbose"]);
    assert_eq!(m.depends_on[0].value, "logger");
    assert_eq!(m.env["MODE"], "fast");
    assert_eq!(
        m.restart,
        RestartPolicy {
            mode: RestartMode::Always,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            intensity: 3,
            period: Duration::from_secs(30),
            retry_after: Some(Duration::from_secs(120)),
        }
    );
    assert_eq!(
        m.lifecycle,
        Timeouts {
            start: Duration::from_secs(10),
            stop: Duration::from_secs(2),
            required: false,
        }
    );
    assert_eq!(
        m.limits,
        Limits {
            memory: 16 << 20,
            table_elements: 5000,
            instances: 8,
            log_buffer: 8 << 10,
            handles: 64,
            ..Limits::default()
        }
    );
    let c = &m.capabilities;
    assert_eq!(c.inherit_env, ["TZ"]);
    assert_eq!(c.stdin.as_ref().unwrap().value, Path::new("/apps/web-cache/input.txt"));
    assert_eq!(c.dirs[0].host.value, Path::new("/apps/web-cache/data"));
    assert!(c.dirs[0].writable);
    assert_eq!(c.dirs[1].host.value, Path::new("/etc/ssl"));
    assert_eq!(c.dirs[1].guest, "/ssl");
    assert!(!c.dirs[1].writable);
    let n = c.network.as_ref().unwrap();
    assert!(n.dns);
    assert_eq!(n.connect[0].to_string(), "10.0.0.0/8:443");
    assert_eq!(n.connect[1].to_string(), "[::1]:*");
    assert_eq!(n.bind[0].to_string(), "0.0.0.0:8080");
}

#[test]
fn minimal_manifest_grants_nothing() {
    let m = Manifest::parse(
        "manifest_version = 1\n[app]\nname = \"a\"\nversion = \"0.1.0\"\ncomponent = \"a.wasm\"\n",
        "x/app.toml",
    )
    .unwrap();
    assert_eq!(m.capabilities, Capabilities::default());
    assert!(m.capabilities.network.is_none());
    assert_eq!(m.restart, RestartPolicy::default());
    assert_eq!(m.limits, Limits::default());
    assert!(m.env.is_empty() && m.args.is_empty() && m.depends_on.is_empty());
}

#[test]
fn collects_every_problem_with_positions() {
    let text = "manifest_version = 1\n[app]\nname = \"Bad_Name\"\nversion = \"one\"\ncomponent = \"a.wasm\"\n[limits]\nmemory = \"lots\"\n";
    let err = Manifest::parse(text, "a/app.toml").unwrap_err();
    let lines: Vec<(usize, usize)> = err.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(lines, [(3, 8), (4, 11), (7, 10)]);
    assert!(err.iter().all(|d| d.help.is_some()));
}

#[test]
fn addr_patterns_match_by_prefix_and_port() {
    let p = parse_addr_pattern("10.1.0.0/16:*").unwrap();
    assert!(p.matches(&"10.1.200.3:80".parse().unwrap()));
    assert!(!p.matches(&"10.2.0.1:80".parse().unwrap()));
    assert!(p.matches(&"[::ffff:10.1.0.9]:5".parse().unwrap()));
    let q = parse_addr_pattern("127.0.0.1:8080").unwrap();
    assert!(q.matches(&"127.0.0.1:8080".parse().unwrap()));
    assert!(!q.matches(&"127.0.0.1:8081".parse().unwrap()));
    let r = parse_addr_pattern("[fe80::]/10:53").unwrap();
    assert!(r.matches(&"[fe80::1]:53".parse().unwrap()));
    assert!(!r.matches(&"[fec0::1]:53".parse().unwrap()));
    let any = parse_addr_pattern("0.0.0.0/0:*").unwrap();
    assert!(any.matches(&"8.8.8.8:1".parse().unwrap()));
    for bad in ["1.2.3.4", "1.2.3.4:x", "::1:80", "[::1:80", "1.2.3.4/33:1", "host:80"] {
        assert!(parse_addr_pattern(bad).is_err(), "{bad} should be rejected");
    }
}

fn app(name: &str, deps: &[&str]) -> Manifest {
    let deps: Vec<String> = deps.iter().map(|d| format!("\"{d}\"")).collect();
    Manifest::parse(
        &format!(
            "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"a.wasm\"\ndepends_on = [{}]\n",
            deps.join(", ")
        ),
        format!("{name}/app.toml"),
    )
    .unwrap()
}

#[test]
fn app_set_orders_dependencies_first() {
    let set = AppSet::new(vec![
        app("web", &["db", "log"]),
        app("db", &["log"]),
        app("log", &[]),
        app("a", &[]),
    ])
    .unwrap();
    let order: Vec<&str> = set.apps().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(order, ["a", "log", "db", "web"]);
}

#[test]
fn app_set_rejects_cycles_unknown_and_duplicates() {
    let e = AppSet::new(vec![app("a", &["b"]), app("b", &["c"]), app("c", &["a"])]).unwrap_err();
    assert_eq!(e.0[0].message, "dependency cycle: a -> b -> c -> a");
    let e = AppSet::new(vec![app("a", &["ghost"])]).unwrap_err();
    assert_eq!(e.0[0].message, "app `a` depends on unknown app `ghost`");
    assert_eq!((e.0[0].line, e.0[0].column), (6, 15));
    let e = AppSet::new(vec![app("a", &[]), app("a", &[])]).unwrap_err();
    assert!(e.0[0].message.starts_with("app name `a` is already used by"));
}

fn ipc_app(name: &str, grants: &str) -> Manifest {
    Manifest::parse(
        &format!(
            "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"a.wasm\"\n[capabilities.ipc]\n{grants}\n"
        ),
        format!("{name}/app.toml"),
    )
    .unwrap()
}

#[test]
fn ipc_grants_parse_and_name_known_apps() {
    let a = ipc_app("a", "send = [\"b\", \"console\"]\naccept = [\"*\"]");
    let names: Vec<&str> = a.capabilities.ipc.send.iter_names().collect();
    assert_eq!(names, ["b", "console"]);
    assert!(matches!(a.capabilities.ipc.accept, Peers::Any(_)));
    assert_eq!(a.capabilities.ipc.accept.to_string(), "* (every app)");
    // Without the table: nothing granted.
    assert_eq!(app("c", &[]).capabilities.ipc, IpcGrant::default());
    assert_eq!(IpcGrant::default().send.to_string(), "(none)");

    let b = ipc_app("b", "accept = [\"a\", \"ghost\"]");
    AppSet::new(vec![a.clone(), ipc_app("b", "accept = [\"a\"]")]).unwrap();
    let e = AppSet::new(vec![a, b]).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].message, "app `b` grants IPC `accept` to unknown app `ghost`");
    assert_eq!((e.0[0].line, e.0[0].column), (7, 16));
}

fn names(apps: &[Manifest]) -> Vec<&str> {
    apps.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn a_partial_set_runs_what_it_can_and_says_why_not_for_the_rest() {
    // `web` needs `db`, which is in a cycle with `cache`; `ghosty` needs an unknown app;
    // a second `log` takes a used name. Only `log` and `tool` can run.
    let p = AppSet::partial(vec![
        app("log", &[]),
        app("db", &["cache"]),
        app("cache", &["db"]),
        app("web", &["db", "log"]),
        app("ghosty", &["ghost"]),
        app("tool", &["log"]),
        app("log", &[]),
    ]);
    assert_eq!(names(p.set.apps()), ["log", "tool"]);
    let why = |n: &str| -> String {
        p.rejected
            .iter()
            .filter(|r| r.name == n)
            .flat_map(|r| r.problems.iter().map(|d| d.message.clone()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert_eq!(why("ghosty"), "app `ghosty` depends on unknown app `ghost`");
    assert!(
        why("db").starts_with("dependency cycle: cache -> db -> cache"),
        "{}",
        why("db")
    );
    assert!(why("cache").starts_with("dependency cycle"), "{}", why("cache"));
    assert_eq!(why("web"), "app `web` depends on app `db`, which cannot run");
    // The duplicate is shown under its folder's name.
    assert!(
        why("log").starts_with("app name `log` is already used by log/app.toml"),
        "{}",
        why("log")
    );
    assert_eq!(p.rejected.len(), 5);
    assert!(p.set.warnings().is_empty());
    // The strict form reports every one of those problems.
    let e = AppSet::new(vec![app("a", &["ghost"]), app("b", &["a"]), app("c", &[])]).unwrap_err();
    assert_eq!(e.len(), 2, "{e}");
}

#[test]
fn grants_to_apps_that_cannot_run_are_warnings() {
    let p = AppSet::partial(vec![ipc_app("a", "send = [\"b\"]"), app("b", &["ghost"])]);
    assert_eq!(names(p.set.apps()), ["a"]);
    let w = p.set.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::Warning);
    assert_eq!(w[0].message, "app `a` grants IPC `send` to `b`, which cannot run");
    assert!(w[0].to_string().contains(": warning: "), "{}", w[0]);
}

#[test]
fn a_lone_app_may_name_peers_that_are_elsewhere() {
    let m = Manifest::parse(
        "manifest_version = 1\n[app]\nname = \"echo\"\nversion = \"0.1.0\"\ncomponent = \"a.wasm\"\ndepends_on = [\"logger\"]\n[capabilities.ipc]\nsend = [\"logger\"]\naccept = [\"*\"]\n",
        "echo/app.toml",
    )
    .unwrap();
    let set = AppSet::lone(m.clone()).unwrap();
    assert_eq!(names(set.apps()), ["echo"]);
    let w: Vec<String> = set.warnings().iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        w,
        [
            "app `echo` depends on `logger`, which is not here; it starts without waiting for it",
            "app `echo` grants IPC `send` to `logger`, which is not here",
        ]
    );
    // In a set, the same names are errors.
    assert!(AppSet::new(vec![m]).is_err());
}

#[test]
fn a_lone_app_folder_loads_as_a_lone_app() {
    let d = tempfile::tempdir().unwrap();
    let echo = d.path().join("echo");
    std::fs::create_dir(&echo).unwrap();
    std::fs::write(
        echo.join("app.toml"),
        "manifest_version = 1\n[app]\nname = \"echo\"\nversion = \"0.1.0\"\ncomponent = \"a.wasm\"\ndepends_on = [\"logger\"]\n",
    )
    .unwrap();
    let set = AppSet::load_dir(&echo).unwrap();
    assert_eq!(set.warnings().len(), 1);
    // The folder holding it is a set of one, and there `logger` is missing.
    let p = AppSet::load_dir_partial(d.path()).unwrap();
    assert!(p.set.apps().is_empty());
    assert_eq!(p.rejected[0].name, "echo");
    // An unreadable manifest is rejected under its folder's name.
    std::fs::create_dir(d.path().join("broken")).unwrap();
    std::fs::write(d.path().join("broken/app.toml"), "manifest_version = 1\n[app\n").unwrap();
    let p = AppSet::load_dir_partial(d.path()).unwrap();
    let broken = p.rejected.iter().find(|r| r.name == "broken").unwrap();
    assert!(broken.problems.iter().next().unwrap().line > 0);
}

fn http_app(name: &str, http: &str) -> Manifest {
    Manifest::parse(
        &format!("manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"a.wasm\"\n{http}"),
        format!("{name}/app.toml"),
    )
    .unwrap_or_else(|d| panic!("{d}"))
}

#[test]
fn http_tables_parse_with_defaults() {
    let m = http_app(
        "web",
        "[http]\nroutes = [{ path = \"/api/...\" }, { path = \"/\", host = \"Example.COM\" }]\nmax_in_flight = 4\nmax_body = \"64 KiB\"\ntimeout = \"2s\"\n[capabilities.http]\noutbound = [\"https://api.example.com\", \"http://store.vyoma.internal\"]\n",
    );
    let routes: Vec<String> = m.http.routes.iter().map(|r| r.value.to_string()).collect();
    assert_eq!(routes, ["/api/...", "example.com/"]);
    assert_eq!(m.http.max_in_flight, 4);
    assert_eq!(m.http.max_body, 64 << 10);
    assert_eq!(m.http.timeout, Duration::from_secs(2));
    let out: Vec<String> = m
        .capabilities
        .http_outbound
        .iter()
        .map(|r| r.value.to_string())
        .collect();
    assert_eq!(out, ["https://api.example.com", "http://store.vyoma.internal"]);
    // Without the tables: no routes, sane limits, no outbound HTTP.
    let plain = app("plain", &[]);
    assert_eq!(plain.http, HttpConfig::default());
    assert!(plain.capabilities.http_outbound.is_empty());
}

#[test]
fn routes_that_clash_between_apps_reject_the_later_app() {
    let a = http_app(
        "a",
        "[[http.routes]]\npath = \"/users/:id\"\n[[http.routes]]\npath = \"/a\"\n",
    );
    let b = http_app(
        "b",
        "[[http.routes]]\npath = \"/b\"\n\n[[http.routes]]\npath = \"/users/:name\"\n",
    );
    let c = http_app(
        "c",
        "[[http.routes]]\npath = \"/users/:id\"\nhost = \"admin.example.com\"\n",
    );
    let p = AppSet::partial(vec![a.clone(), b.clone(), c]);
    assert_eq!(names(p.set.apps()), ["a", "c"]);
    assert_eq!(p.rejected.len(), 1);
    let d = p.rejected[0].problems.iter().next().unwrap();
    assert_eq!(
        d.message,
        "route `/users/:name` matches the same requests as app `a`'s route `/users/:id` (a/app.toml:7)"
    );
    assert_eq!((d.file.to_str().unwrap(), d.line, d.column), ("b/app.toml", 10, 8));
    let e = AppSet::new(vec![a, b]).unwrap_err();
    assert_eq!(e.len(), 1);
}
