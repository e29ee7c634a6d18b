//! The `mqtt-harness` binary as users and tools call it: `decode` (its
//! `--json` lines are a contract other tools rely on), `encode` and `explain`.
//! Outputs are compared exactly where practical.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");

/// 3.1.1 CONNECT, client id "test", clean session, keep alive 60.
const CONNECT_311: &str = "101000044d5154540402003c000474657374";
/// 5.0 CONNECT, client id "test", clean start, keep alive 60, no properties.
const CONNECT_5: &str = "101100044d5154540502003c00000474657374";
/// PUBLISH QoS 0 to a/b with payload "hi" (3.1.1 layout).
const PUBLISH_311: &str = "30070003612f626869";
/// PUBLISH QoS 1, id 7, to a/b, User Property k=v, payload "hi" (5.0 layout).
const PUBLISH_5: &str = "32110003612f620007072600016b0001766869";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mqtt-harness binary runs");
    {
        let mut input = child.stdin.take().expect("stdin is piped");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("stdin is writable");
        }
    }
    let out = child.wait_with_output().expect("the binary finishes");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn decode_json(protocol: &str, hex: &str) -> Output {
    run(&["decode", "--protocol", protocol, "--json", hex], None)
}

/// A file in a directory of its own under the system temp dir.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mqtt-harness-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("temp file");
    path
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

// ---------------------------------------------------------------------------
// decode --json
// ---------------------------------------------------------------------------

#[test]
fn decode_valid_stream_311() {
    let out = decode_json("3.1.1", &format!("{CONNECT_311} {PUBLISH_311}"));
    assert_eq!(
        out.stdout,
        concat!(
            r#"{"verdict":"valid","packet":{"type":"CONNECT","protocol":"3.1.1","clean_start":true,"keep_alive":60,"client_id":"test"}}"#,
            "\n",
            r#"{"verdict":"valid","packet":{"type":"PUBLISH","dup":false,"qos":0,"retain":false,"topic":"a/b","payload":"hi"}}"#,
            "\n"
        )
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
}

#[test]
fn decode_valid_stream_5() {
    let out = decode_json("5.0", &format!("{CONNECT_5}{PUBLISH_5}"));
    assert_eq!(
        out.stdout,
        concat!(
            r#"{"verdict":"valid","packet":{"type":"CONNECT","protocol":"5.0","clean_start":true,"keep_alive":60,"properties":[],"client_id":"test"}}"#,
            "\n",
            r#"{"verdict":"valid","packet":{"type":"PUBLISH","dup":false,"qos":1,"retain":false,"topic":"a/b","id":7,"properties":[{"name":"user_property","value":["k","v"]}],"payload":"hi"}}"#,
            "\n"
        )
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn decode_accepts_separators_prefixes_and_stdin() {
    let spaced = "0x30 0x07 00:03:61:2f:62, 68 69";
    let out = run(&["decode", "--protocol", "3.1.1", "--json", spaced], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let from_stdin = run(
        &["decode", "--protocol", "3.1.1", "--json", "-"],
        Some("30 07 00 03\n61 2f 62 68 69\n"),
    );
    assert_eq!(from_stdin.code, 0, "{}", from_stdin.stderr);
    assert_eq!(from_stdin.stdout, out.stdout);
    assert_eq!(
        out.stdout,
        "{\"verdict\":\"valid\",\"packet\":{\"type\":\"PUBLISH\",\"dup\":false,\"qos\":0,\"retain\":false,\"topic\":\"a/b\",\"payload\":\"hi\"}}\n"
    );
}

#[test]
fn decode_malformed_publish_qos3() {
    // After an 18-byte CONNECT, a PUBLISH with both QoS bits set: offset 18.
    let out = decode_json("3.1.1", &format!("{CONNECT_311} 36070003612f626869"));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(
        lines[1],
        r#"{"verdict":"malformed","statement":"MQTT-3.3.1-4","reason_code":null,"offset":18,"message":"PUBLISH with QoS 3 (both QoS bits set)"}"#
    );
    assert_eq!(out.code, 1);

    // 5.0 names the same rule with a reason code; the CONNECT is 19 bytes.
    let out = decode_json("5.0", &format!("{CONNECT_5} 3603000161"));
    assert_eq!(
        out.stdout.lines().last(),
        Some(
            r#"{"verdict":"malformed","statement":"MQTT-3.3.1-4","reason_code":129,"offset":19,"message":"PUBLISH with QoS 3 (both QoS bits set)"}"#
        )
    );
    assert_eq!(out.code, 1);
}

#[test]
fn decode_malformed_inside_a_packet() {
    // A 5.0 PUBLISH whose topic is not UTF-8: the offset is that of the bad byte.
    let out = decode_json("5.0", "3006000361ff6200");
    assert_eq!(
        out.stdout,
        "{\"verdict\":\"malformed\",\"statement\":\"MQTT-1.5.4-1\",\"reason_code\":129,\"offset\":5,\"message\":\"topic: not well-formed UTF-8\"}\n"
    );
    assert_eq!(out.code, 1);
}

#[test]
fn decode_protocol_error_connack_from_client() {
    let out = decode_json("5.0", "20020000");
    assert_eq!(
        out.stdout,
        "{\"verdict\":\"protocol_error\",\"statement\":null,\"reason_code\":130,\"offset\":0,\"message\":\"a client may not send CONNACK\"}\n"
    );
    assert_eq!(out.code, 1);

    let out = decode_json("3.1.1", "20020000");
    assert_eq!(
        out.stdout,
        "{\"verdict\":\"protocol_error\",\"statement\":null,\"reason_code\":null,\"offset\":0,\"message\":\"a client may not send CONNACK\"}\n"
    );

    // From a server, a CONNACK is valid (in 5.0 with its property length).
    let out = run(
        &[
            "decode",
            "--protocol",
            "5.0",
            "--from",
            "server",
            "--json",
            "2003000000",
        ],
        None,
    );
    assert_eq!(
        out.stdout,
        "{\"verdict\":\"valid\",\"packet\":{\"type\":\"CONNACK\",\"session_present\":false,\"reason_code\":0,\"reason\":\"Success\",\"properties\":[]}}\n"
    );
    assert_eq!(out.code, 0);
}

#[test]
fn decode_incomplete() {
    // The PUBLISH announces 7 bytes after its 2-byte header; 3 are there.
    let out = decode_json("3.1.1", &format!("{CONNECT_311} 3007000361"));
    assert_eq!(
        out.stdout.lines().last(),
        Some(r#"{"verdict":"incomplete","needed":4}"#)
    );
    assert_eq!(out.stdout.lines().count(), 2);
    assert_eq!(out.code, 1);
}

#[test]
fn decode_max_packet_size() {
    let out = run(
        &[
            "decode",
            "--protocol",
            "5.0",
            "--json",
            "--max-packet-size",
            "8",
            PUBLISH_5,
        ],
        None,
    );
    assert_eq!(
        out.stdout,
        "{\"verdict\":\"protocol_error\",\"statement\":\"MQTT-3.2.2-15\",\"reason_code\":149,\"offset\":1,\"message\":\"packet of 19 bytes exceeds the maximum packet size of 8\"}\n"
    );
    assert_eq!(out.code, 1);
}

#[test]
fn decode_usage_errors_exit_2() {
    let out = run(&["decode", "--protocol", "3.1.1", "30 0g"], None);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with(
            "error: bad hex input: 'g' at character 5 is not a hex digit (0-9, a-f) or a separator (space, ':' or ',')\n  30 0g\n      ^\n"
        ),
        "{}",
        out.stderr
    );

    let odd = run(&["decode", "--protocol", "3.1.1", "300"], None);
    assert_eq!(odd.code, 2);
    assert!(odd.stderr.contains("has 3 hex digit(s)"), "{}", odd.stderr);

    let no_protocol = run(&["decode", "--json", "c000"], None);
    assert_eq!(no_protocol.code, 2);
    assert!(
        no_protocol.stderr.contains("--protocol"),
        "{}",
        no_protocol.stderr
    );

    let bad_protocol = run(&["decode", "--protocol", "4.0", "c000"], None);
    assert_eq!(bad_protocol.code, 2);
    assert!(
        bad_protocol.stderr.contains("use 3.1, 3.1.1 or 5.0"),
        "{}",
        bad_protocol.stderr
    );

    let empty = run(&["decode", "--protocol", "5.0", "-"], Some("  \n"));
    assert_eq!(empty.code, 2);
    assert!(
        empty.stderr.contains("no bytes to decode"),
        "{}",
        empty.stderr
    );
}

// ---------------------------------------------------------------------------
// decode, the human view
// ---------------------------------------------------------------------------

#[test]
fn decode_human_view_of_a_connect() {
    let out = run(&["decode", "--protocol", "3.1.1", CONNECT_311], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "\
CONNECT (MQTT 3.1.1, from client): 18 bytes at offset 0
  offset  bytes              field             value                statements
  0       10                 fixed_header      CONNECT, flags 0000  MQTT-2.2.2-1, MQTT-2.2.2-2
  1       10                 remaining_length  16 bytes follow
  2       00 04 4d 51 54 54  protocol_name     \"MQTT\"               MQTT-3.1.2-1
  8       04                 protocol_level    4 (MQTT 3.1.1)       MQTT-3.1.2-2
  9       02                 connect_flags     clean_start          MQTT-3.1.2-3, MQTT-3.1.2-11, MQTT-3.1.2-13, MQTT-3.1.2-14, MQTT-3.1.2-15, MQTT-3.1.2-18, MQTT-3.1.2-19, MQTT-3.1.2-20, MQTT-3.1.2-21, MQTT-3.1.2-22
  10      00 3c              keep_alive        60 s                 MQTT-3.1.2-23, MQTT-3.1.2-24
  12      00 04 74 65 73 74  client_id         \"test\"               MQTT-3.1.3-3, MQTT-3.1.3-4, MQTT-3.1.3-5

1 packet, all valid
"
    );
}

#[test]
fn decode_human_view_of_an_error() {
    let out = run(&["decode", "--protocol", "5.0", "3603000161"], None);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        "\
PUBLISH (MQTT 5.0, from client) at offset 0: refused
error: malformed packet at byte 0 in PUBLISH: PUBLISH with QoS 3 (both QoS bits set)
    |
  0 | 36 03 00 01 61
    | ^^
  = MQTT-3.3.1-4 (MQTT 5.0 section 3.3.1.2, MUST NOT): A PUBLISH never has both QoS bits set (QoS 3).
  = reason code 0x81 Malformed Packet: what a receiver answers with before it closes the connection
"
    );
}

#[test]
fn decode_human_view_shows_the_fields_before_the_error() {
    // A 5.0 PUBLISH with Topic Alias 0 (MQTT-3.3.2-8).
    let out = run(
        &["decode", "--protocol", "5.0", "3008000161032300006869"],
        None,
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stdout,
        "\
PUBLISH (MQTT 5.0, from client) at offset 0: refused
  offset  bytes     field             value                          statements
  0       30        fixed_header      PUBLISH, dup=0 qos=0 retain=0  MQTT-3.3.1-2, MQTT-3.3.1-4
  1       08        remaining_length  8 bytes follow                 MQTT-1.5.5-1
  2       00 01 61  topic             \"a\"                            MQTT-3.3.2-1, MQTT-3.3.2-2, MQTT-4.7.0-1, MQTT-4.7.3-1
  5       03        property_length   3 bytes of properties          MQTT-2.2.2-1
  6       23        property_id       0x23 topic_alias
  7       00 00     topic_alias       0                              MQTT-3.3.2-8
error: protocol error at byte 6 in PUBLISH: property topic_alias (0x23) has the value 0, which is not allowed
    |
  0 | 30 08 00 01 61 03 23 00 00 68 69
    |                   ^^
  = MQTT-3.3.2-8 (MQTT 5.0 section 3.3.2.3.4, MUST NOT): A PUBLISH never carries topic alias 0.
  = reason code 0x94 Topic Alias invalid: what a receiver answers with before it closes the connection
"
    );
}

// ---------------------------------------------------------------------------
// encode
// ---------------------------------------------------------------------------

const PACKETS_YAML: &str = r#"# A session, described by fields.
- type: CONNECT
  protocol: "5.0"
  client_id: sensor-1
  keep_alive: 30
  will: {topic: status/sensor-1, payload: offline, qos: 1, retain: true}
  username: alice
  password: {hex: "00 ff"}
  properties: [{name: session_expiry_interval, value: 3600}]
- type: SUBSCRIBE
  id: 1
  filters: [{filter: "a/#", qos: 2, no_local: true}, b/+]
- type: PUBLISH
  qos: 1
  id: 7
  topic: a/b
  payload: hi
  properties: [{name: user_property, value: [k, v]}]
- {type: PUBACK, id: 7, reason_code: 0x10}
- {type: UNSUBSCRIBE, id: 2, filters: [b/+]}
- {type: PINGREQ}
- {type: DISCONNECT, reason: Disconnect with Will Message}
"#;

#[test]
fn encode_then_decode_round_trip() {
    let file = temp_file("round-trip.yaml", PACKETS_YAML);
    let encoded = run(&["encode", path_str(&file)], None);
    assert_eq!(encoded.code, 0, "{}", encoded.stderr);
    assert_eq!(encoded.stdout.lines().count(), 7, "{}", encoded.stdout);
    assert_eq!(encoded.stdout.lines().nth(2), Some(PUBLISH_5));

    // The hex lines, fed back to decode as one stream, decode to the same fields.
    let decoded = run(
        &["decode", "--protocol", "5.0", "--json", "-"],
        Some(&encoded.stdout),
    );
    assert_eq!(decoded.code, 0, "{}", decoded.stdout);
    let packets: Vec<serde_json::Value> = decoded
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("decode prints JSON lines"))
        .map(|v| v["packet"].clone())
        .collect();
    assert_eq!(packets.len(), 7);
    assert_eq!(
        packets[0].to_string(),
        r#"{"type":"CONNECT","protocol":"5.0","clean_start":true,"keep_alive":30,"properties":[{"name":"session_expiry_interval","value":3600}],"client_id":"sensor-1","will":{"qos":1,"retain":true,"properties":[],"topic":"status/sensor-1","payload":"offline"},"username":"alice","password":{"hex":"00 ff"}}"#
    );
    assert_eq!(
        packets[1].to_string(),
        r#"{"type":"SUBSCRIBE","id":1,"properties":[],"filters":[{"filter":"a/#","qos":2,"no_local":true,"retain_as_published":false,"retain_handling":0},{"filter":"b/+","qos":0,"no_local":false,"retain_as_published":false,"retain_handling":0}]}"#
    );
    assert_eq!(
        packets[3].to_string(),
        r#"{"type":"PUBACK","id":7,"reason_code":16,"reason":"No matching subscribers","properties":[]}"#
    );
    assert_eq!(
        packets[6].to_string(),
        r#"{"type":"DISCONNECT","reason_code":4,"reason":"Disconnect with Will Message","properties":[]}"#
    );

    // decode's JSON is itself an encode input: the same bytes come out.
    let again = temp_file(
        "round-trip-again.json",
        &serde_json::Value::Array(packets).to_string(),
    );
    let reencoded = run(&["encode", path_str(&again)], None);
    assert_eq!(reencoded.code, 0, "{}", reencoded.stderr);
    assert_eq!(reencoded.stdout, encoded.stdout);
}

#[test]
fn encode_check_prints_verdicts() {
    let file = temp_file(
        "check.yaml",
        "- {type: PUBLISH, topic: a/b, payload: hi}\n- {type: CONNACK, reason_code: 0}\n",
    );
    let out = run(
        &["encode", "--protocol", "3.1.1", "--check", path_str(&file)],
        None,
    );
    assert_eq!(
        out.stdout,
        "30070003612f626869\n  -> valid PUBLISH\n20020000\n  -> protocol error at byte 0 in CONNACK: a client may not send CONNACK\n"
    );
    assert_eq!(out.code, 1);

    let server = run(
        &[
            "encode",
            "--protocol",
            "3.1.1",
            "--from",
            "server",
            "--check",
            path_str(&file),
        ],
        None,
    );
    assert_eq!(server.code, 0, "{}", server.stdout);
}

#[test]
fn encode_overrides_write_what_the_decoder_refuses() {
    let file = temp_file(
        "overrides.yaml",
        r#"
- {type: PUBLISH, topic: a/b, payload: hi, flags: 0x6}
- {type: PUBLISH, topic: a, raw: {topic: "00 03 61 ff 62"}}
- {type: PINGREQ, remaining_length: "80 00"}
- {type: PUBLISH, topic: a/b, payload: hello, truncate: 4}
- {type: PINGREQ, append: "00"}
"#,
    );
    let out = run(&["encode", "--check", path_str(&file)], None);
    assert_eq!(
        out.stdout,
        "\
36080003612f62006869
  -> malformed packet at byte 0 in PUBLISH: PUBLISH with QoS 3 (both QoS bits set) [MQTT-3.3.1-4] (reason code 0x81 Malformed Packet)
3006000361ff6200
  -> malformed packet at byte 5 in PUBLISH: topic: not well-formed UTF-8 [MQTT-1.5.4-1] (reason code 0x81 Malformed Packet)
c08000
  -> malformed packet at byte 1 in PINGREQ: remaining_length: variable byte integer not encoded in the fewest bytes [MQTT-1.5.5-1] (reason code 0x81 Malformed Packet)
300b0003
  -> incomplete: at least 9 more byte(s) needed
c00100
  -> malformed packet at byte 2 in PINGREQ: 1 byte(s) left over after the last field: the remaining length is too long for the contents (reason code 0x81 Malformed Packet)
"
    );
    assert_eq!(out.code, 1);

    // And decode says the same of the first one.
    let first = out.stdout.lines().next().unwrap_or_default();
    let decoded = decode_json("5.0", first);
    assert_eq!(
        decoded.stdout,
        "{\"verdict\":\"malformed\",\"statement\":\"MQTT-3.3.1-4\",\"reason_code\":129,\"offset\":0,\"message\":\"PUBLISH with QoS 3 (both QoS bits set)\"}\n"
    );
}

#[test]
fn encode_unknown_key_names_line_and_column() {
    let file = temp_file("typo.yaml", "- type: PUBLISH\n  topic: a/b\n  paylod: hi\n");
    let out = run(&["encode", path_str(&file)], None);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    let path = path_str(&file);
    assert_eq!(
        out.stderr,
        format!(
            "\
error: [0]: unknown field `paylod` (did you mean `payload`?); a PUBLISH takes dup, qos, retain, topic, id, properties, payload (and on any packet: first_byte, flags, remaining_length, raw, append, truncate)
  --> {path}:3:3
   |
 3 |   paylod: hi
   |   ^
"
        )
    );
}

#[test]
fn encode_errors_point_at_the_value() {
    let file = temp_file("qos3.yaml", "type: PUBLISH\ntopic: a\nqos: 3\n");
    let out = run(&["encode", path_str(&file)], None);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!("--> {}:3:6", path_str(&file))),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`flags: 0x6`"), "{}", out.stderr);

    let file = temp_file(
        "misplaced.json",
        "{\"type\": \"SUBACK\", \"id\": 1,\n \"code\": [0]}",
    );
    let out = run(&["encode", path_str(&file)], None);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("`code` does not apply to SUBACK (did you mean `codes`?)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(":2:"), "{}", out.stderr);

    let missing = run(&["encode", "/nonexistent/packets.yaml"], None);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("cannot read /nonexistent/packets.yaml"),
        "{}",
        missing.stderr
    );
}

#[test]
fn encode_reads_stdin() {
    let out = run(&["encode", "-"], Some("{type: PINGREQ}\n"));
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "c000\n"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------

#[test]
fn explain_a_known_id() {
    let out = run(&["explain", "MQTT-3.3.1-4", "--protocol", "5.0"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "\
MQTT-3.3.1-4 (MQTT 5.0, section 3.3.1.2)
  level:   MUST NOT
  binds:   both
  wire:    yes (observable on the wire)
  summary: A PUBLISH never has both QoS bits set (QoS 3).
  checked by: shared/3.3-publish/qos3 [5.0]
"
    );

    let json = run(
        &["explain", "3.1.2-3", "--protocol", "3.1.1", "--json"],
        None,
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(
        json.stdout,
        "{\"statements\":[{\"id\":\"MQTT-3.1.2-3\",\"protocol\":\"3.1.1\",\"section\":\"3.1.2.3\",\"level\":\"MUST\",\"binds\":\"server\",\"wire\":\"yes\",\"summary\":\"Server disconnects the client when the CONNECT reserved flag bit is not zero.\",\"scenarios\":[\"shared/3.1-connect/reserved-flag [3.1.1]\"]}]}\n"
    );

    // Without --protocol, every version that has the id.
    let both = run(&["explain", "MQTT-3.3.1-4", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&both.stdout).expect("JSON");
    let versions: Vec<&str> = v["statements"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["protocol"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(versions, ["3.1.1", "5.0"]);
}

#[test]
fn explain_an_unknown_id() {
    let out = run(&["explain", "MQTT-3.3.1-99", "--protocol", "5.0"], None);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: no statement MQTT-3.3.1-99 in the MQTT 5.0 catalogue; did you mean MQTT-3.3.1-9 (MQTT 5.0)?\n"
    );

    let other_version = run(&["explain", "MQTT-3.1.2-30", "--protocol", "3.1.1"], None);
    assert_eq!(other_version.code, 2);
    assert!(
        other_version.stderr.contains("it is one of MQTT 5.0"),
        "{}",
        other_version.stderr
    );
}

// ---------------------------------------------------------------------------
// coverage

/// `coverage --json` is the contract of DESIGN.md: every statement of both
/// catalogues, once, with the scenarios that check it or why none does.
#[test]
fn coverage_json_lists_every_statement_once() {
    let library = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let out = run(&["coverage", "--json", library], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    let rows = v["statements"].as_array().expect("statements");
    assert_eq!(rows.len(), 141 + 251);
    let mut seen = std::collections::BTreeSet::new();
    for r in rows {
        let keys: Vec<&str> = r
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["id", "protocol", "wire", "scenarios", "reason"]);
        assert!(seen.insert((r["protocol"].to_string(), r["id"].to_string())));
        let checked = !r["scenarios"].as_array().expect("a list").is_empty();
        assert_eq!(checked, r["reason"].is_null(), "{r}");
    }
    let ping = rows
        .iter()
        .find(|r| r["id"] == "MQTT-3.12.4-1" && r["protocol"] == "5.0")
        .expect("PINGRESP's statement");
    assert!(
        ping["scenarios"]
            .as_array()
            .expect("a list")
            .iter()
            .any(|s| s == "shared/3.12-pingreq/pingresp"),
        "{ping}"
    );

    // A library of one scenario: what it cites is checked, the rest has reasons.
    let one = temp_file(
        "coverage-ping.yaml",
        "name: ping\nstatements:\n  \"5.0\": [MQTT-3.12.4-1]\nclients:\n  c: {}\nsteps:\n  - c: { send: PINGREQ }\n  - c: { expect: PINGRESP }\n",
    );
    let out = run(&["coverage", path_str(&one)], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("MQTT 3.1.1: 141 statements — 0 checked, "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("MQTT 5.0:   251 statements — 1 checked, "),
        "{}",
        out.stdout
    );
}

#[test]
fn coverage_of_a_bad_library_exits_2() {
    let bad = temp_file("coverage-bad.yaml", "name: x\nsteps: [\n");
    let out = run(&["coverage", path_str(&bad)], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("coverage-bad.yaml:"), "{}", out.stderr);
}
