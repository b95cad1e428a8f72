//! A session: one call's audio stream through detector, masker and signer.

use crate::codec::Codec;
use crate::detector::{Detector, Tables, Transition};
use crate::digit::Digit;
use crate::error::{ConfigError, Error, FrameError, Misuse};
use crate::event::Source;
use crate::g711::Law;
use crate::masker::{Masker, Unit};
pub use crate::report::Emitted;
use crate::report::{CaptureControl, CaptureEmitted, Press, Reporter};
use crate::settings::CallSettings;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// How a session's output lines up with its input. The look-ahead delay is handled here, in
/// one place, for every path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// A live stream: each frame out is as long as the frame in, delayed by the look-ahead
    /// (the first look-ahead's worth is the codec's silence); the flush returns the rest.
    #[default]
    Stream,
    /// A file or a packet stream that keeps its own timing: the delay line's initial fill is
    /// withheld, so output lines up with input sample for sample (early frames come out
    /// shorter; the flush returns the look-ahead's worth) and input and output lengths match.
    Aligned,
}

/// Everything an audio session needs, validated once by [`Session::new`].
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The call's settings.
    pub settings: CallSettings,
    /// Codec of the audio.
    pub codec: Codec,
    /// Sample rate: 8000 Hz, or 16000 Hz for L16.
    pub sample_rate: u32,
    /// How output lines up with input.
    pub output: Output,
}

impl SessionConfig {
    /// Default settings for call `call_id`, `codec` at 8000 Hz.
    #[must_use]
    pub fn new(call_id: &str, codec: Codec) -> SessionConfig {
        SessionConfig {
            settings: CallSettings::new(call_id),
            codec,
            sample_rate: 8000,
            output: Output::Stream,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match (self.codec, self.sample_rate) {
            (_, 8000) | (Codec::L16, 16000) => {}
            (Codec::L16, _) => {
                return Err(ConfigError::OutOfRange {
                    field: "sample_rate",
                    allowed: "8000 or 16000 Hz",
                })
            }
            _ => return Err(ConfigError::CodecRate),
        }
        self.settings.validate()
    }
}

/// One call's stream. Feed frames in order; drain events with [`Session::poll_event`].
///
/// ```
/// use tonemask_core::{Codec, Session, SessionConfig};
/// let mut s = Session::new(SessionConfig::new("call-1", Codec::Pcmu)).unwrap();
/// let mut out = Vec::new();
/// s.process_bytes(&[0xFF; 160], &mut out).unwrap();   // 20 ms of µ-law silence
/// assert_eq!(out.len(), 160);                          // same length, delayed by the look-ahead
/// while let Some(e) = s.poll_event() { let _ = e.line; }
/// s.flush_bytes(&mut out).unwrap();                    // the look-ahead's worth of audio
/// ```
pub struct Session {
    codec: Codec,
    sample_rate: u32,
    reporter: Reporter,
    detector: Detector,
    masker: Masker,

    events: VecDeque<Emitted>,
    pending_leak: u64,
    /// Samples taken in so far (media time).
    fed: u64,
    /// Output samples still to withhold ([`Output::Aligned`]: the delay line's initial fill).
    withhold: usize,
    /// Host time without a frame after which the stream counts as idle, ms.
    idle_ms: u64,
    phase: Phase,
    /// How frames are taken: not yet known, audio processed, or detection only.
    usage: Usage,
}

/// How a session's frames are taken (fixed by the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Usage {
    /// No frame yet.
    Unset,
    /// Frames go through the delay line and out.
    Process,
    /// Frames are only detected in: nothing comes out ([`Session::detect_bytes`]).
    DetectOnly,
}

/// Samples a session handles at a time, on the stack: whole half-blocks at both rates
/// (6 × 51, 3 × 102) — filtered three side by side in wasm, four and two natively — and
/// small, as the stack buffers are cleared for every frame (816 bytes cost the RTP path
/// ≈ 4 % at 20 ms packets; these 612 did not measurably).
const CHUNK: usize = 306;

/// A frame's samples as codec units, read a piece at a time.
#[derive(Clone, Copy)]
enum Frame<'a> {
    /// Linear samples (L16).
    Samples(&'a [i16]),
    /// The codec's wire bytes (whole samples).
    Bytes(Codec, &'a [u8]),
    /// This many samples of silence in this codec.
    Silence(Codec, usize),
}

impl Frame<'_> {
    /// Samples in the frame.
    fn len(&self) -> usize {
        match *self {
            Frame::Samples(s) => s.len(),
            Frame::Bytes(c, b) => b.len() / c.bytes_per_sample(),
            Frame::Silence(_, n) => n,
        }
    }

    /// Samples `at..at + out.len()`, decoded, into `out`.
    fn samples(&self, at: usize, out: &mut [i16]) {
        match *self {
            Frame::Samples(s) => out.copy_from_slice(&s[at..at + out.len()]),
            Frame::Bytes(c, b) => c.samples_at(b, at, out),
            Frame::Silence(..) => out.fill(0),
        }
    }

    /// Units `at..at + out.len()` into `out`.
    fn units(&self, at: usize, out: &mut [u16]) {
        match *self {
            Frame::Samples(s) => {
                for (u, &v) in out.iter_mut().zip(&s[at..]) {
                    *u = v as u16;
                }
            }
            Frame::Bytes(c, b) => c.units_at(b, at, out),
            Frame::Silence(c, _) => out.fill(c.encode(0)),
        }
    }
}

/// What a session waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// More audio, time passing, or the flush; the host time of the last frame that came
    /// with one ([`Session::process_bytes_at`]).
    Audio { last_input: Option<u64> },
    /// Nothing: it was flushed.
    Flushed,
}

impl Session {
    /// Creates a session, refusing an invalid configuration.
    pub fn new(config: SessionConfig) -> Result<Session, ConfigError> {
        Session::with_tables(config, Arc::new(Tables::new()))
    }

    /// As [`Session::new`], with the detector's coefficient tables shared with other
    /// sessions (a host with many sessions keeps one [`Tables`]).
    pub fn with_tables(config: SessionConfig, tables: Arc<Tables>) -> Result<Session, ConfigError> {
        config.validate()?;
        let s = config.settings;
        let delay = s.lookahead.samples(config.sample_rate);
        Ok(Session {
            detector: Detector::with_tables(tables, config.sample_rate, &s.detector, delay),
            masker: Masker::new(config.codec, config.sample_rate, delay, s.mask_mode),
            reporter: Reporter::new(s.call_id, s.signer, s.digits),
            codec: config.codec,
            sample_rate: config.sample_rate,

            events: VecDeque::new(),
            pending_leak: 0,
            fed: 0,
            withhold: match config.output {
                Output::Stream => 0,
                Output::Aligned => delay,
            },
            idle_ms: s.lookahead.idle_ms(),
            phase: Phase::Audio { last_input: None },
            usage: Usage::Unset,
        })
    }

    /// The look-ahead in samples: output lags input by this much.
    #[must_use]
    pub fn delay_samples(&self) -> usize {
        self.masker.delay()
    }

    /// Samples replaced so far.
    #[must_use]
    pub fn masked_samples(&self) -> u64 {
        self.masker.masked_samples()
    }

    /// Processes a frame of linear samples (L16 sessions); appends as many output samples
    /// (fewer at the start of an [`Output::Aligned`] session).
    pub fn process_samples(&mut self, input: &[i16], output: &mut Vec<i16>) -> Result<(), Error> {
        self.check_linear()?;
        self.check_open()?;
        self.settle(Usage::Process)?;
        self.take_in(Frame::Samples(input));
        // The samples go through the line as they are (no units in between).
        self.exchange_into(input, output);
        Ok(())
    }

    /// Processes a frame in the codec's wire bytes; appends as many output bytes (fewer at the
    /// start of an [`Output::Aligned`] session).
    pub fn process_bytes(&mut self, input: &[u8], output: &mut Vec<u8>) -> Result<(), Error> {
        self.check_open()?;
        self.check_whole(input)?;
        self.settle(Usage::Process)?;
        let codec = self.codec;
        self.take_in(Frame::Bytes(codec, input));
        match codec {
            // A G.711 byte is its unit: the line takes and gives the wire bytes as they are.
            Codec::Pcmu | Codec::Pcma => self.exchange_into(input, output),
            // L16's wire form is big-endian: read into units and written back a piece at a
            // time.
            Codec::L16 => self.exchange(Frame::Bytes(codec, input), &mut |units| {
                codec.write_units(units, output);
            }),
        }
        Ok(())
    }

    /// Takes a frame of linear samples (L16 sessions) for **detection only**: the digits
    /// and events are exactly those [`Session::process_samples`] gives, but no audio comes
    /// out — for tools that want the digits of a recording and not its masked copy. A
    /// session that detects only cannot process audio (nor the other way round: the first
    /// frame decides), and its flush gives no audio.
    pub fn detect_samples(&mut self, input: &[i16]) -> Result<(), Error> {
        self.check_linear()?;
        self.check_open()?;
        self.settle(Usage::DetectOnly)?;
        self.take_in(Frame::Samples(input));
        self.masker.pass(input.len());
        Ok(())
    }

    /// As [`Session::detect_samples`], for a frame in the codec's wire bytes.
    pub fn detect_bytes(&mut self, input: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        self.check_whole(input)?;
        self.settle(Usage::DetectOnly)?;
        let frame = Frame::Bytes(self.codec, input);
        self.take_in(frame);
        self.masker.pass(frame.len());
        Ok(())
    }

    /// Refuses linear samples for a G.711 session.
    fn check_linear(&self) -> Result<(), Error> {
        if self.codec == Codec::L16 {
            Ok(())
        } else {
            Err(Misuse::NotLinear.into())
        }
    }

    /// Refuses bytes that are not whole samples.
    fn check_whole(&self, input: &[u8]) -> Result<(), Error> {
        if input.len().is_multiple_of(self.codec.bytes_per_sample()) {
            Ok(())
        } else {
            Err(FrameError::PartialSample.into())
        }
    }

    /// Fixes how frames are taken at the first; refuses the other way after it.
    fn settle(&mut self, usage: Usage) -> Result<(), Error> {
        match self.usage {
            Usage::Unset => {
                self.usage = usage;
                Ok(())
            }
            u if u == usage => Ok(()),
            _ => Err(Misuse::DetectOnly.into()),
        }
    }

    /// As [`Session::process_samples`], for a frame that arrived at host time `now` (ms on
    /// the host's monotonic clock; only differences matter): a live host that passes its
    /// time can then call [`Session::handle_timeout`] when frames stop.
    pub fn process_samples_at(
        &mut self,
        now: u64,
        input: &[i16],
        output: &mut Vec<i16>,
    ) -> Result<(), Error> {
        self.process_samples(input, output)?;
        self.phase = Phase::Audio {
            last_input: Some(now),
        };
        Ok(())
    }

    /// As [`Session::process_bytes`], for a frame that arrived at host time `now` (see
    /// [`Session::process_samples_at`]).
    pub fn process_bytes_at(
        &mut self,
        now: u64,
        input: &[u8],
        output: &mut Vec<u8>,
    ) -> Result<(), Error> {
        self.process_bytes(input, output)?;
        self.phase = Phase::Audio {
            last_input: Some(now),
        };
        Ok(())
    }

    /// Host time `now` has come without a frame. Once no frame has come for the look-ahead
    /// plus [`IDLE_AFTER_LOOKAHEAD_MS`](crate::settings::IDLE_AFTER_LOOKAHEAD_MS), a press
    /// still on is reported as ending at the last sample received (its event is ready for
    /// [`Session::poll_event`]); if the same tone goes on when frames resume, it is masked as
    /// before but not reported again. The audio in the delay line stays there: it is part of
    /// the stream and leaves with the next frame or the flush. A card capture's clock runs on
    /// with the host's time while frames have stopped, so a field the caller does not finish
    /// times out even if the call's audio stalls. Call it at [`Session::poll_timeout`].
    pub fn handle_timeout(&mut self, now: u64) -> Result<(), Error> {
        self.check_open()?;
        let Phase::Audio {
            last_input: Some(last),
        } = self.phase
        else {
            return Ok(());
        };
        if self.press_deadline(last).is_some_and(|due| now >= due) {
            self.detector.cut();
            self.drain_transitions();
        }
        self.reporter
            .tick(self.media_ms().saturating_add(now.saturating_sub(last)));
        Ok(())
    }

    /// The host time at which [`Session::handle_timeout`] has something to do if no frame
    /// comes first, once frames came with the host's time: a press on, or a capture's field
    /// running out; else `None`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let Phase::Audio {
            last_input: Some(last),
        } = self.phase
        else {
            return None;
        };
        let capture = self
            .reporter
            .capture_deadline()
            .map(|due| last.saturating_add(due.saturating_sub(self.media_ms())));
        [self.press_deadline(last), capture]
            .into_iter()
            .flatten()
            .min()
    }

    /// When a press still on is cut, for frames last seen at host time `last`.
    fn press_deadline(&self, last: u64) -> Option<u64> {
        self.detector
            .digit_on()
            .map(|_| last.saturating_add(self.idle_ms))
    }

    /// Ends the stream (L16): closes a digit still on and appends the look-ahead's worth of
    /// samples still in the delay line.
    pub fn flush_samples(&mut self, output: &mut Vec<i16>) -> Result<(), Error> {
        self.check_linear()?;
        self.finish(&mut |units| output.extend(units.iter().map(|&u| u as i16)))
    }

    /// Ends the stream: like [`Session::flush_samples`], in the codec's wire bytes.
    pub fn flush_bytes(&mut self, output: &mut Vec<u8>) -> Result<(), Error> {
        let codec = self.codec;
        self.finish(&mut |units| codec.write_units(units, output))
    }

    /// The digit confirmed and still on (reported once it ends, or at a timeout), if any.
    #[must_use]
    pub fn digit_on(&self) -> Option<Digit> {
        self.detector.digit_on()
    }

    /// Next digit event, oldest first.
    pub fn poll_event(&mut self) -> Option<Emitted> {
        crate::report::next_event(&mut self.events)
    }

    /// Card capture at the session's media time (the samples taken in so far): start one,
    /// cancel it, ask a field again. While one runs, presses leave only as its progress
    /// ([`Session::poll_capture`]); its field time-outs run on media time.
    pub fn capture(&mut self) -> CaptureControl<'_> {
        let now = self.media_ms();
        self.reporter.capture_at(now)
    }

    /// Next capture record, oldest first.
    pub fn poll_capture(&mut self) -> Option<CaptureEmitted> {
        self.reporter.poll_capture()
    }

    fn media_ms(&self) -> u64 {
        self.fed * 1000 / u64::from(self.sample_rate)
    }

    /// The signed start-of-call record (sequence number 1, the first line of the call's audit
    /// chain), when the session has a signer: write it before the session's other lines.
    #[must_use]
    pub fn start_record(&self) -> Option<&str> {
        self.reporter.start_record()
    }

    /// The signed end-of-call record, once the session was flushed (and has a signer).
    #[must_use]
    pub fn end_record(&self) -> Option<&str> {
        self.reporter.end_record()
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.phase == Phase::Flushed {
            Err(Misuse::Finished.into())
        } else {
            Ok(())
        }
    }

    /// Closes the stream; the delay line's content goes to `out` (pushed out by silence).
    fn finish(&mut self, out: &mut dyn FnMut(&[u16])) -> Result<(), Error> {
        self.check_open()?;
        self.phase = Phase::Flushed;
        self.detector.finish();
        self.drain_transitions();
        self.reporter.finish();
        if self.usage != Usage::DetectOnly {
            self.exchange(Frame::Silence(self.codec, self.masker.delay()), out);
        }
        Ok(())
    }

    /// Takes in a frame: the detector sees all of it (linear samples and G.711 codes where
    /// they are, L16 wire bytes a piece at a time decoded on the stack: a session keeps no
    /// copy of its frames) and its transitions reach the masker. The caller
    /// then passes the frame through the delay line ([`Session::exchange_into`],
    /// [`Session::exchange`]) — or, detecting only, has the masker count it
    /// ([`Masker::pass`]: its leak accounting stays exact).
    fn take_in(&mut self, frame: Frame<'_>) {
        // Linear samples and G.711 codes need no decoding: the detector takes them where
        // they are (it is sample-exact, so how a frame is cut changes nothing).
        if let Frame::Samples(samples) = frame {
            self.detector.push(samples);
        } else if let Frame::Bytes(Codec::Pcmu, codes) = frame {
            self.detector.push_codes(codes, Law::Mu);
        } else if let Frame::Bytes(Codec::Pcma, codes) = frame {
            self.detector.push_codes(codes, Law::A);
        } else {
            let mut pcm = [0i16; CHUNK];
            let mut at = 0;
            while at < frame.len() {
                let n = (frame.len() - at).min(CHUNK);
                frame.samples(at, &mut pcm[..n]);
                self.detector.push(&pcm[..n]);
                at += n;
            }
        }
        self.fed += frame.len() as u64;
        self.drain_transitions();
        self.reporter.tick(self.media_ms());
    }

    /// Passes `input`, units as the caller holds them, through the delay line straight into
    /// `output`, less what is still withheld ([`Output::Aligned`]: the line's initial fill).
    fn exchange_into<U: Unit>(&mut self, input: &[U], output: &mut Vec<U>) {
        let len = output.len();
        output.resize(len + input.len(), U::default());
        self.masker.exchange(input, &mut output[len..]);
        let skip = self.withhold.min(input.len());
        if skip > 0 {
            self.withhold -= skip;
            output.drain(len..len + skip);
        }
    }

    /// Passes `frame` through the delay line, a piece at a time; what leaves goes to `out`,
    /// less what is still withheld ([`Output::Aligned`]: the line's initial fill).
    fn exchange(&mut self, frame: Frame<'_>, out: &mut dyn FnMut(&[u16])) {
        let (mut units, mut leaving) = ([0u16; CHUNK], [0u16; CHUNK]);
        let mut at = 0;
        while at < frame.len() {
            let n = (frame.len() - at).min(CHUNK);
            frame.units(at, &mut units[..n]);
            self.masker.exchange(&units[..n], &mut leaving[..n]);
            let skip = self.withhold.min(n);
            self.withhold -= skip;
            if skip < n {
                out(&leaving[skip..n]);
            }
            at += n;
        }
    }

    fn drain_transitions(&mut self) {
        while let Some(t) = self.detector.poll() {
            match t {
                Transition::MaskFrom { start } => {
                    self.pending_leak = self.masker.leaked_before(start);
                    self.masker.open(start);
                }
                Transition::MaskUntil { start, end } => {
                    // A digit inside this span was queued before it closed and took the leak.
                    self.masker.close(start, end);
                    self.pending_leak = 0;
                }
                Transition::Started { .. } => {}
                Transition::Ended {
                    digit,
                    start,
                    end,
                    detected_at,
                } => {
                    let ms = |s: u64| s * 1000 / u64::from(self.sample_rate);
                    let press = Press {
                        digit,
                        start_ms: ms(start),
                        end_ms: ms(end),
                        detected_ms: ms(detected_at),
                        source: Source::Inband,
                        leaked_samples: core::mem::take(&mut self.pending_leak),
                    };
                    self.events.extend(self.reporter.report(press));
                }
            }
        }
    }
}
