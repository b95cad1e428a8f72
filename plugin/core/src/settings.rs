//! One call's settings — the knobs every path shares (audio frames, RTP packets, the WIT
//! component, the CLI): call id, look-ahead, mask mode, detector tuning, signing key. Defined
//! once here, mirrored once in WIT (`call-settings`), flattened once into the CLI. Adding a
//! knob is a field here, in WIT and in the CLI's `CallArgs`.

use crate::card::ProcessorKey;
use crate::detector::DetectorConfig;
use crate::error::ConfigError;
use crate::event::is_identifier;
use crate::masker::MaskMode;
use crate::sign::Signer;
use alloc::string::String;

/// Largest accepted look-ahead, in ms.
pub const MAX_LOOKAHEAD_MS: u32 = 500;
/// Default look-ahead, in ms: long enough for zero onset leak even for tones in noise at
/// 3 dB S/N (see [`crate::masker`]; 40 ms suffices above 6 dB S/N).
pub const DEFAULT_LOOKAHEAD_MS: u32 = 60;

/// No input for this long after the look-ahead has run out: the stream is idle (ms). Longer
/// than network jitter a receiver would still play through. See [`Lookahead::idle_ms`].
pub const IDLE_AFTER_LOOKAHEAD_MS: u64 = 100;

/// How long the forward audio is delayed so a tone is masked from its first sample: the one
/// place milliseconds become samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lookahead {
    ms: u32,
}

impl Lookahead {
    /// The default, [`DEFAULT_LOOKAHEAD_MS`].
    pub const DEFAULT: Lookahead = Lookahead {
        ms: DEFAULT_LOOKAHEAD_MS,
    };
    /// No delay (detection only; onsets leak).
    pub const NONE: Lookahead = Lookahead { ms: 0 };

    /// A look-ahead of `ms` milliseconds (0–[`MAX_LOOKAHEAD_MS`], checked when the settings
    /// are validated).
    #[must_use]
    pub const fn from_ms(ms: u32) -> Lookahead {
        Lookahead { ms }
    }

    /// In milliseconds.
    #[must_use]
    pub const fn ms(self) -> u32 {
        self.ms
    }

    /// Host time without input after which a stream counts as idle (the look-ahead plus
    /// [`IDLE_AFTER_LOOKAHEAD_MS`]): an RTP session then flushes its masker and sends what it
    /// held, an audio session reports a press still on.
    #[must_use]
    pub const fn idle_ms(self) -> u64 {
        self.ms as u64 + IDLE_AFTER_LOOKAHEAD_MS
    }

    /// In samples at `sample_rate` Hz.
    #[must_use]
    pub fn samples(self, sample_rate: u32) -> usize {
        usize::try_from(u64::from(self.ms) * u64::from(sample_rate) / 1000).unwrap_or(usize::MAX)
    }
}

impl Default for Lookahead {
    fn default() -> Self {
        Lookahead::DEFAULT
    }
}

/// What a digit record says about the key that was pressed (outside card captures, whose
/// presses never leave as digits).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum DigitVisibility {
    /// The digit, in clear (for detection and test tools; whatever receives the records is
    /// then in PCI scope).
    #[default]
    Clear,
    /// No digit: the record says a key was pressed, when and how, not which.
    Hidden,
    /// The digit sealed with HPKE to a processor key, like a captured card; the host's 32
    /// random bytes seed the seals of the whole session.
    Sealed {
        /// Who can open them.
        processor: ProcessorKey,
        /// The host's random bytes for this session's seals.
        entropy: zeroize::Zeroizing<[u8; 32]>,
    },
}

impl core::fmt::Debug for DigitVisibility {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DigitVisibility::Clear => f.write_str("Clear"),
            DigitVisibility::Hidden => f.write_str("Hidden"),
            DigitVisibility::Sealed { processor, .. } => {
                write!(f, "Sealed {{ processor: {:?}, .. }}", processor.kid)
            }
        }
    }
}

/// The settings of one call (one direction of it), validated once when a session is created.
#[derive(Clone, Debug)]
pub struct CallSettings {
    /// Call id carried in every event (1–64 of `A-Z a-z 0-9 . _ : -`).
    pub call_id: String,
    /// Delay of the forward audio.
    pub lookahead: Lookahead,
    /// What replaces tones.
    pub mask_mode: MaskMode,
    /// Detector tuning.
    pub detector: DetectorConfig,
    /// Key and session nonce that sign events; without one, events are reported unsigned.
    pub signer: Option<Signer>,
    /// Whether digit records carry the digit in clear, sealed, or not at all.
    pub digits: DigitVisibility,
}

impl CallSettings {
    /// Defaults for everything but the call id.
    #[must_use]
    pub fn new(call_id: &str) -> CallSettings {
        CallSettings {
            call_id: String::from(call_id),
            lookahead: Lookahead::DEFAULT,
            mask_mode: MaskMode::default(),
            detector: DetectorConfig::default(),
            signer: None,
            digits: DigitVisibility::Clear,
        }
    }

    /// Refuses settings that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_identifier(&self.call_id) {
            return Err(ConfigError::BadIdentifier { field: "call id" });
        }
        if self.lookahead.ms() > MAX_LOOKAHEAD_MS {
            return Err(ConfigError::OutOfRange {
                field: "lookahead_ms",
                allowed: "0 to 500 ms",
            });
        }
        if let DigitVisibility::Sealed { processor, entropy } = &self.digits {
            if !is_identifier(&processor.kid) {
                return Err(ConfigError::BadIdentifier {
                    field: "digit seal key id",
                });
            }
            if **entropy == [0; 32] {
                return Err(ConfigError::OutOfRange {
                    field: "digit seal entropy",
                    allowed: "32 random bytes drawn by the host",
                });
            }
        }
        self.detector.twist.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_ahead_becomes_samples_in_one_place() {
        assert_eq!(Lookahead::DEFAULT.samples(8000), 480);
        assert_eq!(Lookahead::from_ms(60).samples(16000), 960);
        assert_eq!(Lookahead::from_ms(MAX_LOOKAHEAD_MS).samples(16000), 8000);
        assert_eq!(
            Lookahead::from_ms(u32::MAX).samples(16000) as u64,
            68_719_476_720
        );
    }

    #[test]
    fn settings_that_cannot_work_are_refused_with_the_field_named() {
        assert!(CallSettings::new("call-1").validate().is_ok());
        let long = CallSettings {
            lookahead: Lookahead::from_ms(501),
            ..CallSettings::new("call-1")
        };
        assert_eq!(
            long.validate(),
            Err(ConfigError::OutOfRange {
                field: "lookahead_ms",
                allowed: "0 to 500 ms"
            })
        );
        assert_eq!(
            CallSettings::new("call 1").validate(),
            Err(ConfigError::BadIdentifier { field: "call id" })
        );
    }
}
