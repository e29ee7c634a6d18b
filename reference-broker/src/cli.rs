//! The broker's command line, shared by the `reference-broker` binary and
//! `mqtt-harness broker`.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, FileConfig, ListenerConfig};
use crate::server::Shared;
use crate::transport::{self, Acceptor};
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
    /// Password file of `user:$pbkdf2-sha256$…` lines (make lines with --hash-password).
    /// With one, clients without a user name are refused unless the config file allows them.
    #[arg(long, value_name = "FILE")]
    password_file: Option<String>,
    /// Topic ACL file (`user NAME`, `topic [read|write|readwrite] FILTER`, `pattern …` with %c / %u).
    #[arg(long, value_name = "FILE")]
    acl_file: Option<String>,
    /// Print a password file line for USER, the password read from standard input, and exit.
    #[arg(long, value_name = "USER")]
    hash_password: Option<String>,
    /// PBKDF2 iterations for --hash-password.
    #[arg(long, value_name = "N", default_value_t = crate::auth::DEFAULT_ITERATIONS)]
    iterations: u32,
    /// Keep sessions, queued and in-flight messages and retained messages in DIR across restarts.
    #[arg(long, value_name = "DIR")]
    persist: Option<std::path::PathBuf>,
    /// Threads that serve connections. Every packet goes through the core's one lock, so more
    /// than one helps only where much of the work is outside it (TLS, WebSocket framing).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: u16,
}

/// The tokio runtime the broker runs on, with `--threads` worker threads.
///
/// The default is one. Every packet is handled under the core's one lock
/// (`server.rs`), and about half of the broker's CPU is spent there; a
/// second thread can run only the other half (socket reads and writes,
/// encoding) beside it, and each time the two meet at the lock one of
/// them sleeps in the kernel and has to be woken. Measured on two cores
/// (`cargo bench -p reference-broker --bench throughput`), two threads
/// were slower than one in every QoS 1 run (fan-out 715k against 937k
/// messages/s, 1.50 against 1.06 µs of CPU per delivery; 17% of the CPU in
/// futex calls on that lock) and equal at QoS 0. More threads pay off
/// where most of the work is outside the lock: TLS or WebSocket framing
/// on many cores.
pub fn runtime(args: &Args) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(usize::from(args.threads));
        b
    };
    builder.enable_all().build()
}

fn setup(args: &Args) -> Result<(Config, Vec<ListenerConfig>), String> {
    let mut config = Config::default();
    let mut listeners = Vec::new();
    let mut file = FileConfig::default();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        file = FileConfig::parse(path, &text)?;
        file.apply(&mut config)
            .map_err(|e| format!("{path}: {e}"))?;
        listeners.extend(file.listeners.iter().cloned());
    }
    // Flags win over the file.
    let password_file = args.password_file.as_ref().or(file.password_file.as_ref());
    let acl_file = args.acl_file.as_ref().or(file.acl_file.as_ref());
    if password_file.is_some() || acl_file.is_some() || file.allow_anonymous.is_some() {
        config.auth = crate::auth::Auth::load(
            password_file.map(String::as_str),
            acl_file.map(String::as_str),
            file.allow_anonymous,
        )?;
        if acl_file.is_some() && password_file.is_none() {
            eprintln!("warning: an ACL file without a password file: user names are not checked, so `user` sections and %u trust what clients claim");
        }
    }
    config.persist_dir = args
        .persist
        .clone()
        .or_else(|| file.persist_dir.as_ref().map(Into::into));
    for v in &args.violate {
        config.violations.add(v)?;
    }
    for (list, transport) in [
        (&args.listen, "mqtt"),
        (&args.tls, "mqtts"),
        (&args.ws, "ws"),
        (&args.wss, "wss"),
    ] {
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

fn acceptor_for(l: &ListenerConfig) -> Result<Acceptor, String> {
    let tls = || -> Result<_, String> {
        let (Some(cert), Some(key)) = (&l.cert, &l.key) else {
            return Err(format!(
                "listener {} ({}) needs a certificate and a key (--cert, --key)",
                l.address, l.transport
            ));
        };
        let cert =
            std::fs::read(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
        let key = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
        transport::tls_acceptor(&cert, &key).map_err(|e| e.to_string())
    };
    match l.transport.as_str() {
        "mqtt" | "tcp" => Ok(Acceptor::Tcp),
        "mqtts" | "tls" => Ok(Acceptor::Tls(tls()?)),
        "ws" => Ok(Acceptor::Ws),
        "wss" => Ok(Acceptor::Wss(tls()?)),
        other => Err(format!(
            "unknown transport {other:?}: use mqtt, mqtts, ws or wss"
        )),
    }
}

/// Runs the broker until Ctrl-C; returns the process exit status
/// (0, or 2 for a configuration error).
pub async fn run(args: Args) -> u8 {
    if let Some(user) = &args.hash_password {
        return hash_password(user, args.iterations);
    }
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
    let shared: Arc<Shared> = match Shared::open(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for l in &listeners {
        let acceptor = match acceptor_for(l) {
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
            println!(
                "reference-broker listening on {}://{addr}",
                acceptor.scheme().as_str()
            );
        }
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(transport::serve(
            listener,
            acceptor,
            shared.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )));
    }
    tokio::spawn(crate::server::run_timers(shared.clone()));
    stop_signal().await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if !shared.close_all(Duration::from_secs(5)).await {
        eprintln!("warning: connections still open after 5 s; stopping anyway");
    }
    shared.release_persistence();
    0
}

/// `--hash-password USER`: reads one line (the password) from standard input
/// and prints the password file line.
fn hash_password(user: &str, iterations: u32) -> u8 {
    if user.is_empty() || user.contains(':') || user.contains(char::is_whitespace) {
        eprintln!("error: the user name must be non-empty, without ':' or spaces");
        return 2;
    }
    if !(crate::auth::MIN_ITERATIONS..=crate::auth::MAX_ITERATIONS).contains(&iterations) {
        eprintln!(
            "error: --iterations must be from {} to {}",
            crate::auth::MIN_ITERATIONS,
            crate::auth::MAX_ITERATIONS
        );
        return 2;
    }
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("error: cannot read the password from standard input: {e}");
        return 2;
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("error: empty password (write it on standard input, e.g. `echo secret | reference-broker --hash-password {user}`)");
        return 2;
    }
    let salt = match crate::auth::random_bytes::<16>() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    println!(
        "{}",
        crate::auth::hash_line(user, password.as_bytes(), iterations, &salt)
    );
    0
}

/// Ctrl-C, or SIGTERM (how service managers stop a daemon) on Unix: either
/// way the broker stops accepting and writes what is not yet persisted.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
