//! Prints what the sandbox gives it: arguments, environment, stdin, preopened
//! directories and network access (a listen, and a connect to `PROBE_CONNECT`). Used by
//! tests of capability grants.
use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("probe: args={:?}", &args[1..]);
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    for (k, v) in env {
        println!("probe: env {k}={v}");
    }
    let mut input = String::new();
    match std::io::stdin().read_to_string(&mut input) {
        Ok(n) => println!("probe: stdin {n} bytes: {:?}", input.trim_end()),
        Err(e) => println!("probe: stdin error: {e}"),
    }
    match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => println!("probe: net listen ok {:?}", l.local_addr().ok()),
        Err(e) => println!("probe: net listen denied: {e}"),
    }
    // Where to connect: `PROBE_CONNECT` (set in the manifest's `[env]`), else a port where
    // nothing listens. With `PROBE_WAIT_MS`, a refused connection (nothing listening yet)
    // is tried again for that long; a connection the sandbox denies is not.
    let target = std::env::var("PROBE_CONNECT").unwrap_or_else(|_| "127.0.0.1:9".into());
    let wait_ms: u64 = std::env::var("PROBE_WAIT_MS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let until = std::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    loop {
        match std::net::TcpStream::connect(&target) {
            Ok(mut s) => {
                let mut greeting = String::new();
                let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut s), &mut greeting);
                println!("probe: net connect ok: {:?}", greeting.trim_end());
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused && std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            Err(e) => println!("probe: net connect failed: {e}"),
        }
        break;
    }
}
