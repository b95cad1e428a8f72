//! Running a call recording through the plugin: frames in, masked audio and events out.

use crate::keys::KeyRing;
use crate::plugin::{
    default_settings, CallSettings, CaptureEvent, CaptureRequest, Codec, DigitEvent, Instance,
    SessionConfig,
};
use crate::wav::{Format, Wav, WavReader};
use anyhow::{bail, Result};
use std::io::Read;

/// How to run a call.
#[derive(Clone, Debug)]
pub struct Options {
    /// The call's settings (its key is set per session from the key ring).
    pub settings: CallSettings,
    /// Frame length handed to the plugin, ms (20 ms = one RTP packet of G.711).
    pub frame_ms: u32,
    /// A card capture to start during the call, if any.
    pub capture: Option<CapturePlan>,
    /// Whether the masked audio is kept in [`Outcome::masked`] (`false`: only its length is
    /// checked, and `masked` holds no samples — for runs that want the events alone).
    pub keep_audio: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            settings: default_settings("call"),
            frame_ms: 20,
            capture: None,
            keep_audio: true,
        }
    }
}

/// Frame length for a recording that no packetization constrains (`detect` and `mask` of a
/// WAV file), ms: the core is sample-exact — the masked audio and the digits do not depend
/// on how the audio is cut (tested) — and four-second frames cross the component boundary
/// two hundred times less often than 20 ms ones, and read and write the file in 32–128 KB
/// pieces (mask of the bench hour: 144–150 ms task-clock in one-second frames, 139–143 in
/// four-second ones). Card captures keep 20 ms frames: a capture starts at a frame boundary.
pub const FILE_FRAME_MS: u32 = 4000;

impl Options {
    /// Options for a whole recording with `settings`: frames of [`FILE_FRAME_MS`], no
    /// capture.
    #[must_use]
    pub fn for_file(settings: CallSettings) -> Options {
        Options {
            settings,
            frame_ms: FILE_FRAME_MS,
            capture: None,
            keep_audio: true,
        }
    }
}

/// A card capture the agent starts at `at_ms` of the call.
#[derive(Clone)]
pub struct CapturePlan {
    /// When, ms of the call's audio.
    pub at_ms: u64,
    /// What to capture and whom to seal it to.
    pub request: CaptureRequest,
}

impl std::fmt::Debug for CapturePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapturePlan")
            .field("at_ms", &self.at_ms)
            .field("id", &self.request.id)
            .finish_non_exhaustive()
    }
}

/// What a run produced.
pub struct Outcome {
    /// Masked audio in the input's format, aligned with the input and of the same length
    /// (empty when [`Options::keep_audio`] is off).
    pub masked: Wav,
    /// Digit events in order.
    pub events: Vec<DigitEvent>,
    /// Capture records in order, each with the call time (ms) at which it came out.
    pub captures: Vec<(u64, CaptureEvent)>,
    /// The signed start-of-call record (when signed).
    pub start_record: Option<String>,
    /// The signed end-of-call record (when signed).
    pub end_record: Option<String>,
}

impl Outcome {
    /// Its signed lines as written to an events file: start, events and capture records in
    /// sequence order, end.
    #[must_use]
    pub fn signed_lines(&self) -> String {
        signed_lines_with_captures(
            self.start_record.as_deref(),
            &self.events,
            &self.captures,
            self.end_record.as_deref(),
        )
    }
}

/// Runs `wav` through a new session of `instance`; `progress` gets the fraction done.
pub fn run(
    instance: &mut Instance,
    wav: &Wav,
    opts: &Options,
    keys: Option<&KeyRing>,
    progress: impl FnMut(f64),
) -> Result<Outcome> {
    // The masked audio kept (as the file's bytes) only when it is wanted — a whole-file copy
    // cost an hour's `detect` more in page faults than the plugin spent detecting.
    let keep = opts.keep_audio;
    let mut data = Vec::with_capacity(if keep { wav.data.len() } else { 0 });
    let audio = Audio::from(wav);
    let mut keep_it = |masked: &[u8]| {
        data.extend_from_slice(masked);
        Ok(())
    };
    let sink: Option<Sink<'_>> = if keep { Some(&mut keep_it) } else { None };
    let out = run_stream(instance, audio, opts, keys, sink, progress)?;
    Ok(Outcome {
        masked: Wav { data, ..out.masked },
        ..out
    })
}

/// Where [`run_stream`] hands the masked audio, frame by frame (the file's bytes).
pub type Sink<'a> = &'a mut dyn FnMut(&[u8]) -> Result<()>;

/// A recording's audio as [`run_stream`] takes it.
pub struct Audio<'a> {
    /// Encoding.
    pub format: Format,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Length of the data in bytes.
    pub len: usize,
    /// The data (PCM: little-endian pairs): exactly `len` bytes.
    pub data: Box<dyn Read + 'a>,
}

impl<'a> From<&'a Wav> for Audio<'a> {
    /// A recording in memory.
    fn from(wav: &'a Wav) -> Audio<'a> {
        Audio {
            format: wav.format,
            sample_rate: wav.sample_rate,
            len: wav.data.len(),
            data: Box::new(&wav.data[..]),
        }
    }
}

impl From<WavReader> for Audio<'static> {
    /// A recording read from its file as it is processed.
    fn from(wav: WavReader) -> Audio<'static> {
        Audio {
            format: wav.format,
            sample_rate: wav.sample_rate,
            len: wav.data_len(),
            data: Box::new(wav),
        }
    }
}

impl Audio<'_> {
    /// Duration in seconds.
    #[must_use]
    pub fn seconds(&self) -> f64 {
        (self.len / self.format.width()) as f64 / f64::from(self.sample_rate)
    }
}

/// As [`run`], reading the audio as it goes and handing the masked audio (as the file's
/// bytes, aligned with the input) to `sink` frame by frame — or, without a sink, having the
/// plugin detect only (the same events, no audio out: for runs that want the events alone):
/// a long recording is never held in memory. [`Outcome::masked`] holds no samples;
/// [`Options::keep_audio`] is not used. A read that ends before `len` bytes is an error.
pub fn run_stream(
    instance: &mut Instance,
    audio: Audio<'_>,
    opts: &Options,
    keys: Option<&KeyRing>,
    mut sink: Option<Sink<'_>>,
    mut progress: impl FnMut(f64),
) -> Result<Outcome> {
    let codec = match audio.format {
        Format::Pcm16 => Codec::L16,
        Format::Ulaw => Codec::Pcmu,
        Format::Alaw => Codec::Pcma,
    };
    let config = SessionConfig {
        settings: CallSettings {
            key: keys.map(KeyRing::plugin_key).transpose()?,
            ..opts.settings.clone()
        },
        codec,
        sample_rate: audio.sample_rate,
        // A file: the plugin withholds the look-ahead's fill, output lines up with input.
        aligned: true,
    };
    let session = instance.create_audio(&config)?;
    let delay = instance.audio(session).delay_samples()? as usize;
    let start_record = instance.audio(session).start_record()?;
    let frame_ms = opts.frame_ms.max(1);
    let frame = ((audio.sample_rate * frame_ms / 1000) as usize).max(1);
    let mut r = Frames {
        inst: instance,
        session,
        frame_ms: u64::from(frame_ms),
        plan: opts.capture.as_ref(),
        events: Vec::new(),
        captures: Vec::new(),
        capturing: false,
    };
    // Frame by frame, through buffers reused for every frame.
    let width = audio.format.width();
    let Audio {
        len,
        data: mut input,
        ..
    } = audio;
    let mut bytes = vec![0u8; frame * width];
    let mut samples = Vec::with_capacity(frame);
    let mut out = Vec::with_capacity(frame * width);
    let (mut read, mut produced) = (0, 0);
    let frames = len.div_ceil(frame * width);
    for i in 0..=frames {
        let n = (len - read).min(frame * width);
        let got = if i < frames {
            fill(&mut input, &mut bytes[..n])?;
            read += n;
            &bytes[..n]
        } else {
            &[][..]
        };
        let last = i == frames;
        // The flush counts as the frame after the last whole one (as when frames were cut
        // from a buffer), for a capture's timing.
        let at = if last { len / (frame * width) } else { i };
        match (audio.format, sink.as_mut()) {
            // Only the digits wanted: frames go to the plugin for detection only.
            (Format::Pcm16, None) => {
                to_samples(got, &mut samples);
                r.step(at, |a| {
                    if last {
                        a.flush_samples().map(drop)
                    } else {
                        a.detect_samples(&samples)
                    }
                })?;
            }
            (_, None) => {
                r.step(at, |a| {
                    if last {
                        a.flush().map(drop)
                    } else {
                        a.detect(got)
                    }
                })?;
            }
            (Format::Pcm16, Some(sink)) => {
                to_samples(got, &mut samples);
                let masked = r.step(at, |a| {
                    if last {
                        a.flush_samples()
                    } else {
                        a.process_samples(&samples)
                    }
                })?;
                produced += 2 * masked.len();
                out.clear();
                out.extend(masked.iter().flat_map(|s| s.to_le_bytes()));
                sink(&out)?;
            }
            (Format::Ulaw | Format::Alaw, Some(sink)) => {
                out = r.step(at, |a| if last { a.flush() } else { a.process(got) })?;
                produced += out.len();
                sink(&out)?;
            }
        }
        progress(read as f64 / len.max(1) as f64);
    }
    if sink.is_some() {
        same_length(produced / width, len / width, delay)?;
    }
    r.drain()?;
    let Frames {
        events, captures, ..
    } = r;
    let end_record = instance.audio(session).end_record()?;
    instance.audio(session).close()?;
    progress(1.0);
    Ok(Outcome {
        masked: Wav {
            format: audio.format,
            sample_rate: audio.sample_rate,
            data: Vec::new(),
        },
        events,
        captures,
        start_record,
        end_record,
    })
}

/// Little-endian 16-bit PCM bytes as samples, into `samples` (cleared first).
fn to_samples(bytes: &[u8], samples: &mut Vec<i16>) {
    samples.clear();
    samples.extend(
        bytes
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]])),
    );
}

/// Fills `buf` from `input`; the input ending first is an error (the file changed while it
/// was read).
fn fill(input: &mut dyn Read, buf: &mut [u8]) -> Result<()> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            anyhow::anyhow!("the recording ended before its data chunk did (was the file changed while it was read?)")
        } else {
            anyhow::Error::new(e).context("cannot read the recording")
        }
    })
}

/// One session's frames in order, with what comes out of each: digit events, and the
/// capture (started before the frame at its time) and its records.
struct Frames<'a> {
    inst: &'a mut Instance,
    session: crate::plugin::AudioHandle,
    frame_ms: u64,
    plan: Option<&'a CapturePlan>,
    events: Vec<DigitEvent>,
    captures: Vec<(u64, CaptureEvent)>,
    /// A capture was started: its records are taken after every frame (stamped with it).
    capturing: bool,
}

/// Frames between two drains of the digit events (each carries its own times, so when they
/// are taken changes nothing but the crossings: one per frame instead of two).
const EVENTS_EVERY: usize = 50;

impl Frames<'_> {
    /// Frame `i` (or the flush after the last): `f` runs on the session, a capture due by
    /// then started before it; the capture's records are collected after it, digit events
    /// every [`EVENTS_EVERY`] frames (and by [`Frames::drain`] at the end).
    fn step<T>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut crate::plugin::AudioSession<'_>) -> Result<T>,
    ) -> Result<T> {
        let now = i as u64 * self.frame_ms;
        if let Some(p) = self.plan.filter(|p| now >= p.at_ms) {
            self.inst.audio(self.session).start_capture(&p.request)?;
            self.plan = None;
            self.capturing = true;
        }
        let mut audio = self.inst.audio(self.session);
        let out = f(&mut audio)?;
        if i % EVENTS_EVERY == EVENTS_EVERY - 1 {
            self.events.extend(audio.drain_events()?);
        }
        if self.capturing {
            let after = now + self.frame_ms;
            self.captures
                .extend(audio.drain_captures()?.into_iter().map(|c| (after, c)));
        }
        Ok(out)
    }

    /// Takes the digit events the session still holds (after its flush; capture records
    /// were taken with each frame).
    fn drain(&mut self) -> Result<()> {
        let events = self.inst.audio(self.session).drain_events()?;
        self.events.extend(events);
        Ok(())
    }
}

/// The aligned output must be exactly as long as the input.
fn same_length(out: usize, len: usize, delay: usize) -> Result<()> {
    if out != len {
        bail!("plugin returned {out} samples for {len} in (look-ahead {delay}, aligned)");
    }
    Ok(())
}

/// The signed lines of one session — its start-of-call record, its events, then its
/// end-of-call record — one per line, as written to an events file.
#[must_use]
pub fn signed_lines(
    start_record: Option<&str>,
    events: &[DigitEvent],
    end_record: Option<&str>,
) -> String {
    signed_lines_with_captures(start_record, events, &[], end_record)
}

/// As [`signed_lines`], with the session's capture records among its digit events, in
/// sequence order.
#[must_use]
pub fn signed_lines_with_captures(
    start_record: Option<&str>,
    events: &[DigitEvent],
    captures: &[(u64, CaptureEvent)],
    end_record: Option<&str>,
) -> String {
    let mut lines: Vec<(u64, &str)> = events
        .iter()
        .filter_map(|e| Some((e.seq, e.signed.as_deref()?)))
        .chain(
            captures
                .iter()
                .filter_map(|(_, c)| Some((c.seq, c.signed.as_deref()?))),
        )
        .collect();
    lines.sort_by_key(|(seq, _)| *seq);
    start_record
        .into_iter()
        .chain(lines.into_iter().map(|(_, l)| l))
        .chain(end_record)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The wire name of a digit's source (as in the signed payload).
#[must_use]
pub fn source_name(s: crate::plugin::DigitSource) -> &'static str {
    use crate::plugin::DigitSource;
    match s {
        DigitSource::Inband => "inband",
        DigitSource::Rfc4733 => "rfc4733",
        DigitSource::Both => "both",
    }
}

/// The JSON line `tonemask detect` prints for an event.
#[must_use]
pub fn event_json(e: &DigitEvent) -> serde_json::Value {
    serde_json::json!({
        "digit": e.digit.map(String::from),
        "start_ms": e.start_ms,
        "end_ms": e.end_ms,
        "detected_ms": e.detected_ms,
        "seq": e.seq,
        "source": source_name(e.source),
    })
}
