//! The RTP path: one direction of a call as RTP packets in, the packets to forward out.
//!
//! An [`RtpSession`] knows the call's payload types ([`RtpConfig`]): audio (PCMU, PCMA, L16),
//! RFC 4733 telephone-events and RFC 2198 RED. For each packet pushed in it returns the
//! packets to forward, and it reports each key press once:
//!
//! - **audio** runs through a [`Session`] (detector + masker) in its own codec. The look-ahead
//!   becomes a *packet delay*: a packet leaves when the masker has released all of its
//!   samples, so a tone is replaced from its first sample. Header, timestamp, SSRC and marker
//!   are kept; only the payload (and padding) changes. Lost packets (a timestamp gap) are fed
//!   as silence, so media time stays the RTP timestamp; a packet older than the gap fill is
//!   dropped rather than forwarded unmasked;
//! - **telephone-events** are turned into presses ([`telephone_event::Tracker`]), then
//!   replaced according to the mask mode: `silence` drops them (later sequence numbers shift
//!   so the receiver sees no loss); `tone` and `noise` replace each one with an audio packet
//!   of the stream's codec carrying the neutral tone or comfort noise for the time it newly
//!   covers (same sequence number) — while the sender sends no audio of its own during the
//!   press; once it does, the events are dropped. `off` forwards them;
//! - **RED** blocks are opened: events in any block count (and are removed); redundant audio
//!   blocks are replaced by the masked audio already sent for those timestamps (or left out
//!   when it is not at hand);
//! - a press sent both as tones and as events is reported once, with source
//!   [`Source::Both`] (see `merge`).
//!
//! Fail closed: nothing leaves that the session did not inspect.
//!
//! - A payload type the configuration does not name is dropped and counted
//!   ([`RtpStats::unknown_pt`]) — except a *dynamic* one (96–127) whose payload has the shape of
//!   RFC 4733 DTMF events: those are taken as telephone-events (reported, and handled by the
//!   mask mode), since a receiver may well decode them. RED blocks of unknown types are removed.
//! - The session binds to the first SSRC it sees. Packets of another SSRC are dropped and
//!   counted ([`RtpStats::foreign_ssrc`]) until that SSRC has sent [`SSRC_SWITCH_PACKETS`]
//!   packets in a row with none of the bound one between them: then the stream has really
//!   changed source, and the session follows it (a new timeline). Interleaved third-party
//!   packets never get there.
//! - A timestamp jump of more than [`MAX_GAP_S`] seconds either way is an RFC 3550 restart:
//!   the audio pipeline starts afresh and media time goes on from where it was — never hours
//!   of "lost" audio.
//! - Malformed packets (and audio packets without samples) are dropped with an [`RtpError`]
//!   that says why; nothing panics.
//!
//! RTCP multiplexed on the port (RFC 5761) carries no audio and is forwarded in order.

pub mod clock;
mod merge;
pub mod packet;
pub mod red;
pub mod telephone_event;

use crate::codec::Codec;
use crate::detector::DetectorConfig;
use crate::error::{ConfigError, SessionError};
use crate::event::Source;
use crate::masker::{Fill, MaskMode};
use crate::report::{Emitted, Press, Reporter};
use crate::session::{Session, SessionConfig};
use crate::sign::Signer;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use clock::Anchor;
use core::fmt;
use merge::Merger;
use packet::{Packet, PacketError};
use red::{Block, RedError};
use telephone_event::{EventPayload, ShortEvent, Tracker};

/// A timestamp jump (either way) larger than this many seconds restarts the stream's timeline
/// instead of being filled with silence.
pub const MAX_GAP_S: u32 = 5;
/// Packets in a row a new SSRC must send, with none of the bound SSRC among them, before the
/// session follows it (≈ 200 ms of 20 ms packets; those packets are dropped).
pub const SSRC_SWITCH_PACKETS: u32 = 10;
/// Extended timestamps start here, so that late packets never go below zero.
const EXT_ORIGIN: u64 = 1 << 40;

/// An audio payload type of the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioType {
    /// RTP payload type (0–127).
    pub pt: u8,
    /// Codec.
    pub codec: Codec,
    /// Clock rate = sample rate (8000; 16000 for L16).
    pub rate: u32,
}

/// The telephone-event payload type of the call (dynamic: never assumed to be 101).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventType {
    /// RTP payload type.
    pub pt: u8,
    /// Clock rate (should match the audio's).
    pub clock: u32,
}

/// Everything an RTP session needs, validated by [`RtpSession::new`].
#[derive(Clone, Debug)]
pub struct RtpConfig {
    /// Call id carried in every event.
    pub call_id: String,
    /// Audio payload types (at least one).
    pub audio: Vec<AudioType>,
    /// The telephone-event payload type, if negotiated.
    pub telephone_event: Option<EventType>,
    /// The RED payload type, if negotiated.
    pub red: Option<u8>,
    /// Look-ahead (packet delay), ms.
    pub lookahead_ms: u32,
    /// What replaces tones; `Off` also forwards telephone-events.
    pub mask_mode: MaskMode,
    /// Detector tuning.
    pub detector: DetectorConfig,
    /// Key and session nonce that sign events.
    pub signer: Option<Signer>,
}

impl RtpConfig {
    /// A configuration with one audio type and defaults for the rest.
    #[must_use]
    pub fn new(call_id: &str, audio: AudioType) -> RtpConfig {
        RtpConfig {
            call_id: String::from(call_id),
            audio: alloc::vec![audio],
            telephone_event: None,
            red: None,
            lookahead_ms: crate::DEFAULT_LOOKAHEAD_MS,
            mask_mode: MaskMode::default(),
            detector: DetectorConfig::default(),
            signer: None,
        }
    }

    /// The audio type of payload type `pt`, if it is one.
    fn audio_type(&self, pt: u8) -> Option<AudioType> {
        self.audio.iter().find(|a| a.pt == pt).copied()
    }

    /// The fastest clock of the call's payload types.
    fn max_clock(&self) -> u32 {
        let audio = self.audio.iter().map(|a| a.rate);
        audio
            .chain(self.telephone_event.map(|e| e.clock))
            .max()
            .unwrap_or(8000)
    }

    /// Clock of telephone-event timestamps (the first audio type's when none is configured).
    fn event_clock(&self) -> u32 {
        self.telephone_event.map_or(self.audio[0].rate, |e| e.clock)
    }

    fn session(&self, a: AudioType) -> SessionConfig {
        SessionConfig {
            call_id: self.call_id.clone(),
            codec: a.codec,
            sample_rate: a.rate,
            lookahead_ms: self.lookahead_ms,
            mask_mode: self.mask_mode,
            detector: self.detector,
            signer: None,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.audio.is_empty() {
            return Err(ConfigError::OutOfRange {
                field: "audio payload types",
                allowed: "at least one",
            });
        }
        let mut pts: Vec<u8> = self.audio.iter().map(|a| a.pt).collect();
        pts.extend(self.telephone_event.map(|e| e.pt));
        pts.extend(self.red);
        if pts.iter().any(|&pt| pt > 127) {
            return Err(ConfigError::OutOfRange {
                field: "payload type",
                allowed: "0 to 127",
            });
        }
        pts.sort_unstable();
        if pts.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::OutOfRange {
                field: "payload types",
                allowed: "each used once",
            });
        }
        if let Some(e) = self.telephone_event {
            if !(8000..=48000).contains(&e.clock) {
                return Err(ConfigError::OutOfRange {
                    field: "telephone-event clock rate",
                    allowed: "8000 to 48000 Hz",
                });
            }
        }
        for a in &self.audio {
            self.session(*a).validate()?;
        }
        Ok(())
    }
}

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtpError {
    /// Not a valid RTP packet.
    Packet(PacketError),
    /// A RED payload is malformed.
    Red(RedError),
    /// A telephone-event payload is too short.
    Event(ShortEvent),
    /// An audio payload is not a whole number of samples.
    Audio(SessionError),
    /// An audio packet without samples.
    EmptyAudio,
    /// A payload type the call did not announce (and not shaped like DTMF events).
    UnknownPayloadType {
        /// The payload type.
        pt: u8,
    },
    /// A packet of an SSRC other than the one the session is bound to.
    ForeignSsrc {
        /// The packet's SSRC.
        ssrc: u32,
    },
    /// The session was flushed.
    Finished,
}

impl fmt::Display for RtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtpError::Packet(e) => e.fmt(f),
            RtpError::Red(e) => e.fmt(f),
            RtpError::Event(e) => e.fmt(f),
            RtpError::Audio(e) => write!(f, "audio payload: {e}"),
            RtpError::EmptyAudio => f.write_str("audio packet without samples"),
            RtpError::UnknownPayloadType { pt } => {
                write!(f, "payload type {pt} was not announced for this call")
            }
            RtpError::ForeignSsrc { ssrc } => {
                write!(f, "SSRC {ssrc:#010x} is not the stream's bound source")
            }
            RtpError::Finished => f.write_str("the RTP session was flushed"),
        }
    }
}

impl From<PacketError> for RtpError {
    fn from(e: PacketError) -> Self {
        RtpError::Packet(e)
    }
}

impl From<RedError> for RtpError {
    fn from(e: RedError) -> Self {
        RtpError::Red(e)
    }
}

impl From<ShortEvent> for RtpError {
    fn from(e: ShortEvent) -> Self {
        RtpError::Event(e)
    }
}

/// Counters of what happened to the packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtpStats {
    /// Packets pushed in.
    pub received: u64,
    /// Packets forwarded.
    pub forwarded: u64,
    /// Telephone-event packets dropped (masked).
    pub events_dropped: u64,
    /// Telephone-event packets replaced by tone or noise audio.
    pub events_replaced: u64,
    /// Telephone-event blocks removed from RED packets.
    pub red_events_removed: u64,
    /// Malformed packets dropped.
    pub malformed: u64,
    /// Packets on a payload type the call did not announce; dropped.
    pub unknown_pt: u64,
    /// Packets of an SSRC other than the bound one; dropped.
    pub foreign_ssrc: u64,
    /// Audio packets that came after their timestamps had been filled as lost; dropped.
    pub late: u64,
    /// Audio packets the masker did not return (an internal failure; never expected);
    /// dropped, not copied.
    pub unprocessed: u64,
}

/// A redundant block of a RED packet waiting to be rebuilt.
#[derive(Debug)]
enum Redundant {
    /// Audio of the primary's codec: refill from the masked audio already sent.
    Audio { pt: u8, ts_offset: u16, len: usize },
    /// Anything else, kept as received.
    Kept {
        pt: u8,
        ts_offset: u16,
        data: Vec<u8>,
    },
}

/// A packet (or a stretch of filled-in time) waiting for the masker.
#[derive(Debug)]
enum Queued {
    /// An audio packet: its header (sequence number already set), its audio type (the
    /// payload type of a RED packet's primary block) and sample count.
    Audio {
        header: Vec<u8>,
        audio: AudioType,
        ext: u64,
        units: usize,
        red: Option<Vec<Redundant>>,
    },
    /// Silence fed for lost packets; its output is discarded.
    Gap { units: usize, bps: usize },
    /// A packet forwarded as is, in order.
    Pass(Vec<u8>),
}

/// The stream's timeline: extended timestamps and their media time.
#[derive(Clone, Copy, Debug)]
struct Timeline {
    ssrc: u32,
    last_ts: u32,
    last_ext: u64,
    /// Extended timestamp at `base_ms`.
    ts_base: u64,
    /// Media time at `ts_base`, ms since the call began.
    base_ms: u64,
}

/// A press being replaced by audio (modes `tone` and `noise`).
struct Replacing {
    ssrc: u32,
    /// Extended timestamp of the press.
    start: u64,
    /// Samples already sent as replacement.
    covered: u64,
    /// The sender sent audio of its own during the press: stop replacing.
    audio_seen: bool,
    fill: Fill,
}

/// The audio currently running through a detector and masker.
struct Pipeline {
    session: Session,
    audio: AudioType,
    /// Extended timestamp of its first sample.
    ts_origin: u64,
    /// Extended timestamp expected next.
    next: u64,
    /// Output bytes still to discard (the delay line's initial fill).
    skip: usize,
}

/// One direction of a call, as RTP packets.
pub struct RtpSession {
    config: RtpConfig,
    reporter: Reporter,
    tracker: Tracker,
    merger: Merger,
    timeline: Option<Timeline>,
    pipeline: Option<Pipeline>,
    queue: VecDeque<Queued>,
    /// Masked output bytes not yet placed in a packet.
    ready: VecDeque<u8>,
    /// Masked bytes already sent (for RED), ending at extended timestamp `history_end`.
    history: VecDeque<u8>,
    history_end: u64,
    /// Packets dropped so far on this SSRC: later sequence numbers move down by this much.
    seq_shift: u16,
    /// Media time reached, ms.
    now_ms: u64,
    /// Host time and media time at the last packet that carried media.
    anchor: Option<Anchor>,
    replacing: Option<Replacing>,
    /// A new SSRC and how many packets in a row it has sent (see [`SSRC_SWITCH_PACKETS`]).
    candidate: Option<(u32, u32)>,
    /// Largest timestamp step, either way, that is not a restart (any clock of the call).
    max_jump: u64,
    events: VecDeque<Emitted>,
    stats: RtpStats,
    scratch: Vec<u8>,
    finished: bool,
}

impl RtpSession {
    /// Creates a session, refusing an invalid configuration.
    pub fn new(config: RtpConfig) -> Result<RtpSession, ConfigError> {
        config.validate()?;
        Ok(RtpSession {
            reporter: Reporter::new(config.call_id.clone(), config.signer.clone()),
            tracker: Tracker::new(config.event_clock()),
            merger: Merger::default(),
            timeline: None,
            pipeline: None,
            queue: VecDeque::new(),
            ready: VecDeque::new(),
            history: VecDeque::new(),
            history_end: 0,
            seq_shift: 0,
            now_ms: 0,
            anchor: None,
            replacing: None,
            candidate: None,
            max_jump: u64::from(MAX_GAP_S) * u64::from(config.max_clock()),
            events: VecDeque::new(),
            stats: RtpStats::default(),
            scratch: Vec::new(),
            finished: false,
            config,
        })
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> RtpStats {
        self.stats
    }

    /// Next digit event, oldest first.
    pub fn poll_event(&mut self) -> Option<Emitted> {
        self.events.pop_front()
    }

    /// Takes one packet (RTP, or RTCP on the same port) that arrived at host time `now` (ms
    /// on the host's monotonic clock, see [`clock`]); appends the packets to forward now to
    /// `out`. A packet that is refused is dropped and the error says why; nothing is appended
    /// then.
    pub fn push(&mut self, now: u64, bytes: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), RtpError> {
        if self.finished {
            return Err(RtpError::Finished);
        }
        self.stats.received += 1;
        // A refused packet changes nothing but the counters (and sends nothing).
        if let Err(e) = self.dispatch(bytes, out) {
            match e {
                RtpError::UnknownPayloadType { .. } => self.stats.unknown_pt += 1,
                RtpError::ForeignSsrc { .. } => self.stats.foreign_ssrc += 1,
                _ => self.stats.malformed += 1,
            }
            return Err(e);
        }
        self.settle(out);
        if self.timeline.is_some() {
            self.anchor = Some(Anchor {
                host_ms: now,
                media_ms: self.now_ms,
            });
        }
        Ok(())
    }

    /// Host time `now` has come with no packet: media time runs on from the last packet. A
    /// press whose end packet has not come for [`telephone_event::TIMEOUT_MS`] completes, a
    /// press whose other copy did not come is released, and once the stream has been idle
    /// for the look-ahead plus [`clock::IDLE_AFTER_LOOKAHEAD_MS`] the masker is flushed and
    /// every packet it held is appended to `out`. Call it at [`RtpSession::poll_timeout`].
    pub fn handle_timeout(&mut self, now: u64, out: &mut Vec<Vec<u8>>) -> Result<(), RtpError> {
        if self.finished {
            return Err(RtpError::Finished);
        }
        let Some(anchor) = self.anchor else {
            return Ok(());
        };
        if self.holds_audio() && now >= anchor.host_ms.saturating_add(self.idle_ms()) {
            self.end_pipeline(out);
        }
        self.now_ms = self.now_ms.max(anchor.media_at(now));
        if let Some(ext) = self.ext_at(self.now_ms, self.config.event_clock()) {
            if let Some(p) = self.tracker.on_time(ext) {
                self.add_event_press(p);
            }
        }
        self.release(self.now_ms);
        Ok(())
    }

    /// The host time at which [`RtpSession::handle_timeout`] has something to do, if no
    /// packet comes first; `None` when nothing waits (or before the first packet).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let anchor = self.anchor.filter(|_| !self.finished)?;
        let idle = self
            .holds_audio()
            .then(|| anchor.host_ms.saturating_add(self.idle_ms()));
        let press = self.tracker.deadline().map(|ext| {
            // Rounded up: media time is whole ms, the deadline a timestamp.
            let ms = self.ms_at(ext, self.config.event_clock());
            anchor.host_at(ms.saturating_add(1))
        });
        let merge = self.merger.deadline().map(|ms| anchor.host_at(ms));
        [idle, press, merge].into_iter().flatten().min()
    }

    /// Whether audio is held for the look-ahead (a masker running, or packets queued).
    fn holds_audio(&self) -> bool {
        self.pipeline.is_some() || !self.queue.is_empty()
    }

    /// Host time without a packet after which the stream counts as idle, ms.
    fn idle_ms(&self) -> u64 {
        u64::from(self.config.lookahead_ms) + clock::IDLE_AFTER_LOOKAHEAD_MS
    }

    /// Ends the stream: appends every packet still delayed and reports the presses still open.
    pub fn flush(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), RtpError> {
        if self.finished {
            return Err(RtpError::Finished);
        }
        self.finished = true;
        self.end_pipeline(out);
        if let Some(p) = self.tracker.finish() {
            self.add_event_press(p);
        }
        self.release(u64::MAX);
        self.reporter.finish();
        Ok(())
    }

    /// The signed end-of-call record, once the session was flushed (and has a signer).
    #[must_use]
    pub fn end_record(&self) -> Option<&str> {
        self.reporter.end_record()
    }

    fn dispatch(&mut self, bytes: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), RtpError> {
        if Packet::is_rtcp(bytes) {
            self.queue.push_back(Queued::Pass(bytes.to_vec()));
            return Ok(());
        }
        let p = Packet::parse(bytes)?;
        self.admit(p.ssrc())?;
        let pt = p.payload_type();
        if let Some(a) = self.config.audio_type(pt) {
            return self.audio(&p, a, p.payload(), None, out);
        }
        if self.is_event(pt, p.payload()) {
            let e = EventPayload::parse(p.payload())?;
            let ext = self.extend(&p, out);
            self.event(p.ssrc(), ext, &e);
            if self.config.mask_mode == MaskMode::Off || e.digit().is_none() {
                self.pass(&p, p.payload());
            } else if let Some(bytes) = self.replace_event(&p, ext, &e) {
                self.queue.push_back(Queued::Pass(bytes));
                self.stats.events_replaced += 1;
            } else {
                self.drop_packet();
                self.stats.events_dropped += 1;
            }
            return Ok(());
        }
        if self.config.red == Some(pt) {
            return self.red(&p, out);
        }
        Err(RtpError::UnknownPayloadType { pt })
    }

    /// Whether a payload of type `pt` is a telephone-event: the announced type, or an
    /// unannounced dynamic one whose payload has the shape of DTMF events.
    fn is_event(&self, pt: u8, payload: &[u8]) -> bool {
        self.config.telephone_event.is_some_and(|e| e.pt == pt)
            || (self.config.audio_type(pt).is_none()
                && self.config.red != Some(pt)
                && (96..=127).contains(&pt)
                && telephone_event::looks_like_dtmf(payload))
    }

    /// SSRC binding: the first SSRC binds the session; another one is refused until it has
    /// sent [`SSRC_SWITCH_PACKETS`] packets in a row (then [`Self::extend`] follows it).
    fn admit(&mut self, ssrc: u32) -> Result<(), RtpError> {
        let bound = self.timeline.map(|t| t.ssrc);
        if bound.is_none_or(|b| b == ssrc) {
            self.candidate = None;
            return Ok(());
        }
        let run = match self.candidate {
            Some((s, n)) if s == ssrc => n + 1,
            _ => 1,
        };
        if run >= SSRC_SWITCH_PACKETS {
            self.candidate = None;
            return Ok(());
        }
        self.candidate = Some((ssrc, run));
        Err(RtpError::ForeignSsrc { ssrc })
    }

    /// An audio packet (or a RED packet's primary audio block).
    fn audio(
        &mut self,
        p: &Packet<'_>,
        a: AudioType,
        payload: &[u8],
        red: Option<Vec<Redundant>>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), RtpError> {
        let bps = a.codec.bytes_per_sample();
        if payload.is_empty() {
            return Err(RtpError::EmptyAudio);
        }
        if !payload.len().is_multiple_of(bps) {
            return Err(RtpError::Audio(SessionError::PartialSample));
        }
        let ext = self.extend(p, out);
        if let Some(r) = &mut self.replacing {
            r.audio_seen |= r.ssrc == p.ssrc() && ext >= r.start;
        }
        let max_gap = u64::from(MAX_GAP_S * a.rate);
        let restart = match &self.pipeline {
            None => true,
            Some(pl) => {
                pl.audio != a
                    || ext > pl.next.saturating_add(max_gap)
                    || ext.saturating_add(max_gap) < pl.next
            }
        };
        if restart {
            self.end_pipeline(out);
            self.start_pipeline(a, ext);
        }
        let Some(pl) = &mut self.pipeline else {
            // No masker (its configuration was validated, so never expected): dropped, counted.
            self.stats.unprocessed += 1;
            return Ok(());
        };
        if ext < pl.next {
            // Its time was filled as lost (the receiver sees the same hole in the sequence).
            self.stats.late += 1;
            return Ok(());
        }
        let gap = (ext - pl.next) as usize;
        if gap > 0 {
            let silence = a.codec.encode(0);
            self.scratch.clear();
            a.codec
                .write_units(&alloc::vec![silence; gap], &mut self.scratch);
            let input = core::mem::take(&mut self.scratch);
            self.feed(&input);
            self.scratch = input;
            self.queue.push_back(Queued::Gap { units: gap, bps });
        }
        self.feed(payload);
        let units = payload.len() / bps;
        if let Some(pl) = &mut self.pipeline {
            pl.next = ext.saturating_add(units as u64);
        }
        let mut header = p.header().to_vec();
        header[2..4].copy_from_slice(&self.out_seq(p).to_be_bytes());
        self.queue.push_back(Queued::Audio {
            header,
            audio: a,
            ext,
            units,
            red,
        });
        Ok(())
    }

    /// A RED packet: events in any block are taken and removed; the primary decides the rest.
    fn red(&mut self, p: &Packet<'_>, out: &mut Vec<Vec<u8>>) -> Result<(), RtpError> {
        let blocks = red::parse(p.payload())?;
        let masking = self.config.mask_mode != MaskMode::Off;
        let Some((primary, redundant)) = blocks.split_last() else {
            return Ok(());
        };
        // Everything that can be refused is checked before anything changes.
        let audio = self.config.audio_type(primary.pt);
        let primary_event = match audio.is_none() && self.is_event(primary.pt, primary.data) {
            true => Some(EventPayload::parse(primary.data)?),
            false => None,
        };
        match audio {
            Some(_) if primary.data.is_empty() => return Err(RtpError::EmptyAudio),
            Some(a)
                if !primary
                    .data
                    .len()
                    .is_multiple_of(a.codec.bytes_per_sample()) =>
            {
                return Err(RtpError::Audio(SessionError::PartialSample));
            }
            None if primary_event.is_none() => {
                return Err(RtpError::UnknownPayloadType { pt: primary.pt });
            }
            _ => {}
        }
        let ext = self.extend(p, out);
        let mut kept = Vec::new();
        for b in redundant {
            if self.config.audio_type(b.pt).is_none() && self.is_event(b.pt, b.data) {
                let Ok(e) = EventPayload::parse(b.data) else {
                    continue;
                };
                self.event(p.ssrc(), ext.saturating_sub(u64::from(b.ts_offset)), &e);
                if masking && e.digit().is_some() {
                    self.stats.red_events_removed += 1;
                } else {
                    kept.push(Redundant::Kept {
                        pt: b.pt,
                        ts_offset: b.ts_offset,
                        data: b.data.to_vec(),
                    });
                }
            } else if audio.is_some_and(|a| {
                a.pt == b.pt && b.data.len().is_multiple_of(a.codec.bytes_per_sample())
            }) {
                kept.push(Redundant::Audio {
                    pt: b.pt,
                    ts_offset: b.ts_offset,
                    len: b.data.len(),
                });
            }
            // Any other block (another codec, an unknown type, a partial sample) is left out:
            // only inspected audio leaves.
        }
        if let Some(a) = audio {
            return self.audio(p, a, primary.data, Some(kept), out);
        }
        if let Some(e) = primary_event {
            self.event(p.ssrc(), ext, &e);
            if masking && e.digit().is_some() {
                self.stats.red_events_removed += 1;
                self.stats.events_dropped += 1;
                self.drop_packet();
                return Ok(());
            }
        }
        // A primary event that is no digit, or mode `off`: forward without the removed blocks.
        let mut payload = Vec::new();
        let owned: Vec<Block<'_>> = kept
            .iter()
            .filter_map(|r| match r {
                Redundant::Kept {
                    pt,
                    ts_offset,
                    data,
                } => Some(Block {
                    pt: *pt,
                    ts_offset: *ts_offset,
                    data,
                }),
                Redundant::Audio { .. } => None,
            })
            .chain(core::iter::once(*primary))
            .collect();
        red::write(&owned, &mut payload);
        self.pass(p, &payload);
        Ok(())
    }

    /// In modes `tone` and `noise`: the audio packet that takes the place of DTMF event packet
    /// `p` (press at `ext`), covering the samples its duration adds; `None` when it adds none
    /// or the sender sends audio of its own during the press (the event is then dropped).
    fn replace_event(&mut self, p: &Packet<'_>, ext: u64, e: &EventPayload) -> Option<Vec<u8>> {
        if !matches!(self.config.mask_mode, MaskMode::Tone | MaskMode::Noise) {
            return None;
        }
        let a = self
            .pipeline
            .as_ref()
            .map_or(self.config.audio[0], |pl| pl.audio);
        let fresh = !self
            .replacing
            .as_ref()
            .is_some_and(|r| r.ssrc == p.ssrc() && r.start == ext);
        if fresh {
            // Audio already sent past the press's start: the sender talks alongside its events.
            let audio_seen = self.pipeline.as_ref().is_some_and(|pl| pl.next > ext);
            self.replacing = Some(Replacing {
                ssrc: p.ssrc(),
                start: ext,
                covered: 0,
                audio_seen,
                fill: Fill::new(self.config.mask_mode, a.rate),
            });
        }
        let r = self.replacing.as_mut()?;
        let duration = u64::from(e.duration);
        if r.audio_seen || duration <= r.covered {
            return None;
        }
        // At most one second per packet (a sender's duration may jump after losses).
        let n = (duration - r.covered).min(u64::from(a.rate)) as usize;
        let ts = p.timestamp().wrapping_add(r.covered as u32);
        r.covered += n as u64;
        let units: Vec<u16> = (0..n).map(|_| a.codec.encode(r.fill.sample())).collect();
        let mut bytes = Vec::with_capacity(12 + n * a.codec.bytes_per_sample());
        bytes.push(0x80);
        bytes.push(if p.marker() { 0x80 | a.pt } else { a.pt });
        bytes.extend_from_slice(&self.out_seq(p).to_be_bytes());
        bytes.extend_from_slice(&ts.to_be_bytes());
        bytes.extend_from_slice(&p.ssrc().to_be_bytes());
        a.codec.write_units(&units, &mut bytes);
        Some(bytes)
    }

    /// A telephone-event (from the stream or a RED block) at extended timestamp `ext`.
    fn event(&mut self, ssrc: u32, ext: u64, e: &EventPayload) {
        if let Some(press) = self.tracker.on_event(ssrc, ext, e) {
            self.add_event_press(press);
        }
    }

    fn add_event_press(&mut self, p: telephone_event::Press) {
        let clock = self.config.event_clock();
        let ms = |ext: u64| self.ms_at(ext, clock);
        self.merger.add(Press {
            digit: p.digit,
            start_ms: ms(p.start),
            end_ms: ms(p.end),
            detected_ms: ms(p.seen),
            source: Source::Rfc4733,
            leaked_samples: 0,
        });
    }

    /// The extended timestamp at media time `ms` on the current timeline (none before the
    /// first packet).
    fn ext_at(&self, ms: u64, clock: u32) -> Option<u64> {
        self.timeline.map(|t| {
            let ticks = ms
                .saturating_sub(t.base_ms)
                .saturating_mul(u64::from(clock))
                / 1000;
            t.ts_base.saturating_add(ticks)
        })
    }

    /// Media time of extended timestamp `ext` on the current timeline, ms.
    fn ms_at(&self, ext: u64, clock: u32) -> u64 {
        self.timeline.map_or(0, |t| {
            let ticks = ext.saturating_sub(t.ts_base);
            t.base_ms
                .saturating_add(ticks.saturating_mul(1000) / u64::from(clock.max(1)))
        })
    }

    /// The packet's extended timestamp; starts a new timeline on a new SSRC.
    fn extend(&mut self, p: &Packet<'_>, out: &mut Vec<Vec<u8>>) -> u64 {
        let (ssrc, ts) = (p.ssrc(), p.timestamp());
        match &mut self.timeline {
            Some(t) if t.ssrc == ssrc => {
                let delta = i64::from(ts.wrapping_sub(t.last_ts) as i32);
                if delta.unsigned_abs() > self.max_jump {
                    // An RFC 3550 restart: a clean break on the extended timeline (so the
                    // pipeline restarts), and media time goes on from where it was.
                    let ext = t.last_ext.saturating_add(2 * self.max_jump);
                    *t = Timeline {
                        ssrc,
                        last_ts: ts,
                        last_ext: ext,
                        ts_base: ext,
                        base_ms: self.now_ms,
                    };
                    return ext;
                }
                let ext = t.last_ext.saturating_add_signed(delta);
                if ext > t.last_ext {
                    t.last_ext = ext;
                    t.last_ts = ts;
                }
                ext
            }
            _ => {
                // A new source: what the old one left is sent and reported first.
                self.end_pipeline(out);
                if let Some(press) = self.tracker.finish() {
                    self.add_event_press(press);
                }
                self.seq_shift = 0;
                let ext = EXT_ORIGIN + u64::from(ts);
                self.timeline = Some(Timeline {
                    ssrc,
                    last_ts: ts,
                    last_ext: ext,
                    ts_base: ext,
                    base_ms: self.now_ms,
                });
                ext
            }
        }
    }

    fn start_pipeline(&mut self, a: AudioType, ext: u64) {
        // Validated with the configuration, so creation cannot fail.
        let Ok(session) = Session::new(self.config.session(a)) else {
            return;
        };
        let skip = session.delay_samples() * a.codec.bytes_per_sample();
        self.history.clear();
        self.history_end = ext;
        self.pipeline = Some(Pipeline {
            session,
            audio: a,
            ts_origin: ext,
            next: ext,
            skip,
        });
    }

    /// Flushes the masker, sends every packet it held, and reports its last digits.
    fn end_pipeline(&mut self, out: &mut Vec<Vec<u8>>) {
        if let Some(mut pl) = self.pipeline.take() {
            self.scratch.clear();
            if pl.session.flush_bytes(&mut self.scratch).is_ok() {
                let skip = pl.skip.min(self.scratch.len());
                self.ready.extend(&self.scratch[skip..]);
            }
            self.collect_inband(&mut pl);
            self.drain(out);
        }
        // Whatever could not be completed (nothing, unless the masker failed) is dropped and
        // counted: audio the masker did not return is never sent.
        let before = self.queue.len();
        self.queue.retain(|q| !matches!(q, Queued::Audio { .. }));
        self.stats.unprocessed += (before - self.queue.len()) as u64;
        self.queue.retain(|q| matches!(q, Queued::Pass(_)));
        self.drain(out);
        self.ready.clear();
    }

    /// Runs `input` through the pipeline's session into `ready`.
    fn feed(&mut self, input: &[u8]) {
        let Some(mut pl) = self.pipeline.take() else {
            return;
        };
        self.scratch.clear();
        let mut output = core::mem::take(&mut self.scratch);
        if pl.session.process_bytes(input, &mut output).is_ok() {
            let skip = pl.skip.min(output.len());
            pl.skip -= skip;
            self.ready.extend(&output[skip..]);
        }
        self.scratch = output;
        self.collect_inband(&mut pl);
        self.pipeline = Some(pl);
    }

    /// Moves the pipeline's in-band digits to the merger, in media time.
    fn collect_inband(&mut self, pl: &mut Pipeline) {
        let origin = self.ms_at(pl.ts_origin, pl.audio.rate);
        while let Some(e) = pl.session.poll_event() {
            self.merger.add(Press {
                digit: e.event.digit,
                start_ms: origin + e.event.start_ms,
                end_ms: origin + e.event.end_ms,
                detected_ms: origin + e.event.detected_ms,
                source: Source::Inband,
                leaked_samples: e.leaked_samples,
            });
        }
    }

    /// After every packet: send what the masker released, time out presses, report.
    fn settle(&mut self, out: &mut Vec<Vec<u8>>) {
        self.drain(out);
        if let Some(t) = self.timeline {
            let clock = self.config.event_clock();
            self.now_ms = self.now_ms.max(self.ms_at(t.last_ext, clock));
            if let Some(p) = self.tracker.on_time(t.last_ext) {
                self.add_event_press(p);
            }
        }
        self.release(self.now_ms);
    }

    fn release(&mut self, now_ms: u64) {
        let reporter = &mut self.reporter;
        let events = &mut self.events;
        self.merger
            .release(now_ms, |p| events.push_back(reporter.report(p)));
    }

    /// Sends queued packets, in order, as far as the masker has released their audio.
    fn drain(&mut self, out: &mut Vec<Vec<u8>>) {
        while let Some(front) = self.queue.front() {
            let needed = match front {
                Queued::Pass(_) => 0,
                Queued::Gap { units, bps } => units * bps,
                Queued::Audio { audio, units, .. } => units * audio.codec.bytes_per_sample(),
            };
            if self.ready.len() < needed {
                return;
            }
            let Some(q) = self.queue.pop_front() else {
                return;
            };
            match q {
                Queued::Pass(bytes) => {
                    self.stats.forwarded += 1;
                    out.push(bytes);
                }
                Queued::Gap { units, bps } => {
                    self.ready.drain(..units * bps);
                    self.history.clear();
                    self.history_end = self.history_end.saturating_add(units as u64);
                }
                Queued::Audio {
                    header,
                    audio,
                    ext,
                    units,
                    red,
                } => {
                    let bps = audio.codec.bytes_per_sample();
                    let masked: Vec<u8> = self.ready.drain(..units * bps).collect();
                    let mut packet = header;
                    match red {
                        None => packet.extend_from_slice(&masked),
                        Some(redundant) => {
                            self.rebuild_red(ext, audio, &redundant, &masked, &mut packet);
                        }
                    }
                    packet[0] &= !0x20; // padding was not copied
                    self.remember(ext, units, &masked, bps);
                    self.stats.forwarded += 1;
                    out.push(packet);
                }
            }
        }
    }

    /// Appends a RED payload: redundant audio from what was sent, the masked primary last.
    fn rebuild_red(
        &self,
        ext: u64,
        audio: AudioType,
        redundant: &[Redundant],
        masked: &[u8],
        packet: &mut Vec<u8>,
    ) {
        let bps = audio.codec.bytes_per_sample();
        let sent: Vec<Option<Vec<u8>>> = redundant
            .iter()
            .map(|r| match r {
                Redundant::Audio { ts_offset, len, .. } => {
                    self.sent_audio(ext.checked_sub(u64::from(*ts_offset))?, *len, bps)
                }
                Redundant::Kept { .. } => None,
            })
            .collect();
        let mut blocks: Vec<Block<'_>> = Vec::with_capacity(redundant.len() + 1);
        for (r, s) in redundant.iter().zip(&sent) {
            match (r, s) {
                (Redundant::Audio { pt, ts_offset, .. }, Some(data)) => blocks.push(Block {
                    pt: *pt,
                    ts_offset: *ts_offset,
                    data,
                }),
                (
                    Redundant::Kept {
                        pt,
                        ts_offset,
                        data,
                    },
                    _,
                ) => blocks.push(Block {
                    pt: *pt,
                    ts_offset: *ts_offset,
                    data,
                }),
                (Redundant::Audio { .. }, None) => {}
            }
        }
        blocks.push(Block {
            pt: audio.pt,
            ts_offset: 0,
            data: masked,
        });
        red::write(&blocks, packet);
    }

    /// The masked bytes already sent for `len` bytes starting at extended timestamp `start`.
    fn sent_audio(&self, start: u64, len: usize, bps: usize) -> Option<Vec<u8>> {
        if !len.is_multiple_of(bps) {
            return None;
        }
        let have = (self.history.len() / bps) as u64;
        let first = self.history_end.checked_sub(have)?;
        let units = (len / bps) as u64;
        let end = start.checked_add(units)?;
        if start < first || end > self.history_end {
            return None;
        }
        let from = (start - first) as usize * bps;
        Some(self.history.range(from..from + len).copied().collect())
    }

    /// Keeps the masked audio just sent, for the RED blocks that will repeat it.
    fn remember(&mut self, ext: u64, units: usize, masked: &[u8], bps: usize) {
        if ext != self.history_end {
            self.history.clear();
        }
        self.history.extend(masked);
        self.history_end = ext.saturating_add(units as u64);
        let keep = 0x3FFF * bps;
        if self.history.len() > keep {
            let excess = self.history.len() - keep;
            self.history.drain(..excess);
        }
    }

    /// A packet forwarded unchanged but for its sequence number, in order.
    fn pass(&mut self, p: &Packet<'_>, payload: &[u8]) {
        let mut bytes = Vec::with_capacity(p.header().len() + payload.len());
        packet::write(p.header(), self.out_seq(p), payload, &mut bytes);
        self.queue.push_back(Queued::Pass(bytes));
    }

    fn drop_packet(&mut self) {
        self.seq_shift = self.seq_shift.wrapping_add(1);
    }

    fn out_seq(&self, p: &Packet<'_>) -> u16 {
        p.seq().wrapping_sub(self.seq_shift)
    }
}
