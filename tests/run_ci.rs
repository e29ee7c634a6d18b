//! `mqtt-harness run` as a CI job depends on it: one row of the exit status
//! table per test (0 conforming, 1 divergences, 2 bad usage, 3 could not run,
//! 4 nothing selected, 130/143 interrupted), the target checked before the
//! run, report paths, `-` as standard output, retries and flaky cases, stale
//! baseline entries.
//!
//! Fake targets are tiny TCP servers on 127.0.0.1:0 in the test process. No
//! test sleeps: each waits for what the child prints, or for it to end.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");
const PINGRESP: &str = "scenarios/shared/3.12-pingreq/pingresp.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("the mqtt-harness binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Output {
    run_in(&root(), args)
}

/// A fresh directory under the target directory, unique to this test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("run_ci")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the report was written");
    serde_json::from_str(&text).expect("the report is JSON")
}

/// A fake target: each connection handled by `handler` on its own thread.
fn fake(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let h = Arc::clone(&handler);
            std::thread::spawn(move || h(s));
        }
    });
    port
}

/// One MQTT packet: its first byte and body; `None` at the end of the stream.
fn packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).ok()?;
    let first = b[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        s.read_exact(&mut b).ok()?;
        len |= usize::from(b[0] & 0x7f) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 || shift > 21 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((first, body))
}

/// A 3.1.1 broker that accepts every CONNECT and answers PINGREQ, except
/// the first PINGREQ it ever gets: a case fails the first time only.
fn flaky_pinger() -> u16 {
    let pings = Arc::new(AtomicUsize::new(0));
    fake(move |mut s| {
        while let Some((first, _)) = packet(&mut s) {
            let answer: &[u8] = match first >> 4 {
                1 => &[0x20, 0x02, 0x00, 0x00],
                12 if pings.fetch_add(1, Ordering::SeqCst) == 0 => &[],
                12 => &[0xd0, 0x00],
                _ => return,
            };
            if s.write_all(answer).is_err() {
                return;
            }
        }
    })
}

/// A port nobody listens on (bound, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn exit_0_conforming_and_2_for_zero_jobs_or_timeout() {
    let out = run(&["run", PINGRESP, "--protocol", "5.0"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .ends_with("verdict: conforming (exit status 0)\n"),
        "{}",
        out.stdout
    );
    let zero = run(&["run", PINGRESP, "--jobs", "0"]);
    assert_eq!(zero.code, 2, "{}", zero.stderr);
    assert!(
        zero.stderr
            .contains("0 jobs would run no case; give at least 1"),
        "{}",
        zero.stderr
    );
    let zero = run(&["run", PINGRESP, "-j", "2", "--timeout", "0s"]);
    assert_eq!(zero.code, 2, "{}", zero.stderr);
    assert!(
        zero.stderr.contains("`0s` gives no time at all"),
        "{}",
        zero.stderr
    );
}

#[test]
fn exit_3_when_the_target_cannot_be_reached_with_one_message() {
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let out = run(&["run", PINGRESP, "-t", &url]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "", "no case ran");
    assert!(
        out.stderr.contains(&format!(
            "error: cannot reach {url}: connection refused; start it, check --target, \
             or give --wait-for-target 30s to wait for it\n"
        )),
        "{}",
        out.stderr
    );
    let out = run(&["run", PINGRESP, "-t", &url, "--wait-for-target", "300ms"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot reach {url} within 300 ms: connection refused"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn wait_for_target_runs_once_the_target_listens() {
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["run", PINGRESP, "--protocol", "3.1.1", "-t", &url])
        .args(["--wait-for-target", "60s"])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while stderr.read_line(&mut line).expect("stderr") > 0 && !line.contains("waiting for") {
        line.clear();
    }
    assert!(
        line.contains(&format!(
            "waiting for {url} (connection refused), at most 60 s"
        )),
        "{line}"
    );
    // Now the broker starts: a fake that answers every PINGREQ.
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                while let Some((first, _)) = packet(&mut s) {
                    let answer: &[u8] = match first >> 4 {
                        1 => &[0x20, 0x02, 0x00, 0x00],
                        12 => &[0xd0, 0x00],
                        _ => return,
                    };
                    let _ = s.write_all(answer);
                }
            });
        }
    });
    let out = child.wait_with_output().expect("it ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("PASS  shared/3.12-pingreq/pingresp [3.1.1]"),
        "{stdout}"
    );
}

#[test]
fn exit_3_when_cases_could_not_run() {
    // Accepts the connection, then closes it before any answer.
    let port = fake(drop);
    let json = scratch_dir("broke-off").join("r.json");
    let out = run(&[
        "run",
        PINGRESP,
        "-t",
        &format!("mqtt://127.0.0.1:{port}"),
        "--timeout",
        "300ms",
        "--json",
        &json.display().to_string(),
    ]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("ERROR shared/3.12-pingreq/pingresp"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("verdict: could not run (exit status 3)"),
        "{}",
        out.stdout
    );
    let report = read_json(&json);
    assert_eq!(report["exit_status"], 3);
    assert_eq!(report["verdict"], "could_not_run");
}

#[test]
fn exit_4_when_nothing_is_selected_unless_allowed() {
    let out = run(&["run", "--tag", "nosuchtag"]);
    assert_eq!(out.code, 4, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("nothing selected: no case of the ")
            && out
                .stderr
                .contains(" matches --tag nosuchtag; check the selection"),
        "{}",
        out.stderr
    );
    let empty = scratch_dir("empty");
    let out = run(&["run", &empty.display().to_string()]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("holds no scenario"), "{}", out.stderr);
    let out = run(&["run", "--filter", "zzzz", "--allow-empty"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn reports_go_into_new_directories_and_a_bad_path_fails_before_running() {
    let dir = scratch_dir("nested");
    let json = dir.join("a/b/report.json");
    let junit = dir.join("c/report.xml");
    let html = dir.join("d/e/report.html");
    let out = run(&[
        "run",
        PINGRESP,
        "--json",
        &json.display().to_string(),
        "--junit",
        &junit.display().to_string(),
        "--html",
        &html.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(json.is_file() && junit.is_file() && html.is_file());
    let blocker = dir.join("plain-file");
    std::fs::write(&blocker, "").expect("a file");
    let bad = blocker.join("report.json");
    let out = run(&["run", PINGRESP, "--json", &bad.display().to_string()]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "", "nothing ran");
    assert!(
        out.stderr.contains("cannot create the directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn dash_is_standard_output_and_the_console_goes_to_stderr() {
    let out = run(&["run", PINGRESP, "--json", "-"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("stdout is the JSON report alone");
    assert_eq!(report["summary"]["passed"], 3);
    assert!(
        out.stderr
            .contains("PASS  shared/3.12-pingreq/pingresp [5.0]"),
        "{}",
        out.stderr
    );
    let out = run(&["run", PINGRESP, "--junit", "-"]);
    assert!(out.stdout.starts_with("<?xml"), "{}", out.stdout);
    assert!(
        out.stdout.trim_end().ends_with("</testsuites>"),
        "{}",
        out.stdout
    );
    let out = run(&["run", PINGRESP, "--junit", "-", "--json", "-"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("only one report can go to standard output"),
        "{}",
        out.stderr
    );
}

#[test]
fn retries_make_a_case_that_failed_once_flaky() {
    let port = flaky_pinger();
    let dir = scratch_dir("flaky");
    let (json, junit, baseline) = (dir.join("r.json"), dir.join("r.xml"), dir.join("b.yaml"));
    let target = format!("mqtt://127.0.0.1:{port}");
    let args = [
        "run",
        PINGRESP,
        "--protocol",
        "3.1.1",
        "-t",
        &target,
        "--timeout",
        "300ms",
        "--retries",
        "2",
    ];
    let mut with_reports: Vec<String> = args.iter().map(ToString::to_string).collect();
    for (flag, path) in [
        ("--json", &json),
        ("--junit", &junit),
        ("--write-baseline", &baseline),
    ] {
        with_reports.push(flag.into());
        with_reports.push(path.display().to_string());
    }
    let with_reports: Vec<&str> = with_reports.iter().map(String::as_str).collect();
    let out = run(&with_reports);
    assert_eq!(
        out.code, 0,
        "flaky is not a failure: {}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout
            .contains("FAIL  shared/3.12-pingreq/pingresp [3.1.1]"),
        "the first attempt: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("FLAKY shared/3.12-pingreq/pingresp [3.1.1]  PINGREQ is answered with PINGRESP  (")
            && out.stdout.contains(" ms, 2 attempts)\n      attempt 1: fail: step 2 (line 14): expected PINGRESP; got nothing within 300 ms"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1 passed (1 flaky), 0 failed"),
        "{}",
        out.stdout
    );
    let report = read_json(&json);
    let case = &report["scenarios"][0];
    assert_eq!(case["status"], "pass");
    assert_eq!(case["flaky"], true);
    assert_eq!(case["attempts"], 2);
    assert_eq!(report["summary"]["flaky"], 1);
    let xml = std::fs::read_to_string(&junit).expect("JUnit");
    assert!(
        xml.contains("<property name=\"flaky\" value=\"true\"/>"),
        "{xml}"
    );
    assert!(xml.contains("failures=\"0\""), "{xml}");
    let written = std::fs::read_to_string(&baseline).expect("baseline");
    assert!(
        written.contains("  - id: shared/3.12-pingreq/pingresp\n    protocol: \"3.1.1\"\n")
            && written.contains("    intermittent: true\n"),
        "{written}"
    );

    // The same against a fresh fake, with --fail-on-flaky.
    let port = flaky_pinger();
    let target = format!("mqtt://127.0.0.1:{port}");
    let mut strict: Vec<&str> = args.to_vec();
    if let Some(t) = strict.iter_mut().find(|a| a.starts_with("mqtt://")) {
        *t = &target;
    }
    strict.push("--fail-on-flaky");
    let out = run(&strict);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
}

fn tree_with_pingresp(name: &str) -> PathBuf {
    let dir = scratch_dir(name);
    let scenarios = dir.join("scenarios/shared/3.12-pingreq");
    std::fs::create_dir_all(&scenarios).expect("mkdir");
    std::fs::copy(root().join(PINGRESP), scenarios.join("pingresp.yaml")).expect("copy");
    dir
}

#[test]
fn a_stale_baseline_entry_fails_a_whole_run_and_warns_in_a_restricted_one() {
    let dir = tree_with_pingresp("stale");
    let baseline = dir.join("baseline.yaml");
    std::fs::write(
        &baseline,
        "divergences:\n  - id: shared/3.12-pingreq/renamed\n    protocol: \"5.0\"\n    message: gone\n",
    )
    .expect("baseline");
    let json = dir.join("r.json");
    let b = baseline.display().to_string();
    let j = json.display().to_string();
    let whole = run_in(&dir, &["run", "--baseline", &b, "--json", &j]);
    assert_eq!(whole.code, 1, "{}{}", whole.stdout, whole.stderr);
    assert!(
        whole.stdout.contains(
            "stale: the baseline entry shared/3.12-pingreq/renamed [5.0] matches no case of this run; remove it from the baseline"
        ),
        "{}",
        whole.stdout
    );
    assert_eq!(
        read_json(&json)["baseline"]["stale"],
        serde_json::json!([{"id": "shared/3.12-pingreq/renamed", "protocol": "5.0"}])
    );
    let restricted = run_in(&dir, &["run", "--baseline", &b, "--protocol", "5.0"]);
    assert_eq!(
        restricted.code, 0,
        "{}{}",
        restricted.stdout, restricted.stderr
    );
    assert!(
        restricted.stdout.contains("warning: the baseline entry shared/3.12-pingreq/renamed [5.0] matches no case of this run"),
        "{}",
        restricted.stdout
    );
}

#[test]
fn the_baselines_reason_is_shown_beside_known() {
    let dir = scratch_dir("reason");
    let baseline = dir.join("b.yaml");
    std::fs::write(
        &baseline,
        "divergences:\n  - id: shared/3.12-pingreq/pingresp\n    protocol: \"5.0\"\n    message: >-\n      We sent PINGREQ (c0 00); nothing came back.\n      MQTT-3.12.4-1.\n",
    )
    .expect("baseline");
    let junit = dir.join("r.xml");
    let out = run(&[
        "run",
        PINGRESP,
        "--protocol",
        "5.0",
        "--violate",
        "MQTT-3.12.4-1",
        "--timeout",
        "300ms",
        "--baseline",
        &baseline.display().to_string(),
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "KNOWN shared/3.12-pingreq/pingresp [5.0]  PINGREQ is answered with PINGRESP  ("
        ) && out.stdout.contains(
            "\n      baseline: We sent PINGREQ (c0 00); nothing came back. MQTT-3.12.4-1.\n"
        ),
        "{}",
        out.stdout
    );
    let xml = std::fs::read_to_string(&junit).expect("JUnit");
    assert!(
        xml.contains("<skipped type=\"known-divergence\" message=\"known divergence: We sent PINGREQ (c0 00); nothing came back. MQTT-3.12.4-1.\">"),
        "{xml}"
    );
}

/// Runs a quick scenario beside one that waits a minute, sends `signal` once
/// the first case line appears, and returns the exit code and the JSON report.
fn interrupted(signal: &str) -> (Option<i32>, Value, String) {
    let dir = tree_with_pingresp(&format!("signal-{signal}"));
    std::fs::write(
        dir.join("scenarios/slow.yaml"),
        "name: a minute of silence\nstatements:\n  \"5.0\": [MQTT-3.12.4-1]\nclients:\n  c: {}\nsteps:\n  - c: { expect_silence: 60s }\n",
    )
    .expect("write");
    let json = dir.join("out/r.json");
    let mut child = Command::new(BIN)
        .args(["run", "--json", &json.display().to_string(), "--html"])
        .arg(dir.join("out/r.html"))
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while stdout.read_line(&mut line).expect("stdout") > 0 && !line.starts_with("PASS") {
        line.clear();
    }
    assert!(
        line.starts_with("PASS  shared/3.12-pingreq/pingresp"),
        "{line}"
    );
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let status = child.wait().expect("it ends");
    (status.code(), read_json(&json), rest)
}

#[test]
fn sigint_writes_what_finished_marked_interrupted_and_exits_130() {
    let (code, report, console) = interrupted("-INT");
    assert_eq!(code, Some(130), "{console}");
    assert_eq!(report["interrupted"], true);
    assert_eq!(report["exit_status"], 130);
    let ids: Vec<&str> = report["scenarios"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(ids.contains(&"shared/3.12-pingreq/pingresp"), "{ids:?}");
    assert!(
        !ids.contains(&"slow"),
        "the slow case did not finish: {ids:?}"
    );
    assert!(
        console.contains("interrupted by SIGINT: the reports hold the ")
            && console.contains("verdict: interrupted (exit status 130)"),
        "{console}"
    );
}

#[test]
fn sigterm_exits_143() {
    let (code, report, _) = interrupted("-TERM");
    assert_eq!(code, Some(143));
    assert_eq!(report["interrupted"], true);
}

#[test]
fn quiet_prints_only_what_needs_a_look_and_colour_follows_the_environment() {
    let out = run(&[
        "run",
        PINGRESP,
        "-q",
        "--violate",
        "MQTT-3.12.4-1",
        "--timeout",
        "300ms",
        "--protocol",
        "5.0",
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.starts_with(
            "\nfailures, errors and flaky cases (1):\nFAIL  shared/3.12-pingreq/pingresp [5.0]"
        ),
        "{}",
        out.stdout
    );
    let quiet_pass = run(&["run", PINGRESP, "-q"]);
    assert!(
        !quiet_pass.stdout.contains("PASS "),
        "{}",
        quiet_pass.stdout
    );
    assert!(
        quiet_pass.stdout.contains("3 passed, 0 failed"),
        "{}",
        quiet_pass.stdout
    );

    let coloured = |env: &[(&str, &str)], extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(["run", PINGRESP, "--protocol", "5.0"]).args(extra);
        c.current_dir(root())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().expect("runs");
        String::from_utf8_lossy(&out.stdout).contains("\x1b[32mPASS ")
    };
    assert!(!coloured(&[], &[]), "a pipe is not coloured");
    assert!(
        coloured(&[("CLICOLOR_FORCE", "1")], &[]),
        "unless CLICOLOR_FORCE"
    );
    assert!(
        !coloured(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &[]),
        "NO_COLOR wins"
    );
    assert!(
        coloured(&[("NO_COLOR", "1")], &["--color", "always"]),
        "the flag wins"
    );
    assert!(!coloured(&[("CLICOLOR_FORCE", "1")], &["--color", "never"]));
}
