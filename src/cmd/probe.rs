//! `mqtt-harness probe [--target URL]`: what a broker supports and its
//! limits, found by trying (see [`crate::probe`]). Without `--target`, the
//! embedded reference broker is probed, as `run` tests it.
//!
//! Exit status: 0 the probe ran, 1 the target answered no CONNECT of any
//! version (it closed, or sent what is not MQTT), 2 bad usage or an
//! unwritable output, 3 the target cannot be reached (or the embedded broker
//! does not start).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::run::{parse_timeout, EmbeddedBroker};
use super::{CmdError, Status};
use crate::net::{Target, TlsOptions};
use crate::probe::{self, output, Options};
use crate::report::output::Dest;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status:\n    0  the probe ran\n    1  the target answered no CONNECT of 3.1, 3.1.1 or 5.0\n    2  bad usage, or an output that cannot be written\n    3  the target cannot be reached"
)]
pub struct Args {
    /// The broker: mqtt://host:port, mqtts://…, ws://host:port/mqtt, wss://….
    /// Without it, the embedded reference broker is started and probed.
    #[arg(short = 't', long, value_parser = Target::parse)]
    pub target: Option<Target>,
    /// Wait up to this long (30s…) for the target to accept a connection,
    /// instead of failing at once when it does not.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub wait_for_target: Option<Duration>,
    /// Deadline of each wait for an answer (a CONNACK, a SUBACK, a delivery).
    #[arg(long, value_parser = parse_timeout, default_value = "2s")]
    pub timeout: Duration,
    /// The largest payload the size search tries, in bytes (the spec allows
    /// about 256 MiB; the cap keeps a probe short).
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_size: usize,
    /// The longest topic the topic length search tries (at most 65535).
    #[arg(long, value_name = "BYTES", default_value_t = 65_535)]
    pub max_topic_length: usize,
    /// The most topic levels the level search tries.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_topic_levels: usize,
    /// The longest client id the client id search tries (at most 65535).
    #[arg(long, value_name = "N", default_value_t = 65_535)]
    pub max_client_id: usize,
    /// Receive Maximum is tried (that many unreleased QoS 2 PUBLISH) only up to this.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_receive: u16,
    /// How long to wait for a message on $SYS/#.
    #[arg(long, value_parser = parse_timeout, default_value = "2s")]
    pub sys_wait: Duration,
    /// User name of every CONNECT.
    #[arg(long)]
    pub username: Option<String>,
    /// Password of every CONNECT (also read from MQTT_HARNESS_PASSWORD).
    #[arg(long, env = "MQTT_HARNESS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// PEM file of the authorities that signed the TLS target's certificate.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM); needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any TLS certificate (no authentication; testing only).
    #[arg(long)]
    pub insecure: bool,
    /// Write the JSON report, every finding with its evidence, to FILE (- for standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a target profile (YAML) that `run --profile FILE` uses as it is.
    #[arg(long, value_name = "FILE")]
    pub write_profile: Option<PathBuf>,
    /// The name the written profile gives the broker (default: "probed URL").
    #[arg(long, value_name = "NAME")]
    pub profile_name: Option<String>,
    /// Print the tries and packets behind each finding.
    #[arg(short, long)]
    pub verbose: bool,
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let json = args
        .json
        .as_deref()
        .map(|p| Dest::prepare(p, "--json"))
        .transpose()
        .map_err(CmdError::Usage)?;
    let profile = args
        .write_profile
        .as_deref()
        .map(|p| Dest::prepare(p, "--write-profile"))
        .transpose()
        .map_err(CmdError::Usage)?;
    if json == Some(Dest::Stdout) && profile == Some(Dest::Stdout) {
        return Err(CmdError::Usage(
            "--json and --write-profile cannot both go to standard output (-); write one to a file"
                .into(),
        ));
    }
    if args.max_size == 0 || args.max_topic_levels == 0 || args.max_client_id == 0 {
        return Err(CmdError::Usage(
            "--max-size, --max-topic-levels and --max-client-id must be at least 1".into(),
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CmdError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let result = rt.block_on(async {
        let (target, embedded) = match &args.target {
            Some(t) => {
                let t = Target {
                    tls: TlsOptions {
                        ca: args.ca.clone(),
                        insecure: args.insecure,
                        client_cert: args.cert.clone().zip(args.key.clone()),
                    },
                    ..t.clone()
                };
                super::run_session::check_target(&t, args.timeout, args.wait_for_target).await?;
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
            timeout: args.timeout,
            max_size: args.max_size,
            max_topic_length: args.max_topic_length,
            max_topic_levels: args.max_topic_levels,
            max_client_id: args.max_client_id,
            max_receive: args.max_receive,
            sys_wait: args.sys_wait,
            username: args.username.clone(),
            password: args.password.clone(),
            ..Options::new(target)
        };
        let report = probe::probe(opts).await;
        if let Some(b) = embedded {
            b.stop().await;
        }
        Ok::<_, CmdError>(report)
    })?;
    let report = match result {
        Ok(r) => r,
        Err(not) => {
            let mut why = String::new();
            for t in &not.finding.evidence {
                why.push_str(&format!("\n  {}: {}", t.what, t.outcome));
            }
            eprintln!(
                "error: {} answered no CONNECT of 3.1, 3.1.1 or 5.0:{why}\n  is it an MQTT broker, and does --target name its MQTT port and transport?",
                args.target.as_ref().map_or_else(|| "the embedded broker".into(), ToString::to_string)
            );
            return Ok(Status::Fail);
        }
    };
    // With a report on stdout, the console goes to stderr.
    let console = output::console(&report, args.verbose);
    if json == Some(Dest::Stdout) || profile == Some(Dest::Stdout) {
        eprint!("{console}");
    } else {
        out.write_all(console.as_bytes())?;
    }
    if let Some(dest) = &json {
        let text = serde_json::to_string_pretty(&output::json(&report)).unwrap_or_default() + "\n";
        dest.write("JSON report", &text, out)
            .map_err(CmdError::Usage)?;
    }
    if let Some(dest) = &profile {
        let name = args
            .profile_name
            .clone()
            .unwrap_or_else(|| format!("probed {}", report.target));
        dest.write("target profile", &output::profile_yaml(&report, &name), out)
            .map_err(CmdError::Usage)?;
    }
    Ok(Status::Pass)
}
