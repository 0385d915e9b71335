//! The compiler helper: compiling a component in a process of its own, with the image's
//! `vyoma-compile` executable, which the image carries zstd-compressed and which is
//! unpacked into memory (a memfd) when a compile needs it, and kept there only while
//! compiles follow each other ([`KEEP_UNPACKED`]: a wave of deploys unpacks it once).
//!
//! For the image's supervisor, which has no compiler in it: Cranelift is a third of a
//! supervisor with it, and every boot would unpack it for the rare deploy that compiles
//! (docs/PERFORMANCE.md, "The compiler out of /init"). A compile of bytes that came over
//! the network also runs outside PID 1 this way: a compiler crash fails the deploy, not
//! the machine. Not for hosted mode, which compiles in-process (the `compiler` feature).
//!
//! The protocol: the component on the helper's standard input; on its standard output the
//! artifact's length (8 bytes, little-endian) and then the artifact; on failure nothing
//! there, an explanation on its standard error and a non-zero exit. Success is read from
//! the output alone, not from the exit status: in the image the supervisor is PID 1, whose
//! reaper may collect the helper before the supervisor waits for it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::RuntimeError;
use crate::cache::{is_sha256_hex, sha256_hex};

/// The helper's file name in the image's artifact folder: `vyoma-compile-SHA256.zst`,
/// the SHA-256 of the compressed file, checked before each use.
const PREFIX: &str = "vyoma-compile-";
const SUFFIX: &str = ".zst";

/// How much of the helper's standard error is kept for an error message.
const MAX_EXPLANATION: u64 = 16 << 10;

/// How long the unpacked helper is kept after a compile: the next compile within it
/// skips unpacking (under emulation, most of a small compile's time), and its memory
/// (the executable, 5-7 MiB) is given back once deploys stop.
pub const KEEP_UNPACKED: Duration = Duration::from_secs(120);

/// The image's compiler helper: a zstd-compressed static `vyoma-compile`.
#[derive(Debug, Clone)]
pub struct CompilerHelper {
    path: PathBuf,
    /// The SHA-256 its name promises.
    sha: String,
    /// The executable, while it is kept unpacked, shared by the clones.
    unpacked: Arc<Mutex<Unpacked>>,
}

/// The unpacked executable, and which compile last used it.
#[derive(Debug, Default)]
struct Unpacked {
    exe: Option<Arc<std::fs::File>>,
    /// Counts uses: a release after [`KEEP_UNPACKED`] happens only if no use came since.
    uses: u64,
}

impl PartialEq for CompilerHelper {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.sha == other.sha
    }
}

impl Eq for CompilerHelper {}

/// The file name `vyoma image build` gives the compressed helper.
pub fn helper_file_name(compressed: &[u8]) -> String {
    format!("{PREFIX}{}{SUFFIX}", sha256_hex(compressed))
}

impl CompilerHelper {
    /// The helper at `path`, whose name must promise its SHA-256 ([`helper_file_name`]).
    pub fn at(path: &Path) -> Option<CompilerHelper> {
        let name = path.file_name()?.to_str()?;
        let sha = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
        is_sha256_hex(sha).then(|| CompilerHelper {
            path: path.to_path_buf(),
            sha: sha.to_ascii_lowercase(),
            unpacked: Arc::default(),
        })
    }

    /// The helper in `dir` (the image's artifact folder), if it holds one.
    pub fn find(dir: &Path) -> Option<CompilerHelper> {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .find_map(|e| CompilerHelper::at(&e.path()))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A short stable name for what this helper's artifacts are compatible with (the
    /// compile cache's folder): the helper's own hash, with the memory-image setting.
    pub fn fingerprint(&self, cow: bool) -> String {
        format!("helper-{}{}", &self.sha[..24], if cow { "-cow" } else { "" })
    }

    /// Compiles `component` for this machine's supervisor (with copy-on-write memory
    /// images if `cow`, as its engine has them). Blocks until the helper is done.
    pub fn compile(&self, component: &[u8], cow: bool) -> Result<Vec<u8>, String> {
        let exe = self.executable()?;
        // The memfd is open in this process; a child reaches it under its own
        // /proc/self/fd (it closes at exec, once the kernel has opened the file).
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&exe));
        let mut cmd = Command::new(&path);
        if cow {
            cmd.arg("--cow");
        }
        // Nothing of the supervisor's environment reaches a compile. Its allocator
        // (mimalloc) commits memory as it is used rather than whole arenas up front: a
        // compile of a small component then peaks at ~14 MiB instead of ~50.
        cmd.env_clear().env("MIMALLOC_ARENA_EAGER_COMMIT", "0");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the compiler {}: {e}", self.path.display()))?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (out, explanation) = std::thread::scope(|s| {
            // The helper may fail before reading all of its input: a broken pipe here
            // is explained by what it wrote on its standard error.
            s.spawn(move || stdin.map(|mut i| i.write_all(component)));
            let err = s.spawn(move || {
                let mut v = Vec::new();
                if let Some(e) = stderr {
                    let _ = e.take(MAX_EXPLANATION).read_to_end(&mut v);
                }
                v
            });
            let mut out = Vec::new();
            let read = stdout.map(|mut o| o.read_to_end(&mut out));
            (read.unwrap_or(Ok(0)).map(|_| out), err.join().unwrap_or_default())
        });
        // PID 1's reaper may already have collected it (ECHILD): the output says enough.
        let status = child.wait().ok();
        drop(exe);
        self.release_later(KEEP_UNPACKED);
        let out = out.map_err(|e| format!("reading what the compiler wrote: {e}"))?;
        if let Some(artifact) = framed(&out) {
            return Ok(artifact.to_vec());
        }
        let said = String::from_utf8_lossy(&explanation).trim().to_string();
        Err(match (said.is_empty(), status) {
            (false, _) => said,
            (true, Some(st)) => format!("the compiler ended without a result ({st})"),
            (true, None) => "the compiler ended without a result".to_string(),
        })
    }

    /// The unpacked executable: kept from an earlier compile, else unpacked now (one
    /// compile at a time unpacks; the others wait for it).
    fn executable(&self) -> Result<Arc<std::fs::File>, String> {
        let mut u = self.unpacked.lock().unwrap_or_else(|p| p.into_inner());
        u.uses += 1;
        if let Some(exe) = &u.exe {
            return Ok(exe.clone());
        }
        let exe = Arc::new(self.unpack()?);
        u.exe = Some(exe.clone());
        Ok(exe)
    }

    /// Lets go of the unpacked executable after `keep`, unless another compile used it
    /// in the meantime (that one's own release then follows).
    fn release_later(&self, keep: Duration) {
        let uses = self.unpacked.lock().unwrap_or_else(|p| p.into_inner()).uses;
        let unpacked = Arc::downgrade(&self.unpacked);
        let spawned = std::thread::Builder::new()
            .name("vyoma-compile-keep".into())
            .spawn(move || {
                std::thread::sleep(keep);
                if let Some(u) = unpacked.upgrade() {
                    let mut u = u.lock().unwrap_or_else(|p| p.into_inner());
                    if u.uses == uses {
                        u.exe = None;
                    }
                }
            });
        if spawned.is_err() {
            // No thread for the timer: let go now rather than keep it for good.
            self.unpacked.lock().unwrap_or_else(|p| p.into_inner()).exe = None;
        }
    }

    /// Whether the executable is unpacked now.
    #[cfg(test)]
    fn is_unpacked(&self) -> bool {
        self.unpacked.lock().unwrap_or_else(|p| p.into_inner()).exe.is_some()
    }

    /// The helper's executable, unpacked into a memory file after its bytes were
    /// checked against the hash in its name.
    fn unpack(&self) -> Result<std::fs::File, String> {
        let packed =
            std::fs::read(&self.path).map_err(|e| format!("cannot read the compiler {}: {e}", self.path.display()))?;
        let actual = sha256_hex(&packed);
        if actual != self.sha {
            return Err(RuntimeError::Corrupt {
                path: self.path.clone(),
                digest: "SHA-256",
                expected: self.sha.clone(),
                actual,
            }
            .to_string());
        }
        let fd = rustix::fs::memfd_create("vyoma-compile", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| format!("cannot make a memory file for the compiler: {e}"))?;
        let mut file = std::fs::File::from(fd);
        let mut decoder = ruzstd::decoding::StreamingDecoder::new(packed.as_slice())
            .map_err(|e| format!("the compiler {} is not zstd data: {e}", self.path.display()))?;
        std::io::copy(&mut decoder, &mut file)
            .map_err(|e| format!("cannot unpack the compiler {}: {e}", self.path.display()))?;
        Ok(file)
    }
}

/// Writes the helper's answer: the artifact's length, then the artifact.
pub fn write_framed(out: &mut impl Write, artifact: &[u8]) -> std::io::Result<()> {
    out.write_all(&(artifact.len() as u64).to_le_bytes())?;
    out.write_all(artifact)?;
    out.flush()
}

/// The artifact in a whole answer; `None` for anything else (nothing, or cut short).
fn framed(out: &[u8]) -> Option<&[u8]> {
    let (len, rest) = out.split_first_chunk::<8>()?;
    (u64::from_le_bytes(*len) == rest.len() as u64).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_that_promise_a_hash_are_helpers() {
        let name = helper_file_name(b"packed");
        let h = CompilerHelper::at(Path::new(&format!("/lib/vyoma/{name}"))).unwrap();
        assert_eq!(h.sha, sha256_hex(b"packed"));
        assert_eq!(h.fingerprint(false), format!("helper-{}", &h.sha[..24]));
        assert!(h.fingerprint(true).ends_with("-cow"));
        for bad in [
            "/lib/vyoma/vyoma-compile.zst",
            "/lib/vyoma/vyoma-compile-0123.zst",
            "/lib/vyoma/echo-0123.cwasm",
        ] {
            assert_eq!(CompilerHelper::at(Path::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn an_answer_counts_only_when_whole() {
        let mut out = Vec::new();
        write_framed(&mut out, b"artifact").unwrap();
        assert_eq!(framed(&out), Some(&b"artifact"[..]));
        assert_eq!(framed(&out[..out.len() - 1]), None, "cut short");
        assert_eq!(framed(b""), None);
        assert_eq!(framed(&out[..4]), None);
        let mut empty = Vec::new();
        write_framed(&mut empty, b"").unwrap();
        assert_eq!(framed(&empty), Some(&b""[..]));
    }

    #[test]
    fn a_damaged_helper_is_refused_before_it_runs() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(helper_file_name(b"the real bytes"));
        std::fs::write(&path, b"other bytes").unwrap();
        let h = CompilerHelper::find(d.path()).unwrap();
        let e = h.compile(b"\0asm", false).unwrap_err();
        assert!(e.contains("is damaged") && e.contains("vyoma image build"), "{e}");
    }

    /// `/bin/true` packed as a helper: it runs, and answers nothing.
    fn silent_helper(dir: &Path) -> CompilerHelper {
        let packed = zstd::bulk::compress(&std::fs::read("/bin/true").unwrap(), 3).unwrap();
        let path = dir.join(helper_file_name(&packed));
        std::fs::write(&path, packed).unwrap();
        CompilerHelper::at(&path).unwrap()
    }

    #[test]
    fn a_helper_that_answers_nothing_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let e = silent_helper(d.path()).compile(b"\0asm", false).unwrap_err();
        assert_eq!(e, "the compiler ended without a result (exit status: 0)");
    }

    #[test]
    fn the_unpacked_helper_is_kept_between_compiles_then_let_go() {
        let d = tempfile::tempdir().unwrap();
        let h = silent_helper(d.path());
        assert!(!h.is_unpacked());
        let _ = h.compile(b"\0asm", false);
        assert!(h.is_unpacked());
        // Kept: the next compile does not need the packed file.
        std::fs::remove_file(h.path()).unwrap();
        let e = h.clone().compile(b"\0asm", false).unwrap_err();
        assert!(e.contains("without a result"), "{e}");
        // Let go once its time is up: the next compile unpacks again.
        h.release_later(Duration::ZERO);
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while h.is_unpacked() && std::time::Instant::now() < until {
            std::thread::yield_now();
        }
        assert!(!h.is_unpacked());
        let e = h.compile(b"\0asm", false).unwrap_err();
        assert!(e.contains("cannot read the compiler"), "{e}");
    }

    #[test]
    fn data_that_is_not_zstd_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(helper_file_name(b"not zstd"));
        std::fs::write(&path, b"not zstd").unwrap();
        let e = CompilerHelper::at(&path).unwrap().compile(b"\0asm", false).unwrap_err();
        assert!(e.contains("is not zstd data"), "{e}");
    }
}
