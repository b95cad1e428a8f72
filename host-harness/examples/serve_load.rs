//! Load on a running `tonemask serve`: N concurrent calls of 20 ms PCMU packets on loopback,
//! both ways (or caller → callee only), every tenth carrying a key press, for S seconds; each
//! call sends on its own phase within the 20 ms, its callee half a period from its caller (as
//! two independent phones do). Plays the SIP proxy (ng offer/answer/
//! delete), all callers (one socket) and all callees (one socket; calls told apart by SSRC).
//! Prints one line: calls, packets sent and received, lost, the forwarding delay per
//! direction (p50, p99, max — towards the callee the look-ahead included, towards the caller
//! none: that side is only watched; each call's last three packets, which leave when the
//! call goes quiet, left out), the node's CPU time and calls per CPU core.
//!
//! `cargo run --release -p tonemask-harness --example serve_load -- NG_ADDR NODE_PID CALLS SECONDS [both|one-way]`
//! (scripts/bench-serve.sh starts the node and runs the steps.)

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
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

/// How the calls' media flows.
#[derive(Clone, Copy, PartialEq)]
enum Media {
    /// Caller → callee only (the figures before 2026-12-03 night).
    OneWay,
    /// Both ways, as in a real call: the callee's audio goes back through the node too
    /// (watched for digits, not masked).
    Both,
}

/// Where each call's packets are sent from and to, and when each was sent.
struct Direction {
    from: UdpSocket,
    to: Vec<SocketAddr>,
    /// Send instants (ns since t0) per (call, packet); the receiver reads them.
    sent: Arc<Vec<AtomicU64>>,
}

/// Receives one direction's packets on `sock` until `done` and half a second of quiet: each
/// packet's delay since it was sent, and whether it was among its call's last three (which
/// leave when the call goes quiet — idle timeout or delete — by design: not a forwarding
/// delay). The socket is drained every millisecond rather than waited on: a thread blocked
/// in `recv` is woken by every packet, and on loopback that wake-up is work the node's
/// `sendto` does (about a sixth of its CPU) which real, remote phones never cost it. Each
/// packet's time is the kernel's receive time stamp, so draining late adds no delay.
fn receive(
    sock: Arc<UdpSocket>,
    sent: Arc<Vec<AtomicU64>>,
    packets: usize,
    clock: Clock,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(u64, bool)>> {
    std::thread::spawn(move || {
        let mut delays = Vec::with_capacity(sent.len());
        let mut buf = [0u8; 2048];
        let mut quiet_since = None;
        loop {
            match sock.recv(&mut buf) {
                Ok(len) if len >= 12 => {
                    let now = clock.received(&sock);
                    let seq = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                    let call = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                    if let Some(s) = sent.get(call * packets + seq) {
                        delays.push((
                            now.saturating_sub(s.load(Ordering::Relaxed)),
                            seq + 3 >= packets,
                        ));
                    }
                    quiet_since = None;
                }
                Ok(_) => {}
                Err(_) => {
                    if done.load(Ordering::Relaxed) {
                        let q = *quiet_since.get_or_insert_with(Instant::now);
                        if q.elapsed() > Duration::from_millis(500) {
                            return delays;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    })
}

/// The run's time line: ns since its start, on the monotonic clock (send times) and from the
/// kernel's receive time stamps (wall clock, taken at the same start).
#[derive(Clone, Copy)]
struct Clock {
    t0: Instant,
    wall0: SystemTime,
}

impl Clock {
    fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// When the kernel received the packet `sock` last returned (now, if it cannot say).
    fn received(&self, sock: &UdpSocket) -> u64 {
        use std::os::fd::AsRawFd;
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        /// Linux's `SIOCGSTAMPNS` (include/uapi/linux/sockios.h; not in the libc crate).
        const SIOCGSTAMPNS: libc::c_ulong = 0x8907;
        // SAFETY: SIOCGSTAMPNS writes one timespec to the pointer given, which is valid.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGSTAMPNS, &mut ts) };
        if rc != 0 {
            return self.now();
        }
        let at = UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        at.duration_since(self.wall0)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}

/// A UDP socket on loopback with a deep receive buffer (one socket takes every call's
/// packets: what the node sent must not be lost here while the sending thread is busy; the
/// kernel caps it at rmem_max).
fn socket() -> anyhow::Result<Arc<UdpSocket>> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_nonblocking(true)?;
    grow_receive_buffer(&s, 16 << 20);
    Ok(Arc::new(s))
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        a.len() == 4 || a.len() == 5,
        "usage: serve_load NG_ADDR NODE_PID CALLS SECONDS [both|one-way]"
    );
    let ng_addr: SocketAddr = a[0].parse()?;
    let pid: u32 = a[1].parse()?;
    let calls: usize = a[2].parse()?;
    let packets: usize = a[3].parse::<usize>()? * 50;
    let media = match a.get(4).map_or("both", String::as_str) {
        "both" => Media::Both,
        "one-way" => Media::OneWay,
        other => anyhow::bail!("media must be `both` or `one-way`, not {other:?}"),
    };
    let mut control = Client::connect(ng_addr, Duration::from_secs(5))?;
    let callers = socket()?;
    let callees = socket()?;
    let (mut to_callee, mut to_caller) = (Vec::new(), Vec::new());
    for c in 0..calls {
        let id = format!("load-{c}");
        // The offer's SDP, rewritten, is what the callee gets: the node's side facing it.
        let offer = control.command(vec![
            ("command", Value::str("offer")),
            ("call-id", Value::str(&id)),
            ("from-tag", Value::str("f")),
            ("sdp", Value::str(&sdp(callers.local_addr()?.port()))),
        ])?;
        let answer = control.command(vec![
            ("command", Value::str("answer")),
            ("call-id", Value::str(&id)),
            ("from-tag", Value::str("f")),
            ("to-tag", Value::str("t")),
            ("sdp", Value::str(&sdp(callees.local_addr()?.port()))),
        ])?;
        let node_side = |reply: &Value, what: &str| {
            let text = reply.get("sdp").and_then(Value::as_str).unwrap_or_default();
            parse_sdp(text)
                .map(|(to, _)| to)
                .ok_or_else(|| anyhow::anyhow!("{what} without SDP"))
        };
        to_callee.push(node_side(&answer, "answer")?);
        to_caller.push(node_side(&offer, "offer")?);
    }
    let sent = || -> Arc<Vec<AtomicU64>> {
        Arc::new((0..calls * packets).map(|_| AtomicU64::new(0)).collect())
    };
    let mut directions = vec![Direction {
        from: callers.try_clone()?,
        to: to_callee,
        sent: sent(),
    }];
    if media == Media::Both {
        directions.push(Direction {
            from: callees.try_clone()?,
            to: to_caller,
            sent: sent(),
        });
    }
    let done = Arc::new(AtomicBool::new(false));
    let clock = Clock {
        t0: Instant::now(),
        wall0: SystemTime::now(),
    };
    let t0 = clock.t0;
    let receivers: Vec<_> = [&callees, &callers]
        .into_iter()
        .zip(&directions)
        .map(|(sock, d)| {
            receive(
                Arc::clone(sock),
                Arc::clone(&d.sent),
                packets,
                clock,
                Arc::clone(&done),
            )
        })
        .collect();
    let cpu0 = cpu_seconds(pid)?;
    let silence = frame(false, 0);
    // Each call sends on its own phase, spread evenly over the 20 ms (independent phones do
    // not send in step): call c's packet k is due at 20·k + 20·c/calls ms.
    let due = |k: usize, c: usize| {
        t0 + Duration::from_nanos((20_000_000 * (k * calls + c) / calls.max(1)) as u64)
    };
    for k in 0..packets {
        for c in 0..calls {
            if let Some(w) = due(k, c).checked_duration_since(Instant::now()) {
                std::thread::sleep(w);
            }
            // Every tenth call has a 100 ms key press every 2 s (the caller's side).
            let tone = c % 10 == 0 && k % 100 >= 50 && k % 100 < 55;
            for (i, d) in directions.iter().enumerate() {
                // The callee's phone keeps its own time too: its direction of call c runs
                // half a period away from the caller's (both legs of a call in step would
                // find the call's state in cache for the second, which real calls do not).
                let c = if i == 0 { c } else { (c + calls / 2) % calls };
                let payload = if tone && i == 0 {
                    frame(true, k)
                } else {
                    silence.clone()
                };
                let mut p = vec![0x80, 0];
                p.extend_from_slice(&(k as u16).to_be_bytes());
                p.extend_from_slice(&((160 * k) as u32).to_be_bytes());
                p.extend_from_slice(&(c as u32).to_be_bytes());
                p.extend_from_slice(&payload);
                d.sent[c * packets + k].store(clock.now(), Ordering::Relaxed);
                d.from.send_to(&p, d.to[c])?;
            }
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
    let mut received = 0;
    let mut shown = Vec::new();
    for (r, name) in receivers
        .into_iter()
        .zip(["to callee (masked)", "to caller (watched)"])
    {
        let got = r.join().map_err(|_| anyhow::anyhow!("receiver panicked"))?;
        received += got.len();
        let mut delays: Vec<u64> = got.into_iter().filter(|d| !d.1).map(|d| d.0).collect();
        delays.sort_unstable();
        let q = |p: f64| {
            delays
                .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
                .map_or(0.0, |&d| d as f64 / 1e6)
        };
        shown.push(format!(
            "{name} p50 {:5.1} p99 {:5.1} max {:6.1} ms",
            q(0.5),
            q(0.99),
            q(1.0)
        ));
    }
    let total = calls * packets * directions.len();
    println!(
        "calls {calls:5} ({})  sent {total:7}  received {:7}  lost {:5}  delay (all but each call's last 60 ms): {}  node CPU {:6.2} s over {sending:.1} s = {:5.1} %  calls per core {:7.0}",
        if media == Media::Both { "both ways" } else { "one way" },
        received,
        total.saturating_sub(received),
        shown.join(", "),
        cpu,
        100.0 * cpu / sending,
        calls as f64 * sending / cpu.max(1e-9),
    );
    Ok(())
}
