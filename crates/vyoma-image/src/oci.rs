//! The image as an OCI image (`vyoma image build --oci`), for orchestrators that boot a
//! kernel and an initramfs from a container image (KubeVirt's `kernelBoot.container`):
//! an OCI image layout, archived as one tar file, of a `scratch` image with a single layer
//! holding `/boot/bzImage` and `/boot/initramfs`, owned by 107:107 (the `qemu` user
//! KubeVirt runs as), mode 0444.
//!
//! Deterministic: the same kernel and initramfs give the same bytes (fixed times, owners
//! and order, gzip without a timestamp). The layer is written with the `tar` and `flate2`
//! crates; the three small JSON documents of the layout (index, manifest, config) with
//! `serde_json`, following the OCI image spec v1.1.

use std::io::Write as _;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ImageError;

/// The archive's file name, in the image folder.
pub const OCI_ARCHIVE: &str = "vyoma-image.oci.tar";
/// Where the kernel and initramfs are inside the image.
pub const KERNEL_PATH: &str = "/boot/bzImage";
/// See [`KERNEL_PATH`].
pub const INITRD_PATH: &str = "/boot/initramfs";
/// The owner KubeVirt needs for the files (its `qemu` user and group).
const OWNER: u64 = 107;

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |e| ImageError::io(what.to_string(), e)
}

/// A tar header for a file or directory at `path`, with fixed metadata.
fn header(path: &str, size: u64, dir: bool, mode: u32, owner: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(owner);
    h.set_gid(owner);
    h.set_mtime(0);
    // Paths here are short ASCII constants.
    let _ = h.set_path(path);
    h.set_cksum();
    h
}

/// The layer: an uncompressed tar of `boot/`, `boot/bzImage`, `boot/initramfs`.
fn layer(kernel: &[u8], initramfs: &[u8]) -> Result<Vec<u8>, ImageError> {
    let mut t = tar::Builder::new(Vec::new());
    t.append(&header("boot/", 0, true, 0o555, OWNER), std::io::empty())
        .map_err(io("writing the layer"))?;
    for (path, data) in [(&KERNEL_PATH[1..], kernel), (&INITRD_PATH[1..], initramfs)] {
        t.append(&header(path, data.len() as u64, false, 0o444, OWNER), data)
            .map_err(io("writing the layer"))?;
    }
    t.into_inner().map_err(io("writing the layer"))
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, ImageError> {
    // No file name, no time: the same input gives the same bytes.
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(data).map_err(io("compressing the layer"))?;
    gz.finish().map_err(io("compressing the layer"))
}

/// What went into the archive.
#[derive(Debug, Clone)]
pub struct OciReport {
    /// The archive's size.
    pub size: u64,
    /// The manifest's digest (what a registry shows for the pushed image).
    pub manifest_digest: String,
}

/// Writes the OCI image layout archive of `kernel` and `initramfs` to `out`, with the
/// kernel command line `cmdline` recorded as a label.
pub fn write_archive(out: &Path, kernel: &[u8], initramfs: &[u8], cmdline: &str) -> Result<OciReport, ImageError> {
    let tar = layer(kernel, initramfs)?;
    let diff_id = digest(&tar);
    let layer_gz = gzip(&tar)?;
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Labels": {
                "org.opencontainers.image.title": "VyomaOS boot image",
                "org.opencontainers.image.version": env!("CARGO_PKG_VERSION"),
                "org.vyomaos.kernel-path": KERNEL_PATH,
                "org.vyomaos.initrd-path": INITRD_PATH,
                "org.vyomaos.kernel-args": cmdline,
            }
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created_by": "vyoma image build --oci" }],
    }))
    .map_err(|e| ImageError::io("writing the image config".into(), std::io::Error::other(e)))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest(&layer_gz),
            "size": layer_gz.len(),
        }],
    }))
    .map_err(|e| ImageError::io("writing the manifest".into(), std::io::Error::other(e)))?;
    let manifest_digest = digest(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": "latest" },
            "platform": { "architecture": "amd64", "os": "linux" },
        }],
    }))
    .map_err(|e| ImageError::io("writing the index".into(), std::io::Error::other(e)))?;

    let mut archive = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        archive
            .append(&header(path, data.len() as u64, false, 0o644, 0), data)
            .map_err(io("writing the OCI archive"))
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json", &index)?;
    for blob in [&config, &manifest, &layer_gz] {
        let name = format!("blobs/sha256/{}", &digest(blob)["sha256:".len()..]);
        add(&name, blob)?;
    }
    let bytes = archive.into_inner().map_err(io("writing the OCI archive"))?;
    std::fs::write(out, &bytes).map_err(|e| ImageError::io(format!("writing {}", out.display()), e))?;
    Ok(OciReport {
        size: bytes.len() as u64,
        manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_is_a_layout_whose_digests_hold() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("x.oci.tar");
        let r = write_archive(&out, b"kernel bytes", b"initramfs bytes", "console=ttyS0").unwrap();
        let again = d.path().join("y.oci.tar");
        write_archive(&again, b"kernel bytes", b"initramfs bytes", "console=ttyS0").unwrap();
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(&again).unwrap(),
            "deterministic"
        );

        let mut files = std::collections::BTreeMap::new();
        let mut a = tar::Archive::new(std::fs::File::open(&out).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            files.insert(path, data);
        }
        // Every blob is named by its digest.
        for (path, data) in &files {
            if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                assert_eq!(digest(data), format!("sha256:{hex}"));
            }
        }
        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        assert_eq!(index["manifests"][0]["digest"], r.manifest_digest.as_str());
        let manifest = &files[&format!("blobs/sha256/{}", &r.manifest_digest[7..])];
        let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
        let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
        let layer = &files[&format!("blobs/sha256/{}", &layer_digest[7..])];
        // The layer holds the two files, owned by 107.
        let mut l = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
        let mut seen = Vec::new();
        for e in l.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            seen.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                h.uid().unwrap(),
                h.mode().unwrap(),
                data,
            ));
        }
        assert_eq!(seen[1], ("boot/bzImage".into(), 107, 0o444, b"kernel bytes".to_vec()));
        assert_eq!(
            seen[2],
            ("boot/initramfs".into(), 107, 0o444, b"initramfs bytes".to_vec())
        );
    }
}
