//! A busy loop with no host calls: only epoch preemption keeps it from starving the
//! other apps. Prints a progress line every 2^28 iterations so it is visibly alive.
fn main() {
    println!("spinner: spinning");
    let mut x: u64 = 0;
    let mut i: u64 = 0;
    loop {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        i += 1;
        if i & ((1 << 28) - 1) == 0 {
            println!("spinner: {} iterations (x={x:#x})", i);
        }
        std::hint::black_box(x);
    }
}
