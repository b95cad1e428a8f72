//! Audio-frame sessions (`tonemask:plugin/masking`): a typed handle and its methods.

use super::{plugin_error, DigitEvent, Instance, SessionConfig};
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

    /// Completed digit events.
    pub fn drain_events(&mut self) -> Result<Vec<DigitEvent>> {
        let s = self.handle.0;
        self.inst
            .masking_call("drain-events", 0, |g, st| g.call_drain_events(st, s))
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
