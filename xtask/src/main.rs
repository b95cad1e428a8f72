//! Build tasks for tonemask.
//!
//! `cargo xtask plugin` compiles `plugin/component` for wasm32-unknown-unknown with the
//! `plugin` profile and wraps the core module as a WebAssembly component at
//! `target/tonemask-plugin.wasm` (the path the `tonemask` CLI loads by default); with
//! `--audio-only`, the smaller world `audio` (no RTP) at `target/tonemask-plugin-audio.wasm`.
//!
//! The wasm standard library comes from rustup's `wasm32-unknown-unknown` target when it is
//! installed; otherwise from Debian's `rustc-web` by building std from source (see
//! `scripts/setup.sh`, which installs one or the other).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plugin") if args.len() == 1 => plugin(false),
        Some("plugin") if args.get(1).map(String::as_str) == Some("--audio-only") => plugin(true),
        _ => {
            eprintln!(
                "usage: cargo xtask plugin [--audio-only]
    build target/tonemask-plugin.wasm (world `plugin`: audio frames and RTP), or with
    --audio-only target/tonemask-plugin-audio.wasm (world `audio`)"
            );
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Whether the default rustc has a prebuilt std for the wasm target.
fn rustup_target_installed() -> bool {
    let Ok(out) = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
    else {
        return false;
    };
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
        })
        .unwrap_or(false)
}

fn plugin(audio_only: bool) -> Result<()> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args([
        "build",
        "-p",
        "tonemask-component",
        "--target",
        TARGET,
        "--profile",
        "plugin",
    ]);
    if audio_only {
        cmd.arg("--no-default-features");
    }
    if rustup_target_installed() {
        eprintln!("xtask: building the plugin with rustup's {TARGET} target");
    } else if Path::new("/usr/bin/rustc").exists() {
        eprintln!(
            "xtask: no rustup {TARGET} std; building std from source with Debian's rustc-web"
        );
        cmd.env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["-Zbuild-std=std,panic_abort"]);
    } else {
        bail!("no wasm32 standard library: run scripts/setup.sh (rustup target add {TARGET}, or Debian's rustc-web)");
    }
    let status = cmd.status().context("running cargo for the wasm plugin")?;
    if !status.success() {
        bail!("building the wasm plugin failed");
    }
    let core_path = root
        .join("target")
        .join(TARGET)
        .join("plugin")
        .join("tonemask_component.wasm");
    let module =
        std::fs::read(&core_path).with_context(|| format!("reading {}", core_path.display()))?;
    let module = without_custom(&module, &["producers"])?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .context("reading the core module's component type")?
        .validate(true)
        .encode()
        .context("encoding the component")?;
    let component = without_custom(&component, &["component-name", "producers"])?;
    let name = if audio_only {
        "tonemask-plugin-audio.wasm"
    } else {
        "tonemask-plugin.wasm"
    };
    let out = root.join("target").join(name);
    std::fs::write(&out, &component).with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "xtask: wrote {} ({} bytes; core module {} bytes)",
        out.display(),
        component.len(),
        module.len()
    );
    Ok(())
}

/// A module or component without its top-level custom sections named in `names`: the
/// component's `component-name` (the names of its instances, functions and types, 6.4 KB)
/// and the `producers` records (which toolchain built it) — nothing needs them to run it, as
/// the core module's own symbol names are stripped by the `plugin` profile. Every other
/// section is kept byte for byte (the top level is a header, then sections: an id byte, a
/// LEB128 size, the contents; nested modules and components lie inside their sections'
/// contents), and the result is validated.
fn without_custom(component: &[u8], names: &[&str]) -> Result<Vec<u8>> {
    let mut out = component
        .get(..8)
        .context("not a WebAssembly binary")?
        .to_vec();
    let mut reader = wasmparser::BinaryReader::new(&component[8..], 8);
    while !reader.eof() {
        let start = reader.original_position() as usize;
        let id = reader.read_u8()?;
        let size = reader.read_var_u32()? as usize;
        let contents = reader.original_position() as usize;
        let body = reader.read_bytes(size)?;
        let end = contents + size;
        let dropped = id == 0
            && wasmparser::BinaryReader::new(body, contents as u64)
                .read_string()
                .is_ok_and(|n| names.contains(&n));
        if !dropped {
            out.extend_from_slice(&component[start..end]);
        }
    }
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .context("the binary without its custom sections does not validate")?;
    Ok(out)
}
