//! `tonemask replay`: replay test calls (manifests, or directories of them) and check the expected digits.

use crate::common::*;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tonemask_harness::replay;

/// Arguments of `tonemask replay`.
#[derive(clap::Args)]
pub struct Args {
    /// Manifest files (NAME.json) or directories holding them
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Directory for report.json and junit.xml
    #[arg(long, default_value = "target/replay", value_name = "DIR")]
    report_dir: PathBuf,
}

/// Runs `tonemask replay`; returns the exit status.
pub fn execute(plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    let Args { paths, report_dir } = args;
    let manifests = replay::manifests(&paths)?;
    if manifests.is_empty() {
        bail!("no manifests (*.json) found in the given paths");
    }
    let plugin = load_plugin(plugin)?;
    println!(
        "{:<44} {:<16} {:>6}  {:<18} {:<18} {:<10} result",
        "call", "format", "sec", "expected", "detected", "in masked"
    );
    let mut results = Vec::new();
    for m in &manifests {
        let r = replay::replay_one(&plugin, m);
        let name = m
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        println!(
            "{:<44} {:<16} {:>6.1}  {:<18} {:<18} {:<10} {}",
            name,
            r.format,
            r.seconds,
            clip(&r.expected),
            clip(&r.detected),
            if r.in_masked.is_empty() {
                "none".to_string()
            } else {
                clip(&r.in_masked)
            },
            if r.passed() { "PASS" } else { "FAIL" }
        );
        for f in &r.failures {
            println!("    - {f}");
        }
        results.push(r);
    }
    std::fs::create_dir_all(&report_dir)
        .with_context(|| format!("cannot create {}", report_dir.display()))?;
    write_atomic(
        &report_dir.join("report.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    write_atomic(
        &report_dir.join("junit.xml"),
        replay::junit(&results).as_bytes(),
    )?;
    let failed = results.iter().filter(|r| !r.passed()).count();
    let audio: f64 = results.iter().map(|r| r.seconds).sum();
    let wall: f64 = results.iter().map(|r| r.wall_seconds).sum();
    println!(
        "replay: {} passed, {failed} failed; {audio:.1} s of audio in {wall:.2} s; reports in {}",
        results.len() - failed,
        report_dir.display()
    );
    Ok(if failed == 0 { 0 } else { 1 })
}
