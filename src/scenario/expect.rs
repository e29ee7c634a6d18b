//! What an expect step matches: keys checked against the [`vocab`] table
//! (a field that `decode --json` prints for the type, in a version the step
//! runs under, or `no_properties`) while the parser points at them; the
//! outcomes of `expect_one_of`; how a connection is expected to close.
//!
//! Values are kept as written: the matcher's language (`$m`, `{not: X}`) is
//! the engine's.

use std::fmt;

use mqtt_codec::{PacketType, Protocol};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::values::{names_of, CheckedKey, OneOrMany, TypeSeed};
use super::{Choice, CloseSpec, Matcher};
use crate::packet::vocab::{self, Role};
use crate::packet::with_hint;
use crate::packet::PropertyNamesValue;
use crate::suggest;

/// The expect key listing properties that must be absent.
pub const NO_PROPERTIES: &str = vocab::NO_PROPERTIES;

/// Whether an expect of a `ty` running under `protocols` may match `key`.
/// `with_timeout`: the key is in a step, which may also have `timeout`.
pub(crate) fn expect_key(
    ty: PacketType,
    key: &str,
    protocols: &[Protocol],
    with_timeout: bool,
) -> Result<(), String> {
    let fields: Vec<&vocab::Field> = vocab::fields(ty).iter().filter(|f| f.expect).collect();
    if let Some(f) = fields.iter().find(|f| f.is_named(key)) {
        if !protocols.is_empty() && !f.exists_in_any(protocols) {
            return Err(with_hint(
                format!(
                    "`{key}` of a {ty} exists only in MQTT {}, and this step runs under {}",
                    f.versions,
                    names_of(protocols)
                ),
                "leave it out: no packet this step can receive has it",
            ));
        }
        return Ok(());
    }
    let takes = if fields.is_empty() {
        "no fields".to_string()
    } else {
        let named: Vec<String> = fields
            .iter()
            .map(|f| match f.aliases {
                [] => f.name.to_string(),
                a => format!("{} (or {})", f.name, a.join(", ")),
            })
            .collect();
        named.join(", ")
    };
    let names = fields
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
        .chain(with_timeout.then_some("timeout"));
    let fault = vocab::lookup(ty, key).filter(|f| f.role == Role::Fault);
    let what = if fault.is_some() {
        format!("`{key}` writes a deliberately bad packet and matches nothing; an expected {ty}")
    } else {
        format!(
            "unknown field `{key}` for an expected {ty}{}; a {ty}",
            suggest::hint(key, names)
        )
    };
    Err(format!(
        "{what} has {takes}{}",
        if with_timeout {
            " (and the step may have `timeout`)"
        } else {
            ""
        }
    ))
}

/// The value of an expect field: for `no_properties`, property names, each
/// checked where it is written; anything else as written.
pub(crate) fn expect_value<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: &str,
) -> Result<Value, A::Error> {
    if key == NO_PROPERTIES {
        return Ok(Value::from(map.next_value::<PropertyNamesValue>()?.0));
    }
    if key == vocab::MAX_SIZE {
        return Ok(Value::from(map.next_value::<u32>()?));
    }
    map.next_value()
}

/// The fields of an expected CONNACK in a `connect` step (`connack: {…}`).
pub(crate) struct ConnackSeed<'a> {
    pub(crate) protocols: &'a [Protocol],
}

impl<'de> DeserializeSeed<'de> for ConnackSeed<'_> {
    type Value = Matcher;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Matcher, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ConnackSeed<'_> {
    type Value = Matcher;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the fields the CONNACK must have, e.g. {session_present: true}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Matcher, A::Error> {
        let ty = PacketType::ConnAck;
        let mut fields = Map::new();
        let p = self.protocols;
        while let Some(key) =
            map.next_key_seed(CheckedKey(move |k: &str| expect_key(ty, k, p, false)))?
        {
            let v = expect_value(&mut map, &key)?;
            if fields.insert(key.clone(), v).is_some() {
                return Err(de::Error::custom(format!("`{key}` is given twice")));
            }
        }
        Ok(Matcher { ty, fields })
    }
}

/// The outcomes of an `expect_one_of`.
pub(crate) struct ChoicesSeed<'a> {
    pub(crate) protocols: &'a [Protocol],
}

impl<'de> DeserializeSeed<'de> for ChoicesSeed<'_> {
    type Value = Vec<Choice>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Choice>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChoicesSeed<'_> {
    type Value = Vec<Choice>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of outcomes: [{expect: CONNACK, code: 0x84}, {close: true}]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Choice>, A::Error> {
        let mut out = Vec::new();
        while let Some(c) = seq.next_element_seed(ChoiceSeed {
            protocols: self.protocols,
            allow_close: true,
        })? {
            out.push(c);
        }
        if out.is_empty() {
            return Err(de::Error::custom("expect_one_of lists no outcomes"));
        }
        Ok(out)
    }
}

/// The packets of an `expect_unordered`.
pub(crate) struct MatchersSeed<'a> {
    pub(crate) protocols: &'a [Protocol],
}

impl<'de> DeserializeSeed<'de> for MatchersSeed<'_> {
    type Value = Vec<Matcher>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Matcher>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MatchersSeed<'_> {
    type Value = Vec<Matcher>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of expected packets: [{expect: PUBLISH, …}, …]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Matcher>, A::Error> {
        let mut out = Vec::new();
        let seed = || ChoiceSeed {
            protocols: self.protocols,
            allow_close: false,
        };
        while let Some(c) = seq.next_element_seed(seed())? {
            match c {
                Choice::Packet(m) => out.push(m),
                Choice::Close(_) | Choice::Skip(_) | Choice::SkipOn(..) => {
                    return Err(de::Error::custom("expect_unordered lists packets only"))
                }
            }
        }
        Ok(out)
    }
}

/// One outcome: `{expect: TYPE, …fields}` or (`allow_close`) `{close: …}`.
struct ChoiceSeed<'a> {
    protocols: &'a [Protocol],
    allow_close: bool,
}

impl<'de> DeserializeSeed<'de> for ChoiceSeed<'_> {
    type Value = Choice;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Choice, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChoiceSeed<'_> {
    type Value = Choice;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.allow_close {
            f.write_str("an outcome: `{expect: TYPE, …fields}`, `{close: true}` / `{close: {disconnect: [0x81]}}`, `{skip: \"reason\"}` or `{expect: TYPE, …, skip: \"reason\"}`")
        } else {
            f.write_str("an expected packet: `{expect: TYPE, …fields}`")
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Choice, A::Error> {
        let mut ty: Option<PacketType> = None;
        let mut close = None;
        let mut skip: Option<String> = None;
        let mut fields = Map::new();
        let (allow_close, protocols) = (self.allow_close, self.protocols);
        loop {
            let (t, closing) = (ty, close.is_some());
            let Some(key) = map.next_key_seed(CheckedKey(move |k: &str| match k {
                "expect" => Ok(()),
                "close" | "expect_close" | "skip" if allow_close => Ok(()),
                _ => match t {
                    Some(t) => expect_key(t, k, protocols, false),
                    None if closing => Err(format!(
                        "unknown key `{k}` in a close outcome; it takes only `close`"
                    )),
                    None => Ok(()),
                },
            }))?
            else {
                break;
            };
            match key.as_str() {
                "expect" if ty.is_some() => {
                    return Err(de::Error::custom("`expect` is given twice"))
                }
                "expect" => ty = Some(map.next_value_seed(TypeSeed)?),
                "close" | "expect_close" if allow_close => {
                    close = Some(map.next_value::<CloseValue>()?.0);
                }
                "skip" if allow_close => {
                    let why: String = map.next_value()?;
                    if why.trim().is_empty() {
                        return Err(de::Error::custom(
                            "a skip outcome says why the case does not apply: `skip: \"…\"`",
                        ));
                    }
                    skip = Some(why);
                }
                _ => {
                    let v = expect_value(&mut map, &key)?;
                    if fields.insert(key.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("`{key}` is given twice")));
                    }
                }
            }
        }
        if let Some(why) = skip {
            return match (ty, close) {
                (None, None) if fields.is_empty() => Ok(Choice::Skip(why)),
                (Some(ty), None) => {
                    for k in fields.keys() {
                        expect_key(ty, k, protocols, false).map_err(de::Error::custom)?;
                    }
                    Ok(Choice::SkipOn(Matcher { ty, fields }, why))
                }
                _ => Err(de::Error::custom(
                    "a skip outcome is `skip: \"reason\"` alone, or a packet that ends the case as a skip: `{expect: TYPE, …, skip: \"reason\"}`",
                )),
            };
        }
        match (ty, close) {
            (Some(ty), None) => {
                // Keys written before `expect:` are checked now (at the mapping).
                for k in fields.keys() {
                    expect_key(ty, k, protocols, false).map_err(de::Error::custom)?;
                }
                Ok(Choice::Packet(Matcher { ty, fields }))
            }
            (None, Some(c)) if fields.is_empty() => Ok(Choice::Close(c)),
            (None, Some(_)) => Err(de::Error::custom(
                "a close outcome takes only `close`; packet fields belong to `{expect: TYPE, …}`",
            )),
            (Some(_), Some(_)) => Err(de::Error::custom(
                "an outcome is either a packet (`expect`) or a close (`close`), not both",
            )),
            (None, None) => Err(de::Error::custom(if self.allow_close {
                "an outcome needs `expect: TYPE` or `close: true`"
            } else {
                "an expected packet needs `expect: TYPE`"
            })),
        }
    }
}

/// `true`, `{}` or `{disconnect: [0x81, 0x82]}`.
pub(crate) struct CloseValue(pub(crate) CloseSpec);

impl<'de> Deserialize<'de> for CloseValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CloseValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`true` or `{disconnect: [reason codes]}`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<CloseValue, E> {
                if v {
                    Ok(CloseValue(CloseSpec::default()))
                } else {
                    Err(E::custom(
                        "`false` is not an expectation; leave the step out instead",
                    ))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<CloseValue, E> {
                Ok(CloseValue(CloseSpec::default()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CloseValue, A::Error> {
                #[derive(Deserialize)]
                #[serde(field_identifier, rename_all = "snake_case")]
                enum K {
                    Disconnect,
                }
                let mut spec = CloseSpec::default();
                while let Some(K::Disconnect) = map.next_key()? {
                    let codes: OneOrMany<u8> = map.next_value()?;
                    spec.disconnect = codes.0;
                }
                Ok(CloseValue(spec))
            }
        }
        d.deserialize_any(V)
    }
}
