//! `tonemask detect`: print each digit found in a call as a JSON line: digit, start_ms, end_ms (input timeline).

use crate::args::*;
use crate::common::*;
use anyhow::{Context, Result};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tonemask_harness::capture::{self, Capture};
use tonemask_harness::files::{open_input, Input};
use tonemask_harness::packets::{run_capture_into, CaptureOptions, Discard};
use tonemask_harness::plugin::{CallSettings, MaskMode, Plugin};
use tonemask_harness::run::{event_json, run_stream, Audio, Options};
use tonemask_harness::wav::Wav;

/// Arguments of `tonemask detect`.
#[derive(clap::Args)]
pub struct Args {
    /// Call recording (WAV) or capture (pcap, pcapng)
    call: PathBuf,
    #[command(flatten)]
    tuning: Tuning,
    #[command(flatten)]
    rtp: RtpArgs,
}

/// Runs `tonemask detect`; returns the exit status.
pub fn execute(plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    let Args { call, tuning, rtp } = args;
    let input = open_input(&call)?;
    let plugin = load_plugin(plugin)?;
    let wav;
    let audio: Audio = match input {
        Input::Wav(reader) => reader.into(),
        Input::Capture(bytes) => {
            return detect_capture(&plugin, bytes, &call, &tuning, &rtp);
        }
        Input::Bytes(bytes) => {
            wav = Wav::from_file_bytes(bytes).with_context(|| call.display().to_string())?;
            (&wav).into()
        }
    };
    let opts = Options::for_file(detect_settings(&tuning));
    let progress = progress_for(audio.seconds(), "detect");
    let mut inst = plugin.instantiate()?;
    // Only the digits are wanted: the masked audio goes nowhere.
    let out = run_stream(&mut inst, audio, &opts, None, None, progress)?;
    let mut lines = Lines::stdout();
    for e in &out.events {
        lines.print(&event_json(e))?;
    }
    Ok(0)
}

/// Standard output, one JSON line per digit. When its reader goes away (`… | head -1`) the
/// lines stop quietly: the run itself is whole, and its exit status stands.
struct Lines {
    out: std::io::StdoutLock<'static>,
    closed: bool,
}

impl Lines {
    fn stdout() -> Lines {
        Lines {
            out: std::io::stdout().lock(),
            closed: false,
        }
    }

    fn print(&mut self, line: &impl std::fmt::Display) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match writeln!(self.out, "{line}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            r => r.context("cannot write the digits to standard output"),
        }
    }
}

/// A capture: the digits of every stream, each line with its direction and addresses.
fn detect_capture(
    plugin: &Plugin,
    bytes: capture::Bytes,
    call: &Path,
    tuning: &Tuning,
    rtp: &RtpArgs,
) -> Result<i32> {
    let cap = Capture::parse_bytes(bytes).with_context(|| call.display().to_string())?;
    warn_truncated(&cap, call);
    let opts = CaptureOptions {
        settings: detect_settings(tuning),
        fallback: rtp.fallback(),
        capture: None,
    };
    // Only the digits are wanted: the masked frames go nowhere (none is kept).
    let out = run_capture_into(plugin, &cap, &opts, None, &mut Discard)?;
    let mut lines = Lines::stdout();
    for s in &out.streams {
        for e in &s.events {
            let mut j = event_json(e);
            j["direction"] = s.direction.name().into();
            j["src"] = s.src.to_string().into();
            j["dst"] = s.dst.to_string().into();
            lines.print(&j)?;
        }
    }
    Ok(report_streams(&out))
}

/// Settings for `detect`: nothing replaced, unsigned, the default look-ahead (as `mask`
/// uses, so both commands see the same audio the same way).
fn detect_settings(tuning: &Tuning) -> CallSettings {
    CallSettings {
        mask_mode: MaskMode::Off,
        twist: tuning.twist.into(),
        ..tonemask_harness::plugin::default_settings("detect")
    }
}
