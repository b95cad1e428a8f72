//! What an RTP session is told about its call: payload types, look-ahead, mask mode, key.

use crate::codec::Codec;
use crate::error::ConfigError;
use crate::session::{Output, SessionConfig};
use crate::settings::CallSettings;
use alloc::vec::Vec;

/// An audio payload type of the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioType {
    /// RTP payload type (0–127).
    pub pt: u8,
    /// Codec.
    pub codec: Codec,
    /// Clock rate = sample rate (8000; 16000 for L16).
    pub rate: u32,
}

/// The telephone-event payload type of the call (dynamic: never assumed to be 101).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventType {
    /// RTP payload type.
    pub pt: u8,
    /// Clock rate (should match the audio's).
    pub clock: u32,
}

/// Everything an RTP session needs, validated by [`RtpSession::new`](super::RtpSession::new).
#[derive(Clone, Debug)]
pub struct RtpConfig {
    /// The call's settings (the look-ahead is a packet delay; mask mode `off` also forwards
    /// telephone-events).
    pub settings: CallSettings,
    /// Audio payload types (at least one).
    pub audio: Vec<AudioType>,
    /// The telephone-event payload type, if negotiated.
    pub telephone_event: Option<EventType>,
    /// The RED payload type, if negotiated.
    pub red: Option<u8>,
}

impl RtpConfig {
    /// A configuration with one audio type and defaults for the rest.
    #[must_use]
    pub fn new(call_id: &str, audio: AudioType) -> RtpConfig {
        RtpConfig {
            settings: CallSettings::new(call_id),
            audio: alloc::vec![audio],
            telephone_event: None,
            red: None,
        }
    }

    /// The audio type of payload type `pt`, if it is one.
    pub(super) fn audio_type(&self, pt: u8) -> Option<AudioType> {
        self.audio.iter().find(|a| a.pt == pt).copied()
    }

    /// The fastest clock of the call's payload types.
    pub(super) fn max_clock(&self) -> u32 {
        let audio = self.audio.iter().map(|a| a.rate);
        audio
            .chain(self.telephone_event.map(|e| e.clock))
            .max()
            .unwrap_or(8000)
    }

    /// Clock of telephone-event timestamps (the first audio type's when none is configured).
    pub(super) fn event_clock(&self) -> u32 {
        self.telephone_event.map_or(self.audio[0].rate, |e| e.clock)
    }

    pub(super) fn session(&self, a: AudioType) -> SessionConfig {
        SessionConfig {
            settings: CallSettings {
                call_id: self.settings.call_id.clone(),
                lookahead: self.settings.lookahead,
                mask_mode: self.settings.mask_mode,
                detector: self.settings.detector,
                // The RTP session signs its own events (one sequence for both sources) and
                // formats their digits itself.
                signer: None,
                digits: crate::settings::DigitVisibility::Clear,
            },
            codec: a.codec,
            sample_rate: a.rate,
            // Packets keep their timestamps: their audio comes back in place.
            output: Output::Aligned,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.audio.is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "audio payload types",
                allowed: "at least one",
            });
        }
        let mut pts: Vec<u8> = self.audio.iter().map(|a| a.pt).collect();
        pts.extend(self.telephone_event.map(|e| e.pt));
        pts.extend(self.red);
        if pts.iter().any(|&pt| pt > 127) {
            return Err(ConfigError::OutOfRange {
                field: "payload type",
                allowed: "0 to 127",
            });
        }
        // Each payload type once: a set of the 128 as one bit each (no sort).
        let mut seen = 0u128;
        let twice = pts.iter().any(|&pt| {
            let bit = 1u128 << pt;
            let again = seen & bit != 0;
            seen |= bit;
            again
        });
        if twice {
            return Err(ConfigError::OutOfRange {
                field: "payload types",
                allowed: "each used once",
            });
        }
        if let Some(e) = self.telephone_event {
            if !(8000..=48000).contains(&e.clock) {
                return Err(ConfigError::OutOfRange {
                    field: "telephone-event clock rate",
                    allowed: "8000 to 48000 Hz",
                });
            }
        }
        for a in &self.audio {
            self.session(*a).validate()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(audio: &[u8], event: Option<u8>, red: Option<u8>) -> RtpConfig {
        RtpConfig {
            settings: CallSettings::new("call"),
            audio: audio
                .iter()
                .map(|&pt| AudioType {
                    pt,
                    codec: Codec::Pcmu,
                    rate: 8000,
                })
                .collect(),
            telephone_event: event.map(|pt| EventType { pt, clock: 8000 }),
            red,
        }
    }

    #[test]
    fn a_payload_type_named_twice_is_refused_wherever_it_appears() {
        let refused = |c: RtpConfig| {
            matches!(
                c.validate(),
                Err(ConfigError::OutOfRange {
                    field: "payload types",
                    ..
                })
            )
        };
        assert!(config(&[0, 8], Some(101), Some(96)).validate().is_ok());
        assert!(config(&[127, 0], Some(126), None).validate().is_ok());
        assert!(refused(config(&[0, 0], None, None)));
        assert!(refused(config(&[0], Some(0), None)));
        assert!(refused(config(&[0], Some(101), Some(101))));
        assert!(refused(config(&[127, 8], None, Some(127))));
    }
}
