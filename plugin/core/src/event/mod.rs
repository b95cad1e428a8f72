//! Digit events and their wire payload.
//!
//! The payload is one line of JSON with a fixed field order, written by [`DigitEvent::to_payload`]
//! and [`CallEnd::to_payload`] and read back (strictly, that exact shape only) by
//! [`Record::parse_payload`]:
//!
//! ```text
//! {"v":3,"kid":"k1","call":"c-1","session":"9f0c…32 hex…","seq":1,"prev":"0000…64 hex…","start_of_call":{"digits":"clear"}}
//! {"v":3,"kid":"k1","call":"c-1","session":"9f0c…32 hex…","seq":2,"prev":"5be1…64 hex…","digit":"5","start_ms":1020,"end_ms":1090,"detected_ms":1046,"source":"inband"}
//! {"v":3,"kid":"k1","call":"c-1","session":"9f0c…32 hex…","seq":18,"prev":"a07d…64 hex…","end_of_call":{"digits":16}}
//! ```
//!
//! **The audit chain.** Every record carries in `prev` the SHA-256 of the previous signed line
//! of its call (the envelope, byte for byte, without its newline — see
//! [`crate::sign::line_hash`]); the call's first record, the signed start-of-call record, has
//! 64 zeros. A verifier holding the hash of the last line it accepted can tell a removed,
//! inserted or replaced line from the next one, and the end-of-call record closes the chain.
//!
//! While a card is captured, the presses become capture records ([`CaptureRecord`]) on the
//! same numbering, and the end record counts them too (`"captures":N`, when there were any).
//!
//! `session` is the session's nonce (16 random bytes from the host): records of two sessions
//! never pass for one call. The end-of-call record closes the session's numbering: a
//! verifier that never sees it knows the file was cut.

use crate::digit::Digit;
use alloc::string::String;

/// The payload format's version (3: records carry the audit chain's `prev`).
pub const VERSION: u32 = 3;

/// `prev` of a call's first record (its start-of-call record).
pub const CHAIN_START: &str = "0000000000000000000000000000000000000000000000000000000000000000";
use core::fmt::Write as _;

mod parse;

/// Where a digit was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// As DTMF tones in the audio.
    Inband,
    /// As RFC 4733 telephone-events.
    Rfc4733,
    /// Both as tones and as telephone-events (one press, two copies).
    Both,
}

impl Source {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Inband => "inband",
            Source::Rfc4733 => "rfc4733",
            Source::Both => "both",
        }
    }
}

/// One key press, as reported to the payment side.
#[derive(Clone, PartialEq, Eq)]
pub struct DigitEvent {
    /// Key id of the key that signs it (empty when unsigned).
    pub kid: String,
    /// The call.
    pub call: String,
    /// The session's nonce, 32 lowercase hex digits (empty when unsigned).
    pub session: String,
    /// Per-call sequence number, from 1.
    pub seq: u64,
    /// SHA-256 of the call's previous signed line, 64 hex digits (empty when unsigned).
    pub prev: String,
    /// The digit.
    pub digit: Digit,
    /// Tone start, ms of media time since the session began.
    pub start_ms: u64,
    /// Tone end (exclusive), ms of media time.
    pub end_ms: u64,
    /// When the detector confirmed the digit, ms of media time.
    pub detected_ms: u64,
    /// Where it was seen.
    pub source: Source,
}

impl core::fmt::Debug for DigitEvent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DigitEvent")
            .field("call", &self.call)
            .field("seq", &self.seq)
            .field("digit", &self.digit)
            .field("start_ms", &self.start_ms)
            .field("end_ms", &self.end_ms)
            .finish_non_exhaustive()
    }
}

impl DigitEvent {
    /// The exact payload bytes that are signed and sent.
    #[must_use]
    pub fn to_payload(&self) -> String {
        let mut s = String::with_capacity(160);
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "{},\"digit\":\"{}\",\"start_ms\":{},\"end_ms\":{},\"detected_ms\":{},\"source\":\"{}\"}}",
            head(&self.kid, &self.call, &self.session, self.seq, &self.prev),
            self.digit.to_char(),
            self.start_ms,
            self.end_ms,
            self.detected_ms,
            self.source.as_str()
        );
        s
    }
}

/// A key press whose digit does not leave in clear (see
/// [`crate::settings::DigitVisibility`]): when and how, and the digit sealed to a processor
/// key or not at all.
///
/// ```text
/// {"v":3,…,"seq":3,"prev":"…","press":{"start_ms":1020,"end_ms":1090,"detected_ms":1046,"source":"inband"}}
/// {"v":3,…,"seq":3,"prev":"…","press":{…,"source":"inband","pkid":"p1","enc":"…hex…","sealed":"…hex…"}}
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PressRecord {
    /// Key id.
    pub kid: String,
    /// The call.
    pub call: String,
    /// The session's nonce (32 hex digits; empty when unsigned).
    pub session: String,
    /// Per-call sequence number.
    pub seq: u64,
    /// SHA-256 of the call's previous signed line, 64 hex digits (empty when unsigned).
    pub prev: String,
    /// Tone start, ms of media time.
    pub start_ms: u64,
    /// Tone end (exclusive), ms of media time.
    pub end_ms: u64,
    /// When the press was confirmed, ms of media time.
    pub detected_ms: u64,
    /// Where it was seen.
    pub source: Source,
    /// The digit sealed to a processor key, when the session seals digits.
    pub sealed: Option<SealedDigit>,
}

/// A digit sealed with HPKE (bound to the call and the record's `seq`: see
/// [`PressRecord::binding_id`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedDigit {
    /// The processor key's id.
    pub pkid: String,
    /// The encapsulated key, hex.
    pub enc: String,
    /// The sealed digit, hex.
    pub sealed: String,
}

impl PressRecord {
    /// The capture id a sealed digit is bound to: `seq-N`.
    #[must_use]
    pub fn binding_id(seq: u64) -> String {
        alloc::format!("seq-{seq}")
    }

    /// The exact payload bytes that are signed and sent.
    #[must_use]
    pub fn to_payload(&self) -> String {
        let mut s = head(&self.kid, &self.call, &self.session, self.seq, &self.prev);
        let _ = write!(
            s,
            ",\"press\":{{\"start_ms\":{},\"end_ms\":{},\"detected_ms\":{},\"source\":\"{}\"",
            self.start_ms,
            self.end_ms,
            self.detected_ms,
            self.source.as_str()
        );
        if let Some(d) = &self.sealed {
            let _ = write!(
                s,
                ",\"pkid\":\"{}\",\"enc\":\"{}\",\"sealed\":\"{}\"",
                d.pkid, d.enc, d.sealed
            );
        }
        s.push_str("}}");
        s
    }
}

/// The common start of every payload, up to and including `prev`.
fn head(kid: &str, call: &str, session: &str, seq: u64, prev: &str) -> String {
    alloc::format!(
        "{{\"v\":{VERSION},\"kid\":\"{kid}\",\"call\":\"{call}\",\"session\":\"{session}\",\"seq\":{seq},\"prev\":\"{prev}\""
    )
}

/// The first record of a session: the call's numbering and audit chain begin (`seq` 1,
/// `prev` [`CHAIN_START`]), and how its digit records carry digits.
///
/// ```text
/// {"v":3,…,"seq":1,"prev":"0000…","start_of_call":{"digits":"sealed"}}
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStart {
    /// Key id.
    pub kid: String,
    /// The call.
    pub call: String,
    /// The session's nonce (32 hex digits).
    pub session: String,
    /// Always 1.
    pub seq: u64,
    /// Always [`CHAIN_START`].
    pub prev: String,
    /// How the session's digit records carry the digit: `clear`, `hidden` or `sealed`.
    pub digits: String,
}

impl CallStart {
    /// The exact payload bytes that are signed and sent.
    #[must_use]
    pub fn to_payload(&self) -> String {
        let mut s = head(&self.kid, &self.call, &self.session, self.seq, &self.prev);
        let _ = write!(s, ",\"start_of_call\":{{\"digits\":\"{}\"}}}}", self.digits);
        s
    }
}

/// The last record of a session: how many digit records it sent before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallEnd {
    /// Key id.
    pub kid: String,
    /// The call.
    pub call: String,
    /// The session's nonce (32 hex digits).
    pub session: String,
    /// Its sequence number: one after the last digit's.
    pub seq: u64,
    /// SHA-256 of the call's previous signed line, 64 hex digits.
    pub prev: String,
    /// Digit records the session sent.
    pub digits: u64,
    /// Capture records the session sent (written only when there were any).
    pub captures: u64,
}

impl CallEnd {
    /// The exact payload bytes that are signed and sent.
    #[must_use]
    pub fn to_payload(&self) -> String {
        let mut s = head(&self.kid, &self.call, &self.session, self.seq, &self.prev);
        let _ = write!(s, ",\"end_of_call\":{{\"digits\":{}", self.digits);
        if self.captures > 0 {
            let _ = write!(s, ",\"captures\":{}", self.captures);
        }
        s.push_str("}}");
        s
    }
}

/// One value of a capture record: a word (field, reason, brand, hex) or a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// Letters, digits and `. _ : -` (as ids), at most [`MAX_ITEM_TEXT`] bytes.
    Text(String),
    /// A count.
    Number(u64),
}

/// Longest text value of a capture record (a sealed card in hex is ≈ 200 bytes).
pub const MAX_ITEM_TEXT: usize = 2048;

/// A capture's progress as it leaves the plugin: which capture, and what happened — never a
/// digit of a field, except the last four of an accepted card number.
///
/// ```text
/// {"v":3,…,"seq":4,"prev":"…","capture":{"id":"pay-1","event":"digits","at_ms":7360,"field":"card-number","count":5}}
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureRecord {
    /// Key id.
    pub kid: String,
    /// The call.
    pub call: String,
    /// The session's nonce (32 hex digits; empty when unsigned).
    pub session: String,
    /// Per-call sequence number, shared with digit records.
    pub seq: u64,
    /// SHA-256 of the call's previous signed line, 64 hex digits (empty when unsigned).
    pub prev: String,
    /// The capture's id (an identifier the host chose).
    pub capture: String,
    /// What happened: `event` first, then its details, in a fixed order per event.
    pub items: alloc::vec::Vec<(&'static str, Item)>,
}

impl CaptureRecord {
    /// The text item `name`, if present.
    #[must_use]
    pub fn text(&self, name: &str) -> Option<&str> {
        self.items.iter().find_map(|(k, v)| match v {
            Item::Text(t) if *k == name => Some(t.as_str()),
            _ => None,
        })
    }

    /// The number item `name`, if present.
    #[must_use]
    pub fn number(&self, name: &str) -> Option<u64> {
        self.items.iter().find_map(|(k, v)| match v {
            Item::Number(n) if *k == name => Some(*n),
            _ => None,
        })
    }

    /// The event's name (`started`, `field`, `digits`, …).
    #[must_use]
    pub fn event(&self) -> &str {
        self.text("event").unwrap_or("")
    }

    /// The exact payload bytes that are signed and sent.
    #[must_use]
    pub fn to_payload(&self) -> String {
        let mut s = head(&self.kid, &self.call, &self.session, self.seq, &self.prev);
        let _ = write!(s, ",\"capture\":{{\"id\":\"{}\"", self.capture);
        for (k, v) in &self.items {
            let _ = match v {
                Item::Text(t) => write!(s, ",\"{k}\":\"{t}\""),
                Item::Number(n) => write!(s, ",\"{k}\":{n}"),
            };
        }
        s.push_str("}}");
        s
    }
}

/// The item names a capture record may carry, in the order they are written.
pub const CAPTURE_ITEMS: [&str; 13] = [
    "event",
    "at_ms",
    "field",
    "attempt",
    "count",
    "brand",
    "last4",
    "reason",
    "attempts_left",
    "pkid",
    "enc",
    "sealed",
    "token",
];

/// A signed record: the start of a session, a key press, a capture's progress, or the end
/// of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The start of the session.
    Start(CallStart),
    /// A key press.
    Digit(DigitEvent),
    /// A key press whose digit is sealed or not given.
    Press(PressRecord),
    /// A capture's progress.
    Capture(CaptureRecord),
    /// The end of the session.
    End(CallEnd),
}

impl Record {
    /// Key id, call, session and sequence number.
    #[must_use]
    pub fn ids(&self) -> (&str, &str, &str, u64) {
        match self {
            Record::Start(e) => (&e.kid, &e.call, &e.session, e.seq),
            Record::Digit(e) => (&e.kid, &e.call, &e.session, e.seq),
            Record::Press(e) => (&e.kid, &e.call, &e.session, e.seq),
            Record::Capture(e) => (&e.kid, &e.call, &e.session, e.seq),
            Record::End(e) => (&e.kid, &e.call, &e.session, e.seq),
        }
    }

    /// The hash of the call's previous signed line the record carries (64 hex digits).
    #[must_use]
    pub fn prev(&self) -> &str {
        match self {
            Record::Start(e) => &e.prev,
            Record::Digit(e) => &e.prev,
            Record::Press(e) => &e.prev,
            Record::Capture(e) => &e.prev,
            Record::End(e) => &e.prev,
        }
    }
}

/// Whether `s` is a valid call or key id: 1–64 of `A-Z a-z 0-9 . _ : -`.
#[must_use]
pub fn is_identifier(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}
