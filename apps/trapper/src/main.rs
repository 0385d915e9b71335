//! Ends in the way named by its first argument, to test exit reasons:
//! `exit N` (exit code N), `unreachable`, `oob` (out-of-bounds load), `stack`
//! (stack overflow), `panic`, `ok` (returns normally), `err` (main returns Err).
#[allow(unconditional_recursion, reason = "overflowing the stack is the point")]
fn recurse(n: u64, buf: &mut [u64; 16]) -> u64 {
    buf[(n % 16) as usize] = n;
    let mut local = *buf;
    recurse(n + 1, &mut local) + local[3]
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let how = args.first().map(String::as_str).unwrap_or("ok");
    println!("trapper: {how}");
    match how {
        "exit" => {
            let code = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(3);
            std::process::exit(code)
        }
        "unreachable" => core::arch::wasm32::unreachable(),
        "oob" => {
            // SAFETY: deliberately invalid: the address is past any linear memory, so
            // the load traps in the sandbox; this app exists to show that trap.
            let v = unsafe { core::ptr::read_volatile(0xffff_fff0usize as *const u64) };
            println!("read {v}");
            Ok(())
        }
        "stack" => {
            let mut buf = [0u64; 16];
            println!("{}", recurse(0, &mut buf));
            Ok(())
        }
        "panic" => panic!("trapper: asked to panic"),
        "err" => Err("trapper: main returned an error".into()),
        _ => Ok(()),
    }
}
