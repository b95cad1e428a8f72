//! `tonemask`: run the tonemask DTMF-masking plugin on call recordings, inside wasmtime.

mod args;
mod capture;
mod common;
mod detect;
mod keygen;
mod mask;
mod open;
mod relay;
mod replay;
mod serve;
mod verify;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;

/// Detect and mask DTMF key tones in call audio with the tonemask WebAssembly plugin.
///
/// Every command loads the plugin component (built by `cargo xtask plugin`) into wasmtime
/// with time and memory limits per call, exactly as a PBX or SBC host would.
/// Calls: mono WAV, 16-bit PCM (8 or 16 kHz), µ-law or A-law (8 kHz); or packet captures
/// (pcap, pcapng: Ethernet, Linux cooked, raw IP; IPv4/IPv6; RTP over UDP), whose SIP
/// signalling tells the payload types and which stream is the caller's.
#[derive(Parser)]
#[command(name = "tonemask", version, args_override_self = true)]
struct Cli {
    /// Plugin component to load [default: $TONEMASK_PLUGIN, else tonemask-plugin.wasm in the
    /// directory above the executable's — never the working directory]
    #[arg(long, global = true, value_name = "WASM")]
    plugin: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print each digit found in a call as a JSON line: digit, start_ms, end_ms (input timeline)
    ///
    /// For a capture, each line also names the stream and its direction; digits on the
    /// agent→caller direction are flagged on stderr (someone injecting tones).
    Detect(detect::Args),
    /// Write a copy of a call with every DTMF tone replaced, plus its signed digit events
    ///
    /// The output has the input's format and length and lines up with it sample for sample;
    /// audio outside the tones is bit-identical. Events go to OUT with `.events.jsonl` in place
    /// of its extension, one signed envelope per line (see README: event format).
    ///
    /// A capture is written back as pcap with every caller→agent RTP packet as the plugin
    /// forwards it (tones masked, telephone-events dropped), everything else unchanged.
    Mask(mask::Args),
    /// Replay test calls (manifests, or directories of them) and check the expected digits
    ///
    /// Prints a pass/fail table, writes report.json and junit.xml, exits 1 on any failure.
    Replay(replay::Args),
    /// Relay a live call's RTP: mask DTMF caller→agent, watch agent→caller
    ///
    /// The caller sends its RTP to --caller-bind and the agent to --agent-bind (point each
    /// side's SDP there). Caller→agent packets leave towards --agent masked and without
    /// telephone-events; their signed events go to --events and/or --events-url as each
    /// press completes. Agent→caller packets pass unchanged; digits in them are reported on
    /// stderr as a security signal. Each side's source is latched from its first valid RTP
    /// packet (or given); packets from other sources are dropped. Ends when both directions
    /// have been idle for --idle-s (or after --max-s, or on SIGTERM, SIGINT or SIGHUP), then
    /// sends what is still delayed.
    /// Exit status 3 when digits were seen towards the caller, 4 when caller audio had to be
    /// dropped, 5 for both.
    Relay(relay::Args),
    /// Serve as a media node that Kamailio and OpenSIPS drive like rtpengine (ng protocol)
    ///
    /// The proxy's rtpengine module sends each call's offer, answer and delete to
    /// --listen-ng. For every call the node takes two media ports on --interface, rewrites
    /// the SDP to them, masks DTMF caller→callee (signed events to --events / --events-url,
    /// with the SIP Call-ID as the call id) and watches callee→caller. Runs until SIGTERM or
    /// SIGINT, then ends every call (delayed packets are sent first).
    Serve(serve::Args),
    /// Verify a file of signed digit events: MACs, key ids, replays, order, gaps, ends
    ///
    /// Exits 0 only when the file is whole: at least one record, every line accepted, no
    /// sequence gap, no call spliced from two sessions, and every call closed by its signed
    /// end-of-call record with all its digits present. Digits are shown as `*` unless
    /// --show-digits is given.
    Verify(verify::Args),
    /// Write a new key file with one random 256-bit key (owner-only), or print it; with
    /// --processor, a payment processor's key pair for sealed cards
    Keygen(keygen::Args),
    /// Run a call in which the caller types a card during a capture the agent starts
    ///
    /// Shows what the agent sees as it happens — the field asked, how many digits, the brand,
    /// valid or invalid and why, the last four of the card — never a digit of the card.
    /// The signed records go to --events; the completed card leaves only sealed (HPKE) to
    /// the processor key. Exits 0 when the card was captured, 1 when not.
    Capture(capture::Args),
    /// Open the sealed cards and digits of a records file with the processor's private key
    ///
    /// The processor's side (test cards only): every line is verified with --key first; each
    /// completed capture is opened under its own call and capture ids, each sealed digit
    /// (`--digits sealed`) under its call and sequence number, and printed. A tampered,
    /// moved or truncated record fails; exits 1 then.
    Open(open::Args),
}

fn main() {
    let args = match serve::expand_config(std::env::args_os().collect(), &Cli::command()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tonemask: error: {e:#}");
            std::process::exit(2);
        }
    };
    let cli = Cli::parse_from(args);
    match real_main(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tonemask: error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn real_main(cli: Cli) -> Result<i32> {
    let plugin = cli.plugin;
    match cli.command {
        Command::Detect(a) => detect::execute(plugin, a),
        Command::Mask(a) => mask::execute(plugin, a),
        Command::Replay(a) => replay::execute(plugin, a),
        Command::Relay(a) => relay::execute(plugin, a),
        Command::Serve(a) => serve::execute(plugin, a),
        Command::Verify(a) => verify::execute(plugin, a),
        Command::Keygen(a) => keygen::execute(plugin, a),
        Command::Capture(a) => capture::execute(plugin, a),
        Command::Open(a) => open::execute(plugin, a),
    }
}
