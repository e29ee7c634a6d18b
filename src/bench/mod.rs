//! `mqtt-harness bench`: load on a broker and what it did with it:
//! throughput, latency percentiles from timestamps in the payloads,
//! connection rate, errors, and lost and duplicated messages.
//!
//! - [`wire`]: the handshakes on a raw stream, and the payload stamp;
//! - [`tasks`]: the publisher and subscriber tasks (batched, allocation-free);
//! - [`stats`]: the latency histogram and the per-publisher sequence bits;
//! - [`report`]: the progress line, the final table and the JSON.
//!
//! The run: subscribers connect and subscribe to every topic, idle
//! connections are opened, publishers connect; then every publisher starts
//! at once and publishes (at `rate` each, or as fast as the broker takes)
//! until its count or the duration; the run waits (up to `drain`) for the
//! acknowledgements and deliveries, then stops the subscribers and counts.

pub mod report;
pub mod stats;
pub mod tasks;
pub mod wire;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mqtt_codec::{Connect, Protocol, QoS};
use tokio::time::Instant;

use crate::net::Target;
use stats::Histogram;
use tasks::{Publishing, Received, Shared};

/// What load to make.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub protocol: Protocol,
    pub qos: QoS,
    pub publishers: usize,
    pub subscribers: usize,
    /// Connections opened besides publishers and subscribers, idle.
    pub connections: usize,
    pub topics: usize,
    /// Messages per second per publisher; 0: as fast as possible.
    pub rate: f64,
    /// Payload bytes (at least the stamp's 20).
    pub size: usize,
    pub duration: Option<Duration>,
    /// Messages per publisher.
    pub count: Option<u64>,
    /// QoS 1/2 messages unacknowledged per publisher.
    pub inflight: u16,
    /// Deadline of each connection handshake and of a stalled write.
    pub timeout: Duration,
    /// How long to wait for the last deliveries after publishing ends.
    pub drain: Duration,
    /// Connection handshakes at once.
    pub connect_parallel: usize,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// What happened.
pub struct Outcome {
    pub opts: Options,
    pub connections_opened: usize,
    pub connections_failed: usize,
    pub connect_time: Duration,
    pub connect_latency: Histogram,
    pub sent: u64,
    pub acked: u64,
    pub refused: u64,
    pub expected: u64,
    pub received: u64,
    pub unique: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub foreign: u64,
    pub latency: Histogram,
    /// From the first PUBLISH written to the last one.
    pub publish_time: Duration,
    /// From the first PUBLISH written to the last delivery counted.
    pub total_time: Duration,
    pub errors: u64,
    pub first_errors: Vec<String>,
}

impl Outcome {
    /// The run failed: messages lost at QoS 1/2, duplicated at QoS 2,
    /// refused, or errors (a failed connection, a close).
    pub fn failed(&self) -> bool {
        let lost = self.opts.qos != QoS::AtMostOnce && self.lost > 0;
        let dup = self.opts.qos == QoS::ExactlyOnce && self.duplicates > 0;
        lost || dup || self.refused > 0 || self.errors > 0 || self.connections_failed > 0
    }
}

fn connect_packet(opts: &Options, id: String) -> Connect {
    let mut c = Connect::new(opts.protocol, id);
    // No keep-alive traffic to make: the run is the traffic.
    c.keep_alive = 0;
    c.username = opts.username.as_deref().map(Into::into);
    c.password = opts
        .password
        .as_deref()
        .map(|p| bytes::Bytes::copy_from_slice(p.as_bytes()));
    c
}

/// Opens `n` connections, `connect_parallel` at once; each result with its
/// handshake time.
async fn open_many(
    opts: &Options,
    prefix: &str,
    n: usize,
) -> Vec<(Result<wire::Opened, String>, Duration)> {
    let gate = Arc::new(tokio::sync::Semaphore::new(opts.connect_parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (gate, target) = (gate.clone(), opts.target.clone());
        let connect = connect_packet(opts, format!("{prefix}{i}"));
        let timeout = opts.timeout;
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let t = Instant::now();
            let r = wire::connect(&target, connect, timeout).await;
            (i, r, t.elapsed())
        });
    }
    let mut out: Vec<_> = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            out.push(r);
        }
    }
    out.sort_by_key(|r| r.0);
    out.into_iter().map(|(_, r, t)| (r, t)).collect()
}

/// Runs the load; `progress` is called about every second with the counters.
pub async fn run(opts: Options, mut progress: impl FnMut(&Shared, Duration)) -> Outcome {
    let shared = Arc::new(Shared::default());
    let nonce = format!(
        "{:x}",
        std::process::id() ^ (shared.epoch.elapsed().subsec_nanos())
    );
    let topics: Vec<String> = (0..opts.topics.max(1))
        .map(|i| format!("mqtt-harness/bench/{nonce}/{i}"))
        .collect();
    let mut conns = Connecting::default();
    let connecting = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let subs = start_subscribers(&opts, &nonce, &topics, &shared, &stop_rx, &mut conns).await;
    let mut idle = Vec::new();
    for (r, t) in open_many(&opts, &format!("mhb{nonce}c"), opts.connections).await {
        conns.note(&r, t, "a connection could not open", &shared);
        idle.extend(r.ok());
    }
    let pubs_open = open_many(&opts, &format!("mhb{nonce}p"), opts.publishers).await;
    for (r, t) in &pubs_open {
        conns.note(r, *t, "a publisher could not connect", &shared);
    }
    let connect_time = connecting.elapsed();

    let started = Instant::now();
    let end = opts.duration.map(|d| started + d);
    let mut pubs = Vec::new();
    for (i, (r, _)) in pubs_open.into_iter().enumerate() {
        let Ok((session, receive_maximum)) = r else {
            continue;
        };
        let (stream, buf) = match wire::stream(session) {
            Ok(s) => s,
            Err(e) => {
                shared.error(format!("a publisher could not start: {e}"));
                continue;
            }
        };
        let p = Publishing {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            protocol: opts.protocol,
            qos: opts.qos,
            topic: topics[i % topics.len()].clone(),
            size: opts.size,
            rate: opts.rate,
            count: opts.count,
            end,
            // MQTT-3.3.4-9: no more unacknowledged than the broker's Receive Maximum.
            inflight: opts.inflight.min(receive_maximum),
            stall: opts.timeout.max(Duration::from_secs(1)),
        };
        pubs.push(tokio::spawn(tasks::publisher(
            p,
            stream,
            buf,
            shared.clone(),
        )));
    }
    let subscribed = subs.len() as u64;
    let mut sent_by = vec![0u64; opts.publishers];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let publishing = async {
        let mut out = Vec::new();
        for p in pubs.iter_mut() {
            out.push(p.await.unwrap_or(0));
        }
        out
    };
    tokio::pin!(publishing);
    let by = loop {
        tokio::select! {
            by = &mut publishing => break by,
            _ = tick.tick() => progress(&shared, started.elapsed()),
        }
    };
    let publish_time = started.elapsed();
    for (slot, n) in sent_by.iter_mut().zip(by) {
        *slot = n;
    }
    let sent: u64 = sent_by.iter().sum();
    let expected = sent * subscribed;
    wait_for_deliveries(&shared, expected, opts.drain, &mut tick, || {
        progress(&shared, started.elapsed())
    })
    .await;
    let total_time = started.elapsed();
    // The last line says where the run ended, however short it was.
    progress(&shared, total_time);
    shared.stop.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let mut received = Vec::with_capacity(subs.len());
    for s in subs {
        received.push(s.await.unwrap_or_default());
    }
    let Tally {
        latency,
        unique,
        duplicates,
        foreign,
        lost,
    } = tally(&received, &sent_by);
    drop(idle);
    let first_errors = shared
        .first_errors
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    Outcome {
        connections_opened: conns.opened,
        connections_failed: conns.failed,
        connect_time,
        connect_latency: conns.latency,
        sent,
        acked: shared.acked.load(Ordering::Relaxed),
        refused: shared.refused.load(Ordering::Relaxed),
        expected,
        received: shared.received.load(Ordering::Relaxed),
        unique,
        lost,
        duplicates,
        foreign,
        latency,
        publish_time,
        total_time,
        errors: shared.errors.load(Ordering::Relaxed),
        first_errors,
        opts,
    }
}

/// Until every expected delivery came, or `drain` passed without a new one.
async fn wait_for_deliveries(
    shared: &Shared,
    expected: u64,
    drain: Duration,
    tick: &mut tokio::time::Interval,
    mut progress: impl FnMut(),
) {
    let mut last = (shared.received.load(Ordering::Relaxed), Instant::now());
    loop {
        let now_received = shared.received.load(Ordering::Relaxed);
        if now_received >= expected {
            return;
        }
        if now_received != last.0 {
            last = (now_received, Instant::now());
        } else if last.1.elapsed() >= drain {
            return;
        }
        // A poll of the counters, bounded by `drain`.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = tick.tick() => progress(),
        }
    }
}

/// What the subscribers saw, summed.
struct Tally {
    latency: Histogram,
    unique: u64,
    duplicates: u64,
    foreign: u64,
    lost: u64,
}

/// Sums the subscribers' records: a message publisher `i` wrote and a
/// subscriber never got is lost for that subscriber.
fn tally(received: &[Received], sent_by: &[u64]) -> Tally {
    let mut t = Tally {
        latency: Histogram::default(),
        unique: 0,
        duplicates: 0,
        foreign: 0,
        lost: 0,
    };
    for r in received {
        t.latency.merge(&r.latency);
        t.foreign += r.foreign;
        for (i, n) in sent_by.iter().enumerate() {
            let (unique, dups) = r.seen.get(i).map_or((0, 0), |s| (s.unique, s.duplicates));
            t.unique += unique;
            t.duplicates += dups;
            t.lost += n.saturating_sub(unique);
        }
    }
    t
}

/// The connections opened so far and how long each handshake took.
#[derive(Default)]
struct Connecting {
    latency: Histogram,
    opened: usize,
    failed: usize,
}

impl Connecting {
    fn note(&mut self, r: &Result<wire::Opened, String>, t: Duration, what: &str, shared: &Shared) {
        self.latency
            .record(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        match r {
            Ok(_) => self.opened += 1,
            Err(e) => {
                self.failed += 1;
                shared.error(format!("{what}: {e}"));
            }
        }
    }
}

/// Connects the subscribers, subscribes each to every topic, and starts
/// their tasks (reading until `stop`).
async fn start_subscribers(
    opts: &Options,
    nonce: &str,
    topics: &[String],
    shared: &Arc<Shared>,
    stop: &tokio::sync::watch::Receiver<bool>,
    conns: &mut Connecting,
) -> Vec<tokio::task::JoinHandle<Received>> {
    let limit = opts.count.unwrap_or(1 << 28);
    // Every wait of a subscriber ends by this at the latest.
    let bound =
        opts.duration.unwrap_or(Duration::from_secs(24 * 3600)) + opts.drain * 2 + opts.timeout * 4;
    let mut subs = Vec::new();
    for (r, t) in open_many(opts, &format!("mhb{nonce}s"), opts.subscribers).await {
        conns.note(&r, t, "a subscriber could not connect", shared);
        let Ok((mut session, _)) = r else {
            continue;
        };
        let subscribed = wire::subscribe(&mut session, topics, opts.qos).await;
        match subscribed.and_then(|()| wire::stream(session)) {
            Ok((stream, buf)) => {
                let s = tasks::Subscribing {
                    protocol: opts.protocol,
                    publishers: opts.publishers,
                    limit,
                    deadline: Instant::now() + bound,
                };
                subs.push(tokio::spawn(tasks::subscriber(
                    s,
                    stream,
                    buf,
                    shared.clone(),
                    stop.clone(),
                )));
            }
            Err(e) => shared.error(format!("a subscriber could not subscribe: {e}")),
        }
    }
    subs
}
