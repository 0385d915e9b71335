//! `vyoma bindings LANG DIR`: what a language's toolchain needs to call `vyoma:app`.
//!
//! - C: wit-bindgen's C bindings for the world `app`, renamed `vyoma` (`vyoma.h`, `vyoma.c`,
//!   and `vyoma_component_type.o`, the object that carries the component types into the
//!   module so the preview-1 adapter knows its imports), and `vyoma_ipc.h`, plain-C helpers
//!   over them (C strings and buffers in, error text out).
//! - Python and JavaScript: the WIT folder (`wit/`); componentize-py and componentize-js
//!   generate their bindings from it when they build, for the world `command`.
//! - Rust: nothing to write; Rust apps depend on the `vyoma-sdk` crate.

use std::path::{Path, PathBuf};

use crate::{BuildError, Lang};

/// The plain-C helpers written beside the generated C bindings.
const C_HELPERS: &str = include_str!("../templates/c/vyoma_ipc.h");

/// Writes `lang`'s bindings into `dir` (made if missing), replacing earlier ones; returns
/// the files written.
pub fn write_bindings(lang: Lang, dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    std::fs::create_dir_all(dir).map_err(BuildError::io(dir))?;
    match lang {
        Lang::C => {
            let files = c_bindings()?;
            crate::write_files(dir, files.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())))
        }
        Lang::Python | Lang::Js => crate::wit::write(&dir.join("wit")),
        Lang::Rust => Err(BuildError::Bindings {
            lang,
            message: "Rust apps need no generated files: depend on the `vyoma-sdk` crate (`vyoma new --lang rust --ipc` does)".into(),
        }),
    }
}

/// The C files: wit-bindgen's output for the world `app` and the helpers.
fn c_bindings() -> Result<Vec<(String, Vec<u8>)>, BuildError> {
    let err = |message: String| BuildError::Bindings { lang: Lang::C, message };
    let (mut resolve, pkg) = crate::wit::resolve().map_err(err)?;
    let world = resolve
        .select_world(&[pkg], Some("app"))
        .map_err(|e| err(format!("{e:#}")))?;
    let opts = wit_bindgen_c::Opts {
        rename_world: Some("vyoma".into()),
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    opts.build()
        .generate(&mut resolve, world, &mut files)
        .map_err(|e| err(format!("{e:#}")))?;
    let mut out: Vec<(String, Vec<u8>)> = files.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect();
    out.push(("vyoma_ipc.h".into(), C_HELPERS.as_bytes().to_vec()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_bindings_are_the_header_source_type_object_and_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_bindings(Lang::C, dir.path()).unwrap();
        let mut names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["vyoma.c", "vyoma.h", "vyoma_component_type.o", "vyoma_ipc.h"]);
        let header = std::fs::read_to_string(dir.path().join("vyoma.h")).unwrap();
        assert!(header.contains("vyoma_app_ipc_request("), "{header}");
        let object = std::fs::read(dir.path().join("vyoma_component_type.o")).unwrap();
        assert!(object.starts_with(b"\0asm"), "a wasm object");
    }

    #[test]
    fn python_and_js_get_the_wit_folder() {
        for lang in [Lang::Python, Lang::Js] {
            let dir = tempfile::tempdir().unwrap();
            let files = write_bindings(lang, dir.path()).unwrap();
            assert!(files.iter().any(|f| f.ends_with("wit/command.wit")), "{files:?}");
        }
    }

    #[test]
    fn rust_needs_none_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_bindings(Lang::Rust, dir.path()).unwrap_err().to_string();
        assert!(e.contains("vyoma-sdk"), "{e}");
    }
}
