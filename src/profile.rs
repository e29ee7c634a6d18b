//! Target profiles (`run --profile FILE`): what a broker offers when it
//! cannot say so itself. An MQTT 5.0 broker announces its limits in CONNACK
//! properties (Maximum QoS, Retain Available, …); a 3.1.1 broker announces
//! nothing, so without a profile the runner assumes every feature and fails
//! scenarios where the broker simply does not offer one.
//!
//! ```yaml
//! name: mosquitto 2.0           # named in every skip reason
//! notes: default configuration, `allow_anonymous true`
//! protocols: ["3.1", "3.1.1", "5.0"]   # the versions it speaks
//! maximum_qos: 2
//! retain: true
//! wildcards: true
//! shared_subscriptions: true
//! subscription_identifiers: true
//! topic_alias: true
//! keep_alive: { minimum: 0, maximum: 65535 }   # the keep alive values it honours as asked
//! setups: [login]               # the set-ups it is (see run::setup): the scenarios needing them run
//! # keep_alive: { granularity: 5 }   # its keep-alive check runs every 5 s: a
//! #                                  # close may come that much later than 1.5 × keep alive
//! ```
//!
//! Every key but `name` is optional; a missing one means "offered" (the
//! spec's own default when a 5.0 CONNACK leaves a property out). Unknown keys
//! are errors, and every error names `file:line:col`.
//!
//! How a profile and CONNACK combine: a feature is offered only if the
//! profile offers it *and* the CONNACK does not withdraw it. A CONNACK never
//! brings back what the profile rules out. A case that requires something
//! missing is skipped, its reason naming the profile; a case under a protocol
//! the profile does not list is skipped before it connects.

use std::fmt;
use std::path::Path;

use mqtt_codec::Protocol;
use serde::Deserialize;

use crate::scenario::{Capability, ParseError, Pos, ProtocolName};

/// What a target broker offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The file it was read from (for messages).
    pub file: String,
    pub name: String,
    pub notes: Option<String>,
    /// The versions it speaks (all three when the profile does not say).
    pub protocols: Vec<Protocol>,
    pub maximum_qos: u8,
    pub retain: bool,
    pub wildcards: bool,
    pub shared_subscriptions: bool,
    pub subscription_identifiers: bool,
    pub topic_alias: bool,
    pub keep_alive: KeepAlive,
    /// The set-ups the target is (`setups: [login]`): scenarios that need
    /// one of them run against it; others needing a set-up are skipped.
    pub setups: Vec<crate::run::setup::Setup>,
}

/// The keep alive values (seconds) a broker honours as the client asks. A
/// broker outside the range overrides them (5.0 Server Keep Alive) or
/// refuses the connection; scenarios asking for such a value are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepAlive {
    #[serde(default)]
    pub minimum: u16,
    #[serde(default = "max_keep_alive")]
    pub maximum: u16,
    /// How late (seconds) the broker's keep-alive check may notice a
    /// silent client: it checks on a sweep instead of a timer per
    /// connection. The deadline of a keep-alive close grows by this much;
    /// a scenario never assumes it for every broker.
    #[serde(default)]
    pub granularity: u16,
}

fn max_keep_alive() -> u16 {
    u16::MAX
}

impl Default for KeepAlive {
    fn default() -> KeepAlive {
        KeepAlive {
            minimum: 0,
            maximum: u16::MAX,
            granularity: 0,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the target profile `{}` ({})", self.name, self.file)
    }
}

impl Profile {
    /// Why `c` is not offered, or `None` when it is.
    pub fn missing(&self, c: Capability) -> Option<String> {
        let offered = match c {
            Capability::Qos1 => self.maximum_qos >= 1,
            Capability::Qos2 => self.maximum_qos >= 2,
            Capability::Retain => self.retain,
            Capability::Wildcards => self.wildcards,
            Capability::SharedSubscriptions => self.shared_subscriptions,
            Capability::SubscriptionIdentifiers => self.subscription_identifiers,
            Capability::TopicAlias => self.topic_alias,
        };
        if offered {
            return None;
        }
        let what = match c {
            Capability::Qos1 | Capability::Qos2 => format!("maximum_qos {}", self.maximum_qos),
            other => format!("{}: false", other.as_str()),
        };
        Some(format!("requires {}: {self} says {what}", c.as_str()))
    }

    /// Why the target is not tried under `p`, or `None` when it speaks it.
    pub fn refuses(&self, p: Protocol) -> Option<String> {
        if self.protocols.contains(&p) {
            return None;
        }
        let listed: Vec<&str> = self.protocols.iter().map(|p| p.as_str()).collect();
        Some(format!(
            "the target does not speak MQTT {p}: {self} lists {}",
            listed.join(", ")
        ))
    }

    /// Why a keep alive of `secs` is not honoured as asked, or `None`.
    pub fn keep_alive_refused(&self, secs: u64) -> Option<String> {
        let k = self.keep_alive;
        let inside = secs >= u64::from(k.minimum) && secs <= u64::from(k.maximum);
        (!inside).then(|| {
            format!(
                "asks for keep alive {secs} s: {self} honours {}..={} s",
                k.minimum, k.maximum
            )
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    protocols: Option<Vec<ProtocolName>>,
    #[serde(default)]
    maximum_qos: Option<u8>,
    #[serde(default)]
    retain: Option<bool>,
    #[serde(default)]
    wildcards: Option<bool>,
    #[serde(default)]
    shared_subscriptions: Option<bool>,
    #[serde(default)]
    subscription_identifiers: Option<bool>,
    #[serde(default)]
    topic_alias: Option<bool>,
    #[serde(default)]
    keep_alive: Option<KeepAlive>,
    #[serde(default)]
    setups: Vec<crate::run::setup::Setup>,
}

/// Parses a profile from its text; `file` names it in errors and skip reasons.
pub fn parse_profile(file: &str, text: &str) -> Result<Profile, ParseError> {
    let at = |pos: Option<Pos>, message: String| ParseError::new(file, pos, message);
    let raw: RawProfile =
        serde_norway::from_str(text).map_err(|e| ParseError::from_yaml(file, &e))?;
    let key_pos = |key: &str| {
        text.lines().enumerate().find_map(|(i, l)| {
            l.starts_with(&format!("{key}:")).then_some(Pos {
                line: i + 1,
                column: 1,
            })
        })
    };
    let maximum_qos = raw.maximum_qos.unwrap_or(2);
    if maximum_qos > 2 {
        return Err(at(
            key_pos("maximum_qos"),
            format!("maximum_qos is {maximum_qos}; it is 0, 1 or 2"),
        ));
    }
    let protocols: Vec<Protocol> = match raw.protocols {
        Some(list) => list.into_iter().map(|p| p.0).collect(),
        None => vec![Protocol::V3_1, Protocol::V3_1_1, Protocol::V5],
    };
    if protocols.is_empty() {
        return Err(at(
            key_pos("protocols"),
            "`protocols` is empty: list the versions the broker speaks, e.g. [\"3.1.1\", \"5.0\"]"
                .into(),
        ));
    }
    let keep_alive = raw.keep_alive.unwrap_or_default();
    if keep_alive.minimum > keep_alive.maximum {
        return Err(at(
            key_pos("keep_alive"),
            format!(
                "keep_alive minimum {} is above its maximum {}",
                keep_alive.minimum, keep_alive.maximum
            ),
        ));
    }
    Ok(Profile {
        file: file.to_string(),
        name: raw.name,
        notes: raw.notes,
        protocols,
        maximum_qos,
        retain: raw.retain.unwrap_or(true),
        wildcards: raw.wildcards.unwrap_or(true),
        shared_subscriptions: raw.shared_subscriptions.unwrap_or(true),
        subscription_identifiers: raw.subscription_identifiers.unwrap_or(true),
        topic_alias: raw.topic_alias.unwrap_or(true),
        keep_alive,
        setups: raw.setups,
    })
}

/// Reads a profile file.
pub fn load_profile(path: &Path) -> Result<Profile, ParseError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ParseError::new(&file, None, format!("cannot read the target profile: {e}"))
    })?;
    parse_profile(&file, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V311: &str = "name: a 3.1.1 broker
notes: no QoS 2, no retain
protocols: [\"3.1.1\"]
maximum_qos: 1
retain: false
keep_alive: { minimum: 30, maximum: 1200 }
";

    #[test]
    fn reads_a_profile() {
        let p = parse_profile("p.yaml", V311).unwrap();
        assert_eq!(p.protocols, [Protocol::V3_1_1]);
        assert_eq!(p.maximum_qos, 1);
        assert!(!p.retain && p.wildcards && p.topic_alias);
        assert_eq!(
            p.missing(Capability::Qos2).as_deref(),
            Some("requires qos2: the target profile `a 3.1.1 broker` (p.yaml) says maximum_qos 1")
        );
        assert_eq!(
            p.missing(Capability::Retain).as_deref(),
            Some(
                "requires retain: the target profile `a 3.1.1 broker` (p.yaml) says retain: false"
            )
        );
        assert_eq!(p.missing(Capability::Qos1), None);
        assert_eq!(
            p.refuses(Protocol::V3_1).as_deref(),
            Some("the target does not speak MQTT 3.1: the target profile `a 3.1.1 broker` (p.yaml) lists 3.1.1")
        );
        assert_eq!(p.refuses(Protocol::V3_1_1), None);
        assert!(p.keep_alive_refused(1).is_some());
        assert!(p.keep_alive_refused(60).is_none());
    }

    #[test]
    fn defaults_offer_everything() {
        let p = parse_profile("p.yaml", "name: x\n").unwrap();
        assert_eq!(p.protocols.len(), 3);
        assert_eq!(p.maximum_qos, 2);
        assert_eq!(p.keep_alive, KeepAlive::default());
    }

    #[test]
    fn unknown_keys_are_errors_with_their_position() {
        let e = parse_profile("p.yaml", "name: x\nretian: true\n").unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 2, column: 1 }), "{e}");
        assert!(e.message.contains("unknown field `retian`"), "{e}");
        assert!(e.to_string().starts_with("p.yaml:2:1: "), "{e}");
        let e = parse_profile("p.yaml", "name: x\nkeep_alive: { maximun: 3 }\n").unwrap_err();
        assert_eq!(e.pos.map(|p| p.line), Some(2), "{e}");
        let e = parse_profile("p.yaml", "name: x\nmaximum_qos: 3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.yaml:2:1: maximum_qos is 3; it is 0, 1 or 2"
        );
        let e = parse_profile("p.yaml", "name: x\nprotocols: [\"4.0\"]\n").unwrap_err();
        assert!(e.message.contains("unknown protocol version"), "{e}");
    }

    #[test]
    fn the_shipped_profiles_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        for name in ["mosquitto.yaml", "reference.yaml"] {
            let p = load_profile(&root.join(name)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.protocols.len(), 3, "{name}");
            assert!(
                [
                    Capability::Qos2,
                    Capability::Retain,
                    Capability::Wildcards,
                    Capability::SharedSubscriptions,
                    Capability::SubscriptionIdentifiers,
                    Capability::TopicAlias
                ]
                .iter()
                .all(|c| p.missing(*c).is_none()),
                "{name}"
            );
        }
    }
}
