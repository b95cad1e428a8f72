//! Card capture on the host side: the agent's view of a capture record, the processor's key
//! files, and opening a sealed card (the processor's side, for tests and the demo).
//!
//! Processor key files use the key-file line format, `KID HEX`: the private file holds the
//! X25519 private key (owner-only, like every key file), the public file the public key that
//! hosts seal cards to.

use crate::plugin::{CaptureEvent, CaptureField, CaptureRequest, CaptureValue, NumericField};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use tonemask_core::card::seal::{self, Binding, Sealed};
use tonemask_core::{CaptureRecord, Item};
use zeroize::Zeroizing;

mod check;
mod tally;
pub use check::{check_capture, check_capture_rtp};
pub use tally::Tally;

/// One value of a capture record, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// A word.
    Text(&'a str),
    /// A count.
    Number(u64),
}

/// The items of a record as the plugin returned it.
pub fn event_items(e: &CaptureEvent) -> impl Iterator<Item = (&str, Value<'_>)> {
    e.items.iter().map(|(k, v)| {
        let v = match v {
            CaptureValue::Text(t) => Value::Text(t),
            CaptureValue::Number(n) => Value::Number(*n),
        };
        (k.as_str(), v)
    })
}

/// The event's name of a record as the plugin returned it (`started`, `digits`, …).
pub fn event_name(e: &CaptureEvent) -> Option<&str> {
    match event_items(e).next() {
        Some(("event", Value::Text(t))) => Some(t),
        _ => None,
    }
}

/// The media time a record as the plugin returned it carries (`at_ms`).
pub fn event_at_ms(e: &CaptureEvent) -> Option<u64> {
    event_items(e).find_map(|(k, v)| match (k, v) {
        ("at_ms", Value::Number(n)) => Some(n),
        _ => None,
    })
}

/// The items of a verified record.
pub fn record_items(r: &CaptureRecord) -> impl Iterator<Item = (&str, Value<'_>)> {
    r.items.iter().map(|(k, v)| {
        let v = match v {
            Item::Text(t) => Value::Text(t),
            Item::Number(n) => Value::Number(*n),
        };
        (*k, v)
    })
}

/// What the agent sees of a record: its event and details, the sealed card as its size only
/// (its time, `at_ms`, is left to the caller to show).
pub fn agent_view<'a>(items: impl Iterator<Item = (&'a str, Value<'a>)>) -> String {
    let mut out = String::new();
    for (k, v) in items {
        let shown = match (k, v) {
            ("event", Value::Text(t)) => t.to_string(),
            ("enc" | "at_ms", _) => continue,
            ("token", _) => "token".to_string(),
            ("sealed", Value::Text(t)) => format!("sealed={} bytes", t.len() / 2),
            (k, Value::Text(t)) => format!("{k}={t}"),
            (k, Value::Number(n)) => format!("{k}={n}"),
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&shown);
    }
    out
}

/// A processor's public key: its id and the X25519 key cards are sealed to.
pub fn load_public(path: &Path) -> Result<(String, [u8; 32])> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read processor key {}", path.display()))?;
    let (kid, bytes) =
        key_line(&text).with_context(|| format!("processor key {}", path.display()))?;
    let public = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        anyhow!(
            "processor key {}: not a 32-byte X25519 public key",
            path.display()
        )
    })?;
    Ok((kid, public))
}

/// A processor's private key (a key file: owner-only).
pub fn load_private(path: &Path) -> Result<(String, Zeroizing<Vec<u8>>)> {
    crate::files::check_private(path, "processor private key")?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read processor private key {}", path.display()))?,
    );
    key_line(&text).with_context(|| format!("processor private key {}", path.display()))
}

/// The one `KID HEX` line of a processor key file.
fn key_line(text: &str) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (Some(line), None) = (lines.next(), lines.next()) else {
        bail!("expected one line `KEY-ID HEX-KEY`");
    };
    let mut parts = line.split_whitespace();
    let (Some(kid), Some(hex_key), None) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected `KEY-ID HEX-KEY`");
    };
    if !tonemask_core::event::is_identifier(kid) {
        bail!("the key id is not 1-64 of A-Z a-z 0-9 . _ : -");
    }
    let bytes =
        Zeroizing::new(hex::decode(hex_key).map_err(|_| anyhow!("the key is not valid hex"))?);
    Ok((kid.to_string(), bytes))
}

/// A new processor key pair as key-file texts: (private, public).
pub fn generate(kid: &str) -> Result<(Zeroizing<String>, String)> {
    if !tonemask_core::event::is_identifier(kid) {
        bail!("key id {kid:?} is not 1-64 of A-Z a-z 0-9 . _ : -");
    }
    let ikm = Zeroizing::new(crate::keys::random_bytes::<32>("a processor key")?);
    let (private, public) = seal::keypair(&ikm);
    Ok((
        Zeroizing::new(format!("{kid} {}\n", hex::encode(&private[..]))),
        format!("{kid} {}\n", hex::encode(public)),
    ))
}

/// The digit a sealed press record carries, opened with the processor's private key; `None`
/// for a press record without one (hidden digits).
pub fn open_press(
    record: &tonemask_core::event::PressRecord,
    kid: &str,
    private: &[u8],
) -> Result<Option<char>> {
    let Some(d) = &record.sealed else {
        return Ok(None);
    };
    if d.pkid != kid {
        bail!(
            "seq {}: sealed to processor key {}, not {kid}",
            record.seq,
            d.pkid
        );
    }
    let unhex = |h: &str| hex::decode(h).map_err(|_| anyhow!("seq {}: not hex", record.seq));
    let sealed = Sealed {
        enc: unhex(&d.enc)?,
        ciphertext: unhex(&d.sealed)?,
    };
    let binding = Binding {
        call_id: record.call.clone(),
        capture_id: tonemask_core::event::PressRecord::binding_id(record.seq),
        kid: d.pkid.clone(),
    };
    let plain = seal::open_bytes(&sealed, private, &binding)
        .map_err(|e| anyhow!("seq {} of call {}: {e}", record.seq, record.call))?;
    match plain.as_slice() {
        [c] if tonemask_core::Digit::from_char(char::from(*c)).is_some() => {
            Ok(Some(char::from(*c)))
        }
        _ => bail!(
            "seq {} of call {}: the sealed digit is not a key",
            record.seq,
            record.call
        ),
    }
}

/// The card a completed capture record carries, opened with the processor's private key:
/// `PAN;MMYY;CODE;…`. Refused when the record is not a completion, names another processor
/// key, or does not open under its own call and capture ids (moved or tampered).
pub fn open(record: &CaptureRecord, kid: &str, private: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if record.event() != "completed" {
        bail!(
            "capture {}: record {} is not a completion",
            record.capture,
            record.seq
        );
    }
    let field = |name: &str| {
        record
            .text(name)
            .ok_or_else(|| anyhow!("capture {}: the completion has no {name}", record.capture))
    };
    let pkid = field("pkid")?;
    if pkid != kid {
        bail!(
            "capture {}: sealed to processor key {pkid}, not {kid}",
            record.capture
        );
    }
    let unhex = |name: &str| -> Result<Vec<u8>> {
        hex::decode(field(name)?)
            .map_err(|_| anyhow!("capture {}: {name} is not hex", record.capture))
    };
    let sealed = Sealed {
        enc: unhex("enc")?,
        ciphertext: unhex("sealed")?,
    };
    let binding = Binding {
        call_id: record.call.clone(),
        capture_id: record.capture.clone(),
        kid: pkid.to_string(),
    };
    seal::open(&sealed, private, &binding)
        .map_err(|e| anyhow!("capture {} of call {}: {e}", record.capture, record.call))
}

/// The usual card capture: card number, expiry and security code; `#` ends a field and `*`
/// clears it; 30 s and three attempts per field; the expiry checked against `today` (year,
/// month); sealed to the processor's public key `processor` (key id, key) with `entropy`
/// (fresh for every capture), no token key. Callers change what they need.
#[must_use]
pub fn card_request(
    id: &str,
    processor: (&str, &[u8; 32]),
    today: (u16, u8),
    entropy: Vec<u8>,
) -> CaptureRequest {
    CaptureRequest {
        id: id.to_string(),
        fields: vec![
            CaptureField::CardNumber,
            CaptureField::Expiry,
            CaptureField::SecurityCode,
        ],
        end_key: '#',
        clear_key: '*',
        field_timeout_ms: 30_000,
        max_attempts: 3,
        year: today.0,
        month: today.1,
        processor_kid: processor.0.to_string(),
        processor_key: processor.1.to_vec(),
        entropy,
        token_key: None,
    }
}

/// A capture field by the name operators write: `card-number` (or `card`), `expiry`,
/// `security-code` (or `code`), or `numeric:MIN-MAX` (a number of MIN to MAX digits).
///
/// # Errors
/// A name that is none of these, with the accepted names in the message.
pub fn field_by_name(name: &str) -> Result<CaptureField> {
    Ok(match name.trim() {
        "card-number" | "card" => CaptureField::CardNumber,
        "expiry" => CaptureField::Expiry,
        "security-code" | "code" => CaptureField::SecurityCode,
        other => {
            let range = other
                .strip_prefix("numeric:")
                .and_then(|r| r.split_once('-'))
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
            let Some((min, max)) = range else {
                bail!("unknown capture field {other:?}: card-number, expiry, security-code or numeric:MIN-MAX");
            };
            CaptureField::Numeric(NumericField { min, max })
        }
    })
}

/// The system clock's year and month (UTC): what a capture's expiry is checked against.
#[must_use]
pub fn this_month() -> (u16, u8) {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as u16, month as u8)
}
