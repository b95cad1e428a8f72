//! Turning detected key presses into numbered, signed digit events: one place for the call's
//! sequence numbers and its key, whichever path (audio frames or RTP) found the press.

use crate::digit::Digit;
use crate::event::{DigitEvent, Source};
use crate::sign::Key;
use alloc::string::String;

/// A digit event as it leaves the plugin.
#[derive(Clone, Debug)]
pub struct Emitted {
    /// The event.
    pub event: DigitEvent,
    /// The signed envelope line, when the session has a key.
    pub line: Option<String>,
    /// Samples of this tone that had already left unmasked when it was confirmed (0 unless the
    /// look-ahead is too short or masking is off).
    pub leaked_samples: u64,
}

/// A key press found by a detector, before it is numbered and signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Press {
    /// The key.
    pub digit: Digit,
    /// Start, ms of media time.
    pub start_ms: u64,
    /// End (exclusive), ms of media time.
    pub end_ms: u64,
    /// When it was confirmed, ms of media time.
    pub detected_ms: u64,
    /// Where it was seen.
    pub source: Source,
    /// Tone samples that left unmasked before confirmation.
    pub leaked_samples: u64,
}

/// Numbers and signs the presses of one call.
pub struct Reporter {
    call_id: String,
    key: Option<Key>,
    seq: u64,
}

impl Reporter {
    /// A reporter for `call_id`, signing with `key` when there is one.
    #[must_use]
    pub fn new(call_id: String, key: Option<Key>) -> Reporter {
        Reporter {
            call_id,
            key,
            seq: 0,
        }
    }

    /// The event for the next press of the call.
    pub fn report(&mut self, p: Press) -> Emitted {
        self.seq += 1;
        let event = DigitEvent {
            kid: self
                .key
                .as_ref()
                .map(|k| String::from(k.kid()))
                .unwrap_or_default(),
            call: self.call_id.clone(),
            seq: self.seq,
            digit: p.digit,
            start_ms: p.start_ms,
            end_ms: p.end_ms,
            detected_ms: p.detected_ms,
            source: p.source,
        };
        let line = self.key.as_ref().map(|k| k.seal(&event.to_payload()));
        Emitted {
            event,
            line,
            leaked_samples: p.leaked_samples,
        }
    }
}
