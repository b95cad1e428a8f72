//! The masker: a delay line that replaces every detected tone from its first sample to its
//! last before the audio leaves it.
//!
//! Forward audio is delayed by the look-ahead `D`. The detector sees each sample `D` earlier
//! than the masker lets it out, and it confirms a masked span with its onset already moved
//! back as far as `D` allows (see [`crate::detector`]). For tones above 6 dB S/N, 40 ms
//! already gives zero leak; in noise at 3–5 dB S/N the first two hits can
//! come 34 ms after the onset, and the default `D` = 60 ms is what still reaches back to the
//! tone's first sample in every case the conformance suite measures. Every sample of the tone
//! is then inside the delay line when the span is confirmed, and is replaced on its way out. Masking is decided **on exit**, against the windows the detector
//! reported:
//!
//! - `Waiting` windows (a digit confirmed, its end not known yet) mask everything from the
//!   start on — failing safe if the end comes late;
//! - `Closed` windows mask exactly `start..end`.
//!
//! Audio outside every window leaves as the same units it entered with.

use crate::codec::Codec;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

/// What replaces a tone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MaskMode {
    /// Digital silence.
    #[default]
    Silence,
    /// One steady 400 Hz tone at −20 dBm0: the agent hears *that* a key was pressed, not which.
    Tone,
    /// Comfort noise at about −50 dBm0.
    Noise,
    /// Detect only; audio passes unchanged (apart from the delay).
    Off,
}

/// Frequency of the neutral replacement tone (not a DTMF frequency; a lone tone is no digit).
const NEUTRAL_TONE_HZ: f32 = 400.0;
/// Level of the neutral tone, in dBm0.
const NEUTRAL_TONE_DBM0: f32 = -20.0;
/// RMS level of the comfort noise, in dBm0.
const NOISE_DBM0: f32 = -50.0;

/// A window of samples to mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Window {
    /// The digit is on: mask from `start` until told the end.
    Waiting { start: u64 },
    /// Mask `start..end`.
    Closed { start: u64, end: u64 },
}

/// Generates the replacement samples of a mask mode (also for telephone-events replaced by
/// audio on the RTP path).
pub struct Fill {
    mode: MaskMode,
    phase: f32,
    step: f32,
    amplitude: f32,
    rng: u32,
    noise_scale: f32,
}

impl Fill {
    /// A generator for `mode` at `sample_rate`.
    #[must_use]
    pub fn new(mode: MaskMode, sample_rate: u32) -> Fill {
        let rms = crate::detector::tones::amplitude_of_dbm0(NOISE_DBM0) / core::f32::consts::SQRT_2;
        Fill {
            mode,
            phase: 0.0,
            step: core::f32::consts::TAU * NEUTRAL_TONE_HZ / sample_rate as f32,
            amplitude: crate::detector::tones::amplitude_of_dbm0(NEUTRAL_TONE_DBM0),
            rng: 0x9E37_79B9,
            noise_scale: rms * libm::sqrtf(3.0),
        }
    }

    /// The next replacement sample.
    pub fn sample(&mut self) -> i16 {
        match self.mode {
            MaskMode::Silence | MaskMode::Off => 0,
            MaskMode::Tone => {
                let v = self.amplitude * libm::sinf(self.phase);
                self.phase += self.step;
                if self.phase > core::f32::consts::TAU {
                    self.phase -= core::f32::consts::TAU;
                }
                v as i16
            }
            MaskMode::Noise => {
                // xorshift32: uniform in ±1, scaled to the RMS level (uniform RMS = peak/√3).
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 17;
                self.rng ^= self.rng << 5;
                let u = (self.rng as f32 / u32::MAX as f32) * 2.0 - 1.0;
                (u * self.noise_scale) as i16
            }
        }
    }
}

/// Delay line plus masking windows for one stream.
pub struct Masker {
    codec: Codec,
    line: Line,
    pos: usize,
    /// Units that have entered.
    entered: u64,
    windows: VecDeque<Window>,
    fill: Fill,
    masked: u64,
}

impl Masker {
    /// A masker delaying by `delay` samples, filled initially with the codec's silence.
    #[must_use]
    pub fn new(codec: Codec, sample_rate: u32, delay: usize, mode: MaskMode) -> Masker {
        Masker {
            codec,
            line: Line::new(codec, delay),
            pos: 0,
            entered: 0,
            windows: VecDeque::with_capacity(4),
            fill: Fill::new(mode, sample_rate),
            masked: 0,
        }
    }

    /// The delay in samples.
    #[must_use]
    pub fn delay(&self) -> usize {
        self.line.len()
    }

    /// Samples replaced so far.
    #[must_use]
    pub fn masked_samples(&self) -> u64 {
        self.masked
    }

    /// Index of the next sample to leave the line (samples before the stream began count as
    /// negative and are never masked).
    fn exit_index(&self) -> Option<u64> {
        self.entered.checked_sub(self.line.len() as u64)
    }

    /// How many samples of a window starting at `start` already left unmasked (0 when the
    /// look-ahead was long enough).
    #[must_use]
    pub fn leaked_before(&self, start: u64) -> u64 {
        self.exit_index().map_or(0, |i| i.saturating_sub(start))
    }

    /// A digit was confirmed: mask from `start` on.
    pub fn open(&mut self, start: u64) {
        if self.fill.mode != MaskMode::Off {
            self.windows.push_back(Window::Waiting { start });
        }
    }

    /// The digit that began at `start` ended at `end` (exclusive).
    pub fn close(&mut self, start: u64, end: u64) {
        for w in &mut self.windows {
            if *w == (Window::Waiting { start }) {
                *w = Window::Closed { start, end };
            }
        }
    }

    /// Puts `input` into the line and writes the units that leave it to `out` (as many as
    /// went in: `out` is as long as `input`), masked where they fall inside a window.
    ///
    /// # Panics
    ///
    /// If `out` is not as long as `input`.
    pub fn exchange(&mut self, input: &[u16], out: &mut [u16]) {
        assert_eq!(input.len(), out.len(), "exchange: output of another length");
        // Index of the first unit to leave (negative while the initial silence drains).
        let first_exit = self.entered as i64 - self.line.len() as i64;
        let d = self.line.len();
        if d == 0 {
            out.copy_from_slice(input);
        } else {
            // Swap the input through the ring in at most two contiguous pieces per lap.
            let mut done = 0;
            while done < input.len() {
                let n = (input.len() - done).min(d - self.pos);
                self.line
                    .swap(self.pos, &input[done..done + n], &mut out[done..done + n]);
                self.pos = (self.pos + n) % d;
                done += n;
            }
        }
        self.entered += input.len() as u64;
        if self.windows.is_empty() {
            return;
        }
        for (k, o) in out.iter_mut().enumerate() {
            let Ok(i) = u64::try_from(first_exit + k as i64) else {
                continue;
            };
            if self.masks(i) {
                *o = self.codec.encode(self.fill.sample());
                self.masked += 1;
            }
        }
    }

    /// Whether sample `i` (leaving now, indices increase) lies in a window; drops past windows.
    fn masks(&mut self, i: u64) -> bool {
        while let Some(&w) = self.windows.front() {
            match w {
                Window::Closed { end, .. } if i >= end => {
                    self.windows.pop_front();
                }
                Window::Closed { start, .. } | Window::Waiting { start } => return i >= start,
            }
        }
        false
    }
}

/// The delay line's units: a byte each for G.711 (the largest buffer a session keeps, so
/// half of it matters with thousands of sessions), two for L16.
enum Line {
    Bytes(Vec<u8>),
    Words(Vec<u16>),
}

impl Line {
    /// `delay` units of `codec`'s silence.
    fn new(codec: Codec, delay: usize) -> Line {
        let silence = codec.encode(0);
        match codec {
            Codec::L16 => Line::Words(vec![silence; delay]),
            Codec::Pcmu | Codec::Pcma => Line::Bytes(vec![silence as u8; delay]),
        }
    }

    fn len(&self) -> usize {
        match self {
            Line::Bytes(l) => l.len(),
            Line::Words(l) => l.len(),
        }
    }

    /// Writes the units at `at..at + input.len()` to `out` and puts `input` in their place.
    fn swap(&mut self, at: usize, input: &[u16], out: &mut [u16]) {
        match self {
            Line::Bytes(l) => {
                for ((slot, &i), o) in l[at..at + input.len()].iter_mut().zip(input).zip(out) {
                    *o = u16::from(*slot);
                    *slot = i as u8;
                }
            }
            Line::Words(l) => {
                let slots = &mut l[at..at + input.len()];
                out.copy_from_slice(slots);
                slots.copy_from_slice(input);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_by_the_lookahead_and_masks_exactly_the_window() {
        let mut m = Masker::new(Codec::L16, 8000, 4, MaskMode::Silence);
        m.open(6);
        m.close(6, 9);
        let mut out = [0u16; 16];
        m.exchange(&(1..=16u16).collect::<Vec<_>>(), &mut out);
        // Four samples of initial silence, then samples 0.. delayed; indices 6, 7, 8 masked.
        assert_eq!(out, [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 10, 11, 12]);
        assert_eq!(m.masked_samples(), 3);
    }

    #[test]
    fn an_open_window_masks_until_closed() {
        let mut m = Masker::new(Codec::L16, 8000, 0, MaskMode::Silence);
        m.open(2);
        let mut out = [0u16; 6];
        m.exchange(&(1..=6u16).collect::<Vec<_>>(), &mut out);
        assert_eq!(out, [1, 2, 0, 0, 0, 0]);
    }

    #[test]
    fn off_mode_never_masks() {
        let mut m = Masker::new(Codec::Pcmu, 8000, 2, MaskMode::Off);
        m.open(0);
        m.close(0, 10);
        let mut out = [0u16; 6];
        m.exchange(&(1..=6u16).collect::<Vec<_>>(), &mut out);
        assert_eq!(&out[2..], [1, 2, 3, 4]);
    }
}
