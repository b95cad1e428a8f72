//! Signal generation shared by the core's tests.
#![allow(dead_code)]

use tonemask_core::detector::tones::{amplitude_of_dbm0, position, COL_HZ, ROW_HZ};

/// Appends a DTMF tone: `ms` long, each tone at `dbm0`, frequencies scaled by (1+row_dev),
/// (1+col_dev), column tone `twist_db` weaker (negative: stronger).
pub struct Tone {
    pub digit: char,
    pub ms: f32,
    pub dbm0: f32,
    pub row_dev: f32,
    pub col_dev: f32,
    pub twist_db: f32,
}

impl Tone {
    pub fn new(digit: char, ms: f32) -> Tone {
        Tone {
            digit,
            ms,
            dbm0: -10.0,
            row_dev: 0.0,
            col_dev: 0.0,
            twist_db: 0.0,
        }
    }
}

pub fn push_tone(buf: &mut Vec<f32>, rate: f32, t: &Tone) {
    let (r, c) = position(t.digit).unwrap();
    let fr = ROW_HZ[r] * (1.0 + t.row_dev);
    let fc = COL_HZ[c] * (1.0 + t.col_dev);
    let ar = amplitude_of_dbm0(t.dbm0);
    let ac = amplitude_of_dbm0(t.dbm0 - t.twist_db);
    let n = (t.ms * rate / 1000.0).round() as usize;
    for i in 0..n {
        let x = i as f32 / rate;
        buf.push(
            ar * (2.0 * std::f32::consts::PI * fr * x).sin()
                + ac * (2.0 * std::f32::consts::PI * fc * x).sin(),
        );
    }
}

pub fn push_silence(buf: &mut Vec<f32>, rate: f32, ms: f32) {
    let n = (ms * rate / 1000.0).round() as usize;
    buf.extend(std::iter::repeat_n(0.0, n));
}

pub fn to_i16(buf: &[f32]) -> Vec<i16> {
    buf.iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Digits and positions (start..end samples) a buffer holds when built from `digits` with
/// `tone_ms` / `gap_ms` after a `lead_ms` lead-in.
pub fn sequence(digits: &str, lead_ms: f32, tone_ms: f32, gap_ms: f32, dbm0: f32) -> Vec<i16> {
    let mut b = Vec::new();
    push_silence(&mut b, 8000.0, lead_ms);
    for d in digits.chars() {
        push_tone(
            &mut b,
            8000.0,
            &Tone {
                dbm0,
                ..Tone::new(d, tone_ms)
            },
        );
        push_silence(&mut b, 8000.0, gap_ms);
    }
    to_i16(&b)
}

/// Deterministic white noise with the given RMS.
pub fn noise(n: usize, rms: f32, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            // Sum of 4 uniforms ≈ Gaussian; variance of each uniform in ±1 is 1/3.
            let mut acc = 0.0;
            for _ in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                acc += (s >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0;
            }
            acc * rms / (4.0f32 / 3.0).sqrt()
        })
        .collect()
}
