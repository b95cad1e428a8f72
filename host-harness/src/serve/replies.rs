//! Replies kept by cookie, as rtpengine keeps them: a proxy that missed a reply sends the
//! same datagram again (Kamailio after `rtpengine_tout_ms`, OpenSIPS after `rtpengine_tout`),
//! and it must get the same answer — not the command carried out twice (a second `delete`
//! answered "Call-ID not found", a second `capture` starting afresh over the typing).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a reply is kept (a proxy gives up on a command well before).
pub const KEEP: Duration = Duration::from_secs(30);

/// Replies kept at most (the oldest go first beyond it).
const MOST: usize = 65_536;

/// Replies by (sender, cookie), oldest first for expiry.
#[derive(Default)]
pub struct Replies {
    by_cookie: HashMap<(SocketAddr, Vec<u8>), Vec<u8>>,
    order: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
}

impl Replies {
    /// The reply already sent to `from` for `cookie`, if it is still kept at `now`.
    pub fn get(&mut self, from: SocketAddr, cookie: &[u8], now: Instant) -> Option<&[u8]> {
        self.expire(now);
        self.by_cookie
            .get(&(from, cookie.to_vec()))
            .map(Vec::as_slice)
    }

    /// Keeps `reply`, sent to `from` for `cookie` at `now`.
    pub fn put(&mut self, from: SocketAddr, cookie: &[u8], reply: &[u8], now: Instant) {
        self.expire(now);
        while self.order.len() >= MOST {
            self.forget_oldest();
        }
        let key = (from, cookie.to_vec());
        if self.by_cookie.insert(key, reply.to_vec()).is_none() {
            self.order.push_back((now, from, cookie.to_vec()));
        }
    }

    fn expire(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(at, ..)| now.saturating_duration_since(*at) >= KEEP)
        {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((_, from, cookie)) = self.order.pop_front() {
            self.by_cookie.remove(&(from, cookie));
        }
    }
}

/// The cookie of a control datagram: what comes before its first space.
pub fn cookie_of(datagram: &[u8]) -> Option<&[u8]> {
    let i = datagram.iter().position(|&b| b == b' ')?;
    (i > 0).then(|| &datagram[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_kept_per_sender_and_cookie_for_thirty_seconds() {
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:5070".parse().unwrap(),
        );
        let t0 = Instant::now();
        let mut r = Replies::default();
        assert_eq!(r.get(a, b"c1", t0), None);
        r.put(a, b"c1", b"c1 d6:result2:oke", t0);
        assert_eq!(
            r.get(a, b"c1", t0 + KEEP / 2),
            Some(&b"c1 d6:result2:oke"[..])
        );
        assert_eq!(
            r.get(b, b"c1", t0),
            None,
            "another proxy's cookie is its own"
        );
        assert_eq!(r.get(a, b"c2", t0), None);
        assert_eq!(r.get(a, b"c1", t0 + KEEP), None, "forgotten after 30 s");
        assert!(r.by_cookie.is_empty() && r.order.is_empty());
        assert_eq!(cookie_of(b"abc d7:command4:pinge"), Some(&b"abc"[..]));
        assert_eq!(cookie_of(b" d7:command4:pinge"), None);
        assert_eq!(cookie_of(b"nospace"), None);
    }

    #[test]
    fn the_oldest_go_first_when_full() {
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let t0 = Instant::now();
        let mut r = Replies::default();
        for i in 0..MOST + 2 {
            r.put(a, i.to_string().as_bytes(), b"x", t0);
        }
        assert_eq!(r.order.len(), MOST);
        assert_eq!(r.get(a, b"0", t0), None);
        assert_eq!(r.get(a, b"1", t0), None);
        assert_eq!(r.get(a, b"2", t0), Some(&b"x"[..]));
    }
}
