//! `tonemask serve` end to end on loopback: this test plays the SIP proxy (it sends the ng
//! commands Kamailio's rtpengine module sends), the callers and the callees. Two calls run at
//! once — a test card as PCMU tones, and digits as RFC 4733 telephone-events — and the
//! callees must receive no DTMF while every press is reported once, signed, under its SIP
//! Call-ID. Malformed control messages get an ng error, never a crash.

mod common;

use common::media::{digits_in, start_serve, Served};
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;
use tonemask_core::rtp::packet::Packet;
use tonemask_harness::ng::{bencode, Client, Value};
use tonemask_harness::sdp::parse_sdp;
use tonemask_harness::wav::{Format, Wav};

const NG: u16 = 17_990;

/// The SIP proxy's side of the ng protocol.
/// The SIP proxy's side of the ng protocol, as a test wants it: panics if the node is gone.
struct Proxy(Client);

impl Proxy {
    fn new() -> Proxy {
        Proxy::at(NG)
    }

    fn at(port: u16) -> Proxy {
        let node = SocketAddr::from(([127, 0, 0, 1], port));
        Proxy(Client::connect(node, Duration::from_secs(5)).unwrap())
    }

    fn raw(&mut self, datagram: &[u8]) -> Option<Vec<u8>> {
        self.0.raw(datagram).unwrap()
    }

    fn send(&mut self, pairs: Vec<(&str, Value)>) -> Value {
        self.0.send(pairs).expect("the node answers")
    }
}

/// The node's reply to a caller's `offer` for call `id` (its SDP naming `port`), with no
/// answer to follow.
fn offer_only(proxy: &mut Proxy, id: &str, port: u16) -> Value {
    proxy.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str(id)),
        ("from-tag", Value::str("ft")),
        ("sdp", Value::str(&sdp(port))),
    ])
}

/// The Call-IDs a `list` (with `limit`, if given) names; its reply must be `ok`.
fn listed(proxy: &mut Proxy, limit: Option<Value>) -> Vec<String> {
    let mut command = vec![("command", Value::str("list"))];
    command.extend(limit.map(|l| ("limit", l)));
    let r = proxy.send(command);
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
    r.get("calls")
        .and_then(Value::as_list)
        .expect("a calls list")
        .iter()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

/// One call's endpoints and where the node told each to send.
struct Leg {
    caller: UdpSocket,
    callee: UdpSocket,
    /// Where the caller sends (from the answer the node rewrote).
    to_node_from_caller: SocketAddr,
    /// Where the callee sends (from the offer the node rewrote).
    to_node_from_callee: SocketAddr,
}

/// A node with the plain options on ng port `ng` and media ports `media`, signing with a
/// fresh key into a fresh events file (in the returned directory), and a proxy talking to it.
fn plain_node(ng: u16, media: (u16, u16)) -> (tempfile::TempDir, PathBuf, PathBuf, Served, Proxy) {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "node", 7);
    let events = dir.path().join("events.jsonl");
    let node = start_serve(dir.path(), &key, &events, ng, media, &[]);
    (dir, key, events, node, Proxy::at(ng))
}

/// A socket for one end of a call, its reads giving up after 300 ms.
fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

/// A PCMU call with telephone-events set up through the node with the flags Kamailio sends.
fn set_up(proxy: &mut Proxy, call_id: &str) -> Leg {
    set_up_with(proxy, call_id, sdp, sdp)
}

/// A call set up through the node: the caller offers `offer(its port)`, the callee answers
/// `answer(its port)`; both replies must be `ok`.
fn set_up_with(
    proxy: &mut Proxy,
    call_id: &str,
    offer: impl Fn(u16) -> String,
    answer: impl Fn(u16) -> String,
) -> Leg {
    let (caller, callee) = (endpoint(), endpoint());
    let offer = offer(caller.local_addr().unwrap().port());
    let r = proxy.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str(call_id)),
        ("from-tag", Value::str("ft-1")),
        ("sdp", Value::str(&offer)),
        ("flags", Value::List(vec![Value::str("trust-address")])),
        (
            "replace",
            Value::List(vec![Value::str("origin"), Value::str("session-connection")]),
        ),
        ("ICE", Value::str("remove")),
    ]);
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
    let (to_node_from_callee, _) = parse_sdp(&text(&r, "sdp")).unwrap();
    let answer = answer(callee.local_addr().unwrap().port());
    let r = proxy.send(vec![
        ("command", Value::str("answer")),
        ("call-id", Value::str(call_id)),
        ("from-tag", Value::str("ft-1")),
        ("to-tag", Value::str("tt-1")),
        ("sdp", Value::str(&answer)),
    ]);
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
    let (to_node_from_caller, _) = parse_sdp(&text(&r, "sdp")).unwrap();
    assert_ne!(to_node_from_caller, to_node_from_callee);
    Leg {
        caller,
        callee,
        to_node_from_caller,
        to_node_from_callee,
    }
}

/// Ends a call with `delete`; the reply must be `ok`.
fn delete(proxy: &mut Proxy, call_id: &str) {
    let r = proxy.send(vec![
        ("command", Value::str("delete")),
        ("call-id", Value::str(call_id)),
        ("from-tag", Value::str("ft-1")),
    ]);
    assert_eq!(text(&r, "result"), "ok", "{r:?}");
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The caller's packets of call A: a test card as µ-law tones.
fn card_packets() -> (Vec<Vec<u8>>, String) {
    let w = Wav::parse(&std::fs::read(calls().join("card_visa_-3dbm0_ulaw.wav")).unwrap()).unwrap();
    assert_eq!(w.format, Format::Ulaw);
    let packets = w
        .data
        .chunks_exact(160)
        .enumerate()
        .map(|(i, c)| rtp(0, i as u16, 160 * i as u32, 0xA, c))
        .collect();
    (packets, "4111111111111111".into())
}

/// The caller's packets of call B: silence, with "1234" as telephone-events on PT 101.
fn event_packets() -> (Vec<Vec<u8>>, String) {
    (keyed("1234", 0xB, 0), "1234".into())
}

/// Silence with each key of `keys` as telephone-events on PT 101 (200 ms of silence before
/// each press, 100 ms presses), from sequence number and timestamp `start` on.
fn keyed(keys: &str, ssrc: u32, start: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let (mut seq, mut ts) = (start, u32::from(start) * 160);
    let silence = [0xFFu8; 160];
    let codes = keys.chars().map(|c| match c {
        '*' => 10,
        '#' => 11,
        d => d.to_digit(10).unwrap() as u8,
    });
    for code in codes {
        for _ in 0..10 {
            out.push(rtp(0, seq, ts, ssrc, &silence));
            seq += 1;
            ts += 160;
        }
        for k in 1..=5u16 {
            let end = k == 5;
            let dur = (160 * k).to_be_bytes();
            let payload = [code, if end { 0x80 } else { 0 } | 10, dur[0], dur[1]];
            // The end packet goes out three times, as RFC 4733 asks.
            for _ in 0..if end { 3 } else { 1 } {
                out.push(rtp(101, seq, ts, ssrc, &payload));
                seq += 1;
            }
        }
        ts += 800;
    }
    for _ in 0..20 {
        out.push(rtp(0, seq, ts, ssrc, &silence));
        seq += 1;
        ts += 160;
    }
    out
}

/// The response to a plain HTTP GET (status line, headers and body).
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// What a callee received: the packets in order.
fn drain(sock: &UdpSocket) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

#[test]
fn two_calls_through_the_node_reach_their_callees_without_dtmf_and_are_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "node", 7);
    let events = dir.path().join("events.jsonl");
    // rtpengine's --dtmf-log-dest: each signed event as one datagram.
    let dtmf_log = UdpSocket::bind("127.0.0.1:0").unwrap();
    dtmf_log
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let dest = dtmf_log.local_addr().unwrap().to_string();
    let node = start_serve(
        dir.path(),
        &key,
        &events,
        NG,
        (17_900, 17_949),
        &["--listen-http", "127.0.0.1:17996", "--dtmf-log-dest", &dest],
    );
    let mut proxy = Proxy::new();

    // Control: ping, and malformed messages answered with an error (or ignored without a
    // cookie) — the node goes on.
    let pong = proxy.send(vec![("command", Value::str("ping"))]);
    assert_eq!(text(&pong, "result"), "pong");
    let bad = proxy.raw(b"c1 d7:command").unwrap();
    let bad = bencode::decode(bad.strip_prefix(b"c1 ").unwrap()).unwrap();
    assert_eq!(text(&bad, "result"), "error");
    assert!(text(&bad, "error-reason").contains("bencode"), "{bad:?}");
    assert!(proxy.raw(&[b'l'; 5000]).is_none(), "no cookie, no reply");
    let unknown = proxy.send(vec![("command", Value::str("teleport"))]);
    assert_eq!(text(&unknown, "result"), "error");
    let no_call = proxy.send(vec![
        ("command", Value::str("answer")),
        ("call-id", Value::str("nope")),
        ("sdp", Value::str(&sdp(9))),
    ]);
    assert_eq!(text(&no_call, "result"), "error");

    let a = set_up(&mut proxy, "call-A@test");
    let b = set_up(&mut proxy, "call-B@test");
    // Call A's callee sends RTCP where RFC 3550 says (its RTP port + 1) before any media:
    // the node holds that port for call A, so it can never reach — and latch — call B's.
    let rtcp_port = SocketAddr::new(a.to_node_from_callee.ip(), a.to_node_from_callee.port() + 1);
    a.callee
        .send_to(&[0x80, 200, 0, 1, 0, 0, 0, 0xC], rtcp_port)
        .unwrap();
    assert_eq!(listed(&mut proxy, None), ["call-A@test", "call-B@test"]);
    // rtpengine's `limit` (default 32): as an integer or as text; below 0 refused.
    for limit in [Value::Int(1), Value::str("1")] {
        assert_eq!(listed(&mut proxy, Some(limit)), ["call-A@test"]);
    }
    let bad = proxy.send(vec![
        ("command", Value::str("list")),
        ("limit", Value::Int(-1)),
    ]);
    assert_eq!(text(&bad, "result"), "error", "{bad:?}");
    assert_eq!(text(&bad, "error-reason"), "invalid limit, must be >= 0");
    let q = proxy.send(vec![
        ("command", Value::str("query")),
        ("call-id", Value::str("call-A@test")),
    ]);
    assert_eq!(text(&q, "state"), "answered", "{q:?}");
    // A re-INVITE from the caller puts the callee on hold: the new SDP (sendonly) comes back
    // pointed at the same callee-facing port. Then the callee's own re-INVITE: its SDP goes
    // to the caller, pointed at the caller-facing port; the caller's answer to the callee's.
    let hold = sdp(a.caller.local_addr().unwrap().port()).replace("a=sendrecv", "a=sendonly");
    let re = proxy.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str("call-A@test")),
        ("from-tag", Value::str("ft-1")),
        ("sdp", Value::str(&hold)),
    ]);
    let re_sdp = text(&re, "sdp");
    assert!(re_sdp.contains("a=sendonly"), "{re_sdp}");
    assert_eq!(parse_sdp(&re_sdp).unwrap().0, a.to_node_from_callee);
    let from_callee = proxy.send(vec![
        ("command", Value::str("offer")),
        ("call-id", Value::str("call-A@test")),
        ("from-tag", Value::str("tt-1")),
        (
            "sdp",
            Value::str(&sdp(a.callee.local_addr().unwrap().port())),
        ),
    ]);
    assert_eq!(
        parse_sdp(&text(&from_callee, "sdp")).unwrap().0,
        a.to_node_from_caller
    );
    let caller_answer = proxy.send(vec![
        ("command", Value::str("answer")),
        ("call-id", Value::str("call-A@test")),
        ("from-tag", Value::str("tt-1")),
        ("to-tag", Value::str("ft-1")),
        (
            "sdp",
            Value::str(&sdp(a.caller.local_addr().unwrap().port())),
        ),
    ]);
    assert_eq!(
        parse_sdp(&text(&caller_answer, "sdp")).unwrap().0,
        a.to_node_from_callee
    );
    // `block DTMF` (Kamailio's rtpengine_block_dtmf) is what every call already does;
    // `unblock DTMF` is refused: masking is never lifted.
    let block = proxy.send(vec![
        ("command", Value::str("block DTMF")),
        ("call-id", Value::str("call-A@test")),
    ]);
    assert_eq!(text(&block, "result"), "ok", "{block:?}");
    let unblock = proxy.send(vec![
        ("command", Value::str("unblock DTMF")),
        ("call-id", Value::str("call-A@test")),
    ]);
    assert_eq!(text(&unblock, "result"), "error", "{unblock:?}");
    assert!(text(&unblock, "error-reason").contains("cannot be unblocked"));

    // The callee talks first: before the caller's first packet, its audio goes to the address
    // the caller's SDP names.
    for leg in [&a, &b] {
        leg.callee
            .send_to(&rtp(0, 1, 0, 0xC, &[0xFF; 160]), leg.to_node_from_callee)
            .unwrap();
    }
    let mut first = [0u8; 512];
    let n = a
        .caller
        .recv(&mut first)
        .expect("callee audio before the caller spoke");
    assert_eq!(n, 12 + 160);
    // Both callers at once, interleaved, 2 ms apart; each callee talks back once.
    let (pa, want_a) = card_packets();
    let (pb, want_b) = event_packets();
    for i in 0..pa.len().max(pb.len()) {
        if let Some(p) = pa.get(i) {
            a.caller.send_to(p, a.to_node_from_caller).unwrap();
        }
        if let Some(p) = pb.get(i) {
            b.caller.send_to(p, b.to_node_from_caller).unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for leg in [&a, &b] {
        leg.callee
            .send_to(&rtp(0, 2, 160, 0xC, &[0xFF; 160]), leg.to_node_from_callee)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    // Live: packets are counted as they pass, before any call ends.
    let live = http_get("127.0.0.1:17996", "/metrics");
    let value = |m: &str, name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{m}"))
    };
    let sent = (pa.len() + pb.len()) as u64;
    let caller_in = value(
        &live,
        "tonemask_packets_in_total{direction=\"caller_to_callee\"}",
    );
    assert_eq!(caller_in, sent, "{live}");
    assert_eq!(value(&live, "tonemask_calls_ended_total"), 0);
    // Every packet taken to the plugin is in the processing-time histogram.
    assert_eq!(
        value(&live, "tonemask_packet_processing_seconds_count"),
        caller_in + 4,
        "{live}"
    );
    assert_eq!(
        value(
            &live,
            "tonemask_packet_processing_seconds_bucket{le=\"+Inf\"}"
        ),
        caller_in + 4
    );
    // `query` while the call runs: its own packets and presses so far.
    let q = proxy.send(vec![
        ("command", Value::str("query")),
        ("call-id", Value::str("call-A@test")),
    ]);
    let count = |dir: &str, key: &str| -> i64 {
        match q.get(dir).and_then(|d| d.get(key)) {
            Some(Value::Int(n)) => *n,
            other => panic!("{dir}.{key}: {other:?} in {q:?}"),
        }
    };
    assert_eq!(count("caller_to_callee", "packets-in"), pa.len() as i64);
    assert_eq!(count("caller_to_callee", "digits"), 16, "{q:?}");
    assert_eq!(count("callee_to_caller", "packets-in"), 2);
    let totals = q
        .get("totals")
        .and_then(|t| t.get("RTP"))
        .and_then(|r| r.get("packets"));
    assert_eq!(totals, Some(&Value::Int(pa.len() as i64 + 2)), "{q:?}");
    // Presses reach /metrics as they are reported, before the calls end.
    let live = http_get("127.0.0.1:17996", "/metrics");
    assert_eq!(value(&live, "tonemask_digits_total"), 20, "{live}");
    // So do drops: a stranger's packet at once; the plugin's refusals (a packet too short to
    // be RTP) and the RFC 4733 packets it took out of call B within a second.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger
        .send_to(&rtp(0, 900, 0, 0xA, &[0xFF; 160]), a.to_node_from_caller)
        .unwrap();
    a.caller
        .send_to(&[0x80, 0, 1], a.to_node_from_caller)
        .unwrap();
    let dropped = |m: &str, reason: &str| {
        value(
            m,
            &format!("tonemask_caller_packets_dropped_total{{reason=\"{reason}\"}}"),
        )
    };
    let mut live = String::new();
    for _ in 0..40 {
        live = http_get("127.0.0.1:17996", "/metrics");
        // Each call's leg publishes its session's counters on its own one-second cycle.
        if dropped(&live, "malformed") > 0
            && value(&live, "tonemask_event_packets_dropped_total") > 0
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(dropped(&live, "foreign_source"), 1, "{live}");
    assert_eq!(dropped(&live, "malformed"), 1, "{live}");
    assert!(
        value(&live, "tonemask_event_packets_dropped_total") > 0,
        "{live}"
    );
    assert_eq!(value(&live, "tonemask_calls_ended_total"), 0, "{live}");
    for id in ["call-A@test", "call-B@test"] {
        delete(&mut proxy, id);
    }
    // `delete` is answered at once; each call then sends its last packets and writes its
    // events on its own thread — done once /metrics counts it ended.
    for _ in 0..100 {
        if http_get("127.0.0.1:17996", "/metrics")
            .lines()
            .any(|l| l == "tonemask_calls_ended_total 2")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let got_a = drain(&a.callee);
    let got_b = drain(&b.callee);
    let back_a = drain(&a.caller);

    // Every audio packet arrived; no telephone-event went on; no tone is left.
    let types = |got: &[Vec<u8>]| -> Vec<u8> {
        got.iter()
            .map(|b| Packet::parse(b).unwrap().payload_type())
            .collect()
    };
    assert_eq!(got_a.len(), pa.len());
    assert!(types(&got_b).iter().all(|&t| t == 0), "{:?}", types(&got_b));
    let audio: Vec<u8> = got_a
        .iter()
        .flat_map(|b| Packet::parse(b).unwrap().payload().to_vec())
        .collect();
    assert_eq!(digits_in(audio), 0, "tones reached the callee");
    assert_eq!(back_a.len(), 1, "the callee's audio reached the caller");

    let by_call = verified_digits_by_call(&events, &key);
    // Event call ids are Call-ID:from-tag, `@` written `_40` (serve::event_call_id).
    assert_eq!(
        by_call.get("call-A_40test:ft-1"),
        Some(&want_a),
        "{by_call:?}"
    );
    assert_eq!(
        by_call.get("call-B_40test:ft-1"),
        Some(&want_b),
        "{by_call:?}"
    );
    // The UDP sink got the same signed lines as the events file.
    let mut datagrams = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = dtmf_log.recv(&mut buf) {
        datagrams.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    let mut lines: Vec<String> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    datagrams.sort();
    lines.sort();
    assert_eq!(
        datagrams, lines,
        "--dtmf-log-dest got other lines than --events"
    );
    assert!(listed(&mut proxy, None).is_empty());

    // What Prometheus and a load balancer see.
    let metrics = http_get("127.0.0.1:17996", "/metrics");
    for line in [
        "tonemask_calls_active 0",
        "tonemask_calls_started_total 2",
        "tonemask_calls_ended_total 2",
        "tonemask_digits_total 20",
        "tonemask_security_signals_total 0",
        "tonemask_plugin_traps_total 0",
        "tonemask_ng_errors_total 6", // the refusals above, the bad `limit` among them
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
    assert!(metrics.contains("tonemask_packets_out_total{direction=\"callee_to_caller\"} 4"));
    assert!(http_get("127.0.0.1:17996", "/health").ends_with("ok\n"));

    // SIGTERM: a clean stop.
    let (status, err) = node.terminate();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("call call-A@test: ended"), "{err}");
}

/// `dist/tonemask-serve.service` is a unit systemd accepts (`systemd-analyze verify`, with
/// ExecStart pointed at this build's binary).
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(root().join("dist/tonemask-serve.service")).unwrap();
    assert!(
        unit.contains("Type=notify") && unit.contains(" serve "),
        "{unit}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tonemask-serve.service");
    let unit = unit.replace(
        "/usr/local/lib/tonemask/tonemask ",
        &format!("{} ", env!("CARGO_BIN_EXE_tonemask")),
    );
    std::fs::write(&path, unit).unwrap();
    let o = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd; scripts/setup.sh --test installs it)");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `--config FILE`: TOML with the command line's option names; the command line wins; an
/// unknown key is refused, naming it.
#[test]
fn serve_takes_its_options_from_a_toml_file_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "node", 3);
    let cfg = dir.path().join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            "interface = \"127.0.0.1\"\nlisten-ng = \"127.0.0.1:17998\"\nport-min = 17880\nport-max = 17889\nkey = \"{}\"\nevents = \"{}\"\nmode = \"tone\"\n",
            key.display(),
            dir.path().join("events.jsonl").display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tonemask"))
        .arg("--plugin")
        .arg(plugin_path())
        .args(["serve", "--config"])
        .arg(&cfg)
        .args(["--listen-ng", "127.0.0.1:17997"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("ng on 127.0.0.1:17997, media on 127.0.0.1 ports 17880–17889"),
        "{line}"
    );
    std::fs::write(&cfg, "interface = \"127.0.0.1\"\nlisten_ng = \"x\"\n").unwrap();
    let o = tonemask(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown option `listen_ng`"),
        "{}",
        stderr(&o)
    );
}

/// A card capture through the node: the agent's desktop starts it with the `capture`
/// command; the caller types card, expiry and code as telephone-events; the callee's side
/// presses a key meanwhile (the fraud signal). The events file holds only progress, the
/// agent key as `agent-dtmf`, and the sealed card, which the processor opens; /metrics
/// counts it all.
#[test]
fn a_card_captured_through_the_node_reaches_only_the_processor() {
    const NG2: u16 = 17_991;
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "node", 7);
    let events = dir.path().join("events.jsonl");
    let public = processor_key(dir.path());
    let node = start_serve(
        dir.path(),
        &key,
        &events,
        NG2,
        (17_840, 17_859),
        &[
            "--listen-http",
            "127.0.0.1:17999",
            "--processor-key",
            public.to_str().unwrap(),
        ],
    );
    let mut proxy = Proxy::at(NG2);
    // Before the answer there is no media to capture from.
    let early = proxy.send(vec![
        ("command", Value::str("capture")),
        ("call-id", Value::str("pay@test")),
    ]);
    assert_eq!(text(&early, "result"), "error", "{early:?}");
    let leg = set_up(&mut proxy, "pay@test");
    let bad = proxy.send(vec![
        ("command", Value::str("capture")),
        ("call-id", Value::str("pay@test")),
        ("fields", Value::List(vec![Value::str("pin")])),
    ]);
    assert!(
        text(&bad, "error-reason").contains("unknown capture field"),
        "{bad:?}"
    );

    let packets = keyed("4111111111111111#0829737", 0xC, 0);
    let send = |ps: &[Vec<u8>]| {
        for p in ps {
            leg.caller.send_to(p, leg.to_node_from_caller).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    // Media first (the session exists), then the agent starts the capture.
    send(&packets[..5]);
    std::thread::sleep(Duration::from_millis(100));
    let start = proxy.send(vec![
        ("command", Value::str("capture")),
        ("call-id", Value::str("pay@test")),
        ("capture-id", Value::str("pay-1")),
    ]);
    assert_eq!(text(&start, "result"), "ok", "{start:?}");
    std::thread::sleep(Duration::from_millis(150));
    send(&packets[5..60]);
    // The callee's side presses '5' (telephone-events) while the caller types.
    for (i, k) in (1..=3u16).enumerate() {
        let end = k == 3;
        let dur = (160 * k).to_be_bytes();
        let payload = [5, if end { 0x80 } else { 0 } | 10, dur[0], dur[1]];
        let p = rtp(101, 10 + i as u16, 1600, 0xD, &payload);
        leg.callee.send_to(&p, leg.to_node_from_callee).unwrap();
    }
    send(&packets[60..]);
    std::thread::sleep(Duration::from_millis(300));
    delete(&mut proxy, "pay@test");
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = http_get("127.0.0.1:17999", "/metrics");
        if metrics.lines().any(|l| l == "tonemask_calls_ended_total 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = drain(&leg.callee);
    let audio: Vec<u8> = got
        .iter()
        .filter_map(|b| Packet::parse(b).ok())
        .filter(|p| p.payload_type() == 0)
        .flat_map(|p| p.payload().to_vec())
        .collect();
    assert_eq!(digits_in(audio), 0, "tones reached the callee");
    assert!(got
        .iter()
        .all(|b| Packet::parse(b).unwrap().payload_type() == 0));

    // The file verifies whole; no digit of the card but the last four is in it.
    // (Read without its hex strings — MACs, chain hashes, the nonce, the sealed card — which
    // hold any four digits by chance: "0829" is in one run's hashes in twelve.)
    let text_of = std::fs::read_to_string(&events).unwrap();
    let plain: Vec<&str> = text_of
        .split('"')
        .filter(|s| !(s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit())))
        .collect();
    let plain = plain.join("\"");
    for part in ["411111", "0829", "737\"", "\"digit\""] {
        assert!(!plain.contains(part), "{part} in the events: {text_of}");
    }
    let v = tonemask(&[
        "verify",
        events.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    let out = stdout(&v);
    assert!(v.status.success(), "{out}");
    assert!(out.contains("agent-dtmf"), "{out}");
    assert!(out.contains("last4=1111"), "{out}");
    assert!(out.contains("captures: 1 started, 1 completed"), "{out}");
    let o = tonemask(&[
        "open",
        events.to_str().unwrap(),
        "--processor-private",
        dir.path().join("proc.key").to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert!(
        stdout(&o).contains("capture pay-1: card 4111111111111111 expiry 0829 code 737"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    for line in [
        "tonemask_captures_started_total 1",
        "tonemask_captures_completed_total 1",
        "tonemask_capture_agent_keys_total 1",
        "tonemask_capture_complete_seconds_count 1",
        "tonemask_security_signals_total 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
    let (status, err) = node.terminate();
    assert_eq!(status.code(), Some(0), "{err}");
}

/// A callee whose answer says `c=IN IP4 0.0.0.0` (not yet, or on hold): the caller's audio
/// is sent nowhere — never to 0.0.0.0, which the OS would deliver to this machine — until
/// the callee's own first packet shows where it is; then it goes there.
#[test]
fn a_callee_at_an_unspecified_address_gets_audio_only_once_its_source_is_known() {
    const NG3: u16 = 17_989;
    let (_dir, _, _, node, mut proxy) = plain_node(NG3, (17_860, 17_879));
    let Leg {
        caller,
        callee,
        to_node_from_caller,
        to_node_from_callee,
    } = set_up_with(&mut proxy, "hold@test", sdp, |port| {
        sdp(port).replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
    });
    // Sent to 0.0.0.0, a packet is delivered on this machine — to the callee's own socket,
    // at the port its SDP names: that is the leak this would catch (it did, before).
    let speech = |seq: u16| rtp(0, seq, 160 * u32::from(seq), 0xE, &[0x55; 160]);
    for seq in 0..10 {
        caller.send_to(&speech(seq), to_node_from_caller).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        drain(&callee).is_empty(),
        "audio went somewhere before the callee spoke"
    );
    // The callee speaks: its source is latched, and the caller's audio goes there.
    callee
        .send_to(&rtp(0, 1, 0, 0xF, &[0xFF; 160]), to_node_from_callee)
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for seq in 10..20 {
        caller.send_to(&speech(seq), to_node_from_caller).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    let got = drain(&callee);
    assert!(
        !got.is_empty(),
        "no audio after the callee's source was known"
    );
    delete(&mut proxy, "hold@test");
    let (status, err) = node.terminate();
    assert_eq!(status.code(), Some(0), "{err}");
}

/// A re-INVITE moves the call from PCMU to PCMA: the node follows it — the caller's card,
/// typed as A-law tones after the switch, reaches the callee as A-law audio with no tone in
/// it and is reported, where the node used to drop every packet of the new type.
#[test]
fn a_reinvite_to_another_codec_is_followed_and_its_tones_masked() {
    const NG4: u16 = 17_987;
    use tonemask_core::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};
    let (_dir, key, events, node, mut proxy) = plain_node(NG4, (17_740, 17_759));
    let a = set_up(&mut proxy, "codec@test");
    let speech = |seq: u16| rtp(0, seq, 160 * u32::from(seq), 0xD, &[0x55; 160]);
    for seq in 0..5 {
        a.caller
            .send_to(&speech(seq), a.to_node_from_caller)
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    // The caller's re-INVITE offers PCMA only; the callee answers PCMA.
    let pcma = |port: u16| {
        sdp(port)
            .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
            .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000")
    };
    for (command, port) in [
        ("offer", a.caller.local_addr().unwrap().port()),
        ("answer", a.callee.local_addr().unwrap().port()),
    ] {
        let r = proxy.send(vec![
            ("command", Value::str(command)),
            ("call-id", Value::str("codec@test")),
            ("from-tag", Value::str("ft-1")),
            ("to-tag", Value::str("tt-1")),
            ("sdp", Value::str(&pcma(port))),
        ]);
        assert_eq!(text(&r, "result"), "ok", "{r:?}");
    }
    std::thread::sleep(Duration::from_millis(150));
    let (card, want) = card_packets();
    let sent = card.len();
    for (i, p) in card.iter().enumerate() {
        let seq = 5 + i as u16;
        let alaw: Vec<u8> = p[12..]
            .iter()
            .map(|&b| linear_to_alaw(ulaw_to_linear(b)))
            .collect();
        let q = rtp(8, seq, 160 * u32::from(seq), 0xD, &alaw);
        a.caller.send_to(&q, a.to_node_from_caller).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    delete(&mut proxy, "codec@test");
    std::thread::sleep(Duration::from_millis(500));
    let got = drain(&a.callee);
    let types: Vec<u8> = got
        .iter()
        .map(|b| Packet::parse(b).unwrap().payload_type())
        .collect();
    assert_eq!(types.iter().filter(|&&t| t == 8).count(), sent, "{types:?}");
    assert_eq!(types.len(), 5 + sent);
    // Back to µ-law for the check: no tone reached the callee.
    let audio: Vec<u8> = got
        .iter()
        .map(|b| Packet::parse(b).unwrap())
        .filter(|p| p.payload_type() == 8)
        .flat_map(|p| {
            p.payload()
                .iter()
                .map(|&b| linear_to_ulaw(alaw_to_linear(b)))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(digits_in(audio), 0, "tones reached the callee");
    let (status, err) = node.terminate();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("payload types changed"), "{err}");
    let by_call = verified_digits_by_call(&events, &key);
    assert_eq!(by_call.get("codec_40test:ft-1"), Some(&want), "{by_call:?}");
}

/// RFC 4733 presses inside RED (RFC 2198, each event packet carrying the one before it as
/// a redundant block), and a press whose end packets were all lost: through the node, each
/// press is reported once — the lost end by the session's timer — and no event, bare or in
/// a RED block, reaches the callee.
#[test]
fn presses_in_red_and_a_press_without_its_end_are_reported_once_and_none_reaches_the_callee() {
    const NG5: u16 = 17_986;
    use tonemask_core::rtp::red::{self, Block};
    let (_dir, key, events, node, mut proxy) = plain_node(NG5, (17_720, 17_739));
    let with_red = |port: u16| {
        sdp(port).replace("RTP/AVP 0 101", "RTP/AVP 0 101 121") + "a=rtpmap:121 red/8000\r\n"
    };
    let Leg {
        caller,
        callee,
        to_node_from_caller: to_node,
        ..
    } = set_up_with(&mut proxy, "red@test", with_red, with_red);
    // "12" as events in RED; then "3" whose end packets never come, and a second of audio.
    let mut packets = Vec::new();
    let mut previous: Option<Vec<u8>> = None;
    for p in keyed("12", 0xE, 0) {
        let q = Packet::parse(&p).unwrap();
        if q.payload_type() != 101 {
            previous = None;
            packets.push(p);
            continue;
        }
        let primary = q.payload().to_vec();
        let mut blocks = Vec::new();
        if let Some(before) = &previous {
            blocks.push(Block {
                pt: 101,
                ts_offset: 0,
                data: before,
            });
        }
        blocks.push(Block {
            pt: 101,
            ts_offset: 0,
            data: &primary,
        });
        let mut payload = Vec::new();
        red::write(&blocks, &mut payload);
        let mut r = p[..12].to_vec();
        r[1] = 121;
        r.extend_from_slice(&payload);
        packets.push(r);
        previous = Some(primary);
    }
    let (mut seq, mut ts) = (packets.len() as u16, 160 * packets.len() as u32);
    let without_end = keyed("3", 0xE, seq);
    for p in &without_end {
        let q = Packet::parse(p).unwrap();
        let end = q.payload_type() == 101 && q.payload()[1] & 0x80 != 0;
        if !end {
            packets.push(p.clone());
        }
    }
    seq = seq.wrapping_add(without_end.len() as u16);
    ts += 160 * without_end.len() as u32;
    for _ in 0..50 {
        packets.push(rtp(0, seq, ts, 0xE, &[0xFF; 160]));
        seq = seq.wrapping_add(1);
        ts += 160;
    }
    for p in &packets {
        caller.send_to(p, to_node).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(800));
    delete(&mut proxy, "red@test");
    std::thread::sleep(Duration::from_millis(500));
    for b in drain(&callee) {
        let p = Packet::parse(&b).unwrap();
        match p.payload_type() {
            0 => {}
            121 => {
                let blocks = red::parse(p.payload()).unwrap();
                assert!(
                    blocks.iter().all(|b| b.pt != 101),
                    "an event in RED went on"
                );
            }
            other => panic!("a packet of type {other} reached the callee"),
        }
    }
    let (status, err) = node.terminate();
    assert_eq!(status.code(), Some(0), "{err}");
    let by_call = verified_digits_by_call(&events, &key);
    assert_eq!(
        by_call.get("red_40test:ft-1").map(String::as_str),
        Some("123"),
        "{by_call:?}"
    );
}

/// A late offer, as Kamailio's `rtpengine_manage()` and OpenSIPS's module send it when the
/// INVITE has no SDP: the offer comes from the callee's 200 OK and the answer from the
/// caller's ACK, both with the dialog's tags swapped (`from-tag` the callee's, `to-tag` the
/// caller's) and OpenSIPS's `received-from` beside them. The caller is still the one
/// masked: its card reaches the callee with no tone in it, reported under the caller's tag.
/// Roles read from tags may be wrong (the same message is a caller's re-INVITE after a node
/// restart), so the callee's direction is masked too: its speech passes unchanged, its
/// tones do not, and its presses are signalled.
#[test]
fn a_late_offer_from_the_callee_still_masks_the_caller() {
    const NG6: u16 = 17_780;
    let (_dir, key, events, node, mut proxy) = plain_node(NG6, (17_760, 17_779));
    let (caller, callee) = (endpoint(), endpoint());
    let mut exchange = |command: &str, port: u16| {
        let r = proxy.send(vec![
            ("command", Value::str(command)),
            ("call-id", Value::str("late@test")),
            ("from-tag", Value::str("callee-tag")),
            ("to-tag", Value::str("caller-tag")),
            ("sdp", Value::str(&sdp(port))),
            (
                "received-from",
                Value::List(vec![Value::str("IP4"), Value::str("127.0.0.1")]),
            ),
            ("transport-protocol", Value::str("RTP/AVP")),
            (
                "replace",
                Value::List(vec![Value::str("origin"), Value::str("session-connection")]),
            ),
            ("ICE", Value::str("remove")),
        ]);
        assert_eq!(text(&r, "result"), "ok", "{r:?}");
        parse_sdp(&text(&r, "sdp")).unwrap().0
    };
    // The callee's offer goes to the caller: it names where the caller sends.
    let to_node_from_caller = exchange("offer", callee.local_addr().unwrap().port());
    let to_node_from_callee = exchange("answer", caller.local_addr().unwrap().port());
    assert_ne!(to_node_from_caller, to_node_from_callee);
    let (card, want) = card_packets();
    for (i, p) in card.iter().enumerate() {
        caller.send_to(p, to_node_from_caller).unwrap();
        if i % 10 == 0 {
            let speech = rtp(0, i as u16, 160 * i as u32, 0xC, &[0x55; 160]);
            callee.send_to(&speech, to_node_from_callee).unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The callee types too: the roles were read from the tags, so both ways are masked.
    for (j, p) in card.iter().enumerate() {
        let seq = 200 + j as u16;
        let tone = rtp(0, seq, 160 * u32::from(seq), 0xC, &p[12..]);
        callee.send_to(&tone, to_node_from_callee).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    delete(&mut proxy, "late@test");
    std::thread::sleep(Duration::from_millis(500));
    let to_callee = drain(&callee);
    assert_eq!(to_callee.len(), card.len(), "the caller's packets");
    let audio: Vec<u8> = to_callee
        .iter()
        .flat_map(|b| Packet::parse(b).unwrap().payload().to_vec())
        .collect();
    assert_eq!(digits_in(audio), 0, "the caller's tones reached the callee");
    let to_caller = drain(&caller);
    let speech = to_caller
        .iter()
        .filter(|b| Packet::parse(b).unwrap().payload() == [0x55; 160])
        .count();
    assert_eq!(speech, 20, "the callee's speech, unchanged");
    let audio: Vec<u8> = to_caller
        .iter()
        .flat_map(|b| Packet::parse(b).unwrap().payload().to_vec())
        .collect();
    assert_eq!(digits_in(audio), 0, "the callee's tones reached the caller");
    let (status, err) = node.terminate();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("late (the callee's) offer"), "{err}");
    assert!(
        err.contains("SECURITY"),
        "the callee's presses not signalled: {err}"
    );
    let by_call = verified_digits_by_call(&events, &key);
    assert_eq!(
        by_call.get("late_40test:caller-tag"),
        Some(&want),
        "{by_call:?}"
    );
}

/// A node started with a low soft open-files limit raises it to the hard one (systemd gives
/// services 1,024); when even the hard limit is spent, an offer is refused with an error that
/// says the node is out of file descriptors — not "no free pair of media ports".
#[test]
fn the_node_raises_its_open_files_limit_and_names_running_out() {
    const NG4: u16 = 17_985;
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "node", 9);
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -S -n 40 && ulimit -H -n 100 && exec \"$0\" \"$@\"",
        ])
        .arg(env!("CARGO_BIN_EXE_tonemask"))
        .arg("--plugin")
        .arg(plugin_path())
        .args(["serve", "--listen-ng", &format!("127.0.0.1:{NG4}")])
        .args([
            "--interface",
            "127.0.0.1",
            "--port-min",
            "17600",
            "--port-max",
            "17699",
        ])
        .arg("--key")
        .arg(&key)
        .arg("--events")
        .arg(dir.path().join("events.jsonl"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Killed however the test ends (a node left running would hold its ports and the
    // test runner's output pipe).
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let _node = Kill(child);
    let mut log = String::new();
    while !log.contains("tonemask serve: open files limit") {
        let n = std::io::BufRead::read_line(&mut err, &mut log).unwrap();
        assert!(n > 0, "serve ended before it was ready: {log}");
    }
    assert!(log.contains("open files limit 100:"), "{log}");
    let mut proxy = Proxy::at(NG4);
    let mut refused = None;
    for i in 0..40 {
        let r = offer_only(&mut proxy, &format!("fd-{i}"), 40_000 + i);
        if text(&r, "result") != "ok" {
            refused = Some((i, text(&r, "error-reason")));
            break;
        }
    }
    let (i, why) = refused.expect("100 descriptors cannot hold 40 offers of 4 sockets");
    assert!(i > 5, "offer {i} refused too soon: {why}");
    assert!(why.contains("out of file descriptors"), "{why}");
    assert!(!why.contains("no free pair"), "{why}");
}

/// A reply that would not fit one datagram (`list` of every call, their Call-IDs long) is
/// answered with an error saying so — the proxy is never left waiting for a reply that could
/// not be sent — and the default `list` (32 calls) still fits.
#[test]
fn a_reply_too_large_for_a_datagram_is_an_error_not_silence() {
    let (_dir, _key, _events, _node, mut proxy) = plain_node(17_984, (18_000, 19_299));
    let long = "x".repeat(240);
    for i in 0..300 {
        let r = offer_only(&mut proxy, &format!("{long}-{i:03}"), 40_000 + i);
        assert_eq!(text(&r, "result"), "ok", "offer {i}: {r:?}");
    }
    let all = proxy.send(vec![
        ("command", Value::str("list")),
        ("limit", Value::Int(1_000)),
    ]);
    assert_eq!(text(&all, "result"), "error", "{all:?}");
    assert!(
        text(&all, "error-reason").contains("does not fit one datagram"),
        "{all:?}"
    );
    assert_eq!(listed(&mut proxy, None).len(), 32);
}

/// An offer never answered (a proxy that lost the call never sends its delete) is dropped
/// after `--offer-timeout-s` and its ports go back to the range; an answered call stays.
#[test]
fn an_offer_never_answered_is_dropped_and_its_ports_reused() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "node", 5);
    let events = dir.path().join("events.jsonl");
    // Room for two calls (eight ports).
    let _node = start_serve(
        dir.path(),
        &key,
        &events,
        17_983,
        (17_580, 17_587),
        &[
            "--offer-timeout-s",
            "0.6",
            "--listen-http",
            "127.0.0.1:17982",
        ],
    );
    let mut proxy = Proxy::at(17_983);
    let answered = set_up(&mut proxy, "answered");
    assert_eq!(
        text(&offer_only(&mut proxy, "lost-1", 40_000), "result"),
        "ok"
    );
    let full = offer_only(&mut proxy, "lost-2", 40_000);
    assert_eq!(
        text(&full, "result"),
        "error",
        "the range holds two calls: {full:?}"
    );
    // The answered call keeps its media going; the unanswered offer times out.
    for i in 0..10u16 {
        answered
            .caller
            .send_to(
                &rtp(0, i, 160 * u32::from(i), 0xA, &[0xFF; 160]),
                answered.to_node_from_caller,
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(listed(&mut proxy, None), ["answered"]);
    let metrics = http_get("127.0.0.1:17982", "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l == "tonemask_calls_unanswered_total 1"),
        "{metrics}"
    );
    // Its ports are free again.
    assert_eq!(
        text(&offer_only(&mut proxy, "next", 40_000), "result"),
        "ok"
    );
    delete(&mut proxy, "answered");
}

/// A command the proxy sends again under the same cookie (its reply was lost) gets the same
/// reply, as from rtpengine's cookie cache — the command is not carried out twice (a second
/// `delete` would answer "Call-ID not found").
#[test]
fn a_command_sent_again_gets_the_same_reply_not_a_second_run() {
    let (_dir, _key, _events, _node, mut proxy) = plain_node(17_981, (17_560, 17_579));
    let _leg = set_up(&mut proxy, "again");
    let delete = b"rt1 d7:command6:delete7:call-id5:againe";
    let first = proxy.raw(delete).expect("a reply");
    let body = bencode::decode(first.strip_prefix(b"rt1 ").unwrap()).unwrap();
    assert_eq!(text(&body, "result"), "ok", "{body:?}");
    assert_eq!(proxy.raw(delete).expect("the same reply"), first);
    // Under a new cookie the command runs again: the call is gone by now.
    let again = proxy
        .raw(b"rt2 d7:command6:delete7:call-id5:againe")
        .unwrap();
    let body = bencode::decode(again.strip_prefix(b"rt2 ").unwrap()).unwrap();
    assert_eq!(text(&body, "result"), "error", "{body:?}");
    assert!(
        text(&body, "error-reason").contains("not found"),
        "{body:?}"
    );
}

/// SIGHUP (the terminal the node ran in was closed) ends the calls as SIGTERM does — their
/// delayed packets sent, each call's end logged — instead of killing the node mid-call.
#[test]
fn a_hangup_ends_the_calls_cleanly() {
    let (_dir, _key, _events, node, mut proxy) = plain_node(17_980, (17_540, 17_559));
    let leg = set_up(&mut proxy, "hup");
    for i in 0..5u16 {
        leg.caller
            .send_to(
                &rtp(0, i, 160 * u32::from(i), 0xA, &[0xFF; 160]),
                leg.to_node_from_caller,
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let (status, err) = node.signal("HUP");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("shutting down: ending 1 call(s)"), "{err}");
    assert!(
        err.contains("call hup: ended; caller→callee 5 in, 5 out"),
        "{err}"
    );
}
