//! The second pass: the scenario document read by hand-written visitors
//! that check every key and value while the parser points at it, told by
//! the first pass ([`Context`]) what they need to know of the rest of the
//! file. The top level, `statements`, `protocols` and `clients` are here;
//! the steps are in `steps.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use mqtt_codec::{catalogue, PacketType, Protocol};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::context::Context;
use super::steps::{RawStep, StepsSeed};
use super::values::{parse_protocol, CheckedKey, CheckedStr, DurationValue};
use super::{Capability, ClientSpec};
use crate::packet::{Allow, Template};
use crate::suggest;

/// What the document says, before the model is put together.
pub(crate) struct RawScenario {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) statements: BTreeMap<Protocol, Vec<String>>,
    pub(crate) protocols: Option<Vec<Protocol>>,
    pub(crate) requires: Vec<Capability>,
    pub(crate) setup: Option<crate::run::setup::Setup>,
    pub(crate) tags: Vec<String>,
    pub(crate) clients: Vec<ClientSpec>,
    pub(crate) steps: Vec<RawStep>,
    pub(crate) timeout: Option<Duration>,
}

const FIELDS: &[&str] = &[
    "name",
    "description",
    "statements",
    "protocols",
    "requires",
    "setup",
    "tags",
    "clients",
    "steps",
    "timeout",
];

/// The whole document.
pub(crate) struct ScenarioSeed<'a>(pub(crate) &'a Context);

impl<'de> DeserializeSeed<'de> for ScenarioSeed<'_> {
    type Value = RawScenario;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawScenario, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ScenarioSeed<'_> {
    type Value = RawScenario;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scenario: a mapping with name, statements, clients and steps")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawScenario, A::Error> {
        let cx = self.0;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut name = None;
        let mut description = None;
        let mut statements = None;
        let mut protocols = None;
        let mut requires = Vec::new();
        let mut setup = None;
        let mut tags = Vec::new();
        let mut clients = Vec::new();
        let mut steps = None;
        let mut timeout = None;
        loop {
            let before = seen.clone();
            let key = map.next_key_seed(CheckedKey(move |k: &str| {
                match FIELDS.iter().find(|f| **f == k) {
                    Some(f) if before.contains(f) => Err(format!("duplicate field `{k}`")),
                    Some(_) => Ok(()),
                    None => {
                        Err(<serde_json::Error as de::Error>::unknown_field(k, FIELDS).to_string())
                    }
                }
            }))?;
            let Some(key) = key else { break };
            let Some(&field) = FIELDS.iter().find(|f| **f == key) else {
                continue;
            };
            seen.push(field);
            match field {
                "name" => name = Some(map.next_value::<String>()?),
                "description" => description = map.next_value::<Option<String>>()?,
                "statements" => statements = Some(map.next_value_seed(StatementsSeed { cx })?),
                "protocols" => protocols = Some(map.next_value_seed(ProtocolsSeed { cx })?),
                "requires" => requires = map.next_value()?,
                "setup" => setup = map.next_value()?,
                "tags" => tags = map.next_value()?,
                "clients" => clients = map.next_value_seed(ClientsSeed { cx })?,
                "steps" => steps = Some(map.next_value_seed(StepsSeed { cx })?),
                "timeout" => timeout = Some(map.next_value::<DurationValue>()?.0),
                // FIELDS and these arms list the same keys.
                other => {
                    return Err(de::Error::custom(format!(
                        "internal: `{other}` has no reader"
                    )))
                }
            }
        }
        Ok(RawScenario {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            description,
            statements: statements.ok_or_else(|| de::Error::missing_field("statements"))?,
            protocols,
            requires,
            setup,
            tags,
            clients,
            steps: steps.ok_or_else(|| de::Error::missing_field("steps"))?,
            timeout,
        })
    }
}

/// `statements: {"3.1.1": [ids], "5.0": [ids]}`, each id checked against the
/// catalogue of its version while the parser points at it.
pub(crate) struct StatementsSeed<'a> {
    pub(crate) cx: &'a Context,
}

impl<'de> DeserializeSeed<'de> for StatementsSeed<'_> {
    type Value = BTreeMap<Protocol, Vec<String>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StatementsSeed<'_> {
    type Value = BTreeMap<Protocol, Vec<String>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a mapping from protocol version to statement ids, e.g. {\"5.0\": [MQTT-3.12.4-1]}",
        )
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        loop {
            let listed: Vec<Protocol> = out.keys().copied().collect();
            let Some(p) = map.next_key_seed(VersionKey(listed))? else {
                break;
            };
            let ids = map.next_value_seed(IdsSeed(p))?;
            out.insert(p, ids);
        }
        if out.is_empty() && !self.cx.protocols_given {
            return Err(de::Error::custom(
                "the scenario names no protocol: list its statements per version, e.g. `statements: {\"5.0\": [MQTT-3.12.4-1]}`",
            ));
        }
        Ok(out)
    }
}

/// A version key of `statements`, refused where it repeats one before it.
struct VersionKey(Vec<Protocol>);

impl<'de> DeserializeSeed<'de> for VersionKey {
    type Value = Protocol;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Protocol, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for VersionKey {
    type Value = Protocol;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a protocol version: \"3.1\", \"3.1.1\" or \"5.0\"")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Protocol, E> {
        let p = parse_protocol(s).map_err(E::custom)?;
        if self.0.contains(&p) {
            return Err(E::custom(format!("statements for {p} are listed twice")));
        }
        Ok(p)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Protocol, E> {
        self.visit_str(&format!("{v:.1}"))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Protocol, E> {
        self.visit_str(&v.to_string())
    }
}

struct IdsSeed(Protocol);

impl<'de> DeserializeSeed<'de> for IdsSeed {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for IdsSeed {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of statement ids, e.g. [MQTT-3.12.4-1]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        let p = self.0;
        while let Some(id) = seq.next_element_seed(CheckedStr(
            "a statement id such as MQTT-3.12.4-1",
            move |s: &str| statement_of(p, s),
            PhantomData,
        ))? {
            out.push(id);
        }
        Ok(out)
    }
}

/// The canonical id of `s` in the catalogue of `p`, or why it is not there.
pub(crate) fn statement_of(p: Protocol, s: &str) -> Result<String, String> {
    if let Some(st) = catalogue::lookup(p, s) {
        return Ok(st.id.to_string());
    }
    let other = if p.is_v5() {
        Protocol::V3_1_1
    } else {
        Protocol::V5
    };
    let elsewhere = if catalogue::lookup(other, s).is_some() {
        format!(" (it is a statement of MQTT {other}: list it under \"{other}\")")
    } else {
        String::new()
    };
    let hint = suggest::hint(s, catalogue::statements(p).iter().map(|st| st.id));
    Err(format!(
        "`{s}` is not a statement of MQTT {p}{elsewhere}{hint}; `mqtt-harness explain` lists the catalogue"
    ))
}

/// `protocols: ["3.1", "3.1.1", "5.0"]`: each must have statements listed.
struct ProtocolsSeed<'a> {
    cx: &'a Context,
}

impl<'de> DeserializeSeed<'de> for ProtocolsSeed<'_> {
    type Value = Vec<Protocol>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Protocol>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ProtocolsSeed<'_> {
    type Value = Vec<Protocol>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of protocol versions, e.g. [\"3.1.1\", \"5.0\"]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Protocol>, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = seq.next_element_seed(ListedVersion(self.cx))? {
            out.push(p);
        }
        if out.is_empty() {
            return Err(de::Error::custom(
                "the scenario names no protocol: list the versions it runs under, e.g. `protocols: [\"5.0\"]`",
            ));
        }
        Ok(out)
    }
}

/// A version of `protocols`, which `statements` must list.
struct ListedVersion<'a>(&'a Context);

impl<'de> DeserializeSeed<'de> for ListedVersion<'_> {
    type Value = Protocol;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Protocol, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for ListedVersion<'_> {
    type Value = Protocol;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a protocol version: \"3.1\", \"3.1.1\" or \"5.0\"")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Protocol, E> {
        let p = parse_protocol(s).map_err(E::custom)?;
        let listed = self.0.listed.contains(&p) || self.0.listed.contains(&p.catalogue_version());
        if !listed {
            return Err(E::custom(format!(
                "the scenario runs under MQTT {p} but lists no statements for it; add `\"{}\": [ids]` under `statements`",
                p.catalogue_version()
            )));
        }
        Ok(p)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Protocol, E> {
        self.visit_str(&format!("{v:.1}"))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Protocol, E> {
        self.visit_str(&v.to_string())
    }
}

/// `clients: {a: {}, b: {connect: false}}` or `clients: [a, b]`, in order.
struct ClientsSeed<'a> {
    cx: &'a Context,
}

impl<'de> DeserializeSeed<'de> for ClientsSeed<'_> {
    type Value = Vec<ClientSpec>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<ClientSpec>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ClientsSeed<'_> {
    type Value = Vec<ClientSpec>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of client names to their settings ({publisher: {}, raw: {connect: false}}) or a list of names")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<ClientSpec>, A::Error> {
        let mut out: Vec<ClientSpec> = Vec::new();
        loop {
            let names: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
            let key = map.next_key_seed(CheckedStr(
                "a client name",
                move |name: &str| {
                    check_client_name(name)?;
                    if names.iter().any(|n| n == name) {
                        return Err(format!("client `{name}` is declared twice"));
                    }
                    Ok(name.to_string())
                },
                PhantomData,
            ))?;
            let Some(name) = key else { break };
            let spec = map.next_value_seed(ClientSpecSeed {
                name,
                protocols: &self.cx.protocols,
            })?;
            out.push(spec);
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<ClientSpec>, A::Error> {
        let mut out: Vec<ClientSpec> = Vec::new();
        loop {
            let names: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
            let name = seq.next_element_seed(CheckedStr(
                "a client name",
                move |name: &str| {
                    check_client_name(name)?;
                    if names.iter().any(|n| n == name) {
                        return Err(format!("client `{name}` is declared twice"));
                    }
                    Ok(name.to_string())
                },
                PhantomData,
            ))?;
            let Some(name) = name else { break };
            out.push(ClientSpec {
                name,
                connect: true,
                ..ClientSpec::default()
            });
        }
        Ok(out)
    }
}

/// Words a step uses, which cannot name a client.
pub(crate) const STEP_KEYWORDS: &[&str] = &["wait", "only", "statements", "if_nothing"];

fn check_client_name(name: &str) -> Result<(), String> {
    if STEP_KEYWORDS.contains(&name) {
        return Err(format!(
            "`{name}` is a step keyword and cannot name a client"
        ));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "`{name}` is not a usable client name: use letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// The keys of a client's settings besides its CONNECT fields.
const CLIENT_KEYS: &[&str] = &["connect", "ignore_publishes_without", "target"];

/// What a client's settings may hold of the CONNECT vocabulary: its fields,
/// not `protocol` (a case connects in its own version) nor faults.
const CLIENT: Allow = Allow {
    faults: false,
    except: &["protocol"],
    what: "a client",
    extra: CLIENT_KEYS,
};

/// One client's settings: `{}`, `{connect: false}`, CONNECT fields…
struct ClientSpecSeed<'a> {
    name: String,
    protocols: &'a [Protocol],
}

impl<'de> DeserializeSeed<'de> for ClientSpecSeed<'_> {
    type Value = ClientSpec;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ClientSpec, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ClientSpecSeed<'_> {
    type Value = ClientSpec;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a client's settings: {}, {connect: false}, {keep_alive: 30}…")
    }
    fn visit_unit<E: de::Error>(self) -> Result<ClientSpec, E> {
        Ok(ClientSpec {
            name: self.name,
            connect: true,
            ..ClientSpec::default()
        })
    }
    fn visit_none<E: de::Error>(self) -> Result<ClientSpec, E> {
        self.visit_unit()
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClientSpec, A::Error> {
        let mut spec = ClientSpec {
            name: self.name,
            connect: true,
            ..ClientSpec::default()
        };
        let mut template = Template::new(PacketType::Connect, self.protocols, CLIENT);
        let mut seen: Vec<String> = Vec::new();
        loop {
            let t = &template;
            let before = seen.clone();
            let key = map.next_key_seed(CheckedKey(move |k: &str| {
                if before.iter().any(|s| s == k) && CLIENT_KEYS.contains(&k) {
                    return Err(format!("`{k}` is given twice"));
                }
                if CLIENT_KEYS.contains(&k) {
                    Ok(())
                } else {
                    t.check_key(k).map(|_| ())
                }
            }))?;
            let Some(key) = key else { break };
            seen.push(key.clone());
            match key.as_str() {
                "connect" => spec.connect = map.next_value()?,
                "ignore_publishes_without" => {
                    spec.ignore_publishes_without = Some(map.next_value()?)
                }
                "target" => spec.target = Some(map.next_value()?),
                _ => {
                    let f = template.check_key(&key).map_err(de::Error::custom)?;
                    template.read(f, f.name.to_string(), &mut map)?;
                }
            }
        }
        spec.fields = template
            .finish()
            .map_err(|e| de::Error::custom(format!("client `{}`: {e}", spec.name)))?;
        Ok(spec)
    }
}
