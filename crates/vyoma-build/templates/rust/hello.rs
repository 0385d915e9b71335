//! @NAME@: a VyomaOS app in Rust. It prints its arguments and the variables it was
//! given, then ends; `log @NAME@` in the console shows what it printed.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("hello from @NAME@ (Rust), args {args:?}");
    for (k, v) in std::env::vars() {
        println!("{k}={v}");
    }
}
