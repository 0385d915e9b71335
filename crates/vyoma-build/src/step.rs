//! `vyoma build`: runs an app's `[build] command` and checks that it produced the
//! component the manifest names.
//!
//! The command runs with `sh -c` in the build's `workdir`, its output on this terminal (it
//! is the developer's own toolchain talking, not an app), with `PATH` extended by the
//! folder of the running `vyoma` (so commands can call `vyoma bindings`) and by the
//! toolchains `./dev toolchains` installs ([`Toolchains`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vyoma_manifest::Manifest;

use crate::BuildError;

/// Folders put in front of `PATH` for build commands.
#[derive(Debug, Clone, Default)]
pub struct Toolchains {
    /// In search order.
    pub path: Vec<PathBuf>,
}

impl Toolchains {
    /// The folder of the running `vyoma`, then the toolchains under `root` that exist
    /// (`python/bin` for componentize-py, `js/node_modules/.bin` for componentize-js).
    pub fn find(vyoma_exe: Option<&Path>, root: Option<&Path>) -> Toolchains {
        let mut path = Vec::new();
        if let Some(dir) = vyoma_exe.and_then(Path::parent) {
            path.push(dir.to_path_buf());
        }
        if let Some(root) = root {
            for rel in ["python/bin", "js/node_modules/.bin"] {
                let d = root.join(rel);
                if d.is_dir() {
                    path.push(d);
                }
            }
        }
        Toolchains { path }
    }

    /// Where `./dev toolchains` installs componentize-py and componentize-js:
    /// `$VYOMA_TOOLCHAINS`, else `$XDG_CACHE_HOME/vyoma/toolchains`, else
    /// `~/.cache/vyoma/toolchains` (`None` without any of those variables).
    pub fn default_root() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("VYOMA_TOOLCHAINS") {
            return Some(p.into());
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(cache.join("vyoma/toolchains"))
    }

    /// `PATH` for a build command: these folders, then the inherited `PATH`.
    fn search_path(&self) -> std::ffi::OsString {
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        let all = self.path.iter().cloned().chain(std::env::split_paths(&inherited));
        std::env::join_paths(all).unwrap_or(inherited)
    }
}

/// Where a build command's standard output goes (its errors always go to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// This process's stdout: `vyoma build`.
    Stdout,
    /// This process's stderr, for callers whose stdout is a report (the benchmarks).
    Stderr,
}

/// What one build made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildReport {
    /// The app.
    pub app: String,
    /// Its component, as the manifest names it.
    pub component: PathBuf,
    /// The component's size in bytes.
    pub bytes: u64,
    /// How long the command ran.
    pub elapsed: Duration,
}

/// Runs `m`'s build, if it has one (`Ok(None)` if not).
pub fn build_app(m: &Manifest, tools: &Toolchains, echo: Echo) -> Result<Option<BuildReport>, BuildError> {
    let Some(step) = &m.build else { return Ok(None) };
    let command = &step.command.value;
    tracing::info!(app = %m.name, %command, workdir = %step.workdir.display(), "building");
    let started = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(&step.workdir)
        .env("PATH", tools.search_path())
        .env("VYOMA_APP", &m.name)
        .stdin(Stdio::null())
        .stdout(match echo {
            Echo::Stdout => Stdio::inherit(),
            Echo::Stderr => std::io::stderr().into(),
        })
        .status()
        .map_err(|source| BuildError::Spawn {
            app: m.name.clone(),
            command: command.clone(),
            workdir: step.workdir.clone(),
            source,
        })?;
    let elapsed = started.elapsed();
    if !status.success() {
        // `sh` exits 127 when it cannot find a command: say where each toolchain comes from.
        let hint = if status.code() == Some(127) {
            " (a command was not found: `./dev toolchains` installs clang, componentize-py and \
             componentize-js, and rustup the wasm32-wasip2 target; see docs/languages.md)"
                .to_string()
        } else {
            String::new()
        };
        return Err(BuildError::Failed {
            app: m.name.clone(),
            command: command.clone(),
            status,
            hint,
        });
    }
    let component = m.component.value.clone();
    let bytes = match std::fs::metadata(&component) {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => {
            return Err(BuildError::NoComponent {
                app: m.name.clone(),
                component,
            });
        }
    };
    Ok(Some(BuildReport {
        app: m.name.clone(),
        component,
        bytes,
        elapsed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &Path, build: &str) -> Manifest {
        let text = format!(
            "manifest_version = 1\n[app]\nname = \"b\"\nversion = \"0.1.0\"\ncomponent = \"out/b.wasm\"\n{build}"
        );
        let path = dir.join("app.toml");
        std::fs::write(&path, &text).unwrap();
        Manifest::load(dir).unwrap()
    }

    #[test]
    fn the_command_runs_in_the_workdir_and_its_component_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        let m = manifest(
            dir.path(),
            "[build]\nworkdir = \"src\"\ncommand = \"mkdir -p ../out && printf \\\"$VYOMA_APP\\\" > ../out/b.wasm\"",
        );
        let r = build_app(&m, &Toolchains::default(), Echo::Stdout).unwrap().unwrap();
        assert_eq!(r.app, "b");
        assert_eq!(r.component, dir.path().join("out/b.wasm"));
        assert_eq!(r.bytes, 1);
    }

    #[test]
    fn no_build_table_is_no_build() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            build_app(&manifest(dir.path(), ""), &Toolchains::default(), Echo::Stdout).unwrap(),
            None
        );
    }

    #[test]
    fn a_failing_command_says_which_app_and_command() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path(), "[build]\ncommand = \"exit 3\"");
        let e = build_app(&m, &Toolchains::default(), Echo::Stdout)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("app `b`: its build command `exit 3` failed (exit status: 3)"),
            "{e}"
        );
        let m = manifest(dir.path(), "[build]\ncommand = \"no-such-compiler-anywhere\"");
        let e = build_app(&m, &Toolchains::default(), Echo::Stdout)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a command was not found: `./dev toolchains` installs"),
            "{e}"
        );
    }

    #[test]
    fn a_build_that_writes_no_component_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path(), "[build]\ncommand = \"true\"");
        let e = build_app(&m, &Toolchains::default(), Echo::Stdout)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the build finished but") && e.contains("out/b.wasm does not exist"),
            "{e}"
        );
    }

    #[test]
    fn toolchains_put_vyoma_and_the_installed_tools_first() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("python/bin")).unwrap();
        let t = Toolchains::find(Some(Path::new("/opt/vyoma/bin/vyoma")), Some(root.path()));
        assert_eq!(
            t.path,
            [PathBuf::from("/opt/vyoma/bin"), root.path().join("python/bin")]
        );
        let path = t.search_path();
        assert!(path.to_string_lossy().starts_with("/opt/vyoma/bin:"), "{path:?}");
    }
}
