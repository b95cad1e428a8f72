//! Verifying an events file (one signed envelope per line) with the core's verifier.

use crate::keys::KeyRing;
use tonemask_core::{Verified, Verifier, VerifyError};

/// The verdict on one line.
pub struct LineVerdict {
    /// 1-based line number.
    pub line: usize,
    /// Accepted event, or why not.
    pub result: Result<Verified, VerifyError>,
}

/// Verifies every non-empty line of `text` in order.
#[must_use]
pub fn verify_lines(keys: &KeyRing, text: &str) -> Vec<LineVerdict> {
    let mut v = Verifier::new(keys.verifying());
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| LineVerdict {
            line: i + 1,
            result: v.verify(l),
        })
        .collect()
}
