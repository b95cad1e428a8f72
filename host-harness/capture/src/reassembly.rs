//! IPv4 and IPv6 fragments put back together: a datagram whose pieces are all in the capture
//! becomes one frame; the pieces of an incomplete one stay, to be classed [`Skip::Fragment`].

use super::*;

/// One fragment of an IP datagram.
struct Piece {
    /// Byte offset of its data in the datagram's payload.
    offset: usize,
    more: bool,
    data: Vec<u8>,
    /// Where it stood in the capture.
    position: usize,
}

/// Which datagram a fragment belongs to: source, destination, identification, protocol.
type FragKey = (IpAddr, IpAddr, u32, u8);

/// Replaces the fragments of every IP datagram whose pieces are all in the capture by one
/// frame holding the whole datagram (at the place of the piece that completed it). Pieces
/// that overlap, or whose datagram never completes, stay as they are.
/// `fragments`: whether any frame is a fragment ([`is_fragment`]); without any, the frames
/// come back as they are.
pub(crate) fn reassemble(frames: Vec<Frame>, fragments: bool) -> (Vec<Frame>, usize) {
    if !fragments {
        return (frames, 0);
    }
    let mut pending: std::collections::HashMap<FragKey, Vec<Piece>> = Default::default();
    let mut out: Vec<(usize, Frame)> = Vec::with_capacity(frames.len());
    let mut complete = 0;
    let mut originals: Vec<Option<Frame>> = Vec::new();
    for (position, frame) in frames.into_iter().enumerate() {
        let Some((key, piece)) = fragment_of(&frame, position) else {
            out.push((position, frame));
            continue;
        };
        originals.resize_with(position + 1, || None);
        let pieces = pending.entry(key).or_default();
        pieces.push(piece);
        let whole = whole_payload(pieces);
        originals[position] = Some(frame);
        if let Some(payload) = whole {
            let first = pieces.iter().find(|p| p.offset == 0).map(|p| p.position);
            let rebuilt = first
                .and_then(|i| originals[i].as_ref())
                .and_then(|f| f.with_ip_payload(key.3, &payload));
            if let Some(mut rebuilt) = rebuilt {
                if let Some(last) = &originals[position] {
                    rebuilt.ts = last.ts;
                }
                for p in pieces.iter() {
                    originals[p.position] = None;
                }
                pending.remove(&key);
                out.push((position, rebuilt));
                complete += 1;
            }
        }
    }
    out.extend(
        originals
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| Some((i, f?))),
    );
    out.sort_by_key(|(i, _)| *i);
    (out.into_iter().map(|(_, f)| f).collect(), complete)
}

/// The datagram's payload once the pieces cover it exactly, from 0 to a last piece, without
/// overlap.
fn whole_payload(pieces: &mut [Piece]) -> Option<Vec<u8>> {
    pieces.sort_by_key(|p| p.offset);
    let mut end = 0;
    for p in pieces.iter() {
        if p.offset != end {
            return None;
        }
        end += p.data.len();
        if !p.more {
            return (end <= 65_535).then(|| pieces.iter().flat_map(|p| p.data.clone()).collect());
        }
    }
    None
}

/// The fragment this frame carries, if it is one.
/// Whether `frame` holds a piece of a fragmented IP datagram.
pub(crate) fn is_fragment(frame: &Frame) -> bool {
    fragment_of(frame, 0).is_some()
}

fn fragment_of(frame: &Frame, position: usize) -> Option<(FragKey, Piece)> {
    if frame.orig_len > frame.data.len() || frame.ethernet_ipv4_udp().is_some() {
        return None;
    }
    let sliced = frame.sliced().ok()?;
    match sliced.net.as_ref()? {
        NetSlice::Ipv4(v4) if v4.is_payload_fragmented() => {
            let h = v4.header();
            let key = (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                u32::from(h.identification()),
                v4.payload().ip_number.0,
            );
            Some((
                key,
                Piece {
                    offset: usize::from(h.fragments_offset().value()) * 8,
                    more: h.more_fragments(),
                    data: v4.payload().payload.to_vec(),
                    position,
                },
            ))
        }
        NetSlice::Ipv6(v6) if v6.is_payload_fragmented() => {
            let frag = v6.extensions().clone().into_iter().find_map(|e| match e {
                etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f.to_header()),
                _ => None,
            })?;
            let h = v6.header();
            let key = (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                frag.identification,
                frag.next_header.0,
            );
            Some((
                key,
                Piece {
                    offset: usize::from(frag.fragment_offset.value()) * 8,
                    more: frag.more_fragments,
                    data: v6.payload().payload.to_vec(),
                    position,
                },
            ))
        }
        _ => None,
    }
}
