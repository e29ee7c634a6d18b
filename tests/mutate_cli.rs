//! `mqtt-harness mutate`: a violation the library catches is reported as
//! caught and exits 0; one it cannot tell from a compliant broker is missed
//! and exits 1. Each run starts its own embedded brokers.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");

fn mutate(args: &[&str]) -> (i32, Value) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(BIN)
        .arg("mutate")
        .args(args)
        .arg("--json")
        .current_dir(&root)
        .output()
        .expect("the mqtt-harness binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn a_caught_violation_is_named_with_the_case_that_caught_it() {
    let (code, json) = mutate(&["scenarios/shared/3.12-pingreq", "--only", "MQTT-3.12.4-1"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["summary"]["caught"], 1, "{json}");
    let v = &json["violations"][0];
    assert_eq!(v["verdict"], "caught");
    let citing: Vec<&str> = v["citing"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        citing.contains(&"shared/3.12-pingreq/pingresp [3.1.1]"),
        "{citing:?}"
    );
}

#[test]
fn a_violation_no_scenario_sees_is_missed_and_fails_the_run() {
    // The PINGREQ scenarios cannot see a broker that never stores retained messages.
    let (code, json) = mutate(&["scenarios/shared/3.12-pingreq", "--only", "MQTT-3.3.1-5"]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["summary"]["missed"], 1, "{json}");
    assert_eq!(json["violations"][0]["verdict"], "missed");
}
