//! The boot-time baseline: an init that prints one line on the console and powers off.
//! `vyoma image bench` boots the same kernel with this instead of `vyoma-init`, so the
//! difference between the two isolates the supervisor's own start-up cost.

use std::io::Write;

use vyoma_init::{LinuxSys, PowerAction, Sys, power_down};

fn main() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "trivial init: up");
    let _ = out.flush();
    if LinuxSys.is_pid1() {
        let e = power_down(&LinuxSys, PowerAction::PowerOff);
        let _ = writeln!(out, "trivial init: cannot power off: {e}");
        std::process::abort();
    }
}
