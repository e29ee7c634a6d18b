//! The result model of a run: one [`CaseResult`] per scenario × protocol and
//! one [`StatementResult`] per (protocol, statement id). Every reporter
//! (`report::console`, `report::json`, `report::junit`, `report::html`) renders this
//! model and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use mqtt_codec::{catalogue, Protocol};

use crate::client::Exchange;
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
    /// The statements the broker broke in this case: those of the step that
    /// failed (or of the answer that did not decode), not every statement
    /// the case cites. Empty unless it failed.
    pub failed_statements: Vec<String>,
    /// The statements the case saw the broker keep: all of them when it
    /// passed; when it failed, those whose every step ran and passed
    /// before the failure. Statements it never reached are in neither list.
    pub passed_statements: Vec<String>,
    pub duration: Duration,
    /// Why it failed, was skipped or errored; `None` when it passed.
    pub message: Option<String>,
    pub failure: Option<Failure>,
    /// The packets exchanged (kept for failures and errors, and for every
    /// case when `RunOptions::keep_exchanges` is set).
    pub exchange: Vec<Exchange>,
    /// How many times it ran: 1, or more when `--retries` ran it again
    /// after a failure or an error.
    pub attempts: u32,
    /// Why each earlier attempt did not pass (`fail: step 2 …`), oldest first.
    pub earlier: Vec<String>,
}

impl CaseResult {
    /// Failed or errored, then passed on a retry.
    pub fn is_flaky(&self) -> bool {
        self.status == Status::Pass && self.attempts > 1
    }

    /// The case's (scenario id, protocol), as baselines key it.
    pub fn key(&self) -> (String, Protocol) {
        (self.id.clone(), self.protocol)
    }

    /// This case after another attempt `next` of it: the newer result, with
    /// the attempts counted and the reason of this one kept. A retry that was
    /// skipped gives no verdict: the earlier result stands, counted.
    pub fn retried(mut self, mut next: CaseResult) -> CaseResult {
        let why = format!(
            "{}: {}",
            self.status,
            self.message.as_deref().unwrap_or("(no message)")
        );
        if next.status == Status::Skip {
            self.attempts += 1;
            self.earlier.push(why);
            return self;
        }
        next.attempts = self.attempts + 1;
        next.earlier = std::mem::take(&mut self.earlier);
        next.earlier.push(why);
        next
    }

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

/// A statement's verdict over the run: fail if any case failed it (a step
/// checking it failed), else pass if any case passed it, else skip (a case
/// that skipped, errored, or failed before reaching it gives no verdict).
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
    /// Of `passed`: the cases that passed only on a retry.
    pub flaky: usize,
    /// Of `failed`: the failures that the baseline lists.
    pub known: usize,
}

/// What a report shows for a case: its status, with the baseline and the
/// retries taken into account. Every reporter marks a case by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// A failure the baseline does not list: a divergence.
    Fail,
    /// Could not run.
    Error,
    /// A baseline entry that passes now: to remove from the baseline.
    Fixed,
    /// Failed, then passed on a retry.
    Flaky,
    /// A failure the baseline lists.
    Known,
    Skip,
    Pass,
}

impl Mark {
    /// The mark of `c` given whether the baseline lists it (`known`) and as
    /// intermittent.
    pub fn of(c: &CaseResult, known: bool, intermittent: bool) -> Mark {
        match c.status {
            Status::Fail if known => Mark::Known,
            Status::Fail => Mark::Fail,
            Status::Error => Mark::Error,
            Status::Skip => Mark::Skip,
            Status::Pass if c.is_flaky() => Mark::Flaky,
            Status::Pass if known && !intermittent => Mark::Fixed,
            Status::Pass => Mark::Pass,
        }
    }

    /// Whether the recap at the end of a run lists it: what needs a look.
    pub fn needs_attention(self) -> bool {
        matches!(self, Mark::Fail | Mark::Error | Mark::Fixed | Mark::Flaky)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Fail => "fail",
            Mark::Error => "error",
            Mark::Fixed => "fixed",
            Mark::Flaky => "flaky",
            Mark::Known => "known",
            Mark::Skip => "skip",
            Mark::Pass => "pass",
        }
    }
}

/// The signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// How a run ended: the one table of `run`'s exit statuses, which the
/// console, the JSON report (`exit_status`) and JUnit all follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: every case passed or was skipped, or failed only as the baseline lists.
    Conforming,
    /// 1: divergences: a failure the baseline does not list, a baseline entry
    /// fixed or stale, or (with `--fail-on-flaky`) a flaky case.
    Divergences,
    /// 2: bad input or usage: an invalid scenario, baseline or flag.
    BadInput,
    /// 3: cases that could not run: the target is unreachable or broke off.
    /// It wins over 1: such a run has no complete verdict.
    CouldNotRun,
    /// 4: nothing selected: no case to run (`--allow-empty` makes it 0).
    NothingSelected,
    /// 128 + the signal: 130 SIGINT, 143 SIGTERM. The reports hold the cases
    /// that finished before it.
    Interrupted(Signal),
}

/// The exit statuses of `run`, for `--help`, the README and tests.
pub const EXIT_STATUSES: &[(u8, &str)] = &[
    (0, "conforming: every case passed or was skipped, or failed only as the baseline lists"),
    (1, "divergences: a failure not in the baseline, or a baseline entry fixed or stale (or, with --fail-on-flaky, a flaky case)"),
    (2, "bad input or usage: an invalid scenario file, baseline or flag"),
    (3, "cases that could not run: the target is unreachable or broke off (wins over 1)"),
    (4, "nothing selected: no case matches (--allow-empty makes it 0)"),
    (130, "interrupted by SIGINT (143: SIGTERM); the reports hold what finished"),
];

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Conforming => 0,
            ExitStatus::Divergences => 1,
            ExitStatus::BadInput => 2,
            ExitStatus::CouldNotRun => 3,
            ExitStatus::NothingSelected => 4,
            ExitStatus::Interrupted(Signal::Interrupt) => 130,
            ExitStatus::Interrupted(Signal::Terminate) => 143,
        }
    }

    /// `conforming`, `divergences`…: the JSON report's `verdict`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitStatus::Conforming => "conforming",
            ExitStatus::Divergences => "divergences",
            ExitStatus::BadInput => "bad_input",
            ExitStatus::CouldNotRun => "could_not_run",
            ExitStatus::NothingSelected => "nothing_selected",
            ExitStatus::Interrupted(_) => "interrupted",
        }
    }
}

/// What a run accepts: the flags that change its exit status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// An empty selection is not an error (`--allow-empty`).
    pub allow_empty: bool,
    /// A flaky case fails the run (`--fail-on-flaky`).
    pub fail_on_flaky: bool,
    /// The run was restricted (`--filter`, `--tag`, `--protocol`, paths):
    /// baseline entries matching no case of it may belong to what it left
    /// out, so they only warn.
    pub restricted: bool,
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
    /// Why each known divergence is accepted: the baseline entry's `message`.
    pub known_reasons: BTreeMap<(String, Protocol), String>,
    /// What the cases came from (`scenarios`, the paths given, `built-in scenarios`).
    pub suite: String,
    /// This program's version.
    pub tool_version: String,
    /// The signal that stopped the run before every case ended.
    pub interrupted: Option<Signal>,
    pub policy: Policy,
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
            known_reasons: BTreeMap::new(),
            suite: String::from("scenarios"),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            interrupted: None,
            policy: Policy::default(),
        }
    }

    /// The baseline's reason for this case, when it lists it with one.
    pub fn known_reason(&self, c: &CaseResult) -> Option<&str> {
        self.known_reasons.get(&c.key()).map(String::as_str)
    }

    /// What the reports show for this case.
    pub fn mark(&self, c: &CaseResult) -> Mark {
        let key = c.key();
        Mark::of(
            c,
            self.baseline.contains(&key),
            self.intermittent.contains(&key),
        )
    }

    /// Baseline entries that match no case of the run: a renamed or deleted
    /// scenario, a version it no longer runs under.
    pub fn stale(&self) -> Vec<&(String, Protocol)> {
        let ran: BTreeSet<(&str, Protocol)> = self
            .cases
            .iter()
            .map(|c| (c.id.as_str(), c.protocol))
            .collect();
        self.baseline
            .iter()
            .filter(|(id, p)| !ran.contains(&(id.as_str(), *p)))
            .collect()
    }

    /// Whether stale baseline entries fail this run (not in a restricted one).
    pub fn stale_fails(&self) -> bool {
        !self.policy.restricted && !self.stale().is_empty()
    }

    /// How the run ended; its exit status. Computed here only.
    pub fn exit_status(&self) -> ExitStatus {
        if let Some(signal) = self.interrupted {
            return ExitStatus::Interrupted(signal);
        }
        if self.cases.is_empty() && !self.policy.allow_empty {
            return ExitStatus::NothingSelected;
        }
        let s = self.summary();
        if s.errors > 0 {
            return ExitStatus::CouldNotRun;
        }
        let flaky_fails = self.policy.fail_on_flaky && s.flaky > 0;
        if self.new_failures() > 0 || !self.fixed().is_empty() || self.stale_fails() || flaky_fails
        {
            return ExitStatus::Divergences;
        }
        ExitStatus::Conforming
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
    /// baseline (intermittent entries, and cases that failed before passing
    /// on a retry, excepted).
    pub fn fixed(&self) -> Vec<&CaseResult> {
        self.cases
            .iter()
            .filter(|c| self.mark(c) == Mark::Fixed)
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
            match self.mark(c) {
                Mark::Flaky => s.flaky += 1,
                Mark::Known => s.known += 1,
                _ => {}
            }
        }
        s
    }

    /// The exit status's code ([`RunReport::exit_status`]).
    pub fn exit_code(&self) -> u8 {
        self.exit_status().code()
    }
}

fn statement_results(cases: &[CaseResult]) -> Vec<StatementResult> {
    let mut by: BTreeMap<(Protocol, String), (Vec<Status>, Vec<String>)> = BTreeMap::new();
    for c in cases {
        for id in &c.statements {
            let status = if c.failed_statements.contains(id) {
                Status::Fail
            } else if c.passed_statements.contains(id) {
                Status::Pass
            } else {
                Status::Skip
            };
            let e = by.entry((c.protocol, id.clone())).or_default();
            e.0.push(status);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, status: Status) -> CaseResult {
        CaseResult {
            id: id.into(),
            file: format!("scenarios/{id}.yaml"),
            name: id.into(),
            protocol: Protocol::V5,
            status,
            statements: vec![],
            failed_statements: vec![],
            passed_statements: vec![],
            duration: Duration::ZERO,
            message: Some(format!("{status} message")),
            failure: None,
            exchange: vec![],
            attempts: 1,
            earlier: vec![],
        }
    }

    fn report(cases: Vec<CaseResult>) -> RunReport {
        RunReport::new("mqtt://h:1".into(), cases, Duration::ZERO)
    }

    fn key(id: &str) -> (String, Protocol) {
        (id.to_string(), Protocol::V5)
    }

    #[test]
    fn each_row_of_the_exit_status_table() {
        let code = |r: &RunReport| r.exit_status().code();
        assert_eq!(
            code(&report(vec![
                case("a", Status::Pass),
                case("b", Status::Skip)
            ])),
            0
        );
        assert_eq!(code(&report(vec![case("a", Status::Fail)])), 1);
        let mut known = report(vec![case("a", Status::Fail)]);
        known.baseline.insert(key("a"));
        assert_eq!(code(&known), 0, "only a baseline divergence");
        let both = report(vec![case("a", Status::Fail), case("b", Status::Error)]);
        assert_eq!(
            code(&both),
            3,
            "a run with cases that could not run has no complete verdict"
        );
        let mut empty = report(vec![]);
        assert_eq!(code(&empty), 4);
        empty.policy.allow_empty = true;
        assert_eq!(code(&empty), 0);
        empty.interrupted = Some(Signal::Interrupt);
        assert_eq!(code(&empty), 130);
        empty.interrupted = Some(Signal::Terminate);
        assert_eq!(code(&empty), 143);
        assert_eq!(ExitStatus::BadInput.code(), 2);
        let codes: Vec<u8> = EXIT_STATUSES.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 130]);
    }

    #[test]
    fn fixed_and_stale_entries_fail_a_whole_run_only() {
        let mut r = report(vec![case("a", Status::Pass)]);
        r.baseline.insert(key("a"));
        assert_eq!(r.mark(&r.cases[0]), Mark::Fixed);
        assert_eq!(r.exit_code(), 1);
        r.intermittent.insert(key("a"));
        assert_eq!(r.exit_code(), 0, "an intermittent entry may pass");
        r.baseline.insert(key("gone"));
        assert_eq!(r.stale(), vec![&key("gone")]);
        assert_eq!(r.exit_code(), 1, "a stale entry fails a whole run");
        r.policy.restricted = true;
        assert_eq!(r.exit_code(), 0, "and only warns in a restricted one");
    }

    #[test]
    fn a_case_that_passes_on_a_retry_is_flaky() {
        let flaky = case("a", Status::Fail).retried(case("a", Status::Pass));
        assert!(flaky.is_flaky());
        assert_eq!(flaky.attempts, 2);
        assert_eq!(flaky.earlier, ["fail: fail message"]);
        let still = case("b", Status::Fail)
            .retried(case("b", Status::Error))
            .retried(case("b", Status::Skip));
        assert_eq!(
            still.status,
            Status::Error,
            "a skipped retry gives no verdict"
        );
        assert_eq!(still.attempts, 3);
        assert!(!still.is_flaky());
        let mut r = report(vec![flaky, still, case("c", Status::Pass)]);
        let s = r.summary();
        assert_eq!((s.passed, s.flaky, s.errors), (2, 1, 1));
        r.cases.retain(|c| c.id != "b");
        assert_eq!(r.exit_code(), 0, "flaky is not a failure…");
        r.policy.fail_on_flaky = true;
        assert_eq!(r.exit_code(), 1, "…unless --fail-on-flaky");
        r.baseline.insert(key("a"));
        assert_eq!(
            r.mark(&r.cases[0]),
            Mark::Flaky,
            "a listed case that failed first is not fixed"
        );
    }
}
