use std::process::ExitCode;

use clap::Parser;
use reference_broker::{violation, Config};

/// Strict reference MQTT broker (3.1, 3.1.1, 5.0) of mqtt-harness.
#[derive(Parser, Debug)]
#[command(name = "reference-broker", version)]
struct Args {
    /// Address to listen on (TCP).
    #[arg(long, default_value = "127.0.0.1:1883")]
    listen: String,
    /// Break a server-side statement on purpose (repeatable); `--violate list` prints them.
    #[arg(long = "violate", value_name = "ID")]
    violate: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = Config::default();
    for v in &args.violate {
        if v == "list" {
            print!("{}", violation::list());
            return ExitCode::SUCCESS;
        }
        if let Err(e) = config.violations.add(v) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("reference-broker listening on mqtt://{addr}");
    }
    match reference_broker::server::run(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
