//! One media node measured the way an agent would hear it: test calls sent through any node
//! that speaks the rtpengine ng protocol (`tonemask serve`, or rtpengine itself), the same
//! ng messages to both, and what reached the agent compared with what the caller sent.
//!
//! Each call: 1.5 s of real speech, then a test card as in-band PCMU tones, then silence,
//! paced in 20 ms packets. Printed as one JSON line per node:
//!
//! - `onset_leak_ms_max` / `_mean`: tone that reached the agent before masking began, per
//!   tone (1 ms blocks whose µ-law bytes arrived unchanged);
//! - `tone_leak_ms_total`: every unchanged 1 ms block inside the tones;
//! - `spandsp_digits`: digits spandsp (FreeSWITCH's and rtpengine's own detector) still finds
//!   in the agent's audio;
//! - `speech_unchanged`: share of the speech bytes that arrived unchanged;
//! - `delay_ms_p50` / `_p99`: arrival minus sending time of the packet carrying the audio;
//! - `events`: key presses the node reported (tonemask: the events file; rtpengine: its
//!   `--dtmf-log-dest` UDP messages), out of `pressed`;
//! - `telephone_event_packets`: non-PCMU packets that reached the agent.
//!
//! `cargo run --release -p conformance --example node_compare -- NG_ADDR LABEL
//!  (--events FILE | --dtmf-log ADDR) [TALKOFF_DIR]`, then `… -- --table A.jsonl B.jsonl`
//! for the markdown table (scripts/compare-rtpengine.sh runs both nodes).

use conformance::signal::{Burst, Signal};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonemask_core::g711;
use tonemask_harness::ng::{Client, Value};
use tonemask_harness::sdp::parse_sdp;
use tonemask_harness::wav::Wav;

/// Samples of speech before the card.
const SPEECH: usize = 12_000;
/// The look-ahead asked of both nodes (rtpengine: `delay-buffer`), ms.
const DELAY_MS: i64 = 60;

/// One test call: what is sent and where its tones are.
struct Call {
    name: String,
    ulaw: Vec<u8>,
    /// Tone windows, samples.
    tones: Vec<(usize, usize)>,
    /// Whether the SDPs also offer telephone-event (as most SIP phones do).
    te: bool,
}

fn calls() -> anyhow::Result<Vec<Call>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let speech = Wav::parse(&std::fs::read(
        root.join("testdata/calls/speech_only_en.wav"),
    )?)?
    .linear();
    anyhow::ensure!(speech.len() >= SPEECH, "speech_only_en.wav is too short");
    let make = |name: &str, te, on_ms, off_ms, dbm0, twist_db, noise: Option<f32>| {
        let mut s = Signal::new(8000);
        s.samples
            .extend(speech[..SPEECH].iter().map(|&v| f32::from(v)));
        for d in "4111111111111111".chars() {
            s.burst(&Burst {
                dbm0,
                twist_db,
                ..Burst::new(d, on_ms, off_ms)
            });
        }
        s.silence(400.0);
        if let Some(rms) = noise {
            s.pink_noise(rms);
        }
        Call {
            name: name.to_string(),
            ulaw: s.pcm().iter().map(|&v| g711::linear_to_ulaw(v)).collect(),
            tones: s.truth.iter().map(|t| (t.start, t.end)).collect(),
            te,
        }
    };
    // Pink noise 15 dB under a −25 dBm0 tone pair.
    let noise = (conformance::signal::pair_power(-25.0) / 10f32.powf(1.5)).sqrt();
    Ok(vec![
        make(
            "card 65/75 ms, −10 dBm0",
            false,
            65.0,
            75.0,
            -10.0,
            0.0,
            None,
        ),
        make(
            "same card, telephone-event also offered",
            true,
            65.0,
            75.0,
            -10.0,
            0.0,
            None,
        ),
        make(
            "card 40/40 ms, −25 dBm0, 6 dB twist, pink noise 15 dB below",
            false,
            40.0,
            40.0,
            -25.0,
            6.0,
            Some(noise),
        ),
    ])
}

/// Talk-off calls: 40 s of each named recording of the talk-off corpus (music and speech
/// nobody tuned for), played at once; empty when the corpus is not built.
fn talkoff(dir: &std::path::Path) -> Vec<Call> {
    const FILES: [&str; 8] = [
        "music_hedgewars_Freeway.wav",
        "music_wesnoth_battle-epic.wav",
        "music_moh_macroform-cold_day.wav",
        "music_lincity_02_-_Robert_van_Herk_-_City_Blues.wav",
        "music_etr_race1-jt.wav",
        "music_hedgewars_oriental.wav",
        "real_ivr_en_us_f_allison.wav",
        "high_cartoon_british.wav",
    ];
    FILES
        .iter()
        .filter_map(|f| {
            let w = Wav::parse(&std::fs::read(dir.join(f)).ok()?).ok()?;
            (w.sample_rate == 8000).then_some(())?;
            let pcm = w.linear();
            let part = pcm.get(40_000..40_000 + 320_000).unwrap_or(&pcm[..]);
            Some(Call {
                name: format!("talk-off: {f}"),
                ulaw: part.iter().map(|&v| g711::linear_to_ulaw(v)).collect(),
                tones: Vec::new(),
                te: false,
            })
        })
        .collect()
}

fn sdp(port: u16, te: bool) -> String {
    let (pts, te) = if te {
        (
            " 101",
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
        )
    } else {
        ("", "")
    };
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0{pts}\r\na=rtpmap:0 PCMU/8000\r\n{te}a=ptime:20\r\n")
}

/// The ng keys of an offer or answer that prepare in-band DTMF masking (rtpengine decodes
/// the audio to find tones; tonemask masks every call and ignores them).
fn masking_keys(d: &mut Vec<(&str, Value)>) {
    d.push(("flags", Value::List(vec![Value::str("detect DTMF")])));
    d.push(("DTMF-security", Value::str("silence")));
    d.push(("delay-buffer", Value::Int(DELAY_MS)));
    d.push(("replace", Value::List(vec![Value::str("origin")])));
}

/// What the agent received: (arrival, packet).
type Received = Vec<(Instant, Vec<u8>)>;

/// Sends `call` through the node at `ng_addr` as call `id`; returns the send instants of each
/// packet and what the agent received.
fn place(ng_addr: SocketAddr, id: &str, call: &Call) -> anyhow::Result<(Vec<Instant>, Received)> {
    let mut control = Client::connect(ng_addr, Duration::from_secs(5))?;
    let caller = UdpSocket::bind("127.0.0.1:0")?;
    let agent = UdpSocket::bind("127.0.0.1:0")?;
    agent.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut offer = vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str(id)),
        ("from-tag", Value::str("caller")),
        (
            "sdp",
            Value::str(&sdp(caller.local_addr()?.port(), call.te)),
        ),
    ];
    masking_keys(&mut offer);
    let offered = control.command(offer)?;
    // The offer's SDP, rewritten, goes to the agent: the node's agent-facing address.
    let agent_to = offered
        .get("sdp")
        .and_then(Value::as_str)
        .and_then(parse_sdp)
        .map(|(a, _)| a)
        .ok_or_else(|| anyhow::anyhow!("offer reply without SDP"))?;
    let mut answer = vec![
        ("command", Value::str("answer")),
        ("call-id", Value::str(id)),
        ("from-tag", Value::str("caller")),
        ("to-tag", Value::str("agent")),
        ("sdp", Value::str(&sdp(agent.local_addr()?.port(), call.te))),
    ];
    masking_keys(&mut answer);
    let reply = control.command(answer)?;
    let text = reply.get("sdp").and_then(Value::as_str).unwrap_or("");
    let (to, _) = parse_sdp(text).ok_or_else(|| anyhow::anyhow!("answer without SDP"))?;
    // rtpengine 10.5 takes blocking as its own message (Kamailio: rtpengine_block_dtmf()):
    // the caller's DTMF, replaced by silence, the audio held back by the delay buffer.
    control.command(vec![
        ("command", Value::str("block DTMF")),
        ("call-id", Value::str(id)),
        ("from-tag", Value::str("caller")),
        ("flags", Value::List(vec![Value::str("directional")])),
        ("DTMF-security", Value::str("silence")),
        ("delay-buffer", Value::Int(DELAY_MS)),
    ])?;
    // The agent sends too (symmetric RTP: a node may wait to learn its address).
    let agent = Arc::new(agent);
    let stop = Arc::new(AtomicBool::new(false));
    let recorder = {
        let (agent, stop) = (Arc::clone(&agent), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(len) = agent.recv(&mut buf) {
                    got.push((Instant::now(), buf[..len].to_vec()));
                }
            }
            got
        })
    };
    let mut sent = Vec::new();
    let t0 = Instant::now();
    for (k, chunk) in call.ulaw.chunks(160).enumerate() {
        let due = t0 + Duration::from_millis(20 * k as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut p = vec![0x80, if k == 0 { 0x80 } else { 0 }];
        p.extend_from_slice(&(1000 + k as u16).to_be_bytes());
        p.extend_from_slice(&(160 * k as u32).to_be_bytes());
        p.extend_from_slice(&0x00C0_FFEEu32.to_be_bytes());
        p.extend_from_slice(chunk);
        sent.push(Instant::now());
        caller.send_to(&p, to)?;
        // Agent audio: silence, so both sides are latched.
        let mut q = p.clone();
        q[8..12].copy_from_slice(&0x0A6E_0001u32.to_be_bytes());
        q[12..].fill(0xFF);
        agent.send_to(&q, agent_to)?;
    }
    std::thread::sleep(Duration::from_millis(400));
    control.command(vec![
        ("command", Value::str("delete")),
        ("call-id", Value::str(id)),
        ("from-tag", Value::str("caller")),
    ])?;
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let got = recorder
        .join()
        .map_err(|_| anyhow::anyhow!("recorder panicked"))?;
    Ok((sent, got))
}

/// The agent's audio placed on the caller's sample axis; `None` where nothing arrived. Also
/// each PCMU packet's first sample and arrival, and how many packets were not PCMU.
struct Heard {
    audio: Vec<Option<u8>>,
    packets: Vec<(usize, Instant)>,
    other_packets: usize,
}

fn hear(got: &Received, sent_len: usize) -> Heard {
    let pcmu: Vec<(u32, &[u8], Instant)> = got
        .iter()
        .filter(|(_, p)| p.len() > 12 && p[1] & 0x7F == 0)
        .map(|(t, p)| {
            let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            let cc = usize::from(p[0] & 0x0F);
            (ts, &p[12 + 4 * cc..], *t)
        })
        .collect();
    let other_packets = got.len() - pcmu.len();
    let Some(&(ts0, _, _)) = pcmu.first() else {
        return Heard {
            audio: vec![None; sent_len],
            packets: Vec::new(),
            other_packets,
        };
    };
    let mut raw: Vec<Option<u8>> = Vec::new();
    let mut packets = Vec::new();
    for (ts, payload, t) in &pcmu {
        let at = ts.wrapping_sub(ts0) as usize;
        if at > 10 * sent_len {
            continue;
        }
        if raw.len() < at + payload.len() {
            raw.resize(at + payload.len(), None);
        }
        for (i, &b) in payload.iter().enumerate() {
            raw[at + i] = Some(b);
        }
        packets.push((at, *t));
    }
    Heard {
        audio: raw,
        packets,
        other_packets,
    }
}

/// The shift of `heard` against `sent` that makes the speech match best (samples; heard[i] is
/// sent[i + shift]).
fn align(heard: &[Option<u8>], sent: &[u8]) -> i64 {
    (-1600i64..=1600)
        .max_by_key(|&shift| {
            (0..SPEECH.min(heard.len()))
                .filter(|&i| {
                    let j = i as i64 + shift;
                    j >= 0 && (j as usize) < sent.len() && heard[i] == Some(sent[j as usize])
                })
                .count()
        })
        .unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Digits in the node's events for call `id`.
fn reported(events: &Source, id: &str) -> anyhow::Result<usize> {
    Ok(match events {
        Source::File(path) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let key = format!("\"call\":\"{id}:caller\"");
            text.lines()
                .filter(|l| {
                    l.contains(&key) && (l.contains("\"digit\"") || l.contains("\"press\""))
                })
                .count()
        }
        Source::Udp(sock, seen) => {
            let mut buf = [0u8; 4096];
            while let Ok(len) = sock.recv(&mut buf) {
                seen.borrow_mut()
                    .push(String::from_utf8_lossy(&buf[..len]).into_owned());
            }
            let key = format!("\"callid\":\"{id}\"");
            seen.borrow().iter().filter(|m| m.contains(&key)).count()
        }
    })
}

/// Where a node's key presses are read.
enum Source {
    /// tonemask's events file.
    File(String),
    /// rtpengine's `--dtmf-log-dest` messages, as they arrive.
    Udp(UdpSocket, std::cell::RefCell<Vec<String>>),
}

/// What the agent got of `call`, as one JSON line.
fn measure(
    label: &str,
    call: &Call,
    sent: &[Instant],
    got: &Received,
    events: usize,
) -> serde_json::Value {
    let heard = hear(got, call.ulaw.len());
    let shift = align(&heard.audio, &call.ulaw);
    let at = |i: usize| -> Option<u8> {
        let h = usize::try_from(i as i64 - shift).ok()?;
        heard.audio.get(h).copied().flatten()
    };
    let leaked = |b: usize| (b..b + 8).filter(|&i| at(i) == Some(call.ulaw[i])).count() >= 7;
    let mut onsets = Vec::new();
    let mut total = 0;
    let mut in_tone = vec![false; call.ulaw.len()];
    for &(a, b) in &call.tones {
        let blocks: Vec<bool> = (a..b.saturating_sub(7)).step_by(8).map(leaked).collect();
        onsets.push(blocks.iter().take_while(|&&l| l).count() as f64);
        total += blocks.iter().filter(|&&l| l).count();
        // Tones and 5 ms either side.
        in_tone[a.saturating_sub(40)..(b + 40).min(call.ulaw.len())].fill(true);
    }
    let pcm: Vec<i16> = (0..call.ulaw.len())
        .map(|i| g711::ulaw_to_linear(at(i).unwrap_or(0xFF)))
        .collect();
    // The last 400 ms are the node's to keep or send (some hold them until the call ends).
    let judged = call.ulaw.len().saturating_sub(3_200);
    let outside: Vec<usize> = (0..judged).filter(|&i| !in_tone[i]).collect();
    let changed = outside
        .iter()
        .filter(|&&i| at(i) != Some(call.ulaw[i]))
        .count();
    let mut delays: Vec<f64> = heard
        .packets
        .iter()
        .filter_map(|&(h, t)| {
            let k = usize::try_from(h as i64 + shift).ok()? / 160;
            // A call's last packets leave when a node decides the caller went quiet (tonemask:
            // look-ahead + 100 ms) or at the delete: not forwarding delay.
            if k + 3 >= sent.len() {
                return None;
            }
            let s = *sent.get(k)?;
            Some(t.checked_duration_since(s)?.as_secs_f64() * 1000.0)
        })
        .collect();
    let mean = onsets.iter().sum::<f64>() / onsets.len().max(1) as f64;
    let round = |v: f64, places: i32| (v * 10f64.powi(places)).round() / 10f64.powi(places);
    serde_json::json!({
        "node": label,
        "call": call.name,
        "pressed": call.tones.len(),
        "events": events,
        "onset_leak_ms_max": onsets.iter().copied().fold(0.0, f64::max),
        "onset_leak_ms_mean": round(mean, 1),
        "tone_leak_ms_total": total,
        "spandsp_digits": spandsp_ref::digits(&pcm).len(),
        "outside_tones_unchanged": round(1.0 - changed as f64 / outside.len().max(1) as f64, 4),
        "outside_tones_changed_ms": changed / 8,
        "delay_ms_p50": round(percentile(&mut delays, 0.5), 1),
        "delay_ms_p99": round(percentile(&mut delays, 0.99), 1),
        "pcmu_packets": heard.packets.len(),
        "sent_packets": sent.len(),
        "telephone_event_packets": heard.other_packets,
    })
}

/// The JSON lines of `files` (one per node) as one markdown table, calls side by side.
fn table(files: &[String]) -> anyhow::Result<()> {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(f)?.lines() {
            rows.push(serde_json::from_str(line)?);
        }
    }
    println!("| call | node | events / presses | onset leak, max ms | tone leaked, ms | digits spandsp finds at the agent | audio changed outside tones, ms | delay p50 / p99, ms |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut calls: Vec<String> = Vec::new();
    for r in &rows {
        let c = r["call"].as_str().unwrap_or("").to_string();
        if !calls.contains(&c) {
            calls.push(c);
        }
    }
    for c in &calls {
        for r in rows.iter().filter(|r| r["call"].as_str() == Some(c)) {
            println!(
                "| {c} | {} | {} / {} | {} | {} | {} | {} | {} / {} |",
                r["node"].as_str().unwrap_or(""),
                r["events"],
                r["pressed"],
                r["onset_leak_ms_max"],
                r["tone_leak_ms_total"],
                r["spandsp_digits"],
                r["outside_tones_changed_ms"],
                r["delay_ms_p50"],
                r["delay_ms_p99"],
            );
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.first().map(String::as_str) == Some("--table") {
        return table(&a[1..]);
    }
    anyhow::ensure!(
        (a.len() == 4 || a.len() == 5) && (a[2] == "--events" || a[2] == "--dtmf-log"),
        "usage: node_compare NG_ADDR LABEL (--events FILE | --dtmf-log ADDR) [TALKOFF_DIR]"
    );
    let ng_addr: SocketAddr = a[0].parse()?;
    let label = &a[1];
    let events = if a[2] == "--events" {
        Source::File(a[3].clone())
    } else {
        let s = UdpSocket::bind(&a[3])?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        Source::Udp(s, Default::default())
    };
    let tag = std::process::id();
    for (i, call) in calls()?.iter().enumerate() {
        let id = format!("cmp-{tag}-{i}");
        let (sent, got) = place(ng_addr, &id, call)?;
        let n = reported(&events, &id)?;
        println!("{}", measure(label, call, &sent, &got, n));
    }
    let Some(dir) = a.get(4) else {
        return Ok(());
    };
    // Talk-off: all at once (40 s each), then one line for all of them.
    let talk = talkoff(std::path::Path::new(dir));
    anyhow::ensure!(!talk.is_empty(), "no talk-off recordings in {dir}");
    let results: Vec<anyhow::Result<(Vec<Instant>, Received)>> = std::thread::scope(|s| {
        let handles: Vec<_> = talk
            .iter()
            .enumerate()
            .map(|(i, call)| s.spawn(move || place(ng_addr, &format!("cmp-{tag}-t{i}"), call)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("call panicked")))
            })
            .collect()
    });
    for (i, (call, r)) in talk.iter().zip(results).enumerate() {
        let (sent, got) = r?;
        let n = reported(&events, &format!("cmp-{tag}-t{i}"))?;
        println!("{}", measure(label, call, &sent, &got, n));
    }
    Ok(())
}
