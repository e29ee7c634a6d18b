//! A small MQTT client over [`crate::net::Connection`]: what `pub` and `sub`
//! (and any tool that needs an ordinary session) speak. It connects with
//! every CONNECT option, publishes with the QoS 1 and QoS 2 handshakes,
//! subscribes, receives and acknowledges, keeps the connection alive with
//! PINGREQ, and disconnects. Every wait has a deadline.
//!
//! It does not print: the connection keeps a typed log of every packet
//! ([`Session::take_log`]), which a caller shows as it likes (`--trace`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::{
    ByteString, ConnAck, Connect, Disconnect, Packet, Properties, Property, Protocol, PubResponse,
    Publish, QoS, Subscribe, Subscription, Unsubscribe, Will,
};
use tokio::time::Instant;

use crate::net::{ConnectError, Connection, LogEntry, Target};

mod wait;
pub use wait::Ended;

/// Messages kept while the session waits for something else (an
/// acknowledgement); past this the oldest are dropped, so that a busy
/// subscription cannot fill memory.
pub const INBOX_LIMIT: usize = 10_000;

/// How to connect.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    pub protocol: Protocol,
    pub client_id: String,
    /// Clean Session (3.x) / Clean Start (5.0).
    pub clean_start: bool,
    /// Seconds; 0 turns keep alive off.
    pub keep_alive: u16,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    /// CONNECT properties (5.0): Session Expiry Interval, User Properties…
    pub properties: Properties,
    /// The deadline of each wait on the broker (connecting, an acknowledgement).
    pub timeout: Duration,
}

/// A message to publish.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// PUBLISH properties (5.0).
    pub properties: Properties,
}

/// Why a session operation failed; [`ClientError::exit_code`] maps it to the
/// project's exit statuses.
#[derive(Debug)]
pub enum ClientError {
    /// The target cannot be reached (a refused connection, a TLS or
    /// WebSocket handshake that failed): nothing could run.
    Unreachable(Box<ConnectError>),
    /// The broker refused the CONNECT.
    Refused { code: u8, reason: String },
    /// The broker refused a message (an acknowledgement 0x80 or above).
    Rejected(String),
    /// The broker closed the connection (with a DISCONNECT, or none).
    Closed(String),
    /// Nothing came before the deadline.
    Timeout(String),
    /// The broker sent what the spec does not allow here, or bytes that do not decode.
    Protocol(String),
    /// What was asked cannot be sent (a packet the encoder refuses, too large for the broker).
    Input(String),
}

impl ClientError {
    /// 1 the broker failed (refused, closed, timed out, misbehaved), 2 bad
    /// input, 3 the broker could not be reached.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable(_) => 3,
            ClientError::Input(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(e) => write!(
                f,
                "{e}; is a broker listening there? check the host, port, scheme and TLS options"
            ),
            ClientError::Refused { code, reason } => {
                write!(
                    f,
                    "the broker refused the connection: CONNACK code 0x{code:02X} ({reason})"
                )
            }
            ClientError::Rejected(m) => write!(f, "the broker refused the message: {m}"),
            ClientError::Closed(why) => write!(f, "the broker closed the connection: {why}"),
            ClientError::Timeout(what) => write!(
                f,
                "timed out waiting for {what}; raise --timeout if the broker is slow"
            ),
            ClientError::Protocol(m) => write!(f, "protocol error: {m}"),
            ClientError::Input(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ClientError {}

/// A connected session.
#[derive(Debug)]
pub struct Session {
    conn: Connection,
    protocol: Protocol,
    /// The broker's CONNACK.
    pub connack: ConnAck,
    timeout: Duration,
    /// When to send a PINGREQ if nothing else went out (the broker's Server
    /// Keep Alive wins over ours).
    keep_alive: Option<Duration>,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    next_id: u16,
    /// Messages that arrived while waiting for something else.
    inbox: VecDeque<Publish>,
    /// QoS 2 messages delivered and awaiting their PUBREL.
    incoming_qos2: HashSet<u16>,
    /// Topic aliases the broker set on this connection.
    aliases_in: HashMap<u16, ByteString>,
    /// Topic aliases this side set: alias → topic.
    aliases_out: HashMap<u16, String>,
    maximum_packet_size: Option<u32>,
    closed: bool,
    /// At most this many messages kept in `inbox`.
    inbox_limit: usize,
    /// A raw session (the probe's): no keep-alive PINGREQ, packets before
    /// CONNACK passed over.
    raw: bool,
}

fn closed_why(why: Option<String>) -> String {
    why.unwrap_or_else(|| "without a DISCONNECT".into())
}

impl Session {
    /// Connects and waits for a successful CONNACK.
    pub async fn connect(opts: &Options) -> Result<Session, ClientError> {
        let mut s = Session::open(opts).await?;
        s.handshake(opts).await?;
        Ok(s)
    }

    /// Opens the transport only; [`Session::handshake`] then sends CONNECT.
    /// (Two steps, so that a caller can show the log of a failed handshake.)
    pub async fn open(opts: &Options) -> Result<Session, ClientError> {
        let deadline = Instant::now() + opts.timeout;
        let conn = Connection::open(&opts.client_id, &opts.target, opts.protocol, deadline)
            .await
            .map_err(|e| ClientError::Unreachable(Box::new(e)))?;
        let keep_alive = (opts.keep_alive > 0).then(|| Duration::from_secs(opts.keep_alive.into()));
        Ok(Session::over(conn, opts.protocol, opts.timeout, keep_alive))
    }

    fn over(
        conn: Connection,
        protocol: Protocol,
        timeout: Duration,
        keep_alive: Option<Duration>,
    ) -> Session {
        Session {
            conn,
            protocol,
            connack: ConnAck::default(),
            timeout,
            keep_alive,
            last_sent: Instant::now(),
            ping_sent: None,
            next_id: 0,
            inbox: VecDeque::new(),
            incoming_qos2: HashSet::new(),
            aliases_in: HashMap::new(),
            aliases_out: HashMap::new(),
            maximum_packet_size: None,
            closed: false,
            inbox_limit: INBOX_LIMIT,
            raw: false,
        }
    }

    /// Opens the transport for a raw session, which sends what its caller
    /// asks and nothing of its own (no keep-alive PINGREQ, whatever the
    /// CONNECT and CONNACK say): the probe's, which tries a broker packet by
    /// packet. It still acknowledges deliveries while waiting
    /// ([`Session::expect_until`]); `name` names it in the log.
    pub async fn open_raw(
        target: &Target,
        protocol: Protocol,
        name: &str,
        timeout: Duration,
    ) -> Result<Session, ConnectError> {
        let conn = Connection::open(name, target, protocol, Instant::now() + timeout).await?;
        let mut s = Session::over(conn, protocol, timeout, None);
        s.raw = true;
        Ok(s)
    }

    /// Sends the CONNECT of `opts` and waits for a successful CONNACK.
    pub async fn handshake(&mut self, opts: &Options) -> Result<(), ClientError> {
        let mut connect = Connect::new(opts.protocol, opts.client_id.as_str());
        connect.clean_start = opts.clean_start;
        connect.keep_alive = opts.keep_alive;
        connect.will = opts.will.clone();
        connect.username = opts.username.as_deref().map(ByteString::from);
        connect.password = opts.password.clone();
        connect.properties = opts.properties.clone();
        let ack = match self.connect_with(connect).await {
            Ok(ack) => ack,
            Err(Ended::Closed(why)) => {
                return Err(ClientError::Closed(format!(
                    "{} before its CONNACK (does it speak MQTT {} on this port and transport?)",
                    closed_why(why),
                    opts.protocol
                )))
            }
            Err(Ended::Timeout) => return Err(ClientError::Timeout("the CONNACK".into())),
            Err(e) => return Err(self.cooked(e)),
        };
        if ack.code != 0 {
            let reason = crate::packet::reason_name(
                ack.code,
                mqtt_codec::PacketType::ConnAck,
                opts.protocol,
            );
            self.conn.close().await;
            return Err(ClientError::Refused {
                code: ack.code,
                reason: reason.to_string(),
            });
        }
        Ok(())
    }

    /// The version this session speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The packets exchanged since the last call.
    pub fn take_log(&mut self) -> Vec<LogEntry> {
        self.conn.take_log()
    }

    /// The Assigned Client Identifier of a 5.0 CONNACK, if any.
    pub fn assigned_client_id(&self) -> Option<&str> {
        self.connack.properties.iter().find_map(|p| match p {
            Property::AssignedClientIdentifier(s) => Some(&**s),
            _ => None,
        })
    }

    /// Encodes and writes `packet`, refusing one above the broker's
    /// Maximum Packet Size.
    async fn send(&mut self, packet: Packet) -> Result<(), ClientError> {
        match self.send_packet(packet).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.cooked(e)),
        }
    }

    /// A packet identifier not used yet on this connection (1 to 65535, then round again).
    pub fn packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.checked_add(1).filter(|&i| i != 0).unwrap_or(1);
        self.next_id
    }

    /// Publishes `msg`, through its QoS handshake. Returns the reason code
    /// of the last acknowledgement (0 for QoS 0 and in 3.x).
    pub async fn publish(&mut self, msg: &Message) -> Result<u8, ClientError> {
        let packet_id = if msg.qos == QoS::AtMostOnce {
            0
        } else {
            self.packet_id()
        };
        let mut topic = msg.topic.clone();
        // An alias already set for this topic: the topic may be left out.
        let alias = msg.properties.iter().find_map(|p| match p {
            Property::TopicAlias(a) => Some(*a),
            _ => None,
        });
        if let Some(a) = alias {
            if self.aliases_out.get(&a) == Some(&topic) {
                topic.clear();
            } else {
                self.aliases_out.insert(a, topic.clone());
            }
        }
        let publish = Publish {
            dup: false,
            qos: msg.qos,
            retain: msg.retain,
            topic: topic.into(),
            packet_id,
            properties: msg.properties.clone(),
            payload: msg.payload.clone(),
        };
        self.send(Packet::Publish(publish)).await?;
        match msg.qos {
            QoS::AtMostOnce => Ok(0),
            QoS::AtLeastOnce => {
                let ack = self
                    .await_ack(
                        "PUBACK",
                        |p| matches!(p, Packet::PubAck(r) if r.packet_id == packet_id),
                    )
                    .await?;
                refused_ack(&ack, "PUBACK", self.protocol)
            }
            QoS::ExactlyOnce => {
                let rec = self
                    .await_ack(
                        "PUBREC",
                        |p| matches!(p, Packet::PubRec(r) if r.packet_id == packet_id),
                    )
                    .await?;
                let code = refused_ack(&rec, "PUBREC", self.protocol)?;
                self.send(Packet::PubRel(PubResponse::new(packet_id)))
                    .await?;
                let comp = self
                    .await_ack(
                        "PUBCOMP",
                        |p| matches!(p, Packet::PubComp(r) if r.packet_id == packet_id),
                    )
                    .await?;
                refused_ack(&comp, "PUBCOMP", self.protocol).map(|c| c.max(code))
            }
        }
    }

    /// Subscribes; returns the SUBACK's codes, one per filter.
    pub async fn subscribe(
        &mut self,
        filters: Vec<Subscription>,
        properties: Properties,
    ) -> Result<Vec<u8>, ClientError> {
        match self.try_subscribe(filters, properties).await {
            Ok(codes) => Ok(codes),
            Err(Ended::Timeout) => Err(ClientError::Timeout("the SUBACK".into())),
            Err(e) => Err(self.cooked(e)),
        }
    }

    /// [`Session::subscribe`] with every detail of a failure ([`Ended`]).
    pub async fn try_subscribe(
        &mut self,
        filters: Vec<Subscription>,
        properties: Properties,
    ) -> Result<Vec<u8>, Ended> {
        let packet_id = self.packet_id();
        self.send_packet(Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            filters,
        }))
        .await?;
        match self
            .expect(|p| matches!(p, Packet::SubAck(a) if a.packet_id == packet_id))
            .await?
        {
            Packet::SubAck(a) => Ok(a.reason_codes),
            _ => Ok(Vec::new()),
        }
    }

    /// Unsubscribes; returns the UNSUBACK's codes (none in 3.x).
    pub async fn unsubscribe(
        &mut self,
        filters: Vec<String>,
        properties: Properties,
    ) -> Result<Vec<u8>, ClientError> {
        let packet_id = self.packet_id();
        self.send(Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties,
            filters: filters.into_iter().map(ByteString::from).collect(),
        }))
        .await?;
        match self
            .await_ack(
                "UNSUBACK",
                |p| matches!(p, Packet::UnsubAck(a) if a.packet_id == packet_id),
            )
            .await?
        {
            Packet::UnsubAck(a) => Ok(a.reason_codes),
            _ => Ok(Vec::new()),
        }
    }

    /// Waits for the packet `wanted` accepts, handling what else arrives.
    async fn await_ack(
        &mut self,
        what: &str,
        wanted: impl Fn(&Packet) -> bool,
    ) -> Result<Packet, ClientError> {
        match self.expect(wanted).await {
            Ok(p) => Ok(p),
            Err(Ended::Timeout) => Err(ClientError::Timeout(format!("the {what}"))),
            Err(e) => Err(self.cooked(e)),
        }
    }

    /// The next message, acknowledged, or `None` at `deadline` (`None`: wait
    /// for ever, pinging as keep alive asks).
    pub async fn recv(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Publish>, ClientError> {
        if let Some(m) = self.inbox.pop_front() {
            return Ok(Some(m));
        }
        // Far enough to be "for ever", near enough not to overflow.
        let until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        match self
            .expect_until(until, |p| matches!(p, Packet::Publish(_)))
            .await
        {
            Ok(Packet::Publish(m)) => Ok(Some(m)),
            Ok(_) | Err(Ended::Timeout) => Ok(None),
            Err(e) => Err(self.cooked(e)),
        }
    }

    /// Sends DISCONNECT (with `properties` and `reason_code` in 5.0) and closes.
    pub async fn disconnect(
        &mut self,
        reason_code: u8,
        properties: Properties,
    ) -> Result<(), ClientError> {
        if self.closed {
            return Ok(());
        }
        self.send(Packet::Disconnect(Disconnect {
            reason_code,
            properties,
        }))
        .await?;
        self.conn.close().await;
        self.closed = true;
        Ok(())
    }

    /// The transport and what was read past the last packet, for a caller
    /// that goes on with bytes (the bench's load); `None` when closed.
    pub fn into_stream(self) -> Option<(crate::net::Stream, bytes::BytesMut)> {
        self.conn.into_stream()
    }

    /// Closes the socket without DISCONNECT (the broker then publishes the will).
    pub async fn drop_connection(&mut self) {
        self.conn.close().await;
        self.closed = true;
    }
}

fn malformed(e: &mqtt_codec::DecodeError) -> ClientError {
    let id = e.statement().map(|s| format!(" [{s}]")).unwrap_or_default();
    ClientError::Protocol(format!(
        "the broker sent bytes that do not decode: {}{id}",
        e.message()
    ))
}

/// The reason code of an acknowledgement, or an error when it says the
/// message was refused (0x80 and above).
fn refused_ack(p: &Packet, what: &str, protocol: Protocol) -> Result<u8, ClientError> {
    let code = match p {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubComp(r) => r.reason_code,
        _ => 0,
    };
    if code >= 0x80 {
        let reason = crate::packet::reason_name(code, p.packet_type(), protocol);
        return Err(ClientError::Rejected(format!(
            "{what} code 0x{code:02X} ({reason})"
        )));
    }
    Ok(code)
}
