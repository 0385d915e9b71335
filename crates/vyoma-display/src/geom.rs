//! Rectangles and sizes in screen or surface pixels.

/// A width and a height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Size {
    /// Pixels across.
    pub w: u32,
    /// Pixels down.
    pub h: u32,
}

impl Size {
    /// A size of `w` x `h`.
    pub const fn new(w: u32, h: u32) -> Size {
        Size { w, h }
    }

    /// Pixels in all.
    pub const fn area(self) -> u64 {
        self.w as u64 * self.h as u64
    }

    /// The rectangle of this size at the origin.
    pub const fn rect(self) -> Rect {
        Rect::new(0, 0, self.w, self.h)
    }

    /// Each side no larger than `max`'s.
    pub fn min(self, max: Size) -> Size {
        Size::new(self.w.min(max.w), self.h.min(max.h))
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.w, self.h)
    }
}

/// A rectangle: its top-left corner and its size. Empty when either side is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

impl Rect {
    /// The rectangle at (`x`, `y`) of `w` x `h`.
    pub const fn new(x: i32, y: i32, w: u32, h: u32) -> Rect {
        Rect { x, y, w, h }
    }

    /// Whether it covers no pixel.
    pub const fn is_empty(self) -> bool {
        self.w == 0 || self.h == 0
    }

    /// One past the right edge.
    pub const fn right(self) -> i64 {
        self.x as i64 + self.w as i64
    }

    /// One past the bottom edge.
    pub const fn bottom(self) -> i64 {
        self.y as i64 + self.h as i64
    }

    /// Its size.
    pub const fn size(self) -> Size {
        Size::new(self.w, self.h)
    }

    fn from_edges(x0: i64, y0: i64, x1: i64, y1: i64) -> Rect {
        if x1 <= x0 || y1 <= y0 {
            return Rect::default();
        }
        let clamp = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        let len = |a: i64, b: i64| (b - a).clamp(0, u32::MAX as i64) as u32;
        Rect::new(clamp(x0), clamp(y0), len(x0, x1), len(y0, y1))
    }

    /// The pixels both cover; empty if none.
    pub fn intersect(self, o: Rect) -> Rect {
        Rect::from_edges(
            (self.x as i64).max(o.x as i64),
            (self.y as i64).max(o.y as i64),
            self.right().min(o.right()),
            self.bottom().min(o.bottom()),
        )
    }

    /// The smallest rectangle covering both (an empty one adds nothing).
    pub fn union(self, o: Rect) -> Rect {
        if self.is_empty() {
            return o;
        }
        if o.is_empty() {
            return self;
        }
        Rect::from_edges(
            (self.x as i64).min(o.x as i64),
            (self.y as i64).min(o.y as i64),
            self.right().max(o.right()),
            self.bottom().max(o.bottom()),
        )
    }

    /// Whether they overlap or share an edge (so their union wastes nothing between them
    /// along that edge).
    pub fn touches(self, o: Rect) -> bool {
        !self.is_empty()
            && !o.is_empty()
            && (self.x as i64) <= o.right()
            && (o.x as i64) <= self.right()
            && (self.y as i64) <= o.bottom()
            && (o.y as i64) <= self.bottom()
    }

    /// Whether the point is inside.
    pub fn contains(self, x: i32, y: i32) -> bool {
        (x as i64) >= self.x as i64
            && (x as i64) < self.right()
            && (y as i64) >= self.y as i64
            && (y as i64) < self.bottom()
    }

    /// Moved by (`dx`, `dy`).
    pub fn offset(self, dx: i32, dy: i32) -> Rect {
        Rect::new(self.x.saturating_add(dx), self.y.saturating_add(dy), self.w, self.h)
    }
}

impl std::fmt::Display for Rect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}+{}+{}", self.w, self.h, self.x, self.y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersection_union_and_touching() {
        let a = Rect::new(0, 0, 10, 10);
        let b = Rect::new(5, 5, 10, 10);
        assert_eq!(a.intersect(b), Rect::new(5, 5, 5, 5));
        assert_eq!(a.union(b), Rect::new(0, 0, 15, 15));
        assert!(a.intersect(Rect::new(10, 0, 5, 5)).is_empty(), "edges do not overlap");
        assert!(a.touches(Rect::new(10, 0, 5, 5)), "but they touch");
        assert!(!a.touches(Rect::new(11, 0, 5, 5)));
        assert_eq!(a.union(Rect::default()), a);
        assert_eq!(Rect::default().union(b), b);
        assert!(a.contains(9, 9) && !a.contains(10, 9) && !a.contains(-1, 0));
    }

    #[test]
    fn extreme_coordinates_do_not_overflow() {
        let far = Rect::new(i32::MAX - 1, i32::MAX - 1, u32::MAX, u32::MAX);
        let screen = Rect::new(0, 0, 100, 100);
        assert!(far.intersect(screen).is_empty());
        assert_eq!(Rect::new(-50, -50, 100, 100).intersect(screen), Rect::new(0, 0, 50, 50));
        assert_eq!(far.offset(10, 10).x, i32::MAX);
    }
}
