//! The registry: every app that can run, its lifecycle, its instance and what it shares
//! across instances (log, inbox, loaded component), and how many apps are in each state.
//!
//! The lifecycle of an entry changes only through [`Registry::handle`], which keeps the
//! per-state counts true (so waiting for "all running" is O(1) per change rather than a
//! scan of every app).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use tokio::task::AbortHandle;
use vyoma_lifecycle::{Action, AppState, Event, Lifecycle, TransitionError};
use vyoma_manifest::Manifest;
use vyoma_runtime::{AppLog, Loaded, StopSignal};

/// One app.
pub(crate) struct Entry {
    pub(crate) manifest: Arc<Manifest>,
    lifecycle: Lifecycle,
    pub(crate) log: Arc<AppLog>,
    /// Linear memory of its instance, published by the instance's limiter.
    pub(crate) memory: Arc<AtomicU64>,
    /// Nanoseconds spent running its instances, all of them (timed by their pacers).
    pub(crate) cpu: Arc<AtomicU64>,
    /// The live instance's scheduling state (its CPU lane).
    pub(crate) pacer: Option<Arc<vyoma_runtime::Pacer>>,
    pub(crate) component: Option<Component>,
    /// The live instance's task.
    pub(crate) task: Option<AbortHandle>,
    /// The live instance's stop request.
    pub(crate) stop: Option<StopSignal>,
    /// Pending timers (backoff, retry, start and stop timeouts); aborted at shutdown.
    pub(crate) timers: Vec<AbortHandle>,
    /// The folder relative paths in its manifests resolve against: where its factory
    /// version's manifest is (kept across updates).
    pub(crate) home: std::path::PathBuf,
    /// The store's number of the version that runs (`None`: the factory version, not kept).
    pub(crate) version: Option<u64>,
    /// The version in probation, if one is.
    pub(crate) trial: Option<crate::update::Trial>,
    /// Whether it is one of the apps the instance started with (else it was deployed).
    pub(crate) factory: bool,
}

impl Entry {
    pub(crate) fn new(manifest: Manifest, now: Duration) -> Entry {
        Entry {
            home: manifest.source.dir().to_path_buf(),
            version: None,
            trial: None,
            factory: true,
            lifecycle: Lifecycle::new(manifest.restart, manifest.lifecycle, now),
            log: AppLog::new(manifest.limits.log_buffer),
            memory: Arc::new(AtomicU64::new(0)),
            pacer: None,
            cpu: Arc::new(AtomicU64::new(0)),
            manifest: Arc::new(manifest),
            component: None,
            task: None,
            stop: None,
            timers: Vec::new(),
        }
    }

    /// Its lifecycle (read only: it changes through [`Registry::handle`]).
    pub(crate) fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// Another version's restart policy and timeouts, without a new instance.
    pub(crate) fn reconfigure(&mut self, m: &Manifest) {
        self.lifecycle.reconfigure(m.restart, m.lifecycle);
    }

    /// Its state.
    pub(crate) fn state(&self) -> AppState {
        self.lifecycle.state()
    }

    /// Whether its component imports the WIT interface `iface` (any version). Unknown until
    /// the component is loaded: then assumed, so nothing is refused for lack of knowledge.
    pub(crate) fn may_import(&self, iface: &str) -> bool {
        self.component
            .as_ref()
            .is_none_or(|c| c.loaded.info.imports.iter().any(|i| i.starts_with(iface)))
    }

    /// Whether its component listens for stop requests (`vyoma:app/lifecycle`). If it was
    /// asked wrongly (not loaded yet, and it does not listen), the stop timeout kills it.
    pub(crate) fn listens_for_stop(&self) -> bool {
        // An HTTP app stops by draining its requests in flight.
        self.may_import(vyoma_runtime::LIFECYCLE_INTERFACE) || self.is_http()
    }

    /// Whether its component is an HTTP handler (served by the gateway).
    pub(crate) fn is_http(&self) -> bool {
        self.component.as_ref().is_some_and(|c| c.loaded.is_http())
    }
}

/// A loaded component and the file identity it was loaded from, so an unchanged file is
/// not read again on restart while a replaced one (hot update) is picked up.
#[derive(Clone)]
pub(crate) struct Component {
    pub(crate) loaded: Arc<Loaded>,
    pub(crate) stamp: FileStamp,
}

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    /// The file's size.
    pub(crate) fn bytes(&self) -> u64 {
        self.len
    }
}

/// The file's identity now (a `stat`: call it outside the registry lock).
pub(crate) fn stamp(path: &std::path::Path) -> Option<FileStamp> {
    std::fs::metadata(path).ok().map(|m| FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
}

/// What [`Registry::handle`] did.
pub(crate) struct Handled {
    pub(crate) before: AppState,
    pub(crate) after: AppState,
    pub(crate) actions: Vec<Action>,
}

/// The apps by name, and how many are in each state.
pub(crate) struct Registry {
    apps: BTreeMap<String, Entry>,
    counts: [usize; AppState::ALL.len()],
}

impl Registry {
    pub(crate) fn new(apps: BTreeMap<String, Entry>) -> Registry {
        let mut counts = [0; AppState::ALL.len()];
        for e in apps.values() {
            counts[e.state() as usize] += 1;
        }
        Registry { apps, counts }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.apps.get(name)
    }

    /// The entry, to change what is not its lifecycle.
    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.apps.get_mut(name)
    }

    /// Adds an app (a deploy); its state is counted.
    pub(crate) fn insert(&mut self, name: String, e: Entry) {
        self.counts[e.state() as usize] += 1;
        if let Some(old) = self.apps.insert(name, e) {
            self.counts[old.state() as usize] -= 1;
        }
    }

    /// Takes an app out (a remove), keeping the counts true.
    pub(crate) fn remove(&mut self, name: &str) -> Option<Entry> {
        let e = self.apps.remove(name)?;
        self.counts[e.state() as usize] -= 1;
        Some(e)
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.apps.contains_key(name)
    }

    pub(crate) fn len(&self) -> usize {
        self.apps.len()
    }

    /// How many apps are in `state`.
    pub(crate) fn count(&self, state: AppState) -> usize {
        self.counts[state as usize]
    }

    /// The state of `name`, if it is an app.
    pub(crate) fn state(&self, name: &str) -> Option<AppState> {
        self.apps.get(name).map(Entry::state)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.apps.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Entry)> {
        self.apps.iter_mut()
    }

    pub(crate) fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.apps.values_mut()
    }

    /// Feeds `event` to the app's lifecycle at `now`, keeping the counts true; `look` sees
    /// the entry just before. Returns what `look` said, the outcome, and the entry (to
    /// carry out the actions). `None` if there is no such app.
    pub(crate) fn handle<R>(
        &mut self,
        name: &str,
        now: Duration,
        event: Event,
        look: impl FnOnce(&Entry) -> R,
    ) -> Option<(R, Result<Handled, TransitionError>, &mut Entry)> {
        let apps = self.apps.len();
        let entry = self.apps.get_mut(name)?;
        let seen = look(entry);
        let before = entry.lifecycle.state();
        let actions = match entry.lifecycle.handle(now, event) {
            Ok(a) => a,
            Err(e) => return Some((seen, Err(e), entry)),
        };
        let after = entry.lifecycle.state();
        if after != before {
            debug_assert!(
                self.counts[before as usize] > 0,
                "count of {before} would go below zero"
            );
            self.counts[before as usize] = self.counts[before as usize].saturating_sub(1);
            self.counts[after as usize] += 1;
        }
        debug_assert_eq!(self.counts.iter().sum::<usize>(), apps);
        Some((seen, Ok(Handled { before, after, actions }), entry))
    }
}
