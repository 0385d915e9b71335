//! WASI preview-1 command modules (what `wasm32-wasip1` toolchains emit: Go, TinyGo, Zig,
//! C with wasi-libc, and many existing `.wasm` files), turned into components when loaded:
//! the module wrapped with the preview-1 command adapter Wasmtime 48 ships
//! (`wasi-preview1-component-adapter-provider`), by `wit-component`. The result is an
//! ordinary `wasi:cli/command` component: it is compiled, cached, granted and sandboxed like
//! any other app.
//!
//! A module may also import component interfaces (VyomaOS's `vyoma:app/ipc`, say) when it
//! carries their types in a `component-type` custom section, as wit-bindgen's C bindings
//! link in: `wit-component` checks those imports against that section.
//!
//! What it is not for: modules that are not preview-1 commands (a reactor, a library, a
//! module importing anything but `wasi_snapshot_preview1` without a component type to say
//! what it is): they are refused naming what is wrong. Only with the `adapt` feature (the image's supervisor has none: `vyoma deploy` and
//! `vyoma image build` adapt before the device sees the bytes).

use std::path::Path;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

use crate::RuntimeError;

/// What makes a core module a preview-1 command: the only module its imports come from,
/// and the entry point it exports.
const PREVIEW1: &str = WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME;
const START: &str = "_start";

/// The custom sections wit-bindgen writes with the component types of a module's imports
/// and exports are named this, plus a suffix.
const COMPONENT_TYPE: &str = "component-type";

/// Why `module` is not a preview-1 command module, if it is not.
fn not_a_command(module: &[u8]) -> Option<String> {
    let (mut start, mut memory, mut typed) = (false, false, false);
    // The first import a preview-1 command cannot have: a problem unless a component-type
    // section (usually the module's last) types the module's imports.
    let mut untyped = None;
    for payload in Parser::new(0).parse_all(module) {
        match payload {
            Ok(Payload::ImportSection(imports)) => {
                for import in imports.into_imports() {
                    let import = match import {
                        Ok(i) => i,
                        Err(e) => return Some(format!("its import section is malformed: {e}")),
                    };
                    if untyped.is_some() {
                        continue;
                    }
                    if import.module != PREVIEW1 {
                        untyped = Some(format!(
                            "it imports `{}` from module `{}`; a preview-1 command imports only from \
                             `{PREVIEW1}`, unless a `{COMPONENT_TYPE}` section (wit-bindgen's) types its other imports",
                            import.name.escape_debug(),
                            import.module.escape_debug()
                        ));
                    } else if !matches!(import.ty, TypeRef::Func(_)) {
                        untyped = Some(format!(
                            "it imports `{PREVIEW1}.{}` as something other than a function",
                            import.name.escape_debug()
                        ));
                    }
                }
            }
            Ok(Payload::CustomSection(c)) if c.name().starts_with(COMPONENT_TYPE) => typed = true,
            Ok(Payload::ExportSection(exports)) => {
                for export in exports {
                    match export {
                        Ok(e) if e.name == START && e.kind == ExternalKind::Func => start = true,
                        Ok(e) if e.name == "memory" && e.kind == ExternalKind::Memory => memory = true,
                        Ok(_) => {}
                        Err(e) => return Some(format!("its export section is malformed: {e}")),
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                return Some(
                    untyped
                        .filter(|_| !typed)
                        .unwrap_or_else(|| format!("it is not valid wasm: {e}")),
                );
            }
        }
    }
    if let Some(why) = untyped.filter(|_| !typed) {
        return Some(why);
    }
    if !start {
        return Some(format!(
            "it exports no `{START}` function: a reactor or a library, not a command"
        ));
    }
    if !memory {
        return Some("it exports no memory named `memory`, which the preview-1 adapter needs".into());
    }
    None
}

/// The component for the preview-1 command module `module` (read from `origin`).
pub(crate) fn preview1_command(module: &[u8], origin: &Path) -> Result<Vec<u8>, RuntimeError> {
    if let Some(why) = not_a_command(module) {
        return Err(RuntimeError::NotPreview1 {
            path: origin.to_path_buf(),
            why,
        });
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|e| {
            e.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
            )
        })
        .and_then(|mut e| e.encode())
        .map_err(|e| RuntimeError::NotPreview1 {
            path: origin.to_path_buf(),
            why: format!("the preview-1 adapter cannot wrap it: {}", one_line(&format!("{e:#}"))),
        })
}

/// wit-component's errors can run over several lines; a diagnostic is one.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    const COMMAND: &str = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start") (call $exit (i32.const 7))))"#;

    #[test]
    fn a_preview1_command_becomes_a_command_component() {
        let c = preview1_command(&module(COMMAND), Path::new("p1.wasm")).unwrap();
        assert!(wasmparser::Parser::is_component(&c));
        let text = String::from_utf8_lossy(&c);
        assert!(text.contains("wasi:cli/run@0.2"), "exports the command's run");
    }

    /// A command that also imports `t:t/i.f`, typed (or not) by a `component-type` section.
    fn typed_command(world: &str) -> Vec<u8> {
        let mut m = module(
            r#"(module
                (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (import "t:t/i" "f" (func $f))
                (memory (export "memory") 1)
                (func (export "_start") (call $f) (call $exit (i32.const 0))))"#,
        );
        let mut resolve = wit_parser::Resolve::default();
        let pkg = resolve.push_str("t.wit", world).unwrap();
        let w = resolve.select_world(&[pkg], Some("w")).unwrap();
        wit_component::embed_component_metadata(&mut m, &resolve, w, wit_component::StringEncoding::UTF8).unwrap();
        m
    }

    #[test]
    fn a_command_with_typed_imports_becomes_a_component_importing_them() {
        let m = typed_command("package t:t; interface i { f: func(); } world w { import i; }");
        let c = preview1_command(&m, Path::new("typed.wasm")).unwrap();
        let text = String::from_utf8_lossy(&c);
        assert!(text.contains("t:t/i"), "imports the typed interface");
        assert!(text.contains("wasi:cli/run@0.2"));
    }

    #[test]
    fn a_typed_import_its_types_do_not_name_is_refused() {
        let m = typed_command("package t:t; interface i { g: func(); } world w { import i; }");
        let e = preview1_command(&m, Path::new("typed.wasm")).unwrap_err().to_string();
        assert!(e.contains("the preview-1 adapter cannot wrap it"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn other_core_modules_are_refused_saying_why() {
        let cases = [
            (
                r#"(module (import "env" "f" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
                "it imports `f` from module `env`",
            ),
            (
                r#"(module (memory (export "memory") 1) (func (export "_initialize")))"#,
                "exports no `_start` function: a reactor or a library, not a command",
            ),
            (
                r#"(module (func (export "_start")))"#,
                "exports no memory named `memory`",
            ),
        ];
        for (wat, want) in cases {
            let e = preview1_command(&module(wat), Path::new("dir/m.wasm")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("dir/m.wasm is a core wasm module"), "{msg}");
            assert!(msg.contains(want), "{msg}");
        }
        let e = preview1_command(b"\0asm\x01\0\0\0\x01\xff", Path::new("x.wasm")).unwrap_err();
        assert!(e.to_string().contains("not valid wasm"), "{e}");
    }
}
