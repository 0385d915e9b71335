//! Damage: the parts of a screen or surface that changed since they were last drawn.
//!
//! Rectangles are merged when they touch, and the list is bounded: past [`MAX_RECTS`]
//! rectangles everything collapses into their bounding box, so an app reporting a
//! thousand tiny rectangles costs a few comparisons, not a thousand redraws.

use crate::geom::Rect;

/// Most separate rectangles kept before they collapse into one.
pub const MAX_RECTS: usize = 16;

/// Accumulated damage, clipped to a bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Damage {
    rects: Vec<Rect>,
}

impl Damage {
    /// No damage.
    pub fn new() -> Damage {
        Damage::default()
    }

    /// Adds `r`, clipped to `bound`.
    pub fn add(&mut self, r: Rect, bound: Rect) {
        let mut r = r.intersect(bound);
        if r.is_empty() {
            return;
        }
        // Absorb every rectangle the new one touches, again after each growth.
        loop {
            let before = self.rects.len();
            self.rects.retain(|o| {
                if o.touches(r) {
                    r = r.union(*o);
                    false
                } else {
                    true
                }
            });
            if self.rects.len() == before {
                break;
            }
        }
        self.rects.push(r);
        if self.rects.len() > MAX_RECTS {
            let all = self.bounds();
            self.rects.clear();
            self.rects.push(all);
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.rects.is_empty()
    }

    /// The rectangles, which never overlap or touch.
    pub fn rects(&self) -> &[Rect] {
        &self.rects
    }

    /// The smallest rectangle covering all damage.
    pub fn bounds(&self) -> Rect {
        self.rects.iter().fold(Rect::default(), |a, r| a.union(*r))
    }

    /// Takes the damage, leaving none.
    pub fn take(&mut self) -> Vec<Rect> {
        std::mem::take(&mut self.rects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Rect = Rect::new(0, 0, 100, 100);

    #[test]
    fn touching_rects_merge_and_separate_ones_stay_apart() {
        let mut d = Damage::new();
        d.add(Rect::new(0, 0, 10, 10), B);
        d.add(Rect::new(50, 50, 10, 10), B);
        assert_eq!(d.rects().len(), 2);
        // Bridges the two: all three become one.
        d.add(Rect::new(10, 10, 40, 40), B);
        assert_eq!(d.rects(), [Rect::new(0, 0, 60, 60)]);
    }

    #[test]
    fn damage_is_clipped_and_bounded() {
        let mut d = Damage::new();
        d.add(Rect::new(-10, -10, 20, 20), B);
        assert_eq!(d.rects(), [Rect::new(0, 0, 10, 10)]);
        d.add(Rect::new(200, 200, 5, 5), B);
        assert_eq!(d.rects().len(), 1, "off the bound: nothing");
        for i in 0..40 {
            d.add(Rect::new(i * 2 % 100, (i * 7) % 100, 1, 1), B);
        }
        assert!(d.rects().len() <= MAX_RECTS);
        let all = d.take();
        assert!(d.is_empty());
        assert!(!all.is_empty());
    }
}
