//! The verdict vocabulary of a case: why it stopped ([`Stop`]), why it could
//! not run ([`CaseError`]), what the broker offers ([`Capabilities`]), and
//! which statements a failure is charged to ([`attribute`]).

use std::fmt;
use std::time::Duration;

use mqtt_codec::{Properties, Protocol};

use crate::net::Event;
use crate::results::Failure;
use crate::scenario::{Action, Capability, Scenario};
use crate::{hex, packet};

/// Why a case stopped before its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The broker did what the spec does not allow.
    Fail(Failure),
    /// The scenario does not apply to this target (why).
    Skip(String),
    /// No verdict could be had.
    Error(CaseError),
}

/// Why a case could not run: no verdict on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseError {
    /// No connection could be opened (refused, unreachable, handshake failed).
    Unreachable(String),
    /// A client's automatic CONNECT was refused, or met a close or silence.
    NotConnected { client: String, why: String },
    /// Nothing at all came back in the case, and the target does not answer a
    /// fresh, valid CONNECT either: a hung target.
    NoAnswer { expected: String, got: String },
    /// The scenario's packet cannot be built or encoded (a bad capture…).
    BadPacket(String),
    /// The target did not take the bytes before the deadline.
    Stalled(String),
    /// A step names a client with no connection.
    NoConnection(String),
    /// The harness itself failed (a bug: a case that panicked…).
    Harness(String),
    /// Any of these, in a numbered step.
    InStep(usize, Box<CaseError>),
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::Unreachable(m) | CaseError::BadPacket(m) | CaseError::Stalled(m) => {
                f.write_str(m)
            }
            CaseError::NotConnected { client, why } => {
                write!(f, "client `{client}` could not connect: {why}")
            }
            CaseError::NoAnswer { expected, got } => write!(
                f,
                "the target has answered nothing in this case and does not answer a valid CONNECT either (expected {expected}; got {got}); no verdict"
            ),
            CaseError::NoConnection(c) => write!(f, "client `{c}` has no connection"),
            CaseError::Harness(m) => write!(f, "the case's task failed: {m}"),
            CaseError::InStep(n, e) => write!(f, "step {n}: {e}"),
        }
    }
}

/// What the broker offers, from its first CONNACK (5.0) or by default (3.x).
#[derive(Debug, Clone)]
pub struct Capabilities {
    max_qos: u8,
    retain: bool,
    wildcards: bool,
    shared: bool,
    sub_ids: bool,
    topic_alias_max: u16,
}

impl Capabilities {
    pub fn from_connack(props: &Properties, protocol: Protocol) -> Capabilities {
        if !protocol.is_v5() {
            return Capabilities {
                max_qos: 2,
                retain: true,
                wildcards: true,
                shared: false,
                sub_ids: false,
                topic_alias_max: 0,
            };
        }
        Capabilities {
            max_qos: props.maximum_qos().unwrap_or(2),
            retain: props.retain_available().unwrap_or(1) == 1,
            wildcards: props.wildcard_subscription_available().unwrap_or(1) == 1,
            shared: props.shared_subscription_available().unwrap_or(1) == 1,
            sub_ids: props.subscription_identifier_available().unwrap_or(1) == 1,
            topic_alias_max: props.topic_alias_maximum().unwrap_or(0),
        }
    }

    /// Why `c` is missing, if it is.
    pub fn missing(&self, c: Capability) -> Option<String> {
        let why = match c {
            Capability::Qos1 if self.max_qos < 1 => {
                format!("the broker's Maximum QoS is {}", self.max_qos)
            }
            Capability::Qos2 if self.max_qos < 2 => {
                format!("the broker's Maximum QoS is {}", self.max_qos)
            }
            Capability::Retain if !self.retain => "the broker has Retain Available 0".into(),
            Capability::Wildcards if !self.wildcards => {
                "the broker has Wildcard Subscription Available 0".into()
            }
            Capability::SharedSubscriptions if !self.shared => {
                "shared subscriptions are not available".into()
            }
            Capability::SubscriptionIdentifiers if !self.sub_ids => {
                "subscription identifiers are not available".into()
            }
            Capability::TopicAlias if self.topic_alias_max == 0 => {
                "the broker's Topic Alias Maximum is 0".into()
            }
            _ => return None,
        };
        Some(format!("requires {}: {why}", c.as_str()))
    }
}

/// Capabilities that only exist in 5.0.
pub fn v5_only(c: Capability) -> bool {
    matches!(
        c,
        Capability::SharedSubscriptions
            | Capability::SubscriptionIdentifiers
            | Capability::TopicAlias
    )
}

/// Whether a CONNACK code refuses the version of the CONNECT: 0x84
/// Unsupported Protocol Version (5.0), 0x01 unacceptable protocol version
/// (3.x; also what a 3.1.1-only broker answers a 5.0 CONNECT with).
pub fn refuses_version(protocol: Protocol, code: u8) -> bool {
    code == 0x01 || (protocol.is_v5() && code == 0x84)
}

pub fn show_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// A failure: `expected`, and what `ev` was instead (step and position are
/// filled in by the step loop).
pub fn fail(expected: String, ev: &Event, protocol: Protocol, timeout: Duration) -> Stop {
    let (got, got_hex) = match ev {
        Event::Packet(p, raw) => (
            packet::packet_to_json(p, protocol).to_string(),
            Some(hex::spaced(raw)),
        ),
        Event::Closed(None) => ("the connection closed".to_string(), None),
        Event::Closed(Some(n)) => (format!("the connection closed ({n})"), None),
        Event::Malformed(e, raw) => (
            format!("bytes that do not decode: {e}"),
            Some(hex::spaced(raw)),
        ),
        Event::Timeout => (format!("nothing within {}", show_duration(timeout)), None),
    };
    Stop::Fail(Failure {
        step: 0,
        pos: None,
        expected,
        got,
        got_hex,
    })
}

/// The statements a case under `protocol` failed and passed.
///
/// Each step that can fail checks its own statements, or the scenario's when
/// it names none; a `wait` step's statements go to the next step (what
/// follows a spec timer shows whether it ran). A case that passed passed all
/// it checks. One that failed at step `failed_at` (1-based; 0 while
/// connecting) failed that step's statements — or `broken`, the statement
/// of an answer that did not decode — and passed those whose every step ran
/// before the failure; the others it never reached.
pub fn attribute(
    scenario: &Scenario,
    protocol: Protocol,
    failed_at: Option<usize>,
    broken: Option<&[String]>,
) -> (Vec<String>, Vec<String>) {
    let checked = scenario.checked_statements(protocol);
    let Some(at) = failed_at else {
        return (Vec::new(), checked);
    };
    // Each step: its number, the statements a failure there breaks, and
    // all it checks (those and its `if_nothing` ones).
    let mut by_step: Vec<(usize, Vec<String>, Vec<String>)> = Vec::new();
    let mut carried: Vec<String> = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        if !step.runs_under(protocol) {
            continue;
        }
        if let Action::Wait { statements, .. } = &step.action {
            carried.extend(statements.iter().cloned());
            continue;
        }
        let mut ids: Vec<String> = step
            .own_statements(protocol)
            .unwrap_or_else(|| scenario.statements_for(protocol))
            .to_vec();
        ids.append(&mut carried);
        let ids = canonical(protocol, ids);
        let mut all = ids.clone();
        all.extend(step.if_nothing(protocol).unwrap_or(&[]).iter().cloned());
        by_step.push((i + 1, ids, canonical(protocol, all)));
    }
    let failed: Vec<String> = match broken {
        Some(ids) => ids.to_vec(),
        None if at == 0 => checked.clone(),
        None => by_step
            .iter()
            .find(|(n, _, _)| *n == at)
            .map(|(_, ids, _)| ids.clone())
            .unwrap_or_else(|| checked.clone()),
    };
    let passed = checked
        .iter()
        .filter(|id| !failed.contains(id))
        .filter(|id| {
            let mut steps = by_step
                .iter()
                .filter(|(_, _, all)| all.contains(id))
                .peekable();
            steps.peek().is_some() && steps.all(|(n, _, _)| *n < at)
        })
        .cloned()
        .collect();
    (failed, passed)
}

/// Canonical ids of this version's catalogue, each once.
fn canonical(protocol: Protocol, ids: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let id = mqtt_codec::catalogue::lookup(protocol, &id).map_or(id, |st| st.id.to_string());
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_alive_ping() -> Scenario {
        crate::scenario::parse_scenario(
            "x.yaml",
            r#"name: ping keeps alive
statements:
  "3.1.1": [MQTT-3.12.4-1, MQTT-3.1.2-24]
clients:
  c: { keep_alive: 1 }
steps:
  - wait: { seconds: 0.8s, for: "keep alive" }
  - c: { send: PINGREQ }
  - statements: [MQTT-3.12.4-1]
    c: { expect: PINGRESP, timeout: 1s }
  - statements: [MQTT-3.1.2-24]
    c: { expect_close: true, timeout: 4s }
"#,
        )
        .expect("parses")
    }

    #[test]
    fn a_failing_step_fails_only_its_statements() {
        let s = keep_alive_ping();
        let p = Protocol::V3_1_1;
        // Passed: everything.
        let (failed, passed) = attribute(&s, p, None, None);
        assert!(failed.is_empty());
        assert_eq!(passed, ["MQTT-3.12.4-1", "MQTT-3.1.2-24"]);
        // The close never came (step 4): only the keep-alive statement fails;
        // every step checking the PINGRESP statement ran and passed.
        let (failed, passed) = attribute(&s, p, Some(4), None);
        assert_eq!(failed, ["MQTT-3.1.2-24"]);
        assert_eq!(passed, ["MQTT-3.12.4-1"]);
        // No PINGRESP (step 3): that statement fails; the close was never
        // reached, and the send before it (the scenario's statements) is no
        // evidence for it: no verdict on MQTT-3.1.2-24.
        let (failed, passed) = attribute(&s, p, Some(3), None);
        assert_eq!(failed, ["MQTT-3.12.4-1"]);
        assert!(passed.is_empty(), "{passed:?}");
        // While connecting, with an answer that did not decode.
        let broken = ["MQTT-3.2.0-1".to_string()];
        let (failed, passed) = attribute(&s, p, Some(0), Some(&broken));
        assert_eq!(failed, broken);
        assert!(passed.is_empty());
    }

    #[test]
    fn a_wait_hands_its_statements_to_the_next_step() {
        let s = crate::scenario::parse_scenario(
            "x.yaml",
            r#"name: expiry
statements:
  "5.0": [MQTT-3.3.2-5]
clients:
  c: {}
steps:
  - statements: [MQTT-3.12.4-1]
    c: { send: PINGREQ }
  - wait: { seconds: 1s, for: "expiry", statements: [MQTT-3.3.2-6] }
  - statements: [MQTT-3.12.4-1]
    c: { expect: PINGRESP }
"#,
        )
        .expect("parses");
        let (failed, passed) = attribute(&s, Protocol::V5, Some(3), None);
        assert_eq!(failed, ["MQTT-3.12.4-1", "MQTT-3.3.2-6"]);
        assert!(passed.is_empty(), "{passed:?}");
    }
}
