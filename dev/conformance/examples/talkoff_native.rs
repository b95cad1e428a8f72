//! Tuning loop for talk-off: the native core's detector over the talk-off corpus, per category
//! (the file name's first part): false digits, masked spans per hour, audio masked — and
//! spandsp's false digits beside them. The table's numbers come from the plugin (`conformance
//! --talkoff`); this is the quick loop (≈ 1 min for the whole corpus at one channel).
//!
//! `cargo run --release -p conformance --example talkoff_native -- DIR [ulaw|pcm8|alaw|pcm16k] [-v]`

use anyhow::Result;
use conformance::signal::{through, Channel};
use std::collections::BTreeMap;
use tonemask_core::detector::{detect_all, Transition};

#[derive(Default)]
struct Cat {
    seconds: f64,
    digits: usize,
    spandsp: usize,
    spans: usize,
    masked: u64,
    samples: u64,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::PathBuf::from(args.first().map_or("target/talkoff", String::as_str));
    let ch = match args.get(1).map(String::as_str) {
        Some("pcm8") => Channel::Pcm8,
        Some("alaw") => Channel::Alaw,
        Some("pcm16k") => Channel::Pcm16k,
        _ => Channel::Ulaw,
    };
    let verbose = args.iter().any(|a| a == "-v");
    let files = conformance::talkoff_corpus(&dir)?;
    let mut cats: BTreeMap<String, Cat> = BTreeMap::new();
    for (name, rate, pcm) in files.iter().filter(|f| f.1 == ch.rate()) {
        let cat = name.split('_').next().unwrap_or("other").to_string();
        let (_, linear) = through(ch, pcm);
        let c = cats.entry(cat).or_default();
        c.seconds += linear.len() as f64 / f64::from(*rate);
        c.samples += linear.len() as u64;
        for t in detect_all(*rate, &tonemask_core::DetectorConfig::default(), &linear) {
            match t {
                Transition::Started { digit, start, .. } => {
                    c.digits += 1;
                    if verbose {
                        println!(
                            "  digit {} in {name} at {:.2} s",
                            digit.to_char(),
                            start as f64 / f64::from(*rate)
                        );
                    }
                }
                Transition::MaskUntil { start, end } => {
                    c.spans += 1;
                    c.masked += end - start;
                    if verbose {
                        println!(
                            "  span in {name} at {:.3} s, {:.1} ms",
                            start as f64 / f64::from(*rate),
                            (end - start) as f64 * 1000.0 / f64::from(*rate)
                        );
                    }
                }
                _ => {}
            }
        }
        if *rate == 8000 {
            c.spandsp += spandsp_ref::detect(&linear, spandsp_ref::Params::default()).len();
        }
    }
    println!(
        "{:<8} {:>7} {:>7} {:>8} {:>7} {:>9} {:>9}",
        "category", "hours", "digits", "spandsp", "spans", "spans/h", "masked %"
    );
    for (name, c) in &cats {
        println!(
            "{:<8} {:>7.2} {:>7} {:>8} {:>7} {:>9.1} {:>9.3}",
            name,
            c.seconds / 3600.0,
            c.digits,
            c.spandsp,
            c.spans,
            c.spans as f64 * 3600.0 / c.seconds.max(1.0),
            100.0 * c.masked as f64 / c.samples.max(1) as f64
        );
    }
    Ok(())
}
