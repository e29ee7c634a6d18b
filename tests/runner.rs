//! The scenario runner against the embedded reference broker: the whole
//! library passes against the strict broker, each deliberate violation makes
//! the scenarios citing it fail, bad scenario files are refused with their
//! position, and an unreachable target is an error, not a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mqtt_codec::Protocol;
use mqtt_harness::cmd::run::{start_setups, EmbeddedBroker};
use mqtt_harness::net::Target;
use mqtt_harness::results::{RunReport, Status};
use mqtt_harness::run::{self as runner, RunOptions};
use mqtt_harness::scenario::{self, Scenario};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn library() -> Vec<Scenario> {
    match scenario::load_paths(&[root().join("scenarios")]) {
        Ok(s) => s,
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("the scenario library does not parse:\n{}", lines.join("\n"));
        }
    }
}

/// The defaults, against a target each test sets (or the embedded broker).
fn options() -> RunOptions {
    RunOptions::new(Target::parse("mqtt://127.0.0.1:1").expect("a target"))
}

/// Runs against `opts.target`.
async fn run(scenarios: Vec<Scenario>, opts: RunOptions) -> RunReport {
    runner::run(scenarios, &opts, |_| {}).await
}

/// Runs against an embedded reference broker started with `config`.
async fn run_on(
    config: reference_broker::Config,
    scenarios: Vec<Scenario>,
    opts: RunOptions,
) -> RunReport {
    let broker = EmbeddedBroker::start(config.clone())
        .await
        .expect("the embedded broker starts");
    let mut opts = RunOptions {
        target: broker.target(),
        ..opts
    };
    let set_up = start_setups(&scenarios, &config, &mut opts)
        .await
        .expect("the set-up brokers start");
    let report = run(scenarios, opts).await;
    for b in set_up.into_iter().chain([broker]) {
        b.stop().await;
    }
    report
}

fn describe(report: &RunReport) -> String {
    let mut out = String::new();
    for c in &report.cases {
        out.push_str(&format!(
            "{} {} [{}]: {}\n",
            c.status,
            c.id,
            c.protocol,
            c.message.as_deref().unwrap_or("")
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_library_passes_against_the_reference_broker() {
    let scenarios = library();
    assert!(scenarios.len() >= 15, "only {} scenarios", scenarios.len());
    let report = run_on(Default::default(), scenarios, options()).await;
    let not_passed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.status != Status::Pass)
        .collect();
    assert!(
        not_passed.is_empty(),
        "not every case passed:\n{}",
        describe(&report)
    );
    assert_eq!(report.exit_code(), 0);
    assert!(report.statements.iter().all(|s| s.status == Status::Pass));
}

/// (statement the broker breaks, scenario that must then fail under every
/// protocol it runs under, or under the one named as `id [5.0]`).
const VIOLATIONS: &[(&str, &str)] = &[
    ("MQTT-3.12.4-1", "shared/3.12-pingreq/pingresp"),
    ("MQTT-3.1.0-2", "shared/3.1-connect/second-connect"),
    ("MQTT-3.1.2-2", "shared/3.1-connect/bad-protocol-level"),
    ("MQTT-3.1.2-3", "shared/3.1-connect/reserved-flag"),
    (
        "MQTT-3.2.2-1",
        "shared/3.2-connack/clean-start-session-present-0",
    ),
    ("MQTT-3.3.4-1", "shared/3.3-publish/qos1"),
    ("MQTT-4.3.3-8", "shared/4.3-qos/qos2-handshake"),
    ("MQTT-4.3.3-11", "shared/4.3-qos/qos2-handshake"),
    ("MQTT-3.8.4-2", "shared/3.8-subscribe/suback-granted-qos"),
    ("MQTT-3.10.4-4", "shared/3.10-unsubscribe/unsuback"),
    ("MQTT-3.3.1-5", "shared/3.3-publish/retained"),
    ("MQTT-3.3.1-6", "shared/3.3-publish/retained"),
    ("MQTT-4.7.2-1", "shared/4.7-topics/dollar-topics"),
    (
        "MQTT-3.14.4-3",
        "shared/3.14-disconnect/no-will-after-disconnect",
    ),
    ("MQTT-3.1.2-8", "shared/3.1-connect/will-on-drop"),
    ("MQTT-3.3.1-4", "shared/3.3-publish/qos3"),
    ("MQTT-3.8.3-3", "shared/3.8-subscribe/no-filters"),
    ("MQTT-3.3.2-2", "shared/4.7-topics/wildcard-in-topic-name"),
    ("MQTT-3.2.2-3", "v311/3.2-connack/session-present"),
    ("MQTT-3.2.2-3", "v5/3.2-connack/session-present"),
    (
        "MQTT-3.1.3-8",
        "v311/3.1-connect/empty-client-id-persistent",
    ),
    ("MQTT-3.8.4-6", "shared/3.8-subscribe/qos-downgrade"),
    ("MQTT-3.1.2-24", "shared/3.1-connect/keep-alive"),
    ("MQTT-3.1.4-2", "shared/3.1-connect/takeover"),
    ("MQTT-3.3.2-17", "v5/3.3-publish/user-properties"),
    ("MQTT-3.2.2-16", "v5/3.2-connack/assigned-client-id"),
    ("MQTT-4.3.3-10", "shared/4.3-qos/qos2-resent-publish"),
    ("MQTT-2.2.2-1", "shared/2.2-fixed-header/reserved-flags"),
    ("MQTT-3.8.3-4", "shared/3.8-subscribe/reserved-option-bits"),
    ("MQTT-3.3.1-2", "shared/3.3-publish/qos0-dup-0"),
    (
        "MQTT-3.14.2-2",
        "v5/3.14-disconnect/server-disconnect-no-session-expiry",
    ),
    (
        "MQTT-3.2.2-4",
        "v311/3.1-connect/empty-client-id-persistent",
    ),
    ("MQTT-3.2.2-6", "v5/4.12-auth/unsupported-method"),
    ("MQTT-3.3.2-4", "v5/3.3-publish/request-response-properties"),
    (
        "MQTT-3.3.2-15",
        "v5/3.3-publish/request-response-properties",
    ),
    (
        "MQTT-3.3.2-16",
        "v5/3.3-publish/request-response-properties",
    ),
    (
        "MQTT-3.3.2-20",
        "v5/3.3-publish/request-response-properties",
    ),
    ("MQTT-3.3.2-6", "v5/3.3-publish/message-expiry-counts-down"),
    ("MQTT-3.3.2-7", "v5/3.3-publish/topic-alias-per-connection"),
    ("MQTT-3.1.3-6", "shared/3.1-connect/client-ids"),
    ("MQTT-3.3.1-3", "shared/3.3-publish/dup-not-propagated"),
    (
        "MQTT-3.8.1-1",
        "shared/2.2-fixed-header/reserved-flags-subscribe-family",
    ),
    ("MQTT-4.7.3-4", "shared/4.7-topics/exact-match"),
    ("MQTT-3.1.2-5", "v311/3.1-connect/offline-queue"),
    ("MQTT-3.3.4-9", "v5/4.9-flow-control/receive-maximum"),
    ("MQTT-3.3.4-10", "v5/4.9-flow-control/receive-maximum"),
    ("MQTT-3.1.2-25", "v5/3.1-connect/maximum-packet-size"),
    (
        "MQTT-3.1.2-26",
        "v5/3.3-publish/no-topic-alias-unless-allowed",
    ),
    ("MQTT-3.14.0-1", "shared/3.1-connect/reserved-flag [5.0]"),
    ("MQTT-3.14.0-1", "shared/3.1-connect/will-qos-3 [5.0]"),
    ("MQTT-3.14.0-1", "v5/4.12-auth/unsupported-method"),
    ("MQTT-3.8.3-4", "v5/3.8-subscribe/no-local-shared"),
    ("MQTT-3.3.2-14", "v5/3.3-publish/response-topic-wildcard"),
    ("MQTT-4.3.3-12", "shared/4.3-qos/qos2-identifier-reused"),
    ("MQTT-4.4.0-2", "v5/4.4-message-delivery/refused-not-resent"),
    ("MQTT-3.2.2-8", "v5/4.12-auth/unsupported-method"),
    ("MQTT-3.1.3-10", "v5/3.1-connect/will-user-properties"),
    ("MQTT-3.2.2-9", "v5/3.2-connack/maximum-qos-announced"),
    ("MQTT-3.2.2-10", "v5/3.2-connack/maximum-qos-announced"),
    ("MQTT-3.8.4-7", "v5/3.2-connack/maximum-qos-announced"),
    ("MQTT-3.2.2-12", "v5/3.2-connack/will-qos-above-maximum"),
    ("MQTT-3.2.2-13", "v5/3.2-connack/will-retain-unavailable"),
    // issue 10: sections 2, 3.3-3.13, 4.1-4.9
    ("MQTT-3.3.5-2", "v311/3.3-publish/unauthorized-publish"),
    ("MQTT-3.3.4-4", "v5/3.8-subscribe/subscription-identifier"),
    ("MQTT-3.3.2-3", "shared/3.3-publish/topic-matches-filter"),
    ("MQTT-3.3.2-5", "v5/3.3-publish/message-expiry-queued"),
    ("MQTT-3.3.2-12", "v5/3.3-publish/topic-alias"),
    ("MQTT-3.5.2-1", "v5/3.5-pubrec/undefined-reason-code"),
    ("MQTT-3.6.2-1", "v5/3.6-pubrel/undefined-reason-code"),
    ("MQTT-3.7.2-1", "v5/3.7-pubcomp/undefined-reason-code"),
    ("MQTT-3.8.3-2", "v311/3.8-subscribe/wildcards-unavailable"),
    ("MQTT-3.9.3-2", "v311/3.8-subscribe/wildcards-unavailable"),
    (
        "MQTT-3.10.4-3",
        "shared/3.10-unsubscribe/in-flight-completed",
    ),
    (
        "MQTT-3.11.3-2",
        "shared/3.10-unsubscribe/unsubscribe-several [5.0]",
    ),
    (
        "MQTT-4.1.0-1",
        "shared/4.1-session/state-kept-while-connected",
    ),
    ("MQTT-4.1.0-2", "v5/4.1-session/expired-session-discarded"),
    ("MQTT-4.3.2-1", "shared/4.3-qos/fresh-packet-ids"),
    ("MQTT-4.3.3-3", "shared/4.3-qos/qos2-resumed"),
    ("MQTT-4.3.3-5", "shared/4.3-qos/qos2-resumed"),
    ("MQTT-4.3.3-6", "shared/4.3-qos/qos2-resumed"),
    ("MQTT-4.3.3-7", "v5/4.3-qos/qos2-sent-not-expired"),
    ("MQTT-4.3.3-9", "v5/4.3-qos/qos2-refused-id-reused"),
    ("MQTT-4.3.3-13", "v5/4.3-qos/qos2-expired-still-completed"),
    (
        "MQTT-4.5.0-1",
        "shared/4.5-message-receipt/every-matching-session",
    ),
    ("MQTT-4.6.0-6", "shared/4.6-ordering/queued-order"),
    (
        "MQTT-4.8.2-4",
        "v5/4.8-shared/in-flight-completed-on-reconnect",
    ),
    (
        "MQTT-4.8.2-5",
        "v5/4.8-shared/not-redirected-after-session-end",
    ),
    ("MQTT-4.8.2-6", "v5/4.8-shared/refused-not-redirected"),
    ("MQTT-4.9.0-1", "v5/4.9-flow-control/send-quota"),
    ("MQTT-4.9.0-3", "v5/4.9-flow-control/send-quota"),
    // issue 10: sections 1.5, 3.1, 3.2, 3.14, 3.15, 4.12
    ("MQTT-1.5.3-3", "shared/1.5-strings/bom-kept"),
    ("MQTT-1.5.5-1", "v5/1.5-data/varint-not-minimal"),
    ("MQTT-1.5.7-1", "v5/1.5-data/utf8-string-pair"),
    ("MQTT-3.1.2-12", "v311/3.1-connect/no-will-flag-no-will"),
    (
        "MQTT-3.1.2-29",
        "v5/3.1-connect/request-problem-information-0",
    ),
    ("MQTT-3.1.3-2", "shared/3.1-connect/client-id-keys-session"),
    ("MQTT-3.1.3-9", "v31/3.1-connect/empty-client-id"),
    ("MQTT-3.1.4-1", "shared/3.1-connect/client-id-missing"),
    (
        "MQTT-3.1.4-4",
        "shared/3.1-connect/clean-start-drops-session [5.0]",
    ),
    ("MQTT-3.1.4-1", "shared/3.1-connect/username-without-flag"),
    (
        "MQTT-3.1.4-6",
        "shared/3.1-connect/refused-connect-ignores-the-rest",
    ),
    ("MQTT-3.2.2-5", "shared/3.2-connack/bad-password"),
    ("MQTT-3.2.2-5", "v5/4.12-auth/wrong-proof"),
    ("MQTT-3.2.2-10", "v5/3.2-connack/maximum-qos-announced"),
    (
        "MQTT-3.2.2-19",
        "v5/3.2-connack/no-reason-string-beyond-maximum-packet-size",
    ),
    (
        "MQTT-3.2.2-19",
        "v5/3.14-disconnect/no-reason-string-beyond-maximum-packet-size",
    ),
    (
        "MQTT-3.2.2-19",
        "v5/3.15-auth/no-reason-string-beyond-maximum-packet-size",
    ),
    ("MQTT-3.3.2-12", "v5/3.2-connack/topic-alias-above-maximum"),
    ("MQTT-3.14.2-1", "v5/3.14-disconnect/undefined-reason-code"),
    (
        "MQTT-3.14.4-2",
        "v5/3.14-disconnect/nothing-after-disconnect",
    ),
    ("MQTT-3.15.1-1", "v5/3.15-auth/reserved-flags"),
    ("MQTT-3.15.2-1", "v5/3.15-auth/undefined-reason-code"),
    ("MQTT-4.12.0-2", "v5/4.12-auth/scram-exchange"),
    ("MQTT-4.12.0-4", "v5/4.12-auth/wrong-proof"),
    ("MQTT-4.12.0-5", "v5/4.12-auth/scram-exchange"),
    ("MQTT-4.12.0-5", "v5/4.12-auth/reauthentication"),
    ("MQTT-4.12.0-6", "v5/4.12-auth/no-method-no-auth"),
    ("MQTT-4.12.1-2", "v5/4.12-auth/reauthentication-fails"),
];

#[tokio::test(flavor = "multi_thread")]
async fn each_violation_makes_its_scenario_fail() {
    let all = library();
    let mut problems = Vec::new();
    // A few brokers at a time, each step with a generous deadline: the test
    // is about which scenario fails, and must not turn on how fast a loaded
    // machine answers (a case whose connect outwaits a short deadline would
    // end "error" instead of "fail").
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let runs = VIOLATIONS.iter().map(|(violation, entry)| {
        let slots = slots.clone();
        // `id [5.0]`: the statement has that meaning in one version only.
        let (id, only) = match entry.split_once(" [") {
            Some((id, v)) => (id, Protocol::parse(v.trim_end_matches(']'))),
            None => (*entry, None),
        };
        let scenarios: Vec<Scenario> = all.iter().filter(|s| s.id == id).cloned().collect();
        async move {
            let _slot = slots.acquire_owned().await.expect("the semaphore is open");
            assert_eq!(scenarios.len(), 1, "no scenario {id}");
            let opts = RunOptions {
                // A broken broker often answers nothing: each such step waits
                // this long, a few at a time.
                step_timeout: Duration::from_secs(2),
                protocols: only.into_iter().collect(),
                ..options()
            };
            let mut config = reference_broker::Config::default();
            config.violations.add(violation).expect("a known violation");
            (violation, id, run_on(config, scenarios, opts).await)
        }
    });
    for (violation, id, report) in futures_join(runs).await {
        for c in &report.cases {
            if c.status != Status::Fail {
                problems.push(format!(
                    "{violation}: {id} [{}] ended {}, not fail",
                    c.protocol, c.status
                ));
            }
        }
        if report.cases.is_empty() {
            problems.push(format!("{violation}: {id} ran no case"));
        }
        if report.exit_code() != 1 {
            problems.push(format!("{violation}: exit code {}", report.exit_code()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs the futures concurrently on the runtime and returns their outputs in order.
async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("the task ran"));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_capability_read_from_connack_is_a_skip() {
    let scenarios: Vec<Scenario> = library()
        .into_iter()
        .filter(|s| s.id == "shared/4.3-qos/qos2-handshake" || s.id == "v5/3.3-publish/topic-alias")
        .collect();
    assert_eq!(scenarios.len(), 2);
    let config = reference_broker::Config {
        maximum_qos: 1,
        topic_alias_maximum: 0,
        ..Default::default()
    };
    let report = run_on(config, scenarios, options()).await;
    let got: Vec<(String, String, Status, String)> = report
        .cases
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                c.protocol.to_string(),
                c.status,
                c.message.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            // 3.1.1 has no Maximum QoS: the SUBACK tells.
            (
                "shared/4.3-qos/qos2-handshake".into(),
                "3.1.1".into(),
                Status::Skip,
                "requires qos2: the broker granted at most QoS 1 where QoS 2 was asked".into()
            ),
            (
                "shared/4.3-qos/qos2-handshake".into(),
                "5.0".into(),
                Status::Skip,
                "requires qos2: the broker's Maximum QoS is 1".into()
            ),
            (
                "v5/3.3-publish/topic-alias".into(),
                "5.0".into(),
                Status::Skip,
                "requires topic_alias: the broker's Topic Alias Maximum is 0".into()
            ),
        ],
        "{}",
        describe(&report)
    );
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn an_unknown_key_is_refused_with_its_position() {
    let path = Path::new("tests/fixtures/scenarios/unknown-key.yaml");
    let e = scenario::load_file(&root().join(path)).expect_err("the file has a misspelt key");
    let shown = e.to_string();
    let rel = shown
        .strip_prefix(&format!("{}/", root().display()))
        .unwrap_or(&shown);
    assert_eq!(
        rel,
        "tests/fixtures/scenarios/unknown-key.yaml:8:28: steps[1].c: unknown field `timout` for an expected \
         PINGRESP (did you mean `timeout`?); a PINGRESP has no fields (and the step may have `timeout`)"
    );
}

#[test]
fn an_undeclared_client_is_refused_with_its_position() {
    let path = root().join("tests/fixtures/scenarios/unknown-client.yaml");
    let e = scenario::load_file(&path).expect_err("the step names an undeclared client");
    assert_eq!(e.pos.map(|p| (p.line, p.column)), Some((8, 5)), "{e}");
    assert!(
        e.message.contains("`publsher`") && e.message.contains("`publisher`"),
        "{e}"
    );
}

#[test]
fn an_unknown_top_level_key_names_what_is_expected() {
    let text = "name: x\nstatements: {\"5.0\": [MQTT-3.12.4-1]}\nclients: {c: {}}\nstep: []\n";
    let e = scenario::parse_scenario("x.yaml", text).expect_err("`step` is not a key");
    assert_eq!(e.pos.map(|p| (p.line, p.column)), Some((4, 1)), "{e}");
    assert!(
        e.message.contains("unknown field `step`") && e.message.contains("`steps`"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_target_is_an_error_not_a_failure() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let target = Target::parse(&format!("mqtt://127.0.0.1:{port}")).expect("a target");
    let scenarios: Vec<Scenario> = library()
        .into_iter()
        .filter(|s| s.id == "shared/3.12-pingreq/pingresp")
        .collect();
    let opts = RunOptions {
        target,
        step_timeout: Duration::from_millis(500),
        ..options()
    };
    let report = tokio::time::timeout(Duration::from_secs(10), run(scenarios, opts))
        .await
        .expect("the run ends within its deadlines");
    assert!(!report.cases.is_empty());
    for c in &report.cases {
        assert_eq!(c.status, Status::Error, "{}", describe(&report));
        assert!(
            c.message
                .as_deref()
                .unwrap_or("")
                .contains("cannot connect"),
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
async fn a_target_that_never_answers_connect_is_an_error_within_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accept connections and keep them open without ever answering.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let scenarios: Vec<Scenario> = library()
        .into_iter()
        .filter(|s| s.id == "shared/3.12-pingreq/pingresp")
        .collect();
    let opts = RunOptions {
        target: Target::parse(&format!("mqtt://{addr}")).expect("a target"),
        step_timeout: Duration::from_millis(300),
        ..options()
    };
    let report = tokio::time::timeout(Duration::from_secs(10), run(scenarios, opts))
        .await
        .expect("the run ends within its deadlines");
    silent.abort();
    for c in &report.cases {
        assert_eq!(c.status, Status::Error, "{}", describe(&report));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_with_a_named_target_connects_where_the_run_maps_it() {
    // Client `b` names the target `other`. Mapped to a second broker that
    // ignores PINGREQ, its check fails; unmapped, it uses the run's target
    // (the strict embedded broker) and passes. Only a client that really
    // connected to the second broker can fail.
    let text = r#"
name: A client on a second broker
statements:
  "5.0": [MQTT-3.12.4-1]
clients:
  a: {}
  b: { target: other }
steps:
  - a: { send: PINGREQ }
  - a: { expect: PINGRESP }
  - b: { send: PINGREQ }
  - b: { expect: PINGRESP }
"#;
    let scenario =
        scenario::parse_scenario("named-target.yaml", text).expect("the scenario parses");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = reference_broker::Config::default();
    config
        .violations
        .add("MQTT-3.12.4-1")
        .expect("a known violation");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let other = tokio::spawn(reference_broker::server::run(listener, config, async {
        let _ = stopped.await;
    }));

    let mut opts = RunOptions {
        step_timeout: Duration::from_millis(500),
        ..options()
    };
    let unmapped = run_on(Default::default(), vec![scenario.clone()], opts.clone()).await;
    assert!(
        unmapped.cases.iter().all(|c| c.status == Status::Pass),
        "{}",
        describe(&unmapped)
    );
    opts.named_targets.insert(
        "other".into(),
        Target::parse(&format!("mqtt://{addr}")).expect("a target"),
    );
    let mapped = run_on(Default::default(), vec![scenario], opts).await;
    assert!(!mapped.cases.is_empty());
    for c in &mapped.cases {
        assert_eq!(c.status, Status::Fail, "{}", describe(&mapped));
        assert!(
            c.message
                .as_deref()
                .unwrap_or("")
                .contains("expected PINGRESP"),
            "{}",
            describe(&mapped)
        );
    }
    let _ = stop.send(());
    let _ = other.await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_credentials_reach_every_connect() {
    // The embedded broker requires a login: without credentials every case
    // is refused at CONNECT (not a verdict on the scenario); with them, it passes.
    let line = reference_broker::auth::hash_line("tester", b"s3cret", 1000, b"0123456789abcdef");
    let passwords = reference_broker::auth::PasswordFile::parse("passwords", &format!("{line}\n"))
        .expect("a password file");
    let config = reference_broker::Config {
        auth: reference_broker::auth::Auth::new(Some(passwords), None, false).expect("auth"),
        ..reference_broker::Config::default()
    };
    let scenarios: Vec<Scenario> = library()
        .into_iter()
        .filter(|s| s.id == "shared/3.12-pingreq/pingresp")
        .collect();
    let anonymous = RunOptions {
        step_timeout: Duration::from_millis(500),
        ..options()
    };
    let refused = run_on(config.clone(), scenarios.clone(), anonymous.clone()).await;
    assert!(!refused.cases.is_empty());
    assert!(
        refused.cases.iter().all(|c| c.status != Status::Pass),
        "{}",
        describe(&refused)
    );
    let login = RunOptions {
        username: Some("tester".into()),
        password: Some("s3cret".into()),
        ..anonymous
    };
    let report = run_on(config, scenarios, login).await;
    assert!(!report.cases.is_empty());
    assert!(
        report.cases.iter().all(|c| c.status == Status::Pass),
        "{}",
        describe(&report)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scenario_needing_a_setup_runs_where_one_is_and_is_skipped_elsewhere() {
    let scenarios: Vec<Scenario> = library()
        .into_iter()
        .filter(|s| s.id == "v5/3.2-connack/maximum-qos-announced")
        .collect();
    assert_eq!(scenarios.len(), 1);
    // The embedded run starts a broker set up with Maximum QoS 1: it passes.
    let report = run_on(Default::default(), scenarios.clone(), options()).await;
    assert!(
        report.cases.iter().all(|c| c.status == Status::Pass),
        "{}",
        describe(&report)
    );
    // Against a plain target that no profile says is set up so: a skip.
    let broker = EmbeddedBroker::start(Default::default())
        .await
        .expect("the embedded broker starts");
    let plain = run(scenarios, RunOptions::new(broker.target())).await;
    broker.stop().await;
    for c in &plain.cases {
        assert_eq!(c.status, Status::Skip, "{}", describe(&plain));
        assert!(
            c.message
                .as_deref()
                .unwrap_or("")
                .starts_with("requires a target set up as `maximum_qos_1`"),
            "{}",
            describe(&plain)
        );
    }
}
