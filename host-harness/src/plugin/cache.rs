//! Compiled plugins, cached: compiling the component costs ≈ 0.15 CPU-s in every process that
//! loads it (every `tonemask` command, every test); a cached copy loads in milliseconds.
//!
//! A cached file is wasmtime's own serialization of the compiled component — native code, so
//! loading it is trusted like loading the executable: it is only read from a directory the
//! user alone owns and can write (created `0700`; refused if anyone else owns it or may write
//! it), under a name that is the SHA-256 of the component's bytes and of wasmtime's version,
//! written owner-only and renamed into place (never seen half-written). wasmtime checks its
//! own header (version, engine settings) when loading. Anything wrong — no directory, a
//! stale or corrupt file — means compiling as before; the cache never makes a load fail.
//!
//! Where: `$TONEMASK_CACHE_DIR`, else `$XDG_CACHE_HOME/tonemask`, else `~/.cache/tonemask`;
//! `TONEMASK_CACHE_DIR=` (empty) turns it off.

use anyhow::{anyhow, Result};
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The cache directory, if one is configured.
fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("TONEMASK_CACHE_DIR") {
        return (!d.is_empty()).then(|| PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d).join("tonemask"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tonemask"))
}

/// Whether `dir` exists (created `0700` if not) and only this user owns and can write it.
fn private(dir: &Path) -> bool {
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    let (Ok(meta), Ok(me)) = (std::fs::metadata(dir), std::fs::metadata("/proc/self")) else {
        return false;
    };
    meta.is_dir() && meta.uid() == me.uid() && meta.mode() & 0o022 == 0
}

/// The cache file's name for a component's `bytes` compiled by `engine`: the hash of the
/// bytes and of what makes compiled code compatible (wasmtime's version and settings, as
/// `Engine::precompile_compatibility_hash` gives them).
fn name(engine: &Engine, bytes: &[u8]) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut compat = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(compat.finish().to_be_bytes());
    format!("{}.cwasm", hex::encode(&h.finalize()[..16]))
}

/// The compiled component of `bytes`: from the cache when a good copy is there, else
/// compiled by `compile` (and cached for next time).
pub fn load_or_compile(
    engine: &Engine,
    bytes: &[u8],
    compile: impl FnOnce() -> Result<Component>,
) -> Result<Component> {
    load_or_compile_in(dir(), engine, bytes, compile)
}

/// As [`load_or_compile`], with the cache in `dir` (`None`: no cache).
fn load_or_compile_in(
    dir: Option<PathBuf>,
    engine: &Engine,
    bytes: &[u8],
    compile: impl FnOnce() -> Result<Component>,
) -> Result<Component> {
    let Some(dir) = dir.filter(|d| private(d)) else {
        return compile();
    };
    let path = dir.join(name(engine, bytes));
    if path.is_file() {
        // SAFETY: the file is in a directory only this user owns and can write, named by the
        // hash of this very component and wasmtime version, and was written (owner-only,
        // renamed into place) by `store` below from `Component::serialize` — the trust is
        // the same as in this user's own executable. wasmtime still checks the header.
        let cached = unsafe { Component::deserialize_file(engine, &path) };
        match cached {
            Ok(c) => return Ok(c),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let component = compile()?;
    if let Err(e) = store(&component, &path) {
        eprintln!(
            "tonemask: note: compiled plugin not cached in {}: {e:#}",
            dir.display()
        );
    }
    Ok(component)
}

/// Writes `component` to `path` owner-only, through a temporary file renamed into place.
fn store(component: &Component, path: &Path) -> Result<()> {
    let image = component.serialize().map_err(|e| anyhow!("{e}"))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&image)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_others_can_write_is_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let mine = d.path().join("mine");
        assert!(private(&mine), "created 0700 and owned by this user");
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        assert!(!private(&open), "world-writable");
        let engine = Engine::default();
        assert_ne!(name(&engine, b"a"), name(&engine, b"b"));
    }

    #[test]
    fn a_cached_plugin_is_used_and_a_corrupt_one_is_compiled_again() {
        let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tonemask-plugin.wasm");
        let bytes = std::fs::read(&wasm).expect("build the plugin first: cargo xtask plugin");
        let engine = Engine::default();
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("cache");
        let mut compiled = 0;
        let load = |compiled: &mut i32| {
            load_or_compile_in(Some(dir.clone()), &engine, &bytes, || {
                *compiled += 1;
                Component::from_binary(&engine, &bytes).map_err(|e| anyhow!("{e}"))
            })
            .unwrap()
        };
        load(&mut compiled);
        let file = dir.join(name(&engine, &bytes));
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        load(&mut compiled);
        assert_eq!(compiled, 1, "the second load came from the cache");
        std::fs::write(&file, b"not a compiled component").unwrap();
        load(&mut compiled);
        assert_eq!(compiled, 2, "a corrupt file is compiled again");
        load(&mut compiled);
        assert_eq!(compiled, 2, "and replaced");
    }
}
