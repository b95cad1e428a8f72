//! Helpers every command uses: reading inputs, writing outputs, exit statuses, reports.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use tonemask_harness::capture::Capture;
use tonemask_harness::files;
use tonemask_harness::packets::CaptureOutcome;
use tonemask_harness::plugin::{Limits, Plugin};

pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    tonemask_harness::files::read_input(path)
}

pub fn warn_truncated(cap: &Capture, path: &Path) {
    if cap.truncated {
        eprintln!(
            "tonemask: warning: {} ends inside a record; using the {} frames before it",
            path.display(),
            cap.frames.len()
        );
    }
}

/// Exit statuses (besides 0, 1 for an error — nothing written — and 2 for a usage error):
/// 3 when digits went towards the caller (a security signal), 4 when frames or packets that
/// may have carried audio had to be dropped, 5 for both.
pub fn exit_status(towards_caller: bool, audio_dropped: bool) -> i32 {
    match (towards_caller, audio_dropped) {
        (false, false) => 0,
        (true, false) => 3,
        (false, true) => 4,
        (true, true) => 5,
    }
}

/// Per-stream notes on stderr: what was found, refused packets, frames dropped, and digits
/// going towards the caller (a security signal). Returns the exit status they call for.
pub fn report_streams(out: &CaptureOutcome) -> i32 {
    if out.streams.is_empty() {
        eprintln!("tonemask: warning: no RTP stream found in the capture");
    }
    for s in &out.streams {
        eprintln!(
            "tonemask: {} → {}{} ({}): {} packets, {} digit(s), {} event packet(s) dropped, {} replaced by audio",
            s.src,
            s.dst,
            if s.flows > 1 { format!(" and {} more flow(s)", s.flows - 1) } else { String::new() },
            s.direction.name(),
            s.stats.received,
            s.events.len(),
            s.stats.events_dropped,
            s.stats.events_replaced
        );
        if s.dropped() > 0 {
            eprintln!(
                "tonemask: warning: {} packet(s) dropped ({} malformed, {} on an unannounced payload type, {} of a foreign SSRC, {} late, {} not returned by the masker): {}",
                s.dropped(),
                s.stats.malformed,
                s.stats.unknown_pt,
                s.stats.foreign_ssrc,
                s.stats.late,
                s.stats.unprocessed,
                s.refused.join("; ")
            );
        }
        if let Some(trap) = &s.trap {
            eprintln!(
                "tonemask: ALARM: the plugin trapped on {} → {}; {} packet(s) of that stream were dropped, not copied ({trap})",
                s.src, s.dst, s.trap_dropped
            );
        }
        if !s.direction.masked() && !s.events.is_empty() {
            eprintln!(
                "tonemask: SECURITY: {} DTMF digit(s) sent towards the caller on {} → {} — tones injected on the agent side?",
                s.events.len(),
                s.src,
                s.dst
            );
        }
    }
    if !out.dropped.is_empty() {
        let reasons: Vec<String> = out
            .dropped
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        eprintln!(
            "tonemask: warning: frames left out of the output: {}",
            reasons.join(", ")
        );
    }
    if out.audio_dropped() > 0 {
        eprintln!(
            "tonemask: warning: {} frame(s) or packet(s) that may have carried audio were dropped, not copied (exit status 4)",
            out.audio_dropped()
        );
    }
    exit_status(!out.agent_digits().is_empty(), out.audio_dropped() > 0)
}

/// Progress on stderr (when it is a terminal) for recordings longer than a minute.
pub fn progress_for(seconds: f64, what: &str) -> impl FnMut(f64) {
    use std::io::IsTerminal as _;
    let long = seconds > 60.0 && std::io::stderr().is_terminal();
    let what = what.to_string();
    let mut last = -1i64;
    move |f: f64| {
        let tenth = (f * 10.0) as i64;
        if long && tenth != last {
            last = tenth;
            eprint!("\r{what}: {:3}%", tenth * 10);
            if tenth >= 10 {
                eprintln!();
            }
        }
    }
}

/// Writes an output that holds no digit (masked audio, reports), all or nothing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    files::write_atomic(path, bytes, files::PUBLIC)
}

/// Writes signed events (they carry digits): owner-only, all or nothing.
pub fn write_events(path: &Path, bytes: &[u8]) -> Result<()> {
    files::write_atomic(path, bytes, files::PRIVATE)
}

/// A number of seconds from the command line: positive, finite, at most a year.
/// A flag set by SIGTERM, SIGINT or SIGHUP (a closed terminal): the long-running commands
/// end their calls on it as they would at their natural end — delayed packets sent, events
/// delivered — instead of dying mid-call by the signals' default action.
pub fn stop_on_signals() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))
            .map_err(|e| anyhow::anyhow!("installing the signal handler: {e}"))?;
    }
    Ok(stop)
}

pub fn seconds(s: f64, what: &str) -> Result<std::time::Duration> {
    const YEAR: f64 = 365.0 * 86_400.0;
    if s.is_finite() && s > 0.0 && s <= YEAR {
        Ok(std::time::Duration::from_secs_f64(s))
    } else {
        bail!("{what} must be a number of seconds above 0 and at most {YEAR} (got {s})")
    }
}

/// Refuses an events path that is the input or the output of the same run.
pub fn check_events_path(events: &Path, others: &[&Path]) -> Result<()> {
    for o in others {
        if same_file(events, o) || events == *o {
            bail!(
                "the events file {} is also {}; choose another path",
                events.display(),
                o.display()
            );
        }
    }
    Ok(())
}

pub fn load_plugin(cli_path: Option<PathBuf>) -> Result<Plugin> {
    let path = cli_path.unwrap_or_else(tonemask_harness::default_plugin_path);
    Plugin::load(&path, Limits::default())
}

pub fn clip(s: &str) -> String {
    if s.chars().count() > 18 {
        format!("{}…", s.chars().take(17).collect::<String>())
    } else {
        s.to_string()
    }
}

pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
