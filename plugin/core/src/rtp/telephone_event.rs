//! RFC 4733 telephone-events: the payload, and the rules that turn a stream of event packets
//! into key presses — each press reported once.
//!
//! - Every packet of one event carries the event's start timestamp; same (SSRC, timestamp,
//!   event) = same press, however often it is repeated (the end packet is sent three times;
//!   RED carries older copies again).
//! - A press longer than the 16-bit duration allows continues as a new *segment* whose
//!   timestamp is the previous one plus its duration: the same press, not a new one.
//! - A press whose end packet never arrives ends when the media clock passes its last known
//!   end by [`TIMEOUT_MS`], or when another event starts.

use crate::digit::Digit;
use core::fmt;

/// A press without an end packet ends this long (media time) after its last known end.
pub const TIMEOUT_MS: u64 = 400;
/// Presses remembered after they ended, to ignore their late repeats.
const REMEMBERED: usize = 8;

/// The 4-byte event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventPayload {
    /// Event code (0–15 are the DTMF keys).
    pub event: u8,
    /// The E bit: this is (a copy of) the final packet.
    pub end: bool,
    /// Volume, −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

/// A telephone-event payload shorter than 4 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortEvent {
    /// Bytes given.
    pub len: usize,
}

impl fmt::Display for ShortEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "telephone-event payload of {} bytes (at least 4 needed)",
            self.len
        )
    }
}

impl EventPayload {
    /// Parses the first event of a payload.
    pub fn parse(payload: &[u8]) -> Result<EventPayload, ShortEvent> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(EventPayload {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3F,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(ShortEvent { len: payload.len() }),
        }
    }

    /// The DTMF key this event stands for, if it is one (events 0–15).
    #[must_use]
    pub fn digit(&self) -> Option<Digit> {
        const KEYS: &[u8; 16] = b"0123456789*#ABCD";
        KEYS.get(usize::from(self.event))
            .and_then(|&c| Digit::from_char(char::from(c)))
    }
}

/// Whether `payload` has the shape of RFC 4733 DTMF events: one to four 4-byte events, each
/// a DTMF key (event 0–15) with the reserved bit clear and some duration (or the end bit).
/// Used to recognise events sent on a payload type nobody announced; four zero bytes — what
/// some senders put on an unused type as filler — are not taken for a press of `0`.
#[must_use]
pub fn looks_like_dtmf(payload: &[u8]) -> bool {
    !payload.is_empty()
        && payload.len() <= 16
        && payload.len().is_multiple_of(4)
        && payload.chunks(4).all(|c| {
            let (end, duration) = (c[1] & 0x80 != 0, u16::from_be_bytes([c[2], c[3]]));
            c[0] <= 15 && c[1] & 0x40 == 0 && (end || duration > 0)
        })
}

/// A key press seen as telephone-events, in timestamp units of the event clock on the
/// stream's extended (64-bit) timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Press {
    /// The key.
    pub digit: Digit,
    /// Start of the press.
    pub start: u64,
    /// End of the press (start + every segment's duration).
    pub end: u64,
    /// Where the first packet of the press was seen.
    pub seen: u64,
    /// Whether an end packet arrived (false: ended by timeout or by another event).
    pub ended: bool,
}

#[derive(Clone, Copy, Debug)]
struct Current {
    ssrc: u32,
    /// Timestamp of the current segment.
    segment: u64,
    duration: u16,
    press: Press,
}

/// Turns event packets into presses. One per stream.
#[derive(Debug)]
pub struct Tracker {
    clock: u64,
    current: Option<Current>,
    done: [Option<(u32, u64, Digit)>; REMEMBERED],
    next_done: usize,
}

impl Tracker {
    /// A tracker for events at `clock` Hz.
    #[must_use]
    pub fn new(clock: u32) -> Tracker {
        Tracker {
            clock: u64::from(clock.max(1)),
            current: None,
            done: [None; REMEMBERED],
            next_done: 0,
        }
    }

    /// Takes one DTMF event packet with extended timestamp `ts`; returns a press that it
    /// completed, if any (its end packet, or the previous press ended by this one). Events
    /// that are not DTMF keys are ignored here.
    pub fn on_event(&mut self, ssrc: u32, ts: u64, e: &EventPayload) -> Option<Press> {
        let digit = e.digit()?;
        if self.done.contains(&Some((ssrc, ts, digit))) {
            return None;
        }
        let duration = u64::from(e.duration);
        let mut finished = None;
        match &mut self.current {
            Some(c) if c.ssrc == ssrc && c.press.digit == digit && c.segment == ts => {
                c.duration = c.duration.max(e.duration);
                c.press.end = c.press.end.max(ts.saturating_add(duration));
            }
            Some(c)
                if c.ssrc == ssrc
                    && c.press.digit == digit
                    && ts.abs_diff(c.segment.saturating_add(u64::from(u16::MAX)))
                        <= self.clock / 50 =>
            {
                // The next segment of a long press: its old timestamp's repeats are ignored.
                let old = (c.ssrc, c.segment, digit);
                c.segment = ts;
                c.duration = e.duration;
                c.press.end = c.press.end.max(ts.saturating_add(duration));
                self.remember(old.0, old.1, old.2);
            }
            _ => {
                finished = self.end_current(false);
                self.current = Some(Current {
                    ssrc,
                    segment: ts,
                    duration: e.duration,
                    press: Press {
                        digit,
                        start: ts,
                        end: ts.saturating_add(duration),
                        seen: ts.saturating_add(duration),
                        ended: false,
                    },
                });
            }
        }
        if e.end {
            // An earlier press can only have been finished here if this packet started a new
            // one; report that one now and this one's end with the next call at the latest.
            if finished.is_none() {
                return self.end_current(true);
            }
            if let Some(c) = &mut self.current {
                c.press.ended = true;
            }
        }
        finished
    }

    /// Advances the media clock to extended timestamp `now`; returns a press whose end packet
    /// has not come for [`TIMEOUT_MS`], or one already known to have ended.
    pub fn on_time(&mut self, now: u64) -> Option<Press> {
        let c = self.current?;
        if c.press.ended || now > c.press.end.saturating_add(TIMEOUT_MS * self.clock / 1000) {
            let ended = c.press.ended;
            return self.end_current(ended);
        }
        None
    }

    /// The extended timestamp past which [`Tracker::on_time`] ends the open press (now, if it
    /// is known to have ended); `None` when no press is open.
    #[must_use]
    pub fn deadline(&self) -> Option<u64> {
        let c = self.current.as_ref()?;
        if c.press.ended {
            return Some(0);
        }
        Some(
            c.press
                .end
                .saturating_add(TIMEOUT_MS * self.clock / 1000)
                .saturating_add(1),
        )
    }

    /// Ends the stream: the press still open, if any.
    pub fn finish(&mut self) -> Option<Press> {
        let ended = self.current.is_some_and(|c| c.press.ended);
        self.end_current(ended)
    }

    fn end_current(&mut self, ended: bool) -> Option<Press> {
        let c = self.current.take()?;
        self.remember(c.ssrc, c.segment, c.press.digit);
        Some(Press { ended, ..c.press })
    }

    fn remember(&mut self, ssrc: u32, ts: u64, digit: Digit) {
        self.done[self.next_done] = Some((ssrc, ts, digit));
        self.next_done = (self.next_done + 1) % REMEMBERED;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn ev(event: u8, end: bool, duration: u16) -> EventPayload {
        EventPayload {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    fn run(t: &mut Tracker, packets: &[(u64, EventPayload)]) -> Vec<Press> {
        packets
            .iter()
            .filter_map(|(ts, e)| t.on_event(1, *ts, e))
            .collect()
    }

    #[test]
    fn parses_the_payload_and_names_the_key() {
        let e = EventPayload::parse(&[11, 0x80 | 10, 0x03, 0x20]).unwrap();
        assert_eq!(e, ev(11, true, 800));
        assert_eq!(e.digit().unwrap().to_char(), '#');
        assert_eq!(ev(16, false, 0).digit(), None, "flash is not a key");
        assert_eq!(EventPayload::parse(&[1, 2, 3]), Err(ShortEvent { len: 3 }));
    }

    #[test]
    fn a_press_with_its_end_sent_three_times_is_reported_once() {
        let mut t = Tracker::new(8000);
        let p = run(
            &mut t,
            &[
                (1000, ev(5, false, 160)),
                (1000, ev(5, false, 320)),
                (1000, ev(5, false, 480)),
                (1000, ev(5, true, 640)),
                (1000, ev(5, true, 640)),
                (1000, ev(5, true, 640)),
            ],
        );
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].start, p[0].end, p[0].ended), (1000, 1640, true));
        assert_eq!(t.on_time(100_000), None);
    }

    #[test]
    fn the_same_key_twice_is_two_presses() {
        let mut t = Tracker::new(8000);
        let p = run(
            &mut t,
            &[
                (1000, ev(1, true, 640)),
                (1000, ev(1, true, 640)),
                (3000, ev(1, false, 160)),
                (3000, ev(1, true, 640)),
                (3000, ev(1, true, 640)),
            ],
        );
        assert_eq!(p.iter().map(|p| p.start).collect::<Vec<_>>(), [1000, 3000]);
    }

    #[test]
    fn timestamps_at_the_top_of_the_range_end_the_press_without_wrapping() {
        let mut t = Tracker::new(8000);
        let top = u64::MAX - 100;
        let p = run(
            &mut t,
            &[(top, ev(3, false, 0xFFFF)), (top, ev(3, true, 0xFFFF))],
        );
        assert_eq!((p[0].start, p[0].end), (top, u64::MAX), "the end saturates");
        assert_eq!(
            t.on_time(u64::MAX),
            None,
            "the ended press was already reported"
        );
    }

    #[test]
    fn a_long_press_split_into_segments_is_one_press() {
        let mut t = Tracker::new(8000);
        let p = run(
            &mut t,
            &[
                (0, ev(9, false, 40_000)),
                (0, ev(9, false, 0xFFFF)),
                (0xFFFF, ev(9, false, 8000)),
                (0xFFFF, ev(9, true, 16_000)),
                (0xFFFF, ev(9, true, 16_000)),
            ],
        );
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].start, p[0].end), (0, 0xFFFF + 16_000));
    }

    #[test]
    fn a_press_without_end_packet_times_out_once() {
        let mut t = Tracker::new(8000);
        assert!(run(&mut t, &[(0, ev(3, false, 160)), (0, ev(3, false, 480))]).is_empty());
        assert_eq!(t.on_time(480 + 3200), None, "400 ms not yet passed");
        let p = t.on_time(480 + 3201).unwrap();
        assert_eq!((p.end, p.ended), (480, false));
        assert_eq!(t.on_time(1_000_000), None);
        assert!(
            run(&mut t, &[(0, ev(3, true, 640))]).is_empty(),
            "late end ignored"
        );
    }

    #[test]
    fn a_new_key_ends_the_previous_press() {
        let mut t = Tracker::new(8000);
        let p = run(&mut t, &[(0, ev(3, false, 480)), (800, ev(4, false, 160))]);
        assert_eq!(p.len(), 1);
        assert!(!p[0].ended);
        assert_eq!(t.finish().unwrap().digit.to_char(), '4');
    }
}
