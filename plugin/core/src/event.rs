//! Digit events and their wire payload.
//!
//! The payload is one line of JSON with a fixed field order, written by [`DigitEvent::to_payload`]
//! and [`CallEnd::to_payload`] and read back (strictly, that exact shape only) by
//! [`Record::parse_payload`]:
//!
//! ```text
//! {"v":2,"kid":"k1","call":"c-1","session":"9f0c…32 hex…","seq":1,"digit":"5","start_ms":1020,"end_ms":1090,"detected_ms":1046,"source":"inband"}
//! {"v":2,"kid":"k1","call":"c-1","session":"9f0c…32 hex…","seq":17,"end_of_call":{"digits":16}}
//! ```
//!
//! While a card is captured, the presses become capture records ([`CaptureRecord`]) on the
//! same numbering, and the end record counts them too (`"captures":N`, when there were any).
//!
//! `session` is the session's nonce (16 random bytes from the host): records of two sessions
//! never pass for one call. The end-of-call record closes the session's numbering: a
//! verifier that never sees it knows the file was cut.

use crate::digit::Digit;
use crate::error::VerifyError;
use alloc::string::String;
use core::fmt::Write as _;

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
            head(&self.kid, &self.call, &self.session, self.seq),
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
/// {"v":2,…,"seq":3,"press":{"start_ms":1020,"end_ms":1090,"detected_ms":1046,"source":"inband"}}
/// {"v":2,…,"seq":3,"press":{…,"source":"inband","pkid":"p1","enc":"…hex…","sealed":"…hex…"}}
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
/// [`PressRecord::binding`]).
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
        let mut s = head(&self.kid, &self.call, &self.session, self.seq);
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

/// The common start of every payload, up to and including `seq`.
fn head(kid: &str, call: &str, session: &str, seq: u64) -> String {
    alloc::format!(
        "{{\"v\":2,\"kid\":\"{kid}\",\"call\":\"{call}\",\"session\":\"{session}\",\"seq\":{seq}"
    )
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
    /// Digit records the session sent.
    pub digits: u64,
    /// Capture records the session sent (written only when there were any).
    pub captures: u64,
}

impl CallEnd {
    /// The exact payload bytes that are signed and sent.
    #[must_use]
    pub fn to_payload(&self) -> String {
        let mut s = head(&self.kid, &self.call, &self.session, self.seq);
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
/// {"v":2,…,"seq":4,"capture":{"id":"pay-1","event":"digits","at_ms":7360,"field":"card-number","count":5}}
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
        let mut s = head(&self.kid, &self.call, &self.session, self.seq);
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

/// A signed record: a key press, a capture's progress, or the end of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
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
            Record::Digit(e) => (&e.kid, &e.call, &e.session, e.seq),
            Record::Press(e) => (&e.kid, &e.call, &e.session, e.seq),
            Record::Capture(e) => (&e.kid, &e.call, &e.session, e.seq),
            Record::End(e) => (&e.kid, &e.call, &e.session, e.seq),
        }
    }

    /// Parses a payload written by [`DigitEvent::to_payload`], [`CaptureRecord::to_payload`]
    /// or [`CallEnd::to_payload`]; any other shape (format version 1 included) is refused.
    pub fn parse_payload(p: &str) -> Result<Record, VerifyError> {
        let mut r = Reader(p);
        r.lit("{\"v\":2,\"kid\":")?;
        let kid = r.ident()?;
        r.lit(",\"call\":")?;
        let call = r.ident()?;
        r.lit(",\"session\":")?;
        let session = r.session()?;
        r.lit(",\"seq\":")?;
        let seq = r.number()?;
        if r.0.starts_with(",\"end_of_call\":") {
            r.lit(",\"end_of_call\":{\"digits\":")?;
            let digits = r.number()?;
            let captures = if r.0.starts_with(",\"captures\":") {
                r.lit(",\"captures\":")?;
                r.number()?
            } else {
                0
            };
            r.lit("}}")?;
            r.end()?;
            return Ok(Record::End(CallEnd {
                kid,
                call,
                session,
                seq,
                digits,
                captures,
            }));
        }
        if r.0.starts_with(",\"capture\":") {
            r.lit(",\"capture\":{\"id\":")?;
            let capture = r.ident()?;
            let items = r.items()?;
            r.end()?;
            return Ok(Record::Capture(CaptureRecord {
                kid,
                call,
                session,
                seq,
                capture,
                items,
            }));
        }
        if r.0.starts_with(",\"press\":") {
            r.lit(",\"press\":{\"start_ms\":")?;
            let (start_ms, end_ms, detected_ms, source) = r.timing()?;
            let sealed = if r.0.starts_with(",\"pkid\":") {
                r.lit(",\"pkid\":")?;
                let pkid = r.ident()?;
                r.lit(",\"enc\":")?;
                let enc = r.hex()?;
                r.lit(",\"sealed\":")?;
                let sealed = r.hex()?;
                Some(SealedDigit { pkid, enc, sealed })
            } else {
                None
            };
            r.lit("}}")?;
            r.end()?;
            return Ok(Record::Press(PressRecord {
                kid,
                call,
                session,
                seq,
                start_ms,
                end_ms,
                detected_ms,
                source,
                sealed,
            }));
        }
        r.lit(",\"digit\":\"")?;
        let digit =
            r.0.chars()
                .next()
                .and_then(Digit::from_char)
                .ok_or(VerifyError::Malformed("digit"))?;
        r.0 = &r.0[1..];
        r.lit("\",\"start_ms\":")?;
        let (start_ms, end_ms, detected_ms, source) = r.timing()?;
        r.lit("}")?;
        r.end()?;
        Ok(Record::Digit(DigitEvent {
            kid,
            call,
            session,
            seq,
            digit,
            start_ms,
            end_ms,
            detected_ms,
            source,
        }))
    }
}

/// Whether `s` is a valid call or key id: 1–64 of `A-Z a-z 0-9 . _ : -`.
#[must_use]
pub fn is_identifier(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

struct Reader<'a>(&'a str);

impl Reader<'_> {
    fn lit(&mut self, l: &'static str) -> Result<(), VerifyError> {
        self.0 = self
            .0
            .strip_prefix(l)
            .ok_or(VerifyError::Malformed("unexpected payload layout"))?;
        Ok(())
    }

    /// A string (no escapes: no value of the format has a quote or a backslash), if its
    /// characters pass `ok`.
    fn quoted(
        &mut self,
        ok: impl Fn(&str) -> bool,
        what: &'static str,
    ) -> Result<String, VerifyError> {
        let rest = self
            .0
            .strip_prefix('"')
            .ok_or(VerifyError::Malformed("expected a string"))?;
        let end = rest
            .find('"')
            .ok_or(VerifyError::Malformed("unterminated string"))?;
        let v = &rest[..end];
        if !ok(v) {
            return Err(VerifyError::Malformed(what));
        }
        self.0 = &rest[end + 1..];
        Ok(String::from(v))
    }

    fn ident(&mut self) -> Result<String, VerifyError> {
        self.quoted(|v| v.is_empty() || is_identifier(v), "bad identifier")
    }

    /// A capture record's items after its id, up to and including the closing `}}`: known
    /// names only, in their order, each at most once; text of identifier characters.
    fn items(&mut self) -> Result<alloc::vec::Vec<(&'static str, Item)>, VerifyError> {
        let mut items = alloc::vec::Vec::new();
        let mut next = 0;
        while let Some(rest) = self.0.strip_prefix(",\"") {
            let end = rest
                .find('"')
                .ok_or(VerifyError::Malformed("unterminated item name"))?;
            let at = CAPTURE_ITEMS[next..]
                .iter()
                .position(|k| *k == &rest[..end])
                .ok_or(VerifyError::Malformed("unknown or repeated capture item"))?;
            let name = CAPTURE_ITEMS[next + at];
            next += at + 1;
            self.0 = rest[end + 1..]
                .strip_prefix(':')
                .ok_or(VerifyError::Malformed("expected ':'"))?;
            let value = if self.0.starts_with('"') {
                let word = |t: &str| {
                    !t.is_empty()
                        && t.len() <= MAX_ITEM_TEXT
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
                };
                Item::Text(self.quoted(word, "bad capture item text")?)
            } else {
                Item::Number(self.number()?)
            };
            items.push((name, value));
        }
        if items.first().is_none_or(|(k, _)| *k != "event") {
            return Err(VerifyError::Malformed("a capture record names its event"));
        }
        self.lit("}}")?;
        Ok(items)
    }

    /// A press's timing and source, after `"start_ms":`.
    fn timing(&mut self) -> Result<(u64, u64, u64, Source), VerifyError> {
        let start_ms = self.number()?;
        self.lit(",\"end_ms\":")?;
        let end_ms = self.number()?;
        self.lit(",\"detected_ms\":")?;
        let detected_ms = self.number()?;
        self.lit(",\"source\":")?;
        let source = match self.ident()?.as_str() {
            "inband" => Source::Inband,
            "rfc4733" => Source::Rfc4733,
            "both" => Source::Both,
            _ => return Err(VerifyError::Malformed("source")),
        };
        Ok((start_ms, end_ms, detected_ms, source))
    }

    /// A non-empty string of lowercase hex digits, at most [`MAX_ITEM_TEXT`] long.
    fn hex(&mut self) -> Result<String, VerifyError> {
        let hex = |v: &str| {
            !v.is_empty()
                && v.len() <= MAX_ITEM_TEXT
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        self.quoted(hex, "expected hex")
    }

    fn end(&self) -> Result<(), VerifyError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(VerifyError::Malformed("trailing bytes after payload"))
        }
    }

    /// A session nonce: 32 lowercase hex digits.
    fn session(&mut self) -> Result<String, VerifyError> {
        let v = self
            .0
            .strip_prefix('"')
            .and_then(|r| r.get(..33))
            .filter(|v| v.ends_with('"'))
            .map(|v| &v[..32])
            .filter(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            .ok_or(VerifyError::Malformed("session is not 32 hex digits"))?;
        self.0 = &self.0[34..];
        Ok(String::from(v))
    }

    fn number(&mut self) -> Result<u64, VerifyError> {
        let end = self
            .0
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.0.len());
        let v = self.0[..end]
            .parse()
            .map_err(|_| VerifyError::Malformed("expected a number"))?;
        self.0 = &self.0[end..];
        Ok(v)
    }
}
