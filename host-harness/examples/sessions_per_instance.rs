//! How many sessions one plugin instance holds, and the linear memory each takes: N audio
//! sessions (PCMU) in one instance, then N RTP sessions in another, each after one 20 ms
//! frame or packet (so its buffers have grown to their working size).
//!
//! `cargo run --release -p tonemask-harness --example sessions_per_instance [N]` (default
//! 10,000; the plugin from `cargo xtask plugin`)

use tonemask_harness::plugin::{default_settings, Codec, Limits, Plugin, SessionConfig};
use tonemask_harness::sdp::PayloadTypes;

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
    for kind in ["audio", "rtp"] {
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
                let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
                p.extend_from_slice(&[0xFF; 160]);
                match inst.rtp(s).advance(0, Some(&p))?.refused {
                    Some(e) => Err(anyhow::anyhow!(tonemask_harness::plugin::refusal(e))),
                    None => Ok(()),
                }
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
