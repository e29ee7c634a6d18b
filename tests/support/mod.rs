//! Real brokers for the command-line tests, started on ports chosen at run
//! time and stopped when dropped: the embedded reference broker (as the
//! `mqtt-harness broker` subcommand, a real process) and Debian's mosquitto.
//!
//! A test that needs mosquitto fails when it is not installed: CI installs it
//! (`.ci/run`), and a skipped check would let a broken tool pass.
//!
//! Use it from a test file with `mod support;`. Not every test file uses every
//! helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod process;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The harness binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");

/// How long a broker gets to start answering.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A broker process that is killed when dropped.
pub struct Broker {
    child: Child,
    pub port: u16,
    /// Kept so the configuration outlives the process.
    _dir: Option<TempDir>,
}

impl Broker {
    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The process id, for tools that watch the broker's memory.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The embedded reference broker, `mqtt-harness broker --listen 127.0.0.1:0
/// EXTRA…`: its first stdout line names the port it bound.
pub fn embedded(extra: &[&str]) -> Broker {
    let mut child = Command::new(BIN)
        .args(["broker", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the harness binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let mut out = BufReader::new(stdout);
    out.read_line(&mut line)
        .expect("the broker prints where it listens");
    // The rest of its output (more listeners, log lines) is drained, so the
    // broker never dies of a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    // "reference-broker listening on mqtt://127.0.0.1:PORT"
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in the broker's first line: {line:?}"));
    wait_until_listening(port, &mut child, "the embedded broker");
    Broker {
        child,
        port,
        _dir: None,
    }
}

/// Debian's mosquitto on a free loopback port, anonymous access allowed, plus
/// `extra_config` lines.
pub fn mosquitto(extra_config: &str) -> Broker {
    let exe = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("mosquitto is installed (apt-get install mosquitto; .ci/run does)");
    let port = free_port();
    let dir = TempDir::new("mosquitto");
    let conf = dir.path.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra_config}\n"
        ),
    )
    .expect("write the mosquitto configuration");
    let mut child = Command::new(exe)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    wait_until_listening(port, &mut child, "mosquitto");
    Broker {
        child,
        port,
        _dir: Some(dir),
    }
}

/// A port that was free a moment ago (bound to 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_until_listening(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening on port {port}: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within {START_DEADLINE:?}"
        );
        // The child announces nothing (and its output may be a test's to
        // read): its port is polled, bounded by the deadline above, which
        // waits for a state, not for time to pass.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "mqtt-harness-{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The embedded broker on all four transports, with an rcgen certificate for
/// `localhost` (its PEM at `ca`): the URLs, in the order mqtt, mqtts, ws,
/// wss, naming `localhost` so that the certificate matches.
pub fn embedded_all_transports() -> (Broker, [String; 4], PathBuf) {
    let dir = TempDir::new("broker-tls");
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
    let (cert, key) = (dir.path.join("cert.pem"), dir.path.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).expect("write the certificate");
    std::fs::write(&key, c.key_pair.serialize_pem()).expect("write the key");
    let mut child = Command::new(BIN)
        .args(["broker", "--listen", "127.0.0.1:0", "--tls", "127.0.0.1:0"])
        .args(["--ws", "127.0.0.1:0", "--wss", "127.0.0.1:0"])
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the harness binary starts");
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    // One "reference-broker listening on SCHEME://ADDR" line per listener, in flag order.
    let urls: [String; 4] = std::array::from_fn(|_| {
        let mut line = String::new();
        out.read_line(&mut line)
            .expect("the broker prints where it listens");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .replace("127.0.0.1", "localhost");
        match url.split_once("://") {
            Some(("ws" | "wss", _)) => format!("{url}/mqtt"),
            _ => url,
        }
    });
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let port = urls[0]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    wait_until_listening(port, &mut child, "the embedded broker");
    (
        Broker {
            child,
            port,
            _dir: Some(dir),
        },
        urls,
        cert,
    )
}
