//! Turning detected key presses into numbered, signed digit events: one place for the call's
//! sequence numbers and its key, whichever path (audio frames or RTP) found the press. While
//! a card capture runs, presses go to it instead and only its progress leaves, as capture
//! records on the same numbering. Every signed line carries the hash of the one before it
//! (the audit chain: see [`crate::event`]), from the start-of-call record to the end's.

use crate::card::{Active, CaptureRequest, Field, Items};
use crate::digit::Digit;
use crate::error::ConfigError;
use crate::event::{
    CallEnd, CallStart, CaptureRecord, DigitEvent, PressRecord, SealedDigit, Source, CHAIN_START,
};
use crate::settings::DigitVisibility;
use crate::sign::Signer;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::string::String;

/// A digit event as it leaves the plugin.
#[derive(Clone, Debug)]
pub struct Emitted {
    /// The event.
    pub event: DigitEvent,
    /// The signed envelope line, when the session has a key.
    pub line: Option<String>,
    /// Samples of this tone that had already left unmasked when it was confirmed (0 unless the
    /// look-ahead is too short or masking is off).
    pub leaked_samples: u64,
    /// Whether the digit may leave the plugin in clear (the session's
    /// [`DigitVisibility::Clear`]); otherwise `line` holds a press record without it, and an
    /// adapter must not pass `event.digit` on.
    pub digit_visible: bool,
}

/// A capture record as it leaves the plugin.
#[derive(Clone, Debug)]
pub struct CaptureEmitted {
    /// The record.
    pub record: CaptureRecord,
    /// The signed envelope line, when the session has a key.
    pub line: Option<String>,
}

/// A session's card-capture controls, at the session's media time (see
/// [`crate::Session::capture`], [`crate::RtpSession::capture`]).
pub struct CaptureControl<'a> {
    reporter: &'a mut Reporter,
    now_ms: u64,
}

impl CaptureControl<'_> {
    /// Starts a capture now (see [`Reporter::start_capture`]).
    pub fn start(self, req: CaptureRequest) -> Result<(), ConfigError> {
        self.reporter.start_capture(req, self.now_ms)
    }

    /// Cancels the running capture; `false` when none runs.
    pub fn cancel(self) -> bool {
        self.reporter.cancel_capture()
    }

    /// Asks `field` again from now; `false` when no capture runs.
    pub fn rerequest(self, field: Field) -> bool {
        self.reporter.rerequest(field, self.now_ms)
    }

    /// The host saw a key press on the agent's leg of this call (see
    /// [`Reporter::agent_key`]); `true` when a capture was running.
    pub fn agent_key(self) -> bool {
        self.reporter.agent_key(self.now_ms)
    }

    /// The running capture's id and where it stands (`None` when none runs, or its card is
    /// being sealed).
    #[must_use]
    pub fn status(&self) -> Option<(String, crate::card::Status)> {
        let a = self.reporter.capture.as_ref()?;
        Some((String::from(a.id()), a.status()?))
    }

    /// The running capture's id, if any.
    #[must_use]
    pub fn running(&self) -> Option<&str> {
        self.reporter.capture_id()
    }
}

/// A key press found by a detector, before it is numbered and signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Press {
    /// The key.
    pub digit: Digit,
    /// Start, ms of media time.
    pub start_ms: u64,
    /// End (exclusive), ms of media time.
    pub end_ms: u64,
    /// When it was confirmed, ms of media time.
    pub detected_ms: u64,
    /// Where it was seen.
    pub source: Source,
    /// Tone samples that left unmasked before confirmation.
    pub leaked_samples: u64,
}

/// The oldest event of `queue`, if any; the queue's memory is released once it is empty.
/// Presses are rare and their text allocates anyway, while thousands of sessions can share one
/// instance: a queue kept between presses cost each ≈ 0.5 KiB.
pub(crate) fn next_event(queue: &mut VecDeque<Emitted>) -> Option<Emitted> {
    let e = queue.pop_front();
    if queue.is_empty() && queue.capacity() > 0 {
        *queue = VecDeque::new();
    }
    e
}

/// Numbers and signs the presses of one call, and closes the numbering with a signed
/// end-of-call record.
pub struct Reporter {
    call_id: String,
    signer: Option<Signer>,
    visibility: DigitVisibility,
    seq: u64,
    digits: u64,
    captures: u64,
    /// The hash of the last signed line (the next record's `prev`; empty when unsigned).
    prev: String,
    start: Option<String>,
    end: Option<String>,
    /// The capture running, if any (boxed: most calls never capture, and every session
    /// carries a reporter).
    capture: Option<Box<Active>>,
    records: VecDeque<CaptureEmitted>,
    /// Media time of the latest press, tick or capture control, ms (capture records carry it).
    last_ms: u64,
}

impl Reporter {
    /// A reporter for `call_id`, signing with `signer` when there is one, its digit records
    /// carrying the digit as `visibility` says.
    #[must_use]
    pub fn new(call_id: String, signer: Option<Signer>, visibility: DigitVisibility) -> Reporter {
        let mut r = Reporter {
            call_id,
            signer,
            visibility,
            seq: 0,
            digits: 0,
            captures: 0,
            prev: String::new(),
            start: None,
            end: None,
            capture: None,
            records: VecDeque::new(),
            last_ms: 0,
        };
        if r.signer.is_some() {
            r.prev = String::from(CHAIN_START);
            r.seq = 1;
            let (kid, session) = r.ids();
            let start = CallStart {
                kid,
                call: r.call_id.clone(),
                session,
                seq: 1,
                prev: r.prev.clone(),
                digits: String::from(match r.visibility {
                    DigitVisibility::Clear => "clear",
                    DigitVisibility::Hidden => "hidden",
                    DigitVisibility::Sealed { .. } => "sealed",
                }),
            };
            r.start = r.sign(&start.to_payload());
        }
        r
    }

    /// The signing key's id and the session nonce (both empty when unsigned).
    fn ids(&self) -> (String, String) {
        self.signer.as_ref().map_or_else(Default::default, |s| {
            (String::from(s.key().kid()), String::from(s.session()))
        })
    }

    /// Signs `payload` as the call's next line and links the chain to it; `None` unsigned.
    fn sign(&mut self, payload: &str) -> Option<String> {
        let line = self.signer.as_ref()?.key().seal(payload);
        self.prev = crate::sign::line_hash(&line);
        Some(line)
    }

    /// The signed start-of-call record (sequence number 1, the chain's first line), when the
    /// session signs.
    #[must_use]
    pub fn start_record(&self) -> Option<&str> {
        self.start.as_deref()
    }

    /// The capture controls at media time `now_ms`.
    pub fn capture_at(&mut self, now_ms: u64) -> CaptureControl<'_> {
        CaptureControl {
            reporter: self,
            now_ms,
        }
    }

    /// Starts a card capture at media time `now_ms`: from now on presses are the caller's
    /// typing and leave only as progress. Refused while another capture runs, after the
    /// end, or with a bad request (the field named).
    pub fn start_capture(&mut self, req: CaptureRequest, now_ms: u64) -> Result<(), ConfigError> {
        if self.capture.is_some() || self.end.is_some() {
            return Err(ConfigError::OutOfRange {
                field: "capture",
                allowed: "one capture at a time, before the call ends",
            });
        }
        let active = Active::start(req, now_ms)?;
        self.last_ms = self.last_ms.max(now_ms);
        let id = String::from(active.id());
        self.capture = Some(Box::new(active));
        self.push_capture(
            &id,
            alloc::vec![("event", crate::event::Item::Text("started".into()))],
        );
        self.drain_capture();
        Ok(())
    }

    /// Cancels the running capture (its typing is erased); `false` when none runs.
    pub fn cancel_capture(&mut self) -> bool {
        self.with_capture(|c| c.cancel())
    }

    /// Asks `field` of the running capture again, from media time `now_ms`; `false` when
    /// none runs.
    pub fn rerequest(&mut self, field: Field, now_ms: u64) -> bool {
        self.last_ms = self.last_ms.max(now_ms);
        self.with_capture(|c| c.rerequest(now_ms, field))
    }

    /// The host saw a key press on the agent's leg of this call at media time `now_ms`: while
    /// a capture runs, that is a security signal — the agent typing, or tones injected
    /// towards the caller, during the caller's card entry — and a signed `agent-dtmf` record
    /// of the capture says so (the capture goes on; which digit it was never leaves). `true`
    /// when a capture was running.
    pub fn agent_key(&mut self, now_ms: u64) -> bool {
        let Some(id) = self.capture_id().map(String::from) else {
            return false;
        };
        self.last_ms = self.last_ms.max(now_ms);
        self.push_capture(
            &id,
            alloc::vec![("event", crate::event::Item::Text("agent-dtmf".into()))],
        );
        true
    }

    /// Media time `now_ms` has come: a field not finished in time is refused.
    pub fn tick(&mut self, now_ms: u64) {
        if self.capture.is_none() {
            return;
        }
        self.last_ms = self.last_ms.max(now_ms);
        self.with_capture(|c| c.handle_timeout(now_ms));
    }

    /// When [`Reporter::tick`] has something to do (media time, ms), while a field is typed.
    #[must_use]
    pub fn capture_deadline(&self) -> Option<u64> {
        self.capture.as_ref().and_then(|a| a.deadline())
    }

    /// The id of the capture running, if any.
    #[must_use]
    pub fn capture_id(&self) -> Option<&str> {
        self.capture.as_deref().map(Active::id)
    }

    /// Next capture record, oldest first.
    pub fn poll_capture(&mut self) -> Option<CaptureEmitted> {
        self.records.pop_front()
    }

    /// How many capture records wait to be polled.
    #[must_use]
    pub fn records_waiting(&self) -> usize {
        self.records.len()
    }

    fn with_capture(&mut self, f: impl FnOnce(&mut crate::card::Capture)) -> bool {
        let Some(a) = self.capture.as_mut() else {
            return false;
        };
        f(a.capture());
        self.drain_capture();
        true
    }

    /// Turns the running capture's progress into records; forgets a capture that ended.
    fn drain_capture(&mut self) {
        let Some(mut a) = self.capture.take() else {
            return;
        };
        let mut out = alloc::vec::Vec::new();
        a.drain(&self.call_id, |items| out.push(items));
        for items in out {
            self.push_capture(a.id(), items);
        }
        if !a.is_over() {
            self.capture = Some(a);
        }
    }

    fn push_capture(&mut self, id: &str, mut items: Items) {
        // After the event's name: when it happened.
        items.insert(1, ("at_ms", crate::event::Item::Number(self.last_ms)));
        self.seq += 1;
        self.captures += 1;
        let (kid, session) = self.ids();
        let record = CaptureRecord {
            kid,
            call: self.call_id.clone(),
            session,
            seq: self.seq,
            prev: self.prev.clone(),
            capture: String::from(id),
            items,
        };
        let line = self.sign(&record.to_payload());
        self.records.push_back(CaptureEmitted { record, line });
    }

    /// Ends the numbering: a capture still running is cancelled, then the signed
    /// end-of-call record (records sent, next sequence number), once; `None` without a signer.
    pub fn finish(&mut self) {
        if self.end.is_some() {
            return;
        }
        self.cancel_capture();
        let (kid, session) = self.ids();
        let end = CallEnd {
            kid,
            call: self.call_id.clone(),
            session,
            seq: self.seq + 1,
            prev: self.prev.clone(),
            digits: self.digits,
            captures: self.captures,
        };
        self.end = self.sign(&end.to_payload());
    }

    /// The signed end-of-call record, once [`Reporter::finish`] ran.
    #[must_use]
    pub fn end_record(&self) -> Option<&str> {
        self.end.as_deref()
    }

    /// The event for the next press of the call — or, while a capture runs, nothing: the
    /// press is the caller's typing, and only the capture's progress leaves
    /// ([`Reporter::poll_capture`]).
    pub fn report(&mut self, p: Press) -> Option<Emitted> {
        if self.capture.is_some() {
            self.last_ms = self.last_ms.max(p.end_ms);
            let key = p.digit.to_char();
            self.with_capture(|c| c.handle_key(p.end_ms, key));
            return None;
        }
        self.seq += 1;
        self.digits += 1;
        let (kid, session) = self.ids();
        let event = DigitEvent {
            kid,
            call: self.call_id.clone(),
            session,
            seq: self.seq,
            prev: self.prev.clone(),
            digit: p.digit,
            start_ms: p.start_ms,
            end_ms: p.end_ms,
            detected_ms: p.detected_ms,
            source: p.source,
        };
        let payload = match &self.visibility {
            DigitVisibility::Clear => event.to_payload(),
            hidden => press_record(&event, hidden).to_payload(),
        };
        let line = self.sign(&payload);
        Some(Emitted {
            event,
            line,
            leaked_samples: p.leaked_samples,
            digit_visible: self.visibility == DigitVisibility::Clear,
        })
    }
}

/// The press record for `e` under a visibility other than clear: without the digit, or with
/// it sealed to the processor key (bound to the call and the record's sequence number; the
/// seal's randomness drawn from the session's entropy and the sequence number).
fn press_record(e: &DigitEvent, visibility: &DigitVisibility) -> PressRecord {
    let sealed = match visibility {
        DigitVisibility::Sealed { processor, entropy } => {
            let binding = crate::card::seal::Binding {
                call_id: e.call.clone(),
                capture_id: PressRecord::binding_id(e.seq),
                kid: processor.kid.clone(),
            };
            let digit = [e.digit.to_char() as u8];
            let seed = derive(entropy, e);
            crate::card::seal::seal_bytes(&digit, &processor.public, &binding, seed)
                .ok()
                .map(|s| SealedDigit {
                    pkid: processor.kid.clone(),
                    enc: hex::encode(&s.enc),
                    sealed: hex::encode(&s.ciphertext),
                })
        }
        _ => None,
    };
    PressRecord {
        kid: e.kid.clone(),
        call: e.call.clone(),
        session: e.session.clone(),
        seq: e.seq,
        prev: e.prev.clone(),
        start_ms: e.start_ms,
        end_ms: e.end_ms,
        detected_ms: e.detected_ms,
        source: e.source,
        sealed,
    }
}

/// Per-record randomness from the session's: HMAC-SHA256 under the host's entropy of the
/// call id, the session nonce and the sequence number — distinct for every record even if a
/// host reused its entropy across sessions (an HPKE sender key must never repeat).
fn derive(entropy: &[u8; 32], e: &DigitEvent) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(entropy)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for part in [e.call.as_bytes(), b"\n", e.session.as_bytes(), b"\n"] {
        mac.update(part);
    }
    mac.update(&e.seq.to_be_bytes());
    mac.finalize().into_bytes().into()
}
