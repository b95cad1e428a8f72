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
//! Each call's media runs on the relay's event loop, with a plugin instance per direction
//! (a thread per call only waits for its end and reports it): a trap ends
//! that call's media only. The node is fail-closed in what it announces: media it cannot
//! carry (video, extra audio streams, ICE candidates, RTCP on its own port) is taken out of
//! the SDP so that it never goes around the node, and encrypted media is refused.
//!
//! **Card captures**: with a processor key (`--processor-key`), the `capture` command (not
//! rtpengine's: the agent's desktop sends it) starts or cancels a card capture in an
//! answered call (`serve/capture.rs`); its records go where the call's events go.
//!
//! Not yet: RTCP on separate ports, re-INVITEs that change the media (see the README).

mod calls;
mod capture;
mod metrics;

pub use calls::event_call_id;
pub use metrics::Metrics;
mod ports;
mod replies;

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
    /// Local UDP address each signed event is sent to (rtpengine's `--dtmf-log-dest`).
    pub dtmf_log_dest: Option<SocketAddr>,
    /// A call whose media stops for this long ends.
    pub idle: Duration,
    /// An offer not answered within this long is dropped and its ports released (rtpengine's
    /// `offer-timeout`, one hour by default there too).
    pub offer_timeout: Duration,
    /// Where `/metrics` and `/health` are served over HTTP, if anywhere.
    pub listen_http: Option<SocketAddr>,
    /// The processor key (id, X25519 public key) card captures are sealed to; without one
    /// the `capture` command is refused.
    pub processor_key: Option<(String, [u8; 32])>,
}

/// File descriptors one call holds: four media sockets (each side's RTP port and the RTCP
/// port above it), the two legs' sending handles, its events file.
pub const FDS_PER_CALL: u64 = 7;

/// Raises the process's open-files limit to its hard limit — systemd starts services at
/// 1,024 (hard 524,288) and expects a program that needs more to raise it; a call holds
/// [`FDS_PER_CALL`] — and returns the limit now in force (`None`: unlimited or unknown).
pub fn raise_open_files() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let now = getrlimit(Resource::Nofile);
    let current = now.current?;
    // An unlimited hard limit cannot be the soft one (the kernel's nr_open caps it).
    let wanted = now.maximum.unwrap_or(1 << 20);
    if wanted > current {
        let raised = Rlimit {
            current: Some(wanted),
            maximum: now.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(wanted);
        }
    }
    Some(current)
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
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = cfg.listen_http {
        let at = metrics::serve_http(addr, Arc::clone(&metrics))
            .with_context(|| format!("cannot serve /metrics on {addr}"))?;
        eprintln!("tonemask serve: /metrics and /health on http://{at}");
    }
    let open_files = raise_open_files();
    let mut calls = Calls::new(plugin, keys, cfg.clone(), ports, Arc::clone(&metrics));
    eprintln!(
        "tonemask serve: ng on {}, media on {} ports {}–{} (room for {} calls: each takes two even ports and the odd ones above them)",
        control.local_addr()?,
        cfg.interface,
        cfg.port_min,
        cfg.port_max,
        ports::calls_in(cfg.port_min, cfg.port_max)
    );
    if let Some(limit) = open_files {
        eprintln!(
            "tonemask serve: open files limit {limit}: room for about {} calls ({FDS_PER_CALL} descriptors each)",
            limit.saturating_sub(64) / FDS_PER_CALL
        );
    }
    notify_systemd(std::env::var_os("NOTIFY_SOCKET").as_deref(), "READY=1");
    let mut buf = vec![0u8; 65_536];
    let mut replies = replies::Replies::default();
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
        let datagram = &buf[..n];
        let now = std::time::Instant::now();
        let cookie = replies::cookie_of(datagram);
        // A command sent again (its reply was lost): the same reply, not the command twice.
        if let Some(again) = cookie.and_then(|c| replies.get(from, c, now)) {
            eprintln!("tonemask serve: a command from {from} came again: its reply resent");
            if let Err(e) = control.send_to(again, from) {
                eprintln!("tonemask serve: warning: cannot reply to {from}: {e}");
            }
            continue;
        }
        if let Some(out) = answer(&mut calls, &metrics, datagram, from) {
            if let Some(c) = cookie {
                replies.put(from, c, &out, now);
            }
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

/// Tells systemd (`Type=notify`, `dist/tonemask-serve.service`) how the node is: `READY=1`
/// once it listens, `STOPPING=1` when it ends its calls. `socket` is `$NOTIFY_SOCKET` (a
/// path, or `@name` in the abstract namespace); without one, nothing is sent. A failure is
/// logged, never fatal.
pub fn notify_systemd(socket: Option<&std::ffi::OsStr>, state: &str) {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
    let Some(path) = socket else {
        return;
    };
    let bytes = path.as_bytes();
    let sent = (|| {
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => UnixAddr::from_abstract_name(name)?,
            None => UnixAddr::from_pathname(std::path::Path::new(path))?,
        };
        UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)
    })();
    if let Err(e) = sent {
        eprintln!("tonemask serve: warning: cannot tell systemd {state}: {e}");
    }
}

/// The reply to one control datagram (`None` when it has no cookie to answer).
fn answer(
    calls: &mut Calls,
    metrics: &Metrics,
    datagram: &[u8],
    from: SocketAddr,
) -> Option<Vec<u8>> {
    let req = match Request::parse(datagram) {
        Ok(r) => r,
        Err(e) => {
            metrics.command(true);
            eprintln!(
                "tonemask serve: refused a datagram from {from}: {}",
                e.reason
            );
            return e.cookie.map(|c| ng::reply(&c, &ng::error(&e.reason)));
        }
    };
    let command = req.command().unwrap_or_default();
    let body = handle(calls, &command, &req);
    metrics.command(body.is_err());
    let body = match body {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tonemask serve: {command} from {from} refused: {e:#}");
            ng::error(&format!("{e:#}"))
        }
    };
    let out = ng::reply(&req.cookie, &body);
    if out.len() > MAX_REPLY {
        eprintln!(
            "tonemask serve: {command} from {from}: the reply ({} bytes) does not fit a datagram",
            out.len()
        );
        return Some(ng::reply(
            &req.cookie,
            &ng::error("the reply does not fit one datagram (for list: ask for a smaller limit)"),
        ));
    }
    Some(out)
}

/// Calls `list` names at most unless the request's `limit` says otherwise (rtpengine's
/// default: a node's every Call-ID would not fit one datagram).
const LIST_LIMIT: usize = 32;

/// The `limit` of a `list` request: an integer (or its digits as text) of at least 0.
fn list_limit(req: &Request) -> Result<usize> {
    let n = match req.body.get("limit") {
        None => return Ok(LIST_LIMIT),
        Some(Value::Int(n)) => Some(*n),
        Some(v) => v.as_str().and_then(|t| t.trim().parse::<i64>().ok()),
    };
    match n {
        Some(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => anyhow::bail!("invalid limit, must be >= 0"),
    }
}

/// The largest UDP payload over IPv4: a reply longer than this cannot be sent.
const MAX_REPLY: usize = 65_507;

/// Acts on one request.
fn handle(calls: &mut Calls, command: &str, req: &Request) -> Result<Value> {
    match command {
        "ping" => Ok(Value::dict([("result", Value::str("pong"))])),
        "offer" => calls.offer(req),
        "answer" => calls.answer(req),
        "delete" => calls.delete(req),
        "query" => calls.query(req),
        // tonemask's own: a card capture in a call, for the agent's desktop.
        "capture" => capture::command(calls, req),
        // Masking is always on: blocking is what the call already does; it cannot be lifted.
        "block dtmf" => calls.query(req).map(|_| ng::ok(std::iter::empty())),
        "unblock dtmf" => {
            anyhow::bail!("tonemask masks DTMF on every call; it cannot be unblocked (fail closed)")
        }
        "list" => Ok(ng::ok([(
            "calls",
            Value::List(
                calls
                    .ids()
                    .into_iter()
                    .take(list_limit(req)?)
                    .map(|c| Value::str(&c))
                    .collect(),
            ),
        )])),
        "" => anyhow::bail!("no command"),
        other => anyhow::bail!("Unrecognized command '{other}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_hears_ready_on_its_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        notify_systemd(Some(path.as_os_str()), "READY=1");
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // No socket, or one nobody listens on: nothing happens.
        notify_systemd(None, "READY=1");
        notify_systemd(Some(dir.path().join("gone").as_os_str()), "READY=1");
    }
}
