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

/// The complete example in docs/manifest.md is a valid manifest, with every grant set.
#[test]
fn the_documented_example_is_valid() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/manifest.md")).unwrap();
    let start = doc.find("## Complete example").expect("the example section");
    let toml = doc[start..]
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a toml block");
    let m = Manifest::parse(toml, "docs/manifest.md").unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(m.name, "web-cache");
    assert_eq!(m.limits.inbox, 256);
    let send: Vec<&str> = m.capabilities.ipc.send.iter_names().collect();
    assert_eq!(send, ["logger", "console"]);
    assert!(m.capabilities.network.is_some() && !m.capabilities.dirs.is_empty());
}
