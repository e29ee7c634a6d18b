//! Baselines: the cases known to fail on a target, so that CI stays green on a
//! broker with accepted deviations and goes red on any new one.
//!
//! The file is JSON, written by `run --write-baseline FILE` and read by
//! `run --baseline FILE`:
//!
//! ```json
//! {"divergences": [
//!   {"id": "shared/3.3-publish/qos1", "protocol": "5.0", "message": "step 4 (line 14): expected PUBACK …"}
//! ]}
//! ```
//!
//! `message` is for people reading the file. An entry marked
//! `"intermittent": true` is a divergence the target shows only some of the
//! time (mosquitto's coarse keep-alive sweep, say): its passing does not
//! count as fixed. Any other listed case that passes fails the run, so the
//! baseline is kept exact.

use std::collections::BTreeSet;

use mqtt_codec::Protocol;
use serde::Deserialize;
use serde_json::json;

use crate::results::{RunReport, Status};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    divergences: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    protocol: String,
    #[serde(default)]
    #[allow(dead_code)]
    message: Option<String>,
    #[serde(default)]
    intermittent: bool,
}

/// A parsed baseline: every known divergence, and which of them are intermittent.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    pub known: BTreeSet<(String, Protocol)>,
    pub intermittent: BTreeSet<(String, Protocol)>,
}

/// Parses a baseline file's text; errors say where and what.
pub fn parse(file: &str, text: &str) -> Result<Baseline, String> {
    let f: File = serde_json::from_str(text).map_err(|e| {
        format!(
            "{file}:{}:{}: {e}; a baseline is {{\"divergences\": [{{\"id\": …, \"protocol\": \"5.0\"}}]}}",
            e.line(),
            e.column()
        )
    })?;
    let mut b = Baseline::default();
    for e in f.divergences {
        let p = Protocol::parse(&e.protocol).ok_or_else(|| {
            format!(
                "{file}: `{}` is not a protocol version (3.1, 3.1.1 or 5.0)",
                e.protocol
            )
        })?;
        if e.intermittent {
            b.intermittent.insert((e.id.clone(), p));
        }
        b.known.insert((e.id, p));
    }
    Ok(b)
}

/// The failed cases of `report` as a baseline file.
pub fn render(report: &RunReport) -> String {
    let entries: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| json!({"id": c.id, "protocol": c.protocol.as_str(), "message": c.message}))
        .collect();
    let mut s =
        serde_json::to_string_pretty(&json!({ "divergences": entries })).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let b = parse(
            "b.json",
            r#"{"divergences":[{"id":"x/y","protocol":"5.0","message":"m"}]}"#,
        )
        .unwrap();
        assert!(b.known.contains(&("x/y".to_string(), Protocol::V5)));
        assert!(b.intermittent.is_empty());
        let b = parse(
            "b.json",
            r#"{"divergences":[{"id":"x/y","protocol":"5.0","intermittent":true}]}"#,
        )
        .unwrap();
        assert!(b.intermittent.contains(&("x/y".to_string(), Protocol::V5)));
        let e = parse("b.json", r#"{"divergences":[{"id":"x","protocol":"6"}]}"#).unwrap_err();
        assert!(e.contains("`6` is not a protocol version"), "{e}");
        let e = parse("b.json", "{\n \"divergence\": []}").unwrap_err();
        assert!(e.starts_with("b.json:2:"), "{e}");
    }
}
