//! Errors of the core: one [`Error`] over small families — a configuration refused at
//! creation, input refused (an audio frame or a packet; the session goes on), an event that
//! does not verify, and misuse of the API by the host (a bug in the host, never caused by
//! what a caller sends).

use crate::rtp::RtpError;
use core::fmt;

/// Any error of the core.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A configuration was refused when a session or key was created.
    Config(ConfigError),
    /// An audio frame was refused (nothing of it was processed).
    Frame(FrameError),
    /// A packet was refused and dropped.
    Packet(RtpError),
    /// A signed event did not verify.
    Verify(VerifyError),
    /// The host used a session wrongly.
    Misuse(Misuse),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => e.fmt(f),
            Error::Frame(e) => e.fmt(f),
            Error::Packet(e) => e.fmt(f),
            Error::Verify(e) => e.fmt(f),
            Error::Misuse(e) => e.fmt(f),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Self {
        Error::Frame(e)
    }
}

impl From<RtpError> for Error {
    fn from(e: RtpError) -> Self {
        Error::Packet(e)
    }
}

impl From<VerifyError> for Error {
    fn from(e: VerifyError) -> Self {
        Error::Verify(e)
    }
}

impl From<Misuse> for Error {
    fn from(e: Misuse) -> Self {
        Error::Misuse(e)
    }
}

/// The host used a session wrongly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misuse {
    /// The session was flushed; it takes no more input.
    Finished,
    /// Linear samples were given to a G.711 session (pass the codec's bytes instead).
    NotLinear,
    /// Audio to process in a session used for detection only, or the other way round.
    DetectOnly,
    /// A batch of steps whose lengths do not match its times or its packets.
    BadBatch,
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Misuse::Finished => "the session was flushed and takes no more input",
            Misuse::NotLinear => {
                "this session's codec is G.711: pass encoded bytes, not linear samples"
            }
            Misuse::DetectOnly => {
                "a session either detects only or processes audio: it cannot switch"
            }
            Misuse::BadBatch => {
                "a batch needs one length per time, and its packets as long as the lengths' sum"
            }
        })
    }
}

/// A configuration was refused when a session or key was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A numeric field is outside its allowed range.
    OutOfRange {
        /// Field name.
        field: &'static str,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// An identifier (call id, key id) is empty, too long or has characters outside
    /// `A-Z a-z 0-9 . _ : -`.
    BadIdentifier {
        /// Field name.
        field: &'static str,
    },
    /// A signing key is shorter than 32 bytes (256 bits).
    KeyTooShort {
        /// The length given.
        len: usize,
    },
    /// The codec cannot run at the sample rate (G.711 is 8 kHz only).
    CodecRate,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::OutOfRange { field, allowed } => {
                write!(f, "{field} is out of range (allowed: {allowed})")
            }
            ConfigError::BadIdentifier { field } => {
                write!(
                    f,
                    "{field} must be 1 to 64 characters of A-Z a-z 0-9 . _ : -"
                )
            }
            ConfigError::KeyTooShort { len } => {
                write!(
                    f,
                    "signing key is {len} bytes; at least 32 bytes (256 bits) are required"
                )
            }
            ConfigError::CodecRate => f.write_str("G.711 (PCMU/PCMA) runs at 8000 Hz only"),
        }
    }
}

/// An audio frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A byte frame's length is not a whole number of samples (L16 needs an even length).
    PartialSample,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameError::PartialSample => "frame length is not a whole number of samples",
        })
    }
}

/// Why an event was not accepted by the verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The line is not an event envelope of this format.
    Malformed(&'static str),
    /// No key with this id is configured.
    UnknownKey(alloc::string::String),
    /// The MAC does not match: the event was altered, forged, or signed with another key.
    BadMac,
    /// An event with this call and sequence number was already accepted.
    Replayed {
        /// Sequence number.
        seq: u64,
    },
    /// The sequence number is lower than one already accepted for the call.
    Reordered {
        /// Sequence number.
        seq: u64,
        /// Highest sequence number accepted so far.
        last: u64,
    },
    /// A record of another session (another nonce) under a call id already seen: two
    /// sessions' records spliced into one stream.
    Spliced {
        /// The call id.
        call: alloc::string::String,
    },
    /// A record after the call's end-of-call record.
    AfterEnd {
        /// Sequence number.
        seq: u64,
        /// The end record's sequence number.
        end: u64,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Malformed(why) => write!(f, "malformed event: {why}"),
            VerifyError::UnknownKey(kid) => write!(f, "unknown key id {kid:?}"),
            VerifyError::BadMac => {
                f.write_str("MAC mismatch: event altered, forged or signed with another key")
            }
            VerifyError::Replayed { seq } => {
                write!(f, "replayed event (seq {seq} already accepted)")
            }
            VerifyError::Reordered { seq, last } => {
                write!(f, "out-of-order event (seq {seq} after {last})")
            }
            VerifyError::Spliced { call } => write!(
                f,
                "record of another session under call {call}: events of two sessions spliced together"
            ),
            VerifyError::AfterEnd { seq, end } => {
                write!(f, "record seq {seq} after the end of the call (seq {end})")
            }
        }
    }
}
