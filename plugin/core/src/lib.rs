//! # tonemask-core
//!
//! The sans-IO heart of tonemask: G.711 codecs, a DTMF detector, a zero-leak masker and
//! HMAC-signed digit events. `no_std` + `alloc`; no clock, no I/O, no globals. Media time is
//! the count of samples a [`Session`] has been given.
//!
//! ## The loop
//!
//! A host (the WIT component in `plugin/component`, a test) does, per call:
//!
//! 1. [`Session::new`] with a [`SessionConfig`] — validated once, refused with a
//!    [`ConfigError`] naming the field;
//! 2. for each audio frame: [`Session::process_bytes`] (or `process_samples` for linear
//!    audio) — the output frame has the same length as the input and lags it by the look-ahead;
//! 3. drain [`Session::poll_event`] until `None`: one [`Emitted`] per key press, after its tone
//!    ended, with the signed envelope line when a key is configured;
//! 4. at the end, [`Session::flush_bytes`] returns the audio still in the look-ahead.
//!
//! ## Modules
//!
//! - [`g711`], [`codec`] — companding and the codec-agnostic *unit* a session stores;
//! - [`detector`] — Goertzel receiver and digit state machine (design notes there);
//! - [`masker`] — delay line that replaces each tone from its first sample to its last;
//! - [`event`], [`sign`] — event payload, envelope, HMAC signing and the verifier;
//! - [`report`] — numbers and signs each press, once per call;
//! - [`session`] — ties them together per call (audio frames);
//! - [`rtp`] — the same for RTP packets: packet delay, RFC 4733 events, RED;
//! - [`card`] — card capture: fields typed on the keypad, validated, progress without digits.

#![no_std]
#![forbid(unsafe_code)]
// Hostile bytes never panic the core: no unwrap, expect or panic outside tests.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;

pub mod card;
pub mod codec;
pub mod detector;
pub mod digit;
pub mod error;
pub mod event;
pub mod g711;
pub mod masker;
pub mod report;
pub mod rtp;
pub mod session;
pub mod settings;
pub mod sign;
mod sincos;

pub use codec::Codec;
pub use detector::{DetectorConfig, Tables, Twist};
pub use digit::Digit;
pub use error::{ConfigError, Error, FrameError, Misuse, VerifyError};
pub use event::{CallEnd, CallStart, CaptureRecord, DigitEvent, Item, Record, Source};
pub use masker::MaskMode;
pub use report::{CaptureControl, CaptureEmitted, Emitted};
pub use rtp::{AudioType, EventType, RtpConfig, RtpError, RtpSession, RtpStats};
pub use session::{Output, Session, SessionConfig};
pub use settings::{
    CallSettings, DigitVisibility, Lookahead, DEFAULT_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS,
};
pub use sign::{line_hash, Key, Signer, Unfinished, Verified, Verifier};
