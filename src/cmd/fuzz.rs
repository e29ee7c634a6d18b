//! `mqtt-harness fuzz [--target URL]`: the network fuzzer ([`crate::fuzz`])
//! against a live broker, or the embedded reference broker (with
//! `--violate ID` as `run` takes it). Exit status: 0 no finding, 1
//! findings, 2 bad usage, 3 the target could not be reached.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use mqtt_codec::Protocol;

use super::run::{parse_timeout, EmbeddedBroker};
use super::{parse_protocol, CmdError, Status};
use crate::fuzz::{self, exec::Executor, Options};
use crate::net::{Target, TlsOptions};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status:\n    0  no finding\n    1  findings (written under --findings)\n    2  bad usage or input\n    3  the target could not be reached"
)]
pub struct Args {
    /// The broker: mqtt://, mqtts://, ws://…/mqtt or wss://. Without it, the
    /// embedded reference broker on a loopback port.
    #[arg(short = 't', long, value_parser = Target::parse)]
    pub target: Option<Target>,
    /// More brokers given the same inputs; where they behave differently is
    /// reported, with the statement that decides it.
    #[arg(long, value_name = "URL", num_args = 1.., value_parser = Target::parse)]
    pub differential: Vec<Target>,
    /// Make the embedded broker break this statement (repeatable).
    #[arg(long = "violate", value_name = "ID")]
    pub violate: Vec<String>,
    /// The seed: the same seed sends the same inputs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this long (30s, 10m…). Default 60s unless --max-execs is given.
    #[arg(long, value_parser = parse_timeout)]
    pub duration: Option<Duration>,
    /// Stop after this many executions.
    #[arg(long, value_name = "N")]
    pub max_execs: Option<u64>,
    /// Write each finding, minimised, as a scenario here (`mqtt-harness run DIR` replays them).
    #[arg(long, value_name = "DIR")]
    pub findings: Option<PathBuf>,
    /// Write the summary as JSON to this file (- for standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The broker's process id: its resident memory is watched (/proc/PID/status).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Growth of the broker's memory (MiB) above its first reading that is a finding.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_rss_growth: u64,
    /// Inputs run at once, each with its own connections (at least 1).
    #[arg(short = 'j', long, default_value_t = 4)]
    pub jobs: usize,
    /// The deadline of every wait on the broker: a write, a CONNACK, a PINGRESP.
    #[arg(long, value_parser = parse_timeout, default_value = "2s")]
    pub timeout: Duration,
    /// Only inputs of this version (repeatable): 3.1.1 or 5.0.
    #[arg(long = "protocol", value_parser = parse_protocol)]
    pub protocols: Vec<Protocol>,
    /// Seed scenarios (files or directories); default: the scenario library.
    #[arg(long = "seeds", value_name = "PATH")]
    pub seeds: Vec<PathBuf>,
    /// PEM file of the authorities that signed the TLS target's certificate.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Accept any TLS certificate from the target (testing only).
    #[arg(long)]
    pub insecure: bool,
}

fn with_tls(t: &Target, args: &Args) -> Target {
    Target {
        tls: TlsOptions {
            ca: args.ca.clone(),
            insecure: args.insecure,
            client_cert: None,
        },
        ..t.clone()
    }
}

async fn reachable(t: &Target, timeout: Duration) -> Result<(), CmdError> {
    let deadline = tokio::time::Instant::now() + timeout;
    crate::net::connect(t, deadline)
        .await
        .map(|_| ())
        .map_err(|e| {
            CmdError::Unreachable(format!(
                "cannot reach {t}: {e}; start the broker or check --target"
            ))
        })
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    if args.jobs == 0 {
        return Err(CmdError::Usage(
            "--jobs 0 would run nothing; give at least 1".into(),
        ));
    }
    if !args.violate.is_empty() && args.target.is_some() {
        return Err(CmdError::Usage(
            "--violate applies to the embedded broker; leave out --target".into(),
        ));
    }
    let mut config = reference_broker::Config::default();
    for v in &args.violate {
        config.violations.add(v).map_err(CmdError::Usage)?;
    }
    let json_dest = args
        .json
        .as_deref()
        .map(|p| crate::report::output::Dest::prepare(p, "--json"))
        .transpose()
        .map_err(CmdError::Usage)?;
    let scenarios = super::load_scenarios(&args.seeds)?;
    let seeds: Vec<_> = fuzz::input::seeds(&scenarios)
        .into_iter()
        .filter(|(i, _)| args.protocols.is_empty() || args.protocols.contains(&i.protocol))
        .collect();
    if seeds.is_empty() {
        return Err(CmdError::Usage(
            "no seed: the scenarios given have no send steps under the versions selected".into(),
        ));
    }
    let duration = match (args.duration, args.max_execs) {
        (None, None) => Some(Duration::from_secs(60)),
        (d, _) => d,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let report = rt.block_on(async {
        let mut embedded = None;
        let target = match &args.target {
            Some(t) => with_tls(t, args),
            None => {
                let b = EmbeddedBroker::start(config).await.map_err(|e| {
                    CmdError::Runtime(format!("cannot start the embedded reference broker: {e}"))
                })?;
                let t = b.target();
                embedded = Some(b);
                t
            }
        };
        reachable(&target, args.timeout).await?;
        let others: Vec<Target> = args.differential.iter().map(|t| with_tls(t, args)).collect();
        for t in &others {
            reachable(t, args.timeout).await?;
        }
        let timing = fuzz::timing(args.timeout);
        let target_name = match (&args.target, args.violate.is_empty()) {
            (Some(t), _) => t.to_string(),
            (None, true) => "the embedded reference broker".to_string(),
            (None, false) => format!("the embedded reference broker --violate {}", args.violate.join(" ")),
        };
        let opts = Options {
            executor: Executor {
                target,
                timing: timing.clone(),
            },
            others: others
                .into_iter()
                .map(|target| Executor {
                    target,
                    timing: timing.clone(),
                })
                .collect(),
            seed: args.seed,
            duration,
            max_execs: args.max_execs,
            findings_dir: args.findings.clone(),
            jobs: args.jobs,
            pid: args.pid,
            rss_bound_kib: args.max_rss_growth.saturating_mul(1024),
            target_name,
        };
        let terminal = std::io::stderr().is_terminal();
        let mut last_line = std::time::Instant::now();
        let report = fuzz::campaign(opts, seeds, |st, elapsed| {
            let line = format!(
                "fuzz: {} execs ({:.0}/s), {} findings, {} connections, types sent {} / received {}, {} statements, {:.0} s",
                st.executions,
                st.executions as f64 / elapsed.as_secs_f64().max(0.001),
                st.found.len(),
                st.connections,
                st.sent_types.len(),
                st.received_types.len(),
                st.statements.len(),
                elapsed.as_secs_f64()
            );
            if terminal {
                eprint!("\r{line}\x1b[K");
            } else if last_line.elapsed() >= Duration::from_secs(10) {
                eprintln!("{line}");
                last_line = std::time::Instant::now();
            }
        })
        .await;
        if terminal {
            eprintln!();
        }
        if let Some(b) = embedded {
            b.stop().await;
        }
        Ok::<_, CmdError>(report)
    })?;
    let console_to_stderr = json_dest == Some(crate::report::output::Dest::Stdout);
    if console_to_stderr {
        eprint!("{}", report.text());
    } else {
        write!(out, "{}", report.text())?;
    }
    if let Some(dest) = json_dest {
        let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
        dest.write("JSON summary", &format!("{text}\n"), out)
            .map_err(CmdError::Usage)?;
    }
    Ok(if report.stats.found.is_empty() {
        Status::Pass
    } else {
        Status::Fail
    })
}
