//! Host time and media time.
//!
//! The session never reads a clock (sans-IO): the host passes its own time — milliseconds on
//! any monotonic clock; only differences matter — with every packet and with
//! [`super::RtpSession::handle_timeout`]. Media time comes from RTP timestamps and stands still
//! while no packet arrives; [`Anchor`] ties the two together at the last packet so that, between
//! packets, media time runs on with host time: a press whose end packet was lost completes,
//! a press waiting for its other copy is released, and audio held for the look-ahead leaves
//! when the sender has gone quiet.

/// No packet for this long after the look-ahead has run out: the stream is idle, the
/// masker is flushed and the packets it held are sent (ms). A press still on is cut there and
/// waits (up to 2 s of media time) for packets that resume where they stopped: then the two
/// parts are reported as one press.
pub use crate::settings::IDLE_AFTER_LOOKAHEAD_MS;

/// Host time and media time at the last packet that carried media.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    /// Host time the packet arrived, ms.
    pub host_ms: u64,
    /// Media time it brought the stream to, ms since the call began.
    pub media_ms: u64,
}

impl Anchor {
    /// Media time at host time `now` (media time never runs backwards from the anchor).
    #[must_use]
    pub fn media_at(&self, now: u64) -> u64 {
        self.media_ms
            .saturating_add(now.saturating_sub(self.host_ms))
    }

    /// Host time at which media time reaches `media_ms` (at once if it already has).
    #[must_use]
    pub fn host_at(&self, media_ms: u64) -> u64 {
        self.host_ms
            .saturating_add(media_ms.saturating_sub(self.media_ms))
    }
}

/// `x · m / d` rounded down, the product saturating at `u64::MAX` — as
/// `x.saturating_mul(m) / d`, without its overflow-checked multiply where the product
/// cannot overflow (in wasm32 that multiply is a call to a 128-bit software multiply, and
/// media time is converted for every packet).
#[must_use]
pub fn scale(x: u64, m: u64, d: u64) -> u64 {
    if (x | m) >> 32 == 0 {
        x * m / d
    } else {
        x.saturating_mul(m) / d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_time_runs_with_host_time_from_the_anchor_and_back() {
        let a = Anchor {
            host_ms: 1_000,
            media_ms: 40,
        };
        assert_eq!(a.media_at(1_000), 40);
        assert_eq!(a.media_at(1_250), 290);
        assert_eq!(
            a.media_at(900),
            40,
            "a host clock going back stops media time"
        );
        assert_eq!(a.host_at(290), 1_250);
        assert_eq!(a.host_at(10), 1_000, "a past media time is due now");
        let late = Anchor {
            host_ms: 0,
            media_ms: 10,
        };
        assert_eq!(late.media_at(u64::MAX), u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn scale_is_the_saturating_product_divided() {
        let edges = [
            0,
            1,
            7,
            999,
            1000,
            8000,
            u64::from(u32::MAX),
            1 << 32,
            u64::MAX / 1000,
            u64::MAX / 1000 + 1,
            u64::MAX / 3,
            u64::MAX,
        ];
        for &x in &edges {
            for &m in &[
                1,
                1000,
                8000,
                48_000,
                u64::from(u32::MAX),
                1 << 32,
                u64::MAX,
            ] {
                for &d in &[1, 8000, 1000, 16_000] {
                    assert_eq!(scale(x, m, d), x.saturating_mul(m) / d, "{x}·{m}/{d}");
                }
            }
        }
    }
}
