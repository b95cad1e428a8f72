//! What the node tells Prometheus (`/metrics`) and a load balancer (`/health`) on
//! `--listen-http`.
//!
//! Counters are process totals. Packets in and out and the time each packet spends in the
//! plugin (a histogram), digits and drops by reason move as packets pass ([`Live`], shared
//! with every call; the plugin's own refusals within a second, from its counters); capture
//! counts and traps are added when a call ends; calls active, ng commands and errors move at
//! once.

use crate::relay::{Live, RelaySummary, DIRECTIONS, DROP_REASONS};
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The node's counters.
#[derive(Default)]
pub struct Metrics {
    calls_started: AtomicU64,
    calls_ended: AtomicU64,
    calls_failed: AtomicU64,
    calls_unanswered: AtomicU64,
    ng_commands: AtomicU64,
    ng_errors: AtomicU64,
    /// Counted by the calls as their packets pass.
    pub live: Arc<Live>,
    plugin_traps: AtomicU64,
    events_undelivered: AtomicU64,
    /// Card captures: started, completed, cancelled, keys on the agent's leg during one.
    captures: [AtomicU64; 4],
    /// Captures failed, and fields refused and asked again, by reason.
    capture_failed: Mutex<BTreeMap<String, u64>>,
    capture_retries: Mutex<BTreeMap<String, u64>>,
    /// Time from start to completion of completed captures: sum (ms) and count.
    capture_complete: [AtomicU64; 2],
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// An ng command was answered (`error`: with an error).
    pub fn command(&self, error: bool) {
        add(&self.ng_commands, 1);
        if error {
            add(&self.ng_errors, 1);
        }
    }

    /// A call was answered and its media started.
    pub fn call_started(&self) {
        add(&self.calls_started, 1);
    }

    /// An offer was never answered: its call was dropped after the offer timeout.
    pub fn call_unanswered(&self) {
        add(&self.calls_unanswered, 1);
    }

    /// A call ended, with what its relay did (`None`: it failed or its thread panicked).
    pub fn call_ended(&self, s: Option<&RelaySummary>) {
        add(&self.calls_ended, 1);
        let Some(s) = s else {
            add(&self.calls_failed, 1);
            return;
        };
        let traps = u64::from(s.caller_trap.is_some()) + u64::from(s.agent_trap.is_some());
        add(&self.plugin_traps, traps);
        add(&self.events_undelivered, s.undelivered);
        let mut t = crate::card::Tally::default();
        for c in &s.captures {
            t.add(&c.capture, crate::card::event_items(c));
        }
        let counts = [t.started, t.completed, t.cancelled, t.agent_keys];
        for (c, n) in self.captures.iter().zip(counts) {
            add(c, n);
        }
        for (into, from) in [
            (&self.capture_failed, &t.failed),
            (&self.capture_retries, &t.retries),
        ] {
            if let Ok(mut m) = into.lock() {
                for (reason, n) in from {
                    *m.entry(reason.clone()).or_default() += n;
                }
            }
        }
        add(&self.capture_complete[0], t.complete_ms.iter().sum());
        add(&self.capture_complete[1], t.complete_ms.len() as u64);
    }

    /// The Prometheus text exposition of every counter.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, value) in SINGLE {
            write_metric(&mut out, name, kind, help, &[(String::new(), value(self))]);
        }
        let per_dir = |which: fn((u64, u64)) -> u64| -> Vec<(String, u64)> {
            DIRECTIONS
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    (
                        format!("{{direction=\"{d}\"}}"),
                        which(self.live.packets(i)),
                    )
                })
                .collect()
        };
        write_metric(
            &mut out,
            "packets_in_total",
            "counter",
            "RTP/RTCP packets taken to the plugin, per direction (live).",
            &per_dir(|(i, _)| i),
        );
        write_metric(
            &mut out,
            "packets_out_total",
            "counter",
            "Packets sent on, per direction (live).",
            &per_dir(|(_, o)| o),
        );
        let (buckets, count, sum) = self.live.histogram();
        let mut rows: Vec<(String, u64)> = buckets
            .iter()
            .map(|&(le, n)| {
                let le = if le.is_infinite() {
                    "+Inf".to_string()
                } else {
                    format!("{le}")
                };
                (format!("_bucket{{le=\"{le}\"}}"), n)
            })
            .collect();
        rows.push(("_count".to_string(), count));
        out.push_str(
            "# HELP tonemask_packet_processing_seconds Time each packet spent in the plugin (live).\n# TYPE tonemask_packet_processing_seconds histogram\n",
        );
        for (suffix, n) in rows {
            out.push_str(&format!("tonemask_packet_processing_seconds{suffix} {n}\n"));
        }
        out.push_str(&format!("tonemask_packet_processing_seconds_sum {sum}\n"));
        write_metric(
            &mut out,
            "caller_packets_dropped_total",
            "counter",
            "Caller packets dropped, by reason (fail closed; live, the plugin's refusals within a second).",
            &DROP_REASONS
                .iter()
                .zip(self.live.drops().0)
                .map(|(n, c)| (format!("{{reason=\"{n}\"}}"), c))
                .collect::<Vec<_>>(),
        );
        self.render_captures(&mut out);
        out
    }

    /// The capture counters kept by reason, and the time to complete.
    fn render_captures(&self, out: &mut String) {
        let by_reason = |m: &Mutex<BTreeMap<String, u64>>| -> Vec<(String, u64)> {
            m.lock().map_or_else(
                |_| Vec::new(),
                |m| {
                    m.iter()
                        .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n))
                        .collect()
                },
            )
        };
        write_metric(
            out,
            "captures_failed_total",
            "counter",
            "Card captures failed, by reason: a field out of attempts or time (ended calls).",
            &by_reason(&self.capture_failed),
        );
        write_metric(
            out,
            "capture_retries_total",
            "counter",
            "Capture fields refused and asked again, by reason (ended calls).",
            &by_reason(&self.capture_retries),
        );
        let [sum_ms, count] = [&self.capture_complete[0], &self.capture_complete[1]].map(get);
        write_metric(
            out,
            "capture_complete_seconds",
            "summary",
            "Time from a capture's start to its completion (ended calls).",
            &[("_count".to_string(), count)],
        );
        out.push_str(&format!(
            "tonemask_capture_complete_seconds_sum {}\n",
            sum_ms as f64 / 1000.0
        ));
    }
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// A metric with one value: name, type, help, and its value.
type Single = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Metrics) -> u64,
);

/// Every metric with one value, in the order `/metrics` shows them.
const SINGLE: [Single; 16] = [
    ("calls_active", "gauge", "Calls with media running.", |m| {
        get(&m.calls_started).saturating_sub(get(&m.calls_ended))
    }),
    (
        "calls_started_total",
        "counter",
        "Calls answered (media started).",
        |m| get(&m.calls_started),
    ),
    (
        "calls_ended_total",
        "counter",
        "Calls ended (delete, idle, shutdown).",
        |m| get(&m.calls_ended),
    ),
    (
        "calls_failed_total",
        "counter",
        "Calls whose media could not run (their relay failed).",
        |m| get(&m.calls_failed),
    ),
    (
        "calls_unanswered_total",
        "counter",
        "Offers never answered, dropped after the offer timeout (their ports released).",
        |m| get(&m.calls_unanswered),
    ),
    (
        "ng_commands_total",
        "counter",
        "ng commands answered.",
        |m| get(&m.ng_commands),
    ),
    (
        "ng_errors_total",
        "counter",
        "ng commands answered with an error.",
        |m| get(&m.ng_errors),
    ),
    (
        "event_packets_dropped_total",
        "counter",
        "RFC 4733 event packets taken out of caller audio (live, within a second).",
        |m| m.live.drops().1,
    ),
    (
        "digits_total",
        "counter",
        "Key presses reported on caller audio (live, as they are reported).",
        |m| m.live.digits(0),
    ),
    (
        "security_signals_total",
        "counter",
        "Digits seen towards the caller (live, as they are seen).",
        |m| m.live.digits(1),
    ),
    (
        "plugin_traps_total",
        "counter",
        "Plugin instances that trapped (ended calls).",
        |m| get(&m.plugin_traps),
    ),
    (
        "events_undelivered_total",
        "counter",
        "Signed events the HTTP collector did not take (they are in the events file).",
        |m| get(&m.events_undelivered),
    ),
    (
        "captures_started_total",
        "counter",
        "Card captures started (ended calls).",
        |m| get(&m.captures[0]),
    ),
    (
        "captures_completed_total",
        "counter",
        "Card captures completed: the card sealed to the processor (ended calls).",
        |m| get(&m.captures[1]),
    ),
    (
        "captures_cancelled_total",
        "counter",
        "Card captures cancelled, by the agent or the call's end (ended calls).",
        |m| get(&m.captures[2]),
    ),
    (
        "capture_agent_keys_total",
        "counter",
        "Keys seen on the agent's leg while a capture ran: the fraud signal (ended calls).",
        |m| get(&m.captures[3]),
    ),
];

/// Appends one metric: its help and type lines, then a line per labelled value.
fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, u64)]) {
    out.push_str(&format!(
        "# HELP tonemask_{name} {help}\n# TYPE tonemask_{name} {kind}\n"
    ));
    for (labels, v) in rows {
        out.push_str(&format!("tonemask_{name}{labels} {v}\n"));
    }
}

/// Serves `/metrics` and `/health` on `addr` from a thread of its own (one request at a
/// time: Prometheus scrapes, nothing else).
pub fn serve_http(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = answer(conn, &metrics);
            }
        })?;
    Ok(local)
}

fn answer(mut conn: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    // The whole request head (closing with some of it unread would reset the connection).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request = String::from_utf8_lossy(&head);
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body, kind) = match path {
        "/metrics" => ("200 OK", metrics.render(), "text/plain; version=0.0.4"),
        "/health" => ("200 OK", "ok\n".to_string(), "text/plain"),
        _ => (
            "404 Not Found",
            "not found: try /metrics or /health\n".to_string(),
            "text/plain",
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(response.as_bytes())
}
