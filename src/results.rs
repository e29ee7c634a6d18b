//! The result model of a run: one [`CaseResult`] per scenario × protocol and
//! one [`StatementResult`] per (protocol, statement id). Every reporter
//! (`report::console`, `report::json`, `report::junit`, `report::html`) renders this
//! model and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use mqtt_codec::{catalogue, Protocol};
use mqtt_net::LogEntry;

use crate::scenario::Pos;

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Every step went as the scenario says.
    Pass,
    /// The broker did something the scenario (the spec) does not allow.
    Fail,
    /// The scenario does not apply: a missing optional feature or version.
    Skip,
    /// The case could not run: the target is unreachable, the harness broke.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a case failed: the step, what it expected, what came.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// 1-based step number (0: the automatic connect before the steps).
    pub step: usize,
    pub pos: Option<Pos>,
    pub expected: String,
    /// What arrived, decoded (JSON) or described ("nothing within 5 s").
    pub got: String,
    /// The bytes that arrived, if any.
    pub got_hex: Option<String>,
}

/// The outcome of one scenario under one protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// The scenario's id (`v5/3.12-pingreq/pingresp`).
    pub id: String,
    pub file: String,
    pub name: String,
    pub protocol: Protocol,
    pub status: Status,
    /// The statement ids it checks under this protocol.
    pub statements: Vec<String>,
    pub duration: Duration,
    /// Why it failed, was skipped or errored; `None` when it passed.
    pub message: Option<String>,
    pub failure: Option<Failure>,
    /// The packets exchanged (kept for failures and errors).
    pub exchange: Vec<LogEntry>,
}

impl CaseResult {
    /// The catalogue summaries of its statements, for failure reports.
    pub fn statement_summaries(&self) -> Vec<(String, &'static str)> {
        self.statements
            .iter()
            .map(|id| {
                let summary = catalogue::lookup(self.protocol, id).map_or("", |s| s.summary);
                (id.clone(), summary)
            })
            .collect()
    }
}

/// A statement's verdict over the run: fail if any case citing it failed,
/// else pass if any passed, else skip (error counts as neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementResult {
    pub id: String,
    pub protocol: Protocol,
    pub status: Status,
    /// The cases citing it (`id [protocol]`).
    pub cases: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub errors: usize,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    /// The broker the cases ran against (`mqtt://127.0.0.1:40123`, embedded or not).
    pub target: String,
    pub cases: Vec<CaseResult>,
    pub statements: Vec<StatementResult>,
    pub duration: Duration,
    /// Known divergences (scenario id, protocol) from a baseline: their
    /// failures do not fail the run.
    pub baseline: BTreeSet<(String, Protocol)>,
    /// Baseline entries that may pass or fail from run to run.
    pub intermittent: BTreeSet<(String, Protocol)>,
}

impl RunReport {
    pub fn new(target: String, mut cases: Vec<CaseResult>, duration: Duration) -> RunReport {
        cases.sort_by(|a, b| (&a.id, a.protocol).cmp(&(&b.id, b.protocol)));
        let statements = statement_results(&cases);
        RunReport {
            target,
            cases,
            statements,
            duration,
            baseline: BTreeSet::new(),
            intermittent: BTreeSet::new(),
        }
    }

    /// Whether this case's failure is a known divergence.
    pub fn is_known(&self, c: &CaseResult) -> bool {
        self.baseline.contains(&(c.id.clone(), c.protocol))
    }

    /// Failed cases that the baseline does not list.
    pub fn new_failures(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.status == Status::Fail && !self.is_known(c))
            .count()
    }

    /// Baseline entries whose case ran and passed: fixed, to remove from the
    /// baseline (intermittent entries excepted).
    pub fn fixed(&self) -> Vec<&CaseResult> {
        self.cases
            .iter()
            .filter(|c| {
                self.is_known(c)
                    && matches!(c.status, Status::Pass)
                    && !self.intermittent.contains(&(c.id.clone(), c.protocol))
            })
            .collect()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.cases {
            match c.status {
                Status::Pass => s.passed += 1,
                Status::Fail => s.failed += 1,
                Status::Skip => s.skipped += 1,
                Status::Error => s.errors += 1,
            }
        }
        s
    }

    /// 0 when nothing failed (but known divergences of the baseline), nothing
    /// errored and no baseline entry was fixed; 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.new_failures() > 0 || self.summary().errors > 0 || !self.fixed().is_empty())
    }
}

fn statement_results(cases: &[CaseResult]) -> Vec<StatementResult> {
    let mut by: BTreeMap<(Protocol, String), (Vec<Status>, Vec<String>)> = BTreeMap::new();
    for c in cases {
        for id in &c.statements {
            let e = by.entry((c.protocol, id.clone())).or_default();
            e.0.push(c.status);
            e.1.push(format!("{} [{}]", c.id, c.protocol));
        }
    }
    by.into_iter()
        .map(|((protocol, id), (statuses, cases))| {
            let status = if statuses.contains(&Status::Fail) {
                Status::Fail
            } else if statuses.contains(&Status::Pass) {
                Status::Pass
            } else {
                Status::Skip
            };
            StatementResult {
                id,
                protocol,
                status,
                cases,
            }
        })
        .collect()
}
