//! Writing frames back as a classic pcap file, and the ones'-complement sum the IPv4 and UDP
//! checksums of rewritten frames need.

use super::*;

/// The ones'-complement sum of `bytes` (as big-endian 16-bit words) added to `start`.
pub(crate) fn ones_complement(bytes: &[u8], start: u16) -> u16 {
    let mut sum = u32::from(start);
    for c in bytes.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Writes `frames` as a classic pcap file (all frames must share one link type); a frame cut
/// short keeps its original length.
pub fn write_pcap(frames: &[Frame]) -> Result<Vec<u8>> {
    let link = frames.first().map_or(DataLink::ETHERNET, |f| f.link);
    if let Some(f) = frames.iter().find(|f| f.link != link) {
        bail!(
            "the capture mixes link types ({:?} and {:?}); a pcap file holds one",
            link,
            f.link
        );
    }
    let header = PcapHeader {
        datalink: link,
        snaplen: 262_144,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).context("writing pcap header")?;
    for f in frames {
        let len = u32::try_from(f.orig_len.max(f.data.len())).context("frame too large")?;
        w.write_packet(&PcapPacket::new(f.ts, len, &f.data))
            .context("writing pcap record")?;
    }
    Ok(w.into_writer())
}
