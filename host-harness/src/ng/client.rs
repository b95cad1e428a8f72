//! The other end of the protocol: what a SIP proxy's `rtpengine` module does — one request
//! per datagram under a fresh cookie, the reply's dictionary back. For tools that drive a
//! node (load, comparisons) and for tests.

use super::bencode::{self, Value};
use anyhow::{anyhow, bail, Context, Result};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// An ng client talking to one node.
pub struct Client {
    sock: UdpSocket,
    /// Unique per client in this process: rtpengine answers a repeated cookie from its cache.
    prefix: String,
    sent: u32,
}

impl Client {
    /// A client of the node at `node`, waiting up to `timeout` for each reply.
    pub fn connect(node: SocketAddr, timeout: Duration) -> Result<Client> {
        static CLIENTS: AtomicU32 = AtomicU32::new(0);
        let sock = UdpSocket::bind(if node.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        })?;
        sock.connect(node)
            .with_context(|| format!("ng node {node}"))?;
        sock.set_read_timeout(Some(timeout))?;
        let prefix = format!(
            "{}x{}",
            std::process::id(),
            CLIENTS.fetch_add(1, Ordering::Relaxed)
        );
        Ok(Client {
            sock,
            prefix,
            sent: 0,
        })
    }

    /// Sends one datagram as it is; the reply datagram, if one comes in time.
    pub fn raw(&mut self, datagram: &[u8]) -> Result<Option<Vec<u8>>> {
        self.sock.send(datagram)?;
        let mut buf = vec![0u8; 65_536];
        match self.sock.recv(&mut buf) {
            Ok(n) => Ok(Some(buf[..n].to_vec())),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends the dictionary of `pairs`; the reply's dictionary, whatever its `result`.
    pub fn send(&mut self, pairs: Vec<(&str, Value)>) -> Result<Value> {
        self.sent += 1;
        let cookie = format!("{}_{}", self.prefix, self.sent);
        let mut d = format!("{cookie} ").into_bytes();
        d.extend(Value::dict(pairs).encode());
        let reply = self
            .raw(&d)?
            .ok_or_else(|| anyhow!("the node did not answer"))?;
        let body = reply
            .strip_prefix(format!("{cookie} ").as_bytes())
            .ok_or_else(|| anyhow!("the reply does not repeat the cookie"))?;
        Ok(bencode::decode(body)?)
    }

    /// As [`Client::send`], refusing a reply whose `result` is not `ok` (or `pong`).
    pub fn command(&mut self, pairs: Vec<(&str, Value)>) -> Result<Value> {
        let v = self.send(pairs)?;
        match v.get("result").and_then(Value::as_str) {
            Some("ok" | "pong") => Ok(v),
            _ => bail!(
                "node refused: {}",
                v.get("error-reason")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given")
            ),
        }
    }
}
