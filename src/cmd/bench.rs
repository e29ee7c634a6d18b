//! `mqtt-harness bench [--target URL]`: puts load on a broker (the embedded
//! reference broker without `--target`) and reports throughput, latency
//! percentiles, connection rate, errors and lost messages (see
//! [`crate::bench`]).
//!
//! Exit status: 0 the run went through; 1 messages were lost at QoS 1 or 2
//! (or duplicated at QoS 2), refused, or connections failed; 2 bad usage;
//! 3 the target cannot be reached.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use mqtt_codec::{Protocol, QoS};

use super::run::{parse_timeout, EmbeddedBroker};
use super::{parse_protocol, CmdError, Status};
use crate::bench::{self, report, Options};
use crate::net::{Target, TlsOptions};
use crate::report::output::Dest;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status:\n    0  the run went through\n    1  messages lost at QoS 1/2 (or duplicated at QoS 2), refused, or connections failed\n    2  bad usage\n    3  the target cannot be reached"
)]
pub struct Args {
    /// The broker: mqtt://host:port, mqtts://…, ws://host:port/mqtt, wss://….
    /// Without it, the embedded reference broker is started and loaded.
    #[arg(short = 't', long, value_parser = Target::parse)]
    pub target: Option<Target>,
    /// Protocol version of every connection: 3.1, 3.1.1 or 5.0.
    #[arg(short = 'V', long, value_parser = parse_protocol, default_value = "3.1.1")]
    pub protocol: Protocol,
    /// QoS of the PUBLISH packets and the subscriptions: 0, 1 or 2.
    #[arg(short, long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Publishing connections.
    #[arg(short = 'P', long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscribing connections; each subscribes to every topic.
    #[arg(short = 'S', long, default_value_t = 1)]
    pub subscribers: usize,
    /// Idle connections opened as well (for the connection rate, and load).
    #[arg(short = 'c', long, default_value_t = 0)]
    pub connections: usize,
    /// Topics; publisher i publishes on topic i mod N.
    #[arg(long, default_value_t = 1)]
    pub topics: usize,
    /// Messages per second per publisher; 0 publishes as fast as the broker takes them.
    #[arg(short, long, default_value_t = 0.0)]
    pub rate: f64,
    /// Payload size in bytes (at least 20: the timestamp, publisher and number).
    #[arg(short = 's', long, default_value_t = 64)]
    pub size: usize,
    /// How long to publish (default 10s, unless --count is given).
    #[arg(short = 'd', long, value_parser = parse_timeout)]
    pub duration: Option<Duration>,
    /// Messages per publisher (the run ends when all are delivered).
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// QoS 1/2 messages unacknowledged per publisher (5.0: at most the broker's
    /// Receive Maximum). 20 is mosquitto's Receive Maximum, which a 3.x client
    /// cannot learn: mosquitto 2.0 stalls a 3.1.1 publisher with more QoS 2 in flight.
    #[arg(long, default_value_t = 20)]
    pub inflight: u16,
    /// Deadline of each connection handshake, and of a stalled write or acknowledgement.
    #[arg(long, value_parser = parse_timeout, default_value = "5s")]
    pub timeout: Duration,
    /// After publishing, how long without a new delivery before the missing ones count as lost.
    #[arg(long, value_parser = parse_timeout, default_value = "2s")]
    pub drain: Duration,
    /// Connection handshakes at once.
    #[arg(long, default_value_t = 64)]
    pub connect_parallel: usize,
    #[arg(long)]
    pub username: Option<String>,
    /// Password (also read from MQTT_HARNESS_PASSWORD).
    #[arg(long, env = "MQTT_HARNESS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// PEM file of the authorities that signed the TLS target's certificate.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Accept any TLS certificate (no authentication; testing only).
    #[arg(long)]
    pub insecure: bool,
    /// Write the JSON report to FILE (- for standard output; the table then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

fn check(args: &Args) -> Result<(), CmdError> {
    let bad = |m: &str| Err(CmdError::Usage(m.to_string()));
    if args.size < bench::wire::STAMP {
        return bad(
            "--size must be at least 20: each payload carries its timestamp, publisher and number",
        );
    }
    if args.size > 256 * 1024 * 1024 {
        return bad("--size is above MQTT's largest packet (256 MiB)");
    }
    if args.publishers == 0 && args.subscribers == 0 && args.connections == 0 {
        return bad("nothing to do: give --publishers, --subscribers or --connections");
    }
    if args.topics == 0 || args.topics > 10_000 {
        return bad("--topics must be between 1 and 10000");
    }
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return bad("--rate must be a number of messages per second, 0 for as fast as possible");
    }
    if args.count == Some(0) || args.inflight == 0 || args.connect_parallel == 0 {
        return bad("--count, --inflight and --connect-parallel must be at least 1");
    }
    Ok(())
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    check(args)?;
    let json = args
        .json
        .as_deref()
        .map(|p| Dest::prepare(p, "--json"))
        .transpose()
        .map_err(CmdError::Usage)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let terminal = std::io::stderr().is_terminal();
    let quiet = args.quiet;
    let outcome = rt.block_on(async {
        let (target, embedded) = match &args.target {
            Some(t) => {
                let t = Target {
                    tls: TlsOptions {
                        ca: args.ca.clone(),
                        insecure: args.insecure,
                        client_cert: None,
                    },
                    ..t.clone()
                };
                super::run_session::check_target(&t, args.timeout, None).await?;
                (t, None)
            }
            None => {
                let b = EmbeddedBroker::start(reference_broker::Config::default())
                    .await
                    .map_err(|e| {
                        CmdError::Runtime(format!(
                            "cannot start the embedded reference broker: {e}"
                        ))
                    })?;
                (b.target(), Some(b))
            }
        };
        let opts = Options {
            target,
            protocol: args.protocol,
            qos: QoS::from_u8(args.qos).unwrap_or_default(),
            publishers: args.publishers,
            subscribers: args.subscribers,
            connections: args.connections,
            topics: args.topics,
            rate: args.rate,
            size: args.size,
            duration: match (args.duration, args.count) {
                (None, None) => Some(Duration::from_secs(10)),
                (d, _) => d,
            },
            count: args.count,
            inflight: args.inflight,
            timeout: args.timeout,
            drain: args.drain,
            connect_parallel: args.connect_parallel,
            username: args.username.clone(),
            password: args.password.clone(),
        };
        let outcome = bench::run(opts, |shared, elapsed| {
            if quiet {
                return;
            }
            let line = report::progress_line(shared, elapsed);
            if terminal {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
        })
        .await;
        if terminal && !quiet {
            eprintln!();
        }
        if let Some(b) = embedded {
            b.stop().await;
        }
        Ok::<_, CmdError>(outcome)
    })?;
    let status = if outcome.failed() {
        Status::Fail
    } else {
        Status::Pass
    };
    let table = report::table(&outcome);
    if json == Some(Dest::Stdout) {
        eprint!("{table}");
    } else {
        out.write_all(table.as_bytes())?;
    }
    if let Some(dest) = &json {
        let text = serde_json::to_string_pretty(&report::json(&outcome, status.exit_code()))
            .unwrap_or_default()
            + "\n";
        dest.write("JSON report", &text, out)
            .map_err(CmdError::Usage)?;
    }
    if outcome.failed() {
        eprintln!(
            "error: the run failed: {} lost, {} duplicated, {} refused, {} error(s), {} connection(s) failed",
            outcome.lost, outcome.duplicates, outcome.refused, outcome.errors, outcome.connections_failed
        );
    }
    Ok(status)
}
