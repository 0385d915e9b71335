//! A text app: what is typed shows on its surface, line by line (Enter starts a line,
//! Backspace deletes); the title bar says whether it has the keyboard focus. Only the
//! line being typed (and the title bar, when focus changes) is presented again.

use vyoma_sdk::display::input::{self, Event};
use vyoma_sdk::display::{Canvas, LINE, Rect, char_width, rect};
use vyoma_sdk::{lifecycle, poll};

const PAGE: u32 = 0x00_fc_fc_f4;
const INK: u32 = 0x00_20_20_30;
const TITLE_FOCUSED: u32 = 0x00_30_8c_ff;
const TITLE: u32 = 0x00_90_90_98;
const MARGIN: i32 = 6;

struct Notes {
    c: Canvas,
    lines: Vec<String>,
    focused: bool,
    damage: Vec<Rect>,
}

impl Notes {
    fn title(&mut self) {
        let bar = rect(0, 0, self.c.width, LINE + 4);
        self.c.fill(bar, if self.focused { TITLE_FOCUSED } else { TITLE });
        let label = if self.focused { "notes - typing" } else { "notes" };
        self.c.text(MARGIN, 2, label, PAGE);
        self.damage.push(bar);
    }

    /// The rectangle of line `i`.
    fn line_rect(&self, i: usize) -> Rect {
        rect(0, (LINE + 8) as i32 + (i as u32 * LINE) as i32, self.c.width, LINE)
    }

    fn line(&mut self, i: usize) {
        let r = self.line_rect(i);
        self.c.fill(r, PAGE);
        let text = self.lines.get(i).cloned().unwrap_or_default();
        self.c.text(MARGIN, r.y, &text, INK);
        self.damage.push(r);
    }

    fn all(&mut self) {
        self.c.clear(PAGE);
        self.damage.push(rect(0, 0, self.c.width, self.c.height));
        self.title();
        for i in 0..self.lines.len() {
            self.line(i);
        }
    }

    /// Characters that fit on a line.
    fn width(&self) -> usize {
        ((self.c.width as i32 - 2 * MARGIN).max(0) as u32 / char_width()) as usize
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Focus(on) => {
                self.focused = on;
                self.title();
            }
            Event::Key(k) if k.down => {
                let last = self.lines.len() - 1;
                match (k.code.as_str(), k.text) {
                    ("Enter", _) => {
                        self.lines.push(String::new());
                        let n = self.lines.len() - 1;
                        self.line(n);
                    }
                    ("Backspace", _) => {
                        self.lines[last].pop();
                        self.line(last);
                    }
                    (_, Some(t)) if !t.chars().any(char::is_control) => {
                        if self.lines[last].chars().count() >= self.width() {
                            self.lines.push(String::new());
                        }
                        let n = self.lines.len() - 1;
                        self.lines[n].push_str(&t);
                        self.line(n);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

fn main() {
    let c = Canvas::new("notes").expect("notes: no surface (is `display` granted?)");
    println!("notes: drawing on a {}x{} surface", c.width, c.height);
    let mut n = Notes {
        c,
        lines: vec![String::new()],
        focused: false,
        damage: Vec::new(),
    };
    n.all();
    let stop = lifecycle::subscribe_stop();
    loop {
        if !n.damage.is_empty() {
            let damage = std::mem::take(&mut n.damage);
            n.c.present(&damage).expect("notes: present");
        }
        let events = input::subscribe();
        let resize = n.c.subscribe_resize().expect("notes: resize");
        if poll::poll(&[&stop, &events, &resize]).contains(&0) {
            return;
        }
        if let Some((w, h)) = n.c.resized().filter(|s| *s != (n.c.width, n.c.height)) {
            n.c.resize(w, h).expect("notes: resize");
            n.all();
        }
        while let Some(e) = input::next() {
            n.handle(e);
        }
    }
}
