//! `tonemask open`: the processor's side — verify a records file, then open each sealed card
//! and each sealed digit with the processor's private key (test cards only).

use anyhow::Result;
use std::path::PathBuf;
use tonemask_core::Record;
use tonemask_harness::card::{load_private, open, open_press};
use tonemask_harness::keys::KeyRing;
use tonemask_harness::verify::verify_file;

/// Arguments of `tonemask open`.
#[derive(clap::Args)]
pub struct Args {
    /// Records file written by `tonemask capture` (or a host's events file)
    events: PathBuf,
    /// The processor's private key file (see `tonemask keygen --processor`)
    #[arg(long, value_name = "FILE")]
    processor_private: PathBuf,
    /// Key file the records are signed with
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
}

/// Runs `tonemask open`; returns the exit status.
pub fn execute(_plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    let keys = KeyRing::load(&args.key)?;
    let (kid, private) = load_private(&args.processor_private)?;
    let report = verify_file(&keys, &args.events)?;
    let mut status = if report.whole() { 0 } else { 1 };
    if !report.whole() {
        eprintln!(
            "tonemask: {} is not whole ({} rejected line(s), {} gap(s), {} unfinished call(s)); see `tonemask verify`",
            args.events.display(),
            report.rejected(),
            report.gaps(),
            report.unfinished.len()
        );
    }
    let mut opened = 0;
    for v in &report.lines {
        let Ok(ok) = &v.result else { continue };
        if let Record::Press(p) = &ok.record {
            match open_press(p, &kid, &private) {
                Ok(Some(d)) => {
                    opened += 1;
                    println!("call {} seq {} digit {d}", p.call, p.seq);
                }
                Ok(None) => {}
                Err(e) => {
                    status = 1;
                    println!("line {}: NOT OPENED  {e:#}", v.line);
                }
            }
            continue;
        }
        let Record::Capture(c) = &ok.record else {
            continue;
        };
        if c.event() != "completed" {
            continue;
        }
        match open(c, &kid, &private) {
            Ok(card) => {
                opened += 1;
                let text = String::from_utf8_lossy(&card);
                let mut parts = text.split(';');
                let pan = parts.next().unwrap_or("");
                let expiry = parts.next().unwrap_or("");
                let code = parts.next().unwrap_or("");
                println!(
                    "call {} capture {}: card {pan} expiry {expiry} code {code}{}",
                    c.call,
                    c.capture,
                    c.text("brand")
                        .map(|b| format!(" ({b})"))
                        .unwrap_or_default()
                );
            }
            Err(e) => {
                status = 1;
                println!("line {}: NOT OPENED  {e:#}", v.line);
            }
        }
    }
    if opened == 0 {
        eprintln!(
            "tonemask: no sealed card opened in {}",
            args.events.display()
        );
        status = 1;
    }
    Ok(status)
}
