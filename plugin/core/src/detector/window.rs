//! Measuring one analysis window (two half-blocks) and testing it against a set of limits.

use super::fit::PairFit;
use super::goertzel::{Bank, Complex, FREQS};
use super::history::Half;
use crate::digit::Digit;

/// Acceptance limits for a window, as linear ratios.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Each tone's energy over every other tone of its group, at least.
    pub relative_peak: f32,
    /// Power of each tone, at least (16-bit units²).
    pub min_power: f32,
    /// Row over column power, at most (normal twist).
    pub normal_twist: f32,
    /// Column over row power, at most (reverse twist).
    pub reverse_twist: f32,
    /// Pair power over window power, at least.
    pub share: f32,
    /// A tone's energy ratio between the two half-blocks, at most (`None`: not tested).
    pub balance: Option<f32>,
    /// |deviation| / nominal frequency of each tone, at most.
    pub max_deviation: f32,
    /// Also accept a pair whose twist is within the limits on the plain bins alone (as spandsp
    /// and Asterisk measure it: a tone off its bin centre loses energy there, so a pair with
    /// its row tone 4 % off shows them up to ≈ 3.5 dB less twist than it has).
    pub plain_twist: bool,
    /// Also accept the share on the plain bins (as spandsp and Asterisk measure it) when a tone
    /// is at least this far off nominal (fraction; `None`: never). The pair fit at the nominal
    /// frequencies reads far-off tones low: a 908 Hz row tone (941 Hz − 3.5 %) fits at a
    /// 70–73 % share where spandsp's own bins see over 82 %.
    pub plain_share_from: Option<f32>,
    /// For a pair that is two harmonics of one tone (`harmonic` below `near`), the largest
    /// normal twist and the smallest share instead of `normal_twist` and `share` (`None`: no
    /// such rule).
    pub harmonic: Option<HarmonicLimits>,
}

/// Limits for a pair that looks like two consecutive harmonics of one voice or whistle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HarmonicLimits {
    /// `Measure::harmonic` below this makes the pair harmonic.
    pub near: f32,
    /// Row over column power, at most.
    pub normal_twist: f32,
    /// Pair power over window power, at least.
    pub share: f32,
}

/// What a window holds, measured once and tested against any number of [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measure {
    /// Strongest row (0..4) and column (4..8) filter.
    pub r: usize,
    /// Strongest column filter (4..8).
    pub c: usize,
    /// The smaller of the two groups' best-to-runner-up energy ratios.
    pub relative_peak: f32,
    /// Fitted powers of the row and column tone.
    pub power: [f32; 2],
    /// Pair power over window power.
    pub share: f32,
    /// Largest half-to-half energy ratio of either tone (≥ 1).
    pub balance: f32,
    /// Largest |deviation| / nominal of either tone.
    pub deviation: f32,
    /// Signed deviation / nominal of the row and the column tone.
    pub offset: [f32; 2],
    /// Row and column tone powers from their plain bins alone.
    pub plain_power: [f32; 2],
    /// Pair power from the plain bins over window power (as spandsp and Asterisk measure it).
    pub plain_share: f32,
    /// How far the measured f_column / f_row is from 2/1, 3/2 or 4/3 (fraction): near 0 when
    /// the pair is two consecutive harmonics of one voice or whistle rather than two tones.
    pub harmonic: f32,
}

impl Measure {
    /// Whether this window's tones moved by at most `max_drift` (fraction of nominal) since
    /// `previous`; a window of another pair does not count against it.
    #[must_use]
    pub fn steady_since(&self, previous: &Measure, max_drift: f32) -> bool {
        previous.r != self.r
            || previous.c != self.c
            || (0..2).all(|i| libm::fabsf(previous.offset[i] - self.offset[i]) <= max_drift)
    }

    /// The digit, if the window passes `l`. Tests run in Q.24's order: relative peak, level,
    /// twist, energy share, balance, frequency.
    #[must_use]
    pub fn digit(&self, l: &Limits) -> Option<Digit> {
        let [pr, pc] = self.power;
        let (normal_twist, share) = match l.harmonic {
            Some(h) if self.harmonic < h.near => (h.normal_twist, h.share),
            _ => (l.normal_twist, l.share),
        };
        let twist_ok = |[pr, pc]: [f32; 2]| {
            if pc < pr {
                pr <= pc * normal_twist
            } else {
                pc <= pr * l.reverse_twist
            }
        };
        let ok = self.relative_peak >= l.relative_peak
            && pr >= l.min_power
            && pc >= l.min_power
            && (twist_ok(self.power) || (l.plain_twist && twist_ok(self.plain_power)))
            && (self.share >= share
                || l.plain_share_from
                    .is_some_and(|d| self.deviation >= d && self.plain_share >= share))
            && l.balance.is_none_or(|b| self.balance <= b)
            && self.deviation <= l.max_deviation;
        ok.then(|| Digit::from_indices(self.r, self.c - 4))
    }
}

/// Per-rate coefficients for measuring windows (shared by nothing per call but the rate).
pub struct Analyser {
    /// Goertzel coefficients.
    pub bank: Bank,
    fit_half: PairFit,
    fit_full: PairFit,
    /// `e^{−jω(H−1)}` per filter: turns a Goertzel output into the start-referenced DFT.
    unref: [Complex; 8],
    half: usize,
}

impl Analyser {
    /// Coefficients for `sample_rate` and half-blocks of `half` samples.
    #[must_use]
    pub fn new(sample_rate: u32, half: usize) -> Analyser {
        let mut unref = [Complex::default(); 8];
        for (k, u) in unref.iter_mut().enumerate() {
            *u = unreference(sample_rate, half, k, crate::sincos::sin_cos_f32);
        }
        Analyser {
            bank: Bank::new(sample_rate, half),
            fit_half: PairFit::new(sample_rate, half),
            fit_full: PairFit::new(sample_rate, 2 * half),
            unref,
            half,
        }
    }

    /// Measures the window of half-blocks `a` then `b`. Returns `None` early when either
    /// tone's plain bin is below `loosest.min_power` (most windows of silence and speech end
    /// there, before the fits) or the relative peak is below `loosest.relative_peak` (the
    /// loosest limits in use). A test of the plain bins' relative peak before the fit, 6 dB
    /// below the loosest limit, was dropped: no window can fail it (the best bin is never
    /// below its rivals, and the loosest limit is 6 dB), and the bench hour's 234,269
    /// windows that reached it all passed.
    #[must_use]
    pub fn measure(&self, a: &Half, b: &Half, loosest: &Limits) -> Option<Measure> {
        let n = (2 * self.half) as f32;
        let floor = loosest.min_power * n * n / 4.0;
        // No bin of an N-sample window holds more than N·Σx² (Cauchy–Schwarz): a window too
        // quiet for any tone to reach the floor ends here, before the bins are formed (0.1 %
        // margin for rounding; the test below would refuse it too).
        if n * (a.energy + b.energy) * 1.001 < floor {
            return None;
        }
        let mut full = [Complex::default(); 8];
        let mut energy = [0.0f32; 8];
        for k in 0..8 {
            full[k] = (a.y[k] + b.y[k] * self.bank.shift[k]) * self.unref[k];
            energy[k] = full[k].norm_sqr();
        }
        let r = argmax(&energy[..4]);
        let c = 4 + argmax(&energy[4..]);
        // A tone of power P has |X|² ≈ P·N²/2 in its bin; half of that leaves room for
        // tones off the bin centre and for the fit.
        if energy[r] < floor || energy[c] < floor {
            return None;
        }
        let window_power = larger((a.energy + b.energy) / n, f32::MIN_POSITIVE);
        // A tone of power P has |X|² = P·N²/2 in its own bin.
        let plain_power = [2.0 * energy[r] / (n * n), 2.0 * energy[c] / (n * n)];
        // Levels from the least-squares fit of the pair (leakage and images removed).
        let [ar, ac] = self.fit_full.solve(r, c - 4, full[r], full[c]);
        let power = [2.0 * ar.norm_sqr(), 2.0 * ac.norm_sqr()];
        let share = (power[0] + power[1]) / window_power;
        // Relative peak with the *other* group's tone taken out of each bin: a strong row tone
        // leaks into the column bins (941 Hz into 1209 Hz at −20 dB), which with 10 dB of twist
        // is as loud as the weak column tone's rivals should be allowed to get.
        // The smallest ratio is the best over the largest rival: one division per group
        // (correctly rounded division is monotonic in the divisor, so bit for bit the same).
        let mut relative_peak = f32::INFINITY;
        for (group, best, other, alpha) in [(0..4, r, c, ac), (4..8, c, r, ar)] {
            let mut rival = f32::MIN_POSITIVE;
            for k in group.filter(|&k| k != best) {
                let rest = (full[k] - self.fit_full.leak(other, k, alpha)).norm_sqr();
                rival = larger(rest, rival);
            }
            relative_peak = smaller(relative_peak, energy[best] / rival);
        }
        if relative_peak < loosest.relative_peak {
            return None;
        }
        // Each half fitted alone: balance, and frequency from the phase advance between them.
        let fa = self
            .fit_half
            .solve(r, c - 4, a.y[r] * self.unref[r], a.y[c] * self.unref[c]);
        let fb = self
            .fit_half
            .solve(r, c - 4, b.y[r] * self.unref[r], b.y[c] * self.unref[c]);
        let (mut balance, mut deviation) = (1.0f32, 0.0f32);
        let mut hz = [0.0f32; 2];
        let mut offset = [0.0f32; 2];
        for (i, k) in [r, c].into_iter().enumerate() {
            let (ea, eb) = (fa[i].norm_sqr(), fb[i].norm_sqr());
            balance = larger(
                balance,
                larger(ea, eb) / larger(smaller(ea, eb), f32::MIN_POSITIVE),
            );
            let df = (fb[i].mul_conj(fa[i]) * self.bank.shift[k]).arg() * self.bank.hz_per_radian;
            deviation = larger(deviation, libm::fabsf(df) / FREQS[k]);
            offset[i] = df / FREQS[k];
            hz[i] = FREQS[k] + df;
        }
        let harmonic = harmonic_distance(hz);
        Some(Measure {
            r,
            c,
            relative_peak,
            power,
            share,
            balance,
            deviation,
            offset,
            plain_power,
            plain_share: (plain_power[0] + plain_power[1]) / window_power,
            harmonic,
        })
    }
}

/// `e^{−jω(H−1)}` for filter `k` at `sample_rate` and half-blocks of `half` samples.
fn unreference(
    sample_rate: u32,
    half: usize,
    k: usize,
    sin_cos: crate::sincos::SinCos32,
) -> Complex {
    let a = 2.0 * core::f32::consts::PI * FREQS[k] / sample_rate as f32 * (half - 1) as f32;
    let (sin, cos) = sin_cos(a);
    Complex { re: cos, im: -sin }
}

/// How far the pair at `hz` (row, column) is from two consecutive harmonics of one voice: the
/// ratio 2/1, 3/2 or 4/3 (fraction). DTMF pairs keep ≥ 3.6 % from all three (941/1209 Hz:
/// 1.285).
fn harmonic_distance(hz: [f32; 2]) -> f32 {
    (1..=3)
        .map(|k| {
            let k = k as f32;
            libm::fabsf(hz[1] * k - hz[0] * (k + 1.0)) / (hz[1] * k)
        })
        .fold(f32::INFINITY, smaller)
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

/// The larger of two numbers that are not NaN. `f32::max` is a libm call in wasm (its NaN
/// rule is not the instruction's): this compiles to a compare and select.
#[inline]
pub(super) fn larger(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// The smaller of two numbers that are not NaN (see [`larger`]).
#[inline]
pub(super) fn smaller(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The phase references for both rates are bit for bit those made with libm's `sinf`
    /// and `cosf`.
    #[test]
    fn the_references_are_the_same_bits_as_with_libms_sine_and_cosine() {
        for (rate, half) in [(8000, 51), (16000, 102)] {
            let ours = Analyser::new(rate, half).unref;
            for (k, u) in ours.iter().enumerate() {
                let libm = unreference(rate, half, k, crate::sincos::libm_sin_cos_f32);
                assert_eq!(
                    (u.re.to_bits(), u.im.to_bits()),
                    (libm.re.to_bits(), libm.im.to_bits()),
                    "{rate} Hz, filter {k}"
                );
            }
        }
    }

    /// The relative peak's rule in `Analyser::measure`: the best over the largest rival.
    fn ratio_to_largest(best: f32, rivals: &[f32]) -> f32 {
        let mut rival = f32::MIN_POSITIVE;
        for &r in rivals {
            rival = larger(r, rival);
        }
        best / rival
    }

    /// The ratio as first written: each rival divided into the best, the smallest kept.
    fn ratio_per_rival(best: f32, rivals: &[f32]) -> f32 {
        rivals.iter().fold(f32::INFINITY, |peak, &r| {
            smaller(peak, best / larger(r, f32::MIN_POSITIVE))
        })
    }

    #[test]
    fn one_division_gives_the_smallest_ratio_bit_for_bit() {
        let mut x: u32 = 0x9E37_79B9;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..200_000 {
            // Energies from zero and subnormal to a full-scale tone's, rivals often equal.
            let mut energy = || match next() % 8 {
                0 => 0.0,
                1 => f32::MIN_POSITIVE / 4.0,
                2 => 1e6,
                _ => f32::from_bits(next() % 0x5600_0000),
            };
            let rivals: [f32; 3] = core::array::from_fn(|_| energy());
            let best = larger(energy(), rivals.into_iter().fold(0.0, larger));
            let (got, want) = (
                ratio_to_largest(best, &rivals),
                ratio_per_rival(best, &rivals),
            );
            assert_eq!(got.to_bits(), want.to_bits(), "{best} {rivals:?}");
        }
    }
}
