//! Sine and cosine for the tables built once per sample rate: the pair fit's model matrices
//! (double precision), the Goertzel coefficients, the analysis's phase references and the
//! masker's neutral tone (single precision: the double results rounded) — arguments of a few
//! hundred radians at most.
//!
//! They need them no better than libm gives them, but libm's general `sin` and `cos`, and
//! `sinf` and `cosf`, each with a reduction for any argument, were 3.7 and 5.4 KB of the
//! plugin. Here: the argument reduced by π/2 in up to three rounds, as in fdlibm, and the
//! classic minimax kernels on [−π/4, π/4] with the reduction's tail. Every table built from
//! them is checked bit for bit against the same table built from libm's functions (the
//! tests of `fit`, `goertzel`, `window` and `masker`), so the detector and the masker are
//! unchanged. (Rounded from double, the single-precision results are not always libm's:
//! libm's `cosf` is not correctly rounded, and ≈ 0.06 % of arguments in ±400 rad differ by an
//! ulp — none of the tables' 108.)

// The constants as fdlibm publishes them (more digits than a double holds).
#![allow(clippy::excessive_precision, clippy::unreadable_literal)]

use core::f64::consts::{FRAC_2_PI, FRAC_PI_4};

/// π/2 in pieces: the first 33 bits (exact products with any n below 2²⁰), then the rest.
const PIO2_1: f64 = 1.57079632673412561417e+00;
const PIO2_1T: f64 = 6.07710050650619224932e-11;
const PIO2_2: f64 = 6.07710050630396597660e-11;
const PIO2_2T: f64 = 2.02226624879595063154e-21;
const PIO2_3: f64 = 2.02226624871116645580e-21;
const PIO2_3T: f64 = 8.47842766036889956997e-32;

/// `(sin x, cos x)` for `|x| < 2²⁰·π/2` (the fit's arguments stay below 10³).
pub fn sin_cos(x: f64) -> (f64, f64) {
    if libm::fabs(x) <= FRAC_PI_4 {
        return (kernel_sin(x, 0.0), kernel_cos(x, 0.0));
    }
    let (n, y0, y1) = reduce(x);
    let (s, c) = (kernel_sin(y0, y1), kernel_cos(y0, y1));
    match n & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// `(sin x, cos x)` in single precision: [`sin_cos`] of `x`, rounded.
pub fn sin_cos_f32(x: f32) -> (f32, f32) {
    let (s, c) = sin_cos(f64::from(x));
    (s as f32, c as f32)
}

/// `(sin x, cos x)` in single precision, as the tables take them (so that tests can build a
/// table with libm's pair instead).
pub type SinCos32 = fn(f32) -> (f32, f32);

/// libm's single-precision pair: what the tables are checked against.
#[cfg(test)]
pub fn libm_sin_cos_f32(x: f32) -> (f32, f32) {
    (libm::sinf(x), libm::cosf(x))
}

/// `x = n·π/2 + y0 + y1`, `|y0 + y1| ≤ π/4`, `y1` the part of the remainder below `y0`'s
/// precision.
fn reduce(x: f64) -> (i64, f64, f64) {
    let exponent = |v: f64| ((v.to_bits() >> 52) & 0x7ff) as i64;
    // Rounded to the nearest integer by the 1.5·2⁵² trick (|x·2/π| < 2⁵¹).
    const TO_INT: f64 = 6_755_399_441_055_744.0;
    let f_n = (x * FRAC_2_PI + TO_INT) - TO_INT;
    let n = f_n as i64;
    let mut r = x - f_n * PIO2_1;
    let mut w = f_n * PIO2_1T;
    let mut y0 = r - w;
    // Cancellation left fewer good bits than needed: subtract the next piece of π/2 (at
    // most twice).
    for (piece, tail, lost) in [(PIO2_2, PIO2_2T, 16), (PIO2_3, PIO2_3T, 49)] {
        if exponent(x) - exponent(y0) <= lost {
            break;
        }
        let t = r;
        w = f_n * piece;
        r = t - w;
        w = f_n * tail - ((t - r) - w);
        y0 = r - w;
    }
    (n, y0, (r - y0) - w)
}

/// sin(x + y) on [−π/4, π/4], `y` a tail below `x`'s last bit.
fn kernel_sin(x: f64, y: f64) -> f64 {
    const S1: f64 = -1.66666666666666324348e-01;
    const S2: f64 = 8.33333333332248946124e-03;
    const S3: f64 = -1.98412698298579493134e-04;
    const S4: f64 = 2.75573137070700676789e-06;
    const S5: f64 = -2.50507602534068634195e-08;
    const S6: f64 = 1.58969099521155010221e-10;
    let z = x * x;
    let w = z * z;
    let r = S2 + z * (S3 + z * S4) + z * w * (S5 + z * S6);
    let v = z * x;
    if y == 0.0 {
        x + v * (S1 + z * r)
    } else {
        x - ((z * (0.5 * y - v * r) - y) - v * S1)
    }
}

/// cos(x + y) on [−π/4, π/4], `y` a tail below `x`'s last bit.
fn kernel_cos(x: f64, y: f64) -> f64 {
    const C1: f64 = 4.16666666666666019037e-02;
    const C2: f64 = -1.38888888888741095749e-03;
    const C3: f64 = 2.48015872894767294178e-05;
    const C4: f64 = -2.75573143513906633035e-07;
    const C5: f64 = 2.08757232129817482790e-09;
    const C6: f64 = -1.13596475577881948265e-11;
    let z = x * x;
    let w = z * z;
    let r = z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6));
    let hz = 0.5 * z;
    let w = 1.0 - hz;
    w + (((1.0 - w) - hz) + (z * r - x * y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_an_ulp_or_two_of_libm_over_the_fits_range() {
        let ulps = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        let mut worst = 0;
        for i in -200_000..=200_000 {
            let x = f64::from(i) * 0.005_123;
            let (s, c) = sin_cos(x);
            let (ls, lc) = (libm::sin(x), libm::cos(x));
            // Near a zero the relative error of either is large; compare absolutely there.
            for (got, want) in [(s, ls), (c, lc)] {
                if want.abs() > 1e-3 {
                    worst = worst.max(ulps(got, want));
                } else {
                    assert!((got - want).abs() < 1e-15, "{x}: {got} against {want}");
                }
            }
        }
        assert!(worst <= 2, "{worst} ulp");
    }

    /// Next to a multiple of π/2 the first piece of π/2 cancels nearly everything: the
    /// second and third rounds of the reduction keep the tiny result's relative precision.
    #[test]
    fn near_multiples_of_half_pi_the_tiny_result_is_still_precise() {
        let ulps = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        let half_pi = core::f64::consts::FRAC_PI_2;
        for k in 1..=600 {
            for x in [
                half_pi * f64::from(k),
                -half_pi * f64::from(k) * (1.0 + f64::EPSILON),
            ] {
                let (s, c) = sin_cos(x);
                assert!(
                    ulps(s, libm::sin(x)) <= 2,
                    "sin {x}: {s} against {}",
                    libm::sin(x)
                );
                assert!(
                    ulps(c, libm::cos(x)) <= 2,
                    "cos {x}: {c} against {}",
                    libm::cos(x)
                );
            }
        }
    }
}
