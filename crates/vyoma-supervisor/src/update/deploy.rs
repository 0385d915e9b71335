//! Adding an app to a running instance (`deploy`) and taking one out (`remove`), without
//! touching the other apps.
//!
//! A deployed app is checked whole first, like an update (manifest, files, grants, memory,
//! its place among the running apps, its component compiled on this machine), then kept
//! in the store as a trial, given its inbox, routes and start, and run on probation: a
//! failure within the window stops it and forgets it (there is no earlier version to go
//! back to); passing it commits it, and it starts again after a restart. A removed app is
//! stopped, its inbox dropped (counted), and the store told: a deployed app is forgotten,
//! one of the instance's own apps is kept as removed until its factory version changes.
//! Its data folder stays unless purged.
//!
//! Not here: the checks shared with updates (`examine`), probation (`probation`).

use std::path::{Path, PathBuf};

use vyoma_control::{DeployReport, RemoveReport, UpdateOptions, UpdateSource, VersionBrief};
use vyoma_lifecycle::AppState;
use vyoma_manifest::{MANIFEST_FILE, Manifest};
use vyoma_store::{Digest, FactoryStamp, NewVersion, Origin};

use super::{Trial, UpdateError};
use crate::registry::{Component, Entry};
use crate::{Supervisor, SupervisorError};

/// The app a deploy is for, and the folder its relative paths resolve against (`None`:
/// an upload, whose home is in the store).
fn name_and_home(source: &UpdateSource) -> Result<(String, Option<PathBuf>), SupervisorError> {
    let (text, file, home) = match source {
        UpdateSource::Folder(dir) => {
            let file = vyoma_manifest::manifest_file(dir);
            let text = super::read(&file)?;
            let home =
                std::path::absolute(file.parent().unwrap_or(Path::new("."))).map_err(|source| UpdateError::Read {
                    path: file.clone(),
                    source,
                })?;
            (String::from_utf8_lossy(&text).into_owned(), file, Some(home))
        }
        UpdateSource::Upload { manifest, .. } => (
            manifest.clone(),
            PathBuf::from(format!("(uploaded {MANIFEST_FILE})")),
            None,
        ),
    };
    let m = Manifest::parse(&text, &file).map_err(|problems| UpdateError::Manifest {
        app: file.display().to_string(),
        problems,
    })?;
    Ok((m.name, home))
}

/// The factory stamp of the app whose manifest is at `manifest` (what `open_store` compares
/// a removed factory app against): its text, and its component's bytes (empty if the
/// manifest or the component cannot be read).
pub(crate) fn stamp_of_files(manifest: &Path) -> FactoryStamp {
    let text = std::fs::read(manifest).unwrap_or_default();
    let component = Manifest::parse(&String::from_utf8_lossy(&text), manifest)
        .ok()
        .and_then(|m| std::fs::read(&m.component.value).ok())
        .unwrap_or_default();
    FactoryStamp {
        manifest: Digest::of(&text),
        component: Digest::of(&component),
    }
}

impl Supervisor {
    /// Adds the app `source` holds to the running instance: checked whole first (nothing
    /// changes if anything is wrong), kept in the store as a trial, started once the apps
    /// it depends on are up, and on probation. With `options.dry_run`, only checked.
    pub async fn deploy(&self, source: UpdateSource, options: UpdateOptions) -> Result<DeployReport, SupervisorError> {
        self.check_open()?;
        let (app, folder) = name_and_home(&source)?;
        let replaces = self.deployable(&app)?;
        let home = match folder {
            Some(h) => h,
            None => {
                let a = app.clone();
                self.with_store(move |s| s.home_dir(&a)).await?
            }
        };
        {
            let capacity = self.inner.runtime.capacity();
            if self.registry().len() + 1 > capacity.instances {
                return Err(UpdateError::Full {
                    app,
                    instances: capacity.instances,
                    limited_by: capacity.limited_by.clone(),
                }
                .into());
            }
        }
        let (text, digest, shown) = self.fetch(&app, source).await?;
        let pinned = digest.clone();
        let examined = self.examine(&app, &home, &text, &digest, &shown).await;
        let (m, _, loaded, st) = match examined {
            Ok(x) => x,
            Err(e) => {
                self.unpin(&pinned);
                return Err(e);
            }
        };
        let mut report = DeployReport {
            app: app.clone(),
            dry_run: options.dry_run,
            version: VersionBrief {
                id: None,
                version: m.version.to_string(),
                component: loaded.sha256.clone(),
            },
            depends_on: m.depends_on.iter().map(|d| d.value.clone()).collect(),
            replaces,
            data: m.capabilities.data_dir().map(|d| d.host.value.display().to_string()),
            probation: m.update.probation,
        };
        if options.dry_run {
            self.unpin(&pinned);
            return Ok(report);
        }
        let _one_at_a_time = self.inner.updating.lock().await;
        self.check_open()?;
        // Another deploy of the name may have won the race for the lock.
        self.deployable(&app)?;
        let manifest_digest = {
            let t = text.clone();
            self.with_store(move |s| s.put_blob(t.as_bytes())).await?
        };
        let new = NewVersion {
            version: m.version.to_string(),
            manifest: manifest_digest,
            component: digest,
            size: loaded.size,
            added: super::unix_now(),
            origin: Origin::Deployed,
        };
        let (a, h) = (app.clone(), home.clone());
        let (v, _) = self.with_store(move |s| s.deploy(&a, new, &h)).await?;
        report.version.id = Some(v.id);
        let probation = m.update.probation;
        let health = m.update.health;
        self.add_app(m, home, st.map(|stamp| Component { loaded, stamp }), Some(v.id), true);
        self.arm_probation(&app, v.id, probation, health);
        let sup = self.clone();
        let name = app.clone();
        self.inner.rt.spawn(async move { sup.start_in_order(vec![name]).await });
        tracing::info!(app = %app, version = v.id, "deployed; on probation");
        Ok(report)
    }

    /// Whether a deploy may use the name `app`: it is free, or held by an app that cannot
    /// run, or by a deploy turned down in probation (said in the `Ok`).
    fn deployable(&self, app: &str) -> Result<Option<String>, SupervisorError> {
        if self.invalid().contains_key(app) {
            return Ok(Some("an app of the same name that could not run".into()));
        }
        match self.registry().get(app) {
            None => Ok(None),
            Some(e) if !e.factory && e.version.is_none() && e.trial.is_none() && !e.state().is_live() => {
                Ok(Some("an earlier deploy of it, turned down in probation".into()))
            }
            Some(_) => Err(UpdateError::Exists(app.to_string()).into()),
        }
    }

    /// Puts a new app in the running set, stopped: registry (its version `version` of the
    /// store, with `trial` its first on probation), start order, inbox, routes.
    pub(crate) fn add_app(
        &self,
        m: Manifest,
        home: PathBuf,
        component: Option<Component>,
        version: Option<u64>,
        trial: bool,
    ) {
        let name = m.name.clone();
        let spec = crate::ipc_spec(&m);
        let http = !m.http.routes.is_empty();
        self.display_app(&m);
        let mut e = Entry::new(m, self.inner.clock.now());
        e.home = home;
        e.factory = false;
        e.component = component;
        e.version = version;
        e.trial = version.filter(|_| trial).map(|id| Trial {
            id,
            first_generation: e.lifecycle().generation() + 1,
            previous: None,
        });
        self.invalid().remove(&name);
        let replaced = self.registry().get(&name).is_some();
        self.registry().insert(name.clone(), e);
        if !replaced {
            self.order().push(name.clone());
        }
        if !self.inner.broker.add(spec.clone()) {
            self.inner.broker.reconfigure(&spec);
        }
        if http {
            self.reroute();
        }
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Stops `app` and takes it out of the instance; the store keeps the removal. With
    /// `purge`, its data folder is deleted too. Refused while other apps depend on it.
    pub async fn remove(&self, app: &str, purge: bool) -> Result<RemoveReport, SupervisorError> {
        let _one_at_a_time = self.inner.updating.lock().await;
        if self.inner.closing.load(std::sync::atomic::Ordering::Acquire) {
            return Err(UpdateError::ShuttingDown.into());
        }
        let invalid = self.invalid().get(app).map(|i| i.rejected.manifest.clone());
        let (factory, runs_factory) = match &invalid {
            Some(_) => (true, false),
            None => {
                let apps = self.registry();
                let e = apps.get(app).ok_or_else(|| self.not_here(app))?;
                let by: Vec<String> = apps
                    .iter()
                    .filter(|(_, d)| d.manifest.depends_on.iter().any(|x| x.value == app))
                    .map(|(n, _)| n.clone())
                    .collect();
                if !by.is_empty() {
                    return Err(UpdateError::Needed {
                        app: app.to_string(),
                        by,
                    }
                    .into());
                }
                (e.factory, e.factory && e.version.is_none())
            }
        };
        // A factory app the store does not keep yet: its stamp, taken before it goes (from
        // its files if it cannot run, else from what preload hashed).
        let stamp = match invalid {
            Some(p) => tokio::task::spawn_blocking(move || stamp_of_files(&p)).await.ok(),
            None if runs_factory => self.factory_stamp(app).await,
            None => None,
        };
        self.stop_and_wait(app).await;
        let removed = self.take_out(app);
        let mut report = RemoveReport {
            app: app.to_string(),
            factory,
            dropped_messages: removed.dropped,
            unanswered: removed.unanswered,
            persistent: false,
            purged: None,
            kept_data: None,
        };
        if self.has_store() {
            let a = app.to_string();
            self.with_store(move |s| {
                let stamp = s.app(&a).and_then(|r| r.factory.clone()).or(stamp);
                let stamp = if factory { stamp } else { None };
                s.retire(&a, stamp)?;
                Ok(())
            })
            .await?;
            report.persistent = true;
            let a = app.to_string();
            if purge {
                report.purged = Some(self.with_store(move |s| s.purge_data(&a)).await?);
            } else {
                let dir = self
                    .store()
                    .as_ref()
                    .map(|s| s.root().join(vyoma_store::DATA).join(app));
                report.kept_data = dir.filter(|d| d.is_dir()).map(|d| d.display().to_string());
            }
        }
        tracing::info!(app = %app, "removed");
        Ok(report)
    }

    /// Shows `m`'s app as unable to run, with `problems` in its log (it was deployed, and no
    /// longer fits the set).
    pub(crate) fn cannot_run(&self, m: &Manifest, problems: vyoma_manifest::Diagnostics) {
        let log = crate::AppLog::new(16 << 10);
        log.note(&format!(
            "cannot run: {} problem(s) with its place in the set of apps",
            problems.len()
        ));
        for d in problems.iter() {
            log.note(&d.to_string());
        }
        let rejected = vyoma_manifest::Rejected {
            name: m.name.clone(),
            manifest: m.source.path.clone(),
            problems,
        };
        self.invalid().insert(m.name.clone(), crate::Invalid { rejected, log });
    }

    /// Takes an ended app out of the registry, the start order, the broker and the routes.
    pub(crate) fn take_out(&self, app: &str) -> vyoma_ipc::Removed {
        if self.invalid().remove(app).is_some() {
            self.inner.changed.send_modify(|n| *n += 1);
            return vyoma_ipc::Removed::default();
        }
        let entry = self.registry().remove(app);
        let mut http = false;
        if let Some(mut e) = entry {
            debug_assert!(!e.state().is_live() || e.state() == AppState::Stopping);
            for t in e.timers.drain(..) {
                t.abort();
            }
            if let Some(t) = e.task.take() {
                t.abort();
            }
            http = !e.manifest.http.routes.is_empty();
        }
        self.order().retain(|n| n != app);
        self.display_forget(app);
        let removed = self.inner.broker.remove(app).unwrap_or_default();
        if http {
            self.reroute();
        }
        self.inner.changed.send_modify(|n| *n += 1);
        removed
    }
}
