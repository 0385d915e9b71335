//! Lists and reads the directory it was granted (guest path `/data`, or the first
//! argument), then tries to escape it in several ways and reports that each fails.
//! Exits 1 if any escape succeeded, so the supervisor shows the breach as a failure.
use std::fs;
use std::path::Path;

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "/data".to_string());
    let root = Path::new(&root);
    let mut entries: Vec<_> = match fs::read_dir(root) {
        Ok(rd) => rd.filter_map(|e| e.ok()).collect(),
        Err(e) => {
            eprintln!("files: cannot read {}: {e}", root.display());
            std::process::exit(2);
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for e in &entries {
        let p = e.path();
        match fs::read_to_string(&p) {
            Ok(s) => println!("files: {} ({} bytes): {}", p.display(), s.len(), s.trim_end()),
            Err(_) => println!("files: {} (not a readable text file)", p.display()),
        }
    }
    let attempts = [
        root.join("../secret.txt"),
        root.join("../../etc/passwd"),
        Path::new("/etc/passwd").to_path_buf(),
        Path::new("/").to_path_buf(),
        root.join("link-out/secret.txt"),
    ];
    let mut breached = false;
    for a in &attempts {
        match fs::read_to_string(a).map(|_| ()).or_else(|e| match fs::read_dir(a) {
            Ok(_) => Ok(()),
            Err(_) => Err(e),
        }) {
            Ok(()) => {
                println!("files: ESCAPED via {}", a.display());
                breached = true;
            }
            Err(e) => println!("files: escape denied: {}: {e}", a.display()),
        }
    }
    match fs::write(root.join("written-by-app.txt"), b"hi") {
        Ok(()) => println!("files: wrote {}/written-by-app.txt", root.display()),
        Err(e) => println!("files: write denied: {e}"),
    }
    if breached {
        std::process::exit(1);
    }
}
