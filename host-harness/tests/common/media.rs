//! Helpers for the tests that place calls: test audio, SIPp peers, what an agent received.

use super::{calls, plugin_path, processor_key, root};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonemask_core::rtp::packet::Packet;
use tonemask_harness::plugin::{default_settings, CallSettings, Limits, MaskMode, Plugin};
use tonemask_harness::run::{run, Options};
use tonemask_harness::wav::{Format, Wav};

/// 8 kHz µ-law sample data of a test call, from `from` to `to` seconds.
pub fn ulaw_slice(name: &str, from: f64, to: f64) -> Vec<u8> {
    g711_slice(Format::Ulaw, name, from, to)
}

/// 8 kHz G.711 sample data (`format`: µ-law or A-law) of a test call, `from`–`to` seconds.
pub fn g711_slice(format: Format, name: &str, from: f64, to: f64) -> Vec<u8> {
    let w = Wav::parse(&std::fs::read(calls().join(name)).unwrap()).unwrap();
    assert_eq!(w.format, format);
    let end = ((to * 8000.0) as usize).min(w.data.len());
    w.data[(from * 8000.0) as usize..end].to_vec()
}

pub fn ulaw_wav(data: Vec<u8>) -> Wav {
    g711_wav(Format::Ulaw, data)
}

/// 8 kHz G.711 audio in `format` as a WAV.
pub fn g711_wav(format: Format, data: Vec<u8>) -> Wav {
    Wav {
        format,
        sample_rate: 8000,
        data,
    }
}

/// The RTP payload type of a G.711 format.
fn payload_type(format: Format) -> u8 {
    match format {
        Format::Alaw => 8,
        _ => 0,
    }
}

/// Waits for `child` to exit (killing it after `deadline`).
pub fn wait(child: &mut Child, deadline: Duration, what: &str) -> std::process::ExitStatus {
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

/// Records what arrives at `sock` until it has been quiet for 4 s (90 s at most).
pub fn record(sock: UdpSocket) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        let mut last = Instant::now();
        let t0 = Instant::now();
        while last.elapsed() < Duration::from_secs(4) && t0.elapsed() < Duration::from_secs(90) {
            if let Ok(n) = sock.recv(&mut buf) {
                got.push(buf[..n].to_vec());
                last = Instant::now();
            }
        }
        got
    })
}

/// Writes the SIPp caller and agent scenarios (testdata/captures/sipp) into `dir`, with the
/// caller's media action, its hold time, and the media ports each side announces.
pub fn write_scenarios(dir: &Path, media: &str, hold_ms: u32, caller_port: u16, agent_port: u16) {
    let sipp = Command::new("sipp").arg("-v").output();
    assert!(
        sipp.is_ok(),
        "sipp is not installed (apt-get install sip-tester; scripts/setup.sh --test does it)"
    );
    let scenarios = root().join("testdata/captures/sipp");
    let caller_xml = std::fs::read_to_string(scenarios.join("caller.xml"))
        .unwrap()
        .replace("<exec MEDIA/>", media)
        .replace("HOLD", &hold_ms.to_string())
        .replace("m=audio [media_port]", &format!("m=audio {caller_port}"));
    let agent_xml = std::fs::read_to_string(scenarios.join("agent.xml"))
        .unwrap()
        .replace("AGENT_WAV", "agent.wav")
        .replace("m=audio [media_port]", &format!("m=audio {agent_port}"));
    std::fs::write(dir.join("caller.xml"), caller_xml).unwrap();
    std::fs::write(dir.join("agent.xml"), agent_xml).unwrap();
}

/// Starts one SIPp instance in `dir` for one call, its log in `dir/log`.
pub fn sipp(dir: &Path, args: &[String], log: &str) -> Child {
    Command::new("sipp")
        .current_dir(dir)
        .args(args)
        .args(["-m", "1", "-nostdin", "-trace_err"])
        .stdout(std::fs::File::create(dir.join(log)).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The SIPp agent of one call (scenario `agent.xml` in `dir`): SIP on `sip`, its own media
/// from `media` (what it announces is in the scenario).
pub fn sipp_agent(dir: &Path, sip: u16, media: u16) -> Child {
    let args = [
        "-sf",
        "agent.xml",
        "-i",
        "127.0.0.1",
        "-p",
        &sip.to_string(),
    ]
    .into_iter()
    .map(String::from)
    .chain(["-mi", "127.0.0.1", "-mp", &media.to_string()].map(String::from))
    .collect::<Vec<_>>();
    sipp(dir, &args, "agent.log")
}

/// The SIPp caller of one call (scenario `caller.xml` in `dir`): sends its INVITE to
/// `remote`, SIP on `sip`, media from `media`.
pub fn sipp_caller(dir: &Path, remote: u16, sip: u16, media: u16) -> Child {
    let args = [
        format!("127.0.0.1:{remote}"),
        "-sf".into(),
        "caller.xml".into(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        sip.to_string(),
        "-mi".into(),
        "127.0.0.1".into(),
        "-mp".into(),
        media.to_string(),
        "-s".into(),
        "agent".into(),
    ];
    sipp(dir, &args, "caller.log")
}

/// The agent's audio (PCMU payloads in arrival order), and the payload types it received.
pub fn agent_audio(packets: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    agent_audio_as(Format::Ulaw, packets)
}

/// The agent's audio (payloads of `format`'s payload type, in arrival order), and the
/// payload types it received.
pub fn agent_audio_as(format: Format, packets: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
    let pt = payload_type(format);
    let mut audio = Vec::new();
    let mut types = Vec::new();
    for b in packets {
        let p = Packet::parse(b).expect("a malformed packet was forwarded");
        types.push(p.payload_type());
        if p.payload_type() == pt {
            audio.extend_from_slice(p.payload());
        }
    }
    (audio, types)
}

/// Digits the plugin finds in µ-law `audio` (mask mode off, no look-ahead).
pub fn digits_in(audio: Vec<u8>) -> usize {
    digits_in_wav(&ulaw_wav(audio))
}

/// Digits the plugin finds in `wav` (mask mode off, no look-ahead).
pub fn digits_in_wav(wav: &Wav) -> usize {
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
    run(&mut inst, wav, &opts, None, |_| {})
        .unwrap()
        .events
        .len()
}

/// What an agent received, checked: only PCMU (no telephone-event or anything else), all
/// `audio_len` bytes of it when given, the caller's `speech` unchanged at its start, no digit
/// left in it; and the signed events verify to exactly `digits`. `log` is shown on failure.
pub fn check_agent_side(
    packets: &[Vec<u8>],
    speech: &[u8],
    audio_len: Option<usize>,
    (events, key): (&Path, &Path),
    digits: &str,
    log: &str,
) {
    check_agent_side_as(
        Format::Ulaw,
        packets,
        speech,
        audio_len,
        (events, key),
        digits,
        log,
    );
}

/// As [`check_agent_side`], for audio in `format` (PCMU or PCMA).
pub fn check_agent_side_as(
    format: Format,
    packets: &[Vec<u8>],
    speech: &[u8],
    audio_len: Option<usize>,
    (events, key): (&Path, &Path),
    digits: &str,
    log: &str,
) {
    let (audio, types) = agent_audio_as(format, packets);
    let pt = payload_type(format);
    assert!(
        types.iter().all(|&t| t == pt),
        "not only payload type {pt} reached the agent: {types:?}"
    );
    if let Some(n) = audio_len {
        assert_eq!(audio.len(), n, "{log}");
    }
    let share = unchanged_share(speech, &audio);
    assert!(
        share > 0.995,
        "only {share:.4} of the speech arrived unchanged\n{log}"
    );
    assert_eq!(
        digits_in_wav(&g711_wav(format, audio)),
        0,
        "a digit reached the agent"
    );
    assert_eq!(super::verified_digits(events, key), digits);
}

/// Share of `want` found unchanged at the start of `got`.
pub fn unchanged_share(want: &[u8], got: &[u8]) -> f64 {
    let same = want.iter().zip(got).filter(|(a, b)| a == b).count();
    same as f64 / want.len() as f64
}

/// A `tonemask serve` process (killed when dropped), its stderr echoed and kept.
pub struct Served {
    pub child: Child,
    pub err: std::thread::JoinHandle<String>,
}

impl Served {
    /// Stops it with SIGTERM; returns its exit status and everything it logged.
    pub fn terminate(self) -> (std::process::ExitStatus, String) {
        self.signal("TERM")
    }

    /// Stops it with signal `name` (`TERM`, `HUP`, …); returns its exit status and everything
    /// it logged.
    pub fn signal(mut self, name: &str) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        let status = wait(
            &mut self.child,
            Duration::from_secs(10),
            "serve after SIGTERM",
        );
        let err = std::mem::replace(&mut self.err, std::thread::spawn(String::new));
        (status, err.join().unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Starts `tonemask serve` on loopback (ng on `ng`, media ports `ports`, and `extra`
/// options), signing with `key` into `events`; returns once it listens.
pub fn start_serve(
    dir: &Path,
    key: &Path,
    events: &Path,
    ng: u16,
    ports: (u16, u16),
    extra: &[&str],
) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonemask"))
        .arg("--plugin")
        .arg(plugin_path())
        .args(["serve", "--listen-ng", &format!("127.0.0.1:{ng}")])
        .args(["--interface", "127.0.0.1"])
        .args([
            "--port-min",
            &ports.0.to_string(),
            "--port-max",
            &ports.1.to_string(),
        ])
        .arg("--key")
        .arg(key)
        .arg("--events")
        .arg(events)
        .args(["--idle-s", "10"])
        .args(extra)
        // Digits sealed to a processor key beside the signing key (how a deployment runs),
        // unless the test says otherwise; `verified_digits` opens them.
        .args(if extra.contains(&"--digits") {
            vec![]
        } else {
            vec![
                "--digits".to_string(),
                "sealed".to_string(),
                "--digit-key".to_string(),
                processor_key(key.parent().unwrap()).display().to_string(),
            ]
        })
        .current_dir(dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    while !text.contains("tonemask serve: ng on") {
        let n = std::io::BufRead::read_line(&mut err, &mut text).unwrap();
        assert!(n > 0, "serve ended before it was ready: {text}");
    }
    // Echoed as it comes (shown with --nocapture or when the test fails), and kept.
    let err = std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut err, &mut line).unwrap_or(0) > 0 {
            eprint!("{line}");
            text.push_str(&line);
            line.clear();
        }
        text
    });
    Served { child, err }
}

/// A caller's RTP as a sender that follows RFC 4733 sends it: PCMU speech in 20 ms packets
/// and, in the same stream (one SSRC, one sequence), each digit of `card` as telephone-events
/// (PT 96): 100 ms presses 100 ms apart from 1 s on, five updates and the end packet ×3 each.
/// Returned as a pcap for SIPp's `play_pcap_audio`, which sends it from the caller's media
/// port at the pace of its timestamps.
pub fn speech_and_events(speech: &[u8], card: &str) -> Vec<u8> {
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
                data: d.into(),
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
