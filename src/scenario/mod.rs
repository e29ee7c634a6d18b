//! Scenario files: a page of the spec as YAML steps.
//!
//! [`parse_scenario`] is a pure function of a file's text. Every error it
//! returns is a [`ParseError`] that names the file, and the line and column
//! of the offending key or value (`scenarios/v5/x.yaml:12:7: unknown field
//! …`), and says what was expected.
//!
//! Every check runs while the YAML parser points at what it checks, which is
//! how its error gets that position. Checks that depend on the rest of the
//! file (a step's client must be declared; a `send` step must make a packet
//! in every version the step runs under) are told the rest by a first, lenient
//! pass over the text (`context.rs`); the second pass (`document.rs`,
//! `steps.rs`, `expect.rs`) checks everything. A `send` step's fields are read
//! by the packet reader ([`crate::packet::Template`]) from the one field table,
//! [`crate::packet::vocab`]; `docs/fields.md` lists it.
//!
//! # The format
//!
//! ```yaml
//! name: PINGREQ is answered with PINGRESP
//! description: optional prose
//! statements:                    # the protocols it runs under default to these keys
//!   "3.1.1": [MQTT-3.12.4-1]
//!   "5.0": [MQTT-3.12.4-1]
//! requires: [qos2]               # skipped where the broker does not offer it
//! setup: login                   # needs a broker configured so (run::setup)
//! tags: [smoke]
//! clients:
//!   c: {}                        # connects (CONNECT, CONNACK 0) before the first step
//!   raw: { connect: false }      # opened but not connected: the steps send CONNECT
//! steps:
//!   - c: { send: PINGREQ }
//!   - c: { expect: PINGRESP }
//!   - c: { expect_silence: 300ms }
//!   - c: disconnect
//! ```
//!
//! A step is one mapping with one client name (or `wait`), and optionally
//! `only: "5.0"` to run it under some protocols only and `statements:` (a
//! list, or a mapping per version) naming the statements it checks. A
//! client's action is
//! `connect`, `disconnect`, `drop`, or a mapping whose action key is one of
//! `send`, `send_hex`, `expect`, `expect_one_of`, `expect_unordered`,
//! `expect_close`, `expect_silence`, `connect`, `disconnect`; `timeout: 2s`
//! bounds an expect step (default 5 s).
//!
//! String values may use `{topic}` (unique per case), `{case}` (a unique
//! token without `/`), `{run}`, `{client_id}` (this client's id) and
//! `{client:<name>}`. In an expect, a value `$name` captures what arrived the
//! first time and must be equal afterwards; in a send it is replaced by the
//! captured value.

mod actions;
mod context;
mod document;
mod expect;
mod load;
mod model;
mod positions;
mod steps;
mod values;

pub use crate::packet::is_capture;
pub use expect::NO_PROPERTIES;
pub use load::{load_file, load_paths};
pub use model::*;
pub use values::parse_duration;
pub(crate) use values::ProtocolName;

use std::path::Path;

use context::Context;
use document::ScenarioSeed;
use serde::de::DeserializeSeed;

/// Parses a scenario from its text. `file` is used in error messages.
pub fn parse_scenario(file: &str, text: &str) -> Result<Scenario, ParseError> {
    let cx = Context::read(text);
    let raw = ScenarioSeed(&cx)
        .deserialize(serde_norway::Deserializer::from_str(text))
        .map_err(|e| ParseError::from_yaml(file, &e))?;
    let protocols = raw
        .protocols
        .unwrap_or_else(|| raw.statements.keys().copied().collect());
    let step_pos = positions::step_positions(text);
    // Positions from the text are used only when they are clearly the steps'.
    let positions_known = step_pos.len() == raw.steps.len();
    let steps = raw
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| Step {
            pos: if positions_known {
                step_pos.get(i).copied()
            } else {
                None
            },
            only: s.only,
            statements: s.statements,
            if_nothing: s.if_nothing,
            action: s.action,
        })
        .collect();
    Ok(Scenario {
        file: file.to_string(),
        id: load::scenario_id(Path::new(file), None),
        name: raw.name,
        description: raw.description,
        statements: raw.statements,
        protocols,
        requires: raw.requires,
        setup: raw.setup,
        tags: raw.tags,
        clients: raw.clients,
        steps,
        timeout: raw.timeout,
    })
}

#[cfg(test)]
mod tests;
