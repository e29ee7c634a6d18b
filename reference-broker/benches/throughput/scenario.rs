//! One load scenario (fan-in or fan-out, QoS 0 or 1) run once against one
//! broker.
//!
//! Load is closed-loop: publishers may be at most `window` messages ahead of
//! the slowest subscriber, so neither broker is pushed into dropping QoS 0
//! messages or overflowing its queues, and throughput is what the broker
//! sustains rather than what it buffers. QoS 1 publishers also keep at most
//! `inflight` PUBLISH unacknowledged. Latency is the time from the write of a
//! PUBLISH to its decoding by a subscriber (the send time is in the payload).
//!
//! A paced scenario also keeps each publisher to a rate, from what the
//! brokers delivered in the scenario it is paced from: half of the slowest
//! broker's rate, the same load for every broker and at most half of any
//! one's peak; or half of each broker's own rate, the same relative load
//! (at a higher rate the load generator's own share of the two cores, and
//! so of the latency, is larger too).
//!
//! A scenario with a slow subscriber adds one more subscriber that takes
//! at most [`SLOW_READ`] bytes from its socket every [`SLOW_PAUSE`], about
//! 4 MB/s, and that the publishers' window ignores: whether the broker
//! slows the publishers for it (QoS 1, nothing may be lost) or drops QoS 0
//! messages for it, it must keep its connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_codec::{Packet, QoS};
use tokio::sync::{Notify, Semaphore};

use crate::client::{append_puback, now_ns, stamp_of, write, Client, PublishTemplate, Read};

/// No progress for this long ends a run (a dropped message would otherwise
/// keep the window shut for ever).
const STALL: Duration = Duration::from_secs(5);
/// Most PUBLISH written by one publisher in one write.
const BATCH: u64 = 64;
/// What the slow subscriber reads at a time, and how long it then pauses.
const SLOW_READ: usize = 4096;
const SLOW_PAUSE: Duration = Duration::from_millis(1);
/// After the publishers are done, this long without a message means the
/// slow subscriber has had all it will get.
const QUIET: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// Short form for client ids and topics.
    pub slug: String,
    pub qos: QoS,
    pub publishers: usize,
    pub subscribers: usize,
    pub per_publisher: u64,
    /// Messages published but not yet delivered to every subscriber.
    pub window: u64,
    /// QoS 1 PUBLISH a publisher keeps unacknowledged.
    pub inflight: u64,
    pub payload: usize,
    /// Clients connected during the run, each subscribed to a topic nobody
    /// publishes to.
    pub bystanders: usize,
    /// Subscribers keep their sessions (clean session 0), which a broker
    /// with `--persist` writes to disk.
    pub persistent: bool,
    /// Offline sessions, each holding [`HELD_EACH`] QoS 1 messages, made
    /// before the first run: the state a persisting broker carries.
    pub held_sessions: usize,
    /// Run on our brokers only (it compares them with each other).
    pub ours_only: bool,
    /// Deliveries per second the publishers keep to, all together, when
    /// paced (set per broker from `paced_from`); `None`: as fast as the
    /// windows allow.
    pub rate: Option<f64>,
    /// The scenario (slug) whose median rates pace this one, and how.
    pub paced_from: Option<(String, Pace)>,
    /// One more subscriber, reading slowly (see the module's documentation).
    pub slow: bool,
}

/// Which median of the scenario paced from a paced one halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// The slowest broker's: one rate for all.
    Slowest,
    /// Each broker's own.
    Own,
}

/// Messages each held session keeps (see [`Scenario::held_sessions`]).
pub const HELD_EACH: u16 = 10;

impl Scenario {
    /// Deliveries a complete run makes (messages × subscribers).
    pub fn expected(&self) -> u64 {
        self.per_publisher * self.publishers as u64 * self.subscribers as u64
    }
}

pub struct RunStats {
    pub deliveries: u64,
    pub expected: u64,
    pub elapsed: Duration,
    /// One per delivery, nanoseconds.
    pub latencies: Vec<u64>,
    /// Why the run is incomplete, if it is.
    pub problem: Option<String>,
    /// CPU time the broker process used during the run.
    pub broker_cpu: Duration,
    /// The rate it was paced to, deliveries per second.
    pub offered: Option<f64>,
    /// What the slow subscriber got, when there was one.
    pub slow: Option<SlowOutcome>,
}

/// The slow subscriber's run.
#[derive(Debug, Clone, Copy)]
pub struct SlowOutcome {
    pub received: u64,
    pub sent: u64,
    /// It still had its connection at the end (a PINGREQ was answered).
    pub connected: bool,
    /// The broker's resident set after the run (what it buffered).
    pub broker_rss: Option<u64>,
}

impl RunStats {
    pub fn rate(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The shared end-to-end window.
struct Flow {
    window: u64,
    /// Messages reserved for sending, all publishers together.
    sent: AtomicU64,
    /// Messages each subscriber has received.
    received: Vec<AtomicU64>,
    /// The least of `received`.
    progress: AtomicU64,
    wake: Notify,
}

impl Flow {
    fn delivered(&self, subscriber: usize, count: u64) {
        self.received[subscriber].store(count, Ordering::Release);
        let least = self
            .received
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        self.progress.fetch_max(least, Ordering::AcqRel);
        self.wake.notify_waiters();
    }

    /// Takes up to `want` messages of the window, at least one, waiting for
    /// subscribers to catch up; `None` if they make no progress in time.
    async fn reserve(&self, want: u64) -> Option<u64> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let sent = self.sent.load(Ordering::Acquire);
            let room = (self.progress.load(Ordering::Acquire) + self.window).saturating_sub(sent);
            if room > 0 {
                let k = room.min(want);
                if self
                    .sent
                    .compare_exchange(sent, sent + k, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return Some(k);
                }
                continue;
            }
            tokio::time::timeout(STALL, notified).await.ok()?;
        }
    }
}

struct SubscriberResult {
    count: u64,
    last: Instant,
    latencies: Vec<u64>,
    problem: Option<String>,
}

/// Receives until `expected` messages came or the flow stalls; acknowledges QoS 1.
async fn subscriber(
    mut client: Client,
    index: usize,
    expected: u64,
    flow: Arc<Flow>,
) -> (Client, SubscriberResult) {
    let mut result = SubscriberResult {
        count: 0,
        last: Instant::now(),
        latencies: Vec::with_capacity(usize::try_from(expected).unwrap_or(0)),
        problem: None,
    };
    let mut batch = Vec::with_capacity(256);
    let mut acks = Vec::with_capacity(4096);
    while result.count < expected {
        batch.clear();
        match client
            .reader
            .read_batch(&mut batch, Instant::now() + STALL)
            .await
        {
            Ok(Read::Packets) => {}
            Ok(Read::Closed) => {
                result.problem = Some(format!("subscriber {index}: broker closed the connection"));
                break;
            }
            Ok(Read::TimedOut) => {
                result.problem = Some(format!("subscriber {index}: nothing for {STALL:?}"));
                break;
            }
            Err(e) => {
                result.problem = Some(format!("subscriber {index}: {e}"));
                break;
            }
        }
        let now = now_ns();
        for p in batch.drain(..) {
            match p {
                Packet::Publish(p) => {
                    result.count += 1;
                    if let Some(sent) = stamp_of(&p.payload) {
                        result.latencies.push(now.saturating_sub(sent));
                    }
                    if p.qos == QoS::AtLeastOnce {
                        append_puback(&mut acks, p.packet_id);
                    }
                }
                other => {
                    result.problem = Some(format!("subscriber {index}: unexpected {other:?}"));
                }
            }
        }
        result.last = Instant::now();
        if !acks.is_empty() {
            if let Err(e) = write(&mut client.writer, &acks, Instant::now() + STALL).await {
                result.problem = Some(format!("subscriber {index}: {e}"));
                break;
            }
            acks.clear();
        }
        flow.delivered(index, result.count);
    }
    (client, result)
}

/// The slow subscriber: reads [`SLOW_READ`] bytes at a time, pausing
/// [`SLOW_PAUSE`] after each, until it has every message, or the
/// publishers are done and nothing more comes for [`QUIET`]; then asks,
/// with a PINGREQ, whether it still has its connection.
async fn slow_subscriber(
    mut client: Client,
    expected: u64,
    qos1: bool,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> (Option<Client>, SlowOutcome, Option<String>) {
    client.reader.max_read = Some(SLOW_READ);
    let mut out = SlowOutcome {
        received: 0,
        sent: expected,
        connected: true,
        broker_rss: None,
    };
    let mut batch = Vec::with_capacity(256);
    let mut acks = Vec::new();
    let mut last = Instant::now();
    while out.received < expected {
        batch.clear();
        let finished = done.load(Ordering::Acquire);
        let wait = if finished {
            QUIET
        } else {
            Duration::from_millis(100)
        };
        match client
            .reader
            .read_batch(&mut batch, Instant::now() + wait)
            .await
        {
            Ok(Read::Packets) => last = Instant::now(),
            Ok(Read::TimedOut) if finished => break,
            Ok(Read::TimedOut) if last.elapsed() < STALL => continue,
            Ok(Read::TimedOut) => {
                return (
                    Some(client),
                    out,
                    Some(format!("slow subscriber: nothing for {STALL:?}")),
                )
            }
            Ok(Read::Closed) => {
                out.connected = false;
                return (
                    None,
                    out,
                    Some("slow subscriber: broker closed the connection".into()),
                );
            }
            Err(e) => {
                out.connected = false;
                return (None, out, Some(format!("slow subscriber: {e}")));
            }
        }
        for p in batch.drain(..) {
            if let Packet::Publish(p) = p {
                out.received += 1;
                if p.qos == QoS::AtLeastOnce {
                    append_puback(&mut acks, p.packet_id);
                }
            }
        }
        if !acks.is_empty() {
            if let Err(e) = write(&mut client.writer, &acks, Instant::now() + STALL).await {
                out.connected = false;
                return (None, out, Some(format!("slow subscriber: {e}")));
            }
            acks.clear();
        }
        tokio::time::sleep(SLOW_PAUSE).await;
    }
    // Still connected? Anything but the PINGRESP is a message it was late for.
    client.reader.max_read = None;
    let deadline = Instant::now() + STALL;
    if let Err(e) = write(&mut client.writer, &[0xC0, 0x00], deadline).await {
        out.connected = false;
        return (None, out, Some(format!("slow subscriber: {e}")));
    }
    let mut answered = false;
    while !answered {
        batch.clear();
        match client.reader.read_batch(&mut batch, deadline).await {
            Ok(Read::Packets) => {
                for p in batch.drain(..) {
                    match p {
                        Packet::PingResp => answered = true,
                        Packet::Publish(_) => out.received += 1,
                        _ => {}
                    }
                }
            }
            _ => {
                out.connected = false;
                let problem = "slow subscriber: no PINGRESP, the connection is gone";
                return (None, out, Some(problem.into()));
            }
        }
    }
    let problem = (qos1 && out.received < expected).then(|| {
        format!(
            "slow subscriber: {} of {expected} QoS 1 messages",
            out.received
        )
    });
    (Some(client), out, problem)
}

/// Publishes `count` messages, pipelined within the windows.
async fn publisher(
    client: Client,
    sc: Arc<Scenario>,
    topic: String,
    flow: Arc<Flow>,
) -> (Option<Client>, Result<(), String>) {
    let Client {
        mut reader,
        mut writer,
    } = client;
    let count = sc.per_publisher;
    let qos1 = sc.qos == QoS::AtLeastOnce;
    let template = PublishTemplate::new(&topic, sc.qos, sc.payload);
    let permits = Arc::new(Semaphore::new(
        usize::try_from(sc.inflight).unwrap_or(usize::MAX),
    ));
    // QoS 1: a reader task gives back one permit per PUBACK. QoS 0 has
    // nothing to read, so the reader stays here for DISCONNECT.
    let mut acker = None;
    let mut idle_reader = None;
    if qos1 {
        let permits = permits.clone();
        acker = Some(tokio::spawn(async move {
            let mut acked = 0;
            let mut batch = Vec::with_capacity(256);
            while acked < count {
                batch.clear();
                match reader
                    .read_batch(&mut batch, Instant::now() + STALL)
                    .await?
                {
                    Read::Packets => {}
                    Read::Closed => {
                        return Err("publisher: broker closed the connection".to_string())
                    }
                    Read::TimedOut => {
                        return Err(format!(
                            "publisher: {acked} of {count} PUBACKs, then nothing for {STALL:?}"
                        ))
                    }
                }
                for p in batch.drain(..) {
                    match p {
                        Packet::PubAck(_) => {
                            acked += 1;
                            permits.add_permits(1);
                        }
                        other => return Err(format!("publisher: unexpected {other:?}")),
                    }
                }
            }
            Ok(reader)
        }));
    } else {
        idle_reader = Some(reader);
    }
    let mut buf = Vec::with_capacity(template.encoded_len() * BATCH as usize);
    let mut next_id: u16 = 1;
    let mut sent = 0;
    // Paced: messages per second of this publisher (deliveries divided by
    // the subscribers each message goes to and by the publishers).
    let pace = sc
        .rate
        .map(|r| r / (sc.subscribers.max(1) * sc.publishers.max(1)) as f64)
        .filter(|r| *r > 0.0);
    let started = Instant::now();
    let outcome: Result<(), String> = async {
        while sent < count {
            let mut want = (count - sent).min(BATCH);
            if let Some(per_second) = pace {
                // What is due by now; none: wait for the next one's time.
                let due = (started.elapsed().as_secs_f64() * per_second) as u64;
                if due <= sent {
                    let next = Duration::from_secs_f64((sent + 1) as f64 / per_second);
                    tokio::time::sleep_until((started + next).into()).await;
                    continue;
                }
                want = want.min(due - sent);
            }
            if qos1 {
                let first = tokio::time::timeout(STALL, permits.acquire())
                    .await
                    .map_err(|_| format!("publisher: no PUBACK for {STALL:?}"))?
                    .map_err(|e| e.to_string())?;
                first.forget();
                let mut got = 1;
                while got < want {
                    match permits.try_acquire() {
                        Ok(p) => {
                            p.forget();
                            got += 1;
                        }
                        Err(_) => break,
                    }
                }
                want = got;
            }
            let Some(k) = flow.reserve(want).await else {
                return Err(format!(
                    "publisher: subscribers made no progress for {STALL:?}"
                ));
            };
            if qos1 && k < want {
                permits.add_permits(usize::try_from(want - k).unwrap_or(0));
            }
            buf.clear();
            let stamp = now_ns();
            for _ in 0..k {
                template.append(&mut buf, next_id, stamp);
                next_id = next_id.checked_add(1).unwrap_or(1);
            }
            write(&mut writer, &buf, Instant::now() + STALL).await?;
            sent += k;
        }
        Ok(())
    }
    .await;
    let reader = match acker {
        Some(task) => match tokio::time::timeout(STALL, task).await {
            Ok(Ok(Ok(reader))) => Some(reader),
            Ok(Ok(Err(e))) => return (None, outcome.and(Err(e))),
            Ok(Err(e)) => return (None, outcome.and(Err(format!("publisher reader: {e}")))),
            Err(_) => {
                return (
                    None,
                    outcome.and(Err(format!("publisher: PUBACKs missing after {STALL:?}"))),
                )
            }
        },
        None => idle_reader,
    };
    (reader.map(|reader| Client { reader, writer }), outcome)
}

/// Runs `sc` once against the broker at `addr`.
pub async fn run_once(addr: SocketAddr, sc: &Scenario, run: usize) -> Result<RunStats, String> {
    let sc = Arc::new(sc.clone());
    let tag = format!("{}-{}-{run}", std::process::id(), sc.slug);
    let topic = format!("bench/{tag}");
    if run == 0 && sc.held_sessions > 0 {
        hold_sessions(addr, sc.held_sessions).await?;
    }
    let bystanders = connect_bystanders(addr, sc.bystanders, &tag).await?;
    let mut subs = Vec::with_capacity(sc.subscribers);
    for i in 0..sc.subscribers {
        let id = format!("s{i}-{tag}");
        let mut c = Client::connect_session(addr, &id, !sc.persistent).await?;
        c.subscribe(&topic, sc.qos).await?;
        subs.push(c);
    }
    let slow = match sc.slow {
        true => {
            let mut c = Client::connect(addr, &format!("slow-{tag}")).await?;
            c.subscribe(&topic, sc.qos).await?;
            Some(c)
        }
        false => None,
    };
    let mut pubs = Vec::with_capacity(sc.publishers);
    for i in 0..sc.publishers {
        pubs.push(Client::connect(addr, &format!("p{i}-{tag}")).await?);
    }
    let flow = Arc::new(Flow {
        window: sc.window,
        sent: AtomicU64::new(0),
        received: (0..sc.subscribers).map(|_| AtomicU64::new(0)).collect(),
        progress: AtomicU64::new(0),
        wake: Notify::new(),
    });
    let per_subscriber = sc.per_publisher * sc.publishers as u64;
    let start = Instant::now();
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(subscriber(c, i, per_subscriber, flow.clone())))
        .collect();
    let pub_tasks: Vec<_> = pubs
        .into_iter()
        .map(|c| tokio::spawn(publisher(c, sc.clone(), topic.clone(), flow.clone())))
        .collect();
    let published = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow_task = slow.map(|c| {
        let qos1 = sc.qos == QoS::AtLeastOnce;
        tokio::spawn(slow_subscriber(c, per_subscriber, qos1, published.clone()))
    });

    let mut problem = None;
    let mut clients = Vec::new();
    for t in pub_tasks {
        match t.await {
            Ok((client, outcome)) => {
                clients.extend(client);
                if let Err(e) = outcome {
                    problem.get_or_insert(e);
                }
            }
            Err(e) => {
                problem.get_or_insert(format!("publisher task: {e}"));
            }
        }
    }
    published.store(true, Ordering::Release);
    let mut stats = RunStats {
        deliveries: 0,
        expected: sc.expected(),
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(usize::try_from(sc.expected()).unwrap_or(0)),
        problem: None,
        broker_cpu: Duration::ZERO,
        offered: sc.rate,
        slow: None,
    };
    let mut last = start;
    for t in sub_tasks {
        match t.await {
            Ok((client, r)) => {
                clients.push(client);
                stats.deliveries += r.count;
                last = last.max(r.last);
                stats.latencies.extend(r.latencies);
                if let Some(p) = r.problem {
                    problem.get_or_insert(p);
                }
            }
            Err(e) => {
                problem.get_or_insert(format!("subscriber task: {e}"));
            }
        }
    }
    stats.elapsed = last - start;
    if let Some(task) = slow_task {
        match task.await {
            Ok((client, outcome, p)) => {
                clients.extend(client);
                stats.slow = Some(outcome);
                if let Some(p) = p {
                    problem.get_or_insert(p);
                }
            }
            Err(e) => {
                problem.get_or_insert(format!("slow subscriber task: {e}"));
            }
        }
    }
    stats.problem = problem;
    for c in clients.into_iter().chain(bystanders) {
        c.disconnect().await;
    }
    Ok(stats)
}

/// `n` offline sessions `held{i}`, subscribed at QoS 1 to `held/{i}`,
/// each then sent [`HELD_EACH`] QoS 1 messages, every one acknowledged.
async fn hold_sessions(addr: SocketAddr, n: usize) -> Result<(), String> {
    for i in 0..n {
        let mut c = Client::connect_session(addr, &format!("held{i}"), false).await?;
        c.subscribe(&format!("held/{i}"), QoS::AtLeastOnce).await?;
        c.disconnect().await;
    }
    let mut publisher = Client::connect(addr, "held-publisher").await?;
    for i in 0..n {
        let template = PublishTemplate::new(&format!("held/{i}"), QoS::AtLeastOnce, 64);
        let mut out = Vec::new();
        for id in 1..=HELD_EACH {
            template.append(&mut out, id, now_ns());
        }
        let deadline = Instant::now() + STALL;
        write(&mut publisher.writer, &out, deadline).await?;
        let mut acked = 0;
        while acked < usize::from(HELD_EACH) {
            let mut acks = Vec::new();
            match publisher.reader.read_batch(&mut acks, deadline).await? {
                Read::Packets => acked += acks.len(),
                _ => return Err(format!("held/{i}: PUBACKs missing")),
            }
            if let Some(other) = acks.iter().find(|p| !matches!(p, Packet::PubAck(_))) {
                return Err(format!("held/{i}: PUBLISH answered with {other:?}"));
            }
        }
    }
    publisher.disconnect().await;
    Ok(())
}

/// `n` clients subscribed to `idle/{i}/{tag}`, connected 50 at a time.
async fn connect_bystanders(addr: SocketAddr, n: usize, tag: &str) -> Result<Vec<Client>, String> {
    let mut clients = Vec::with_capacity(n);
    let mut next = 0;
    while next < n {
        let chunk: Vec<_> = (next..n.min(next + 50))
            .map(|i| {
                let tag = tag.to_string();
                tokio::spawn(async move {
                    let mut c = Client::connect(addr, &format!("x{i}-{tag}")).await?;
                    c.subscribe(&format!("idle/{i}/{tag}"), QoS::AtMostOnce)
                        .await?;
                    Ok::<_, String>(c)
                })
            })
            .collect();
        next += chunk.len();
        for t in chunk {
            clients.push(t.await.map_err(|e| format!("bystander task: {e}"))??);
        }
    }
    Ok(clients)
}
