//! Baselines: the cases known to fail on a target, so that CI stays green on a
//! broker with accepted deviations and goes red on any new one.
//!
//! The file is YAML (JSON, which is YAML too, is read as well), written by
//! `run --write-baseline FILE` and read by `run --baseline FILE`:
//!
//! ```yaml
//! divergences:
//!   - id: shared/3.3-publish/qos1
//!     protocol: "5.0"
//!     message: >-
//!       We sent PUBLISH QoS 1 id 7 (32 0b …); the broker answered nothing
//!       within 5 s. MQTT-3.3.4-1 requires a PUBACK.
//!     intermittent: true
//! ```
//!
//! Only `id` and `protocol` are matched. `message` is for people: every
//! report shows it beside the known divergence. An entry marked
//! `intermittent: true` is a divergence the target shows only some of the
//! time (mosquitto's coarse keep-alive sweep, say): its passing does not count
//! as fixed. Any other listed case that passes fails the run, and so does an
//! entry that matches no case of a whole run (stale), so the baseline is kept
//! exact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use mqtt_codec::Protocol;
use serde::Deserialize;

use crate::results::{Mark, RunReport, Status};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    divergences: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    protocol: ProtocolValue,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    intermittent: bool,
}

/// `"5.0"`, or `5.0` written without quotes (a YAML number).
#[derive(Deserialize)]
#[serde(untagged)]
enum ProtocolValue {
    Text(String),
    Number(f64),
}

impl ProtocolValue {
    fn text(&self) -> String {
        match self {
            ProtocolValue::Text(s) => s.clone(),
            ProtocolValue::Number(n) => format!("{n:?}"),
        }
    }
}

/// A parsed baseline: every known divergence, which of them are
/// intermittent, and the reason each one is accepted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub known: BTreeSet<(String, Protocol)>,
    pub intermittent: BTreeSet<(String, Protocol)>,
    pub reasons: BTreeMap<(String, Protocol), String>,
}

const SHAPE: &str = "a baseline is `divergences:` and a list of entries with `id`, \
                     `protocol` and optionally `message` and `intermittent`";

/// Parses a baseline file's text (YAML or JSON); errors say where and what.
pub fn parse(file: &str, text: &str) -> Result<Baseline, String> {
    let f: File = if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| format!("{file}:{}:{}: {e}; {SHAPE}", e.line(), e.column()))?
    } else {
        serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("{file}:{}:{}: {e}; {SHAPE}", l.line(), l.column()),
            None => format!("{file}: {e}; {SHAPE}"),
        })?
    };
    let mut b = Baseline::default();
    for e in f.divergences {
        let text = e.protocol.text();
        let p = Protocol::parse(&text).ok_or_else(|| {
            format!(
                "{file}: entry {}: `{text}` is not a protocol version (3.1, 3.1.1 or 5.0)",
                e.id
            )
        })?;
        let key = (e.id, p);
        if e.intermittent {
            b.intermittent.insert(key.clone());
        }
        if let Some(m) = e.message.filter(|m| !m.trim().is_empty()) {
            b.reasons.insert(key.clone(), m);
        }
        b.known.insert(key);
    }
    Ok(b)
}

/// The comment at the top of every written baseline.
const HEADER: &str = "\
# mqtt-harness baseline: the known divergences of one broker.
#
# `mqtt-harness run --baseline FILE` does not fail on the failures listed here;
# any other failure still fails the run. Each entry:
#   id            the scenario's id (its path below scenarios/, without .yaml)
#   protocol      the version the case ran under: \"3.1\", \"3.1.1\" or \"5.0\"
#   message       why the divergence is accepted, for people; every report shows
#                 it beside KNOWN. Say what was sent, what came back, and which
#                 statement it breaks.
#   intermittent  optional, true when the broker shows it only in some runs: its
#                 passing then does not fail the run
# Only id and protocol are matched. A listed case that passes fails the run
# (`fixed`: remove the entry), and so does an entry that matches no case of a
# whole run (`stale`: a renamed or deleted scenario). Edit the messages by hand;
# `--write-baseline FILE` keeps them when it rewrites FILE.
";

/// The baseline of `report`: its failures, and its flaky cases marked
/// intermittent. The reasons of `previous` entries (the file being
/// overwritten, the `--baseline` read) are kept, and so are its intermittent
/// entries that passed; in a restricted run, also its entries for cases that
/// did not run.
pub fn render(report: &RunReport, previous: &Baseline) -> String {
    let mut entries: BTreeMap<(String, Protocol), (String, bool)> = BTreeMap::new();
    for c in &report.cases {
        let key = c.key();
        let was_intermittent = previous.intermittent.contains(&key);
        let keep = match report.mark(c) {
            Mark::Flaky => Some(true),
            _ if c.status == Status::Fail => Some(was_intermittent),
            Mark::Pass if was_intermittent && previous.known.contains(&key) => Some(true),
            _ => None,
        };
        if let Some(intermittent) = keep {
            let message = previous.reasons.get(&key).cloned().unwrap_or_else(|| {
                let why = c
                    .earlier
                    .first()
                    .map(String::as_str)
                    .or(c.message.as_deref())
                    .unwrap_or("");
                if c.is_flaky() {
                    format!("Intermittent: failed, then passed on a retry. {why}")
                } else {
                    why.to_string()
                }
            });
            entries.insert(key, (message, intermittent));
        }
    }
    if report.policy.restricted {
        let ran: BTreeSet<(String, Protocol)> = report.cases.iter().map(|c| c.key()).collect();
        for key in previous.known.iter().filter(|k| !ran.contains(*k)) {
            let message = previous.reasons.get(key).cloned().unwrap_or_default();
            entries.insert(key.clone(), (message, previous.intermittent.contains(key)));
        }
    }
    let text = write_yaml(&entries, true);
    // Folded messages are for reading; should one not read back as written,
    // quote them all.
    if parse("", &text).is_ok_and(|b| same(&b, &entries)) {
        text
    } else {
        write_yaml(&entries, false)
    }
}

fn same(b: &Baseline, entries: &BTreeMap<(String, Protocol), (String, bool)>) -> bool {
    b.known.len() == entries.len()
        && entries.iter().all(|(k, (m, i))| {
            b.known.contains(k)
                && b.intermittent.contains(k) == *i
                && b.reasons.get(k).map_or(m.trim().is_empty(), |r| r == m)
        })
}

fn write_yaml(entries: &BTreeMap<(String, Protocol), (String, bool)>, fold: bool) -> String {
    let mut out = String::from(HEADER);
    if entries.is_empty() {
        out.push_str("divergences: []\n");
        return out;
    }
    out.push_str("divergences:\n");
    for ((id, protocol), (message, intermittent)) in entries {
        let _ = writeln!(out, "  - id: {}", scalar(id));
        let _ = writeln!(out, "    protocol: \"{protocol}\"");
        if !message.is_empty() {
            match folded(message).filter(|_| fold) {
                Some(lines) => {
                    out.push_str("    message: >-\n");
                    for line in lines {
                        let _ = writeln!(out, "      {line}");
                    }
                }
                None => {
                    let _ = writeln!(out, "    message: {}", quoted(message));
                }
            }
        }
        if *intermittent {
            out.push_str("    intermittent: true\n");
        }
    }
    out
}

/// An id as a plain YAML scalar where it is one, else quoted.
fn scalar(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
    if plain {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// A JSON string, which is also a YAML double-quoted scalar.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `message` cut into lines of at most ~88 characters at single spaces, for
/// a folded block scalar (`>-`), which joins them back with one space; `None`
/// where folding could change the text (line breaks, tabs, runs of spaces…).
fn folded(message: &str) -> Option<Vec<String>> {
    let foldable = !message.is_empty()
        && !message.contains("  ")
        && !message.starts_with(' ')
        && !message.ends_with(' ')
        && !message.starts_with(['#', '>', '|', '-', '"', '\''])
        && message
            .chars()
            .all(|c| c == ' ' || !(c.is_whitespace() || c.is_control()));
    if !foldable {
        return None;
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in message.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > 88 {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::CaseResult;
    use std::time::Duration;

    #[test]
    fn parses_json_and_yaml_and_refuses() {
        let b = parse(
            "b.json",
            r#"{"divergences":[{"id":"x/y","protocol":"5.0","message":"m"}]}"#,
        )
        .unwrap();
        assert!(b.known.contains(&("x/y".to_string(), Protocol::V5)));
        assert_eq!(
            b.reasons
                .get(&("x/y".to_string(), Protocol::V5))
                .map(String::as_str),
            Some("m")
        );
        assert!(b.intermittent.is_empty());
        let y = parse(
            "b.yaml",
            "divergences:\n  - id: x/y\n    protocol: 5.0\n    intermittent: true\n",
        )
        .unwrap();
        assert!(y.intermittent.contains(&("x/y".to_string(), Protocol::V5)));
        let e = parse("b.json", r#"{"divergences":[{"id":"x","protocol":"6"}]}"#).unwrap_err();
        assert!(e.contains("`6` is not a protocol version"), "{e}");
        let e = parse("b.json", "{\n \"divergence\": []}").unwrap_err();
        assert!(e.starts_with("b.json:2:"), "{e}");
        let e = parse("b.yaml", "divergences:\n  - id: x\n    protocl: \"5.0\"\n").unwrap_err();
        assert!(e.starts_with("b.yaml:3:"), "{e}");
        assert!(e.contains("unknown field `protocl`"), "{e}");
    }

    #[test]
    fn the_shipped_mosquitto_baseline_is_yaml_with_its_header() {
        let text = include_str!("../baselines/mosquitto-2.0.yaml");
        assert!(text.starts_with(HEADER), "the header explains the format");
        let b = parse("baselines/mosquitto-2.0.yaml", text).unwrap();
        assert_eq!(b.known.len(), 14);
        assert_eq!(b.reasons.len(), 14, "every entry says why");
        assert_eq!(b.intermittent.len(), 4);
    }

    fn case(id: &str, status: Status, message: &str) -> CaseResult {
        CaseResult {
            id: id.into(),
            file: format!("scenarios/{id}.yaml"),
            name: id.into(),
            protocol: Protocol::V5,
            status,
            statements: vec![],
            failed_statements: vec![],
            passed_statements: vec![],
            duration: Duration::ZERO,
            message: Some(message.into()).filter(|m: &String| !m.is_empty()),
            failure: None,
            exchange: vec![],
            attempts: 1,
            earlier: vec![],
        }
    }

    #[test]
    fn writes_yaml_with_a_header_keeping_reasons_and_marking_flaky_cases() {
        let long = "We sent PINGREQ with fixed-header flags 0001 (c1 00); the broker answered \
                    PINGRESP (d0 00) and kept the connection open. MQTT-2.1.3-1: a: b # c";
        let flaky = case("a/flaky", Status::Fail, "step 1: expected X; got Y").retried(case(
            "a/flaky",
            Status::Pass,
            "",
        ));
        let r = RunReport::new(
            "mqtt://h:1".into(),
            vec![
                case(
                    "a/new",
                    Status::Fail,
                    "step 2 (line 9): expected PINGRESP; got nothing",
                ),
                case("a/old", Status::Fail, "step 2: what the run says"),
                case("a/pass", Status::Pass, ""),
                case("a/tabs", Status::Fail, "tab\there\nand a line break"),
                flaky,
            ],
            Duration::ZERO,
        );
        let mut previous = Baseline::default();
        let old = ("a/old".to_string(), Protocol::V5);
        previous.known.insert(old.clone());
        previous.reasons.insert(old.clone(), long.to_string());
        let text = render(&r, &previous);
        assert!(text.starts_with("# mqtt-harness baseline"), "{text}");
        assert!(
            text.contains("#   message       why the divergence is accepted"),
            "{text}"
        );
        assert!(
            text.contains("  - id: a/old\n    protocol: \"5.0\"\n    message: >-\n      We sent"),
            "{text}"
        );
        let back = parse("b.yaml", &text).unwrap();
        assert_eq!(back.reasons.get(&old).map(String::as_str), Some(long));
        let key = |id: &str| (id.to_string(), Protocol::V5);
        assert_eq!(
            back.reasons.get(&key("a/new")).map(String::as_str),
            Some("step 2 (line 9): expected PINGRESP; got nothing")
        );
        assert_eq!(
            back.reasons.get(&key("a/tabs")).map(String::as_str),
            Some("tab\there\nand a line break")
        );
        assert!(!back.known.contains(&key("a/pass")));
        assert!(back.intermittent.contains(&key("a/flaky")), "{text}");
        assert!(
            back.reasons[&key("a/flaky")].contains("expected X; got Y"),
            "{text}"
        );
        assert_eq!(back.intermittent.len(), 1);
    }

    #[test]
    fn a_restricted_run_keeps_the_entries_it_did_not_run() {
        let mut previous = Baseline::default();
        let other = ("b/other".to_string(), Protocol::V3_1_1);
        previous.known.insert(other.clone());
        previous.reasons.insert(other.clone(), "why".into());
        let mut r = RunReport::new("t".into(), vec![], Duration::ZERO);
        assert!(!parse("", &render(&r, &previous))
            .unwrap()
            .known
            .contains(&other));
        r.policy.restricted = true;
        let back = parse("", &render(&r, &previous)).unwrap();
        assert_eq!(back.reasons.get(&other).map(String::as_str), Some("why"));
    }
}
