//! A property test of the manifest parser, run on stable in every test run: each golden
//! manifest is mutated many ways (byte flips, deletions, insertions, duplications, line
//! swaps, truncation; proptest picks and shrinks them); parsing must never panic, and every
//! diagnostic must point inside the text. The coverage-guided version of this is `fuzz/fuzz_targets/manifest.rs`.

use std::path::Path;

use proptest::prelude::*;
use vyoma_manifest::{Manifest, parse_addr_pattern};

const SPICE: &[&str] = &[
    "\"",
    "[",
    "]",
    "=",
    "\n",
    "[[capabilities.dirs]]",
    "[capabilities.ipc]",
    "send = [\"*\"]",
    "é",
    "\u{0}",
    "1e999",
    "-",
    "..",
    "*",
    "{",
    "}",
];

/// One way to damage a text. Positions and lengths are taken modulo the text's length
/// when applied, so every value is meaningful and proptest can shrink them.
#[derive(Debug, Clone)]
enum Op {
    Flip { at: usize, bit: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, spice: usize },
    Duplicate { from: usize, len: usize, to: usize },
    Truncate { at: usize },
    SwapLines { i: usize, j: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let n = || any::<usize>();
    prop_oneof![
        (n(), 0..8u8).prop_map(|(at, bit)| Op::Flip { at, bit }),
        (n(), 0..16usize).prop_map(|(at, len)| Op::Delete { at, len }),
        (n(), 0..SPICE.len()).prop_map(|(at, spice)| Op::Insert { at, spice }),
        (n(), 0..40usize, n()).prop_map(|(from, len, to)| Op::Duplicate { from, len, to }),
        n().prop_map(|at| Op::Truncate { at }),
        (n(), n()).prop_map(|(i, j)| Op::SwapLines { i, j }),
    ]
}

fn mutate(ops: &[Op], text: &str) -> String {
    let mut b: Vec<u8> = text.as_bytes().to_vec();
    for op in ops {
        let len = b.len();
        let at = |x: usize| x % (len + 1);
        match *op {
            Op::Flip { at: i, bit } if len > 0 => b[i % len] ^= 1 << bit,
            Op::Delete { at: i, len: n } if len > 0 => {
                let i = i % len;
                b.drain(i..i + n.min(len - i));
            }
            Op::Insert { at: i, spice } => {
                let i = at(i);
                b.splice(i..i, SPICE[spice].bytes());
            }
            Op::Duplicate { from, len: n, to } if len > 0 => {
                let i = from % len;
                let chunk: Vec<u8> = b[i..i + n.min(len - i)].to_vec();
                let j = at(to);
                b.splice(j..j, chunk);
            }
            Op::Truncate { at: i } => b.truncate(at(i)),
            Op::SwapLines { i, j } => {
                let s = String::from_utf8_lossy(&b).into_owned();
                let mut lines: Vec<&str> = s.lines().collect();
                if lines.len() > 1 {
                    let n = lines.len();
                    lines.swap(i % n, j % n);
                }
                b = lines.join("\n").into_bytes();
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// The golden manifests of `tests/ui`, sorted.
fn corpus() -> &'static [String] {
    static CORPUS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
        let mut c: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        c.sort();
        c
    })
}

const ADDR_SEEDS: &[&str] = &[
    "127.0.0.1:80",
    "10.0.0.0/8:*",
    "[::1]:443",
    "[fe80::]/10:53",
    "0.0.0.0/0:*",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn mutated_manifests_never_panic(base in any::<prop::sample::Index>(), ops in prop::collection::vec(op(), 1..5)) {
        let corpus = corpus();
        let text = mutate(&ops, &corpus[base.index(corpus.len())]);
        if let Err(d) = Manifest::parse(&text, "m/app.toml") {
            prop_assert!(!d.is_empty());
            let lines = text.split('\n').count();
            for x in d.iter() {
                prop_assert!(x.line <= lines, "diagnostic at line {} of {}:\n{}", x.line, lines, text);
                prop_assert!(!x.message.is_empty());
            }
        }
    }

    #[test]
    fn mutated_addr_patterns_never_panic_and_round_trip(
        seed in prop::sample::select(ADDR_SEEDS),
        ops in prop::collection::vec(op(), 1..5),
    ) {
        let s = mutate(&ops, seed);
        if let Ok(p) = parse_addr_pattern(&s) {
            prop_assert_eq!(parse_addr_pattern(&p.to_string()), Ok(p), "{:?}", s);
        }
    }
}

#[test]
fn the_golden_manifests_include_valid_ones_to_mutate() {
    // Otherwise every mutation would only exercise error paths.
    assert!(corpus().iter().any(|t| Manifest::parse(t, "m/app.toml").is_ok()));
}
