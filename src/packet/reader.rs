//! The field reader: each key of a packet mapping looked up in the
//! [`vocab`] table, and its value read by the kind the table gives it, both
//! while the parser points at them, so that an error carries the line and
//! column of the key or value it is about.
//!
//! The same reader serves `encode` (a packet in one version), the engine at
//! run time (a scenario's fields with captures filled in) and the scenario
//! parser, which reads a `send` step as a *template*: a value may be a capture
//! (`$m`) known only at run time, and the step is checked for every version
//! it runs under.

use bytes::Bytes;
use mqtt_codec::{PacketType, Properties, Protocol, QoS};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

use super::properties::PropertiesSeed;
use super::tee::Tee;
use super::values::*;
use super::vocab::{self, Field, Kind, Role};
use crate::suggest;

/// Marks the start of a hint in an error message raised inside a visitor
/// (serde carries only a message); [`super::Error`] splits it off.
pub(crate) const HINT: char = '\u{1f}';

/// A message with what to do about it.
pub(crate) fn with_hint(message: impl fmt::Display, hint: impl fmt::Display) -> String {
    format!("{message}{HINT}{hint}")
}

/// Which keys a reader takes, and how to say so.
#[derive(Debug, Clone, Copy)]
pub struct Allow {
    /// The deliberate-fault keys are allowed.
    pub faults: bool,
    /// Fields of the packet that are not allowed here.
    pub except: &'static [&'static str],
    /// Where the keys are, for messages: "a client's settings".
    pub what: &'static str,
    /// Keys the caller reads itself, for messages and hints.
    pub extra: &'static [&'static str],
}

impl Allow {
    /// Every field that a send may set, and the faults: `encode`, `send` steps.
    pub const PACKET: Allow = Allow {
        faults: true,
        except: &[],
        what: "",
        extra: &[],
    };

    fn takes(&self, f: &Field) -> bool {
        f.send && (self.faults || f.role != Role::Fault) && !self.except.contains(&f.name)
    }

    /// The names it takes for a `ty`, canonical ones, in wire order.
    pub fn names(&self, ty: PacketType) -> Vec<&'static str> {
        let fields = vocab::fields(ty).iter().chain(vocab::FAULTS);
        let own = fields.filter(|f| self.takes(f)).map(|f| f.name);
        own.chain(self.extra.iter().copied()).collect()
    }

    /// "a PUBLISH takes dup, qos, … (and on any packet: first_byte, …)".
    pub fn describe(&self, ty: PacketType) -> String {
        let own: Vec<&str> = vocab::fields(ty)
            .iter()
            .filter(|f| self.takes(f))
            .map(|f| f.name)
            .chain(self.extra.iter().copied())
            .collect();
        let own = if own.is_empty() {
            "no fields".to_string()
        } else {
            own.join(", ")
        };
        if self.what.is_empty() {
            let faults: Vec<&str> = vocab::FAULTS.iter().map(|f| f.name).collect();
            format!(
                "a {ty} takes {own} (and on any packet: {})",
                faults.join(", ")
            )
        } else {
            format!("{} takes {own}", self.what)
        }
    }
}

/// The field `key` names in a `ty` packet, if it may be given here.
pub(crate) fn check_key(
    ty: PacketType,
    key: &str,
    allow: &Allow,
    seen: &[&'static Field],
) -> Result<&'static Field, String> {
    let hint = || suggest::hint(key, allow.names(ty));
    let Some(f) = vocab::lookup(ty, key) else {
        return Err(if vocab::all_keys().contains(&key) {
            format!(
                "`{key}` does not apply to {ty}{}; {}",
                hint(),
                allow.describe(ty)
            )
        } else {
            format!("unknown field `{key}`{}; {}", hint(), allow.describe(ty))
        });
    };
    if f.role == Role::Matcher {
        return Err(format!(
            "`{key}` belongs to expect steps (it says what the packet must not have); {}",
            allow.describe(ty)
        ));
    }
    if !allow.takes(f) {
        let why = if f.role == Role::Fault {
            with_hint(
                format!(
                    "`{key}` writes a deliberately bad packet, which {} cannot; {}",
                    allow.what,
                    allow.describe(ty)
                ),
                "send such a packet with a `send` step",
            )
        } else {
            format!(
                "`{key}` cannot be given in {}; {}",
                allow.what,
                allow.describe(ty)
            )
        };
        return Err(why);
    }
    if let Some(before) = seen.iter().find(|s| s.name == f.name) {
        return Err(format!(
            "`{key}` is given twice (as `{}` before)",
            before.name
        ));
    }
    Ok(f)
}

/// Refuses a field written as `key` in a version that does not have it.
pub(crate) fn check_versions(
    f: &Field,
    key: &str,
    protocols: &[Protocol],
    template: bool,
) -> Result<(), String> {
    let Some(p) = protocols.iter().find(|p| !f.versions.contains(**p)) else {
        return Ok(());
    };
    let message = format!("`{key}` exists only in MQTT {}, not in {p}", f.versions);
    let hint = if template {
        format!(
            "run the step only where it exists, e.g. `only: \"{}\"`",
            f.versions
                .protocols()
                .last()
                .map_or("5.0", Protocol::as_str)
        )
    } else {
        // Whether the bytes have a place in this version's packet (the
        // subscription options byte does, a 3.1.1 PUBACK's reason code does
        // not) is the encoder's to say; both ways of writing them are named.
        "to write such bytes anyway, replace a field's bytes with `raw` or add them with `append`"
            .to_string()
    };
    Err(with_hint(message, hint))
}

/// A value as read, by the kind of its field. `Deferred` is a capture of a
/// template: its value is known only at run time.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    Deferred,
    Protocol(Protocol),
    Bool(bool),
    U16(u16),
    Qos(QoS),
    Text(String),
    Binary(Bytes),
    Reason(ReasonValue),
    ReasonName(String),
    /// `None`: a capture in the list.
    Reasons(Vec<Option<ReasonValue>>),
    ReasonNames(Vec<String>),
    Properties(Properties),
    Will(WillSpec),
    Subscriptions(Vec<FilterSpec>),
    Filters(Vec<String>),
    Byte(u8),
    Bytes(Vec<u8>),
    Raw(Vec<(String, Vec<u8>)>),
    Count(usize),
}

/// What the value seeds need to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cx<'a> {
    pub(crate) template: bool,
    /// The versions the packet is read for, where already known (a CONNECT's
    /// is known once its `protocol` is read): sub-keys are checked against them.
    pub(crate) known: Option<&'a [Protocol]>,
}

/// Reads the value of one field.
#[derive(Clone, Copy)]
pub(crate) struct FieldSeed<'a> {
    pub(crate) field: &'static Field,
    pub(crate) cx: Cx<'a>,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Parsed;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        // Text takes any string, a capture included: there is nothing to defer.
        if !self.cx.template || self.field.kind == Kind::Text {
            return Bare(self).deserialize(d);
        }
        let text = matches!(self.field.kind, Kind::Hex | Kind::ReasonName | Kind::Type);
        let m = Maybe {
            seed: Bare(self),
            template: true,
            text,
        };
        Ok(m.deserialize(d)?.unwrap_or(Parsed::Deferred))
    }
}

/// A field's value itself (not a capture).
#[derive(Clone, Copy)]
struct Bare<'a>(FieldSeed<'a>);

impl<'de> DeserializeSeed<'de> for Bare<'_> {
    type Value = Parsed;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        let FieldSeed { field, cx } = self.0;
        let t = cx.template;
        Ok(match field.kind {
            Kind::Protocol => Parsed::Protocol(ProtocolValue::deserialize(d)?.0),
            Kind::Bool => Parsed::Bool(bool::deserialize(d)?),
            Kind::U16 => Parsed::U16(u16::deserialize(d)?),
            Kind::Qos => Parsed::Qos(QosValue::deserialize(d)?.0),
            Kind::Text => Parsed::Text(String::deserialize(d)?),
            Kind::Binary => Parsed::Binary(BinaryValue::deserialize(d)?.0),
            Kind::ReasonCode => Parsed::Reason(ReasonValue::deserialize(d)?),
            Kind::ReasonName => Parsed::ReasonName(ReasonName::deserialize(d)?.0),
            Kind::ReasonCodes => Parsed::Reasons(d.deserialize_seq(ListOf(maybe(t)))?),
            Kind::ReasonNames => {
                let names: Vec<ReasonName> = Vec::deserialize(d)?;
                Parsed::ReasonNames(names.into_iter().map(|n| n.0).collect())
            }
            Kind::Properties => Parsed::Properties(PropertiesSeed { template: t }.deserialize(d)?),
            Kind::Will => Parsed::Will(d.deserialize_map(WillSeed { field, cx })?),
            Kind::Subscriptions => {
                Parsed::Subscriptions(d.deserialize_seq(ListOf(SubscriptionSeed { field, cx }))?)
            }
            Kind::TopicFilters => {
                let list: Vec<TopicFilterValue> = Vec::deserialize(d)?;
                Parsed::Filters(list.into_iter().map(|f| f.0).collect())
            }
            Kind::Byte => Parsed::Byte(ByteValue::deserialize(d)?.0),
            Kind::Nibble => Parsed::Byte(FlagsValue::deserialize(d)?.0),
            Kind::RemainingLength => Parsed::Bytes(RemainingLengthValue::deserialize(d)?.0),
            Kind::RawFields => Parsed::Raw(RawValue::deserialize(d)?.0),
            Kind::Hex => Parsed::Bytes(HexValue::deserialize(d)?.0),
            Kind::Count => Parsed::Count(usize::deserialize(d)?),
            // `type` is read by the packet's key reader, `no_properties` only
            // by expect steps, Retain Handling only inside a subscription.
            Kind::Type | Kind::PropertyNames | Kind::RetainHandling => {
                return Err(de::Error::custom(unread(field.name, "a packet")))
            }
        })
    }
}

/// A list, each element read with the seed.
struct ListOf<S>(S);

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for ListOf<S> {
    type Value = Vec<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.0)? {
            out.push(v);
        }
        Ok(out)
    }
}

/// The key of a mapping inside a field (`will`, a subscription), looked up
/// in the field's `sub` table.
struct SubKeySeed<'a> {
    field: &'static Field,
    what: &'static str,
    seen: &'a [&'static Field],
    cx: Cx<'a>,
}

impl<'de> DeserializeSeed<'de> for SubKeySeed<'_> {
    type Value = &'static Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for SubKeySeed<'_> {
    type Value = &'static Field;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a key of {}", self.what)
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let names = self.field.sub.iter().map(|f| f.name);
        let Some(f) = vocab::lookup_sub(self.field.sub, key) else {
            return Err(E::custom(format!(
                "unknown field `{key}` in {}{}; it takes {}",
                self.what,
                suggest::hint(key, names.clone()),
                names.collect::<Vec<_>>().join(", ")
            )));
        };
        if self.seen.iter().any(|s| s.name == f.name) {
            return Err(E::custom(format!("`{key}` is given twice")));
        }
        if let Some(known) = self.cx.known {
            check_versions(f, key, known, self.cx.template).map_err(E::custom)?;
        }
        Ok(f)
    }
}

/// A Will Message: `{topic: …, payload: …, qos: …, retain: …, properties: […]}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct WillSpec {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) properties: Properties,
    /// The keys it was written with, for the version checks of a CONNECT
    /// whose version was not known while they were read.
    pub(crate) keys: Vec<&'static Field>,
}

struct WillSeed<'a> {
    field: &'static Field,
    cx: Cx<'a>,
}

impl<'de> Visitor<'de> for WillSeed<'_> {
    type Value = WillSpec;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a will: {topic: …, payload: …, qos: …, retain: …}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WillSpec, A::Error> {
        let mut w = WillSpec::default();
        let mut topic = None;
        let t = self.cx.template;
        loop {
            let seed = SubKeySeed {
                field: self.field,
                what: "a will",
                seen: &w.keys,
                cx: self.cx,
            };
            let Some(f) = map.next_key_seed(seed)? else {
                break;
            };
            match f.name {
                "topic" => topic = Some(map.next_value::<String>()?),
                "payload" => w.payload = map.next_value::<BinaryValue>()?.0,
                "qos" => {
                    let q = map.next_value_seed(maybe::<QosValue>(t))?;
                    w.qos = q.map_or(QoS::AtMostOnce, |q| q.0);
                }
                "retain" => w.retain = map.next_value_seed(maybe::<bool>(t))?.unwrap_or(false),
                "properties" => {
                    w.properties = map.next_value_seed(PropertiesSeed { template: t })?
                }
                other => return Err(de::Error::custom(unread(other, "a will"))),
            }
            w.keys.push(f);
        }
        w.topic = topic.ok_or_else(|| {
            de::Error::custom("missing `topic`: a will always has a topic, e.g. {topic: status/c1}")
        })?;
        Ok(w)
    }
}

/// A table key that no arm reads: the table and the reader disagree (a test
/// of the module keeps this from happening).
fn unread(key: &str, what: &str) -> String {
    format!(
        "internal error: `{key}` of {what} is in the field table but the reader does not read it"
    )
}

/// A subscription: `a/b` or `{filter: a/b, qos: 1, …}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterSpec {
    pub(crate) filter: String,
    pub(crate) qos: QoS,
    pub(crate) no_local: bool,
    pub(crate) retain_as_published: bool,
    pub(crate) retain_handling: u8,
}

#[derive(Clone, Copy)]
struct SubscriptionSeed<'a> {
    field: &'static Field,
    cx: Cx<'a>,
}

impl<'de> DeserializeSeed<'de> for SubscriptionSeed<'_> {
    type Value = FilterSpec;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FilterSpec, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SubscriptionSeed<'_> {
    type Value = FilterSpec;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a topic filter, or {filter: …, qos: …}")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<FilterSpec, E> {
        Ok(FilterSpec {
            filter: s.to_string(),
            ..FilterSpec::default()
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FilterSpec, A::Error> {
        let mut spec = FilterSpec::default();
        let mut filter = None;
        let mut seen: Vec<&'static Field> = Vec::new();
        let t = self.cx.template;
        loop {
            let seed = SubKeySeed {
                field: self.field,
                what: "a subscription",
                seen: &seen,
                cx: self.cx,
            };
            let Some(f) = map.next_key_seed(seed)? else {
                break;
            };
            let flag = |map: &mut A| {
                map.next_value_seed(maybe::<bool>(t))
                    .map(|b| b.unwrap_or(false))
            };
            match f.name {
                "filter" => filter = Some(map.next_value::<String>()?),
                "qos" => {
                    let q = map.next_value_seed(maybe::<QosValue>(t))?;
                    spec.qos = q.map_or(QoS::AtMostOnce, |q| q.0);
                }
                "no_local" => spec.no_local = flag(&mut map)?,
                "retain_as_published" => spec.retain_as_published = flag(&mut map)?,
                "retain_handling" => {
                    let r = map.next_value_seed(maybe::<RetainHandlingValue>(t))?;
                    spec.retain_handling = r.map_or(0, |r| r.0);
                }
                other => return Err(de::Error::custom(unread(other, "a subscription"))),
            }
            seen.push(f);
        }
        spec.filter = filter.ok_or_else(|| {
            de::Error::custom("missing `filter`: a subscription is {filter: a/b, qos: 1}")
        })?;
        Ok(spec)
    }
}

/// The fields of one packet mapping as read, before they are checked
/// together and built (see `build.rs`).
#[derive(Debug, Clone)]
pub(crate) struct FieldSet {
    pub(crate) ty: PacketType,
    pub(crate) template: bool,
    /// The versions it is read for: the stream's, or those a step runs under.
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) allow: Allow,
    pub(crate) values: Vec<(&'static Field, Parsed)>,
    /// The fields as written (keys as written), in order.
    pub(crate) json: Map<String, Value>,
}

impl FieldSet {
    pub(crate) fn new(
        ty: PacketType,
        protocols: &[Protocol],
        template: bool,
        allow: Allow,
    ) -> FieldSet {
        FieldSet {
            ty,
            template,
            protocols: protocols.to_vec(),
            allow,
            values: Vec::new(),
            json: Map::new(),
        }
    }

    /// The versions that keys are checked against as they are read; `None`
    /// for a CONNECT before its `protocol` (checked when it is built).
    pub(crate) fn known(&self) -> Option<&[Protocol]> {
        if self.ty != PacketType::Connect {
            return Some(&self.protocols);
        }
        match self.get("protocol") {
            Some(Parsed::Protocol(p)) => Some(std::slice::from_ref(p)),
            _ => None,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Parsed> {
        self.values
            .iter()
            .find(|(f, _)| f.name == name)
            .map(|(_, v)| v)
    }

    fn seen(&self) -> Vec<&'static Field> {
        self.values.iter().map(|(f, _)| *f).collect()
    }

    /// The field `key` names, if it may be given here, now.
    pub(crate) fn check_key(&self, key: &str) -> Result<&'static Field, String> {
        let f = check_key(self.ty, key, &self.allow, &self.seen())?;
        if let Some(known) = self.known() {
            check_versions(f, key, known, self.template)?;
        }
        Ok(f)
    }

    /// Reads the value of `f` (written as `key`) from the map.
    pub(crate) fn read<'de, A: MapAccess<'de>>(
        &mut self,
        f: &'static Field,
        key: String,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let cx = Cx {
            template: self.template,
            known: self.known(),
        };
        let (v, json) = map.next_value_seed(Tee(FieldSeed { field: f, cx }))?;
        self.values.push((f, v));
        self.json.insert(key, json);
        Ok(())
    }

    /// Checks `key` and reads its value from JSON already read (a key that
    /// came before the packet's type was known).
    pub(crate) fn read_value(&mut self, key: &str, value: &Value) -> Result<(), String> {
        let f = self.check_key(key)?;
        let cx = Cx {
            template: self.template,
            known: self.known(),
        };
        let v = FieldSeed { field: f, cx }
            .deserialize(value)
            .map_err(|e| format!("{key}: {e}"))?;
        self.values.push((f, v));
        self.json.insert(f.name.to_string(), value.clone());
        Ok(())
    }
}

/// Reads a key of a packet mapping: `type`, or (the type known) a field of
/// it; before the type, any key of the vocabulary, read once the type is known.
pub(crate) struct KeySeed<'a> {
    pub(crate) set: Option<&'a FieldSet>,
}

pub(crate) enum Key {
    Type,
    Field(&'static Field),
    /// A key before `type`: kept as written.
    Early(String),
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
        if s == vocab::TYPE.name {
            return match self.set {
                Some(_) => Err(E::custom("`type` is given twice")),
                None => Ok(Key::Type),
            };
        }
        match self.set {
            Some(set) => set.check_key(s).map(Key::Field).map_err(E::custom),
            None if vocab::all_keys().contains(&s) => Ok(Key::Early(s.to_string())),
            None => {
                let all = vocab::all_keys();
                Err(E::custom(format!(
                    "unknown field `{s}`{}; the fields are: {}",
                    suggest::hint(s, all.iter().copied()),
                    all.join(", ")
                )))
            }
        }
    }
}
