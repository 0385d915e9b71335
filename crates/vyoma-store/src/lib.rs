//! The app store: the versions of every app an instance keeps (the one that runs, the one
//! in probation, and older ones to roll back to), on disk, content-addressed, and safe
//! against a crash or power cut at any point.
//!
//! On disk, under the store's folder:
//!
//! ```text
//! state.json        every app's record (state::State): the one commit point of every change
//! blobs/<sha256>    manifests and components, named by their SHA-256; never changed
//! data/<app>/       the app's own files (`[capabilities] data`), kept until purged
//! homes/<app>/      the folder an uploaded app's relative paths resolve against
//! ```
//!
//! A change writes the blobs it needs first (each: write to `<name>.tmp`, fsync, rename,
//! fsync the folder), then the new record the same way (`state.json.tmp`, fsync, rename
//! over `state.json`, fsync the folder). The rename is the commit point: after a power cut
//! the record is either the old one or the new one, and every blob it names was durable
//! before it was written. Blobs no record names any more (and `.tmp` files a crash left)
//! are removed after the change and when the store is opened. Reads check a blob against
//! its name, so a damaged one is refused rather than run.
//!
//! A version in probation is never what runs after the store is opened again: [`Store::open`]
//! turns down any trial it finds (the instance stopped during its probation).
//!
//! What it is not for: deciding whether a version is good (the supervisor's probation),
//! parsing manifests or compiling components (the caller stores their bytes).

mod fs;
#[cfg(test)]
mod memfs;
mod state;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use fs::{Fs, RealFs};
pub use state::{
    AppRecord, Digest, FORMAT, FactoryStamp, KEEP_PREVIOUS, NewVersion, Origin, Refused, Rejection, RolledBack, State,
    Version,
};

/// The record's file name.
pub const STATE_FILE: &str = "state.json";
/// The blobs' folder.
pub const BLOBS: &str = "blobs";
const TMP: &str = ".tmp";
/// The apps' data folders.
pub const DATA: &str = "data";
/// Uploaded apps' home folders.
pub const HOMES: &str = "homes";

/// The bytes of the files under `dir` (what cannot be read counts as nothing).
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("app store: {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The record cannot be read.
    #[error(
        "app store: {} is damaged ({why}); move the store folder aside to start afresh (the apps' factory versions will run)",
        path.display()
    )]
    Corrupt {
        /// The record.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A blob's contents do not match its name.
    #[error("app store: blob {} does not match its SHA-256 (damaged on disk)", path.display())]
    Damaged {
        /// The blob.
        path: PathBuf,
    },
    /// Another supervisor has the store open.
    #[error(
        "app store {} is in use by another VyomaOS supervisor (its `lock` file is locked); stop that one, or give this one another store",
        path.display()
    )]
    InUse {
        /// The store's folder.
        path: PathBuf,
    },
    /// The change does not fit the record.
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// The store. Changes go through `&mut self`: one at a time.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    fs: Arc<dyn Fs>,
    state: State,
    /// Held locked while the store is open (real file system only): one supervisor per
    /// store.
    _lock: Option<std::fs::File>,
    /// Blobs stored for a change not yet made ([`Store::put_blob`]): kept by the garbage
    /// collector until a record names them or [`Store::unpin`] lets them go.
    pinned: std::sync::Mutex<std::collections::BTreeSet<Digest>>,
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Store {
    /// Opens (creating if need be) the store in `root` on the real file system, locked
    /// against other supervisors for as long as it is open.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::Io {
            op: "creating",
            path: root.to_path_buf(),
            source,
        })?;
        let file = root.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&file)
            .map_err(|source| StoreError::Io {
                op: "opening",
                path: file.clone(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    path: root.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StoreError::Io {
                    op: "locking",
                    path: file,
                    source,
                });
            }
        }
        let mut store = Store::open_with(root, Arc::new(RealFs))?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// Opens the store in `root` through `fs`: reads its record, turns down a trial left
    /// by a stop during probation, and removes what no record names.
    pub fn open_with(root: &Path, fs: Arc<dyn Fs>) -> Result<Store, StoreError> {
        let root = std::path::absolute(root).map_err(|source| StoreError::Io {
            op: "resolving",
            path: root.to_path_buf(),
            source,
        })?;
        let blobs = root.join(BLOBS);
        fs.create_dir_all(&blobs).map_err(|source| StoreError::Io {
            op: "creating",
            path: blobs.clone(),
            source,
        })?;
        let file = root.join(STATE_FILE);
        let state = match fs.read(&file) {
            Ok(bytes) => {
                let state: State = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: file.clone(),
                    why: e.to_string(),
                })?;
                if state.format != FORMAT {
                    return Err(StoreError::Corrupt {
                        path: file,
                        why: format!("format {} (this build reads format {FORMAT})", state.format),
                    });
                }
                state
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(StoreError::Io {
                    op: "reading",
                    path: file,
                    source,
                });
            }
        };
        let mut store = Store {
            root,
            fs,
            state,
            _lock: None,
            pinned: Default::default(),
        };
        let trials: Vec<(String, u64)> = store
            .state
            .apps
            .iter()
            .filter_map(|(n, r)| r.trial.as_ref().map(|t| (n.clone(), t.id)))
            .collect();
        if !trials.is_empty() {
            let at = now();
            store.change(|s| {
                for (app, id) in &trials {
                    s.reject(app, *id, "the instance stopped during its probation", at)?;
                }
                Ok(())
            })?;
        }
        store.collect_garbage();
        Ok(store)
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every app's record.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// One app's record, if the store keeps it.
    pub fn app(&self, app: &str) -> Option<&AppRecord> {
        self.state.app(app)
    }

    /// Where the blob named `d` is (a component is loaded from there).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join(BLOBS).join(d.as_str())
    }

    /// Stores `bytes` durably (once: a blob already there is kept) and returns its name.
    /// It is pinned until a change names it or [`Store::unpin`]; an unnamed blob does not
    /// outlive the store's next opening.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let d = Digest::of(bytes);
        self.pins().insert(d.clone());
        let path = self.blob_path(&d);
        if self.read_blob(&d).is_ok() {
            return Ok(d);
        }
        self.write_durably(&path, bytes)?;
        Ok(d)
    }

    /// Keeps a stored blob from the garbage collector until a change names it or
    /// [`Store::unpin`] (a blob uploaded earlier, about to be named by a change).
    pub fn pin(&self, d: &Digest) {
        self.pins().insert(d.clone());
    }

    /// Lets go of a blob put for a change that was not made.
    pub fn unpin(&self, d: &Digest) {
        self.pins().remove(d);
    }

    fn pins(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<Digest>> {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The blob named `d`, checked against its name.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(d);
        let bytes = self.fs.read(&path).map_err(|source| StoreError::Io {
            op: "reading",
            path: path.clone(),
            source,
        })?;
        if Digest::of(&bytes) != *d {
            return Err(StoreError::Damaged { path });
        }
        Ok(bytes)
    }

    /// Starts keeping `app` with `v`, the version it runs now, as committed.
    pub fn adopt(&mut self, app: &str, v: NewVersion) -> Result<Version, StoreError> {
        self.change(|s| s.adopt(app, v))
    }

    /// Puts `v` in probation (see [`State::propose`]).
    pub fn propose(&mut self, app: &str, v: NewVersion) -> Result<(Version, Option<Version>), StoreError> {
        self.change(|s| Ok(s.propose(app, v)))
    }

    /// Commits the trial `id` (see [`State::commit`]).
    pub fn commit(&mut self, app: &str, id: u64) -> Result<Vec<Version>, StoreError> {
        self.change(|s| s.commit(app, id))
    }

    /// Turns down the trial `id` (see [`State::reject`]).
    pub fn reject(&mut self, app: &str, id: u64, reason: &str) -> Result<Version, StoreError> {
        let at = now();
        self.change(|s| s.reject(app, id, reason, at))
    }

    /// Goes back one version (see [`State::rollback`]).
    pub fn rollback(&mut self, app: &str, reason: &str) -> Result<RolledBack, StoreError> {
        let at = now();
        self.change(|s| s.rollback(app, reason, at))
    }

    /// Stops keeping `app`.
    pub fn remove(&mut self, app: &str) -> Result<AppRecord, StoreError> {
        self.change(|s| s.remove(app))
    }

    /// Records that the operator removed `app` (see [`State::retire`]).
    pub fn retire(&mut self, app: &str, factory: Option<FactoryStamp>) -> Result<Option<AppRecord>, StoreError> {
        let at = now();
        self.change(|s| Ok(s.retire(app, factory, at)))
    }

    /// Puts `v` in probation as the first version of an app deployed while the instance
    /// runs, whose relative paths resolve against `home`; one change.
    pub fn deploy(&mut self, app: &str, v: NewVersion, home: &Path) -> Result<(Version, Option<Version>), StoreError> {
        let home = home.to_string_lossy().into_owned();
        self.change(|s| {
            let out = s.propose(app, v);
            if let Some(r) = s.apps.get_mut(app) {
                r.home = Some(home);
            }
            Ok(out)
        })
    }

    /// The folder `app` keeps its own files in (`[capabilities] data`), created if need
    /// be. App names are checked by the manifest (letters, digits, `-`, `_`), so the name
    /// is one path component.
    pub fn data_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        self.app_dir(DATA, app)
    }

    /// The folder an uploaded app's relative paths resolve against, created if need be.
    pub fn home_dir(&self, app: &str) -> Result<PathBuf, StoreError> {
        self.app_dir(HOMES, app)
    }

    fn app_dir(&self, kind: &str, app: &str) -> Result<PathBuf, StoreError> {
        debug_assert!(!app.contains(['/', '\\', '.']), "app names are one path component");
        let dir = self.root.join(kind).join(app);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            op: "creating",
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// Deletes `app`'s data folder and everything in it; returns how many bytes it held
    /// (`0`: it had none).
    pub fn purge_data(&self, app: &str) -> Result<u64, StoreError> {
        let dir = self.root.join(DATA).join(app);
        if !dir.exists() {
            return Ok(0);
        }
        let bytes = tree_size(&dir);
        std::fs::remove_dir_all(&dir).map_err(|source| StoreError::Io {
            op: "removing",
            path: dir.clone(),
            source,
        })?;
        Ok(bytes)
    }

    /// Makes a change: on a copy of the record, written durably, then kept. A refused
    /// change or a failed write leaves the record in memory as it was.
    fn change<T>(&mut self, f: impl FnOnce(&mut State) -> Result<T, Refused>) -> Result<T, StoreError> {
        let mut next = self.state.clone();
        let out = f(&mut next)?;
        let bytes = serde_json::to_vec_pretty(&next).expect("the record serializes");
        self.write_durably(&self.root.join(STATE_FILE), &bytes)?;
        self.state = next;
        let named = self.state.referenced();
        self.pins().retain(|d| !named.contains(d));
        self.collect_garbage();
        Ok(out)
    }

    /// Writes `bytes` to `path` so that after a crash `path` holds either its old contents
    /// or all of `bytes`: into `path.tmp`, fsync, rename, fsync the folder.
    fn write_durably(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(TMP);
        let tmp = PathBuf::from(tmp);
        let dir = path.parent().expect("store paths have a folder");
        let io = |op: &'static str, p: &Path| {
            let path = p.to_path_buf();
            move |source| StoreError::Io { op, path, source }
        };
        self.fs.write(&tmp, bytes).map_err(io("writing", &tmp))?;
        self.fs.sync_file(&tmp).map_err(io("syncing", &tmp))?;
        self.fs.rename(&tmp, path).map_err(io("renaming", &tmp))?;
        self.fs.sync_dir(dir).map_err(io("syncing", dir))?;
        Ok(())
    }

    /// Removes the blobs no record names and `.tmp` files a crash left. Best effort: what
    /// it cannot remove now is tried again next time.
    fn collect_garbage(&self) {
        let mut keep = self.state.referenced();
        keep.extend(self.pins().iter().cloned());
        let blobs = self.root.join(BLOBS);
        let mut removed = false;
        for name in self.fs.list(&blobs).unwrap_or_default() {
            let named = name.parse::<Digest>().is_ok_and(|d| keep.contains(&d));
            if !named {
                removed |= self.fs.remove_file(&blobs.join(&name)).is_ok();
            }
        }
        let tmp = self.root.join(format!("{STATE_FILE}{TMP}"));
        removed |= self.fs.remove_file(&tmp).is_ok();
        if removed {
            let _ = self.fs.sync_dir(&blobs);
        }
    }
}
