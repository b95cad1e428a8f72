//! # tonemask-capture
//!
//! Packet captures: reading pcap and pcapng (pcap-file), finding the UDP datagrams in them
//! (etherparse: Ethernet, Linux cooked v1/v2, raw IP, BSD loopback; IPv4 and IPv6), and
//! writing a capture back with some datagrams' payloads replaced.

use anyhow::{anyhow, bail, Context, Result};
use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Capture time.
    pub ts: Duration,
    /// Link-layer type of the interface it was captured on.
    pub link: DataLink,
    /// The bytes, from the link-layer header on.
    pub data: Vec<u8>,
}

/// A whole capture.
#[derive(Debug)]
pub struct Capture {
    /// "pcap" or "pcapng".
    pub format: &'static str,
    /// Frames in file order.
    pub frames: Vec<Frame>,
    /// Whether the file ended inside a record (the frames before it are kept).
    pub truncated: bool,
}

/// Whether a reader error means the file simply ends early.
fn is_truncation(e: &pcap_file::PcapError) -> bool {
    match e {
        pcap_file::PcapError::IncompleteBuffer => true,
        pcap_file::PcapError::IoError(io) => io.kind() == std::io::ErrorKind::UnexpectedEof,
        _ => false,
    }
}

/// A UDP datagram found in a frame.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// UDP payload.
    pub payload: &'a [u8],
    /// Where the IP header starts in the frame.
    ip_offset: usize,
    /// Where the UDP header starts in the frame.
    udp_offset: usize,
}

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xD4, 0xC3, 0xB2, 0xA1],
    [0xA1, 0xB2, 0xC3, 0xD4],
    [0x4D, 0x3C, 0xB2, 0xA1],
    [0xA1, 0xB2, 0x3C, 0x4D],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];

/// Whether `bytes` start like a pcap or pcapng file.
#[must_use]
pub fn is_capture(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && {
        let m = [bytes[0], bytes[1], bytes[2], bytes[3]];
        PCAP_MAGICS.contains(&m) || m == PCAPNG_MAGIC
    }
}

impl Capture {
    /// Reads a pcap or pcapng file's bytes. A truncated last record ends the capture (as
    /// tcpdump and tshark do); any other damage is an error naming it.
    pub fn parse(bytes: &[u8]) -> Result<Capture> {
        if bytes.len() >= 4 && bytes[..4] == PCAPNG_MAGIC {
            return Self::pcapng(bytes);
        }
        if !is_capture(bytes) {
            bail!("not a pcap or pcapng capture (unknown magic number)");
        }
        let mut r = PcapReader::new(bytes).map_err(|e| anyhow!("bad pcap header: {e}"))?;
        let link = r.header().datalink;
        let mut frames = Vec::new();
        let mut truncated = false;
        while let Some(p) = r.next_packet() {
            match p {
                Ok(p) => frames.push(Frame {
                    ts: p.timestamp,
                    link,
                    data: p.data.into_owned(),
                }),
                Err(e) if is_truncation(&e) => {
                    truncated = true;
                    break;
                }
                Err(e) => bail!("bad pcap record after {} frames: {e}", frames.len()),
            }
        }
        Ok(Capture {
            format: "pcap",
            frames,
            truncated,
        })
    }

    fn pcapng(bytes: &[u8]) -> Result<Capture> {
        let mut r = PcapNgReader::new(bytes).map_err(|e| anyhow!("bad pcapng header: {e}"))?;
        let mut frames = Vec::new();
        let mut truncated = false;
        while let Some(b) = r.next_block() {
            let b = match b {
                Ok(b) => b,
                Err(e) if is_truncation(&e) => {
                    truncated = true;
                    break;
                }
                Err(e) => bail!("bad pcapng block after {} frames: {e}", frames.len()),
            };
            let (ts, data, interface) = match b {
                Block::EnhancedPacket(p) => (p.timestamp, p.data.into_owned(), p.interface_id),
                Block::SimplePacket(p) => (Duration::ZERO, p.data.into_owned(), 0),
                _ => continue,
            };
            let link = r
                .interfaces()
                .get(interface as usize)
                .map(|i| i.linktype)
                .ok_or_else(|| {
                    anyhow!("pcapng packet refers to interface {interface}, which is not described")
                })?;
            frames.push(Frame { ts, link, data });
        }
        Ok(Capture {
            format: "pcapng",
            frames,
            truncated,
        })
    }
}

impl Frame {
    /// The UDP datagram this frame carries, if it carries one (unfragmented IPv4 or IPv6).
    #[must_use]
    pub fn datagram(&self) -> Option<Datagram<'_>> {
        let d = &self.data[..];
        let sliced = match self.link {
            DataLink::ETHERNET => SlicedPacket::from_ethernet(d).ok()?,
            // etherparse refuses some hardware types (loopback, captured on "any"), so the
            // cooked headers are skipped here: protocol at 14 (v1) or 0 (v2).
            DataLink::LINUX_SLL => {
                let proto = u16::from_be_bytes([*d.get(14)?, *d.get(15)?]);
                SlicedPacket::from_ether_type(EtherType(proto), d.get(16..)?).ok()?
            }
            DataLink::LINUX_SLL2 => {
                let proto = u16::from_be_bytes([*d.first()?, *d.get(1)?]);
                SlicedPacket::from_ether_type(EtherType(proto), d.get(20..)?).ok()?
            }
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(d).ok()?,
            DataLink::NULL | DataLink::LOOP => SlicedPacket::from_ip(d.get(4..)?).ok()?,
            _ => return None,
        };
        let (src, dst, ip) = match sliced.net.as_ref()? {
            NetSlice::Ipv4(v4) if !v4.is_payload_fragmented() => (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
                v4.header().slice(),
            ),
            NetSlice::Ipv6(v6) if !v6.is_payload_fragmented() => (
                IpAddr::V6(v6.header().source_addr()),
                IpAddr::V6(v6.header().destination_addr()),
                v6.header().slice(),
            ),
            _ => return None,
        };
        let TransportSlice::Udp(udp) = sliced.transport.as_ref()? else {
            return None;
        };
        let offset = |s: &[u8]| s.as_ptr() as usize - d.as_ptr() as usize;
        Some(Datagram {
            src: SocketAddr::new(src, udp.source_port()),
            dst: SocketAddr::new(dst, udp.destination_port()),
            payload: udp.payload(),
            ip_offset: offset(ip),
            udp_offset: offset(udp.slice()),
        })
    }

    /// This frame with the UDP payload of `dg` (found in it) replaced by `payload`: lengths
    /// fixed in the IP and UDP headers, the IPv4 header checksum recomputed, the UDP checksum
    /// recomputed.
    #[must_use]
    pub fn with_payload(&self, dg: &Datagram<'_>, payload: &[u8]) -> Frame {
        let mut d = self.data[..dg.udp_offset + 8].to_vec();
        d.extend_from_slice(payload);
        let udp_len = 8 + payload.len();
        let ip = dg.ip_offset;
        let v6 = d[ip] >> 4 == 6;
        if v6 {
            let ip_payload = d.len() - ip - 40;
            d[ip + 4..ip + 6].copy_from_slice(&(ip_payload as u16).to_be_bytes());
        } else {
            let total = d.len() - ip;
            d[ip + 2..ip + 4].copy_from_slice(&(total as u16).to_be_bytes());
            let ihl = usize::from(d[ip] & 0x0F) * 4;
            d[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
            let sum = ones_complement(&d[ip..ip + ihl], 0);
            d[ip + 10..ip + 12].copy_from_slice(&(!sum).to_be_bytes());
        }
        let u = dg.udp_offset;
        d[u + 4..u + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        d[u + 6..u + 8].copy_from_slice(&[0, 0]);
        let mut pseudo = Vec::with_capacity(40);
        match (dg.src.ip(), dg.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(t)) => {
                pseudo.extend_from_slice(&s.octets());
                pseudo.extend_from_slice(&t.octets());
                pseudo.extend_from_slice(&[0, 17]);
                pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
            }
            (s, t) => {
                for a in [s, t] {
                    if let IpAddr::V6(a) = a {
                        pseudo.extend_from_slice(&a.octets());
                    }
                }
                pseudo.extend_from_slice(&(udp_len as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, 17]);
            }
        }
        let sum = ones_complement(&d[u..], ones_complement(&pseudo, 0));
        let check = match !sum {
            0 => 0xFFFF,
            c => c,
        };
        d[u + 6..u + 8].copy_from_slice(&check.to_be_bytes());
        Frame {
            ts: self.ts,
            link: self.link,
            data: d,
        }
    }
}

/// The ones'-complement sum of `bytes` (as big-endian 16-bit words) added to `start`.
fn ones_complement(bytes: &[u8], start: u16) -> u16 {
    let mut sum = u32::from(start);
    for c in bytes.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Writes `frames` as a classic pcap file (all frames must share one link type).
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
        let len = u32::try_from(f.data.len()).context("frame too large")?;
        w.write_packet(&PcapPacket::new(f.ts, len, &f.data))
            .context("writing pcap record")?;
    }
    Ok(w.into_writer())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_udp_frame(payload: &[u8]) -> Frame {
        let mut d = vec![0u8; 14];
        d[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = 20 + 8 + payload.len();
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        d.extend_from_slice(&ip);
        let mut udp = vec![0x17, 0x70, 0x17, 0x71, 0, 0, 0, 0];
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        d.extend_from_slice(&udp);
        d.extend_from_slice(payload);
        Frame {
            ts: Duration::from_millis(5),
            link: DataLink::ETHERNET,
            data: d,
        }
    }

    #[test]
    fn finds_the_datagram_and_rewrites_it_with_valid_lengths_and_checksums() {
        let f = ipv4_udp_frame(&[1, 2, 3, 4]);
        let dg = f.datagram().unwrap();
        assert_eq!(dg.src, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(dg.dst, "127.0.0.2:6001".parse().unwrap());
        assert_eq!(dg.payload, &[1, 2, 3, 4]);
        let g = f.with_payload(&dg, &[9; 7]);
        let dg2 = g.datagram().unwrap();
        assert_eq!(dg2.payload, &[9; 7]);
        // etherparse checks the lengths; the checksums must verify to zero.
        let ip = &g.data[14..34];
        assert_eq!(ones_complement(ip, 0), 0xFFFF);
        let bytes = write_pcap(std::slice::from_ref(&g)).unwrap();
        let back = Capture::parse(&bytes).unwrap();
        assert_eq!(back.frames[0].data, g.data);
    }

    #[test]
    fn refuses_what_is_not_a_capture() {
        assert!(Capture::parse(b"RIFF....WAVE").is_err());
        assert!(Capture::parse(&[]).is_err());
        // A valid header with a truncated record: the frames before it are kept.
        let mut bytes = write_pcap(&[ipv4_udp_frame(&[1; 10])]).unwrap();
        bytes.truncate(bytes.len() - 3);
        assert_eq!(Capture::parse(&bytes).unwrap().frames.len(), 0);
    }
}
