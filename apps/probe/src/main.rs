//! Prints what the sandbox gives it: arguments, environment, stdin, preopened
//! directories and network access. Used by tests of capability grants.
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
    match std::net::TcpStream::connect("127.0.0.1:9") {
        Ok(_) => println!("probe: net connect ok"),
        Err(e) => println!("probe: net connect failed: {e}"),
    }
}
