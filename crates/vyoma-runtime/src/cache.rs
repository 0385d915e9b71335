//! The compile cache: components are compiled once, stored as precompiled artifacts keyed
//! by the engine's compatibility hash and the component's SHA-256, and loaded from there on
//! every later start, by this process or the next.
//!
//! A precompiled artifact is machine code that Wasmtime maps and runs without checking it,
//! so the cache is a trust boundary, guarded three ways:
//! - the cache folder must belong to the supervisor's user and be writable by no one else
//!   (as ssh treats its key files); otherwise it is not used at all, and the reason is shown;
//! - every artifact carries an HMAC-SHA256 tag keyed per installation (`key`, readable only
//!   by its owner) over the component's hash and the artifact, checked before every load;
//! - apps can never be granted a folder that contains or lies inside the cache (the runtime
//!   refuses such grants, see `Runtime::grant_problems`).
//!
//! Verified artifacts are deserialised from memory, so the file cannot change between the
//! check and the load.
//!
//! Without the `compiler` feature (the image's supervisor) the image's apps come precompiled
//! by `vyoma image build` ([`precompile_for_image`]) and are mapped from their file with
//! [`map_image_artifact`], only from the image's own artifact folder, and only when their
//! bytes hash to what the builder wrote into their file name ([`check_image_artifact`]).
//! What is deployed to the device later is compiled by the image's compiler helper (`crate::helper`), in a process
//! of its own, and cached here like an artifact compiled in-process.
//!
//! This is the only module with `unsafe`: loading a precompiled artifact trusts its bytes.

#[cfg(feature = "compiler")]
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::RuntimeError;
use crate::helper::CompilerHelper;

/// Where a component came from when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a verified precompiled artifact on disk.
    Disk,
    /// Compiled now (and stored, if the cache is usable).
    Compiled,
    /// Precompiled into the image by `vyoma image build`.
    Image,
}

/// Length of an artifact's tag: HMAC-SHA256.
const TAG: usize = 32;
/// The per-installation key's file, in the cache root.
const KEY_FILE: &str = "key";

/// A directory of precompiled components for one engine configuration, and how components
/// not in it are compiled.
#[derive(Debug, Clone)]
pub struct CompileCache {
    /// The engine's folder and the installation's key, when the cache is usable.
    store: Option<(PathBuf, [u8; 32])>,
    /// The cache root asked for (whether usable or not): apps may not be granted it.
    root: Option<PathBuf>,
    /// Why the cache is not used, when it was asked for but refused.
    refused: Option<String>,
    /// The compiler helper, when components are compiled by one (the image's).
    helper: Option<CompilerHelper>,
    /// Whether the engine maps copy-on-write memory images (the helper must compile for
    /// that too).
    cow: bool,
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
    /// Components are compiled by `helper` when there is one (for an engine with
    /// copy-on-write memory images if `cow`), else in-process with the `compiler`
    /// feature, else not at all. A root that is not safe to load machine code from is
    /// refused (see [`CompileCache::refused`]); components are then compiled at each start.
    pub fn new(root: Option<&Path>, engine: &Engine, helper: Option<CompilerHelper>, cow: bool) -> CompileCache {
        let mut cache = CompileCache {
            store: None,
            root: root.map(Path::to_path_buf),
            refused: None,
            helper,
            cow,
        };
        let Some(root) = root else { return cache };
        // The folder is named by what makes artifacts compatible: the helper that makes
        // them, or this engine's settings. Nothing to cache without a compiler.
        let fingerprint = match &cache.helper {
            Some(h) => Some(h.fingerprint(cow)),
            #[cfg(feature = "compiler")]
            None => Some(engine_fingerprint(engine)),
            #[cfg(not(feature = "compiler"))]
            None => {
                let _ = engine;
                None
            }
        };
        if let Some(fingerprint) = fingerprint {
            match open_store(root, &fingerprint) {
                Ok(s) => cache.store = s,
                Err(why) => {
                    tracing::warn!(cache = %root.display(), %why, "not using the compile cache");
                    cache.refused = Some(why);
                }
            }
        }
        cache
    }

    /// The folder artifacts are kept in, if the cache is in use.
    pub fn dir(&self) -> Option<&Path> {
        self.store.as_ref().map(|(d, _)| d.as_path())
    }

    /// The cache root that was asked for, in use or not.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Why the cache that was asked for is not used.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Loads the component in `wasm` (whose SHA-256 is `sha`), from a verified artifact if
    /// it was compiled before, else by compiling (and storing) it.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha: &str,
        origin: &Path,
    ) -> Result<(Component, CacheOutcome), RuntimeError> {
        let Some((dir, key)) = &self.store else {
            #[cfg(feature = "compiler")]
            if self.helper.is_none() {
                let c = Component::new(engine, wasm).map_err(|e| RuntimeError::Compile {
                    path: origin.to_path_buf(),
                    message: format!("{e:#}"),
                })?;
                return Ok((c, CacheOutcome::Compiled));
            }
            let artifact = self.compile(engine, wasm, origin)?;
            return from_own_artifact(engine, &artifact, origin).map(|c| (c, CacheOutcome::Compiled));
        };
        let file = dir.join(format!("{sha}.cwasm"));
        match std::fs::read(&file) {
            Ok(bytes) => match verified(key, sha, &bytes).and_then(|a| deserialize_verified(engine, a)) {
                Ok(c) => return Ok((c, CacheOutcome::Disk)),
                Err(why) => tracing::warn!(file = %file.display(), %why, "discarding unusable cache entry"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %file.display(), error = %e, "cannot read cache entry"),
        }
        let artifact = self.compile(engine, wasm, origin)?;
        if let Err(e) = store(dir, &file, &artifact, &tag(key, sha, &artifact)) {
            tracing::warn!(dir = %dir.display(), error = %e, "compile cache not writable; continuing without it");
        }
        from_own_artifact(engine, &artifact, origin).map(|c| (c, CacheOutcome::Compiled))
    }

    /// The artifact for `wasm`: made by the helper if there is one, else in-process.
    fn compile(&self, engine: &Engine, wasm: &[u8], origin: &Path) -> Result<Vec<u8>, RuntimeError> {
        if let Some(h) = &self.helper {
            let started = std::time::Instant::now();
            let artifact = h.compile(wasm, self.cow).map_err(|message| RuntimeError::Compile {
                path: origin.to_path_buf(),
                message,
            })?;
            tracing::info!(component = %origin.display(), took = ?started.elapsed(), "compiled by the compiler helper");
            return Ok(artifact);
        }
        #[cfg(feature = "compiler")]
        return precompile(engine, wasm, origin);
        #[cfg(not(feature = "compiler"))]
        {
            let _ = (engine, wasm);
            Err(RuntimeError::NoCompiler {
                path: origin.to_path_buf(),
            })
        }
    }
}

/// Whether a folder (or file) may hold what the supervisor executes: it belongs to the
/// supervisor's user, and no one else may write it (nor, for `secret`, read it).
fn owned_privately(path: &Path, secret: bool) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    if m.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link; give the real folder (VYOMA_CACHE_DIR)",
            path.display()
        ));
    }
    let me = rustix::process::geteuid().as_raw();
    if m.uid() != me {
        return Err(format!(
            "{} belongs to user {}, not to the supervisor's user {me}; use a folder of your own (VYOMA_CACHE_DIR)",
            path.display(),
            m.uid()
        ));
    }
    let forbidden = if secret { 0o077 } else { 0o022 };
    if m.mode() & forbidden != 0 {
        return Err(format!(
            "{} is {} by others (mode {:o}); fix it with `chmod go-{} {}`",
            path.display(),
            if secret { "readable or writable" } else { "writable" },
            m.mode() & 0o777,
            if secret { "rwx" } else { "w" },
            path.display()
        ));
    }
    Ok(())
}

/// Creates (privately) or checks the cache root, its per-installation key and the engine's
/// folder.
fn open_store(root: &Path, fingerprint: &str) -> Result<Option<(PathBuf, [u8; 32])>, String> {
    use std::io::{Read, Write};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let private_dir = |d: &Path| -> Result<(), String> {
        if !d.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        owned_privately(d, false)
    };
    private_dir(root)?;
    let key_file = root.join(KEY_FILE);
    let mut key = [0u8; 32];
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_file)
    {
        Ok(mut f) => {
            std::fs::File::open("/dev/urandom")
                .and_then(|mut r| r.read_exact(&mut key))
                .and_then(|()| f.write_all(&key))
                .and_then(|()| f.sync_all())
                .map_err(|e| format!("cannot write the cache key {}: {e}", key_file.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            owned_privately(&key_file, true)?;
            let bytes = std::fs::read(&key_file)
                .map_err(|e| format!("cannot read the cache key {}: {e}", key_file.display()))?;
            key = bytes.try_into().map_err(|_| {
                format!(
                    "the cache key {} is damaged (not 32 bytes); delete it to start a new cache",
                    key_file.display()
                )
            })?;
        }
        Err(e) => return Err(format!("cannot create the cache key {}: {e}", key_file.display())),
    }
    let dir = root.join(fingerprint);
    private_dir(&dir)?;
    Ok(Some((dir, key)))
}

/// The MAC stored after an artifact: HMAC-SHA256 over the component's hash and the
/// artifact, so an artifact cannot be forged, altered, or moved to another component's
/// name.
fn mac(key: &[u8; 32], sha: &str, artifact: &[u8]) -> hmac::Hmac<Sha256> {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(sha.as_bytes());
    mac.update(&[0]);
    mac.update(artifact);
    mac
}

/// The tag stored after an artifact (see [`mac`]).
fn tag(key: &[u8; 32], sha: &str, artifact: &[u8]) -> [u8; TAG] {
    use hmac::Mac;
    mac(key, sha, artifact).finalize().into_bytes().into()
}

/// The artifact in `bytes` (artifact, then tag) if its tag is right.
fn verified<'a>(key: &[u8; 32], sha: &str, bytes: &'a [u8]) -> Result<&'a [u8], String> {
    use hmac::Mac;
    let Some(split) = bytes.len().checked_sub(TAG) else {
        return Err("too short to be a tagged artifact".into());
    };
    let (artifact, t) = bytes.split_at(split);
    // Constant-time comparison.
    mac(key, sha, artifact)
        .verify_slice(t)
        .map_err(|_| "its integrity tag does not match (altered, or written by someone else)".to_string())?;
    Ok(artifact)
}

fn store(dir: &Path, file: &Path, artifact: &[u8], tag: &[u8; TAG]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, artifact)?;
    std::io::Write::write_all(&mut tmp, tag)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Where a VyomaOS image keeps its precompiled apps: the only folder its supervisor loads
/// machine code from.
pub const IMAGE_ARTIFACTS: &str = "/lib/vyoma";

/// The target the image's supervisor is built for.
pub const IMAGE_TARGET: &str = "x86_64-unknown-linux-musl";

/// Compiles `wasm` for the image's supervisor: the same engine settings as
/// [`crate::Runtime`] uses, for [`IMAGE_TARGET`]. A WASI preview-1 command module is
/// adapted first (with the `adapt` feature), as [`crate::Runtime::load`] does.
#[cfg(feature = "compiler")]
pub fn precompile_for_image(wasm: &[u8], origin: &Path) -> Result<Vec<u8>, RuntimeError> {
    let engine = crate::engine::image_engine()?;
    let (wasm, _) = crate::as_component(wasm, origin)?;
    precompile(&engine, &wasm, origin)
}

/// Compiles the component `wasm` for a supervisor on this machine (with copy-on-write
/// memory images if `cow`): the work of the compiler helper, `vyoma-compile`.
#[cfg(feature = "compiler")]
pub fn precompile_native(wasm: &[u8], cow: bool, origin: &Path) -> Result<Vec<u8>, RuntimeError> {
    precompile(&crate::engine::native_engine(cow)?, wasm, origin)
}

/// The artifact `engine` makes of the component `wasm` (from `origin`).
#[cfg(feature = "compiler")]
fn precompile(engine: &Engine, wasm: &[u8], origin: &Path) -> Result<Vec<u8>, RuntimeError> {
    engine.precompile_component(wasm).map_err(|e| RuntimeError::Compile {
        path: origin.to_path_buf(),
        message: format!("{e:#}"),
    })
}

/// The file name `vyoma image build` gives an artifact: the component's name, the
/// artifact's XXH3-128 (what the loader checks its bytes against at every boot: a damaged
/// file is caught as surely for this purpose, and hashing is no longer most of loading the
/// image's apps on machines without SHA instructions; docs/PERFORMANCE.md) and its own
/// SHA-256 (its identity), last, where a supervisor from before names carried an XXH3
/// looks for the hash it checks.
pub fn image_artifact_name(stem: &str, artifact: &[u8]) -> String {
    format!("{stem}-{}-{}.cwasm", xxh3_hex(artifact), sha256_hex(artifact))
}

/// An artifact's XXH3-128 in hex, as its file name records it.
fn xxh3_hex(bytes: &[u8]) -> String {
    xxh3_text(xxhash_rust::xxh3::xxh3_128(bytes))
}

/// An XXH3-128 digest as file names write it.
fn xxh3_text(digest: u128) -> String {
    format!("{digest:032x}")
}

/// What an image artifact's file name records (see [`image_artifact_name`]): its SHA-256,
/// and its XXH3-128 unless the image was built before names carried one (then the SHA-256
/// is what is checked).
struct Recorded<'a> {
    sha: &'a str,
    xxh3: Option<&'a str>,
}

fn recorded(path: &Path) -> Option<Recorded<'_>> {
    let name = path.file_name()?.to_str()?.strip_suffix(".cwasm")?;
    let (rest, sha) = name.rsplit_once('-')?;
    if !is_sha256_hex(sha) {
        return None;
    }
    let xxh3 = rest.rsplit_once('-').map(|(_, x)| x).filter(|x| is_hex(x, 32));
    Some(Recorded { sha, xxh3 })
}

/// Whether `s` is a SHA-256 in hex, as the image builder writes into file names.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    is_hex(s, 64)
}

/// Whether `s` is `digits` hexadecimal digits.
fn is_hex(s: &str, digits: usize) -> bool {
    s.len() == digits && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `path` lies in `folder`, an already resolved path (`path` is resolved here, so
/// `..` and symbolic links cannot fake it). A path that does not resolve lies nowhere.
pub(crate) fn in_folder(path: &Path, folder: &Path) -> bool {
    path.canonicalize().is_ok_and(|p| p.starts_with(folder))
}

/// Checks an artifact made by [`precompile_for_image`] in the image's own artifact folder
/// (the caller checked that with [`in_folder`]): its bytes, hashed as the file is read
/// (nothing of it is kept), must have the XXH3-128 the builder wrote into its name (the
/// SHA-256, in names from before they carried one). Returns the SHA-256 its name records
/// (its identity) and the file's size; [`map_image_artifact`] then maps it.
pub(crate) fn check_image_artifact(origin: &Path) -> Result<(String, u64), RuntimeError> {
    let read = |source| RuntimeError::Read {
        path: origin.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(origin).map_err(read)?;
    let recorded = recorded(origin);
    let (digest, expected, size, actual) = match recorded.as_ref().and_then(|r| r.xxh3) {
        Some(x) => {
            let mut hasher = xxhash_rust::xxh3::Xxh3::new();
            let size = std::io::copy(&mut file, &mut hasher).map_err(read)?;
            ("XXH3-128", x, size, xxh3_text(hasher.digest128()))
        }
        None => {
            let mut hasher = Sha256::new();
            let size = std::io::copy(&mut file, &mut hasher).map_err(read)?;
            let expected = recorded.as_ref().map_or("(none in the file name)", |r| r.sha);
            ("SHA-256", expected, size, hex::encode(hasher.finalize()))
        }
    };
    match recorded.as_ref() {
        Some(r) if expected.eq_ignore_ascii_case(&actual) => Ok((r.sha.to_ascii_lowercase(), size)),
        _ => Err(RuntimeError::Corrupt {
            path: origin.to_path_buf(),
            digest,
            expected: expected.to_string(),
            actual,
        }),
    }
}

/// Maps an image artifact that [`check_image_artifact`] just checked. Wasmtime maps the
/// file privately instead of copying it into memory of its own: its machine code stays the
/// pages the initramfs already holds (shared, not a second copy), and the boot neither
/// copies it nor faults in fresh pages for it.
pub(crate) fn map_image_artifact(engine: &Engine, origin: &Path) -> Result<Component, RuntimeError> {
    map_checked(engine, origin).map_err(|message| RuntimeError::Incompatible {
        path: origin.to_path_buf(),
        message,
    })
}

/// Maps an image artifact whose hash was just checked.
#[allow(unsafe_code, reason = "loading a precompiled artifact is unsafe in Wasmtime's API")]
fn map_checked(engine: &Engine, path: &Path) -> Result<Component, String> {
    // SAFETY: `Component::deserialize_file` requires a file produced by Wasmtime's
    // `precompile_component` for a compatible engine, which does not change while mapped.
    // The file lies in the image's own artifact folder (checked by the caller: only PID 1
    // sets it, and only to `/lib/vyoma` in the initramfs, which only the image builder
    // writes), and its bytes were just checked against the hash the builder recorded in its
    // name, so it is what the builder's `precompile_component` produced (the check guards
    // against damage; whoever could write the folder could also rename the file, which is
    // why nothing but the builder may write it). Nothing writes that folder once the kernel
    // has unpacked it: the supervisor never does, and no app can be granted it
    // (`Runtime::grant_problems`); so the private mapping Wasmtime makes sees those same
    // bytes for as long as it lives. Wasmtime checks the header,
    // target and engine settings itself and errors on a mismatch.
    let c = unsafe { Component::deserialize_file(engine, path) };
    c.map_err(|e| format!("{e:#}"))
}

/// Deserialises a cache artifact whose tag was just verified.
#[allow(unsafe_code, reason = "loading a precompiled artifact is unsafe in Wasmtime's API")]
fn deserialize_verified(engine: &Engine, artifact: &[u8]) -> Result<Component, String> {
    match Engine::detect_precompiled(artifact) {
        Some(wasmtime::Precompiled::Component) => {}
        _ => return Err("not a precompiled component".into()),
    }
    // SAFETY: `Component::deserialize` requires bytes produced by Wasmtime's own
    // `precompile_component` for a compatible engine. These bytes carry a valid HMAC tag
    // under this installation's key, which only `CompileCache::load` uses, right after
    // `precompile_component` of this engine configuration (the folder is named by the
    // engine's compatibility hash), and which no one but the supervisor's user can read
    // (`owned_privately`) and no app can be granted (`Runtime::grant_problems`). So they
    // are bytes this supervisor's user produced with Wasmtime. Wasmtime re-checks the
    // engine compatibility itself. The bytes are in memory, so nothing can change them
    // after the check.
    let c = unsafe { Component::deserialize(engine, artifact) };
    c.map_err(|e| format!("{e:#}"))
}

#[allow(unsafe_code, reason = "loading a precompiled artifact is unsafe in Wasmtime's API")]
fn from_own_artifact(engine: &Engine, artifact: &[u8], origin: &Path) -> Result<Component, RuntimeError> {
    // SAFETY: `Component::deserialize` requires bytes produced by Wasmtime's
    // `precompile_component` for a compatible engine. `artifact` was made moments ago for
    // this component, either by `engine.precompile_component` in this process, or by the
    // image's compiler helper (`CompileCache::compile`): an executable from the image's
    // own artifact folder whose bytes matched the SHA-256 in its name, run from a private
    // memory file, whose whole answer is the artifact its `precompile_component` made
    // (`helper::framed`). It never left memory since, so it is what Wasmtime produced.
    // Wasmtime checks the header, target and engine settings itself and errors on a
    // mismatch (a helper built for other settings).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_artifact_names_record_their_hashes() {
        let name = image_artifact_name("echo", b"artifact bytes");
        let sha = sha256_hex(b"artifact bytes");
        let xxh3 = xxh3_hex(b"artifact bytes");
        assert_eq!(xxh3.len(), 32);
        assert_eq!(name, format!("echo-{xxh3}-{sha}.cwasm"));
        let path = format!("/lib/vyoma/{name}");
        let r = recorded(Path::new(&path)).unwrap();
        assert_eq!((r.sha, r.xxh3), (sha.as_str(), Some(xxh3.as_str())));
        // Names from before they carried an XXH3: the SHA-256 is checked.
        let older = format!("/lib/vyoma/echo-{sha}.cwasm");
        let old = recorded(Path::new(&older)).unwrap();
        assert_eq!((old.sha, old.xxh3), (sha.as_str(), None));
        for nothing in [
            "/lib/vyoma/echo-0123.cwasm",
            "/lib/vyoma/echo.wasm",
            "/lib/vyoma/echo.cwasm",
            // An XXH3 without a SHA-256 after it.
            "/lib/vyoma/echo-0123456789abcdef0123456789abcdef.cwasm",
        ] {
            assert!(recorded(Path::new(nothing)).is_none(), "{nothing}");
        }
        // Names with dashes of their own.
        let n = image_artifact_name("my-app", b"x");
        assert_eq!(recorded(Path::new(&n)).unwrap().sha, sha256_hex(b"x"));
    }

    #[test]
    fn folders_others_can_write_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c");
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        owned_privately(&p, false).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = owned_privately(&p, false).unwrap_err();
        assert!(
            e.contains("is writable by others (mode 777)") && e.contains("chmod go-w"),
            "{e}"
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        owned_privately(&p, false).unwrap();
        // A secret must not even be readable.
        let e = owned_privately(&p, true).unwrap_err();
        assert!(e.contains("readable or writable by others"), "{e}");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(owned_privately(&link, false).unwrap_err().contains("symbolic link"));
    }

    #[cfg(feature = "compiler")]
    #[test]
    fn tags_bind_the_artifact_to_its_component_and_key() {
        let key = [7u8; 32];
        let mut bytes = b"artifact".to_vec();
        bytes.extend_from_slice(&tag(&key, "abc", b"artifact"));
        assert_eq!(verified(&key, "abc", &bytes).unwrap(), b"artifact");
        // Another component's name, another key, an altered byte, a truncated file.
        assert!(verified(&key, "abd", &bytes).is_err());
        assert!(verified(&[8u8; 32], "abc", &bytes).is_err());
        let mut altered = bytes.clone();
        altered[0] ^= 1;
        assert!(verified(&key, "abc", &altered).is_err());
        assert!(verified(&key, "abc", &bytes[..10]).is_err());
    }
}
