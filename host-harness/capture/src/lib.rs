//! # tonemask-capture
//!
//! Packet captures: reading pcap and pcapng (pcap-file), finding the UDP datagrams in them
//! (etherparse: Ethernet, Linux cooked v1/v2, raw IP, BSD loopback; IPv4 and IPv6), and
//! writing a capture back with some datagrams' payloads replaced.
//!
//! Nothing is guessed: a frame that does not hold a whole UDP datagram says why
//! ([`Frame::classify`] → [`Skip`]), so a host can drop and count it instead of copying bytes it
//! never inspected. Records cut by the capture's snap length are read (their original length
//! kept) and classed [`Skip::Truncated`]; IPv4 and IPv6 fragments are reassembled into one
//! frame when every piece is there ([`Capture::reassembled`]), else classed [`Skip::Fragment`].

use anyhow::{anyhow, bail, Context, Result};
use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapHeader, PcapParser};
use pcap_file::pcapng::{Block, PcapNgParser};
pub use pcap_file::DataLink;

mod reassembly;
mod write;

pub use bytes::Bytes;
use pcap_file::TsResolution;
use reassembly::reassemble;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use write::ones_complement;
pub use write::{write_pcap, write_pcap_to, PcapOut};

/// One captured frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Capture time.
    pub ts: Duration,
    /// Link-layer type of the interface it was captured on.
    pub link: DataLink,
    /// The bytes, from the link-layer header on (a capture's frames share its file's buffer:
    /// [`Capture::parse_bytes`]).
    pub data: Bytes,
    /// Length of the packet on the wire (more than `data` when the capture cut it short).
    pub orig_len: usize,
}

/// Why a frame holds no UDP datagram a host can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// A link type this reader does not open.
    LinkType,
    /// Cut short by the capture's snap length.
    Truncated,
    /// A fragment of an IP datagram whose other pieces are not in the capture (or overlap).
    Fragment,
    /// Headers that do not parse (lengths that do not fit, a bad version).
    Malformed,
    /// Not IP (ARP, ...).
    NotIp,
    /// IP but not UDP (TCP, ICMP, ...).
    NotUdp,
}

impl Skip {
    /// Whether a frame skipped for this reason may have carried audio (it could not be
    /// opened), as opposed to traffic that is no RTP at all (ARP, TCP, ...).
    #[must_use]
    pub fn may_carry_audio(self) -> bool {
        matches!(
            self,
            Skip::LinkType | Skip::Truncated | Skip::Fragment | Skip::Malformed
        )
    }

    /// A short name for counters and reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Skip::LinkType => "unknown-link-type",
            Skip::Truncated => "truncated",
            Skip::Fragment => "incomplete-fragment",
            Skip::Malformed => "malformed",
            Skip::NotIp => "not-ip",
            Skip::NotUdp => "not-udp",
        }
    }
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
    /// IP datagrams rebuilt from fragments (each now one frame).
    pub reassembled: usize,
    /// The frames that may carry text (SIP), by index into `frames`, ascending:
    /// [`Frame::may_carry_text`] of each frame as read — noted while its bytes are in the
    /// cache, so that a pass over the signalling need not read every frame again. Frames
    /// changed afterwards are not reflected.
    pub text: Vec<usize>,
}

/// A capture's frames as they are read, and whether any is an IP fragment — checked as each
/// frame is read, while its bytes are still in the cache (a second pass over a large capture
/// reads them from memory again).
#[derive(Default)]
struct Frames {
    list: Vec<Frame>,
    fragments: bool,
    /// The frames that may carry text ([`Capture::text`]).
    text: Vec<usize>,
}

impl Frames {
    fn push(&mut self, frame: Frame) {
        self.fragments = self.fragments || reassembly::is_fragment(&frame);
        if frame.may_carry_text() {
            self.text.push(self.list.len());
        }
        self.list.push(frame);
    }
}

/// Whether a reader error means the file simply ends early.
/// `data` (read from `file`) as a view into `file` — or, should a parser have handed out bytes
/// of its own, a copy.
fn view(file: &Bytes, data: &[u8]) -> Bytes {
    let (base, at) = (file.as_ptr() as usize, data.as_ptr() as usize);
    match at.checked_sub(base) {
        Some(start) if start + data.len() <= file.len() => file.slice(start..start + data.len()),
        _ => Bytes::copy_from_slice(data),
    }
}

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
        Capture::parse_bytes(Bytes::copy_from_slice(bytes))
    }

    /// As [`Capture::parse`], taking the file's bytes: the frames are views into them (no
    /// frame is copied out).
    pub fn parse_bytes(file: Bytes) -> Result<Capture> {
        if file.len() >= 4 && file[..4] == PCAPNG_MAGIC {
            return Self::pcapng(&file);
        }
        if !is_capture(&file) {
            bail!("not a pcap or pcapng capture (unknown magic number)");
        }
        let (mut rest, parser) =
            PcapParser::new(&file).map_err(|e| anyhow!("bad pcap header: {e}"))?;
        let header = parser.header();
        let link = header.datalink;
        let nanos_per_frac = match header.ts_resolution {
            TsResolution::MicroSecond => 1000,
            TsResolution::NanoSecond => 1,
        };
        let mut frames = Frames::default();
        let mut truncated = false;
        // Raw records: a packet longer than the snap length is standard (it was cut), not an
        // error; its original length says it is incomplete.
        while !rest.is_empty() {
            match parser.next_raw_packet(rest) {
                Ok((after, p)) => {
                    rest = after;
                    frames.push(Frame {
                        ts: Duration::from_secs(u64::from(p.ts_sec))
                            + Duration::from_nanos(u64::from(p.ts_frac) * nanos_per_frac),
                        link,
                        orig_len: (p.orig_len as usize).max(p.data.len()),
                        data: view(&file, &p.data),
                    });
                }
                Err(e) if is_truncation(&e) => {
                    truncated = true;
                    break;
                }
                Err(e) => bail!("bad pcap record after {} frames: {e}", frames.list.len()),
            }
        }
        Ok(Capture::assemble("pcap", frames, truncated))
    }

    fn pcapng(file: &Bytes) -> Result<Capture> {
        let (mut rest, mut parser) =
            PcapNgParser::new(file).map_err(|e| anyhow!("bad pcapng header: {e}"))?;
        let mut frames = Frames::default();
        let mut truncated = false;
        while !rest.is_empty() {
            let b = match parser.next_block(rest) {
                Ok((after, b)) => {
                    rest = after;
                    b
                }
                Err(e) if is_truncation(&e) => {
                    truncated = true;
                    break;
                }
                Err(e) => bail!("bad pcapng block after {} frames: {e}", frames.list.len()),
            };
            let (ts, data, orig_len, interface) = match b {
                Block::EnhancedPacket(p) => (
                    p.timestamp,
                    view(file, &p.data),
                    p.original_len as usize,
                    p.interface_id,
                ),
                Block::SimplePacket(p) => (
                    Duration::ZERO,
                    view(file, &p.data),
                    p.original_len as usize,
                    0,
                ),
                _ => continue,
            };
            let link = parser
                .interfaces()
                .get(interface as usize)
                .map(|i| i.linktype)
                .ok_or_else(|| {
                    anyhow!("pcapng packet refers to interface {interface}, which is not described")
                })?;
            let orig_len = orig_len.max(data.len());
            frames.push(Frame {
                ts,
                link,
                data,
                orig_len,
            });
        }
        Ok(Capture::assemble("pcapng", frames, truncated))
    }

    /// A capture of `frames` (made, not read: nothing truncated or reassembled).
    #[must_use]
    pub fn from_frames(format: &'static str, frames: Vec<Frame>) -> Capture {
        Capture {
            format,
            text: text_frames(&frames),
            frames,
            truncated: false,
            reassembled: 0,
        }
    }

    fn assemble(format: &'static str, frames: Frames, truncated: bool) -> Capture {
        let (list, reassembled) = reassemble(frames.list, frames.fragments);
        // Fragments rebuilt into datagrams: the frames moved, so they are looked at again.
        let text = if reassembled == 0 && !frames.fragments {
            frames.text
        } else {
            text_frames(&list)
        };
        Capture {
            format,
            frames: list,
            truncated,
            reassembled,
            text,
        }
    }
}

/// The frames of `frames` that may carry text ([`Capture::text`]).
fn text_frames(frames: &[Frame]) -> Vec<usize> {
    (0..frames.len())
        .filter(|&i| frames[i].may_carry_text())
        .collect()
}

impl Datagram<'_> {
    /// Where the IP header starts in its frame.
    #[must_use]
    pub fn ip_offset(&self) -> usize {
        self.ip_offset
    }
}

impl Frame {
    /// The UDP datagram this frame carries, if it carries one (unfragmented IPv4 or IPv6).
    #[must_use]
    pub fn datagram(&self) -> Option<Datagram<'_>> {
        self.classify().ok()
    }

    /// Whether the frame may carry text (SIP) as a UDP payload: `false` only for an
    /// Ethernet II / IPv4 / UDP frame whose payload's first byte cannot begin UTF-8 text
    /// (0x80–0xBF — RTP's first byte is one) — four bytes looked at instead of the frame
    /// classified; every other frame may.
    #[must_use]
    pub fn may_carry_text(&self) -> bool {
        let d = &self.data[..];
        if self.link != DataLink::ETHERNET || d.get(12..14) != Some(&[0x08, 0x00][..]) {
            return true;
        }
        let (Some(&version_ihl), Some(&protocol)) = (d.get(14), d.get(23)) else {
            return true;
        };
        if version_ihl >> 4 != 4 || protocol != 17 {
            return true;
        }
        let payload = 14 + usize::from(version_ihl & 0x0F) * 4 + 8;
        d.get(payload).is_none_or(|b| !(0x80..=0xBF).contains(b))
    }

    /// The UDP datagram this frame carries, or why it carries none.
    pub fn classify(&self) -> Result<Datagram<'_>, Skip> {
        if self.orig_len > self.data.len() {
            return Err(Skip::Truncated);
        }
        match self.ethernet_ipv4_udp() {
            Some(dg) => Ok(dg),
            None => self.sliced_datagram(),
        }
    }

    /// [`Frame::classify`] by etherparse's general cursor, for any link type and protocol.
    fn sliced_datagram(&self) -> Result<Datagram<'_>, Skip> {
        let d = &self.data[..];
        let sliced = self.sliced()?;
        let (src, dst, ip) = match sliced.net.as_ref().ok_or(Skip::NotIp)? {
            NetSlice::Ipv4(v4) if v4.is_payload_fragmented() => return Err(Skip::Fragment),
            NetSlice::Ipv6(v6) if v6.is_payload_fragmented() => return Err(Skip::Fragment),
            NetSlice::Ipv4(v4) => (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
                v4.header().slice(),
            ),
            NetSlice::Ipv6(v6) => (
                IpAddr::V6(v6.header().source_addr()),
                IpAddr::V6(v6.header().destination_addr()),
                v6.header().slice(),
            ),
            NetSlice::Arp(_) => return Err(Skip::NotIp),
        };
        let Some(TransportSlice::Udp(udp)) = sliced.transport.as_ref() else {
            return Err(Skip::NotUdp);
        };
        let offset = |s: &[u8]| s.as_ptr() as usize - d.as_ptr() as usize;
        Ok(Datagram {
            src: SocketAddr::new(src, udp.source_port()),
            dst: SocketAddr::new(dst, udp.destination_port()),
            payload: udp.payload(),
            ip_offset: offset(ip),
            udp_offset: offset(udp.slice()),
        })
    }

    /// The common case — an unfragmented UDP datagram in IPv4 over Ethernet II — sliced by
    /// the same etherparse header slices, in the same order, as [`SlicedPacket::from_ethernet`]
    /// takes for it, without the general cursor (which builds a large `SlicedPacket` for every
    /// frame: 7 % of masking a capture, a frame being classed three times). `None` for
    /// anything else, and on any error: the general path then gives the answer.
    fn ethernet_ipv4_udp(&self) -> Option<Datagram<'_>> {
        use etherparse::{ip_number, Ethernet2Slice, Ipv4Slice, UdpSlice};
        if self.link != DataLink::ETHERNET {
            return None;
        }
        let d = &self.data[..];
        let eth = Ethernet2Slice::from_slice_without_fcs(d).ok()?;
        if eth.ether_type() != EtherType::IPV4 {
            return None;
        }
        let v4 = Ipv4Slice::from_slice(eth.payload_slice()).ok()?;
        let payload = v4.payload();
        if payload.fragmented || payload.ip_number != ip_number::UDP {
            return None;
        }
        let udp = UdpSlice::from_slice(payload.payload).ok()?;
        let offset = |s: &[u8]| s.as_ptr() as usize - d.as_ptr() as usize;
        let h = v4.header();
        Some(Datagram {
            src: SocketAddr::new(IpAddr::V4(h.source_addr()), udp.source_port()),
            dst: SocketAddr::new(IpAddr::V4(h.destination_addr()), udp.destination_port()),
            payload: udp.payload(),
            ip_offset: offset(h.slice()),
            udp_offset: offset(udp.slice()),
        })
    }

    /// The frame's headers, from the link layer down.
    fn sliced(&self) -> Result<SlicedPacket<'_>, Skip> {
        let d = &self.data[..];
        let short = Skip::Malformed;
        let sliced = match self.link {
            DataLink::ETHERNET => SlicedPacket::from_ethernet(d),
            // etherparse refuses some hardware types (loopback, captured on "any"), so the
            // cooked headers are skipped here: protocol at 14 (v1) or 0 (v2).
            DataLink::LINUX_SLL => {
                let proto =
                    u16::from_be_bytes([*d.get(14).ok_or(short)?, *d.get(15).ok_or(short)?]);
                SlicedPacket::from_ether_type(EtherType(proto), d.get(16..).ok_or(short)?)
            }
            DataLink::LINUX_SLL2 => {
                let proto = u16::from_be_bytes([*d.first().ok_or(short)?, *d.get(1).ok_or(short)?]);
                SlicedPacket::from_ether_type(EtherType(proto), d.get(20..).ok_or(short)?)
            }
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(d),
            DataLink::NULL | DataLink::LOOP => SlicedPacket::from_ip(d.get(4..).ok_or(short)?),
            _ => return Err(Skip::LinkType),
        };
        sliced.map_err(|_| Skip::Malformed)
    }

    /// Where the IP header starts in the frame (after the link-layer header).
    fn ip_start(&self) -> Option<usize> {
        match self.link {
            DataLink::ETHERNET => {
                // Ethernet II, with up to two VLAN tags.
                let mut at = 12;
                while matches!(self.data.get(at..at + 2)?, [0x81, 0x00] | [0x88, 0xA8]) {
                    at += 4;
                }
                Some(at + 2)
            }
            DataLink::LINUX_SLL => Some(16),
            DataLink::LINUX_SLL2 => Some(20),
            DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Some(0),
            DataLink::NULL | DataLink::LOOP => Some(4),
            _ => None,
        }
    }

    /// This (fragment) frame rebuilt as one unfragmented IP datagram carrying `payload` of
    /// protocol `proto`: the link-layer header kept, the IP header rewritten.
    fn with_ip_payload(&self, proto: u8, payload: &[u8]) -> Option<Frame> {
        let ip = self.ip_start()?;
        let mut d = self.data.get(..ip)?.to_vec();
        let hdr = self.data.get(ip..)?;
        match hdr.first()? >> 4 {
            4 => {
                let ihl = usize::from(hdr[0] & 0x0F) * 4;
                let mut h = hdr.get(..ihl)?.to_vec();
                let total = u16::try_from(ihl + payload.len()).ok()?;
                h[2..4].copy_from_slice(&total.to_be_bytes());
                h[6..8].copy_from_slice(&[0, 0]);
                h[9] = proto;
                h[10..12].copy_from_slice(&[0, 0]);
                let sum = !ones_complement(&h, 0);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                d.extend_from_slice(&h);
            }
            6 => {
                let mut h = hdr.get(..40)?.to_vec();
                let len = u16::try_from(payload.len()).ok()?;
                h[4..6].copy_from_slice(&len.to_be_bytes());
                h[6] = proto;
                d.extend_from_slice(&h);
            }
            _ => return None,
        }
        d.extend_from_slice(payload);
        Some(Frame {
            ts: self.ts,
            link: self.link,
            orig_len: d.len(),
            data: d.into(),
        })
    }

    /// This frame with the UDP payload of `dg` (found in it) replaced by `payload`: lengths
    /// fixed in the IP and UDP headers, the IPv4 header checksum recomputed, the UDP checksum
    /// recomputed.
    #[must_use]
    pub fn with_payload(&self, dg: &Datagram<'_>, payload: &[u8]) -> Frame {
        let mut d = Vec::new();
        self.rewrite_into(dg, payload, &mut d);
        Frame {
            ts: self.ts,
            link: self.link,
            orig_len: d.len(),
            data: d.into(),
        }
    }

    /// The bytes of [`Frame::with_payload`], into `out` (emptied first): a writer reuses one
    /// buffer for every frame.
    pub fn rewrite_into(&self, dg: &Datagram<'_>, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        self.rewrite_onto(dg, payload, out);
    }

    /// The bytes of [`Frame::with_payload`], appended to `out`.
    pub(crate) fn rewrite_onto(&self, dg: &Datagram<'_>, payload: &[u8], out: &mut Vec<u8>) {
        let head = &self.data[..dg.udp_offset + 8];
        let start = out.len();
        out.reserve(head.len() + payload.len());
        out.extend_from_slice(head);
        out.extend_from_slice(payload);
        let d = &mut out[start..];
        let udp_len = 8 + payload.len();
        let ip = dg.ip_offset;
        // The header's kind as `dg` found it, its length within what `dg` found (a mapped
        // file's bytes may change under the reader: nothing read again may cut out of range).
        let v6 = dg.dst.is_ipv6();
        if v6 {
            let ip_payload = d.len() - ip - 40;
            d[ip + 4..ip + 6].copy_from_slice(&(ip_payload as u16).to_be_bytes());
        } else {
            let total = d.len() - ip;
            d[ip + 2..ip + 4].copy_from_slice(&(total as u16).to_be_bytes());
            let ihl = (usize::from(d[ip] & 0x0F) * 4).min(dg.udp_offset - ip);
            d[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
            let sum = ones_complement(&d[ip..ip + ihl], 0);
            d[ip + 10..ip + 12].copy_from_slice(&(!sum).to_be_bytes());
        }
        let u = dg.udp_offset;
        d[u + 4..u + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        d[u + 6..u + 8].copy_from_slice(&[0, 0]);
        // The pseudo-header: addresses, protocol and UDP length (RFC 768, RFC 8200 § 8.1).
        let mut pseudo = [0u8; 40];
        let pseudo = match (dg.src.ip(), dg.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(t)) => {
                pseudo[..4].copy_from_slice(&s.octets());
                pseudo[4..8].copy_from_slice(&t.octets());
                pseudo[8..10].copy_from_slice(&[0, 17]);
                pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
                &pseudo[..12]
            }
            (s, t) => {
                let mut at = 0;
                for a in [s, t] {
                    if let IpAddr::V6(a) = a {
                        pseudo[at..at + 16].copy_from_slice(&a.octets());
                        at += 16;
                    }
                }
                pseudo[at..at + 4].copy_from_slice(&(udp_len as u32).to_be_bytes());
                pseudo[at + 4..at + 8].copy_from_slice(&[0, 0, 0, 17]);
                &pseudo[..at + 8]
            }
        };
        let sum = ones_complement(&d[u..], ones_complement(pseudo, 0));
        let check = match !sum {
            0 => 0xFFFF,
            c => c,
        };
        d[u + 6..u + 8].copy_from_slice(&check.to_be_bytes());
    }
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
            orig_len: d.len(),
            data: d.into(),
        }
    }

    /// The short path for Ethernet/IPv4/UDP must answer exactly as the general one: every
    /// single-byte change to a frame's headers (and to a frame with IPv4 options, and one
    /// with Ethernet padding), and every cut of it.
    #[test]
    fn the_short_path_agrees_with_etherparse_on_every_header_mutation_and_cut() {
        let same = |f: &Frame| {
            let general = f.sliced_datagram();
            match (f.ethernet_ipv4_udp(), &general) {
                (None, _) => false,
                (Some(a), Ok(b)) => {
                    assert_eq!(
                        (a.src, a.dst, a.payload, a.ip_offset, a.udp_offset),
                        (b.src, b.dst, b.payload, b.ip_offset, b.udp_offset),
                        "{:02x?}",
                        &f.data[..]
                    );
                    true
                }
                (Some(_), Err(e)) => panic!("short path took what etherparse refuses ({e:?})"),
            }
        };
        let plain = ipv4_udp_frame(&[7; 12]);
        let mut options = plain.data.to_vec();
        options[14] = 0x46;
        options[17] += 4;
        options.splice(34..34, [1, 1, 1, 0]);
        let mut padded = ipv4_udp_frame(&[7; 2]).data.to_vec();
        padded.resize(60, 0);
        let (mut taken, mut tried) = (0, 0);
        for base in [plain.data.to_vec(), options, padded] {
            let frame = |d: Vec<u8>| Frame {
                orig_len: d.len(),
                data: d.into(),
                ..plain.clone()
            };
            assert!(same(&frame(base.clone())), "the unchanged frame");
            for at in 0..base.len().min(46) {
                for v in 0..=255u8 {
                    let mut d = base.clone();
                    d[at] = v;
                    taken += usize::from(same(&frame(d)));
                    tried += 1;
                }
            }
            for cut in 0..base.len() {
                taken += usize::from(same(&frame(base[..cut].to_vec())));
                tried += 1;
            }
        }
        // Most changes (addresses, ports, checksums, MACs) keep a valid datagram.
        assert!(taken > tried / 2, "{taken} of {tried}");
    }

    /// A frame said to carry no text has no UDP payload that could begin UTF-8 text: every
    /// single-byte change of an RTP-like and a text frame's headers and first payload
    /// byte (with and without Ethernet padding, and with IPv4 options), and every cut.
    #[test]
    fn a_frame_said_to_carry_no_text_has_no_payload_that_is_text() {
        let mut rtp_like = ipv4_udp_frame(&[0x80, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        let text = ipv4_udp_frame(b"INVITE sip:a SIP/2.0\r\n");
        let mut padded = ipv4_udp_frame(&[]).data.to_vec();
        padded.resize(60, 0x80);
        let mut options = rtp_like.data.to_vec();
        options[14] = 0x46;
        options[17] += 4;
        options.splice(34..34, [1, 1, 1, 0]);
        let (mut skipped, mut tried) = (0, 0);
        for base in [rtp_like.data.to_vec(), text.data.to_vec(), padded, options] {
            let frames = (0..base.len().min(47))
                .flat_map(|at| (0..=255u8).map(move |v| (at, v)))
                .map(|(at, v)| {
                    let mut d = base.clone();
                    d[at] = v;
                    d
                })
                .chain((0..base.len()).map(|cut| base[..cut].to_vec()));
            for d in frames {
                rtp_like.orig_len = d.len();
                rtp_like.data = d.into();
                tried += 1;
                if rtp_like.may_carry_text() {
                    continue;
                }
                skipped += 1;
                if let Some(dg) = rtp_like.datagram() {
                    let first = dg.payload.first();
                    assert!(
                        first.is_none_or(|b| (0x80..=0xBF).contains(b)),
                        "{:02x?}",
                        &rtp_like.data[..]
                    );
                    assert!(std::str::from_utf8(dg.payload).is_err() || dg.payload.is_empty());
                }
            }
        }
        assert!(skipped > tried / 4, "{skipped} of {tried}");
    }

    /// `Capture::text` is noted as frames are read: every frame that may carry text, by
    /// index, none other — also when fragments are rebuilt into a datagram (the frames move),
    /// and for a capture made of frames.
    #[test]
    fn the_frames_noted_as_text_are_those_that_may_carry_text() {
        let sip = b"INVITE sip:agent@example.com SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n\r\n";
        let rtp = ipv4_udp_frame(&[0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0x12, 0x34, 0xFF]);
        // The SIP message again, in two IPv4 fragments (UDP header and 16 bytes, the rest).
        let whole = ipv4_udp_frame(sip);
        let fragment = |offset: usize, more: bool, body: &[u8]| {
            let mut d = whole.data[..34].to_vec();
            d[18..20].copy_from_slice(&[0, 7]);
            let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
            d[20..22].copy_from_slice(&flags.to_be_bytes());
            d[16..18].copy_from_slice(&((20 + body.len()) as u16).to_be_bytes());
            d[24..26].copy_from_slice(&[0, 0]);
            let sum = !ones_complement(&d[14..34], 0);
            d[24..26].copy_from_slice(&sum.to_be_bytes());
            d.extend_from_slice(body);
            Frame {
                orig_len: d.len(),
                data: d.into(),
                ..whole.clone()
            }
        };
        let ip_payload = &whole.data[34..];
        let frames = [
            ipv4_udp_frame(sip),
            rtp.clone(),
            fragment(0, true, &ip_payload[..24]),
            rtp.clone(),
            fragment(24, false, &ip_payload[24..]),
            rtp.clone(),
        ];
        let noted = |c: &Capture| {
            let expected: Vec<usize> = (0..c.frames.len())
                .filter(|&i| c.frames[i].may_carry_text())
                .collect();
            assert_eq!(c.text, expected);
            let texts: Vec<&[u8]> = c
                .text
                .iter()
                .filter_map(|&i| c.frames[i].datagram())
                .map(|d| d.payload)
                .collect();
            texts.iter().filter(|&&p| p == sip).count()
        };
        let read = Capture::parse(&write_pcap(&frames).unwrap()).unwrap();
        assert_eq!(read.reassembled, 1);
        assert_eq!(noted(&read), 2, "both SIP messages, the rebuilt one too");
        let unfragmented = [rtp.clone(), frames[0].clone(), rtp.clone()];
        let read = Capture::parse(&write_pcap(&unfragmented).unwrap()).unwrap();
        assert_eq!((noted(&read), read.text.len()), (1, 1));
        let made = Capture::from_frames("pcap", frames.to_vec());
        assert!(noted(&made) >= 1);
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

    /// `f`'s IPv4 datagram split into fragments of `size` payload bytes (a multiple of 8).
    fn fragments(f: &Frame, size: usize) -> Vec<Frame> {
        let ip = &f.data[14..34];
        let body = &f.data[34..];
        body.chunks(size)
            .enumerate()
            .map(|(i, c)| {
                let mut h = ip.to_vec();
                h[2..4].copy_from_slice(&((20 + c.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&[0x12, 0x34]);
                let more = (i + 1) * size < body.len();
                let field = ((i * size / 8) as u16) | if more { 0x2000 } else { 0 };
                h[6..8].copy_from_slice(&field.to_be_bytes());
                h[10..12].copy_from_slice(&[0, 0]);
                let sum = !ones_complement(&h, 0);
                h[10..12].copy_from_slice(&sum.to_be_bytes());
                let mut d = f.data[..14].to_vec();
                d.extend_from_slice(&h);
                d.extend_from_slice(c);
                Frame {
                    ts: f.ts,
                    link: f.link,
                    orig_len: d.len(),
                    data: d.into(),
                }
            })
            .collect()
    }

    fn round_trip(frames: &[Frame]) -> Capture {
        Capture::parse(&write_pcap(frames).unwrap()).unwrap()
    }

    #[test]
    fn fragments_are_reassembled_when_complete_and_skipped_when_not() {
        let payload: Vec<u8> = (0..400u16).map(|i| i as u8).collect();
        let whole = ipv4_udp_frame(&payload);
        let mut pieces = fragments(&whole, 160);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0].classify().unwrap_err(), Skip::Fragment);
        // Out of order, with an unrelated frame between them.
        pieces.swap(0, 2);
        pieces.insert(1, ipv4_udp_frame(&[7; 12]));
        let cap = round_trip(&pieces);
        assert_eq!(cap.reassembled, 1);
        assert_eq!(cap.frames.len(), 2);
        let dg = cap.frames[1].classify().unwrap();
        assert_eq!(dg.payload, &payload[..]);
        assert_eq!(dg.dst, "127.0.0.2:6001".parse().unwrap());
        // A piece missing: the others stay, each classed as a fragment.
        let mut partial = fragments(&whole, 160);
        partial.remove(1);
        let cap = round_trip(&partial);
        assert_eq!(cap.reassembled, 0);
        assert!(cap
            .frames
            .iter()
            .all(|f| f.classify().unwrap_err() == Skip::Fragment));
        // Overlapping pieces never complete.
        let mut overlap: Vec<Frame> = fragments(&whole, 80).into_iter().skip(1).take(1).collect();
        overlap.extend(fragments(&whole, 160));
        let cap = round_trip(&overlap);
        assert_eq!((cap.reassembled, cap.frames.len()), (0, 4));
    }

    /// An IPv6 UDP datagram (::1 → ::2, ports 6000 → 6001) carrying `payload`, split into
    /// fragments of `size` bytes of the UDP datagram (a multiple of 8).
    fn ipv6_fragments(payload: &[u8], size: usize) -> Vec<Frame> {
        let mut udp = vec![0x17, 0x70, 0x17, 0x71, 0, 0, 0, 0];
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(payload);
        let (src, dst) = ([0u8; 15], [0u8; 15]);
        udp.chunks(size)
            .enumerate()
            .map(|(i, c)| {
                let mut d = vec![0u8; 12];
                d.extend_from_slice(&[0x86, 0xDD, 0x60, 0, 0, 0]);
                d.extend_from_slice(&((8 + c.len()) as u16).to_be_bytes());
                d.extend_from_slice(&[44, 64]);
                d.extend_from_slice(&src);
                d.push(1);
                d.extend_from_slice(&dst);
                d.push(2);
                let more = (i + 1) * size < udp.len();
                let field = ((i * size / 8) as u16) << 3 | u16::from(more);
                d.extend_from_slice(&[17, 0]);
                d.extend_from_slice(&field.to_be_bytes());
                d.extend_from_slice(&0xABCD_u32.to_be_bytes());
                d.extend_from_slice(c);
                Frame {
                    ts: Duration::ZERO,
                    link: DataLink::ETHERNET,
                    orig_len: d.len(),
                    data: d.into(),
                }
            })
            .collect()
    }

    #[test]
    fn ipv6_fragments_are_reassembled_too() {
        let payload: Vec<u8> = (0..300u16).map(|i| (i * 7) as u8).collect();
        let pieces = ipv6_fragments(&payload, 128);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[1].classify().unwrap_err(), Skip::Fragment);
        let cap = round_trip(&pieces);
        assert_eq!((cap.reassembled, cap.frames.len()), (1, 1));
        let dg = cap.frames[0].classify().unwrap();
        assert_eq!(dg.payload, &payload[..]);
        assert_eq!(dg.dst, "[::2]:6001".parse().unwrap());
    }

    #[test]
    fn records_cut_by_the_snap_length_are_read_and_classed_truncated() {
        let f = ipv4_udp_frame(&[3; 172]);
        // A classic pcap with snaplen 96: the record keeps 96 bytes, orig_len the rest.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&96u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        for _ in 0..2 {
            bytes.extend_from_slice(&[0; 8]);
            bytes.extend_from_slice(&96u32.to_le_bytes());
            bytes.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&f.data[..96]);
        }
        let cap = Capture::parse(&bytes).unwrap();
        assert_eq!(cap.frames.len(), 2);
        assert_eq!(cap.frames[0].orig_len, f.data.len());
        assert_eq!(cap.frames[0].classify().unwrap_err(), Skip::Truncated);
    }

    #[test]
    fn frames_of_other_link_types_and_protocols_say_why_they_hold_no_datagram() {
        let mut f = ipv4_udp_frame(&[1; 20]);
        f.link = DataLink::IEEE802_11;
        assert_eq!(f.classify().unwrap_err(), Skip::LinkType);
        let mut tcp = ipv4_udp_frame(&[1; 20]);
        let mut d = tcp.data.to_vec();
        d[14 + 9] = 6;
        tcp.data = d.into();
        assert!(matches!(
            tcp.classify().unwrap_err(),
            Skip::NotUdp | Skip::Malformed
        ));
        let mut arp = ipv4_udp_frame(&[1; 20]);
        let mut d = arp.data.to_vec();
        d[12..14].copy_from_slice(&[0x08, 0x06]);
        arp.data = d.into();
        assert!(matches!(
            arp.classify().unwrap_err(),
            Skip::NotIp | Skip::Malformed
        ));
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
