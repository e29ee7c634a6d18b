//! What a probe prints: the console table (with `--verbose`, the packets of
//! each finding), the JSON report, and the target profile (`--write-profile`)
//! that `run --profile` reads as it is.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::client::show_line;
use super::{Finding, Report};

/// The console: one line per finding; `verbose` adds each try and its packets.
pub fn console(report: &Report, verbose: bool) -> String {
    let mut s = format!(
        "probe of {} ({:.1} s)\n\n",
        report.target,
        report.duration.as_secs_f64()
    );
    let width = report
        .findings
        .iter()
        .map(|f| f.label.chars().count())
        .max()
        .unwrap_or(0);
    for f in &report.findings {
        let _ = writeln!(s, "  {:<width$}  {}", f.label, f.summary);
        if verbose {
            evidence(&mut s, f);
        }
    }
    if !verbose {
        s.push_str(
            "\n--verbose shows the packets behind each finding; --json FILE keeps them all.\n",
        );
    }
    s
}

fn evidence(s: &mut String, f: &Finding) {
    for t in &f.evidence {
        let _ = writeln!(s, "      try: {} → {}", t.what, t.outcome);
        for line in &t.exchange {
            let _ = writeln!(s, "        {}", show_line(line));
        }
    }
}

/// The JSON report (`--json`).
pub fn json(report: &Report) -> Value {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let evidence: Vec<Value> = f
                .evidence
                .iter()
                .map(|t| json!({ "try": t.what, "outcome": t.outcome, "exchange": t.exchange }))
                .collect();
            json!({ "key": f.key, "label": f.label, "value": f.value, "summary": f.summary, "evidence": evidence })
        })
        .collect();
    json!({
        "target": report.target,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "duration_ms": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        "findings": findings,
        "profile": profile_value(report),
    })
}

/// A number of a value, or of its `{"at_least": n}` form.
fn number(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.get("at_least").and_then(Value::as_u64))
}

/// The profile's keys, as the probe found them.
pub fn profile_value(report: &Report) -> Value {
    let flag = |k: &str| report.value(k).as_bool().unwrap_or(false);
    let keep = report.value("keep_alive");
    json!({
        "protocols": report.value("protocols"),
        "maximum_qos": report.value("maximum_qos").as_u64().unwrap_or(0),
        "retain": flag("retain"),
        "wildcards": flag("wildcards"),
        "shared_subscriptions": flag("shared_subscriptions"),
        "subscription_identifiers": flag("subscription_identifiers"),
        "topic_alias": number(&report.value("topic_alias_maximum")).unwrap_or(0) > 0,
        "keep_alive": {
            "minimum": keep.get("minimum").and_then(Value::as_u64).unwrap_or(0),
            "maximum": keep.get("maximum").and_then(Value::as_u64).unwrap_or(65535),
        },
    })
}

/// The target profile (YAML) for `run --profile`: see `src/profile.rs`.
pub fn profile_yaml(report: &Report, name: &str) -> String {
    let p = profile_value(report);
    let protocols: Vec<String> = p["protocols"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("\"{s}\""))
                .collect()
        })
        .unwrap_or_default();
    let yes = |k: &str| p[k].as_bool().unwrap_or(false);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Target profile written by `mqtt-harness probe --target {}`.",
        report.target
    );
    s.push_str("# Each value is what the probe found by trying (see `probe --verbose`).\n");
    s.push_str("# Not probed: how late its keep-alive check may be (add `granularity: N`\n");
    s.push_str("# to keep_alive for a broker that checks on a sweep) and `setups`.\n");
    let _ = writeln!(s, "name: {}", yaml_string(name));
    let _ = writeln!(
        s,
        "notes: {}",
        yaml_string(&format!("probed at {}", report.target))
    );
    let _ = writeln!(s, "protocols: [{}]", protocols.join(", "));
    let _ = writeln!(s, "maximum_qos: {}", p["maximum_qos"]);
    for k in [
        "retain",
        "wildcards",
        "shared_subscriptions",
        "subscription_identifiers",
        "topic_alias",
    ] {
        let _ = writeln!(s, "{k}: {}", yes(k));
    }
    let _ = writeln!(
        s,
        "keep_alive: {{ minimum: {}, maximum: {} }}",
        p["keep_alive"]["minimum"], p["keep_alive"]["maximum"]
    );
    s
}

/// A YAML double-quoted string (JSON's quoting is valid YAML).
fn yaml_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}
