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

use mqtt_codec::{Overrides, Packet, Protocol};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

mod properties;
mod reader;
mod to_json;
mod values;

pub(crate) use properties::*;
pub(crate) use reader::*;
pub use to_json::{binary_json, packet_to_json, properties_json, reason_name};
pub(crate) use values::*;

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
pub(crate) struct DocumentSeed {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::{Property, QoS};
    use serde_json::json;

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
