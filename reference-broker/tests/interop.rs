//! Interoperability with the Eclipse Mosquitto command-line clients
//! (`mosquitto_sub`, `mosquitto_pub`) against the broker started in-process.
//!
//! These tests fail, not skip, when the clients are missing: CI installs
//! `mosquitto-clients`, and a silently skipped interop suite proves nothing.
//!
//! Nothing sleeps. `mosquitto_sub` buffers its debug output when writing to a
//! pipe, but flushes every message it prints; so each subscriber also
//! subscribes, last, to a topic holding a retained "ready" message: once that
//! line is printed, its earlier subscriptions are in force.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use common::{tool, Client};
use mqtt_codec::{Connect, Properties, Protocol, QoS, Will};
use reference_broker::{server, Config};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;
use tokio::time::{timeout, timeout_at, Instant};

/// Upper bound for anything a client or the broker should do at once.
const DEADLINE: Duration = Duration::from_secs(15);
const READY_TOPIC: &str = "interop/ready";
/// Fields printed per message by `mosquitto_sub -F`: topic, QoS, retain flag, payload.
const FORMAT: &str = "%t %q %r %p";
const VERSIONS: [&str; 3] = ["mqttv31", "mqttv311", "mqttv5"];

struct Broker {
    addr: SocketAddr,
    _shutdown: oneshot::Sender<()>,
}

/// Starts the broker on an ephemeral port and stores the readiness marker.
async fn start() -> Broker {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server::run(listener, Config::default(), async move {
        let _ = rx.await;
    }));
    let broker = Broker {
        addr,
        _shutdown: tx,
    };
    publish(
        &broker,
        "mqttv311",
        &["-t", READY_TOPIC, "-m", "ready", "-r", "-q", "1"],
    )
    .await;
    broker
}

fn command(name: &str, broker: &Broker, version: &str) -> Command {
    let mut cmd = Command::new(tool(name));
    cmd.arg("-h")
        .arg(broker.addr.ip().to_string())
        .arg("-p")
        .arg(broker.addr.port().to_string())
        .arg("-V")
        .arg(version)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `mosquitto_pub` to completion; it must succeed.
async fn publish(broker: &Broker, version: &str, args: &[&str]) {
    let mut cmd = command("mosquitto_pub", broker, version);
    cmd.args(args);
    let out = timeout(DEADLINE, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("mosquitto_pub {args:?} did not finish within {DEADLINE:?}"))
        .expect("run mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub {version} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `mosquitto_sub` printing `FORMAT` lines.
struct Sub {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    what: String,
}

impl Sub {
    /// Starts `mosquitto_sub` with `args` plus the readiness topic, and
    /// returns once its subscriptions are in force. `count` is how many
    /// messages it is to receive besides the readiness marker.
    async fn start(broker: &Broker, version: &str, args: &[&str], count: usize) -> Sub {
        let mut cmd = command("mosquitto_sub", broker, version);
        let count = (count + 1).to_string();
        cmd.args(args)
            .args(["-t", READY_TOPIC, "-C", &count, "-W", "10", "-F", FORMAT]);
        let mut sub = Sub::spawn(cmd, format!("mosquitto_sub -V {version} {args:?}"));
        let line = sub.line().await;
        // "<topic> <qos> 1 ready": the QoS is the lower of 1 and the subscription's.
        assert!(
            line.starts_with(READY_TOPIC) && line.ends_with(" 1 ready"),
            "{}: {line}",
            sub.what
        );
        sub
    }

    /// Starts `mosquitto_sub` with exactly `args` (no readiness topic).
    fn start_plain(broker: &Broker, version: &str, args: &[&str]) -> Sub {
        let mut cmd = command("mosquitto_sub", broker, version);
        cmd.args(args).args(["-F", FORMAT]);
        Sub::spawn(cmd, format!("mosquitto_sub -V {version} {args:?}"))
    }

    fn spawn(mut cmd: Command, what: String) -> Sub {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        Sub {
            child,
            lines: BufReader::new(stdout).lines(),
            what,
        }
    }

    /// The next line it prints, within the deadline.
    async fn line(&mut self) -> String {
        let until = Instant::now() + DEADLINE;
        match timeout_at(until, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => {
                let stderr = self.stderr().await;
                panic!(
                    "{} ended before printing the expected line: {stderr}",
                    self.what
                )
            }
            Ok(Err(e)) => panic!("{}: cannot read its output: {e}", self.what),
            Err(_) => panic!("{}: no output within {DEADLINE:?}", self.what),
        }
    }

    /// The next line it prints, which must be `want`.
    async fn expect_line(&mut self, want: String) {
        let line = self.line().await;
        assert_eq!(line, want, "{}", self.what);
    }

    async fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = timeout(Duration::from_secs(1), e.read_to_string(&mut err)).await;
        }
        err
    }

    /// Waits for it to exit after its message count; it must succeed.
    async fn finish(mut self) {
        let status = timeout(DEADLINE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {DEADLINE:?}", self.what))
            .expect("wait for mosquitto_sub");
        if !status.success() {
            let stderr = self.stderr().await;
            panic!("{} exited with {status}: {stderr}", self.what);
        }
    }
}

#[tokio::test]
async fn qos_levels_all_versions() {
    let broker = start().await;
    for (i, sub_version) in VERSIONS.iter().enumerate() {
        // Publisher in another version than the subscriber: the broker translates.
        let pub_version = VERSIONS[(i + 1) % VERSIONS.len()];
        for qos in ["0", "1", "2"] {
            let topic = format!("interop/{sub_version}/q{qos}");
            let payload = format!("hello-{sub_version}-{qos}");
            let mut sub = Sub::start(
                &broker,
                sub_version,
                &["-i", &format!("s{i}q{qos}"), "-q", qos, "-t", &topic],
                1,
            )
            .await;
            publish(
                &broker,
                pub_version,
                &[
                    "-i",
                    &format!("p{i}q{qos}"),
                    "-q",
                    qos,
                    "-t",
                    &topic,
                    "-m",
                    &payload,
                ],
            )
            .await;
            sub.expect_line(format!("{topic} {qos} 0 {payload}")).await;
            sub.finish().await;
        }
    }
}

#[tokio::test]
async fn granted_qos_downgrade() {
    let broker = start().await;
    let mut sub = Sub::start(
        &broker,
        "mqttv5",
        &["-i", "low", "-q", "1", "-t", "interop/down"],
        1,
    )
    .await;
    publish(
        &broker,
        "mqttv311",
        &["-q", "2", "-t", "interop/down", "-m", "x"],
    )
    .await;
    assert_eq!(sub.line().await, "interop/down 1 0 x");
    sub.finish().await;
}

#[tokio::test]
async fn retained_message() {
    let broker = start().await;
    for (i, version) in VERSIONS.iter().enumerate() {
        let topic = format!("interop/retained/{version}");
        publish(
            &broker,
            version,
            &[
                "-i",
                &format!("rp{i}"),
                "-q",
                "1",
                "-r",
                "-t",
                &topic,
                "-m",
                "kept",
            ],
        )
        .await;
        // Subscribed after the publication: the stored copy, with RETAIN set.
        let mut sub = Sub::start_plain(
            &broker,
            version,
            &[
                "-i",
                &format!("rs{i}"),
                "-q",
                "2",
                "-t",
                &topic,
                "-C",
                "1",
                "-W",
                "10",
            ],
        );
        sub.expect_line(format!("{topic} 1 1 kept")).await;
        sub.finish().await;
        // Replaced by a newer retained message.
        publish(
            &broker,
            version,
            &[
                "-i",
                &format!("rp{i}"),
                "-q",
                "0",
                "-r",
                "-t",
                &topic,
                "-m",
                "newer",
            ],
        )
        .await;
        let mut sub = Sub::start_plain(
            &broker,
            version,
            &["-i", &format!("rs{i}"), "-t", &topic, "-C", "1", "-W", "10"],
        );
        sub.expect_line(format!("{topic} 0 1 newer")).await;
        sub.finish().await;
    }
}

#[tokio::test]
async fn will_of_killed_client() {
    let broker = start().await;
    for version in VERSIONS {
        let topic = format!("interop/will/{version}");
        let mut watcher = Sub::start(
            &broker,
            version,
            &["-i", "watcher", "-q", "1", "-t", &topic],
            1,
        )
        .await;
        // A client with a will, killed without DISCONNECT.
        let mut dying = Sub::start(
            &broker,
            version,
            &[
                "-i",
                "dying",
                "-t",
                "interop/nothing",
                "--will-topic",
                &topic,
                "--will-payload",
                "gone",
                "--will-qos",
                "1",
            ],
            1,
        )
        .await;
        dying.child.start_kill().expect("kill mosquitto_sub");
        let _ = timeout(DEADLINE, dying.child.wait())
            .await
            .expect("killed client exits");
        watcher.expect_line(format!("{topic} 1 0 gone")).await;
        watcher.finish().await;
    }
}

#[tokio::test]
async fn will_of_dropped_raw_connection() {
    let broker = start().await;
    let mut watcher = Sub::start(
        &broker,
        "mqttv5",
        &["-i", "watcher", "-q", "2", "-t", "interop/raw-will"],
        1,
    )
    .await;
    let mut connect = Connect::new(Protocol::V3_1_1, "raw");
    connect.will = Some(Will {
        qos: QoS::ExactlyOnce,
        retain: false,
        properties: Properties::new(),
        topic: "interop/raw-will".into(),
        payload: Bytes::from_static(b"raw-gone"),
    });
    let (raw, code, _) = Client::handshake(broker.addr, connect, DEADLINE).await;
    assert_eq!(code, 0, "CONNACK code");
    drop(raw);
    assert_eq!(watcher.line().await, "interop/raw-will 2 0 raw-gone");
    watcher.finish().await;
}

#[tokio::test]
async fn persistent_session_receives_offline_messages() {
    let broker = start().await;
    for (i, version) in VERSIONS.iter().enumerate() {
        let id = format!("persist{i}");
        let topic = format!("interop/persist/{version}");
        // Subscribe with a persistent session, and leave (-E: exit after SUBACK).
        let first = Sub::start_plain(
            &broker,
            version,
            &["-c", "-i", &id, "-q", "1", "-t", &topic, "-E"],
        );
        first.finish().await;
        // Published while the subscriber is away.
        publish(
            &broker,
            version,
            &["-q", "1", "-t", &topic, "-m", "while-away"],
        )
        .await;
        publish(
            &broker,
            version,
            &["-q", "0", "-t", &topic, "-m", "qos0-not-kept"],
        )
        .await;
        publish(&broker, version, &["-q", "2", "-t", &topic, "-m", "second"]).await;
        // Back with the same id and no new SUBSCRIBE needed: the queue is delivered.
        let mut again = Sub::start_plain(
            &broker,
            version,
            &[
                "-c", "-i", &id, "-q", "1", "-t", &topic, "-C", "2", "-W", "10",
            ],
        );
        again.expect_line(format!("{topic} 1 0 while-away")).await;
        again.expect_line(format!("{topic} 1 0 second")).await;
        again.finish().await;
    }
}
