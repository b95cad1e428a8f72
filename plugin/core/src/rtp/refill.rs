//! RED refill (RFC 2198): a forwarded RED packet's redundant audio blocks are rebuilt from the
//! masked audio already sent for those timestamps — never the original — or left out when it
//! is no longer at hand; other blocks kept as received.

use super::config::AudioType;
use super::red::{self, Block};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A redundant block of a RED packet waiting to be rebuilt.
#[derive(Debug)]
pub enum Redundant {
    /// Audio of the primary's codec: refill from the masked audio already sent.
    Audio {
        /// Payload type.
        pt: u8,
        /// Timestamp offset back from the primary.
        ts_offset: u16,
        /// Length in bytes.
        len: usize,
    },
    /// Anything else, kept as received.
    Kept {
        /// Payload type.
        pt: u8,
        /// Timestamp offset back from the primary.
        ts_offset: u16,
        /// The block.
        data: Vec<u8>,
    },
}

/// The masked audio recently sent, ending at an extended timestamp (as far back as a RED
/// offset reaches: 14 bits) — kept only while RED is negotiated (≈ 2 s: 16 KiB a session).
#[derive(Debug, Default)]
pub struct SentAudio {
    bytes: VecDeque<u8>,
    /// Extended timestamp just after the last byte.
    end: u64,
    /// Whether RED is negotiated: without it no packet asks for a refill.
    red: bool,
}

impl SentAudio {
    /// RED is (`true`) or is no longer negotiated: audio sent from now on is kept, or
    /// nothing is.
    pub fn set_red(&mut self, red: bool) {
        self.red = red;
        if !red {
            self.bytes = VecDeque::new();
        }
    }

    /// Forgets everything; the next audio is expected at `ext`.
    pub fn restart(&mut self, ext: u64) {
        self.bytes.clear();
        self.end = ext;
    }

    /// `units` samples were never sent (filled in as lost).
    pub fn skip(&mut self, units: usize) {
        self.bytes.clear();
        self.end = self.end.saturating_add(units as u64);
    }

    /// Keeps `masked` (`units` samples of `bps` bytes at extended timestamp `ext`), just sent.
    pub fn remember(&mut self, ext: u64, units: usize, masked: &[u8], bps: usize) {
        if !self.red {
            self.end = ext.saturating_add(units as u64);
            return;
        }
        if ext != self.end {
            self.bytes.clear();
        }
        self.bytes.extend(masked);
        self.end = ext.saturating_add(units as u64);
        let keep = 0x3FFF * bps;
        if self.bytes.len() > keep {
            let excess = self.bytes.len() - keep;
            self.bytes.drain(..excess);
        }
    }

    /// The masked bytes sent for `len` bytes starting at extended timestamp `start`, if all of
    /// them are at hand and `len` is whole samples.
    #[must_use]
    pub fn get(&self, start: u64, len: usize, bps: usize) -> Option<Vec<u8>> {
        if !len.is_multiple_of(bps) {
            return None;
        }
        let have = (self.bytes.len() / bps) as u64;
        let first = self.end.checked_sub(have)?;
        let units = (len / bps) as u64;
        let end = start.checked_add(units)?;
        if start < first || end > self.end {
            return None;
        }
        let from = (start - first) as usize * bps;
        Some(self.bytes.range(from..from + len).copied().collect())
    }

    /// Appends the RED payload of a packet at extended timestamp `ext`: the redundant blocks
    /// (audio refilled from what was sent), then `masked` as the primary of type `audio`.
    pub fn rebuild(
        &self,
        ext: u64,
        audio: AudioType,
        redundant: &[Redundant],
        masked: &[u8],
        packet: &mut Vec<u8>,
    ) {
        let bps = audio.codec.bytes_per_sample();
        let refilled: Vec<Option<Vec<u8>>> = redundant
            .iter()
            .map(|r| match r {
                Redundant::Audio { ts_offset, len, .. } => {
                    self.get(ext.checked_sub(u64::from(*ts_offset))?, *len, bps)
                }
                Redundant::Kept { .. } => None,
            })
            .collect();
        let mut blocks: Vec<Block<'_>> = Vec::with_capacity(redundant.len() + 1);
        for (r, refill) in redundant.iter().zip(&refilled) {
            match (r, refill) {
                (Redundant::Audio { pt, ts_offset, .. }, Some(data))
                | (
                    Redundant::Kept {
                        pt,
                        ts_offset,
                        data,
                    },
                    _,
                ) => blocks.push(Block {
                    pt: *pt,
                    ts_offset: *ts_offset,
                    data,
                }),
                (Redundant::Audio { .. }, None) => {}
            }
        }
        blocks.push(Block {
            pt: audio.pt,
            ts_offset: 0,
            data: masked,
        });
        red::write(&blocks, packet);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    const L16: AudioType = AudioType {
        pt: 97,
        codec: Codec::L16,
        rate: 16000,
    };

    #[test]
    fn without_red_nothing_sent_is_kept() {
        let mut sent = SentAudio::default();
        sent.restart(1000);
        sent.remember(1000, 2, &[1, 2, 3, 4], 2);
        assert_eq!(sent.get(1000, 4, 2), None);
        sent.set_red(true);
        sent.remember(1002, 2, &[5, 6, 7, 8], 2);
        assert_eq!(sent.get(1002, 4, 2), Some(alloc::vec![5, 6, 7, 8]));
        sent.set_red(false);
        assert_eq!(
            sent.get(1002, 4, 2),
            None,
            "forgotten when RED is renegotiated away"
        );
    }

    #[test]
    fn redundant_audio_is_refilled_from_what_was_sent_or_left_out() {
        let mut sent = SentAudio::default();
        sent.set_red(true);
        sent.restart(1000);
        sent.remember(1000, 2, &[1, 2, 3, 4], 2);
        sent.remember(1002, 2, &[5, 6, 7, 8], 2);
        assert_eq!(sent.get(1001, 4, 2), Some(alloc::vec![3, 4, 5, 6]));
        assert_eq!(sent.get(1001, 3, 2), None, "not whole samples");
        assert_eq!(sent.get(999, 2, 2), None, "before what was kept");
        assert_eq!(sent.get(1003, 4, 2), None, "past what was sent");
        let redundant = [
            Redundant::Audio {
                pt: 97,
                ts_offset: 2,
                len: 4,
            },
            Redundant::Audio {
                pt: 97,
                ts_offset: 900,
                len: 4,
            },
            Redundant::Kept {
                pt: 13,
                ts_offset: 1,
                data: alloc::vec![0xCC],
            },
        ];
        let mut packet = Vec::new();
        sent.rebuild(1004, L16, &redundant, &[9, 9], &mut packet);
        let blocks = red::parse(&packet).unwrap();
        let got: Vec<(u8, u16, &[u8])> =
            blocks.iter().map(|b| (b.pt, b.ts_offset, b.data)).collect();
        assert_eq!(
            got,
            [
                (97, 2, &[5u8, 6, 7, 8][..]),
                (13, 1, &[0xCC][..]),
                (97, 0, &[9, 9][..])
            ]
        );
        // Lost samples break the history: nothing before them is refilled.
        sent.skip(3);
        assert_eq!(sent.get(1002, 2, 2), None);
    }
}
