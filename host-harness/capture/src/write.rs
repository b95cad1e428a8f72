//! Writing frames back as a classic pcap file, and the ones'-complement sum the IPv4 and UDP
//! checksums of rewritten frames need.

use super::*;

/// The ones'-complement sum of `bytes` (as big-endian 16-bit words; an odd last byte padded
/// with zero) added to `start`. The words are summed wide and the carries folded back once at
/// the end (RFC 1071): the same sum as folding after every word, without a dependency from
/// each word to the next.
pub(crate) fn ones_complement(bytes: &[u8], start: u16) -> u16 {
    // Big-endian 32-bit words: each is two 16-bit words, the high one worth 2^16 ≡ 1 once
    // folded — the same sum with half the additions.
    let mut quads = bytes.chunks_exact(4);
    let mut sum: u64 = quads
        .by_ref()
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .sum::<u64>()
        + u64::from(start);
    let mut words = quads.remainder().chunks_exact(2);
    sum += words
        .by_ref()
        .map(|c| u64::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u64>();
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

/// Writes `frames` as a classic pcap file (all frames must share one link type); a frame cut
/// short keeps its original length.
pub fn write_pcap(frames: &[Frame]) -> Result<Vec<u8>> {
    write_pcap_to(frames, Vec::new())
}

/// As [`write_pcap`], into `out` (returned when written).
pub fn write_pcap_to<W: std::io::Write>(frames: &[Frame], out: W) -> Result<W> {
    let link = frames.first().map_or(DataLink::ETHERNET, |f| f.link);
    if let Some(f) = frames.iter().find(|f| f.link != link) {
        bail!("{}", mixed(link, f.link));
    }
    let mut w = PcapOut::new(out);
    for f in frames {
        w.write(f)?;
    }
    w.finish()
}

fn mixed(a: DataLink, b: DataLink) -> String {
    format!("the capture mixes link types ({a:?} and {b:?}); a pcap file holds one")
}

/// A classic pcap file written frame by frame, as the frames come: the file header (with the
/// first frame's link type) before the first, a frame of another link type refused. The
/// header is pcap-file's; the records are built here, back to back in one buffer written out
/// when full — a rewritten frame is built where its record goes (no copy, no call per field).
pub struct PcapOut<W: std::io::Write> {
    /// The output.
    out: W,
    /// The link type, once the header is written.
    link: Option<DataLink>,
    /// Records not yet written out.
    buf: Vec<u8>,
}

/// The snap length the header [`PcapOut`] writes gives (its records are big-endian, times
/// in microseconds, as the header says).
const SNAPLEN: u32 = 262_144;
/// Records gathered before they are written out.
const FLUSH_AT: usize = 1 << 16;
/// A record's header: seconds, microseconds, length kept, length on the wire.
const RECORD_HEAD: usize = 16;

impl<W: std::io::Write> PcapOut<W> {
    /// A pcap file to be written into `out`.
    pub fn new(out: W) -> PcapOut<W> {
        PcapOut {
            out,
            link: None,
            buf: Vec::new(),
        }
    }

    /// Appends `f` (a frame cut short keeps its original length).
    pub fn write(&mut self, f: &Frame) -> Result<()> {
        self.record(f.link, f.ts, f.orig_len, |d| d.extend_from_slice(&f.data))
    }

    /// Appends `frame` with the UDP payload of `dg` (found in it) replaced by `payload`,
    /// captured at `ts` — the frame [`Frame::with_payload`] makes, built in place (no frame
    /// allocated per record).
    pub fn write_with_payload(
        &mut self,
        frame: &Frame,
        dg: &Datagram<'_>,
        payload: &[u8],
        ts: Duration,
    ) -> Result<()> {
        self.record(frame.link, ts, 0, |d| frame.rewrite_onto(dg, payload, d))
    }

    /// One record of a frame of link type `link` captured at `ts`, `orig_len` bytes long on
    /// the wire (at least what `data` appends): its header, then what `data` appends.
    fn record(
        &mut self,
        link: DataLink,
        ts: Duration,
        orig_len: usize,
        data: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        let first = *self.started(link)?;
        if link != first {
            bail!("{}", mixed(first, link));
        }
        let secs = u32::try_from(ts.as_secs())
            .map_err(|_| anyhow!("writing pcap record: a time past 2106 ({ts:?})"))?;
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; RECORD_HEAD]);
        data(&mut self.buf);
        let kept = self.buf.len() - at - RECORD_HEAD;
        let lengths = (u32::try_from(kept), u32::try_from(orig_len.max(kept)));
        let (Ok(kept), Ok(wire)) = lengths else {
            self.buf.truncate(at);
            bail!("frame too large");
        };
        if kept > SNAPLEN {
            self.buf.truncate(at);
            bail!("writing pcap record: a frame of {kept} bytes, over the snap length");
        }
        let head = &mut self.buf[at..at + RECORD_HEAD];
        head[..4].copy_from_slice(&secs.to_be_bytes());
        head[4..8].copy_from_slice(&ts.subsec_micros().to_be_bytes());
        head[8..12].copy_from_slice(&kept.to_be_bytes());
        head[12..].copy_from_slice(&wire.to_be_bytes());
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out the records gathered.
    fn flush(&mut self) -> Result<()> {
        self.out
            .write_all(&self.buf)
            .context("writing pcap record")?;
        self.buf.clear();
        Ok(())
    }

    /// The link type, the file header written (for frames of link type `link` if not yet).
    fn started(&mut self, link: DataLink) -> Result<&DataLink> {
        if self.link.is_none() {
            let header = PcapHeader {
                datalink: link,
                snaplen: SNAPLEN,
                ts_resolution: TsResolution::MicroSecond,
                endianness: pcap_file::Endianness::Big,
                ..PcapHeader::default()
            };
            header
                .write_to(&mut self.out)
                .context("writing pcap header")?;
            self.link = Some(link);
        }
        self.link
            .as_ref()
            .ok_or_else(|| anyhow!("the pcap header could not be written"))
    }

    /// Ends the file (a file without frames is a header for Ethernet); returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.started(DataLink::ETHERNET)?;
        self.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(link: DataLink, n: u8) -> Frame {
        Frame {
            ts: Duration::from_millis(u64::from(n) * 20),
            link,
            data: vec![n; 60].into(),
            orig_len: 60,
        }
    }

    /// The records built here are those pcap-file's writer writes for the same header:
    /// times to the microsecond (truncated), frames cut short keeping their wire length, an
    /// empty frame, a large one, more than one buffer's worth.
    #[test]
    fn records_are_byte_for_byte_what_pcap_file_writes() {
        use pcap_file::pcap::{PcapPacket, PcapWriter};
        let mut frames = Vec::new();
        for i in 0..3000u32 {
            let len = [0, 1, 60, 214, 1514, 9000][i as usize % 6];
            frames.push(Frame {
                ts: Duration::new(
                    u64::from(i) * 7919,
                    i.wrapping_mul(2_654_435_761) % 1_000_000_000,
                ),
                link: DataLink::ETHERNET,
                data: vec![i as u8; len].into(),
                orig_len: len + [0, 0, 4, 1000][i as usize % 4],
            });
        }
        let ours = write_pcap(&frames).unwrap();
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            snaplen: SNAPLEN,
            ..PcapHeader::default()
        };
        let mut theirs = PcapWriter::with_header(Vec::new(), header).unwrap();
        for f in &frames {
            let len = f.orig_len.max(f.data.len()) as u32;
            theirs
                .write_packet(&PcapPacket::new(f.ts, len, &f.data))
                .unwrap();
        }
        assert_eq!(ours, theirs.into_writer());
    }

    #[test]
    fn frame_by_frame_writes_the_file_write_pcap_writes_and_refuses_a_second_link_type() {
        let frames: Vec<Frame> = (1..5).map(|n| frame(DataLink::RAW, n)).collect();
        let mut out = PcapOut::new(Vec::new());
        for f in &frames {
            out.write(f).unwrap();
        }
        let streamed = out.finish().unwrap();
        assert_eq!(streamed, write_pcap(&frames).unwrap());
        let back = Capture::parse(&streamed).unwrap();
        assert_eq!(back.frames.len(), 4);
        assert_eq!(back.frames[3].data, frames[3].data);

        let mut out = PcapOut::new(Vec::new());
        out.write(&frames[0]).unwrap();
        let e = out.write(&frame(DataLink::ETHERNET, 9)).unwrap_err();
        assert!(e.to_string().contains("mixes link types"), "{e}");
        // Nothing written is a header alone.
        let empty = PcapOut::new(Vec::new()).finish().unwrap();
        assert_eq!(empty, write_pcap(&[]).unwrap());
        assert!(Capture::parse(&empty).unwrap().frames.is_empty());
    }

    #[test]
    fn a_payload_replaced_in_place_writes_the_record_with_payload_makes() {
        let v4 = [
            0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let udp = [0x9C, 0x40, 0x9C, 0x42, 0, 12, 0, 0, 1, 2, 3, 4];
        let f = Frame {
            ts: Duration::from_millis(20),
            link: DataLink::RAW,
            data: [&v4[..], &udp[..]].concat().into(),
            orig_len: 32,
        };
        let dg = f.classify().unwrap();
        let (mut whole, mut in_place) = (PcapOut::new(Vec::new()), PcapOut::new(Vec::new()));
        for (n, ts) in [(60, 40), (3, 60), (0, 80)] {
            let payload = vec![0xA5; n];
            let mut g = f.with_payload(&dg, &payload);
            g.ts = Duration::from_millis(ts);
            whole.write(&g).unwrap();
            let at = Duration::from_millis(ts);
            in_place.write_with_payload(&f, &dg, &payload, at).unwrap();
        }
        let bytes = in_place.finish().unwrap();
        assert_eq!(bytes, whole.finish().unwrap());
        let back = Capture::parse(&bytes).unwrap();
        let sizes: Vec<usize> = back.frames.iter().map(|g| g.data.len()).collect();
        assert_eq!(sizes, [88, 31, 28]);
    }

    /// The definition: fold after every word.
    fn word_by_word(bytes: &[u8], start: u16) -> u16 {
        let mut sum = u32::from(start);
        for c in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn folding_once_at_the_end_gives_the_word_by_word_sum() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            for start in [0, 1, 0x8000, 0xFFFE, 0xFFFF] {
                assert_eq!(
                    ones_complement(&bytes, start),
                    word_by_word(&bytes, start),
                    "{len} bytes from {start:#x}"
                );
            }
        }
        // All ones, all zeros: the two representations of zero stay apart.
        for b in [[0xFFu8; 64], [0u8; 64]] {
            assert_eq!(ones_complement(&b, 0), word_by_word(&b, 0));
        }
    }
}
