//! Any bytes as a manifest: parsing never panics, and every diagnostic points inside the text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(d) = vyoma_manifest::Manifest::parse(text, "fuzz/app.toml") {
            let lines = text.lines().count().max(1);
            for x in d.iter() {
                assert!(x.line <= lines + 1, "line {} past the end ({lines} lines)", x.line);
            }
        }
    }
});
