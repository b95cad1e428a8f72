//! `spandsp-detect FILE.wav...`: print the digits spandsp's dtmf_rx finds in each file.

use anyhow::{Context, Result};
use tonemask_harness::wav::Wav;

fn main() -> Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!(
            "usage: spandsp-detect FILE.wav...   (8 kHz mono WAV: 16-bit PCM, µ-law or A-law)"
        );
        std::process::exit(2);
    }
    for f in files {
        let wav =
            Wav::from_file_bytes(std::fs::read(&f).with_context(|| format!("cannot read {f}"))?)
                .with_context(|| f.clone())?;
        println!("{f}: {:?}", spandsp_ref::digits(&wav.linear()));
    }
    Ok(())
}
