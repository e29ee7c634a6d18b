//! `mqtt-harness proxy --listen ADDR --target URL`: a transparent proxy that
//! prints every packet both ways, decoded and annotated with the statements
//! that govern it, and flags every spec violation by either side — so a
//! client library is checked as well as a broker. Bytes are forwarded as
//! they came; a packet that does not decode is reported and forwarded or
//! closed on (`--on-malformed`). Each client connection gets its own
//! upstream connection. `--record FILE` writes the exchanges as a scenario
//! for `mqtt-harness run FILE`.
//!
//! Exit status: 0 it stopped (Ctrl-C, or `--exit-after N` connections
//! ended) and nobody broke a rule; 1 it stopped and a violation or
//! malformed packet was seen; 2 bad options; 3 it could not listen.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{CmdError, Status};
use crate::net::{Target, TlsOptions};

mod record;
mod relay;

/// What to do with bytes that do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnMalformed {
    /// Report them and pass them on (the peer shows what it does with them).
    Forward,
    /// Report them and close both connections.
    Close,
}

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 stopped (Ctrl-C, --exit-after) with no violation seen; 1 stopped after a violation or malformed packet; 2 bad options; 3 could not listen."
)]
pub struct Args {
    /// Address to accept clients on (plain MQTT over TCP), e.g. 127.0.0.1:1884; port 0 picks one.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// The broker: mqtt://host:port, mqtts://…, ws://host:port/mqtt, wss://….
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// JSON lines instead of text: one event (open, packet, violation, close) per line.
    #[arg(long)]
    pub json: bool,
    /// Write the exchanges as a scenario (YAML) that `mqtt-harness run FILE` replays; rewritten as each connection ends.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Bytes that do not decode: forward them, or close both connections.
    #[arg(long, value_enum, default_value = "forward")]
    pub on_malformed: OnMalformed,
    /// Stop after this many client connections have ended.
    #[arg(long, value_name = "N")]
    pub exit_after: Option<u64>,
    /// Deadline for reaching the target, and for each write.
    #[arg(long, default_value = "10s", value_parser = super::run::parse_timeout)]
    pub timeout: Duration,
    /// A connection on which nothing moves for this long is closed.
    #[arg(long, default_value = "3600s", value_parser = super::run::parse_timeout)]
    pub idle_timeout: Duration,
    /// PEM file of the authorities that signed the target's certificate.
    #[arg(long, value_name = "FILE")]
    pub cafile: Option<PathBuf>,
    /// Client certificate chain (PEM) for the target; needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Accept any certificate from the target (testing only).
    #[arg(long)]
    pub insecure: bool,
}

/// What a connection's task tells the printer.
pub(crate) enum Msg {
    /// One line of output (text or JSON); `bad` when it reports a violation.
    Line { text: String, bad: bool },
    /// The connection ended: what it saw, for `--record`.
    Done(u64, Vec<record::Recorded>),
}

/// What every connection's task shares.
pub(crate) struct Shared {
    pub target: Target,
    pub json: bool,
    pub on_malformed: OnMalformed,
    pub timeout: Duration,
    pub idle: Duration,
    pub record: bool,
    /// Orders the events of all connections.
    pub seq: AtomicU64,
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let mut target =
        Target::parse(&args.target).map_err(|e| CmdError::Usage(format!("--target: {e}")))?;
    target.tls = TlsOptions {
        ca: args.cafile.clone(),
        insecure: args.insecure,
        client_cert: args.cert.clone().zip(args.key.clone()),
    };
    let shared = Arc::new(Shared {
        target,
        json: args.json,
        on_malformed: args.on_malformed,
        timeout: args.timeout,
        idle: args.idle_timeout,
        record: args.record.is_some(),
        seq: AtomicU64::new(0),
    });
    let rt = super::client_opts::runtime()?;
    rt.block_on(serve(args, shared, out))
}

async fn serve(args: &Args, shared: Arc<Shared>, out: &mut dyn Write) -> Result<Status, CmdError> {
    let listener = TcpListener::bind(&args.listen).await.map_err(|e| {
        CmdError::Runtime(format!(
            "cannot listen on {}: {e}; give a free address, e.g. --listen 127.0.0.1:1884 (port 0 picks one)",
            args.listen
        ))
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| CmdError::Runtime(format!("cannot read the listening address: {e}")))?;
    if args.json {
        writeln!(
            out,
            "{}",
            json!({"event": "listening", "address": local.to_string(), "target": shared.target.to_string()})
        )?;
    } else {
        writeln!(out, "proxy listening on {local} → {}", shared.target)?;
    }
    out.flush()?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut next_id = 0u64;
    let (mut active, mut ended) = (0u64, 0u64);
    let mut bad = false;
    let mut recorded: Vec<(u64, Vec<record::Recorded>)> = Vec::new();
    loop {
        if args.exit_after.is_some_and(|n| ended >= n) && active == 0 {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    next_id += 1;
                    active += 1;
                    tokio::spawn(relay::relay(next_id, tcp, peer, shared.clone(), tx.clone()));
                }
                Err(e) => eprintln!("warning: accepting a connection failed: {e}"),
            },
            msg = rx.recv() => match msg {
                Some(Msg::Line { text, bad: b }) => {
                    bad |= b;
                    writeln!(out, "{text}")?;
                    out.flush()?;
                }
                Some(Msg::Done(id, seen)) => {
                    active = active.saturating_sub(1);
                    ended += 1;
                    if let Some(path) = &args.record {
                        recorded.push((id, seen));
                        let yaml = record::scenario(&recorded, &shared.target.to_string());
                        std::fs::write(path, yaml).map_err(|e| {
                            CmdError::Usage(format!("--record {}: cannot write it: {e}", path.display()))
                        })?;
                    }
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(if bad { Status::Fail } else { Status::Pass })
}
