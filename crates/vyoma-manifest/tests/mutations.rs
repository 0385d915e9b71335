//! A deterministic mutation test of the manifest parser, run on stable in every test run:
//! each golden manifest is mutated many ways (byte flips, deletions, duplications, line
//! swaps, truncation); parsing must never panic, and every diagnostic must point inside the
//! text. The coverage-guided version of this is `fuzz/fuzz_targets/manifest.rs`.

use std::path::Path;

use vyoma_manifest::{Manifest, parse_addr_pattern};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

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

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut b: Vec<u8> = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(16).min(len - i);
                b.drain(i..i + n);
            }
            2 => {
                let i = rng.below(len + 1);
                let s = SPICE[rng.below(SPICE.len())];
                b.splice(i..i, s.bytes());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(40).min(len - i);
                let chunk: Vec<u8> = b[i..i + n].to_vec();
                let j = rng.below(len + 1);
                b.splice(j..j, chunk);
            }
            4 => b.truncate(rng.below(len + 1)),
            _ => {
                let s = String::from_utf8_lossy(&b).into_owned();
                let mut lines: Vec<&str> = s.lines().collect();
                if lines.len() > 1 {
                    let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(i, j);
                }
                b = lines.join("\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn mutated_manifests_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut corpus: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    corpus.sort();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut parsed = 0;
    for round in 0..20_000 {
        let base = &corpus[round % corpus.len()];
        let text = mutate(&mut rng, base);
        match Manifest::parse(&text, "m/app.toml") {
            Ok(_) => parsed += 1,
            Err(d) => {
                assert!(!d.is_empty());
                let lines = text.split('\n').count();
                for x in d.iter() {
                    assert!(x.line <= lines, "diagnostic at line {} of {lines}:\n{text}", x.line);
                    assert!(!x.message.is_empty());
                }
            }
        }
    }
    assert!(parsed > 0, "some mutations should still be valid manifests");
}

#[test]
fn mutated_addr_patterns_never_panic_and_round_trip() {
    let seeds = [
        "127.0.0.1:80",
        "10.0.0.0/8:*",
        "[::1]:443",
        "[fe80::]/10:53",
        "0.0.0.0/0:*",
    ];
    let mut rng = Rng(42);
    for i in 0..20_000 {
        let s = mutate(&mut rng, seeds[i % seeds.len()]);
        if let Ok(p) = parse_addr_pattern(&s) {
            assert_eq!(parse_addr_pattern(&p.to_string()), Ok(p), "{s:?}");
        }
    }
}
