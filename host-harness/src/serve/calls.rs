//! The node's calls: what `offer`, `answer`, `delete` and `query` do to them.

use super::metrics::Metrics;
use super::ports::{MediaPorts, Ports};
use super::ServeConfig;
use crate::keys::KeyRing;
use crate::ng::{self, Request, Value};
use crate::plugin::{CallSettings, Plugin};
use crate::relay::{reachable, run_relay_on, Control, Live, RelayConfig, RelaySummary, DIRECTIONS};
use crate::sdp::{parse_sdp, rewrite_sdp, PayloadTypes, Rewrite};
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One side of a call as its SDP described it.
struct Side {
    /// The media address its SDP names.
    addr: SocketAddr,
    /// The payload types it receives (and so what the other side sends).
    types: PayloadTypes,
}

/// One call, from its offer on.
struct Call {
    /// The caller's From tag (events carry it).
    caller_tag: String,
    created: u64,
    /// When the offer came (an offer never answered is dropped after the offer timeout).
    offered: std::time::Instant,
    /// The caller's side, once its SDP is known (the offer; the answer of a late offer).
    caller: Option<Side>,
    /// The callee's side, once its SDP is known (the answer; the offer of a late offer).
    callee: Option<Side>,
    /// The offer came from the callee (a late offer): the roles were inferred from the tags.
    late: bool,
    /// Caller-facing and callee-facing sockets, until the relay takes them.
    sockets: Option<[UdpSocket; 2]>,
    /// The RTCP ports above them, held (never read) for as long as the call lives.
    _rtcp: [UdpSocket; 2],
    /// Their addresses (caller-facing, callee-facing).
    local: [SocketAddr; 2],
    /// The running relay, once answered.
    relay: Option<(Arc<AtomicBool>, JoinHandle<Result<RelaySummary>>)>,
    /// Commands for its caller→callee session, once answered.
    control: Option<std::sync::mpsc::Sender<Control>>,
    /// Its packets and presses so far, once answered (for `query`).
    live: Option<Arc<Live>>,
}

impl Call {
    /// Where an SDP from the caller (`from_caller`) or the callee must point the side that
    /// receives it: at the socket facing that side (callee-facing for the caller's SDP).
    fn facing(&self, from_caller: bool) -> SocketAddr {
        self.local[usize::from(from_caller)]
    }
}

/// Calls by SIP Call-ID.
pub struct Calls {
    plugin: Arc<Plugin>,
    keys: Arc<KeyRing>,
    cfg: ServeConfig,
    ports: Ports,
    calls: BTreeMap<String, Call>,
    /// Deleted calls whose relay is still sending its last packets: finished by
    /// [`Calls::reap`] once it is done, so a `delete` never holds up the control loop.
    ending: Vec<(String, Call)>,
    metrics: Arc<Metrics>,
    /// When unanswered offers are next looked for.
    next_sweep: std::time::Instant,
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The call id a call's events carry: its SIP Call-ID and the caller's From tag, as
/// `CALL-ID:FROM-TAG`. Event call ids are 1–64 of `A-Z a-z 0-9 . _ : -`; a SIP Call-ID usually
/// has an `@` and may hold any of `!%*+`'~()<>"/[]?{}\`. In each part every other byte (and
/// `:`) is written `_XX` (hex) and `_` itself `__` — readable and reversible
/// (`call-A@host`, tag `1928` → `call-A_40host:1928`). An id that would come out longer
/// than 64 is written `sha256-` and the first 32 hex digits of the SHA-256 of
/// `CALL-ID\nFROM-TAG`.
#[must_use]
pub fn event_call_id(sip_call_id: &str, from_tag: &str) -> String {
    use std::fmt::Write as _;
    let escape = |part: &str, out: &mut String| {
        for b in part.bytes() {
            if b.is_ascii_alphanumeric() || b".-".contains(&b) {
                out.push(char::from(b));
            } else if b == b'_' {
                out.push_str("__");
            } else {
                let _ = write!(out, "_{b:02X}");
            }
        }
    };
    let mut out = String::with_capacity(sip_call_id.len() + from_tag.len() + 1);
    escape(sip_call_id, &mut out);
    out.push(':');
    escape(from_tag, &mut out);
    if out.len() > 64 {
        use sha2::Digest as _;
        let h = sha2::Sha256::digest(format!("{sip_call_id}\n{from_tag}").as_bytes());
        return format!("sha256-{}", hex::encode(&h[..16]));
    }
    out
}

fn required<'a>(req: &'a Request, key: &str) -> Result<&'a str> {
    req.text(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| anyhow!("no {key} in the message"))
}

impl Calls {
    /// No calls yet.
    pub fn new(
        plugin: Arc<Plugin>,
        keys: Arc<KeyRing>,
        cfg: ServeConfig,
        ports: Ports,
        metrics: Arc<Metrics>,
    ) -> Calls {
        Calls {
            plugin,
            keys,
            cfg,
            ports,
            calls: BTreeMap::new(),
            ending: Vec::new(),
            next_sweep: std::time::Instant::now(),
            metrics,
        }
    }

    /// Calls known, and deleted calls still ending.
    pub fn len(&self) -> usize {
        self.calls.len() + self.ending.len()
    }

    /// Their Call-IDs.
    pub fn ids(&self) -> Vec<String> {
        self.calls.keys().cloned().collect()
    }

    /// `offer`: ports for a new call, and the offer rewritten to point the other side at them.
    ///
    /// An offer normally comes from the caller (the INVITE's SDP). A *late* offer — the
    /// INVITE had no SDP, the callee's 200 OK has it and the ACK carries the answer — comes
    /// from the callee: Kamailio's and OpenSIPS's modules then send the dialog's To tag as
    /// `from-tag` and its From tag as `to-tag` (an offer for a new dialog has no `to-tag`
    /// otherwise). The caller is still the dialog's caller: its audio is masked and its tag
    /// names the events. The same message also comes as the re-INVITE of a call the node
    /// does not know (it restarted): the roles are then inferred wrongly, so for such calls
    /// both directions are masked — fail closed, whichever side types.
    pub fn offer(&mut self, req: &Request) -> Result<Value> {
        let call_id = required(req, "call-id")?;
        let from_tag = required(req, "from-tag")?;
        let sdp = required(req, "sdp")?;
        let replace = req.list("replace");
        if let Some(c) = self.calls.get_mut(call_id) {
            return renegotiated(call_id, c, req, sdp, Leg::Offer);
        }
        let late = req.text("to-tag").filter(|t| !t.is_empty());
        let (addr, types) = parse_sdp(sdp)
            .ok_or_else(|| anyhow!("the offer has no audio stream with an address"))?;
        let MediaPorts { rtp: sockets, rtcp } = self.ports.pair()?;
        let local = [sockets[0].local_addr()?, sockets[1].local_addr()?];
        let side = Some(Side { addr, types });
        let (caller, callee) = if late.is_none() {
            (side, None)
        } else {
            (None, side)
        };
        let call = Call {
            caller_tag: late.unwrap_or(from_tag).to_string(),
            created: now_s(),
            offered: std::time::Instant::now(),
            caller,
            callee,
            late: late.is_some(),
            sockets: Some(sockets),
            _rtcp: rtcp,
            local,
            relay: None,
            control: None,
            live: None,
        };
        let rewrite = Rewrite {
            origin: replace.iter().any(|r| r == "origin"),
        };
        let offer_sdp =
            rewrite_sdp(sdp, call.facing(late.is_none()), rewrite).context("the offer")?;
        eprintln!(
            "tonemask serve: call {call_id}: {}offer; caller sends to {}, callee to {}",
            if late.is_some() {
                "late (the callee's) "
            } else {
                ""
            },
            local[0],
            local[1]
        );
        self.calls.insert(call_id.to_string(), call);
        Ok(ng::ok([("sdp", Value::str(&offer_sdp))]))
    }

    /// `answer`: the answer rewritten to point the other side at the node, and the call's
    /// media started.
    pub fn answer(&mut self, req: &Request) -> Result<Value> {
        let call_id = required(req, "call-id")?;
        let sdp = required(req, "sdp")?;
        let replace = req.list("replace");
        let (plugin, keys, cfg) = (&self.plugin, &self.keys, &self.cfg);
        let call = self
            .calls
            .get_mut(call_id)
            .ok_or_else(|| anyhow!("Unknown call-id {call_id}"))?;
        if call.relay.is_some() {
            return renegotiated(call_id, call, req, sdp, Leg::Answer);
        }
        let (addr, types) = parse_sdp(sdp)
            .ok_or_else(|| anyhow!("the answer has no audio stream with an address"))?;
        // The answer comes from whichever side did not offer.
        let from_caller = call.caller.is_none();
        let rewrite = Rewrite {
            origin: replace.iter().any(|r| r == "origin"),
        };
        let answer_sdp =
            rewrite_sdp(sdp, call.facing(from_caller), rewrite).context("the answer")?;
        let side = Some(Side { addr, types });
        if from_caller {
            call.caller = side;
        } else {
            call.callee = side;
        }
        let (Some(caller), Some(callee)) = (&call.caller, &call.callee) else {
            return Err(anyhow!("call {call_id}: no SDP of one side"));
        };
        let sockets = call
            .sockets
            .take()
            .ok_or_else(|| anyhow!("call {call_id} has no media sockets"))?;
        let call_live = Arc::new(Live::default());
        let relay_cfg = RelayConfig {
            caller_bind: call.local[0],
            agent_bind: call.local[1],
            agent: callee.addr,
            caller: None,
            agent_source: None,
            // The caller sends what the callee said it receives, and the other way round.
            types: callee.types.clone(),
            agent_types: Some(caller.types.clone()),
            settings: CallSettings {
                call_id: event_call_id(call_id, &call.caller_tag),
                ..cfg.settings.clone()
            },
            events_file: cfg.events_file.clone(),
            events_url: cfg.events_url.clone(),
            dtmf_log_dest: cfg.dtmf_log_dest,
            live: vec![Arc::clone(&self.metrics.live), Arc::clone(&call_live)],
            caller_hint: reachable(caller.addr),
            idle: cfg.idle,
            max_duration: None,
            // Roles read from the tags alone (a late offer looks like an offer for a call the
            // node no longer knows, after a restart): both directions masked.
            mask_both: call.late,
        };
        let callee_addr = callee.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let (control, inbox) = std::sync::mpsc::channel();
        let handle = {
            let (plugin, keys, stop) = (Arc::clone(plugin), Arc::clone(keys), Arc::clone(&stop));
            let channel = (control.clone(), inbox);
            std::thread::Builder::new()
                .name(format!("call {call_id}"))
                .spawn(move || {
                    run_relay_on(
                        &plugin,
                        &relay_cfg,
                        &keys,
                        sockets,
                        Some(stop),
                        Some(channel),
                    )
                })
                .context("starting the call's relay")?
        };
        call.control = Some(control);
        call.live = Some(call_live);
        eprintln!(
            "tonemask serve: call {call_id}: answered; callee receives at {callee_addr}; events as call {}",
            event_call_id(call_id, &call.caller_tag)
        );
        self.metrics.call_started();
        call.relay = Some((stop, handle));
        Ok(ng::ok([("sdp", Value::str(&answer_sdp))]))
    }

    /// `delete`: ends the call. Answered at once: its relay is told to stop, sends its
    /// delayed packets and delivers its events, and is reaped when done.
    pub fn delete(&mut self, req: &Request) -> Result<Value> {
        let call_id = required(req, "call-id")?;
        let call = self
            .calls
            .remove(call_id)
            .ok_or_else(|| anyhow!("Call-ID not found: {call_id}"))?;
        match &call.relay {
            Some((stop, _)) => {
                stop.store(true, Ordering::Relaxed);
                self.ending.push((call_id.to_string(), call));
            }
            None => finish(call_id, call, &self.metrics),
        }
        Ok(ng::ok([]))
    }

    /// The processor key captures are sealed to, if the node has one.
    pub fn processor_key(&self) -> Option<&(String, [u8; 32])> {
        self.cfg.processor_key.as_ref()
    }

    /// Sends `c` to the caller→callee session of answered call `call_id`.
    pub fn control(&self, call_id: &str, c: Control) -> Result<()> {
        let call = self
            .calls
            .get(call_id)
            .ok_or_else(|| anyhow!("Call-ID not found: {call_id}"))?;
        call.control
            .as_ref()
            .ok_or_else(|| anyhow!("call {call_id} is not answered yet: no media to capture from"))?
            .send(c)
            .map_err(|_| anyhow!("call {call_id} has ended"))
    }

    /// `query`: what the node knows of a call — and, once answered, its packets so far
    /// (rtpengine's `totals`), and per direction packets in and out and presses reported.
    pub fn query(&self, req: &Request) -> Result<Value> {
        let call_id = required(req, "call-id")?;
        let call = self
            .calls
            .get(call_id)
            .ok_or_else(|| anyhow!("Call-ID not found: {call_id}"))?;
        let state = if call.relay.is_some() {
            "answered"
        } else {
            "offered"
        };
        let int = |v: u64| Value::Int(i64::try_from(v).unwrap_or(i64::MAX));
        let mut answer = vec![
            ("created", int(call.created)),
            ("from-tag", Value::str(&call.caller_tag)),
            ("state", Value::str(state)),
        ];
        if let Some(live) = &call.live {
            let (a, b) = (live.packets(0), live.packets(1));
            let rtp = Value::dict([("packets", int(a.0 + b.0))]);
            answer.push(("totals", Value::dict([("RTP", rtp)])));
            for (dir, name) in DIRECTIONS.iter().enumerate() {
                let (received, sent) = live.packets(dir);
                let counts = Value::dict([
                    ("packets-in", int(received)),
                    ("packets-out", int(sent)),
                    ("digits", int(live.digits(dir))),
                ]);
                answer.push((name, counts));
            }
        }
        Ok(ng::ok(answer))
    }

    /// Finishes the deleted calls whose relay is done, and removes the calls whose relay
    /// ended by itself (media idle, or the plugin trapped).
    pub fn reap(&mut self) {
        // Offers never answered (the proxy lost the call, or its delete): their ports back.
        // Looked for once a second, not on every command (the node may hold many calls).
        let now = std::time::Instant::now();
        let limit = self.cfg.offer_timeout;
        let stale: Vec<String> = if now >= self.next_sweep {
            self.next_sweep = now + Duration::from_secs(1).min(limit);
            self.calls
                .iter()
                .filter(|(_, c)| {
                    c.relay.is_none() && now.saturating_duration_since(c.offered) >= limit
                })
                .map(|(id, _)| id.clone())
                .collect()
        } else {
            Vec::new()
        };
        for id in stale {
            self.calls.remove(&id);
            self.metrics.call_unanswered();
            eprintln!(
                "tonemask serve: call {id}: not answered within {} s: dropped, its ports released",
                limit.as_secs_f64()
            );
        }
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.ending)
            .into_iter()
            .partition(|(_, c)| c.relay.as_ref().is_none_or(|(_, h)| h.is_finished()));
        self.ending = running;
        for (id, call) in done {
            finish(&id, call, &self.metrics);
        }
        let done: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.relay.as_ref().is_some_and(|(_, h)| h.is_finished()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            if let Some(call) = self.calls.remove(&id) {
                finish(&id, call, &self.metrics);
            }
        }
    }

    /// Ends every call (all told to stop first, then each waited for).
    pub fn end_all(&mut self) {
        let mut all: Vec<(String, Call)> = std::mem::take(&mut self.calls).into_iter().collect();
        all.append(&mut self.ending);
        for (_, call) in &all {
            if let Some((stop, _)) = &call.relay {
                stop.store(true, Ordering::Relaxed);
            }
        }
        for (id, call) in all {
            finish(&id, call, &self.metrics);
        }
    }
}

/// Which half of an exchange an SDP is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leg {
    Offer,
    Answer,
}

/// A retransmitted offer or answer, or one of a re-INVITE (hold, a session refresh, a
/// change of codec; either side may send it): the new SDP pointed at the same ports — at the
/// callee-facing port when it goes to the callee (the caller's offer, or its answer to the
/// callee's re-INVITE), else at the caller-facing one. The addresses stay those the media
/// started with; new payload types are followed by the leg whose sender they are for (the
/// caller's SDP says what the callee sends, the callee's what the caller sends) — a change
/// its session refuses (other clock rates) is logged and packets of new types are dropped,
/// fail closed.
fn renegotiated(
    call_id: &str,
    call: &mut Call,
    req: &Request,
    sdp: &str,
    leg: Leg,
) -> Result<Value> {
    // An exchange's `from-tag` is its offerer's: the caller's, unless the callee sent the
    // re-INVITE (or made the late offer).
    let offered_by_caller = req.text("from-tag").is_none_or(|t| t == call.caller_tag);
    // Whether this SDP comes from the caller's side (and so goes to the callee).
    let from_caller = offered_by_caller == (leg == Leg::Offer);
    let (_, types) =
        parse_sdp(sdp).ok_or_else(|| anyhow!("the SDP has no audio stream with an address"))?;
    let side = if from_caller {
        call.caller.as_mut()
    } else {
        call.callee.as_mut()
    };
    if let Some(side) = side.filter(|s| format!("{:?}", s.types) != format!("{types:?}")) {
        side.types = types.clone();
        if let Some(control) = &call.control {
            eprintln!("tonemask serve: call {call_id}: a re-negotiation changes the payload types");
            // The caller's SDP is what the callee sends, and the other way round.
            let _ = control.send(Control::PayloadTypes {
                from_caller: !from_caller,
                types,
            });
        }
    }
    let rewrite = Rewrite {
        origin: req.list("replace").iter().any(|r| r == "origin"),
    };
    let out =
        rewrite_sdp(sdp, call.facing(from_caller), rewrite).context("the re-negotiated SDP")?;
    Ok(ng::ok([("sdp", Value::str(&out))]))
}

/// Stops a call's relay, waits for it, and logs what it did (never the digits).
fn finish(call_id: &str, call: Call, metrics: &Metrics) {
    let Some((stop, handle)) = call.relay else {
        eprintln!("tonemask serve: call {call_id}: ended before it was answered");
        return;
    };
    stop.store(true, Ordering::Relaxed);
    let joined = handle.join();
    metrics.call_ended(match &joined {
        Ok(Ok(s)) => Some(s),
        _ => None,
    });
    match joined {
        Ok(Ok(s)) => eprintln!(
            "tonemask serve: call {call_id}: ended; caller→callee {} in, {} out, {} digit(s), {} dropped; callee→caller {} in, {} out{}",
            s.caller_to_agent.received,
            s.caller_to_agent.forwarded,
            s.digits.len(),
            s.caller_audio_dropped(),
            s.agent_to_caller.received,
            s.agent_to_caller.forwarded,
            if s.agent_digits.is_empty() {
                String::new()
            } else {
                format!(", SECURITY: {} digit(s) towards the caller", s.agent_digits.len())
            }
        ),
        Ok(Err(e)) => eprintln!("tonemask serve: call {call_id}: ended with an error: {e:#}"),
        Err(_) => eprintln!("tonemask serve: call {call_id}: its relay thread panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_is_never_sent_to_an_unspecified_sdp_address() {
        let at = |s: &str| reachable(s.parse().unwrap());
        assert_eq!(
            at("192.0.2.1:4000"),
            Some("192.0.2.1:4000".parse().unwrap())
        );
        assert_eq!(at("0.0.0.0:4000"), None, "hold: would reach this machine");
        assert_eq!(at("[::]:4000"), None);
        assert_eq!(at("192.0.2.1:0"), None, "a disabled stream");
    }

    #[test]
    fn sip_call_ids_and_tags_become_valid_readable_event_call_ids() {
        assert_eq!(
            event_call_id("a84b4c76e66710", "1928"),
            "a84b4c76e66710:1928"
        );
        assert_eq!(event_call_id("call-A@test", "ft-1"), "call-A_40test:ft-1");
        assert_eq!(
            event_call_id("x_y \"z\":", "t:1"),
            "x__y_20_22z_22_3A:t_3A1"
        );
        let long = "9".repeat(80) + "@host";
        let id = event_call_id(&long, "t");
        assert!(id.starts_with("sha256-") && id.len() == 39, "{id}");
        assert_ne!(id, event_call_id(&long, "u"));
    }
}
