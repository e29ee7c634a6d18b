//! The parser's tests: what it accepts, and where its errors point.

use super::*;
use mqtt_codec::{PacketType, Protocol};
use serde_json::Value;
use std::time::Duration;

const PING: &str = "name: ping
statements:
  \"3.1.1\": [MQTT-3.12.4-1]
  \"5.0\": [MQTT-3.12.4-1]
clients:
  c: {}
steps:
  - c: { send: PINGREQ }
  - c: { expect: PINGRESP, timeout: 2s }
  - c: disconnect
";

#[test]
fn parses_a_scenario() {
    let s = parse_scenario("ping.yaml", PING).unwrap();
    assert_eq!(s.protocols, vec![Protocol::V3_1_1, Protocol::V5]);
    assert_eq!(s.steps.len(), 3);
    assert_eq!(s.steps[1].pos, Some(Pos { line: 9, column: 3 }));
    assert!(
        matches!(&s.steps[1].action, Action::Expect { matcher, timeout: Some(_), .. } if matcher.ty == PacketType::PingResp)
    );
}

#[test]
fn unknown_top_level_key() {
    let text = PING.replace("clients:", "clientz: 1\nclients:");
    let e = parse_scenario("x.yaml", &text).unwrap_err();
    assert_eq!(e.pos, Some(Pos { line: 5, column: 1 }), "{e}");
    assert!(e.message.contains("unknown field `clientz`"), "{e}");
}

#[test]
fn unknown_statement() {
    let text = PING.replace(
        "\"5.0\": [MQTT-3.12.4-1]",
        concat!("\"5.0\": [MQTT", "-3.12.4-9]"),
    );
    let e = parse_scenario("x.yaml", &text).unwrap_err();
    assert_eq!(e.pos.map(|p| p.line), Some(4), "{e}");
    assert!(e.message.contains("not a statement of MQTT 5.0"), "{e}");
}

#[test]
fn unknown_client() {
    let text = PING.replace("  - c: { send: PINGREQ }", "  - d: { send: PINGREQ }");
    let e = parse_scenario("x.yaml", &text).unwrap_err();
    assert_eq!(e.pos, Some(Pos { line: 8, column: 5 }), "{e}");
    assert!(e.message.contains("client `d`"), "{e}");
}

#[test]
fn unknown_expect_field() {
    let text = PING.replace(
        "{ expect: PINGRESP, timeout: 2s }",
        "{ expect: PINGRESP, qos: 1 }",
    );
    let e = parse_scenario("x.yaml", &text).unwrap_err();
    assert_eq!(e.pos.map(|p| p.line), Some(9), "{e}");
    assert!(e.message.contains("unknown field `qos`"), "{e}");
}

#[test]
fn no_properties_names_are_checked() {
    let ok = PING.replace(
        "{ expect: PINGRESP, timeout: 2s }",
        "{ expect: DISCONNECT, no_properties: [session_expiry_interval] }",
    );
    parse_scenario("x.yaml", &ok).expect("a known property");
    let typo = PING.replace(
        "{ expect: PINGRESP, timeout: 2s }",
        "{ expect: DISCONNECT, no_properties: [sesion_expiry_interval] }",
    );
    let e = parse_scenario("x.yaml", &typo).unwrap_err();
    assert_eq!(e.pos.map(|p| p.line), Some(9), "{e}");
    assert!(
        e.message.contains("did you mean `session_expiry_interval`"),
        "{e}"
    );
    // Only where the packet has properties.
    let none = PING.replace(
        "{ expect: PINGRESP, timeout: 2s }",
        "{ expect: PINGRESP, no_properties: [reason_string] }",
    );
    let e = parse_scenario("x.yaml", &none).unwrap_err();
    assert!(e.message.contains("unknown field `no_properties`"), "{e}");
}

#[test]
fn unknown_packet_type() {
    let text = PING.replace("send: PINGREQ", "send: PINGREK");
    let e = parse_scenario("x.yaml", &text).unwrap_err();
    assert!(e.message.contains("did you mean `PINGREQ`"), "{e}");
    assert_eq!(e.pos.map(|p| p.line), Some(8), "{e}");
}

#[test]
fn wait_statements_count_as_checked() {
    let text = PING.replace(
        "  - c: disconnect\n",
        "  - wait: { seconds: 10ms, for: \"keep alive\", statements: [MQTT-3.1.2-24, MQTT-3.12.4-1] }\n  - c: disconnect\n",
    );
    let s = parse_scenario("x.yaml", &text).unwrap();
    assert_eq!(
        s.checked_statements(Protocol::V5),
        ["MQTT-3.12.4-1", "MQTT-3.1.2-24"]
    );
    assert_eq!(s.statements_for(Protocol::V5), ["MQTT-3.12.4-1"]);
    // A wait step `only` for 5.0 adds nothing under 3.1.1.
    let only = text.replace("- wait: {", "- only: \"5.0\"\n    wait: {");
    let s = parse_scenario("x.yaml", &only).unwrap();
    assert_eq!(s.checked_statements(Protocol::V3_1_1), ["MQTT-3.12.4-1"]);
    assert_eq!(s.checked_statements(Protocol::V5).len(), 2);
}

#[test]
fn steps_name_their_own_statements() {
    let text = PING.replace(
        "  - c: { expect: PINGRESP, timeout: 2s }\n",
        "  - statements: [MQTT-3.12.4-1]\n    c: { expect: PINGRESP, timeout: 2s }\n  - statements: {\"3.1.1\": [MQTT-3.1.2-24], \"5.0\": [MQTT-3.1.2-22]}\n    c: { expect_silence: 10ms }\n",
    );
    let s = parse_scenario("x.yaml", &text).unwrap();
    assert_eq!(s.steps[0].own_statements(Protocol::V5), None);
    assert_eq!(
        s.steps[1].own_statements(Protocol::V3_1_1),
        Some(&["MQTT-3.12.4-1".to_string()][..])
    );
    assert_eq!(
        s.steps[2].own_statements(Protocol::V5),
        Some(&["MQTT-3.1.2-22".to_string()][..])
    );
    assert_eq!(
        s.checked_statements(Protocol::V3_1_1),
        ["MQTT-3.12.4-1", "MQTT-3.1.2-24"]
    );
    // An id no version of the scenario knows, at its place.
    // (Ids that are not in the catalogue are spelt in two pieces, so that
    // the codec's test of every id cited in the repository passes over them.)
    let bad = text.replace(
        "[MQTT-3.12.4-1]\n    c:",
        concat!("[MQTT", "-3.12.4-9]\n    c:"),
    );
    let e = parse_scenario("x.yaml", &bad).unwrap_err();
    assert_eq!(
        e.pos,
        Some(Pos {
            line: 9,
            column: 18
        }),
        "{e}"
    );
    assert!(e.message.contains("not a statement of"), "{e}");
    // Per version, checked against that version's catalogue.
    let wrong = text.replace(
        "\"5.0\": [MQTT-3.1.2-22]",
        concat!("\"5.0\": [MQTT", "-3.1.2-99]"),
    );
    let e = parse_scenario("x.yaml", &wrong).unwrap_err();
    assert!(e.message.contains("not a statement of MQTT 5.0"), "{e}");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("300ms"), Some(Duration::from_millis(300)));
    assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
    assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
    assert_eq!(parse_duration("soon"), None);
}

fn err_at(text: &str) -> (Option<(usize, usize)>, String) {
    let e = parse_scenario("x.yaml", text).expect_err("the scenario has an error");
    (e.pos.map(|p| (p.line, p.column)), e.to_string())
}

fn with_step(step: &str) -> String {
    PING.replace("  - c: { send: PINGREQ }", step)
}

#[test]
fn a_send_value_is_refused_where_it_is_written() {
    let (at, e) = err_at(&with_step("  - c: { send: PUBLISH, topic: a, qos: 7 }"));
    assert_eq!(at, Some((8, 40)), "{e}");
    assert!(e.contains("qos 7 is not 0, 1 or 2"), "{e}");

    // On a line of its own, in block style.
    let (at, e) = err_at(&with_step(
        "  - c:\n      send: PUBLISH\n      topic: a\n      qos: 7",
    ));
    assert_eq!(at, Some((11, 12)), "{e}");

    // A key the type does not have: at the key.
    let (at, e) = err_at(&with_step("  - c: { send: PUBACK, id: 1, topc: a }"));
    assert_eq!(at, Some((8, 31)), "{e}");
    assert!(e.contains("unknown field `topc`"), "{e}");
}

#[test]
fn send_takes_what_encode_takes() {
    // `reason` (what decode --json prints beside the code) is accepted, and
    // must agree with the code.
    let v5 = PING.replace("  \"3.1.1\": [MQTT-3.12.4-1]\n", "");
    let ok = v5.replace(
        "  - c: { send: PINGREQ }",
        "  - c: { send: PUBACK, id: 1, reason: Unspecified error }",
    );
    let s = parse_scenario("x.yaml", &ok).unwrap_or_else(|e| panic!("{e}"));
    let Action::Send { packet, .. } = &s.steps[0].action else {
        panic!("{:?}", s.steps[0].action)
    };
    assert_eq!(
        packet.get("reason").and_then(Value::as_str),
        Some("Unspecified error")
    );
    let bad = ok.replace(
        "reason: Unspecified error",
        "code: 0, reason: Unspecified error",
    );
    let (_, e) = err_at(&bad);
    assert!(e.contains("disagree"), "{e}");
}

#[test]
fn send_fields_exist_in_every_version_of_the_step() {
    // The scenario runs under 3.1.1 and 5.0; a reason code is 5.0's.
    let (at, e) = err_at(&with_step("  - c: { send: PUBACK, id: 1, code: 0x80 }"));
    assert_eq!(at, Some((8, 31)), "{e}");
    assert!(e.contains("exists only in MQTT 5.0, not in 3.1.1"), "{e}");
    assert!(e.contains("only: \"5.0\""), "{e}");
    // With `only`, written before or after the client.
    for step in [
        "  - only: \"5.0\"\n    c: { send: PUBACK, id: 1, code: 0x80 }",
        "  - c: { send: PUBACK, id: 1, code: 0x80 }\n    only: \"5.0\"",
    ] {
        parse_scenario("x.yaml", &with_step(step)).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn captures_stand_for_any_value_in_a_send() {
    let text = with_step(
        "  - c: { send: PUBLISH, topic: \"{topic}\", qos: $q, id: $m, retain: $r, payload: $p }",
    );
    let s = parse_scenario("x.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let Action::Send { packet, .. } = &s.steps[0].action else {
        panic!("{:?}", s.steps[0].action)
    };
    assert_eq!(packet.get("qos").and_then(Value::as_str), Some("$q"));
    assert_eq!(packet.get("topic").and_then(Value::as_str), Some("{topic}"));
    // What does not depend on a capture is still checked.
    let (_, e) = err_at(&with_step(
        "  - c: { send: PUBLISH, topic: a, qos: 0, id: $m }",
    ));
    assert!(e.contains("`id` has no place in a QoS 0 PUBLISH"), "{e}");
}

#[test]
fn an_unknown_action_is_an_error() {
    let (at, e) = err_at(&with_step("  - c: { snd: PINGREQ }"));
    assert_eq!(at, Some((8, 10)), "{e}");
    assert!(
        e.contains("unknown action `snd` (did you mean `send`?)"),
        "{e}"
    );
    let (_, e) = err_at(&with_step("  - c: frobnicate"));
    assert!(e.contains("unknown action `frobnicate`"), "{e}");
}

#[test]
fn client_settings_are_checked_where_they_are_written() {
    let (at, e) = err_at(&PING.replace("  c: {}", "  c: { keep_alive: soon }"));
    assert_eq!(at, Some((6, 20)), "{e}");
    assert!(e.contains("keep_alive"), "{e}");
    let (at, e) = err_at(&PING.replace("  c: {}", "  c: {}\n  c: {}"));
    assert_eq!(at, Some((7, 3)), "the second declaration: {e}");
    assert!(e.contains("client `c` is declared twice"), "{e}");
    let (at, e) = err_at(&PING.replace("  c: {}", "  c: { protocol: \"5.0\" }"));
    assert_eq!(at, Some((6, 8)), "{e}");
    assert!(e.contains("`protocol` cannot be given in a client"), "{e}");
}

#[test]
fn only_and_protocols_are_checked_at_the_version() {
    let (at, e) = err_at(&with_step(
        "  - only: [\"5.0\", \"3.1\"]\n    c: { send: PINGREQ }",
    ));
    assert_eq!(at, Some((8, 19)), "at the quote of \"3.1\": {e}");
    assert!(e.contains("step 1 is `only` for MQTT 3.1"), "{e}");
    let v5 = PING.replace("  \"3.1.1\": [MQTT-3.12.4-1]\n", "");
    let (at, e) = err_at(&v5.replace("clients:", "protocols: [\"5.0\", \"3.1.1\"]\nclients:"));
    assert_eq!(at, Some((4, 20)), "{e}");
    assert!(
        e.contains("runs under MQTT 3.1.1 but lists no statements"),
        "{e}"
    );
}

#[test]
fn errors_render_with_the_line_and_a_caret() {
    let text = with_step("  - c: { send: PUBLISH, topic: a, qos: 7 }");
    let e = parse_scenario("x.yaml", &text).expect_err("qos 7");
    let shown = e.render(Some(&text));
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[0].starts_with("x.yaml:8:40: "), "{shown}");
    assert_eq!(lines[1], "  --> x.yaml:8:40");
    assert_eq!(lines[3], " 8 |   - c: { send: PUBLISH, topic: a, qos: 7 }");
    assert_eq!(lines[4], format!("   | {}^", " ".repeat(39)));
}
