//! Card capture on the host side: the agent's view of a capture record, the processor's key
//! files, and opening a sealed card (the processor's side, for tests and the demo).
//!
//! Processor key files use the key-file line format, `KID HEX`: the private file holds the
//! X25519 private key (owner-only, like every key file), the public file the public key that
//! hosts seal cards to.

use crate::plugin::{CaptureEvent, CaptureValue};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use tonemask_core::card::seal::{self, Binding, Sealed};
use tonemask_core::{CaptureRecord, Item};
use zeroize::Zeroizing;

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

/// Runs `wav` with the card capture of `truth` (an ephemeral processor key and signing key)
/// and says what is wrong, if anything: a digit event made of the typing, a digit of the
/// card in the agent's view (beyond the last four), a record that does not verify, or a
/// sealed card that does not open to exactly `truth.card`.
pub fn check_capture(
    instance: &mut crate::plugin::Instance,
    wav: &crate::wav::Wav,
    truth: &crate::replay::CardCaptureTruth,
) -> Result<Vec<String>> {
    use crate::run::{run, signed_lines_with_captures, CapturePlan, Options};
    let keys = crate::keys::KeyRing::ephemeral()?;
    let ikm = Zeroizing::new(crate::keys::random_bytes::<32>("a processor key")?);
    let (private, public) = seal::keypair(&ikm);
    let token_key = Zeroizing::new(crate::keys::random_bytes::<32>("a token key")?);
    let request = crate::plugin::CaptureRequest {
        id: "replay".into(),
        fields: vec![
            crate::plugin::CaptureField::CardNumber,
            crate::plugin::CaptureField::Expiry,
            crate::plugin::CaptureField::SecurityCode,
        ],
        end_key: '#',
        clear_key: '*',
        field_timeout_ms: 30_000,
        max_attempts: 3,
        // The test cards' expiries are after this month.
        year: 2026,
        month: 12,
        processor_kid: "replay-processor".into(),
        processor_key: public.to_vec(),
        entropy: crate::keys::random_bytes::<32>("a capture seal")?.to_vec(),
        token_key: Some(token_key.to_vec()),
    };
    let opts = Options {
        capture: Some(CapturePlan {
            at_ms: truth.at_ms,
            request,
        }),
        ..Options::default()
    };
    let out = run(instance, wav, &opts, Some(&keys), |_| {})?;
    let mut failures = Vec::new();
    let pan = truth.card.split(';').next().unwrap_or("");
    let last4 = &pan[pan.len().saturating_sub(4)..];
    if let Some(e) = out.events.iter().find(|e| e.end_ms >= truth.at_ms) {
        failures.push(format!(
            "capture: a digit event (seq {}) was made of the typing",
            e.seq
        ));
    }
    for (_, c) in &out.captures {
        let view = agent_view(event_items(c));
        let leaked = truth
            .card
            .split(';')
            .flat_map(|f| f.as_bytes().windows(5.min(f.len())))
            .any(|w| view.contains(std::str::from_utf8(w).unwrap_or("")));
        if leaked || view.contains("last4") && !view.contains(&format!("last4={last4}")) {
            failures.push(format!(
                "capture: the agent's view shows card digits: {view}"
            ));
        }
    }
    let lines = signed_lines_with_captures(&out.events, &out.captures, out.end_record.as_deref());
    let report = crate::verify::verify_lines(&keys, &lines);
    if !report.whole() {
        failures.push("capture: the records do not verify as a whole call".into());
    }
    let completions: Vec<&CaptureRecord> = report
        .lines
        .iter()
        .filter_map(|v| match &v.result {
            Ok(ok) => match &ok.record {
                tonemask_core::Record::Capture(c) if c.event() == "completed" => Some(c),
                _ => None,
            },
            Err(_) => None,
        })
        .collect();
    let opened: Vec<Zeroizing<Vec<u8>>> = completions
        .iter()
        .map(|c| open(c, "replay-processor", &private))
        .collect::<Result<_>>()?;
    let token = tonemask_core::card::token(&token_key[..], pan.as_bytes());
    if completions
        .iter()
        .any(|c| c.text("token") != Some(token.as_str()))
    {
        failures.push("capture: the completion's token is not the card number's".into());
    }
    match opened.as_slice() {
        [card] if card.as_slice() == truth.card.as_bytes() => {}
        [_] => failures.push("capture: the sealed card opens to another card".into()),
        _ => failures.push(format!(
            "capture: {} sealed card(s), expected one",
            opened.len()
        )),
    }
    Ok(failures)
}
