//! What a capture run found: per stream and for the whole capture.

use crate::capture::Frame;
use crate::plugin::{CaptureEvent, DigitEvent, RtpStats};
use crate::sdp::PayloadTypes;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Which way a stream flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Caller to agent: masked, events signed.
    CallerToAgent,
    /// Agent to caller (proven by the signalling): watched; digits here are a security signal.
    AgentToCaller,
    /// Not proven either way: masked and signed like caller→agent.
    Unknown,
}

impl Direction {
    /// Short name for reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Direction::CallerToAgent => "caller→agent",
            Direction::AgentToCaller => "agent→caller",
            Direction::Unknown => "unknown",
        }
    }

    /// Whether the stream is masked (everything but a proven agent→caller stream).
    #[must_use]
    pub fn masked(self) -> bool {
        self != Direction::AgentToCaller
    }
}

/// What happened to one direction of one call.
#[derive(Clone, Debug)]
pub struct StreamOutcome {
    /// Sender of its first packet.
    pub src: SocketAddr,
    /// Receiver of its first packet.
    pub dst: SocketAddr,
    /// Distinct (sender, receiver) pairs it was made of.
    pub flows: usize,
    /// Direction.
    pub direction: Direction,
    /// Payload types it was run with.
    pub types: PayloadTypes,
    /// Digit events, in order.
    pub events: Vec<DigitEvent>,
    /// Capture records in order, each with the capture time (ms) at which it came out.
    pub captures: Vec<(u64, CaptureEvent)>,
    /// The plugin's counters.
    pub stats: RtpStats,
    /// Why packets were refused (first few).
    pub refused: Vec<String>,
    /// The signed start-of-call record (masked streams, when signed).
    pub start_record: Option<String>,
    /// The signed end-of-call record (masked streams, when signed).
    pub end_record: Option<String>,
    /// Why its plugin instance trapped, if it did; the stream's packets from then on were
    /// dropped (`trap_dropped`).
    pub trap: Option<String>,
    /// Packets dropped because the stream's plugin instance had trapped.
    pub trap_dropped: u64,
}

impl StreamOutcome {
    /// Its signed lines: the start-of-call record, events and capture records in sequence
    /// order, then the end-of-call record.
    #[must_use]
    pub fn signed_lines(&self) -> String {
        crate::run::signed_lines_with_captures(
            self.start_record.as_deref(),
            &self.events,
            &self.captures,
            self.end_record.as_deref(),
        )
    }

    /// Packets the plugin dropped that may have carried audio.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        crate::plugin::refused(&self.stats) + self.trap_dropped
    }
}

/// What a capture produced.
#[derive(Debug)]
pub struct CaptureOutcome {
    /// One per direction of a call, in order of first packet.
    pub streams: Vec<StreamOutcome>,
    /// The capture as it may leave: SIP, and what the plugin forwarded.
    pub masked: Vec<Frame>,
    /// Frames left out of `masked`, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Of those, frames that may have carried audio (see [`crate::capture::Skip::may_carry_audio`]; and
    /// non-RTP datagrams sent to an address an SDP described).
    pub audio_frames_dropped: u64,
}

impl CaptureOutcome {
    /// Digits of the masked streams (caller→agent and unknown direction), in order.
    #[must_use]
    pub fn caller_digits(&self) -> String {
        self.digits(Direction::masked)
    }

    /// Digits of the agent→caller streams (a security signal when not empty).
    #[must_use]
    pub fn agent_digits(&self) -> String {
        self.digits(|d| !d.masked())
    }

    fn digits(&self, which: impl Fn(Direction) -> bool) -> String {
        self.streams
            .iter()
            .filter(|s| which(s.direction))
            .flat_map(|s| s.events.iter().map(crate::plugin::shown_digit))
            .collect()
    }

    /// Everything dropped, by reason: frames left out of the output and packets the plugin
    /// refused (`rtp-malformed`, `rtp-unknown-pt`, `rtp-foreign-ssrc`, `rtp-late`).
    #[must_use]
    pub fn drop_counts(&self) -> BTreeMap<String, u64> {
        let mut m: BTreeMap<String, u64> = self
            .dropped
            .iter()
            .map(|(r, n)| ((*r).to_string(), *n))
            .collect();
        for s in &self.streams {
            let st = &s.stats;
            for (r, n) in [
                ("rtp-malformed", st.malformed),
                ("rtp-unknown-pt", st.unknown_pt),
                ("rtp-foreign-ssrc", st.foreign_ssrc),
                ("rtp-late", st.late),
                ("rtp-unprocessed", st.unprocessed),
                ("plugin-trapped", s.trap_dropped),
            ] {
                if n > 0 {
                    *m.entry(r.to_string()).or_default() += n;
                }
            }
        }
        m
    }

    /// Frames and packets dropped that may have carried audio: frames that could not be
    /// opened and packets the plugin refused in any stream.
    #[must_use]
    pub fn audio_dropped(&self) -> u64 {
        self.audio_frames_dropped + self.streams.iter().map(StreamOutcome::dropped).sum::<u64>()
    }
}
