//! The tokio layer: sockets, the clock, and the dispatch of the core's actions.
//!
//! One task reads each connection and feeds decoded packets to the core; one
//! task writes each connection from a bounded channel; one task runs the
//! core's timers. The core sits behind a single `std::sync::Mutex`: every
//! critical section is a synchronous call into it plus the dispatch of its
//! actions, never an await.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_codec::{decode::frame_len, DecodeOptions, Decoder, Protocol, Sender};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::broker::{Action, Broker, ConnId, OnError};
use crate::config::Config;

/// Packets queued towards one connection before it counts as too slow and is closed.
const OUTBOUND_QUEUE: usize = 4096;
/// Deadline for flushing what is queued when a connection is closed.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

enum Out {
    Bytes(Bytes),
    Close,
}

/// The way to one connection's writer task.
struct Outbound {
    tx: mpsc::Sender<Out>,
    /// Wakes the connection's reader when the connection is to end: closed by
    /// the core, dropped for reading too slowly, or its writer gone.
    gone: Arc<Notify>,
}

struct State {
    broker: Broker,
    outbound: HashMap<ConnId, Outbound>,
}

/// The broker shared by all connection tasks.
pub struct Shared {
    state: Mutex<State>,
    timers: Notify,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                broker: Broker::new(config),
                outbound: HashMap::new(),
            }),
            timers: Notify::new(),
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
    pub fn connections(&self) -> usize {
        self.lock().broker.connection_count()
    }
}

impl State {
    /// Carries out the core's actions: encode and queue, or close.
    fn dispatch(&mut self) {
        while let Some(action) = self.broker.poll_action() {
            match action {
                Action::Send { conn, protocol, packet } => {
                    let Some(out) = self.outbound.get(&conn) else { continue };
                    let mut buf = BytesMut::new();
                    if let Err(e) = mqtt_codec::encode(&packet, protocol, &mut buf) {
                        tracing::warn!(conn, error = %e, "cannot encode outgoing packet");
                        continue;
                    }
                    if out.tx.try_send(Out::Bytes(buf.freeze())).is_err() {
                        // The client reads too slowly: drop it rather than buffer without bound.
                        tracing::info!(conn, "outbound queue full, closing");
                        if let Some(out) = self.outbound.remove(&conn) {
                            out.gone.notify_one();
                        }
                    }
                }
                Action::Close { conn } => {
                    if let Some(out) = self.outbound.remove(&conn) {
                        let _ = out.tx.try_send(Out::Close);
                        out.gone.notify_one();
                    }
                }
            }
        }
    }
}

/// Serves MQTT on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future) -> io::Result<()> {
    let shared = Shared::new(config);
    serve(listener, shared, shutdown).await
}

/// [`run`] with a caller-made [`Shared`], so tests can look inside.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: impl Future) -> io::Result<()> {
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
    timer.abort();
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

/// Serves one connection over any byte stream (TCP, TLS, WebSocket adapter).
pub async fn handle_connection<S>(shared: Arc<Shared>, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Out>(OUTBOUND_QUEUE);
    let gone = Arc::new(Notify::new());
    let (conn, max_packet_size) = {
        let mut st = shared.lock();
        let max = st.broker.config().max_packet_size;
        match st.broker.open(Instant::now().into_std()) {
            Some(id) => {
                st.outbound.insert(id, Outbound { tx, gone: gone.clone() });
                (id, max)
            }
            None => return,
        }
    };
    shared.timers.notify_one();
    let (mut reader, mut writer) = tokio::io::split(stream);

    let mut writer_task = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Out::Bytes(b) => {
                    if writer.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Out::Close => break,
            }
        }
        let _ = tokio::time::timeout(CLOSE_FLUSH, async {
            let _ = writer.flush().await;
            let _ = writer.shutdown().await;
        })
        .await;
        gone.notify_one();
    });

    let mut decoder = Decoder::new(DecodeOptions::new(Protocol::V3_1_1, Sender::Client).with_max_packet_size(max_packet_size));
    let mut buf = BytesMut::with_capacity(4096);
    // Skipping a refused packet (deliberate violations only): `skip_frame`
    // until its length is known, then `skip` bytes still to drop.
    let mut skip: usize = 0;
    let mut skip_frame = false;
    let mut closing = false;
    while !closing {
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            // The writer ended: the core closed the connection or the peer stopped reading.
            _ = wait_closed(&shared, conn) => break,
        }
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
            let now = Instant::now().into_std();
            let buffered = buf.len();
            match decoder.decode(&mut buf) {
                Ok(Some(packet)) => {
                    let mut st = shared.lock();
                    st.broker.packet(conn, packet, now);
                    st.dispatch();
                    if !st.outbound.contains_key(&conn) {
                        closing = true;
                    }
                }
                Ok(None) => {
                    if buf.capacity() - buf.len() < 1024 {
                        buf.reserve(4096);
                    }
                    break;
                }
                Err(e) => {
                    let mut st = shared.lock();
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
                }
            }
            if closing {
                break;
            }
        }
        shared.timers.notify_one();
    }
    {
        let mut st = shared.lock();
        st.broker.closed(conn, Instant::now().into_std());
        st.dispatch();
        if let Some(out) = st.outbound.remove(&conn) {
            let _ = out.tx.try_send(Out::Close);
        }
    }
    shared.timers.notify_one();
    // What is queued gets a bounded time to go out: a peer that does not
    // read would otherwise hold the writer, and the socket, forever.
    if tokio::time::timeout(CLOSE_FLUSH, &mut writer_task).await.is_err() {
        writer_task.abort();
    }
}

/// Resolves once `conn` is to end (see [`Outbound::gone`]).
async fn wait_closed(shared: &Shared, conn: ConnId) {
    let gone = shared.lock().outbound.get(&conn).map(|out| out.gone.clone());
    if let Some(gone) = gone {
        gone.notified().await;
    }
}
