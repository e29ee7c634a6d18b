//! A case's variables: the placeholders a scenario writes in its strings
//! (`{topic}`, `{case}`, `{run}`, `{client_id}`, `{client:NAME}`) and the
//! `$name` captures that expect steps make and send steps use. `{username}`
//! and `{password}` are the run's credentials (`--username`, `--password`),
//! or those a set-up fixes ([`super::setup`]).

use std::collections::HashMap;

use serde_json::Value;

use crate::scenario::{is_capture, Scenario};

/// The placeholders' values for one case.
#[derive(Debug, Clone)]
pub struct Vars {
    pub run: String,
    /// The case's token: letters and digits, fixed width, unique in the run.
    pub case: String,
    pub topic: String,
    /// Each client's id, by client name.
    pub client_ids: HashMap<String, String>,
    pub username: String,
    pub password: String,
}

impl Vars {
    pub fn new(scenario: &Scenario, run: &str, index: usize) -> Vars {
        // Fixed width, so that no case's token is part of another's (case 2
        // in case 25): a client skipping traffic without its token relies on
        // it. Letters and digits only (13 of them), so that a scenario can
        // build client ids any server must accept from it (MQTT-3.1.3-5).
        let case = format!("mh{run}c{index:04}");
        let mut client_ids = HashMap::new();
        for (i, c) in scenario.clients.iter().enumerate() {
            let mut id = format!("{case}-{}", c.name);
            if id.len() > 23 {
                id = format!("{case}-c{i}");
            }
            client_ids.insert(c.name.clone(), id);
        }
        Vars {
            run: run.to_string(),
            topic: format!("mqtt-harness/{case}"),
            case,
            client_ids,
            username: super::setup::USER.to_string(),
            password: super::setup::PASSWORD.to_string(),
        }
    }

    /// `s` with its placeholders filled in, as `client` sees them.
    pub fn fill(&self, s: &str, client: &str) -> String {
        if !s.contains('{') {
            return s.to_string();
        }
        let own = self.client_ids.get(client).cloned().unwrap_or_default();
        let mut out = s
            .replace("{topic}", &self.topic)
            .replace("{case}", &self.case)
            .replace("{run}", &self.run)
            .replace("{client_id}", &own)
            .replace("{username}", &self.username)
            .replace("{password}", &self.password);
        for (name, id) in &self.client_ids {
            out = out.replace(&format!("{{client:{name}}}"), id);
        }
        out
    }

    /// A value to send: placeholders filled, each `$name` replaced by its
    /// capture (an error names a capture used before it was made).
    pub fn to_send(
        &self,
        v: &Value,
        client: &str,
        captures: &HashMap<String, Value>,
    ) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) if is_capture(s) => {
                captures
                    .get(s.trim_start_matches('$'))
                    .cloned()
                    .ok_or_else(|| format!("`{s}` is used before an expect step captured it"))?
            }
            Value::String(s) => Value::String(self.fill(s, client)),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.to_send(x, client, captures))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| Ok((k.clone(), self.to_send(x, client, captures)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// An expected value: placeholders filled; `$name` stays, for matching.
    pub fn to_expect(&self, v: &Value, client: &str) -> Value {
        match v {
            Value::String(s) if is_capture(s) => v.clone(),
            Value::String(s) => Value::String(self.fill(s, client)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.to_expect(x, client)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.to_expect(x, client)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let s = crate::scenario::parse_scenario(
            "x.yaml",
            "name: x\nstatements:\n  \"5.0\": [MQTT-3.12.4-1]\nclients:\n  a: {}\n  a-very-long-client-name: {}\nsteps:\n  - a: { send: PINGREQ }\n",
        )
        .expect("parses");
        Vars::new(&s, "abc123", 7)
    }

    #[test]
    fn placeholders_and_client_ids() {
        let v = vars();
        assert_eq!(v.case, "mhabc123c0007");
        assert_eq!(v.fill("{topic}/x", "a"), "mqtt-harness/mhabc123c0007/x");
        assert_eq!(v.fill("{client_id}", "a"), "mhabc123c0007-a");
        // Longer than 23 characters: by position instead.
        assert_eq!(
            v.fill("{client:a-very-long-client-name}", "a"),
            "mhabc123c0007-c1"
        );
    }

    #[test]
    fn captures_are_used_in_sends_and_kept_in_expects() {
        let v = vars();
        let caps: HashMap<String, Value> = [("m".to_string(), json!(7))].into_iter().collect();
        assert_eq!(
            v.to_send(&json!({"id": "$m", "topic": "{case}"}), "a", &caps),
            Ok(json!({"id": 7, "topic": "mhabc123c0007"}))
        );
        assert!(v
            .to_send(&json!({"id": "$n"}), "a", &caps)
            .unwrap_err()
            .contains("`$n` is used before"));
        assert_eq!(
            v.to_expect(&json!(["$m", "{run}"]), "a"),
            json!(["$m", "abc123"])
        );
    }
}
