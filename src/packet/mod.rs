//! Packets described by their fields, in JSON or YAML: what `decode --json`
//! prints, what `encode` reads, and what scenario steps send and expect.
//!
//! # The format
//!
//! A packet is a mapping with a `type` (the spec's upper-case name) and the
//! fields of that type, named as a reader of the spec would look for them.
//! [`vocab`] is the table of them all — per type, in wire order, with their
//! kinds, aliases and versions; `mqtt-harness fields` prints it and
//! `docs/fields.md` is generated from it. In short:
//!
//! - `id` is the packet identifier. A reason code is a number (`0x87`, `135`)
//!   or its name from the spec (`Not authorized`); `code` is accepted for
//!   `reason_code`, `clean_session` for `clean_start`. The names `reason` and
//!   `reasons`, which `decode --json` prints beside the numbers, are accepted
//!   too and must agree with them.
//! - Payloads, passwords and binary properties are a string (its UTF-8 bytes)
//!   or `{hex: "00 ff"}`; `decode --json` prints the string form when the bytes
//!   are printable UTF-8 text.
//! - `properties` (5.0) is an ordered list of `{name: …, value: …}` with the
//!   snake_case names of [`mqtt_codec::props::PROPERTIES`]; a User Property's
//!   value is `[key, value]`. The short form `{topic_alias: 3}` works too.
//! - A field exists only in the versions the table gives it (`properties`
//!   and the acknowledgements' reason codes in 5.0, `session_present` from
//!   3.1.1): given in another, it is an error that says so.
//! - A CONNECT is written in its `protocol` (default: the stream's); in a
//!   list, the packets after a CONNECT are written in its version.
//!
//! # Deliberate deviations
//!
//! The fault keys ([`vocab::FAULTS`]), valid on any packet, make the encoder
//! write bytes that a decoder must refuse (see [`Overrides`]): `first_byte`,
//! `flags` (its low nibble), `remaining_length` (hex bytes verbatim, or a
//! number in its shortest encoding), `raw: {topic: "00 03 61 ff 62"}` (a
//! field's bytes, by the names `decode` shows; `topic_filter[1]` is the
//! second), `append` and `truncate`.
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
//! Unknown keys, keys that do not belong to the packet's type or version and
//! values of the wrong kind are errors that name the key and, in YAML and
//! JSON text, the line and column of the key or value.
//!
//! # Templates
//!
//! A scenario's `send` step is read as a [`Template`]: the same fields, but a
//! value may be a capture (`$m`, see [`is_capture`]) that an earlier `expect`
//! fills in at run time, and the packet is checked for every version the step
//! runs under. The fields are kept as written, for the engine to fill in.

use std::fmt;

use mqtt_codec::{Overrides, Packet, PacketType, Protocol};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

mod build;
mod properties;
mod reader;
mod tee;
mod to_json;
mod values;
pub mod vocab;

pub use properties::property_from_json;
pub(crate) use properties::PropertyNamesValue;
pub(crate) use reader::with_hint;
pub use reader::Allow;
use reader::{FieldSet, Key, KeySeed, HINT};
pub use to_json::{binary_json, packet_to_json, properties_json, reason_name};
pub use values::is_capture;

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
    /// What to do about it, where the reader can tell.
    pub hint: Option<String>,
}

impl Error {
    fn new(message: impl Into<String>) -> Error {
        let (message, hint) = split_hint(&message.into());
        Error {
            message,
            location: None,
            hint,
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
        let (message, hint) = split_hint(&message);
        Error {
            message,
            location,
            hint,
        }
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
        let (message, hint) = split_hint(&message);
        Error {
            message,
            location,
            hint,
        }
    }
}

/// A message as raised inside a visitor, and its hint (after [`HINT`]).
fn split_hint(text: &str) -> (String, Option<String>) {
    match text.split_once(HINT) {
        Some((message, hint)) => (message.to_string(), Some(hint.to_string())),
        None => (text.to_string(), None),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
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

/// Reads one packet mapping.
struct PacketVisitor {
    protocol: Protocol,
}

impl<'de> Visitor<'de> for PacketVisitor {
    type Value = Described;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a packet: a mapping with a `type` such as PUBLISH and its fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Described, A::Error> {
        let mut set: Option<FieldSet> = None;
        // Keys before `type`: their kind depends on the type, so they are read
        // as they are and checked once it is known.
        let mut early: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed { set: set.as_ref() })? {
            match (key, set.as_mut()) {
                (Key::Type, _) => {
                    let ty = map.next_value::<values::TypeValue>()?.0;
                    let mut s = FieldSet::new(ty, &[self.protocol], false, Allow::PACKET);
                    for (k, v) in early.drain(..) {
                        s.read_value(&k, &v).map_err(de::Error::custom)?;
                    }
                    set = Some(s);
                }
                (Key::Field(f), Some(s)) => s.read(f, f.name.to_string(), &mut map)?,
                (Key::Field(_), None) => {
                    return Err(de::Error::custom("internal error: a field before its type"))
                }
                (Key::Early(k), _) => {
                    if early.iter().any(|(e, _)| *e == k) {
                        return Err(de::Error::custom(format!("`{k}` is given twice")));
                    }
                    early.push((k, map.next_value()?));
                }
            }
        }
        let set = set.ok_or_else(|| {
            de::Error::custom("missing `type`: say which packet this is, e.g. `type: PUBLISH`")
        })?;
        let mut built = set.build().map_err(de::Error::custom)?;
        built
            .pop()
            .ok_or_else(|| de::Error::custom("internal error: no version to build the packet in"))
    }
}

/// A packet template of a scenario step: its fields read one by one while
/// the parser points at them, checked for every version the step runs
/// under, and kept as written.
#[derive(Debug, Clone)]
pub struct Template {
    set: FieldSet,
}

impl Template {
    /// A `ty` packet for `protocols`, taking the keys `allow` lets through.
    pub fn new(ty: PacketType, protocols: &[Protocol], allow: Allow) -> Template {
        Template {
            set: FieldSet::new(ty, protocols, true, allow),
        }
    }

    /// The type of the packet.
    pub fn packet_type(&self) -> PacketType {
        self.set.ty
    }

    /// The field `key` names, if it may be given here; call it while the
    /// parser points at the key.
    pub fn check_key(&self, key: &str) -> Result<&'static vocab::Field, String> {
        self.set.check_key(key)
    }

    /// Reads the value of `field` (written as `key`) from the map.
    pub fn read<'de, A: MapAccess<'de>>(
        &mut self,
        field: &'static vocab::Field,
        key: String,
        map: &mut A,
    ) -> Result<(), A::Error> {
        self.set.read(field, key, map)
    }

    /// Checks `key` and its value, already read (no position then).
    pub fn read_value(&mut self, key: &str, value: &Value) -> Result<(), String> {
        self.set.read_value(key, value)
    }

    /// Checks the fields together for each version; the fields as written.
    pub fn finish(self) -> Result<Map<String, Value>, String> {
        self.set.build()?;
        Ok(self.set.json)
    }
}

#[cfg(test)]
mod tests;
