//! Live counters a media node reads while its calls run: packets in and out per direction
//! and key presses as they pass, and how long each packet spent in the plugin (a histogram,
//! for Prometheus). A node keeps one for all its calls, and one per call (for `query`).
//! Updated with relaxed atomics from the relay's workers; nothing waits on them. Each thread
//! counts into its own shard (a cache line of its own per core), so workers on different cores
//! never fight over one line for the node's counters; readers add the shards up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Upper bounds of the processing-time buckets, µs (the last bucket is everything above).
pub const BUCKETS_US: [u64; 10] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

/// Directions, as the `direction` label names them.
pub const DIRECTIONS: [&str; 2] = ["caller_to_callee", "callee_to_caller"];

/// Why a caller→callee packet was dropped, as the `reason` label: the plugin's refusals
/// (the first five, from its counters), then the host's own.
pub const DROP_REASONS: [&str; 7] = [
    "malformed",
    "unknown_pt",
    "foreign_ssrc",
    "late",
    "unprocessed",
    "foreign_source",
    "plugin_trapped",
];
/// [`DROP_REASONS`]: from another source than the latched one.
pub const FOREIGN_SOURCE: usize = 5;
/// [`DROP_REASONS`]: the plugin instance had trapped.
pub const PLUGIN_TRAPPED: usize = 6;

/// The plugin's drop counts in `s`, in the order of [`DROP_REASONS`], and the RFC 4733
/// event packets it took out.
#[must_use]
pub fn plugin_drops(s: &crate::plugin::RtpStats) -> ([u64; 5], u64) {
    (
        [
            s.malformed,
            s.unknown_pt,
            s.foreign_ssrc,
            s.late,
            s.unprocessed,
        ],
        s.events_dropped,
    )
}

/// Counters of a node's calls, or of one call.
#[derive(Debug)]
pub struct Live {
    shards: Box<[Shard]>,
}

/// One thread's share of the counters, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    packets_in: [AtomicU64; 2],
    packets_out: [AtomicU64; 2],
    digits: [AtomicU64; 2],
    /// Packets per bucket (not cumulative); index `BUCKETS_US.len()` is above the last bound.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_ns: AtomicU64,
    /// Caller→callee packets dropped, by [`DROP_REASONS`].
    drops: [AtomicU64; DROP_REASONS.len()],
    /// RFC 4733 event packets taken out of caller audio.
    event_packets: AtomicU64,
}

impl Default for Live {
    /// One shard per core (at most 16).
    fn default() -> Self {
        static SHARDS: OnceLock<usize> = OnceLock::new();
        let n = *SHARDS
            .get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(16)));
        Live {
            shards: (0..n).map(|_| Shard::default()).collect(),
        }
    }
}

/// This thread's shard index (threads numbered as they first count).
fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|s| *s)
}

impl Live {
    /// The calling thread's shard.
    fn mine(&self) -> &Shard {
        &self.shards[slot() % self.shards.len()]
    }

    /// Sum over the shards of the counter `f` picks.
    fn sum(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }
}

impl Live {
    /// A packet arrived on direction `dir` (0: caller→callee) and was taken to the plugin.
    pub fn received(&self, dir: usize) {
        if let Some(c) = self.mine().packets_in.get(dir) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A packet left on direction `dir`.
    pub fn sent(&self, dir: usize) {
        if let Some(c) = self.mine().packets_out.get(dir) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A key press was reported on direction `dir`.
    pub fn digit(&self, dir: usize) {
        if let Some(c) = self.mine().digits.get(dir) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Key presses reported on direction `dir` so far.
    #[must_use]
    pub fn digits(&self, dir: usize) -> u64 {
        if dir >= 2 {
            return 0;
        }
        self.sum(|s| &s.digits[dir])
    }

    /// One packet spent `d` in the plugin.
    pub fn processed(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        let mine = self.mine();
        mine.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        mine.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// `n` more caller→callee packets dropped for reason `reason` (a [`DROP_REASONS`]
    /// index; others are ignored).
    pub fn dropped(&self, reason: usize, n: u64) {
        if let Some(c) = self.mine().drops.get(reason) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// `n` more RFC 4733 event packets taken out of caller audio.
    pub fn event_packets_dropped(&self, n: u64) {
        self.mine().event_packets.fetch_add(n, Ordering::Relaxed);
    }

    /// Caller→callee packets dropped so far, by [`DROP_REASONS`]; RFC 4733 event packets
    /// taken out.
    #[must_use]
    pub fn drops(&self) -> ([u64; DROP_REASONS.len()], u64) {
        (
            core::array::from_fn(|i| self.sum(|s| &s.drops[i])),
            self.sum(|s| &s.event_packets),
        )
    }

    /// Packets received and sent on direction `dir` so far.
    #[must_use]
    pub fn packets(&self, dir: usize) -> (u64, u64) {
        if dir >= 2 {
            return (0, 0);
        }
        (
            self.sum(|s| &s.packets_in[dir]),
            self.sum(|s| &s.packets_out[dir]),
        )
    }

    /// The histogram as Prometheus wants it: (upper bound in seconds, cumulative count) per
    /// bucket (the last bound infinite), the count, and the sum in seconds.
    #[must_use]
    pub fn histogram(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut total = 0;
        let mut rows = Vec::with_capacity(BUCKETS_US.len() + 1);
        for i in 0..=BUCKETS_US.len() {
            total += self.sum(|s| &s.buckets[i]);
            let le = BUCKETS_US
                .get(i)
                .map_or(f64::INFINITY, |&us| us as f64 / 1e6);
            rows.push((le, total));
        }
        let sum = self.sum(|s| &s.sum_ns) as f64 / 1e9;
        (rows, total, sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_count_per_direction_and_times_fall_into_cumulative_buckets() {
        let l = Live::default();
        l.received(0);
        l.received(0);
        l.sent(0);
        l.received(1);
        l.received(7); // no such direction: ignored
        assert_eq!(l.packets(0), (2, 1));
        assert_eq!(l.packets(1), (1, 0));
        l.processed(Duration::from_micros(8));
        l.processed(Duration::from_micros(30));
        l.processed(Duration::from_millis(50));
        let (rows, count, sum) = l.histogram();
        assert_eq!(count, 3);
        assert_eq!(rows[0], (10e-6, 1), "≤ 10 µs");
        assert_eq!(rows[2], (50e-6, 2), "≤ 50 µs, cumulative");
        assert_eq!(rows[9].1, 2, "≤ 10 ms");
        assert_eq!(rows[10], (f64::INFINITY, 3), "+Inf holds every packet");
        assert!((sum - 0.050_038).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn counts_from_many_threads_add_up() {
        let l = std::sync::Arc::new(Live::default());
        let threads: Vec<_> = (0..5)
            .map(|_| {
                let l = std::sync::Arc::clone(&l);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        l.received(0);
                        l.sent(1);
                        l.dropped(FOREIGN_SOURCE, 2);
                        l.processed(Duration::from_micros(20));
                    }
                    l.digit(1);
                    l.event_packets_dropped(3);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(l.packets(0), (5000, 0));
        assert_eq!(l.packets(1), (0, 5000));
        assert_eq!(l.digits(1), 5);
        let (drops, events) = l.drops();
        assert_eq!((drops[FOREIGN_SOURCE], events), (10_000, 15));
        assert_eq!(l.histogram().0[1], (25e-6, 5000));
    }
}
