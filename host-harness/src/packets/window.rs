//! A capture through the plugin a window of frames at a time: each stream's steps of the
//! window in one crossing ([`RtpStream::advance`](crate::stream::RtpStream::advance))
//! instead of one crossing per packet and per deadline.
//!
//! It is the frame-by-frame run, reordered: frame by frame, capture time reaching a frame
//! fires every stream's due deadlines, then the frame goes on, into its stream, or nowhere.
//! Here each stream gets one step per frame of the window from its first packet on — the
//! frame's time, and the frame's packet when it is the stream's — so its session sees the
//! very same calls; the packets released are then put out in frame order: at each frame,
//! every stream's deadline releases (streams in order), then what the frame itself gave.
//! The output capture, the events and the counters are the same (tests hold it to that);
//! only a trap differs — the packets its crossing would have released are lost as well.
//!
//! The agent's key presses reach the caller's session only frame by frame, so a run with
//! a card capture planned goes frame by frame.

use super::{CaptureRun, Routed};
use crate::capture::Frame;
use crate::stream::put_step;
use anyhow::Result;
use std::time::Duration;

/// Frames per window: long enough that a crossing carries many packets, short enough that
/// its buffers stay small.
pub(super) const FRAMES: usize = 256;

/// One frame of a window: its index, capture time (ms) and where it goes.
pub(super) type Step<'f> = (usize, u64, Routed<'f>);

/// Where each stream stood when a window began.
pub(super) struct Start {
    /// Streams open then (later ones opened in the window).
    streams: usize,
    /// Each one's latest frame (its released packets' headers).
    templates: Vec<usize>,
}

impl<'a> CaptureRun<'a> {
    /// Where the streams stand before the window's first frame is routed.
    pub(super) fn window_start(&self) -> Start {
        Start {
            streams: self.streams.len(),
            templates: self.streams.iter().map(|s| s.template).collect(),
        }
    }

    /// Runs the window's frames (routed since `start`) through their streams and puts out
    /// what they released, in frame order.
    pub(super) fn run_window(&mut self, start: &Start, window: &[Step<'a>]) -> Result<()> {
        let Some(&(_, last_ms, _)) = window.last() else {
            return Ok(());
        };
        let capture = self.capture;
        let frames = &capture.frames;
        let mut released = Vec::with_capacity(self.streams.len());
        let mut steps = Vec::new();
        for (si, s) in self.streams.iter_mut().enumerate() {
            let own = |&(_, _, r): &Step<'_>| matches!(r, Routed::Rtp(i, _) if i == si);
            // A stream opened in the window steps from its first packet on.
            let first = if si < start.streams {
                0
            } else {
                window.iter().position(own).unwrap_or(window.len())
            };
            let has_packets = window[first..].iter().any(own);
            let due = s.call.next_timeout().is_some_and(|t| t <= last_ms);
            if !has_packets && !due {
                // Nothing falls due and nothing comes: the steps would do nothing.
                released.push((first, Default::default()));
                continue;
            }
            steps.clear();
            for &(_, now_ms, r) in &window[first..] {
                let packet = match r {
                    Routed::Rtp(i, dg) if i == si => dg.payload,
                    _ => &[],
                };
                put_step(&mut steps, now_ms, packet)?;
            }
            let out = s.call.advance(&steps);
            for (_, reason) in &out.refused {
                s.refuse(reason);
            }
            s.collect(last_ms);
            released.push((first, out));
        }
        let mut next: Vec<_> = released
            .iter()
            .map(|(first, out)| (*first, out.iter().peekable()))
            .collect();
        let mut templates = start.templates.clone();
        templates.resize(self.streams.len(), 0);
        for (k, &(fi, _, routed)) in window.iter().enumerate() {
            for (si, (first, packets)) in next.iter_mut().enumerate() {
                let template = &frames[templates[si]];
                while let Some((_, Some(due), p)) =
                    packets.next_if(|&(step, due, _)| due.is_some() && step + *first == k)
                {
                    if let Some(dg) = template.datagram() {
                        self.sink
                            .put_with_payload(template, &dg, p, Duration::from_millis(due))?;
                    }
                }
            }
            let frame: &Frame = &frames[fi];
            match routed {
                Routed::Pass => self.sink.put(frame.clone())?,
                Routed::Dropped => {}
                Routed::Rtp(si, dg) => {
                    let (first, packets) = &mut next[si];
                    let first = *first;
                    while let Some((_, _, p)) =
                        packets.next_if(|&(step, due, _)| due.is_none() && step + first == k)
                    {
                        self.sink.put_with_payload(frame, &dg, p, frame.ts)?;
                    }
                    templates[si] = fi;
                }
            }
        }
        Ok(())
    }
}
