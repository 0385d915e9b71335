//! Any network address pattern: parsing never panics, and what parses prints back the same.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = vyoma_manifest::parse_addr_pattern(s) {
            let again = vyoma_manifest::parse_addr_pattern(&p.to_string()).unwrap();
            assert_eq!(p, again);
        }
    }
});
