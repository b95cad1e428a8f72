//! `tonemask mask`: write a copy of a call with every DTMF tone replaced, plus its signed digit events.

use crate::args::*;
use crate::common::*;
use anyhow::{bail, Context, Result};
use clap::ValueEnum as _;
use std::path::{Path, PathBuf};
use tonemask_harness::capture::{self, Capture, PcapOut};
use tonemask_harness::files::{self, open_input, AtomicFile, Input};
use tonemask_harness::keys::KeyRing;
use tonemask_harness::packets::{run_capture_into, CaptureOptions, FrameSink};
use tonemask_harness::plugin::{CallSettings, Plugin};
use tonemask_harness::run::{run_stream, Audio, Options};
use tonemask_harness::wav::{self, Wav};

/// Arguments of `tonemask mask`.
#[derive(clap::Args)]
pub struct Args {
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
}

/// Where a run reads and writes.
struct Paths {
    input: PathBuf,
    output: PathBuf,
    events: PathBuf,
}

/// Runs `tonemask mask`; returns the exit status.
pub fn execute(plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    let Args {
        input,
        output,
        key,
        events,
        call,
        rtp,
    } = args;
    let settings = call.settings()?;
    if same_file(&input, &output) {
        bail!(
            "output {} is the input file; choose another path",
            output.display()
        );
    }
    let keys = KeyRing::load(&key)?;
    let opened = open_input(&input)?;
    let plugin = load_plugin(plugin)?;
    let events = events.unwrap_or_else(|| output.with_extension("events.jsonl"));
    check_events_path(&events, &[&input, &output])?;
    let paths = Paths {
        input,
        output,
        events,
    };
    let wav;
    let audio: Audio = match opened {
        Input::Wav(reader) => reader.into(),
        Input::Capture(bytes) => {
            let opts = CaptureOptions {
                settings,
                fallback: rtp.fallback(),
                capture: None,
            };
            return mask_capture(&plugin, bytes, &opts, &keys, &paths);
        }
        Input::Bytes(bytes) => {
            wav = Wav::from_file_bytes(bytes).with_context(|| paths.input.display().to_string())?;
            (&wav).into()
        }
    };
    mask_wav(&plugin, audio, settings, &call, &keys, &paths)
}

/// The masked capture's pcap, a failure to write it naming the file.
struct NamedPcap<'a, W: std::io::Write> {
    pcap: PcapOut<W>,
    path: &'a Path,
}

impl<W: std::io::Write> FrameSink for NamedPcap<'_, W> {
    fn put(&mut self, frame: capture::Frame) -> Result<()> {
        let written = self.pcap.put(frame);
        written.with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn put_with_payload(
        &mut self,
        frame: &capture::Frame,
        dg: &capture::Datagram<'_>,
        payload: &[u8],
        ts: std::time::Duration,
    ) -> Result<()> {
        let written = self.pcap.put_with_payload(frame, dg, payload, ts);
        written.with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// A capture: every caller→agent stream masked, written back as pcap.
fn mask_capture(
    plugin: &Plugin,
    bytes: capture::Bytes,
    opts: &CaptureOptions,
    keys: &KeyRing,
    paths: &Paths,
) -> Result<i32> {
    let cap = Capture::parse_bytes(bytes).with_context(|| paths.input.display().to_string())?;
    warn_truncated(&cap, &paths.input);
    let mut file = AtomicFile::create(&paths.output, files::PUBLIC)?;
    let mut pcap = NamedPcap {
        pcap: PcapOut::new(&mut file),
        path: &paths.output,
    };
    let out = run_capture_into(plugin, &cap, opts, Some(keys), &mut pcap)?;
    let cannot = || format!("cannot write {}", paths.output.display());
    pcap.pcap.finish().with_context(cannot)?;
    let masked: Vec<_> = out
        .streams
        .iter()
        .filter(|s| s.direction.masked())
        .collect();
    let digits: usize = masked.iter().map(|s| s.events.len()).sum();
    let lines: String = masked.iter().map(|s| s.signed_lines()).collect();
    file.commit()?;
    write_events(&paths.events, lines.as_bytes())?;
    eprintln!(
        "tonemask: {} digit(s) masked in {} stream(s) → {}; events → {}",
        digits,
        out.streams.len(),
        paths.output.display(),
        paths.events.display()
    );
    Ok(report_streams(&out))
}

/// A WAV recording: written in its own format, aligned with the input, as it is masked
/// (the output file appears only once it is whole).
fn mask_wav(
    plugin: &Plugin,
    audio: Audio<'_>,
    settings: CallSettings,
    call: &CallArgs,
    keys: &KeyRing,
    paths: &Paths,
) -> Result<i32> {
    let opts = Options::for_file(settings);
    let mut inst = plugin.instantiate()?;
    let mut file = AtomicFile::create(&paths.output, files::PUBLIC)?;
    let len = audio.len;
    file.append(&wav::header(audio.format, audio.sample_rate, len))?;
    let progress = progress_for(audio.seconds(), "mask");
    let out = run_stream(
        &mut inst,
        audio,
        &opts,
        Some(keys),
        Some(&mut |masked: &[u8]| file.append(masked)),
        progress,
    )?;
    file.append(wav::padding(len))?;
    file.commit()?;
    let lines = out.signed_lines();
    write_events(&paths.events, lines.as_bytes())?;
    let leaked: u64 = out.events.iter().map(|e| e.leaked_samples).sum();
    eprintln!(
        "tonemask: {} digit(s) masked ({} mode, look-ahead {} ms) → {}; events → {}",
        out.events.len(),
        call.mode
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default(),
        call.lookahead_ms,
        paths.output.display(),
        paths.events.display()
    );
    if leaked > 0 {
        eprintln!(
            "tonemask: warning: {leaked} tone samples were already out before detection; raise --lookahead-ms (the default, {}, gives zero leak)",
            tonemask_core::DEFAULT_LOOKAHEAD_MS
        );
    }
    Ok(0)
}
