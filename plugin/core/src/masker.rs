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
use alloc::boxed::Box;
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
    /// Tone mode: the tone's samples over a whole number of its periods, repeated (the sine
    /// is computed once per session, not per masked sample). `None` for the other modes, or
    /// a rate whose repeat would be long (the running phase).
    tone: Option<Repeat<i16>>,
}

/// A sequence played over and over, from its start.
struct Repeat<T> {
    items: Box<[T]>,
    at: usize,
}

impl<T: Copy> Repeat<T> {
    fn new(items: Box<[T]>) -> Repeat<T> {
        Repeat { items, at: 0 }
    }

    /// The next item (`items` is never empty).
    fn next(&mut self) -> T {
        let v = self.items[self.at];
        self.at = (self.at + 1) % self.items.len();
        v
    }
}

/// The longest repeat of the neutral tone kept as samples (8 kHz: 20, 16 kHz: 40).
const MAX_TONE_REPEAT: u32 = 480;

impl Fill {
    /// A generator for `mode` at `sample_rate`.
    #[must_use]
    pub fn new(mode: MaskMode, sample_rate: u32) -> Fill {
        let rms = crate::detector::tones::amplitude_of_dbm0(NOISE_DBM0) / core::f32::consts::SQRT_2;
        let amplitude = crate::detector::tones::amplitude_of_dbm0(NEUTRAL_TONE_DBM0);
        Fill {
            mode,
            phase: 0.0,
            step: core::f32::consts::TAU * NEUTRAL_TONE_HZ / sample_rate as f32,
            amplitude,
            rng: 0x9E37_79B9,
            noise_scale: rms * libm::sqrtf(3.0),
            tone: (mode == MaskMode::Tone)
                .then(|| tone_repeat(sample_rate, amplitude, crate::sincos::sin_cos_f32))
                .flatten()
                .map(Repeat::new),
        }
    }

    /// The next replacement sample.
    pub fn sample(&mut self) -> i16 {
        match self.mode {
            MaskMode::Silence | MaskMode::Off => 0,
            MaskMode::Tone => {
                if let Some(tone) = &mut self.tone {
                    return tone.next();
                }
                let v = self.amplitude * crate::sincos::sin_cos_f32(self.phase).0;
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

/// The neutral tone at `sample_rate` over the fewest samples that hold a whole number of its
/// periods (`sample_rate / gcd(sample_rate, 400)`), each sample's phase taken exactly from
/// its index; `None` when that is more than [`MAX_TONE_REPEAT`] samples.
fn tone_repeat(
    sample_rate: u32,
    amplitude: f32,
    sin_cos: crate::sincos::SinCos32,
) -> Option<Box<[i16]>> {
    let hz = NEUTRAL_TONE_HZ as u32;
    let (mut a, mut b) = (sample_rate, hz);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let len = sample_rate.checked_div(a)?;
    if len == 0 || len > MAX_TONE_REPEAT {
        return None;
    }
    Some(
        (0..len)
            .map(|k| {
                let turn = (u64::from(k) * u64::from(hz) % u64::from(sample_rate)) as f32
                    / sample_rate as f32;
                (amplitude * sin_cos(core::f32::consts::TAU * turn).0) as i16
            })
            .collect(),
    )
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
    /// Tone mode: the fill's repeat of the tone, encoded once in the codec, and where it
    /// stands (the fill gives it up: its samples leave only from here).
    tone: Option<Repeat<u16>>,
    masked: u64,
}

impl Masker {
    /// A masker delaying by `delay` samples, filled initially with the codec's silence.
    #[must_use]
    pub fn new(codec: Codec, sample_rate: u32, delay: usize, mode: MaskMode) -> Masker {
        let mut fill = Fill::new(mode, sample_rate);
        let tone = fill
            .tone
            .take()
            .map(|t| Repeat::new(t.items.iter().map(|&v| codec.encode(v)).collect()));
        Masker {
            codec,
            line: Line::new(codec, delay),
            pos: 0,
            entered: 0,
            windows: VecDeque::with_capacity(4),
            fill,
            tone,
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

    /// Counts `n` samples as having gone through without moving any (a session that detects
    /// only): the exit index — and so [`Masker::leaked_before`] — moves on as with
    /// [`Masker::exchange`], windows the exit has passed are dropped, nothing is replaced.
    pub fn pass(&mut self, n: usize) {
        self.entered += n as u64;
        let Some(exit) = self.exit_index() else {
            return;
        };
        while let Some(&Window::Closed { end, .. }) = self.windows.front() {
            if end > exit {
                break;
            }
            self.windows.pop_front();
        }
    }

    /// Puts `input` into the line and writes the units that leave it to `out` (as many as
    /// went in: `out` is as long as `input`), masked where they fall inside a window. Units
    /// come as the caller holds them ([`Unit`]): G.711 bytes go through without a
    /// conversion pass.
    ///
    /// # Panics
    ///
    /// If `out` is not as long as `input`.
    pub fn exchange<U: Unit>(&mut self, input: &[U], out: &mut [U]) {
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
        // The samples leaving, by index (those from before the stream began are never masked),
        // walked window by window: each masked stretch replaced in one go.
        let end = first_exit + out.len() as i64;
        let Ok(end) = u64::try_from(end) else {
            return;
        };
        let mut i = first_exit.max(0) as u64;
        while let Some((from, to)) = self.next_stretch(first_exit, &mut i, end) {
            // Made here, not before the walk: most frames mask nothing, and zeroing it is a
            // call into the runtime in wasm.
            let mut codes = [0u16; 64];
            for piece in out[from..to].chunks_mut(codes.len()) {
                let codes = &mut codes[..piece.len()];
                self.replacement(codes);
                for (o, &c) in piece.iter_mut().zip(codes.iter()) {
                    *o = U::from_code(c);
                }
            }
            self.masked += (to - from) as u64;
        }
    }

    /// The next stretch to mask among the samples leaving, `i..end` by index (`i` moves past
    /// it; windows the exit has passed are dropped), as a range of the output whose first
    /// sample has index `first_exit`; `None` when nothing more is masked. Out of line and not
    /// generic: one copy serves every [`Unit`].
    #[inline(never)]
    fn next_stretch(&mut self, first_exit: i64, i: &mut u64, end: u64) -> Option<(usize, usize)> {
        while *i < end {
            let (start, until) = match self.windows.front() {
                None => return None,
                Some(&Window::Closed { end: e, .. }) if *i >= e => {
                    self.windows.pop_front();
                    continue;
                }
                Some(&Window::Closed { start, end: e }) => (start, e),
                Some(&Window::Waiting { start }) => (start, u64::MAX),
            };
            let (from, to) = (start.max(*i), until.min(end));
            // A window going on past these samples ends the walk; else its end has come and
            // it is dropped on the next turn.
            *i = if until > end { end } else { until };
            if from < to {
                let at = |j: u64| (j as i64 - first_exit) as usize;
                return Some((at(from), at(to)));
            }
        }
        None
    }

    /// The next replacement units, as codec codes (out of line: one copy serves every
    /// [`Unit`] the masker is used with).
    #[inline(never)]
    fn replacement(&mut self, codes: &mut [u16]) {
        if matches!(self.fill.mode, MaskMode::Silence | MaskMode::Off) {
            // Digital silence: one code, no generator to run.
            codes.fill(self.codec.encode(0));
            return;
        }
        if let Some(tone) = &mut self.tone {
            codes.fill_with(|| tone.next());
            return;
        }
        for c in codes {
            *c = self.codec.encode(self.fill.sample());
        }
    }
}

/// A codec unit as a caller holds it: a G.711 byte (`u8`, the wire form itself), any
/// codec's unit (`u16`, an L16 sample's bits) or a linear sample (`i16`, the same bits). A
/// delay line of the same width moves them as plain copies.
pub trait Unit: Copy + Default {
    /// The unit for a codec code (a G.711 code fits in a byte).
    fn from_code(code: u16) -> Self;
    /// Writes `slots` to `out` and puts `input` in their place (all three as long).
    fn swap_bytes(slots: &mut [u8], input: &[Self], out: &mut [Self]);
    /// As [`Unit::swap_bytes`], for a line of words.
    fn swap_words(slots: &mut [u16], input: &[Self], out: &mut [Self]);
}

impl Unit for u8 {
    fn from_code(code: u16) -> u8 {
        code as u8
    }
    fn swap_bytes(slots: &mut [u8], input: &[u8], out: &mut [u8]) {
        out.copy_from_slice(slots);
        slots.copy_from_slice(input);
    }
    fn swap_words(slots: &mut [u16], input: &[u8], out: &mut [u8]) {
        for ((slot, &i), o) in slots.iter_mut().zip(input).zip(out) {
            *o = *slot as u8;
            *slot = u16::from(i);
        }
    }
}

impl Unit for u16 {
    fn from_code(code: u16) -> u16 {
        code
    }
    fn swap_bytes(slots: &mut [u8], input: &[u16], out: &mut [u16]) {
        for ((slot, &i), o) in slots.iter_mut().zip(input).zip(out) {
            *o = u16::from(*slot);
            *slot = i as u8;
        }
    }
    fn swap_words(slots: &mut [u16], input: &[u16], out: &mut [u16]) {
        out.copy_from_slice(slots);
        slots.copy_from_slice(input);
    }
}

/// Linear samples as the caller holds them: a `u16` unit's bits (the same copies, no
/// conversion pass before and after the line).
impl Unit for i16 {
    fn from_code(code: u16) -> i16 {
        code as i16
    }
    fn swap_bytes(slots: &mut [u8], input: &[i16], out: &mut [i16]) {
        for ((slot, &i), o) in slots.iter_mut().zip(input).zip(out) {
            *o = i16::from(*slot);
            *slot = i as u8;
        }
    }
    fn swap_words(slots: &mut [u16], input: &[i16], out: &mut [i16]) {
        for ((slot, &i), o) in slots.iter_mut().zip(input).zip(out) {
            *o = *slot as i16;
            *slot = i as u16;
        }
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
    fn swap<U: Unit>(&mut self, at: usize, input: &[U], out: &mut [U]) {
        match self {
            Line::Bytes(l) => U::swap_bytes(&mut l[at..at + input.len()], input, out),
            Line::Words(l) => U::swap_words(&mut l[at..at + input.len()], input, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The neutral tone at both rates is sample for sample the tone made with libm's `sinf`.
    #[test]
    fn the_tone_is_the_same_as_with_libms_sine() {
        for rate in [8000, 16000] {
            let amplitude = crate::detector::tones::amplitude_of_dbm0(NEUTRAL_TONE_DBM0);
            let ours = tone_repeat(rate, amplitude, crate::sincos::sin_cos_f32);
            let libm = tone_repeat(rate, amplitude, crate::sincos::libm_sin_cos_f32);
            assert!(ours.as_ref().is_some_and(|t| t.len() >= 20), "{rate} Hz");
            assert_eq!(ours, libm, "{rate} Hz");
        }
    }

    /// The masking rule sample by sample, as `exchange` once applied it: the reference for the
    /// stretch-by-stretch walk.
    fn exchange_per_sample(m: &mut Masker, input: &[u16], out: &mut [u16]) {
        let first_exit = m.entered as i64 - m.line.len() as i64;
        let d = m.line.len();
        let mut done = 0;
        while done < input.len() {
            let n = (input.len() - done).min(d - m.pos);
            m.line
                .swap(m.pos, &input[done..done + n], &mut out[done..done + n]);
            m.pos = (m.pos + n) % d;
            done += n;
        }
        m.entered += input.len() as u64;
        for (k, o) in out.iter_mut().enumerate() {
            let Ok(i) = u64::try_from(first_exit + k as i64) else {
                continue;
            };
            let masks = loop {
                match m.windows.front() {
                    Some(&Window::Closed { end, .. }) if i >= end => {
                        m.windows.pop_front();
                    }
                    Some(&Window::Closed { start, .. } | &Window::Waiting { start }) => {
                        break i >= start
                    }
                    None => break false,
                }
            };
            if masks {
                let mut code = [0u16];
                m.replacement(&mut code);
                *o = code[0];
                m.masked += 1;
            }
        }
    }

    #[test]
    fn stretches_mask_exactly_what_the_sample_by_sample_rule_masks() {
        let mut x: u32 = 0x2545_F491;
        let mut next = move |n: u32| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % n
        };
        for mode in [MaskMode::Tone, MaskMode::Noise, MaskMode::Silence] {
            for codec in [Codec::L16, Codec::Pcmu] {
                let delay = 1 + next(500) as usize;
                let mut a = Masker::new(codec, 8000, delay, mode);
                let mut b = Masker::new(codec, 8000, delay, mode);
                // G.711 also as the bytes themselves: the same units must leave.
                let mut c = Masker::new(codec, 8000, delay, mode);
                let mut fed = 0u64;
                for _ in 0..400 {
                    // Windows open at, before or after the samples leaving, some closed at
                    // once, some later, some empty or reversed (never sent; still harmless).
                    if next(3) == 0 {
                        let start = (fed + u64::from(next(900))).saturating_sub(600);
                        for m in [&mut a, &mut b, &mut c] {
                            m.open(start);
                        }
                        if next(2) == 0 {
                            let end = (start + u64::from(next(700)))
                                .saturating_sub(u64::from(next(2)) * 50);
                            for m in [&mut a, &mut b, &mut c] {
                                m.close(start, end);
                            }
                        }
                    }
                    if next(4) == 0 {
                        if let Some(&Window::Waiting { start }) = a.windows.back() {
                            let end = start + u64::from(next(800));
                            for m in [&mut a, &mut b, &mut c] {
                                m.close(start, end);
                            }
                        }
                    }
                    let n = next(400) as usize;
                    let input: Vec<u16> = (0..n).map(|_| next(256) as u16).collect();
                    let (mut oa, mut ob) = (vec![0u16; n], vec![0u16; n]);
                    a.exchange(&input, &mut oa);
                    exchange_per_sample(&mut b, &input, &mut ob);
                    assert_eq!(oa, ob, "{mode:?} {codec:?} at {fed}");
                    assert_eq!(a.masked, b.masked);
                    assert_eq!(a.windows, b.windows);
                    if codec != Codec::L16 {
                        let bytes: Vec<u8> = input.iter().map(|&u| u as u8).collect();
                        let mut oc = vec![0u8; n];
                        c.exchange(&bytes, &mut oc);
                        assert!(oc.iter().zip(&oa).all(|(&c, &a)| u16::from(c) == a));
                        assert_eq!((c.masked, &c.windows), (a.masked, &a.windows));
                    }
                    fed += n as u64;
                }
                assert!(a.masked > 0);
            }
        }
    }

    #[test]
    fn the_tone_from_its_repeat_is_the_running_sine_and_repeats_exactly() {
        for (rate, repeat) in [(8000, 20), (16000, 40)] {
            let mut table = Fill::new(MaskMode::Tone, rate);
            assert_eq!(table.tone.as_ref().map(|t| t.items.len()), Some(repeat));
            // The running phase, as the generator computes it without a repeat.
            let mut running = Fill::new(MaskMode::Tone, rate);
            running.tone = None;
            let a: Vec<i16> = (0..rate).map(|_| table.sample()).collect();
            let b: Vec<i16> = (0..rate).map(|_| running.sample()).collect();
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs())
                .max();
            assert!(worst <= Some(4), "{rate} Hz: {worst:?}");
            assert!(a.iter().zip(&a[repeat..]).all(|(x, y)| x == y));
            assert!(a.iter().any(|&v| v > 2000), "the tone is there");
        }
        // A rate with no short repeat keeps the running phase.
        assert!(Fill::new(MaskMode::Tone, 44_099).tone.is_none());
        assert!(Fill::new(MaskMode::Silence, 8000).tone.is_none());
    }

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
