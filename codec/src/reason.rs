//! Reason codes (5.0 section 2.4) and 3.1.1 return codes, with the set each
//! packet may carry.

use crate::types::{PacketType, Sender};
use crate::Protocol;

pub const SUCCESS: u8 = 0x00;
pub const GRANTED_QOS_1: u8 = 0x01;
pub const GRANTED_QOS_2: u8 = 0x02;
pub const DISCONNECT_WITH_WILL: u8 = 0x04;
pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
pub const CONTINUE_AUTHENTICATION: u8 = 0x18;
pub const REAUTHENTICATE: u8 = 0x19;
pub const UNSPECIFIED_ERROR: u8 = 0x80;
pub const MALFORMED_PACKET: u8 = 0x81;
pub const PROTOCOL_ERROR: u8 = 0x82;
pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
pub const CLIENT_IDENTIFIER_NOT_VALID: u8 = 0x85;
pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
pub const NOT_AUTHORIZED: u8 = 0x87;
pub const SERVER_UNAVAILABLE: u8 = 0x88;
pub const SERVER_BUSY: u8 = 0x89;
pub const BANNED: u8 = 0x8A;
pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
pub const BAD_AUTHENTICATION_METHOD: u8 = 0x8C;
pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
pub const SESSION_TAKEN_OVER: u8 = 0x8E;
pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
pub const TOPIC_NAME_INVALID: u8 = 0x90;
pub const PACKET_IDENTIFIER_IN_USE: u8 = 0x91;
pub const PACKET_IDENTIFIER_NOT_FOUND: u8 = 0x92;
pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
pub const PACKET_TOO_LARGE: u8 = 0x95;
pub const MESSAGE_RATE_TOO_HIGH: u8 = 0x96;
pub const QUOTA_EXCEEDED: u8 = 0x97;
pub const ADMINISTRATIVE_ACTION: u8 = 0x98;
pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
pub const RETAIN_NOT_SUPPORTED: u8 = 0x9A;
pub const QOS_NOT_SUPPORTED: u8 = 0x9B;
pub const USE_ANOTHER_SERVER: u8 = 0x9C;
pub const SERVER_MOVED: u8 = 0x9D;
pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9E;
pub const CONNECTION_RATE_EXCEEDED: u8 = 0x9F;
pub const MAXIMUM_CONNECT_TIME: u8 = 0xA0;
pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: u8 = 0xA1;
pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0xA2;

/// 3.1 / 3.1.1 CONNACK return codes.
pub mod v3 {
    pub const ACCEPTED: u8 = 0x00;
    pub const UNACCEPTABLE_PROTOCOL_VERSION: u8 = 0x01;
    pub const IDENTIFIER_REJECTED: u8 = 0x02;
    pub const SERVER_UNAVAILABLE: u8 = 0x03;
    pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x04;
    pub const NOT_AUTHORIZED: u8 = 0x05;
    /// SUBACK failure return code.
    pub const SUBACK_FAILURE: u8 = 0x80;
}

const CONNACK: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL: &[u8] = &[0x00, 0x92];
const SUBACK: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const AUTH: &[u8] = &[0x00, 0x18, 0x19];
/// DISCONNECT reason codes either side may send.
const DISCONNECT_BOTH: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
];
const DISCONNECT_CLIENT_ONLY: &[u8] = &[0x04];
const DISCONNECT_SERVER_ONLY: &[u8] = &[
    0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];

/// Whether `code` is one that `sender` may put in a packet of type `ty` (5.0),
/// or, for 3.1 / 3.1.1, a defined CONNACK / SUBACK return code.
#[inline]
pub fn is_valid(ty: PacketType, code: u8, sender: Sender, protocol: Protocol) -> bool {
    if !protocol.is_v5() {
        return match ty {
            PacketType::ConnAck => code <= 5,
            PacketType::SubAck => matches!(code, 0x00 | 0x01 | 0x02 | 0x80),
            _ => code == 0,
        };
    }
    match ty {
        PacketType::ConnAck => CONNACK.contains(&code),
        PacketType::PubAck | PacketType::PubRec => PUBACK.contains(&code),
        PacketType::PubRel | PacketType::PubComp => PUBREL.contains(&code),
        PacketType::SubAck => SUBACK.contains(&code),
        PacketType::UnsubAck => UNSUBACK.contains(&code),
        PacketType::Auth => AUTH.contains(&code),
        PacketType::Disconnect => {
            DISCONNECT_BOTH.contains(&code)
                || match sender {
                    Sender::Client => DISCONNECT_CLIENT_ONLY.contains(&code),
                    Sender::Server => DISCONNECT_SERVER_ONLY.contains(&code),
                }
        }
        _ => code == 0,
    }
}

/// The 5.0 name of a reason code as used in `ty` (several codes are named per packet).
pub fn name(code: u8, ty: PacketType) -> &'static str {
    match (code, ty) {
        (0x00, PacketType::SubAck) => "Granted QoS 0",
        (0x00, PacketType::Disconnect) => "Normal disconnection",
        (0x00, _) => "Success",
        (0x01, _) => "Granted QoS 1",
        (0x02, _) => "Granted QoS 2",
        (0x04, _) => "Disconnect with Will Message",
        (0x10, _) => "No matching subscribers",
        (0x11, _) => "No subscription existed",
        (0x18, _) => "Continue authentication",
        (0x19, _) => "Re-authenticate",
        (0x80, _) => "Unspecified error",
        (0x81, _) => "Malformed Packet",
        (0x82, _) => "Protocol Error",
        (0x83, _) => "Implementation specific error",
        (0x84, _) => "Unsupported Protocol Version",
        (0x85, _) => "Client Identifier not valid",
        (0x86, _) => "Bad User Name or Password",
        (0x87, _) => "Not authorized",
        (0x88, _) => "Server unavailable",
        (0x89, _) => "Server busy",
        (0x8A, _) => "Banned",
        (0x8B, _) => "Server shutting down",
        (0x8C, _) => "Bad authentication method",
        (0x8D, _) => "Keep Alive timeout",
        (0x8E, _) => "Session taken over",
        (0x8F, _) => "Topic Filter invalid",
        (0x90, _) => "Topic Name invalid",
        (0x91, _) => "Packet Identifier in use",
        (0x92, _) => "Packet Identifier not found",
        (0x93, _) => "Receive Maximum exceeded",
        (0x94, _) => "Topic Alias invalid",
        (0x95, _) => "Packet too large",
        (0x96, _) => "Message rate too high",
        (0x97, _) => "Quota exceeded",
        (0x98, _) => "Administrative action",
        (0x99, _) => "Payload format invalid",
        (0x9A, _) => "Retain not supported",
        (0x9B, _) => "QoS not supported",
        (0x9C, _) => "Use another server",
        (0x9D, _) => "Server moved",
        (0x9E, _) => "Shared Subscriptions not supported",
        (0x9F, _) => "Connection rate exceeded",
        (0xA0, _) => "Maximum connect time",
        (0xA1, _) => "Subscription Identifiers not supported",
        (0xA2, _) => "Wildcard Subscriptions not supported",
        _ => "unknown reason code",
    }
}

/// The name of a 3.1 / 3.1.1 CONNACK return code.
pub fn v3_connack_name(code: u8) -> &'static str {
    match code {
        0 => "Connection Accepted",
        1 => "Unacceptable protocol version",
        2 => "Identifier rejected",
        3 => "Server unavailable",
        4 => "Bad user name or password",
        5 => "Not authorized",
        _ => "reserved return code",
    }
}
