//! `tonemask relay`: a live UDP RTP relay between a caller leg and an agent leg.
//!
//! ```text
//!   caller ──RTP──▶ [caller-side socket] ──plugin (mask)──▶ [agent-side socket] ──▶ agent
//!   caller ◀──────  [caller-side socket] ◀─plugin (watch)── [agent-side socket] ◀── agent
//! ```
//!
//! Each direction runs in its own thread with its own plugin instance. Caller→agent packets
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

use crate::keys::KeyRing;
use crate::plugin::{CallSettings, DigitEvent, MaskMode, Plugin, RtpConfig, RtpStats};
use crate::run::source_name;
use crate::sdp::PayloadTypes;
use crate::stream::{Pushed, RtpStream};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the relay runs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Where the caller sends its RTP.
    pub caller_bind: SocketAddr,
    /// Where the agent sends its RTP.
    pub agent_bind: SocketAddr,
    /// Where the agent receives RTP.
    pub agent: SocketAddr,
    /// Where the caller receives RTP, and the only source taken from it (default: the source
    /// of the first packet the plugin accepts).
    pub caller: Option<SocketAddr>,
    /// The only source taken on the agent side (default: the first source on the agent's IP
    /// whose packet the plugin accepts).
    pub agent_source: Option<SocketAddr>,
    /// Payload types of the call.
    pub types: PayloadTypes,
    /// Settings of the caller→agent direction (its key is set from the key ring; the
    /// agent→caller direction is watched: mode `off`, no delay, `.agent` after the call id).
    pub settings: CallSettings,
    /// File the signed events are appended to.
    pub events_file: Option<PathBuf>,
    /// Local HTTP endpoint each signed event is POSTed to (`http://127.0.0.1:PORT/path`).
    pub events_url: Option<String>,
    /// End after this long without packets (once traffic started).
    pub idle: Duration,
    /// End after this long in any case.
    pub max_duration: Option<Duration>,
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

/// Where signed events go: the file at once, the HTTP collector through a sender thread.
struct Sink {
    file: Option<std::fs::File>,
    queue: Option<std::sync::mpsc::SyncSender<String>>,
    /// Events the queue had no room for.
    overflow: u64,
}

/// Signed events waiting for the HTTP collector, at most.
const HTTP_QUEUE: usize = 1024;
/// Attempts per event, with back-off doubling from [`RETRY_FIRST`].
const HTTP_ATTEMPTS: u32 = 4;
const RETRY_FIRST: Duration = Duration::from_millis(250);

struct HttpTarget {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl HttpTarget {
    /// Parses `http://HOST:PORT/PATH`; the host must be loopback (the events carry the
    /// digits: a TLS-capable forwarder on the same machine takes them further).
    fn parse(url: &str) -> Result<HttpTarget> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            anyhow!("--events-url must be http://HOST:PORT/PATH on this machine (got {url})")
        })?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr = hostport
            .to_socket_addrs()
            .with_context(|| format!("--events-url: cannot resolve {hostport}"))?
            .next()
            .ok_or_else(|| anyhow!("--events-url: {hostport} has no address"))?;
        if !addr.ip().is_loopback() {
            bail!(
                "--events-url must point to this machine (loopback), not {}: events carry card digits and plain HTTP must not leave the host",
                addr.ip()
            );
        }
        Ok(HttpTarget {
            addr,
            host: hostport.to_string(),
            path: path.to_string(),
        })
    }

    fn post(&self, body: &str) -> Result<()> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
            .with_context(|| format!("connecting to {}", self.addr))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.path,
            self.host,
            body.len()
        )?;
        let mut reply = Vec::new();
        let _ = s.take(4096).read_to_end(&mut reply);
        let status = String::from_utf8_lossy(&reply);
        let code = status.split_whitespace().nth(1).unwrap_or("");
        if !code.starts_with('2') {
            bail!(
                "event collector answered {:?}",
                status.lines().next().unwrap_or("nothing")
            );
        }
        Ok(())
    }
}

impl Sink {
    fn deliver(&mut self, line: &str) {
        if let Some(f) = &mut self.file {
            if let Err(e) = writeln!(f, "{line}").and_then(|()| f.flush()) {
                eprintln!("tonemask relay: error: writing the events file: {e}");
            }
        }
        if let Some(q) = &self.queue {
            if q.try_send(line.to_string()).is_err() {
                self.overflow += 1;
                eprintln!(
                    "tonemask relay: warning: event queue for the HTTP collector is full; the event is only in the events file"
                );
            }
        }
    }
}

/// The HTTP sender: posts each queued line, retrying with back-off; once `closing` is set,
/// one attempt per line. Returns how many lines it could not deliver.
fn http_sender(
    target: HttpTarget,
    rx: std::sync::mpsc::Receiver<String>,
    closing: Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    let mut failed = 0;
    // Whether the last attempt failed: once the call is over, a collector that is down gets
    // no more attempts (the lines are in the events file).
    let mut down = false;
    for line in rx {
        let closed = || closing.load(std::sync::atomic::Ordering::Relaxed);
        if down && closed() {
            failed += 1;
            continue;
        }
        let mut wait = RETRY_FIRST;
        for attempt in 1..=HTTP_ATTEMPTS {
            match target.post(&line) {
                Ok(()) => {
                    down = false;
                    break;
                }
                Err(e) => {
                    if attempt == HTTP_ATTEMPTS || closed() {
                        eprintln!("tonemask relay: warning: event not delivered over HTTP (it is in the events file, if one is set): {e:#}");
                        failed += 1;
                        down = true;
                        break;
                    }
                    std::thread::sleep(wait);
                    wait *= 2;
                }
            }
        }
    }
    failed
}

/// When the call ends: both directions idle, or the maximum duration.
struct Clock {
    idle: Duration,
    max: Option<Duration>,
    start: Instant,
    /// Last packet in either direction.
    last: Mutex<Option<Instant>>,
}

impl Clock {
    fn touch(&self) {
        if let Ok(mut l) = self.last.lock() {
            *l = Some(Instant::now());
        }
    }

    fn due(&self) -> bool {
        let last = self.last.lock().map(|l| *l).unwrap_or(None);
        self.max.is_some_and(|m| self.start.elapsed() >= m)
            || last.is_some_and(|t| t.elapsed() >= self.idle)
    }
}

/// Which sources a side takes packets from.
struct Peer {
    /// Side name for messages.
    name: &'static str,
    /// The only IP address taken (agent side).
    ip: Option<std::net::IpAddr>,
    /// The latched (or given) source.
    addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl Peer {
    /// The latched source, if any.
    fn latched(&self) -> Option<SocketAddr> {
        self.addr.lock().map(|a| *a).unwrap_or(None)
    }

    fn latch(&self, from: SocketAddr) {
        if let Ok(mut a) = self.addr.lock() {
            if a.is_none() {
                eprintln!("tonemask relay: {} at {from}", self.name);
                *a = Some(from);
            }
        }
    }
}

/// One direction's result.
struct Leg {
    stats: RtpStats,
    events: Vec<DigitEvent>,
    foreign_sources: u64,
    /// The session's signed end-of-call record.
    end_record: Option<String>,
    /// Why the plugin trapped, if it did.
    trap: Option<String>,
    /// Packets dropped because it had trapped.
    trap_dropped: u64,
}

/// Where the signed events go: the events file, and a sender thread for the HTTP collector
/// (it stops once `closing` is set and its queue is empty; it returns how many it could not
/// deliver).
fn open_sink(
    cfg: &RelayConfig,
    closing: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(Sink, Option<std::thread::JoinHandle<u64>>)> {
    let file = match &cfg.events_file {
        Some(p) => Some(crate::files::open_append_private(p)?),
        None => None,
    };
    let url = cfg
        .events_url
        .as_deref()
        .map(HttpTarget::parse)
        .transpose()?;
    let (queue, sender) = match url {
        Some(target) => {
            let (tx, rx) = std::sync::mpsc::sync_channel(HTTP_QUEUE);
            let closing = Arc::clone(closing);
            let h = std::thread::spawn(move || http_sender(target, rx, closing));
            (Some(tx), Some(h))
        }
        None => (None, None),
    };
    let sink = Sink {
        file,
        queue,
        overflow: 0,
    };
    Ok((sink, sender))
}

/// The two directions' sessions: caller→agent masked and signed (a fresh session nonce);
/// agent→caller watched — mode `off`, no delay, unsigned, `.agent` after the call id.
fn leg_configs(cfg: &RelayConfig, keys: &KeyRing) -> Result<(RtpConfig, RtpConfig)> {
    let config = |settings| RtpConfig {
        settings,
        audio: cfg.types.audio.clone(),
        telephone_event: cfg.types.telephone_event,
        red: cfg.types.red,
    };
    let forward = config(CallSettings {
        key: Some(keys.plugin_key()?),
        ..cfg.settings.clone()
    });
    let watch = config(CallSettings {
        call_id: format!("{}.agent", cfg.settings.call_id),
        lookahead_ms: 0,
        mask_mode: MaskMode::Off,
        key: None,
        ..cfg.settings.clone()
    });
    Ok((forward, watch))
}

/// The caller→agent thread: masks, forwards to `to`, delivers each signed event (and the
/// end-of-call record) to the sink; returns its leg and the events the queue had no room for.
fn spawn_forward(
    call: RtpStream,
    rx: UdpSocket,
    tx: UdpSocket,
    to: std::net::SocketAddr,
    caller: Arc<Peer>,
    clock: Arc<Clock>,
    mut sink: Sink,
) -> std::thread::JoinHandle<Result<(Leg, u64)>> {
    std::thread::spawn(move || -> Result<(Leg, u64)> {
        let leg = pump(
            call,
            "caller→agent",
            &rx,
            &clock,
            &caller,
            |p| tx.send_to(p, to).map(|_| ()),
            |e| {
                if let Some(line) = &e.signed {
                    sink.deliver(line);
                }
                eprintln!(
                    "tonemask relay: digit reported (seq {}, {}, {}..{} ms)",
                    e.seq,
                    source_name(e.source),
                    e.start_ms,
                    e.end_ms
                );
            },
        )?;
        if let Some(end) = &leg.end_record {
            sink.deliver(end);
        }
        Ok((leg, sink.overflow))
    })
}

/// The agent→caller thread: forwards to the caller's (latched) address unchanged, raises a
/// security signal for every digit seen.
fn spawn_watch(
    call: RtpStream,
    rx: UdpSocket,
    tx: UdpSocket,
    agent: Peer,
    caller: &Peer,
    clock: Arc<Clock>,
) -> std::thread::JoinHandle<Result<Leg>> {
    let caller_addr = Arc::clone(&caller.addr);
    std::thread::spawn(move || -> Result<Leg> {
        pump(
            call,
            "agent→caller",
            &rx,
            &clock,
            &agent,
            |p| match *caller_addr
                .lock()
                .map_err(|_| std::io::Error::other("lock"))?
            {
                Some(to) => tx.send_to(p, to).map(|_| ()),
                None => Ok(()), // the caller's address is not known yet
            },
            |e| {
                // The digit itself is not logged: it may be card data all the same.
                eprintln!(
                    "tonemask relay: SECURITY: a DTMF digit ({}, {}..{} ms) was sent towards the caller — tones injected on the agent side?",
                    source_name(e.source),
                    e.start_ms,
                    e.end_ms
                );
            },
        )
    })
}

/// Runs the relay until both directions go idle or the maximum duration passes.
pub fn run_relay(plugin: &Plugin, cfg: &RelayConfig, keys: &KeyRing) -> Result<RelaySummary> {
    let caller_sock = UdpSocket::bind(cfg.caller_bind)
        .with_context(|| format!("cannot bind the caller side to {}", cfg.caller_bind))?;
    let agent_sock = UdpSocket::bind(cfg.agent_bind)
        .with_context(|| format!("cannot bind the agent side to {}", cfg.agent_bind))?;
    let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sink, sender) = open_sink(cfg, &closing)?;
    let (forward, watch) = leg_configs(cfg, keys)?;
    let caller = Arc::new(Peer {
        name: "caller",
        ip: None,
        addr: Arc::new(Mutex::new(cfg.caller)),
    });
    let agent = Peer {
        name: "agent",
        ip: Some(cfg.agent.ip()),
        addr: Arc::new(Mutex::new(cfg.agent_source)),
    };
    let clock = Arc::new(Clock {
        idle: cfg.idle,
        max: cfg.max_duration,
        start: Instant::now(),
        last: Mutex::new(None),
    });
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

    let up = {
        let call = RtpStream::open(plugin, &forward)?;
        let rx = caller_sock.try_clone()?;
        let tx = agent_sock.try_clone()?;
        spawn_forward(
            call,
            rx,
            tx,
            cfg.agent,
            Arc::clone(&caller),
            Arc::clone(&clock),
            sink,
        )
    };
    let down = {
        let call = RtpStream::open(plugin, &watch)?;
        spawn_watch(
            call,
            agent_sock,
            caller_sock,
            agent,
            &caller,
            Arc::clone(&clock),
        )
    };
    let up = up
        .join()
        .map_err(|_| anyhow!("caller→agent thread panicked"));
    let down = down
        .join()
        .map_err(|_| anyhow!("agent→caller thread panicked"));
    // The queue closed with the caller→agent thread: the sender delivers what is left, one
    // attempt each.
    closing.store(true, std::sync::atomic::Ordering::Relaxed);
    let failed = sender.map_or(0, |h| h.join().unwrap_or(0));
    let ((up, overflow), down) = (up??, down??);
    Ok(RelaySummary {
        caller_to_agent: up.stats,
        agent_to_caller: down.stats,
        digits: up.events,
        agent_digits: down.events,
        caller_foreign_sources: up.foreign_sources,
        agent_foreign_sources: down.foreign_sources,
        undelivered: failed + overflow,
        caller_trap: up.trap,
        caller_trap_dropped: up.trap_dropped,
        agent_trap: down.trap,
    })
}

fn mode_name(m: MaskMode) -> &'static str {
    match m {
        MaskMode::Silence => "silence",
        MaskMode::Tone => "tone",
        MaskMode::Noise => "noise",
        MaskMode::Off => "off",
    }
}

/// One direction: receive, admit the source, push through the stream (waking at its
/// deadlines), send what it forwards, report events.
fn pump(
    mut call: RtpStream,
    name: &str,
    rx: &UdpSocket,
    clock: &Clock,
    peer: &Peer,
    mut send: impl FnMut(&[u8]) -> std::io::Result<()>,
    mut on_event: impl FnMut(&DigitEvent),
) -> Result<Leg> {
    let mut buf = vec![0u8; 65_536];
    let mut events = Vec::new();
    let (mut refused, mut unsent, mut foreign) = (0u64, 0u64, 0u64);
    // Host time for the session: ms since this leg started (monotonic).
    let started = std::time::Instant::now();
    let now_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut sent = |p: &[u8], unsent: &mut u64| {
        if let Err(e) = send(p) {
            *unsent += 1;
            if *unsent <= 5 {
                eprintln!("tonemask relay: warning: sending a packet: {e}");
            }
        }
    };
    let mut report = |call: &mut RtpStream, events: &mut Vec<DigitEvent>| {
        for e in call.take_events() {
            on_event(&e);
            events.push(e);
        }
    };
    loop {
        if clock.due() {
            break;
        }
        // Wake for the stream's own deadline (a press timing out, held audio leaving when
        // the sender goes quiet), and at least every 50 ms to check the call's end.
        let wait = call
            .next_timeout()
            .map_or(50, |t| t.saturating_sub(now_ms()).clamp(1, 50));
        rx.set_read_timeout(Some(Duration::from_millis(wait)))?;
        let received = rx.recv_from(&mut buf);
        for (_, p) in call.tick(now_ms()) {
            sent(&p, &mut unsent);
        }
        report(&mut call, &mut events);
        let (n, from) = match received {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e).context("receiving RTP"),
        };
        let latched = peer.latched();
        let admitted = match latched {
            Some(a) => a == from,
            None => peer.ip.is_none_or(|ip| ip == from.ip()),
        };
        if !admitted {
            foreign += 1;
            if foreign <= 5 {
                eprintln!(
                    "tonemask relay: warning: packet from {from} dropped: not the {}'s source",
                    peer.name
                );
            }
            continue;
        }
        clock.touch();
        match call.push(now_ms(), &buf[..n]) {
            Pushed::Forward(out) => {
                if latched.is_none() {
                    peer.latch(from);
                }
                for p in out {
                    sent(&p, &mut unsent);
                }
            }
            Pushed::Refused(reason) => {
                refused += 1;
                if refused <= 5 {
                    eprintln!("tonemask relay: warning: packet from {from} dropped: {reason}");
                }
            }
            Pushed::Dropped => {
                if call.trap_dropped() == 1 {
                    eprintln!(
                        "tonemask relay: ALARM: the plugin trapped on {name}; its packets are dropped from now on, never sent unmasked ({})",
                        call.trap().unwrap_or("unknown")
                    );
                }
            }
        }
        report(&mut call, &mut events);
    }
    let ended = call.finish();
    for p in &ended.packets {
        sent(p, &mut unsent);
    }
    report(&mut call, &mut events);
    Ok(Leg {
        stats: ended.stats.unwrap_or_else(crate::plugin::no_stats),
        events,
        foreign_sources: foreign,
        end_record: ended.end_record,
        trap: call.trap().map(String::from),
        trap_dropped: call.trap_dropped(),
    })
}
