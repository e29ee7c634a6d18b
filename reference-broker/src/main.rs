use std::process::ExitCode;

use clap::Parser;

/// Strict reference MQTT broker (3.1, 3.1.1, 5.0) of mqtt-harness.
#[derive(Parser, Debug)]
#[command(name = "reference-broker", version)]
struct Cli {
    #[command(flatten)]
    args: reference_broker::cli::Args,
}

fn main() -> ExitCode {
    let args = Cli::parse().args;
    match reference_broker::cli::runtime(&args) {
        Ok(rt) => ExitCode::from(rt.block_on(reference_broker::cli::run(args))),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(2)
        }
    }
}
