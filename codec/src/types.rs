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

/// A control packet with borrowed strings and binaries, as [`crate::decode::decode_slice`]
/// returns it: no allocation, no reference counting.
pub type PacketRef<'a> = Packet<&'a str, &'a [u8]>;

/// A decoded or to-be-encoded control packet. `S` and `B` are the string and
/// binary types: owned and zero-copy (`ByteString`, `Bytes`, the default) or
/// borrowed (`&str`, `&[u8]`, see [`PacketRef`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<S = ByteString, B = Bytes> {
    /// Boxed: a CONNECT is large and rare, and every other packet moves faster for it.
    Connect(Box<Connect<S, B>>),
    ConnAck(ConnAck<S, B>),
    Publish(Publish<S, B>),
    PubAck(PubResponse<S, B>),
    PubRec(PubResponse<S, B>),
    PubRel(PubResponse<S, B>),
    PubComp(PubResponse<S, B>),
    Subscribe(Subscribe<S, B>),
    SubAck(SubAck<S, B>),
    Unsubscribe(Unsubscribe<S, B>),
    UnsubAck(UnsubAck<S, B>),
    PingReq,
    PingResp,
    Disconnect(Disconnect<S, B>),
    Auth(Auth<S, B>),
}

impl<S, B> Packet<S, B> {
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

    pub fn properties(&self) -> Option<&Properties<S, B>> {
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
pub struct Connect<S = ByteString, B = Bytes> {
    pub protocol: Protocol,
    /// Clean Session (3.1, 3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    pub properties: Properties<S, B>,
    pub client_id: S,
    pub will: Option<Will<S, B>>,
    pub username: Option<S>,
    pub password: Option<B>,
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
pub struct Will<S = ByteString, B = Bytes> {
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (5.0).
    pub properties: Properties<S, B>,
    pub topic: S,
    pub payload: B,
}

/// CONNACK. `code` is the 3.1/3.1.1 return code or the 5.0 reason code.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnAck<S = ByteString, B = Bytes> {
    pub session_present: bool,
    pub code: u8,
    pub properties: Properties<S, B>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Publish<S = ByteString, B = Bytes> {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in 5.0 when a Topic Alias property names the topic.
    pub topic: S,
    /// Present on the wire only when `qos` > 0; ignored otherwise.
    pub packet_id: u16,
    pub properties: Properties<S, B>,
    pub payload: B,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PubResponse<S = ByteString, B = Bytes> {
    pub packet_id: u16,
    /// 5.0 reason code; always 0 in 3.1 / 3.1.1.
    pub reason_code: u8,
    pub properties: Properties<S, B>,
}

impl<S, B> PubResponse<S, B> {
    pub fn new(packet_id: u16) -> Self {
        PubResponse {
            packet_id,
            reason_code: 0,
            properties: Properties::new(),
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
pub struct Subscription<S = ByteString> {
    pub filter: S,
    pub options: SubscriptionOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribe<S = ByteString, B = Bytes> {
    pub packet_id: u16,
    pub properties: Properties<S, B>,
    pub filters: Vec<Subscription<S>>,
}

/// SUBACK. `reason_codes` are the 3.1.1 return codes or the 5.0 reason codes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubAck<S = ByteString, B = Bytes> {
    pub packet_id: u16,
    pub properties: Properties<S, B>,
    pub reason_codes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unsubscribe<S = ByteString, B = Bytes> {
    pub packet_id: u16,
    pub properties: Properties<S, B>,
    pub filters: Vec<S>,
}

/// UNSUBACK. `reason_codes` is empty in 3.1 / 3.1.1 (no payload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnsubAck<S = ByteString, B = Bytes> {
    pub packet_id: u16,
    pub properties: Properties<S, B>,
    pub reason_codes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect<S = ByteString, B = Bytes> {
    /// 5.0 reason code; 0 in 3.1 / 3.1.1.
    pub reason_code: u8,
    pub properties: Properties<S, B>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth<S = ByteString, B = Bytes> {
    pub reason_code: u8,
    pub properties: Properties<S, B>,
}

/// Converts one packet representation into another, field by field.
struct Conv<FS, FB> {
    s: FS,
    b: FB,
}

impl<FS, FB> Conv<FS, FB> {
    fn props<S, B, S2, B2>(&mut self, p: &Properties<S, B>) -> Properties<S2, B2>
    where
        FS: FnMut(&S) -> S2,
        FB: FnMut(&B) -> B2,
    {
        use crate::props::Property as P;
        Properties(
            p.iter()
                .map(|x| match x {
                    P::PayloadFormatIndicator(v) => P::PayloadFormatIndicator(*v),
                    P::MessageExpiryInterval(v) => P::MessageExpiryInterval(*v),
                    P::ContentType(v) => P::ContentType((self.s)(v)),
                    P::ResponseTopic(v) => P::ResponseTopic((self.s)(v)),
                    P::CorrelationData(v) => P::CorrelationData((self.b)(v)),
                    P::SubscriptionIdentifier(v) => P::SubscriptionIdentifier(*v),
                    P::SessionExpiryInterval(v) => P::SessionExpiryInterval(*v),
                    P::AssignedClientIdentifier(v) => P::AssignedClientIdentifier((self.s)(v)),
                    P::ServerKeepAlive(v) => P::ServerKeepAlive(*v),
                    P::AuthenticationMethod(v) => P::AuthenticationMethod((self.s)(v)),
                    P::AuthenticationData(v) => P::AuthenticationData((self.b)(v)),
                    P::RequestProblemInformation(v) => P::RequestProblemInformation(*v),
                    P::WillDelayInterval(v) => P::WillDelayInterval(*v),
                    P::RequestResponseInformation(v) => P::RequestResponseInformation(*v),
                    P::ResponseInformation(v) => P::ResponseInformation((self.s)(v)),
                    P::ServerReference(v) => P::ServerReference((self.s)(v)),
                    P::ReasonString(v) => P::ReasonString((self.s)(v)),
                    P::ReceiveMaximum(v) => P::ReceiveMaximum(*v),
                    P::TopicAliasMaximum(v) => P::TopicAliasMaximum(*v),
                    P::TopicAlias(v) => P::TopicAlias(*v),
                    P::MaximumQoS(v) => P::MaximumQoS(*v),
                    P::RetainAvailable(v) => P::RetainAvailable(*v),
                    P::UserProperty(k, v) => P::UserProperty((self.s)(k), (self.s)(v)),
                    P::MaximumPacketSize(v) => P::MaximumPacketSize(*v),
                    P::WildcardSubscriptionAvailable(v) => P::WildcardSubscriptionAvailable(*v),
                    P::SubscriptionIdentifierAvailable(v) => P::SubscriptionIdentifierAvailable(*v),
                    P::SharedSubscriptionAvailable(v) => P::SharedSubscriptionAvailable(*v),
                })
                .collect(),
        )
    }

    fn resp<S, B, S2, B2>(&mut self, r: &PubResponse<S, B>) -> PubResponse<S2, B2>
    where
        FS: FnMut(&S) -> S2,
        FB: FnMut(&B) -> B2,
    {
        PubResponse {
            packet_id: r.packet_id,
            reason_code: r.reason_code,
            properties: self.props(&r.properties),
        }
    }

    fn packet<S, B, S2, B2>(&mut self, p: &Packet<S, B>) -> Packet<S2, B2>
    where
        FS: FnMut(&S) -> S2,
        FB: FnMut(&B) -> B2,
    {
        match p {
            Packet::Connect(c) => Packet::Connect(Box::new(Connect {
                protocol: c.protocol,
                clean_start: c.clean_start,
                keep_alive: c.keep_alive,
                properties: self.props(&c.properties),
                client_id: (self.s)(&c.client_id),
                will: c.will.as_ref().map(|w| Will {
                    qos: w.qos,
                    retain: w.retain,
                    properties: self.props(&w.properties),
                    topic: (self.s)(&w.topic),
                    payload: (self.b)(&w.payload),
                }),
                username: c.username.as_ref().map(&mut self.s),
                password: c.password.as_ref().map(&mut self.b),
            })),
            Packet::ConnAck(c) => Packet::ConnAck(ConnAck {
                session_present: c.session_present,
                code: c.code,
                properties: self.props(&c.properties),
            }),
            Packet::Publish(x) => Packet::Publish(Publish {
                dup: x.dup,
                qos: x.qos,
                retain: x.retain,
                topic: (self.s)(&x.topic),
                packet_id: x.packet_id,
                properties: self.props(&x.properties),
                payload: (self.b)(&x.payload),
            }),
            Packet::PubAck(r) => Packet::PubAck(self.resp(r)),
            Packet::PubRec(r) => Packet::PubRec(self.resp(r)),
            Packet::PubRel(r) => Packet::PubRel(self.resp(r)),
            Packet::PubComp(r) => Packet::PubComp(self.resp(r)),
            Packet::Subscribe(x) => Packet::Subscribe(Subscribe {
                packet_id: x.packet_id,
                properties: self.props(&x.properties),
                filters: x
                    .filters
                    .iter()
                    .map(|f| Subscription {
                        filter: (self.s)(&f.filter),
                        options: f.options,
                    })
                    .collect(),
            }),
            Packet::SubAck(x) => Packet::SubAck(SubAck {
                packet_id: x.packet_id,
                properties: self.props(&x.properties),
                reason_codes: x.reason_codes.clone(),
            }),
            Packet::Unsubscribe(x) => Packet::Unsubscribe(Unsubscribe {
                packet_id: x.packet_id,
                properties: self.props(&x.properties),
                filters: x.filters.iter().map(&mut self.s).collect(),
            }),
            Packet::UnsubAck(x) => Packet::UnsubAck(UnsubAck {
                packet_id: x.packet_id,
                properties: self.props(&x.properties),
                reason_codes: x.reason_codes.clone(),
            }),
            Packet::PingReq => Packet::PingReq,
            Packet::PingResp => Packet::PingResp,
            Packet::Disconnect(x) => Packet::Disconnect(Disconnect {
                reason_code: x.reason_code,
                properties: self.props(&x.properties),
            }),
            Packet::Auth(x) => Packet::Auth(Auth {
                reason_code: x.reason_code,
                properties: self.props(&x.properties),
            }),
        }
    }
}

impl PacketRef<'_> {
    /// An owned copy, for a packet that must outlive the buffer it was decoded from.
    pub fn to_owned_packet(&self) -> Packet {
        Conv {
            s: |s: &&str| ByteString::from(*s),
            b: |b: &&[u8]| Bytes::copy_from_slice(b),
        }
        .packet(self)
    }
}
