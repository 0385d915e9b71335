//! Start-up: from a folder of apps to a supervisor whose apps are all started. Used by
//! `vyoma run` and measured as is by `vyoma bench`.
//!
//! The steps run one after the other: manifests, engine and instance pool (sized from the
//! app count), components (once per distinct file), then every app in dependency order.
//! Building the engine beside manifest parsing was measured and did not help: both fault in
//! fresh pages and contend for the address-space lock (docs/PERFORMANCE.md).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vyoma_manifest::{AppSet, Diagnostic, Diagnostics, Manifest};
use vyoma_runtime::{Runtime, RuntimeConfig, RuntimeError};

use crate::{Clock, Supervisor};

/// Why start-up failed. Nothing is running when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The app folder or its manifests are invalid.
    #[error("{0}")]
    Apps(Diagnostics),
    /// The runtime could not be built.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// When each start-up phase finished, measured from the start of [`boot`].
#[derive(Debug, Clone, Copy)]
pub struct BootTimings {
    /// When [`boot`] began.
    pub began: Instant,
    /// Manifests read and validated.
    pub manifests: Duration,
    /// Engine and pool ready.
    pub engine: Duration,
    /// Components loaded.
    pub loaded: Duration,
}

/// A supervisor whose apps have been started.
#[derive(Debug)]
pub struct Booted {
    /// The supervisor.
    pub supervisor: Supervisor,
    /// Apps whose component could not be loaded, with why; they fail when started and
    /// the others are unaffected.
    pub load_failures: Vec<(String, String)>,
    /// Names asked to start (by [`boot_selected`]) that are not apps.
    pub unknown: Vec<String>,
    /// Phase timings.
    pub timings: BootTimings,
}

/// Loads the apps in `dir` and starts them. The pool gets room for at least twice the
/// number of apps (`config.capacity` is a floor), so a restart or update never waits for a
/// free slot.
pub async fn boot(dir: &Path, config: RuntimeConfig, clock: Arc<dyn Clock>) -> Result<Booted, BootError> {
    boot_selected(dir, config, clock, None).await
}

/// Like [`boot`], but with `only`, starts just those apps and what they depend on (the
/// rest stay stopped). Names that are not apps are returned in [`Booted::unknown`].
pub async fn boot_selected(
    dir: &Path,
    mut config: RuntimeConfig,
    clock: Arc<dyn Clock>,
    only: Option<&[String]>,
) -> Result<Booted, BootError> {
    let t0 = Instant::now();
    let set = AppSet::load_dir(dir).map_err(BootError::Apps)?;
    let t_manifests = t0.elapsed();
    let wanted = u32::try_from(set.apps().len().saturating_mul(2)).unwrap_or(u32::MAX);
    config.capacity = config.capacity.max(wanted);
    let runtime = Arc::new(Runtime::new(&config)?);
    let t_engine = t0.elapsed();
    let supervisor = Supervisor::new(runtime, set, clock);
    let load_failures = supervisor.preload().await;
    let t_loaded = t0.elapsed();
    let unknown = match only {
        None => {
            supervisor.start_all().await;
            Vec::new()
        }
        Some(names) => supervisor.start_only(names).await,
    };
    Ok(Booted {
        supervisor,
        load_failures,
        unknown,
        timings: BootTimings {
            began: t0,
            manifests: t_manifests,
            engine: t_engine,
            loaded: t_loaded,
        },
    })
}

impl Booted {
    /// Every app's problems after start-up, each with file, line and column: missing files
    /// and components that failed to load. Those apps fail when started; the others run.
    pub fn problems(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for name in self.supervisor.names() {
            if let Ok(d) = self.supervisor.detail(name) {
                let load_error = self
                    .load_failures
                    .iter()
                    .find(|(app, _)| app == name)
                    .map(|(_, e)| e.as_str());
                out.extend(app_problems(&d.manifest, load_error));
            }
        }
        out
    }
}

/// One app's problems, each with file, line and column: files its manifest names that are
/// missing, then its component's load error, unless the component is itself one of the
/// missing files (reported once). Shared by `vyoma check`, `vyoma run`
/// and the image's init.
pub fn app_problems(m: &Manifest, load_error: Option<&str>) -> Vec<Diagnostic> {
    let mut out = m.check_paths();
    if let Some(e) = load_error
        && m.component.value.is_file()
    {
        out.push(
            m.source
                .diagnostic(m.component.span.clone(), format!("app `{}`: {e}", m.name)),
        );
    }
    out
}
