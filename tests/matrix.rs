//! `mqtt-harness matrix` as a user runs it: against the embedded reference
//! broker and a fake broker that accepts every CONNECT and then answers
//! nothing, compared statement by statement; the same from the reports it
//! wrote; and a broker that cannot be reached (exit 3).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use mqtt_harness::cmd::run::EmbeddedBroker;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");
const SCENARIO: &str = "scenarios/shared/3.12-pingreq/pingresp.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("matrix")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn harness(args: &[&str]) -> Output {
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

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the file was written");
    serde_json::from_str(&text).expect("it is JSON")
}

/// The protocol level of a CONNECT packet (fixed header included), if whole.
fn connect_level(buf: &[u8]) -> Option<(u8, usize)> {
    let mut len = 0usize;
    let mut at = 1;
    for shift in 0..4 {
        let b = *buf.get(at)?;
        len |= usize::from(b & 0x7f) << (7 * shift);
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    let total = at + len;
    if buf.len() < total {
        return None;
    }
    let name_len = usize::from(*buf.get(at)?) << 8 | usize::from(*buf.get(at + 1)?);
    Some((*buf.get(at + 2 + name_len)?, total))
}

/// Accepts the CONNECT (CONNACK 0 in its version), then reads and answers nothing.
async fn accept_then_ignore(mut s: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let mut answered = false;
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if answered {
            continue;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some((level, _)) = connect_level(&buf) {
            let connack: &[u8] = if level == 5 {
                &[0x20, 0x03, 0x00, 0x00, 0x00]
            } else {
                &[0x20, 0x02, 0x00, 0x00]
            };
            if s.write_all(connack).await.is_err() {
                return;
            }
            answered = true;
        }
    }
}

async fn fake() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(accept_then_ignore(s));
        }
    });
    addr
}

/// The cell of `id` under `protocol`, one status per broker.
fn cells(matrix: &Value, protocol: &str, id: &str) -> Vec<String> {
    let sections = matrix["sections"].as_array().expect("sections");
    let row = sections
        .iter()
        .filter(|s| s["protocol"] == protocol)
        .flat_map(|s| s["statements"].as_array().cloned().unwrap_or_default())
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} [{protocol}] in {matrix:#}"));
    row["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c["status"].as_str().unwrap_or("none").to_string())
        .collect()
}

#[test]
fn the_reference_broker_and_a_fake_side_by_side() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let broker = rt
        .block_on(EmbeddedBroker::start(Default::default()))
        .expect("the reference broker starts");
    let fake = rt.block_on(fake());

    let dir = scratch("side-by-side");
    std::fs::write(
        dir.join("fake-baseline.yaml"),
        r#"{"divergences": [{"id": "shared/3.12-pingreq/pingresp", "protocol": "3.1.1",
            "message": "We sent PINGREQ (c0 00); the fake answered nothing (MQTT-3.12.4-1)."}]}"#,
    )
    .expect("write");
    let targets = dir.join("targets.yaml");
    std::fs::write(
        &targets,
        format!(
            "targets:\n  - name: reference\n    url: mqtt://{}\n  - name: silent fake\n    url: mqtt://{fake}\n    baseline: fake-baseline.yaml\n",
            broker.addr
        ),
    )
    .expect("write");
    let (json, html, reports) = (dir.join("m.json"), dir.join("m.html"), dir.join("reports"));
    let out = harness(&[
        "matrix",
        &targets.display().to_string(),
        "--scenarios",
        SCENARIO,
        "--timeout",
        "500ms",
        "--json",
        &json.display().to_string(),
        "--html",
        &html.display().to_string(),
        "--write-reports",
        &reports.display().to_string(),
    ]);
    assert_eq!(
        out.code, 1,
        "fails outside a baseline: {}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("[1/2] reference at mqtt://")
            && out
                .stdout
                .contains("3 pass, 0 fail, 0 known, 0 skip, 0 error"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("[2/2] silent fake at mqtt://")
            && out
                .stdout
                .contains("0 pass, 2 fail, 1 known, 0 skip, 0 error"),
        "{}",
        out.stdout
    );

    let m = read_json(&json);
    assert_eq!(m["exit_status"], 1);
    let names: Vec<&str> = m["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["reference", "silent fake"]);
    assert_eq!(m["brokers"][1]["diverges"], true);
    assert_eq!(cells(&m, "3.1.1", "MQTT-3.12.4-1"), ["pass", "known"]);
    assert_eq!(cells(&m, "5.0", "MQTT-3.12.4-1"), ["pass", "fail"]);
    assert_eq!(cells(&m, "3.1", "MQTT-3.12.4-1"), ["pass", "fail"]);
    let page = std::fs::read_to_string(&html).expect("the page");
    assert!(page.contains("<th>silent fake</th>") && !page.contains("<script"));

    // The same matrix from the reports the run wrote, without running.
    let ref_report = reports.join("reference.json");
    let fake_report = reports.join("silent-fake.json");
    assert!(ref_report.is_file() && reports.join("silent-fake.html").is_file());
    let json2 = dir.join("again.json");
    let out = harness(&[
        "matrix",
        "--from-reports",
        &format!("reference={}", ref_report.display()),
        &format!("fake={}", fake_report.display()),
        "--json",
        &json2.display().to_string(),
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let again = read_json(&json2);
    assert_eq!(again["brokers"][0]["cases"], m["brokers"][0]["cases"]);
    assert_eq!(cells(&again, "5.0", "MQTT-3.12.4-1"), ["pass", "fail"]);

    rt.block_on(broker.stop());
}

#[test]
fn only_baselined_divergences_exit_0_and_an_unreachable_broker_exits_3() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let broker = rt
        .block_on(EmbeddedBroker::start(Default::default()))
        .expect("the reference broker starts");
    // A port nobody listens on: bound, read, released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");

    let dir = scratch("exit-codes");
    let targets = dir.join("ok.yaml");
    std::fs::write(
        &targets,
        format!(
            "targets:\n  - {{ name: reference, url: \"mqtt://{}\" }}\n",
            broker.addr
        ),
    )
    .expect("write");
    let out = harness(&[
        "matrix",
        &targets.display().to_string(),
        "--scenarios",
        SCENARIO,
    ]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let targets = dir.join("down.yaml");
    std::fs::write(
        &targets,
        format!(
            "targets:\n  - {{ name: reference, url: \"mqtt://{}\" }}\n  - {{ name: down, url: \"mqtt://{closed}\" }}\n",
            broker.addr
        ),
    )
    .expect("write");
    let json = dir.join("down.json");
    let out = harness(&[
        "matrix",
        &targets.display().to_string(),
        "--scenarios",
        SCENARIO,
        "--timeout",
        "500ms",
        "--json",
        &json.display().to_string(),
    ]);
    assert_eq!(out.code, 3, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("a broker could not be run against") && out.stderr.contains("down:"),
        "{}",
        out.stderr
    );
    let m = read_json(&json);
    assert!(m["brokers"][1]["unreachable"].is_string(), "{m:#}");
    assert_eq!(cells(&m, "5.0", "MQTT-3.12.4-1"), ["pass", "error"]);

    // Bad input is exit 2, naming the file and the line.
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "targets:\n  - name: x\n    ulr: mqtt://127.0.0.1:1\n").expect("write");
    let out = harness(&["matrix", &bad.display().to_string()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("bad.yaml:3:"), "{}", out.stderr);

    rt.block_on(broker.stop());
}
