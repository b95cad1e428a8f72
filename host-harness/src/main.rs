//! `tonemask`: run the tonemask DTMF-masking plugin on call recordings, inside wasmtime.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use tonemask_core::Record;
use tonemask_harness::capture::{self, Capture};
use tonemask_harness::files;
use tonemask_harness::keys::{self, KeyRing};
use tonemask_harness::packets::{run_capture, CaptureOptions, CaptureOutcome};
use tonemask_harness::plugin::{CallSettings, EventPayload, Limits, MaskMode, Plugin, Twist};
use tonemask_harness::relay::{run_relay, RelayConfig};
use tonemask_harness::replay;
use tonemask_harness::run::{event_json, run, signed_lines, Options};
use tonemask_harness::sdp::PayloadTypes;
use tonemask_harness::verify::verify_file;
use tonemask_harness::wav::Wav;

/// Detect and mask DTMF key tones in call audio with the tonemask WebAssembly plugin.
///
/// Every command loads the plugin component (built by `cargo xtask plugin`) into wasmtime
/// with time and memory limits per call, exactly as a PBX or SBC host would.
/// Calls: mono WAV, 16-bit PCM (8 or 16 kHz), µ-law or A-law (8 kHz); or packet captures
/// (pcap, pcapng: Ethernet, Linux cooked, raw IP; IPv4/IPv6; RTP over UDP), whose SIP
/// signalling tells the payload types and which stream is the caller's.
#[derive(Parser)]
#[command(name = "tonemask", version)]
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
    Detect {
        /// Call recording (WAV) or capture (pcap, pcapng)
        call: PathBuf,
        #[command(flatten)]
        tuning: Tuning,
        #[command(flatten)]
        rtp: RtpArgs,
    },
    /// Write a copy of a call with every DTMF tone replaced, plus its signed digit events
    ///
    /// The output has the input's format and length and lines up with it sample for sample;
    /// audio outside the tones is bit-identical. Events go to OUT with `.events.jsonl` in place
    /// of its extension, one signed envelope per line (see README: event format).
    ///
    /// A capture is written back as pcap with every caller→agent RTP packet as the plugin
    /// forwards it (tones masked, telephone-events dropped), everything else unchanged.
    Mask {
        /// Call recording (WAV) or capture (pcap, pcapng)
        input: PathBuf,
        /// Masked copy to write (WAV, or pcap for a capture)
        output: PathBuf,
        /// Key file that signs the events (`KEY-ID HEX-KEY` lines; see `tonemask keygen`)
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// Where to write the events [default: OUTPUT with .events.jsonl]
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        #[command(flatten)]
        call: CallArgs,
        #[command(flatten)]
        rtp: RtpArgs,
    },
    /// Replay test calls (manifests, or directories of them) and check the expected digits
    ///
    /// Prints a pass/fail table, writes report.json and junit.xml, exits 1 on any failure.
    Replay {
        /// Manifest files (NAME.json) or directories holding them
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Directory for report.json and junit.xml
        #[arg(long, default_value = "target/replay", value_name = "DIR")]
        report_dir: PathBuf,
    },
    /// Relay a live call's RTP: mask DTMF caller→agent, watch agent→caller
    ///
    /// The caller sends its RTP to --caller-bind and the agent to --agent-bind (point each
    /// side's SDP there). Caller→agent packets leave towards --agent masked and without
    /// telephone-events; their signed events go to --events and/or --events-url as each
    /// press completes. Agent→caller packets pass unchanged; digits in them are reported on
    /// stderr as a security signal. Each side's source is latched from its first valid RTP
    /// packet (or given); packets from other sources are dropped. Ends when both directions
    /// have been idle for --idle-s (or after --max-s), then sends what is still delayed.
    /// Exit status 3 when digits were seen towards the caller, 4 when caller audio had to be
    /// dropped, 5 for both.
    Relay {
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
        /// Key file that signs the events
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// Append signed events to this file (one line each; created owner-only)
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// POST each signed event to this local collector (http://127.0.0.1:PORT/PATH)
        #[arg(long, value_name = "URL")]
        events_url: Option<String>,
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
    },
    /// Verify a file of signed digit events: MACs, key ids, replays, order, gaps, ends
    ///
    /// Exits 0 only when the file is whole: at least one record, every line accepted, no
    /// sequence gap, no call spliced from two sessions, and every call closed by its signed
    /// end-of-call record with all its digits present. Digits are shown as `*` unless
    /// --show-digits is given.
    Verify {
        /// Events file (one envelope per line, at most 4096 bytes each)
        events: PathBuf,
        /// Key file holding the key(s) the events may be signed with
        #[arg(long, value_name = "KEYFILE")]
        key: PathBuf,
        /// Print the digits (they may be card data)
        #[arg(long)]
        show_digits: bool,
    },
    /// Write a new key file with one random 256-bit key (owner-only), or print it
    Keygen {
        /// Key id
        #[arg(long, default_value = "k1")]
        kid: String,
        /// Key file to create (mode 0600; an existing file is not overwritten) [default:
        /// print to stdout — then `chmod 600` the file it goes to]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// The call's settings, as every command that masks takes them (one place; mirrored from
/// the plugin's `call-settings`).
#[derive(clap::Args)]
struct CallArgs {
    /// What replaces each tone
    #[arg(long, value_enum, default_value_t = Mode::Silence)]
    mode: Mode,
    /// Look-ahead in ms: audio (on RTP, each caller→agent packet) is delayed this long so a
    /// tone is masked from its first sample (0–500)
    #[arg(long, default_value_t = tonemask_core::DEFAULT_LOOKAHEAD_MS, value_name = "MS")]
    lookahead_ms: u32,
    /// Call id written into each event [default: `call-` and 16 random hex digits, new for
    /// every run, so that two runs' events never pass for one call]
    #[arg(long, value_name = "ID")]
    call_id: Option<String>,
    #[command(flatten)]
    tuning: Tuning,
}

impl CallArgs {
    /// The plugin's settings (unsigned: the key is set per session).
    fn settings(&self) -> Result<CallSettings> {
        Ok(CallSettings {
            call_id: self.call_id.clone().map_or_else(fresh_call_id, Ok)?,
            lookahead_ms: self.lookahead_ms,
            mask_mode: self.mode.into(),
            twist: self.tuning.twist.into(),
            key: None,
        })
    }
}

#[derive(clap::Args)]
struct Tuning {
    /// Twist limits per administration
    #[arg(long, value_enum, default_value_t = Preset::Att)]
    twist: Preset,
}

/// Payload types for captures whose SIP signalling is not in the file.
#[derive(clap::Args)]
struct RtpArgs {
    /// Telephone-event payload type (8000 Hz) of streams the capture's SDP does not describe
    #[arg(long, value_name = "PT", value_parser = clap::value_parser!(u8).range(0..=127))]
    event_pt: Option<u8>,
    /// RED payload type of streams the capture's SDP does not describe
    #[arg(long, value_name = "PT", value_parser = clap::value_parser!(u8).range(0..=127))]
    red_pt: Option<u8>,
}

impl RtpArgs {
    fn fallback(&self) -> PayloadTypes {
        PayloadTypes {
            telephone_event: self.event_pt.map(|pt| EventPayload {
                pt,
                clock_rate: 8000,
            }),
            red: self.red_pt,
            ..PayloadTypes::static_only()
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Preset {
    /// Q.24 AT&T: 8 dB normal, 4 dB reverse
    Att,
    /// ETSI: 6 dB
    Etsi,
    /// NTT: 5 dB
    Ntt,
    /// Australia: 10 dB
    Australia,
    /// Brazil: 9 dB
    Brazil,
}

impl From<Preset> for Twist {
    fn from(p: Preset) -> Twist {
        match p {
            Preset::Att => Twist::Att,
            Preset::Etsi => Twist::Etsi,
            Preset::Ntt => Twist::Ntt,
            Preset::Australia => Twist::Australia,
            Preset::Brazil => Twist::Brazil,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// Digital silence
    Silence,
    /// A neutral 400 Hz tone (the agent hears that a key was pressed, not which)
    Tone,
    /// Comfort noise
    Noise,
    /// Detect only, change nothing
    Off,
}

impl From<Mode> for MaskMode {
    fn from(m: Mode) -> MaskMode {
        match m {
            Mode::Silence => MaskMode::Silence,
            Mode::Tone => MaskMode::Tone,
            Mode::Noise => MaskMode::Noise,
            Mode::Off => MaskMode::Off,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tonemask: error: {e:#}");
            std::process::exit(1);
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    tonemask_harness::files::read_input(path)
}

fn warn_truncated(cap: &Capture, path: &Path) {
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
fn exit_status(towards_caller: bool, audio_dropped: bool) -> i32 {
    match (towards_caller, audio_dropped) {
        (false, false) => 0,
        (true, false) => 3,
        (false, true) => 4,
        (true, true) => 5,
    }
}

/// Per-stream notes on stderr: what was found, refused packets, frames dropped, and digits
/// going towards the caller (a security signal). Returns the exit status they call for.
fn report_streams(out: &CaptureOutcome) -> i32 {
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
fn progress_for(wav: &Wav, what: &str) -> impl FnMut(f64) {
    use std::io::IsTerminal as _;
    let long = wav.seconds() > 60.0 && std::io::stderr().is_terminal();
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
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    files::write_atomic(path, bytes, files::PUBLIC)
}

/// Writes signed events (they carry digits): owner-only, all or nothing.
fn write_events(path: &Path, bytes: &[u8]) -> Result<()> {
    files::write_atomic(path, bytes, files::PRIVATE)
}

/// A call id of its own for this run: `call-` and 16 random hex digits.
/// Settings for `detect`: nothing replaced, unsigned, the default look-ahead (as `mask`
/// uses, so both commands see the same audio the same way).
fn detect_settings(tuning: &Tuning) -> CallSettings {
    CallSettings {
        mask_mode: MaskMode::Off,
        twist: tuning.twist.into(),
        ..tonemask_harness::plugin::default_settings("detect")
    }
}

fn fresh_call_id() -> Result<String> {
    let r = keys::random_bytes::<8>("a call id")?;
    Ok(format!("call-{}", hex::encode(r)))
}

/// A number of seconds from the command line: positive, finite, at most a year.
fn seconds(s: f64, what: &str) -> Result<std::time::Duration> {
    const YEAR: f64 = 365.0 * 86_400.0;
    if s.is_finite() && s > 0.0 && s <= YEAR {
        Ok(std::time::Duration::from_secs_f64(s))
    } else {
        bail!("{what} must be a number of seconds above 0 and at most {YEAR} (got {s})")
    }
}

/// Refuses an events path that is the input or the output of the same run.
fn check_events_path(events: &Path, others: &[&Path]) -> Result<()> {
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

fn load_plugin(cli_path: Option<PathBuf>) -> Result<Plugin> {
    let path = cli_path.unwrap_or_else(tonemask_harness::default_plugin_path);
    Plugin::load(&path, Limits::default())
}

fn real_main(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Detect { call, tuning, rtp } => {
            let bytes = read_file(&call)?;
            let plugin = load_plugin(cli.plugin)?;
            let mut inst = plugin.instantiate()?;
            if capture::is_capture(&bytes) {
                let cap = Capture::parse(&bytes).with_context(|| call.display().to_string())?;
                warn_truncated(&cap, &call);
                let opts = CaptureOptions {
                    settings: detect_settings(&tuning),
                    fallback: rtp.fallback(),
                };
                let out = run_capture(&plugin, &cap, &opts, None)?;
                let mut stdout = std::io::stdout().lock();
                for s in &out.streams {
                    for e in &s.events {
                        let mut j = event_json(e);
                        j["direction"] = s.direction.name().into();
                        j["src"] = s.src.to_string().into();
                        j["dst"] = s.dst.to_string().into();
                        writeln!(stdout, "{j}")?;
                    }
                }
                return Ok(report_streams(&out));
            }
            let wav = Wav::parse(&bytes).with_context(|| call.display().to_string())?;
            let opts = Options {
                settings: detect_settings(&tuning),
                ..Options::default()
            };
            let out = run(&mut inst, &wav, &opts, None, progress_for(&wav, "detect"))?;
            let mut stdout = std::io::stdout().lock();
            for e in &out.events {
                writeln!(stdout, "{}", event_json(e))?;
            }
            Ok(0)
        }
        Command::Mask {
            input,
            output,
            key,
            events,
            call,
            rtp,
        } => {
            let settings = call.settings()?;
            if same_file(&input, &output) {
                bail!(
                    "output {} is the input file; choose another path",
                    output.display()
                );
            }
            let keys = KeyRing::load(&key)?;
            let bytes = read_file(&input)?;
            let plugin = load_plugin(cli.plugin)?;
            let mut inst = plugin.instantiate()?;
            let events_path = events.unwrap_or_else(|| output.with_extension("events.jsonl"));
            check_events_path(&events_path, &[&input, &output])?;
            if capture::is_capture(&bytes) {
                let cap = Capture::parse(&bytes).with_context(|| input.display().to_string())?;
                warn_truncated(&cap, &input);
                let opts = CaptureOptions {
                    settings,
                    fallback: rtp.fallback(),
                };
                let out = run_capture(&plugin, &cap, &opts, Some(&keys))?;
                let masked: Vec<_> = out
                    .streams
                    .iter()
                    .filter(|s| s.direction.masked())
                    .collect();
                let digits: usize = masked.iter().map(|s| s.events.len()).sum();
                let lines: String = masked.iter().map(|s| s.signed_lines()).collect();
                write_atomic(&output, &capture::write_pcap(&out.masked)?)?;
                write_events(&events_path, lines.as_bytes())?;
                eprintln!(
                    "tonemask: {} digit(s) masked in {} stream(s) → {}; events → {}",
                    digits,
                    out.streams.len(),
                    output.display(),
                    events_path.display()
                );
                return Ok(report_streams(&out));
            }
            let wav = Wav::parse(&bytes).with_context(|| input.display().to_string())?;
            let opts = Options {
                settings,
                ..Options::default()
            };
            let out = run(
                &mut inst,
                &wav,
                &opts,
                Some(&keys),
                progress_for(&wav, "mask"),
            )?;
            let lines = signed_lines(&out.events, out.end_record.as_deref());
            write_atomic(&output, &out.masked.to_bytes())?;
            write_events(&events_path, lines.as_bytes())?;
            let leaked: u64 = out.events.iter().map(|e| e.leaked_samples).sum();
            eprintln!(
                "tonemask: {} digit(s) masked ({} mode, look-ahead {} ms) → {}; events → {}",
                out.events.len(),
                call.mode
                    .to_possible_value()
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default(),
                call.lookahead_ms,
                output.display(),
                events_path.display()
            );
            if leaked > 0 {
                eprintln!(
                    "tonemask: warning: {leaked} tone samples were already out before detection; raise --lookahead-ms (the default, {}, gives zero leak)",
                    tonemask_core::DEFAULT_LOOKAHEAD_MS
                );
            }
            Ok(0)
        }
        Command::Replay { paths, report_dir } => {
            let manifests = replay::manifests(&paths)?;
            if manifests.is_empty() {
                bail!("no manifests (*.json) found in the given paths");
            }
            let plugin = load_plugin(cli.plugin)?;
            println!(
                "{:<44} {:<16} {:>6}  {:<18} {:<18} {:<10} result",
                "call", "format", "sec", "expected", "detected", "in masked"
            );
            let mut results = Vec::new();
            for m in &manifests {
                let r = replay::replay_one(&plugin, m);
                let name = m
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                println!(
                    "{:<44} {:<16} {:>6.1}  {:<18} {:<18} {:<10} {}",
                    name,
                    r.format,
                    r.seconds,
                    clip(&r.expected),
                    clip(&r.detected),
                    if r.in_masked.is_empty() {
                        "none".to_string()
                    } else {
                        clip(&r.in_masked)
                    },
                    if r.passed() { "PASS" } else { "FAIL" }
                );
                for f in &r.failures {
                    println!("    - {f}");
                }
                results.push(r);
            }
            std::fs::create_dir_all(&report_dir)
                .with_context(|| format!("cannot create {}", report_dir.display()))?;
            write_atomic(
                &report_dir.join("report.json"),
                serde_json::to_string_pretty(&results)?.as_bytes(),
            )?;
            write_atomic(
                &report_dir.join("junit.xml"),
                replay::junit(&results).as_bytes(),
            )?;
            let failed = results.iter().filter(|r| !r.passed()).count();
            let audio: f64 = results.iter().map(|r| r.seconds).sum();
            let wall: f64 = results.iter().map(|r| r.wall_seconds).sum();
            println!(
                "replay: {} passed, {failed} failed; {audio:.1} s of audio in {wall:.2} s; reports in {}",
                results.len() - failed,
                report_dir.display()
            );
            Ok(if failed == 0 { 0 } else { 1 })
        }
        Command::Relay {
            caller_bind,
            agent_bind,
            agent,
            caller,
            agent_source,
            key,
            events,
            events_url,
            idle_s,
            max_s,
            call,
            rtp,
        } => {
            if events.is_none() && events_url.is_none() {
                bail!("say where the signed events go: --events FILE and/or --events-url URL");
            }
            let settings = call.settings()?;
            let keys = KeyRing::load(&key)?;
            let plugin = load_plugin(cli.plugin)?;
            let cfg = RelayConfig {
                caller_bind,
                agent_bind,
                agent,
                caller,
                agent_source,
                types: rtp.fallback(),
                settings,
                events_file: events,
                events_url,
                idle: seconds(idle_s, "--idle-s")?,
                max_duration: max_s.map(|s| seconds(s, "--max-s")).transpose()?,
            };
            let summary = run_relay(&plugin, &cfg, &keys)?;
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
        Command::Verify {
            events,
            key,
            show_digits,
        } => {
            let keys = KeyRing::load(&key)?;
            let report = verify_file(&keys, &events)?;
            let mut digits = 0;
            for v in &report.lines {
                match &v.result {
                    Ok(ok) => {
                        if let Some((a, b)) = ok.gap {
                            println!(
                                "line {}: GAP  call {} is missing seq {a}..={b}",
                                v.line,
                                ok.record.ids().1
                            );
                        }
                        match &ok.record {
                            Record::Digit(e) => {
                                digits += 1;
                                let d = if show_digits { e.digit.to_char() } else { '*' };
                                println!(
                                    "line {}: OK   call {} seq {} digit {d}",
                                    v.line, e.call, e.seq
                                );
                            }
                            Record::End(e) => println!(
                                "line {}: END  call {} seq {}: {} digit(s) sent",
                                v.line, e.call, e.seq, e.digits
                            ),
                        }
                    }
                    Err(e) => println!("line {}: REJECTED  {e}", v.line),
                }
            }
            for u in &report.unfinished {
                println!("NOT WHOLE  {u}");
            }
            if report.lines.is_empty() {
                println!("NOT WHOLE  {} holds no event", events.display());
            }
            println!(
                "verify: {digits} accepted, {} rejected, {} gap(s), {} unfinished call(s) — {}",
                report.rejected(),
                report.gaps(),
                report.unfinished.len(),
                if report.whole() { "whole" } else { "NOT WHOLE" }
            );
            Ok(if report.whole() { 0 } else { 1 })
        }
        Command::Keygen { kid, out } => {
            let text = keys::generate(&kid)?;
            match out {
                Some(path) => {
                    if path.exists() {
                        bail!("{} exists; a key file is never overwritten", path.display());
                    }
                    files::write_atomic(&path, text.as_bytes(), files::PRIVATE)?;
                    eprintln!("tonemask: key {kid} written to {}", path.display());
                }
                None => {
                    print!("{}", *text);
                    use std::io::IsTerminal as _;
                    if !std::io::stdout().is_terminal() {
                        eprintln!("tonemask: keep the key file owner-only (chmod 600): key files others can read are refused");
                    }
                }
            }
            Ok(0)
        }
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 18 {
        format!("{}…", s.chars().take(17).collect::<String>())
    } else {
        s.to_string()
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
