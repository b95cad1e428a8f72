//! Every fuzz input we keep — the seed corpus (`corpus/TARGET/`) and inputs that once found
//! a bug (`regressions/TARGET/`) — replayed through its target on every test run, plus a
//! deterministic sweep of mutations of each (bit flips, cuts, splices), so the parsers'
//! robustness is checked in CI without a fuzzer.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 11] = [
    ("rtp_packet", tonemask_fuzz::rtp_packet),
    ("audio_session", tonemask_fuzz::audio_session),
    ("rtp_session", tonemask_fuzz::rtp_session),
    ("rtp_stream", tonemask_fuzz::rtp_stream),
    ("capture", tonemask_fuzz::capture),
    ("wav", tonemask_fuzz::wav),
    ("events", tonemask_fuzz::events),
    ("keys", tonemask_fuzz::keys),
    ("sip", tonemask_fuzz::sip),
    ("ng", tonemask_fuzz::ng),
    ("card", tonemask_fuzz::card),
];

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(here.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            v.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    v.sort();
    v
}

/// xorshift64*: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 if !other.is_empty() => {
                let at = rng.below(v.len() + 1);
                let from = rng.below(other.len());
                let n = rng.below(64).min(other.len() - from);
                v.splice(at..at, other[from..from + n].iter().copied());
            }
            _ if !v.is_empty() => {
                // Interesting values where length and count fields live.
                let i = rng.below(v.len());
                v[i] = [0, 1, 0x7F, 0x80, 0xFF, 0x0F, 0x10][rng.below(7)];
            }
            _ => {}
        }
    }
    v
}

#[test]
fn every_kept_input_runs_cleanly() {
    for (target, run) in TARGETS {
        let kept = inputs(target);
        assert!(!kept.is_empty(), "no corpus for {target}");
        for (path, data) in &kept {
            eprintln!("{target}: {}", path.display());
            run(data);
        }
    }
}

#[test]
fn mutations_of_the_corpus_run_cleanly() {
    let mut rng = Rng(0x7031_6D61_736B);
    for (target, run) in TARGETS {
        let kept = inputs(target);
        let rounds = match target {
            "rtp_session" | "rtp_stream" | "audio_session" => 300,
            "capture" | "wav" => 1000,
            _ => 3000,
        };
        for i in 0..rounds {
            let seed = &kept[i % kept.len()].1;
            let other = &kept[rng.below(kept.len())].1;
            run(&mutate(&mut rng, seed, other));
        }
    }
}
