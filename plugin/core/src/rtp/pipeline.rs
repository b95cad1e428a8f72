//! The audio running through a detector and masker ([`Session`]) in its own codec, placed on
//! the stream's extended timeline.

use super::config::AudioType;
use super::outbox::Outbox;
use crate::detector::Tables;
use crate::digit::Digit;
use crate::report::Emitted;
use crate::session::{Session, SessionConfig};
use alloc::sync::Arc;

/// One run of audio of one type, from its first packet until a restart or the end.
pub struct Pipeline {
    session: Session,
    /// Its audio type.
    pub audio: AudioType,
    /// Extended timestamp of its first sample.
    pub ts_origin: u64,
    /// Extended timestamp expected next.
    pub next: u64,
}

impl Pipeline {
    /// A pipeline for audio `audio` from extended timestamp `ext` (an [`Output::Aligned`]
    /// session: what it releases is each packet's own audio, in place); `None` if the session
    /// refuses the configuration (validated with the call's, so never expected).
    ///
    /// [`Output::Aligned`]: crate::session::Output::Aligned
    #[must_use]
    pub fn new(
        config: SessionConfig,
        tables: Arc<Tables>,
        audio: AudioType,
        ext: u64,
    ) -> Option<Pipeline> {
        let session = Session::with_tables(config, tables).ok()?;
        Some(Pipeline {
            session,
            audio,
            ts_origin: ext,
            next: ext,
        })
    }

    /// Runs `input` (whole samples, checked by the caller) through the masker; what it
    /// releases goes to `outbox`.
    pub fn feed(&mut self, input: &[u8], outbox: &mut Outbox) {
        outbox.release_with(|ready| self.session.process_bytes(input, ready).is_ok());
    }

    /// Ends the audio: everything still delayed goes to `outbox`.
    pub fn flush(&mut self, outbox: &mut Outbox) {
        outbox.release_with(|ready| self.session.flush_bytes(ready).is_ok());
    }

    /// Media fed so far, ms (rounded down, as event times are).
    #[must_use]
    pub fn fed_ms(&self) -> u64 {
        let fed = self.next.saturating_sub(self.ts_origin);
        super::clock::scale(fed, 1000, u64::from(self.audio.rate))
    }

    /// The digit confirmed and still on, if any.
    #[must_use]
    pub fn digit_on(&self) -> Option<Digit> {
        self.session.digit_on()
    }

    /// The next in-band digit event, times from the pipeline's first sample.
    pub fn poll_event(&mut self) -> Option<Emitted> {
        self.session.poll_event()
    }
}
