//! The capture path a window of frames at a time against frame by frame.

use super::*;
use crate::capture::Capture;
use std::path::Path;

fn plugin() -> Plugin {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tonemask-plugin.wasm");
    Plugin::load(&wasm, crate::plugin::Limits::default())
        .expect("build the plugin first: cargo xtask plugin")
}

/// Everything a run gives, as text: the masked frames (time and bytes), each stream's
/// events, counters and refusals, the drops.
fn outcome(plugin: &Plugin, capture: &Capture, window: usize) -> Vec<String> {
    let mut masked: Vec<Frame> = Vec::new();
    let out = run_windows(
        plugin,
        capture,
        &CaptureOptions::default(),
        None,
        &mut masked,
        window,
    )
    .unwrap();
    let mut all: Vec<String> = masked
        .iter()
        .map(|f| format!("{:?} {:02x?}", f.ts, &f.data[..]))
        .collect();
    for s in &out.streams {
        all.push(format!(
            "{} {:?} {:?} {:?} {:?} {:?} {}",
            s.dst, s.direction, s.events, s.stats, s.refused, s.trap, s.flows
        ));
    }
    all.push(format!("{:?} {}", out.dropped, out.audio_frames_dropped));
    all
}

/// The test captures, and each again with its frames' times disturbed: every seventh frame
/// swapped in time with the one after it, and once a frame a second late.
fn captures() -> Vec<(String, Capture)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/captures");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let capture = Capture::parse(&std::fs::read(&path).unwrap()).unwrap();
        let mut disturbed = Capture::parse(&std::fs::read(&path).unwrap()).unwrap();
        let frames = &mut disturbed.frames;
        for i in (0..frames.len().saturating_sub(1)).step_by(7) {
            let (a, b) = (frames[i].ts, frames[i + 1].ts);
            (frames[i].ts, frames[i + 1].ts) = (b, a);
        }
        let middle = frames.len() / 2;
        if let Some(f) = frames.get_mut(middle) {
            f.ts += Duration::from_secs(1);
        }
        all.push((name.clone(), capture));
        all.push((format!("{name}, times disturbed"), disturbed));
    }
    assert!(all.len() >= 12, "test captures missing");
    all
}

#[test]
fn a_capture_in_windows_gives_what_it_gives_frame_by_frame() {
    let plugin = plugin();
    for (name, capture) in captures() {
        let reference = outcome(&plugin, &capture, 1);
        assert!(reference.len() > 10, "{name}: nothing came out");
        for window in [2, 5, window::FRAMES] {
            let batched = outcome(&plugin, &capture, window);
            assert_eq!(
                batched.len(),
                reference.len(),
                "{name}, windows of {window}"
            );
            for (i, (a, b)) in batched.iter().zip(&reference).enumerate() {
                assert_eq!(a, b, "{name}, windows of {window}: line {i}");
            }
        }
    }
}
