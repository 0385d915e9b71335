//! Writes numbered lines to stdout and stderr as fast as it can, forever (or the
//! number of lines given as the first argument), to show that a chatty app cannot
//! grow supervisor memory: its log is a bounded ring.
fn main() {
    let max: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(u64::MAX);
    let mut n = 0u64;
    while n < max {
        n += 1;
        println!("chatty: line {n} {}", "x".repeat(64));
        if n.is_multiple_of(10) {
            eprintln!("chatty: err {n}");
        }
    }
    println!("chatty: done after {n} lines");
}
