//! The runner against misbehaving fake targets: tiny TCP servers started
//! inside each test on 127.0.0.1:0 that never answer, answer garbage, close,
//! close at the first SUBSCRIBE, reset, or do not speak MQTT 3.1.
//!
//! The rule these tests pin down: where the harness could not get a verdict
//! (no answer at all, a connection closed or reset before any answer) the
//! case is an **error**; where the target answered and the answer was wrong
//! (bytes that do not decode where a CONNACK belongs, a connection closed
//! instead of a SUBACK) it is a **fail**, and a malformed answer to the
//! CONNECT is a verdict on the statement its decoding broke, which the
//! report names. A target that closes on a CONNECT of one version and
//! answers a CONNECT of another does not speak the first: those cases are
//! **skipped**. Every case ends within a small multiple of its deadline, and
//! the run exits 1.
//!
//! The bounds on durations are 10× the deadlines: generous enough never to
//! flake on a loaded machine, tight enough to catch a wait on a default 5 s
//! timeout or a hang.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_harness::client::Target;
use mqtt_harness::cmd::run::EmbeddedBroker;
use mqtt_harness::profile;
use mqtt_harness::results::{RunReport, Status};
use mqtt_harness::run::{self as runner, RunOptions};
use mqtt_harness::scenario::{self, Scenario};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The deadline of every step and connection attempt in these runs.
const DEADLINE: Duration = Duration::from_millis(300);
/// The most a case may take: 10× its deadline.
const CASE_BOUND: Duration = Duration::from_millis(3000);

/// A fake target: an accept loop handing each connection to a handler.
struct Fake {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fake<F, Fut>(handler: F) -> Fake
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(handler(s));
        }
    });
    Fake { addr, task }
}

/// Reads until the peer closes, answering nothing.
async fn drain(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// (a) Accepts and never answers.
async fn silent(s: TcpStream) {
    drain(s).await;
}

/// (b) Answers the CONNECT with an HTTP error: not MQTT at all.
async fn garbage(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    if matches!(s.read(&mut buf).await, Ok(n) if n > 0) {
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            .await;
    }
    drain(s).await;
}

/// (c) Closes right after accepting.
async fn closing(s: TcpStream) {
    drop(s);
}

/// (e) Accepts, then resets the connection (SO_LINGER 0: an RST, not a FIN).
async fn resetting(s: TcpStream) {
    // Linger zero does not block on drop: the kernel sends RST at once.
    #[allow(deprecated)]
    let _ = s.set_linger(Some(Duration::ZERO));
    drop(s);
}

/// What a fake broker does with one packet it received.
enum Reply {
    /// Writes these bytes (none: ignores the packet) and reads on.
    Send(&'static [u8]),
    /// Writes these bytes and closes the connection.
    SendAndClose(&'static [u8]),
    /// Reads and ignores everything from now on.
    Deaf,
}

/// Reads packet after packet and answers each as `reply` says (given its
/// first byte and body), until the peer closes or `reply` ends it.
async fn serve_packets(mut s: TcpStream, reply: impl Fn(u8, &[u8]) -> Reply) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        while let Some((first, body, len)) = frame(&buf) {
            let (bytes, close) = match reply(first, &body) {
                Reply::Send(b) => (b, false),
                Reply::SendAndClose(b) => (b, true),
                Reply::Deaf => return drain(s).await,
            };
            if s.write_all(bytes).await.is_err() || close {
                return;
            }
            buf.drain(..len);
        }
        let mut chunk = [0u8; 1024];
        match s.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            _ => return,
        }
    }
}

/// A minimal broker: CONNACK 0 to a CONNECT, PINGRESP to a PINGREQ; closes
/// on DISCONNECT, on a SUBSCRIBE when `close_on_subscribe` (d), and on a
/// CONNECT of protocol level 3 (MQTT 3.1) when `refuse_3_1`.
async fn minimal(s: TcpStream, close_on_subscribe: bool, refuse_3_1: bool) {
    serve_packets(s, |first, body| match first >> 4 {
        1 => match connect_level(body).unwrap_or(4) {
            3 if refuse_3_1 => Reply::SendAndClose(&[]),
            5 => Reply::Send(&[0x20, 0x03, 0x00, 0x00, 0x00]),
            _ => Reply::Send(&[0x20, 0x02, 0x00, 0x00]),
        },
        12 => Reply::Send(&[0xD0, 0x00]),
        8 if close_on_subscribe => Reply::SendAndClose(&[]),
        14 => Reply::SendAndClose(&[]),
        _ => Reply::Send(&[]),
    })
    .await
}

/// A whole packet at the start of `buf`: (first byte, body, total length).
fn frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let first = *buf.first()?;
    let mut len = 0usize;
    let mut i = 1;
    loop {
        let b = *buf.get(i)?;
        len |= usize::from(b & 0x7F) << (7 * (i - 1));
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return None;
        }
    }
    let body = buf.get(i..i + len)?.to_vec();
    Some((first, body, i + len))
}

/// The protocol level of a CONNECT body: after the protocol name.
fn connect_level(body: &[u8]) -> Option<u8> {
    let n = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    body.get(2 + n).copied()
}

fn library(ids: &[&str]) -> Vec<Scenario> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let all = scenario::load_paths(&[root]).unwrap_or_else(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        panic!("the scenario library does not parse:\n{}", lines.join("\n"))
    });
    let picked: Vec<Scenario> = all
        .into_iter()
        .filter(|s| ids.contains(&s.id.as_str()))
        .collect();
    assert_eq!(picked.len(), ids.len(), "scenarios {ids:?}");
    picked
}

/// A PINGREQ scenario that also runs under MQTT 3.1.
fn ping_3_1() -> Scenario {
    scenario::parse_scenario(
        "ping-3.1.yaml",
        "name: PINGREQ under 3.1 and 3.1.1
statements:
  \"3.1.1\": [MQTT-3.12.4-1]
protocols: [\"3.1\", \"3.1.1\"]
clients:
  c: {}
steps:
  - c: { send: PINGREQ }
  - c: { expect: PINGRESP }
",
    )
    .expect("the inline scenario parses")
}

/// Runs against `fake`, checking that every case ends within its bound.
async fn run_against(fake: &Fake, scenarios: Vec<Scenario>) -> RunReport {
    run_with(fake, scenarios, None).await
}

async fn run_with(
    fake: &Fake,
    scenarios: Vec<Scenario>,
    profile: Option<profile::Profile>,
) -> RunReport {
    let opts = RunOptions {
        step_timeout: DEADLINE,
        profile: profile.map(Arc::new),
        ..RunOptions::new(Target::parse(&format!("mqtt://{}", fake.addr)).expect("a target"))
    };
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(30), async {
        runner::run(scenarios, &opts, |_| {}).await
    })
    .await
    .expect("the run ends");
    let wall = started.elapsed();
    for c in &report.cases {
        assert!(
            c.duration < CASE_BOUND,
            "{} [{}] took {:?}, over {CASE_BOUND:?}",
            c.id,
            c.protocol,
            c.duration
        );
    }
    // Cases run in parallel: the whole run is bounded like its longest case.
    assert!(wall < CASE_BOUND * 2, "the run took {wall:?}");
    report
}

fn describe(report: &RunReport) -> String {
    report
        .cases
        .iter()
        .map(|c| {
            format!(
                "{} {} [{}] {:?}: {}\n",
                c.status,
                c.id,
                c.protocol,
                c.statements,
                c.message.as_deref().unwrap_or("")
            )
        })
        .collect()
}

fn all(report: &RunReport, status: Status, says: &str) {
    assert!(!report.cases.is_empty());
    for c in &report.cases {
        assert_eq!(c.status, status, "{}", describe(report));
        assert!(
            c.message.as_deref().unwrap_or("").contains(says),
            "`{says}` not in:\n{}",
            describe(report)
        );
    }
}

const PING: &str = "shared/3.12-pingreq/pingresp";
const QOS1: &str = "shared/3.3-publish/qos1";
const BAD_LEVEL: &str = "shared/3.1-connect/bad-protocol-level";

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_never_answers_is_an_error() {
    let f = fake(silent).await;
    let report = run_against(&f, library(&[PING, QOS1])).await;
    all(&report, Status::Error, "could not connect");
    all(&report, Status::Error, "nothing within 300 ms");
    assert_eq!(
        report.exit_code(),
        3,
        "cases that could not run: exit status 3"
    );

    // A scenario that sends its own CONNECT and expects an answer: silence
    // from a target that has said nothing at all is no verdict either.
    let report = run_against(&f, library(&[BAD_LEVEL])).await;
    all(
        &report,
        Status::Error,
        "does not answer a valid CONNECT either",
    );
    assert_eq!(report.exit_code(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_instead_of_connack_fails_on_the_statement_it_breaks() {
    let f = fake(garbage).await;
    let report = run_against(&f, library(&[PING, QOS1])).await;
    // `H` (0x48) reads as a PUBACK with reserved flags 8: the first thing the
    // decoder refuses is those flags.
    all(&report, Status::Fail, "bytes that do not decode");
    for c in &report.cases {
        let m = c.message.as_deref().unwrap_or("");
        assert!(m.contains("[MQTT-2."), "{}", describe(&report));
        let failure = c.failure.as_ref().expect("a failure with details");
        assert_eq!(failure.step, 0, "it failed while connecting");
        assert!(failure
            .got_hex
            .as_deref()
            .unwrap_or("")
            .starts_with("48 54"));
        // The verdict is on the decoding statement, not on PINGREQ or QoS 1.
        assert_eq!(c.statements.len(), 1, "{}", describe(&report));
        assert!(
            m.contains(&format!("[{}]", c.statements[0])),
            "{}",
            describe(&report)
        );
    }
    assert_eq!(report.exit_code(), 1);
    assert!(report.statements.iter().all(|s| s.status == Status::Fail));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_closes_at_once_is_an_error() {
    let f = fake(closing).await;
    let report = run_against(&f, library(&[PING, QOS1])).await;
    all(&report, Status::Error, "could not connect");
    assert_eq!(
        report.exit_code(),
        3,
        "cases that could not run: exit status 3"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_resets_is_an_error() {
    let f = fake(resetting).await;
    let report = run_against(&f, library(&[PING, QOS1])).await;
    // The reset comes while connecting or in answer to the CONNECT. Whether
    // the client sees the RST or only the end of the stream depends on when it
    // reads, so either wording is right; what matters is Error, not Fail.
    all(&report, Status::Error, "connect");
    for c in &report.cases {
        let m = c.message.as_deref().unwrap_or("");
        assert!(
            m.contains("reset") || m.contains("closed"),
            "{}",
            describe(&report)
        );
    }
    assert_eq!(
        report.exit_code(),
        3,
        "cases that could not run: exit status 3"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_closes_on_subscribe_fails_what_subscribes() {
    let f = fake(|s| minimal(s, true, false)).await;
    let report = run_against(&f, library(&[PING, QOS1])).await;
    for c in &report.cases {
        if c.id == PING {
            assert_eq!(c.status, Status::Pass, "{}", describe(&report));
        } else {
            assert_eq!(c.status, Status::Fail, "{}", describe(&report));
            let f = c.failure.as_ref().expect("details");
            assert_eq!(f.expected, r#"SUBACK {"id":1,"codes":[1]}"#);
            assert!(f.got.contains("the connection closed"), "{}", f.got);
        }
    }
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_closes_on_a_3_1_connect_does_not_speak_3_1() {
    let f = fake(|s| minimal(s, false, true)).await;
    let report = run_against(&f, vec![ping_3_1()]).await;
    for c in &report.cases {
        match c.protocol {
            mqtt_codec::Protocol::V3_1 => {
                assert_eq!(c.status, Status::Skip, "{}", describe(&report));
                assert!(
                    c.message
                        .as_deref()
                        .unwrap_or("")
                        .starts_with("the target does not speak MQTT 3.1:"),
                    "{}",
                    describe(&report)
                );
            }
            _ => assert_eq!(c.status, Status::Pass, "{}", describe(&report)),
        }
    }
    assert_eq!(report.exit_code(), 0);

    // With a profile that lists 3.1.1 only, the 3.1 case is skipped before
    // it connects, and the reason names the profile.
    let p = profile::parse_profile(
        "profiles/x.yaml",
        "name: three-one-one\nprotocols: [\"3.1.1\"]\n",
    )
    .expect("the profile parses");
    let report = run_with(&f, vec![ping_3_1()], Some(p.clone())).await;
    let skipped = report
        .cases
        .iter()
        .find(|c| c.protocol == mqtt_codec::Protocol::V3_1)
        .expect("a 3.1 case");
    assert_eq!(skipped.status, Status::Skip);
    assert_eq!(
        skipped.message.as_deref(),
        Some("the target does not speak MQTT 3.1: the target profile `three-one-one` (profiles/x.yaml) lists 3.1.1")
    );
    assert!(skipped.exchange.is_empty(), "it did not connect");

    // A target that closes on every CONNECT speaks no version: errors.
    let closing = fake(closing).await;
    let report = run_against(&closing, vec![ping_3_1()]).await;
    all(&report, Status::Error, "could not connect");
}

/// The binary against a garbage target and a silent one: exit status 1 (a
/// failure) and 3 (cases that could not run), and the console says FAIL and ERROR.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_exits_1_or_3_against_misbehaving_targets() {
    let garbage = fake(garbage).await;
    let silent = fake(silent).await;
    for (f, label, code) in [
        (&garbage, "FAIL  shared/3.12-pingreq/pingresp", 1),
        (&silent, "ERROR shared/3.12-pingreq/pingresp", 3),
    ] {
        let target = format!("mqtt://{}", f.addr);
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_mqtt-harness"))
                .args([
                    "run",
                    "scenarios/shared/3.12-pingreq/pingresp.yaml",
                    "--timeout",
                    "300ms",
                ])
                .args(["--target", &target])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("NO_COLOR", "1")
                .output()
                .expect("the binary runs")
        })
        .await
        .expect("the blocking task ends");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{stdout}");
        assert!(stdout.contains(label), "{stdout}");
    }
}

/// A 5.0 broker whose PUBACK carries a User Property ("k", "v"): allowed on
/// the wire, and what `no_properties` exists to catch when a scenario says
/// a property must not be there.
async fn chatty(s: TcpStream) {
    serve_packets(s, |first, _| match first >> 4 {
        1 => Reply::Send(&[0x20, 0x03, 0x00, 0x00, 0x00]),
        3 => Reply::Send(&[
            0x40, 0x0B, 0x00, 0x07, 0x00, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
        ]),
        14 => Reply::SendAndClose(&[]),
        _ => Reply::Send(&[]),
    })
    .await
}

fn puback_scenario(expect: &str) -> Scenario {
    scenario::parse_scenario(
        "puback-matchers.yaml",
        &format!(
            "name: PUBACK matchers
statements:
  \"5.0\": [MQTT-3.3.4-1]
clients:
  c: {{}}
steps:
  - c: {{ send: PUBLISH, qos: 1, id: 7, topic: \"{{topic}}\", payload: x }}
  - c: {{ expect: PUBACK, {expect} }}
"
        ),
    )
    .expect("the inline scenario parses")
}

/// `no_properties` fails a packet that carries a listed property and passes
/// one that does not; `{not: …}` fails a value equal to its operand.
#[tokio::test]
async fn absent_properties_and_negated_values_are_checked() {
    let fake = fake(chatty).await;
    let report = run_against(
        &fake,
        vec![puback_scenario("id: 7, no_properties: [user_property]")],
    )
    .await;
    all(&report, Status::Fail, "which it must not");
    let report = run_against(&fake, vec![puback_scenario("id: {not: 7}")]).await;
    all(&report, Status::Fail, "`id` is 7");
    let report = run_against(
        &fake,
        vec![puback_scenario(
            "id: {not: 8}, no_properties: [reason_string]",
        )],
    )
    .await;
    all(&report, Status::Pass, "");

    // The reference broker's PUBACK has no User Property.
    let broker = EmbeddedBroker::start(Default::default())
        .await
        .expect("the embedded broker starts");
    let report = runner::run(
        vec![puback_scenario("id: 7, no_properties: [user_property]")],
        &RunOptions::new(broker.target()),
        |_| {},
    )
    .await;
    broker.stop().await;
    assert!(
        report.cases.iter().all(|c| c.status == Status::Pass),
        "{}",
        describe(&report)
    );
}

/// A 3.1.1-only broker as aedes is one: a 5.0 CONNECT gets CONNACK 0x01
/// (unacceptable protocol version, in 3.1.1 form) and the connection closes;
/// a 3.1.1 CONNECT is accepted whatever its flags.
async fn v311_only(s: TcpStream) {
    serve_packets(s, |first, body| match first >> 4 {
        1 if connect_level(body) == Some(5) => Reply::SendAndClose(&[0x20, 0x02, 0x00, 0x01]),
        1 => Reply::Send(&[0x20, 0x02, 0x00, 0x00]),
        12 => Reply::Send(&[0xD0, 0x00]),
        14 => Reply::SendAndClose(&[]),
        _ => Reply::Send(&[]),
    })
    .await
}

/// A scenario that sends its own CONNECT is skipped, like one whose client
/// connects automatically, when the target refuses the version: at once for
/// a well-formed CONNECT, and for a deliberately malformed one once a probe
/// shows that a valid CONNECT of that version is refused too. The same
/// malformed CONNECT in a version the target speaks, and accepts, fails.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_version_skips_scenarios_that_connect_by_themselves() {
    let f = fake(v311_only).await;
    let report = run_against(
        &f,
        library(&[
            "v5/3.2-connack/assigned-client-id",
            "shared/3.1-connect/will-qos-3",
        ]),
    )
    .await;
    let v5: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.protocol == mqtt_codec::Protocol::V5)
        .collect();
    assert_eq!(v5.len(), 2, "{}", describe(&report));
    for c in v5 {
        assert_eq!(c.status, Status::Skip, "{}", describe(&report));
        assert!(
            c.message
                .as_deref()
                .is_some_and(|m| m.contains("does not speak MQTT 5.0")),
            "{}",
            describe(&report)
        );
    }
    let v311 = report
        .cases
        .iter()
        .find(|c| c.protocol == mqtt_codec::Protocol::V3_1_1)
        .expect("the 3.1.1 case");
    assert_eq!(v311.status, Status::Fail, "{}", describe(&report));
}

/// A 3.1.1 broker that reads a 5.0 CONNECT's properties as 3.1.1 fields and
/// waits for bytes that never come (as amqtt does): silent on a 5.0 CONNECT.
async fn silent_on_v5(s: TcpStream) {
    serve_packets(s, |first, body| match first >> 4 {
        1 if connect_level(body) == Some(5) => Reply::Deaf,
        1 => Reply::Send(&[0x20, 0x02, 0x00, 0x00]),
        12 => Reply::Send(&[0xD0, 0x00]),
        14 => Reply::SendAndClose(&[]),
        _ => Reply::Send(&[]),
    })
    .await
}

/// Silence on every CONNECT of a version, with CONNECTs of another answered,
/// means the target does not speak that version: skip, not error.
#[tokio::test(flavor = "multi_thread")]
async fn silence_on_one_version_only_skips_it() {
    let f = fake(silent_on_v5).await;
    let report = run_against(&f, library(&[PING])).await;
    for c in &report.cases {
        let want = if c.protocol == mqtt_codec::Protocol::V5 {
            Status::Skip
        } else {
            Status::Pass
        };
        assert_eq!(c.status, want, "{}", describe(&report));
    }
    let v5 = report
        .cases
        .iter()
        .find(|c| c.protocol == mqtt_codec::Protocol::V5)
        .expect("a 5.0 case");
    assert!(
        v5.message
            .as_deref()
            .is_some_and(|m| m.contains("answers no CONNECT of that version")),
        "{}",
        describe(&report)
    );
}
