//! Deliberate violations: the broker can be told to break chosen server-side
//! statements, so the harness can prove that each scenario's check can fail.

use std::collections::BTreeSet;

/// One statement the broker knows how to break, and how it breaks it.
#[derive(Debug, Clone, Copy)]
pub struct ViolationInfo {
    /// Statement ids (3.1.1 and/or 5.0 numbering) this violation breaks.
    pub ids: &'static [&'static str],
    /// What the broker does instead.
    pub behaviour: &'static str,
}

/// Every violation the broker can commit.
#[rustfmt::skip]
pub const VIOLATIONS: &[ViolationInfo] = &[
    ViolationInfo { ids: &["MQTT-3.1.0-2"], behaviour: "accepts a second CONNECT on a connection and answers it with another CONNACK" },
    ViolationInfo { ids: &["MQTT-3.1.2-3"], behaviour: "silently drops a CONNECT whose reserved flag bit is set instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.1.2-2"], behaviour: "silently drops a CONNECT with an unsupported protocol level instead of refusing it" },
    ViolationInfo { ids: &["MQTT-3.12.4-1"], behaviour: "never answers PINGREQ" },
    ViolationInfo { ids: &["MQTT-3.8.4-1"], behaviour: "does not answer SUBSCRIBE with a SUBACK" },
    ViolationInfo { ids: &["MQTT-3.8.4-2", "MQTT-2.3.1-7", "MQTT-2.2.1-6"], behaviour: "answers SUBSCRIBE with a SUBACK carrying a different packet identifier" },
    ViolationInfo { ids: &["MQTT-3.10.4-4", "MQTT-3.10.4-5"], behaviour: "does not answer UNSUBSCRIBE" },
    ViolationInfo { ids: &["MQTT-3.3.4-1", "MQTT-4.3.2-4"], behaviour: "does not acknowledge QoS 1 PUBLISH" },
    ViolationInfo { ids: &["MQTT-4.3.3-8"], behaviour: "does not send PUBREC for QoS 2 PUBLISH" },
    ViolationInfo { ids: &["MQTT-4.3.3-11"], behaviour: "does not answer PUBREL with PUBCOMP" },
    ViolationInfo { ids: &["MQTT-4.3.3-10", "MQTT-4.3.3-2"], behaviour: "forwards a re-sent QoS 2 PUBLISH again before PUBREL (duplicate delivery)" },
    ViolationInfo { ids: &["MQTT-3.2.2-1", "MQTT-3.2.2-2"], behaviour: "sets Session Present on a clean-start CONNACK" },
    ViolationInfo { ids: &["MQTT-3.2.2-3", "MQTT-3.1.2-4", "MQTT-3.1.2-5"], behaviour: "forgets a persistent session on reconnect (Session Present 0, subscriptions lost)" },
    ViolationInfo { ids: &["MQTT-3.3.1-5"], behaviour: "does not store retained messages" },
    ViolationInfo { ids: &["MQTT-3.3.1-6", "MQTT-3.3.1-7", "MQTT-3.3.1-10", "MQTT-3.3.1-11"], behaviour: "keeps a retained message when an empty retained PUBLISH should clear it" },
    ViolationInfo { ids: &["MQTT-3.3.1-8", "MQTT-3.3.1-9", "MQTT-3.3.1-12", "MQTT-3.3.1-13"], behaviour: "forwards the RETAIN flag wrongly (keeps it on live messages, clears it on retained ones)" },
    ViolationInfo { ids: &["MQTT-4.7.2-1"], behaviour: "lets filters starting with a wildcard match topics starting with '$'" },
    ViolationInfo { ids: &["MQTT-3.14.4-3", "MQTT-3.1.2-10"], behaviour: "publishes the will even after a normal DISCONNECT" },
    ViolationInfo { ids: &["MQTT-3.1.2-8", "MQTT-3.1.2-7"], behaviour: "never publishes will messages" },
    ViolationInfo { ids: &["MQTT-3.1.2-24", "MQTT-3.1.2-22"], behaviour: "does not enforce keep alive" },
    ViolationInfo { ids: &["MQTT-3.3.1-2", "MQTT-4.3.1-1"], behaviour: "sets DUP on QoS 0 PUBLISH it sends" },
    ViolationInfo { ids: &["MQTT-3.8.4-6", "MQTT-3.3.5-1", "MQTT-3.8.4-8"], behaviour: "delivers at the publisher's QoS, ignoring the granted QoS" },
    ViolationInfo { ids: &["MQTT-3.3.2-2", "MQTT-4.7.0-1", "MQTT-4.7.1-1"], behaviour: "silently drops a PUBLISH whose topic contains wildcards instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.8.3-3", "MQTT-3.8.3-2"], behaviour: "silently drops a SUBSCRIBE without topic filters instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.8.3-4", "MQTT-3.8.3-5"], behaviour: "silently drops a SUBSCRIBE with reserved option bits or QoS 3 instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.3.1-4"], behaviour: "silently drops a PUBLISH with QoS 3 instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.14.1-1", "MQTT-2.2.2-1", "MQTT-2.1.3-1"], behaviour: "silently drops packets with wrong reserved fixed-header flags instead of closing the connection" },
    ViolationInfo { ids: &["MQTT-3.1.3-8"], behaviour: "accepts an empty client id with clean session 0 (3.1.1)" },
    ViolationInfo { ids: &["MQTT-3.1.4-2", "MQTT-3.1.4-3"], behaviour: "keeps the old connection open when a client id connects again" },
    ViolationInfo { ids: &["MQTT-3.3.2-17", "MQTT-3.3.2-18"], behaviour: "drops user properties when forwarding" },
    ViolationInfo { ids: &["MQTT-3.2.2-16"], behaviour: "accepts an empty client id without returning an Assigned Client Identifier" },
    ViolationInfo { ids: &["MQTT-4.12.0-1"], behaviour: "accepts a CONNECT whose authentication method it does not support, as if it named none" },
    ViolationInfo { ids: &["MQTT-4.12.0-5"], behaviour: "leaves the Authentication Method out of the CONNACK that ends an enhanced authentication" },
    ViolationInfo { ids: &["MQTT-4.12.0-6"], behaviour: "names an Authentication Method in CONNACK to a client that used none" },
    ViolationInfo { ids: &["MQTT-4.12.1-2"], behaviour: "answers a failed re-authentication with AUTH success and keeps the connection" },
    ViolationInfo { ids: &["MQTT-3.3.5-2"], behaviour: "neither acknowledges a 3.1.1 PUBLISH that the ACL refuses nor closes the connection" },
];

/// The set of violations in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(BTreeSet<&'static str>);

impl Violations {
    pub fn none() -> Violations {
        Violations::default()
    }

    /// Adds the violation that breaks `id`. Unknown ids are an error that
    /// lists what can be broken.
    pub fn add(&mut self, id: &str) -> Result<(), String> {
        let id = id.trim();
        let info = VIOLATIONS
            .iter()
            .find(|v| v.ids.iter().any(|i| i.eq_ignore_ascii_case(id)));
        match info {
            Some(v) => {
                if let Some(first) = v.ids.first() {
                    self.0.insert(first);
                }
                Ok(())
            }
            None => Err(format!(
                "the broker cannot violate {id}; `--violate list` prints the {} statements it can break",
                VIOLATIONS.iter().map(|v| v.ids.len()).sum::<usize>()
            )),
        }
    }

    /// Whether the statement `id` is to be broken.
    pub fn breaks(&self, id: &str) -> bool {
        // The usual case, asked several times per message: skip the table scan.
        if self.0.is_empty() {
            return false;
        }
        VIOLATIONS
            .iter()
            .find(|v| v.ids.contains(&id))
            .and_then(|v| v.ids.first())
            .is_some_and(|first| self.0.contains(first))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

/// The text `--violate list` prints.
pub fn list() -> String {
    let mut out = String::new();
    for v in VIOLATIONS {
        out.push_str(&v.ids.join(", "));
        out.push_str("\n    ");
        out.push_str(v.behaviour);
        out.push('\n');
    }
    out
}
