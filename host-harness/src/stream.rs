//! One RTP stream hosted in its own plugin instance: the driver loop every host runs —
//! capture replay, the relay, and the coming media node.
//!
//! ```text
//! open ─► push(now, packet) ─► forward what it returns
//!   ▲         │
//!   │    next_timeout() ─► at that time: tick(now) ─► forward what it returns
//!   │         │
//!   └─────────┘  take_events() (and take_captures()) after either; finish() at the end
//!                start_capture(request) when the agent asks for a card
//! ```
//!
//! The instance is the isolation unit: a trap ends this stream only. From then on it fails
//! closed — every packet is dropped and counted (`trap_dropped`), nothing passes unmasked,
//! and [`RtpStream::trap`] says why, for the host's alarm.
//!
//! Embedding it (the plugin built by `cargo xtask plugin`):
//!
//! ```
//! use tonemask_harness::plugin::{default_settings, Limits, Plugin};
//! use tonemask_harness::sdp::PayloadTypes;
//! use tonemask_harness::stream::{Pushed, RtpStream};
//! # fn main() -> anyhow::Result<()> {
//! # let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tonemask-plugin.wasm");
//! let plugin = Plugin::load(&wasm, Limits::default())?; // once per process
//! // Payload types as the SDP offer/answer says (here PCMU only); settings + a key from
//! // keys::KeyRing::plugin_key.
//! let config = PayloadTypes::pcmu().rtp_config(default_settings("call-1"));
//! let mut stream = RtpStream::open(&plugin, &config)?; // one instance per call leg
//! let mut forward = Vec::new();
//! for i in 0u16..10 {
//!     // 20 ms of µ-law silence: V=2, PT 0, sequence number, timestamp, SSRC 1.
//!     let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
//!     packet[2..4].copy_from_slice(&i.to_be_bytes());
//!     packet[4..8].copy_from_slice(&(160 * u32::from(i)).to_be_bytes());
//!     packet.extend_from_slice(&[0xFF; 160]);
//!     let now_ms = 20 * u64::from(i); // the host's monotonic clock
//!     if let Pushed::Forward(out) = stream.push(now_ms, &packet) {
//!         forward.extend(out); // send each on towards the agent
//!     }
//!     for event in stream.take_events() {
//!         let _signed_line = event.signed; // to the payment side
//!     }
//! }
//! // The caller goes quiet: at the stream's deadline the audio held for the look-ahead leaves.
//! while let Some(due) = stream.next_timeout() {
//!     forward.extend(stream.tick(due).into_iter().map(|(_, packet)| packet));
//! }
//! assert_eq!(forward.len(), 10);
//! let ended = stream.finish(); // end of call: counters, signed end record
//! assert_eq!(ended.stats.map(|s| s.forwarded), Some(10));
//! # Ok(()) }
//! ```

use crate::plugin::{
    CaptureEvent, CaptureRequest, DigitEvent, Instance, Plugin, RtpConfig, RtpHandle, RtpOutput,
    RtpStats,
};
use anyhow::Result;

/// What became of a pushed packet.
#[derive(Debug)]
pub enum Pushed {
    /// Accepted: the packets to forward now, in order (maybe none: audio is delayed).
    Forward(Vec<Vec<u8>>),
    /// Refused by the plugin, with its reason; dropped.
    Refused(String),
    /// Dropped because the stream's instance has trapped.
    Dropped,
}

/// What the end of a stream returned.
#[derive(Debug, Default)]
pub struct Ended {
    /// Packets still delayed, in order.
    pub packets: Vec<Vec<u8>>,
    /// The session's counters (`None` when its instance had trapped).
    pub stats: Option<RtpStats>,
    /// The signed start-of-call record (when the session had a key): the call's first line.
    pub start_record: Option<String>,
    /// The signed end-of-call record (when the session had a key).
    pub end_record: Option<String>,
}

/// What [`RtpStream::advance`] released: packets in order, each with its step.
#[derive(Debug, Default)]
pub struct Released {
    /// The packets in `advance`'s flat form, checked, their steps counted from the first
    /// crossing's first.
    bytes: Vec<u8>,
    /// The steps whose packets were refused, with the plugin's reason.
    pub refused: Vec<(usize, String)>,
}

impl Released {
    /// The packets in order: step, the deadline that released it (none: the step's packet
    /// did), bytes.
    pub fn iter(&self) -> impl Iterator<Item = (usize, Option<u64>, &[u8])> + '_ {
        let mut rest = &self.bytes[..];
        std::iter::from_fn(move || {
            let (step, due, packet, after) = released_packet(rest)?;
            rest = after;
            Some((step, due, packet))
        })
    }

    /// The packets alone, in order (one packet keeps the crossing's allocation).
    fn into_packets(mut self) -> Vec<Vec<u8>> {
        match released_packet(&self.bytes) {
            Some((_, _, p, [])) => {
                let len = p.len();
                self.bytes.drain(..RELEASED_HEAD);
                self.bytes.truncate(len);
                vec![self.bytes]
            }
            _ => self.iter().map(|(_, _, p)| p.to_vec()).collect(),
        }
    }

    /// Adds one crossing's packets (`advance`'s flat form), its steps numbered from `first`,
    /// `taken` of them; a form that does not parse is an error, and nothing of it is added.
    fn add(&mut self, first: usize, taken: usize, out: &mut RtpOutput) -> Result<()> {
        let bad = || anyhow::anyhow!("the plugin returned packets that do not parse");
        let r = &mut out.released;
        let mut at = 0;
        while at < r.len() {
            let (step, _, p, _) = released_packet(&r[at..]).ok_or_else(bad)?;
            let size = RELEASED_HEAD + p.len();
            let step = u32::try_from(first + step)
                .ok()
                .filter(|_| step < taken)
                .ok_or_else(bad)?;
            r[at..at + 4].copy_from_slice(&step.to_le_bytes());
            at += size;
        }
        if self.bytes.is_empty() {
            self.bytes = std::mem::take(r);
        } else {
            self.bytes.extend_from_slice(r);
        }
        Ok(())
    }

    /// Forgets the packets of steps `from` on (lost in a trap).
    fn truncate_from(&mut self, from: usize) {
        let kept: usize = self
            .iter()
            .take_while(|&(step, _, _)| step < from)
            .map(|(_, _, p)| RELEASED_HEAD + p.len())
            .sum();
        self.bytes.truncate(kept);
        self.refused.retain(|&(step, _)| step < from);
    }
}

/// A packet in `advance`'s flat output: its step, the deadline that released it (none: its
/// step's packet did), the packet, and the bytes after it.
type ReleasedPacket<'a> = (usize, Option<u64>, &'a [u8], &'a [u8]);

/// The first packet of `advance`'s flat output in `bytes`; `None` when none parses there.
fn released_packet(bytes: &[u8]) -> Option<ReleasedPacket<'_>> {
    let head = bytes.get(..RELEASED_HEAD)?;
    let step = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
    let due = u64::from_le_bytes(head[4..12].try_into().ok()?);
    let len = u32::from_le_bytes(head[13..17].try_into().ok()?) as usize;
    let (packet, after) = bytes.get(RELEASED_HEAD..)?.split_at_checked(len)?;
    Some((step, (head[12] == 1).then_some(due), packet, after))
}

/// Bytes before each packet in `advance`'s output: step (u32), deadline (u64), whether a
/// deadline released it (u8), length (u32), little-endian (`wit/tonemask.wit`).
const RELEASED_HEAD: usize = 17;

/// Bytes before each step's packet in `advance`'s input: host time (u64), packet length
/// (u32), little-endian (`wit/tonemask.wit`).
const STEP_HEAD: usize = 12;

/// Appends one step to `steps` in `advance`'s flat form: host time `now_ms` and `packet`
/// (empty: no packet, only time passes). A packet of 4 GiB or more is refused.
pub fn put_step(steps: &mut Vec<u8>, now_ms: u64, packet: &[u8]) -> Result<()> {
    let len = u32::try_from(packet.len())
        .map_err(|_| anyhow::anyhow!("a packet of {} bytes", packet.len()))?;
    steps.extend_from_slice(&now_ms.to_le_bytes());
    steps.extend_from_slice(&len.to_le_bytes());
    steps.extend_from_slice(packet);
    Ok(())
}

/// The steps in `advance`'s flat form, each with the bytes it takes: (whether it carries a
/// packet, its length in bytes). Stops at bytes that are not a step.
fn step_sizes(steps: &[u8]) -> impl Iterator<Item = (bool, usize)> + '_ {
    let mut rest = steps;
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(rest.get(8..STEP_HEAD)?.try_into().ok()?) as usize;
        let size = STEP_HEAD.checked_add(len).filter(|&n| n <= rest.len())?;
        rest = &rest[size..];
        Some((len > 0, size))
    })
}

/// An RTP session in a plugin instance of its own.
pub struct RtpStream {
    /// `None` once it trapped (or finished).
    instance: Option<Instance>,
    handle: RtpHandle,
    start_record: Option<String>,
    events: Vec<DigitEvent>,
    captures: Vec<CaptureEvent>,
    trap: Option<String>,
    trap_dropped: u64,
    /// The session's next deadline, as the plugin gave it after the last call that can
    /// move it (so waiting for it costs no crossing).
    next: Option<u64>,
    /// A pushed packet's step, in `advance`'s flat form (reused).
    step: Vec<u8>,
    /// Empty datagrams refused here (a step cannot carry one: length 0 is no packet),
    /// counted with the session's received and malformed packets.
    empty: u64,
}

impl RtpStream {
    /// A new instance of `plugin` with a session for `config`; a refused configuration is an
    /// error naming the field.
    pub fn open(plugin: &Plugin, config: &RtpConfig) -> Result<RtpStream> {
        let mut instance = plugin.instantiate()?;
        let handle = instance.create_rtp(config)?;
        let start_record = instance.rtp(handle).start_record()?;
        Ok(RtpStream {
            instance: Some(instance),
            handle,
            start_record,
            events: Vec::new(),
            captures: Vec::new(),
            trap: None,
            trap_dropped: 0,
            next: None,
            step: Vec::new(),
            empty: 0,
        })
    }

    /// The session's signed start-of-call record (when it has a key): deliver it before its
    /// events.
    #[must_use]
    pub fn start_record(&self) -> Option<&str> {
        self.start_record.as_deref()
    }

    /// Pushes one packet that arrived at host time `now_ms` (monotonic ms); deadlines due by
    /// then are handled first (what they release comes first). An empty datagram is no RTP
    /// packet: refused here.
    pub fn push(&mut self, now_ms: u64, packet: &[u8]) -> Pushed {
        if packet.is_empty() {
            self.empty += 1;
            return Pushed::Refused(String::from("an empty datagram is no RTP packet"));
        }
        let was_up = self.instance.is_some();
        let mut out = match self.one_step(now_ms, packet) {
            Ok(out) => out,
            Err(e) => return Pushed::Refused(format!("{e:#}")),
        };
        if !was_up || self.instance.is_none() {
            return Pushed::Dropped;
        }
        match out.refused.pop() {
            Some((_, reason)) => Pushed::Refused(reason),
            None => Pushed::Forward(out.into_packets()),
        }
    }

    /// One step — host time `now_ms` and `packet` (empty: none) — through [`RtpStream::advance`],
    /// in the stream's reused step buffer.
    fn one_step(&mut self, now_ms: u64, packet: &[u8]) -> Result<Released> {
        let mut step = std::mem::take(&mut self.step);
        step.clear();
        let out = put_step(&mut step, now_ms, packet).map(|()| self.advance(&step));
        self.step = step;
        out
    }

    /// Drains the events and capture records a crossing said wait and keeps the deadline it
    /// gave; `false` when draining trapped (the stream has failed) or had already.
    fn drain_waiting(&mut self, events: u32, captures: u32, next: Option<u64>) -> bool {
        self.next = next;
        let h = self.handle;
        let Some(inst) = self.instance.as_mut() else {
            return false;
        };
        let drained = (|| -> Result<()> {
            if events > 0 {
                self.events.extend(inst.rtp(h).drain_events()?);
            }
            if captures > 0 {
                self.captures.extend(inst.rtp(h).drain_captures()?);
            }
            Ok(())
        })();
        match drained {
            Ok(()) => true,
            Err(trap) => {
                self.fail(&trap);
                false
            }
        }
    }

    /// Many steps of the stream in one crossing (a capture's packets read ahead), in
    /// `advance`'s flat form ([`put_step`]): each a host time and a packet or none. Each
    /// step is what [`RtpStream::tick`] then [`RtpStream::push`] at its time do — the same
    /// calls into the session, so the same packets, each marked with its step and, when a
    /// deadline released it, that deadline ([`Released`]). A refused packet is recorded and
    /// the steps after it go on. A trap fails the stream: what the crossing it trapped in
    /// would have released is lost, and its packets count as dropped (as does every packet
    /// once the stream has failed).
    pub fn advance(&mut self, steps: &[u8]) -> Released {
        let mut released = Released::default();
        let (mut step, mut rest) = (0, steps);
        while !rest.is_empty() {
            let h = self.handle;
            let carried = |rest: &[u8]| step_sizes(rest).filter(|&(p, _)| p).count() as u64;
            let Some(inst) = self.instance.as_mut() else {
                self.trap_dropped += carried(rest);
                break;
            };
            let crossing = inst.rtp(h).advance(rest).and_then(|mut out| {
                let total = step_sizes(rest).count();
                let taken = usize::try_from(out.taken)
                    .ok()
                    .filter(|&n| (1..=total).contains(&n))
                    .ok_or_else(|| anyhow::anyhow!("the plugin took no step of a batch"))?;
                let refused = out.refused.take();
                released.add(step, taken, &mut out)?;
                Ok((taken, refused, out))
            });
            match crossing {
                Ok((taken, refused, out)) => {
                    if let Some(e) = refused {
                        released
                            .refused
                            .push((step + taken - 1, crate::plugin::refusal(e)));
                    }
                    if !self.drain_waiting(out.events, out.captures, out.next_timeout) {
                        released.truncate_from(step);
                        self.trap_dropped += carried(rest);
                        break;
                    }
                    let size: usize = step_sizes(rest).take(taken).map(|(_, n)| n).sum();
                    rest = &rest[size..];
                    step += taken;
                }
                Err(trap) => {
                    self.fail(&trap);
                    released.truncate_from(step);
                    self.trap_dropped += carried(rest);
                    break;
                }
            }
        }
        released
    }

    /// When the session next wants [`RtpStream::tick`] (host ms); `None` when nothing waits
    /// (or the instance has trapped).
    #[must_use]
    pub fn next_timeout(&self) -> Option<u64> {
        self.instance.as_ref().and(self.next)
    }

    /// Host time has reached `now_ms`: does everything that fell due until then, each at its
    /// own time; returns the packets released, with the time each was due.
    pub fn tick(&mut self, now_ms: u64) -> Vec<(u64, Vec<u8>)> {
        if self.next_timeout().is_none_or(|t| t > now_ms) {
            return Vec::new();
        }
        // A step without a packet cannot be refused.
        let out = self.one_step(now_ms, &[]).unwrap_or_default();
        out.iter()
            .map(|(_, due, p)| (due.unwrap_or(now_ms), p.to_vec()))
            .collect()
    }

    /// The session's counters so far (`None` once its instance trapped or it finished).
    pub fn stats(&mut self) -> Option<RtpStats> {
        let h = self.handle;
        let inst = self.instance.as_mut()?;
        match inst.rtp(h).stats() {
            Ok(s) => Some(with_empty(s, self.empty)),
            Err(trap) => {
                self.fail(&trap);
                None
            }
        }
    }

    /// Digit events completed since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<DigitEvent> {
        std::mem::take(&mut self.events)
    }

    /// Capture records since the last call, oldest first.
    pub fn take_captures(&mut self) -> Vec<CaptureEvent> {
        std::mem::take(&mut self.captures)
    }

    /// Cancels the running capture (its typing is erased); `false` when none ran or the
    /// instance has trapped.
    pub fn cancel_capture(&mut self) -> bool {
        self.call(|inst, h| inst.rtp(h).cancel_capture())
            .unwrap_or(false)
    }

    /// The call's payload types changed (a re-negotiation): packets are read with `types`
    /// from now on. A refused change (invalid, or other clock rates) is an error naming why,
    /// and the stream goes on with the types it had.
    pub fn change_payload_types(&mut self, types: &crate::sdp::PayloadTypes) -> Result<()> {
        self.call(|inst, h| inst.rtp(h).change_payload_types(types))
            .ok_or_else(|| anyhow::anyhow!("the stream's plugin instance has trapped"))?
            .map_err(|why| anyhow::anyhow!(why))
    }

    /// A key press was seen on the agent's leg of this call: while a capture runs, the
    /// session records it as a security signal (`agent-dtmf`). `false` when none runs or
    /// the instance has trapped.
    pub fn note_agent_key(&mut self) -> bool {
        self.call(|inst, h| inst.rtp(h).note_agent_key())
            .unwrap_or(false)
    }

    /// Runs `op` on the session, then drains the events and records it produced; a trap
    /// fails the stream. `None` when the instance has trapped, now or before.
    fn call<T>(&mut self, op: impl FnOnce(&mut Instance, RtpHandle) -> Result<T>) -> Option<T> {
        let h = self.handle;
        let inst = self.instance.as_mut()?;
        let done = op(inst, h);
        let drained = drain(inst, h, &mut self.events, &mut self.captures);
        match done.and_then(|v| drained.map(|next| (v, next))) {
            Ok((v, next)) => {
                self.next = next;
                Some(v)
            }
            Err(trap) => {
                self.fail(&trap);
                None
            }
        }
    }

    /// Starts a card capture on the session now (its last packet's or tick's time): the
    /// caller's presses from now on leave only as capture records. A refused request is an
    /// error naming the field; a stream whose instance trapped has no session to start it on.
    pub fn start_capture(&mut self, request: &CaptureRequest) -> Result<()> {
        let h = self.handle;
        let Some(inst) = self.instance.as_mut() else {
            anyhow::bail!("the stream's plugin instance has trapped: no capture");
        };
        let started = inst.rtp(h).start_capture(request);
        match drain(inst, h, &mut self.events, &mut self.captures) {
            Ok(next) => {
                self.next = next;
                started
            }
            Err(trap) => {
                self.fail(&trap);
                started.and(Err(trap))
            }
        }
    }

    /// Ends the stream: the packets still delayed, its counters and end record. The instance
    /// is dropped; later pushes are dropped and counted.
    pub fn finish(&mut self) -> Ended {
        let h = self.handle;
        let Some(mut inst) = self.instance.take() else {
            return Ended::default();
        };
        let done = (|| -> Result<Ended> {
            let packets = inst.rtp(h).flush()?;
            drain(&mut inst, h, &mut self.events, &mut self.captures)?;
            self.next = None;
            let stats = Some(with_empty(inst.rtp(h).stats()?, self.empty));
            let end_record = inst.rtp(h).end_record()?;
            inst.rtp(h).close()?;
            Ok(Ended {
                packets,
                stats,
                start_record: self.start_record.clone(),
                end_record,
            })
        })();
        done.unwrap_or_else(|trap| {
            self.fail(&trap);
            Ended::default()
        })
    }

    /// Why the instance trapped, if it did.
    #[must_use]
    pub fn trap(&self) -> Option<&str> {
        self.trap.as_deref()
    }

    /// Packets dropped because the instance had trapped (the one it trapped on included).
    #[must_use]
    pub fn trap_dropped(&self) -> u64 {
        self.trap_dropped
    }

    /// The plugin trapped: the instance is dropped, and with it the audio it held for the
    /// look-ahead — never sent (and with it any capture's typing).
    fn fail(&mut self, trap: &anyhow::Error) {
        self.instance = None;
        self.trap = Some(format!("{trap:#}"));
    }
}

/// The session's counters with `empty` datagrams the host refused added (received, and
/// malformed as the session counts an empty packet).
fn with_empty(s: RtpStats, empty: u64) -> RtpStats {
    RtpStats {
        received: s.received.saturating_add(empty),
        malformed: s.malformed.saturating_add(empty),
        ..s
    }
}

/// Moves the session's new digit events and capture records out of the plugin; returns its
/// next deadline.
fn drain(
    inst: &mut Instance,
    h: RtpHandle,
    events: &mut Vec<DigitEvent>,
    captures: &mut Vec<CaptureEvent>,
) -> Result<Option<u64>> {
    events.extend(inst.rtp(h).drain_events()?);
    captures.extend(inst.rtp(h).drain_captures()?);
    inst.rtp(h).poll_timeout()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{default_settings, Limits};

    #[test]
    fn an_empty_datagram_is_refused_and_counted_as_the_session_counts_a_malformed_one() {
        let wasm =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tonemask-plugin.wasm");
        let plugin = Plugin::load(&wasm, Limits::default()).expect("cargo xtask plugin");
        let config = crate::sdp::PayloadTypes::pcmu().rtp_config(default_settings("empty"));
        let mut stream = RtpStream::open(&plugin, &config).unwrap();
        let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
        packet.extend([0xFF; 160]);
        assert!(matches!(stream.push(20, &packet), Pushed::Forward(_)));
        assert!(matches!(stream.push(40, &[]), Pushed::Refused(_)));
        // A header alone is refused by the session itself: the two count alike.
        assert!(matches!(stream.push(60, &packet[..12]), Pushed::Refused(_)));
        let stats = stream.stats().unwrap();
        assert_eq!((stats.received, stats.malformed), (3, 2));
        let ended = stream.finish();
        assert_eq!(ended.stats.map(|s| (s.received, s.malformed)), Some((3, 2)));
        assert_eq!(ended.packets.len(), 1, "the held packet leaves");
    }
}
