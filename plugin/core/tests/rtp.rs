//! The RTP path in the native core: packet delay, RFC 4733 presses, RED, one event per press.

mod common;

use common::*;
use tonemask_core::detector::{detect_all, DetectorConfig, Transition};
use tonemask_core::rtp::packet::Packet;
use tonemask_core::rtp::{red, Datagrams};
use tonemask_core::{
    AudioType, Codec, Error, EventType, MaskMode, Misuse, RtpConfig, RtpError, RtpSession, Source,
};

const PCMU: AudioType = AudioType {
    pt: 0,
    codec: Codec::Pcmu,
    rate: 8000,
};
const TE: u8 = 96;
const RED: u8 = 121;
const SSRC: u32 = 0x1234_5678;

fn config() -> RtpConfig {
    RtpConfig {
        telephone_event: Some(EventType {
            pt: TE,
            clock: 8000,
        }),
        red: Some(RED),
        ..RtpConfig::new("call-rtp", PCMU)
    }
}

fn with_mode(mode: MaskMode) -> RtpConfig {
    let mut c = config();
    c.settings.mask_mode = mode;
    c
}

fn header(pt: u8, marker: bool, seq: u16, ts: u32) -> Vec<u8> {
    let mut h = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&ts.to_be_bytes());
    h.extend_from_slice(&SSRC.to_be_bytes());
    h
}

fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = header(pt, marker, seq, ts);
    p.extend_from_slice(payload);
    p
}

fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    [code, if end { 0x80 } else { 0 } | 10, d[0], d[1]]
}

fn ulaw(pcm: &[i16]) -> Vec<u8> {
    pcm.iter()
        .map(|&s| tonemask_core::g711::linear_to_ulaw(s))
        .collect()
}

fn decode(bytes: &[u8]) -> Vec<i16> {
    bytes
        .iter()
        .map(|&b| tonemask_core::g711::ulaw_to_linear(b))
        .collect()
}

/// Packets, the µ-law audio they carry, and the tone windows in it.
type Call = (Vec<Vec<u8>>, Vec<u8>, Vec<(usize, usize)>);

/// Card digits as tones, 20 ms µ-law packets.
fn inband_call(digits: &str) -> Call {
    let mut b = Vec::new();
    let mut windows = Vec::new();
    push_silence(&mut b, 8000.0, 200.0);
    for d in digits.chars() {
        let s = b.len();
        push_tone(&mut b, 8000.0, &Tone::new(d, 70.0));
        windows.push((s, b.len()));
        push_silence(&mut b, 8000.0, 80.0);
    }
    push_silence(&mut b, 8000.0, 300.0);
    while b.len() % 160 != 0 {
        b.push(0.0);
    }
    let audio = ulaw(&to_i16(&b));
    let packets = audio
        .chunks(160)
        .enumerate()
        .map(|(i, c)| rtp(0, i == 0, 1000 + i as u16, 5000 + 160 * i as u32, c))
        .collect();
    (packets, audio, windows)
}

struct Run {
    out: Vec<Vec<u8>>,
    digits: Vec<(char, Source)>,
    starts_ms: Vec<u64>,
    session: RtpSession,
}

fn run(config: RtpConfig, packets: &[Vec<u8>]) -> Run {
    let mut s = RtpSession::new(config).unwrap();
    let mut out = Datagrams::new();
    for p in packets {
        s.push(0, p, &mut out).unwrap();
    }
    s.flush(&mut out).unwrap();
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    Run {
        out: out.to_vecs(),
        digits: events
            .iter()
            .map(|e| (e.event.digit.to_char(), e.event.source))
            .collect(),
        starts_ms: events.iter().map(|e| e.event.start_ms).collect(),
        session: s,
    }
}

fn audio_of(out: &[Vec<u8>]) -> Vec<u8> {
    out.iter()
        .filter_map(|b| Packet::parse(b).ok())
        .filter(|p| p.payload_type() == 0)
        .flat_map(|p| p.payload().to_vec())
        .collect()
}

fn inband_digits(audio: &[u8]) -> usize {
    detect_all(8000, &DetectorConfig::default(), &decode(audio))
        .iter()
        .filter(|t| matches!(t, Transition::Ended { .. }))
        .count()
}

#[test]
fn inband_tones_are_masked_in_the_packets_that_carried_them() {
    let (packets, audio, windows) = inband_call("4111111111111111");
    let r = run(config(), &packets);
    let digits: String = r.digits.iter().map(|d| d.0).collect();
    assert_eq!(digits, "4111111111111111");
    assert!(r.digits.iter().all(|d| d.1 == Source::Inband));
    // Same packets, same headers, in order.
    assert_eq!(r.out.len(), packets.len());
    for (a, b) in packets.iter().zip(&r.out) {
        assert_eq!(a[..12], b[..12], "header changed");
        assert_eq!(a.len(), b.len());
    }
    let masked = audio_of(&r.out);
    assert_eq!(
        inband_digits(&masked),
        0,
        "a digit is still in the masked audio"
    );
    for &(a, b) in &windows {
        assert!(
            masked[a..b].iter().all(|&v| v == 0xFF),
            "tone {a}..{b} leaked"
        );
    }
    // Away from the tones (2 ms guard) the bytes are the ones sent.
    let mut inside = vec![false; audio.len()];
    for &(a, b) in &windows {
        inside[a - 16..b + 16].iter_mut().for_each(|f| *f = true);
    }
    let changed = (0..audio.len())
        .filter(|&i| !inside[i] && audio[i] != masked[i])
        .count();
    assert_eq!(changed, 0);
}

/// Silence packets with a press of `code` as telephone-events from packet 10 to 17 (end ×3).
fn event_call(code: u8, with_tone: Option<char>) -> Vec<Vec<u8>> {
    let mut b = Vec::new();
    push_silence(&mut b, 8000.0, 200.0);
    if let Some(d) = with_tone {
        push_tone(&mut b, 8000.0, &Tone::new(d, 120.0));
    }
    while b.len() < 160 * 40 {
        b.push(0.0);
    }
    let audio = ulaw(&to_i16(&b));
    let mut packets = Vec::new();
    let mut seq = 1u16;
    let start = 160 * 10;
    for (i, c) in audio.chunks(160).enumerate() {
        let ts = 160 * i as u32;
        packets.push(rtp(0, i == 0, seq, ts, c));
        seq += 1;
        if (10..16).contains(&i) {
            let dur = (ts + 160 - start) as u16;
            let end = i == 15;
            for _ in 0..if end { 3 } else { 1 } {
                packets.push(rtp(TE, i == 10, seq, start, &event(code, end, dur)));
                seq += 1;
            }
        }
    }
    packets
}

#[test]
fn a_press_as_telephone_events_is_reported_once_and_its_packets_dropped() {
    let packets = event_call(11, None);
    let r = run(config(), &packets);
    assert_eq!(r.digits, [('#', Source::Rfc4733)]);
    assert_eq!(r.starts_ms, [200]);
    assert!(r
        .out
        .iter()
        .all(|b| Packet::parse(b).unwrap().payload_type() != TE));
    assert_eq!(r.session.stats().events_dropped, 8);
    // Sequence numbers stay contiguous: the receiver sees no loss.
    let seqs: Vec<u16> = r
        .out
        .iter()
        .map(|b| Packet::parse(b).unwrap().seq())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{seqs:?}"
    );
}

#[test]
fn mask_mode_off_forwards_the_events_but_still_reports_them() {
    let packets = event_call(5, None);
    let r = run(with_mode(MaskMode::Off), &packets);
    assert_eq!(r.digits, [('5', Source::Rfc4733)]);
    assert_eq!(r.out.len(), packets.len());
}

#[test]
fn tones_and_events_of_the_same_press_give_one_event() {
    let packets = event_call(5, Some('5'));
    let r = run(config(), &packets);
    assert_eq!(r.digits, [('5', Source::Both)]);
    assert_eq!(inband_digits(&audio_of(&r.out)), 0);
}

#[test]
fn events_inside_red_blocks_are_taken_and_removed_and_red_audio_is_masked() {
    // Every audio packet goes as RED: the previous packet's audio as a redundant block, the
    // current as primary; events ride as redundant blocks of the audio packets.
    let (plain, audio, _) = inband_call("9");
    let mut packets = Vec::new();
    for (i, p) in plain.iter().enumerate() {
        let p = Packet::parse(p).unwrap();
        let mut blocks = Vec::new();
        let ev = event(3, i == 20, 160 * 4);
        if (16..=20).contains(&i) {
            blocks.push(red::Block {
                pt: TE,
                ts_offset: 160 * (i as u16 - 16),
                data: &ev,
            });
        }
        let prev = (i > 0).then(|| &audio[(i - 1) * 160..i * 160]);
        if let Some(prev) = prev {
            blocks.push(red::Block {
                pt: 0,
                ts_offset: 160,
                data: prev,
            });
        }
        blocks.push(red::Block {
            pt: 0,
            ts_offset: 0,
            data: p.payload(),
        });
        let mut payload = Vec::new();
        red::write(&blocks, &mut payload);
        packets.push(rtp(RED, i == 0, p.seq(), p.timestamp(), &payload));
    }
    let r = run(config(), &packets);
    let mut got: Vec<char> = r.digits.iter().map(|d| d.0).collect();
    got.sort_unstable();
    assert_eq!(got, ['3', '9'], "{:?}", r.digits);
    let mut primary = Vec::new();
    for (i, b) in r.out.iter().enumerate() {
        let p = Packet::parse(b).unwrap();
        assert_eq!(p.payload_type(), RED);
        let blocks = red::parse(p.payload()).unwrap();
        assert!(blocks.iter().all(|b| b.pt != TE), "event block forwarded");
        if i > 0 {
            // The redundant copy is the masked audio already sent, not the original.
            let redundant = blocks.iter().find(|b| b.ts_offset == 160).unwrap();
            assert_eq!(redundant.data, &primary[(i - 1) * 160..i * 160]);
        }
        primary.extend_from_slice(blocks.last().unwrap().data);
    }
    assert_eq!(inband_digits(&primary), 0);
}

#[test]
fn rebuilt_red_keeps_the_primary_payload_type_to_the_last_packet() {
    // µ-law announced on a dynamic payload type: the masked primary block must keep it in
    // every packet, including those released by the flush at the end.
    const DYNAMIC: AudioType = AudioType { pt: 98, ..PCMU };
    let (plain, _, _) = inband_call("5");
    let packets: Vec<Vec<u8>> = plain
        .iter()
        .map(|p| {
            let p = Packet::parse(p).unwrap();
            let mut payload = Vec::new();
            let blocks = [red::Block {
                pt: DYNAMIC.pt,
                ts_offset: 0,
                data: p.payload(),
            }];
            red::write(&blocks, &mut payload);
            rtp(RED, false, p.seq(), p.timestamp(), &payload)
        })
        .collect();
    let r = run(
        RtpConfig {
            audio: vec![DYNAMIC],
            ..config()
        },
        &packets,
    );
    assert_eq!(r.out.len(), packets.len());
    for b in &r.out {
        let p = Packet::parse(b).unwrap();
        let blocks = red::parse(p.payload()).unwrap();
        assert_eq!(blocks.last().unwrap().pt, DYNAMIC.pt);
    }
    assert_eq!(r.digits, [('5', Source::Inband)]);
    assert_eq!(r.session.stats().unprocessed, 0);
}

#[test]
fn lost_packets_keep_media_time_and_late_ones_are_not_forwarded_unmasked() {
    let (mut packets, _, _) = inband_call("12");
    let late = packets.remove(30);
    packets.insert(33, late);
    packets.remove(5);
    let r = run(config(), &packets);
    assert_eq!(r.digits.iter().map(|d| d.0).collect::<String>(), "12");
    assert_eq!(r.session.stats().late, 1);
    assert_eq!(r.out.len(), packets.len() - 1);
    // Media time is the RTP timestamp: the tones start at 200 and 350 ms despite the loss.
    assert!(r.starts_ms[0].abs_diff(200) <= 2, "{:?}", r.starts_ms);
    assert!(r.starts_ms[1].abs_diff(350) <= 2, "{:?}", r.starts_ms);
}

#[test]
fn the_look_ahead_is_a_packet_delay() {
    let (packets, _, _) = inband_call("1");
    let mut s = RtpSession::new(config()).unwrap();
    let mut out = Datagrams::new();
    for (i, p) in packets.iter().enumerate() {
        s.push(0, p, &mut out).unwrap();
        // 60 ms = three 20 ms packets held back.
        assert_eq!(out.len(), (i + 1).saturating_sub(3));
    }
    s.flush(&mut out).unwrap();
    assert_eq!(out.len(), packets.len());
}

#[test]
fn malformed_packets_are_refused_with_a_reason_and_the_stream_goes_on() {
    let (packets, _, _) = inband_call("7");
    let mut s = RtpSession::new(config()).unwrap();
    let mut out = Datagrams::new();
    let bad: [&[u8]; 6] = [
        &[],
        &[0x80, 0],
        &[0x40; 20],
        &[0x8F, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],
        &[0xA0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9],
        &[0x80, TE, 0, 1, 0, 0, 0, 1, 0x12, 0x34, 0x56, 0x78, 5],
    ];
    for (i, p) in packets.iter().enumerate() {
        s.push(0, p, &mut out).unwrap();
        if let Some(b) = bad.get(i) {
            let e = s.push(0, b, &mut out).unwrap_err();
            assert!(!e.to_string().is_empty());
        }
    }
    s.flush(&mut out).unwrap();
    assert_eq!(s.stats().malformed, 6);
    assert_eq!(out.len(), packets.len());
    assert_eq!(
        s.push(0, &packets[0], &mut out),
        Err(Error::Misuse(Misuse::Finished)),
        "pushing after the flush is the host's mistake, apart from bad input"
    );
    let digits: Vec<char> = std::iter::from_fn(|| s.poll_event())
        .map(|e| e.event.digit.to_char())
        .collect();
    assert_eq!(digits, ['7']);
}

#[test]
fn refuses_configurations_that_cannot_work() {
    let dup = RtpConfig {
        telephone_event: Some(EventType { pt: 0, clock: 8000 }),
        ..config()
    };
    assert!(RtpSession::new(dup).is_err());
    let big = RtpConfig {
        red: Some(200),
        ..config()
    };
    assert!(RtpSession::new(big).is_err());
    let none = RtpConfig {
        audio: vec![],
        ..config()
    };
    assert!(RtpSession::new(none).is_err());
}

#[test]
fn in_tone_mode_events_become_a_neutral_tone_when_the_sender_sends_no_audio() {
    // Only telephone-events (as SIPp's play_dtmf sends them): 6 packets, end x3.
    let start = 8000u32;
    let mut packets = Vec::new();
    let mut seq = 100u16;
    for i in 0..6u16 {
        let end = i == 5;
        for _ in 0..if end { 3 } else { 1 } {
            packets.push(rtp(TE, i == 0, seq, start, &event(7, end, 160 * (i + 1))));
            seq += 1;
        }
    }
    let r = run(with_mode(MaskMode::Tone), &packets);
    assert_eq!(r.digits, [('7', Source::Rfc4733)]);
    // Six audio packets of 20 ms take the events' place; the end repeats are dropped.
    let parsed: Vec<Packet<'_>> = r.out.iter().map(|b| Packet::parse(b).unwrap()).collect();
    assert_eq!(parsed.len(), 6);
    assert!(parsed
        .iter()
        .all(|p| p.payload_type() == 0 && p.payload().len() == 160));
    let ts: Vec<u32> = parsed.iter().map(|p| p.timestamp()).collect();
    assert_eq!(ts, (0..6).map(|i| start + 160 * i).collect::<Vec<_>>());
    assert!(parsed[0].marker());
    assert_eq!(r.session.stats().events_replaced, 6);
    // The agent hears a tone (not silence), and no digit.
    let audio = audio_of(&r.out);
    let pcm = decode(&audio);
    let rms = (pcm.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
    assert!(rms > 500.0, "rms {rms}");
    assert_eq!(inband_digits(&audio), 0);
}

#[test]
fn in_tone_mode_events_alongside_audio_are_dropped() {
    let packets = event_call(5, None);
    let r = run(with_mode(MaskMode::Tone), &packets);
    assert_eq!(r.digits, [('5', Source::Rfc4733)]);
    assert!(r
        .out
        .iter()
        .all(|b| Packet::parse(b).unwrap().payload_type() != TE));
    assert_eq!(r.session.stats().events_replaced, 0);
    assert_eq!(r.session.stats().events_dropped, 8);
}

#[test]
fn wideband_l16_packets_are_masked_in_their_own_codec() {
    const L16_WB: AudioType = AudioType {
        pt: 118,
        codec: Codec::L16,
        rate: 16000,
    };
    let mut b = Vec::new();
    push_silence(&mut b, 16000.0, 200.0);
    let tone_at = b.len();
    push_tone(&mut b, 16000.0, &Tone::new('9', 80.0));
    let tone_end = b.len();
    push_silence(&mut b, 16000.0, 300.0);
    while b.len() % 320 != 0 {
        b.push(0.0);
    }
    let pcm = to_i16(&b);
    let packets: Vec<Vec<u8>> = pcm
        .chunks(320)
        .enumerate()
        .map(|(i, c)| {
            let payload: Vec<u8> = c.iter().flat_map(|s| s.to_be_bytes()).collect();
            rtp(118, i == 0, i as u16, 320 * i as u32, &payload)
        })
        .collect();
    let r = run(RtpConfig::new("wb", L16_WB), &packets);
    assert_eq!(r.digits, [('9', Source::Inband)]);
    assert_eq!(r.out.len(), packets.len());
    let out: Vec<i16> = r
        .out
        .iter()
        .flat_map(|b| {
            Packet::parse(b)
                .unwrap()
                .payload()
                .chunks(2)
                .map(|c| i16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        out[tone_at..tone_end].iter().all(|&v| v == 0),
        "tone leaked"
    );
    assert_eq!(
        out[..tone_at - 64],
        pcm[..tone_at - 64],
        "audio before the tone changed"
    );
}

/// `packet` with its SSRC replaced.
fn with_ssrc(packet: &[u8], ssrc: u32) -> Vec<u8> {
    let mut p = packet.to_vec();
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p
}

/// Pushes every packet, keeping the refusals.
fn push_all(s: &mut RtpSession, packets: &[Vec<u8>], out: &mut Datagrams) -> Vec<RtpError> {
    packets
        .iter()
        .filter_map(|p| match s.push(0, p, out) {
            Err(Error::Packet(e)) => Some(e),
            Err(other) => panic!("not a packet refusal: {other}"),
            Ok(()) => None,
        })
        .collect()
}

fn digits_of(s: &mut RtpSession) -> String {
    std::iter::from_fn(|| s.poll_event())
        .map(|e| e.event.digit.to_char())
        .collect()
}

#[test]
fn audio_on_a_payload_type_nobody_announced_is_dropped_and_counted() {
    let (packets, _, _) = inband_call("4111");
    // The same tones again on static PT 9 and on dynamic PT 100 (160 bytes: no event shape).
    let mut mixed = Vec::new();
    for p in &packets {
        mixed.push(p.clone());
        for pt in [9u8, 100] {
            let mut q = p.clone();
            q[1] = pt;
            mixed.push(q);
        }
    }
    let mut s = RtpSession::new(config()).unwrap();
    let mut out = Datagrams::new();
    let refused = push_all(&mut s, &mixed, &mut out);
    s.flush(&mut out).unwrap();
    assert_eq!(refused.len(), 2 * packets.len());
    assert!(refused
        .iter()
        .all(|e| matches!(e, RtpError::UnknownPayloadType { pt: 9 | 100 })));
    assert_eq!(s.stats().unknown_pt, 2 * packets.len() as u64);
    assert_eq!(s.stats().malformed, 0);
    assert!(out
        .iter()
        .all(|b| Packet::parse(b).unwrap().payload_type() == 0));
    assert_eq!(out.len(), packets.len());
    assert_eq!(inband_digits(&audio_of(&out.to_vecs())), 0);
    assert_eq!(digits_of(&mut s), "4111");
}

#[test]
fn dtmf_events_on_an_unannounced_dynamic_type_are_reported_and_masked() {
    // The call announced no telephone-event type; the sender uses 96 all the same.
    let packets = event_call(11, None);
    let r = run(
        RtpConfig {
            telephone_event: None,
            ..config()
        },
        &packets,
    );
    assert_eq!(r.digits, [('#', Source::Rfc4733)]);
    assert!(r
        .out
        .iter()
        .all(|b| Packet::parse(b).unwrap().payload_type() != TE));
    assert_eq!(r.session.stats().events_dropped, 8);
    assert_eq!(r.session.stats().unknown_pt, 0);
}

#[test]
fn interleaved_packets_of_a_foreign_ssrc_are_dropped_and_the_digits_stay_whole() {
    let (packets, _, _) = inband_call("4111");
    // A third party sends its own copy of the call, tone '4' in every packet, between ours.
    let (theirs, _, _) = inband_call("44444444444444444444444444");
    let mut mixed = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        mixed.push(p.clone());
        mixed.push(with_ssrc(&theirs[i % theirs.len()], 0xBAD));
    }
    let mut s = RtpSession::new(config()).unwrap();
    let mut out = Datagrams::new();
    let refused = push_all(&mut s, &mixed, &mut out);
    s.flush(&mut out).unwrap();
    assert_eq!(refused.len(), packets.len());
    assert!(refused
        .iter()
        .all(|e| *e == RtpError::ForeignSsrc { ssrc: 0xBAD }));
    assert_eq!(s.stats().foreign_ssrc, packets.len() as u64);
    assert_eq!(digits_of(&mut s), "4111");
    assert!(out.iter().all(|b| Packet::parse(b).unwrap().ssrc() == SSRC));
    assert_eq!(inband_digits(&audio_of(&out.to_vecs())), 0);
}

#[test]
fn a_source_that_really_takes_over_is_followed_after_a_run_of_packets() {
    let (first, _, _) = inband_call("1");
    let (second, _, _) = inband_call("2");
    let mut packets = first.clone();
    packets.extend(second.iter().map(|p| with_ssrc(p, 0x5EC0)));
    let mut s = RtpSession::new(config()).unwrap();
    let mut out = Datagrams::new();
    let refused = push_all(&mut s, &packets, &mut out);
    s.flush(&mut out).unwrap();
    // The new source's first packets (its lead-in silence) are dropped, then it is followed.
    assert_eq!(
        refused.len(),
        tonemask_core::rtp::SSRC_SWITCH_PACKETS as usize - 1
    );
    assert_eq!(digits_of(&mut s), "12");
    assert_eq!(inband_digits(&audio_of(&out.to_vecs())), 0);
}

#[test]
fn timestamp_jumps_restart_the_stream_instead_of_adding_hours_and_empty_packets_are_refused() {
    let (packets, _, _) = inband_call("12");
    let mut s = RtpSession::new(config()).unwrap();
    let mut out = Datagrams::new();
    let mut refused = 0;
    for (i, p) in packets.iter().enumerate() {
        let mut p = p.clone();
        if i >= 17 {
            // An RFC 3550 restart between the two digits: the timestamp jumps by hours.
            let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]).wrapping_add(0x4000_0000);
            p[4..8].copy_from_slice(&ts.to_be_bytes());
        }
        s.push(0, &p, &mut out).unwrap();
        // A flood of packets without payload, timestamps all over the place.
        for k in 0..5u32 {
            let ts = (i as u32).wrapping_mul(0x9E37_79B9).wrapping_add(k << 28);
            let empty = rtp(0, false, 1000 + i as u16, ts, &[]);
            assert_eq!(
                s.push(0, &empty, &mut out),
                Err(Error::Packet(RtpError::EmptyAudio))
            );
            refused += 1;
        }
    }
    s.flush(&mut out).unwrap();
    assert_eq!(s.stats().malformed, refused);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    let digits: String = events.iter().map(|e| e.event.digit.to_char()).collect();
    assert_eq!(digits, "12");
    // The second digit lies 150 ms after the first in the call's own time, not hours later.
    let (a, b) = (events[0].event.start_ms, events[1].event.start_ms);
    assert!(b > a && b - a < 1000, "start_ms {a} then {b}");
    assert_eq!(inband_digits(&audio_of(&out.to_vecs())), 0);
}

/// Pushes `packets` 20 ms apart in host time (from host time 0); returns the packets out.
fn push_live(s: &mut RtpSession, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Datagrams::new();
    for (i, p) in packets.iter().enumerate() {
        s.push(20 * i as u64, p, &mut out).unwrap();
    }
    out.to_vecs()
}

/// Calls `handle_timeout` whenever the session asks to be woken, until it asks no more;
/// returns the packets it released and the host time reached. Never flushes.
fn wait_out(s: &mut RtpSession) -> (Vec<Vec<u8>>, u64) {
    let (mut out, mut now) = (Datagrams::new(), 0);
    for _ in 0..100 {
        let Some(t) = s.poll_timeout() else {
            return (out.to_vecs(), now);
        };
        assert!(t > now || now == 0, "woken at {t} after {now}: no progress");
        now = t;
        s.handle_timeout(now, &mut out).unwrap();
    }
    panic!("still asking to be woken after 100 timeouts");
}

#[test]
fn a_press_whose_end_packets_are_lost_completes_on_the_timeout_without_another_packet() {
    // The call stops right after the press's last (non-end) event packet: no end packet,
    // no further audio, no flush — only time passing.
    let mut packets = event_call(7, None);
    let last_event = packets
        .iter()
        .rposition(|b| Packet::parse(b).unwrap().payload_type() == TE && b[13] & 0x80 == 0)
        .unwrap();
    packets.truncate(last_event + 1);
    let mut s = RtpSession::new(config()).unwrap();
    push_live(&mut s, &packets);
    assert!(s.poll_event().is_none(), "reported before its timeout");
    let (_, now) = wait_out(&mut s);
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.digit.to_char(), '7');
    assert_eq!(events[0].event.source, Source::Rfc4733);
    // Reported once the event timeout and the merge window had passed in host time.
    let pushed_until = 20 * last_event as u64;
    assert!(now >= pushed_until + 250, "released at {now}");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn audio_held_for_the_look_ahead_leaves_when_the_sender_goes_quiet() {
    // A tone, then the sender stops (silence suppression): the packets held for the
    // look-ahead leave on the idle timeout, masked, and the digit is reported — all without
    // another packet. When the sender talks again, its audio is inspected afresh.
    let (packets, _, _) = inband_call("5");
    let mut s = RtpSession::new(config()).unwrap();
    let mut out = push_live(&mut s, &packets);
    let held = packets.len() - out.len();
    assert!(held >= 3, "60 ms look-ahead holds 3 packets, held {held}");
    let (released, now) = wait_out(&mut s);
    assert_eq!(released.len(), held);
    out.extend(released);
    assert_eq!(inband_digits(&audio_of(&out)), 0, "tone left unmasked");
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.digit.to_char(), '5');
    // The next talk spurt (same SSRC, later timestamps) carries another tone: masked too.
    let (again, _, _) = inband_call("8");
    let offset = 160 * (packets.len() as u32 + 100);
    let mut more = Vec::new();
    let mut later = Datagrams::new();
    for (i, p) in again.iter().enumerate() {
        let p = Packet::parse(p).unwrap();
        let seq = 1000 + (packets.len() + i) as u16;
        more.push(rtp(0, false, seq, p.timestamp() + offset, p.payload()));
        s.push(now + 20 * i as u64, more.last().unwrap(), &mut later)
            .unwrap();
    }
    s.flush(&mut later).unwrap();
    out.extend(later.to_vecs());
    assert_eq!(out.len(), packets.len() + more.len());
    assert_eq!(inband_digits(&audio_of(&out)), 0, "tone left unmasked");
    let digits: Vec<char> = std::iter::from_fn(|| s.poll_event())
        .map(|e| e.event.digit.to_char())
        .collect();
    assert_eq!(digits, ['8']);
}

#[test]
fn a_network_stall_in_the_middle_of_a_press_reports_it_once() {
    // A 400 ms press; 160 ms into it the network holds the packets back (longer than the idle
    // timeout, so the held audio leaves), then delivers them all at once, timestamps
    // contiguous. One press, masked whole — also when the stall outlasts the merge window.
    let mut b = Vec::new();
    push_silence(&mut b, 8000.0, 200.0);
    push_tone(&mut b, 8000.0, &Tone::new('5', 400.0));
    push_silence(&mut b, 8000.0, 300.0);
    let audio = ulaw(&to_i16(&b));
    let packets: Vec<_> = audio
        .chunks(160)
        .enumerate()
        .map(|(i, c)| rtp(0, i == 0, 1000 + i as u16, 5000 + 160 * i as u32, c))
        .collect();
    let stall_at = 18;
    for stall_ms in [300u64, 1_500] {
        let mut s = RtpSession::new(config()).unwrap();
        let mut out = Datagrams::new();
        for (i, p) in packets[..stall_at].iter().enumerate() {
            s.push(20 * i as u64, p, &mut out).unwrap();
        }
        let mut now = 20 * (stall_at as u64 - 1);
        let resume = now + stall_ms;
        for _ in 0..100 {
            let Some(t) = s.poll_timeout().filter(|&t| t <= resume) else {
                break;
            };
            now = now.max(t);
            s.handle_timeout(now, &mut out).unwrap();
        }
        for (i, p) in packets[stall_at..].iter().enumerate() {
            s.push(resume + i as u64, p, &mut out).unwrap();
        }
        s.flush(&mut out).unwrap();
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        let digits: Vec<char> = events.iter().map(|e| e.event.digit.to_char()).collect();
        assert_eq!(digits, ['5'], "stall of {stall_ms} ms");
        let e = &events[0].event;
        assert!(
            e.start_ms <= 201 && e.end_ms >= 599,
            "stall of {stall_ms} ms: press {}..{} ms",
            e.start_ms,
            e.end_ms
        );
        assert_eq!(out.len(), packets.len());
        assert_eq!(
            inband_digits(&audio_of(&out.to_vecs())),
            0,
            "tone left unmasked"
        );
    }
}

/// Silent PCMU packets with `keys` pressed as RFC 4733 events (120 ms each, 200 ms apart).
fn typed_as_events(keys: &str) -> Vec<Vec<u8>> {
    let silence = [0xFFu8; 160];
    let mut packets = Vec::new();
    let mut seq = 1u16;
    let n = 10 + 16 * keys.len() + 10;
    for i in 0..n {
        let ts = 160 * i as u32;
        packets.push(rtp(0, i == 0, seq, ts, &silence));
        seq += 1;
        let (k, j) = ((i.saturating_sub(10)) / 16, (i.saturating_sub(10)) % 16);
        if i >= 10 && j < 6 && k < keys.len() {
            let code = match keys.as_bytes()[k] {
                b'*' => 10,
                b'#' => 11,
                d => d - b'0',
            };
            let start = 160 * (10 + 16 * k) as u32;
            let end = j == 5;
            for _ in 0..if end { 3 } else { 1 } {
                let dur = (ts + 160 - start) as u16;
                packets.push(rtp(TE, j == 0, seq, start, &event(code, end, dur)));
                seq += 1;
            }
        }
    }
    packets
}

#[test]
fn a_card_typed_as_telephone_events_during_a_capture_leaves_only_sealed() {
    use tonemask_core::card::seal::{keypair, open, Binding, Sealed};
    use tonemask_core::card::{CaptureConfig, CaptureRequest, ProcessorKey, YearMonth};
    let (sk, pk) = keypair(&[3; 32]);
    let mut s = RtpSession::new(config()).unwrap();
    s.capture()
        .start(CaptureRequest {
            id: "pay-rtp".into(),
            config: CaptureConfig::card(YearMonth {
                year: 2026,
                month: 12,
            }),
            processor: ProcessorKey {
                kid: "proc".into(),
                public: pk,
            },
            entropy: [9; 32],
            token_key: None,
        })
        .unwrap();
    let mut out = Datagrams::new();
    // A Mastercard number (16 digits end the field), expiry and code: each field ends itself.
    for p in typed_as_events("555555555555444412301234") {
        s.push(0, &p, &mut out).unwrap();
    }
    s.flush(&mut out).unwrap();
    // "1234" is one digit too many for a Mastercard code: the field ended at three, and the
    // fourth press came after the capture — the only digit event.
    let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.digit.to_char(), '4');
    assert_eq!(events[0].event.source, Source::Rfc4733);
    let records: Vec<_> = std::iter::from_fn(|| s.poll_capture()).collect();
    assert_eq!(records[0].record.event(), "started");
    let done = &records.last().unwrap().record;
    assert_eq!(done.event(), "completed", "{records:?}");
    assert_eq!(events[0].event.seq, done.seq + 1, "one numbering");
    assert_eq!(done.text("brand"), Some("mastercard"));
    let sealed = Sealed {
        enc: hex::decode(done.text("enc").unwrap()).unwrap(),
        ciphertext: hex::decode(done.text("sealed").unwrap()).unwrap(),
    };
    let binding = Binding {
        call_id: "call-rtp".into(),
        capture_id: "pay-rtp".into(),
        kid: "proc".into(),
    };
    assert_eq!(
        &open(&sealed, &sk, &binding).unwrap()[..],
        b"5555555555554444;1230;123"
    );
}

#[test]
fn a_renegotiation_to_another_codec_is_followed_without_losing_a_press() {
    const PCMA: AudioType = AudioType {
        pt: 8,
        codec: Codec::Pcma,
        rate: 8000,
    };
    let (packets, _, windows) = inband_call("4111");
    // The re-INVITE lands in the silence after the second press: from then on PCMA.
    let switch = windows[1].1 / 160 + 1;
    assert!((switch + 1) * 160 < windows[2].0);
    let as_pcma = |p: &Vec<u8>| {
        let q = Packet::parse(p).unwrap();
        let alaw: Vec<u8> = decode(q.payload())
            .iter()
            .map(|&s| tonemask_core::g711::linear_to_alaw(s))
            .collect();
        let mut r = p[..12].to_vec();
        r[1] = (r[1] & 0x80) | 8;
        r.extend_from_slice(&alaw);
        r
    };
    let mut s = RtpSession::new(config()).unwrap();
    let mut out = Datagrams::new();
    assert!(push_all(&mut s, &packets[..switch], &mut out).is_empty());
    // A change that would move the clocks is refused, and the types stay as they were.
    let wide = AudioType {
        pt: 97,
        codec: Codec::L16,
        rate: 16_000,
    };
    assert!(s.change_payload_types(vec![wide], None, None).is_err());
    assert!(s.change_payload_types(vec![], None, None).is_err());
    let still = push_all(&mut s, &packets[switch..=switch], &mut out);
    assert!(
        still.is_empty(),
        "PCMU refused after a refused change: {still:?}"
    );
    s.change_payload_types(vec![PCMA], config().telephone_event, None)
        .unwrap();
    let after: Vec<Vec<u8>> = packets[switch + 1..].iter().map(as_pcma).collect();
    assert!(push_all(&mut s, &after, &mut out).is_empty());
    // The old type is now unknown: refused.
    let refused = push_all(&mut s, &packets[..1], &mut out);
    assert!(matches!(
        refused[..],
        [RtpError::UnknownPayloadType { pt: 0 }]
    ));
    s.flush(&mut out).unwrap();
    assert_eq!(digits_of(&mut s), "4111");
    // What left: PCMU up to the switch, PCMA after it, and no tone in either.
    let linear: Vec<i16> = out
        .iter()
        .map(|b| Packet::parse(b).unwrap())
        .flat_map(|p| match p.payload_type() {
            0 => decode(p.payload()),
            8 => p
                .payload()
                .iter()
                .map(|&b| tonemask_core::g711::alaw_to_linear(b))
                .collect(),
            other => panic!("payload type {other} left the session"),
        })
        .collect();
    assert_eq!(linear.len(), packets.len() * 160);
    let found = detect_all(8000, &DetectorConfig::default(), &linear);
    assert!(
        !found.iter().any(|t| matches!(t, Transition::Ended { .. })),
        "a tone left the session"
    );
}

/// A packet out, as a host sees it: the step it left at, the deadline that released it (none:
/// the step's packet did), its bytes.
type Left = (usize, Option<u64>, Vec<u8>);

/// The steps one at a time, as a host that handles every deadline due before a packet
/// (each at its own time) and then pushes it: what left, which steps were refused, events.
fn one_at_a_time(steps: &[(u64, Option<Vec<u8>>)]) -> (Vec<Left>, Vec<usize>, Vec<String>) {
    let mut s = RtpSession::new(config()).unwrap();
    let (mut left, mut refused) = (Vec::new(), Vec::new());
    for (i, (now, packet)) in steps.iter().enumerate() {
        while let Some(due) = s.poll_timeout().filter(|t| t <= now) {
            let mut out = Datagrams::new();
            s.handle_timeout(due, &mut out).unwrap();
            left.extend(out.iter().map(|p| (i, Some(due), p.to_vec())));
            if s.poll_timeout() == Some(due) {
                break;
            }
        }
        if let Some(p) = packet {
            let mut out = Datagrams::new();
            match s.push(*now, p, &mut out) {
                Ok(()) => left.extend(out.iter().map(|p| (i, None, p.to_vec()))),
                Err(_) => refused.push(i),
            }
        }
    }
    let events = std::iter::from_fn(|| s.poll_event())
        .map(|e| format!("{:?}", e.event))
        .collect();
    (left, refused, events)
}

/// The same steps through `advance`, `chunk` at a time (again after a refusal).
fn batched(steps: &[(u64, Option<Vec<u8>>)], chunk: usize) -> (Vec<Left>, Vec<usize>, Vec<String>) {
    let mut s = RtpSession::new(config()).unwrap();
    let (mut left, mut refused) = (Vec::new(), Vec::new());
    let mut at = 0;
    while at < steps.len() {
        let end = (at + chunk).min(steps.len());
        let mut batch = tonemask_core::rtp::Batch::new();
        let taken = s.advance(
            steps[at..end].iter().map(|(t, p)| (*t, p.as_deref())),
            &mut batch,
        );
        assert!(taken.steps >= 1 && at + taken.steps <= end);
        assert_eq!(batch.counts.len(), taken.steps);
        let counted: u32 = batch.counts.iter().flatten().sum();
        assert_eq!(counted as usize, batch.out.len());
        let timed: u32 = batch.counts.iter().map(|c| c[0]).sum();
        assert_eq!(timed as usize, batch.dues.len());
        left.extend(batch.iter().map(|(k, due, p)| (at + k, due, p.to_vec())));
        if let Some(e) = taken.refused {
            assert!(matches!(e, Error::Packet(_)), "{e}");
            refused.push(at + taken.steps - 1);
        }
        at += taken.steps;
    }
    let events = std::iter::from_fn(|| s.poll_event())
        .map(|e| format!("{:?}", e.event))
        .collect();
    (left, refused, events)
}

#[test]
fn steps_in_batches_give_what_the_same_steps_one_at_a_time_give() {
    // Tones, telephone-events whose end packets are lost, malformed packets, a sender that
    // goes quiet (the look-ahead leaves on the idle deadline), steps with no packet, host
    // time that jitters and once runs backwards.
    let (tones, _, _) = inband_call("4711");
    let mut events = event_call(3, None);
    let last_event = events
        .iter()
        .rposition(|b| Packet::parse(b).unwrap().payload_type() == TE && b[13] & 0x80 == 0)
        .unwrap();
    events.truncate(last_event + 1); // no end packet, and no packet after
    let mut steps: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
    let mut now = 1_000u64;
    let mut jitter = 7u64;
    for (i, p) in tones.iter().enumerate() {
        jitter = (jitter * 31 + 3) % 17;
        now += 12 + jitter;
        steps.push((now, Some(p.clone())));
        if i % 9 == 4 {
            steps.push((now + 3, Some(vec![0x80, 0, 1]))); // too short: refused
        }
        if i % 7 == 2 {
            steps.push((now + 5, None));
        }
    }
    now += 2_000; // quiet: the held audio leaves on the idle deadline
    steps.push((now, None));
    let base = now;
    for (i, p) in events.iter().enumerate() {
        let mut p = p.clone();
        p[8..12].copy_from_slice(&0x0BAD_F00Du32.to_be_bytes()); // a new source, at once
        steps.push((base + 20 * i as u64, Some(p)));
    }
    steps.push((base - 500, None)); // the host's clock stepped back
    now = base + 20 * events.len() as u64;
    // The lost end packets: the press completes on its deadline, the held audio leaves on
    // its own — several deadlines due within one step.
    steps.push((now + 5_000, None));
    let reference = one_at_a_time(&steps);
    assert!(
        reference.0.iter().any(|(_, due, _)| due.is_some()),
        "no deadline released"
    );
    assert!(
        !reference.1.is_empty() && reference.2.len() >= 4,
        "{:?}",
        reference.2
    );
    for chunk in [1, 2, 3, 7, 64, steps.len()] {
        assert_eq!(batched(&steps, chunk), reference, "batches of {chunk}");
    }
}

#[test]
fn flat_steps_are_read_and_anything_else_is_refused() {
    let step = |t: u64, p: &[u8]| {
        let mut b = t.to_le_bytes().to_vec();
        b.extend_from_slice(&(p.len() as u32).to_le_bytes());
        b.extend_from_slice(p);
        b
    };
    let bytes = [step(1, &[7; 4]), step(2, &[]), step(3, &[9; 6])].concat();
    type Steps = Vec<(u64, Option<Vec<u8>>)>;
    let read = |b: &[u8]| -> Result<Steps, Error> {
        tonemask_core::rtp::steps(b).map(|s| s.map(|(t, p)| (t, p.map(<[u8]>::to_vec))).collect())
    };
    assert_eq!(
        read(&bytes).unwrap(),
        vec![(1, Some(vec![7; 4])), (2, None), (3, Some(vec![9; 6]))]
    );
    assert_eq!(read(&[]).unwrap(), vec![]);
    // Cut anywhere inside a step, or a length past the end: refused, nothing taken.
    for cut in 1..bytes.len() {
        let whole = [16, 28].contains(&cut);
        assert_eq!(read(&bytes[..cut]).is_ok(), whole, "cut at {cut}");
        if !whole {
            assert!(matches!(
                read(&bytes[..cut]),
                Err(Error::Misuse(Misuse::BadBatch))
            ));
        }
    }
    let mut long = step(5, &[1; 3]);
    long[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(read(&long).is_err());
}
