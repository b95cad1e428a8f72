//! RTP packets (RFC 3550): parsing the fixed header, CSRC list, header extension and padding,
//! and writing a packet back with a new sequence number and payload.

use alloc::vec::Vec;
use core::fmt;

/// Fixed header length.
const FIXED: usize = 12;

/// Why bytes are not an RTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketError {
    /// Shorter than the 12-byte fixed header.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The version field is not 2.
    Version {
        /// The version found.
        version: u8,
    },
    /// The CSRC list runs past the end of the packet.
    TruncatedCsrc,
    /// The header extension runs past the end of the packet.
    TruncatedExtension,
    /// The padding count is 0 or larger than the payload.
    BadPadding,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::TooShort { len } => {
                write!(
                    f,
                    "RTP packet of {len} bytes is shorter than the 12-byte header"
                )
            }
            PacketError::Version { version } => write!(f, "RTP version {version}, not 2"),
            PacketError::TruncatedCsrc => f.write_str("RTP CSRC list runs past the packet"),
            PacketError::TruncatedExtension => {
                f.write_str("RTP header extension runs past the packet")
            }
            PacketError::BadPadding => f.write_str("RTP padding count is 0 or exceeds the payload"),
        }
    }
}

/// A parsed RTP packet, borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    bytes: &'a [u8],
    /// End of the header (CSRCs and extension included): where the payload starts.
    header_len: usize,
    /// End of the payload (padding excluded).
    payload_end: usize,
}

impl<'a> Packet<'a> {
    /// Parses `bytes`, checking every length field against the packet's size.
    pub fn parse(bytes: &'a [u8]) -> Result<Packet<'a>, PacketError> {
        if bytes.len() < FIXED {
            return Err(PacketError::TooShort { len: bytes.len() });
        }
        let version = bytes[0] >> 6;
        if version != 2 {
            return Err(PacketError::Version { version });
        }
        let csrcs = usize::from(bytes[0] & 0x0F);
        let mut header_len = FIXED + 4 * csrcs;
        if header_len > bytes.len() {
            return Err(PacketError::TruncatedCsrc);
        }
        if bytes[0] & 0x10 != 0 {
            if header_len + 4 > bytes.len() {
                return Err(PacketError::TruncatedExtension);
            }
            let words = usize::from(u16::from_be_bytes([
                bytes[header_len + 2],
                bytes[header_len + 3],
            ]));
            header_len += 4 + 4 * words;
            if header_len > bytes.len() {
                return Err(PacketError::TruncatedExtension);
            }
        }
        let mut payload_end = bytes.len();
        if bytes[0] & 0x20 != 0 {
            let pad = usize::from(bytes[bytes.len() - 1]);
            if pad == 0 || pad > bytes.len() - header_len {
                return Err(PacketError::BadPadding);
            }
            payload_end -= pad;
        }
        Ok(Packet {
            bytes,
            header_len,
            payload_end,
        })
    }

    /// Whether `bytes` look like RTCP multiplexed on the RTP port (RFC 5761: packet types
    /// 192–223 in the second byte, version 2).
    #[must_use]
    pub fn is_rtcp(bytes: &[u8]) -> bool {
        bytes.len() >= 2 && bytes[0] >> 6 == 2 && (192..=223).contains(&bytes[1])
    }

    /// Marker bit.
    #[must_use]
    pub fn marker(&self) -> bool {
        self.bytes[1] & 0x80 != 0
    }

    /// Payload type.
    #[must_use]
    pub fn payload_type(&self) -> u8 {
        self.bytes[1] & 0x7F
    }

    /// Sequence number.
    #[must_use]
    pub fn seq(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// Timestamp.
    #[must_use]
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]])
    }

    /// Synchronisation source.
    #[must_use]
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.bytes[8], self.bytes[9], self.bytes[10], self.bytes[11]])
    }

    /// The payload, padding excluded.
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len..self.payload_end]
    }

    /// The header as received (CSRCs and extension included).
    #[must_use]
    pub fn header(&self) -> &'a [u8] {
        &self.bytes[..self.header_len]
    }
}

/// Appends a packet to `out`: `header` (as received, at least the 12 fixed bytes) with the
/// padding bit cleared and sequence number `seq`, then `payload`.
pub fn write(header: &[u8], seq: u16, payload: &[u8], out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(header);
    if header.len() >= 4 {
        out[at] &= !0x20;
        out[at + 2..at + 4].copy_from_slice(&seq.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// A fixed header written from scratch (version 2; no padding, extension or CSRC) — for a
/// packet the session makes itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub pt: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

impl Header {
    /// Appends the 12 header bytes to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | (self.pt & 0x7F));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emitted_header_parses_back_to_its_fields() {
        let h = Header {
            marker: true,
            pt: 97,
            seq: 65_535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 7,
        };
        let mut out = Vec::new();
        h.emit(&mut out);
        out.extend_from_slice(&[1, 2, 3]);
        let p = Packet::parse(&out).unwrap();
        assert_eq!(
            (
                p.marker(),
                p.payload_type(),
                p.seq(),
                p.timestamp(),
                p.ssrc()
            ),
            (true, 97, 65_535, 0xDEAD_BEEF, 7)
        );
        assert_eq!(p.payload(), [1, 2, 3]);
    }
    use alloc::vec;

    fn packet(first: u8, extra: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            first,
            0x80 | 8,
            0x12,
            0x34,
            0,
            0,
            0x01,
            0x40,
            0xDE,
            0xAD,
            0xBE,
            0xEF,
        ];
        v.extend_from_slice(extra);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn reads_every_header_field() {
        let b = packet(0x80, &[], &[1, 2, 3]);
        let p = Packet::parse(&b).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 8);
        assert_eq!(p.seq(), 0x1234);
        assert_eq!(p.timestamp(), 320);
        assert_eq!(p.ssrc(), 0xDEAD_BEEF);
        assert_eq!(p.payload(), &[1, 2, 3]);
    }

    #[test]
    fn skips_csrcs_and_extension_and_strips_padding() {
        // Two CSRCs, a one-word extension, two bytes of padding.
        let extra = [0, 0, 0, 1, 0, 0, 0, 2, 0xBE, 0xDE, 0, 1, 9, 9, 9, 9];
        let b = packet(0x80 | 0x20 | 0x10 | 2, &extra, &[7, 7, 0, 2]);
        let p = Packet::parse(&b).unwrap();
        assert_eq!(p.payload(), &[7, 7]);
        assert_eq!(p.header().len(), 28);
        let mut out = vec![];
        write(p.header(), 99, p.payload(), &mut out);
        let q = Packet::parse(&out).unwrap();
        assert_eq!((q.seq(), q.payload()), (99, &[7u8, 7][..]));
    }

    #[test]
    fn refuses_inconsistent_lengths() {
        assert_eq!(
            Packet::parse(&[0x80; 11]).unwrap_err(),
            PacketError::TooShort { len: 11 }
        );
        assert_eq!(
            Packet::parse(&packet(0x40, &[], &[])).unwrap_err(),
            PacketError::Version { version: 1 }
        );
        assert_eq!(
            Packet::parse(&packet(0x80 | 3, &[0; 8], &[])).unwrap_err(),
            PacketError::TruncatedCsrc
        );
        assert_eq!(
            Packet::parse(&packet(0x90, &[0xBE, 0xDE, 0, 2, 0, 0, 0, 0], &[])).unwrap_err(),
            PacketError::TruncatedExtension
        );
        assert_eq!(
            Packet::parse(&packet(0xA0, &[], &[1, 0])).unwrap_err(),
            PacketError::BadPadding
        );
        assert_eq!(
            Packet::parse(&packet(0xA0, &[], &[1, 5])).unwrap_err(),
            PacketError::BadPadding
        );
    }
}
