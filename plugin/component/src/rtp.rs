//! The `rtp` interface: RTP sessions (only in the full plugin, feature `rtp`).

use crate::exports::tonemask::plugin::rtp::{
    Guest as RtpGuest, GuestRtpSession, RtpOutput, RtpSession as RtpSessionHandle,
};
use crate::exports::tonemask::plugin::types::{
    AudioPayload, CaptureEvent, CaptureField, CaptureRequest, CaptureStatus, DigitEvent, Error,
    EventPayload, RtpConfig, RtpStats,
};
use crate::{capture, codec, error, event, settings, tables, Plugin};
use core::cell::RefCell;
use tonemask_core as core_;

/// One direction of an RTP call.
pub struct RtpSession(RefCell<core_::RtpSession>);

std::thread_local! {
    /// What `advance` releases, before it is copied into the WIT lists: one per instance
    /// (calls into an instance never overlap), so its capacity is kept from call to call.
    static BATCH: RefCell<core_::rtp::Batch> = RefCell::new(core_::rtp::Batch::new());
}

fn rtp_config(c: RtpConfig) -> Result<core_::RtpConfig, Error> {
    Ok(core_::RtpConfig {
        settings: settings(c.settings)?,
        audio: audio_types(c.audio),
        telephone_event: c.telephone_event.map(event_type),
        red: c.red,
    })
}

fn audio_types(audio: Vec<AudioPayload>) -> Vec<core_::AudioType> {
    audio
        .into_iter()
        .map(|a| core_::AudioType {
            pt: a.pt,
            codec: codec(a.codec),
            rate: a.sample_rate,
        })
        .collect()
}

fn event_type(e: EventPayload) -> core_::EventType {
    core_::EventType {
        pt: e.pt,
        clock: e.clock_rate,
    }
}

impl RtpGuest for Plugin {
    type RtpSession = RtpSession;
}

impl GuestRtpSession for RtpSession {
    fn create(c: RtpConfig) -> Result<RtpSessionHandle, Error> {
        let s = core_::RtpSession::with_tables(rtp_config(c)?, tables())
            .map_err(|e| Error::BadConfig(e.to_string()))?;
        Ok(RtpSessionHandle::new(RtpSession(RefCell::new(s))))
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.0.borrow().poll_timeout()
    }

    fn drain_events(&self) -> Vec<DigitEvent> {
        let s = &mut self.0.borrow_mut();
        core::iter::from_fn(|| s.poll_event()).map(event).collect()
    }

    fn advance(&self, steps: Vec<u8>) -> RtpOutput {
        BATCH.with(|b| {
            let b = &mut b.borrow_mut();
            b.clear();
            let s = &mut self.0.borrow_mut();
            let taken = match core_::rtp::steps(&steps) {
                Ok(steps) => s.advance(steps, b),
                Err(e) => core_::rtp::Taken {
                    steps: 0,
                    refused: Some(e),
                },
            };
            let (events, captures) = s.waiting();
            let u32_of = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            // The steps' allocation carries the packets back (about as many bytes).
            let mut released = steps;
            released.clear();
            b.write_to(&mut released);
            RtpOutput {
                taken: u32_of(taken.steps),
                refused: taken.refused.map(error),
                released,
                events: u32_of(events),
                captures: u32_of(captures),
                next_timeout: s.poll_timeout(),
            }
        })
    }

    fn change_payload_types(
        &self,
        audio: Vec<AudioPayload>,
        telephone_event: Option<EventPayload>,
        red: Option<u8>,
    ) -> Result<(), Error> {
        self.0
            .borrow_mut()
            .change_payload_types(audio_types(audio), telephone_event.map(event_type), red)
            .map_err(|e| Error::BadConfig(e.to_string()))
    }

    fn start_capture(&self, request: CaptureRequest) -> Result<(), Error> {
        capture::start(self.0.borrow_mut().capture(), request)
    }

    fn cancel_capture(&self) -> bool {
        self.0.borrow_mut().capture().cancel()
    }

    fn rerequest_field(&self, field: CaptureField) -> bool {
        self.0
            .borrow_mut()
            .capture()
            .rerequest(capture::field(field))
    }

    fn note_agent_key(&self) -> bool {
        self.0.borrow_mut().capture().agent_key()
    }

    fn status_of_capture(&self) -> Option<CaptureStatus> {
        self.0.borrow_mut().capture().status().map(capture::status)
    }

    fn drain_captures(&self) -> Vec<CaptureEvent> {
        let s = &mut self.0.borrow_mut();
        core::iter::from_fn(|| s.poll_capture())
            .map(capture::event)
            .collect()
    }

    fn stats(&self) -> RtpStats {
        let s = self.0.borrow().stats();
        RtpStats {
            received: s.received,
            forwarded: s.forwarded,
            events_dropped: s.events_dropped,
            events_replaced: s.events_replaced,
            red_events_removed: s.red_events_removed,
            malformed: s.malformed,
            unknown_pt: s.unknown_pt,
            foreign_ssrc: s.foreign_ssrc,
            late: s.late,
            unprocessed: s.unprocessed,
        }
    }

    fn flush(&self) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = core_::rtp::Datagrams::new();
        self.0.borrow_mut().flush(&mut out).map_err(error)?;
        Ok(out.to_vecs())
    }

    fn start_record(&self) -> Option<String> {
        self.0.borrow().start_record().map(String::from)
    }

    fn end_record(&self) -> Option<String> {
        self.0.borrow().end_record().map(String::from)
    }
}
