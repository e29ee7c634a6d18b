//! The scenario runner: scenarios × protocols as cases, run in parallel
//! against one broker, each step bounded by a deadline.
//!
//! # Layers
//!
//! - [`machine`]: a case as a sans-IO state machine — requests out (open,
//!   send, read until, close, sleep until), replies in, each with the time
//!   it came; an [`case::Ending`] at the end. No socket, no clock.
//! - [`case`]: the logic of a case (connect, steps, probes) on that machine;
//!   [`matching`], [`vars`] and [`verdict`]: the pure parts it uses.
//! - [`driver`]: the thin async loop that carries the requests out on the
//!   network layer.
//! - this module: cases of the scenarios, in parallel, to a [`RunReport`].
//!   Tests drive the machine in memory on a fake clock
//!   (`tests/engine.rs`) and the whole through real sockets.
//!
//! # Statements
//!
//! A step checks its own `statements`, or the scenario's when it names none.
//! A failing step fails only the statements it checks; the statements whose
//! steps all ran and passed before it pass (see [`verdict::attribute`]).
//!
//! # Pass, fail, skip or error
//!
//! A **fail** is a verdict on the broker: it answered, and the answer is not
//! what the spec allows — a wrong packet, a wrong field, a close instead of an
//! answer, silence where an answer is due, or bytes that do not decode. Bytes
//! that do not decode where the CONNACK of a client's automatic connect
//! belongs (or another packet than CONNACK there) fail the case on the
//! statement the answer broke (the decode error's, or MQTT-3.2.0-1), not on
//! the statements the scenario meant to check, which were never reached.
//!
//! An **error** means no verdict could be had: the connection was refused,
//! reset, or closed before any CONNACK; the target did not answer the
//! automatic CONNECT in time or refused it (a CONNACK with a non-zero code:
//! credentials, configuration); a step timed out in a case where nothing at
//! all came back and the target does not answer a fresh, valid CONNECT
//! either (a hung target); or the scenario made no packet.
//!
//! A **skip** means the scenario does not apply: the profile does not list
//! the protocol or rules out a required feature (the CONNACK can withdraw a
//! feature but never brings back one the profile rules out), the CONNACK or
//! a SUBACK shows a feature missing, or the target does not speak the
//! protocol version. The last is known from the profile, from a CONNACK
//! 0x01 / 0x84 to the first CONNECT, or — the rule for brokers that simply
//! close on a version they do not know (MQTT-3.1.2-2 lets a 3.1.1 server do
//! so) — when the target closes the connection on a case's first CONNECT
//! without any CONNACK *and* answers a CONNECT of another version on a fresh
//! connection: "the target does not speak MQTT 3.1". Silence on the CONNECT
//! is judged by a probe: a minimal CONNECT of the version refused with
//! 0x01 / 0x84, or left unanswered while another version's is answered,
//! makes a skip too. A target that closes on every CONNECT speaks nothing:
//! error. A profile that lists the version turns such a close into an error too. A scenario that sends its own
//! CONNECT of the case's version is judged the same way when no connection
//! of the case has been accepted: a refusal of a well-formed one as an
//! unsupported version is a skip, and of a deliberately malformed one too
//! once a probe shows that a valid CONNECT of that version is refused as well.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use mqtt_codec::Protocol;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::net::{LogEntry as Exchange, Target};
use crate::profile::Profile;
use crate::results::{CaseResult, RunReport, Status};
use crate::scenario::{Action, Capability, Scenario};
use setup::Setup;

pub mod case;
pub mod driver;
pub mod machine;
pub mod matching;
pub mod setup;
pub mod vars;
pub mod verdict;

pub use case::Ending;
pub use machine::{Machine, Output, Reply, Request, SendOutcome};
pub use verdict::{CaseError, Stop};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The broker under test.
    pub target: Target,
    /// Cases run at once.
    pub jobs: usize,
    /// Default deadline of each expect step and each connection attempt.
    pub step_timeout: Duration,
    /// Run only under these protocols (empty: every protocol a scenario lists).
    pub protocols: Vec<Protocol>,
    /// Capabilities the target is known not to have (`--without`), on top
    /// of what its profile and its CONNACK say.
    pub without: Vec<Capability>,
    /// What the target offers when it cannot announce it (`--profile`).
    pub profile: Option<Arc<Profile>>,
    /// Cut every `expect_silence` longer than this to this (`--max-silence`):
    /// a faster run that watches for stray packets for less time.
    pub max_silence: Option<Duration>,
    /// Where the clients that name a target connect (`--target-for NAME=URL`).
    pub named_targets: BTreeMap<String, Target>,
    /// Credentials for every CONNECT that does not set its own
    /// (`--username`, `--password`): a broker that requires a login.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Keep the exchange of every case, passing ones too (`-v`, `--html`);
    /// otherwise only of those that did not pass.
    pub keep_exchanges: bool,
    /// The targets set up as a scenario's `setup:` needs; a case whose
    /// set-up is not here is skipped.
    pub setups: BTreeMap<Setup, SetupTarget>,
}

/// A target set up as a [`Setup`] says, and the credentials it takes.
#[derive(Debug, Clone)]
pub struct SetupTarget {
    pub target: Target,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl RunOptions {
    /// The defaults, against `target`.
    pub fn new(target: Target) -> RunOptions {
        RunOptions {
            target,
            jobs: default_jobs(),
            step_timeout: Duration::from_secs(5),
            protocols: Vec::new(),
            without: Vec::new(),
            profile: None,
            max_silence: None,
            named_targets: BTreeMap::new(),
            username: None,
            password: None,
            keep_exchanges: false,
            setups: BTreeMap::new(),
        }
    }
}

/// Available parallelism × 16: a case spends nearly all its time waiting on
/// the network or on a spec timer (keep alive, expiry), not on a core, and
/// the suite's wall time is bounded below by its total case time ÷ jobs.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()) * 16
}

/// One scenario under one protocol.
#[derive(Debug, Clone)]
pub struct Case {
    pub scenario: Arc<Scenario>,
    pub protocol: Protocol,
}

/// The cases of `scenarios`, in order, restricted to `protocols` when not empty.
pub fn cases(scenarios: &[Arc<Scenario>], protocols: &[Protocol]) -> Vec<Case> {
    let mut out = Vec::new();
    for s in scenarios {
        for p in &s.protocols {
            if protocols.is_empty() || protocols.contains(p) {
                out.push(Case {
                    scenario: Arc::clone(s),
                    protocol: *p,
                });
            }
        }
    }
    out
}

/// Keeps the scenarios whose id, file or name contains `filter` (if given)
/// and that carry every tag in `tags`.
pub fn select(scenarios: Vec<Scenario>, filter: Option<&str>, tags: &[String]) -> Vec<Scenario> {
    scenarios
        .into_iter()
        .filter(|s| {
            filter.is_none_or(|f| s.id.contains(f) || s.file.contains(f) || s.name.contains(f))
                && tags.iter().all(|t| s.tags.contains(t))
        })
        .collect()
}

/// Runs the scenarios against `opts.target` and collects the report;
/// `on_case` sees each case as it ends.
pub async fn run(
    scenarios: Vec<Scenario>,
    opts: &RunOptions,
    mut on_case: impl FnMut(&CaseResult),
) -> RunReport {
    let started = Instant::now();
    let scenarios: Vec<Arc<Scenario>> = scenarios.into_iter().map(Arc::new).collect();
    let mut cases = cases(&scenarios, &opts.protocols);
    // Longest first: a run lasts at least as long as its slowest case, so
    // the cases bound by spec timers start before the short ones fill the slots.
    cases.sort_by_key(|c| std::cmp::Reverse(least_duration(c, opts)));
    let run_token = run_token();
    let limit = Arc::new(Semaphore::new(opts.jobs.max(1)));
    let mut set = JoinSet::new();
    // Which case each task runs, to report a task that panicked by its case.
    let mut running: HashMap<tokio::task::Id, Case> = HashMap::new();
    for (index, case) in cases.into_iter().enumerate() {
        let limit = Arc::clone(&limit);
        let opts = opts.clone();
        let run_token = run_token.clone();
        let c = case.clone();
        let handle = set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            run_case(c, &opts, &run_token, index).await
        });
        running.insert(handle.id(), case);
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next_with_id().await {
        let r = match joined {
            Ok((_, r)) => r,
            // A case task that panicked is a harness bug; report it, keep going.
            Err(e) => match running.get(&e.id()) {
                Some(case) => {
                    let error = CaseError::Harness(e.to_string());
                    let ending = Ending {
                        outcome: Err(Stop::Error(error)),
                        failed_at: None,
                        broken: None,
                    };
                    case_result(case, ending, Duration::ZERO, Vec::new(), false)
                }
                None => continue,
            },
        };
        on_case(&r);
        results.push(r);
    }
    RunReport::new(opts.target.to_string(), results, started.elapsed())
}

/// The time a case takes at least, by its scenario: its waits, its
/// silences, and the deadlines of its `expect_close` steps with an explicit
/// timeout (a broker's timer closing the connection: keep alive, …).
pub fn least_duration(case: &Case, opts: &RunOptions) -> Duration {
    let mut total = Duration::ZERO;
    for step in &case.scenario.steps {
        if !step.runs_under(case.protocol) {
            continue;
        }
        total += match &step.action {
            Action::Wait { duration, .. } => *duration,
            Action::ExpectSilence { duration, .. } => {
                opts.max_silence.map_or(*duration, |m| m.min(*duration))
            }
            Action::ExpectClose {
                timeout: Some(t), ..
            } => *t,
            _ => Duration::ZERO,
        };
    }
    total
}

fn run_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xFF_FFFF)
}

/// The state machine of one case (the `index`-th of the run whose token is
/// `run_token`), to drive with [`driver::drive`] or, in tests, by hand.
pub fn case_machine(
    case: &Case,
    opts: &RunOptions,
    run_token: &str,
    index: usize,
) -> Machine<Ending> {
    let (case, opts, token) = (case.clone(), opts.clone(), run_token.to_string());
    Machine::new(move |port| case::run(port, case, opts, token, index))
}

/// The options of `case`: against the target set up as its scenario's
/// `setup:` needs, or why no such target is there.
pub fn case_options(case: &Case, opts: &RunOptions) -> Result<RunOptions, String> {
    let Some(setup) = case.scenario.setup else {
        return Ok(opts.clone());
    };
    // A version the target does not speak is the first reason to skip.
    if let Some(why) = opts
        .profile
        .as_deref()
        .and_then(|p| p.refuses(case.protocol))
    {
        return Err(why);
    }
    let Some(t) = opts.setups.get(&setup) else {
        return Err(format!(
            "requires a target set up as `{setup}` ({}); the embedded broker starts one, and a target profile lists the set-ups its target is (`setups: [{setup}]`)",
            setup.describe()
        ));
    };
    Ok(RunOptions {
        target: t.target.clone(),
        username: t.username.clone().or_else(|| opts.username.clone()),
        password: t.password.clone().or_else(|| opts.password.clone()),
        ..opts.clone()
    })
}

/// The set-ups `scenarios` need.
pub fn setups_needed(scenarios: &[Scenario]) -> Vec<Setup> {
    let mut out: Vec<Setup> = scenarios.iter().filter_map(|s| s.setup).collect();
    out.sort();
    out.dedup();
    out
}

/// Runs one case to its result.
pub async fn run_case(case: Case, opts: &RunOptions, run_token: &str, index: usize) -> CaseResult {
    let started = Instant::now();
    let opts = match case_options(&case, opts) {
        Ok(o) => o,
        Err(why) => {
            let ending = Ending {
                outcome: Err(Stop::Skip(why)),
                failed_at: None,
                broken: None,
            };
            return case_result(&case, ending, Duration::ZERO, Vec::new(), false);
        }
    };
    let opts = &opts;
    let machine = case_machine(&case, opts, run_token, index);
    let (ending, log) = driver::drive(machine, &opts.target, opts).await;
    let ending = ending.unwrap_or_else(|| Ending {
        outcome: Err(Stop::Error(CaseError::Harness(
            "the case logic stalled".into(),
        ))),
        failed_at: None,
        broken: None,
    });
    case_result(&case, ending, started.elapsed(), log, opts.keep_exchanges)
}

/// The result of `case` from how it ended.
pub fn case_result(
    case: &Case,
    ending: Ending,
    duration: Duration,
    log: Vec<Exchange>,
    keep: bool,
) -> CaseResult {
    let s = &case.scenario;
    let (failed, passed) = match &ending.outcome {
        Ok(()) => verdict::attribute(s, case.protocol, None, None),
        Err(Stop::Fail(_)) => verdict::attribute(
            s,
            case.protocol,
            Some(ending.failed_at.unwrap_or(0)),
            ending.broken.as_deref(),
        ),
        Err(_) => (Vec::new(), Vec::new()),
    };
    // A verdict on a statement the broker broke on the way (an answer to
    // CONNECT that did not decode, a DISCONNECT before any CONNACK) is on
    // that statement alone.
    let statements = ending
        .broken
        .clone()
        .unwrap_or_else(|| s.checked_statements(case.protocol));
    let passed = passed
        .into_iter()
        .filter(|id| statements.contains(id))
        .collect();
    let (status, message, failure) = match ending.outcome {
        Ok(()) => (Status::Pass, None, None),
        Err(Stop::Skip(m)) => (Status::Skip, Some(m), None),
        Err(Stop::Error(e)) => (Status::Error, Some(e.to_string()), None),
        Err(Stop::Fail(f)) => {
            let at = match f.pos {
                Some(p) => format!("step {} (line {})", f.step, p.line),
                None if f.step == 0 => "connecting".to_string(),
                None => format!("step {}", f.step),
            };
            let m = format!("{at}: expected {}; got {}", f.expected, f.got);
            (Status::Fail, Some(m), Some(f))
        }
    };
    let exchange = if status == Status::Pass && !keep {
        Vec::new()
    } else {
        log
    };
    CaseResult {
        file: s.file.clone(),
        name: s.name.clone(),
        statements,
        failed_statements: failed,
        passed_statements: passed,
        duration,
        message,
        failure,
        exchange,
        ..CaseResult::new(&s.id, case.protocol, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_bound_by_timers_come_first() {
        let parse = |name: &str, steps: &str| {
            let text = format!(
                "name: {name}\nstatements:\n  \"5.0\": [MQTT-3.12.4-1]\nclients:\n  c: {{}}\nsteps:\n{steps}"
            );
            Arc::new(crate::scenario::parse_scenario("x.yaml", &text).unwrap())
        };
        let quick = parse("quick", "  - c: { send: PINGREQ }\n");
        let slow = parse(
            "slow",
            "  - wait: { seconds: 1s, for: a timer }\n  - c: { expect_silence: 300ms }\n  - c: { expect_close: true, timeout: 4s }\n",
        );
        let target = Target::parse("mqtt://127.0.0.1:1").unwrap();
        let mut opts = RunOptions::new(target);
        let case = |s: &Arc<Scenario>| Case {
            scenario: Arc::clone(s),
            protocol: Protocol::V5,
        };
        assert_eq!(least_duration(&case(&quick), &opts), Duration::ZERO);
        assert_eq!(
            least_duration(&case(&slow), &opts),
            Duration::from_millis(5300)
        );
        opts.max_silence = Some(Duration::from_millis(100));
        assert_eq!(
            least_duration(&case(&slow), &opts),
            Duration::from_millis(5100)
        );
    }
}
