//! Many steps of one session in one call: a host that has several packets of a stream at hand
//! (a capture read ahead, a replay) hands them over together instead of one crossing each.
//!
//! A step is a host time and, optionally, the packet that arrived then. Each step first lets
//! time pass to its host time — every deadline that fell due by then handled at its own time,
//! as a host that calls [`RtpSession::handle_timeout`] at each [`RtpSession::poll_timeout`]
//! would ([`RtpSession::catch_up`]) — then takes its packet. The packets released come out in
//! order, each marked with the step it left at and, for those a deadline released, that
//! deadline: a host stamps and orders them exactly as one crossing per step would have.

use super::{Datagrams, RtpSession};
use crate::error::{Error, Misuse};
use alloc::vec::Vec;

/// What a run of steps released (reused from run to run: it keeps its capacity).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The packets to forward, in order.
    pub out: Datagrams,
    /// Per step taken, two counts: the packets of `out` its deadlines released, then those
    /// its packet released (in that order).
    pub counts: Vec<[u32; 2]>,
    /// For each packet a deadline released, in order: that deadline (host ms).
    pub dues: Vec<u64>,
}

impl Batch {
    /// Empty.
    #[must_use]
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Forgets what it held, keeping the capacity.
    pub fn clear(&mut self) {
        self.out.clear();
        self.counts.clear();
        self.dues.clear();
    }

    /// Appends the packets in their flat form: each a [`PACKET_HEAD`] — step, deadline,
    /// whether a deadline released it, length — then the packet.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.out.bytes().len() + PACKET_HEAD * self.out.len());
        for (step, due, p) in self.iter() {
            let step = u32::try_from(step).unwrap_or(u32::MAX);
            out.extend_from_slice(&step.to_le_bytes());
            out.extend_from_slice(&due.unwrap_or(0).to_le_bytes());
            out.push(u8::from(due.is_some()));
            out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(p);
        }
    }

    /// The packets in order, each with the step it left at (counted from 0) and the
    /// deadline that released it (none: the step's packet did).
    pub fn iter(&self) -> impl Iterator<Item = (usize, Option<u64>, &[u8])> + '_ {
        let mut dues = self.dues.iter().copied();
        let marks = self
            .counts
            .iter()
            .enumerate()
            .flat_map(|(step, &[timed, pushed])| {
                (0..timed)
                    .map(move |_| (step, true))
                    .chain((0..pushed).map(move |_| (step, false)))
            });
        marks
            .zip(self.out.iter())
            .map(move |((step, timed), p)| (step, if timed { dues.next() } else { None }, p))
    }
}

/// How a run of steps ended.
#[derive(Debug)]
pub struct Taken {
    /// How many steps were taken: all of them, unless one was refused.
    pub steps: usize,
    /// Why the last step taken went wrong: its packet refused and dropped (the host may go on
    /// with the steps after it), or the session misused (it was flushed).
    pub refused: Option<Error>,
}

impl RtpSession {
    /// Host time has reached `now`: every deadline due by then is handled, each at its own
    /// time, in order. The packets released are appended to `out`, and each one's deadline to
    /// `dues`.
    pub fn catch_up(
        &mut self,
        now: u64,
        out: &mut Datagrams,
        dues: &mut Vec<u64>,
    ) -> Result<(), Error> {
        while let Some(due) = self.poll_timeout().filter(|&t| t <= now) {
            let before = out.len();
            self.handle_timeout(due, out)?;
            dues.extend(core::iter::repeat_n(due, out.len() - before));
            if self.poll_timeout() == Some(due) {
                break; // Nothing more can fall due at the same time.
            }
        }
        Ok(())
    }

    /// Takes `steps` in order — each: time passes to its host time ([`RtpSession::catch_up`]),
    /// then its packet, if any, is pushed ([`RtpSession::push`]) — appending what they release
    /// to `batch` (not cleared first). Stops after a step that went wrong.
    pub fn advance<'a>(
        &mut self,
        steps: impl IntoIterator<Item = (u64, Option<&'a [u8]>)>,
        batch: &mut Batch,
    ) -> Taken {
        let mut taken = 0;
        for (now, packet) in steps {
            taken += 1;
            let before = batch.out.len();
            let caught = self.catch_up(now, &mut batch.out, &mut batch.dues);
            let timed = batch.out.len() - before;
            let pushed = caught.and_then(|()| match packet {
                Some(p) => self.push(now, p, &mut batch.out),
                None => Ok(()),
            });
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            batch
                .counts
                .push([count(timed), count(batch.out.len() - before - timed)]);
            if let Err(e) = pushed {
                return Taken {
                    steps: taken,
                    refused: Some(e),
                };
            }
        }
        Taken {
            steps: taken,
            refused: None,
        }
    }
}

/// Bytes before each step's packet in the flat form [`steps`] reads: the step's host time
/// (u64) and its packet's length (u32; 0: no packet), little-endian.
pub const STEP_HEAD: usize = 12;

/// Bytes before each packet in the flat form [`Batch::write_to`] writes: the step it left
/// at (u32), the deadline that released it (u64; 0 when its step's packet did), 1 when a
/// deadline released it else 0 (u8), its length (u32) — little-endian.
pub const PACKET_HEAD: usize = 17;

/// The steps of a batch given flat: each a [`STEP_HEAD`] — host time, packet length — then
/// the packet. Refused (nothing taken) unless the bytes are exactly such steps.
pub fn steps(bytes: &[u8]) -> Result<impl Iterator<Item = (u64, Option<&[u8]>)> + '_, Error> {
    let next = |rest: &[u8]| -> Option<(u64, usize)> {
        let head = rest.get(..STEP_HEAD)?;
        let (time, len) = head.split_at(8);
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        (rest.len() - STEP_HEAD >= len)
            .then(|| (u64::from_le_bytes(time.try_into().unwrap_or([0; 8])), len))
    };
    let mut rest = bytes;
    while !rest.is_empty() {
        let (_, len) = next(rest).ok_or(Error::Misuse(Misuse::BadBatch))?;
        rest = &rest[STEP_HEAD + len..];
    }
    let mut rest = bytes;
    Ok(core::iter::from_fn(move || {
        let (time, len) = next(rest)?;
        let packet = &rest[STEP_HEAD..STEP_HEAD + len];
        rest = &rest[STEP_HEAD + len..];
        Some((time, (len > 0).then_some(packet)))
    }))
}
