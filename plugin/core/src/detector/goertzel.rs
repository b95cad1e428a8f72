//! Complex Goertzel filters for the eight DTMF frequencies over one half-block.
//!
//! Coefficients are computed once per sample rate ([`Bank`]) and shared; the filter state
//! lives only for the duration of one [`Bank::run`] call, so a detector carries no per-filter
//! state between half-blocks — just the complex results.

use super::tones::{COL_HZ, ROW_HZ};
use core::f32::consts::PI;

/// A complex number, just enough arithmetic for the detector.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Complex {
    /// Real part.
    pub re: f32,
    /// Imaginary part.
    pub im: f32,
}

impl Complex {
    /// Squared magnitude.
    #[must_use]
    pub fn norm_sqr(self) -> f32 {
        self.re * self.re + self.im * self.im
    }

    /// `self · conj(other)`.
    #[must_use]
    pub fn mul_conj(self, o: Complex) -> Complex {
        Complex {
            re: self.re * o.re + self.im * o.im,
            im: self.im * o.re - self.re * o.im,
        }
    }

    /// The argument in radians, in (−π, π].
    #[must_use]
    pub fn arg(self) -> f32 {
        libm::atan2f(self.im, self.re)
    }
}

impl core::ops::Mul for Complex {
    type Output = Complex;

    fn mul(self, o: Complex) -> Complex {
        Complex {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
}

impl core::ops::Sub for Complex {
    type Output = Complex;

    fn sub(self, o: Complex) -> Complex {
        Complex {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }
}

impl core::ops::Add for Complex {
    type Output = Complex;

    fn add(self, o: Complex) -> Complex {
        Complex {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
}

/// The eight DTMF frequencies in filter order: rows 0..4, then columns 4..8.
pub const FREQS: [f32; 8] = [
    ROW_HZ[0], ROW_HZ[1], ROW_HZ[2], ROW_HZ[3], COL_HZ[0], COL_HZ[1], COL_HZ[2], COL_HZ[3],
];

/// Per-rate coefficients for the eight filters.
#[derive(Clone, Debug)]
pub struct Bank {
    /// `2·cos(ω)` per filter (the Goertzel feedback coefficient).
    two_cos: [f32; 8],
    /// `e^{−jω}` per filter, to form the complex output.
    rot1: [Complex; 8],
    /// `e^{−jωH}` per filter: shifts a half-block result by one half-block (H samples).
    pub shift: [Complex; 8],
    /// Hz of frequency offset per radian of phase advance over a half-block.
    pub hz_per_radian: f32,
}

impl Bank {
    /// Coefficients for `sample_rate` Hz and half-blocks of `half` samples.
    #[must_use]
    pub fn new(sample_rate: u32, half: usize) -> Bank {
        let mut two_cos = [0.0; 8];
        let mut rot1 = [Complex::default(); 8];
        let mut shift = [Complex::default(); 8];
        for (k, f) in FREQS.iter().enumerate() {
            let w = 2.0 * PI * f / sample_rate as f32;
            two_cos[k] = 2.0 * libm::cosf(w);
            rot1[k] = Complex {
                re: libm::cosf(w),
                im: -libm::sinf(w),
            };
            let wh = w * half as f32;
            shift[k] = Complex {
                re: libm::cosf(wh),
                im: -libm::sinf(wh),
            };
        }
        Bank {
            two_cos,
            rot1,
            shift,
            hz_per_radian: sample_rate as f32 / (2.0 * PI * half as f32),
        }
    }

    /// Runs the eight filters over `x` and returns their complex outputs.
    ///
    /// Output `k` equals `e^{jω(N−1)} · Σ x[n]·e^{−jωn}`: the DFT at the filter's exact frequency,
    /// referenced to the block start, times a phase that is the same for every block of the
    /// same length — so ratios and sums of equal-length blocks need no correction for it.
    #[must_use]
    pub fn run(&self, x: &[i16]) -> [Complex; 8] {
        let mut out = [[Complex::default(); 8]; MAX_BLOCKS];
        self.run_blocks(x, x.len(), &mut out);
        out[0]
    }

    /// [`Bank::run`] over each block of `len` samples in `x` (at most [`MAX_BLOCKS`]), into
    /// `out` in order: bit for bit the same results, the blocks' recurrences interleaved.
    /// Each filter's recurrence is a chain of dependent operations (a multiply, an add and a
    /// subtract per sample) that leaves most of the processor idle; independent blocks side by
    /// side fill it.
    ///
    /// # Panics
    ///
    /// If `x` is not a whole number of blocks, or holds more than [`MAX_BLOCKS`].
    pub fn run_blocks(&self, x: &[i16], len: usize, out: &mut [[Complex; 8]; MAX_BLOCKS]) {
        let n = x.len().checked_div(len).unwrap_or(0);
        assert!(n * len == x.len() && n <= MAX_BLOCKS, "not whole blocks");
        let mut s1 = [[0.0f32; 8]; MAX_BLOCKS];
        let mut s2 = [[0.0f32; 8]; MAX_BLOCKS];
        for i in 0..len {
            for b in 0..n {
                let v = f32::from(x[b * len + i]);
                let (s1, s2) = (&mut s1[b], &mut s2[b]);
                for k in 0..8 {
                    let s0 = v + self.two_cos[k] * s1[k] - s2[k];
                    s2[k] = s1[k];
                    s1[k] = s0;
                }
            }
        }
        for b in 0..n {
            for k in 0..8 {
                // y = s[N−1] − e^{−jω}·s[N−2]
                out[b][k] = Complex {
                    re: s1[b][k] - self.rot1[k].re * s2[b][k],
                    im: -self.rot1[k].im * s2[b][k],
                };
            }
        }
    }
}

/// Blocks [`Bank::run_blocks`] takes at once: four keep a core's vector units busy.
pub const MAX_BLOCKS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f: f32, n: usize, rate: f32, amp: f32) -> alloc::vec::Vec<i16> {
        (0..n)
            .map(|i| (amp * libm::sinf(2.0 * PI * f * i as f32 / rate)) as i16)
            .collect()
    }

    #[test]
    fn a_tone_on_a_filter_frequency_gives_amplitude_times_half_length() {
        let bank = Bank::new(8000, 51);
        let y = bank.run(&tone(770.0, 51, 8000.0, 1000.0));
        let mag = libm::sqrtf(y[1].norm_sqr());
        assert!(
            (mag - 1000.0 * 51.0 / 2.0).abs() < 0.05 * 1000.0 * 51.0 / 2.0,
            "{mag}"
        );
        assert!(y[0].norm_sqr() < y[1].norm_sqr() / 2.0);
    }

    #[test]
    fn blocks_run_together_give_exactly_what_each_gives_alone() {
        let bank = Bank::new(8000, 51);
        let x = tone(941.0, 204, 8000.0, 3000.0);
        let y: alloc::vec::Vec<i16> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + (i % 7) as i16)
            .collect();
        let mut together = [[Complex::default(); 8]; MAX_BLOCKS];
        for n in 1..=MAX_BLOCKS {
            bank.run_blocks(&y[..51 * n], 51, &mut together);
            for (b, got) in together.iter().enumerate().take(n) {
                assert_eq!(*got, bank.run(&y[51 * b..51 * (b + 1)]), "block {b} of {n}");
            }
        }
        bank.run_blocks(&x, 51, &mut together);
        assert_eq!(together[3], bank.run(&x[153..]));
    }

    #[test]
    fn phase_advance_between_halves_measures_frequency_offset() {
        let bank = Bank::new(8000, 51);
        let f = 697.0 * 1.02;
        let x = tone(f, 102, 8000.0, 1000.0);
        let a = bank.run(&x[..51]);
        let b = bank.run(&x[51..]);
        let z = b[0].mul_conj(a[0]) * bank.shift[0];
        let df = z.arg() * bank.hz_per_radian;
        assert!((df - 697.0 * 0.02).abs() < 2.0, "measured {df} Hz");
    }
}
