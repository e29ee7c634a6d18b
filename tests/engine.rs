//! The case engine in memory, on a fake clock: no socket, no real time.
//!
//! A [`sim::Sim`] plays the driver and a small fake broker at once. Each
//! test pins one verdict rule: what is a pass, a fail (and which statements it is charged
//! to), a skip or an error.

mod sim;

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol, PubResponse, Publish, QoS, SubAck};
use mqtt_harness::net::Event;
use mqtt_harness::results::Status;
use sim::{connack, packet, well_behaved, Sim};

const KEEP_ALIVE_PING: &str = r#"name: PINGREQ keeps a connection alive; silence then ends it
statements:
  "3.1.1": [MQTT-3.12.4-1, MQTT-3.1.2-24]
  "5.0": [MQTT-3.12.4-1, MQTT-3.1.2-22]
clients:
  c: { keep_alive: 1 }
steps:
  - wait: { seconds: 0.8s, for: "the keep alive" }
  - c: { send: PINGREQ }
  - statements: [MQTT-3.12.4-1]
    c: { expect: PINGRESP, timeout: 1s }
  - statements: { "3.1.1": [MQTT-3.1.2-24], "5.0": [MQTT-3.1.2-22] }
    c: { expect_close: { disconnect: [0x8D] }, timeout: 4s }
"#;

#[test]
fn a_failing_keep_alive_step_fails_only_the_keep_alive_statement() {
    // Every PINGRESP comes, but the broker never closes the silent
    // connection: the close step fails, and with it MQTT-3.1.2-24 alone.
    let real = Instant::now();
    let mut sim = Sim::new(well_behaved);
    let r = sim.run(KEEP_ALIVE_PING, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-3.1.2-24"]);
    assert_eq!(r.passed_statements, ["MQTT-3.12.4-1"]);
    assert_eq!(r.failure.as_ref().map(|f| f.step), Some(4));
    let message = r.message.unwrap_or_default();
    assert!(message.contains("step 4 (line 12)"), "{message}");
    assert!(message.contains("nothing within 4 s"), "{message}");
    // The fake clock ran the 0.8 s wait and the 4 s deadline; no real time passed.
    assert_eq!(r.duration, Duration::from_millis(4800));
    assert!(real.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_profile_declares_how_late_a_keep_alive_sweep_may_close() {
    // The broker closes 4 s after the last PINGREQ (a 5 s sweep): past the
    // scenario's 2 s, within 2 s + the profile's granularity of 5 s.
    let text = KEEP_ALIVE_PING.replace("timeout: 4s", "timeout: 2s");
    let late = |client: &str, p: &Packet| match p {
        Packet::PingReq => vec![packet(Packet::PingResp)],
        _ => well_behaved(client, p),
    };
    let mut sim = Sim::new(late);
    let strict = sim.run(&text, Protocol::V3_1_1);
    assert_eq!(strict.status, Status::Fail, "{:?}", strict.message);
    assert!(strict
        .message
        .unwrap_or_default()
        .contains("nothing within 2 s"));
    let mut sim = Sim::new(late);
    let swept = sim.run_with(
        &text,
        Protocol::V3_1_1,
        Some("name: swept\nkeep_alive: { granularity: 5 }\n"),
    );
    // Nothing ever closes in this fake: the deadline is what moved.
    assert!(swept
        .message
        .unwrap_or_default()
        .contains("nothing within 7 s"));
}

#[test]
fn the_same_case_passes_where_the_broker_closes() {
    let mut sim = Sim::new(move |client, p| match p {
        Packet::PingReq => vec![packet(Packet::PingResp), Event::Closed(None)],
        _ => well_behaved(client, p),
    });
    let r = sim.run(KEEP_ALIVE_PING, Protocol::V5);
    assert_eq!(r.status, Status::Pass, "{:?}", r.message);
    assert_eq!(r.passed_statements, ["MQTT-3.12.4-1", "MQTT-3.1.2-22"]);
    assert!(r.failed_statements.is_empty());
}

#[test]
fn no_pingresp_fails_its_statement_and_leaves_the_close_unjudged() {
    let mut sim = Sim::new(|client, p| match p {
        Packet::PingReq => Vec::new(),
        _ => well_behaved(client, p),
    });
    let r = sim.run(KEEP_ALIVE_PING, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-3.12.4-1"]);
    assert!(r.passed_statements.is_empty(), "{:?}", r.passed_statements);
}

const PING: &str = r#"name: PINGREQ is answered
statements:
  "3.1": [MQTT-3.12.4-1]
  "3.1.1": [MQTT-3.12.4-1]
  "5.0": [MQTT-3.12.4-1]
protocols: ["3.1", "3.1.1", "5.0"]
clients:
  c: {}
steps:
  - c: { send: PINGREQ }
  - c: { expect: PINGRESP }
"#;

#[test]
fn a_refused_version_is_a_skip() {
    let mut sim = Sim::new(|_, p| match p {
        Packet::Connect(c) if c.protocol == Protocol::V5 => vec![connack(0x84)],
        other => well_behaved("", other),
    });
    let r = sim.run(PING, Protocol::V5);
    assert_eq!(r.status, Status::Skip);
    assert_eq!(
        r.message.as_deref(),
        Some("the target does not speak MQTT 5.0: it refused the CONNECT with CONNACK 0x84")
    );
    // No verdict on any statement.
    assert!(r.failed_statements.is_empty() && r.passed_statements.is_empty());
}

#[test]
fn a_close_on_one_version_while_another_is_answered_is_a_skip() {
    let mut sim = Sim::new(|_, p| match p {
        Packet::Connect(c) if c.protocol == Protocol::V3_1 => vec![Event::Closed(None)],
        other => well_behaved("", other),
    });
    let r = sim.run(PING, Protocol::V3_1);
    assert_eq!(r.status, Status::Skip, "{:?}", r.message);
    assert!(
        r.message
            .as_deref()
            .unwrap_or("")
            .contains("answers an MQTT 3.1.1 CONNECT"),
        "{:?}",
        r.message
    );
    // The probe was a connection of its own.
    assert_eq!(sim.opened, ["c", "#probe1", "#probe2"]);
}

#[test]
fn a_target_that_answers_nothing_is_an_error_not_a_failure() {
    let mut sim = Sim::new(|_, _| Vec::new());
    let r = sim.run(PING, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Error, "{:?}", r.message);
    assert!(
        r.message
            .as_deref()
            .unwrap_or("")
            .contains("could not connect"),
        "{:?}",
        r.message
    );
}

#[test]
fn silence_after_a_successful_connect_is_a_failure() {
    let mut sim = Sim::new(|client, p| match p {
        Packet::PingReq => Vec::new(),
        _ => well_behaved(client, p),
    });
    let r = sim.run(PING, Protocol::V5);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(
        r.message.as_deref(),
        Some("step 2 (line 11): expected PINGRESP; got nothing within 5 s")
    );
}

const CAPTURE: &str = r#"name: a captured packet identifier is used in the answer
statements:
  "5.0": [MQTT-4.3.2-4]
clients:
  sub: {}
  pub: {}
steps:
  - sub: { send: SUBSCRIBE, id: 1, filters: [{ filter: "{topic}", qos: 1 }] }
  - sub: { expect: SUBACK, id: 1, codes: [1] }
  - pub: { send: PUBLISH, qos: 1, id: 9, topic: "{topic}", payload: hi }
  - sub: { expect_unordered: [{ expect: PUBLISH, qos: 1, id: $m, payload: hi }] }
  - sub: { send: PUBACK, id: $m }
  - pub: { expect: PUBACK, id: 9, reason_code: { not: 0x10 } }
"#;

#[test]
fn captures_carry_a_value_from_an_expect_to_a_send() {
    let mut sim = Sim::new(well_behaved);
    // The broker delivers the publisher's message to the subscriber, with
    // a packet identifier of its own choosing.
    sim.relay = Some(Box::new(|client, p| match (client, p) {
        ("pub", Packet::Publish(p)) => Some((
            "sub".to_string(),
            packet(Packet::Publish(Publish {
                packet_id: 42,
                ..p.clone()
            })),
        )),
        _ => None,
    }));
    let r = sim.run(CAPTURE, Protocol::V5);
    assert_eq!(r.status, Status::Pass, "{:?}", r.message);
    let acked: Vec<u16> = sim
        .sent
        .iter()
        .filter_map(|(c, p)| match (c.as_str(), p) {
            ("sub", Packet::PubAck(a)) => Some(a.packet_id),
            _ => None,
        })
        .collect();
    assert_eq!(acked, [42], "the PUBACK carries the captured id");
}

#[test]
fn a_wrong_field_names_the_field() {
    let mut sim = Sim::new(|client, p| match p {
        Packet::Subscribe(s) => vec![packet(Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            reason_codes: vec![0],
            ..Default::default()
        }))],
        _ => well_behaved(client, p),
    });
    let r = sim.run(CAPTURE, Protocol::V5);
    assert_eq!(r.status, Status::Fail);
    let message = r.message.unwrap_or_default();
    assert!(message.contains("`codes` is [0], not [1]"), "{message}");
    assert_eq!(r.failed_statements, ["MQTT-4.3.2-4"]);
}

const CLOSES: &str = r#"name: a CONNECT with Will QoS 3 closes the connection
statements:
  "3.1.1": [MQTT-3.1.2-14]
  "5.0": [MQTT-3.1.2-12]
clients:
  c: { connect: false }
steps:
  - c: { send: CONNECT, will: { topic: "{topic}/w", payload: x }, raw: { connect_flags: "1e" } }
  - c: { expect_close: true }
"#;

#[test]
fn a_close_under_a_version_the_target_does_not_speak_is_no_pass() {
    // A 3.1.1-only broker closes every 5.0 CONNECT: the close the scenario
    // expects proves nothing under 5.0.
    let mut sim = Sim::new(|_, p| match p {
        Packet::Connect(c) if c.protocol == Protocol::V5 => vec![Event::Closed(None)],
        other => well_behaved("", other),
    });
    let r = sim.run(CLOSES, Protocol::V5);
    assert_eq!(r.status, Status::Skip, "{:?}", r.message);
    assert!(
        r.message
            .as_deref()
            .unwrap_or("")
            .contains("does not speak MQTT 5.0"),
        "{:?}",
        r.message
    );
    // Where it speaks the version, the close is a pass.
    let mut sim = Sim::new(|_, p| match p {
        Packet::Connect(c) if c.will.is_some() => vec![Event::Closed(None)],
        other => well_behaved("", other),
    });
    let r = sim.run(CLOSES, Protocol::V5);
    assert_eq!(r.status, Status::Pass, "{:?}", r.message);
}

const AUTH_METHOD: &str = r#"name: an unknown authentication method is refused
statements:
  "5.0": [MQTT-4.12.0-1, MQTT-3.2.2-6]
clients:
  c: { connect: false }
steps:
  - c: { send: CONNECT, properties: [{ name: authentication_method, value: "X-{case}" }] }
  - statements: [MQTT-3.2.2-6]
    c:
      expect_one_of:
        - { expect: CONNACK, code: 0x8C, session_present: false }
        - { close: true }
  - statements: [MQTT-4.12.0-1]
    c: { expect_close: true }
"#;

#[test]
fn a_close_on_a_connect_the_target_cannot_serve_is_not_a_version_it_lacks() {
    // It closes on the unknown method, and accepts a plain 5.0 CONNECT.
    let mut sim = Sim::new(|_, p| match p {
        Packet::Connect(c) if c.properties.authentication_method().is_some() => {
            vec![Event::Closed(None)]
        }
        other => well_behaved("", other),
    });
    let r = sim.run(AUTH_METHOD, Protocol::V5);
    assert_eq!(r.status, Status::Pass, "{:?}", r.message);
}

const SUBSCRIBER: &str = r#"name: a subscriber gets its message
statements:
  "3.1.1": [MQTT-3.3.4-1]
clients:
  sub: {}
steps:
  - sub: { send: SUBSCRIBE, id: 1, filters: [{ filter: "{topic}/a", qos: 0 }] }
  - sub: { expect: SUBACK, id: 1 }
  - sub: { send: PINGREQ }
  - sub: { expect: PINGRESP }
"#;

#[test]
fn a_publish_on_no_subscription_is_charged_to_its_own_statement() {
    // The broker delivers another client's retained message, on a topic this
    // client never subscribed to, before the PINGRESP.
    let mut sim = Sim::new(|client, p| match p {
        Packet::PingReq => vec![
            packet(Packet::Publish(Publish {
                topic: "elsewhere/x".into(),
                retain: true,
                ..Default::default()
            })),
            packet(Packet::PingResp),
        ],
        _ => well_behaved(client, p),
    });
    let r = sim.run(SUBSCRIBER, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-3.3.2-3"]);
    assert_eq!(r.statements, ["MQTT-3.3.2-3"]);
    assert!(
        r.message
            .as_deref()
            .unwrap_or("")
            .contains("matches none of client `sub`'s subscriptions"),
        "{:?}",
        r.message
    );
}

#[test]
fn bytes_that_do_not_decode_are_charged_to_the_statement_they_break() {
    // A DISCONNECT as the close outcome allows, then a stray byte.
    let mut sim = Sim::new(|client, p| match p {
        Packet::PingReq => {
            let e = mqtt_codec::decode_bytes(
                &Bytes::from_static(&[0x00, 0x00]),
                &mqtt_codec::DecodeOptions::new(Protocol::V5, mqtt_codec::Sender::Server),
            )
            .expect_err("type 0 is reserved");
            vec![Event::Malformed(e, Bytes::from_static(&[0x00]))]
        }
        _ => well_behaved(client, p),
    });
    let r = sim.run(SUBSCRIBER.replace("3.1.1", "5.0").as_str(), Protocol::V5);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    // Type 0 is reserved, but no statement says so: the case fails, and no
    // statement of the step that met the byte is charged with it.
    assert!(r.failed_statements.is_empty(), "{:?}", r.failed_statements);
    assert!(r.statements.is_empty(), "{:?}", r.statements);
    let message = r.message.unwrap_or_default();
    assert!(message.contains("packet type 0 is reserved"), "{message}");
}

const QOS2: &str = r#"name: QoS 2 is acknowledged with PUBREC
statements:
  "3.1.1": [MQTT-4.3.3-2]
clients:
  c: {}
steps:
  - c: { send: PUBLISH, qos: 2, id: 3, topic: "{topic}", payload: x }
  - c: { expect: PUBREC, id: 3 }
"#;

#[test]
fn a_puback_to_qos_2_under_3_1_1_means_no_qos_2() {
    let mut sim = Sim::new(|client, p| match p {
        Packet::Publish(p) => vec![packet(Packet::PubAck(PubResponse::new(p.packet_id)))],
        _ => well_behaved(client, p),
    });
    let r = sim.run(QOS2, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Skip, "{:?}", r.message);
    assert!(r
        .message
        .as_deref()
        .unwrap_or("")
        .starts_with("requires qos2"));
}

#[test]
fn a_case_that_fails_clears_the_retained_messages_it_left() {
    let text = r#"name: a retained message
statements:
  "3.1.1": [MQTT-3.3.1-5]
clients:
  c: {}
steps:
  - c: { send: PUBLISH, retain: true, topic: "{topic}/r", payload: kept }
  - c: { send: PINGREQ }
  - c: { expect: PINGRESP }
  - c: { send: PUBLISH, retain: true, topic: "{topic}/r", payload: "" }
"#;
    let mut sim = Sim::new(|client, p| match p {
        Packet::PingReq => Vec::new(),
        _ => well_behaved(client, p),
    });
    let r = sim.run(text, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    let cleared: Vec<&Packet> = sim
        .sent
        .iter()
        .filter(|(c, _)| c == "#cleanup")
        .map(|(_, p)| p)
        .collect();
    assert!(
        matches!(cleared.get(1), Some(Packet::Publish(p)) if p.retain && p.payload.is_empty() && p.topic.ends_with("/r")),
        "{cleared:?}"
    );
}

/// A broker that keeps retained messages, and sends the retained message
/// of a new subscription *before* its SUBACK, as 3.8.4 allows.
fn retained_first() -> impl FnMut(&str, &Packet) -> Vec<Event> {
    let mut stored: Vec<Publish> = Vec::new();
    move |client, p| match p {
        Packet::Publish(pubd) if pubd.retain => {
            stored.retain(|s| s.topic != pubd.topic);
            if !pubd.payload.is_empty() {
                stored.push(pubd.clone());
            }
            well_behaved(client, p)
        }
        Packet::Subscribe(s) => {
            let mut out: Vec<Event> = stored
                .iter()
                .filter(|r| {
                    s.filters
                        .iter()
                        .any(|f| mqtt_codec::topic::matches(&f.filter, &r.topic))
                })
                .map(|r| {
                    packet(Packet::Publish(Publish {
                        qos: QoS::AtMostOnce,
                        ..r.clone()
                    }))
                })
                .collect();
            out.extend(well_behaved(client, p));
            out
        }
        _ => well_behaved(client, p),
    }
}

#[test]
fn a_retained_message_before_the_suback_passes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/shared/3.3-publish/retained-outlives-session.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the library scenario");
    for protocol in [Protocol::V3_1_1, Protocol::V5] {
        let mut sim = Sim::new(retained_first());
        let r = sim.run(&text, protocol);
        assert_eq!(r.status, Status::Pass, "{protocol}: {:?}", r.message);
    }
}

#[test]
fn a_stray_byte_after_an_allowed_disconnect_is_no_failure_of_the_step_statements() {
    // rumqttd 0.20 answers with a correct DISCONNECT, then a lone 00 byte.
    let text = r#"name: topic alias 0 is refused
statements:
  "5.0": [MQTT-3.3.2-8]
clients:
  c: {}
steps:
  - c: { send: PUBLISH, topic: "{topic}", payload: x, properties: [{ name: topic_alias, value: 0 }] }
  - c: { expect_close: { disconnect: [0x94, 0x82] } }
"#;
    let mut sim = Sim::new(|client, p| match p {
        Packet::Publish(_) => {
            let disconnect = Packet::Disconnect(mqtt_codec::Disconnect {
                reason_code: 0x94,
                ..Default::default()
            });
            let e = mqtt_codec::decode_bytes(
                &Bytes::from_static(&[0x00]),
                &mqtt_codec::DecodeOptions::new(Protocol::V5, mqtt_codec::Sender::Server),
            )
            .err();
            let mut out = vec![packet(disconnect)];
            out.extend(e.map(|e| Event::Malformed(e, Bytes::from_static(&[0x00]))));
            out
        }
        _ => well_behaved(client, p),
    });
    let r = sim.run(text, Protocol::V5);
    // The broker did send bytes that are no packet: a failure, charged to no
    // statement of the step (its DISCONNECT 0x94 was what the step wanted).
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert!(!r.failed_statements.contains(&"MQTT-3.3.2-8".to_string()));
}

#[test]
fn a_skip_outcome_ends_the_case_as_a_skip_when_nothing_else_comes() {
    let text = r#"name: a $ message, if the broker takes it
statements:
  "3.1.1": [MQTT-4.7.2-1]
clients:
  c: {}
steps:
  - c: { send: SUBSCRIBE, id: 1, filters: [{ filter: "$h/{case}", qos: 0 }] }
  - c:
      expect_one_of:
        - { expect: SUBACK, id: 1, codes: [0] }
        - { skip: "no $ subscriptions here" }
"#;
    // A broker that refuses the $ filter: the case does not apply.
    let mut sim = Sim::new(|client, p| match p {
        Packet::Subscribe(s) => vec![packet(Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            reason_codes: vec![0x80],
            ..Default::default()
        }))],
        _ => well_behaved(client, p),
    });
    let r = sim.run(text, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Skip, "{:?}", r.message);
    assert_eq!(r.message.as_deref(), Some("no $ subscriptions here"));
    // One that grants it: a pass.
    let mut sim = Sim::new(well_behaved);
    assert_eq!(sim.run(text, Protocol::V3_1_1).status, Status::Pass);
}
