//! Load on a running `tonemask serve`: N concurrent calls of 20 ms PCMU packets on loopback,
//! every tenth carrying a key press, for S seconds. Plays the SIP proxy (ng offer/answer/
//! delete), all callers (one socket) and all callees (one socket; calls told apart by SSRC).
//! Prints one line: calls, packets sent and received, lost, the forwarding delay (p50, p99,
//! max — the look-ahead included; each call's last three packets, which leave when the call
//! goes quiet, left out), the node's CPU time and calls per CPU core.
//!
//! `cargo run --release -p tonemask-harness --example serve_load -- NG_ADDR NODE_PID CALLS SECONDS`
//! (scripts/bench-serve.sh starts the node and runs the steps.)

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonemask_harness::ng::{Client, Value};
use tonemask_harness::sdp::parse_sdp;

/// The node's CPU time so far (user + system), from /proc.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Asks for a receive buffer of `bytes` on `sock` (best effort).
fn grow_receive_buffer(sock: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor and a pointer to a c_int of the size given.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            std::ptr::from_ref(&bytes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        eprintln!("serve_load: could not grow the receive buffer");
    }
}

fn sdp(port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

/// 20 ms of µ-law: silence, or a '5' (770 + 1336 Hz at about −10 dBm0 per tone).
fn frame(tone: bool, k: usize) -> Vec<u8> {
    (0..160)
        .map(|i| {
            let t = (k * 160 + i) as f64 / 8000.0;
            let v = if tone {
                let w = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
                (3000.0 * (w(770.0) + w(1336.0))) as i16
            } else {
                0
            };
            tonemask_core::g711::linear_to_ulaw(v)
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        a.len() == 4,
        "usage: serve_load NG_ADDR NODE_PID CALLS SECONDS"
    );
    let ng_addr: SocketAddr = a[0].parse()?;
    let pid: u32 = a[1].parse()?;
    let calls: usize = a[2].parse()?;
    let packets: usize = a[3].parse::<usize>()? * 50;
    let mut control = Client::connect(ng_addr, Duration::from_secs(5))?;
    let callers = UdpSocket::bind("127.0.0.1:0")?;
    let callees = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
    callees.set_read_timeout(Some(Duration::from_millis(100)))?;
    // One socket takes every call's packets: a deep buffer, so that what the node sent is
    // not lost here while this thread is busy sending (the kernel caps it at rmem_max).
    grow_receive_buffer(&callees, 16 << 20);
    let mut targets = Vec::with_capacity(calls);
    for c in 0..calls {
        let id = format!("load-{c}");
        let offer = control.command(vec![
            ("command", Value::str("offer")),
            ("call-id", Value::str(&id)),
            ("from-tag", Value::str("f")),
            ("sdp", Value::str(&sdp(callers.local_addr()?.port()))),
        ])?;
        let _ = offer;
        let answer = control.command(vec![
            ("command", Value::str("answer")),
            ("call-id", Value::str(&id)),
            ("from-tag", Value::str("f")),
            ("to-tag", Value::str("t")),
            ("sdp", Value::str(&sdp(callees.local_addr()?.port()))),
        ])?;
        let text = answer
            .get("sdp")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (to, _) = parse_sdp(text).ok_or_else(|| anyhow::anyhow!("answer without SDP"))?;
        targets.push(to);
    }
    // Send instants (ns since t0) per (call, packet); the receiver reads them.
    let sent: Arc<Vec<AtomicU64>> =
        Arc::new((0..calls * packets).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let receiver = {
        let (sent, done, callees) = (Arc::clone(&sent), Arc::clone(&done), Arc::clone(&callees));
        std::thread::spawn(move || {
            let mut delays = Vec::with_capacity(sent.len());
            let mut buf = [0u8; 2048];
            let mut quiet_since = None;
            loop {
                match callees.recv(&mut buf) {
                    Ok(len) if len >= 12 => {
                        let now = t0.elapsed().as_nanos() as u64;
                        let seq = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                        let call = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                        // The last look-ahead's worth of a call leaves when the call goes
                        // quiet (idle timeout or delete), by design: not a forwarding delay.
                        if let Some(s) = sent.get(call * packets + seq) {
                            delays.push((
                                now.saturating_sub(s.load(Ordering::Relaxed)),
                                seq + 3 >= packets,
                            ));
                        }
                        quiet_since = None;
                    }
                    _ => {
                        if done.load(Ordering::Relaxed) {
                            let q = *quiet_since.get_or_insert_with(Instant::now);
                            if q.elapsed() > Duration::from_millis(500) {
                                return delays;
                            }
                        }
                    }
                }
            }
        })
    };
    let cpu0 = cpu_seconds(pid)?;
    let silence = frame(false, 0);
    for k in 0..packets {
        let due = t0 + Duration::from_millis(20 * k as u64);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        for (c, to) in targets.iter().enumerate() {
            // Every tenth call has a 100 ms key press every 2 s.
            let tone = c % 10 == 0 && k % 100 >= 50 && k % 100 < 55;
            let payload = if tone {
                frame(true, k)
            } else {
                silence.clone()
            };
            let mut p = vec![0x80, 0];
            p.extend_from_slice(&(k as u16).to_be_bytes());
            p.extend_from_slice(&((160 * k) as u32).to_be_bytes());
            p.extend_from_slice(&(c as u32).to_be_bytes());
            p.extend_from_slice(&payload);
            sent[c * packets + k].store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            callers.send_to(&p, to)?;
        }
    }
    let sending = t0.elapsed().as_secs_f64();
    for c in 0..calls {
        control.command(vec![
            ("command", Value::str("delete")),
            ("call-id", Value::str(&format!("load-{c}"))),
            ("from-tag", Value::str("f")),
        ])?;
    }
    let cpu = cpu_seconds(pid)? - cpu0;
    done.store(true, Ordering::Relaxed);
    let got = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))?;
    let received = got.len();
    let mut delays: Vec<u64> = got.into_iter().filter(|d| !d.1).map(|d| d.0).collect();
    delays.sort_unstable();
    let q = |p: f64| {
        delays
            .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
            .map_or(0.0, |&d| d as f64 / 1e6)
    };
    let total = calls * packets;
    println!(
        "calls {calls:5}  sent {total:7}  received {:7}  lost {:5}  delay (all but each call's last 60 ms) p50 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms  node CPU {:6.2} s over {sending:.1} s = {:5.1} %  calls per core {:7.0}",
        received,
        total.saturating_sub(received),
        q(0.5),
        q(0.99),
        q(1.0),
        cpu,
        100.0 * cpu / sending,
        calls as f64 * sending / cpu.max(1e-9),
    );
    Ok(())
}
