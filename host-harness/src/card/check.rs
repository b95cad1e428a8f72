//! The replay's check of a test call's card capture (`card_capture` in its manifest).

use super::{agent_view, event_items, open};
use crate::packets::{run_capture, CaptureOptions};
use crate::plugin::CaptureRequest;
use crate::plugin::{CaptureEvent, DigitEvent};
use crate::replay::CardCaptureTruth;
use crate::run::{run, CapturePlan, Options};
use anyhow::Result;
use tonemask_core::card::seal;
use tonemask_core::{CaptureRecord, Record};
use zeroize::Zeroizing;

/// The processor key id the replay seals to.
const PROCESSOR: &str = "replay-processor";

/// What one capture check holds: ephemeral signing keys, the processor's key pair and a
/// token key, and the plan (`truth.at_ms`, card number, expiry and code).
struct Check {
    keys: crate::keys::KeyRing,
    private: Zeroizing<Vec<u8>>,
    token_key: Zeroizing<[u8; 32]>,
    plan: CapturePlan,
}

impl Check {
    fn new(truth: &CardCaptureTruth) -> Result<Check> {
        let keys = crate::keys::KeyRing::ephemeral()?;
        let ikm = Zeroizing::new(crate::keys::random_bytes::<32>("a processor key")?);
        let (private, public) = seal::keypair(&ikm);
        let token_key = Zeroizing::new(crate::keys::random_bytes::<32>("a token key")?);
        let plan = CapturePlan {
            at_ms: truth.at_ms,
            request: request(&public, &token_key)?,
        };
        Ok(Check {
            keys,
            private: Zeroizing::new(private.to_vec()),
            token_key,
            plan,
        })
    }

    /// What is wrong with one session's result: its events, capture records and signed
    /// lines.
    fn judge(
        &self,
        events: &[DigitEvent],
        captures: &[(u64, CaptureEvent)],
        lines: &str,
        truth: &CardCaptureTruth,
    ) -> Result<Vec<String>> {
        let mut failures = view_failures(events, captures, truth);
        let report = crate::verify::verify_lines(&self.keys, lines);
        if !report.whole() {
            failures.push("capture: the records do not verify as a whole call".into());
        }
        let completions: Vec<&CaptureRecord> = report
            .lines
            .iter()
            .filter_map(|v| match v.result.as_ref().map(|ok| &ok.record) {
                Ok(Record::Capture(c)) if c.event() == "completed" => Some(c),
                _ => None,
            })
            .collect();
        let pan = truth.card.split(';').next().unwrap_or("");
        let token = tonemask_core::card::token(&self.token_key[..], pan.as_bytes());
        if completions
            .iter()
            .any(|c| c.text("token") != Some(token.as_str()))
        {
            failures.push("capture: the completion's token is not the card number's".into());
        }
        let opened: Vec<Zeroizing<Vec<u8>>> = completions
            .iter()
            .map(|c| open(c, PROCESSOR, &self.private))
            .collect::<Result<_>>()?;
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
}

/// Runs `wav` with the card capture of `truth` (an ephemeral processor key, token key and
/// signing key) and says what is wrong, if anything: a digit event made of the typing, a
/// digit of the card in the agent's view (beyond the last four), a record that does not
/// verify, a token that is not the card number's, or a sealed card that does not open to
/// exactly `truth.card`.
pub fn check_capture(
    instance: &mut crate::plugin::Instance,
    wav: &crate::wav::Wav,
    truth: &CardCaptureTruth,
) -> Result<Vec<String>> {
    let check = Check::new(truth)?;
    let opts = Options {
        capture: Some(check.plan.clone()),
        ..Options::default()
    };
    let out = run(instance, wav, &opts, Some(&check.keys), |_| {})?;
    check.judge(&out.events, &out.captures, &out.signed_lines(), truth)
}

/// As [`check_capture`], for a recorded call: the capture starts on its caller→agent stream
/// `truth.at_ms` after the capture's first frame.
pub fn check_capture_rtp(
    plugin: &crate::plugin::Plugin,
    capture: &crate::capture::Capture,
    opts: &CaptureOptions,
    truth: &CardCaptureTruth,
) -> Result<Vec<String>> {
    let check = Check::new(truth)?;
    let opts = CaptureOptions {
        capture: Some(check.plan.clone()),
        ..opts.clone()
    };
    let out = run_capture(plugin, capture, &opts, Some(&check.keys))?;
    let Some(s) = out.streams.iter().find(|s| s.direction.masked()) else {
        return Ok(vec!["capture: no caller→agent stream to capture on".into()]);
    };
    check.judge(&s.events, &s.captures, &s.signed_lines(), truth)
}

/// Card number, expiry and code; 30 s and three attempts per field; the test cards'
/// expiries are after 2026-12.
fn request(public: &[u8; 32], token_key: &[u8; 32]) -> Result<CaptureRequest> {
    let entropy = crate::keys::random_bytes::<32>("a capture seal")?.to_vec();
    let mut request = super::card_request("replay", (PROCESSOR, public), (2026, 12), entropy);
    request.token_key = Some(token_key.to_vec());
    Ok(request)
}

/// No digit event of the typing (numbered between the capture's start and its end); no
/// card digits in the agent's view but the last four.
fn view_failures(
    events: &[DigitEvent],
    captures: &[(u64, CaptureEvent)],
    truth: &CardCaptureTruth,
) -> Vec<String> {
    let mut failures = Vec::new();
    let pan = truth.card.split(';').next().unwrap_or("");
    let last4 = &pan[pan.len().saturating_sub(4)..];
    let seq_of = |name: &str| {
        captures
            .iter()
            .find(|(_, c)| super::event_name(c) == Some(name))
            .map(|(_, c)| c.seq)
    };
    let started = seq_of("started").unwrap_or(u64::MAX);
    let ended = ["completed", "cancelled", "failed"]
        .iter()
        .filter_map(|n| seq_of(n))
        .min()
        .unwrap_or(u64::MAX);
    if let Some(e) = events.iter().find(|e| e.seq > started && e.seq < ended) {
        failures.push(format!(
            "capture: a digit event (seq {}) was made of the typing",
            e.seq
        ));
    }
    if captures.is_empty() {
        failures.push("capture: no capture record at all".into());
    }
    for (_, c) in captures {
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
    failures
}
