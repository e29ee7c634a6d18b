//! The tokio layer: sockets, the clock, and the dispatch of the core's actions.
//!
//! One task reads each connection and feeds decoded packets to the core; one
//! task writes each connection from its [`Outbox`]; one task runs the
//! core's timers. The core sits behind a single `std::sync::Mutex`: every
//! critical section is a synchronous call into it plus the dispatch of its
//! actions, never an await.
//!
//! Backpressure: while the core says a connection is [`Broker::paused`] (a
//! session its messages go to is full), its reader holds back every packet
//! but acknowledgements and pings, up to [`HELD_PACKETS`], and then stops
//! reading the socket, so that TCP slows the publisher; the core's
//! [`Broker::poll_resumed`] wakes it to hand over what it held.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use mqtt_codec::{decode::frame_len, DecodeOptions, Decoder, Packet, Protocol, Sender};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::broker::{Action, Broker, ConnId, Counters, OnError};
use crate::config::Config;
use crate::outbox::{Outbox, PushError};

pub mod persist;
mod prehash;

/// Packets a paused connection's reader holds before it stops reading.
const HELD_PACKETS: usize = 64;
/// Read buffer of a connection that has not needed more.
const IDLE_READ_BUFFER: usize = 512;
/// Deadline for flushing what is queued when a connection is closed.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// The way to one connection's writer task.
struct Outbound {
    outbox: Arc<Outbox>,
    /// Wakes the connection's reader when the connection is to end: closed by
    /// the core, dropped for reading too slowly, or its writer gone.
    gone: Arc<Notify>,
    /// Wakes the connection's reader when the core no longer pauses it.
    resume: Arc<Notify>,
    /// QoS 0 messages are being dropped for it (one log line per burst).
    dropping: bool,
}

struct State {
    broker: Broker,
    outbound: HashMap<ConnId, Outbound>,
    /// `--persist`: where and when the core's state is written.
    persist: Option<persist::Persister>,
    /// Bytes pending towards one connection beyond which QoS 0 messages are dropped.
    outbound_limit: usize,
    /// QoS 0 messages dropped for connections over that limit.
    dropped_outbound: u64,
    /// The core's counters, published when they change so that a test or
    /// a metrics reader can wait for a count.
    counters: tokio::sync::watch::Sender<Counters>,
}

/// The broker shared by all connection tasks.
pub struct Shared {
    state: Mutex<State>,
    timers: Notify,
    /// The number of open connections, published on every open and close,
    /// so that a test or a metrics reader can wait for a count.
    count: tokio::sync::watch::Sender<usize>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                outbound_limit: config.max_outbound_bytes,
                broker: Broker::new(config),
                outbound: HashMap::new(),
                persist: None,
                dropped_outbound: 0,
                counters: tokio::sync::watch::Sender::new(Counters::default()),
            }),
            timers: Notify::new(),
            count: tokio::sync::watch::Sender::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would leave the core inconsistent;
        // the core does not panic, so recover the guard rather than cascade.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time a new connection has to complete its handshakes and send CONNECT.
    pub fn connect_timeout(&self) -> Duration {
        self.lock().broker.config().connect_timeout
    }

    /// Number of open connections (for tests and metrics).
    /// The WebSocket statements its listeners break on purpose
    /// (MQTT-6.0.0-1, -2, -4 among the configured violations).
    pub fn ws_faults(&self) -> mqtt_net::ws::WsFaults {
        let st = self.lock();
        let v = &st.broker.config().violations;
        mqtt_net::ws::WsFaults {
            text_as_binary: v.breaks("MQTT-6.0.0-1"),
            frames_are_packets: v.breaks("MQTT-6.0.0-2"),
            no_subprotocol: v.breaks("MQTT-6.0.0-4"),
        }
    }

    pub fn connections(&self) -> usize {
        self.lock().broker.connection_count()
    }

    /// The core's flow-control counters (for tests and metrics).
    pub fn counters(&self) -> Counters {
        self.lock().broker.counters()
    }

    /// Waits until the core's counters satisfy `what`, or `within` passes;
    /// returns whether they did.
    pub async fn counters_reach(&self, within: Duration, what: impl Fn(&Counters) -> bool) -> bool {
        let mut rx = self.lock().counters.subscribe();
        tokio::time::timeout(within, rx.wait_for(what))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// QoS 0 messages dropped because a connection had more than
    /// `max_outbound_bytes` waiting to be written (for tests and metrics).
    pub fn dropped_outbound(&self) -> u64 {
        self.lock().dropped_outbound
    }

    /// Stops the broker's side of every connection (see [`Broker::shutdown`])
    /// and waits, up to `within`, for their tasks to close the sockets;
    /// returns whether all closed in time. Connections opened afterwards are
    /// refused.
    pub async fn close_all(&self, within: Duration) -> bool {
        {
            let mut st = self.lock();
            st.broker.shutdown(Instant::now().into_std());
            st.dispatch();
        }
        self.timers.notify_one();
        self.connections_become(0, within).await
    }

    /// Waits until exactly `n` connections are open, or `within` passes;
    /// returns whether the count was reached.
    pub async fn connections_become(&self, n: usize, within: Duration) -> bool {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(within, rx.wait_for(|&c| c == n))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl State {
    /// Carries out the core's actions: encode and queue, or close.
    fn dispatch(&mut self) {
        self.persist_before_acks();
        while let Some(action) = self.broker.poll_action() {
            match action {
                Action::Send {
                    conn,
                    protocol,
                    packet,
                } => {
                    let Some(out) = self.outbound.get_mut(&conn) else {
                        continue;
                    };
                    match out.outbox.push(&packet, protocol, self.outbound_limit) {
                        Ok(()) => {
                            if out.dropping && matches!(packet, Packet::Publish(_)) {
                                out.dropping = false;
                            }
                        }
                        Err(PushError::Encode(e)) => {
                            tracing::warn!(conn, error = %e, "cannot encode outgoing packet");
                        }
                        Err(PushError::Dropped) => {
                            // The client reads too slowly: it loses QoS 0
                            // messages, not its connection.
                            self.dropped_outbound += 1;
                            if !out.dropping {
                                out.dropping = true;
                                tracing::info!(
                                    conn,
                                    limit = self.outbound_limit,
                                    total = self.dropped_outbound,
                                    "outbound bytes over the limit, dropping QoS 0 messages"
                                );
                            }
                        }
                    }
                }
                Action::Close { conn } => {
                    if let Some(out) = self.outbound.remove(&conn) {
                        out.outbox.close();
                        out.gone.notify_one();
                    }
                }
            }
        }
        while let Some(conn) = self.broker.poll_resumed() {
            if let Some(out) = self.outbound.get(&conn) {
                out.resume.notify_one();
            }
        }
        let counters = self.broker.counters();
        if counters != *self.counters.borrow() {
            self.counters.send_replace(counters);
        }
    }
}

/// Serves MQTT on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) -> io::Result<()> {
    let shared = Shared::open(config).map_err(io::Error::other)?;
    serve(listener, shared, shutdown).await
}

/// [`run`] with a caller-made [`Shared`], so tests can look inside. Once
/// `shutdown` resolves it stops accepting, ends every connection (5.0 clients
/// hear DISCONNECT 0x8B first), waits a bounded time for them to close,
/// writes what is not yet persisted and releases the persistence directory.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future,
) -> io::Result<()> {
    let timer = tokio::spawn(run_timers(shared.clone()));
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, _peer)) => {
                        let _ = stream.set_nodelay(true);
                        let shared = shared.clone();
                        tokio::spawn(async move { handle_connection(shared, stream).await });
                    }
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    };
    drop(listener);
    if !shared.close_all(CLOSE_FLUSH).await {
        tracing::warn!("connections still open after the shutdown deadline");
    }
    timer.abort();
    shared.release_persistence();
    result
}

/// Runs the core's timers forever; one per [`Shared`].
pub async fn run_timers(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut st = shared.lock();
            st.broker.tick(Instant::now().into_std());
            st.dispatch();
            st.broker.poll_timeout()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(Instant::from_std(at)) => {}
                    _ = shared.timers.notified() => {}
                }
            }
            None => shared.timers.notified().await,
        }
    }
}

/// Serves one connection over any byte stream (an `mqtt_net::Stream`, or a
/// test's in-memory pipe). Writes are flushed after each burst.
pub async fn handle_connection<S>(shared: Arc<Shared>, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    handle_connection_from(shared, stream, Instant::now()).await
}

/// [`handle_connection`] for a stream accepted at `accepted`: the time
/// allowed before CONNECT counts from then, so that handshakes done before
/// (TLS, WebSocket) do not extend it.
pub async fn handle_connection_from<S>(shared: Arc<Shared>, stream: S, accepted: Instant)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let outbox = Arc::new(Outbox::default());
    let gone = Arc::new(Notify::new());
    let resume = Arc::new(Notify::new());
    let (conn, max_packet_size, outbound_limit) = {
        let mut st = shared.lock();
        let max = st.broker.config().max_packet_size;
        let limit = st.outbound_limit;
        match st.broker.open(accepted.into_std()) {
            Some(id) => {
                shared.count.send_replace(st.broker.connection_count());
                st.outbound.insert(
                    id,
                    Outbound {
                        outbox: outbox.clone(),
                        gone: gone.clone(),
                        resume: resume.clone(),
                        dropping: false,
                    },
                );
                (id, max, limit)
            }
            None => {
                let max = st.broker.config().max_connections;
                if st.broker.connection_count() >= max {
                    tracing::warn!(
                        max_connections = max,
                        "connection refused: max_connections reached (by default the \
                         open-files limit less {})",
                        crate::config::FD_MARGIN
                    );
                }
                return;
            }
        }
    };
    shared.timers.notify_one();
    let (mut reader, mut writer) = tokio::io::split(stream);

    let writes = outbox.clone();
    let mut writer_task = tokio::spawn(async move {
        let outbox = writes;
        // What is queued when the writer wakes goes out in one write: one
        // syscall (and one TCP segment, Nagle being off) per burst rather
        // than per packet. The flush sends what a transport buffers (the
        // WebSocket adapter holds frames until then); on TCP it costs nothing.
        let mut batch = BytesMut::new();
        while outbox.take(&mut batch).await {
            if writer.write_all(&batch).await.is_err() || writer.flush().await.is_err() {
                break;
            }
            batch.clear();
        }
        let _ = tokio::time::timeout(CLOSE_FLUSH, async {
            let _ = writer.flush().await;
            let _ = writer.shutdown().await;
        })
        .await;
        gone.notify_one();
    });

    let mut decoder = Decoder::new(
        DecodeOptions::new(Protocol::V3_1_1, Sender::Client).with_max_packet_size(max_packet_size),
    );
    // Small at first: an idle connection keeps only this; it grows when a
    // packet or a burst needs more (see `filled` below).
    let mut buf = BytesMut::with_capacity(IDLE_READ_BUFFER);
    // Skipping a refused packet (deliberate violations only): `skip_frame`
    // until its length is known, then `skip` bytes still to drop.
    let mut skip: usize = 0;
    let mut skip_frame = false;
    let mut closing = false;
    let mut packets = Vec::new();
    // What a paused connection sent and the core has not had yet, in order.
    let mut held: VecDeque<Packet> = VecDeque::new();
    while !closing {
        // `read_buf` makes 64 bytes of room in a full buffer.
        let room = (buf.capacity() - buf.len()).max(64);
        let filled;
        tokio::select! {
            // A client that does not read what it is sent is not read either
            // (the answers to its packets would pile up).
            read = reader.read_buf(&mut buf),
                if held.len() < HELD_PACKETS && !outbox.over(outbound_limit) =>
            {
                match read {
                    Ok(0) | Err(_) => break,
                    // All the room was used: more is probably waiting.
                    Ok(n) => filled = n >= room,
                }
            }
            _ = outbox.room(), if outbox.over(outbound_limit) => continue,
            // The sessions it waited for have room: hand over what was held.
            _ = resume.notified(), if !held.is_empty() => {
                let now = Instant::now().into_std();
                let mut st = shared.lock();
                while !st.broker.paused(conn) {
                    let Some(packet) = held.pop_front() else { break };
                    st.broker.packet(conn, packet, now);
                }
                st.dispatch();
                closing = !st.outbound.contains_key(&conn);
                drop(st);
                shared.timers.notify_one();
                continue;
            }
            // The writer ended: the core closed the connection or the peer stopped reading.
            _ = wait_closed(&shared, conn) => break,
        }
        // Everything decodable in what was read goes to the core under one
        // lock: a burst of packets costs one lock round trip, and the replies
        // to it leave together (the writer sends what is queued in one write).
        let mut rearm = false;
        loop {
            let mut failure = None;
            loop {
                if skip_frame {
                    match frame_len(&buf) {
                        Some(n) => {
                            skip = n;
                            skip_frame = false;
                        }
                        // A length field longer than four bytes: no frame to skip.
                        None if buf.len() >= 5 => {
                            closing = true;
                            break;
                        }
                        None => break,
                    }
                }
                if skip > 0 {
                    let n = skip.min(buf.len());
                    let _ = buf.split_to(n);
                    skip -= n;
                    if skip > 0 {
                        break;
                    }
                }
                let buffered = buf.len();
                match decoder.decode(&mut buf) {
                    Ok(Some(packet)) => packets.push(packet),
                    Ok(None) => {
                        // Room for the rest of a partial packet, or for the
                        // rest of a burst; not for a connection that is idle.
                        if buf.capacity() - buf.len() < 1024 && (filled || !buf.is_empty()) {
                            buf.reserve(4096);
                        }
                        break;
                    }
                    Err(e) => {
                        failure = Some((e, buffered));
                        break;
                    }
                }
            }
            if packets.is_empty() && failure.is_none() {
                break;
            }
            // Password hashing runs before the core's lock is taken.
            shared.precheck_passwords(&packets).await;
            let now = Instant::now().into_std();
            let mut st = shared.lock();
            rearm |= failure.is_some() || packets.iter().any(may_arm_timer);
            // One dispatch for the whole burst: with --persist, one write makes
            // all of its acknowledgements durable (group commit) instead of
            // one write per packet. Packets after one that closes the
            // connection reach a core that ignores them.
            for packet in packets.drain(..) {
                // Held behind what already waits, or while the core pauses
                // the connection; acknowledgements and pings pass, so that
                // the queues this connection's messages wait for can drain.
                let passes = matches!(
                    packet,
                    Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) | Packet::PingReq
                );
                if !passes && (!held.is_empty() || st.broker.paused(conn)) {
                    held.push_back(packet);
                } else {
                    st.broker.packet(conn, packet, now);
                }
            }
            st.dispatch();
            if !st.outbound.contains_key(&conn) {
                closing = true;
            }
            let Some((e, buffered)) = failure.filter(|_| !closing) else {
                break;
            };
            match st.broker.decode_error(conn, &e, now) {
                // A refusal from the fixed header leaves the frame in
                // `buf` (perhaps not all of it yet); one from the parser
                // comes after the whole frame was split off.
                OnError::Skip => skip_frame = buf.len() == buffered,
                OnError::Close => closing = true,
            }
            st.dispatch();
            if closing {
                break;
            }
            // A refused packet was skipped: decode what follows it.
        }
        if rearm || closing {
            shared.timers.notify_one();
        }
        // An idle connection does not keep room for a burst of packets.
        if !filled {
            packets = Vec::new();
        }
    }
    {
        let mut st = shared.lock();
        // The client sent these before it went (a DISCONNECT among them
        // decides its will): the core has them, paused or not, beyond the
        // queue limit by at most what one connection holds.
        let now = Instant::now().into_std();
        for packet in held {
            st.broker.packet(conn, packet, now);
        }
        st.broker.closed(conn, now);
        shared.count.send_replace(st.broker.connection_count());
        st.dispatch();
        if let Some(out) = st.outbound.remove(&conn) {
            out.outbox.close();
        }
    }
    shared.timers.notify_one();
    // What is queued gets a bounded time to go out: a peer that does not
    // read would otherwise hold the writer, and the socket, forever.
    if tokio::time::timeout(CLOSE_FLUSH, &mut writer_task)
        .await
        .is_err()
    {
        writer_task.abort();
    }
}

/// Whether handling `packet` may give the core a deadline earlier than those
/// it had (keep alive from CONNECT, a will delay or session expiry when a
/// connection ends, a retained message's expiry), so that the timer task must
/// look again. Acknowledgements, pings and live messages only move deadlines
/// later, which the timer task sees when it wakes anyway; not waking it for
/// them saves a wake-up and a scan of every connection per read.
fn may_arm_timer(packet: &Packet) -> bool {
    match packet {
        Packet::Publish(p) => p.retain,
        Packet::PubAck(_)
        | Packet::PubRec(_)
        | Packet::PubRel(_)
        | Packet::PubComp(_)
        | Packet::PingReq => false,
        _ => true,
    }
}

/// Resolves once `conn` is to end (see [`Outbound::gone`]).
async fn wait_closed(shared: &Shared, conn: ConnId) {
    let gone = shared
        .lock()
        .outbound
        .get(&conn)
        .map(|out| out.gone.clone());
    if let Some(gone) = gone {
        gone.notified().await;
    }
}
