//! Golden tests for manifest error messages: each `tests/ui/NAME.toml` is parsed and its
//! diagnostics compared with `tests/ui/NAME.err`. Run with `BLESS=1` to rewrite the
//! `.err` files after an intended change, then review the diff.

use std::path::Path;

use vyoma_manifest::Manifest;

#[test]
fn golden_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "expected the golden cases in {}", dir.display());
    let mut failures = Vec::new();
    for case in &cases {
        let text = std::fs::read_to_string(case).unwrap();
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let got = match Manifest::parse(&text, format!("ui/{name}")) {
            Ok(_) => "ok\n".to_string(),
            Err(d) => format!("{d}\n"),
        };
        let expected_path = case.with_extension("err");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!("{name}:\n--- expected\n{expected}--- got\n{got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "golden mismatches (BLESS=1 to update):\n{}",
        failures.join("\n")
    );
}
