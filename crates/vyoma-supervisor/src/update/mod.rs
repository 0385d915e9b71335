//! Updating a running app without touching the others: a new version is checked whole
//! before the running one is touched (its manifest, component, place in the set, the
//! grants the runtime allows, the memory budget, and its interfaces against what other
//! apps rely on, see `compat`), stored in the app store, swapped in with its inbox handed
//! over (`swap`), and run on probation: a trap, a failed exit, a start timeout or a failed
//! health check within the window puts the previous version back at once (`probation`).
//! Operator rollbacks and `versions` read the store (`kept`).
//!
//! Not here: the store's format and crash safety (`vyoma-store`), how an inbox is handed
//! over without losing a message (`vyoma-ipc`'s `Broker::hand_over`), the lifecycle's
//! arithmetic (`Event::Replace`).

mod compat;
mod deploy;
mod kept;
mod probation;
mod swap;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vyoma_control::{UpdateOptions, UpdateReport, UpdateSource, VersionBrief};
use vyoma_manifest::{AppSet, Diagnostics, MANIFEST_FILE, Manifest};
use vyoma_store::{Digest, NewVersion, Origin, StoreError};

use crate::registry::Component;
use crate::{Supervisor, SupervisorError};

pub(crate) use kept::StoreSlot;
pub(crate) use probation::verdict;

/// Why an update, rollback or upload was refused. The running version is untouched.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The supervisor runs without an app store.
    #[error(
        "this instance keeps no app store, so it cannot deploy or update apps: `vyoma run` keeps one unless started with `--no-store` (`--store DIR` picks where); the image keeps one on the disk `vyoma boot` gives it (unless booted with `--no-disk` or `vyoma.store=off`)"
    )]
    NoStore,
    /// The supervisor is shutting down.
    #[error("the instance is shutting down: nothing is updated or rolled back now")]
    ShuttingDown,
    /// The new manifest is invalid, or does not fit the set of apps.
    #[error("the new version of `{app}` cannot run:\n{problems}")]
    Manifest {
        /// The app.
        app: String,
        /// Every problem, with file, line and column.
        problems: Diagnostics,
    },
    /// The new manifest names another app.
    #[error(
        "the new manifest is for `{found}`, not `{app}`: an update keeps the app's name (fix `[app] name`, or update `{found}`)"
    )]
    OtherApp {
        /// The app being updated.
        app: String,
        /// The name in the new manifest.
        found: String,
    },
    /// A file of the new version cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The component named is not in the store.
    #[error("no blob {0} in the app store: upload the component first (PUT /v1/blobs/SHA256)")]
    NoBlob(String),
    /// An uploaded blob does not match the digest it was sent under.
    #[error(
        "the uploaded bytes have SHA-256 {actual}, not {claimed}: the upload was damaged or misnamed; send it again"
    )]
    BlobMismatch {
        /// The digest the upload named.
        claimed: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// The new component cannot run as this app.
    #[error("the new component of `{app}` cannot be used: {why}")]
    Component {
        /// The app.
        app: String,
        /// Why (not a component, a core module, an import the supervisor does not
        /// provide, a command given HTTP routes, ...).
        why: String,
    },
    /// The new version asks for more memory than all apps together may use.
    #[error(
        "the new version of `{app}` may use up to {} of memory (`[limits] memory`), more than the {} all apps on this instance share: lower its limit"
    , vyoma_control::fmt_bytes(*limit), vyoma_control::fmt_bytes(*budget))]
    Memory {
        /// The app.
        app: String,
        /// Its new memory limit.
        limit: u64,
        /// The instance's memory budget.
        budget: u64,
    },
    /// The new version drops something other apps rely on.
    #[error(
        "the new version of `{app}` breaks what other apps rely on:\n{}\n  (`update --force` lets it through)",
        breaks.iter().map(|b| format!("  - {b}")).collect::<Vec<_>>().join("\n")
    )]
    Breaking {
        /// The app.
        app: String,
        /// Each break, in words.
        breaks: Vec<String>,
    },
    /// A deploy names an app the instance has.
    #[error("`{0}` is already an app of this instance: `update {0} DIR` replaces its version")]
    Exists(String),
    /// Other apps depend on the app to remove.
    #[error(
        "`{app}` cannot be removed: {} depend{} on it (`depends_on`); remove {} first",
        vyoma_control::backquoted(by),
        if by.len() == 1 { "s" } else { "" },
        if by.len() == 1 { "it" } else { "them" }
    )]
    Needed {
        /// The app.
        app: String,
        /// The apps that depend on it.
        by: Vec<String>,
    },
    /// The instance has no room for another app.
    #[error("`{app}` cannot be deployed: {limited_by} ({instances} apps at most run at once here)")]
    Full {
        /// The app.
        app: String,
        /// How many instances the instance can run.
        instances: usize,
        /// Why, and how to raise it.
        limited_by: String,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<UpdateError> for SupervisorError {
    fn from(e: UpdateError) -> SupervisorError {
        SupervisorError::Update(Box::new(e))
    }
}

/// A version as the registry runs it: what to put back if its successor fails.
#[derive(Clone)]
pub(crate) struct Running {
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) component: Option<Component>,
    /// Its number in the store (`None`: the factory version, not yet kept).
    pub(crate) version: Option<u64>,
}

impl Running {
    fn brief(&self) -> VersionBrief {
        VersionBrief {
            id: self.version,
            version: self.manifest.version.to_string(),
            component: self
                .component
                .as_ref()
                .map_or_else(String::new, |c| c.loaded.sha256.clone()),
        }
    }
}

/// A version in probation.
pub(crate) struct Trial {
    /// Its number in the store.
    pub(crate) id: u64,
    /// Its first instance: this one and every later one run the new version.
    pub(crate) first_generation: u64,
    /// The committed version, put back if this one fails; `None` for an app's first
    /// version (a deploy), which is stopped and forgotten if it fails.
    pub(crate) previous: Option<Running>,
}

/// A new version, checked and loaded, not yet swapped in.
struct Candidate {
    running: Running,
    text: String,
    component: Digest,
    size: u64,
}

/// The bytes of a file of a new version.
fn read(p: &Path) -> Result<Vec<u8>, UpdateError> {
    std::fs::read(p).map_err(|source| UpdateError::Read {
        path: p.to_path_buf(),
        source,
    })
}

/// The time now, in seconds since the Unix epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Supervisor {
    /// Refuses changes once shutdown began, or without a store.
    fn check_open(&self) -> Result<(), SupervisorError> {
        if self.inner.closing.load(std::sync::atomic::Ordering::Acquire) {
            return Err(UpdateError::ShuttingDown.into());
        }
        if !self.has_store() {
            return Err(UpdateError::NoStore.into());
        }
        Ok(())
    }

    /// Stores an uploaded blob (a component, before an update names it), checked against
    /// the digest it was sent under.
    pub async fn store_blob(&self, digest: &str, bytes: Vec<u8>) -> Result<(), SupervisorError> {
        let actual = Digest::of(&bytes);
        if actual.as_str() != digest {
            return Err(UpdateError::BlobMismatch {
                claimed: digest.to_string(),
                actual: actual.to_string(),
            }
            .into());
        }
        self.with_store(move |s| s.put_blob(&bytes).map(drop)).await
    }

    /// Replaces `app`'s running version with the one `source` names: checked whole first
    /// (nothing changes if anything is wrong), then stored, swapped in and put on probation.
    /// With `options.dry_run`, only checked and reported.
    pub async fn update(
        &self,
        app: &str,
        source: UpdateSource,
        options: UpdateOptions,
    ) -> Result<UpdateReport, SupervisorError> {
        let (old, home) = self.running(app)?;
        self.check_open()?;
        let (text, digest, shown) = self.fetch(app, source).await?;
        let pinned = digest.clone();
        let checked = self.check(app, &home, &text, digest, &shown, &old, options).await;
        let (candidate, changes, forced) = match checked {
            Ok(c) => c,
            Err(e) => {
                self.unpin(&pinned);
                return Err(e);
            }
        };
        let mut report = UpdateReport {
            app: app.to_string(),
            dry_run: options.dry_run,
            from: old.brief(),
            to: candidate.running.brief(),
            changes,
            forced,
            probation: candidate.running.manifest.update.probation,
            swap: None,
        };
        if options.dry_run {
            self.unpin(&pinned);
            return Ok(report);
        }
        let _one_at_a_time = self.inner.updating.lock().await;
        self.check_open()?;
        // The version to fall back on: the committed one (an update during probation
        // replaces the trial, not what the trial would fall back on). Read under the lock:
        // a probation may have ended while the new version was being checked.
        let mut previous = {
            let apps = self.registry();
            let e = apps.get(app).ok_or_else(|| self.not_here(app))?;
            match &e.trial {
                Some(t) => t.previous.clone(),
                None => Some(Running {
                    manifest: e.manifest.clone(),
                    component: e.component.clone(),
                    version: e.version,
                }),
            }
        };
        if let Some(previous) = &mut previous {
            self.keep_factory(app, previous).await?;
            if report.from.id.is_none() && report.from.component == previous.brief().component {
                report.from.id = previous.version;
            }
        }
        let manifest_digest = {
            let t = candidate.text.clone();
            self.with_store(move |s| s.put_blob(t.as_bytes())).await?
        };
        let new = NewVersion {
            version: candidate.running.manifest.version.to_string(),
            manifest: manifest_digest,
            component: candidate.component.clone(),
            size: candidate.size,
            added: unix_now(),
            origin: Origin::Deployed,
        };
        let a = app.to_string();
        let (v, _replaced) = self.with_store(move |s| s.propose(&a, new)).await?;
        let mut running = candidate.running;
        running.version = Some(v.id);
        report.to.id = Some(v.id);
        let probation = running.manifest.update.probation;
        let health = running.manifest.update.health;
        let swap = self.swap(app, running, Some((v.id, previous)), "update", true).await?;
        report.swap = Some(swap);
        self.arm_probation(app, v.id, probation, health);
        tracing::info!(app = %app, version = v.id, "updated; on probation");
        Ok(report)
    }

    /// The version `app` runs now, and its home folder.
    pub(crate) fn running(&self, app: &str) -> Result<(Running, PathBuf), SupervisorError> {
        let apps = self.registry();
        let e = apps.get(app).ok_or_else(|| self.not_here(app))?;
        let r = Running {
            manifest: e.manifest.clone(),
            component: e.component.clone(),
            version: e.version,
        };
        Ok((r, e.home.clone()))
    }

    /// The new version's manifest text and component digest (stored, pinned), and how to
    /// name the manifest in diagnostics.
    async fn fetch(&self, app: &str, source: UpdateSource) -> Result<(String, Digest, PathBuf), SupervisorError> {
        match source {
            UpdateSource::Folder(dir) => {
                let file = vyoma_manifest::manifest_file(&dir);
                let text = String::from_utf8_lossy(&read(&file)?).into_owned();
                // The component is the file the manifest names, in that folder.
                let m = Manifest::parse(&text, &file).map_err(|problems| UpdateError::Manifest {
                    app: app.to_string(),
                    problems,
                })?;
                let bytes = read(&m.component.value)?;
                let digest = self.with_store(move |s| s.put_blob(&bytes)).await?;
                Ok((text, digest, file))
            }
            UpdateSource::Upload { manifest, component } => {
                let digest: Digest = component.parse().map_err(|_| UpdateError::NoBlob(component.clone()))?;
                let d = digest.clone();
                // Pinned until the update is made or refused; checked to be there, whole.
                self.with_store(move |s| {
                    s.pin(&d);
                    s.read_blob(&d).map(drop)
                })
                .await
                .map_err(|_| UpdateError::NoBlob(component.clone()))?;
                Ok((
                    manifest,
                    digest,
                    PathBuf::from(format!("{app} (uploaded {MANIFEST_FILE})")),
                ))
            }
        }
    }

    /// A version of `app` made ready to run, as far as it can be without running it: its
    /// manifest (diagnostics name `shown`, paths resolve against `home`; its data folder
    /// given), its files, grants, memory limit, place among the other apps (returned), and
    /// its component compiled and fitting the manifest.
    #[allow(
        clippy::type_complexity,
        reason = "used by two callers, each taking it apart at once"
    )]
    async fn examine(
        &self,
        app: &str,
        home: &Path,
        text: &str,
        component: &Digest,
        shown: &Path,
    ) -> Result<
        (
            Manifest,
            Vec<Manifest>,
            Arc<vyoma_runtime::Loaded>,
            Option<crate::registry::FileStamp>,
        ),
        SupervisorError,
    > {
        let bad = |problems: Diagnostics| UpdateError::Manifest {
            app: app.to_string(),
            problems,
        };
        // Diagnostics name the file the operator has; paths resolve against the app's home.
        Manifest::parse(text, shown).map_err(bad)?;
        let mut m = Manifest::parse(text, home.join(MANIFEST_FILE)).map_err(bad)?;
        if m.name != app {
            return Err(UpdateError::OtherApp {
                app: app.to_string(),
                found: m.name,
            }
            .into());
        }
        self.give_data(&mut m)?;
        let blob = self.blob_path(component)?;
        m.component.value = blob.clone();
        let mut problems: Vec<_> = m.check_paths();
        problems.extend(self.inner.runtime.grant_problems(&m));
        if !problems.is_empty() {
            return Err(bad(Diagnostics(problems)).into());
        }
        let budget = self.inner.runtime.memory_budget().limit();
        if m.limits.memory > budget {
            return Err(UpdateError::Memory {
                app: app.to_string(),
                limit: m.limits.memory,
                budget,
            }
            .into());
        }
        let others = self.place(&m).map_err(bad)?;
        let (loaded, st) = self.load_component(app, blob).await?;
        loaded.fits(&m).map_err(|why| UpdateError::Component {
            app: app.to_string(),
            why,
        })?;
        Ok((m, others, loaded, st))
    }

    /// Whether `m` fits among the other apps (dependencies, route clashes); their manifests
    /// if it does.
    pub(crate) fn place(&self, m: &Manifest) -> Result<Vec<Manifest>, Diagnostics> {
        let others: Vec<Manifest> = self
            .registry()
            .iter()
            .filter(|(n, _)| **n != m.name)
            .map(|(_, e)| (*e.manifest).clone())
            .collect();
        let mut all = others.clone();
        all.push(m.clone());
        AppSet::new(all)?;
        Ok(others)
    }

    /// Everything about the new version that can be known without running it.
    #[allow(clippy::too_many_arguments, reason = "the update's inputs, each distinct")]
    async fn check(
        &self,
        app: &str,
        home: &Path,
        text: &str,
        component: Digest,
        shown: &Path,
        old: &Running,
        options: UpdateOptions,
    ) -> Result<(Candidate, Vec<String>, Vec<String>), SupervisorError> {
        let (m, others, loaded, st) = self.examine(app, home, text, &component, shown).await?;
        let no_info = vyoma_runtime::ComponentInfo::default();
        let old_info = old.component.as_ref().map_or(&no_info, |c| &c.loaded.info);
        let old_side = compat::Side {
            manifest: &old.manifest,
            imports: &old_info.imports,
            exports: &old_info.exports,
            http: old.component.as_ref().is_some_and(|c| c.loaded.is_http()),
        };
        let new_side = compat::Side {
            manifest: &m,
            imports: &loaded.info.imports,
            exports: &loaded.info.exports,
            http: loaded.is_http(),
        };
        let peers: Vec<&Manifest> = others.iter().collect();
        let breaks = compat::breaking(&old_side, &new_side, &peers);
        let mut changes = compat::changes(&old_side, &new_side);
        if old.component.as_ref().is_none_or(|c| c.loaded.sha256 != loaded.sha256) {
            changes.insert(0, format!("component {}", &loaded.sha256[..12]));
        }
        let forced = if breaks.is_empty() {
            Vec::new()
        } else if options.force {
            breaks
        } else {
            return Err(UpdateError::Breaking {
                app: app.to_string(),
                breaks,
            }
            .into());
        };
        let size = loaded.size;
        let candidate = Candidate {
            running: Running {
                manifest: Arc::new(m),
                component: st.map(|stamp| Component { loaded, stamp }),
                version: None,
            },
            text: text.to_string(),
            component,
            size,
        };
        Ok((candidate, changes, forced))
    }
}
