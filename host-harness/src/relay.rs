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
//! forwarded unchanged, and any digit in them is reported as a security signal. The caller's
//! address is taken from its first packet unless given (symmetric RTP).
//!
//! The relay ends when no packet has arrived for the idle time (after the first one), or
//! after the maximum duration; it then flushes the packets still delayed.

use crate::keys::KeyRing;
use crate::plugin::{DigitEvent, MaskMode, Plugin, RtpConfig, RtpStats, Twist};
use crate::run::source_name;
use crate::sdp::PayloadTypes;
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
    /// Where the caller receives RTP (default: where its packets come from).
    pub caller: Option<SocketAddr>,
    /// Payload types of the call.
    pub types: PayloadTypes,
    /// Mask mode on the caller→agent direction.
    pub mode: MaskMode,
    /// Packet delay on the caller→agent direction, ms.
    pub lookahead_ms: u32,
    /// Twist limits.
    pub twist: Twist,
    /// Call id in the events.
    pub call_id: String,
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
}

/// Where signed events go.
struct Sink {
    file: Option<std::fs::File>,
    url: Option<HttpTarget>,
}

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
        if let Some(u) = &self.url {
            if let Err(e) = u.post(line) {
                eprintln!("tonemask relay: warning: event not delivered over HTTP: {e:#}");
            }
        }
    }
}

/// When a direction stops.
#[derive(Clone, Copy)]
struct Stop {
    idle: Duration,
    max: Option<Duration>,
    start: Instant,
}

impl Stop {
    fn due(&self, last: Option<Instant>) -> bool {
        self.max.is_some_and(|m| self.start.elapsed() >= m)
            || last.is_some_and(|t| t.elapsed() >= self.idle)
    }
}

/// One direction's result.
struct Leg {
    stats: RtpStats,
    events: Vec<DigitEvent>,
}

/// Runs the relay until it goes idle or the maximum duration passes.
pub fn run_relay(plugin: &Plugin, cfg: &RelayConfig, keys: &KeyRing) -> Result<RelaySummary> {
    let caller_sock = UdpSocket::bind(cfg.caller_bind)
        .with_context(|| format!("cannot bind the caller side to {}", cfg.caller_bind))?;
    let agent_sock = UdpSocket::bind(cfg.agent_bind)
        .with_context(|| format!("cannot bind the agent side to {}", cfg.agent_bind))?;
    let file = match &cfg.events_file {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open events file {}", p.display()))?,
        ),
        None => None,
    };
    let url = cfg
        .events_url
        .as_deref()
        .map(HttpTarget::parse)
        .transpose()?;
    let sink = Sink { file, url };
    let config = |mode, lookahead_ms, call_id: String, key| RtpConfig {
        call_id,
        audio: cfg.types.audio.clone(),
        telephone_event: cfg.types.telephone_event,
        red: cfg.types.red,
        lookahead_ms,
        mask_mode: mode,
        twist: cfg.twist,
        key,
    };
    let forward = config(
        cfg.mode,
        cfg.lookahead_ms,
        cfg.call_id.clone(),
        Some(keys.plugin_key()),
    );
    let watch = config(MaskMode::Off, 0, format!("{}.agent", cfg.call_id), None);
    let caller_addr = Arc::new(Mutex::new(cfg.caller));
    let start = Instant::now();
    eprintln!(
        "tonemask relay: caller → {} ⇒ {} → agent {} (mask {}, {} ms); agent → {} ⇒ caller {}",
        cfg.caller_bind,
        cfg.agent_bind,
        cfg.agent,
        mode_name(cfg.mode),
        cfg.lookahead_ms,
        cfg.agent_bind,
        cfg.caller.map_or_else(
            || "(learned from its first packet)".into(),
            |a| a.to_string()
        )
    );

    let up = {
        let inst = plugin.instantiate()?;
        let rx = caller_sock.try_clone()?;
        let tx = agent_sock.try_clone()?;
        let agent = cfg.agent;
        let learned = Arc::clone(&caller_addr);
        let stop = Stop {
            idle: cfg.idle,
            max: cfg.max_duration,
            start,
        };
        let mut sink = sink;
        std::thread::spawn(move || -> Result<Leg> {
            pump(
                inst,
                &forward,
                &rx,
                stop,
                |from| {
                    let mut c = learned.lock().map_err(|_| anyhow!("lock poisoned"))?;
                    // Port 0 is no reply address (SIPp's play_dtmf sends from it).
                    if c.is_none() && from.port() != 0 {
                        eprintln!("tonemask relay: caller at {from}");
                        *c = Some(from);
                    }
                    Ok(())
                },
                |p| tx.send_to(p, agent).map(|_| ()),
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
            )
        })
    };
    let down = {
        let inst = plugin.instantiate()?;
        let rx = agent_sock;
        let tx = caller_sock;
        let stop = Stop {
            idle: cfg.idle,
            max: cfg.max_duration,
            start,
        };
        std::thread::spawn(move || -> Result<Leg> {
            pump(
                inst,
                &watch,
                &rx,
                stop,
                |_| Ok(()),
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
    };
    let up = up
        .join()
        .map_err(|_| anyhow!("caller→agent thread panicked"))??;
    let down = down
        .join()
        .map_err(|_| anyhow!("agent→caller thread panicked"))??;
    Ok(RelaySummary {
        caller_to_agent: up.stats,
        agent_to_caller: down.stats,
        digits: up.events,
        agent_digits: down.events,
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

/// One direction: receive, push through the session, send what it forwards, report events.
fn pump(
    mut inst: crate::plugin::Instance,
    config: &RtpConfig,
    rx: &UdpSocket,
    stop: Stop,
    mut on_source: impl FnMut(SocketAddr) -> Result<()>,
    mut send: impl FnMut(&[u8]) -> std::io::Result<()>,
    mut on_event: impl FnMut(&DigitEvent),
) -> Result<Leg> {
    let session = inst.rtp_create(config)?;
    rx.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut buf = vec![0u8; 65_536];
    let mut last: Option<Instant> = None;
    let mut events = Vec::new();
    let mut refused = 0u64;
    let mut unsent = 0u64;
    loop {
        if stop.due(last) {
            break;
        }
        let (n, from) = match rx.recv_from(&mut buf) {
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
        last = Some(Instant::now());
        on_source(from)?;
        match inst.rtp_push(session, &buf[..n])? {
            Ok(out) => {
                for p in out {
                    if let Err(e) = send(&p) {
                        unsent += 1;
                        if unsent <= 5 {
                            eprintln!("tonemask relay: warning: sending a packet: {e}");
                        }
                    }
                }
            }
            Err(reason) => {
                refused += 1;
                if refused <= 5 {
                    eprintln!("tonemask relay: warning: packet from {from} dropped: {reason}");
                }
            }
        }
        for e in inst.rtp_drain_events(session)? {
            on_event(&e);
            events.push(e);
        }
    }
    for p in inst.rtp_flush(session)? {
        let _ = send(&p);
    }
    for e in inst.rtp_drain_events(session)? {
        on_event(&e);
        events.push(e);
    }
    let stats = inst.rtp_stats(session)?;
    Ok(Leg { stats, events })
}
