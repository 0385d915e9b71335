//! `vyoma-init` run as a plain process (hosted mode): the same start-up, console and
//! shutdown paths as PID 1, minus the mounts and the power-off, so the signal handling is
//! tested on real signals. The boot in QEMU is tested by `vyoma-cli`'s image tests.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vyoma_testkit::{shared_cache, write_app};

const LONG: Duration = Duration::from_secs(60);

struct Init {
    child: Child,
    /// Held open until the process has exited (`Child::wait` would close it first, and end
    /// of input is itself a shutdown).
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl Init {
    fn start(apps: &Path, cmdline: &str) -> Init {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vyoma-init"))
            .env("VYOMA_APPS", apps)
            .env("VYOMA_CMDLINE", cmdline)
            .env("VYOMA_CACHE_DIR", shared_cache(env!("CARGO_TARGET_TMPDIR")))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out: ChildStdout = child.stdout.take().unwrap();
        let err: ChildStderr = child.stderr.take().unwrap();
        // Both streams, as the console shows them (its log lines are on stderr).
        let (tx, lines) = mpsc::channel();
        fn forward(from: impl std::io::Read + Send + 'static, tx: mpsc::Sender<String>) {
            std::thread::spawn(move || {
                for l in BufReader::new(from).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
            });
        }
        forward(out, tx.clone());
        forward(err, tx);
        Init {
            child,
            stdin,
            lines,
            seen: String::new(),
        }
    }

    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push_str(&l);
                    self.seen.push('\n');
                    if pred(&l) {
                        return l;
                    }
                }
                Err(_) => panic!("no such line; output so far:\n{}", self.seen),
            }
        }
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
    }

    fn finish(mut self) -> String {
        let deadline = std::time::Instant::now() + LONG;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "did not exit:\n{}", self.seen);
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(self.stdin.take());
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push_str(&l);
            self.seen.push('\n');
        }
        assert!(status.success(), "exit {status:?}\n{}", self.seen);
        self.seen
    }
}

/// The line init prints once every started app has settled: `vyoma: all N apps running
/// (boot complete ...)` or `vyoma: boot complete in ...: N apps started (...)`.
fn boot_complete(l: &str) -> bool {
    l.starts_with("vyoma: ") && l.contains("boot complete")
}

fn apps() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_app(d.path(), "ticker", "ticker", "args = [\"100\"]\n");
    write_app(d.path(), "hello", "hello", "");
    d
}

#[test]
fn sigterm_sigint_and_sigpwr_shut_down_in_order() {
    let d = apps();
    for (sig, cause) in [
        (rustix::process::Signal::TERM, "SIGTERM"),
        (rustix::process::Signal::INT, "SIGINT (Ctrl-Alt-Del)"),
        (rustix::process::Signal::POWER, "SIGPWR (power failing)"),
    ] {
        let mut init = Init::start(d.path(), "");
        init.wait_line(boot_complete);
        init.signal(sig);
        let out = init.finish();
        assert!(out.contains(&format!("vyoma: {cause}: stopping all apps")), "{out}");
        assert!(out.contains(&format!("vyoma: {cause}: all apps stopped")), "{out}");
    }
}

#[test]
fn a_signal_during_start_up_stops_what_has_started() {
    // An app whose instantiation hangs keeps start-up from completing for a minute.
    let d = apps();
    vyoma_testkit::write_hanging_app(d.path(), "hang", "[lifecycle]\nstart_timeout = \"60s\"\n");
    let mut init = Init::start(d.path(), "");
    init.wait_line(|l| l.starts_with("VyomaOS: 3 apps from"));
    init.signal(rustix::process::Signal::TERM);
    let out = init.finish();
    assert!(
        out.contains("vyoma: SIGTERM during start-up: stopping all apps"),
        "{out}"
    );
    assert!(!out.contains("boot complete"), "{out}");
}

#[test]
fn a_missing_component_is_named_and_the_rest_start() {
    let d = apps();
    let broken = write_app(d.path(), "broken", "hello", "");
    let manifest = std::fs::read_to_string(broken.join("app.toml")).unwrap();
    std::fs::write(
        broken.join("app.toml"),
        manifest.replace(&vyoma_testkit::wasm("hello").display().to_string(), "gone.wasm"),
    )
    .unwrap();
    let mut init = Init::start(d.path(), "");
    let line = init.wait_line(|l| l.contains("does not exist"));
    assert!(line.contains("broken/app.toml:5:13: error: component file"), "{line}");
    assert!(line.contains("gone.wasm"), "{line}");
    let done = init.wait_line(boot_complete);
    // The others are unaffected (hello may still be running or have exited by now).
    assert!(done.contains("3 apps started ("), "{done}");
    init.stdin.as_mut().unwrap().write_all(b"shutdown\n").unwrap();
    let out = init.finish();
    assert!(
        out.contains("vyoma: shutdown requested on the console: all apps stopped"),
        "{out}"
    );
}

#[test]
fn the_command_line_picks_apps_and_bad_options_are_reported() {
    let d = apps();
    let mut init = Init::start(d.path(), "quiet vyoma.apps=ticker,ghost vyoma.panic=explode");
    init.wait_line(|l| l.contains("`vyoma.panic=explode` is not an action"));
    init.wait_line(|l| l.contains("`vyoma.apps` names `ghost`, which is not an app here (apps: hello, ticker)"));
    let done = init.wait_line(|l| l.starts_with("vyoma: all 1 apps running"));
    assert!(done.contains("boot complete in"), "{done}");
    let mut stdin = init.stdin.take().unwrap();
    stdin.write_all(b"ps\n").unwrap();
    let hello = init.wait_line(|l| l.starts_with("hello "));
    assert!(hello.contains("stopped"), "{hello}");
    // End of input in hosted mode is a shutdown, like `vyoma run`.
    drop(stdin);
    let out = init.finish();
    assert!(out.contains("vyoma: console input ended: all apps stopped"), "{out}");
}

#[test]
fn the_log_filter_on_the_command_line_reaches_debug_records() {
    // `vyoma.log` decides alone: the log builder's own default level (info) once hid
    // every debug record, such as where each component's load time went.
    let d = apps();
    let mut init = Init::start(d.path(), "vyoma.log=vyoma_runtime=debug,warn");
    let loaded = init.wait_line(|l| l.contains("component loaded"));
    for field in ["read_us=", "hash_us=", "code_us=", "link_us="] {
        assert!(loaded.contains(field), "{loaded}");
    }
    init.wait_line(boot_complete);
    drop(init.stdin.take());
    let out = init.finish();
    // Other targets stay at warn.
    assert!(!out.contains(" INFO vyoma_supervisor"), "{out}");
}
