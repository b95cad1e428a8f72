//! A capture running inside a call: the host's request, the key presses routed to it, its
//! progress turned into record items, and the completed card sealed for the processor.

use super::seal::{seal, Binding};
use super::{Capture, CaptureConfig, Progress};
use crate::error::ConfigError;
use crate::event::{is_identifier, Item};
use alloc::string::String;
use alloc::vec::Vec;
use zeroize::Zeroizing;

/// The payment processor's HPKE public key, which the completed card is sealed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorKey {
    /// Its id, bound into every sealed record (an identifier).
    pub kid: String,
    /// The X25519 public key.
    pub public: [u8; 32],
}

/// What a host asks for when it starts a capture.
pub struct CaptureRequest {
    /// The capture's id, carried in every record of it (an identifier: 1–64 of
    /// `A-Z a-z 0-9 . _ : -`).
    pub id: String,
    /// Fields, keys, time-outs, attempts and the host's date.
    pub config: CaptureConfig,
    /// Who the card is sealed to.
    pub processor: ProcessorKey,
    /// 32 random bytes from the host for the seal (the plugin has no entropy of its own).
    pub entropy: [u8; 32],
    /// A key (at least 32 bytes) for the card's token: HMAC-SHA256 of the card number under
    /// it, in the completion record, so a card on file can be matched without holding it.
    /// `None`: no token.
    pub token_key: Option<Zeroizing<Vec<u8>>>,
}

/// The items of one capture record (see [`crate::event::CaptureRecord`]).
pub type Items = Vec<(&'static str, Item)>;

/// A capture in progress within a call.
pub(crate) struct Active {
    id: String,
    capture: Capture,
    processor: ProcessorKey,
    entropy: Zeroizing<[u8; 32]>,
    token_key: Option<Zeroizing<Vec<u8>>>,
    over: bool,
}

impl Active {
    /// Starts the capture at media time `now_ms`; refuses a bad id, key id, configuration or
    /// an all-zero entropy.
    pub(crate) fn start(req: CaptureRequest, now_ms: u64) -> Result<Active, ConfigError> {
        let refuse = |field, allowed| Err(ConfigError::OutOfRange { field, allowed });
        if !is_identifier(&req.id) {
            return refuse("capture id", "1-64 of A-Z a-z 0-9 . _ : -");
        }
        if !is_identifier(&req.processor.kid) {
            return refuse("processor key id", "1-64 of A-Z a-z 0-9 . _ : -");
        }
        if req.entropy == [0; 32] {
            return refuse("capture entropy", "32 random bytes drawn by the host");
        }
        if req.token_key.as_ref().is_some_and(|k| k.len() < 32) {
            return refuse("token key", "at least 32 bytes");
        }
        Ok(Active {
            capture: Capture::new(req.config, now_ms)?,
            id: req.id,
            processor: req.processor,
            entropy: Zeroizing::new(req.entropy),
            token_key: req.token_key,
            over: false,
        })
    }

    /// The capture's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// When the capture's current field times out (media time, ms).
    pub(crate) fn deadline(&self) -> Option<u64> {
        self.capture.poll_timeout()
    }

    /// Where the capture stands (see [`super::Capture::status`]).
    pub(crate) fn status(&self) -> Option<super::Status> {
        self.capture.status()
    }

    /// The capture itself (keys, time, re-requests, cancel).
    pub(crate) fn capture(&mut self) -> &mut Capture {
        &mut self.capture
    }

    /// Whether the capture has ended (completed and sealed, failed or cancelled).
    pub(crate) fn is_over(&self) -> bool {
        self.over
    }

    /// Drains the capture's progress as record items for `call_id`; a completed card is
    /// sealed here, and only its sealed form leaves.
    pub(crate) fn drain(&mut self, call_id: &str, mut emit: impl FnMut(Items)) {
        while let Some(p) = self.capture.poll_progress() {
            let items = match p {
                Progress::Completed { brand } => self.sealed(call_id, brand),
                other => progress_items(other),
            };
            if matches!(
                p,
                Progress::Completed { .. } | Progress::Failed { .. } | Progress::Cancelled
            ) {
                self.over = true;
            }
            emit(items);
        }
    }

    /// The completion record: brand, processor key id and the sealed card in hex — or a
    /// failure when the card could not be sealed (a processor key that is no X25519 point).
    fn sealed(&mut self, call_id: &str, brand: Option<super::Brand>) -> Items {
        let binding = Binding {
            call_id: String::from(call_id),
            capture_id: self.id.clone(),
            kid: self.processor.kid.clone(),
        };
        let token_key = self.token_key.as_deref();
        let sealed = self.capture.take_card().map(|card| {
            let token = token_key.map(|k| token(k, &card.pan));
            seal(&card, &self.processor.public, &binding, *self.entropy).map(|s| (s, token))
        });
        match sealed {
            Some(Ok((s, token))) => {
                let mut items = alloc::vec![("event", text("completed"))];
                if let Some(b) = brand {
                    items.push(("brand", text(b.name())));
                }
                items.push(("pkid", Item::Text(self.processor.kid.clone())));
                items.push(("enc", Item::Text(hex::encode(&s.enc))));
                items.push(("sealed", Item::Text(hex::encode(&s.ciphertext))));
                if let Some(t) = token {
                    items.push(("token", Item::Text(t)));
                }
                items
            }
            _ => alloc::vec![("event", text("failed")), ("reason", text("seal-failed"))],
        }
    }
}

/// The card's token: HMAC-SHA256 of the card number (ASCII digits) under `key`, hex — what a
/// completion record carries when the capture was given a token key, and what the processor
/// side computes for a card on file to match it.
///
/// The hash keeps its input block and message schedule in its own state and on the stack,
/// which it does not wipe (the RustCrypto 0.10 hashes have no zeroize support): the stack
/// the computation used is overwritten before returning, so no copy of the card number is
/// left behind (the instance-memory scan test found one without this).
#[must_use]
pub fn token(key: &[u8], pan: &[u8]) -> String {
    let t = hmac_hex(key, pan);
    scrub_stack();
    t
}

#[inline(never)]
fn hmac_hex(key: &[u8], pan: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(pan);
    hex::encode(mac.finalize().into_bytes())
}

/// Overwrites the stack below the caller's frame — where the calls it just returned from
/// kept their locals — with zeros.
#[inline(never)]
fn scrub_stack() {
    let mut area = [0u8; 16 * 1024];
    core::hint::black_box(&mut area);
}

fn text(s: &str) -> Item {
    Item::Text(String::from(s))
}

/// Items for a progress report other than completion.
fn progress_items(p: Progress) -> Items {
    let field = |f: super::Field| ("field", text(f.name()));
    match p {
        Progress::FieldStarted { field: f, attempt } => alloc::vec![
            ("event", text("field")),
            field(f),
            ("attempt", Item::Number(u64::from(attempt))),
        ],
        Progress::Digits { field: f, count } => alloc::vec![
            ("event", text("digits")),
            field(f),
            ("count", Item::Number(count as u64)),
        ],
        Progress::Cleared { field: f } => alloc::vec![("event", text("cleared")), field(f)],
        Progress::Brand(b) => alloc::vec![("event", text("brand")), ("brand", text(b.name()))],
        Progress::Valid { field: f, last4 } => {
            let mut items = alloc::vec![("event", text("valid")), field(f)];
            if let Some(l) = last4.as_ref().and_then(|l| core::str::from_utf8(l).ok()) {
                items.push(("last4", text(l)));
            }
            items
        }
        Progress::Invalid {
            field: f,
            reason,
            attempts_left,
        } => alloc::vec![
            ("event", text("invalid")),
            field(f),
            ("reason", text(reason.name())),
            ("attempts_left", Item::Number(u64::from(attempts_left))),
        ],
        Progress::Failed { field: f, reason } => alloc::vec![
            ("event", text("failed")),
            field(f),
            ("reason", text(reason.name())),
        ],
        Progress::Cancelled => alloc::vec![("event", text("cancelled"))],
        Progress::Completed { .. } => alloc::vec![("event", text("completed"))],
    }
}
