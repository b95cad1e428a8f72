//! Packets out of a session, back to back in one buffer that keeps its capacity: a host that
//! clears and reuses one [`Datagrams`] makes the RTP path allocation-free once it has grown.

use alloc::vec::Vec;

/// The packets a session hands out, in order, stored back to back.
///
/// ```
/// use tonemask_core::rtp::Datagrams;
/// let out = Datagrams::new();
/// for packet in &out {
///     let _send: &[u8] = packet;
/// }
/// assert!(out.is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Datagrams {
    bytes: Vec<u8>,
    /// Where each packet ends in `bytes`.
    ends: Vec<usize>,
}

impl Datagrams {
    /// No packets.
    #[must_use]
    pub fn new() -> Datagrams {
        Datagrams::default()
    }

    /// Forgets the packets, keeping the capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// How many packets.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Packet `i`, if there is one.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j]);
        Some(&self.bytes[start..end])
    }

    /// The packets, in order.
    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            datagrams: self,
            next: 0,
        }
    }

    /// Each packet as its own vector (for hosts that hand packets on one by one).
    #[must_use]
    pub fn to_vecs(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }

    /// The packets back to back, in order.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The packets back to back, in order, as a vector of their own.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Each packet's length, in order.
    pub fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.ends
            .iter()
            .scan(0, |start, &end| Some(end - core::mem::replace(start, end)))
    }

    /// Appends a packet.
    pub fn push(&mut self, packet: &[u8]) {
        self.push_with(|b| b.extend_from_slice(packet));
    }

    /// Appends a packet that `write` appends to the buffer.
    pub(crate) fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.bytes);
        self.ends.push(self.bytes.len());
    }
}

/// The packets of a [`Datagrams`], in order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    datagrams: &'a Datagrams,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let p = self.datagrams.get(self.next)?;
        self.next += 1;
        Some(p)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.datagrams.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Datagrams {
    type Item = &'a [u8];
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_come_back_whole_and_in_order_and_clear_keeps_capacity() {
        let mut d = Datagrams::new();
        d.push(b"one");
        d.push(b"");
        d.push_with(|b| b.extend_from_slice(b"three"));
        assert_eq!(d.len(), 3);
        let got: Vec<&[u8]> = d.iter().collect();
        assert_eq!(got, [&b"one"[..], b"", b"three"]);
        assert_eq!(d.get(3), None);
        assert_eq!(d.iter().len(), 3);
        let cap = d.bytes.capacity();
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.bytes.capacity(), cap);
    }
}
