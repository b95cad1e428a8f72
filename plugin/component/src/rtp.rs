//! The `rtp` interface: RTP sessions (only in the full plugin, feature `rtp`).

use crate::exports::tonemask::plugin::rtp::{
    Guest as RtpGuest, GuestRtpSession, RtpSession as RtpSessionHandle,
};
use crate::exports::tonemask::plugin::types::{DigitEvent, Error, RtpConfig, RtpStats};
use crate::{codec, error, event, settings, tables, Plugin};
use core::cell::RefCell;
use tonemask_core as core_;

/// One direction of an RTP call.
pub struct RtpSession(RefCell<core_::RtpSession>);

fn rtp_config(c: RtpConfig) -> Result<core_::RtpConfig, Error> {
    Ok(core_::RtpConfig {
        settings: settings(c.settings)?,
        audio: c
            .audio
            .into_iter()
            .map(|a| core_::AudioType {
                pt: a.pt,
                codec: codec(a.codec),
                rate: a.sample_rate,
            })
            .collect(),
        telephone_event: c.telephone_event.map(|e| core_::EventType {
            pt: e.pt,
            clock: e.clock_rate,
        }),
        red: c.red,
    })
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

    fn push(&self, now_ms: u64, packet: Vec<u8>) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        self.0
            .borrow_mut()
            .push(now_ms, &packet, &mut out)
            .map_err(error)?;
        Ok(out)
    }

    fn handle_timeout(&self, now_ms: u64) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        self.0
            .borrow_mut()
            .handle_timeout(now_ms, &mut out)
            .map_err(error)?;
        Ok(out)
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.0.borrow().poll_timeout()
    }

    fn drain_events(&self) -> Vec<DigitEvent> {
        let mut s = self.0.borrow_mut();
        core::iter::from_fn(|| s.poll_event()).map(event).collect()
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
        let mut out = Vec::new();
        self.0.borrow_mut().flush(&mut out).map_err(error)?;
        Ok(out)
    }
    fn end_record(&self) -> Option<String> {
        self.0.borrow().end_record().map(String::from)
    }
}
