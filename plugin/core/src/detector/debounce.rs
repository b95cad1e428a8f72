//! Debouncing per-window verdicts into digits (after spandsp's hit-pattern rules).
//!
//! | pattern of windows                          | result                                  |
//! |---------------------------------------------|-----------------------------------------|
//! | `presence` consecutive hits of one digit    | digit **starts** (edge refined)         |
//! | … of which two or more weak                 | starts after `weak_presence` hits, single misses bridged |
//! | `absence` consecutive windows without it    | digit **ends** (edge refined)           |
//! | fewer misses, then hits again               | dropout bridged                         |
//! | `presence` consecutive hits of another digit| first digit ends, the other starts      |

use super::history::{EdgeRule, History, Level};
use super::Transition;
use crate::digit::Digit;
use alloc::collections::VecDeque;

/// What a debouncer's spans mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    /// Digits to report (strict verdicts): `Started` / `Ended`.
    Digits,
    /// Audio to mask (permissive verdicts): `MaskFrom` / `MaskUntil`.
    Mask,
}

/// A run of consecutive hit windows of one digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    digit: Digit,
    /// Index of the first half-block of the first hit window.
    first: u64,
    hits: u8,
    /// Hits that were weak evidence (see [`Debouncer::step`]).
    weak: u8,
    /// The last window was a miss, bridged (a run needing `weak_presence` hits may skip
    /// one window at a time: at the edge of two clauses, a tone's windows fall either side
    /// of it).
    gap: bool,
}

/// A confirmed digit, while it lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
struct OnDigit {
    digit: Digit,
    /// First sample (refined edge).
    start: u64,
    /// Sample count at confirmation.
    detected_at: u64,
    /// Index of the second half-block of the last hit window.
    last_hit: u64,
    level: Level,
    /// Already reported, cut at the end of the stream so far ([`Debouncer::cut`]): its real
    /// end, when it comes, is not reported again.
    cut: bool,
}

/// What the debouncer waits for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Waiting for a window that looks like a digit.
    Idle,
    /// Waiting for enough consecutive hits to confirm `run`.
    Rising(Run),
    /// A digit is on; waiting for enough misses (or a rival digit's run) to end it.
    Active {
        on: OnDigit,
        misses: u8,
        rival: Option<Run>,
    },
}

/// One debouncer over a stream of window verdicts.
pub struct Debouncer {
    track: Track,
    presence: u8,
    /// Consecutive hits that confirm a run with two or more weak hits.
    weak_presence: u8,
    absence: u8,
    edges: EdgeRule,
    state: State,
}

impl Debouncer {
    /// A debouncer that confirms after `presence` consecutive hits, ends after `absence`
    /// consecutive misses, and refines edges by `edges`.
    #[must_use]
    pub fn new(track: Track, presence: u8, absence: u8, edges: EdgeRule) -> Debouncer {
        Debouncer {
            track,
            presence,
            weak_presence: presence,
            absence,
            edges,
            state: State::Idle,
        }
    }

    /// The same, but a run with two or more weak hits needs `weak_presence` of them.
    #[must_use]
    pub fn with_weak_presence(self, weak_presence: u8) -> Debouncer {
        Debouncer {
            weak_presence: weak_presence.max(self.presence),
            ..self
        }
    }

    /// Consecutive hits that confirm `run`.
    fn needed(&self, run: &Run) -> u8 {
        if run.weak >= 2 {
            self.weak_presence
        } else {
            self.presence
        }
    }

    /// The digit whose span is on and not yet reported (not [cut](Debouncer::cut)), if any.
    #[must_use]
    pub fn active(&self) -> Option<Digit> {
        match self.state {
            State::Active { on, .. } if !on.cut => Some(on.digit),
            State::Idle | State::Rising(_) | State::Active { .. } => None,
        }
    }

    /// The input has stopped for a while: the span still on ends at sample `end` now. The
    /// debouncer goes on as if it were still on (the same tone resuming extends it), but its
    /// real end is not reported again.
    pub fn cut(&mut self, end: u64, out: &mut VecDeque<Transition>) {
        if let State::Active { on, misses, rival } = self.state {
            if !on.cut {
                out.push_back(self.ended(on, end));
                self.state = State::Active {
                    on: OnDigit { cut: true, ..on },
                    misses,
                    rival,
                };
            }
        }
    }

    /// The digit a run of hits is building towards (not yet confirmed), if any.
    #[must_use]
    pub fn rising(&self) -> Option<Digit> {
        match self.state {
            State::Rising(run) => Some(run.digit),
            State::Idle | State::Active { .. } => None,
        }
    }

    /// Advances with the verdict of the window ending at half-block `now`; a `weak` hit is
    /// one near the edge of the acceptance region on more than one clause, which counts
    /// towards [`Debouncer::with_weak_presence`].
    #[inline]
    pub fn step(
        &mut self,
        verdict: Option<Digit>,
        weak: bool,
        now: u64,
        h: &History,
        out: &mut VecDeque<Transition>,
    ) {
        // Nine windows in ten of a call: nothing on and nothing seen, and nothing to do —
        // decided where the step is taken (in wasm, the call and its frame cost more than the
        // step itself).
        if verdict.is_none() && matches!(self.state, State::Idle) {
            return;
        }
        self.advance(verdict, weak, now, h, out);
    }

    /// [`Debouncer::step`] when there is something to do.
    #[inline(never)]
    fn advance(
        &mut self,
        verdict: Option<Digit>,
        weak: bool,
        now: u64,
        h: &History,
        out: &mut VecDeque<Transition>,
    ) {
        let extend = |run: Option<Run>, d: Digit| match run {
            Some(r) if r.digit == d => Run {
                hits: r.hits.saturating_add(1),
                weak: r.weak.saturating_add(u8::from(weak)),
                gap: false,
                ..r
            },
            _ => Run {
                digit: d,
                first: now - 1,
                hits: 1,
                weak: u8::from(weak),
                gap: false,
            },
        };
        self.state = match (self.state, verdict) {
            (State::Rising(run), None) if self.needed(&run) > self.presence && !run.gap => {
                State::Rising(Run { gap: true, ..run })
            }
            (State::Idle, None) | (State::Rising(_), None) => State::Idle,
            (State::Idle | State::Rising(_), Some(d)) => {
                let previous = if let State::Rising(run) = self.state {
                    Some(run)
                } else {
                    None
                };
                let run = extend(previous, d);
                if run.hits >= self.needed(&run) {
                    self.start(run, now, h, out)
                } else {
                    State::Rising(run)
                }
            }
            (State::Active { on, .. }, Some(d)) if d == on.digit => {
                let level = h
                    .tone_energy(now, on.digit)
                    .map_or(on.level, |e| on.level.add(e));
                State::Active {
                    on: OnDigit {
                        last_hit: now,
                        level,
                        ..on
                    },
                    misses: 0,
                    rival: None,
                }
            }
            (State::Active { on, misses, rival }, verdict) => {
                let rival = verdict.map(|d| extend(rival, d));
                match rival {
                    Some(run) if run.hits >= self.needed(&run) => {
                        self.end(on, h, out);
                        self.start(run, now, h, out)
                    }
                    _ if misses + 1 >= self.absence => {
                        self.end(on, h, out);
                        rival.map_or(State::Idle, State::Rising)
                    }
                    _ => State::Active {
                        on,
                        misses: misses + 1,
                        rival,
                    },
                }
            }
        };
    }

    /// Ends the stream: a digit still on ends at sample `end`.
    pub fn finish(&mut self, end: u64, out: &mut VecDeque<Transition>) {
        self.cut(end, out);
        self.state = State::Idle;
    }

    /// Confirms `run` (its last hit window ends at half `now`) and returns the new state.
    fn start(&self, run: Run, now: u64, h: &History, out: &mut VecDeque<Transition>) -> State {
        let level = h.level(run.first, now, run.digit);
        let extra = h.edge_extension(self.edges, run.first.checked_sub(1), -1, run.digit, level);
        let start = (run.first * h.half() as u64).saturating_sub(extra);
        let detected_at = (now + 1) * h.half() as u64;
        out.push_back(match self.track {
            Track::Digits => Transition::Started {
                digit: run.digit,
                start,
                detected_at,
            },
            Track::Mask => Transition::MaskFrom { start },
        });
        let on = OnDigit {
            digit: run.digit,
            start,
            detected_at,
            last_hit: now,
            level,
            cut: false,
        };
        State::Active {
            on,
            misses: 0,
            rival: None,
        }
    }

    /// Ends `on` after refining its end edge (unless it was cut and reported already).
    fn end(&self, on: OnDigit, h: &History, out: &mut VecDeque<Transition>) {
        if on.cut {
            return;
        }
        let extra = h.edge_extension(self.edges, Some(on.last_hit + 1), 1, on.digit, on.level);
        let end = (on.last_hit + 1) * h.half() as u64 + extra;
        out.push_back(self.ended(on, end));
    }

    /// The transition that ends `on` at sample `end`, for this debouncer's track.
    fn ended(&self, on: OnDigit, end: u64) -> Transition {
        match self.track {
            Track::Digits => Transition::Ended {
                digit: on.digit,
                start: on.start,
                end,
                detected_at: on.detected_at,
            },
            Track::Mask => Transition::MaskUntil {
                start: on.start,
                end,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::history::Half;

    const RULE: EdgeRule = EdgeRule {
        full_half: 0.7,
        max_before: 2,
        max_after: 2,
        margin_per_51: 8,
    };

    fn starts_after(presence: u8) -> usize {
        let mut h = History::new(51);
        let mut d = Debouncer::new(Track::Mask, presence, 5, RULE);
        let mut out = VecDeque::new();
        let digit = Digit::from_indices(1, 1);
        h.push(Half::default());
        for hit in 1..=4 {
            let now = h.push(Half::default());
            d.step(Some(digit), false, now, &h, &mut out);
            if !out.is_empty() {
                return hit;
            }
        }
        0
    }

    #[test]
    fn a_run_of_weak_hits_needs_weak_presence_hits() {
        let digit = Digit::from_indices(1, 1);
        let starts_after = |weak: [bool; 6]| {
            let mut h = History::new(51);
            let mut d = Debouncer::new(Track::Digits, 3, 5, RULE).with_weak_presence(5);
            let mut out = VecDeque::new();
            h.push(Half::default());
            for (hit, w) in (1..).zip(weak) {
                let now = h.push(Half::default());
                d.step(Some(digit), w, now, &h, &mut out);
                if !out.is_empty() {
                    return hit;
                }
            }
            0
        };
        assert_eq!(starts_after([false; 6]), 3);
        assert_eq!(starts_after([true, false, false, false, false, false]), 3);
        assert_eq!(starts_after([true; 6]), 5);
        assert_eq!(starts_after([false, true, true, false, false, false]), 5);
    }

    #[test]
    fn a_span_starts_after_exactly_presence_hits() {
        assert_eq!(starts_after(1), 1);
        assert_eq!(starts_after(2), 2);
        assert_eq!(starts_after(3), 3);
    }
}
