//! One connection's task: reads the socket, hands decoded packets to the
//! core under its lock, writes what the core queued in the connection's
//! outbox, and parks the connection (`lounge.rs`) while it has nothing to
//! do. See the parent module for the backpressure it applies.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use mqtt_codec::{decode::frame_len, DecodeOptions, Decoder, Packet, Protocol, Sender};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{lounge, Shared, CLOSE_FLUSH};
use crate::broker::{passes_pause, ConnId, OnError};
use crate::outbox::{Outbox, Taken};

/// Packets a paused connection's reader holds before it stops reading.
const HELD_PACKETS: usize = 64;
/// Read buffer of a connection that has not needed more.
const IDLE_READ_BUFFER: usize = 512;
/// The most room a read buffer is given again after it was given back.
const MAX_READ_BUFFER: usize = 64 * 1024;

/// What a connection task serves: a byte stream that can say when it has
/// bytes to read, so that an idle connection holds no read buffer.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Ready when a read can make progress; by default at once.
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Whether [`Transport::poll_read_ready`] waits for bytes, so that an
    /// idle connection can be parked without a task (see `Config::park_after`).
    fn parks(&self) -> bool {
        false
    }
}

impl Transport for mqtt_net::Stream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        mqtt_net::Stream::poll_read_ready(self, cx)
    }

    fn parks(&self) -> bool {
        self.scheme() == mqtt_net::Scheme::Mqtt
    }
}

impl Transport for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    fn parks(&self) -> bool {
        true
    }
}

/// A test's in-memory pipe.
impl Transport for tokio::io::DuplexStream {}

/// Serves one connection over any byte stream (an `mqtt_net::Stream`, or a
/// test's in-memory pipe). Writes are flushed after each burst.
pub fn handle_connection<S: Transport>(
    shared: Arc<Shared>,
    stream: S,
) -> impl Future<Output = ()> + Send {
    handle_connection_from(shared, stream, Instant::now())
}

/// The socket's side of one turn of a connection task's loop.
enum Io {
    /// Bytes of the batch being sent were written.
    Wrote(usize),
    /// The batch is written and flushed.
    Flushed,
    /// `n` bytes were read (0: the peer ended); `filled`: all the room the
    /// buffer had, so more is probably waiting.
    Read { n: usize, filled: bool },
    /// The stream failed or the peer stopped taking bytes.
    Failed,
}

/// A connection's buffers, and what they are given back for.
struct Buffers {
    /// Read and not yet decoded.
    read: BytesMut,
    /// Being written: `sent` bytes of it are.
    batch: BytesMut,
    sent: usize,
    /// The room `read` is given when it is allocated again: the most a
    /// burst needed (up to [`MAX_READ_BUFFER`]).
    read_hint: usize,
}

/// Advances whichever of writing and reading can: the batch being sent
/// (then a flush), and a read, if `reading`, once the stream has bytes.
/// While it waits for bytes with nothing to send, the connection holds no
/// buffer: both are given back and allocated again when needed.
fn poll_io<S: Transport>(
    cx: &mut Context<'_>,
    stream: &mut S,
    b: &mut Buffers,
    reading: bool,
) -> Poll<Io> {
    if b.sent < b.batch.len() {
        match Pin::new(&mut *stream).poll_write(cx, &b.batch[b.sent..]) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Io::Failed),
            Poll::Ready(Ok(n)) => return Poll::Ready(Io::Wrote(n)),
            Poll::Pending => {}
        }
    } else if !b.batch.is_empty() {
        // The flush sends what a transport buffers (the WebSocket adapter
        // holds frames until then); on TCP it costs nothing.
        match Pin::new(&mut *stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => return Poll::Ready(Io::Flushed),
            Poll::Ready(Err(_)) => return Poll::Ready(Io::Failed),
            Poll::Pending => {}
        }
    }
    if !reading {
        return Poll::Pending;
    }
    if stream.poll_read_ready(cx).is_ready() {
        if b.read.capacity() == 0 {
            b.read.reserve(b.read_hint);
        }
        // `read_buf` makes 64 bytes of room in a full buffer.
        let room = (b.read.capacity() - b.read.len()).max(64);
        match std::pin::pin!(stream.read_buf(&mut b.read)).poll(cx) {
            Poll::Ready(Ok(n)) => {
                return Poll::Ready(Io::Read {
                    n,
                    filled: n >= room,
                })
            }
            Poll::Ready(Err(_)) => return Poll::Ready(Io::Failed),
            // The readiness was stale: waiting after all.
            Poll::Pending => {}
        }
    }
    if b.read.is_empty() && b.read.capacity() > 0 {
        b.read_hint = b.read_hint.max(b.read.capacity()).min(MAX_READ_BUFFER);
        b.read = BytesMut::new();
    }
    if b.batch.is_empty() && b.batch.capacity() > 0 {
        b.batch = BytesMut::new();
    }
    Poll::Pending
}

/// What of a connection outlives its task: all a parked connection keeps.
struct Serving<S> {
    stream: S,
    conn: ConnId,
    outbox: Arc<Outbox>,
    decoder: Decoder,
    /// See [`Buffers::read_hint`] (at most [`MAX_READ_BUFFER`]; u32 and
    /// the limit read from the core when the task starts keep a parked
    /// connection in the 96-byte size class).
    read_hint: u32,
    /// Its transport can say when it has bytes (see [`Transport::parks`])
    /// and the configuration parks idle connections.
    parks: bool,
}

/// A connection in the lounge.
struct Parked<S> {
    shared: Arc<Shared>,
    serving: Serving<S>,
}

impl<S: Transport> lounge::Sleeper for Parked<S> {
    fn hang(&mut self, bell: lounge::Bell) {
        self.serving.outbox.hang(bell);
    }

    fn waker(&self) -> std::task::Waker {
        std::task::Waker::from(self.serving.outbox.clone())
    }

    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.serving.outbox.is_signalled() {
            return Poll::Ready(());
        }
        // Bytes, an end or an error: the task finds out which.
        self.serving.stream.poll_read_ready(cx).map(|_| ())
    }

    fn wake_up(self: Box<Self>) {
        let Parked { shared, serving } = *self;
        serving.outbox.unhang();
        tokio::spawn(serve_connection(shared, serving, None));
    }
}

/// [`handle_connection`] for a stream accepted at `accepted`: the time
/// allowed before CONNECT counts from then, so that handshakes done before
/// (TLS, WebSocket) do not extend it.
pub fn handle_connection_from<S: Transport>(
    shared: Arc<Shared>,
    stream: S,
    accepted: Instant,
) -> impl Future<Output = ()> + Send {
    let serving = Serving {
        stream,
        // Given by the core when the task starts.
        conn: 0,
        outbox: Arc::default(),
        decoder: Decoder::new(DecodeOptions::new(Protocol::V3_1_1, Sender::Client)),
        read_hint: IDLE_READ_BUFFER as u32,
        parks: false,
    };
    serve_connection(shared, serving, Some(accepted))
}

/// Opens the connection `c` in the core; false if the core refuses it.
fn open<S: Transport>(shared: &Shared, c: &mut Serving<S>, accepted: Instant) -> bool {
    let mut st = shared.lock();
    let max_packet_size = st.broker.config().max_packet_size;
    match st.broker.open(accepted.into_std()) {
        Some(id) => {
            shared.count.send_replace(st.broker.connection_count());
            st.outbound.insert(id, c.outbox.clone());
            c.conn = id;
            c.parks = c.stream.parks() && st.broker.config().park_after.is_some();
            c.decoder = Decoder::new(
                DecodeOptions::new(Protocol::V3_1_1, Sender::Client)
                    .with_max_packet_size(max_packet_size),
            );
            drop(st);
            shared.timers.notify_one();
            true
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
            false
        }
    }
}

/// A connection's task, from its start or from the lounge to its end or
/// the lounge.
///
/// One task per connection both reads and writes (one `select!` over the
/// socket, the outbox and the core's wake-ups), and an idle connection
/// holds neither a read nor a write buffer, nor, parked, a task
/// (README, "Memory per idle connection"). Long because its parts share
/// the loop's state: what was read and not decoded, the batch being sent,
/// what a paused connection holds back.
///
/// `accepted`: a new connection, opened in the core first (one future for
/// both, so that a task carries one copy of the connection's state).
async fn serve_connection<S: Transport>(
    shared: Arc<Shared>,
    mut c: Serving<S>,
    accepted: Option<Instant>,
) {
    if let Some(accepted) = accepted {
        if !open(&shared, &mut c, accepted) {
            return;
        }
    }
    // `c` is used in place, not taken apart: the task's future would keep
    // both the whole and its parts.
    // Allocated when there is something to read or write, given back
    // while the connection waits (`poll_io`). What is queued when the task
    // looks goes out in one write: one syscall (and one TCP segment, Nagle
    // being off) per burst rather than per packet.
    let mut bufs = Buffers {
        read: BytesMut::new(),
        batch: BytesMut::new(),
        sent: 0,
        read_hint: c.read_hint as usize,
    };
    let outbound_limit = shared.lock().outbound_limit;
    // Skipping a refused packet (deliberate violations only): `skip_frame`
    // until its length is known, then `skip` bytes still to drop.
    let mut skip: usize = 0;
    let mut skip_frame = false;
    let mut closing = false;
    let mut packets = Vec::new();
    // What a paused connection sent and the core has not had yet, in order.
    let mut held: VecDeque<Packet> = VecDeque::new();
    // Whether anything happened since the timer task last asked (see
    // `Config::park_after`).
    let mut active = false;
    // A new connection parks as soon as it is quiet after its CONNECT: a
    // connection storm then needs no more tasks at once than there are
    // handshakes under way (the memory of a task given up is reused, but
    // not given back to the system). After that, when it was quiet
    // between two asks.
    let eager = accepted.is_some();
    let mut connected = false;
    // What a resumed connection was woken for is looked at first.
    if bufs.batch.is_empty() {
        c.outbox.take(&mut bufs.batch);
    }
    while !closing {
        // A client that does not read what it is sent is not read either
        // (the answers to its packets would pile up).
        let reading = held.len() < HELD_PACKETS
            && !c.outbox.over(outbound_limit)
            && !shared
                .disk_behind
                .load(std::sync::atomic::Ordering::Relaxed);
        let skipping = skip > 0 || skip_frame;
        if eager && connected && quiet(&c, &bufs, &held, skipping, reading) {
            park(shared, c, &bufs);
            return;
        }
        let io = tokio::select! {
            io = std::future::poll_fn(|cx| poll_io(cx, &mut c.stream, &mut bufs, reading)) => Some(io),
            _ = std::future::poll_fn(|cx| c.outbox.poll_changed(cx)) => None,
        };
        if io.is_none() && c.outbox.take_ticked() {
            if !active && quiet(&c, &bufs, &held, skipping, reading) {
                park(shared, c, &bufs);
                return;
            }
            active = false;
        } else {
            active = true;
        }
        let filled = match io {
            Some(Io::Wrote(n)) => {
                bufs.sent += n;
                continue;
            }
            Some(Io::Flushed) => {
                bufs.batch.clear();
                bufs.sent = 0;
                c.outbox.take(&mut bufs.batch);
                continue;
            }
            Some(Io::Failed | Io::Read { n: 0, .. }) => break,
            Some(Io::Read { filled, .. }) => filled,
            None => {
                // The core closed the connection (a takeover, keep alive,
                // shutdown): what is pending goes out below, within a deadline.
                if c.outbox.is_closed() {
                    break;
                }
                // The sessions it waited for have room: hand over what was held.
                if c.outbox.take_resumed() && !held.is_empty() {
                    let now = Instant::now().into_std();
                    let mut st = shared.lock();
                    while !st.broker.paused(c.conn) {
                        let Some(packet) = held.pop_front() else {
                            break;
                        };
                        st.broker.packet(c.conn, packet, now);
                    }
                    st.dispatch();
                    closing = !st.outbound.contains_key(&c.conn);
                    drop(st);
                    shared.timers.notify_one();
                }
                if bufs.batch.is_empty() {
                    c.outbox.take(&mut bufs.batch);
                }
                continue;
            }
        };
        // Everything decodable in what was read goes to the core under one
        // lock: a burst of packets costs one lock round trip, and the replies
        // to it leave together (the task sends what is queued in one write).
        let mut rearm = false;
        loop {
            let mut failure = None;
            loop {
                if skip_frame {
                    match frame_len(&bufs.read) {
                        Some(n) => {
                            skip = n;
                            skip_frame = false;
                        }
                        // A length field longer than four bytes: no frame to skip.
                        None if bufs.read.len() >= 5 => {
                            closing = true;
                            break;
                        }
                        None => break,
                    }
                }
                if skip > 0 {
                    let n = skip.min(bufs.read.len());
                    let _ = bufs.read.split_to(n);
                    skip -= n;
                    if skip > 0 {
                        break;
                    }
                }
                let buffered = bufs.read.len();
                match c.decoder.decode(&mut bufs.read) {
                    Ok(Some(packet)) => packets.push(packet),
                    Ok(None) => {
                        // Room for the rest of a partial packet, or for the
                        // rest of a burst; not for a connection that is idle.
                        if bufs.read.capacity() - bufs.read.len() < 1024
                            && (filled || !bufs.read.is_empty())
                        {
                            bufs.read.reserve(4096);
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
            // Password hashing runs before the core's lock is taken; boxed,
            // so that the task does not carry its state while idle.
            if packets.iter().any(|p| matches!(p, Packet::Connect(_))) {
                connected = true;
                Box::pin(shared.precheck_passwords(&packets)).await;
            }
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
                if !passes_pause(&packet) && (!held.is_empty() || st.broker.paused(c.conn)) {
                    held.push_back(packet);
                } else {
                    st.broker.packet(c.conn, packet, now);
                }
            }
            st.dispatch();
            if !st.outbound.contains_key(&c.conn) {
                closing = true;
            }
            let Some((e, buffered)) = failure.filter(|_| !closing) else {
                break;
            };
            match st.broker.decode_error(c.conn, &e, now) {
                // A refusal from the fixed header leaves the frame in
                // `bufs.read` (perhaps not all of it yet); one from the parser
                // comes after the whole frame was split off.
                OnError::Skip => skip_frame = bufs.read.len() == buffered,
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
        // An idle connection keeps no room for a burst of packets.
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
            st.broker.packet(c.conn, packet, now);
        }
        st.broker.closed(c.conn, now);
        shared.count.send_replace(st.broker.connection_count());
        st.dispatch();
        if let Some(out) = st.outbound.remove(&c.conn) {
            out.close();
        }
    }
    shared.timers.notify_one();
    // What is queued gets a bounded time to go out: a peer that does not
    // read would otherwise hold the task, and the socket, forever.
    // Boxed, as the password check above.
    let _ = Box::pin(tokio::time::timeout(CLOSE_FLUSH, async {
        loop {
            if c.stream.write_all(&bufs.batch[bufs.sent..]).await.is_err() {
                return;
            }
            bufs.batch.clear();
            bufs.sent = 0;
            if c.outbox.take(&mut bufs.batch) != Taken::Bytes {
                break;
            }
        }
        let _ = c.stream.flush().await;
        let _ = c.stream.shutdown().await;
    }))
    .await;
}

/// Whether connection `c` has nothing to do but wait for its socket or its
/// outbox, so that it can wait in the lounge: nothing read and not decoded,
/// nothing being written, held back or skipped, nothing queued.
fn quiet<S: Transport>(
    c: &Serving<S>,
    bufs: &Buffers,
    held: &VecDeque<Packet>,
    skipping: bool,
    reading: bool,
) -> bool {
    c.parks
        && reading
        && !skipping
        && held.is_empty()
        && bufs.read.is_empty()
        && bufs.batch.is_empty()
        && c.outbox.is_quiet()
}

/// Parks connection `c`, whose task then ends (`lounge.rs`).
fn park<S: Transport>(shared: Arc<Shared>, mut c: Serving<S>, bufs: &Buffers) {
    c.read_hint = u32::try_from(bufs.read_hint).unwrap_or(MAX_READ_BUFFER as u32);
    let lounge = shared.lounge.clone();
    lounge.park(Box::new(Parked { shared, serving: c }));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use tokio::net::TcpListener;

    fn poll_once<S: Transport>(stream: &mut S, bufs: &mut Buffers) -> Poll<Io> {
        let waker = futures_util::task::noop_waker();
        poll_io(&mut Context::from_waker(&waker), stream, bufs, true)
    }

    /// A connection waiting for bytes with nothing to send holds neither
    /// buffer; bytes that come get one again, at the size a burst needed.
    #[tokio::test]
    async fn a_waiting_connection_gives_its_buffers_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("an address"))
            .await
            .expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        let mut bufs = Buffers {
            read: BytesMut::with_capacity(8192),
            batch: BytesMut::with_capacity(100),
            sent: 0,
            read_hint: IDLE_READ_BUFFER,
        };
        assert!(poll_once(&mut server, &mut bufs).is_pending());
        assert_eq!(bufs.read.capacity(), 0, "the empty read buffer went back");
        assert_eq!(bufs.batch.capacity(), 0, "the empty write buffer went back");
        assert_eq!(bufs.read_hint, 8192, "and the room it had is remembered");

        client.write_all(&[0xC0, 0x00]).await.expect("a PINGREQ");
        server.readable().await.expect("readable");
        match poll_once(&mut server, &mut bufs) {
            Poll::Ready(Io::Read {
                n: 2,
                filled: false,
            }) => {}
            _ => panic!("the PINGREQ was not read"),
        }
        assert!(bufs.read.capacity() >= 8190, "{}", bufs.read.capacity());
        // Undecoded bytes keep their buffer while the connection waits.
        assert!(poll_once(&mut server, &mut bufs).is_pending());
        assert_eq!(&bufs.read[..], &[0xC0, 0x00]);
    }

    /// The task of a connection is its future: one task per connection
    /// (no writer task beside it), with the rare awaits (the password
    /// check, the last flush) boxed. 456 bytes when this was written.
    #[tokio::test]
    async fn a_connection_task_is_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tcp = TcpStream::connect(listener.local_addr().expect("an address"))
            .await
            .expect("connect");
        let serving = std::mem::size_of_val(&handle_connection_from(
            Shared::new(Config::default()),
            mqtt_net::Stream::from(tcp),
            Instant::now(),
        ));
        assert!(serving <= 512, "{serving} bytes");
    }
}
