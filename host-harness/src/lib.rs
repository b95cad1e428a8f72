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
//!
//! ## Embedding
//!
//! Compile the plugin once, instantiate it (one instance may hold many calls; an instance
//! whose plugin trapped is dead, so a server keeps calls that must not share a fate apart),
//! create a session per call or call direction, and feed it. Run by `cargo test --doc` once
//! `cargo xtask plugin` has built the component:
//!
//! ```
//! use tonemask_harness::plugin::{default_settings, Codec, Limits, Plugin, SessionConfig};
//! use tonemask_harness::sdp::PayloadTypes;
//! # let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tonemask-plugin.wasm");
//! let plugin = Plugin::load(&path, Limits::default())?; // compiled once, shared
//! let mut inst = plugin.instantiate()?;
//!
//! // Audio frames (a PBX media hook): 20 ms of µ-law in, 20 ms out, delayed and masked.
//! let call = inst.create_audio(&SessionConfig {
//!     settings: default_settings("call-1"),
//!     codec: Codec::Pcmu,
//!     sample_rate: 8000,
//!     aligned: false,
//! })?;
//! let out = inst.audio(call).process_at(0, &[0xFF; 160])?;
//! assert_eq!(out.len(), 160);
//! if let Some(due) = inst.audio(call).poll_timeout()? {
//!     inst.audio(call).handle_timeout(due)?; // no frame came by then
//! }
//! for e in inst.audio(call).drain_events()? {
//!     // e.digit: the key (none when the settings hide digits); e.signed: the signed line
//!     println!("{:?} at {} ms", e.digit, e.start_ms);
//! }
//! inst.audio(call).flush()?;
//! inst.audio(call).close()?;
//!
//! // RTP packets (a media relay): the payload types come from the call's SDP.
//! let leg = inst.create_rtp(&PayloadTypes::pcmu().rtp_config(default_settings("call-2")))?;
//! let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
//! packet.extend([0xFF; 160]);
//! // One step: host time 20 ms, this packet (a capture may pass many steps at once).
//! let mut step = Vec::new();
//! tonemask_harness::stream::put_step(&mut step, 20, &packet)?;
//! let out = inst.rtp(leg).advance(&step)?;
//! assert!(out.refused.is_none(), "a well-formed packet");
//! assert!(out.released.is_empty(), "held for the look-ahead");
//! if out.events > 0 {
//!     let _presses = inst.rtp(leg).drain_events()?;
//! }
//! // Nothing more by out.next_timeout? Then a step without a packet (an empty one):
//! // put_step(&mut step, due, &[]) into a cleared `step`, and advance again.
//! let rest = inst.rtp(leg).flush()?;
//! assert_eq!(rest.len(), 1, "the held packet leaves, masked");
//! inst.rtp(leg).close()?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub use tonemask_capture as capture;
pub mod card;
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
