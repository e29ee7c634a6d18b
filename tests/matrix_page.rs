//! The matrix page as a browser shows it: `matrix --from-reports` over two
//! hand-made reports, loaded in headless Chromium (`--dump-dom`), must show
//! both brokers with their counts, the sections with their totals and each
//! statement's cell.
//!
//! Needs /usr/bin/chromium (`apt-get install chromium`, as `.ci/run` does):
//! without it the test fails, as the HTML report's does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");
const CHROMIUM: &str = "/usr/bin/chromium";

fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("matrix_page");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

const A: &str = r#"{"summary": {"passed": 1, "failed": 1, "skipped": 0, "errors": 0, "duration_ms": 900},
 "scenarios": [
  {"id": "shared/3.12-pingreq/pingresp", "protocol": "3.1.1", "status": "fail",
   "statements": ["MQTT-3.12.4-1"], "failed_statements": ["MQTT-3.12.4-1"]},
  {"id": "shared/3.1-connect/accepted", "protocol": "3.1.1", "status": "pass",
   "statements": ["MQTT-3.2.0-1"], "failed_statements": []}],
 "statements": [
  {"id": "MQTT-3.2.0-1", "protocol": "3.1.1", "status": "pass"},
  {"id": "MQTT-3.12.4-1", "protocol": "3.1.1", "status": "fail"}]}"#;

const B: &str = r#"{"summary": {"passed": 1, "failed": 0, "skipped": 1, "errors": 0, "duration_ms": 700},
 "scenarios": [
  {"id": "shared/3.12-pingreq/pingresp", "protocol": "3.1.1", "status": "pass",
   "statements": ["MQTT-3.12.4-1"], "failed_statements": []},
  {"id": "shared/3.1-connect/accepted", "protocol": "3.1.1", "status": "skip",
   "statements": ["MQTT-3.2.0-1"], "failed_statements": []}],
 "statements": [
  {"id": "MQTT-3.2.0-1", "protocol": "3.1.1", "status": "skip"},
  {"id": "MQTT-3.12.4-1", "protocol": "3.1.1", "status": "pass"}]}"#;

/// The page's DOM after Chromium loaded it, with a fresh profile each time.
fn dump_dom(page: &Path, profile: &Path) -> String {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    // A deadline on the browser: a hung Chromium fails the test, not CI's clock.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait().expect("wait on chromium") {
            Some(_) => break,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                panic!("chromium did not finish within 60 s");
            }
            // std has no wait with a timeout: poll the exit, bounded above.
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let out = child.wait_with_output().expect("chromium's output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn chromium_shows_the_brokers_the_sections_and_the_cells() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium (the page is checked in a real browser)"
    );
    let dir = scratch();
    for (name, report) in [("alpha", A), ("beta", B)] {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("report.json"), report).expect("write");
    }
    // alpha's baseline, beside its report, lists its one failure.
    std::fs::write(
        dir.join("alpha/baseline.yaml"),
        r#"{"divergences": [{"id": "shared/3.12-pingreq/pingresp", "protocol": "3.1.1", "message": "m"}]}"#,
    )
    .expect("write");
    let page = dir.join("matrix.html");
    let out = Command::new(BIN)
        .args(["matrix", "--from-reports"])
        .arg(dir.join("alpha/report.json"))
        .arg(dir.join("beta/report.json"))
        .arg("--html")
        .arg(&page)
        .output()
        .expect("mqtt-harness runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "only a known divergence: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dom = dump_dom(&page, &dir.join("chromium-profile"));
    assert!(dom.contains("<h1>MQTT conformance matrix</h1>"), "{dom}");
    assert!(dom.contains("2 brokers, 2 statements"), "{dom}");
    // The broker table: alpha 1 pass 0 fail 1 known; beta 1 pass 1 skip.
    assert!(
        dom.contains(
            "<tr data-broker=\"alpha\"><th>alpha</th><td class=\"n pass\">1</td><td class=\"n fail\">0</td><td class=\"n known\">1</td><td class=\"n skip\">0</td><td class=\"n error\">0</td>"
        ),
        "{dom}"
    );
    assert!(
        dom.contains(
            "<tr data-broker=\"beta\"><th>beta</th><td class=\"n pass\">1</td><td class=\"n fail\">0</td><td class=\"n known\">0</td><td class=\"n skip\">1</td>"
        ),
        "{dom}"
    );
    // Sections in order, with their totals per broker, then the cells.
    let connack = dom
        .find("MQTT 3.1.1 · 3.2 CONNACK")
        .expect("the CONNACK section");
    let pingreq = dom
        .find("MQTT 3.1.1 · 3.12 PINGREQ")
        .expect("the PINGREQ section");
    assert!(connack < pingreq, "sections in the standard's order");
    assert!(dom.contains("<td>1 known</td><td>1 pass</td>"), "{dom}");
    assert!(
        dom.contains("<td><code>MQTT-3.12.4-1</code></td><td class=\"known\" title=\"shared/3.12-pingreq/pingresp [3.1.1]\">known</td><td class=\"pass\">pass</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("<td><code>MQTT-3.2.0-1</code></td><td class=\"pass\">pass</td><td class=\"skip\">skip</td>"),
        "{dom}"
    );
}
