//! Loading every app's component before start-up, so starting is instantiation only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::Supervisor;
use crate::registry::{Component, stamp};

impl Supervisor {
    /// Loads every app's component (each distinct file once, in parallel on the blocking
    /// pool), so starting is instantiation only. Apps whose component fails to load are
    /// reported in their log and left to fail when started; the others are unaffected.
    /// Returns the failures: (app, why).
    pub async fn preload(&self) -> Vec<(String, String)> {
        let mut by_path: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for (name, e) in self.registry().iter() {
            by_path
                .entry(e.manifest.component.value.clone())
                .or_default()
                .push(name.clone());
        }
        let mut jobs = Vec::new();
        for (path, names) in by_path {
            let rt = self.inner.runtime.clone();
            jobs.push(self.inner.rt.spawn_blocking(move || {
                let st = stamp(&path);
                (rt.load(&path), st, names)
            }));
        }
        let mut failures = Vec::new();
        for j in jobs {
            let (result, st, names) = match j.await {
                Ok(r) => r,
                Err(e) => {
                    // Those apps load again when started, and report the error then.
                    tracing::error!(error = %e, "component loader task failed");
                    continue;
                }
            };
            let mut apps = self.registry();
            match result {
                Ok(loaded) => {
                    for n in names {
                        if let Some(Err(msg)) = apps.get(&n).map(|e| loaded.fits(&e.manifest)) {
                            if let Some(e) = apps.get(&n) {
                                e.log.note(&msg);
                            }
                            failures.push((n.clone(), msg));
                        }
                        if let (Some(e), Some(st)) = (apps.get_mut(&n), st) {
                            e.component = Some(Component {
                                loaded: loaded.clone(),
                                stamp: st,
                            });
                        }
                    }
                }
                Err(err) => {
                    let msg = err.to_string();
                    for n in names {
                        if let Some(e) = apps.get(&n) {
                            e.log.note(&msg);
                        }
                        failures.push((n, msg.clone()));
                    }
                }
            }
        }
        failures
    }
}
