//! Apps in every language, end to end with the real toolchains (`./dev toolchains`
//! installs them; a missing one fails its test, saying so): `vyoma new` of each language's
//! templates, built by `vyoma run --build` and asked through the console, and the
//! `examples/languages` set (C, Python, JavaScript and a real Python program) the same way.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vyoma_testkit::write_app;

/// How long a session may take before the test gives up on it: a guard against a hang, far
/// above what any build or start needs (the builds and cold compiles of 12-18 MB
/// interpreter components on two slow cores).
const HANG: Duration = Duration::from_secs(600);

fn vyoma(args: &[&str]) -> Command {
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let mut c = vyoma_testkit::vyoma_command(env!("CARGO_BIN_EXE_vyoma"), tmp, &vyoma_testkit::fresh_home(tmp), args);
    // Rust apps of every test share one target folder (their build command copies from it).
    c.env("CARGO_TARGET_DIR", Path::new(tmp).join("rust-apps"));
    c
}

/// Runs `vyoma run --build DIR`, types `script` at its console, and reads its output until
/// a line containing each of `want` was printed (then shuts it down); returns all it printed.
fn session(dir: &Path, script: &str, want: &[String]) -> String {
    let mut child = vyoma(&["run", "--build", dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut missing: Vec<&String> = want.iter().collect();
    while !missing.is_empty() {
        match rx.recv_timeout(HANG) {
            Ok(line) => {
                missing.retain(|w| !line.contains(w.as_str()));
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the session ended or hung before printing {missing:?}:\n{seen}");
            }
        }
    }
    stdin.write_all(b"shutdown\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{seen}");
    seen
}

/// `vyoma new` of `lang`'s hello and IPC apps beside an `echo` peer, built and run: hello
/// prints, and the IPC app answers a console request after asking echo.
fn new_build_run(lang: &str, what: &str) {
    let d = tempfile::tempdir().unwrap();
    for ipc in [false, true] {
        let name = format!("{lang}-{}", if ipc { "ipc" } else { "hello" });
        let mut args = vec!["new", &name, "--lang", lang, "--dir", d.path().to_str().unwrap()];
        if ipc {
            args.push("--ipc");
        }
        let out = vyoma(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            stdout.starts_with(&format!("created {lang} app `{name}` in ")),
            "{stdout}"
        );
    }
    write_app(
        d.path(),
        "echo",
        "echo",
        "[capabilities.ipc]\nsend = [\"*\"]\naccept = [\"*\"]\n",
    );
    // Point the IPC app at echo, as its manifest's comment says.
    let manifest = d.path().join(format!("{lang}-ipc/app.toml"));
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replace("# args = [\"echo\"]", "args = [\"echo\"]\n#")
        .replace("send = []", "send = [\"echo\"]");
    std::fs::write(&manifest, text).unwrap();

    let ipc = format!("{lang}-ipc");
    let hello = format!("{lang}-hello");
    let seen = session(
        d.path(),
        &format!("wait {ipc} running 5m\nwait {hello} exited 5m\n@{ipc}: hi there\nlog {hello}\n"),
        &[
            format!("[from {ipc}] {ipc} heard \"hi there\"; echo said \"hi there\""),
            format!(" out hello from {hello} ({what}), "),
        ],
    );
    assert!(seen.contains(&format!("built {ipc} in ")), "{seen}");
    assert!(seen.contains(&format!("built {hello} in ")), "{seen}");
    assert!(seen.contains("echo: no [build] in its manifest"), "{seen}");
}

#[test]
fn a_new_c_app_builds_runs_and_answers() {
    new_build_run("c", "C");
}

#[test]
fn a_new_python_app_builds_runs_and_answers() {
    new_build_run("python", "Python");
}

#[test]
fn a_new_js_app_builds_runs_and_answers() {
    new_build_run("js", "JavaScript");
}

#[test]
fn a_new_rust_app_builds_runs_and_answers() {
    new_build_run("rust", "Rust");
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/languages")
        .canonicalize()
        .unwrap()
}

#[test]
fn the_language_examples_answer_through_the_console() {
    let seen = session(
        &examples(),
        "wait py-stats running 5m\nwait c-ipc running 5m\nwait py-ipc running 5m\nwait js-ipc running 5m\n\
         @c-ipc: from C\n@py-ipc: from Python\n@js-ipc: from JavaScript\n\
         @py-stats: sensor attic\n@py-stats: sensor nowhere\n\
         wait c-gui running 5m\ninput c-gui pointer 20 20 down\nlogf c-gui 10s\n",
        &[
            "[from c-ipc] c-ipc heard \"from C\"; echo said \"from C\"".into(),
            "[from py-ipc] py-ipc heard \"from Python\"; echo said \"from Python\"".into(),
            "[from js-ipc] js-ipc heard \"from JavaScript\"; echo said \"from JavaScript\"".into(),
            // Figures of examples/languages/py-stats/data/readings.csv.
            "[from py-stats] {\"count\": 72, \"max\": 48.3, \"max_at\": \"13:20\", \"mean\": 32.19, \"median\": 32.5, \"min\": 21.56, \"stdev\": 5.09}".into(),
            "[from py-stats] error: no sensor 'nowhere'; known: attic, cellar, greenhouse, porch".into(),
            // A C app drawing, and taking a pointer event.
            "c-gui: drawing on a ".into(),
            "c-gui: square at 20,20".into(),
        ],
    );
    for app in [
        "c-gui", "c-hello", "c-ipc", "echo", "js-hello", "js-ipc", "py-hello", "py-ipc", "py-stats",
    ] {
        assert!(seen.contains(&format!("built {app} in ")), "{app}:\n{seen}");
    }
}

#[test]
fn build_failures_and_bad_names_are_errors_naming_what_failed() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    let out = vyoma(&["new", "Bad_Name", "--lang", "c", "--dir", dir])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`Bad_Name` is not an app name: use kebab-case"), "{err}");
    let out = vyoma(&["new", "x", "--lang", "cobol", "--dir", dir]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown language `cobol`: use one of rust, c, python, js"),
        "{err}"
    );

    assert!(
        vyoma(&["new", "broken", "--lang", "c", "--dir", dir])
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(d.path().join("broken/main.c"), "int main( {").unwrap();
    let out = vyoma(&["build", dir]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("error: app `broken`: its build command `clang-19 ")
            && stdout.contains("failed (exit status: 1)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 app(s) failed to build, 0 built"), "{stdout}");
    // `run --build` starts nothing when a build fails.
    let out = vyoma(&["run", "--build", "--no-console", dir]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not started: the build failed"));
}
