//! The compile cache: components are compiled once, stored as precompiled artifacts keyed
//! by the engine's compatibility hash and the component's SHA-256, and loaded from there on
//! every later start, by this process or the next.
//!
//! Without the `compiler` feature (the image's supervisor) nothing is compiled: apps come
//! precompiled by `vyoma image build` ([`precompile_for_image`]) and are loaded with
//! [`load_image_artifact`].
//!
//! This is the only module with `unsafe`: loading a precompiled artifact trusts its bytes.

#[cfg(feature = "compiler")]
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
#[cfg(feature = "compiler")]
use wasmtime::Precompiled;
use wasmtime::component::Component;

use crate::RuntimeError;

/// Where a component came from when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a precompiled artifact on disk.
    Disk,
    /// Compiled now (and stored, if the cache is writable).
    Compiled,
    /// Precompiled into the image by `vyoma image build`.
    Image,
}

/// A directory of precompiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash becomes a stable
/// directory name (std's `DefaultHasher` is not stable across builds).
#[cfg(feature = "compiler")]
struct ShaHasher(Sha256);

#[cfg(feature = "compiler")]
impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only write() is used; the digest is read with finalize()")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A short stable name for everything that makes artifacts compatible with `engine`.
#[cfg(feature = "compiler")]
pub fn engine_fingerprint(engine: &Engine) -> String {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..12])
}

impl CompileCache {
    /// A cache under `root` (a folder per engine fingerprint), or no disk cache at all.
    pub fn new(root: Option<&Path>, engine: &Engine) -> CompileCache {
        #[cfg(feature = "compiler")]
        let dir = root.map(|r| r.join(engine_fingerprint(engine)));
        // Nothing to cache without a compiler.
        #[cfg(not(feature = "compiler"))]
        let dir = {
            let _ = (root, engine);
            None
        };
        CompileCache { dir }
    }

    /// The folder artifacts are kept in, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Loads the component in `wasm` (whose SHA-256 is `sha`), from disk if it was compiled
    /// before, else by compiling and storing it.
    #[cfg(feature = "compiler")]
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha: &str,
        origin: &Path,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        if let Some(dir) = &self.dir {
            let file = dir.join(format!("{sha}.cwasm"));
            if file.is_file() {
                match deserialize(engine, &file) {
                    Ok(c) => return Ok((c, CacheOutcome::Disk)),
                    Err(e) => tracing::warn!(file = %file.display(), error = %e, "discarding unusable cache entry"),
                }
            }
            let artifact = engine.precompile_component(wasm).map_err(|e| RuntimeError::Compile {
                path: origin.to_path_buf(),
                message: format!("{e:#}"),
            })?;
            match store(dir, &file, &artifact) {
                Ok(()) => {
                    if let Ok(c) = deserialize(engine, &file) {
                        return Ok((c, CacheOutcome::Compiled));
                    }
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "compile cache not writable; continuing without it")
                }
            }
            // Deserializing bytes we produced in this process is as trusted as compiling.
            return from_own_artifact(engine, &artifact, origin).map(|c| (c, CacheOutcome::Compiled));
        }
        let c = Component::new(engine, wasm).map_err(|e| RuntimeError::Compile {
            path: origin.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        Ok((c, CacheOutcome::Compiled))
    }

    /// Without a compiler, only precompiled artifacts can be loaded.
    #[cfg(not(feature = "compiler"))]
    pub fn load(
        &self,
        _engine: &Engine,
        _wasm: &[u8],
        _sha: &str,
        origin: &Path,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        Err(RuntimeError::NoCompiler {
            path: origin.to_path_buf(),
        })
    }
}

#[cfg(feature = "compiler")]
fn store(dir: &Path, file: &Path, artifact: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, artifact)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// The target the image's supervisor is built for.
pub const IMAGE_TARGET: &str = "x86_64-unknown-linux-musl";

/// Compiles `wasm` for the image's supervisor: the same engine settings as
/// [`crate::Runtime`] uses, for [`IMAGE_TARGET`].
#[cfg(feature = "compiler")]
pub fn precompile_for_image(wasm: &[u8], origin: &Path) -> Result<Vec<u8>, RuntimeError> {
    let engine = crate::engine::image_engine()?;
    engine.precompile_component(wasm).map_err(|e| RuntimeError::Compile {
        path: origin.to_path_buf(),
        message: format!("{e:#}"),
    })
}

/// Loads an artifact made by [`precompile_for_image`] from a VyomaOS image.
#[allow(unsafe_code, reason = "loading a precompiled artifact is unsafe in Wasmtime's API")]
pub(crate) fn load_image_artifact(engine: &Engine, bytes: &[u8], origin: &Path) -> Result<Component, RuntimeError> {
    // SAFETY: `Component::deserialize` requires bytes produced by Wasmtime's
    // `precompile_component`. Artifacts are only trusted when the runtime was configured
    // with `trust_precompiled`, which only the image's supervisor (PID 1) sets: its apps
    // were precompiled by `vyoma image build` and sit in the initramfs, which only the
    // image builder writes. Wasmtime checks the artifact's header, target and engine
    // settings itself and errors on a mismatch (reported as `Incompatible`).
    let c = unsafe { Component::deserialize(engine, bytes) };
    c.map_err(|e| RuntimeError::Incompatible {
        path: origin.to_path_buf(),
        message: format!("{e:#}"),
    })
}

#[cfg(feature = "compiler")]
#[allow(unsafe_code, reason = "loading a precompiled artifact is unsafe in Wasmtime's API")]
fn deserialize(engine: &Engine, file: &Path) -> Result<Component, String> {
    match Engine::detect_precompiled_file(file) {
        Ok(Some(Precompiled::Component)) => {}
        Ok(_) => return Err("not a precompiled component".into()),
        Err(e) => return Err(format!("{e:#}")),
    }
    // SAFETY: `deserialize_file` requires bytes produced by Wasmtime's own
    // `precompile_component` for a compatible engine. Files in this cache are written only
    // by `store` above, atomically (temp file + rename), from `Engine::precompile_component`
    // of this engine configuration, under a folder named by the engine's compatibility
    // hash; the header was checked just above, and Wasmtime re-checks the engine
    // compatibility itself and errors on mismatch. The remaining trust is in the cache
    // folder's permissions, which must be owned by the supervisor (ARCHITECTURE.md).
    let c = unsafe { Component::deserialize_file(engine, file) };
    c.map_err(|e| format!("{e:#}"))
}

#[cfg(feature = "compiler")]
#[allow(unsafe_code, reason = "loading a precompiled artifact is unsafe in Wasmtime's API")]
fn from_own_artifact(engine: &Engine, artifact: &[u8], origin: &Path) -> Result<Component, RuntimeError> {
    // SAFETY: `artifact` was returned by `engine.precompile_component` moments ago in this
    // process and never left memory, so it is exactly what Wasmtime produced for `engine`.
    let c = unsafe { Component::deserialize(engine, artifact) };
    c.map_err(|e| RuntimeError::Compile {
        path: origin.to_path_buf(),
        message: format!("{e:#}"),
    })
}

/// SHA-256 of a component, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
