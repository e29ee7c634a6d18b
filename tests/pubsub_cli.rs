//! `mqtt-harness pub` and `sub` against the embedded reference broker and
//! against mosquitto: round trips at every QoS, retain, -C/-W, -F templates,
//! JSON lines with 5.0 properties, the will on an abrupt close, stdin line by
//! line, TLS and WebSocket, and the errors bad input gets.

mod support;

use support::process::{self, Running};
use support::{Broker, BIN};

fn brokers() -> Vec<(&'static str, Broker)> {
    vec![
        ("embedded", support::embedded(&[])),
        ("mosquitto", support::mosquitto("")),
    ]
}

fn port(b: &Broker) -> String {
    b.port.to_string()
}

/// Starts `sub` with `--trace --trace-json` and waits until its SUBACK came:
/// a message published after that reaches it.
fn subscribed(args: &[&str]) -> Running {
    let mut all = vec!["sub", "--trace", "--trace-json"];
    all.extend_from_slice(args);
    let mut s = process::start(BIN, &all, None);
    s.wait_for(true, |l| l.contains("\"type\":\"SUBACK\""));
    s
}

fn publish(args: &[&str]) -> process::Done {
    let mut all = vec!["pub"];
    all.extend_from_slice(args);
    let done = process::run(BIN, &all, None);
    assert_eq!(done.code(), 0, "pub {args:?}: {}", done.stderr);
    done
}

#[test]
fn round_trips_at_qos_0_1_2() {
    for (name, b) in brokers() {
        let p = port(&b);
        for q in ["0", "1", "2"] {
            let topic = format!("rt/{name}/{q}");
            let s = subscribed(&[
                "-p",
                &p,
                "-t",
                &topic,
                "-q",
                q,
                "-C",
                "1",
                "-F",
                "%t|%p|%q|%r",
            ]);
            publish(&["-p", &p, "-t", &topic, "-q", q, "-m", "hello"]);
            let done = s.finish();
            assert_eq!(done.code(), 0, "{name} QoS {q}: {}", done.stderr);
            assert_eq!(
                done.stdout,
                format!("{topic}|hello|{q}|0\n"),
                "{name} QoS {q}"
            );
        }
    }
}

#[test]
fn retained_messages_reach_later_subscribers_and_every_version_works() {
    for (name, b) in brokers() {
        let p = port(&b);
        for v in ["31", "311", "5"] {
            let topic = format!("retain/{name}/{v}");
            publish(&[
                "-p", &p, "-V", v, "-t", &topic, "-r", "-q", "1", "-m", "kept",
            ]);
            let done = process::run(
                BIN,
                &[
                    "sub", "-p", &p, "-V", v, "-t", &topic, "-C", "1", "-F", "%r %p",
                ],
                None,
            );
            assert_eq!(
                (done.code(), done.stdout.as_str()),
                (0, "1 kept\n"),
                "{name} {v}: {}",
                done.stderr
            );
            // -n clears it.
            publish(&["-p", &p, "-V", v, "-t", &topic, "-r", "-n"]);
            let after = process::run(
                BIN,
                &["sub", "-p", &p, "-V", v, "-t", &topic, "-W", "0.5"],
                None,
            );
            assert_eq!(
                (after.code(), after.stdout.as_str()),
                (0, ""),
                "{name} {v}: cleared"
            );
        }
    }
}

#[test]
fn count_and_timeout() {
    for (name, b) in brokers() {
        let p = port(&b);
        // -W without -C: time up is the normal end.
        let quiet = process::run(
            BIN,
            &["sub", "-p", &p, "-t", "nothing/here", "-W", "0.3"],
            None,
        );
        assert_eq!(
            (quiet.code(), quiet.stdout.as_str()),
            (0, ""),
            "{name}: {}",
            quiet.stderr
        );
        // -C 2 -W: one message is not two.
        let topic = format!("count/{name}");
        let s = subscribed(&["-p", &p, "-t", &topic, "-C", "2", "-W", "2"]);
        publish(&["-p", &p, "-t", &topic, "-m", "one"]);
        let done = s.finish();
        assert_eq!(done.code(), 1, "{name}: {}", done.stderr);
        assert_eq!(done.stdout, "one\n");
        assert!(
            done.stderr.contains("1 of 2 messages arrived within -W 2"),
            "{}",
            done.stderr
        );
    }
}

#[test]
fn stdin_line_by_line_and_whole() {
    for (name, b) in brokers() {
        let p = port(&b);
        let topic = format!("lines/{name}");
        let s = subscribed(&["-p", &p, "-t", &topic, "-q", "1", "-C", "4", "-v"]);
        let done = process::run(
            BIN,
            &["pub", "-p", &p, "-t", &topic, "-q", "1", "-l"],
            Some(b"a\nb b\r\nc\n"),
        );
        assert_eq!(done.code(), 0, "{}", done.stderr);
        let whole = process::run(BIN, &["pub", "-p", &p, "-t", &topic, "-s"], Some(b"x\ny"));
        assert_eq!(whole.code(), 0, "{}", whole.stderr);
        let got = s.finish();
        assert_eq!(
            got.stdout,
            format!("{topic} a\n{topic} b b\n{topic} c\n{topic} x\ny\n"),
            "{name}"
        );
    }
}

#[test]
fn json_lines_carry_every_5_0_property() {
    for (name, b) in brokers() {
        let p = port(&b);
        let topic = format!("props/{name}");
        let s = subscribed(&[
            "-p",
            &p,
            "-V",
            "5",
            "-t",
            &topic,
            "-q",
            "1",
            "-C",
            "1",
            "--json",
            "--subscription-identifier",
            "42",
        ]);
        publish(&[
            "-p",
            &p,
            "-V",
            "5",
            "-t",
            &topic,
            "-q",
            "1",
            "-m",
            "{\"t\":21}",
            "--user-property",
            "unit=celsius",
            "-D",
            "publish",
            "user-property",
            "room",
            "kitchen",
            "--content-type",
            "application/json",
            "--response-topic",
            "reply/here",
            "--correlation-data",
            "req-7",
            "--message-expiry",
            "300",
            "--utf8",
        ]);
        let done = s.finish();
        assert_eq!(done.code(), 0, "{}", done.stderr);
        let v: serde_json::Value = serde_json::from_str(done.stdout.trim()).expect("one JSON line");
        assert_eq!(v["type"], "PUBLISH");
        assert_eq!(v["topic"], topic.as_str());
        assert_eq!(v["payload"], "{\"t\":21}");
        assert_eq!(v["qos"], 1);
        let props = v["properties"].as_array().expect("properties");
        let has = |n: &str, val: serde_json::Value| {
            props.iter().any(|x| x["name"] == n && x["value"] == val)
        };
        assert!(
            has("user_property", serde_json::json!(["unit", "celsius"])),
            "{name}: {props:?}"
        );
        assert!(
            has("user_property", serde_json::json!(["room", "kitchen"])),
            "{name}: {props:?}"
        );
        assert!(
            has("content_type", "application/json".into()),
            "{name}: {props:?}"
        );
        assert!(
            has("response_topic", "reply/here".into()),
            "{name}: {props:?}"
        );
        assert!(has("correlation_data", "req-7".into()), "{name}: {props:?}");
        assert!(
            has("payload_format_indicator", 1.into()),
            "{name}: {props:?}"
        );
        assert!(
            has("subscription_identifier", 42.into()),
            "{name}: {props:?}"
        );
        assert!(
            props.iter().any(|x| x["name"] == "message_expiry_interval"),
            "{name}: {props:?}"
        );
    }
}

#[test]
fn templates_name_fields_and_5_0_properties() {
    for (name, b) in brokers() {
        let p = port(&b);
        let topic = format!("fmt/{name}");
        let s = subscribed(&[
            "-p",
            &p,
            "-V",
            "5",
            "-t",
            &topic,
            "-q",
            "2",
            "-C",
            "1",
            "-F",
            "%t %x %l %q %C %R %P\\tend",
        ]);
        publish(&[
            "-p",
            &p,
            "-V",
            "5",
            "-t",
            &topic,
            "-q",
            "2",
            "-m",
            "AB",
            "--content-type",
            "text/plain",
            "--response-topic",
            "r/1",
            "--user-property",
            "k=v",
        ]);
        let done = s.finish();
        assert_eq!(
            done.stdout,
            format!("{topic} 4142 2 2 text/plain r/1 k:v\tend\n"),
            "{name}: {}",
            done.stderr
        );
    }
}

#[test]
fn the_will_is_published_when_a_client_vanishes() {
    for (name, b) in brokers() {
        let p = port(&b);
        let will = format!("will/{name}");
        let watcher = subscribed(&["-p", &p, "-t", &will, "-C", "1", "-F", "%t %p"]);
        let doomed = subscribed(&[
            "-p",
            &p,
            "-t",
            "anything",
            "--will-topic",
            &will,
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ]);
        doomed.kill();
        let done = watcher.finish();
        assert_eq!(
            done.stdout,
            format!("{will} gone\n"),
            "{name}: {}",
            done.stderr
        );
    }
}

#[test]
fn trace_annotates_every_packet_with_its_statements() {
    let b = support::embedded(&[]);
    let done = process::run(
        BIN,
        &[
            "pub",
            "-p",
            &port(&b),
            "-t",
            "tr",
            "-q",
            "1",
            "-m",
            "x",
            "--trace",
        ],
        None,
    );
    assert_eq!(done.code(), 0, "{}", done.stderr);
    for want in [
        "client → server  {\"type\":\"CONNECT\"",
        "server → client  {\"type\":\"CONNACK\"",
        "client → server  {\"type\":\"PUBLISH\"",
        "MQTT-2.3.1-1   packet_id:",
        "server → client  {\"type\":\"PUBACK\",\"id\":1}",
        "section 3.3: ",
        "client → server  {\"type\":\"DISCONNECT\"}",
    ] {
        assert!(done.stderr.contains(want), "{want} in {}", done.stderr);
    }
    assert!(!done.stderr.contains("!!"), "no violation: {}", done.stderr);
    assert_eq!(done.stdout, "", "the trace goes to stderr");
}

#[test]
fn tls_and_websocket_transports() {
    let (_broker, urls, ca) = support::embedded_all_transports();
    let ca = ca.display().to_string();
    // mqtts with the CA file, mqtts --insecure, ws, wss with the CA file.
    let cases: Vec<(String, Vec<&str>)> = vec![
        (urls[1].clone(), vec!["--cafile", &ca]),
        (urls[1].clone(), vec!["--insecure"]),
        (urls[2].clone(), vec![]),
        (urls[3].clone(), vec!["--cafile", &ca]),
    ];
    for (i, (url, extra)) in cases.iter().enumerate() {
        let topic = format!("tls/{i}");
        let mut sub = vec!["-L", url.as_str(), "-t", &topic, "-C", "1", "-q", "1"];
        sub.extend(extra.iter().copied());
        let s = subscribed(&sub);
        let mut p = vec!["-L", url.as_str(), "-t", &topic, "-m", "secret", "-q", "1"];
        p.extend(extra.iter().copied());
        publish(&p);
        let done = s.finish();
        assert_eq!(done.stdout, "secret\n", "{url} {extra:?}: {}", done.stderr);
    }
    // Without the CA the certificate is not trusted: could not run.
    let untrusted = process::run(BIN, &["pub", "-L", &urls[1], "-t", "x", "-m", "y"], None);
    assert_eq!(untrusted.code(), 3, "{}", untrusted.stderr);
    assert!(untrusted.stderr.contains("TLS"), "{}", untrusted.stderr);
    // TLS to the plain listener: a mismatch, said as such.
    let plain = urls[0].replace("mqtt://", "mqtts://");
    let mismatch = process::run(
        BIN,
        &["pub", "-L", &plain, "--insecure", "-t", "x", "-m", "y"],
        None,
    );
    assert_eq!(mismatch.code(), 3, "{}", mismatch.stderr);
    assert!(mismatch.stderr.contains("error: "), "{}", mismatch.stderr);
}

#[test]
fn bad_input_gets_a_clear_message_and_its_exit_status() {
    let free = support::free_port().to_string();
    let unreachable = process::run(BIN, &["pub", "-p", &free, "-t", "x", "-m", "y"], None);
    assert_eq!(unreachable.code(), 3, "{}", unreachable.stderr);
    assert!(
        unreachable
            .stderr
            .contains("cannot connect to mqtt://localhost:"),
        "{}",
        unreachable.stderr
    );
    let unreachable_sub = process::run(BIN, &["sub", "-p", &free, "-t", "x"], None);
    assert_eq!(unreachable_sub.code(), 3, "{}", unreachable_sub.stderr);

    let bad_qos = process::run(BIN, &["pub", "-t", "x", "-m", "y", "-q", "3"], None);
    assert_eq!(bad_qos.code(), 2);
    assert!(
        bad_qos.stderr.contains("`3` is not a QoS"),
        "{}",
        bad_qos.stderr
    );
    let no_message = process::run(BIN, &["pub", "-t", "x"], None);
    assert_eq!(no_message.code(), 2);
    assert!(
        no_message.stderr.contains("no message: give -m"),
        "{}",
        no_message.stderr
    );
    let wildcard = process::run(BIN, &["pub", "-t", "a/#", "-m", "y"], None);
    assert_eq!(wildcard.code(), 2);
    assert!(
        wildcard.stderr.contains("MQTT-3.3.2-2"),
        "{}",
        wildcard.stderr
    );
    let v5_only = process::run(
        BIN,
        &["pub", "-t", "x", "-m", "y", "--content-type", "a"],
        None,
    );
    assert_eq!(v5_only.code(), 2);
    assert!(v5_only.stderr.contains("add -V 5"), "{}", v5_only.stderr);
    let bad_property = process::run(
        BIN,
        &[
            "pub", "-V", "5", "-t", "x", "-m", "y", "-D", "publish", "colour", "red",
        ],
        None,
    );
    assert_eq!(bad_property.code(), 2);
    assert!(
        bad_property.stderr.contains("`colour` is not a property"),
        "{}",
        bad_property.stderr
    );
    let no_topic = process::run(BIN, &["sub"], None);
    assert_eq!(no_topic.code(), 2);

    // A "broker" that accepts and closes at once.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let closer = std::thread::spawn(move || {
        for _ in 0..2 {
            if let Ok((s, _)) = listener.accept() {
                drop(s);
            }
        }
    });
    for cmd in [
        vec!["pub", "-p", &port, "-t", "x", "-m", "y"],
        vec!["sub", "-p", &port, "-t", "x"],
    ] {
        let closed = process::run(BIN, &cmd, None);
        assert_eq!(closed.code(), 1, "{cmd:?}: {}", closed.stderr);
        assert!(
            closed.stderr.contains("the broker closed the connection"),
            "{}",
            closed.stderr
        );
        assert!(
            closed.stderr.contains("before its CONNACK"),
            "{}",
            closed.stderr
        );
    }
    closer.join().unwrap();
}

#[test]
fn a_refused_login_fails_with_the_connack_code() {
    let m = support::mosquitto("allow_anonymous false");
    // mosquitto's own password-less configuration refuses everyone.
    let done = process::run(
        BIN,
        &[
            "pub",
            "-p",
            &port(&m),
            "-V",
            "5",
            "-t",
            "x",
            "-m",
            "y",
            "--trace",
        ],
        None,
    );
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(done.stderr.contains("CONNACK code 0x87"), "{}", done.stderr);
    // The trace shows the refused handshake too.
    let refused =
        "server → client  {\"type\":\"CONNACK\",\"session_present\":false,\"reason_code\":135";
    assert!(done.stderr.contains(refused), "{}", done.stderr);
}

#[test]
fn keep_alive_pings_and_topic_aliases() {
    for (name, b) in brokers() {
        let p = port(&b);
        // Keep alive 1 s and 2.5 s of silence: at least one PINGREQ, answered.
        let idle = process::run(
            BIN,
            &[
                "sub",
                "-p",
                &p,
                "-t",
                "quiet",
                "-k",
                "1",
                "-W",
                "2.5",
                "--trace",
                "--trace-json",
            ],
            None,
        );
        assert_eq!(idle.code(), 0, "{name}: {}", idle.stderr);
        assert!(
            idle.stderr.contains("{\"type\":\"PINGREQ\"}"),
            "{name}: {}",
            idle.stderr
        );
        assert!(
            idle.stderr.contains("{\"type\":\"PINGRESP\"}"),
            "{name}: {}",
            idle.stderr
        );
        // Two messages under one alias: the second goes with an empty topic.
        let topic = format!("alias/{name}");
        let s = subscribed(&["-p", &p, "-V", "5", "-t", &topic, "-C", "2", "-v"]);
        let done = process::run(
            BIN,
            &[
                "pub",
                "-p",
                &p,
                "-V",
                "5",
                "-t",
                &topic,
                "--topic-alias",
                "1",
                "-l",
                "--trace",
                "--trace-json",
            ],
            Some(b"first\nsecond\n"),
        );
        assert_eq!(done.code(), 0, "{name}: {}", done.stderr);
        assert!(
            done.stderr.contains("\"topic\":\"\""),
            "{name}: the second PUBLISH has no topic: {}",
            done.stderr
        );
        let got = s.finish();
        assert_eq!(
            got.stdout,
            format!("{topic} first\n{topic} second\n"),
            "{name}"
        );
    }
}

#[test]
fn the_trace_flags_what_a_broken_broker_does() {
    // A fake broker: CONNACK, then a PUBACK with the wrong packet identifier.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let broker = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf); // CONNECT
        s.write_all(&[0x20, 0x02, 0x00, 0x00]).unwrap();
        let _ = s.read(&mut buf); // PUBLISH, QoS 1, id 1
        s.write_all(&[0x40, 0x02, 0x00, 0x02]).unwrap();
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let done = process::run(
        BIN,
        &[
            "pub",
            "-p",
            &port,
            "-t",
            "x",
            "-m",
            "y",
            "-q",
            "1",
            "--timeout",
            "1s",
            "--trace",
        ],
        None,
    );
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr.contains("!! server broke MQTT-2.3.1-6"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains("sent PUBACK 2 for no QoS 1 PUBLISH in flight"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("timed out waiting for the PUBACK"),
        "{}",
        done.stderr
    );
    broker.join().unwrap();
}

#[test]
fn a_kept_session_receives_what_was_published_while_away() {
    for (name, b) in brokers() {
        let p = port(&b);
        for (v, extra) in [("311", vec![]), ("5", vec!["-x", "60"])] {
            let id = format!("keeper{v}");
            let topic = format!("away/{name}/{v}");
            let mut first = vec![
                "sub", "-p", &p, "-V", v, "-i", &id, "-c", "-q", "1", "-t", &topic, "-W", "0.2",
            ];
            first.extend(extra.iter().copied());
            assert_eq!(process::run(BIN, &first, None).code(), 0, "{name} {v}");
            publish(&[
                "-p",
                &p,
                "-V",
                v,
                "-t",
                &topic,
                "-q",
                "1",
                "-m",
                "while away",
            ]);
            let mut again = vec![
                "sub", "-p", &p, "-V", v, "-i", &id, "-c", "-q", "1", "-t", &topic, "-C", "1",
                "-W", "10",
            ];
            again.extend(extra.iter().copied());
            let done = process::run(BIN, &again, None);
            assert_eq!(
                (done.code(), done.stdout.as_str()),
                (0, "while away\n"),
                "{name} {v}: {}",
                done.stderr
            );
        }
    }
}

#[test]
fn retain_handling_and_retain_as_published() {
    for (name, b) in brokers() {
        let p = port(&b);
        let topic = format!("rh/{name}");
        publish(&["-p", &p, "-V", "5", "-t", &topic, "-r", "-m", "stored"]);
        // Retain Handling 2: no retained message on subscribing.
        let none = process::run(
            BIN,
            &[
                "sub",
                "-p",
                &p,
                "-V",
                "5",
                "-t",
                &topic,
                "--retain-handling",
                "2",
                "-W",
                "0.5",
            ],
            None,
        );
        assert_eq!(
            (none.code(), none.stdout.as_str()),
            (0, ""),
            "{name}: {}",
            none.stderr
        );
        // A live retained message: RETAIN 1 only with Retain As Published.
        for (flag, want) in [
            ("--retain-as-published", "1 live\n"),
            ("(without)", "0 live\n"),
        ] {
            let mut args = vec![
                "-p",
                p.as_str(),
                "-V",
                "5",
                "-t",
                &topic,
                "--retain-handling",
                "2",
                "-C",
                "1",
                "-F",
                "%r %p",
            ];
            if flag == "--retain-as-published" {
                args.push(flag);
            }
            let s = subscribed(&args);
            publish(&["-p", &p, "-V", "5", "-t", &topic, "-r", "-m", "live"]);
            assert_eq!(s.finish().stdout, want, "{name} {flag}");
        }
        publish(&["-p", &p, "-V", "5", "-t", &topic, "-r", "-n"]);
    }
}

#[test]
fn garbage_from_the_broker_is_a_protocol_error_with_its_statement() {
    // A fake broker that answers CONNECT with a CONNACK whose flags are reserved bits.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let broker = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        s.write_all(&[0x2f, 0x02, 0x00, 0x00]).unwrap();
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let done = process::run(BIN, &["sub", "-p", &port, "-t", "x"], None);
    assert_eq!(done.code(), 1, "{}", done.stderr);
    assert!(
        done.stderr
            .contains("the broker sent bytes that do not decode"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("[MQTT-2.2.2-1]"), "{}", done.stderr);
    broker.join().unwrap();
}
