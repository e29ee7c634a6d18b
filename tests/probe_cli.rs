//! `mqtt-harness probe` against the reference broker with known
//! configurations (every detected value asserted), against real mosquitto
//! (its known facts), the profile it writes read by the real profile parser
//! and used by `run --profile`, and bad targets that must not hang.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{TempDir, BIN};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn harness(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the mqtt-harness binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `probe --json -` of `url`: the report, after checking the exit status.
fn probe_json(url: &str, extra: &[&str]) -> Value {
    let mut args = vec!["probe", "--target", url, "--json", "-"];
    args.extend_from_slice(extra);
    let out = harness(&args);
    assert_eq!(
        out.code, 0,
        "stdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    serde_json::from_str(&out.stdout).expect("probe --json - prints JSON")
}

fn value<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["key"] == key))
        .map(|f| &f["value"])
        .unwrap_or_else(|| panic!("no finding {key} in {report}"))
}

fn finding<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["key"] == key))
        .unwrap_or_else(|| panic!("no finding {key}"))
}

/// Every QoS 1 or 2 PUBLISH the probe received, in any try, that it did
/// not acknowledge (PUBACK / PUBREC with its id, before its next CONNECT):
/// a delivery the probe waited for is acknowledged like any other.
fn unacknowledged(report: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    for f in &findings {
        for t in f["evidence"].as_array().into_iter().flatten() {
            let lines = t["exchange"].as_array().cloned().unwrap_or_default();
            for (i, l) in lines.iter().enumerate() {
                let p = &l["packet"];
                if l["dir"] != "received" || p["type"] != "PUBLISH" || p["qos"] == 0 {
                    continue;
                }
                let acked = lines[i + 1..]
                    .iter()
                    .take_while(|n| !(n["dir"] == "sent" && n["packet"]["type"] == "CONNECT"))
                    .any(|n| {
                        n["dir"] == "sent"
                            && (n["packet"]["type"] == "PUBACK" || n["packet"]["type"] == "PUBREC")
                            && n["packet"]["id"] == p["id"]
                    });
                if !acked {
                    missing.push(format!("{} / {}: {p}", f["key"], t["try"]));
                }
            }
        }
    }
    missing
}

const LIMITED: &str = "maximum_qos: 1
retain_available: false
max_packet_size: 2000
max_topic_length: 100
max_topic_levels: 5
topic_alias_maximum: 3
receive_maximum: 7
subscription_identifiers: false
shared_subscriptions: false
server_keep_alive: 30
max_session_expiry: 60
";

fn limited_broker(dir: &TempDir) -> support::Broker {
    let config = dir.path.join("broker.yaml");
    std::fs::write(&config, LIMITED).expect("write the broker configuration");
    support::embedded(&["--config", config.to_str().expect("a UTF-8 path")])
}

#[test]
fn a_limited_reference_broker_is_found_out_value_by_value() {
    let dir = TempDir::new("probe-limited");
    let broker = limited_broker(&dir);
    let r = probe_json(&broker.url(), &[]);
    assert_eq!(
        value(&r, "protocols"),
        &serde_json::json!(["3.1", "3.1.1", "5.0"])
    );
    assert_eq!(value(&r, "maximum_qos"), 1);
    assert_eq!(value(&r, "retain"), false);
    assert_eq!(value(&r, "wildcards"), true);
    assert_eq!(value(&r, "shared_subscriptions"), false);
    assert_eq!(value(&r, "subscription_identifiers"), false);
    assert_eq!(value(&r, "topic_alias_maximum"), 3);
    assert_eq!(value(&r, "receive_maximum"), 7);
    assert_eq!(value(&r, "maximum_packet_size"), 2000);
    assert_eq!(value(&r, "maximum_topic_length"), 100);
    assert_eq!(value(&r, "maximum_topic_levels"), 5);
    assert_eq!(value(&r, "session"), true);
    assert_eq!(value(&r, "session_expiry_maximum"), 60);
    assert_eq!(
        value(&r, "keep_alive"),
        &serde_json::json!({"minimum": 30, "maximum": 30})
    );
    assert_eq!(value(&r, "sys_topics"), false);
    let announced = &value(&r, "connack_properties")["announced"];
    assert_eq!(announced["maximum_qos"], 1);
    assert_eq!(announced["retain_available"], 0);
    assert_eq!(announced["server_keep_alive"], 30);
    // A CONNECT is a packet too: a client id longer than the packet limit allows is refused.
    let id = value(&r, "maximum_client_id_length")
        .as_u64()
        .expect("a length");
    assert!(id > 1900 && id < 2000, "{id}");

    // The evidence of the size limit: the refused PUBLISH and the broker's DISCONNECT 0x95.
    let size = finding(&r, "maximum_packet_size");
    let refused = size["evidence"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|t| t["outcome"].as_str().is_some_and(|o| o.contains("0x95")))
        })
        .expect("the refused step is evidence");
    let lines = refused["exchange"].as_array().expect("an exchange");
    assert!(
        lines
            .iter()
            .any(|l| l["dir"] == "sent" && l["packet"]["type"] == "PUBLISH"),
        "{refused}"
    );
    assert!(
        lines.iter().any(|l| l["dir"] == "received"
            && l["packet"]["type"] == "DISCONNECT"
            && l["packet"]["reason_code"] == 0x95),
        "{refused}"
    );
    // QoS 2 refused with its reason code, shown in the evidence.
    let qos = finding(&r, "maximum_qos");
    assert!(
        qos["summary"].as_str().unwrap_or("").contains("0x9B"),
        "{qos}"
    );
}

#[test]
fn the_default_reference_broker_offers_everything_with_its_default_limits() {
    let broker = support::embedded(&[]);
    let r = probe_json(&broker.url(), &["--max-size", "2000000"]);
    assert_eq!(value(&r, "maximum_qos"), 2);
    for key in [
        "retain",
        "wildcards",
        "shared_subscriptions",
        "subscription_identifiers",
        "session",
    ] {
        assert_eq!(value(&r, key), true, "{key}");
    }
    assert_eq!(value(&r, "maximum_packet_size"), 1024 * 1024);
    assert_eq!(value(&r, "maximum_topic_length"), 1024);
    assert_eq!(value(&r, "maximum_topic_levels"), 32);
    assert_eq!(value(&r, "receive_maximum"), 100);
    assert_eq!(value(&r, "topic_alias_maximum"), 10);
    assert_eq!(
        value(&r, "keep_alive"),
        &serde_json::json!({"minimum": 0, "maximum": 65535})
    );
    assert_eq!(value(&r, "empty_client_id")["accepted"], true);
    assert_eq!(unacknowledged(&r), Vec::<String>::new());
}

#[test]
fn mosquitto_is_found_to_speak_all_versions_with_every_feature() {
    let broker = support::mosquitto("");
    let r = probe_json(
        &broker.url(),
        &["--max-size", "100000", "--max-topic-levels", "64"],
    );
    assert_eq!(
        value(&r, "protocols"),
        &serde_json::json!(["3.1", "3.1.1", "5.0"])
    );
    assert_eq!(value(&r, "maximum_qos"), 2);
    for key in [
        "retain",
        "wildcards",
        "shared_subscriptions",
        "subscription_identifiers",
        "sys_topics",
    ] {
        assert_eq!(value(&r, key), true, "{key}");
    }
    // Its defaults: max_inflight_messages 20, max_topic_alias 10, no size limit.
    assert_eq!(value(&r, "receive_maximum"), 20);
    assert_eq!(value(&r, "topic_alias_maximum"), 10);
    assert_eq!(
        value(&r, "maximum_payload"),
        &serde_json::json!({"at_least": 100000})
    );
    assert_eq!(
        value(&r, "maximum_topic_levels"),
        &serde_json::json!({"at_least": 64})
    );
    assert_eq!(unacknowledged(&r), Vec::<String>::new());
}

#[test]
fn the_written_profile_is_read_by_the_profile_parser_and_run_uses_it() {
    let dir = TempDir::new("probe-profile");
    let broker = limited_broker(&dir);
    let file = dir.path.join("probed.yaml");
    let path = file.to_str().expect("a UTF-8 path");
    let out = harness(&[
        "probe",
        "--target",
        &broker.url(),
        "--write-profile",
        path,
        "--profile-name",
        "limited",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Maximum QoS"), "{}", out.stdout);

    let p = mqtt_harness::profile::load_profile(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.name, "limited");
    assert_eq!(p.protocols.len(), 3);
    assert_eq!(p.maximum_qos, 1);
    assert!(
        !p.retain
            && p.wildcards
            && !p.shared_subscriptions
            && !p.subscription_identifiers
            && p.topic_alias
    );
    assert_eq!((p.keep_alive.minimum, p.keep_alive.maximum), (30, 30));

    let json = dir.path.join("run.json");
    let out = harness(&[
        "run",
        "--target",
        &broker.url(),
        "--profile",
        path,
        "--filter",
        "shared/3.3-publish/retained",
        "--json",
        json.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the run's report"))
            .expect("JSON");
    let cases = report["scenarios"].as_array().expect("cases");
    assert!(!cases.is_empty());
    for c in cases {
        assert_eq!(c["status"], "skip", "{c}");
        if c["protocol"] == "3.1.1" {
            // Only the profile can tell a 3.1.1 client that retain is off.
            assert!(
                c["message"].as_str().unwrap_or("").contains("`limited`"),
                "{c}"
            );
        }
    }
}

/// A target that answers every connection with `reply` (nothing: it only
/// closes; `None`: it stays silent), on a thread, for `n` connections.
fn fake_target(reply: Option<&'static [u8]>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("an address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 256];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut buf);
            match reply {
                Some(bytes) => {
                    let _ = s.write_all(bytes);
                }
                None => held.push(s),
            }
        }
    });
    port
}

#[test]
fn a_target_that_closes_or_sends_garbage_gets_a_clear_message_and_exit_1() {
    for (reply, says) in [
        (Some(&b""[..]), "the server closed the connection"),
        (
            Some(&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]),
            "do not decode",
        ),
        (None, "no answer before the deadline"),
    ] {
        let port = fake_target(reply);
        let started = Instant::now();
        let out = harness(&[
            "probe",
            "--target",
            &format!("mqtt://127.0.0.1:{port}"),
            "--timeout",
            "500ms",
        ]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr
                .contains("answered no CONNECT of 3.1, 3.1.1 or 5.0"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(says), "{says}: {}", out.stderr);
        // Every try has its deadline: three CONNECTs at once, 500 ms each.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}

#[test]
fn an_unreachable_target_exits_3_and_a_bad_option_2() {
    let port = support::free_port();
    let out = harness(&["probe", "--target", &format!("mqtt://127.0.0.1:{port}")]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("cannot reach"), "{}", out.stderr);
    let out = harness(&["probe", "--timeout", "soon"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = harness(&["probe", "--target", "http://x"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not a target scheme"), "{}", out.stderr);
}

#[test]
fn without_a_target_the_embedded_broker_is_probed_on_the_console() {
    let out = harness(&["probe", "--max-size", "1000"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for label in [
        "Protocol levels",
        "3.1 yes, 3.1.1 yes, 5.0 yes",
        "Maximum QoS",
        "Shared subscriptions",
        "Maximum topic length",
    ] {
        assert!(out.stdout.contains(label), "{label}: {}", out.stdout);
    }
    let out = harness(&["probe", "--max-size", "1000", "--verbose"]);
    assert!(
        out.stdout.contains("→ CONNECT") && out.stdout.contains("← CONNACK"),
        "{}",
        out.stdout
    );
}
