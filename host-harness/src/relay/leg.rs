//! One direction of the relay: when the call ends, which source a side takes, and the
//! receive → admit → push → send loop around an [`RtpStream`].

use super::Control;
use crate::plugin::{CaptureEvent, DigitEvent, RtpStats};
use crate::stream::{Pushed, RtpStream};
use anyhow::{Context, Result};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the call ends: both directions idle, or the maximum duration.
pub(super) struct Clock {
    pub(super) idle: Duration,
    pub(super) max: Option<Duration>,
    pub(super) start: Instant,
    /// Last packet in either direction.
    pub(super) last: Mutex<Option<Instant>>,
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

    /// A key press was reported.
    fn digit(&self) {
        for l in &self.live {
            l.digit(self.dir);
        }
    }
}

impl Clock {
    pub(super) fn touch(&self) {
        if let Ok(mut l) = self.last.lock() {
            *l = Some(Instant::now());
        }
    }

    pub(super) fn due(&self) -> bool {
        let last = self.last.lock().map(|l| *l).unwrap_or(None);
        self.max.is_some_and(|m| self.start.elapsed() >= m)
            || last.is_some_and(|t| t.elapsed() >= self.idle)
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
    pub(super) addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl Peer {
    /// The latched source, if any.
    pub(super) fn latched(&self) -> Option<SocketAddr> {
        self.addr.lock().map(|a| *a).unwrap_or(None)
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
        if let Ok(mut a) = self.addr.lock() {
            if a.is_none() {
                eprintln!("tonemask relay: {} at {from}", self.name);
                *a = Some(from);
            }
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

/// The next datagram, or `None` when the read timed out.
fn receive(rx: &UdpSocket, buf: &mut [u8]) -> Result<Option<(usize, SocketAddr)>> {
    match rx.recv_from(buf) {
        Ok(x) => Ok(Some(x)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).context("receiving RTP"),
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

/// Carries out a command for the leg's session.
fn apply(call: &mut RtpStream, c: Control) {
    match c {
        Control::StartCapture(req) => {
            if let Err(e) = call.start_capture(&req) {
                eprintln!("tonemask relay: capture {} refused: {e:#}", req.id);
            }
        }
        Control::CancelCapture => {
            call.cancel_capture();
        }
        Control::AgentKey => {
            call.note_agent_key();
        }
    }
}

/// One direction: receive, admit the source, push through the stream (waking at its
/// deadlines), send what it forwards, carry out the commands in `inbox` (at least every
/// 50 ms), report events and capture records.
#[allow(clippy::too_many_arguments)]
pub(super) fn pump(
    mut call: RtpStream,
    tap: Tap,
    rx: &UdpSocket,
    clock: &Clock,
    peer: &Peer,
    inbox: Option<&Receiver<Control>>,
    mut send: impl FnMut(&[u8]) -> std::io::Result<()>,
    mut on_out: impl FnMut(Out<'_>),
) -> Result<Leg> {
    let mut buf = vec![0u8; 65_536];
    let mut reported = Reported::default();
    let mut warned = Warned::default();
    // Host time for the session: ms since this leg started (monotonic).
    let started = std::time::Instant::now();
    let now_ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut sent = |p: &[u8], unsent: &mut u64| match send(p) {
        Err(e) => warn_first(unsent, || format!("sending a packet: {e}")),
        Ok(()) => tap.sent(),
    };
    loop {
        if clock.due() {
            break;
        }
        for c in inbox.into_iter().flat_map(Receiver::try_iter) {
            apply(&mut call, c);
        }
        // Wake for the stream's own deadline (a press timing out, held audio leaving when
        // the sender goes quiet), and at least every 50 ms to check the call's end.
        let wait = call
            .next_timeout()
            .map_or(50, |t| t.saturating_sub(now_ms()).clamp(1, 50));
        rx.set_read_timeout(Some(Duration::from_millis(wait)))?;
        // A packet that waited in the socket is pushed before the timer fires, so a relay
        // that was itself held up never takes its own delay for the sender going quiet.
        if let Some((n, from)) = receive(rx, &mut buf)? {
            if admitted(peer, from, &mut warned) {
                clock.touch();
                let out = arrive(
                    &mut call,
                    &tap,
                    peer,
                    from,
                    &buf[..n],
                    now_ms(),
                    &mut warned,
                );
                for p in out {
                    sent(&p, &mut warned.unsent);
                }
            }
        }
        for (_, p) in call.tick(now_ms()) {
            sent(&p, &mut warned.unsent);
        }
        reported.take(&mut call, &tap, &mut on_out);
    }
    let ended = call.finish();
    for p in &ended.packets {
        sent(p, &mut warned.unsent);
    }
    reported.take(&mut call, &tap, &mut on_out);
    Ok(Leg {
        stats: ended.stats.unwrap_or_else(crate::plugin::no_stats),
        events: reported.events,
        captures: reported.captures,
        foreign_sources: warned.foreign,
        end_record: ended.end_record,
        trap: call.trap().map(String::from),
        trap_dropped: call.trap_dropped(),
    })
}

/// Counts of what a leg warned about (the first of each kind is logged).
#[derive(Default)]
struct Warned {
    refused: u64,
    unsent: u64,
    foreign: u64,
}

/// Whether a datagram from `from` may be pushed: it comes from the peer's source (or the
/// peer has not latched yet).
fn admitted(peer: &Peer, from: SocketAddr, warned: &mut Warned) -> bool {
    let ok = peer.admits(peer.latched(), from);
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
    peer: &Peer,
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
            if peer.latched().is_none() {
                peer.latch(from);
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
            alarm_once(call, tap.name);
            Vec::new()
        }
    }
}
