//! Allocates and touches 1 MiB blocks forever, printing its total, until the
//! supervisor's per-app memory limit stops it. Used to show that one app's memory
//! bomb never harms the supervisor or the other apps.
fn main() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xA5; 1 << 20]);
        println!("membomb: holding {} MiB", hoard.len());
    }
}
