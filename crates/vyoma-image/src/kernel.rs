//! The kernel: Debian's Linux 6.1 source, `make allnoconfig` with `kernel.config` on top,
//! built once per configuration and cached outside the work tree.
//!
//! The cache key is a hash of the configuration fragment and the source tarball (name and
//! size), so a rebuild happens only when either changes. Builds of the same key are
//! serialised with a lock file; the kernel appears in the cache atomically.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::ImageError;

/// The configuration fragment applied on top of `allnoconfig`.
pub const FRAGMENT: &str = include_str!("../kernel.config");

/// Bump when the build steps change in a way that changes the kernel.
const BUILDER_VERSION: u32 = 1;

/// Where Debian's `linux-source` package puts the source.
const SOURCE_DIR: &str = "/usr/src";

/// The `CONFIG_X=v` lines of a fragment.
pub fn fragment_symbols(fragment: &str) -> Vec<(&str, &str)> {
    fragment
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .collect()
}

/// Symbols of `fragment` whose value in `config` (a `.config`) differs: Kconfig dropped
/// them because a dependency is missing. Returns `SYMBOL (wanted V, got W)` lines.
pub fn missing_symbols(fragment: &str, config: &str) -> Vec<String> {
    let got = |sym: &str| {
        config.lines().find_map(|l| {
            l.strip_prefix(sym)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_string)
        })
    };
    fragment_symbols(fragment)
        .into_iter()
        .filter_map(|(sym, want)| match got(sym) {
            Some(v) if v == want => None,
            other => Some(format!(
                "{sym} (wanted {want}, got {})",
                other.unwrap_or_else(|| "not set".into())
            )),
        })
        .collect()
}

/// The Linux source tarball: `$VYOMA_LINUX_SOURCE`, else the newest
/// `/usr/src/linux-source-*.tar.xz`.
pub fn find_source() -> Result<PathBuf, ImageError> {
    if let Some(p) = std::env::var_os("VYOMA_LINUX_SOURCE") {
        return Ok(PathBuf::from(p));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(SOURCE_DIR)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let n = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    n.starts_with("linux-source-") && n.ends_with(".tar.xz")
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().ok_or(ImageError::NoKernelSource)
}

/// The cache key of a kernel built from `source` with `fragment`.
pub fn cache_key(source: &Path, fragment: &str) -> Result<String, ImageError> {
    let size = std::fs::metadata(source)
        .map_err(|e| ImageError::io(format!("reading {}", source.display()), e))?
        .len();
    let mut h = Sha256::new();
    h.update(format!("builder {BUILDER_VERSION}\n"));
    h.update(
        source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    h.update(format!(" {size}\n"));
    h.update(fragment);
    Ok(hex::encode(&h.finalize()[..8]))
}

/// A kernel image and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The `bzImage`.
    pub path: PathBuf,
    /// The cache key (configuration hash).
    pub key: String,
    /// Built now rather than found in the cache.
    pub built: bool,
}

/// The cached kernel for the current source and fragment, building it first if needed.
/// `cache_root` is e.g. `~/.cache/vyoma`.
pub fn kernel(cache_root: &Path) -> Result<Kernel, ImageError> {
    let source = find_source()?;
    let key = cache_key(&source, FRAGMENT)?;
    let dir = cache_root.join("kernel").join(&key);
    let bz = dir.join("bzImage");
    let cached = || {
        bz.is_file().then(|| Kernel {
            path: bz.clone(),
            key: key.clone(),
            built: false,
        })
    };
    if let Some(k) = cached() {
        return Ok(k);
    }
    std::fs::create_dir_all(&dir).map_err(|e| ImageError::io(format!("creating {}", dir.display()), e))?;
    let lock = std::fs::File::create(dir.join(".lock"))
        .map_err(|e| ImageError::io(format!("creating the lock in {}", dir.display()), e))?;
    lock.lock()
        .map_err(|e| ImageError::io(format!("locking {}", dir.display()), e))?;
    // Someone else may have built it while we waited for the lock.
    if let Some(k) = cached() {
        return Ok(k);
    }
    let src = extract(cache_root, &source)?;
    let build = dir.join("build");
    std::fs::create_dir_all(&build).map_err(|e| ImageError::io(format!("creating {}", build.display()), e))?;
    let fragment_file = build.join("vyoma.config");
    std::fs::write(&fragment_file, FRAGMENT).map_err(|e| ImageError::io("writing the config fragment".into(), e))?;
    let make = |args: &[&str]| {
        let mut c = Command::new("make");
        c.arg("-C")
            .arg(&src)
            .arg(format!("O={}", build.display()))
            .arg("ARCH=x86_64");
        c.args(args);
        c
    };
    let mut config = make(&["allnoconfig"]);
    config.env("KCONFIG_ALLCONFIG", &fragment_file);
    run_quiet(config, "make allnoconfig")?;
    let dot_config = std::fs::read_to_string(build.join(".config"))
        .map_err(|e| ImageError::io("reading the kernel .config".into(), e))?;
    let missing = missing_symbols(FRAGMENT, &dot_config);
    if !missing.is_empty() {
        return Err(ImageError::KernelConfig(missing));
    }
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut b = make(&[&format!("-j{jobs}"), "bzImage"]);
    run_with_progress(&mut b, &build.join("build.log"), &key)?;
    let tmp = dir.join("bzImage.tmp");
    std::fs::copy(build.join("arch/x86/boot/bzImage"), &tmp)
        .map_err(|e| ImageError::io("copying the built bzImage".into(), e))?;
    std::fs::rename(&tmp, &bz).map_err(|e| ImageError::io("storing the bzImage".into(), e))?;
    // The objects are 100+ MB and only useful for this exact configuration.
    let _ = std::fs::copy(build.join(".config"), dir.join("config"));
    let _ = std::fs::remove_dir_all(&build);
    Ok(Kernel {
        path: bz,
        key,
        built: true,
    })
}

/// Unpacks the source tarball once into `<cache>/kernel/src/NAME`.
fn extract(cache_root: &Path, source: &Path) -> Result<PathBuf, ImageError> {
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".tar.xz").to_string())
        .unwrap_or_else(|| "linux-source".into());
    let root = cache_root.join("kernel").join("src");
    let dest = root.join(&name);
    if dest.join("Makefile").is_file() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&root).map_err(|e| ImageError::io(format!("creating {}", root.display()), e))?;
    eprintln!("unpacking {} (once) ...", source.display());
    let tmp = tempfile::tempdir_in(&root).map_err(|e| ImageError::io("creating a temp dir".into(), e))?;
    let mut tar = Command::new("tar");
    tar.arg("-xf").arg(source).arg("-C").arg(tmp.path());
    run_quiet(tar, "tar (unpacking the Linux source)")?;
    // The tarball holds one top folder.
    let top = std::fs::read_dir(tmp.path())
        .ok()
        .and_then(|mut d| d.next())
        .and_then(Result::ok)
        .map(|e| e.path())
        .ok_or_else(|| ImageError::Tool {
            what: "tar".into(),
            detail: format!("{} is empty", source.display()),
        })?;
    std::fs::rename(&top, &dest).map_err(|e| ImageError::io(format!("moving the source to {}", dest.display()), e))?;
    Ok(dest)
}

fn run_quiet(mut c: Command, what: &str) -> Result<(), ImageError> {
    let out = c.output().map_err(|e| ImageError::Tool {
        what: what.into(),
        detail: format!(
            "cannot run it: {e} (is it installed? `apt-get install make gcc flex bison bc libelf-dev xz-utils zstd`)"
        ),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(ImageError::Tool {
            what: what.into(),
            detail: tail(&err, 20),
        });
    }
    Ok(())
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs the kernel build, showing progress: a spinner on a terminal, a line every 30 s
/// otherwise (CI logs). The full output goes to `log`.
fn run_with_progress(c: &mut Command, log: &Path, key: &str) -> Result<(), ImageError> {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ImageError::Tool {
            what: "make".into(),
            detail: format!("cannot run it: {e} (`apt-get install make gcc flex bison bc libelf-dev`)"),
        })?;
    let stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            s.push_str(&l);
            s.push('\n');
        }
        s
    });
    let mut log_file =
        std::fs::File::create(log).map_err(|e| ImageError::io(format!("creating {}", log.display()), e))?;
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let b = indicatif::ProgressBar::new_spinner();
        b.enable_steady_tick(Duration::from_millis(200));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(format!("building the Linux kernel (config {key})"));
    eprintln!("building the Linux kernel (config {key}); this takes a few minutes, once per configuration");
    let mut steps = 0u64;
    let mut last_note = Instant::now();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        use std::io::Write;
        let _ = writeln!(log_file, "{line}");
        let l = line.trim_start();
        if ["CC", "LD", "AR", "AS", "OBJCOPY", "ZSTD"]
            .iter()
            .any(|p| l.starts_with(p))
        {
            steps += 1;
            bar.set_message(format!("building the Linux kernel: {steps} steps, {l}"));
        }
        if !tty && last_note.elapsed() >= Duration::from_secs(30) {
            eprintln!("  kernel build: {steps} steps, {}s", start.elapsed().as_secs());
            last_note = Instant::now();
        }
    }
    let status = child.wait().map_err(|e| ImageError::io("waiting for make".into(), e))?;
    let err = err_thread.join().unwrap_or_default();
    bar.finish_and_clear();
    if !status.success() {
        return Err(ImageError::Tool {
            what: "make bzImage".into(),
            detail: format!("{}\n(full output: {})", tail(&err, 30), log.display()),
        });
    }
    eprintln!("kernel built in {}s ({steps} steps)", start.elapsed().as_secs());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_is_well_formed() {
        let syms = fragment_symbols(FRAGMENT);
        assert!(syms.len() > 40, "{syms:?}");
        for (s, v) in &syms {
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{s}"
            );
            assert!(!v.is_empty(), "{s} has no value");
        }
        for needed in [
            "CONFIG_SERIAL_8250_CONSOLE",
            "CONFIG_BLK_DEV_INITRD",
            "CONFIG_RD_ZSTD",
            "CONFIG_FUTEX",
            "CONFIG_EPOLL",
            "CONFIG_ACPI",
        ] {
            assert!(syms.iter().any(|(s, _)| *s == needed), "{needed} missing");
        }
    }

    #[test]
    fn dropped_symbols_are_named() {
        let fragment = "# c\nCONFIG_A=y\nCONFIG_B=y\nCONFIG_N=64\n";
        let config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=8\nCONFIG_AB=y\n";
        assert_eq!(
            missing_symbols(fragment, config),
            ["CONFIG_B (wanted y, got not set)", "CONFIG_N (wanted 64, got 8)"]
        );
        assert!(missing_symbols(fragment, "CONFIG_A=y\nCONFIG_B=y\nCONFIG_N=64\n").is_empty());
    }

    #[test]
    fn the_key_follows_the_fragment_and_the_source() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("linux-source-6.1.tar.xz");
        std::fs::write(&src, b"tarball").unwrap();
        let k = cache_key(&src, "CONFIG_A=y\n").unwrap();
        assert_eq!(k, cache_key(&src, "CONFIG_A=y\n").unwrap());
        assert_ne!(k, cache_key(&src, "CONFIG_A=n\n").unwrap());
        std::fs::write(&src, b"another tarball").unwrap();
        assert_ne!(k, cache_key(&src, "CONFIG_A=y\n").unwrap());
    }
}
