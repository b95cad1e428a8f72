//! The RTP path: one direction of a call as RTP packets in, the packets to forward out.
//!
//! An [`RtpSession`] knows the call's payload types ([`RtpConfig`]): audio (PCMU, PCMA, L16),
//! RFC 4733 telephone-events and RFC 2198 RED. For each packet pushed in it returns the
//! packets to forward, and it reports each key press once:
//!
//! - **audio** runs through a [`Session`](crate::Session) (detector + masker) in its own codec. The look-ahead
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
//!
//! Time is an input (sans-IO): every packet comes with the host's time, and
//! [`RtpSession::handle_timeout`] / [`RtpSession::poll_timeout`] let time pass without one
//! ([`clock`]).
//!
//! ## Where things live
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | the session: dispatch per payload type, timers, presses to events |
//! | `red_packet.rs` | a RED packet opened: event blocks taken, audio kept for refill |
//! | `config.rs`, `error.rs` | payload types and settings; refusals and counters |
//! | `timeline.rs` | SSRC binding, extended timestamps, media time |
//! | `clock.rs` | host time ↔ media time between packets |
//! | `audio.rs` | audio packets: lost ones as silence, restarts, in-band presses |
//! | `pipeline.rs` | audio through detector + masker, on the timeline |
//! | `stall.rs` | a press cut by an idle flush, joined with the rest of it |
//! | `outbox.rs` | packet delay, order, sequence-number shift |
//! | `refill.rs` | RED redundant audio rebuilt from what was sent |
//! | `replace.rs` | events replaced by tone / noise audio |
//! | `telephone_event.rs`, `merge.rs` | RFC 4733 presses; one report per press |
//! | `packet.rs`, `red.rs` | every RTP header and RED payload read and written |
//! | `datagrams.rs` | the packets handed out, back to back in one reusable buffer |
//! | `batch.rs` | many steps (time, packet) in one call: deadlines caught up, then the packet |

mod audio;
mod batch;
pub mod clock;
mod config;
mod datagrams;
mod error;
mod merge;
mod outbox;
pub mod packet;
mod pipeline;
pub mod red;
mod red_packet;
mod refill;
mod replace;
mod stall;
pub mod telephone_event;
mod timeline;

pub use batch::{steps, Batch, Taken, PACKET_HEAD, STEP_HEAD};
pub use config::{AudioType, EventType, RtpConfig};
pub use datagrams::Datagrams;
pub use error::{RtpError, RtpStats};
pub use timeline::{MAX_GAP_S, SSRC_SWITCH_PACKETS};

use crate::detector::Tables;
use crate::error::{ConfigError, Error, Misuse};
use crate::event::Source;
use crate::masker::MaskMode;
use crate::report::{CaptureControl, CaptureEmitted, Emitted, Press, Reporter};
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use audio::End;
use clock::Anchor;
use merge::Merger;
use outbox::Outbox;
use packet::Packet;
use pipeline::Pipeline;
use replace::Replacer;
use stall::Stall;
use telephone_event::{EventPayload, Tracker};
use timeline::Timeline;

/// One direction of a call, as RTP packets.
pub struct RtpSession {
    config: RtpConfig,
    /// Detector tables, shared with the host's other sessions (and every pipeline restart).
    tables: Arc<Tables>,
    reporter: Reporter,
    tracker: Tracker,
    merger: Merger,
    timeline: Timeline,
    pipeline: Option<Pipeline>,
    outbox: Outbox,
    /// Media time reached, ms.
    now_ms: u64,
    /// Host time and media time at the last packet that carried media.
    phase: Phase,
    replacer: Replacer,
    /// A press cut by an idle flush, waiting for the rest of it.
    stall: Stall,
    events: VecDeque<Emitted>,
    stats: RtpStats,
    scratch: Vec<u8>,
}

/// What an RTP session waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The first packet that carries media (until then, time does not run).
    FirstPacket,
    /// More packets, or time passing; host and media time at the last packet.
    Streaming(Anchor),
    /// Nothing: it was flushed.
    Flushed,
}

impl RtpSession {
    /// Creates a session, refusing an invalid configuration.
    pub fn new(config: RtpConfig) -> Result<RtpSession, ConfigError> {
        RtpSession::with_tables(config, Arc::new(Tables::new()))
    }

    /// As [`RtpSession::new`], with the detector's coefficient tables shared with other
    /// sessions (a host with many sessions keeps one [`Tables`]).
    pub fn with_tables(config: RtpConfig, tables: Arc<Tables>) -> Result<RtpSession, ConfigError> {
        config.validate()?;
        let mut outbox = Outbox::default();
        outbox.set_red(config.red.is_some());
        Ok(RtpSession {
            tables,
            reporter: Reporter::new(
                config.settings.call_id.clone(),
                config.settings.signer.clone(),
                config.settings.digits.clone(),
            ),
            tracker: Tracker::new(config.event_clock()),
            merger: Merger::default(),
            timeline: Timeline::new(config.max_clock()),
            pipeline: None,
            outbox,
            now_ms: 0,
            phase: Phase::FirstPacket,
            replacer: Replacer::default(),
            stall: Stall::default(),
            events: VecDeque::new(),
            stats: RtpStats::default(),
            scratch: Vec::new(),
            config,
        })
    }

    /// The call's payload types changed (a re-negotiation: a re-INVITE moving to another
    /// codec, renumbering its dynamic types): packets from now on are read with `audio`,
    /// `telephone_event` and `red`, and the settings, the detector's state, the delayed audio
    /// and the audit chain go on. A packet of a type no longer named is then refused like
    /// any unknown type. Refused, and nothing changes, when the types are invalid or would
    /// change the clock rates the session's timeline runs on.
    pub fn change_payload_types(
        &mut self,
        audio: Vec<AudioType>,
        telephone_event: Option<EventType>,
        red: Option<u8>,
    ) -> Result<(), ConfigError> {
        let clocks = (self.config.event_clock(), self.config.max_clock());
        let old = (
            core::mem::replace(&mut self.config.audio, audio),
            core::mem::replace(&mut self.config.telephone_event, telephone_event),
            core::mem::replace(&mut self.config.red, red),
        );
        let checked = self.config.validate().and_then(|()| {
            if (self.config.event_clock(), self.config.max_clock()) != clocks {
                return Err(ConfigError::OutOfRange {
                    field: "clock rates of the new payload types",
                    allowed: "those the call started with",
                });
            }
            Ok(())
        });
        if checked.is_err() {
            (
                self.config.audio,
                self.config.telephone_event,
                self.config.red,
            ) = old;
        }
        self.outbox.set_red(self.config.red.is_some());
        checked
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> RtpStats {
        self.stats
    }

    /// Next digit event, oldest first.
    pub fn poll_event(&mut self) -> Option<Emitted> {
        crate::report::next_event(&mut self.events)
    }

    /// How many digit events and capture records wait to be polled (a host that is told
    /// this polls only when there is something).
    #[must_use]
    pub fn waiting(&self) -> (usize, usize) {
        (self.events.len(), self.reporter.records_waiting())
    }

    /// Card capture at the session's media time: start one, cancel it, ask a field again.
    /// While one runs, presses leave only as its progress ([`RtpSession::poll_capture`]);
    /// its field time-outs run on media time, which runs on with the host's time between
    /// packets ([`RtpSession::handle_timeout`]).
    pub fn capture(&mut self) -> CaptureControl<'_> {
        self.reporter.capture_at(self.now_ms)
    }

    /// Next capture record, oldest first.
    pub fn poll_capture(&mut self) -> Option<CaptureEmitted> {
        self.reporter.poll_capture()
    }

    /// Takes one packet (RTP, or RTCP on the same port) that arrived at host time `now` (ms
    /// on the host's monotonic clock, see [`clock`]); appends the packets to forward now to
    /// `out`. A packet that is refused is dropped and the error says why; nothing is appended
    /// then.
    pub fn push(&mut self, now: u64, bytes: &[u8], out: &mut Datagrams) -> Result<(), Error> {
        if self.phase == Phase::Flushed {
            return Err(Misuse::Finished.into());
        }
        self.stats.received += 1;
        // A refused packet changes nothing but the counters (and sends nothing).
        if let Err(e) = self.dispatch(bytes, out) {
            match e {
                RtpError::UnknownPayloadType { .. } => self.stats.unknown_pt += 1,
                RtpError::ForeignSsrc { .. } => self.stats.foreign_ssrc += 1,
                _ => self.stats.malformed += 1,
            }
            return Err(e.into());
        }
        self.settle(out);
        if self.timeline.last_ext().is_some() {
            self.phase = Phase::Streaming(Anchor {
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
    pub fn handle_timeout(&mut self, now: u64, out: &mut Datagrams) -> Result<(), Error> {
        if self.phase == Phase::Flushed {
            return Err(Misuse::Finished.into());
        }
        let Phase::Streaming(anchor) = self.phase else {
            return Ok(());
        };
        if self.holds_audio() && now >= anchor.host_ms.saturating_add(self.idle_ms()) {
            self.end_pipeline(out, End::Idle);
        }
        self.now_ms = self.now_ms.max(anchor.media_at(now));
        let merger = &mut self.merger;
        self.stall.expire(self.now_ms, |p| merger.add(p));
        if let Some(ext) = self.timeline.ext_at(self.now_ms, self.config.event_clock()) {
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
        let Phase::Streaming(anchor) = self.phase else {
            return None;
        };
        let idle = self
            .holds_audio()
            .then(|| anchor.host_ms.saturating_add(self.idle_ms()));
        let press = self.tracker.deadline().map(|ext| {
            // Rounded up: media time is whole ms, the deadline a timestamp.
            let ms = self.timeline.ms_at(ext, self.config.event_clock());
            anchor.host_at(ms.saturating_add(1))
        });
        let merge = self.merger.deadline().map(|ms| anchor.host_at(ms));
        let stall = self.stall.deadline().map(|ms| anchor.host_at(ms));
        let capture = self
            .reporter
            .capture_deadline()
            .map(|ms| anchor.host_at(ms));
        // Pairwise: an array of five options iterated was built in memory at every step.
        let earliest = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, None) => x,
            (None, y) => y,
        };
        earliest(
            earliest(idle, press),
            earliest(merge, earliest(stall, capture)),
        )
    }

    /// Whether audio is held for the look-ahead (a masker running, or packets queued).
    fn holds_audio(&self) -> bool {
        self.pipeline.is_some() || self.outbox.holds()
    }

    /// Host time without a packet after which the stream counts as idle, ms.
    fn idle_ms(&self) -> u64 {
        self.config.settings.lookahead.idle_ms()
    }

    /// Ends the stream: appends every packet still delayed and reports the presses still open.
    pub fn flush(&mut self, out: &mut Datagrams) -> Result<(), Error> {
        if self.phase == Phase::Flushed {
            return Err(Misuse::Finished.into());
        }
        self.phase = Phase::Flushed;
        self.end_pipeline(out, End::Final);
        if let Some(p) = self.tracker.finish() {
            self.add_event_press(p);
        }
        self.release(u64::MAX);
        self.reporter.finish();
        Ok(())
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

    fn dispatch(&mut self, bytes: &[u8], out: &mut Datagrams) -> Result<(), RtpError> {
        if Packet::is_rtcp(bytes) {
            self.outbox.pass_copy(bytes);
            return Ok(());
        }
        let p = Packet::parse(bytes)?;
        self.timeline.admit(p.ssrc())?;
        let pt = p.payload_type();
        if let Some(a) = self.config.audio_type(pt) {
            return self.audio(&p, a, p.payload(), None, out);
        }
        if self.is_event(pt, p.payload()) {
            let e = EventPayload::parse(p.payload())?;
            let ext = self.extend(&p, out);
            self.event(p.ssrc(), ext, &e);
            if self.config.settings.mask_mode == MaskMode::Off || e.digit().is_none() {
                self.outbox.pass(&p, p.payload());
            } else if let Some(bytes) = self.replace_event(&p, ext, &e) {
                self.outbox.pass_bytes(bytes);
                self.stats.events_replaced += 1;
            } else {
                self.outbox.drop_packet();
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

    /// In modes `tone` and `noise`: the audio packet that takes the place of DTMF event packet
    /// `p` (press at `ext`), covering the samples its duration adds; `None` when it adds none
    /// or the sender sends audio of its own during the press (the event is then dropped).
    fn replace_event(&mut self, p: &Packet<'_>, ext: u64, e: &EventPayload) -> Option<Vec<u8>> {
        let a = self
            .pipeline
            .as_ref()
            .map_or(self.config.audio[0], |pl| pl.audio);
        let audio_until = self.pipeline.as_ref().map(|pl| pl.next);
        let seq = self.outbox.out_seq(p);
        let mut bytes = self.outbox.buffer();
        self.replacer
            .replace(
                self.config.settings.mask_mode,
                a,
                audio_until,
                p,
                seq,
                ext,
                e,
                &mut bytes,
            )
            .then_some(bytes)
    }

    /// A telephone-event (from the stream or a RED block) at extended timestamp `ext`.
    fn event(&mut self, ssrc: u32, ext: u64, e: &EventPayload) {
        if let Some(press) = self.tracker.on_event(ssrc, ext, e) {
            self.add_event_press(press);
        }
    }

    fn add_event_press(&mut self, p: telephone_event::Press) {
        let clock = self.config.event_clock();
        let ms = |ext: u64| self.timeline.ms_at(ext, clock);
        self.merger.add(Press {
            digit: p.digit,
            start_ms: ms(p.start),
            end_ms: ms(p.end),
            detected_ms: ms(p.seen),
            source: Source::Rfc4733,
            leaked_samples: 0,
        });
    }

    /// The packet's extended timestamp; a new source first ends what the old one left.
    fn extend(&mut self, p: &Packet<'_>, out: &mut Datagrams) -> u64 {
        if let Some(ext) = self.timeline.extend(p.ssrc(), p.timestamp(), self.now_ms) {
            return ext;
        }
        // A new source: what the old one left is sent and reported first.
        self.end_pipeline(out, End::Final);
        if let Some(press) = self.tracker.finish() {
            self.add_event_press(press);
        }
        self.outbox.new_source();
        self.timeline.start(p.ssrc(), p.timestamp(), self.now_ms)
    }

    /// After every packet: send what the masker released, time out presses, report.
    fn settle(&mut self, out: &mut Datagrams) {
        self.outbox.drain(out, &mut self.stats);
        if let Some(last) = self.timeline.last_ext() {
            let clock = self.config.event_clock();
            self.now_ms = self.now_ms.max(self.timeline.ms_at(last, clock));
            if let Some(p) = self.tracker.on_time(last) {
                self.add_event_press(p);
            }
        }
        self.release(self.now_ms);
    }

    fn release(&mut self, now_ms: u64) {
        let reporter = &mut self.reporter;
        let events = &mut self.events;
        self.merger
            .release(now_ms, |p| events.extend(reporter.report(p)));
        // The flush releases at the end of time; a capture still running is cancelled there.
        if now_ms != u64::MAX {
            self.reporter.tick(now_ms);
        }
    }
}
