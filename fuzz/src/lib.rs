//! What each fuzz target does with one input, shared by the `cargo fuzz` targets and by
//! `tests/corpus.rs`, which replays the corpus and regressions on every test run.
//!
//! Each function must return normally for any input: a panic, an overflow or an endless
//! loop is a bug.

use tonemask_capture::Capture;
use tonemask_core::rtp::packet::Packet;
use tonemask_core::rtp::red;
use tonemask_core::rtp::telephone_event::EventPayload;
use tonemask_core::{AudioType, Codec, EventType, MaskMode, RtpConfig, RtpSession};

/// One packet through every RTP-level parser, and a parsed packet written back.
pub fn rtp_packet(data: &[u8]) {
    if let Ok(p) = Packet::parse(data) {
        let _ = (
            p.marker(),
            p.payload_type(),
            p.seq(),
            p.timestamp(),
            p.ssrc(),
        );
        let mut out = Vec::new();
        tonemask_core::rtp::packet::write(p.header(), p.seq(), p.payload(), &mut out);
        let q = Packet::parse(&out).expect("a written packet parses");
        assert_eq!(q.payload(), p.payload());
        if let Ok(blocks) = red::parse(p.payload()) {
            let mut again = Vec::new();
            red::write(&blocks, &mut again);
        }
        let _ = EventPayload::parse(p.payload()).map(|e| e.digit());
    }
    let _ = red::parse(data);
    let _ = Packet::is_rtcp(data);
}

/// A stream of packets through an RTP session. The first byte picks the configuration
/// (codec, mask mode, look-ahead); then each packet is a length byte and that many bytes.
pub fn rtp_session(data: &[u8]) {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let (codec, rate) = match cfg & 3 {
        0 => (Codec::Pcmu, 8000),
        1 => (Codec::Pcma, 8000),
        2 => (Codec::L16, 8000),
        _ => (Codec::L16, 16000),
    };
    let config = RtpConfig {
        telephone_event: Some(EventType {
            pt: 96,
            clock: rate,
        }),
        red: Some(121),
        mask_mode: if cfg & 4 == 0 {
            MaskMode::Silence
        } else {
            MaskMode::Off
        },
        lookahead_ms: u32::from(cfg >> 3) * 4,
        ..RtpConfig::new(
            "fuzz",
            AudioType {
                pt: (cfg >> 5) & 1,
                codec,
                rate,
            },
        )
    };
    let Ok(mut s) = RtpSession::new(config) else {
        return;
    };
    let mut out = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let _ = s.push(&tail[..n], &mut out);
        rest = &tail[n..];
        out.clear();
    }
    s.flush(&mut out).expect("first flush succeeds");
    while s.poll_event().is_some() {}
}

/// A capture file through the reader, every frame through the datagram finder, and every
/// datagram rewritten.
pub fn capture(data: &[u8]) {
    let Ok(cap) = Capture::parse(data) else {
        return;
    };
    for f in &cap.frames {
        if let Some(d) = f.datagram() {
            let g = f.with_payload(&d, &d.payload[..d.payload.len() / 2]);
            let _ = g.datagram();
        }
    }
    if let Ok(bytes) = tonemask_capture::write_pcap(&cap.frames) {
        let _ = Capture::parse(&bytes);
    }
}
