//! `vyoma ps`, `vyoma logf`, ... through the real `vyoma` client against real `vyoma run`
//! instances' management APIs: text as the console prints it, `--json`, several endpoints
//! at once, refusals, and shutting an instance down remotely.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use vyoma_testkit::write_app;

/// A running `vyoma run --no-console` with its own client config and credentials.
struct Instance {
    child: Child,
    home: PathBuf,
    url: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn home() -> PathBuf {
    vyoma_testkit::fresh_home(env!("CARGO_TARGET_TMPDIR"))
}

fn vyoma(home: &Path, args: &[&str]) -> Command {
    vyoma_testkit::vyoma_command(env!("CARGO_BIN_EXE_vyoma"), env!("CARGO_TARGET_TMPDIR"), home, args)
}

/// Starts `vyoma run` over `apps` and waits for its API line.
fn start(apps: &Path) -> Instance {
    let home = home();
    let mut child = vyoma(&home, &["run", "--no-console", apps.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.strip_prefix("management API: ") {
            url = rest.split_whitespace().next().map(String::from);
            break;
        }
        line.clear();
    }
    let url = url.expect("vyoma run printed its management API's URL");
    // Keep draining stdout so the instance never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Instance { child, home, url }
}

fn run(home: &Path, args: &[&str]) -> Output {
    vyoma(home, args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "vyoma {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn apps() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_app(d.path(), "ticker", "ticker", "args = [\"50\"]\n");
    write_app(
        d.path(),
        "echo",
        "echo",
        "[capabilities.ipc]\nsend = [\"*\"]\naccept = [\"*\"]\n",
    );
    d
}

#[test]
fn the_console_commands_run_remotely_with_the_consoles_output() {
    let d = apps();
    let inst = start(d.path());
    let h = &inst.home;
    ok(h, &["wait", "all", "running", "1m"]);
    let ps = ok(h, &["ps"]);
    let mut lines = ps.lines();
    assert!(lines.next().unwrap().starts_with("NAME    STATE     RESTARTS"), "{ps}");
    assert!(lines.next().unwrap().starts_with("echo    running"), "{ps}");
    assert!(lines.next().unwrap().starts_with("ticker  running"), "{ps}");

    // --json is the API's reply.
    let json: serde_json::Value = serde_json::from_str(&ok(h, &["--json", "ps"])).unwrap();
    assert_eq!(json["apps"][1]["name"], "ticker");
    assert_eq!(json["apps"][1]["state"], "running");

    assert_eq!(ok(h, &["send", "echo", "hi there"]), "[from echo] hi there\n");
    let inspect = ok(h, &["inspect", "ticker"]);
    assert!(inspect.starts_with("name:        ticker\n"), "{inspect}");
    assert!(ok(h, &["log", "ticker", "1"]).contains(" out tick "));
    let follow = ok(h, &["logf", "ticker", "500ms"]);
    assert!(
        follow.lines().filter(|l| l.contains(" out tick ")).count() >= 5,
        "{follow}"
    );
    assert_eq!(ok(h, &["kill", "ticker"]), "ticker: stopped\n");
    assert_eq!(ok(h, &["start", "ticker"]), "ticker: starting\n");
    assert_eq!(ok(h, &["restart", "ticker"]), "ticker: restarting\n");
    assert!(ok(h, &["metrics"]).contains("vyoma_app_running{app=\"echo\"} 1.0"));

    // Errors: the instance's message, exit code 1; with --json, the error object.
    let out = run(h, &["inspect", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "error: no app named `nope`; `ps` lists the apps\n");
    let out = run(h, &["--json", "stop", "nope"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["error"]["code"].as_str(), json["error"]["status"].as_u64()),
        (Some("unknown_app"), Some(404))
    );
    // The console's parser checks arguments before anything is sent.
    let out = run(h, &["wait", "ticker", "asleep"]);
    assert!(
        text(&out.stderr).contains("unknown state `asleep`"),
        "{}",
        text(&out.stderr)
    );
    // A wrong token is refused.
    let out = vyoma(h, &["ps"]).env("VYOMA_TOKEN", "vyoma_wrong").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("error: wrong token"),
        "{}",
        text(&out.stderr)
    );

    // Shutdown ends the instance.
    assert_eq!(ok(h, &["shutdown"]), "all apps stopped; shutting down\n");
    let mut inst = inst;
    let status = inst.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn several_endpoints_answer_one_result_each() {
    let (d1, d2) = (apps(), apps());
    let (a, b) = (start(d1.path()), start(d2.path()));
    // An operator's config naming both.
    let ops = home();
    let read = |h: &Path| std::fs::read_to_string(h.join("client.toml")).unwrap();
    let (ta, tb) = (read(&a.home), read(&b.home));
    let token = |t: &str| t.lines().find(|l| l.starts_with("token")).unwrap().to_string();
    std::fs::write(
        ops.join("client.toml"),
        format!(
            "default = \"a\"\n[endpoints.a]\nurl = \"{}\"\n{}\n[endpoints.b]\nurl = \"{}\"\n{}\n",
            a.url,
            token(&ta),
            b.url,
            token(&tb)
        ),
    )
    .unwrap();
    ok(&ops, &["--endpoint", "a,b", "wait", "all", "running", "1m"]);
    let out = ok(&ops, &["--endpoint", "a,b", "ps"]);
    assert!(out.starts_with("== a ==\nNAME"), "{out}");
    assert!(out.contains("\n== b ==\nNAME"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(&ops, &["--endpoint", "a,b", "--json", "ps"])).unwrap();
    assert_eq!(json[0]["endpoint"], "a");
    assert_eq!(json[1]["endpoint"], "b");
    assert_eq!(json[1]["reply"]["apps"][0]["name"], "echo");
    // One instance gone: its error, the other's result, exit code 1.
    ok(&ops, &["--endpoint", "b", "shutdown"]);
    let out = run(&ops, &["--endpoint", "a,b", "ps"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("== a ==\nNAME"));
    assert!(
        text(&out.stderr).starts_with("error: b: cannot reach http://127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );
    // Unknown names say what the config has.
    let out = run(&ops, &["--endpoint", "c", "ps"]);
    assert!(
        text(&out.stderr).contains("no endpoint named `c` (the config has a, b)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_app_is_updated_rolled_back_and_listed_remotely() {
    let d = apps();
    let inst = start(d.path());
    let h = &inst.home;
    ok(h, &["wait", "all", "running", "1m"]);
    // A new version of echo in a folder of its own: the client uploads its component.
    let new = tempfile::tempdir().unwrap();
    let dir = write_app(
        new.path(),
        "echo",
        "echo",
        "[capabilities.ipc]\nsend = [\"*\"]\naccept = [\"*\"]\n[update]\nprobation = \"0s\"\n",
    );
    let toml = std::fs::read_to_string(dir.join("app.toml")).unwrap();
    std::fs::write(dir.join("app.toml"), toml.replace("0.1.0", "0.2.0")).unwrap();
    let dry = ok(h, &["update", "echo", dir.to_str().unwrap(), "--dry-run"]);
    assert!(dry.starts_with("echo: would update 0.1.0 (factory, "), "{dry}");
    assert!(dry.contains("-> 0.2.0 (new, "), "{dry}");
    assert!(
        dry.contains("version 0.1.0 -> 0.2.0") && dry.contains("(dry run: nothing changed)"),
        "{dry}"
    );
    let out = ok(h, &["update", "echo", dir.to_str().unwrap()]);
    assert!(out.starts_with("echo: updated 0.1.0 (version 1, "), "{out}");
    assert!(
        out.contains("-> 0.2.0 (version 2, ") && out.contains("no message lost"),
        "{out}"
    );
    ok(h, &["wait", "echo", "running", "1m"]);
    assert_eq!(ok(h, &["send", "echo", "still there"]), "[from echo] still there\n");
    let versions = ok(h, &["versions", "echo"]);
    let rows: Vec<&str> = versions.lines().collect();
    assert!(rows[0].starts_with("ID   VERSION"), "{versions}");
    assert!(rows[1].starts_with("2    0.2.0"), "{versions}");
    assert!(rows[2].starts_with("1    0.1.0        "), "{versions}");
    let json: serde_json::Value = serde_json::from_str(&ok(h, &["--json", "versions", "echo"])).unwrap();
    assert_eq!(json["versions"]["versions"][1]["origin"], "factory");
    let back = ok(h, &["rollback", "echo"]);
    assert!(back.starts_with("echo: rolled back from 0.2.0 (version 2, "), "{back}");
    assert!(back.contains("rolled back by the operator"), "{back}");
    // Refusals come back as the instance's message.
    let out = run(h, &["update", "ticker", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the new manifest is for `echo`, not `ticker`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_app_is_deployed_and_removed_remotely() {
    let d = apps();
    let inst = start(d.path());
    let h = &inst.home;
    ok(h, &["wait", "all", "running", "1m"]);
    // An app the instance did not start with, from a folder on the client's machine.
    let new = tempfile::tempdir().unwrap();
    let dir = write_app(
        new.path(),
        "greeter",
        "echo",
        "[capabilities.ipc]\nsend = [\"*\"]\naccept = [\"*\"]\n[capabilities]\ndata = true\n[update]\nprobation = \"0s\"\n",
    );
    let dry = ok(h, &["deploy", dir.to_str().unwrap(), "--dry-run"]);
    assert!(dry.starts_with("greeter: would deploy 0.1.0 (new, "), "{dry}");
    assert!(dry.contains("(dry run: nothing changed)"), "{dry}");
    assert!(!ok(h, &["ps"]).contains("greeter"));
    let out = ok(h, &["deploy", dir.to_str().unwrap()]);
    assert!(out.starts_with("greeter: deployed 0.1.0 (version 1, "), "{out}");
    assert!(out.contains("its data folder (/data): "), "{out}");
    ok(h, &["wait", "greeter", "running", "1m"]);
    assert_eq!(ok(h, &["send", "greeter", "hi"]), "[from greeter] hi\n");
    assert!(ok(h, &["ps"]).contains("greeter"));
    // Deployed twice: refused, with the way out.
    let out = run(h, &["deploy", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("`greeter` is already an app of this instance: `update greeter DIR`"),
        "{}",
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&ok(h, &["--json", "remove", "greeter", "--purge"])).unwrap();
    assert_eq!(json["removed"]["app"], "greeter");
    assert_eq!(json["removed"]["persistent"], true);
    assert_eq!(json["removed"]["purged"], 0);
    assert!(!ok(h, &["ps"]).contains("greeter"));
    let out = run(h, &["remove", "greeter"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no app named `greeter`"),
        "{}",
        text(&out.stderr)
    );
    // One of the instance's own apps.
    let out = ok(h, &["remove", "ticker"]);
    assert!(out.starts_with("ticker: removed\n"), "{out}");
    assert!(out.contains("it stays removed until it is deployed again"), "{out}");
}

#[test]
fn a_preview1_module_is_adapted_by_the_client_before_it_is_deployed() {
    let d = apps();
    let inst = start(d.path());
    let h = &inst.home;
    ok(h, &["wait", "all", "running", "1m"]);
    let new = tempfile::tempdir().unwrap();
    let dir = new.path().join("cprog");
    // Ending well (a first version that fails its probation is turned down).
    let source = vyoma_testkit::PREVIEW1_C.replace("return 3;", "return 0;");
    let module = vyoma_testkit::write_c_preview1_app(
        new.path(),
        "cprog",
        &source,
        "[restart]\npolicy = \"never\"\n[update]\nprobation = \"0s\"\n",
    );
    let out = ok(h, &["deploy", dir.to_str().unwrap()]);
    assert!(out.starts_with("cprog: deployed 0.1.0 (version 1, "), "{out}");
    ok(h, &["wait", "cprog", "exited", "1m"]);
    let log = ok(h, &["log", "cprog"]);
    assert!(log.contains("p1: argc=1 GREETING=(unset)"), "{log}");
    assert!(
        log.contains("p1: cannot read /data/in.txt"),
        "no grant, no folder:\n{log}"
    );
    // What went over the network is the adapted component, not the module.
    let json: serde_json::Value = serde_json::from_str(&ok(h, &["--json", "inspect", "cprog"])).unwrap();
    let sha = json["inspect"]["component"]["sha256"].as_str().unwrap().to_string();
    let module_bytes = std::fs::read(&module).unwrap();
    let (adapted, _) = vyoma_runtime::as_component(&module_bytes, &module).unwrap();
    assert_eq!(sha, vyoma_runtime::sha256_hex(&adapted));
}

#[test]
fn the_display_is_driven_and_photographed_remotely() {
    let d = tempfile::tempdir().unwrap();
    write_app(
        d.path(),
        "paint",
        "paint",
        "[capabilities]\ndisplay = { max = \"1280x800\" }\ninput = [\"pointer\"]\n",
    );
    write_app(d.path(), "ticker", "ticker", "args = [\"1000\"]\n");
    let inst = start(d.path());
    let h = &inst.home;
    ok(h, &["wait", "paint", "running", "1m"]);
    // Only apps granted `display` are on it; the instance's default is a headless grid.
    let shown = ok(h, &["display"]);
    assert!(
        shown.starts_with("screen 1280x800 (headless), layout grid, focus paint"),
        "{shown}"
    );
    assert!(shown.contains("\npaint ") && !shown.contains("ticker"), "{shown}");
    assert_eq!(ok(h, &["layout", "kiosk"]), "layout kiosk\n");
    assert_eq!(
        ok(h, &["input", "paint", "pointer", "10", "10", "click"]),
        "2 input event(s) given to paint\n"
    );
    let file = d.path().join("screen.png");
    let said = ok(h, &["screenshot", file.to_str().unwrap()]);
    assert!(said.ends_with(&format!("written to {}\n", file.display())), "{said}");
    let png = std::fs::read(&file).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // Refusals say why.
    let out = run(h, &["input", "paint", "key", "KeyA"]);
    assert!(
        text(&out.stderr).contains("not granted `keyboard`"),
        "{}",
        text(&out.stderr)
    );
    let out = run(h, &["focus", "ticker"]);
    assert!(
        text(&out.stderr).contains("no app named `ticker` on the display"),
        "{}",
        text(&out.stderr)
    );
    let out = run(h, &["screenshot", "--app", "ticker", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
}
