//! Finger painting: a pressed pointer or a finger draws; keys 1-4 pick the colour, `c`
//! clears. Each stroke presents only the few pixels it touched.

use vyoma_sdk::display::input::{self, Event, Phase};
use vyoma_sdk::display::{Canvas, Rect, rect};
use vyoma_sdk::{lifecycle, poll};

const PAPER: u32 = 0x00_f4_f0_e8;
const COLOURS: [u32; 4] = [0x00_20_20_20, 0x00_d0_30_30, 0x00_30_90_40, 0x00_30_50_d0];
/// The brush is a BRUSH x BRUSH square centred on the point.
const BRUSH: u32 = 6;

struct Paint {
    c: Canvas,
    colour: u32,
    /// Where each pressed pointer (None) or finger (Some(id)) was last.
    last: Vec<(Option<u32>, i32, i32)>,
    damage: Vec<Rect>,
}

impl Paint {
    fn clear(&mut self) {
        self.c.clear(PAPER);
        self.damage.push(rect(0, 0, self.c.width, self.c.height));
    }

    /// A new size keeps the picture (what fits of it).
    fn resize(&mut self, w: u32, h: u32) {
        let (old, ow, oh) = (std::mem::take(&mut self.c.pixels), self.c.width, self.c.height);
        self.c.resize(w, h).expect("paint: resize");
        self.clear();
        for y in 0..oh.min(h) as usize {
            let n = ow.min(w) as usize;
            let (src, dst) = (y * ow as usize, y * w as usize);
            self.c.pixels[dst..dst + n].copy_from_slice(&old[src..src + n]);
        }
    }

    fn dab(&mut self, x: i32, y: i32) {
        let r = rect(x - (BRUSH / 2) as i32, y - (BRUSH / 2) as i32, BRUSH, BRUSH);
        self.c.fill(r, self.colour);
        self.damage.push(r);
    }

    /// A stroke from where `who` was to (`x`, `y`): dabs along the line.
    fn stroke(&mut self, who: Option<u32>, x: i32, y: i32, phase: Phase) {
        let from = self.last.iter().position(|(w, _, _)| *w == who);
        match phase {
            Phase::Down => {
                self.last.retain(|(w, _, _)| *w != who);
                self.last.push((who, x, y));
                self.dab(x, y);
            }
            // A move with nothing pressed draws nothing.
            Phase::Move => {
                if let Some(i) = from {
                    let (_, x0, y0) = self.last[i];
                    let steps = (x - x0).abs().max((y - y0).abs()).max(1);
                    for s in 1..=steps {
                        self.dab(x0 + (x - x0) * s / steps, y0 + (y - y0) * s / steps);
                    }
                    self.last[i] = (who, x, y);
                }
            }
            Phase::Up => self.last.retain(|(w, _, _)| *w != who),
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Pointer(p) => self.stroke(None, p.x, p.y, p.phase),
            Event::Touch(t) => self.stroke(Some(t.id), t.x, t.y, t.phase),
            Event::Key(k) if k.down => match k.code.as_str() {
                "KeyC" => self.clear(),
                "Digit1" | "Digit2" | "Digit3" | "Digit4" => {
                    let i = usize::from(k.code.as_bytes()[5] - b'1');
                    self.colour = COLOURS[i];
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// The smallest rectangle holding all of `rects`.
fn bounds(rects: &[Rect]) -> Rect {
    let x0 = rects.iter().map(|r| r.x).min().unwrap_or(0);
    let y0 = rects.iter().map(|r| r.y).min().unwrap_or(0);
    let x1 = rects.iter().map(|r| r.x + r.width as i32).max().unwrap_or(0);
    let y1 = rects.iter().map(|r| r.y + r.height as i32).max().unwrap_or(0);
    rect(x0, y0, (x1 - x0) as u32, (y1 - y0) as u32)
}

fn main() {
    let c = Canvas::new("paint").expect("paint: no surface (is `display` granted?)");
    println!("paint: drawing on a {}x{} surface", c.width, c.height);
    let mut p = Paint {
        c,
        colour: COLOURS[0],
        last: Vec::new(),
        damage: Vec::new(),
    };
    p.clear();
    let stop = lifecycle::subscribe_stop();
    loop {
        if !p.damage.is_empty() {
            let mut damage = std::mem::take(&mut p.damage);
            // A long stroke is many dabs: one rectangle around them costs fewer copies.
            if damage.len() > 8 {
                damage = vec![bounds(&damage)];
            }
            p.c.present(&damage).expect("paint: present");
        }
        let events = input::subscribe();
        let resize = p.c.subscribe_resize().expect("paint: resize");
        if poll::poll(&[&stop, &events, &resize]).contains(&0) {
            return;
        }
        if let Some((w, h)) = p.c.resized().filter(|s| *s != (p.c.width, p.c.height)) {
            p.resize(w, h);
        }
        while let Some(e) = input::next() {
            p.handle(e);
        }
    }
}
