//! Helpers shared by VyomaOS's integration tests: where the guest apps built by
//! `./dev apps` are, and writing app folders with manifests for them.
//!
//! For tests only (a dev-dependency); nothing here runs in the product.

pub mod golden;

use std::path::{Path, PathBuf};

/// The built guest component `apps/target/wasm32-wasip2/release/NAME.wasm`, absolute.
/// Panics with the command to run when it is missing.
pub fn wasm(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../apps/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        p.is_file(),
        "{} is missing: build the test apps with `./dev apps`",
        p.display()
    );
    p.canonicalize().expect("canonical path of a file that exists")
}

/// Writes `root/NAME/app.toml` for an app running guest `component`, with `extra` manifest
/// text appended after the `[app]` keys. Returns the app folder.
pub fn write_app(root: &Path, name: &str, component: &str, extra: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("creating the app folder");
    let text = format!(
        "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"{}\"\n{extra}",
        wasm(component).display()
    );
    std::fs::write(dir.join("app.toml"), text).expect("writing app.toml");
    dir
}

/// A compile cache shared by all tests of one test binary, so each component is compiled
/// once per test run rather than once per test.
pub fn shared_cache(target_tmpdir: &str) -> PathBuf {
    Path::new(target_tmpdir).join("compile-cache")
}

/// A component whose start function never returns: instantiation itself hangs, the way a
/// component stuck in its initialisation would. It is a command (it exports
/// `wasi:cli/run`), so only a start timeout can end it.
pub fn hanging_start_component() -> Vec<u8> {
    const WAT: &str = r#"
(component
  (core module $m
    (func $spin (loop $l (br $l)))
    (start $spin)
    (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
"#;
    wat::parse_str(WAT).expect("the hanging component's text is valid")
}

/// Writes `root/NAME/` with `hanging_start_component()` as `NAME.wasm` and a manifest with
/// `extra` appended. Returns the app folder.
pub fn write_hanging_app(root: &Path, name: &str, extra: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("creating the app folder");
    std::fs::write(dir.join(format!("{name}.wasm")), hanging_start_component()).expect("writing the component");
    write_manifest_beside(&dir, name, extra);
    dir
}

/// Writes `dir/app.toml` for app `name` running `NAME.wasm` in the same folder, with
/// `extra` appended after the `[app]` keys.
fn write_manifest_beside(dir: &Path, name: &str, extra: &str) {
    std::fs::write(
        dir.join("app.toml"),
        format!(
            "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"{name}.wasm\"\n{extra}"
        ),
    )
    .expect("writing app.toml");
}

/// A fresh folder under `target_tmpdir` standing for a user's home: the client config and
/// API credentials a `vyoma` under test writes go there, never into the real home.
pub fn fresh_home(target_tmpdir: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix("home")
        .tempdir_in(target_tmpdir)
        .expect("a folder under the test's target dir")
        .keep()
}

/// `binary ARGS` set up for tests: the shared compile cache, a management API and an HTTP
/// gateway on free loopback ports, and the API's client config and credentials in `home` (see [`fresh_home`]).
pub fn vyoma_command(binary: &str, target_tmpdir: &str, home: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(binary);
    c.args(args)
        .env("VYOMA_CACHE_DIR", shared_cache(target_tmpdir))
        .env("VYOMA_API", "127.0.0.1:0")
        .env("VYOMA_HTTP", "127.0.0.1:0")
        .env("VYOMA_CONFIG", home.join("client.toml"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("VYOMA_TOKEN")
        .env_remove("VYOMA_LOG");
    c
}

/// A plain C program (no VyomaOS headers) for the WASI preview-1 tests: it prints its
/// arguments and `GREETING`, reads `/data/in.txt`, writes `/data/out.txt`, tries a path
/// outside its grant, and exits with code 3.
pub const PREVIEW1_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  printf("p1: argc=%d", argc);
  for (int i = 1; i < argc; i++) printf(" [%s]", argv[i]);
  const char *g = getenv("GREETING");
  printf(" GREETING=%s\n", g ? g : "(unset)");
  FILE *f = fopen("/data/in.txt", "r");
  if (f) {
    char buf[64];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    printf("p1: read [%s]\n", buf);
    fclose(f);
  } else {
    printf("p1: cannot read /data/in.txt\n");
  }
  FILE *o = fopen("/data/out.txt", "w");
  if (o) { fputs("written by a preview-1 module", o); fclose(o); }
  printf("p1: /etc/passwd %s\n", fopen("/etc/passwd", "r") ? "OPENED" : "denied");
  printf("p1: ../escape %s\n", fopen("/data/../../escape.txt", "w") ? "OPENED" : "denied");
  fflush(stdout);
  return 3;
}
"#;

/// Builds C `source` into a WASI preview-1 command module `out_dir/NAME.wasm` with plain
/// clang (Debian's `clang-19`, `lld-19`, `wasi-libc` and `libclang-rt-19-dev-wasm32`,
/// which `./dev test` installs). Panics with the command to run when they are missing.
pub fn build_c_preview1(out_dir: &Path, name: &str, source: &str) -> PathBuf {
    std::fs::create_dir_all(out_dir).expect("creating the output folder");
    let c = out_dir.join(format!("{name}.c"));
    let wasm = out_dir.join(format!("{name}.wasm"));
    std::fs::write(&c, source).expect("writing the C source");
    let out = std::process::Command::new("clang-19")
        .args(["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-o"])
        .arg(&wasm)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run clang-19 ({e}): install the C toolchain for wasm with \
                 `apt-get install clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32` (./dev test does)"
            )
        });
    assert!(
        out.status.success(),
        "clang-19 could not build {}:\n{}",
        c.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    wasm
}

/// Writes `root/NAME/` with C `source` built as `NAME.wasm` ([`build_c_preview1`]) and a
/// manifest with `extra` appended. Returns the module's path.
pub fn write_c_preview1_app(root: &Path, name: &str, source: &str, extra: &str) -> PathBuf {
    let dir = root.join(name);
    let module = build_c_preview1(&dir, name, source);
    write_manifest_beside(&dir, name, extra);
    module
}
