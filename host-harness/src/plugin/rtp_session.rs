//! RTP sessions (`tonemask:plugin/rtp`): a typed handle and its methods.

use super::{
    plugin_error, CaptureEvent, CaptureRequest, CaptureStatus, DigitEvent, Instance, PluginError,
    RtpConfig, RtpStats,
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
    /// Pushes one packet that arrived at host time `now_ms` (ms on a monotonic clock).
    /// `Ok(Err(reason))`: the plugin refused (and dropped) the packet.
    pub fn push(
        &mut self,
        now_ms: u64,
        packet: &[u8],
    ) -> Result<std::result::Result<Vec<Vec<u8>>, String>> {
        let s = self.handle.0;
        match self.inst.rtp_call("rtp push", packet.len(), |g, st| {
            g.call_push(st, s, now_ms, packet)
        })? {
            Ok(out) => Ok(Ok(out)),
            // Misuse is the host's bug, not a packet the caller sent: an error, not a refusal.
            Err(e @ PluginError::Misuse(_)) => Err(plugin_error(e)),
            Err(
                PluginError::BadPacket(m) | PluginError::BadFrame(m) | PluginError::BadConfig(m),
            ) => Ok(Err(m)),
        }
    }

    /// Host time `now_ms` has come without a packet: returns the packets that became due
    /// (audio held for the look-ahead, once the stream is idle).
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<Vec<Vec<u8>>> {
        let s = self.handle.0;
        self.inst
            .rtp_call("rtp handle-timeout", 48_000, |g, st| {
                g.call_handle_timeout(st, s, now_ms)
            })?
            .map_err(plugin_error)
    }

    /// When the session next wants [`RtpSession::handle_timeout`], in host ms.
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
