//! Any stream of input device events (a device, or a driver bug, can send anything): the
//! translator never panics, and every pointer and touch position it gives is on the screen.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vyoma_display::{Input, Size};
use vyoma_screen::translate::{Range, Shape, Translator};

fuzz_target!(|data: &[u8]| {
    let Some((head, events)) = data.split_first_chunk::<17>() else { return };
    let int = |i: usize| i32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let screen = Size::new(u32::from(head[16] % 64) + 1, u32::from(head[16] / 4) + 1);
    let shape = Shape {
        direct: head[0] & 1 == 1,
        abs: (head[0] & 2 == 2).then_some((Range { min: int(0), max: int(4) }, Range { min: int(8), max: int(12) })),
        mt: (head[0] & 4 == 4).then_some((Range { min: int(4), max: int(0) }, Range { min: int(12), max: int(8) })),
    };
    let mut tr = Translator::new(screen, shape);
    let mut out = Vec::new();
    for e in events.chunks_exact(8) {
        let kind = u16::from_le_bytes([e[0], e[1]]) % 4;
        let code = u16::from_le_bytes([e[2], e[3]]);
        let value = i32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        tr.event(kind, code, value, &mut out);
    }
    let on = |x: i32, y: i32| (0..screen.w as i32).contains(&x) && (0..screen.h as i32).contains(&y);
    for i in out {
        match i {
            Input::Pointer { x, y, .. } | Input::Touch { x, y, .. } => assert!(on(x, y), "({x}, {y}) off {screen}"),
            Input::Key { .. } => {}
        }
    }
});
