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

/// A talk-off recording: name, sample rate, samples.
pub type TalkoffFile = (String, u32, Vec<i16>);

/// Reads the talk-off corpus built by `testdata/talkoff/build.sh`: every `*.wav` in `dir`
/// (8 kHz) and in `dir/16k` (16 kHz), mono 16-bit, sorted by name.
pub fn talkoff_corpus(dir: &std::path::Path) -> anyhow::Result<Vec<TalkoffFile>> {
    use anyhow::Context;
    let mut out = Vec::new();
    for (sub, rate) in [(dir.to_path_buf(), 8000), (dir.join("16k"), 16000)] {
        let mut files: Vec<_> = std::fs::read_dir(&sub)
            .with_context(|| {
                format!(
                    "cannot list {} (build it with testdata/talkoff/build.sh)",
                    sub.display()
                )
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        files.sort();
        anyhow::ensure!(
            !files.is_empty(),
            "{}: no talk-off files (run testdata/talkoff/build.sh)",
            sub.display()
        );
        for f in files {
            let w = tonemask_harness::wav::Wav::parse(&std::fs::read(&f)?)
                .with_context(|| f.display().to_string())?;
            anyhow::ensure!(w.sample_rate == rate, "{}: expected {rate} Hz", f.display());
            out.push((
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                rate,
                w.linear(),
            ));
        }
    }
    Ok(out)
}
