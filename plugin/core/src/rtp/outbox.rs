//! The outbox: packets in arrival order, each leaving when the masker has released all of its
//! audio (the look-ahead as a packet delay), with sequence numbers shifted down over the
//! packets dropped so the receiver sees no loss.

use super::config::AudioType;
use super::datagrams::Datagrams;
use super::error::RtpStats;
use super::packet::{self, Packet};
use super::refill::{Redundant, SentAudio};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// A packet (or a stretch of filled-in time) waiting for the masker.
#[derive(Debug)]
enum Queued {
    /// An audio packet: its header as received, its outgoing sequence number, its audio type
    /// (a RED packet's primary block's) and sample count.
    Audio {
        header: Vec<u8>,
        seq: u16,
        audio: AudioType,
        ext: u64,
        units: usize,
        red: Option<Vec<Redundant>>,
    },
    /// Silence fed for lost packets; its output is discarded.
    Gap { units: usize, bps: usize },
    /// A packet forwarded as is, in order.
    Pass(Vec<u8>),
}

/// Buffers kept for reuse (packet headers, passed packets): at most this many.
const SPARE_BUFFERS: usize = 64;

/// Packets waiting to leave, and the masked audio for them.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Queued>,
    /// Masked output bytes not yet placed in a packet (the masker writes here directly).
    ready: Vec<u8>,
    /// Masked audio already sent (for RED refill).
    sent: SentAudio,
    /// Packets dropped so far on this source: later sequence numbers move down by this much.
    seq_shift: u16,
    /// Emptied buffers of packets already sent, reused for the next ones: no allocation per
    /// packet once the stream runs.
    spare: Vec<Vec<u8>>,
}

impl Outbox {
    /// The sequence number packet `p` leaves with.
    #[must_use]
    pub fn out_seq(&self, p: &Packet<'_>) -> u16 {
        p.seq().wrapping_sub(self.seq_shift)
    }

    /// Packet `p` was dropped: the ones after it move down.
    pub fn drop_packet(&mut self) {
        self.seq_shift = self.seq_shift.wrapping_add(1);
    }

    /// RED is or is no longer negotiated (the sent audio that refills it is kept only then).
    pub fn set_red(&mut self, red: bool) {
        self.sent.set_red(red);
    }

    /// A new source: its sequence numbers are its own.
    pub fn new_source(&mut self) {
        self.seq_shift = 0;
    }

    /// An empty buffer (a spare one when there is one).
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// `b` is no longer needed: kept for reuse.
    fn recycle(&mut self, mut b: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            b.clear();
            self.spare.push(b);
        }
    }

    /// Queues bytes to forward as they are, in order (RTCP, packets the session made; best
    /// in a [`Outbox::buffer`]).
    pub fn pass_bytes(&mut self, bytes: Vec<u8>) {
        self.queue.push_back(Queued::Pass(bytes));
    }

    /// Queues a copy of `bytes`, forwarded as they are.
    pub fn pass_copy(&mut self, bytes: &[u8]) {
        let mut b = self.buffer();
        b.extend_from_slice(bytes);
        self.pass_bytes(b);
    }

    /// Queues packet `p` with `payload`, unchanged but for its sequence number and padding.
    pub fn pass(&mut self, p: &Packet<'_>, payload: &[u8]) {
        let mut bytes = self.buffer();
        packet::write(p.header(), self.out_seq(p), payload, &mut bytes);
        self.pass_bytes(bytes);
    }

    /// Queues audio packet `p` (`units` samples of `audio` at extended timestamp `ext`, RED
    /// blocks to rebuild, if any): it leaves with its audio masked.
    pub fn audio(
        &mut self,
        p: &Packet<'_>,
        audio: AudioType,
        ext: u64,
        units: usize,
        red: Option<Vec<Redundant>>,
    ) {
        let mut header = self.buffer();
        header.extend_from_slice(p.header());
        self.queue.push_back(Queued::Audio {
            header,
            seq: self.out_seq(p),
            audio,
            ext,
            units,
            red,
        });
    }

    /// Queues `units` samples filled in as lost (their masked output is discarded).
    pub fn gap(&mut self, units: usize, bps: usize) {
        self.queue.push_back(Queued::Gap { units, bps });
    }

    /// Masked audio released by the masker (tests; the pipeline uses [`Outbox::release_with`]).
    #[cfg(test)]
    pub fn released(&mut self, bytes: &[u8]) {
        self.ready.extend_from_slice(bytes);
    }

    /// Masked audio the masker appends in place (`fill`, which says whether it succeeded:
    /// if not, what it appended is dropped) — no buffer in between.
    pub fn release_with(&mut self, fill: impl FnOnce(&mut Vec<u8>) -> bool) {
        let before = self.ready.len();
        if !fill(&mut self.ready) {
            self.ready.truncate(before);
        }
    }

    /// A new masker starts at extended timestamp `ext`.
    pub fn restart(&mut self, ext: u64) {
        self.sent.restart(ext);
    }

    /// Whether packets wait.
    #[must_use]
    pub fn holds(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Appends to `out`, in order, every packet whose audio has been released.
    pub fn drain(&mut self, out: &mut Datagrams, stats: &mut RtpStats) {
        // Released audio placed in packets: dropped from `ready` once, at the end.
        let mut used = 0;
        while let Some(front) = self.queue.front() {
            let needed = match front {
                Queued::Pass(_) => 0,
                Queued::Gap { units, bps } => units * bps,
                Queued::Audio { audio, units, .. } => units * audio.codec.bytes_per_sample(),
            };
            if self.ready.len() - used < needed {
                break;
            }
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            match q {
                Queued::Pass(bytes) => {
                    stats.forwarded += 1;
                    out.push(&bytes);
                    self.recycle(bytes);
                }
                Queued::Gap { units, .. } => {
                    used += needed;
                    self.sent.skip(units);
                }
                Queued::Audio {
                    header,
                    seq,
                    audio,
                    ext,
                    units,
                    red,
                } => {
                    let bps = audio.codec.bytes_per_sample();
                    let masked = &self.ready[used..used + needed];
                    used += needed;
                    let sent = &mut self.sent;
                    out.push_with(|bytes| match red {
                        None => packet::write(&header, seq, masked, bytes),
                        Some(redundant) => {
                            packet::write(&header, seq, &[], bytes);
                            sent.rebuild(ext, audio, &redundant, masked, bytes);
                        }
                    });
                    sent.remember(ext, units, masked, bps);
                    self.recycle(header);
                    stats.forwarded += 1;
                }
            }
        }
        self.ready.drain(..used);
    }

    /// The masker is gone: what it did not release is dropped — audio packets counted as
    /// unprocessed, never sent unmasked — and the packets behind them go out.
    pub fn abandon(&mut self, out: &mut Datagrams, stats: &mut RtpStats) {
        let before = self.queue.len();
        self.queue.retain(|q| !matches!(q, Queued::Audio { .. }));
        stats.unprocessed += (before - self.queue.len()) as u64;
        self.queue.retain(|q| matches!(q, Queued::Pass(_)));
        self.drain(out, stats);
        self.ready.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    const PCMU: AudioType = AudioType {
        pt: 0,
        codec: Codec::Pcmu,
        rate: 8000,
    };

    fn packet(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        packet::Header {
            marker: false,
            pt: 0,
            seq,
            timestamp: 160 * u32::from(seq),
            ssrc: 1,
        }
        .emit(&mut b);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn packets_leave_in_order_once_their_audio_is_released_with_drops_closed_up() {
        let mut o = Outbox::default();
        let mut stats = RtpStats::default();
        let mut out = Datagrams::new();
        let a = packet(10, &[1, 2]);
        o.audio(&Packet::parse(&a).unwrap(), PCMU, 100, 2, None);
        o.drop_packet(); // packet 11 dropped
        let c = packet(12, &[3]);
        o.pass(&Packet::parse(&c).unwrap(), &[3]);
        o.drain(&mut out, &mut stats);
        assert!(out.is_empty(), "audio not released yet holds what follows");
        o.released(&[0xFF]);
        o.drain(&mut out, &mut stats);
        assert!(out.is_empty(), "half the audio is not enough");
        o.released(&[0xFE]);
        o.drain(&mut out, &mut stats);
        let got: Vec<(u16, Vec<u8>)> = out
            .iter()
            .map(|b| {
                let p = Packet::parse(b).unwrap();
                (p.seq(), p.payload().to_vec())
            })
            .collect();
        assert_eq!(got, [(10, alloc::vec![0xFF, 0xFE]), (11, alloc::vec![3])]);
        assert_eq!(stats.forwarded, 2);
    }

    #[test]
    fn audio_the_masker_never_released_is_dropped_and_counted() {
        let mut o = Outbox::default();
        let mut stats = RtpStats::default();
        let mut out = Datagrams::new();
        let a = packet(1, &[1, 2]);
        o.audio(&Packet::parse(&a).unwrap(), PCMU, 100, 2, None);
        o.pass_bytes(alloc::vec![0x80, 200]);
        o.released(&[0xFF]);
        o.abandon(&mut out, &mut stats);
        assert_eq!(out.to_vecs(), [alloc::vec![0x80, 200]]);
        assert_eq!(stats.unprocessed, 1);
        assert!(!o.holds());
    }
}
