//! Answers every IPC message with the same bytes: requests (and console messages) by
//! `reply`, plain messages by sending them back to their sender. The pong side of the
//! IPC benchmark. `echo --announce APP` first tells APP (e.g. the logger) it is ready.
use std::time::Duration;

use vyoma_sdk::ipc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, to] = &args[..]
        && flag == "--announce"
        && let Err(e) = ipc::send_wait(to, "echo is ready", Duration::from_secs(1))
    {
        eprintln!("echo: cannot announce to {to}: {e}");
    }
    loop {
        let m = ipc::recv();
        let answered = if m.reply_token.is_some() {
            ipc::reply(&m, &m.body)
        } else {
            ipc::send(&m.sender, &m.body)
        };
        if let Err(e) = answered {
            eprintln!("echo: cannot answer {}: {e}", m.sender);
        }
    }
}
