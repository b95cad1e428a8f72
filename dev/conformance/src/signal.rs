//! Test signals: DTMF bursts with every impairment the receiver tests use, and their truth.

use tonemask_core::detector::tones::{amplitude_of_dbm0, position, COL_HZ, ROW_HZ};
use tonemask_core::g711;

/// One tone burst.
#[derive(Clone, Copy, Debug)]
pub struct Burst {
    /// The digit.
    pub digit: char,
    /// Tone length, ms.
    pub on_ms: f32,
    /// Silence after it, ms.
    pub off_ms: f32,
    /// Level of the low (row) tone, dBm0.
    pub dbm0: f32,
    /// Relative deviation of the row tone (0.015 = +1.5 %).
    pub row_dev: f32,
    /// Relative deviation of the column tone.
    pub col_dev: f32,
    /// How much weaker the column tone is than the row tone, dB (negative: stronger).
    pub twist_db: f32,
}

impl Burst {
    /// A burst at −10 dBm0, nominal frequencies, no twist.
    #[must_use]
    pub fn new(digit: char, on_ms: f32, off_ms: f32) -> Burst {
        Burst {
            digit,
            on_ms,
            off_ms,
            dbm0: -10.0,
            row_dev: 0.0,
            col_dev: 0.0,
            twist_db: 0.0,
        }
    }
}

/// Where a tone really is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truth {
    /// The digit.
    pub digit: char,
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
}

/// Channel encoding a case is carried in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// 16-bit linear at 8 kHz.
    Pcm8,
    /// G.711 µ-law.
    Ulaw,
    /// G.711 A-law.
    Alaw,
    /// 16-bit linear at 16 kHz.
    Pcm16k,
}

impl Channel {
    /// All channels.
    pub const ALL: [Channel; 4] = [Channel::Pcm8, Channel::Ulaw, Channel::Alaw, Channel::Pcm16k];

    /// Sample rate.
    #[must_use]
    pub fn rate(self) -> u32 {
        if self == Channel::Pcm16k {
            16000
        } else {
            8000
        }
    }

    /// Short name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Channel::Pcm8 => "PCM 8k",
            Channel::Ulaw => "µ-law",
            Channel::Alaw => "A-law",
            Channel::Pcm16k => "PCM 16k",
        }
    }
}

/// A test signal in float samples plus its truth.
#[derive(Clone, Debug)]
pub struct Signal {
    /// Sample rate.
    pub rate: u32,
    /// Samples (16-bit scale).
    pub samples: Vec<f32>,
    /// The tones it holds.
    pub truth: Vec<Truth>,
    /// Deterministic noise state.
    rng: u64,
}

impl Signal {
    /// An empty signal.
    #[must_use]
    pub fn new(rate: u32) -> Signal {
        Signal {
            rate,
            samples: Vec::new(),
            truth: Vec::new(),
            rng: 0x2545_F491_4F6C_DD1D,
        }
    }

    fn n(&self, ms: f32) -> usize {
        (ms * self.rate as f32 / 1000.0).round() as usize
    }

    /// Appends silence.
    pub fn silence(&mut self, ms: f32) -> &mut Self {
        let n = self.n(ms);
        self.samples.extend(std::iter::repeat_n(0.0, n));
        self
    }

    /// Appends silence of `n` samples.
    pub fn silence_samples(&mut self, n: usize) -> &mut Self {
        self.samples.extend(std::iter::repeat_n(0.0, n));
        self
    }

    /// Appends a burst (tone then silence).
    pub fn burst(&mut self, b: &Burst) -> &mut Self {
        let (r, c) = position(b.digit).expect("a DTMF symbol");
        let fr = ROW_HZ[r] * (1.0 + b.row_dev);
        let fc = COL_HZ[c] * (1.0 + b.col_dev);
        let ar = amplitude_of_dbm0(b.dbm0);
        let ac = amplitude_of_dbm0(b.dbm0 - b.twist_db);
        let n = self.n(b.on_ms);
        let start = self.samples.len();
        let rate = self.rate as f32;
        let w = |f: f32, i: usize| (2.0 * std::f32::consts::PI * f * i as f32 / rate).sin();
        self.samples
            .extend((0..n).map(|i| ar * w(fr, i) + ac * w(fc, i)));
        self.truth.push(Truth {
            digit: b.digit,
            start,
            end: start + n,
        });
        self.silence(b.off_ms)
    }

    fn uniform(&mut self) -> f32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
    }

    /// Gaussian-ish (sum of 4 uniforms), unit variance.
    fn gauss(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.uniform()).sum();
        s / (4.0f32 / 3.0).sqrt()
    }

    /// Seeds the noise generator.
    pub fn seed(&mut self, seed: u64) -> &mut Self {
        self.rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        self
    }

    /// Adds white noise at `rms`.
    pub fn white_noise(&mut self, rms: f32) -> &mut Self {
        for i in 0..self.samples.len() {
            let g = self.gauss();
            self.samples[i] += rms * g;
        }
        self
    }

    /// Adds pink (1/f) noise at `rms` (Paul Kellett's filter over white noise).
    pub fn pink_noise(&mut self, rms: f32) -> &mut Self {
        let mut b = [0.0f32; 7];
        let mut pink = Vec::with_capacity(self.samples.len());
        for _ in 0..self.samples.len() {
            let w = self.gauss();
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.153_852;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            pink.push(b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + w * 0.5362);
            b[6] = w * 0.115926;
        }
        let p_rms = (pink.iter().map(|v| v * v).sum::<f32>() / pink.len().max(1) as f32).sqrt();
        for (s, p) in self.samples.iter_mut().zip(pink) {
            *s += rms * p / p_rms.max(f32::MIN_POSITIVE);
        }
        self
    }

    /// Adds continuous dial tone (350 + 440 Hz, each at `dbm0`).
    pub fn dial_tone(&mut self, dbm0: f32) -> &mut Self {
        let a = amplitude_of_dbm0(dbm0);
        let rate = self.rate as f32;
        for (i, s) in self.samples.iter_mut().enumerate() {
            let t = i as f32 / rate;
            *s += a
                * ((2.0 * std::f32::consts::PI * 350.0 * t).sin()
                    + (2.0 * std::f32::consts::PI * 440.0 * t).sin());
        }
        self
    }

    /// Samples rounded and clipped to 16 bits.
    #[must_use]
    pub fn pcm(&self) -> Vec<i16> {
        self.samples
            .iter()
            .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
            .collect()
    }
}

/// Power of a DTMF pair at `dbm0` per tone (mean square, 16-bit scale).
#[must_use]
pub fn pair_power(dbm0: f32) -> f32 {
    2.0 * tonemask_core::detector::tones::power_of_dbm0(dbm0)
}

/// Encodes linear samples for a channel: (wire bytes for G.711, linear samples as the far end
/// decodes them).
#[must_use]
pub fn through(channel: Channel, pcm: &[i16]) -> (Option<Vec<u8>>, Vec<i16>) {
    match channel {
        Channel::Pcm8 | Channel::Pcm16k => (None, pcm.to_vec()),
        Channel::Ulaw => {
            let b: Vec<u8> = pcm.iter().map(|&s| g711::linear_to_ulaw(s)).collect();
            let l = b.iter().map(|&c| g711::ulaw_to_linear(c)).collect();
            (Some(b), l)
        }
        Channel::Alaw => {
            let b: Vec<u8> = pcm.iter().map(|&s| g711::linear_to_alaw(s)).collect();
            let l = b.iter().map(|&c| g711::alaw_to_linear(c)).collect();
            (Some(b), l)
        }
    }
}
