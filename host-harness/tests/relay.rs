//! `tonemask relay` end to end on loopback, with real SIP peers: two SIPp instances (Debian
//! sip-tester) place a call whose SDP points both media legs at the relay. The caller sends
//! speech and a test card number — as PCMU tones, or as RFC 4733 telephone-events — the
//! agent talks back. The agent's media address is this test's socket, which records what the
//! agent would receive: no DTMF, in-band or as events, while the speech arrives intact.

mod common;

use common::*;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonemask_core::rtp::packet::Packet;
use tonemask_harness::plugin::{default_settings, CallSettings, Limits, MaskMode, Plugin};
use tonemask_harness::run::{run, Options};
use tonemask_harness::wav::{Format, Wav};

/// 8 kHz µ-law sample data of a test call, from `from` to `to` seconds.
fn ulaw_slice(name: &str, from: f64, to: f64) -> Vec<u8> {
    let w = Wav::parse(&std::fs::read(calls().join(name)).unwrap()).unwrap();
    assert_eq!(w.format, Format::Ulaw);
    let end = ((to * 8000.0) as usize).min(w.data.len());
    w.data[(from * 8000.0) as usize..end].to_vec()
}

fn ulaw_wav(data: Vec<u8>) -> Wav {
    Wav {
        format: Format::Ulaw,
        sample_rate: 8000,
        data,
    }
}

fn wait(child: &mut Child, deadline: Duration, what: &str) -> std::process::ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t0.elapsed() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

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
    let sipp = Command::new("sipp").arg("-v").output();
    assert!(
        sipp.is_ok(),
        "sipp is not installed (apt-get install sip-tester; scripts/setup.sh --test does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // SIPp 3.6 streams the file's bytes as they are (a WAV header would go out as audio).
    std::fs::write(d.join("caller.wav"), &caller_wav.data).unwrap();
    std::fs::write(d.join("agent.wav"), &agent_wav.data).unwrap();
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    let scenarios = root().join("testdata/captures/sipp");
    let caller_xml = std::fs::read_to_string(scenarios.join("caller.xml"))
        .unwrap()
        .replace("<exec MEDIA/>", media)
        .replace("HOLD", &hold_ms.to_string())
        .replace(
            "m=audio [media_port]",
            &format!("m=audio {}", p.relay_agent_side),
        );
    let agent_xml = std::fs::read_to_string(scenarios.join("agent.xml"))
        .unwrap()
        .replace("AGENT_WAV", "agent.wav")
        .replace(
            "m=audio [media_port]",
            &format!("m=audio {}", p.relay_caller_side),
        );
    std::fs::write(d.join("caller.xml"), caller_xml).unwrap();
    std::fs::write(d.join("agent.xml"), agent_xml).unwrap();
    let key = key_file(d, "relay", 42);
    let events = d.join("events.jsonl");

    // The agent's media socket: records what the agent receives.
    let agent_sock = UdpSocket::bind(("127.0.0.1", p.media_agent)).unwrap();
    agent_sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let recorder = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        let mut last = Instant::now();
        let t0 = Instant::now();
        while last.elapsed() < Duration::from_secs(4) && t0.elapsed() < Duration::from_secs(90) {
            if let Ok(n) = agent_sock.recv(&mut buf) {
                got.push(buf[..n].to_vec());
                last = Instant::now();
            }
        }
        got
    });

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

    let sipp = |args: &[String], log: &str| {
        Command::new("sipp")
            .current_dir(d)
            .args(args)
            .args(["-m", "1", "-nostdin", "-trace_err"])
            .stdout(std::fs::File::create(d.join(log)).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let s = |v: &str| v.to_string();
    let mut agent = sipp(
        &[
            s("-sf"),
            s("agent.xml"),
            s("-i"),
            s("127.0.0.1"),
            s("-p"),
            p.sip_agent.to_string(),
            s("-mi"),
            s("127.0.0.1"),
            s("-mp"),
            (p.media_agent + 4).to_string(),
        ],
        "agent.log",
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut caller = sipp(
        &[
            format!("127.0.0.1:{}", p.sip_agent),
            s("-sf"),
            s("caller.xml"),
            s("-i"),
            s("127.0.0.1"),
            s("-p"),
            p.sip_caller.to_string(),
            s("-mi"),
            s("127.0.0.1"),
            s("-mp"),
            p.media_caller.to_string(),
            s("-s"),
            s("agent"),
        ],
        "caller.log",
    );
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

/// The agent's audio (PCMU payloads in arrival order), and the payload types it received.
fn agent_audio(packets: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let mut audio = Vec::new();
    let mut types = Vec::new();
    for b in packets {
        let p = Packet::parse(b).expect("the relay forwarded a malformed packet");
        types.push(p.payload_type());
        if p.payload_type() == 0 {
            audio.extend_from_slice(p.payload());
        }
    }
    (audio, types)
}

fn digits_in(audio: Vec<u8>) -> usize {
    let plugin = Plugin::load(&plugin_path(), Limits::default()).unwrap();
    let mut inst = plugin.instantiate().unwrap();
    let opts = Options {
        settings: CallSettings {
            mask_mode: MaskMode::Off,
            lookahead_ms: 0,
            ..default_settings("check")
        },
        ..Options::default()
    };
    run(&mut inst, &ulaw_wav(audio), &opts, None, |_| {})
        .unwrap()
        .events
        .len()
}

/// Share of `want` found unchanged at the start of `got`.
fn unchanged_share(want: &[u8], got: &[u8]) -> f64 {
    let same = want.iter().zip(got).filter(|(a, b)| a == b).count();
    same as f64 / want.len() as f64
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
    let (audio, types) = agent_audio(&r.packets);
    assert!(types.iter().all(|&t| t == 0), "{types:?}");
    // Every packet arrived; the speech is intact; no digit can be recovered.
    assert_eq!(audio.len(), caller.len() / 160 * 160, "{}", r.relay_stderr);
    let share = unchanged_share(&speech, &audio);
    assert!(
        share > 0.995,
        "only {share:.4} of the speech arrived unchanged"
    );
    assert_eq!(digits_in(audio), 0, "a digit reached the agent");
    assert_eq!(verified_digits(&r.events, &r.key), "4111111111111111");
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

/// A caller's RTP as a sender that follows RFC 4733 sends it: PCMU speech in 20 ms packets
/// and, in the same stream (one SSRC, one sequence), each digit of `card` as telephone-events
/// (PT 96): 100 ms presses 100 ms apart from 1 s on, five updates and the end packet ×3 each.
/// Returned as a pcap for SIPp's `play_pcap_audio`, which sends it from the caller's media
/// port at the pace of its timestamps.
fn speech_and_events(speech: &[u8], card: &str) -> Vec<u8> {
    use tonemask_harness::capture::{write_pcap, Frame};
    const SSRC: u32 = 0x5EED_CA11;
    let mut rtp = Vec::new();
    let mut seq: u16 = 4000;
    let mut push = |t: usize, pt: u8, marker: bool, ts: u32, payload: &[u8]| {
        let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&SSRC.to_be_bytes());
        p.extend_from_slice(payload);
        rtp.push((t, p));
        seq = seq.wrapping_add(1);
    };
    let codes: Vec<u8> = card
        .chars()
        .map(|c| u8::try_from(c.to_digit(10).unwrap()).unwrap())
        .collect();
    for (t, chunk) in speech.chunks_exact(160).enumerate() {
        push(t, 0, t == 0, 160 * t as u32, chunk);
        let (start, k) = (
            t.saturating_sub(50) / 10 * 10 + 50,
            t.saturating_sub(50) / 10,
        );
        if t < 50 || t - start >= 5 || k >= codes.len() {
            continue;
        }
        let n = (t - start + 1) as u16;
        let ts = 160 * start as u32;
        for end in [false]
            .into_iter()
            .chain([true; 3].into_iter().filter(|_| n == 5))
        {
            let flags = if end { 0x80 } else { 0 } | 10;
            let d = (160 * n).to_be_bytes();
            push(t, 96, n == 1 && !end, ts, &[codes[k], flags, d[0], d[1]]);
        }
    }
    let frames: Vec<Frame> = rtp
        .into_iter()
        .map(|(t, payload)| {
            let mut d = vec![0u8; 12];
            d.extend_from_slice(&[0x08, 0x00]);
            let total = (28 + payload.len()) as u16;
            let mut ip = vec![
                0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
            ];
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            d.extend_from_slice(&ip);
            d.extend_from_slice(&6000u16.to_be_bytes());
            d.extend_from_slice(&6010u16.to_be_bytes());
            d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            d.extend_from_slice(&[0, 0]);
            d.extend_from_slice(&payload);
            Frame {
                ts: Duration::from_millis(20 * t as u64),
                link: tonemask_harness::capture::DataLink::ETHERNET,
                orig_len: d.len(),
                data: d,
            }
        })
        .collect();
    // Lengths and checksums made right by the capture writer's own rewrite.
    let fixed: Vec<Frame> = frames
        .iter()
        .map(|f| {
            let d = f.datagram().unwrap();
            f.with_payload(&d, d.payload)
        })
        .collect();
    write_pcap(&fixed).unwrap()
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
    let (audio, types) = agent_audio(&r.packets);
    assert!(
        !types.contains(&96),
        "a telephone-event reached the agent: {types:?}"
    );
    assert!(
        r.relay_stderr.contains("128 event packet(s) dropped"),
        "{}",
        r.relay_stderr
    );
    let share = unchanged_share(&speech, &audio);
    assert!(
        share > 0.995,
        "only {share:.4} of the speech arrived unchanged"
    );
    assert_eq!(digits_in(audio), 0);
    assert_eq!(verified_digits(&r.events, &r.key), "5454545454545454");
}
