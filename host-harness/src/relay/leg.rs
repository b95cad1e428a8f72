//! One direction of the relay: when the call ends, which source a side takes, and the
//! receive → admit → push → send loop around an [`RtpStream`].

use super::inbox::{Inbox, SLOTS};
use super::Control;
use crate::plugin::{CaptureEvent, DigitEvent, RtpStats};
use crate::stream::{Pushed, RtpStream};
use anyhow::{Context, Result};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// When the call ends: both directions idle, or the maximum duration.
pub(super) struct Clock {
    pub(super) idle: Duration,
    pub(super) max: Option<Duration>,
    pub(super) start: Instant,
    /// Last packet in either direction: ms since `start`, plus one (0: none yet).
    pub(super) last: std::sync::atomic::AtomicU64,
    /// Set by whoever ends the call from outside (the media node's `delete`).
    pub(super) stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Where the call's packets are counted as they pass (the node's counters, the call's).
    pub(super) live: Vec<Arc<super::Live>>,
}

/// Which direction a leg is: its name in messages, its index in the live counters (0:
/// caller→agent), and those counters, if the call has any.
pub(super) struct Tap {
    pub(super) name: &'static str,
    pub(super) dir: usize,
    pub(super) live: Vec<Arc<super::Live>>,
}

impl Tap {
    /// Direction `dir` (0: caller→agent) named `name`, counted where `clock`'s call counts.
    pub(super) fn new(name: &'static str, dir: usize, clock: &Clock) -> Self {
        Tap {
            name,
            dir,
            live: clock.live.clone(),
        }
    }

    /// A packet was taken to the plugin, which took `took` over it.
    fn received(&self, took: Duration) {
        for l in &self.live {
            l.received(self.dir);
            l.processed(took);
        }
    }

    /// A packet was sent on.
    fn sent(&self) {
        for l in &self.live {
            l.sent(self.dir);
        }
    }

    /// Caller→callee packets dropped (`reason`: a [`super::live::DROP_REASONS`] index).
    fn dropped(&self, reason: usize, n: u64) {
        if self.dir == 0 && n > 0 {
            for l in &self.live {
                l.dropped(reason, n);
            }
        }
    }

    /// The plugin's counters moved from `before` to `now`: its drops, as they happen.
    fn plugin_drops(&self, before: &RtpStats, now: &RtpStats) {
        let ((was, was_events), (is, is_events)) = (
            super::live::plugin_drops(before),
            super::live::plugin_drops(now),
        );
        for (reason, (a, b)) in was.iter().zip(is).enumerate() {
            self.dropped(reason, b.saturating_sub(*a));
        }
        if self.dir == 0 {
            for l in &self.live {
                l.event_packets_dropped(is_events.saturating_sub(was_events));
            }
        }
    }

    /// A key press was reported.
    fn digit(&self) {
        for l in &self.live {
            l.digit(self.dir);
        }
    }
}

impl Clock {
    /// Ms from the call's start to `now`.
    fn elapsed_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    /// A packet arrived at `now`.
    pub(super) fn touch(&self, now: Instant) {
        let now = self.elapsed_ms(now).saturating_add(1);
        self.last.store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the call is over at `now`: idle, past its maximum duration, or stopped from
    /// outside.
    pub(super) fn due(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.start);
        let now = self.elapsed_ms(now);
        let last = self.last.load(std::sync::atomic::Ordering::Relaxed);
        let idle = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
        self.max.is_some_and(|m| elapsed >= m)
            || (last > 0 && now.saturating_sub(last - 1) >= idle)
            || self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Which sources a side takes packets from.
pub(super) struct Peer {
    /// Side name for messages.
    pub(super) name: &'static str,
    /// The only IP address taken (agent side).
    pub(super) ip: Option<std::net::IpAddr>,
    /// The latched (or given) source.
    pub(super) addr: Arc<OnceLock<SocketAddr>>,
}

impl Peer {
    /// The latched source, if any.
    pub(super) fn latched(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }

    /// Whether a datagram from `from` is taken: from the latched source, or — before one is
    /// latched — from the side's IP address (any, on the caller side).
    pub(super) fn admits(&self, latched: Option<SocketAddr>, from: SocketAddr) -> bool {
        match latched {
            Some(a) => a == from,
            None => self.ip.is_none_or(|ip| ip == from.ip()),
        }
    }

    pub(super) fn latch(&self, from: SocketAddr) {
        if self.addr.set(from).is_ok() {
            eprintln!("tonemask relay: {} at {from}", self.name);
        }
    }
}

/// One direction's result.
pub(super) struct Leg {
    pub(super) stats: RtpStats,
    pub(super) events: Vec<DigitEvent>,
    /// Card-capture records of its session.
    pub(super) captures: Vec<CaptureEvent>,
    pub(super) foreign_sources: u64,
    /// The session's signed end-of-call record.
    pub(super) end_record: Option<String>,
    /// Why the plugin trapped, if it did.
    pub(super) trap: Option<String>,
    /// Packets dropped because it had trapped.
    pub(super) trap_dropped: u64,
}

/// The first packet dropped because the plugin trapped raises the alarm.
fn alarm_once(call: &RtpStream, name: &str) {
    if call.trap_dropped() == 1 {
        eprintln!(
            "tonemask relay: ALARM: the plugin trapped on {name}; its packets are dropped from now on, never sent unmasked ({})",
            call.trap().unwrap_or("unknown")
        );
    }
}

/// Counts one more of something and warns about the first five.
fn warn_first(count: &mut u64, message: impl FnOnce() -> String) {
    *count += 1;
    if *count <= 5 {
        eprintln!("tonemask relay: warning: {}", message());
    }
}

/// What a leg's session reported.
pub(super) enum Out<'a> {
    /// A key press.
    Digit(&'a DigitEvent),
    /// A card capture's progress.
    Capture(&'a CaptureEvent),
}

/// What a leg's session reported so far.
#[derive(Default)]
struct Reported {
    events: Vec<DigitEvent>,
    captures: Vec<CaptureEvent>,
}

impl Reported {
    /// Takes the session's new events and capture records, each passed to `on_out` first.
    fn take(&mut self, call: &mut RtpStream, tap: &Tap, on_out: &mut impl FnMut(Out<'_>)) {
        for e in call.take_events() {
            tap.digit();
            on_out(Out::Digit(&e));
            self.events.push(e);
        }
        for c in call.take_captures() {
            on_out(Out::Capture(&c));
            self.captures.push(c);
        }
    }
}

/// Where a leg's commands come from, and where it passes on those meant for the other leg
/// of its call.
pub(super) struct Commands {
    /// Commands for this leg (its session), and for the other one.
    pub(super) inbox: Receiver<Control>,
    /// The other leg's inbox, if it takes commands.
    pub(super) other: Option<std::sync::mpsc::Sender<Control>>,
}

/// How a leg sends its packets on.
pub(super) type SendFn = Box<dyn FnMut(&[u8]) -> std::io::Result<()> + Send>;
/// Where a leg's events and capture records go as they complete.
pub(super) type OutFn = Box<dyn FnMut(Out<'_>) + Send>;

/// Packets one wake takes from a leg's socket before other legs get their turn.
const BURST: usize = 32;

/// How often a leg adds its session's drops to the live counters (one crossing each time).
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// What a leg wants after a wake.
pub(super) enum Next {
    /// Wake it when its socket has more, or at this time (its stream's deadline, at most
    /// 50 ms away: the call's end and the commands are checked then).
    At(Instant),
    /// Its socket may hold more than one wake takes: wake it again soon (and at this time).
    More(Instant),
    /// The call is over: finish the leg.
    Over,
}

/// One direction as a state machine the [`super::reactor`] drives: receive, admit the
/// source, push through the stream (waking at its deadlines), send what it forwards, carry
/// out the commands in `inbox`, report events and capture records.
pub(super) struct Pump {
    call: RtpStream,
    tap: Tap,
    /// The socket the leg receives on (non-blocking).
    pub(super) rx: mio::net::UdpSocket,
    clock: Arc<Clock>,
    peer: Arc<Peer>,
    /// The peer's latched source once known (it never changes): read here, not through
    /// `peer`, on every packet.
    latched: Option<SocketAddr>,
    commands: Commands,
    send: SendFn,
    on_out: OutFn,
    reported: Reported,
    warned: Warned,
    /// Host time for the session: ms since this leg started (monotonic).
    started: Instant,
    /// The session's counters as last published to the live drop counters, and when.
    published: (RtpStats, Instant),
}

impl Pump {
    /// A leg around `call` receiving on `rx` (made non-blocking here).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        call: RtpStream,
        tap: Tap,
        rx: UdpSocket,
        clock: Arc<Clock>,
        peer: Arc<Peer>,
        commands: Commands,
        send: SendFn,
        on_out: OutFn,
    ) -> Result<Self> {
        rx.set_nonblocking(true)
            .context("making the RTP socket non-blocking")?;
        Ok(Pump {
            call,
            tap,
            rx: mio::net::UdpSocket::from_std(rx),
            clock,
            latched: peer.latched(),
            peer,
            commands,
            send,
            on_out,
            reported: Reported::default(),
            warned: Warned::default(),
            started: Instant::now(),
            published: (crate::plugin::no_stats(), Instant::now()),
        })
    }

    /// Carries out a command for this leg's session — a capture command, a key seen on the
    /// agent's leg, new payload types — or passes it on to the other leg's.
    fn apply(&mut self, c: Control) {
        match c {
            Control::PayloadTypes { from_caller, types } if from_caller != (self.tap.dir == 0) => {
                if let Some(other) = &self.commands.other {
                    // The other leg may have ended already; then nothing is left to change.
                    let _ = other.send(Control::PayloadTypes { from_caller, types });
                }
            }
            Control::PayloadTypes { types, .. } => match self.call.change_payload_types(&types) {
                Ok(()) => eprintln!(
                    "tonemask relay: {}: payload types changed by a re-negotiation",
                    self.tap.name
                ),
                Err(e) => eprintln!(
                    "tonemask relay: {}: warning: payload types of a re-negotiation not taken ({e:#}); packets of new types are dropped",
                    self.tap.name
                ),
            },
            Control::StartCapture(req) => {
                if let Err(e) = self.call.start_capture(&req) {
                    eprintln!("tonemask relay: capture {} refused: {e:#}", req.id);
                }
            }
            Control::CancelCapture => {
                self.call.cancel_capture();
            }
            Control::AgentKey => {
                self.call.note_agent_key();
            }
        }
    }

    /// Host time for the session at `now`.
    fn ms_at(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    fn sent(&mut self, p: &[u8]) {
        match (self.send)(p) {
            Err(e) => warn_first(&mut self.warned.unsent, || format!("sending a packet: {e}")),
            Ok(()) => self.tap.sent(),
        }
    }

    /// A datagram from `from` (`None`: an address no peer has) that arrived by `woke`:
    /// dropped unless from the peer's source, else pushed and what it releases sent.
    fn take(&mut self, packet: &[u8], from: Option<SocketAddr>, woke: Instant) {
        let Some(from) =
            from.filter(|&f| admitted(&self.peer, &mut self.latched, f, &mut self.warned))
        else {
            self.tap.dropped(super::live::FOREIGN_SOURCE, 1);
            return;
        };
        self.clock.touch(woke);
        let now = self.ms_at(woke);
        let out = arrive(
            &mut self.call,
            &self.tap,
            (&self.peer, &mut self.latched),
            from,
            packet,
            now,
            &mut self.warned,
        );
        for p in out {
            self.sent(&p);
        }
    }

    /// One wake (`readable`: its socket signalled data): the commands, then the packets
    /// waiting in the socket (always when the call is over) — pushed before the timer fires, so a relay that was itself
    /// held up never takes its own delay for the sender going quiet — then what fell due.
    pub(super) fn wake(&mut self, readable: bool, inbox: &mut Inbox) -> Result<Next> {
        // One reading of the clock serves the whole wake (a burst takes microseconds).
        let woke = Instant::now();
        // The call's end still takes what arrived before it.
        let over = self.clock.due(woke);
        let commands: Vec<Control> = self.commands.inbox.try_iter().collect();
        for c in commands {
            self.apply(c);
        }
        let mut more = false;
        if readable || over {
            more = true;
            let mut taken = 0;
            while taken < BURST {
                let n = inbox.fill(&self.rx).context("receiving RTP")?;
                for i in 0..n {
                    let (packet, from) = inbox.get(i);
                    self.take(packet, from, woke);
                }
                taken += n;
                if n < SLOTS {
                    more = false;
                    break;
                }
            }
        }
        let now = self.ms_at(woke);
        for (_, p) in self.call.tick(now) {
            self.sent(&p);
        }
        self.reported
            .take(&mut self.call, &self.tap, &mut self.on_out);
        if over {
            return Ok(Next::Over);
        }
        if woke.saturating_duration_since(self.published.1) >= PUBLISH_EVERY {
            self.publish(None);
        }
        // Wake for the stream's own deadline (a press timing out, held audio leaving when
        // the sender goes quiet), and at least every 50 ms to check the call's end.
        let wait = self
            .call
            .next_timeout()
            .map_or(50, |t| t.saturating_sub(now).clamp(1, 50));
        let at = self.started + Duration::from_millis(now.saturating_add(wait));
        Ok(if more { Next::More(at) } else { Next::At(at) })
    }

    /// Adds what the session dropped since the last time to the live counters (`stats`: its
    /// final counters; otherwise asked for).
    fn publish(&mut self, stats: Option<RtpStats>) {
        let Some(now) = stats.or_else(|| self.call.stats()) else {
            return;
        };
        self.tap.plugin_drops(&self.published.0, &now);
        self.published = (now, Instant::now());
    }

    /// Ends the leg: its stream's delayed packets are sent, its last events reported.
    pub(super) fn finish(mut self) -> Leg {
        let ended = self.call.finish();
        if ended.stats.is_some() {
            self.publish(ended.stats);
        }
        for p in &ended.packets {
            self.sent(p);
        }
        self.reported
            .take(&mut self.call, &self.tap, &mut self.on_out);
        Leg {
            stats: ended.stats.unwrap_or_else(crate::plugin::no_stats),
            events: self.reported.events,
            captures: self.reported.captures,
            foreign_sources: self.warned.foreign,
            end_record: ended.end_record,
            trap: self.call.trap().map(String::from),
            trap_dropped: self.call.trap_dropped(),
        }
    }
}

/// Counts of what a leg warned about (the first of each kind is logged).
#[derive(Default)]
struct Warned {
    refused: u64,
    unsent: u64,
    foreign: u64,
}

/// Whether a datagram from `from` may be pushed: it comes from the peer's source (or the
/// peer has not latched yet). `latched`: the peer's source as last read.
fn admitted(
    peer: &Peer,
    latched: &mut Option<SocketAddr>,
    from: SocketAddr,
    warned: &mut Warned,
) -> bool {
    if latched.is_none() {
        *latched = peer.latched();
    }
    let ok = peer.admits(*latched, from);
    if !ok {
        warn_first(&mut warned.foreign, || {
            format!("packet from {from} dropped: not the {}'s source", peer.name)
        });
    }
    ok
}

/// Pushes an admitted datagram from `from`; the peer latches on the first packet the plugin
/// accepts. Returns the packets to send on.
fn arrive(
    call: &mut RtpStream,
    tap: &Tap,
    (peer, latched): (&Peer, &mut Option<SocketAddr>),
    from: SocketAddr,
    packet: &[u8],
    now_ms: u64,
    warned: &mut Warned,
) -> Vec<Vec<u8>> {
    let begun = Instant::now();
    let pushed = call.push(now_ms, packet);
    tap.received(begun.elapsed());
    match pushed {
        Pushed::Forward(out) => {
            if latched.is_none() {
                peer.latch(from);
                *latched = peer.latched();
            }
            out
        }
        Pushed::Refused(reason) => {
            warn_first(&mut warned.refused, || {
                format!("packet from {from} dropped: {reason}")
            });
            Vec::new()
        }
        Pushed::Dropped => {
            tap.dropped(super::live::PLUGIN_TRAPPED, 1);
            alarm_once(call, tap.name);
            Vec::new()
        }
    }
}
