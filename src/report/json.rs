//! The `run --json FILE` report, exactly as DESIGN.md fixes it:
//!
//! ```json
//! {"summary":{"passed":3,"failed":1,"skipped":0,"errors":0,"duration_ms":812},
//!  "scenarios":[{"id":"v5/3.12-pingreq/pingresp","file":"scenarios/v5/3.12-pingreq/pingresp.yaml",
//!                "protocol":"5.0","status":"pass","statements":["MQTT-3.12.4-1"],"failed_statements":[],
//!                "duration_ms":4,"message":null}],
//!  "statements":[{"id":"MQTT-3.12.4-1","protocol":"5.0","status":"pass"}]}
//! ```
//!
//! One scenario entry per scenario × protocol; `status` is `pass`, `fail`,
//! `skip` or `error`; `message` says why for anything but a pass.

use serde_json::{json, Value};

use crate::results::RunReport;

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The report as JSON.
pub fn to_json(report: &RunReport) -> Value {
    let s = report.summary();
    let scenarios: Vec<Value> = report
        .cases
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "file": c.file,
                "protocol": c.protocol.as_str(),
                "status": c.status.as_str(),
                "statements": c.statements,
                "failed_statements": c.failed_statements,
                "duration_ms": ms(c.duration),
                "message": c.message,
            })
        })
        .collect();
    let statements: Vec<Value> = report
        .statements
        .iter()
        .map(|st| {
            json!({
                "id": st.id,
                "protocol": st.protocol.as_str(),
                "status": st.status.as_str(),
            })
        })
        .collect();
    json!({
        "summary": {
            "passed": s.passed,
            "failed": s.failed,
            "skipped": s.skipped,
            "errors": s.errors,
            "duration_ms": ms(report.duration),
        },
        "scenarios": scenarios,
        "statements": statements,
    })
}

/// The report as pretty-printed JSON text, with a final newline.
pub fn render(report: &RunReport) -> String {
    let mut s = serde_json::to_string_pretty(&to_json(report)).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CaseResult, RunReport, Status};
    use mqtt_codec::Protocol;
    use std::time::Duration;

    #[test]
    fn exact_shape() {
        let case = CaseResult {
            id: "v5/ping".into(),
            file: "scenarios/v5/ping.yaml".into(),
            name: "ping".into(),
            protocol: Protocol::V5,
            status: Status::Fail,
            statements: vec!["MQTT-3.12.4-1".into()],
            failed_statements: vec!["MQTT-3.12.4-1".into()],
            passed_statements: Vec::new(),
            duration: Duration::from_millis(12),
            message: Some("step 2: expected PINGRESP; got nothing within 5 s".into()),
            failure: None,
            exchange: Vec::new(),
        };
        let r = RunReport::new(
            "mqtt://127.0.0.1:1883".into(),
            vec![case],
            Duration::from_millis(20),
        );
        assert_eq!(
            to_json(&r),
            json!({
                "summary": {"passed": 0, "failed": 1, "skipped": 0, "errors": 0, "duration_ms": 20},
                "scenarios": [{"id": "v5/ping", "file": "scenarios/v5/ping.yaml", "protocol": "5.0",
                    "status": "fail", "statements": ["MQTT-3.12.4-1"],
                    "failed_statements": ["MQTT-3.12.4-1"], "duration_ms": 12,
                    "message": "step 2: expected PINGRESP; got nothing within 5 s"}],
                "statements": [{"id": "MQTT-3.12.4-1", "protocol": "5.0", "status": "fail"}]
            })
        );
    }
}
