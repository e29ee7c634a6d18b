//! Verdict rules for the choices a scenario leaves a broker and for charging
//! a failure to the statement actually broken, on the in-memory engine
//! (tests/sim): a packet outcome that is a skip, `if_nothing:` statements,
//! and a re-delivery that lacks only its DUP flag.

mod sim;

use bytes::Bytes;
use mqtt_codec::{Packet, Protocol, Publish, QoS};
use mqtt_harness::results::Status;
use sim::{connack, packet, well_behaved, Sim};

const EMPTY_ID_3_1: &str = r#"name: a refused empty client id gets CONNACK 2
statements:
  "3.1": [MQTT-3.1.3-9]
protocols: ["3.1"]
clients:
  c: { connect: false }
steps:
  - c: { send: CONNECT, client_id: "", clean_start: true }
  - c:
      expect_one_of:
        - { expect: CONNACK, code: 0x02 }
        - { close: true }
        - { expect: CONNACK, code: 0, skip: "accepted, which 3.1 allows" }
  - c: { expect_close: true }
"#;

fn answers_connect_with(code: u8) -> impl FnMut(&str, &Packet) -> Vec<mqtt_harness::net::Event> {
    move |_, p| match p {
        Packet::Connect(_) => vec![connack(code)],
        _ => Vec::new(),
    }
}

#[test]
fn a_packet_outcome_with_skip_is_a_skip_only_when_that_packet_comes() {
    let r = Sim::new(answers_connect_with(0)).run(EMPTY_ID_3_1, Protocol::V3_1);
    assert_eq!(r.status, Status::Skip, "{:?}", r.message);
    assert!(r
        .message
        .as_deref()
        .unwrap_or("")
        .contains("accepted, which 3.1 allows"));
    // Another refusal than the one the statement names is still a failure.
    let r = Sim::new(answers_connect_with(5)).run(EMPTY_ID_3_1, Protocol::V3_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-3.1.3-9"]);
}

const QUEUED: &str = r#"name: queued messages arrive in order
statements:
  "3.1.1": [MQTT-4.6.0-6]
clients:
  c: {}
  pub: {}
steps:
  - c: { send: SUBSCRIBE, id: 1, filters: [{ filter: "{topic}/o", qos: 1 }] }
  - c: { expect: SUBACK, id: 1, codes: [1] }
  - pub: { send: PUBLISH, qos: 1, id: 1, topic: "{topic}/o", payload: m1 }
  - pub: { send: PUBLISH, qos: 1, id: 2, topic: "{topic}/o", payload: m2 }
  - if_nothing: [MQTT-3.1.2-5]
    c: { expect: PUBLISH, qos: 1, topic: "{topic}/o", payload: m1 }
  - c: { expect: PUBLISH, qos: 1, topic: "{topic}/o", payload: m2 }
"#;

/// A broker that routes each PUBLISH of `pub` to `c` as it comes: on the
/// n-th, the message `order[n]` names (an index into those sent so far).
fn relaying(order: &'static [usize]) -> Sim {
    let mut sim = Sim::new(well_behaved);
    let mut published: Vec<Publish> = Vec::new();
    sim.relay = Some(Box::new(move |client, p| {
        let (Packet::Publish(m), "pub") = (p, client) else {
            return None;
        };
        published.push(m.clone());
        let i = *order.get(published.len() - 1)?;
        let m = published.get(i)?.clone();
        Some(("c".to_string(), packet(Packet::Publish(m))))
    }));
    sim
}

#[test]
fn nothing_at_all_breaks_the_if_nothing_statement() {
    // The broker acknowledges both PUBLISHes and delivers neither.
    let r = Sim::new(well_behaved).run(QUEUED, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-3.1.2-5"]);
    assert!(!r.passed_statements.contains(&"MQTT-4.6.0-6".to_string()));
}

#[test]
fn a_wrong_order_breaks_the_step_statement_and_a_pass_passes_both() {
    // m1 is relayed when m1 is sent and again when m2 is: the second message
    // `c` sees is m1, not m2 — an order (here: duplicate) failure on step 6.
    let r = relaying(&[0, 0]).run(QUEUED, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-4.6.0-6"]);
    assert_eq!(r.passed_statements, ["MQTT-3.1.2-5"]);

    let r = relaying(&[0, 1]).run(QUEUED, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Pass, "{:?}", r.message);
    assert_eq!(r.passed_statements, ["MQTT-4.6.0-6", "MQTT-3.1.2-5"]);
}

const RESENT: &str = r#"name: an unacknowledged PUBLISH is sent again on reconnect
statements:
  "3.1.1": [MQTT-4.4.0-1]
clients:
  c: {}
steps:
  - c: { send: SUBSCRIBE, id: 1, filters: [{ filter: "a/#", qos: 1 }] }
  - c: { expect: SUBACK, id: 1, codes: [1] }
  - c: { send: PINGREQ }
  - c: { expect: PUBLISH, qos: 1, dup: true, topic: a, payload: x }
"#;

fn resends(
    dup: bool,
    topic: &'static str,
) -> impl FnMut(&str, &Packet) -> Vec<mqtt_harness::net::Event> {
    move |client, p| match p {
        Packet::PingReq => vec![packet(Packet::Publish(Publish {
            dup,
            qos: QoS::AtLeastOnce,
            packet_id: 3,
            topic: topic.into(),
            payload: Bytes::from_static(b"x"),
            ..Default::default()
        }))],
        _ => well_behaved(client, p),
    }
}

#[test]
fn a_redelivery_without_dup_breaks_the_dup_statement() {
    let r = Sim::new(resends(false, "a")).run(RESENT, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-3.3.1-1"]);
    // A PUBLISH that differs elsewhere too is the step's failure.
    let r = Sim::new(resends(false, "a/b")).run(RESENT, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-4.4.0-1"]);
    let r = Sim::new(resends(true, "a")).run(RESENT, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Pass, "{:?}", r.message);
}

const UNSUBSCRIBE_TWO: &str = r#"name: an in-flight QoS 1 message completes after UNSUBSCRIBE
statements:
  "3.1.1": [MQTT-3.10.4-3]
clients:
  c: {}
steps:
  - c: { send: UNSUBSCRIBE, id: 2, filters: [a, b] }
  - statements: [MQTT-3.10.4-4]
    c: { expect: UNSUBACK, id: 2 }
  - c: { send: PINGREQ }
  - c: { expect: PINGRESP }
"#;

#[test]
fn a_second_unsuback_for_one_unsubscribe_breaks_its_own_statement() {
    // One UNSUBACK per filter: the second arrives where the PINGRESP is awaited.
    let mut sim = Sim::new(|client, p| match p {
        Packet::Unsubscribe(u) => u
            .filters
            .iter()
            .map(|_| {
                packet(Packet::UnsubAck(mqtt_codec::UnsubAck {
                    packet_id: u.packet_id,
                    ..Default::default()
                }))
            })
            .collect(),
        _ => well_behaved(client, p),
    });
    let r = sim.run(UNSUBSCRIBE_TWO, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Fail, "{:?}", r.message);
    assert_eq!(r.failed_statements, ["MQTT-3.10.4-6"]);
    // One UNSUBACK passes.
    let r = Sim::new(|client, p| match p {
        Packet::Unsubscribe(u) => vec![packet(Packet::UnsubAck(mqtt_codec::UnsubAck {
            packet_id: u.packet_id,
            ..Default::default()
        }))],
        _ => well_behaved(client, p),
    })
    .run(UNSUBSCRIBE_TWO, Protocol::V3_1_1);
    assert_eq!(r.status, Status::Pass, "{:?}", r.message);
}
