//! Text the compositor draws itself (placeholders, the status bar), in a bundled
//! pre-rasterised font (Noto Sans Mono, 16 px, Basic Latin; `noto-sans-mono-bitmap`).
//! App text is drawn as it is: a character the font lacks becomes `?`, so no app name can
//! draw anything but glyphs.

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

use crate::Frame;
use crate::geom::Rect;

/// Height of a line of text, in pixels.
pub const LINE: u32 = RasterHeight::Size16 as u32;

/// Width of every character, in pixels (the font is monospaced).
pub fn char_width() -> u32 {
    get_raster_width(FontWeight::Regular, RasterHeight::Size16) as u32
}

/// Width of `text` in pixels.
pub fn width(text: &str) -> u32 {
    char_width().saturating_mul(text.chars().count() as u32)
}

/// Blends `a` over `b` by `coverage` (0..=255), per channel.
fn blend(fg: u32, bg: u32, coverage: u8) -> u32 {
    let c = coverage as u32;
    let mix = |shift: u32| {
        let (f, b) = ((fg >> shift) & 0xff, (bg >> shift) & 0xff);
        ((f * c + b * (255 - c) + 127) / 255) << shift
    };
    mix(16) | mix(8) | mix(0)
}

/// Draws `text` with its top-left corner at (`x`, `y`) in `color`, clipped to `clip` and
/// the frame; returns the x after the last character.
pub fn draw(frame: &mut Frame, x: i32, y: i32, text: &str, color: u32, clip: Rect) -> i32 {
    let clip = clip.intersect(frame.size.rect());
    let cw = char_width() as i32;
    let mut at = x;
    for c in text.chars() {
        let glyph = get_raster(c, FontWeight::Regular, RasterHeight::Size16)
            .or_else(|| get_raster('?', FontWeight::Regular, RasterHeight::Size16));
        if let Some(g) = glyph {
            for (dy, row) in g.raster().iter().enumerate() {
                for (dx, &coverage) in row.iter().enumerate() {
                    let (px, py) = (at + dx as i32, y + dy as i32);
                    if coverage == 0 || !clip.contains(px, py) {
                        continue;
                    }
                    let i = py as usize * frame.size.w as usize + px as usize;
                    frame.pixels[i] = blend(color, frame.pixels[i], coverage);
                }
            }
        }
        at = at.saturating_add(cw);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::Size;

    #[test]
    fn text_is_clipped_and_unknown_characters_drawn_as_a_question_mark() {
        let mut f = Frame::new(Size::new(40, 20), 0);
        let end = draw(&mut f, 0, 0, "A\u{1F600}", 0x00ff_ffff, Rect::new(0, 0, 40, 20));
        assert_eq!(end, 2 * char_width() as i32);
        let lit = f.pixels.iter().filter(|p| **p != 0).count();
        assert!(lit > 10, "glyphs were drawn");
        let mut g = Frame::new(Size::new(40, 20), 0);
        draw(&mut g, 0, 0, "A?", 0x00ff_ffff, Rect::new(0, 0, 40, 20));
        assert_eq!(f, g, "an unknown character is a question mark");
        let mut h = Frame::new(Size::new(40, 20), 0);
        draw(&mut h, -5, -5, "AAAAAAAA", 0x00ff_ffff, Rect::new(0, 0, 5, 5));
        assert!(
            h.pixels
                .iter()
                .enumerate()
                .all(|(i, p)| *p == 0 || (i % 40 < 5 && i / 40 < 5))
        );
    }

    #[test]
    fn blending_is_exact_at_the_ends() {
        assert_eq!(blend(0x00ff_8000, 0x0000_0000, 255), 0x00ff_8000);
        assert_eq!(blend(0x00ff_8000, 0x0012_3456, 0), 0x0012_3456);
    }
}
