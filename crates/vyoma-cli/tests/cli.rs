//! End-to-end tests of the `vyoma` binary: a console session driven through stdin against
//! real components, `vyoma check` diagnostics, and signal handling.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use vyoma_testkit::write_app;

fn app(root: &Path, name: &str, component: &str, extra: &str) {
    write_app(root, name, component, extra);
}

/// `vyoma ARGS` with the tests' compile cache, and a management API on a free loopback
/// port whose credentials and client config live in a folder of their own (never the
/// user's).
fn vyoma(args: &[&str]) -> Command {
    let tmp = env!("CARGO_TARGET_TMPDIR");
    vyoma_testkit::vyoma_command(env!("CARGO_BIN_EXE_vyoma"), tmp, &vyoma_testkit::fresh_home(tmp), args)
}

fn session(dir: &Path, script: &str) -> Output {
    let mut child = vyoma(&["run", dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn console_session_through_stdin() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "hello", "hello", "args = [\"there\"]\n");
    app(
        d.path(),
        "ticker",
        "ticker",
        "args = [\"50\"]\n[restart]\npolicy = \"always\"\n",
    );
    app(d.path(), "spinner", "spinner", "");
    let out = session(
        d.path(),
        "help\nwait hello exited\nwait ticker running\nlog hello\nlogf ticker 400ms\nkill spinner\nps\n\
         restart ticker\nwait ticker running\ninspect ticker\nfrobnicate\nkill ghost\nlog\nstart hello\nwait hello exited\nps\nshutdown\n",
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(stdout.starts_with("VyomaOS: 3 apps from "), "{stdout}");
    assert!(stdout.contains("pooling ("), "{stdout}");
    assert!(
        stdout.contains("  ps                          one row per app"),
        "{stdout}"
    );
    assert!(stdout.contains("hello: exited\nticker: running\n"), "{stdout}");
    assert!(stdout.contains(" out hello from VyomaOS: there\n"), "{stdout}");
    // Followed for 400 ms at one tick per 50 ms.
    assert!(stdout.contains(" out tick 4\n"), "{stdout}");
    assert!(stdout.contains("(stopped following)\n"), "{stdout}");
    assert!(stdout.contains("spinner: stopped\n"), "{stdout}");
    let ps = stdout.split("NAME ").nth(1).unwrap();
    assert!(ps.contains("spinner  stopped "), "{ps}");
    assert!(ps.contains("killed by operator"), "{ps}");
    assert!(ps.contains("hello    exited "), "{ps}");
    assert!(ps.contains("exit code 0"), "{ps}");
    assert!(stdout.contains("ticker: restarting\n"), "{stdout}");
    assert!(
        stdout.contains("state:       running (instance 2, 1 restarts)"),
        "{stdout}"
    );
    assert!(stdout.contains("  wasi:cli/run@0.2"), "{stdout}");
    assert!(
        stdout.contains("error: unknown command `frobnicate`; `help` lists the commands\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: no app named `ghost`; `ps` lists the apps\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: `log` needs an app name: log APP [N]\n"),
        "{stdout}"
    );
    let last_ps = stdout.rsplit("NAME ").next().unwrap();
    assert!(
        last_ps.contains("hello    exited           1"),
        "second run of hello counts a restart:\n{last_ps}"
    );
    assert!(stdout.ends_with("all apps stopped; shutting down\n"), "{stdout}");
}

#[test]
fn end_of_input_stops_every_app_and_exits_zero() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "ticker", "ticker", "");
    let out = session(d.path(), "wait ticker running\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ticker: running\n"));
}

#[test]
fn check_reports_every_problem_with_positions() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "good", "hello", "");
    let bad = d.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("app.toml"),
        "manifest_version = 1\n[app]\nname = \"Bad\"\nversion = \"0.1\"\ncomponent = \"x.wasm\"\n[restart]\npolicy = \"sometimes\"\n",
    )
    .unwrap();
    let out = vyoma(&["check", d.path().to_str().unwrap()]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let b = bad.join("app.toml");
    let b = b.display();
    assert!(
        stdout.contains(&format!("{b}:3:8: error: invalid app name `Bad`\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{b}:4:11: error: invalid version `0.1`")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{b}:7:10: error: unknown restart policy `sometimes`\n")),
        "{stdout}"
    );
    assert!(stdout.contains("3 problem(s) found"), "{stdout}");
}

#[test]
fn check_finds_missing_files_and_non_components() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(
        a.join("app.toml"),
        "manifest_version = 1\n[app]\nname = \"a\"\nversion = \"0.1.0\"\ncomponent = \"gone.wasm\"\n[[capabilities.dirs]]\nhost = \"nope\"\nguest = \"/d\"\n",
    )
    .unwrap();
    let b = d.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(
        b.join("app.toml"),
        "manifest_version = 1\n[app]\nname = \"b\"\nversion = \"0.1.0\"\ncomponent = \"core.wasm\"\n",
    )
    .unwrap();
    // A WASI preview-1 command module from plain clang passes: it is adapted.
    vyoma_testkit::write_c_preview1_app(d.path(), "c", vyoma_testkit::PREVIEW1_C, "");
    let out = vyoma(&["check", d.path().to_str().unwrap()]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("a/app.toml:5:13: error: component file"), "{stdout}");
    assert!(stdout.contains("a/app.toml:7:8: error: granted directory"), "{stdout}");
    assert!(
        stdout.contains("b/app.toml:5:13: error: app `b`: ")
            && stdout.contains("is a core wasm module VyomaOS cannot run: it exports no `_start` function"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: c 0.1.0 ("), "{stdout}");
    assert!(stdout.contains("3 problem(s) found"), "{stdout}");
}

#[test]
fn check_accepts_the_bundled_apps() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/default");
    let out = vyoma(&["check", dir.to_str().unwrap()]).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("checked 10 app(s): no problems"), "{stdout}");
    assert!(
        stdout.contains("ok: hello-http 0.1.0 (") && stdout.contains("an HTTP handler with 2 route(s))"),
        "{stdout}"
    );
}

#[test]
fn run_starts_the_valid_apps_and_shows_the_invalid_ones_failed() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(
        a.join("app.toml"),
        "manifest_version = 1\n[app]\nname = \"a\"\nflavour = 1\n",
    )
    .unwrap();
    app(d.path(), "hello", "hello", "");
    let out = session(d.path(), "wait hello exited\nps\nlog a\nstart a\nshutdown\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("a/app.toml:4:1: error: unknown field `flavour`"),
        "{stderr}"
    );
    assert!(stderr.contains("note: 1 app(s) cannot run"), "{stderr}");
    assert!(stdout.contains("hello: exited"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("failed") && l.contains("cannot run")),
        "{stdout}"
    );
    assert!(stdout.contains("error: `a` cannot run:"), "{stdout}");
    // A folder without any app is still an error.
    let empty = tempfile::tempdir().unwrap();
    let out = vyoma(&["run", empty.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("no apps found"), "{}", text(&out.stderr));
}

#[test]
fn a_lone_app_folder_checks_and_runs_without_its_peers() {
    // The bundled `echo` depends on and talks to `logger`, which is not in its folder.
    let echo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/default/echo");
    let out = vyoma(&["check", echo.to_str().unwrap()]).output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("warning: app `echo` depends on `logger`, which is not here"),
        "{stdout}"
    );
    assert!(stdout.contains("checked 1 app(s): no problems"), "{stdout}");
    let out = session(&echo, "wait echo running\n@echo: hi\nshutdown\n");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("echo: running"), "{stdout}");
}

#[test]
fn an_unsafe_compile_cache_is_not_used_and_the_banner_says_why() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "hello", "hello", "");
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut child = vyoma(&["run", d.path().to_str().unwrap()])
        .env("VYOMA_CACHE_DIR", cache.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"wait hello exited\nshutdown\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("compile cache: off (") && stdout.contains("is writable by others (mode 777)"),
        "{stdout}"
    );
    assert!(stdout.contains("hello: exited"), "{stdout}");
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "nothing written there"
    );
}

#[test]
fn run_serves_http_apps_on_the_gateway_and_check_refuses_routes_on_a_command() {
    use std::io::{BufRead, Read};
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "web",
        "hello-http",
        "[http]\nroutes = [{ path = \"/hello\" }]\n",
    );
    let mut child = vyoma(&["run", "--no-console", d.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let l = lines.next().expect("the banner").unwrap();
        if let Some(rest) = l.strip_prefix("HTTP gateway: http://") {
            assert!(rest.ends_with(" (1 routes)"), "{l}");
            break rest.split(' ').next().unwrap().to_string();
        }
    };
    // Until the app runs the gateway says 503; then the app answers.
    let get = || {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(b"GET /hello HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
        let mut raw = String::new();
        c.read_to_string(&mut raw).unwrap();
        raw
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let answer = loop {
        let raw = get();
        if !raw.contains(" 503 ") || std::time::Instant::now() > deadline {
            break raw;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let status = answer.lines().next().unwrap_or("");
    assert!(status.ends_with(" 200 OK"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nhello from VyomaOS\n"), "{answer}");
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());

    // Routes on a command: `check` says so, at the component.
    app(d.path(), "web", "ticker", "[http]\nroutes = [{ path = \"/hello\" }]\n");
    let out = vyoma(&["check", d.path().to_str().unwrap()]).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("app `web` has [http] routes, but") && stdout.contains("is a command, not an HTTP handler"),
        "{stdout}"
    );
}

#[test]
fn sigterm_stops_apps_and_exits_zero() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "ticker", "ticker", "");
    let mut child = vyoma(&["run", "--no-console", d.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the banner, so the signal handlers are installed.
    let mut stdout = child.stdout.take().unwrap();
    let mut banner = [0u8; 8];
    std::io::Read::read_exact(&mut stdout, &mut banner).unwrap();
    assert_eq!(&banner, b"VyomaOS:");
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn at_lines_reach_apps_and_their_replies_are_printed() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "echo",
        "echo",
        "[capabilities.ipc]\nsend = [\"*\"]\naccept = [\"*\"]\n",
    );
    let mut child = vyoma(&["run", d.path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"wait echo running\n@echo: are you there?\n").unwrap();
    // Keep the console open until the reply has been printed, then shut down.
    let stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line == "[from echo] are you there?" {
            stdin.write_all(b"ps\nshutdown\n").unwrap();
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{seen}");
    assert!(seen.contains("sent to echo\n"), "{seen}");
    assert!(seen.contains("[from echo] are you there?\n"), "{seen}");
    let row = seen
        .lines()
        .find(|l| l.starts_with("echo "))
        .expect("a ps row for echo");
    // SENT RECV REFUSED QUEUED after MEMORY (`1.1 MiB`, two words) and CPU: one reply
    // sent, one message received.
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[7..11], ["1", "1", "0", "0"], "{row}");
}

#[test]
fn a_window_without_an_x_server_is_refused_with_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "ticker", "ticker", "");
    let out = vyoma(&[
        "run",
        "--no-store",
        "--no-api",
        "--display",
        "window",
        d.path().to_str().unwrap(),
    ])
    .env_remove("DISPLAY")
    .env_remove("WAYLAND_DISPLAY")
    .stdin(Stdio::null())
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot reach an X server (DISPLAY=unset)") && err.contains("or use --display headless"),
        "{err}"
    );
}

#[test]
fn image_build_refuses_options_the_image_would_not_understand() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("image");
    let kiosk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kiosk");
    let o = vyoma(&[
        "image",
        "build",
        kiosk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .args(["--append", "vyoma.layout=stack vyoma.bar=yes"])
    .output()
    .unwrap();
    assert!(!o.status.success());
    assert_eq!(
        text(&o.stderr).trim(),
        "error: --append: `vyoma.layout`: `stack` is not a layout: use `kiosk`, `grid` or `tiles:APP,APP,...` (using grid); `vyoma.bar=yes`: write `vyoma.bar=on` or `vyoma.bar=off` (using on); no image was written"
    );
    assert!(!out.exists(), "nothing written");
}
