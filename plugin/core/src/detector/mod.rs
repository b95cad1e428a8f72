//! The DTMF receiver: Goertzel analysis, per-window tests and the digit state machine.
//!
//! # Design (after spandsp's `dtmf.c`, with three additions)
//!
//! Audio is cut into **half-blocks** of 51 samples at 8 kHz (6.375 ms; 102 at 16 kHz). The eight
//! filters run once per half-block; an **analysis window** is two consecutive half-blocks
//! (102 samples, 12.75 ms — spandsp's block length, which gives ≈ 78 Hz bins, narrow enough
//! to tell 697 from 770 Hz), so windows overlap by half and a decision is made every 6.375 ms.
//!
//! Each window is tested in the order of Q.24's clauses (`Measure::digit` in `window.rs`),
//! after the strongest tone of each group is picked:
//!
//! 1. **relative peak** — each tone 8 dB above every other tone of its group (plain bins; the
//!    cheap test that ends most windows of speech and silence);
//! 2. **level** — each tone ≥ −44 dBm0 (Q.24 asks operation to −25 dBm0, good receivers reach
//!    −40; the margin covers tones 1.5 % off a bin). *Addition*: levels come from a
//!    least-squares fit of the pair (`fit.rs`), which removes the other tone's leakage and each
//!    tone's image, so twist is measured to a fraction of a dB;
//! 3. **twist** — the pair's level difference within the configured normal/reverse limits
//!    (+0.5 dB: a pair exactly at the limit must operate, and measures a few tenths either side);
//! 4. **energy share** — the pair carries ≥ 70 % of the window's energy. Speech and music
//!    spread theirs; white noise at S/N 6 dB still leaves the pair 80 %;
//! 5. **balance** — each tone's energy differs by < 4 dB between the two half-blocks, which
//!    rejects windows a tone only partly covers (this is what keeps ≤ 20 ms bursts out);
//! 6. **frequency** — *addition*: the phase advance of each tone from the first half-block to
//!    the second measures its actual frequency to a few Hz, and tones more than 2.0 % off
//!    nominal are refused — and more than 1.75 % averaged over the window and the one before
//!    it (`strict::MAX_MEAN_DEVIATION`). Bin energy alone cannot do this at 12.75 ms (spandsp accepts −3.8 %
//!    on some tones); Q.24 asks operation within ±1.5 % and refusal beyond ±3.5 %. The 2.0 %
//!    (rather than the midpoint, 2.5 %) keeps musical notes a semitone-ish off a DTMF tone out —
//!    the talk-off corpus has a 1180 Hz note (−2.4 % from 1209 Hz) over a 935 Hz one.
//!
//! A debouncer (`debounce.rs`) then turns per-window verdicts into digits: 3 consecutive hits
//! (≈ 25 ms) whose tones hold their frequency to 2 % from window to window start a digit
//! ([`Transition::Started`]) — 5 (≈ 38 ms) when two or more of them sit where the twist and
//! frequency clauses meet (twist within 1 dB of the limit and a tone over 1 % off: for a
//! moment, two notes of music look like that) —, 5 consecutive misses end it
//! ([`Transition::Ended`]), shorter gaps are bridged. A 40 ms tone always spans ≥ 4 fully
//! covered windows; a 20 ms burst spans at most 2 that pass the balance test; a 40 ms pause
//! always yields ≥ 7 misses.
//!
//! **Two tracks.** Those strict limits decide what is *reported* as a digit. What is *masked*
//! is decided by a second debouncer over the same measurements ([`Transition::MaskFrom`] /
//! [`Transition::MaskUntil`]): a window counts for masking when it passes the strict limits
//! **or** the acceptance region of the looser receivers in the field, with a margin —
//! spandsp and Asterisk (102-sample blocks, each group's peak 8 dB over its rivals, the pair
//! ≥ 82 % of the block's energy, 8/4 dB twist or up to 10 dB when configured, −42 dBm0, tones
//! up to ≈ 3.8 % off) and multimon-ng (the pair ≥ 80 % over 40 ms). The margin: peak 6 dB,
//! share 75 %, twist 12 dB either way (on the fitted levels or the plain bins, as the
//! receivers see it), −50 dBm0, 5 % off, no balance test, and — until a span is on — both
//! tones' frequencies steady to 1 % over the two windows before and the pair's twist to 3 dB
//! since the window before (a key's tones keep their level ratio; notes swell and fade apart).
//! Two consecutive harmonics of
//! one voice or whistle (ratio 2/1, 3/2 or 4/3) are held to the configured twist and an 80 %
//! share. Masking starts
//! after 3 consecutive such windows (153 samples of tone + overlap: spandsp itself needs two
//! whole 102-sample blocks, 204 samples) and the onset is then moved back to the tone's first
//! sample. Speech and music rarely keep 75 % of their energy in one row and one column tone
//! for 19 ms; the earlier rule (any 2 windows at a 50 % share) masked 50–660 spans an hour of
//! them. Every strict hit is a masking hit, so every reported digit lies inside a masked span.
//!
//! *Second addition*: digit **edges are refined to the sample**. When a digit starts, the
//! half-blocks before the first hit window are examined outward (at most two): a half the
//! tone fills (≥ −1.5 dB of the digit's energy per half) joins whole; in the first half it only
//! partly fills, a tone occupying its last `k` samples has a bin magnitude proportional to `k`,
//! so `k ≈ H·√(energy ratio)` samples (+1 ms margin) join. The end is extended the same way. The
//! reported `[start, end)` therefore covers the tone from its first sample to its last, which
//! is what the masker needs for zero onset leak, while over-masking only a few samples.

mod config;
mod debounce;
mod fit;
mod goertzel;
mod history;
pub mod tones;
mod window;

pub use config::{DetectorConfig, Twist};
pub use goertzel::{Bank, Complex, FREQS, MAX_BLOCKS};

use crate::digit::Digit;
use crate::g711::{self, Law};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use debounce::{Debouncer, Track};
use history::{EdgeRule, Half, History};
use window::{Analyser, Limits};

/// Half-block length at 8 kHz, in samples (6.375 ms).
const HALF_8K: usize = 51;

/// Strict limits: what is reported as a digit (Q.24).
mod strict {
    /// Lowest accepted level per tone, in dBm0.
    pub const MIN_LEVEL_DBM0: f32 = -44.0;
    /// Each tone must beat the other tones of its group by this much (dB).
    pub const RELATIVE_PEAK_DB: f32 = 8.0;
    /// Share of the window's energy the tone pair must carry.
    pub const ENERGY_SHARE: f32 = 0.7;
    /// Largest energy difference of a tone between the two halves of a window (dB).
    pub const BALANCE_DB: f32 = 4.0;
    /// Largest accepted deviation from nominal frequency (fraction): between Q.24's
    /// must-operate ±1.5 % and must-not-operate ±3.5 %, nearer the inside to refuse musical
    /// notes.
    pub const MAX_DEVIATION: f32 = 0.02;
    /// Largest deviation of a tone's frequency averaged over a window and the one before it
    /// (same pair), as a fraction of nominal. One window's estimate scatters (σ ≈ 0.1–0.2 %
    /// for a tone at 15 dB S/N), so a single-window limit must sit well outside ±1.5 %; two
    /// windows halve the variance, and a held musical chord 1.7–1.9 % off (a 697 + 1312 Hz
    /// F5/E6 in the talk-off music that spandsp also takes for a '2') no longer passes for a
    /// key. Operation stays beyond ±1.5 % (±1.6–1.7 % clean); talk-off false digits at
    /// 8 kHz 1 → 0 (spandsp 1), at 16 kHz 2 → 1; tones ±1.5 % off at 8/4 dB twist and
    /// 15 dB S/N (row 3b) 99.2 → 97.7 %.
    pub const MAX_MEAN_DEVIATION: f32 = 0.0175;
    /// Added to the configured twist limits (dB): the fitted levels are exact to a few tenths
    /// of a dB, so a pair exactly at the limit measures on either side of it; Q.24 asks the
    /// limit itself to operate, and 1 dB past it still fails.
    pub const TWIST_TOLERANCE_DB: f32 = 0.5;
    /// Largest change of either tone's measured frequency (fraction of nominal) from one
    /// window to the next while a digit is being confirmed (the first window of the run,
    /// which may straddle the onset, is not compared): a key's tones hold still, two notes of
    /// music that pass for a moment wander (one false digit in the talk-off music had its
    /// column tone jump 3.2 %). 1.5 % cost a dB of white-noise S/N (7 dB for 99 %); at 2 %
    /// the 6 dB row holds (99.8 %, was 100 %). Talk-off false digits, µ-law: 2 → 1 in 4.3 h
    /// of music (spandsp: 1).
    pub const MAX_DRIFT: f32 = 0.02;
    /// Consecutive hit windows that start a digit.
    pub const PRESENCE_WINDOWS: u8 = 3;
    /// A hit window is *weak* evidence when it sits in the corner where two of Q.24's clauses
    /// meet: its twist within this much of the configured limit (dB) …
    pub const CORNER_TWIST_DB: f32 = 1.0;
    /// … and a tone more than this far off nominal (fraction). Q.24 asks each clause to
    /// operate at its limit, for tones of 40 ms; a pair at both limits for about 30 ms is what
    /// two notes of music look like for a moment (the 16 kHz talk-off music had a '4': four
    /// hit windows, twist 7.5–8.5 dB, row +1.0…+1.9 %, column −0.6…−1.6 %, both gliding).
    pub const CORNER_DEVIATION: f32 = 0.01;
    /// Consecutive hit windows that start a digit whose run holds two or more weak windows
    /// (≈ 38 ms of tone; a 40 ms tone spans 4–5 fully covered windows, the suite's 60 ms
    /// corner tones 7–8).
    pub const WEAK_PRESENCE_WINDOWS: u8 = 5;
    /// Consecutive windows without it that end a digit (≤ 10 ms dropouts always bridged, a
    /// 40 ms pause always separates).
    pub const ABSENCE_WINDOWS: u8 = 5;
    /// Edges: whole half-blocks join at ≥ −1.5 dB of the digit's level, two at most; 1 ms margin.
    pub const EDGES: super::EdgeRule = super::EdgeRule {
        full_half: 0.7,
        max_before: 2,
        max_after: 2,
        margin_per_51: 8,
    };
}

/// Permissive limits: the looser receivers' acceptance region with a margin. A window that passes
/// these or the strict limits counts for masking.
mod permissive {
    /// Lowest level per tone, in dBm0.
    pub const MIN_LEVEL_DBM0: f32 = -50.0;
    /// Relative peak within each group (dB).
    pub const RELATIVE_PEAK_DB: f32 = 6.0;
    /// Share of the window's energy in the pair (spandsp and Asterisk ask 82 %, multimon-ng
    /// 80 %; 77 % let spandsp recover 3 digits from the suite's masked output, 80 % 22).
    pub const ENERGY_SHARE: f32 = 0.75;
    /// A pair whose measured frequencies are within 0.5 % of the ratio 2/1, 3/2 or 4/3 is two
    /// consecutive harmonics of one whistle or voice (every DTMF pair's nominal ratio keeps
    /// ≥ 3.6 % from those): it is masked only within the configured normal twist — a
    /// harmonic is weaker than the tone below it, and the receivers' own twist limit is what
    /// decides whether they decode it. Whistling went from ≈ 450 to 5 masked spans an hour.
    pub const HARMONIC_NEAR: f32 = 0.005;
    /// Added to the configured normal twist for such a pair (dB); twist on the plain bins
    /// (`Limits::plain_twist`) covers the receivers' own view of it.
    pub const HARMONIC_TWIST_MARGIN_DB: f32 = 0.5;
    /// From this deviation (fraction) on, the share on the plain bins counts too (see
    /// `Limits::plain_share_from`): short tones 3–3.5 % off that spandsp decoded were left
    /// unmasked (section 7c of the suite). From 0 %, music went from 4.2 to 4.9 spans/h.
    pub const PLAIN_SHARE_FROM_DEVIATION: f32 = 0.03;
    /// Share of the window's energy in a pair that looks like a tone and its own harmonic
    /// (spandsp asks 82 %). The synthesised whistles kept masking at 75–80 %: a whistle at
    /// 674 Hz with its harmonic 8 dB down passes for a '2' 3.3 % off. The harmonic-pair rows
    /// (clean and at 12 and 9 dB S/N) keep 0 digits recoverable.
    pub const HARMONIC_SHARE: f32 = 0.8;
    /// Twist either way, at least (dB); more when the strict limit is configured higher.
    pub const MIN_TWIST_DB: f32 = 12.0;
    /// Before a masked span is on, a window counts on these limits only when both tones'
    /// measured frequencies moved by at most this much (fraction of nominal) since each of
    /// the two windows before it, on the same pair; once a span is on, its pair holds it
    /// without this test (a packet lost mid-tone must not open a gap a receiver could decode
    /// across: the mangled-capture test caught exactly that). Strict hits need no such test.
    /// A key's tones hold their frequency to a few tenths of a percent; voices and music
    /// glide (the high-pitched voices that passed drift 0.5–1 % per 6.4 ms window, so two
    /// windows back they are past 1 %). 0.5 % left spandsp 3 digits to recover in the suite's
    /// noisy cases; at 1 %, none. Talk-off (µ-law, native, 13.2 h, with `HARMONIC_SHARE`):
    /// high-pitched spans 4.5 → 1.8 /h, real speech 0.5 → 0.2, music 4.4 → 4.2, whistling
    /// 5.0 → 0 (with `PLAIN_SHARE_FROM_DEVIATION`).
    pub const MAX_DRIFT: f32 = 0.01;
    /// Before a masked span is on, a window counts on these limits only when the pair's twist
    /// moved by at most this much (dB) since the window before (same pair). A key's two tones
    /// start, last and stop together, so their level ratio holds even across the onset
    /// windows; two notes of music swell and fade apart (a G5 + E6 chord in Colobot's music
    /// swept the twist from +9 to −12 dB at 3–4 dB per window and was masked).
    pub const MAX_TWIST_SWING_DB: f32 = 3.0;
    /// A window whose tones' energy differs by more than this between its halves (dB) holds
    /// an onset or an end: its frequency estimate is not a reference for the steadiness tests
    /// (at 4 dB, a 34 ms tone 3 % off whose onset window read 1 % low went unmasked).
    pub const ONSET_BALANCE_DB: f32 = 2.0;
    /// Deviation from nominal frequency (fraction). spandsp answers to 3.8 % off (697 Hz);
    /// near 4 % the phase-advance estimate reads up to ≈ 0.5 % more when the other tone is
    /// 6 dB stronger, so 4.5 % left a 33 ms fragment of a tone spandsp decoded.
    pub const MAX_DEVIATION: f32 = 0.05;
    /// Consecutive hit windows that start masking (2 masked 4× more speech, and no digit the
    /// suite's receivers recover from the masked output needed it).
    pub const PRESENCE_WINDOWS: u8 = 3;
    /// Consecutive windows without a hit that end masking. (Longer spans were tried: 8
    /// windows left the same fragments in deep noise and masked ≈ 11 ms more after each tone.)
    pub const ABSENCE_WINDOWS: u8 = 5;
    /// Edges: whole half-blocks join at ≥ −5 dB (a tone in deep noise swings by several dB
    /// from half to half); after the span, up to the 5 halves the absence rule has seen (with
    /// 3, tones at 3–5 dB S/N that lost their last hits early kept up to 4 ms of their end);
    /// 2 ms margin. How far the onset may
    /// move back depends on the look-ahead ([`super::mask_reach_back`]).
    pub const EDGES: super::EdgeRule = super::EdgeRule {
        full_half: 0.3,
        max_before: 0,
        max_after: 5,
        margin_per_51: 16,
    };
}

/// Half-blocks a masked span's onset may move back when confirmed, for a masker that delays the
/// audio by `lookahead` samples: at confirmation the newest sample is the end of half-block
/// `first + presence`, and the oldest still unsent is `lookahead` samples before it, so
/// `lookahead / half − presence − 1` whole half-blocks before the first hit can still be masked
/// (3 at 40 ms and 8 kHz, 6 at 60 ms). Capped by what the history holds.
fn mask_reach_back(lookahead: usize, half: usize) -> u64 {
    let presence = usize::from(permissive::PRESENCE_WINDOWS);
    let cap = history::LEN - presence - 1;
    (lookahead / half).saturating_sub(presence + 1).min(cap) as u64
}

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
    /// Something DTMF-like began at sample `start`: mask from there.
    MaskFrom {
        /// First sample to mask.
        start: u64,
    },
    /// The DTMF-like span that began at `start` ends at `end` (exclusive).
    MaskUntil {
        /// First sample of the span.
        start: u64,
        /// One past its last sample.
        end: u64,
    },
}

/// The detector's coefficient tables (Goertzel bank, pair-fit matrices) for 8 and 16 kHz:
/// computed once and shared by every detector created with them (behind an [`Arc`]), so a
/// session carries only its own state. A host with many sessions keeps one.
pub struct Tables {
    at_8k: Analyser,
    at_16k: Analyser,
    /// Each µ-law code's sample value ([`g711::ulaw_to_linear`]), for
    /// [`Detector::push_codes`].
    ulaw: [f32; 256],
    /// Each A-law code's sample value ([`g711::alaw_to_linear`]).
    alaw: [f32; 256],
}

impl Tables {
    /// Both rates' tables.
    #[must_use]
    pub fn new() -> Tables {
        Tables {
            at_8k: Analyser::new(8000, HALF_8K),
            at_16k: Analyser::new(16000, 2 * HALF_8K),
            ulaw: core::array::from_fn(|c| f32::from(g711::ulaw_to_linear(c as u8))),
            alaw: core::array::from_fn(|c| f32::from(g711::alaw_to_linear(c as u8))),
        }
    }

    /// Each code's sample value in `law`.
    fn g711(&self, law: Law) -> &[f32; 256] {
        match law {
            Law::Mu => &self.ulaw,
            Law::A => &self.alaw,
        }
    }

    /// The tables for `sample_rate` (16000 Hz, or 8000 Hz for any other rate: the session
    /// configuration admits only those two).
    fn at(&self, sample_rate: u32) -> &Analyser {
        if sample_rate == 16000 {
            &self.at_16k
        } else {
            &self.at_8k
        }
    }
}

impl Default for Tables {
    fn default() -> Self {
        Tables::new()
    }
}

/// A DTMF receiver for one audio stream. Create once per call; no allocation per frame.
pub struct Detector {
    tables: Arc<Tables>,
    sample_rate: u32,
    history: History,
    /// Samples of the half-block a push left incomplete.
    buf: Vec<i16>,
    /// As `buf`, for G.711 codes ([`Detector::push_codes`]).
    codes: Vec<u8>,
    /// Samples consumed.
    samples: u64,
    strict: Limits,
    permissive: Limits,
    digits: Debouncer,
    mask: Debouncer,
    out: VecDeque<Transition>,
    /// The two previous windows' measurements, oldest first, where they can serve as a
    /// reference for the steadiness tests (`None` for an onset: see [`Detector::reference`]).
    previous: [Option<window::Measure>; 2],
    /// The pair (row, column filter) of the previous window, if it measured one.
    last_pair: Option<(usize, usize)>,
    /// The previous window's twist (row over column fitted power), if it measured a pair.
    last_twist: f32,
    /// `permissive::MAX_TWIST_SWING_DB` as a ratio.
    twist_swing: f32,
    /// `permissive::ONSET_BALANCE_DB` as a ratio.
    onset_balance: f32,
    /// Normal and reverse twist (ratios) from which a strict hit is in the twist corner
    /// (`strict::CORNER_TWIST_DB` inside the configured limits).
    corner_twist: [f32; 2],
}

impl Detector {
    /// A detector for `sample_rate` (8000 or 16000 Hz; validated by the session config) whose
    /// masked spans feed a masker that delays the audio by `lookahead` samples: a span's onset
    /// is moved back no further than that delay still allows.
    #[must_use]
    pub fn new(sample_rate: u32, config: &DetectorConfig, lookahead: usize) -> Detector {
        Detector::with_tables(Arc::new(Tables::new()), sample_rate, config, lookahead)
    }

    /// As [`Detector::new`], with coefficient tables shared with other detectors.
    #[must_use]
    pub fn with_tables(
        tables: Arc<Tables>,
        sample_rate: u32,
        config: &DetectorConfig,
        lookahead: usize,
    ) -> Detector {
        let half = HALF_8K * (sample_rate as usize / 8000).max(1);
        let mask_edges = EdgeRule {
            max_before: mask_reach_back(lookahead, half),
            ..permissive::EDGES
        };
        // Always looser than the strict limit: at least 12 dB, else 2 dB past the configured one.
        let twist = |db: f32| db_to_ratio((db + 2.0).max(permissive::MIN_TWIST_DB));
        Detector {
            tables,
            sample_rate,
            history: History::new(half),
            buf: Vec::new(),
            codes: Vec::new(),
            samples: 0,
            strict: Limits {
                relative_peak: db_to_ratio(strict::RELATIVE_PEAK_DB),
                min_power: tones::power_of_dbm0(strict::MIN_LEVEL_DBM0),
                normal_twist: db_to_ratio(config.twist.normal_db + strict::TWIST_TOLERANCE_DB),
                reverse_twist: db_to_ratio(config.twist.reverse_db + strict::TWIST_TOLERANCE_DB),
                share: strict::ENERGY_SHARE,
                balance: Some(db_to_ratio(strict::BALANCE_DB)),
                max_deviation: strict::MAX_DEVIATION,
                plain_twist: false,
                plain_share_from: None,
                harmonic: None,
            },
            permissive: Limits {
                relative_peak: db_to_ratio(permissive::RELATIVE_PEAK_DB),
                min_power: tones::power_of_dbm0(permissive::MIN_LEVEL_DBM0),
                normal_twist: twist(config.twist.normal_db),
                reverse_twist: twist(config.twist.reverse_db),
                share: permissive::ENERGY_SHARE,
                balance: None,
                max_deviation: permissive::MAX_DEVIATION,
                plain_twist: true,
                plain_share_from: Some(permissive::PLAIN_SHARE_FROM_DEVIATION),
                // A tone and its own harmonic: only within the configured twist.
                harmonic: Some(window::HarmonicLimits {
                    near: permissive::HARMONIC_NEAR,
                    normal_twist: db_to_ratio(
                        config.twist.normal_db + permissive::HARMONIC_TWIST_MARGIN_DB,
                    ),
                    share: permissive::HARMONIC_SHARE,
                }),
            },
            digits: Debouncer::new(
                Track::Digits,
                strict::PRESENCE_WINDOWS,
                strict::ABSENCE_WINDOWS,
                strict::EDGES,
            )
            .with_weak_presence(strict::WEAK_PRESENCE_WINDOWS),
            mask: Debouncer::new(
                Track::Mask,
                permissive::PRESENCE_WINDOWS,
                permissive::ABSENCE_WINDOWS,
                mask_edges,
            ),
            // A frame of 20 ms queues at most a few (a span and a digit each begin or end).
            out: VecDeque::with_capacity(4),
            previous: [None; 2],
            last_pair: None,
            last_twist: 1.0,
            twist_swing: db_to_ratio(permissive::MAX_TWIST_SWING_DB),
            onset_balance: db_to_ratio(permissive::ONSET_BALANCE_DB),
            corner_twist: [
                db_to_ratio(config.twist.normal_db - strict::CORNER_TWIST_DB),
                db_to_ratio(config.twist.reverse_db - strict::CORNER_TWIST_DB),
            ],
        }
    }

    /// Feeds linear samples. Transitions are queued for [`Detector::poll`].
    pub fn push(&mut self, samples: &[i16]) {
        // Out of `self` while the blocks are analysed (which does not read it).
        let mut buf = core::mem::take(&mut self.buf);
        self.push_units(samples, &mut buf, f32::from);
        self.buf = buf;
    }

    /// Feeds G.711 codes of `law`: bit for bit [`Detector::push`] of the codes decoded, but
    /// without decoding them into samples first — the filters read each code's value from a
    /// table as they go (a pass over every sample and a buffer fewer: the RTP path of the
    /// bench hour 176 → 162 ms). A detector takes one kind of unit for its life (a session's
    /// codec is fixed); the half-block a push leaves incomplete waits in a buffer of that
    /// kind, made on first use.
    pub fn push_codes(&mut self, codes: &[u8], law: Law) {
        let tables = Arc::clone(&self.tables);
        let values = tables.g711(law);
        let mut buf = core::mem::take(&mut self.codes);
        self.push_units(codes, &mut buf, |c: u8| values[usize::from(c)]);
        self.codes = buf;
    }

    /// Feeds units whose sample values `value` gives; `buf` holds the half-block an earlier
    /// push began.
    fn push_units<U: Copy>(
        &mut self,
        input: &[U],
        buf: &mut Vec<U>,
        value: impl Fn(U) -> f32 + Copy,
    ) {
        let half = self.history.half();
        let mut rest = input;
        self.samples += input.len() as u64;
        // Complete the half-block an earlier push began (in its buffer, which holds one) and
        // filter it together with up to `MAX_BLOCKS - 1` whole ones after it, read where they
        // are (alone, it ran one filter chain at a time: with frames that are not whole
        // half-blocks, every frame).
        if !buf.is_empty() {
            let have = buf.len();
            if have + rest.len() < half {
                buf.extend_from_slice(rest);
                return;
            }
            let (head, tail) = rest.split_at(half - have);
            buf.extend_from_slice(head);
            let more = (tail.len() / half).min(MAX_BLOCKS - 1);
            let mut blocks = [&[][..]; MAX_BLOCKS];
            blocks[0] = &buf[..];
            for (b, whole) in blocks[1..]
                .iter_mut()
                .zip(tail.chunks_exact(half).take(more))
            {
                *b = whole;
            }
            self.filter_and_analyse(&blocks[..=more], value);
            rest = &tail[more * half..];
            buf.clear();
        }
        // Whole half-blocks straight from the input, up to `MAX_BLOCKS` filtered together.
        while rest.len() >= half {
            let n = (rest.len() / half).min(MAX_BLOCKS);
            let mut blocks = [&[][..]; MAX_BLOCKS];
            for (b, whole) in blocks.iter_mut().zip(rest.chunks_exact(half).take(n)) {
                *b = whole;
            }
            self.filter_and_analyse(&blocks[..n], value);
            rest = &rest[n * half..];
        }
        if !rest.is_empty() {
            // The buffer is made on first use, for the units this detector is fed: one
            // half-block, never grown.
            if buf.capacity() == 0 {
                buf.reserve_exact(half);
            }
            buf.extend_from_slice(rest);
        }
    }

    /// Whole half-blocks (at most [`MAX_BLOCKS`]) filtered together, each then analysed with
    /// its energy, in order.
    fn filter_and_analyse<U: Copy>(&mut self, blocks: &[&[U]], value: impl Fn(U) -> f32 + Copy) {
        let tables = Arc::clone(&self.tables);
        tables
            .at(self.sample_rate)
            .bank
            .run_blocks(blocks, value, |y, energy| self.analyse_half(y, energy));
    }

    /// Ends the stream: a digit or masked span still on ends at the last sample seen.
    pub fn finish(&mut self) {
        self.digits.finish(self.samples, &mut self.out);
        self.mask.finish(self.samples, &mut self.out);
    }

    /// The input has stopped for a while (the host says so): a digit still on is reported as
    /// ending at the last sample seen, and not again when the input resumes and its tone is
    /// found to end later. Masking is not affected: the masked span goes on while the tone does.
    pub fn cut(&mut self) {
        self.digits.cut(self.samples, &mut self.out);
    }

    /// The digit confirmed, still on and not yet reported (its end not seen, not cut), if any.
    #[must_use]
    pub fn digit_on(&self) -> Option<Digit> {
        self.digits.active()
    }

    /// Next queued transition, oldest first.
    pub fn poll(&mut self) -> Option<Transition> {
        self.out.pop_front()
    }

    /// Whether window `m` can serve as a reference for the steadiness tests: not an onset —
    /// its window before measured the same pair, and its halves differ by little. An onset
    /// window's frequency estimate reads off by up to ≈ 1 % (a 38 ms tone 3 % off, whose
    /// onset window read 2 %, went unmasked while spandsp decoded it).
    fn reference(&self, m: &window::Measure) -> bool {
        self.last_pair == Some((m.r, m.c)) && m.balance <= self.onset_balance
    }

    /// Whether window `m` sits where the twist and frequency clauses meet: weak evidence for a
    /// digit (see `strict::CORNER_TWIST_DB`).
    fn in_corner(&self, m: &window::Measure) -> bool {
        let [pr, pc] = m.power;
        let twisted = if pc < pr {
            pr >= pc * self.corner_twist[0]
        } else {
            pc >= pr * self.corner_twist[1]
        };
        twisted && m.deviation > strict::CORNER_DEVIATION
    }

    /// One half-block, filtered (`y`) and its energy summed: its window measured (with the
    /// half before it) and both tracks stepped.
    fn analyse_half(&mut self, y: [Complex; 8], energy: f32) {
        let analyser = self.tables.at(self.sample_rate);
        let b = Half { y, energy };
        // The window of the half-block before and this one (measured in place, before this
        // one replaces it as the latest); the first half-block has none.
        let Some(m) = self
            .history
            .latest()
            .map(|a| analyser.measure(a, &b, &self.permissive))
        else {
            self.history.push(b);
            return;
        };
        let index = self.history.push(b);
        let Some(measured) = m else {
            // Most windows: nothing DTMF-like, no verdict on either track, no reference for
            // the next (the same as the general case below with nothing measured, without
            // moving the measurements around).
            self.previous[0] = self.previous[1].take();
            self.last_pair = None;
            self.last_twist = 1.0;
            self.digits
                .step(None, false, index, &self.history, &mut self.out);
            self.mask
                .step(None, false, index, &self.history, &mut self.out);
            return;
        };
        let m = Some(measured);
        let strict = m.and_then(|m| m.digit(&self.strict));
        let previous = self.previous;
        self.previous = [self.previous[1], m.filter(|m| self.reference(m))];
        // The pair's level ratio held since the window before (same pair), or there was none.
        let twist = m.map_or(1.0, |m| {
            m.power[0] / window::larger(m.power[1], f32::MIN_POSITIVE)
        });
        let twist_held = m.is_some_and(|m| {
            self.last_pair != Some((m.r, m.c))
                || (twist <= self.last_twist * self.twist_swing
                    && self.last_twist <= twist * self.twist_swing)
        });
        self.last_pair = m.map(|m| (m.r, m.c));
        self.last_twist = twist;
        // Steady: moved little since each earlier reference window (of the same pair).
        let steady = |m: &window::Measure, back: &[Option<window::Measure>], drift: f32| {
            back.iter().flatten().all(|p| m.steady_since(p, drift))
        };
        // A digit's confirming windows hold their frequencies (its first window may straddle
        // the onset, so it is not compared).
        // Each tone's frequency, averaged with the window before (same pair), holds the
        // tighter limit.
        let mean_ok = |m: &window::Measure| {
            previous[1]
                .filter(|p| (p.r, p.c) == (m.r, m.c))
                .is_none_or(|p| {
                    (0..2).all(|i| {
                        libm::fabsf(p.offset[i] + m.offset[i]) / 2.0 <= strict::MAX_MEAN_DEVIATION
                    })
                })
        };
        let reported = strict
            .filter(|_| m.is_some_and(|m| mean_ok(&m)))
            .filter(|&d| {
                self.digits.rising() != Some(d)
                    || m.is_some_and(|m| steady(&m, &previous[1..], strict::MAX_DRIFT))
            });
        // Masked: what tonemask reports, and what a looser receiver would (see `permissive`).
        let loose = strict.or_else(|| {
            let m = m?;
            let d = m.digit(&self.permissive)?;
            // Steadiness decides where a masked span may start; once it is on, the pair
            // holds it on the permissive limits alone (a packet lost or a glitch mid-tone
            // must not open a gap a receiver could decode across).
            (self.mask.active() == Some(d)
                || (twist_held && steady(&m, &previous, permissive::MAX_DRIFT)))
            .then_some(d)
        });
        // Digits first: a digit's end is queued before the masked span around it closes.
        let weak = m.is_some_and(|m| self.in_corner(&m));
        self.digits
            .step(reported, weak, index, &self.history, &mut self.out);
        self.mask
            .step(loose, false, index, &self.history, &mut self.out);
    }
}

/// Convenience for tests and tools: all transitions for a whole buffer, masked spans as for
/// the default look-ahead.
#[must_use]
pub fn detect_all(sample_rate: u32, config: &DetectorConfig, samples: &[i16]) -> Vec<Transition> {
    let lookahead = crate::Lookahead::DEFAULT.samples(sample_rate);
    let mut d = Detector::new(sample_rate, config, lookahead);
    d.push(samples);
    d.finish();
    core::iter::from_fn(|| d.poll()).collect()
}
