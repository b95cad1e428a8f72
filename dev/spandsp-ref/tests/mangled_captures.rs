//! Fail closed on captures nobody tuned for: each recorded in-band SIP call of
//! `testdata/captures`, rewritten the ways an attacker or a messy network would — signalling
//! stripped, the answer only in a 183, only the INVITE, NAT'd descriptions with one port on
//! both sides, the agent moving its media with a re-INVITE, records cut by the snap length,
//! IP fragments (one datagram's second half missing), audio on payload types nobody
//! announced, a foreign SSRC interleaved — goes through the capture path of `tonemask mask`
//! (`run_capture`), and spandsp, the independent receiver, must find no digit in any audio the
//! caller's side sent that is left in the output. Where the rewrite drops audio, the outcome
//! must say so (the CLI's exit status 4).

use std::path::PathBuf;
use tonemask_core::rtp::packet::Packet;
use tonemask_harness::capture::{Capture, Frame};
use tonemask_harness::keys::KeyRing;
use tonemask_harness::packets::{run_capture, CaptureOptions, CaptureOutcome};
use tonemask_harness::plugin::{Limits, Plugin};
use tonemask_harness::sip::Message;

const CALLER_PORT: u16 = 6000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plugin() -> Plugin {
    let p = std::env::var_os("TONEMASK_PLUGIN")
        .map_or_else(|| root().join("target/tonemask-plugin.wasm"), PathBuf::from);
    Plugin::load(&p, Limits::default()).expect("plugin component (cargo xtask plugin)")
}

fn is_sip(f: &Frame) -> bool {
    f.datagram()
        .is_some_and(|d| Message::parse(d.payload).is_some())
}

fn sip_text(f: &Frame) -> Option<String> {
    let d = f.datagram()?;
    Message::parse(d.payload)?;
    Some(String::from_utf8_lossy(d.payload).into_owned())
}

fn with_text(f: &Frame, text: &str) -> Frame {
    let d = f.datagram().unwrap();
    f.with_payload(&d, text.as_bytes())
}

/// Whether a frame is one of the caller's RTP packets.
fn from_caller(f: &Frame) -> bool {
    f.datagram()
        .is_some_and(|d| d.src.port() == CALLER_PORT && Packet::parse(d.payload).is_ok())
}

/// The caller's RTP frames rewritten by `edit` (payload in, payload out).
fn edit_caller(frames: &[Frame], mut edit: impl FnMut(usize, &[u8]) -> Vec<u8>) -> Vec<Frame> {
    let mut n = 0;
    frames
        .iter()
        .map(|f| {
            if !from_caller(f) {
                return f.clone();
            }
            let d = f.datagram().unwrap();
            n += 1;
            f.with_payload(&d, &edit(n, d.payload))
        })
        .collect()
}

/// Every audio stream (PCMU, any payload type listed as audio) the caller's side sent in
/// `frames`, per SSRC, in timestamp order, decoded.
fn caller_audio(frames: &[Frame]) -> Vec<Vec<i16>> {
    let mut packets: Vec<(u32, u32, Vec<u8>)> = frames
        .iter()
        .filter(|f| from_caller(f))
        .filter_map(|f| {
            let d = f.datagram()?;
            let p = Packet::parse(d.payload).ok()?;
            (p.payload_type() != 96 && p.payload().len() >= 80)
                .then(|| (p.ssrc(), p.timestamp(), p.payload().to_vec()))
        })
        .collect();
    packets.sort_by_key(|p| (p.0, p.1));
    packets
        .chunk_by(|a, b| a.0 == b.0)
        .map(|s| {
            s.iter()
                .flat_map(|p| p.2.iter().map(|&b| tonemask_core::g711::ulaw_to_linear(b)))
                .collect()
        })
        .collect()
}

fn spandsp_digits(frames: &[Frame]) -> String {
    caller_audio(frames)
        .iter()
        .map(|a| spandsp_ref::digits(a))
        .collect()
}

/// A re-INVITE from the agent moving its media to `port`, half-way through the call, and
/// the caller's packets after it sent there.
fn agent_moves(frames: &[Frame], port: u16) -> Vec<Frame> {
    let answer = frames
        .iter()
        .find_map(|f| sip_text(f).filter(|t| t.starts_with("SIP/2.0 200") && t.contains("m=audio")))
        .unwrap();
    let m = Message::parse(answer.as_bytes()).unwrap();
    let (caller_tag, agent_tag) = (m.from_tag.unwrap(), m.to_tag.unwrap());
    let c_line = answer.lines().find(|l| l.starts_with("c=")).unwrap();
    let reinvite = format!(
        "INVITE sip:caller@example SIP/2.0\r\nVia: SIP/2.0/UDP agent\r\nFrom: <sip:agent@example>;tag={agent_tag}\r\nTo: <sip:caller@example>;tag={caller_tag}\r\nCall-ID: {}\r\nCSeq: 2 INVITE\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n{c_line}\r\nm=audio {port} RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\n",
        m.call_id
    );
    let template = frames.iter().find(|f| is_sip(f)).unwrap();
    let half = frames.iter().filter(|f| from_caller(f)).count() / 2;
    let mut out = Vec::new();
    let mut n = 0;
    for f in frames {
        if from_caller(f) {
            n += 1;
            if n == half {
                out.push(with_text(template, &reinvite));
            }
            if n >= half {
                let d = f.datagram().unwrap();
                let mut g = f.with_payload(&d, d.payload);
                let at = d.ip_offset() + if d.dst.is_ipv4() { 20 } else { 40 } + 2;
                let mut data = g.data.to_vec();
                data[at..at + 2].copy_from_slice(&port.to_be_bytes());
                g.data = data.into();
                // The UDP checksum is recomputed from the new port.
                let d2 = g.datagram().unwrap();
                out.push(g.with_payload(&d2, d2.payload));
                continue;
            }
        }
        out.push(f.clone());
    }
    out
}

/// Every 5th caller packet split into two IPv4 fragments; the 3rd such packet loses its
/// second half.
fn fragmented(frames: &[Frame]) -> Vec<Frame> {
    let mut out = Vec::new();
    let (mut n, mut split) = (0, 0);
    for f in frames {
        if !from_caller(f) {
            out.push(f.clone());
            continue;
        }
        n += 1;
        if n % 5 != 0 {
            out.push(f.clone());
            continue;
        }
        split += 1;
        let d = f.datagram().unwrap();
        let ip = d.ip_offset();
        let ihl = usize::from(f.data[ip] & 0x0F) * 4;
        let body = &f.data[ip + ihl..];
        let cut = 96; // a multiple of 8
        for (i, part) in [&body[..cut], &body[cut..]].into_iter().enumerate() {
            if split == 3 && i == 1 {
                continue;
            }
            let mut h = f.data[ip..ip + ihl].to_vec();
            h[2..4].copy_from_slice(&((ihl + part.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&(n as u16).to_be_bytes());
            let field: u16 = if i == 0 { 0x2000 } else { (cut / 8) as u16 };
            h[6..8].copy_from_slice(&field.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let sum = !checksum(&h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            let mut data = f.data[..ip].to_vec();
            data.extend_from_slice(&h);
            data.extend_from_slice(part);
            out.push(Frame {
                ts: f.ts,
                link: f.link,
                orig_len: data.len(),
                data: data.into(),
            });
        }
    }
    out
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum as u16
}

struct Case {
    name: &'static str,
    frames: Vec<Frame>,
    /// Whether the rewrite leaves every caller packet readable (then every digit must be
    /// reported, and nothing counted as dropped).
    intact: bool,
}

fn cases(frames: &[Frame]) -> Vec<Case> {
    let rewrite_sip = |edit: &dyn Fn(&str) -> Option<String>| -> Vec<Frame> {
        frames
            .iter()
            .filter_map(|f| match sip_text(f) {
                Some(t) => edit(&t).map(|t| with_text(f, &t)),
                None => Some(f.clone()),
            })
            .collect()
    };
    let ipv4 = frames
        .iter()
        .any(|f| f.datagram().is_some_and(|d| d.dst.is_ipv4()));
    let mut v = vec![
        Case {
            name: "signalling stripped",
            frames: rewrite_sip(&|_| None),
            intact: true,
        },
        Case {
            name: "answer only in a 183",
            frames: rewrite_sip(&|t| {
                Some(match t.strip_prefix("SIP/2.0 200 OK") {
                    Some(rest) if t.contains("m=audio") => {
                        format!("SIP/2.0 183 Session Progress{rest}")
                    }
                    _ => t.to_string(),
                })
            }),
            intact: true,
        },
        Case {
            name: "only the INVITE",
            frames: rewrite_sip(&|t| t.starts_with("INVITE").then(|| t.to_string())),
            intact: true,
        },
        Case {
            name: "NAT: private addresses, one port on both sides",
            frames: rewrite_sip(&|t| {
                let t = t.replace("m=audio 6000 ", "m=audio 7078 ");
                let t = t.replace("m=audio 6010 ", "m=audio 7078 ");
                Some(
                    t.replace("c=IN IP4 127.0.0.1", "c=IN IP4 192.168.7.7")
                        .replace("c=IN IP6 ::1", "c=IN IP4 192.168.7.8"),
                )
            }),
            intact: true,
        },
        Case {
            name: "agent moves its media (re-INVITE)",
            frames: agent_moves(frames, 6012),
            intact: true,
        },
        Case {
            name: "records cut by the snap length",
            frames: {
                let mut n = 0;
                frames
                    .iter()
                    .map(|f| {
                        let mut g = f.clone();
                        if from_caller(f) {
                            n += 1;
                            if n % 4 == 0 {
                                g.data.truncate(70);
                            }
                        }
                        g
                    })
                    .collect()
            },
            intact: false,
        },
        Case {
            name: "audio on unannounced payload types",
            frames: edit_caller(frames, |n, p| {
                let mut p = p.to_vec();
                if n % 3 == 0 {
                    p[1] = (p[1] & 0x80) | if n % 2 == 0 { 9 } else { 100 };
                }
                p
            }),
            intact: false,
        },
        Case {
            name: "a foreign SSRC interleaved",
            frames: frames
                .iter()
                .flat_map(|f| {
                    let mut v = vec![f.clone()];
                    if from_caller(f) {
                        let d = f.datagram().unwrap();
                        let mut p = d.payload.to_vec();
                        p[8..12].copy_from_slice(&0x0BAD_F00Du32.to_be_bytes());
                        v.push(f.with_payload(&d, &p));
                    }
                    v
                })
                .collect(),
            intact: false,
        },
    ];
    if ipv4 {
        v.push(Case {
            name: "IPv4 fragments, one datagram incomplete",
            frames: fragmented(frames),
            intact: false,
        });
    }
    v
}

fn mask(plugin: &Plugin, keys: &KeyRing, frames: Vec<Frame>) -> (Capture, CaptureOutcome) {
    // Through the file format, as the CLI reads it.
    let bytes = tonemask_harness::capture::write_pcap(&frames).unwrap();
    let cap = Capture::parse(&bytes).unwrap();
    let out = run_capture(plugin, &cap, &CaptureOptions::default(), Some(keys)).unwrap();
    (cap, out)
}

#[test]
fn no_digit_survives_any_mangling_of_the_recorded_calls() {
    let plugin = plugin();
    let keys = KeyRing::ephemeral().unwrap();
    let mut checked = 0;
    for (file, card) in [
        ("inband_visa_ipv4.pcapng", "4111111111111111"),
        ("inband_speech_card_ipv6.pcap", "5105105105105100"),
    ] {
        let bytes = std::fs::read(root().join("testdata/captures").join(file)).unwrap();
        let original = Capture::parse(&bytes).unwrap();
        for case in cases(&original.frames) {
            let what = format!("{file}, {}", case.name);
            let (input, out) = mask(&plugin, &keys, case.frames);
            // The rewritten input still carries the card where spandsp can hear it (the
            // cut records aside, which no receiver can decode either).
            if case.intact {
                assert_eq!(spandsp_digits(&input.frames), card, "{what}: input");
            }
            assert_eq!(spandsp_digits(&out.masked), "", "{what}: digits left");
            assert!(
                out.masked.iter().all(|f| f.datagram().is_some()),
                "{what}: a frame the host could not read was copied"
            );
            // No stream that carried the caller's audio may be merely watched.
            for s in &out.streams {
                if s.src.port() == CALLER_PORT {
                    assert!(s.direction.masked(), "{what}: caller stream only watched");
                }
            }
            if case.intact {
                assert_eq!(out.caller_digits(), card, "{what}");
                assert_eq!(out.agent_digits(), "", "{what}: false security signal");
                assert_eq!(out.audio_dropped(), 0, "{what}");
            } else {
                assert!(out.audio_dropped() > 0, "{what}: drops not counted");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 17);
}

/// One numbering per call: the caller's packets, sent to the agent's first and then its
/// second port (re-INVITE), and from two source ports, still make one session.
#[test]
fn a_call_that_changes_ports_keeps_one_event_numbering() {
    let plugin = plugin();
    let keys = KeyRing::ephemeral().unwrap();
    let bytes = std::fs::read(root().join("testdata/captures/inband_visa_ipv4.pcapng")).unwrap();
    let original = Capture::parse(&bytes).unwrap();
    let moved = agent_moves(&original.frames, 6012);
    // And the caller's source port changes half-way as well.
    let mut n = 0;
    let total = moved.iter().filter(|f| from_caller(f)).count();
    let frames: Vec<Frame> = moved
        .iter()
        .map(|f| {
            if !from_caller(f) {
                return f.clone();
            }
            n += 1;
            if n < total / 3 {
                return f.clone();
            }
            let d = f.datagram().unwrap();
            let mut g = f.clone();
            let at = d.ip_offset() + 20;
            let mut data = g.data.to_vec();
            data[at..at + 2].copy_from_slice(&6002u16.to_be_bytes());
            g.data = data.into();
            let d2 = g.datagram().unwrap();
            g.with_payload(&d2, d2.payload)
        })
        .collect();
    let (_, out) = mask(&plugin, &keys, frames);
    let caller: Vec<_> = out
        .streams
        .iter()
        .filter(|s| s.direction.masked())
        .collect();
    assert_eq!(caller.len(), 1, "one session for the caller's side");
    assert!(caller[0].flows >= 3);
    // One numbering: the start-of-call record is 1, the 16 presses follow without a gap.
    let seqs: Vec<u64> = caller[0].events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (2..=17).collect::<Vec<u64>>());
}
