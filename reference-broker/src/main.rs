use std::process::ExitCode;

use clap::Parser;

/// Strict reference MQTT broker (3.1, 3.1.1, 5.0) of mqtt-harness.
#[derive(Parser, Debug)]
#[command(name = "reference-broker", version)]
struct Cli {
    #[command(flatten)]
    args: reference_broker::cli::Args,
}

#[tokio::main]
async fn main() -> ExitCode {
    ExitCode::from(reference_broker::cli::run(Cli::parse().args).await)
}
