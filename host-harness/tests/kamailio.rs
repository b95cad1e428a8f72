//! `tonemask serve` behind a real SIP proxy: Debian's Kamailio (testdata/kamailio; or
//! OpenSIPS, see [`proxy`]) with its `rtpengine` module pointed at the node, between a SIPp
//! caller and a SIPp agent. Kamailio
//! sends the INVITE's offer, the 200 OK's answer and the BYE's delete over the ng protocol;
//! the caller's SDP and the agent's never name each other's media address, so the audio only
//! flows through the node. The agent's media address is this test's socket: it must receive
//! the caller's speech intact and no digit, while every press is reported once under the
//! call's SIP Call-ID.

mod common;

use common::media::*;
use common::*;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tonemask_harness::wav::Format;

/// The SIP proxy (killed when dropped).
struct Kamailio(Child);

impl Drop for Kamailio {
    /// SIGTERM, so the main process ends its workers (OpenSIPS's outlive a SIGKILL and keep
    /// the port); SIGKILL after 3 s.
    fn drop(&mut self) {
        let pid = libc::pid_t::try_from(self.0.id()).unwrap();
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..30 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The proxy these tests run: Debian's Kamailio, or — with
/// `TONEMASK_SIP_PROXY=opensips:/path/to/opensips` — an OpenSIPS build (not packaged by
/// Debian 12, so CI runs Kamailio) with testdata/opensips/opensips.cfg, its modules next to
/// the binary's tree (`modules/NAME/NAME.so`, as a source build leaves them).
enum Proxy {
    Kamailio,
    OpenSips(std::path::PathBuf),
}

fn proxy() -> Proxy {
    match std::env::var("TONEMASK_SIP_PROXY") {
        Ok(v) if v.starts_with("opensips:") => Proxy::OpenSips(v["opensips:".len()..].into()),
        Ok(v) if v != "kamailio" && !v.is_empty() => {
            panic!("TONEMASK_SIP_PROXY={v}: use kamailio or opensips:/path/to/opensips")
        }
        _ => Proxy::Kamailio,
    }
}

/// Kamailio (or OpenSIPS: see [`proxy`]) on `sip`, relaying every call to the agent on
/// `agent`, its rtpengine module pointed at the media nodes listening for ng on `nodes` (one
/// set). Its log goes to `kamailio.log` in `dir`.
fn start_kamailio(dir: &std::path::Path, sip: u16, agent: u16, nodes: &[u16]) -> Kamailio {
    let proxy = proxy();
    let (program, template) = match &proxy {
        Proxy::Kamailio => {
            let which = Command::new("kamailio").arg("-v").output();
            assert!(
                which.is_ok(),
                "kamailio is not installed (apt-get install kamailio; scripts/setup.sh --test does it)"
            );
            ("kamailio".into(), "testdata/kamailio/kamailio.cfg")
        }
        Proxy::OpenSips(bin) => (bin.clone(), "testdata/opensips/opensips.cfg"),
    };
    let mut cfg = std::fs::read_to_string(root().join(template))
        .unwrap()
        .replace("SIP_PORT", &sip.to_string())
        .replace("AGENT_PORT", &agent.to_string())
        .replace(
            "NG_SOCK",
            &nodes
                .iter()
                .map(|n| format!("udp:127.0.0.1:{n}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    let mut command = Command::new(&program);
    if let Proxy::OpenSips(bin) = &proxy {
        // A source tree's modules, gathered into one directory for `mpath`.
        let modules = dir.join("opensips-modules");
        std::fs::create_dir_all(&modules).unwrap();
        let tree = bin.parent().unwrap().join("modules");
        for m in std::fs::read_dir(&tree).unwrap().flatten() {
            let so = m
                .path()
                .join(format!("{}.so", m.file_name().to_string_lossy()));
            if so.exists() {
                std::fs::copy(&so, modules.join(so.file_name().unwrap())).unwrap();
            }
        }
        cfg = cfg.replace("MODULES", &format!("{}/", modules.display()));
        command.args(["-F", "-m", "32", "-M", "8", "-w"]).arg(dir);
    } else {
        command
            .args(["-DD", "-E", "-m", "32", "-M", "8", "-w"])
            .arg(dir);
    }
    let path = dir.join("kamailio.cfg");
    std::fs::write(&path, cfg).unwrap();
    let kamailio = Kamailio(
        command
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("kamailio.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    // Up once its SIP port is taken.
    for _ in 0..50 {
        if UdpSocket::bind(("127.0.0.1", sip)).is_err() {
            return kamailio;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{} did not start:\n{}",
        program.display(),
        std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default()
    );
}

/// Ports of one call through Kamailio and the node.
struct Ports {
    sip_caller: u16,
    sip_proxy: u16,
    sip_agent: u16,
    media_caller: u16,
    media_agent: u16,
    ng: u16,
    node: (u16, u16),
}

/// What came of a call: the packets the agent received, the node's log, the events.
struct Outcome {
    packets: Vec<Vec<u8>>,
    log: String,
    events: std::path::PathBuf,
    key: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Places one call: SIPp caller → Kamailio → SIPp agent, media through the node. `media` is
/// the caller's SIPp media action, `files` are written beside the scenarios.
fn call(p: &Ports, caller: &[u8], media: &str, files: &[(&str, Vec<u8>)]) -> Outcome {
    call_with(p, caller, media, files, Format::Ulaw, Offer::Early)
}

/// Who makes the SDP offer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offer {
    /// The caller, in its INVITE.
    Early,
    /// The agent, in its 200 OK (the INVITE has no SDP); the caller answers in its ACK.
    Late,
}

/// Moves the caller's SDP from its INVITE to its ACK: the INVITE of a late offer.
fn late_offer(caller_xml: &str) -> String {
    let start = caller_xml
        .find("      Content-Type: application/sdp\n")
        .unwrap();
    let end = caller_xml.find("      a=ptime:20\n").unwrap() + "      a=ptime:20\n".len();
    let sdp = &caller_xml[start..end];
    let invite = format!(
        "{}      Content-Length: 0\n{}",
        &caller_xml[..start],
        &caller_xml[end..]
    );
    let ack_end = "      Content-Length: 0\n    ]]>\n  </send>\n  <nop>";
    assert!(
        invite.contains(ack_end),
        "the ACK's end moved in caller.xml"
    );
    invite.replacen(ack_end, &format!("{sdp}    ]]>\n  </send>\n  <nop>"), 1)
}

/// As [`call`], both sides announcing `format` (PCMU or PCMA) as their audio, the offer made
/// as `offer` says.
fn call_with(
    p: &Ports,
    caller: &[u8],
    media: &str,
    files: &[(&str, Vec<u8>)],
    format: Format,
    offer: Offer,
) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let agent = g711_slice(
        format,
        match format {
            Format::Alaw => "speech_then_card_alaw.wav",
            _ => "speech_then_card_ulaw.wav",
        },
        6.0,
        9.0,
    );
    // SIPp 3.6 streams the file's bytes as they are (a WAV header would go out as audio).
    std::fs::write(d.join("caller.wav"), caller).unwrap();
    std::fs::write(d.join("agent.wav"), &agent).unwrap();
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    // Each side announces its own media address; Kamailio has the node rewrite them.
    let hold = (caller.len() / 8 + 500) as u32;
    write_scenarios(d, media, hold, p.media_caller, p.media_agent);
    if format == Format::Alaw {
        for f in ["caller.xml", "agent.xml"] {
            let xml = std::fs::read_to_string(d.join(f))
                .unwrap()
                .replace("RTP/AVP 0 96", "RTP/AVP 8 96")
                .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000")
                .replace("agent.wav,1,0", "agent.wav,1,8");
            std::fs::write(d.join(f), xml).unwrap();
        }
    }
    if offer == Offer::Late {
        let xml = std::fs::read_to_string(d.join("caller.xml")).unwrap();
        std::fs::write(d.join("caller.xml"), late_offer(&xml)).unwrap();
    }
    let key = key_file(d, "node", 9);
    let events = d.join("events.jsonl");
    let node = start_serve(d, &key, &events, p.ng, p.node, &[]);
    let _kamailio = start_kamailio(d, p.sip_proxy, p.sip_agent, &[p.ng]);
    let recorder = record(UdpSocket::bind(("127.0.0.1", p.media_agent)).unwrap());

    let mut agent_sipp = sipp_agent(d, p.sip_agent, p.media_agent + 4);
    std::thread::sleep(Duration::from_millis(500));
    let mut caller_sipp = sipp_caller(d, p.sip_proxy, p.sip_caller, p.media_caller);
    let cs = wait(&mut caller_sipp, Duration::from_secs(90), "the SIPp caller");
    let as_ = wait(&mut agent_sipp, Duration::from_secs(30), "the SIPp agent");
    let packets = recorder.join().unwrap();
    let (status, log) = node.terminate();
    let file = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    assert!(cs.success(), "SIPp caller failed:\n{}", file("caller.log"));
    assert!(as_.success(), "SIPp agent failed:\n{}", file("agent.log"));
    assert_eq!(status.code(), Some(0), "{log}");
    // Kamailio drove the call: offer, answer, and the BYE's delete ended it.
    let offered = match offer {
        Offer::Early => ": offer;",
        Offer::Late => ": late (the callee's) offer;",
    };
    for step in [offered, ": answered;", ": ended;"] {
        assert!(
            log.contains(step),
            "no {step} in the node's log:\n{log}\nkamailio:\n{}",
            file("kamailio.log")
        );
    }
    assert!(!log.contains("SECURITY"), "{log}");
    Outcome {
        packets,
        log,
        events,
        key,
        _dir: dir,
    }
}

/// A test card as in-band tones after speech, both sides announcing `format` (PCMU or PCMA)
/// as their audio: the agent gets only that payload type, the speech unchanged, no digit;
/// the events verify to the card.
fn card_as_tones(format: Format, offer: Offer, ports: &Ports) {
    let file = |name: &str| match format {
        Format::Alaw => format!("{name}_alaw.wav"),
        _ => format!("{name}_ulaw.wav"),
    };
    let speech = g711_slice(format, &file("speech_then_card"), 2.0, 5.0);
    let mut caller = speech.clone();
    caller.extend(g711_slice(format, &file("card_visa_-3dbm0"), 0.0, 10.0));
    let pt = if format == Format::Alaw { 8 } else { 0 };
    let r = call_with(
        ports,
        &caller,
        &format!(r#"<exec rtp_stream="caller.wav,1,{pt}"/>"#),
        &[],
        format,
        offer,
    );
    check_agent_side_as(
        format,
        &r.packets,
        &speech,
        Some(caller.len() / 160 * 160),
        (&r.events, &r.key),
        "4111111111111111",
        &r.log,
    );
}

#[test]
fn kamailio_puts_the_node_in_a_call_and_the_agent_hears_no_card_tone() {
    card_as_tones(
        Format::Ulaw,
        Offer::Early,
        &Ports {
            sip_caller: 15_460,
            sip_proxy: 15_490,
            sip_agent: 15_470,
            media_caller: 16_400,
            media_agent: 16_440,
            ng: 17_992,
            node: (17_950, 17_969),
        },
    );
}

#[test]
fn kamailio_puts_the_node_in_a_call_and_no_telephone_event_reaches_the_agent() {
    // The caller's SDP names telephone-event on the dynamic PT 96.
    let speech = ulaw_slice("speech_then_card_ulaw.wav", 2.0, 9.0);
    let ports = Ports {
        sip_caller: 15_560,
        sip_proxy: 15_590,
        sip_agent: 15_570,
        media_caller: 16_500,
        media_agent: 16_540,
        ng: 17_993,
        node: (17_970, 17_989),
    };
    let r = call(
        &ports,
        &speech,
        r#"<exec play_pcap_audio="caller.pcap"/>"#,
        &[(
            "caller.pcap",
            speech_and_events(&speech, "5454545454545454"),
        )],
    );
    check_agent_side(
        &r.packets,
        &speech,
        None,
        (&r.events, &r.key),
        "5454545454545454",
        &r.log,
    );
}

#[test]
fn kamailio_puts_the_node_in_a_pcma_call_and_the_agent_hears_no_card_tone() {
    card_as_tones(
        Format::Alaw,
        Offer::Early,
        &Ports {
            sip_caller: 15_760,
            sip_proxy: 15_790,
            sip_agent: 15_770,
            media_caller: 16_700,
            media_agent: 16_740,
            ng: 17_997,
            node: (17_700, 17_719),
        },
    );
}

/// A late offer (the INVITE without SDP, the agent's 200 OK offers, the caller's ACK
/// answers): Kamailio's module then sends the node the dialog's tags swapped, and the node
/// still masks the caller's audio — it used to take the agent for the caller, and let the
/// caller's tones through to the agent unmasked.
#[test]
fn kamailio_late_offer_call_still_masks_the_caller() {
    card_as_tones(
        Format::Ulaw,
        Offer::Late,
        &Ports {
            sip_caller: 15_860,
            sip_proxy: 15_890,
            sip_agent: 15_870,
            media_caller: 16_800,
            media_agent: 16_840,
            ng: 17_781,
            node: (17_782, 17_799),
        },
    );
}

/// Ports of the scale-out test's calls (SIP and media of caller and agent).
const SCALE: Ports = Ports {
    sip_caller: 15_660,
    sip_proxy: 15_690,
    sip_agent: 15_670,
    media_caller: 16_600,
    media_agent: 16_640,
    ng: 0,
    node: (0, 0),
};

/// One short call through Kamailio (its scenarios already in `d`): whether the caller's
/// SIPp succeeded, and what the agent received.
fn short_call(d: &std::path::Path) -> (bool, Vec<Vec<u8>>) {
    let p = &SCALE;
    let recorder = record(UdpSocket::bind(("127.0.0.1", p.media_agent)).unwrap());
    let mut agent = sipp_agent(d, p.sip_agent, p.media_agent + 4);
    std::thread::sleep(Duration::from_millis(300));
    let mut caller = sipp_caller(d, p.sip_proxy, p.sip_caller, p.media_caller);
    let ok = wait(&mut caller, Duration::from_secs(30), "the SIPp caller").success();
    if !ok {
        let _ = agent.kill();
    }
    let _ = agent.wait();
    (ok, recorder.join().unwrap())
}

/// How many calls a node has ended: the end-of-call records in its events file.
fn calls_done(events: &std::path::Path) -> usize {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .matches("\"end_of_call\"")
        .count()
}

#[test]
fn kamailio_spreads_calls_over_two_nodes_and_the_survivor_takes_new_calls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The card's first second: keys '4', '1', '1' (80 ms each).
    let caller = ulaw_slice("card_visa_-3dbm0_ulaw.wav", 0.0, 1.0);
    std::fs::write(d.join("caller.wav"), &caller).unwrap();
    std::fs::write(d.join("agent.wav"), &caller[..1600]).unwrap();
    let hold = (caller.len() / 8 + 300) as u32;
    let p = &SCALE;
    write_scenarios(
        d,
        r#"<exec rtp_stream="caller.wav,1,0"/>"#,
        hold,
        p.media_caller,
        p.media_agent,
    );
    let key = key_file(d, "node", 5);
    let events = [d.join("a.jsonl"), d.join("b.jsonl")];
    let a = start_serve(d, &key, &events[0], 17_994, (17_800, 17_819), &[]);
    let b = start_serve(d, &key, &events[1], 17_995, (17_820, 17_839), &[]);
    let _kamailio = start_kamailio(d, p.sip_proxy, p.sip_agent, &[17_994, 17_995]);
    let done = || [calls_done(&events[0]), calls_done(&events[1])];
    // A node answers `delete` at once and ends the call on its own thread: wait (up to 5 s)
    // until `placed` calls have written their end-of-call records.
    let settled = |placed: usize| {
        for _ in 0..100 {
            if done().iter().sum::<usize>() >= placed {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        done()
    };

    // Calls until each node has taken some (Call-IDs differ per SIPp run and Kamailio hashes
    // them: ten calls all on one node would be a 1-in-500 chance).
    for placed in 1..=10 {
        let (ok, packets) = short_call(d);
        let log = std::fs::read_to_string(d.join("caller.log")).unwrap_or_default();
        assert!(ok, "SIPp caller failed:\n{log}");
        let (audio, _) = agent_audio(&packets);
        assert!(!audio.is_empty(), "no audio reached the agent");
        assert_eq!(digits_in(audio), 0, "a digit reached the agent");
        if settled(placed).iter().all(|&c| c > 0) {
            break;
        }
    }
    let spread = done();
    assert!(spread.iter().all(|&c| c > 0), "calls per node {spread:?}");

    // Node A dies. Once Kamailio notices (a call may fail meanwhile), new calls go to B.
    drop(a);
    let mut ok_after = 0;
    for _ in 0..4 {
        ok_after += usize::from(short_call(d).0);
        if ok_after == 2 {
            break;
        }
    }
    assert_eq!(ok_after, 2, "calls did not go on after a node died");
    let (status, log) = b.terminate();
    assert_eq!(status.code(), Some(0), "{log}");
    assert_eq!(
        done()[1],
        spread[1] + 2,
        "the survivor did not take the new calls"
    );
    // Every call's key was reported once, by the node that carried it.
    let digits: String = events.iter().map(|e| verified_digits(e, &key)).collect();
    assert_eq!(digits, "411".repeat(spread[0] + spread[1] + 2));
}
