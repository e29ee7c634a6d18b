//! The `mqtt-harness` binary: parses flags, runs a subcommand of the library,
//! and maps its outcome to the exit status: 0 all good, 1 something checked
//! failed (a malformed packet…), 2 the command could not run (bad usage or input).

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mqtt_harness::cmd::{self, CmdError, Status};

#[derive(Debug, Parser)]
#[command(
    name = "mqtt-harness",
    version,
    about = "MQTT conformance and fuzz test harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode hex bytes as a stream of MQTT packets, field by field, with the
    /// statements of the spec that govern each field.
    Decode(cmd::decode::Args),
    /// Write packets described in YAML or JSON as hex, valid or deliberately not.
    Encode(cmd::encode::Args),
    /// Show a statement of the catalogue: version, section, level, who it binds, summary.
    Explain(cmd::explain::Args),
    /// Which statements of the catalogue the scenarios check, and why the
    /// others are not checked.
    Coverage(cmd::coverage::Args),
    /// Run scenarios against a broker (the embedded reference broker by default)
    /// and report per scenario and per statement.
    Run(Box<cmd::run::Args>),
    /// Run the suite against several brokers (or read their reports) and
    /// compare them statement by statement: one HTML page, one JSON file.
    Matrix(Box<cmd::matrix::Args>),
    /// Serve the reference broker (the same flags as `reference-broker`).
    Broker(Box<reference_broker::cli::Args>),
}

fn run(command: &Command, out: &mut dyn Write) -> Result<Status, CmdError> {
    let mut stdin = io::stdin().lock();
    match command {
        Command::Decode(args) => cmd::decode::run(args, &mut stdin, out),
        Command::Encode(args) => cmd::encode::run(args, &mut stdin, out),
        Command::Explain(args) => cmd::explain::run(args, &mut stdin, out),
        Command::Coverage(args) => cmd::coverage::run(args, &mut stdin, out),
        Command::Run(args) => cmd::run::run(args, &mut stdin, out),
        Command::Matrix(args) => cmd::matrix::run(args, &mut stdin, out),
        Command::Broker(args) => {
            let runtime = tokio::runtime::Runtime::new()?;
            match runtime.block_on(reference_broker::cli::run((**args).clone())) {
                0 => Ok(Status::Pass),
                _ => Err(CmdError::Runtime(
                    "the broker could not start (see above)".into(),
                )),
            }
        }
    }
}

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with status 2.
    let cli = Cli::parse();
    let mut out = BufWriter::new(io::stdout().lock());
    let result = run(&cli.command, &mut out).and_then(|status| {
        out.flush()?;
        Ok(status)
    });
    match result {
        Ok(status) => ExitCode::from(status.exit_code()),
        // A reader that stopped reading (`| head`) is not an error worth a message.
        Err(CmdError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(2),
        Err(e) => {
            let _ = out.flush();
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
