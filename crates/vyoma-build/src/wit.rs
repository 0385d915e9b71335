//! The VyomaOS WIT this `vyoma` was built with (the repository's `wit/` folder), for
//! toolchains that read WIT themselves and for generating bindings.

use std::path::{Path, PathBuf};

use crate::BuildError;

/// Every file of the `wit/` folder: its path in that folder and its text. The `vyoma:app`
/// package (worlds `app` and `command`) and the WASI interfaces it names.
pub const FILES: &[(&str, &str)] = &[
    ("ipc.wit", include_str!("../../../wit/ipc.wit")),
    ("lifecycle.wit", include_str!("../../../wit/lifecycle.wit")),
    ("display.wit", include_str!("../../../wit/display.wit")),
    ("command.wit", include_str!("../../../wit/command.wit")),
    ("deps/io/io.wit", include_str!("../../../wit/deps/io/io.wit")),
    (
        "deps/clocks/clocks.wit",
        include_str!("../../../wit/deps/clocks/clocks.wit"),
    ),
    ("deps/cli/cli.wit", include_str!("../../../wit/deps/cli/cli.wit")),
];

/// Writes the WIT folder to `dir` (made if missing), replacing what is there; returns the
/// files written.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    crate::write_files(dir, FILES.iter().map(|(rel, text)| (*rel, text.as_bytes())))
}

/// The resolved `vyoma:app` package and its dependencies.
pub fn resolve() -> Result<(wit_parser::Resolve, wit_parser::PackageId), String> {
    let group = |prefix: &str| {
        let mut map = wit_parser::SourceMap::default();
        for (rel, text) in FILES.iter().filter(|(rel, _)| {
            if prefix.is_empty() {
                !rel.contains('/')
            } else {
                rel.starts_with(prefix)
            }
        }) {
            map.push_str(rel, *text);
        }
        map.parse().map_err(|(_, e)| e.to_string())
    };
    let deps = vec![group("deps/io/")?, group("deps/clocks/")?, group("deps/cli/")?];
    let main = group("")?;
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_groups(main, deps).map_err(|e| format!("{e:#}"))?;
    Ok((resolve, pkg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the repository's `wit/` folder, relative, sorted.
    fn repo_files(dir: &Path, rel: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir.join(rel)).unwrap() {
            let e = e.unwrap();
            let name = format!("{rel}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                repo_files(dir, &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }

    #[test]
    fn the_embedded_wit_is_the_whole_wit_folder() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
        let mut on_disk = Vec::new();
        repo_files(&root, "", &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(r, _)| r.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "add new WIT files to wit::FILES");
    }

    #[test]
    fn it_resolves_with_both_worlds() {
        let (resolve, pkg) = resolve().unwrap();
        for w in ["app", "command"] {
            resolve.select_world(&[pkg], Some(w)).unwrap();
        }
    }

    #[test]
    fn written_wit_is_what_toolchains_read() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(&dir.path().join("wit")).unwrap();
        assert_eq!(files.len(), FILES.len());
        let mut resolve = wit_parser::Resolve::default();
        let (pkg, _) = resolve.push_dir(dir.path().join("wit")).unwrap();
        resolve.select_world(&[pkg], Some("command")).unwrap();
    }
}
