//! The DTMF receiver: Goertzel analysis, per-window tests and the digit state machine.
//!
//! # Design (after spandsp's `dtmf.c`, with three additions)
//!
//! Audio is cut into **half-blocks** of 51 samples at 8 kHz (6.375 ms; 102 at 16 kHz). The eight
//! filters run once per half-block; an **analysis window** is two consecutive half-blocks
//! (102 samples, 12.75 ms — spandsp's block length, which gives ≈ 78 Hz bins, narrow enough
//! to tell 697 from 770 Hz), so windows overlap by half and a decision is made every 6.375 ms.
//!
//! Each window is tested in the order of Q.24's clauses ([`Detector::classify`]), after the
//! strongest tone of each group is picked:
//!
//! 1. **relative peak** — each tone 8 dB above every other tone of its group (plain bins; the
//!    cheap test that ends most windows of speech and silence);
//! 2. **level** — each tone ≥ −44 dBm0 (Q.24 asks operation to −25 dBm0, good receivers reach
//!    −40; the margin covers tones 1.5 % off a bin). *Addition*: levels come from a
//!    least-squares fit of the pair (`fit.rs`), which removes the other tone's leakage and each
//!    tone's image, so twist is measured to a fraction of a dB;
//! 3. **twist** — the pair's level difference within the configured normal/reverse limits;
//! 4. **energy share** — the pair carries ≥ 70 % of the window's energy. Speech and music
//!    spread theirs; white noise at S/N 6 dB still leaves the pair 80 %;
//! 5. **balance** — each tone's energy differs by < 4 dB between the two half-blocks, which
//!    rejects windows a tone only partly covers (this is what keeps ≤ 20 ms bursts out);
//! 6. **frequency** — *addition*: the phase advance of each tone from the first half-block to
//!    the second measures its actual frequency to a few Hz, and tones more than 2.0 % off
//!    nominal are refused. Bin energy alone cannot do this at 12.75 ms (spandsp accepts −3.8 %
//!    on some tones); Q.24 asks operation within ±1.5 % and refusal beyond ±3.5 %. The 2.0 %
//!    (rather than the midpoint, 2.5 %) keeps musical notes a semitone-ish off a DTMF tone out —
//!    the talk-off corpus has a 1180 Hz note (−2.4 % from 1209 Hz) over a 935 Hz one.
//!
//! The state machine ([`State`]) then debounces the per-window verdicts:
//!
//! | pattern of windows                        | result                                   |
//! |-------------------------------------------|------------------------------------------|
//! | 3 consecutive hits of one digit (≈ 25 ms) | digit **starts** ([`Transition::Started`]) |
//! | 5 consecutive windows without it          | digit **ends** ([`Transition::Ended`])   |
//! | fewer than 5 misses, then hits again      | dropout bridged (≤ 10 ms always is)      |
//! | 3 consecutive hits of another digit       | first digit ends, the other starts       |
//!
//! A 40 ms tone always spans ≥ 4 fully covered windows; a 20 ms burst spans at most 2 that pass
//! the balance test. A 40 ms pause always yields ≥ 7 misses.
//!
//! *Second addition*: digit **edges are refined to the sample**. When a digit starts, the
//! half-blocks before the first hit window are examined outward (at most two): a half the
//! tone fills (≥ −1.5 dB of the digit's energy per half) joins whole; in the first half it only
//! partly fills, a tone occupying its last `k` samples has a bin magnitude proportional to `k`,
//! so `k ≈ H·√(energy ratio)` samples (+1 ms margin) join. The end is extended the same way. The
//! reported `[start, end)` therefore covers the tone from its first sample to its last, which
//! is what the masker needs for zero onset leak, while over-masking only a few samples.

mod config;
mod fit;
mod goertzel;
pub mod tones;

pub use config::{DetectorConfig, Twist};
pub use goertzel::{Bank, Complex, FREQS};

use crate::digit::Digit;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use fit::PairFit;

/// Half-block length at 8 kHz, in samples (6.375 ms).
const HALF_8K: usize = 51;
/// Lowest accepted level per tone, in dBm0.
const MIN_LEVEL_DBM0: f32 = -44.0;
/// Each tone must beat the other tones of its group by this much (dB).
const RELATIVE_PEAK_DB: f32 = 8.0;
/// Share of the window's energy the tone pair must carry.
const ENERGY_SHARE: f32 = 0.7;
/// Largest energy difference of a tone between the two halves of a window (dB).
const BALANCE_DB: f32 = 4.0;
/// Largest accepted deviation from nominal frequency (fraction): between Q.24's must-operate
/// ±1.5 % and must-not-operate ±3.5 %, nearer the inside to refuse musical notes.
const MAX_DEVIATION: f32 = 0.02;
/// Consecutive hit windows that start a digit.
const PRESENCE_WINDOWS: u8 = 3;
/// Consecutive non-hit windows that end a digit.
const ABSENCE_WINDOWS: u8 = 5;
/// Half-blocks an edge may be extended by refinement.
const EDGE_HALVES: u64 = 2;
/// A half-block at an edge counts as filled by the tone at ≥ this fraction (−1.5 dB) of the
/// digit's energy per half.
const FULL_HALF: f32 = 0.7;
/// Samples added beyond the estimated tone edge in a partly filled half-block, at 8 kHz
/// (1 ms; scaled with the sample rate).
const EDGE_MARGIN_8K: u64 = 8;
/// Half-blocks of analysis kept for edge refinement (must exceed `EDGE_HALVES + ABSENCE_WINDOWS`).
const HISTORY: usize = 8;

fn db_to_ratio(db: f32) -> f32 {
    libm::powf(10.0, db / 10.0)
}

/// What the detector reports, in samples since the session started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A digit was confirmed; it began at sample `start` (refined edge).
    Started {
        /// The digit.
        digit: Digit,
        /// First sample of the tone.
        start: u64,
        /// Sample count at which the digit was confirmed (for latency).
        detected_at: u64,
    },
    /// The digit ended; the tone occupied samples `start..end`.
    Ended {
        /// The digit.
        digit: Digit,
        /// First sample of the tone.
        start: u64,
        /// One past the last sample of the tone.
        end: u64,
        /// Sample count at which the digit was confirmed.
        detected_at: u64,
    },
}

/// One analysed half-block.
#[derive(Clone, Copy, Default)]
struct Half {
    y: [Complex; 8],
    energy: f32,
}

/// A run of consecutive hit windows of one digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    digit: Digit,
    /// Index of the first half-block of the first hit window.
    first: u64,
    hits: u8,
}

/// A confirmed digit, while it lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
struct OnDigit {
    digit: Digit,
    /// First sample (refined edge).
    start: u64,
    /// Sample count at confirmation.
    detected_at: u64,
    /// Index of the second half-block of the last hit window.
    last_hit: u64,
    /// The digit's tone energy per half-block, for edge refinement.
    level: Level,
}

/// Sums of the row and column tone energy over the hit half-blocks.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
struct Level {
    sum: [f32; 2],
    halves: u32,
}

impl Level {
    fn add(self, e: [f32; 2]) -> Level {
        Level {
            sum: [self.sum[0] + e[0], self.sum[1] + e[1]],
            halves: self.halves + 1,
        }
    }

    /// How much of a half-block with tone energies `e` the tone fills: the larger of the two
    /// tones' ratios to their mean energy per half.
    fn fill_ratio(self, e: [f32; 2]) -> f32 {
        let n = self.halves.max(1) as f32;
        let r = |i: usize| e[i] * n / self.sum[i].max(f32::MIN_POSITIVE);
        r(0).max(r(1))
    }
}

/// What the debouncer waits for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Waiting for a window that looks like a digit.
    Idle,
    /// Waiting for enough consecutive hits to confirm `run`.
    Rising(Run),
    /// A digit is on; waiting for enough misses (or a rival digit's run) to end it.
    Active {
        on: OnDigit,
        misses: u8,
        rival: Option<Run>,
    },
}

/// A DTMF receiver for one audio stream. Create once per call; no allocation per frame.
pub struct Detector {
    bank: Bank,
    fit_half: PairFit,
    fit_full: PairFit,
    /// `e^{−jω(H−1)}` per filter: turns a Goertzel output into the start-referenced DFT.
    unref: [Complex; 8],
    half: usize,
    buf: Vec<f32>,
    history: [Half; HISTORY],
    /// Number of completed half-blocks.
    halves: u64,
    /// Samples consumed.
    samples: u64,
    state: State,
    out: VecDeque<Transition>,
    min_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    balance: f32,
}

impl Detector {
    /// A detector for `sample_rate` (8000 or 16000 Hz; validated by the session config).
    #[must_use]
    pub fn new(sample_rate: u32, config: &DetectorConfig) -> Detector {
        let half = HALF_8K * (sample_rate as usize / 8000).max(1);
        let bank = Bank::new(sample_rate, half);
        let mut unref = [Complex::default(); 8];
        for (k, u) in unref.iter_mut().enumerate() {
            let a = 2.0 * core::f32::consts::PI * FREQS[k] / sample_rate as f32 * (half - 1) as f32;
            *u = Complex {
                re: libm::cosf(a),
                im: -libm::sinf(a),
            };
        }
        Detector {
            bank,
            fit_half: PairFit::new(sample_rate, half),
            fit_full: PairFit::new(sample_rate, 2 * half),
            unref,
            half,
            buf: Vec::with_capacity(2 * half),
            history: [Half::default(); HISTORY],
            halves: 0,
            samples: 0,
            state: State::Idle,
            out: VecDeque::with_capacity(8),
            min_power: tones::power_of_dbm0(MIN_LEVEL_DBM0),
            normal_twist: db_to_ratio(config.twist.normal_db),
            reverse_twist: db_to_ratio(config.twist.reverse_db),
            relative_peak: db_to_ratio(RELATIVE_PEAK_DB),
            balance: db_to_ratio(BALANCE_DB),
        }
    }

    /// Half-block length in samples.
    #[must_use]
    pub fn half_block(&self) -> usize {
        self.half
    }

    /// Samples consumed so far.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.samples
    }

    /// Feeds linear samples. Transitions are queued for [`Detector::poll`].
    pub fn push(&mut self, samples: &[i16]) {
        for &s in samples {
            // `buf` holds the previous half-block (once there is one) then the current one.
            self.buf.push(f32::from(s));
            if self.buf.len() == self.half * if self.halves == 0 { 1 } else { 2 } {
                self.analyse_half();
                if self.buf.len() == 2 * self.half {
                    self.buf.copy_within(self.half.., 0);
                }
                self.buf.truncate(self.half);
            }
        }
        self.samples += samples.len() as u64;
    }

    /// Ends the stream: a digit still on ends at the last sample seen.
    pub fn finish(&mut self) {
        if let State::Active { on, .. } = self.state {
            self.out.push_back(Transition::Ended {
                digit: on.digit,
                start: on.start,
                end: self.samples,
                detected_at: on.detected_at,
            });
        }
        self.state = State::Idle;
    }

    /// Next queued transition, oldest first.
    pub fn poll(&mut self) -> Option<Transition> {
        self.out.pop_front()
    }

    fn analyse_half(&mut self) {
        let current = &self.buf[self.buf.len() - self.half..];
        let y = self.bank.run(current);
        let energy = current.iter().map(|v| v * v).sum();
        let index = self.halves;
        self.history[(index % HISTORY as u64) as usize] = Half { y, energy };
        self.halves += 1;
        if index == 0 {
            return;
        }
        let a = self.history[((index - 1) % HISTORY as u64) as usize];
        let b = self.history[(index % HISTORY as u64) as usize];
        let verdict = self.classify(&a, &b);
        self.step(verdict, index);
    }

    /// Tests one window (half-blocks `a` then `b`); returns the digit it holds, if any.
    fn classify(&self, a: &Half, b: &Half) -> Option<Digit> {
        let mut full = [Complex::default(); 8];
        let mut energy = [0.0f32; 8];
        for k in 0..8 {
            full[k] = (a.y[k] + b.y[k] * self.bank.shift[k]) * self.unref[k];
            energy[k] = full[k].norm_sqr();
        }
        let r = argmax(&energy[..4]);
        let c = 4 + argmax(&energy[4..]);
        // 1. relative peak within each group, on the plain bins (the cheap test that ends most
        // windows of speech and silence).
        for (group, best) in [(0..4, r), (4..8, c)] {
            if group
                .clone()
                .any(|k| k != best && energy[k] * self.relative_peak > energy[best])
            {
                return None;
            }
        }
        let [ar, ac] = self.fit_full.solve(r, c - 4, full[r], full[c]);
        let (pr, pc) = (2.0 * ar.norm_sqr(), 2.0 * ac.norm_sqr());
        // 2. level (of the fitted pair)
        if pr < self.min_power || pc < self.min_power {
            return None;
        }
        // 3. twist
        if (pc < pr && pr > pc * self.normal_twist) || (pr <= pc && pc > pr * self.reverse_twist) {
            return None;
        }
        // 4. energy share
        let n = (2 * self.half) as f32;
        if pr + pc < ENERGY_SHARE * (a.energy + b.energy) / n {
            return None;
        }
        let fa = self
            .fit_half
            .solve(r, c - 4, a.y[r] * self.unref[r], a.y[c] * self.unref[c]);
        let fb = self
            .fit_half
            .solve(r, c - 4, b.y[r] * self.unref[r], b.y[c] * self.unref[c]);
        for (i, k) in [r, c].into_iter().enumerate() {
            // 5. balance between the halves
            let (ea, eb) = (fa[i].norm_sqr(), fb[i].norm_sqr());
            if ea > eb * self.balance || eb > ea * self.balance {
                return None;
            }
            // 6. frequency from the phase advance over one half-block
            let df = (fb[i].mul_conj(fa[i]) * self.bank.shift[k]).arg() * self.bank.hz_per_radian;
            if df.abs() > FREQS[k] * MAX_DEVIATION {
                return None;
            }
        }
        Some(Digit::from_indices(r, c - 4))
    }

    fn half_at(&self, index: u64) -> Option<&Half> {
        (index < self.halves && index + HISTORY as u64 >= self.halves)
            .then(|| &self.history[(index % HISTORY as u64) as usize])
    }

    fn tone_energy(&self, index: u64, digit: Digit) -> Option<[f32; 2]> {
        let (r, c) = digit.indices();
        self.half_at(index)
            .map(|h| [h.y[r].norm_sqr(), h.y[4 + c].norm_sqr()])
    }

    /// Walks outward from the half-block next to the digit (`step` = −1 before, +1 after):
    /// whole halves join while the tone fills them; the first partly filled half adds the
    /// samples its energy accounts for. Returns the number of samples to add to that edge.
    fn edge_extension(&self, next: Option<u64>, step: i64, digit: Digit, level: Level) -> u64 {
        let h = self.half as u64;
        let mut extra = 0;
        let mut index = next;
        for _ in 0..EDGE_HALVES {
            let Some(i) = index else { break };
            let ratio = self
                .tone_energy(i, digit)
                .map_or(0.0, |e| level.fill_ratio(e));
            if ratio >= FULL_HALF {
                extra += h;
                index = i.checked_add_signed(step);
                continue;
            }
            // A tone in the last k samples of a half gives |X| ∝ k: k ≈ H·√ratio.
            let margin = EDGE_MARGIN_8K * (self.half / HALF_8K) as u64;
            let k = libm::ceilf(self.half as f32 * libm::sqrtf(ratio)) as u64 + margin;
            extra += k.min(h);
            break;
        }
        extra
    }

    /// Confirms `run` (its last hit window ends at half `now`) and returns the new state.
    fn start(&mut self, run: Run, now: u64) -> State {
        let level = (run.first..=now)
            .filter_map(|i| self.tone_energy(i, run.digit))
            .fold(Level::default(), Level::add);
        let extra = self.edge_extension(run.first.checked_sub(1), -1, run.digit, level);
        let start = (run.first * self.half as u64).saturating_sub(extra);
        let detected_at = (now + 1) * self.half as u64;
        self.out.push_back(Transition::Started {
            digit: run.digit,
            start,
            detected_at,
        });
        let on = OnDigit {
            digit: run.digit,
            start,
            detected_at,
            last_hit: now,
            level,
        };
        State::Active {
            on,
            misses: 0,
            rival: None,
        }
    }

    /// Ends `on` after refining its end edge.
    fn end(&mut self, on: OnDigit) {
        let extra = self.edge_extension(Some(on.last_hit + 1), 1, on.digit, on.level);
        let end = (on.last_hit + 1) * self.half as u64 + extra;
        self.out.push_back(Transition::Ended {
            digit: on.digit,
            start: on.start,
            end,
            detected_at: on.detected_at,
        });
    }

    /// Advances the debouncer with the verdict of the window ending at half `now`.
    fn step(&mut self, verdict: Option<Digit>, now: u64) {
        let extend = |run: Option<Run>, d: Digit| match run {
            Some(r) if r.digit == d => Run {
                hits: r.hits + 1,
                ..r
            },
            _ => Run {
                digit: d,
                first: now - 1,
                hits: 1,
            },
        };
        self.state = match (self.state, verdict) {
            (State::Idle, None) | (State::Rising(_), None) => State::Idle,
            (State::Idle, Some(d)) => State::Rising(extend(None, d)),
            (State::Rising(run), Some(d)) => {
                let run = extend(Some(run), d);
                if run.hits >= PRESENCE_WINDOWS {
                    self.start(run, now)
                } else {
                    State::Rising(run)
                }
            }
            (State::Active { on, .. }, Some(d)) if d == on.digit => {
                let level = self
                    .tone_energy(now, on.digit)
                    .map_or(on.level, |e| on.level.add(e));
                State::Active {
                    on: OnDigit {
                        last_hit: now,
                        level,
                        ..on
                    },
                    misses: 0,
                    rival: None,
                }
            }
            (State::Active { on, misses, rival }, verdict) => {
                let rival = verdict.map(|d| extend(rival, d));
                match rival {
                    Some(run) if run.hits >= PRESENCE_WINDOWS => {
                        self.end(on);
                        self.start(run, now)
                    }
                    _ if misses + 1 >= ABSENCE_WINDOWS => {
                        self.end(on);
                        rival.map_or(State::Idle, State::Rising)
                    }
                    _ => State::Active {
                        on,
                        misses: misses + 1,
                        rival,
                    },
                }
            }
        };
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Convenience for tests and tools: all transitions for a whole buffer.
#[must_use]
pub fn detect_all(sample_rate: u32, config: &DetectorConfig, samples: &[i16]) -> Vec<Transition> {
    let mut d = Detector::new(sample_rate, config);
    d.push(samples);
    d.finish();
    let mut v = vec![];
    while let Some(t) = d.poll() {
        v.push(t);
    }
    v
}
