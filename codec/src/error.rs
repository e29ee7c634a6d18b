//! Decode errors: each names the rule it enforces.
//!
//! A [`DecodeError`] carries where (byte offset), in which packet, under which
//! version and from which sender, and a [`ErrorKind`] that says what. From
//! those it derives the normative statement id (which differs per version for
//! the same rule), the 5.0 reason code a receiver should answer with, and the
//! verdict class (malformed: could not be parsed; protocol error: parsed, but
//! breaks a rule).

use crate::topic::TopicError;
use crate::types::{PacketType, Sender};
use crate::Protocol;

/// Malformed (cannot be parsed) versus protocol error (parsed, breaks a rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Malformed,
    ProtocolError,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Malformed => "malformed",
            Class::ProtocolError => "protocol_error",
        }
    }
}

/// Which string field a string error is about.
pub type Field = &'static str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Packet type 0, or 15 (AUTH) before 5.0.
    ReservedPacketType(u8),
    /// A Variable Byte Integer longer than four bytes.
    VarintTooLong {
        field: Field,
    },
    /// A Variable Byte Integer not in its shortest form (5.0 only).
    VarintNotMinimal {
        field: Field,
    },
    /// The fixed header announces more than the configured maximum.
    PacketTooLarge {
        size: u64,
        max: u32,
    },
    /// Fixed-header flag bits other than the ones the spec prescribes.
    InvalidFlags {
        flags: u8,
    },
    /// A packet type the sender may never send (a CONNACK from a client).
    WrongDirection,
    /// The packet ended inside a field: the remaining length is too short.
    UnexpectedEnd {
        field: Field,
    },
    /// Bytes left over after the last field.
    TrailingBytes {
        count: usize,
    },
    /// Ill-formed UTF-8 (overlong forms, surrogates, invalid sequences).
    InvalidUtf8 {
        field: Field,
    },
    /// U+0000 in a UTF-8 string.
    NullCharacter {
        field: Field,
    },
    /// PUBLISH with both QoS bits set.
    PublishQos3,
    /// PUBLISH with DUP set at QoS 0.
    DupOnQos0,
    /// Packet identifier 0 where a non-zero one is required.
    PacketIdZero,
    /// A topic name that is not well formed.
    TopicName {
        field: Field,
        error: TopicError,
    },
    /// PUBLISH with an empty topic and (5.0) no Topic Alias.
    EmptyTopic,
    /// CONNECT protocol name not "MQTT" (or "MQIsdp" for level 3).
    ProtocolName {
        name: String,
    },
    /// CONNECT protocol level not 3, 4 or 5.
    ProtocolLevel {
        level: u8,
    },
    /// CONNECT flags bit 0 set.
    ConnectReservedFlag,
    WillQosWithoutWill,
    WillRetainWithoutWill,
    WillQos3,
    /// 3.1 / 3.1.1: password flag without user name flag.
    PasswordWithoutUsername,
    /// CONNACK acknowledge-flags bits 7-1 set.
    ConnAckReservedFlags,
    /// CONNACK with Session Present and a non-zero code.
    SessionPresentOnFailure,
    /// A reason / return code that this packet may not carry.
    InvalidReasonCode {
        code: u8,
    },
    /// SUBSCRIBE or UNSUBSCRIBE without a single topic filter.
    NoTopicFilters,
    /// Subscription options reserved bits set.
    SubscriptionOptionsReserved {
        options: u8,
    },
    /// Requested QoS 3 in a subscription.
    SubscriptionQos3,
    /// Retain Handling 3 in a subscription.
    RetainHandling3,
    /// A topic filter that is not well formed.
    TopicFilter {
        error: TopicError,
    },
    /// No Local on a shared subscription.
    NoLocalOnShared,
    /// A property identifier 5.0 does not define.
    UnknownProperty {
        id: u8,
    },
    /// A property not allowed in this packet (or will properties).
    PropertyNotAllowed {
        id: u8,
    },
    /// A property that may appear once, appearing twice.
    DuplicateProperty {
        id: u8,
    },
    /// A property value outside what the spec allows (0 where it may not be, 2 for a boolean…).
    PropertyValue {
        id: u8,
        value: u32,
    },
    /// The property length runs past the packet.
    PropertyLengthOverflow,
    /// Authentication Data without Authentication Method.
    AuthDataWithoutMethod,
    /// Subscription Identifier in a PUBLISH sent by a client.
    SubscriptionIdFromClient,
    /// Session Expiry Interval in a DISCONNECT sent by a server.
    SessionExpiryFromServer,
}

/// A rejected input: what, where, and which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset of the offending field, from the start of the input.
    pub offset: usize,
    /// The packet being decoded, once its type is known.
    pub packet: Option<PacketType>,
    pub protocol: Protocol,
    pub from: Sender,
    pub kind: ErrorKind,
}

fn v(protocol: Protocol, v311: &'static str, v5: &'static str) -> Option<&'static str> {
    Some(if protocol.is_v5() { v5 } else { v311 })
}

impl DecodeError {
    /// The normative statement this rejection enforces, where the spec numbers one.
    pub fn statement(&self) -> Option<&'static str> {
        use ErrorKind::*;
        let p = self.protocol;
        let v5 = p.is_v5();
        let ty = self.packet;
        match &self.kind {
            ReservedPacketType(_) | VarintTooLong { .. } | WrongDirection => None,
            VarintNotMinimal { .. } => v5.then_some("MQTT-1.5.5-1"),
            PacketTooLarge { .. } => {
                if !v5 {
                    None
                } else if self.from == Sender::Client {
                    Some("MQTT-3.2.2-15")
                } else {
                    Some("MQTT-3.1.2-24")
                }
            }
            InvalidFlags { .. } => match ty {
                Some(PacketType::PubRel) => Some("MQTT-3.6.1-1"),
                Some(PacketType::Subscribe) => Some("MQTT-3.8.1-1"),
                Some(PacketType::Unsubscribe) => Some("MQTT-3.10.1-1"),
                // 3.1.1 numbers the DISCONNECT reserved-bits rule too (a server checks it).
                Some(PacketType::Disconnect) => Some("MQTT-3.14.1-1"),
                Some(PacketType::Auth) => Some("MQTT-3.15.1-1"),
                _ => v(p, "MQTT-2.2.2-1", "MQTT-2.1.3-1"),
            },
            UnexpectedEnd {
                field: "property_length",
            } if v5 => Some("MQTT-2.2.2-1"),
            UnexpectedEnd { field } if ty == Some(PacketType::Connect) => match (*field, v5) {
                ("will_topic" | "will_payload" | "will_properties", _) => Some("MQTT-3.1.2-9"),
                ("username", false) => Some("MQTT-3.1.2-19"),
                ("username", true) => Some("MQTT-3.1.2-17"),
                ("password", false) => Some("MQTT-3.1.2-21"),
                ("password", true) => Some("MQTT-3.1.2-19"),
                _ => Some("MQTT-3.1.4-1"),
            },
            TrailingBytes { .. } if ty == Some(PacketType::Connect) => Some("MQTT-3.1.4-1"),
            UnexpectedEnd { .. } | TrailingBytes { .. } => None,
            InvalidUtf8 { .. } => v(p, "MQTT-1.5.3-1", "MQTT-1.5.4-1"),
            NullCharacter { .. } => v(p, "MQTT-1.5.3-2", "MQTT-1.5.4-2"),
            PublishQos3 => Some("MQTT-3.3.1-4"),
            DupOnQos0 => Some("MQTT-3.3.1-2"),
            PacketIdZero => match ty {
                Some(
                    PacketType::PubAck
                    | PacketType::PubRec
                    | PacketType::PubRel
                    | PacketType::PubComp,
                ) => v(p, "MQTT-2.3.1-6", "MQTT-2.2.1-5"),
                Some(PacketType::SubAck | PacketType::UnsubAck) => {
                    v(p, "MQTT-2.3.1-7", "MQTT-2.2.1-6")
                }
                _ if !v5 => Some("MQTT-2.3.1-1"),
                _ if self.from == Sender::Client => Some("MQTT-2.2.1-3"),
                _ => Some("MQTT-2.2.1-4"),
            },
            TopicName {
                error: TopicError::Empty,
                ..
            } => Some("MQTT-4.7.3-1"),
            TopicName { field, .. } if *field == "response_topic" => v5.then_some("MQTT-3.3.2-14"),
            TopicName { field, .. } if *field == "will_topic" => {
                v(p, "MQTT-4.7.1-1", "MQTT-4.7.0-1")
            }
            TopicName { .. } => Some("MQTT-3.3.2-2"),
            EmptyTopic => Some("MQTT-4.7.3-1"),
            ProtocolName { .. } => Some("MQTT-3.1.2-1"),
            ProtocolLevel { .. } => Some("MQTT-3.1.2-2"),
            ConnectReservedFlag => Some("MQTT-3.1.2-3"),
            WillQosWithoutWill => v(p, "MQTT-3.1.2-13", "MQTT-3.1.2-11"),
            WillRetainWithoutWill => v(p, "MQTT-3.1.2-15", "MQTT-3.1.2-13"),
            WillQos3 => v(p, "MQTT-3.1.2-14", "MQTT-3.1.2-12"),
            PasswordWithoutUsername => (!v5).then_some("MQTT-3.1.2-22"),
            ConnAckReservedFlags => v5.then_some("MQTT-3.2.2-1"),
            SessionPresentOnFailure => v(p, "MQTT-3.2.2-4", "MQTT-3.2.2-6"),
            InvalidReasonCode { .. } => match (ty, v5) {
                (Some(PacketType::ConnAck), true) => Some("MQTT-3.2.2-8"),
                (Some(PacketType::PubAck), true) => Some("MQTT-3.4.2-1"),
                (Some(PacketType::PubRec), true) => Some("MQTT-3.5.2-1"),
                (Some(PacketType::PubRel), true) => Some("MQTT-3.6.2-1"),
                (Some(PacketType::PubComp), true) => Some("MQTT-3.7.2-1"),
                (Some(PacketType::SubAck), _) => Some("MQTT-3.9.3-2"),
                (Some(PacketType::UnsubAck), true) => Some("MQTT-3.11.3-2"),
                (Some(PacketType::Disconnect), true) => Some("MQTT-3.14.2-1"),
                (Some(PacketType::Auth), true) => Some("MQTT-3.15.2-1"),
                _ => None,
            },
            NoTopicFilters => match ty {
                Some(PacketType::Unsubscribe) => Some("MQTT-3.10.3-2"),
                _ => v(p, "MQTT-3.8.3-3", "MQTT-3.8.3-2"),
            },
            SubscriptionOptionsReserved { .. } => v(p, "MQTT-3.8.3-4", "MQTT-3.8.3-5"),
            SubscriptionQos3 => (!v5).then_some("MQTT-3.8.3-4"),
            RetainHandling3 => None,
            TopicFilter { error } => match error {
                TopicError::Empty => Some("MQTT-4.7.3-1"),
                TopicError::MultiLevelMisplaced => v(p, "MQTT-4.7.1-2", "MQTT-4.7.1-1"),
                TopicError::SingleLevelMisplaced => v(p, "MQTT-4.7.1-3", "MQTT-4.7.1-2"),
                TopicError::ShareNameEmpty => Some("MQTT-4.8.2-1"),
                TopicError::ShareNameInvalid | TopicError::SharedFilterMissing => {
                    Some("MQTT-4.8.2-2")
                }
                TopicError::WildcardInName => None,
            },
            NoLocalOnShared => Some("MQTT-3.8.3-4"),
            UnknownProperty { .. } | PropertyNotAllowed { .. } | DuplicateProperty { .. } => None,
            PropertyValue { id: 0x23, .. } => Some("MQTT-3.3.2-8"),
            PropertyValue { .. } | PropertyLengthOverflow | AuthDataWithoutMethod => None,
            SubscriptionIdFromClient => Some("MQTT-3.3.4-6"),
            SessionExpiryFromServer => Some("MQTT-3.14.2-2"),
        }
    }

    /// The 5.0 reason code a receiver should send (in CONNACK or DISCONNECT).
    pub fn reason_code(&self) -> u8 {
        use ErrorKind::*;
        match &self.kind {
            PacketTooLarge { .. } => crate::reason::PACKET_TOO_LARGE,
            ProtocolName { .. } | ProtocolLevel { .. } => {
                crate::reason::UNSUPPORTED_PROTOCOL_VERSION
            }
            TopicName { field, .. } if *field == "topic" => crate::reason::TOPIC_NAME_INVALID,
            TopicFilter { .. } => crate::reason::TOPIC_FILTER_INVALID,
            PropertyValue { id: 0x23, .. } => crate::reason::TOPIC_ALIAS_INVALID,
            _ => match self.class() {
                Class::Malformed => crate::reason::MALFORMED_PACKET,
                Class::ProtocolError => crate::reason::PROTOCOL_ERROR,
            },
        }
    }

    pub fn class(&self) -> Class {
        use ErrorKind::*;
        match &self.kind {
            // 3.1.1 files QoS 3 in a subscription under malformed (MQTT-3.8.3-4).
            SubscriptionQos3 if !self.protocol.is_v5() => Class::Malformed,
            ReservedPacketType(_)
            | VarintTooLong { .. }
            | VarintNotMinimal { .. }
            | InvalidFlags { .. }
            | UnexpectedEnd { .. }
            | TrailingBytes { .. }
            | InvalidUtf8 { .. }
            | NullCharacter { .. }
            | PublishQos3
            | DupOnQos0
            | ConnectReservedFlag
            | WillQosWithoutWill
            | WillRetainWithoutWill
            | WillQos3
            | PasswordWithoutUsername
            | ConnAckReservedFlags
            | SubscriptionOptionsReserved { .. }
            | UnknownProperty { .. }
            | PropertyNotAllowed { .. }
            | PropertyLengthOverflow => Class::Malformed,
            PacketTooLarge { .. }
            | WrongDirection
            | PacketIdZero
            | TopicName { .. }
            | EmptyTopic
            | ProtocolName { .. }
            | ProtocolLevel { .. }
            | SessionPresentOnFailure
            | InvalidReasonCode { .. }
            | NoTopicFilters
            | SubscriptionQos3
            | RetainHandling3
            | TopicFilter { .. }
            | NoLocalOnShared
            | DuplicateProperty { .. }
            | PropertyValue { .. }
            | AuthDataWithoutMethod
            | SubscriptionIdFromClient
            | SessionExpiryFromServer => Class::ProtocolError,
        }
    }

    /// One line for people: what is wrong.
    pub fn message(&self) -> String {
        use ErrorKind::*;
        let prop = |id: u8| {
            crate::props::info(id).map_or_else(
                || format!("property 0x{id:02X}"),
                |i| format!("property {} (0x{id:02X})", i.name),
            )
        };
        match &self.kind {
            ReservedPacketType(t) => format!("packet type {t} is reserved in MQTT {}", self.protocol),
            VarintTooLong { field } => format!("{field}: variable byte integer longer than 4 bytes"),
            VarintNotMinimal { field } => format!("{field}: variable byte integer not encoded in the fewest bytes"),
            PacketTooLarge { size, max } => format!("packet of {size} bytes exceeds the maximum packet size of {max}"),
            InvalidFlags { flags } => format!("fixed header flags 0x{flags:X} are not the ones this packet type requires"),
            WrongDirection => format!(
                "a {} may not send {}",
                self.from.as_str(),
                self.packet.map_or("this packet", |t| t.name())
            ),
            UnexpectedEnd { field } => format!("packet ends inside {field}: the remaining length is too short for its contents"),
            TrailingBytes { count } => format!("{count} byte(s) left over after the last field: the remaining length is too long for the contents"),
            InvalidUtf8 { field } => format!("{field}: not well-formed UTF-8"),
            NullCharacter { field } => format!("{field}: contains U+0000"),
            PublishQos3 => "PUBLISH with QoS 3 (both QoS bits set)".into(),
            DupOnQos0 => "PUBLISH with DUP set at QoS 0".into(),
            PacketIdZero => "packet identifier 0 where a non-zero one is required".into(),
            TopicName { field, error } => format!("{field} {}", error.describe()),
            EmptyTopic => "PUBLISH with an empty topic name (and no Topic Alias)".into(),
            ProtocolName { name } => format!("protocol name {name:?} is not \"MQTT\" (or \"MQIsdp\" at level 3)"),
            ProtocolLevel { level } => format!("protocol level {level} is not 3, 4 or 5"),
            ConnectReservedFlag => "CONNECT flags reserved bit 0 is set".into(),
            WillQosWithoutWill => "Will QoS is non-zero while the Will Flag is 0".into(),
            WillRetainWithoutWill => "Will Retain is set while the Will Flag is 0".into(),
            WillQos3 => "Will QoS is 3".into(),
            PasswordWithoutUsername => "Password Flag set without the User Name Flag".into(),
            ConnAckReservedFlags => "CONNACK acknowledge flags bits 7-1 are not 0".into(),
            SessionPresentOnFailure => "CONNACK with Session Present set and a non-zero code".into(),
            InvalidReasonCode { code } => format!(
                "0x{code:02X} is not a code a {} may put in {}",
                self.from.as_str(),
                self.packet.map_or("this packet", |t| t.name())
            ),
            NoTopicFilters => format!("{} without any topic filter", self.packet.map_or("packet", |t| t.name())),
            SubscriptionOptionsReserved { options } => format!("subscription options 0x{options:02X} have reserved bits set"),
            SubscriptionQos3 => "subscription requests QoS 3".into(),
            RetainHandling3 => "subscription has Retain Handling 3".into(),
            TopicFilter { error } => format!("topic filter {}", error.describe()),
            NoLocalOnShared => "No Local set on a shared subscription".into(),
            UnknownProperty { id } => format!("property identifier 0x{id:02X} is not defined by MQTT 5.0"),
            PropertyNotAllowed { id } => format!("{} is not allowed here", prop(*id)),
            DuplicateProperty { id } => format!("{} appears more than once", prop(*id)),
            PropertyValue { id, value } => format!("{} has the value {value}, which is not allowed", prop(*id)),
            PropertyLengthOverflow => "property length runs past the end of the packet".into(),
            AuthDataWithoutMethod => "Authentication Data without Authentication Method".into(),
            SubscriptionIdFromClient => "Subscription Identifier in a PUBLISH sent by a client".into(),
            SessionExpiryFromServer => "Session Expiry Interval in a DISCONNECT sent by a server".into(),
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}",
            self.class().as_str().replace('_', " "),
            self.offset
        )?;
        if let Some(t) = self.packet {
            write!(f, " in {t}")?;
        }
        write!(f, ": {}", self.message())?;
        if let Some(s) = self.statement() {
            write!(f, " [{s}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}
