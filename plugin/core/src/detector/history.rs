//! The last few analysed half-blocks, and the edge refinement that reads them.

use super::goertzel::Complex;
use crate::digit::Digit;

/// Half-blocks kept: an onset edge reaches back at most `LEN` − presence − 1 half-blocks, an end
/// edge forward at most the debouncer's absence.
pub const LEN: usize = 12;
/// How far, and how readily, an edge is extended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EdgeRule {
    /// A half-block counts as filled by the tone at ≥ this fraction of the digit's energy per
    /// half (0.7 = −1.5 dB for reported digits).
    pub full_half: f32,
    /// Half-blocks the onset edge may be moved back by, at most.
    pub max_before: u64,
    /// Half-blocks the end edge may be moved on by, at most.
    pub max_after: u64,
    /// Samples added beyond the estimated edge in a partly filled half-block, per 51-sample
    /// half (8 = 1 ms at any rate).
    pub margin_per_51: u64,
}

/// One analysed half-block.
#[derive(Clone, Copy, Default)]
pub struct Half {
    /// Goertzel outputs of the eight filters.
    pub y: [Complex; 8],
    /// Σx² over the half-block.
    pub energy: f32,
}

/// Sums of the row and column tone energy over the hit half-blocks of a digit.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Level {
    sum: [f32; 2],
    halves: u32,
}

impl Level {
    /// Adds one half-block's tone energies.
    #[must_use]
    pub fn add(self, e: [f32; 2]) -> Level {
        Level {
            sum: [self.sum[0] + e[0], self.sum[1] + e[1]],
            halves: self.halves + 1,
        }
    }

    /// How much of a half-block with tone energies `e` the tone fills: the larger of the two
    /// tones' ratios to their mean energy per half (≈ 1 full, `(k/H)²` for `k` samples).
    fn fill_ratio(self, e: [f32; 2]) -> f32 {
        let n = self.halves.max(1) as f32;
        let r = |i: usize| e[i] * n / self.sum[i].max(f32::MIN_POSITIVE);
        r(0).max(r(1))
    }
}

/// A ring of recent half-blocks: each filter's power (all the edges read), and the latest
/// half-block in full (the next window's first half). Powers rather than the complex outputs
/// halve what a session carries for it (a host keeps thousands of sessions).
pub struct History {
    /// |y|² of the eight filters, per half-block, in a ring.
    powers: [[f32; 8]; LEN],
    /// The latest half-block (valid once `count` > 0).
    latest: Half,
    /// Half-blocks analysed so far.
    count: u64,
    /// Samples per half-block.
    half: usize,
}

impl History {
    /// An empty history of `half`-sample half-blocks.
    #[must_use]
    pub fn new(half: usize) -> History {
        History {
            powers: [[0.0; 8]; LEN],
            latest: Half::default(),
            count: 0,
            half,
        }
    }

    /// Samples per half-block.
    #[must_use]
    pub fn half(&self) -> usize {
        self.half
    }

    /// The latest half-block, if any.
    #[must_use]
    pub fn latest(&self) -> Option<&Half> {
        (self.count > 0).then_some(&self.latest)
    }

    /// Appends a half-block; returns its index.
    pub fn push(&mut self, h: Half) -> u64 {
        let index = self.count;
        self.powers[(index % LEN as u64) as usize] = h.y.map(Complex::norm_sqr);
        self.latest = h;
        self.count += 1;
        index
    }

    /// Energies of `digit`'s two tones in half-block `index`, if still kept.
    #[must_use]
    pub fn tone_energy(&self, index: u64, digit: Digit) -> Option<[f32; 2]> {
        let (r, c) = digit.indices();
        (index < self.count && index + LEN as u64 >= self.count).then(|| {
            let p = &self.powers[(index % LEN as u64) as usize];
            [p[r], p[4 + c]]
        })
    }

    /// `digit`'s level over half-blocks `first..=last`.
    #[must_use]
    pub fn level(&self, first: u64, last: u64, digit: Digit) -> Level {
        (first..=last)
            .filter_map(|i| self.tone_energy(i, digit))
            .fold(Level::default(), Level::add)
    }

    /// Walks outward from the half-block next to a digit (`step` = −1 before, +1 after):
    /// whole halves join while the tone fills them; the first partly filled half adds the
    /// samples its energy accounts for (a tone in `k` samples of a half has |X| ∝ k, so
    /// k ≈ H·√ratio), plus the rule's margin. The extension never exceeds the rule's `max_before` (onset) or `max_after` (end)
    /// half-blocks. Returns the samples to add to that edge.
    #[must_use]
    pub fn edge_extension(
        &self,
        rule: EdgeRule,
        next: Option<u64>,
        step: i64,
        digit: Digit,
        level: Level,
    ) -> u64 {
        let h = self.half as u64;
        let mut extra = 0;
        let mut index = next;
        let max = if step < 0 {
            rule.max_before
        } else {
            rule.max_after
        };
        for _ in 0..max {
            let Some(i) = index else { break };
            let ratio = self
                .tone_energy(i, digit)
                .map_or(0.0, |e| level.fill_ratio(e));
            if ratio >= rule.full_half {
                extra += h;
                index = i.checked_add_signed(step);
                continue;
            }
            let margin = rule.margin_per_51 * h / 51;
            let k = libm::ceilf(self.half as f32 * libm::sqrtf(ratio)) as u64 + margin;
            extra += k.min(h);
            break;
        }
        extra
    }
}
