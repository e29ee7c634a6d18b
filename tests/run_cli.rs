//! `mqtt-harness run` as CI calls it: exit status 0 / 1 / 2, the `--json`
//! report's contract, `--list`, and baselines.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the mqtt-harness binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A file path in the target directory, unique to this test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run_cli");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir.join(name)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the report was written");
    serde_json::from_str(&text).expect("the report is JSON")
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

#[test]
fn a_passing_run_exits_0_and_writes_the_json_contract() {
    let json = scratch("pass.json");
    let json_arg = json.display().to_string();
    let out = run(&[
        "run",
        "scenarios/shared/3.12-pingreq/pingresp.yaml",
        "--json",
        &json_arg,
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("PASS  shared/3.12-pingreq/pingresp [5.0]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("3 passed, 0 failed, 0 skipped, 0 errors"),
        "{}",
        out.stdout
    );

    let report = read_json(&json);
    // The contract's fields, and those added to it.
    assert_eq!(
        keys(&report),
        [
            "baseline",
            "exit_status",
            "interrupted",
            "scenarios",
            "statements",
            "suite",
            "summary",
            "target",
            "tool_version",
            "verdict"
        ]
    );
    assert_eq!(report["exit_status"], 0);
    assert_eq!(report["verdict"], "conforming");
    assert_eq!(report["interrupted"], false);
    assert_eq!(report["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        report["suite"],
        "scenarios/shared/3.12-pingreq/pingresp.yaml"
    );
    assert!(
        report["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("mqtt://127.0.0.1:")),
        "{}",
        report["target"]
    );
    assert_eq!(
        keys(&report["summary"]),
        [
            "duration_ms",
            "errors",
            "failed",
            "flaky",
            "known",
            "passed",
            "skipped"
        ]
    );
    assert_eq!(report["summary"]["passed"], 3);
    let scenarios = report["scenarios"].as_array().expect("a list");
    assert_eq!(scenarios.len(), 3, "one entry per scenario × protocol");
    for s in scenarios {
        assert_eq!(
            keys(s),
            [
                "attempts",
                "duration_ms",
                "earlier_attempts",
                "failed_statements",
                "file",
                "flaky",
                "id",
                "known",
                "known_reason",
                "message",
                "passed_statements",
                "protocol",
                "statements",
                "status"
            ]
        );
        assert_eq!(s["known"], false);
        assert_eq!(s["flaky"], false);
        assert_eq!(s["attempts"], 1);
        assert_eq!(s["id"], "shared/3.12-pingreq/pingresp");
        assert_eq!(s["status"], "pass");
        assert_eq!(s["message"], Value::Null);
        assert_eq!(s["statements"], serde_json::json!(["MQTT-3.12.4-1"]));
    }
    let protocols: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["protocol"].as_str())
        .collect();
    assert_eq!(protocols, ["3.1", "3.1.1", "5.0"]);
    for st in report["statements"].as_array().expect("a list") {
        assert_eq!(keys(st), ["id", "protocol", "status"]);
        assert_eq!(st["status"], "pass");
    }
}

#[test]
fn a_failing_run_exits_1_and_a_baseline_of_it_exits_0() {
    let json = scratch("fail.json");
    let baseline = scratch("baseline.yaml");
    let (json_arg, baseline_arg) = (json.display().to_string(), baseline.display().to_string());
    // --write-baseline keeps what an existing file says (the end of this test
    // marks its entries intermittent): start from none.
    let _ = std::fs::remove_file(&baseline);
    let out = run(&[
        "run",
        "scenarios/shared/3.12-pingreq/pingresp.yaml",
        "--violate",
        "MQTT-3.12.4-1",
        "--timeout",
        "300ms",
        "--json",
        &json_arg,
        "--write-baseline",
        &baseline_arg,
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("FAIL  shared/3.12-pingreq/pingresp [5.0]"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("expected PINGRESP"), "{}", out.stdout);
    let report = read_json(&json);
    assert_eq!(report["summary"]["failed"], 3);
    assert_eq!(report["scenarios"][0]["status"], "fail");
    let message = report["scenarios"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("expected PINGRESP; got nothing within 300 ms"),
        "{message}"
    );
    assert_eq!(report["statements"][0]["status"], "fail");

    let again = run(&[
        "run",
        "scenarios/shared/3.12-pingreq/pingresp.yaml",
        "--violate",
        "MQTT-3.12.4-1",
        "--timeout",
        "300ms",
        "--baseline",
        &baseline_arg,
    ]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(
        again
            .stdout
            .contains("3 failed (3 known from the baseline)"),
        "{}",
        again.stdout
    );

    // The broker is fixed: the baseline's entries now pass, which fails the
    // run until they are removed…
    let fixed = run(&[
        "run",
        "scenarios/shared/3.12-pingreq/pingresp.yaml",
        "--baseline",
        &baseline_arg,
    ]);
    assert_eq!(fixed.code, 1, "{}{}", fixed.stdout, fixed.stderr);
    assert!(
        fixed.stdout.contains(
            "FIXED shared/3.12-pingreq/pingresp [5.0]  passes now: remove it from the baseline"
        ),
        "{}",
        fixed.stdout
    );
    // …unless they are marked intermittent (the file is YAML, edited by hand).
    let text = std::fs::read_to_string(&baseline).expect("baseline written");
    assert!(text.starts_with("# mqtt-harness baseline"), "{text}");
    let edited = text.replace("\n    message:", "\n    intermittent: true\n    message:");
    assert_eq!(edited.matches("intermittent: true").count(), 3, "{edited}");
    std::fs::write(&baseline, edited).expect("rewrite baseline");
    let flaky = run(&[
        "run",
        "scenarios/shared/3.12-pingreq/pingresp.yaml",
        "--baseline",
        &baseline_arg,
    ]);
    assert_eq!(flaky.code, 0, "{}{}", flaky.stdout, flaky.stderr);
}

#[test]
fn an_invalid_scenario_exits_2_with_its_position() {
    let out = run(&["run", "tests/fixtures/scenarios/unknown-key.yaml"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("tests/fixtures/scenarios/unknown-key.yaml:8:28: "),
        "{}",
        out.stderr
    );
}

#[test]
fn list_shows_cases_without_running_them() {
    let out = run(&[
        "run",
        "--list",
        "--protocol",
        "5.0",
        "--filter",
        "3.12-pingreq/pingresp",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "shared/3.12-pingreq/pingresp [5.0]  PINGREQ is answered with PINGRESP  MQTT-3.12.4-1\n"
    );
}

#[test]
fn a_profile_skips_what_it_rules_out_even_when_connack_offers_it() {
    // The embedded broker announces Retain Available in its 5.0 CONNACK; the
    // profile says no, and the profile wins.
    let profile = scratch("no-retain.yaml");
    std::fs::write(&profile, "name: no retain\nretain: false\n").expect("write the profile");
    let junit = scratch("no-retain.xml");
    let out = run(&[
        "run",
        "scenarios/shared/3.3-publish/retained.yaml",
        "--profile",
        &profile.display().to_string(),
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let reason = format!(
        "requires retain: the target profile `no retain` ({}) says retain: false",
        profile.display()
    );
    assert!(
        out.stdout
            .contains("SKIP  shared/3.3-publish/retained [5.0]"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&reason), "{}", out.stdout);
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(
        xml.contains(&format!(r#"<skipped type="skip" message="{reason}"/>"#)),
        "{xml}"
    );

    // The shipped profiles run the same case as offered.
    let out = run(&[
        "run",
        "scenarios/shared/3.3-publish/retained.yaml",
        "--profile",
        "profiles/reference.yaml",
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("PASS  shared/3.3-publish/retained [5.0]"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_bad_profile_exits_2_with_its_position() {
    let profile = scratch("typo.yaml");
    std::fs::write(&profile, "name: typo\nretian: false\n").expect("write the profile");
    let out = run(&["run", "--profile", &profile.display().to_string()]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{}:2:1: unknown field `retian`",
            profile.display()
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_profile_keep_alive_range_skips_clients_asking_outside_it() {
    let profile = scratch("keep-alive.yaml");
    std::fs::write(
        &profile,
        "name: cloud\nkeep_alive: { minimum: 30, maximum: 1200 }\n",
    )
    .expect("write the profile");
    let out = run(&[
        "run",
        "scenarios/shared/3.1-connect/keep-alive.yaml",
        "--profile",
        &profile.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let reason = format!(
        "client `idle` asks for keep alive 1 s: the target profile `cloud` ({}) honours 30..=1200 s",
        profile.display()
    );
    assert!(out.stdout.contains(&reason), "{}", out.stdout);
    assert!(
        out.stdout.contains("0 passed, 0 failed, 2 skipped"),
        "{}",
        out.stdout
    );
}
