//! Any kernel command line: parsing never panics, every problem is one line naming a
//! `vyoma.` option, and the result is usable (an absolute apps folder, a log filter).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let (opts, problems) = vyoma_init::cmdline::parse(&line);
    assert!(opts.apps_dir.starts_with('/'));
    assert!(!opts.log.is_empty());
    for p in problems {
        assert!(!p.contains('\n') && p.contains("vyoma."));
    }
});
