//! One RTP stream hosted in its own plugin instance: the driver loop every host runs —
//! capture replay, the relay, and the coming media node.
//!
//! ```text
//! open ─► push(now, packet) ─► forward what it returns
//!   ▲         │
//!   │    next_timeout() ─► at that time: tick(now) ─► forward what it returns
//!   │         │
//!   └─────────┘  take_events() (and take_captures()) after either; finish() at the end
//!                start_capture(request) when the agent asks for a card
//! ```
//!
//! The instance is the isolation unit: a trap ends this stream only. From then on it fails
//! closed — every packet is dropped and counted (`trap_dropped`), nothing passes unmasked,
//! and [`RtpStream::trap`] says why, for the host's alarm.
//!
//! Embedding it (the plugin built by `cargo xtask plugin`):
//!
//! ```
//! use tonemask_harness::plugin::{default_settings, Limits, Plugin};
//! use tonemask_harness::sdp::PayloadTypes;
//! use tonemask_harness::stream::{Pushed, RtpStream};
//! # fn main() -> anyhow::Result<()> {
//! # let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tonemask-plugin.wasm");
//! let plugin = Plugin::load(&wasm, Limits::default())?; // once per process
//! // Payload types as the SDP offer/answer says (here PCMU only); settings + a key from
//! // keys::KeyRing::plugin_key.
//! let config = PayloadTypes::pcmu().rtp_config(default_settings("call-1"));
//! let mut stream = RtpStream::open(&plugin, &config)?; // one instance per call leg
//! let mut forward = Vec::new();
//! for i in 0u16..10 {
//!     // 20 ms of µ-law silence: V=2, PT 0, sequence number, timestamp, SSRC 1.
//!     let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
//!     packet[2..4].copy_from_slice(&i.to_be_bytes());
//!     packet[4..8].copy_from_slice(&(160 * u32::from(i)).to_be_bytes());
//!     packet.extend_from_slice(&[0xFF; 160]);
//!     let now_ms = 20 * u64::from(i); // the host's monotonic clock
//!     if let Pushed::Forward(out) = stream.push(now_ms, &packet) {
//!         forward.extend(out); // send each on towards the agent
//!     }
//!     for event in stream.take_events() {
//!         let _signed_line = event.signed; // to the payment side
//!     }
//! }
//! // The caller goes quiet: at the stream's deadline the audio held for the look-ahead leaves.
//! while let Some(due) = stream.next_timeout() {
//!     forward.extend(stream.tick(due).into_iter().map(|(_, packet)| packet));
//! }
//! assert_eq!(forward.len(), 10);
//! let ended = stream.finish(); // end of call: counters, signed end record
//! assert_eq!(ended.stats.map(|s| s.forwarded), Some(10));
//! # Ok(()) }
//! ```

use crate::plugin::{
    CaptureEvent, CaptureRequest, DigitEvent, Instance, Plugin, RtpConfig, RtpHandle, RtpStats,
};
use anyhow::Result;

/// What became of a pushed packet.
#[derive(Debug)]
pub enum Pushed {
    /// Accepted: the packets to forward now, in order (maybe none: audio is delayed).
    Forward(Vec<Vec<u8>>),
    /// Refused by the plugin, with its reason; dropped.
    Refused(String),
    /// Dropped because the stream's instance has trapped.
    Dropped,
}

/// What the end of a stream returned.
#[derive(Debug, Default)]
pub struct Ended {
    /// Packets still delayed, in order.
    pub packets: Vec<Vec<u8>>,
    /// The session's counters (`None` when its instance had trapped).
    pub stats: Option<RtpStats>,
    /// The signed start-of-call record (when the session had a key): the call's first line.
    pub start_record: Option<String>,
    /// The signed end-of-call record (when the session had a key).
    pub end_record: Option<String>,
}

/// An RTP session in a plugin instance of its own.
pub struct RtpStream {
    /// `None` once it trapped (or finished).
    instance: Option<Instance>,
    handle: RtpHandle,
    start_record: Option<String>,
    events: Vec<DigitEvent>,
    captures: Vec<CaptureEvent>,
    trap: Option<String>,
    trap_dropped: u64,
}

impl RtpStream {
    /// A new instance of `plugin` with a session for `config`; a refused configuration is an
    /// error naming the field.
    pub fn open(plugin: &Plugin, config: &RtpConfig) -> Result<RtpStream> {
        let mut instance = plugin.instantiate()?;
        let handle = instance.create_rtp(config)?;
        let start_record = instance.rtp(handle).start_record()?;
        Ok(RtpStream {
            instance: Some(instance),
            handle,
            start_record,
            events: Vec::new(),
            captures: Vec::new(),
            trap: None,
            trap_dropped: 0,
        })
    }

    /// The session's signed start-of-call record (when it has a key): deliver it before its
    /// events.
    #[must_use]
    pub fn start_record(&self) -> Option<&str> {
        self.start_record.as_deref()
    }

    /// Pushes one packet that arrived at host time `now_ms` (monotonic ms).
    pub fn push(&mut self, now_ms: u64, packet: &[u8]) -> Pushed {
        let h = self.handle;
        let Some(inst) = self.instance.as_mut() else {
            self.trap_dropped += 1;
            return Pushed::Dropped;
        };
        let pushed = inst.rtp(h).push(now_ms, packet).and_then(|r| {
            drain(inst, h, &mut self.events, &mut self.captures)?;
            Ok(r)
        });
        match pushed {
            Ok(Ok(out)) => Pushed::Forward(out),
            Ok(Err(reason)) => Pushed::Refused(reason),
            Err(trap) => {
                self.fail(&trap);
                self.trap_dropped += 1;
                Pushed::Dropped
            }
        }
    }

    /// When the session next wants [`RtpStream::tick`] (host ms); `None` when nothing waits.
    pub fn next_timeout(&mut self) -> Option<u64> {
        let h = self.handle;
        let inst = self.instance.as_mut()?;
        match inst.rtp(h).poll_timeout() {
            Ok(t) => t,
            Err(trap) => {
                self.fail(&trap);
                None
            }
        }
    }

    /// Host time has reached `now_ms`: does everything that fell due until then, each at its
    /// own time; returns the packets released, with the time each was due.
    pub fn tick(&mut self, now_ms: u64) -> Vec<(u64, Vec<u8>)> {
        let h = self.handle;
        let mut released = Vec::new();
        let Some(inst) = self.instance.as_mut() else {
            return released;
        };
        let ticked = (|| -> Result<()> {
            while let Some(due) = inst.rtp(h).poll_timeout()?.filter(|&t| t <= now_ms) {
                let out = inst.rtp(h).handle_timeout(due)?;
                released.extend(out.into_iter().map(|p| (due, p)));
                drain(inst, h, &mut self.events, &mut self.captures)?;
                if inst.rtp(h).poll_timeout()? == Some(due) {
                    break; // Nothing more can fall due at the same time.
                }
            }
            Ok(())
        })();
        if let Err(trap) = ticked {
            self.fail(&trap);
        }
        released
    }

    /// Digit events completed since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<DigitEvent> {
        std::mem::take(&mut self.events)
    }

    /// Capture records since the last call, oldest first.
    pub fn take_captures(&mut self) -> Vec<CaptureEvent> {
        std::mem::take(&mut self.captures)
    }

    /// Cancels the running capture (its typing is erased); `false` when none ran or the
    /// instance has trapped.
    pub fn cancel_capture(&mut self) -> bool {
        self.call(|inst, h| inst.rtp(h).cancel_capture())
            .unwrap_or(false)
    }

    /// A key press was seen on the agent's leg of this call: while a capture runs, the
    /// session records it as a security signal (`agent-dtmf`). `false` when none runs or
    /// the instance has trapped.
    pub fn note_agent_key(&mut self) -> bool {
        self.call(|inst, h| inst.rtp(h).note_agent_key())
            .unwrap_or(false)
    }

    /// Runs `op` on the session, then drains the events and records it produced; a trap
    /// fails the stream. `None` when the instance has trapped, now or before.
    fn call<T>(&mut self, op: impl FnOnce(&mut Instance, RtpHandle) -> Result<T>) -> Option<T> {
        let h = self.handle;
        let inst = self.instance.as_mut()?;
        let done = op(inst, h);
        let drained = drain(inst, h, &mut self.events, &mut self.captures);
        match done.and_then(|v| drained.map(|()| v)) {
            Ok(v) => Some(v),
            Err(trap) => {
                self.fail(&trap);
                None
            }
        }
    }

    /// Starts a card capture on the session now (its last packet's or tick's time): the
    /// caller's presses from now on leave only as capture records. A refused request is an
    /// error naming the field; a stream whose instance trapped has no session to start it on.
    pub fn start_capture(&mut self, request: &CaptureRequest) -> Result<()> {
        let h = self.handle;
        let Some(inst) = self.instance.as_mut() else {
            anyhow::bail!("the stream's plugin instance has trapped: no capture");
        };
        let started = inst.rtp(h).start_capture(request);
        let drained = drain(inst, h, &mut self.events, &mut self.captures);
        if let Err(trap) = &drained {
            self.fail(trap);
        }
        started.and(drained)
    }

    /// Ends the stream: the packets still delayed, its counters and end record. The instance
    /// is dropped; later pushes are dropped and counted.
    pub fn finish(&mut self) -> Ended {
        let h = self.handle;
        let Some(mut inst) = self.instance.take() else {
            return Ended::default();
        };
        let done = (|| -> Result<Ended> {
            let packets = inst.rtp(h).flush()?;
            drain(&mut inst, h, &mut self.events, &mut self.captures)?;
            let stats = Some(inst.rtp(h).stats()?);
            let end_record = inst.rtp(h).end_record()?;
            inst.rtp(h).close()?;
            Ok(Ended {
                packets,
                stats,
                start_record: self.start_record.clone(),
                end_record,
            })
        })();
        done.unwrap_or_else(|trap| {
            self.fail(&trap);
            Ended::default()
        })
    }

    /// Why the instance trapped, if it did.
    #[must_use]
    pub fn trap(&self) -> Option<&str> {
        self.trap.as_deref()
    }

    /// Packets dropped because the instance had trapped (the one it trapped on included).
    #[must_use]
    pub fn trap_dropped(&self) -> u64 {
        self.trap_dropped
    }

    /// The plugin trapped: the instance is dropped, and with it the audio it held for the
    /// look-ahead — never sent (and with it any capture's typing).
    fn fail(&mut self, trap: &anyhow::Error) {
        self.instance = None;
        self.trap = Some(format!("{trap:#}"));
    }
}

/// Moves the session's new digit events and capture records out of the plugin.
fn drain(
    inst: &mut Instance,
    h: RtpHandle,
    events: &mut Vec<DigitEvent>,
    captures: &mut Vec<CaptureEvent>,
) -> Result<()> {
    events.extend(inst.rtp(h).drain_events()?);
    captures.extend(inst.rtp(h).drain_captures()?);
    Ok(())
}
