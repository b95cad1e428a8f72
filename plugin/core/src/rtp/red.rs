//! RFC 2198 redundant audio (RED): a payload of several blocks, each with its own payload
//! type — older copies first, the primary last.

use alloc::vec::Vec;
use core::fmt;

/// Why a RED payload is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedError {
    /// The block headers run past the payload.
    TruncatedHeaders,
    /// The redundant blocks' lengths add up to more than the payload.
    TruncatedBlocks,
}

impl fmt::Display for RedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RedError::TruncatedHeaders => "RED block headers run past the payload",
            RedError::TruncatedBlocks => "RED block lengths exceed the payload",
        })
    }
}

/// One block of a RED payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block<'a> {
    /// The block's payload type.
    pub pt: u8,
    /// How far before the packet's timestamp the block starts (0 for the primary).
    pub ts_offset: u16,
    /// The block's data.
    pub data: &'a [u8],
}

/// Parses a RED payload into its blocks, oldest first, the primary last.
pub fn parse(payload: &[u8]) -> Result<Vec<Block<'_>>, RedError> {
    let mut heads = Vec::new();
    let mut at = 0;
    loop {
        let &first = payload.get(at).ok_or(RedError::TruncatedHeaders)?;
        if first & 0x80 == 0 {
            heads.push((first & 0x7F, 0u16, None));
            at += 1;
            break;
        }
        let h = payload.get(at..at + 4).ok_or(RedError::TruncatedHeaders)?;
        let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let ts_offset = ((word >> 10) & 0x3FFF) as u16;
        let len = (word & 0x3FF) as usize;
        heads.push((first & 0x7F, ts_offset, Some(len)));
        at += 4;
    }
    let mut blocks = Vec::with_capacity(heads.len());
    for (pt, ts_offset, len) in heads {
        let end = match len {
            Some(len) => at + len,
            None => payload.len(),
        };
        let data = payload.get(at..end).ok_or(RedError::TruncatedBlocks)?;
        blocks.push(Block {
            pt,
            ts_offset,
            data,
        });
        at = end;
    }
    Ok(blocks)
}

/// Writes `blocks` (oldest first, primary last) as a RED payload. Redundant blocks longer
/// than 1023 bytes or further back than 16383 ticks cannot be expressed and are left out.
pub fn write(blocks: &[Block<'_>], out: &mut Vec<u8>) {
    let Some((primary, redundant)) = blocks.split_last() else {
        return;
    };
    let fits = |b: &&Block<'_>| b.data.len() <= 0x3FF && b.ts_offset <= 0x3FFF;
    for b in redundant.iter().filter(fits) {
        let word = (1u32 << 31)
            | (u32::from(b.pt & 0x7F) << 24)
            | (u32::from(b.ts_offset) << 10)
            | b.data.len() as u32;
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.push(primary.pt & 0x7F);
    for b in redundant.iter().filter(fits) {
        out.extend_from_slice(b.data);
    }
    out.extend_from_slice(primary.data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trips_redundant_and_primary_blocks() {
        let blocks = [
            Block {
                pt: 101,
                ts_offset: 320,
                data: &[1, 0x0A, 0, 160],
            },
            Block {
                pt: 0,
                ts_offset: 0,
                data: &[0xFF; 5],
            },
        ];
        let mut out = vec![];
        write(&blocks, &mut out);
        assert_eq!(out.len(), 4 + 1 + 4 + 5);
        assert_eq!(parse(&out).unwrap(), blocks);
    }

    #[test]
    fn refuses_truncated_payloads() {
        assert_eq!(parse(&[]), Err(RedError::TruncatedHeaders));
        assert_eq!(parse(&[0x80 | 101, 0, 0]), Err(RedError::TruncatedHeaders));
        // A redundant block of 4 bytes, but only 2 follow the headers.
        assert_eq!(
            parse(&[0x80 | 101, 0, 0, 4, 0, 1, 2]),
            Err(RedError::TruncatedBlocks)
        );
    }
}
