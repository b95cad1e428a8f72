//! Audio-frame sessions (`tonemask:plugin/masking`): a typed handle and its methods.

use super::{
    plugin_error, CaptureEvent, CaptureField, CaptureRequest, CaptureStatus, DigitEvent, Instance,
    SessionConfig,
};
use anyhow::Result;
use wasmtime::component::ResourceAny;

/// An audio session inside an instance (a `session` resource). Its methods are on
/// [`AudioSession`], from [`Instance::audio`].
#[derive(Clone, Copy, Debug)]
pub struct AudioHandle(ResourceAny);

/// An audio session's calls, borrowed from its instance.
pub struct AudioSession<'a> {
    inst: &'a mut Instance,
    handle: AudioHandle,
}

impl Instance {
    /// Creates an audio session; a refused configuration is an error naming the problem.
    pub fn create_audio(&mut self, config: &SessionConfig) -> Result<AudioHandle> {
        match self.masking_call("create", 0, |g, st| g.call_create(st, config))? {
            Ok(r) => Ok(AudioHandle(r)),
            Err(e) => Err(plugin_error(e)),
        }
    }

    /// The calls of audio session `handle` (created by this instance).
    pub fn audio(&mut self, handle: AudioHandle) -> AudioSession<'_> {
        AudioSession { inst: self, handle }
    }
}

impl AudioSession<'_> {
    /// The session's look-ahead in samples.
    pub fn delay_samples(&mut self) -> Result<u32> {
        let s = self.handle.0;
        self.inst
            .masking_call("delay-samples", 0, |g, st| g.call_delay_samples(st, s))
    }

    /// Processes a frame of wire bytes.
    pub fn process(&mut self, frame: &[u8]) -> Result<Vec<u8>> {
        let s = self.handle.0;
        self.inst
            .masking_call("process", frame.len(), |g, st| g.call_process(st, s, frame))?
            .map_err(plugin_error)
    }

    /// Processes a frame of linear samples.
    pub fn process_samples(&mut self, frame: &[i16]) -> Result<Vec<i16>> {
        let s = self.handle.0;
        self.inst
            .masking_call("process-samples", frame.len(), |g, st| {
                g.call_process_samples(st, s, frame)
            })?
            .map_err(plugin_error)
    }

    /// Takes a frame of wire bytes for detection only: the same digit events as
    /// [`AudioSession::process`], no audio back. A session detects only or processes (its
    /// first frame decides), and one that detects only gives no audio when flushed.
    pub fn detect(&mut self, frame: &[u8]) -> Result<()> {
        let s = self.handle.0;
        self.inst
            .masking_call("detect", frame.len(), |g, st| g.call_detect(st, s, frame))?
            .map_err(plugin_error)
    }

    /// As [`AudioSession::detect`], for a frame of linear samples.
    pub fn detect_samples(&mut self, frame: &[i16]) -> Result<()> {
        let s = self.handle.0;
        self.inst
            .masking_call("detect-samples", frame.len(), |g, st| {
                g.call_detect_samples(st, s, frame)
            })?
            .map_err(plugin_error)
    }

    /// Processes a frame of wire bytes that arrived at host time `now_ms` (a live host's
    /// clock, ms; only differences matter), so that [`AudioSession::handle_timeout`] can
    /// complete a press when frames stop.
    pub fn process_at(&mut self, now_ms: u64, frame: &[u8]) -> Result<Vec<u8>> {
        let s = self.handle.0;
        self.inst
            .masking_call("process-at", frame.len(), |g, st| {
                g.call_process_at(st, s, now_ms, frame)
            })?
            .map_err(plugin_error)
    }

    /// Processes a frame of linear samples that arrived at host time `now_ms`.
    pub fn process_samples_at(&mut self, now_ms: u64, frame: &[i16]) -> Result<Vec<i16>> {
        let s = self.handle.0;
        self.inst
            .masking_call("process-samples-at", frame.len(), |g, st| {
                g.call_process_samples_at(st, s, now_ms, frame)
            })?
            .map_err(plugin_error)
    }

    /// Host time `now_ms` has come without a frame: a press still on once frames have
    /// stopped for the look-ahead + 100 ms is reported (see [`AudioSession::poll_timeout`]).
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<()> {
        let s = self.handle.0;
        self.inst
            .masking_call("handle-timeout", 0, |g, st| {
                g.call_handle_timeout(st, s, now_ms)
            })?
            .map_err(plugin_error)
    }

    /// When [`AudioSession::handle_timeout`] has something to do if no frame comes first.
    pub fn poll_timeout(&mut self) -> Result<Option<u64>> {
        let s = self.handle.0;
        self.inst
            .masking_call("poll-timeout", 0, |g, st| g.call_poll_timeout(st, s))
    }

    /// Completed digit events.
    pub fn drain_events(&mut self) -> Result<Vec<DigitEvent>> {
        let s = self.handle.0;
        self.inst
            .masking_call("drain-events", 0, |g, st| g.call_drain_events(st, s))
    }

    /// Starts a card capture: the caller's presses from now on leave only as its progress.
    pub fn start_capture(&mut self, request: &CaptureRequest) -> Result<()> {
        let s = self.handle.0;
        self.inst
            .masking_call("start-capture", 0, |g, st| {
                g.call_start_capture(st, s, request)
            })?
            .map_err(plugin_error)
    }

    /// Cancels the running capture; `false` when none runs.
    pub fn cancel_capture(&mut self) -> Result<bool> {
        let s = self.handle.0;
        self.inst
            .masking_call("cancel-capture", 0, |g, st| g.call_cancel_capture(st, s))
    }

    /// Asks `field` of the running capture again; `false` when none runs.
    pub fn rerequest_field(&mut self, field: CaptureField) -> Result<bool> {
        let s = self.handle.0;
        self.inst.masking_call("rerequest-field", 0, |g, st| {
            g.call_rerequest_field(st, s, field)
        })
    }

    /// A key press on the agent's leg of this call: while a capture runs, the plugin records
    /// it (`agent-dtmf`); `false` when none runs.
    pub fn note_agent_key(&mut self) -> Result<bool> {
        let s = self.handle.0;
        self.inst
            .masking_call("note-agent-key", 0, |g, st| g.call_note_agent_key(st, s))
    }

    /// Where the running capture stands (`None` when none runs).
    pub fn status_of_capture(&mut self) -> Result<Option<CaptureStatus>> {
        let s = self.handle.0;
        self.inst.masking_call("status-of-capture", 0, |g, st| {
            g.call_status_of_capture(st, s)
        })
    }

    /// Capture records since the last call.
    pub fn drain_captures(&mut self) -> Result<Vec<CaptureEvent>> {
        let s = self.handle.0;
        self.inst
            .masking_call("drain-captures", 0, |g, st| g.call_drain_captures(st, s))
    }

    /// Ends the stream; returns the look-ahead's worth of wire bytes.
    pub fn flush(&mut self) -> Result<Vec<u8>> {
        let s = self.handle.0;
        self.inst
            .masking_call("flush", 48_000, |g, st| g.call_flush(st, s))?
            .map_err(plugin_error)
    }

    /// Ends the stream (L16); returns the look-ahead's worth of samples.
    pub fn flush_samples(&mut self) -> Result<Vec<i16>> {
        let s = self.handle.0;
        self.inst
            .masking_call("flush-samples", 48_000, |g, st| g.call_flush_samples(st, s))?
            .map_err(plugin_error)
    }

    /// The signed start-of-call record (when the session has a key): the call's first line.
    pub fn start_record(&mut self) -> Result<Option<String>> {
        let s = self.handle.0;
        self.inst
            .masking_call("start-record", 0, |g, st| g.call_start_record(st, s))
    }

    /// After a flush: the signed end-of-call record (when the session has a key).
    pub fn end_record(&mut self) -> Result<Option<String>> {
        let s = self.handle.0;
        self.inst
            .masking_call("end-record", 0, |g, st| g.call_end_record(st, s))
    }

    /// Drops the session (its handle is dead afterwards).
    pub fn close(self) -> Result<()> {
        self.inst.drop_resource("session drop", self.handle.0)
    }
}
