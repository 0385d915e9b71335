//! The store against power cuts: a script of changes is cut at every one of its file
//! system steps in turn; after each cut the store opens, holds exactly the record of some
//! whole prefix of the script (never a torn change), and every blob it names reads back.

use std::path::Path;
use std::sync::Arc;

use crate::memfs::MemFs;
use crate::*;

fn version(store: &Store, n: u8) -> Result<NewVersion, StoreError> {
    let manifest = store.put_blob(format!("manifest {n}").as_bytes())?;
    let body = vec![n; 1000 + usize::from(n)];
    let component = store.put_blob(&body)?;
    Ok(NewVersion {
        version: format!("0.{n}.0"),
        manifest,
        component,
        size: body.len() as u64,
        added: 0,
        origin: Origin::Deployed,
    })
}

type Change = fn(&mut Store) -> Result<(), StoreError>;

/// The script: every kind of change, each ending in one commit point.
const SCRIPT: [Change; 9] = [
    |s| s.adopt("a", version(s, 1)?).map(drop),
    |s| s.propose("a", version(s, 2)?).map(drop),
    |s| s.commit("a", 2).map(drop),
    |s| s.propose("a", version(s, 3)?).map(drop),
    |s| s.reject("a", 3, "trapped").map(drop),
    |s| s.propose("b", version(s, 4)?).map(drop),
    |s| s.commit("b", 1).map(drop),
    |s| s.rollback("a", "operator").map(drop),
    |s| s.remove("b").map(drop),
];

/// Runs the script until a change fails (the crash); returns how many were whole.
fn script(store: &mut Store) -> usize {
    SCRIPT.iter().take_while(|c| c(store).is_ok()).count()
}

/// The record after each whole prefix of the script, on a store that never crashes.
fn prefixes() -> Vec<State> {
    let mut s = Store::open_with(Path::new("/store"), Arc::new(MemFs::default())).unwrap();
    let mut states = vec![s.state().clone()];
    for c in SCRIPT {
        c(&mut s).unwrap();
        states.push(s.state().clone());
    }
    states
}

/// The same record, ignoring when rejections happened (a rerun has another clock).
fn same(a: &State, b: &State) -> bool {
    let strip = |s: &State| {
        let mut s = s.clone();
        for r in s.apps.values_mut() {
            if let Some(j) = &mut r.rejected {
                j.at = 0;
            }
        }
        s
    };
    strip(a) == strip(b)
}

#[test]
fn a_power_cut_at_any_step_leaves_a_whole_prefix_of_the_changes() {
    let root = Path::new("/store");
    let expected = prefixes();
    assert_eq!(expected.len(), 10, "the script has nine changes");
    let total = {
        let fs = Arc::new(MemFs::default());
        let mut s = Store::open_with(root, fs.clone()).unwrap();
        let before = fs.steps();
        assert_eq!(script(&mut s), 9);
        fs.steps() - before
    };
    assert!(total > 40, "the script makes {total} file system changes");
    for cut in 1..=total {
        let fs = Arc::new(MemFs::default());
        let mut s = Store::open_with(root, fs.clone()).unwrap();
        fs.crash_after(cut);
        let done = script(&mut s);
        fs.power_cut();
        let s = Store::open_with(root, fs.clone()).unwrap_or_else(|e| panic!("cut at step {cut}: {e}"));
        // Either the change in progress was lost or it is whole; a trial left in
        // probation was turned down at open.
        let matches: Vec<usize> = [done, done + 1]
            .into_iter()
            .filter(|&k| k < expected.len() && same(&settled(&expected[k]), s.state()))
            .collect();
        assert!(
            !matches.is_empty(),
            "cut at step {cut} after {done} whole changes: the store holds {:#?}",
            s.state()
        );
        for d in s.state().referenced() {
            s.read_blob(&d).unwrap_or_else(|e| panic!("cut at step {cut}: {e}"));
        }
        // Nothing is left that no record names.
        let mut on_disk = fs.list(&root.join(BLOBS)).unwrap();
        on_disk.sort();
        let named: Vec<String> = s.state().referenced().iter().map(|d| d.to_string()).collect();
        assert_eq!(on_disk, named, "cut at step {cut}: stray blobs");
    }
}

/// What opening a store with `s` on disk makes of it: its trials turned down.
fn settled(s: &State) -> State {
    let mut s = s.clone();
    let trials: Vec<(String, u64)> = s
        .apps
        .iter()
        .filter_map(|(n, r)| r.trial.as_ref().map(|t| (n.clone(), t.id)))
        .collect();
    for (app, id) in trials {
        s.reject(&app, id, "the instance stopped during its probation", 0)
            .unwrap();
    }
    s
}

#[test]
fn a_trial_is_turned_down_when_the_store_is_opened_again() {
    let root = Path::new("/store");
    let fs = Arc::new(MemFs::default());
    let mut s = Store::open_with(root, fs.clone()).unwrap();
    let v = version(&s, 1).unwrap();
    s.adopt("a", v).unwrap();
    let v = version(&s, 2).unwrap();
    s.propose("a", v).unwrap();
    drop(s);
    let s = Store::open_with(root, fs).unwrap();
    let r = s.app("a").unwrap();
    assert_eq!(r.trial, None);
    assert_eq!(r.current().unwrap().id, 1);
    assert_eq!(
        r.rejected.as_ref().unwrap().reason,
        "the instance stopped during its probation"
    );
}

#[test]
fn a_damaged_blob_or_record_is_refused_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let v = version(&s, 1).unwrap();
    let d = v.component.clone();
    s.adopt("a", v).unwrap();
    std::fs::write(s.blob_path(&d), b"flipped").unwrap();
    let e = s.read_blob(&d).unwrap_err().to_string();
    assert!(e.contains("does not match its SHA-256"), "{e}");
    drop(s);
    std::fs::write(dir.path().join(STATE_FILE), b"{ not json").unwrap();
    let e = Store::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("state.json is damaged") && e.contains("move the store folder aside"),
        "{e}"
    );
}

#[test]
fn blobs_put_for_a_change_not_yet_made_survive_other_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let v = version(&s, 1).unwrap();
    s.adopt("a", v).unwrap();
    let pending = s.put_blob(b"uploaded, being compiled").unwrap();
    let v = version(&s, 2).unwrap();
    s.propose("b", v).unwrap();
    assert!(s.read_blob(&pending).is_ok(), "a pinned blob was collected");
    s.unpin(&pending);
    s.reject("b", 1, "refused").unwrap();
    assert!(s.read_blob(&pending).is_err(), "an unpinned blob outlived a change");
}

#[test]
fn one_supervisor_at_a_time_has_a_store_open() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let e = Store::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("in use by another VyomaOS supervisor"), "{e}");
    drop(first);
    Store::open(dir.path()).unwrap();
}

#[test]
fn data_folders_are_kept_apart_per_app_and_purged_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let a = store.data_dir("a").unwrap();
    let b = store.data_dir("b").unwrap();
    assert_ne!(a, b);
    std::fs::create_dir_all(a.join("sub")).unwrap();
    std::fs::write(a.join("sub/f"), [0u8; 100]).unwrap();
    std::fs::write(a.join("g"), [0u8; 20]).unwrap();
    std::fs::write(b.join("h"), [0u8; 7]).unwrap();
    assert_eq!(store.data_dir("a").unwrap(), a, "opening it again keeps it");
    assert_eq!(store.purge_data("a").unwrap(), 120);
    assert!(!a.exists());
    assert_eq!(
        std::fs::read(b.join("h")).unwrap().len(),
        7,
        "the other app's data is untouched"
    );
    assert_eq!(store.purge_data("a").unwrap(), 0, "purging twice is fine");
}
