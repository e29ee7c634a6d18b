//! What a client does in a step: `connect`, `disconnect`, `drop`, or a
//! mapping with one action key. A `send` step's fields are read by the
//! packet reader as a [`Template`] for the versions the step runs under;
//! an `expect` step's keys are checked against the field table.

use std::fmt;
use std::marker::PhantomData;

use mqtt_codec::{PacketType, Protocol};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::expect::{
    expect_key, expect_value, ChoicesSeed, CloseValue, ConnackSeed, MatchersSeed, NO_PROPERTIES,
};
use super::values::{CheckedKey, CheckedStr, DurationValue, TypeSeed};
use super::{Action, Matcher};
use crate::packet::{vocab, Allow, Template};
use crate::{hex, suggest};

/// The action keys of a client step.
pub(crate) const ACTIONS: &[&str] = &[
    "send",
    "send_text",
    "send_hex",
    "expect",
    "expect_one_of",
    "expect_unordered",
    "expect_close",
    "expect_silence",
    "connect",
    "disconnect",
];

/// What a client does in a step: `connect`, `disconnect`, `drop`, or a
/// mapping with one action key.
pub(crate) struct ClientActionSeed<'a> {
    pub(crate) client: String,
    /// The versions the step runs under.
    pub(crate) protocols: &'a [Protocol],
}

impl<'de> DeserializeSeed<'de> for ClientActionSeed<'_> {
    type Value = Action;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Action, D::Error> {
        d.deserialize_any(self)
    }
}

/// The action of a step being read, and what it has read so far.
enum Doing {
    Nothing,
    /// `send`, or (true) `send_text`.
    Send(Template, bool),
    Expect(Matcher),
    /// Any other action, read whole.
    Other(&'static str, Action),
}

impl Doing {
    fn name(&self) -> Option<&'static str> {
        match self {
            Doing::Nothing => None,
            Doing::Send(_, false) => Some("send"),
            Doing::Send(_, true) => Some("send_text"),
            Doing::Expect(_) => Some("expect"),
            Doing::Other(name, _) => Some(name),
        }
    }
}

/// A key of a client step's mapping, given what the step does so far.
fn step_key_ok(k: &str, doing: &Doing, protocols: &[Protocol]) -> Result<(), String> {
    if ACTIONS.contains(&k) {
        return match doing.name() {
            Some(first) => Err(format!(
                "a step does one thing: it has both `{first}` and `{k}`; split it into two steps"
            )),
            None => Ok(()),
        };
    }
    match doing {
        // A field before the action: checked once the action is known.
        Doing::Nothing
            if k == "timeout"
                || k == NO_PROPERTIES
                || k == vocab::MAX_SIZE
                || vocab::all_keys().contains(&k) =>
        {
            Ok(())
        }
        Doing::Nothing => Err(format!(
            "unknown action `{k}`{}; a step's action is one of: {}",
            suggest::hint(k, ACTIONS.iter().copied()),
            ACTIONS.join(", ")
        )),
        Doing::Send(t, _) => t.check_key(k).map(|_| ()).map_err(|e| {
            if k == "timeout" {
                format!("`timeout` bounds an expect step; a send does not wait ({e})")
            } else {
                e
            }
        }),
        Doing::Expect(_) if k == "timeout" => Ok(()),
        Doing::Expect(m) => expect_key(m.ty, k, protocols, true),
        Doing::Other(other, _) if k == "timeout" && other.starts_with("expect") => Ok(()),
        Doing::Other(other, _) => Err(format!(
            "unknown key `{k}` in a `{other}` step{}; it takes only `{other}`{}",
            suggest::hint(k, ACTIONS.iter().copied().chain(["timeout"])),
            if other.starts_with("expect") {
                " and `timeout`"
            } else {
                ""
            }
        )),
    }
}

impl<'de> Visitor<'de> for ClientActionSeed<'_> {
    type Value = Action;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "`connect`, `disconnect`, `drop`, or a mapping with one of: {}",
            ACTIONS.join(", ")
        )
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Action, E> {
        let client = self.client;
        match s {
            "connect" => Ok(Action::Connect {
                client,
                fields: Map::new(),
                connack: None,
                expect_connack: true,
            }),
            "disconnect" => Ok(Action::Disconnect {
                client,
                fields: Map::new(),
            }),
            "drop" => Ok(Action::Drop { client }),
            other => Err(E::custom(format!(
                "unknown action `{other}`{}; a bare action is `connect`, `disconnect` or `drop`, others are mappings such as `{{send: PINGREQ}}`",
                suggest::hint(other, ["connect", "disconnect", "drop"])
            ))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
        let (client, protocols) = (self.client, self.protocols);
        let mut doing = Doing::Nothing;
        // Keys written before the action key, checked once it is read.
        let mut early: Vec<(String, Value)> = Vec::new();
        let mut timeout = None;
        loop {
            let d = &doing;
            let Some(key) =
                map.next_key_seed(CheckedKey(move |k: &str| step_key_ok(k, d, protocols)))?
            else {
                break;
            };
            if let Some(&action) = ACTIONS.iter().find(|a| **a == key) {
                doing = read_action(action, &client, protocols, &mut map)?;
                for (k, v) in early.drain(..) {
                    take_early(&mut doing, &k, v, protocols).map_err(de::Error::custom)?;
                }
                continue;
            }
            match &mut doing {
                Doing::Send(t, _) => {
                    let f = t.check_key(&key).map_err(de::Error::custom)?;
                    t.read(f, f.name.to_string(), &mut map)?;
                }
                _ if key == "timeout" => timeout = Some(map.next_value::<DurationValue>()?.0),
                Doing::Expect(m) => {
                    let v = expect_value(&mut map, &key)?;
                    if m.fields.insert(key.clone(), v).is_some() {
                        return Err(de::Error::custom(format!("`{key}` is given twice")));
                    }
                }
                Doing::Nothing => {
                    let v: Value = map.next_value()?;
                    if early.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!("`{key}` is given twice")));
                    }
                    early.push((key, v));
                }
                // Refused at the key; the value is read so that the map stays whole.
                Doing::Other(..) => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        finish_action(doing, client, timeout)
    }
}

/// Reads the value of an action key.
fn read_action<'de, A: MapAccess<'de>>(
    action: &'static str,
    client: &str,
    protocols: &[Protocol],
    map: &mut A,
) -> Result<Doing, A::Error> {
    let client = client.to_string();
    let other = |a: Action| Ok(Doing::Other(action, a));
    match action {
        "send" | "send_text" => {
            let ty = map.next_value_seed(TypeSeed)?;
            let template = Template::new(ty, protocols, Allow::PACKET);
            Ok(Doing::Send(template, action == "send_text"))
        }
        "expect" => {
            let ty = map.next_value_seed(TypeSeed)?;
            Ok(Doing::Expect(Matcher {
                ty,
                fields: Map::new(),
            }))
        }
        "send_hex" => {
            let bytes = map.next_value_seed(CheckedStr(
                "bytes in hex, e.g. \"c0 00\"",
                |s: &str| hex::parse(s).map_err(|e| format!("send_hex: {e}")),
                PhantomData,
            ))?;
            other(Action::SendHex { client, bytes })
        }
        "expect_one_of" => other(Action::ExpectOneOf {
            client,
            choices: map.next_value_seed(ChoicesSeed { protocols })?,
            timeout: None,
        }),
        "expect_unordered" => other(Action::ExpectUnordered {
            client,
            matchers: map.next_value_seed(MatchersSeed { protocols })?,
            timeout: None,
        }),
        "expect_close" => other(Action::ExpectClose {
            client,
            close: map.next_value::<CloseValue>()?.0,
            timeout: None,
        }),
        "expect_silence" => other(Action::ExpectSilence {
            client,
            duration: map.next_value::<DurationValue>()?.0,
        }),
        "connect" => map
            .next_value_seed(ConnectSeed { client, protocols })
            .and_then(other),
        "disconnect" => {
            let fields = map.next_value_seed(FieldsSeed {
                ty: PacketType::Disconnect,
                protocols,
                allow: Allow::PACKET,
            })?;
            other(Action::Disconnect { client, fields })
        }
        unknown => Err(de::Error::custom(format!(
            "unknown action `{unknown}`; a step's action is one of: {}",
            ACTIONS.join(", ")
        ))),
    }
}

/// A key written before the action key, now that the action is known.
fn take_early(
    doing: &mut Doing,
    key: &str,
    v: Value,
    protocols: &[Protocol],
) -> Result<(), String> {
    match doing {
        Doing::Send(t, _) => t.read_value(key, &v),
        Doing::Expect(m) => {
            expect_key(m.ty, key, protocols, true)?;
            m.fields.insert(key.to_string(), v);
            Ok(())
        }
        Doing::Other(name, _) => Err(format!(
            "unknown key `{key}` in a `{name}` step; packet fields belong to `send` and `expect` steps"
        )),
        Doing::Nothing => Ok(()),
    }
}

/// The step's action, its fields checked together.
fn finish_action<E: de::Error>(
    doing: Doing,
    client: String,
    timeout: Option<std::time::Duration>,
) -> Result<Action, E> {
    match doing {
        Doing::Nothing => Err(E::custom(format!(
            "the step for `{client}` has no action; give one of: {} (or write `{client}: connect` / `disconnect` / `drop`)",
            ACTIONS.join(", ")
        ))),
        Doing::Send(t, text_frame) => {
            let ty = t.packet_type();
            let fields = t.finish().map_err(E::custom)?;
            let mut packet = Map::new();
            packet.insert("type".into(), Value::from(ty.name()));
            packet.extend(fields);
            Ok(Action::Send {
                client,
                packet,
                text_frame,
            })
        }
        Doing::Expect(matcher) => Ok(Action::Expect {
            client,
            matcher,
            timeout,
        }),
        Doing::Other(_, mut action) => {
            match &mut action {
                Action::ExpectOneOf { timeout: t, .. }
                | Action::ExpectUnordered { timeout: t, .. }
                | Action::ExpectClose { timeout: t, .. } => *t = timeout,
                _ => {}
            }
            Ok(action)
        }
    }
}

/// `connect: {…CONNECT fields, connack: {…}, expect_connack: false}` or nothing.
struct ConnectSeed<'a> {
    client: String,
    protocols: &'a [Protocol],
}

const CONNECT_KEYS: &[&str] = &["connack", "expect_connack"];

/// A `connect` step's CONNECT: its fields (with `protocol`), not faults.
const CONNECT_STEP: Allow = Allow {
    faults: false,
    except: &[],
    what: "a `connect` step",
    extra: CONNECT_KEYS,
};

impl<'de> DeserializeSeed<'de> for ConnectSeed<'_> {
    type Value = Action;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Action, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ConnectSeed<'_> {
    type Value = Action;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("CONNECT fields and `connack: {…}`, or nothing")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Action, E> {
        Ok(Action::Connect {
            client: self.client,
            fields: Map::new(),
            connack: None,
            expect_connack: true,
        })
    }
    fn visit_none<E: de::Error>(self) -> Result<Action, E> {
        self.visit_unit()
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
        let mut template = Template::new(PacketType::Connect, self.protocols, CONNECT_STEP);
        let (mut connack, mut expect_connack) = (None, true);
        loop {
            let t = &template;
            let Some(key) = map.next_key_seed(CheckedKey(move |k: &str| {
                if CONNECT_KEYS.contains(&k) {
                    Ok(())
                } else {
                    t.check_key(k).map(|_| ())
                }
            }))?
            else {
                break;
            };
            match key.as_str() {
                "connack" => {
                    connack = Some(map.next_value_seed(ConnackSeed {
                        protocols: self.protocols,
                    })?)
                }
                "expect_connack" => expect_connack = map.next_value()?,
                _ => {
                    let f = template.check_key(&key).map_err(de::Error::custom)?;
                    template.read(f, f.name.to_string(), &mut map)?;
                }
            }
        }
        Ok(Action::Connect {
            client: self.client,
            fields: template.finish().map_err(de::Error::custom)?,
            connack,
            expect_connack,
        })
    }
}

/// The fields of a packet the step sends whole (`disconnect: {…}`), or nothing.
struct FieldsSeed<'a> {
    ty: PacketType,
    protocols: &'a [Protocol],
    allow: Allow,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = Map<String, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_> {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the fields of the {}, or nothing", self.ty)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Map::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut template = Template::new(self.ty, self.protocols, self.allow);
        loop {
            let t = &template;
            let Some(f) = map.next_key_seed(FieldKey(t))? else {
                break;
            };
            template.read(f, f.name.to_string(), &mut map)?;
        }
        template.finish().map_err(de::Error::custom)
    }
}

/// A key of a template, checked where it is written.
struct FieldKey<'a>(&'a Template);

impl<'de> DeserializeSeed<'de> for FieldKey<'_> {
    type Value = &'static crate::packet::vocab::Field;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for FieldKey<'_> {
    type Value = &'static crate::packet::vocab::Field;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, k: &str) -> Result<Self::Value, E> {
        self.0.check_key(k).map_err(E::custom)
    }
}
