//! Reading payloads back, strictly: exactly the shapes the writers in this module produce
//! (fixed field order, no whitespace, no escapes), anything else refused.

use super::{
    is_identifier, CallEnd, CallStart, CaptureRecord, DigitEvent, Item, PressRecord, Record,
    SealedDigit, Source, CAPTURE_ITEMS, MAX_ITEM_TEXT,
};
use crate::digit::Digit;
use crate::error::VerifyError;
use alloc::string::String;

/// The fields every payload starts with.
struct Head {
    kid: String,
    call: String,
    session: String,
    seq: u64,
    prev: String,
}

impl Record {
    /// Parses a payload written by [`CallStart::to_payload`], [`DigitEvent::to_payload`],
    /// [`PressRecord::to_payload`], [`CaptureRecord::to_payload`] or
    /// [`CallEnd::to_payload`]; any other shape (earlier format versions included) is refused.
    pub fn parse_payload(p: &str) -> Result<Record, VerifyError> {
        let mut r = Reader(p);
        r.lit("{\"v\":3,\"kid\":")?;
        let kid = r.ident()?;
        r.lit(",\"call\":")?;
        let call = r.ident()?;
        r.lit(",\"session\":")?;
        let session = r.session()?;
        r.lit(",\"seq\":")?;
        let seq = r.number()?;
        r.lit(",\"prev\":")?;
        let prev = r.hash()?;
        let h = Head {
            kid,
            call,
            session,
            seq,
            prev,
        };
        let record = if r.0.starts_with(",\"start_of_call\":") {
            r.start_of_call(h)?
        } else if r.0.starts_with(",\"end_of_call\":") {
            r.end_of_call(h)?
        } else if r.0.starts_with(",\"capture\":") {
            r.capture(h)?
        } else if r.0.starts_with(",\"press\":") {
            r.press(h)?
        } else {
            r.digit(h)?
        };
        r.end()?;
        Ok(record)
    }
}

struct Reader<'a>(&'a str);

impl Reader<'_> {
    fn start_of_call(&mut self, h: Head) -> Result<Record, VerifyError> {
        self.lit(",\"start_of_call\":{\"digits\":")?;
        let digits = self.ident()?;
        if !["clear", "hidden", "sealed"].contains(&digits.as_str()) {
            return Err(VerifyError::Malformed(
                "start_of_call: unknown digits setting",
            ));
        }
        self.lit("}}")?;
        if h.seq != 1 || h.prev != super::CHAIN_START {
            return Err(VerifyError::Malformed(
                "a start-of-call record has seq 1 and begins the chain",
            ));
        }
        Ok(Record::Start(CallStart {
            kid: h.kid,
            call: h.call,
            session: h.session,
            seq: h.seq,
            prev: h.prev,
            digits,
        }))
    }

    fn end_of_call(&mut self, h: Head) -> Result<Record, VerifyError> {
        self.lit(",\"end_of_call\":{\"digits\":")?;
        let digits = self.number()?;
        let captures = if self.0.starts_with(",\"captures\":") {
            self.lit(",\"captures\":")?;
            self.number()?
        } else {
            0
        };
        self.lit("}}")?;
        Ok(Record::End(CallEnd {
            kid: h.kid,
            call: h.call,
            session: h.session,
            seq: h.seq,
            prev: h.prev,
            digits,
            captures,
        }))
    }

    fn capture(&mut self, h: Head) -> Result<Record, VerifyError> {
        self.lit(",\"capture\":{\"id\":")?;
        let capture = self.ident()?;
        let items = self.items()?;
        Ok(Record::Capture(CaptureRecord {
            kid: h.kid,
            call: h.call,
            session: h.session,
            seq: h.seq,
            prev: h.prev,
            capture,
            items,
        }))
    }

    fn press(&mut self, h: Head) -> Result<Record, VerifyError> {
        self.lit(",\"press\":{\"start_ms\":")?;
        let (start_ms, end_ms, detected_ms, source) = self.timing()?;
        let sealed = if self.0.starts_with(",\"pkid\":") {
            self.lit(",\"pkid\":")?;
            let pkid = self.ident()?;
            self.lit(",\"enc\":")?;
            let enc = self.hex()?;
            self.lit(",\"sealed\":")?;
            let sealed = self.hex()?;
            Some(SealedDigit { pkid, enc, sealed })
        } else {
            None
        };
        self.lit("}}")?;
        Ok(Record::Press(PressRecord {
            kid: h.kid,
            call: h.call,
            session: h.session,
            seq: h.seq,
            prev: h.prev,
            start_ms,
            end_ms,
            detected_ms,
            source,
            sealed,
        }))
    }

    fn digit(&mut self, h: Head) -> Result<Record, VerifyError> {
        self.lit(",\"digit\":\"")?;
        let digit = self
            .0
            .chars()
            .next()
            .and_then(Digit::from_char)
            .ok_or(VerifyError::Malformed("digit"))?;
        self.0 = &self.0[1..];
        self.lit("\",\"start_ms\":")?;
        let (start_ms, end_ms, detected_ms, source) = self.timing()?;
        self.lit("}")?;
        Ok(Record::Digit(DigitEvent {
            kid: h.kid,
            call: h.call,
            session: h.session,
            seq: h.seq,
            prev: h.prev,
            digit,
            start_ms,
            end_ms,
            detected_ms,
            source,
        }))
    }

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

    /// A chain hash: 64 lowercase hex digits.
    fn hash(&mut self) -> Result<String, VerifyError> {
        self.hex_of(64, "prev is not 64 hex digits")
    }

    /// A session nonce: 32 lowercase hex digits.
    fn session(&mut self) -> Result<String, VerifyError> {
        self.hex_of(32, "session is not 32 hex digits")
    }

    /// A string of exactly `len` lowercase hex digits.
    fn hex_of(&mut self, len: usize, what: &'static str) -> Result<String, VerifyError> {
        let v = self
            .0
            .strip_prefix('"')
            .and_then(|r| r.get(..=len))
            .filter(|v| v.ends_with('"'))
            .map(|v| &v[..len])
            .filter(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            .ok_or(VerifyError::Malformed(what))?;
        self.0 = &self.0[len + 2..];
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
