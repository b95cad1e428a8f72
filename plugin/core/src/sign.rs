//! Signing and verifying digit events (HMAC-SHA256).
//!
//! An event travels as one line, the **envelope**:
//!
//! ```text
//! {"kid":"k1","mac":"<64 hex digits>","payload":{"v":1,"kid":"k1",...}}
//! ```
//!
//! `mac` is HMAC-SHA256 under key `kid` over the exact bytes of `payload` as they appear in
//! the line (from its `{` to its `}`), so the line must be passed on byte for byte. The
//! verifier checks the MAC in constant time *before* it parses the payload, then checks that
//! the payload names the same key, and tracks sequence numbers per call: replays and
//! reordering are refused and gaps reported. A call is one session (its nonce): a record of
//! another session under the same call id is refused as spliced. Each session starts with a
//! signed start-of-call record and ends with a signed end-of-call record; every record
//! carries the hash of the call's previous line ([`line_hash`]), and a record whose `prev` is
//! not the hash of the last line accepted for its call is flagged
//! ([`Verified::broken_chain`]). [`Verifier::finish`] names every call whose end never came
//! (the file was cut) or whose digit records are not all there.

use crate::error::{ConfigError, VerifyError};
use crate::event::{is_identifier, CallEnd, DigitEvent, Record, CHAIN_START};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted key, in bytes (256 bits).
pub const MIN_KEY_LEN: usize = 32;

/// A named HMAC key. The bytes are wiped on drop and never printed.
#[derive(Clone)]
pub struct Key {
    kid: String,
    bytes: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Key {{ kid: {:?}, bytes: REDACTED }}", self.kid)
    }
}

impl Key {
    /// A key with id `kid` (1–64 of `A-Z a-z 0-9 . _ : -`) and at least 32 bytes.
    pub fn new(kid: &str, bytes: &[u8]) -> Result<Key, ConfigError> {
        if !is_identifier(kid) {
            return Err(ConfigError::BadIdentifier { field: "key id" });
        }
        if bytes.len() < MIN_KEY_LEN {
            return Err(ConfigError::KeyTooShort { len: bytes.len() });
        }
        Ok(Key {
            kid: String::from(kid),
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        HmacSha256::new_from_slice(self.bytes.as_slice()).unwrap_or_else(|_| unreachable!())
    }

    /// Signs `payload` and returns the envelope line (without a newline).
    #[must_use]
    pub fn seal(&self, payload: &str) -> String {
        let mut m = self.mac();
        m.update(payload.as_bytes());
        let tag = m.finalize().into_bytes();
        let mut line = String::with_capacity(payload.len() + 110);
        line.push_str("{\"kid\":\"");
        line.push_str(&self.kid);
        line.push_str("\",\"mac\":\"");
        for b in tag {
            line.push(HEX[usize::from(b >> 4)] as char);
            line.push(HEX[usize::from(b & 15)] as char);
        }
        line.push_str("\",\"payload\":");
        line.push_str(payload);
        line.push('}');
        line
    }
}

/// What signs one session's records: a key, and the session's nonce — 16 random bytes the
/// host draws for each session (the core has no entropy), carried in every record so that
/// records of two sessions can never pass for one call.
#[derive(Clone, Debug)]
pub struct Signer {
    key: Key,
    session: String,
}

impl Signer {
    /// A signer; an all-zero nonce (no entropy drawn) is refused.
    pub fn new(key: Key, nonce: [u8; 16]) -> Result<Signer, ConfigError> {
        if nonce == [0; 16] {
            return Err(ConfigError::OutOfRange {
                field: "session nonce",
                allowed: "16 random bytes drawn by the host for each session",
            });
        }
        let mut session = String::with_capacity(32);
        for b in nonce {
            session.push(HEX[usize::from(b >> 4)] as char);
            session.push(HEX[usize::from(b & 15)] as char);
        }
        Ok(Signer { key, session })
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The session nonce as 32 hex digits.
    #[must_use]
    pub fn session(&self) -> &str {
        &self.session
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The audit chain's link to a signed line: SHA-256 of the envelope exactly as sent (without
/// a line ending), 64 lowercase hex digits — the next record of the call carries it as `prev`.
#[must_use]
pub fn line_hash(line: &str) -> String {
    use sha2::Digest as _;
    let digest = Sha256::digest(line.trim_end_matches(['\r', '\n']).as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(HEX[usize::from(b >> 4)] as char);
        hex.push(HEX[usize::from(b & 15)] as char);
    }
    hex
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Some(out)
}

/// The parts of an envelope line, not yet trusted.
struct Envelope<'a> {
    kid: &'a str,
    mac: [u8; 32],
    payload: &'a str,
}

fn open(line: &str) -> Result<Envelope<'_>, VerifyError> {
    let rest = line.trim_end_matches(['\r', '\n']);
    let rest = rest
        .strip_prefix("{\"kid\":\"")
        .ok_or(VerifyError::Malformed("not an event envelope"))?;
    let q = rest
        .find('"')
        .ok_or(VerifyError::Malformed("unterminated key id"))?;
    let kid = &rest[..q];
    let rest = rest[q..]
        .strip_prefix("\",\"mac\":\"")
        .ok_or(VerifyError::Malformed("missing mac"))?;
    let mac = rest
        .get(..64)
        .and_then(unhex)
        .ok_or(VerifyError::Malformed("mac is not 64 hex digits"))?;
    let payload = rest[64..]
        .strip_prefix("\",\"payload\":")
        .and_then(|p| p.strip_suffix('}'))
        .ok_or(VerifyError::Malformed("missing payload"))?;
    Ok(Envelope { kid, mac, payload })
}

/// An accepted record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The record.
    pub record: Record,
    /// Sequence numbers skipped just before this record (`first..=last`), if any.
    pub gap: Option<(u64, u64)>,
    /// The record's `prev` is not the hash of the last line accepted for its call: a line
    /// before it is missing, was altered or does not belong (or, on the call's first line
    /// seen, the start-of-call record is missing).
    pub broken_chain: bool,
}

impl Verified {
    /// The digit event, if the record is one.
    #[must_use]
    pub fn digit(&self) -> Option<&DigitEvent> {
        match &self.record {
            Record::Digit(e) => Some(e),
            Record::Start(_) | Record::Press(_) | Record::Capture(_) | Record::End(_) => None,
        }
    }
}

/// What is wrong with a call once the whole file was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unfinished {
    /// No end-of-call record: the records stop somewhere (a cut file, or a session that is
    /// still running).
    NoEnd {
        /// The call.
        call: String,
        /// Digit records accepted.
        digits: u64,
    },
    /// The end record counts digit or capture records that are not in the file.
    Missing {
        /// The call.
        call: String,
        /// Records (digits and captures) the session says it sent.
        sent: u64,
        /// Records accepted.
        accepted: u64,
    },
}

impl core::fmt::Display for Unfinished {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Unfinished::NoEnd { call, digits } => write!(
                f,
                "call {call}: no end-of-call record after {digits} digit(s) — the file is cut or the session did not end"
            ),
            Unfinished::Missing {
                call,
                sent,
                accepted,
            } => write!(
                f,
                "call {call}: the session sent {sent} record(s) before its end, {accepted} are here"
            ),
        }
    }
}

struct CallState {
    session: String,
    last: u64,
    seen: BTreeSet<u64>,
    digits: u64,
    captures: u64,
    end: Option<CallEnd>,
    /// [`line_hash`] of the last line accepted (the chain's start before any).
    last_hash: String,
}

/// Verifies event lines against a key ring, tracking sequence numbers per call.
pub struct Verifier {
    keys: Vec<Key>,
    calls: BTreeMap<String, CallState>,
}

impl Verifier {
    /// A verifier accepting any of `keys` (current and previous, for rotation).
    #[must_use]
    pub fn new(keys: Vec<Key>) -> Verifier {
        Verifier {
            keys,
            calls: BTreeMap::new(),
        }
    }

    /// Verifies one envelope line. Only a verified event counts towards replay tracking.
    pub fn verify(&mut self, line: &str) -> Result<Verified, VerifyError> {
        let env = open(line)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == env.kid)
            .ok_or_else(|| VerifyError::UnknownKey(String::from(env.kid)))?;
        let mut m = key.mac();
        m.update(env.payload.as_bytes());
        // `verify_slice` compares in constant time.
        m.verify_slice(&env.mac).map_err(|_| VerifyError::BadMac)?;
        let record = Record::parse_payload(env.payload)?;
        let (kid, call_id, session, seq) = record.ids();
        if kid != env.kid {
            return Err(VerifyError::Malformed(
                "payload key id differs from envelope key id",
            ));
        }
        if seq == 0 {
            return Err(VerifyError::Malformed("sequence numbers start at 1"));
        }
        let call = self
            .calls
            .entry(String::from(call_id))
            .or_insert_with(|| CallState {
                session: String::from(session),
                last: 0,
                seen: BTreeSet::new(),
                digits: 0,
                captures: 0,
                end: None,
                last_hash: String::from(CHAIN_START),
            });
        if call.session != session {
            return Err(VerifyError::Spliced {
                call: String::from(call_id),
            });
        }
        if call.seen.contains(&seq) {
            return Err(VerifyError::Replayed { seq });
        }
        if let Some(end) = &call.end {
            return Err(VerifyError::AfterEnd { seq, end: end.seq });
        }
        if seq < call.last {
            return Err(VerifyError::Reordered {
                seq,
                last: call.last,
            });
        }
        let gap = (seq > call.last + 1).then(|| (call.last + 1, seq - 1));
        let broken_chain = record.prev() != call.last_hash;
        call.last = seq;
        call.seen.insert(seq);
        call.last_hash = line_hash(line);
        match &record {
            Record::Start(_) => {}
            Record::Digit(_) | Record::Press(_) => call.digits += 1,
            Record::Capture(_) => call.captures += 1,
            Record::End(e) => call.end = Some(e.clone()),
        }
        Ok(Verified {
            record,
            gap,
            broken_chain,
        })
    }

    /// After the last line: every call that did not end properly.
    #[must_use]
    pub fn finish(&self) -> Vec<Unfinished> {
        self.calls
            .iter()
            .filter_map(|(id, c)| match &c.end {
                None => Some(Unfinished::NoEnd {
                    call: id.clone(),
                    digits: c.digits,
                }),
                Some(e) if e.digits != c.digits || e.captures != c.captures => {
                    Some(Unfinished::Missing {
                        call: id.clone(),
                        sent: e.digits + e.captures,
                        accepted: c.digits + c.captures,
                    })
                }
                Some(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digit::Digit;
    use crate::event::Source;
    use alloc::vec;

    fn key(kid: &str, fill: u8) -> Key {
        Key::new(kid, &[fill; 32]).unwrap()
    }

    const SESSION: &str = "00112233445566778899aabbccddeeff";

    fn event(seq: u64, digit: char) -> DigitEvent {
        DigitEvent {
            kid: "k1".into(),
            call: "call-1".into(),
            session: SESSION.into(),
            seq,
            prev: CHAIN_START.into(),
            digit: Digit::from_char(digit).unwrap(),
            start_ms: 100 * seq,
            end_ms: 100 * seq + 60,
            detected_ms: 100 * seq + 30,
            source: Source::Inband,
        }
    }

    fn line(seq: u64, digit: char) -> String {
        key("k1", 7).seal(&event(seq, digit).to_payload())
    }

    fn end(seq: u64, digits: u64) -> String {
        let e = CallEnd {
            kid: "k1".into(),
            call: "call-1".into(),
            session: SESSION.into(),
            seq,
            prev: CHAIN_START.into(),
            digits,
            captures: 0,
        };
        key("k1", 7).seal(&e.to_payload())
    }

    #[test]
    fn capture_payload_round_trips_and_refuses_other_shapes() {
        use crate::event::{CaptureRecord, Item};
        let r = CaptureRecord {
            kid: "k1".into(),
            call: "c-1".into(),
            session: SESSION.into(),
            seq: 4,
            prev: CHAIN_START.into(),
            capture: "pay-1".into(),
            items: vec![
                ("event", Item::Text("digits".into())),
                ("field", Item::Text("card-number".into())),
                ("count", Item::Number(5)),
            ],
        };
        let p = r.to_payload();
        assert!(p.ends_with(
            r#""capture":{"id":"pay-1","event":"digits","field":"card-number","count":5}}"#
        ));
        assert_eq!(Record::parse_payload(&p).unwrap(), Record::Capture(r));
        let head = r#"{"v":3,"kid":"k1","call":"c-1","session":""#;
        for bad in [
            // an item the format does not have, items out of order, no event, a digit
            // string with a space, an empty value
            r#""capture":{"id":"p","event":"x","pan":"4111"}}"#,
            r#""capture":{"id":"p","count":5,"event":"digits"}}"#,
            r#""capture":{"id":"p","field":"expiry"}}"#,
            r#""capture":{"id":"p","event":"a b"}}"#,
            r#""capture":{"id":"p","event":""}}"#,
            r#""capture":{"id":"p","event":"x","event":"y"}}"#,
        ] {
            let p = alloc::format!("{head}{SESSION}\",\"seq\":1,\"prev\":\"{CHAIN_START}\",{bad}");
            assert!(Record::parse_payload(&p).is_err(), "{bad}");
        }
    }

    #[test]
    fn payload_round_trips() {
        let e = event(3, '#');
        assert_eq!(
            Record::parse_payload(&e.to_payload()).unwrap(),
            Record::Digit(e)
        );
    }

    #[test]
    fn a_session_ends_with_its_record_and_cut_or_spliced_files_are_caught() {
        // Whole: two digits and the end record.
        let mut v = Verifier::new(vec![key("k1", 7)]);
        v.verify(&line(1, '4')).unwrap();
        v.verify(&line(2, '1')).unwrap();
        assert!(matches!(
            v.verify(&end(3, 2)).unwrap().record,
            Record::End(_)
        ));
        assert_eq!(v.finish(), []);
        assert!(matches!(
            v.verify(&line(4, '1')),
            Err(VerifyError::AfterEnd { seq: 4, end: 3 })
        ));
        // Cut: no end record.
        let mut v = Verifier::new(vec![key("k1", 7)]);
        v.verify(&line(1, '4')).unwrap();
        assert!(matches!(
            v.finish()[..],
            [Unfinished::NoEnd { digits: 1, .. }]
        ));
        // A digit missing before the end.
        let mut v = Verifier::new(vec![key("k1", 7)]);
        v.verify(&line(2, '4')).unwrap();
        v.verify(&end(3, 2)).unwrap();
        assert!(matches!(
            v.finish()[..],
            [Unfinished::Missing {
                sent: 2,
                accepted: 1,
                ..
            }]
        ));
        // Another session's record under the same call id.
        let mut v = Verifier::new(vec![key("k1", 7)]);
        v.verify(&line(1, '4')).unwrap();
        let other = key("k1", 7).seal(
            &event(2, '1')
                .to_payload()
                .replace(SESSION, &"ab".repeat(16)),
        );
        assert!(matches!(v.verify(&other), Err(VerifyError::Spliced { .. })));
        // Version 1 payloads carry no session: refused.
        let v1 = key("k1", 7).seal("{\"v\":1,\"kid\":\"k1\",\"call\":\"c\",\"seq\":1,\"digit\":\"4\",\"start_ms\":1,\"end_ms\":2,\"detected_ms\":1,\"source\":\"inband\"}");
        assert!(matches!(
            Verifier::new(vec![key("k1", 7)]).verify(&v1),
            Err(VerifyError::Malformed(_))
        ));
    }

    /// The lines of a signed call as a reporter writes them: start, `digits` presses, end.
    fn chained_call(digits: &str, nonce: u8) -> Vec<String> {
        use crate::report::{Press, Reporter};
        use crate::settings::DigitVisibility;
        let signer = Signer::new(key("k1", 7), [nonce; 16]).unwrap();
        let mut r = Reporter::new("call-9".into(), Some(signer), DigitVisibility::Clear);
        let mut lines = vec![String::from(r.start_record().unwrap())];
        for (i, c) in digits.chars().enumerate() {
            let t = 100 * i as u64;
            let e = r.report(Press {
                digit: Digit::from_char(c).unwrap(),
                start_ms: t,
                end_ms: t + 60,
                detected_ms: t + 30,
                source: Source::Inband,
                leaked_samples: 0,
            });
            lines.push(e.unwrap().line.unwrap());
        }
        r.finish();
        lines.push(String::from(r.end_record().unwrap()));
        lines
    }

    /// Verifies `lines` in order: (line index, broken chain) of each accepted one, and the
    /// calls left unfinished.
    fn chain_of(lines: &[String]) -> (Vec<(usize, bool)>, usize) {
        let mut v = Verifier::new(vec![key("k1", 7)]);
        let seen = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| v.verify(l).ok().map(|ok| (i, ok.broken_chain)))
            .collect();
        (seen, v.finish().len())
    }

    #[test]
    fn the_audit_chain_links_every_line_and_shows_a_removed_or_foreign_one() {
        let call = chained_call("4111", 0x5A);
        assert_eq!(call.len(), 6);
        assert!(call[0].contains("\"start_of_call\":{\"digits\":\"clear\"}"));
        assert!(call[1].contains(&alloc::format!("\"prev\":\"{}\"", line_hash(&call[0]))));
        // Whole: every link holds, the call ends.
        let (seen, unfinished) = chain_of(&call);
        assert!(seen.iter().all(|&(_, broken)| !broken));
        assert_eq!((seen.len(), unfinished), (6, 0));
        // A digit removed: the line after it breaks the chain (and the numbering).
        let mut cut = call.clone();
        cut.remove(2);
        let (seen, _) = chain_of(&cut);
        assert_eq!(
            seen.iter().filter(|s| s.1).map(|s| s.0).collect::<Vec<_>>(),
            [2]
        );
        // The start record removed: the call's first line seen breaks it.
        let (seen, _) = chain_of(&call[1..]);
        assert_eq!(
            seen.iter().filter(|s| s.1).map(|s| s.0).collect::<Vec<_>>(),
            [0]
        );
        // A line of another session under the same call id is refused as spliced; a second
        // line of this session under a number already seen, as a replay.
        for nonce in [0x6B, 0x5A] {
            let mut mixed = call.clone();
            mixed.insert(2, chained_call("5", nonce)[1].clone());
            let (seen, _) = chain_of(&mixed);
            assert_eq!(seen.len(), 6);
            assert!(seen.iter().all(|&(i, broken)| i != 2 && !broken));
        }
        // A start record that claims a later place, or a chain it does not begin, is refused.
        let bad = key("k1", 7).seal(
            &call[0][call[0].find("\"payload\":").unwrap() + 10..call[0].len() - 1]
                .replace("\"seq\":1,", "\"seq\":2,"),
        );
        assert!(matches!(
            Verifier::new(vec![key("k1", 7)]).verify(&bad),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn a_signer_needs_a_nonce_from_the_host() {
        assert!(Signer::new(key("k1", 7), [0; 16]).is_err());
        let s = Signer::new(key("k1", 7), [0xAB; 16]).unwrap();
        assert_eq!(s.session(), "ab".repeat(16));
    }

    #[test]
    fn accepts_a_sequence_and_reports_gaps() {
        let mut v = Verifier::new(vec![key("k1", 7)]);
        assert_eq!(v.verify(&line(1, '4')).unwrap().gap, None);
        assert_eq!(v.verify(&line(4, '1')).unwrap().gap, Some((2, 3)));
    }

    #[test]
    fn rejects_altered_digit() {
        let mut v = Verifier::new(vec![key("k1", 7)]);
        let l = line(1, '4').replace("\"digit\":\"4\"", "\"digit\":\"5\"");
        assert_eq!(v.verify(&l), Err(VerifyError::BadMac));
    }

    #[test]
    fn rejects_wrong_key_and_unknown_kid() {
        let mut v = Verifier::new(vec![key("k1", 8)]);
        assert_eq!(v.verify(&line(1, '4')), Err(VerifyError::BadMac));
        let mut v = Verifier::new(vec![key("k2", 7)]);
        assert!(matches!(
            v.verify(&line(1, '4')),
            Err(VerifyError::UnknownKey(_))
        ));
    }

    #[test]
    fn rejects_replay_and_reorder() {
        let mut v = Verifier::new(vec![key("k1", 7)]);
        v.verify(&line(1, '4')).unwrap();
        v.verify(&line(3, '1')).unwrap();
        assert_eq!(
            v.verify(&line(3, '1')),
            Err(VerifyError::Replayed { seq: 3 })
        );
        assert_eq!(
            v.verify(&line(2, '1')),
            Err(VerifyError::Reordered { seq: 2, last: 3 })
        );
    }

    #[test]
    fn refuses_short_keys() {
        assert_eq!(
            Key::new("k", &[0; 31]).unwrap_err(),
            ConfigError::KeyTooShort { len: 31 }
        );
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let s = alloc::format!("{:?}", key("k1", 0xAB));
        assert!(!s.contains("171") && !s.contains("ab, ab") && s.contains("REDACTED"));
    }
}
