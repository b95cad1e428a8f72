//! Packet captures through the CLI: SIP calls recorded with SIPp and tshark
//! (`testdata/captures/make.sh`), in-band and RFC 4733, replayed, detected and masked.

mod common;

use common::*;
use serde_json::Value;
use tonemask_core::rtp::packet::Packet;
use tonemask_harness::capture::Capture;

fn captures() -> std::path::PathBuf {
    root().join("testdata/captures")
}

/// The exit status `detect` and `mask` give a capture: 3 for the one where the agent injects
/// tones, 4 where packets that may carry audio are dropped (the RFC 4733 capture's filler on
/// an unannounced payload type), else 0.
fn status_of(name: &str) -> i32 {
    if name.contains("agent_injects") {
        3
    } else if name.contains("rfc4733") && !name.contains("masked") {
        4
    } else {
        0
    }
}

fn detect(name: &str) -> (Vec<Value>, String) {
    let o = tonemask(&["detect", captures().join(name).to_str().unwrap()]);
    let file = std::path::Path::new(name)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(o.status.code(), Some(status_of(file)), "{}", stderr(&o));
    let events = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (events, stderr(&o))
}

fn digits(events: &[Value], direction: &str) -> String {
    events
        .iter()
        .filter(|e| e["direction"] == direction)
        .map(|e| e["digit"].as_str().unwrap().to_string())
        .collect()
}

/// RTP packets from `src_port` in a capture file: (payload type, payload).
fn rtp_from(path: &std::path::Path, src_port: u16) -> Vec<(u8, Vec<u8>)> {
    let cap = Capture::parse(&std::fs::read(path).unwrap()).unwrap();
    cap.frames
        .iter()
        .filter_map(|f| {
            let d = f.datagram()?;
            (d.src.port() == src_port).then(|| {
                let p = Packet::parse(d.payload).unwrap();
                (p.payload_type(), p.payload().to_vec())
            })
        })
        .collect()
}

#[test]
fn replay_passes_every_recorded_sip_call() {
    let dir = tempfile::tempdir().unwrap();
    let o = tonemask(&[
        "replay",
        captures().to_str().unwrap(),
        "--report-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("6 passed, 0 failed"), "{}", stdout(&o));
}

#[test]
fn detect_reports_inband_and_rfc4733_digits_once_with_their_source() {
    let (e, _) = detect("inband_visa_ipv4.pcapng");
    assert_eq!(digits(&e, "caller→agent"), "4111111111111111");
    assert!(e.iter().all(|e| e["source"] == "inband"));
    let (e, _) = detect("rfc4733_mastercard_any.pcap");
    assert_eq!(digits(&e, "caller→agent"), "5454545454545454");
    assert!(e.iter().all(|e| e["source"] == "rfc4733"));
    let (e, _) = detect("inband_speech_card_ipv6.pcap");
    assert_eq!(digits(&e, "caller→agent"), "5105105105105100");
    assert_eq!(e[0]["src"], "[::1]:6000");
}

#[test]
fn digits_towards_the_caller_are_flagged_as_a_security_signal() {
    let (e, err) = detect("agent_injects_tones_ipv4.pcap");
    assert_eq!(digits(&e, "caller→agent"), "");
    assert_eq!(digits(&e, "agent→caller"), "4111111111111111");
    assert!(err.contains("SECURITY"), "{err}");
}

#[test]
fn mask_writes_a_capture_without_tones_or_events_and_signed_events() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k1", 7);
    for (name, events_in) in [
        ("rfc4733_mastercard_any.pcap", true),
        ("inband_visa_ipv4.pcapng", false),
    ] {
        let input = captures().join(name);
        let out = dir.path().join(format!("{name}.masked.pcap"));
        mask_status(&input, &out, &key, &[], status_of(name));
        // Caller → agent (port 6000 → 6010): no telephone-event packet is left, the audio
        // packets are all still there, and the agent's direction is untouched.
        let before = rtp_from(&input, 6000);
        let after = rtp_from(&out, 6000);
        assert_eq!(before.iter().any(|p| p.0 == 96), events_in);
        assert!(after.iter().all(|p| p.0 != 96), "{name}: event forwarded");
        assert_eq!(
            before.iter().filter(|p| p.0 == 0).count(),
            after.iter().filter(|p| p.0 == 0).count()
        );
        assert_eq!(rtp_from(&input, 6010), rtp_from(&out, 6010));
        // Nothing left to find, and 16 signed events that verify.
        let (again, _) = detect(out.to_str().unwrap());
        assert_eq!(digits(&again, "caller→agent"), "", "{name}");
        let v = tonemask(&[
            "verify",
            out.with_extension("events.jsonl").to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        assert!(
            stdout(&v).contains("16 accepted, 0 rejected, 0 gap(s)"),
            "{}",
            stdout(&v)
        );
    }
}

#[test]
fn broken_captures_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read(captures().join("inband_visa_ipv4.pcapng")).unwrap();
    // A capture cut in the middle of a block still replays what it holds.
    let cut = dir.path().join("cut.pcapng");
    std::fs::write(&cut, &src[..src.len() / 2]).unwrap();
    let o = tonemask(&["detect", cut.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ends inside a record"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).lines().count() >= 4, "{}", stdout(&o));
    // A pcap magic number and a cut-off header is refused with a one-line reason.
    let bad = dir.path().join("bad.pcap");
    let mut b = vec![0xD4, 0xC3, 0xB2, 0xA1];
    b.extend_from_slice(&[0xFF; 10]);
    std::fs::write(&bad, &b).unwrap();
    let o = tonemask(&["detect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.pcap"), "{}", stderr(&o));
}

/// A recorded call rewritten so the caller sends RFC 2198 RED: every packet carries the
/// previous one's payload as a redundant block (its timestamp offset the difference of the two
/// packets' timestamps) and its own as primary, and the SDP announces `red` as PT 121.
fn as_red(name: &str) -> Vec<u8> {
    use tonemask_core::rtp::red::{write, Block};
    let cap = Capture::parse(&std::fs::read(captures().join(name)).unwrap()).unwrap();
    let mut prev: Option<(u8, u32, Vec<u8>)> = None;
    let mut frames = Vec::new();
    for f in &cap.frames {
        let Some(d) = f.datagram() else {
            frames.push(f.clone());
            continue;
        };
        if let Ok(text) = std::str::from_utf8(d.payload) {
            if text.contains("m=audio") {
                let sdp = text
                    .replace("RTP/AVP 0 96", "RTP/AVP 0 96 121")
                    .replace("a=ptime:20", "a=rtpmap:121 red/8000\r\na=ptime:20");
                // Keep Content-Length true: the body grew by the added text.
                let grown = sdp.len() - text.len();
                let body = sdp.split("\r\n\r\n").nth(1).unwrap().len();
                let sdp = sdp.replace(
                    &format!("Content-Length: {}", body - grown),
                    &format!("Content-Length: {body}"),
                );
                frames.push(f.with_payload(&d, sdp.as_bytes()));
                continue;
            }
        }
        let p = Packet::parse(d.payload);
        match p {
            Ok(p) if d.src.port() == 6000 && [0, 96].contains(&p.payload_type()) => {
                let mut blocks = Vec::new();
                if let Some((pt, ts, data)) = &prev {
                    blocks.push(Block {
                        pt: *pt,
                        ts_offset: p.timestamp().wrapping_sub(*ts) as u16,
                        data,
                    });
                }
                blocks.push(Block {
                    pt: p.payload_type(),
                    ts_offset: 0,
                    data: p.payload(),
                });
                let mut payload = p.header().to_vec();
                payload[1] = (payload[1] & 0x80) | 121;
                write(&blocks, &mut payload);
                frames.push(f.with_payload(&d, &payload));
                prev = Some((p.payload_type(), p.timestamp(), p.payload().to_vec()));
            }
            _ => frames.push(f.clone()),
        }
    }
    tonemask_harness::capture::write_pcap(&frames).unwrap()
}

/// A RED packet: primary PT, primary data, redundant blocks (PT, data).
type RedPacket = (u8, Vec<u8>, Vec<(u8, Vec<u8>)>);

/// Caller RED packets of a capture.
fn red_packets(path: &std::path::Path) -> Vec<RedPacket> {
    let cap = Capture::parse(&std::fs::read(path).unwrap()).unwrap();
    cap.frames
        .iter()
        .filter_map(|f| {
            let d = f.datagram()?;
            let p = Packet::parse(d.payload).ok()?;
            (d.src.port() == 6000 && p.payload_type() == 121).then(|| {
                let blocks = tonemask_core::rtp::red::parse(p.payload()).unwrap();
                let (primary, redundant) = blocks.split_last().unwrap();
                (
                    primary.pt,
                    primary.data.to_vec(),
                    redundant.iter().map(|b| (b.pt, b.data.to_vec())).collect(),
                )
            })
        })
        .collect()
}

#[test]
fn tones_and_events_inside_red_are_found_once_and_masked() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k1", 9);
    for (name, card) in [
        ("inband_visa_ipv4.pcapng", "4111111111111111"),
        ("rfc4733_mastercard_any.pcap", "5454545454545454"),
    ] {
        let red = dir.path().join(format!("{name}.red.pcap"));
        std::fs::write(&red, as_red(name)).unwrap();
        assert!(!red_packets(&red).is_empty());
        let (e, _) = detect(red.to_str().unwrap());
        assert_eq!(digits(&e, "caller→agent"), card, "{name}: each press once");
        let out = dir.path().join(format!("{name}.masked.pcap"));
        mask_status(&red, &out, &key, &[], status_of(name));
        let masked = red_packets(&out);
        let mut primaries: Vec<u8> = Vec::new();
        for (pt, primary, redundant) in &masked {
            assert_ne!(*pt, 96, "{name}: event as RED primary forwarded");
            assert!(
                redundant.iter().all(|b| b.0 != 96),
                "{name}: event block forwarded"
            );
            // A redundant copy is the masked audio already sent, never the original.
            for (_, data) in redundant {
                assert!(
                    primaries.ends_with(data),
                    "{name}: redundant block is not what was sent"
                );
            }
            primaries.extend_from_slice(primary);
        }
        let (again, _) = detect(out.to_str().unwrap());
        assert_eq!(digits(&again, "caller→agent"), "", "{name}");
    }
}

/// Capture time of each caller RTP packet, by sequence number.
fn caller_times(path: &std::path::Path) -> std::collections::HashMap<u16, std::time::Duration> {
    let cap = Capture::parse(&std::fs::read(path).unwrap()).unwrap();
    cap.frames
        .iter()
        .filter_map(|f| {
            let d = f.datagram()?;
            let p = Packet::parse(d.payload).ok()?;
            (d.src.port() == 6000).then(|| (p.seq(), f.ts))
        })
        .collect()
}

#[test]
fn held_audio_leaves_on_time_when_the_caller_goes_quiet() {
    // The caller stops sending for two seconds in the middle of the call (silence
    // suppression), then goes on. The packets held for the 60 ms look-ahead leave when the
    // stream has been idle for the look-ahead + 100 ms — as a live relay's timer would send
    // them — not two seconds later with the next packet; and every card digit is still found.
    let cap = Capture::parse(&std::fs::read(captures().join("inband_visa_ipv4.pcapng")).unwrap())
        .unwrap();
    let caller: Vec<usize> = (0..cap.frames.len())
        .filter(|&i| {
            cap.frames[i]
                .datagram()
                .is_some_and(|d| d.src.port() == 6000 && Packet::parse(d.payload).is_ok())
        })
        .collect();
    // Quiet after the first 10 caller packets (200 ms of silence before the first digit).
    let quiet_from = cap.frames[caller[10]].ts;
    let pause = std::time::Duration::from_secs(2);
    let frames: Vec<_> = cap
        .frames
        .iter()
        .map(|f| {
            let mut f = f.clone();
            if f.ts >= quiet_from {
                f.ts += pause;
            }
            f
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("quiet.pcap");
    std::fs::write(
        &input,
        tonemask_harness::capture::write_pcap(&frames).unwrap(),
    )
    .unwrap();
    let key = key_file(dir.path(), "k1", 3);
    let out = dir.path().join("quiet.masked.pcap");
    mask_ok(&input, &out, &key, &[]);
    let (sent, got) = (caller_times(&input), caller_times(&out));
    assert_eq!(got.len(), sent.len(), "every caller packet forwarded");
    // A held packet arrived at most a look-ahead before the last one; the stream is idle
    // a look-ahead + 100 ms after the last one.
    let held = std::time::Duration::from_millis(60 + 60 + 100);
    let late: Vec<_> = got
        .iter()
        .filter(|(seq, t)| **t > sent[seq] + held)
        .map(|(seq, t)| (seq, (*t - sent[seq]).as_millis()))
        .collect();
    assert!(
        late.is_empty(),
        "held past the idle timeout (seq, ms): {late:?}"
    );
    let o = tonemask(&["detect", input.to_str().unwrap()]);
    let e: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(digits(&e, "caller→agent"), "4111111111111111");
}

/// The fraud signal: the agent's side plays card tones towards the caller while the caller's
/// card capture runs. Each key the agent's leg carries becomes a signed `agent-dtmf` record
/// of the capture on the caller's leg; the records verify whole.
#[test]
fn agent_tones_during_a_capture_are_signed_security_records() {
    use tonemask_harness::keys::KeyRing;
    use tonemask_harness::packets::{run_capture, CaptureOptions};
    use tonemask_harness::plugin::{CaptureField, CaptureRequest, Limits, Plugin};
    use tonemask_harness::run::CapturePlan;
    let plugin = Plugin::load(&plugin_path(), Limits::default()).unwrap();
    let bytes = std::fs::read(captures().join("agent_injects_tones_ipv4.pcap")).unwrap();
    let cap = Capture::parse(&bytes).unwrap();
    let (_, public) = tonemask_core::card::seal::keypair(&[7; 32]);
    let request = CaptureRequest {
        id: "pay-9".into(),
        fields: vec![CaptureField::CardNumber],
        end_key: '#',
        clear_key: '*',
        field_timeout_ms: 60_000,
        max_attempts: 3,
        year: 2026,
        month: 12,
        processor_kid: "proc-1".into(),
        processor_key: public.to_vec(),
        entropy: vec![0x5A; 32],
        token_key: None,
    };
    let opts = CaptureOptions {
        capture: Some(CapturePlan { at_ms: 0, request }),
        ..CaptureOptions::default()
    };
    let keys = KeyRing::ephemeral().unwrap();
    let out = run_capture(&plugin, &cap, &opts, Some(&keys)).unwrap();
    assert_eq!(out.agent_digits(), "4111111111111111");
    let caller = out.streams.iter().find(|s| s.direction.masked()).unwrap();
    let names: Vec<&str> = caller
        .captures
        .iter()
        .filter_map(|(_, c)| tonemask_harness::card::event_name(c))
        .collect();
    let alerts = names.iter().filter(|n| **n == "agent-dtmf").count();
    assert_eq!(alerts, 16, "{names:?}");
    assert_eq!(names.first(), Some(&"started"));
    assert_eq!(
        names.last(),
        Some(&"cancelled"),
        "the call's end cancels it"
    );
    let report = tonemask_harness::verify::verify_lines(&keys, &caller.signed_lines());
    assert!(report.whole());
}
