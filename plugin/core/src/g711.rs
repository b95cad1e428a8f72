//! ITU-T G.711 companding: µ-law (PCMU) and A-law (PCMA).
//!
//! Linear samples are 16-bit. µ-law works on the top 14 bits, A-law on the top 13 bits, as in
//! G.711 §2 and the ITU-T G.191 software tools; the low bits are truncated on encoding. The
//! decoders return the ITU-T table values (Tables 2a/2b for µ-law, 1a/1b for A-law) scaled to
//! 16 bits. Tests compare all 256 codes each way, and all 65 536 linear inputs, against
//! independent reference tables in `testdata/g711/`.

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

/// Decodes µ-law codes into `out` (as many as both hold): [`ulaw_to_linear`] of each. A
/// table lookup per sample is a gather, which wasm SIMD has not (the compiler emulated it lane
/// by lane: 5 % of the RTP path); in wasm the codes are decoded eight at a time by G.711's
/// formula instead, the rest by the table.
pub fn decode_ulaw(codes: &[u8], out: &mut [i16]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (codes, out) = simd::decode(simd::Law::Mu, codes, out);
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ulaw_to_linear(c);
    }
}

/// Decodes A-law codes into `out` (as many as both hold): [`alaw_to_linear`] of each (see
/// [`decode_ulaw`]).
pub fn decode_alaw(codes: &[u8], out: &mut [i16]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let (codes, out) = simd::decode(simd::Law::A, codes, out);
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = alaw_to_linear(c);
    }
}

/// G.711 decoding in wasm SIMD128 lanes: eight codes at a time, each lane computing what the
/// tests' `formula` computes for one code (checked there against the tables for every code).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    /// Which of the two laws.
    #[derive(Clone, Copy, PartialEq)]
    pub(super) enum Law {
        Mu,
        A,
    }

    /// Decodes whole groups of eight codes; returns what is left of both slices.
    pub(super) fn decode<'a, 'b>(
        law: Law,
        codes: &'a [u8],
        out: &'b mut [i16],
    ) -> (&'a [u8], &'b mut [i16]) {
        let n = codes.len().min(out.len()) / 8 * 8;
        let (invert, powers) = match law {
            // 1 << segment; A-law's segment s ≥ 1 scales by 1 << (s − 1), segment 0 by 1.
            Law::Mu => (
                0xFF,
                u8x16(1, 2, 4, 8, 16, 32, 64, 128, 0, 0, 0, 0, 0, 0, 0, 0),
            ),
            Law::A => (
                0x55,
                u8x16(1, 1, 2, 4, 8, 16, 32, 64, 0, 0, 0, 0, 0, 0, 0, 0),
            ),
        };
        for (c, o) in codes[..n].chunks_exact(8).zip(out[..n].chunks_exact_mut(8)) {
            let bytes = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            let t = v128_xor(u16x8_extend_low_u8x16(u64x2(bytes, 0)), u16x8_splat(invert));
            let segment = v128_and(u16x8_shr(t, 4), u16x8_splat(7));
            let twice = i16x8_shl(v128_and(t, u16x8_splat(0x0F)), 1);
            // The segment indexes the powers in each lane's low byte; the high byte's index
            // (0x80) is out of range, so it reads 0.
            let power = i8x16_swizzle(powers, v128_or(segment, u16x8_splat(0x8000)));
            let top = v128_and(t, u16x8_splat(0x80));
            let (magnitude, negative) = match law {
                Law::Mu => {
                    let base = i16x8_add(twice, u16x8_splat(33));
                    let m = i16x8_sub(i16x8_mul(base, power), u16x8_splat(33));
                    (i16x8_shl(m, 2), i16x8_ne(top, u16x8_splat(0)))
                }
                Law::A => {
                    // Segment 0 counts from 1 instead of 33.
                    let first = v128_and(i16x8_eq(segment, u16x8_splat(0)), u16x8_splat(32));
                    let base = i16x8_sub(i16x8_add(twice, u16x8_splat(33)), first);
                    (
                        i16x8_shl(i16x8_mul(base, power), 3),
                        i16x8_eq(top, u16x8_splat(0)),
                    )
                }
            };
            let value = i16x8_sub(v128_xor(magnitude, negative), negative);
            let (low, high) = (
                u64x2_extract_lane::<0>(value),
                u64x2_extract_lane::<1>(value),
            );
            for (i, o) in o.iter_mut().enumerate() {
                let half = if i < 4 { low } else { high };
                *o = (half >> (16 * (i % 4))) as i16;
            }
        }
        (&codes[n..], &mut out[n..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one SIMD lane computes for code `c` (µ-law, or A-law when `alaw`), in the lanes'
    /// 16-bit wrapping arithmetic.
    fn formula(c: u8, alaw: bool) -> i16 {
        let t = u16::from(c ^ if alaw { 0x55 } else { 0xFF });
        let (segment, twice) = ((t >> 4) & 7, (t & 0x0F) << 1);
        let power = if alaw {
            1 << segment.saturating_sub(1)
        } else {
            1 << segment
        };
        let top = t & 0x80 != 0;
        let (magnitude, negative) = if alaw {
            let first = if segment == 0 { 32 } else { 0 };
            (((twice + 33 - first) * power) << 3, !top)
        } else {
            (((twice + 33) * power - 33) << 2, top)
        };
        let mask = if negative { 0xFFFF } else { 0 };
        ((magnitude ^ mask).wrapping_sub(mask)) as i16
    }

    #[test]
    fn the_simd_decoders_formula_gives_the_tables_values_for_every_code() {
        for c in 0..=255u8 {
            assert_eq!(formula(c, false), ulaw_to_linear(c), "µ-law {c:#04x}");
            assert_eq!(formula(c, true), alaw_to_linear(c), "A-law {c:#04x}");
        }
        // The bulk decoders (here the tables; in wasm the lanes and the tables) on runs of
        // every length and alignment.
        let codes: alloc::vec::Vec<u8> = (0..=255u8).chain(0..=255u8).rev().collect();
        for start in 0..17 {
            let codes = &codes[start..];
            let mut out = alloc::vec![0i16; codes.len() + 3];
            decode_ulaw(codes, &mut out);
            let want: alloc::vec::Vec<i16> = codes.iter().map(|&c| ulaw_to_linear(c)).collect();
            assert_eq!(out[..codes.len()], want[..]);
            assert_eq!(out[codes.len()..], [0; 3], "nothing past the codes");
            decode_alaw(codes, &mut out);
            let want: alloc::vec::Vec<i16> = codes.iter().map(|&c| alaw_to_linear(c)).collect();
            assert_eq!(out[..codes.len()], want[..]);
        }
    }

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
