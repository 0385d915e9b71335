//! The compiler helper end to end: this crate's `vyoma-compile`, packed as the image packs
//! it, compiles components for a supervisor that runs them, its artifacts land in the
//! compile cache, and its failures reach the operator as errors that name the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vyoma_lifecycle::AppState;
use vyoma_runtime::{CacheOutcome, CompilerHelper, PoolingChoice, Runtime, RuntimeConfig, helper_file_name};
use vyoma_supervisor::{RealClock, boot};
use vyoma_testkit::{wasm, write_app};

/// `vyoma-compile`, zstd-compressed into `dir` under the name the image gives it.
fn packed_helper(dir: &Path) -> CompilerHelper {
    let exe = std::fs::read(env!("CARGO_BIN_EXE_vyoma-compile")).unwrap();
    let packed = zstd::bulk::compress(&exe, 3).unwrap();
    let path = dir.join(helper_file_name(&packed));
    std::fs::write(&path, packed).unwrap();
    CompilerHelper::find(dir).expect("the helper just written")
}

fn config(cache: &Path, helper: CompilerHelper) -> RuntimeConfig {
    RuntimeConfig {
        capacity: 8,
        pooling: PoolingChoice::Off,
        cache_dir: Some(cache.to_path_buf()),
        compiler_helper: Some(helper),
        ..RuntimeConfig::default()
    }
}

#[test]
fn the_helper_compiles_into_the_cache_and_a_restart_loads_from_it() {
    let d = tempfile::tempdir().unwrap();
    let helper = packed_helper(d.path());
    let cache = d.path().join("cache");
    let rt = Runtime::new(&config(&cache, helper.clone())).unwrap();
    let dir = rt.cache().dir().unwrap().to_path_buf();
    assert!(
        dir.file_name().unwrap().to_str().unwrap().starts_with("helper-"),
        "a folder of the helper's own: {}",
        dir.display()
    );
    let l = rt.load(&wasm("ticker")).unwrap();
    assert_eq!(l.outcome, CacheOutcome::Compiled);
    assert!(dir.join(format!("{}.cwasm", l.sha256)).is_file());
    drop((l, rt));
    let rt = Runtime::new(&config(&cache, helper)).unwrap();
    assert_eq!(rt.load(&wasm("ticker")).unwrap().outcome, CacheOutcome::Disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_helper_compiles_runs() {
    let d = tempfile::tempdir().unwrap();
    let helper = packed_helper(d.path());
    let apps = d.path().join("apps");
    write_app(
        &apps,
        "greeter",
        "hello",
        "args = [\"compiled apart\"]\n[restart]\npolicy = \"never\"\n",
    );
    let booted = boot(
        &apps,
        config(&d.path().join("cache"), helper),
        Arc::new(RealClock::default()),
    )
    .await
    .unwrap();
    assert!(booted.load_failures.is_empty(), "{:?}", booted.load_failures);
    let sup = booted.supervisor;
    assert!(
        sup.wait_for("greeter", AppState::Exited, Duration::from_secs(60))
            .await
            .unwrap()
    );
    let (lines, _) = sup.log("greeter").unwrap().since(0);
    assert!(
        lines.iter().any(|l| l.text == "hello from VyomaOS: compiled apart"),
        "{lines:?}"
    );
    sup.shutdown().await;
}

#[test]
fn what_the_helper_cannot_compile_is_an_error_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let helper = packed_helper(d.path());
    let rt = Runtime::new(&config(&d.path().join("cache"), helper)).unwrap();
    // A component header with nothing valid after it.
    let bad: PathBuf = d.path().join("broken.wasm");
    std::fs::write(&bad, b"\0asm\x0d\x00\x01\x00\xff\xff").unwrap();
    let e = rt.load(&bad).unwrap_err().to_string();
    assert!(e.starts_with(&format!("cannot compile {}: ", bad.display())), "{e}");
    assert!(e.len() > format!("cannot compile {}: ", bad.display()).len() + 5, "{e}");
}

#[test]
fn the_helper_refuses_arguments_it_does_not_know() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_vyoma-compile"))
        .arg("--fast")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("unknown argument `--fast`") && e.contains("usage"), "{e}");
}
