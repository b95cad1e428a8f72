//! Where the relay's signed events go: the events file at once (the durable copy), a local
//! HTTP collector through a bounded queue and a sender thread that retries with back-off,
//! and a local UDP listener (rtpengine's `--dtmf-log-dest`), one datagram per event, sent
//! without waiting — media never waits for any of them.

use super::RelayConfig;
use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

/// Where signed events go: the file at once, the HTTP collector through a sender thread.
pub(super) struct Sink {
    pub(super) file: Option<std::fs::File>,
    pub(super) queue: Option<std::sync::mpsc::SyncSender<String>>,
    /// The UDP listener: a non-blocking socket and where it sends.
    pub(super) udp: Option<(UdpSocket, SocketAddr)>,
    /// Events the queue had no room for, or the UDP socket could not send.
    pub(super) overflow: u64,
}

/// A socket that sends each event to `dest` (loopback only: events carry card digits).
fn udp_target(dest: SocketAddr) -> Result<(UdpSocket, SocketAddr)> {
    if !dest.ip().is_loopback() {
        bail!(
            "--dtmf-log-dest must point to this machine (loopback), not {}: events carry card digits and plain UDP must not leave the host",
            dest.ip()
        );
    }
    let local: SocketAddr = if dest.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let sock = UdpSocket::bind(local).context("--dtmf-log-dest: binding a UDP socket")?;
    sock.set_nonblocking(true)?;
    Ok((sock, dest))
}

/// Signed events waiting for the HTTP collector, at most.
pub(super) const HTTP_QUEUE: usize = 1024;
/// Attempts per event, with back-off doubling from [`RETRY_FIRST`].
pub(super) const HTTP_ATTEMPTS: u32 = 4;
pub(super) const RETRY_FIRST: Duration = Duration::from_millis(250);

pub(super) struct HttpTarget {
    pub(super) addr: SocketAddr,
    pub(super) host: String,
    pub(super) path: String,
}

impl HttpTarget {
    /// Parses `http://HOST:PORT/PATH`; the host must be loopback (the events carry the
    /// digits: a TLS-capable forwarder on the same machine takes them further).
    pub(super) fn parse(url: &str) -> Result<HttpTarget> {
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

    pub(super) fn post(&self, body: &str) -> Result<()> {
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
    /// Closes the HTTP queue (its sender delivers what is left, then stops); returns how
    /// many events had no room in it or could not be sent by UDP.
    pub(super) fn close(&mut self) -> u64 {
        self.queue = None;
        self.overflow
    }

    /// Appends `line` to the file, sends it by UDP, queues it for the HTTP collector.
    pub(super) fn deliver(&mut self, line: &str) {
        if let Some(f) = &mut self.file {
            // One write per line: calls of a media node append to the same file.
            if let Err(e) = f.write_all(format!("{line}\n").as_bytes()) {
                eprintln!("tonemask relay: error: writing the events file: {e}");
            }
        }
        if let Some((sock, dest)) = &self.udp {
            if let Err(e) = sock.send_to(line.as_bytes(), dest) {
                self.overflow += 1;
                eprintln!(
                    "tonemask relay: warning: event not sent to --dtmf-log-dest {dest} ({e}); it is in the events file, if one is set"
                );
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
pub(super) fn http_sender(
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

/// Where the signed events go: the events file, and a sender thread for the HTTP collector
/// (it stops once `closing` is set and its queue is empty; it returns how many it could not
/// deliver).
pub(super) fn open_sink(
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
    let udp = cfg.dtmf_log_dest.map(udp_target).transpose()?;
    let sink = Sink {
        file,
        queue,
        udp,
        overflow: 0,
    };
    Ok((sink, sender))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_udp_sink_only_sends_on_this_machine() {
        let e = udp_target("192.0.2.7:9999".parse().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("loopback"), "{e}");
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (sock, dest) = udp_target(listener.local_addr().unwrap()).unwrap();
        sock.send_to(b"{\"v\":2}", dest).unwrap();
        let mut buf = [0u8; 64];
        listener
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"{\"v\":2}");
    }
}
