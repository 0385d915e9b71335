//! Prints a greeting with its arguments and exits 0: the smallest VyomaOS app.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        println!("hello from VyomaOS");
    } else {
        println!("hello from VyomaOS: {}", args.join(" "));
    }
}
