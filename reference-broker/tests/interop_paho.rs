//! Interoperability with Eclipse Paho (`paho-mqtt`, Python) against the
//! broker started in-process, over TCP, TLS, WebSocket and secure WebSocket,
//! in MQTT 3.1.1 and 5.0.
//!
//! These tests fail, not skip, when `python3` or `paho-mqtt` is missing: CI
//! installs it (`python3 -m pip install paho-mqtt`), and a silently skipped
//! interop suite proves nothing.
//!
//! Each client is a small Python script run with `python3 -c`, killed when
//! dropped. Every wait inside a script is bounded (`WAIT` seconds) and a
//! script that does not get what it expects prints `FAIL …` and exits
//! non-zero. Nothing sleeps: scripts print `READY` once their subscriptions
//! are acknowledged, and the Rust side reads their output line by line under
//! a deadline.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reference_broker::server::{self, Shared};
use reference_broker::transport::{self, Acceptor};
use reference_broker::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};

/// Upper bound for anything a script should do at once (its own waits are 10 s).
const DEADLINE: Duration = Duration::from_secs(30);
const VERSIONS: [&str; 2] = ["3.1.1", "5"];
const INSTALL: &str = "python3 -m pip install paho-mqtt";

/// Helpers shared by every script: a bounded-wait wrapper around a paho client.
/// `sys.argv[1]` is a JSON object: host, port, transport, ca, and per-script keys.
const PRELUDE: &str = r#"
import json, os, queue, sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

CFG = json.loads(sys.argv[1])
WAIT = 10.0
VERSIONS = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}

def say(*parts):
    print(" ".join(str(p) for p in parts), flush=True)

def fail(why):
    say("FAIL", why)
    os._exit(1)

def get(q, what):
    try:
        return q.get(timeout=WAIT)
    except queue.Empty:
        fail("no %s within %ss" % (what, WAIT))

class Client:
    def __init__(self, cid, version, clean=True, expiry=None, will=None):
        self.cid, self.version, self.clean, self.expiry = cid, VERSIONS[version], clean, expiry
        kw = {} if self.version == mqtt.MQTTv5 else {"clean_session": clean}
        ws = CFG["transport"] in ("ws", "wss")
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=self.version,
                             transport="websockets" if ws else "tcp", reconnect_on_failure=False, **kw)
        if ws:
            self.c.ws_set_options(path="/mqtt")
        if CFG["transport"] in ("tls", "wss"):
            self.c.tls_set(ca_certs=CFG["ca"])
        if will:
            topic, payload, qos = will
            self.c.will_set(topic, payload, qos)
        self.connacks, self.subacks, self.msgs = queue.Queue(), queue.Queue(), queue.Queue()
        self.c.on_connect = lambda c, u, flags, rc, props: self.connacks.put((flags.session_present, rc))
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put((mid, rcs))
        self.c.on_message = lambda c, u, m: self.msgs.put(m)

    def connect(self, session_present=False):
        kw = {}
        if self.version == mqtt.MQTTv5:
            kw["clean_start"] = self.clean
            if self.expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.expiry
                kw["properties"] = props
        self.c.connect(CFG["host"], CFG["port"], keepalive=30, **kw)
        self.c.loop_start()
        present, rc = get(self.connacks, "CONNACK for " + self.cid)
        if rc.is_failure:
            fail("%s: CONNACK %s" % (self.cid, rc))
        if bool(present) != session_present:
            fail("%s: session present %s, expected %s" % (self.cid, present, session_present))
        return self

    def subscribe(self, topic, qos):
        rc, mid = self.c.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            fail("%s: cannot send SUBSCRIBE: %s" % (self.cid, rc))
        got_mid, codes = get(self.subacks, "SUBACK for " + topic)
        if got_mid != mid or [c.value for c in codes] != [qos]:
            fail("%s: SUBACK %s %s for %s at QoS %s" % (self.cid, got_mid, codes, topic, qos))

    def publish(self, topic, payload, qos, retain=False):
        info = self.c.publish(topic, payload, qos, retain)
        info.wait_for_publish(timeout=WAIT)
        if not info.is_published():
            fail("%s: %s at QoS %s not completed within %ss" % (self.cid, topic, qos, WAIT))

    def receive(self):
        m = get(self.msgs, "message for " + self.cid)
        return "%s %d %d %s" % (m.topic, m.qos, int(m.retain), m.payload.decode())

    def expect(self, want):
        got = self.receive()
        if got != want:
            fail("%s: got %r, expected %r" % (self.cid, got, want))

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()
"#;

/// Subscribes at QoS 0, 1 and 2 (and at 1 for a QoS 2 publication), says
/// READY, and prints the four messages it then receives, sorted.
const SUBSCRIBER: &str = r#"
t = CFG["topic"]
s = Client("sub", CFG["version"]).connect()
for q in (0, 1, 2):
    s.subscribe("%s/q%d" % (t, q), q)
s.subscribe(t + "/down", 1)
say("READY")
for line in sorted(s.receive() for _ in range(4)):
    say("GOT", line)
s.disconnect()
"#;

const PUBLISHER: &str = r#"
t = CFG["topic"]
p = Client("pub", CFG["version"]).connect()
for q in (0, 1, 2):
    p.publish("%s/q%d" % (t, q), "m%d" % q, q)
p.publish(t + "/down", "down", 2)
p.disconnect()
say("OK")
"#;

/// Set, deliver with RETAIN, clear, and live delivery without RETAIN.
const RETAINED: &str = r#"
v = CFG["version"]
t = "paho/retained/" + v
p = Client("rp", v).connect()
p.publish(t, "kept", 1, retain=True)
s = Client("rs1", v).connect()
s.subscribe(t, 2)
s.expect(t + " 1 1 kept")
s.disconnect()
# An empty retained message clears it: a later subscriber to both topics
# gets only the marker (the retained copy of the first would come first).
p.publish(t, "", 1, retain=True)
# (QoS 1: once acknowledged, it is stored before anyone subscribes.)
p.publish(t + "/marker", "marker", 1, retain=True)
s = Client("rs2", v).connect()
s.subscribe(t, 1)
s.subscribe(t + "/marker", 1)
s.expect(t + "/marker 1 1 marker")
# Delivered live to an existing subscription: RETAIN is 0.
p.publish(t + "/marker", "live", 1, retain=True)
s.expect(t + "/marker 1 0 live")
s.disconnect()
p.disconnect()
say("OK")
"#;

/// Watches the will topic; a client with a will that disconnects normally
/// must not have it published. Says READY, then prints the first will; in
/// 5.0, then also the will of a client that disconnects with reason 0x04.
const WILL_WATCHER: &str = r#"
v = CFG["version"]
t = "paho/will/" + v
w = Client("watcher", v).connect()
w.subscribe(t, 1)
polite = Client("polite", v, will=(t, "polite", 1)).connect()
polite.disconnect()
say("READY")
say("GOT", w.receive())
if v == "5":
    asker = Client("asker", v, will=(t, "asked", 1)).connect()
    asker.c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    asker.c.loop_stop()
    say("GOT", w.receive())
w.disconnect()
"#;

/// Connects with a will, says READY and waits to be killed.
const DYING: &str = r#"
v = CFG["version"]
Client("dying", v, will=("paho/will/" + v, "gone", 1)).connect()
say("READY")
threading.Event().wait(WAIT)
fail("was not killed within %ss" % WAIT)
"#;

/// A persistent session receives the QoS 1 message published while it was away.
const PERSISTENT: &str = r#"
v = CFG["version"]
t = "paho/persist/" + v
s = Client("persist", v, clean=False, expiry=300).connect(session_present=False)
s.subscribe(t, 1)
s.disconnect()
p = Client("pp", v).connect()
p.publish(t, "while-away", 1)
p.disconnect()
s = Client("persist", v, clean=False, expiry=300).connect(session_present=True)
s.expect(t + " 1 0 while-away")
s.disconnect()
# Clean again: the session ends.
s = Client("persist", v, clean=True).connect(session_present=False)
s.disconnect()
if v == "5":
    # Clean start 0 without a session expiry interval: nothing outlives the connection.
    e = Client("ephemeral", v, clean=False).connect(session_present=False)
    e.subscribe(t, 1)
    e.disconnect()
    e = Client("ephemeral", v, clean=False).connect(session_present=False)
    e.disconnect()
say("OK")
"#;

/// Fails the test, saying how to install them, if python3 or paho-mqtt 2.x is missing.
fn require_paho() {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import paho.mqtt, paho.mqtt.client; print(paho.mqtt.__version__)",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 cannot be run ({e}): the paho interop tests need python3 and paho-mqtt ({INSTALL})")
        });
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "paho-mqtt is not installed for python3: install it with `{INSTALL}` ({})",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 2,
        "paho-mqtt {version} is too old: these tests need 2.x (`{INSTALL} --upgrade`)"
    );
}

/// The broker on four loopback listeners sharing one core.
struct Broker {
    tcp: u16,
    tls: u16,
    ws: u16,
    wss: u16,
    ca: PathBuf,
    _dir: tempfile::TempDir,
    _stop: Vec<oneshot::Sender<()>>,
}

impl Broker {
    async fn start() -> Broker {
        require_paho();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("a certificate");
        let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &cert_pem).expect("write the CA file");
        let acceptor =
            transport::tls_acceptor(cert_pem.as_bytes(), key_pem.as_bytes()).expect("an acceptor");

        let shared = Shared::new(Config::default());
        let mut stop = Vec::new();
        let mut ports = Vec::new();
        for t in [
            None,
            Some(Acceptor::Tls(acceptor.clone())),
            Some(Acceptor::Ws),
            Some(Acceptor::Wss(acceptor)),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            ports.push(listener.local_addr().expect("local addr").port());
            let (tx, rx) = oneshot::channel::<()>();
            let shutdown = async move {
                let _ = rx.await;
            };
            stop.push(tx);
            match t {
                // `server::serve` also runs the core's timers.
                None => drop(tokio::spawn(server::serve(
                    listener,
                    shared.clone(),
                    shutdown,
                ))),
                Some(t) => drop(tokio::spawn(transport::serve(
                    listener,
                    t,
                    shared.clone(),
                    shutdown,
                ))),
            }
        }
        Broker {
            tcp: ports[0],
            tls: ports[1],
            ws: ports[2],
            wss: ports[3],
            ca,
            _dir: dir,
            _stop: stop,
        }
    }

    /// The script configuration for `transport` (`tcp`, `tls`, `ws`, `wss`).
    fn cfg(&self, transport: &str, extra: &[(&str, &str)]) -> String {
        let port = match transport {
            "tcp" => self.tcp,
            "tls" => self.tls,
            "ws" => self.ws,
            "wss" => self.wss,
            other => panic!("unknown transport {other}"),
        };
        let mut cfg = serde_json::json!({
            "host": "127.0.0.1",
            "port": port,
            "transport": transport,
            "ca": self.ca,
        });
        for (k, v) in extra {
            cfg[*k] = serde_json::Value::from(*v);
        }
        cfg.to_string()
    }
}

/// A running script.
struct Script {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Option<JoinHandle<String>>,
    what: String,
}

impl Script {
    fn spawn(what: &str, body: &str, cfg: String) -> Script {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(format!("{PRELUDE}\n{body}"))
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 for {what}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s).await;
            s
        });
        Script {
            child,
            lines: BufReader::new(stdout).lines(),
            stderr: Some(stderr),
            what: format!("{what} {cfg}"),
        }
    }

    async fn stderr(&mut self) -> String {
        match self.stderr.take() {
            Some(task) => timeout(Duration::from_secs(2), task)
                .await
                .map(|r| r.unwrap_or_default())
                .unwrap_or_default(),
            None => String::new(),
        }
    }

    /// The next line it prints, within the deadline; `FAIL …` fails the test.
    async fn line(&mut self) -> String {
        let until = Instant::now() + DEADLINE;
        match timeout_at(until, self.lines.next_line()).await {
            Ok(Ok(Some(line))) if line.starts_with("FAIL") => {
                let stderr = self.stderr().await;
                panic!("{}: {line}\n{stderr}", self.what)
            }
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => {
                let stderr = self.stderr().await;
                panic!(
                    "{} ended before printing the expected line:\n{stderr}",
                    self.what
                )
            }
            Ok(Err(e)) => panic!("{}: cannot read its output: {e}", self.what),
            Err(_) => panic!("{}: no output within {DEADLINE:?}", self.what),
        }
    }

    async fn expect(&mut self, want: &str) {
        let got = self.line().await;
        assert_eq!(got, want, "{}", self.what);
    }

    /// Waits for it to exit; it must succeed, having printed nothing more.
    async fn finish(mut self) {
        let status = timeout(DEADLINE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {DEADLINE:?}", self.what))
            .expect("wait for python3");
        let mut rest = Vec::new();
        while let Ok(Ok(Some(line))) = timeout(DEADLINE, self.lines.next_line()).await {
            rest.push(line);
        }
        let stderr = self.stderr().await;
        assert!(
            status.success() && rest.is_empty(),
            "{} exited with {status}, printing {rest:?}\n{stderr}",
            self.what
        );
    }
}

/// QoS 0, 1 and 2 both ways between a 3.1.1 and a 5.0 client over `transport`.
async fn qos_levels(transport: &str) {
    let broker = Broker::start().await;
    for (i, sub_version) in VERSIONS.iter().enumerate() {
        let pub_version = VERSIONS[(i + 1) % VERSIONS.len()];
        let topic = format!("paho/{transport}/{sub_version}");
        let mut sub = Script::spawn(
            "subscriber",
            SUBSCRIBER,
            broker.cfg(transport, &[("version", sub_version), ("topic", &topic)]),
        );
        sub.expect("READY").await;
        let mut publ = Script::spawn(
            "publisher",
            PUBLISHER,
            broker.cfg(transport, &[("version", pub_version), ("topic", &topic)]),
        );
        publ.expect("OK").await;
        publ.finish().await;
        // Sorted by the script: "down" before "q0".
        for want in [
            format!("GOT {topic}/down 1 0 down"),
            format!("GOT {topic}/q0 0 0 m0"),
            format!("GOT {topic}/q1 1 0 m1"),
            format!("GOT {topic}/q2 2 0 m2"),
        ] {
            sub.expect(&want).await;
        }
        sub.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn qos_levels_over_tcp() {
    qos_levels("tcp").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qos_levels_over_tls() {
    qos_levels("tls").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qos_levels_over_websocket() {
    qos_levels("ws").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qos_levels_over_secure_websocket() {
    qos_levels("wss").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retained_messages() {
    let broker = Broker::start().await;
    for version in VERSIONS {
        let mut s = Script::spawn(
            "retained",
            RETAINED,
            broker.cfg("tcp", &[("version", version)]),
        );
        s.expect("OK").await;
        s.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn will_on_abrupt_close() {
    let broker = Broker::start().await;
    for (version, transport) in [("3.1.1", "tcp"), ("5", "tcp"), ("5", "wss")] {
        let mut watcher = Script::spawn(
            "will watcher",
            WILL_WATCHER,
            broker.cfg(transport, &[("version", version)]),
        );
        watcher.expect("READY").await;
        let mut dying = Script::spawn(
            "dying client",
            DYING,
            broker.cfg(transport, &[("version", version)]),
        );
        dying.expect("READY").await;
        // Killed: its socket closes without DISCONNECT.
        dying.child.start_kill().expect("kill the dying client");
        let _ = timeout(DEADLINE, dying.child.wait())
            .await
            .expect("the killed client exits");
        watcher
            .expect(&format!("GOT paho/will/{version} 1 0 gone"))
            .await;
        if version == "5" {
            watcher.expect("GOT paho/will/5 1 0 asked").await;
        }
        watcher.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_session_gets_offline_qos1() {
    let broker = Broker::start().await;
    for (version, transport) in [("3.1.1", "tcp"), ("5", "tcp"), ("5", "ws")] {
        let mut s = Script::spawn(
            "persistent session",
            PERSISTENT,
            broker.cfg(transport, &[("version", version)]),
        );
        s.expect("OK").await;
        s.finish().await;
    }
}
