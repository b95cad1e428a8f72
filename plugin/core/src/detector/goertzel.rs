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
        Bank::with(sample_rate, half, crate::sincos::sin_cos_f32)
    }

    /// [`Bank::new`] with sine and cosine from `sin_cos`.
    fn with(sample_rate: u32, half: usize, sin_cos: crate::sincos::SinCos32) -> Bank {
        let mut two_cos = [0.0; 8];
        let mut rot1 = [Complex::default(); 8];
        let mut shift = [Complex::default(); 8];
        for (k, f) in FREQS.iter().enumerate() {
            let w = 2.0 * PI * f / sample_rate as f32;
            let (sin, cos) = sin_cos(w);
            two_cos[k] = 2.0 * cos;
            rot1[k] = Complex { re: cos, im: -sin };
            let (sin, cos) = sin_cos(w * half as f32);
            shift[k] = Complex { re: cos, im: -sin };
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
        let ([y], _) = self.run_n([x], f32::from);
        y
    }

    /// [`Bank::run`] over each of `blocks` (equally long, at most [`MAX_BLOCKS`]) of units
    /// whose sample values `value` gives (linear samples, or G.711 codes read through a
    /// table: the filters take each code's value as they go, no decoded copy), handing
    /// `each` the block's complex outputs and its energy (Σ x², summed in order), block by
    /// block in order: bit for bit the same results, the blocks' recurrences interleaved. The
    /// blocks need not lie side by side (a half-block completed from a buffer goes with whole
    /// ones from the input). Each filter's recurrence is a chain of dependent operations (a
    /// multiply, an add and a subtract per sample) that leaves most of the processor idle;
    /// independent blocks side by side fill it. The results go to `each` as they are
    /// computed, not into an array for the caller: in wasm an array that size is zeroed and
    /// moved by calls into the runtime.
    ///
    /// # Panics
    ///
    /// If the blocks differ in length, or there are more than [`MAX_BLOCKS`].
    pub fn run_blocks<U: Copy>(
        &self,
        blocks: &[&[U]],
        value: impl Fn(U) -> f32 + Copy,
        mut each: impl FnMut([Complex; 8], f32),
    ) {
        let n = blocks.len();
        let len = blocks.first().map_or(0, |x| x.len());
        assert!(
            n <= MAX_BLOCKS && blocks.iter().all(|x| x.len() == len),
            "not whole blocks"
        );
        let block = |b: usize| blocks[b];
        // Natively four, two or one at a time (three as two and one: less code, nearly as
        // fast); in wasm three, two or one (Cranelift spills four blocks' filter states to
        // the stack; three ran detect 6 % faster than two, measured on the bench hour).
        let mut b = 0;
        while b < n {
            match n - b {
                4.. if !cfg!(target_arch = "wasm32") => {
                    hand_on(
                        self.run_n([block(b), block(b + 1), block(b + 2), block(b + 3)], value),
                        &mut each,
                    );
                    b += 4;
                }
                3.. if cfg!(target_arch = "wasm32") => {
                    hand_on(
                        self.run_n([block(b), block(b + 1), block(b + 2)], value),
                        &mut each,
                    );
                    b += 3;
                }
                2.. => {
                    hand_on(self.run_n([block(b), block(b + 1)], value), &mut each);
                    b += 2;
                }
                _ => {
                    hand_on(self.run_n([block(b)], value), &mut each);
                    b += 1;
                }
            }
        }
    }

    /// The filters over `N` blocks of equal length, their recurrences interleaved.
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    #[allow(clippy::needless_range_loop)] // sample `i` of every block, side by side
    fn run_n<U: Copy, const N: usize>(
        &self,
        xs: [&[U]; N],
        value: impl Fn(U) -> f32 + Copy,
    ) -> ([[Complex; 8]; N], [f32; N]) {
        let len = xs.first().map_or(0, |x| x.len());
        // Cut to one length, so the loop below needs no bounds checks.
        let xs = xs.map(|x| &x[..len]);
        let mut s1 = [[0.0f32; 8]; N];
        let mut s2 = [[0.0f32; 8]; N];
        let mut energy = [0.0f32; N];
        for i in 0..len {
            for b in 0..N {
                let v = value(xs[b][i]);
                energy[b] += v * v;
                let (s1, s2) = (&mut s1[b], &mut s2[b]);
                for k in 0..8 {
                    // The input less the older state first: it does not wait for the newer
                    // state, so each sample's chain is one multiply-add.
                    let s0 = self.two_cos[k] * s1[k] + (v - s2[k]);
                    s2[k] = s1[k];
                    s1[k] = s0;
                }
            }
        }
        (self.outputs(s1, s2), energy)
    }

    /// As the portable `run_n`, in wasm SIMD128 lanes written out: four filters per vector,
    /// the same operations in the same order per lane (IEEE single precision, so the same
    /// results) — except that each multiply-add is fused where the host can (one rounding
    /// instead of two: detect of the bench hour 6 % faster; the conformance suite's results
    /// unchanged). The compiler vectorizes one block's filters by itself, but not several
    /// blocks interleaved.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    #[allow(clippy::needless_range_loop)] // sample `i` of every block, side by side
    fn run_n<U: Copy, const N: usize>(
        &self,
        xs: [&[U]; N],
        value: impl Fn(U) -> f32 + Copy,
    ) -> ([[Complex; 8]; N], [f32; N]) {
        use core::arch::wasm32::{f32x4, f32x4_add, f32x4_mul, f32x4_splat, f32x4_sub, v128};
        // a·b + c: one fused instruction with relaxed SIMD (`.cargo/config.toml`), where the
        // host has one; else, and without relaxed SIMD, a multiply and an add — bit for bit
        // the portable `run_n`.
        #[cfg(target_feature = "relaxed-simd")]
        let madd = |a, b, c| core::arch::wasm32::f32x4_relaxed_madd(a, b, c);
        #[cfg(not(target_feature = "relaxed-simd"))]
        let madd = |a, b, c| f32x4_add(f32x4_mul(a, b), c);
        let len = xs.first().map_or(0, |x| x.len());
        let xs = xs.map(|x| &x[..len]);
        let c = &self.two_cos;
        let coef = [f32x4(c[0], c[1], c[2], c[3]), f32x4(c[4], c[5], c[6], c[7])];
        let zero = f32x4_splat(0.0);
        let mut s1: [[v128; 2]; N] = [[zero; 2]; N];
        let mut s2: [[v128; 2]; N] = [[zero; 2]; N];
        // Each block's Σx² in a lane of its own (block `b` in lane `b`, summed in order: the
        // same operations as the portable loop's, so the same bits): two vector multiplies and
        // adds per pair of samples instead of two scalar ones per block. The filters keep
        // the processor's floating-point units busy; three blocks' energy as scalars was a
        // third of their work, and three registers more.
        const { assert!(N <= 4, "one lane per block") };
        let mut energy = zero;
        let lanes = |x: [f32; N]| {
            let mut l = [0.0; 4];
            l[..N].copy_from_slice(&x);
            f32x4(l[0], l[1], l[2], l[3])
        };
        let mut sum_squares = |x: [f32; N]| {
            let v = lanes(x);
            energy = f32x4_add(energy, f32x4_mul(v, v));
        };
        // Two samples a turn, the states trading places instead of moving: the loop carries
        // each state in one register (moved at the loop's end, Cranelift kept them on the
        // stack, a store and a load in every sample's chain).
        let pairs = len / 2;
        // As pairs, each cut to `pairs`: the loop indexes them without bounds checks.
        let twos = xs.map(|x| &x.as_chunks::<2>().0[..pairs]);
        for i in 0..pairs {
            let x: [[f32; 2]; N] = core::array::from_fn(|b| twos[b][i].map(value));
            sum_squares(x.map(|p| p[0]));
            sum_squares(x.map(|p| p[1]));
            for b in 0..N {
                let (v0, v1) = (f32x4_splat(x[b][0]), f32x4_splat(x[b][1]));
                for h in 0..2 {
                    let (p1, p2) = (&mut s1[b][h], &mut s2[b][h]);
                    *p2 = madd(coef[h], *p1, f32x4_sub(v0, *p2));
                    *p1 = madd(coef[h], *p2, f32x4_sub(v1, *p1));
                }
            }
        }
        if len % 2 == 1 {
            let x: [f32; N] = core::array::from_fn(|b| value(xs[b][len - 1]));
            sum_squares(x);
            for b in 0..N {
                let v = f32x4_splat(x[b]);
                for h in 0..2 {
                    let s0 = madd(coef[h], s1[b][h], f32x4_sub(v, s2[b][h]));
                    s2[b][h] = s1[b][h];
                    s1[b][h] = s0;
                }
            }
        }
        let energy = {
            use core::arch::wasm32::f32x4_extract_lane as at;
            let all = [
                at::<0>(energy),
                at::<1>(energy),
                at::<2>(energy),
                at::<3>(energy),
            ];
            core::array::from_fn(|b| all[b])
        };
        // The outputs as `outputs` forms them (the same operations per lane, so the same
        // bits), interleaved into (re, im) pairs in vectors: written as four whole vectors
        // per block, the analysis reads them back at once (written as sixteen scalars, each
        // of its vector reads waited for them to reach the cache).
        use core::arch::wasm32::{f32x4_extract_lane as at, i32x4_shuffle};
        let r = &self.rot1;
        let rot_re = [
            f32x4(r[0].re, r[1].re, r[2].re, r[3].re),
            f32x4(r[4].re, r[5].re, r[6].re, r[7].re),
        ];
        let rot_im = [
            f32x4(-r[0].im, -r[1].im, -r[2].im, -r[3].im),
            f32x4(-r[4].im, -r[5].im, -r[6].im, -r[7].im),
        ];
        let out = core::array::from_fn(|b| {
            let mut y = [Complex::default(); 8];
            for h in 0..2 {
                let re = f32x4_sub(s1[b][h], f32x4_mul(rot_re[h], s2[b][h]));
                let im = f32x4_mul(rot_im[h], s2[b][h]);
                let lo = i32x4_shuffle::<0, 4, 1, 5>(re, im);
                let hi = i32x4_shuffle::<2, 6, 3, 7>(re, im);
                y[4 * h] = Complex {
                    re: at::<0>(lo),
                    im: at::<1>(lo),
                };
                y[4 * h + 1] = Complex {
                    re: at::<2>(lo),
                    im: at::<3>(lo),
                };
                y[4 * h + 2] = Complex {
                    re: at::<0>(hi),
                    im: at::<1>(hi),
                };
                y[4 * h + 3] = Complex {
                    re: at::<2>(hi),
                    im: at::<3>(hi),
                };
            }
            y
        });
        (out, energy)
    }

    /// Each block's complex outputs from its last two filter states.
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    fn outputs<const N: usize>(&self, s1: [[f32; 8]; N], s2: [[f32; 8]; N]) -> [[Complex; 8]; N] {
        let mut out = [[Complex::default(); 8]; N];
        for b in 0..N {
            for k in 0..8 {
                // y = s[N−1] − e^{−jω}·s[N−2]
                out[b][k] = Complex {
                    re: s1[b][k] - self.rot1[k].re * s2[b][k],
                    im: -self.rot1[k].im * s2[b][k],
                };
            }
        }
        out
    }
}

/// Hands `each` the results of `N` blocks filtered together, in order.
fn hand_on<const N: usize>(
    (y, e): ([[Complex; 8]; N], [f32; N]),
    each: &mut impl FnMut([Complex; 8], f32),
) {
    for (y, e) in y.into_iter().zip(e) {
        each(y, e);
    }
}

/// Blocks [`Bank::run_blocks`] takes at once: filtered four (natively) or three (wasm) side
/// by side, which keeps a core's vector units busy.
pub const MAX_BLOCKS: usize = 6;

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
        let x = tone(941.0, 51 * MAX_BLOCKS, 8000.0, 3000.0);
        let y: alloc::vec::Vec<i16> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + (i % 7) as i16)
            .collect();
        let run = |blocks: &[&[i16]]| {
            let mut together = alloc::vec::Vec::new();
            bank.run_blocks(blocks, f32::from, |y, e| together.push((y, e)));
            together
        };
        for n in 1..=MAX_BLOCKS {
            let blocks: alloc::vec::Vec<&[i16]> = y[..51 * n].chunks(51).collect();
            let together = run(&blocks);
            assert_eq!(together.len(), n);
            for (b, (got, energy)) in together.iter().enumerate() {
                let block = &y[51 * b..51 * (b + 1)];
                assert_eq!(*got, bank.run(block), "block {b} of {n}");
                let sum: f32 = block.iter().map(|&v| f32::from(v) * f32::from(v)).sum();
                assert_eq!(
                    energy.to_bits(),
                    sum.to_bits(),
                    "energy of block {b} of {n}"
                );
            }
        }
        let blocks: alloc::vec::Vec<&[i16]> = x.chunks(51).collect();
        let together = run(&blocks);
        let last = MAX_BLOCKS - 1;
        assert_eq!(together[last].0, bank.run(&x[51 * last..]));
    }

    /// The coefficients for both rates are bit for bit those built with libm's `sinf` and
    /// `cosf`.
    #[test]
    fn the_coefficients_are_the_same_bits_as_with_libms_sine_and_cosine() {
        let bits = |b: &Bank| {
            let c = b.rot1.iter().chain(&b.shift);
            let c = c.flat_map(|c| [c.re.to_bits(), c.im.to_bits()]);
            b.two_cos
                .iter()
                .map(|v| v.to_bits())
                .chain(c)
                .collect::<alloc::vec::Vec<_>>()
        };
        for (rate, half) in [(8000, 51), (16000, 102)] {
            let libm = Bank::with(rate, half, crate::sincos::libm_sin_cos_f32);
            assert_eq!(bits(&Bank::new(rate, half)), bits(&libm), "{rate} Hz");
        }
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
