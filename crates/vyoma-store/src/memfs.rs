//! A file system in memory that models a power cut: what was not made durable
//! ([`Fs::sync_file`], [`Fs::sync_dir`]) is lost, and a file whose contents were not synced
//! comes back torn (cut to half). It can be told to crash at its Nth change: that change
//! and every later one fail, as if the process had died there. Test-only.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fs::Fs;

#[derive(Debug, Default, Clone)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    synced: bool,
}

#[derive(Debug, Default)]
struct World {
    inodes: Vec<Inode>,
    /// Folder -> name -> inode, as the running system sees it.
    live: BTreeMap<PathBuf, BTreeMap<String, usize>>,
    /// The same, as it would be found after a power cut.
    durable: BTreeMap<PathBuf, BTreeMap<String, usize>>,
    /// Changes made so far.
    steps: u64,
    /// The change that crashes, if any.
    crash_at: Option<u64>,
    crashed: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MemFs {
    world: Mutex<World>,
}

fn split(p: &Path) -> (PathBuf, String) {
    (
        p.parent().expect("absolute path").to_path_buf(),
        p.file_name().expect("a file name").to_string_lossy().into_owned(),
    )
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash")
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", p.display()))
}

impl MemFs {
    /// The number of changes made so far.
    pub fn steps(&self) -> u64 {
        self.world.lock().unwrap().steps
    }

    /// Crash at the `n`th change from now (1 = the next one).
    pub fn crash_after(&self, n: u64) {
        let mut w = self.world.lock().unwrap();
        w.crash_at = Some(w.steps + n);
    }

    /// The power comes back: only what was durable is there, unsynced contents torn.
    pub fn power_cut(&self) {
        let mut w = self.world.lock().unwrap();
        w.live = w.durable.clone();
        for i in &mut w.inodes {
            if !i.synced {
                // The write reached the disk in part.
                let keep = i.live.len() / 2;
                i.durable = i.live[..keep].to_vec();
            }
            i.live = i.durable.clone();
            i.synced = true;
        }
        w.crash_at = None;
        w.crashed = false;
    }

    /// Counts a change; fails it if this is where the crash is.
    fn step(w: &mut World) -> io::Result<()> {
        if w.crashed {
            return Err(crashed());
        }
        w.steps += 1;
        if w.crash_at == Some(w.steps) {
            w.crashed = true;
            return Err(crashed());
        }
        Ok(())
    }

    fn lookup(w: &World, p: &Path) -> Option<usize> {
        let (dir, name) = split(p);
        w.live.get(&dir)?.get(&name).copied()
    }
}

impl Fs for MemFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut w = self.world.lock().unwrap();
        if w.live.contains_key(dir) {
            return Ok(());
        }
        Self::step(&mut w)?;
        // Folders are made durable at once (the store creates them only at open).
        for d in dir.ancestors() {
            w.live.entry(d.to_path_buf()).or_default();
            w.durable.entry(d.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn write(&self, file: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut w = self.world.lock().unwrap();
        Self::step(&mut w)?;
        let (dir, name) = split(file);
        if !w.live.contains_key(&dir) {
            return Err(not_found(&dir));
        }
        // A new inode (like O_TRUNC on a file nobody else has open, followed by writes).
        let ino = match Self::lookup(&w, file) {
            Some(i) => i,
            None => {
                w.inodes.push(Inode {
                    synced: true,
                    ..Inode::default()
                });
                let i = w.inodes.len() - 1;
                w.live.get_mut(&dir).unwrap().insert(name, i);
                i
            }
        };
        let node = &mut w.inodes[ino];
        node.live = bytes.to_vec();
        node.synced = false;
        Ok(())
    }

    fn sync_file(&self, file: &Path) -> io::Result<()> {
        let mut w = self.world.lock().unwrap();
        Self::step(&mut w)?;
        let ino = Self::lookup(&w, file).ok_or_else(|| not_found(file))?;
        let node = &mut w.inodes[ino];
        node.durable = node.live.clone();
        node.synced = true;
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut w = self.world.lock().unwrap();
        Self::step(&mut w)?;
        let (fd, fname) = split(from);
        let (td, tname) = split(to);
        let ino = w
            .live
            .get_mut(&fd)
            .and_then(|d| d.remove(&fname))
            .ok_or_else(|| not_found(from))?;
        w.live.get_mut(&td).ok_or_else(|| not_found(&td))?.insert(tname, ino);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut w = self.world.lock().unwrap();
        Self::step(&mut w)?;
        let names = w.live.get(dir).cloned().ok_or_else(|| not_found(dir))?;
        w.durable.insert(dir.to_path_buf(), names);
        Ok(())
    }

    fn read(&self, file: &Path) -> io::Result<Vec<u8>> {
        let w = self.world.lock().unwrap();
        if w.crashed {
            return Err(crashed());
        }
        let ino = Self::lookup(&w, file).ok_or_else(|| not_found(file))?;
        Ok(w.inodes[ino].live.clone())
    }

    fn remove_file(&self, file: &Path) -> io::Result<()> {
        let mut w = self.world.lock().unwrap();
        Self::step(&mut w)?;
        let (dir, name) = split(file);
        w.live
            .get_mut(&dir)
            .and_then(|d| d.remove(&name))
            .map(|_| ())
            .ok_or_else(|| not_found(file))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let w = self.world.lock().unwrap();
        if w.crashed {
            return Err(crashed());
        }
        Ok(w.live.get(dir).ok_or_else(|| not_found(dir))?.keys().cloned().collect())
    }
}
