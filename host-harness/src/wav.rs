//! WAV files of call audio: 16-bit PCM, µ-law (format 7) and A-law (format 6), mono.
//!
//! Written here rather than with `hound` because hound reads only PCM and float WAVs, and
//! call recordings are very often G.711. The reader walks RIFF chunks (skipping `LIST`,
//! `fact`, ...), accepts `WAVE_FORMAT_EXTENSIBLE` by its sub-format, and refuses anything it
//! cannot carry with a one-line reason. Unmasked audio must come out bit-identical, so G.711
//! data stays as its bytes end to end.

use std::fmt;

/// Sample encoding of a WAV file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// 16-bit signed little-endian PCM.
    Pcm16,
    /// G.711 µ-law, 8 bits.
    Ulaw,
    /// G.711 A-law, 8 bits.
    Alaw,
}

impl Format {
    /// Name for messages and reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Format::Pcm16 => "16-bit PCM",
            Format::Ulaw => "µ-law",
            Format::Alaw => "A-law",
        }
    }

    fn tag(self) -> u16 {
        match self {
            Format::Pcm16 => 1,
            Format::Alaw => 6,
            Format::Ulaw => 7,
        }
    }

    fn bits(self) -> u16 {
        match self {
            Format::Pcm16 => 16,
            Format::Ulaw | Format::Alaw => 8,
        }
    }

    /// Bytes per sample.
    #[must_use]
    pub fn width(self) -> usize {
        usize::from(self.bits() / 8)
    }
}

/// A mono call recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wav {
    /// Encoding.
    pub format: Format,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Sample data exactly as in the file's `data` chunk (PCM: little-endian pairs).
    pub data: Vec<u8>,
}

/// Why a file is not usable call audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WavError(pub String);

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WavError {}

/// The fmt chunk's fields tonemask uses.
#[derive(Clone, Copy)]
struct Fmt {
    tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
}

impl Fmt {
    /// The fmt chunk of `size` bytes at `body` of `src` (WAVE_FORMAT_EXTENSIBLE resolved to
    /// its sub-format).
    fn parse(src: &(impl Source + ?Sized), body: usize, size: usize) -> Result<Fmt, WavError> {
        if size < 16 || body + size > src.size() {
            return err("truncated WAV: the fmt chunk is cut short");
        }
        // The fields read: the first 40 bytes at most (the extensible form's end).
        let mut b = [0u8; 40];
        let b = &mut b[..size.min(40)];
        src.read_at(body, b)?;
        let mut tag = u16le(b, 0);
        if tag == 0xFFFE {
            if size < 40 {
                return err("truncated WAV: WAVE_FORMAT_EXTENSIBLE fmt chunk is too short");
            }
            // The sub-format GUID: the format tag, then the fixed base
            // 0000-0010-8000-00AA00389B71 of the standard formats.
            const BASE: [u8; 14] = [0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71];
            if b[26..40] != BASE {
                return err(
                    "unknown WAVE_FORMAT_EXTENSIBLE sub-format: use 16-bit PCM, µ-law or A-law",
                );
            }
            tag = u16le(b, 24);
        }
        Ok(Fmt {
            tag,
            channels: u16le(b, 2),
            rate: u32le(b, 4),
            bits: u16le(b, 14),
        })
    }

    /// The encoding, if tonemask takes it: mono, 16-bit PCM at 8 or 16 kHz, µ-law or A-law
    /// at 8 kHz.
    fn format(&self) -> Result<Format, WavError> {
        let format = match (self.tag, self.bits) {
            (1, 16) => Format::Pcm16,
            (7, 8) => Format::Ulaw,
            (6, 8) => Format::Alaw,
            (1, b) => {
                return err(format!(
                    "{b}-bit PCM is not supported: use 16-bit PCM, µ-law or A-law"
                ))
            }
            (t, b) => {
                return err(format!(
                    "unsupported WAV encoding (format tag {t}, {b} bits): use 16-bit PCM, µ-law (7) or A-law (6)"
                ))
            }
        };
        if self.channels != 1 {
            return err(format!(
                "{} channels: tonemask needs mono audio (one call leg per file)",
                self.channels
            ));
        }
        let rate = self.rate;
        let rates_ok = match format {
            Format::Pcm16 => rate == 8000 || rate == 16000,
            _ => rate == 8000,
        };
        if !rates_ok {
            return err(format!(
                "sample rate {rate} Hz: tonemask needs 8000 Hz ({} also 16000 Hz)",
                if format == Format::Pcm16 {
                    "16-bit PCM may"
                } else {
                    "only 16-bit PCM may be"
                }
            ));
        }
        Ok(format)
    }
}

/// The data chunk's length in bytes (a streaming writer's unset size means "to the end"),
/// checked against the file's length `total` and the sample width.
fn data_len(total: usize, body: usize, size: usize, bits: u16) -> Result<usize, WavError> {
    let available = total - body;
    // Writers that stream sometimes leave the size unset (0 or 0xFFFFFFFF).
    let len = if size == 0 || size == 0xFFFF_FFFF {
        available
    } else {
        size
    };
    if len > available {
        return err(format!(
            "truncated WAV: the data chunk declares {len} bytes but only {available} are present"
        ));
    }
    let width = usize::from(bits / 8).max(1);
    if len % width != 0 {
        return err(format!(
            "truncated WAV: {len} data bytes is not a whole number of samples"
        ));
    }
    Ok(len)
}

/// Where [`locate`] reads a WAV file's chunk headers: the file's bytes in memory, or the
/// open file itself (only the headers are read, wherever they are).
trait Source {
    /// The file's length in bytes.
    fn size(&self) -> usize;
    /// Fills `buf` from offset `at` (the caller keeps `at + buf.len()` within the size).
    fn read_at(&self, at: usize, buf: &mut [u8]) -> Result<(), WavError>;
}

impl Source for [u8] {
    fn size(&self) -> usize {
        self.len()
    }

    fn read_at(&self, at: usize, buf: &mut [u8]) -> Result<(), WavError> {
        buf.copy_from_slice(&self[at..at + buf.len()]);
        Ok(())
    }
}

/// An open file of a known size, read in place.
struct FileSource<'a> {
    file: &'a std::fs::File,
    size: usize,
}

impl Source for FileSource<'_> {
    fn size(&self) -> usize {
        self.size
    }

    fn read_at(&self, at: usize, buf: &mut [u8]) -> Result<(), WavError> {
        use std::os::unix::fs::FileExt as _;
        self.file
            .read_exact_at(buf, at as u64)
            .map_err(|e| WavError(format!("cannot read the WAV file: {e}")))
    }
}

/// The format, the rate and where the samples are in a WAV file: every chunk header is
/// walked, so what cannot be processed whole (a second data chunk, a truncated one) is refused
/// before any audio is.
fn locate(
    src: &(impl Source + ?Sized),
) -> Result<(Format, u32, core::ops::Range<usize>), WavError> {
    let total = src.size();
    if total == 0 {
        return err("the file is empty");
    }
    let mut head = [0u8; 12];
    if total >= 12 {
        src.read_at(0, &mut head)?;
    }
    if total < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return err("not a WAV file (no RIFF/WAVE header)");
    }
    let mut at = 12;
    let mut fmt: Option<Fmt> = None;
    let mut found = None;
    while at + 8 <= total {
        let mut chunk = [0u8; 8];
        src.read_at(at, &mut chunk)?;
        let id = &chunk[..4];
        let size = u32le(&chunk, 4) as usize;
        let body = at + 8;
        match id {
            b"fmt " => fmt = Some(Fmt::parse(src, body, size)?),
            b"data" if found.is_some() => {
                return err(
                    "malformed WAV: a second data chunk (tonemask would mask only the first)",
                );
            }
            b"data" => {
                let Some(f) = fmt else {
                    return err("malformed WAV: data chunk before the fmt chunk");
                };
                let format = f.format()?;
                let len = data_len(total, body, size, f.bits)?;
                found = Some((format, f.rate, body..body + len));
                at = body + len + (len & 1);
                continue;
            }
            _ => {}
        }
        at = body.saturating_add(size).saturating_add(size & 1);
    }
    if let Some(w) = found {
        return Ok(w);
    }
    if fmt.is_none() {
        err("malformed or truncated WAV: no fmt chunk")
    } else {
        err("malformed or truncated WAV: no data chunk")
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, WavError> {
    Err(WavError(msg.into()))
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Wav {
    /// Number of samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.data.len() / self.format.width()
    }

    /// Whether there are no samples.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Duration in seconds.
    #[must_use]
    pub fn seconds(&self) -> f64 {
        self.len() as f64 / f64::from(self.sample_rate)
    }

    /// PCM samples (only for `Pcm16`).
    #[must_use]
    pub fn pcm16(&self) -> Vec<i16> {
        self.data
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    /// The audio as linear samples (G.711 decoded by the core's table-checked codec).
    #[must_use]
    pub fn linear(&self) -> Vec<i16> {
        match self.format {
            Format::Pcm16 => self.pcm16(),
            Format::Ulaw => self
                .data
                .iter()
                .map(|&b| tonemask_core::g711::ulaw_to_linear(b))
                .collect(),
            Format::Alaw => self
                .data
                .iter()
                .map(|&b| tonemask_core::g711::alaw_to_linear(b))
                .collect(),
        }
    }

    /// A PCM file from samples.
    #[must_use]
    pub fn from_pcm16(sample_rate: u32, samples: &[i16]) -> Wav {
        Wav {
            format: Format::Pcm16,
            sample_rate,
            data: samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }

    /// Parses a WAV file's bytes; refuses what tonemask cannot process.
    pub fn parse(bytes: &[u8]) -> Result<Wav, WavError> {
        let (format, sample_rate, data) = locate(bytes)?;
        Ok(Wav {
            format,
            sample_rate,
            data: bytes[data].to_vec(),
        })
    }

    /// As [`Wav::parse`], taking the file's bytes: the samples stay in the buffer they were
    /// read into (a long file is not copied a second time).
    pub fn from_file_bytes(mut bytes: Vec<u8>) -> Result<Wav, WavError> {
        let (format, sample_rate, data) = locate(&bytes[..])?;
        bytes.truncate(data.end);
        bytes.drain(..data.start);
        Ok(Wav {
            format,
            sample_rate,
            data: bytes,
        })
    }

    /// The file's bytes (canonical header: fmt, plus fact for G.711, then data).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = header(self.format, self.sample_rate, self.data.len());
        b.reserve(self.data.len() + 1);
        b.extend_from_slice(&self.data);
        b.extend_from_slice(padding(self.data.len()));
        b
    }
}

/// The canonical header of a file of `data_len` bytes of `format` samples at `sample_rate`
/// (fmt, plus fact for G.711, then the data chunk's header): the data and its
/// [`padding`] follow.
#[must_use]
pub fn header(format: Format, sample_rate: u32, data_len: usize) -> Vec<u8> {
    let width = format.width() as u32;
    let pcm = format == Format::Pcm16;
    let fmt_len: u32 = if pcm { 16 } else { 18 };
    let fact = if pcm { 0 } else { 12 };
    let len = data_len as u32;
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(4 + 8 + fmt_len + fact + 8 + len + (len & 1)).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&fmt_len.to_le_bytes());
    b.extend_from_slice(&format.tag().to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&sample_rate.to_le_bytes());
    b.extend_from_slice(&(sample_rate * width).to_le_bytes());
    b.extend_from_slice(&(width as u16).to_le_bytes());
    b.extend_from_slice(&format.bits().to_le_bytes());
    if !pcm {
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(b"fact");
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&(len / width).to_le_bytes());
    }
    b.extend_from_slice(b"data");
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// What follows `data_len` bytes of data: a pad byte when it is odd (RIFF chunks are
/// word-aligned).
#[must_use]
pub fn padding(data_len: usize) -> &'static [u8] {
    if data_len & 1 == 1 {
        &[0]
    } else {
        &[]
    }
}

/// A WAV file read as a stream: every chunk header is checked when it is opened (as
/// [`Wav::parse`] does, with the same refusals), then its samples are read frame by frame —
/// a long recording is never held in memory.
pub struct WavReader {
    /// Encoding.
    pub format: Format,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// The data chunk's length in bytes.
    len: usize,
    data: std::io::Take<std::io::BufReader<std::fs::File>>,
}

impl WavReader {
    /// Opens the WAV file `file` of `size` bytes (its length when opened: the caller's bound
    /// on what it reads).
    pub fn open(file: std::fs::File, size: u64) -> Result<WavReader, WavError> {
        use std::io::{Read as _, Seek as _};
        let size = usize::try_from(size).map_err(|_| WavError("the file is too large".into()))?;
        let (format, sample_rate, data) = locate(&FileSource { file: &file, size })?;
        let mut file = std::io::BufReader::with_capacity(1 << 16, file);
        file.seek(std::io::SeekFrom::Start(data.start as u64))
            .map_err(|e| WavError(format!("cannot read the WAV file: {e}")))?;
        Ok(WavReader {
            format,
            sample_rate,
            len: data.len(),
            data: file.take(data.len() as u64),
        })
    }

    /// The data chunk's length in bytes.
    #[must_use]
    pub fn data_len(&self) -> usize {
        self.len
    }
}

impl std::io::Read for WavReader {
    /// Reads the data chunk's bytes, and nothing after it.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.data.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bytes` written to a file and read back by [`WavReader`].
    fn streamed(dir: &std::path::Path, bytes: &[u8]) -> Result<Wav, WavError> {
        use std::io::Read as _;
        let path = dir.join("x.wav");
        std::fs::write(&path, bytes).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut r = WavReader::open(file, bytes.len() as u64)?;
        let mut data = Vec::new();
        r.read_to_end(&mut data).unwrap();
        assert_eq!(data.len(), r.data_len());
        Ok(Wav {
            format: r.format,
            sample_rate: r.sample_rate,
            data,
        })
    }

    #[test]
    fn round_trips_every_format() {
        for format in [Format::Pcm16, Format::Ulaw, Format::Alaw] {
            let w = Wav {
                format,
                sample_rate: 8000,
                data: (0..=255u8).collect(),
            };
            assert_eq!(Wav::parse(&w.to_bytes()).unwrap(), w);
            // Odd lengths are padded, and read back without the pad.
            let odd = Wav {
                data: (0..=254u8).collect(),
                ..w
            };
            if format != Format::Pcm16 {
                let bytes = odd.to_bytes();
                assert_eq!(bytes.len() % 2, 0);
                assert_eq!(Wav::parse(&bytes).unwrap(), odd);
                let dir = tempfile::tempdir().unwrap();
                assert_eq!(streamed(dir.path(), &bytes).unwrap(), odd);
            }
        }
    }

    /// A WAVE_FORMAT_EXTENSIBLE file of mono 16-bit PCM with sub-format GUID `guid`.
    fn extensible(guid: [u8; 16]) -> Vec<u8> {
        let mut fmt = vec![0xFE, 0xFF, 1, 0];
        fmt.extend_from_slice(&8000u32.to_le_bytes());
        fmt.extend_from_slice(&16000u32.to_le_bytes());
        fmt.extend_from_slice(&[2, 0, 16, 0, 22, 0, 16, 0, 4, 0, 0, 0]);
        fmt.extend_from_slice(&guid);
        let mut b = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        b.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        b.extend_from_slice(&fmt);
        b.extend_from_slice(b"data");
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b
    }

    #[test]
    fn extensible_files_are_read_by_a_known_sub_format_only() {
        let pcm = [
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
        ];
        assert_eq!(Wav::parse(&extensible(pcm)).unwrap().format, Format::Pcm16);
        let mut other = pcm;
        other[15] = 0x72;
        assert!(Wav::parse(&extensible(other))
            .unwrap_err()
            .0
            .contains("sub-format"));
    }

    #[test]
    fn refuses_stereo_wrong_rate_truncated_and_empty() {
        let mut stereo = Wav::from_pcm16(8000, &[0; 100]).to_bytes();
        stereo[22] = 2;
        assert!(Wav::parse(&stereo).unwrap_err().0.contains("2 channels"));
        let mut cd = Wav::from_pcm16(8000, &[0; 100]).to_bytes();
        cd[24..28].copy_from_slice(&44100u32.to_le_bytes());
        assert!(Wav::parse(&cd).unwrap_err().0.contains("44100 Hz"));
        let full = Wav::from_pcm16(8000, &[0; 100]).to_bytes();
        assert!(Wav::parse(&full[..150])
            .unwrap_err()
            .0
            .contains("truncated"));
        assert!(Wav::parse(&full[..30]).unwrap_err().0.contains("truncated"));
        assert_eq!(Wav::parse(&[]).unwrap_err().0, "the file is empty");
        // A second data chunk would be left unmasked: refused.
        let mut two = Wav::from_pcm16(8000, &[0; 100]).to_bytes();
        two.extend_from_slice(b"data");
        two.extend_from_slice(&4u32.to_le_bytes());
        two.extend_from_slice(&[1, 2, 3, 4]);
        assert!(Wav::parse(&two)
            .unwrap_err()
            .0
            .contains("second data chunk"));
        // Other chunks after the data are fine.
        let mut list = Wav::from_pcm16(8000, &[0; 100]).to_bytes();
        list.extend_from_slice(b"LIST");
        list.extend_from_slice(&4u32.to_le_bytes());
        list.extend_from_slice(b"INFO");
        assert_eq!(Wav::parse(&list).unwrap().len(), 100);
        // The no-copy reader and the streaming one give the same, and the same refusals.
        let dir = tempfile::tempdir().unwrap();
        for bytes in [
            &list[..],
            &two,
            &full[..150],
            &full[..30],
            &stereo,
            b"RIFF",
            &cd,
        ] {
            let parsed = Wav::parse(bytes);
            assert_eq!(Wav::from_file_bytes(bytes.to_vec()), parsed);
            assert_eq!(streamed(dir.path(), bytes), parsed);
        }
        assert!(Wav::parse(b"hello world, not audio")
            .unwrap_err()
            .0
            .contains("not a WAV"));
    }
}
