//! Start-up: from a folder of apps to a supervisor whose apps are all started. Used by
//! `vyoma run` and measured as is by `vyoma-bench apps`.
//!
//! The steps run one after the other: manifests, engine and instance pool (sized from the
//! app count), components (once per distinct file), then every app in dependency order.
//! Building the engine beside manifest parsing was measured and did not help: both fault in
//! fresh pages and contend for the address-space lock (docs/PERFORMANCE.md).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vyoma_manifest::{AppSet, Diagnostic, Diagnostics, Manifest};
use vyoma_runtime::{MemoryImages, Runtime, RuntimeConfig, RuntimeError};

use crate::{Clock, Supervisor};

/// Why start-up failed. Nothing is running when this is returned. One invalid app does
/// not fail start-up: it is shown as failed and the others run.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The app folder cannot be read or holds no apps.
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
    /// What checking the apps against each other found that does not stop them.
    pub warnings: Vec<Diagnostic>,
    /// Apps whose component could not be loaded, with why; they fail when started and
    /// the others are unaffected.
    pub load_failures: Vec<(String, String)>,
    /// Names asked to start (by [`boot_selected`]) that are not apps.
    pub unknown: Vec<String>,
    /// Phase timings.
    pub timings: BootTimings,
}

/// Loads the apps in `dir` and starts them. The pool gets room for at least twice the
/// number of apps plus every routed HTTP app's `max_in_flight` (`config.capacity` is a
/// floor), so a restart or update never waits for a
/// free slot.
pub async fn boot(dir: &Path, config: RuntimeConfig, clock: Arc<dyn Clock>) -> Result<Booted, BootError> {
    boot_selected(dir, config, clock, None).await
}

/// Like [`boot`], but with `only`, starts just those apps and what they depend on (the
/// rest stay stopped). Names that are not apps are returned in [`Booted::unknown`].
pub async fn boot_selected(
    dir: &Path,
    config: RuntimeConfig,
    clock: Arc<dyn Clock>,
    only: Option<&[String]>,
) -> Result<Booted, BootError> {
    let mut booted = prepare(dir, config, clock).await?;
    booted.start(only).await;
    Ok(booted)
}

/// Everything before starting apps: manifests (the apps that cannot run are set aside,
/// the others go on), the engine and pool, and every component loaded. Nothing runs yet:
/// [`Booted::start`] starts the apps, and can be raced against signals.
pub async fn prepare(dir: &Path, mut config: RuntimeConfig, clock: Arc<dyn Clock>) -> Result<Booted, BootError> {
    let t0 = Instant::now();
    match vyoma_runtime::raise_fd_limit() {
        Ok(l) if l.now != l.before => tracing::info!(from = l.before, to = l.now, "raised the open-file limit"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit; apps share the current one"),
    }
    let partial = AppSet::load_dir_partial(dir).map_err(BootError::Apps)?;
    let t_manifests = t0.elapsed();
    let warnings = partial.set.warnings().to_vec();
    // Each HTTP app may have its whole `max_in_flight` of request instances at once.
    let http: usize = partial
        .set
        .apps()
        .iter()
        .filter(|m| !m.http.routes.is_empty())
        .map(|m| m.http.max_in_flight)
        .sum();
    let wanted = u32::try_from(partial.set.apps().len().saturating_mul(2).saturating_add(http)).unwrap_or(u32::MAX);
    config.capacity = config.capacity.max(wanted);
    config.memory_images = memory_images(&config, partial.set.apps());
    let runtime = Arc::new(Runtime::new(&config)?);
    let t_engine = t0.elapsed();
    let supervisor = Supervisor::with_rejected(runtime, partial, clock);
    let load_failures = supervisor.preload().await;
    let t_loaded = t0.elapsed();
    Ok(Booted {
        supervisor,
        warnings,
        load_failures,
        unknown: Vec::new(),
        timings: BootTimings {
            began: t0,
            manifests: t_manifests,
            engine: t_engine,
            loaded: t_loaded,
        },
    })
}

/// The memory images `config` asks for, with `Auto` chosen from the sizes of `apps`'
/// components. Precompiled artifacts (the image's) were made for copying: an engine set
/// otherwise would refuse them, so with those `Auto` copies.
pub fn memory_images(config: &RuntimeConfig, apps: &[vyoma_manifest::Manifest]) -> MemoryImages {
    if config.trusted_artifacts.is_some() && config.memory_images == MemoryImages::Auto {
        return MemoryImages::Copy;
    }
    // Each distinct component once: many apps often share one.
    let paths: std::collections::BTreeSet<&Path> = apps.iter().map(|m| m.component.value.as_path()).collect();
    let sizes = paths
        .into_iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|meta| meta.len());
    let chosen = config.memory_images.for_components(sizes);
    if config.memory_images == MemoryImages::Auto {
        tracing::info!(?chosen, "memory images chosen from the apps' component sizes");
    }
    chosen
}

/// A supervisor with no apps (PID 1 when its app folder is unusable keeps its console).
pub fn boot_nothing(config: RuntimeConfig, clock: Arc<dyn Clock>) -> Result<Booted, BootError> {
    let t0 = Instant::now();
    let runtime = Arc::new(Runtime::new(&config)?);
    let t = t0.elapsed();
    Ok(Booted {
        supervisor: Supervisor::new(runtime, AppSet::default(), clock),
        warnings: Vec::new(),
        load_failures: Vec::new(),
        unknown: Vec::new(),
        timings: BootTimings {
            began: t0,
            manifests: Duration::ZERO,
            engine: t,
            loaded: t,
        },
    })
}

impl Booted {
    /// Starts the apps: all of them, or with `only`, those and what they depend on (names
    /// that are not apps go to [`Booted::unknown`]). Returns when every app has been
    /// started (each once its dependencies are up); dropping the future abandons the starts
    /// still waiting.
    pub async fn start(&mut self, only: Option<&[String]>) {
        match only {
            None => self.supervisor.start_all().await,
            Some(names) => self.unknown = self.supervisor.start_only(names).await,
        }
    }

    /// Every app's problems after start-up, each with file, line and column: invalid
    /// manifests (those apps were not started), missing files and components that failed
    /// to load (those apps fail when started), then warnings. The others run.
    pub fn problems(&self) -> Vec<Diagnostic> {
        let mut out: Vec<Diagnostic> = self
            .supervisor
            .rejected()
            .into_iter()
            .flat_map(|r| r.problems.0)
            .collect();
        for name in &self.supervisor.names() {
            if let Ok(d) = self.supervisor.detail(name) {
                let load_error = self
                    .load_failures
                    .iter()
                    .find(|(app, _)| app == name)
                    .map(|(_, e)| e.as_str());
                out.extend(app_problems(&d.manifest, load_error));
            }
        }
        out.extend(self.warnings.iter().cloned());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_images_follow_the_component_sizes_except_for_precompiled_artifacts() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("big.wasm");
        std::fs::write(&big, vec![0u8; MemoryImages::LARGE_COMPONENT as usize]).unwrap();
        let text = format!(
            "manifest_version = 1\n[app]\nname = \"py\"\nversion = \"0.1.0\"\ncomponent = \"{}\"\n",
            big.display()
        );
        let apps = [vyoma_manifest::Manifest::parse(&text, d.path().join("app.toml")).unwrap()];
        let config = RuntimeConfig::default();
        assert_eq!(memory_images(&config, &apps), MemoryImages::Cow);
        assert_eq!(memory_images(&config, &[]), MemoryImages::Copy);
        let image = RuntimeConfig {
            trusted_artifacts: Some(d.path().to_path_buf()),
            ..RuntimeConfig::default()
        };
        assert_eq!(memory_images(&image, &apps), MemoryImages::Copy);
    }
}
