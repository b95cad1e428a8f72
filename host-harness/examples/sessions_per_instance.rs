//! How many sessions one plugin instance holds, and the linear memory each takes: N audio
//! sessions (PCMU) in one instance, then N RTP sessions in another, each after one 20 ms
//! frame or packet (so its buffers have grown to their working size) — and N RTP sessions
//! that have each carried a key press (300 ms of '5', then a second of silence; its event drained).
//!
//! `cargo run --release -p tonemask-harness --example sessions_per_instance [N]` (default
//! 10,000; the plugin from `cargo xtask plugin`)

use tonemask_harness::plugin::{default_settings, Codec, Limits, Plugin, SessionConfig};
use tonemask_harness::sdp::PayloadTypes;
use tonemask_harness::stream::put_step;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(10_000), |a| a.parse())?;
    let wasm = std::env::var_os("TONEMASK_PLUGIN").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tonemask-plugin.wasm"),
        std::path::PathBuf::from,
    );
    let plugin = Plugin::load(
        &wasm,
        Limits {
            memory_bytes: 1 << 30,
            ..Limits::default()
        },
    )?;
    // 20 ms µ-law packets: a '5' (770 + 1336 Hz, −10 dBm0 each), then silence.
    let tone: Vec<Vec<u8>> = (0..15)
        .map(|k| {
            (0..160)
                .map(|i| {
                    let t = f64::from(k * 160 + i) / 8000.0;
                    let tau = 2.0 * std::f64::consts::PI;
                    let x = 2_300.0 * ((tau * 770.0 * t).sin() + (tau * 1336.0 * t).sin());
                    tonemask_core::g711::linear_to_ulaw(x as i16)
                })
                .collect()
        })
        .collect();
    let packet = |seq: u16, payload: &[u8]| {
        let ts = u32::from(seq) * 160;
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1]);
        p.extend_from_slice(payload);
        p
    };
    for kind in ["audio", "rtp", "rtp after a key press"] {
        let mut inst = plugin.instantiate()?;
        // One session first: the instance's own start-up and the shared tables.
        let open = |inst: &mut tonemask_harness::plugin::Instance, i: usize| {
            let settings = default_settings(&format!("c{i}"));
            if kind == "audio" {
                let config = SessionConfig {
                    settings,
                    codec: Codec::Pcmu,
                    sample_rate: 8000,
                    aligned: false,
                };
                let s = inst.create_audio(&config)?;
                inst.audio(s).process(&[0xFF; 160]).map(|_| ())
            } else {
                let config = PayloadTypes::pcmu().rtp_config(settings);
                let s = inst.create_rtp(&config)?;
                let mut rtp = inst.rtp(s);
                let mut send = |seq: u16, payload: &[u8]| -> anyhow::Result<()> {
                    let mut step = Vec::new();
                    put_step(&mut step, 20 * u64::from(seq), &packet(seq, payload))?;
                    match rtp.advance(&step)?.refused {
                        Some(e) => Err(anyhow::anyhow!(tonemask_harness::plugin::refusal(e))),
                        None => Ok(()),
                    }
                };
                send(0, &[0xFF; 160])?;
                if kind == "rtp" {
                    return Ok(());
                }
                for (seq, t) in (1..).zip(&tone) {
                    send(seq, t)?;
                }
                for seq in 16..66 {
                    send(seq, &[0xFF; 160])?;
                }
                let events = rtp.drain_events()?;
                anyhow::ensure!(
                    events.len() == 1,
                    "{} presses reported, not 1",
                    events.len()
                );
                Ok(())
            }
        };
        open(&mut inst, 0)?;
        let base = inst.memory_bytes();
        let t0 = std::time::Instant::now();
        for i in 1..n {
            open(&mut inst, i)?;
        }
        let used = inst.memory_bytes() - base;
        println!(
            "{kind}: {n} sessions alive in one instance; linear memory {:.1} MiB for the first, {:.1} MiB in all: {:.2} KiB per further session; {:.1} µs to create and feed each",
            base as f64 / 1048576.0,
            inst.memory_bytes() as f64 / 1048576.0,
            used as f64 / (n - 1).max(1) as f64 / 1024.0,
            t0.elapsed().as_secs_f64() * 1e6 / (n - 1).max(1) as f64
        );
    }
    Ok(())
}
