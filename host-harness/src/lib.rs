//! # tonemask-harness
//!
//! The native host of the tonemask plugin, as a library vendors can embed and as the
//! `tonemask` CLI. It always runs the plugin **component** inside wasmtime (time and memory
//! limits per instance), never the native core, except to *verify* signed events, which is
//! the payment side's job and uses the core's verifier directly.
//!
//! - [`plugin`] — engine, component, instances, typed session calls;
//! - [`wav`] — call recordings in (16-bit PCM, µ-law, A-law) and out;
//! - [`run`] — one recording through one session: masked audio aligned with the input,
//!   digit events;
//! - [`capture`], [`sip`], [`sdp`], [`packets`] — pcap/pcapng calls: UDP datagrams, what the
//!   SIP signalling says, each RTP stream through its own `rtp-session`, a masked capture out;
//! - [`relay`] — a live UDP RTP relay: caller→agent masked, agent→caller watched;
//! - [`serve`], [`ng`] — a media node many calls at once, driven by SIP proxies over the
//!   rtpengine ng protocol;
//! - [`replay`] — test calls with manifests: pass/fail table, JSON and JUnit reports;
//! - [`keys`], [`verify`] — key files and event verification;
//! - [`files`] — owner-only secrets, all-or-nothing outputs, bounded inputs.

pub use tonemask_capture as capture;
pub mod files;
pub mod keys;
pub mod ng;
pub mod packets;
pub mod plugin;
pub mod relay;
pub mod replay;
pub mod run;
pub mod sdp;
pub mod serve;
pub mod sip;
pub mod stream;
pub mod verify;
pub mod wav;

use std::path::PathBuf;

/// Where the plugin is looked for when no `--plugin` is given: `$TONEMASK_PLUGIN`, else
/// `tonemask-plugin.wasm` in the directory above the executable's (`target/` for
/// `target/release/tonemask`). Never relative to the working directory: a plugin planted
/// there would run with the signing key.
#[must_use]
pub fn default_plugin_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TONEMASK_PLUGIN") {
        return PathBuf::from(p);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()?
                .parent()
                .map(|d| d.join("tonemask-plugin.wasm"))
        })
        .unwrap_or_else(|| PathBuf::from("/nonexistent/tonemask-plugin.wasm"))
}
