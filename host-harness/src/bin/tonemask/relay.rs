//! `tonemask relay`: relay a live call's RTP: mask DTMF caller→agent, watch agent→caller.

use crate::args::*;
use crate::common::*;
use anyhow::Result;
use std::path::PathBuf;
use tonemask_harness::keys::KeyRing;
use tonemask_harness::relay::{run_relay, RelayConfig};

/// Arguments of `tonemask relay`.
#[derive(clap::Args)]
pub struct Args {
    /// Local address the caller sends RTP to
    #[arg(long, value_name = "ADDR")]
    caller_bind: std::net::SocketAddr,
    /// Local address the agent sends RTP to
    #[arg(long, value_name = "ADDR")]
    agent_bind: std::net::SocketAddr,
    /// Where the agent receives RTP
    #[arg(long, value_name = "ADDR")]
    agent: std::net::SocketAddr,
    /// Where the caller receives RTP, and the only source taken from it [default: the
    /// source of its first valid RTP packet, latched]
    #[arg(long, value_name = "ADDR")]
    caller: Option<std::net::SocketAddr>,
    /// The only source taken on the agent side [default: the first source on --agent's IP
    /// address that sends a valid RTP packet, latched]
    #[arg(long, value_name = "ADDR")]
    agent_source: Option<std::net::SocketAddr>,
    #[command(flatten)]
    sink: SinkArgs,
    /// Stop once both directions have been this many seconds without packets
    #[arg(long, default_value_t = 5.0, value_name = "S")]
    idle_s: f64,
    /// Stop after this many seconds in any case
    #[arg(long, value_name = "S")]
    max_s: Option<f64>,
    #[command(flatten)]
    call: CallArgs,
    #[command(flatten)]
    rtp: RtpArgs,
}

/// Runs `tonemask relay`; returns the exit status.
pub fn execute(plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    let Args {
        caller_bind,
        agent_bind,
        agent,
        caller,
        agent_source,
        sink,
        idle_s,
        max_s,
        call,
        rtp,
    } = args;
    sink.check()?;
    let settings = call.settings_or(Digits::Hidden)?;
    let keys = KeyRing::load(&sink.key)?;
    let plugin = load_plugin(plugin)?;
    let cfg = RelayConfig {
        caller_bind,
        agent_bind,
        agent,
        caller,
        agent_source,
        types: rtp.fallback(),
        agent_types: None,
        settings,
        events_file: sink.events,
        events_url: sink.events_url,
        dtmf_log_dest: sink.dtmf_log_dest,
        live: Vec::new(),
        caller_hint: None,
        idle: seconds(idle_s, "--idle-s")?,
        max_duration: max_s.map(|s| seconds(s, "--max-s")).transpose()?,
        mask_both: false,
    };
    // A signal ends the call as going idle does, and the summary is still printed.
    let summary = run_relay(&plugin, &cfg, &keys, Some(stop_on_signals()?))?;
    let (up, down) = (summary.caller_to_agent, summary.agent_to_caller);
    eprintln!(
        "tonemask relay: caller→agent {} packets in, {} out, {} event packet(s) dropped, {} replaced by audio, {} digit(s); agent→caller {} in, {} out, {} digit(s)",
        up.received,
        up.forwarded,
        up.events_dropped,
        up.events_replaced,
        summary.digits.len(),
        down.received,
        down.forwarded,
        summary.agent_digits.len()
    );
    let dropped = summary.caller_audio_dropped();
    if dropped > 0 || summary.agent_foreign_sources > 0 {
        eprintln!(
            "tonemask relay: warning: dropped caller→agent: {} malformed, {} on an unannounced payload type, {} of a foreign SSRC, {} late, {} not returned by the masker, {} from another source; agent→caller: {} from another source",
            up.malformed,
            up.unknown_pt,
            up.foreign_ssrc,
            up.late,
            up.unprocessed,
            summary.caller_foreign_sources,
            summary.agent_foreign_sources
        );
    }
    for (side, trap) in [
        ("caller→agent", &summary.caller_trap),
        ("agent→caller", &summary.agent_trap),
    ] {
        if let Some(t) = trap {
            eprintln!(
                "tonemask relay: ALARM: the plugin trapped on {side}; that direction's packets were dropped from then on ({} caller packet(s)): {t}",
                summary.caller_trap_dropped
            );
        }
    }
    if summary.undelivered > 0 {
        eprintln!(
            "tonemask relay: warning: {} event(s) not delivered over HTTP",
            summary.undelivered
        );
    }
    Ok(exit_status(!summary.agent_digits.is_empty(), dropped > 0))
}
