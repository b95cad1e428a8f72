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

fn detect(name: &str) -> (Vec<Value>, String) {
    let o = tonemask(&["detect", captures().join(name).to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
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
    assert!(stdout(&o).contains("4 passed, 0 failed"), "{}", stdout(&o));
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
        let o = tonemask(&[
            "mask",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
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
