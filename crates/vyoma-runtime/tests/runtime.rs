//! Tests of the runtime on its own: the compile cache, component sharing, rejection of
//! non-components, and the pooling allocator's fallback.

use std::path::Path;
use std::sync::Arc;

use vyoma_runtime::{Allocator, CacheOutcome, PoolingChoice, Runtime, RuntimeConfig, RuntimeError};
use vyoma_testkit::wasm;

fn config(cache: &Path) -> RuntimeConfig {
    RuntimeConfig {
        capacity: 8,
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    }
}

#[test]
fn compiles_once_then_loads_from_memory_and_disk() {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(&config(cache.path())).unwrap();
    let a = rt.load(&wasm("hello")).unwrap();
    assert_eq!(a.outcome, CacheOutcome::Compiled);
    // Same bytes again in this process: the very same loaded component.
    let b = rt.load(&wasm("hello")).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(
        a.info.exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2")),
        "{:?}",
        a.info.exports
    );
    assert!(
        a.info.imports.iter().any(|i| i.starts_with("wasi:cli/stdout@0.2")),
        "{:?}",
        a.info.imports
    );
    let entries: Vec<_> = std::fs::read_dir(rt.cache().dir().unwrap()).unwrap().collect();
    assert_eq!(entries.len(), 1);
    drop((a, b));
    // A new runtime (a new process, a restart) finds it on disk: no compilation.
    let rt2 = Runtime::new(&config(cache.path())).unwrap();
    assert_eq!(rt2.cache().dir(), rt.cache().dir(), "same engine, same cache folder");
    assert_eq!(rt2.load(&wasm("hello")).unwrap().outcome, CacheOutcome::Disk);
}

#[test]
fn a_corrupt_cache_entry_is_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(&config(cache.path())).unwrap();
    let sha = rt.load(&wasm("ticker")).unwrap().sha256.clone();
    drop(rt);
    let file = std::fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join(format!("{sha}.cwasm"));
    assert!(file.is_file());
    std::fs::write(&file, b"\x7fELF garbage that is not an artifact").unwrap();
    let rt = Runtime::new(&config(cache.path())).unwrap();
    let l = rt.load(&wasm("ticker")).unwrap();
    assert_eq!(l.outcome, CacheOutcome::Compiled);
    assert!(
        std::fs::metadata(&file).unwrap().len() > 1000,
        "entry rewritten with a real artifact"
    );
}

#[test]
fn non_components_are_refused_clearly() {
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(&config(cache.path())).unwrap();
    let d = tempfile::tempdir().unwrap();
    let core = d.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let e = rt.load(&core).unwrap_err();
    assert!(matches!(e, RuntimeError::CoreModule { .. }), "{e}");
    assert!(e.to_string().contains("build it with `--target wasm32-wasip2`"));
    let junk = d.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let e = rt.load(&junk).unwrap_err();
    assert!(matches!(e, RuntimeError::Compile { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!("cannot compile {}", junk.display())),
        "{e}"
    );
    let e = rt.load(&d.path().join("missing.wasm")).unwrap_err();
    assert!(matches!(e, RuntimeError::Read { .. }), "{e}");
}

#[test]
fn pooling_is_used_when_it_fits_and_falls_back_when_not() {
    let rt = Runtime::new(&RuntimeConfig {
        capacity: 16,
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(rt.allocator(), Allocator::Pooling { capacity: 16 });
    // 100k slots of 4 GiB memories is far past the 128 TiB user address space.
    let big = Runtime::new(&RuntimeConfig {
        capacity: 100_000,
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(big.allocator(), Allocator::OnDemand);
    let off = Runtime::new(&RuntimeConfig {
        capacity: 16,
        pooling: PoolingChoice::Off,
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(off.allocator(), Allocator::OnDemand);
    // Both kinds run the same component.
    assert!(big.load(&wasm("hello")).is_ok());
}

#[test]
fn precompiled_artifacts_load_only_when_trusted_and_only_for_their_engine() {
    let d = tempfile::tempdir().unwrap();
    let source = wasm("hello");
    let bytes = std::fs::read(&source).unwrap();
    // What `vyoma image build` makes for the image's supervisor.
    let for_image = vyoma_runtime::precompile_for_image(&bytes, &source).unwrap();
    let image_file = d.path().join("hello.cwasm");
    std::fs::write(&image_file, &for_image).unwrap();

    // A hosted supervisor never runs machine code it did not compile itself.
    let hosted = Runtime::new(&config(d.path())).unwrap();
    let e = hosted.load(&image_file).unwrap_err();
    assert!(matches!(e, RuntimeError::Untrusted { .. }), "{e}");
    assert!(e.to_string().contains("only loaded from a VyomaOS image"), "{e}");

    // The image's supervisor takes it: the image builder's engine settings are the
    // runtime's own (x86_64 code is the same for the musl and gnu targets).
    let trusting = Runtime::new(&RuntimeConfig {
        trust_precompiled: true,
        ..config(d.path())
    })
    .unwrap();
    let loaded = trusting.load(&image_file).unwrap();
    assert_eq!(loaded.outcome, CacheOutcome::Image);

    // One made by an engine with other settings (another Wasmtime configuration or
    // version) is refused with a clear error, never run.
    let other = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
    let foreign = d.path().join("foreign.cwasm");
    std::fs::write(&foreign, other.precompile_component(&bytes).unwrap()).unwrap();
    let e = trusting.load(&foreign).unwrap_err();
    assert!(matches!(e, RuntimeError::Incompatible { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("foreign.cwasm was precompiled for a different engine") && msg.contains("vyoma image build"),
        "{msg}"
    );
}
