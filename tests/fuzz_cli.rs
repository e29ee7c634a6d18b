//! `mqtt-harness fuzz`: against the compliant embedded broker (no finding),
//! against deliberate violations (found, minimised, written, and replayed by
//! `run` failing on the same statement, passing on the compliant broker),
//! against fake targets that misbehave (the fuzzer ends within its bound,
//! never panics), against mosquitto, and reproducibly.

mod support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{TempDir, BIN};

fn fuzz(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("fuzz")
        .args(args)
        .output()
        .expect("the harness runs")
}

fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the JSON summary is written");
    serde_json::from_str(&text).expect("the summary is JSON")
}

fn scenarios_in(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compliant_embedded_broker_gives_no_finding() {
    let dir = TempDir::new("fuzz-ok");
    let json = dir.path.join("s.json");
    let findings = dir.path.join("findings");
    let out = fuzz(&[
        "--max-execs",
        "150",
        "--json",
        json.to_str().unwrap(),
        "--findings",
        findings.to_str().unwrap(),
    ]);
    let console = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{console}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(console.contains("no finding"), "{console}");
    let s = summary(&json);
    assert_eq!(s["summary"]["executions"], 150);
    assert_eq!(s["summary"]["findings"], 0);
    assert!(s["summary"]["connections"].as_u64().unwrap() >= 150);
    assert!(s["summary"]["execs_per_s"].as_f64().unwrap() > 0.0);
    assert!(scenarios_in(&findings).is_empty());
}

/// Fuzzes the embedded broker breaking `violation` until a finding of
/// `kind` on `statement`, then replays the findings with `run`: failing on
/// that statement with the violation, passing without.
fn finds_and_replays(violation: &str, kind: &str, statement: &str) {
    let dir = TempDir::new("fuzz-violation");
    let json = dir.path.join("s.json");
    let findings = dir.path.join("findings");
    let out = fuzz(&[
        "--violate",
        violation,
        "--max-execs",
        "400",
        "--json",
        json.to_str().unwrap(),
        "--findings",
        findings.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = summary(&json);
    let found = s["findings"].as_array().unwrap();
    let f = found
        .iter()
        .find(|f| f["kind"] == kind && f["statement"] == statement)
        .unwrap_or_else(|| panic!("no {kind} finding on {statement}: {found:?}"));
    let file = f["scenario"].as_str().expect("the finding is written");
    assert_eq!(f["replayed"], true, "the fuzzer's own replay check: {f}");
    assert!(Path::new(file).starts_with(&findings));
    assert!(s["summary"]["time_to_first_finding_s"].as_f64().is_some());
    assert!(s["summary"]["findings_by_kind"][kind].as_u64().unwrap() >= 1);

    let report = dir.path.join("replay.json");
    let replay = Command::new(BIN)
        .args(["run", file, "--violate", violation, "--json"])
        .arg(&report)
        .output()
        .expect("run replays the finding");
    let text = std::fs::read_to_string(file).unwrap_or_default();
    assert_eq!(
        replay.status.code(),
        Some(1),
        "{}\nthe scenario:\n{text}",
        String::from_utf8_lossy(&replay.stdout)
    );
    let r = summary(&report);
    let failed: Vec<&Value> = r["scenarios"][0]["failed_statements"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(failed.iter().any(|s| *s == statement), "{failed:?}");

    let clean = Command::new(BIN)
        .args(["run", file])
        .output()
        .expect("run replays the finding");
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}\nthe scenario:\n{text}",
        String::from_utf8_lossy(&clean.stdout)
    );
}

#[test]
fn a_delivery_to_a_client_without_a_matching_subscription_is_found_and_replayed() {
    finds_and_replays(
        "MQTT-3.3.2-3",
        "delivery_without_subscription",
        "MQTT-3.3.2-3",
    );
}

#[test]
fn a_malformed_packet_from_the_broker_is_found_and_replayed() {
    finds_and_replays("MQTT-3.3.1-2", "malformed_output", "MQTT-3.3.1-2");
}

#[test]
fn a_packet_identifier_reused_while_in_flight_is_found_and_replayed() {
    finds_and_replays("MQTT-2.2.1-4", "packet_id_reused", "MQTT-2.2.1-4");
}

#[test]
fn the_same_seed_sends_the_same_inputs() {
    let dir = TempDir::new("fuzz-seed");
    let digest = |seed: &str, name: &str| {
        let json = dir.path.join(name);
        let out = fuzz(&[
            "--seed",
            seed,
            "--max-execs",
            "60",
            "--json",
            json.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        summary(&json)["summary"]["inputs_digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a = digest("5", "a.json");
    assert_eq!(a, digest("5", "b.json"));
    assert_ne!(a, digest("6", "c.json"));
}

#[test]
fn mosquitto_is_fuzzed_and_the_summary_adds_up() {
    let broker = support::mosquitto("");
    let dir = TempDir::new("fuzz-mosquitto");
    let json = dir.path.join("s.json");
    let pid = broker.pid().to_string();
    let out = fuzz(&[
        "-t",
        &broker.url(),
        "--pid",
        &pid,
        "--max-execs",
        "200",
        "--json",
        json.to_str().unwrap(),
        "--findings",
        dir.path.join("f").to_str().unwrap(),
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{:?}", out.status);
    let s = summary(&json);
    let sum = &s["summary"];
    assert_eq!(sum["executions"], 200);
    assert!(sum["connections"].as_u64().unwrap() >= 200);
    assert!(
        sum["packet_types_sent"].as_array().unwrap().len() >= 8,
        "{sum}"
    );
    assert!(
        sum["packet_types_received"].as_array().unwrap().len() >= 5,
        "{sum}"
    );
    assert!(sum["rss_kib"]["max"].as_u64().unwrap() > 0, "{sum}");
    assert_eq!(
        sum["findings"].as_u64().unwrap() as usize,
        s["findings"].as_array().unwrap().len()
    );
}

#[test]
fn bad_usage_and_an_unreachable_target() {
    assert_eq!(fuzz(&["--jobs", "0"]).status.code(), Some(2));
    assert_eq!(
        fuzz(&["--violate", "MQTT-3.3.2-3", "-t", "mqtt://127.0.0.1:1"])
            .status
            .code(),
        Some(2)
    );
    let port = support::free_port().to_string();
    let out = fuzz(&[
        "-t",
        &format!("mqtt://127.0.0.1:{port}"),
        "--max-execs",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

/// A fake target: every accepted connection is served by `serve` on a thread.
fn fake(serve: fn(TcpStream)) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    port
}

fn drain(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = s.read(&mut buf);
}

/// Runs a bounded fuzz against a fake target: it must end within its bound,
/// with an exit status of its table, without a panic.
fn survives(name: &str, serve: fn(TcpStream)) {
    let port = fake(serve);
    let url = format!("mqtt://127.0.0.1:{port}");
    let args = [
        "fuzz",
        "-t",
        &url,
        "--max-execs",
        "6",
        "--timeout",
        "300ms",
        "-j",
        "2",
    ];
    let done =
        support::process::start(BIN, &args, Some(b"")).finish_within(Duration::from_secs(90));
    let (status, err) = (done.status, done.stderr);
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert!(
        matches!(status.code(), Some(0 | 1 | 3)),
        "{name}: {status:?} {err}"
    );
}

#[test]
fn a_target_sending_garbage_does_not_break_the_fuzzer() {
    survives("garbage", |mut s| {
        use std::io::Write;
        let mut x = 0x1234_5678u32;
        for _ in 0..64 {
            drain(&mut s);
            let chunk: Vec<u8> = (0..512)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
}

#[test]
fn a_target_that_stalls_mid_packet_does_not_hang_the_fuzzer() {
    survives("stall", |mut s| {
        use std::io::Write;
        drain(&mut s);
        // Half a CONNACK, then nothing, while the connection stays open
        // (until the fuzzer closes it).
        let _ = s.write_all(&[0x20, 0x02]);
        let _ = s.set_read_timeout(None);
        let _ = s.read_to_end(&mut Vec::new());
    });
}

#[test]
fn a_target_that_resets_does_not_break_the_fuzzer() {
    survives("reset", |mut s| {
        // Closing with the client's CONNECT unread makes the kernel reset
        // the connection (RST) rather than close it.
        let mut one = [0u8; 1];
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = std::io::Read::read(&mut s, &mut one);
        drop(s);
    });
}

#[test]
fn a_target_that_floods_does_not_break_the_fuzzer() {
    survives("flood", |mut s| {
        use std::io::Write;
        drain(&mut s);
        let _ = s.write_all(&[0x20, 0x02, 0x00, 0x00]);
        // PUBLISH after PUBLISH, and one that announces 200 MB.
        let publish = [0x30, 0x05, 0x00, 0x01, b'a', b'h', b'i'];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if s.write_all(&publish.repeat(500)).is_err() {
                return;
            }
        }
        let _ = s.write_all(&[0x30, 0xff, 0xff, 0xff, 0x7f]);
    });
}

#[test]
fn differential_fuzzing_classifies_each_difference_by_the_catalogue() {
    let ours = support::embedded(&[]);
    let theirs = support::mosquitto("");
    let dir = TempDir::new("fuzz-differential");
    let json = dir.path.join("s.json");
    let out = fuzz(&[
        "-t",
        &ours.url(),
        "--differential",
        &theirs.url(),
        "--max-execs",
        "120",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{:?}", out.status);
    let s = summary(&json);
    assert_eq!(s["summary"]["differential"][0], theirs.url());
    let diffs = s["differences"].as_array().unwrap();
    // The two brokers choose differently where the spec lets them (a 5.0
    // PUBREC 0x10 where no one subscribes, closing on a bad packet or not).
    assert!(!diffs.is_empty(), "{s}");
    for d in diffs {
        let class = d["classification"].as_str().unwrap();
        match d["statement"].as_str() {
            Some(id) => assert!(class.starts_with(&format!("decided by {id}")), "{d}"),
            None => assert_eq!(class, "the spec lets them differ", "{d}"),
        }
        assert_eq!(d["target"], theirs.url());
    }
}

#[test]
fn a_websocket_target_is_fuzzed_through_the_same_network_layer() {
    // A broker with a WebSocket listener: the line naming it says it is bound.
    let mut broker = support::process::start(
        BIN,
        &["broker", "--listen", "127.0.0.1:0", "--ws", "127.0.0.1:0"],
        None,
    );
    let line = broker.wait_for(false, |l| l.contains("ws://"));
    let addr = line
        .rsplit("ws://")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let dir = TempDir::new("fuzz-ws");
    let json = dir.path.join("s.json");
    let url = format!("ws://{addr}/mqtt");
    let out = fuzz(&[
        "-t",
        &url,
        "--max-execs",
        "40",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let s = summary(&json);
    assert_eq!(s["summary"]["executions"], 40);
    assert_eq!(s["summary"]["target"], url);
}
