//! `tonemask keygen`: write a new key file with one random 256-bit key (owner-only), or print it.

use anyhow::{bail, Result};
use std::path::PathBuf;
use tonemask_harness::files;
use tonemask_harness::keys;

/// Arguments of `tonemask keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// Key id
    #[arg(long, default_value = "k1")]
    kid: String,
    /// Key file to create (mode 0600; an existing file is not overwritten) [default:
    /// print to stdout — then `chmod 600` the file it goes to]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `tonemask keygen`; returns the exit status.
pub fn execute(_plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    let Args { kid, out } = args;
    let text = keys::generate(&kid)?;
    match out {
        Some(path) => {
            if path.exists() {
                bail!("{} exists; a key file is never overwritten", path.display());
            }
            files::write_atomic(&path, text.as_bytes(), files::PRIVATE)?;
            eprintln!("tonemask: key {kid} written to {}", path.display());
        }
        None => {
            print!("{}", *text);
            use std::io::IsTerminal as _;
            if !std::io::stdout().is_terminal() {
                eprintln!("tonemask: keep the key file owner-only (chmod 600): key files others can read are refused");
            }
        }
    }
    Ok(0)
}
