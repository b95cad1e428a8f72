//! Least-squares fit of the candidate tone pair.
//!
//! A DFT bin of a short window also collects the *other* tone's leakage (at 102 samples the
//! row tone's sidelobe in a column bin is ≈ −26 dB; with 8 dB of twist that is a ±1 dB error
//! on the weaker tone) and each tone's own negative-frequency image. Rather than widen the
//! bins with a window function — which would blur 697 Hz into 770 Hz — the detector models the
//! window as exactly two real sinusoids at the candidate pair's nominal frequencies and solves
//! for their complex amplitudes from the two bins: a 4×4 real linear system whose inverse
//! depends only on the pair and the window length, so it is computed once per detector.
//!
//! With `x[n] = Σ_k α_k·e^{jω_k n} + conj(α_k)·e^{−jω_k n}` the bin at `ω_m` is
//! `X_m = Σ_k α_k·D(ω_k − ω_m) + conj(α_k)·D(−ω_k − ω_m)`, `D(θ) = Σ_{n<N} e^{jθn}`.
//! A tone of amplitude `A` has `|α| = A/2`, power `2|α|²`.

use super::goertzel::{Complex, FREQS};
use alloc::vec::Vec;

#[cfg(test)]
mod tests {
    use super::*;

    /// The detector's four fits (8 and 16 kHz, half and whole windows) built with this
    /// crate's sine and cosine are bit for bit those built with libm's.
    #[test]
    fn the_fits_are_the_same_bits_as_with_libms_sine_and_cosine() {
        let libm_pair: SinCos = |x| (libm::sin(x), libm::cos(x));
        for (rate, n) in [(8000, 51), (8000, 102), (16000, 102), (16000, 204)] {
            let ours = PairFit::new(rate, n);
            let theirs = PairFit::with(rate, n, libm_pair);
            let bits = |f: &PairFit| {
                let inv = f.inv.iter().flatten().flatten().map(|v| v.to_bits());
                let leak = f.leak.iter().flatten().flatten();
                inv.chain(leak.flat_map(|c| [c.re.to_bits(), c.im.to_bits()]))
                    .collect::<Vec<u32>>()
            };
            assert_eq!(bits(&ours), bits(&theirs), "{rate} Hz, {n} samples");
        }
    }

    #[test]
    fn closed_form_sum_matches_the_series() {
        for (theta, n) in [(0.3, 51), (-1.7, 102), (2.9, 51), (0.0, 102)] {
            let (re, im) = (0..n).fold((0.0, 0.0), |(re, im), i| {
                let a = theta * i as f64;
                (re + libm::cos(a), im + libm::sin(a))
            });
            let d = dsum(theta, n, crate::sincos::sin_cos);
            assert!(
                (d.0 - re).abs() < 1e-9 && (d.1 - im).abs() < 1e-9,
                "{theta} {n}"
            );
        }
    }
}

/// Inverse model matrices for the 16 (row, column) pairs at one window length.
#[derive(Clone, Debug)]
pub struct PairFit {
    inv: Vec<[[f32; 4]; 4]>,
    /// `[D(ω_t − ω_k), D(−ω_t − ω_k)]` for tone `t` (row) and bin `k` (column) of the 8×8
    /// filter frequencies: what a tone of complex amplitude α adds to bin `k`
    /// ([`PairFit::leak`]).
    leak: [[[Complex; 2]; 8]; 8],
}

/// `D(θ) = Σ_{n<N} e^{jθn} = e^{jθ(N−1)/2} · sin(Nθ/2) / sin(θ/2)`, and `N` at θ = 0 (a
/// bin's own frequency).
fn dsum(theta: f64, n: usize, sin_cos: SinCos) -> (f64, f64) {
    let n = n as f64;
    let half = sin_cos(theta / 2.0).0;
    if libm::fabs(half) < 1e-12 {
        return (n, 0.0);
    }
    let mag = sin_cos(n * theta / 2.0).0 / half;
    let (sin, cos) = sin_cos(theta * (n - 1.0) / 2.0);
    (mag * cos, mag * sin)
}

/// `(sin x, cos x)` in double precision.
type SinCos = fn(f64) -> (f64, f64);

impl PairFit {
    /// Matrices for windows of `n` samples at `sample_rate`.
    #[must_use]
    pub fn new(sample_rate: u32, n: usize) -> PairFit {
        PairFit::with(sample_rate, n, crate::sincos::sin_cos)
    }

    /// [`PairFit::new`] with sine and cosine from `sin_cos`.
    fn with(sample_rate: u32, n: usize, sin_cos: SinCos) -> PairFit {
        let w =
            |k: usize| 2.0 * core::f64::consts::PI * f64::from(FREQS[k]) / f64::from(sample_rate);
        let mut inv = Vec::with_capacity(16);
        for r in 0..4 {
            for c in 4..8 {
                let ks = [r, c];
                let mut m = [[0.0f64; 4]; 4];
                for (row_pair, &bin) in ks.iter().enumerate() {
                    for (col_pair, &tone) in ks.iter().enumerate() {
                        let d = dsum(w(tone) - w(bin), n, sin_cos);
                        let e = dsum(-w(tone) - w(bin), n, sin_cos);
                        // Re X and Im X as functions of u = Re α, v = Im α.
                        m[2 * row_pair][2 * col_pair] = d.0 + e.0;
                        m[2 * row_pair][2 * col_pair + 1] = -d.1 + e.1;
                        m[2 * row_pair + 1][2 * col_pair] = d.1 + e.1;
                        m[2 * row_pair + 1][2 * col_pair + 1] = d.0 - e.0;
                    }
                }
                inv.push(invert(m));
            }
        }
        let mut leak = [[[Complex::default(); 2]; 8]; 8];
        for (t, row) in leak.iter_mut().enumerate() {
            for (k, cell) in row.iter_mut().enumerate() {
                for (i, theta) in [w(t) - w(k), -w(t) - w(k)].into_iter().enumerate() {
                    let d = dsum(theta, n, sin_cos);
                    cell[i] = Complex {
                        re: d.0 as f32,
                        im: d.1 as f32,
                    };
                }
            }
        }
        PairFit { inv, leak }
    }

    /// What a tone at filter frequency `tone` with complex amplitude `alpha` contributes to
    /// the start-referenced bin of filter `bin`: `α·D(ω_t − ω_k) + conj(α)·D(−ω_t − ω_k)`.
    #[must_use]
    pub fn leak(&self, tone: usize, bin: usize, alpha: Complex) -> Complex {
        let [d, e] = self.leak[tone][bin];
        let conj = Complex {
            re: alpha.re,
            im: -alpha.im,
        };
        alpha * d + conj * e
    }

    /// Complex amplitudes (row, column) from the start-referenced bins `xr`, `xc`.
    #[must_use]
    pub fn solve(&self, row: usize, col: usize, xr: Complex, xc: Complex) -> [Complex; 2] {
        let m = &self.inv[row * 4 + col];
        let x = [xr.re, xr.im, xc.re, xc.im];
        let mut s = [0.0f32; 4];
        for (i, si) in s.iter_mut().enumerate() {
            *si = (0..4).map(|j| m[i][j] * x[j]).sum();
        }
        [
            Complex { re: s[0], im: s[1] },
            Complex { re: s[2], im: s[3] },
        ]
    }
}

/// Inverts a 4×4 matrix by Gauss–Jordan elimination with partial pivoting. The model
/// matrices are well conditioned (distinct frequencies, windows ≥ 51 samples).
fn invert(mut a: [[f64; 4]; 4]) -> [[f32; 4]; 4] {
    let mut inv = [[0.0f64; 4]; 4];
    for (i, row) in inv.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for col in 0..4 {
        let pivot = (col..4).fold(col, |p, r| {
            if libm::fabs(a[r][col]) > libm::fabs(a[p][col]) {
                r
            } else {
                p
            }
        });
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let d = a[col][col];
        for j in 0..4 {
            a[col][j] /= d;
            inv[col][j] /= d;
        }
        for r in 0..4 {
            if r != col {
                let f = a[r][col];
                for j in 0..4 {
                    a[r][j] -= f * a[col][j];
                    inv[r][j] -= f * inv[col][j];
                }
            }
        }
    }
    inv.map(|row| row.map(|v| v as f32))
}
