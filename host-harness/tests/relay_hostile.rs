//! `tonemask relay` under hostile and messy traffic, live on loopback: this test is the
//! caller, the agent and the attackers. A third party speaking first, interleaving its own
//! packets (another SSRC, another port) on the caller side, sending to the agent side from
//! elsewhere; a flood of empty packets with wild timestamps; a caller silent for longer than
//! the idle time while the agent talks; an event collector that never answers. The agent must
//! get only the caller's masked stream, the caller only the agent's, every digit signed once,
//! and the audio must not stall.

mod common;

use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonemask_core::rtp::packet::Packet;
use tonemask_harness::wav::Wav;

const CARD: &str = "4111111111111111";

/// The µ-law audio of a test call with a card typed as tones.
fn card_audio() -> Vec<u8> {
    let w = Wav::parse(&std::fs::read(calls().join("card_visa_-3dbm0_ulaw.wav")).unwrap()).unwrap();
    w.data
}

fn rtp(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn udp(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s
}

fn free_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Relay {
    child: Child,
    /// The relay's stderr: what it printed before it was ready, and the rest to come.
    early: String,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    caller_side: SocketAddr,
    agent_side: SocketAddr,
    events: std::path::PathBuf,
    key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts the relay; `sealed`: its digits sealed to a processor key (opened again by
/// `verified_digits`), else its default (hidden).
fn relay(agent: SocketAddr, extra: &[&str], sealed: bool) -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "relay", 5);
    let digits: Vec<String> = if sealed {
        let public = processor_key(dir.path()).display().to_string();
        vec![
            "--digits".into(),
            "sealed".into(),
            "--digit-key".into(),
            public,
        ]
    } else {
        vec![]
    };
    let events = dir.path().join("events.jsonl");
    let (caller_side, agent_side) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tonemask"))
        .arg("--plugin")
        .arg(plugin_path())
        .arg("relay")
        .args(["--caller-bind", &caller_side.to_string()])
        .args(["--agent-bind", &agent_side.to_string()])
        .args(["--agent", &agent.to_string()])
        .arg("--key")
        .arg(&key)
        .arg("--events")
        .arg(&events)
        .args(["--idle-s", "1", "--max-s", "60"])
        .args(extra)
        .args(&digits)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready once it announces its plan (its sockets are bound then): no guessing how long a
    // loaded machine takes to compile the plugin.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut early = String::new();
    while !early.contains("tonemask relay: caller →") {
        let n = std::io::BufRead::read_line(&mut stderr, &mut early).unwrap();
        assert!(n > 0, "the relay ended before it was ready: {early}");
    }
    Relay {
        child,
        early,
        stderr,
        caller_side,
        agent_side,
        events,
        key,
        _dir: dir,
    }
}

impl Relay {
    fn finish(mut self) -> (i32, String, String) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "relay did not end");
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = std::mem::take(&mut self.early);
        std::io::Read::read_to_string(&mut self.stderr, &mut err).unwrap();
        let digits = verified_digits(&self.events, &self.key);
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&self.events)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "events file mode");
        }
        (status.code().unwrap_or(-1), err, digits)
    }
}

/// Everything a socket receives until it has been quiet for `quiet`.
fn collect(sock: &UdpSocket, quiet: Duration) -> Vec<(Instant, Vec<u8>)> {
    let mut got = Vec::new();
    let mut last = Instant::now();
    let mut buf = [0u8; 2048];
    while last.elapsed() < quiet {
        if let Ok(n) = sock.recv(&mut buf) {
            last = Instant::now();
            got.push((last, buf[..n].to_vec()));
        }
    }
    got
}

#[test]
fn third_parties_on_either_side_get_nothing_through_and_change_no_digit() {
    let agent = udp("127.0.0.1");
    let caller = udp("127.0.0.1");
    let intruder = udp("127.0.0.1");
    // Another address on loopback: neither the caller's nor the agent's.
    let outsider = udp("127.0.0.2");
    let r = relay(agent.local_addr().unwrap(), &[], true);
    let recorder = {
        let agent = agent.try_clone().unwrap();
        std::thread::spawn(move || collect(&agent, Duration::from_secs(3)))
    };
    // The intruder speaks first, with something that is not RTP.
    intruder.send_to(b"hello relay", r.caller_side).unwrap();
    // The agent talks from its own address; an outsider and the intruder send to the agent
    // side as well.
    let audio = card_audio();
    let (ours, theirs) = (0x1111_1111u32, 0xBAD0_0000u32);
    let silence = [0xFFu8; 160];
    for (i, chunk) in audio.chunks_exact(160).enumerate() {
        let (seq, ts) = (i as u16, 160 * i as u32);
        caller
            .send_to(&rtp(ours, seq, ts, chunk), r.caller_side)
            .unwrap();
        // Its own copy of the call, tone '4' everywhere, interleaved.
        intruder
            .send_to(
                &rtp(theirs, seq, ts, &audio[160 * 40..160 * 41]),
                r.caller_side,
            )
            .unwrap();
        if i % 5 == 0 {
            agent
                .send_to(&rtp(0xA6E7, seq, ts, &silence), r.agent_side)
                .unwrap();
            outsider
                .send_to(&rtp(0xA6E7, seq, ts, &silence), r.agent_side)
                .unwrap();
            intruder
                .send_to(&rtp(0xA6E8, seq, ts, &silence), r.agent_side)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let got = recorder.join().unwrap();
    let back = collect(&caller, Duration::from_millis(300));
    let stolen = collect(&intruder, Duration::from_millis(100)).len()
        + collect(&outsider, Duration::from_millis(100)).len();
    let (code, err, digits) = r.finish();
    assert_eq!(digits, CARD, "{err}");
    assert!(!got.is_empty());
    for (_, p) in &got {
        assert_eq!(
            Packet::parse(p).unwrap().ssrc(),
            ours,
            "a foreign packet reached the agent"
        );
    }
    assert!(
        got.len() >= audio.len() / 160 - 2,
        "{} packets: {err}",
        got.len()
    );
    // The caller hears the agent (and only the agent); nobody else gets anything.
    assert!(!back.is_empty(), "{err}");
    assert!(back
        .iter()
        .all(|(_, p)| Packet::parse(p).unwrap().ssrc() == 0xA6E7));
    assert_eq!(stolen, 0);
    assert!(err.contains("not the caller's source"), "{err}");
    assert!(err.contains("not the agent's source"), "{err}");
    // Packets were dropped on the caller side: the exit status says so.
    assert_eq!(code, 4, "{err}");
}

#[test]
fn a_silent_caller_a_dead_collector_and_empty_packets_neither_end_the_call_nor_stall_it() {
    let agent = udp("127.0.0.1");
    let caller = udp("127.0.0.1");
    // An event collector that accepts connections and never answers.
    let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", collector.local_addr().unwrap());
    let r = relay(agent.local_addr().unwrap(), &["--events-url", &url], false);
    let recorder = {
        let agent = agent.try_clone().unwrap();
        std::thread::spawn(move || collect(&agent, Duration::from_secs(4)))
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The agent talks all along.
    let talker = {
        let agent = agent.try_clone().unwrap();
        let to = r.agent_side;
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u16;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                agent
                    .send_to(&rtp(0xA6E7, i, 160 * u32::from(i), &[0xFF; 160]), to)
                    .unwrap();
                i = i.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let audio = card_audio();
    let packets: Vec<&[u8]> = audio.chunks_exact(160).collect();
    let half = packets.len() / 2;
    let mut pause_at = None;
    for (i, chunk) in packets.iter().enumerate() {
        if i == half {
            // Mute: longer than --idle-s, while the agent goes on talking.
            pause_at = Some(Instant::now());
            std::thread::sleep(Duration::from_millis(2500));
        }
        let ts = 160 * i as u32;
        caller
            .send_to(&rtp(0x1111, i as u16, ts, chunk), r.caller_side)
            .unwrap();
        // Empty packets of the same stream, timestamps all over the place.
        for k in 0..3u32 {
            let wild = (i as u32).wrapping_mul(0x9E37_79B9).wrapping_add(k << 29);
            caller
                .send_to(&rtp(0x1111, i as u16, wild, &[]), r.caller_side)
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let got = recorder.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    talker.join().unwrap();
    let (_, err, digits) = r.finish();
    // The relay's default: each press is reported — when, how — but not which key.
    assert_eq!(digits, "?".repeat(CARD.len()), "{err}");
    // What the caller sent after its pause reached the agent.
    let pause = pause_at.unwrap() + Duration::from_millis(2500);
    let after = got.iter().filter(|(t, _)| *t > pause).count();
    assert!(
        after >= packets.len() - half - 4,
        "{after} packets after the pause: {err}"
    );
    // No stall beyond the pause itself while the collector hangs.
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let long = gaps
        .iter()
        .filter(|g| **g > Duration::from_millis(800))
        .count();
    assert!(
        long <= 1,
        "the audio stalled: {long} gaps over 0.8 s: {err}"
    );
    assert!(err.contains("not delivered over HTTP"), "{err}");
}

/// SIGTERM ends a relayed call as going idle does — the delayed packets sent, the summary
/// printed, exit status 0 — instead of killing the relay mid-call.
#[test]
fn sigterm_ends_the_call_cleanly() {
    let agent = UdpSocket::bind("127.0.0.1:0").unwrap();
    agent
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let r = relay(agent.local_addr().unwrap(), &[], false);
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5u16 {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&i.to_be_bytes());
        p.extend_from_slice(&(160 * u32::from(i)).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 7]);
        p.extend_from_slice(&[0xFF; 160]);
        caller.send_to(&p, r.caller_side).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Well inside the 1 s idle time: the signal, not the silence, ends the call.
    std::thread::sleep(Duration::from_millis(50));
    Command::new("kill")
        .arg(r.child.id().to_string())
        .status()
        .unwrap();
    let (code, err, _) = r.finish();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("caller→agent 5 packets in, 5 out"), "{err}");
    let mut got = 0;
    let mut buf = [0u8; 512];
    while agent.recv(&mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 5, "the delayed packets reach the agent");
}
