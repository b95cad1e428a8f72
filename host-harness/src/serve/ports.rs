//! Media ports: pairs of UDP sockets taken from the configured range.

use anyhow::{bail, Result};
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The node's media port range, handed out round-robin.
pub struct Ports {
    ip: IpAddr,
    min: u16,
    max: u16,
    next: u16,
}

impl Ports {
    /// Ports `min..=max` on `ip` (at least two).
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Result<Ports> {
        if min == 0 || max <= min {
            bail!("--port-min must be above 0 and below --port-max (got {min}–{max})");
        }
        Ok(Ports {
            ip,
            min,
            max,
            next: min,
        })
    }

    /// Two sockets on free ports of the range: the caller-facing one, the callee-facing one.
    pub fn pair(&mut self) -> Result<[UdpSocket; 2]> {
        let first = self.take()?;
        let second = self.take()?;
        Ok([first, second])
    }

    /// One socket on the next free port (a port in use, by this node or another program, is
    /// skipped).
    fn take(&mut self) -> Result<UdpSocket> {
        let span = u32::from(self.max - self.min) + 1;
        for _ in 0..span {
            let port = self.next;
            self.next = if self.next >= self.max {
                self.min
            } else {
                self.next + 1
            };
            if let Ok(s) = UdpSocket::bind(SocketAddr::new(self.ip, port)) {
                return Ok(s);
            }
        }
        bail!(
            "no free media port left on {} in {}–{}",
            self.ip,
            self.min,
            self.max
        )
    }
}
