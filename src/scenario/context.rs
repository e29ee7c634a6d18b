//! The first of two passes over a scenario's text: what the checks of the
//! second need to know before they meet the node they check.
//!
//! A `send` step is checked for the versions it runs under, and a step's
//! client against the clients declared, while the parser points at the key
//! or value concerned. Those facts are written elsewhere in the file (the
//! scenario's `statements` and `protocols`, `clients`, the step's `only`),
//! possibly after the step. This pass reads them leniently into a
//! [`Context`]; the second pass, which checks everything, reports any error
//! in them at its own place.

use mqtt_codec::Protocol;
use serde::Deserialize;
use serde_norway::Value;

use super::values::ProtocolName;

/// What the second pass is told about the whole file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// The versions the scenario runs under: `protocols`, else the versions
    /// `statements` lists.
    pub(crate) protocols: Vec<Protocol>,
    /// The versions `statements` lists.
    pub(crate) listed: Vec<Protocol>,
    /// Whether the file says `protocols:`.
    pub(crate) protocols_given: bool,
    /// The declared clients, in order; `None` where `clients` could not be
    /// read (the second pass reports that, and checks no step against it).
    pub(crate) clients: Option<Vec<String>>,
    /// Each step's `only` (empty: every version), by index.
    pub(crate) only: Vec<Vec<Protocol>>,
}

impl Context {
    /// Reads what it can of `text`; what it cannot stays empty.
    pub(crate) fn read(text: &str) -> Context {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Outline {
            statements: Option<Value>,
            protocols: Option<Value>,
            clients: Option<Value>,
            steps: Option<Vec<Value>>,
        }
        let Ok(o) = serde_norway::from_str::<Outline>(text) else {
            return Context::default();
        };
        let listed: Vec<Protocol> = match &o.statements {
            Some(Value::Mapping(m)) => m.keys().filter_map(protocol).collect(),
            _ => Vec::new(),
        };
        let given = o.protocols.as_ref().map(protocols);
        let clients = match &o.clients {
            Some(Value::Mapping(m)) => Some(m.keys().filter_map(name).collect()),
            Some(Value::Sequence(s)) => Some(s.iter().filter_map(name).collect()),
            None | Some(Value::Null) => Some(Vec::new()),
            Some(_) => None,
        };
        let only = o
            .steps
            .unwrap_or_default()
            .iter()
            .map(|s| s.get("only").map(protocols).unwrap_or_default())
            .collect();
        Context {
            protocols: given.clone().unwrap_or_else(|| listed.clone()),
            listed,
            protocols_given: given.is_some(),
            clients,
            only,
        }
    }

    /// The versions step `index` runs under.
    pub(crate) fn step_protocols(&self, index: usize) -> Vec<Protocol> {
        match self.only.get(index) {
            Some(only) if !only.is_empty() => self
                .protocols
                .iter()
                .copied()
                .filter(|p| only.contains(p))
                .collect(),
            _ => self.protocols.clone(),
        }
    }
}

fn protocol(v: &Value) -> Option<Protocol> {
    ProtocolName::deserialize(v.clone()).ok().map(|p| p.0)
}

/// `"5.0"` or `["3.1.1", "5.0"]`.
fn protocols(v: &Value) -> Vec<Protocol> {
    match v {
        Value::Sequence(s) => s.iter().filter_map(protocol).collect(),
        other => protocol(other).into_iter().collect(),
    }
}

fn name(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_later_checks_need() {
        let c = Context::read(
            "steps:\n  - only: \"5.0\"\n    c: x\n  - c: y\nclients: {c: {}, d: {}}\nstatements: {\"3.1.1\": [], \"5.0\": []}\n",
        );
        assert_eq!(c.protocols, [Protocol::V3_1_1, Protocol::V5]);
        assert_eq!(c.clients, Some(vec!["c".to_string(), "d".to_string()]));
        assert_eq!(c.step_protocols(0), [Protocol::V5]);
        assert_eq!(c.step_protocols(1), [Protocol::V3_1_1, Protocol::V5]);
        assert!(Context::read("{: [").protocols.is_empty());
    }
}
