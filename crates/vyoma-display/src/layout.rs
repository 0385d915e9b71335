//! Where each app's tile goes on the screen: the operator's layout, never the apps'.
//!
//! - **Kiosk**: the focused app fills the screen; the others are not visible.
//! - **Tiles**: the named apps, in that order, in a grid; every other app is hidden.
//! - **Grid**: every app, in order, in a grid as square as the screen allows.
//!
//! Grid cells split the area evenly; the pixels left over by the division go to the
//! first columns and rows, so tiles differ by at most one pixel and cover the area exactly.

use crate::geom::{Rect, Size};

/// How the screen is shared among apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The focused app, full screen.
    Kiosk,
    /// Only these apps, in this order.
    Tiles(Vec<String>),
    /// Every app.
    Grid,
}

impl std::str::FromStr for Layout {
    type Err = String;

    /// `kiosk`, `grid`, or `tiles:A,B,...`.
    fn from_str(s: &str) -> Result<Layout, String> {
        match s {
            "kiosk" => Ok(Layout::Kiosk),
            "grid" => Ok(Layout::Grid),
            _ => match s.strip_prefix("tiles:") {
                Some(list) => {
                    let names: Vec<String> = list.split(',').map(str::trim).map(String::from).collect();
                    if names.iter().any(String::is_empty) {
                        return Err(format!("`{s}` names an empty app: write `tiles:APP,APP,...`"));
                    }
                    Ok(Layout::Tiles(names))
                }
                None => Err(format!(
                    "`{s}` is not a layout: use `kiosk`, `grid` or `tiles:APP,APP,...`"
                )),
            },
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layout::Kiosk => f.write_str("kiosk"),
            Layout::Grid => f.write_str("grid"),
            Layout::Tiles(names) => write!(f, "tiles:{}", names.join(",")),
        }
    }
}

/// Columns and rows for `n` cells in `area`: the grid whose cells are closest to square.
fn grid_shape(n: usize, area: Size) -> (usize, usize) {
    let mut best = (n.max(1), 1);
    let mut best_score = f64::MAX;
    for cols in 1..=n.max(1) {
        let rows = n.div_ceil(cols).max(1);
        let (cw, ch) = (area.w as f64 / cols as f64, area.h as f64 / rows as f64);
        // How far from square a cell is (0 for a square, ln 1.6 = 0.47 for 16:10), plus
        // half that much again for every empty cell: 4 apps on 16:10 get 2x2, not 3x2.
        let score = (cw.max(ch) / cw.min(ch).max(1.0)).ln() + 0.5 * (cols * rows - n) as f64;
        if score < best_score {
            best_score = score;
            best = (cols, rows);
        }
    }
    best
}

/// `n` spans covering `len` pixels from `start`, the remainder spread over the first ones.
fn spans(start: i32, len: u32, n: usize) -> Vec<(i32, u32)> {
    let n32 = n.max(1) as u32;
    let (each, extra) = (len / n32, len % n32);
    let mut at = start as i64;
    (0..n32)
        .map(|i| {
            let l = each + u32::from(i < extra);
            let s = (at as i32, l);
            at += l as i64;
            s
        })
        .collect()
}

/// The tiles of `apps` (in the operator's order) in `area` under `layout`, with `focused`
/// the focused app. Apps not listed are hidden.
pub fn arrange<'a>(layout: &Layout, area: Rect, apps: &[&'a str], focused: Option<&str>) -> Vec<(&'a str, Rect)> {
    let shown: Vec<&'a str> = match layout {
        Layout::Kiosk => apps.iter().copied().filter(|a| Some(*a) == focused).take(1).collect(),
        Layout::Grid => apps.to_vec(),
        Layout::Tiles(names) => names
            .iter()
            .filter_map(|n| apps.iter().copied().find(|a| a == n))
            .collect(),
    };
    if shown.is_empty() || area.is_empty() {
        return Vec::new();
    }
    let (cols, rows) = grid_shape(shown.len(), area.size());
    let (xs, ys) = (spans(area.x, area.w, cols), spans(area.y, area.h, rows));
    shown
        .into_iter()
        .enumerate()
        .map(|(i, app)| {
            let ((x, w), (y, h)) = (xs[i % cols], ys[i / cols]);
            (app, Rect::new(x, y, w, h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Rect = Rect::new(0, 0, 1280, 800);

    #[test]
    fn kiosk_shows_only_the_focused_app_full_screen() {
        let t = arrange(&Layout::Kiosk, SCREEN, &["a", "b", "c"], Some("b"));
        assert_eq!(t, [("b", SCREEN)]);
        assert!(arrange(&Layout::Kiosk, SCREEN, &["a"], None).is_empty());
    }

    #[test]
    fn grid_cells_cover_the_area_exactly_and_stay_near_square() {
        for n in 1..=40 {
            let names: Vec<String> = (0..n).map(|i| format!("app{i}")).collect();
            let apps: Vec<&str> = names.iter().map(String::as_str).collect();
            let t = arrange(&Layout::Grid, SCREEN, &apps, None);
            assert_eq!(t.len(), n);
            let covered: u64 = t.iter().map(|(_, r)| r.size().area()).sum();
            let (cols, rows) = grid_shape(n, SCREEN.size());
            let empty_cells = (cols * rows - n) as u64;
            assert!(covered <= SCREEN.size().area());
            assert!(
                SCREEN.size().area() - covered
                    <= empty_cells * (SCREEN.w as u64 / cols as u64 + 1) * (SCREEN.h as u64 / rows as u64 + 1)
            );
            for (i, (_, a)) in t.iter().enumerate() {
                assert_eq!(a.intersect(SCREEN), *a, "{n} apps: tile {i} leaves the screen");
                for (_, b) in &t[i + 1..] {
                    assert!(a.intersect(*b).is_empty(), "{n} apps: {a} overlaps {b}");
                }
            }
        }
        assert_eq!(grid_shape(2, SCREEN.size()), (2, 1));
        assert_eq!(grid_shape(4, SCREEN.size()), (2, 2));
        assert_eq!(grid_shape(16, SCREEN.size()), (4, 4));
    }

    #[test]
    fn leftover_pixels_go_to_the_first_tiles() {
        let t = arrange(&Layout::Grid, Rect::new(0, 0, 10, 5), &["a", "b", "c"], None);
        assert_eq!(
            t,
            [
                ("a", Rect::new(0, 0, 4, 5)),
                ("b", Rect::new(4, 0, 3, 5)),
                ("c", Rect::new(7, 0, 3, 5))
            ]
        );
    }

    #[test]
    fn tiles_show_the_named_apps_in_the_operators_order() {
        let layout: Layout = "tiles:c,a,missing".parse().unwrap();
        let t = arrange(&layout, SCREEN, &["a", "b", "c"], Some("b"));
        let names: Vec<&str> = t.iter().map(|(a, _)| *a).collect();
        assert_eq!(names, ["c", "a"]);
        assert_eq!(layout.to_string(), "tiles:c,a,missing");
    }

    #[test]
    fn layouts_parse_with_clear_errors() {
        assert_eq!("kiosk".parse::<Layout>(), Ok(Layout::Kiosk));
        assert_eq!("grid".parse::<Layout>(), Ok(Layout::Grid));
        assert!("tiles:a,,b".parse::<Layout>().unwrap_err().contains("empty app"));
        assert!("stack".parse::<Layout>().unwrap_err().contains("use `kiosk`, `grid`"));
    }
}
