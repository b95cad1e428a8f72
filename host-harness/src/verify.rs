//! Verifying an events file (one signed envelope per line) with the core's verifier: every
//! line's MAC, key id and place in its call's numbering, then every call's end.

use crate::keys::KeyRing;
use anyhow::{Context, Result};
use std::io::{BufRead as _, Read as _};
use std::path::Path;
use tonemask_core::{Unfinished, Verified, Verifier, VerifyError};

/// Longest line read, bytes: an event line is about 300; anything longer is refused unread.
pub const MAX_LINE: usize = 4096;

/// The verdict on one line.
pub struct LineVerdict {
    /// 1-based line number.
    pub line: usize,
    /// Accepted record, or why not.
    pub result: Result<Verified, VerifyError>,
}

/// The verdict on a whole events stream.
pub struct Report {
    /// One per non-empty line.
    pub lines: Vec<LineVerdict>,
    /// Calls that did not end properly (cut, or records missing).
    pub unfinished: Vec<Unfinished>,
}

impl Report {
    /// Lines refused.
    #[must_use]
    pub fn rejected(&self) -> usize {
        self.lines.iter().filter(|v| v.result.is_err()).count()
    }

    /// Accepted records that follow a gap in their call's numbering.
    #[must_use]
    pub fn gaps(&self) -> usize {
        self.lines
            .iter()
            .filter(|v| v.result.as_ref().is_ok_and(|ok| ok.gap.is_some()))
            .count()
    }

    /// Accepted records whose `prev` is not the hash of their call's line before them (a
    /// line removed, altered or foreign before them, or the call's start record missing).
    #[must_use]
    pub fn broken_links(&self) -> usize {
        self.lines
            .iter()
            .filter(|v| v.result.as_ref().is_ok_and(|ok| ok.broken_chain))
            .count()
    }

    /// Whether the stream is whole: at least one record, every line accepted, no gap, the
    /// audit chain unbroken, every call ended with its record count complete.
    #[must_use]
    pub fn whole(&self) -> bool {
        !self.lines.is_empty()
            && self.rejected() == 0
            && self.gaps() == 0
            && self.broken_links() == 0
            && self.unfinished.is_empty()
    }
}

/// Verifies every non-empty line of `text` in order, then the calls' ends.
#[must_use]
pub fn verify_lines(keys: &KeyRing, text: &str) -> Report {
    let mut v = Verifier::new(keys.verifying());
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| LineVerdict {
            line: i + 1,
            result: v.verify(l),
        })
        .collect();
    Report {
        lines,
        unfinished: v.finish(),
    }
}

/// Verifies an events file line by line (never more than [`MAX_LINE`] bytes of a line in
/// memory).
pub fn verify_file(keys: &KeyRing, path: &Path) -> Result<Report> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut r = std::io::BufReader::new(f);
    let mut v = Verifier::new(keys.verifying());
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        let read = (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        let result = if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            skip_line(&mut r).with_context(|| format!("cannot read {}", path.display()))?;
            Err(VerifyError::Malformed("line longer than 4096 bytes"))
        } else {
            match std::str::from_utf8(&buf) {
                Ok(l) if l.trim().is_empty() => continue,
                Ok(l) => v.verify(l.trim_end_matches(['\r', '\n'])),
                Err(_) => Err(VerifyError::Malformed("not UTF-8")),
            }
        };
        lines.push(LineVerdict { line: n, result });
    }
    Ok(Report {
        lines,
        unfinished: v.finish(),
    })
}

/// Reads past the rest of the current line without keeping it.
fn skip_line(r: &mut impl std::io::BufRead) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            r.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        r.consume(n);
    }
}
