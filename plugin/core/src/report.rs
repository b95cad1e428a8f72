//! Turning detected key presses into numbered, signed digit events: one place for the call's
//! sequence numbers and its key, whichever path (audio frames or RTP) found the press.

use crate::digit::Digit;
use crate::event::{CallEnd, DigitEvent, Source};
use crate::sign::Signer;
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

/// Numbers and signs the presses of one call, and closes the numbering with a signed
/// end-of-call record.
pub struct Reporter {
    call_id: String,
    signer: Option<Signer>,
    seq: u64,
    end: Option<String>,
}

impl Reporter {
    /// A reporter for `call_id`, signing with `signer` when there is one.
    #[must_use]
    pub fn new(call_id: String, signer: Option<Signer>) -> Reporter {
        Reporter {
            call_id,
            signer,
            seq: 0,
            end: None,
        }
    }

    /// Ends the numbering: the signed end-of-call record (digits sent, next sequence number),
    /// once; `None` without a signer.
    pub fn finish(&mut self) {
        if self.end.is_some() {
            return;
        }
        self.end = self.signer.as_ref().map(|s| {
            let end = CallEnd {
                kid: String::from(s.key().kid()),
                call: self.call_id.clone(),
                session: String::from(s.session()),
                seq: self.seq + 1,
                digits: self.seq,
            };
            s.key().seal(&end.to_payload())
        });
    }

    /// The signed end-of-call record, once [`Reporter::finish`] ran.
    #[must_use]
    pub fn end_record(&self) -> Option<&str> {
        self.end.as_deref()
    }

    /// The event for the next press of the call.
    pub fn report(&mut self, p: Press) -> Emitted {
        self.seq += 1;
        let signer = self.signer.as_ref();
        let event = DigitEvent {
            kid: signer
                .map(|s| String::from(s.key().kid()))
                .unwrap_or_default(),
            call: self.call_id.clone(),
            session: signer
                .map(|s| String::from(s.session()))
                .unwrap_or_default(),
            seq: self.seq,
            digit: p.digit,
            start_ms: p.start_ms,
            end_ms: p.end_ms,
            detected_ms: p.detected_ms,
            source: p.source,
        };
        let line = signer.map(|s| s.key().seal(&event.to_payload()));
        Emitted {
            event,
            line,
            leaked_samples: p.leaked_samples,
        }
    }
}
