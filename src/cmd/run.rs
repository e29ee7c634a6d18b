//! `mqtt-harness run [PATH…]`: runs scenarios against a broker (the embedded
//! reference broker unless `--target` names one) and reports per case and per
//! statement. Exit status: 0 nothing failed, 1 a case failed or could not run,
//! 2 bad input (an invalid scenario, a bad flag).

use std::io::{Read, Write};
use std::path::PathBuf;

use mqtt_codec::Protocol;

use super::{parse_protocol, CmdError, Status};
use crate::net::{Target, TlsOptions};
use crate::report::{console, html, json, junit};
use crate::runner::{self, RunOptions};
use crate::scenario::{self, Capability};
use crate::{baseline, profile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files or directories (searched for *.yaml). Default: scenarios/
    pub paths: Vec<PathBuf>,
    /// The broker under test: mqtt://host:port, mqtts://host:port, ws://host:port/mqtt
    /// or wss://host:port/mqtt.
    /// Without it, the embedded reference broker is started on a loopback port.
    #[arg(long, value_parser = Target::parse)]
    pub target: Option<Target>,
    /// Where a scenario client's named target is, for clustered or bridged brokers:
    /// `--target-for b=mqtt://127.0.0.1:1884` (repeatable). Clients whose target is
    /// not mapped use --target.
    #[arg(long = "target-for", value_name = "NAME=URL", value_parser = parse_named_target)]
    pub target_for: Vec<(String, Target)>,
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
    /// Cases run at once (default: available parallelism × 16).
    #[arg(long)]
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
    /// List the cases that would run, and their statements, without running.
    #[arg(long)]
    pub list: bool,
    /// Write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// A baseline of known divergences: their failures do not fail the run.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write the failures of this run as a baseline file.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,
    /// Deadline of each expect step and connection attempt (300ms, 5s…).
    #[arg(long, value_parser = parse_timeout, default_value = "5s")]
    pub timeout: std::time::Duration,
    /// Cut every `expect_silence` longer than this to this (e.g. 100ms): a
    /// faster run that watches for stray packets for less time.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub max_silence: Option<std::time::Duration>,
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
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    scenario::parse_duration(s)
        .ok_or_else(|| format!("`{s}` is not a duration; write e.g. 500ms or 5s"))
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

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let baseline = match &args.baseline {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CmdError::Usage(format!("cannot read the baseline {}: {e}", path.display()))
            })?;
            baseline::parse(&path.display().to_string(), &text).map_err(CmdError::Usage)?
        }
        None => Default::default(),
    };
    let scenarios = super::load_scenarios(&args.paths)?;
    let scenarios = runner::select(scenarios, args.filter.as_deref(), &args.tags);
    let profile = match &args.profile {
        Some(path) => Some(std::sync::Arc::new(
            profile::load_profile(path).map_err(|e| CmdError::Usage(e.to_string()))?,
        )),
        None => None,
    };

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

    let mut config = reference_broker::Config::default();
    for v in &args.violate {
        config.violations.add(v).map_err(CmdError::Usage)?;
    }
    if !args.violate.is_empty() && args.target.is_some() {
        return Err(CmdError::Usage(
            "--violate applies to the embedded broker; leave out --target".into(),
        ));
    }
    let target = args.target.clone().map(|mut t| {
        t.tls = TlsOptions {
            ca: args.ca.clone(),
            insecure: args.insecure,
            client_cert: args.cert.clone().zip(args.key.clone()),
        };
        t
    });
    let opts = RunOptions {
        target,
        broker_config: config,
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
                let mut t = t.clone();
                t.tls = TlsOptions {
                    ca: args.ca.clone(),
                    insecure: args.insecure,
                    client_cert: args.cert.clone().zip(args.key.clone()),
                };
                (n.clone(), t)
            })
            .collect(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::Usage(format!("cannot start the async runtime: {e}")))?;
    let color = console::use_color();
    // A progress line under the case lines, on a terminal only.
    let total: usize = scenarios
        .iter()
        .map(|s| {
            s.protocols
                .iter()
                .filter(|p| opts.protocols.is_empty() || opts.protocols.contains(p))
                .count()
        })
        .sum();
    let mut progress = console::stdout_is_terminal().then(|| console::Progress::new(total, color));
    if let Some(p) = progress.as_mut() {
        write!(out, "{}", p.draw())?;
        out.flush()?;
    }
    // Case lines as cases end; on a terminal, a progress line under them,
    // redrawn every half second so that a long wait shows the time going.
    let show = |c: &crate::results::CaseResult,
                progress: &mut Option<console::Progress>,
                out: &mut dyn Write| {
        let is_known = baseline.known.contains(&(c.id.clone(), c.protocol));
        if let Some(p) = progress.as_mut() {
            let _ = write!(out, "{}", p.erase());
        }
        let _ = writeln!(out, "{}", console::case_text_known(c, is_known, color));
        if let Some(p) = progress.as_mut() {
            p.case_done(c);
            let _ = write!(out, "{}", p.draw());
            let _ = out.flush();
        }
    };
    let ticking = progress.is_some();
    let mut report = rt
        .block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let run = runner::run(scenarios, &opts, move |c| {
                let _ = tx.send(c.clone());
            });
            tokio::pin!(run);
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tokio::select! {
                    result = &mut run => {
                        while let Ok(c) = rx.try_recv() {
                            show(&c, &mut progress, &mut *out);
                        }
                        break result;
                    }
                    Some(c) = rx.recv() => show(&c, &mut progress, &mut *out),
                    _ = tick.tick(), if ticking => {
                        if let Some(p) = progress.as_mut() {
                            let _ = write!(out, "{}{}", p.erase(), p.draw());
                            let _ = out.flush();
                        }
                    }
                }
            }
        })
        .map_err(CmdError::Usage)?;
    if let Some(p) = progress.as_mut() {
        write!(out, "{}", p.erase())?;
    }
    report.baseline = baseline.known;
    report.intermittent = baseline.intermittent;
    writeln!(out)?;
    writeln!(out, "{}", console::summary_line(&report, color))?;
    for c in report.fixed() {
        writeln!(
            out,
            "fixed: {} [{}] passes now: remove it from the baseline (or mark it intermittent)",
            c.id, c.protocol
        )?;
    }
    let write = |path: &PathBuf, what: &str, text: String| {
        std::fs::write(path, text).map_err(|e| {
            CmdError::Usage(format!(
                "cannot write the {what} to {}: {e}",
                path.display()
            ))
        })
    };
    if let Some(path) = &args.json {
        write(path, "JSON report", json::render(&report))?;
    }
    if let Some(path) = &args.junit {
        write(path, "JUnit report", junit::render(&report))?;
    }
    if let Some(path) = &args.html {
        write(path, "HTML report", html::render(&report))?;
    }
    if let Some(path) = &args.write_baseline {
        write(path, "baseline", baseline::render(&report))?;
    }
    Ok(if report.exit_code() == 0 {
        Status::Pass
    } else {
        Status::Fail
    })
}
