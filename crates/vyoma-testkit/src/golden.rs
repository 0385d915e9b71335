//! Golden pictures: a frame compared pixel for pixel with a committed PNG. A missing one
//! is written and the test fails (look at it, then run again); `BLESS=1` rewrites them
//! after a deliberate change.

use std::path::{Path, PathBuf};

use vyoma_display::{Frame, png};

/// One golden picture, `DIR/NAME.png`.
#[derive(Debug)]
pub struct Golden {
    path: PathBuf,
    bless: bool,
}

impl Golden {
    /// The picture `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Golden {
        Golden {
            path: dir.join(format!("{name}.png")),
            bless: std::env::var_os("BLESS").is_some_and(|v| v == "1"),
        }
    }

    /// The picture to match, or `None` when this run writes it (it is missing, or
    /// `BLESS=1`).
    pub fn want(&self) -> Option<Frame> {
        if self.bless || !self.path.exists() {
            return None;
        }
        let bytes = std::fs::read(&self.path).unwrap_or_else(|e| panic!("{}: {e}", self.path.display()));
        Some(png::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", self.path.display())))
    }

    /// Writes `frame` as the picture; unless blessing, the test fails (it was missing).
    pub fn write(&self, frame: &Frame) {
        std::fs::write(&self.path, png::encode(frame).unwrap()).unwrap();
        assert!(
            self.bless,
            "{} was missing: written now; look at it, then run again",
            self.path.display()
        );
    }

    /// Fails the test: `got` is not `want`. `got` is written beside, as `NAME.got.png`.
    pub fn mismatch(&self, what: &str, want: &Frame, got: &Frame) -> ! {
        let out = self.path.with_extension("got.png");
        std::fs::write(&out, png::encode(got).unwrap()).unwrap();
        let how = if want.size == got.size {
            let differ = want.pixels.iter().zip(&got.pixels).filter(|(a, b)| a != b).count();
            format!("{differ} pixels differ")
        } else {
            format!("it is {}, the picture {}", got.size, want.size)
        };
        panic!(
            "{what} does not match {} ({how}); it is in {}",
            self.path.display(),
            out.display()
        );
    }

    /// Checks `frame` against the picture now (or writes it).
    pub fn check(&self, frame: &Frame) {
        match self.want() {
            None => self.write(frame),
            Some(want) if want != *frame => self.mismatch("the frame", &want, frame),
            Some(_) => {}
        }
    }
}

/// Whether `a` and `b` are the same size and differ by at most `tolerance` in every colour
/// channel of every pixel: for pictures that went through another program (QEMU's
/// `screendump`), where a channel may be rounded.
pub fn close(a: &Frame, b: &Frame, tolerance: u8) -> bool {
    let near = |x: u32, y: u32| {
        (0..3).all(|c| {
            let (p, q) = ((x >> (8 * c)) as u8, (y >> (8 * c)) as u8);
            p.abs_diff(q) <= tolerance
        })
    };
    a.size == b.size && a.pixels.iter().zip(&b.pixels).all(|(&x, &y)| near(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vyoma_display::Size;

    #[test]
    fn close_allows_a_rounded_channel_and_nothing_more() {
        let a = Frame::new(Size::new(2, 1), 0x0010_2030);
        let mut b = a.clone();
        b.pixels[1] = 0x0011_1f32;
        assert!(close(&a, &b, 2));
        assert!(!close(&a, &b, 1), "blue is 2 off");
        b.pixels[0] = 0x0010_2030 + 0x0300_0000;
        assert!(close(&a, &b, 2), "the X byte is not a colour");
        assert!(
            !close(&a, &Frame::new(Size::new(1, 2), 0x0010_2030), 255),
            "sizes differ"
        );
    }
}
