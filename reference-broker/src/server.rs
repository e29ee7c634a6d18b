//! The tokio layer: sockets, the clock, and the dispatch of the core's actions.
//!
//! One task per connection reads it, feeds decoded packets to the core and
//! writes what the core queued in its [`Outbox`]; one task runs the core's
//! timers. The core sits behind a single `std::sync::Mutex`: every
//! critical section is a synchronous call into it plus the dispatch of its
//! actions, never an await.
//!
//! Backpressure: while the core says a connection is [`Broker::paused`] (a
//! session its messages go to is full), its reader holds back every packet
//! but acknowledgements and pings, up to `HELD_PACKETS`, and then stops
//! reading the socket, so that TCP slows the publisher; the core's
//! [`Broker::poll_resumed`] wakes it to hand over what it held.
//!
//! Here: the shared state, the dispatch of the core's actions, the accept
//! loop and the timer task; a connection's task is `connection.rs`, a
//! parked connection's wait `lounge.rs`, `--persist` `persist.rs`.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::broker::{Action, Broker, ConnMap, Counters};
use crate::config::Config;
use crate::outbox::{Outbox, PushError};

mod connection;
pub(crate) mod lounge;
pub mod persist;
mod prehash;

pub use connection::{handle_connection, handle_connection_from, Transport};

/// Deadline for flushing what is queued when a connection is closed.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

struct State {
    broker: Broker,
    /// The way to each connection's task: its bytes to write; closing it
    /// ends the task.
    outbound: ConnMap<Arc<Outbox>>,
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
    /// `--persist`: the journal is this far behind, connections are not read
    /// (see `persist`).
    disk_behind: Arc<std::sync::atomic::AtomicBool>,
    /// Connections parked without a task of their own.
    lounge: Arc<lounge::Lounge>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                outbound_limit: config.max_outbound_bytes,
                broker: Broker::new(config),
                outbound: ConnMap::default(),
                persist: None,
                dropped_outbound: 0,
                counters: tokio::sync::watch::Sender::new(Counters::default()),
            }),
            timers: Notify::new(),
            count: tokio::sync::watch::Sender::new(0),
            disk_behind: Arc::default(),
            lounge: Arc::default(),
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

    /// Connections parked now, without a task of their own (see
    /// `Config::park_after`; for tests and metrics).
    pub fn parked(&self) -> usize {
        self.lounge.parked()
    }

    /// Waits until exactly `n` connections are parked, or `within` passes;
    /// returns whether the count was reached.
    pub async fn parked_become(&self, n: usize, within: Duration) -> bool {
        self.lounge.parked_become(n, within).await
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
    /// Carries out the core's actions: encode and queue, or close; with
    /// `--persist`, after what they follow from is on disk (`persist`).
    fn dispatch(&mut self) {
        match self.hold_for_disk() {
            Some(ready) => {
                for action in ready {
                    self.carry_out(action);
                }
            }
            None => {
                while let Some(action) = self.broker.poll_action() {
                    self.carry_out(action);
                }
            }
        }
        while let Some(conn) = self.broker.poll_resumed() {
            if let Some(out) = self.outbound.get(&conn) {
                out.resume();
            }
        }
        let counters = self.broker.counters();
        if counters != *self.counters.borrow() {
            self.counters.send_replace(counters);
        }
    }

    fn carry_out(&mut self, action: Action) {
        match action {
            Action::Send {
                conn,
                protocol,
                packet,
            } => {
                let Some(out) = self.outbound.get(&conn) else {
                    return;
                };
                match out.push(&packet, protocol, self.outbound_limit) {
                    Ok(()) => {}
                    Err(PushError::Encode(e)) => {
                        tracing::warn!(conn, error = %e, "cannot encode outgoing packet");
                    }
                    Err(PushError::Dropped { first }) => {
                        // The client reads too slowly: it loses QoS 0
                        // messages, not its connection.
                        self.dropped_outbound += 1;
                        if first {
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
                    out.close();
                }
            }
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
/// Every `Config::park_after` it also asks each connection whether it is
/// idle (see `lounge.rs`): a connection that had nothing to read, write or
/// hold back between two asks is parked. Long enough, by default 2 s, that
/// a connection merely between bursts keeps its task.
pub async fn run_timers(shared: Arc<Shared>) {
    let park_after = shared.lock().broker.config().park_after;
    let mut ask_at = park_after.map(|d| Instant::now() + d);
    loop {
        let next = {
            let mut st = shared.lock();
            let now = Instant::now();
            st.broker.tick(now.into_std());
            st.dispatch();
            if let Some(at) = ask_at.filter(|&at| now >= at) {
                for out in st.outbound.values() {
                    out.tick();
                }
                st.broker.compact();
                ask_at = park_after.map(|d| at.max(now) + d);
            }
            st.broker.poll_timeout().map(Instant::from_std)
        };
        let at = match (next, ask_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match at {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = shared.timers.notified() => {}
                }
            }
            None => shared.timers.notified().await,
        }
    }
}
