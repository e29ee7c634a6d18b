//! The broker's command line, shared by the `reference-broker` binary and
//! `mqtt-harness broker`.

use std::sync::Arc;

use crate::config::{Config, FileConfig, ListenerConfig};
use crate::server::Shared;
use crate::transport::{self, Transport};
use crate::violation;

/// Strict reference MQTT broker (3.1, 3.1.1, 5.0) of mqtt-harness.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// TCP address to listen on (repeatable). Default 127.0.0.1:1883 when no listener is given.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// TLS address to listen on (needs --cert and --key).
    #[arg(long, value_name = "ADDR")]
    tls: Vec<String>,
    /// WebSocket address to listen on (subprotocol "mqtt").
    #[arg(long, value_name = "ADDR")]
    ws: Vec<String>,
    /// Secure WebSocket address to listen on (needs --cert and --key).
    #[arg(long, value_name = "ADDR")]
    wss: Vec<String>,
    /// PEM certificate chain for --tls / --wss.
    #[arg(long)]
    cert: Option<std::path::PathBuf>,
    /// PEM private key for --tls / --wss.
    #[arg(long)]
    key: Option<std::path::PathBuf>,
    /// YAML configuration file (listeners, features, limits, violations).
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Break a server-side statement on purpose (repeatable); `--violate list` prints them.
    #[arg(long = "violate", value_name = "ID")]
    violate: Vec<String>,
}

fn setup(args: &Args) -> Result<(Config, Vec<ListenerConfig>), String> {
    let mut config = Config::default();
    let mut listeners = Vec::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let file = FileConfig::parse(path, &text)?;
        file.apply(&mut config).map_err(|e| format!("{path}: {e}"))?;
        listeners.extend(file.listeners.iter().cloned());
    }
    for v in &args.violate {
        config.violations.add(v)?;
    }
    for (list, transport) in [(&args.listen, "mqtt"), (&args.tls, "mqtts"), (&args.ws, "ws"), (&args.wss, "wss")] {
        for address in list {
            listeners.push(ListenerConfig {
                address: address.clone(),
                transport: transport.into(),
                cert: args.cert.clone(),
                key: args.key.clone(),
            });
        }
    }
    if listeners.is_empty() {
        listeners.push(ListenerConfig {
            address: "127.0.0.1:1883".into(),
            transport: "mqtt".into(),
            cert: None,
            key: None,
        });
    }
    Ok((config, listeners))
}

fn transport_for(l: &ListenerConfig) -> Result<Transport, String> {
    let tls = || -> Result<_, String> {
        let (Some(cert), Some(key)) = (&l.cert, &l.key) else {
            return Err(format!("listener {} ({}) needs a certificate and a key (--cert, --key)", l.address, l.transport));
        };
        let cert = std::fs::read(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
        let key = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
        transport::tls_acceptor(&cert, &key)
    };
    match l.transport.as_str() {
        "mqtt" | "tcp" => Ok(Transport::Tcp),
        "mqtts" | "tls" => Ok(Transport::Tls(tls()?)),
        "ws" => Ok(Transport::Ws),
        "wss" => Ok(Transport::Wss(tls()?)),
        other => Err(format!("unknown transport {other:?}: use mqtt, mqtts, ws or wss")),
    }
}

/// Runs the broker until Ctrl-C; returns the process exit status
/// (0, or 2 for a configuration error).
pub async fn run(args: Args) -> u8 {
    if args.violate.iter().any(|v| v == "list") {
        print!("{}", violation::list());
        return 0;
    }
    let (config, listeners) = match setup(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let shared: Arc<Shared> = Shared::new(config);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for l in &listeners {
        let transport = match transport_for(l) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        let listener = match tokio::net::TcpListener::bind(&l.address).await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", l.address);
                return 2;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            println!("reference-broker listening on {}://{addr}", transport.scheme());
        }
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(transport::serve(listener, transport, shared.clone(), async move {
            let _ = stop.wait_for(|s| *s).await;
        })));
    }
    tokio::spawn(crate::server::run_timers(shared.clone()));
    let _ = tokio::signal::ctrl_c().await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    0
}
