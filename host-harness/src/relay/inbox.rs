//! Datagrams taken from a leg's socket several at a time: on Linux one `recvmmsg(2)` takes
//! every datagram waiting (up to [`SLOTS`]), so a wake that finds one packet costs one system
//! call instead of two (the packet, then the `EAGAIN` that said the socket was empty).
//! Elsewhere, one `recv_from` per datagram.

use std::io;
use std::net::SocketAddr;

/// Datagrams one call takes at most.
pub(super) const SLOTS: usize = 8;

/// Room for any UDP datagram (IPv4 or IPv6 without jumbograms): nothing is ever truncated.
const SLOT_BYTES: usize = 65_536;

/// Buffers for [`SLOTS`] datagrams and what the last [`Inbox::fill`] put in them.
pub(super) struct Inbox {
    bufs: Vec<Box<[u8]>>,
    got: [(usize, Option<SocketAddr>); SLOTS],
}

impl Inbox {
    pub(super) fn new() -> Inbox {
        Inbox {
            bufs: (0..SLOTS)
                .map(|_| vec![0; SLOT_BYTES].into_boxed_slice())
                .collect(),
            got: [(0, None); SLOTS],
        }
    }

    /// Datagram `i` of the last fill and its source (`None`: an address family the relay
    /// does not speak, which no admitted peer has).
    pub(super) fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let (n, from) = self.got[i];
        (&self.bufs[i][..n], from)
    }

    /// Takes the datagrams waiting in `rx`, without blocking; returns how many (fewer than
    /// [`SLOTS`]: the socket is empty now).
    #[cfg(target_os = "linux")]
    pub(super) fn fill(&mut self, rx: &mio::net::UdpSocket) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut names: [libc::sockaddr_storage; SLOTS] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { std::mem::zeroed() };
        let mut iovs: Vec<libc::iovec> = self
            .bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: b.len(),
            })
            .collect();
        for ((h, name), iov) in hdrs.iter_mut().zip(&mut names).zip(&mut iovs) {
            h.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = std::ptr::from_mut(iov);
            h.msg_hdr.msg_iovlen = 1;
        }
        let n = loop {
            // SAFETY: `hdrs` holds SLOTS headers, each pointing at its own name buffer of
            // the size given and one iovec over a buffer of `self.bufs`; all outlive the call.
            let rc = unsafe {
                libc::recvmmsg(
                    rx.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    SLOTS as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if let Ok(n) = usize::try_from(rc) {
                break n;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(e),
            }
        };
        for (i, h) in hdrs.iter().enumerate().take(n) {
            // A datagram cut short (never, with slots of 64 KiB) goes on empty: the plugin
            // refuses it as malformed, and it is counted so.
            let whole = h.msg_hdr.msg_flags & libc::MSG_TRUNC == 0;
            let len = if whole { h.msg_len as usize } else { 0 };
            self.got[i] = (len.min(SLOT_BYTES), socket_addr(&names[i]));
        }
        Ok(n)
    }

    /// Takes the datagrams waiting in `rx`, without blocking; returns how many (fewer than
    /// [`SLOTS`]: the socket is empty now).
    #[cfg(not(target_os = "linux"))]
    pub(super) fn fill(&mut self, rx: &mio::net::UdpSocket) -> io::Result<usize> {
        for i in 0..SLOTS {
            match rx.recv_from(&mut self.bufs[i]) {
                Ok((n, from)) => self.got[i] = (n, Some(from)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(i),
                Err(e) => return Err(e),
            }
        }
        Ok(SLOTS)
    }
}

/// The address the kernel wrote into `s`.
#[cfg(target_os = "linux")]
fn socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match libc::c_int::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says `s` holds a sockaddr_in, which fits in (and is no more
            // aligned than) sockaddr_storage.
            let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    /// Datagrams come out whole, in order, with their sources — v4 and v6 — and a fill of
    /// fewer than `SLOTS` means the socket was emptied.
    #[test]
    fn takes_what_waits_with_its_source() {
        for local in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(rx) = UdpSocket::bind(local) else {
                continue; // no IPv6 on this machine
            };
            rx.set_nonblocking(true).unwrap();
            let rx = mio::net::UdpSocket::from_std(rx);
            let to = rx.local_addr().unwrap();
            let a = UdpSocket::bind(local).unwrap();
            let b = UdpSocket::bind(local).unwrap();
            let mut inbox = Inbox::new();
            assert_eq!(inbox.fill(&rx).unwrap(), 0);
            let big = vec![7u8; 60_000];
            a.send_to(b"one", to).unwrap();
            b.send_to(&big, to).unwrap();
            a.send_to(b"", to).unwrap();
            // Loopback delivers at once, but give the kernel a moment all the same.
            let mut n = 0;
            for _ in 0..100 {
                n = inbox.fill(&rx).unwrap();
                if n > 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let mut got: Vec<(Vec<u8>, Option<SocketAddr>)> = (0..n)
                .map(|i| {
                    let (d, from) = inbox.get(i);
                    (d.to_vec(), from)
                })
                .collect();
            while got.len() < 3 {
                let m = inbox.fill(&rx).unwrap();
                got.extend((0..m).map(|i| (inbox.get(i).0.to_vec(), inbox.get(i).1)));
            }
            let from_a = Some(a.local_addr().unwrap());
            assert_eq!(got[0], (b"one".to_vec(), from_a));
            assert_eq!(got[1], (big.clone(), Some(b.local_addr().unwrap())));
            assert_eq!(got[2], (Vec::new(), from_a));
            assert_eq!(inbox.fill(&rx).unwrap(), 0);
            // More than a fill takes: SLOTS now, the rest next time.
            for i in 0..SLOTS + 3 {
                a.send_to(&[i as u8], to).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert_eq!(inbox.fill(&rx).unwrap(), SLOTS);
            assert_eq!(inbox.get(SLOTS - 1).0, [(SLOTS - 1) as u8]);
            assert_eq!(inbox.fill(&rx).unwrap(), 3);
            assert_eq!(inbox.get(2).0, [(SLOTS + 2) as u8]);
        }
    }
}
