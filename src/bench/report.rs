//! The bench's output: the progress line (stderr, every second), the final
//! table and the JSON report.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};

use super::stats::Histogram;
use super::tasks::Shared;
use super::Outcome;

/// `  3 s  sent 120000 (40000/s)  received 119800 (39933/s)  errors 0`.
pub fn progress_line(s: &Shared, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let sent = s.sent.load(Ordering::Relaxed);
    let received = s.received.load(Ordering::Relaxed);
    format!(
        "{:>5.1} s  sent {sent} ({:.0}/s)  acknowledged {}  received {received} ({:.0}/s)  errors {}",
        elapsed.as_secs_f64(),
        sent as f64 / secs,
        s.acked.load(Ordering::Relaxed),
        received as f64 / secs,
        s.errors.load(Ordering::Relaxed)
    )
}

fn ms(nanos: u64) -> f64 {
    (nanos as f64 / 1e4).round() / 100.0
}

fn per_second(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        0.0
    } else {
        (n as f64 / s).round()
    }
}

fn latency(h: &Histogram) -> Value {
    json!({
        "p50": ms(h.quantile(0.5)),
        "p99": ms(h.quantile(0.99)),
        "p999": ms(h.quantile(0.999)),
        "max": ms(h.max),
        "mean": ms(h.mean()),
        "samples": h.count,
    })
}

/// The JSON report (`--json`).
pub fn json(o: &Outcome, exit_status: u8) -> Value {
    let opts = &o.opts;
    json!({
        "target": opts.target.to_string(),
        "tool_version": env!("CARGO_PKG_VERSION"),
        "protocol": opts.protocol.as_str(),
        "qos": opts.qos.as_u8(),
        "publishers": opts.publishers,
        "subscribers": opts.subscribers,
        "idle_connections": opts.connections,
        "topics": opts.topics,
        "payload_size": opts.size,
        "rate_per_publisher": if opts.rate > 0.0 { json!(opts.rate) } else { json!("max") },
        "duration_ms": u64::try_from(o.publish_time.as_millis()).unwrap_or(u64::MAX),
        "connections": {
            "opened": o.connections_opened,
            "failed": o.connections_failed,
            "per_second": per_second(o.connections_opened as u64, o.connect_time),
            "connect_ms": latency(&o.connect_latency),
        },
        "sent": o.sent,
        "acknowledged": o.acked,
        "refused": o.refused,
        "expected": o.expected,
        "received": o.received,
        "lost": o.lost,
        "duplicates": o.duplicates,
        "foreign": o.foreign,
        "throughput": {
            "sent_per_second": per_second(o.sent, o.publish_time),
            "received_per_second": per_second(o.received, o.total_time),
        },
        "latency_ms": latency(&o.latency),
        "errors": { "count": o.errors, "first": o.first_errors },
        "exit_status": exit_status,
    })
}

/// The final table.
pub fn table(o: &Outcome) -> String {
    let opts = &o.opts;
    let rate = if opts.rate > 0.0 {
        format!("{} msg/s each", opts.rate)
    } else {
        "as fast as possible".into()
    };
    let until = match (opts.count, opts.duration) {
        (Some(c), _) => format!("{c} messages each"),
        (None, Some(d)) => format!("{:.1} s", d.as_secs_f64()),
        (None, None) => String::new(),
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "bench of {}: MQTT {}, QoS {}, {} publisher(s) → {} subscriber(s), {} topic(s), {}-byte payloads, {rate}, {until}\n",
        opts.target, opts.protocol, opts.qos.as_u8(), opts.publishers, opts.subscribers, opts.topics, opts.size
    );
    let c = &o.connect_latency;
    let rows: Vec<(&str, String)> = vec![
        (
            "connections",
            format!(
                "{} opened, {} failed, {:.0}/s (connect p50 {} ms, max {} ms)",
                o.connections_opened,
                o.connections_failed,
                per_second(o.connections_opened as u64, o.connect_time),
                ms(c.quantile(0.5)),
                ms(c.max)
            ),
        ),
        (
            "sent",
            format!(
                "{} in {:.2} s ({:.0} msg/s)",
                o.sent,
                o.publish_time.as_secs_f64(),
                per_second(o.sent, o.publish_time)
            ),
        ),
        (
            "acknowledged",
            format!("{} (refused {})", o.acked, o.refused),
        ),
        (
            "received",
            format!(
                "{} of {} expected ({:.0} msg/s)",
                o.received,
                o.expected,
                per_second(o.received, o.total_time)
            ),
        ),
        (
            "lost",
            format!(
                "{}{}",
                o.lost,
                if o.opts.qos.as_u8() == 0 {
                    " (QoS 0: allowed)"
                } else {
                    ""
                }
            ),
        ),
        ("duplicates", o.duplicates.to_string()),
        (
            "latency",
            format!(
                "p50 {} ms  p99 {} ms  p99.9 {} ms  max {} ms  ({} samples)",
                ms(o.latency.quantile(0.5)),
                ms(o.latency.quantile(0.99)),
                ms(o.latency.quantile(0.999)),
                ms(o.latency.max),
                o.latency.count
            ),
        ),
        ("errors", o.errors.to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "  {k:<13} {v}");
    }
    for e in &o.first_errors {
        let _ = writeln!(s, "    {e}");
    }
    s
}
