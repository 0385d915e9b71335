//! Apps from source: everything between a developer's editor and a component VyomaOS runs.
//!
//! - [`new_app`]: `vyoma new NAME --lang rust|c|python|js [--ipc]` writes an app folder
//!   (manifest, source, and the build command in the manifest's `[build]` table) that builds
//!   and runs as it is.
//! - [`build_app`]: `vyoma build` runs a manifest's `[build]` command and checks it produced
//!   the component the manifest names.
//! - [`write_bindings`]: `vyoma bindings LANG DIR` writes what a language's toolchain needs to
//!   call VyomaOS's own interfaces (`vyoma:app`): C bindings generated with wit-bindgen and a
//!   plain-C helper; the WIT files for componentize-py and componentize-js.
//!
//! Not for: compiling or running components (`vyoma-runtime`), nor installing toolchains
//! (`./dev toolchains` does; this crate finds them on `PATH` and says which is missing).

mod bindings;
mod step;
mod template;
pub mod wit;

use std::path::{Path, PathBuf};

pub use bindings::write_bindings;
pub use step::{BuildReport, Echo, Toolchains, build_app};
pub use template::{NewApp, new_app};

/// The languages VyomaOS writes app templates and bindings for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust, with the `vyoma-sdk` crate; `cargo build --target wasm32-wasip2`.
    Rust,
    /// C with wasi-libc (clang `--target=wasm32-wasi`), adapted from preview 1 when loaded.
    C,
    /// Python, made a component by componentize-py.
    Python,
    /// JavaScript, made a component by componentize-js.
    Js,
}

impl Lang {
    /// Every language, in the order help texts list them.
    pub const ALL: [Lang; 4] = [Lang::Rust, Lang::C, Lang::Python, Lang::Js];

    /// The name `--lang` takes.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }
}

impl Lang {
    /// The memory limit `vyoma new`'s manifest grants: the interpreters' apps (CPython's
    /// heap, SpiderMonkey's) about five times what one uses idle (docs/PERFORMANCE.md).
    pub fn memory_limit(self) -> &'static str {
        match self {
            Lang::Rust | Lang::C => "16 MiB",
            Lang::Python | Lang::Js => "64 MiB",
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Lang, String> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Lang::Rust),
            "c" => Ok(Lang::C),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            _ => Err(format!(
                "unknown language `{}`: use one of {}",
                s.escape_debug(),
                Lang::ALL.map(Lang::name).join(", ")
            )),
        }
    }
}

/// What went wrong making, building or binding an app.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `vyoma new` was given a name that is not an app name.
    #[error(
        "`{0}` is not an app name: use kebab-case (lowercase letters, digits and single dashes, starting with a letter, at most 63 characters)"
    )]
    BadName(String),
    /// `vyoma new` would overwrite something.
    #[error("{} already exists: choose another name, or remove it first", .0.display())]
    Exists(PathBuf),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The build command could not be started.
    #[error("app `{app}`: cannot run its build command `{command}` in {}: {source}", workdir.display())]
    Spawn {
        /// The app.
        app: String,
        /// Its `[build] command`.
        command: String,
        /// Where it was run.
        workdir: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The build command ran and failed.
    #[error("app `{app}`: its build command `{command}` failed ({status}){hint}; its output is above")]
    Failed {
        /// The app.
        app: String,
        /// Its `[build] command`.
        command: String,
        /// How it ended.
        status: std::process::ExitStatus,
        /// What to install, when the shell could not find a command.
        hint: String,
    },
    /// The build command succeeded but the component the manifest names is not there.
    #[error("app `{app}`: the build finished but {} does not exist: make the `[build] command` write it, or fix `component`", component.display())]
    NoComponent {
        /// The app.
        app: String,
        /// The component the manifest names.
        component: PathBuf,
    },
    /// The bindings generator failed (a bug: the WIT is VyomaOS's own).
    #[error("cannot generate the {lang} bindings: {message}")]
    Bindings {
        /// The language.
        lang: Lang,
        /// What the generator said.
        message: String,
    },
}

/// Writes each `(path relative to dir, contents)`, making folders as needed; returns the
/// paths written.
fn write_files<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Vec<PathBuf>, BuildError> {
    let mut out = Vec::new();
    for (rel, contents) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        }
        std::fs::write(&path, contents).map_err(BuildError::io(&path))?;
        out.push(path);
    }
    Ok(out)
}

impl BuildError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
        let path = path.into();
        move |source| BuildError::Io { path, source }
    }
}
