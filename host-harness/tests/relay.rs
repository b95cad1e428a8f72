//! `tonemask relay` end to end on loopback, with real SIP peers: two SIPp instances (Debian
//! sip-tester) place a call whose SDP points both media legs at the relay. The caller sends
//! speech and a test card number — as PCMU tones, or as RFC 4733 telephone-events — the
//! agent talks back. The agent's media address is this test's socket, which records what the
//! agent would receive: no DTMF, in-band or as events, while the speech arrives intact.

mod common;

use common::media::*;
use common::*;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonemask_harness::wav::Wav;

struct Ports {
    sip_caller: u16,
    sip_agent: u16,
    media_caller: u16,
    media_agent: u16,
    relay_caller_side: u16,
    relay_agent_side: u16,
}

struct CallResult {
    /// Packets that reached the agent, in arrival order.
    packets: Vec<Vec<u8>>,
    /// Bodies the relay POSTed to the event collector.
    posted: Vec<String>,
    relay_stderr: String,
    events: std::path::PathBuf,
    key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Places one call through the relay. `media` is the caller's SIPp media action; `files`
/// are written beside the scenarios (e.g. a capture for `play_pcap_audio`).
fn call(
    p: &Ports,
    caller_wav: &Wav,
    agent_wav: &Wav,
    media: &str,
    hold_ms: u32,
    files: &[(&str, Vec<u8>)],
) -> CallResult {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // SIPp 3.6 streams the file's bytes as they are (a WAV header would go out as audio).
    std::fs::write(d.join("caller.wav"), &caller_wav.data).unwrap();
    std::fs::write(d.join("agent.wav"), &agent_wav.data).unwrap();
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    // No SDP rewriting here: each side announces the relay's port for the other.
    write_scenarios(d, media, hold_ms, p.relay_agent_side, p.relay_caller_side);
    let key = key_file(d, "relay", 42);
    let events = d.join("events.jsonl");
    // Digits sealed to a processor key (how a deployment runs); `verified_digits` opens them.
    let digit_key = processor_key(d);

    // The agent's media socket: records what the agent receives.
    let recorder = record(UdpSocket::bind(("127.0.0.1", p.media_agent)).unwrap());

    // A local event collector: answers 204 and keeps each POST body.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let collector = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(60) {
            let Ok((mut c, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            c.set_nonblocking(false).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut c, &mut buf) {
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if req.len() >= i + 4 + len {
                        bodies.push(text[i + 4..i + 4 + len].to_string());
                        break;
                    }
                }
            }
            let _ = std::io::Write::write_all(&mut c, b"HTTP/1.1 204 No Content\r\n\r\n");
            // The end-of-call record is the last line a relay session sends.
            if bodies.last().is_some_and(|b| b.contains("\"end_of_call\"")) {
                break;
            }
        }
        bodies
    });

    let mut relay = Command::new(env!("CARGO_BIN_EXE_tonemask"))
        .arg("--plugin")
        .arg(plugin_path())
        .args(["relay", "--caller-bind"])
        .arg(format!("127.0.0.1:{}", p.relay_caller_side))
        .arg("--agent-bind")
        .arg(format!("127.0.0.1:{}", p.relay_agent_side))
        .arg("--agent")
        .arg(format!("127.0.0.1:{}", p.media_agent))
        .arg("--key")
        .arg(&key)
        .arg("--events")
        .arg(&events)
        .arg("--events-url")
        .arg(&url)
        .args(["--event-pt", "96", "--idle-s", "2", "--max-s", "90"])
        .args(["--digits", "sealed", "--digit-key"])
        .arg(&digit_key)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready once it announces its plan (its sockets are bound then).
    let mut relay_err = std::io::BufReader::new(relay.stderr.take().unwrap());
    let mut relay_stderr = String::new();
    while !relay_stderr.contains("tonemask relay: caller →") {
        let n = std::io::BufRead::read_line(&mut relay_err, &mut relay_stderr).unwrap();
        assert!(n > 0, "the relay ended before it was ready: {relay_stderr}");
    }

    let mut agent = sipp_agent(d, p.sip_agent, p.media_agent + 4);
    std::thread::sleep(Duration::from_millis(500));
    let mut caller = sipp_caller(d, p.sip_agent, p.sip_caller, p.media_caller);
    let cs = wait(&mut caller, Duration::from_secs(90), "the SIPp caller");
    let as_ = wait(&mut agent, Duration::from_secs(30), "the SIPp agent");
    let rs = wait(&mut relay, Duration::from_secs(30), "the relay");
    std::io::Read::read_to_string(&mut relay_err, &mut relay_stderr).unwrap();
    let packets = recorder.join().unwrap();
    let posted = collector.join().unwrap();
    let log = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    assert!(cs.success(), "SIPp caller failed:\n{}", log("caller.log"));
    assert!(as_.success(), "SIPp agent failed:\n{}", log("agent.log"));
    assert_eq!(rs.code(), Some(0), "relay:\n{relay_stderr}");
    CallResult {
        packets,
        posted,
        relay_stderr,
        events: events.clone(),
        key,
        _dir: dir,
    }
}

#[test]
fn relay_masks_inband_card_tones_between_real_sip_peers() {
    let speech = ulaw_slice("speech_then_card_ulaw.wav", 2.0, 5.0);
    let mut caller = speech.clone();
    caller.extend(ulaw_slice("card_visa_-3dbm0_ulaw.wav", 0.0, 10.0));
    let agent = ulaw_slice("speech_then_card_ulaw.wav", 6.0, 9.0);
    let ports = Ports {
        sip_caller: 15160,
        sip_agent: 15170,
        media_caller: 16100,
        media_agent: 16140,
        relay_caller_side: 16120,
        relay_agent_side: 16130,
    };
    let r = call(
        &ports,
        &ulaw_wav(caller.clone()),
        &ulaw_wav(agent),
        r#"<exec rtp_stream="caller.wav,1,0"/>"#,
        (caller.len() / 8 + 500) as u32,
        &[],
    );
    // Every packet arrived; the speech is intact; no digit can be recovered.
    check_agent_side(
        &r.packets,
        &speech,
        Some(caller.len() / 160 * 160),
        (&r.events, &r.key),
        "4111111111111111",
        &r.relay_stderr,
    );
    // Each signed line also went to the HTTP collector, byte for byte.
    let lines: Vec<String> = std::fs::read_to_string(&r.events)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(r.posted, lines);
    // The agent's speech went back through the relay, and held no digit.
    assert!(!r.relay_stderr.contains("SECURITY"), "{}", r.relay_stderr);
    assert!(
        r.relay_stderr.contains("agent→caller 1") || r.relay_stderr.contains("agent→caller 2"),
        "{}",
        r.relay_stderr
    );
}

#[test]
fn relay_drops_rfc4733_events_between_real_sip_peers() {
    let speech = ulaw_slice("speech_then_card_ulaw.wav", 2.0, 9.0);
    let agent = ulaw_slice("speech_then_card_ulaw.wav", 9.0, 12.0);
    let ports = Ports {
        sip_caller: 15260,
        sip_agent: 15270,
        media_caller: 16200,
        media_agent: 16240,
        relay_caller_side: 16220,
        relay_agent_side: 16230,
    };
    let r = call(
        &ports,
        &ulaw_wav(speech.clone()),
        &ulaw_wav(agent),
        r#"<exec play_pcap_audio="caller.pcap"/>"#,
        (speech.len() / 8 + 500) as u32,
        &[(
            "caller.pcap",
            speech_and_events(&speech, "5454545454545454"),
        )],
    );
    assert!(
        r.relay_stderr.contains("128 event packet(s) dropped"),
        "{}",
        r.relay_stderr
    );
    check_agent_side(
        &r.packets,
        &speech,
        None,
        (&r.events, &r.key),
        "5454545454545454",
        &r.relay_stderr,
    );
}
