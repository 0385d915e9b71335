//! The file operations the store makes, behind a trait so tests can crash it at any step
//! and lose what a power cut would lose. [`RealFs`] is the file system.
//!
//! Durability is explicit: a file's contents survive a power cut only after
//! [`Fs::sync_file`], and a name created, renamed or removed in a folder only after
//! [`Fs::sync_dir`] of that folder (POSIX promises no more; ext4 and the others give this
//! much).

use std::io::{self, Write};
use std::path::Path;

/// The store's file operations. Paths are absolute.
pub trait Fs: Send + Sync + std::fmt::Debug {
    /// Creates the folder and its parents (and makes their names durable).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates or truncates `file` and writes `bytes` into it (not yet durable).
    fn write(&self, file: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Makes `file`'s contents durable.
    fn sync_file(&self, file: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` atomically (the names are not yet durable).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the names in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Reads `file` whole.
    fn read(&self, file: &Path) -> io::Result<Vec<u8>>;
    /// Removes `file` (not yet durable).
    fn remove_file(&self, file: &Path) -> io::Result<()>;
    /// The names of the files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Fs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        // The folders that do not exist yet, deepest first: each one's name is made
        // durable by syncing its parent.
        let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.is_dir()).collect();
        if missing.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)?;
        for m in missing {
            if let Some(parent) = m.parent() {
                self.sync_dir(parent)?;
            }
        }
        Ok(())
    }

    fn write(&self, file: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut f = std::fs::File::create(file)?;
        f.write_all(bytes)
    }

    fn sync_file(&self, file: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new().write(true).open(file)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    fn read(&self, file: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(file)
    }

    fn remove_file(&self, file: &Path) -> io::Result<()> {
        std::fs::remove_file(file)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(out)
    }
}
