//! G.711 against independent reference tables (testdata/g711, made by testdata/generate.py):
//! decoding of all 256 codes (sox, agreeing with Python's audioop) and encoding of all
//! 65 536 16-bit values (audioop's CCITT code, which truncates to 14/13 bits as G.711 does).

use tonemask_core::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};

const ULAW_DECODE: &[u8] = include_bytes!("../../../testdata/g711/ulaw_decode.s16le");
const ALAW_DECODE: &[u8] = include_bytes!("../../../testdata/g711/alaw_decode.s16le");
const ULAW_ENCODE: &[u8] = include_bytes!("../../../testdata/g711/ulaw_encode.u8");
const ALAW_ENCODE: &[u8] = include_bytes!("../../../testdata/g711/alaw_encode.u8");

fn decode_table(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

#[test]
fn ulaw_decodes_all_256_codes_as_the_reference() {
    let t = decode_table(ULAW_DECODE);
    assert_eq!(t.len(), 256);
    for code in 0..=255u8 {
        assert_eq!(
            ulaw_to_linear(code),
            t[usize::from(code)],
            "code {code:#04x}"
        );
    }
}

#[test]
fn alaw_decodes_all_256_codes_as_the_reference() {
    let t = decode_table(ALAW_DECODE);
    assert_eq!(t.len(), 256);
    for code in 0..=255u8 {
        assert_eq!(
            alaw_to_linear(code),
            t[usize::from(code)],
            "code {code:#04x}"
        );
    }
}

#[test]
fn ulaw_encodes_every_16_bit_value_as_the_reference() {
    assert_eq!(ULAW_ENCODE.len(), 65536);
    for (i, &code) in ULAW_ENCODE.iter().enumerate() {
        let x = (i as i32 - 32768) as i16;
        assert_eq!(linear_to_ulaw(x), code, "sample {x}");
    }
}

#[test]
fn alaw_encodes_every_16_bit_value_as_the_reference() {
    assert_eq!(ALAW_ENCODE.len(), 65536);
    for (i, &code) in ALAW_ENCODE.iter().enumerate() {
        let x = (i as i32 - 32768) as i16;
        assert_eq!(linear_to_alaw(x), code, "sample {x}");
    }
}
