//! The steps of a scenario: each a mapping with one client name (or `wait`)
//! and optionally `only` and `statements`, read while the parser points at
//! each key and value. What a client does is in `actions.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use mqtt_codec::{catalogue, Protocol};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::actions::ClientActionSeed;
use super::context::Context;
use super::document::StatementsSeed;
use super::values::{names_of, parse_protocol, CheckedKey, CheckedStr, DurationValue};
use super::Action;
use crate::suggest;

/// A step as read; the model's `Step` adds its position.
pub(crate) struct RawStep {
    pub(crate) only: Vec<Protocol>,
    pub(crate) statements: BTreeMap<Protocol, Vec<String>>,
    pub(crate) if_nothing: BTreeMap<Protocol, Vec<String>>,
    pub(crate) action: Action,
}

/// `steps: [...]`.
pub(crate) struct StepsSeed<'a> {
    pub(crate) cx: &'a Context,
}

impl<'de> DeserializeSeed<'de> for StepsSeed<'_> {
    type Value = Vec<RawStep>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<RawStep>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for StepsSeed<'_> {
    type Value = Vec<RawStep>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of steps")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RawStep>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element_seed(StepSeed {
            cx: self.cx,
            index: out.len(),
        })? {
            out.push(s);
        }
        Ok(out)
    }
}

/// One step, the `index`-th (0-based; messages count from 1).
struct StepSeed<'a> {
    cx: &'a Context,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for StepSeed<'_> {
    type Value = RawStep;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RawStep, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StepSeed<'_> {
    type Value = RawStep;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step: `{client: {send: …}}`, `{client: {expect: …}}`, `{client: connect}` or `{wait: {seconds: …}}`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawStep, A::Error> {
        let (cx, n) = (self.cx, self.index + 1);
        let protocols = cx.step_protocols(self.index);
        let mut only = Vec::new();
        let mut statements = BTreeMap::new();
        let mut if_nothing = BTreeMap::new();
        let mut action: Option<(String, Action)> = None;
        loop {
            let first = action.as_ref().map(|(k, _)| k.clone());
            let Some(key) = map.next_key_seed(CheckedKey(move |k: &str| {
                if matches!(k, "only" | "statements" | "if_nothing") {
                    return Ok(());
                }
                if let Some(first) = first {
                    return Err(format!(
                        "a step does one thing: it has both `{first}` and `{k}`; split it into two steps"
                    ));
                }
                if k == "wait" {
                    return Ok(());
                }
                client_declared(cx, k, n)
            }))?
            else {
                break;
            };
            match key.as_str() {
                "only" => only = map.next_value_seed(OnlySeed { cx, step: n })?,
                "statements" => {
                    statements = map.next_value_seed(StepStatementsSeed {
                        protocols: &cx.protocols,
                        step: n,
                    })?
                }
                "if_nothing" => {
                    if_nothing = map.next_value_seed(StepStatementsSeed {
                        protocols: &cx.protocols,
                        step: n,
                    })?
                }
                "wait" => {
                    let a = map.next_value_seed(WaitSeed {
                        protocols: &cx.protocols,
                    })?;
                    action = Some((key, a));
                }
                _ => {
                    let a = map.next_value_seed(ClientActionSeed {
                        client: key.clone(),
                        protocols: &protocols,
                    })?;
                    action = Some((key, a));
                }
            }
        }
        match action {
            Some((_, action)) => Ok(RawStep {
                only,
                statements,
                if_nothing,
                action,
            }),
            None => Err(de::Error::custom(
                "an empty step: name a client and its action, e.g. `- c: {send: PINGREQ}`",
            )),
        }
    }
}

/// Refuses a step's client that the scenario does not declare.
fn client_declared(cx: &Context, client: &str, step: usize) -> Result<(), String> {
    let Some(names) = &cx.clients else {
        // `clients` itself is wrong; that is reported where it is written.
        return Ok(());
    };
    if names.iter().any(|c| c == client) {
        return Ok(());
    }
    let hint = suggest::hint(client, names.iter().map(String::as_str));
    let declared = if names.is_empty() {
        "no clients are declared; add `clients: {name: {}}`".to_string()
    } else {
        format!("the declared clients are: {}", names.join(", "))
    };
    Err(format!(
        "step {step} uses client `{client}`, which is not declared{hint}; {declared}"
    ))
}

/// `only: "5.0"` or `only: ["3.1.1", "5.0"]`: versions the scenario runs under.
struct OnlySeed<'a> {
    cx: &'a Context,
    step: usize,
}

impl<'de> DeserializeSeed<'de> for OnlySeed<'_> {
    type Value = Vec<Protocol>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Protocol>, D::Error> {
        d.deserialize_any(self)
    }
}

impl OnlySeed<'_> {
    fn check<E: de::Error>(&self, p: Protocol) -> Result<Protocol, E> {
        let all = &self.cx.protocols;
        if all.is_empty() || all.contains(&p) {
            return Ok(p);
        }
        Err(E::custom(format!(
            "step {} is `only` for MQTT {p}, which the scenario does not run under ({})",
            self.step,
            names_of(all)
        )))
    }
}

impl<'de> Visitor<'de> for OnlySeed<'_> {
    type Value = Vec<Protocol>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a protocol version (\"5.0\") or a list of them")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<Protocol>, E> {
        let p = parse_protocol(s).map_err(E::custom)?;
        Ok(vec![self.check(p)?])
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Vec<Protocol>, E> {
        self.visit_str(&format!("{v:.1}"))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Vec<Protocol>, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Protocol>, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = seq.next_element_seed(OneVersion(&self))? {
            out.push(p);
        }
        Ok(out)
    }
}

/// One version of an `only` list.
struct OneVersion<'a, 'b>(&'a OnlySeed<'b>);

impl<'de> DeserializeSeed<'de> for OneVersion<'_, '_> {
    type Value = Protocol;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Protocol, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for OneVersion<'_, '_> {
    type Value = Protocol;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a protocol version: \"3.1\", \"3.1.1\" or \"5.0\"")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Protocol, E> {
        let p = parse_protocol(s).map_err(E::custom)?;
        self.0.check(p)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Protocol, E> {
        self.visit_str(&format!("{v:.1}"))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
        self.visit_str(&v.to_string())
    }
}

/// A step's own `statements`: a list of ids (each applies under every
/// version of the scenario whose catalogue has it) or, where the ids differ
/// per version, a mapping like the scenario's.
struct StepStatementsSeed<'a> {
    protocols: &'a [Protocol],
    step: usize,
}

impl<'de> DeserializeSeed<'de> for StepStatementsSeed<'_> {
    type Value = BTreeMap<Protocol, Vec<String>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StepStatementsSeed<'_> {
    type Value = BTreeMap<Protocol, Vec<String>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of statement ids, e.g. [MQTT-3.12.4-1], or a mapping from protocol version to ids")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out: BTreeMap<Protocol, Vec<String>> = BTreeMap::new();
        let (protocols, step) = (self.protocols, self.step);
        while let Some(found) = seq.next_element_seed(CheckedStr(
            "a statement id such as MQTT-3.12.4-1",
            move |id: &str| {
                let found: Vec<(Protocol, String)> = protocols
                    .iter()
                    .filter_map(|p| catalogue::lookup(*p, id).map(|st| (*p, st.id.to_string())))
                    .collect();
                if found.is_empty() && !protocols.is_empty() {
                    return Err(format!(
                        "step {step}: `{id}` is not a statement of {}",
                        names_of(protocols)
                    ));
                }
                Ok(found)
            },
            PhantomData,
        ))? {
            for (p, id) in found {
                let list = out.entry(p.catalogue_version()).or_default();
                if !list.contains(&id) {
                    list.push(id);
                }
            }
        }
        Ok(out)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        // A step names its versions' statements itself: none is missing.
        let cx = Context {
            protocols_given: true,
            ..Context::default()
        };
        StatementsSeed { cx: &cx }.visit_map(map)
    }
}

/// `wait: {seconds: 2, for: "…", statements: [...]}`.
struct WaitSeed<'a> {
    protocols: &'a [Protocol],
}

impl<'de> DeserializeSeed<'de> for WaitSeed<'_> {
    type Value = Action;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Action, D::Error> {
        d.deserialize_map(self)
    }
}

const WAIT_KEYS: &[&str] = &["seconds", "for", "statements"];

impl<'de> Visitor<'de> for WaitSeed<'_> {
    type Value = Action;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a wait: {seconds: 2, for: \"which timer\"}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
        let (mut duration, mut reason, mut statements) = (None, None, Vec::new());
        while let Some(key) = map.next_key_seed(CheckedKey(|k: &str| {
            if WAIT_KEYS.contains(&k) {
                Ok(())
            } else {
                Err(<serde_json::Error as de::Error>::unknown_field(k, WAIT_KEYS).to_string())
            }
        }))? {
            match key.as_str() {
                "seconds" => duration = Some(map.next_value::<DurationValue>()?.0),
                "for" => reason = Some(map.next_value::<String>()?),
                _ => statements = map.next_value_seed(WaitIdsSeed(self.protocols))?,
            }
        }
        Ok(Action::Wait {
            duration: duration.ok_or_else(|| de::Error::missing_field("seconds"))?,
            reason: reason.ok_or_else(|| de::Error::missing_field("for"))?,
            statements,
        })
    }
}

/// A wait's statements: ids of some version the scenario runs under.
struct WaitIdsSeed<'a>(&'a [Protocol]);

impl<'de> DeserializeSeed<'de> for WaitIdsSeed<'_> {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for WaitIdsSeed<'_> {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of statement ids")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let protocols = self.0;
        let mut out = Vec::new();
        while let Some(id) = seq.next_element_seed(CheckedStr(
            "a statement id such as MQTT-3.1.2-24",
            move |id: &str| {
                let known = protocols
                    .iter()
                    .any(|p| catalogue::lookup(*p, id).is_some());
                if known || protocols.is_empty() {
                    Ok(id.to_string())
                } else {
                    Err(format!(
                        "`{id}` is not a statement of {}",
                        names_of(protocols)
                    ))
                }
            },
            PhantomData,
        ))? {
            out.push(id);
        }
        Ok(out)
    }
}
