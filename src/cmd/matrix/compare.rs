//! The comparison behind `mqtt-harness matrix`: one [`Column`] per broker,
//! read from a `run --json` report (the contract of DESIGN.md, so committed
//! reports and live runs go through the same code), and a [`Matrix`] of
//! statements × brokers.
//!
//! A statement's cell for one broker is, over the cases citing it:
//! **fail** if a case failed it (the statement is among the case's
//! `failed_statements`) and the baseline does not list that case; **known**
//! if every case that failed it is listed; else **pass** if a case passed
//! it; else **error** if a case citing it could not run; else **skip**.

use std::collections::{BTreeMap, BTreeSet};

use mqtt_codec::{catalogue, Protocol};
use serde_json::Value;

use crate::baseline::Baseline;

/// A statement's verdict on one broker, in increasing precedence: when the
/// cases citing a statement disagree, the greatest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cell {
    Skip,
    Error,
    Pass,
    Known,
    Fail,
}

impl Cell {
    pub const ALL: [Cell; 5] = [Cell::Pass, Cell::Fail, Cell::Known, Cell::Skip, Cell::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Cell::Skip => "skip",
            Cell::Error => "error",
            Cell::Pass => "pass",
            Cell::Known => "known",
            Cell::Fail => "fail",
        }
    }
}

/// Counts of cases or statements by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub known: usize,
    pub skip: usize,
    pub error: usize,
}

impl Totals {
    pub fn add(&mut self, c: Cell) {
        match c {
            Cell::Pass => self.pass += 1,
            Cell::Fail => self.fail += 1,
            Cell::Known => self.known += 1,
            Cell::Skip => self.skip += 1,
            Cell::Error => self.error += 1,
        }
    }

    pub fn get(&self, c: Cell) -> usize {
        match c {
            Cell::Pass => self.pass,
            Cell::Fail => self.fail,
            Cell::Known => self.known,
            Cell::Skip => self.skip,
            Cell::Error => self.error,
        }
    }
}

/// One statement's verdict on one broker, and the cases that decided it
/// (the failing ones for fail and known; `id [protocol]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub cell: Cell,
    pub cases: Vec<String>,
}

/// What is wrong with a broker's baseline, seen from its run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaselineProblems {
    /// Entries naming no case of the run (a renamed scenario, a version not run).
    pub stale: Vec<(String, Protocol)>,
    /// Entries, not marked intermittent, whose case passed.
    pub fixed: Vec<(String, Protocol)>,
}

impl BaselineProblems {
    pub fn is_empty(&self) -> bool {
        self.stale.is_empty() && self.fixed.is_empty()
    }
}

/// One broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// Where its results come from: the URL it ran against, or the report file.
    pub source: String,
    /// The cases by verdict (fail: not in the baseline).
    pub cases: Totals,
    /// The statements by verdict.
    pub statements: Totals,
    pub cells: BTreeMap<(Protocol, String), Verdict>,
    pub baseline: BaselineProblems,
    /// Why nothing could be run against it (every case an error), if so.
    pub unreachable: Option<String>,
    pub duration_ms: u64,
}

impl Column {
    /// Whether it diverges beyond its baseline (or its baseline is not exact).
    pub fn diverges(&self) -> bool {
        self.cases.fail > 0 || !self.baseline.is_empty()
    }
}

struct CaseEntry {
    key: (String, Protocol),
    status: Cell,
    statements: Vec<String>,
    failed: Vec<String>,
    known: bool,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn protocol_of(v: &Value, what: &str) -> Result<Protocol, String> {
    let p = v.get("protocol").and_then(Value::as_str).unwrap_or("");
    Protocol::parse(p).ok_or_else(|| format!("{what} has no valid `protocol` (`{p}`)"))
}

fn status_of(v: &Value, what: &str) -> Result<Cell, String> {
    match v.get("status").and_then(Value::as_str) {
        Some("pass") => Ok(Cell::Pass),
        Some("fail") => Ok(Cell::Fail),
        Some("skip") => Ok(Cell::Skip),
        Some("error") => Ok(Cell::Error),
        other => Err(format!(
            "{what} has no valid `status` ({other:?}; pass, fail, skip or error)"
        )),
    }
}

/// A broker's column from its `run --json` report. A case is a known
/// divergence when it failed and the report marks it `known`, or
/// `baseline` lists it; `baseline` also gives the stale and fixed entries.
pub fn column(
    name: &str,
    source: &str,
    report: &Value,
    baseline: Option<&Baseline>,
) -> Result<Column, String> {
    let scenarios = report
        .get("scenarios")
        .and_then(Value::as_array)
        .ok_or("the report has no `scenarios` list: is it a `run --json` report?")?;
    let mut cases = Vec::with_capacity(scenarios.len());
    for (i, s) in scenarios.iter().enumerate() {
        let id = s
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("scenarios[{i}] has no `id`"))?
            .to_string();
        let what = format!("scenarios[{i}] ({id})");
        let protocol = protocol_of(s, &what)?;
        let status = status_of(s, &what)?;
        let key = (id, protocol);
        let listed = baseline.is_some_and(|b| b.known.contains(&key));
        let marked = s.get("known").and_then(Value::as_bool).unwrap_or(false);
        cases.push(CaseEntry {
            status,
            statements: strings(s, "statements"),
            failed: strings(s, "failed_statements"),
            known: status == Cell::Fail && (listed || marked),
            key,
        });
    }

    let mut totals = Totals::default();
    for c in &cases {
        totals.add(match c.status {
            Cell::Fail if c.known => Cell::Known,
            other => other,
        });
    }

    // The report's own per-statement verdicts, refined by the baseline.
    let mut cells = BTreeMap::new();
    let listed = report
        .get("statements")
        .and_then(Value::as_array)
        .ok_or("the report has no `statements` list: is it a `run --json` report?")?;
    for (i, st) in listed.iter().enumerate() {
        let id = st
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("statements[{i}] has no `id`"))?
            .to_string();
        let what = format!("statements[{i}] ({id})");
        let protocol = protocol_of(st, &what)?;
        let status = status_of(st, &what)?;
        let citing: Vec<&CaseEntry> = cases
            .iter()
            .filter(|c| c.key.1 == protocol && c.statements.contains(&id))
            .collect();
        let verdict = match status {
            Cell::Fail => {
                // The cases that failed this statement; a report without
                // `failed_statements` charges every failed case citing it.
                let mut failing: Vec<&CaseEntry> = citing
                    .iter()
                    .copied()
                    .filter(|c| c.status == Cell::Fail && c.failed.contains(&id))
                    .collect();
                if failing.is_empty() {
                    failing = citing
                        .iter()
                        .copied()
                        .filter(|c| c.status == Cell::Fail)
                        .collect();
                }
                let all_known = !failing.is_empty() && failing.iter().all(|c| c.known);
                Verdict {
                    cell: if all_known { Cell::Known } else { Cell::Fail },
                    cases: failing.iter().map(|c| case_name(&c.key)).collect(),
                }
            }
            Cell::Skip if citing.iter().any(|c| c.status == Cell::Error) => Verdict {
                cell: Cell::Error,
                cases: Vec::new(),
            },
            other => Verdict {
                cell: other,
                cases: Vec::new(),
            },
        };
        cells.insert((protocol, id), verdict);
    }
    let mut statements = Totals::default();
    for v in cells.values() {
        statements.add(v.cell);
    }

    let unreachable =
        (!cases.is_empty() && cases.iter().all(|c| c.status == Cell::Error)).then(|| {
            let first = scenarios
                .first()
                .and_then(|s| s.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("every case could not run");
            format!("every case could not run; the first: {first}")
        });

    let mut problems = BaselineProblems::default();
    if let (Some(b), None) = (baseline, &unreachable) {
        let ran: BTreeMap<&(String, Protocol), Cell> =
            cases.iter().map(|c| (&c.key, c.status)).collect();
        for key in &b.known {
            match ran.get(key) {
                None => problems.stale.push(key.clone()),
                Some(Cell::Pass) if !b.intermittent.contains(key) => {
                    problems.fixed.push(key.clone())
                }
                Some(_) => {}
            }
        }
    }

    let duration_ms = report
        .get("summary")
        .and_then(|s| s.get("duration_ms"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(Column {
        name: name.to_string(),
        source: source.to_string(),
        cases: totals,
        statements,
        cells,
        baseline: problems,
        unreachable,
        duration_ms,
    })
}

fn case_name(key: &(String, Protocol)) -> String {
    format!("{} [{}]", key.0, key.1.as_str())
}

/// One statement's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub summary: &'static str,
    /// One per column; `None` where that broker's run had no case citing it.
    pub cells: Vec<Option<Verdict>>,
}

/// The statements of one section of one version, with totals per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub protocol: Protocol,
    /// `3.1`, `4.7`…
    pub number: String,
    pub title: &'static str,
    pub rows: Vec<Row>,
    pub totals: Vec<Totals>,
}

/// Brokers side by side, statement by statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub columns: Vec<Column>,
    pub sections: Vec<Section>,
}

impl Matrix {
    pub fn new(columns: Vec<Column>) -> Matrix {
        let keys: BTreeSet<&(Protocol, String)> =
            columns.iter().flat_map(|c| c.cells.keys()).collect();
        let mut by_section: BTreeMap<(Protocol, Vec<u32>), Section> = BTreeMap::new();
        for key in keys {
            let (protocol, id) = key;
            let stmt = catalogue::lookup(*protocol, id);
            let number = stmt.map_or_else(|| section_of_id(id), |s| chapter(s.section));
            let order: Vec<u32> = number.split('.').filter_map(|n| n.parse().ok()).collect();
            let section = by_section
                .entry((*protocol, order))
                .or_insert_with(|| Section {
                    protocol: *protocol,
                    title: section_title(*protocol, &number),
                    number,
                    rows: Vec::new(),
                    totals: vec![Totals::default(); columns.len()],
                });
            let cells: Vec<Option<Verdict>> =
                columns.iter().map(|c| c.cells.get(key).cloned()).collect();
            for (t, cell) in section.totals.iter_mut().zip(&cells) {
                if let Some(v) = cell {
                    t.add(v.cell);
                }
            }
            section.rows.push(Row {
                id: id.clone(),
                summary: stmt.map_or("", |s| s.summary),
                cells,
            });
        }
        let mut sections: Vec<Section> = by_section.into_values().collect();
        for s in &mut sections {
            s.rows.sort_by_key(|r| id_order(&r.id));
        }
        Matrix { columns, sections }
    }

    /// 0 when every broker has nothing outside its baseline, 3 when one could
    /// not be run against (or some of its cases could not run), else 1.
    pub fn exit_code(&self) -> u8 {
        if self
            .columns
            .iter()
            .any(|c| c.unreachable.is_some() || c.cases.error > 0)
        {
            3
        } else if self.columns.iter().any(Column::diverges) {
            1
        } else {
            0
        }
    }
}

/// `3.1.2.3` → `3.1`; `6` → `6`.
pub fn chapter(section: &str) -> String {
    let parts: Vec<&str> = section.split('.').filter(|p| !p.is_empty()).collect();
    parts.iter().take(2).copied().collect::<Vec<_>>().join(".")
}

/// `MQTT-3.1.2-3` → `3.1`, for an id the catalogue does not know.
fn section_of_id(id: &str) -> String {
    let middle = id.split('-').nth(1).unwrap_or("");
    chapter(middle)
}

/// `MQTT-3.1.2-10` sorts after `MQTT-3.1.2-9`.
fn id_order(id: &str) -> Vec<u32> {
    id.split(['-', '.'])
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The section's heading in the version's standard.
pub fn section_title(protocol: Protocol, number: &str) -> &'static str {
    let v5 = protocol == Protocol::V5;
    match number {
        "1.5" if v5 => "Data representation",
        "1.5" => "Data representations",
        "2.1" => "Structure of an MQTT Control Packet",
        "2.2" if v5 => "Variable Header",
        "2.2" => "Fixed header",
        "2.3" => "Variable header",
        "3.1" => "CONNECT",
        "3.2" => "CONNACK",
        "3.3" => "PUBLISH",
        "3.4" => "PUBACK",
        "3.5" => "PUBREC",
        "3.6" => "PUBREL",
        "3.7" => "PUBCOMP",
        "3.8" => "SUBSCRIBE",
        "3.9" => "SUBACK",
        "3.10" => "UNSUBSCRIBE",
        "3.11" => "UNSUBACK",
        "3.12" => "PINGREQ",
        "3.13" => "PINGRESP",
        "3.14" => "DISCONNECT",
        "3.15" => "AUTH",
        "4.1" if v5 => "Session State",
        "4.1" => "Storing state",
        "4.2" => "Network Connections",
        "4.3" => "Quality of Service levels and protocol flows",
        "4.4" => "Message delivery retry",
        "4.5" => "Message receipt",
        "4.6" => "Message ordering",
        "4.7" => "Topic Names and Topic Filters",
        "4.8" if v5 => "Subscriptions",
        "4.8" => "Handling errors",
        "4.9" => "Flow Control",
        "4.10" => "Request / Response",
        "4.11" => "Server redirection",
        "4.12" => "Enhanced authentication",
        "4.13" => "Handling errors",
        "6" => "Using WebSocket as a network transport",
        "7" | "7.1" => "Conformance",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Two hand-made reports of the same two scenarios: broker A fails the
    /// PINGREQ statement (listed in its baseline) and passes the CONNECT one;
    /// broker B passes PINGREQ, fails CONNECT (not listed) and skips 5.0.
    fn reports() -> (Value, Value) {
        let a = json!({
            "summary": {"passed": 1, "failed": 1, "skipped": 0, "errors": 0, "duration_ms": 900},
            "scenarios": [
                {"id": "shared/3.12-pingreq/pingresp", "protocol": "3.1.1", "status": "fail",
                 "statements": ["MQTT-3.12.4-1"], "failed_statements": ["MQTT-3.12.4-1"]},
                {"id": "shared/3.1-connect/accepted", "protocol": "3.1.1", "status": "pass",
                 "statements": ["MQTT-3.1.0-1", "MQTT-3.2.0-1"], "failed_statements": []},
                {"id": "shared/3.1-connect/accepted", "protocol": "5.0", "status": "pass",
                 "statements": ["MQTT-3.1.0-1"], "failed_statements": []}
            ],
            "statements": [
                {"id": "MQTT-3.1.0-1", "protocol": "3.1.1", "status": "pass"},
                {"id": "MQTT-3.2.0-1", "protocol": "3.1.1", "status": "pass"},
                {"id": "MQTT-3.12.4-1", "protocol": "3.1.1", "status": "fail"},
                {"id": "MQTT-3.1.0-1", "protocol": "5.0", "status": "pass"}
            ]
        });
        let b = json!({
            "summary": {"passed": 1, "failed": 1, "skipped": 1, "errors": 0, "duration_ms": 700},
            "scenarios": [
                {"id": "shared/3.12-pingreq/pingresp", "protocol": "3.1.1", "status": "pass",
                 "statements": ["MQTT-3.12.4-1"], "failed_statements": []},
                {"id": "shared/3.1-connect/accepted", "protocol": "3.1.1", "status": "fail",
                 "statements": ["MQTT-3.1.0-1", "MQTT-3.2.0-1"], "failed_statements": ["MQTT-3.2.0-1"]},
                {"id": "shared/3.1-connect/accepted", "protocol": "5.0", "status": "skip",
                 "statements": ["MQTT-3.1.0-1"], "failed_statements": []}
            ],
            "statements": [
                {"id": "MQTT-3.1.0-1", "protocol": "3.1.1", "status": "pass"},
                {"id": "MQTT-3.2.0-1", "protocol": "3.1.1", "status": "fail"},
                {"id": "MQTT-3.12.4-1", "protocol": "3.1.1", "status": "pass"},
                {"id": "MQTT-3.1.0-1", "protocol": "5.0", "status": "skip"}
            ]
        });
        (a, b)
    }

    fn cell(m: &Matrix, p: Protocol, id: &str, col: usize) -> Option<Cell> {
        m.sections
            .iter()
            .filter(|s| s.protocol == p)
            .flat_map(|s| &s.rows)
            .find(|r| r.id == id)
            .and_then(|r| r.cells.get(col).cloned().flatten())
            .map(|v| v.cell)
    }

    #[test]
    fn two_reports_compared_statement_by_statement() {
        let (a, b) = reports();
        let baseline = crate::baseline::parse(
            "a.json",
            r#"{"divergences":[{"id":"shared/3.12-pingreq/pingresp","protocol":"3.1.1"}]}"#,
        )
        .unwrap();
        let a = column("A", "a.json", &a, Some(&baseline)).unwrap();
        let b = column("B", "b.json", &b, None).unwrap();
        assert_eq!(
            (a.cases, b.cases),
            (
                Totals {
                    pass: 2,
                    known: 1,
                    ..Totals::default()
                },
                Totals {
                    pass: 1,
                    fail: 1,
                    skip: 1,
                    ..Totals::default()
                }
            )
        );
        assert!(!a.diverges() && b.diverges());
        let m = Matrix::new(vec![a, b]);
        let v311 = Protocol::V3_1_1;
        assert_eq!(cell(&m, v311, "MQTT-3.12.4-1", 0), Some(Cell::Known));
        assert_eq!(cell(&m, v311, "MQTT-3.12.4-1", 1), Some(Cell::Pass));
        // Only the statement B's failing step checks fails; the other passes.
        assert_eq!(cell(&m, v311, "MQTT-3.2.0-1", 1), Some(Cell::Fail));
        assert_eq!(cell(&m, v311, "MQTT-3.1.0-1", 1), Some(Cell::Pass));
        assert_eq!(cell(&m, Protocol::V5, "MQTT-3.1.0-1", 1), Some(Cell::Skip));
        // Sections in the standard's order, per version, with totals.
        let heads: Vec<(Protocol, &str, &str)> = m
            .sections
            .iter()
            .map(|s| (s.protocol, s.number.as_str(), s.title))
            .collect();
        assert_eq!(
            heads,
            [
                (v311, "3.1", "CONNECT"),
                (v311, "3.2", "CONNACK"),
                (v311, "3.12", "PINGREQ"),
                (Protocol::V5, "3.1", "CONNECT")
            ]
        );
        let pingreq = &m.sections[2];
        assert_eq!(
            pingreq.totals[0],
            Totals {
                known: 1,
                ..Totals::default()
            }
        );
        assert_eq!(
            pingreq.totals[1],
            Totals {
                pass: 1,
                ..Totals::default()
            }
        );
        let failing = pingreq.rows[0].cells[0].as_ref().map(|v| v.cases.clone());
        assert_eq!(
            failing,
            Some(vec!["shared/3.12-pingreq/pingresp [3.1.1]".into()])
        );
        assert_eq!(m.exit_code(), 1);
    }

    #[test]
    fn stale_and_fixed_entries_and_unreachable_brokers() {
        let (a, b) = reports();
        let baseline = crate::baseline::parse(
            "b.json",
            r#"{"divergences":[
                {"id":"shared/3.12-pingreq/pingresp","protocol":"3.1.1"},
                {"id":"gone/scenario","protocol":"5.0"},
                {"id":"shared/3.1-connect/accepted","protocol":"3.1.1"}]}"#,
        )
        .unwrap();
        let b = column("B", "b.json", &b, Some(&baseline)).unwrap();
        assert_eq!(
            b.baseline.fixed,
            [("shared/3.12-pingreq/pingresp".to_string(), Protocol::V3_1_1)]
        );
        assert_eq!(
            b.baseline.stale,
            [("gone/scenario".to_string(), Protocol::V5)]
        );
        assert_eq!(b.cases.fail, 0);
        assert!(
            b.diverges(),
            "a baseline that is not exact fails the matrix"
        );

        let mut down = a.clone();
        for s in down["scenarios"].as_array_mut().unwrap() {
            s["status"] = json!("error");
            s["message"] = json!("connection refused");
        }
        for s in down["statements"].as_array_mut().unwrap() {
            s["status"] = json!("skip");
        }
        let down = column("down", "x", &down, Some(&baseline)).unwrap();
        assert_eq!(
            down.unreachable.as_deref(),
            Some("every case could not run; the first: connection refused")
        );
        assert!(
            down.baseline.is_empty(),
            "no stale entries from a run that did not happen"
        );
        assert_eq!(down.statements.error, 4);
        let ok = column("A", "a", &a, None).unwrap();
        assert_eq!(Matrix::new(vec![ok, down]).exit_code(), 3);
    }

    #[test]
    fn a_report_that_is_not_one_says_so() {
        let e = column("x", "x.json", &json!({"summary": {}}), None).unwrap_err();
        assert!(e.contains("no `scenarios` list"), "{e}");
        let e = column(
            "x",
            "x.json",
            &json!({"scenarios": [{"id": "a", "protocol": "6", "status": "pass"}], "statements": []}),
            None,
        )
        .unwrap_err();
        assert!(
            e.contains("scenarios[0] (a) has no valid `protocol`"),
            "{e}"
        );
    }
}
