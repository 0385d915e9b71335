//! Hostile test app: writes what would clear the operator's screen, set the clipboard
//! (OSC 52), retitle the window and move the cursor, if printed raw.
fn main() {
    println!("\x1b[2Jscreen cleared");
    println!("\x1b]52;c;ZWNobyBwd25lZA==\x07clipboard set");
    println!("\x1b]0;fake title\x07\x1b[1A\rNAME STATE fake ps row");
    eprintln!("\u{9b}31m8-bit CSI");
}
