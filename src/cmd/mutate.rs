//! `mqtt-harness mutate [PATH…]`: proof that every check can fail. For each
//! deliberate violation the reference broker offers (`reference-broker
//! --violate list`), the whole scenario library runs against an embedded
//! broker that commits it, and the violation is
//!
//! - **caught** when a scenario citing one of its statements fails, charged
//!   to that statement (the failure names what was broken);
//! - **caught by others** when only other failures show it (a citing
//!   scenario failed on another statement, or an unrelated one failed);
//! - **missed** when every case still passes: no scenario can tell this
//!   broken broker from a compliant one.
//!
//! It also lists the scenarios that fail under many violations: a scenario
//! failing everywhere checks the wrong thing. A first run against the
//! compliant broker must pass entirely, or nothing here would mean anything.
//!
//! ```text
//! $ mqtt-harness mutate
//! caught   MQTT-3.12.4-1  never answers PINGREQ
//!          by shared/3.12-pingreq/pingresp [3.1.1], shared/3.12-pingreq/pingresp [5.0]
//! missed   MQTT-3.3.5-2   …
//! 115 violations: 85 caught, 8 caught only by others, 22 missed (score 73.9%) in 61.2 s
//! ```
//!
//! `--json` prints `{"summary":{"violations","caught","others","missed","score",
//! "duration_ms"},"violations":[{"ids","behaviour","verdict","citing","failed"}],
//! "noisy":[{"scenario","protocol","violations"}]}`. Exit status 1 when a
//! violation is not caught by a scenario citing it, 3 when the compliant
//! broker does not pass the library.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reference_broker::violation::{ViolationInfo, VIOLATIONS};
use serde_json::json;
use tokio::sync::Semaphore;

use super::run::EmbeddedBroker;
use super::{CmdError, Status};
use crate::results::{RunReport, Status as CaseStatus};
use crate::run::{self, RunOptions};
use crate::scenario::Scenario;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Scenario files or directories (searched for *.yaml). Default: scenarios/
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Only the violations that break one of these statements (repeatable).
    #[arg(long = "only", value_name = "ID")]
    pub only: Vec<String>,
    /// Violations tried at once (each against its own embedded broker).
    #[arg(long, default_value_t = 6)]
    pub parallel: usize,
    /// Deadline of each expect step (a broken broker often answers nothing).
    #[arg(long, value_parser = super::run::parse_timeout, default_value = "700ms")]
    pub timeout: Duration,
    /// Print the JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How one violation fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Caught,
    Others,
    Missed,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Caught => "caught",
            Verdict::Others => "others",
            Verdict::Missed => "missed",
        }
    }
}

/// One violation's outcome.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub info: &'static ViolationInfo,
    pub verdict: Verdict,
    /// Failed cases of scenarios citing one of its statements, charged to it.
    pub citing: Vec<String>,
    /// Every failed case (`id [protocol]`).
    pub failed: Vec<String>,
}

/// Judges a run of the library against a broker committing `info`.
pub fn judge(info: &'static ViolationInfo, report: &RunReport) -> Outcome {
    let mut citing = Vec::new();
    let mut failed = Vec::new();
    for c in report.cases.iter().filter(|c| c.status == CaseStatus::Fail) {
        let name = format!("{} [{}]", c.id, c.protocol);
        let on_it = c
            .failed_statements
            .iter()
            .any(|id| info.ids.contains(&id.as_str()));
        if on_it {
            citing.push(name.clone());
        }
        failed.push(name);
    }
    let verdict = if !citing.is_empty() {
        Verdict::Caught
    } else if !failed.is_empty() {
        Verdict::Others
    } else {
        Verdict::Missed
    };
    Outcome {
        info,
        verdict,
        citing,
        failed,
    }
}

/// Runs the library once against a broker with `violation` (none: compliant),
/// keeping every case's exchange when `keep_exchanges` (the book records them).
pub(crate) async fn run_with(
    scenarios: Vec<Scenario>,
    violation: Option<&str>,
    timeout: Duration,
    keep_exchanges: bool,
) -> Result<RunReport, String> {
    let mut config = reference_broker::Config::default();
    if let Some(id) = violation {
        config.violations.add(id)?;
    }
    let broker = EmbeddedBroker::start(config.clone())
        .await
        .map_err(|e| format!("cannot start the embedded reference broker: {e}"))?;
    let mut opts = RunOptions {
        step_timeout: timeout,
        keep_exchanges,
        ..RunOptions::new(broker.target())
    };
    let set_up = super::run::start_setups(&scenarios, &config, &mut opts).await?;
    let report = run::run(scenarios, &opts, |_| {}).await;
    for b in set_up.into_iter().chain([broker]) {
        b.stop().await;
    }
    Ok(report)
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    if args.parallel == 0 {
        return Err(CmdError::Usage(
            "--parallel 0 would try nothing; give 1 or more".into(),
        ));
    }
    let scenarios = super::load_scenarios(&args.paths)?;
    let chosen: Vec<&'static ViolationInfo> = VIOLATIONS
        .iter()
        .filter(|v| {
            args.only.is_empty()
                || v.ids
                    .iter()
                    .any(|id| args.only.iter().any(|o| o.eq_ignore_ascii_case(id)))
        })
        .collect();
    if chosen.is_empty() {
        return Err(CmdError::Usage(format!(
            "no violation breaks {}; `reference-broker --violate list` lists them",
            args.only.join(", ")
        )));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let started = Instant::now();
    let baseline = rt
        .block_on(run_with(scenarios.clone(), None, args.timeout, false))
        .map_err(CmdError::Runtime)?;
    let not_passing: Vec<String> = baseline
        .cases
        .iter()
        .filter(|c| !matches!(c.status, CaseStatus::Pass | CaseStatus::Skip))
        .map(|c| format!("{} [{}]: {}", c.id, c.protocol, c.status))
        .collect();
    if !not_passing.is_empty() {
        return Err(CmdError::Runtime(format!(
            "the compliant reference broker does not pass the library, so no violation can be judged:\n{}",
            not_passing.join("\n")
        )));
    }
    let outcomes = rt
        .block_on(try_all(&scenarios, &chosen, args))
        .map_err(CmdError::Runtime)?;
    let elapsed = started.elapsed();
    if args.json {
        writeln!(out, "{}", render_json(&outcomes, elapsed))?;
    } else {
        render_text(&outcomes, elapsed, out)?;
    }
    let all_caught = outcomes.iter().all(|(o, _)| o.verdict == Verdict::Caught);
    Ok(if all_caught {
        Status::Pass
    } else {
        Status::Fail
    })
}

/// Every chosen violation, `args.parallel` at a time; each outcome with its report.
async fn try_all(
    scenarios: &[Scenario],
    chosen: &[&'static ViolationInfo],
    args: &Args,
) -> Result<Vec<(Outcome, RunReport)>, String> {
    let limit = Arc::new(Semaphore::new(args.parallel));
    let mut tasks = Vec::new();
    for info in chosen.iter().copied() {
        let limit = Arc::clone(&limit);
        let scenarios = scenarios.to_vec();
        let timeout = args.timeout;
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            let first = info.ids.first().copied();
            let report = run_with(scenarios, first, timeout, false).await?;
            Ok::<_, String>((judge(info, &report), report))
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(
            t.await
                .map_err(|e| format!("a mutation run failed: {e}"))??,
        );
    }
    Ok(out)
}

/// Scenarios (× protocol) failing under more than a few violations.
fn noisy(outcomes: &[(Outcome, RunReport)]) -> Vec<(String, usize)> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for (o, _) in outcomes {
        for f in &o.failed {
            *count.entry(f.clone()).or_default() += 1;
        }
    }
    let bound = (outcomes.len() / 10).max(3);
    let mut out: Vec<(String, usize)> = count.into_iter().filter(|(_, n)| *n > bound).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

fn totals(outcomes: &[(Outcome, RunReport)]) -> (usize, usize, usize, f64) {
    let n = |v: Verdict| outcomes.iter().filter(|(o, _)| o.verdict == v).count();
    let caught = n(Verdict::Caught);
    let score = if outcomes.is_empty() {
        0.0
    } else {
        100.0 * caught as f64 / outcomes.len() as f64
    };
    (caught, n(Verdict::Others), n(Verdict::Missed), score)
}

fn render_text(
    outcomes: &[(Outcome, RunReport)],
    elapsed: Duration,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let mut sorted: Vec<&Outcome> = outcomes.iter().map(|(o, _)| o).collect();
    sorted.sort_by_key(|o| std::cmp::Reverse(o.verdict));
    for o in sorted {
        writeln!(
            out,
            "{:<8} {}  {}",
            o.verdict.as_str(),
            o.info.ids.join(", "),
            o.info.behaviour
        )?;
        match o.verdict {
            Verdict::Caught => writeln!(out, "         by {}", o.citing.join(", "))?,
            Verdict::Others => writeln!(
                out,
                "         no failure charged to its statements; failed: {}",
                o.failed.join(", ")
            )?,
            Verdict::Missed => {}
        }
    }
    let noisy = noisy(outcomes);
    if !noisy.is_empty() {
        writeln!(out, "\nScenarios failing under many violations:")?;
        for (case, n) in &noisy {
            writeln!(out, "  {case}: {n} of {}", outcomes.len())?;
        }
    }
    let (caught, others, missed, score) = totals(outcomes);
    writeln!(
        out,
        "\n{} violations: {caught} caught, {others} caught only by others, {missed} missed (score {score:.1}%) in {:.1} s",
        outcomes.len(),
        elapsed.as_secs_f64()
    )
}

fn render_json(outcomes: &[(Outcome, RunReport)], elapsed: Duration) -> serde_json::Value {
    let (caught, others, missed, score) = totals(outcomes);
    let violations: Vec<_> = outcomes
        .iter()
        .map(|(o, _)| {
            json!({
                "ids": o.info.ids,
                "behaviour": o.info.behaviour,
                "verdict": o.verdict.as_str(),
                "citing": o.citing,
                "failed": o.failed,
            })
        })
        .collect();
    let noisy: Vec<_> = noisy(outcomes)
        .into_iter()
        .map(|(case, n)| json!({"case": case, "violations": n}))
        .collect();
    json!({
        "summary": {
            "violations": outcomes.len(),
            "caught": caught,
            "others": others,
            "missed": missed,
            "score": score,
            "duration_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        },
        "violations": violations,
        "noisy": noisy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::CaseResult;

    fn case(id: &str, status: CaseStatus, failed: &[&str]) -> CaseResult {
        let ids: Vec<String> = failed.iter().map(|s| s.to_string()).collect();
        CaseResult {
            statements: ids.clone(),
            failed_statements: ids,
            ..CaseResult::new(id, mqtt_codec::Protocol::V5, status)
        }
    }

    #[test]
    fn a_violation_is_caught_only_by_a_failure_on_its_statement() {
        let info = VIOLATIONS
            .iter()
            .find(|v| v.ids.contains(&"MQTT-3.12.4-1"))
            .expect("the PINGREQ violation");
        let report = |cases| RunReport::new("t".into(), cases, Duration::ZERO);
        let on_it = report(vec![case("a", CaseStatus::Fail, &["MQTT-3.12.4-1"])]);
        assert_eq!(judge(info, &on_it).verdict, Verdict::Caught);
        let elsewhere = report(vec![case("b", CaseStatus::Fail, &["MQTT-3.3.2-3"])]);
        assert_eq!(judge(info, &elsewhere).verdict, Verdict::Others);
        let none = report(vec![case("c", CaseStatus::Pass, &[])]);
        assert_eq!(judge(info, &none).verdict, Verdict::Missed);
    }
}
