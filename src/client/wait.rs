//! The session's lower half, shared by `pub`/`sub` and the probe: sending a
//! packet (or raw bytes), and waiting under a deadline for the packet a
//! caller wants while dealing with what else arrives — deliveries
//! acknowledged (QoS 1 PUBACK, QoS 2 PUBREC, PUBREL → PUBCOMP) and kept in a
//! bounded buffer, PINGREQ sent when keep alive asks. Its errors ([`Ended`])
//! keep every detail (the DISCONNECT's code, the reason of a close), so that
//! a caller can tell the cases apart; [`super::Session`]'s own methods word
//! them for people as [`super::ClientError`].

use mqtt_codec::{
    ConnAck, Connect, DecodeError, Packet, PacketType, Property, PubResponse, Publish, QoS,
};
use tokio::time::Instant;

use super::{closed_why, malformed, ClientError, Session};
use crate::net::{Event, SendError};

/// Why a wait (or a write) ended without what was wanted.
#[derive(Debug)]
pub enum Ended {
    /// The server sent DISCONNECT: its reason code.
    Disconnected(u8),
    /// The connection closed (why, when the transport says).
    Closed(Option<String>),
    /// The server sent bytes that do not decode.
    Malformed(DecodeError),
    /// Nothing came before the deadline.
    Timeout,
    /// Keep alive: the PINGRESP to our PINGREQ did not come in time.
    NoPingResp,
    /// A packet other than CONNACK came first (a strict session only,
    /// MQTT-3.2.0-1).
    BeforeConnAck(Packet),
    /// The server broke a rule of the session (an unknown topic alias).
    Protocol(String),
    /// The packet cannot be encoded (the message says which and why).
    Encode(String),
    /// Writing failed.
    Send(SendError),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Disconnected(code) => write!(f, "DISCONNECT 0x{code:02X}"),
            Ended::Closed(None) => f.write_str("the broker closed the connection"),
            Ended::Closed(Some(why)) => write!(f, "the broker closed the connection ({why})"),
            Ended::Malformed(e) => write!(f, "the broker sent what does not decode: {e}"),
            Ended::Timeout => f.write_str("no answer before the deadline"),
            Ended::NoPingResp => f.write_str("no PINGRESP to a keep-alive PINGREQ"),
            Ended::BeforeConnAck(p) => {
                write!(
                    f,
                    "the broker sent {} before CONNACK",
                    p.packet_type().name()
                )
            }
            Ended::Protocol(m) | Ended::Encode(m) => f.write_str(m),
            Ended::Send(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Ended {}

impl Session {
    /// Encodes `packet` and writes it before the session's timeout. A
    /// strict session refuses one above the broker's Maximum Packet Size
    /// (MQTT-3.2.2-15); a raw one sends it as is (the probe's size searches
    /// send oversized packets on purpose).
    pub async fn send_packet(&mut self, packet: Packet) -> Result<usize, Ended> {
        let name = packet.packet_type().name();
        let bytes = mqtt_codec::encode_bytes(&packet, self.protocol)
            .map_err(|e| Ended::Encode(format!("cannot encode the {name}: {e}")))?;
        let len = bytes.len();
        match self.maximum_packet_size {
            Some(max) if !self.raw && len as u64 > u64::from(max) => {
                return Err(Ended::Encode(format!(
                    "the {name} is {len} bytes, above the broker's Maximum Packet Size {max} [MQTT-3.2.2-15]"
                )))
            }
            _ => {}
        }
        self.send_raw(&bytes, Some(packet)).await?;
        Ok(len)
    }

    /// Writes `bytes` as they are before the session's timeout (`packet`:
    /// what they encode, for the log; `None` for deliberately broken bytes).
    pub async fn send_raw(&mut self, bytes: &[u8], packet: Option<Packet>) -> Result<(), Ended> {
        let deadline = Instant::now() + self.timeout;
        self.conn
            .send(bytes, packet, deadline)
            .await
            .map_err(Ended::Send)?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Sends `connect` and waits for the CONNACK, whatever its code (a
    /// refusal is the caller's to judge; the session then counts as
    /// closed, MQTT-3.2.2-5). A strict session fails on any other packet
    /// first; a raw one passes over them.
    pub async fn connect_with(&mut self, connect: Connect) -> Result<ConnAck, Ended> {
        let deadline = Instant::now() + self.timeout;
        self.send_packet(Packet::Connect(Box::new(connect))).await?;
        let ack = loop {
            match self.conn.next_event(deadline).await {
                Event::Packet(Packet::ConnAck(a), _) => break a,
                Event::Packet(other, _) if !self.raw => return Err(Ended::BeforeConnAck(other)),
                Event::Packet(Packet::Disconnect(d), _) => {
                    return Err(Ended::Disconnected(d.reason_code))
                }
                Event::Packet(..) => {}
                Event::Malformed(e, _) => return Err(Ended::Malformed(e)),
                Event::Closed(why) => return Err(Ended::Closed(why)),
                Event::Timeout => return Err(Ended::Timeout),
            }
        };
        if ack.code != 0 {
            self.closed = true;
            return Ok(ack);
        }
        for p in ack.properties.iter() {
            match p {
                Property::ServerKeepAlive(k) if !self.raw => {
                    self.keep_alive = (*k > 0).then(|| std::time::Duration::from_secs((*k).into()))
                }
                Property::MaximumPacketSize(m) => self.maximum_packet_size = Some(*m),
                _ => {}
            }
        }
        self.connack = ack.clone();
        Ok(ack)
    }

    /// [`Session::expect_until`] with the session's timeout.
    pub async fn expect(&mut self, wanted: impl Fn(&Packet) -> bool) -> Result<Packet, Ended> {
        self.expect_until(Instant::now() + self.timeout, wanted)
            .await
    }

    /// The next packet `wanted` accepts, before `deadline`. On the way,
    /// deliveries are acknowledged (a wanted one too) and the others kept
    /// for [`Session::take_delivered`]; a QoS 2 message is delivered once
    /// however often it comes before its PUBREL. A DISCONNECT, a close or
    /// garbage ends the wait; late or stray acknowledgements are passed over.
    pub async fn expect_until(
        &mut self,
        deadline: Instant,
        wanted: impl Fn(&Packet) -> bool,
    ) -> Result<Packet, Ended> {
        loop {
            let Some(packet) = self.next_packet(deadline).await? else {
                return Err(Ended::Timeout);
            };
            match self.take_in(packet).await? {
                Some(p) if wanted(&p) => return Ok(p),
                Some(Packet::Publish(m)) => self.keep(m),
                _ => {}
            }
        }
    }

    /// A delivery kept earlier for which `which` holds, taken out.
    pub fn take_delivered(&mut self, which: impl Fn(&Publish) -> bool) -> Option<Publish> {
        let i = self.inbox.iter().position(which)?;
        self.inbox.remove(i)
    }

    /// Every delivery kept, oldest first.
    pub fn drain_delivered(&mut self) -> Vec<Publish> {
        self.inbox.drain(..).collect()
    }

    /// How many deliveries are kept at most (the oldest go first);
    /// [`super::INBOX_LIMIT`] unless set.
    pub fn set_delivery_limit(&mut self, limit: usize) {
        self.inbox_limit = limit.max(1);
        while self.inbox.len() > self.inbox_limit {
            self.inbox.pop_front();
        }
    }

    pub(super) fn keep(&mut self, m: Publish) {
        if self.inbox.len() >= self.inbox_limit {
            self.inbox.pop_front();
        }
        self.inbox.push_back(m);
    }

    /// The next packet before `deadline` (`None` then), sending PINGREQ as
    /// keep alive asks and failing when its PINGRESP does not come.
    async fn next_packet(&mut self, deadline: Instant) -> Result<Option<Packet>, Ended> {
        loop {
            let ping_due = self.keep_alive.map(|k| match self.ping_sent {
                // A PINGRESP is awaited for the time given to any answer.
                Some(at) => at + self.timeout,
                None => self.last_sent + k,
            });
            let until = ping_due.map_or(deadline, |p| p.min(deadline));
            match self.conn.next_event(until).await {
                Event::Packet(Packet::PingResp, _) if self.ping_sent.is_some() => {
                    self.ping_sent = None
                }
                Event::Packet(p, _) => return Ok(Some(p)),
                Event::Malformed(e, _) => return Err(Ended::Malformed(e)),
                Event::Closed(why) => {
                    self.closed = true;
                    return Err(Ended::Closed(why));
                }
                Event::Timeout if Instant::now() >= deadline => return Ok(None),
                Event::Timeout => {
                    if self.ping_sent.is_some() {
                        return Err(Ended::NoPingResp);
                    }
                    self.send_packet(Packet::PingReq).await?;
                    self.ping_sent = Some(Instant::now());
                }
            }
        }
    }

    /// Acknowledges a delivery (and resolves its topic alias), completes a
    /// QoS 2 delivery on PUBREL, ends on DISCONNECT. `None`: nothing for
    /// the caller (a repeated QoS 2 message, a PUBREL).
    async fn take_in(&mut self, packet: Packet) -> Result<Option<Packet>, Ended> {
        match packet {
            Packet::Publish(mut m) => {
                self.resolve_alias(&mut m)?;
                match m.qos {
                    QoS::AtMostOnce => Ok(Some(Packet::Publish(m))),
                    QoS::AtLeastOnce => {
                        self.send_packet(Packet::PubAck(PubResponse::new(m.packet_id)))
                            .await?;
                        Ok(Some(Packet::Publish(m)))
                    }
                    QoS::ExactlyOnce => {
                        let id = m.packet_id;
                        // Delivered once, however often it comes before its PUBREL.
                        let first = self.incoming_qos2.insert(id);
                        self.send_packet(Packet::PubRec(PubResponse::new(id)))
                            .await?;
                        Ok(first.then_some(Packet::Publish(m)))
                    }
                }
            }
            Packet::PubRel(r) => {
                self.incoming_qos2.remove(&r.packet_id);
                self.send_packet(Packet::PubComp(PubResponse::new(r.packet_id)))
                    .await?;
                Ok(None)
            }
            Packet::Disconnect(d) => {
                self.conn.close().await;
                self.closed = true;
                Err(Ended::Disconnected(d.reason_code))
            }
            other => Ok(Some(other)),
        }
    }

    fn resolve_alias(&mut self, m: &mut Publish) -> Result<(), Ended> {
        let alias = m.properties.iter().find_map(|p| match p {
            Property::TopicAlias(a) => Some(*a),
            _ => None,
        });
        let Some(a) = alias else { return Ok(()) };
        if m.topic.is_empty() {
            match self.aliases_in.get(&a) {
                Some(t) => m.topic = t.clone(),
                None => {
                    return Err(Ended::Protocol(format!(
                        "the broker used topic alias {a} before setting it"
                    )))
                }
            }
        } else {
            self.aliases_in.insert(a, m.topic.clone());
        }
        Ok(())
    }

    /// `e` worded for people, as `pub` and `sub` report it.
    pub(super) fn cooked(&self, e: Ended) -> ClientError {
        match e {
            Ended::Disconnected(code) => {
                let reason =
                    crate::packet::reason_name(code, PacketType::Disconnect, self.protocol);
                ClientError::Closed(format!("DISCONNECT 0x{code:02X} ({reason})"))
            }
            Ended::Closed(why) => ClientError::Closed(closed_why(why)),
            Ended::Malformed(e) => malformed(&e),
            Ended::Timeout => ClientError::Timeout("an answer".into()),
            Ended::NoPingResp => {
                ClientError::Timeout("the PINGRESP to a keep-alive PINGREQ".into())
            }
            Ended::BeforeConnAck(Packet::Auth(_)) => ClientError::Protocol(
                "the broker asks for enhanced authentication (AUTH), which pub/sub do not speak"
                    .into(),
            ),
            Ended::BeforeConnAck(other) => ClientError::Protocol(format!(
                "the broker sent {} before CONNACK [MQTT-3.2.0-1]",
                other.packet_type().name()
            )),
            Ended::Protocol(m) => ClientError::Protocol(m),
            Ended::Encode(m) => ClientError::Input(m),
            Ended::Send(e) => ClientError::Closed(e.to_string()),
        }
    }
}
