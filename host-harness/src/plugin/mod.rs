//! The plugin inside wasmtime: engine, component, per-instance store with limits, and typed
//! calls into `tonemask:plugin/masking` (audio frames) and `tonemask:plugin/rtp` (packets).
//!
//! Sessions live inside an [`Instance`]; [`Instance::create_audio`] and
//! [`Instance::create_rtp`] return typed handles, and [`Instance::audio`] /
//! [`Instance::rtp`] give a session's own methods (`inst.audio(h).process(frame)`).
//!
//! Every call gets a time budget proportional to the audio it carries (wasmtime's epoch
//! interruption: a ticker thread advances the engine's epoch every 10 ms), and the instance's
//! memory is capped; a guest that loops or grows without bound traps instead of hanging the
//! host. After a trap the instance is unusable: create a new one. (Epochs replaced fuel
//! metering, which cost ≈ 20 % of the plugin's time: `scripts/bench.sh`.)

use anyhow::{anyhow, Context, Result};
use bindings::exports::tonemask::plugin::{masking, rtp};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};

mod audio;
mod cache;
mod rtp_session;

pub use audio::{AudioHandle, AudioSession};
pub use rtp_session::{no_stats, refusal, refused, RtpHandle, RtpSession};

/// Host bindings generated from `wit/`.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({ world: "plugin", path: "../wit" });
}

pub use bindings::exports::tonemask::plugin::rtp::RtpOutput;
pub use bindings::exports::tonemask::plugin::types::{
    AudioPayload, CallSettings, CaptureEvent, CaptureField, CaptureRequest, CaptureStatus,
    CaptureValue, Codec, Config as SessionConfig, DigitEvent, DigitSeal, DigitSource,
    DigitVisibility, Error as PluginError, EventPayload, MaskMode, NumericField, RtpConfig,
    RtpStats, SigningKey, Twist, TwistLimits,
};

/// How often the engine's epoch advances: the granularity of call time budgets.
const TICK: Duration = Duration::from_millis(10);

/// Resource limits for each plugin instance.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest linear memory of an instance, in bytes.
    pub memory_bytes: usize,
    /// Time a call may take, on top of the per-sample budget.
    pub time_per_call: Duration,
    /// Time a call may take per audio sample (or packet byte) it carries.
    pub time_per_sample: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // Measured: ≈ 30 M samples/s in wasm; 1 µs per sample is ≈ 30× headroom, and a second
        // per call covers creating sessions and flushing on a loaded machine.
        Limits {
            memory_bytes: 64 << 20,
            time_per_call: Duration::from_secs(1),
            time_per_sample: Duration::from_micros(1),
        }
    }
}

/// Advances an engine's epoch every [`TICK`] until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                engine.increment_epoch();
            }
        });
        Ticker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A compiled plugin component, ready to instantiate any number of times.
pub struct Plugin {
    engine: Engine,
    pre: InstancePre<HostState>,
    masking: masking::GuestIndices,
    /// `None` for an audio-only plugin (world `audio`).
    rtp: Option<rtp::GuestIndices>,
    path: PathBuf,
    limits: Limits,
    _ticker: Ticker,
}

/// Per-instance host state.
pub struct HostState {
    limits: Limiter,
}

/// The store's limits, remembering how large linear memory has grown.
struct Limiter {
    inner: StoreLimits,
    memory: usize,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if ok {
            self.memory = self.memory.max(desired);
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl Plugin {
    /// Loads and compiles the component at `path`.
    pub fn load(path: &Path, limits: Limits) -> Result<Plugin> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let profiling = profiling();
        if profiling {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)
            .map_err(|e| anyhow!("{e}"))
            .context("creating the wasmtime engine")?;
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read plugin {} (build it with `cargo xtask plugin`)",
                path.display()
            )
        })?;
        let compile = || {
            Component::from_binary(&engine, &bytes)
                .map_err(|e| anyhow!("{e:?}"))
                .with_context(|| {
                    format!(
                        "{} is not a valid tonemask plugin component",
                        path.display()
                    )
                })
        };
        // A profiled run compiles afresh: the perf map is written as code is compiled.
        let component = if profiling {
            compile()?
        } else {
            cache::load_or_compile(&engine, &bytes, compile)?
        };
        let not_ours = |e: wasmtime::Error| {
            anyhow!(
                "{} is not a tonemask plugin component for this host (tonemask:plugin@0.7.0): {e}",
                path.display()
            )
        };
        let pre = Linker::new(&engine)
            .instantiate_pre(&component)
            .map_err(not_ours)?;
        let masking = masking::GuestIndices::new(&pre).map_err(not_ours)?;
        // The `rtp` interface is optional: an audio-only plugin serves audio frames.
        let rtp = rtp::GuestIndices::new(&pre).ok();
        let ticker = Ticker::start(engine.clone());
        Ok(Plugin {
            engine,
            pre,
            masking,
            rtp,
            path: path.to_path_buf(),
            limits,
            _ticker: ticker,
        })
    }

    /// Where the component was loaded from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A fresh instance (its own memory and sessions).
    pub fn instantiate(&self) -> Result<Instance> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(8)
            .memories(2)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState {
                limits: Limiter {
                    inner: limits,
                    memory: 0,
                },
            },
        );
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks(self.limits.time_per_call));
        let instantiated = (|| {
            let instance = self.pre.instantiate(&mut store)?;
            let masking = self.masking.load(&mut store, &instance)?;
            let rtp = self
                .rtp
                .as_ref()
                .map(|r| r.load(&mut store, &instance))
                .transpose()?;
            Ok::<_, wasmtime::Error>((masking, rtp))
        })();
        let (masking, rtp) = instantiated
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| format!("instantiating plugin {}", self.path.display()))?;
        Ok(Instance {
            store,
            masking,
            rtp,
            limits: self.limits,
            name: self.path.display().to_string(),
        })
    }
}

/// One instance of the plugin; holds any number of sessions.
pub struct Instance {
    store: Store<HostState>,
    masking: masking::Guest,
    /// `None` for an audio-only plugin.
    rtp: Option<rtp::Guest>,
    limits: Limits,
    name: String,
}

impl Instance {
    /// The instance's linear memory, in bytes (what its sessions and tables occupy, rounded
    /// up to wasm pages).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.store.data().limits.memory
    }

    /// Sets the next call's time budget.
    fn budget(&mut self, samples: usize) {
        let budget = self.limits.time_per_call
            + self
                .limits
                .time_per_sample
                .saturating_mul(u32::try_from(samples).unwrap_or(u32::MAX));
        self.store.set_epoch_deadline(ticks(budget));
    }

    /// One call into the `masking` interface: its time budget, and a trap named after `what`.
    fn masking_call<R>(
        &mut self,
        what: &str,
        samples: usize,
        f: impl FnOnce(masking::GuestSession<'_>, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        self.budget(samples);
        f(self.masking.session(), &mut self.store).map_err(|e| trap(&self.name, what, e))
    }

    /// One call into the `rtp` interface (an error for an audio-only plugin).
    fn rtp_call<R>(
        &mut self,
        what: &str,
        samples: usize,
        f: impl FnOnce(rtp::GuestRtpSession<'_>, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        self.budget(samples);
        let rtp = self.rtp.as_ref().ok_or_else(|| no_rtp(&self.name))?;
        f(rtp.rtp_session(), &mut self.store).map_err(|e| trap(&self.name, what, e))
    }

    /// Drops a guest resource (a session of either kind).
    fn drop_resource(&mut self, what: &str, r: ResourceAny) -> Result<()> {
        self.budget(0);
        r.resource_drop(&mut self.store)
            .map_err(|e| trap(&self.name, what, e))
    }
}

/// Whether `TONEMASK_PROFILE=perfmap` asks for the guest's code to be named for `perf`
/// (wasmtime writes `/tmp/perf-PID.map`): `perf record -k mono tonemask …` then shows the
/// plugin's own functions instead of anonymous JIT code.
fn profiling() -> bool {
    std::env::var("TONEMASK_PROFILE").is_ok_and(|v| v == "perfmap")
}

/// Default settings for call `call_id`: tones replaced by silence, the zero-leak look-ahead,
/// Q.24 twist, unsigned (a host sets a fresh key per session, see
/// [`crate::keys::KeyRing::plugin_key`]), digits in clear (the detection and test tools'
/// default; `relay` and `serve` hide them unless told otherwise).
#[must_use]
pub fn default_settings(call_id: &str) -> CallSettings {
    CallSettings {
        call_id: call_id.to_string(),
        lookahead_ms: tonemask_core::DEFAULT_LOOKAHEAD_MS,
        mask_mode: MaskMode::Silence,
        twist: Twist::Att,
        key: None,
        digits: DigitVisibility::Clear,
    }
}

/// The digit of an event as the tools show it: `?` when the session does not give it.
#[must_use]
pub fn shown_digit(e: &DigitEvent) -> char {
    e.digit.unwrap_or('?')
}

/// A guest call that trapped (or failed in wasmtime), named after the plugin and the call.
fn trap(plugin: &str, what: &str, e: wasmtime::Error) -> anyhow::Error {
    anyhow!("plugin {plugin} failed in {what}: {e:?}")
}

/// The error of an RTP call on an audio-only plugin.
fn no_rtp(plugin: &str) -> anyhow::Error {
    anyhow!(
        "plugin {plugin} is audio-only (world tonemask:plugin/audio): it has no rtp interface; load the full plugin (cargo xtask plugin) for RTP"
    )
}

/// Epoch ticks covering `d` (at least one).
fn ticks(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64 + 1
}

fn plugin_error(e: PluginError) -> anyhow::Error {
    match e {
        PluginError::BadConfig(m) => anyhow!("configuration refused by the plugin: {m}"),
        PluginError::BadFrame(m) => anyhow!("frame refused by the plugin: {m}"),
        PluginError::BadPacket(m) => anyhow!("packet refused by the plugin: {m}"),
        PluginError::Misuse(m) => anyhow!("the host misused the plugin (a bug in the host): {m}"),
    }
}
