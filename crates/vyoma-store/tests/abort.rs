//! The store on the real file system, with the process aborted (`abort()`, no unwinding,
//! no destructors) at each file system step of a script of changes in turn: reopened, it
//! holds the record of a whole prefix of the script, and every blob it names reads back.
//! (A power cut, which also loses what was not synced, is modelled in the unit tests.)

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use vyoma_store::{Fs, NewVersion, Origin, RealFs, State, Store, StoreError};

const ABORT_AT: &str = "VYOMA_STORE_ABORT_AT";
const DIR: &str = "VYOMA_STORE_DIR";

/// The real file system, aborting the process at its Nth change.
#[derive(Debug)]
struct Aborting {
    at: u64,
    steps: AtomicU64,
}

impl Aborting {
    fn step(&self) {
        if self.steps.fetch_add(1, Ordering::SeqCst) + 1 == self.at {
            std::process::abort();
        }
    }
}

impl Fs for Aborting {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn write(&self, file: &Path, bytes: &[u8]) -> io::Result<()> {
        self.step();
        // Half the bytes, then the crash point, then the rest: a torn write is possible.
        let half = bytes.len() / 2;
        RealFs.write(file, &bytes[..half])?;
        self.step();
        RealFs.write(file, bytes)
    }
    fn sync_file(&self, file: &Path) -> io::Result<()> {
        self.step();
        RealFs.sync_file(file)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step();
        RealFs.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.step();
        RealFs.sync_dir(dir)
    }
    fn read(&self, file: &Path) -> io::Result<Vec<u8>> {
        RealFs.read(file)
    }
    fn remove_file(&self, file: &Path) -> io::Result<()> {
        self.step();
        RealFs.remove_file(file)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.list(dir)
    }
}

fn version(s: &Store, n: u8) -> Result<NewVersion, StoreError> {
    let body = vec![n; 4096];
    Ok(NewVersion {
        version: format!("1.{n}.0"),
        manifest: s.put_blob(format!("name = \"v{n}\"").as_bytes())?,
        component: s.put_blob(&body)?,
        size: body.len() as u64,
        added: 0,
        origin: Origin::Deployed,
    })
}

type Change = fn(&mut Store) -> Result<(), StoreError>;

const SCRIPT: [Change; 6] = [
    |s| s.adopt("app", version(s, 1)?).map(drop),
    |s| s.propose("app", version(s, 2)?).map(drop),
    |s| s.commit("app", 2).map(drop),
    |s| s.propose("app", version(s, 3)?).map(drop),
    |s| s.reject("app", 3, "probation").map(drop),
    |s| s.rollback("app", "operator").map(drop),
];

/// Not a test of its own: the child the parent test starts (does nothing otherwise).
#[test]
fn child_runs_the_script_until_it_aborts() {
    let (Ok(at), Ok(dir)) = (std::env::var(ABORT_AT), std::env::var(DIR)) else {
        return;
    };
    let fs = Arc::new(Aborting {
        at: at.parse().unwrap(),
        steps: AtomicU64::new(0),
    });
    let mut s = Store::open_with(Path::new(&dir), fs).unwrap();
    for c in SCRIPT {
        c(&mut s).unwrap();
    }
    // Past the last step: exit as an abort would, so the parent sees the script's end.
    std::process::exit(3);
}

fn without_times(s: &State) -> State {
    let mut s = s.clone();
    for r in s.apps.values_mut() {
        if let Some(j) = &mut r.rejected {
            j.at = 0;
            if j.reason == "the instance stopped during its probation" {
                j.reason = "probation".into();
            }
        }
    }
    s
}

#[test]
fn an_abort_at_any_step_leaves_a_whole_prefix_of_the_changes() {
    // The records after each prefix, made without crashing (a trial left in probation is
    // turned down at open, as "probation" here: the script's own reason for it).
    let clean = tempfile::tempdir().unwrap();
    let mut s = Store::open(clean.path()).unwrap();
    let mut prefixes = vec![without_times(s.state())];
    for c in SCRIPT {
        c(&mut s).unwrap();
        let mut st = s.state().clone();
        for (app, r) in st.clone().apps {
            if let Some(t) = r.trial {
                st.reject(&app, t.id, "probation", 0).unwrap();
            }
        }
        prefixes.push(without_times(&st));
    }
    let mut at = 1;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_runs_the_script_until_it_aborts", "--test-threads=1"])
            .env(ABORT_AT, at.to_string())
            .env(DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        let finished = status.code() == Some(3);
        let s = Store::open(dir.path()).unwrap_or_else(|e| panic!("aborted at step {at}: {e}"));
        let got = without_times(s.state());
        assert!(
            prefixes.contains(&got),
            "aborted at step {at}: the store holds a record no prefix of the script makes: {got:#?}"
        );
        for d in s.state().referenced() {
            s.read_blob(&d).unwrap_or_else(|e| panic!("aborted at step {at}: {e}"));
        }
        if finished {
            assert_eq!(&got, prefixes.last().unwrap());
            assert!(at > 30, "the script took only {at} steps");
            break;
        }
        at += 1;
    }
}
