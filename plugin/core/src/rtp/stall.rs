//! A press cut by an idle flush, waiting for the rest of it.
//!
//! When no packet comes for longer than the idle timeout, the masker is flushed so that the
//! audio it held leaves ([`super::clock`]); a press still on is cut at the last sample. If the
//! quiet was the network holding packets back, they come later with contiguous timestamps and
//! the tone goes on in a fresh pipeline, which finds it again from its first sample: one press,
//! which must be reported once. The cut press waits here; a press of the same key that the
//! resumed pipeline finds from its first sample is its continuation, and the two are reported
//! as one. A cut press whose stream does not resume where it stopped, or resumes without the
//! tone, is released as it is.

use crate::digit::Digit;
use crate::report::Press;

/// How long a cut press waits for its stream to come back, ms of media time after its end
/// (media time runs on with host time while no packet comes).
pub const RESUME_WAIT_MS: u64 = 2_000;
/// A press the resumed pipeline found starting this close to its first sample (ms) is the
/// continuation (its edges are refined to the sample; 15 ms is one analysis window and more).
const CONTINUE_SLACK_MS: u64 = 15;
/// Media (ms) by which a resumed pipeline has confirmed a tone going on from its first sample
/// (three windows, ≈ 26 ms, with margin).
const CONFIRM_MS: u64 = 60;

/// At most one press cut by an idle flush.
#[derive(Debug, Default)]
pub struct Stall {
    held: Option<Held>,
}

#[derive(Debug)]
struct Held {
    press: Press,
    /// Extended timestamp at which its continuation would start.
    next_ext: u64,
    /// Media time (ms) of the first sample of the pipeline that resumed there, if one has.
    resumed: Option<u64>,
}

impl Stall {
    /// Holds `press`, cut where extended timestamp `next_ext` would have come next.
    pub fn hold(&mut self, press: Press, next_ext: u64, mut release: impl FnMut(Press)) {
        if let Some(h) = self.held.take() {
            release(h.press);
        }
        self.held = Some(Held {
            press,
            next_ext,
            resumed: None,
        });
    }

    /// A pipeline starts at extended timestamp `ext` (media time `origin_ms`): if that is
    /// where the cut press stopped, it may go on there; otherwise it is released.
    pub fn pipeline_started(&mut self, ext: u64, origin_ms: u64, release: impl FnMut(Press)) {
        match &mut self.held {
            Some(h) if h.resumed.is_none() && h.next_ext == ext => h.resumed = Some(origin_ms),
            _ => self.release(release),
        }
    }

    /// An in-band press `p` of the current pipeline: the held press and `p` merged when `p`
    /// continues it; otherwise the held press is released first, then `p` is returned.
    pub fn inband(&mut self, p: Press, release: impl FnMut(Press)) -> Press {
        let Some(h) = self.held.take_if(|h| {
            h.resumed.is_some_and(|origin| {
                h.press.digit == p.digit && p.start_ms <= origin.saturating_add(CONTINUE_SLACK_MS)
            })
        }) else {
            self.release(release);
            return p;
        };
        Press {
            end_ms: p.end_ms.max(h.press.end_ms),
            leaked_samples: h.press.leaked_samples.saturating_add(p.leaked_samples),
            ..h.press
        }
    }

    /// After a packet: a resumed pipeline that has taken `fed_ms` of media and has no press
    /// of the held key on did not get the tone back — the held press is released.
    pub fn settle(&mut self, fed_ms: u64, digit_on: Option<Digit>, release: impl FnMut(Press)) {
        if let Some(h) = &self.held {
            if h.resumed.is_some() && fed_ms >= CONFIRM_MS && digit_on != Some(h.press.digit) {
                self.release(release);
            }
        }
    }

    /// Media time (ms) at which a press still waiting for its stream is released.
    #[must_use]
    pub fn deadline(&self) -> Option<u64> {
        self.held
            .as_ref()
            .filter(|h| h.resumed.is_none())
            .map(|h| h.press.end_ms.saturating_add(RESUME_WAIT_MS))
    }

    /// Media time `now_ms` has come: a press that waited long enough is released.
    pub fn expire(&mut self, now_ms: u64, release: impl FnMut(Press)) {
        if self.deadline().is_some_and(|d| now_ms >= d) {
            self.release(release);
        }
    }

    /// Releases the held press, if any.
    pub fn release(&mut self, mut release: impl FnMut(Press)) {
        if let Some(h) = self.held.take() {
            release(h.press);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;
    use alloc::vec::Vec;

    fn press(c: char, start_ms: u64, end_ms: u64) -> Press {
        Press {
            digit: Digit::from_char(c).unwrap(),
            start_ms,
            end_ms,
            detected_ms: start_ms + 30,
            source: Source::Inband,
            leaked_samples: 0,
        }
    }

    #[test]
    fn a_press_found_again_from_the_resumed_first_sample_is_one_press() {
        let mut s = Stall::default();
        let mut out = Vec::new();
        s.hold(press('5', 200, 360), 2880, |p| out.push(p));
        assert_eq!(s.deadline(), Some(2_360));
        s.pipeline_started(2880, 360, |p| out.push(p));
        assert_eq!(s.deadline(), None, "resumed: waits for the pipeline");
        s.settle(100, Some(Digit::from_char('5').unwrap()), |p| out.push(p));
        let merged = s.inband(press('5', 360, 600), |p| out.push(p));
        assert!(out.is_empty());
        assert_eq!(
            (merged.start_ms, merged.end_ms, merged.detected_ms),
            (200, 600, 230)
        );
    }

    #[test]
    fn a_cut_press_is_released_when_its_stream_does_not_go_on_with_it() {
        let five = || press('5', 200, 360);
        // Resumed elsewhere on the timeline.
        let mut s = Stall::default();
        let mut out = Vec::new();
        s.hold(five(), 2880, |p| out.push(p));
        s.pipeline_started(4000, 500, |p| out.push(p));
        assert_eq!(out.len(), 1);
        // Resumed where it stopped, but without the tone.
        s.hold(five(), 2880, |p| out.push(p));
        s.pipeline_started(2880, 360, |p| out.push(p));
        s.settle(40, None, |p| out.push(p));
        assert_eq!(out.len(), 1, "too early to tell");
        s.settle(60, None, |p| out.push(p));
        assert_eq!(out.len(), 2);
        // Resumed with another key, or the same key pressed again later.
        for next in [press('6', 360, 500), press('5', 420, 500)] {
            s.hold(five(), 2880, |p| out.push(p));
            s.pipeline_started(2880, 360, |p| out.push(p));
            let n = out.len();
            let p = s.inband(next, |p| out.push(p));
            assert_eq!((out.len(), p), (n + 1, next));
        }
        // Never resumed: released once media time has run past the wait.
        s.hold(five(), 2880, |p| out.push(p));
        let n = out.len();
        s.expire(2_359, |p| out.push(p));
        assert_eq!(out.len(), n);
        s.expire(2_360, |p| out.push(p));
        assert_eq!(out.len(), n + 1);
    }
}
