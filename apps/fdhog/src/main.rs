//! Hostile test app: opens a file in its granted `/data` folder again and again, holding
//! every handle. The supervisor ends it when it uses up its handle budget; were it refused
//! with an error instead, it prints how many it got and holds them forever. Its neighbours
//! must still be able to open files either way.
fn main() {
    let mut held = Vec::new();
    let error = loop {
        match std::fs::File::open("/data/file.txt") {
            Ok(f) => held.push(f),
            Err(e) => break e,
        }
        if held.len() >= 1_000_000 {
            break std::io::Error::other("opened a million files");
        }
    };
    println!("fdhog: opened {} then: {error}", held.len());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
