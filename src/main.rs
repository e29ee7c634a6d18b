//! The `mqtt-harness` binary: parses flags, runs a subcommand of the library,
//! and maps its outcome to the exit status: 0 all good, 1 something checked
//! failed (a malformed packet…), 2 the command could not run (bad usage or
//! input); `run` has its own table (`mqtt-harness run --help`).

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Show a statement of the catalogue (version, section, level, who it binds,
    /// summary, the scenarios that check it), a section's statements, or the catalogue.
    Explain(cmd::explain::Args),
    /// The packet fields that encode files and scenario steps may name, per
    /// type and version, with the statements that govern each.
    Fields(cmd::fields::Args),
    /// Which statements of the catalogue the scenarios check, and why the
    /// others are not checked.
    Coverage(cmd::coverage::Args),
    /// Prove every check can fail: run the library against the embedded
    /// broker committing each deliberate violation, and tell which are caught.
    Mutate(cmd::mutate::Args),
    /// Run scenarios against a broker (the embedded reference broker by default)
    /// and report per scenario and per statement.
    Run(Box<cmd::run::Args>),
    /// Run the suite against several brokers (or read their reports) and
    /// compare them statement by statement: one HTML page, one JSON file.
    Matrix(Box<cmd::matrix::Args>),
    /// Write the spec as a book to read offline: each statement beside the
    /// scenarios that check it and their exchanges with the reference broker.
    Book(cmd::book::Args),
    /// What a broker supports and its limits, found by trying, with the
    /// packets that show each; `--write-profile` makes a target profile.
    Probe(Box<cmd::probe::Args>),
    /// Load a broker: publishers, subscribers, QoS, rate, payload size;
    /// throughput, latency percentiles, connection rate, lost messages.
    Bench(Box<cmd::bench::Args>),
    /// Fuzz a live broker (the embedded reference broker by default) with
    /// mutated scenario exchanges; findings minimised, written as scenarios.
    Fuzz(Box<cmd::fuzz::Args>),
    /// The scenario library built into the binary: `scenarios export DIR`.
    Scenarios(cmd::scenarios::Args),
    /// Publish a message (mosquitto_pub's options: -h -p -t -m -q -r -i -u -P -V…).
    Pub(Box<cmd::publish::Args>),
    /// Subscribe and print messages (mosquitto_sub's options: -t -C -W -F -v…, --json).
    Sub(Box<cmd::subscribe::Args>),
    /// A transparent proxy between any client and any broker that prints every
    /// packet both ways, annotated with its statements, and flags violations by either side.
    Proxy(Box<cmd::proxy::Args>),
    /// Serve the reference broker (the same flags as `reference-broker`).
    Broker(Box<reference_broker::cli::Args>),
    /// Print a shell completion script: `mqtt-harness completions bash > /etc/bash_completion.d/mqtt-harness`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of mqtt-harness, or of one subcommand:
    /// `mqtt-harness man run | man -l -`.
    Man {
        /// A subcommand (run, decode…); without it, the page of mqtt-harness.
        subcommand: Option<String>,
    },
}

/// `completions SHELL` and `man [SUBCOMMAND]`, generated from the flags above.
fn generated(command: &Command, out: &mut dyn Write) -> Option<Result<Status, CmdError>> {
    let mut cli = Cli::command();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cli, "mqtt-harness", out);
            Some(Ok(Status::Pass))
        }
        Command::Man { subcommand } => {
            let page = match subcommand {
                None => cli,
                Some(name) => {
                    cli.build();
                    let found = cli.find_subcommand(name).cloned();
                    match found {
                        // Built: its display name is `mqtt-harness-{name}`.
                        Some(sub) => sub,
                        None => {
                            return Some(Err(CmdError::Usage(format!(
                                "`{name}` is not a subcommand; `mqtt-harness --help` lists them"
                            ))))
                        }
                    }
                }
            };
            Some(
                clap_mangen::Man::new(page)
                    .render(out)
                    .map(|()| Status::Pass)
                    .map_err(CmdError::Output),
            )
        }
        _ => None,
    }
}

fn run(command: &Command, out: &mut dyn Write) -> Result<Status, CmdError> {
    if let Some(done) = generated(command, out) {
        return done;
    }
    let mut stdin = io::stdin().lock();
    match command {
        Command::Decode(args) => cmd::decode::run(args, &mut stdin, out),
        Command::Encode(args) => cmd::encode::run(args, &mut stdin, out),
        Command::Explain(args) => cmd::explain::run(args, &mut stdin, out),
        Command::Fields(args) => cmd::fields::run(args, &mut stdin, out),
        Command::Coverage(args) => cmd::coverage::run(args, &mut stdin, out),
        Command::Mutate(args) => cmd::mutate::run(args, &mut stdin, out),
        Command::Run(args) => cmd::run::run(args, &mut stdin, out),
        Command::Matrix(args) => cmd::matrix::run(args, &mut stdin, out),
        Command::Scenarios(args) => cmd::scenarios::run(args, &mut stdin, out),
        Command::Pub(args) => cmd::publish::run(args, &mut stdin, out),
        Command::Sub(args) => cmd::subscribe::run(args, &mut stdin, out),
        Command::Proxy(args) => cmd::proxy::run(args, &mut stdin, out),
        Command::Book(args) => cmd::book::run(args, &mut stdin, out),
        Command::Probe(args) => cmd::probe::run(args, &mut stdin, out),
        Command::Bench(args) => cmd::bench::run(args, &mut stdin, out),
        Command::Fuzz(args) => cmd::fuzz::run(args, &mut stdin, out),
        Command::Broker(args) => {
            let runtime = reference_broker::cli::runtime(args)?;
            match runtime.block_on(reference_broker::cli::run((**args).clone())) {
                0 => Ok(Status::Pass),
                _ => Err(CmdError::Runtime(
                    "the broker could not start (see above)".into(),
                )),
            }
        }
        Command::Completions { .. } | Command::Man { .. } => Ok(Status::Pass),
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
