//! The packet model: one set of typed values for all three protocol versions.
//!
//! Fields that only exist in 5.0 (properties, reason codes on acks) are simply
//! empty / zero for 3.1 and 3.1.1; the encoder and decoder know which fields a
//! version carries, so no field can make either of them reach an impossible case.

use bytes::Bytes;
pub use bytestring::ByteString;

use crate::props::Properties;
use crate::Protocol;

/// Quality of service of a PUBLISH, a will or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Who sent the bytes being decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    Client,
    Server,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Client => "client",
            Sender::Server => "server",
        }
    }
}

/// The control packet type (the high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    pub const ALL: [PacketType; 15] = [
        PacketType::Connect,
        PacketType::ConnAck,
        PacketType::Publish,
        PacketType::PubAck,
        PacketType::PubRec,
        PacketType::PubRel,
        PacketType::PubComp,
        PacketType::Subscribe,
        PacketType::SubAck,
        PacketType::Unsubscribe,
        PacketType::UnsubAck,
        PacketType::PingReq,
        PacketType::PingResp,
        PacketType::Disconnect,
        PacketType::Auth,
    ];

    pub fn from_u8(v: u8) -> Option<PacketType> {
        PacketType::ALL.get(usize::from(v).checked_sub(1)?).copied()
    }

    /// The upper-case name used by the spec, scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Auth => "AUTH",
        }
    }

    pub fn from_name(name: &str) -> Option<PacketType> {
        PacketType::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The fixed-header flags (low nibble) the spec prescribes for this type,
    /// or `None` for PUBLISH whose flags carry DUP/QoS/RETAIN.
    pub fn required_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }

    /// Whether `sender` may send this packet type at all in `protocol`.
    pub fn allowed_from(self, sender: Sender, protocol: Protocol) -> bool {
        use PacketType::*;
        match self {
            Connect | Subscribe | Unsubscribe | PingReq => sender == Sender::Client,
            ConnAck | SubAck | UnsubAck | PingResp => sender == Sender::Server,
            Publish | PubAck | PubRec | PubRel | PubComp => true,
            Disconnect => sender == Sender::Client || protocol.is_v5(),
            Auth => protocol.is_v5(),
        }
    }
}

impl std::fmt::Display for PacketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded or to-be-encoded control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Connect),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubResponse),
    PubRec(PubResponse),
    PubRel(PubResponse),
    PubComp(PubResponse),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// The packet identifier, for the packet types that carry one.
    pub fn packet_id(&self) -> Option<u16> {
        match self {
            Packet::Publish(p) if p.qos != QoS::AtMostOnce => Some(p.packet_id),
            Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
                Some(r.packet_id)
            }
            Packet::Subscribe(s) => Some(s.packet_id),
            Packet::SubAck(s) => Some(s.packet_id),
            Packet::Unsubscribe(u) => Some(u.packet_id),
            Packet::UnsubAck(u) => Some(u.packet_id),
            _ => None,
        }
    }

    pub fn properties(&self) -> Option<&Properties> {
        match self {
            Packet::Connect(p) => Some(&p.properties),
            Packet::ConnAck(p) => Some(&p.properties),
            Packet::Publish(p) => Some(&p.properties),
            Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
                Some(&r.properties)
            }
            Packet::Subscribe(p) => Some(&p.properties),
            Packet::SubAck(p) => Some(&p.properties),
            Packet::Unsubscribe(p) => Some(&p.properties),
            Packet::UnsubAck(p) => Some(&p.properties),
            Packet::Disconnect(p) => Some(&p.properties),
            Packet::Auth(p) => Some(&p.properties),
            Packet::PingReq | Packet::PingResp => None,
        }
    }
}

/// CONNECT. The protocol version is part of the packet: a server learns the
/// stream's version from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub protocol: Protocol,
    /// Clean Session (3.1, 3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties,
    pub client_id: ByteString,
    pub will: Option<Will>,
    pub username: Option<ByteString>,
    pub password: Option<Bytes>,
}

impl Connect {
    pub fn new(protocol: Protocol, client_id: impl Into<ByteString>) -> Connect {
        Connect {
            protocol,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::new(),
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (5.0).
    pub properties: Properties,
    pub topic: ByteString,
    pub payload: Bytes,
}

/// CONNACK. `code` is the 3.1/3.1.1 return code or the 5.0 reason code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAck {
    pub session_present: bool,
    pub code: u8,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in 5.0 when a Topic Alias property names the topic.
    pub topic: ByteString,
    /// Present on the wire only when `qos` > 0; ignored otherwise.
    pub packet_id: u16,
    pub properties: Properties,
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PubResponse {
    pub packet_id: u16,
    /// 5.0 reason code; always 0 in 3.1 / 3.1.1.
    pub reason_code: u8,
    pub properties: Properties,
}

impl PubResponse {
    pub fn new(packet_id: u16) -> PubResponse {
        PubResponse {
            packet_id,
            ..PubResponse::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    /// 5.0 only.
    pub no_local: bool,
    /// 5.0 only.
    pub retain_as_published: bool,
    /// 5.0 only: 0, 1 or 2.
    pub retain_handling: u8,
}

impl SubscriptionOptions {
    pub fn qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        }
    }
    /// The options byte as written for `protocol` (3.x carries only the QoS).
    pub fn to_byte(self, protocol: Protocol) -> u8 {
        let mut b = self.qos.as_u8();
        if protocol.is_v5() {
            b |= u8::from(self.no_local) << 2;
            b |= u8::from(self.retain_as_published) << 3;
            b |= (self.retain_handling & 0b11) << 4;
        }
        b
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub filter: ByteString,
    pub options: SubscriptionOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribe {
    pub packet_id: u16,
    pub properties: Properties,
    pub filters: Vec<Subscription>,
}

/// SUBACK. `reason_codes` are the 3.1.1 return codes or the 5.0 reason codes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubAck {
    pub packet_id: u16,
    pub properties: Properties,
    pub reason_codes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub properties: Properties,
    pub filters: Vec<ByteString>,
}

/// UNSUBACK. `reason_codes` is empty in 3.1 / 3.1.1 (no payload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnsubAck {
    pub packet_id: u16,
    pub properties: Properties,
    pub reason_codes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// 5.0 reason code; 0 in 3.1 / 3.1.1.
    pub reason_code: u8,
    pub properties: Properties,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    pub reason_code: u8,
    pub properties: Properties,
}
