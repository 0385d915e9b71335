//! @NAME@: a VyomaOS app in Rust that answers requests over IPC. `@@NAME@: hi` in the
//! console asks it; when its first argument names another app (`args = ["echo"]` in
//! app.toml, and that app in `[capabilities.ipc] send`), it asks that app first and
//! includes the answer. Plain messages are printed (`log @NAME@`).
use std::time::Duration;

use vyoma_sdk::ipc;

fn main() {
    let peer = std::env::args().nth(1);
    println!("@NAME@ answers requests");
    loop {
        let m = ipc::recv();
        let text = ipc::text(&m).into_owned();
        if m.reply_token.is_none() {
            println!("message from {}: {text}", m.sender);
            continue;
        }
        let mut answer = format!("@NAME@ heard \"{text}\"");
        if let Some(peer) = &peer {
            match ipc::request(peer, text.as_bytes(), Duration::from_secs(1)) {
                Ok(a) => answer += &format!("; {peer} said \"{}\"", String::from_utf8_lossy(&a)),
                Err(e) => answer += &format!("; {peer} did not answer: {e}"),
            }
        }
        if let Err(e) = ipc::reply(&m, answer) {
            eprintln!("cannot answer {}: {e}", m.sender);
        }
    }
}
