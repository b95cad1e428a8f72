//! A DTMF digit as a value.

use crate::detector::tones::SYMBOLS;

/// One of the 16 DTMF symbols, stored as its (row, column) position.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit {
    row: u8,
    col: u8,
}

impl Digit {
    /// The digit at `row`, `col` (each 0..4).
    ///
    /// # Panics
    /// If either index is 4 or more (an internal invariant: callers index fixed tables).
    #[must_use]
    pub(crate) fn from_indices(row: usize, col: usize) -> Digit {
        assert!(row < 4 && col < 4, "DTMF index out of range");
        Digit {
            row: row as u8,
            col: col as u8,
        }
    }

    /// Parses `0-9`, `*`, `#`, `A-D` (either case).
    #[must_use]
    pub fn from_char(c: char) -> Option<Digit> {
        crate::detector::tones::position(c).map(|(r, col)| Digit::from_indices(r, col))
    }

    /// (row, column) indices.
    #[must_use]
    pub fn indices(self) -> (usize, usize) {
        (usize::from(self.row), usize::from(self.col))
    }

    /// The symbol.
    #[must_use]
    pub fn to_char(self) -> char {
        SYMBOLS[usize::from(self.row)][usize::from(self.col)]
    }
}

/// Digits are card data: `Debug` never shows which one.
impl core::fmt::Debug for Digit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Digit(REDACTED)")
    }
}
