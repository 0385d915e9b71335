//! Receives lines from other apps over IPC and prints each with its sender's name, so
//! `log logger` shows who said what. Requests (and console messages) are acknowledged.
use vyoma_sdk::ipc;

fn main() {
    println!("logger: ready");
    loop {
        let m = ipc::recv();
        for line in ipc::text(&m).lines() {
            println!("[{}] {line}", m.sender);
        }
        if m.reply_token.is_some() {
            let _ = ipc::reply(&m, b"logged");
        }
    }
}
