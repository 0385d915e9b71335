//! `vyoma new NAME --lang LANG [--ipc]`: a new app folder that builds and runs as it is.
//!
//! Every template is the same two programs in each language: *hello* prints its arguments
//! and environment and ends; *ipc* answers requests (`@NAME: hi` in the console), first
//! asking the app its first argument names, if any. The manifest records the build command
//! (`[build]`) and grants exactly what the program uses.

use std::path::{Path, PathBuf};

use crate::{BuildError, Lang};

/// Where and what `vyoma new` makes.
#[derive(Debug, Clone)]
pub struct NewApp<'a> {
    /// The folder the app folder is made in.
    pub parent: &'a Path,
    /// The app's name, also its folder's name.
    pub name: &'a str,
    /// Its language.
    pub lang: Lang,
    /// Whether it uses IPC (the *ipc* program) rather than printing and ending (*hello*).
    pub ipc: bool,
    /// The `vyoma-sdk` crate's folder, which a Rust IPC app depends on by path.
    pub rust_sdk: &'a Path,
}

/// Makes the app folder; returns its files.
pub fn new_app(app: &NewApp<'_>) -> Result<Vec<PathBuf>, BuildError> {
    let name = app.name;
    if !vyoma_manifest::is_valid_name(name) || vyoma_manifest::RESERVED_NAMES.contains(&name) {
        return Err(BuildError::BadName(name.to_string()));
    }
    let dir = app.parent.join(name);
    if dir.exists() {
        return Err(BuildError::Exists(dir));
    }
    let fill = |t: &str, own_name: &str| t.replace(own_name, name);
    let program = program(app.lang, app.ipc);
    let mut files: Vec<(&str, String)> = vec![
        ("app.toml", manifest(app)),
        (program.file, fill(program.source, program.own_name)),
        (".gitignore", program.ignore.into()),
    ];
    if app.lang == Lang::Rust {
        let deps = if app.ipc {
            format!("vyoma-sdk = {{ path = {:?} }}\n", app.rust_sdk.display().to_string())
        } else {
            String::new()
        };
        let cargo = fill(include_str!("../templates/rust/Cargo.toml"), "@NAME@").replace("@DEPS@\n", &deps);
        files.push(("Cargo.toml", cargo));
    }
    crate::write_files(&dir, files.iter().map(|(rel, text)| (*rel, text.as_bytes())))
}

/// A program's file in the app folder, its source, the name that source uses for itself
/// (replaced by the new app's), and the `.gitignore` for what its build writes. The C,
/// Python and JavaScript sources are the `examples/languages` apps, so the examples are
/// exactly what `vyoma new` makes.
struct Program {
    file: &'static str,
    source: &'static str,
    own_name: &'static str,
    ignore: &'static str,
}

fn program(lang: Lang, ipc: bool) -> Program {
    macro_rules! example {
        ($file:literal, $name:literal, $ignore:literal) => {
            Program {
                file: $file,
                source: include_str!(concat!("../../../examples/languages/", $name, "/", $file)),
                own_name: $name,
                ignore: $ignore,
            }
        };
    }
    let rust = |source| Program {
        file: "src/main.rs",
        source,
        own_name: "@NAME@",
        ignore: "/target\n/*.wasm\n",
    };
    match (lang, ipc) {
        (Lang::Rust, false) => rust(include_str!("../templates/rust/hello.rs")),
        (Lang::Rust, true) => rust(include_str!("../templates/rust/ipc.rs")),
        (Lang::C, false) => example!("main.c", "c-hello", "/*.wasm\n"),
        (Lang::C, true) => example!("main.c", "c-ipc", "/*.wasm\n/vyoma/\n"),
        (Lang::Python, false) => example!("app.py", "py-hello", "/*.wasm\n/wit/\n__pycache__/\n"),
        (Lang::Python, true) => example!("app.py", "py-ipc", "/*.wasm\n/wit/\n__pycache__/\n"),
        (Lang::Js, false) => example!("app.js", "js-hello", "/*.wasm\n/wit/\n"),
        (Lang::Js, true) => example!("app.js", "js-ipc", "/*.wasm\n/wit/\n"),
    }
}

/// The shell command that builds `name`'s component `NAME.wasm` in its folder.
pub fn build_command(lang: Lang, ipc: bool, name: &str) -> String {
    match (lang, ipc) {
        (Lang::Rust, _) => format!(
            "cargo build --target wasm32-wasip2 --release && cp \"${{CARGO_TARGET_DIR:-target}}/wasm32-wasip2/release/{name}.wasm\" {name}.wasm"
        ),
        (Lang::C, false) => format!("clang-19 --target=wasm32-wasi --sysroot=/usr -O2 -o {name}.wasm main.c"),
        (Lang::C, true) => format!(
            "vyoma bindings c vyoma && clang-19 --target=wasm32-wasi --sysroot=/usr -O2 -Ivyoma -o {name}.wasm main.c vyoma/vyoma.c vyoma/vyoma_component_type.o"
        ),
        (Lang::Python, _) => {
            format!("vyoma bindings python . && componentize-py -d wit -w command componentize app -o {name}.wasm")
        }
        (Lang::Js, _) => {
            format!("vyoma bindings js . && componentize-js app.js --wit wit --world-name command -o {name}.wasm")
        }
    }
}

fn manifest(app: &NewApp<'_>) -> String {
    let name = app.name;
    let what = match app.lang {
        Lang::Rust => "Rust",
        Lang::C => "C",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    };
    let memory = app.lang.memory_limit();
    let does = if app.ipc {
        "answers requests over IPC"
    } else {
        "prints its arguments and environment"
    };
    let command = build_command(app.lang, app.ipc, name);
    let mut s = format!(
        r#"manifest_version = 1

[app]
name = "{name}"
version = "0.1.0"
description = "{does} ({what})"
component = "{name}.wasm"
"#
    );
    if app.ipc {
        s += r#"# args = ["echo"]                  # an app to ask before answering (grant it in `send`)
"#;
    }
    s += &format!(
        r#"
[build]                             # `vyoma build` runs it; see docs/languages.md
command = {command:?}

[limits]
memory = "{memory}"
"#
    );
    if app.ipc {
        s += r#"
[restart]
policy = "always"                   # a server: started again whenever it ends

[capabilities.ipc]
accept = ["*"]                      # requests from every app (the console always may)
send = []                           # apps it may ask: add the one in `args`
"#;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(parent: &Path, name: &str, lang: Lang, ipc: bool) -> Result<Vec<PathBuf>, BuildError> {
        new_app(&NewApp {
            parent,
            name,
            lang,
            ipc,
            rust_sdk: Path::new("/src/apps/vyoma-sdk"),
        })
    }

    #[test]
    fn every_template_has_a_valid_manifest_naming_its_build() {
        let dir = tempfile::tempdir().unwrap();
        for lang in Lang::ALL {
            for ipc in [false, true] {
                let name = format!("new-{lang}-{}", if ipc { "ipc" } else { "hello" });
                let files = new(dir.path(), &name, lang, ipc).unwrap();
                let m = vyoma_manifest::Manifest::load(&dir.path().join(&name)).unwrap();
                assert_eq!(m.name, name);
                let build = m.build.as_ref().expect("a [build] table");
                assert_eq!(build.command.value, build_command(lang, ipc, &name));
                assert_eq!(build.workdir, dir.path().join(&name));
                assert_eq!(m.component.value, dir.path().join(&name).join(format!("{name}.wasm")));
                assert_eq!(
                    matches!(m.capabilities.ipc.accept, vyoma_manifest::Peers::Any(_)),
                    ipc,
                    "{name}"
                );
                for f in &files {
                    let text = std::fs::read_to_string(f).unwrap();
                    assert!(!text.contains("@NAME@") && !text.contains("@DEPS@"), "{}", f.display());
                }
                let p = program(lang, ipc);
                let source = std::fs::read_to_string(dir.path().join(&name).join(p.file)).unwrap();
                assert!(
                    source.contains(&name) && !source.replace(&name, "").contains(p.own_name),
                    "{name}: {source}"
                );
            }
        }
    }

    #[test]
    fn docs_ipc_shows_every_ipc_template_as_it_is() {
        let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ipc.md")).unwrap();
        for lang in Lang::ALL {
            let p = program(lang, true);
            let code = p.source.replace(p.own_name, "greeter");
            assert!(
                doc.contains(&code),
                "docs/ipc.md lacks the {lang} IPC app as `vyoma new` writes it"
            );
        }
    }

    #[test]
    fn a_rust_ipc_app_depends_on_the_sdk_by_path() {
        let dir = tempfile::tempdir().unwrap();
        new(dir.path(), "svc", Lang::Rust, true).unwrap();
        let cargo = std::fs::read_to_string(dir.path().join("svc/Cargo.toml")).unwrap();
        assert!(
            cargo.contains("vyoma-sdk = { path = \"/src/apps/vyoma-sdk\" }"),
            "{cargo}"
        );
        new(dir.path(), "plain", Lang::Rust, false).unwrap();
        let cargo = std::fs::read_to_string(dir.path().join("plain/Cargo.toml")).unwrap();
        assert!(!cargo.contains("vyoma-sdk"), "{cargo}");
    }

    #[test]
    fn bad_names_and_existing_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["Web", "a--b", "console", "", "../x"] {
            let e = new(dir.path(), bad, Lang::C, false).unwrap_err();
            assert!(matches!(e, BuildError::BadName(_)), "{bad}: {e}");
        }
        new(dir.path(), "twice", Lang::C, false).unwrap();
        let e = new(dir.path(), "twice", Lang::Python, false).unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
    }
}
