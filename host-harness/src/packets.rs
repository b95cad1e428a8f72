//! A captured call through the plugin's RTP sessions: each RTP stream (one direction of one
//! call) gets its own `rtp-session`, the masked packets go back into a copy of the capture.
//!
//! Direction comes from the SIP signalling in the capture: the stream sent to the address
//! the caller offered in its INVITE is **agent→caller**; it is only watched (mask mode `off`,
//! unsigned), and any digit on it is reported as a security signal — someone is injecting
//! tones towards the caller. Every other stream is treated as **caller→agent** and masked.
//! Without signalling, every stream is masked.

use crate::capture::{Capture, Frame};
use crate::keys::KeyRing;
use crate::plugin::{DigitEvent, Instance, MaskMode, RtpConfig, RtpHandle, RtpStats, Twist};
use crate::sdp::{media_of_sip, Media, PayloadTypes};
use anyhow::Result;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Which way a stream flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Caller to agent: masked, events signed.
    CallerToAgent,
    /// Agent to caller: watched; digits here are a security signal.
    AgentToCaller,
}

impl Direction {
    /// Short name for reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Direction::CallerToAgent => "caller→agent",
            Direction::AgentToCaller => "agent→caller",
        }
    }
}

/// How to run a capture.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Call id for the caller→agent events (the other direction gets `.agent` appended).
    pub call_id: String,
    /// Mask mode for caller→agent streams.
    pub mode: MaskMode,
    /// Packet delay, ms.
    pub lookahead_ms: u32,
    /// Twist limits.
    pub twist: Twist,
    /// Payload types to assume for streams the signalling does not describe.
    pub fallback: PayloadTypes,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            call_id: "call".into(),
            mode: MaskMode::Silence,
            lookahead_ms: tonemask_core::DEFAULT_LOOKAHEAD_MS,
            twist: Twist::Att,
            fallback: PayloadTypes::static_only(),
        }
    }
}

/// What happened to one stream.
#[derive(Clone, Debug)]
pub struct StreamOutcome {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Direction.
    pub direction: Direction,
    /// Payload types it was run with.
    pub types: PayloadTypes,
    /// Digit events, in order.
    pub events: Vec<DigitEvent>,
    /// The plugin's counters.
    pub stats: RtpStats,
    /// Why packets were refused (first few).
    pub refused: Vec<String>,
}

/// What a capture produced.
#[derive(Debug)]
pub struct CaptureOutcome {
    /// One per RTP stream, in order of first packet.
    pub streams: Vec<StreamOutcome>,
    /// The capture with every stream's packets replaced by what the plugin forwarded.
    pub masked: Vec<Frame>,
}

impl CaptureOutcome {
    /// Digits of the caller→agent streams, in order.
    #[must_use]
    pub fn caller_digits(&self) -> String {
        self.digits(Direction::CallerToAgent)
    }

    /// Digits of the agent→caller streams (a security signal when not empty).
    #[must_use]
    pub fn agent_digits(&self) -> String {
        self.digits(Direction::AgentToCaller)
    }

    fn digits(&self, d: Direction) -> String {
        self.streams
            .iter()
            .filter(|s| s.direction == d)
            .flat_map(|s| s.events.iter().map(|e| e.digit))
            .collect()
    }
}

struct Stream {
    handle: RtpHandle,
    outcome: StreamOutcome,
    template: usize,
}

/// Whether a UDP payload looks like RTP or RTCP (version 2, at least a fixed header).
fn looks_like_rtp(p: &[u8]) -> bool {
    p.len() >= 12 && p[0] >> 6 == 2 && media_of_sip(p).is_none() && !p.starts_with(b"SIP/")
}

/// Runs every RTP stream of `capture` through its own session in `instance`.
pub fn run_capture(
    instance: &mut Instance,
    capture: &Capture,
    opts: &CaptureOptions,
    keys: Option<&KeyRing>,
) -> Result<CaptureOutcome> {
    let media: Vec<Media> = capture
        .frames
        .iter()
        .filter_map(|f| f.datagram().and_then(|d| media_of_sip(d.payload)))
        .collect();
    let sip_ports: Vec<u16> = capture
        .frames
        .iter()
        .filter_map(|f| f.datagram())
        .filter(|d| media_of_sip(d.payload).is_some() || d.payload.starts_with(b"SIP/2.0"))
        .flat_map(|d| [d.src.port(), d.dst.port()])
        .collect();
    let mut streams: Vec<Stream> = Vec::new();
    let mut index: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    let mut masked = Vec::with_capacity(capture.frames.len());
    for (fi, frame) in capture.frames.iter().enumerate() {
        let Some(dg) = frame.datagram() else {
            masked.push(frame.clone());
            continue;
        };
        let media_port = media.iter().any(|m| m.addr.port() == dg.dst.port());
        let is_media = if media.is_empty() {
            !sip_ports.contains(&dg.dst.port()) && looks_like_rtp(dg.payload)
        } else {
            media_port
        };
        if !is_media {
            masked.push(frame.clone());
            continue;
        }
        let key = (dg.src, dg.dst);
        let si = match index.get(&key) {
            Some(&i) => i,
            None => {
                let s = open_stream(instance, &media, dg.src, dg.dst, opts, keys, fi)?;
                streams.push(s);
                index.insert(key, streams.len() - 1);
                streams.len() - 1
            }
        };
        let s = &mut streams[si];
        s.template = fi;
        match instance.rtp_push(s.handle, dg.payload)? {
            Ok(out) => {
                for p in out {
                    masked.push(frame.with_payload(&dg, &p));
                }
            }
            Err(reason) => {
                if s.outcome.refused.len() < 5 {
                    s.outcome.refused.push(reason);
                }
            }
        }
    }
    for s in &mut streams {
        let out = instance.rtp_flush(s.handle)?;
        let frame = &capture.frames[s.template];
        if let Some(dg) = frame.datagram() {
            for p in out {
                masked.push(frame.with_payload(&dg, &p));
            }
        }
        s.outcome.events = instance.rtp_drain_events(s.handle)?;
        s.outcome.stats = instance.rtp_stats(s.handle)?;
        instance.drop_rtp(s.handle)?;
    }
    Ok(CaptureOutcome {
        streams: streams.into_iter().map(|s| s.outcome).collect(),
        masked,
    })
}

fn open_stream(
    instance: &mut Instance,
    media: &[Media],
    src: SocketAddr,
    dst: SocketAddr,
    opts: &CaptureOptions,
    keys: Option<&KeyRing>,
    frame: usize,
) -> Result<Stream> {
    // The receiver's description says what its payload types mean.
    let receiver = media
        .iter()
        .find(|m| m.addr == dst)
        .or_else(|| media.iter().find(|m| m.addr.port() == dst.port()));
    let direction = match receiver {
        Some(m) if m.caller => Direction::AgentToCaller,
        _ => Direction::CallerToAgent,
    };
    let types = receiver
        .map(|m| m.types.clone())
        .filter(|t| !t.audio.is_empty())
        .unwrap_or_else(|| opts.fallback.clone());
    let (mode, call_id, key) = match direction {
        Direction::CallerToAgent => (
            opts.mode,
            opts.call_id.clone(),
            keys.map(KeyRing::plugin_key),
        ),
        Direction::AgentToCaller => (MaskMode::Off, format!("{}.agent", opts.call_id), None),
    };
    let config = RtpConfig {
        call_id,
        audio: types.audio.clone(),
        telephone_event: types.telephone_event,
        red: types.red,
        lookahead_ms: opts.lookahead_ms,
        mask_mode: mode,
        twist: opts.twist,
        key,
    };
    let handle = instance.rtp_create(&config)?;
    Ok(Stream {
        handle,
        outcome: StreamOutcome {
            src,
            dst,
            direction,
            types,
            events: Vec::new(),
            stats: RtpStats {
                received: 0,
                forwarded: 0,
                events_dropped: 0,
                events_replaced: 0,
                red_events_removed: 0,
                malformed: 0,
                late: 0,
            },
            refused: Vec::new(),
        },
        template: frame,
    })
}
