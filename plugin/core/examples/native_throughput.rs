//! Native throughput of the core (a comparison point for the plugin inside wasmtime):
//! `cargo run --release -p tonemask-core --example native_throughput -- FILE.wav`
//! (16-bit PCM, 8 kHz, canonical 44-byte header as written by sox).

use std::time::Instant;
use tonemask_core::{Codec, Session, SessionConfig};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: native_throughput FILE.wav (16-bit PCM, 8 kHz)");
        std::process::exit(2);
    };
    let bytes = std::fs::read(&path).expect("reading the file");
    let pcm: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let t0 = Instant::now();
    let mut s = Session::new(SessionConfig::new("bench", Codec::L16)).expect("config");
    let mut out = Vec::with_capacity(160);
    let mut digits = 0;
    for frame in pcm.chunks(160) {
        out.clear();
        s.process_samples(frame, &mut out).expect("frame");
        while s.poll_event().is_some() {
            digits += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let audio = pcm.len() as f64 / 8000.0;
    println!(
        "native core: {audio:.1} s audio in {secs:.3} s: {:.0} audio-s per s, {:.1} M samples/s, {digits} digits",
        audio / secs,
        pcm.len() as f64 / secs / 1e6
    );
}
