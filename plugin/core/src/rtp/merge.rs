//! One press, two copies: a key sent both as tones and as telephone-events is reported once,
//! with source [`Source::Both`].
//!
//! Presses wait here until the media clock has passed their end by [`WINDOW_MS`] — the
//! in-band copy is confirmed ≈ 40 ms after its tone ends, the event copy when its end packet
//! arrives — and are released in order of their start.

use crate::event::Source;
use crate::report::Press;
use alloc::vec::Vec;

/// How long a press waits for its other copy, ms of media time after its end.
pub const WINDOW_MS: u64 = 250;
/// Copies whose spans are this close (ms) are the same press.
const SLACK_MS: u64 = 60;

/// Presses waiting for a possible second copy.
#[derive(Debug, Default)]
pub struct Merger {
    pending: Vec<Press>,
}

impl Merger {
    /// Adds a press from one source, merging it with a waiting copy from the other.
    pub fn add(&mut self, p: Press) {
        let twin = self.pending.iter_mut().find(|q| {
            q.digit == p.digit
                && q.source != p.source
                && q.source != Source::Both
                && q.start_ms <= p.end_ms.saturating_add(SLACK_MS)
                && p.start_ms <= q.end_ms.saturating_add(SLACK_MS)
        });
        match twin {
            Some(q) => {
                q.source = Source::Both;
                q.start_ms = q.start_ms.min(p.start_ms);
                q.end_ms = q.end_ms.max(p.end_ms);
                q.detected_ms = q.detected_ms.min(p.detected_ms);
                q.leaked_samples += p.leaked_samples;
            }
            None => self.pending.push(p),
        }
    }

    /// The media time after which [`Merger::release`] releases the first waiting press.
    #[must_use]
    pub fn deadline(&self) -> Option<u64> {
        self.pending
            .iter()
            .map(|p| p.end_ms.saturating_add(WINDOW_MS).saturating_add(1))
            .min()
    }

    /// Releases, oldest first, the presses whose window closed before media time `now_ms`
    /// (all of them when `now_ms` is `u64::MAX`).
    pub fn release(&mut self, now_ms: u64, mut out: impl FnMut(Press)) {
        if self.pending.is_empty() {
            return;
        }
        // In place: this runs for every packet while a press waits (a new list each time
        // was an allocation per packet). A stable insertion sort by start: a handful of
        // presses, and no library sort in the plugin for it (3 KB of code).
        let p = &mut self.pending;
        for i in 1..p.len() {
            let mut j = i;
            while j > 0 && p[j - 1].start_ms > p[j].start_ms {
                p.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].end_ms.saturating_add(WINDOW_MS) < now_ms {
                out(self.pending.remove(i));
            } else {
                i += 1;
            }
        }
        if self.pending.is_empty() {
            // Nothing kept between presses (thousands of sessions share an instance).
            self.pending = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digit::Digit;
    use alloc::vec;

    fn press(c: char, start_ms: u64, end_ms: u64, source: Source) -> Press {
        Press {
            digit: Digit::from_char(c).unwrap(),
            start_ms,
            end_ms,
            detected_ms: start_ms + 26,
            source,
            leaked_samples: 0,
        }
    }

    fn released(m: &mut Merger, now: u64) -> Vec<Press> {
        let mut v = vec![];
        m.release(now, |p| v.push(p));
        v
    }

    #[test]
    fn tone_and_event_copies_of_a_press_are_one_press() {
        let mut m = Merger::default();
        m.add(press('5', 1000, 1080, Source::Rfc4733));
        m.add(press('5', 1002, 1079, Source::Inband));
        assert!(released(&mut m, 1300).is_empty(), "window still open");
        let v = released(&mut m, 1400);
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].source, v[0].start_ms, v[0].end_ms),
            (Source::Both, 1000, 1080)
        );
    }

    #[test]
    fn presses_leave_in_order_of_start_and_equal_starts_in_order_of_arrival() {
        let mut m = Merger::default();
        for (c, start) in [('3', 900), ('1', 100), ('2', 500), ('4', 100), ('5', 500)] {
            m.add(press(c, start, start + 60, Source::Inband));
        }
        let order: Vec<char> = released(&mut m, u64::MAX)
            .iter()
            .map(|p| p.digit.to_char())
            .collect();
        assert_eq!(order, ['1', '4', '2', '5', '3']);
    }

    #[test]
    fn different_keys_or_times_stay_apart() {
        let mut m = Merger::default();
        m.add(press('5', 1000, 1080, Source::Rfc4733));
        m.add(press('6', 1000, 1080, Source::Inband));
        m.add(press('5', 1300, 1380, Source::Inband));
        let v = released(&mut m, u64::MAX);
        assert_eq!(v.len(), 3);
        assert!(v.iter().all(|p| p.source != Source::Both));
        assert!(v.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
    }
}
