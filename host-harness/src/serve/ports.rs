//! Media ports: for each side of a call an even RTP port and the RTCP port above it, taken
//! from the configured range.
//!
//! An endpoint whose SDP names no RTCP port sends its RTCP to the RTP port + 1 (RFC 3550).
//! Each call therefore holds that port too, so RTCP can never land on another call's port —
//! where, arriving before that call's first packet, it could latch the wrong source. RTCP
//! on those ports is absorbed, not forwarded: nothing leaves the node that the plugin did not
//! inspect (RTCP multiplexed on the RTP port passes through the plugin as before).

use anyhow::{anyhow, bail, Result};
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The node's media port range, handed out round-robin in even/odd pairs.
pub struct Ports {
    ip: IpAddr,
    min: u16,
    max: u16,
    next: u16,
}

/// One call's sockets: RTP and RTCP, caller-facing then callee-facing.
pub struct MediaPorts {
    /// The RTP sockets (even ports).
    pub rtp: [UdpSocket; 2],
    /// The RTCP sockets (RTP port + 1), held for the call and never read.
    pub rtcp: [UdpSocket; 2],
}

impl Ports {
    /// Ports `min..=max` on `ip` (room for at least one call: two even/odd pairs).
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Result<Ports> {
        let first = min.saturating_add(min % 2);
        if min == 0 || max < first.saturating_add(3) {
            bail!(
                "--port-min must be above 0 and --port-max leave room for one call (two even RTP ports and the RTCP ports above them; got {min}–{max})"
            );
        }
        Ok(Ports {
            ip,
            min: first,
            max,
            next: first,
        })
    }

    /// A call's sockets on free ports of the range.
    pub fn pair(&mut self) -> Result<MediaPorts> {
        let (a, a_rtcp) = self.take()?;
        let (b, b_rtcp) = self.take()?;
        Ok(MediaPorts {
            rtp: [a, b],
            rtcp: [a_rtcp, b_rtcp],
        })
    }

    /// Sockets on the next even port and the one above it, both free (a port in use, by
    /// this node or another program, is skipped). Any other failure ends the search at once,
    /// named: out of file descriptors, an address not on this host, a port not allowed.
    fn take(&mut self) -> Result<(UdpSocket, UdpSocket)> {
        let pairs = (self.max - self.min).div_ceil(2);
        for _ in 0..pairs {
            let port = self.next;
            self.next = if self.next.saturating_add(3) > self.max {
                self.min
            } else {
                self.next + 2
            };
            let bind = |p: u16| -> Result<Option<UdpSocket>> {
                match UdpSocket::bind(SocketAddr::new(self.ip, p)) {
                    Ok(s) => Ok(Some(s)),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Ok(None),
                    Err(e) => Err(bind_error(e, self.ip, p)),
                }
            };
            if let (Some(rtp), Some(rtcp)) = (bind(port)?, bind(port + 1)?) {
                return Ok((rtp, rtcp));
            }
        }
        bail!(
            "no free pair of media ports left on {} in {}–{}",
            self.ip,
            self.min,
            self.max
        )
    }
}

/// How many calls the ports `min..=max` hold at once (two even/odd pairs each).
pub fn calls_in(min: u16, max: u16) -> u32 {
    let first = u32::from(min) + u32::from(min % 2);
    (u32::from(max) + 1).saturating_sub(first) / 4
}

/// Why a media port could not be bound, when it is not merely in use.
fn bind_error(e: std::io::Error, ip: IpAddr, port: u16) -> anyhow::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE) => format!(
            " — the node is out of file descriptors: each call holds {} (raise LimitNOFILE or `ulimit -n`)",
            super::FDS_PER_CALL
        ),
        _ => String::new(),
    };
    anyhow!("cannot bind media port {port} on {ip}: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_side_gets_an_even_rtp_port_and_the_rtcp_port_above_it() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        // An odd minimum starts at the next even port; a port in use is skipped.
        let busy = UdpSocket::bind((ip, 24_103)).unwrap();
        let mut p = Ports::new(ip, 24_099, 24_111).unwrap();
        let m = p.pair().unwrap();
        let port = |s: &UdpSocket| s.local_addr().unwrap().port();
        assert_eq!([port(&m.rtp[0]), port(&m.rtcp[0])], [24_100, 24_101]);
        assert_eq!(
            [port(&m.rtp[1]), port(&m.rtcp[1])],
            [24_104, 24_105],
            "24_102 skipped: its RTCP port is taken"
        );
        drop(busy);
        assert!(
            Ports::new(ip, 24_100, 24_102).is_err(),
            "no room for a call"
        );
        // The room a range gives, as the start-up line says: 12 ports are three calls.
        assert_eq!(calls_in(24_099, 24_111), 3);
        assert_eq!(calls_in(24_100, 24_103), 1);
        assert_eq!(calls_in(30_000, 40_000), 2_500);
        let mut all = Ports::new(ip, 24_120, 24_131).unwrap();
        let held: Vec<_> = (0..3).map(|_| all.pair().unwrap()).collect();
        assert!(all.pair().is_err(), "a fourth call does not fit");
        drop(held);
    }

    /// A port that cannot be bound for another reason than being in use is an error that
    /// says so, not a search of the whole range ending in "no free pair".
    #[test]
    fn an_address_not_on_this_host_is_named_not_searched() {
        let ip: IpAddr = [192, 0, 2, 1].into(); // TEST-NET-1: on no interface here
        let mut p = Ports::new(ip, 24_200, 24_299).unwrap();
        let e = p.pair().err().expect("192.0.2.1 is not local").to_string();
        assert!(
            e.contains("cannot bind media port 24200 on 192.0.2.1"),
            "{e}"
        );
        assert!(!e.contains("no free pair"), "{e}");
    }
}
