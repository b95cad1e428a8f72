//! Audio codecs a session can carry: G.711 µ-law, G.711 A-law and 16-bit linear.
//!
//! Inside a session every sample is a *unit*: the codec's own code (a G.711 byte, or the L16
//! sample's bits). Units are what the delay line stores, so audio that is not masked leaves
//! the session bit-identical to how it came in, whatever the codec.

use crate::g711;

/// The codec of a session's audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law (RTP payload PCMU), one byte per sample.
    Pcmu,
    /// G.711 A-law (RTP payload PCMA), one byte per sample.
    Pcma,
    /// 16-bit linear PCM; as bytes it is big-endian (network order, RFC 3551 L16).
    L16,
}

impl Codec {
    /// Bytes per sample in the codec's wire form.
    #[must_use]
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Codec::Pcmu | Codec::Pcma => 1,
            Codec::L16 => 2,
        }
    }

    /// Decodes a unit to a linear sample.
    #[must_use]
    pub fn decode(self, unit: u16) -> i16 {
        match self {
            Codec::Pcmu => g711::ulaw_to_linear(unit as u8),
            Codec::Pcma => g711::alaw_to_linear(unit as u8),
            Codec::L16 => unit as i16,
        }
    }

    /// Encodes a linear sample to a unit.
    #[must_use]
    pub fn encode(self, sample: i16) -> u16 {
        match self {
            Codec::Pcmu => u16::from(g711::linear_to_ulaw(sample)),
            Codec::Pcma => u16::from(g711::linear_to_alaw(sample)),
            Codec::L16 => sample as u16,
        }
    }

    /// Reads units `at..at + out.len()` from the codec's wire bytes into `out`.
    pub(crate) fn units_at(self, bytes: &[u8], at: usize, out: &mut [u16]) {
        self.read_at(bytes, at, out, |u| u);
    }

    /// Decodes samples `at..at + out.len()` of the codec's wire bytes into `out`.
    pub(crate) fn samples_at(self, bytes: &[u8], at: usize, out: &mut [i16]) {
        self.read_at(bytes, at, out, |u| self.decode(u));
    }

    /// Reads units `at..at + out.len()` of the wire bytes, each converted by `convert`.
    fn read_at<T>(self, bytes: &[u8], at: usize, out: &mut [T], convert: impl Fn(u16) -> T) {
        match self {
            Codec::Pcmu | Codec::Pcma => {
                for (o, &b) in out.iter_mut().zip(&bytes[at..]) {
                    *o = convert(u16::from(b));
                }
            }
            Codec::L16 => {
                for (o, c) in out.iter_mut().zip(bytes[2 * at..].chunks_exact(2)) {
                    *o = convert(u16::from_be_bytes([c[0], c[1]]));
                }
            }
        }
    }

    /// Writes units as the codec's wire bytes.
    pub(crate) fn write_units(self, units: &[u16], out: &mut alloc::vec::Vec<u8>) {
        match self {
            Codec::Pcmu | Codec::Pcma => out.extend(units.iter().map(|&u| u as u8)),
            Codec::L16 => {
                for u in units {
                    out.extend_from_slice(&u.to_be_bytes());
                }
            }
        }
    }
}
