//! The fuzz targets' smoke run on stable (part of `cargo test`): each target over its seeds
//! (`fuzz/corpus/<target>/` and `fuzz/seeds.txt`) and over a fixed number of deterministic
//! mutations of them (bit flips, interesting bytes, cuts, repeats, splices of two seeds). An
//! input that fails is written to `target/fuzz-smoke/` and named in the failure, to be rerun
//! with `cargo fuzz run <target> <file>` or added to the owning crate's tests.
//!
//! `DEMAIL_FUZZ_SMOKE_MUTATIONS` sets the mutations per target (default 2000).

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use demail_fuzz::{TARGETS, workspace_root};

/// Seeds larger than this run once but are not mutated (a mutation costs a full parse).
const MAX_MUTATED_SEED: usize = 64 * 1024;

/// xorshift64*: the same inputs on every run and machine.
struct Rng(u64);

impl Rng {
    fn new(name: &str) -> Rng {
        let seed = name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\x80",
    b"\x7f",
    b"\r\n",
    b"\n",
    b" ",
    b"\r\n ",
    b"{",
    b"}",
    b"{4294967295}\r\n",
    b"[",
    b"]",
    b"<",
    b">",
    b"&",
    b"-",
    b"=",
    b";",
    b"\"",
    b"\\",
    b"=?utf-8?b?",
    b"?=",
    b"*",
    b":",
    b"\x30\x80",
    b"\x00\x00",
    b"\x84\xff\xff\xff\xff",
    b"\xef\xbb\xbf",
    b"\xe2\x80\x8b",
];

fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(len + 1);
                let s = INTERESTING[rng.below(INTERESTING.len())];
                if rng.below(2) == 0 || i + s.len() > len {
                    v.splice(i..i, s.iter().copied());
                } else {
                    v[i..i + s.len()].copy_from_slice(s);
                }
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let piece = v[i..i + n].to_vec();
                for _ in 0..1 + rng.below(8) {
                    v.splice(i..i, piece.iter().copied());
                }
            }
            4 => v.truncate(rng.below(len + 1)),
            5 if !other.is_empty() => {
                let i = rng.below(len + 1);
                let j = rng.below(other.len());
                let n = 1 + rng.below((other.len() - j).min(256));
                v.truncate(i);
                v.extend_from_slice(&other[j..j + n]);
            }
            _ if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

fn files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for e in entries {
            files(&e, out);
        }
    } else {
        out.push(path.to_path_buf());
    }
}

/// The seed files of `target`, in a fixed order; every path `seeds.txt` names must exist.
fn seeds(target: &str) -> Vec<PathBuf> {
    let root = workspace_root();
    let mut out = Vec::new();
    // The committed seeds only: `fuzz/run` grows the corpus in `new/` below.
    let corpus = root.join("fuzz/corpus").join(target);
    if corpus.exists() {
        let mut top = Vec::new();
        files(&corpus, &mut top);
        out.extend(
            top.into_iter()
                .filter(|p| p.parent() == Some(corpus.as_path())),
        );
    }
    let list = std::fs::read_to_string(root.join("fuzz/seeds.txt")).expect("fuzz/seeds.txt");
    for line in list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (name, path) = line.split_once(' ').expect("`target path` lines");
        if name == target {
            let p = root.join(path.trim());
            assert!(
                p.exists(),
                "fuzz/seeds.txt names {} which is missing",
                p.display()
            );
            files(&p, &mut out);
        }
    }
    out
}

fn run_one(target: &str, f: fn(&[u8]), input: &[u8], what: &str) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
        let dir = workspace_root().join("target/fuzz-smoke");
        std::fs::create_dir_all(&dir).expect("target/fuzz-smoke");
        let digest = openssl::sha::sha256(input);
        let file = dir.join(format!("{target}-{}", hex(&digest[..8])));
        std::fs::write(&file, input).expect("write the failing input");
        panic!(
            "{target} failed on {what}; input kept in {}",
            file.display()
        );
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn smoke(target: &str) {
    let f = TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, f)| *f)
        .expect("a target of demail_fuzz::TARGETS");
    let paths = seeds(target);
    assert!(!paths.is_empty(), "{target} has no seeds");
    let mut inputs = Vec::new();
    for p in &paths {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        run_one(target, f, &data, &p.display().to_string());
        if data.len() <= MAX_MUTATED_SEED {
            inputs.push(data);
        }
    }
    assert!(
        !inputs.is_empty(),
        "{target} has no seed small enough to mutate"
    );
    let n: usize = std::env::var("DEMAIL_FUZZ_SMOKE_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut rng = Rng::new(target);
    for i in 0..n {
        let base = &inputs[rng.below(inputs.len())];
        let other = &inputs[rng.below(inputs.len())];
        let input = mutate(&mut rng, base, other);
        run_one(target, f, &input, &format!("mutation {i}"));
    }
}

macro_rules! smoke_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { smoke(stringify!($name)); })*

        /// A target added to `TARGETS` must get its smoke test here.
        #[test]
        fn every_target_has_a_smoke_test() {
            let here: BTreeSet<&str> = [$(stringify!($name)),*].into_iter().collect();
            let all: BTreeSet<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(here, all);
        }
    };
}

smoke_tests!(
    qc_statements,
    der,
    certificate,
    cms,
    cms_file,
    smime_mail,
    integrity,
    integrity_tags,
    confirmation,
    confirmation_xml,
    subject_tags,
    demail_options,
    config,
    trusted_list,
    imap_client,
    imap_mailbox_name,
);
