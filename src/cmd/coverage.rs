//! `mqtt-harness coverage [PATH…]`: which statements of the catalogue the
//! scenarios check, and, for each one none checks, why.
//!
//! A statement of 3.1.1 counts as checked by a scenario whose 3.1.1 or 3.1
//! cases check it (3.1 cases are judged on the 3.1.1 catalogue); one of 5.0
//! by a scenario whose 5.0 cases check it. "Check" includes the statements a
//! `wait` step names. Where no scenario checks a statement, the reason is
//! one of: it cannot be seen on the wire; it binds the client, which the
//! harness itself is; the project judges that no scenario can check it,
//! for the reason `codec/spec/unchecked.tsv` gives (excluded); no scenario
//! yet sends a packet that breaks it (a client rule the broker must enforce
//! by refusing); or no scenario checks it yet.
//!
//! ```text
//! $ mqtt-harness coverage
//! MQTT 3.1.1: 141 statements — 117 checked, 12 not observable on the wire, 0 bind the client, 3 excluded, 9 not checked yet
//! MQTT 5.0:   251 statements — 200 checked, 9 not observable on the wire, 0 bind the client, 2 excluded, 40 not checked yet
//!
//! Excluded (observable in principle, but no scenario can check it):
//!   MQTT-7.0.0-2    3.1.1  both    A property of an implementation as a whole, not of an exchange: …
//!   …
//!
//! Not checked yet (wire: yes = the broker's own behaviour shows it; reject = …):
//!   MQTT-3.3.5-2    3.1.1  server  yes     For an unauthorized PUBLISH the server either acknowledges it normally per QoS or closes the connection.
//!   …
//! ```
//!
//! `--json` prints the contract of DESIGN.md: `{"statements":[{"id",
//! "protocol","wire","scenarios":[…],"reason"}]}`, one entry per statement
//! of each catalogue, `reason` null where a scenario checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;

use mqtt_codec::catalogue::{self, Binds, Statement, Wire};
use mqtt_codec::Protocol;
use serde_json::json;

use super::{CmdError, Status};
use crate::scenario::Scenario;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Scenario files or directories (searched for *.yaml). Default: scenarios/
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print `{"statements":[{"id","protocol","wire","scenarios":[…],"reason"}]}`.
    #[arg(long)]
    pub json: bool,
}

/// Why no scenario checks a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    NotOnWire,
    BindsClient,
    /// Judged not checkable by any scenario, for this reason
    /// (`codec/spec/unchecked.tsv`).
    Excluded(&'static str),
    /// A client rule a broker shows it enforces by refusing a packet that
    /// breaks it: no scenario sends one yet.
    NoRefusalYet,
    NotYet,
}

impl Gap {
    fn of(st: &Statement) -> Gap {
        if let Some(why) = catalogue::unchecked_reason(st.protocol, st.id) {
            return Gap::Excluded(why);
        }
        match (st.wire, st.binds) {
            (Wire::No, _) => Gap::NotOnWire,
            (Wire::Yes, Binds::Client) => Gap::BindsClient,
            (Wire::Reject, _) => Gap::NoRefusalYet,
            (Wire::Yes, _) => Gap::NotYet,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Gap::NotOnWire => "not observable on the wire",
            Gap::BindsClient => "binds the client, which the harness itself is",
            Gap::Excluded(why) => why,
            Gap::NoRefusalYet => {
                "no scenario yet sends a packet that breaks it to see the broker refuse it"
            }
            Gap::NotYet => "no scenario checks it yet",
        }
    }

    /// Whether a scenario could check it: the gaps left to close.
    fn open(self) -> bool {
        matches!(self, Gap::NoRefusalYet | Gap::NotYet)
    }
}

/// Why no scenario checks `st` (for the book): what `coverage` says of it.
pub(crate) fn gap_reason(st: &Statement) -> &'static str {
    Gap::of(st).reason()
}

/// One statement of a catalogue and the scenarios that check it.
struct Row {
    st: &'static Statement,
    scenarios: Vec<String>,
}

impl Row {
    fn gap(&self) -> Option<Gap> {
        self.scenarios.is_empty().then(|| Gap::of(self.st))
    }
}

/// Every statement of both catalogues with the scenarios that check it.
fn rows(scenarios: &[Scenario]) -> Vec<Row> {
    // (catalogue version, id) → scenario ids.
    let mut by: BTreeMap<(Protocol, String), BTreeSet<String>> = BTreeMap::new();
    for s in scenarios {
        for &p in &s.protocols {
            for id in s.checked_statements(p) {
                by.entry((p.catalogue_version(), id))
                    .or_default()
                    .insert(s.id.clone());
            }
        }
    }
    [Protocol::V3_1_1, Protocol::V5]
        .into_iter()
        .flat_map(|p| catalogue::statements(p).iter())
        .map(|st| Row {
            st,
            scenarios: by
                .get(&(st.protocol, st.id.to_string()))
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        })
        .collect()
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let scenarios = super::load_scenarios(&args.paths)?;
    let rows = rows(&scenarios);
    if args.json {
        let statements: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "id": r.st.id,
                    "protocol": r.st.protocol.as_str(),
                    "wire": r.st.wire.as_str(),
                    "scenarios": r.scenarios,
                    "reason": r.gap().map(Gap::reason),
                })
            })
            .collect();
        writeln!(out, "{}", json!({ "statements": statements }))?;
        return Ok(Status::Pass);
    }
    for p in [Protocol::V3_1_1, Protocol::V5] {
        let of: Vec<&Row> = rows.iter().filter(|r| r.st.protocol == p).collect();
        let count = |f: &dyn Fn(Option<Gap>) -> bool| of.iter().filter(|r| f(r.gap())).count();
        writeln!(
            out,
            "MQTT {:<6} {} statements — {} checked, {} not observable on the wire, {} bind the client, {} excluded, {} not checked yet",
            format!("{}:", p.as_str()),
            of.len(),
            count(&|g| g.is_none()),
            count(&|g| g == Some(Gap::NotOnWire)),
            count(&|g| g == Some(Gap::BindsClient)),
            count(&|g| matches!(g, Some(Gap::Excluded(_)))),
            count(&|g| g.is_some_and(Gap::open)),
        )?;
    }
    let excluded: Vec<(&Row, &str)> = rows
        .iter()
        .filter_map(|r| match r.gap() {
            Some(Gap::Excluded(why)) => Some((r, why)),
            _ => None,
        })
        .collect();
    if !excluded.is_empty() {
        writeln!(
            out,
            "\nExcluded (observable in principle, but no scenario can check it):"
        )?;
        for (r, why) in excluded {
            writeln!(
                out,
                "  {:<15} {:<5}  {:<6}  {}",
                r.st.id,
                r.st.protocol.as_str(),
                r.st.binds.as_str(),
                why
            )?;
        }
    }
    let todo: Vec<&Row> = rows
        .iter()
        .filter(|r| r.gap().is_some_and(Gap::open))
        .collect();
    if !todo.is_empty() {
        writeln!(
            out,
            "\nNot checked yet (wire: yes = the broker's own behaviour shows it; reject = the broker must refuse a packet that breaks it):"
        )?;
        for r in todo {
            writeln!(
                out,
                "  {:<15} {:<5}  {:<6}  {:<6}  {}",
                r.st.id,
                r.st.protocol.as_str(),
                r.st.binds.as_str(),
                r.st.wire.as_str(),
                r.st.summary
            )?;
        }
    }
    Ok(Status::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Scenario {
        crate::scenario::parse_scenario("x.yaml", text).expect("the scenario parses")
    }

    #[test]
    fn excluded_statements_give_their_reason_and_no_scenario_checks_them() {
        let library = crate::library::load().expect("the built-in library parses");
        let rows = rows(&library);
        for u in catalogue::unchecked() {
            let r = rows
                .iter()
                .find(|r| r.st.protocol == u.protocol && r.st.id == u.id)
                .expect("a catalogue row");
            assert!(
                r.scenarios.is_empty(),
                "{} {} is excluded, yet {:?} check it: remove the row",
                u.id,
                u.protocol,
                r.scenarios
            );
            assert_eq!(r.gap(), Some(Gap::Excluded(u.reason)));
            assert!(!Gap::Excluded(u.reason).open());
        }
    }

    #[test]
    fn statements_are_counted_per_catalogue_with_reasons() {
        // Runs under 3.1 and 3.1.1 (both judged on the 3.1.1 catalogue) and 5.0.
        let s = scenario(
            "name: ping
statements:
  \"3.1.1\": [MQTT-3.12.4-1]
  \"5.0\": [MQTT-3.12.4-1]
protocols: [\"3.1\", \"3.1.1\", \"5.0\"]
clients:
  c: {}
steps:
  - c: { send: PINGREQ }
  - c: { expect: PINGRESP }
",
        );
        let rows = rows(&[s]);
        let find = |p: Protocol, id: &str| {
            rows.iter()
                .find(|r| r.st.protocol == p && r.st.id == id)
                .expect("a catalogue row")
        };
        for p in [Protocol::V3_1_1, Protocol::V5] {
            let ping = find(p, "MQTT-3.12.4-1");
            assert_eq!(ping.scenarios, ["x"], "{p}");
            assert_eq!(ping.gap(), None);
        }
        assert_eq!(
            rows.len(),
            catalogue::statements(Protocol::V3_1_1).len()
                + catalogue::statements(Protocol::V5).len()
        );
        // Every unchecked row has the reason its catalogue entry implies.
        for r in &rows {
            match r.gap() {
                None => assert!(!r.scenarios.is_empty()),
                Some(Gap::NotOnWire) => assert_eq!(r.st.wire, Wire::No, "{}", r.st.id),
                Some(Gap::BindsClient) => {
                    assert_eq!((r.st.wire, r.st.binds), (Wire::Yes, Binds::Client))
                }
                Some(Gap::Excluded(why)) => {
                    assert_eq!(
                        catalogue::unchecked_reason(r.st.protocol, r.st.id),
                        Some(why)
                    )
                }
                Some(Gap::NoRefusalYet) => assert_eq!(r.st.wire, Wire::Reject, "{}", r.st.id),
                Some(Gap::NotYet) => assert_eq!(r.st.wire, Wire::Yes, "{}", r.st.id),
            }
        }
    }
}
