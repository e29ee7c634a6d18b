//! `mqtt-harness run [PATH…]`: runs scenarios against a broker (the embedded
//! reference broker unless `--target` names one) and reports per case and per
//! statement. The exit status follows one table, [`crate::results::ExitStatus`]: 0
//! conforming, 1 divergences, 2 bad input or usage, 3 cases that could not
//! run, 4 nothing selected, 130 / 143 interrupted.
//!
//! Before any case runs: the report files' directories are created (a bad
//! path fails at once), and a `--target` is checked with one connection
//! (`--wait-for-target` retries it), so that an unreachable broker is one
//! message and not one error per case. SIGINT and SIGTERM stop the run: the
//! reports of the cases that finished are written, marked interrupted.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use mqtt_codec::Protocol;

use super::run_session::Session;
pub use super::run_session::{start_setups, EmbeddedBroker};
use super::{parse_protocol, CmdError, Status};
use crate::client::{Target, TlsOptions};
use crate::report::console::{self, ColorChoice, Live, Verbosity};
use crate::report::output::Dest;
use crate::report::{html, json, junit};
use crate::results::{Policy, RunReport};
use crate::run::{self as runner, RunOptions};
use crate::scenario::{self, Capability};
use crate::{baseline, profile};

#[derive(Debug, clap::Args)]
#[command(after_help = exit_status_help())]
pub struct Args {
    /// Scenario files or directories (searched for *.yaml). Default: scenarios/,
    /// or the library built into the binary where there is no such directory.
    pub paths: Vec<PathBuf>,
    /// The broker under test: mqtt://host:port, mqtts://host:port, ws://host:port/mqtt
    /// or wss://host:port/mqtt.
    /// Without it, the embedded reference broker is started on a loopback port.
    #[arg(short = 't', long, value_parser = Target::parse)]
    pub target: Option<Target>,
    /// Where a scenario client's named target is, for clustered or bridged brokers:
    /// `--target-for b=mqtt://127.0.0.1:1884` (repeatable). Clients whose target is
    /// not mapped use --target.
    #[arg(long = "target-for", value_name = "NAME=URL", value_parser = parse_named_target)]
    pub target_for: Vec<(String, Target)>,
    /// Wait up to this long (30s…) for the target to accept a connection
    /// before running, instead of failing at once when it does not.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub wait_for_target: Option<Duration>,
    /// User name for every CONNECT that does not set its own (a broker that requires a login).
    #[arg(long)]
    pub username: Option<String>,
    /// Password for every CONNECT that does not set its own (also read from MQTT_HARNESS_PASSWORD).
    #[arg(long, env = "MQTT_HARNESS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// PEM file of the authorities that signed the TLS target's certificate (mqtts://, wss://).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for TLS targets that authenticate clients; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any TLS certificate from the target (no authentication; testing only).
    #[arg(long)]
    pub insecure: bool,
    /// Cases run at once, at least 1 (default: available parallelism × 16).
    #[arg(short = 'j', long, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Only scenarios whose id, file or name contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Only scenarios with this tag (repeatable: all must be present).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only under this protocol version (repeatable): 3.1, 3.1.1 or 5.0.
    #[arg(long = "protocol", value_parser = parse_protocol)]
    pub protocols: Vec<Protocol>,
    /// An empty selection passes (exit 0) instead of failing with exit status 4.
    #[arg(long)]
    pub allow_empty: bool,
    /// List the cases that would run, and their statements, without running.
    #[arg(long)]
    pub list: bool,
    /// Run each case that failed or errored again, up to N times: one that
    /// passes then is flaky (reported, not a failure unless --fail-on-flaky).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// A flaky case (failed, then passed on a retry) fails the run.
    #[arg(long)]
    pub fail_on_flaky: bool,
    /// Write the JSON report to this file (- for standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report to this file (- for standard output).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report to this file (- for standard output).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// A baseline of known divergences (YAML or JSON): their failures do not fail the run.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the failures of this run as a baseline file (YAML), keeping the
    /// messages of the entries it already has and of --baseline.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// Deadline of each expect step and connection attempt (300ms, 5s…; more than 0).
    #[arg(long, value_parser = parse_timeout, default_value = "5s")]
    pub timeout: Duration,
    /// Cut every `expect_silence` longer than this to this (e.g. 100ms): a
    /// faster run that watches for stray packets for less time.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub max_silence: Option<Duration>,
    /// A target profile (YAML): the protocol versions and optional features the
    /// broker offers when it cannot announce them (3.1.1 brokers). See
    /// profiles/mosquitto.yaml. Cases needing what it rules out are skipped.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// The target lacks this optional feature (repeatable; on top of --profile):
    /// qos1, qos2, retain, wildcards, shared_subscriptions, subscription_identifiers, topic_alias.
    #[arg(long = "without", value_parser = parse_capability)]
    pub without: Vec<Capability>,
    /// Make the embedded reference broker break this statement (repeatable),
    /// to see the scenarios that cite it fail.
    #[arg(long = "violate", value_name = "ID")]
    pub violate: Vec<String>,
    /// Print the whole exchange of every case, passing ones too.
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print only the failures, errors and flaky cases, and the summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Colour the console: auto (on a terminal, unless NO_COLOR is set;
    /// CLICOLOR_FORCE forces it), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
}

/// The exit status table, as `run --help` ends.
fn exit_status_help() -> String {
    let mut s = String::from("Exit status:\n");
    for (code, meaning) in crate::results::EXIT_STATUSES {
        s.push_str(&format!("  {code:>3}  {meaning}\n"));
    }
    s
}

pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
    match scenario::parse_duration(s) {
        Some(d) if d.is_zero() => Err(format!(
            "`{s}` gives no time at all; give a duration above 0, e.g. 500ms or 5s"
        )),
        Some(d) => Ok(d),
        None => Err(format!("`{s}` is not a duration; write e.g. 500ms or 5s")),
    }
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0 jobs would run no case; give at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "`{s}` is not a number of cases at once; give e.g. 8"
        )),
    }
}

fn parse_capability(s: &str) -> Result<Capability, String> {
    serde_json::from_value(serde_json::Value::from(s)).map_err(|_| {
        format!("`{s}` is not a feature; use qos1, qos2, retain, wildcards, shared_subscriptions, subscription_identifiers or topic_alias")
    })
}

fn parse_named_target(s: &str) -> Result<(String, Target), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=URL (e.g. b=mqtt://127.0.0.1:1884)"))?;
    Ok((name.trim().to_string(), Target::parse(url.trim())?))
}

/// Where the reports go, checked before the run.
struct Outputs {
    json: Option<Dest>,
    junit: Option<Dest>,
    html: Option<Dest>,
    baseline: Option<Dest>,
}

impl Outputs {
    fn prepare(args: &Args) -> Result<Outputs, CmdError> {
        let dest = |p: &Option<PathBuf>, flag: &str| -> Result<Option<Dest>, CmdError> {
            p.as_deref()
                .map(|p| Dest::prepare(p, flag))
                .transpose()
                .map_err(CmdError::Usage)
        };
        let o = Outputs {
            json: dest(&args.json, "--json")?,
            junit: dest(&args.junit, "--junit")?,
            html: dest(&args.html, "--html")?,
            baseline: dest(&args.write_baseline, "--write-baseline")?,
        };
        if o.all().filter(|(_, d)| **d == Dest::Stdout).count() > 1 {
            return Err(CmdError::Usage(
                "only one report can go to standard output (-); write the others to files".into(),
            ));
        }
        Ok(o)
    }

    fn all(&self) -> impl Iterator<Item = (&'static str, &Dest)> {
        [
            ("JSON report", &self.json),
            ("JUnit report", &self.junit),
            ("HTML report", &self.html),
            ("baseline", &self.baseline),
        ]
        .into_iter()
        .filter_map(|(what, d)| d.as_ref().map(|d| (what, d)))
    }

    fn to_stdout(&self) -> bool {
        self.all().any(|(_, d)| *d == Dest::Stdout)
    }
}

fn read_baseline(path: &std::path::Path) -> Result<baseline::Baseline, CmdError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CmdError::Usage(format!("cannot read the baseline {}: {e}", path.display()))
    })?;
    baseline::parse(&path.display().to_string(), &text).map_err(CmdError::Usage)
}

/// The entries whose reasons `--write-baseline` keeps: those of the file it
/// overwrites, then those of `--baseline`.
fn previous_baseline(
    args: &Args,
    read: &baseline::Baseline,
) -> Result<baseline::Baseline, CmdError> {
    let mut previous = read.clone();
    if let Some(path) = args.write_baseline.as_ref().filter(|p| p.is_file()) {
        let old = read_baseline(path).map_err(|e| {
            CmdError::Usage(format!(
                "{e}\n--write-baseline would overwrite {} and lose its messages: fix it, or remove it first",
                path.display()
            ))
        })?;
        previous.known.extend(old.known);
        previous.intermittent.extend(old.intermittent);
        for (k, m) in old.reasons {
            previous.reasons.entry(k).or_insert(m);
        }
    }
    Ok(previous)
}

fn tls(args: &Args) -> TlsOptions {
    TlsOptions {
        ca: args.ca.clone(),
        insecure: args.insecure,
        client_cert: args.cert.clone().zip(args.key.clone()),
    }
}

/// The run's options, and the embedded broker's configuration when there
/// is no `--target` (the session starts it and sets the target).
fn options(args: &Args) -> Result<(RunOptions, Option<reference_broker::Config>), CmdError> {
    let mut config = reference_broker::Config::default();
    for v in &args.violate {
        config.violations.add(v).map_err(CmdError::Usage)?;
    }
    if !args.violate.is_empty() && args.target.is_some() {
        return Err(CmdError::Usage(
            "--violate applies to the embedded broker; leave out --target".into(),
        ));
    }
    let profile = match &args.profile {
        Some(path) => Some(std::sync::Arc::new(
            profile::load_profile(path).map_err(|e| CmdError::Usage(e.to_string()))?,
        )),
        None => None,
    };
    // Until the session starts the embedded broker, a target nothing serves.
    let target = match &args.target {
        Some(t) => Target {
            tls: tls(args),
            ..t.clone()
        },
        None => EmbeddedBroker::placeholder(),
    };
    let embedded = args.target.is_none().then_some(config);
    let opts = RunOptions {
        jobs: args.jobs.unwrap_or_else(runner::default_jobs),
        step_timeout: args.timeout,
        protocols: args.protocols.clone(),
        without: args.without.clone(),
        profile,
        max_silence: args.max_silence,
        username: args.username.clone(),
        password: args.password.clone(),
        named_targets: args
            .target_for
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    Target {
                        tls: tls(args),
                        ..t.clone()
                    },
                )
            })
            .collect(),
        keep_exchanges: args.verbose || args.html.is_some(),
        ..RunOptions::new(target)
    };
    Ok((opts, embedded))
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let outputs = Outputs::prepare(args)?;
    let known = match &args.baseline {
        Some(path) => read_baseline(path)?,
        None => Default::default(),
    };
    let previous = previous_baseline(args, &known)?;
    let loaded = super::load_scenarios(&args.paths)?;
    let loaded_count = loaded.len();
    let scenarios = runner::select(loaded, args.filter.as_deref(), &args.tags);
    let (opts, embedded) = options(args)?;

    if args.list {
        let arcs: Vec<_> = scenarios.into_iter().map(std::sync::Arc::new).collect();
        for case in runner::cases(&arcs, &args.protocols) {
            let s = &case.scenario;
            writeln!(
                out,
                "{} [{}]  {}  {}",
                s.id,
                case.protocol,
                s.name,
                s.checked_statements(case.protocol).join(" ")
            )?;
        }
        return Ok(Status::Pass);
    }

    // With a report on stdout, the console goes to stderr so that stdout
    // stays parseable.
    let mut stderr = std::io::stderr();
    let to_stderr = outputs.to_stdout();
    let report = {
        let console: &mut dyn Write = if to_stderr { &mut stderr } else { &mut *out };
        let is_terminal = if to_stderr {
            std::io::IsTerminal::is_terminal(&std::io::stderr())
        } else {
            console::stdout_is_terminal()
        };
        let mut live = Live {
            verbosity: if args.quiet {
                Verbosity::Quiet
            } else if args.verbose {
                Verbosity::Verbose
            } else {
                Verbosity::Normal
            },
            color: args.color.resolve(is_terminal),
            progress: None,
            known: known.known.clone(),
            intermittent: known.intermittent.clone(),
            reasons: known.reasons.clone(),
        };
        let total = runner::cases(
            &scenarios
                .iter()
                .cloned()
                .map(std::sync::Arc::new)
                .collect::<Vec<_>>(),
            &args.protocols,
        )
        .len();
        if total == 0 {
            eprintln!("{}", nothing_selected(args, loaded_count));
        }
        if is_terminal && total > 0 {
            live.progress = Some(console::Progress::new(total, live.color));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CmdError::Runtime(format!("cannot start the async runtime: {e}")))?;
        let session = Session {
            opts,
            embedded,
            retries: args.retries,
            wait_for_target: args.wait_for_target,
        };
        let mut report = if total == 0 {
            RunReport::new(target_name(args), Vec::new(), Duration::ZERO)
        } else {
            rt.block_on(session.run(scenarios, &mut live, console))?
        };
        report.baseline = known.known.clone();
        report.intermittent = known.intermittent.clone();
        report.known_reasons = known.reasons.clone();
        report.suite = super::scenario_source(&args.paths);
        report.policy = Policy {
            allow_empty: args.allow_empty,
            fail_on_flaky: args.fail_on_flaky,
            restricted: args.filter.is_some()
                || !args.tags.is_empty()
                || !args.protocols.is_empty()
                || !args.paths.is_empty(),
        };
        write!(
            console,
            "{}",
            console::ending(&report, args.quiet, live.color)
        )?;
        console.flush()?;
        report
    };
    let texts = [
        (
            &outputs.json,
            "JSON report",
            json::render as fn(&RunReport) -> String,
        ),
        (&outputs.junit, "JUnit report", junit::render),
        (&outputs.html, "HTML report", html::render),
    ];
    for (dest, what, render) in texts {
        if let Some(dest) = dest {
            dest.write(what, &render(&report), out)
                .map_err(CmdError::Usage)?;
        }
    }
    if let Some(dest) = &outputs.baseline {
        dest.write("baseline", &baseline::render(&report, &previous), out)
            .map_err(CmdError::Usage)?;
    }
    Ok(Status::Run(report.exit_status()))
}

fn target_name(args: &Args) -> String {
    args.target.as_ref().map_or_else(
        || "the embedded reference broker".to_string(),
        ToString::to_string,
    )
}

/// The message of an empty selection: what selected nothing, what to do.
fn nothing_selected(args: &Args, loaded: usize) -> String {
    let mut by = Vec::new();
    if let Some(f) = &args.filter {
        by.push(format!("--filter {f}"));
    }
    for t in &args.tags {
        by.push(format!("--tag {t}"));
    }
    for p in &args.protocols {
        by.push(format!("--protocol {p}"));
    }
    let from = super::scenario_source(&args.paths);
    let what = if by.is_empty() {
        format!("{from} holds no scenario")
    } else {
        format!(
            "no case of the {loaded} scenario(s) in {from} matches {}",
            by.join(" ")
        )
    };
    let then = if args.allow_empty {
        "--allow-empty accepts that"
    } else {
        "check the selection (run --list shows it), or pass --allow-empty to accept an empty run (exit status 4)"
    };
    format!("nothing selected: {what}; {then}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_jobs_and_zero_timeouts_are_refused() {
        assert!(parse_jobs("0").unwrap_err().contains("at least 1"));
        assert_eq!(parse_jobs("3"), Ok(3));
        assert!(parse_timeout("0s").unwrap_err().contains("above 0"));
        assert!(parse_timeout("0ms").is_err());
        assert_eq!(parse_timeout("300ms"), Ok(Duration::from_millis(300)));
    }
}
