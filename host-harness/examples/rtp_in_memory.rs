//! The plugin's RTP path without files: the packets of a capture's RTP stream, read from the
//! pcap beforehand, through one RTP session of the plugin in wasmtime — packets in, masked
//! packets out — as a relay drives it, one crossing per packet (the host library's
//! `RtpStream`: each packet at its capture time, the session's timer fired when due, its
//! digit events drained and signed with a fresh key). What `scripts/bench.sh` compares with
//! its "RTP path" row, which also reads, parses and writes the pcap files — and, having the
//! capture's packets at hand, sends 256 frames' worth per crossing.
//!
//! `cargo run --release -p tonemask-harness --example rtp_in_memory -- CAPTURE.pcap [ROUNDS]`
//! prints the best of ROUNDS (default 3) as seconds, the packets and the digit events.

use anyhow::Context;
use tonemask_harness::capture::Capture;
use tonemask_harness::keys::KeyRing;
use tonemask_harness::plugin::{default_settings, CallSettings, Limits, Plugin};
use tonemask_harness::sdp::PayloadTypes;
use tonemask_harness::stream::{Pushed, RtpStream};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: rtp_in_memory CAPTURE.pcap [ROUNDS]")?;
    let rounds: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let wasm =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tonemask-plugin.wasm");
    let plugin = Plugin::load(&wasm, Limits::default())?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
    let capture = Capture::parse_bytes(bytes.into())?;
    let packets: Vec<(u64, Vec<u8>)> = capture
        .frames
        .iter()
        .filter_map(|f| {
            let ms = u64::try_from(f.ts.as_millis()).ok()?;
            Some((ms, f.datagram()?.payload.to_vec()))
        })
        .collect();
    let keys = KeyRing::ephemeral()?;
    let settings = CallSettings {
        key: Some(keys.plugin_key()?),
        ..default_settings("bench")
    };
    let config = PayloadTypes::pcmu().rtp_config(settings);
    let (mut best, mut out, mut events) = (f64::INFINITY, 0, 0);
    for _ in 0..rounds.max(1) {
        let mut stream = RtpStream::open(&plugin, &config)?;
        let started = std::time::Instant::now();
        (out, events) = (0, 0);
        for (ms, p) in &packets {
            out += stream.tick(*ms).len();
            if let Pushed::Forward(v) = stream.push(*ms, p) {
                out += v.len();
            }
            events += stream.take_events().len();
        }
        out += stream.finish().packets.len();
        events += stream.take_events().len();
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{best:.4} s for {} packets in, {out} out, {events} digit events",
        packets.len()
    );
    Ok(())
}
