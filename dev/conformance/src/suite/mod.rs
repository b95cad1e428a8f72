//! The suite, numbered like the receiver test programs (spandsp's `dtmf_rx_tests`, the Mitel
//! and Bellcore tapes): decode check, recognition bandwidth, twist, dynamic range, guard time,
//! noise, dial tone, talk-off — each through every channel — and masking quality.

use crate::receivers::{score, Found, Receiver, Score, Spandsp, Tonemask, TwistDb};
use crate::signal::{pair_power, Burst, Channel, Signal};
use anyhow::Result;
use serde::Serialize;
use tonemask_core::Twist;

/// The 16 symbols in keypad order.
pub const ALL16: &str = "123A456B789C*0#D";
/// Default twist limits.
pub const ATT: TwistDb = (8.0, 4.0);
/// The administrations' twist presets, by name.
pub const TWIST_PRESETS: [(&str, Twist); 5] = [
    ("Q.24 AT&T", Twist::ATT),
    ("ETSI", Twist::ETSI),
    ("NTT", Twist::NTT),
    ("Australia", Twist::AUSTRALIA),
    ("Brazil", Twist::BRAZIL),
];

/// One line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Test number and name.
    pub section: String,
    /// What is measured.
    pub measure: String,
    /// spandsp's result ("n/a" where it cannot take the channel).
    pub spandsp: String,
    /// tonemask's result.
    pub tonemask: String,
    /// What tonemask must reach.
    pub goal: String,
    /// Whether tonemask reached it.
    pub pass: bool,
}

/// Suite settings.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Fewer repetitions and coarser sweeps (for tests).
    pub quick: bool,
    /// Detect with the native core instead of the plugin (masking still uses the plugin).
    pub native: bool,
}

/// Both receivers and the report being built.
pub struct Suite {
    tm: Tonemask,
    sp: Spandsp,
    settings: Settings,
    /// Rows so far.
    pub rows: Vec<Row>,
    /// Masking measurements so far.
    pub masking: Masking,
    /// Set while running noise cases below 6 dB S/N.
    deep_noise: bool,
}

/// Masking quality, accumulated over every masked case.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Masking {
    /// Cases masked.
    pub cases: usize,
    /// Tones in them.
    pub tones: usize,
    /// Digits spandsp found in the masked output (8 kHz channels).
    pub spandsp_recovered: usize,
    /// Digits tonemask found in the masked output.
    pub tonemask_recovered: usize,
    /// Longest run of tone samples left unchanged inside any tone that spandsp or tonemask
    /// recognised in the original, ms (all cases but noise below 6 dB S/N).
    pub longest_residual_ms: f32,
    /// The same for noise cases below 6 dB S/N, where tones fade in and out of the noise.
    pub longest_residual_deep_noise_ms: f32,
    /// Samples outside the tones.
    pub outside: u64,
    /// Of those, samples the masker changed.
    pub outside_altered: u64,
}

fn fmt_pct(s: &Score) -> String {
    format!("{:.1} % ({} extra)", s.percent(), s.extra)
}

mod detection;
mod harmonic;
mod masking;
mod off_frequency;
mod off_spec;
mod talkoff;

impl Suite {
    /// A suite over the plugin.
    #[must_use]
    pub fn new(tm: Tonemask, settings: Settings) -> Suite {
        Suite {
            tm,
            sp: Spandsp::default(),
            settings,
            rows: Vec::new(),
            masking: Masking::default(),
            deep_noise: false,
        }
    }
    pub(super) fn reps(&self, full: usize, quick: usize) -> usize {
        if self.settings.quick {
            quick
        } else {
            full
        }
    }
    /// Scores both receivers on a signal (spandsp's is `None` where it cannot take the
    /// channel), and masks it with tonemask's defaults for the masking measurements.
    pub(super) fn run(
        &mut self,
        ch: Channel,
        sig: &Signal,
        twist: TwistDb,
    ) -> Result<(Option<Score>, Score)> {
        let pcm = sig.pcm();
        let sp = if self.sp.supports(ch) {
            Some(score(
                &sig.truth,
                &self.sp.detect(ch, &pcm, twist)?,
                sig.rate,
            ))
        } else {
            None
        };
        let found = if self.settings.native {
            crate::receivers::TonemaskNative.detect(ch, &pcm, twist)?
        } else {
            self.tm.detect(ch, &pcm, twist)?
        };
        let tm = score(&sig.truth, &found, sig.rate);
        let mut recognised = vec![false; sig.truth.len()];
        for &i in sp.iter().flat_map(|s| &s.matched).chain(&tm.matched) {
            recognised[i] = true;
        }
        self.mask(ch, sig, &recognised)?;
        Ok((sp, tm))
    }
    /// Masks a signal with tonemask's defaults and measures what is left.
    pub(super) fn mask(&mut self, ch: Channel, sig: &Signal, recognised: &[bool]) -> Result<()> {
        let input = crate::signal::through(ch, &sig.pcm()).1;
        let masked = self.tm.mask(ch, &sig.pcm())?;
        let m = &mut self.masking;
        m.cases += 1;
        m.tones += sig.truth.len();
        if ch.rate() == 8000 {
            let hits = spandsp_ref::detect(&masked, spandsp_ref::Params::default());
            for h in &hits {
                eprintln!("RECOVERED {} {} at {}", ch.name(), h.digit, h.reported_at);
            }
            m.spandsp_recovered += hits.len();
        }
        let plain = if ch.rate() == 16000 {
            Channel::Pcm16k
        } else {
            Channel::Pcm8
        };
        let again: Vec<Found> = self.tm.detect(plain, &masked, ATT)?;
        self.masking.tonemask_recovered += again.len();
        let m = &mut self.masking;
        let mut inside = vec![false; input.len()];
        for (t, &recognised) in sig.truth.iter().zip(recognised) {
            let mut run = 0usize;
            for i in t.start..t.end.min(input.len()) {
                inside[i] = true;
                // A sample carries tone if it is above the codec's idle values (A-law silence is
                // ±8). Fragments count for tones some receiver recognised in the original.
                if recognised && input[i].unsigned_abs() > 64 && masked[i] == input[i] {
                    run += 1;
                    if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
                        eprintln!(
                            "  residual: {} digit {} tone {}..{} sample {i} run {run}",
                            ch.name(),
                            t.digit,
                            t.start,
                            t.end
                        );
                    }
                    let ms = run as f32 * 1000.0 / sig.rate as f32;
                    let slot = if self.deep_noise {
                        &mut m.longest_residual_deep_noise_ms
                    } else {
                        &mut m.longest_residual_ms
                    };
                    *slot = slot.max(ms);
                } else {
                    run = 0;
                }
            }
        }
        for ((a, b), inside) in input.iter().zip(&masked).zip(&inside) {
            if !inside {
                m.outside += 1;
                m.outside_altered += u64::from(a != b);
            }
        }
        Ok(())
    }
    pub(super) fn push(
        &mut self,
        section: &str,
        measure: String,
        sp: String,
        tm: String,
        goal: &str,
        pass: bool,
    ) {
        self.rows.push(Row {
            section: section.into(),
            measure,
            spandsp: sp,
            tonemask: tm,
            goal: goal.into(),
            pass,
        });
    }
}

/// Where a receiver operates in a deviation sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    /// Lowest deviation (%) from which up to 0 every burst is detected.
    pub operate_lo: f32,
    /// Highest deviation (%) up to which from 0 every burst is detected.
    pub operate_hi: f32,
    /// Lowest deviation with any response.
    pub any_lo: f32,
    /// Highest deviation with any response.
    pub any_hi: f32,
}

impl Window {
    fn of<T>(sweep: &[(f32, T, Score)], pick: impl Fn(&(f32, T, Score)) -> Score) -> Window
    where
        T: Clone,
    {
        let zero = sweep.iter().position(|x| x.0.abs() < 1e-4).unwrap_or(0);
        let full = |i: usize| pick(&sweep[i]).all();
        let mut lo = zero;
        while lo > 0 && full(lo - 1) {
            lo -= 1;
        }
        let mut hi = zero;
        while hi + 1 < sweep.len() && full(hi + 1) {
            hi += 1;
        }
        let any: Vec<f32> = sweep
            .iter()
            .filter(|x| !pick(x).none())
            .map(|x| x.0)
            .collect();
        Window {
            operate_lo: sweep[lo].0,
            operate_hi: sweep[hi].0,
            any_lo: any.iter().copied().fold(0.0, f32::min),
            any_hi: any.iter().copied().fold(0.0, f32::max),
        }
    }

    fn worse(self, o: Window) -> Window {
        Window {
            operate_lo: self.operate_lo.max(o.operate_lo),
            operate_hi: self.operate_hi.min(o.operate_hi),
            any_lo: self.any_lo.min(o.any_lo),
            any_hi: self.any_hi.max(o.any_hi),
        }
    }

    fn meets(&self) -> bool {
        self.operate_lo <= -1.5 && self.operate_hi >= 1.5 && self.any_lo > -3.5 && self.any_hi < 3.5
    }

    fn text(&self) -> String {
        format!(
            "{:+.1}…{:+.1} / {:+.1}…{:+.1}",
            self.operate_lo, self.operate_hi, self.any_lo, self.any_hi
        )
    }
}

fn median(v: &[f32]) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    s[s.len() / 2]
}
