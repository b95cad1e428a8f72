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

/// The steps of a batch given flat: step i at host time `times[i]` with the packet of
/// `lengths[i]` bytes taken next from `packets` (length 0: no packet). Refused unless there is
/// one length per time and the lengths add up to the packets' length.
pub fn steps<'a>(
    times: &'a [u64],
    lengths: &'a [u32],
    packets: &'a [u8],
) -> Result<impl Iterator<Item = (u64, Option<&'a [u8]>)> + 'a, Error> {
    let total = lengths
        .iter()
        .try_fold(0usize, |sum, &n| sum.checked_add(usize::try_from(n).ok()?));
    if times.len() != lengths.len() || total != Some(packets.len()) {
        return Err(Misuse::BadBatch.into());
    }
    let mut rest = packets;
    Ok(times.iter().zip(lengths).map(move |(&t, &n)| {
        let (p, after) = rest.split_at(n as usize);
        rest = after;
        (t, (n > 0).then_some(p))
    }))
}
