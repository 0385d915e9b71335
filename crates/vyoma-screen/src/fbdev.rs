//! The screen through the legacy framebuffer device (`/dev/fb0`), for kernels with fbdev
//! but no KMS driver for the machine's display. fbdev has no page flips: the display's
//! 60 Hz clock paces, and each frame's damaged rows are written in place with positioned
//! writes (no mapping, no ioctl: the geometry comes from sysfs, so nothing here is
//! `unsafe`). Pixels are XRGB8888 at 32 bits per pixel, RGB565 at 16.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use vyoma_display::backend::Backend;
use vyoma_display::{Frame, Rect, Size};

use crate::ScreenError;

/// The first framebuffer device.
pub const FB: &str = "/dev/fb0";
/// Its sysfs folder.
pub const FB_SYSFS: &str = "/sys/class/graphics/fb0";

/// How a framebuffer lays out its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 32 bits, `0x00RRGGBB` little-endian (the compositor's own).
    Xrgb8888,
    /// 16 bits: 5 red, 6 green, 5 blue.
    Rgb565,
}

impl Format {
    fn bytes(self) -> usize {
        match self {
            Format::Xrgb8888 => 4,
            Format::Rgb565 => 2,
        }
    }
}

/// Where a framebuffer's visible screen lies in its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// The visible screen.
    pub size: Size,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Its pixels.
    pub format: Format,
    /// The visible screen's top-left corner in the (virtual) framebuffer.
    pub pan: (usize, usize),
}

fn bad(dir: &Path, why: String) -> ScreenError {
    ScreenError::Fbdev {
        device: dir.display().to_string(),
        why,
    }
}

/// Two numbers separated by `sep`.
fn pair(s: &str, sep: char) -> Option<(u32, u32)> {
    let (a, b) = s.trim().split_once(sep)?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Reads a framebuffer's geometry from its sysfs folder (`/sys/class/graphics/fbN`):
/// `bits_per_pixel`, `stride`, `virtual_size`, `pan`, and the visible size from `mode`
/// (or the first of `modes`; `U:1280x800p-60`), else the virtual size.
pub fn geometry(dir: &Path) -> Result<Geometry, ScreenError> {
    let read =
        |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| bad(dir, format!("cannot read its `{f}`: {e}")));
    let format = match read("bits_per_pixel")?.trim() {
        "32" => Format::Xrgb8888,
        "16" => Format::Rgb565,
        other => {
            return Err(bad(
                dir,
                format!("it has {other} bits per pixel; VyomaOS draws 32 (XRGB8888) or 16 (RGB565)"),
            ));
        }
    };
    let stride: usize = read("stride")?
        .trim()
        .parse()
        .map_err(|_| bad(dir, "its `stride` is not a number".into()))?;
    let (vw, vh) =
        pair(&read("virtual_size")?, ',').ok_or_else(|| bad(dir, "its `virtual_size` is not `W,H`".into()))?;
    let pan = read("pan").ok().and_then(|p| pair(&p, ',')).unwrap_or((0, 0));
    let mode = |s: String| {
        let first = s.lines().next()?.to_string();
        let (_, rest) = first.split_once(':')?;
        let end = rest.find(|c: char| !c.is_ascii_digit() && c != 'x')?;
        pair(&rest[..end], 'x')
    };
    let (w, h) = read("mode")
        .ok()
        .and_then(mode)
        .or_else(|| read("modes").ok().and_then(mode))
        .unwrap_or((vw, vh));
    let (w, h) = (w.min(vw), h.min(vh));
    if w == 0 || h == 0 || stride < w as usize * format.bytes() {
        return Err(bad(
            dir,
            format!("its geometry is inconsistent ({w}x{h}, stride {stride})"),
        ));
    }
    Ok(Geometry {
        size: Size::new(w, h),
        stride,
        format,
        pan: (pan.0 as usize, pan.1 as usize),
    })
}

/// A framebuffer screen: a [`Backend`].
#[derive(Debug)]
pub struct Fbdev {
    file: File,
    path: PathBuf,
    geometry: Geometry,
    /// One row's bytes, reused.
    row: Vec<u8>,
    /// Writes that failed (the first is logged).
    failures: u64,
}

impl Fbdev {
    /// Opens the framebuffer `device` whose sysfs folder is `sysfs`, and clears it.
    pub fn open(device: &Path, sysfs: &Path) -> Result<Fbdev, ScreenError> {
        let geometry = geometry(sysfs)?;
        let file = OpenOptions::new()
            .write(true)
            .open(device)
            .map_err(|e| bad(device, format!("cannot open it: {e}")))?;
        let mut fb = Fbdev {
            file,
            path: device.to_path_buf(),
            geometry,
            row: Vec::new(),
            failures: 0,
        };
        let black = Frame::new(geometry.size, 0);
        fb.present(&black, &[Rect::new(0, 0, geometry.size.w, geometry.size.h)]);
        Ok(fb)
    }

    /// The visible screen's size.
    pub fn size(&self) -> Size {
        self.geometry.size
    }
}

impl Backend for Fbdev {
    fn name(&self) -> &str {
        "fbdev"
    }

    fn present(&mut self, frame: &Frame, damaged: &[Rect]) {
        let g = self.geometry;
        let bytes = g.format.bytes();
        let screen = Rect::new(0, 0, g.size.w, g.size.h);
        for &r in damaged {
            for (x, y, src) in frame.rows(r.intersect(screen)) {
                self.row.clear();
                match g.format {
                    Format::Xrgb8888 => self.row.extend(src.iter().flat_map(|p| p.to_le_bytes())),
                    Format::Rgb565 => self.row.extend(src.iter().flat_map(|&p| {
                        let v = ((p >> 8) & 0xf800) | ((p >> 5) & 0x07e0) | ((p >> 3) & 0x001f);
                        (v as u16).to_le_bytes()
                    })),
                }
                let offset = (y + g.pan.1) * g.stride + (x + g.pan.0) * bytes;
                if let Err(e) = self.file.write_all_at(&self.row, offset as u64) {
                    self.failures += 1;
                    if self.failures == 1 {
                        tracing::warn!(device = %self.path.display(), error = %e, "cannot write to the framebuffer");
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysfs(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (f, v) in files {
            std::fs::write(d.path().join(f), v).unwrap();
        }
        d
    }

    const FB_32: &[(&str, &str)] = &[
        ("bits_per_pixel", "32\n"),
        ("stride", "24\n"),
        ("virtual_size", "4,6\n"),
        ("pan", "0,3\n"),
        ("mode", "\n"),
        ("modes", "U:4x3p-0\n"),
    ];

    #[test]
    fn the_geometry_comes_from_sysfs() {
        let d = sysfs(FB_32);
        let g = geometry(d.path()).unwrap();
        assert_eq!(
            g,
            Geometry {
                size: Size::new(4, 3),
                stride: 24,
                format: Format::Xrgb8888,
                pan: (0, 3),
            }
        );
        let d = sysfs(&[("bits_per_pixel", "24"), ("stride", "12"), ("virtual_size", "4,3")]);
        let e = geometry(d.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("it has 24 bits per pixel; VyomaOS draws 32 (XRGB8888) or 16 (RGB565)"),
            "{e}"
        );
        let d = sysfs(&[("bits_per_pixel", "32"), ("stride", "8"), ("virtual_size", "4,3")]);
        let e = geometry(d.path()).unwrap_err().to_string();
        assert!(e.ends_with("its geometry is inconsistent (4x3, stride 8)"), "{e}");
        let d = sysfs(&[("bits_per_pixel", "16")]);
        let e = geometry(d.path()).unwrap_err().to_string();
        assert!(e.contains("cannot read its `stride`"), "{e}");
    }

    #[test]
    fn damaged_rows_are_written_where_the_visible_screen_is() {
        let d = sysfs(FB_32);
        let dev = d.path().join("fb");
        std::fs::write(&dev, vec![0xee; 24 * 6]).unwrap();
        let mut fb = Fbdev::open(&dev, d.path()).unwrap();
        let mem = || std::fs::read(&dev).unwrap();
        // Opening cleared the visible part (rows 3..6), not the rest.
        let m = mem();
        assert!(m[..72].iter().all(|&b| b == 0xee) && m[72..].iter().enumerate().all(|(i, &b)| b == 0 || i % 24 >= 16));
        let mut frame = Frame::new(Size::new(4, 3), 0x0011_2233);
        frame.pixels[5] = 0x00ff_8040;
        fb.present(&frame, &[Rect::new(1, 1, 1, 1), Rect::new(9, 9, 5, 5)]);
        let m = mem();
        let px = |x: usize, y: usize| u32::from_le_bytes(m[(y + 3) * 24 + x * 4..][..4].try_into().unwrap());
        assert_eq!(px(1, 1), 0x00ff_8040);
        assert_eq!(px(0, 1), 0, "outside the damage");
    }

    #[test]
    fn rgb565_keeps_the_top_bits_of_each_channel() {
        let d = sysfs(&[("bits_per_pixel", "16"), ("stride", "4"), ("virtual_size", "2,1")]);
        let dev = d.path().join("fb");
        std::fs::write(&dev, [0u8; 4]).unwrap();
        let mut fb = Fbdev::open(&dev, d.path()).unwrap();
        let frame = Frame {
            size: Size::new(2, 1),
            pixels: vec![0x00ff_0000, 0x0008_0408],
        };
        fb.present(&frame, &[Rect::new(0, 0, 2, 1)]);
        let m = std::fs::read(&dev).unwrap();
        assert_eq!(u16::from_le_bytes([m[0], m[1]]), 0xf800);
        assert_eq!(u16::from_le_bytes([m[2], m[3]]), 0x0821);
    }
}
