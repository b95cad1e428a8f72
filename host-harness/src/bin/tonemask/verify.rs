//! `tonemask verify`: verify a file of signed digit events and capture records: MACs, key ids,
//! replays, order, gaps, ends.

use anyhow::Result;
use std::path::PathBuf;
use tonemask_core::Record;
use tonemask_harness::card::{agent_view, record_items, Tally};
use tonemask_harness::keys::KeyRing;
use tonemask_harness::verify::verify_file;

/// Arguments of `tonemask verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Events file (one envelope per line, at most 4096 bytes each)
    events: PathBuf,
    /// Key file holding the key(s) the events may be signed with
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Print the digits (they may be card data)
    #[arg(long)]
    show_digits: bool,
}

/// Runs `tonemask verify`; returns the exit status.
pub fn execute(_plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    let Args {
        events,
        key,
        show_digits,
    } = args;
    let keys = KeyRing::load(&key)?;
    let report = verify_file(&keys, &events)?;
    let (mut digits, mut captures) = (0, 0);
    let mut tally = Tally::default();
    for v in &report.lines {
        match &v.result {
            Ok(ok) => {
                if let Some((a, b)) = ok.gap {
                    println!(
                        "line {}: GAP  call {} is missing seq {a}..={b}",
                        v.line,
                        ok.record.ids().1
                    );
                }
                if ok.broken_chain {
                    println!(
                        "line {}: CHAIN BROKEN  call {}: its prev is not the hash of the call's line before it (a line removed, altered or foreign, or the start record missing)",
                        v.line,
                        ok.record.ids().1
                    );
                }
                match &ok.record {
                    Record::Digit(_) | Record::Press(_) => digits += 1,
                    Record::Capture(c) => {
                        captures += 1;
                        tally.add(&c.capture, record_items(c));
                    }
                    Record::Start(_) | Record::End(_) => {}
                }
                println!("line {}: {}", v.line, describe(&ok.record, show_digits));
            }
            Err(e) => println!("line {}: REJECTED  {e}", v.line),
        }
    }
    if captures > 0 {
        println!("captures: {tally}");
    }
    for u in &report.unfinished {
        println!("NOT WHOLE  {u}");
    }
    if report.lines.is_empty() {
        println!("NOT WHOLE  {} holds no event", events.display());
    }
    println!(
        "verify: {} accepted, {} rejected, {} gap(s), {} broken link(s), {} unfinished call(s){} — {}",
        digits + captures,
        report.rejected(),
        report.gaps(),
        report.broken_links(),
        report.unfinished.len(),
        if captures > 0 {
            format!(" ({captures} of them capture records)")
        } else {
            String::new()
        },
        if report.whole() { "whole" } else { "NOT WHOLE" }
    );
    Ok(if report.whole() { 0 } else { 1 })
}

/// One accepted record as `verify` prints it (a digit as `*` unless `show_digits`).
fn describe(record: &Record, show_digits: bool) -> String {
    match record {
        Record::Digit(e) => {
            let d = if show_digits { e.digit.to_char() } else { '*' };
            format!("OK   call {} seq {} digit {d}", e.call, e.seq)
        }
        Record::Press(p) => format!(
            "OK   call {} seq {} press, digit {}",
            p.call,
            p.seq,
            if p.sealed.is_some() {
                "sealed"
            } else {
                "hidden"
            }
        ),
        Record::Capture(c) => format!(
            "OK   call {} seq {} capture {}: {}",
            c.call,
            c.seq,
            c.capture,
            agent_view(record_items(c))
        ),
        Record::Start(s) => format!("START call {} seq {}: digits {}", s.call, s.seq, s.digits),
        Record::End(e) => format!(
            "END  call {} seq {}: {} digit(s), {} capture record(s) sent",
            e.call, e.seq, e.digits, e.captures
        ),
    }
}
