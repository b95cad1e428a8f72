//! RTP sessions (`tonemask:plugin/rtp`): a typed handle and its methods.

use super::{
    plugin_error, CaptureEvent, CaptureRequest, CaptureStatus, DigitEvent, Instance, PluginError,
    RtpConfig, RtpOutput, RtpStats,
};
use anyhow::Result;
use wasmtime::component::ResourceAny;

/// An RTP session inside an instance (an `rtp-session` resource). Its methods are on
/// [`RtpSession`], from [`Instance::rtp`]; [`crate::stream::RtpStream`] wraps one in an
/// instance of its own.
#[derive(Clone, Copy, Debug)]
pub struct RtpHandle(ResourceAny);

/// An RTP session's calls, borrowed from its instance.
pub struct RtpSession<'a> {
    inst: &'a mut Instance,
    handle: RtpHandle,
}

impl Instance {
    /// Creates an RTP session; a refused configuration is an error naming the problem.
    pub fn create_rtp(&mut self, config: &RtpConfig) -> Result<RtpHandle> {
        match self.rtp_call("rtp create", 0, |g, st| g.call_create(st, config))? {
            Ok(r) => Ok(RtpHandle(r)),
            Err(e) => Err(plugin_error(e)),
        }
    }

    /// The calls of RTP session `handle` (created by this instance).
    pub fn rtp(&mut self, handle: RtpHandle) -> RtpSession<'_> {
        RtpSession { inst: self, handle }
    }
}

impl RtpSession<'_> {
    /// Moves the session on, in one crossing: `steps` in the flat form of
    /// [`crate::stream::put_step`] (each a host time, ms on a monotonic clock, and a packet
    /// or none) — each step's deadlines due by its time handled first, each at its own time,
    /// then its packet. Returns the packets to forward (flat: each with its step, and its
    /// deadline when one released it), how many events and capture records wait and the
    /// next deadline. It stops after a refused packet (`taken`, `refused`); a misused call
    /// (bytes that are not steps) is an error.
    pub fn advance(&mut self, steps: &[u8]) -> Result<RtpOutput> {
        let s = self.handle.0;
        // The packets' bytes, and room for one release of the look-ahead (as a timeout has).
        let size = steps.len().saturating_add(48_000);
        let mut out = self
            .inst
            .rtp_call("rtp advance", size, |g, st| g.call_advance(st, s, steps))?;
        match out.refused.take() {
            Some(e @ PluginError::Misuse(_)) => Err(plugin_error(e)),
            refused => {
                out.refused = refused;
                Ok(out)
            }
        }
    }

    /// When the session next wants [`RtpSession::advance`] without a packet, in host ms.
    pub fn poll_timeout(&mut self) -> Result<Option<u64>> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp poll-timeout", 0, |g, st| g.call_poll_timeout(st, s))
    }

    /// Completed digit events.
    pub fn drain_events(&mut self) -> Result<Vec<DigitEvent>> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp drain-events", 0, |g, st| g.call_drain_events(st, s))
    }

    /// The call's payload types changed (a re-negotiation): the session reads packets with
    /// `types` from now on. `Ok(Err(why))`: refused (nothing changes) — invalid, or the
    /// clock rates would change.
    pub fn change_payload_types(
        &mut self,
        types: &crate::sdp::PayloadTypes,
    ) -> Result<std::result::Result<(), String>> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp change-payload-types", 0, |g, st| {
                g.call_change_payload_types(st, s, &types.audio, types.telephone_event, types.red)
            })
            .map(|r| r.map_err(|e| plugin_error(e).to_string()))
    }

    /// Starts a card capture: the caller's presses from now on leave only as its progress.
    pub fn start_capture(&mut self, request: &CaptureRequest) -> Result<()> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp start-capture", 0, |g, st| {
                g.call_start_capture(st, s, request)
            })?
            .map_err(plugin_error)
    }

    /// Cancels the running capture; `false` when none runs.
    pub fn cancel_capture(&mut self) -> Result<bool> {
        let s = self.handle.0;
        self.inst.rtp_call("rtp cancel-capture", 0, |g, st| {
            g.call_cancel_capture(st, s)
        })
    }

    /// A key press on the agent's leg of this call: while a capture runs, the plugin records
    /// it (`agent-dtmf`); `false` when none runs.
    pub fn note_agent_key(&mut self) -> Result<bool> {
        let s = self.handle.0;
        self.inst.rtp_call("rtp note-agent-key", 0, |g, st| {
            g.call_note_agent_key(st, s)
        })
    }

    /// Where the running capture stands (`None` when none runs).
    pub fn status_of_capture(&mut self) -> Result<Option<CaptureStatus>> {
        let s = self.handle.0;
        self.inst.rtp_call("rtp status-of-capture", 0, |g, st| {
            g.call_status_of_capture(st, s)
        })
    }

    /// Capture records since the last call.
    pub fn drain_captures(&mut self) -> Result<Vec<CaptureEvent>> {
        let s = self.handle.0;
        self.inst.rtp_call("rtp drain-captures", 0, |g, st| {
            g.call_drain_captures(st, s)
        })
    }

    /// Counters so far.
    pub fn stats(&mut self) -> Result<RtpStats> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp stats", 0, |g, st| g.call_stats(st, s))
    }

    /// Ends the stream; returns the packets still delayed.
    pub fn flush(&mut self) -> Result<Vec<Vec<u8>>> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp flush", 48_000, |g, st| g.call_flush(st, s))?
            .map_err(plugin_error)
    }

    /// The signed start-of-call record (when the session has a key): the call's first line.
    pub fn start_record(&mut self) -> Result<Option<String>> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp start-record", 0, |g, st| g.call_start_record(st, s))
    }

    /// After a flush: the signed end-of-call record (when the session has a key).
    pub fn end_record(&mut self) -> Result<Option<String>> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp end-record", 0, |g, st| g.call_end_record(st, s))
    }

    /// Drops the session (its handle is dead afterwards).
    pub fn close(self) -> Result<()> {
        self.inst.drop_resource("rtp session drop", self.handle.0)
    }
}

/// All-zero counters (for a session whose instance trapped before it could report its own).
#[must_use]
pub fn no_stats() -> RtpStats {
    RtpStats {
        received: 0,
        forwarded: 0,
        events_dropped: 0,
        events_replaced: 0,
        red_events_removed: 0,
        malformed: 0,
        unknown_pt: 0,
        foreign_ssrc: 0,
        late: 0,
        unprocessed: 0,
    }
}

/// Packets an RTP session refused and dropped: malformed, on an unannounced payload type,
/// of a foreign SSRC, late, or not returned by the masker.
#[must_use]
pub fn refused(s: &RtpStats) -> u64 {
    s.malformed + s.unknown_pt + s.foreign_ssrc + s.late + s.unprocessed
}

/// The reason the plugin gave for refusing a packet (an [`RtpOutput`]'s `refused`).
#[must_use]
pub fn refusal(e: PluginError) -> String {
    match e {
        PluginError::BadPacket(m)
        | PluginError::BadFrame(m)
        | PluginError::BadConfig(m)
        | PluginError::Misuse(m) => m,
    }
}
