//! The app store as the supervisor uses it: opening it at boot (each app's committed
//! version put in place of its factory version), keeping a factory version before its first
//! update, `versions`, and the operator's `rollback`. Store calls run on the blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex};

use vyoma_control::{RejectedVersion, RollbackReport, VersionRow, VersionStatus, VersionsReport};
use vyoma_manifest::{MANIFEST_FILE, Manifest};
use vyoma_store::{Digest, FactoryStamp, NewVersion, Origin, Refused, Store, StoreError, Version};

use super::{Running, UpdateError};
use crate::registry::{Component, stamp};
use crate::{Supervisor, SupervisorError};

/// The store, once opened (`None`: this instance keeps none).
pub(crate) type StoreSlot = Arc<Mutex<Option<Store>>>;

fn at(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

fn row(v: &Version, status: VersionStatus) -> VersionRow {
    VersionRow {
        id: Some(v.id),
        version: v.version.clone(),
        component: v.component.to_string(),
        size: v.size,
        added: Some(at(v.added)),
        origin: match v.origin {
            Origin::Factory => "factory",
            Origin::Deployed => "deployed",
        }
        .to_string(),
        status,
    }
}

impl Supervisor {
    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Option<Store>> {
        self.inner.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn has_store(&self) -> bool {
        self.store().is_some()
    }

    /// Closes the store (at shutdown): its lock is released, and nothing is written to it
    /// any more by this supervisor. A version on probation stays a trial in it, turned down
    /// when the store is opened next.
    pub(crate) fn close_store(&self) {
        self.inner.closing.store(true, std::sync::atomic::Ordering::Release);
        *self.store() = None;
    }

    /// Gives `m` its data folder (`[capabilities] data`) in the store, created if need be.
    /// Without a store it gets none, and its instances are refused with why.
    pub(crate) fn give_data(&self, m: &mut Manifest) -> Result<(), SupervisorError> {
        let Some(span) = m.capabilities.data.clone() else {
            return Ok(());
        };
        if m.capabilities.data_dir().is_some() {
            return Ok(());
        }
        let dir = match self.store().as_ref() {
            Some(s) => s.data_dir(&m.name).map_err(UpdateError::Store)?,
            None => return Ok(()),
        };
        m.capabilities.dirs.push(vyoma_manifest::DirGrant {
            host: vyoma_manifest::Located { value: dir, span },
            guest: vyoma_manifest::DATA_GUEST.to_string(),
            writable: true,
        });
        Ok(())
    }

    /// Runs `f` on the store, on the blocking pool (it syncs files).
    pub(crate) async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, SupervisorError> {
        let slot = self.inner.store.clone();
        self.inner
            .rt
            .spawn_blocking(move || {
                let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
                match guard.as_mut() {
                    Some(s) => f(s).map_err(UpdateError::Store),
                    None => Err(UpdateError::NoStore),
                }
            })
            .await
            .map_err(|e| {
                UpdateError::Store(StoreError::Io {
                    op: "running",
                    path: "the store task".into(),
                    source: std::io::Error::other(e.to_string()),
                })
            })?
            .map_err(SupervisorError::from)
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> Result<std::path::PathBuf, SupervisorError> {
        self.store()
            .as_ref()
            .map(|s| s.blob_path(d))
            .ok_or_else(|| UpdateError::NoStore.into())
    }

    pub(crate) fn unpin(&self, d: &Digest) {
        if let Some(s) = self.store().as_ref() {
            s.unpin(d);
        }
    }

    /// Opens the app store in `root` and puts each app's committed version in place of its
    /// factory one; apps deployed while an earlier instance ran join the set, and factory
    /// apps the operator removed leave it. Call after loading and before starting the apps.
    /// A changed factory version (a new image, an edited apps folder) wins: the app's
    /// deployed versions (or its removal) are set aside. Returns notes for the operator,
    /// one per app the store changed.
    pub async fn open_store(&self, root: &Path) -> Result<Vec<String>, StoreError> {
        let r = root.to_path_buf();
        let store = self
            .inner
            .rt
            .spawn_blocking(move || Store::open(&r))
            .await
            .map_err(|e| StoreError::Io {
                op: "opening",
                path: root.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let kept: Vec<(String, vyoma_store::AppRecord)> =
            store.state().apps.iter().map(|(n, r)| (n.clone(), r.clone())).collect();
        *self.store() = Some(store);
        let mut notes = Vec::new();
        self.give_factory_apps_data(&mut notes);
        let mut deployed = Vec::new();
        for (app, record) in kept {
            let in_set = self.registry().contains(&app);
            let invalid = self.invalid().get(&app).map(|i| i.rejected.manifest.clone());
            if record.factory.is_none() && record.removed.is_none() {
                // Deployed while an earlier instance ran (a factory app of that name, new
                // in this set, wins).
                if in_set {
                    self.set_aside(
                        &app,
                        &mut notes,
                        "an app of the same name is now one of the instance's own",
                    )
                    .await;
                } else if let Some(current) = record.current().cloned() {
                    deployed.push((app, record.home.clone(), current));
                }
                continue;
            }
            if !in_set && invalid.is_none() {
                notes.push(format!(
                    "{app}: kept in the app store but not in this instance's apps; not started"
                ));
                continue;
            }
            let stamp = match invalid.clone() {
                Some(manifest) => tokio::task::spawn_blocking(move || super::deploy::stamp_of_files(&manifest))
                    .await
                    .ok(),
                None => self.factory_stamp(&app).await,
            };
            if record.factory != stamp {
                self.set_aside(
                    &app,
                    &mut notes,
                    "its factory version changed since it was last updated or removed",
                )
                .await;
                continue;
            }
            if record.removed.is_some() {
                self.take_out(&app);
                notes.push(format!("{app}: removed by the operator; not started"));
                continue;
            }
            if invalid.is_some() {
                continue;
            }
            let Some(current) = record.current().cloned() else {
                continue;
            };
            let home = self.registry().get(&app).map(|e| e.home.clone()).unwrap_or_default();
            if current.origin == Origin::Factory {
                if let Some(e) = self.registry().get_mut(&app) {
                    e.version = Some(current.id);
                }
                continue;
            }
            match self.stored_version(&app, &home, &current).await {
                Ok(running) => {
                    let manifest = running.manifest.clone();
                    if let Some(e) = self.registry().get_mut(&app) {
                        e.manifest = running.manifest;
                        e.component = running.component;
                        e.version = running.version;
                        e.reconfigure(&manifest);
                        e.log.note(&format!(
                            "runs version {} ({}) from the app store",
                            current.id, current.version
                        ));
                    }
                    self.inner.broker.reconfigure(&crate::ipc_spec(&manifest));
                    notes.push(format!(
                        "{app}: runs version {} ({}) from the app store",
                        current.id, current.version
                    ));
                }
                Err(e) => notes.push(format!(
                    "{app}: version {} in the app store cannot run ({e}); it runs its factory version",
                    current.id
                )),
            }
        }
        self.add_deployed(deployed, &mut notes).await;
        self.reroute();
        Ok(notes)
    }

    /// Gives every factory app that asks for a data folder its folder.
    fn give_factory_apps_data(&self, notes: &mut Vec<String>) {
        let mut apps = self.registry();
        for (name, e) in apps.iter_mut() {
            if e.manifest.capabilities.data.is_none() {
                continue;
            }
            let mut m = (*e.manifest).clone();
            match self.give_data(&mut m) {
                Ok(()) => e.manifest = Arc::new(m),
                Err(err) => notes.push(format!("{name}: cannot make its data folder: {err}")),
            }
        }
    }

    /// The factory stamp of a factory app that runs its factory version: its manifest's
    /// text, and its component's digest from preload (which hashed it already), or read.
    pub(crate) async fn factory_stamp(&self, app: &str) -> Option<FactoryStamp> {
        let (factory, loaded_sha) = self.registry().get(app).map(|e| {
            let sha = e.component.as_ref().map(|c| c.loaded.sha256.clone());
            (e.manifest.clone(), sha)
        })?;
        let component = match loaded_sha.and_then(|s| s.parse::<Digest>().ok()) {
            Some(d) => d,
            None => {
                // Not loaded (it failed to): read it.
                let path = factory.component.value.clone();
                tokio::task::spawn_blocking(move || std::fs::read(&path).ok().map(|b| Digest::of(&b)))
                    .await
                    .ok()
                    .flatten()?
            }
        };
        Some(FactoryStamp {
            manifest: Digest::of(factory.source.text.as_bytes()),
            component,
        })
    }

    /// Forgets what the store keeps of `app` (its factory version runs), saying why.
    async fn set_aside(&self, app: &str, notes: &mut Vec<String>, why: &str) {
        let a = app.to_string();
        match self.with_store(move |s| s.remove(&a).map(drop)).await {
            Ok(()) => notes.push(format!(
                "{app}: {why}: it runs the factory version, and what the app store kept of it was set aside"
            )),
            Err(e) => notes.push(format!(
                "{app}: {why}, and what the app store kept of it could not be set aside: {e}"
            )),
        }
    }

    /// Puts apps deployed while an earlier instance ran back in the set, each after the
    /// apps it depends on. One that no longer fits (a dependency gone, a route taken) is
    /// shown as unable to run, with why; the store keeps it.
    async fn add_deployed(&self, deployed: Vec<(String, Option<String>, Version)>, notes: &mut Vec<String>) {
        let mut ready = Vec::new();
        for (app, home, current) in deployed {
            let home = match home {
                Some(h) => std::path::PathBuf::from(h),
                None => {
                    let a = app.clone();
                    match self.with_store(move |s| s.home_dir(&a)).await {
                        Ok(h) => h,
                        Err(e) => {
                            notes.push(format!("{app}: deployed, but its home folder cannot be made: {e}"));
                            continue;
                        }
                    }
                }
            };
            match self.stored_version(&app, &home, &current).await {
                Ok(running) => ready.push((app, home, current, running)),
                Err(e) => notes.push(format!(
                    "{app}: deployed version {} in the app store cannot run: {e}",
                    current.id
                )),
            }
        }
        // Dependencies first: add what fits, again, until nothing more does.
        loop {
            let before = ready.len();
            let mut waiting = Vec::new();
            for (app, home, current, running) in ready {
                let deps_in = running
                    .manifest
                    .depends_on
                    .iter()
                    .all(|d| self.registry().contains(&d.value));
                if !deps_in {
                    waiting.push((app, home, current, running));
                    continue;
                }
                if let Err(problems) = self.place(&running.manifest) {
                    self.cannot_run(&running.manifest, problems);
                    notes.push(format!(
                        "{app}: deployed, but it no longer fits the set of apps; not started"
                    ));
                    continue;
                }
                self.add_app(
                    (*running.manifest).clone(),
                    home,
                    running.component,
                    running.version,
                    false,
                );
                notes.push(format!(
                    "{app}: deployed version {} ({}) from the app store",
                    current.id, current.version
                ));
            }
            ready = waiting;
            if ready.is_empty() || ready.len() == before {
                break;
            }
        }
        for (app, _, _, running) in ready {
            let problems = self.place(&running.manifest).err().unwrap_or_default();
            self.cannot_run(&running.manifest, problems);
            notes.push(format!(
                "{app}: deployed, but an app it depends on is missing; not started"
            ));
        }
    }

    /// A kept version made ready to run: its manifest read back (paths resolved against
    /// the app's home) and its component loaded (compiled, or from the compile cache).
    pub(crate) async fn stored_version(&self, app: &str, home: &Path, v: &Version) -> Result<Running, SupervisorError> {
        // A factory version runs from the instance's own files while they are the ones kept:
        // in the image they are precompiled, and precompiled code is trusted only there.
        if v.origin == Origin::Factory
            && let Some(r) = self.factory_files(app, home, v).await
        {
            return Ok(r);
        }
        let d = v.manifest.clone();
        let text = self.with_store(move |s| s.read_blob(&d)).await?;
        let text = String::from_utf8_lossy(&text).into_owned();
        let mut m = Manifest::parse(&text, home.join(MANIFEST_FILE)).map_err(|problems| UpdateError::Manifest {
            app: app.to_string(),
            problems,
        })?;
        self.give_data(&mut m)?;
        let path = self.blob_path(&v.component)?;
        m.component.value = path.clone();
        let (loaded, st) = self.load_component(app, path).await?;
        if loaded.sha256 != v.component.as_str() {
            return Err(UpdateError::Store(StoreError::Damaged {
                path: loaded.path.clone(),
            })
            .into());
        }
        Ok(Running {
            manifest: Arc::new(m),
            component: st.map(|stamp| Component { loaded, stamp }),
            version: Some(v.id),
        })
    }

    /// The factory version `v` from the app's home folder, if its manifest and component
    /// there are still the ones the store kept (`None`: they changed, or cannot be read).
    async fn factory_files(&self, app: &str, home: &Path, v: &Version) -> Option<Running> {
        let file = home.join(MANIFEST_FILE);
        let f = file.clone();
        let text = tokio::task::spawn_blocking(move || std::fs::read(&f))
            .await
            .ok()?
            .ok()?;
        if Digest::of(&text) != v.manifest {
            return None;
        }
        let mut m = Manifest::parse(&String::from_utf8_lossy(&text), &file).ok()?;
        self.give_data(&mut m).ok()?;
        let (loaded, st) = self.load_component(app, m.component.value.clone()).await.ok()?;
        if loaded.sha256 != v.component.as_str() {
            return None;
        }
        Some(Running {
            manifest: Arc::new(m),
            component: st.map(|stamp| Component { loaded, stamp }),
            version: Some(v.id),
        })
    }

    /// Loads (compiles, or finds in the compile cache) the component at `path` for `app`,
    /// on the blocking pool; with the file's identity.
    pub(crate) async fn load_component(
        &self,
        app: &str,
        path: std::path::PathBuf,
    ) -> Result<(Arc<vyoma_runtime::Loaded>, Option<crate::registry::FileStamp>), SupervisorError> {
        let rt = self.inner.runtime.clone();
        let (loaded, st) = self
            .inner
            .rt
            .spawn_blocking(move || (rt.load(&path), stamp(&path)))
            .await
            .map_err(|e| UpdateError::Component {
                app: app.to_string(),
                why: format!("the loader failed: {e}"),
            })?;
        let loaded = loaded.map_err(|e| UpdateError::Component {
            app: app.to_string(),
            why: e.to_string(),
        })?;
        Ok((loaded, st))
    }

    /// Keeps `running` (a factory version) in the store before the app's first update, so
    /// it can be rolled back to; fills in its number.
    pub(crate) async fn keep_factory(&self, app: &str, running: &mut Running) -> Result<(), SupervisorError> {
        if running.version.is_some() {
            return Ok(());
        }
        let a = app.to_string();
        if let Some(id) = self
            .with_store(move |s| Ok(s.app(&a).and_then(|r| r.current()).map(|v| v.id)))
            .await?
        {
            running.version = Some(id);
            return Ok(());
        }
        let text = running.manifest.source.text.clone();
        let path = running.manifest.component.value.clone();
        let version = running.manifest.version.to_string();
        let a = app.to_string();
        let v = self
            .with_store(move |s| {
                let bytes = std::fs::read(&path).map_err(|source| StoreError::Io {
                    op: "reading",
                    path: path.clone(),
                    source,
                })?;
                let new = NewVersion {
                    version,
                    manifest: s.put_blob(text.as_bytes())?,
                    component: s.put_blob(&bytes)?,
                    size: bytes.len() as u64,
                    added: super::unix_now(),
                    origin: Origin::Factory,
                };
                s.adopt(&a, new)
            })
            .await?;
        running.version = Some(v.id);
        if let Some(e) = self.registry().get_mut(app) {
            e.version = Some(v.id);
        }
        Ok(())
    }

    /// The versions of `app` kept, newest first, and the last one turned down.
    pub fn versions(&self, app: &str) -> Result<VersionsReport, SupervisorError> {
        let factory = {
            let apps = self.registry();
            let e = apps.get(app).ok_or_else(|| self.not_here(app))?;
            // A deployed app the store does not keep (its first version was turned down).
            e.factory.then(|| VersionRow {
                id: None,
                version: e.manifest.version.to_string(),
                component: e
                    .component
                    .as_ref()
                    .map_or_else(String::new, |c| c.loaded.sha256.clone()),
                size: e.component.as_ref().map_or(0, |c| c.loaded.size),
                added: None,
                origin: "factory".into(),
                status: VersionStatus::Current,
            })
        };
        let record = self.store().as_ref().and_then(|s| s.app(app).cloned());
        let Some(r) = record else {
            return Ok(VersionsReport {
                app: app.to_string(),
                versions: factory.into_iter().collect(),
                rejected: None,
            });
        };
        let mut versions: Vec<VersionRow> = r.trial.iter().map(|t| row(t, VersionStatus::Trial)).collect();
        let n = r.committed.len();
        for (i, v) in r.committed.iter().enumerate().rev() {
            let status = if i + 1 == n {
                VersionStatus::Current
            } else {
                VersionStatus::Previous
            };
            versions.push(row(v, status));
        }
        Ok(VersionsReport {
            app: app.to_string(),
            versions,
            rejected: r.rejected.map(|j| RejectedVersion {
                id: j.id,
                version: j.version,
                reason: j.reason,
                at: at(j.at),
            }),
        })
    }

    /// Puts `app`'s previous version back: the one in probation is turned down, or, with
    /// none, the current one is dropped and the one before it runs again.
    pub async fn rollback(&self, app: &str) -> Result<RollbackReport, SupervisorError> {
        const REASON: &str = "rolled back by the operator";
        let _one_at_a_time = self.inner.updating.lock().await;
        self.check_open()?;
        let trial = {
            let apps = self.registry();
            let e = apps.get(app).ok_or_else(|| self.not_here(app))?;
            e.trial.as_ref().map(|t| t.id)
        };
        let (from, home) = self.running(app)?;
        if let Some(id) = trial {
            return Ok(self
                .roll_back_trial(app, id, REASON, true)
                .await?
                .expect("the trial is still on: the update lock is held"));
        }
        let a = app.to_string();
        let to = self
            .with_store(move |s| {
                let r = s.app(&a).ok_or_else(|| Refused::NothingToRollBackTo(a.clone()))?;
                let n = r.committed.len();
                if n < 2 {
                    return Err(Refused::NothingToRollBackTo(a.clone()).into());
                }
                Ok(r.committed[n - 2].clone())
            })
            .await?;
        // Ready before anything changes: a version that cannot run is refused here.
        let running = self.stored_version(app, &home, &to).await?;
        let a = app.to_string();
        self.with_store(move |s| s.rollback(&a, REASON)).await?;
        let to_brief = running.brief();
        let swap = self.swap(app, running, None, "rollback", true).await?;
        Ok(RollbackReport {
            app: app.to_string(),
            from: from.brief(),
            to: Some(to_brief),
            reason: REASON.to_string(),
            swap: Some(swap),
        })
    }
}
