//! Listens on the TCP address given as the first argument (e.g. `127.0.0.1:7000`) and
//! writes `hello from listener` to every connection, forever. Used by tests of network
//! grants: another app connects to it, or is refused before it can.
use std::io::Write;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7000".into());
    let listener = match std::net::TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("listener: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    println!("listener: listening on {addr}");
    for conn in listener.incoming() {
        match conn {
            Ok(mut c) => {
                let peer = c.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                let _ = c.write_all(b"hello from listener\n");
                println!("listener: accepted {peer}");
            }
            Err(e) => eprintln!("listener: accept failed: {e}"),
        }
    }
}
