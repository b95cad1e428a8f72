//! `tonemask serve`: a media node that SIP proxies drive like rtpengine.
//!
//! Kamailio's and OpenSIPS's `rtpengine` modules send each call's SDP here over the ng
//! protocol ([`crate::ng`]). For an `offer` the node takes two UDP ports on its interface —
//! one the caller will send to, one the callee will send to — and answers with the offer
//! rewritten to point at the callee-facing port; for the `answer` it rewrites the answer to
//! point at the caller-facing port and starts the call's relay ([`crate::relay`]): the
//! caller's audio goes on to the callee masked, its digits signed; the callee's audio comes
//! back watched (digits there are a security signal). `delete` ends the call (the packets
//! still delayed are sent first); a call whose media stops for the idle time ends by itself.
//!
//! Each call runs in threads of its own, with a plugin instance per direction: a trap ends
//! that call's media only. The node is fail-closed in what it announces: media it cannot
//! carry (video, extra audio streams, ICE candidates, RTCP on its own port) is taken out of
//! the SDP so that it never goes around the node, and encrypted media is refused.
//!
//! Not yet: RTCP on separate ports, re-INVITEs that change the media, per-call statistics in
//! `query` before the call ends, metrics (see the README).

mod calls;

pub use calls::event_call_id;
mod ports;

use crate::keys::KeyRing;
use crate::ng::{self, Request, Value};
use crate::plugin::{CallSettings, Plugin};
use anyhow::{Context, Result};
use calls::Calls;
use ports::Ports;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the node runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where the ng control protocol is served (UDP).
    pub listen_ng: SocketAddr,
    /// The address media is received on, and written into the SDP.
    pub interface: IpAddr,
    /// Lowest media port.
    pub port_min: u16,
    /// Highest media port.
    pub port_max: u16,
    /// Settings of each call's caller→agent direction (the call id is the SIP Call-ID).
    pub settings: CallSettings,
    /// File every call's signed events are appended to.
    pub events_file: Option<PathBuf>,
    /// Local HTTP collector each signed event is POSTed to.
    pub events_url: Option<String>,
    /// A call whose media stops for this long ends.
    pub idle: Duration,
}

/// Serves until `shutdown` is set, then ends every call (their delayed packets are sent).
pub fn serve(
    plugin: Arc<Plugin>,
    keys: Arc<KeyRing>,
    cfg: &ServeConfig,
    shutdown: &AtomicBool,
) -> Result<()> {
    let control = UdpSocket::bind(cfg.listen_ng)
        .with_context(|| format!("cannot listen for ng commands on {}", cfg.listen_ng))?;
    control.set_read_timeout(Some(Duration::from_millis(200)))?;
    let ports = Ports::new(cfg.interface, cfg.port_min, cfg.port_max)?;
    let mut calls = Calls::new(plugin, keys, cfg.clone(), ports);
    eprintln!(
        "tonemask serve: ng on {}, media on {} ports {}–{}",
        control.local_addr()?,
        cfg.interface,
        cfg.port_min,
        cfg.port_max
    );
    let mut buf = vec![0u8; 65_536];
    while !shutdown.load(Ordering::Relaxed) {
        calls.reap();
        let (n, from) = match control.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e).context("receiving an ng command"),
        };
        if let Some(out) = answer(&mut calls, &buf[..n], from) {
            if let Err(e) = control.send_to(&out, from) {
                eprintln!("tonemask serve: warning: cannot reply to {from}: {e}");
            }
        }
    }
    eprintln!(
        "tonemask serve: shutting down: ending {} call(s)",
        calls.len()
    );
    calls.end_all();
    Ok(())
}

/// The reply to one control datagram (`None` when it has no cookie to answer).
fn answer(calls: &mut Calls, datagram: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let req = match Request::parse(datagram) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "tonemask serve: refused a datagram from {from}: {}",
                e.reason
            );
            return e.cookie.map(|c| ng::reply(&c, &ng::error(&e.reason)));
        }
    };
    let command = req.command().unwrap_or_default();
    let body = match handle(calls, &command, &req) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tonemask serve: {command} from {from} refused: {e:#}");
            ng::error(&format!("{e:#}"))
        }
    };
    Some(ng::reply(&req.cookie, &body))
}

/// Acts on one request.
fn handle(calls: &mut Calls, command: &str, req: &Request) -> Result<Value> {
    match command {
        "ping" => Ok(Value::dict([("result", Value::str("pong"))])),
        "offer" => calls.offer(req),
        "answer" => calls.answer(req),
        "delete" => calls.delete(req),
        "query" => calls.query(req),
        "list" => Ok(ng::ok([(
            "calls",
            Value::List(calls.ids().into_iter().map(|c| Value::str(&c)).collect()),
        )])),
        "" => anyhow::bail!("no command"),
        other => anyhow::bail!("Unrecognized command '{other}'"),
    }
}
