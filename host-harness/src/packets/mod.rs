//! A captured call through the plugin's RTP sessions: each direction of each call gets its own
//! `rtp-session`, the masked packets go back into a copy of the capture.
//!
//! **Nothing leaves that the plugin did not inspect.** The masked capture holds only the SIP
//! messages (minus any that carry DTMF digits, e.g. INFO `application/dtmf-relay`) and the
//! packets the plugin forwarded. Every other frame is dropped and counted by reason
//! ([`CaptureOutcome::dropped`]): records cut by the snap length, fragments whose datagram
//! is incomplete, other link types, headers that do not parse, UDP that is neither SIP nor
//! RTP, non-UDP traffic. Packets the plugin refuses (malformed, unannounced payload type,
//! foreign SSRC, late) are counted in its stats. [`CaptureOutcome::audio_dropped`] sums what
//! may have carried audio, for the exit code.
//!
//! Direction comes from the SIP signalling ([`crate::sip`]): a stream sent to an address that
//! only the **caller's** descriptions name is **agent→caller** — only that is proven, and only
//! that is watched (mask mode `off`, unsigned; any digit on it is a security signal: someone
//! injecting tones towards the caller). A stream to an address the agent described is
//! **caller→agent**; any other stream is of **unknown** direction. Both are masked and their
//! digits signed.
//!
//! The streams of one direction of one call share one session — however many source ports,
//! or agent ports after a re-INVITE, it used — so a call has one event numbering. A stream
//! whose receiver no SDP describes is a session of its own, keyed by its receiver.
//!
//! **Isolation**: each session runs in a plugin instance of its own. A session whose plugin
//! traps (a bug a hostile packet found, a call over its time budget) fails closed: nothing of
//! it leaves from then on — its later packets are dropped and counted
//! ([`StreamOutcome::trap`]) — while every other session carries on untouched.

use crate::capture::{Capture, Datagram, Frame, PcapOut};
use crate::keys::KeyRing;
use crate::plugin::{default_settings, no_stats, CallSettings, MaskMode, Plugin};
use crate::run::CapturePlan;
use crate::sdp::{Media, PayloadTypes};
use crate::sip::{self, Party};
use crate::stream::{Pushed, RtpStream};
use anyhow::Result;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

mod outcome;
#[cfg(test)]
mod tests;
mod window;
pub use outcome::{CaptureOutcome, Direction, StreamOutcome};

/// How to run a capture.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Settings of the caller→agent streams (their key is set per stream from the key ring;
    /// agent→caller streams are watched: mode `off`, unsigned, `.agentN` after the call id).
    pub settings: CallSettings,
    /// Payload types to assume for streams the signalling does not describe.
    pub fallback: PayloadTypes,
    /// A card capture the agent starts on the call's first masked (caller→agent) stream,
    /// `at_ms` after the capture's first frame.
    pub capture: Option<CapturePlan>,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            settings: default_settings("call"),
            fallback: PayloadTypes::static_only(),
            capture: None,
        }
    }
}

struct Stream {
    call: RtpStream,
    outcome: StreamOutcome,
    template: usize,
    flows: Vec<(SocketAddr, SocketAddr)>,
    /// Its session.
    key: SessionKey,
    /// Digit events already passed on to the call's caller→agent session (agent→caller
    /// streams: see [`CaptureRun::note_agent_keys`]).
    noted: usize,
}

impl Stream {
    /// Pushes one packet captured at `now_ms`: the packets to forward, or none (refused, or
    /// the plugin trapped).
    fn push(&mut self, now_ms: u64, payload: &[u8]) -> Vec<Vec<u8>> {
        let out = match self.call.push(now_ms, payload) {
            Pushed::Forward(out) => out,
            Pushed::Refused(reason) => {
                self.refuse(&reason);
                Vec::new()
            }
            Pushed::Dropped => Vec::new(),
        };
        self.collect(now_ms);
        out
    }

    /// A packet was refused for `reason`: the first five reasons are kept.
    fn refuse(&mut self, reason: &str) {
        let refused = &mut self.outcome.refused;
        if refused.len() < 5 && !refused.iter().any(|r| r == reason) {
            refused.push(reason.to_string());
        }
    }

    /// The session's new digit events and capture records (these stamped `now_ms`).
    fn collect(&mut self, now_ms: u64) {
        self.outcome.events.extend(self.call.take_events());
        let captures = self.call.take_captures().into_iter().map(|c| (now_ms, c));
        self.outcome.captures.extend(captures);
    }

    /// Capture time has reached `now_ms`: whatever the session had due before then, as a live
    /// host's timer would have done it — the packets it released, each with its time.
    fn tick(&mut self, now_ms: u64) -> Vec<(u64, Vec<u8>)> {
        let out = self.call.tick(now_ms);
        self.collect(now_ms);
        out
    }

    /// Ends the session: the packets still delayed, its last events, stats, end record.
    fn finish(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        let ended = self.call.finish();
        self.collect(now_ms);
        if let Some(stats) = ended.stats {
            self.outcome.stats = stats;
        }
        self.outcome.start_record = ended.start_record;
        self.outcome.end_record = ended.end_record;
        self.outcome.trap = self.call.trap().map(String::from);
        self.outcome.trap_dropped = self.call.trap_dropped();
        ended.packets
    }
}

/// Which session a datagram belongs to: a direction of a call the signalling describes, or
/// (undescribed) its receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SessionKey {
    Call(String, Direction),
    Receiver(SocketAddr),
}

/// Whether a UDP payload looks like RTP or RTCP (version 2, at least an RTCP header).
fn looks_like_rtp(p: &[u8]) -> bool {
    p.len() >= 8 && p[0] >> 6 == 2
}

/// What the signalling says about packets sent to `dst`: session, direction, payload types.
fn classify(
    media: &[Media],
    dst: SocketAddr,
    fallback: &PayloadTypes,
) -> (SessionKey, Direction, PayloadTypes) {
    let exact: Vec<&Media> = media.iter().filter(|m| m.addr == dst).collect();
    let named_by = |p: Party| exact.iter().any(|m| m.party == p);
    let direction = if exact.is_empty() {
        Direction::Unknown
    } else if named_by(Party::Caller) && !named_by(Party::Agent) && !named_by(Party::Unknown) {
        Direction::AgentToCaller
    } else if named_by(Party::Agent) && !named_by(Party::Caller) && !named_by(Party::Unknown) {
        Direction::CallerToAgent
    } else {
        Direction::Unknown
    };
    // The receiver's own description says what its payload types mean; failing an exact
    // match, every description of that port (a NAT rewrote the address), merged.
    let by_port: Vec<&Media> = media
        .iter()
        .filter(|m| m.addr.port() == dst.port())
        .collect();
    let described = if exact.is_empty() {
        by_port
    } else {
        exact.clone()
    };
    let types = merge_types(described.iter().rev().map(|m| &m.types)).unwrap_or(fallback.clone());
    let key = match exact.last() {
        Some(m) => SessionKey::Call(m.call_id.clone(), direction),
        None => SessionKey::Receiver(dst),
    };
    (key, direction, types)
}

/// The payload types of several descriptions together (the first one's meaning wins).
fn merge_types<'a>(all: impl Iterator<Item = &'a PayloadTypes>) -> Option<PayloadTypes> {
    let mut merged: Option<PayloadTypes> = None;
    for t in all.filter(|t| !t.audio.is_empty()) {
        let m = merged.get_or_insert_with(|| t.clone());
        let used = |m: &PayloadTypes, pt: u8| {
            m.audio.iter().any(|a| a.pt == pt)
                || m.telephone_event.is_some_and(|e| e.pt == pt)
                || m.red == Some(pt)
        };
        for a in &t.audio {
            if !used(m, a.pt) {
                m.audio.push(*a);
            }
        }
        if m.telephone_event.is_none() {
            m.telephone_event = t.telephone_event.filter(|e| !used(m, e.pt));
        }
        if m.red.is_none() {
            m.red = t.red.filter(|&pt| !used(m, pt));
        }
    }
    merged
}

/// Where the frames of the masked capture go, in order.
pub trait FrameSink {
    /// Takes the next frame.
    fn put(&mut self, frame: Frame) -> Result<()>;

    /// Takes the next frame: `frame` with the UDP payload of `dg` (found in it) replaced by
    /// `payload`, captured at `ts` ([`Frame::with_payload`] by default; a writer may build it
    /// in place instead).
    fn put_with_payload(
        &mut self,
        frame: &Frame,
        dg: &Datagram<'_>,
        payload: &[u8],
        ts: Duration,
    ) -> Result<()> {
        let mut f = frame.with_payload(dg, payload);
        f.ts = ts;
        self.put(f)
    }
}

/// A sink that keeps nothing (only the digits are wanted): no frame is even built.
pub struct Discard;

impl FrameSink for Discard {
    fn put(&mut self, _: Frame) -> Result<()> {
        Ok(())
    }

    fn put_with_payload(
        &mut self,
        _: &Frame,
        _: &Datagram<'_>,
        _: &[u8],
        _: Duration,
    ) -> Result<()> {
        Ok(())
    }
}

impl<W: std::io::Write> FrameSink for PcapOut<W> {
    fn put(&mut self, frame: Frame) -> Result<()> {
        self.write(&frame)
    }

    fn put_with_payload(
        &mut self,
        frame: &Frame,
        dg: &Datagram<'_>,
        payload: &[u8],
        ts: Duration,
    ) -> Result<()> {
        self.write_with_payload(frame, dg, payload, ts)
    }
}

impl FrameSink for Vec<Frame> {
    fn put(&mut self, frame: Frame) -> Result<()> {
        self.push(frame);
        Ok(())
    }
}

impl<F: FnMut(Frame) -> Result<()>> FrameSink for F {
    fn put(&mut self, frame: Frame) -> Result<()> {
        self(frame)
    }
}

/// Runs every RTP stream of `capture` through a session of `plugin` (one per direction of a
/// call, each in its own instance); see the module documentation for what is kept, masked,
/// watched and dropped. The masked capture is [`CaptureOutcome::masked`].
pub fn run_capture(
    plugin: &Plugin,
    capture: &Capture,
    opts: &CaptureOptions,
    keys: Option<&KeyRing>,
) -> Result<CaptureOutcome> {
    let mut masked = Vec::with_capacity(capture.frames.len());
    let out = run_capture_into(plugin, capture, opts, keys, &mut masked)?;
    Ok(CaptureOutcome { masked, ..out })
}

/// As [`run_capture`], the masked capture's frames handed to `sink` as they are made (none is
/// kept: [`CaptureOutcome::masked`] is empty) — a capture of any length is masked in the
/// memory of its input. An error of the sink ends the run.
pub fn run_capture_into(
    plugin: &Plugin,
    capture: &Capture,
    opts: &CaptureOptions,
    keys: Option<&KeyRing>,
    sink: &mut dyn FrameSink,
) -> Result<CaptureOutcome> {
    run_windows(plugin, capture, opts, keys, sink, window::FRAMES)
}

/// [`run_capture_into`], `window_frames` frames at a time (1: frame by frame, as with a
/// card capture planned; see [`window`]).
fn run_windows(
    plugin: &Plugin,
    capture: &Capture,
    opts: &CaptureOptions,
    keys: Option<&KeyRing>,
    sink: &mut dyn FrameSink,
    window_frames: usize,
) -> Result<CaptureOutcome> {
    let mut run = CaptureRun {
        plugin,
        capture,
        opts,
        keys,
        media: sip::media_descriptions(
            // The frames that may carry text, noted as the capture was read (an index out
            // of range is skipped: the worst a stale list can do is leave a stream's direction
            // unknown, and those are masked).
            capture
                .text
                .iter()
                .filter_map(|&i| capture.frames.get(i))
                .filter_map(|f| f.datagram().map(|d| d.payload)),
        ),
        streams: Vec::new(),
        index: HashMap::new(),
        plan: opts.capture.as_ref().map(|p| {
            let t0 = capture.frames.first().map_or(0, |f| f.ts.as_millis());
            (
                u64::try_from(t0)
                    .unwrap_or(u64::MAX)
                    .saturating_add(p.at_ms),
                p,
            )
        }),
        last_ms: 0,
        sink,
        routes: HashMap::new(),
        last_flow: None,
        dropped: BTreeMap::new(),
        audio_frames_dropped: 0,
    };
    let frames = capture.frames.iter().enumerate();
    let at = |frame: &Frame| u64::try_from(frame.ts.as_millis()).unwrap_or(u64::MAX);
    if opts.capture.is_some() || window_frames == 1 {
        // Frame by frame: the agent's key presses reach the caller's session in time.
        for (fi, frame) in frames {
            let now_ms = at(frame);
            run.tick(now_ms)?;
            run.frame(fi, frame, now_ms)?;
            run.start_capture(now_ms)?;
            run.note_agent_keys(now_ms);
        }
    } else {
        let mut window = Vec::with_capacity(window_frames);
        let mut start = run.window_start();
        for (fi, frame) in frames {
            let now_ms = at(frame);
            window.push((fi, now_ms, run.route(fi, frame)?));
            run.last_ms = now_ms;
            if window.len() == window_frames {
                run.run_window(&start, &window)?;
                window.clear();
                start = run.window_start();
            }
        }
        run.run_window(&start, &window)?;
    }
    run.finish()
}

/// Where a frame goes ([`CaptureRun::route`]).
#[derive(Clone, Copy)]
enum Routed<'f> {
    /// On, as it is.
    Pass,
    /// Nowhere (counted).
    Dropped,
    /// Through stream `.0`.
    Rtp(usize, Datagram<'f>),
}

/// Where the packets sent to one address go: what the signalling says of them (it is read
/// whole before the first packet, so this is fixed per address) and, once opened, their
/// session's stream.
struct Route {
    key: SessionKey,
    direction: Direction,
    types: PayloadTypes,
    stream: Option<usize>,
}

/// One capture going through the plugin, frame by frame.
struct CaptureRun<'a> {
    plugin: &'a Plugin,
    capture: &'a Capture,
    opts: &'a CaptureOptions,
    keys: Option<&'a KeyRing>,
    /// What the capture's signalling describes.
    media: Vec<Media>,
    streams: Vec<Stream>,
    index: HashMap<SessionKey, usize>,
    /// The card capture still to start, and when (capture time, ms).
    plan: Option<(u64, &'a CapturePlan)>,
    /// The latest frame's time.
    last_ms: u64,
    /// Where the output capture goes.
    sink: &'a mut dyn FrameSink,
    /// Each destination address's route, found at its first packet.
    routes: HashMap<SocketAddr, Route>,
    /// The latest RTP frame's flow (source, destination) and stream: most frames follow
    /// one of the same flow.
    last_flow: Option<((SocketAddr, SocketAddr), usize)>,
    dropped: BTreeMap<&'static str, u64>,
    audio_frames_dropped: u64,
}

impl CaptureRun<'_> {
    /// Capture time has reached `now_ms`: each stream's timer fires as a live host's would,
    /// and what it releases goes out with the time it was released.
    fn tick(&mut self, now_ms: u64) -> Result<()> {
        for s in &mut self.streams {
            let released = s.tick(now_ms);
            if released.is_empty() {
                continue;
            }
            let template = &self.capture.frames[s.template];
            if let Some(dg) = template.datagram() {
                for (t, p) in released {
                    let ts = Duration::from_millis(t);
                    self.sink.put_with_payload(template, &dg, &p, ts)?;
                }
            }
        }
        Ok(())
    }

    /// Starts the planned card capture once its time has come and the first masked stream
    /// exists (so it starts right after that stream's packet of that time).
    fn start_capture(&mut self, now_ms: u64) -> Result<()> {
        self.last_ms = now_ms;
        let Some((at, plan)) = self.plan.filter(|&(at, _)| now_ms >= at) else {
            return Ok(());
        };
        let Some(s) = self
            .streams
            .iter_mut()
            .find(|s| s.outcome.direction.masked())
        else {
            return Ok(());
        };
        s.call.start_capture(&plan.request)?;
        s.collect(now_ms.max(at));
        self.plan = None;
        Ok(())
    }

    /// Key presses found on an agent→caller stream go to the same call's caller→agent
    /// session, which records them while a card capture runs (the fraud signal).
    fn note_agent_keys(&mut self, now_ms: u64) {
        for i in 0..self.streams.len() {
            let s = &mut self.streams[i];
            let (SessionKey::Call(call, Direction::AgentToCaller), new) =
                (&s.key, s.outcome.events.len() - s.noted)
            else {
                continue;
            };
            if new == 0 {
                continue;
            }
            s.noted += new;
            let caller = SessionKey::Call(call.clone(), Direction::CallerToAgent);
            if let Some(&ci) = self.index.get(&caller) {
                let c = &mut self.streams[ci];
                for _ in 0..new {
                    c.call.note_agent_key();
                }
                c.collect(now_ms);
            }
        }
    }

    fn drop_frame(&mut self, reason: &'static str, may_carry_audio: bool) {
        *self.dropped.entry(reason).or_default() += 1;
        self.audio_frames_dropped += u64::from(may_carry_audio);
    }

    /// One frame: SIP passes (but SIP INFO with DTMF), RTP goes through its stream,
    /// everything else is left out and counted.
    fn frame(&mut self, fi: usize, frame: &Frame, now_ms: u64) -> Result<()> {
        match self.route(fi, frame)? {
            Routed::Pass => self.sink.put(frame.clone()),
            Routed::Dropped => Ok(()),
            Routed::Rtp(si, dg) => {
                for p in self.streams[si].push(now_ms, dg.payload) {
                    self.sink.put_with_payload(frame, &dg, &p, frame.ts)?;
                }
                Ok(())
            }
        }
    }

    /// Where frame `fi` goes: on as it is (SIP but SIP INFO with DTMF), into a stream (RTP:
    /// its stream opened at its first packet), or nowhere (counted).
    fn route<'f>(&mut self, fi: usize, frame: &'f Frame) -> Result<Routed<'f>> {
        let dg = match frame.classify() {
            Ok(dg) => dg,
            Err(skip) => {
                self.drop_frame(skip.name(), skip.may_carry_audio());
                return Ok(Routed::Dropped);
            }
        };
        let rtp = looks_like_rtp(dg.payload);
        if let Some(&(flow, si)) = self.last_flow.as_ref().filter(|_| rtp) {
            if flow == (dg.src, dg.dst) {
                // The same flow as the frame before: the same stream (and not SIP: an RTP
                // header's first byte is no UTF-8 start).
                self.streams[si].template = fi;
                return Ok(Routed::Rtp(si, dg));
            }
        }
        if !rtp {
            if let Some(msg) = sip::Message::parse(dg.payload) {
                if msg.carries_dtmf() {
                    self.drop_frame("sip-dtmf", false);
                    return Ok(Routed::Dropped);
                }
                return Ok(Routed::Pass);
            }
        }
        let (media, fallback) = (&self.media, &self.opts.fallback);
        let route = self.routes.entry(dg.dst).or_insert_with(|| {
            let (key, direction, types) = classify(media, dg.dst, fallback);
            Route {
                key,
                direction,
                types,
                stream: None,
            }
        });
        if !rtp {
            match route.key {
                SessionKey::Call(..) => self.drop_frame("not-rtp-to-media-address", true),
                SessionKey::Receiver(_) => self.drop_frame("not-rtp", false),
            }
            return Ok(Routed::Dropped);
        }
        let si = match route.stream {
            Some(i) => i,
            None => {
                let (key, direction, types) =
                    (route.key.clone(), route.direction, route.types.clone());
                let si = match self.index.get(&key) {
                    Some(&i) => i,
                    None => {
                        // Numbered per kind: call, call.2, ... and call.agent1, call.agent2, ...
                        let same = |s: &Stream| s.outcome.direction.masked() == direction.masked();
                        let n = self.streams.iter().filter(|s| same(s)).count() + 1;
                        let (opts, keys) = (self.opts, self.keys);
                        let s = open_stream(
                            self.plugin,
                            (dg.src, dg.dst),
                            key.clone(),
                            direction,
                            types,
                            (opts, keys),
                            fi,
                            n,
                        )?;
                        self.streams.push(s);
                        self.index.insert(key, self.streams.len() - 1);
                        self.streams.len() - 1
                    }
                };
                if let Some(route) = self.routes.get_mut(&dg.dst) {
                    route.stream = Some(si);
                }
                si
            }
        };
        let s = &mut self.streams[si];
        s.template = fi;
        if !s.flows.contains(&(dg.src, dg.dst)) {
            s.flows.push((dg.src, dg.dst));
        }
        self.last_flow = Some(((dg.src, dg.dst), si));
        Ok(Routed::Rtp(si, dg))
    }

    /// The end of the capture: every stream flushed.
    fn finish(mut self) -> Result<CaptureOutcome> {
        for s in &mut self.streams {
            let out = s.finish(self.last_ms);
            let frame = &self.capture.frames[s.template];
            if let Some(dg) = frame.datagram() {
                for p in out {
                    self.sink.put_with_payload(frame, &dg, &p, frame.ts)?;
                }
            }
            s.outcome.flows = s.flows.len();
        }
        Ok(CaptureOutcome {
            streams: self.streams.into_iter().map(|s| s.outcome).collect(),
            masked: Vec::new(),
            dropped: self.dropped,
            audio_frames_dropped: self.audio_frames_dropped,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn open_stream(
    plugin: &Plugin,
    (src, dst): (SocketAddr, SocketAddr),
    key: SessionKey,
    direction: Direction,
    types: PayloadTypes,
    (opts, keys): (&CaptureOptions, Option<&KeyRing>),
    frame: usize,
    n: usize,
) -> Result<Stream> {
    let call = &opts.settings.call_id;
    let settings = if direction.masked() {
        CallSettings {
            call_id: if n == 1 {
                call.clone()
            } else {
                format!("{call}.{n}")
            },
            key: keys.map(KeyRing::plugin_key).transpose()?,
            ..opts.settings.clone()
        }
    } else {
        CallSettings {
            call_id: format!("{call}.agent{n}"),
            mask_mode: MaskMode::Off,
            key: None,
            ..opts.settings.clone()
        }
    };
    let config = types.rtp_config(settings);
    Ok(Stream {
        call: RtpStream::open(plugin, &config)?,
        outcome: StreamOutcome {
            src,
            dst,
            flows: 1,
            direction,
            types,
            events: Vec::new(),
            captures: Vec::new(),
            stats: no_stats(),
            refused: Vec::new(),
            start_record: None,
            end_record: None,
            trap: None,
            trap_dropped: 0,
        },
        template: frame,
        flows: vec![(src, dst)],
        key,
        noted: 0,
    })
}
