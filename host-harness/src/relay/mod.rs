//! `tonemask relay`: a live UDP RTP relay between a caller leg and an agent leg.
//!
//! ```text
//!   caller ──RTP──▶ [caller-side socket] ──plugin (mask)──▶ [agent-side socket] ──▶ agent
//!   caller ◀──────  [caller-side socket] ◀─plugin (watch)── [agent-side socket] ◀── agent
//! ```
//!
//! Each direction is a leg with its own plugin instance, run by the process's event loop
//! (`relay/reactor.rs`: one worker per core, both legs of a call on one). Caller→agent packets
//! go through an `rtp-session` that masks tones and drops telephone-events; its signed events
//! are appended to a file and/or POSTed to a local HTTP collector, one line each, as they
//! complete. Agent→caller packets go through a session in mask mode `off` with no delay:
//! forwarded unchanged, and any digit in them is reported as a security signal.
//!
//! **A media node, not a reflector** (rtpengine's strict source is the model):
//! - each side's source is latched from the first packet the plugin *accepts* (a valid RTP
//!   packet of an announced type), unless given (`--caller`, `--agent-source`); the plugin
//!   binds that packet's SSRC. From then on packets from any other address are dropped and
//!   counted. Agent-side packets are only taken from the agent's IP address;
//! - the call ends when **both** directions have been idle for the idle time (a muted caller
//!   whose agent still talks keeps the call up), or after the maximum duration; the packets
//!   still delayed are then sent;
//! - event delivery never blocks media: the events file (the durable copy) is appended at
//!   once, the HTTP POST goes through a bounded queue to a sender thread that retries with
//!   back-off; what it cannot deliver stays in the file and is counted.
//!
//! **Card captures** ([`Control`]): whoever runs the relay (the media node, for an agent's
//! desktop) can start and cancel a capture on the caller→agent session; its records go to
//! the same sink as the digit events. A key the agent→caller session sees while a capture
//! runs is passed to the caller→agent session, which records it (`agent-dtmf`: the fraud
//! signal).

mod inbox;
mod leg;
mod live;
mod reactor;
mod sink;

use crate::keys::KeyRing;
use crate::plugin::{
    CallSettings, CaptureEvent, CaptureRequest, DigitEvent, MaskMode, Plugin, RtpConfig, RtpStats,
};
use crate::run::source_name;
use crate::sdp::PayloadTypes;
use crate::stream::RtpStream;
use anyhow::{anyhow, Context, Result};
use leg::{Clock, Commands, Leg, Out, Peer, Pump, Tap};
pub use live::{Live, BUCKETS_US, DIRECTIONS, DROP_REASONS};
use reactor::{Done, Reactor};
use sink::{open_sink, Sink};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A command for a running relay's caller→agent session, carried out within 50 ms.
pub enum Control {
    /// Start a card capture (refused and logged if one runs or the request is bad).
    StartCapture(Box<CaptureRequest>),
    /// Cancel the running capture.
    CancelCapture,
    /// A key was seen on the agent's leg (sent by the relay's own agent→caller leg).
    AgentKey,
    /// A re-negotiation changed the payload types the caller sends (`from_caller`: the
    /// callee's new SDP) or the agent sends (the caller's new SDP); that leg's session reads
    /// its packets with `types` from now on (a refused change is logged; the leg goes on
    /// with the types it had, and packets of new types are dropped — fail closed).
    PayloadTypes {
        /// Which leg: caller→agent (`true`) or agent→caller.
        from_caller: bool,
        /// The new types.
        types: PayloadTypes,
    },
}

/// How the relay runs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Where the caller sends its RTP.
    pub caller_bind: SocketAddr,
    /// Where the agent sends its RTP.
    pub agent_bind: SocketAddr,
    /// Where the agent receives RTP. Unspecified (`0.0.0.0`, or port 0 — an SDP on hold):
    /// the agent's source is latched from its first packet the plugin accepts and the
    /// caller's audio goes there; until then it is sent nowhere.
    pub agent: SocketAddr,
    /// Where the caller receives RTP, and the only source taken from it (default: the source
    /// of the first packet the plugin accepts).
    pub caller: Option<SocketAddr>,
    /// The only source taken on the agent side (default: the first source on the agent's IP
    /// whose packet the plugin accepts).
    pub agent_source: Option<SocketAddr>,
    /// Payload types the caller sends (what the agent's side announced it receives).
    pub types: PayloadTypes,
    /// Payload types the agent sends (`None`: the same as `types`).
    pub agent_types: Option<PayloadTypes>,
    /// Settings of the caller→agent direction (its key is set from the key ring; the
    /// agent→caller direction is watched: mode `off`, no delay, `.agent` after the call id).
    pub settings: CallSettings,
    /// File the signed events are appended to.
    pub events_file: Option<PathBuf>,
    /// Local HTTP endpoint each signed event is POSTed to (`http://127.0.0.1:PORT/path`).
    pub events_url: Option<String>,
    /// Local UDP address each signed event is sent to as one datagram (rtpengine's
    /// `--dtmf-log-dest`; loopback only).
    pub dtmf_log_dest: Option<SocketAddr>,
    /// Live counters the packets and presses are counted in as they pass (a media node's
    /// `/metrics`, and the call's own for `query`).
    pub live: Vec<Arc<Live>>,
    /// Where agent→caller packets go until the caller's source is latched (the address its
    /// SDP names; a media node knows it from the offer). `None`: they wait for the caller's
    /// first packet and are not sent before it.
    pub caller_hint: Option<SocketAddr>,
    /// End after this long without packets (once traffic started).
    pub idle: Duration,
    /// End after this long in any case.
    pub max_duration: Option<Duration>,
    /// Mask the agent→caller direction too (with the caller→agent settings, unsigned): for
    /// a call whose roles were inferred, not known — fail closed, whichever side types.
    pub mask_both: bool,
}

/// What a relay run did.
#[derive(Clone, Debug)]
pub struct RelaySummary {
    /// Counters of the caller→agent session.
    pub caller_to_agent: RtpStats,
    /// Counters of the agent→caller session.
    pub agent_to_caller: RtpStats,
    /// Digits reported on caller→agent.
    pub digits: Vec<DigitEvent>,
    /// Digits seen on agent→caller (security signal).
    pub agent_digits: Vec<DigitEvent>,
    /// Card-capture records of the caller→agent session.
    pub captures: Vec<CaptureEvent>,
    /// Packets dropped on the caller side because they came from another source.
    pub caller_foreign_sources: u64,
    /// Packets dropped on the agent side because they came from another source.
    pub agent_foreign_sources: u64,
    /// Signed events the HTTP collector did not take (they are in the events file).
    pub undelivered: u64,
    /// Why the caller→agent plugin instance trapped, if it did (its packets were dropped
    /// from then on).
    pub caller_trap: Option<String>,
    /// Caller packets dropped because that instance had trapped.
    pub caller_trap_dropped: u64,
    /// Why the agent→caller plugin instance trapped, if it did.
    pub agent_trap: Option<String>,
}

impl RelaySummary {
    /// Packets that may have carried the caller's audio and were dropped: refused by the
    /// plugin, or from a source other than the caller's.
    #[must_use]
    pub fn caller_audio_dropped(&self) -> u64 {
        crate::plugin::refused(&self.caller_to_agent)
            + self.caller_foreign_sources
            + self.caller_trap_dropped
    }
}

/// The two directions' sessions: caller→agent masked and signed (a fresh session nonce);
/// agent→caller watched — mode `off`, no delay, unsigned, `.agent` after the call id — or,
/// with `mask_both`, masked like the other direction (still unsigned).
fn leg_configs(cfg: &RelayConfig, keys: &KeyRing) -> Result<(RtpConfig, RtpConfig)> {
    let forward = cfg.types.rtp_config(CallSettings {
        key: Some(keys.plugin_key()?),
        ..cfg.settings.clone()
    });
    let (lookahead_ms, mask_mode) = if cfg.mask_both {
        (cfg.settings.lookahead_ms, cfg.settings.mask_mode)
    } else {
        (0, MaskMode::Off)
    };
    let watch = cfg
        .agent_types
        .as_ref()
        .unwrap_or(&cfg.types)
        .rtp_config(CallSettings {
            call_id: format!("{}.agent", cfg.settings.call_id),
            lookahead_ms,
            mask_mode,
            key: None,
            ..cfg.settings.clone()
        });
    Ok((forward, watch))
}

/// The caller→agent leg: masks, forwards to `to`, carries out the commands in `inbox`,
/// delivers each signed event and capture record (the start record first) to the sink.
fn forward_leg(
    call: RtpStream,
    sockets: (UdpSocket, UdpSocket),
    to: Destination,
    caller: Arc<Peer>,
    clock: Arc<Clock>,
    sink: Arc<Mutex<Sink>>,
    commands: Commands,
) -> Result<Pump> {
    let deliver = move |line: &str| {
        if let Ok(mut s) = sink.lock() {
            s.deliver(line);
        }
    };
    if let Some(start) = call.start_record() {
        deliver(start);
    }
    let (rx, tx) = sockets;
    let tap = Tap::new("caller→agent", 0, &clock);
    Pump::new(
        call,
        tap,
        rx,
        clock,
        caller,
        commands,
        {
            // Once known, the agent's address never changes: kept here, not read per packet.
            let mut known = None;
            Box::new(move |p| {
                if known.is_none() {
                    known = to.now();
                }
                match known {
                    Some(a) => tx.send_to(p, a).map(|_| ()),
                    None => Ok(()),
                }
            })
        },
        Box::new(move |out| match out {
            Out::Digit(e) => {
                if let Some(line) = &e.signed {
                    deliver(line);
                }
                eprintln!(
                    "tonemask relay: digit reported (seq {}, {}, {}..{} ms)",
                    e.seq,
                    source_name(e.source),
                    e.start_ms,
                    e.end_ms
                );
            }
            Out::Capture(c) => {
                if let Some(line) = &c.signed {
                    deliver(line);
                }
                let view = crate::card::agent_view(crate::card::event_items(c));
                eprintln!(
                    "tonemask relay: capture {} (seq {}): {view}",
                    c.capture, c.seq
                );
            }
        }),
    )
}

/// The agent→caller leg: forwards to the caller's (latched) address unchanged, raises a
/// security signal for every digit seen and passes it to the caller→agent session
/// (`forward`), which records it while a capture runs.
fn watch_leg(
    call: RtpStream,
    (rx, tx): (UdpSocket, UdpSocket),
    agent: Arc<Peer>,
    caller: &Peer,
    clock: Arc<Clock>,
    hint: Option<SocketAddr>,
    (inbox, forward): (Receiver<Control>, Sender<Control>),
) -> Result<Pump> {
    let caller_addr = Arc::clone(&caller.addr);
    let tap = Tap::new("agent→caller", 1, &clock);
    Pump::new(
        call,
        tap,
        rx,
        clock,
        agent,
        Commands {
            inbox,
            other: Some(forward.clone()),
        },
        {
            // Once latched, the caller's source never changes: kept here, not read per packet.
            let mut known = None;
            Box::new(move |p| {
                if known.is_none() {
                    known = caller_addr.get().copied();
                }
                match known {
                    Some(to) => tx.send_to(p, to).map(|_| ()),
                    // Not latched yet: the caller's SDP address, if known.
                    None => hint.map_or(Ok(()), |to| tx.send_to(p, to).map(|_| ())),
                }
            })
        },
        Box::new(move |out| {
            let Out::Digit(e) = out else {
                return;
            };
            // The digit itself is not logged: it may be card data all the same.
            eprintln!(
                "tonemask relay: SECURITY: a DTMF digit ({}, {}..{} ms) was sent towards the caller — tones injected on the agent side?",
                source_name(e.source),
                e.start_ms,
                e.end_ms
            );
            // The forward leg may have ended already; then no capture runs either.
            let _ = forward.send(Control::AgentKey);
        }),
    )
}

/// A channel a leg's result arrives on, and the `Done` that sends it.
fn outcome() -> (Done, Receiver<Result<Leg>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    (
        Box::new(move |leg| {
            let _ = tx.send(leg);
        }),
        rx,
    )
}

/// Runs the relay until both directions go idle, the maximum duration passes or `stop` is set
/// (a signal handler's flag): then it sends what is still delayed and delivers its events.
pub fn run_relay(
    plugin: &Plugin,
    cfg: &RelayConfig,
    keys: &KeyRing,
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<RelaySummary> {
    let caller_sock = UdpSocket::bind(cfg.caller_bind)
        .with_context(|| format!("cannot bind the caller side to {}", cfg.caller_bind))?;
    let agent_sock = UdpSocket::bind(cfg.agent_bind)
        .with_context(|| format!("cannot bind the agent side to {}", cfg.agent_bind))?;
    announce(cfg);
    run_relay_on(plugin, cfg, keys, [caller_sock, agent_sock], stop, None)
}

/// As [`run_relay`], on sockets already bound (caller side, agent side; `cfg`'s bind
/// addresses are then only names), ending also when `stop` is set, and taking commands
/// for its sessions on `control` (a channel whose sender the caller keeps; the caller→agent
/// leg passes on what is meant for the other one) — how the media node runs each call.
pub fn run_relay_on(
    plugin: &Plugin,
    cfg: &RelayConfig,
    keys: &KeyRing,
    [caller_sock, agent_sock]: [UdpSocket; 2],
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    control: Option<(Sender<Control>, Receiver<Control>)>,
) -> Result<RelaySummary> {
    let (control_tx, control_rx) = control.unwrap_or_else(std::sync::mpsc::channel);
    let (watch_tx, watch_rx) = std::sync::mpsc::channel();
    let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sink, sender) = open_sink(cfg, &closing)?;
    let (forward, watch) = leg_configs(cfg, keys)?;
    let (caller, agent, clock) = parties(cfg, stop);
    let to_agent = Destination {
        given: reachable(cfg.agent),
        latched: Arc::clone(&agent.addr),
    };

    let sink = Arc::new(Mutex::new(sink));
    let up = forward_leg(
        RtpStream::open(plugin, &forward)?,
        (caller_sock.try_clone()?, agent_sock.try_clone()?),
        to_agent,
        Arc::clone(&caller),
        Arc::clone(&clock),
        Arc::clone(&sink),
        Commands {
            inbox: control_rx,
            other: Some(watch_tx),
        },
    )?;
    let down = watch_leg(
        RtpStream::open(plugin, &watch)?,
        (agent_sock, caller_sock),
        Arc::new(agent),
        &caller,
        Arc::clone(&clock),
        cfg.caller_hint,
        (watch_rx, control_tx),
    )?;
    let (up_done, up_result) = outcome();
    let (down_done, down_result) = outcome();
    Reactor::shared()?.run(vec![(up, up_done), (down, down_done)])?;
    let lost = || anyhow!("the relay worker dropped the leg");
    let up = up_result.recv().map_err(|_| lost())?;
    let down = down_result.recv().map_err(|_| lost())?;
    // The legs are done: the end record goes after everything else, then the queue closes
    // and the sender delivers what is left, one attempt each.
    let overflow = {
        let mut sink = sink.lock().map_err(|_| anyhow!("the event sink's lock"))?;
        if let Some(end) = up.as_ref().ok().and_then(|l| l.end_record.as_deref()) {
            sink.deliver(end);
        }
        sink.close()
    };
    closing.store(true, std::sync::atomic::Ordering::Relaxed);
    let failed = sender.map_or(0, |h| h.join().unwrap_or(0));
    let (up, down) = (up?, down?);
    Ok(RelaySummary {
        caller_to_agent: up.stats,
        agent_to_caller: down.stats,
        digits: up.events,
        agent_digits: down.events,
        captures: up.captures,
        caller_foreign_sources: up.foreign_sources,
        agent_foreign_sources: down.foreign_sources,
        undelivered: failed + overflow,
        caller_trap: up.trap,
        caller_trap_dropped: up.trap_dropped,
        agent_trap: down.trap,
    })
}

/// An SDP media address packets may be sent to: not `0.0.0.0` / `::` (hold, or "not yet":
/// the OS would deliver to this machine) and not port 0 (a disabled stream).
#[must_use]
pub fn reachable(addr: SocketAddr) -> Option<SocketAddr> {
    (!addr.ip().is_unspecified() && addr.port() != 0).then_some(addr)
}

/// Where the caller's audio goes: the agent's address, or — when its SDP gave none — the
/// source latched from its first packet (nowhere before that).
struct Destination {
    given: Option<SocketAddr>,
    latched: Arc<std::sync::OnceLock<SocketAddr>>,
}

impl Destination {
    fn now(&self) -> Option<SocketAddr> {
        self.given.or_else(|| self.latched.get().copied())
    }
}

/// The two sides (caller, agent: the sources each takes) and the call's clock.
fn parties(
    cfg: &RelayConfig,
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> (Arc<Peer>, Peer, Arc<Clock>) {
    let caller = Arc::new(Peer {
        name: "caller",
        ip: None,
        addr: Arc::new(
            cfg.caller
                .map(std::sync::OnceLock::from)
                .unwrap_or_default(),
        ),
    });
    let agent = Peer {
        name: "agent",
        ip: reachable(cfg.agent).map(|a| a.ip()),
        addr: Arc::new(
            cfg.agent_source
                .map(std::sync::OnceLock::from)
                .unwrap_or_default(),
        ),
    };
    let clock = Arc::new(Clock {
        idle: cfg.idle,
        max: cfg.max_duration,
        start: Instant::now(),
        last: std::sync::atomic::AtomicU64::new(0),
        stop,
        live: cfg.live.clone(),
    });
    (caller, agent, clock)
}

/// The relay's plan, on stderr.
fn announce(cfg: &RelayConfig) {
    eprintln!(
        "tonemask relay: caller → {} ⇒ {} → agent {} (mask {}, {} ms); agent → {} ⇒ caller {}",
        cfg.caller_bind,
        cfg.agent_bind,
        cfg.agent,
        mode_name(cfg.settings.mask_mode),
        cfg.settings.lookahead_ms,
        cfg.agent_bind,
        cfg.caller.map_or_else(
            || "(latched from its first valid packet)".into(),
            |a| a.to_string()
        )
    );
}

fn mode_name(m: MaskMode) -> &'static str {
    match m {
        MaskMode::Silence => "silence",
        MaskMode::Tone => "tone",
        MaskMode::Noise => "noise",
        MaskMode::Off => "off",
    }
}
