//! Any console line: parsing never panics, and errors are a single line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        if let Err(e) = vyoma_control::Command::parse(line) {
            assert!(!e.contains('\n'));
        }
    }
});
