//! `tonemask capture`: run a call recording with a card capture started by the agent, show
//! what the agent sees as it happens, and write the signed records (the card only sealed).

use crate::args::CallArgs;
use crate::common::*;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tonemask_harness::card::{
    agent_view, card_request, event_at_ms, event_items, event_name, field_by_name, load_public,
    this_month, Tally,
};
use tonemask_harness::keys::{random_bytes, KeyRing};
use tonemask_harness::plugin::CaptureRequest;
use tonemask_harness::run::{run, CapturePlan, Options, Outcome};
use tonemask_harness::wav::Wav;

/// Arguments of `tonemask capture`.
#[derive(clap::Args)]
pub struct Args {
    /// Call recording (WAV) in which the caller types the card
    call: PathBuf,
    /// The payment processor's public key file (`KEY-ID HEX`; see `tonemask keygen
    /// --processor`): the completed card is sealed to it
    #[arg(long, value_name = "FILE")]
    processor_key: PathBuf,
    /// Key file that signs the records
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Where to write the signed records (digit events and capture progress; owner-only)
    #[arg(long, value_name = "FILE")]
    events: PathBuf,
    /// When the agent starts the capture, seconds into the call
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    at: f64,
    /// Fields in the order they are asked: card-number, expiry, security-code, or
    /// numeric:MIN-MAX (comma-separated)
    #[arg(
        long,
        default_value = "card-number,expiry,security-code",
        value_delimiter = ','
    )]
    fields: Vec<String>,
    /// Today's month (YYYY-MM): an expiry before it is refused [default: the system clock's]
    #[arg(long, value_name = "YYYY-MM")]
    today: Option<String>,
    /// Seconds a field may take from when it is asked
    #[arg(long, default_value_t = 30, value_name = "S")]
    field_timeout: u64,
    /// Attempts per field before the capture fails (1–9)
    #[arg(long, default_value_t = 3)]
    attempts: u8,
    /// The capture's id, carried in its records
    #[arg(long, default_value = "capture-1")]
    capture_id: String,
    /// Key file (its first key) for the card's token: HMAC-SHA256 of the card number, in the
    /// completion record, to match a card on file without holding it
    #[arg(long, value_name = "KEYFILE")]
    token_key: Option<PathBuf>,
    #[command(flatten)]
    call_args: CallArgs,
}

/// Runs `tonemask capture`; returns the exit status: 0 when the card was captured and
/// sealed, 1 when the capture failed or never completed.
pub fn execute(plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    check_events_path(&args.events, &[&args.call])?;
    if !(0.0..=86_400.0).contains(&args.at) {
        bail!("--at must be between 0 and 86400 seconds (got {})", args.at);
    }
    let keys = KeyRing::load(&args.key)?;
    let wav = Wav::from_file_bytes(read_file(&args.call)?)
        .with_context(|| args.call.display().to_string())?;
    let opts = Options {
        settings: args.call_args.settings()?,
        capture: Some(CapturePlan {
            at_ms: (args.at * 1000.0) as u64,
            request: request(&args)?,
        }),
        ..Options::default()
    };
    let plugin = load_plugin(plugin)?;
    let mut inst = plugin.instantiate()?;
    let out = run(
        &mut inst,
        &wav,
        &opts,
        Some(&keys),
        progress_for(wav.seconds(), "capture"),
    )?;
    show(&args, &out);
    let lines = out.signed_lines();
    write_events(&args.events, lines.as_bytes())?;
    let completed = out
        .captures
        .iter()
        .any(|(_, c)| event_name(c) == Some("completed"));
    eprintln!(
        "tonemask: {} record(s) written to {}{}",
        lines.lines().count(),
        args.events.display(),
        if completed {
            "; the card is sealed to the processor key (open it with `tonemask open`)"
        } else {
            "; the capture did not complete"
        }
    );
    Ok(if completed { 0 } else { 1 })
}

/// The capture the command line asks for (fresh entropy for its seal).
fn request(args: &Args) -> Result<CaptureRequest> {
    let (kid, public) = load_public(&args.processor_key)?;
    let (year, month) = match &args.today {
        Some(t) => parse_month(t)?,
        None => this_month(),
    };
    let entropy = random_bytes::<32>("the capture's seal")?.to_vec();
    let mut request = card_request(&args.capture_id, (&kid, &public), (year, month), entropy);
    request.fields = args
        .fields
        .iter()
        .map(|f| field_by_name(f))
        .collect::<Result<_>>()?;
    request.field_timeout_ms = args.field_timeout.saturating_mul(1000);
    request.max_attempts = args.attempts;
    request.token_key = match &args.token_key {
        Some(path) => Some(KeyRing::load(path)?.signing().1.to_vec()),
        None => None,
    };
    Ok(request)
}

/// The agent's view, each record at its media time; how long it took and the fields
/// refused; digits pressed outside the capture.
fn show(args: &Args, out: &Outcome) {
    println!(
        "agent view of capture {} ({}):",
        args.capture_id,
        args.call.display()
    );
    for (drained_ms, c) in &out.captures {
        let at = event_at_ms(c).unwrap_or(*drained_ms);
        println!(
            "{:>9.2} s  {}",
            at as f64 / 1000.0,
            agent_view(event_items(c))
        );
    }
    let mut tally = Tally::default();
    for (_, c) in &out.captures {
        tally.add(&c.capture, event_items(c));
    }
    println!("capture: {tally}");
    for e in &out.events {
        println!(
            "{:>9.2} s  digit outside the capture (seq {})",
            e.end_ms as f64 / 1000.0,
            e.seq
        );
    }
}

/// `YYYY-MM`.
fn parse_month(s: &str) -> Result<(u16, u8)> {
    let parsed = s
        .split_once('-')
        .and_then(|(y, m)| Some((y.parse::<u16>().ok()?, m.parse::<u8>().ok()?)))
        .filter(|(y, m)| (2000..=2099).contains(y) && (1..=12).contains(m));
    parsed.with_context(|| format!("--today {s:?} is not a month YYYY-MM of 2000–2099"))
}
