//! Replaying test calls: a recording plus a manifest of the digits it holds.
//!
//! A manifest is `NAME.json` beside its recording — audio, or a packet capture:
//!
//! ```json
//! { "audio": "NAME.wav", "digits": "4111111111111111", "description": "...",
//!   "tones": [ { "digit": "4", "start_ms": 500, "end_ms": 570 }, ... ] }
//! { "capture": "NAME.pcap", "digits": "5454545454545454", "source": "rfc4733",
//!   "agent_digits": "" }
//! ```
//!
//! For a capture, `digits` are those of the caller→agent streams, `source` (optional) the
//! source every one of them must have, `agent_digits` (default none) those expected on the
//! agent→caller streams, `dropped` (default 0) how many frames or packets that may carry audio
//! must be dropped; the masked capture is checked the same way as masked audio.
//!
//! `tones` (optional) gives each tone's true position; reported edges must be within
//! [`EDGE_TOLERANCE_MS`]. Each call is run through the plugin with default settings and an
//! ephemeral signing key, and passes when
//! 1. the digits found equal `digits`, in order, each once;
//! 2. edges match `tones` (when given);
//! 3. no tone sample left the plugin unmasked (`leaked-samples` = 0);
//! 4. every event's signature verifies, in sequence, without gaps;
//! 5. the masked output, run through the plugin again, holds no digit;
//! 6. with `card_capture` (`{"at_ms": …, "card": "PAN;MMYY;CODE"}`): run again with the
//!    capture started at `at_ms`, no digit event comes of the typing, the agent's view holds
//!    no digit of the card but its last four, every record verifies, and the sealed card
//!    opens with the processor key to exactly `card` (see [`crate::card::check_capture`]).
//!    In a recorded call, the capture starts on the caller→agent stream `at_ms` after the
//!    capture's first frame ([`crate::card::check_capture_rtp`]).

use crate::capture::Capture;
use crate::keys::KeyRing;
use crate::packets::{run_capture, CaptureOptions};
use crate::plugin::{default_settings, shown_digit, CallSettings, DigitEvent, MaskMode, Plugin};
use crate::run::{run, source_name, Options};
use crate::verify::verify_lines;
use crate::wav::Wav;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Largest accepted difference between a reported and a true tone edge, ms.
pub const EDGE_TOLERANCE_MS: i64 = 15;

/// A test call's manifest.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Audio file, relative to the manifest.
    #[serde(default)]
    pub audio: Option<PathBuf>,
    /// Packet capture (pcap or pcapng), relative to the manifest (instead of `audio`).
    #[serde(default)]
    pub capture: Option<PathBuf>,
    /// For captures: the source every caller→agent digit must have (inband, rfc4733, both).
    #[serde(default)]
    pub source: Option<String>,
    /// For captures: digits expected on the agent→caller streams.
    #[serde(default)]
    pub agent_digits: String,
    /// For captures: frames and packets that may carry audio and are expected to be dropped
    /// (say why in the description); any other number fails the call.
    #[serde(default)]
    pub dropped: u64,
    /// Expected digits in order ("" for none).
    pub digits: String,
    /// What the call is.
    #[serde(default)]
    pub description: String,
    /// True tone positions, when known.
    #[serde(default)]
    pub tones: Vec<ToneTruth>,
    /// A card capture the agent starts in this call, and the card the processor must get.
    #[serde(default)]
    pub card_capture: Option<CardCaptureTruth>,
}

/// A card capture in a test call.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CardCaptureTruth {
    /// When the agent starts it, ms into the call.
    pub at_ms: u64,
    /// What the processor opens: `PAN;MMYY;CODE` (test cards only).
    pub card: String,
}

/// Where a tone really is.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToneTruth {
    /// The digit.
    pub digit: String,
    /// First sample, ms.
    pub start_ms: u64,
    /// End, ms.
    pub end_ms: u64,
}

/// The result of one call.
#[derive(Clone, Debug, Serialize)]
pub struct CallResult {
    /// Manifest path.
    pub manifest: String,
    /// Audio format and length.
    pub format: String,
    /// Seconds of audio.
    pub seconds: f64,
    /// Expected digits.
    pub expected: String,
    /// Digits found.
    pub detected: String,
    /// Digits found in the masked output.
    pub in_masked: String,
    /// Frames and packets dropped (captures), by reason.
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// Failed checks, empty when the call passed.
    pub failures: Vec<String>,
    /// Wall time, seconds.
    pub wall_seconds: f64,
}

impl CallResult {
    /// Whether every check passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Expands paths: a directory stands for every `*.json` in it (sorted).
pub fn manifests(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            v.sort();
            out.extend(v);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    Ok(out)
}

/// Replays one manifest. Errors reading the call become failures, not aborts.
pub fn replay_one(plugin: &Plugin, manifest_path: &Path) -> CallResult {
    let t0 = std::time::Instant::now();
    let mut r = CallResult {
        manifest: manifest_path.display().to_string(),
        format: String::new(),
        seconds: 0.0,
        expected: String::new(),
        detected: String::new(),
        in_masked: String::new(),
        dropped: Default::default(),
        failures: Vec::new(),
        wall_seconds: 0.0,
    };
    if let Err(e) = check(plugin, manifest_path, &mut r) {
        r.failures.push(format!("{e:#}"));
    }
    r.wall_seconds = t0.elapsed().as_secs_f64();
    r
}

/// Reads a manifest file.
pub fn load_manifest(path: &Path) -> Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("bad manifest {}", path.display()))
}

fn check(plugin: &Plugin, manifest_path: &Path, r: &mut CallResult) -> Result<()> {
    let m = load_manifest(manifest_path)?;
    r.expected = m.digits.clone();
    let dir = manifest_path.parent().unwrap_or(Path::new("."));
    let audio = match (&m.audio, &m.capture) {
        (Some(a), None) => dir.join(a),
        (None, Some(c)) => return check_capture(plugin, &m, &dir.join(c), r),
        _ => anyhow::bail!("the manifest must name exactly one of \"audio\" and \"capture\""),
    };
    let bytes =
        std::fs::read(&audio).with_context(|| format!("cannot read {}", audio.display()))?;
    let wav = Wav::from_file_bytes(bytes).with_context(|| audio.display().to_string())?;
    r.format = format!("{} {} Hz", wav.format.name(), wav.sample_rate);
    r.seconds = wav.seconds();

    let keys = KeyRing::ephemeral()?;
    let mut instance = plugin.instantiate()?;
    let out = run(
        &mut instance,
        &wav,
        &Options {
            settings: default_settings("replay"),
            ..Options::default()
        },
        Some(&keys),
        |_| {},
    )?;
    r.detected = out.events.iter().map(shown_digit).collect();
    if r.detected != m.digits {
        r.failures.push(format!(
            "digits: expected {:?}, found {:?}",
            m.digits, r.detected
        ));
    }
    if !m.tones.is_empty() && m.tones.len() == out.events.len() {
        for (t, e) in m.tones.iter().zip(&out.events) {
            let ds = e.start_ms as i64 - t.start_ms as i64;
            let de = e.end_ms as i64 - t.end_ms as i64;
            if ds.abs() > EDGE_TOLERANCE_MS || de.abs() > EDGE_TOLERANCE_MS {
                r.failures.push(format!(
                    "edges of digit {} (seq {}): reported {}..{} ms, true {}..{} ms",
                    shown_digit(e),
                    e.seq,
                    e.start_ms,
                    e.end_ms,
                    t.start_ms,
                    t.end_ms
                ));
            }
        }
    }
    check_events(&keys, &out.events, &out.signed_lines(), r);
    let again = run(
        &mut instance,
        &out.masked,
        &Options {
            settings: CallSettings {
                mask_mode: MaskMode::Off,
                ..default_settings("replay")
            },
            keep_audio: false,
            ..Options::default()
        },
        None,
        |_| {},
    )?;
    r.in_masked = again.events.iter().map(shown_digit).collect();
    if !r.in_masked.is_empty() {
        r.failures.push(format!(
            "masked output still holds digits {:?}",
            r.in_masked
        ));
    }
    if let Some(truth) = &m.card_capture {
        r.failures
            .extend(crate::card::check_capture(&mut instance, &wav, truth)?);
    }
    Ok(())
}

/// Events must not have leaked, and must be signed; the session's `lines` (start record,
/// events, end record) must verify in sequence without gaps, the audit chain unbroken.
fn check_events(keys: &KeyRing, events: &[DigitEvent], lines: &str, r: &mut CallResult) {
    let leaked: u64 = events.iter().map(|e| e.leaked_samples).sum();
    if leaked > 0 {
        r.failures.push(format!(
            "{leaked} tone samples left the plugin before the digit was confirmed"
        ));
    }
    let report = verify_lines(keys, lines);
    for v in &report.lines {
        match &v.result {
            Ok(ok) if ok.gap.is_some() => r
                .failures
                .push(format!("event line {}: sequence gap", v.line)),
            Ok(ok) if ok.broken_chain => r
                .failures
                .push(format!("event line {}: audit chain broken", v.line)),
            Ok(_) => {}
            Err(e) => r.failures.push(format!("event line {}: {e}", v.line)),
        }
    }
    for u in &report.unfinished {
        r.failures.push(u.to_string());
    }
    if events.iter().any(|e| e.signed.is_none()) {
        r.failures.push("an event was not signed".into());
    }
}

fn check_capture(plugin: &Plugin, m: &Manifest, path: &Path, r: &mut CallResult) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cap = Capture::parse_bytes(bytes.into()).with_context(|| path.display().to_string())?;
    r.format = format!("{} {} frames", cap.format, cap.frames.len());
    if cap.truncated {
        r.failures
            .push("the capture ends inside a record (truncated file)".into());
    }
    r.seconds = match (cap.frames.first(), cap.frames.last()) {
        (Some(a), Some(b)) => b.ts.saturating_sub(a.ts).as_secs_f64(),
        _ => 0.0,
    };
    let keys = KeyRing::ephemeral()?;
    let opts = CaptureOptions {
        settings: default_settings("replay"),
        ..CaptureOptions::default()
    };
    let out = run_capture(plugin, &cap, &opts, Some(&keys))?;
    r.detected = out.caller_digits();
    r.dropped = out.drop_counts();
    if r.detected != m.digits {
        r.failures.push(format!(
            "caller→agent digits: expected {:?}, found {:?}",
            m.digits, r.detected
        ));
    }
    if out.agent_digits() != m.agent_digits {
        r.failures.push(format!(
            "agent→caller digits: expected {:?}, found {:?}",
            m.agent_digits,
            out.agent_digits()
        ));
    }
    check_drops(m, &out, r);
    for s in out.streams.iter().filter(|s| s.direction.masked()) {
        check_sources(m, s, r);
        check_events(&keys, &s.events, &s.signed_lines(), r);
    }
    if out.streams.is_empty() {
        r.failures.push("no RTP stream found in the capture".into());
    }

    // The masked capture, watched in every direction: no digit, as tones or as events.
    let masked = Capture::from_frames("pcap", out.masked);
    let again = run_capture(
        plugin,
        &masked,
        &CaptureOptions {
            settings: CallSettings {
                mask_mode: MaskMode::Off,
                ..opts.settings.clone()
            },
            ..opts.clone()
        },
        None,
    )?;
    r.in_masked = again.caller_digits();
    if !r.in_masked.is_empty() {
        r.failures.push(format!(
            "masked capture still holds digits {:?} (caller→agent)",
            r.in_masked
        ));
    }
    if let Some(truth) = &m.card_capture {
        r.failures
            .extend(crate::card::check_capture_rtp(plugin, &cap, &opts, truth)?);
    }
    Ok(())
}

/// Frames and packets that may carry audio were dropped exactly as the manifest expects.
fn check_drops(m: &Manifest, out: &crate::packets::CaptureOutcome, r: &mut CallResult) {
    if out.audio_dropped() == m.dropped {
        return;
    }
    let why: Vec<String> = out
        .streams
        .iter()
        .filter(|s| s.dropped() > 0)
        .map(|s| format!("{} → {}: {}", s.src, s.dst, s.refused.join("; ")))
        .chain(out.dropped.iter().map(|(r, n)| format!("{n} frame(s) {r}")))
        .collect();
    r.failures.push(format!(
        "{} frame(s) or packet(s) that may carry audio dropped, {} expected: {}",
        out.audio_dropped(),
        m.dropped,
        why.join("; ")
    ));
}

/// Every digit of a masked stream came from the source the manifest names.
fn check_sources(m: &Manifest, s: &crate::packets::StreamOutcome, r: &mut CallResult) {
    let Some(want) = &m.source else {
        return;
    };
    for e in &s.events {
        if source_name(e.source) != want {
            r.failures.push(format!(
                "digit seq {}: source {}, expected {want}",
                e.seq,
                source_name(e.source)
            ));
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML for a set of results.
#[must_use]
pub fn junit(results: &[CallResult]) -> String {
    let failures = results.iter().filter(|r| !r.passed()).count();
    let total: f64 = results.iter().map(|r| r.wall_seconds).sum();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"tonemask replay\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">\n",
        results.len()
    );
    for r in results {
        x += &format!(
            "  <testcase classname=\"replay\" name=\"{}\" time=\"{:.3}\">",
            xml_escape(&r.manifest),
            r.wall_seconds
        );
        if !r.passed() {
            let msg = xml_escape(&r.failures.join("; "));
            x += &format!("\n    <failure message=\"{msg}\">{msg}</failure>\n  ");
        }
        x += "</testcase>\n";
    }
    x + "</testsuite>\n"
}
