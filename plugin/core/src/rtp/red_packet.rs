//! A RED packet (RFC 2198) arriving on the stream: events in any block are taken (and removed
//! when masking), audio of the primary's type is kept for refill, the primary decides the rest.

use super::datagrams::Datagrams;
use super::error::RtpError;
use super::packet::Packet;
use super::red::{self, Block};
use super::refill::Redundant;
use super::telephone_event::EventPayload;
use super::{AudioType, RtpSession};
use crate::error::FrameError;
use crate::masker::MaskMode;
use alloc::vec::Vec;

impl RtpSession {
    /// A RED packet: events in any block are taken and removed; the primary decides the rest.
    pub(super) fn red(&mut self, p: &Packet<'_>, out: &mut Datagrams) -> Result<(), RtpError> {
        let blocks = red::parse(p.payload())?;
        let masking = self.config.settings.mask_mode != MaskMode::Off;
        let Some((primary, redundant)) = blocks.split_last() else {
            return Ok(());
        };
        // Everything that can be refused is checked before anything changes.
        let audio = self.config.audio_type(primary.pt);
        let primary_event = match audio.is_none() && self.is_event(primary.pt, primary.data) {
            true => Some(EventPayload::parse(primary.data)?),
            false => None,
        };
        match audio {
            Some(_) if primary.data.is_empty() => return Err(RtpError::EmptyAudio),
            Some(a)
                if !primary
                    .data
                    .len()
                    .is_multiple_of(a.codec.bytes_per_sample()) =>
            {
                return Err(RtpError::Audio(FrameError::PartialSample));
            }
            None if primary_event.is_none() => {
                return Err(RtpError::UnknownPayloadType { pt: primary.pt });
            }
            _ => {}
        }
        let ext = self.extend(p, out);
        let kept = self.redundant_blocks(p.ssrc(), ext, audio, redundant);
        if let Some(a) = audio {
            return self.audio(p, a, primary.data, Some(kept), out);
        }
        if let Some(e) = primary_event {
            self.event(p.ssrc(), ext, &e);
            if masking && e.digit().is_some() {
                self.stats.red_events_removed += 1;
                self.stats.events_dropped += 1;
                self.outbox.drop_packet();
                return Ok(());
            }
        }
        // A primary event that is no digit, or mode `off`: forward without the removed blocks.
        let mut payload = Vec::new();
        let owned: Vec<Block<'_>> = kept
            .iter()
            .filter_map(|r| match r {
                Redundant::Kept {
                    pt,
                    ts_offset,
                    data,
                } => Some(Block {
                    pt: *pt,
                    ts_offset: *ts_offset,
                    data,
                }),
                Redundant::Audio { .. } => None,
            })
            .chain(core::iter::once(*primary))
            .collect();
        red::write(&owned, &mut payload);
        self.outbox.pass(p, &payload);
        Ok(())
    }

    /// A RED packet's redundant blocks (its primary at `ext`, audio `audio`): events are
    /// taken (and removed when masking), audio of the primary's type is kept for refill, any
    /// other block (another codec, an unknown type, a partial sample) is left out — only
    /// inspected audio leaves.
    fn redundant_blocks(
        &mut self,
        ssrc: u32,
        ext: u64,
        audio: Option<AudioType>,
        redundant: &[Block<'_>],
    ) -> Vec<Redundant> {
        let masking = self.config.settings.mask_mode != MaskMode::Off;
        let mut kept = Vec::new();
        for b in redundant {
            if self.config.audio_type(b.pt).is_none() && self.is_event(b.pt, b.data) {
                let Ok(e) = EventPayload::parse(b.data) else {
                    continue;
                };
                self.event(ssrc, ext.saturating_sub(u64::from(b.ts_offset)), &e);
                if masking && e.digit().is_some() {
                    self.stats.red_events_removed += 1;
                } else {
                    kept.push(Redundant::Kept {
                        pt: b.pt,
                        ts_offset: b.ts_offset,
                        data: b.data.to_vec(),
                    });
                }
            } else if audio.is_some_and(|a| {
                a.pt == b.pt && b.data.len().is_multiple_of(a.codec.bytes_per_sample())
            }) {
                kept.push(Redundant::Audio {
                    pt: b.pt,
                    ts_offset: b.ts_offset,
                    len: b.data.len(),
                });
            }
        }
        kept
    }
}
