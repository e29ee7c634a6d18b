//! The decoder's single-packet checks, one by one.
//!
//! For each rule the decoder enforces there is a valid side (a correct packet
//! decodes to the expected typed value) and an invalid side (the bad bytes are
//! refused with the exact statement id for that version, the class, the 5.0
//! reason code and the byte offset). Inputs are literal bytes written with
//! [`hex`], so the tests do not depend on the encoder; the tests at the end
//! build invalid packets from valid ones with `encode_with` + `Overrides`,
//! which checks the encoder's override path as well.

use bytes::{Bytes, BytesMut};
use mqtt_codec::topic::TopicError;
use mqtt_codec::{
    decode_bytes, encode_bytes, encode_with, Auth, Class, ConnAck, Connect, DecodeError,
    DecodeOptions, Decoded, Decoder, Disconnect, EncodeError, ErrorKind, Overrides, Packet,
    PacketType, Properties, Property, Protocol, PubResponse, Publish, QoS, Sender, SubAck,
    Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};

const V31: Protocol = Protocol::V3_1;
const V311: Protocol = Protocol::V3_1_1;
const V5: Protocol = Protocol::V5;
const ALL: [Protocol; 3] = Protocol::ALL;
const C: Sender = Sender::Client;
const S: Sender = Sender::Server;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Bytes from hex pairs; `"text"` inserts the text's UTF-8 bytes. Whitespace
/// outside quotes is ignored: `hex("30 05 00 03 \"a/b\"")`.
fn hex(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
            hi => {
                let lo = chars.next().expect("hex digits come in pairs");
                let pair: String = [hi, lo].iter().collect();
                out.push(u8::from_str_radix(&pair, 16).expect("a hex digit"));
            }
        }
    }
    out
}

fn show(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A length-prefixed field (UTF-8 string or binary data).
fn lp(data: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(data.len())
        .expect("short field")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(data);
    out
}

/// A whole packet from its first byte and a body shorter than 128 bytes.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![
        first,
        u8::try_from(body.len())
            .ok()
            .filter(|&l| l < 128)
            .expect("short body"),
    ];
    out.extend_from_slice(body);
    out
}

fn opts(p: Protocol, from: Sender) -> DecodeOptions {
    DecodeOptions::new(p, from)
}

/// Picks the 3.1.1 id (also used for 3.1) or the 5.0 id.
fn id(p: Protocol, v311: &'static str, v5: &'static str) -> &'static str {
    if p == V5 {
        v5
    } else {
        v311
    }
}

/// Decodes one whole packet that must be valid and fill `bytes` exactly.
#[track_caller]
fn decode(p: Protocol, from: Sender, bytes: &[u8]) -> Packet {
    let input = Bytes::copy_from_slice(bytes);
    match decode_bytes(&input, &opts(p, from)) {
        Ok(Decoded::Packet { packet, len }) => {
            assert_eq!(
                len,
                bytes.len(),
                "{p} from {}: consumed length of {}",
                from.as_str(),
                show(bytes)
            );
            packet
        }
        Ok(other) => panic!(
            "{p} from {}: expected a packet from {}, got {other:?}",
            from.as_str(),
            show(bytes)
        ),
        Err(e) => panic!(
            "{p} from {}: expected {} to decode, got: {e}",
            from.as_str(),
            show(bytes)
        ),
    }
}

/// What a rejection must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Want {
    statement: Option<&'static str>,
    class: Class,
    reason: u8,
    offset: usize,
}

impl Want {
    fn reason(self, reason: u8) -> Want {
        Want { reason, ..self }
    }
}

/// Malformed Packet, reason code 0x81.
fn malformed(statement: impl Into<Option<&'static str>>, offset: usize) -> Want {
    Want {
        statement: statement.into(),
        class: Class::Malformed,
        reason: 0x81,
        offset,
    }
}

/// Protocol Error, reason code 0x82 (unless overridden with `.reason()`).
fn protocol_error(statement: impl Into<Option<&'static str>>, offset: usize) -> Want {
    Want {
        statement: statement.into(),
        class: Class::ProtocolError,
        reason: 0x82,
        offset,
    }
}

#[track_caller]
fn check(e: &DecodeError, want: Want, context: &str) {
    let got = Want {
        statement: e.statement(),
        class: e.class(),
        reason: e.reason_code(),
        offset: e.offset,
    };
    assert_eq!(got, want, "{context}: {e} ({:?})", e.kind);
}

/// Decodes bytes that must be refused as `want` says.
#[track_caller]
fn reject(p: Protocol, from: Sender, bytes: &[u8], want: Want) -> DecodeError {
    let input = Bytes::copy_from_slice(bytes);
    let context = format!("{p} from {}: {}", from.as_str(), show(bytes));
    match decode_bytes(&input, &opts(p, from)) {
        Err(e) => {
            check(&e, want, &context);
            e
        }
        Ok(other) => panic!("{context}: expected a rejection ({want:?}), got {other:?}"),
    }
}

#[track_caller]
fn publish(p: Protocol, from: Sender, bytes: &[u8]) -> Publish {
    match decode(p, from, bytes) {
        Packet::Publish(x) => x,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

#[track_caller]
fn connect(p: Protocol, bytes: &[u8]) -> Connect {
    match decode(p, C, bytes) {
        Packet::Connect(x) => *x,
        other => panic!("expected CONNECT, got {other:?}"),
    }
}

#[track_caller]
fn subscribe(p: Protocol, bytes: &[u8]) -> Subscribe {
    match decode(p, C, bytes) {
        Packet::Subscribe(x) => x,
        other => panic!("expected SUBSCRIBE, got {other:?}"),
    }
}

fn props(list: impl IntoIterator<Item = Property>) -> Properties {
    list.into_iter().collect()
}

fn s(text: &str) -> mqtt_codec::ByteString {
    text.into()
}

// ---------------------------------------------------------------------------
// Variable Byte Integer: remaining length
// ---------------------------------------------------------------------------

#[test]
fn remaining_length_of_four_bytes_is_the_longest_accepted() {
    for p in ALL {
        let input = Bytes::from(hex("30 FF FF FF 7F"));
        assert_eq!(
            decode_bytes(&input, &opts(p, C)),
            Ok(Decoded::Incomplete {
                needed: 268_435_455
            }),
            "{p}"
        );
        // A real two-byte remaining length: 130 = 0x82 0x01.
        let mut bytes = hex("30 82 01 00 01 \"t\"");
        if p == V5 {
            bytes.push(0);
        }
        bytes.resize(133, 0xAB);
        let msg = publish(p, C, &bytes);
        assert_eq!(msg.topic, "t");
        assert_eq!(msg.payload.len(), if p == V5 { 126 } else { 127 });
    }
}

#[test]
fn remaining_length_longer_than_four_bytes_is_malformed() {
    for p in ALL {
        for from in [C, S] {
            let e = reject(p, from, &hex("30 FF FF FF FF 01"), malformed(None, 1));
            assert_eq!(
                e.kind,
                ErrorKind::VarintTooLong {
                    field: "remaining_length"
                }
            );
            assert_eq!(e.packet, Some(PacketType::Publish));
            // Even five continuation bytes with nothing after them are refused at once.
            reject(p, from, &hex("30 80 80 80 80"), malformed(None, 1));
        }
    }
}

#[test]
fn variable_byte_integer_in_a_property_longer_than_four_bytes_is_malformed() {
    // Subscription Identifier FF FF FF FF 01 in a server PUBLISH; the value starts at 7.
    let e = reject(
        V5,
        S,
        &hex("30 0A 00 01 \"a\" 06 0B FF FF FF FF 01"),
        malformed(None, 7),
    );
    assert_eq!(
        e.kind,
        ErrorKind::VarintTooLong {
            field: "subscription_identifier"
        }
    );
    // The largest four-byte value is fine.
    let msg = publish(V5, S, &hex("30 09 00 01 \"a\" 05 0B FF FF FF 7F"));
    assert_eq!(
        msg.properties
            .subscription_identifiers()
            .collect::<Vec<_>>(),
        [268_435_455]
    );
}

#[test]
fn non_minimal_remaining_length_is_refused_in_5_only() {
    // PINGREQ whose remaining length 0 is written in two bytes.
    let e = reject(V5, C, &hex("C0 80 00"), malformed("MQTT-1.5.5-1", 1));
    assert_eq!(
        e.kind,
        ErrorKind::VarintNotMinimal {
            field: "remaining_length"
        }
    );
    // 3 written in three bytes.
    reject(
        V5,
        C,
        &hex("30 83 80 00 00 01 \"a\" 00"),
        malformed("MQTT-1.5.5-1", 1),
    );
    for p in [V31, V311] {
        assert_eq!(decode(p, C, &hex("C0 80 00")), Packet::PingReq, "{p}");
        let msg = publish(p, C, &hex("30 83 80 00 00 01 \"a\""));
        assert_eq!(msg.topic, "a");
        assert!(msg.payload.is_empty());
    }
    // Minimal encodings of the boundary values are accepted in 5.0.
    let mut bytes = hex("30 80 01 00 01 \"a\" 00");
    bytes.extend_from_slice(&[0; 124]);
    assert_eq!(publish(V5, C, &bytes).payload.len(), 124);
}

#[test]
fn non_minimal_variable_byte_integers_inside_a_5_packet() {
    // Property length 0 as 80 00 in a PUBACK.
    let e = reject(
        V5,
        C,
        &hex("40 05 00 01 00 80 00"),
        malformed("MQTT-1.5.5-1", 5),
    );
    assert_eq!(
        e.kind,
        ErrorKind::VarintNotMinimal {
            field: "property_length"
        }
    );
    // Subscription Identifier 1 as 81 00 in a server PUBLISH.
    let e = reject(
        V5,
        S,
        &hex("30 07 00 01 \"a\" 03 0B 81 00"),
        malformed("MQTT-1.5.5-1", 7),
    );
    assert_eq!(
        e.kind,
        ErrorKind::VarintNotMinimal {
            field: "subscription_identifier"
        }
    );
    // The same packets written minimally.
    assert_eq!(
        decode(V5, C, &hex("40 04 00 01 00 00")),
        Packet::PubAck(PubResponse::new(1))
    );
    let msg = publish(V5, S, &hex("30 06 00 01 \"a\" 02 0B 01"));
    assert_eq!(msg.properties, props([Property::SubscriptionIdentifier(1)]));
}

// ---------------------------------------------------------------------------
// Fixed header: reserved flags and reserved packet types
// ---------------------------------------------------------------------------

/// A valid packet of every type but PUBLISH, per version, with the statement
/// that wrong fixed-header flags violate.
fn flag_cases(p: Protocol) -> Vec<(Sender, Vec<u8>, &'static str)> {
    let general = id(p, "MQTT-2.2.2-1", "MQTT-2.1.3-1");
    let v5 = p == V5;
    let mut cases = vec![
        (C, minimal_connect(p).0, general),
        (
            S,
            if v5 {
                hex("20 03 00 00 00")
            } else {
                hex("20 02 00 00")
            },
            general,
        ),
        (C, hex("40 02 00 01"), general),
        (S, hex("50 02 00 01"), general),
        (C, hex("62 02 00 01"), "MQTT-3.6.1-1"),
        (S, hex("70 02 00 01"), general),
        (
            C,
            if v5 {
                hex("82 07 00 01 00 00 01 \"a\" 00")
            } else {
                hex("82 06 00 01 00 01 \"a\" 00")
            },
            "MQTT-3.8.1-1",
        ),
        (
            S,
            if v5 {
                hex("90 04 00 01 00 00")
            } else {
                hex("90 03 00 01 00")
            },
            general,
        ),
        (
            C,
            if v5 {
                hex("A2 06 00 01 00 00 01 \"a\"")
            } else {
                hex("A2 05 00 01 00 01 \"a\"")
            },
            "MQTT-3.10.1-1",
        ),
        (
            S,
            if v5 {
                hex("B0 04 00 01 00 00")
            } else {
                hex("B0 02 00 01")
            },
            general,
        ),
        (C, hex("C0 00"), general),
        (S, hex("D0 00"), general),
        (C, hex("E0 00"), "MQTT-3.14.1-1"),
    ];
    if v5 {
        cases.push((S, hex("E0 00"), "MQTT-3.14.1-1"));
        cases.push((C, hex("F0 00"), "MQTT-3.15.1-1"));
        cases.push((S, hex("F0 00"), "MQTT-3.15.1-1"));
    }
    cases
}

#[test]
fn fixed_header_flags_are_checked_for_every_packet_type() {
    for p in ALL {
        for (from, valid, statement) in flag_cases(p) {
            let ty = PacketType::from_u8(valid[0] >> 4).expect("a packet type");
            let required = ty.required_flags().expect("not PUBLISH");
            assert_eq!(valid[0] & 0x0F, required);
            assert_eq!(decode(p, from, &valid).packet_type(), ty, "{p} {ty}");
            for flags in 0..16u8 {
                let mut bytes = valid.clone();
                bytes[0] = (bytes[0] & 0xF0) | flags;
                // MQTT 3.1 sent PUBREL, SUBSCRIBE and UNSUBSCRIBE at QoS 1, DUP allowed.
                let tolerated = p == V31 && required == 0b0010 && flags == 0b1010;
                if flags == required || tolerated {
                    assert_eq!(
                        decode(p, from, &bytes).packet_type(),
                        ty,
                        "{p} {ty} flags {flags:04b}"
                    );
                    continue;
                }
                let e = reject(p, from, &bytes, malformed(statement, 0));
                assert_eq!(e.kind, ErrorKind::InvalidFlags { flags }, "{p} {ty}");
                assert_eq!(e.packet, Some(ty));
            }
        }
    }
}

#[test]
fn disconnect_flags_cite_the_disconnect_statement_in_both_versions() {
    for p in [V311, V5] {
        reject(p, C, &hex("E2 00"), malformed("MQTT-3.14.1-1", 0));
    }
    // The general rule still covers the other types.
    reject(V311, C, &hex("C1 00"), malformed("MQTT-2.2.2-1", 0));
    reject(V5, C, &hex("C1 00"), malformed("MQTT-2.1.3-1", 0));
}

#[test]
fn packet_type_0_is_reserved_in_every_version() {
    for p in ALL {
        for from in [C, S] {
            for first in [0x00, 0x02, 0x0F] {
                let e = reject(p, from, &[first, 0x00], malformed(None, 0));
                assert_eq!(e.kind, ErrorKind::ReservedPacketType(0));
                assert_eq!(e.packet, None);
            }
            // Refused from the first byte alone.
            reject(p, from, &[0x00], malformed(None, 0));
        }
    }
}

#[test]
fn packet_type_15_is_reserved_before_5_and_auth_in_5() {
    for p in [V31, V311] {
        for from in [C, S] {
            let e = reject(p, from, &hex("F0 00"), malformed(None, 0));
            assert_eq!(e.kind, ErrorKind::ReservedPacketType(15));
        }
    }
    assert_eq!(decode(V5, C, &hex("F0 00")), Packet::Auth(Auth::default()));
    assert_eq!(
        decode(V5, S, &hex("F0 0A 18 08 15 00 02 \"xy\" 16 00 00")),
        Packet::Auth(Auth {
            reason_code: 0x18,
            properties: props([
                Property::AuthenticationMethod(s("xy")),
                Property::AuthenticationData(Bytes::new())
            ]),
        })
    );
}

// ---------------------------------------------------------------------------
// PUBLISH
// ---------------------------------------------------------------------------

#[test]
fn publish_decodes_to_its_fields() {
    // DUP, QoS 2, RETAIN.
    for p in [V31, V311] {
        let msg = publish(p, C, &hex("3D 0C 00 03 \"a/b\" 00 07 \"hello\""));
        assert_eq!(
            msg,
            Publish {
                dup: true,
                qos: QoS::ExactlyOnce,
                retain: true,
                topic: s("a/b"),
                packet_id: 7,
                properties: Properties::new(),
                payload: Bytes::from_static(b"hello"),
            }
        );
    }
    let msg = publish(
        V5,
        C,
        &hex("3B 1B 00 03 \"a/b\" 00 07 0E 01 01 02 00 00 00 3C 26 00 01 \"k\" 00 01 \"v\" \"hello\""),
    );
    assert_eq!(
        msg,
        Publish {
            dup: true,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: s("a/b"),
            packet_id: 7,
            properties: props([
                Property::PayloadFormatIndicator(1),
                Property::MessageExpiryInterval(60),
                Property::UserProperty(s("k"), s("v")),
            ]),
            payload: Bytes::from_static(b"hello"),
        }
    );
    // At QoS 0 there is no packet identifier: the two bytes are payload.
    let msg = publish(V311, C, &hex("30 05 00 01 \"a\" 00 00"));
    assert_eq!(
        (msg.qos, msg.packet_id, &msg.payload[..]),
        (QoS::AtMostOnce, 0, &[0u8, 0][..])
    );
}

#[test]
fn publish_qos_3_is_malformed() {
    for p in ALL {
        for from in [C, S] {
            for first in [0x36, 0x37, 0x3E, 0x3F] {
                let body = if p == V5 {
                    hex("00 01 \"a\" 00 01 00")
                } else {
                    hex("00 01 \"a\" 00 01")
                };
                let e = reject(p, from, &frame(first, &body), malformed("MQTT-3.3.1-4", 0));
                assert_eq!(e.kind, ErrorKind::PublishQos3);
            }
        }
    }
    // Both QoS bits set is refused from the first byte alone.
    reject(V311, C, &[0x36], malformed("MQTT-3.3.1-4", 0));
}

#[test]
fn publish_dup_at_qos_0_is_malformed() {
    for p in ALL {
        let (bad, ok) = if p == V5 {
            (
                hex("38 04 00 01 \"a\" 00"),
                hex("3A 06 00 01 \"a\" 00 01 00"),
            )
        } else {
            (hex("38 03 00 01 \"a\""), hex("3A 05 00 01 \"a\" 00 01"))
        };
        let e = reject(p, C, &bad, malformed("MQTT-3.3.1-2", 0));
        assert_eq!(e.kind, ErrorKind::DupOnQos0);
        // DUP at QoS 1 is fine.
        let msg = publish(p, C, &ok);
        assert!(msg.dup);
        assert_eq!(msg.qos, QoS::AtLeastOnce);
    }
}

#[test]
fn publish_topic_with_a_wildcard_is_refused() {
    for p in ALL {
        let tail = if p == V5 { &[0u8][..] } else { &[][..] };
        for topic in ["a/+", "a/#", "#", "+", "a+b"] {
            let mut body = lp(topic.as_bytes());
            body.extend_from_slice(tail);
            let e = reject(
                p,
                C,
                &frame(0x30, &body),
                protocol_error("MQTT-3.3.2-2", 2).reason(0x90),
            );
            assert_eq!(
                e.kind,
                ErrorKind::TopicName {
                    field: "topic",
                    error: TopicError::WildcardInName
                }
            );
        }
        for topic in ["a/b", "/", "a//b", "$SYS/x", " "] {
            let mut body = lp(topic.as_bytes());
            body.extend_from_slice(tail);
            assert_eq!(publish(p, S, &frame(0x30, &body)).topic, topic);
        }
    }
}

#[test]
fn publish_empty_topic_is_refused_unless_5_names_a_topic_alias() {
    for p in [V31, V311] {
        let e = reject(p, C, &hex("30 02 00 00"), protocol_error("MQTT-4.7.3-1", 2));
        assert_eq!(e.kind, ErrorKind::EmptyTopic);
        reject(
            p,
            C,
            &hex("32 06 00 00 00 01 \"hi\""),
            protocol_error("MQTT-4.7.3-1", 2),
        );
    }
    reject(
        V5,
        C,
        &hex("30 03 00 00 00"),
        protocol_error("MQTT-4.7.3-1", 2),
    );
    // Properties without a Topic Alias do not help.
    reject(
        V5,
        C,
        &hex("30 05 00 00 02 01 01"),
        protocol_error("MQTT-4.7.3-1", 2),
    );
    // With a Topic Alias the empty topic is allowed (5.0).
    for from in [C, S] {
        let msg = publish(V5, from, &hex("30 08 00 00 03 23 00 05 \"hi\""));
        assert_eq!(msg.topic, "");
        assert_eq!(msg.properties.topic_alias(), Some(5));
        assert_eq!(msg.payload, "hi");
    }
}

#[test]
fn publish_packet_identifier_0_is_refused_at_qos_1_and_2() {
    for p in [V31, V311] {
        for from in [C, S] {
            for first in [0x32, 0x34] {
                let e = reject(
                    p,
                    from,
                    &frame(first, &hex("00 01 \"a\" 00 00")),
                    protocol_error("MQTT-2.3.1-1", 5),
                );
                assert_eq!(e.kind, ErrorKind::PacketIdZero);
            }
        }
        assert_eq!(publish(p, C, &hex("32 05 00 01 \"a\" 00 01")).packet_id, 1);
    }
    reject(
        V5,
        C,
        &hex("32 06 00 01 \"a\" 00 00 00"),
        protocol_error("MQTT-2.2.1-3", 5),
    );
    reject(
        V5,
        S,
        &hex("34 06 00 01 \"a\" 00 00 00"),
        protocol_error("MQTT-2.2.1-4", 5),
    );
    assert_eq!(
        publish(V5, S, &hex("34 06 00 01 \"a\" FF FF 00")).packet_id,
        0xFFFF
    );
}

// ---------------------------------------------------------------------------
// UTF-8 Encoded Strings
// ---------------------------------------------------------------------------

/// A QoS 0 PUBLISH whose topic is `topic_bytes`.
fn publish_with_topic(p: Protocol, topic_bytes: &[u8]) -> Vec<u8> {
    let mut body = lp(topic_bytes);
    if p == V5 {
        body.push(0);
    }
    frame(0x30, &body)
}

#[test]
fn ill_formed_utf8_is_malformed() {
    // (topic bytes, offset of the first bad byte within the topic)
    let cases: &[(&[u8], usize)] = &[
        (b"a\xFF", 1),
        (b"\xFF", 0),
        (b"a\xE2\x82", 1),        // truncated three-byte sequence
        (b"\xC0\xAF", 0),         // overlong '/'
        (b"\xE0\x80\xAF", 0),     // overlong three-byte '/'
        (b"\xED\xA0\x80", 0),     // U+D800, a surrogate
        (b"ab\xED\xBF\xBF", 2),   // U+DFFF, a surrogate
        (b"\xF4\x90\x80\x80", 0), // above U+10FFFF
        (b"a/\x80", 2),           // lone continuation byte
    ];
    for p in ALL {
        for &(topic, at) in cases {
            let e = reject(
                p,
                C,
                &publish_with_topic(p, topic),
                malformed(id(p, "MQTT-1.5.3-1", "MQTT-1.5.4-1"), 4 + at),
            );
            assert_eq!(e.kind, ErrorKind::InvalidUtf8 { field: "topic" });
        }
    }
}

#[test]
fn well_formed_multibyte_utf8_is_accepted() {
    for p in ALL {
        for topic in ["é", "a/€", "😀/x", "\u{10FFFF}", "\u{D7FF}\u{E000}"] {
            assert_eq!(
                publish(p, C, &publish_with_topic(p, topic.as_bytes())).topic,
                topic
            );
        }
    }
}

#[test]
fn null_character_is_malformed() {
    for p in ALL {
        let e = reject(
            p,
            C,
            &publish_with_topic(p, b"a\x00"),
            malformed(id(p, "MQTT-1.5.3-2", "MQTT-1.5.4-2"), 5),
        );
        assert_eq!(e.kind, ErrorKind::NullCharacter { field: "topic" });
        reject(
            p,
            C,
            &publish_with_topic(p, b"\x00"),
            malformed(id(p, "MQTT-1.5.3-2", "MQTT-1.5.4-2"), 4),
        );
    }
    // In a CONNECT client identifier (3.1.1) and a user property name (5.0).
    reject(
        V311,
        C,
        &hex("10 0D 00 04 \"MQTT\" 04 02 00 3C 00 01 00"),
        malformed("MQTT-1.5.3-2", 14),
    );
    let e = reject(
        V5,
        S,
        &hex("30 0B 00 01 \"a\" 07 26 00 01 00 00 01 \"v\""),
        malformed("MQTT-1.5.4-2", 9),
    );
    assert_eq!(
        e.kind,
        ErrorKind::NullCharacter {
            field: "user_property.name"
        }
    );
}

#[test]
fn bom_is_kept_not_stripped() {
    for p in ALL {
        // U+FEFF at the start, in the middle and at the end of a topic.
        for topic in ["\u{FEFF}a", "a\u{FEFF}b", "a\u{FEFF}"] {
            let msg = publish(p, C, &publish_with_topic(p, topic.as_bytes()));
            assert_eq!(msg.topic, topic, "{p}: MQTT-1.5.3-3 / MQTT-1.5.4-3");
            assert_eq!(msg.topic.as_bytes()[..], *topic.as_bytes());
        }
    }
    assert_eq!(
        publish(V311, C, &hex("30 06 00 04 EF BB BF \"a\""))
            .topic
            .as_bytes()[..],
        hex("EF BB BF 61")[..]
    );
    // In a client identifier too.
    let c = connect(
        V311,
        &hex("10 0F 00 04 \"MQTT\" 04 02 00 3C 00 03 EF BB BF"),
    );
    assert_eq!(c.client_id, "\u{FEFF}");
}

#[test]
fn utf8_is_checked_in_every_string_field() {
    // Client identifier.
    let e = reject(
        V5,
        C,
        &hex("10 0F 00 04 \"MQTT\" 05 02 00 3C 00 00 02 C0 AF"),
        malformed("MQTT-1.5.4-1", 15),
    );
    assert_eq!(e.kind, ErrorKind::InvalidUtf8 { field: "client_id" });
    // User property value in CONNECT properties.
    let e = reject(
        V5,
        C,
        &hex("10 15 00 04 \"MQTT\" 05 02 00 3C 07 26 00 01 \"k\" 00 01 FF 00 01 \"c\""),
        malformed("MQTT-1.5.4-1", 19),
    );
    assert_eq!(
        e.kind,
        ErrorKind::InvalidUtf8 {
            field: "user_property.value"
        }
    );
    // A SUBSCRIBE topic filter holding a surrogate.
    let e = reject(
        V311,
        C,
        &hex("82 08 00 01 00 03 ED A0 80 00"),
        malformed("MQTT-1.5.3-1", 6),
    );
    assert_eq!(
        e.kind,
        ErrorKind::InvalidUtf8 {
            field: "topic_filter"
        }
    );
    // Protocol name.
    reject(
        V311,
        C,
        &hex("10 0D 00 04 \"MQT\" FF 04 02 00 3C 00 01 \"c\""),
        malformed("MQTT-1.5.3-1", 7),
    );
    // User name (binary password is not UTF-8 checked).
    reject(
        V311,
        C,
        &hex("10 15 00 04 \"MQTT\" 04 C2 00 3C 00 01 \"c\" 00 02 C0 AF 00 02 C0 AF"),
        malformed("MQTT-1.5.3-1", 17),
    );
    let c = connect(
        V311,
        &hex("10 15 00 04 \"MQTT\" 04 C2 00 3C 00 01 \"c\" 00 02 \"us\" 00 02 C0 AF"),
    );
    assert_eq!(c.password.as_deref(), Some(&[0xC0, 0xAF][..]));
}

// ---------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------

const CONNECT_311: &str = "10 0D 00 04 \"MQTT\" 04 02 00 3C 00 01 \"c\"";
const CONNECT_5: &str = "10 0E 00 04 \"MQTT\" 05 02 00 3C 00 00 01 \"c\"";
const CONNECT_31: &str = "10 0F 00 06 \"MQIsdp\" 03 02 00 3C 00 01 \"c\"";

/// The minimal CONNECT of a version, and the offset of its connect flags.
fn minimal_connect(p: Protocol) -> (Vec<u8>, usize) {
    match p {
        Protocol::V3_1 => (hex(CONNECT_31), 11),
        Protocol::V3_1_1 => (hex(CONNECT_311), 9),
        Protocol::V5 => (hex(CONNECT_5), 9),
    }
}

#[test]
fn connect_decodes_to_its_fields() {
    for p in ALL {
        let (bytes, _) = minimal_connect(p);
        // A CONNECT is judged by its own level, whatever the stream was set to.
        for stream in ALL {
            assert_eq!(
                connect(stream, &bytes),
                Connect::new(p, "c"),
                "{p} in a {stream} stream"
            );
        }
    }
    let full = hex("10 1B 00 04 \"MQTT\" 04 EE 00 3C 00 01 \"c\" 00 01 \"w\" 00 02 \"hi\" 00 01 \"u\" 00 02 \"pw\"");
    let will = Will {
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Properties::new(),
        topic: s("w"),
        payload: Bytes::from_static(b"hi"),
    };
    assert_eq!(
        connect(V311, &full),
        Connect {
            will: Some(will.clone()),
            username: Some(s("u")),
            password: Some(Bytes::from_static(b"pw")),
            ..Connect::new(V311, "c")
        }
    );
    let full5 = hex(
        "10 25 00 04 \"MQTT\" 05 EE 00 3C 03 21 00 0A 00 01 \"c\" 05 18 00 00 00 1E 00 01 \"w\" 00 02 \"hi\"
         00 01 \"u\" 00 02 \"pw\"",
    );
    assert_eq!(
        connect(V5, &full5),
        Connect {
            properties: props([Property::ReceiveMaximum(10)]),
            will: Some(Will {
                properties: props([Property::WillDelayInterval(30)]),
                ..will
            }),
            username: Some(s("u")),
            password: Some(Bytes::from_static(b"pw")),
            ..Connect::new(V5, "c")
        }
    );
    // Clean Session 0, keep alive 0, empty client identifier.
    let c = connect(V311, &hex("10 0C 00 04 \"MQTT\" 04 00 00 00 00 00"));
    assert!(!c.clean_start);
    assert_eq!((c.keep_alive, &*c.client_id), (0, ""));
}

#[test]
fn connect_protocol_name_must_match_the_level() {
    for (p, bytes) in [
        (V311, hex("10 0D 00 04 \"MQTX\" 04 02 00 3C 00 01 \"c\"")),
        (V5, hex("10 0E 00 04 \"MQTX\" 05 02 00 3C 00 00 01 \"c\"")),
        (V5, hex("10 0E 00 04 \"mqtt\" 05 02 00 3C 00 00 01 \"c\"")),
        // 3.1 is "MQIsdp" at level 3; 3.1.1 and 5.0 are "MQTT".
        (V31, hex("10 0D 00 04 \"MQTT\" 03 02 00 3C 00 01 \"c\"")),
        (V311, hex("10 0F 00 06 \"MQIsdp\" 04 02 00 3C 00 01 \"c\"")),
        (V5, hex("10 10 00 06 \"MQIsdp\" 05 02 00 3C 00 00 01 \"c\"")),
    ] {
        // Whatever the stream's default, the error is judged by the announced level.
        for stream in [V311, V5] {
            let e = reject(
                stream,
                C,
                &bytes,
                protocol_error("MQTT-3.1.2-1", 2).reason(0x84),
            );
            assert!(matches!(e.kind, ErrorKind::ProtocolName { .. }));
            assert_eq!(e.protocol, p);
        }
    }
}

#[test]
fn connect_protocol_level_must_be_3_4_or_5() {
    for level in [0u8, 1, 2, 6, 0x83, 0xFF] {
        let mut bytes = hex(CONNECT_311);
        bytes[8] = level;
        for stream in [V311, V5] {
            let e = reject(
                stream,
                C,
                &bytes,
                protocol_error("MQTT-3.1.2-2", 8).reason(0x84),
            );
            assert_eq!(e.kind, ErrorKind::ProtocolLevel { level });
        }
    }
}

#[test]
fn connect_reserved_flag_is_malformed() {
    for p in ALL {
        let (mut bytes, at) = minimal_connect(p);
        bytes[at] |= 1;
        let e = reject(p, C, &bytes, malformed("MQTT-3.1.2-3", at));
        assert_eq!(e.kind, ErrorKind::ConnectReservedFlag);
    }
}

#[test]
fn connect_will_qos_and_retain_need_the_will_flag() {
    for p in ALL {
        let (valid, at) = minimal_connect(p);
        for (flags, statement, kind) in [
            (
                0x0A,
                id(p, "MQTT-3.1.2-13", "MQTT-3.1.2-11"),
                ErrorKind::WillQosWithoutWill,
            ),
            (
                0x12,
                id(p, "MQTT-3.1.2-13", "MQTT-3.1.2-11"),
                ErrorKind::WillQosWithoutWill,
            ),
            (
                0x1A,
                id(p, "MQTT-3.1.2-13", "MQTT-3.1.2-11"),
                ErrorKind::WillQosWithoutWill,
            ),
            (
                0x22,
                id(p, "MQTT-3.1.2-15", "MQTT-3.1.2-13"),
                ErrorKind::WillRetainWithoutWill,
            ),
        ] {
            let mut bytes = valid.clone();
            bytes[at] = flags;
            let e = reject(p, C, &bytes, malformed(statement, at));
            assert_eq!(e.kind, kind, "{p} flags {flags:02X}");
        }
    }
}

#[test]
fn connect_will_qos_3_is_malformed() {
    reject(
        V311,
        C,
        &hex("10 12 00 04 \"MQTT\" 04 1E 00 3C 00 01 \"c\" 00 01 \"w\" 00 00"),
        malformed("MQTT-3.1.2-14", 9),
    );
    let e = reject(
        V5,
        C,
        &hex("10 14 00 04 \"MQTT\" 05 1E 00 3C 00 00 01 \"c\" 00 00 01 \"w\" 00 00"),
        malformed("MQTT-3.1.2-12", 9),
    );
    assert_eq!(e.kind, ErrorKind::WillQos3);
    // Will QoS 2 with retain is fine.
    let c = connect(
        V311,
        &hex("10 12 00 04 \"MQTT\" 04 36 00 3C 00 01 \"c\" 00 01 \"w\" 00 00"),
    );
    let will = c.will.expect("a will");
    assert_eq!(
        (will.qos, will.retain, &*will.topic, will.payload.len()),
        (QoS::ExactlyOnce, true, "w", 0)
    );
    let c = connect(
        V5,
        &hex("10 14 00 04 \"MQTT\" 05 16 00 3C 00 00 01 \"c\" 00 00 01 \"w\" 00 00"),
    );
    assert_eq!(c.will.map(|w| w.qos), Some(QoS::ExactlyOnce));
}

#[test]
fn connect_password_without_user_name_is_refused_in_3_1_1_only() {
    let e = reject(
        V311,
        C,
        &hex("10 11 00 04 \"MQTT\" 04 42 00 3C 00 01 \"c\" 00 02 \"pw\""),
        malformed("MQTT-3.1.2-22", 9),
    );
    assert_eq!(e.kind, ErrorKind::PasswordWithoutUsername);
    let c = connect(
        V5,
        &hex("10 12 00 04 \"MQTT\" 05 42 00 3C 00 00 01 \"c\" 00 02 \"pw\""),
    );
    assert_eq!(c.username, None);
    assert_eq!(c.password, Some(Bytes::from_static(b"pw")));
    // User name alone is fine everywhere.
    let c = connect(
        V311,
        &hex("10 10 00 04 \"MQTT\" 04 82 00 3C 00 01 \"c\" 00 01 \"u\""),
    );
    assert_eq!((c.username, c.password), (Some(s("u")), None));
}

#[test]
fn connect_fields_announced_by_flags_must_be_present() {
    // (protocol, bytes, statement, offset, field)
    let cases = [
        // User Name Flag without a user name.
        (
            V311,
            "10 0D 00 04 \"MQTT\" 04 82 00 3C 00 01 \"c\"",
            "MQTT-3.1.2-19",
            15,
            "username",
        ),
        (
            V5,
            "10 0E 00 04 \"MQTT\" 05 82 00 3C 00 00 01 \"c\"",
            "MQTT-3.1.2-17",
            16,
            "username",
        ),
        // Password Flag without a password.
        (
            V311,
            "10 10 00 04 \"MQTT\" 04 C2 00 3C 00 01 \"c\" 00 01 \"u\"",
            "MQTT-3.1.2-21",
            18,
            "password",
        ),
        (
            V5,
            "10 11 00 04 \"MQTT\" 05 C2 00 3C 00 00 01 \"c\" 00 01 \"u\"",
            "MQTT-3.1.2-19",
            19,
            "password",
        ),
        (
            V5,
            "10 12 00 04 \"MQTT\" 05 42 00 3C 00 00 01 \"c\" 00 05 \"pw\"",
            "MQTT-3.1.2-19",
            16,
            "password",
        ),
        // Password length running past the packet.
        (
            V311,
            "10 14 00 04 \"MQTT\" 04 C2 00 3C 00 01 \"c\" 00 01 \"u\" 00 05 \"pw\"",
            "MQTT-3.1.2-21",
            18,
            "password",
        ),
        // Will Flag without will topic / payload / properties.
        (
            V311,
            "10 0D 00 04 \"MQTT\" 04 06 00 3C 00 01 \"c\"",
            "MQTT-3.1.2-9",
            15,
            "will_topic",
        ),
        (
            V311,
            "10 10 00 04 \"MQTT\" 04 06 00 3C 00 01 \"c\" 00 01 \"w\"",
            "MQTT-3.1.2-9",
            18,
            "will_payload",
        ),
        (
            V5,
            "10 0E 00 04 \"MQTT\" 05 06 00 3C 00 00 01 \"c\"",
            "MQTT-3.1.2-9",
            16,
            "will_properties",
        ),
        (
            V5,
            "10 0F 00 04 \"MQTT\" 05 06 00 3C 00 00 01 \"c\" 00",
            "MQTT-3.1.2-9",
            17,
            "will_topic",
        ),
        (
            V5,
            "10 12 00 04 \"MQTT\" 05 06 00 3C 00 00 01 \"c\" 00 00 01 \"w\"",
            "MQTT-3.1.2-9",
            20,
            "will_payload",
        ),
        (
            V31,
            "10 0F 00 06 \"MQIsdp\" 03 06 00 3C 00 01 \"c\"",
            "MQTT-3.1.2-9",
            17,
            "will_topic",
        ),
        // No client identifier at all: the CONNECT does not match its format.
        (
            V311,
            "10 0A 00 04 \"MQTT\" 04 02 00 3C",
            "MQTT-3.1.4-1",
            12,
            "client_id",
        ),
        (
            V5,
            "10 0B 00 04 \"MQTT\" 05 02 00 3C 00",
            "MQTT-3.1.4-1",
            13,
            "client_id",
        ),
        (
            V311,
            "10 0D 00 04 \"MQTT\" 04 02 00 3C 00 05 \"c\"",
            "MQTT-3.1.4-1",
            12,
            "client_id",
        ),
        (
            V311,
            "10 06 00 04 \"MQTT\"",
            "MQTT-3.1.4-1",
            8,
            "protocol_level",
        ),
    ];
    for (p, bytes, statement, offset, field) in cases {
        let e = reject(p, C, &hex(bytes), malformed(statement, offset));
        assert_eq!(e.kind, ErrorKind::UnexpectedEnd { field }, "{bytes}");
        assert_eq!(e.protocol, p);
    }
    // A 5.0 CONNECT without its property length.
    reject(
        V5,
        C,
        &hex("10 0A 00 04 \"MQTT\" 05 02 00 3C"),
        malformed("MQTT-2.2.2-1", 12),
    );
}

#[test]
fn connect_with_bytes_after_its_last_field_is_malformed() {
    let e = reject(
        V311,
        C,
        &hex("10 0E 00 04 \"MQTT\" 04 02 00 3C 00 01 \"c\" 00"),
        malformed("MQTT-3.1.4-1", 15),
    );
    assert_eq!(e.kind, ErrorKind::TrailingBytes { count: 1 });
    // A password with the Password Flag clear is trailing bytes.
    reject(
        V5,
        C,
        &hex("10 12 00 04 \"MQTT\" 05 02 00 3C 00 00 01 \"c\" 00 02 \"pw\""),
        malformed("MQTT-3.1.4-1", 16),
    );
}

#[test]
fn connect_will_topic_must_be_a_valid_topic_name() {
    let e = reject(
        V311,
        C,
        &hex("10 12 00 04 \"MQTT\" 04 06 00 3C 00 01 \"c\" 00 01 \"#\" 00 00"),
        protocol_error("MQTT-4.7.1-1", 15),
    );
    assert_eq!(
        e.kind,
        ErrorKind::TopicName {
            field: "will_topic",
            error: TopicError::WildcardInName
        }
    );
    reject(
        V5,
        C,
        &hex("10 14 00 04 \"MQTT\" 05 06 00 3C 00 00 01 \"c\" 00 00 01 \"+\" 00 00"),
        protocol_error("MQTT-4.7.0-1", 17),
    );
    for (p, bytes, at) in [
        (
            V311,
            "10 11 00 04 \"MQTT\" 04 06 00 3C 00 01 \"c\" 00 00 00 00",
            15,
        ),
        (
            V5,
            "10 13 00 04 \"MQTT\" 05 06 00 3C 00 00 01 \"c\" 00 00 00 00 00",
            17,
        ),
    ] {
        reject(p, C, &hex(bytes), protocol_error("MQTT-4.7.3-1", at));
    }
}

// ---------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------

#[test]
fn connack_decodes_to_its_fields() {
    for p in [V31, V311] {
        assert_eq!(
            decode(p, S, &hex("20 02 00 00")),
            Packet::ConnAck(ConnAck::default())
        );
        assert_eq!(
            decode(p, S, &hex("20 02 01 00")),
            Packet::ConnAck(ConnAck {
                session_present: true,
                ..ConnAck::default()
            })
        );
        for code in 1..=5 {
            assert_eq!(
                decode(p, S, &[0x20, 0x02, 0x00, code]),
                Packet::ConnAck(ConnAck {
                    code,
                    ..ConnAck::default()
                })
            );
        }
    }
    assert_eq!(
        decode(V5, S, &hex("20 0A 01 00 07 11 00 00 00 3C 24 01")),
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: 0,
            properties: props([Property::SessionExpiryInterval(60), Property::MaximumQoS(1)]),
        })
    );
}

#[test]
fn connack_reserved_flags_are_malformed() {
    for bit in 1..8 {
        let flags = 1u8 << bit;
        for p in [V31, V311] {
            let e = reject(p, S, &[0x20, 0x02, flags, 0x00], malformed(None, 2));
            assert_eq!(e.kind, ErrorKind::ConnAckReservedFlags);
        }
        reject(
            V5,
            S,
            &[0x20, 0x03, flags | 1, 0x00, 0x00],
            malformed("MQTT-3.2.2-1", 2),
        );
    }
}

#[test]
fn connack_session_present_with_a_failure_code_is_refused() {
    for p in [V31, V311] {
        let e = reject(p, S, &hex("20 02 01 05"), protocol_error("MQTT-3.2.2-4", 3));
        assert_eq!(e.kind, ErrorKind::SessionPresentOnFailure);
    }
    reject(
        V5,
        S,
        &hex("20 03 01 87 00"),
        protocol_error("MQTT-3.2.2-6", 3),
    );
    reject(
        V5,
        S,
        &hex("20 03 01 80 00"),
        protocol_error("MQTT-3.2.2-6", 3),
    );
    // Session Present 0 with a failure code is how it should be.
    decode(V5, S, &hex("20 03 00 87 00"));
}

#[test]
fn connack_return_and_reason_codes() {
    const CONNACK_5: &[u8] = &[
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
        0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ];
    for code in 0..=255u8 {
        for p in [V31, V311] {
            let bytes = [0x20, 0x02, 0x00, code];
            if code <= 5 {
                decode(p, S, &bytes);
            } else {
                let e = reject(p, S, &bytes, protocol_error(None, 3));
                assert_eq!(e.kind, ErrorKind::InvalidReasonCode { code });
            }
        }
        let bytes = [0x20, 0x03, 0x00, code, 0x00];
        if CONNACK_5.contains(&code) {
            decode(V5, S, &bytes);
        } else {
            reject(V5, S, &bytes, protocol_error("MQTT-3.2.2-8", 3));
        }
    }
}

// ---------------------------------------------------------------------------
// SUBSCRIBE / UNSUBSCRIBE
// ---------------------------------------------------------------------------

#[test]
fn subscribe_decodes_to_its_fields() {
    for p in [V31, V311] {
        assert_eq!(
            subscribe(p, &hex("82 0C 00 0A 00 03 \"a/+\" 01 00 01 \"#\" 02")),
            Subscribe {
                packet_id: 10,
                properties: Properties::new(),
                filters: vec![
                    Subscription {
                        filter: s("a/+"),
                        options: SubscriptionOptions::qos(QoS::AtLeastOnce)
                    },
                    Subscription {
                        filter: s("#"),
                        options: SubscriptionOptions::qos(QoS::ExactlyOnce)
                    },
                ],
            }
        );
    }
    assert_eq!(
        subscribe(
            V5,
            &hex("82 1A 00 0A 02 0B 05 00 03 \"a/+\" 2E 00 0C \"$share/g/a/#\" 01")
        ),
        Subscribe {
            packet_id: 10,
            properties: props([Property::SubscriptionIdentifier(5)]),
            filters: vec![
                Subscription {
                    filter: s("a/+"),
                    options: SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: 2,
                    }
                },
                Subscription {
                    filter: s("$share/g/a/#"),
                    options: SubscriptionOptions::qos(QoS::AtLeastOnce)
                },
            ],
        }
    );
}

#[test]
fn subscribe_and_unsubscribe_need_a_topic_filter() {
    for p in [V31, V311] {
        let e = reject(p, C, &hex("82 02 00 01"), protocol_error("MQTT-3.8.3-3", 4));
        assert_eq!(e.kind, ErrorKind::NoTopicFilters);
        reject(
            p,
            C,
            &hex("A2 02 00 01"),
            protocol_error("MQTT-3.10.3-2", 4),
        );
        let u = decode(p, C, &hex("A2 0A 00 02 00 01 \"a\" 00 03 \"b/#\""));
        assert_eq!(
            u,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: 2,
                properties: Properties::new(),
                filters: vec![s("a"), s("b/#")],
            })
        );
    }
    reject(
        V5,
        C,
        &hex("82 03 00 01 00"),
        protocol_error("MQTT-3.8.3-2", 5),
    );
    reject(
        V5,
        C,
        &hex("A2 03 00 01 00"),
        protocol_error("MQTT-3.10.3-2", 5),
    );
    let u = decode(
        V5,
        C,
        &hex("A2 10 00 02 05 26 00 00 00 00 00 01 \"a\" 00 03 \"b/#\""),
    );
    assert_eq!(
        u,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 2,
            properties: props([Property::UserProperty(s(""), s(""))]),
            filters: vec![s("a"), s("b/#")],
        })
    );
}

/// A one-filter SUBSCRIBE with `options`, and the offset of the options byte.
fn subscribe_one(p: Protocol, filter: &str, options: u8) -> (Vec<u8>, usize) {
    let mut body = hex("00 01");
    if p == V5 {
        body.push(0);
    }
    body.extend(lp(filter.as_bytes()));
    let at = 2 + body.len();
    body.push(options);
    (frame(0x82, &body), at)
}

#[test]
fn subscription_options_reserved_bits_are_malformed() {
    for p in [V31, V311] {
        for options in [0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFC] {
            let (bytes, at) = subscribe_one(p, "a", options);
            let e = reject(p, C, &bytes, malformed("MQTT-3.8.3-4", at));
            assert_eq!(e.kind, ErrorKind::SubscriptionOptionsReserved { options });
        }
        for options in 0..3 {
            let (bytes, _) = subscribe_one(p, "a", options);
            assert_eq!(subscribe(p, &bytes).filters[0].options.qos.as_u8(), options);
        }
    }
    for options in [0x40, 0x80, 0xC0, 0x41] {
        let (bytes, at) = subscribe_one(V5, "a", options);
        reject(V5, C, &bytes, malformed("MQTT-3.8.3-5", at));
    }
    // Every combination of the defined 5.0 bits, without QoS 3 or Retain Handling 3.
    for options in 0..0x30u8 {
        if options & 3 == 3 {
            continue;
        }
        let (bytes, _) = subscribe_one(V5, "a", options);
        let got = subscribe(V5, &bytes).filters[0].options;
        assert_eq!(got.to_byte(V5), options);
    }
}

#[test]
fn subscription_qos_3_is_refused() {
    for p in [V31, V311] {
        let (bytes, at) = subscribe_one(p, "a", 0x03);
        let e = reject(p, C, &bytes, malformed("MQTT-3.8.3-4", at));
        assert_eq!(e.kind, ErrorKind::SubscriptionQos3);
    }
    let (bytes, at) = subscribe_one(V5, "a", 0x03);
    let e = reject(V5, C, &bytes, protocol_error(None, at));
    assert_eq!(e.kind, ErrorKind::SubscriptionQos3);
}

#[test]
fn subscription_retain_handling_3_is_refused() {
    let (bytes, at) = subscribe_one(V5, "a", 0x30);
    let e = reject(V5, C, &bytes, protocol_error(None, at));
    assert_eq!(e.kind, ErrorKind::RetainHandling3);
    let (bytes, _) = subscribe_one(V5, "a", 0x20);
    assert_eq!(subscribe(V5, &bytes).filters[0].options.retain_handling, 2);
    // In 3.1.1 these bits are reserved.
    let (bytes, at) = subscribe_one(V311, "a", 0x30);
    reject(V311, C, &bytes, malformed("MQTT-3.8.3-4", at));
}

#[test]
fn invalid_topic_filters_are_refused() {
    // (filter, 3.1.1 statement, 5.0 statement, error)
    let cases = [
        (
            "a/#/b",
            "MQTT-4.7.1-2",
            "MQTT-4.7.1-1",
            TopicError::MultiLevelMisplaced,
        ),
        (
            "#/a",
            "MQTT-4.7.1-2",
            "MQTT-4.7.1-1",
            TopicError::MultiLevelMisplaced,
        ),
        (
            "a#",
            "MQTT-4.7.1-2",
            "MQTT-4.7.1-1",
            TopicError::MultiLevelMisplaced,
        ),
        (
            "a/b#",
            "MQTT-4.7.1-2",
            "MQTT-4.7.1-1",
            TopicError::MultiLevelMisplaced,
        ),
        (
            "a+",
            "MQTT-4.7.1-3",
            "MQTT-4.7.1-2",
            TopicError::SingleLevelMisplaced,
        ),
        (
            "+a/b",
            "MQTT-4.7.1-3",
            "MQTT-4.7.1-2",
            TopicError::SingleLevelMisplaced,
        ),
        (
            "a/++",
            "MQTT-4.7.1-3",
            "MQTT-4.7.1-2",
            TopicError::SingleLevelMisplaced,
        ),
        ("", "MQTT-4.7.3-1", "MQTT-4.7.3-1", TopicError::Empty),
    ];
    for p in ALL {
        let at = if p == V5 { 5 } else { 4 };
        for (filter, v311, v5, error) in cases {
            let want = protocol_error(id(p, v311, v5), at).reason(0x8F);
            let (bytes, _) = subscribe_one(p, filter, 0x01);
            let e = reject(p, C, &bytes, want);
            assert_eq!(e.kind, ErrorKind::TopicFilter { error }, "{p} {filter:?}");
            let mut body = hex("00 01");
            if p == V5 {
                body.push(0);
            }
            body.extend(lp(filter.as_bytes()));
            reject(p, C, &frame(0xA2, &body), want);
        }
        for filter in [
            "#",
            "+",
            "a/#",
            "+/+/",
            "/",
            "a//b",
            "$SYS/#",
            "sport/tennis/+",
            "+/tennis/#",
        ] {
            let (bytes, _) = subscribe_one(p, filter, 0x00);
            assert_eq!(subscribe(p, &bytes).filters[0].filter, filter);
        }
    }
    // A bad filter after a good one is found at its own offset.
    reject(
        V311,
        C,
        &hex("82 0E 00 01 00 01 \"a\" 00 00 05 \"a/#/b\" 00"),
        protocol_error("MQTT-4.7.1-2", 8).reason(0x8F),
    );
}

#[test]
fn shared_subscription_syntax_is_checked_in_5() {
    let cases = [
        ("$share//a", "MQTT-4.8.2-1", TopicError::ShareNameEmpty),
        ("$share/", "MQTT-4.8.2-1", TopicError::ShareNameEmpty),
        ("$share/g", "MQTT-4.8.2-2", TopicError::SharedFilterMissing),
        ("$share/g/", "MQTT-4.8.2-2", TopicError::SharedFilterMissing),
        ("$share/g+/a", "MQTT-4.8.2-2", TopicError::ShareNameInvalid),
        ("$share/g#/a", "MQTT-4.8.2-2", TopicError::ShareNameInvalid),
        ("$share/+", "MQTT-4.8.2-2", TopicError::ShareNameInvalid),
        (
            "$share/g/a#",
            "MQTT-4.7.1-1",
            TopicError::MultiLevelMisplaced,
        ),
        (
            "$share/g/a+",
            "MQTT-4.7.1-2",
            TopicError::SingleLevelMisplaced,
        ),
    ];
    for (filter, statement, error) in cases {
        let (bytes, _) = subscribe_one(V5, filter, 0x01);
        let e = reject(V5, C, &bytes, protocol_error(statement, 5).reason(0x8F));
        assert_eq!(e.kind, ErrorKind::TopicFilter { error }, "{filter:?}");
    }
    for filter in ["$share/g/a", "$share/g/#", "$share/group/+/x"] {
        let (bytes, _) = subscribe_one(V5, filter, 0x01);
        assert_eq!(subscribe(V5, &bytes).filters[0].filter, filter);
    }
    // 3.1.1 has no shared subscriptions: these are ordinary filters.
    for filter in ["$share/g", "$share//a", "$share/g/"] {
        let (bytes, _) = subscribe_one(V311, filter, 0x01);
        assert_eq!(subscribe(V311, &bytes).filters[0].filter, filter);
    }
    let (bytes, _) = subscribe_one(V311, "$share/g+/a", 0x01);
    reject(
        V311,
        C,
        &bytes,
        protocol_error("MQTT-4.7.1-3", 4).reason(0x8F),
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let (bytes, at) = subscribe_one(V5, "$share/g/a", 0x04);
    assert_eq!(at, 17);
    let e = reject(V5, C, &bytes, protocol_error("MQTT-3.8.3-4", 17));
    assert_eq!(e.kind, ErrorKind::NoLocalOnShared);
    let (bytes, _) = subscribe_one(V5, "a", 0x04);
    assert!(subscribe(V5, &bytes).filters[0].options.no_local);
    let (bytes, _) = subscribe_one(V5, "$share/g/a", 0x08);
    assert!(subscribe(V5, &bytes).filters[0].options.retain_as_published);
}

// ---------------------------------------------------------------------------
// Packet identifier 0
// ---------------------------------------------------------------------------

#[test]
fn packet_identifier_0_is_refused_everywhere_it_is_required() {
    // (protocol, sender, bytes, statement)
    let cases = [
        (V311, C, "82 06 00 00 00 01 \"a\" 00", "MQTT-2.3.1-1"),
        (V311, C, "A2 05 00 00 00 01 \"a\"", "MQTT-2.3.1-1"),
        (V5, C, "82 07 00 00 00 00 01 \"a\" 00", "MQTT-2.2.1-3"),
        (V5, C, "A2 06 00 00 00 00 01 \"a\"", "MQTT-2.2.1-3"),
        (V311, C, "40 02 00 00", "MQTT-2.3.1-6"),
        (V311, S, "50 02 00 00", "MQTT-2.3.1-6"),
        (V311, C, "62 02 00 00", "MQTT-2.3.1-6"),
        (V311, S, "70 02 00 00", "MQTT-2.3.1-6"),
        (V5, C, "40 02 00 00", "MQTT-2.2.1-5"),
        (V5, S, "50 03 00 00 00", "MQTT-2.2.1-5"),
        (V5, C, "62 02 00 00", "MQTT-2.2.1-5"),
        (V5, S, "70 04 00 00 00 00", "MQTT-2.2.1-5"),
        (V311, S, "90 03 00 00 00", "MQTT-2.3.1-7"),
        (V311, S, "B0 02 00 00", "MQTT-2.3.1-7"),
        (V5, S, "90 04 00 00 00 00", "MQTT-2.2.1-6"),
        (V5, S, "B0 04 00 00 00 00", "MQTT-2.2.1-6"),
        (V31, C, "82 06 00 00 00 01 \"a\" 00", "MQTT-2.3.1-1"),
    ];
    for (p, from, bytes, statement) in cases {
        let e = reject(p, from, &hex(bytes), protocol_error(statement, 2));
        assert_eq!(e.kind, ErrorKind::PacketIdZero);
        // The same packet with identifier 0x0100 decodes.
        let mut ok = hex(bytes);
        ok[2] = 1;
        assert_eq!(decode(p, from, &ok).packet_id(), Some(0x0100));
    }
}

#[test]
fn acks_decode_to_their_fields() {
    for p in [V31, V311] {
        assert_eq!(
            decode(p, C, &hex("40 02 00 07")),
            Packet::PubAck(PubResponse::new(7))
        );
        assert_eq!(
            decode(p, S, &hex("50 02 00 07")),
            Packet::PubRec(PubResponse::new(7))
        );
        assert_eq!(
            decode(p, C, &hex("62 02 00 07")),
            Packet::PubRel(PubResponse::new(7))
        );
        assert_eq!(
            decode(p, S, &hex("70 02 00 07")),
            Packet::PubComp(PubResponse::new(7))
        );
        assert_eq!(
            decode(p, S, &hex("90 05 00 07 00 02 80")),
            Packet::SubAck(SubAck {
                packet_id: 7,
                properties: Properties::new(),
                reason_codes: vec![0, 2, 0x80],
            })
        );
        assert_eq!(
            decode(p, S, &hex("B0 02 00 07")),
            Packet::UnsubAck(UnsubAck {
                packet_id: 7,
                ..UnsubAck::default()
            })
        );
        assert_eq!(decode(p, S, &hex("D0 00")), Packet::PingResp);
        assert_eq!(
            decode(p, C, &hex("E0 00")),
            Packet::Disconnect(Disconnect::default())
        );
    }
    // 5.0: reason code and properties may be left out when there are none.
    for bytes in ["40 02 00 07", "40 03 00 07 00", "40 04 00 07 00 00"] {
        assert_eq!(
            decode(V5, C, &hex(bytes)),
            Packet::PubAck(PubResponse::new(7))
        );
    }
    assert_eq!(
        decode(V5, S, &hex("50 08 00 07 10 04 1F 00 01 \"x\"")),
        Packet::PubRec(PubResponse {
            packet_id: 7,
            reason_code: 0x10,
            properties: props([Property::ReasonString(s("x"))]),
        })
    );
    assert_eq!(
        decode(V5, S, &hex("B0 06 00 07 00 00 11 87")),
        Packet::UnsubAck(UnsubAck {
            packet_id: 7,
            properties: Properties::new(),
            reason_codes: vec![0, 0x11, 0x87],
        })
    );
    assert_eq!(
        decode(V5, S, &hex("E0 01 8E")),
        Packet::Disconnect(Disconnect {
            reason_code: 0x8E,
            properties: Properties::new()
        })
    );
}

// ---------------------------------------------------------------------------
// 5.0 properties
// ---------------------------------------------------------------------------

#[test]
fn property_length_past_the_packet_is_malformed() {
    // (sender, bytes, offset of the property length)
    for (from, bytes, at) in [
        (C, "40 05 00 01 00 0A 1F", 5),
        (C, "30 05 00 01 \"a\" 05 01", 5),
        (C, "82 07 00 01 09 00 01 \"a\" 00", 4),
        (S, "20 04 00 00 7F 00", 4),
        (C, "10 0E 00 04 \"MQTT\" 05 02 00 3C 7F 00 01 \"c\"", 12),
        (S, "E0 03 00 02 00", 3),
    ] {
        let e = reject(V5, from, &hex(bytes), malformed(None, at));
        assert_eq!(e.kind, ErrorKind::PropertyLengthOverflow, "{bytes}");
    }
    // A 5.0 CONNECT's will property length past the packet.
    reject(
        V5,
        C,
        &hex("10 0F 00 04 \"MQTT\" 05 06 00 3C 00 00 01 \"c\" 05"),
        malformed(None, 16),
    );
}

#[test]
fn property_value_past_the_property_length_is_malformed() {
    // Property length 2 holds only half of a four-byte Message Expiry Interval.
    let e = reject(
        V5,
        C,
        &hex("30 08 00 01 \"a\" 02 02 00 00 00"),
        malformed(None, 7),
    );
    assert_eq!(
        e.kind,
        ErrorKind::UnexpectedEnd {
            field: "message_expiry_interval"
        }
    );
}

#[test]
fn unknown_property_identifier_is_malformed() {
    for (bytes, at, unknown) in [
        ("30 06 00 01 \"a\" 02 7F 00", 6, 0x7F),
        ("30 06 00 01 \"a\" 02 00 00", 6, 0x00),
        ("30 06 00 01 \"a\" 02 04 00", 6, 0x04),
        ("30 06 00 01 \"a\" 02 80 01", 6, 0x80), // identifier 128 (a two-byte varint)
        ("40 06 00 01 00 02 14 00", 6, 0x14),
    ] {
        let e = reject(V5, C, &hex(bytes), malformed(None, at));
        assert_eq!(
            e.kind,
            ErrorKind::UnknownProperty { id: unknown },
            "{bytes}"
        );
    }
}

#[test]
fn property_not_allowed_in_the_packet_is_malformed() {
    // (sender, bytes, offset, property id)
    let cases = [
        // Session Expiry Interval in PUBLISH.
        (C, "30 09 00 01 \"a\" 05 11 00 00 00 0A", 6, 0x11),
        // Will Delay Interval in the CONNECT properties (it belongs to the will).
        (
            C,
            "10 13 00 04 \"MQTT\" 05 02 00 3C 05 18 00 00 00 0A 00 01 \"c\"",
            13,
            0x18,
        ),
        // Topic Alias among will properties.
        (
            C,
            "10 17 00 04 \"MQTT\" 05 06 00 3C 00 00 01 \"c\" 03 23 00 01 00 01 \"w\" 00 00",
            17,
            0x23,
        ),
        // Reason String in PUBLISH, Topic Alias in SUBSCRIBE, Server Keep Alive in CONNECT.
        (S, "30 08 00 01 \"a\" 04 1F 00 01 \"x\"", 6, 0x1F),
        (C, "82 0A 00 01 03 23 00 01 00 01 \"a\" 00", 5, 0x23),
        (
            C,
            "10 11 00 04 \"MQTT\" 05 02 00 3C 03 13 00 0A 00 01 \"c\"",
            13,
            0x13,
        ),
        // Subscription Identifier in UNSUBSCRIBE, Session Expiry in AUTH.
        (C, "A2 08 00 01 02 0B 01 00 01 \"a\"", 5, 0x0B),
        (C, "F0 07 18 05 11 00 00 00 01", 4, 0x11),
        // Any property but Reason String / User Property in a PUBACK.
        (C, "40 06 00 01 00 02 01 01", 6, 0x01),
    ];
    for (from, bytes, at, prop) in cases {
        let e = reject(V5, from, &hex(bytes), malformed(None, at));
        assert_eq!(
            e.kind,
            ErrorKind::PropertyNotAllowed { id: prop },
            "{bytes}"
        );
    }
}

#[test]
fn duplicate_property_is_a_protocol_error() {
    // (sender, bytes, offset of the second occurrence, property id)
    let cases = [
        (
            C,
            "30 0E 00 01 \"a\" 0A 02 00 00 00 01 02 00 00 00 02",
            11,
            0x02,
        ),
        (C, "82 0B 00 01 04 0B 01 0B 02 00 01 \"a\" 00", 7, 0x0B),
        (
            C,
            "10 18 00 04 \"MQTT\" 05 02 00 3C 0A 11 00 00 00 01 11 00 00 00 02 00 01 \"c\"",
            18,
            0x11,
        ),
        (S, "20 09 00 00 06 1F 00 00 1F 00 00", 8, 0x1F),
        (S, "30 0B 00 00 06 23 00 01 23 00 02 01 01", 8, 0x23),
    ];
    for (from, bytes, at, prop) in cases {
        let e = reject(V5, from, &hex(bytes), protocol_error(None, at));
        assert_eq!(e.kind, ErrorKind::DuplicateProperty { id: prop }, "{bytes}");
    }
}

#[test]
fn user_property_may_repeat_and_keeps_its_order() {
    let msg = publish(
        V5,
        C,
        &hex("30 20 00 01 \"a\" 1C 26 00 01 \"k\" 00 01 \"1\" 26 00 01 \"k\" 00 01 \"2\" 26 00 01 \"j\" 00 01 \"3\" 26 00 01 \"k\" 00 01 \"1\""),
    );
    let got: Vec<(&str, &str)> = msg
        .properties
        .user_properties()
        .map(|(k, v)| (&**k, &**v))
        .collect();
    assert_eq!(got, [("k", "1"), ("k", "2"), ("j", "3"), ("k", "1")]);
}

#[test]
fn subscription_identifier_in_publish_only_from_a_server_and_may_repeat() {
    let bytes = hex("30 08 00 01 \"a\" 04 0B 01 0B 02");
    let msg = publish(V5, S, &bytes);
    assert_eq!(
        msg.properties
            .subscription_identifiers()
            .collect::<Vec<_>>(),
        [1, 2]
    );
    let e = reject(V5, C, &bytes, protocol_error("MQTT-3.3.4-6", 6));
    assert_eq!(e.kind, ErrorKind::SubscriptionIdFromClient);
    reject(
        V5,
        C,
        &hex("30 06 00 01 \"a\" 02 0B 01"),
        protocol_error("MQTT-3.3.4-6", 6),
    );
    // Subscription Identifier 0 is not a valid value.
    let e = reject(
        V5,
        S,
        &hex("30 06 00 01 \"a\" 02 0B 00"),
        protocol_error(None, 6),
    );
    assert_eq!(e.kind, ErrorKind::PropertyValue { id: 0x0B, value: 0 });
    reject(
        V5,
        C,
        &hex("82 09 00 01 02 0B 00 00 01 \"a\" 00"),
        protocol_error(None, 5),
    );
}

#[test]
fn topic_alias_0_is_refused_with_topic_alias_invalid() {
    for from in [C, S] {
        let e = reject(
            V5,
            from,
            &hex("30 07 00 01 \"a\" 03 23 00 00"),
            protocol_error("MQTT-3.3.2-8", 6).reason(0x94),
        );
        assert_eq!(e.kind, ErrorKind::PropertyValue { id: 0x23, value: 0 });
        let msg = publish(V5, from, &hex("30 07 00 01 \"a\" 03 23 FF FF"));
        assert_eq!(msg.properties.topic_alias(), Some(0xFFFF));
    }
    // Alias 0 with an empty topic: the alias is what is wrong.
    reject(
        V5,
        C,
        &hex("30 06 00 00 03 23 00 00"),
        protocol_error("MQTT-3.3.2-8", 5).reason(0x94),
    );
}

#[test]
fn zero_receive_maximum_and_maximum_packet_size_are_protocol_errors() {
    // (sender, bytes, offset, id)
    let cases = [
        (
            C,
            "10 11 00 04 \"MQTT\" 05 02 00 3C 03 21 00 00 00 01 \"c\"",
            13,
            0x21,
        ),
        (S, "20 06 00 00 03 21 00 00", 5, 0x21),
        (
            C,
            "10 13 00 04 \"MQTT\" 05 02 00 3C 05 27 00 00 00 00 00 01 \"c\"",
            13,
            0x27,
        ),
        (S, "20 08 00 00 05 27 00 00 00 00", 5, 0x27),
    ];
    for (from, bytes, at, prop) in cases {
        let e = reject(V5, from, &hex(bytes), protocol_error(None, at));
        assert_eq!(e.kind, ErrorKind::PropertyValue { id: prop, value: 0 });
        // With 1 instead of 0 the packet decodes.
        let mut ok = hex(bytes);
        let last = at + if prop == 0x21 { 2 } else { 4 };
        ok[last] = 1;
        let packet = decode(V5, from, &ok);
        let p = packet.properties().expect("properties");
        assert!(p.receive_maximum() == Some(1) || p.maximum_packet_size() == Some(1));
    }
}

#[test]
fn boolean_properties_take_only_0_or_1() {
    // (sender, bytes with the value byte as XX, offset of the property)
    let cases = [
        (
            C,
            "10 10 00 04 \"MQTT\" 05 02 00 3C 02 17 XX 00 01 \"c\"",
            13,
            0x17,
        ),
        (
            C,
            "10 10 00 04 \"MQTT\" 05 02 00 3C 02 19 XX 00 01 \"c\"",
            13,
            0x19,
        ),
        (C, "30 06 00 01 \"a\" 02 01 XX", 6, 0x01),
        (
            C,
            "10 16 00 04 \"MQTT\" 05 06 00 3C 00 00 01 \"c\" 02 01 XX 00 01 \"w\" 00 00",
            17,
            0x01,
        ),
        (S, "20 05 00 00 02 24 XX", 5, 0x24),
        (S, "20 05 00 00 02 25 XX", 5, 0x25),
        (S, "20 05 00 00 02 28 XX", 5, 0x28),
        (S, "20 05 00 00 02 29 XX", 5, 0x29),
        (S, "20 05 00 00 02 2A XX", 5, 0x2A),
    ];
    for (from, template, at, prop) in cases {
        for value in 0..=255u8 {
            let bytes = hex(&template.replace("XX", &format!("{value:02X}")));
            if value <= 1 {
                decode(V5, from, &bytes);
            } else {
                let e = reject(V5, from, &bytes, protocol_error(None, at));
                assert_eq!(
                    e.kind,
                    ErrorKind::PropertyValue {
                        id: prop,
                        value: u32::from(value)
                    }
                );
            }
        }
    }
}

#[test]
fn authentication_data_needs_an_authentication_method() {
    // The offset names the Authentication Data property.
    let e = reject(
        V5,
        C,
        &hex("10 12 00 04 \"MQTT\" 05 02 00 3C 04 16 00 01 AA 00 01 \"c\""),
        protocol_error(None, 13),
    );
    assert_eq!(e.kind, ErrorKind::AuthDataWithoutMethod);
    reject(
        V5,
        C,
        &hex("10 17 00 04 \"MQTT\" 05 02 00 3C 09 11 00 00 00 05 16 00 01 AA 00 01 \"c\""),
        protocol_error(None, 18),
    );
    reject(
        V5,
        C,
        &hex("F0 06 18 04 16 00 01 AA"),
        protocol_error(None, 4),
    );
    reject(
        V5,
        S,
        &hex("20 07 00 00 04 16 00 01 AA"),
        protocol_error(None, 5),
    );
    // Method alone, or method and data in either order, are fine.
    let c = connect(
        V5,
        &hex("10 16 00 04 \"MQTT\" 05 02 00 3C 08 15 00 05 \"SCRAM\" 00 01 \"c\""),
    );
    assert_eq!(c.properties.authentication_method(), Some(s("SCRAM")));
    let a = decode(V5, S, &hex("F0 0B 18 09 16 00 01 AA 15 00 02 \"xy\""));
    assert_eq!(
        a,
        Packet::Auth(Auth {
            reason_code: 0x18,
            properties: props([
                Property::AuthenticationData(Bytes::from_static(&[0xAA])),
                Property::AuthenticationMethod(s("xy")),
            ]),
        })
    );
}

#[test]
fn session_expiry_in_disconnect_only_from_a_client() {
    let bytes = hex("E0 07 00 05 11 00 00 00 0A");
    let e = reject(V5, S, &bytes, protocol_error("MQTT-3.14.2-2", 4));
    assert_eq!(e.kind, ErrorKind::SessionExpiryFromServer);
    assert_eq!(
        decode(V5, C, &bytes),
        Packet::Disconnect(Disconnect {
            reason_code: 0,
            properties: props([Property::SessionExpiryInterval(10)]),
        })
    );
    // Other properties are fine from a server.
    decode(V5, S, &hex("E0 08 8B 06 1C 00 03 \"srv\""));
}

#[test]
fn response_topic_must_be_a_topic_name() {
    let e = reject(
        V5,
        C,
        &hex("30 09 00 01 \"a\" 05 08 00 02 \"r#\""),
        protocol_error("MQTT-3.3.2-14", 6),
    );
    assert_eq!(
        e.kind,
        ErrorKind::TopicName {
            field: "response_topic",
            error: TopicError::WildcardInName
        }
    );
    let msg = publish(V5, C, &hex("30 09 00 01 \"a\" 05 08 00 02 \"r/\""));
    assert_eq!(msg.properties.response_topic(), Some(s("r/")));
}

// ---------------------------------------------------------------------------
// Reason codes (5.0)
// ---------------------------------------------------------------------------

/// Senders, bytes before the reason code, bytes after it, the valid codes, the statement.
type AckCase = (
    &'static [Sender],
    &'static str,
    &'static str,
    &'static [u8],
    &'static str,
);

#[test]
fn ack_reason_codes_are_checked_per_packet_type() {
    const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
    const PUBREL: &[u8] = &[0x00, 0x92];
    const SUBACK: &[u8] = &[
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    const AUTH: &[u8] = &[0x00, 0x18, 0x19];
    // (senders, bytes before the code, bytes after it, valid codes, statement)
    let cases: [AckCase; 7] = [
        (&[C, S], "40 03 00 01", "", PUBACK, "MQTT-3.4.2-1"),
        (&[C, S], "50 03 00 01", "", PUBACK, "MQTT-3.5.2-1"),
        (&[C, S], "62 03 00 01", "", PUBREL, "MQTT-3.6.2-1"),
        (&[C, S], "70 04 00 01", "00", PUBREL, "MQTT-3.7.2-1"),
        (&[S], "90 05 00 01 00 00", "", SUBACK, "MQTT-3.9.3-2"),
        (&[S], "B0 04 00 01 00", "", UNSUBACK, "MQTT-3.11.3-2"),
        (&[C, S], "F0 02", "00", AUTH, "MQTT-3.15.2-1"),
    ];
    for (senders, head, tail, valid, statement) in cases {
        for &from in senders {
            for code in 0..=255u8 {
                let mut bytes = hex(head);
                let at = bytes.len();
                bytes.push(code);
                bytes.extend(hex(tail));
                if valid.contains(&code) {
                    decode(V5, from, &bytes);
                } else {
                    let e = reject(V5, from, &bytes, protocol_error(statement, at));
                    assert_eq!(e.kind, ErrorKind::InvalidReasonCode { code });
                }
            }
        }
    }
    // 3.1.1 SUBACK return codes.
    for code in 0..=255u8 {
        let bytes = [0x90, 0x03, 0x00, 0x01, code];
        if matches!(code, 0 | 1 | 2 | 0x80) {
            decode(V311, S, &bytes);
        } else {
            reject(V311, S, &bytes, protocol_error("MQTT-3.9.3-2", 4));
        }
    }
    // A bad code after good ones in a SUBACK is found at its own offset.
    reject(
        V5,
        S,
        &hex("90 06 00 01 00 00 01 03"),
        protocol_error("MQTT-3.9.3-2", 7),
    );
}

#[test]
fn disconnect_reason_codes_depend_on_the_sender() {
    const CLIENT: &[u8] = &[
        0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
    ];
    const SERVER: &[u8] = &[
        0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
        0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
    ];
    for (from, valid) in [(C, CLIENT), (S, SERVER)] {
        for code in 0..=255u8 {
            let bytes = [0xE0, 0x01, code];
            if valid.contains(&code) {
                decode(V5, from, &bytes);
            } else {
                let e = reject(V5, from, &bytes, protocol_error("MQTT-3.14.2-1", 2));
                assert_eq!(e.kind, ErrorKind::InvalidReasonCode { code });
            }
        }
    }
    // The two named in the brief.
    reject(V5, S, &hex("E0 01 04"), protocol_error("MQTT-3.14.2-1", 2));
    reject(V5, C, &hex("E0 01 8E"), protocol_error("MQTT-3.14.2-1", 2));
}

// ---------------------------------------------------------------------------
// Remaining length that disagrees with the contents
// ---------------------------------------------------------------------------

#[test]
fn remaining_length_too_short_for_the_contents() {
    // (protocol, sender, bytes, offset, field, statement)
    let cases = [
        (V311, C, "40 01 00 01", 2, "packet_id", None),
        (V5, S, "50 01 00 01", 2, "packet_id", None),
        (V311, C, "30 02 00 03 \"abc\"", 2, "topic", None),
        (V311, C, "32 05 00 03 \"abc\" 00 01", 7, "packet_id", None),
        (
            V311,
            C,
            "82 05 00 01 00 01 \"a\" 00",
            7,
            "subscription_options",
            None,
        ),
        (V311, C, "A2 04 00 01 00 03 \"a\"", 4, "topic_filter", None),
        (V311, S, "20 01 00 00", 3, "reason_code", None),
        (
            V5,
            S,
            "20 02 00 00 00",
            4,
            "property_length",
            Some("MQTT-2.2.2-1"),
        ),
        (
            V5,
            S,
            "90 02 00 01 00",
            4,
            "property_length",
            Some("MQTT-2.2.2-1"),
        ),
        (
            V5,
            C,
            "82 02 00 01 00",
            4,
            "property_length",
            Some("MQTT-2.2.2-1"),
        ),
        (
            V5,
            C,
            "30 03 00 01 \"a\" 00",
            5,
            "property_length",
            Some("MQTT-2.2.2-1"),
        ),
    ];
    for (p, from, bytes, offset, field, statement) in cases {
        let e = reject(p, from, &hex(bytes), malformed(statement, offset));
        assert_eq!(e.kind, ErrorKind::UnexpectedEnd { field }, "{p} {bytes}");
    }
}

#[test]
fn remaining_length_too_long_for_the_contents() {
    // (protocol, sender, bytes, offset of the first extra byte)
    let cases = [
        (V311, C, "40 03 00 01 00", 4),
        (V311, S, "50 03 00 01 00", 4),
        (V311, C, "62 04 00 01 00 00", 4),
        (V311, S, "B0 03 00 01 00", 4),
        (V311, S, "20 03 00 00 00", 4),
        (V31, S, "20 03 00 00 00", 4),
        (V311, C, "E0 01 00", 2),
        (V5, C, "40 05 00 01 00 00 00", 6),
        (V5, C, "E0 03 00 00 00", 4),
        (V5, S, "20 04 00 00 00 00", 5),
        (V5, S, "F0 03 00 00 00", 4),
    ];
    for (p, from, bytes, offset) in cases {
        let e = reject(p, from, &hex(bytes), malformed(None, offset));
        assert!(
            matches!(e.kind, ErrorKind::TrailingBytes { .. }),
            "{p} {bytes}: {e}"
        );
    }
}

#[test]
fn pingreq_and_pingresp_must_have_remaining_length_0() {
    for p in ALL {
        assert_eq!(decode(p, C, &hex("C0 00")), Packet::PingReq);
        assert_eq!(decode(p, S, &hex("D0 00")), Packet::PingResp);
        let e = reject(p, C, &hex("C0 01 00"), malformed(None, 2));
        assert_eq!(e.kind, ErrorKind::TrailingBytes { count: 1 });
        let e = reject(p, S, &hex("D0 02 00 00"), malformed(None, 2));
        assert_eq!(e.kind, ErrorKind::TrailingBytes { count: 2 });
    }
}

// ---------------------------------------------------------------------------
// Direction: who may send what
// ---------------------------------------------------------------------------

#[test]
fn packets_from_the_wrong_side_are_refused() {
    // (protocol, sender, first bytes)
    let cases = [
        (V311, C, "20 02 00 00"),
        (V5, C, "20 03 00 00 00"),
        (V311, S, CONNECT_311),
        (V5, S, CONNECT_5),
        (V311, S, "82 06 00 01 00 01 \"a\" 00"),
        (V5, S, "82 07 00 01 00 00 01 \"a\" 00"),
        (V311, S, "A2 05 00 01 00 01 \"a\""),
        (V311, S, "C0 00"),
        (V311, C, "90 03 00 01 00"),
        (V5, C, "B0 04 00 01 00 00"),
        (V311, C, "D0 00"),
        (V311, S, "E0 00"),
        (V31, S, "E0 00"),
    ];
    for (p, from, bytes) in cases {
        let bytes = hex(bytes);
        let e = reject(p, from, &bytes, protocol_error(None, 0));
        assert_eq!(e.kind, ErrorKind::WrongDirection);
        assert_eq!(e.from, from);
        // Known from the first byte alone.
        reject(p, from, &bytes[..1], protocol_error(None, 0));
    }
    // A 5.0 server may send DISCONNECT; AUTH goes both ways.
    decode(V5, S, &hex("E0 00"));
    decode(V5, C, &hex("F0 00"));
    decode(V5, S, &hex("F0 00"));
    // AUTH does not exist before 5.0.
    reject(V311, C, &hex("F0 00"), malformed(None, 0));
}

// ---------------------------------------------------------------------------
// Maximum packet size and incomplete input
// ---------------------------------------------------------------------------

#[test]
fn maximum_packet_size_is_enforced_from_the_fixed_header_alone() {
    const MIB: u32 = 1 << 20;
    for p in ALL {
        for from in [C, S] {
            // 256 MB announced; only the five header bytes are present.
            let header = Bytes::from(hex("30 FF FF FF 7F"));
            let o = opts(p, from).with_max_packet_size(MIB);
            let e = decode_bytes(&header, &o).expect_err("too large");
            let statement = match (p, from) {
                (V5, C) => Some("MQTT-3.2.2-15"),
                (V5, S) => Some("MQTT-3.1.2-24"),
                _ => None,
            };
            check(
                &e,
                Want {
                    statement,
                    class: Class::ProtocolError,
                    reason: 0x95,
                    offset: 1,
                },
                &format!("{p}"),
            );
            assert_eq!(
                e.kind,
                ErrorKind::PacketTooLarge {
                    size: 268_435_460,
                    max: MIB
                }
            );
            // The stream decoder refuses it from the same five bytes and buffers nothing more.
            let mut buf = BytesMut::from(&header[..]);
            let mut d = Decoder::new(o);
            assert_eq!(d.decode(&mut buf).expect_err("too large").kind, e.kind);
            assert_eq!(buf.len(), 5);
        }
    }
    // A packet exactly at the limit passes; one byte more does not.
    let bytes = Bytes::from(hex("30 03 00 01 \"a\""));
    let o = opts(V311, C).with_max_packet_size(5);
    assert!(matches!(
        decode_bytes(&bytes, &o),
        Ok(Decoded::Packet { len: 5, .. })
    ));
    let e = decode_bytes(&bytes, &o.with_max_packet_size(4)).expect_err("too large");
    assert_eq!(e.kind, ErrorKind::PacketTooLarge { size: 5, max: 4 });
    assert_eq!(e.offset, 1);
}

#[test]
fn incomplete_input_says_how_many_more_bytes_are_needed() {
    let full = {
        let mut b = hex("30 82 01 00 01 \"t\"");
        b.extend_from_slice(&[0x55; 127]);
        b
    };
    // (bytes present, needed)
    for (present, needed) in [
        (0, 2),
        (1, 1),
        (2, 1),
        (3, 130),
        (4, 129),
        (68, 65),
        (132, 1),
    ] {
        let input = Bytes::copy_from_slice(&full[..present]);
        assert_eq!(
            decode_bytes(&input, &opts(V311, C)),
            Ok(Decoded::Incomplete { needed }),
            "{present} bytes"
        );
        let d = Decoder::new(opts(V311, C));
        assert_eq!(d.needed(&full[..present]), needed, "{present} bytes");
    }
    assert!(matches!(
        decode_bytes(&Bytes::from(full.clone()), &opts(V311, C)),
        Ok(Decoded::Packet { len: 133, .. })
    ));
    // Header only, for a few packet types.
    for (p, from, bytes, needed) in [
        (V311, C, "10 0D", 13),
        (V5, S, "20 03", 3),
        (V5, C, "82 07 00 01", 5),
        (V311, C, "E0", 1),
    ] {
        assert_eq!(
            decode_bytes(&Bytes::from(hex(bytes)), &opts(p, from)),
            Ok(Decoded::Incomplete { needed }),
            "{bytes}"
        );
    }
    // Bytes after a whole packet are left for the next call.
    let two = Bytes::from(hex("C0 00 C0"));
    assert_eq!(
        decode_bytes(&two, &opts(V311, C)),
        Ok(Decoded::Packet {
            packet: Packet::PingReq,
            len: 2
        })
    );
}

// ---------------------------------------------------------------------------
// The stream decoder
// ---------------------------------------------------------------------------

#[test]
fn stream_decoder_yields_packets_one_by_one_and_adopts_the_connect_level() {
    let mut d = Decoder::new(opts(V311, C));
    let mut buf = BytesMut::new();
    // 5.0 CONNECT (16 bytes), 5.0 PUBLISH with a property (12), PINGREQ (2),
    // and the first four bytes of a PUBLISH.
    buf.extend_from_slice(&hex(CONNECT_5));
    buf.extend_from_slice(&hex("32 0A 00 01 \"a\" 00 07 02 01 01 \"hi\""));
    buf.extend_from_slice(&hex("C0 00"));
    buf.extend_from_slice(&hex("30 06 00 03"));

    assert_eq!(
        d.decode(&mut buf),
        Ok(Some(Packet::Connect(Box::new(Connect::new(V5, "c")))))
    );
    assert_eq!((d.position, buf.len(), d.options.protocol), (16, 18, V5));
    // Read as 5.0: `02 01 01` is a property block, not payload.
    let Ok(Some(Packet::Publish(msg))) = d.decode(&mut buf) else {
        panic!("expected a PUBLISH");
    };
    assert_eq!(msg.properties, props([Property::PayloadFormatIndicator(1)]));
    assert_eq!((msg.packet_id, &msg.payload[..]), (7, &b"hi"[..]));
    assert_eq!((d.position, buf.len()), (28, 6));
    assert_eq!(d.decode(&mut buf), Ok(Some(Packet::PingReq)));
    assert_eq!((d.position, buf.len()), (30, 4));
    // Half a packet: nothing yet, nothing consumed.
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!((d.position, buf.len(), d.needed(&buf)), (30, 4, 4));
    buf.extend_from_slice(&hex("\"a/b\""));
    assert_eq!(d.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&hex("00"));
    let Ok(Some(Packet::Publish(msg))) = d.decode(&mut buf) else {
        panic!("expected a PUBLISH");
    };
    assert_eq!(msg.topic, "a/b");
    assert_eq!((d.position, buf.len()), (38, 0));
    assert_eq!(d.decode(&mut buf), Ok(None));
    // An error in a body: the offset counts from the start of the stream.
    buf.extend_from_slice(&hex("30 06 00 03 61 00 62 00"));
    let e = d.decode(&mut buf).expect_err("U+0000");
    check(&e, malformed("MQTT-1.5.4-2", 38 + 5), "stream");
    assert_eq!(e.protocol, V5);
}

#[test]
fn stream_decoder_header_errors_count_from_the_stream_start() {
    let mut d = Decoder::new(opts(V311, C));
    let mut buf = BytesMut::from(&hex(CONNECT_311)[..]);
    buf.extend_from_slice(&hex("C0 00 36 00"));
    assert!(matches!(d.decode(&mut buf), Ok(Some(Packet::Connect(_)))));
    assert_eq!(d.decode(&mut buf), Ok(Some(Packet::PingReq)));
    let e = d.decode(&mut buf).expect_err("QoS 3");
    check(&e, malformed("MQTT-3.3.1-4", 17), "stream");
}

#[test]
fn stream_decoder_version_follows_the_connect() {
    // A 5.0 stream default, a 3.1.1 CONNECT: non-minimal lengths are then accepted.
    let mut d = Decoder::new(opts(V5, C));
    let mut buf = BytesMut::from(&hex(CONNECT_311)[..]);
    buf.extend_from_slice(&hex("C0 80 00"));
    assert!(matches!(d.decode(&mut buf), Ok(Some(Packet::Connect(_)))));
    assert_eq!(d.options.protocol, V311);
    assert_eq!(d.decode(&mut buf), Ok(Some(Packet::PingReq)));
    assert_eq!(d.position, 18);
    // A 3.1.1 default, a 5.0 CONNECT: the same bytes are refused, at stream offset 16 + 1.
    let mut d = Decoder::new(opts(V311, C));
    let mut buf = BytesMut::from(&hex(CONNECT_5)[..]);
    buf.extend_from_slice(&hex("C0 80 00"));
    assert!(matches!(d.decode(&mut buf), Ok(Some(Packet::Connect(_)))));
    let e = d.decode(&mut buf).expect_err("non-minimal");
    check(&e, malformed("MQTT-1.5.5-1", 17), "stream");
    // 3.1 too: AUTH stays reserved after a 3.1 CONNECT.
    let mut d = Decoder::new(opts(V5, C));
    let mut buf = BytesMut::from(&hex(CONNECT_31)[..]);
    buf.extend_from_slice(&hex("F0 00"));
    assert!(matches!(d.decode(&mut buf), Ok(Some(Packet::Connect(_)))));
    assert_eq!(d.options.protocol, V31);
    check(
        &d.decode(&mut buf).expect_err("AUTH"),
        malformed(None, 17),
        "stream",
    );
}

// ---------------------------------------------------------------------------
// Zero copy
// ---------------------------------------------------------------------------

fn within(inner: &[u8], base: usize, len: usize) -> bool {
    let start = inner.as_ptr() as usize;
    start >= base && start + inner.len() <= base + len
}

#[test]
fn publish_payload_and_topic_point_into_the_input() {
    let input = Bytes::from(hex("30 0C 00 03 \"a/b\" \"payload\""));
    let (base, len) = (input.as_ptr() as usize, input.len());
    let Ok(Decoded::Packet {
        packet: Packet::Publish(msg),
        ..
    }) = decode_bytes(&input, &opts(V311, C))
    else {
        panic!("expected a PUBLISH");
    };
    assert_eq!(msg.payload, "payload");
    assert!(within(&msg.payload, base, len), "payload was copied");
    assert_eq!(msg.payload.as_ptr() as usize, base + 7);
    assert!(within(msg.topic.as_bytes(), base, len), "topic was copied");

    // The same through the stream decoder and a BytesMut.
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(&hex("C0 00 32 0E 00 03 \"a/b\" 00 01 \"payload\""));
    let (base, len) = (buf.as_ptr() as usize, buf.len());
    let mut d = Decoder::new(opts(V311, C));
    assert_eq!(d.decode(&mut buf), Ok(Some(Packet::PingReq)));
    let Ok(Some(Packet::Publish(msg))) = d.decode(&mut buf) else {
        panic!("expected a PUBLISH");
    };
    assert_eq!(msg.payload, "payload");
    assert!(within(&msg.payload, base, len), "payload was copied");
    assert_eq!(msg.payload.as_ptr() as usize, base + 11);
}

// ---------------------------------------------------------------------------
// Invalid packets built from valid ones with `encode_with` + `Overrides`
// ---------------------------------------------------------------------------

fn sample() -> Publish {
    Publish {
        qos: QoS::AtLeastOnce,
        topic: s("a/b"),
        packet_id: 7,
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    }
}

fn sample_publish() -> Packet {
    Packet::Publish(sample())
}

fn with(fields: &[(&str, &str)]) -> Overrides {
    Overrides {
        fields: fields
            .iter()
            .map(|(n, h)| (n.to_string(), hex(h)))
            .collect(),
        ..Overrides::default()
    }
}

#[test]
fn encoded_packets_decode_back_to_themselves() {
    let packets = [
        (V311, C, sample_publish()),
        (
            V5,
            S,
            Packet::Publish(Publish {
                properties: props([
                    Property::SubscriptionIdentifier(3),
                    Property::SubscriptionIdentifier(4),
                    Property::UserProperty(s("k"), s("v")),
                ]),
                ..sample()
            }),
        ),
        (
            V5,
            C,
            Packet::Subscribe(Subscribe {
                packet_id: 3,
                properties: Properties::new(),
                filters: vec![Subscription {
                    filter: s("$share/g/a"),
                    options: SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        retain_handling: 1,
                        ..SubscriptionOptions::default()
                    },
                }],
            }),
        ),
        (V311, C, Packet::Connect(Box::new(Connect::new(V311, "c")))),
        (
            V5,
            S,
            Packet::Disconnect(Disconnect {
                reason_code: 0x8E,
                ..Disconnect::default()
            }),
        ),
    ];
    for (p, from, packet) in packets {
        let bytes = encode_bytes(&packet, p).expect("encodes");
        assert_eq!(decode(p, from, &bytes), packet);
    }
}

#[test]
fn overrides_build_the_invalid_packets_the_decoder_refuses() {
    let publish = sample_publish();
    // The valid encoding, for reference: 32 09 | 00 03 a / b | 00 07 | h i
    assert_eq!(
        &encode_bytes(&publish, V311).expect("encodes")[..],
        &hex("32 09 00 03 \"a/b\" 00 07 \"hi\"")[..]
    );

    // Overlong UTF-8 in the topic.
    let bytes = encode_with(&publish, V311, &with(&[("topic", "00 02 C0 AF")])).expect("encodes");
    assert_eq!(&bytes[..], &hex("32 08 00 02 C0 AF 00 07 \"hi\"")[..]);
    reject(V311, C, &bytes, malformed("MQTT-1.5.3-1", 4));
    // A wildcard topic, then a null character, in 5.0.
    let bytes = encode_with(&publish, V5, &with(&[("topic", "00 03 \"a/#\"")])).expect("encodes");
    reject(
        V5,
        C,
        &bytes,
        protocol_error("MQTT-3.3.2-2", 2).reason(0x90),
    );
    let bytes =
        encode_with(&publish, V5, &with(&[("topic", "00 03 \"a\" 00 \"b\"")])).expect("encodes");
    reject(V5, C, &bytes, malformed("MQTT-1.5.4-2", 5));
    // Packet identifier 0.
    let bytes = encode_with(&publish, V311, &with(&[("packet_id", "00 00")])).expect("encodes");
    reject(V311, C, &bytes, protocol_error("MQTT-2.3.1-1", 7));
    reject(
        V5,
        S,
        &encode_with(&publish, V5, &with(&[("packet_id", "00 00")])).expect("encodes"),
        protocol_error("MQTT-2.2.1-4", 7),
    );
    // QoS 3 through the flags.
    let o = Overrides {
        flags: Some(0b0110),
        ..Overrides::default()
    };
    reject(
        V5,
        C,
        &encode_with(&publish, V5, &o).expect("encodes"),
        malformed("MQTT-3.3.1-4", 0),
    );
    // Reserved packet type 0 through the first byte.
    let o = Overrides {
        first_byte: Some(0x00),
        ..Overrides::default()
    };
    reject(
        V311,
        C,
        &encode_with(&publish, V311, &o).expect("encodes"),
        malformed(None, 0),
    );
}

#[test]
fn overrides_of_the_fixed_header() {
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: Properties::new(),
        filters: vec![Subscription {
            filter: s("a"),
            options: SubscriptionOptions::qos(QoS::AtLeastOnce),
        }],
    });
    for p in [V311, V5] {
        let bytes = encode_with(
            &subscribe,
            p,
            &Overrides {
                flags: Some(0),
                ..Overrides::default()
            },
        )
        .expect("encodes");
        assert_eq!(bytes[0], 0x80);
        reject(p, C, &bytes, malformed("MQTT-3.8.1-1", 0));
    }
    // A non-minimal remaining length.
    let o = Overrides {
        remaining_length: Some(vec![0x80, 0x80, 0x00]),
        ..Overrides::default()
    };
    let bytes = encode_with(&Packet::PingReq, V5, &o).expect("encodes");
    assert_eq!(&bytes[..], &hex("C0 80 80 00")[..]);
    reject(V5, C, &bytes, malformed("MQTT-1.5.5-1", 1));
    assert_eq!(decode(V311, C, &bytes), Packet::PingReq);
    // A remaining length of five bytes.
    let o = Overrides {
        remaining_length: Some(vec![0x80, 0x80, 0x80, 0x80, 0x00]),
        ..Overrides::default()
    };
    reject(
        V311,
        C,
        &encode_with(&Packet::PingReq, V311, &o).expect("encodes"),
        malformed(None, 1),
    );
    // A remaining length shorter than the body.
    let ack = Packet::PubAck(PubResponse::new(9));
    let o = Overrides {
        remaining_length: Some(vec![1]),
        ..Overrides::default()
    };
    let e = reject(
        V311,
        C,
        &encode_with(&ack, V311, &o).expect("encodes"),
        malformed(None, 2),
    );
    assert_eq!(e.kind, ErrorKind::UnexpectedEnd { field: "packet_id" });
    // Bytes appended after the body (counted in the remaining length).
    let o = Overrides {
        append: vec![0x00],
        ..Overrides::default()
    };
    let bytes = encode_with(&ack, V311, &o).expect("encodes");
    assert_eq!(&bytes[..], &hex("40 03 00 09 00")[..]);
    reject(V311, C, &bytes, malformed(None, 4));
    reject(
        V311,
        C,
        &encode_with(&Packet::PingReq, V311, &o).expect("encodes"),
        malformed(None, 2),
    );
    // A truncated packet is incomplete, not wrong.
    let connect = Packet::Connect(Box::new(Connect::new(V311, "client")));
    let o = Overrides {
        truncate: Some(10),
        ..Overrides::default()
    };
    let bytes = encode_with(&connect, V311, &o).expect("encodes");
    assert_eq!(bytes.len(), 10);
    assert_eq!(
        decode_bytes(&bytes, &opts(V311, C)),
        Ok(Decoded::Incomplete { needed: 10 })
    );
}

#[test]
fn overrides_of_connect_fields() {
    let c = Packet::Connect(Box::new(Connect {
        username: Some(s("u")),
        ..Connect::new(V311, "c")
    }));
    // Protocol level 6, protocol name "MQTX", reserved flag, password without user name.
    reject(
        V311,
        C,
        &encode_with(&c, V311, &with(&[("protocol_level", "06")])).expect("encodes"),
        protocol_error("MQTT-3.1.2-2", 8).reason(0x84),
    );
    reject(
        V311,
        C,
        &encode_with(&c, V311, &with(&[("protocol_name", "00 04 \"MQTX\"")])).expect("encodes"),
        protocol_error("MQTT-3.1.2-1", 2).reason(0x84),
    );
    reject(
        V311,
        C,
        &encode_with(&c, V311, &with(&[("connect_flags", "83")])).expect("encodes"),
        malformed("MQTT-3.1.2-3", 9),
    );
    let e = reject(
        V311,
        C,
        &encode_with(&c, V311, &with(&[("connect_flags", "42")])).expect("encodes"),
        malformed("MQTT-3.1.2-22", 9),
    );
    assert_eq!(e.kind, ErrorKind::PasswordWithoutUsername);
    // User Name Flag set but the user name cut off.
    let o = Overrides {
        fields: vec![("username".into(), vec![])],
        ..Overrides::default()
    };
    reject(
        V311,
        C,
        &encode_with(&c, V311, &o).expect("encodes"),
        malformed("MQTT-3.1.2-19", 15),
    );
    let c5 = Packet::Connect(Box::new(Connect {
        username: Some(s("u")),
        ..Connect::new(V5, "c")
    }));
    reject(
        V5,
        C,
        &encode_with(&c5, V5, &o).expect("encodes"),
        malformed("MQTT-3.1.2-17", 16),
    );
    // An unknown field name is an encoder error that lists the known ones.
    match encode_with(&c, V311, &with(&[("no_such_field", "00")])) {
        Err(EncodeError::UnknownField { field, known }) => {
            assert_eq!(field, "no_such_field");
            assert!(known.iter().any(|k| k == "client_id"));
        }
        other => panic!("expected UnknownField, got {other:?}"),
    }
}

#[test]
fn overrides_of_5_properties() {
    let publish = Packet::Publish(Publish {
        topic: s("a"),
        properties: props([Property::TopicAlias(5)]),
        ..Publish::default()
    });
    assert_eq!(
        &encode_bytes(&publish, V5).expect("encodes")[..],
        &hex("30 07 00 01 \"a\" 03 23 00 05")[..]
    );
    // Topic Alias 0 through the property's own span.
    let bytes = encode_with(&publish, V5, &with(&[("topic_alias", "23 00 00")])).expect("encodes");
    reject(
        V5,
        C,
        &bytes,
        protocol_error("MQTT-3.3.2-8", 6).reason(0x94),
    );
    // An unknown property, and one not allowed in PUBLISH.
    let bytes = encode_with(&publish, V5, &with(&[("topic_alias", "7F 00 05")])).expect("encodes");
    reject(V5, C, &bytes, malformed(None, 6));
    let bytes = encode_with(&publish, V5, &with(&[("topic_alias", "13 00 05")])).expect("encodes");
    reject(V5, C, &bytes, malformed(None, 6));
    // A property length past the packet.
    let bytes = encode_with(&publish, V5, &with(&[("property_length", "10")])).expect("encodes");
    reject(V5, C, &bytes, malformed(None, 5));
    // A non-minimal property length.
    let bytes = encode_with(&publish, V5, &with(&[("property_length", "83 00")])).expect("encodes");
    reject(V5, C, &bytes, malformed("MQTT-1.5.5-1", 5));
    // The whole property block replaced by a duplicate.
    let bytes = encode_with(
        &publish,
        V5,
        &with(&[("properties", "06 23 00 01 23 00 02")]),
    )
    .expect("encodes");
    reject(V5, C, &bytes, protocol_error(None, 9));
    // The encoder writes what it is given: duplicates need no override.
    let dup = Packet::Publish(Publish {
        topic: s("a"),
        properties: props([
            Property::MessageExpiryInterval(1),
            Property::MessageExpiryInterval(2),
        ]),
        ..Publish::default()
    });
    let e = reject(
        V5,
        C,
        &encode_bytes(&dup, V5).expect("encodes"),
        protocol_error(None, 11),
    );
    assert_eq!(e.kind, ErrorKind::DuplicateProperty { id: 0x02 });
    // Subscription Identifier: from a server fine, from a client refused.
    let sub_id = Packet::Publish(Publish {
        topic: s("a"),
        properties: props([Property::SubscriptionIdentifier(9)]),
        ..Publish::default()
    });
    let bytes = encode_bytes(&sub_id, V5).expect("encodes");
    assert_eq!(decode(V5, S, &bytes), sub_id);
    reject(V5, C, &bytes, protocol_error("MQTT-3.3.4-6", 6));
    // DUP at QoS 0, written from the packet's own fields.
    let dup0 = Packet::Publish(Publish {
        dup: true,
        topic: s("a"),
        ..Publish::default()
    });
    reject(
        V311,
        C,
        &encode_bytes(&dup0, V311).expect("encodes"),
        malformed("MQTT-3.3.1-2", 0),
    );
    // Session Expiry in a server DISCONNECT.
    let d = Packet::Disconnect(Disconnect {
        reason_code: 0,
        properties: props([Property::SessionExpiryInterval(0)]),
    });
    let bytes = encode_bytes(&d, V5).expect("encodes");
    reject(V5, S, &bytes, protocol_error("MQTT-3.14.2-2", 4));
    assert_eq!(decode(V5, C, &bytes), d);
}

#[test]
fn a_connect_length_is_judged_by_the_version_it_announces() {
    // The same CONNECTs with their remaining length written in two bytes.
    let widen = |bytes: Vec<u8>| {
        let mut out = vec![bytes[0], bytes[1] | 0x80, 0x00];
        out.extend_from_slice(&bytes[2..]);
        out
    };
    // A 5.0 CONNECT is refused under MQTT-1.5.5-1 even on a stream whose default is 3.1.1…
    let mut d = Decoder::new(opts(V311, C));
    let mut buf = BytesMut::from(&widen(hex(CONNECT_5))[..]);
    let e = d.decode(&mut buf).expect_err("non-minimal 5.0 CONNECT");
    check(&e, malformed("MQTT-1.5.5-1", 1), "5.0 CONNECT");
    // …and a 3.1.1 CONNECT is accepted even on a stream whose default is 5.0.
    let mut d = Decoder::new(opts(V5, C));
    let mut buf = BytesMut::from(&widen(hex(CONNECT_311))[..]);
    assert!(matches!(d.decode(&mut buf), Ok(Some(Packet::Connect(_)))));
}
