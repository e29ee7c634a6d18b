//! Packets described by their fields, in JSON or YAML: what `decode --json`
//! prints, what `encode` reads, and what scenario steps send and expect.
//!
//! # The format
//!
//! A packet is a mapping with a `type` (the spec's upper-case name) and the
//! fields of that type, named as a reader of the spec would look for them:
//!
//! | type | fields (wire order) |
//! |------|---------------------|
//! | `CONNECT` | `protocol` (`"3.1"`, `"3.1.1"`, `"5.0"`), `clean_start`, `keep_alive`, `properties`, `client_id`, `will: {topic, payload, qos, retain, properties}`, `username`, `password` |
//! | `CONNACK` | `session_present`, `reason_code`, `properties` |
//! | `PUBLISH` | `dup`, `qos`, `retain`, `topic`, `id` (QoS 1 and 2 only), `properties`, `payload` |
//! | `PUBACK` `PUBREC` `PUBREL` `PUBCOMP` | `id`, `reason_code`, `properties` |
//! | `SUBSCRIBE` | `id`, `properties`, `filters: [{filter, qos, no_local, retain_as_published, retain_handling}]` (a bare string is a filter at QoS 0) |
//! | `SUBACK` `UNSUBACK` | `id`, `properties`, `codes` |
//! | `UNSUBSCRIBE` | `id`, `properties`, `filters: [string]` |
//! | `PINGREQ` `PINGRESP` | — |
//! | `DISCONNECT` `AUTH` | `reason_code`, `properties` |
//!
//! - `id` is the packet identifier. A reason code is a number (`0x87`, `135`) or
//!   its name from the spec (`Not authorized`); `code` is accepted for
//!   `reason_code`, `clean_session` for `clean_start`. The names `reason` and
//!   `reasons`, which `decode --json` prints beside the numbers, are accepted
//!   too and must agree with them.
//! - Payloads, passwords and binary properties are a string (its UTF-8 bytes)
//!   or `{hex: "00 ff"}`; `decode --json` prints the string form when the bytes
//!   are printable UTF-8 text.
//! - `properties` (5.0) is an ordered list of `{name: …, value: …}` with the
//!   snake_case names of [`mqtt_codec::props::PROPERTIES`]; a User Property's
//!   value is `[key, value]`. The short form `{topic_alias: 3}` works too.
//! - Defaults: `clean_start: true`, `keep_alive: 60`, `qos: 0`, flags false,
//!   codes 0, no properties. `type`, `client_id` (CONNECT), `topic` (PUBLISH),
//!   `filters` and `id` (where the packet carries one) must be given.
//! - A CONNECT is written in its `protocol` (default: the stream's); in a
//!   list, the packets after a CONNECT are written in its version.
//!
//! # Deliberate deviations
//!
//! These keys, valid on any packet, make the encoder write bytes that a
//! decoder must refuse (see [`Overrides`]):
//!
//! - `first_byte: 0x36` replaces the type-and-flags byte; `flags: 0x6` only its low nibble.
//! - `remaining_length: "ff ff ff ff 7f"` replaces the remaining-length bytes
//!   verbatim (a number is written as its shortest encoding).
//! - `raw: {topic: "00 03 61 ff 62"}` replaces a field's bytes; the field names
//!   are those `decode` shows (`topic`, `packet_id`, `client_id`,
//!   `connect_flags`, `properties`…); `topic_filter[1]` is the second one.
//! - `append: "00"` adds bytes after the body (counted in the remaining length);
//!   `truncate: 3` cuts the finished packet to 3 bytes.
//!
//! # Example
//!
//! ```yaml
//! - type: CONNECT
//!   protocol: "5.0"
//!   client_id: sensor-1
//!   properties: [{name: session_expiry_interval, value: 3600}]
//! - type: PUBLISH
//!   qos: 1
//!   id: 7
//!   topic: a/b
//!   payload: hi
//!   properties: [{name: user_property, value: [k, v]}]
//! - {type: PUBLISH, topic: a/b, payload: {hex: "ff 00"}, flags: 0x6}   # QoS 3: malformed
//! ```
//!
//! Unknown keys, keys that do not belong to the packet's type and values of
//! the wrong kind are errors that name the key and, in YAML and JSON text,
//! the line and column.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use mqtt_codec::encode::encode_varint;
use mqtt_codec::props::{self, PropertyInfo, ValueType, PROPERTIES};
use mqtt_codec::reason;
use mqtt_codec::{
    Auth, ByteString, ConnAck, Connect, Disconnect, Overrides, Packet, PacketType, Properties,
    Property, Protocol, PubResponse, Publish, QoS, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::{hex, suggest};

// ---------------------------------------------------------------------------
// Packet → JSON
// ---------------------------------------------------------------------------

/// The JSON description of `packet` as sent in `protocol` (a CONNECT is
/// described in its own version). Keys come in wire order, `type` first.
pub fn packet_to_json(packet: &Packet, protocol: Protocol) -> Value {
    let ty = packet.packet_type();
    let v5 = match packet {
        Packet::Connect(c) => c.protocol.is_v5(),
        _ => protocol.is_v5(),
    };
    let mut m = Map::new();
    m.insert("type".into(), json!(ty.name()));
    let props = |m: &mut Map<String, Value>, p: &Properties| {
        if v5 {
            m.insert("properties".into(), properties_json(p));
        }
    };
    let reason = |m: &mut Map<String, Value>, code: u8| {
        m.insert("reason_code".into(), json!(code));
        m.insert("reason".into(), json!(reason_name(code, ty, protocol)));
    };
    match packet {
        Packet::Connect(c) => {
            m.insert("protocol".into(), json!(c.protocol.as_str()));
            m.insert("clean_start".into(), json!(c.clean_start));
            m.insert("keep_alive".into(), json!(c.keep_alive));
            props(&mut m, &c.properties);
            m.insert("client_id".into(), json!(&*c.client_id));
            if let Some(w) = &c.will {
                let mut will = Map::new();
                will.insert("qos".into(), json!(w.qos.as_u8()));
                will.insert("retain".into(), json!(w.retain));
                props(&mut will, &w.properties);
                will.insert("topic".into(), json!(&*w.topic));
                will.insert("payload".into(), binary_json(&w.payload));
                m.insert("will".into(), Value::Object(will));
            }
            if let Some(u) = &c.username {
                m.insert("username".into(), json!(&**u));
            }
            if let Some(p) = &c.password {
                m.insert("password".into(), binary_json(p));
            }
        }
        Packet::ConnAck(c) => {
            m.insert("session_present".into(), json!(c.session_present));
            reason(&mut m, c.code);
            props(&mut m, &c.properties);
        }
        Packet::Publish(p) => {
            m.insert("dup".into(), json!(p.dup));
            m.insert("qos".into(), json!(p.qos.as_u8()));
            m.insert("retain".into(), json!(p.retain));
            m.insert("topic".into(), json!(&*p.topic));
            if p.qos != QoS::AtMostOnce {
                m.insert("id".into(), json!(p.packet_id));
            }
            props(&mut m, &p.properties);
            m.insert("payload".into(), binary_json(&p.payload));
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            m.insert("id".into(), json!(r.packet_id));
            if v5 {
                reason(&mut m, r.reason_code);
            }
            props(&mut m, &r.properties);
        }
        Packet::Subscribe(s) => {
            m.insert("id".into(), json!(s.packet_id));
            props(&mut m, &s.properties);
            let filters: Vec<Value> = s
                .filters
                .iter()
                .map(|f| {
                    let mut o = Map::new();
                    o.insert("filter".into(), json!(&*f.filter));
                    o.insert("qos".into(), json!(f.options.qos.as_u8()));
                    if v5 {
                        o.insert("no_local".into(), json!(f.options.no_local));
                        o.insert(
                            "retain_as_published".into(),
                            json!(f.options.retain_as_published),
                        );
                        o.insert("retain_handling".into(), json!(f.options.retain_handling));
                    }
                    Value::Object(o)
                })
                .collect();
            m.insert("filters".into(), Value::Array(filters));
        }
        Packet::SubAck(s) => {
            m.insert("id".into(), json!(s.packet_id));
            props(&mut m, &s.properties);
            codes_json(&mut m, &s.reason_codes, ty, protocol);
        }
        Packet::Unsubscribe(u) => {
            m.insert("id".into(), json!(u.packet_id));
            props(&mut m, &u.properties);
            let filters: Vec<Value> = u.filters.iter().map(|f| json!(&**f)).collect();
            m.insert("filters".into(), Value::Array(filters));
        }
        Packet::UnsubAck(u) => {
            m.insert("id".into(), json!(u.packet_id));
            if v5 {
                props(&mut m, &u.properties);
                codes_json(&mut m, &u.reason_codes, ty, protocol);
            }
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(Disconnect {
            reason_code,
            properties,
        })
        | Packet::Auth(Auth {
            reason_code,
            properties,
        }) => {
            if v5 {
                reason(&mut m, *reason_code);
                props(&mut m, properties);
            }
        }
    }
    Value::Object(m)
}

fn codes_json(m: &mut Map<String, Value>, codes: &[u8], ty: PacketType, protocol: Protocol) {
    m.insert("codes".into(), json!(codes));
    let names: Vec<&str> = codes
        .iter()
        .map(|&c| reason_name(c, ty, protocol))
        .collect();
    m.insert("reasons".into(), json!(names));
}

/// The spec's name of a reason code (5.0) or return code (3.1, 3.1.1) in `ty`.
pub fn reason_name(code: u8, ty: PacketType, protocol: Protocol) -> &'static str {
    if protocol.is_v5() {
        return reason::name(code, ty);
    }
    match (ty, code) {
        (PacketType::ConnAck, _) => reason::v3_connack_name(code),
        (PacketType::SubAck, 0) => "Granted QoS 0",
        (PacketType::SubAck, 1) => "Granted QoS 1",
        (PacketType::SubAck, 2) => "Granted QoS 2",
        (PacketType::SubAck, 0x80) => "Failure",
        (PacketType::SubAck, _) => "reserved return code",
        _ => reason::name(code, ty),
    }
}

/// Printable UTF-8 (tabs and line breaks allowed) as a string, anything else as `{"hex": …}`.
pub fn binary_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s)
            if s.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')) =>
        {
            json!(s)
        }
        _ => json!({ "hex": hex::spaced(bytes) }),
    }
}

/// `[{"name": …, "value": …}, …]` in the order they came.
pub fn properties_json(props: &Properties) -> Value {
    Value::Array(
        props
            .iter()
            .map(|p| json!({ "name": p.name(), "value": property_value_json(p) }))
            .collect(),
    )
}

fn property_value_json(p: &Property) -> Value {
    use mqtt_codec::props::Value as V;
    match p.value() {
        V::Byte(v) => json!(v),
        V::TwoByte(v) => json!(v),
        V::FourByte(v) | V::Varint(v) => json!(v),
        V::Binary(b) => binary_json(b),
        V::Utf8(s) => json!(&**s),
        V::Utf8Pair(k, v) => json!([&**k, &**v]),
    }
}

// ---------------------------------------------------------------------------
// JSON / YAML → Packet
// ---------------------------------------------------------------------------

/// One packet read from a description: the packet, the deviations to write
/// it with, and the version it is written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub packet: Packet,
    pub overrides: Overrides,
    pub protocol: Protocol,
}

/// A description that cannot be turned into a packet: what is wrong and,
/// when read from text, where (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
    pub location: Option<(usize, usize)>,
}

impl Error {
    fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            location: None,
        }
    }

    /// From a YAML error: its message without the trailing "at line L column C",
    /// which is kept apart in `location`.
    pub fn from_yaml(e: &serde_norway::Error) -> Error {
        let location = e.location().map(|l| (l.line(), l.column()));
        let text = e.to_string();
        // The path of a list item in the top-level list reads `.[0]`; `[0]` is enough.
        let mut message = text
            .strip_prefix(".[")
            .map_or(text.clone(), |rest| format!("[{rest}"));
        if let Some((line, column)) = location {
            let suffix = format!(" at line {line} column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        Error { message, location }
    }

    pub fn from_json(e: &serde_json::Error) -> Error {
        let location = (e.line() > 0).then(|| (e.line(), e.column()));
        let mut message = e.to_string();
        if let Some((line, column)) = location {
            let suffix = format!(" at line {line} column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        Error { message, location }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Reads one packet or a list of packets from YAML text. `protocol` is the
/// version of the stream until a CONNECT says otherwise.
pub fn from_yaml(text: &str, protocol: Protocol) -> Result<Vec<Described>, Error> {
    DocumentSeed { protocol }
        .deserialize(serde_norway::Deserializer::from_str(text))
        .map_err(|e| Error::from_yaml(&e))
}

/// Reads one packet or a list of packets from JSON text.
pub fn from_json(text: &str, protocol: Protocol) -> Result<Vec<Described>, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let packets = DocumentSeed { protocol }
        .deserialize(&mut de)
        .map_err(|e| Error::from_json(&e))?;
    de.end().map_err(|e| Error::from_json(&e))?;
    Ok(packets)
}

/// One packet from an already-parsed JSON value (no line numbers then; the
/// message names the key).
pub fn packet_from_value(value: &Value, protocol: Protocol) -> Result<(Packet, Overrides), Error> {
    let d = PacketSeed { protocol }
        .deserialize(value)
        .map_err(|e| Error::new(e.to_string()))?;
    Ok((d.packet, d.overrides))
}

/// Deserializes one packet description; usable inside any serde format, so
/// that a scenario file can embed packets and keep line numbers.
#[derive(Debug, Clone, Copy)]
pub struct PacketSeed {
    /// The version of the stream (a CONNECT may name its own).
    pub protocol: Protocol,
}

impl<'de> DeserializeSeed<'de> for PacketSeed {
    type Value = Described;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Described, D::Error> {
        d.deserialize_map(PacketVisitor {
            protocol: self.protocol,
        })
    }
}

/// A document: one packet, or a list whose version follows its CONNECTs.
struct DocumentSeed {
    protocol: Protocol,
}

impl<'de> DeserializeSeed<'de> for DocumentSeed {
    type Value = Vec<Described>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Described>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed {
    type Value = Vec<Described>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a packet (a mapping with a `type`) or a list of packets")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let one = PacketVisitor {
            protocol: self.protocol,
        }
        .visit_map(map)?;
        Ok(vec![one])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut protocol = self.protocol;
        let mut out = Vec::new();
        while let Some(d) = seq.next_element_seed(PacketSeed { protocol })? {
            if let Packet::Connect(c) = &d.packet {
                protocol = c.protocol;
            }
            out.push(d);
        }
        if out.is_empty() {
            return Err(de::Error::custom(
                "the list of packets is empty: describe at least one, e.g. `- {type: PINGREQ}`",
            ));
        }
        Ok(out)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(
            "the document is empty: describe a packet, e.g. `{type: PINGREQ}`",
        ))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
}

/// Every key a packet mapping may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Type,
    Protocol,
    CleanStart,
    KeepAlive,
    ClientId,
    Will,
    Username,
    Password,
    SessionPresent,
    Dup,
    Qos,
    Retain,
    Topic,
    Id,
    Payload,
    ReasonCode,
    Reason,
    Filters,
    Codes,
    Reasons,
    Properties,
    FirstByte,
    Flags,
    RemainingLength,
    Raw,
    Append,
    Truncate,
}

/// Spellings, canonical first.
const KEY_NAMES: &[(&str, Key)] = &[
    ("type", Key::Type),
    ("protocol", Key::Protocol),
    ("clean_start", Key::CleanStart),
    ("keep_alive", Key::KeepAlive),
    ("client_id", Key::ClientId),
    ("will", Key::Will),
    ("username", Key::Username),
    ("password", Key::Password),
    ("session_present", Key::SessionPresent),
    ("dup", Key::Dup),
    ("qos", Key::Qos),
    ("retain", Key::Retain),
    ("topic", Key::Topic),
    ("id", Key::Id),
    ("payload", Key::Payload),
    ("reason_code", Key::ReasonCode),
    ("reason", Key::Reason),
    ("filters", Key::Filters),
    ("codes", Key::Codes),
    ("reasons", Key::Reasons),
    ("properties", Key::Properties),
    ("first_byte", Key::FirstByte),
    ("flags", Key::Flags),
    ("remaining_length", Key::RemainingLength),
    ("raw", Key::Raw),
    ("append", Key::Append),
    ("truncate", Key::Truncate),
    ("code", Key::ReasonCode),
    ("clean_session", Key::CleanStart),
];

/// Keys every packet takes: its type and the deliberate deviations.
const COMMON_KEYS: &[Key] = &[
    Key::Type,
    Key::FirstByte,
    Key::Flags,
    Key::RemainingLength,
    Key::Raw,
    Key::Append,
    Key::Truncate,
];

impl Key {
    fn name(self) -> &'static str {
        KEY_NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    fn from_name(name: &str) -> Option<Key> {
        KEY_NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// The fields of a packet type, in wire order.
    fn of_type(ty: PacketType) -> &'static [Key] {
        use Key::*;
        match ty {
            PacketType::Connect => &[
                Protocol, CleanStart, KeepAlive, Properties, ClientId, Will, Username, Password,
            ],
            PacketType::ConnAck => &[SessionPresent, ReasonCode, Reason, Properties],
            PacketType::Publish => &[Dup, Qos, Retain, Topic, Id, Properties, Payload],
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                &[Id, ReasonCode, Reason, Properties]
            }
            PacketType::Subscribe | PacketType::Unsubscribe => &[Id, Properties, Filters],
            PacketType::SubAck | PacketType::UnsubAck => &[Id, Properties, Codes, Reasons],
            PacketType::PingReq | PacketType::PingResp => &[],
            PacketType::Disconnect | PacketType::Auth => &[ReasonCode, Reason, Properties],
        }
    }

    fn applies(self, ty: PacketType) -> bool {
        COMMON_KEYS.contains(&self) || Key::of_type(ty).contains(&self)
    }
}

fn allowed_names(ty: Option<PacketType>) -> Vec<&'static str> {
    match ty {
        Some(ty) => Key::of_type(ty)
            .iter()
            .chain(COMMON_KEYS)
            .map(|k| k.name())
            .collect(),
        None => KEY_NAMES.iter().map(|(n, _)| *n).collect(),
    }
}

fn describe_allowed(ty: PacketType) -> String {
    let fields: Vec<&str> = Key::of_type(ty).iter().map(|k| k.name()).collect();
    let fields = if fields.is_empty() {
        "no fields".to_string()
    } else {
        fields.join(", ")
    };
    format!(
        "a {ty} takes {fields} (and on any packet: first_byte, flags, remaining_length, raw, append, truncate)"
    )
}

/// Reads a key, refusing unknown, repeated and (once the type is known)
/// misplaced ones while the parser still points at the key.
struct KeySeed<'a> {
    ty: Option<PacketType>,
    seen: &'a [Key],
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        let Some(key) = Key::from_name(s) else {
            let hint = suggest::hint(s, allowed_names(self.ty));
            return Err(E::custom(match self.ty {
                Some(ty) => format!("unknown field `{s}`{hint}; {}", describe_allowed(ty)),
                None => format!(
                    "unknown field `{s}`{hint}; the fields are: {}",
                    allowed_names(None).join(", ")
                ),
            }));
        };
        if self.seen.contains(&key) {
            return Err(E::custom(format!(
                "`{s}` is given twice (as `{}` before)",
                key.name()
            )));
        }
        if let Some(ty) = self.ty {
            if !key.applies(ty) {
                return Err(E::custom(format!(
                    "`{s}` does not apply to {ty}{}; {}",
                    suggest::hint(s, allowed_names(Some(ty))),
                    describe_allowed(ty)
                )));
            }
        }
        Ok(key)
    }
}

struct PacketVisitor {
    protocol: Protocol,
}

/// The fields of one packet mapping as read, before they are checked together.
#[derive(Default)]
struct Fields {
    seen: Vec<Key>,
    ty: Option<PacketType>,
    protocol: Option<Protocol>,
    clean_start: Option<bool>,
    keep_alive: Option<u16>,
    client_id: Option<String>,
    will: Option<WillSpec>,
    username: Option<String>,
    password: Option<Bytes>,
    session_present: Option<bool>,
    dup: Option<bool>,
    qos: Option<QoS>,
    retain: Option<bool>,
    topic: Option<String>,
    id: Option<u16>,
    payload: Option<Bytes>,
    reason_code: Option<ReasonValue>,
    reason: Option<String>,
    filters: Option<Vec<FilterSpec>>,
    codes: Option<Vec<ReasonValue>>,
    reasons: Option<Vec<String>>,
    properties: Option<Properties>,
    first_byte: Option<u8>,
    flags: Option<u8>,
    remaining_length: Option<Vec<u8>>,
    raw: Vec<(String, Vec<u8>)>,
    append: Vec<u8>,
    truncate: Option<usize>,
}

impl<'de> Visitor<'de> for PacketVisitor {
    type Value = Described;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a packet: a mapping with a `type` such as PUBLISH and its fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Described, A::Error> {
        let mut f = Fields::default();
        loop {
            let seed = KeySeed {
                ty: f.ty,
                seen: &f.seen,
            };
            let Some(key) = map.next_key_seed(seed)? else {
                break;
            };
            match key {
                Key::Type => f.ty = Some(map.next_value::<TypeValue>()?.0),
                Key::Protocol => f.protocol = Some(map.next_value::<ProtocolValue>()?.0),
                Key::CleanStart => f.clean_start = Some(map.next_value()?),
                Key::KeepAlive => f.keep_alive = Some(map.next_value()?),
                Key::ClientId => f.client_id = Some(map.next_value()?),
                Key::Will => f.will = Some(map.next_value()?),
                Key::Username => f.username = Some(map.next_value()?),
                Key::Password => f.password = Some(map.next_value::<BinaryValue>()?.0),
                Key::SessionPresent => f.session_present = Some(map.next_value()?),
                Key::Dup => f.dup = Some(map.next_value()?),
                Key::Qos => f.qos = Some(map.next_value::<QosValue>()?.0),
                Key::Retain => f.retain = Some(map.next_value()?),
                Key::Topic => f.topic = Some(map.next_value()?),
                Key::Id => f.id = Some(map.next_value()?),
                Key::Payload => f.payload = Some(map.next_value::<BinaryValue>()?.0),
                Key::ReasonCode => f.reason_code = Some(map.next_value()?),
                Key::Reason => f.reason = Some(map.next_value::<ReasonName>()?.0),
                Key::Filters => f.filters = Some(map.next_value()?),
                Key::Codes => f.codes = Some(map.next_value()?),
                Key::Reasons => {
                    let names: Vec<ReasonName> = map.next_value()?;
                    f.reasons = Some(names.into_iter().map(|n| n.0).collect());
                }
                Key::Properties => f.properties = Some(map.next_value::<PropertiesValue>()?.0),
                Key::FirstByte => f.first_byte = Some(map.next_value::<ByteValue>()?.0),
                Key::Flags => {
                    let v = map.next_value::<FlagsValue>()?.0;
                    f.flags = Some(v);
                }
                Key::RemainingLength => {
                    f.remaining_length = Some(map.next_value::<RemainingLengthValue>()?.0)
                }
                Key::Raw => f.raw = map.next_value::<RawValue>()?.0,
                Key::Append => f.append = map.next_value::<HexValue>()?.0,
                Key::Truncate => f.truncate = Some(map.next_value()?),
            }
            f.seen.push(key);
        }
        f.build(self.protocol).map_err(de::Error::custom)
    }
}

impl Fields {
    /// Checks the fields together and builds the packet.
    fn build(self, stream: Protocol) -> Result<Described, String> {
        let ty = self.ty.ok_or_else(|| {
            "missing `type`: say which packet this is, e.g. `type: PUBLISH`".to_string()
        })?;
        if let Some(key) = self.seen.iter().find(|k| !k.applies(ty)) {
            return Err(format!(
                "`{}` does not apply to {ty}; {}",
                key.name(),
                describe_allowed(ty)
            ));
        }
        let protocol = match ty {
            PacketType::Connect => self.protocol.unwrap_or(stream),
            _ => stream,
        };
        let v5 = protocol.is_v5();
        let need_id = || {
            self.id.ok_or_else(|| {
                format!("missing `id`: a {ty} carries a packet identifier, e.g. `id: 1`")
            })
        };
        let properties = self.properties.clone().unwrap_or_default();
        let reason_code = resolve_reason(
            self.reason_code.as_ref(),
            self.reason.as_deref(),
            ty,
            protocol,
        )?;
        let codes = resolve_codes(self.codes.as_deref(), self.reasons.as_deref(), ty, protocol)?;
        let packet = match ty {
            PacketType::Connect => {
                let client_id = self
                    .client_id
                    .clone()
                    .ok_or("missing `client_id`: a CONNECT always carries one (it may be \"\")")?;
                let will = self.will.clone().map(|w| Will {
                    qos: w.qos.map_or(QoS::AtMostOnce, |q| q.0),
                    retain: w.retain.unwrap_or(false),
                    properties: w.properties.map(|p| p.0).unwrap_or_default(),
                    topic: ByteString::from(w.topic),
                    payload: w.payload.map(|p| p.0).unwrap_or_default(),
                });
                Packet::Connect(Box::new(Connect {
                    protocol,
                    clean_start: self.clean_start.unwrap_or(true),
                    keep_alive: self.keep_alive.unwrap_or(60),
                    properties,
                    client_id: ByteString::from(client_id),
                    will,
                    username: self.username.clone().map(ByteString::from),
                    password: self.password.clone(),
                }))
            }
            PacketType::ConnAck => Packet::ConnAck(ConnAck {
                session_present: self.session_present.unwrap_or(false),
                code: reason_code,
                properties,
            }),
            PacketType::Publish => {
                let qos = self.qos.unwrap_or_default();
                let packet_id = match (qos, self.id) {
                    (QoS::AtMostOnce, Some(_)) => {
                        return Err(
                            "`id` has no place in a QoS 0 PUBLISH, which carries no packet \
                             identifier: set `qos: 1`, or write the bytes anyway with `append`"
                                .into(),
                        )
                    }
                    (QoS::AtMostOnce, None) => 0,
                    _ => need_id()?,
                };
                let topic = self.topic.clone().ok_or(
                    "missing `topic`: a PUBLISH always carries a topic name (it may be \"\")",
                )?;
                Packet::Publish(Publish {
                    dup: self.dup.unwrap_or(false),
                    qos,
                    retain: self.retain.unwrap_or(false),
                    topic: ByteString::from(topic),
                    packet_id,
                    properties,
                    payload: self.payload.clone().unwrap_or_default(),
                })
            }
            PacketType::PubAck | PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                let r = PubResponse {
                    packet_id: need_id()?,
                    reason_code,
                    properties,
                };
                match ty {
                    PacketType::PubAck => Packet::PubAck(r),
                    PacketType::PubRec => Packet::PubRec(r),
                    PacketType::PubRel => Packet::PubRel(r),
                    _ => Packet::PubComp(r),
                }
            }
            PacketType::Subscribe => {
                let filters = self.filters.as_ref().ok_or(
                    "missing `filters`: e.g. `filters: [{filter: a/b, qos: 1}]` (or [] on purpose)",
                )?;
                let mut subs = Vec::with_capacity(filters.len());
                for (i, f) in filters.iter().enumerate() {
                    if !v5 {
                        let v5_only = [
                            ("no_local", f.no_local.is_some()),
                            ("retain_as_published", f.retain_as_published.is_some()),
                            ("retain_handling", f.retain_handling.is_some()),
                        ];
                        if let Some((name, _)) = v5_only.iter().find(|(_, set)| *set) {
                            return Err(format!(
                                "filters[{i}]: `{name}` exists only in MQTT 5.0, not in {protocol}; \
                                 to set those bits anyway use `raw: {{subscription_options: \"..\"}}`"
                            ));
                        }
                    }
                    subs.push(Subscription {
                        filter: ByteString::from(f.filter.clone()),
                        options: SubscriptionOptions {
                            qos: f.qos.unwrap_or_default(),
                            no_local: f.no_local.unwrap_or(false),
                            retain_as_published: f.retain_as_published.unwrap_or(false),
                            retain_handling: f.retain_handling.unwrap_or(0),
                        },
                    });
                }
                Packet::Subscribe(Subscribe {
                    packet_id: need_id()?,
                    properties,
                    filters: subs,
                })
            }
            PacketType::Unsubscribe => {
                let filters = self
                    .filters
                    .as_ref()
                    .ok_or("missing `filters`: e.g. `filters: [a/b, c/#]` (or [] on purpose)")?;
                if let Some((i, _)) = filters.iter().enumerate().find(|(_, f)| f.has_options()) {
                    return Err(format!(
                        "filters[{i}]: UNSUBSCRIBE filters are bare topic filters, without qos or other options"
                    ));
                }
                Packet::Unsubscribe(Unsubscribe {
                    packet_id: need_id()?,
                    properties,
                    filters: filters
                        .iter()
                        .map(|f| ByteString::from(f.filter.clone()))
                        .collect(),
                })
            }
            PacketType::SubAck => Packet::SubAck(SubAck {
                packet_id: need_id()?,
                properties,
                reason_codes: codes,
            }),
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck {
                packet_id: need_id()?,
                properties,
                reason_codes: codes,
            }),
            PacketType::PingReq => Packet::PingReq,
            PacketType::PingResp => Packet::PingResp,
            PacketType::Disconnect => Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            }),
            PacketType::Auth => Packet::Auth(Auth {
                reason_code,
                properties,
            }),
        };
        let overrides = Overrides {
            first_byte: self.first_byte,
            flags: self.flags,
            remaining_length: self.remaining_length,
            fields: self.raw,
            append: self.append,
            truncate: self.truncate,
        };
        // Encoding now reports what the encoder refuses (a 5.0 field in a 3.1.1
        // packet, an unknown `raw` field) while the position is still known.
        mqtt_codec::encode_with(&packet, protocol, &overrides)
            .map_err(|e| format!("{ty} cannot be written in MQTT {protocol}: {e}"))?;
        Ok(Described {
            packet,
            overrides,
            protocol,
        })
    }
}

fn resolve_reason(
    code: Option<&ReasonValue>,
    name: Option<&str>,
    ty: PacketType,
    protocol: Protocol,
) -> Result<u8, String> {
    let by_name = |n: &str| {
        code_for_name(n, ty, protocol).ok_or_else(|| {
            format!(
                "`{n}` is not the name of a {ty} code in MQTT {protocol}; give the number instead"
            )
        })
    };
    let from_code = match code {
        Some(ReasonValue::Code(c)) => Some(*c),
        Some(ReasonValue::Name(n)) => Some(by_name(n)?),
        None => None,
    };
    match (from_code, name) {
        (Some(c), Some(n)) => {
            let named = by_name(n)?;
            if named != c {
                return Err(format!(
                    "`reason_code` 0x{c:02X} ({}) and `reason: {n}` (0x{named:02X}) disagree; keep one",
                    reason_name(c, ty, protocol)
                ));
            }
            Ok(c)
        }
        (Some(c), None) => Ok(c),
        (None, Some(n)) => by_name(n),
        (None, None) => Ok(0),
    }
}

fn resolve_codes(
    codes: Option<&[ReasonValue]>,
    names: Option<&[String]>,
    ty: PacketType,
    protocol: Protocol,
) -> Result<Vec<u8>, String> {
    let from_codes = codes
        .map(|cs| {
            cs.iter()
                .map(|c| resolve_reason(Some(c), None, ty, protocol))
                .collect::<Result<Vec<u8>, String>>()
        })
        .transpose()?;
    let from_names = names
        .map(|ns| {
            ns.iter()
                .map(|n| resolve_reason(None, Some(n), ty, protocol))
                .collect::<Result<Vec<u8>, String>>()
        })
        .transpose()?;
    match (from_codes, from_names) {
        (Some(c), Some(n)) if c != n => Err(format!(
            "`codes` {c:?} and `reasons` {n:?} disagree; keep one"
        )),
        (Some(c), _) => Ok(c),
        (None, Some(n)) => Ok(n),
        (None, None) => Ok(Vec::new()),
    }
}

/// The code named `name` in `ty` (case-insensitive), else in any packet.
fn code_for_name(name: &str, ty: PacketType, protocol: Protocol) -> Option<u8> {
    let matches = |t: PacketType| {
        (0..=255u8).find(|&c| reason_name(c, t, protocol).eq_ignore_ascii_case(name.trim()))
    };
    matches(ty).or_else(|| PacketType::ALL.iter().find_map(|&t| matches(t)))
}

/// Every name of a reason or return code, for validating and suggesting.
fn all_reason_names() -> Vec<&'static str> {
    let mut names = Vec::new();
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        for ty in PacketType::ALL {
            for code in 0..=255u8 {
                let n = reason_name(code, ty, protocol);
                if n != "unknown reason code" && n != "reserved return code" && !names.contains(&n)
                {
                    names.push(n);
                }
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------
// Values that check themselves while the parser points at them
// ---------------------------------------------------------------------------

// A check must run inside a `Visitor`, while the deserializer still holds the
// value: an error raised after `T::deserialize` returned would be placed at
// the enclosing mapping instead of the value.

struct StrCheck<F, T>(&'static str, F, PhantomData<T>);

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for StrCheck<F, T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        (self.1)(s).map_err(E::custom)
    }
}

/// A string, checked by `check`.
fn checked_str<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    check: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    d.deserialize_str(StrCheck(expecting, check, PhantomData))
}

struct U64Check<F, T>(&'static str, F, PhantomData<T>);

impl<T, F: FnOnce(u64) -> Result<T, String>> Visitor<'_> for U64Check<F, T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        let v = u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative; expected {}", self.0)))?;
        (self.1)(v).map_err(E::custom)
    }
}

/// A non-negative integer, checked by `check`.
fn checked_u64<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    check: impl FnOnce(u64) -> Result<T, String>,
) -> Result<T, D::Error> {
    d.deserialize_u64(U64Check(expecting, check, PhantomData))
}

struct TypeValue(PacketType);

impl<'de> Deserialize<'de> for TypeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a packet type such as PUBLISH", |s| {
            PacketType::from_name(s.trim())
                .map(TypeValue)
                .ok_or_else(|| {
                    let names: Vec<&str> = PacketType::ALL.iter().map(|t| t.name()).collect();
                    format!(
                        "unknown packet type `{s}`{}; the types are {}",
                        suggest::hint(s, names.iter().copied()),
                        names.join(", ")
                    )
                })
        })
    }
}

struct ProtocolValue(Protocol);

impl<'de> Deserialize<'de> for ProtocolValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ProtocolValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protocol version: \"3.1\", \"3.1.1\" or \"5.0\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ProtocolValue, E> {
                Protocol::parse(s.trim()).map(ProtocolValue).ok_or_else(|| {
                    E::custom(format!(
                        "unknown protocol version `{s}`: use \"3.1\", \"3.1.1\" or \"5.0\""
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ProtocolValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProtocolValue, E> {
                self.visit_str(&v.to_string())
            }
            // YAML reads `protocol: 5.0` and `protocol: 3.1` as numbers.
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ProtocolValue, E> {
                self.visit_str(&format!("{v:.1}"))
            }
        }
        d.deserialize_any(V)
    }
}

/// 0, 1 or 2.
#[derive(Clone)]
struct QosValue(QoS);

impl<'de> Deserialize<'de> for QosValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_u64(d, "a QoS: 0, 1 or 2", |v| {
            u8::try_from(v)
                .ok()
                .and_then(QoS::from_u8)
                .map(QosValue)
                .ok_or_else(|| {
                    format!(
                        "qos {v} is not 0, 1 or 2; to send QoS 3 on purpose set the fixed-header \
                         flags instead (`flags: 0x6` on a PUBLISH) or the options byte with `raw`"
                    )
                })
        })
    }
}

/// A byte given as a number (`54`, YAML `0x36`) or a string (`"0x36"`, `"0b0110"`).
struct ByteValue(u8);

impl<'de> Deserialize<'de> for ByteValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteVisitor { nibble: false })
            .map(ByteValue)
    }
}

/// A byte, or with `nibble` the four flag bits of the first byte.
struct ByteVisitor {
    nibble: bool,
}

impl ByteVisitor {
    fn check<E: de::Error>(&self, v: u64) -> Result<u8, E> {
        match u8::try_from(v) {
            Ok(b) if !self.nibble || b <= 0x0F => Ok(b),
            _ if self.nibble => Err(E::custom(format!(
                "flags 0x{v:X} do not fit in the 4 flag bits (0 to 0xF); \
                 to replace the whole first byte use `first_byte`"
            ))),
            _ => Err(E::custom(format!("{v} does not fit in a byte (0 to 255)"))),
        }
    }
}

impl Visitor<'_> for ByteVisitor {
    type Value = u8;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte: 0 to 255, or a string such as \"0x36\" or \"0b0110\"")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u8, E> {
        self.check(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u8, E> {
        let v = u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative; a byte is 0 to 255")))?;
        self.check(v)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<u8, E> {
        let t = s.trim();
        let parsed = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            u64::from_str_radix(h, 16)
        } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
            u64::from_str_radix(&b.replace('_', ""), 2)
        } else {
            t.parse::<u64>()
        };
        let v = parsed.map_err(|_| {
            E::custom(format!(
                "`{s}` is not a byte: write 0 to 255, \"0x36\" or \"0b0110\""
            ))
        })?;
        self.check(v)
    }
}

/// The low nibble of the first byte.
struct FlagsValue(u8);

impl<'de> Deserialize<'de> for FlagsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteVisitor { nibble: true })
            .map(FlagsValue)
    }
}

/// Bytes written as hex text.
struct HexValue(Vec<u8>);

impl<'de> Deserialize<'de> for HexValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "bytes as hex text, e.g. \"00 ff\"", |s| {
            hex::parse(s)
                .map(HexValue)
                .map_err(|e| format!("bad hex bytes {s:?}: {e}"))
        })
    }
}

/// Remaining-length bytes: hex text verbatim, or a number in its shortest encoding.
struct RemainingLengthValue(Vec<u8>);

impl<'de> Deserialize<'de> for RemainingLengthValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RemainingLengthValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("remaining-length bytes as hex text (\"ff ff ff ff 7f\") or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RemainingLengthValue, E> {
                u32::try_from(v)
                    .ok()
                    .and_then(encode_varint)
                    .map(RemainingLengthValue)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "{v} is above 268435455, the largest remaining length; \
                             to write longer or overlong bytes give them as hex text"
                        ))
                    })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RemainingLengthValue, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a remaining length is not negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RemainingLengthValue, E> {
                hex::parse(s)
                    .map(RemainingLengthValue)
                    .map_err(|e| E::custom(format!("bad hex bytes {s:?}: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A binary field: a string (its UTF-8 bytes) or `{hex: "…"}`.
#[derive(Clone)]
struct BinaryValue(Bytes);

impl<'de> Deserialize<'de> for BinaryValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BinaryValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("text, or bytes as {hex: \"00 ff\"}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BinaryValue, E> {
                Ok(BinaryValue(Bytes::copy_from_slice(s.as_bytes())))
            }
            // YAML reads `payload: 42` as a number; the text is what was meant.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BinaryValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BinaryValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<BinaryValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BinaryValue, A::Error> {
                let mut bytes = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "hex" || bytes.is_some() {
                        return Err(de::Error::custom(format!(
                            "unexpected `{key}`: binary data is text or {{hex: \"00 ff\"}}, with the one key `hex`"
                        )));
                    }
                    bytes = Some(map.next_value::<HexValue>()?.0);
                }
                bytes
                    .map(|b| BinaryValue(Bytes::from(b)))
                    .ok_or_else(|| de::Error::custom("empty mapping: write {hex: \"00 ff\"}"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A reason code: a number, or a name from the spec.
#[derive(Clone)]
enum ReasonValue {
    Code(u8),
    Name(String),
}

impl<'de> Deserialize<'de> for ReasonValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ReasonValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a reason code: a number such as 0x87, or its name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ReasonValue, E> {
                u8::try_from(v)
                    .map(ReasonValue::Code)
                    .map_err(|_| E::custom(format!("reason code {v} does not fit in a byte")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ReasonValue, E> {
                u8::try_from(v)
                    .map(ReasonValue::Code)
                    .map_err(|_| E::custom(format!("reason code {v} does not fit in a byte")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ReasonValue, E> {
                if let Ok(b) = (ByteVisitor { nibble: false }).visit_str::<E>(s) {
                    return Ok(ReasonValue::Code(b));
                }
                check_reason_name(s)
                    .map(ReasonValue::Name)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

fn check_reason_name(s: &str) -> Result<String, String> {
    let names = all_reason_names();
    if names.iter().any(|n| n.eq_ignore_ascii_case(s.trim())) {
        return Ok(s.trim().to_string());
    }
    Err(format!(
        "`{s}` is not the name of a reason code{}; give the number, e.g. 0x80",
        suggest::hint(s, names.iter().copied())
    ))
}

struct ReasonName(String);

impl<'de> Deserialize<'de> for ReasonName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "the name of a reason code", |s| {
            check_reason_name(s).map(ReasonName)
        })
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WillSpec {
    topic: String,
    payload: Option<BinaryValue>,
    qos: Option<QosValue>,
    retain: Option<bool>,
    properties: Option<PropertiesValue>,
}

/// A subscription: `a/b` or `{filter: a/b, qos: 1, …}`.
#[derive(Clone)]
struct FilterSpec {
    filter: String,
    qos: Option<QoS>,
    no_local: Option<bool>,
    retain_as_published: Option<bool>,
    retain_handling: Option<u8>,
}

impl FilterSpec {
    fn has_options(&self) -> bool {
        self.qos.is_some()
            || self.no_local.is_some()
            || self.retain_as_published.is_some()
            || self.retain_handling.is_some()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterFields {
    filter: String,
    qos: Option<QosValue>,
    no_local: Option<bool>,
    retain_as_published: Option<bool>,
    retain_handling: Option<RetainHandlingValue>,
}

/// 0 to 3 (3 is invalid, and writable on purpose: the field has two bits).
struct RetainHandlingValue(u8);

impl<'de> Deserialize<'de> for RetainHandlingValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_u64(d, "retain handling: 0, 1 or 2", |v| match u8::try_from(v) {
            Ok(b) if b <= 3 => Ok(RetainHandlingValue(b)),
            _ => Err(format!(
                "retain_handling {v} does not fit in its two bits (0 to 3)"
            )),
        })
    }
}

impl<'de> Deserialize<'de> for FilterSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FilterSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a topic filter, or {filter: …, qos: …}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FilterSpec, E> {
                Ok(FilterSpec {
                    filter: s.to_string(),
                    qos: None,
                    no_local: None,
                    retain_as_published: None,
                    retain_handling: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FilterSpec, A::Error> {
                let f = FilterFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(FilterSpec {
                    filter: f.filter,
                    qos: f.qos.map(|q| q.0),
                    no_local: f.no_local,
                    retain_as_published: f.retain_as_published,
                    retain_handling: f.retain_handling.map(|r| r.0),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `raw: {field: "hex", …}`, in the order given.
struct RawValue(Vec<(String, Vec<u8>)>);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from field names to hex bytes, e.g. {topic: \"00 01 ff\"}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let bytes = map.next_value::<HexValue>()?.0;
                    out.push((name, bytes));
                }
                Ok(RawValue(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Clone)]
struct PropertiesValue(Properties);

impl<'de> Deserialize<'de> for PropertiesValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list: Vec<PropertyValue> = Vec::deserialize(d)?;
        Ok(PropertiesValue(Properties(
            list.into_iter().map(|p| p.0).collect(),
        )))
    }
}

/// One property: `{name: topic_alias, value: 3}` or `{topic_alias: 3}`.
struct PropertyValue(Property);

enum PropertyKey {
    Name,
    Value,
    Short(&'static PropertyInfo),
}

struct PropertyKeySeed;

impl<'de> DeserializeSeed<'de> for PropertyKeySeed {
    type Value = PropertyKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PropertyKey, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for PropertyKeySeed {
    type Value = PropertyKey;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`name`, `value`, or a property name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<PropertyKey, E> {
        match s {
            "name" => Ok(PropertyKey::Name),
            "value" => Ok(PropertyKey::Value),
            _ => props::info_by_name(s).map(PropertyKey::Short).ok_or_else(|| {
                E::custom(format!(
                    "unexpected `{s}` in a property{}: write {{name: user_property, value: [k, v]}} \
                     or {{user_property: [k, v]}}",
                    suggest::hint(s, PROPERTIES.iter().map(|p| p.name))
                ))
            }),
        }
    }
}

fn property_info(name: &str) -> Result<&'static PropertyInfo, String> {
    props::info_by_name(name.trim()).ok_or_else(|| {
        format!(
            "unknown property `{name}`{}; the properties are {}",
            suggest::hint(name, PROPERTIES.iter().map(|p| p.name)),
            PROPERTIES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

struct PropertyNameValue(&'static PropertyInfo);

impl<'de> Deserialize<'de> for PropertyNameValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, "a property name such as user_property", |s| {
            property_info(s).map(PropertyNameValue)
        })
    }
}

impl<'de> Deserialize<'de> for PropertyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PropertyValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a property: {name: …, value: …}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PropertyValue, A::Error> {
                let mut info: Option<&'static PropertyInfo> = None;
                let mut value: Option<Property> = None;
                // A value that came before its name, kept until the name says its type.
                let mut early: Option<Value> = None;
                while let Some(key) = map.next_key_seed(PropertyKeySeed)? {
                    match key {
                        PropertyKey::Name if info.is_none() => {
                            let i = map.next_value::<PropertyNameValue>()?.0;
                            info = Some(i);
                            if let Some(v) = early.take() {
                                let p = PropertyValueSeed(i)
                                    .deserialize(&v)
                                    .map_err(|e| de::Error::custom(format!("{}: {e}", i.name)))?;
                                value = Some(p);
                            }
                        }
                        PropertyKey::Value if value.is_none() && early.is_none() => match info {
                            Some(i) => value = Some(map.next_value_seed(PropertyValueSeed(i))?),
                            None => early = Some(map.next_value::<Value>()?),
                        },
                        PropertyKey::Short(i) if info.is_none() && value.is_none() => {
                            info = Some(i);
                            value = Some(map.next_value_seed(PropertyValueSeed(i))?);
                        }
                        _ => {
                            return Err(de::Error::custom(
                                "a property is {name: …, value: …} or {some_name: value}, one per list item",
                            ))
                        }
                    }
                }
                match (info, value) {
                    (Some(_), Some(p)) => Ok(PropertyValue(p)),
                    (None, _) => Err(de::Error::custom("property without a `name`")),
                    (Some(i), None) => Err(de::Error::custom(format!(
                        "property {} without a `value`",
                        i.name
                    ))),
                }
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads a property's value by its wire type.
struct PropertyValueSeed(&'static PropertyInfo);

impl<'de> DeserializeSeed<'de> for PropertyValueSeed {
    type Value = Property;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Property, D::Error> {
        use Property as P;
        let info = self.0;
        let p = match info.value {
            ValueType::Byte => {
                let v = u8::deserialize(d)?;
                match info.id {
                    0x01 => P::PayloadFormatIndicator(v),
                    0x17 => P::RequestProblemInformation(v),
                    0x19 => P::RequestResponseInformation(v),
                    0x24 => P::MaximumQoS(v),
                    0x25 => P::RetainAvailable(v),
                    0x28 => P::WildcardSubscriptionAvailable(v),
                    0x29 => P::SubscriptionIdentifierAvailable(v),
                    _ => P::SharedSubscriptionAvailable(v),
                }
            }
            ValueType::TwoByte => {
                let v = u16::deserialize(d)?;
                match info.id {
                    0x13 => P::ServerKeepAlive(v),
                    0x21 => P::ReceiveMaximum(v),
                    0x22 => P::TopicAliasMaximum(v),
                    _ => P::TopicAlias(v),
                }
            }
            ValueType::FourByte => {
                let v = u32::deserialize(d)?;
                match info.id {
                    0x02 => P::MessageExpiryInterval(v),
                    0x11 => P::SessionExpiryInterval(v),
                    0x18 => P::WillDelayInterval(v),
                    _ => P::MaximumPacketSize(v),
                }
            }
            ValueType::Varint => {
                let v = u32::deserialize(d)?;
                if encode_varint(v).is_none() {
                    return Err(de::Error::custom(format!(
                        "{} {v} is above 268435455, the largest variable byte integer",
                        info.name
                    )));
                }
                P::SubscriptionIdentifier(v)
            }
            ValueType::Utf8 => {
                let s = ByteString::from(String::deserialize(d)?);
                match info.id {
                    0x03 => P::ContentType(s),
                    0x08 => P::ResponseTopic(s),
                    0x12 => P::AssignedClientIdentifier(s),
                    0x15 => P::AuthenticationMethod(s),
                    0x1A => P::ResponseInformation(s),
                    0x1C => P::ServerReference(s),
                    _ => P::ReasonString(s),
                }
            }
            ValueType::Binary => {
                let b = BinaryValue::deserialize(d)?.0;
                match info.id {
                    0x09 => P::CorrelationData(b),
                    _ => P::AuthenticationData(b),
                }
            }
            ValueType::Utf8Pair => {
                let (k, v) = <(String, String)>::deserialize(d)?;
                P::UserProperty(ByteString::from(k), ByteString::from(v))
            }
        };
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(yaml: &str) -> Described {
        let mut v = from_yaml(yaml, Protocol::V5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn err(yaml: &str) -> Error {
        match from_yaml(yaml, Protocol::V5) {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn publish_from_yaml() {
        let d = one("{type: PUBLISH, qos: 1, id: 7, topic: a/b, payload: hi, \
             properties: [{name: user_property, value: [k, v]}, {topic_alias: 3}]}");
        let Packet::Publish(p) = &d.packet else {
            panic!("{:?}", d.packet)
        };
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert_eq!(p.packet_id, 7);
        assert_eq!(&*p.topic, "a/b");
        assert_eq!(&p.payload[..], b"hi");
        assert_eq!(
            p.properties.0,
            vec![
                Property::UserProperty("k".into(), "v".into()),
                Property::TopicAlias(3)
            ]
        );
        assert!(d.overrides.is_empty());
    }

    #[test]
    fn to_json_and_back() {
        let packets = from_yaml(
            r#"
- type: CONNECT
  client_id: c1
  keep_alive: 30
  will: {topic: w, payload: {hex: "00 ff"}, qos: 1, retain: true, properties: [{will_delay_interval: 5}]}
  username: u
  password: p
  properties: [{name: session_expiry_interval, value: 10}]
- {type: SUBSCRIBE, id: 2, filters: [a/#, {filter: b, qos: 2, no_local: true, retain_handling: 1}]}
- {type: SUBACK, id: 2, codes: [0, "Not authorized"]}
- {type: UNSUBSCRIBE, id: 3, filters: [a/#]}
- {type: UNSUBACK, id: 3, codes: [0x11]}
- {type: PUBREL, id: 4, reason: Packet Identifier not found}
- {type: DISCONNECT, reason_code: 0x04}
- {type: AUTH, reason_code: 0x18, properties: [{authentication_method: x}]}
- {type: CONNACK, session_present: true, properties: [{correlation_data: {hex: "01"}}]}
- {type: PINGREQ}
"#,
            Protocol::V5,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for d in &packets {
            let j = packet_to_json(&d.packet, d.protocol);
            let (back, o) =
                packet_from_value(&j, d.protocol).unwrap_or_else(|e| panic!("{j}: {e}"));
            assert_eq!(back, d.packet, "{j}");
            assert!(o.is_empty());
        }
        let j = packet_to_json(&packets[2].packet, Protocol::V5);
        assert_eq!(
            j.to_string(),
            r#"{"type":"SUBACK","id":2,"properties":[],"codes":[0,135],"reasons":["Granted QoS 0","Not authorized"]}"#
        );
    }

    #[test]
    fn overrides() {
        let d = one(
            r#"{type: PUBLISH, topic: a, flags: 0x6, remaining_length: "ff ff ff ff 7f",
                raw: {topic: "00 03 61 ff 62"}, append: "00", truncate: 3}"#,
        );
        assert_eq!(d.overrides.flags, Some(6));
        assert_eq!(
            d.overrides.remaining_length,
            Some(vec![0xff, 0xff, 0xff, 0xff, 0x7f])
        );
        assert_eq!(
            d.overrides.fields,
            vec![("topic".to_string(), vec![0, 3, 0x61, 0xff, 0x62])]
        );
        assert_eq!(d.overrides.append, vec![0]);
        assert_eq!(d.overrides.truncate, Some(3));
    }

    #[test]
    fn errors_name_the_key_and_its_place() {
        let e = err("type: PUBLISH\ntopic: a\ntopc: b\n");
        assert_eq!(e.location, Some((3, 1)), "{e}");
        assert!(
            e.message
                .contains("unknown field `topc` (did you mean `topic`?); a PUBLISH takes"),
            "{e}"
        );

        let e = err("type: PUBLISH\ntopic: a\nfilters: [a]\n");
        assert_eq!(e.location, Some((3, 1)), "{e}");
        assert!(
            e.message.contains("`filters` does not apply to PUBLISH"),
            "{e}"
        );

        let e = err("type: PUBLISH\ntopic: a\nqos: 3\n");
        assert_eq!(e.location, Some((3, 6)), "{e}");
        assert!(e.message.contains("flags: 0x6"), "{e}");

        let e = err("type: PUBLSH\n");
        assert!(
            e.message
                .contains("unknown packet type `PUBLSH` (did you mean `PUBLISH`?)"),
            "{e}"
        );

        let e = err("{type: PUBLISH, topic: a, properties: [{name: topic_alias, value: x}]}");
        assert!(e.location.is_some(), "{e}");

        let e = err("{topic: a, qos: 1}");
        assert!(e.message.contains("missing `type`"), "{e}");

        let e = err("{type: PUBLISH, qos: 1, topic: a}");
        assert!(e.message.contains("missing `id`"), "{e}");

        let e = err("{type: PUBLISH, topic: a, raw: {topc: \"00\"}}");
        assert!(e.message.contains("no field \"topc\""), "{e}");

        let e = from_yaml("{type: PUBACK, id: 1, reason_code: 0x10}", Protocol::V3_1_1)
            .err()
            .map(|e| e.message);
        assert!(
            e.as_deref()
                .is_some_and(|m| m.contains("exists only in MQTT 5.0")),
            "{e:?}"
        );
    }

    #[test]
    fn json_errors_have_positions() {
        let e = from_json("{\"type\": \"PINGREQ\",\n \"x\": 1}", Protocol::V5).unwrap_err();
        assert!(e.message.contains("unknown field `x`"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(2));
    }

    #[test]
    fn binary_json_forms() {
        assert_eq!(binary_json(b"hi"), json!("hi"));
        assert_eq!(binary_json(b"a\x00"), json!({"hex": "61 00"}));
        assert_eq!(binary_json(&[0xff]), json!({"hex": "ff"}));
    }
}
