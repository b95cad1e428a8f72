//! Why a packet was refused, and what happened to the packets.

use super::packet::PacketError;
use super::red::RedError;
use super::telephone_event::ShortEvent;
use crate::error::FrameError;
use core::fmt;

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
    Audio(FrameError),
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
