//! The probe's client: a raw [`crate::client::Session`] (it sends only
//! what a try asks, acknowledges what it is delivered, waits under the
//! try's deadline), with what is the probe's own on top — why a try got
//! no answer ([`NoAnswer`], worded for a finding) and the exchange as
//! evidence (`packet_to_json` lines, long strings cut).
//!
//! Deliberately small: each try opens its own client, does one thing, and
//! keeps the exchange as the evidence of its finding.

use std::time::Duration;

use bytes::Bytes;
use mqtt_codec::{
    ConnAck, Connect, Packet, Properties, Protocol, PubResponse, Publish, QoS, Subscription,
    SubscriptionOptions,
};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client::{Ended, Session};
use crate::net::{Direction, LogEntry, SendError, Target};

/// Strings in evidence longer than this are cut (a 1 MiB payload is shown
/// by its length, not printed).
const SHOWN_CHARS: usize = 64;

/// Deliveries kept while waiting for something else: a broker that floods
/// a client does not fill the probe's memory.
pub const KEPT_DELIVERIES: usize = 1000;

/// Why a try got no answer it could use.
#[derive(Debug, Clone, PartialEq)]
pub enum NoAnswer {
    /// The TCP (TLS, WebSocket) connection could not be opened.
    Unreachable(String),
    /// A CONNACK refusing the connection (its code).
    Refused(u8),
    /// A DISCONNECT from the server (5.0), with its reason code.
    Disconnected(u8),
    /// The server closed the connection.
    Closed(Option<String>),
    /// Bytes the codec refuses.
    Garbage(String),
    /// Nothing before the deadline.
    Timeout,
    /// Writing failed.
    SendFailed(String),
}

impl NoAnswer {
    /// For people: "the server closed the connection", "DISCONNECT 0x95 Packet too large".
    pub fn describe(&self, protocol: Protocol) -> String {
        use mqtt_codec::PacketType as T;
        match self {
            NoAnswer::Unreachable(e) => format!("cannot connect: {e}"),
            NoAnswer::Refused(c) => format!(
                "CONNACK 0x{c:02X} {}",
                crate::packet::reason_name(*c, T::ConnAck, protocol)
            ),
            NoAnswer::Disconnected(c) => format!(
                "DISCONNECT 0x{c:02X} {}",
                crate::packet::reason_name(*c, T::Disconnect, protocol)
            ),
            NoAnswer::Closed(None) => "the server closed the connection".into(),
            NoAnswer::Closed(Some(why)) => format!("the server closed the connection ({why})"),
            NoAnswer::Garbage(e) => format!("the server sent bytes that do not decode: {e}"),
            NoAnswer::Timeout => "no answer before the deadline".into(),
            NoAnswer::SendFailed(e) => format!("sending failed: {e}"),
        }
    }
}

impl From<Ended> for NoAnswer {
    fn from(e: Ended) -> NoAnswer {
        match e {
            Ended::Disconnected(code) => NoAnswer::Disconnected(code),
            Ended::Closed(why) => NoAnswer::Closed(why),
            Ended::Malformed(e) => NoAnswer::Garbage(e.to_string()),
            Ended::Protocol(m) => NoAnswer::Garbage(m),
            Ended::BeforeConnAck(p) => {
                NoAnswer::Garbage(format!("{} before CONNACK", p.packet_type().name()))
            }
            Ended::Timeout | Ended::NoPingResp => NoAnswer::Timeout,
            Ended::Encode(m) => NoAnswer::SendFailed(m),
            Ended::Send(e @ (SendError::Broken(_) | SendError::NotOpen)) => {
                NoAnswer::Closed(Some(e.to_string()))
            }
            Ended::Send(e) => NoAnswer::SendFailed(e.to_string()),
        }
    }
}

/// One probe connection.
pub struct Client {
    /// `None`: the connection could not be opened.
    session: Option<Session>,
    pub protocol: Protocol,
    /// Evidence lines kept from before (an earlier connection of the try).
    pub earlier: Vec<Value>,
    /// The server ended the connection (refusal, DISCONNECT, close,
    /// garbage): nothing more is sent.
    ended: bool,
}

impl Client {
    /// Opens a connection (no CONNECT yet).
    pub async fn open(
        target: &Target,
        protocol: Protocol,
        name: &str,
        timeout: Duration,
    ) -> Result<Client, NoAnswer> {
        let mut session = Session::open_raw(target, protocol, name, timeout)
            .await
            .map_err(|e| NoAnswer::Unreachable(e.to_string()))?;
        session.set_delivery_limit(KEPT_DELIVERIES);
        Ok(Client {
            session: Some(session),
            protocol,
            earlier: Vec::new(),
            ended: false,
        })
    }

    /// Opens a connection and sends `connect`; the CONNACK, or why none came.
    pub async fn connect(
        target: &Target,
        connect: Connect,
        timeout: Duration,
    ) -> (Result<ConnAck, NoAnswer>, Client) {
        let protocol = connect.protocol;
        let name = connect.client_id.to_string();
        let mut c = match Client::open(target, protocol, &name, timeout).await {
            Ok(c) => c,
            Err(e) => return (Err(e), Client::detached(protocol)),
        };
        let acked = c.handshake(connect).await;
        (acked, c)
    }

    /// A client with no connection, for a try that could not open one:
    /// every send fails, and its exchange is empty.
    fn detached(protocol: Protocol) -> Client {
        Client {
            session: None,
            protocol,
            earlier: Vec::new(),
            ended: false,
        }
    }

    fn session(&mut self) -> Result<&mut Session, NoAnswer> {
        self.session
            .as_mut()
            .ok_or_else(|| NoAnswer::Closed(Some("not connected".into())))
    }

    /// Notes that an error ended the connection.
    fn seen<T>(&mut self, r: Result<T, Ended>) -> Result<T, NoAnswer> {
        r.map_err(|e| {
            let e = NoAnswer::from(e);
            if matches!(
                e,
                NoAnswer::Disconnected(_) | NoAnswer::Closed(_) | NoAnswer::Garbage(_)
            ) {
                self.ended = true;
            }
            e
        })
    }

    async fn handshake(&mut self, connect: Connect) -> Result<ConnAck, NoAnswer> {
        let r = self.session()?.connect_with(connect).await;
        match self.seen(r)? {
            a if a.code == 0 => Ok(a),
            a => {
                // A refused connection is closed by the server (MQTT-3.2.2-5 / -7).
                self.ended = true;
                Err(NoAnswer::Refused(a.code))
            }
        }
    }

    /// A packet identifier not used yet on this connection.
    pub fn id(&mut self) -> u16 {
        self.session.as_mut().map_or(1, Session::packet_id)
    }

    /// Encodes `packet` and writes it before the deadline.
    pub async fn send(&mut self, packet: Packet) -> Result<(), NoAnswer> {
        let r = self.session()?.send_packet(packet).await.map(drop);
        self.seen(r)
    }

    /// Writes bytes as they are (`packet`: what they encode, for the log).
    pub async fn send_raw(&mut self, bytes: &[u8], packet: Option<Packet>) -> Result<(), NoAnswer> {
        let r = self.session()?.send_raw(bytes, packet).await;
        self.seen(r)
    }

    /// The next packet for which `wanted` holds, before the try's deadline.
    /// Deliveries on the way are acknowledged and kept (see
    /// [`Client::delivered`]); a DISCONNECT, a close or garbage ends the wait.
    pub async fn expect(&mut self, wanted: impl Fn(&Packet) -> bool) -> Result<Packet, NoAnswer> {
        let r = self.session()?.expect(wanted).await;
        self.seen(r)
    }

    pub async fn expect_until(
        &mut self,
        deadline: Instant,
        wanted: impl Fn(&Packet) -> bool,
    ) -> Result<Packet, NoAnswer> {
        let r = self.session()?.expect_until(deadline, wanted).await;
        self.seen(r)
    }

    /// The deliveries kept while waiting for something else, taken out.
    pub fn delivered(&mut self) -> Vec<Publish> {
        self.session
            .as_mut()
            .map_or_else(Vec::new, Session::drain_delivered)
    }

    /// Subscribes to `filters` at `qos` (with `properties`); the SUBACK codes.
    pub async fn subscribe(
        &mut self,
        filters: &[&str],
        qos: QoS,
        properties: Properties,
    ) -> Result<Vec<u8>, NoAnswer> {
        let filters = filters
            .iter()
            .map(|f| Subscription {
                filter: (*f).into(),
                options: SubscriptionOptions::qos(qos),
            })
            .collect();
        let r = self.session()?.try_subscribe(filters, properties).await;
        self.seen(r)
    }

    /// Publishes and waits for its acknowledgement (PUBACK, or PUBREC then
    /// PUBCOMP): the reason code of the first answer (0 at QoS 0). Unlike
    /// [`Session::publish`], a refusal or a PUBACK to a QoS 2 message is
    /// an answer, not an error: the probe reports what the broker did.
    pub async fn publish(&mut self, mut p: Publish) -> Result<u8, NoAnswer> {
        if p.qos != QoS::AtMostOnce {
            p.packet_id = self.id();
        }
        let (qos, id) = (p.qos, p.packet_id);
        self.send(Packet::Publish(p)).await?;
        match qos {
            QoS::AtMostOnce => Ok(0),
            QoS::AtLeastOnce => match self.expect(|p| acks(p, id)).await? {
                Packet::PubAck(r) | Packet::PubRec(r) => Ok(r.reason_code),
                _ => Err(NoAnswer::Timeout),
            },
            QoS::ExactlyOnce => {
                let code = match self.expect(|p| acks(p, id)).await? {
                    Packet::PubRec(r) | Packet::PubAck(r) => r.reason_code,
                    _ => return Err(NoAnswer::Timeout),
                };
                if code >= 0x80 {
                    return Ok(code);
                }
                self.send(Packet::PubRel(PubResponse::new(id))).await?;
                self.expect(|p| matches!(p, Packet::PubComp(r) if r.packet_id == id))
                    .await?;
                Ok(code)
            }
        }
    }

    /// A delivery on `topic` (kept earlier, or arriving before `wait` has passed).
    pub async fn delivery(&mut self, topic: &str, wait: Duration) -> Result<Publish, NoAnswer> {
        if let Some(p) = self.session()?.take_delivered(|p| &*p.topic == topic) {
            return Ok(p);
        }
        let deadline = Instant::now() + wait;
        let t = topic.to_string();
        match self
            .expect_until(
                deadline,
                move |p| matches!(p, Packet::Publish(x) if *x.topic == *t),
            )
            .await?
        {
            Packet::Publish(p) => Ok(p),
            _ => Err(NoAnswer::Timeout),
        }
    }

    /// Sends DISCONNECT (unless the server ended the connection) and closes.
    pub async fn disconnect(&mut self) {
        if !self.ended {
            let _ = self
                .send(Packet::Disconnect(mqtt_codec::Disconnect::default()))
                .await;
        }
        if let Some(s) = self.session.as_mut() {
            s.drop_connection().await;
        }
    }

    /// The exchange so far, as evidence lines.
    pub fn exchange(&mut self) -> Vec<Value> {
        let mut out = std::mem::take(&mut self.earlier);
        if let Some(s) = self.session.as_mut() {
            out.extend(s.take_log().iter().map(evidence_line));
        }
        out
    }
}

fn acks(p: &Packet, id: u16) -> bool {
    matches!(p, Packet::PubAck(r) | Packet::PubRec(r) if r.packet_id == id)
}

/// A PUBLISH of `payload` on `topic`.
pub fn publish(topic: &str, qos: QoS, retain: bool, payload: Bytes) -> Publish {
    Publish {
        qos,
        retain,
        topic: topic.into(),
        payload,
        ..Publish::default()
    }
}

/// One line of evidence: which way, the packet as `packet_to_json` prints
/// it (long strings cut), and any remark of the connection.
pub fn evidence_line(e: &LogEntry) -> Value {
    let dir = match e.direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    let mut line = json!({ "dir": dir });
    if let Some(p) = &e.packet {
        line["packet"] = shorten(crate::packet::packet_to_json(p, e.protocol));
    } else if !e.bytes.is_empty() {
        let shown = e.bytes.get(..32).unwrap_or(&e.bytes);
        line["hex"] = json!(crate::hex::spaced(shown));
        line["bytes"] = json!(e.bytes.len());
    }
    if let Some(n) = &e.note {
        line["note"] = json!(n);
    }
    line
}

fn shorten(v: Value) -> Value {
    match v {
        Value::String(s) if s.chars().count() > SHOWN_CHARS => {
            let head: String = s.chars().take(SHOWN_CHARS / 2).collect();
            Value::String(format!("{head}… ({} bytes)", s.len()))
        }
        Value::Array(a) => Value::Array(a.into_iter().map(shorten).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, shorten(v))).collect()),
        other => other,
    }
}

/// The one-line form of an evidence line, for the console:
/// `→ PUBLISH {"qos":1,…}`.
pub fn show_line(line: &Value) -> String {
    let arrow = if line["dir"] == "sent" { "→" } else { "←" };
    let mut s = match line.get("packet") {
        Some(p) => {
            let ty = p["type"].as_str().unwrap_or("?").to_string();
            let mut rest = p.clone();
            if let Some(m) = rest.as_object_mut() {
                m.shift_remove("type");
            }
            format!("{arrow} {ty} {rest}")
        }
        None => match line.get("hex") {
            Some(h) => format!("{arrow} bytes {}", h.as_str().unwrap_or("")),
            None => arrow.to_string(),
        },
    };
    if let Some(n) = line["note"].as_str() {
        s.push_str(&format!("  ({n})"));
    }
    s
}
