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
//! `skip` or `error` (the case's own last result: a known divergence is
//! `fail`, a flaky case `pass`); `message` says why for anything but a pass.
//!
//! Added to the contract, so that a consumer can recompute the verdict: at the
//! top `target`, `suite`, `tool_version`, `exit_status` (the run's exit
//! code), `verdict` (`conforming`, `divergences`, `could_not_run`,
//! `nothing_selected`, `interrupted`), `interrupted` (`true` when a signal
//! stopped the run: the report holds the cases that finished) and
//! `baseline` (`stale`: entries matching no case, `stale_fails`); in
//! `summary`, `flaky` and `known`; per case `known` (a failure the baseline
//! lists), `known_reason`, `flaky` (failed, then passed on a retry),
//! `attempts`, `earlier_attempts` and `passed_statements`.

use serde_json::{json, Value};

use crate::results::{Mark, RunReport};

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
                "passed_statements": c.passed_statements,
                "duration_ms": ms(c.duration),
                "message": c.message,
                "known": report.mark(c) == Mark::Known,
                "known_reason": report.known_reason(c).filter(|_| report.is_known(c)),
                "flaky": c.is_flaky(),
                "attempts": c.attempts,
                "earlier_attempts": c.earlier,
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
    let status = report.exit_status();
    let stale: Vec<Value> = report
        .stale()
        .iter()
        .map(|(id, p)| json!({"id": id, "protocol": p.as_str()}))
        .collect();
    json!({
        "target": report.target,
        "suite": report.suite,
        "tool_version": report.tool_version,
        "exit_status": status.code(),
        "verdict": status.as_str(),
        "interrupted": report.interrupted.is_some(),
        "summary": {
            "passed": s.passed,
            "failed": s.failed,
            "skipped": s.skipped,
            "errors": s.errors,
            "flaky": s.flaky,
            "known": s.known,
            "duration_ms": ms(report.duration),
        },
        "baseline": {"stale": stale, "stale_fails": report.stale_fails()},
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
            attempts: 1,
            earlier: Vec::new(),
        };
        let r = RunReport::new(
            "mqtt://127.0.0.1:1883".into(),
            vec![case],
            Duration::from_millis(20),
        );
        assert_eq!(
            to_json(&r),
            json!({
                "target": "mqtt://127.0.0.1:1883",
                "suite": "scenarios",
                "tool_version": env!("CARGO_PKG_VERSION"),
                "exit_status": 1,
                "verdict": "divergences",
                "interrupted": false,
                "summary": {"passed": 0, "failed": 1, "skipped": 0, "errors": 0, "flaky": 0,
                    "known": 0, "duration_ms": 20},
                "baseline": {"stale": [], "stale_fails": false},
                "scenarios": [{"id": "v5/ping", "file": "scenarios/v5/ping.yaml", "protocol": "5.0",
                    "status": "fail", "statements": ["MQTT-3.12.4-1"],
                    "failed_statements": ["MQTT-3.12.4-1"], "passed_statements": [],
                    "duration_ms": 12,
                    "message": "step 2: expected PINGRESP; got nothing within 5 s",
                    "known": false, "known_reason": null, "flaky": false, "attempts": 1,
                    "earlier_attempts": []}],
                "statements": [{"id": "MQTT-3.12.4-1", "protocol": "5.0", "status": "fail"}]
            })
        );
    }
}
