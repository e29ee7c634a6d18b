//! The load itself: one tokio task per publisher (and one reading its
//! acknowledgements at QoS 1 and 2), one per subscriber. Publishers encode
//! each batch of PUBLISH packets with the codec into one reusable buffer and
//! stamp each payload in place, so a message costs no allocation; one write
//! per batch. Subscribers decode in place (`decode_slice`, borrowed) and
//! answer QoS 1/2 with one write per read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use mqtt_codec::{decode_slice, Decoded, Packet, Protocol, PubResponse, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::Semaphore;
use tokio::time::{timeout, timeout_at, Instant};

use super::stats::{Histogram, Seen};
use super::wire::{self, STAMP};
use crate::net::Stream;

/// PUBLISH packets encoded per write.
const BATCH: u64 = 64;

/// The counters every task adds to, read by the progress line.
pub struct Shared {
    pub epoch: Instant,
    pub sent: AtomicU64,
    /// Messages stamped, counted before they are written: no real message
    /// carries a number at or above it.
    pub stamped: AtomicU64,
    pub acked: AtomicU64,
    pub received: AtomicU64,
    pub refused: AtomicU64,
    pub errors: AtomicU64,
    /// The first errors, for the report.
    pub first_errors: Mutex<Vec<String>>,
    /// Publishers stop (the duration ended, or the run is interrupted).
    pub stop: AtomicBool,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            epoch: Instant::now(),
            sent: AtomicU64::new(0),
            stamped: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            received: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_errors: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        }
    }
}

impl Shared {
    pub fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.first_errors.lock() {
            if e.len() < 20 {
                e.push(what);
            }
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What one publisher does.
pub struct Publishing {
    pub index: u32,
    pub protocol: Protocol,
    pub qos: QoS,
    pub topic: String,
    pub size: usize,
    /// Messages per second; 0: as fast as the broker takes them.
    pub rate: f64,
    pub count: Option<u64>,
    pub end: Option<Instant>,
    pub inflight: u16,
    /// How long without an acknowledgement before the publisher gives up.
    pub stall: Duration,
}

/// Publishes until its count, its end or `shared.stop`; returns how many
/// it wrote.
pub async fn publisher(
    p: Publishing,
    stream: Stream,
    leftover: BytesMut,
    shared: Arc<Shared>,
) -> u64 {
    let (rd, wr) = tokio::io::split(stream);
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let window = Arc::new(Semaphore::new(usize::from(p.inflight.max(1))));
    let reader = (p.qos != QoS::AtMostOnce).then(|| {
        tokio::spawn(acks(
            rd,
            leftover,
            p.protocol,
            wr.clone(),
            window.clone(),
            shared.clone(),
        ))
    });
    let sent = publish_loop(&p, &wr, &window, &shared).await;
    if let Some(r) = reader {
        // Let the last acknowledgements arrive; the run waits for them.
        let _ = timeout(p.stall, async {
            while window.available_permits() < usize::from(p.inflight.max(1)) && !r.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        r.abort();
    }
    let _ = timeout(Duration::from_secs(1), async {
        let mut w = wr.lock().await;
        let _ = w.write_all(&[0xE0, 0]).await;
        let _ = w.shutdown().await;
    })
    .await;
    sent
}

// One loop with the rate, the window and the batch in it: split, each part
// would need the others' state.
async fn publish_loop(
    p: &Publishing,
    wr: &tokio::sync::Mutex<WriteHalf<Stream>>,
    window: &Semaphore,
    shared: &Shared,
) -> u64 {
    let mut packet = Packet::Publish(Publish {
        qos: p.qos,
        topic: p.topic.as_str().into(),
        payload: Bytes::from(vec![0u8; p.size]),
        ..Publish::default()
    });
    let mut buf = BytesMut::with_capacity((BATCH as usize) * (p.size + p.topic.len() + 16));
    let start = Instant::now();
    let (mut seq, mut id) = (0u64, 0u16);
    loop {
        if shared.stop.load(Ordering::Relaxed) || p.end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        let mut n = BATCH;
        if let Some(c) = p.count {
            n = n.min(c - seq);
            if n == 0 {
                break;
            }
        }
        if p.rate > 0.0 {
            let due = (start.elapsed().as_secs_f64() * p.rate) as u64 + 1;
            if due <= seq {
                let next = start + Duration::from_secs_f64(seq as f64 / p.rate);
                let next = p.end.map_or(next, |e| next.min(e));
                tokio::time::sleep_until(next).await;
                continue;
            }
            n = n.min(due - seq);
        }
        if p.qos != QoS::AtMostOnce {
            // One permit waited for, the rest of the batch only if free.
            match timeout(p.stall, window.acquire()).await {
                Ok(Ok(permit)) => permit.forget(),
                _ => {
                    shared.error(format!(
                        "publisher {}: no acknowledgement for {:?} with {} in flight",
                        p.index, p.stall, p.inflight
                    ));
                    break;
                }
            }
            let mut got = 1;
            while got < n {
                match window.try_acquire() {
                    Ok(permit) => {
                        permit.forget();
                        got += 1;
                    }
                    Err(_) => break,
                }
            }
            n = got;
        }
        let nanos = shared.nanos();
        for _ in 0..n {
            if let Packet::Publish(x) = &mut packet {
                id = id.checked_add(1).unwrap_or(1);
                x.packet_id = id;
            }
            if let Err(e) = mqtt_codec::encode(&packet, p.protocol, &mut buf) {
                shared.error(format!("publisher {}: cannot encode: {e}", p.index));
                return seq;
            }
            let at = buf.len() - p.size;
            wire::stamp(&mut buf[at..], nanos, p.index, seq);
            seq += 1;
        }
        shared.stamped.fetch_add(n, Ordering::Relaxed);
        let written = {
            let mut w = wr.lock().await;
            timeout(p.stall, w.write_all(&buf)).await
        };
        buf.clear();
        match written {
            Ok(Ok(())) => {
                shared.sent.fetch_add(n, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                shared.error(format!("publisher {}: writing failed: {e}", p.index));
                return seq - n;
            }
            Err(_) => {
                shared.error(format!(
                    "publisher {}: the broker took nothing for {:?}",
                    p.index, p.stall
                ));
                return seq - n;
            }
        }
    }
    seq
}

/// A publisher's acknowledgements: each PUBACK or PUBCOMP frees a place in
/// the window; a PUBREC is answered with PUBREL.
async fn acks(
    mut rd: ReadHalf<Stream>,
    mut buf: BytesMut,
    protocol: Protocol,
    wr: Arc<tokio::sync::Mutex<WriteHalf<Stream>>>,
    window: Arc<Semaphore>,
    shared: Arc<Shared>,
) {
    let opts = wire::from_server(protocol);
    let mut out = BytesMut::with_capacity(4096);
    loop {
        let (mut freed, mut refused) = (0u64, 0u64);
        loop {
            let (len, rel) = match decode_slice(&buf, &opts) {
                Ok(Decoded::Packet { packet, len }) => match packet {
                    Packet::PubAck(r) | Packet::PubComp(r) => {
                        freed += 1;
                        refused += u64::from(r.reason_code >= 0x80);
                        (len, None)
                    }
                    Packet::PubRec(r) if r.reason_code >= 0x80 => {
                        freed += 1;
                        refused += 1;
                        (len, None)
                    }
                    Packet::PubRec(r) => (len, Some(r.packet_id)),
                    Packet::Disconnect(d) => {
                        shared.error(format!(
                            "a publisher got DISCONNECT 0x{:02X}",
                            d.reason_code
                        ));
                        return;
                    }
                    _ => (len, None),
                },
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => {
                    shared.error(format!("a publisher got what does not decode: {e}"));
                    return;
                }
            };
            buf.advance(len);
            if let Some(id) = rel {
                let _ =
                    mqtt_codec::encode(&Packet::PubRel(PubResponse::new(id)), protocol, &mut out);
            }
        }
        if freed > 0 {
            window.add_permits(freed as usize);
            shared.acked.fetch_add(freed, Ordering::Relaxed);
            shared.refused.fetch_add(refused, Ordering::Relaxed);
        }
        if !out.is_empty() {
            let mut w = wr.lock().await;
            if w.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                if !shared.stop.load(Ordering::Relaxed) {
                    shared.error("the broker closed a publisher's connection".into());
                }
                return;
            }
            Ok(_) => {}
        }
    }
}

/// What a subscriber saw.
#[derive(Default)]
pub struct Received {
    pub latency: Histogram,
    /// Per publisher.
    pub seen: Vec<Seen>,
    /// Payloads without a stamp of this run.
    pub foreign: u64,
}

/// Reads until `stop` says so (or the connection ends), acknowledging at
/// QoS 1 and 2 and recording every stamped payload.
/// What one subscriber expects.
pub struct Subscribing {
    pub protocol: Protocol,
    pub publishers: usize,
    /// Sequence numbers at or above this are not from this run.
    pub limit: u64,
    /// Every wait ends by then.
    pub deadline: Instant,
}

pub async fn subscriber(
    s: Subscribing,
    mut stream: Stream,
    mut buf: BytesMut,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Received {
    let Subscribing {
        protocol,
        publishers,
        limit,
        deadline,
    } = s;
    let opts = wire::from_server(protocol);
    let mut r = Received {
        seen: vec![Seen::default(); publishers],
        ..Received::default()
    };
    let mut out = BytesMut::with_capacity(4096);
    buf.reserve(64 * 1024);
    loop {
        let now = shared.nanos();
        // A number no publisher has stamped yet is not from this run: the
        // bits kept grow with the real traffic only.
        let limit = limit.min(shared.stamped.load(Ordering::Relaxed));
        let mut got = 0u64;
        loop {
            let (len, answer) = match decode_slice(&buf, &opts) {
                Ok(Decoded::Packet { packet, len }) => match packet {
                    Packet::Publish(p) => {
                        got += 1;
                        match wire::read_stamp(p.payload) {
                            Some((at, pubi, seq))
                                if p.payload.len() >= STAMP
                                    && r.seen
                                        .get_mut(pubi as usize)
                                        .is_some_and(|s| s.mark(seq, limit)) =>
                            {
                                r.latency.record(now.saturating_sub(at));
                            }
                            _ => r.foreign += 1,
                        }
                        let answer = match p.qos {
                            QoS::AtMostOnce => None,
                            QoS::AtLeastOnce => Some(Packet::PubAck(PubResponse::new(p.packet_id))),
                            QoS::ExactlyOnce => Some(Packet::PubRec(PubResponse::new(p.packet_id))),
                        };
                        (len, answer)
                    }
                    Packet::PubRel(x) => {
                        (len, Some(Packet::PubComp(PubResponse::new(x.packet_id))))
                    }
                    Packet::Disconnect(d) => {
                        shared.error(format!(
                            "a subscriber got DISCONNECT 0x{:02X}",
                            d.reason_code
                        ));
                        return r;
                    }
                    _ => (len, None),
                },
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => {
                    shared.error(format!("a subscriber got what does not decode: {e}"));
                    return r;
                }
            };
            buf.advance(len);
            if let Some(a) = answer {
                let _ = mqtt_codec::encode(&a, protocol, &mut out);
            }
        }
        shared.received.fetch_add(got, Ordering::Relaxed);
        if !out.is_empty() {
            if timeout_at(deadline, stream.write_all(&out)).await.is_err() {
                shared.error("a subscriber could not acknowledge in time".into());
                return r;
            }
            out.clear();
        }
        tokio::select! {
            read = timeout_at(deadline, stream.read_buf(&mut buf)) => match read {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    if !*stop.borrow() {
                        shared.error("the broker closed a subscriber's connection".into());
                    }
                    return r;
                }
                Ok(Ok(_)) => {}
                Err(_) => return r,
            },
            _ = stop.changed() => {
                let _ = timeout(Duration::from_secs(1), async {
                    let _ = stream.write_all(&[0xE0, 0]).await;
                    let _ = stream.shutdown().await;
                }).await;
                return r;
            }
        }
    }
}
