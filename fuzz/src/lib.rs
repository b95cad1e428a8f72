//! What each fuzz target does with one input, shared by the `cargo fuzz` targets and by
//! `tests/corpus.rs`, which replays the corpus and regressions on every test run.
//!
//! Each function must return normally for any input: a panic, an overflow or an endless
//! loop is a bug.

use tonemask_capture::Capture;
use tonemask_core::event::Record;
use tonemask_core::rtp::packet::Packet;
use tonemask_core::rtp::telephone_event::EventPayload;
use tonemask_core::rtp::{red, Datagrams};
use tonemask_core::{AudioType, Codec, EventType, Lookahead, MaskMode, RtpConfig, RtpSession};
use tonemask_core::{Key, Verifier};
use tonemask_harness::{keys::KeyRing, ng, sdp, sip, wav::Wav};

mod card;
pub use card::card;

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

/// The codec and rate a configuration byte's two low bits pick.
fn codec_of(cfg: u8) -> (Codec, u32) {
    match cfg & 3 {
        0 => (Codec::Pcmu, 8000),
        1 => (Codec::Pcma, 8000),
        2 => (Codec::L16, 8000),
        _ => (Codec::L16, 16000),
    }
}

/// A stream of packets through an RTP session. The first byte picks the configuration
/// (codec, mask mode, look-ahead); then each packet is a length byte and that many bytes.
pub fn rtp_session(data: &[u8]) {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let (codec, rate) = codec_of(cfg);
    let mut config = RtpConfig {
        telephone_event: Some(EventType {
            pt: 96,
            clock: rate,
        }),
        red: Some(121),
        ..RtpConfig::new(
            "fuzz",
            AudioType {
                pt: (cfg >> 5) & 1,
                codec,
                rate,
            },
        )
    };
    config.settings.mask_mode = if cfg & 4 == 0 {
        MaskMode::Silence
    } else {
        MaskMode::Off
    };
    config.settings.lookahead = Lookahead::from_ms(u32::from(cfg >> 3) * 4);
    let Ok(mut s) = RtpSession::new(config) else {
        return;
    };
    let mut out = Datagrams::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let _ = s.push(0, &tail[..n], &mut out);
        rest = &tail[n..];
        out.clear();
    }
    s.flush(&mut out).expect("first flush succeeds");
    while s.poll_event().is_some() {}
}

/// One audio stream through two sessions of the same configuration, one processing and one
/// detecting only: they must report the same events (digits, times, leaks, signed lines) and
/// end records, the processing one must give back as many samples as went in, and the
/// detecting one none. Input: a configuration byte, then frames of length-prefixed audio (in
/// the codec's wire bytes; big-endian for L16).
pub fn audio_session(data: &[u8]) {
    use tonemask_core::{Session, SessionConfig, Signer};
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let (codec, rate) = codec_of(cfg);
    let mut config = SessionConfig::new("fuzz", codec);
    config.sample_rate = rate;
    config.settings.mask_mode = match (cfg >> 2) & 3 {
        0 => MaskMode::Silence,
        1 => MaskMode::Tone,
        2 => MaskMode::Noise,
        _ => MaskMode::Off,
    };
    config.settings.lookahead = Lookahead::from_ms(u32::from(cfg >> 5) * 10);
    config.settings.signer =
        Some(Signer::new(Key::new("k", &[7; 32]).expect("key"), [1; 16]).expect("signer"));
    let (Ok(mut processing), Ok(mut detecting)) =
        (Session::new(config.clone()), Session::new(config))
    else {
        return;
    };
    let reported = |s: &mut Session| {
        let mut v = Vec::new();
        while let Some(e) = s.poll_event() {
            v.push(format!("{:?} {} {:?}", e.event, e.leaked_samples, e.line));
        }
        v
    };
    let (mut fed, mut took, mut out) = (0usize, false, Vec::new());
    let (mut processed, mut detected) = (Vec::new(), Vec::new());
    while let Some((&len, tail)) = rest.split_first() {
        // Frames up to 1,020 bytes: the length byte counts units of four.
        let n = (usize::from(len) * 4).min(tail.len());
        let frame = &tail[..n];
        let a = processing.process_bytes(frame, &mut out);
        let b = detecting.detect_bytes(frame);
        assert_eq!(
            a.is_ok(),
            b.is_ok(),
            "one session refused a frame the other took"
        );
        if a.is_ok() {
            fed += frame.len();
            took = true;
        }
        processed.extend(reported(&mut processing));
        detected.extend(reported(&mut detecting));
        rest = &tail[n..];
    }
    processing.flush_bytes(&mut out).expect("first flush");
    let mut nothing = Vec::new();
    detecting.flush_bytes(&mut nothing).expect("first flush");
    // (A session that took no frame has not become a detecting one: its flush gives the
    // delay line's silence, as any session's would.)
    assert!(
        !took || nothing.is_empty(),
        "a detecting session gave audio"
    );
    assert_eq!(
        out.len(),
        fed + processing.delay_samples() * codec.bytes_per_sample()
    );
    processed.extend(reported(&mut processing));
    detected.extend(reported(&mut detecting));
    assert_eq!(
        processed, detected,
        "detecting reported otherwise than processing"
    );
    assert_eq!(processing.end_record(), detecting.end_record());
}

/// A capture file through the reader, every frame through the datagram finder, and every
/// datagram rewritten.
pub fn capture(data: &[u8]) {
    let Ok(cap) = Capture::parse(data) else {
        return;
    };
    let (mut whole, mut in_place) = (
        tonemask_capture::PcapOut::new(Vec::new()),
        tonemask_capture::PcapOut::new(Vec::new()),
    );
    for f in &cap.frames {
        let dg = f.datagram();
        if !f.may_carry_text() {
            // Said to carry no text: its payload cannot begin UTF-8 text.
            let first = dg.and_then(|d| d.payload.first().copied());
            assert!(first.is_none_or(|b| (0x80..=0xBF).contains(&b)), "text");
        }
        if let Some(d) = dg {
            let payload = &d.payload[..d.payload.len() / 2];
            let g = f.with_payload(&d, payload);
            let _ = g.datagram();
            // Built in place, the record is the one of the frame `with_payload` makes.
            let (a, b) = (
                whole.write(&g),
                in_place.write_with_payload(f, &d, payload, g.ts),
            );
            assert_eq!(a.is_ok(), b.is_ok(), "in place");
        }
    }
    if let (Ok(a), Ok(b)) = (whole.finish(), in_place.finish()) {
        assert_eq!(a, b, "in place");
    }
    if let Ok(bytes) = tonemask_capture::write_pcap(&cap.frames) {
        let _ = Capture::parse(&bytes);
    }
}

/// Reads an input as a sequence of choices.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }

    /// `n` bytes (fewer at the end of the input).
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
}

/// A 12-byte RTP header (version 2, no marker) for payload type `pt`.
fn header(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

/// A structure-aware RTP stream: every packet has a valid header of one SSRC (so the
/// session goes past its first checks), and the input chooses what comes: audio of the
/// announced codec (timestamp steps, payload sizes), telephone-event updates and ends, RED
/// packets mixing blocks, unannounced payload types, SSRC changes, timestamp and sequence
/// jumps, raw bytes, re-negotiations (ops 252–255: new payload types mid-stream). The first
/// byte picks the configuration as in [`rtp_session`].
pub fn rtp_stream(data: &[u8]) {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let (config, bps) = stream_config(cfg);
    let Ok(mut s) = RtpSession::new(config.clone()) else {
        return;
    };
    let ops = stream_ops(rest, bps);
    let mut out = Datagrams::new();
    for op in &ops {
        match op {
            Op::Renegotiate(b) => renegotiate(&mut s, *b),
            Op::Time(now) => time_passes(&mut s, *now),
            Op::Packet(now, packet) => {
                let _ = s.push(*now, packet, &mut out);
                out.clear();
                while s.poll_event().is_some() {}
            }
        }
    }
    s.flush(&mut out).expect("first flush succeeds");
    while s.poll_event().is_some() {}
    let _ = s.end_record();
    steps_agree(config, &ops, usize::from(cfg.rotate_left(3)) + 1);
}

/// What the host does next in [`rtp_stream`].
enum Op {
    /// A packet arrives at host time `.0`.
    Packet(u64, Vec<u8>),
    /// Host time reaches `.0` without a packet.
    Time(u64),
    /// New payload types ([`renegotiate`]).
    Renegotiate(u8),
}

/// The operations [`rtp_stream`]'s input (after its configuration byte) picks.
fn stream_ops(data: &[u8], bps: usize) -> Vec<Op> {
    let mut c = Choices(data);
    let (mut seq, mut ts, mut ssrc) = (1000u16, 5000u32, 0x1234_5678u32);
    // Host time, ms: moves forward only, as a monotonic clock does.
    let mut now = 0u64;
    let mut ops = Vec::new();
    while let Some(op) = c.byte() {
        if op >= 252 {
            ops.push(Op::Renegotiate(c.byte().unwrap_or(0)));
            continue;
        }
        let packet = match op % 9 {
            0 => {
                let units = usize::from(c.byte().unwrap_or(160));
                let mut p = header(0, seq, ts, ssrc);
                p.extend(c.bytes(units * bps));
                ts = ts.wrapping_add(units as u32);
                p
            }
            1 => {
                let (event, flags) = (c.byte().unwrap_or(5) % 20, c.byte().unwrap_or(10));
                let duration = c.u16().unwrap_or(160);
                let mut p = header(96, seq, ts, ssrc);
                p.extend_from_slice(&[event, flags]);
                p.extend_from_slice(&duration.to_be_bytes());
                p
            }
            2 => {
                let mut p = header(121, seq, ts, ssrc);
                red_payload(&mut c, &mut p);
                p
            }
            3 => {
                ssrc = c.u32().unwrap_or(1);
                continue;
            }
            4 => {
                ts = ts.wrapping_add(c.u32().unwrap_or(0));
                continue;
            }
            5 => {
                seq = seq.wrapping_add(c.u16().unwrap_or(0));
                continue;
            }
            6 => {
                let pt = c.byte().unwrap_or(97) & 0x7F;
                let len = usize::from(c.byte().unwrap_or(4));
                let mut p = header(pt, seq, ts, ssrc);
                p.extend(c.bytes(len));
                p
            }
            7 => {
                let len = usize::from(c.byte().unwrap_or(12));
                c.bytes(len)
            }
            _ => {
                now = now.saturating_add(u64::from(c.u16().unwrap_or(20)));
                ops.push(Op::Time(now));
                continue;
            }
        };
        seq = seq.wrapping_add(1);
        now = now.saturating_add(u64::from(c.byte().unwrap_or(20) & 0x1F));
        ops.push(Op::Packet(now, packet));
    }
    ops
}

/// A packet out, as a host sees it: the step it left at, the deadline that released it
/// (none: the step's packet did), its bytes.
type Left = (usize, Option<u64>, Vec<u8>);

/// The same operations through two sessions — one step at a time (each deadline due by a
/// step's time handled at its own time, then the step's packet) and in batches of `chunk`
/// steps ([`RtpSession::advance`], again after a refused packet, split at re-negotiations):
/// the same packets must leave at the same steps, released by the same deadlines, with the
/// same refusals, events and counters.
fn steps_agree(config: RtpConfig, ops: &[Op], chunk: usize) {
    let (Ok(mut one), Ok(mut many)) = (RtpSession::new(config.clone()), RtpSession::new(config))
    else {
        return;
    };
    let (mut a, mut b): (Vec<Left>, Vec<Left>) = (Vec::new(), Vec::new());
    let (mut refused_a, mut refused_b) = (Vec::new(), Vec::new());
    let mut steps: Vec<(u64, Option<&[u8]>)> = Vec::new();
    let mut first = 0;
    for op in ops.iter().chain([&Op::Renegotiate(u8::MAX)]) {
        let step = match op {
            Op::Packet(now, p) => (*now, (!p.is_empty()).then_some(&p[..])),
            Op::Time(now) => (*now, None),
            Op::Renegotiate(r) => {
                // The batches so far, then the same new types for both.
                let mut at = 0;
                while at < steps.len() {
                    let end = (at + chunk).min(steps.len());
                    let mut batch = tonemask_core::rtp::Batch::new();
                    let taken = many.advance(steps[at..end].iter().copied(), &mut batch);
                    assert!(taken.steps >= 1 && at + taken.steps <= end, "steps taken");
                    assert_eq!(batch.counts.len(), taken.steps, "a count per step");
                    let counted: u32 = batch.counts.iter().flatten().sum();
                    let timed: u32 = batch.counts.iter().map(|c| c[0]).sum();
                    assert_eq!(counted as usize, batch.out.len(), "a packet per count");
                    assert_eq!(timed as usize, batch.dues.len(), "a deadline per count");
                    b.extend(
                        batch
                            .iter()
                            .map(|(k, due, p)| (first + at + k, due, p.to_vec())),
                    );
                    if taken.refused.is_some() {
                        refused_b.push(first + at + taken.steps - 1);
                    }
                    at += taken.steps;
                }
                first += steps.len();
                steps.clear();
                if *r != u8::MAX {
                    renegotiate(&mut one, *r);
                    renegotiate(&mut many, *r);
                }
                continue;
            }
        };
        let i = first + steps.len();
        let mut out = Datagrams::new();
        while let Some(due) = one.poll_timeout().filter(|&t| t <= step.0) {
            one.handle_timeout(due, &mut out).expect("not flushed");
            a.extend(out.iter().map(|p| (i, Some(due), p.to_vec())));
            out.clear();
            if one.poll_timeout() == Some(due) {
                break;
            }
        }
        if let Some(p) = step.1 {
            match one.push(step.0, p, &mut out) {
                Ok(()) => a.extend(out.iter().map(|p| (i, None, p.to_vec()))),
                Err(_) => refused_a.push(i),
            }
        }
        steps.push(step);
    }
    assert_eq!(a, b, "the same packets at the same steps");
    assert_eq!(refused_a, refused_b, "the same refusals");
    assert_eq!(one.stats(), many.stats(), "the same counters");
    loop {
        match (one.poll_event(), many.poll_event()) {
            (None, None) => break,
            (x, y) => assert_eq!(x.map(|e| e.event), y.map(|e| e.event), "the same events"),
        }
    }
}

/// A re-negotiation in the middle of the stream: new payload types picked by `b` (codec and
/// rate, audio type 0 or 1, telephone-event and RED or not) — refused when the clock rates
/// change, taken otherwise; the packets that follow may then be of an unknown type.
fn renegotiate(s: &mut RtpSession, b: u8) {
    let (codec, rate) = match b & 3 {
        0 => (Codec::Pcmu, 8000),
        1 => (Codec::Pcma, 8000),
        2 => (Codec::L16, 8000),
        _ => (Codec::L16, 16000),
    };
    let audio = AudioType {
        pt: (b >> 2) & 1,
        codec,
        rate,
    };
    let te = (b & 0x10 != 0).then_some(EventType {
        pt: 96,
        clock: rate,
    });
    let red = (b & 0x20 != 0).then_some(121);
    let _ = s.change_payload_types(vec![audio], te, red);
}

/// The configuration `rtp_stream`'s first byte picks, and the codec's bytes per sample.
fn stream_config(cfg: u8) -> (RtpConfig, usize) {
    let (codec, rate, bps) = match cfg & 3 {
        0 => (Codec::Pcmu, 8000, 1),
        1 => (Codec::Pcma, 8000, 1),
        2 => (Codec::L16, 8000, 2),
        _ => (Codec::L16, 16000, 2),
    };
    let mode = [
        MaskMode::Silence,
        MaskMode::Tone,
        MaskMode::Noise,
        MaskMode::Off,
    ][usize::from((cfg >> 2) & 3)];
    let mut config = RtpConfig {
        telephone_event: (cfg & 0x10 == 0).then_some(EventType {
            pt: 96,
            clock: rate,
        }),
        red: Some(121),
        ..RtpConfig::new("fuzz", AudioType { pt: 0, codec, rate })
    };
    config.settings.mask_mode = mode;
    config.settings.lookahead = Lookahead::from_ms(u32::from(cfg >> 5) * 20);
    (config, bps)
}

/// Appends a RED payload of 1–3 blocks the input chooses (audio, events, another codec, an
/// unknown type; any lengths and offsets) to `p`.
fn red_payload(c: &mut Choices<'_>, p: &mut Vec<u8>) {
    let blocks = 1 + usize::from(c.byte().unwrap_or(0) % 3);
    let mut bodies = Vec::new();
    for i in 0..blocks {
        let pt = [0u8, 96, 8, 100][usize::from(c.byte().unwrap_or(0) % 4)];
        let len = usize::from(c.byte().unwrap_or(160));
        let body = c.bytes(len);
        if i + 1 < blocks {
            let off = u32::from(c.u16().unwrap_or(160) & 0x3FFF);
            let word =
                0x8000_0000 | (u32::from(pt) << 24) | (off << 10) | (body.len() as u32 & 0x3FF);
            p.extend_from_slice(&word.to_be_bytes());
        } else {
            p.push(pt);
        }
        bodies.push(body);
    }
    p.extend(bodies.concat());
}

/// Host time reaches `now` without a packet: the session does what is due, and what it asks
/// to be woken for next lies in the future (no busy loop).
fn time_passes(s: &mut RtpSession, now: u64) {
    let mut out = Datagrams::new();
    if let Some(due) = s.poll_timeout().filter(|&t| t <= now) {
        s.handle_timeout(due, &mut out).expect("not flushed");
        assert!(
            s.poll_timeout().is_none_or(|t| t > due),
            "woken again at once"
        );
    }
    s.handle_timeout(now, &mut out).expect("not flushed");
    while s.poll_event().is_some() {}
}

/// A WAV file through the reader; what it accepts is written back and read again unchanged.
pub fn wav(data: &[u8]) {
    let parsed = Wav::parse(data);
    // The no-copy reader agrees with the copying one, errors included.
    assert_eq!(Wav::from_file_bytes(data.to_vec()), parsed);
    if let Ok(w) = parsed {
        let again = Wav::parse(&w.to_bytes()).expect("a written WAV parses");
        assert_eq!(again, w);
        let _ = w.linear();
    }
}

/// An events file through the verifier (envelope, MAC, sequence, ends) and every payload
/// through the record parser directly (a fuzzer cannot forge MACs to get there).
pub fn events(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(key) = Key::new("k1", &[0x42; 32]) else {
        return;
    };
    let mut v = Verifier::new(vec![key]);
    for line in text.lines() {
        let _ = v.verify(line);
        if let Some(i) = line.find("\"payload\":") {
            let p = line[i + 10..].strip_suffix('}').unwrap_or(&line[i + 10..]);
            if let Ok(r) = Record::parse_payload(p) {
                let again = match &r {
                    Record::Start(e) => e.to_payload(),
                    Record::Digit(e) => e.to_payload(),
                    Record::Press(e) => e.to_payload(),
                    Record::Capture(e) => e.to_payload(),
                    Record::End(e) => e.to_payload(),
                };
                assert_eq!(Record::parse_payload(&again).ok(), Some(r));
            }
        }
    }
    let _ = v.finish();
}

/// A key file's text through the key-file parser.
pub fn keys(data: &[u8]) {
    let _ = KeyRing::parse(&String::from_utf8_lossy(data));
}

/// A UDP payload through the SIP message and SDP readers.
pub fn sip(data: &[u8]) {
    if let Some(m) = sip::Message::parse(data) {
        let _ = (m.carries_dtmf(), sdp::parse_sdp(m.body));
    }
    let _ = sdp::parse_sdp(&String::from_utf8_lossy(data));
    let _ = sip::media_descriptions([data, data]);
}

/// A datagram on the media node's control port: the ng message reader, and the SDP it
/// carries through the reader and the rewriter (offer and answer).
pub fn ng(data: &[u8]) {
    let Ok(req) = ng::Request::parse(data) else {
        return;
    };
    let _ = (req.command(), req.list("flags"), req.keys());
    if let Some(body) = req.text("sdp") {
        let _ = sdp::parse_sdp(body);
        let at = std::net::SocketAddr::from(([127, 0, 0, 1], 30_000));
        if let Ok(out) = sdp::rewrite_sdp(body, at, sdp::Rewrite { origin: true }) {
            // What the node announces points at the node, or at nothing.
            if let Some((addr, _)) = sdp::parse_sdp(&out) {
                assert_eq!(addr, at, "rewritten SDP points elsewhere:\n{out}");
            }
        }
    }
    let _ = ng::reply(&req.cookie, &req.body);
}
