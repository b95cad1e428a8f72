//! Event replacement (modes `tone` and `noise`): each DTMF event packet of a press becomes an
//! audio packet of the stream's codec carrying the neutral tone or comfort noise for the time
//! it newly covers — same sequence number, timestamps advancing through the press — while the
//! sender sends no audio of its own during the press. Once it does, the events are dropped
//! instead (its audio already fills that time, masked).

use super::config::AudioType;
use super::packet::{Header, Packet};
use super::telephone_event::EventPayload;
use crate::masker::{Fill, MaskMode};
use alloc::vec::Vec;

/// The press being replaced.
struct Replacing {
    ssrc: u32,
    /// Extended timestamp of the press.
    start: u64,
    /// Samples already sent as replacement.
    covered: u64,
    /// The sender sent audio of its own during the press: stop replacing.
    audio_seen: bool,
    fill: Fill,
}

/// Replaces the event packets of one press at a time.
#[derive(Default)]
pub struct Replacer {
    current: Option<Replacing>,
}

impl Replacer {
    /// An audio packet of source `ssrc` at extended timestamp `ext` arrived: from the press's
    /// start on, the sender talks alongside its events.
    pub fn audio_arrived(&mut self, ssrc: u32, ext: u64) {
        if let Some(r) = &mut self.current {
            r.audio_seen |= r.ssrc == ssrc && ext >= r.start;
        }
    }

    /// Appends to `bytes` the packet (sequence number `seq`) that takes the place of event
    /// packet `p` of the press at `ext`, in `mode` (`tone` or `noise`; `false` otherwise), as
    /// audio of type `a`; `false` (nothing appended) when it adds no time or the sender sends
    /// audio of its own during the press. `audio_until` is the extended timestamp the
    /// sender's audio has reached.
    #[allow(clippy::too_many_arguments)]
    pub fn replace(
        &mut self,
        mode: MaskMode,
        a: AudioType,
        audio_until: Option<u64>,
        p: &Packet<'_>,
        seq: u16,
        ext: u64,
        e: &EventPayload,
        bytes: &mut Vec<u8>,
    ) -> bool {
        if !matches!(mode, MaskMode::Tone | MaskMode::Noise) {
            return false;
        }
        let fresh = !self
            .current
            .as_ref()
            .is_some_and(|r| r.ssrc == p.ssrc() && r.start == ext);
        if fresh {
            self.current = Some(Replacing {
                ssrc: p.ssrc(),
                start: ext,
                covered: 0,
                // Audio already sent past the press's start.
                audio_seen: audio_until.is_some_and(|next| next > ext),
                fill: Fill::new(mode, a.rate),
            });
        }
        let Some(r) = self.current.as_mut() else {
            return false;
        };
        let duration = u64::from(e.duration);
        if r.audio_seen || duration <= r.covered {
            return false;
        }
        // At most one second per packet (a sender's duration may jump after losses).
        let n = (duration - r.covered).min(u64::from(a.rate)) as usize;
        let timestamp = p.timestamp().wrapping_add(r.covered as u32);
        r.covered += n as u64;
        Header {
            marker: p.marker(),
            pt: a.pt,
            seq,
            timestamp,
            ssrc: p.ssrc(),
        }
        .emit(bytes);
        for _ in 0..n {
            a.codec
                .write_units(&[a.codec.encode(r.fill.sample())], bytes);
        }
        true
    }
}
