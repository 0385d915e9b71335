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
    // The engine's folder (the cache root also holds the installation's key).
    let file = rt.cache().dir().unwrap().join(format!("{sha}.cwasm"));
    drop(rt);
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
    assert!(matches!(e, RuntimeError::NotPreview1 { .. }), "{e}");
    assert!(
        e.to_string().contains("exports no `_start` function") && e.to_string().contains("`--target wasm32-wasip2`"),
        "{e}"
    );
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
fn precompiled_artifacts_load_only_from_the_trusted_folder_with_their_recorded_hash() {
    let d = tempfile::tempdir().unwrap();
    let lib = d.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    let source = wasm("hello");
    let bytes = std::fs::read(&source).unwrap();
    // What `vyoma image build` makes for the image's supervisor, named as it names it.
    let for_image = vyoma_runtime::precompile_for_image(&bytes, &source).unwrap();
    let image_file = lib.join(vyoma_runtime::image_artifact_name("hello", &for_image));
    std::fs::write(&image_file, &for_image).unwrap();

    // A hosted supervisor never runs machine code it did not compile itself.
    let hosted = Runtime::new(&config(&d.path().join("cache"))).unwrap();
    let e = hosted.load(&image_file).unwrap_err();
    assert!(matches!(e, RuntimeError::Untrusted { .. }), "{e}");
    assert!(
        e.to_string().contains("only loaded by a VyomaOS image's supervisor"),
        "{e}"
    );

    // The image's supervisor takes it from its own folder: the image builder's engine
    // settings are the runtime's own (x86_64 code is the same for musl and gnu targets).
    let trusting = Runtime::new(&RuntimeConfig {
        trusted_artifacts: Some(lib.clone()),
        ..config(&d.path().join("cache"))
    })
    .unwrap();
    assert_eq!(trusting.load(&image_file).unwrap().outcome, CacheOutcome::Image);

    // Not from anywhere else, even with the right name.
    let elsewhere = d.path().join(image_file.file_name().unwrap());
    std::fs::write(&elsewhere, &for_image).unwrap();
    assert!(matches!(
        trusting.load(&elsewhere).unwrap_err(),
        RuntimeError::Untrusted { .. }
    ));

    // Not when its bytes are not the ones the builder recorded.
    let mut damaged = for_image.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    let damaged_file = lib.join(vyoma_runtime::image_artifact_name("hello", &for_image).replace("hello", "copy"));
    std::fs::write(&damaged_file, &damaged).unwrap();
    let e = trusting.load(&damaged_file).unwrap_err();
    assert!(matches!(e, RuntimeError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("rebuild the image"), "{e}");
    assert!(e.to_string().contains("its XXH3-128 is"), "{e}");
    // Nor when its name records no hash to check it against, even with the right bytes.
    let unnamed = lib.join("hello.cwasm");
    std::fs::write(&unnamed, &for_image).unwrap();
    let e = trusting.load(&unnamed).unwrap_err();
    assert!(e.to_string().contains("(none in the file name)"), "{e}");
    // Names from images built before they recorded an XXH3 are checked by their SHA-256.
    let sha = vyoma_runtime::sha256_hex(&for_image);
    let older = lib.join(format!("older-{sha}.cwasm"));
    std::fs::write(&older, &for_image).unwrap();
    let l = trusting.load(&older).unwrap();
    assert_eq!((l.outcome, l.sha256.as_str()), (CacheOutcome::Image, sha.as_str()));
    let older_damaged = lib.join(format!("older-damaged-{sha}.cwasm"));
    std::fs::write(&older_damaged, &damaged).unwrap();
    let e = trusting.load(&older_damaged).unwrap_err();
    assert!(e.to_string().contains("its SHA-256 is"), "{e}");

    // One made by an engine with other settings (another Wasmtime configuration or
    // version) is refused with a clear error, never run.
    let other = wasmtime::Engine::new(&wasmtime::Config::new()).unwrap();
    let foreign_bytes = other.precompile_component(&bytes).unwrap();
    let foreign = lib.join(vyoma_runtime::image_artifact_name("foreign", &foreign_bytes));
    std::fs::write(&foreign, &foreign_bytes).unwrap();
    let e = trusting.load(&foreign).unwrap_err();
    assert!(matches!(e, RuntimeError::Incompatible { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("was precompiled for a different engine") && msg.contains("vyoma image build"),
        "{msg}"
    );
}

#[test]
fn a_planted_cache_entry_is_never_loaded() {
    // Someone who can write the cache folder puts a real artifact of another component
    // under this component's name: its tag does not match, so it is discarded.
    let cache = tempfile::tempdir().unwrap();
    let rt = Runtime::new(&config(cache.path())).unwrap();
    let hello = rt.load(&wasm("hello")).unwrap();
    let ticker = rt.load(&wasm("ticker")).unwrap();
    let dir = rt.cache().dir().unwrap().to_path_buf();
    let (h, t) = (hello.sha256.clone(), ticker.sha256.clone());
    drop((hello, ticker, rt));
    std::fs::copy(dir.join(format!("{t}.cwasm")), dir.join(format!("{h}.cwasm"))).unwrap();
    let rt = Runtime::new(&config(cache.path())).unwrap();
    let l = rt.load(&wasm("hello")).unwrap();
    assert_eq!(l.outcome, CacheOutcome::Compiled, "the planted entry was used");
    // Untagged machine code (a bare artifact) is discarded the same way.
    let bare = wasmtime::Engine::new(&wasmtime::Config::new())
        .unwrap()
        .precompile_component(&std::fs::read(wasm("ticker")).unwrap())
        .unwrap();
    std::fs::write(dir.join(format!("{t}.cwasm")), bare).unwrap();
    let rt = Runtime::new(&config(cache.path())).unwrap();
    assert_eq!(rt.load(&wasm("ticker")).unwrap().outcome, CacheOutcome::Compiled);
}

#[test]
fn a_cache_others_can_write_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("shared-cache");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let rt = Runtime::new(&config(&root)).unwrap();
    assert_eq!(rt.cache().dir(), None);
    let why = rt.cache().refused().unwrap();
    assert!(
        why.contains("writable by others") && why.contains("chmod go-w"),
        "{why}"
    );
    // Apps still load: compiled in memory, nothing read from or written to the folder.
    assert_eq!(rt.load(&wasm("hello")).unwrap().outcome, CacheOutcome::Compiled);
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    // A fresh cache is created private.
    let fresh = d.path().join("fresh");
    let rt = Runtime::new(&config(&fresh)).unwrap();
    assert!(rt.cache().refused().is_none());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("key")), 0o600);
}

#[test]
fn grants_that_reach_the_cache_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let cache = d.path().join("home/.cache/vyoma");
    let rt = Runtime::new(&config(&cache)).unwrap();
    let manifest = |host: &Path| {
        vyoma_manifest::Manifest::parse(
            &format!(
                "manifest_version = 1\n[app]\nname = \"a\"\nversion = \"0.1.0\"\ncomponent = \"a.wasm\"\n\
                 [[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/d\"\nmode = \"rw\"\n",
                host.display()
            ),
            d.path().join("a/app.toml"),
        )
        .unwrap()
    };
    // Its parents (a whole home folder), itself, and what is inside it.
    for host in [
        d.path().join("home"),
        cache.clone(),
        rt.cache().dir().unwrap().to_path_buf(),
    ] {
        let p = rt.grant_problems(&manifest(&host));
        assert_eq!(p.len(), 1, "{host:?}");
        assert!(p[0].message.contains("holds machine code VyomaOS runs"), "{}", p[0]);
        assert_eq!((p[0].line, p[0].column), (7, 8));
    }
    // Through `..` or a symbolic link, too.
    let link = d.path().join("innocent");
    std::os::unix::fs::symlink(d.path().join("home"), &link).unwrap();
    assert_eq!(rt.grant_problems(&manifest(&link)).len(), 1);
    assert_eq!(rt.grant_problems(&manifest(&cache.join("../.."))).len(), 1);
    // A folder beside it is fine.
    let data = d.path().join("home/data");
    std::fs::create_dir_all(&data).unwrap();
    assert!(rt.grant_problems(&manifest(&data)).is_empty());
}

#[test]
fn a_preview1_command_module_is_adapted_compiled_once_and_cached() {
    let cache = tempfile::tempdir().unwrap();
    let d = tempfile::tempdir().unwrap();
    let module = vyoma_testkit::build_c_preview1(d.path(), "p1", vyoma_testkit::PREVIEW1_C);
    let rt = Runtime::new(&config(cache.path())).unwrap();
    let l = rt.load(&module).unwrap();
    assert!(l.adapted);
    assert_eq!(l.outcome, CacheOutcome::Compiled);
    // Named by the module's own bytes.
    assert_eq!(l.sha256, vyoma_runtime::sha256_hex(&std::fs::read(&module).unwrap()));
    assert!(
        l.info.exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2")),
        "{:?}",
        l.info.exports
    );
    drop((l, rt));
    // The next process finds it in the cache: adapted again (cheap), not compiled.
    let rt = Runtime::new(&config(cache.path())).unwrap();
    let l = rt.load(&module).unwrap();
    assert!(l.adapted);
    assert_eq!(l.outcome, CacheOutcome::Disk);
}
