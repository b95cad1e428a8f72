//! `conformance`: run the suite and print tonemask and spandsp side by side.

use anyhow::Result;
use clap::Parser;
use conformance::receivers::Tonemask;
use conformance::suite::{Settings, Suite};
use std::path::PathBuf;
use tonemask_harness::plugin::{Limits, Plugin};

/// DTMF receiver conformance: tonemask (plugin in wasmtime) vs spandsp, one table.
#[derive(Parser)]
struct Args {
    /// Plugin component [default: target/tonemask-plugin.wasm]
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Directory of talk-off WAVs (8 kHz mono; see testdata/talkoff/build.sh)
    #[arg(long)]
    talkoff: Option<PathBuf>,
    /// Fewer repetitions and coarser sweeps
    #[arg(long)]
    quick: bool,
    /// Detect with the native core instead of the plugin (for tuning; not the product path)
    #[arg(long)]
    native: bool,
    /// Run only the sections whose names contain this (e.g. `noise`)
    #[arg(long)]
    only: Option<String>,
    /// Where to write the JSON report
    #[arg(long, default_value = "target/conformance/report.json")]
    json: PathBuf,
}

/// A row without a goal, shown for information.
fn reported(r: &conformance::suite::Row) -> bool {
    r.goal.starts_with("(reported")
}

/// The "met" cell: reported-only rows are not goals met.
fn met(r: &conformance::suite::Row) -> &'static str {
    if reported(r) {
        "reported"
    } else if r.pass {
        "yes"
    } else {
        "**no**"
    }
}

/// One section of the suite.
type Section = fn(&mut Suite) -> Result<()>;

fn main() -> Result<()> {
    let args = Args::parse();
    let path = args
        .plugin
        .unwrap_or_else(tonemask_harness::default_plugin_path);
    let plugin = Plugin::load(&path, Limits::default())?;
    let mut suite = Suite::new(
        Tonemask::new(plugin)?,
        Settings {
            quick: args.quick,
            native: args.native,
        },
    );
    let t0 = std::time::Instant::now();
    let sections: [(&str, Section); 10] = [
        ("decode check", Suite::decode_check),
        ("bandwidth", Suite::bandwidth),
        ("twist", Suite::twist),
        ("off-frequency twist", Suite::off_frequency_twist),
        ("dynamic range", Suite::dynamic_range),
        ("guard time", Suite::guard_time),
        ("noise", Suite::noise),
        ("dial tone", Suite::dial_tone),
        ("harmonic pairs", Suite::harmonic_pairs),
        ("short off-spec", Suite::short_off_spec),
    ];
    for (name, f) in sections {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !name.contains(o.as_str()))
        {
            continue;
        }
        eprintln!("conformance: {name} ({:.0} s)", t0.elapsed().as_secs_f64());
        f(&mut suite)?;
    }
    if let Some(dir) = &args.talkoff {
        eprintln!(
            "conformance: talk-off ({:.0} s)",
            t0.elapsed().as_secs_f64()
        );
        let files = conformance::talkoff_corpus(dir)?;
        suite.talk_off(&files)?;
    } else {
        eprintln!("conformance: talk-off skipped (no --talkoff DIR)");
    }
    suite.masking_rows();
    println!("| # | measure | spandsp | tonemask | goal | met |");
    println!("|---|---|---|---|---|---|");
    for r in &suite.rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.section,
            r.measure,
            r.spandsp,
            r.tonemask,
            r.goal,
            met(r)
        );
    }
    let goals: Vec<_> = suite.rows.iter().filter(|r| !reported(r)).collect();
    let met = goals.iter().filter(|r| r.pass).count();
    println!(
        "\nconformance: tonemask meets {met} of {} goals, {} rows reported only ({:.0} s)",
        goals.len(),
        suite.rows.len() - goals.len(),
        t0.elapsed().as_secs_f64()
    );
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(
            &serde_json::json!({ "rows": suite.rows, "masking": suite.masking }),
        )?,
    )?;
    Ok(())
}
