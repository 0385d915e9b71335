//! The pointer's arrow, drawn by the compositor over everything for a mouse (a relative
//! device moves a pointer nobody would see otherwise; a tablet's or a touch screen's
//! position is where the hand is, and a desktop window shows its own).

use crate::Frame;
use crate::geom::Rect;

/// The arrow, row by row: `#` outline, `.` fill, space see-through. Its hot spot is the
/// top-left corner.
const ARROW: [&str; 17] = [
    "#          ",
    "##         ",
    "#.#        ",
    "#..#       ",
    "#...#      ",
    "#....#     ",
    "#.....#    ",
    "#......#   ",
    "#.......#  ",
    "#........# ",
    "#.....#####",
    "#..#..#    ",
    "#.# #..#   ",
    "##  #..#   ",
    "#    #..#  ",
    "     #..#  ",
    "      ##   ",
];

const OUTLINE: u32 = 0x0000_0000;
const FILL: u32 = 0x00ff_ffff;

/// The screen rectangle the arrow covers with its hot spot at (`x`, `y`).
pub fn rect(x: i32, y: i32) -> Rect {
    Rect::new(x, y, ARROW[0].len() as u32, ARROW.len() as u32)
}

/// Draws the arrow with its hot spot at (`x`, `y`), only inside `clip`.
pub fn draw(frame: &mut Frame, x: i32, y: i32, clip: Rect) {
    let clip = clip.intersect(frame.size.rect()).intersect(rect(x, y));
    let w = frame.size.w as usize;
    for (dy, row) in ARROW.iter().enumerate() {
        for (dx, c) in row.bytes().enumerate() {
            let (px, py) = (x + dx as i32, y + dy as i32);
            if !clip.contains(px, py) {
                continue;
            }
            let colour = match c {
                b'#' => OUTLINE,
                b'.' => FILL,
                _ => continue,
            };
            frame.pixels[py as usize * w + px as usize] = colour;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Size;

    #[test]
    fn the_arrow_is_clipped_to_the_screen_and_the_clip() {
        assert!(ARROW.iter().all(|r| r.len() == ARROW[0].len()));
        let mut f = Frame::new(Size::new(8, 8), 0x0012_3456);
        let all = f.size.rect();
        draw(&mut f, 6, 6, all);
        assert_eq!(f.pixels[6 * 8 + 6], OUTLINE, "the hot spot");
        assert_eq!(f.pixels[7 * 8 + 7], OUTLINE);
        draw(&mut f, -2, -3, Rect::new(0, 0, 1, 8));
        assert_eq!(f.pixels[1], 0x0012_3456, "outside the clip");
        assert_eq!(f.pixels[0], FILL, "(2, 3) of the arrow is fill");
    }
}
