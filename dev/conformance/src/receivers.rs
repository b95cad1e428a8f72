//! The two receivers under test: tonemask's plugin inside wasmtime, and spandsp.

use crate::signal::{through, Channel, Truth};
use anyhow::Result;
use tonemask_harness::plugin::{
    default_settings, CallSettings, Instance, MaskMode, Plugin, Twist, TwistLimits,
};
use tonemask_harness::run::{run, Options};
use tonemask_harness::wav::{Format, Wav};

/// A digit a receiver reported, and when (samples since the start of the case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The digit.
    pub digit: char,
    /// When the receiver reported its start.
    pub reported_at: usize,
}

/// Twist limits to configure, dB (normal, reverse).
pub type TwistDb = (f32, f32);

/// A DTMF receiver.
pub trait Receiver {
    /// Name in the table.
    fn name(&self) -> &'static str;
    /// Whether it can take this channel at all.
    fn supports(&self, ch: Channel) -> bool;
    /// Digits found in `pcm` (linear samples at the channel's rate, before the channel).
    fn detect(&mut self, ch: Channel, pcm: &[i16], twist: TwistDb) -> Result<Vec<Found>>;
}

/// tonemask: the plugin component in wasmtime, detect-only (mode off, no look-ahead).
pub struct Tonemask {
    instance: Instance,
    plugin: Plugin,
    calls: usize,
}

impl Tonemask {
    /// Loads the plugin.
    pub fn new(plugin: Plugin) -> Result<Tonemask> {
        Ok(Tonemask {
            instance: plugin.instantiate()?,
            plugin,
            calls: 0,
        })
    }

    fn wav(ch: Channel, pcm: &[i16]) -> Wav {
        let (bytes, _) = through(ch, pcm);
        match (ch, bytes) {
            (Channel::Ulaw, Some(data)) => Wav {
                format: Format::Ulaw,
                sample_rate: 8000,
                data,
            },
            (Channel::Alaw, Some(data)) => Wav {
                format: Format::Alaw,
                sample_rate: 8000,
                data,
            },
            _ => Wav::from_pcm16(ch.rate(), pcm),
        }
    }

    fn instance(&mut self) -> Result<&mut Instance> {
        // A fresh instance now and then keeps the guest heap small over long suites.
        self.calls += 1;
        if self.calls.is_multiple_of(2000) {
            self.instance = self.plugin.instantiate()?;
        }
        Ok(&mut self.instance)
    }

    /// Masks `pcm` with the default settings; returns the masked audio as the far end decodes
    /// it (linear), aligned with the input.
    pub fn mask(&mut self, ch: Channel, pcm: &[i16]) -> Result<Vec<i16>> {
        let wav = Self::wav(ch, pcm);
        let opts = Options {
            settings: default_settings("conformance"),
            ..Options::default()
        };
        let out = run(self.instance()?, &wav, &opts, None, |_| {})?;
        Ok(out.masked.linear())
    }
}

impl Receiver for Tonemask {
    fn name(&self) -> &'static str {
        "tonemask"
    }

    fn supports(&self, _: Channel) -> bool {
        true
    }

    fn detect(&mut self, ch: Channel, pcm: &[i16], twist: TwistDb) -> Result<Vec<Found>> {
        let wav = Self::wav(ch, pcm);
        let twist = twist_config(twist);
        let opts = Options {
            settings: CallSettings {
                mask_mode: MaskMode::Off,
                lookahead_ms: 0,
                twist,
                ..default_settings("conformance")
            },
            ..Options::default()
        };
        let rate = ch.rate() as u64;
        let out = run(self.instance()?, &wav, &opts, None, |_| {})?;
        Ok(out
            .events
            .iter()
            .map(|e| Found {
                digit: tonemask_harness::plugin::shown_digit(e),
                reported_at: (e.detected_ms * rate / 1000) as usize,
            })
            .collect())
    }
}

/// The plugin's twist setting for limits: the administration's preset when they are one
/// (so the suite exercises the presets of the WIT config), else explicit limits.
fn twist_config(t: TwistDb) -> Twist {
    use tonemask_core::Twist as T;
    let presets = [
        (T::ATT, Twist::Att),
        (T::ETSI, Twist::Etsi),
        (T::NTT, Twist::Ntt),
        (T::AUSTRALIA, Twist::Australia),
        (T::BRAZIL, Twist::Brazil),
    ];
    presets
        .into_iter()
        .find(|(p, _)| (p.normal_db, p.reverse_db) == t)
        .map_or(
            Twist::Custom(TwistLimits {
                normal_db: t.0,
                reverse_db: t.1,
            }),
            |(_, w)| w,
        )
}

/// tonemask's core compiled natively (a comparison and a fast loop for tuning; the table's
/// numbers come from the plugin).
pub struct TonemaskNative;

impl Receiver for TonemaskNative {
    fn name(&self) -> &'static str {
        "tonemask (native)"
    }

    fn supports(&self, _: Channel) -> bool {
        true
    }

    fn detect(&mut self, ch: Channel, pcm: &[i16], twist: TwistDb) -> Result<Vec<Found>> {
        let (_, linear) = through(ch, pcm);
        let cfg = tonemask_core::DetectorConfig {
            twist: tonemask_core::Twist {
                normal_db: twist.0,
                reverse_db: twist.1,
            },
        };
        Ok(
            tonemask_core::detector::detect_all(ch.rate(), &cfg, &linear)
                .into_iter()
                .filter_map(|t| match t {
                    tonemask_core::detector::Transition::Started {
                        digit, detected_at, ..
                    } => Some(Found {
                        digit: digit.to_char(),
                        reported_at: detected_at as usize,
                    }),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// spandsp's `dtmf_rx` (8 kHz only), with its twist set to the case's limits.
#[derive(Default)]
pub struct Spandsp {
    /// Turn on spandsp's dial-tone filter (for the dial-tone test, where a host would).
    pub filter_dialtone: bool,
}

impl Receiver for Spandsp {
    fn name(&self) -> &'static str {
        "spandsp"
    }

    fn supports(&self, ch: Channel) -> bool {
        ch.rate() == 8000
    }

    fn detect(&mut self, ch: Channel, pcm: &[i16], twist: TwistDb) -> Result<Vec<Found>> {
        let (_, linear) = through(ch, pcm);
        let params = spandsp_ref::Params {
            twist_db: Some(twist.0.round() as i32),
            reverse_twist_db: Some(twist.1.round() as i32),
            filter_dialtone: Some(self.filter_dialtone),
        };
        Ok(spandsp_ref::detect(&linear, params)
            .into_iter()
            .map(|h| Found {
                digit: h.digit,
                reported_at: h.reported_at as usize,
            })
            .collect())
    }
}

/// How a receiver did on one case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Tones expected.
    pub expected: usize,
    /// Tones found (right digit, in order, reported during the tone or within 200 ms after).
    pub detected: usize,
    /// Digits reported that match no tone.
    pub extra: usize,
    /// Onset → report, ms, per detected tone.
    pub latency_ms: Vec<f32>,
    /// Indices (into the truth) of the tones found.
    pub matched: Vec<usize>,
}

impl Score {
    /// Adds another case's score.
    pub fn add(&mut self, o: &Score) {
        self.expected += o.expected;
        self.detected += o.detected;
        self.extra += o.extra;
        self.latency_ms.extend_from_slice(&o.latency_ms);
        self.matched.extend_from_slice(&o.matched);
    }

    /// Detected share, percent.
    #[must_use]
    pub fn percent(&self) -> f64 {
        if self.expected == 0 {
            100.0
        } else {
            100.0 * self.detected as f64 / self.expected as f64
        }
    }

    /// Every tone found, nothing extra.
    #[must_use]
    pub fn all(&self) -> bool {
        self.detected == self.expected && self.extra == 0
    }

    /// Nothing found at all.
    #[must_use]
    pub fn none(&self) -> bool {
        self.detected == 0 && self.extra == 0
    }
}

/// Matches reports to tones in order.
#[must_use]
pub fn score(truth: &[Truth], found: &[Found], rate: u32) -> Score {
    let grace = rate as usize / 5;
    let mut s = Score {
        expected: truth.len(),
        ..Score::default()
    };
    let mut next = 0;
    for f in found {
        let hit = (next..truth.len()).find(|&i| {
            truth[i].digit == f.digit
                && f.reported_at >= truth[i].start
                && f.reported_at <= truth[i].end + grace
        });
        match hit {
            Some(i) => {
                s.detected += 1;
                s.matched.push(i);
                s.latency_ms
                    .push((f.reported_at - truth[i].start) as f32 * 1000.0 / rate as f32);
                next = i + 1;
            }
            None => s.extra += 1,
        }
    }
    s
}
