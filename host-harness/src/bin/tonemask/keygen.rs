//! `tonemask keygen`: write a new key file with one random 256-bit key (owner-only), or print
//! it; with `--processor`, a payment processor's key pair for sealed cards.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
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
    /// Make a payment processor's X25519 key pair instead: the private key to --out
    /// (owner-only), the public key that hosts seal cards to beside it as OUT.pub
    #[arg(long, requires = "out")]
    processor: bool,
}

/// Runs `tonemask keygen`; returns the exit status.
pub fn execute(_plugin: Option<PathBuf>, args: Args) -> Result<i32> {
    let Args {
        kid,
        out,
        processor,
    } = args;
    if processor {
        let path = out.unwrap_or_default();
        let (private, public) = tonemask_harness::card::generate(&kid)?;
        let mut pub_path = path.clone().into_os_string();
        pub_path.push(".pub");
        let pub_path = PathBuf::from(pub_path);
        for p in [&path, &pub_path] {
            refuse_existing(p)?;
        }
        files::write_atomic(&path, private.as_bytes(), files::PRIVATE)?;
        files::write_atomic(&pub_path, public.as_bytes(), files::PUBLIC)?;
        eprintln!(
            "tonemask: processor key {kid}: private key in {} (keep it with the processor), public key in {}",
            path.display(),
            pub_path.display()
        );
        return Ok(0);
    }
    let text = keys::generate(&kid)?;
    match out {
        Some(path) => {
            refuse_existing(&path)?;
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

fn refuse_existing(path: &Path) -> Result<()> {
    if path.exists() {
        bail!("{} exists; a key file is never overwritten", path.display());
    }
    Ok(())
}
