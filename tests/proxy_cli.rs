//! `mqtt-harness proxy` between real clients (mosquitto_pub/sub, paho-mqtt)
//! and real brokers (the embedded one, mosquitto): every packet shown both
//! ways, violations of a deliberately bad client flagged with their
//! statements, malformed bytes survived, and `--record` replayed by `run`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::process::{self, Running};
use support::{Broker, BIN};

fn brokers() -> Vec<(&'static str, Broker)> {
    vec![
        ("embedded", support::embedded(&[])),
        ("mosquitto", support::mosquitto("")),
    ]
}

/// Starts a proxy to `target` on a free port; returns it and the port.
fn proxy(target: &str, extra: &[&str]) -> (Running, String) {
    let mut args = vec!["proxy", "--listen", "127.0.0.1:0", "--target", target];
    args.extend_from_slice(extra);
    let mut p = process::start(BIN, &args, None);
    let first = p.wait_for(false, |l| l.contains("listening"));
    let port = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or_else(|| panic!("no port in {first:?}"))
        .to_string();
    (p, port)
}

/// mosquitto_sub (QoS 1, one message) and mosquitto_pub through the proxy,
/// the publisher started once the proxy has shown the SUBACK.
fn mosquitto_clients(proxy: &mut Running, port: &str, topic: &str, version: &str) {
    let sub = process::start(
        "mosquitto_sub",
        &["-p", port, "-t", topic, "-q", "1", "-C", "1", "-V", version],
        None,
    );
    proxy.wait_for(false, |l| l.contains("\"type\":\"SUBACK\""));
    let p = process::run(
        "mosquitto_pub",
        &[
            "-p", port, "-t", topic, "-q", "1", "-m", "through", "-V", version,
        ],
        None,
    );
    assert_eq!(p.code(), 0, "mosquitto_pub: {}", p.stderr);
    let s = sub.finish();
    assert!(s.stdout.contains("through"), "mosquitto_sub: {}", s.stdout);
}

#[test]
fn mosquitto_clients_through_the_proxy_are_shown_both_ways_without_violations() {
    for (name, b) in brokers() {
        for version in ["mqttv311", "mqttv5"] {
            let (mut p, port) = proxy(&b.url(), &["--exit-after", "2"]);
            mosquitto_clients(&mut p, &port, &format!("px/{name}"), version);
            let done = p.finish();
            assert_eq!(
                done.code(),
                0,
                "{name} {version}: {}{}",
                done.stdout,
                done.stderr
            );
            for want in [
                "[1] client → server  {\"type\":\"CONNECT\"",
                "[1] server → client  {\"type\":\"CONNACK\"",
                "[1] client → server  {\"type\":\"SUBSCRIBE\"",
                "[2] client → server  {\"type\":\"PUBLISH\",\"dup\":false,\"qos\":1",
                "[1] server → client  {\"type\":\"PUBLISH\"",
                "[2] server → client  {\"type\":\"PUBACK\"",
                "[1] client → server  {\"type\":\"PUBACK\"",
                "packet_id:",
                "the client closed the connection",
            ] {
                assert!(
                    done.stdout.contains(want),
                    "{name} {version}: {want} in\n{}",
                    done.stdout
                );
            }
            assert!(
                !done.stdout.contains("!!"),
                "{name} {version}: no violation in\n{}",
                done.stdout
            );
        }
    }
}

const PAHO: &str = r#"
import sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
port, topic = int(sys.argv[1]), sys.argv[2]
got = threading.Event()
subscribed = threading.Event()
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="paho-through-proxy", protocol=mqtt.MQTTv5)
c.on_message = lambda cl, u, m: (print("got", m.topic, m.payload.decode()), got.set())
c.on_subscribe = lambda *a: subscribed.set()
c.connect("127.0.0.1", port, 30)
c.loop_start()
c.subscribe(topic, qos=2)
assert subscribed.wait(20), "no SUBACK"
c.publish(topic, b"from paho", qos=2).wait_for_publish(20)
assert got.wait(20), "no message"
c.disconnect()
c.loop_stop()
"#;

#[test]
fn paho_through_the_proxy_at_qos_2() {
    for (name, b) in brokers() {
        let (p, port) = proxy(&b.url(), &["--exit-after", "1", "--json"]);
        let paho = process::run(
            "python3",
            &["-c", PAHO, &port, &format!("paho/{name}")],
            None,
        );
        assert_eq!(
            paho.code(),
            0,
            "paho (python3 -m pip install paho-mqtt): {}{}",
            paho.stdout,
            paho.stderr
        );
        assert!(paho.stdout.contains("got paho/"), "{}", paho.stdout);
        let done = p.finish();
        assert_eq!(done.code(), 0, "{name}: {}", done.stdout);
        let events: Vec<serde_json::Value> = done
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        let types: Vec<String> = events
            .iter()
            .filter(|e| e["event"] == "packet")
            .map(|e| {
                format!(
                    "{} {}",
                    e["from"].as_str().unwrap(),
                    e["packet"]["type"].as_str().unwrap()
                )
            })
            .collect();
        for want in [
            "client CONNECT",
            "server CONNACK",
            "client PUBLISH",
            "server PUBREC",
            "client PUBREL",
            "server PUBCOMP",
            "server PUBLISH",
            "client PUBREC",
            "server PUBREL",
            "client PUBCOMP",
            "client DISCONNECT",
        ] {
            assert!(
                types.iter().any(|t| t == want),
                "{name}: {want} in {types:?}"
            );
        }
        let connect = events
            .iter()
            .find(|e| e["packet"]["type"] == "CONNECT")
            .unwrap();
        assert_eq!(connect["packet"]["client_id"], "paho-through-proxy");
        assert!(
            connect["statements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "MQTT-3.1.3-3"),
            "{connect}"
        );
        assert!(
            connect["hex"].as_str().unwrap().starts_with("10"),
            "{connect}"
        );
        assert!(
            !events.iter().any(|e| e["event"] == "violation"),
            "{name}: {}",
            done.stdout
        );
    }
}

/// Writes `hex` to the proxy as a raw client and reads until the proxy closes or `want` shows.
fn raw_client(port: &str, hex: &str) {
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("the proxy accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    s.write_all(&bytes).unwrap();
    // Until the broker (or the proxy) closes: anything read is the broker's answer.
    let mut buf = [0u8; 256];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

const CONNECT_311: &str = "100d00044d5154540402003c000178";

#[test]
fn a_bad_client_is_flagged_with_the_statements_it_breaks() {
    for (name, b) in brokers() {
        let (p, port) = proxy(&b.url(), &["--exit-after", "3"]);
        // A PINGREQ before CONNECT.
        raw_client(&port, "c000");
        // CONNECT, then a PUBACK for a message nobody sent, then DISCONNECT.
        raw_client(&port, &format!("{CONNECT_311}40020063e000"));
        // CONNECT, then a PUBLISH with QoS 3: malformed.
        raw_client(&port, &format!("{CONNECT_311}36050001610001"));
        let done = p.finish();
        assert_eq!(
            done.code(),
            1,
            "{name}: violations were seen: {}",
            done.stdout
        );
        for want in [
            "[1] !! client broke MQTT-3.1.0-1",
            "[2] !! client broke MQTT-2.3.1-6",
            "sent PUBACK 99 for no QoS 1 PUBLISH in flight",
            "[3] client → server  bytes that do not decode: 36 05 00 01 61 00 01",
            "[3] !! client broke MQTT-3.3.1-4",
        ] {
            assert!(
                done.stdout.contains(want),
                "{name}: {want} in\n{}",
                done.stdout
            );
        }
    }
}

#[test]
fn malformed_bytes_close_both_sides_when_asked() {
    let b = support::embedded(&[]);
    let (p, port) = proxy(
        &b.url(),
        &["--exit-after", "1", "--on-malformed", "close", "--json"],
    );
    raw_client(&port, &format!("{CONNECT_311}36050001610001"));
    let done = p.finish();
    let lines: Vec<serde_json::Value> = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let malformed = lines
        .iter()
        .find(|e| e["event"] == "malformed")
        .expect("a malformed event");
    assert_eq!(malformed["statement"], "MQTT-3.3.1-4");
    assert_eq!(malformed["from"], "client");
    assert!(
        lines
            .iter()
            .any(|e| e["event"] == "close" && e["by"] == "proxy" && e["reason"] == "malformed"),
        "{}",
        done.stdout
    );
}

#[test]
fn a_recording_replays_with_run_against_both_brokers() {
    for (name, b) in brokers() {
        let dir = support::TempDir::new("proxy-record");
        let file = dir.path.join("recorded.yaml");
        let file_s = file.display().to_string();
        let (mut p, port) = proxy(&b.url(), &["--exit-after", "2", "--record", &file_s]);
        mosquitto_clients(&mut p, &port, "rec/a", "mqttv5");
        assert_eq!(p.finish().code(), 0);
        let yaml = std::fs::read_to_string(&file).expect("the recording");
        for want in [
            "send: CONNECT",
            "expect: CONNACK",
            "'{topic}/rec/a'",
            "id: $c1_p1",
            "send: PUBACK",
        ] {
            assert!(yaml.contains(want), "{name}: {want} in\n{yaml}");
        }
        let on_embedded = process::run(BIN, &["run", &file_s], None);
        assert_eq!(
            on_embedded.code(),
            0,
            "{name} recording on the embedded broker: {}",
            on_embedded.stdout
        );
        let m = support::mosquitto("");
        let on_mosquitto = process::run(BIN, &["run", &file_s, "--target", &m.url()], None);
        assert_eq!(
            on_mosquitto.code(),
            0,
            "{name} recording on mosquitto: {}",
            on_mosquitto.stdout
        );
    }
}

#[test]
fn bad_input_to_the_proxy() {
    let bad_url = process::run(
        BIN,
        &["proxy", "--listen", "127.0.0.1:0", "--target", "http://x"],
        None,
    );
    assert_eq!(bad_url.code(), 2);
    assert!(
        bad_url.stderr.contains("is not a target scheme"),
        "{}",
        bad_url.stderr
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let busy = process::run(
        BIN,
        &["proxy", "--listen", &addr, "--target", "mqtt://127.0.0.1:1"],
        None,
    );
    assert_eq!(busy.code(), 3);
    assert!(busy.stderr.contains("cannot listen on"), "{}", busy.stderr);
    // An unreachable target: the client's connection is closed, the proxy says why.
    let free = support::free_port();
    let (p, port) = proxy(&format!("mqtt://127.0.0.1:{free}"), &["--exit-after", "1"]);
    raw_client(&port, CONNECT_311);
    let done = p.finish();
    assert!(
        done.stdout.contains("cannot reach the target"),
        "{}",
        done.stdout
    );
}

#[test]
fn a_broken_broker_is_flagged_too() {
    // A fake broker that answers CONNECT with a PINGRESP before any CONNACK.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("mqtt://{}", listener.local_addr().unwrap());
    let broker = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        s.write_all(&[0xd0, 0x00, 0x20, 0x02, 0x00, 0x00]).unwrap();
    });
    let (p, port) = proxy(&target, &["--exit-after", "1"]);
    raw_client(&port, CONNECT_311);
    broker.join().unwrap();
    let done = p.finish();
    assert_eq!(done.code(), 1, "{}", done.stdout);
    assert!(
        done.stdout.contains("[1] !! server broke MQTT-3.2.0-1"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("sent PINGRESP before CONNACK"),
        "{}",
        done.stdout
    );
}

#[test]
fn the_proxy_reaches_tls_and_websocket_targets() {
    let (_broker, urls, ca) = support::embedded_all_transports();
    let ca = ca.display().to_string();
    for (url, extra) in [
        (&urls[1], vec!["--cafile", ca.as_str()]),
        (&urls[2], vec![]),
        (&urls[3], vec!["--insecure"]),
    ] {
        let mut args = vec!["--exit-after", "2"];
        args.extend(extra.iter().copied());
        let (mut p, port) = proxy(url, &args);
        let sub = process::start(BIN, &["sub", "-p", &port, "-t", "tls/px", "-C", "1"], None);
        p.wait_for(false, |l| l.contains("\"type\":\"SUBACK\""));
        let publ = process::run(
            BIN,
            &["pub", "-p", &port, "-t", "tls/px", "-m", "over tls"],
            None,
        );
        assert_eq!(publ.code(), 0, "{url}: {}", publ.stderr);
        assert_eq!(sub.finish().stdout, "over tls\n", "{url}");
        let done = p.finish();
        assert_eq!(done.code(), 0, "{url}: {}", done.stdout);
        assert!(
            done.stdout.contains(&format!("relaying to {url}")),
            "{url}: {}",
            done.stdout
        );
    }
}
