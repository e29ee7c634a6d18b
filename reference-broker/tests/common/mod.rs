//! Helpers shared by the integration tests: a server on 127.0.0.1:0 with a
//! oneshot shutdown, a raw MQTT client over a loopback socket whose every
//! read and write waits under a deadline, and the in-memory `Net` driver of
//! the sans-IO core on a fake clock.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_codec::{
    ConnAck, Connect, DecodeOptions, Decoder, Packet, Properties, Protocol, Publish, QoS, Sender,
    Subscribe, Subscription, SubscriptionOptions,
};
use reference_broker::server::{self, Shared};
use reference_broker::{Action, Broker, Config, ConnId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};

pub const V311: Protocol = Protocol::V3_1_1;
pub const V5: Protocol = Protocol::V5;
/// Deadline for anything the broker should do at once.
pub const PROMPT: Duration = Duration::from_secs(5);

/// A broker serving on 127.0.0.1:0 until [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// A fresh broker with `config`.
    pub async fn start(config: Config) -> Running {
        Running::serve(Shared::new(config)).await
    }

    /// Serves an already built `shared` core.
    pub async fn serve(shared: Arc<Shared>) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, shared.clone(), async move {
            let _ = rx.await;
        }));
        Running {
            addr,
            shared,
            shutdown: Some(tx),
            task,
        }
    }

    /// Waits until the core counts exactly `n` connections (closes are
    /// reported asynchronously), failing after `within`.
    pub async fn connections_become(&self, n: usize, within: Duration) {
        assert!(
            self.shared.connections_become(n, within).await,
            "{} connections after {within:?}, expected {n}",
            self.shared.connections()
        );
    }

    /// Signals shutdown and waits, within `deadline`, for `serve` to return Ok.
    pub async fn stop_within(mut self, deadline: Duration) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = timeout(deadline, &mut self.task)
            .await
            .expect("server::serve returns after shutdown");
        result.expect("server task").expect("server::serve is Ok");
    }

    pub async fn stop(self) {
        self.stop_within(PROMPT).await
    }
}

/// A raw MQTT client. `wait` bounds the TCP connect, every write, and the
/// reads of [`Client::recv`] / [`Client::next`].
pub struct Client {
    pub stream: TcpStream,
    pub protocol: Protocol,
    decoder: Decoder,
    buf: BytesMut,
    pub wait: Duration,
}

impl Client {
    /// Opens a connection; nothing is sent.
    pub async fn open_within(addr: SocketAddr, protocol: Protocol, wait: Duration) -> Client {
        let stream = timeout(wait, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Client::from_stream(stream, protocol, wait)
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: TcpStream, protocol: Protocol, wait: Duration) -> Client {
        Client {
            stream,
            protocol,
            decoder: Decoder::new(DecodeOptions::new(protocol, Sender::Server)),
            buf: BytesMut::new(),
            wait,
        }
    }

    pub async fn open(addr: SocketAddr, protocol: Protocol) -> Client {
        Client::open_within(addr, protocol, PROMPT).await
    }

    /// Opens a connection, sends `connect` and returns the CONNACK code and
    /// session-present flag.
    pub async fn handshake(
        addr: SocketAddr,
        connect: Connect,
        wait: Duration,
    ) -> (Client, u8, bool) {
        let mut c = Client::open_within(addr, connect.protocol, wait).await;
        c.send(&Packet::Connect(Box::new(connect))).await;
        match c.recv().await {
            Packet::ConnAck(ack) => (c, ack.code, ack.session_present),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Opens a connection and completes CONNECT / CONNACK with `keep_alive`.
    pub async fn connect_within(
        addr: SocketAddr,
        protocol: Protocol,
        id: &str,
        keep_alive: u16,
        wait: Duration,
    ) -> Client {
        let mut connect = Connect::new(protocol, id);
        connect.keep_alive = keep_alive;
        let (c, code, _) = Client::handshake(addr, connect, wait).await;
        assert_eq!(code, 0, "{id}: CONNACK code");
        c
    }

    /// Opens a connection and completes CONNECT / CONNACK.
    pub async fn connect(addr: SocketAddr, protocol: Protocol, id: &str) -> Client {
        Client::connect_within(addr, protocol, id, 0, PROMPT).await
    }

    pub async fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        mqtt_codec::encode(packet, self.protocol, &mut out).expect("encodable");
        self.send_raw(&out).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        timeout(self.wait, self.stream.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    /// The next packet, or `None` at EOF (or reset), within `deadline`.
    pub async fn next_within(&mut self, deadline: Duration) -> Option<Packet> {
        let until = Instant::now() + deadline;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(p)) => return Some(p),
                Ok(None) => {}
                Err(e) => panic!("the broker sent bytes we cannot decode: {e:?}"),
            }
            match timeout_at(until, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => panic!("nothing from the broker within {deadline:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => {
                    assert!(self.buf.is_empty(), "connection ended inside a packet");
                    return None;
                }
                Ok(Ok(_)) => {}
            }
        }
    }

    pub async fn next(&mut self) -> Option<Packet> {
        self.next_within(self.wait).await
    }

    /// The next packet within `deadline`; panics at EOF.
    pub async fn recv_within(&mut self, deadline: Duration) -> Packet {
        self.next_within(deadline).await.expect("a packet, not EOF")
    }

    pub async fn recv(&mut self) -> Packet {
        self.recv_within(self.wait).await
    }

    /// Reads until EOF; returns what came before it.
    pub async fn until_closed(&mut self, deadline: Duration) -> Vec<Packet> {
        let mut got = Vec::new();
        while let Some(p) = self.next_within(deadline).await {
            got.push(p);
        }
        got
    }

    /// SUBSCRIBE to one filter (packet id 1); expects a SUBACK granting `qos`.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::new(),
            filters: vec![Subscription {
                filter: filter.into(),
                options: SubscriptionOptions::qos(qos),
            }],
        }))
        .await;
        match self.recv().await {
            Packet::SubAck(ack) => assert_eq!(ack.reason_codes, [qos.as_u8()]),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    pub async fn ping(&mut self) {
        self.send(&Packet::PingReq).await;
        assert_eq!(self.recv_within(PROMPT).await, Packet::PingResp);
    }
}

/// Path of a Mosquitto client, or a failure that says how to get it.
pub fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: the tests need the Mosquitto clients (apt-get install mosquitto-clients)")
    })
}

pub fn publish(topic: &str, payload: &'static [u8], qos: QoS, packet_id: u16) -> Packet {
    Packet::Publish(Publish {
        qos,
        topic: topic.into(),
        packet_id,
        payload: Bytes::from_static(payload),
        ..Publish::default()
    })
}

/// A QoS 0, not retained will without properties: `payload` to `topic`.
pub fn will(topic: &str, payload: &'static [u8]) -> mqtt_codec::Will {
    mqtt_codec::Will {
        qos: QoS::AtMostOnce,
        retain: false,
        properties: mqtt_codec::Properties::new(),
        topic: topic.into(),
        payload: Bytes::from_static(payload),
    }
}

/// A full round trip through a fresh pair of clients: the broker still serves.
pub async fn still_serves(addr: SocketAddr, tag: &str) {
    still_serves_within(addr, tag, PROMPT).await
}

/// [`still_serves`] with clients that wait up to `wait`.
pub async fn still_serves_within(addr: SocketAddr, tag: &str, wait: Duration) {
    let mut sub = Client::connect_within(addr, V5, &format!("alive-sub-{tag}"), 0, wait).await;
    sub.subscribe(&format!("alive/{tag}"), QoS::AtLeastOnce)
        .await;
    let mut publ = Client::connect_within(addr, V311, &format!("alive-pub-{tag}"), 0, wait).await;
    publ.send(&publish(
        &format!("alive/{tag}"),
        b"ok",
        QoS::AtLeastOnce,
        1,
    ))
    .await;
    assert!(matches!(publ.recv().await, Packet::PubAck(r) if r.packet_id == 1));
    match sub.recv().await {
        Packet::Publish(p) => assert_eq!(&p.payload[..], b"ok"),
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

/// The sans-IO core plus what an I/O layer would do with its actions, on a
/// fake clock: one inbox per connection, and `closed` reported back once the
/// core asks for a close.
pub struct Net {
    pub broker: Broker,
    pub t0: std::time::Instant,
    pub now: std::time::Instant,
    pub inbox: HashMap<ConnId, VecDeque<Packet>>,
    pub closed: HashSet<ConnId>,
}

impl Net {
    pub fn new() -> Net {
        Net::with(Config::default())
    }

    pub fn with(config: Config) -> Net {
        let t0 = std::time::Instant::now();
        Net {
            broker: Broker::new(config),
            t0,
            now: t0,
            inbox: HashMap::new(),
            closed: HashSet::new(),
        }
    }

    /// Moves the fake clock to `t0 + ms` milliseconds (never backwards).
    pub fn at_ms(&mut self, ms: u64) {
        let t = self.t0 + Duration::from_millis(ms);
        assert!(t >= self.now, "the fake clock only moves forward");
        self.now = t;
    }

    pub fn at(&mut self, secs: u64) {
        self.at_ms(secs * 1000);
    }

    /// Runs the timers at the current instant.
    pub fn tick(&mut self) {
        self.broker.tick(self.now);
        self.pump();
    }

    pub fn pump(&mut self) {
        while let Some(action) = self.broker.poll_action() {
            match action {
                Action::Send {
                    conn,
                    protocol,
                    packet,
                } => {
                    assert!(
                        !self.closed.contains(&conn),
                        "{packet:?} sent on closed connection {conn}"
                    );
                    // Everything the core sends must be encodable in the connection's version.
                    mqtt_codec::encode_bytes(&packet, protocol)
                        .expect("the core sends encodable packets");
                    self.inbox.entry(conn).or_default().push_back(packet);
                }
                Action::Close { conn } => {
                    if self.closed.insert(conn) {
                        self.broker.closed(conn, self.now);
                    }
                }
            }
        }
    }

    pub fn open(&mut self) -> ConnId {
        let id = self
            .broker
            .open(self.now)
            .expect("below the connection limit");
        self.pump();
        id
    }

    pub fn send(&mut self, conn: ConnId, packet: Packet) {
        self.broker.packet(conn, packet, self.now);
        self.pump();
    }

    /// The network connection drops (no DISCONNECT).
    pub fn drop_conn(&mut self, conn: ConnId) {
        if self.closed.insert(conn) {
            self.broker.closed(conn, self.now);
        }
        self.pump();
    }

    /// Everything received on `conn` since the last call.
    pub fn recv(&mut self, conn: ConnId) -> Vec<Packet> {
        self.inbox
            .get_mut(&conn)
            .map(|q| q.drain(..).collect())
            .unwrap_or_default()
    }

    /// Exactly one packet is waiting on `conn`.
    pub fn one(&mut self, conn: ConnId) -> Packet {
        let got = self.recv(conn);
        assert_eq!(got.len(), 1, "expected one packet on {conn}, got {got:?}");
        got.into_iter().next().unwrap_or(Packet::PingReq)
    }

    pub fn is_closed(&self, conn: ConnId) -> bool {
        self.closed.contains(&conn)
    }

    /// Opens a connection and sends `connect`; returns the first packet back
    /// (what follows it stays in the inbox).
    pub fn connect(&mut self, connect: Connect) -> (ConnId, Packet) {
        let conn = self.open();
        self.send(conn, Packet::Connect(Box::new(connect)));
        let first = self
            .inbox
            .get_mut(&conn)
            .and_then(|q| q.pop_front())
            .expect("an answer to CONNECT");
        (conn, first)
    }

    /// Opens a connection and sends `connect`; returns the CONNACK.
    pub fn connect_with(&mut self, connect: Connect) -> (ConnId, ConnAck) {
        match self.connect(connect) {
            (conn, Packet::ConnAck(ack)) => (conn, ack),
            (_, other) => panic!("expected CONNACK first, got {other:?}"),
        }
    }
}
