//! # conformance (dev-only)
//!
//! The DTMF receiver conformance suite: tonemask's plugin (inside wasmtime, as a host runs it)
//! side by side with spandsp's `dtmf_rx` on the same signals, in one run. Links Debian's
//! `libspandsp`; the product never does.
//!
//! `cargo run --release -p conformance -- [--talkoff DIR]` prints the table; see the README.

pub mod receivers;
pub mod signal;
pub mod suite;

/// Reads every `*.wav` under `dir` (8 kHz mono 16-bit) for the talk-off test, sorted by name.
pub fn talkoff_corpus(dir: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<i16>)>> {
    use anyhow::Context;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "cannot list {} (build it with testdata/talkoff/build.sh)",
                dir.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let w = tonemask_harness::wav::Wav::parse(&std::fs::read(&f)?)
            .with_context(|| f.display().to_string())?;
        anyhow::ensure!(
            w.sample_rate == 8000,
            "{}: talk-off files must be 8 kHz",
            f.display()
        );
        out.push((
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            w.linear(),
        ));
    }
    Ok(out)
}
