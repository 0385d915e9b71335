//! The initramfs: a newc cpio archive, compressed with zstd (the kernel's `RD_ZSTD`).
//!
//! Entries are written in sorted order with zero timestamps and fixed owners, so the same
//! inputs give the same bytes. The kernel needs `/dev/console` to exist in the archive to
//! give init its standard streams before `/dev` is mounted.

use std::collections::BTreeMap;
use std::io::Write;

use crate::ImageError;

/// What a path in the archive is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory.
    Dir,
    /// A file with its permission bits and contents.
    File {
        /// Permission bits (e.g. 0o755).
        mode: u32,
        /// Contents.
        data: Vec<u8>,
    },
    /// A character device.
    CharDev {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// The archive's contents, by path (no leading `/`).
#[derive(Debug, Default, Clone)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// The base every VyomaOS image has: mount points and `/dev/console`.
    pub fn base() -> Tree {
        let mut t = Tree::default();
        for d in ["dev", "proc", "sys", "tmp", "run", "apps", "etc", "lib/vyoma"] {
            t.add(d, Node::Dir);
        }
        t.add("dev/console", Node::CharDev { major: 5, minor: 1 });
        t
    }

    /// Adds `node` at `path`, and any missing parent directories.
    pub fn add(&mut self, path: &str, node: Node) {
        let path = path.trim_start_matches('/');
        let mut parent = String::new();
        for part in path.split('/').take(path.split('/').count() - 1) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.nodes.entry(parent.clone()).or_insert(Node::Dir);
        }
        self.nodes.insert(path.to_string(), node);
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Every path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    /// The uncompressed newc archive.
    pub fn to_cpio(&self) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::new();
        let io = |e| ImageError::io("writing the cpio archive".into(), e);
        for (ino, (path, node)) in self.nodes.iter().enumerate() {
            let b = cpio::newc::Builder::new(path)
                .ino(ino as u32 + 1)
                .uid(0)
                .gid(0)
                .mtime(0);
            let (b, data): (_, &[u8]) = match node {
                Node::Dir => (b.mode(0o040755).nlink(2), &[]),
                Node::File { mode, data } => (b.mode(0o100000 | mode).nlink(1), data),
                Node::CharDev { major, minor } => {
                    (b.mode(0o020600).nlink(1).rdev_major(*major).rdev_minor(*minor), &[])
                }
            };
            let size = u32::try_from(data.len()).map_err(|_| ImageError::TooBig(path.clone()))?;
            let mut w = b.write(&mut out, size);
            w.write_all(data).map_err(io)?;
            w.finish().map_err(io)?;
        }
        cpio::newc::trailer(&mut out).map_err(io)?;
        Ok(out)
    }
}

/// zstd level for the initramfs: the smallest archive the kernel still unpacks quickly.
const ZSTD_LEVEL: i32 = 19;

/// An archive from [`Tree::to_cpio`], compressed as the kernel unpacks it.
pub fn compress(cpio: &[u8]) -> Result<Vec<u8>, ImageError> {
    zstd::bulk::compress(cpio, ZSTD_LEVEL).map_err(|e| ImageError::io("compressing the initramfs".into(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(archive: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = archive;
        loop {
            let r = cpio::newc::Reader::new(rest).unwrap();
            if r.entry().is_trailer() {
                return out;
            }
            let e = r.entry().clone();
            let mut data = vec![0u8; e.file_size() as usize];
            let mut r = r;
            std::io::Read::read_exact(&mut r, &mut data).unwrap();
            out.push((e.name().to_string(), e.mode(), e.rdev_minor(), data));
            rest = r.finish().unwrap();
        }
    }

    #[test]
    fn archives_read_back_with_parents_devices_and_modes() {
        let mut t = Tree::base();
        t.add(
            "/init",
            Node::File {
                mode: 0o755,
                data: b"\x7fELF...".to_vec(),
            },
        );
        t.add(
            "apps/echo/app.toml",
            Node::File {
                mode: 0o644,
                data: b"manifest_version = 1\n".to_vec(),
            },
        );
        let entries = read_back(&t.to_cpio().unwrap());
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "apps",
                "apps/echo",
                "apps/echo/app.toml",
                "dev",
                "dev/console",
                "etc",
                "init",
                "lib",
                "lib/vyoma",
                "proc",
                "run",
                "sys",
                "tmp"
            ]
        );
        let console = &entries[4];
        assert_eq!((console.1, console.2), (0o020600, 1));
        let init = &entries[6];
        assert_eq!(init.0, "init");
        assert_eq!((init.1, init.3.as_slice()), (0o100755, &b"\x7fELF..."[..]));
        assert_eq!(entries[1].1, 0o040755);
    }

    #[test]
    fn the_same_tree_gives_the_same_bytes_and_compresses() {
        let mut t = Tree::base();
        t.add(
            "etc/motd",
            Node::File {
                mode: 0o644,
                data: vec![b'x'; 10_000],
            },
        );
        assert_eq!(t.to_cpio().unwrap(), t.clone().to_cpio().unwrap());
        let z = compress(&t.to_cpio().unwrap()).unwrap();
        assert!(z.len() < 1000, "{} bytes", z.len());
        assert_eq!(zstd::bulk::decompress(&z, 1 << 20).unwrap(), t.to_cpio().unwrap());
    }
}
