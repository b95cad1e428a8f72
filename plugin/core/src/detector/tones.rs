//! The DTMF alphabet (ITU-T Q.23) and the level reference.

/// Low-group ("row") frequencies in Hz, Q.23.
pub const ROW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group ("column") frequencies in Hz, Q.23.
pub const COL_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// The 16 symbols, indexed `[row][column]`.
pub const SYMBOLS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Peak amplitude, in 16-bit linear units, of a sine at 0 dBm0.
///
/// G.711's digital milliwatt: a full-scale 16-bit sine is +3.14 dBm0, so 0 dBm0 is
/// 32767 / 10^(3.14/20) ≈ 22 826.
pub const DBM0_AMPLITUDE: f32 = 22_826.0;

/// Returns the (row, column) indices of a DTMF symbol, or `None` if `c` is not one.
#[must_use]
pub fn position(c: char) -> Option<(usize, usize)> {
    let c = c.to_ascii_uppercase();
    SYMBOLS
        .iter()
        .enumerate()
        .find_map(|(r, row)| row.iter().position(|&s| s == c).map(|col| (r, col)))
}

/// Peak amplitude of a sine at `dbm0` dBm0.
#[must_use]
pub fn amplitude_of_dbm0(dbm0: f32) -> f32 {
    DBM0_AMPLITUDE * libm::powf(10.0, dbm0 / 20.0)
}

/// Power (mean square) of a sine at `dbm0` dBm0.
#[must_use]
pub fn power_of_dbm0(dbm0: f32) -> f32 {
    let a = amplitude_of_dbm0(dbm0);
    a * a / 2.0
}
