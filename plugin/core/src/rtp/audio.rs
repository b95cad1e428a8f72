//! Audio packets through the pipeline: lost packets fed as silence, restarts, late packets,
//! and in-band presses to the merger — a press cut by an idle flush waiting for the rest of
//! it ([`super::stall`]).

use super::config::AudioType;
use super::datagrams::Datagrams;
use super::merge::Merger;
use super::packet::Packet;
use super::pipeline::Pipeline;
use super::refill::Redundant;
use super::stall::Stall;
use super::timeline::Timeline;
use super::{RtpError, RtpSession, MAX_GAP_S};
use crate::error::FrameError;
use crate::event::Source;
use crate::report::Press;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Why a pipeline's audio is collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// It goes on.
    Running,
    /// No packet came for the idle timeout: a press still on may go on when packets resume.
    Idle,
    /// Another pipeline takes over on the same stream (a press cut by a stall is settled when
    /// it starts).
    Restart,
    /// The stream ends (flush) or changes source: a press cut by a stall is released.
    Final,
}

impl RtpSession {
    /// An audio packet (or a RED packet's primary audio block).
    pub(super) fn audio(
        &mut self,
        p: &Packet<'_>,
        a: AudioType,
        payload: &[u8],
        red: Option<Vec<Redundant>>,
        out: &mut Datagrams,
    ) -> Result<(), RtpError> {
        let bps = a.codec.bytes_per_sample();
        if payload.is_empty() {
            return Err(RtpError::EmptyAudio);
        }
        if !payload.len().is_multiple_of(bps) {
            return Err(RtpError::Audio(FrameError::PartialSample));
        }
        let ext = self.extend(p, out);
        self.replacer.audio_arrived(p.ssrc(), ext);
        let max_gap = u64::from(MAX_GAP_S * a.rate);
        let restart = match &self.pipeline {
            None => true,
            Some(pl) => {
                pl.audio != a
                    || ext > pl.next.saturating_add(max_gap)
                    || ext.saturating_add(max_gap) < pl.next
            }
        };
        if restart {
            self.end_pipeline(out, End::Restart);
            self.start_pipeline(a, ext);
        }
        let Some(pl) = &mut self.pipeline else {
            // No masker (its configuration was validated, so never expected): dropped, counted.
            self.stats.unprocessed += 1;
            return Ok(());
        };
        if ext < pl.next {
            // Its time was filled as lost (the receiver sees the same hole in the sequence).
            self.stats.late += 1;
            return Ok(());
        }
        let gap = (ext - pl.next) as usize;
        if gap > 0 {
            let silence = [a.codec.encode(0)];
            self.scratch.clear();
            for _ in 0..gap {
                a.codec.write_units(&silence, &mut self.scratch);
            }
            let input = core::mem::take(&mut self.scratch);
            self.feed(&input);
            self.scratch = input;
            self.outbox.gap(gap, bps);
        }
        self.feed(payload);
        let units = payload.len() / bps;
        if let Some(pl) = &mut self.pipeline {
            pl.next = ext.saturating_add(units as u64);
        }
        self.outbox.audio(p, a, ext, units, red);
        Ok(())
    }

    fn start_pipeline(&mut self, a: AudioType, ext: u64) {
        self.outbox.restart(ext);
        self.pipeline = Pipeline::new(self.config.session(a), Arc::clone(&self.tables), a, ext);
        let merger = &mut self.merger;
        let origin = self.timeline.ms_at(ext, a.rate);
        self.stall.pipeline_started(ext, origin, |p| merger.add(p));
    }

    /// Flushes the masker, sends every packet it held, and reports its last digits — after
    /// an idle timeout, a press still on waits for the rest of it ([`stall`]).
    pub(super) fn end_pipeline(&mut self, out: &mut Datagrams, end: End) {
        if let Some(mut pl) = self.pipeline.take() {
            pl.flush(&mut self.outbox);
            collect_inband(
                &mut pl,
                &self.timeline,
                &mut self.stall,
                &mut self.merger,
                end,
            );
            self.outbox.drain(out, &mut self.stats);
        }
        if end == End::Final {
            let merger = &mut self.merger;
            self.stall.release(|p| merger.add(p));
        }
        // Whatever could not be completed (nothing, unless the masker failed) is dropped and
        // counted: audio the masker did not return is never sent.
        self.outbox.abandon(out, &mut self.stats);
    }

    /// Runs `input` through the pipeline's masker (in place: the pipeline is large, and
    /// moving it out and back cost two copies of it per packet).
    pub(super) fn feed(&mut self, input: &[u8]) {
        let Some(pl) = self.pipeline.as_mut() else {
            return;
        };
        pl.feed(input, &mut self.outbox);
        let merger = &mut self.merger;
        collect_inband(pl, &self.timeline, &mut self.stall, merger, End::Running);
        self.stall
            .settle(pl.fed_ms(), pl.digit_on(), |p| merger.add(p));
    }
}

/// Moves the pipeline's in-band digits to the merger, in media time (a continuation of a
/// press cut by a stall joins it; a press cut by the idle flush `end` waits for its own).
fn collect_inband(
    pl: &mut Pipeline,
    timeline: &Timeline,
    stall: &mut Stall,
    merger: &mut Merger,
    end: End,
) {
    let origin = timeline.ms_at(pl.ts_origin, pl.audio.rate);
    while let Some(e) = pl.poll_event() {
        let press = stall.inband(
            Press {
                digit: e.event.digit,
                start_ms: origin.saturating_add(e.event.start_ms),
                end_ms: origin.saturating_add(e.event.end_ms),
                detected_ms: origin.saturating_add(e.event.detected_ms),
                source: Source::Inband,
                leaked_samples: e.leaked_samples,
            },
            |p| merger.add(p),
        );
        if end == End::Idle && e.event.end_ms >= pl.fed_ms() {
            stall.hold(press, pl.next, |p| merger.add(p));
        } else {
            merger.add(press);
        }
    }
}
