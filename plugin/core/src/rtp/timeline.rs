//! The stream's timeline: which source it follows, RTP timestamps extended to 64 bits, and
//! their media time.
//!
//! - The first SSRC binds the stream. Another one is refused until it has sent
//!   [`SSRC_SWITCH_PACKETS`] packets in a row with none of the bound one between them; then
//!   the stream follows it on a new timeline.
//! - Timestamps are extended (wrap-around and reordering) from [`EXT_ORIGIN`], so late
//!   packets never go below zero.
//! - A jump of more than [`MAX_GAP_S`] seconds (at the call's fastest clock) either way is an
//!   RFC 3550 restart: a clean break on the extended timeline, and media time goes on from
//!   where it was.

use super::clock::scale;
use super::error::RtpError;

/// A timestamp jump (either way) larger than this many seconds restarts the stream's timeline
/// instead of being filled with silence.
pub const MAX_GAP_S: u32 = 5;
/// Packets in a row a new SSRC must send, with none of the bound SSRC among them, before the
/// session follows it (≈ 200 ms of 20 ms packets; those packets are dropped).
pub const SSRC_SWITCH_PACKETS: u32 = 10;
/// Extended timestamps start here, so that late packets never go below zero.
const EXT_ORIGIN: u64 = 1 << 40;

/// The source followed and where its timestamps stand.
#[derive(Clone, Copy, Debug)]
struct Source {
    ssrc: u32,
    last_ts: u32,
    last_ext: u64,
    /// Extended timestamp at `base_ms`.
    ts_base: u64,
    /// Media time at `ts_base`, ms since the call began.
    base_ms: u64,
}

/// Source binding and timestamp extension for one stream.
#[derive(Debug)]
pub struct Timeline {
    source: Option<Source>,
    /// A new SSRC and how many packets in a row it has sent.
    candidate: Option<(u32, u32)>,
    /// Largest timestamp step, either way, that is not a restart.
    max_jump: u64,
}

impl Timeline {
    /// A timeline for a call whose fastest clock is `max_clock` Hz.
    #[must_use]
    pub fn new(max_clock: u32) -> Timeline {
        Timeline {
            source: None,
            candidate: None,
            max_jump: u64::from(MAX_GAP_S) * u64::from(max_clock),
        }
    }

    /// Whether a packet of `ssrc` may enter: the bound source, the first one, or one that has
    /// now sent [`SSRC_SWITCH_PACKETS`] in a row (then [`Timeline::extend`] asks for a new
    /// start).
    pub fn admit(&mut self, ssrc: u32) -> Result<(), RtpError> {
        if self.source.is_none_or(|s| s.ssrc == ssrc) {
            self.candidate = None;
            return Ok(());
        }
        let run = match self.candidate {
            Some((s, n)) if s == ssrc => n + 1,
            _ => 1,
        };
        if run >= SSRC_SWITCH_PACKETS {
            self.candidate = None;
            return Ok(());
        }
        self.candidate = Some((ssrc, run));
        Err(RtpError::ForeignSsrc { ssrc })
    }

    /// The extended timestamp of a packet of the bound source (restarting the timeline on a
    /// jump, media time going on from `now_ms`); `None` for another source — finish what the
    /// old one left, then call [`Timeline::start`].
    pub fn extend(&mut self, ssrc: u32, ts: u32, now_ms: u64) -> Option<u64> {
        let t = self.source.as_mut().filter(|t| t.ssrc == ssrc)?;
        let delta = i64::from(ts.wrapping_sub(t.last_ts) as i32);
        if delta.unsigned_abs() > self.max_jump {
            let ext = t.last_ext.saturating_add(2 * self.max_jump);
            *t = Source {
                ssrc,
                last_ts: ts,
                last_ext: ext,
                ts_base: ext,
                base_ms: now_ms,
            };
            return Some(ext);
        }
        let ext = t.last_ext.saturating_add_signed(delta);
        if ext > t.last_ext {
            t.last_ext = ext;
            t.last_ts = ts;
        }
        Some(ext)
    }

    /// Follows source `ssrc` from timestamp `ts`, at media time `now_ms`; returns its extended
    /// timestamp.
    pub fn start(&mut self, ssrc: u32, ts: u32, now_ms: u64) -> u64 {
        let ext = EXT_ORIGIN + u64::from(ts);
        self.source = Some(Source {
            ssrc,
            last_ts: ts,
            last_ext: ext,
            ts_base: ext,
            base_ms: now_ms,
        });
        ext
    }

    /// The newest extended timestamp seen (none before the first packet).
    #[must_use]
    pub fn last_ext(&self) -> Option<u64> {
        self.source.map(|s| s.last_ext)
    }

    /// Media time of extended timestamp `ext` at `clock` Hz, ms (0 before the first packet).
    #[must_use]
    pub fn ms_at(&self, ext: u64, clock: u32) -> u64 {
        self.source.map_or(0, |t| {
            let ticks = ext.saturating_sub(t.ts_base);
            t.base_ms
                .saturating_add(scale(ticks, 1000, u64::from(clock.max(1))))
        })
    }

    /// The extended timestamp at media time `ms` at `clock` Hz (none before the first packet).
    #[must_use]
    pub fn ext_at(&self, ms: u64, clock: u32) -> Option<u64> {
        self.source.map(|t| {
            let ticks = scale(ms.saturating_sub(t.base_ms), u64::from(clock), 1000);
            t.ts_base.saturating_add(ticks)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_extend_across_the_wrap_and_late_ones_stay_behind() {
        let mut t = Timeline::new(8000);
        let first = t.start(1, u32::MAX - 159, 0);
        assert_eq!(t.extend(1, 0, 0), Some(first + 160), "wrapped forward");
        assert_eq!(t.extend(1, u32::MAX - 319, 0), Some(first - 160), "late");
        assert_eq!(t.last_ext(), Some(first + 160));
        assert_eq!(t.ms_at(first + 8000, 8000), 1000);
        assert_eq!(t.ext_at(1000, 8000), Some(first + 8000));
    }

    #[test]
    fn a_jump_past_the_limit_restarts_with_media_time_going_on() {
        let mut t = Timeline::new(8000);
        let first = t.start(1, 1000, 0);
        let jump = 1000 + MAX_GAP_S * 8000 + 1;
        let ext = t.extend(1, jump, 700).unwrap();
        assert!(ext > first + u64::from(MAX_GAP_S) * 8000, "a clean break");
        assert_eq!(
            t.ms_at(ext, 8000),
            700,
            "media time goes on from where it was"
        );
        assert_eq!(t.extend(1, jump + 160, 700), Some(ext + 160));
    }

    #[test]
    fn another_source_is_refused_until_it_really_takes_over() {
        let mut t = Timeline::new(8000);
        t.admit(1).unwrap();
        t.start(1, 0, 0);
        for _ in 1..SSRC_SWITCH_PACKETS {
            assert_eq!(t.admit(2), Err(RtpError::ForeignSsrc { ssrc: 2 }));
        }
        // Interleaved with the bound source, it never gets there.
        t.admit(1).unwrap();
        assert!(t.admit(2).is_err());
        for _ in 2..SSRC_SWITCH_PACKETS {
            assert!(t.admit(2).is_err());
        }
        assert_eq!(t.admit(2), Ok(()), "the tenth packet in a row is admitted");
        assert_eq!(
            t.extend(2, 0, 0),
            None,
            "a new source starts a new timeline"
        );
    }
}
